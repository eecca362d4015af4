//! End-to-end tests of the admin API, metrics and health (SPEC O-1, O-2) over real loopback
//! sockets: a server with a game and an admin listener on 127.0.0.1:0, raw HTTP/1.1 from a
//! small blocking client in this file, game clients from `huddle::client`. Each route is tried
//! with a good key, a bad key and none; bad bodies, oversize bodies and heads, slow senders and
//! pipelining get the status and JSON error a client would read; tokens minted by the API open
//! game sessions; bans and disconnects reach the clients as close frames; `/metrics` is read by
//! an independent Prometheus text parser (`prometheus-parse`) and its counters checked against
//! what the test did; `/healthz` answers 503 while the game listener drains. Waits are reads with
//! deadlines, never sleeps.

#[path = "common/admin_http.rs"]
mod admin_http;
mod common;
#[path = "common/raw_ws.rs"]
mod raw_ws;

use admin_http::*;
use common::*;
use huddle::client::ClientError;
use huddle::core::{Reply, Request};
use huddle::limits::Limits;
use raw_ws::{masked_frame, raw_ws};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn admin_server() -> TestServer {
    TestServer::with_admin(Limits::default())
}

fn far_future_ms() -> u64 {
    (unix_now() + 3600) * 1000
}

#[test]
fn every_route_wants_the_key_except_metrics_and_health() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let until = format!(r#"{{"until":{}}}"#, far_future_ms());
    let routes: [(&str, &str, Option<&str>); 4] = [
        ("POST", "/v1/tokens", Some(r#"{"user_id":"alice"}"#)),
        ("DELETE", "/v1/users/alice/sessions", None),
        ("PUT", "/v1/users/alice/ban", Some(&until)),
        ("DELETE", "/v1/users/alice/ban", None),
    ];
    for (method, path, body) in routes {
        for key in [None, BAD] {
            let response = http.request(method, path, key, body);
            assert_eq!(response.status, 401, "{method} {path} with {key:?}: {}", response.text());
            assert_eq!(response.error_code(), "unauthorized");
            assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        }
        let response = http.request(method, path, GOOD, body);
        assert_eq!(response.status, 200, "{method} {path}: {}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json()["user_id"], "alice", "{method} {path}");
    }
    for path in ["/metrics", "/healthz"] {
        for key in [None, BAD, GOOD] {
            assert_eq!(http.request("GET", path, key, None).status, 200, "{path} with {key:?}");
        }
    }
    // Without the key nothing tells which routes exist; with it, 404 and 405 do.
    assert_eq!(http.request("GET", "/v1/nothing", None, None).status, 401);
    let missing = http.request("GET", "/v1/nothing", GOOD, None);
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "not_found"));
    let wrong = http.request("GET", "/v1/tokens", GOOD, None);
    assert_eq!((wrong.status, wrong.error_code().as_str()), (405, "method_not_allowed"));
    assert_eq!(wrong.header("allow"), Some("POST"));
}

#[test]
fn bad_json_and_wrong_types_are_400_naming_the_field_and_the_connection_stays() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    for (body, field) in [
        (r#"{"user_id":"alice""#, "body:"),
        (r#"["alice"]"#, "body:"),
        (r#"{"user_id":7}"#, "user_id:"),
        (r#"{"user_id":"alice","expires_in":"soon"}"#, "expires_in:"),
        (r#"{"user_id":"alice","expires_in":0}"#, "expires_in:"),
        (r#"{"user_id":"alice","expire_in":60}"#, "expire_in:"),
        (r#"{"username":"Alice"}"#, "user_id:"),
    ] {
        let response = http.request("POST", "/v1/tokens", GOOD, Some(body));
        assert_eq!(response.status, 400, "{body}: {}", response.text());
        assert_eq!(response.error_code(), "bad_request");
        let message = response.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{body}: the message names {field}: {message}");
    }
    let ban = http.request("PUT", "/v1/users/eve/ban", GOOD, Some(r#"{"until":"tomorrow"}"#));
    assert!(ban.json()["message"].as_str().unwrap().starts_with("until:"), "{}", ban.text());
    let past = http.request("PUT", "/v1/users/eve/ban", GOOD, Some(r#"{"until":1000}"#));
    assert_eq!(past.status, 400, "a ban that already ended: {}", past.text());
    assert!(past.json()["message"].as_str().unwrap().starts_with("until:"));
    // The same connection still answers: a 400 leaves the stream in step.
    assert_eq!(http.request("GET", "/healthz", None, None).status, 200);
}

#[test]
fn oversize_bodies_get_413_and_oversize_heads_431_then_the_connection_closes() {
    let limits = Limits { admin_body_bytes_max: 1024, admin_head_bytes_max: 1024, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let mut http = Http::connect(&server);
    let body = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(2000));
    let response = http.request("POST", "/v1/tokens", GOOD, Some(&body));
    assert_eq!((response.status, response.error_code().as_str()), (413, "body_too_large"));
    assert_eq!(response.header("connection"), Some("close"));
    assert!(http.closed_by_server(), "the unread body is not taken for the next request");

    let mut http = Http::connect(&server);
    let head = format!("GET /healthz HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "p".repeat(2000));
    http.send(head.as_bytes());
    let response = http.response();
    assert_eq!((response.status, response.error_code().as_str()), (431, "head_too_large"));
    assert!(http.closed_by_server());

    let mut http = Http::connect(&server);
    http.send(b"POST /v1/tokens HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(http.response().status, 501, "only Content-Length bodies");
    let mut http = Http::connect(&server);
    http.send(b"POST /v1/tokens HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    assert_eq!(http.response().status, 400, "two different lengths: the request's end is unknown");
}

#[test]
fn pipelined_keep_alive_requests_are_answered_in_order_on_one_connection() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let mut burst = request_bytes("GET", "/healthz", None, None);
    burst.extend(request_bytes("POST", "/v1/tokens", GOOD, Some(r#"{"user_id":"p1"}"#)));
    burst.extend(request_bytes("DELETE", "/v1/users/p1/sessions", GOOD, None));
    burst.extend(request_bytes("POST", "/v1/tokens", GOOD, Some(r#"{"user_id":"p2","username":"Pat"}"#)));
    burst.extend(request_bytes("GET", "/v1/nowhere", GOOD, None));
    http.send(&burst);
    assert_eq!(http.response().json()["status"], "ok");
    assert_eq!(http.response().json()["user_id"], "p1");
    assert_eq!(http.response().json()["sessions_closed"], 0);
    let token = http.response();
    assert_eq!((token.json()["user_id"].as_str(), token.json()["username"].as_str()), (Some("p2"), Some("Pat")));
    assert_eq!(http.response().status, 404);
    // A request split at every byte still arrives whole.
    for byte in request_bytes("GET", "/healthz", None, None) {
        http.send(&[byte]);
    }
    assert_eq!(http.response().status, 200);
    // HTTP/1.0 without keep-alive: one answer, then the server closes.
    http.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(http.response().header("connection"), Some("close"));
    assert!(http.closed_by_server());
}

#[test]
fn slow_admin_senders_get_408_and_hold_no_slot_while_the_game_port_keeps_serving() {
    let limits = Limits { admin_request_timeout_ms: 300, admin_connections_max: 4, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let mut game = server.connect("gamer");
    // Fill the admin listener with slow senders, each a few bytes into a request.
    let mut slow: Vec<Http> = (0..4).map(|_| Http::connect(&server)).collect();
    for http in &mut slow {
        http.send(b"POST /v1/tokens HTTP/1.1\r\nContent-Le");
    }
    // The game port keeps serving meanwhile.
    for _ in 0..20 {
        assert_eq!(game.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    }
    for http in &mut slow {
        let response = http.response();
        assert_eq!((response.status, response.error_code().as_str()), (408, "request_timeout"));
        assert!(http.closed_by_server());
    }
    // A connection that never sends anything is closed quietly; once the clients close their
    // ends, every slot is free again.
    let mut idle = Http::connect(&server);
    assert!(idle.closed_by_server(), "an idle connection is closed after admin_request_timeout_ms");
    drop((slow, idle));
    server.wait_stats("only the game connection left", |s| s.connections_open == 1);
    let mut http = Http::connect(&server);
    assert_eq!(http.request("GET", "/healthz", None, None).status, 200);
    assert_eq!(game.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
}

#[test]
fn a_token_minted_by_the_admin_api_opens_a_game_session() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let response =
        http.request("POST", "/v1/tokens", GOOD, Some(r#"{"user_id":"minted","username":"Minty","expires_in":600}"#));
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let expires_at_s = body["expires_at_s"].as_u64().unwrap();
    assert!((unix_now() + 590..=unix_now() + 600).contains(&expires_at_s), "{body}");
    let mut client = server.try_connect(body["token"].as_str().unwrap()).expect("the game port accepts it");
    assert_eq!(client.presence().user_id.as_str(), "minted");
    assert_eq!(client.presence().username.as_str(), "Minty");
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
}

#[test]
fn a_ban_closes_the_users_sessions_with_1008_and_refuses_upgrades_with_403_until_lifted() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let mut eve = [server.connect("eve"), server.connect("eve")];
    let mut bystander = server.connect("bob");
    let until = far_future_ms();
    let response = http.request("PUT", "/v1/users/eve/ban", GOOD, Some(&format!(r#"{{"until":{until}}}"#)));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        (response.json()["until"].as_u64(), response.json()["sessions_closed"].as_u64()),
        (Some(until), Some(2))
    );
    for client in &mut eve {
        let frame = client.wait_closed(WAIT).unwrap().expect("a close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "banned"));
    }
    match server.try_connect(&token("eve")) {
        Err(ClientError::Refused { status, body }) => assert_eq!(status, 403, "{body}"),
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a banned user was let in"),
    }
    assert_eq!(bystander.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "other users are untouched");
    let lifted = http.request("DELETE", "/v1/users/eve/ban", GOOD, None);
    assert_eq!(lifted.json()["lifted"], true);
    assert_eq!(http.request("DELETE", "/v1/users/eve/ban", GOOD, None).json()["lifted"], false, "nothing left to lift");
    server.connect("eve");
}

#[test]
fn disconnecting_a_user_closes_each_of_its_sessions_and_no_one_elses() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let mut dan = [server.connect("dan"), server.connect("dan")];
    let mut other = server.connect("dana");
    let response = http.request("DELETE", "/v1/users/dan/sessions", GOOD, None);
    assert_eq!(response.json()["sessions_closed"], 2, "{}", response.text());
    for client in &mut dan {
        let frame = client.wait_closed(WAIT).unwrap().expect("a close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "disconnected by admin"));
    }
    assert_eq!(other.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    server.wait_stats("dan's sessions gone", |s| s.sessions_open == 1);
    server.connect("dan"); // not a ban: the user may come back
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let before = scrape(&mut http);
    for name in [
        "huddle_sessions",
        "huddle_parties",
        "huddle_party_members",
        "huddle_slow_consumers_total",
        "huddle_connections_refused_total",
        "huddle_party_code_misses_total",
    ] {
        assert_eq!(sample(&before, name, &[]), 0.0, "{name} starts at 0");
    }
    let mut alice = server.connect("alice");
    let _bob = server.connect("bob");
    for _ in 0..5 {
        assert_eq!(alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    }
    alice.send_raw(tungstenite::Message::text("not binary")).unwrap();
    let error = alice.next(WAIT).unwrap();
    assert!(matches!(error, huddle::wire::ServerMessage::ErrorEvent(_)), "{error:?}");
    assert_eq!(http.request("POST", "/v1/tokens", BAD, Some("{}")).status, 401);

    let after = scrape(&mut http);
    assert_eq!(sample(&after, "huddle_sessions", &[]), 2.0);
    assert_eq!(sample(&after, "huddle_messages_received_total", &[("kind", "Ping")]), 5.0);
    assert_eq!(sample(&after, "huddle_messages_received_total", &[("kind", "PartyCreate")]), 0.0);
    assert_eq!(sample(&after, "huddle_messages_sent_total", &[("kind", "Pong")]), 5.0);
    assert_eq!(sample(&after, "huddle_messages_sent_total", &[("kind", "Welcome")]), 2.0);
    assert_eq!(sample(&after, "huddle_errors_total", &[("code", "104")]), 1.0, "the text frame");
    assert_eq!(sample(&after, "huddle_errors_total", &[("code", "201")]), 0.0);
    assert_eq!(sample(&after, "huddle_admin_requests_total", &[("route", "POST /v1/tokens"), ("status", "401")]), 1.0);
    assert_eq!(sample(&after, "huddle_admin_requests_total", &[("route", "GET /metrics"), ("status", "200")]), 1.0);
    // Five pings and a text frame are at least 6 × 6 bytes (masked client frames) more in;
    // five pongs, two welcomes, an error and a metrics page more out.
    let bytes_in =
        sample(&after, "huddle_bytes_received_total", &[]) - sample(&before, "huddle_bytes_received_total", &[]);
    assert!(bytes_in >= 36.0, "{bytes_in}");
    let bytes_out = sample(&after, "huddle_bytes_sent_total", &[]) - sample(&before, "huddle_bytes_sent_total", &[]);
    assert!(bytes_out >= 1000.0, "{bytes_out}");
    assert_eq!(sample(&after, "huddle_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    let turns = after.samples.iter().find(|s| s.metric == "huddle_loop_turn_seconds").expect("the turn histogram");
    match &turns.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert!(buckets.last().is_some_and(|b| b.count > 0.0), "turns were observed: {buckets:?}")
        }
        other => panic!("huddle_loop_turn_seconds is a histogram, not {other:?}"),
    }
}

#[test]
fn limit_trips_and_refused_connections_are_counted_by_limit() {
    let limits = Limits { connections_max: 1, admin_body_bytes_max: 16, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let _first = server.connect("first");
    assert!(server.try_connect(&token("second")).is_err(), "connections_max 1");
    server.wait_stats("the refusal", |s| s.refused_total == 1);
    let mut big = Http::connect(&server);
    assert_eq!(big.request("POST", "/v1/tokens", GOOD, Some(r#"{"user_id":"someone"}"#)).status, 413);
    let mut http = Http::connect(&server);
    let scrape = scrape(&mut http);
    assert_eq!(sample(&scrape, "huddle_connections_refused_total", &[]), 1.0);
    assert_eq!(sample(&scrape, "huddle_limit_trips_total", &[("limit", "connections_max")]), 1.0);
    assert_eq!(sample(&scrape, "huddle_limit_trips_total", &[("limit", "admin_body_bytes_max")]), 1.0);
    assert_eq!(sample(&scrape, "huddle_limit_trips_total", &[("limit", "message_bytes_max")]), 0.0);
}

/// The reliability limits that refuse or cut game connections (issue 14) are counted under
/// their own names like every other limit, so a dashboard of `huddle_limit_trips_total` sees a
/// per-user cap, a fragment flood or a per-address refusal.
#[test]
fn reliability_limit_trips_are_counted_by_limit() {
    let limits = Limits { sessions_per_user_max: 1, message_fragments_max: 2, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let _solo = server.connect("solo");
    assert!(server.try_connect(&token("solo")).is_err(), "sessions_per_user_max 1: HTTP 429");
    let mut ws = raw_ws(&server, "flooder");
    let fragments = [masked_frame(0x02, b"a"), masked_frame(0x00, b"b"), masked_frame(0x80, b"c")].concat();
    ws.get_mut().write_all(&fragments).unwrap();
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| f.reason.to_string()),
            Ok(_) => continue,
            Err(e) => panic!("the stream ended without a close frame: {e}"),
        }
    };
    assert_eq!(close.as_deref(), Some("message_fragments_max exceeded"));
    let counted = scrape(&mut Http::connect(&server));
    let trips = |limit| sample(&counted, "huddle_limit_trips_total", &[("limit", limit)]);
    assert_eq!(trips("sessions_per_user_max"), 1.0);
    assert_eq!(trips("message_fragments_max"), 1.0);
    assert_eq!(trips("message_assembly_ms_max"), 0.0);
    assert_eq!(trips("extra_frames_per_second_max"), 0.0);

    let per_address = TestServer::with_admin(Limits { connections_per_ip_max: 1, ..Limits::default() });
    let _first = per_address.connect("first");
    assert!(per_address.try_connect(&token("second")).is_err(), "connections_per_ip_max 1");
    per_address.wait_stats("the refusal", |s| s.refused_ip_connections_total == 1);
    let per_address_scrape = scrape(&mut Http::connect(&per_address));
    assert_eq!(sample(&per_address_scrape, "huddle_limit_trips_total", &[("limit", "connections_per_ip_max")]), 1.0);
    let handshakes = [("limit", "handshakes_per_ip_per_second_max")];
    assert_eq!(sample(&per_address_scrape, "huddle_limit_trips_total", &handshakes), 0.0);
}

/// A JSON session (Nakama's SDK URL) is sent no welcome: `huddle_messages_sent_total` counts
/// messages queued for sessions, so it counts none for it.
#[test]
fn messages_a_json_session_is_not_sent_are_not_counted_as_sent() {
    let server = admin_server();
    let _flatbuffers = server.connect("fb");
    let stream = TcpStream::connect(&server.addr).unwrap();
    let url = format!("ws://{}/ws?lang=en&token={}", server.addr, token("jay"));
    let (_json, _) = tungstenite::client::client(url, stream).expect("upgrade");
    server.wait_stats("both sessions", |s| s.sessions_open == 2);
    let counted = scrape(&mut Http::connect(&server));
    assert_eq!(sample(&counted, "huddle_sessions", &[]), 2.0);
    assert_eq!(sample(&counted, "huddle_messages_sent_total", &[("kind", "Welcome")]), 1.0, "the FlatBuffers one");
}

#[test]
fn healthz_names_the_instance_and_answers_503_while_the_game_listener_drains() {
    let limits = Limits { shutdown_drain_ms: 60_000, close_linger_ms: 60_000, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let mut http = Http::connect(&server);
    let healthy = http.request("GET", "/healthz", None, None);
    assert_eq!(healthy.status, 200);
    let body = healthy.json();
    assert_eq!(body["status"], "ok");
    let instance_id = body["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(instance_id.len(), 32, "128 random bits in hex: {body}");
    let started_at_ms = body["started_at_ms"].as_u64().unwrap();
    assert!(started_at_ms <= unix_now() * 1000 + 1000 && started_at_ms + 120_000 >= unix_now() * 1000, "{body}");

    // A game client that never answers the close frame keeps the drain going.
    let game = TcpStream::connect(&server.addr).unwrap();
    let mut silent = tungstenite::client::client(format!("ws://{}/ws?token={}", server.addr, token("silent")), game)
        .expect("upgrade")
        .0;
    silent.read().expect("the welcome");
    server.wait_stats("the silent session", |s| s.sessions_open == 1);
    server.handle.shutdown();
    let deadline = Instant::now() + WAIT;
    let draining = loop {
        let response = http.request("GET", "/healthz", None, None);
        if response.status == 503 {
            break response;
        }
        assert!(Instant::now() < deadline, "healthz never said draining");
    };
    assert_eq!(
        (draining.json()["status"].as_str(), draining.json()["instance_id"].as_str()),
        (Some("draining"), Some(instance_id.as_str()))
    );
    let mut fresh = Http::connect(&server);
    assert_eq!(fresh.request("GET", "/healthz", None, None).status, 503, "the admin listener still accepts");
    assert!(
        TcpStream::connect(&server.addr).map(|mut s| s.read(&mut [0u8; 1]).map_or(true, |n| n == 0)).unwrap_or(true),
        "the game listener no longer serves"
    );
    drop(silent); // the last game connection goes: the drain ends
    server.stop().expect("a clean shutdown");
}

#[test]
fn an_admin_flood_answers_every_request_and_game_sessions_keep_their_turns() {
    let limits = Limits { admin_requests_per_turn_max: 2, ..Limits::default() };
    let server = TestServer::with_admin(limits);
    let mut game = server.connect("gamer");
    let mut flood: Vec<Http> = (0..8).map(|_| Http::connect(&server)).collect();
    let per_connection = 25;
    for http in &mut flood {
        let mut burst = Vec::new();
        for _ in 0..per_connection {
            burst.extend(request_bytes("GET", "/healthz", None, None));
        }
        http.send(&burst);
    }
    for _ in 0..10 {
        assert_eq!(game.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    }
    for http in &mut flood {
        for _ in 0..per_connection {
            assert_eq!(http.response().status, 200);
        }
    }
    let mut http = Http::connect(&server);
    let scrape = scrape(&mut http);
    let answered = sample(&scrape, "huddle_admin_requests_total", &[("route", "GET /healthz"), ("status", "200")]);
    assert_eq!(answered, f64::from(8 * per_connection));
}

// The lobby playground (SPEC K-3): `GET /playground` and its mint `POST /playground/token`, both
// without the admin key, both 404 unless the server runs with `--playground`; the mint only on a
// loopback-bound admin listener, for requests whose Host and Origin name this machine.

fn playground_server(admin_listen: &str) -> TestServer {
    TestServer::with_admin_config(Limits::default(), admin_listen, true)
}

/// A request with the `Host` (and `Origin`) a browser would send.
fn browser_request(method: &str, target: &str, host: &str, origin: Option<&str>, body: &str) -> Vec<u8> {
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

#[test]
fn without_the_flag_the_playground_and_its_mint_are_404() {
    let server = admin_server();
    let mut http = Http::connect(&server);
    let host = server.admin_addr.clone().unwrap();
    assert_eq!(http.request("GET", "/playground", None, None).status, 404);
    http.send(&browser_request("POST", "/playground/token", &host, None, r#"{"user_id":"alice"}"#));
    let refused = http.response();
    assert_eq!((refused.status, refused.error_code().as_str()), (404, "not_found"));
}

#[test]
fn the_playground_page_names_the_game_listener_and_needs_no_admin_key() {
    let server = playground_server("127.0.0.1:0");
    let mut http = Http::connect(&server);
    let page = http.request("GET", "/playground", None, None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let text = page.text();
    assert!(text.contains(&format!(r#"<meta name="huddle-ws-url" content="ws://{}/ws">"#, server.addr)), "{text:.400}");
    assert!(text.contains(r#"<meta name="huddle-mint" content="on">"#), "{text:.400}");
    assert_eq!(http.request("POST", "/playground", None, None).status, 405, "the page is only read");
}

#[test]
fn the_playground_mints_tokens_for_pages_of_this_machine_only() {
    let server = playground_server("127.0.0.1:0");
    let mut http = Http::connect(&server);
    let host = server.admin_addr.clone().unwrap();
    let own = format!("http://{host}");
    http.send(&browser_request("POST", "/playground/token", &host, Some(&own), r#"{"user_id":"alice"}"#));
    let minted = http.response();
    assert_eq!(minted.status, 200, "{}", minted.text());
    let mut alice = server.try_connect(minted.json()["token"].as_str().unwrap()).expect("the game port accepts it");
    assert_eq!(alice.presence().username.as_str(), "alice");
    assert_eq!(alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong));

    let port = host.rsplit_once(':').unwrap().1;
    let refusals = [
        (format!("evil.example:{port}"), None, "Host must be localhost or a loopback address"),
        (host.clone(), Some("http://evil.example".to_owned()), "Origin must be"),
        (host.clone(), Some("null".to_owned()), "Origin must be"),
    ];
    for (host, origin, why) in refusals {
        http.send(&browser_request("POST", "/playground/token", &host, origin.as_deref(), r#"{"user_id":"mallory"}"#));
        let refused = http.response();
        assert_eq!((refused.status, refused.error_code().as_str()), (403, "forbidden"), "{host} {origin:?}");
        assert!(refused.json()["message"].as_str().unwrap().contains(why), "{}", refused.text());
    }
    http.send(&browser_request("POST", "/playground/token", &host, Some(&own), r#"{"user":"alice"}"#));
    assert_eq!(http.response().status, 400, "the body is read as /v1/tokens reads it");
}

#[test]
fn the_playground_mint_is_refused_while_the_admin_listener_is_not_on_loopback() {
    let server = playground_server("0.0.0.0:0");
    let port = server.admin_addr.as_deref().unwrap().rsplit_once(':').unwrap().1.to_owned();
    let mut http = Http::connect(&server);
    let page = http.request("GET", "/playground", None, None);
    assert_eq!(page.status, 200, "the page is still served, for pasted tokens");
    assert!(page.text().contains("mints tokens only while the admin listener is bound to loopback"));
    let host = format!("127.0.0.1:{port}");
    http.send(&browser_request(
        "POST",
        "/playground/token",
        &host,
        Some(&format!("http://{host}")),
        r#"{"user_id":"a"}"#,
    ));
    let refused = http.response();
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "forbidden"), "even from loopback");
    assert!(refused.json()["message"].as_str().unwrap().contains("(it is on 0.0.0.0:"), "{}", refused.text());
}
