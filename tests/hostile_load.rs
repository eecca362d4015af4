//! Issue 14's holes, closed, over real loopback sockets: one client (or one user, or one address)
//! trying to hurt everyone else while staying inside every other limit. Each test runs a
//! bystander on its own connection throughout: it pings in batches before, during and after the
//! attack, and every one of its replies must arrive, in order (no time is asserted: its round
//! trip belongs in the bench). The offender gets the documented answer: a close frame with code
//! 1008 and a reason naming the limit, an HTTP 429 before the upgrade, or a connection closed at
//! once; each refusal is counted in the server's stats. Waits are deadlines on stats or frames.

mod common;
#[path = "common/raw_ws.rs"]
mod raw_ws;

use common::*;
use huddle::client::ClientError;
use huddle::core::{Reply, Request};
use huddle::limits::Limits;
use huddle::wire::ServerMessage;
use raw_ws::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Pings per bystander batch: sent back to back, then their replies read in order.
const BYSTANDER_BATCH: usize = 8;

/// Another user's connection, pinging throughout a test; see the file's paragraph.
struct Bystander {
    stop: Arc<AtomicBool>,
    round_trips: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Bystander {
    /// Connects as `user` and returns once its first batch came back (the "before").
    fn start(server: &TestServer, user: &str) -> Bystander {
        let mut client = server.connect(user);
        let stop = Arc::new(AtomicBool::new(false));
        let round_trips = Arc::new(AtomicUsize::new(0));
        let (stop_flag, counter) = (stop.clone(), round_trips.clone());
        let thread = std::thread::spawn(move || loop {
            let cids: Vec<_> =
                (0..BYSTANDER_BATCH).map(|_| client.send(&Request::Ping).expect("bystander sends")).collect();
            for cid in cids {
                match client.next(WAIT).expect("a bystander reply") {
                    ServerMessage::Reply { cid: got, result } => {
                        assert_eq!(got, cid, "bystander replies arrive in order");
                        assert_eq!(result, Ok(Reply::Pong));
                    }
                    other => panic!("the bystander got {other:?}"),
                }
            }
            counter.fetch_add(BYSTANDER_BATCH, Ordering::Release);
            // One more batch after the stop (the "after"), then done.
            if stop_flag.load(Ordering::Acquire) {
                return;
            }
            // Pacing: 200 pings a second, under requests_per_second_max.
            std::thread::sleep(Duration::from_millis(40));
        });
        let bystander = Bystander { stop, round_trips, thread };
        let deadline = Instant::now() + WAIT;
        while bystander.round_trips.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline && !bystander.thread.is_finished(), "the bystander never got going");
            std::thread::yield_now();
        }
        bystander
    }

    /// Stops after one more batch; panics if any reply went missing or out of order.
    fn finish(self) -> usize {
        let before = self.round_trips.load(Ordering::Acquire);
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("the bystander was served throughout");
        let total = self.round_trips.load(Ordering::Acquire);
        assert!(total > before, "a batch after the attack");
        total
    }
}

fn refused_status(result: Result<huddle::client::Client, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { status, body }) => (status, body),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got a session"),
    }
}

/// SPEC C-2a: one session more than `sessions_per_user_max` is refused before the upgrade with
/// 429 and a reason; a session that ends makes room again.
#[test]
fn c2a_one_session_more_than_sessions_per_user_max_gets_429() {
    let server = TestServer::with_limits(Limits { sessions_per_user_max: 3, ..Limits::default() });
    let bystander = Bystander::start(&server, "bob");
    let mut alice: Vec<_> = (0..3).map(|_| server.connect("alice")).collect();
    let (status, body) = refused_status(server.try_connect(&token("alice")));
    assert_eq!(status, 429);
    assert!(body.contains("sessions_per_user_max 3"), "{body}");
    let stats = server.wait_stats("the refusal counted", |s| s.sessions_per_user_refused_total == 1);
    assert_eq!(stats.sessions_open, 4, "three of alice's and the bystander's");
    alice.pop().unwrap().close();
    server.wait_stats("alice's session gone", |s| s.sessions_open == 3);
    alice.push(server.connect("alice"));
    assert!(bystander.finish() > 0);
}

