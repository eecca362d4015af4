//! The merged result of a run ([`Report`]) as a table or one JSON object; huddle beside its
//! floor with their ratios; and the two judgements every report carries: whether the harness
//! rather than the server was the bottleneck ([`harness_bound`]), and whether the queues grew
//! over the window ([`queues_grew`]).

use super::hist::Percentiles;
use std::fmt::Write as _;

/// A loop busy this share of the window had no slack left to read deliveries when they came.
const HARNESS_BUSY_PERCENT_MAX: f64 = 90.0;
/// A busy loop that had a CPU for less than this share of its busy time was mostly waiting for
/// one: other processes took the harness's core, and the report says the machine was not quiet.
const HARNESS_CPU_SHARE_OF_BUSY_MIN: f64 = 0.5;
/// Lateness of the harness itself (sending behind its schedule, or deliveries left unread in
/// its sockets) counts against it when it is at least this long …
const HARNESS_LATE_US_MIN: f64 = 1000.0;
/// … and at least this share of the latency p99 it is part of: then a quarter or more of the
/// tail is the harness's own, and the figure does not measure the server.
const HARNESS_LATE_SHARE_MIN: f64 = 0.25;
/// Outstanding deliveries (sent, not yet delivered) may grow over the window by this share of
/// the deliveries offered in it before the run counts as falling behind: 1 % of an 8-s step at
/// 1.5 M deliveries/s is 80 ms of extra queueing, beyond the turn-to-turn jitter of an instant
/// count.
const QUEUE_GROWTH_SHARE_MAX: f64 = 0.01;

/// How the harness itself fared during the measured window.
#[derive(Clone, Debug, Default)]
pub struct HarnessFigures {
    /// The busiest worker's share of the window spent working rather than waiting in poll.
    pub busy_percent: f64,
    /// That worker's share of the window on a CPU.
    pub cpu_percent: f64,
    /// The largest total of bytes one worker found unread in its sockets in one probe pass.
    pub recv_backlog_bytes_max: u64,
    /// The same in milliseconds of that worker's incoming traffic.
    pub recv_backlog_ms: f64,
    /// Work per loop turn, all workers.
    pub turn_us: Percentiles,
    /// When the longest turn started, in ms from the window's start.
    pub turn_max_at_ms: f64,
    /// Scheduled messages never sent.
    pub unsent: u64,
    /// Turns in which a full connection held sends back (the server was not reading).
    pub blocked_turns: u64,
    /// Why the harness was the bottleneck, if it was ([`harness_bound`]).
    pub bound: Option<String>,
}

/// The result of a run, as printed.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenario: &'static str,
    /// The server measured: `huddle` or `floor`.
    pub against: &'static str,
    /// Fan-out family: `ack` or `fire`; empty elsewhere.
    pub mode: &'static str,
    /// The sessions' wire format: `flatbuffers` or `json` (Nakama's JSON mode) towards huddle,
    /// `raw` towards the floor (its own framing, whatever `--format` said); empty for calibrate.
    pub format: &'static str,
    pub connections: u64,
    pub processes: usize,
    pub duration_s: f64,
    pub offered_per_sec: u64,
    pub party_size: usize,
    pub payload_bytes: usize,
    pub sent_per_sec: f64,
    pub delivered_per_sec: f64,
    pub errors: u64,
    pub lost: u64,
    pub first_error: Option<String>,
    pub latency_us: Percentiles,
    /// When the slowest delivery was meant to be sent, in ms from the window's start.
    pub latency_max_at_ms: f64,
    /// Lateness of the harness's own sends against their schedule.
    pub harness_send_lag_us: Percentiles,
    pub harness: HarnessFigures,
    /// Outstanding deliveries at the window's end minus at its start.
    pub queue_growth: i64,
    pub queues_grew: bool,
    pub server_cpu_us_per_delivered: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    pub rss_per_connection_bytes: Option<f64>,
    pub harness_cpu_us_per_delivered: Option<f64>,
    /// What "delivered" counts in this scenario.
    pub unit: &'static str,
    /// The table also shows the harness's loop turns and when the slowest turn and delivery were.
    pub verbose: bool,
    /// Sweep steps: whether the step held, and if not, why.
    pub held: Option<bool>,
    pub breakdown: Option<String>,
    /// The floor at the same shape (`--against both`; in a sweep's summary, the floor's own
    /// sustained peak).
    pub floor: Option<Box<Report>>,
    /// Sweep: one report per rate.
    pub steps: Vec<Report>,
    pub svg: Option<String>,
}

