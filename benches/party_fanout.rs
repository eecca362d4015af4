//! Party-data fan-out (SPEC P-9, the hot path) through everything the server does per message
//! except socket IO: decode the request frame, run the core, encode and frame the reply and the
//! event once, and queue a refcounted clone of the framed event per recipient. Reported per
//! delivered message (`Throughput::Elements` = recipients), for parties of 4 and of 64, with
//! 64-byte payloads as in SPEC §7.

mod support;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use huddle::core::{Cid, Millis, Now, Outbox, PartyRequest, Request};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::{self, Encoder};

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("party_fanout");
    for size in [4usize, 64] {
        let (mut core, sessions, party_id) = support::party_of(size, Default::default());
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
