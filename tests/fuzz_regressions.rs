//! Runs every committed fuzz input (seed corpora in `fuzz/corpus/<target>/` and crash
//! reproductions in `fuzz/regressions/<target>/`) through the same entry points the cargo-fuzz
//! targets call, so a crash once found stays fixed under plain `cargo test`, with no fuzzer
//! installed. The seeds themselves are built here (for `nakama_json`, from the recorded Nakama
//! frames in `tests/fixtures/nakama/` too); `HUDDLE_WRITE_FUZZ_SEEDS=1 cargo test --test
//! fuzz_regressions` rewrites `fuzz/corpus/` from them.

use bytes::Bytes;
use huddle::core::{Cid, PartyId, PartyRequest, Presence, Request, SessionId, StatusRequest, UserId, Username};
use huddle::fuzzing;
use huddle::wire::nakama::{request_frame, CidText};
use huddle::wire::{fb, Encoder};
use std::path::Path;

/// A masked client frame (RFC 6455 §5.3) with a fixed mask, as a browser would send it.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// One request of every kind, so the fuzzers start from every message type.
fn every_request() -> Vec<(&'static str, Request)> {
    let party_id = PartyId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let presence =
        Presence { user_id: UserId::new("u1"), session_id: SessionId::new(3, 1), username: Username::new("U1") };
    let party = Request::Party;
    vec![
        ("ping", Request::Ping),
        (
            "party_create",
            party(PartyRequest::Create {
                open: true,
                max_size: 4,
                label: r#"{"mode":"duo"}"#.into(),
                hidden: false,
                lobby: Default::default(),
            }),
        ),
        ("party_join", party(PartyRequest::Join { party_id })),
        ("party_requests", party(PartyRequest::JoinRequests { party_id })),
        ("party_accept", party(PartyRequest::Accept { party_id, presence: presence.clone() })),
        ("party_remove", party(PartyRequest::Remove { party_id, presence: presence.clone() })),
        ("party_leave", party(PartyRequest::Leave { party_id })),
        ("party_promote", party(PartyRequest::Promote { party_id, presence })),
        ("party_close", party(PartyRequest::Close { party_id })),
        ("party_data", party(PartyRequest::Data { party_id, op_code: -7, data: Bytes::from_static(b"state") })),
        (
            "party_update",
            party(PartyRequest::Update {
                party_id,
                open: Some(false),
                hidden: None,
                label: Some(String::new()),
                lobby: Default::default(),
            }),
        ),
        ("party_get", party(PartyRequest::Get { party_id })),
        ("party_mine", party(PartyRequest::MyParties)),
        (
            "party_search",
            party(PartyRequest::Search {
                query: r#"+label.mode:duo -open:false label.skill:>=10^2 "a b" x*"#.into(),
                open: Some(true),
                limit: Some(5),
                cursor: None,
            }),
        ),
        ("status_update", Request::Status(StatusRequest::Update { status: Some("in lobby".into()) })),
        ("status_offline", Request::Status(StatusRequest::Update { status: None })),
        (
            "status_follow",
            Request::Status(StatusRequest::Follow {
                user_ids: vec![UserId::new("u2")],
                usernames: vec![Username::new("U3")],
            }),
        ),
        ("status_unfollow", Request::Status(StatusRequest::Unfollow { user_ids: vec![UserId::new("u2")] })),
    ]
}

fn seeds_decode_envelope() -> Vec<(&'static str, Vec<u8>)> {
    let mut encoder = Encoder::new();
    let mut seeds: Vec<_> =
        every_request().into_iter().map(|(name, r)| (name, encoder.request(Cid(1), &r).to_vec())).collect();
    seeds.push(("empty", vec![]));
    seeds.push(("junk", b"\x0c\x00\x00\x00".to_vec()));
    // P-9: party data without a cid, the one request that may omit it.
    let party_data = every_request().into_iter().find(|(name, _)| *name == "party_data").expect("party_data seed").1;
    seeds.push(("party_data_fire_and_forget", encoder.request(Cid::NONE, &party_data).to_vec()));
    // C-5: an envelope whose cid reads but whose body does not verify (payload length past the end).
    let mut broken = encoder.request(Cid(3), &party_data).to_vec();
    let at = broken.windows(5).position(|w| w == b"state").expect("payload in frame");
    broken[at - 4..at].copy_from_slice(&u32::MAX.to_le_bytes());
    seeds.push(("party_data_broken_body", broken));
    // A frame without the file identifier, as another FlatBuffers library may write it.
    let mut builder = flatbuffers::FlatBufferBuilder::new();
    let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
    let envelope = fb::Envelope::create(
        &mut builder,
        &fb::EnvelopeArgs { cid: 2, message_type: fb::Message::Ping, message: Some(ping) },
    );
    builder.finish(envelope, None);
    seeds.push(("ping_without_identifier", builder.finished_data().to_vec()));
    seeds
}

