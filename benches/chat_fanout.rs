//! Party chat fan-out (SPEC L-6) through everything the server does per message except socket
//! IO: decode the request frame, run the core (membership, chat flag, body checks, the
//! per-session window, sequence and time), encode and frame the reply and the event once, and
//! queue a refcounted clone of the framed event for every other member. Reported per delivered
//! message (`Throughput::Elements` = the other members), for parties of 4 and of 64, with
//! 64-byte text bodies.
//!
//! A counting global allocator counts heap allocations; before the timed runs the bench prints
//! allocations per sent message and per delivery (the shape of the cost: a fixed number per
//! message, none per recipient). Time moves 2 s per message, so one session's window (5 per
//! 10 s) is always open and keeps its buffer.
//!
//!     cargo bench --bench chat_fanout

mod support;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use huddle::core::{ChatKind, Cid, Core, LobbyRequest, LobbySettings, Millis, Now, Outbox, Request, SessionId};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::{self, Encoder};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts allocations (and reallocations); everything else is the system allocator's.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Between two messages of the sender: 5 fit any 10 s, so the window never refuses nor empties.
const STEP_MS: u64 = 2_000;

struct Chat {
    core: Core,
    sessions: Vec<SessionId>,
    out: Outbox,
    encoder: Encoder,
    queues: Vec<OutboundQueue>,
    frame: Bytes,
    verifier: flatbuffers::VerifierOptions,
    now: u64,
}

impl Chat {
    fn party_of(size: usize) -> Chat {
        let lobby = LobbySettings { chat_enabled: true, ..LobbySettings::default() };
        let (core, sessions, party_id) = support::party_of(size, lobby);
        let out = Outbox::new();
        let send = LobbyRequest::ChatSend { party_id, kind: ChatKind::Text, body: Bytes::from(vec![b'g'; 64]) };
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(9), &Request::Lobby(send)));
        Chat {
            core,
            queues: (0..size).map(|_| OutboundQueue::default()).collect(),
            sessions,
            out,
            encoder: Encoder::new(),
            frame,
            verifier: wire::verifier_options(Limits::default().message_bytes_max),
            now: 0,
        }
    }

    /// One message, decoded to queued; returns the deliveries.
    fn send(&mut self) -> usize {
        self.now += STEP_MS;
        let (cid, request) = wire::decode_request(&self.frame, &self.verifier).expect("valid frame");
        self.core.handle_request(self.sessions[0], cid, request, Now::simulated(Millis(self.now)), &mut self.out);
        let delivered = support::deliver(&mut self.out, &mut self.encoder, &mut self.queues);
        // What a flush does once the bytes are written: release each queue's references.
        for q in &mut self.queues {
            black_box(&q);
            q.truncate_unstarted();
        }
        delivered
    }
}

fn chat(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat_fanout");
    for size in [4usize, 64] {
        let mut chat = Chat::party_of(size);
        for _ in 0..100 {
            chat.send(); // warm every buffer
        }
        let messages = 10_000u64;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mut delivered = 0;
        for _ in 0..messages {
            delivered += chat.send();
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(delivered as u64, messages * (size as u64 - 1), "every other member gets every message");
        println!(
            "chat_fanout/{size}: {:.2} allocations per message, {:.3} per delivery",
            allocations as f64 / messages as f64,
            allocations as f64 / delivered as f64
        );
        group.throughput(Throughput::Elements((size - 1) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| b.iter(|| chat.send()));
    }
    group.finish();
}

criterion_group!(benches, chat);
criterion_main!(benches);
