//! The outbound queue and its limits. A connection's queue holds whole frames as refcounted
//! `Bytes`, so one event framed once sits in every recipient's queue without a copy; the queue's
//! byte count is the single truth for the slow-consumer limits (hard, and soft for a duration,
//! as Redis's `client-output-buffer-limit`). Listed connections are flushed with `writev`, up to
//! a byte bound per turn; a closing one is half-closed once its last byte is out.

use super::conn::{Conn, Phase, Transport};
use super::driver::Driver;
use super::ws::CLOSE_POLICY;
use crate::core::{Millis, SessionId};
use crate::limits::Limits;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// After bytes were added to `conn`'s queue: false when the hard limit is passed or the soft one
/// has been for too long (the caller cuts the connection off), else lists it for flushing.
/// Takes the driver's parts rather than the driver, so a sender that already holds the
/// connection needs no second lookup.
pub(super) fn output_within_limits<S>(
    conn: &mut Conn<S>,
    limits: &Limits,
    flush_list: &mut Vec<SessionId>,
    now: Millis,
) -> bool {
    let queued = conn.out.bytes_queued();
    let soft_expired = queued > limits.outbound_soft_bytes_max && {
        let since = *conn.soft_exceeded_since.get_or_insert(now);
        now.saturating_sub(since) >= limits.outbound_soft_duration_ms
    };
    if queued > limits.outbound_bytes_max || soft_expired {
        return false;
    }
    if !conn.flush_listed {
        conn.flush_listed = true;
        flush_list.push(conn.id);
    }
    true
}

impl<S: Transport> Driver<S> {
    /// After bytes were added to a connection's queue (tungstenite's pongs and close replies):
    /// enforce the output limits, else list it for flushing. Returns false when the connection
    /// was cut off.
    pub(super) fn queued_more(&mut self, id: SessionId, now: Millis) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        if output_within_limits(conn, &self.limits, &mut self.flush_list, now) {
            return true;
        }
        self.cut_off_slow_consumer(id, now);
        false
    }

    /// Redis's `client-output-buffer-limit`: a client that cannot keep up loses its unsent
    /// frames and its connection, with one warning; nobody else notices.
    pub(super) fn cut_off_slow_consumer(&mut self, id: SessionId, now: Millis) {
        let Some(conn) = self.conns.get_mut(id) else { return };
        let queued = conn.out.bytes_queued();
        let soft_for_ms = conn.soft_exceeded_since.map_or(0, |since| now.saturating_sub(since));
        conn.out.truncate_unstarted();
        self.counters.slow_consumers_total += 1;
        self.metrics.limit_trip(if queued > self.limits.outbound_bytes_max {
            super::metrics::Limit::outbound_bytes_max
        } else {
            super::metrics::Limit::outbound_soft_bytes_max
        });
        log::warn!(
            "slot {} cut off as a slow consumer: {queued} bytes queued (outbound_bytes_max {}, over outbound_soft_bytes_max {} for {soft_for_ms} ms)",
            id.slot(),
            self.limits.outbound_bytes_max,
            self.limits.outbound_soft_bytes_max
        );
        self.close_with(id, CLOSE_POLICY, "output buffer limit", now);
    }

    /// Writes every listed connection's queue, up to `write_bytes_per_turn_max` each.
    pub(crate) fn flush_listed(&mut self, now: Millis) {
        let list = std::mem::take(&mut self.flush_list);
        let budget = self.limits.write_bytes_per_turn_max;
        let soft_bytes_max = self.limits.outbound_soft_bytes_max;
        for &id in &list {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.flush_listed = false;
            let written = conn.out.write_to(&mut conn.socket, budget);
            if let Ok(flushed) = &written {
                self.metrics.bytes_sent_total += flushed.bytes_written as u64;
            }
            match written {
                Ok(flushed) if !flushed.blocked && !conn.out.is_empty() => {
                    // Budget spent, socket still writable: no edge will come, so list it again.
                    conn.flush_listed = true;
                    self.flush_list.push(id);
                }
                Ok(_) => {}
                Err(e) => {
                    log::debug!("slot {}: write failed: {e}", id.slot());
                    // Nothing more can reach this peer; leave Open so the core forgets it now.
                    self.enter_closing(id, now);
                    self.list_reap(id);
                    continue;
                }
            }
            if conn.out.bytes_queued() <= soft_bytes_max {
                conn.soft_exceeded_since = None;
            }
            if let Phase::Closing { write_shut, .. } = &mut conn.phase {
                if conn.out.is_empty() && !*write_shut {
                    *write_shut = true;
                    // Our FIN after the last byte; the peer's FIN (or the linger deadline) ends it.
                    conn.socket.shutdown_write();
                }
            }
        }
        if self.flush_list.is_empty() {
            self.flush_list = list;
            self.flush_list.clear();
        }
    }
}

