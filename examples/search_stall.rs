//! Does one connection's searching slow everyone else down? (issue 14 item 1; README
//! "Search"). Starts a server on `127.0.0.1:0` in this process with the default limits, fills it
//! with `--parties` parties (16,000 by default) labelled `{"n": i}`, then measures a bystander's
//! ping round trip, first alone, then while one attacker sends a search as fast as it is allowed
//! (`--rate`, 240 a second by default, under the 250 request limit), once per query:
//!
//! - `issue`: `label.n:>=0` written 64 times, the query of the report;
//! - `ranges`: 64 different ranges `label.n:>=0 label.n:>=1 …`, the costliest shape this
//!   project's calibration found within the query limits (`cargo bench --bench search`);
//! - or any `--query TEXT`.
//!
//! A control phase comes first, the attacker sending pings at the same rate: on a shared
//! machine the scheduler alone adds to a round trip whenever another thread is busy, and that
//! should not be blamed on searching. For each phase it prints the bystander's round trip (p50,
//! p90, p99, max) and its ratio to the idle phase, what the attacker's requests got back, and
//! the CPU time of the server's loop thread per second. Every reply of both clients is
//! awaited; a missing one fails the run.
//!
//!     cargo run --release --example search_stall -- [--parties N] [--rate R] [--seconds S]
//!         [--query TEXT]...
//!
//! Linux only (the loop's CPU time comes from `/proc/self/task`).

use huddle::auth::{self, Claims, TokenKey};
use huddle::client::Client;
use huddle::core::{ConnectOptions, PartyReply, PartyRequest, Reply, Request};
use huddle::limits::Limits;
use huddle::net::{Server, ServerConfig};
use huddle::wire::ServerMessage;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "search-stall-key";

fn token(user: &str) -> String {
    let expires_at_unix_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() + 3600;
    auth::mint(&Claims { user_id: user.into(), username: user.into(), expires_at_unix_s }, &TokenKey::new(KEY))
}

fn connect(addr: &str, user: &str) -> Client {
    Client::connect(addr, &token(user), ConnectOptions::default()).unwrap_or_else(|e| panic!("connect {user}: {e}"))
}

/// CPU time (user + system, in clock ticks) of this process's thread named `name`.
fn thread_ticks(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            return Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?);
        }
    }
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The bystander pings every 5 ms (one in flight) and records each round trip in the current
/// phase's list until `stop`.
fn bystander(mut client: Client, phase: Arc<Mutex<Vec<f64>>>, stop: Arc<AtomicBool>) -> u64 {
    let mut pings = 0;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        match client.request(&Request::Ping) {
            Ok(Ok(Reply::Pong)) => {}
            other => panic!("the bystander's ping got {other:?}"),
        }
        pings += 1;
        phase.lock().expect("not poisoned").push(start.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(5));
    }
    pings
}

