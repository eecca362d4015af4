//! The load harness behind `huddle-load`: drives a running huddle server over loopback with
//! many WebSocket sessions on mio (one event loop per worker), measures what it delivers and
//! how late, and reports a table or one JSON object.
//!
//! Scenarios (see [`Scenario`]): `fanout`, `game`, `churn`, `status`, `idle`, `calibrate`,
//! `sweep`. Latency is measured open loop: every message carries the time it was *meant* to be
//! sent, so a stalled sender or server shows up in the latency of every message it delayed.
//!
//! # Beside the floor
//!
//! The fan-out family (`fanout`, `game`, `sweep`) runs `--against huddle`, `floor` or `both`.
//! The floor (`floor.rs`) is a raw-TCP fan-out server of huddle's loop shape with no WebSocket
//! and no encoding, started by the harness as a pinned process of its own (the hidden
//! `floor-server` subcommand) and killed at the end; the same sessions code drives it with the
//! same schedule, connections, parties and payload, only the framing differs. `both` measures
//! huddle and then the floor in one invocation and reports each figure with its ratio: what
//! huddle costs above moving the same bytes through the kernel on this machine (SPEC §7).
//!
//! Towards huddle the sessions speak FlatBuffers or, with `--format json` (fanout and sweep),
//! Nakama's JSON mode as a Nakama SDK does (SPEC K-1); the floor keeps its raw framing either way.
//!
//! Every report also says whether the harness itself was the bottleneck (`watch.rs`: its loop's
//! busy share, its send lag, bytes left unread in its sockets) and whether queues grew over
//! the window (outstanding deliveries at the end against the start).
//!
//! `--processes P` spreads connections over P worker processes (the binary re-executes itself
//! with `--worker I/P`). Workers set up, print `READY`, wait for `GO <start_ns>` on stdin, run,
//! and print one `REPORT {json}` line with their counts and serialized latency histogram; the
//! parent merges histograms and sums counts. With one process the worker runs in a thread of
//! the caller, so tests exercise the same code path. Every run is bounded by `--duration`, a
//! drain deadline and connect deadlines, and stops by itself.
//!
//! # What this crate owns, and what it takes from `huddle`
//!
//! This crate (`huddle-load`, in `load/` of the workspace) owns everything about generating load
//! and measuring it; the server library carries none of it:
//!
//! - this file: the command line ([`Options`], [`USAGE`]), the run ([`run`]), worker processes
//!   and the merged [`Report`];
//! - `scenarios.rs`: each scenario's worker side; `fleet.rs`: the non-blocking WebSocket client
//!   connections on one mio `Poll`; [`pace`]: the open-loop schedule; [`hist`]: latency
//!   histograms; [`procfs`]: clocks and `/proc` samples of the server;
//! - `calibrate.rs`: the raw-TCP round-trip floor (no huddle at all); `floor.rs`: the raw-TCP
//!   fan-out floor server; `sweep.rs`: the rate sweep and its SVG plot; `report.rs`: the
//!   report, its table and JSON; `watch.rs`: the harness's watch on its own loop.
//!
//! It speaks huddle's protocol only through the server crate's public API, never a copy:
//! [`huddle::auth`] to resolve the server's key and mint tokens, [`huddle::core`]'s request and
//! event types, [`huddle::wire`] to encode requests and decode replies and events (the hot
//! receive path reads the generated `huddle::wire::fb` tables directly, so `flatbuffers` is pinned
//! to the server's exact version), `huddle::net::frame::binary` to size an event's frame, and
//! `huddle::os::pin_current_thread` to pin the calibrate echo thread.
//!
//! # Linux only
//!
//! The harness samples the server through `/proc` and opens its connections with Linux socket
//! options (`SOCK_NONBLOCK`, `IP_BIND_ADDRESS_NO_PORT` to spread them over 127.0.0.x sources),
//! so on any other system this library is empty and the binary says so. That keeps `cargo
//! build` and `cargo test` at the workspace root working where the server itself builds (macOS,
//! Windows) without a `cfg` on every line here.
#![cfg(target_os = "linux")]

mod calibrate;
mod fleet;
mod floor;
pub mod hist;
pub mod pace;
pub mod procfs;
mod report;
mod scenarios;
mod sweep;
mod watch;

pub use report::{HarnessFigures, Report};
pub use watch::LoopFigures;

use floor::FloorProcess;
use hist::Latency;
use huddle::auth::{self, TokenKey};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const USAGE: &str = "\
huddle-load: load harness for a huddle server on loopback

USAGE:
    huddle-load <SCENARIO> [OPTIONS]

SCENARIOS:
    fanout      parties of --party-size; every member sends --payload bytes of party data;
                --rate messages/s in total (0 = each sender keeps --window requests in flight)
    game        the game shape: --connections [10000] sessions in parties of --party-size [4],
                each sending --payload [64] bytes --hz [20] times a second, fire-and-forget,
                against huddle and then the floor (--against both) unless told otherwise
    churn       pairs cycle create -> join -> leave -> close; --rate operations/s (0 = back to back)
    status      sessions follow --follows others and change statuses at --rate updates/s
    idle        --connections sessions with a status and --follows follows each, held for
                --duration; reports the server's RSS per connection (needs --server-pid)
    calibrate   raw TCP ping-pong on loopback with --payload-sized messages: the round-trip floor
    sweep       fanout at increasing rates, one sustained step of --duration each (8 s or more
                for figures), until one does not hold (p99, errors, losses, delivery short of
                the offer, growing queues); reports the highest rate that held; writes --svg