/// A burst of parallel upgrades of one user cannot pass the cap: each is decided in the same
/// loop step that connects it, so exactly `sessions_per_user_max` succeed.
#[test]
fn c2a_a_burst_of_parallel_upgrades_of_one_user_cannot_pass_the_cap() {
    const ATTEMPTS: usize = 16;
    let server = TestServer::with_limits(Limits { sessions_per_user_max: 3, ..Limits::default() });
    let bystander = Bystander::start(&server, "bob");
    let start = Arc::new(Barrier::new(ATTEMPTS));
    let attempts: Vec<_> = (0..ATTEMPTS)
        .map(|_| {
            let (addr, start) = (server.addr.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                huddle::client::Client::connect(&addr, &token("carol"), Default::default())
            })
        })
        .collect();
    let results: Vec<_> = attempts.into_iter().map(|t| t.join().unwrap()).collect();
    let sessions = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(sessions, 3, "exactly the cap got sessions");
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_eq!(refused_status(result).0, 429);
    }
    server.wait_stats("every refusal counted", |s| s.sessions_per_user_refused_total == (ATTEMPTS - 3) as u64);
    bystander.finish();
}

const BINARY_MORE: u8 = 0x02;
const CONTINUATION_MORE: u8 = 0x00;
const CONTINUATION_FIN: u8 = 0x80;
const PING: u8 = 0x89;

/// Reads frames until the server's close frame; returns its code and reason.
fn close_frame_of(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => return (u16::from(frame.code), frame.reason.to_string()),
            Ok(tungstenite::Message::Close(None)) => panic!("a close frame without a reason"),
            Ok(_) => continue, // pongs and anything queued before the close
            Err(e) => panic!("the stream ended without a close frame: {e}"),
        }
    }
}

/// Issue 14, item 3: one empty binary frame without FIN, then empty continuation frames without
/// end. The frame past `message_fragments_max` closes the connection with 1008 naming the limit.
#[test]
fn endless_continuation_frames_are_closed_at_message_fragments_max() {
    let server = TestServer::start();
    let bystander = Bystander::start(&server, "bob");
    let mut ws = raw_ws(&server, "mallory");
    let mut flood = masked_frame(BINARY_MORE, b"");
    for _ in 0..10_000 {
        flood.extend(masked_frame(CONTINUATION_MORE, b""));
    }
    // The server may close before it has read all of it; a failed write is part of the story.
    let _ = std::io::Write::write_all(ws.get_mut(), &flood);
    assert_eq!(close_frame_of(&mut ws), (1008, "message_fragments_max exceeded".to_owned()));
    let stats = server.wait_stats("mallory gone", |s| s.sessions_open == 1);
    assert_eq!(stats.frame_limited_total, 1);
    bystander.finish();
}

/// A flooder that ignores the close and keeps sending costs the server no more than a bounded
/// discard: the server stops reading it, so its writes stall on a full TCP window (they would
/// keep flowing, and cost the server a `recv` per 2 KiB, if it read on until the linger ends).
#[test]
fn a_flooder_that_keeps_sending_after_its_close_is_no_longer_read() {
    let server = TestServer::start();
    let bystander = Bystander::start(&server, "bob");
    let mut ws = raw_ws(&server, "mallory");
    let mut start = masked_frame(BINARY_MORE, b"");
    for _ in 0..100 {
        start.extend(masked_frame(CONTINUATION_MORE, b""));
    }
    std::io::Write::write_all(ws.get_mut(), &start).unwrap();
    assert_eq!(close_frame_of(&mut ws), (1008, "message_fragments_max exceeded".to_owned()));
    let socket = ws.get_mut();
    socket.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk: Vec<u8> = (0..10_000).flat_map(|_| masked_frame(CONTINUATION_MORE, b"")).collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    let error = loop {
        assert!(Instant::now() < deadline, "the server kept reading the flood");
        if let Err(e) = std::io::Write::write_all(socket, &chunk) {
            break e;
        }
    };
    assert!(
        matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        "the writes stall on a full window before the linger drops the connection: {error}"
    );
    bystander.finish();
}

