//! Smoke runs of every `huddle-load` scenario against an in-process server on 127.0.0.1:0:
//! each must finish by itself, open every session, deliver something and report no errors.
//! Seconds and small counts; no timing assertions (the harness measures speed, tests do not).
//! One run spreads its sessions over two worker processes of the built `huddle-load` binary,
//! so the READY / GO / REPORT protocol and the histogram merge are exercised end to end.
//!
//! The JSON runs put a few hundred sessions in Nakama's JSON mode (`--format json`), acknowledged
//! and fire-and-forget, the latter beside the floor, which keeps its raw framing.
//!
//! The floor runs start the harness's own floor server (a child process of the built binary)
//! and check what a user reads off the report: nothing lost at a trivial rate, the floor's
//! figures and the huddle/floor ratios present beside huddle's, the game shape at a tiny
//! scale, and the harness calling itself the bottleneck when asked for a rate no harness can
//! send (50 million messages a second over two connections: it cannot even take them off its
//! schedule, whatever the machine). The harness runs on Linux only (see its crate docs), so do
//! these runs.
#![cfg(target_os = "linux")]

// The server crate's end-to-end helpers (a real server on 127.0.0.1:0, its key, the watchdog),
// shared rather than copied so both crates' tests start servers the same way.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{TestServer, Watchdog, KEY};
use huddle::limits::Limits;
use huddle_load::{Options, Report};
use std::time::Duration;

fn server() -> TestServer {
    // The harness's rates stay under the default request limit; the burst covers setup.
    TestServer::with_limits(Limits { connections_max: 1000, ..Limits::default() })
}

/// Runs `args` for half a second after a short warm-up, against `server` when given (the floor
/// needs none), and returns the report whatever it says.
fn run_report(server: Option<&TestServer>, args: &str) -> Report {
    let mut argv: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    if let Some(server) = server {
        argv.extend(["--url", &format!("ws://{}/ws", server.addr)].map(str::to_owned));
    }
    argv.extend(["--token-key", KEY, "--duration", "0.5", "--warmup", "0.2"].map(str::to_owned));
    argv.extend(["--drain", "15", "--server-pid", &std::process::id().to_string()].map(str::to_owned));
    let mut options = Options::parse(&argv).unwrap_or_else(|e| panic!("{args}: {e}"));
    options.worker_exe = Some(env!("CARGO_BIN_EXE_huddle-load").into());
    huddle_load::run(&options).unwrap_or_else(|e| panic!("{args}: {e}"))
}

/// [`run_report`], asserting that nothing failed and nothing was lost (on every side).
fn run_on(server: Option<&TestServer>, args: &str) -> Report {
    let report = run_report(server, args);
    for side in std::iter::once(&report).chain(report.floor.as_deref()) {
        assert_eq!(side.errors, 0, "{args} ({}): {}", side.against, report.table());
        assert_eq!(side.lost, 0, "{args} ({}): {}", side.against, report.table());
    }
    report
}

fn run(server: &TestServer, args: &str) -> Report {
    run_on(Some(server), args)
}

#[test]
fn fanout_delivers_to_every_other_member() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "fanout --connections 16 --party-size 4 --rate 400 --payload 64");
    assert_eq!(report.connections, 16);
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
    assert!(report.latency_us.count > 0);
    // Serializes with the documented fields.
    let json = report.to_json();
    for field in ["scenario", "connections", "duration_s", "sent_per_sec", "delivered_per_sec", "errors", "latency_us"]
    {
        assert!(!json[field].is_null(), "{field} missing in {json}");
    }
    assert!(json["latency_us"]["p999"].is_number());
}

#[test]
fn fanout_in_nakamas_json_mode_delivers_to_every_other_member() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    // A few hundred sessions as a Nakama SDK connects them (`format=json`); `run` asserts no
    // errors and nothing lost, so every ack and every delivery came back as JSON.
    let report = run(&server, "fanout --format json --connections 240 --party-size 4 --rate 2400 --payload 64");
    assert_eq!((report.connections, report.format), (240, "json"));
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
    assert!(report.latency_us.count > 0, "{}", report.table());
    assert_eq!(report.to_json()["format"], "json");
    assert_eq!(server.stats().decode_errors_total, 0, "every text frame was a request huddle reads");
}

