//! Issue 14's holes, closed, over real loopback sockets: one client (or one user, or one address)
//! trying to hurt everyone else while staying inside every other limit. Each test runs a
//! bystander on its own connection throughout: it pings in batches before, during and after the
//! attack, and every one of its replies must arrive, in order (no time is asserted: its round
//! trip belongs in the bench). The offender gets the documented answer: a close frame with code
//! 1008 and a reason naming the limit, an HTTP 429 before the upgrade, or a connection closed at
//! once; each refusal is counted in the server's stats. Waits are deadlines on stats or frames.

mod common;

use common::*;
use huddle::client::ClientError;
use huddle::core::{Reply, Request};
use huddle::limits::Limits;
use huddle::wire::ServerMessage;
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
