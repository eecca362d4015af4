//! Server-to-client WebSocket frames. Server frames are unmasked (RFC 6455 §5.1), so one framed
//! event is valid byte-for-byte on every connection: frame once, queue everywhere.
//!
//! The driver frames into a [`FramePool`]: each frame is its header and the codec's bytes,
//! written once into a pooled chunk and cut off as a refcounted `Bytes` (the only copy between
//! the encoder's builder and the socket). A chunk is reused once every frame cut from it has
//! been released by every queue that held it, so steady state allocates nothing per message
//! (`benches/alloc_party_data.rs`). The free functions allocate a buffer per frame, for tests,
//! benches and clients.

use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;

const FIN_BINARY: u8 = 0x82;
const FIN_TEXT: u8 = 0x81;

/// `payload` as one final binary frame.
pub fn binary(payload: &[u8]) -> Bytes {
    with_opcode(FIN_BINARY, payload)
}

/// `payload` (UTF-8, the codec's promise) as one final text frame.
pub fn text(payload: &[u8]) -> Bytes {
    with_opcode(FIN_TEXT, payload)
}

/// A codec's frame as WebSocket bytes, in a buffer of its own.
pub fn framed(frame: crate::wire::Frame<'_>) -> Bytes {
    with_opcode(first_byte(frame.kind), frame.payload)
}

fn with_opcode(first_byte: u8, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + HEADER_BYTES_MAX);
    put_header(&mut frame, first_byte, payload.len());
    frame.put_slice(payload);
    frame.freeze()
}

/// The longest server frame header: no mask, an 8-byte extended length.
const HEADER_BYTES_MAX: usize = 10;

fn header_bytes(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => HEADER_BYTES_MAX,
    }
}

fn put_header(frame: &mut BytesMut, first_byte: u8, len: usize) {
    frame.put_u8(first_byte);
    if len < 126 {
        frame.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        frame.put_u8(126);
        frame.put_u16(len as u16);
    } else {
        frame.put_u8(127);
        frame.put_u64(len as u64);
    }
}

fn first_byte(kind: crate::wire::FrameKind) -> u8 {
    match kind {
        crate::wire::FrameKind::Binary => FIN_BINARY,
        crate::wire::FrameKind::Text => FIN_TEXT,
    }
}

/// Bytes of one pooled chunk: about 250 party-data events, small enough for the heap (below
/// glibc's mmap threshold), large enough that cutting a frame almost never needs a new chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// A frame larger than this gets a buffer of its own: it would take most of a chunk, and such
/// frames (large search pages, follow replies) are rare.
const POOLED_FRAME_BYTES_MAX: usize = CHUNK_BYTES / 4;

/// Chunks that server frames are cut from, reused once every frame of a chunk is released.
///
/// Frames are cut from the current chunk in order; when it cannot hold the next one, it joins
/// the filled chunks, and the oldest filled chunk is taken back if nothing holds a frame of it
/// any more (`BytesMut::try_reclaim`: the whole chunk, without a copy), else a new chunk is
/// allocated. Queues release frames in about the order they were cut, so the oldest chunk is the
/// one to try. At most `chunks_max` chunks are kept: past that, a filled chunk is let go (its
/// memory is freed when its last frame is), so a burst does not pin its peak for good.
///
/// A frame must not outlive its turn in a queue that cannot be written, or a slow reader would
/// pin whole chunks for a few bytes each: the flush copies what such a queue still holds out of
/// the pool (`OutboundQueue::unpool`).
pub struct FramePool {
    /// Frames are cut from here; always empty (each frame is split off as soon as it is
    /// written), its capacity what is left of the chunk.
    current: BytesMut,
    /// `current` is a chunk of the pool (not the empty buffer the pool starts with).
    current_pooled: bool,
    /// Filled chunks, oldest first, each waiting for its frames to be released.
    filled: VecDeque<BytesMut>,
    chunks_max: usize,
    /// Chunks allocated since the start (so a test or the metrics can see reuse).
    pub chunks_allocated_total: u64,
}

impl FramePool {
    /// A pool that keeps at most `bytes_max` of chunks (at least one chunk).
    pub fn new(bytes_max: usize) -> FramePool {
        let chunks_max = (bytes_max / CHUNK_BYTES).max(1);
        FramePool {
            current: BytesMut::new(),
            current_pooled: false,
            filled: VecDeque::with_capacity(chunks_max),
            chunks_max,
            chunks_allocated_total: 0,
        }
    }