COMMON OPTIONS:
    --url URL                 ws://127.0.0.1:7350/ws (loopback only)
    --connections N           sessions in total [default: 400]
    --duration S              measured seconds [default: 10]
    --warmup S                seconds before measuring [default: 2]
    --processes P             worker processes sharing the connections [default: 1]
    --server-pid PID          sample the server's CPU time and RSS from /proc
    --json                    one JSON object on stdout instead of the table
    --token-key KEY           HS256 key (else $HUDDLE_TOKEN_KEY, else --key-file / the default key file)
    --key-file PATH           the server's key file
    --conns-per-source N      connections per source address before moving on to the next
                              127.0.0.x (2, 3, ...) [default: 25000]
    --server-rps-max N        the server's requests_per_second_max, to refuse rates it would
                              throttle [default: 250]
    --drain S                 seconds to wait for in-flight messages after the run [default: 2]
    --quiet                   print nothing while measuring (no progress line wakes the harness)
    --verbose                 also the harness's loop-turn durations, and when in the window the
                              longest turn and the slowest delivery happened

FANOUT / GAME / SWEEP:
    --party-size K [4]  --payload BYTES [64]  --rate R [10000]  --window W [8]
    --against huddle|floor|both
                              huddle at --url; the harness's own raw-TCP floor server; or huddle,
                              then the floor, each figure with its huddle/floor ratio
                              [default: huddle; game: both]
    --floor-cpu N             pin the floor server to CPU N [default: the CPU of --server-pid, else 0]
    --mode ack|fire           ack: each message gets a reply; fire: sent with cid 0, no reply on
                              success (SPEC P-9) [default: ack; game: fire]
    --fire-and-forget         the same as --mode fire
    --format flatbuffers|json fanout, sweep: huddle's sessions speak FlatBuffers, or Nakama's
                              JSON mode (format=json: party_data_send text frames, with a cid
                              under --mode ack and without one under --mode fire; party_data
                              deliveries) [default: flatbuffers]. The floor is format-independent:
                              it keeps its raw framing whatever --format says
    --hz H                    game: messages per session per second [20]; the rate is connections x H
    --rates R1,R2,...         sweep: explicit rates, else --rate-start [20000] times --rate-factor [1.5]
    --steps-max N [12]  --p99-max-us US [20000]  --svg PATH [sweep.svg]
STATUS / IDLE:
    --follows F [10]
CALIBRATE:
    --echo-cpu N              pin the echo thread to CPU N
";

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scenario {
    Fanout,
    Game,
    Churn,
    Status,
    Idle,
    Calibrate,
    Sweep,
    /// Hidden: the floor server process the harness starts (`floor.rs`).
    FloorServer,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Game => "game",
            Scenario::Churn => "churn",
            Scenario::Status => "status",
            Scenario::Idle => "idle",
            Scenario::Calibrate => "calibrate",
            Scenario::Sweep => "sweep",
            Scenario::FloorServer => "floor-server",
        }
    }

    /// Party data fan-out: the scenarios that can run against the floor.
    pub fn is_fanout(self) -> bool {
        matches!(self, Scenario::Fanout | Scenario::Game | Scenario::Sweep)
    }
}

/// The server under test.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Against {
    Huddle,
    Floor,
    /// huddle, then the floor, in one invocation (the parent's choice; a worker measures one).
    Both,
}

impl Against {
    pub fn name(self) -> &'static str {
        match self {
            Against::Huddle => "huddle",
            Against::Floor => "floor",
            Against::Both => "both",
        }
    }
}

/// How party data is sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SendMode {
    /// With a cid: every message gets its reply.
    Ack,
    /// With cid 0: no reply on success, a refusal comes back as an error event (SPEC P-9).
    Fire,
}

impl SendMode {
    pub fn name(self) -> &'static str {
        match self {
            SendMode::Ack => "ack",
            SendMode::Fire => "fire",
        }
    }
}

/// The wire format of the sessions towards huddle (`--format`). The floor has one framing of
/// its own whatever the format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// huddle's own protocol: binary WebSocket frames, one FlatBuffers envelope each.
    FlatBuffers,
    /// Nakama's realtime JSON (SPEC K-1), as a Nakama SDK connects (`format=json`): text frames,
    /// one `rtapi.Envelope` each; fanout and sweep only.
    Json,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::FlatBuffers => "flatbuffers",
            Format::Json => "json",
        }
    }
}

