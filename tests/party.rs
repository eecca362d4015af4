//! End-to-end tests of parties (SPEC P-1 … P-12 and C-6 for parties) over real loopback sockets:
//! several clients per test against a server on 127.0.0.1:0, each test named after its rule.
//! They check replies and error codes, and who receives which event and who does not.
//!
//! "Nobody else received anything" is proven without sleeping: `drain` pings the client and
//! takes every event that arrived before the Pong. The server answers requests in order and
//! queues a request's events before its reply goes out, so once the actor has its reply, any
//! event it caused for the bystander is already queued ahead of the bystander's Pong.

mod common;

use common::*;
use huddle::client::{Client, PartyResult};
use huddle::core::{Event, PartyEvent, PartyId, PartyReply, PartySnapshot, Presence, RemovedReason, Reply, Request};
use huddle::core::{UserId, Username};
use huddle::limits::Limits;
use huddle::wire::ErrorCode;

fn ok<T: std::fmt::Debug>(result: PartyResult<T>) -> T {
    match result {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("request failed: {error:?}"),
        Err(e) => panic!("transport failed: {e}"),
    }
}

fn code<T: std::fmt::Debug>(result: PartyResult<T>) -> ErrorCode {
    match result {
        Ok(Ok(value)) => panic!("request should have failed, got {value:?}"),
        Ok(Err(error)) => {
            assert!(!error.message.is_empty(), "error replies say what is wrong");
            error.code
        }
        Err(e) => panic!("transport failed: {e}"),
    }
}

/// Versions (SPEC L-9) are another rule, checked step by step in `tests/lobby.rs`: here the
/// events are compared with their version set to 0, so each test states only its P rule.
fn unversioned(event: PartyEvent) -> PartyEvent {
    match event {
        PartyEvent::Presence { party_id, joins, leaves, .. } => {
            PartyEvent::Presence { party_id, joins, leaves, version: 0 }
        }
        PartyEvent::Leader { party_id, leader, .. } => PartyEvent::Leader { party_id, leader, version: 0 },
        PartyEvent::Removed { party_id, reason, .. } => PartyEvent::Removed { party_id, reason, version: 0 },
        PartyEvent::Updated { party_id, open, hidden, max_size, label, lobby, .. } => {
            PartyEvent::Updated { party_id, open, hidden, max_size, label, lobby, version: 0 }
        }
        PartyEvent::Joined(snapshot) => PartyEvent::Joined(Box::new(PartySnapshot { version: 0, ..*snapshot })),
        other @ (PartyEvent::JoinRequest { .. } | PartyEvent::Data { .. }) => other,
    }
}

/// Every event that reached `client` before a Pong to a fresh Ping (see the file comment).
fn drain(client: &mut Client) -> Vec<PartyEvent> {
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    client
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Party(e) => unversioned(e),
            other => panic!("unexpected non-party event {other:?}"),
        })
        .collect()
}

/// Waits for the next `n` events (for effects of another connection's disconnect, which the
/// server processes after the client's close, not before any reply of ours).
fn next_events(client: &mut Client, n: usize) -> Vec<PartyEvent> {
    (0..n)
        .map(|_| match client.wait_event(WAIT, |_| true).expect("an event") {
            Event::Party(e) => unversioned(e),
            other => panic!("unexpected non-party event {other:?}"),
        })
        .collect()
}

fn me(client: &Client) -> Presence {
    client.presence().clone()
}

fn create(client: &mut Client, open: bool, max_size: u32) -> PartyId {
    ok(client.party_create(open, max_size, "", false)).party_id
}