fn seeds_conn_bytes() -> Vec<(&'static str, Vec<u8>)> {
    let ping = Encoder::new().request(Cid(7), &Request::Ping).to_vec();
    let with_upgrade = |frames: Vec<Vec<u8>>| [vec![1u8], frames.concat()].concat();
    vec![
        ("raw_upgrade", [vec![0u8], fuzzing::canned_upgrade().to_vec()].concat()),
        ("raw_upgrade_slow", [vec![2u8], fuzzing::canned_upgrade().to_vec()].concat()),
        ("ping", with_upgrade(vec![client_frame(0x2, &ping)])),
        (
            "ping_text_close",
            with_upgrade(vec![client_frame(0x2, &ping), client_frame(0x1, b"hi"), client_frame(0x8, &[0x03, 0xe8])]),
        ),
        ("ws_ping", with_upgrade(vec![client_frame(0x9, b"p"), client_frame(0x2, &ping)])),
        ("garbage_frame", with_upgrade(vec![client_frame(0x2, b"not an envelope")])),
        ("unmasked", with_upgrade(vec![vec![0x82, 0x02, 0xff, 0xff]])),
        ("oversize", with_upgrade(vec![vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]])),
        (
            "every_request",
            with_upgrade(
                every_request().iter().map(|(_, r)| client_frame(0x2, Encoder::new().request(Cid(9), r))).collect(),
            ),
        ),
    ]
}

