//! Nakama's realtime JSON over real sockets (SPEC K-1, `docs/nakama-compat.md`).
//!
//! What it proves: a connection whose upgrade URL is the one every Nakama SDK sends
//! (`/ws?lang=en&status=true&token=…`, no `format`) speaks Nakama's JSON in text frames, never a
//! binary one; every party and status flow that was recorded from nakama-js against a real Nakama
//! (`tests/fixtures/nakama/`) produces the same frames, compared field by field (same keys at
//! every level, same values, ids paired one to one between the two runs: ids are random in both);
//! a JSON session and a FlatBuffers session in one party see each other's changes, with each
//! event encoded once per codec in use; every kind of bad input is answered with an `error`
//! envelope carrying the `cid` when it can be read, keeps the connection and changes nothing;
//! driver-level refusals and closes reach JSON sessions as text envelopes and close frames.
//!
//! How: a real server on `127.0.0.1:0` (tests/common), real tokens (minted with the recorded
//! users' ids and names, so user ids compare as they are), a blocking text WebSocket client with
//! deadlines. "Nothing else arrived" is shown with a ping whose pong must be the next frame: the
//! server answers in order, so anything queued before it would come first.

mod common;

use common::*;
use huddle::core::{Event, PartyEvent, PartyId, PartyReply, PartyRequest, Presence, Request};
use huddle::limits::Limits;
use huddle::wire::nakama::{parse_party_id, parse_session_id};
use huddle::wire::ErrorCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io;
use std::net::TcpStream;
use std::time::Instant;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

const FRAMES: &str = include_str!("fixtures/nakama/nakama-party-frames.jsonl");
const LABELS: &str = include_str!("fixtures/nakama/nakama-party-labels-trace.jsonl");

// ---- a Nakama JSON client ----

/// One JSON session: a blocking text WebSocket, as a Nakama SDK opens it.
struct Json {
    ws: WebSocket<TcpStream>,
    who: String,
    syncs: u32,
}

impl Json {
    /// Connects with the URL the Nakama SDKs use: `lang`, `status=true`, no `format`.
    fn connect(server: &TestServer, who: &str, user_id: &str, username: &str) -> Json {
        let token = token_with(user_id, username, unix_now() + 3600, KEY);
        Json::connect_query(server, who, &format!("lang=en&status=true&token={token}"))
    }

    fn connect_query(server: &TestServer, who: &str, query: &str) -> Json {
        let stream = TcpStream::connect(&server.addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let url = format!("ws://{}/ws?{query}", server.addr);
        let (ws, _) = tungstenite::client(url.as_str(), stream).unwrap_or_else(|e| panic!("{who}: upgrade: {e}"));
        Json { ws, who: who.into(), syncs: 0 }
    }

    fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string());
    }

    fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).unwrap_or_else(|e| panic!("{}: send: {e}", self.who));
    }

    fn send_binary(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).unwrap_or_else(|e| panic!("{}: send: {e}", self.who));
    }

    /// The next message: a text frame (parsed), or the close frame. A binary frame fails the
    /// test: nakama-js crashes on one.
    fn next_message(&mut self) -> Result<Value, Option<CloseFrame>> {
        let text = self.next_text()?;
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: frame is not JSON ({e}): {text}", self.who)))
    }

    /// The next text frame as it arrived, or the close frame.
    fn next_text(&mut self) -> Result<String, Option<CloseFrame>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{}: no frame within {WAIT:?}", self.who);
            self.ws.get_mut().set_read_timeout(Some(left)).expect("timeout");
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(text.as_str().to_owned()),
                Ok(Message::Binary(bytes)) => panic!("{}: binary frame on a JSON session: {bytes:?}", self.who),
                Ok(Message::Close(frame)) => return Err(frame),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Err(None),
                Err(e) => panic!("{}: read: {e}", self.who),
            }
        }
    }

    fn next(&mut self) -> Value {
        let who = self.who.clone();
        self.next_message().unwrap_or_else(|close| panic!("{who}: closed ({close:?}) while a frame was expected"))
    }

    /// The next `n` frames.
    fn frames(&mut self, n: usize) -> Vec<Value> {
        (0..n).map(|_| self.next()).collect()
    }

    /// Proves nothing is queued for this session: a ping's pong is the very next frame.
    fn nothing_else(&mut self) {
        self.syncs += 1;
        let cid = format!("sync-{}", self.syncs);
        self.send(json!({"cid": cid, "ping": {}}));
        let frame = self.next();
        assert_eq!(frame, json!({"cid": cid, "pong": {}}), "{}: an unexpected frame was queued", self.who);
    }

    /// Sends a request and returns its frames (the reply and any pushes it makes to this session).
    fn request(&mut self, frame: Value, frames: usize) -> Vec<Value> {
        self.send(frame);
        self.frames(frames)
    }
}

// ---- the recorded Nakama run ----

struct Recorded {
    who: String,
    dir: String,
    frame: Value,
}

fn recorded(file: &str) -> Vec<Recorded> {
    file.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("fixture lines are JSON"))
        .filter(|line| line["raw"].as_str().is_some_and(|raw| !raw.is_empty()))
        .map(|line| Recorded {
            who: line["who"].as_str().unwrap_or_default().to_owned(),
            dir: line["dir"].as_str().unwrap_or_default().to_owned(),
            frame: serde_json::from_str(line["raw"].as_str().unwrap_or_default()).expect("recorded frames are JSON"),
        })
        .collect()
}

