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
use huddle::core::{
    Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, Output, PartyId, PartyReply, PartyRequest, Reply,
    Request, SessionId, UserId, Username,
};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::{self, Encoder};
use std::hint::black_box;

fn party_of(size: usize) -> (Core, Vec<SessionId>, PartyId) {
    let mut core = Core::new(Limits::default(), [7; 32]);
    let mut out = Outbox::new();
    let sessions: Vec<SessionId> = (0..size as u32).map(|slot| SessionId::new(slot, 1)).collect();
    for (i, &s) in sessions.iter().enumerate() {
        let identity =
            Identity { user_id: UserId::new(&format!("user-{i}")), username: Username::new(&format!("User{i}")) };
        core.connect(s, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut out);
    }
    out.clear();
    let create = PartyRequest::Create {
        open: true,
        max_size: size as u32,
        label: String::new(),
        hidden: false,
        lobby: Default::default(),
    };
    core.handle_request(sessions[0], Cid(1), Request::Party(create), Now::simulated(Millis(0)), &mut out);
    let Output::Reply { result: Ok(Reply::Party(PartyReply::Info(snapshot))), .. } = &out.outputs()[0] else {
        panic!("create failed")
    };
    let party_id = snapshot.party_id;
    out.clear();
    for &s in &sessions[1..] {
        let join = Request::Party(PartyRequest::Join { party_id });
        core.handle_request(s, Cid(2), join, Now::simulated(Millis(0)), &mut out);
    }
    out.clear();
    (core, sessions, party_id)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("usage: fanout_probe SIZE ITERATIONS"));
    let (size, iterations) = (args.next().unwrap_or(4), args.next().unwrap_or(10_000));
    let (mut core, sessions, party_id) = party_of(size);
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
