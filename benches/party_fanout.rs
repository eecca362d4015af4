//! Party-data fan-out (SPEC P-9, the hot path) through everything the server does per message
//! except socket IO: decode the request frame, run the core, encode and frame the reply and the
//! event once, and queue a refcounted clone of the framed event per recipient. Reported per
//! delivered message (`Throughput::Elements` = recipients), for parties of 4 and of 64, with
//! 64-byte payloads as in SPEC §7.

mod support;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use huddle::core::{
    Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, Output, PartyReply, PartyRequest, Reply, Request,
    SessionId, UserId, Username,
};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::{self, Encoder};

fn party_of(size: usize) -> (Core, Vec<SessionId>, huddle::core::PartyId) {
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
        core.handle_request(
            s,
            Cid(2),
            Request::Party(PartyRequest::Join { party_id }),
            Now::simulated(Millis(0)),
            &mut out,
        );
    }
    out.clear();
    (core, sessions, party_id)
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("party_fanout");
    for size in [4usize, 64] {
        let (mut core, sessions, party_id) = party_of(size);
        let mut out = Outbox::new();
        let mut encoder = Encoder::new();
        let verifier = wire::verifier_options(Limits::default().message_bytes_max);
        let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(vec![0xab; 64]) });
        let request_frame = Bytes::copy_from_slice(Encoder::new().request(Cid(9), &request));
        // Stand-ins for the per-connection outbound queues.
        let mut queues: Vec<OutboundQueue> = (0..size).map(|_| OutboundQueue::default()).collect();
        group.throughput(Throughput::Elements((size - 1) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let (cid, request) = wire::decode_request(&request_frame, &verifier).expect("valid frame");
                core.handle_request(sessions[0], cid, request, Now::simulated(Millis(0)), &mut out);
                support::deliver(&mut out, &mut encoder, &mut queues);
                // What a flush does once the bytes are written: release each queue's references.
                for q in &mut queues {
                    black_box(&q);
                    q.truncate_unstarted();
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
