//! The lobby's two request paths that fan out or look up (SPEC L-2, L-3), through the core and
//! what the driver does with the outputs (encode and frame once, queue per recipient):
//!
//! - `invite_refresh/N`: a member of a party of N invites the same 16 users again: each
//!   invitation is refreshed (timer disarmed and re-armed) and announced to the N members and the
//!   invitee's session. Throughput is per delivered event.
//! - `invite_then_cancel/N`: 16 new invitations, then 16 cancels: the insert and removal paths of
//!   both indexes and the timer table. Throughput is per invitation.
//! - `code_join_member`: a member joins its own party by code (a no-op that answers with the
//!   snapshot) among 10,000 live parties: parse, lookup, snapshot.
//! - `code_join_miss`: a wrong code among 10,000 live parties, the guard's window sliding (time
//!   moves a minute per call, so the guard never refuses).

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use huddle::core::{
    Cid, ConnectOptions, Core, Identity, LobbyReply, LobbyRequest, Millis, Now, Outbox, Output, PartyId, PartyReply,
    PartyRequest, Reply, Request, SessionId, UserId, Username,
};
use huddle::limits::Limits;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::Encoder;

const INVITEES: u32 = 16;

struct World {
    core: Core,
    out: Outbox,
    encoder: Encoder,
    queues: Vec<OutboundQueue>,
    next_slot: u32,
}

impl World {
    fn new(limits: Limits) -> World {
        World {
            core: Core::new(limits, [9; 32]),
            out: Outbox::new(),
            encoder: Encoder::new(),
            queues: Vec::new(),
            next_slot: 0,
        }
    }

    fn connect(&mut self, user: &str) -> SessionId {
        let session = SessionId::new(self.next_slot, 1);
        self.next_slot += 1;
        self.queues.push(OutboundQueue::default());
        let identity = Identity { user_id: UserId::new(user), username: Username::new(user) };
        self.core.connect(session, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut self.out);
        self.out.clear();
        session
    }

    /// One request through the core, encode and queue; then releases the queues of `touched`
    /// sessions (what a flush does once the bytes are written): all of them would make the code
    /// benches, with 10,000 sessions, measure the loop over the queues.
    fn request(&mut self, session: SessionId, request: Request, now: Millis, touched: &[SessionId]) -> usize {
        self.core.handle_request(session, Cid(1), request, Now::simulated(now), &mut self.out);
        let delivered = support::deliver(&mut self.out, &mut self.encoder, &mut self.queues);
        for s in touched {
            self.queues[s.slot() as usize].truncate_unstarted();
        }
        delivered
    }

    fn create(&mut self, leader: SessionId, max_size: u32) -> PartyId {
        let create = PartyRequest::Create {
            open: true,
            max_size,
            label: String::new(),
            hidden: false,
            lobby: Default::default(),
        };
        self.core.handle_request(leader, Cid(1), Request::Party(create), Now::simulated(Millis(0)), &mut self.out);
        let Output::Reply { result: Ok(Reply::Party(PartyReply::Info(snapshot))), .. } = &self.out.outputs()[0] else {
            panic!("create failed")
        };
        let party_id = snapshot.party_id;
        self.out.clear();
        party_id
    }

    /// A party of `size` members and 16 connected users to invite.
    fn party_of(size: usize) -> (World, Vec<SessionId>, PartyId, Vec<UserId>, Vec<SessionId>) {
        let mut world = World::new(Limits::default());
        let members: Vec<SessionId> = (0..size).map(|i| world.connect(&format!("member-{i}"))).collect();
        let party_id = world.create(members[0], size as u32);
        for &m in &members[1..] {
            world.request(m, Request::Party(PartyRequest::Join { party_id }), Millis(0), &[]);
        }
        let mut everyone = members.clone();
        let invitees: Vec<UserId> = (0..INVITEES)
            .map(|i| {
                let id = format!("invitee-{i}");
                everyone.push(world.connect(&id));
                UserId::new(&id)
            })
            .collect();
        for s in &everyone {
            world.queues[s.slot() as usize].truncate_unstarted();
        }
        (world, members, party_id, invitees, everyone)
    }
}

fn invitations(c: &mut Criterion) {
    let mut group = c.benchmark_group("lobby");
    for size in [4usize, 64] {
        let (mut world, members, party_id, invitees, everyone) = World::party_of(size);
        let invite = Request::Lobby(LobbyRequest::Invite { party_id, user_ids: invitees.clone() });
        world.request(members[0], invite.clone(), Millis(0), &everyone);
        // Each invitee: one event to every member, one to its session.
        group.throughput(Throughput::Elements(u64::from(INVITEES) * (size as u64 + 1)));
        group.bench_with_input(BenchmarkId::new("invite_refresh", size), &size, |b, _| {
            b.iter(|| world.request(members[0], invite.clone(), Millis(0), &everyone))
        });

        let (mut world, members, party_id, invitees, everyone) = World::party_of(size);
        let invite = Request::Lobby(LobbyRequest::Invite { party_id, user_ids: invitees.clone() });
        let cancels: Vec<Request> = invitees
            .iter()
            .map(|u| Request::Lobby(LobbyRequest::CancelInvitation { party_id, user_id: u.clone() }))
            .collect();
        group.throughput(Throughput::Elements(u64::from(INVITEES)));
        group.bench_with_input(BenchmarkId::new("invite_then_cancel", size), &size, |b, _| {
            b.iter(|| {
                world.request(members[0], invite.clone(), Millis(0), &everyone);
                for cancel in &cancels {
                    world.request(members[0], cancel.clone(), Millis(0), &everyone);
                }
            })
        });
    }
    group.finish();
}

fn codes(c: &mut Criterion) {
    let mut group = c.benchmark_group("lobby");
    let mut world = World::new(Limits::default());
    let mut leaders = Vec::new();
    for i in 0..10_000 {
        let leader = world.connect(&format!("leader-{i}"));
        world.create(leader, 4);
        world.queues[leader.slot() as usize].truncate_unstarted();
        leaders.push(leader);
    }
    let party_id = world.create(leaders[0], 4);
    world.core.handle_request(
        leaders[0],
        Cid(1),
        Request::Lobby(LobbyRequest::CodeGet { party_id }),
        Now::simulated(Millis(0)),
        &mut world.out,
    );
    let Output::Reply { result: Ok(Reply::Lobby(LobbyReply::Code { code, .. })), .. } = &world.out.outputs()[0] else {
        panic!("code get failed")
    };
    let code = code.to_string().to_lowercase();
    world.out.clear();
    group.throughput(Throughput::Elements(1));
    let hit = Request::Lobby(LobbyRequest::JoinByCode { code });
    let touched = [leaders[0], leaders[1]];
    group
        .bench_function("code_join_member", |b| b.iter(|| world.request(leaders[0], hit.clone(), Millis(0), &touched)));
    let miss = Request::Lobby(LobbyRequest::JoinByCode { code: "ZZZZZZ".into() });
    world.core.handle_request(leaders[1], Cid(1), miss.clone(), Now::simulated(Millis(0)), &mut world.out);
    assert!(
        matches!(&world.out.outputs()[0], Output::Reply { result: Err(e), .. } if e.code() == huddle::core::ErrorCode::PartyCodeNotFound),
        "ZZZZZZ is nobody's code under this seed"
    );
    world.out.clear();
    let mut now = Millis(0);
    group.bench_function("code_join_miss", |b| {
        b.iter(|| {
            now = now.saturating_add(60_000);
            world.request(leaders[1], miss.clone(), now, &touched)
        })
    });
    group.finish();
}

criterion_group!(benches, invitations, codes);
criterion_main!(benches);
