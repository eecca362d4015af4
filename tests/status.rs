//! End-to-end tests of statuses and follows (SPEC C-3, S-1 … S-3) over real loopback sockets,
//! with several users and users on several devices. Each test runs its own server on
//! 127.0.0.1:0 and asserts the exact events each connection receives.
//!
//! Absence is proven, not waited for: replies and events to one connection leave the server in
//! the order they were queued, and every test waits for the reply of the request that could
//! have caused an event before the observer sends a ping. So when the observer's first frame
//! after its ping is the Pong, nothing was queued for it (see `assert_quiet`).

mod common;

use common::*;
use huddle::client::Client;
use huddle::core::{ConnectOptions, Event, Reply, Request, StatusEvent, StatusPresence};
use huddle::limits::Limits;
use huddle::wire::{ErrorCode, ServerMessage};

const VISIBLE: ConnectOptions = ConnectOptions { status_visible: true, snapshots: false };

/// The next status event of `client` (other events in between fail the test).
fn status_event(client: &mut Client) -> StatusEvent {
    match client.next(WAIT) {
        Ok(ServerMessage::Event(Event::Status(event))) => event,
        other => panic!("expected a status event, got {other:?}"),
    }
}

/// Proves that nothing is queued for `client`: its ping's Pong is the very next frame.
fn assert_quiet(client: &mut Client) {
    let cid = client.send(&Request::Ping).unwrap();
    match client.next(WAIT) {
        Ok(ServerMessage::Reply { cid: got, result: Ok(Reply::Pong) }) if got == cid => {}
        other => panic!("expected nothing before the pong, got {other:?}"),
    }
}

fn sp(client: &Client, status: &str) -> StatusPresence {
    StatusPresence { presence: client.presence().clone(), status: status.into() }
}

fn joins(items: Vec<StatusPresence>) -> StatusEvent {
    StatusEvent { joins: items, leaves: vec![] }
}

fn leaves(items: Vec<StatusPresence>) -> StatusEvent {
    StatusEvent { joins: vec![], leaves: items }
}

fn set(client: &mut Client, status: Option<&str>) {
    client.status_update(status).unwrap().unwrap_or_else(|e| panic!("status update refused: {e:?}"));
}

fn follow(client: &mut Client, user_ids: &[&str]) -> Vec<StatusPresence> {
    client.follow(user_ids, &[]).unwrap().unwrap_or_else(|e| panic!("follow refused: {e:?}"))
}

#[test]
fn c3_status_true_makes_the_session_visible_with_an_empty_status_at_once() {
    let server = TestServer::start();
    let mut bob = server.connect("bob");
    assert_eq!(follow(&mut bob, &["alice"]), vec![], "alice is not connected yet");
    let mut alice = server.connect_with("alice", VISIBLE);
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, "")]));
    // Her own session is one of "the user's own sessions": it sees its join after the welcome.
    assert_eq!(status_event(&mut alice), joins(vec![sp(&alice, "")]));
    let mut carol = server.connect("carol");
    assert_eq!(follow(&mut carol, &["alice"]), vec![sp(&alice, "")]);
    assert_quiet(&mut alice);
}

#[test]
fn c3_plain_connect_is_not_visible_until_a_status_is_set() {
    let server = TestServer::start();
    let mut bob = server.connect("bob");
    follow(&mut bob, &["alice"]);
    let mut alice = server.connect("alice");
    assert_quiet(&mut bob);
    assert_eq!(follow(&mut server.connect("carol"), &["alice"]), vec![], "invisible sessions are not listed");
    set(&mut alice, Some("hi"));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, "hi")]));
}