fn join_open(client: &mut Client, party_id: PartyId) -> PartySnapshot {
    match ok(client.party_join(party_id)) {
        PartyReply::Info(snapshot) => *snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn joins(party_id: PartyId, who: &Client) -> PartyEvent {
    PartyEvent::Presence { party_id, joins: vec![me(who)], leaves: vec![], version: 0 }
}

fn leaves(party_id: PartyId, who: &Presence) -> PartyEvent {
    PartyEvent::Presence { party_id, joins: vec![], leaves: vec![who.clone()], version: 0 }
}

fn leader(party_id: PartyId, who: &Presence) -> PartyEvent {
    PartyEvent::Leader { party_id, leader: who.clone(), version: 0 }
}

fn removed(party_id: PartyId, reason: RemovedReason) -> PartyEvent {
    PartyEvent::Removed { party_id, reason, version: 0 }
}

// ---- P-1 create ----

#[test]
fn p1_create_replies_with_full_snapshot_and_creator_is_leader_and_only_member() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let snapshot = ok(alice.party_create(true, 4, r#"{"mode":"ctf","level":3}"#, false));
    assert_eq!(snapshot.leader, me(&alice));
    assert_eq!(snapshot.members, vec![me(&alice)]);
    assert!(snapshot.open && !snapshot.hidden);
    assert_eq!(snapshot.max_size, 4);
    assert_eq!(snapshot.label, r#"{"mode":"ctf","level":3}"#);
    assert_eq!(ok(alice.party_get(snapshot.party_id)), snapshot);
    let other = ok(alice.party_create(false, 1, "", true));
    assert_ne!(other.party_id, snapshot.party_id, "ids are fresh");
    assert!(!other.open && other.hidden && other.label.is_empty());
    assert_eq!(drain(&mut alice), vec![], "create sends no event");
    assert_eq!(drain(&mut bob), vec![], "nobody else hears of a new party");
}

#[test]
fn p1_create_rejects_bad_max_size_bad_labels_and_labelled_hidden_parties() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    assert_eq!(code(alice.party_create(true, 0, "", false)), ErrorCode::BadInput, "Nakama accepts 0; we do not");
    assert_eq!(code(alice.party_create(true, 257, "", false)), ErrorCode::BadInput);
    assert_eq!(code(alice.party_create(true, 4, "[1,2]", false)), ErrorCode::BadInput, "label must be an object");
    assert_eq!(code(alice.party_create(true, 4, "{not json", false)), ErrorCode::BadInput);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2048));
    assert_eq!(code(alice.party_create(true, 4, &big, false)), ErrorCode::BadInput, "label over 2048 bytes");
    assert_eq!(code(alice.party_create(true, 4, r#"{"a":1}"#, true)), ErrorCode::BadInput, "hidden + label");
    assert_eq!(ok(alice.party_my_parties()), vec![], "no rejected create left a party behind");
    // The bounds themselves are fine.
    ok(alice.party_create(true, 256, "", false));
    ok(alice.party_create(true, 1, &format!(r#"{{"p":"{}"}}"#, "x".repeat(2040)), false));
}

#[test]
fn p1_create_past_parties_per_session_max_is_refused() {
    let server = TestServer::with_limits(Limits { parties_per_session_max: 2, ..Limits::default() });
    let mut alice = server.connect("alice");
    create(&mut alice, true, 4);
    create(&mut alice, true, 4);
    assert_eq!(code(alice.party_create(true, 4, "", false)), ErrorCode::PartyTooManyParties);
    // Another session of the same user has its own allowance.
    let mut alice2 = server.connect("alice");
    create(&mut alice2, true, 4);
}

// ---- P-2 join ----

#[test]
fn p2_open_join_replies_with_snapshot_and_only_existing_members_get_joins() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut bystander = server.connect("zed");
    let party = ok(alice.party_create(true, 3, r#"{"m":1}"#, false)).party_id;

    let snapshot = join_open(&mut bob, party);
    assert_eq!(snapshot.members, vec![me(&alice), me(&bob)], "members in join order");
    assert_eq!(snapshot.leader, me(&alice));
    assert_eq!((snapshot.open, snapshot.max_size, snapshot.label.as_str()), (true, 3, r#"{"m":1}"#));
    assert_eq!(drain(&mut alice), vec![joins(party, &bob)]);
    assert_eq!(drain(&mut bob), vec![], "the joiner gets the snapshot, not a joins event");

    // Joining again is a no-op success that returns the snapshot.
    assert_eq!(join_open(&mut bob, party).members, vec![me(&alice), me(&bob)]);
    assert_eq!(drain(&mut alice), vec![]);

    join_open(&mut carol, party);
    assert_eq!(drain(&mut alice), vec![joins(party, &carol)]);
    assert_eq!(drain(&mut bob), vec![joins(party, &carol)]);
    assert_eq!(code(bystander.party_join(party)), ErrorCode::PartyFull);
    assert_eq!(code(bystander.party_join(PartyId(12345))), ErrorCode::PartyNotFound);
    assert_eq!(drain(&mut bystander), vec![], "a non-member hears nothing");
    assert_eq!(drain(&mut alice), vec![], "failed joins cause no event");
}

#[test]
fn p2_open_join_by_a_second_session_of_a_member_user_is_a_new_member() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut alice2 = server.connect("alice");
    let party = create(&mut alice, true, 4);
    let snapshot = join_open(&mut alice2, party);
    assert_eq!(snapshot.members, vec![me(&alice), me(&alice2)], "membership is per session");
    assert_eq!(drain(&mut alice), vec![joins(party, &alice2)]);
}

#[test]
fn p2_closed_join_queues_one_request_per_user_and_the_leader_is_told() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut alice2 = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let party = create(&mut alice, false, 3);

    assert_eq!(ok(bob.party_join(party)), PartyReply::JoinPending { party_id: party });
    assert_eq!(drain(&mut alice), vec![PartyEvent::JoinRequest { party_id: party, presences: vec![me(&bob)] }]);
    assert_eq!(drain(&mut bob), vec![]);
    assert_eq!(code(bob.party_join(party)), ErrorCode::PartyJoinRequestDuplicate);
    assert_eq!(code(bob2.party_join(party)), ErrorCode::PartyJoinRequestDuplicate, "one request per user");
    assert_eq!(code(alice2.party_join(party)), ErrorCode::PartyAlreadyMember, "the user is already a member");
    assert_eq!(ok(alice.party_join_requests(party)), vec![me(&bob)]);
    assert_eq!(drain(&mut alice), vec![], "refused requests do not reach the leader");
    // The leader itself joining is a no-op success.
    assert!(matches!(ok(alice.party_join(party)), PartyReply::Info(_)));
}

#[test]
fn p2_closed_join_refused_when_full_or_when_the_queue_holds_max_size_requests() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut dave = server.connect("dave");
    let solo = create(&mut alice, false, 1);
    assert_eq!(code(bob.party_join(solo)), ErrorCode::PartyFull);
    let party = create(&mut alice, false, 2);
    ok(bob.party_join(party));
    ok(carol.party_join(party));
    assert_eq!(code(dave.party_join(party)), ErrorCode::PartyJoinRequestsFull);
    assert_eq!(ok(alice.party_join_requests(party)), vec![me(&bob), me(&carol)]);
}

// ---- P-3 join requests ----

#[test]
fn p3_leader_lists_in_arrival_order_accepts_and_rejects_and_the_rejected_requester_is_told() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut zed = server.connect("zed");
    let party = ok(alice.party_create(false, 3, r#"{"x":true}"#, false)).party_id;
    ok(bob.party_join(party));
    ok(carol.party_join(party));
    drain(&mut alice);
    assert_eq!(ok(alice.party_join_requests(party)), vec![me(&bob), me(&carol)]);
    assert_eq!(code(bob.party_join_requests(party)), ErrorCode::PartyNotMember);

    ok(alice.party_accept(party, &me(&bob)));
    let expected = PartySnapshot {
        party_id: party,
        open: false,
        hidden: false,
        max_size: 3,
        label: r#"{"x":true}"#.into(),
        leader: me(&alice),
        members: vec![me(&alice), me(&bob)],
        lobby: Default::default(),
        version: 0,
    };
    assert_eq!(drain(&mut bob), vec![PartyEvent::Joined(Box::new(expected))], "the new member gets the snapshot");
    assert_eq!(drain(&mut alice), vec![joins(party, &bob)]);
    assert_eq!(drain(&mut carol), vec![], "a pending requester is not a member");
    assert_eq!(code(bob.party_join_requests(party)), ErrorCode::PartyNotLeader);

    ok(alice.party_remove(party, &me(&carol)));
    assert_eq!(
        drain(&mut carol),
        vec![removed(party, RemovedReason::Rejected)],
        "rejection is told (Nakama is silent)"
    );
    assert_eq!(drain(&mut alice), vec![]);
    assert_eq!(drain(&mut bob), vec![]);
    assert_eq!(ok(alice.party_join_requests(party)), vec![]);
    assert_eq!(drain(&mut zed), vec![]);
    // Carol may ask again after a rejection.
    assert_eq!(ok(carol.party_join(party)), PartyReply::JoinPending { party_id: party });
}

#[test]
fn p3_accept_errors_full_keeps_the_request_unknown_and_mismatched_presences() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let zed = server.connect("zed");
    let party = create(&mut alice, false, 2);
    ok(bob.party_join(party));
    ok(carol.party_join(party));
    assert_eq!(code(alice.party_accept(party, &me(&zed))), ErrorCode::PartyPresenceNotFound);
    let mut forged = me(&bob);
    forged.username = Username::new("Mallory");
    assert_eq!(code(alice.party_accept(party, &forged)), ErrorCode::PartyPresenceMismatch);
    ok(alice.party_accept(party, &me(&bob)));
    assert_eq!(code(alice.party_accept(party, &me(&carol))), ErrorCode::PartyFull);
    assert_eq!(ok(alice.party_join_requests(party)), vec![me(&carol)], "the request is kept");
    assert_eq!(code(alice.party_join(PartyId(1))), ErrorCode::PartyNotFound);
    assert_eq!(code(alice.party_accept(PartyId(1), &me(&carol))), ErrorCode::PartyNotFound);
    // A seat frees up: the kept request can now be accepted.
    ok(bob.party_leave(party));
    ok(alice.party_accept(party, &me(&carol)));
    assert_eq!(ok(alice.party_get(party)).members, vec![me(&alice), me(&carol)]);
}

#[test]
fn p3_requests_of_a_disconnected_session_vanish_and_a_new_leader_gets_the_pending_list() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut dave = server.connect("dave");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    ok(alice.party_update(party, Some(false), None, None));
    ok(carol.party_join(party));
    ok(dave.party_join(party));
    carol.close();
    server.wait_stats("carol gone", |s| s.sessions_open == 3);
    assert_eq!(ok(alice.party_join_requests(party)), vec![me(&dave)]);
    drain(&mut bob);
    ok(alice.party_leave(party));
    assert_eq!(
        drain(&mut bob),
        vec![
            leader(party, &me(&bob)),
            leaves(party, &me(&alice)),
            PartyEvent::JoinRequest { party_id: party, presences: vec![me(&dave)] },
        ]
    );
    assert_eq!(drain(&mut dave), vec![]);
}

// ---- P-4 kick ----

#[test]
fn p4_kicked_member_is_told_kicked_and_the_others_get_leaves() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut zed = server.connect("zed");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut carol, party);
    drain(&mut alice);
    drain(&mut bob);

    ok(alice.party_remove(party, &me(&bob)));
    assert_eq!(drain(&mut bob), vec![removed(party, RemovedReason::Kicked)], "kicked, not closed");
    assert_eq!(drain(&mut alice), vec![leaves(party, &me(&bob))]);
    assert_eq!(drain(&mut carol), vec![leaves(party, &me(&bob))]);
    assert_eq!(drain(&mut zed), vec![]);
    assert_eq!(code(bob.party_get(party)), ErrorCode::PartyNotMember);
    assert_eq!(ok(alice.party_get(party)).members, vec![me(&alice), me(&carol)]);
}

#[test]
fn p4_kick_errors_not_leader_self_and_non_member() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let zed = server.connect("zed");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    drain(&mut alice);
    assert_eq!(code(bob.party_remove(party, &me(&alice))), ErrorCode::PartyNotLeader);
    assert_eq!(code(alice.party_remove(party, &me(&alice))), ErrorCode::PartyCannotRemoveSelf);
    assert_eq!(code(alice.party_remove(party, &me(&zed))), ErrorCode::PartyPresenceNotFound);
    let mut forged = me(&bob);
    forged.user_id = UserId::new("someone-else");
    assert_eq!(code(alice.party_remove(party, &forged)), ErrorCode::PartyPresenceMismatch);
    assert_eq!(ok(alice.party_get(party)).members, vec![me(&alice), me(&bob)], "nothing changed");
    assert_eq!(drain(&mut alice), vec![]);
    assert_eq!(drain(&mut bob), vec![]);
}

// ---- P-5 leave ----

#[test]
fn p5_leave_tells_the_others_and_is_a_no_op_for_non_members() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut carol, party);
    drain(&mut alice);
    drain(&mut bob);

    ok(bob.party_leave(party));
    assert_eq!(drain(&mut alice), vec![leaves(party, &me(&bob))]);
    assert_eq!(drain(&mut carol), vec![leaves(party, &me(&bob))]);
    assert_eq!(drain(&mut bob), vec![], "the leaver gets its reply only");
    ok(bob.party_leave(party));
    assert_eq!(drain(&mut alice), vec![], "leaving again is a silent no-op");
    assert_eq!(code(bob.party_leave(PartyId(99))), ErrorCode::PartyNotFound);
}

#[test]
fn p5_leave_withdraws_a_pending_join_request() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, false, 4);
    ok(bob.party_join(party));
    ok(bob.party_leave(party));
    assert_eq!(ok(alice.party_join_requests(party)), vec![]);
    assert_eq!(ok(bob.party_my_parties()), vec![]);
}

