//! End-to-end tests of the lobby extensions (SPEC L-1 one party per user, L-2 invitations, L-3
//! party codes, L-4 strategies, L-9 versions and snapshot events) over real loopback sockets:
//! several clients per test against a server on 127.0.0.1:0, each test named after its rule,
//! with the exact events every client receives, in order, versions included.
//!
//! "Nobody else received anything" is proven without sleeping, as in `tests/party.rs`: `drain`
//! pings the client and takes every event that arrived before the Pong. The server answers
//! requests in order and queues a request's events before its reply goes out, so once the actor
//! has its reply, any event it caused for a bystander is queued ahead of the bystander's Pong.
//! Effects of a timer (expiry) or of another connection's close are waited for with deadlines.

mod common;

use common::*;
use huddle::client::{Client, PartyResult};
use huddle::core::{
    ConnectOptions, Event, InvitationEndReason, InviteStrategy, JoinStrategy, LobbyEvent, LobbyRequest, LobbySettings,
    PartyCode, PartyEvent, PartyId, PartyInvitation, PartyReply, PartySnapshot, PartySummary, Presence, RemovedReason,
    Reply, Request, StatusEvent, StatusPresence, UnixMillis, UserId,
};
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

/// The error reply's code and message.
fn error<T: std::fmt::Debug>(result: PartyResult<T>) -> (ErrorCode, String) {
    match result {
        Ok(Ok(value)) => panic!("request should have failed, got {value:?}"),
        Ok(Err(error)) => (error.code, error.message),
        Err(e) => panic!("transport failed: {e}"),
    }
}

/// Every event that reached `client` before a Pong to a fresh Ping (see the file comment).
fn drain(client: &mut Client) -> Vec<Event> {
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    client.take_events()
}

/// The next `n` events, waited for (effects of a timer or of another connection's close).
fn next_events(client: &mut Client, n: usize) -> Vec<Event> {
    (0..n).map(|_| client.wait_event(WAIT, |_| true).expect("an event")).collect()
}

fn me(client: &Client) -> Presence {
    client.presence().clone()
}

fn snapshots() -> ConnectOptions {
    ConnectOptions { snapshots: true, ..ConnectOptions::default() }
}

fn one_party_per_user() -> Limits {
    Limits { one_party_per_user: true, ..Limits::default() }
}

fn joins(party_id: PartyId, who: &Presence, version: u64) -> Event {
    Event::Party(PartyEvent::Presence { party_id, joins: vec![who.clone()], leaves: vec![], version })
}

fn leaves(party_id: PartyId, who: &Presence, version: u64) -> Event {
    Event::Party(PartyEvent::Presence { party_id, joins: vec![], leaves: vec![who.clone()], version })
}

fn leader(party_id: PartyId, who: &Presence, version: u64) -> Event {
    Event::Party(PartyEvent::Leader { party_id, leader: who.clone(), version })
}

fn removed(party_id: PartyId, reason: RemovedReason, version: u64) -> Event {
    Event::Party(PartyEvent::Removed { party_id, reason, version })
}

fn snapshot(party: &PartySnapshot) -> Event {
    Event::Lobby(LobbyEvent::Snapshot(Box::new(party.clone())))
}

fn ended(party_id: PartyId, invitee: &str, reason: InvitationEndReason) -> Event {
    Event::Lobby(LobbyEvent::InvitationEnded { party_id, invitee: UserId::new(invitee), reason })
}

fn rejected(party_id: PartyId, invitee: &str) -> Event {
    Event::Lobby(LobbyEvent::InvitationRejected { party_id, invitee: UserId::new(invitee) })
}

fn sent(party_id: PartyId, invitee: &str, inviter: &Presence, expires_at: UnixMillis) -> Event {
    Event::Lobby(LobbyEvent::InvitationSent {
        party_id,
        invitee: UserId::new(invitee),
        inviter: inviter.clone(),
        expires_at,
    })
}

fn summary(party: &PartySnapshot) -> PartySummary {
    PartySummary {
        party_id: party.party_id,
        open: party.open,
        hidden: party.hidden,
        max_size: party.max_size,
        member_count: party.members.len() as u16,
        label: party.label.clone(),
        leader: party.leader.clone(),
        lobby: party.lobby.clone(),
        version: party.version,
    }
}

fn invited(party: &PartySnapshot, inviter: &Presence, expires_at: UnixMillis) -> Event {
    Event::Lobby(LobbyEvent::Invited(Box::new(PartyInvitation {
        party: summary(party),
        inviter: inviter.clone(),
        expires_at,
    })))
}

