//! End-to-end tests of the connection layer (SPEC C-1 … C-6) over real loopback sockets: the
//! authenticated upgrade, the welcome, error replies that leave the connection usable, close
//! codes for broken streams, and that every connection's end reaches the core. Each test runs
//! its own server on 127.0.0.1:0; waits are deadlines on stats or frames, never sleeps.

mod common;

use common::*;
use huddle::client::ClientError;
use huddle::core::{Cid, Event, Reply, Request};
use huddle::limits::Limits;
use huddle::wire::{ErrorCode, ServerMessage};
use std::io::{Read, Write};
use std::net::TcpStream;
use tungstenite::Message;

#[test]
fn c4_valid_token_upgrades_and_welcome_carries_identity_and_fresh_session_id() {
    let server = TestServer::start();
    let first = server.connect("alice");
    let second = server.connect("alice");
    for client in [&first, &second] {
        assert_eq!(client.presence().user_id.as_str(), "alice");
        assert_eq!(client.presence().username.as_str(), "Alice");
    }
    assert_ne!(first.presence().session_id, second.presence().session_id, "each connection is its own session");
    server.wait_stats("two sessions", |s| s.sessions_open == 2);
}

#[test]
fn c4_reused_slot_gets_a_new_session_id() {
    let server = TestServer::start();
    let first = server.connect("alice");
    let first_id = first.presence().session_id;
    first.close();
    server.wait_stats("first session gone", |s| s.connections_open == 0);
    let second = server.connect("bob");
    assert_eq!(second.presence().session_id.slot(), first_id.slot(), "the slab reuses the slot");
    assert_ne!(second.presence().session_id, first_id, "but the session id is new");
}

#[test]
fn c2_missing_malformed_wrongly_signed_and_expired_tokens_get_401_and_no_session() {
    let server = TestServer::start();
    let cases = [
        ("missing", String::new()),
        ("malformed", "not-a-jwt".to_owned()),
        ("wrongly signed", token_with("alice", "Alice", unix_now() + 3600, "some-other-key")),
        ("expired", token_with("alice", "Alice", unix_now() - 1, KEY)),
    ];
    for (what, token) in &cases {
        match server.try_connect(token) {
            Err(ClientError::Refused { status, body }) => {
                assert_eq!(status, 401, "{what}: {body}");
            }
            Err(other) => panic!("{what}: expected HTTP 401, got {other}"),
            Ok(_) => panic!("{what}: token accepted"),
        }
    }
    let stats = server.wait_stats("all refusals counted", |s| s.upgrades_rejected_total == 4);
    assert_eq!(stats.sessions_open, 0, "no refused upgrade became a session");
    // A good token still works afterwards.
    server.connect("alice");
}

#[test]
fn c2_bearer_authorization_header_is_accepted() {
    use tungstenite::client::IntoClientRequest;
    let server = TestServer::start();
    let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {}", token("carol")).parse().unwrap());
    let stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, response) = tungstenite::client::client(request, stream).expect("upgrade with bearer token");
    assert_eq!(response.status().as_u16(), 101);
    let Message::Binary(frame) = ws.read().unwrap() else { panic!("expected a binary welcome") };
    let welcome = huddle::wire::decode_server_message(&frame, &huddle::wire::verifier_options(1 << 20)).unwrap();
    let ServerMessage::Event(Event::Welcome { presence }) = welcome else {
        panic!("expected welcome, got {welcome:?}")
    };
    assert_eq!(presence.user_id.as_str(), "carol");
}

/// Sends raw bytes and returns the HTTP status line the server answers with.
fn raw_status_line(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    // Read the response head only: an accepted upgrade leaves the connection open.
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&response).lines().next().unwrap_or("").to_owned()
}

#[test]
fn c1_only_get_on_ws_path_upgrades() {
    let server = TestServer::start();
    let t = token("alice");
    let upgrade = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    assert!(raw_status_line(&server.addr, upgrade("GET", &format!("/other?token={t}")).as_bytes()).contains("404"));
    assert!(raw_status_line(&server.addr, upgrade("POST", &format!("/ws?token={t}")).as_bytes()).contains("405"));
    assert!(raw_status_line(&server.addr, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").contains("400"));
    assert!(raw_status_line(&server.addr, upgrade("GET", &format!("/ws?token={t}")).as_bytes()).contains("101"));
    server.wait_stats("refusals counted", |s| s.upgrades_rejected_total == 3);
}

#[test]
fn c1_oversized_upgrade_request_is_refused_with_431() {
    let server = TestServer::with_limits(Limits { handshake_bytes_max: 1024, ..Limits::default() });
    let request =
        format!("GET /ws?token={} HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", token("alice"), "p".repeat(2048));
    assert!(raw_status_line(&server.addr, request.as_bytes()).contains("431"));
    assert_eq!(server.stats().sessions_open, 0);
}

#[test]
fn c5_garbage_binary_and_text_frames_get_error_replies_and_the_connection_stays_open() {
    let server = TestServer::start();
    let mut client = server.connect("alice");

    client.send_raw(Message::Binary(b"definitely not a flatbuffer".to_vec().into())).unwrap();
    // The cid of garbage cannot be read: the error comes with cid 0, as an error event.
    match client.next(WAIT).unwrap() {
        ServerMessage::ErrorEvent(error) => {
            assert_eq!(error.code, ErrorCode::MalformedEnvelope);
            assert!(!error.message.is_empty());
        }
        other => panic!("expected an error with cid 0, got {other:?}"),
    }

    client.send_raw(Message::Text("{\"ping\":{}}".into())).unwrap();
    match client.next(WAIT).unwrap() {
        ServerMessage::ErrorEvent(error) => assert_eq!(error.code, ErrorCode::TextFrameUnsupported),
        other => panic!("expected an error with cid 0, got {other:?}"),
    }

    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "same connection still serves requests");
    let stats = server.wait_stats("decode errors counted", |s| s.decode_errors_total == 2);
    assert_eq!(stats.sessions_open, 1);
}

#[test]
fn c5_request_without_cid_gets_missing_cid_error() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let frame = huddle::wire::Encoder::new().request(Cid::NONE, &Request::Ping).to_vec();
    client.send_raw(Message::Binary(frame.into())).unwrap();
    match client.next(WAIT).unwrap() {
        ServerMessage::ErrorEvent(error) => assert_eq!(error.code, ErrorCode::MissingCid),
        other => panic!("expected an error with cid 0, got {other:?}"),
    }
}

