//! The read path: from a readable connection to heads and frames handed on. One `recv` buffer
//! is shared by the whole loop ([`ReadScratch`]); a connection in its head phase reads through
//! the shared HTTP head reader, an open one through tungstenite, at most `frames_per_turn_max`
//! frames and one `recv` per turn, and a closing one is drained until the peer's FIN.
//!
//! The `conn_bytes` fuzz target drives these same functions over an in-memory stream, so a fix
//! here is a fix there.

use super::conn::{Phase, Transport};
use super::driver::Driver;
use super::http::HeadProgress;
use super::inbound::InboundFrames;
use super::ratelimit::Admission;
use super::ws::{self, Inbound, NoRead, WsIo};
use crate::core::{Millis, SessionId};
use crate::limits::Limits;
use bytes::{Buf, BytesMut};
use std::io::{self, Read};

/// Reads of a closing connection per turn while waiting for its FIN.
const CLOSING_READS_PER_TURN_MAX: usize = 8;

/// How one connection's frame reading ended this turn.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ReadEnd {
    /// Nothing more to read until the next readable edge.
    Drained,
    /// `frames_per_turn_max` reached; read again next turn.
    BudgetSpent,
    /// The connection is closing or gone.
    Closed,
}

impl<S: Transport> Driver<S> {
    /// Reads every listed connection once, each as its phase requires.
    pub(crate) fn read_listed(&mut self, now: Millis) {
        let list = std::mem::take(&mut self.read_list);
        for &id in &list {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.read_listed = false;
            match conn.phase {
                Phase::Head(_) => self.read_head(id, now),
                Phase::Admin(_) => self.read_admin(id, now),
                Phase::Open { .. } => self.read_frames(id, now),
                Phase::Closing { .. } => self.read_closing(id),
            }
        }
        // Reuse the list's allocation unless reading listed connections again meanwhile.
        if self.read_list.is_empty() {
            self.read_list = list;
            self.read_list.clear();
        }
    }

