//! End-to-end tests of the admin API's party routes (SPEC O-1): listing parties in a stable
//! order, a party in full with its pending requests, a user's parties, and moderation (close,
//! kick) as the members see it, over real loopback sockets: a server with a game and an admin
//! listener on 127.0.0.1:0, raw HTTP/1.1 (`common/admin_http.rs`) and game clients from
//! `huddle::client`. Each route is tried with a good key, a bad key and none.
//!
//! What members see is read without sleeping: an admin request's events are queued for the
//! members before its HTTP response is written, so once the response is in, a member's Ping is
//! answered after every event the request caused (`drain`).

#[path = "common/admin_http.rs"]
mod admin_http;
mod common;

use admin_http::*;
use common::*;
use huddle::client::Client;
use huddle::core::{PartyEvent, PartyId, PartyReply, Presence, RemovedReason};
use huddle::limits::Limits;
use serde_json::Value;

fn me(client: &Client) -> Presence {
    client.presence().clone()
}

fn create(client: &mut Client, open: bool, max_size: u32, label: &str) -> PartyId {
    ok(client.party_create(open, max_size, label, false)).party_id
}

/// A presence as the admin API prints it.
fn presence_json(presence: &Presence) -> Value {
    serde_json::json!({
        "user_id": presence.user_id.as_str(),
        "session_id": presence.session_id.to_wire().to_string(),
        "username": presence.username.as_str(),
    })
}

fn ok_json(response: Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

#[test]
fn every_party_route_wants_the_key() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, true, 4, "");
    ok(bob.party_join(party));
    let routes = [
        ("GET", "/v1/parties".to_owned()),
        ("GET", format!("/v1/parties/{party}")),
        ("GET", "/v1/users/alice/parties".to_owned()),
        ("GET", "/v1/history".to_owned()),
        ("DELETE", format!("/v1/parties/{party}/members/bob")),
        ("DELETE", format!("/v1/parties/{party}")),
    ];
    for (method, path) in &routes {
        for key in [None, BAD] {
            let response = http.request(method, path, key, None);
            assert_eq!(response.status, 401, "{method} {path} with {key:?}: {}", response.text());
            assert_eq!(response.error_code(), "unauthorized");
        }
    }
    assert_eq!(drain(&mut bob), [], "refused requests changed nothing");
    for (method, path) in &routes {
        ok_json(http.request(method, path, GOOD, None));
    }
    // L-9: created 1, bob joined 2, the kick 3, the close 4.
    assert_eq!(drain(&mut bob), [PartyEvent::Removed { party_id: party, reason: RemovedReason::Kicked, version: 3 }]);
    assert_eq!(
        drain(&mut alice).last(),
        Some(&PartyEvent::Removed { party_id: party, reason: RemovedReason::ClosedByAdmin, version: 4 })
    );
}

