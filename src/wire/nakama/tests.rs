//! The JSON codec against Nakama's own frames. The encoder's output for each recorded flow
//! (create, joins, join requests, accept, promote, leave, party data, close, status, labels) is
//! compared field by field with the frames a real Nakama 3.40 sent to nakama-js 2.8.0
//! (`tests/fixtures/nakama/`): the same keys at every level, the same values, and ids that map
//! one to one between the two runs (ids differ from run to run, so only their form and their
//! consistency are checked). The recorded client frames are decoded into the requests they mean.
//! Bad input of every kind becomes a typed error with the `cid` when it could be read, and no
//! mutation of a recorded frame panics the decoder.
//!
//! The core values fed to the encoder are built by hand, as the core produces them for the same
//! flow; `tests/nakama_json.rs` drives the real core over sockets with the same recorded flows.

use super::*;
use crate::core::{
    CoreError, Event, PartyEvent, PartyId, PartyReply, PartyRequest, PartySnapshot, Presence, RemovedReason, Reply,
    Request, SessionId, StatusEvent, StatusPresence, StatusReply, StatusRequest, UserId, Username,
};
use crate::sim::Rng;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;

const FRAMES: &str = include_str!("../../../tests/fixtures/nakama/nakama-party-frames.jsonl");
const LABELS: &str = include_str!("../../../tests/fixtures/nakama/nakama-party-labels-trace.jsonl");

// ---- the recorded world ----

fn user(who: &str) -> Presence {
    let (user_id, username, slot) = match who {
        "A" => ("4b0e09a2-69e9-4177-87a3-cba04618f712", "anchor_A_mwq8koa5", 1),
        "B" => ("77e59556-6108-4945-a416-7a222f3a87e4", "anchor_B_mwq8koa5", 2),
        "C" => ("79812433-8941-4283-89e0-f9884f0bdd36", "anchor_C_mwq8koa5", 3),
        "L" => ("091371e0-1b73-4c7d-8026-b506da839ac4", "label_A_mwq8ldgf", 4),
        other => panic!("no user {other}"),
    };
    Presence { user_id: UserId::new(user_id), session_id: SessionId::new(slot, 1), username: Username::new(username) }
}

const CLOSED: PartyId = PartyId(0x1111_2222_3333_4444_5555_6666_7777_8888);
const OPEN: PartyId = PartyId(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000);

fn snapshot(party_id: PartyId, open: bool, max_size: u16, label: &str, members: &[&str]) -> PartySnapshot {
    PartySnapshot {
        party_id,
        open,
        hidden: false,
        max_size,
        label: label.into(),
        leader: user(members[0]),
        members: members.iter().map(|who| user(who)).collect(),
        lobby: Default::default(),
        version: 1,
    }
}

fn to(cid: u64, op: NakamaOp) -> ReplyTo {
    ReplyTo { cid: CidText::Number(cid), op }
}

struct Recorded {
    who: String,
    dir: String,
    frame: Value,
}

fn recorded(file: &str) -> Vec<Recorded> {
    file.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("raw").is_some_and(|raw| raw.as_str().is_some_and(|raw| !raw.is_empty())))
        .map(|line| Recorded {
            who: line["who"].as_str().unwrap_or_default().to_owned(),
            dir: line["dir"].as_str().unwrap_or_default().to_owned(),
            frame: serde_json::from_str(line["raw"].as_str().unwrap_or_default()).expect("recorded frames are JSON"),
        })
        .collect()
}

/// The `nth` (from 0) frame `who` received whose message key is `key` (`None`: a bare ack) and
/// whose cid is `cid`.
fn received(file: &[Recorded], who: &str, key: Option<&str>, cid: Option<&str>, nth: usize) -> Value {
    file.iter()
        .filter(|r| r.who == who && r.dir == "in")
        .map(|r| &r.frame)
        .filter(|frame| {
            let object = frame.as_object().expect("an envelope");
            let message = object.keys().find(|k| *k != "cid").map(String::as_str);
            message == key && object.get("cid").and_then(Value::as_str) == cid
        })
        .nth(nth)
        .unwrap_or_else(|| panic!("no recorded frame {nth} for {who}: {key:?} cid {cid:?}"))
        .clone()
}

/// Pairs huddle's ids with Nakama's, one to one across a whole flow.
#[derive(Default)]
struct Ids {
    ours_to_theirs: HashMap<String, String>,
    theirs_to_ours: HashMap<String, String>,
}

impl Ids {
    fn pair(&mut self, ours: &str, theirs: &str, path: &str) {
        if path.ends_with("party_id") {
            assert!(ours.ends_with(".huddle") && parse_party_id(ours).is_some(), "{path}: {ours}");
        } else {
            assert!(parse_session_id(ours).is_some(), "{path}: {ours} is not a huddle session id");
        }
        let previous = self.ours_to_theirs.insert(ours.to_owned(), theirs.to_owned());
        assert!(previous.is_none_or(|p| p == theirs), "{path}: {ours} stands for two recorded ids");
        let previous = self.theirs_to_ours.insert(theirs.to_owned(), ours.to_owned());
        assert!(previous.is_none_or(|p| p == ours), "{path}: recorded {theirs} stands for two of ours");
    }
}