/// The expiry an invitation event carries (the server's clock decides it). It lies after the
/// moment the test began: the one thing a test can say about a wall-clock time.
fn expiry(events: &[Event], since_unix_s: u64) -> UnixMillis {
    let at = events
        .iter()
        .find_map(|e| match e {
            Event::Lobby(LobbyEvent::InvitationSent { expires_at, .. }) => Some(*expires_at),
            Event::Lobby(LobbyEvent::Invited(invitation)) => Some(invitation.expires_at),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no invitation event among {events:?}"));
    assert!(at.0 > since_unix_s * 1000, "expires_at is wall-clock Unix ms");
    at
}

fn create(client: &mut Client, open: bool, max_size: u32) -> PartySnapshot {
    ok(client.party_create(open, max_size, "", false))
}

fn create_with(client: &mut Client, open: bool, join: JoinStrategy, invite: InviteStrategy) -> PartySnapshot {
    let lobby = LobbySettings { join_strategy: join, invite_strategy: invite };
    ok(client.party_create_with(open, 8, "", false, lobby))
}

fn join_open(client: &mut Client, party_id: PartyId) -> PartySnapshot {
    match ok(client.party_join(party_id)) {
        PartyReply::Info(snapshot) => *snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// `code` with its letters' cases swapped: codes match case-insensitively.
fn other_case(code: PartyCode) -> String {
    code.as_str().chars().map(|c| c.to_ascii_lowercase()).collect()
}

// ---- L-2 invitations: the AccelByte sequences ----

/// AccelByte's 13-step "accept a party invitation" sequence, with huddle's messages: an invite is
/// answered with `PartyOk` and every member hears `PartyInvitationSent`; the invitee's sessions
/// get `PartyInvited`; an accept is answered with the snapshot; the members hear `joins`; and
/// everyone connected with `?snapshots=true` gets the snapshot after each change
/// (AccelByte's `partyDataUpdateNotif`). Invitations are not changes: no snapshot, no version.
#[test]
fn l2_accelbyte_13_step_invite_sequence() {
    let since = unix_now();
    let server = TestServer::with_limits(one_party_per_user());
    let mut p1 = server.connect_with("p1", snapshots());
    let mut p2 = server.connect_with("p2", snapshots());
    let mut p3 = server.connect_with("p3", snapshots());
    let party = create(&mut p1, false, 4);
    let id = party.party_id;
    assert_eq!(party.version, 1);
    assert_eq!(drain(&mut p1), vec![snapshot(&party)], "the creator's own change");

    // 1-3: p1 invites p2.
    ok(p1.party_invite(id, &["p2"]));
    let p1_events = drain(&mut p1);
    let at = expiry(&p1_events, since);
    assert_eq!(p1_events, vec![sent(id, "p2", &me(&p1), at)], "2: the inviter hears its invitation went out");
    assert_eq!(drain(&mut p2), vec![invited(&party, &me(&p1), at)], "3: the invitee is invited");
    assert_eq!(drain(&mut p3), vec![]);

    // 4-6: p2 accepts.
    let joined = ok(p2.party_invitation_accept(id));
    assert_eq!(joined.members, vec![me(&p1), me(&p2)], "5: the reply is the snapshot");
    assert_eq!(joined.version, 2);
    assert_eq!(drain(&mut p2), vec![snapshot(&joined)], "5: and the snapshot event");
    assert_eq!(drain(&mut p1), vec![joins(id, &me(&p2), 2), snapshot(&joined)], "6");

    // 7-10: p2 invites p3.
    ok(p2.party_invite(id, &["p3"]));
    let p2_events = drain(&mut p2);
    let at = expiry(&p2_events, since);
    assert_eq!(p2_events, vec![sent(id, "p3", &me(&p2), at)], "8");
    assert_eq!(drain(&mut p1), vec![sent(id, "p3", &me(&p2), at)], "9: the other members hear it");
    assert_eq!(drain(&mut p3), vec![invited(&joined, &me(&p2), at)], "10");

    // 11-13: p3 accepts.
    let full = ok(p3.party_invitation_accept(id));
    assert_eq!((full.members, full.version), (vec![me(&p1), me(&p2), me(&p3)], 3), "12");
    let full = ok(p1.party_get(id));
    assert_eq!(drain(&mut p3), vec![snapshot(&full)], "12");
    for member in [&mut p1, &mut p2] {
        assert_eq!(drain(member), vec![joins(id, &me(&p3), 3), snapshot(&full)], "13");
    }
    assert_eq!(ok(p3.party_invitations()), vec![], "the invitation is consumed");
}

/// AccelByte's reject sequence: steps 1-10 as above, then the invitee rejects; the inviter and
/// every member hear it; nothing in the party changed (no version, no snapshot).
#[test]
fn l2_accelbyte_reject_sequence() {
    let since = unix_now();
    let server = TestServer::with_limits(one_party_per_user());
    let mut p1 = server.connect_with("p1", snapshots());
    let mut p2 = server.connect_with("p2", snapshots());
    let mut p3 = server.connect_with("p3", snapshots());
    let id = create(&mut p1, false, 4).party_id;
    ok(p1.party_invite(id, &["p2"]));
    ok(p2.party_invitation_accept(id));
    ok(p2.party_invite(id, &["p3"]));
    let party = ok(p1.party_get(id));
    drain(&mut p1);
    drain(&mut p2);
    let p3_events = drain(&mut p3);
    assert_eq!(p3_events, vec![invited(&party, &me(&p2), expiry(&p3_events, since))], "10");

    // 11-13: p3 rejects.
    ok(p3.party_invitation_reject(id));
    assert_eq!(drain(&mut p3), vec![], "12: the reply alone");
    for member in [&mut p1, &mut p2] {
        assert_eq!(drain(member), vec![rejected(id, "p3")], "13: no snapshot: nothing changed");
    }
    assert_eq!(ok(p1.party_get(id)), party, "same members, same version");
    assert_eq!(code(p3.party_invitation_accept(id)), ErrorCode::InvitationNotFound, "a rejected invitation is gone");
    assert_eq!(code(p3.party_invitation_reject(id)), ErrorCode::InvitationNotFound);
}

#[test]
fn l2_an_invitation_reaches_every_session_of_the_invitee_and_the_others_learn_how_it_ended() {
    let since = unix_now();
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob1 = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let party = create(&mut alice, false, 4);
    let id = party.party_id;

    ok(alice.party_invite(id, &["bob"]));
    let at = expiry(&drain(&mut alice), since);
    for bob in [&mut bob1, &mut bob2] {
        assert_eq!(drain(bob), vec![invited(&party, &me(&alice), at)]);
    }
    let listed = ok(bob1.party_invitations());
    assert_eq!(listed, vec![PartyInvitation { party: summary(&party), inviter: me(&alice), expires_at: at }]);
    assert_eq!(ok(bob2.party_invitations()), listed, "the list is the user's, from any session");

    // bob2 accepts: it joins (a closed party), bob1 learns the invitation was accepted.
    let joined = ok(bob2.party_invitation_accept(id));
    assert_eq!(joined.members, vec![me(&alice), me(&bob2)]);
    assert_eq!(drain(&mut bob1), vec![ended(id, "bob", InvitationEndReason::Accepted)]);
    assert_eq!(drain(&mut bob2), vec![]);
    assert_eq!(drain(&mut alice), vec![joins(id, &me(&bob2), 2)]);
    assert_eq!(code(bob1.party_invitation_accept(id)), ErrorCode::InvitationNotFound, "consumed");
    assert_eq!(ok(bob1.party_invitations()), vec![]);

    // A rejection from one session: the other hears `rejected`, the members the rejection.
    let mut carol1 = server.connect("carol");
    let mut carol2 = server.connect("carol");
    ok(alice.party_invite(id, &["carol"]));
    drain(&mut alice);
    drain(&mut bob2);
    drain(&mut carol1);
    drain(&mut carol2);
    ok(carol1.party_invitation_reject(id));
    assert_eq!(drain(&mut carol1), vec![]);
    assert_eq!(drain(&mut carol2), vec![ended(id, "carol", InvitationEndReason::Rejected)]);
    assert_eq!(drain(&mut alice), vec![rejected(id, "carol")]);
    assert_eq!(drain(&mut bob2), vec![rejected(id, "carol")]);
    assert_eq!(drain(&mut bob1), vec![], "a session of a member user that is not a member hears nothing");
}

#[test]
fn l2_a_session_that_connects_while_invited_hears_of_it_after_its_welcome_and_own_status() {
    let since = unix_now();
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let party = create(&mut alice, true, 4);
    ok(alice.party_invite(party.party_id, &["carol", "dave"]));
    let alice_events = drain(&mut alice);
    let at = expiry(&alice_events, since);
    assert_eq!(
        alice_events,
        vec![sent(party.party_id, "carol", &me(&alice), at), sent(party.party_id, "dave", &me(&alice), at)],
        "offline and unknown users are invited all the same, in request order"
    );

    // `connect` returns once the welcome arrived; the own-status event comes next, then the
    // invitation.
    let mut carol = server.connect_with("carol", ConnectOptions { status_visible: true, ..ConnectOptions::default() });
    let own_status = Event::Status(StatusEvent {
        joins: vec![StatusPresence { presence: me(&carol), status: String::new() }],
        leaves: vec![],
    });
    assert_eq!(drain(&mut carol), vec![own_status, invited(&party, &me(&alice), at)]);
    let mut dave = server.connect("dave");
    assert_eq!(drain(&mut dave), vec![invited(&party, &me(&alice), at)]);
    assert_eq!(drain(&mut alice), vec![], "a connect tells the party nothing");
}

#[test]
fn l2_an_invitation_expires_after_its_ttl_and_everyone_concerned_is_told() {
    let since = unix_now();
    let server = TestServer::with_limits(Limits { invitation_ttl_ms: 200, ..Limits::default() });
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let id = create(&mut alice, true, 4).party_id;
    join_open(&mut carol, id);
    drain(&mut alice);
    ok(alice.party_invite(id, &["bob"]));
    let at = expiry(&next_events(&mut bob, 1), since);
    let expired = ended(id, "bob", InvitationEndReason::Expired);
    assert_eq!(next_events(&mut bob, 1), vec![expired.clone()], "the invitee's sessions");
    assert_eq!(next_events(&mut alice, 2), vec![sent(id, "bob", &me(&alice), at), expired.clone()], "the members");
    assert_eq!(next_events(&mut carol, 2), vec![sent(id, "bob", &me(&alice), at), expired]);
    assert_eq!(code(bob.party_invitation_accept(id)), ErrorCode::InvitationNotFound, "an expired invitation");
    assert_eq!(ok(bob.party_invitations()), vec![]);
    assert_eq!(ok(alice.party_get(id)).members, vec![me(&alice), me(&carol)], "nothing changed");
    assert_eq!(server.stats().party_invitations_pending, 0);
}

#[test]
fn l2_a_refreshed_invitation_names_its_new_inviter_and_is_announced_again() {
    let since = unix_now();
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let id = create(&mut alice, true, 4).party_id;
    join_open(&mut bob, id);
    ok(alice.party_invite(id, &["zed"]));
    drain(&mut alice);
    drain(&mut bob);
    drain(&mut zed);

    ok(bob.party_invite(id, &["zed", "zed"]));
    let party = ok(alice.party_get(id));
    let zed_events = drain(&mut zed);
    let at = expiry(&zed_events, since);
    assert_eq!(zed_events, vec![invited(&party, &me(&bob), at)], "once, though named twice");
    let b = me(&bob);
    for member in [&mut alice, &mut bob] {
        assert_eq!(drain(member), vec![sent(id, "zed", &b, at)]);
    }
    let listed = ok(zed.party_invitations());
    assert_eq!(listed.len(), 1, "one pending invitation per (party, user)");
    assert_eq!(listed[0].inviter, me(&bob));
    assert_eq!(ok(alice.party_get(id)).version, party.version, "invitations are not changes");
}

#[test]
fn l2_the_inviter_or_the_leader_cancels_and_nobody_else() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut zed = server.connect("zed");
    let id = create(&mut alice, true, 8).party_id;
    join_open(&mut bob, id);
    join_open(&mut carol, id);
    ok(bob.party_invite(id, &["zed", "yan"]));
    for client in [&mut alice, &mut bob, &mut carol, &mut zed] {
        drain(client);
    }

    assert_eq!(code(carol.party_invitation_cancel(id, "zed")), ErrorCode::InvitationCancelNotAllowed);
    assert_eq!(code(zed.party_invitation_cancel(id, "zed")), ErrorCode::PartyNotMember);
    assert_eq!(code(alice.party_invitation_cancel(id, "nobody")), ErrorCode::InvitationNotFound);
    for client in [&mut alice, &mut bob, &mut carol, &mut zed] {
        assert_eq!(drain(client), vec![], "refused cancels tell nobody");
    }

    ok(bob.party_invitation_cancel(id, "zed"));
    let cancelled = ended(id, "zed", InvitationEndReason::Cancelled);
    assert_eq!(drain(&mut zed), vec![cancelled.clone()], "the invitee's sessions");
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(drain(member), vec![cancelled.clone()], "and every member");
    }
    assert_eq!(code(zed.party_invitation_accept(id)), ErrorCode::InvitationNotFound, "a cancelled invitation");
    ok(alice.party_invitation_cancel(id, "yan"));
    assert_eq!(drain(&mut bob), vec![ended(id, "yan", InvitationEndReason::Cancelled)], "the leader may too");
}

#[test]
fn l2_when_the_party_ends_its_invitees_are_told_party_gone() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    // Closed by its leader.
    let first = create(&mut alice, true, 4).party_id;
    ok(alice.party_invite(first, &["bob", "carol"]));
    drain(&mut alice);
    drain(&mut bob);
    drain(&mut carol);
    ok(alice.party_close(first));
    assert_eq!(drain(&mut alice), vec![removed(first, RemovedReason::Closed, 2)]);
    assert_eq!(drain(&mut bob), vec![ended(first, "bob", InvitationEndReason::PartyGone)]);
    assert_eq!(drain(&mut carol), vec![ended(first, "carol", InvitationEndReason::PartyGone)]);
    assert_eq!(code(bob.party_invitation_accept(first)), ErrorCode::PartyNotFound);
    assert_eq!(ok(bob.party_invitations()), vec![]);

    // Emptied by its last member's disconnect.
    let second = create(&mut alice, true, 4).party_id;
    ok(alice.party_invite(second, &["bob"]));
    drain(&mut bob);
    alice.close();
    assert_eq!(next_events(&mut bob, 1), vec![ended(second, "bob", InvitationEndReason::PartyGone)]);
    server.wait_stats("no invitation pending", |s| s.party_invitations_pending == 0);
}

#[test]
fn l2_an_invited_users_plain_join_accepts_even_a_closed_or_invited_only_party() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob1 = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let closed = create(&mut alice, false, 4).party_id;
    ok(alice.party_invite(closed, &["bob"]));
    drain(&mut alice);
    drain(&mut bob2);
    let joined = join_open(&mut bob1, closed);
    assert_eq!(joined.members, vec![me(&alice), me(&bob1)], "no join request: a member at once");
    assert_eq!(drain(&mut alice), vec![joins(closed, &me(&bob1), 2)]);
    assert_eq!(drain(&mut bob2), vec![ended(closed, "bob", InvitationEndReason::Accepted)]);

    let only = create_with(&mut alice, true, JoinStrategy::InvitedOnly, InviteStrategy::AllMembers).party_id;
    let mut carol = server.connect("carol");
    assert_eq!(code(carol.party_join(only)), ErrorCode::PartyNotInvited);
    ok(alice.party_invite(only, &["carol"]));
    assert_eq!(join_open(&mut carol, only).members, vec![me(&alice), me(&carol)]);
}