/// The `nth` (from 0) frame `who` received whose message key is `key` (`None`: a bare ack) and
/// whose `cid` is `cid`.
fn nakama(file: &[Recorded], who: &str, key: Option<&str>, cid: Option<&str>, nth: usize) -> Value {
    file.iter()
        .filter(|r| r.who == who && r.dir == "in")
        .map(|r| &r.frame)
        .filter(|frame| {
            let object = frame.as_object().expect("an envelope");
            object.keys().find(|k| *k != "cid").map(String::as_str) == key
                && object.get("cid").and_then(Value::as_str) == cid
        })
        .nth(nth)
        .unwrap_or_else(|| panic!("no recorded frame {nth} for {who}: {key:?} cid {cid:?}"))
        .clone()
}

/// The users of the recorded runs: their ids and names go into our tokens, so user ids and
/// usernames compare as they are and only session and party ids need pairing.
fn recorded_user(who: &str) -> (&'static str, &'static str) {
    match who {
        "A" => ("4b0e09a2-69e9-4177-87a3-cba04618f712", "anchor_A_mwq8koa5"),
        "B" => ("77e59556-6108-4945-a416-7a222f3a87e4", "anchor_B_mwq8koa5"),
        "C" => ("79812433-8941-4283-89e0-f9884f0bdd36", "anchor_C_mwq8koa5"),
        "L" => ("091371e0-1b73-4c7d-8026-b506da839ac4", "label_A_mwq8ldgf"),
        other => panic!("no recorded user {other}"),
    }
}

/// Our session and party ids paired with the recorded ones, one to one over a whole run.
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
        let earlier = self.ours_to_theirs.insert(ours.to_owned(), theirs.to_owned());
        assert!(earlier.is_none_or(|e| e == theirs), "{path}: our {ours} stands for two recorded ids");
        let earlier = self.theirs_to_ours.insert(theirs.to_owned(), ours.to_owned());
        assert!(earlier.is_none_or(|e| e == ours), "{path}: recorded {theirs} stands for two of ours");
    }

    /// Same keys at every level, same values, ids paired.
    fn compare(&mut self, ours: &Value, theirs: &Value, path: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                let mut a_keys: Vec<_> = a.keys().collect();
                let mut b_keys: Vec<_> = b.keys().collect();
                a_keys.sort();
                b_keys.sort();
                assert_eq!(a_keys, b_keys, "{path}: keys differ\nours:   {ours}\nNakama: {theirs}");
                for (key, value) in a {
                    self.compare(value, &b[key], &format!("{path}.{key}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "{path}: lengths differ\nours:   {ours}\nNakama: {theirs}");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    self.compare(x, y, &format!("{path}[{i}]"));
                }
            }
            (Value::String(a), Value::String(b)) if path.ends_with("party_id") || path.ends_with("session_id") => {
                self.pair(a, b, path)
            }
            _ => assert_eq!(ours, theirs, "{path}\nours:   {ours}\nNakama: {theirs}"),
        }
    }

    /// Our frames, in our order, against the recorded frames listed in the same order.
    fn like(&mut self, who: &str, ours: &[Value], theirs: &[Value]) {
        assert_eq!(ours.len(), theirs.len(), "{who}: frame count\nours:   {ours:?}\nNakama: {theirs:?}");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            self.compare(a, b, &format!("{who} frame {i}"));
        }
    }

    /// Our text for a recorded id (to put into a request).
    fn ours(&self, theirs: &str) -> String {
        self.theirs_to_ours.get(theirs).unwrap_or_else(|| panic!("recorded id {theirs} not seen yet")).clone()
    }
}

/// A recorded client frame with its recorded ids replaced by ours, as an SDK would send them.
fn with_our_ids(frame: &str, ids: &Ids) -> Value {
    let mut text = frame.to_owned();
    for (theirs, ours) in &ids.theirs_to_ours {
        text = text.replace(theirs.as_str(), ours);
    }
    serde_json::from_str(&text).expect("a recorded client frame")
}

/// The `nth` frame `who` sent whose message key is `key`, its ids swapped for ours.
fn sent(file: &[Recorded], who: &str, key: &str, nth: usize, ids: &Ids) -> Value {
    let frame = file
        .iter()
        .filter(|r| r.who == who && r.dir == "out" && r.frame.get(key).is_some())
        .nth(nth)
        .unwrap_or_else(|| panic!("no recorded {key} {nth} from {who}"));
    with_our_ids(&frame.frame.to_string(), ids)
}

// ---- the recorded flows, frame by frame ----