/// Sends `query` at `rate` a second for `seconds`, reading replies as they come, then waits for
/// the last; returns the outcomes ("ok" or the error code) and their counts.
fn attack(client: &mut Client, query: Option<&str>, rate: u32, seconds: u64) -> BTreeMap<String, u64> {
    let request = match query {
        Some(query) => {
            Request::Party(PartyRequest::Search { query: query.into(), open: None, limit: Some(100), cursor: None })
        }
        None => Request::Ping,
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut outcomes = BTreeMap::new();
    let note = |message: ServerMessage, outcomes: &mut BTreeMap<String, u64>| match message {
        ServerMessage::Reply { result: Ok(Reply::Party(PartyReply::SearchResult { .. }) | Reply::Pong), .. } => {
            *outcomes.entry("ok".to_owned()).or_default() += 1
        }
        ServerMessage::Reply { result: Err(error), .. } => {
            *outcomes.entry(format!("{:?}", error.code)).or_default() += 1
        }
        other => panic!("the attacker got {other:?}"),
    };
    while Instant::now() < end {
        let next = start + interval * sent as u32;
        let now = Instant::now();
        if now >= next {
            client.send(&request).expect("send a search");
            sent += 1;
            continue;
        }
        match client.next(next - now) {
            Ok(message) => {
                received += 1;
                note(message, &mut outcomes);
            }
            Err(huddle::client::ClientError::Timeout(_)) => {}
            Err(e) => panic!("the attacker's connection failed: {e}"),
        }
    }
    while received < sent {
        let message = client.next(Duration::from_secs(30)).expect("every search gets its reply");
        received += 1;
        note(message, &mut outcomes);
    }
    outcomes
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut parties, mut rate, mut seconds) = (16_000usize, 240u32, 10u64);
    let mut queries: Vec<(String, String)> = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--parties" => parties = value().parse().unwrap_or(parties),
            "--rate" => rate = value().parse().unwrap_or(rate),
            "--seconds" => seconds = value().parse().unwrap_or(seconds),
            "--query" => queries.push(("query".into(), value())),
            other => {
                eprintln!("unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    if queries.is_empty() {
        let issue = vec!["label.n:>=0"; 64].join(" ");
        let ranges = (0..64).map(|i| format!("label.n:>={i}")).collect::<Vec<_>>().join(" ");
        queries = vec![("issue".into(), issue), ("ranges".into(), ranges)];
    }

    let limits = Limits::default();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        limits: limits.clone(),
        token_key: TokenKey::new(KEY),
        admin: None,
        history_file: None,
        name_deny_list: None,
    };
    let server = Server::bind(config).expect("bind 127.0.0.1:0");
    let handle = server.handle();
    let addr = handle.local_addr().to_string();
    // At most 15 bytes: Linux truncates thread names there.
    let loop_thread = "stall-server";
    let server_thread =
        std::thread::Builder::new().name(loop_thread.into()).spawn(move || server.run()).expect("spawn");

    // The parties, `parties_per_session_max` per session; the sessions stay connected.
    let started = Instant::now();
    let per_session = limits.parties_per_session_max;
    let mut owners = Vec::new();
    for s in 0..parties.div_ceil(per_session) {
        let mut owner = connect(&addr, &format!("owner-{s}"));
        for i in s * per_session..((s + 1) * per_session).min(parties) {
            let label = format!(r#"{{"n":{i}}}"#);
            match owner.party_create(true, 8, &label, false) {
                Ok(Ok(_)) => {}
                other => panic!("create party {i}: {other:?}"),
            }
        }
        owners.push(owner);
    }
    eprintln!("{parties} parties in {:.1} s", started.elapsed().as_secs_f64());

    let phase = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let (client, phase, stop) = (connect(&addr, "bystander"), phase.clone(), stop.clone());
        std::thread::spawn(move || bystander(client, phase, stop))
    };
    let mut attacker = connect(&addr, "attacker");
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let measure = |what: &str, run: &mut dyn FnMut() -> BTreeMap<String, u64>| {
        std::thread::sleep(Duration::from_millis(500)); // settle; not measured
        phase.lock().expect("not poisoned").clear();
        let (ticks, at) = (thread_ticks(loop_thread).unwrap_or(0), Instant::now());
        let outcomes = run();
        let cpu = (thread_ticks(loop_thread).unwrap_or(0) - ticks) as f64 / ticks_per_s / at.elapsed().as_secs_f64();
        let mut rtts = std::mem::take(&mut *phase.lock().expect("not poisoned"));
        rtts.sort_by(f64::total_cmp);
        (what.to_owned(), rtts, cpu, outcomes)
    };
    let mut phases = vec![measure("idle", &mut || {
        std::thread::sleep(Duration::from_secs(seconds));
        BTreeMap::new()
    })];
    // The control: the attacker sends pings at the same rate, so what the machine's scheduling
    // adds to the bystander's round trip (this project's machines are shared) shows apart from
    // what searching adds.
    phases.push(measure("pings", &mut || attack(&mut attacker, None, rate, seconds)));
    for (name, query) in &queries {
        phases.push(measure(name, &mut || attack(&mut attacker, Some(query), rate, seconds)));
    }
    stop.store(true, Ordering::Relaxed);
    let pings = pinger.join().expect("the bystander ran");

    let idle = phases[0].1.clone();
    println!("bystander round trip in µs ({pings} pings, every 5 ms); attacker: one search at {rate}/s");
    println!(
        "{:<8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}  loop CPU  attacker's replies",
        "phase", "pings", "p50", "p90", "p99", "max", "p50 ×", "p99 ×"
    );
    for (name, rtts, cpu, outcomes) in &phases {
        let p = |q| percentile(rtts, q);
        println!(
            "{name:<8} {:>6} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>7.2} {:>7.2}  {:>7.1}%  {outcomes:?}",
            rtts.len(),
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0),
            p(0.5) / percentile(&idle, 0.5),
            p(0.99) / percentile(&idle, 0.99),
            cpu * 100.0,
        );
    }
    drop(owners);
    handle.shutdown();
    server_thread.join().expect("server thread").expect("server ran");
    ExitCode::SUCCESS
}
