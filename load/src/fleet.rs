//! Many non-blocking WebSocket client connections on one mio `Poll`: the load harness's own
//! client, because the blocking `huddle::client` costs a thread per connection.
//!
//! The WebSocket layer is hand-rolled and minimal: an HTTP upgrade request, masked binary
//! client frames (RFC 6455 §5.3), and a parser for the server's unmasked frames that answers
//! pings and notices close frames. Requests are encoded with the server's own
//! [`Encoder`](huddle::wire::Encoder). Output is buffered per connection and written once per
//! turn, so a burst of sends costs one `write` per connection. A fleet made with
//! [`Fleet::speak_json`] connects as a Nakama SDK does (`format=json`) and sends text frames
//! instead ([`Fleet::send_text`]); its sessions count as welcomed at the upgrade, since JSON
//! sessions get no welcome.

use huddle::core::{Cid, Request};
use huddle::wire::Encoder;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// Bytes read per `read` call; one shared buffer, so idle connections hold none.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Upgrades in flight at once: the server accepts at most 256 per turn and the listen backlog
/// is finite, so a SYN flood of thousands would only cost retransmission seconds.
const CONNECTS_IN_FLIGHT_MAX: usize = 256;
/// A server frame larger than this is a protocol error here (party snapshots are far smaller).
const SERVER_FRAME_BYTES_MAX: usize = 1 << 20;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// TCP connect in progress, upgrade request queued.
    Connecting,
    /// Upgrade request sent, waiting for `101`.
    Upgrading,
    Open,
    Closed,
}

struct Conn {
    stream: TcpStream,
    state: ConnState,
    /// Unparsed bytes (a partial frame or partial HTTP response) carried to the next read.
    pending_in: Vec<u8>,
    out: Vec<u8>,
    out_listed: bool,
    welcomed: bool,
}

