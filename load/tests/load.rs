//! Smoke runs of every `huddle-load` scenario against an in-process server on 127.0.0.1:0:
//! each must finish by itself, open every session, deliver something and report no errors.
//! Seconds and small counts; no timing assertions (the harness measures speed, tests do not).
//! One run spreads its sessions over two worker processes of the built `huddle-load` binary,
//! so the READY / GO / REPORT protocol and the histogram merge are exercised end to end.
//! The harness runs on Linux only (see its crate docs), so do these runs.
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

fn run(server: &TestServer, args: &str) -> Report {
    let mut argv: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    argv.extend(
        ["--url", &format!("ws://{}/ws", server.addr), "--token-key", KEY, "--duration", "0.5", "--warmup", "0.2"]
            .map(str::to_owned),
    );
    argv.extend(["--drain", "15", "--server-pid", &std::process::id().to_string()].map(str::to_owned));
    let mut options = Options::parse(&argv).unwrap_or_else(|e| panic!("{args}: {e}"));
    options.worker_exe = Some(env!("CARGO_BIN_EXE_huddle-load").into());
    let report = huddle_load::run(&options).unwrap_or_else(|e| panic!("{args}: {e}"));
    assert_eq!(report.errors, 0, "{args}: {}", report.table());
    assert_eq!(report.lost, 0, "{args}: {}", report.table());
    report
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
    let report = run(&server, "fanout --format json --connections 16 --party-size 4 --rate 400 --payload 64");
    assert_eq!((report.connections, report.format), (16, "json"));
    assert!(report.delivered_per_sec > 0.0, "{}", report.table());
    assert!(report.latency_us.count > 0);
    assert!(server.stats().decode_errors_total == 0, "every text frame was a request");
    assert!(Options::parse(&["churn", "--format", "json"].map(str::to_owned)).is_err(), "JSON is fanout-only");
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
    let args = format!("sweep --connections 8 --party-size 4 --rates 100,200 --svg {}", svg.display());
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