#[test]
fn json_fire_and_forget_over_two_processes_beside_the_format_independent_floor() {
    let _watchdog = Watchdog::start(Duration::from_secs(90));
    let server = server();
    let report = run(
        &server,
        "fanout --format json --mode fire --against both --connections 200 --party-size 4 --rate 2000 --processes 2",
    );
    let floor = report.floor.as_deref().expect("the floor ran beside");
    assert_eq!((report.format, report.mode, floor.format), ("json", "fire", "raw"), "{}", report.table());
    assert!(report.latency_us.count > 0 && floor.latency_us.count > 0, "{}", report.table());
    assert_eq!(server.stats().decode_errors_total, 0, "party_data_send without a cid is a request too");
    let parse = |s: &str| Options::parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    assert!(parse("churn --format json").unwrap_err().contains("--format json"));
    assert!(parse("fanout --format xml").is_err());
}

#[test]
fn fanout_as_fast_as_possible_with_a_window() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    // Rate 0 is a closed loop that outruns the default request limit: lift it, as the README
    // tells operators to (`huddle --requests-per-second-max`).
    let limits = Limits { requests_per_second_max: 1_000_000, requests_burst_max: 1_000_000, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let report = run(&server, "fanout --connections 8 --party-size 2 --rate 0 --window 2");
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
}

#[test]
fn fanout_over_two_worker_processes_merges_their_results() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "fanout --connections 16 --party-size 4 --rate 400 --processes 2");
    assert_eq!(report.connections, 16);
    assert_eq!(report.processes, 2);
    assert!(report.latency_us.count > 0, "{}", report.table());
}

#[test]
fn churn_cycles_parties() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "churn --connections 8 --rate 200");
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
    // Every cycle closed its party.
    server.wait_stats("sessions gone", |s| s.sessions_open == 0);
}

#[test]
fn status_events_reach_followers() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "status --connections 12 --follows 3 --rate 100");
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
}

#[test]
fn idle_holds_sessions_and_reports_memory() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "idle --connections 50 --follows 10");
    assert_eq!(report.connections, 50);
    assert!(report.rss_per_connection_bytes.is_some());
    assert!(report.server_rss_bytes.unwrap_or(0) > 0);
}

#[test]
fn calibrate_measures_a_round_trip_floor() {
    let options = Options::parse(&["calibrate", "--duration", "0.3", "--warmup", "0.1"].map(str::to_owned)).unwrap();
    let report = huddle_load::run(&options).unwrap();
    assert!(report.latency_us.count > 0);
    assert!(report.latency_us.p50 > 0.0);
}

#[test]
fn sweep_writes_a_plot_and_a_table() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let svg = std::env::temp_dir().join(format!("huddle-load-sweep-{}.svg", std::process::id()));
    // A p99 bound no loaded test machine reaches: both steps must hold.
    let args =
        format!("sweep --connections 40 --party-size 4 --rates 100,200 --p99-max-us 100000000 --svg {}", svg.display());
    let report = run(&server, &args);
    assert_eq!(report.steps.len(), 2, "{}", report.table());
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("polyline"));
    let _ = std::fs::remove_file(&svg);
    assert!(report.table().contains("offered/s"));
}

#[test]
fn refuses_targets_off_loopback() {
    let options = Options::parse(&["fanout", "--url", "ws://10.1.2.3:7350/ws"].map(str::to_owned)).unwrap();
    let error = huddle_load::run(&options).unwrap_err();
    assert!(error.contains("loopback"), "{error}");
}

#[test]
fn fanout_against_the_floor_delivers_everything() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let report = run_on(None, "fanout --against floor --connections 16 --party-size 4 --rate 400");
    assert_eq!(report.against, "floor");
    assert_eq!(report.connections, 16);
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
    assert!(report.latency_us.count > 0, "{}", report.table());
    // The floor's own process was sampled, not the test's.
    assert!(report.server_rss_bytes.unwrap_or(0) > 0, "{}", report.table());
}

#[test]
fn the_floor_over_two_worker_processes_and_fire_and_forget() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let report = run_on(
        None,
        "fanout --against floor --fire-and-forget --connections 16 --party-size 4 --rate 400 --processes 2",
    );
    assert_eq!((report.against, report.mode, report.processes), ("floor", "fire", 2));
    assert!(report.latency_us.count > 0, "{}", report.table());
}

#[test]
fn both_reports_huddle_beside_the_floor_with_ratios() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run(&server, "fanout --against both --connections 16 --party-size 4 --rate 400");
    let json = report.to_json();
    assert_eq!(json["against"], "huddle", "{json}");
    assert_eq!(json["floor"]["against"], "floor", "{json}");
    for side in [&json, &json["floor"]] {
        assert!(side["delivered_per_sec"].as_f64().unwrap() > 0.0, "{json}");
        assert!(side["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{json}");
    }
    for key in ["delivered_per_sec", "sent_per_sec"] {
        assert!(json["ratio"][key].as_f64().is_some_and(|r| r > 0.0), "ratio {key}: {json}");
    }
    for p in ["p50", "p99", "max"] {
        assert!(json["ratio"]["latency_us"][p].as_f64().is_some_and(|r| r > 0.0), "ratio {p}: {json}");
    }
    assert!(report.table().contains("huddle/floor"), "{}", report.table());
}

