//! The per-message costs of the wire layer: verify + decode of a request envelope, and encode +
//! WebSocket framing of a reply and an event. Every delivered message pays the latter once per
//! event (not per recipient), every request the former.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use huddle::core::{Cid, Event, Presence, Reply, Request, SessionId, UserId, Username};
use huddle::net::frame;
use huddle::wire::{self, Encoder};
use std::hint::black_box;

fn wire(c: &mut Criterion) {
    let options = wire::verifier_options(16 * 1024);
    let mut encoder = Encoder::new();
    let ping = Bytes::copy_from_slice(encoder.request(Cid(42), &Request::Ping));
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_verify_ping", |b| b.iter(|| wire::decode_request(black_box(&ping), &options)));
    group.bench_function("encode_frame_pong_reply", |b| {
        b.iter(|| frame::binary(encoder.reply(black_box(Cid(42)), &Ok(Reply::Pong))))
    });
    let welcome = Event::Welcome {
        presence: Presence {
            user_id: UserId::new("5f3a2c1e-9b7d-4e6f-8a0b-1c2d3e4f5a6b"),
            session_id: SessionId::new(17, 3),
            username: Username::new("PlayerOne"),
        },
    };
    group
        .bench_function("encode_frame_welcome_event", |b| b.iter(|| frame::binary(encoder.event(black_box(&welcome)))));
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