#[test]
fn s1_s3_first_status_joins_change_is_one_event_and_offline_leaves_with_the_last_status() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    follow(&mut bob, &["alice"]);
    follow(&mut carol, &["alice"]);

    set(&mut alice, Some("lobby"));
    let first = joins(vec![sp(&alice, "lobby")]);
    for observer in [&mut bob, &mut carol, &mut alice] {
        assert_eq!(status_event(observer), first);
    }

    set(&mut alice, Some("in match 7"));
    let change = StatusEvent { joins: vec![sp(&alice, "in match 7")], leaves: vec![sp(&alice, "lobby")] };
    for observer in [&mut bob, &mut carol, &mut alice] {
        assert_eq!(status_event(observer), change, "one event holds both the old and the new status");
    }

    set(&mut alice, None);
    let last = leaves(vec![sp(&alice, "in match 7")]);
    for observer in [&mut bob, &mut carol, &mut alice] {
        assert_eq!(status_event(observer), last);
        assert_quiet(observer);
    }
    // Offline while offline, and the same status twice, change nothing and send nothing.
    set(&mut alice, None);
    assert_quiet(&mut bob);
    assert_eq!(follow(&mut server.connect("dave"), &["alice"]), vec![]);
}

#[test]
fn s1_empty_status_is_online_and_the_same_status_again_sends_nothing() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    follow(&mut bob, &["alice"]);
    set(&mut alice, Some(""));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, "")]));
    set(&mut alice, Some(""));
    assert_quiet(&mut bob);
    assert_eq!(follow(&mut bob, &["alice"]), vec![sp(&alice, "")]);
}

#[test]
fn s1_status_over_status_bytes_max_is_refused_and_the_old_status_stays() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    follow(&mut bob, &["alice"]);
    set(&mut alice, Some("before"));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, "before")]));
    let _ = status_event(&mut alice);

    let too_long = "x".repeat(2049);
    let error = alice.status_update(Some(&too_long)).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::LimitExceeded);
    assert!(error.message.contains("status_bytes_max"), "{}", error.message);
    assert_quiet(&mut bob);
    assert_quiet(&mut alice);
    assert_eq!(follow(&mut bob, &["alice"]), vec![sp(&alice, "before")]);

    let longest = "y".repeat(2048);
    set(&mut alice, Some(&longest));
    let event = status_event(&mut bob);
    assert_eq!(event.joins, vec![sp(&alice, &longest)]);
}

/// S-1: a status is display text. A control character other than tab, line feed and carriage
/// return is refused with error 200 naming it and its byte offset; the old status stays and
/// nobody hears anything. Pretty-printed JSON (tabs, line breaks) is a status like any other.
#[test]
fn s1_a_status_with_a_control_character_is_refused_and_the_old_status_stays() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    follow(&mut bob, &["alice"]);
    let pretty = "{\n\t\"match\": \"m-1\"\r\n}";
    set(&mut alice, Some(pretty));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, pretty)]));
    let _ = status_event(&mut alice);

    for (status, named) in
        [("ready\u{7}", "U+0007 at byte 5"), ("\u{1b}[31mred", "U+001B at byte 0"), ("é\u{7f}", "U+007F at byte 2")]
    {
        let error = alice.status_update(Some(status)).unwrap().unwrap_err();
        assert_eq!(error.code, ErrorCode::BadInput, "{status:?}");
        assert!(error.message.contains(named), "{status:?}: {}", error.message);
    }
    assert_quiet(&mut bob);
    assert_quiet(&mut alice);
    assert_eq!(follow(&mut bob, &["alice"]), vec![sp(&alice, pretty)]);
}

#[test]
fn s3_disconnect_leaves_with_the_last_status_to_followers_and_the_users_other_sessions() {
    let server = TestServer::start();
    let mut phone = server.connect("alice");
    let mut pc = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    follow(&mut bob, &["alice"]);
    set(&mut phone, Some("on the bus"));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&phone, "on the bus")]));
    assert_eq!(status_event(&mut pc), joins(vec![sp(&phone, "on the bus")]), "own other device is told");
    assert_eq!(status_event(&mut phone), joins(vec![sp(&phone, "on the bus")]));

    let gone = sp(&phone, "on the bus");
    phone.close();
    assert_eq!(status_event(&mut bob), leaves(vec![gone.clone()]));
    assert_eq!(status_event(&mut pc), leaves(vec![gone]));
    assert_quiet(&mut carol);
    assert_eq!(follow(&mut bob, &["alice"]), vec![]);
}