    /// Grows the connection's request head; once it is complete, hands it to its listener kind.
    fn read_head(&mut self, id: SessionId, now: Millis) {
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            let Phase::Head(head) = &mut conn.phase else {
                return;
            };
            if conn.peer_closed {
                conn.read_drained = false; // see the same line in read_frames_until
            }
            let before = head.len();
            let progress = head.read_from(&mut conn.socket, &mut conn.read_drained);
            self.metrics.bytes_received_total += head.len().saturating_sub(before) as u64;
            match progress {
                HeadProgress::Waiting => return,
                HeadProgress::Gone => return self.list_reap(id),
                HeadProgress::Ready => {}
            }
            // A blank line that still parses as incomplete (or a head at its bound) reads on.
            if self.head_complete(id, now) {
                return;
            }
        }
    }

    /// A head is ready to parse: answers it as the connection's listener kind does. Returns false
    /// when the head turned out incomplete and more must be read.
    fn head_complete(&mut self, id: SessionId, now: Millis) -> bool {
        let Some(conn) = self.conns.get(id) else {
            return true;
        };
        match conn.kind {
            super::listener::ListenerKind::Game => self.upgrade_websocket(id, now),
            // Admin connections read whole requests in their own phase (`admin.rs`).
            super::listener::ListenerKind::Admin => true,
        }
    }

    pub(super) fn read_frames(&mut self, id: SessionId, now: Millis) {
        let end = self.read_frames_until(id, now);
        // Whatever the scratch still holds came from this connection: keep it for the
        // connection's next turn, or drop it with the connection.
        let open = self.conns.get_mut(id).filter(|c| c.is_open());
        match (end, open) {
            (ReadEnd::Closed, _) | (_, None) => self.scratch.discard(),
            (ReadEnd::Drained | ReadEnd::BudgetSpent, Some(conn)) => self.scratch.stash_into(&mut conn.pending),
        }
        if end == ReadEnd::BudgetSpent {
            // More may be buffered, and an edge-triggered poll will not say so.
            self.list_read(id);
        }
    }

    /// Reads and handles frames of one open connection until it has nothing more, its frame
    /// budget is spent, or it closes.
    fn read_frames_until(&mut self, id: SessionId, now: Millis) -> ReadEnd {
        // One `recv` per connection per turn: tungstenite loops inside one `read` over frames
        // that complete no message (control frames, fragments). `inbound.rs` bounds how many of
        // those a connection may send; this bounds how many one turn handles (one `recv`'s worth).
        let mut recvs_left = 1u32;
        for _ in 0..self.limits.frames_per_turn_max {
            let limits = &self.limits;
            // Borrow the table alone, so the limits and the scratch stay usable below.
            let Some(conn) = self.conns.get_mut(id) else {
                return ReadEnd::Closed;
            };
            let Phase::Open { ws, .. } = &mut conn.phase else {
                return ReadEnd::Closed;
            };
            if conn.peer_closed {
                // The FIN may have come with the data: read on until the kernel says EOF.
                conn.read_drained = false;
            }
            let queued_before = conn.out.bytes_queued();
            let reader = ConnReader {
                socket: &mut conn.socket,
                drained: &mut conn.read_drained,
                recvs_left: &mut recvs_left,
                pending: &mut conn.pending,
                scratch: &mut self.scratch,
                frames: &mut conn.inbound,
                now,
                limits,
            };
            let result = ws.read(&mut WsIo { reader, out: &mut conn.out });
            // The reader refuses a frame over a frame limit with an IO error; a message that
            // completed before that frame is still handled first.
            let inbound = match conn.inbound.tripped() {
                Some(limit) if result.is_err() => Inbound::FrameLimit(limit),
                _ => ws::classify(result),
            };
            if let Some(deadline) = conn.inbound.assembly_deadline_to_arm(limits.message_assembly_ms_max) {
                self.deadlines.assemblies.push(deadline, id);
            }
            let control_queued = conn.out.bytes_queued() > queued_before;
            if matches!(inbound, Inbound::Binary(_) | Inbound::Text(_) | Inbound::Control | Inbound::PeerClosed) {
                conn.last_heard_at = now;
                conn.ping_outstanding = false;
            }
            let admission = match inbound {
                Inbound::Binary(_) | Inbound::Text(_) => conn.budget.admit(
                    now,
                    limits.requests_per_second_max,
                    limits.requests_burst_max,
                    limits.rate_limited_close_ms,
                ),
                _ => Admission::Allowed,
            };
            // A pong or close reply counts against the output limits like any frame of ours, or
            // a client pinging without reading would grow its queue without bound.
            if control_queued && !self.queued_more(id, now) {
                return ReadEnd::Closed;
            }
            match inbound {
                Inbound::Binary(_) | Inbound::Text(_) if admission == Admission::Abusive => {
                    self.counters.rate_limited_total += 1;
                    self.metrics.limit_trip(super::metrics::Limit::rate_limited_close_ms);
                    log::warn!(
                        "session {id} closed: refused by requests_per_second_max {} for {} ms",
                        self.limits.requests_per_second_max,
                        self.limits.rate_limited_close_ms
                    );
                    self.close_with(id, ws::CLOSE_POLICY, "request rate limit", now);
                    return ReadEnd::Closed;
                }
                Inbound::Binary(_) | Inbound::Text(_) => {
                    self.counters.frames_in_total += 1;
                    if let Some(message) = inbound.client_frame() {
                        if admission == Admission::Refused {
                            self.refuse_rate_limited(id, message, now);
                        } else {
                            self.dispatch_frame(id, message, now);
                        }
                    }
                }
                Inbound::PeerClosed => {
                    // tungstenite queued its close reply; push it into our queue, then linger.
                    if let Some(conn) = self.conns.get_mut(id) {
                        if let Phase::Open { ws, .. } = &mut conn.phase {
                            let _ = ws.flush(&mut WsIo { reader: NoRead, out: &mut conn.out });
                        }
                    }
                    self.enter_closing(id, now);
                    return ReadEnd::Closed;
                }
                Inbound::Control | Inbound::Interrupted => {}
                // Out of this turn's `recv` rather than out of bytes: come back next turn.
                Inbound::Drained if recvs_left == 0 && !self.conns.get(id).is_some_and(|c| c.read_drained) => {
                    return ReadEnd::BudgetSpent
                }
                Inbound::Drained => return ReadEnd::Drained,
                Inbound::FrameLimit(limit) => {
                    self.close_for_frame_limit(id, limit, now);
                    return ReadEnd::Closed;
                }
                Inbound::CloseWith(code, reason) => {
                    log::debug!("session {id}: closing with {}: {reason}", u16::from(code));
                    if code == tungstenite::protocol::frame::coding::CloseCode::Size {
                        self.metrics.limit_trip(super::metrics::Limit::message_bytes_max);
                    }
                    self.close_with(id, code, reason, now);
                    return ReadEnd::Closed;
                }
                Inbound::Gone => {
                    self.list_reap(id);
                    return ReadEnd::Closed;
                }
            }
        }
        ReadEnd::BudgetSpent
    }

    /// Reads and discards what a closing peer still sends, until its FIN or
    /// `closing_discard_bytes_max` (then it is no longer read: its window fills, which stops the
    /// sender, and the linger deadline drops it).
    fn read_closing(&mut self, id: SessionId) {
        let mut discard = [0u8; 2048];
        for _ in 0..CLOSING_READS_PER_TURN_MAX {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            let Phase::Closing { discarded_bytes, .. } = &mut conn.phase else {
                return;
            };
            if *discarded_bytes >= self.limits.closing_discard_bytes_max {
                return; // no more reading: the linger deadline ends it
            }
            match conn.socket.read(&mut discard) {
                Ok(0) => return self.list_reap(id),
                Ok(n) => {
                    self.metrics.bytes_received_total += n as u64;
                    *discarded_bytes += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.list_reap(id),
            }
        }
        self.list_read(id);
    }
}