/// iovecs per `writev`: enough to drain a typical turn's backlog in one call, few enough to
/// build on the stack.
const IOVECS_PER_WRITE_MAX: usize = 64;

#[derive(Debug, Default)]
pub struct OutboundQueue {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already written.
    head_written: usize,
    /// Unwritten bytes across all frames.
    bytes_queued: usize,
}

/// How a flush ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Flushed {
    pub bytes_written: usize,
    /// The socket would block: wait for a writable event before trying again.
    pub blocked: bool,
}

impl OutboundQueue {
    pub fn push(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.bytes_queued += frame.len();
        self.frames.push_back(frame);
    }

    pub fn bytes_queued(&self) -> usize {
        self.bytes_queued
    }

    pub fn is_empty(&self) -> bool {
        self.bytes_queued == 0
    }

    /// Drops every frame not yet started, keeping a partly written head frame so the stream
    /// stays well-formed (used before queueing a final close frame).
    pub fn truncate_unstarted(&mut self) {
        self.truncate_unstarted_after(usize::from(self.head_written > 0));
    }

    /// Drops every frame between a partly written head frame (kept so the stream stays
    /// well-formed) and the last frame (kept: a closing connection's close frame or final
    /// response). Returns the bytes dropped.
    pub fn truncate_all_but_last(&mut self) -> usize {
        let keep_head = usize::from(self.head_written > 0);
        let Some(last) = self.frames.pop_back() else { return 0 };
        let before = self.bytes_queued;
        self.bytes_queued -= last.len();
        self.truncate_unstarted_after(keep_head);
        self.bytes_queued += last.len();
        self.frames.push_back(last);
        before - self.bytes_queued
    }

    fn truncate_unstarted_after(&mut self, keep: usize) {
        while self.frames.len() > keep {
            if let Some(frame) = self.frames.pop_back() {
                self.bytes_queued -= frame.len();
            }
        }
    }

