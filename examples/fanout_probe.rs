//! The party-data fan-out loop of `benches/party_fanout.rs` as a plain binary, for instruction
//! counts under callgrind where wall-clock figures are too noisy (a shared machine):
//!
//!     cargo build --release --example fanout_probe
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/fanout_probe 4 20000
//!
//! Run it with two iteration counts and divide the difference of the `Collected` totals by the
//! difference of the counts: that is the cost of one message (decode, core, encode and frame
//! once, queue per recipient), without the setup.

#[path = "../benches/support/mod.rs"]
mod support;

use bytes::Bytes;
use huddle::core::{Cid, Millis, Now, Outbox, PartyRequest, Request};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::{self, Encoder};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("usage: fanout_probe SIZE ITERATIONS"));
    let (size, iterations) = (args.next().unwrap_or(4), args.next().unwrap_or(10_000));
    let (mut core, sessions, party_id) = support::party_of(size, Default::default());
    let mut out = Outbox::new();
    let mut encoder = Encoder::new();
    let verifier = wire::verifier_options(Limits::default().message_bytes_max);
    let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(vec![0xab; 64]) });
    let request_frame = Bytes::copy_from_slice(Encoder::new().request(Cid(9), &request));
    let mut queues: Vec<OutboundQueue> = (0..size).map(|_| OutboundQueue::default()).collect();
    let mut delivered = 0;
    for _ in 0..iterations {
        let (cid, request) = wire::decode_request(&request_frame, &verifier).expect("valid frame");
        core.handle_request(sessions[0], cid, request, Now::simulated(Millis(0)), &mut out);
        delivered += support::deliver(&mut out, &mut encoder, &mut queues);
        for q in &mut queues {
            black_box(&q);
            q.truncate_unstarted();
        }
    }
    println!("{delivered} deliveries");
}
