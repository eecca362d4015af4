//! The floor: a raw-TCP fan-out server with huddle's loop shape and nothing else, so every
//! figure of huddle can be read beside what moving the same messages through the kernel costs
//! on this machine (SPEC §7). It runs as the hidden `huddle-load floor-server` subcommand, in a
//! process of its own pinned to one CPU, so its CPU time and memory are read from `/proc`
//! exactly like the server's; the harness starts it ([`FloorProcess`]) and kills it at the end.
//!
//! # The loop (huddle's shape)
//!
//! One mio `Poll` on one thread: poll; accept up to [`ACCEPTS_PER_TURN_MAX`]; read each
//! readable connection once (one `recv` of up to [`READ_BATCH_BYTES`] into a buffer the loop
//! shares, a connection whose read filled it is read again next turn) and handle every complete
//! frame at once, appending deliveries to the recipients' output; then write every connection
//! with output once (one `write` of its whole contiguous output, leftovers waiting for the
//! writable edge). No WebSocket, no encoding, no per-message allocation in steady state.
//!
//! # The protocol
//!
//! Every frame, both ways, is a `u32` little-endian body length and the body; the body's first
//! byte is its kind:
//!
//! | kind | direction | body after the kind | the floor answers |
//! | --- | --- | --- | --- |
//! | `W` welcome | floor → client, on accept | — | |
//! | `J` join | client → floor | party number, `u32` LE | `A` to the sender |
//! | `D` data | client → floor | payload | `P` + payload to every other member, `A` to the sender |
//! | `F` data, fire-and-forget | client → floor | payload | `P` + payload to every other member |
//! | `A` ack | floor → client | — | |
//! | `P` delivery | floor → client | the payload as sent | |
//!
//! Membership is by the join message, not connection order, so sessions spread over worker
//! processes need no coordination: the harness joins each session to its global party number.
//! The payload is relayed untouched (it carries the harness's send stamp). A frame the floor
//! does not understand, a second join, data before a join, or a full party closes the
//! connection.

use super::Options;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub(crate) const KIND_WELCOME: u8 = b'W';
pub(crate) const KIND_JOIN: u8 = b'J';
pub(crate) const KIND_DATA_ACKED: u8 = b'D';
pub(crate) const KIND_DATA_FIRE: u8 = b'F';
pub(crate) const KIND_ACK: u8 = b'A';
pub(crate) const KIND_DELIVERY: u8 = b'P';

/// Bytes of a frame's length prefix.
pub(crate) const HEADER_BYTES: usize = 4;
/// A frame body larger than this is a protocol error: the harness's payloads are far smaller
/// (and huddle's frame limit is of the same order).
pub(crate) const BODY_BYTES_MAX: usize = 1 << 20;
/// Connections the floor holds at once: more than one process may open here (20,000 files),
/// so the bound never refuses a harness run, only a runaway.
const CONNECTIONS_MAX: usize = 65_536;
/// Party numbers the floor accepts: the harness numbers parties densely from 0 and a party has
/// at least two members, so its numbers stay below half the connections. The party table is a
/// plain vector indexed by number, the cheapest lookup there is.
const PARTY_NUMBERS_MAX: usize = CONNECTIONS_MAX;
/// Members of one party; the harness refuses `--party-size` above the same number.
const PARTY_MEMBERS_MAX: usize = 256;
/// huddle's default `accepts_per_turn_max`, so both accept connection storms alike.
const ACCEPTS_PER_TURN_MAX: usize = 256;
/// huddle's default `read_batch_bytes`: one shared buffer each `recv` lands in.
const READ_BATCH_BYTES: usize = 64 * 1024;
/// huddle's events per poll.
const EVENTS_PER_POLL: usize = 1024;
/// Unwritten output a connection may hold before the floor cuts it off as a reader that
/// stopped reading: seconds of deliveries at any rate the harness offers.
const OUT_BYTES_MAX: usize = 64 << 20;
const LISTENER: Token = Token(usize::MAX);