/// Everything a run needs, parsed from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub scenario: Scenario,
    pub url: String,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain: Duration,
    pub processes: usize,
    pub server_pid: Option<u32>,
    pub json: bool,
    pub token_key: Option<String>,
    pub key_file: Option<PathBuf>,
    pub conns_per_source: usize,
    pub server_rps_max: u64,
    pub party_size: usize,
    pub payload_bytes: usize,
    pub rate: u64,
    pub window: usize,
    pub follows: usize,
    pub rates: Vec<u64>,
    pub rate_start: u64,
    pub rate_factor: f64,
    pub steps_max: usize,
    pub p99_max_us: f64,
    pub svg: PathBuf,
    pub echo_cpu: Option<usize>,
    pub against: Against,
    pub mode: SendMode,
    /// huddle's sessions' wire format (the floor ignores it).
    pub format: Format,
    /// The CPU the floor server is pinned to (and, for `floor-server`, its own).
    pub floor_cpu: Option<usize>,
    /// Internal: where the floor listens (workers), or where to listen (`floor-server`).
    pub floor_addr: Option<SocketAddr>,
    /// `game`: messages per session per second.
    pub hz: u64,
    pub verbose: bool,
    pub quiet: bool,
    /// Internal: this process is worker `I` of `P`.
    pub worker: Option<(usize, usize)>,
    /// The executable to start workers from (default: this one). Tests point it at the built
    /// `huddle-load` binary.
    pub worker_exe: Option<PathBuf>,
    /// The raw arguments, passed on to worker processes.
    pub args: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let scenario = match args.first().map(String::as_str) {
            Some("fanout") => Scenario::Fanout,
            Some("game") => Scenario::Game,
            Some("floor-server") => Scenario::FloorServer,
            Some("churn") => Scenario::Churn,
            Some("status") => Scenario::Status,
            Some("idle") => Scenario::Idle,
            Some("calibrate") => Scenario::Calibrate,
            Some("sweep") => Scenario::Sweep,
            Some(other) => return Err(format!("unknown scenario {other:?}")),
            None => return Err("a scenario is required".into()),
        };
        let game = scenario == Scenario::Game;
        let mut o = Options {
            scenario,
            url: "ws://127.0.0.1:7350/ws".into(),
            connections: if game { 10_000 } else { 400 },
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            drain: Duration::from_secs(2),
            processes: 1,
            server_pid: None,
            json: false,
            token_key: None,
            key_file: None,
            conns_per_source: 25_000,
            server_rps_max: 250,
            party_size: 4,
            payload_bytes: 64,
            rate: 10_000,
            window: 8,
            follows: 10,
            rates: Vec::new(),
            rate_start: 20_000,
            rate_factor: 1.5,
            steps_max: 12,
            p99_max_us: 20_000.0,
            svg: PathBuf::from("sweep.svg"),
            echo_cpu: None,
            against: if game { Against::Both } else { Against::Huddle },
            mode: if game { SendMode::Fire } else { SendMode::Ack },
            format: Format::FlatBuffers,
            floor_cpu: None,
            floor_addr: None,
            hz: 20,
            verbose: false,
            quiet: false,
            worker: None,
            worker_exe: None,
            args: args.to_vec(),
        };
        let mut rate_given = false;
        let mut i = 1;
        while i < args.len() {
            let (name, inline) = match args[i].split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (args[i].clone(), None),
            };
            let flag = match name.as_str() {
                "--json" => Some(&mut o.json),
                "--verbose" => Some(&mut o.verbose),
                "--quiet" => Some(&mut o.quiet),
                _ => None,
            };
            if let Some(flag) = flag {
                *flag = true;
                i += 1;
                continue;
            }
            if name == "--fire-and-forget" {
                o.mode = SendMode::Fire;
                i += 1;
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| format!("{name} needs a value"))?
                }
            };
            i += 1;
            let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{name}: not a number: {v}"));
            let secs = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}: not a number of seconds: {v}"))
            };
            match name.as_str() {
                "--url" => o.url = value,
                "--connections" => o.connections = num(&value)? as usize,
                "--duration" => o.duration = secs(&value)?,
                "--warmup" => o.warmup = secs(&value)?,
                "--drain" => o.drain = secs(&value)?,
                "--processes" => o.processes = num(&value)?.max(1) as usize,
                "--server-pid" => o.server_pid = Some(num(&value)? as u32),
                "--token-key" => o.token_key = Some(value),
                "--key-file" => o.key_file = Some(PathBuf::from(value)),
                "--conns-per-source" => o.conns_per_source = num(&value)?.max(1) as usize,
                "--server-rps-max" => o.server_rps_max = num(&value)?,
                "--party-size" => o.party_size = num(&value)? as usize,
                "--payload" => o.payload_bytes = num(&value)? as usize,
                "--rate" => {
                    o.rate = num(&value)?;
                    rate_given = true;
                }
                "--window" => o.window = num(&value)?.max(1) as usize,
                "--follows" => o.follows = num(&value)? as usize,
                "--rates" => {
                    o.rates = value.split(',').map(|r| num(r.trim())).collect::<Result<_, _>>()?;
                }
                "--rate-start" => o.rate_start = num(&value)?.max(1),
                "--rate-factor" => {
                    o.rate_factor = value
                        .parse::<f64>()
                        .ok()
                        .filter(|f| *f > 1.0)
                        .ok_or_else(|| format!("--rate-factor must be > 1: {value}"))?
                }
                "--steps-max" => o.steps_max = num(&value)? as usize,
                "--p99-max-us" => o.p99_max_us = num(&value)? as f64,
                "--svg" => o.svg = PathBuf::from(value),
                "--echo-cpu" => o.echo_cpu = Some(num(&value)? as usize),
                "--against" => {
                    o.against = match value.as_str() {
                        "huddle" => Against::Huddle,
                        "floor" => Against::Floor,
                        "both" => Against::Both,
                        _ => return Err(format!("--against huddle|floor|both, not {value:?}")),
                    }
                }
                "--mode" => {
                    o.mode = match value.as_str() {
                        "ack" => SendMode::Ack,
                        "fire" => SendMode::Fire,
                        _ => return Err(format!("--mode ack|fire, not {value:?}")),
                    }
                }
                "--format" => {
                    o.format = match value.as_str() {
                        "flatbuffers" => Format::FlatBuffers,
                        "json" => Format::Json,
                        _ => return Err(format!("--format flatbuffers|json, not {value:?}")),
                    }
                }
                "--floor-cpu" => o.floor_cpu = Some(num(&value)? as usize),
                "--floor-addr" => {
                    let addr: SocketAddr =
                        value.parse().map_err(|_| format!("--floor-addr: not an address: {value}"))?;
                    if !is_loopback(addr.ip()) {
                        return Err(format!("--floor-addr {addr}: loopback only"));
                    }
                    o.floor_addr = Some(addr);
                }
                "--hz" => o.hz = num(&value)?.max(1),
                "--worker" => {
                    let (w, p) = value.split_once('/').ok_or("--worker I/P")?;
                    o.worker = Some((num(w)? as usize, num(p)? as usize));
                }
                _ => return Err(format!("unknown option {name}")),
            }
        }
        if game && !rate_given {
            o.rate = o.connections as u64 * o.hz;
        }
        if o.party_size < 2 && o.scenario.is_fanout() {
            return Err("--party-size must be at least 2 (data is never echoed to its sender)".into());
        }
        if o.against != Against::Huddle && !o.scenario.is_fanout() {
            return Err("--against floor|both is for fanout, game and sweep".into());
        }
        if o.mode == SendMode::Fire && !o.scenario.is_fanout() {
            return Err("--mode fire is for fanout, game and sweep (party data)".into());
        }
        if o.format == Format::Json && !matches!(o.scenario, Scenario::Fanout | Scenario::Sweep) {
            return Err("--format json is for fanout and sweep".into());
        }
        if o.mode == SendMode::Fire && o.rate == 0 {
            return Err("--rate 0 keeps a window of requests awaiting replies: it needs --mode ack".into());
        }
        if o.party_size > 256 {
            return Err("--party-size must be at most 256".into());
        }
        if o.payload_bytes < 8 {
            return Err("--payload must be at least 8 bytes (the send timestamp)".into());
        }
        if o.connections == 0 {
            return Err("--connections must be positive".into());
        }
        Ok(o)
    }
}