    /// A codec's frame as WebSocket bytes, cut from the pool.
    pub fn frame(&mut self, frame: crate::wire::Frame<'_>) -> Bytes {
        let (first, payload) = (first_byte(frame.kind), frame.payload);
        let len = header_bytes(payload.len()) + payload.len();
        if len > POOLED_FRAME_BYTES_MAX {
            return with_opcode(first, payload);
        }
        if self.current.capacity() < len {
            self.next_chunk();
        }
        put_header(&mut self.current, first, payload.len());
        self.current.extend_from_slice(payload);
        debug_assert_eq!(self.current.len(), len, "a frame is its header and payload");
        self.current.split().freeze()
    }

    /// Moves on from a chunk too full for the next frame: reuse the oldest filled chunk when
    /// nothing holds any of its frames, else allocate one.
    fn next_chunk(&mut self) {
        let full = std::mem::take(&mut self.current);
        if self.current_pooled && self.filled.len() < self.chunks_max {
            self.filled.push_back(full);
        }
        if let Some(mut oldest) = self.filled.pop_front() {
            // Empty (every frame was split off), so reclaiming it copies nothing.
            if oldest.try_reclaim(CHUNK_BYTES) {
                self.current = oldest;
                self.current_pooled = true;
                return;
            }
            // Still held: behind the others, so one frame held long cannot block their reuse.
            self.filled.push_back(oldest);
        }
        self.current = BytesMut::with_capacity(CHUNK_BYTES);
        self.current_pooled = true;
        self.chunks_allocated_total += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_forms() {
        assert_eq!(&binary(b"ab")[..], &[0x82, 2, b'a', b'b']);
        let medium = binary(&[7; 300]);
        assert_eq!(&medium[..4], &[0x82, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        let large = binary(&vec![0; 70_000]);
        assert_eq!(&large[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(large[2..10].try_into().unwrap()), 70_000);
    }

    fn binary_frame(payload: &[u8]) -> crate::wire::Frame<'_> {
        crate::wire::Frame { kind: crate::wire::FrameKind::Binary, payload }
    }

    #[test]
    fn pooled_frames_are_the_same_bytes_as_framed_ones_at_every_length_form() {
        let mut pool = FramePool::new(2 * CHUNK_BYTES);
        for len in [0, 1, 125, 126, 300, 0xFFFF, 0x1_0000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for kind in [crate::wire::FrameKind::Binary, crate::wire::FrameKind::Text] {
                let frame = crate::wire::Frame { kind, payload: &payload };
                assert_eq!(pool.frame(frame), framed(frame), "{len} bytes, {kind:?}");
            }
        }
    }

    #[test]
    fn a_chunk_is_reused_once_all_its_frames_are_released_and_not_before() {
        let mut pool = FramePool::new(4 * CHUNK_BYTES);
        let payload = [7u8; 1000];
        let fill = |pool: &mut FramePool| {
            (0..CHUNK_BYTES / 1004).map(|_| pool.frame(binary_frame(&payload))).collect::<Vec<_>>()
        };
        let first = fill(&mut pool);
        assert_eq!(pool.chunks_allocated_total, 1);
        // One frame of the first chunk is still held: the next chunk is a new one.
        let held = first[10].clone();
        drop(first);
        let second = fill(&mut pool);
        assert_eq!(pool.chunks_allocated_total, 2, "the first chunk is still held");
        drop(second);
        let third = fill(&mut pool);
        assert_eq!(pool.chunks_allocated_total, 3, "the oldest chunk is the one tried, and it is held");
        drop(held);
        drop(third);
        for _ in 0..20 {
            let frames = fill(&mut pool);
            assert!(frames.iter().all(|f| f.len() == 1004 && f[4..] == payload));
        }
        assert_eq!(pool.chunks_allocated_total, 3, "released chunks are reused from then on");
    }

    #[test]
    fn past_chunks_max_filled_chunks_are_let_go() {
        let mut pool = FramePool::new(CHUNK_BYTES);
        let payload = [1u8; 4000];
        let held: Vec<Bytes> = (0..100).map(|_| pool.frame(binary_frame(&payload))).collect();
        assert!(pool.filled.len() <= 1, "only chunks_max chunks are kept");
        assert!(pool.chunks_allocated_total >= 6);
        drop(held);
        let before = pool.chunks_allocated_total;
        let again: Vec<Bytes> = (0..10).map(|_| pool.frame(binary_frame(&payload))).collect();
        assert!(pool.chunks_allocated_total <= before + 1);
        drop(again);
    }
}