// ---- P-6 leader rotation ----

#[test]
fn p6_leader_departure_makes_the_longest_tenured_member_leader_before_the_leaves_event() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut dave = server.connect("dave");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut carol, party);
    join_open(&mut dave, party);
    let (a, b, c) = (me(&alice), me(&bob), me(&carol));
    for client in [&mut alice, &mut bob, &mut carol, &mut dave] {
        drain(client);
    }
    ok(alice.party_leave(party));
    for client in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(drain(client), vec![leader(party, &b), leaves(party, &a)]);
    }
    assert_eq!(ok(bob.party_get(party)).leader, b);

    // A disconnect rotates leadership the same way (C-6).
    bob.close();
    for client in [&mut carol, &mut dave] {
        assert_eq!(next_events(client, 2), vec![leader(party, &c), leaves(party, &b)]);
    }
    assert_eq!(drain(&mut alice), vec![], "a former member hears nothing");

    // Last member gone = party gone.
    ok(carol.party_leave(party));
    let d = me(&dave);
    assert_eq!(drain(&mut dave), vec![leader(party, &d), leaves(party, &c)]);
    ok(dave.party_leave(party));
    assert_eq!(code(dave.party_get(party)), ErrorCode::PartyNotFound);
    assert_eq!(code(alice.party_join(party)), ErrorCode::PartyNotFound);
    assert_eq!(code(dave.party_leave(party)), ErrorCode::PartyNotFound);
}