/// Appends one frame whose body is the concatenation of `parts`.
pub(crate) fn push_frame(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= BODY_BYTES_MAX, "a frame body of {len} bytes");
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// The body length of the frame at the start of `bytes`, or `None` while its header is
/// incomplete.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Option<usize>, String> {
    let Some(header) = bytes.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(header.try_into().expect("Invariant: HEADER_BYTES bytes")) as usize;
    if len == 0 || len > BODY_BYTES_MAX {
        return Err(format!("floor frame body of {len} bytes"));
    }
    Ok(Some(len))
}

/// The body of a join to party `party`.
pub(crate) fn join_body(party: u32) -> [u8; 5] {
    let p = party.to_le_bytes();
    [KIND_JOIN, p[0], p[1], p[2], p[3]]
}

struct FloorConn {
    stream: TcpStream,
    party: Option<u32>,
    /// A partial frame carried to the next read.
    carry: Vec<u8>,
    out: Vec<u8>,
    read_listed: bool,
    flush_listed: bool,
    closing: bool,
}

struct Floor {
    poll: Poll,
    listener: TcpListener,
    accept_ready: bool,
    conns: Vec<Option<FloorConn>>,
    free: Vec<usize>,
    /// Members of each party by party number, in join order.
    parties: Vec<Vec<usize>>,
    read_list: Vec<usize>,
    /// Connections whose last read filled the batch: read again next turn.
    read_again: Vec<usize>,
    flush_list: Vec<usize>,
    close_list: Vec<usize>,
    scratch: Vec<u8>,
}