/// Same keys at every level, same values, ids paired one to one.
fn compare(ours: &Value, theirs: &Value, path: &str, ids: &mut Ids) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut a_keys: Vec<_> = a.keys().collect();
            let mut b_keys: Vec<_> = b.keys().collect();
            a_keys.sort();
            b_keys.sort();
            assert_eq!(a_keys, b_keys, "{path}: keys differ\nours:   {ours}\nNakama: {theirs}");
            for (key, value) in a {
                compare(value, &b[key], &format!("{path}.{key}"), ids);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: lengths differ\nours:   {ours}\nNakama: {theirs}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"), ids);
            }
        }
        (Value::String(a), Value::String(b)) if path.ends_with("party_id") || path.ends_with("session_id") => {
            ids.pair(a, b, path)
        }
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

fn parsed(frames: Frames<'_>) -> Vec<Value> {
    frames.iter().map(|frame| serde_json::from_slice(frame).expect("our frames are JSON")).collect()
}

/// Our frames against the recorded ones, in order.
fn assert_like(ours: Frames<'_>, theirs: &[Value], ids: &mut Ids) {
    let ours = parsed(ours);
    assert_eq!(ours.len(), theirs.len(), "frame count\nours:   {ours:?}\nNakama: {theirs:?}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        compare(a, b, &format!("frame {i}"), ids);
    }
}

// ---- the encoder against the recorded flows ----

#[test]
fn ping_and_follow_replies_match_nakamas() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let frames = encoder.reply(&to(1, NakamaOp::Ping), &user("A"), &Ok(Reply::Pong));
    assert_like(frames, &[received(&file, "A", Some("pong"), Some("1"), 0)], &mut ids);

    let followed =
        StatusReply::Followed { presences: vec![StatusPresence { presence: user("B"), status: String::new() }] };
    let frames = encoder.reply(&to(2, NakamaOp::StatusFollow), &user("A"), &Ok(Reply::Status(followed)));
    assert_like(frames, &[received(&file, "A", Some("status"), Some("2"), 0)], &mut ids);
    // The status presences of the connect (C-3) are the same shape.
    let event =
        StatusEvent { joins: vec![StatusPresence { presence: user("B"), status: String::new() }], leaves: vec![] };
    let frames = encoder.event(&Event::Status(event));
    assert_like(frames, &[received(&file, "B", Some("status_presence_event"), None, 0)], &mut ids);
}

#[test]
fn create_is_the_reply_then_nakamas_own_party_and_presence_pushes() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let a = user("A");
    for (cid, party_id, open, nth) in [(3, CLOSED, false, 0), (4, OPEN, true, 1)] {
        let reply = Ok(Reply::Party(PartyReply::Info(Box::new(snapshot(party_id, open, 4, "", &["A"])))));
        let frames = encoder.reply(&to(cid, NakamaOp::PartyCreate), &a, &reply);
        let cid_text = cid.to_string();
        let expected = [
            received(&file, "A", Some("party"), Some(&cid_text), 0),
            received(&file, "A", Some("party"), None, nth),
            received(&file, "A", Some("party_presence_event"), None, nth),
        ];
        assert_like(frames, &expected, &mut ids);
    }
}

#[test]
fn open_join_is_a_bare_ack_then_the_party_and_the_joiners_own_presence() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    // Pair the ids first, as the create did in the recorded run.
    let created = Ok(Reply::Party(PartyReply::Info(Box::new(snapshot(OPEN, true, 4, "", &["A"])))));
    let reply = parsed(encoder.reply(&to(4, NakamaOp::PartyCreate), &user("A"), &created)).remove(0);
    compare(&reply, &received(&file, "A", Some("party"), Some("4"), 0), "create", &mut ids);

    let joined = Ok(Reply::Party(PartyReply::Info(Box::new(snapshot(OPEN, true, 4, "", &["A", "B"])))));
    let frames = encoder.reply(&to(2, NakamaOp::PartyJoin), &user("B"), &joined);
    let expected = [
        received(&file, "B", None, Some("2"), 0),
        received(&file, "B", Some("party"), None, 0),
        received(&file, "B", Some("party_presence_event"), None, 0),
    ];
    assert_like(frames, &expected, &mut ids);
    // The member already there hears the join.
    let event = PartyEvent::Presence { party_id: OPEN, joins: vec![user("B")], leaves: vec![], version: 1 };
    let frames = encoder.event(&Event::Party(event));
    assert_like(frames, &[received(&file, "A", Some("party_presence_event"), None, 2)], &mut ids);
}

#[test]
fn party_data_both_ways_matches_and_fire_and_forget_data_gets_no_frame() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let sent = [("A", "B", 1, &b"{\"hello\":\"from A\"}"[..]), ("B", "A", 2, &[1u8, 2, 3, 255][..])];
    for (from, recipient, op_code, data) in sent {
        let event =
            PartyEvent::Data { party_id: OPEN, sender: user(from), op_code, data: Bytes::copy_from_slice(data) };
        let frames = encoder.event(&Event::Party(event));
        assert_like(frames, &[received(&file, recipient, Some("party_data"), None, 0)], &mut ids);
        // nakama-js sends party data without a cid; Nakama answers `{}`, which no SDK reads.
        let ack = ReplyTo { cid: CidText::Absent, op: NakamaOp::PartyDataSend };
        let frames = encoder.reply(&ack, &user(from), &Ok(Reply::Party(PartyReply::Ok { party_id: OPEN })));
        assert!(frames.is_empty());
    }
}