#[test]
fn s3_each_device_has_its_own_status_and_follow_replies_list_every_visible_session() {
    let server = TestServer::start();
    let mut pc = server.connect("alice");
    let mut phone = server.connect("alice");
    let tablet = server.connect("alice"); // never visible
    let mut bob = server.connect("bob");
    set(&mut pc, Some("pc"));
    set(&mut phone, Some("phone"));
    assert_eq!(follow(&mut bob, &["alice"]), vec![sp(&pc, "pc"), sp(&phone, "phone")], "connect order");

    set(&mut phone, Some("phone 2"));
    let change = status_event(&mut bob);
    assert_eq!(change, StatusEvent { joins: vec![sp(&phone, "phone 2")], leaves: vec![sp(&phone, "phone")] });
    assert_eq!(follow(&mut bob, &["alice"]), vec![sp(&pc, "pc"), sp(&phone, "phone 2")]);
    drop(tablet);
}

#[test]
fn s2_follow_before_online_then_the_status_arrives() {
    let server = TestServer::start();
    let mut bob = server.connect("bob");
    assert_eq!(follow(&mut bob, &["alice", "nobody-yet"]), vec![]);
    let mut alice = server.connect("alice");
    assert_quiet(&mut bob);
    set(&mut alice, Some("here"));
    assert_eq!(status_event(&mut bob), joins(vec![sp(&alice, "here")]));
}

#[test]
fn s2_reply_lists_named_users_visible_sessions_skips_the_callers_own_user_and_unknowns() {
    // With room for three follows, naming four users including the caller's own user succeeds:
    // the own user is skipped, not followed (the unknown "zed" is followed, and counts).
    let limits = Limits { follows_per_session_max: 3, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut alice = server.connect_with("alice", VISIBLE);
    let _hidden_alice = server.connect("alice");
    let mut carol = server.connect("carol");
    let mut bob = server.connect("bob");
    let mut bob_phone = server.connect_with("bob", VISIBLE);
    set(&mut alice, Some("a"));
    set(&mut carol, Some("c"));
    let dave = server.connect_with("dave", VISIBLE); // visible, but not named

    let reply = follow(&mut bob, &["carol", "bob", "alice", "carol", "zed"]);
    assert_eq!(reply, vec![sp(&carol, "c"), sp(&alice, "a")], "request order, once each, own user skipped");
    drop(dave);

    // The own user's sessions still reach each other: that is the own-sessions rule.
    set(&mut bob_phone, Some("phone"));
    let own = bob.wait_event(WAIT, |e| matches!(e, Event::Status(s) if s.leaves.len() == 1)).unwrap();
    assert_eq!(
        own,
        Event::Status(StatusEvent { joins: vec![sp(&bob_phone, "phone")], leaves: vec![sp(&bob_phone, "")] })
    );
}

#[test]
fn s2_usernames_resolve_among_connected_users() {
    let server = TestServer::start();
    let mut alice = server.connect_with("alice", VISIBLE);
    let mut bob = server.connect("bob");
    let reply = bob.follow(&[], &["Alice", "Nobody"]).unwrap().unwrap();
    assert_eq!(reply, vec![sp(&alice, "")]);
    let _ = status_event(&mut alice);
    set(&mut alice, Some("x"));
    assert_eq!(status_event(&mut bob), StatusEvent { joins: vec![sp(&alice, "x")], leaves: vec![sp(&alice, "")] });
    // "Nobody" named no connected user, so nothing was followed for it.
    let mut nobody = server.connect("nobody");
    set(&mut nobody, Some("late"));
    assert_quiet(&mut bob);
}

#[test]
fn s2_unfollow_stops_events_and_follows_die_with_the_session() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    follow(&mut bob, &["alice"]);
    follow(&mut carol, &["alice"]);
    set(&mut alice, Some("one"));
    let _ = status_event(&mut bob);
    let _ = status_event(&mut carol);

    bob.unfollow(&["alice", "never-followed"]).unwrap().unwrap();
    set(&mut alice, Some("two"));
    assert_eq!(status_event(&mut carol).joins, vec![sp(&alice, "two")]);
    assert_quiet(&mut bob);

    carol.close();
    server.wait_stats("carol gone", |s| s.sessions_open == 2);
    let mut carol_again = server.connect("carol");
    set(&mut alice, Some("three"));
    assert_quiet(&mut carol_again);
}