/// The hidden `floor-server` subcommand: binds `--floor-addr` (default 127.0.0.1:0), pins
/// itself to `--floor-cpu` (default 0), prints `LISTENING <addr>` and serves until killed.
pub(crate) fn serve(o: &Options) -> Result<(), String> {
    // The floor must not outlive the harness that started it, even if the harness is killed.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and has no memory arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    let cpu = o.floor_cpu.unwrap_or(0);
    huddle::os::pin_current_thread(cpu).map_err(|e| format!("floor: pinning to CPU {cpu}: {e}"))?;
    let listen = o.floor_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut listener = TcpListener::bind(listen).map_err(|e| format!("floor: bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let poll = Poll::new().map_err(|e| format!("floor: poll: {e}"))?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE).map_err(|e| e.to_string())?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "LISTENING {addr}").and_then(|_| out.flush()).map_err(|e| format!("floor: stdout: {e}"))?;
    }
    let mut floor = Floor {
        poll,
        listener,
        accept_ready: true,
        conns: Vec::new(),
        free: Vec::new(),
        parties: Vec::new(),
        read_list: Vec::new(),
        read_again: Vec::new(),
        flush_list: Vec::new(),
        close_list: Vec::new(),
        scratch: vec![0; READ_BATCH_BYTES],
    };
    floor.run().map_err(|e| format!("floor: {e}"))
}

impl Floor {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            let work_left = self.accept_ready || !self.read_list.is_empty();
            let timeout = work_left.then_some(std::time::Duration::ZERO);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready = true,
                    Token(slot) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.list_read(slot);
                        }
                        // Edge-triggered EPOLLOUT comes with every EPOLLIN: list only real work.
                        let has_output = self.conn(slot).is_some_and(|c| !c.out.is_empty());
                        if event.is_writable() && has_output {
                            list(&mut self.conns, &mut self.flush_list, slot, |c| &mut c.flush_listed);
                        }
                    }
                }
            }
            if self.accept_ready {
                self.accept()?;
            }
            self.read_listed();
            self.flush_listed();
            self.reap();
        }
    }

    fn conn(&self, slot: usize) -> Option<&FloorConn> {
        self.conns.get(slot).and_then(Option::as_ref).filter(|c| !c.closing)
    }

    fn list_read(&mut self, slot: usize) {
        list(&mut self.conns, &mut self.read_list, slot, |c| &mut c.read_listed);
    }

    fn accept(&mut self) -> io::Result<()> {
        for _ in 0..ACCEPTS_PER_TURN_MAX {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or a connection reset before accept: drop it, go on.
                Err(e) if e.raw_os_error().is_some_and(|c| c == libc::EMFILE || c == libc::ENFILE) => {
                    eprintln!("huddle-load floor: accept: {e}");
                    self.accept_ready = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            if self.conns.len() - self.free.len() >= CONNECTIONS_MAX {
                eprintln!("huddle-load floor: refusing a connection over {CONNECTIONS_MAX}");
                continue;
            }
            // As huddle: small frames are the whole workload.
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or(self.conns.len());
            self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)?;
            let mut out = Vec::new();
            push_frame(&mut out, &[&[KIND_WELCOME]]);
            let conn = FloorConn {
                stream,
                party: None,
                carry: Vec::new(),
                out,
                read_listed: false,
                flush_listed: false,
                closing: false,
            };
            if slot == self.conns.len() {
                self.conns.push(Some(conn));
            } else {
                self.conns[slot] = Some(conn);
            }
            list(&mut self.conns, &mut self.flush_list, slot, |c| &mut c.flush_listed);
        }
        Ok(())
    }

    /// One `recv` per listed connection, every complete frame handled.
    fn read_listed(&mut self) {
        let list = std::mem::take(&mut self.read_list);
        for &slot in &list {
            let Some(conn) = self.conns[slot].as_mut().filter(|c| !c.closing) else {
                continue;
            };
            conn.read_listed = false;
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.close(slot);
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.read_again.push(slot);
                    continue;
                }
                Err(_) => {
                    self.close(slot);
                    continue;
                }
            };
            // Moved out and back (no copy): frames are handled while the rest of the floor is
            // borrowed; the carry keeps its capacity.
            let scratch = std::mem::take(&mut self.scratch);
            let mut carry = std::mem::take(&mut conn.carry);
            let handled = if carry.is_empty() {
                let r = self.handle_frames(slot, &scratch[..n]);
                if let Ok(consumed) = r {
                    carry.extend_from_slice(&scratch[consumed..n]);
                }
                r
            } else {
                carry.extend_from_slice(&scratch[..n]);
                let r = self.handle_frames(slot, &carry);
                if let Ok(consumed) = r {
                    carry.drain(..consumed);
                }
                r
            };
            self.scratch = scratch;
            match handled {
                Ok(_) => {
                    if let Some(conn) = self.conns[slot].as_mut() {
                        conn.carry = carry;
                    }
                    if n == READ_BATCH_BYTES {
                        // More may be waiting, and an edge-triggered poll will not say so.
                        self.read_again.push(slot);
                    }
                }
                Err(why) => {
                    eprintln!("huddle-load floor: closing connection {slot}: {why}");
                    self.close(slot);
                }
            }
        }
        self.read_list = list;
        self.read_list.clear();
        for slot in std::mem::take(&mut self.read_again) {
            self.list_read(slot);
        }
    }

    /// Handles every complete frame of `bytes` from connection `from`; returns the bytes
    /// consumed.
    fn handle_frames(&mut self, from: usize, bytes: &[u8]) -> Result<usize, String> {
        let mut at = 0;
        while let Some(len) = parse_header(&bytes[at..])? {
            if bytes.len() - at < HEADER_BYTES + len {
                break;
            }
            let body = &bytes[at + HEADER_BYTES..at + HEADER_BYTES + len];
            at += HEADER_BYTES + len;
            self.handle(from, body)?;
            if self.conn(from).is_none() {
                break; // cut off while queueing to itself
            }
        }
        Ok(at)
    }

    fn handle(&mut self, from: usize, body: &[u8]) -> Result<(), String> {
        match body[0] {
            KIND_JOIN => {
                let party: [u8; 4] = body.get(1..5).and_then(|p| p.try_into().ok()).ok_or("join without a party")?;
                let party = u32::from_le_bytes(party);
                let number = party as usize;
                if number >= PARTY_NUMBERS_MAX {
                    return Err(format!("party number {party} over {PARTY_NUMBERS_MAX}"));
                }
                let conn = self.conns[from].as_mut().expect("Invariant: a handled frame's connection exists");
                if conn.party.is_some() {
                    return Err("a second join".into());
                }
                if self.parties.len() <= number {
                    self.parties.resize_with(number + 1, Vec::new);
                }
                let members = &mut self.parties[number];
                if members.len() >= PARTY_MEMBERS_MAX {
                    return Err(format!("party {party} is full ({PARTY_MEMBERS_MAX})"));
                }
                members.push(from);
                conn.party = Some(party);
                self.queue(from, &[&[KIND_ACK]]);
            }
            kind @ (KIND_DATA_ACKED | KIND_DATA_FIRE) => {
                let conn = self.conns[from].as_ref().expect("Invariant: a handled frame's connection exists");
                let party = conn.party.ok_or("data before a join")?;
                // Invariant: a connection's party is set only by a join that sized the table.
                let members = &self.parties[party as usize];
                for &member in members {
                    if member != from {
                        queue_to(
                            &mut self.conns,
                            &mut self.flush_list,
                            &mut self.close_list,
                            member,
                            &[&[KIND_DELIVERY], &body[1..]],
                        );
                    }
                }
                if kind == KIND_DATA_ACKED {
                    self.queue(from, &[&[KIND_ACK]]);
                }
            }
            other => return Err(format!("unknown frame kind {other:#04x}")),
        }
        Ok(())
    }

    fn queue(&mut self, to: usize, parts: &[&[u8]]) {
        queue_to(&mut self.conns, &mut self.flush_list, &mut self.close_list, to, parts);
    }

    /// One write per listed connection: its whole output, leftovers for the writable edge.
    fn flush_listed(&mut self) {
        let list = std::mem::take(&mut self.flush_list);
        for &slot in &list {
            let Some(conn) = self.conns[slot].as_mut().filter(|c| !c.closing) else {
                continue;
            };
            conn.flush_listed = false;
            if conn.out.is_empty() {
                continue;
            }
            match conn.stream.write(&conn.out) {
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.close(slot),
            }
        }
        self.flush_list = list;
        self.flush_list.clear();
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].as_mut() {
            if !conn.closing {
                conn.closing = true;
                self.close_list.push(slot);
            }
        }
    }

    /// Removes the connections closed this turn, after every list that may name them ran.
    fn reap(&mut self) {
        for slot in std::mem::take(&mut self.close_list) {
            let Some(mut conn) = self.conns[slot].take() else {
                continue;
            };
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if let Some(party) = conn.party {
                self.parties[party as usize].retain(|&m| m != slot);
            }
            self.free.push(slot);
        }
    }
}

