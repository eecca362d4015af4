//! The server's own driver over in-memory connections, for the benches that count what one
//! delivered party-data message costs: allocations (`benches/alloc_party_data.rs`, under a
//! counting global allocator) and instructions (the same bench under callgrind,
//! `scripts/callgrind-delivery.sh`). Sessions upgrade with real tokens and create and join real
//! parties through requests; then each round puts masked client frames into the senders'
//! inbound bytes, marks them readable as a poll would, and runs one driver turn: the read path,
//! tungstenite, the codec, the core, the encoder, the outbound queues and their `writev` flush,
//! everything but the kernel. What the driver writes goes to a sink that only counts it.
#![doc(hidden)]

use crate::auth::{self, Claims, TokenKey};
use crate::core::{Cid, Millis, PartyId, PartyReply, PartyRequest, Reply, Request};
use crate::limits::Limits;
use crate::net::{Driver, ListenerId, ListenerKind, ListenerLimits, Transport};
use crate::wire::{self, Encoder, ServerMessage};
use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

const BENCH_KEY: &str = "bench-key";
/// Simulated time of one round: enough that the keepalive checks run now and then during a
/// long measurement, as they do on a real server.
const ROUND_MS: u64 = 1;
/// Turns the setup may take before it counts as stuck.
const SETUP_TURNS_MAX: usize = 1_000;

/// How party data is sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// With a cid: every message gets its `PartyOk`.
    Acked,
    /// With cid 0 (SPEC P-9): no reply on success.
    FireAndForget,
}

/// How many requests one loop turn carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One sender per turn, in turn: moderate load, where every request wakes the loop alone.
    One,
    /// Every session sends once per turn: the batching a busy loop gets.
    All,
}

/// What measured rounds did, counted by the sink and the bench.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub turns: u64,
    pub requests: u64,
    /// Party-data events written, one per recipient.
    pub deliveries: u64,
    /// Frames the sink received (deliveries and replies).
    pub frames_written: u64,
    pub bytes_written: u64,
}

#[derive(Default)]
struct PeerState {
    /// Ticks on every read and write of any peer of the fan-out, so tests can order them.
    clock: Rc<std::cell::Cell<u64>>,
    /// The clock at this peer's last read that returned bytes, and at its first write since
    /// `first_write_at` was last cleared.
    last_read_at: u64,
    first_write_at: Option<u64>,
    /// Bytes the client sent and the server has not read; emptied (capacity kept) once read.
    inbound: Vec<u8>,
    read_at: usize,
    /// During setup, what the server wrote (to read replies); while measuring, `None`: counted only.
    captured: Option<Vec<u8>>,
    frames_written: u64,
    bytes_written: u64,
}

/// One connection's socket: reads come from the peer's inbound bytes, writes go to its sink.
struct PeerSocket(Rc<RefCell<PeerState>>);

impl Read for PeerSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut peer = self.0.borrow_mut();
        let left = peer.inbound.len() - peer.read_at;
        if left == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = left.min(buf.len());
        peer.last_read_at = peer.clock.get();
        peer.clock.set(peer.last_read_at + 1);
        let at = peer.read_at;
        buf[..n].copy_from_slice(&peer.inbound[at..at + n]);
        peer.read_at += n;
        if peer.read_at == peer.inbound.len() {
            peer.inbound.clear();
            peer.read_at = 0;
        }
        Ok(n)
    }
}

impl Write for PeerSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Takes everything: each slice is one whole frame (nothing is ever left half-written).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut peer = self.0.borrow_mut();
        let now = peer.clock.get();
        peer.clock.set(now + 1);
        peer.first_write_at.get_or_insert(now);
        let mut n = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            n += buf.len();
            peer.frames_written += 1;
            if let Some(captured) = &mut peer.captured {
                captured.extend_from_slice(buf);
            }
        }
        peer.bytes_written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for PeerSocket {
    fn shutdown_write(&mut self) {}
}

struct Session {
    slot: usize,
    peer: Rc<RefCell<PeerState>>,
    /// This session's party-data request as a masked client frame, sent every time it sends.
    data_frame: Vec<u8>,
}

/// Parties of one size on one driver, every member connected over an in-memory socket.
pub struct PartyFanout {
    driver: Driver<PeerSocket>,
    sessions: Vec<Session>,
    party_size: usize,
    mode: Mode,
    now: Millis,
    /// The next sender of a `Shape::One` round.
    next_sender: usize,
}

impl PartyFanout {
    /// `parties` parties of `party_size` members, each member sending `payload_bytes` of party
    /// data per message in `mode`.
    pub fn new(parties: usize, party_size: usize, payload_bytes: usize, mode: Mode) -> PartyFanout {
        PartyFanout::with_limits(parties, party_size, payload_bytes, mode, |_| {})
    }