#[test]
fn l2_bounds_per_request_party_and_user_refuse_the_whole_request() {
    let limits = Limits {
        invitees_per_request_max: 3,
        invitations_per_party_max: 4,
        invitations_per_user_max: 2,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits);
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let id = create(&mut alice, true, 8).party_id;
    assert_eq!(code(alice.party_invite(id, &["a", "b", "c", "d"])), ErrorCode::LimitExceeded, "4 > 3 per request");
    ok(alice.party_invite(id, &["a", "b", "c"]));
    let (code, message) = error(alice.party_invite(id, &["a", "d", "e"]));
    assert_eq!(code, ErrorCode::LimitExceeded, "3 pending + 2 new > 4 per party");
    assert!(message.contains("invitations_per_party_max"), "{message}");
    ok(alice.party_invite(id, &["a", "d"]));

    // Per invitee user, over all parties.
    let other = create(&mut bob, true, 8).party_id;
    let third = ok(bob.party_create(true, 8, "", false)).party_id;
    ok(bob.party_invite(other, &["a"]));
    let (code, message) = error(bob.party_invite(third, &["x", "a"]));
    assert_eq!(code, ErrorCode::LimitExceeded);
    assert!(message.contains("\"a\"") && message.contains("invitations_per_user_max"), "{message}");
    assert_eq!(code_of_list(&server, "x"), 0, "all or nothing: x was not invited");
}