/// Lists `slot` once in `list`, through the flag `listed` picks.
fn list(
    conns: &mut [Option<FloorConn>],
    list: &mut Vec<usize>,
    slot: usize,
    listed: impl Fn(&mut FloorConn) -> &mut bool,
) {
    if let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut).filter(|c| !c.closing) {
        let flag = listed(conn);
        if !*flag {
            *flag = true;
            list.push(slot);
        }
    }
}

/// Appends a frame to `to`'s output and lists it for this turn's flush; a connection already
/// holding [`OUT_BYTES_MAX`] is cut off instead.
fn queue_to(
    conns: &mut [Option<FloorConn>],
    flush_list: &mut Vec<usize>,
    close_list: &mut Vec<usize>,
    to: usize,
    parts: &[&[u8]],
) {
    let Some(conn) = conns.get_mut(to).and_then(Option::as_mut).filter(|c| !c.closing) else {
        return;
    };
    if conn.out.len() >= OUT_BYTES_MAX {
        eprintln!("huddle-load floor: cutting off connection {to}: {} bytes unread", conn.out.len());
        conn.closing = true;
        close_list.push(to);
        return;
    }
    push_frame(&mut conn.out, parts);
    if !conn.flush_listed {
        conn.flush_listed = true;
        flush_list.push(to);
    }
}

