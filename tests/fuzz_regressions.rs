//! Runs every committed fuzz input (seed corpora in `fuzz/corpus/<target>/` and crash
//! reproductions in `fuzz/regressions/<target>/`) through the same entry points the cargo-fuzz
//! targets call, so a crash once found stays fixed under plain `cargo test`, with no fuzzer
//! installed. The seeds themselves are built here; `HUDDLE_WRITE_FUZZ_SEEDS=1 cargo test --test
//! fuzz_regressions` rewrites `fuzz/corpus/` from them.

use huddle::core::{Cid, Request};
use huddle::fuzzing;
use huddle::wire::Encoder;
use std::path::Path;

/// A masked client frame (RFC 6455 §5.3) with a fixed mask, as a browser would send it.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn seeds_decode_envelope() -> Vec<(&'static str, Vec<u8>)> {
    let mut encoder = Encoder::new();
    vec![
        ("ping", encoder.request(Cid(1), &Request::Ping).to_vec()),
        ("empty", vec![]),
        ("junk", b"\x0c\x00\x00\x00".to_vec()),
    ]
}

fn seeds_conn_bytes() -> Vec<(&'static str, Vec<u8>)> {
    let ping = Encoder::new().request(Cid(7), &Request::Ping).to_vec();
    let with_upgrade = |frames: Vec<Vec<u8>>| [vec![1u8], frames.concat()].concat();
    vec![
        ("raw_upgrade", [vec![0u8], fuzzing::canned_upgrade().to_vec()].concat()),
        ("raw_upgrade_slow", [vec![2u8], fuzzing::canned_upgrade().to_vec()].concat()),
        ("ping", with_upgrade(vec![client_frame(0x2, &ping)])),
        (
            "ping_text_close",
            with_upgrade(vec![client_frame(0x2, &ping), client_frame(0x1, b"hi"), client_frame(0x8, &[0x03, 0xe8])]),
        ),
        ("ws_ping", with_upgrade(vec![client_frame(0x9, b"p"), client_frame(0x2, &ping)])),
        ("garbage_frame", with_upgrade(vec![client_frame(0x2, b"not an envelope")])),
        ("unmasked", with_upgrade(vec![vec![0x82, 0x02, 0xff, 0xff]])),
        ("oversize", with_upgrade(vec![vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]])),
    ]
}

fn run_dir(dir: &Path, run: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut count = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    count
}

fn check_target(target: &str, seeds: Vec<(&'static str, Vec<u8>)>, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = root.join("corpus").join(target);
    if std::env::var_os("HUDDLE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&corpus).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(corpus.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    for (_, bytes) in &seeds {
        run(bytes);
    }
    let committed = run_dir(&corpus, run) + run_dir(&root.join("regressions").join(target), run);
    assert!(committed >= seeds.len(), "{target}: seed corpus missing from fuzz/corpus/{target}");
}

#[test]
fn decode_envelope_inputs_never_panic_and_round_trip() {
    check_target("decode_envelope", seeds_decode_envelope(), fuzzing::decode_envelope);
}

fn connection_bytes(data: &[u8]) {
    fuzzing::connection_bytes(data);
}

#[test]
fn conn_bytes_inputs_never_panic() {
    check_target("conn_bytes", seeds_conn_bytes(), connection_bytes);
}

#[test]
fn conn_bytes_seeds_reach_every_layer() {
    let seeds: std::collections::HashMap<_, _> = seeds_conn_bytes().into_iter().collect();
    let run = |name: &str| fuzzing::connection_bytes(&seeds[name]);
    assert!(run("raw_upgrade").upgraded);
    assert!(run("raw_upgrade_slow").upgraded, "a request read a few bytes at a time still upgrades");
    assert_eq!(run("ping").requests, 1);
    let mixed = run("ping_text_close");
    assert_eq!((mixed.requests, mixed.decode_errors), (1, 0), "text frames are answered without a decode");
    assert_eq!(run("ws_ping").requests, 1, "a WebSocket ping does not disturb the request after it");
    assert_eq!(run("garbage_frame").decode_errors, 1);
    assert_eq!(run("unmasked").closed_with, Some("unmasked client frame"));
    assert_eq!(run("oversize").closed_with, Some("message too big"));
    assert!(fuzzing::connection_bytes(b"\x00GET / HTTP/1.1\r\n\r\n").rejected);
}