#[test]
fn parties_are_listed_in_creation_order_in_pages_and_shown_in_full() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let (mut alice, mut alice2, mut bob, mut carol) =
        (server.connect("alice"), server.connect("alice"), server.connect("bob"), server.connect("carol"));
    let first = create(&mut bob, true, 4, r#"{"mode":"ctf"}"#);
    let second = create(&mut alice, false, 3, "");
    let third = create(&mut carol, true, 2, "");
    ok(alice2.party_join(third));
    assert_eq!(ok(bob.party_join(second)), PartyReply::JoinPending { party_id: second });

    let page = ok_json(http.request("GET", "/v1/parties?limit=2", GOOD, None));
    assert_eq!(
        (page["total"].as_u64(), page["offset"].as_u64(), page["next_offset"].as_u64()),
        (Some(3), Some(0), Some(2))
    );
    let ids: Vec<&str> = page["parties"].as_array().unwrap().iter().map(|p| p["party_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.to_string(), second.to_string()]);
    let listed = &page["parties"][0];
    assert_eq!(listed["label"], serde_json::json!({"mode": "ctf"}), "the label is its JSON object");
    assert_eq!(
        (listed["open"].as_bool(), listed["max_size"].as_u64(), listed["member_count"].as_u64()),
        (Some(true), Some(4), Some(1))
    );
    assert_eq!(listed["leader"], presence_json(&me(&bob)));
    assert_eq!(page["parties"][1]["pending_count"], 1);
    let rest = ok_json(http.request("GET", "/v1/parties?offset=2&limit=2", GOOD, None));
    assert_eq!(rest["parties"][0]["party_id"].as_str(), Some(third.to_string().as_str()));
    assert!(rest.get("next_offset").is_none(), "no next page: {rest}");
    // A party ending keeps the others in order.
    ok(bob.party_leave(first));
    let after = ok_json(http.request("GET", "/v1/parties", GOOD, None));
    let ids: Vec<&str> = after["parties"].as_array().unwrap().iter().map(|p| p["party_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.to_string(), third.to_string()]);

    let full = ok_json(http.request("GET", &format!("/v1/parties/{second}"), GOOD, None));
    assert_eq!(full["pending"], serde_json::json!([presence_json(&me(&bob))]));
    assert_eq!(full["leader"], presence_json(&me(&alice)));
    assert_eq!(full["label"], Value::Null);
    let member = &full["members"][0];
    assert_eq!(
        (member["user_id"].as_str(), member["session_id"].as_str()),
        (Some("alice"), Some(me(&alice).session_id.to_wire().to_string().as_str()))
    );
    assert!(member["joined_at_ms"].as_u64().unwrap() >= full["created_at_ms"].as_u64().unwrap());
    // Nakama's form of the same id names the same party.
    let nakama = huddle::wire::nakama::NakamaPartyId(second).to_string();
    assert_eq!(ok_json(http.request("GET", &format!("/v1/parties/{nakama}"), GOOD, None)), full);

    let mine = ok_json(http.request("GET", "/v1/users/alice/parties", GOOD, None));
    let parties: Vec<(String, Vec<String>)> = mine["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let sessions = p["sessions"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
            (p["party_id"].as_str().unwrap().to_owned(), sessions)
        })
        .collect();
    let session = |c: &Client| c.presence().session_id.to_wire().to_string();
    assert_eq!(parties, [(second.to_string(), vec![session(&alice)]), (third.to_string(), vec![session(&alice2)])]);
    let bobs = ok_json(http.request("GET", "/v1/users/bob/parties", GOOD, None));
    assert_eq!(bobs["requests"], serde_json::json!([{"party_id": second.to_string(), "session_id": session(&bob)}]));
    assert_eq!(ok_json(http.request("GET", "/v1/users/nobody/parties", GOOD, None))["parties"], serde_json::json!([]));
}

#[test]
fn an_admin_close_is_seen_by_members_and_requesters_as_closed_by_admin() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let (mut alice, mut bob, mut carol, mut zed) =
        (server.connect("alice"), server.connect("bob"), server.connect("carol"), server.connect("zed"));
    let party = create(&mut alice, true, 4, "");
    ok(bob.party_join(party));
    ok(alice.party_update(party, Some(false), None, None));
    assert_eq!(ok(carol.party_join(party)), PartyReply::JoinPending { party_id: party });
    drain(&mut alice);
    drain(&mut bob);

    let closed = ok_json(http.request("DELETE", &format!("/v1/parties/{party}"), GOOD, None));
    assert_eq!(closed, serde_json::json!({"party_id": party.to_string(), "members_removed": 2, "requests_removed": 1}));
    // L-9: created 1, bob joined 2, the update 3 (carol's request is not a change), the close 4.
    let gone = PartyEvent::Removed { party_id: party, reason: RemovedReason::ClosedByAdmin, version: 4 };
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(drain(client), std::slice::from_ref(&gone));
    }
    assert_eq!(drain(&mut zed), [], "nobody else hears of it");
    let again = http.request("DELETE", &format!("/v1/parties/{party}"), GOOD, None);
    assert_eq!((again.status, again.error_code().as_str()), (404, "party_not_found"));
    assert_eq!(ok(alice.party_my_parties()), []);
    assert!(matches!(alice.party_get(party), Ok(Err(e)) if e.code == huddle::wire::ErrorCode::PartyNotFound));
}

#[test]
fn kicking_the_leaders_user_removes_each_of_its_sessions_and_the_lead_rotates_before_the_leaves() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let (mut alice, mut alice2, mut bob, mut carol) =
        (server.connect("alice"), server.connect("alice"), server.connect("bob"), server.connect("carol"));
    let party = create(&mut alice, true, 4, "");
    for client in [&mut alice2, &mut bob, &mut carol] {
        ok(client.party_join(party));
    }
    for client in [&mut alice, &mut alice2, &mut bob, &mut carol] {
        drain(client);
    }
    let kicked = ok_json(http.request("DELETE", &format!("/v1/parties/{party}/members/alice"), GOOD, None));
    let sessions: Vec<String> =
        [&alice, &alice2].iter().map(|c| c.presence().session_id.to_wire().to_string()).collect();
    assert_eq!(
        kicked,
        serde_json::json!({"party_id": party.to_string(), "user_id": "alice", "sessions_kicked": sessions,
                           "new_leader": presence_json(&me(&bob)), "party_ended": false})
    );
    // L-9: created 1, three joins 2..4, the kick (one step, however many events) 5.
    let removed = PartyEvent::Removed { party_id: party, reason: RemovedReason::Kicked, version: 5 };
    assert_eq!(drain(&mut alice), std::slice::from_ref(&removed));
    assert_eq!(drain(&mut alice2), [removed]);
    let expected = [
        PartyEvent::Leader { party_id: party, leader: me(&bob), version: 5 },
        PartyEvent::Presence { party_id: party, joins: vec![], leaves: vec![me(&alice), me(&alice2)], version: 5 },
    ];
    assert_eq!(drain(&mut bob), expected);
    assert_eq!(drain(&mut carol), expected);
    assert_eq!(ok(bob.party_get(party)).members, [me(&bob), me(&carol)]);
}

