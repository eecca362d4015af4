//! What a labelled party costs the server in memory (README "Search", issue 14 item 2): drives
//! the core directly (no sockets, so nothing but the server's own tables is measured) with
//! `--parties` parties (16,000 by default: 1,000 sessions × 16 parties each, the default
//! `parties_per_session_max`), all with labels of one shape, and reports the growth of this
//! process's resident memory (`VmRSS` in `/proc/self/status`) per party.
//!
//! Each shape is the largest label of its kind the server accepts at its default limits: the
//! example starts from the largest that fits `party_label_bytes_max` and shrinks it (fewer
//! values, shorter strings) until the first party's create succeeds, then creates every party
//! with that size. Keys and values differ between parties, so every party adds its own fields
//! and terms (the worst case for the index); `typical` is a realistic matchmaking label.
//!
//!     cargo run --release --example label_memory -- [--parties N] [--limit NAME=VALUE] [SHAPE ...]
//!
//! `--limit` sets `party_label_values_max`, `party_label_fields_max` or
//! `party_label_bytes_max` for the run (to see what another value would cost).
//!
//! Shapes: none, typical, numbers, strings, number-array, string-array, long-string,
//! long-path, mixed (all of them when none is named). Linux only (it reads
//! `/proc/self/status`).

use huddle::core::{
    Cid, ConnectOptions, Core, Identity, Now, Outbox, Output, PartyRequest, Request, SessionId, UserId, Username,
};
use huddle::limits::Limits;
use std::process::ExitCode;

const SHAPES: [&str; 9] =
    ["none", "typical", "numbers", "strings", "number-array", "string-array", "long-string", "long-path", "mixed"];