#[test]
fn game_shape_at_a_tiny_scale_against_the_floor_loses_nothing() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    // Game defaults: parties of 4, 64 bytes at 20 Hz per session, fire-and-forget.
    let report = run_on(None, "game --against floor --connections 200");
    assert_eq!((report.scenario, report.mode, report.party_size), ("game", "fire", 4));
    assert_eq!(report.offered_per_sec, 200 * 20);
    assert!(report.latency_us.count > 0, "{}", report.table());
    assert!(report.rss_per_connection_bytes.is_some(), "{}", report.table());
}

#[test]
fn game_shape_acknowledged_beside_the_floor() {
    let _watchdog = Watchdog::start(Duration::from_secs(90));
    let server = server();
    let report = run(&server, "game --mode ack --connections 200");
    let floor = report.floor.as_deref().expect("game runs against both by default");
    assert_eq!((report.against, floor.against), ("huddle", "floor"));
    assert!(report.latency_us.count > 0 && floor.latency_us.count > 0, "{}", report.table());
    assert!(report.rss_per_connection_bytes.is_some() && floor.rss_per_connection_bytes.is_some());
}

#[test]
fn fire_and_forget_against_huddle_delivers_or_says_the_server_lacks_it() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let server = server();
    let report = run_report(Some(&server), "fanout --mode fire --connections 16 --party-size 4 --rate 400");
    if report.errors > 0 {
        // A server without SPEC P-9 answers cid 0 with error 101: every message, named clearly.
        let error = report.first_error.clone().unwrap_or_default();
        assert!(error.contains("does not support fire-and-forget"), "{}", report.table());
        assert_eq!(report.delivered_per_sec, 0.0, "{}", report.table());
    } else {
        assert_eq!(report.lost, 0, "{}", report.table());
        assert!(report.latency_us.count > 0, "{}", report.table());
    }
}

#[test]
fn an_impossible_rate_marks_the_harness_as_the_bottleneck() {
    let _watchdog = Watchdog::start(Duration::from_secs(60));
    let report =
        run_report(None, "fanout --against floor --fire-and-forget --connections 2 --party-size 2 --rate 50000000");
    let json = report.to_json();
    assert_eq!(json["harness"]["bound"], true, "{}", report.table());
    assert!(json["harness"]["bound_why"].as_str().is_some_and(|why| !why.is_empty()), "{json}");
    assert!(report.table().contains("harness bound         YES"), "{}", report.table());
}

#[test]
fn a_sweep_beside_the_floor_compares_every_step() {
    let _watchdog = Watchdog::start(Duration::from_secs(90));
    let server = server();
    let svg = std::env::temp_dir().join(format!("huddle-load-sweep-both-{}.svg", std::process::id()));
    let args = format!(
        "sweep --against both --connections 40 --party-size 4 --rates 100,200 --p99-max-us 100000000 --svg {}",
        svg.display()
    );
    let report = run(&server, &args);
    assert_eq!(report.steps.len(), 2, "{}", report.table());
    for step in &report.steps {
        assert_eq!(step.held, Some(true), "{}", report.table());
        let floor = step.floor.as_deref().expect("every step runs the floor beside");
        assert_eq!((floor.errors, floor.lost), (0, 0), "{}", report.table());
        assert!(floor.delivered_per_sec > 0.0, "{}", report.table());
    }
    // The summary is the highest rate that held, with the floor's own peak beside it.
    assert_eq!(report.offered_per_sec, 200);
    assert_eq!(report.floor.as_deref().map(|f| f.offered_per_sec), Some(200));
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("stroke-dasharray"), "the floor's curves are dashed");
    let _ = std::fs::remove_file(&svg);
    assert!(report.table().contains("ratio"), "{}", report.table());
}

#[test]
fn floor_options_are_checked() {
    let parse = |s: &str| Options::parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    assert!(parse("status --against floor").unwrap_err().contains("--against"));
    assert!(parse("fanout --against nowhere").is_err());
    assert!(parse("fanout --mode fire --rate 0").unwrap_err().contains("--mode ack"));
    assert!(parse("fanout --floor-addr 10.0.0.1:9").unwrap_err().contains("loopback"));
    let game = parse("game --connections 400 --hz 10").unwrap();
    assert_eq!((game.rate, game.party_size), (4000, 4));
}
