//! Hostile clients over real loopback sockets: garbage, half frames, unmasked frames, request
//! floods, silent peers, and a SIGTERM on the real binary. Each case checks that the offender
//! gets the documented answer (an error reply, a close code, a drop) and that everybody else is
//! served throughout. Waits are deadlines on stats or frames, never sleeps.

mod common;
#[path = "common/raw_ws.rs"]
mod raw_ws;

use common::*;
use huddle::client::Client;
use huddle::core::{ConnectOptions, Reply, Request};
use huddle::limits::Limits;
use huddle::wire::{ErrorCode, ServerMessage};
use raw_ws::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

fn ping_ok(client: &mut Client) {
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
}

#[test]
fn garbage_before_the_handshake_gets_400_and_nothing_else_changes() {
    let server = TestServer::start();
    let mut bystander = server.connect("bob");
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The start of a TLS ClientHello, a common accident.
    stream.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response:?}");
    drop(stream);
    ping_ok(&mut bystander);
    let stats = server.wait_stats("garbage connection gone", |s| s.connections_open == 1);
    assert_eq!(stats.sessions_open, 1);
}

#[test]
fn unmasked_client_frame_closes_with_1002_and_reason() {
    let server = TestServer::start();
    let mut ws = raw_ws(&server, "alice");
    ws.get_mut().write_all(&[0x82, 0x02, 0xab, 0xcd]).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1002);
            assert_eq!(frame.reason.as_str(), "unmasked client frame");
        }
        other => panic!("expected close 1002, got {other:?}"),
    }
    server.wait_stats("session gone", |s| s.sessions_open == 0);
}

#[test]
fn half_a_frame_then_silence_is_dropped_by_keepalive_while_others_are_served() {
    let server = TestServer::with_limits(Limits { keepalive_interval_ms: 200, ..Limits::default() });
    let mut bystander = server.connect("bob");
    let mut ws = raw_ws(&server, "alice");
    // Announces a 5-byte masked payload, sends 2 bytes of it, then nothing, and never reads.
    ws.get_mut().write_all(&[0x82, 0x85, 1, 2, 3, 4, 9, 9]).unwrap();
    let deadline = Instant::now() + WAIT;
    while server.stats().keepalive_timeouts_total < 1 {
        assert!(Instant::now() < deadline, "silent connection never dropped: {:?}", server.stats());
        ping_ok(&mut bystander); // the bystander stays served (and talks, so it stays alive)
        std::thread::sleep(Duration::from_millis(10)); // pacing, under requests_per_second_max
    }
    let stats = server.wait_stats("silent session gone", |s| s.sessions_open == 1);
    assert_eq!(stats.keepalive_timeouts_total, 1, "only the silent peer was dropped");
    ping_ok(&mut bystander);
}

#[test]
fn keepalive_pings_a_quiet_client_that_answers_and_keeps_it() {
    // 400 ms: short enough for several pings in the test, long enough that a busy CI machine's
    // scheduling stalls do not look like a dead peer.
    let server = TestServer::with_limits(Limits { keepalive_interval_ms: 400, ..Limits::default() });
    let mut quiet = server.connect("alice");
    // Reading for a while answers the server's pings (tungstenite replies with pongs) without
    // sending any request.
    let until = Instant::now() + Duration::from_millis(2_000);
    while Instant::now() < until {
        let _ = quiet.next(Duration::from_millis(50));
    }
    assert_eq!(server.stats().keepalive_timeouts_total, 0);
    ping_ok(&mut quiet);
}

