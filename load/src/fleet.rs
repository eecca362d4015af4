//! Many non-blocking client connections on one mio `Poll`: the load harness's own client,
//! because the blocking `huddle::client` costs a thread per connection.
//!
//! Two framings, one client, so huddle and its floor are driven the same way and differ only
//! in the bytes around each message ([`Framing`]):
//!
//! - WebSocket, towards huddle, hand-rolled and minimal: an HTTP upgrade request, masked
//!   binary client frames (RFC 6455 §5.3), and a parser for the server's unmasked frames that
//!   answers pings and notices close frames. Requests are encoded with the server's own
//!   [`Encoder`](huddle::wire::Encoder). In Nakama's JSON mode ([`Format::Json`]) the upgrade
//!   asks for `format=json`, as a Nakama SDK's does, frames are text both ways, requests are
//!   written by the server crate's own [`request_frame`], and a session starts at the upgrade
//!   (JSON sessions get no welcome).
//! - Length-prefixed, towards the floor (`floor.rs`): a `u32` body length, then the body.
//!
//! Output is buffered per connection and written once per turn, so a burst of sends costs one
//! `write` per connection. In steady state nothing here allocates per message: buffers keep
//! their capacity, the readiness list is reused, and partial frames carry over in place.

use super::floor;
use super::procfs::now_ns;
use super::watch::{LoopWatch, BACKLOG_PROBE_INTERVAL_NS, BACKLOG_PROBE_SOCKETS};
use super::Format;
use huddle::core::{Cid, Request};
use huddle::wire::nakama::{request_frame, CidText};
use huddle::wire::Encoder;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

/// Bytes read per `read` call; one shared buffer, so idle connections hold none.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Upgrades in flight at once: the server accepts at most 256 per turn and the listen backlog
/// is finite, so a SYN flood of thousands would only cost retransmission seconds.
const CONNECTS_IN_FLIGHT_MAX: usize = 256;
/// A server frame larger than this is a protocol error here (party snapshots are far smaller).
const SERVER_FRAME_BYTES_MAX: usize = 1 << 20;
/// Output a connection may hold unwritten before the scenarios stop queueing to it for the
/// turn ([`Fleet::out_full`]): far above what a healthy server leaves in a turn (a few frames),
/// small enough that a server that stopped reading cannot make the harness hoard memory.
const OUT_BYTES_FULL: usize = 1 << 20;