    /// As [`PartyFanout::new`], with the server's limits changed by `adjust` (the bench's own
    /// settings, many connections and no request rate limit, come first).
    pub fn with_limits(
        parties: usize,
        party_size: usize,
        payload_bytes: usize,
        mode: Mode,
        adjust: impl FnOnce(&mut Limits),
    ) -> PartyFanout {
        assert!(party_size >= 2, "a delivery needs another member");
        let count = parties * party_size;
        let mut limits = Limits {
            connections_max: count.max(16),
            // The bench measures the delivery path, not the request rate limiter.
            requests_per_second_max: 10_000_000,
            requests_burst_max: 10_000_000,
            ..Limits::default()
        };
        adjust(&mut limits);
        limits.validate().expect("bench limits are valid");
        let key = TokenKey::new(BENCH_KEY);
        let mut fanout = PartyFanout {
            driver: Driver::new(limits.clone(), key.clone(), [3; 32]),
            sessions: Vec::with_capacity(count),
            party_size,
            mode,
            now: Millis(1),
            next_sender: 0,
        };
        let listener_limits = ListenerLimits::game(&limits);
        let clock = Rc::new(std::cell::Cell::new(0));
        for user in 0..count {
            let peer = Rc::new(RefCell::new(PeerState {
                clock: clock.clone(),
                captured: Some(Vec::new()),
                ..PeerState::default()
            }));
            peer.borrow_mut().inbound = upgrade_request(user, &key).into_bytes();
            let id = fanout.driver.insert(
                PeerSocket(peer.clone()),
                std::net::Ipv4Addr::LOCALHOST.into(),
                ListenerId(0),
                ListenerKind::Game,
                &listener_limits,
                fanout.now,
            );
            fanout.sessions.push(Session { slot: id.slot() as usize, peer, data_frame: Vec::new() });
        }
        fanout.settle(|peer| peer.captured.as_ref().is_some_and(|c| c.starts_with(b"HTTP/1.1 101 ")));
        for party in 0..parties {
            let members = party * party_size..(party + 1) * party_size;
            let leader = members.start;
            let create = PartyRequest::Create {
                open: true,
                max_size: party_size as u32,
                label: String::new(),
                hidden: false,
                lobby: Default::default(),
            };
            let party_id = fanout.request_party(leader, create);
            for member in members.clone().skip(1) {
                fanout.request_party(member, PartyRequest::Join { party_id });
            }
            let cid = match mode {
                Mode::Acked => Cid(7),
                Mode::FireAndForget => Cid::NONE,
            };
            let data = bytes::Bytes::from(vec![0xab; payload_bytes]);
            for member in members {
                let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: data.clone() });
                fanout.sessions[member].data_frame = client_frame(Encoder::new().request(cid, &request));
            }
        }
        for session in &fanout.sessions {
            session.peer.borrow_mut().captured = None;
        }
        fanout
    }

    /// Rounds before measuring, so every queue, pool and table reaches its working size.
    pub fn warm_up(&mut self, shape: Shape, rounds: usize) {
        self.rounds(shape, rounds);
    }

    /// Runs `rounds` rounds of `shape` and counts what they did. Kept out of line, so callgrind
    /// can count the instructions of exactly these rounds (`--toggle-collect`).
    #[inline(never)]
    pub fn measured_rounds(&mut self, shape: Shape, rounds: usize) -> Tally {
        self.rounds(shape, rounds)
    }

    fn rounds(&mut self, shape: Shape, rounds: usize) -> Tally {
        let before = self.written();
        let mut tally = Tally::default();
        for _ in 0..rounds {
            let senders = match shape {
                Shape::One => {
                    let sender = self.next_sender;
                    self.next_sender = (self.next_sender + 1) % self.sessions.len();
                    sender..sender + 1
                }
                Shape::All => 0..self.sessions.len(),
            };
            tally.requests += senders.len() as u64;
            tally.deliveries += (senders.len() * (self.party_size - 1)) as u64;
            for sender in senders {
                let session = &self.sessions[sender];
                session.peer.borrow_mut().inbound.extend_from_slice(&session.data_frame);
                self.driver.note_ready(session.slot, true, true, false, false);
            }
            self.turn();
            tally.turns += 1;
        }
        let after = self.written();
        tally.frames_written = after.0 - before.0;
        tally.bytes_written = after.1 - before.1;
        let replies = if self.mode == Mode::Acked { tally.requests } else { 0 };
        assert_eq!(tally.frames_written, tally.deliveries + replies, "every delivery and reply was written");
        tally
    }

    fn turn(&mut self) {
        self.now = self.now.saturating_add(ROUND_MS);
        self.driver.turn(self.now, |_, _, _| {});
    }

    /// Frames and bytes every sink received so far.
    fn written(&self) -> (u64, u64) {
        self.sessions.iter().fold((0, 0), |(frames, bytes), s| {
            let peer = s.peer.borrow();
            (frames + peer.frames_written, bytes + peer.bytes_written)
        })
    }

    /// Turns with every connection readable until `done` holds for every peer.
    fn settle(&mut self, done: impl Fn(&PeerState) -> bool) {
        for _ in 0..SETUP_TURNS_MAX {
            if self.sessions.iter().all(|s| done(&s.peer.borrow())) {
                return;
            }
            for session in &self.sessions {
                self.driver.note_ready(session.slot, true, true, false, false);
            }
            self.turn();
        }
        panic!("the bench setup did not settle within {SETUP_TURNS_MAX} turns");
    }

    /// Sends a party request from session `from` and returns the party its reply names.
    fn request_party(&mut self, from: usize, request: PartyRequest) -> PartyId {
        let peer = self.sessions[from].peer.clone();
        peer.borrow_mut().captured = Some(Vec::new());
        let frame = client_frame(Encoder::new().request(Cid(1), &Request::Party(request)));
        peer.borrow_mut().inbound.extend_from_slice(&frame);
        self.driver.note_ready(self.sessions[from].slot, true, true, false, false);
        self.turn();
        let written = peer.borrow_mut().captured.take().unwrap_or_default();
        peer.borrow_mut().captured = None;
        let verifier = wire::verifier_options(Limits::default().message_bytes_max);
        for payload in server_payloads(&written) {
            if let Ok(ServerMessage::Reply { cid: Cid(1), result }) = wire::decode_server_message(payload, &verifier) {
                match result {
                    Ok(Reply::Party(PartyReply::Info(snapshot))) => return snapshot.party_id,
                    other => panic!("bench setup: unexpected reply {other:?}"),
                }
            }
        }
        panic!("bench setup: no reply to a party request");
    }
}

