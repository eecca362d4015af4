//! End-to-end tests of Lobby II (SPEC L-4 friends, blocks and the friend strategies, L-5 custom
//! data, L-6 chat, L-7 names with a deny-list, L-8 attributes, and the L-9 versions they move)
//! over real loopback sockets: clients against a server on 127.0.0.1:0 with its admin API, the
//! game backend's writes (friends, blocks, attributes) sent over real HTTP with the admin key,
//! each test named after its rule, with the exact events every client receives, versions
//! included.
//!
//! "Nobody else received anything" is proven without sleeping, as in `tests/lobby.rs`: `drain`
//! pings the client and takes every event that arrived before the Pong; the server queues a
//! request's events before its reply goes out, and an admin write's events before its HTTP
//! answer. A reload (SIGHUP's work) is waited for on the server's counters, with a deadline.

#[path = "common/admin_http.rs"]
mod admin_http;
mod common;

use admin_http::{admin, admin_with_key};
use common::*;
use huddle::client::{Client, PartyResult};
use huddle::core::{
    ChatKind, ChatMessage, ConnectOptions, CustomDataScope, Event, InviteStrategy, JoinStrategy, LobbyData, LobbyEvent,
    LobbySettings, LobbySettingsPatch, PartyEvent, PartyId, PartyReply, PartySnapshot, Presence, Reply, Request,
    UnixMillis,
};
use huddle::limits::Limits;
use huddle::wire::ErrorCode;
use std::sync::Arc;

fn ok<T: std::fmt::Debug>(result: PartyResult<T>) -> T {
    match result {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("request failed: {error:?}"),
        Err(e) => panic!("transport failed: {e}"),
    }
}

fn error<T: std::fmt::Debug>(result: PartyResult<T>) -> (ErrorCode, String) {
    match result {
        Ok(Ok(value)) => panic!("request should have failed, got {value:?}"),
        Ok(Err(error)) => {
            assert!(!error.message.is_empty(), "error replies say what is wrong");
            (error.code, error.message)
        }
        Err(e) => panic!("transport failed: {e}"),
    }
}

fn code<T: std::fmt::Debug>(result: PartyResult<T>) -> ErrorCode {
    error(result).0
}

/// Every event that reached `client` before a Pong to a fresh Ping.
fn drain(client: &mut Client) -> Vec<Event> {
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    client.take_events()
}

fn me(client: &Client) -> Presence {
    client.presence().clone()
}

fn joins(party_id: PartyId, who: &Presence, version: u64) -> Event {
    Event::Party(PartyEvent::Presence { party_id, joins: vec![who.clone()], leaves: vec![], version })
}

fn leaves(party_id: PartyId, who: &Presence, version: u64) -> Event {
    Event::Party(PartyEvent::Presence { party_id, joins: vec![], leaves: vec![who.clone()], version })
}

fn updated(party: &PartySnapshot, lobby: &LobbySettings, version: u64) -> Event {
    Event::Party(PartyEvent::Updated {
        party_id: party.party_id,
        open: party.open,
        hidden: party.hidden,
        max_size: party.max_size,
        label: party.label.clone(),
        lobby: lobby.clone(),
        version,
    })
}

fn snapshot(party: &PartySnapshot) -> Event {
    Event::Lobby(LobbyEvent::Snapshot(Box::new(party.clone())))
}

fn custom_changed(party_id: PartyId, member: Option<&Presence>, value: &str, version: u64) -> Event {
    Event::Lobby(LobbyEvent::CustomDataChanged { party_id, member: member.cloned(), value: value.into(), version })
}

fn chat(message: &ChatMessage) -> Event {
    Event::Lobby(LobbyEvent::ChatMessage(Arc::new(message.clone())))
}

fn lobby(join_strategy: JoinStrategy) -> LobbySettings {
    LobbySettings { join_strategy, ..LobbySettings::default() }
}

fn create_with(client: &mut Client, open: bool, lobby: LobbySettings) -> PartySnapshot {
    ok(client.party_create_with(open, 8, "", false, lobby))
}