/// The bytes of one large `recv`, shared by every connection of the loop. Reading a connection
/// fills it once (up to `read_batch_bytes`), tungstenite takes frames out of it, and whatever is
/// left when the loop moves on is copied into that connection's `pending`. So a connection holds
/// no read buffer of its own while idle (only tungstenite's small frame buffer), and a busy one
/// costs one `recv` per turn rather than one per few frames.
pub(crate) struct ReadScratch {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes every `recv` into it brought in (`huddle_bytes_received_total`, with heads).
    pub bytes_read_total: u64,
}

impl ReadScratch {
    pub fn new(bytes: usize) -> ReadScratch {
        ReadScratch { buf: vec![0; bytes.max(1)].into_boxed_slice(), start: 0, end: 0, bytes_read_total: 0 }
    }

    /// Keeps the unread bytes for the connection they came from (read first next time).
    pub fn stash_into(&mut self, pending: &mut BytesMut) {
        pending.extend_from_slice(&self.buf[self.start..self.end]);
        self.discard();
    }

    /// Drops the unread bytes (their connection is closing).
    pub fn discard(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// A connection's byte source, in order: bytes stashed from an earlier turn, the loop's
/// scratch, then one large `recv` into the scratch. After a short `recv` the kernel queue was
/// empty, so it answers WouldBlock without a syscall until the next readable edge (which
/// clears `drained`).
pub(crate) struct ConnReader<'a, S: Read> {
    pub socket: &'a mut S,
    pub drained: &'a mut bool,
    /// `recv`s this reader may still make (the driver allows one per connection per turn).
    pub recvs_left: &'a mut u32,
    pub pending: &'a mut BytesMut,
    pub scratch: &'a mut ReadScratch,
    /// Every byte handed to tungstenite passes the frame accounting first.
    pub frames: &'a mut InboundFrames,
    pub now: Millis,
    pub limits: &'a Limits,
}

impl<S: Read> Read for ConnReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            let n = pass_on(self.frames, self.now, self.limits, &self.pending[..n], buf)?;
            self.pending.advance(n); // O(1): no memmove of the rest
            if self.pending.is_empty() {
                *self.pending = BytesMut::new(); // release it: pending is the exception, not the rule
            }
            return Ok(n);
        }
        if self.scratch.start < self.scratch.end {
            return self.take_scratch(buf);
        }
        if *self.drained || *self.recvs_left == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        *self.recvs_left -= 1;
        let n = match self.socket.read(&mut self.scratch.buf) {
            Ok(n) => n,
            Err(e) => {
                // The kernel has nothing: "drained", so the driver waits for the next edge
                // instead of listing the connection again for another empty turn.
                if e.kind() == io::ErrorKind::WouldBlock {
                    *self.drained = true;
                }
                return Err(e);
            }
        };
        if n > 0 && n < self.scratch.buf.len() {
            *self.drained = true;
        }
        self.scratch.start = 0;
        self.scratch.end = n;
        self.scratch.bytes_read_total += n as u64;
        if n == 0 {
            return Ok(0); // EOF
        }
        self.take_scratch(buf)
    }
}