/// What a connection delivered, handed to the scenario's callback.
pub enum Incoming<'a> {
    /// One binary frame's payload (the first is the welcome event), or a text frame's on a
    /// JSON fleet.
    Frame(&'a [u8]),
    /// The connection ended; the text says why.
    Closed(&'a str),
}

pub struct Fleet {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    encoder: Encoder,
    scratch: Vec<u8>,
    flush_list: Vec<usize>,
    mask_state: u32,
    target: SocketAddr,
    host: String,
    path: String,
    /// Nakama's JSON mode (SPEC K-1) instead of FlatBuffers.
    json: bool,
    pub welcomed: usize,
    pub closed: usize,
    /// Connections that failed before their welcome, with the first reason seen.
    pub failed: usize,
    pub first_failure: Option<String>,
}

impl Fleet {
    pub fn new(target: SocketAddr, host: &str, path: &str) -> io::Result<Fleet> {
        Ok(Fleet {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            encoder: Encoder::new(),
            scratch: vec![0; READ_CHUNK_BYTES],
            flush_list: Vec::new(),
            mask_state: 0x9E37_79B9,
            target,
            host: host.to_owned(),
            path: path.to_owned(),
            json: false,
            welcomed: 0,
            closed: 0,
            failed: 0,
            first_failure: None,
        })
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Connections opened from now on speak Nakama's JSON: text frames both ways.
    pub fn speak_json(&mut self) {
        self.json = true;
    }

    pub fn state(&self, conn: usize) -> ConnState {
        self.conns[conn].state
    }

    /// Starts a connection (bound to `source` first when given) and queues its upgrade request.
    /// Returns its index, which is also its mio token.
    pub fn connect(&mut self, source: Option<Ipv4Addr>, token: &str, status: bool) -> io::Result<usize> {
        let mut stream = connect_nonblocking(source, self.target)?;
        let index = self.conns.len();
        self.poll.registry().register(&mut stream, Token(index), Interest::READABLE | Interest::WRITABLE)?;
        let status = if status { "&status=true" } else { "" };
        let format = if self.json { "&format=json" } else { "" };
        let request = format!(
            "GET {}?token={token}{status}{format} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.path, self.host
        );
        self.conns.push(Conn {
            stream,
            state: ConnState::Connecting,
            pending_in: Vec::new(),
            out: request.into_bytes(),
            out_listed: false,
            welcomed: false,
        });
        Ok(index)
    }

    /// Opens `count` connections, at most [`CONNECTS_IN_FLIGHT_MAX`] upgrading at once, and runs
    /// the loop until each has its welcome or failed, or `deadline`. `token_of(i)` gives the
    /// token of the `i`-th new connection, `source_of(i)` its source address.
    pub fn connect_many(
        &mut self,
        count: usize,
        status: bool,
        deadline: Instant,
        mut token_of: impl FnMut(usize) -> String,
        mut source_of: impl FnMut(usize) -> Option<Ipv4Addr>,
        on_frame: &mut impl FnMut(usize, Incoming<'_>),
    ) -> Result<(), String> {
        let first = self.conns.len();
        let mut started = 0;
        while self.welcomed + self.failed < first + count {
            let in_flight = first + started - (self.welcomed + self.failed);
            let room = CONNECTS_IN_FLIGHT_MAX.saturating_sub(in_flight);
            for _ in 0..room.min(count - started) {
                self.connect(source_of(started), &token_of(started), status)
                    .map_err(|e| format!("connect #{}: {e}", first + started))?;
                started += 1;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "connecting: {} of {count} welcomed before the deadline",
                    self.welcomed - first.min(self.welcomed)
                ));
            }
            self.turn(Duration::from_millis(10), on_frame)?;
        }
        if self.failed > 0 {
            return Err(format!(
                "{} connections failed: {}",
                self.failed,
                self.first_failure.clone().unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Queues one request as a masked binary frame.
    pub fn send(&mut self, conn: usize, cid: u64, request: &Request) {
        let payload = self.encoder.request(Cid(cid), request);
        queue_frame(&mut self.conns[conn], conn, &mut self.flush_list, &mut self.mask_state, 0x2, payload);
    }

    /// Queues one masked text frame (a Nakama JSON envelope).
    pub fn send_text(&mut self, conn: usize, text: &[u8]) {
        queue_frame(&mut self.conns[conn], conn, &mut self.flush_list, &mut self.mask_state, 0x1, text);
    }

    /// Closes every connection (a FIN each); the server notices and cleans up.
    pub fn close_all(&mut self) {
        for c in &mut self.conns {
            if c.state != ConnState::Closed {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                c.state = ConnState::Closed;
            }
        }
        self.conns.clear();
    }

    /// One turn: write what is queued, wait up to `timeout` for readiness, read everything
    /// readable, hand each frame to `on_frame`, and write what that turn queued (pongs).
    pub fn turn(&mut self, timeout: Duration, on_frame: &mut impl FnMut(usize, Incoming<'_>)) -> Result<(), String> {
        self.flush();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| (e.token().0, e.is_readable() || e.is_read_closed() || e.is_error(), e.is_writable()))
            .collect();
        for (index, readable, writable) in ready {
            if index >= self.conns.len() {
                continue;
            }
            if writable && self.conns[index].state == ConnState::Connecting {
                match self.conns[index].stream.take_error() {
                    Ok(None) => {
                        self.conns[index].state = ConnState::Upgrading;
                        self.list_flush(index);
                    }
                    Ok(Some(e)) | Err(e) => {
                        self.fail(index, format!("connect: {e}"), on_frame);
                        continue;
                    }
                }
            } else if writable && !self.conns[index].out.is_empty() {
                self.list_flush(index);
            }
            if readable {
                self.read(index, on_frame);
            }
        }
        self.flush();
        Ok(())
    }

    fn list_flush(&mut self, index: usize) {
        let c = &mut self.conns[index];
        if !c.out_listed {
            c.out_listed = true;
            self.flush_list.push(index);
        }
    }

    fn flush(&mut self) {
        let list = std::mem::take(&mut self.flush_list);
        for &index in &list {
            let c = &mut self.conns[index];
            c.out_listed = false;
            if c.state == ConnState::Connecting || c.state == ConnState::Closed {
                continue; // written once connected
            }
            let mut written = 0;
            while written < c.out.len() {
                match c.stream.write(&c.out[written..]) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break, // the read side will see the reset
                }
            }
            c.out.drain(..written);
        }
        self.flush_list = list;
        self.flush_list.clear();
    }

    fn fail(&mut self, index: usize, why: String, on_frame: &mut impl FnMut(usize, Incoming<'_>)) {
        let c = &mut self.conns[index];
        if c.state == ConnState::Closed {
            return;
        }
        let _ = self.poll.registry().deregister(&mut c.stream);
        c.state = ConnState::Closed;
        c.out = Vec::new();
        c.pending_in = Vec::new();
        if c.welcomed {
            self.closed += 1;
        } else {
            self.failed += 1;
            self.first_failure.get_or_insert_with(|| why.clone());
        }
        on_frame(index, Incoming::Closed(&why));
    }

    fn read(&mut self, index: usize, on_frame: &mut impl FnMut(usize, Incoming<'_>)) {
        loop {
            if self.conns[index].state == ConnState::Closed {
                return;
            }
            let n = match self.conns[index].stream.read(&mut self.scratch) {
                Ok(0) => return self.fail(index, "server closed the connection".into(), on_frame),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(index, format!("read: {e}"), on_frame),
            };
            // Parse from the scratch buffer directly unless a partial frame is carried over.
            let mut carried = std::mem::take(&mut self.conns[index].pending_in);
            let result = if carried.is_empty() {
                let scratch = std::mem::take(&mut self.scratch);
                let r = self.parse(index, &scratch[..n], on_frame);
                if let Ok(c) = r {
                    self.conns[index].pending_in.extend_from_slice(&scratch[c..n]);
                }
                self.scratch = scratch;
                r.map(|_| ())
            } else {
                carried.extend_from_slice(&self.scratch[..n]);
                let r = self.parse(index, &carried, on_frame);
                if let Ok(consumed) = r {
                    carried.drain(..consumed);
                    self.conns[index].pending_in = carried;
                }
                r.map(|_| ())
            };
            if let Err(why) = result {
                return self.fail(index, why, on_frame);
            }
            if n < self.scratch.len() {
                return; // drained: the next edge will say when more arrives
            }
        }
    }

    /// Parses complete units (the HTTP response, then frames) from `bytes`; returns how many
    /// bytes were consumed.
    fn parse(
        &mut self,
        index: usize,
        bytes: &[u8],
        on_frame: &mut impl FnMut(usize, Incoming<'_>),
    ) -> Result<usize, String> {
        let mut at = 0;
        if self.conns[index].state == ConnState::Upgrading {
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                if bytes.len() > 16 * 1024 {
                    return Err("upgrade response too long".into());
                }
                return Ok(0);
            };
            let head = String::from_utf8_lossy(&bytes[..end]);
            let status_line = head.lines().next().unwrap_or_default().to_owned();
            if !status_line.starts_with("HTTP/1.1 101") {
                return Err(format!("upgrade refused: {status_line}"));
            }
            self.conns[index].state = ConnState::Open;
            at = end + 4;
            if self.json {
                // No welcome in Nakama's vocabulary: the upgrade is the session's start.
                self.conns[index].welcomed = true;
                self.welcomed += 1;
            }
        }
        while self.conns[index].state == ConnState::Open {
            let Some((opcode, header, len)) = parse_server_header(&bytes[at..])? else {
                break;
            };
            if bytes.len() - at < header + len {
                break;
            }
            let payload = &bytes[at + header..at + header + len];
            at += header + len;
            match opcode {
                0x1 if self.json => on_frame(index, Incoming::Frame(payload)),
                0x2 => {
                    if !self.conns[index].welcomed {
                        self.conns[index].welcomed = true;
                        self.welcomed += 1;
                    }
                    on_frame(index, Incoming::Frame(payload));
                }
                0x9 => {
                    self.mask_state = self.mask_state.rotate_left(7) ^ 0x5bd1_e995;
                    let mask = self.mask_state.to_be_bytes();
                    push_client_frame(&mut self.conns[index].out, 0xA, payload, mask);
                    self.list_flush(index);
                }
                0x8 => {
                    let reason = if payload.len() > 2 {
                        format!(
                            "close {} {}",
                            u16::from_be_bytes([payload[0], payload[1]]),
                            String::from_utf8_lossy(&payload[2..])
                        )
                    } else {
                        "close frame".to_owned()
                    };
                    return Err(reason);
                }
                _ => {}
            }
        }
        Ok(at)
    }
}

/// Appends one client frame to connection `index`'s output (nothing once it is closed) and
/// lists it for the next flush; each frame gets the next mask of a xorshift sequence.
fn queue_frame(
    c: &mut Conn,
    index: usize,
    flush_list: &mut Vec<usize>,
    mask_state: &mut u32,
    opcode: u8,
    payload: &[u8],
) {
    *mask_state ^= *mask_state << 13;
    *mask_state ^= *mask_state >> 17;
    *mask_state ^= *mask_state << 5;
    if c.state == ConnState::Closed {
        return;
    }
    push_client_frame(&mut c.out, opcode, payload, mask_state.to_be_bytes());
    if !c.out_listed {
        c.out_listed = true;
        flush_list.push(index);
    }
}

/// `(opcode, header length, payload length)` of the server frame at the start of `bytes`, or
/// `None` when the header is incomplete.
fn parse_server_header(bytes: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    if bytes.len() < 2 {
        return Ok(None);
    }
    if bytes[1] & 0x80 != 0 {
        return Err("masked server frame".into());
    }
    let opcode = bytes[0] & 0x0F;
    let (header, len) = match bytes[1] & 0x7F {
        126 if bytes.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
        127 if bytes.len() < 10 => return Ok(None),
        127 => (10, u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes checked")) as usize),
        n => (2, n as usize),
    };
    if len > SERVER_FRAME_BYTES_MAX {
        return Err(format!("server frame of {len} bytes"));
    }
    Ok(Some((opcode, header, len)))
}

/// Appends a final client frame: masked, as RFC 6455 §5.1 requires of clients.
pub fn push_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// A non-blocking TCP connect, bound to `source` first when given (how one host spreads
/// connections over 127.0.0.0/8 when one source address runs out of ephemeral ports).
fn connect_nonblocking(source: Option<Ipv4Addr>, target: SocketAddr) -> io::Result<TcpStream> {
    let Some(source) = source else {
        let stream = TcpStream::connect(target)?;
        stream.set_nodelay(true)?;
        return Ok(stream);
    };
    let SocketAddr::V4(target_v4) = target else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "source addresses need an IPv4 target"));
    };
    // SAFETY: plain socket syscalls on a descriptor we own; sockaddr_in is plain data, built
    // and passed with its exact size. The descriptor moves into the TcpStream on success and is
    // closed on every error path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fail = |fd| {
            let e = io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        let one: libc::c_int = 1;
        // Let connect pick the port per (source, destination) instead of reserving it at bind.
        let _ = libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
            sin_zero: [0; 8],
        };
        let local = sockaddr(source, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return fail(fd);
        }
        let remote = sockaddr(*target_v4.ip(), target_v4.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0
            && io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS)
        {
            return fail(fd);
        }
        let std_stream = std::net::TcpStream::from_raw_fd(fd);
        std_stream.set_nodelay(true)?;
        Ok(TcpStream::from_std(std_stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_masked_and_unmask_to_the_payload() {
        let mut out = Vec::new();
        let payload: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        push_client_frame(&mut out, 0x2, &payload, [1, 2, 3, 4]);
        assert_eq!(out[0], 0x82);
        assert_eq!(out[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 300);
        let mask = &out[4..8];
        let unmasked: Vec<u8> = out[8..].iter().enumerate().map(|(i, b)| b ^ mask[i & 3]).collect();
        assert_eq!(unmasked, payload);
    }

    #[test]
    fn server_headers_parse_or_wait_for_more() {
        assert_eq!(parse_server_header(&[0x82]).unwrap(), None);
        assert_eq!(parse_server_header(&[0x82, 5]).unwrap(), Some((2, 2, 5)));
        assert_eq!(parse_server_header(&[0x82, 126, 1]).unwrap(), None);
        assert_eq!(parse_server_header(&[0x82, 126, 1, 44]).unwrap(), Some((2, 4, 300)));
        assert!(parse_server_header(&[0x82, 0x85]).is_err());
    }
}