#[test]
fn a_kick_naming_a_session_removes_only_that_one() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let (mut alice, mut bob, mut bob2) = (server.connect("alice"), server.connect("bob"), server.connect("bob"));
    let party = create(&mut alice, true, 4, "");
    ok(bob.party_join(party));
    ok(bob2.party_join(party));
    drain(&mut alice);
    drain(&mut bob);
    let target = bob2.presence().session_id.to_wire();
    let kicked =
        ok_json(http.request("DELETE", &format!("/v1/parties/{party}/members/bob?session_id={target}"), GOOD, None));
    assert_eq!(
        (kicked["sessions_kicked"].clone(), kicked["new_leader"].clone()),
        (serde_json::json!([target.to_string()]), Value::Null)
    );
    // L-9: created 1, two joins 2 and 3, the kick 4.
    assert_eq!(drain(&mut bob2), [PartyEvent::Removed { party_id: party, reason: RemovedReason::Kicked, version: 4 }]);
    let leaves = PartyEvent::Presence { party_id: party, joins: vec![], leaves: vec![me(&bob2)], version: 4 };
    assert_eq!(drain(&mut alice), std::slice::from_ref(&leaves));
    assert_eq!(drain(&mut bob), [leaves], "the user's other session stays, and sees the leave");
    // The same session again, or a session of another user, is not a member.
    for target in [target, alice.presence().session_id.to_wire()] {
        let again = http.request("DELETE", &format!("/v1/parties/{party}/members/bob?session_id={target}"), GOOD, None);
        assert_eq!((again.status, again.error_code().as_str()), (404, "member_not_found"), "{}", again.text());
    }
}

#[test]
fn party_route_errors_have_their_status_and_name_what_is_wrong() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    let mut alice = server.connect("alice");
    let party = create(&mut alice, true, 4, "");
    let unknown = PartyId(0x1234);
    for (method, path, status, code, message_starts) in [
        ("GET", format!("/v1/parties/{unknown}"), 404, "party_not_found", "no such party"),
        ("DELETE", format!("/v1/parties/{unknown}"), 404, "party_not_found", "no such party"),
        ("DELETE", format!("/v1/parties/{unknown}/members/alice"), 404, "party_not_found", "no such party"),
        ("DELETE", format!("/v1/parties/{party}/members/bob"), 404, "member_not_found", "user \"bob\""),
        ("GET", "/v1/parties/not-an-id".to_owned(), 400, "bad_request", "party_id:"),
        ("GET", "/v1/parties?limit=0".to_owned(), 400, "bad_request", "limit:"),
        ("GET", "/v1/parties?limit=101".to_owned(), 400, "bad_request", "limit:"),
        ("GET", "/v1/parties?page=2".to_owned(), 400, "bad_request", "page: unknown parameter"),
        ("GET", format!("/v1/parties/{party}?verbose=1"), 400, "bad_request", "verbose: unknown parameter"),
        ("DELETE", format!("/v1/parties/{party}/members/alice?session_id=x"), 400, "bad_request", "session_id:"),
        ("POST", "/v1/parties".to_owned(), 405, "method_not_allowed", "method not allowed"),
    ] {
        let response = http.request(method, &path, GOOD, None);
        assert_eq!(
            (response.status, response.error_code().as_str()),
            (status, code),
            "{method} {path}: {}",
            response.text()
        );
        let message = response.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(message_starts), "{method} {path}: {message}");
    }
    assert_eq!(ok(alice.party_get(party)).members, [me(&alice)], "no refusal touched the party");
}

#[test]
fn a_page_stops_at_admin_response_bytes_max_and_says_where_to_go_on() {
    let limits = Limits { admin_response_bytes_max: 1500, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let mut http = Http::connect(&server);
    let mut alice = server.connect("alice");
    let label = format!(r#"{{"pad":"{}"}}"#, "x".repeat(600));
    let ids: Vec<PartyId> = (0..4).map(|_| create(&mut alice, true, 2, &label)).collect();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = ok_json(http.request("GET", &format!("/v1/parties?offset={offset}"), GOOD, None));
        let parties = page["parties"].as_array().unwrap();
        assert!(
            (1..=2).contains(&parties.len()),
            "two 700-byte parties fit 1500 bytes, three do not: {}",
            parties.len()
        );
        seen.extend(parties.iter().map(|p| p["party_id"].as_str().unwrap().to_owned()));
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().map(|id| id.to_string()).collect::<Vec<_>>());
}
