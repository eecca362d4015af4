//! Deterministic simulation of statuses and follows (SPEC C-3, C-6, S-1 … S-3), driving the
//! sans-IO `Core` directly: no sockets, no clock, no threads.
//!
//! Each seed picks small random limits (statuses of a few bytes, a handful of follows and ids
//! per request) and a population of users, some sharing usernames, then runs a random sequence
//! of connects (visible or not), disconnects (some of stale sessions), status updates (new,
//! repeated, empty, offline, oversize), follows (by id, by username, own user, unknown users,
//! over the limits, bad ids) and unfollows. A plain model (who is connected, each session's
//! status and follows) predicts every output exactly: one reply per request with its cid, to
//! the requester and first; each event's content; each event's recipients (the followers of
//! the user and the user's own sessions, nobody else, nobody twice). After every step the core
//! checks its own invariants, and the harness compares the touched session's status and follows
//! with the model, so a rejected request that changed anything is caught. At the end everyone
//! disconnects and every table must be empty.
//!
//! `cargo test` runs SEEDS seeds of STEPS steps. A failure names its seed; replay it alone with
//! `HUDDLE_SIM_SEED=<seed> cargo test --test sim_status` (`HUDDLE_SIM_STEPS` overrides the
//! step count). A canary proves the invariant checker does catch a corrupted index.

use huddle::sim::status::*;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be an integer")))
}

const SEEDS: u64 = 100;
const STEPS: usize = 1000;

#[test]
fn status_simulation_over_many_seeds_matches_the_model_and_keeps_invariants() {
    // In release builds the core's invariant checks compile to nothing; the model comparison
    // still runs.
    let steps = env_u64("HUDDLE_SIM_STEPS").map_or(STEPS, |s| s as usize);
    let replay = env_u64("HUDDLE_SIM_SEED");
    let seeds: Vec<u64> = match replay {
        Some(seed) => vec![seed],
        None => (0..SEEDS).map(|i| 0x5EED_0000 + i).collect(),
    };
    let mut totals = Stats::default();
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed, steps));
        match result {
            Ok(stats) => {
                totals.events += stats.events;
                totals.rejected += stats.rejected;
                totals.follows += stats.follows;
            }
            Err(panic) => {
                eprintln!("simulation failed; replay with HUDDLE_SIM_SEED={seed} cargo test --test sim_status");
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!("status simulation: {totals:?}");
    if replay.is_some() {
        return;
    }
    // The workload must actually exercise the feature, or passing proves little.
    assert!(totals.events > 1000, "too few status events: {totals:?}");
    assert!(totals.rejected > 100, "too few rejected requests: {totals:?}");
    assert!(totals.follows > 1000, "too few follows: {totals:?}");
}

#[test]
fn same_seed_same_run() {
    let a = run_seed(7, 300);
    let b = run_seed(7, 300);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// Canary: the invariant checker must notice a corrupted index, or the simulation's silence
/// would mean nothing.
#[test]
fn canary_a_corrupted_follow_index_is_caught() {
    if !cfg!(debug_assertions) {
        eprintln!("canary skipped: invariant checks only run with debug assertions");
        return;
    }
    let mut sim = Sim::new(1);
    for _ in 0..200 {
        sim.step();
    }
    sim.core.check_invariants();
    assert!(sim.model.sessions.values().any(|s| !s.follows.is_empty()), "the canary needs some follows");
    sim.core.corrupt_status_index_for_test();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.core.check_invariants()));
    assert!(caught.is_err(), "check_invariants missed a corrupted followers index");
}