/// Where the server is: checked to be on loopback.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

pub(crate) fn resolve_target(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| format!("--url must start with ws://: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/ws"),
    };
    let path = path.split('?').next().unwrap_or("/ws").to_owned();
    // IP literals and `localhost` only: resolving any other name would send a DNS query off
    // the machine before the loopback check could refuse it.
    let with_port = |a: &str| if a.ends_with(']') || !a.contains(':') { format!("{a}:80") } else { a.to_owned() };
    let addr: SocketAddr = match authority.strip_prefix("localhost") {
        Some("") => SocketAddr::from(([127, 0, 0, 1], 80)),
        Some(port) => format!("127.0.0.1{port}").parse().map_err(|e| format!("--url {url}: {e}"))?,
        None => with_port(authority)
            .parse()
            .map_err(|_| format!("--url {url}: give an IP address or localhost (names are not resolved)"))?,
    };
    if !is_loopback(addr.ip()) {
        return Err(format!("refusing {url}: huddle-load only targets loopback (127.0.0.0/8 or ::1)"));
    }
    Ok(Target { addr, host: authority.to_owned(), path })
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// The source address of global connection `g`: the kernel's choice (127.0.0.1 towards a
/// 127.0.0.1 server) while one address has ports enough, else 127.0.0.2, .3, … in blocks of
/// `conns_per_source`.
pub(crate) fn source_address(g: usize, total: usize, conns_per_source: usize) -> Option<Ipv4Addr> {
    if total <= conns_per_source {
        return None;
    }
    // Capped so that even one connection per source never leaves 127.0.0.0/8.
    let block = (g / conns_per_source.max(1)).min(0x00ff_fffd) as u32;
    Some(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + block))
}

pub(crate) fn load_key(o: &Options) -> Result<TokenKey, String> {
    let key_file = o.key_file.clone().unwrap_or_else(auth::default_key_file);
    let env = std::env::var(auth::KEY_ENV).ok();
    auth::load_or_create_key(o.token_key.as_deref(), env.as_deref(), &key_file)
        .map(|(key, _)| key)
        .map_err(|e| format!("token key file {}: {e}", key_file.display()))
}