/// How many invitations `user` has pending, asked from a fresh session of it.
fn code_of_list(server: &TestServer, user: &str) -> usize {
    let mut client = server.connect(user);
    let n = ok(client.party_invitations()).len();
    client.close();
    n
}

#[test]
fn l2_bad_invitations_get_their_own_error_and_change_nothing() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let id = create(&mut alice, true, 4).party_id;
    join_open(&mut bob, id);
    ok(alice.party_invite(id, &["carol"]));
    drain(&mut alice);
    drain(&mut bob);
    let before = ok(alice.party_get(id));

    let unknown = PartyId(12345);
    assert_eq!(code(alice.party_invite(unknown, &["carol"])), ErrorCode::PartyNotFound);
    assert_eq!(code(zed.party_invite(id, &["carol"])), ErrorCode::PartyNotMember, "a non-member inviting");
    assert_eq!(code(alice.party_invite(id, &[])), ErrorCode::BadInput, "nobody to invite");
    let many: Vec<String> = (0..17).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(code(alice.party_invite(id, &many)), ErrorCode::LimitExceeded, "17 invitees");
    assert_eq!(code(alice.party_invite(id, &["dave", "alice"])), ErrorCode::InviteeIsSelf);
    let (code_in, message) = error(alice.party_invite(id, &["dave", "bob"]));
    assert_eq!(code_in, ErrorCode::InviteeInParty);
    assert!(message.contains("\"bob\""), "the error names the invitee: {message}");
    let long = "x".repeat(129);
    let (code_bad, message) = error(alice.party_invite(id, &["dave", &long]));
    assert_eq!(code_bad, ErrorCode::InviteeInvalid);
    assert!(message.contains("xxxx"), "the error names the invitee: {message}");
    assert_eq!(code(alice.party_invite(id, &["dave", ""])), ErrorCode::InviteeInvalid);
    assert_eq!(code(zed.party_invitation_accept(unknown)), ErrorCode::PartyNotFound);
    assert_eq!(code(zed.party_invitation_accept(id)), ErrorCode::InvitationNotFound, "never invited");
    assert_eq!(code(zed.party_invitation_reject(id)), ErrorCode::InvitationNotFound);
    assert_eq!(code(alice.party_invitation_cancel(unknown, "carol")), ErrorCode::PartyNotFound);

    for client in [&mut alice, &mut bob, &mut zed] {
        assert_eq!(drain(client), vec![], "refused requests tell nobody");
    }
    assert_eq!(ok(alice.party_get(id)), before, "nothing changed");
    let mut dave = server.connect("dave");
    assert_eq!(ok(dave.party_invitations()), vec![], "dave was not invited by any refused request");
    let mut carol = server.connect("carol");
    assert_eq!(ok(carol.party_invitations()).len(), 1, "carol's invitation is still there");
}