#[test]
fn p6_tenure_is_join_order_not_when_someone_was_promoted() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut carol, party);
    ok(alice.party_promote(party, &me(&carol)));
    drain(&mut alice);
    drain(&mut bob);
    let c = me(&carol);
    ok(carol.party_leave(party));
    assert_eq!(drain(&mut bob), vec![leader(party, &me(&alice)), leaves(party, &c)]);
}

#[test]
fn p6_last_member_leaving_tells_pending_requesters_the_party_closed() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, false, 4);
    ok(bob.party_join(party));
    ok(alice.party_leave(party));
    assert_eq!(drain(&mut bob), vec![removed(party, RemovedReason::Closed)]);
    assert_eq!(code(bob.party_join(party)), ErrorCode::PartyNotFound);
}

// ---- P-7 promote ----

#[test]
fn p7_promote_tells_every_member_and_moves_leader_rights() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut zed = server.connect("zed");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut carol, party);
    drain(&mut alice);
    drain(&mut bob);
    let b = me(&bob);

    ok(alice.party_promote(party, &b));
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(drain(client), vec![leader(party, &b)]);
    }
    assert_eq!(drain(&mut zed), vec![]);
    assert_eq!(code(alice.party_promote(party, &me(&alice))), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_promote(party, &me(&zed))), ErrorCode::PartyPresenceNotFound);
    assert_eq!(code(zed.party_promote(party, &me(&zed))), ErrorCode::PartyNotMember);
    // Promoting oneself is a no-op success without an event.
    ok(bob.party_promote(party, &b));
    assert_eq!(drain(&mut carol), vec![]);
    // The new leader can do leader things; the old one cannot.
    ok(bob.party_remove(party, &me(&carol)));
    assert_eq!(code(alice.party_close(party)), ErrorCode::PartyNotLeader);
}