/// A message whose first fragment came and whose last never does, while the client keeps
/// answering keepalive pings (so the keepalive never drops it): closed when it has been
/// incomplete for `message_assembly_ms_max`.
#[test]
fn a_message_left_incomplete_is_closed_at_message_assembly_ms_max() {
    let server = TestServer::with_limits(Limits { message_assembly_ms_max: 300, ..Limits::default() });
    let bystander = Bystander::start(&server, "bob");
    let mut ws = raw_ws(&server, "mallory");
    let start: Vec<u8> = [masked_frame(BINARY_MORE, b"ab"), masked_frame(CONTINUATION_MORE, b"cd")].concat();
    std::io::Write::write_all(ws.get_mut(), &start).unwrap();
    assert_eq!(close_frame_of(&mut ws), (1008, "message_assembly_ms_max exceeded".to_owned()));
    server.wait_stats("mallory gone", |s| s.sessions_open == 1 && s.frame_limited_total == 1);
    bystander.finish();
}

/// Pings faster than `extra_frames_per_second_max` allows (the client reads its pongs, so the
/// output limit never trips): closed with 1008 naming the limit.
#[test]
fn a_ping_flood_is_closed_at_extra_frames_per_second_max() {
    let limits = Limits::default();
    let server = TestServer::with_limits(limits.clone());
    let bystander = Bystander::start(&server, "bob");
    let mut ws = raw_ws(&server, "mallory");
    let pings: Vec<u8> =
        (0..limits.extra_frames_burst_max as usize * 2).flat_map(|_| masked_frame(PING, b"p")).collect();
    let _ = std::io::Write::write_all(ws.get_mut(), &pings);
    assert_eq!(close_frame_of(&mut ws), (1008, "extra_frames_per_second_max exceeded".to_owned()));
    server.wait_stats("mallory gone", |s| s.sessions_open == 1 && s.frame_limited_total == 1);
    bystander.finish();
}