#[test]
fn closed_join_request_accept_promote_and_reject_match_nakamas() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let ok = || Ok(Reply::Party(PartyReply::Ok { party_id: CLOSED }));

    // B asks to join the closed party: B gets a bare ack, the leader the request.
    let pending = Ok(Reply::Party(PartyReply::JoinPending { party_id: CLOSED }));
    let frames = encoder.reply(&to(3, NakamaOp::PartyJoin), &user("B"), &pending);
    assert_like(frames, &[received(&file, "B", None, Some("3"), 0)], &mut ids);
    let event = PartyEvent::JoinRequest { party_id: CLOSED, presences: vec![user("B")] };
    let frames = encoder.event(&Event::Party(event));
    assert_like(frames, &[received(&file, "A", Some("party_join_request"), None, 0)], &mut ids);

    // The leader lists the requests.
    let list = Ok(Reply::Party(PartyReply::JoinRequests { party_id: CLOSED, presences: vec![user("B")] }));
    let frames = encoder.reply(&to(5, NakamaOp::PartyJoinRequestList), &user("A"), &list);
    assert_like(frames, &[received(&file, "A", Some("party_join_request"), Some("5"), 0)], &mut ids);

    // Accept: an ack to the leader, the roster change to the members, the party to the joiner.
    let frames = encoder.reply(&to(6, NakamaOp::PartyAccept), &user("A"), &ok());
    assert_like(frames, &[received(&file, "A", None, Some("6"), 0)], &mut ids);
    let event = PartyEvent::Presence { party_id: CLOSED, joins: vec![user("B")], leaves: vec![], version: 1 };
    let frames = encoder.event(&Event::Party(event));
    assert_like(frames, &[received(&file, "A", Some("party_presence_event"), None, 3)], &mut ids);
    let frames =
        encoder.event(&Event::Party(PartyEvent::Joined(Box::new(snapshot(CLOSED, false, 4, "", &["A", "B"])))));
    let expected =
        [received(&file, "B", Some("party"), None, 1), received(&file, "B", Some("party_presence_event"), None, 1)];
    assert_like(frames, &expected, &mut ids);

    // Promote: an ack, and the new leader to every member.
    let frames = encoder.reply(&to(7, NakamaOp::PartyPromote), &user("A"), &ok());
    assert_like(frames, &[received(&file, "A", None, Some("7"), 0)], &mut ids);
    let frames = encoder.event(&Event::Party(PartyEvent::Leader { party_id: CLOSED, leader: user("B"), version: 1 }));
    assert_like(frames, &[received(&file, "A", Some("party_leader"), None, 0)], &mut ids);

    // C asks, the new leader B hears it and rejects: B gets an ack, C hears nothing (as in Nakama).
    let event = PartyEvent::JoinRequest { party_id: CLOSED, presences: vec![user("C")] };
    let frames = encoder.event(&Event::Party(event));
    assert_like(frames, &[received(&file, "B", Some("party_join_request"), None, 0)], &mut ids);
    let frames = encoder.reply(&to(4, NakamaOp::PartyRemove), &user("B"), &ok());
    assert_like(frames, &[received(&file, "B", None, Some("4"), 0)], &mut ids);
    let rejected = PartyEvent::Removed { party_id: CLOSED, reason: RemovedReason::Rejected, version: 1 };
    assert!(encoder.event(&Event::Party(rejected)).is_empty());
    assert!(!file.iter().any(|r| r.who == "C" && r.dir == "in" && r.frame.get("party_close").is_some()));
}

#[test]
fn leader_rotation_leave_and_close_match_nakamas() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    // The leader A leaves the open party: A gets an ack; B the new leader, then the leave.
    let frames =
        encoder.reply(&to(8, NakamaOp::PartyLeave), &user("A"), &Ok(Reply::Party(PartyReply::Ok { party_id: OPEN })));
    assert_like(frames, &[received(&file, "A", None, Some("8"), 0)], &mut ids);
    let frames = encoder.event(&Event::Party(PartyEvent::Leader { party_id: OPEN, leader: user("B"), version: 1 }));
    assert_like(frames, &[received(&file, "B", Some("party_leader"), None, 1)], &mut ids);
    let event = PartyEvent::Presence { party_id: OPEN, joins: vec![], leaves: vec![user("A")], version: 1 };
    let frames = encoder.event(&Event::Party(event));
    assert_like(frames, &[received(&file, "B", Some("party_presence_event"), None, 2)], &mut ids);

    // A, no longer a member, tries to promote: Nakama's code and words.
    let refused = Err(CoreError::PartyNotMember);
    let frames = encoder.reply(&to(10, NakamaOp::PartyPromote), &user("A"), &refused);
    assert_like(frames, &[received(&file, "A", Some("error"), Some("10"), 0)], &mut ids);

    // B closes the closed party: every member, B included, hears party_close; B gets its ack.
    let closed = PartyEvent::Removed { party_id: CLOSED, reason: RemovedReason::Closed, version: 1 };
    let frames = encoder.event(&Event::Party(closed));
    assert_like(frames, &[received(&file, "B", Some("party_close"), None, 0)], &mut ids);
    let frames =
        encoder.reply(&to(7, NakamaOp::PartyClose), &user("B"), &Ok(Reply::Party(PartyReply::Ok { party_id: CLOSED })));
    assert_like(frames, &[received(&file, "B", None, Some("7"), 0)], &mut ids);
    // A kicked member hears the same message.
    let kicked = PartyEvent::Removed { party_id: CLOSED, reason: RemovedReason::Kicked, version: 1 };
    assert_like(encoder.event(&Event::Party(kicked)), &[received(&file, "B", Some("party_close"), None, 0)], &mut ids);
    // So does every member of a party an operator closed (huddle's admin API; Nakama's console
    // has no such thing, so its closest message).
    let by_admin = PartyEvent::Removed { party_id: CLOSED, reason: RemovedReason::ClosedByAdmin, version: 3 };
    assert_like(
        encoder.event(&Event::Party(by_admin)),
        &[received(&file, "B", Some("party_close"), None, 0)],
        &mut ids,
    );
}