/// How messages are framed on the wire.
#[derive(Clone, Debug)]
pub enum Framing {
    /// huddle: an HTTP upgrade to WebSocket at `path` (with the session's token), then masked
    /// frames: binary, the server's first frame its welcome ([`Format::FlatBuffers`]); or text,
    /// no welcome ([`Format::Json`]).
    WebSocket { host: String, path: String, format: Format },
    /// The floor: no handshake; `u32` little-endian body length, then the body; the server's
    /// first frame is its welcome.
    LengthPrefixed,
}

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
    /// One message's payload: a binary frame's (the first is the welcome event), a text
    /// frame's in Nakama's JSON mode, or a floor frame's body.
    Frame(&'a [u8]),
    /// The connection ended; the text says why.
    Closed(&'a str),
}

pub struct Fleet {
    poll: Poll,
    events: Events,
    /// This turn's readiness, `(connection, readable, writable)`; reused so a turn allocates nothing.
    ready: Vec<(usize, bool, bool)>,
    conns: Vec<Conn>,
    encoder: Encoder,
    scratch: Vec<u8>,
    flush_list: Vec<usize>,
    mask_state: u32,
    target: SocketAddr,
    framing: Framing,
    /// Everything read so far, for the watch's bytes-per-ms.
    bytes_read_total: u64,
    watch: Option<LoopWatch>,
    /// Receive-queue probe: the next connection to probe, the running total of this pass, and
    /// when the last probe ran.
    probe_next: usize,
    probe_pass_bytes: u64,
    probe_last_ns: u64,
    pub welcomed: usize,
    pub closed: usize,
    /// Connections that failed before their welcome, with the first reason seen.
    pub failed: usize,
    pub first_failure: Option<String>,
}

impl Fleet {
    pub fn new(target: SocketAddr, framing: Framing) -> io::Result<Fleet> {
        Ok(Fleet {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            ready: Vec::with_capacity(4096),
            conns: Vec::new(),
            encoder: Encoder::new(),
            scratch: vec![0; READ_CHUNK_BYTES],
            flush_list: Vec::new(),
            mask_state: 0x9E37_79B9,
            target,
            framing,
            bytes_read_total: 0,
            watch: None,
            probe_next: 0,
            probe_pass_bytes: 0,
            probe_last_ns: 0,
            welcomed: 0,
            closed: 0,
            failed: 0,
            first_failure: None,
        })
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn state(&self, conn: usize) -> ConnState {
        self.conns[conn].state
    }

    /// Starts a connection (bound to `source` first when given) and, over WebSocket, queues
    /// its upgrade request with `token` (the floor takes none). Returns its index, which is
    /// also its mio token.
    pub fn connect(&mut self, source: Option<Ipv4Addr>, token: &str, status: bool) -> io::Result<usize> {
        let mut stream = connect_nonblocking(source, self.target)?;
        let index = self.conns.len();
        self.poll.registry().register(&mut stream, Token(index), Interest::READABLE | Interest::WRITABLE)?;
        let out = match &self.framing {
            Framing::WebSocket { host, path, format } => {
                let status = if status { "&status=true" } else { "" };
                let format = match format {
                    Format::FlatBuffers => "",
                    Format::Json => "&format=json",
                };
                format!(
                    "GET {path}?token={token}{status}{format} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n"
                )
                .into_bytes()
            }
            Framing::LengthPrefixed => Vec::new(),
        };
        self.conns.push(Conn {
            stream,
            state: ConnState::Connecting,
            pending_in: Vec::new(),
            out,
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

    /// Queues one huddle request (cid 0: none), encoded with the server's codec: FlatBuffers, or
    /// the text a Nakama SDK sends (WebSocket framing only). A JSON request is a fresh string:
    /// this is for setup and the scenarios' few requests, not for party data's hot path, which
    /// queues a template with [`Fleet::send_body`].
    pub fn send(&mut self, conn: usize, cid: u64, request: &Request) {
        let json;
        let body = match self.framing {
            Framing::WebSocket { format: Format::FlatBuffers, .. } => self.encoder.request(Cid(cid), request),
            Framing::WebSocket { format: Format::Json, .. } => {
                let cid = if cid == 0 { CidText::Absent } else { CidText::Number(cid) };
                json = request_frame(&cid, request)
                    .expect("Invariant: the harness sends only requests Nakama's realtime API has a message for");
                json.as_bytes()
            }
            Framing::LengthPrefixed => {
                debug_assert!(false, "requests are huddle's; the floor takes bodies");
                return;
            }
        };
        queue_body(&mut self.conns, &mut self.flush_list, &mut self.mask_state, &self.framing, conn, body);
    }

    /// Queues one message body, already encoded, in this fleet's framing.
    pub fn send_body(&mut self, conn: usize, body: &[u8]) {
        queue_body(&mut self.conns, &mut self.flush_list, &mut self.mask_state, &self.framing, conn, body);
    }

    /// Whether `conn` holds so much unwritten output that nothing more should be queued to it
    /// this turn (the server is not reading it fast enough).
    pub fn out_full(&self, conn: usize) -> bool {
        self.conns[conn].out.len() >= OUT_BYTES_FULL
    }

    /// Starts watching this fleet's loop over the measured window (see `watch.rs`).
    pub fn watch(&mut self, window_start_ns: u64, window_end_ns: u64) {
        self.watch = Some(LoopWatch::new(window_start_ns, window_end_ns));
    }

    /// What the watch saw, if the loop was watched.
    pub fn watched(&mut self) -> Option<super::watch::LoopFigures> {
        let bytes_read_total = self.bytes_read_total;
        self.watch.take().map(|w| w.figures(bytes_read_total))
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
        if self.watch.is_some() {
            // Probed before poll, when the loop has read all it was told of: what is unread now
            // arrived while the loop was busy, not just now.
            let now = now_ns();
            self.probe_backlog(now);
            if let Some(watch) = &mut self.watch {
                watch.before_poll(now, self.bytes_read_total);
            }
        }
        let polled = self.poll.poll(&mut self.events, Some(timeout));
        if let Some(watch) = &mut self.watch {
            watch.after_poll(now_ns());
        }
        match polled {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(
            self.events
                .iter()
                .map(|e| (e.token().0, e.is_readable() || e.is_read_closed() || e.is_error(), e.is_writable())),
        );
        for &(index, readable, writable) in &ready {
            if index >= self.conns.len() {
                continue;
            }
            if writable && self.conns[index].state == ConnState::Connecting {
                match self.conns[index].stream.take_error() {
                    Ok(None) => {
                        self.conns[index].state = match self.framing {
                            Framing::WebSocket { .. } => ConnState::Upgrading,
                            Framing::LengthPrefixed => ConnState::Open,
                        };
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
        self.ready = ready;
        self.flush();
        Ok(())
    }

    /// Probes the receive queues of the next few connections, at most once per
    /// [`BACKLOG_PROBE_INTERVAL_NS`]; a completed pass over all of them is one backlog sample.
    fn probe_backlog(&mut self, now: u64) {
        let Some(watch) = &mut self.watch else {
            return;
        };
        if !watch.probing(now) || now < self.probe_last_ns + BACKLOG_PROBE_INTERVAL_NS || self.conns.is_empty() {
            return;
        }
        self.probe_last_ns = now;
        if self.probe_next >= self.conns.len() {
            self.probe_next = 0; // the fleet shrank since the last probe
            self.probe_pass_bytes = 0;
        }
        for _ in 0..BACKLOG_PROBE_SOCKETS {
            let c = &self.conns[self.probe_next];
            if c.state != ConnState::Closed {
                self.probe_pass_bytes += unread_bytes(&c.stream);
            }
            self.probe_next += 1;
            if self.probe_next == self.conns.len() {
                watch.backlog_pass(self.probe_pass_bytes);
                self.probe_next = 0;
                self.probe_pass_bytes = 0;
            }
        }
    }

    /// Counts connection `index` as started (its welcome, or its upgrade in JSON mode), once.
    fn mark_welcomed(&mut self, index: usize) {
        if !self.conns[index].welcomed {
            self.conns[index].welcomed = true;
            self.welcomed += 1;
        }
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
            self.bytes_read_total += n as u64;
            // Parse from the scratch buffer directly unless a partial frame is carried over.
            // Both buffers are moved out and back (no copy, no allocation) so `parse` can
            // borrow the fleet; the carry keeps its capacity across turns.
            let mut carried = std::mem::take(&mut self.conns[index].pending_in);
            let result = if carried.is_empty() {
                let scratch = std::mem::take(&mut self.scratch);
                let r = self.parse(index, &scratch[..n], on_frame);
                if let Ok(c) = r {
                    carried.extend_from_slice(&scratch[c..n]);
                }
                self.scratch = scratch;
                r.map(|_| ())
            } else {
                carried.extend_from_slice(&self.scratch[..n]);
                let r = self.parse(index, &carried, on_frame);
                if let Ok(consumed) = r {
                    carried.drain(..consumed);
                }
                r.map(|_| ())
            };
            if self.conns[index].state != ConnState::Closed {
                self.conns[index].pending_in = carried;
            }
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
            if matches!(self.framing, Framing::WebSocket { format: Format::Json, .. }) {
                // No welcome in Nakama's vocabulary: the upgrade is the session's start.
                self.mark_welcomed(index);
            }
        }
        while self.conns[index].state == ConnState::Open {
            let header = match self.framing {
                Framing::WebSocket { .. } => parse_server_header(&bytes[at..])?,
                Framing::LengthPrefixed => {
                    floor::parse_header(&bytes[at..])?.map(|len| (0x2, floor::HEADER_BYTES, len))
                }
            };
            let Some((opcode, header, len)) = header else {
                break;
            };
            if bytes.len() - at < header + len {
                break;
            }
            let payload = &bytes[at + header..at + header + len];
            at += header + len;
            let data_opcode = match self.framing {
                Framing::WebSocket { format: Format::Json, .. } => 0x1,
                _ => 0x2,
            };
            match opcode {
                _ if opcode == data_opcode => {
                    self.mark_welcomed(index);
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

/// Appends `body` to connection `conn`'s output in `framing` and lists it for the next flush.
/// A free function over the fleet's fields, so a body borrowed from the fleet's encoder can be
/// queued without a copy.
fn queue_body(
    conns: &mut [Conn],
    flush_list: &mut Vec<usize>,
    mask_state: &mut u32,
    framing: &Framing,
    conn: usize,
    body: &[u8],
) {
    let c = &mut conns[conn];
    if c.state == ConnState::Closed {
        return;
    }
    match framing {
        Framing::WebSocket { format, .. } => {
            *mask_state ^= *mask_state << 13;
            *mask_state ^= *mask_state >> 17;
            *mask_state ^= *mask_state << 5;
            let opcode = match format {
                Format::FlatBuffers => 0x2,
                Format::Json => 0x1,
            };
            push_client_frame(&mut c.out, opcode, body, mask_state.to_be_bytes());
        }
        Framing::LengthPrefixed => floor::push_frame(&mut c.out, &[body]),
    }
    if !c.out_listed {
        c.out_listed = true;
        flush_list.push(conn);
    }
}

/// Bytes waiting unread in a socket's receive queue (`FIONREAD`); 0 if the kernel will not say.
fn unread_bytes(stream: &TcpStream) -> u64 {
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int we own, on a descriptor the stream keeps open.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut waiting) };
    if rc == 0 {
        waiting.max(0) as u64
    } else {
        0
    }
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
    let start = out.len();
    out.extend_from_slice(payload);
    // In place, a byte at a time: the compiler turns this into wide XORs.
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
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