fn join_open(client: &mut Client, party_id: PartyId) -> PartySnapshot {
    match ok(client.party_join(party_id)) {
        PartyReply::Info(snapshot) => *snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// The game backend replaces `user`'s friend or block list.
fn set_list(server: &TestServer, user: &str, list: &str, ids: &[&str]) {
    let body = serde_json::json!({ list: ids }).to_string();
    let answer = admin(server, "PUT", &format!("/v1/users/{user}/{list}"), &body);
    assert_eq!(answer.status, 200, "{answer:?}");
}

// ---- L-4 strategies with friends, and blocks ----

/// Every join strategy against each kind of user: a friend of the leader, a friend of another
/// member, a stranger, an invitee, a user the leader blocked and a user who blocked the leader.
/// A plain join of an open party either takes the user in (the members hear `joins`; the user
/// leaves again, the members hear `leaves`) or is refused with the strategy's own code and
/// nobody hears anything. Invitations bypass the strategy, never a block (and blocked users
/// cannot be invited at all).
#[test]
fn l4_every_join_strategy_with_a_friend_a_friend_of_a_member_a_stranger_an_invitee_and_blocks_both_ways() {
    use JoinStrategy::*;
    let server = TestServer::with_admin(Limits::default());
    let mut leader = server.connect("leader");
    let mut member = server.connect("member");
    let party = create_with(&mut leader, true, LobbySettings::default());
    let id = party.party_id;
    join_open(&mut member, id);
    let users = serde_json::json!({ "users": [
        { "user_id": "leader", "friends": ["friend"], "blocks": ["blocked"] },
        { "user_id": "member", "friends": ["pal"] },
        { "user_id": "hater", "blocks": ["leader"] },
    ]});
    let answer = admin(&server, "PUT", "/v1/social", &users.to_string());
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["entries"], 4);
    let names = ["friend", "pal", "stranger", "invitee", "blocked", "hater"];
    let mut clients: Vec<Client> = names.iter().map(|n| server.connect(n)).collect();
    drain(&mut leader);
    drain(&mut member);

    let allowed = None;
    let refused = |code| Some(code);
    let blocked = refused(ErrorCode::PartyJoinBlocked);
    let table = [
        (Public, [allowed, allowed, allowed, allowed, blocked, blocked]),
        (
            FriendsOfLeader,
            [
                allowed,
                refused(ErrorCode::PartyNotFriendOfLeader),
                refused(ErrorCode::PartyNotFriendOfLeader),
                allowed,
                blocked,
                blocked,
            ],
        ),
        // The leader is a member: its friends are members' friends.
        (FriendsOfMembers, [allowed, allowed, refused(ErrorCode::PartyNotFriendOfMembers), allowed, blocked, blocked]),
        (
            InvitedOnly,
            [
                refused(ErrorCode::PartyNotInvited),
                refused(ErrorCode::PartyNotInvited),
                refused(ErrorCode::PartyNotInvited),
                allowed,
                blocked,
                blocked,
            ],
        ),
        (NotAllowed, [refused(ErrorCode::PartyJoinNotAllowed); 6]),
    ];
    let mut version = 2;
    let mut current = Public;
    for (strategy, outcomes) in table {
        ok(leader.party_update_strategies(id, Some(strategy), None));
        if strategy != current {
            version += 1;
            current = strategy;
        }
        let expected = updated(&party, &lobby(strategy), version);
        assert_eq!(drain(&mut leader), vec![expected.clone()], "{strategy:?}: the leader's update");
        assert_eq!(drain(&mut member), vec![expected], "{strategy:?}: members get PartyUpdated");
        if strategy != NotAllowed {
            ok(leader.party_invite(id, &["invitee"]));
            drain(&mut leader);
            drain(&mut member);
            assert_eq!(drain(&mut clients[3]).len(), 1, "{strategy:?}: the invitee is invited");
        }
        for who in ["blocked", "hater"] {
            let expected =
                if strategy == NotAllowed { ErrorCode::PartyJoinNotAllowed } else { ErrorCode::InviteeBlocked };
            let (got, message) = error(leader.party_invite(id, &[who]));
            assert_eq!(got, expected, "{strategy:?}: inviting {who}");
            if expected == ErrorCode::InviteeBlocked {
                assert!(message.contains(who), "the refusal names the invitee: {message}");
            }
        }
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let what = format!("{strategy:?}, {}", names[i]);
            let client = &mut clients[i];
            match outcome {
                None => {
                    let joined = join_open(client, id);
                    version += 1;
                    assert_eq!(joined.version, version, "{what}");
                    assert_eq!(drain(&mut leader), vec![joins(id, &me(client), version)], "{what}");
                    assert_eq!(drain(&mut member), vec![joins(id, &me(client), version)], "{what}");
                    ok(client.party_leave(id));
                    version += 1;
                    assert_eq!(drain(&mut leader), vec![leaves(id, &me(client), version)], "{what}");
                    assert_eq!(drain(&mut member), vec![leaves(id, &me(client), version)], "{what}");
                    assert_eq!(drain(client), vec![], "{what}");
                }
                Some(expected) => {
                    assert_eq!(code(client.party_join(id)), expected, "{what}");
                    assert_eq!(drain(&mut leader), vec![], "{what}: a refusal is heard by nobody");
                    assert_eq!(drain(&mut member), vec![], "{what}");
                    assert_eq!(drain(client), vec![], "{what}");
                }
            }
        }
    }
    assert_eq!(ok(leader.party_get(id)).version, version);
}