#[test]
fn p7_promoted_leader_receives_the_pending_join_requests() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    ok(alice.party_update(party, Some(false), None, None));
    ok(carol.party_join(party));
    drain(&mut bob);
    ok(alice.party_promote(party, &me(&bob)));
    assert_eq!(
        drain(&mut bob),
        vec![leader(party, &me(&bob)), PartyEvent::JoinRequest { party_id: party, presences: vec![me(&carol)] }]
    );
    ok(bob.party_accept(party, &me(&carol)));
}

// ---- P-8 close ----

#[test]
fn p8_close_tells_every_member_and_requester_closed_and_the_party_is_gone() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut zed = server.connect("zed");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    ok(alice.party_update(party, Some(false), None, None));
    ok(carol.party_join(party));
    drain(&mut alice);
    drain(&mut bob);
    assert_eq!(code(bob.party_close(party)), ErrorCode::PartyNotLeader);
    assert_eq!(code(zed.party_close(party)), ErrorCode::PartyNotMember);

    ok(alice.party_close(party));
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(drain(client), vec![removed(party, RemovedReason::Closed)]);
    }
    assert_eq!(drain(&mut zed), vec![]);
    assert_eq!(code(alice.party_get(party)), ErrorCode::PartyNotFound);
    assert_eq!(code(bob.party_join(party)), ErrorCode::PartyNotFound);
    assert_eq!(ok(bob.party_my_parties()), vec![]);
}

