//! `sweep`: fan-out at increasing offered rates until it breaks down (p99 over `--p99-max-us`,
//! errors or lost messages over 1 %, or delivering under 90 % of what was offered), then a
//! table and an SVG plot of p50 / p99 / p99.9 latency against delivered messages per second.

use super::{run_distributed, Options, Report, Scenario};
use std::fmt::Write as _;

pub(crate) fn run(o: &Options) -> Result<Report, String> {
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
    let mut steps = Vec::new();
    for rate in rates {
        let step_opts = Options { scenario: Scenario::Fanout, rate, ..o.clone() };
        eprintln!("huddle-load: sweep step at {rate} msgs/s offered");
        let report = match run_distributed(&step_opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("huddle-load: sweep stops at {rate}/s: {e}");
                break;
            }
        };
        eprint!("{}", table(std::slice::from_ref(&report)));
        let broke = broke_down(&report, o.p99_max_us, o.party_size);
        steps.push(report);
        if let Some(why) = broke {
            eprintln!("huddle-load: sweep stops: {why}");
            break;
        }
        // Let the server reap the last step's sessions before the next one connects.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    if steps.is_empty() {
        return Err("sweep: no step completed".into());
    }
    let svg = plot(&steps, o.party_size, o.payload_bytes);
    std::fs::write(&o.svg, svg).map_err(|e| format!("writing {}: {e}", o.svg.display()))?;
    let peak = steps
        .iter()
        .max_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec))
        .cloned()
        .expect("steps is not empty");
    Ok(Report { scenario: "sweep", steps, svg: Some(o.svg.display().to_string()), ..peak })
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
    None
}

pub(crate) fn table(steps: &[Report]) -> String {
    let mut s = String::from(
        "offered/s   sent/s      delivered/s  p50 µs    p90 µs    p99 µs    p99.9 µs  max µs    errors  lost  srv µs/msg  srv CPU %  lag p99 µs\n",
    );
    for r in steps {
        let l = &r.latency_us;
        let _ = writeln!(
            s,
            "{:<11} {:<11.0} {:<12.0} {:<9.1} {:<9.1} {:<9.1} {:<9.1} {:<9.1} {:<7} {:<5} {:<11} {:<10} {:.1}",
            r.offered_per_sec,
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
        );
    }
    s
}

/// A hand-written SVG: log-scale latency (µs) against delivered messages per second.
pub(crate) fn plot(steps: &[Report], party_size: usize, payload_bytes: usize) -> String {
    let (w, h, left, right, top, bottom) = (800.0, 500.0, 80.0, 20.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let x_max = steps.iter().map(|r| r.delivered_per_sec).fold(1.0, f64::max) * 1.1;
    let lat = |r: &Report| [r.latency_us.p50, r.latency_us.p99, r.latency_us.p999];
    let y_lo = steps.iter().flat_map(lat).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min).max(1.0);
    let y_hi = steps.iter().flat_map(lat).fold(10.0, f64::max);
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
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">huddle fan-out latency vs delivered msgs/s (parties of {party_size}, {payload_bytes}-byte data)</text>"#,
        w / 2.0
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
    for (idx, (name, color, which)) in series.iter().enumerate() {
        let points: Vec<String> =
            steps.iter().map(|r| format!("{:.1},{:.1}", x(r.delivered_per_sec), y(lat(r)[*which]))).collect();
        let _ =
            writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, points.join(" "));
        for r in steps {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x(r.delivered_per_sec),
                y(lat(r)[*which])
            );
        }
        let ly = top + 16.0 + idx as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/>"#,
            left + 10.0,
            left + 30.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{name}</text>"#, left + 35.0, ly + 4.0);
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
    }

    #[test]
    fn plot_is_svg_with_three_series() {
        let svg = plot(&[step(1000, 3000.0, 100.0), step(2000, 6000.0, 400.0)], 4, 64);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