// ---- L-4 strategies ----

#[test]
fn l4_strategies_are_set_at_create_changed_by_the_leader_and_in_every_snapshot() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create_with(&mut alice, true, JoinStrategy::FriendsOfLeader, InviteStrategy::LeaderOnly);
    let lobby =
        LobbySettings { join_strategy: JoinStrategy::FriendsOfLeader, invite_strategy: InviteStrategy::LeaderOnly };
    assert_eq!(party.lobby, lobby);
    assert_eq!(ok(alice.party_my_parties())[0].lobby, lobby, "summaries carry them");
    // Friends strategies are stored and, until friend lists exist, admit like public.
    assert_eq!(join_open(&mut bob, party.party_id).lobby, lobby);
    drain(&mut alice);

    assert_eq!(
        code(bob.party_update_strategies(party.party_id, Some(JoinStrategy::Public), None)),
        ErrorCode::PartyNotLeader
    );
    ok(alice.party_update_strategies(party.party_id, Some(JoinStrategy::InvitedOnly), None));
    let updated = Event::Party(PartyEvent::Updated {
        party_id: party.party_id,
        open: true,
        hidden: false,
        max_size: 8,
        label: String::new(),
        lobby: LobbySettings { join_strategy: JoinStrategy::InvitedOnly, invite_strategy: InviteStrategy::LeaderOnly },
        version: 3,
    });
    assert_eq!(drain(&mut alice), vec![updated.clone()], "absent fields keep their value");
    assert_eq!(drain(&mut bob), vec![updated]);
    assert_eq!(ok(bob.party_get(party.party_id)).lobby.join_strategy, JoinStrategy::InvitedOnly);
}

#[test]
fn l4_not_allowed_refuses_joins_requests_codes_and_invitations() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut zed = server.connect("zed");
    let open = create(&mut alice, true, 4).party_id;
    let closed = create(&mut alice, false, 4).party_id;
    ok(alice.party_invite(open, &["zed"]));
    let code_of_open = ok(alice.party_code(open));
    for party in [open, closed] {
        ok(alice.party_update_strategies(party, Some(JoinStrategy::NotAllowed), None));
    }
    drain(&mut alice);
    drain(&mut zed);
    assert_eq!(code(zed.party_join(open)), ErrorCode::PartyJoinNotAllowed, "a join");
    assert_eq!(code(zed.party_join(closed)), ErrorCode::PartyJoinNotAllowed, "a join request");
    assert_eq!(code(zed.party_join_by_code(code_of_open.as_str())), ErrorCode::PartyJoinNotAllowed, "a code join");
    assert_eq!(code(alice.party_invite(open, &["yan"])), ErrorCode::PartyJoinNotAllowed, "an invitation");
    assert_eq!(code(zed.party_invitation_accept(open)), ErrorCode::PartyJoinNotAllowed, "one sent before");
    assert_eq!(drain(&mut alice), vec![]);
    assert_eq!(ok(alice.party_join_requests(closed)), vec![]);
    // Reopened, the pending invitation works again.
    ok(alice.party_update_strategies(open, Some(JoinStrategy::Public), None));
    assert_eq!(ok(zed.party_invitation_accept(open)).members, vec![me(&alice), me(&zed)]);
}