#[test]
fn the_recorded_party_and_status_run_gives_nakamas_frames() {
    let server = TestServer::start();
    let file = recorded(FRAMES);
    let mut ids = Ids::default();
    let session = |who: &str, ids: &mut Ids| {
        let (user_id, username) = recorded_user(who);
        let mut client = Json::connect(&server, who, user_id, username);
        // status=true: the session's own status presence comes first (C-3), as from Nakama; no
        // welcome, nothing binary.
        let own = client.next();
        ids.like(who, &[own], &[nakama(&file, who, Some("status_presence_event"), None, 0)]);
        let pong = client.request(json!({"ping": {}, "cid": "1"}), 1);
        ids.like(who, &pong, &[nakama(&file, who, Some("pong"), Some("1"), 0)]);
        client
    };
    let mut a = session("A", &mut ids);
    let mut b = session("B", &mut ids);
    let mut c = session("C", &mut ids);
    let closed_id = "07787d76-008c-4342-a3f3-936140c10fab.nakama-anchor";
    let open_id = "c5dbc9f7-3216-4669-a1ba-43ce450108e6.nakama-anchor";

    // A follows B: the reply lists B with its (empty) status.
    let followed = a.request(sent(&file, "A", "status_follow", 0, &ids), 1);
    ids.like("A", &followed, &[nakama(&file, "A", Some("status"), Some("2"), 0)]);

    // Create, closed then open: the reply, then Nakama's own `party` push and the creator's join.
    // (Nakama's order is a race; huddle's reply always comes first.)
    for (nth, cid) in [(0, "3"), (1, "4")] {
        let created = a.request(sent(&file, "A", "party_create", nth, &ids), 3);
        let expected = [
            nakama(&file, "A", Some("party"), Some(cid), 0),
            nakama(&file, "A", Some("party"), None, nth),
            nakama(&file, "A", Some("party_presence_event"), None, nth),
        ];
        ids.like("A", &created, &expected);
    }

    // B joins the open party: a bare ack, then `party` naming B as `self`, then B's own join;
    // A sees B join.
    let joined = b.request(sent(&file, "B", "party_join", 0, &ids), 3);
    let expected = [
        nakama(&file, "B", None, Some("2"), 0),
        nakama(&file, "B", Some("party"), None, 0),
        nakama(&file, "B", Some("party_presence_event"), None, 0),
    ];
    ids.like("B", &joined, &expected);
    ids.like("A", &[a.next()], &[nakama(&file, "A", Some("party_presence_event"), None, 2)]);

    // Party data both ways, sent as the SDK sends it (no cid): no frame for the sender (Nakama
    // sends `{}`, which no SDK reads), the data for the other member.
    a.send(sent(&file, "A", "party_data_send", 0, &ids));
    ids.like("B", &[b.next()], &[nakama(&file, "B", Some("party_data"), None, 0)]);
    b.send(sent(&file, "B", "party_data_send", 0, &ids));
    ids.like("A", &[a.next()], &[nakama(&file, "A", Some("party_data"), None, 0)]);
    a.nothing_else();
    b.nothing_else();

    // B asks to join the closed party: an ack; the leader gets the request.
    let asked = b.request(sent(&file, "B", "party_join", 1, &ids), 1);
    ids.like("B", &asked, &[nakama(&file, "B", None, Some("3"), 0)]);
    ids.like("A", &[a.next()], &[nakama(&file, "A", Some("party_join_request"), None, 0)]);
    let listed = a.request(sent(&file, "A", "party_join_request_list", 0, &ids), 1);
    ids.like("A", &listed, &[nakama(&file, "A", Some("party_join_request"), Some("5"), 0)]);

    // A accepts: an ack and B's join for A; `party` and B's own join for B.
    let accepted = a.request(sent(&file, "A", "party_accept", 0, &ids), 2);
    let expected = [nakama(&file, "A", None, Some("6"), 0), nakama(&file, "A", Some("party_presence_event"), None, 3)];
    ids.like("A", &accepted, &expected);
    let expected =
        [nakama(&file, "B", Some("party"), None, 1), nakama(&file, "B", Some("party_presence_event"), None, 1)];
    ids.like("B", &b.frames(2), &expected);

    // A promotes B: the ack (first in huddle; Nakama raced it behind the event), then
    // `party_leader` to both.
    let promoted = a.request(sent(&file, "A", "party_promote", 0, &ids), 2);
    let expected = [nakama(&file, "A", None, Some("7"), 0), nakama(&file, "A", Some("party_leader"), None, 0)];
    ids.like("A", &promoted, &expected);
    ids.like("B", &[b.next()], &[nakama(&file, "B", Some("party_leader"), None, 0)]);

    // C asks to join: the request reaches the new leader B, not A. B rejects it: an ack, and
    // nothing for C (as in Nakama).
    let asked = c.request(sent(&file, "C", "party_join", 0, &ids), 1);
    ids.like("C", &asked, &[nakama(&file, "C", None, Some("2"), 0)]);
    ids.like("B", &[b.next()], &[nakama(&file, "B", Some("party_join_request"), None, 0)]);
    let rejected = b.request(sent(&file, "B", "party_remove", 0, &ids), 1);
    ids.like("B", &rejected, &[nakama(&file, "B", None, Some("4"), 0)]);
    c.nothing_else();
    a.nothing_else();

    // A (leader of the open party) leaves: B becomes leader and sees A leave.
    let left = a.request(sent(&file, "A", "party_leave", 0, &ids), 1);
    ids.like("A", &left, &[nakama(&file, "A", None, Some("8"), 0)]);
    let expected =
        [nakama(&file, "B", Some("party_leader"), None, 1), nakama(&file, "B", Some("party_presence_event"), None, 2)];
    ids.like("B", &b.frames(2), &expected);
    let left = a.request(sent(&file, "A", "party_leave", 1, &ids), 1);
    ids.like("A", &left, &[nakama(&file, "A", None, Some("9"), 0)]);
    ids.like("B", &[b.next()], &[nakama(&file, "B", Some("party_presence_event"), None, 3)]);

    // B's status: an ack, then the change to its follower A and to B itself (status=true).
    let updated = b.request(sent(&file, "B", "status_update", 0, &ids), 2);
    let expected = [nakama(&file, "B", None, Some("5"), 0), nakama(&file, "B", Some("status_presence_event"), None, 1)];
    ids.like("B", &updated, &expected);
    ids.like("A", &[a.next()], &[nakama(&file, "A", Some("status_presence_event"), None, 1)]);
    // No status at all: appear offline, a leave only.
    let cleared = b.request(sent(&file, "B", "status_update", 1, &ids), 2);
    let expected = [nakama(&file, "B", None, Some("6"), 0), nakama(&file, "B", Some("status_presence_event"), None, 2)];
    ids.like("B", &cleared, &expected);
    ids.like("A", &[a.next()], &[nakama(&file, "A", Some("status_presence_event"), None, 2)]);

    // A, no longer in the party, cannot promote: Nakama's code and text, word for word.
    let refused = a.request(sent(&file, "A", "party_promote", 1, &ids), 1);
    ids.like("A", &refused, &[nakama(&file, "A", Some("error"), Some("10"), 0)]);

    // B closes the closed party: an ack and `party_close`.
    let closed = b.request(sent(&file, "B", "party_close", 0, &ids), 2);
    let expected = [nakama(&file, "B", None, Some("7"), 0), nakama(&file, "B", Some("party_close"), None, 0)];
    ids.like("B", &closed, &expected);

    for client in [&mut a, &mut b, &mut c] {
        client.nothing_else();
    }
    // Both recorded parties were seen, each paired with one of ours.
    assert!(parse_party_id(&ids.ours(closed_id)).is_some() && parse_party_id(&ids.ours(open_id)).is_some());
}