// ---- P-9 party data ----

#[test]
fn p9_data_reaches_every_other_member_session_never_the_sender_nor_non_members() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut alice2 = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let party = create(&mut alice, true, 4);
    join_open(&mut alice2, party);
    join_open(&mut bob, party);
    for client in [&mut alice, &mut alice2, &mut bob] {
        drain(client);
    }
    let payload: Vec<u8> = (0..64).collect();
    ok(alice.party_data(party, 7, &payload));
    let expected =
        PartyEvent::Data { party_id: party, sender: me(&alice), op_code: 7, data: bytes::Bytes::from(payload.clone()) };
    assert_eq!(drain(&mut bob), vec![expected.clone()]);
    assert_eq!(drain(&mut alice2), vec![expected], "another session of the sender's user receives it");
    assert_eq!(drain(&mut alice), vec![], "never echoed to the sending session");
    assert_eq!(drain(&mut zed), vec![]);

    assert_eq!(code(zed.party_data(party, 1, b"x")), ErrorCode::PartyNotMember);
    assert_eq!(code(zed.party_data(PartyId(5), 1, b"x")), ErrorCode::PartyNotFound);
    ok(bob.party_data(party, -1, b""));
    assert_eq!(
        drain(&mut alice),
        vec![PartyEvent::Data { party_id: party, sender: me(&bob), op_code: -1, data: bytes::Bytes::new() }]
    );
}