/// A client that fragments within the limits is served: a request in three fragments with a
/// ping between them gets its reply, and a request in `message_fragments_max` frames too.
#[test]
fn a_request_fragmented_within_the_limits_is_answered() {
    let limits = Limits::default();
    let server = TestServer::with_limits(limits.clone());
    let mut ws = raw_ws(&server, "alice");
    let mut encoder = huddle::wire::Encoder::new();
    for (cid, pieces) in [(7u64, 3usize), (8, limits.message_fragments_max)] {
        let request = encoder.request(huddle::core::Cid(cid), &Request::Ping).to_vec();
        // `pieces` frames (some may carry nothing), with a ping after the first.
        let mut frames = Vec::new();
        for i in 0..pieces {
            let piece = &request[i * request.len() / pieces..(i + 1) * request.len() / pieces];
            let first = match (i, i + 1 == pieces) {
                (0, _) => BINARY_MORE,
                (_, false) => CONTINUATION_MORE,
                (_, true) => CONTINUATION_FIN,
            };
            frames.extend(masked_frame(first, piece));
            if i == 0 {
                frames.extend(masked_frame(PING, b"between"));
            }
        }
        std::io::Write::write_all(ws.get_mut(), &frames).unwrap();
        let reply = loop {
            match ws.read().expect("the reply") {
                tungstenite::Message::Binary(bytes) => break bytes,
                tungstenite::Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        let verifier = huddle::wire::verifier_options(1 << 20);
        match huddle::wire::decode_server_message(&reply, &verifier).unwrap() {
            ServerMessage::Reply { cid: got, result } => {
                assert_eq!((got, result), (huddle::core::Cid(cid), Ok(Reply::Pong)), "{pieces} fragments");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(server.stats().frame_limited_total, 0);
}

/// A TCP connection to `server` from the loopback address `source` (127.0.0.2, …), so a test can
/// play a second host: Linux routes all of 127.0.0.0/8 to the loopback device.
#[cfg(target_os = "linux")]
fn connect_from(source: std::net::Ipv4Addr, server: &str) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let server: std::net::SocketAddrV4 = server.parse().expect("an IPv4 test server");
    let sockaddr = |addr: std::net::SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let (local, remote) = (sockaddr(std::net::SocketAddrV4::new(source, 0)), sockaddr(server));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it is handed to
    // TcpStream (which then closes it); the addresses are valid sockaddr_in values on the stack.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let bound = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(bound, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let connected = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
        assert_eq!(connected, 0, "connect from {source}: {}", std::io::Error::last_os_error());
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }
}

/// The upgrade of a connection from `source`: a session, or the error that ended it.
#[cfg(target_os = "linux")]
fn upgrade_from(
    source: std::net::Ipv4Addr,
    server: &TestServer,
    user: &str,
) -> Result<tungstenite::WebSocket<std::net::TcpStream>, String> {
    let stream = connect_from(source, &server.addr);
    let url = format!("ws://{}/ws?token={}", server.addr, token(user));
    match tungstenite::client::client(url, stream) {
        Ok((mut ws, _)) => match ws.read() {
            Ok(tungstenite::Message::Binary(_)) => Ok(ws),
            other => Err(format!("no welcome: {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Issue 14, item 5: one address may hold `connections_per_ip_max` connections; the next is
/// closed at once and counted, while other addresses connect as before.
#[cfg(target_os = "linux")]
#[test]
fn connections_from_one_address_are_bounded_by_connections_per_ip_max() {
    let attacker = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let server = TestServer::with_limits(Limits { connections_per_ip_max: 3, ..Limits::default() });
    let bystander = Bystander::start(&server, "bob"); // from 127.0.0.1
    let mut held: Vec<_> = (0..3).map(|i| upgrade_from(attacker, &server, &format!("m{i}")).unwrap()).collect();
    let refused = upgrade_from(attacker, &server, "m3");
    assert!(refused.is_err(), "a fourth connection from one address is closed");
    server.wait_stats("the refusal counted", |s| s.refused_ip_connections_total == 1);
    let mut other = server.connect("carol"); // another address is not affected
    assert_eq!(other.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    // Closing one makes room for the next.
    drop(held.pop());
    server.wait_stats("one of the attacker's gone", |s| s.connections_open == 4);
    held.push(upgrade_from(attacker, &server, "m4").expect("room again"));
    bystander.finish();
}

/// Issue 14, item 5: an address opening connections faster than
/// `handshakes_per_ip_per_second_max` has the excess closed at once, counted; other addresses
/// connect as before.
#[cfg(target_os = "linux")]
#[test]
fn handshakes_from_one_address_are_bounded_by_handshakes_per_ip_per_second_max() {
    const ATTEMPTS: u64 = 40;
    let attacker = std::net::Ipv4Addr::new(127, 0, 0, 3);
    let server = TestServer::with_limits(Limits { handshakes_per_ip_per_second_max: 5, ..Limits::default() });
    let bystander = Bystander::start(&server, "bob");
    let before = server.stats();
    for _ in 0..ATTEMPTS {
        drop(connect_from(attacker, &server.addr));
    }
    // Forty connections in far less than the seven seconds five a second would need.
    let stats = server.wait_stats("every attempt accepted or refused", |s| {
        s.accepted_total - before.accepted_total + s.refused_ip_handshakes_total == ATTEMPTS
    });
    assert!(stats.refused_ip_handshakes_total > 0, "{stats:?}");
    let mut other = server.connect("carol");
    assert_eq!(other.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    bystander.finish();
}