fn upgrade_request(user: usize, key: &TokenKey) -> String {
    let claims = Claims {
        user_id: format!("bench-user-{user}"),
        username: format!("Bench{user}"),
        expires_at_unix_s: u64::MAX / 2,
    };
    format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        auth::mint(&claims, key)
    )
}

/// `payload` as a masked binary client frame; a zero mask leaves the payload as it is.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x82];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(payload);
    frame
}

/// The payloads of the binary frames in what the server wrote after its 101 response.
fn server_payloads(mut bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.starts_with(b"HTTP/") {
        let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole response head");
        bytes = &bytes[head + 4..];
    }
    let mut payloads = Vec::new();
    while bytes.len() >= 2 {
        let (len, header) = match bytes[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize, 10),
            len => (usize::from(len), 2),
        };
        if bytes[0] & 0x0F == 0x2 {
            payloads.push(&bytes[header..header + len]);
        }
        bytes = &bytes[header + len..];
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether, in one turn where every session sent, some connection was written before the
    /// last connection was read.
    fn wrote_before_the_last_read(flush_batch_bytes: usize) -> bool {
        let mut fanout = PartyFanout::with_limits(8, 4, 64, Mode::Acked, |limits| {
            limits.flush_batch_bytes = flush_batch_bytes;
        });
        for session in &fanout.sessions {
            session.peer.borrow_mut().first_write_at = None;
        }
        fanout.measured_rounds(Shape::All, 1);
        let peers = fanout.sessions.iter().map(|s| s.peer.borrow());
        let (last_read, first_write) = peers.fold((0, u64::MAX), |(read, write), peer| {
            (read.max(peer.last_read_at), write.min(peer.first_write_at.unwrap_or(u64::MAX)))
        });
        first_write < last_read
    }

    /// A turn's output is written as it reaches `flush_batch_bytes` per waiting connection,
    /// not held to the turn's end; with 0 it is held, as it always was.
    #[test]
    fn a_long_turn_writes_its_first_replies_before_its_last_read() {
        assert!(wrote_before_the_last_read(64), "a batch of 64 bytes per connection is flushed mid-turn");
        assert!(!wrote_before_the_last_read(0), "with 0, nothing is written before the turn's reads end");
        assert!(!wrote_before_the_last_read(1 << 20), "a batch never reached waits for the turn's end");
    }

    /// The bench's driver really delivers: every member but the sender gets each message, and
    /// the sender its acknowledgement (or nothing, fire-and-forget), in both shapes.
    #[test]
    fn every_round_delivers_to_every_other_member() {
        for mode in [Mode::Acked, Mode::FireAndForget] {
            let mut fanout = PartyFanout::new(2, 3, 16, mode);
            let one = fanout.measured_rounds(Shape::One, 6);
            assert_eq!((one.turns, one.requests, one.deliveries), (6, 6, 12), "{mode:?}");
            let all = fanout.measured_rounds(Shape::All, 2);
            assert_eq!((all.turns, all.requests, all.deliveries), (2, 12, 24), "{mode:?}");
        }
    }
}