#[test]
fn the_recorded_labelled_parties_and_update_give_nakamas_frames() {
    let server = TestServer::start();
    let file = recorded(LABELS);
    let mut ids = Ids::default();
    let (user_id, username) = recorded_user("L");
    let mut l = Json::connect(&server, "A", user_id, username);
    ids.like("A", &[l.next()], &[nakama(&file, "A", Some("status_presence_event"), None, 0)]);
    let pong = l.request(sent(&file, "A", "ping", 0, &ids), 1);
    ids.like("A", &pong, &[nakama(&file, "A", Some("pong"), Some("1"), 0)]);
    // Labelled open, labelled closed, hidden: reply, `party`, own join.
    for (nth, cid) in [(0, "2"), (1, "3"), (2, "4")] {
        let created = l.request(sent(&file, "A", "party_create", nth, &ids), 3);
        let mut reply = nakama(&file, "A", Some("party"), Some(cid), 0);
        let mut push = nakama(&file, "A", Some("party"), None, nth);
        let joined = nakama(&file, "A", Some("party_presence_event"), None, nth);
        // Nakama's push of a created party leaves out `label` and `hidden`; huddle's carries
        // them, the same `party` as the reply (docs/nakama-compat.md, "Where huddle differs").
        push["party"] = reply["party"].clone();
        ids.like("A", &created, &[reply.take(), push, joined]);
    }
    // Nakama's update is a full replace: the ack (first in huddle), then the event to members.
    let updated = l.request(sent(&file, "A", "party_update", 0, &ids), 2);
    let expected = [nakama(&file, "A", None, Some("5"), 0), nakama(&file, "A", Some("party_update"), None, 0)];
    ids.like("A", &updated, &expected);
    l.nothing_else();
}

// ---- flows the recordings do not have ----

/// Connects a JSON session for `user_id` (username as tests/common names it) and takes its own
/// status presence, the first frame.
fn json_session(server: &TestServer, user_id: &str) -> (Json, Value) {
    let mut client = Json::connect(server, user_id, user_id, &username_of(user_id));
    let own = client.next();
    let mut me = own["status_presence_event"]["joins"][0].clone();
    assert_eq!(me["user_id"], user_id, "the first frame is the session's own status presence: {own}");
    assert_eq!(me["status"], "", "{own}");
    // A presence as party messages carry it: no status.
    me.as_object_mut().expect("a presence object").remove("status");
    (client, me)
}

fn create(client: &mut Json, open: bool) -> String {
    let frames = client.request(json!({"cid": "c", "party_create": {"open": open, "max_size": 4}}), 3);
    frames[0]["party"]["party_id"].as_str().expect("the create reply names the party").to_owned()
}

fn join_open(client: &mut Json, party_id: &str) {
    let frames = client.request(json!({"cid": "j", "party_join": {"party_id": party_id}}), 3);
    assert_eq!(frames[0], json!({"cid": "j"}));
}

#[test]
fn a_kicked_member_hears_party_close_and_the_others_its_leave() {
    let server = TestServer::start();
    let (mut leader, _) = json_session(&server, "lead");
    let (mut kicked, kicked_me) = json_session(&server, "kick");
    let (mut stays, _) = json_session(&server, "stay");
    let party_id = create(&mut leader, true);
    join_open(&mut kicked, &party_id);
    leader.next();
    join_open(&mut stays, &party_id);
    leader.next();
    kicked.next();

    let kick = json!({"cid": "9", "party_remove": {"party_id": party_id, "presence": kicked_me}});
    assert_eq!(leader.request(kick, 1), vec![json!({"cid": "9"})]);
    assert_eq!(kicked.next(), json!({"party_close": {"party_id": party_id}}));
    let leave = json!({"party_presence_event": {"party_id": party_id, "leaves": [kicked_me]}});
    assert_eq!(leader.next(), leave);
    assert_eq!(stays.next(), leave);
    // The kicked session is out: its data is refused, under Nakama's text.
    let data = json!({"cid": "10", "party_data_send": {"party_id": party_id, "op_code": "1", "data": "AA=="}});
    assert_eq!(
        kicked.request(data, 1),
        vec![json!({"cid": "10", "error": {"code": 3, "message": "Error sending party data: party member not found"}})]
    );
    for client in [&mut leader, &mut kicked, &mut stays] {
        client.nothing_else();
    }
}