    /// Writes queued frames with as few `writev` calls as possible, at most about `budget` bytes.
    pub fn write_to(&mut self, writer: &mut impl Write, budget: usize) -> io::Result<Flushed> {
        let mut written_total = 0;
        while !self.frames.is_empty() && written_total < budget {
            let mut slices = [IoSlice::new(&[]); IOVECS_PER_WRITE_MAX];
            let mut count = 0;
            for (i, frame) in self.frames.iter().take(IOVECS_PER_WRITE_MAX).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &frame[self.head_written..] } else { frame });
                count += 1;
            }
            let written = match writer.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flushed { bytes_written: written_total, blocked: true })
                }
                Err(e) => return Err(e),
            };
            self.advance(written);
            written_total += written;
        }
        Ok(Flushed { bytes_written: written_total, blocked: false })
    }

    fn advance(&mut self, mut written: usize) {
        debug_assert!(written <= self.bytes_queued, "writer claims more bytes than were queued");
        self.bytes_queued -= written;
        while written > 0 {
            let Some(head) = self.frames.front() else {
                break;
            };
            let left = head.len() - self.head_written;
            if written >= left {
                written -= left;
                self.frames.pop_front();
                self.head_written = 0;
            } else {
                self.head_written += written;
                written = 0;
            }
        }
        if self.frames.is_empty() && self.frames.capacity() > 16 {
            // A burst must not pin its queue's memory on a connection that has gone idle.
            self.frames.shrink_to(16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most `chunk` bytes a call and then blocks once `room` is used up.
    struct Trickle {
        got: Vec<u8>,
        chunk: usize,
        room: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.room);
            self.got.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn queue_of(frames: &[&'static [u8]]) -> OutboundQueue {
        let mut q = OutboundQueue::default();
        for f in frames {
            q.push(Bytes::from_static(f));
        }
        q
    }

    #[test]
    fn counts_bytes_across_partial_writes_and_preserves_order() {
        let mut q = queue_of(&[b"hello", b"", b"wide", b"world"]);
        assert_eq!(q.bytes_queued(), 14);
        let mut sink = Trickle { got: vec![], chunk: 3, room: 7 };
        let flushed = q.write_to(&mut sink, usize::MAX).unwrap();
        assert_eq!(flushed, Flushed { bytes_written: 7, blocked: true });
        assert_eq!(q.bytes_queued(), 7);
        sink.room = 100;
        let flushed = q.write_to(&mut sink, usize::MAX).unwrap();
        assert_eq!(flushed, Flushed { bytes_written: 7, blocked: false });
        assert_eq!(sink.got, b"hellowideworld");
        assert!(q.is_empty());
    }

    #[test]
    fn budget_stops_the_flush_without_blocking() {
        let mut q = queue_of(&[b"aaaa", b"bbbb", b"cccc"]);
        let mut sink = Trickle { got: vec![], chunk: 4, room: 100 };
        let flushed = q.write_to(&mut sink, 5).unwrap();
        assert_eq!(flushed, Flushed { bytes_written: 8, blocked: false });
        assert_eq!(q.bytes_queued(), 4);
    }

    #[test]
    fn truncate_keeps_a_partly_written_head_frame() {
        let mut q = queue_of(&[b"head", b"next", b"last"]);
        let mut sink = Trickle { got: vec![], chunk: 2, room: 2 };
        q.write_to(&mut sink, usize::MAX).unwrap();
        q.truncate_unstarted();
        assert_eq!(q.bytes_queued(), 2, "the rest of the head frame stays");
        let mut fresh = queue_of(&[b"one", b"two"]);
        fresh.truncate_unstarted();
        assert!(fresh.is_empty());
    }

    #[test]
    fn truncate_all_but_last_keeps_a_started_head_and_the_final_frame() {
        let mut q = queue_of(&[b"head", b"next", b"more", b"close"]);
        let mut sink = Trickle { got: vec![], chunk: 2, room: 2 };
        q.write_to(&mut sink, usize::MAX).unwrap();
        assert_eq!(q.truncate_all_but_last(), 8, "next and more dropped");
        sink.room = 100;
        q.write_to(&mut sink, usize::MAX).unwrap();
        assert_eq!(sink.got, b"headclose");
        let mut unstarted = queue_of(&[b"one", b"two", b"close"]);
        assert_eq!(unstarted.truncate_all_but_last(), 6);
        assert_eq!(unstarted.bytes_queued(), 5);
        let mut alone = queue_of(&[b"close"]);
        assert_eq!(alone.truncate_all_but_last(), 0);
        assert_eq!(OutboundQueue::default().truncate_all_but_last(), 0);
    }

    #[test]
    fn write_zero_is_an_error_not_a_spin() {
        let mut q = queue_of(&[b"x"]);
        let mut sink = Trickle { got: vec![], chunk: 0, room: 1 };
        assert!(q.write_to(&mut sink, usize::MAX).is_err());
    }
}