#[test]
fn status_updates_match_nakamas() {
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let b = user("B");
    let updated = Ok(Reply::Status(StatusReply::Updated));
    assert_like(
        encoder.reply(&to(5, NakamaOp::StatusUpdate), &b, &updated),
        &[received(&file, "B", None, Some("5"), 0)],
        &mut ids,
    );
    let status = |text: &str| StatusPresence { presence: b.clone(), status: text.into() };
    let change = StatusEvent { joins: vec![status("in party")], leaves: vec![status("")] };
    let frames = encoder.event(&Event::Status(change));
    assert_like(frames, &[received(&file, "A", Some("status_presence_event"), None, 1)], &mut ids);
    let offline = StatusEvent { joins: vec![], leaves: vec![status("in party")] };
    let frames = encoder.event(&Event::Status(offline));
    assert_like(frames, &[received(&file, "A", Some("status_presence_event"), None, 2)], &mut ids);
}

#[test]
fn labelled_and_hidden_parties_and_updates_match_nakamas() {
    let file = recorded(LABELS);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let l = user("L");
    let ranked = r#"{"mode":"ranked","region":"eu","run":"mwq8ldgf"}"#;
    let casual = r#"{"mode":"casual","region":"us","run":"mwq8ldgf"}"#;
    let parties = [PartyId(1), PartyId(2), PartyId(3)];
    let creates = [
        (2, parties[0], true, 4, ranked, false),
        (3, parties[1], false, 2, casual, false),
        (4, parties[2], true, 4, "", true),
    ];
    for (cid, party_id, open, max_size, label, hidden) in creates {
        let mut party = snapshot(party_id, open, max_size, label, &["A"]);
        party.leader = l.clone();
        party.members = vec![l.clone()];
        party.hidden = hidden;
        let frames =
            encoder.reply(&to(cid, NakamaOp::PartyCreate), &l, &Ok(Reply::Party(PartyReply::Info(Box::new(party)))));
        let reply = parsed(frames).remove(0);
        compare(&reply, &received(&file, "A", Some("party"), Some(&cid.to_string()), 0), "create", &mut ids);
    }
    let ranked_us = r#"{"mode":"ranked","region":"us","run":"mwq8ldgf"}"#;
    let update = PartyEvent::Updated {
        party_id: parties[1],
        open: true,
        hidden: false,
        max_size: 2,
        label: ranked_us.into(),
        lobby: Default::default(),
        version: 2,
    };
    let frames = encoder.event(&Event::Party(update));
    assert_like(frames, &[received(&file, "A", Some("party_update"), None, 0)], &mut ids);
    let frames =
        encoder.reply(&to(5, NakamaOp::PartyUpdate), &l, &Ok(Reply::Party(PartyReply::Ok { party_id: parties[1] })));
    assert_like(frames, &[received(&file, "A", None, Some("5"), 0)], &mut ids);
}

// ---- the decoder on the recorded client frames ----

/// Every frame nakama-js sent decodes; presences name huddle sessions (a Nakama session id names
/// none of ours, so the recorded ones are swapped for the matching huddle ids first).
#[test]
fn every_recorded_client_frame_decodes_to_the_request_it_means() {
    let limits = NakamaLimits::new(&crate::limits::Limits::default());
    let nakama_sessions = [
        ("3ca0bbc5-e592-11f1-b9f3-317fd32acb25", "A"),
        ("3ca33818-e592-11f1-b9f3-317fd32acb25", "B"),
        ("3ca4f299-e592-11f1-b9f3-317fd32acb25", "C"),
    ];
    let mut seen = Vec::new();
    for file in [FRAMES, LABELS] {
        for line in file.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            if line["dir"] != "out" {
                continue;
            }
            let mut raw = line["raw"].as_str().expect("raw frame").to_owned();
            for (nakama, who) in nakama_sessions {
                raw = raw.replace(nakama, &NakamaSessionId(user(who).session_id).to_string());
            }
            let decoded = decode_request(raw.as_bytes(), &limits).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            let envelope: Value = serde_json::from_str(&raw).expect("JSON");
            match envelope.get("cid").and_then(Value::as_str) {
                Some(cid) => assert_eq!(decoded.reply_to.cid.to_string(), cid),
                None => assert!(decoded.reply_to.cid.is_absent()),
            }
            seen.push(decoded.reply_to.op);
        }
    }
    for op in NakamaOp::ALL.iter().filter(|op| !matches!(op, NakamaOp::StatusUnfollow)) {
        assert!(seen.contains(op), "no recorded frame for {op:?}");
    }
}

/// Decodes with the default limits but room for the long-list cases (the frame bound has its own test).
fn decode(frame: &str) -> Result<NakamaRequest, DecodeFailure> {
    let limits = NakamaLimits { frame_bytes_max: 1 << 20, ..NakamaLimits::new(&crate::limits::Limits::default()) };
    decode_request(frame.as_bytes(), &limits)
}

fn request(frame: &str) -> Request {
    decode(frame).unwrap_or_else(|e| panic!("{frame}: {e:?}")).request
}

fn error(frame: &str) -> (CidText, NakamaDecodeError) {
    let failure = decode(frame).expect_err(frame);
    (failure.cid, failure.error)
}