#[test]
fn closing_a_party_tells_every_member_and_pending_requester() {
    let server = TestServer::start();
    let (mut leader, _) = json_session(&server, "lead");
    let (mut member, _) = json_session(&server, "memb");
    let (mut asker, _) = json_session(&server, "askr");
    let party_id = create(&mut leader, true);
    join_open(&mut member, &party_id);
    leader.next();
    leader.request(json!({"cid": "u", "party_update": {"party_id": party_id}}), 1);
    let closed_update = json!({"party_update": {"party_id": party_id}});
    assert_eq!(leader.next(), closed_update, "a full replace: open becomes false");
    assert_eq!(member.next(), closed_update);
    assert_eq!(asker.request(json!({"cid": "a", "party_join": {"party_id": party_id}}), 1), vec![json!({"cid": "a"})]);
    assert!(leader.next().get("party_join_request").is_some());

    assert_eq!(
        leader.request(json!({"cid": "x", "party_close": {"party_id": party_id}}), 1),
        vec![json!({"cid": "x"})]
    );
    let close = json!({"party_close": {"party_id": party_id}});
    for client in [&mut leader, &mut member, &mut asker] {
        assert_eq!(client.next(), close, "{}", client.who);
        client.nothing_else();
    }
}

#[test]
fn status_follow_and_unfollow_carry_live_changes_until_unfollowed() {
    let server = TestServer::start();
    let (mut watcher, _) = json_session(&server, "watch");
    let (mut watched, watched_me) = json_session(&server, "seen");
    let follow = json!({"cid": "f", "status_follow": {"user_ids": ["seen"], "usernames": ["Nobody"]}});
    let mut present = watched_me.clone();
    present["status"] = json!("");
    assert_eq!(watcher.request(follow, 1), vec![json!({"cid": "f", "status": {"presences": [present]}})]);

    assert_eq!(watched.request(json!({"cid": "s", "status_update": {"status": "racing"}}), 2)[0], json!({"cid": "s"}));
    let mut now = watched_me.clone();
    now["status"] = json!("racing");
    assert_eq!(watcher.next(), json!({"status_presence_event": {"joins": [now], "leaves": [present]}}));

    assert_eq!(
        watcher.request(json!({"cid": "u", "status_unfollow": {"user_ids": ["seen"]}}), 1),
        vec![json!({"cid": "u"})]
    );
    watched.request(json!({"cid": "t", "status_update": {"status": "idle"}}), 2);
    watcher.nothing_else();
}

/// SPEC S-1: a status is display text, for JSON sessions too (the same check in the core). The
/// refusal reads like Nakama's own status checks; the old status stays and nobody hears anything.
#[test]
fn a_status_with_a_control_character_is_refused_in_nakamas_words() {
    let server = TestServer::start();
    let (mut watcher, _) = json_session(&server, "watch");
    let (mut watched, watched_me) = json_session(&server, "seen");
    let follow = json!({"cid": "f", "status_follow": {"user_ids": ["seen"]}});
    watcher.request(follow, 1);
    let pretty = "{\n\t\"match\": \"m-1\"\r\n}";
    assert_eq!(watched.request(json!({"cid": "s", "status_update": {"status": pretty}}), 2)[0], json!({"cid": "s"}));
    let mut now = watched_me.clone();
    now["status"] = json!(pretty);
    assert_eq!(watcher.next()["status_presence_event"]["joins"], json!([now]));

    let refused = json!({"cid": "r", "status_update": {"status": "ok \u{1}"}});
    let message = "Status must not contain control characters: U+0001 at byte 3";
    assert_eq!(watched.request(refused, 1), vec![json!({"cid": "r", "error": {"code": 3, "message": message}})]);
    watcher.nothing_else();
    watched.nothing_else();
    let again = json!({"cid": "g", "status_follow": {"user_ids": ["seen"]}});
    assert_eq!(watcher.request(again, 1)[0]["status"]["presences"], json!([now]), "the old status stays");
}

/// SPEC S-2: a follow reply is bounded by construction in every codec, Nakama's JSON included,
/// where text is escaped. Several users share one username, each with `sessions_per_user_max`
/// sessions whose statuses (`status_bytes_max`, the defaults) are all bytes JSON escapes to two
/// (`"`, `\`, tab, line feed), with user ids and the username full of `"`; the output limit is
/// lowered to the largest follow reply `validate` computes for these limits, the tightest it
/// accepts. A JSON follower of that username, whose `cid` escapes to six bytes a character, gets
/// the whole reply and stays connected; the reply is larger than a bound computed for
/// FlatBuffers alone, which would have cut it off.
#[test]
fn a_worst_case_follow_reply_in_json_fits_the_output_limit_validate_allows() {
    use huddle::limits::FollowReplyCodec;
    let users = 4;
    let chosen = Limits { follow_ids_per_request_max: users, ..Limits::default() };
    let bound = chosen.follow_reply_bytes_max();
    let limits = Limits {
        outbound_bytes_max: bound,
        outbound_soft_bytes_max: bound.min(chosen.outbound_soft_bytes_max),
        ..chosen
    };
    assert_eq!(limits.validate(), Ok(()));
    let server = TestServer::with_limits(limits.clone());
    let name = "\"".repeat(128);
    let status: String = ["\"", "\\", "\t", "\n"].iter().cycle().take(limits.status_bytes_max).copied().collect();
    let mut followed = Vec::new();
    for user in 0..users {
        let user_id = format!("{user}{}", "\"".repeat(127));
        let token = token_with(&user_id, &name, unix_now() + 3600, KEY);
        for _ in 0..limits.sessions_per_user_max {
            let mut client = server.try_connect(&token).unwrap_or_else(|e| panic!("{user_id}: {e:?}"));
            client.status_update(Some(&status)).unwrap().unwrap_or_else(|e| panic!("status refused: {e:?}"));
            followed.push(client);
        }
    }

    let mut follower = Json::connect_query(&server, "follower", &format!("format=json&token={}", token("follower")));
    let cid = "\u{1}".repeat(64);
    follower.send(json!({"cid": cid, "status_follow": {"usernames": [name]}}));
    let text = follower.next_text().unwrap_or_else(|close| panic!("the follower was cut off: {close:?}"));
    let reply: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(reply["cid"], json!(cid));
    let presences = reply["status"]["presences"].as_array().expect("presences");
    assert_eq!(presences.len(), followed.len(), "one entry per visible session");
    for (presence, client) in presences.iter().zip(&followed) {
        assert_eq!(presence["user_id"], client.presence().user_id.as_str());
        assert_eq!(presence["username"], json!(name));
        assert_eq!(presence["status"], json!(status));
    }
    // The figure the README quotes; the frame header is at most 10 bytes.
    let framed = text.len() + 10;
    eprintln!(
        "{users} users × {} sessions: JSON follow reply {framed} bytes framed, bound and output limit {bound}",
        limits.sessions_per_user_max
    );
    assert!(framed <= bound, "{framed} > {bound}");
    assert!(framed > limits.follow_reply_bytes_max_in(FollowReplyCodec::FlatBuffers), "JSON needs its own bound");
    follower.nothing_else();
}

