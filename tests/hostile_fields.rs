//! Invalid UTF-8 and absurd lengths in every string field of every request (search included),
//! over real sockets.
//! A string that is not UTF-8 fails FlatBuffers verification: error 100, the connection stays
//! open and nothing changes. A string too long for its field gets that field's error; one too
//! long for a frame closes the connection with 1009. In every case the party and the statuses
//! of everyone else are as they were.

mod common;

use common::*;
use huddle::client::Client;
use huddle::core::{Cid, PartyId, PartyRequest, Presence, Reply, Request, StatusRequest, UserId, Username};
use huddle::wire::{Encoder, ErrorCode, ServerMessage};
use tungstenite::Message;

/// A marker placed in one string field; found in the encoded frame and corrupted there.
const MARK: &str = "ZQZQ";

/// Every request with a string field, with `text` in one of its string fields.
fn requests_with(text: &str, party_id: PartyId, target: &Presence) -> Vec<(&'static str, Request)> {
    let json = format!(r#"{{"k":"{text}"}}"#);
    let presence = |user: &str, name: &str| Presence {
        user_id: UserId::new(user),
        session_id: target.session_id,
        username: Username::new(name),
    };
    let party = Request::Party;
    vec![
        (
            "create.label",
            party(PartyRequest::Create {
                open: true,
                max_size: 4,
                label: json.clone(),
                hidden: false,
                lobby: Default::default(),
            }),
        ),
        (
            "update.label",
            party(PartyRequest::Update {
                party_id,
                open: None,
                hidden: None,
                label: Some(json),
                lobby: Default::default(),
            }),
        ),
        (
            "accept.presence.user_id",
            party(PartyRequest::Accept { party_id, presence: presence(text, target.username.as_str()) }),
        ),
        (
            "remove.presence.username",
            party(PartyRequest::Remove { party_id, presence: presence(target.user_id.as_str(), text) }),
        ),
        ("promote.presence.user_id", party(PartyRequest::Promote { party_id, presence: presence(text, "B") })),
        ("search.query", party(PartyRequest::Search { query: text.to_owned(), open: None, limit: None, cursor: None })),
        (
            "search.cursor",
            party(PartyRequest::Search {
                query: String::new(),
                open: None,
                limit: None,
                cursor: Some(text.to_owned()),
            }),
        ),
        ("status.status", Request::Status(StatusRequest::Update { status: Some(text.to_owned()) })),
        (
            "follow.user_ids",
            Request::Status(StatusRequest::Follow { user_ids: vec![UserId::new(text)], usernames: vec![] }),
        ),
        (
            "follow.usernames",
            Request::Status(StatusRequest::Follow { user_ids: vec![], usernames: vec![Username::new(text)] }),
        ),
        ("unfollow.user_ids", Request::Status(StatusRequest::Unfollow { user_ids: vec![UserId::new(text)] })),
    ]
}

struct World {
    server: TestServer,
    alice: Client,
    bob: Client,
    party_id: PartyId,
}

/// Alice leads a party bob is in; both are visible with a status and follow each other.
fn world() -> World {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party_id = alice.party_create(true, 4, r#"{"mode":"duo"}"#, false).unwrap().unwrap().party_id;
    bob.party_join(party_id).unwrap().unwrap();
    alice.status_update(Some("alice here")).unwrap().unwrap();
    bob.status_update(Some("bob here")).unwrap().unwrap();
    World { server, alice, bob, party_id }
}

/// What an observer can see of the world: the party and bob's view of alice's status.
fn observe(world: &mut World) -> String {
    let party = world.bob.party_get(world.party_id).unwrap().unwrap();
    let follow = world.bob.follow(&["alice"], &[]).unwrap().unwrap();
    format!("{party:?} {follow:?}")
}

#[test]
fn invalid_utf8_in_every_string_field_is_refused_and_changes_nothing() {
    let mut w = world();
    let before = observe(&mut w);
    let bob = w.bob.presence().clone();
    for (field, request) in requests_with(MARK, w.party_id, &bob) {
        let mut frame = Encoder::new().request(Cid(77), &request).to_vec();
        let at = frame.windows(MARK.len()).position(|win| win == MARK.as_bytes()).expect("marker in frame");
        frame[at..at + MARK.len()].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
        w.alice.send_raw(Message::Binary(frame.into())).unwrap();
        let reply = loop {
            match w.alice.next(WAIT).unwrap() {
                ServerMessage::Reply { cid, result } => {
                    // C-5: the envelope verifies as far as its cid, so the error carries it.
                    assert_eq!(cid, Cid(77), "{field}: the error reply carries the request's cid");
                    break result;
                }
                ServerMessage::Event(_) => continue, // earlier events (bob joined, statuses)
                ServerMessage::ErrorEvent(error) => panic!("{field}: error without the request's cid: {error:?}"),
            }
        };
        match reply {
            Err(error) => assert_eq!(error.code, ErrorCode::MalformedEnvelope, "{field}: {}", error.message),
            Ok(reply) => panic!("{field}: expected error 100, got {reply:?}"),
        }
        assert_eq!(w.alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "{field}: connection stays open");
    }
    let _ = w.bob.take_events();
    assert_eq!(observe(&mut w), before, "nothing changed");
}

#[test]
fn strings_too_long_for_their_field_get_that_fields_error_and_change_nothing() {
    let mut w = world();
    let before = observe(&mut w);
    let bob = w.bob.presence().clone();
    // 3,000 bytes: inside a 16 KiB frame, over every string limit (labels and statuses 2,048,
    // ids and usernames 128).
    let long = "x".repeat(3000);
    for (field, request) in requests_with(&long, w.party_id, &bob) {
        match w.alice.request(&request).unwrap() {
            Err(error) => assert!(
                // A cursor longer than any the server issues is garbage: its field's error is 232.
                [ErrorCode::BadInput, ErrorCode::LimitExceeded, ErrorCode::SearchCursorInvalid].contains(&error.code),
                "{field}: unexpected error {:?}: {}",
                error.code,
                error.message
            ),
            Ok(reply) => panic!("{field}: a 3,000-byte string was accepted: {reply:?}"),
        }
    }
    let _ = w.bob.take_events();
    assert_eq!(observe(&mut w), before, "nothing changed");
}

#[test]
fn strings_too_long_for_a_frame_close_with_1009_and_others_are_unaffected() {
    let mut w = world();
    let before = observe(&mut w);
    let bob = w.bob.presence().clone();
    let absurd = "x".repeat(20_000);
    for (field, request) in requests_with(&absurd, w.party_id, &bob) {
        let mut offender = w.server.connect("mallory");
        offender.send(&request).unwrap();
        let frame = offender.wait_closed(WAIT).unwrap_or_else(|e| panic!("{field}: {e}")).expect("close frame");
        assert_eq!(u16::from(frame.code), 1009, "{field}");
    }
    let _ = w.bob.take_events();
    assert_eq!(observe(&mut w), before, "nothing changed for anyone else");
    w.server.wait_stats("offenders gone", |s| s.sessions_open == 2);
}
