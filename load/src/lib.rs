//! The load harness behind `huddle-load`: drives a running huddle server over loopback with
//! many WebSocket sessions on mio (one event loop per worker), measures what it delivers and
//! how late, and reports a table or one JSON object.
//!
//! Scenarios (see [`Scenario`]): `fanout`, `churn`, `status`, `idle`, `calibrate`, `sweep`.
//! Latency is measured open loop: every message carries the time it was *meant* to be sent, so
//! a stalled sender or server shows up in the latency of every message it delayed.
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
//! - `calibrate.rs`: the raw-TCP round-trip floor (no huddle at all); `sweep.rs`: the rate sweep
//!   and its SVG plot.
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
pub mod hist;
pub mod pace;
pub mod procfs;
mod scenarios;
mod sweep;

use hist::{Latency, Percentiles};
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
    churn       pairs cycle create -> join -> leave -> close; --rate operations/s (0 = back to back)
    status      sessions follow --follows others and change statuses at --rate updates/s
    idle        --connections sessions with a status and --follows follows each, held for
                --duration; reports the server's RSS per connection (needs --server-pid)
    calibrate   raw TCP ping-pong on loopback with --payload-sized messages: the round-trip floor
    sweep       fanout at increasing rates until latency or errors break down; writes --svg

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

FANOUT / SWEEP:
    --party-size K [4]  --payload BYTES [64]  --rate R [10000]  --window W [8]
    --format F                flatbuffers [default], or json: every session in Nakama's JSON
                              mode (format=json; party_data_send text frames, party_data in)
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
    Churn,
    Status,
    Idle,
    Calibrate,
    Sweep,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Churn => "churn",
            Scenario::Status => "status",
            Scenario::Idle => "idle",
            Scenario::Calibrate => "calibrate",
            Scenario::Sweep => "sweep",
        }
    }
}

/// The wire format of the sessions (`--format`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// huddle's own protocol.
    FlatBuffers,
    /// Nakama's realtime JSON (SPEC K-1); fanout and sweep only.
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
    pub format: Format,
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
            Some("churn") => Scenario::Churn,
            Some("status") => Scenario::Status,
            Some("idle") => Scenario::Idle,
            Some("calibrate") => Scenario::Calibrate,
            Some("sweep") => Scenario::Sweep,
            Some(other) => return Err(format!("unknown scenario {other:?}")),
            None => return Err("a scenario is required".into()),
        };
        let mut o = Options {
            scenario,
            url: "ws://127.0.0.1:7350/ws".into(),
            connections: 400,
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
            format: Format::FlatBuffers,
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
            worker: None,
            worker_exe: None,
            args: args.to_vec(),
        };
        let mut i = 1;
        while i < args.len() {
            let (name, inline) = match args[i].split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (args[i].clone(), None),
            };
            if name == "--json" {
                o.json = true;
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
                "--format" => {
                    o.format = match value.as_str() {
                        "flatbuffers" => Format::FlatBuffers,
                        "json" => Format::Json,
                        other => return Err(format!("--format: flatbuffers or json, not {other:?}")),
                    }
                }
                "--rate" => o.rate = num(&value)?,
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
                "--worker" => {
                    let (w, p) = value.split_once('/').ok_or("--worker I/P")?;
                    o.worker = Some((num(w)? as usize, num(p)? as usize));
                }
                _ => return Err(format!("unknown option {name}")),
            }
        }
        if o.party_size < 2 && matches!(o.scenario, Scenario::Fanout | Scenario::Sweep) {
            return Err("--party-size must be at least 2 (data is never echoed to its sender)".into());
        }
        if o.party_size > 256 {
            return Err("--party-size must be at most 256".into());
        }
        if o.format == Format::Json && !matches!(o.scenario, Scenario::Fanout | Scenario::Sweep) {
            return Err("--format json drives the fanout and sweep scenarios only".into());
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
    /// How late the harness sent scheduled messages (actual minus intended send time): when
    /// this grows, the harness, not the server, is the bottleneck.
    pub send_lag: Latency,
}

impl WorkerResult {
    fn to_line(&self) -> String {
        let json = serde_json::json!({
            "connections": self.connections,
            "sent": self.sent,
            "delivered": self.delivered,
            "errors": self.errors,
            "lost": self.lost,
            "first_error": self.first_error,
            "harness_cpu_ns": self.harness_cpu_ns,
            "hist": self.latency.serialize(),
            "lag": self.send_lag.serialize(),
        });
        format!("REPORT {json}")
    }

    fn from_json(text: &str) -> Result<WorkerResult, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("worker report: {e}"))?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok(WorkerResult {
            connections: n("connections"),
            sent: n("sent"),
            delivered: n("delivered"),
            errors: n("errors"),
            lost: n("lost"),
            first_error: v["first_error"].as_str().map(str::to_owned),
            harness_cpu_ns: n("harness_cpu_ns"),
            latency: Latency::deserialize(v["hist"].as_str().unwrap_or(""))?,
            send_lag: Latency::deserialize(v["lag"].as_str().unwrap_or(""))?,
        })
    }

    /// Adds another worker's counts and samples into this one.
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
        self.send_lag.merge(&other.send_lag);
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