#[test]
fn c5_each_request_gets_exactly_one_reply_in_order() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let cids: Vec<Cid> = (0..50).map(|_| client.send(&Request::Ping).unwrap()).collect();
    for cid in cids {
        match client.next(WAIT).unwrap() {
            ServerMessage::Reply { cid: got, result } => {
                assert_eq!(got, cid);
                assert_eq!(result, Ok(Reply::Pong));
            }
            other => panic!("expected reply {cid:?}, got {other:?}"),
        }
    }
    assert!(
        matches!(client.next(std::time::Duration::from_millis(100)), Err(ClientError::Timeout(_))),
        "no extra reply"
    );
}

#[test]
fn c5_oversized_frame_closes_with_1009_and_others_are_unaffected() {
    let server = TestServer::with_limits(Limits { message_bytes_max: 1024, ..Limits::default() });
    let mut bystander = server.connect("bob");
    let mut client = server.connect("alice");
    client.send_raw(Message::Binary(vec![0u8; 4096].into())).unwrap();
    let frame = client.wait_closed(WAIT).unwrap().expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(frame.reason.as_str(), "message too big");
    server.wait_stats("the closed session is gone", |s| s.sessions_open == 1);
    assert_eq!(bystander.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
}

#[test]
fn c6_five_hundred_clients_connect_and_disconnect_and_nothing_is_left() {
    let server = TestServer::start();
    let mut clients = Vec::new();
    for i in 0..500 {
        clients.push(server.connect(&format!("user{i}")));
    }
    server.wait_stats("500 sessions", |s| s.sessions_open == 500 && s.connections_open == 500);
    // Half say goodbye with a close frame, half just vanish.
    for (i, client) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            client.close();
        } else {
            drop(client);
        }
    }
    let stats = server.wait_stats("every connection reaped", |s| s.connections_open == 0 && s.sessions_open == 0);
    assert_eq!(stats.accepted_total, 500);
    assert_eq!(stats.handshakes_open, 0);
}

#[test]
fn c6_connection_refused_past_connections_max() {
    let server = TestServer::with_limits(Limits { connections_max: 2, ..Limits::default() });
    let _a = server.connect("a");
    let _b = server.connect("b");
    assert!(server.try_connect(&token("c")).is_err(), "third connection refused");
    server.wait_stats("refusal counted", |s| s.refused_total == 1);
    assert_eq!(server.stats().sessions_open, 2);
}

#[test]
fn handshake_that_never_finishes_is_dropped_at_the_deadline() {
    let server = TestServer::with_limits(Limits { handshake_timeout_ms: 200, ..Limits::default() });
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").unwrap(); // never finished
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "server closes without answering");
    let stats = server.wait_stats("timeout counted", |s| s.handshake_timeouts_total == 1 && s.connections_open == 0);
    assert_eq!(stats.handshakes_open, 0);
}

#[test]
fn graceful_shutdown_sends_every_client_a_close_frame() {
    let server = TestServer::start();
    let clients: Vec<_> = (0..20).map(|i| server.connect(&format!("u{i}"))).collect();
    let handle = server.handle.clone();
    handle.shutdown();
    for mut client in clients {
        let frame = client.wait_closed(WAIT).unwrap().expect("close frame");
        assert_eq!(u16::from(frame.code), 1001);
        assert_eq!(frame.reason.as_str(), "server shutting down");
        drop(client); // our FIN lets the server finish without waiting out the linger
    }
    server.stop().expect("run returns Ok after a graceful shutdown");
}

#[test]
fn c2_token_minted_by_the_binary_is_accepted_by_the_server() {
    let server = TestServer::start();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["token", "--user-id", "carol", "--username", "Carol", "--token-key", KEY])
        .output()
        .expect("run huddle token");
    assert!(output.status.success(), "huddle token failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().last().expect("the token alone on the last line").trim();
    let client = server.try_connect(token).expect("the server accepts a token the binary minted");
    assert_eq!(client.presence().user_id.as_str(), "carol");
    assert_eq!(client.presence().username.as_str(), "Carol");
    // The same binary with another key mints a token this server refuses.
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["token", "--user-id", "carol", "--token-key", "not-the-server-key"])
        .output()
        .unwrap();
    let foreign = String::from_utf8(other.stdout).unwrap();
    assert!(matches!(
        server.try_connect(foreign.lines().last().unwrap().trim()),
        Err(huddle::client::ClientError::Refused { status: 401, .. })
    ));
}