#[test]
fn s3_a_non_follower_receives_nothing() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut eve = server.connect_with("eve", VISIBLE);
    let _ = status_event(&mut eve);
    follow(&mut bob, &["alice"]);
    set(&mut alice, Some("secret plans"));
    assert_eq!(status_event(&mut bob).joins, vec![sp(&alice, "secret plans")]);
    assert_quiet(&mut eve);
    let gone = sp(&alice, "secret plans");
    alice.close();
    assert_eq!(status_event(&mut bob), leaves(vec![gone]));
    assert_quiet(&mut eve);
}

#[test]
fn s2_more_follows_than_follows_per_session_max_is_refused_and_nothing_changes() {
    let limits = Limits { follows_per_session_max: 3, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut bob = server.connect("bob");
    follow(&mut bob, &["u1", "u2"]);
    follow(&mut bob, &["u1", "u2"]); // already followed: costs nothing
    let error = bob.follow(&["u3", "u4"], &[]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::FollowLimitReached);
    assert!(error.message.contains("follows_per_session_max is 3"), "{}", error.message);
    // All or nothing: neither u3 nor u4 was followed.
    let mut others = Vec::new();
    for user in ["u3", "u4"] {
        let mut other = server.connect(user);
        set(&mut other, Some("on"));
        others.push(other);
    }
    assert_quiet(&mut bob);
    // u3 alone still fits.
    assert_eq!(follow(&mut bob, &["u3"]), vec![sp(&others[0], "on")]);
    let error = bob.follow(&["u4"], &[]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::FollowLimitReached);
}

#[test]
fn s2_too_many_ids_in_one_request_and_bad_ids_are_refused_and_nothing_changes() {
    let limits = Limits { follow_ids_per_request_max: 4, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut bob = server.connect("bob");
    let error = bob.follow(&["u1", "u2", "u3", "u4", "u5"], &[]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::LimitExceeded);
    assert!(error.message.contains("follow_ids_per_request_max"), "{}", error.message);
    let error = bob.follow(&["u1", ""], &[]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::BadInput);
    let long = "z".repeat(129);
    let error = bob.follow(&["u1"], &[&long]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::BadInput);
    let mut u1 = server.connect("u1");
    set(&mut u1, Some("on"));
    assert_quiet(&mut bob);

    follow(&mut bob, &["u1"]);
    let error = bob.unfollow(&["u1", "u2", "u3", "u4", "u5"]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::LimitExceeded);
    set(&mut u1, Some("still followed"));
    assert_eq!(status_event(&mut bob).joins, vec![sp(&u1, "still followed")]);
}

/// SPEC S-2: what counts is the users a request resolves to. Five connected users sharing one
/// username are five users; names that repeat a user, name the caller or name nobody are not.
/// The refused follower stays connected and followed nothing.
#[test]
fn s2_a_username_shared_by_more_users_than_follow_ids_per_request_max_is_refused() {
    let limits = Limits { follow_ids_per_request_max: 4, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut bob = server.connect("bob");
    let mut same: Vec<Client> = (1..=4)
        .map(|i| {
            let token = token_with(&format!("u{i}"), "Same", unix_now() + 3600, KEY);
            let mut client = server.try_connect(&token).expect("connect");
            set(&mut client, Some("on"));
            client
        })
        .collect();
    assert_quiet(&mut bob);
    // Seven names, four users.
    let reply = bob.follow(&["u1", "u1", "bob", "u2"], &["Same", "Same", "Nobody"]).unwrap().unwrap();
    assert_eq!(reply, same.iter().map(|c| sp(c, "on")).collect::<Vec<_>>());
    bob.unfollow(&["u1", "u2", "u3", "u4"]).unwrap().unwrap();
    // A fifth user takes the name: the same follow now resolves to five.
    let token = token_with("u5", "Same", unix_now() + 3600, KEY);
    same.push(server.try_connect(&token).expect("connect"));
    let error = bob.follow(&[], &["Same"]).unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::LimitExceeded);
    assert!(error.message.contains("follow_ids_per_request_max"), "{}", error.message);
    set(&mut same[0], Some("changed"));
    assert_quiet(&mut bob);
    assert_eq!(bob.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "the follower is still connected");
}