// ---- one core, two codecs ----

/// The FlatBuffers client's view of a party id that a JSON session printed.
fn party(text: &str) -> PartyId {
    parse_party_id(text).expect("a party id huddle printed parses back")
}

#[test]
fn json_and_flatbuffers_sessions_share_a_party_and_each_event_is_encoded_once_per_codec() {
    let server = TestServer::start();
    let (mut j1, j1_me) = json_session(&server, "json1");
    let (mut j2, _) = json_session(&server, "json2");
    let mut f1 = server.connect("flat1");
    let mut f2 = server.connect("flat2");
    let party_text = create(&mut j1, true);
    let party_id = party(&party_text);
    join_open(&mut j2, &party_text);
    j1.next();
    // FlatBuffers sessions join with the id the JSON session printed (huddle's 128 bits).
    let joined = f1.party_join(party_id).expect("io").expect("f1 joins");
    let PartyReply::Info(snapshot) = joined else { panic!("joined an open party: {joined:?}") };
    assert_eq!(snapshot.members.len(), 3, "the FlatBuffers session sees both JSON members");
    assert_eq!(snapshot.leader.user_id.as_str(), "json1");
    f2.party_join(party_id).expect("io").expect("f2 joins");
    // The JSON members see both FlatBuffers joins, with the FlatBuffers sessions' ids in Nakama's form.
    for client in [&mut j1, &mut j2] {
        for user in ["flat1", "flat2"] {
            let frame = client.next();
            let joins = &frame["party_presence_event"]["joins"];
            assert_eq!(joins[0]["user_id"], user, "{frame}");
            assert!(parse_session_id(joins[0]["session_id"].as_str().unwrap()).is_some());
        }
    }
    f1.wait_event(
        WAIT,
        |e| matches!(e, Event::Party(PartyEvent::Presence { joins, .. }) if joins[0].user_id.as_str() == "flat2"),
    )
    .expect("f1 sees f2 join");

    // FlatBuffers data to the party's three other members: one encoding per codec in use (two).
    let before = server.stats().events_encoded_total;
    f1.party_data(party_id, 7, b"from flatbuffers").expect("io").expect("sent");
    let expected = json!({"party_data": {
        "party_id": party_text,
        "presence": {"user_id": "flat1", "session_id": nakama_session(f1.presence()), "username": "Flat1"},
        "op_code": "7",
        "data": "ZnJvbSBmbGF0YnVmZmVycw==",
    }});
    assert_eq!(j1.next(), expected);
    assert_eq!(j2.next(), expected);
    let data = f2.wait_event(WAIT, |e| matches!(e, Event::Party(PartyEvent::Data { .. }))).expect("f2 gets the data");
    let Event::Party(PartyEvent::Data { sender, op_code: 7, data, .. }) = data else { panic!("{data:?}") };
    assert_eq!((sender.user_id.as_str(), &data[..]), ("flat1", &b"from flatbuffers"[..]));
    let stats = server.wait_stats("both encodings published", |s| s.events_encoded_total >= before + 2);
    assert_eq!(stats.events_encoded_total, before + 2, "one encoding per codec, not per recipient");

    // JSON data the other way: the FlatBuffers members get it, the other JSON member too.
    let before = server.stats().events_encoded_total;
    j1.send(json!({"party_data_send": {"party_id": party_text, "op_code": "-3", "data": "AQID/w=="}}));
    for client in [&mut f1, &mut f2] {
        let event = client
            .wait_event(WAIT, |e| matches!(e, Event::Party(PartyEvent::Data { .. })))
            .expect("FlatBuffers members get JSON data");
        let Event::Party(PartyEvent::Data { sender, op_code: -3, data, .. }) = event else { panic!("{event:?}") };
        assert_eq!((sender.user_id.as_str(), &data[..]), ("json1", &[1u8, 2, 3, 255][..]));
    }
    assert_eq!(j2.next()["party_data"]["data"], "AQID/w==");
    let stats = server.wait_stats("both encodings published", |s| s.events_encoded_total >= before + 2);
    assert_eq!(stats.events_encoded_total, before + 2);

    // The JSON leader promotes the FlatBuffers member by the presence it was shown.
    let f1_presence = json!({"user_id": "flat1", "session_id": nakama_session(f1.presence()), "username": "Flat1"});
    let promote = json!({"cid": "p", "party_promote": {"party_id": party_text, "presence": f1_presence}});
    assert_eq!(j1.request(promote, 2)[0], json!({"cid": "p"}));
    assert_eq!(j2.next(), json!({"party_leader": {"party_id": party_text, "presence": f1_presence}}));
    f2.wait_event(
        WAIT,
        |e| matches!(e, Event::Party(PartyEvent::Leader { leader, .. }) if leader.user_id.as_str() == "flat1"),
    )
    .expect("f2 sees the new leader");

    // The FlatBuffers leader kicks the first JSON member (who hears `party_close`) and closes.
    f1.party_request(PartyRequest::Remove { party_id, presence: presence_of(&j1_me) }).expect("io").expect("kick");
    assert_eq!(j1.next(), json!({"party_close": {"party_id": party_text}}));
    assert_eq!(j2.next()["party_presence_event"]["leaves"][0]["user_id"], "json1");
    f1.party_close(party_id).expect("io").expect("close");
    assert_eq!(j2.next(), json!({"party_close": {"party_id": party_text}}));
    for client in [&mut j1, &mut j2] {
        client.nothing_else();
    }
}