#[test]
fn l4_invited_only_refuses_plain_joins_and_requests_but_not_invitations_or_codes() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let closed = create_with(&mut alice, false, JoinStrategy::InvitedOnly, InviteStrategy::AllMembers).party_id;
    assert_eq!(code(zed.party_join(closed)), ErrorCode::PartyNotInvited, "no join request either");
    assert_eq!(ok(alice.party_join_requests(closed)), vec![]);
    let code_of = ok(alice.party_code(closed));
    assert_eq!(ok(bob.party_join_by_code(&other_case(code_of))).members, vec![me(&alice), me(&bob)]);
    ok(alice.party_invite(closed, &["zed"]));
    assert_eq!(ok(zed.party_invitation_accept(closed)).members, vec![me(&alice), me(&bob), me(&zed)]);
}

#[test]
fn l4_leader_only_invites_refuse_other_members() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let id = create_with(&mut alice, true, JoinStrategy::Public, InviteStrategy::LeaderOnly).party_id;
    join_open(&mut bob, id);
    assert_eq!(code(bob.party_invite(id, &["zed"])), ErrorCode::PartyNotLeader);
    ok(alice.party_invite(id, &["zed"]));
    ok(alice.party_update_strategies(id, None, Some(InviteStrategy::AllMembers)));
    ok(bob.party_invite(id, &["yan"]));
}

// ---- L-1 one party per user ----

#[test]
fn l1_off_by_default_a_user_may_be_in_several_parties() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let first = create(&mut alice, true, 4).party_id;
    let second = create(&mut alice, true, 4).party_id;
    join_open(&mut bob, first);
    join_open(&mut bob, second);
    join_open(&mut bob2, first);
    ok(bob.party_create(true, 2, "", false));
    let code_of = ok(alice.party_code(second));
    ok(bob2.party_join_by_code(code_of.as_str()));
    ok(alice.party_invite(first, &["carol"]));
    let mut carol = server.connect("carol");
    create(&mut carol, true, 2);
    assert_eq!(ok(carol.party_invitation_accept(first)).members.len(), 4, "no move without the option");
    assert_eq!(ok(carol.party_my_parties()).len(), 2);
}

#[test]
fn l1_a_user_in_a_party_is_refused_every_other_way_in() {
    let server = TestServer::with_limits(one_party_per_user());
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut bob2 = server.connect("bob");
    let mine = create(&mut alice, true, 4).party_id;
    let open = create(&mut bob, true, 4).party_id;
    assert_eq!(code(alice.party_create(true, 4, "", false)), ErrorCode::PartyAlreadyInParty, "a second create");
    let mut carol = server.connect("carol");
    let closed = create(&mut carol, false, 4).party_id;
    assert_eq!(code(alice.party_join(open)), ErrorCode::PartyAlreadyInParty, "a join");
    assert_eq!(code(alice.party_join(closed)), ErrorCode::PartyAlreadyInParty, "a join request");
    let code_of = ok(bob.party_code(open));
    assert_eq!(code(alice.party_join_by_code(code_of.as_str())), ErrorCode::PartyAlreadyInParty, "a code join");
    ok(bob.party_invite(open, &["alice"]));
    assert_eq!(code(alice.party_join(open)), ErrorCode::PartyAlreadyInParty, "an invited user's plain join");
    assert_eq!(code(bob2.party_join(open)), ErrorCode::PartyAlreadyInParty, "another session of the same user");
    assert_eq!(code(bob2.party_create(true, 4, "", false)), ErrorCode::PartyAlreadyInParty, "from any session");
    assert_eq!(join_open(&mut bob, open).members, vec![me(&bob)], "re-joining its own party is P-2's no-op");
    assert_eq!(ok(alice.party_my_parties()).iter().map(|p| p.party_id).collect::<Vec<_>>(), vec![mine]);
}

#[test]
fn l1_accepting_an_invitation_moves_the_user_out_of_its_party_first() {
    let server = TestServer::with_limits(one_party_per_user());
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut bob_phone = server.connect("bob");
    let mut carol = server.connect("carol");
    let old = create(&mut bob, true, 4).party_id;
    join_open(&mut carol, old);
    let new = create(&mut alice, false, 4).party_id;
    ok(alice.party_invite(new, &["bob"]));
    for client in [&mut alice, &mut bob, &mut bob_phone, &mut carol] {
        drain(client);
    }

    // bob's other session accepts: bob's session in the old party is moved out first.
    let joined = ok(bob_phone.party_invitation_accept(new));
    assert_eq!(joined.members, vec![me(&alice), me(&bob_phone)]);
    assert_eq!(
        drain(&mut bob),
        vec![removed(old, RemovedReason::Moved, 3), ended(new, "bob", InvitationEndReason::Accepted)]
    );
    assert_eq!(
        drain(&mut carol),
        vec![leader(old, &me(&carol), 3), leaves(old, &me(&bob), 3)],
        "the usual leave events"
    );
    assert_eq!(drain(&mut alice), vec![joins(new, &me(&bob_phone), 2)]);
    assert_eq!(drain(&mut bob_phone), vec![]);
    assert_eq!(ok(carol.party_get(old)).members, vec![me(&carol)]);

    // Moving the last member out ends that party.
    let mut dave = server.connect("dave");
    let dave_party = create(&mut dave, true, 4).party_id;
    ok(dave.party_invite(dave_party, &["carol"]));
    drain(&mut carol);
    ok(carol.party_invitation_accept(dave_party));
    assert_eq!(drain(&mut carol), vec![removed(old, RemovedReason::Moved, 4)]);
    assert_eq!(code(alice.party_join(old)), ErrorCode::PartyNotFound);
}