/// Why the harness, not the server, limited a run, if it did.
pub(crate) fn harness_bound(r: &Report) -> Option<String> {
    let h = &r.harness;
    if h.busy_percent >= HARNESS_BUSY_PERCENT_MAX {
        return Some(format!("its loop was busy {:.0} % of the window{}", h.busy_percent, not_quiet(h)));
    }
    let p99 = r.latency_us.p99;
    let lag = r.harness_send_lag_us.p99;
    if lag >= HARNESS_LATE_US_MIN && lag >= HARNESS_LATE_SHARE_MIN * p99 {
        // Messages still owed at the window's end are in the lag, as late as they were then.
        let unsent = match h.unsent {
            0 => String::new(),
            n => format!(", {n} scheduled messages never sent"),
        };
        // Held back by full connections alone (the server not reading) takes 1 MiB of unwritten
        // output per connection, seconds of backlog with many connections.
        let held_back = match h.blocked_turns {
            0 => String::new(),
            turns => format!(" ({turns} turns held back by a full connection: the server was not keeping up either)"),
        };
        return Some(format!(
            "it sent late: send lag p99 {lag:.0} µs against latency p99 {p99:.0} µs{unsent}{held_back}{}",
            not_quiet(h)
        ));
    }
    let backlog_us = h.recv_backlog_ms * 1000.0;
    if backlog_us >= HARNESS_LATE_US_MIN && backlog_us >= HARNESS_LATE_SHARE_MIN * p99 {
        return Some(format!(
            "deliveries waited unread in its sockets: up to {:.1} ms of traffic against latency p99 {p99:.0} µs",
            h.recv_backlog_ms
        ));
    }
    None
}

/// A note when the harness's loop was busy mostly waiting for a CPU (other processes ran on its
/// core), else nothing.
fn not_quiet(h: &HarnessFigures) -> String {
    if h.busy_percent > 0.0 && h.cpu_percent < HARNESS_CPU_SHARE_OF_BUSY_MIN * h.busy_percent {
        format!(
            "; it had a CPU only {:.0} % of the window while busy {:.0} %: the machine was not quiet",
            h.cpu_percent, h.busy_percent
        )
    } else {
        String::new()
    }
}