/// A session id as a JSON session sees it.
fn nakama_session(presence: &Presence) -> String {
    huddle::wire::nakama::NakamaSessionId(presence.session_id).to_string()
}

/// A presence a JSON session was shown, as the core knows it.
fn presence_of(json: &Value) -> Presence {
    Presence {
        user_id: huddle::core::UserId::new(json["user_id"].as_str().unwrap()),
        session_id: parse_session_id(json["session_id"].as_str().unwrap()).expect("huddle's session id"),
        username: huddle::core::Username::new(json["username"].as_str().unwrap()),
    }
}

// ---- bad input ----

#[test]
fn bad_input_gets_an_error_envelope_with_its_cid_keeps_the_connection_and_changes_nothing() {
    let server = TestServer::start();
    let (mut client, _) = json_session(&server, "bad");
    let (mut member, _) = json_session(&server, "good");
    let party_text = create(&mut member, true);
    join_open(&mut client, &party_text);
    member.next();
    // The create and the join, counted (the counters are published once per loop turn).
    let setup_requests = 2;
    server.wait_stats("the setup counted", |s| s.requests_total == setup_requests);

    let p = &party_text;
    let cases: Vec<(String, Option<&str>, i64, String)> = vec![
        // Invalid JSON: the cid is read when it comes before the break, not after.
        (r#"{"cid":"1","party_create":{"open":tru}}"#.into(), Some("1"), 3, "frame is not valid JSON".into()),
        (r#"{"party_create":{"open":true,"#.into(), None, 3, "frame is not valid JSON".into()),
        ("not json".into(), None, 3, "frame is not valid JSON".into()),
        ("[1,2]".into(), None, 3, "frame is not a JSON object".into()),
        // Unknown messages: Nakama's code 1 and texts.
        (r#"{"cid":"2","party_frobnicate":{}}"#.into(), Some("2"), 1, "Unrecognized message.".into()),
        (r#"{"cid":"3"}"#.into(), Some("3"), 1, "Missing message.".into()),
        (r#"{"cid":"4","match_create":{}}"#.into(), Some("4"), 1, "Requested resource was not found.".into()),
        (r#"{"cid":"5","party":{}}"#.into(), Some("5"), 1, "Unrecognized message.".into()),
        // Wrong types, named by field.
        (
            r#"{"cid":"6","party_create":{"open":"yes","max_size":4}}"#.into(),
            Some("6"),
            3,
            "party_create.open must be a boolean".into(),
        ),
        (
            format!(r#"{{"cid":"7","party_data_send":{{"party_id":"{p}","op_code":true}}}}"#),
            Some("7"),
            3,
            "party_data_send.op_code must be".into(),
        ),
        (
            r#"{"cid":"8","party_join":{"party_id":42}}"#.into(),
            Some("8"),
            3,
            "party_join.party_id must be a string".into(),
        ),
        (r#"{"cid":9,"ping":{}}"#.into(), None, 3, "cid must be a string".into()),
        // Huge numbers.
        (
            r#"{"cid":"10","party_create":{"open":true,"max_size":1e400}}"#.into(),
            Some("10"),
            3,
            "party_create.max_size is not an integer in the field's range".into(),
        ),
        (
            r#"{"cid":"11","party_create":{"open":true,"max_size":99999999999999999999999}}"#.into(),
            Some("11"),
            3,
            "party_create.max_size is not an integer in the field's range".into(),
        ),
        (
            format!(r#"{{"cid":"12","party_data_send":{{"party_id":"{p}","op_code":"99999999999999999999"}}}}"#),
            Some("12"),
            3,
            "party_data_send.op_code is not an integer in the field's range".into(),
        ),
        (
            r#"{"cid":"13","party_create":{"open":true,"max_size":257}}"#.into(),
            Some("13"),
            3,
            "Invalid party max size, must be 1-256".into(),
        ),
        // Deep nesting: refused before parsing, so without the cid.
        (
            format!(r#"{{"cid":"14","party_create":{{"x":{}1{}}}}}"#, "[".repeat(64), "]".repeat(64)),
            None,
            3,
            "objects and arrays nest more than 8 levels deep".into(),
        ),
        // Invalid base64.
        (
            format!(r#"{{"cid":"15","party_data_send":{{"party_id":"{p}","op_code":"1","data":"!!!"}}}}"#),
            Some("15"),
            3,
            "party_data_send.data is not valid base64".into(),
        ),
        (
            format!(r#"{{"party_data_send":{{"party_id":"{p}","data":"A"}}}}"#),
            None,
            3,
            "party_data_send.data is not valid base64".into(),
        ),
        // Nakama's validation texts.
        (r#"{"cid":"16","party_join":{"party_id":"nope"}}"#.into(), Some("16"), 3, "Invalid party ID".into()),
        (
            format!(r#"{{"cid":"17","party_promote":{{"party_id":"{p}","presence":{{"user_id":"good"}}}}}}"#),
            Some("17"),
            3,
            "Invalid presence".into(),
        ),
        (
            r#"{"cid":"18","party_create":{"open":true,"max_size":2},"ping":{}}"#.into(),
            Some("18"),
            3,
            "envelope carries more than one message".into(),
        ),
    ];
    for (frame, cid, code, text) in &cases {
        client.send_text(frame);
        let reply = client.next();
        let error = &reply["error"];
        assert_eq!(reply.get("cid").and_then(Value::as_str), *cid, "{frame} → {reply}");
        assert_eq!(error["code"].as_i64().unwrap_or(0), *code, "{frame} → {reply}");
        assert!(error["message"].as_str().is_some_and(|m| m.starts_with(text.as_str())), "{frame} → {reply}");
        assert_eq!(reply.as_object().unwrap().len(), cid.map_or(1, |_| 2), "only cid and error: {reply}");
    }
    // A binary frame on a JSON connection: Nakama's error envelope, in text.
    client.send_binary(b"\x00\x01binary");
    let reply = client.next();
    assert_eq!(reply["error"]["code"], 3, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().starts_with("binary frames are not supported"), "{reply}");

    // The connection is open and nothing reached the core or the other member.
    client.nothing_else();
    member.nothing_else();
    let refused = cases.len() as u64 + 1;
    let after = server.wait_stats("the frames counted", |s| s.decode_errors_total >= refused && s.requests_total >= 4);
    assert_eq!(after.decode_errors_total, refused);
    assert_eq!(after.requests_total, setup_requests + 2, "only the two syncing pings reached the core");
    // The party is as it was: a valid send still reaches the member.
    client.send(json!({"party_data_send": {"party_id": party_text, "op_code": "1", "data": "AA=="}}));
    assert_eq!(member.next()["party_data"]["data"], "AA==");
}

#[test]
fn text_frames_on_a_flatbuffers_connection_still_get_104() {
    let server = TestServer::start();
    let mut client = server.connect("flat");
    client.send_raw(Message::text(r#"{"cid":"1","ping":{}}"#)).expect("send");
    let error = client.wait_error_event(WAIT).expect("an error event");
    assert_eq!(error.code, ErrorCode::TextFrameUnsupported);
    let reply = client.request(&Request::Ping).expect("io");
    assert!(reply.is_ok(), "the connection stays open");
}

#[test]
fn the_query_picks_the_codec_format_json_and_not_lang_with_another_format() {
    let server = TestServer::start();
    let token = token("fmt");
    // `format=json` without `lang`: JSON (no status requested, so a ping is the first exchange).
    let mut json = Json::connect_query(&server, "fmt", &format!("format=json&token={token}"));
    json.nothing_else();
    // `lang` with another format: huddle's own protocol (its first frame is the binary welcome).
    let url = format!("ws://{}/ws?lang=en&format=flatbuffers&token={token}", server.addr);
    let flat = huddle::client::Client::connect_url(&url).expect("a FlatBuffers session");
    assert_eq!(flat.presence().user_id.as_str(), "fmt");
}

// ---- driver-level refusals and closes ----

#[test]
fn rate_limit_refusals_are_json_error_envelopes_under_the_frames_cid() {
    let limits = Limits { requests_per_second_max: 1, requests_burst_max: 2, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let token = token("fast");
    let mut client = Json::connect_query(&server, "fast", &format!("lang=en&token={token}"));
    for i in 0..4 {
        client.send(json!({"cid": format!("r{i}"), "ping": {}}));
    }
    let mut refused = 0;
    for i in 0..4 {
        let frame = client.next();
        assert_eq!(frame["cid"], format!("r{i}"), "each frame answered in order under its cid: {frame}");
        if frame.get("error").is_some() {
            assert_eq!(frame["error"]["code"], 3, "{frame}");
            refused += 1;
        } else {
            assert_eq!(frame["pong"], json!({}), "{frame}");
        }
    }
    assert!(refused >= 1, "a burst of 4 over a budget of 2 is refused in part");
}

#[test]
fn shutdown_closes_json_sessions_with_a_close_frame_and_nothing_binary() {
    let server = TestServer::start();
    let (mut client, _) = json_session(&server, "bye");
    client.nothing_else();
    server.handle.shutdown();
    let close = client.next_message().expect_err("a close frame, not a message");
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "server shutting down");
}

#[test]
fn fire_and_forget_data_refused_is_a_cidless_error() {
    let server = TestServer::start();
    let (mut client, _) = json_session(&server, "lone");
    let party_text = create(&mut client, true);
    client.request(json!({"cid": "l", "party_leave": {"party_id": party_text}}), 1);
    client.send(json!({"party_data_send": {"party_id": party_text, "op_code": "1", "data": "AA=="}}));
    let refused = client.next();
    assert!(refused.get("cid").is_none(), "{refused}");
    assert_eq!(refused["error"]["code"], 3, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().starts_with("Error sending party data: "), "{refused}");
}
