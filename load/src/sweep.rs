//! `sweep`: fan-out at increasing offered rates, one sustained step each, until a step does
//! not hold (p99 over `--p99-max-us`, errors or lost messages over 1 %, delivering under 90 %
//! of what was offered, or outstanding deliveries growing over the window); then a table, the
//! highest rate that held (the sustained peak), and an SVG plot of p50 / p99 / p99.9 latency
//! against delivered messages per second.
//!
//! With `--against both` every step runs huddle and then the floor at the same rate, until the
//! floor's own breakdown; above it, huddle's figures stand alone (SPEC §7). The summary compares
//! the two sustained peaks, each side's highest rate that held.

use super::{run_side, Against, Options, Report, Scenario};
use std::fmt::Write as _;
use std::time::Duration;

/// SPEC §7 asks for sustained steps of at least this long: shorter ones fit inside the
/// transients of a step's start (connection setup, allocator growth, the kernel's buffers).
const STEP_DURATION_MIN: Duration = Duration::from_secs(8);

pub(crate) fn run(o: &Options) -> Result<Report, String> {
    if o.duration < STEP_DURATION_MIN {
        eprintln!(
            "huddle-load: sweep steps of {:.1} s are shorter than the {} s SPEC §7 measures with: fine for a try, \
             not for figures",
            o.duration.as_secs_f64(),
            STEP_DURATION_MIN.as_secs()
        );
    }
    let rates: Vec<u64> = if o.rates.is_empty() {
        let mut r = o.rate_start as f64;
        (0..o.steps_max)
            .map(|_| {
                let rate = r.round() as u64;
                r *= o.rate_factor;
                rate
            })
            .collect()
    } else {
        o.rates.clone()
    };
    let primary = if o.against == Against::Floor { Against::Floor } else { Against::Huddle };
    // One floor process for every step; killed when this function returns.
    let mut floor_process = None;
    let mut floor_holds = o.against == Against::Both;
    let mut steps: Vec<Report> = Vec::new();
    for rate in rates {
        let step_opts = Options { scenario: Scenario::Fanout, rate, ..o.clone() };
        eprintln!("huddle-load: sweep step at {rate} msgs/s offered");
        let mut report = match run_side(&step_opts, primary, &mut floor_process) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("huddle-load: sweep stops at {rate}/s: {e}");
                break;
            }
        };
        judge(&mut report, o);
        if floor_holds {
            std::thread::sleep(Duration::from_millis(500));
            match run_side(&step_opts, Against::Floor, &mut floor_process) {
                Ok(mut floor) => {
                    judge(&mut floor, o);
                    if let Some(why) = &floor.breakdown {
                        eprintln!("huddle-load: the floor does not hold at {rate}/s ({why}); above, huddle's figures stand alone");
                        floor_holds = false;
                    }
                    report.floor = Some(Box::new(floor));
                }
                Err(e) => {
                    eprintln!(
                        "huddle-load: the floor's step at {rate}/s failed: {e}; above, huddle's figures stand alone"
                    );
                    floor_holds = false;
                }
            }
        }
        eprint!("{}", table(std::slice::from_ref(&report)));
        let breakdown = report.breakdown.clone();
        steps.push(report);
        if let Some(why) = breakdown {
            eprintln!("huddle-load: sweep stops: {why}");
            break;
        }
        // Let the server reap the last step's sessions before the next one connects.
        std::thread::sleep(Duration::from_millis(500));
    }
    if steps.is_empty() {
        return Err("sweep: no step completed".into());
    }
    let svg = plot(&steps, o.party_size, o.payload_bytes);
    std::fs::write(&o.svg, svg).map_err(|e| format!("writing {}: {e}", o.svg.display()))?;
    let peak = sustained_peak(steps.iter()).unwrap_or(&steps[0]).clone();
    let floor_peak = sustained_peak(steps.iter().filter_map(|s| s.floor.as_deref())).cloned();
    let report = Report {
        scenario: "sweep",
        steps,
        svg: Some(o.svg.display().to_string()),
        floor: floor_peak.map(Box::new),
        ..peak
    };
    if o.json {
        // The table's summary is not in the JSON's shape: say it on stderr too.
        eprint!("{}", summary(&report));
    }
    Ok(report)
}