#[test]
fn p9_data_over_the_size_limit_is_refused_and_not_delivered() {
    let server = TestServer::with_limits(Limits { party_data_bytes_max: 16, ..Limits::default() });
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, true, 2);
    join_open(&mut bob, party);
    ok(alice.party_data(party, 1, &[1; 16]));
    assert_eq!(code(alice.party_data(party, 1, &[1; 17])), ErrorCode::LimitExceeded);
    assert_eq!(drain(&mut bob).len(), 1, "only the message within the limit arrived");
}

#[test]
fn p9_many_messages_arrive_in_order() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, true, 2);
    join_open(&mut bob, party);
    let cids: Vec<_> = (0..200).map(|i: i64| alice.party_data_send(party, i, &i.to_le_bytes()).unwrap()).collect();
    for cid in cids {
        let reply = alice.wait_reply(cid, std::time::Instant::now() + WAIT).unwrap();
        assert_eq!(reply, Ok(Reply::Party(PartyReply::Ok { party_id: party })), "one ack per message");
    }
    ok(alice.party_data(party, 200, b"last"));
    let ops: Vec<i64> = next_events(&mut bob, 201)
        .into_iter()
        .map(|e| match e {
            PartyEvent::Data { op_code, .. } => op_code,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ops, (0..=200).collect::<Vec<_>>());
}

// ---- P-10 update ----