/// What one worker measured.
#[derive(Default)]
pub struct WorkerResult {
    pub connections: u64,
    /// Messages (or operations) whose intended send time fell in the measured window.
    pub sent: u64,
    /// Deliveries (or replies) of those.
    pub delivered: u64,
    pub errors: u64,
    /// Deliveries still missing at the drain deadline.
    pub lost: u64,
    pub first_error: Option<String>,
    /// The worker's own CPU time during the window.
    pub harness_cpu_ns: u64,
    pub latency: Latency,
    /// The slowest delivery, and when (ms into the window) it was meant to be sent.
    pub latency_max_ns: u64,
    pub latency_max_at_ms: f64,
    /// How late the harness sent scheduled messages (actual minus intended send time): when
    /// this grows, the harness, not the server, is the bottleneck.
    pub send_lag: Latency,
    /// Outstanding deliveries (sent, neither delivered nor refused) at the window's end minus
    /// at its start.
    pub outstanding_growth: i64,
    /// Scheduled messages the worker never sent (its schedule ran out before it caught up).
    pub unsent: u64,
    /// Turns in which a connection's unwritten output was full, holding sends back: the server,
    /// not the harness, was not keeping up.
    pub blocked_turns: u64,
    /// The worker's watch on its own loop.
    pub watched: LoopFigures,
}

impl WorkerResult {
    fn to_line(&self) -> String {
        let w = &self.watched;
        let json = serde_json::json!({
            "connections": self.connections,
            "sent": self.sent,
            "delivered": self.delivered,
            "errors": self.errors,
            "lost": self.lost,
            "first_error": self.first_error,
            "harness_cpu_ns": self.harness_cpu_ns,
            "hist": self.latency.serialize(),
            "latency_max_ns": self.latency_max_ns,
            "latency_max_at_ms": self.latency_max_at_ms,
            "lag": self.send_lag.serialize(),
            "outstanding_growth": self.outstanding_growth,
            "unsent": self.unsent,
            "blocked_turns": self.blocked_turns,
            "busy_percent": w.busy_percent,
            "cpu_percent": w.cpu_percent,
            "turns": w.turns.serialize(),
            "turn_max_ns": w.turn_max_ns,
            "turn_max_at_ms": w.turn_max_at_ms,
            "recv_backlog_bytes_max": w.recv_backlog_bytes_max,
            "recv_backlog_ms": w.recv_backlog_ms,
        });
        format!("REPORT {json}")
    }

    fn from_json(text: &str) -> Result<WorkerResult, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("worker report: {e}"))?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        Ok(WorkerResult {
            connections: n("connections"),
            sent: n("sent"),
            delivered: n("delivered"),
            errors: n("errors"),
            lost: n("lost"),
            first_error: v["first_error"].as_str().map(str::to_owned),
            harness_cpu_ns: n("harness_cpu_ns"),
            latency: Latency::deserialize(v["hist"].as_str().unwrap_or(""))?,
            latency_max_ns: n("latency_max_ns"),
            latency_max_at_ms: f("latency_max_at_ms"),
            send_lag: Latency::deserialize(v["lag"].as_str().unwrap_or(""))?,
            outstanding_growth: v["outstanding_growth"].as_i64().unwrap_or(0),
            unsent: n("unsent"),
            blocked_turns: n("blocked_turns"),
            watched: LoopFigures {
                busy_percent: f("busy_percent"),
                cpu_percent: f("cpu_percent"),
                turns: Latency::deserialize(v["turns"].as_str().unwrap_or(""))?,
                turn_max_ns: n("turn_max_ns"),
                turn_max_at_ms: f("turn_max_at_ms"),
                recv_backlog_bytes_max: n("recv_backlog_bytes_max"),
                recv_backlog_ms: f("recv_backlog_ms"),
            },
        })
    }

    /// Adds another worker's counts and samples into this one. Counts add up; the harness's
    /// saturation figures keep the worst worker's (one saturated worker taints the run).
    pub fn merge(&mut self, other: WorkerResult) {
        self.connections += other.connections;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.errors += other.errors;
        self.lost += other.lost;
        self.harness_cpu_ns += other.harness_cpu_ns;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.merge(&other.latency);
        if other.latency_max_ns > self.latency_max_ns {
            self.latency_max_ns = other.latency_max_ns;
            self.latency_max_at_ms = other.latency_max_at_ms;
        }
        self.send_lag.merge(&other.send_lag);
        self.outstanding_growth += other.outstanding_growth;
        self.unsent += other.unsent;
        self.blocked_turns += other.blocked_turns;
        let (w, o) = (&mut self.watched, other.watched);
        // The busiest worker's figures, together: its CPU share explains its busy share.
        if o.busy_percent > w.busy_percent {
            w.busy_percent = o.busy_percent;
            w.cpu_percent = o.cpu_percent;
        }
        w.turns.merge(&o.turns);
        if o.turn_max_ns > w.turn_max_ns {
            w.turn_max_ns = o.turn_max_ns;
            w.turn_max_at_ms = o.turn_max_at_ms;
        }
        w.recv_backlog_bytes_max = w.recv_backlog_bytes_max.max(o.recv_backlog_bytes_max);
        w.recv_backlog_ms = w.recv_backlog_ms.max(o.recv_backlog_ms);
    }
}

/// How a worker talks to the parent: announce readiness, learn the common start time.
pub(crate) trait Link {
    fn ready(&mut self);
    fn wait_go(&mut self) -> Result<u64, String>;
}

struct ChildLink;

impl Link for ChildLink {
    fn ready(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "READY");
        let _ = out.flush();
    }

    fn wait_go(&mut self) -> Result<u64, String> {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| format!("worker stdin: {e}"))?;
        line.trim().strip_prefix("GO ").and_then(|t| t.parse().ok()).ok_or_else(|| format!("expected GO, got {line:?}"))
    }
}

