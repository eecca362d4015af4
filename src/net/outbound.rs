//! A connection's outbound queue: whole WebSocket frames as refcounted `Bytes`, so one event
//! framed once sits in every recipient's queue without a copy. The queue's byte count is the
//! single truth for the slow-consumer limit.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

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
        let keep = usize::from(self.head_written > 0);
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
    fn write_zero_is_an_error_not_a_spin() {
        let mut q = queue_of(&[b"x"]);
        let mut sink = Trickle { got: vec![], chunk: 0, room: 1 };
        assert!(q.write_to(&mut sink, usize::MAX).is_err());
    }
}