/// The step with the highest offered rate that held.
fn sustained_peak<'a>(steps: impl Iterator<Item = &'a Report>) -> Option<&'a Report> {
    steps.filter(|s| s.held == Some(true)).max_by_key(|s| s.offered_per_sec)
}

fn judge(r: &mut Report, o: &Options) {
    r.breakdown = broke_down(r, o.p99_max_us, o.party_size);
    r.held = Some(r.breakdown.is_none());
}

/// Why a step counts as broken down, if it does.
fn broke_down(r: &Report, p99_max_us: f64, party_size: usize) -> Option<String> {
    let offered_deliveries = r.offered_per_sec as f64 * (party_size as f64 - 1.0);
    let sent = (r.sent_per_sec * r.duration_s).max(1.0);
    if r.latency_us.p99 > p99_max_us {
        return Some(format!("p99 {:.0} µs over {p99_max_us} µs", r.latency_us.p99));
    }
    if (r.errors + r.lost) as f64 > 0.01 * sent * (party_size as f64 - 1.0) {
        return Some(format!("{} errors and {} lost", r.errors, r.lost));
    }
    if offered_deliveries > 0.0 && r.delivered_per_sec < 0.9 * offered_deliveries {
        return Some(format!("delivered {:.0}/s of {offered_deliveries:.0}/s offered", r.delivered_per_sec));
    }
    if r.queues_grew {
        return Some(format!("queues grew: {:+} outstanding deliveries over the window", r.queue_growth));
    }
    None
}

/// One row per step and side (huddle, then the floor and the ratio when it ran beside).
pub(crate) fn table(steps: &[Report]) -> String {
    let mut s = String::from(
        "offered/s   side    sent/s      delivered/s  p50 µs    p90 µs    p99 µs    p99.9 µs  max µs     errors  lost  \
         srv µs/msg  srv CPU %  lag p99 µs  busy %  held\n",
    );
    for r in steps {
        row(&mut s, &r.offered_per_sec.to_string(), r);
        if let Some(f) = &r.floor {
            row(&mut s, "", f);
            ratio_row(&mut s, r, f);
        }
    }
    s
}

fn row(s: &mut String, offered: &str, r: &Report) {
    let l = &r.latency_us;
    let mut held = match (r.held, &r.breakdown) {
        (Some(true), _) => "yes".to_owned(),
        (_, Some(why)) => format!("no ({why})"),
        _ => "-".to_owned(),
    };
    if r.harness.bound.is_some() {
        held.push_str(", HARNESS BOUND");
    }
    let _ = writeln!(
        s,
        "{offered:<11} {:<7} {:<11.0} {:<12.0} {:<9.1} {:<9.1} {:<9.1} {:<9.1} {:<10.1} {:<7} {:<5} {:<11} {:<10} {:<11.1} {:<7.0} {held}",
        r.against,
        r.sent_per_sec,
        r.delivered_per_sec,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        r.errors,
        r.lost,
        r.server_cpu_us_per_delivered.map_or("-".into(), |v| format!("{v:.3}")),
        r.server_cpu_percent.map_or("-".into(), |v| format!("{v:.0}")),
        r.harness_send_lag_us.p99,
        r.harness.busy_percent,
    );
}