struct ThreadLink {
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<u64>,
}

impl Link for ThreadLink {
    fn ready(&mut self) {
        let _ = self.ready.send(());
    }

    fn wait_go(&mut self) -> Result<u64, String> {
        self.go.recv().map_err(|_| "parent gone".to_owned())
    }
}

/// Runs the scenario `o` names and returns its report. Progress goes to stderr.
pub fn run(o: &Options) -> Result<Report, String> {
    if let Some((index, count)) = o.worker {
        // A worker process: run our share and report on stdout.
        let result = scenarios::run_worker(o, index, count, &mut ChildLink)?;
        println!("{}", result.to_line());
        return Ok(Report::default());
    }
    match o.scenario {
        Scenario::FloorServer => floor::serve(o).map(|()| Report::default()),
        Scenario::Calibrate => calibrate::run(o),
        Scenario::Sweep => sweep::run(o),
        Scenario::Fanout | Scenario::Game => {
            // The floor process, if this run starts one, lives until the end of this block.
            let mut floor = None;
            match o.against {
                Against::Huddle | Against::Floor => run_side(o, o.against, &mut floor),
                Against::Both => {
                    let huddle = run_side(o, Against::Huddle, &mut floor)?;
                    // Let the server reap the huddle sessions before the floor's connect.
                    std::thread::sleep(Duration::from_millis(500));
                    let beside = run_side(o, Against::Floor, &mut floor)?;
                    Ok(Report { floor: Some(Box::new(beside)), ..huddle })
                }
            }
        }
        Scenario::Churn | Scenario::Status | Scenario::Idle => run_distributed(o),
    }
}

/// Runs `o` against one server: huddle at `--url`, or the floor (started into `floor` on first
/// use, so a sweep keeps one floor process for all its steps).
pub(crate) fn run_side(o: &Options, side: Against, floor: &mut Option<FloorProcess>) -> Result<Report, String> {
    match side {
        Against::Floor => {
            if floor.is_none() {
                *floor = Some(FloorProcess::start(o)?);
            }
            let f = floor.as_ref().expect("Invariant: started above");
            run_distributed(&Options {
                against: Against::Floor,
                floor_addr: Some(f.addr),
                server_pid: Some(f.pid),
                ..o.clone()
            })
        }
        Against::Huddle => run_distributed(&Options { against: Against::Huddle, ..o.clone() }),
        Against::Both => Err("one side at a time".into()),
    }
}