#[test]
fn l1_a_leaders_accept_of_a_stale_join_request_fails_and_drops_it() {
    let server = TestServer::with_limits(one_party_per_user());
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let closed = create(&mut alice, false, 4).party_id;
    let open = create(&mut carol, true, 4).party_id;
    assert_eq!(ok(bob.party_join(closed)), PartyReply::JoinPending { party_id: closed });
    join_open(&mut bob, open);
    drain(&mut alice);
    drain(&mut bob);

    assert_eq!(code(alice.party_accept(closed, &me(&bob))), ErrorCode::PartyAlreadyInParty);
    assert_eq!(ok(alice.party_join_requests(closed)), vec![], "the stale request is dropped");
    assert_eq!(drain(&mut bob), vec![], "the requester, a member elsewhere, is not disturbed");
    assert_eq!(ok(alice.party_get(closed)).members, vec![me(&alice)]);
}

// ---- L-3 party codes ----

#[test]
fn l3_the_leader_reads_the_code_and_anyone_joins_with_it_in_any_case() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut zed = server.connect("zed");
    let party = create_with(&mut alice, false, JoinStrategy::InvitedOnly, InviteStrategy::AllMembers);
    let id = party.party_id;
    let code_of = ok(alice.party_code(id));
    assert_eq!(code_of.as_str().len(), 6);
    assert!(code_of.as_str().bytes().all(|c| PartyCode::ALPHABET.contains(&c)), "{code_of}");
    assert_eq!(ok(alice.party_code(id)), code_of, "stable until regenerated");
    ok(alice.party_invite(id, &["bob"]));
    ok(bob.party_invitation_accept(id));
    assert_eq!(code(bob.party_code(id)), ErrorCode::PartyNotLeader);
    assert_eq!(code(zed.party_code(id)), ErrorCode::PartyNotMember);
    assert_eq!(code(zed.party_code(PartyId(1))), ErrorCode::PartyNotFound);
    drain(&mut alice);
    drain(&mut bob);

    let joined = ok(zed.party_join_by_code(&format!(" {} ", other_case(code_of))));
    assert_eq!(joined.members, vec![me(&alice), me(&bob), me(&zed)], "closed and invited-only: as an invitation");
    assert_eq!(drain(&mut alice), vec![joins(id, &me(&zed), 3)]);
    assert_eq!(drain(&mut bob), vec![joins(id, &me(&zed), 3)]);
    assert_eq!(ok(zed.party_join_by_code(code_of.as_str())), joined, "again: P-2's no-op");
    let other = create(&mut bob, true, 4).party_id;
    assert_ne!(ok(bob.party_code(other)), code_of, "unique among live parties");
}

#[test]
fn l3_a_regenerated_code_kills_the_old_one_at_once() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut zed = server.connect("zed");
    let id = create(&mut alice, true, 4).party_id;
    let old = ok(alice.party_code(id));
    let new = ok(alice.party_code_regenerate(id));
    assert_ne!(new, old);
    assert_eq!(ok(alice.party_code(id)), new);
    // The very next request with the old code is refused (one loop, one order: no window).
    assert_eq!(code(zed.party_join_by_code(old.as_str())), ErrorCode::PartyCodeNotFound);
    assert_eq!(ok(zed.party_join_by_code(new.as_str())).members, vec![me(&alice), me(&zed)]);
    assert_eq!(ok(alice.party_get(id)).version, 2, "a code is not a change: only the join moved the version");
    // Both orders on one connection: a code join queued right behind a regenerate (pipelined,
    // no wait between them) already sees the new code.
    let mut yan = server.connect("yan");
    let current = ok(alice.party_code(id));
    let regenerate = alice.send(&Request::Lobby(LobbyRequest::CodeRegenerate { party_id: id })).unwrap();
    let rejoin = alice.send(&Request::Lobby(LobbyRequest::JoinByCode { code: current.to_string() })).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    assert!(alice.wait_reply(regenerate, deadline).unwrap().is_ok());
    let stale = alice.wait_reply(rejoin, deadline).unwrap().expect_err("the old code is dead for its own leader too");
    assert_eq!(stale.code, ErrorCode::PartyCodeNotFound);
    assert_eq!(code(yan.party_join_by_code(current.as_str())), ErrorCode::PartyCodeNotFound);
}

#[test]
fn l3_a_session_that_guesses_wrong_too_often_is_refused_even_the_right_code_and_misses_are_counted() {
    let server = TestServer::with_limits(Limits { code_misses_per_minute_max: 3, ..Limits::default() });
    let mut alice = server.connect("alice");
    let mut guesser = server.connect("zed");
    let mut zed_phone = server.connect("zed");
    let id = create(&mut alice, true, 4).party_id;
    let right = ok(alice.party_code(id));
    for wrong in ["222222", "not-a-code", "ABCDE0"] {
        assert_eq!(code(guesser.party_join_by_code(wrong)), ErrorCode::PartyCodeNotFound, "{wrong}");
    }
    let (code_over, message) = error(guesser.party_join_by_code(right.as_str()));
    assert_eq!(code_over, ErrorCode::LimitExceeded, "even the right code, until the window allows");
    assert!(message.contains("code_misses_per_minute_max"), "{message}");
    assert_eq!(code(guesser.party_join_by_code("333333")), ErrorCode::LimitExceeded);
    assert_eq!(ok(alice.party_get(id)).members, vec![me(&alice)]);
    // The limit is per session.
    assert_eq!(ok(zed_phone.party_join_by_code(right.as_str())).members, vec![me(&alice), me(&zed_phone)]);
    server.wait_stats("three misses counted", |s| s.party_code_misses_total == 3);
}