fn ratio_row(s: &mut String, h: &Report, f: &Report) {
    let r = |a: f64, b: f64| if a > 0.0 && b > 0.0 { format!("{:.2}", a / b) } else { "-".to_owned() };
    let o = |a: Option<f64>, b: Option<f64>| r(a.unwrap_or(0.0), b.unwrap_or(0.0));
    let (hl, fl) = (&h.latency_us, &f.latency_us);
    let _ = writeln!(
        s,
        "{:<11} {:<7} {:<11} {:<12} {:<9} {:<9} {:<9} {:<9} {:<10} {:<7} {:<5} {:<11} {:<10}",
        "",
        "ratio",
        r(h.sent_per_sec, f.sent_per_sec),
        r(h.delivered_per_sec, f.delivered_per_sec),
        r(hl.p50, fl.p50),
        r(hl.p90, fl.p90),
        r(hl.p99, fl.p99),
        r(hl.p999, fl.p999),
        r(hl.max, fl.max),
        "",
        "",
        o(h.server_cpu_us_per_delivered, f.server_cpu_us_per_delivered),
        o(h.server_cpu_percent, f.server_cpu_percent),
    );
}

/// The sustained peaks, as the table's last lines.
pub(crate) fn summary(r: &Report) -> String {
    let mut s = String::new();
    let line = |s: &mut String, who: &str, p: &Report| {
        let _ = writeln!(
            s,
            "{who} sustained peak: {} sent/s offered, {:.0} delivered/s, server {} µs CPU per delivered{}",
            p.offered_per_sec,
            p.delivered_per_sec,
            p.server_cpu_us_per_delivered.map_or("-".into(), |v| format!("{v:.3}")),
            if p.harness.bound.is_some() {
                " (HARNESS BOUND: the harness, not the server, set this limit)"
            } else {
                ""
            }
        );
    };
    if r.held == Some(true) {
        line(&mut s, r.against, r);
    } else {
        let _ = writeln!(s, "{}: no step held", r.against);
    }
    if let Some(f) = &r.floor {
        line(&mut s, "floor", f);
        if let (Some(h), Some(fl)) = (r.server_cpu_us_per_delivered, f.server_cpu_us_per_delivered) {
            if r.held == Some(true) && fl > 0.0 {
                let _ = writeln!(s, "CPU per delivered at peak, huddle/floor: {:.2}", h / fl);
            }
        }
    }
    s
}