/// Runs the workers (threads for one process, child processes for more), starts them
/// together, samples the server around the measured window, and merges their results.
/// `o.against` is the one server measured: huddle, or the floor at `o.floor_addr`.
pub(crate) fn run_distributed(o: &Options) -> Result<Report, String> {
    debug_assert!(o.against != Against::Both, "the parent splits `both` into its sides");
    if o.against == Against::Huddle {
        resolve_target(&o.url)?;
        check_rate(o)?;
    }
    let before = o.server_pid.map(procfs::sample).transpose().map_err(|e| format!("--server-pid: {e}"))?;
    let processes = o.processes.max(1);
    let mut workers: Vec<WorkerHandle> = Vec::new();
    if processes == 1 {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let opts = o.clone();
        let thread = std::thread::Builder::new()
            .name("huddle-load-worker".into())
            .spawn(move || scenarios::run_worker(&opts, 0, 1, &mut ThreadLink { ready: ready_tx, go: go_rx }))
            .map_err(|e| format!("worker thread: {e}"))?;
        workers.push(WorkerHandle::Thread { ready: ready_rx, go: go_tx, thread: Some(thread) });
    } else {
        let exe = match &o.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        };
        for index in 0..processes {
            let mut cmd = Command::new(&exe);
            // A sweep step's rate and the side measured are not in the command line the run
            // was started with: pass them last, so they override.
            cmd.args(&o.args)
                .arg("--rate")
                .arg(o.rate.to_string())
                .arg("--against")
                .arg(o.against.name())
                .arg("--worker")
                .arg(format!("{index}/{processes}"));
            if let Some(addr) = o.floor_addr {
                cmd.arg("--floor-addr").arg(addr.to_string());
            }
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
            let mut child = cmd.spawn().map_err(|e| format!("starting worker {index} ({}): {e}", exe.display()))?;
            let stdout = BufReader::new(child.stdout.take().expect("stdout was piped"));
            workers.push(WorkerHandle::Process { child, stdout });
        }
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.wait_ready().map_err(|e| format!("worker {i}: {e}"))?;
    }
    let ready = o.server_pid.map(procfs::sample).transpose().map_err(|e| format!("--server-pid: {e}"))?;
    eprintln!(
        "huddle-load: {} connections to {} ready; running {} s after {} s warm-up",
        o.connections,
        o.against.name(),
        o.duration.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    let go_ns = procfs::now_ns() + 50_000_000;
    for w in workers.iter_mut() {
        w.go(go_ns)?;
    }
    let window_start = go_ns + o.warmup.as_nanos() as u64;
    let window_end = window_start + o.duration.as_nanos() as u64;
    sleep_until(window_start);
    let cpu_start = o.server_pid.and_then(|pid| procfs::sample(pid).ok());
    if o.quiet {
        // One sleep: nothing of the harness wakes during the window but its workers.
        sleep_until(window_end);
    }
    while procfs::now_ns() < window_end {
        sleep_until((procfs::now_ns() + 1_000_000_000).min(window_end));
        if procfs::now_ns() < window_end {
            eprintln!("huddle-load: {:.0} s left", (window_end - procfs::now_ns()) as f64 / 1e9);
        }
    }
    let cpu_end = o.server_pid.and_then(|pid| procfs::sample(pid).ok());
    let mut total = WorkerResult::default();
    for (i, w) in workers.into_iter().enumerate() {
        total.merge(w.finish().map_err(|e| format!("worker {i}: {e}"))?);
    }
    let duration_s = o.duration.as_secs_f64();
    let fanout = o.scenario.is_fanout();
    let offered_per_sec = if matches!(o.scenario, Scenario::Idle) { 0 } else { o.rate };
    let mut report = Report {
        scenario: o.scenario.name(),
        against: o.against.name(),
        mode: if fanout { o.mode.name() } else { "" },
        // The floor frames its messages its own way whatever `--format` says.
        format: if o.against == Against::Floor { "raw" } else { o.format.name() },
        connections: total.connections,
        processes,
        duration_s,
        offered_per_sec,
        party_size: o.party_size,
        payload_bytes: o.payload_bytes,
        sent_per_sec: total.sent as f64 / duration_s,
        delivered_per_sec: total.delivered as f64 / duration_s,
        errors: total.errors,
        lost: total.lost,
        first_error: total.first_error.clone(),
        latency_us: total.latency.percentiles(),
        latency_max_at_ms: total.latency_max_at_ms,
        harness_send_lag_us: total.send_lag.percentiles(),
        harness: HarnessFigures {
            busy_percent: total.watched.busy_percent,
            cpu_percent: total.watched.cpu_percent,
            recv_backlog_bytes_max: total.watched.recv_backlog_bytes_max,
            recv_backlog_ms: total.watched.recv_backlog_ms,
            turn_us: total.watched.turns.percentiles(),
            turn_max_at_ms: total.watched.turn_max_at_ms,
            unsent: total.unsent,
            blocked_turns: total.blocked_turns,
            bound: None,
        },
        queue_growth: total.outstanding_growth,
        queues_grew: fanout
            && report::queues_grew(
                total.outstanding_growth,
                offered_per_sec,
                duration_s,
                o.party_size,
                total.connections,
            ),
        unit: match o.scenario {
            Scenario::Churn => "replies",
            Scenario::Status => "events",
            Scenario::Idle => "",
            _ => "msgs",
        },
        verbose: o.verbose,
        ..Report::default()
    };
    if total.delivered > 0 {
        report.harness_cpu_us_per_delivered = Some(total.harness_cpu_ns as f64 / 1000.0 / total.delivered as f64);
    }
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        let cpu_us = b.cpu_us.saturating_sub(a.cpu_us) as f64;
        report.server_cpu_percent = Some(cpu_us / (duration_s * 1e6) * 100.0);
        if total.delivered > 0 {
            report.server_cpu_us_per_delivered = Some(cpu_us / total.delivered as f64);
        }
        report.server_rss_bytes = Some(b.rss_bytes);
    }
    if let (Some(before), Some(ready)) = (before, ready) {
        // The server's memory for these sessions: what it grew by while they connected and set
        // up (before the load, so queues in flight are not counted).
        report.rss_per_connection_bytes =
            Some(ready.rss_bytes.saturating_sub(before.rss_bytes) as f64 / total.connections.max(1) as f64);
        if o.scenario == Scenario::Idle {
            report.server_rss_bytes = Some(ready.rss_bytes);
        }
    }
    report.harness.bound = report::harness_bound(&report);
    Ok(report)
}

enum WorkerHandle {
    Thread {
        ready: mpsc::Receiver<()>,
        go: mpsc::Sender<u64>,
        thread: Option<std::thread::JoinHandle<Result<WorkerResult, String>>>,
    },
    Process {
        child: std::process::Child,
        stdout: BufReader<std::process::ChildStdout>,
    },
}

impl WorkerHandle {
    fn wait_ready(&mut self) -> Result<(), String> {
        match self {
            WorkerHandle::Thread { ready, thread, .. } => {
                if ready.recv().is_ok() {
                    return Ok(());
                }
                // The worker ended before it was ready: its error says why.
                match thread.take().map(|t| t.join()) {
                    Some(Ok(Err(e))) => Err(e),
                    Some(Err(_)) => Err("worker panicked".into()),
                    _ => Err("worker stopped before it was ready".into()),
                }
            }
            WorkerHandle::Process { stdout, child } => {
                let mut line = String::new();
                stdout.read_line(&mut line).map_err(|e| format!("reading worker: {e}"))?;
                if line.trim() == "READY" {
                    Ok(())
                } else {
                    let status = child.wait().map_err(|e| e.to_string())?;
                    Err(format!("worker exited ({status}) before it was ready"))
                }
            }
        }
    }