/// The join strategy gates join requests too (no request is queued for a refused user); a code
/// and an invitation bypass it; a block refuses every way in, including an invitation sent
/// before the block and a leader's accept of a request made before it, and both stay pending;
/// the inviter's blocks gate its own invitations, other members' do not gate joins; and a block
/// written against a member removes nobody (no retroactive kicks).
#[test]
fn l4_requests_codes_invitations_and_accepts_under_strategies_and_blocks() {
    let server = TestServer::with_admin(Limits::default());
    let mut leader = server.connect("leader");
    let mut friend = server.connect("friend");
    let mut stranger = server.connect("stranger");
    let mut late = server.connect("late");
    let mut target = server.connect("target");
    set_list(&server, "leader", "friends", &["friend"]);
    let party = create_with(&mut leader, false, lobby(JoinStrategy::FriendsOfLeader));
    let id = party.party_id;

    // A closed party: a friend's join is a request; a stranger's is refused, with no request.
    assert_eq!(ok(friend.party_join(id)), PartyReply::JoinPending { party_id: id });
    assert_eq!(code(stranger.party_join(id)), ErrorCode::PartyNotFriendOfLeader);
    assert_eq!(ok(leader.party_join_requests(id)), vec![me(&friend)]);
    drain(&mut leader);

    // A code lets the stranger in, closed party and strategy notwithstanding.
    let party_code = ok(leader.party_code(id));
    assert_eq!(ok(stranger.party_join_by_code(party_code.as_str())).members, vec![me(&leader), me(&stranger)]);
    assert_eq!(drain(&mut leader), vec![joins(id, &me(&stranger), 2)]);

    // Blocks written after an invitation and after a request refuse them; both stay pending.
    ok(leader.party_invite(id, &["late"]));
    drain(&mut leader);
    drain(&mut stranger);
    drain(&mut late);
    set_list(&server, "leader", "blocks", &["late"]);
    set_list(&server, "friend", "blocks", &["leader"]);
    assert_eq!(code(late.party_invitation_accept(id)), ErrorCode::PartyJoinBlocked);
    assert_eq!(code(late.party_join(id)), ErrorCode::PartyJoinBlocked, "the invited user's plain join too");
    assert_eq!(code(late.party_join_by_code(party_code.as_str())), ErrorCode::PartyJoinBlocked);
    assert_eq!(ok(late.party_invitations()).len(), 1, "the invitation is still pending");
    assert_eq!(code(leader.party_accept(id, &me(&friend))), ErrorCode::PartyJoinBlocked, "the other direction");
    assert_eq!(ok(leader.party_join_requests(id)), vec![me(&friend)], "the request is kept for the leader to reject");
    for client in [&mut leader, &mut friend, &mut stranger, &mut late] {
        assert_eq!(drain(client), vec![], "refusals are heard by nobody");
    }

    // The inviter's blocks gate its invitations (both ways); another member's do not.
    set_list(&server, "stranger", "blocks", &["target"]);
    let (got, message) = error(stranger.party_invite(id, &["target"]));
    assert_eq!(got, ErrorCode::InviteeBlocked);
    assert!(message.contains("target"), "{message}");
    set_list(&server, "outcast", "blocks", &["stranger"]);
    assert_eq!(code(stranger.party_invite(id, &["outcast"])), ErrorCode::InviteeBlocked, "blocked by the invitee");
    ok(leader.party_invite(id, &["target"]));
    assert_eq!(ok(target.party_invitation_accept(id)).members.len(), 3, "the stranger's block gates nothing here");

    // No retroactive kicks: the leader blocks a member, who stays; nobody is told anything.
    drain(&mut leader);
    drain(&mut stranger);
    drain(&mut target);
    set_list(&server, "leader", "blocks", &["late", "stranger"]);
    assert_eq!(ok(leader.party_get(id)).members, vec![me(&leader), me(&stranger), me(&target)]);
    for client in [&mut leader, &mut stranger, &mut target] {
        assert_eq!(drain(client), vec![], "a social write changes no party");
    }
}

/// The strategies are the leader's to change (203 for a member, 204 for an outsider, nothing
/// changes and nobody hears of it); every member, the leader included, gets `PartyUpdated`.
#[test]
fn l4_a_strategy_change_by_anyone_but_the_leader_is_refused() {
    let server = TestServer::start();
    let mut leader = server.connect("leader");
    let mut member = server.connect("member");
    let mut outsider = server.connect("outsider");
    let party = create_with(&mut leader, true, LobbySettings::default());
    let id = party.party_id;
    join_open(&mut member, id);
    drain(&mut leader);
    let change = Some(JoinStrategy::FriendsOfMembers);
    assert_eq!(code(member.party_update_strategies(id, change, None)), ErrorCode::PartyNotLeader);
    assert_eq!(code(outsider.party_update_strategies(id, change, None)), ErrorCode::PartyNotMember);
    for client in [&mut leader, &mut member, &mut outsider] {
        assert_eq!(drain(client), vec![]);
    }
    assert_eq!(ok(member.party_get(id)).version, 2, "nothing changed");
    ok(leader.party_update_strategies(id, change, Some(InviteStrategy::LeaderOnly)));
    let lobby = LobbySettings {
        join_strategy: JoinStrategy::FriendsOfMembers,
        invite_strategy: InviteStrategy::LeaderOnly,
        ..LobbySettings::default()
    };
    assert_eq!(drain(&mut leader), vec![updated(&party, &lobby, 3)]);
    assert_eq!(drain(&mut member), vec![updated(&party, &lobby, 3)]);
    assert_eq!(drain(&mut outsider), vec![]);
}