#[test]
fn p10_update_replaces_only_given_fields_and_every_member_is_told() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let party = ok(alice.party_create(true, 4, r#"{"a":1}"#, false)).party_id;
    join_open(&mut bob, party);
    drain(&mut alice);

    ok(alice.party_update(party, Some(false), None, None));
    let closed_labelled = PartyEvent::Updated {
        party_id: party,
        open: false,
        hidden: false,
        max_size: 4,
        label: r#"{"a":1}"#.into(),
        lobby: Default::default(),
        version: 0,
    };
    assert_eq!(drain(&mut alice), vec![closed_labelled.clone()], "the label survives (Nakama would drop it)");
    assert_eq!(drain(&mut bob), vec![closed_labelled]);
    assert_eq!(drain(&mut zed), vec![]);

    assert_eq!(code(alice.party_update(party, None, Some(true), None)), ErrorCode::BadInput, "hidden + label");
    assert_eq!(code(alice.party_update(party, None, None, Some("[]"))), ErrorCode::BadInput);
    assert_eq!(code(bob.party_update(party, Some(true), None, None)), ErrorCode::PartyNotLeader);
    assert_eq!(code(zed.party_update(party, Some(true), None, None)), ErrorCode::PartyNotMember);
    assert_eq!(drain(&mut bob), vec![], "refused updates change nothing and tell nobody");
    let snapshot = ok(alice.party_get(party));
    assert_eq!((snapshot.open, snapshot.hidden, snapshot.label.as_str()), (false, false, r#"{"a":1}"#));

    ok(alice.party_update(party, None, Some(true), Some("")));
    assert_eq!(
        drain(&mut bob),
        vec![PartyEvent::Updated {
            party_id: party,
            open: false,
            hidden: true,
            max_size: 4,
            label: String::new(),
            lobby: Default::default(),
            version: 0
        }]
    );
    // Once open again, a newcomer joins directly.
    ok(alice.party_update(party, Some(true), None, None));
    join_open(&mut zed, party);
}

// ---- P-11 get and my parties ----

#[test]
fn p11_get_is_for_members_and_my_parties_lists_the_sessions_parties_in_join_order() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let first = ok(bob.party_create(true, 8, r#"{"n":1}"#, false)).party_id;
    let second = create(&mut alice, true, 3);
    join_open(&mut alice, first);
    join_open(&mut bob, second);
    let closed = create(&mut zed, false, 2);
    ok(alice.party_join(closed)); // pending requests are not memberships

    assert_eq!(ok(alice.party_get(first)).members, vec![me(&bob), me(&alice)]);
    assert_eq!(code(zed.party_get(first)), ErrorCode::PartyNotMember);
    assert_eq!(code(zed.party_get(PartyId(3))), ErrorCode::PartyNotFound);

    let mine = ok(alice.party_my_parties());
    let ids: Vec<PartyId> = mine.iter().map(|p| p.party_id).collect();
    assert_eq!(ids, vec![second, first], "in the order alice joined them");
    assert_eq!((mine[1].member_count, mine[1].max_size, mine[1].label.as_str()), (2, 8, r#"{"n":1}"#));
    assert_eq!(mine[1].leader, me(&bob));
    assert_eq!(mine[0].leader, me(&alice));
    assert_eq!(ok(server.connect("nobody").party_my_parties()), vec![]);
}

// ---- P-12 permissions and presence matching ----

#[test]
fn p12_leader_only_operations_from_a_non_leader_are_refused_with_not_leader() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let party = create(&mut alice, false, 4);
    ok(carol.party_join(party));
    let (a, c) = (me(&alice), me(&carol));
    ok(alice.party_accept(party, &c));
    ok(alice.party_update(party, Some(true), None, None));
    join_open(&mut bob, party);
    drain(&mut alice);
    drain(&mut carol);

    assert_eq!(code(bob.party_join_requests(party)), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_accept(party, &c)), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_remove(party, &c)), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_promote(party, &me(&bob))), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_close(party)), ErrorCode::PartyNotLeader);
    assert_eq!(code(bob.party_update(party, Some(false), None, None)), ErrorCode::PartyNotLeader);
    assert_eq!(drain(&mut alice), vec![]);
    assert_eq!(drain(&mut carol), vec![]);
    assert_eq!(ok(alice.party_get(party)).leader, a);
}

#[test]
fn p12_a_named_presence_matches_by_session_and_must_agree_on_user_and_username() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let party = create(&mut alice, true, 4);
    join_open(&mut bob, party);
    join_open(&mut bob2, party);
    drain(&mut alice);
    drain(&mut bob);
    let mut wrong_name = me(&bob);
    wrong_name.username = Username::new("Robert");
    assert_eq!(code(alice.party_promote(party, &wrong_name)), ErrorCode::PartyPresenceMismatch);
    let mut wrong_user = me(&bob);
    wrong_user.user_id = UserId::new("carol");
    assert_eq!(code(alice.party_remove(party, &wrong_user)), ErrorCode::PartyPresenceMismatch);
    // Same user, other session: only that session is affected.
    ok(alice.party_remove(party, &me(&bob2)));
    assert_eq!(drain(&mut bob2), vec![removed(party, RemovedReason::Kicked)]);
    assert_eq!(drain(&mut bob), vec![leaves(party, &me(&bob2))]);
    assert_eq!(ok(alice.party_get(party)).members, vec![me(&alice), me(&bob)]);
}

// ---- C-6 for parties ----

#[test]
fn c6_disconnect_leaves_every_party_and_drops_pending_requests() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let first = create(&mut alice, true, 4);
    let second = create(&mut carol, true, 4);
    let closed = create(&mut carol, false, 4);
    join_open(&mut bob, first);
    join_open(&mut bob, second);
    ok(bob.party_join(closed));
    drain(&mut alice);
    drain(&mut carol);
    let b = me(&bob);
    bob.close();
    assert_eq!(next_events(&mut alice, 1), vec![leaves(first, &b)]);
    assert_eq!(next_events(&mut carol, 1), vec![leaves(second, &b)]);
    assert_eq!(ok(carol.party_join_requests(closed)), vec![], "the pending request vanished");
    assert_eq!(drain(&mut carol), vec![]);
}