// ---- L-9 versions and snapshots ----

/// Versions move by exactly one per request that changes what a member sees, however many
/// events it causes; requests that change nothing leave them; every state event carries the
/// version after its change; and a member connected with `?snapshots=true` gets, after the
/// deltas of each change, a snapshot equal to what `PartyGet` answers at that moment.
#[test]
fn l9_versions_move_by_one_per_change_and_snapshot_events_equal_party_get() {
    let server = TestServer::start();
    let mut alice = server.connect_with("alice", snapshots());
    let mut bob = server.connect("bob");
    let mut carol = server.connect_with("carol", snapshots());
    let mut dave = server.connect("dave");
    let party = create(&mut alice, true, 8);
    let id = party.party_id;
    assert_eq!(party.version, 1);
    assert_eq!(drain(&mut alice), vec![snapshot(&party)]);

    // Each step: (what it does, the events alice must see before her snapshot, the version).
    let mut expected_version = 1;
    let mut step = |what: &str, alice: &mut Client, bob: &mut Client, carol: &mut Client, changes: bool| {
        if changes {
            expected_version += 1;
        }
        let now = ok(alice.party_get(id));
        assert_eq!(now.version, expected_version, "{what}: version");
        let alice_events = drain(alice);
        let carol_events = drain(carol);
        let bob_events = drain(bob);
        if changes {
            assert_eq!(alice_events.last(), Some(&snapshot(&now)), "{what}: alice's snapshot is PartyGet's");
            if now.members.contains(carol.presence()) {
                assert_eq!(carol_events.last(), Some(&snapshot(&now)), "{what}: carol's snapshot");
            }
        } else {
            assert!(!alice_events.iter().any(|e| matches!(e, Event::Lobby(LobbyEvent::Snapshot(_)))), "{what}");
        }
        let is_snapshot = |e: &Event| matches!(e, Event::Lobby(LobbyEvent::Snapshot(_)));
        assert!(!bob_events.iter().any(is_snapshot), "{what}: bob asked for no snapshots");
        for event in alice_events.iter().chain(&carol_events).chain(&bob_events) {
            let version = match event {
                Event::Party(PartyEvent::Presence { version, .. })
                | Event::Party(PartyEvent::Leader { version, .. })
                | Event::Party(PartyEvent::Updated { version, .. })
                | Event::Party(PartyEvent::Removed { version, .. }) => *version,
                Event::Party(PartyEvent::Joined(s)) | Event::Lobby(LobbyEvent::Snapshot(s)) => s.version,
                _ => continue,
            };
            assert_eq!(version, now.version, "{what}: every state event carries the version after the change");
        }
    };

    let joined = join_open(&mut bob, id);
    assert_eq!(joined.version, 2, "the reply snapshot carries the version");
    step("bob joins", &mut alice, &mut bob, &mut carol, true);
    join_open(&mut carol, id);
    step("carol joins (she gets her own join's snapshot)", &mut alice, &mut bob, &mut carol, true);
    ok(alice.party_invite(id, &["erin"]));
    step("an invitation", &mut alice, &mut bob, &mut carol, false);
    ok(alice.party_code_regenerate(id));
    step("a code", &mut alice, &mut bob, &mut carol, false);
    ok(alice.party_data(id, 1, b"x"));
    step("party data", &mut alice, &mut bob, &mut carol, false);
    ok(alice.party_update(id, Some(false), None, Some(r#"{"m":1}"#)));
    step("an update of two settings: one step", &mut alice, &mut bob, &mut carol, true);
    ok(alice.party_update(id, Some(false), None, None));
    step("an update that changes nothing", &mut alice, &mut bob, &mut carol, false);
    assert_eq!(code(bob.party_close(id)), ErrorCode::PartyNotLeader);
    step("a refused request", &mut alice, &mut bob, &mut carol, false);
    ok(dave.party_join(id));
    step("a join request (not in a snapshot)", &mut alice, &mut bob, &mut carol, false);
    ok(alice.party_accept(id, &me(&dave)));
    step("an accepted request", &mut alice, &mut bob, &mut carol, true);
    ok(alice.party_promote(id, &me(&bob)));
    step("a promotion", &mut alice, &mut bob, &mut carol, true);
    ok(bob.party_remove(id, &me(&dave)));
    step("a kick", &mut alice, &mut bob, &mut carol, true);
    ok(bob.party_leave(id));
    step("the leader leaves: leader and leaves events, one step", &mut alice, &mut bob, &mut carol, true);
    ok(alice.party_update_strategies(id, Some(JoinStrategy::InvitedOnly), None));
    step("a strategy", &mut alice, &mut bob, &mut carol, true);
    let gone = me(&carol);
    carol.close();
    let after = next_events(&mut alice, 2);
    let now = ok(alice.party_get(id));
    assert_eq!(now.version, expected_version + 1, "a disconnect is one step");
    assert_eq!(after, vec![leaves(id, &gone, now.version), snapshot(&now)]);
    ok(alice.party_close(id));
    assert_eq!(drain(&mut alice), vec![removed(id, RemovedReason::Closed, now.version + 1)], "the end is a step too");
}

#[test]
fn l9_listings_and_summaries_carry_the_version() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let id = ok(alice.party_create(true, 4, r#"{"m":"v"}"#, false)).party_id;
    join_open(&mut bob, id);
    let (listed, _) = ok(alice.party_search("label.m:v", None, None, None));
    assert_eq!(listed.iter().map(|l| (l.party_id, l.version)).collect::<Vec<_>>(), vec![(id, 2)]);
    assert_eq!(ok(bob.party_my_parties())[0].version, 2);
}