impl<S: Read> ConnReader<'_, S> {
    /// Hands over what the frame accounting allows of the scratch's unread bytes.
    fn take_scratch(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let unread = &self.scratch.buf[self.scratch.start..self.scratch.end];
        let n = buf.len().min(unread.len());
        let n = pass_on(self.frames, self.now, self.limits, &unread[..n], buf)?;
        self.scratch.start += n;
        Ok(n)
    }
}

/// Copies into `out` the part of `from` (non-empty) that the frame accounting passes, or fails
/// when a frame limit stops it at its first byte: returning `Ok(0)` would read as EOF.
fn pass_on(frames: &mut InboundFrames, now: Millis, limits: &Limits, from: &[u8], out: &mut [u8]) -> io::Result<usize> {
    let n = frames.pass(from, now, limits);
    if n == 0 && !from.is_empty() {
        return Err(io::Error::other("a frame limit was broken"));
    }
    out[..n].copy_from_slice(&from[..n]);
    Ok(n)
}

/// One read of an edge-triggered socket: after a short read, answer WouldBlock without asking
/// the kernel (see `Conn::read_drained`). Used for request heads.
pub(crate) fn read_until_short(socket: &mut impl Read, buf: &mut [u8], drained: &mut bool) -> io::Result<usize> {
    if *drained {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let n = socket.read(buf)?;
    if n > 0 && n < buf.len() {
        *drained = true;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that hands out its chunks one per read, then WouldBlock.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let chunk = self.0.remove(0);
            assert!(chunk.len() <= buf.len(), "the test feeds chunks that fit the scratch");
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn read_all(reader: &mut ConnReader<'_, Chunks>, step: usize) -> (Vec<u8>, io::ErrorKind) {
        let mut got = Vec::new();
        loop {
            let mut buf = vec![0; step];
            match reader.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, e.kind()),
            }
        }
    }

    #[test]
    fn pending_bytes_come_before_new_ones_and_a_short_recv_stops_further_syscalls() {
        let mut scratch = ReadScratch::new(8);
        // The bytes are no WebSocket frames, but their first two read as a header announcing 98
        // bytes of payload, which the rest is: the frame accounting passes all of it.
        let limits = Limits::default();
        let mut frames = InboundFrames::new(&limits, Millis(0));
        let mut socket = Chunks(vec![b"abcdefgh".to_vec(), b"ijk".to_vec(), b"never".to_vec()]);
        let (mut drained, mut pending) = (false, BytesMut::new());
        let mut recvs = 9u32;
        // Turn 1: take 5 bytes of a full 8-byte recv, then the loop moves on.
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
            frames: &mut frames,
            now: Millis(0),
            limits: &limits,
        };
        let mut buf = [0u8; 5];
        assert_eq!(reader.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        scratch.stash_into(&mut pending);
        assert_eq!(&pending[..], b"fgh");
        // Turn 2: the stash first, then a short recv ("ijk"), then WouldBlock without reading "never".
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
            frames: &mut frames,
            now: Millis(0),
            limits: &limits,
        };
        let (got, end) = read_all(&mut reader, 2);
        assert_eq!((got.as_slice(), end), (&b"fghijk"[..], io::ErrorKind::WouldBlock));
        assert!(drained, "a short recv marks the socket drained");
        assert_eq!(socket.0.len(), 1, "no syscall after the short recv");
        assert_eq!(pending.capacity(), 0, "an emptied stash is released");
        // A new edge clears `drained`; the next recv goes to the kernel again.
        drained = false;
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
            frames: &mut frames,
            now: Millis(0),
            limits: &limits,
        };
        assert_eq!(read_all(&mut reader, 16).0, b"never");
    }

    #[test]
    fn a_spent_recv_budget_answers_would_block_without_reading() {
        let mut scratch = ReadScratch::new(4);
        let limits = Limits::default();
        let mut frames = InboundFrames::new(&limits, Millis(0));
        let mut socket: &[u8] = b"abcdefgh";
        let (mut drained, mut pending, mut recvs) = (false, BytesMut::new(), 1u32);
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
            frames: &mut frames,
            now: Millis(0),
            limits: &limits,
        };
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 4, "one full recv");
        assert_eq!(reader.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(!drained, "not drained: the budget, not the kernel, stopped it");
        assert_eq!(socket, b"efgh", "the second recv never happened");
    }
}