const PARTY: &str = "07787d76-008c-4342-a3f3-936140c10fab.nakama-anchor";
const PARTY_ID: PartyId = PartyId(0x07787d76_008c_4342_a3f3_936140c10fab);

#[test]
fn requests_decode_with_nakamas_field_rules() {
    assert_eq!(
        request(r#"{"party_create":{"open":false,"max_size":4},"cid":"3"}"#),
        Request::Party(PartyRequest::Create {
            open: false,
            max_size: 4,
            label: String::new(),
            hidden: false,
            lobby: Default::default()
        })
    );
    // int32 as a string, camelCase names, null as the default, unknown fields ignored, `{}` label.
    assert_eq!(
        request(r#"{"party_create":{"open":null,"maxSize":"8","label":"{}","future_field":[1,{"a":2}]}}"#),
        Request::Party(PartyRequest::Create {
            open: false,
            max_size: 8,
            label: String::new(),
            hidden: false,
            lobby: Default::default()
        })
    );
    assert_eq!(
        request(&format!(r#"{{"party_join":{{"partyId":"{PARTY}"}},"cid":"2"}}"#)),
        Request::Party(PartyRequest::Join { party_id: PARTY_ID })
    );
    // huddle's own 32-hex party id works too.
    assert_eq!(
        request(&format!(r#"{{"party_leave":{{"party_id":"{PARTY_ID}"}}}}"#)),
        Request::Party(PartyRequest::Leave { party_id: PARTY_ID })
    );
    // int64 as a string or a number; bytes in either base64 alphabet, padded or not.
    for (op_code, data) in [(r#""2""#, r#""AQID/w==""#), ("2", r#""AQID_w""#)] {
        assert_eq!(
            request(&format!(r#"{{"party_data_send":{{"party_id":"{PARTY}","op_code":{op_code},"data":{data}}}}}"#)),
            Request::Party(PartyRequest::Data {
                party_id: PARTY_ID,
                op_code: 2,
                data: Bytes::from_static(&[1, 2, 3, 255])
            })
        );
    }
    assert_eq!(
        request(
            r#"{"party_data_send":{"party_id":"07787d76-008c-4342-a3f3-936140c10fab.x","op_code":-9223372036854775808}}"#
        ),
        Request::Party(PartyRequest::Data { party_id: PARTY_ID, op_code: i64::MIN, data: Bytes::new() })
    );
    // Nakama's update replaces every setting.
    assert_eq!(
        request(&format!(r#"{{"party_update":{{"party_id":"{PARTY}","open":true}},"cid":"9"}}"#)),
        Request::Party(PartyRequest::Update {
            party_id: PARTY_ID,
            open: Some(true),
            hidden: Some(false),
            label: Some(String::new()),
            lobby: Default::default(),
        })
    );
    let b = user("B");
    let session = NakamaSessionId(b.session_id);
    assert_eq!(
        request(&format!(
            r#"{{"party_promote":{{"party_id":"{PARTY}","presence":{{"user_id":"{}","session_id":"{session}","username":"{}","status":"x","persistence":false}}}},"cid":"7"}}"#,
            b.user_id.as_str(),
            b.username.as_str()
        )),
        Request::Party(PartyRequest::Promote { party_id: PARTY_ID, presence: b })
    );
    assert_eq!(
        request(r#"{"status_update":{"status":"in \"party\" \u00e9"}}"#),
        Request::Status(StatusRequest::Update { status: Some("in \"party\" é".into()) })
    );
    assert_eq!(request(r#"{"status_update":{}}"#), Request::Status(StatusRequest::Update { status: None }));
    assert_eq!(
        request(r#"{"status_update":{"status":null}}"#),
        Request::Status(StatusRequest::Update { status: None })
    );
    assert_eq!(
        request(r#"{"status_follow":{"user_ids":["u1","u2"],"usernames":["Bob"]}}"#),
        Request::Status(StatusRequest::Follow {
            user_ids: vec![UserId::new("u1"), UserId::new("u2")],
            usernames: vec![Username::new("Bob")]
        })
    );
    assert_eq!(
        request(r#"{"status_unfollow":{"userIds":["u1"]}}"#),
        Request::Status(StatusRequest::Unfollow { user_ids: vec![UserId::new("u1")] })
    );
    assert_eq!(request(r#" {"cid":"1" , "ping" : {} } "#), Request::Ping);
}

#[test]
fn cids_are_echoed_as_written_and_map_to_core_cids() {
    let echoed = |frame: &str| {
        let decoded = decode(frame).expect(frame);
        let frames = NakamaEncoder::new()
            .reply(&decoded.reply_to, &user("A"), &Ok(Reply::Pong))
            .iter()
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        (decoded.reply_to.core_cid(), String::from_utf8(frames.concat()).expect("UTF-8"))
    };
    assert_eq!(echoed(r#"{"ping":{},"cid":"42"}"#), (Cid(42), r#"{"cid":"42","pong":{}}"#.into()));
    assert_eq!(echoed(r#"{"ping":{},"cid":"a\"b"}"#), (Cid(u64::MAX), r#"{"cid":"a\"b","pong":{}}"#.into()));
    assert_eq!(echoed(r#"{"ping":{},"cid":"007"}"#), (Cid(u64::MAX), r#"{"cid":"007","pong":{}}"#.into()));
    assert_eq!(echoed(r#"{"ping":{}}"#), (Cid(u64::MAX), r#"{"pong":{}}"#.into()));
    assert_eq!(echoed(r#"{"ping":{},"cid":""}"#), (Cid(u64::MAX), r#"{"pong":{}}"#.into()));
    // Party data without a cid is fire-and-forget for the core (P-9); with one, it is a request.
    let data = |cid: &str| decode(&format!(r#"{{"party_data_send":{{"party_id":"{PARTY}"}}{cid}}}"#)).expect("data");
    assert_eq!(data("").reply_to.core_cid(), Cid::NONE);
    assert_eq!(data(r#","cid":"5""#).reply_to.core_cid(), Cid(5));
}

use crate::core::Cid;

// ---- bad input ----

#[test]
fn every_kind_of_bad_input_is_a_typed_error_with_the_cid_when_readable() {
    use NakamaDecodeError as E;
    let n = CidText::Number;
    let field = |message, field| FieldName { message, field };
    let cases: Vec<(String, CidText, NakamaDecodeError)> = vec![
        ("not json".into(), CidText::Absent, E::InvalidJson(String::new())),
        (r#"{"cid":"4","party_join":{"party_id":"#.into(), n(4), E::InvalidJson(String::new())),
        (r#"{"cid":"4","ping":{}} trailing"#.into(), n(4), E::InvalidJson(String::new())),
        ("[1,2]".into(), CidText::Absent, E::NotAnObject),
        (r#""text""#.into(), CidText::Absent, E::NotAnObject),
        (r#"{"cid":5,"ping":{}}"#.into(), CidText::Absent, E::InvalidCid),
        (format!(r#"{{"cid":"{}","ping":{{}}}}"#, "9".repeat(CID_BYTES_MAX + 1)), CidText::Absent, E::InvalidCid),
        (r#"{"cid":"1","cid":"2","ping":{}}"#.into(), n(1), E::InvalidJson(String::new())),
        (r#"{"cid":"6"}"#.into(), n(6), E::MissingMessage),
        (r#"{"ping":null,"cid":"6"}"#.into(), n(6), E::MissingMessage),
        (r#"{"ping":{},"pong":{},"cid":"7"}"#.into(), n(7), E::MultipleMessages),
        (r#"{"party_explode":{},"cid":"8"}"#.into(), n(8), E::UnknownMessage("party_explode".into())),
        (r#"{"match_create":{},"cid":"8"}"#.into(), n(8), E::Unsupported("match_create")),
        (r#"{"party":{},"cid":"8"}"#.into(), n(8), E::NotARequest("party")),
        (r#"{"ping":[],"cid":"9"}"#.into(), n(9), E::WrongType { field: field("envelope", "ping"), expected: "" }),
        (
            r#"{"party_create":{"open":"yes","max_size":4},"cid":"10"}"#.into(),
            n(10),
            E::WrongType { field: field("party_create", "open"), expected: "" },
        ),
        (
            r#"{"party_create":{"max_size":true},"cid":"10"}"#.into(),
            n(10),
            E::WrongType { field: field("party_create", "max_size"), expected: "" },
        ),
        (
            r#"{"party_join":{"party_id":17},"cid":"11"}"#.into(),
            n(11),
            E::WrongType { field: field("party_join", "party_id"), expected: "" },
        ),
        (r#"{"party_join":{"party_id":"garbage"},"cid":"11"}"#.into(), n(11), E::InvalidPartyId),
        (r#"{"party_join":{},"cid":"11"}"#.into(), n(11), E::InvalidPartyId),
        (
            r#"{"party_create":{"max_size":1e400},"cid":"12"}"#.into(),
            n(12),
            E::NumberOutOfRange { field: field("party_create", "max_size") },
        ),
        (
            r#"{"party_create":{"max_size":4294967296},"cid":"12"}"#.into(),
            n(12),
            E::NumberOutOfRange { field: field("party_create", "max_size") },
        ),
        (
            r#"{"party_create":{"max_size":2.5},"cid":"12"}"#.into(),
            n(12),
            E::NumberOutOfRange { field: field("party_create", "max_size") },
        ),
        (r#"{"party_create":{"max_size":0},"cid":"12"}"#.into(), n(12), E::InvalidMaxSize { max: 256 }),
        (r#"{"party_create":{"max_size":257},"cid":"12"}"#.into(), n(12), E::InvalidMaxSize { max: 256 }),
        (
            format!(r#"{{"party_data_send":{{"party_id":"{PARTY}","op_code":"99999999999999999999"}},"cid":"13"}}"#),
            n(13),
            E::NumberOutOfRange { field: field("party_data_send", "op_code") },
        ),
        (
            format!(r#"{{"party_data_send":{{"party_id":"{PARTY}","op_code":"one"}},"cid":"13"}}"#),
            n(13),
            E::WrongType { field: field("party_data_send", "op_code"), expected: "" },
        ),
        (
            format!(r#"{{"party_data_send":{{"party_id":"{PARTY}","data":"not base64!"}},"cid":"14"}}"#),
            n(14),
            E::InvalidBase64 { field: field("party_data_send", "data") },
        ),
        (
            format!(r#"{{"party_data_send":{{"party_id":"{PARTY}","data":"AQ-/"}},"cid":"14"}}"#),
            n(14),
            E::InvalidBase64 { field: field("party_data_send", "data") },
        ),
        (format!(r#"{{"party_promote":{{"party_id":"{PARTY}"}},"cid":"15"}}"#), n(15), E::InvalidPresence),
        (
            format!(
                r#"{{"party_accept":{{"party_id":"{PARTY}","presence":{{"user_id":"u","session_id":"3ca0bbc5-e592-11f1-b9f3-317fd32acb25","username":"n"}}}},"cid":"15"}}"#
            ),
            n(15),
            E::InvalidPresence,
        ),
        (
            format!(
                r#"{{"party_remove":{{"party_id":"{PARTY}","presence":{{"user_id":"","session_id":"{}","username":"n"}}}},"cid":"15"}}"#,
                NakamaSessionId(SessionId::new(1, 1))
            ),
            n(15),
            E::InvalidPresence,
        ),
        (
            format!(r#"{{"party_create":{{"max_size":4,"label":"{{\"k\":\"{}\"}}"}},"cid":"16"}}"#, "x".repeat(2048)),
            n(16),
            E::LabelTooLong { op: NakamaOp::PartyCreate },
        ),
        (
            format!(r#"{{"party_update":{{"party_id":"{PARTY}","label":"{{\"a\":1}}","hidden":true}},"cid":"17"}}"#),
            n(17),
            E::HiddenWithLabel,
        ),
        (
            format!(r#"{{"status_update":{{"status":"{}"}},"cid":"18"}}"#, "s".repeat(2049)),
            n(18),
            E::StatusTooLong { max: 2048 },
        ),
        (
            r#"{"status_update":{"status":7},"cid":"18"}"#.into(),
            n(18),
            E::WrongType { field: field("status_update", "status"), expected: "" },
        ),
        (r#"{"status_follow":{"user_ids":[""]},"cid":"19"}"#.into(), n(19), E::InvalidUserId),
        (r#"{"status_follow":{"usernames":[""]},"cid":"19"}"#.into(), n(19), E::InvalidUsername),
        (
            r#"{"status_follow":{"user_ids":"u1"},"cid":"19"}"#.into(),
            n(19),
            E::WrongType { field: field("status_follow", "user_ids"), expected: "" },
        ),
        (
            r#"{"status_follow":{"user_ids":[1]},"cid":"19"}"#.into(),
            n(19),
            E::WrongType { field: field("status_follow", "user_ids"), expected: "" },
        ),
        (
            format!(r#"{{"status_unfollow":{{"user_ids":[{}"u"]}},"cid":"20"}}"#, r#""u","#.repeat(FOLLOW_IDS_CEILING)),
            n(20),
            E::TooMany {
                field: field("status_unfollow", "user_ids"),
                len: FOLLOW_IDS_CEILING + 1,
                max: FOLLOW_IDS_CEILING,
            },
        ),
        (
            format!(r#"{{"cid":"21","ping":{{"x":{}1{}}}}}"#, "[".repeat(JSON_DEPTH_MAX), "]".repeat(JSON_DEPTH_MAX)),
            CidText::Absent,
            E::TooDeep { max: JSON_DEPTH_MAX },
        ),
        ("[".repeat(100_000), CidText::Absent, E::TooDeep { max: JSON_DEPTH_MAX }),
    ];
    for (frame, cid, expected) in cases {
        let (got_cid, got) = error(&frame);
        let shown = &frame[..frame.len().min(120)];
        assert_eq!(got_cid, cid, "cid of {shown}");
        // Texts from serde and the exact `expected` wording are not part of the contract: compare kinds.
        let same = match (&got, &expected) {
            (E::InvalidJson(_), E::InvalidJson(_)) => true,
            (E::WrongType { field: a, .. }, E::WrongType { field: b, .. }) => a == b,
            _ => got == expected,
        };
        assert!(same, "{shown}: got {got:?}, expected {expected:?}");
        // Every refusal renders as Nakama's error envelope under the cid.
        let failure = DecodeFailure { cid: got_cid.clone(), error: got.clone() };
        let frames = parsed(NakamaEncoder::new().decode_failure(&failure));
        assert_eq!(frames.len(), 1);
        let body = &frames[0]["error"];
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{shown}");
        assert!(matches!(body["code"].as_i64(), Some(1 | 3)), "{shown}: {body}");
        assert_eq!(
            frames[0].get("cid").and_then(Value::as_str),
            (!got_cid.is_absent()).then(|| got_cid.to_string()).as_deref()
        );
    }
}

const FOLLOW_IDS_CEILING: usize = crate::limits::FOLLOW_IDS_PER_REQUEST_CEILING;

#[test]
fn oversized_and_binary_frames_are_refused_before_parsing() {
    let limits = NakamaLimits { frame_bytes_max: 64, ..NakamaLimits::new(&crate::limits::Limits::default()) };
    let frame = format!(r#"{{"cid":"1","status_update":{{"status":"{}"}}}}"#, "x".repeat(64));
    let failure = decode_request(frame.as_bytes(), &limits).expect_err("too large");
    assert_eq!(failure.error, NakamaDecodeError::TooLarge { len: frame.len(), max: 64 });
    assert_eq!(failure.error.code(), ErrorCodeAlias::LimitExceeded);
    let failure = decode_request(b"{\"cid\":\"1\",\"ping\":{\"x\":\"\xff\"}}", &limits).expect_err("not UTF-8");
    assert!(matches!(failure.error, NakamaDecodeError::InvalidJson(_)));
    let frames = parsed(NakamaEncoder::new().decode_failure(&DecodeFailure::binary_frame()));
    assert_eq!(frames[0]["error"]["code"], 3);
    assert!(frames[0].get("cid").is_none());
}

use crate::core::ErrorCode as ErrorCodeAlias;

/// Random edits of recorded frames (bytes flipped, cut, duplicated, spliced) never panic, and
/// every result is either a request or an error that renders.
#[test]
fn mutated_recorded_frames_never_panic() {
    let limits = NakamaLimits::new(&crate::limits::Limits::default());
    let seeds: Vec<Vec<u8>> = recorded(FRAMES)
        .iter()
        .chain(recorded(LABELS).iter())
        .filter(|r| r.dir == "out")
        .map(|r| r.frame.to_string().into_bytes())
        .collect();
    let mut rng = Rng::seeded(0x6e61_6b61_6d61);
    let mut encoder = NakamaEncoder::new();
    let alphabet = b"{}[]\",:\\0123456789-.eE truefalsnul\xff";
    for _ in 0..20_000 {
        let mut frame = seeds[rng.below(seeds.len())].clone();
        for _ in 0..rng.range(1, 4) {
            if frame.is_empty() {
                break;
            }
            let at = rng.below(frame.len());
            match rng.below(4) {
                0 => frame[at] = alphabet[rng.below(alphabet.len())],
                1 => frame.truncate(at),
                2 => {
                    let end = (at + rng.range(1, 16)).min(frame.len());
                    let piece = frame[at..end].to_vec();
                    frame.splice(at..at, piece);
                }
                _ => {
                    frame.remove(at);
                }
            }
        }
        match decode_request(&frame, &limits) {
            Ok(decoded) => {
                let _ = encoder.reply(&decoded.reply_to, &user("A"), &Err(CoreError::PartyNotFound));
            }
            Err(failure) => assert_eq!(encoder.decode_failure(&failure).len(), 1),
        }
    }
}

// ---- encoder rules without a recorded counterpart ----

#[test]
fn huddle_only_events_are_not_sent_and_refused_fire_and_forget_data_is_a_cidless_error() {
    let mut encoder = NakamaEncoder::new();
    assert!(encoder.event(&Event::Welcome { presence: user("A") }).is_empty());
    let refused = Event::PartyDataRefused { party_id: OPEN, error: CoreError::PartyNotMember };
    let frames = parsed(encoder.event(&refused));
    assert_eq!(
        frames,
        vec![serde_json::json!({"error": {"code": 3, "message": "Error sending party data: party member not found"}})]
    );
}

#[test]
fn leaving_a_party_that_is_gone_is_an_ack_as_in_nakama() {
    let mut encoder = NakamaEncoder::new();
    let frames = parsed(encoder.reply(&to(3, NakamaOp::PartyLeave), &user("A"), &Err(CoreError::PartyNotFound)));
    assert_eq!(frames, vec![serde_json::json!({"cid": "3"})]);
    // Any other refusal of another operation is an error with Nakama's prefix.
    let frames = parsed(encoder.reply(&to(4, NakamaOp::PartyJoin), &user("A"), &Err(CoreError::PartyNotFound)));
    assert_eq!(
        frames,
        vec![serde_json::json!({"cid": "4", "error": {"code": 3, "message": "Error joining party: party not found"}})]
    );
}

#[test]
fn defaults_are_left_out_as_protojson_does() {
    let mut encoder = NakamaEncoder::new();
    let data = PartyEvent::Data { party_id: OPEN, sender: user("A"), op_code: 0, data: Bytes::new() };
    let frame = &parsed(encoder.event(&Event::Party(data)))[0]["party_data"];
    assert!(frame.get("op_code").is_none() && frame.get("data").is_none(), "{frame}");
    let update = PartyEvent::Updated {
        party_id: OPEN,
        open: false,
        hidden: false,
        max_size: 4,
        label: String::new(),
        lobby: Default::default(),
        version: 2,
    };
    let frame = &parsed(encoder.event(&Event::Party(update)))[0]["party_update"];
    assert_eq!(frame.as_object().map(|o| o.len()), Some(1), "{frame}");
    let follow = Ok(Reply::Status(StatusReply::Followed { presences: vec![] }));
    assert_eq!(
        parsed(encoder.reply(&to(2, NakamaOp::StatusFollow), &user("A"), &follow)),
        vec![serde_json::json!({"cid": "2", "status": {}})]
    );
    // A status of "" is still sent: it is a wrapper, set to the empty string.
    let event =
        StatusEvent { joins: vec![StatusPresence { presence: user("A"), status: String::new() }], leaves: vec![] };
    let frame = &parsed(encoder.event(&Event::Status(event)))[0];
    assert_eq!(frame["status_presence_event"]["joins"][0]["status"], "");
}

/// Lobby I (SPEC L-1 … L-9) seen from a JSON session: every lobby event is huddle-only and
/// becomes no frame; a session moved out of its party by one party per user hears Nakama's
/// `party_close`, as a kicked one does; the version on party events changes nothing.
#[test]
fn lobby_events_are_huddle_only_and_a_moved_member_hears_party_close() {
    use crate::core::{InvitationEndReason, LobbyEvent};
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let mut encoder = NakamaEncoder::new();
    let party = snapshot(OPEN, true, 4, "", &["A", "B"]);
    for event in [
        LobbyEvent::Snapshot(Box::new(party.clone())),
        LobbyEvent::InvitationRejected { party_id: OPEN, invitee: UserId::new("c") },
        LobbyEvent::InvitationEnded { party_id: OPEN, invitee: UserId::new("c"), reason: InvitationEndReason::Expired },
    ] {
        assert!(encoder.event(&Event::Lobby(event.clone())).is_empty(), "{event:?} has no Nakama form");
    }
    let moved = PartyEvent::Removed { party_id: CLOSED, reason: RemovedReason::Moved, version: 9 };
    assert_like(encoder.event(&Event::Party(moved)), &[received(&file, "B", Some("party_close"), None, 0)], &mut ids);
}