/// Whether outstanding deliveries grew by more than [`QUEUE_GROWTH_SHARE_MAX`] of those
/// offered over the window (and by more than one message per connection, an instant's jitter).
pub(crate) fn queues_grew(
    growth: i64,
    offered_per_sec: u64,
    duration_s: f64,
    party_size: usize,
    connections: u64,
) -> bool {
    let recipients = party_size.saturating_sub(1) as f64;
    let offered = offered_per_sec as f64 * duration_s * recipients;
    let allowed = (QUEUE_GROWTH_SHARE_MAX * offered).max(recipients * connections as f64);
    growth as f64 > allowed
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `huddle / floor` when both are positive.
fn ratio(huddle: f64, floor: f64) -> Option<f64> {
    (huddle > 0.0 && floor > 0.0).then(|| round3(huddle / floor))
}

fn percentiles_json(p: &Percentiles) -> serde_json::Value {
    serde_json::json!({ "p50": p.p50, "p90": p.p90, "p99": p.p99, "p999": p.p999, "max": p.max, "count": p.count })
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let h = &self.harness;
        let mut json = serde_json::json!({
            "scenario": self.scenario,
            "against": self.against,
            "mode": self.mode,
            "format": self.format,
            "connections": self.connections,
            "processes": self.processes,
            "duration_s": self.duration_s,
            "offered_per_sec": self.offered_per_sec,
            "party_size": self.party_size,
            "payload_bytes": self.payload_bytes,
            "unit": self.unit,
            "sent_per_sec": round1(self.sent_per_sec),
            "delivered_per_sec": round1(self.delivered_per_sec),
            "errors": self.errors,
            "lost": self.lost,
            "first_error": self.first_error,
            "latency_us": percentiles_json(&self.latency_us),
            "latency_max_at_ms": round1(self.latency_max_at_ms),
            "harness_send_lag_us": {
                "p50": self.harness_send_lag_us.p50,
                "p99": self.harness_send_lag_us.p99,
                "max": self.harness_send_lag_us.max,
            },
            "harness": {
                "bound": h.bound.is_some(),
                "bound_why": h.bound,
                "busy_percent": round1(h.busy_percent),
                "cpu_percent": round1(h.cpu_percent),
                "recv_backlog_bytes_max": h.recv_backlog_bytes_max,
                "recv_backlog_ms": round3(h.recv_backlog_ms),
                "turn_us": percentiles_json(&h.turn_us),
                "turn_max_at_ms": round1(h.turn_max_at_ms),
                "unsent": h.unsent,
                "blocked_turns": h.blocked_turns,
            },
            "queue_growth": self.queue_growth,
            "queues_grew": self.queues_grew,
            "server_cpu_us_per_delivered": self.server_cpu_us_per_delivered.map(round3),
            "server_cpu_percent": self.server_cpu_percent.map(round1),
            "server_rss_bytes": self.server_rss_bytes,
            "rss_per_connection_bytes": self.rss_per_connection_bytes.map(round1),
            "harness_cpu_us_per_delivered": self.harness_cpu_us_per_delivered.map(round3),
            "held": self.held,
            "breakdown": self.breakdown,
            "steps": self.steps.iter().map(Report::to_json).collect::<Vec<_>>(),
            "svg": self.svg,
        });
        if let Some(floor) = &self.floor {
            json["floor"] = floor.to_json();
            json["ratio"] = self.ratio_json(floor);
        }
        json
    }

    /// Each figure of this report divided by the floor's (null where either is missing or 0).
    fn ratio_json(&self, floor: &Report) -> serde_json::Value {
        let (l, f) = (&self.latency_us, &floor.latency_us);
        let opt = |a: Option<f64>, b: Option<f64>| ratio(a.unwrap_or(0.0), b.unwrap_or(0.0));
        serde_json::json!({
            "sent_per_sec": ratio(self.sent_per_sec, floor.sent_per_sec),
            "delivered_per_sec": ratio(self.delivered_per_sec, floor.delivered_per_sec),
            "latency_us": {
                "p50": ratio(l.p50, f.p50),
                "p90": ratio(l.p90, f.p90),
                "p99": ratio(l.p99, f.p99),
                "p999": ratio(l.p999, f.p999),
                "max": ratio(l.max, f.max),
            },
            "server_cpu_us_per_delivered": opt(self.server_cpu_us_per_delivered, floor.server_cpu_us_per_delivered),
            "server_cpu_percent": opt(self.server_cpu_percent, floor.server_cpu_percent),
            "server_rss_bytes": opt(self.server_rss_bytes.map(|b| b as f64), floor.server_rss_bytes.map(|b| b as f64)),
            "rss_per_connection_bytes": opt(self.rss_per_connection_bytes, floor.rss_per_connection_bytes),
        })
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        if !self.steps.is_empty() {
            s.push_str(&super::sweep::table(&self.steps));
            s.push_str(&super::sweep::summary(self));
            if let Some(svg) = &self.svg {
                let _ = writeln!(s, "plot: {svg}");
            }
            return s;
        }
        match &self.floor {
            Some(floor) => self.side_by_side(floor, &mut s),
            None => self.single(&mut s),
        }
        s
    }

    fn mode_text(&self) -> &'static str {
        match self.mode {
            "fire" => ", party data fire-and-forget (cid 0)",
            "ack" => ", party data acknowledged",
            _ => "",
        }
    }

    fn head(&self, s: &mut String, against: &str) {
        let _ = writeln!(s, "scenario              {} against {against}{}", self.scenario, self.mode_text());
        let format = match self.format {
            "json" => "json (Nakama's JSON mode: format=json, text frames)",
            "raw" => "raw (the floor's own framing, whatever --format says)",
            other => other,
        };
        match (format, &self.floor) {
            ("", _) => {}
            (format, Some(_)) => {
                let _ = writeln!(s, "format                huddle {format}; the floor its own raw framing");
            }
            (format, None) => {
                let _ = writeln!(s, "format                {format}");
            }
        }
        let _ = writeln!(s, "connections           {} ({} process(es))", self.connections, self.processes);
        let _ = writeln!(s, "duration              {:.1} s", self.duration_s);
        if self.offered_per_sec > 0 {
            let _ = writeln!(s, "offered               {} /s", self.offered_per_sec);
        }
    }

    fn single(&self, s: &mut String) {
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        let l = &self.latency_us;
        self.head(s, self.against);
        let _ = writeln!(s, "sent                  {:.0} /s", self.sent_per_sec);
        let _ = writeln!(s, "delivered             {:.0} {}/s", self.delivered_per_sec, self.unit);
        let _ = writeln!(s, "errors                {}   lost {}", self.errors, self.lost);
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "first error           {e}");
        }
        let _ = writeln!(
            s,
            "latency µs            p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        );
        let _ = writeln!(
            s,
            "server CPU            {} µs per delivered, {} % of a core",
            opt(self.server_cpu_us_per_delivered, 3),
            opt(self.server_cpu_percent, 1)
        );
        let _ = writeln!(
            s,
            "server RSS            {} bytes, {} bytes per connection",
            self.server_rss_bytes.map_or("-".to_owned(), |v| v.to_string()),
            opt(self.rss_per_connection_bytes, 0)
        );
        if self.offered_per_sec > 0 && self.party_size > 1 {
            let state = if self.queues_grew { "GREW (falling behind)" } else { "steady" };
            let _ = writeln!(
                s,
                "queues                {state}: outstanding deliveries {:+} over the window",
                self.queue_growth
            );
        }
        let _ = writeln!(
            s,
            "harness               {} µs CPU per delivered; sends late by p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            opt(self.harness_cpu_us_per_delivered, 3),
            self.harness_send_lag_us.p50,
            self.harness_send_lag_us.p99,
            self.harness_send_lag_us.max
        );
        let h = &self.harness;
        let _ = writeln!(
            s,
            "harness loop          busy {:.0} % (on a CPU {:.0} %); receive backlog up to {} bytes ({:.2} ms of traffic)",
            h.busy_percent, h.cpu_percent, h.recv_backlog_bytes_max, h.recv_backlog_ms
        );
        if h.unsent > 0 || h.blocked_turns > 0 {
            let _ = writeln!(
                s,
                "harness sends         {} scheduled messages never sent; {} turns held back by a full connection",
                h.unsent, h.blocked_turns
            );
        }
        let _ = writeln!(
            s,
            "harness bound         {}",
            h.bound.as_deref().map_or("no".to_owned(), |why| format!("YES: {why}"))
        );
        if self.verbose {
            self.verbose_lines(s);
        }
    }

    fn verbose_lines(&self, s: &mut String) {
        let t = &self.harness.turn_us;
        let _ = writeln!(
            s,
            "harness turns µs      p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={}); the longest began {:.1} ms into the window",
            t.p50, t.p99, t.p999, t.max, t.count, self.harness.turn_max_at_ms
        );
        let _ = writeln!(
            s,
            "slowest delivery      {:.1} µs, meant to be sent {:.1} ms into the window",
            self.latency_us.max, self.latency_max_at_ms
        );
    }

    /// huddle, the floor and their ratio, one figure per line.
    fn side_by_side(&self, floor: &Report, s: &mut String) {
        self.head(s, "huddle, then the floor (same schedule, connections, parties and payload)");
        let _ = writeln!(s, "{:<26}{:>14}{:>14}{:>14}", "", "huddle", "floor", "huddle/floor");
        // `digits: None` marks a row whose ratio means nothing (a time within the window).
        let mut row = |name: &str, h: Option<f64>, f: Option<f64>, digits: Option<usize>| {
            let d = digits.unwrap_or(1);
            let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.d$}"));
            let r = match (h, f, digits) {
                (Some(h), Some(f), Some(_)) => ratio(h, f).map_or("-".to_owned(), |r| format!("{r:.2}")),
                _ => "-".to_owned(),
            };
            let _ = writeln!(s, "{name:<26}{:>14}{:>14}{r:>14}", cell(h), cell(f));
        };
        let (hl, fl) = (&self.latency_us, &floor.latency_us);
        row("sent /s", Some(self.sent_per_sec), Some(floor.sent_per_sec), Some(0));
        row(
            &format!("delivered {}/s", self.unit),
            Some(self.delivered_per_sec),
            Some(floor.delivered_per_sec),
            Some(0),
        );
        row("errors", Some(self.errors as f64), Some(floor.errors as f64), Some(0));
        row("lost", Some(self.lost as f64), Some(floor.lost as f64), Some(0));
        row("latency p50 µs", Some(hl.p50), Some(fl.p50), Some(1));
        row("latency p90 µs", Some(hl.p90), Some(fl.p90), Some(1));
        row("latency p99 µs", Some(hl.p99), Some(fl.p99), Some(1));
        row("latency p99.9 µs", Some(hl.p999), Some(fl.p999), Some(1));
        row("latency max µs", Some(hl.max), Some(fl.max), Some(1));
        row("server CPU µs/delivered", self.server_cpu_us_per_delivered, floor.server_cpu_us_per_delivered, Some(3));
        row("server CPU % of a core", self.server_cpu_percent, floor.server_cpu_percent, Some(1));
        row(
            "server RSS bytes",
            self.server_rss_bytes.map(|b| b as f64),
            floor.server_rss_bytes.map(|b| b as f64),
            Some(0),
        );
        row("RSS per connection bytes", self.rss_per_connection_bytes, floor.rss_per_connection_bytes, Some(0));
        row("queue growth", Some(self.queue_growth as f64), Some(floor.queue_growth as f64), Some(0));
        row(
            "harness send lag p99 µs",
            Some(self.harness_send_lag_us.p99),
            Some(floor.harness_send_lag_us.p99),
            Some(1),
        );
        row("harness busy %", Some(self.harness.busy_percent), Some(floor.harness.busy_percent), Some(0));
        row("harness on a CPU %", Some(self.harness.cpu_percent), Some(floor.harness.cpu_percent), Some(0));
        row("harness backlog ms", Some(self.harness.recv_backlog_ms), Some(floor.harness.recv_backlog_ms), Some(2));
        if self.verbose {
            row("harness turn p99.9 µs", Some(self.harness.turn_us.p999), Some(floor.harness.turn_us.p999), Some(1));
            row("harness turn max µs", Some(self.harness.turn_us.max), Some(floor.harness.turn_us.max), Some(1));
            row("longest turn at ms", Some(self.harness.turn_max_at_ms), Some(floor.harness.turn_max_at_ms), None);
            row("slowest delivery at ms", Some(self.latency_max_at_ms), Some(floor.latency_max_at_ms), None);
        }
        for (side, r) in [("huddle", self), ("floor", floor)] {
            if r.queues_grew {
                let _ = writeln!(s, "{side}: queues GREW over the window (falling behind)");
            }
            if let Some(why) = &r.harness.bound {
                let _ = writeln!(s, "{side}: HARNESS BOUND: {why}");
            }
            if let Some(e) = &r.first_error {
                let _ = writeln!(s, "{side}: first error: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p50: f64, p99: f64, delivered: f64) -> Report {
        Report {
            scenario: "fanout",
            against: "huddle",
            mode: "ack",
            delivered_per_sec: delivered,
            latency_us: Percentiles { p50, p90: p99, p99, p999: p99, max: p99, count: 10 },
            server_cpu_us_per_delivered: Some(0.5),
            ..Report::default()
        }
    }

    #[test]
    fn side_by_side_reports_carry_the_floor_and_ratios() {
        let floor = Report { against: "floor", server_cpu_us_per_delivered: Some(0.25), ..report(10.0, 40.0, 3000.0) };
        let both = Report { floor: Some(Box::new(floor)), ..report(20.0, 100.0, 3000.0) };
        let json = both.to_json();
        assert_eq!(json["floor"]["against"], "floor");
        assert_eq!(json["ratio"]["latency_us"]["p50"], 2.0);
        assert_eq!(json["ratio"]["latency_us"]["p99"], 2.5);
        assert_eq!(json["ratio"]["server_cpu_us_per_delivered"], 2.0);
        assert_eq!(json["ratio"]["delivered_per_sec"], 1.0);
        // No RSS on either side: no ratio rather than a division by zero.
        assert!(json["ratio"]["rss_per_connection_bytes"].is_null());
        assert!(both.table().contains("huddle/floor"));
        assert!(report(1.0, 2.0, 3.0).to_json().get("floor").is_none());
    }

    #[test]
    fn the_harness_is_bound_when_busy_or_late_against_the_tail() {
        let mut r = report(100.0, 400.0, 1000.0);
        assert_eq!(harness_bound(&r), None);
        // A few messages owed at the window's end, a normal lag: not bound.
        r.harness.unsent = 7;
        assert_eq!(harness_bound(&r), None);
        r.harness.busy_percent = 95.0;
        r.harness.cpu_percent = 90.0;
        assert!(harness_bound(&r).unwrap().contains("busy"));
        assert!(!harness_bound(&r).unwrap().contains("not quiet"));
        r.harness.cpu_percent = 20.0;
        assert!(harness_bound(&r).unwrap().contains("not quiet"));
        r.harness.busy_percent = 10.0;
        // Late, but a small share of a long tail: the server's tail.
        r.latency_us.p99 = 50_000.0;
        r.harness_send_lag_us.p99 = 2_000.0;
        assert_eq!(harness_bound(&r), None);
        r.harness_send_lag_us.p99 = 20_000.0;
        assert!(harness_bound(&r).unwrap().contains("sent late"));
        assert!(harness_bound(&r).unwrap().contains("7 scheduled messages never sent"));
        r.harness.blocked_turns = 3;
        assert!(harness_bound(&r).unwrap().contains("not keeping up either"));
        r.harness_send_lag_us.p99 = 0.0;
        r.harness.recv_backlog_ms = 30.0;
        assert!(harness_bound(&r).unwrap().contains("unread"));
    }

    #[test]
    fn queues_grow_past_a_share_of_the_offered_deliveries() {
        // 10,000 sends/s for 8 s to 3 recipients each: 240,000 deliveries offered, 2,400 allowed.
        assert!(!queues_grew(2_000, 10_000, 8.0, 4, 100));
        assert!(queues_grew(3_000, 10_000, 8.0, 4, 100));
        // At a trivial rate, one message per connection in flight is jitter, not growth.
        assert!(!queues_grew(40, 100, 0.5, 4, 16));
        assert!(!queues_grew(-500, 100, 0.5, 4, 16));
    }
}
