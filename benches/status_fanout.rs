//! One status change fanned out to 1,000 followers: the core's update (validation, table
//! change, recipient list from the followers index), the event encoded once by the wire
//! encoder, framed once (`net::frame::binary`), and a refcounted clone pushed into each
//! recipient's outbound queue, as the driver does. Excluded: the driver's slab lookup per
//! recipient and the socket writes. Throughput counts delivered events: the 1,000 followers
//! plus the user's own session (S-3: the user's own sessions receive its status events too).
//!
//! `cargo bench --bench status_fanout -- --warm-up-time 1 --measurement-time 3`

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use huddle::core::{
    Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, Request, SessionId, StatusRequest, UserId, Username,
};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::Encoder;
use std::hint::black_box;

const FOLLOWERS: u32 = 1000;

fn status_fanout(c: &mut Criterion) {
    let limits = Limits { connections_max: FOLLOWERS as usize + 1, ..Limits::default() };
    let mut core = Core::new(limits, [7; 32]);
    let mut out = Outbox::new();
    let star = SessionId::new(0, 1);
    let identity = |id: &str| Identity { user_id: UserId::new(id), username: Username::new(id) };
    core.connect(
        star,
        identity("star"),
        ConnectOptions { status_visible: true, ..Default::default() },
        Now::simulated(Millis(0)),
        &mut out,
    );
    for slot in 1..=FOLLOWERS {
        let session = SessionId::new(slot, 1);
        core.connect(
            session,
            identity(&format!("fan{slot}")),
            ConnectOptions::default(),
            Now::simulated(Millis(0)),
            &mut out,
        );
        let follow = StatusRequest::Follow { user_ids: vec![UserId::new("star")], usernames: vec![] };
        core.handle_request(session, Cid(1), Request::Status(follow), Now::simulated(Millis(0)), &mut out);
    }
    out.clear();
    let mut queues: Vec<OutboundQueue> = (0..=FOLLOWERS).map(|_| OutboundQueue::default()).collect();
    let mut encoder = Encoder::new();
    let statuses = ["in the lobby", "in match 42, round 3"];
    let mut turn = 0usize;

    let mut group = c.benchmark_group("status_fanout");
    group.throughput(Throughput::Elements(u64::from(FOLLOWERS) + 1));
    group.bench_function("one_change_to_1000_followers", |b| {
        b.iter(|| {
            turn += 1;
            let status = Some(statuses[turn % 2].to_owned());
            core.handle_request(
                star,
                Cid(2),
                Request::Status(StatusRequest::Update { status }),
                Now::simulated(Millis(0)),
                &mut out,
            );
            let delivered = support::deliver(&mut out, &mut encoder, &mut queues);
            assert_eq!(delivered, FOLLOWERS as usize + 1);
            // What a flush does once the bytes are written: release each queue's references.
            for queue in &mut queues {
                queue.truncate_unstarted();
            }
            black_box(&queues);
        })
    });
    group.finish();
}

criterion_group!(benches, status_fanout);
criterion_main!(benches);