#[test]
fn ten_thousand_requests_in_one_burst_are_answered_or_rate_limited_and_others_stay_served() {
    let server = TestServer::start();
    let limits = Limits::default();
    let addr = server.addr.clone();
    let bystander = std::thread::spawn(move || {
        let mut bob = Client::connect(&addr, &token("bob"), ConnectOptions::default()).unwrap();
        for _ in 0..50 {
            ping_ok(&mut bob);
        }
    });
    let mut flood = server.connect("mallory");
    let cids: Vec<_> = (0..10_000).map(|_| flood.send(&Request::Ping).unwrap()).collect();
    let (mut answered, mut limited) = (0, 0);
    for cid in cids {
        match flood.next(WAIT).unwrap() {
            ServerMessage::Reply { cid: got, result } => {
                assert_eq!(got, cid, "one reply per request, in order");
                match result {
                    Ok(Reply::Pong) => answered += 1,
                    Err(e) if e.code == ErrorCode::LimitExceeded => {
                        assert!(e.message.contains("requests_per_second_max"), "{}", e.message);
                        limited += 1;
                    }
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(answered >= limits.requests_burst_max as usize, "the burst allowance is honoured: {answered}");
    assert!(limited > 0, "a 10,000-request burst exceeds the limit");
    bystander.join().expect("bystander served throughout");
    // Stats are published at the end of the loop's turn, which may be after our replies went out.
    server.wait_stats("refusals counted", |s| s.rate_limited_total == limited as u64);
    // Still connected: a burst alone is not abuse. (Answered or refused, depending on whether a
    // token has been earned since.)
    match flood.request(&Request::Ping).unwrap() {
        Ok(Reply::Pong) => {}
        Err(e) => assert_eq!(e.code, ErrorCode::LimitExceeded),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sustained_flood_ignoring_rate_limit_errors_is_closed() {
    let server = TestServer::with_limits(Limits {
        requests_per_second_max: 10,
        requests_burst_max: 10,
        rate_limited_close_ms: 300,
        ..Limits::default()
    });
    let mut flood = server.connect("mallory");
    let deadline = Instant::now() + WAIT;
    let frame = loop {
        assert!(Instant::now() < deadline, "flood never closed");
        if let Err(e) = flood.send(&Request::Ping) {
            panic!("send failed before a close frame arrived: {e}");
        }
        match flood.next(Duration::from_millis(5)) {
            Err(huddle::client::ClientError::Closed(frame)) => break frame,
            _ => continue,
        }
    };
    let frame = frame.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "request rate limit"));
}

/// A spawned server that cannot outlive a failing test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary on `127.0.0.1:0` with info logging: the process, its address, and a thread
/// collecting its log lines until it exits.
#[cfg(unix)]
fn start_binary() -> (KillOnDrop, String, std::thread::JoinHandle<Vec<String>>) {
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args(["serve", "--listen", "127.0.0.1:0", "--token-key", KEY, "--admin-listen", "off"])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start huddle"),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let log_reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ws://").nth(1) {
                let _ = addr_tx.send(rest.trim_end_matches("/ws").to_owned());
            }
            log.push(line);
        }
        log
    });
    let addr = addr_rx.recv_timeout(WAIT).expect("server logs its address");
    (child, addr, log_reader)
}

#[cfg(unix)]
fn sigterm(child: &KillOnDrop) {
    // SAFETY: kill(2) with the pid of our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
}

/// The real binary: 100 clients, SIGTERM, every client gets the close frame, exit code 0.
// SIGTERM and libc exist on Unix only (the server is tested on Linux).
#[cfg(unix)]
#[test]
fn sigterm_with_100_clients_closes_all_and_exits_zero() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let (mut child, addr, log_reader) = start_binary();
    let mut clients: Vec<Client> = (0..100)
        .map(|i| Client::connect(&addr, &token(&format!("u{i}")), ConnectOptions::default()).unwrap())
        .collect();
    sigterm(&child);
    for client in &mut clients {
        let frame = client.wait_closed(WAIT).unwrap().expect("close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1001, "server shutting down"));
    }
    drop(clients);
    let status = child.0.wait().unwrap();
    let log = log_reader.join().unwrap();
    assert!(status.success(), "exit status {status}; log:\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("shutdown complete")), "log:\n{}", log.join("\n"));
}

/// A client that gets its close frame but never closes its side: the 1 s linger no longer drops
/// it before the 2 s drain deadline, so the drain waits for it and then warns with what it cut.
#[cfg(unix)]
#[test]
fn sigterm_with_a_client_that_never_closes_waits_for_the_drain_deadline_and_warns() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let (mut child, addr, log_reader) = start_binary();
    let mut polite = Client::connect(&addr, &token("polite"), ConnectOptions::default()).unwrap();
    let stubborn = Client::connect(&addr, &token("stubborn"), ConnectOptions::default()).unwrap();
    sigterm(&child);
    let frame = polite.wait_closed(WAIT).unwrap().expect("close frame");
    assert_eq!(u16::from(frame.code), 1001);
    drop(polite);
    let status = child.0.wait().unwrap();
    let log = log_reader.join().unwrap();
    assert!(status.success(), "exit status {status}; log:\n{}", log.join("\n"));
    let warning = log.iter().find(|l| l.contains("cut at the drain deadline")).unwrap_or_else(|| {
        panic!("no drain warning; log:\n{}", log.join("\n"));
    });
    assert!(warning.contains("1 connections cut"), "{warning}");
    drop(stubborn);
}

