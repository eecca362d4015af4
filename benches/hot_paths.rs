//! The per-message wire costs of the two fan-out hot paths at SPEC §7's sizes, for reading the
//! load harness's "server CPU per delivered message" against: verify + decode of a 64-byte party
//! data request, encode + frame of the party data event (paid once per event, not per
//! recipient), and encode + frame of a status change event (one leave, one join).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use huddle::core::{
    Cid, Event, PartyEvent, PartyId, PartyRequest, Presence, Request, SessionId, StatusEvent, StatusPresence, UserId,
    Username,
};
use huddle::net::frame;
use huddle::wire::{self, Encoder};
use std::hint::black_box;

fn presence(i: u32) -> Presence {
    Presence {
        user_id: UserId::new(&format!("5f3a2c1e-9b7d-4e6f-8a0b-1c2d3e4f{i:04}")),
        session_id: SessionId::new(i, 1),
        username: Username::new(&format!("Player{i}")),
    }
}

fn hot_paths(c: &mut Criterion) {
    let options = wire::verifier_options(16 * 1024);
    let mut encoder = Encoder::new();
    let party_id = PartyId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let data = Bytes::from(vec![42u8; 64]);
    let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: data.clone() });
    let frame_in = Bytes::copy_from_slice(encoder.request(Cid(7), &request));
    let mut group = c.benchmark_group("hot_paths");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_verify_party_data_64", |b| {
        b.iter(|| wire::decode_request(black_box(&frame_in), &options))
    });
    let event = Event::Party(PartyEvent::Data { party_id, sender: presence(1), op_code: 1, data });
    group.bench_function("encode_frame_party_data_event_64", |b| {
        b.iter(|| frame::binary(encoder.event(black_box(&event))))
    });
    let status = Event::Status(StatusEvent {
        joins: vec![StatusPresence { presence: presence(2), status: "in match 1234".into() }],
        leaves: vec![StatusPresence { presence: presence(2), status: "in lobby".into() }],
    });
    group.bench_function("encode_frame_status_change_event", |b| {
        b.iter(|| frame::binary(encoder.event(black_box(&status))))
    });
    group.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
