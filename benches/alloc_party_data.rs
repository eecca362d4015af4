//! Allocations per delivered party-data message in steady state (SPEC §7: none). A counting
//! global allocator wraps the system's; the server's own driver runs over in-memory sockets
//! (`huddle::benching`): each round puts client frames into senders' sockets and runs one loop
//! turn (read, tungstenite, decode, core, encode, queue, `writev` flush into a sink). After a
//! warm-up that lets every buffer reach its working size, the measured rounds must allocate
//! nothing. Every combination of acknowledged and fire-and-forget data (`cid = 0`), parties of
//! 4 and 64, and one request per turn (moderate load) or every session once per turn (a busy
//! loop) is run; the table goes to stdout and the process fails when any allocation was
//! counted (`--report` only reports).
//!
//! `cargo bench --bench alloc_party_data` runs it all; `-- --only party4-acked-one --rounds N`
//! runs one combination (what `scripts/callgrind-delivery.sh` counts instructions of).

use huddle::benching::{Mode, PartyFanout, Shape};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sessions per combination: about the harness's moderate-load shape (400 sessions).
const SESSIONS: usize = 256;
const PAYLOAD_BYTES: usize = 64;

struct Combination {
    party_size: usize,
    mode: Mode,
    shape: Shape,
}

impl Combination {
    fn name(&self) -> String {
        let mode = match self.mode {
            Mode::Acked => "acked",
            Mode::FireAndForget => "fire",
        };
        let shape = match self.shape {
            Shape::One => "one",
            Shape::All => "all",
        };
        format!("party{}-{mode}-{shape}", self.party_size)
    }

    /// Rounds that let every session send many times.
    fn default_rounds(&self) -> usize {
        match self.shape {
            Shape::One => SESSIONS * 40,
            Shape::All => 40,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let only = value("--only");
    let rounds: Option<usize> = value("--rounds").map(|r| r.parse().expect("--rounds N"));
    let report_only = args.iter().any(|a| a == "--report");

    let mut combinations = Vec::new();
    for party_size in [4, 64] {
        for mode in [Mode::Acked, Mode::FireAndForget] {
            for shape in [Shape::One, Shape::All] {
                combinations.push(Combination { party_size, mode, shape });
            }
        }
    }
    println!(
        "{:<20} {:>8} {:>10} {:>12} {:>12} {:>14}",
        "combination", "turns", "requests", "deliveries", "allocations", "allocs/deliv."
    );
    let mut failed = false;
    let mut ran = 0;
    for c in combinations.iter().filter(|c| only.as_deref().is_none_or(|o| o == c.name())) {
        ran += 1;
        let mut fanout = PartyFanout::new(SESSIONS / c.party_size, c.party_size, PAYLOAD_BYTES, c.mode);
        let rounds = rounds.unwrap_or_else(|| c.default_rounds());
        // Warm-up: queues, pools and the core's buffers grow to their working sizes.
        fanout.warm_up(c.shape, c.default_rounds());
        let (allocations, bytes) = (ALLOCATIONS.load(Ordering::Relaxed), ALLOCATED_BYTES.load(Ordering::Relaxed));
        let tally = fanout.measured_rounds(c.shape, rounds);
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
        let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
        println!(
            "{:<20} {:>8} {:>10} {:>12} {:>12} {:>14.3}   ({} bytes allocated)",
            c.name(),
            tally.turns,
            tally.requests,
            tally.deliveries,
            allocations,
            allocations as f64 / tally.deliveries as f64,
            bytes
        );
        failed |= allocations > 0;
    }
    assert!(ran > 0, "--only names no combination");
    if failed && !report_only {
        eprintln!("steady state allocated on the party-data path (SPEC §7: nothing per delivered message)");
        std::process::exit(1);
    }
}