/// The admin API writes whole lists, one user's or many users' at once; a write is
/// idempotent, all or nothing, bounded per user and for the whole table, and takes effect for
/// the next request.
#[test]
fn l4_friends_and_blocks_are_written_whole_singly_or_in_bulk_and_bad_writes_change_nothing() {
    let limits = Limits { social_friends_per_user_max: 3, social_entries_max: 6, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let put = |path: &str, body: &str| admin(&server, "PUT", path, body);

    let answer = put("/v1/users/alice/friends", r#"{"friends":["bob","carol","bob"]}"#);
    assert_eq!(
        (answer.status, answer.body.clone()),
        (200, serde_json::json!({"user_id":"alice","list":"friends","count":2}))
    );
    assert_eq!(put("/v1/users/alice/friends", r#"{"friends":["carol","bob"]}"#).body["count"], 2, "idempotent");
    assert_eq!(put("/v1/users/alice/blocks", r#"{"blocks":["eve"]}"#).body["count"], 1);
    let bulk = put(
        "/v1/social",
        r#"{"users":[{"user_id":"bob","friends":["alice"]},{"user_id":"carol","blocks":["alice","bob"]}]}"#,
    );
    assert_eq!((bulk.status, bulk.body.clone()), (200, serde_json::json!({"users_written":2,"users":3,"entries":6})));

    // Refusals: each with its status and a message naming what is wrong; nothing changes.
    let over_user = put("/v1/users/dave/friends", r#"{"friends":["a","b","c","d"]}"#);
    assert_eq!((over_user.status, over_user.code()), (400, "bad_request"));
    assert!(over_user.message().contains("social_friends_per_user_max"), "{over_user:?}");
    let over_table = put("/v1/users/dave/friends", r#"{"friends":["a"]}"#);
    assert_eq!((over_table.status, over_table.code()), (507, "limit_exceeded"));
    assert!(over_table.message().contains("social_entries_max"), "{over_table:?}");
    let bulk_self =
        put("/v1/social", r#"{"users":[{"user_id":"alice","friends":[]},{"user_id":"frank","blocks":["frank"]}]}"#);
    assert_eq!(bulk_self.status, 400, "{bulk_self:?}");
    assert!(bulk_self.message().contains("itself"), "{bulk_self:?}");
    for (path, body, field) in [
        ("/v1/users/alice/friends", "{", "body: not valid JSON"),
        ("/v1/users/alice/friends", r#"{"friends":"bob"}"#, "friends: expected an array"),
        ("/v1/users/alice/friends", r#"{"friends":[1]}"#, "friends[0]: expected a string"),
        ("/v1/users/alice/blocks", r#"{"blocks":["x"],"more":1}"#, "more: unknown field"),
        ("/v1/social", r#"{"users":[{"user_id":""}]}"#, "users[0].user_id: must be"),
        ("/v1/social", r#"{}"#, "users: required"),
    ] {
        let answer = put(path, body);
        assert_eq!((answer.status, answer.code()), (400, "bad_request"), "{path} {body}");
        assert!(answer.message().starts_with(field), "{path} {body}: {}", answer.message());
    }
    assert_eq!(admin_with_key(&server, "PUT", "/v1/social", r#"{"users":[]}"#, None).status, 401);
    assert_eq!(admin(&server, "GET", "/v1/users/alice/friends", "").status, 405);
    // Nothing of the refused writes was applied: the table still holds its 6 entries, and
    // emptying alice's friends (2) makes room for exactly two more.
    assert_eq!(put("/v1/users/alice/friends", r#"{"friends":[]}"#).body["count"], 0);
    assert_eq!(put("/v1/social", r#"{"users":[{"user_id":"dave","friends":["a","b","c"]}]}"#).status, 507);
    let answer = put("/v1/social", r#"{"users":[{"user_id":"dave","friends":["a"]}]}"#);
    assert_eq!((answer.status, answer.body["entries"].clone()), (200, serde_json::json!(5)));

    // A write takes effect for the next request: bob is alice's friend only after it.
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let id = create_with(&mut alice, true, lobby(JoinStrategy::FriendsOfLeader)).party_id;
    assert_eq!(code(bob.party_join(id)), ErrorCode::PartyNotFriendOfLeader);
    set_list(&server, "alice", "friends", &["bob"]);
    assert_eq!(join_open(&mut bob, id).members, vec![me(&alice), me(&bob)]);
}

// ---- L-5 custom data ----

/// The leader writes the global string, each member its own; every member session (the
/// writer's included) gets `PartyCustomDataChanged` with the version after the change; the
/// strings are in every snapshot; a member's goes when it leaves; others are refused.
#[test]
fn l5_custom_data_global_by_the_leader_and_each_members_own_reach_every_member_and_every_snapshot() {
    let server = TestServer::with_limits(Limits { party_custom_data_bytes_max: 16, ..Limits::default() });
    let mut leader = server.connect("leader");
    let mut member = server.connect("member");
    let mut member2 = server.connect("member");
    let mut outsider = server.connect("outsider");
    let id = create_with(&mut leader, true, LobbySettings::default()).party_id;
    join_open(&mut member, id);
    join_open(&mut member2, id);
    for client in [&mut leader, &mut member, &mut member2] {
        drain(client);
    }

    ok(leader.party_custom_data(id, CustomDataScope::Global, "vote:map2"));
    let global = custom_changed(id, None, "vote:map2", 4);
    for client in [&mut leader, &mut member, &mut member2] {
        assert_eq!(drain(client), vec![global.clone()], "every member session, the writer's too");
    }
    ok(member.party_custom_data(id, CustomDataScope::Member, "ready"));
    let own = custom_changed(id, Some(&me(&member)), "ready", 5);
    for client in [&mut leader, &mut member, &mut member2] {
        assert_eq!(drain(client), vec![own.clone()]);
    }
    ok(member.party_custom_data(id, CustomDataScope::Member, "ready"));
    let same = custom_changed(id, Some(&me(&member)), "ready", 5);
    assert_eq!(drain(&mut leader), vec![same], "the same value again: announced, the version stays");
    drain(&mut member);
    drain(&mut member2);

    // Refusals change nothing and are heard by nobody.
    let refusals = [
        (code(member.party_custom_data(id, CustomDataScope::Global, "x")), ErrorCode::PartyNotLeader),
        (code(outsider.party_custom_data(id, CustomDataScope::Member, "x")), ErrorCode::PartyNotMember),
        (code(leader.party_custom_data(id, CustomDataScope::Global, &"x".repeat(17))), ErrorCode::LimitExceeded),
        (code(leader.party_custom_data(PartyId(7), CustomDataScope::Global, "x")), ErrorCode::PartyNotFound),
    ];
    for (got, expected) in refusals {
        assert_eq!(got, expected);
    }
    for client in [&mut leader, &mut member, &mut member2, &mut outsider] {
        assert_eq!(drain(client), vec![]);
    }

    let now = ok(member2.party_get(id));
    let data = LobbyData {
        custom_data: "vote:map2".into(),
        member_custom_data: vec![(me(&member).session_id, "ready".into())],
        ..LobbyData::default()
    };
    assert_eq!((now.data, now.version), (data, 5), "in the snapshot, by member session");

    // A member's string leaves with it; back in, it starts empty.
    ok(member.party_leave(id));
    assert_eq!(ok(leader.party_get(id)).data.member_custom_data, vec![]);
    assert_eq!(join_open(&mut member, id).data.member_custom_data, vec![]);
    ok(leader.party_custom_data(id, CustomDataScope::Global, ""));
    assert_eq!(ok(leader.party_get(id)).data.custom_data, "", "\"\" clears it");
}

// ---- L-6 chat ----

/// Chat is off until the leader turns it on; then a message reaches every other member session
/// (other sessions of the sender's user included), never the sender's own; the reply carries
/// the message with the next sequence number and a server time that never goes backwards;
/// chat is not a version change; bad bodies are refused with their own codes.
#[test]
fn l6_chat_reaches_every_other_member_session_in_order_never_echoed() {
    let server = TestServer::start();
    let mut leader = server.connect("leader");
    let mut member = server.connect("member");
    let mut member2 = server.connect("member");
    let mut outsider = server.connect("outsider");
    let party = create_with(&mut leader, true, LobbySettings::default());
    let id = party.party_id;
    assert!(!party.lobby.chat_enabled, "off by default");
    join_open(&mut member, id);
    join_open(&mut member2, id);
    assert_eq!(code(leader.party_chat_text(id, "hi")), ErrorCode::PartyChatDisabled);
    assert_eq!(
        code(member.party_update_lobby(id, LobbySettingsPatch { chat_enabled: Some(true), ..Default::default() })),
        ErrorCode::PartyNotLeader
    );
    for client in [&mut leader, &mut member, &mut member2] {
        drain(client);
    }
    ok(leader.party_update_lobby(id, LobbySettingsPatch { chat_enabled: Some(true), ..Default::default() }));
    let on = LobbySettings { chat_enabled: true, ..LobbySettings::default() };
    for client in [&mut leader, &mut member, &mut member2] {
        assert_eq!(drain(client), vec![updated(&party, &on, 4)], "members hear the chat flag change");
    }

    let since = unix_now() * 1000;
    let first = ok(leader.party_chat_text(id, "hi all"));
    assert_eq!((first.sequence, first.kind, &first.sender), (1, ChatKind::Text, &me(&leader)));
    assert_eq!(&first.body[..], b"hi all");
    assert!(first.sent_at.0 >= since, "server time, Unix ms");
    let second = ok(member.party_chat_text(id, "gl hf"));
    let third = ok(member2.party_chat(id, ChatKind::Custom, &[0xff, 0, 7]));
    assert_eq!((second.sequence, third.sequence), (2, 3), "per party, +1 each");
    assert!(first.sent_at <= second.sent_at && second.sent_at <= third.sent_at, "never backwards");
    assert_eq!(drain(&mut leader), vec![chat(&second), chat(&third)], "never the sender's own");
    assert_eq!(drain(&mut member), vec![chat(&first), chat(&third)]);
    assert_eq!(drain(&mut member2), vec![chat(&first), chat(&second)], "the sender's user's other session");
    assert_eq!(drain(&mut outsider), vec![]);

    // Bodies: 1..=1024 bytes, UTF-8 for text; members only.
    let longest = "x".repeat(1024);
    assert_eq!(ok(leader.party_chat_text(id, &longest)).sequence, 4);
    let refusals = [
        (code(leader.party_chat_text(id, &format!("{longest}x"))), ErrorCode::LimitExceeded),
        (code(leader.party_chat_text(id, "")), ErrorCode::BadInput),
        (code(leader.party_chat(id, ChatKind::Text, &[0x66, 0xff])), ErrorCode::BadInput),
        (code(outsider.party_chat_text(id, "let me in")), ErrorCode::PartyNotMember),
    ];
    for (got, expected) in refusals {
        assert_eq!(got, expected);
    }
    drain(&mut member);
    assert_eq!(drain(&mut member2).len(), 1, "only the 1024-byte message went out");
    assert_eq!(ok(leader.party_get(id)).version, 4, "chat is not a change");
}

/// 5 messages per session in the window, then error 300 naming the limit, exactly at the
/// sixth; a refused message does not count; the bound is per session; and refusals are counted
/// for `/metrics`. (The window is long here so that a slow machine cannot slide it.)
#[test]
fn l6_the_sixth_message_in_the_window_is_refused_and_refused_ones_do_not_count() {
    let server = TestServer::with_admin(Limits { chat_window_ms: 600_000, ..Limits::default() });
    let mut leader = server.connect("leader");
    let mut leader2 = server.connect("leader");
    let mut member = server.connect("member");
    let lobby = LobbySettings { chat_enabled: true, ..LobbySettings::default() };
    let id = create_with(&mut leader, true, lobby).party_id;
    join_open(&mut leader2, id);
    join_open(&mut member, id);
    for n in 1..=4 {
        assert_eq!(ok(leader.party_chat_text(id, &format!("m{n}"))).sequence, n);
    }
    assert_eq!(code(leader.party_chat_text(id, "")), ErrorCode::BadInput, "refused: does not count");
    assert_eq!(ok(leader.party_chat_text(id, "m5")).sequence, 5, "the fifth still goes out");
    let (got, message) = error(leader.party_chat_text(id, "m6"));
    assert_eq!(got, ErrorCode::LimitExceeded, "exactly the sixth");
    assert!(message.contains("chat_messages_per_window_max"), "{message}");
    assert_eq!(ok(leader2.party_chat_text(id, "other session")).sequence, 6, "per session");
    let received: Vec<u64> = drain(&mut member)
        .into_iter()
        .filter_map(|e| match e {
            Event::Lobby(LobbyEvent::ChatMessage(m)) => Some(m.sequence),
            _ => None,
        })
        .collect();
    assert_eq!(received, vec![1, 2, 3, 4, 5, 6]);

    let metrics = admin(&server, "GET", "/metrics", "").body;
    let text = metrics.as_str().expect("metrics are text");
    for line in [
        "huddle_party_chat_messages_total 6",
        "huddle_party_chat_refused_total 2",
        "huddle_limit_trips_total{limit=\"chat_messages_per_window_max\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

// ---- L-7 names ----

fn deny_list(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("huddle-lobby2-{name}-{}.txt", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn named(name: &str) -> LobbySettings {
    LobbySettings { name: name.into(), ..LobbySettings::default() }
}

/// A name containing a deny-list entry is refused (265) in every spelling that folds to it:
/// other letter case, full-width forms, composed and decomposed accents, invisible characters
/// inside; other names pass, are not unique, show in snapshots, summaries and update events,
/// and are searchable as the built-in keyword `name` (exact, case-sensitive).
#[test]
fn l7_a_name_with_a_denied_word_is_refused_in_every_unicode_spelling() {
    let path = deny_list("spellings", "badword\n\n  Crème  \n");
    let server = TestServer::with_name_deny_list(Limits::default(), &path);
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let denied = [
        "BADWORD",
        "ｂａｄｗｏｒｄ", // full-width
        "my BadWord crew",
        "bad\u{200B}word",          // a zero-width space inside
        "cre\u{300}me",             // decomposed è
        "CRÈME",                    // composed, upper case
        "ＣＲＥ\u{300}ＭＥ brûlée", // full-width and decomposed at once
    ];
    for name in denied {
        assert_eq!(
            code(alice.party_create_with(true, 4, "", false, named(name))),
            ErrorCode::PartyNameDenied,
            "{name:?}"
        );
    }
    assert_eq!(ok(alice.party_my_parties()), vec![], "nothing was created");
    for (name, why) in [("x".repeat(65), "party_name_bytes_max"), ("two\nlines".into(), "control character")] {
        let (got, message) = error(alice.party_create_with(true, 4, "", false, named(&name)));
        assert_eq!(got, ErrorCode::BadInput);
        assert!(message.contains(why), "{message}");
    }

    let first = ok(alice.party_create_with(true, 4, "", false, named("Good crew")));
    assert_eq!(first.lobby.name, "Good crew");
    let second = ok(bob.party_create_with(true, 4, "", false, named("Good crew")));
    assert_eq!(second.lobby.name, "Good crew", "names are not unique");
    assert_eq!(ok(alice.party_create_with(true, 4, "", false, named("bad word creme"))).lobby.name, "bad word creme");
    assert_eq!(ok(alice.party_my_parties())[0].lobby.name, "Good crew", "summaries carry it");
    let mut ids = vec![first.party_id, second.party_id];
    ids.sort();
    let (found, _) = ok(bob.party_search(r#"name:"Good crew""#, None, None, None));
    assert_eq!(found.iter().map(|l| l.party_id).collect::<Vec<_>>(), ids);
    assert!(found.iter().all(|l| l.name == "Good crew"), "listings carry the name");
    let (found, _) = ok(bob.party_search(r#"name:"good crew""#, None, None, None));
    assert_eq!(found, vec![], "exact and case-sensitive");
    let (found, _) = ok(bob.party_search("Good", None, None, None));
    assert_eq!(found, vec![], "bare terms skip built-in fields");

    // An update to a denied name is refused and changes nothing; "" clears the name.
    let id = first.party_id;
    let rename = |name: &str| LobbySettingsPatch { name: Some(name.into()), ..LobbySettingsPatch::default() };
    assert_eq!(code(alice.party_update_lobby(id, rename("ＢＡＤＷＯＲＤ"))), ErrorCode::PartyNameDenied);
    assert_eq!(drain(&mut alice), vec![]);
    assert_eq!(ok(alice.party_get(id)).lobby.name, "Good crew");
    ok(alice.party_update_lobby(id, rename("")));
    assert_eq!(drain(&mut alice), vec![updated(&first, &LobbySettings::default(), 2)]);
    let (found, _) = ok(bob.party_search(r#"name:"Good crew""#, None, None, None));
    assert_eq!(found.len(), 1, "the very next search sees the change");
    let _ = std::fs::remove_file(&path);
}

/// A reload (what SIGHUP asks for) reads the deny-list file again; a file that cannot be read
/// keeps the list in force and says so; names already set stay.
#[test]
fn l7_a_reload_reads_the_deny_list_again_and_a_bad_one_keeps_the_old_list() {
    let path = deny_list("reload", "oldword\n");
    let server = TestServer::with_name_deny_list(Limits::default(), &path);
    let mut alice = server.connect("alice");
    let kept = ok(alice.party_create_with(true, 4, "", false, named("newword club"))).party_id;
    assert_eq!(code(alice.party_create_with(true, 4, "", false, named("OLDWORD"))), ErrorCode::PartyNameDenied);

    std::fs::write(&path, "newword\n").unwrap();
    server.handle.reload();
    server.wait_stats("the reload", |s| s.reloads_total == 1);
    assert_eq!(code(alice.party_create_with(true, 4, "", false, named("NEWWORD"))), ErrorCode::PartyNameDenied);
    assert_eq!(ok(alice.party_create_with(true, 4, "", false, named("oldword"))).lobby.name, "oldword");
    assert_eq!(ok(alice.party_get(kept)).lobby.name, "newword club", "names already set stay");

    std::fs::remove_file(&path).unwrap();
    server.handle.reload();
    server.wait_stats("the failed reload", |s| s.reloads_total == 2 && s.reload_failures_total == 1);
    assert_eq!(code(alice.party_create_with(true, 4, "", false, named("newword"))), ErrorCode::PartyNameDenied);
}

// ---- L-8 attributes ----

/// The game backend writes a party's attributes with a timestamp: every member hears of it
/// (with the version after the write, and a snapshot for those who asked); a write not newer
/// than the stored one is 409 and changes nothing; bad writes are 400, unknown parties 404.
#[test]
fn l8_attributes_reach_every_member_and_an_older_write_is_refused_with_409() {
    let server = TestServer::with_admin(Limits::default());
    let mut leader = server.connect("leader");
    let mut member = server.connect_with("member", ConnectOptions { snapshots: true, ..ConnectOptions::default() });
    let id = create_with(&mut leader, true, LobbySettings::default()).party_id;
    join_open(&mut member, id);
    drain(&mut leader);
    drain(&mut member);
    let path = format!("/v1/parties/{id}/attributes");
    let put = |body: &str| admin(&server, "PUT", &path, body);
    let attributes_updated = |attributes: &str, timestamp: u64, version: u64| {
        Event::Lobby(LobbyEvent::AttributesUpdated {
            party_id: id,
            attributes: attributes.into(),
            timestamp: UnixMillis(timestamp),
            version,
        })
    };

    let answer = put(r#"{"attributes":{"mode":"ranked","map":"dust"},"timestamp":1000}"#);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, serde_json::json!({"party_id": id.to_string(), "timestamp": 1000, "version": 3}));
    let stored = r#"{"map":"dust","mode":"ranked"}"#;
    assert_eq!(drain(&mut leader), vec![attributes_updated(stored, 1000, 3)]);
    let now = ok(leader.party_get(id));
    assert_eq!((now.data.attributes.as_str(), now.data.attributes_timestamp), (stored, UnixMillis(1000)));
    assert_eq!(drain(&mut member), vec![attributes_updated(stored, 1000, 3), snapshot(&now)]);

    for older in [999, 1000] {
        let answer = put(&format!(r#"{{"attributes":{{"mode":"casual"}},"timestamp":{older}}}"#));
        assert_eq!((answer.status, answer.code()), (409, "conflict"), "timestamp {older}");
        assert!(answer.message().contains("1000"), "{answer:?}");
    }
    assert_eq!(ok(leader.party_get(id)), now, "a refused write changes nothing");
    assert_eq!(drain(&mut leader), vec![]);
    assert_eq!(drain(&mut member), vec![]);

    let big = format!(r#"{{"attributes":{{"a":"{}"}},"timestamp":2000}}"#, "x".repeat(4096));
    let answer = put(&big);
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("party_attributes_bytes_max"), "{answer:?}");
    assert_eq!(put(r#"{"attributes":"x","timestamp":2000}"#).status, 400);
    let gone =
        admin(&server, "PUT", &format!("/v1/parties/{}/attributes", PartyId(7)), r#"{"attributes":{},"timestamp":1}"#);
    assert_eq!((gone.status, gone.code()), (404, "party_not_found"));

    // Nakama's form of the id names the same party; an empty object is a write like any other.
    let nakama = huddle::wire::nakama::NakamaPartyId(id).to_string();
    let answer =
        admin(&server, "PUT", &format!("/v1/parties/{nakama}/attributes"), r#"{"attributes":{},"timestamp":1001}"#);
    assert_eq!((answer.status, answer.body["version"].clone()), (200, serde_json::json!(4)));
    assert_eq!(drain(&mut leader), vec![attributes_updated("{}", 1001, 4)]);
}

/// O-1's party views show what Lobby II adds: name, strategies, chat flag and version in the
/// list; in the full view also the code, the global and each member's custom data (`""` for a
/// member that wrote none) and the attributes as their JSON object with their timestamp.
#[test]
fn l4_to_l8_the_admin_party_views_show_name_strategies_custom_data_and_attributes() {
    let server = TestServer::with_admin(Limits::default());
    let mut leader = server.connect("leader");
    let mut member = server.connect("member");
    let settings = LobbySettings {
        join_strategy: JoinStrategy::FriendsOfMembers,
        invite_strategy: InviteStrategy::LeaderOnly,
        name: "Friday squad".into(),
        chat_enabled: true,
    };
    let id = create_with(&mut leader, true, settings).party_id;
    set_list(&server, "leader", "friends", &["member"]);
    join_open(&mut member, id);
    ok(leader.party_custom_data(id, CustomDataScope::Global, "map:dust"));
    ok(member.party_custom_data(id, CustomDataScope::Member, "ready"));
    let put =
        admin(&server, "PUT", &format!("/v1/parties/{id}/attributes"), r#"{"attributes":{"mmr":1200},"timestamp":7}"#);
    assert_eq!(put.status, 200, "{put:?}");
    let code = ok(leader.party_code(id));

    let full = admin(&server, "GET", &format!("/v1/parties/{id}"), "");
    assert_eq!(full.status, 200, "{full:?}");
    let body = &full.body;
    let field = |name: &str| body[name].clone();
    assert_eq!(
        [field("name"), field("join_strategy"), field("invite_strategy"), field("chat_enabled"), field("version")],
        [
            serde_json::json!("Friday squad"),
            serde_json::json!("friends_of_members"),
            serde_json::json!("leader_only"),
            serde_json::json!(true),
            serde_json::json!(5),
        ],
        "{body}"
    );
    assert_eq!(field("code"), serde_json::json!(code.as_str()));
    assert_eq!(field("custom_data"), serde_json::json!("map:dust"));
    assert_eq!(
        (field("attributes"), field("attributes_timestamp_ms")),
        (serde_json::json!({"mmr": 1200}), serde_json::json!(7))
    );
    let members: Vec<(&str, &str)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].as_str().unwrap(), m["custom_data"].as_str().unwrap()))
        .collect();
    assert_eq!(members, [("leader", ""), ("member", "ready")]);

    let list = admin(&server, "GET", "/v1/parties", "");
    let listed = &list.body["parties"][0];
    assert_eq!(
        (listed["name"].as_str(), listed["join_strategy"].as_str()),
        (Some("Friday squad"), Some("friends_of_members"))
    );
    assert_eq!((listed["chat_enabled"].as_bool(), listed["version"].as_u64()), (Some(true), Some(5)));
    assert!(listed.get("code").is_none() && listed.get("attributes").is_none(), "the list stays short: {listed}");
}

// ---- L-9 versions ----

/// Strategy, name, chat flag, custom data and attribute changes are one version step each,
/// with a snapshot after the deltas for members who asked; chat is none.
#[test]
fn l9_lobby_ii_changes_move_the_version_by_one_and_chat_does_not() {
    let server = TestServer::with_admin(Limits::default());
    let mut leader = server.connect_with("leader", ConnectOptions { snapshots: true, ..ConnectOptions::default() });
    let mut member = server.connect("member");
    let lobby = LobbySettings { chat_enabled: true, ..LobbySettings::default() };
    let id = create_with(&mut leader, true, lobby).party_id;
    join_open(&mut member, id);
    drain(&mut leader);
    drain(&mut member);
    let mut version = 2;
    let mut step = |what: &str, leader: &mut Client, changes: bool| {
        version += u64::from(changes);
        let now = ok(leader.party_get(id));
        assert_eq!(now.version, version, "{what}");
        let events = drain(leader);
        let snapshots = events.iter().filter(|e| matches!(e, Event::Lobby(LobbyEvent::Snapshot(_)))).count();
        assert_eq!(snapshots, usize::from(changes), "{what}: {events:?}");
        if changes {
            assert_eq!(events.last(), Some(&snapshot(&now)), "{what}: the snapshot comes after the deltas");
        }
    };
    ok(leader.party_update_strategies(id, Some(JoinStrategy::FriendsOfLeader), None));
    step("a strategy", &mut leader, true);
    ok(leader.party_update_lobby(id, LobbySettingsPatch { name: Some("crew".into()), ..Default::default() }));
    step("a name", &mut leader, true);
    ok(leader.party_update_lobby(id, LobbySettingsPatch { chat_enabled: Some(false), ..Default::default() }));
    step("the chat flag", &mut leader, true);
    ok(leader.party_update_lobby(id, LobbySettingsPatch { chat_enabled: Some(true), ..Default::default() }));
    step("the chat flag again", &mut leader, true);
    ok(member.party_chat_text(id, "hey"));
    step("a chat message", &mut leader, false);
    ok(member.party_custom_data(id, CustomDataScope::Member, "ready"));
    step("custom data", &mut leader, true);
    assert_eq!(
        admin(&server, "PUT", &format!("/v1/parties/{id}/attributes"), r#"{"attributes":{"a":1},"timestamp":5}"#)
            .status,
        200
    );
    step("attributes", &mut leader, true);
    ok(leader.party_update_lobby(id, LobbySettingsPatch { name: Some("crew".into()), ..Default::default() }));
    step("the same name again", &mut leader, false);
}