/// A hand-written SVG: log-scale latency (µs) against delivered messages per second; the
/// floor's curves, when it ran beside, dashed in the same colours.
pub(crate) fn plot(steps: &[Report], party_size: usize, payload_bytes: usize) -> String {
    let (w, h, left, right, top, bottom) = (800.0, 500.0, 80.0, 20.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let floor_steps: Vec<Report> = steps.iter().filter_map(|s| s.floor.as_deref().cloned()).collect();
    let all = || steps.iter().chain(floor_steps.iter());
    let x_max = all().map(|r| r.delivered_per_sec).fold(1.0, f64::max) * 1.1;
    let lat = |r: &Report| [r.latency_us.p50, r.latency_us.p99, r.latency_us.p999];
    let y_lo = all().flat_map(lat).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min).max(1.0);
    let y_hi = all().flat_map(lat).fold(10.0, f64::max);
    let (log_lo, log_hi) = (y_lo.log10().floor(), y_hi.log10().ceil().max(y_lo.log10().floor() + 1.0));
    let x = |v: f64| left + v / x_max * pw;
    let y = |v: f64| top + ph - (v.max(1.0).log10() - log_lo) / (log_hi - log_lo) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}{} fan-out latency vs delivered msgs/s (parties of {party_size}, {payload_bytes}-byte data)</text>"#,
        w / 2.0,
        // huddle's sessions' format, when it is not huddle's own.
        if steps.first().is_some_and(|r| r.format == "json") { "Nakama JSON: " } else { "" },
        if floor_steps.is_empty() {
            steps.first().map_or("huddle", |r| r.against)
        } else {
            "huddle (solid) and floor (dashed)"
        }
    );
    for decade in (log_lo as i32)..=(log_hi as i32) {
        let v = 10f64.powi(decade);
        let yy = y(v);
        let _ = writeln!(s, r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/>"##, w - right);
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, left - 6.0, yy + 4.0, fmt_us(v));
    }
    for i in 0..=5 {
        let v = x_max * i as f64 / 5.0;
        let xx = x(v);
        let _ = writeln!(s, r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{}" stroke="#eee"/>"##, top + ph);
        let _ =
            writeln!(s, r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"#, top + ph + 18.0, fmt_count(v));
    }
    let _ = writeln!(s, r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">delivered messages per second</text>"#,
        left + pw / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">latency (µs, log scale)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let series = [("p50", "#1f77b4", 0), ("p99", "#ff7f0e", 1), ("p99.9", "#d62728", 2)];
    let sides: [(&[Report], &str, &str); 2] = [(steps, "", ""), (&floor_steps, "floor ", r#" stroke-dasharray="6 4""#)];
    let mut legend = 0;
    for (side_steps, prefix, dash) in sides {
        if side_steps.is_empty() {
            continue;
        }
        for (name, color, which) in series {
            let points: Vec<String> =
                side_steps.iter().map(|r| format!("{:.1},{:.1}", x(r.delivered_per_sec), y(lat(r)[which]))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                points.join(" ")
            );
            for r in side_steps {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    x(r.delivered_per_sec),
                    y(lat(r)[which])
                );
            }
            let ly = top + 16.0 + legend as f64 * 16.0;
            legend += 1;
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>"#,
                left + 10.0,
                left + 30.0
            );
            let _ = writeln!(s, r#"<text x="{}" y="{}">{prefix}{name}</text>"#, left + 35.0, ly + 4.0);
        }
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_us(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{} s", v / 1_000_000.0)
    } else if v >= 1000.0 {
        format!("{} ms", v / 1000.0)
    } else {
        format!("{v} µs")
    }
}

fn fmt_count(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2}M", v / 1_000_000.0)
    } else if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::Percentiles;

    fn step(offered: u64, delivered: f64, p99: f64) -> Report {
        Report {
            offered_per_sec: offered,
            delivered_per_sec: delivered,
            sent_per_sec: delivered / 3.0,
            duration_s: 1.0,
            latency_us: Percentiles { p50: p99 / 3.0, p90: p99 / 2.0, p99, p999: p99 * 2.0, max: p99 * 3.0, count: 10 },
            ..Report::default()
        }
    }

    #[test]
    fn breakdown_rules() {
        assert_eq!(broke_down(&step(1000, 3000.0, 100.0), 20_000.0, 4), None);
        assert!(broke_down(&step(1000, 3000.0, 30_000.0), 20_000.0, 4).unwrap().contains("p99"));
        assert!(broke_down(&step(1000, 2000.0, 100.0), 20_000.0, 4).unwrap().contains("delivered"));
        let growing = Report { queues_grew: true, queue_growth: 9_000, ..step(1000, 3000.0, 100.0) };
        assert!(broke_down(&growing, 20_000.0, 4).unwrap().contains("queues grew"));
    }

    #[test]
    fn the_sustained_peak_is_the_highest_rate_that_held() {
        let held = |offered, ok| Report { held: Some(ok), ..step(offered, offered as f64 * 3.0, 100.0) };
        let steps = [held(1000, true), held(3000, true), held(2000, true), held(4000, false)];
        assert_eq!(sustained_peak(steps.iter()).map(|s| s.offered_per_sec), Some(3000));
        assert!(sustained_peak([held(1000, false)].iter()).is_none());
    }

    #[test]
    fn plot_is_svg_with_three_series_and_three_more_for_the_floor() {
        let svg = plot(&[step(1000, 3000.0, 100.0), step(2000, 6000.0, 400.0)], 4, 64);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.trim_end().ends_with("</svg>"));
        let beside = |offered, delivered, p99| Report {
            floor: Some(Box::new(step(offered, delivered, p99 / 2.0))),
            ..step(offered, delivered, p99)
        };
        let svg = plot(&[beside(1000, 3000.0, 100.0), beside(2000, 6000.0, 400.0)], 4, 64);
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert_eq!(svg.matches("stroke-dasharray").count(), 6, "three dashed curves, three dashed legend lines");
        assert!(table(&[beside(1000, 3000.0, 100.0)]).contains("ratio"));
    }
}