/// A short key or value unique to (party, index): base-36 digits, so that as many as possible
/// fit in a label.
fn unique(party: usize, index: usize, width: usize) -> String {
    let mut n = party * 4096 + index;
    let mut out = Vec::new();
    for _ in 0..width {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The label of `shape` for `party` with `size` values (or, for the long shapes, bytes);
/// `mixed` spreads its values over `fields` fields.
fn label(shape: &str, party: usize, size: usize, fields: usize) -> String {
    let join = |items: Vec<String>| items.join(",");
    match shape {
        "none" => String::new(),
        "typical" => format!(
            r#"{{"mode":"ranked","region":"eu-west","skill":{},"map":"dust","voice":true,"tags":["casual","eu"],"name":"party-{party}"}}"#,
            party % 3000
        ),
        "numbers" => format!("{{{}}}", join((0..size).map(|i| format!(r#""{}":1"#, unique(party, i, 4))).collect())),
        "strings" => format!(
            "{{{}}}",
            join((0..size).map(|i| format!(r#""{}":"{}""#, unique(party, i, 4), unique(party, i + 2048, 4))).collect())
        ),
        "number-array" => {
            format!(r#"{{"a":[{}]}}"#, join((0..size).map(|i| (party * 4096 + i).to_string()).collect()))
        }
        "string-array" => {
            format!(r#"{{"a":[{}]}}"#, join((0..size).map(|i| format!(r#""{}""#, unique(party, i, 4))).collect()))
        }
        "long-string" => format!(r#"{{"s":"{}{}"}}"#, unique(party, 0, 6), "x".repeat(size)),
        "long-path" => format!(
            r#"{{"{}{}":{{{}}}}}"#,
            unique(party, 0, 6),
            "p".repeat(size),
            join((0..8).map(|i| format!(r#""{}":1"#, unique(0, i, 1))).collect())
        ),
        // `size` unique strings over as many fields as allowed (`fields`), as long as the label
        // allows: every kind of cost at once.
        "mixed" => {
            let fields = fields.clamp(1, size.max(1));
            let text_len = 2048usize.saturating_sub(2 + fields * 10 + size * 3) / size.max(1);
            let value = |i: usize| format!(r#""{}{}""#, unique(party, i, 6), "v".repeat(text_len.saturating_sub(6)));
            let field = |f: usize| {
                let values: Vec<String> = (f..size).step_by(fields).map(value).collect();
                format!(r#""{}":[{}]"#, unique(party, f, 4), values.join(","))
            };
            format!("{{{}}}", join((0..fields).map(field).collect()))
        }
        other => panic!("unknown shape {other}"),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB")
}

fn create(core: &mut Core, session: SessionId, mut label: String) -> Result<(), String> {
    // The decoder copies a label out of its frame at its exact length; `format!` leaves spare
    // capacity that the party table would keep.
    label.shrink_to_fit();
    let mut out = Outbox::new();
    let request = PartyRequest::Create { open: true, max_size: 8, label, hidden: false, lobby: Default::default() };
    core.handle_request(session, Cid(1), Request::Party(request), Now::default(), &mut out);
    match &out.outputs()[0] {
        Output::Reply { result: Ok(_), .. } => Ok(()),
        Output::Reply { result: Err(error), .. } => Err(error.to_string()),
        other => panic!("unexpected output {other:?}"),
    }
}

/// (KiB of RSS per party, the size used, the label length) for one shape.
fn measure(shape: &str, parties: usize, limits: &Limits) -> (f64, usize, usize) {
    let limits = limits.clone();
    let per_session = limits.parties_per_session_max;
    let mut core = Core::new(limits.clone(), [9; 32]);
    let mut out = Outbox::new();
    let sessions: Vec<SessionId> = (0..parties.div_ceil(per_session))
        .map(|i| {
            let session = SessionId::new(i as u32, 1);
            let identity =
                Identity { user_id: UserId::new(&format!("user-{i}")), username: Username::new(&format!("U{i}")) };
            core.connect(session, identity, ConnectOptions::default(), Now::default(), &mut out);
            session
        })
        .collect();
    out.clear();
    // The largest size of this shape that fits the label limit, then shrunk until accepted.
    let mut size = match shape {
        "long-string" | "long-path" => limits.party_label_bytes_max,
        "mixed" => 64,
        _ => 4096,
    };
    // The probe party's index is the largest, so its label is the longest of the run.
    while size > 0 && label(shape, parties, size, limits.party_label_fields_max).len() > limits.party_label_bytes_max {
        size -= 1;
    }
    let mut refusal = String::new();
    while let Err(why) = create(&mut core, sessions[0], label(shape, parties, size, limits.party_label_fields_max)) {
        refusal = why;
        if size == 0 {
            panic!("{shape}: even the smallest label is refused: {refusal}");
        }
        size -= 1;
    }
    if !refusal.is_empty() {
        eprintln!("{shape}: larger labels refused ({refusal})");
    }
    let label_len = label(shape, 0, size, limits.party_label_fields_max).len();
    let before = rss_kib();
    for party in 1..parties {
        let session = sessions[party / per_session];
        if let Err(why) = create(&mut core, session, label(shape, party, size, limits.party_label_fields_max)) {
            panic!("{shape}: party {party} refused: {why}");
        }
    }
    let after = rss_kib();
    assert_eq!(core.party_count(), parties);
    ((after - before) as f64 / (parties - 1) as f64, size, label_len)
}

/// The label limits this example can vary (`--limit name=value`); false for another name.
fn set_limit(limits: &mut Limits, name: &str, value: &str) -> bool {
    let Ok(value) = value.parse::<usize>() else { return false };
    match name {
        "party_label_values_max" => limits.party_label_values_max = value,
        "party_label_fields_max" => limits.party_label_fields_max = value,
        "party_label_bytes_max" => limits.party_label_bytes_max = value,
        _ => return false,
    }
    limits.validate().is_ok()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut parties = 16_000;
    let mut shapes = Vec::new();
    let mut limits = Limits::default();
    let mut passed = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--parties" => parties = args.next().and_then(|n| n.parse().ok()).unwrap_or(parties),
            "--limit" => {
                // --limit name=value: one of the label limits, to see what another value costs.
                let Some((name, value)) =
                    args.next().and_then(|l| l.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())))
                else {
                    eprintln!("--limit name=value");
                    return ExitCode::from(2);
                };
                passed.extend(["--limit".to_owned(), format!("{name}={value}")]);
                if !set_limit(&mut limits, &name, &value) {
                    eprintln!("unknown or invalid limit {name}={value}");
                    return ExitCode::from(2);
                }
            }
            shape if SHAPES.contains(&shape) => shapes.push(shape.to_owned()),
            other => {
                eprintln!("unknown argument {other}; shapes: {}", SHAPES.join(", "));
                return ExitCode::from(2);
            }
        }
    }
    if shapes.is_empty() {
        shapes = SHAPES.iter().map(|s| s.to_string()).collect();
    }
    if shapes.len() == 1 {
        let (kib, size, bytes) = measure(&shapes[0], parties, &limits);
        println!("{:>13}  {size:>9}  {bytes:>6}  {kib:>11.2}", shapes[0]);
        return ExitCode::SUCCESS;
    }
    // One process per shape: memory a shape freed would otherwise be reused by the next one
    // before its RSS grows.
    println!("{:>13}  {:>9}  {:>6}  {:>11}", "shape", "size", "bytes", "KiB/party");
    let exe = std::env::current_exe().expect("own executable");
    for shape in shapes {
        let status = std::process::Command::new(&exe)
            .args(["--parties", &parties.to_string(), &shape])
            .args(&passed)
            .status()
            .expect("run one shape");
        if !status.success() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