fn seeds_core_ops() -> Vec<(&'static str, Vec<u8>)> {
    // Choices from a seeded generator, as the seeded simulation draws them.
    let choices = |seed: u64, len: usize| {
        let mut rng = huddle::sim::Rng::seeded(seed);
        (0..len / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect::<Vec<u8>>()
    };
    vec![
        ("world_short", choices(1, 256)),
        ("world_long", choices(2, 4096)),
        ("world_longer", choices(3, 8192)),
        ("empty", vec![]),
    ]
}

fn seeds_nakama_json() -> Vec<(String, Vec<u8>)> {
    // Every frame nakama-js sent in the recorded runs, as written (with Nakama's ids).
    let recorded = [
        include_str!("fixtures/nakama/nakama-party-frames.jsonl"),
        include_str!("fixtures/nakama/nakama-party-labels-trace.jsonl"),
    ];
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for line in recorded.iter().flat_map(|file| file.lines()) {
        let line: serde_json::Value = serde_json::from_str(line).expect("fixture lines are JSON");
        if let (Some("out"), Some(raw)) = (line["dir"].as_str(), line["raw"].as_str()) {
            if !seeds.iter().any(|(_, seed)| seed == raw.as_bytes()) {
                seeds.push((format!("recorded-{}", seeds.len()), raw.as_bytes().to_vec()));
            }
        }
    }
    // Every request huddle reads from Nakama's vocabulary, with a text cid.
    for (name, request) in every_request() {
        if let Some(frame) = request_frame(&CidText::Text("a-b".into()), &request) {
            seeds.push((format!("request-{name}"), frame.into_bytes()));
        }
    }
    // The bad-input kinds of SPEC K-1.
    let bad: &[(&str, &str)] = &[
        ("invalid_json", r#"{"cid":"1","party_create":{"open":tru}}"#),
        ("unknown_message", r#"{"cid":"2","party_frobnicate":{}}"#),
        ("wrong_type", r#"{"cid":"3","party_create":{"open":"yes","max_size":4}}"#),
        ("huge_number", r#"{"cid":"4","party_create":{"open":true,"max_size":1e400}}"#),
        ("deep", r#"{"cid":"5","party_create":{"x":[[[[[[[[[[[[1]]]]]]]]]]]]}}"#),
        ("bad_base64", r#"{"party_data_send":{"party_id":"00000000-0000-0000-0000-000000000001.huddle","data":"!!"}}"#),
        ("escapes", r#"{"cid":"\u0036","status_update":{"status":"\ud83d\ude00 \"q\""}}"#),
        ("camel_case", r#"{"cid":"7","party_data_send":{"partyId":"0123456789abcdef0123456789abcdef","opCode":3}}"#),
    ];
    seeds.extend(bad.iter().map(|(name, frame)| (format!("bad-{name}"), frame.as_bytes().to_vec())));
    seeds
}

fn run_dir(dir: &Path, run: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut count = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    count
}

fn check_target<N: std::fmt::Display>(target: &str, seeds: Vec<(N, Vec<u8>)>, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = root.join("corpus").join(target);
    if std::env::var_os("HUDDLE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&corpus).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(corpus.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    for (_, bytes) in &seeds {
        run(bytes);
    }
    let committed = run_dir(&corpus, run) + run_dir(&root.join("regressions").join(target), run);
    assert!(committed >= seeds.len(), "{target}: seed corpus missing from fuzz/corpus/{target}");
}

#[test]
fn decode_envelope_inputs_never_panic_and_round_trip() {
    check_target("decode_envelope", seeds_decode_envelope(), fuzzing::decode_envelope);
}

fn connection_bytes(data: &[u8]) {
    fuzzing::connection_bytes(data);
}

#[test]
fn conn_bytes_inputs_never_panic() {
    check_target("conn_bytes", seeds_conn_bytes(), connection_bytes);
}

#[test]
fn conn_bytes_seeds_reach_every_layer() {
    let seeds: std::collections::HashMap<_, _> = seeds_conn_bytes().into_iter().collect();
    let run = |name: &str| fuzzing::connection_bytes(&seeds[name]);
    assert!(run("raw_upgrade").upgraded);
    assert!(run("raw_upgrade_slow").upgraded, "a request read a few bytes at a time still upgrades");
    assert_eq!(run("ping").requests, 1);
    let mixed = run("ping_text_close");
    assert_eq!((mixed.requests, mixed.decode_errors), (1, 0), "text frames are answered without a decode");
    assert_eq!(run("ws_ping").requests, 1, "a WebSocket ping does not disturb the request after it");
    assert_eq!(run("garbage_frame").decode_errors, 1);
    assert_eq!(run("unmasked").closed_with.as_deref(), Some("unmasked client frame"));
    assert_eq!(run("oversize").closed_with.as_deref(), Some("message too big"));
    assert!(fuzzing::connection_bytes(b"\x00GET / HTTP/1.1\r\n\r\n").rejected);
    let all = run("every_request");
    assert_eq!((all.requests, all.decode_errors), (every_request().len(), 0), "every request kind reaches the core");
}

fn seeds_admin_bytes() -> Vec<(&'static str, Vec<u8>)> {
    let key = format!("Authorization: Bearer {}\r\n", fuzzing::FUZZ_ADMIN_KEY);
    let request = |method: &str, path: &str, body: &str| {
        format!("{method} {path} HTTP/1.1\r\n{key}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let every_route = [
        request("GET", "/metrics", ""),
        request("GET", "/healthz", ""),
        request("POST", "/v1/tokens", r#"{"user_id":"fuzz","username":"Fuzz","expires_in":60}"#),
        request("DELETE", "/v1/users/fuzz/sessions", ""),
        request("PUT", "/v1/users/fuzz/ban", r#"{"until":99999999999999}"#),
        request("DELETE", "/v1/users/fuzz/ban", ""),
        request("GET", "/v1/parties?offset=0&limit=10", ""),
        request("GET", "/v1/parties/000000000000000000000000000000ab", ""),
        request("GET", "/v1/users/fuzz/parties", ""),
        request("DELETE", "/v1/parties/00000000-0000-0000-0000-0000000000ab.huddle", ""),
        request("DELETE", "/v1/parties/000000000000000000000000000000ab/members/fuzz?session_id=1", ""),
        request("GET", "/v1/history?user_id=fuzz&since=0&until=99&limit=5&cursor=7", ""),
    ]
    .concat();
    vec![
        ("every_route", [vec![40u8], every_route.clone()].concat()),
        ("every_route_slow", [vec![0u8], every_route].concat()),
        ("bad_body", [vec![9u8], request("POST", "/v1/tokens", r#"{"user_id":7,"x":[1,{"#)].concat()),
        (
            "continue",
            [
                vec![3u8],
                format!(
                    "POST /v1/tokens HTTP/1.1\r\n{key}Expect: 100-continue\r\nContent-Length: 20\r\n\r\n{{\"user_id\":\"fuzz\"}}  "
                )
                .into_bytes(),
            ]
            .concat(),
        ),
        ("no_key", [vec![5u8], b"DELETE /v1/users/a/ban HTTP/1.1\r\n\r\nGET /nowhere HTTP/1.0\r\n\r\n".to_vec()].concat()),
        ("chunked", [vec![5u8], b"POST /v1/tokens HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec()].concat()),
        ("empty", vec![]),
    ]
}

fn admin_bytes(data: &[u8]) {
    fuzzing::admin_bytes(data);
}

#[test]
fn admin_bytes_inputs_never_panic_and_every_answer_is_http() {
    check_target("admin_bytes", seeds_admin_bytes(), admin_bytes);
}

#[test]
fn admin_bytes_seeds_reach_every_route() {
    let seeds: std::collections::HashMap<_, _> = seeds_admin_bytes().into_iter().collect();
    let statuses = |name: &str| fuzzing::admin_bytes(&seeds[name]).statuses;
    // The fuzz driver has no game sessions, so no party exists: those routes answer 404.
    let every_route = [200, 200, 200, 200, 200, 200, 200, 404, 200, 404, 404, 200];
    assert_eq!(statuses("every_route"), every_route, "each route answers behind the key");
    assert_eq!(statuses("every_route_slow"), every_route, "a byte at a time, pipelined");
    assert_eq!(statuses("bad_body"), [400]);
    assert_eq!(statuses("continue"), [100, 200]);
    assert_eq!(statuses("no_key"), [401, 401], "the second request is HTTP/1.0 and closes");
    assert_eq!(statuses("chunked"), [501]);
}

#[test]
fn core_ops_inputs_keep_every_invariant() {
    check_target("core_ops", seeds_core_ops(), fuzzing::core_ops);
}

#[test]
fn nakama_json_inputs_never_panic_and_round_trip() {
    check_target("nakama_json", seeds_nakama_json(), fuzzing::nakama_json);
}