    fn go(&mut self, go_ns: u64) -> Result<(), String> {
        match self {
            WorkerHandle::Thread { go, .. } => go.send(go_ns).map_err(|_| "worker gone".to_owned()),
            WorkerHandle::Process { child, .. } => {
                let stdin = child.stdin.as_mut().ok_or("worker stdin")?;
                writeln!(stdin, "GO {go_ns}").and_then(|_| stdin.flush()).map_err(|e| format!("worker stdin: {e}"))
            }
        }
    }

    fn finish(self) -> Result<WorkerResult, String> {
        match self {
            WorkerHandle::Thread { thread, .. } => {
                thread.ok_or("worker already joined")?.join().map_err(|_| "worker panicked".to_owned())?
            }
            WorkerHandle::Process { mut child, mut stdout } => {
                let mut line = String::new();
                stdout.read_line(&mut line).map_err(|e| format!("reading worker: {e}"))?;
                let status = child.wait().map_err(|e| e.to_string())?;
                let json = line
                    .trim()
                    .strip_prefix("REPORT ")
                    .ok_or_else(|| format!("worker exited ({status}) without a report"))?;
                WorkerResult::from_json(json)
            }
        }
    }
}

fn sleep_until(t_ns: u64) {
    let now = procfs::now_ns();
    if t_ns > now {
        std::thread::sleep(Duration::from_nanos(t_ns - now));
    }
}

/// Refuses a rate the server's per-connection request limit would throttle: the run would
/// measure the limiter, not the server.
fn check_rate(o: &Options) -> Result<(), String> {
    if o.rate == 0 && matches!(o.scenario, Scenario::Fanout | Scenario::Churn) {
        eprintln!(
            "huddle-load: --rate 0 sends as fast as replies come back; unless the server runs with a raised \
             --requests-per-second-max, expect error 300 (rate limited) replies"
        );
    }
    let senders = o.connections as u64;
    let per_conn = match o.scenario {
        Scenario::Fanout | Scenario::Game | Scenario::Sweep | Scenario::Status => o.rate as f64 / senders as f64,
        // Each pair member sends two of the four operations of a cycle.
        Scenario::Churn => o.rate as f64 / senders as f64,
        _ => 0.0,
    };
    if per_conn > o.server_rps_max as f64 * 0.9 {
        return Err(format!(
            "--rate {} over {} connections is {per_conn:.0} requests/s per connection, over 90 % of the \
             server's requests_per_second_max {} (raise it with `huddle --requests-per-second-max N` and pass \
             --server-rps-max N here, or add connections)",
            o.rate, o.connections, o.server_rps_max
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn only_loopback_targets() {
        assert!(resolve_target("ws://127.0.0.1:7350/ws").is_ok());
        assert!(resolve_target("ws://127.0.0.9:1/ws").is_ok());
        assert!(resolve_target("ws://[::1]:7350/ws").is_ok());
        assert!(resolve_target("ws://10.0.0.1:7350/ws").unwrap_err().contains("loopback"));
        assert!(resolve_target("ws://192.168.1.1:7350/ws").is_err());
        assert!(resolve_target("http://127.0.0.1:7350/ws").is_err());
    }

    #[test]
    fn sources_spread_only_when_one_address_is_not_enough() {
        assert_eq!(source_address(5, 100, 1000), None);
        assert_eq!(source_address(0, 3000, 1000), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_address(2999, 3000, 1000), Some(Ipv4Addr::new(127, 0, 0, 4)));
        assert_eq!(source_address(300_000, 300_001, 1000), Some(Ipv4Addr::new(127, 0, 1, 46)));
    }

    #[test]
    fn worker_results_survive_the_pipe_and_merge() {
        let mut a = WorkerResult { connections: 2, sent: 10, delivered: 30, errors: 1, ..Default::default() };
        a.latency.record_ns(1_000);
        let mut b = WorkerResult { connections: 2, sent: 5, delivered: 15, lost: 2, ..Default::default() };
        b.latency.record_ns(9_000_000);
        b.first_error = Some("close 1008 request rate limit".into());
        let a = WorkerResult::from_json(a.to_line().strip_prefix("REPORT ").unwrap()).unwrap();
        let b = WorkerResult::from_json(b.to_line().strip_prefix("REPORT ").unwrap()).unwrap();
        let mut total = WorkerResult::default();
        total.merge(a);
        total.merge(b);
        assert_eq!((total.connections, total.sent, total.delivered, total.errors, total.lost), (4, 15, 45, 1, 2));
        assert_eq!(total.latency.count(), 2);
        assert!(total.latency.percentiles().max >= 8_990.0);
        assert_eq!(total.first_error.as_deref(), Some("close 1008 request rate limit"));
    }

    #[test]
    fn options_parse_and_refuse_throttled_rates() {
        let o = Options::parse(&args("fanout --rate 100000 --connections 400 --duration 1.5 --json")).unwrap();
        assert_eq!(o.duration, Duration::from_millis(1500));
        assert!(o.json);
        assert!(check_rate(&o).unwrap_err().contains("requests_per_second_max"));
        let o = Options::parse(&args("fanout --rate 100000 --connections 400 --server-rps-max 1000")).unwrap();
        assert!(check_rate(&o).is_ok());
        assert!(Options::parse(&args("fanout --party-size 1")).is_err());
        assert!(Options::parse(&args("bogus")).is_err());
        assert!(Options::parse(&args("idle --nope 1")).is_err());
    }
}