/// A party member that never reads while its party receives data: cut off by the output limit
/// (close 1008 "output buffer limit", one counter), the other member keeps receiving every
/// message in order, and the server's queued bytes stay bounded throughout.
#[test]
fn member_that_never_reads_is_cut_off_and_the_party_keeps_flowing() {
    use huddle::core::{Event, PartyEvent};
    let limits = Limits {
        outbound_bytes_max: 256 * 1024,
        outbound_soft_bytes_max: 128 * 1024,
        // A follow reply must fit the lowered output limit in every codec (validated at startup,
        // SPEC S-2).
        follow_ids_per_request_max: 4,
        outbound_soft_duration_ms: 60_000,
        requests_per_second_max: 1_000_000,
        requests_burst_max: 1_000_000,
        ..Limits::default()
    };
    let server = TestServer::with_limits(limits.clone());
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut mallory = server.connect("mallory");
    let party = alice.party_create(true, 3, "", false).unwrap().unwrap().party_id;
    bob.party_join(party).unwrap().unwrap();
    mallory.party_join(party).unwrap().unwrap();
    let _ = alice.take_events();
    let _ = bob.take_events();

    const LAST: i64 = -1;
    let reader = std::thread::spawn(move || {
        let mut op_codes = Vec::new();
        loop {
            let event = bob
                .wait_event(WAIT, |e| matches!(e, Event::Party(PartyEvent::Data { .. })))
                .expect("bob keeps receiving");
            if let Event::Party(PartyEvent::Data { op_code, data, .. }) = event {
                assert_eq!(data.len(), 8000);
                if op_code == LAST {
                    return (bob, op_codes);
                }
                op_codes.push(op_code);
            }
        }
    });

    let payload = vec![7u8; 8000];
    let queue_bound = 3 * (limits.outbound_bytes_max + limits.message_bytes_max) as u64;
    let mut sent = 0i64;
    while server.stats().slow_consumers_total == 0 {
        assert!(sent < 20_000, "mallory was never cut off: {:?}", server.stats());
        alice.party_data(party, sent, &payload).unwrap().unwrap();
        sent += 1;
        let queued = server.stats().outbound_bytes_queued;
        assert!(queued <= queue_bound, "server queues grew past their limits: {queued} bytes");
    }
    // The party goes on without mallory.
    for _ in 0..10 {
        alice.party_data(party, sent, &payload).unwrap().unwrap();
        sent += 1;
    }
    alice.party_data(party, LAST, &payload).unwrap().unwrap();
    let (_bob, received) = reader.join().expect("bob's reader");
    assert_eq!(received, (0..sent).collect::<Vec<_>>(), "bob got every message, in order");
    let stats = server.wait_stats("mallory gone", |s| s.sessions_open == 2);
    assert_eq!(stats.slow_consumers_total, 1, "only the one who never read was cut off");
    // Mallory finds the close frame behind whatever the kernel had already buffered.
    let frame = mallory.wait_closed(WAIT).expect("mallory's stream ends with a close").expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "output buffer limit"));
}

/// WebSocket pings from a client that never reads: every pong counts against the output limit
/// like any other frame, so the client is cut off instead of growing its queue without bound.
#[test]
fn ping_flood_without_reading_is_cut_off_by_the_output_limit() {
    let server = TestServer::with_limits(Limits {
        outbound_bytes_max: 64 * 1024,
        outbound_soft_bytes_max: 32 * 1024,
        follow_ids_per_request_max: 1,
        // Out of the way, so the output limit is what stops the flood (by default the budget of
        // control frames closes it first: tests/hostile_load.rs).
        extra_frames_per_second_max: u32::MAX,
        extra_frames_burst_max: u32::MAX,
        ..Limits::default()
    });
    let mut bystander = server.connect("bob");
    let mut ws = raw_ws(&server, "mallory");
    // 1,000 masked pings with 125-byte payloads (the largest a control frame may carry).
    let mask = [1u8, 2, 3, 4];
    let mut chunk = Vec::new();
    for _ in 0..1000 {
        chunk.extend_from_slice(&[0x89, 0x80 | 125]);
        chunk.extend_from_slice(&mask);
        chunk.extend((0..125u8).map(|i| i ^ mask[usize::from(i) % 4]));
    }
    let stream = ws.get_mut();
    for _ in 0..2_000 {
        if server.stats().slow_consumers_total > 0 || stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let stats = server.wait_stats("the ping flooder cut off", |s| s.slow_consumers_total == 1);
    assert!(stats.outbound_bytes_queued_conn_max <= 64 * 1024 + 131, "{stats:?}");
    ping_ok(&mut bystander);
}