/// The result of a run, as printed.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenario: &'static str,
    pub connections: u64,
    pub processes: usize,
    pub duration_s: f64,
    pub offered_per_sec: u64,
    pub party_size: usize,
    pub payload_bytes: usize,
    /// The sessions' wire format (`--format`).
    pub format: &'static str,
    pub sent_per_sec: f64,
    pub delivered_per_sec: f64,
    pub errors: u64,
    pub lost: u64,
    pub first_error: Option<String>,
    pub latency_us: Percentiles,
    /// Lateness of the harness's own sends against their schedule.
    pub harness_send_lag_us: Percentiles,
    pub server_cpu_us_per_delivered: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    pub rss_per_connection_bytes: Option<f64>,
    pub harness_cpu_us_per_delivered: Option<f64>,
    /// What "delivered" counts in this scenario.
    pub unit: &'static str,
    /// Sweep: one report per rate.
    pub steps: Vec<Report>,
    pub svg: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let l = &self.latency_us;
        serde_json::json!({
            "scenario": self.scenario,
            "connections": self.connections,
            "processes": self.processes,
            "duration_s": self.duration_s,
            "offered_per_sec": self.offered_per_sec,
            "party_size": self.party_size,
            "payload_bytes": self.payload_bytes,
            "format": self.format,
            "unit": self.unit,
            "sent_per_sec": round1(self.sent_per_sec),
            "delivered_per_sec": round1(self.delivered_per_sec),
            "errors": self.errors,
            "lost": self.lost,
            "first_error": self.first_error,
            "latency_us": {
                "p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999, "max": l.max, "count": l.count,
            },
            "harness_send_lag_us": {
                "p50": self.harness_send_lag_us.p50,
                "p99": self.harness_send_lag_us.p99,
                "max": self.harness_send_lag_us.max,
            },
            "server_cpu_us_per_delivered": self.server_cpu_us_per_delivered.map(round3),
            "server_cpu_percent": self.server_cpu_percent.map(round1),
            "server_rss_bytes": self.server_rss_bytes,
            "rss_per_connection_bytes": self.rss_per_connection_bytes.map(round1),
            "harness_cpu_us_per_delivered": self.harness_cpu_us_per_delivered.map(round3),
            "steps": self.steps.iter().map(Report::to_json).collect::<Vec<_>>(),
            "svg": self.svg,
        })
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        if !self.steps.is_empty() {
            s.push_str(&sweep::table(&self.steps));
            if let Some(svg) = &self.svg {
                s.push_str(&format!("plot: {svg}\n"));
            }
            return s;
        }
        let l = &self.latency_us;
        s.push_str(&format!("scenario              {} ({})\n", self.scenario, self.format));
        s.push_str(&format!("connections           {} ({} process(es))\n", self.connections, self.processes));
        s.push_str(&format!("duration              {:.1} s\n", self.duration_s));
        if self.offered_per_sec > 0 {
            s.push_str(&format!("offered               {} /s\n", self.offered_per_sec));
        }
        s.push_str(&format!("sent                  {:.0} /s\n", self.sent_per_sec));
        s.push_str(&format!("delivered             {:.0} {}/s\n", self.delivered_per_sec, self.unit));
        s.push_str(&format!("errors                {}   lost {}\n", self.errors, self.lost));
        if let Some(e) = &self.first_error {
            s.push_str(&format!("first error           {e}\n"));
        }
        s.push_str(&format!(
            "latency µs            p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={})\n",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        ));
        s.push_str(&format!(
            "server CPU            {} µs per delivered, {} % of a core\n",
            opt(self.server_cpu_us_per_delivered, 3),
            opt(self.server_cpu_percent, 1)
        ));
        s.push_str(&format!(
            "harness               {} µs CPU per delivered; sends late by p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs\n",
            opt(self.harness_cpu_us_per_delivered, 3),
            self.harness_send_lag_us.p50,
            self.harness_send_lag_us.p99,
            self.harness_send_lag_us.max
        ));
        s.push_str(&format!(
            "server RSS            {} bytes, {} bytes per connection\n",
            self.server_rss_bytes.map_or("-".to_owned(), |v| v.to_string()),
            opt(self.rss_per_connection_bytes, 0)
        ));
        s
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
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
        Scenario::Calibrate => calibrate::run(o),
        Scenario::Sweep => sweep::run(o),
        _ => run_distributed(o),
    }
}

/// Runs the workers (threads for one process, child processes for more), starts them
/// together, samples the server around the measured window, and merges their results.
pub(crate) fn run_distributed(o: &Options) -> Result<Report, String> {
    resolve_target(&o.url)?;
    check_rate(o)?;
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
            // A sweep step's rate is not in the command line it was started with: pass it last,
            // so it overrides.
            cmd.args(&o.args)
                .arg("--rate")
                .arg(o.rate.to_string())
                .arg("--worker")
                .arg(format!("{index}/{processes}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
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
        "huddle-load: {} connections ready; running {} s after {} s warm-up",
        o.connections,
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
    let mut report = Report {
        scenario: o.scenario.name(),
        connections: total.connections,
        processes,
        duration_s,
        offered_per_sec: if matches!(o.scenario, Scenario::Idle) { 0 } else { o.rate },
        party_size: o.party_size,
        payload_bytes: o.payload_bytes,
        format: o.format.name(),
        sent_per_sec: total.sent as f64 / duration_s,
        delivered_per_sec: total.delivered as f64 / duration_s,
        errors: total.errors,
        lost: total.lost,
        first_error: total.first_error.clone(),
        latency_us: total.latency.percentiles(),
        harness_send_lag_us: total.send_lag.percentiles(),
        unit: match o.scenario {
            Scenario::Churn => "replies",
            Scenario::Status => "events",
            Scenario::Idle => "",
            _ => "msgs",
        },
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
        if o.scenario == Scenario::Idle {
            report.server_rss_bytes = Some(ready.rss_bytes);
            report.rss_per_connection_bytes =
                Some(ready.rss_bytes.saturating_sub(before.rss_bytes) as f64 / total.connections.max(1) as f64);
        }
    }
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
        Scenario::Fanout | Scenario::Sweep | Scenario::Status => o.rate as f64 / senders as f64,
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