/// A floor server process started by this harness; killed and reaped when dropped.
pub(crate) struct FloorProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl FloorProcess {
    /// Starts `huddle-load floor-server` on a free loopback port, pinned to `--floor-cpu`, else
    /// to the CPU the huddle server (`--server-pid`) is pinned to, else to CPU 0.
    pub(crate) fn start(o: &Options) -> Result<FloorProcess, String> {
        let cpu = match (o.floor_cpu, o.server_pid) {
            (Some(cpu), _) => cpu,
            (None, Some(pid)) => server_cpu(pid)?,
            (None, None) => 0,
        };
        let exe = match &o.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        };
        let mut child = Command::new(&exe)
            .args(["floor-server", "--floor-cpu", &cpu.to_string(), "--floor-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the floor server ({}): {e}", exe.display()))?;
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("Invariant: stdout was piped")).read_line(&mut line);
        let addr = read.ok().and_then(|_| line.trim().strip_prefix("LISTENING ")?.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let status = child.wait().map_err(|e| e.to_string())?;
            return Err(format!("the floor server did not start ({status}): {line:?}"));
        };
        let pid = child.id();
        eprintln!("huddle-load: floor server {pid} on {addr}, pinned to CPU {cpu}");
        Ok(FloorProcess { child, addr, pid })
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU a process is pinned to: the first of its `Cpus_allowed_list` (with a note when it
/// may run on more than one, i.e. is not pinned).
fn server_cpu(pid: u32) -> Result<usize, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("--server-pid: {e}"))?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .ok_or("--server-pid: no Cpus_allowed_list in /proc/PID/status")?;
    let (cpu, pinned) = first_cpu(list).ok_or_else(|| format!("--server-pid: Cpus_allowed_list {list:?}"))?;
    if !pinned {
        eprintln!("huddle-load: the server may run on CPUs {list}; pinning the floor to CPU {cpu} (give --floor-cpu to choose)");
    }
    Ok(cpu)
}

/// The first CPU of a kernel CPU list (`"3"`, `"0-1"`, `"0,2-3"`) and whether it is the only one.
fn first_cpu(list: &str) -> Option<(usize, bool)> {
    let first = list.split(',').next()?.trim();
    let (lo, hi) = match first.split_once('-') {
        Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
        None => {
            let cpu: usize = first.parse().ok()?;
            (cpu, cpu)
        }
    };
    Some((lo, lo == hi && !list.contains(',')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_name_their_first_cpu_and_whether_it_is_alone() {
        assert_eq!(first_cpu("0"), Some((0, true)));
        assert_eq!(first_cpu("3"), Some((3, true)));
        assert_eq!(first_cpu("0-1"), Some((0, false)));
        assert_eq!(first_cpu("2,5"), Some((2, false)));
        assert_eq!(first_cpu("4-7,9"), Some((4, false)));
        assert_eq!(first_cpu(""), None);
        assert_eq!(first_cpu("x"), None);
    }

    #[test]
    fn frames_round_trip_and_bad_lengths_are_refused() {
        let mut out = Vec::new();
        push_frame(&mut out, &[&[KIND_DELIVERY], b"stamp123"]);
        assert_eq!(parse_header(&out).unwrap(), Some(9));
        assert_eq!(&out[HEADER_BYTES..], b"Pstamp123");
        assert_eq!(parse_header(&out[..3]).unwrap(), None);
        assert!(parse_header(&[0, 0, 0, 0]).is_err());
        assert!(parse_header(&((BODY_BYTES_MAX + 1) as u32).to_le_bytes()).is_err());
        assert_eq!(join_body(0x0102_0304), [KIND_JOIN, 4, 3, 2, 1]);
    }
}
