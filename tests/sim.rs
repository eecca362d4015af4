//! Deterministic simulation of the party core (no sockets): seeded random sequences of
//! connect, disconnect and every party request over dozens of sessions (several per user), with
//! small randomized limits and operation weights per seed. After every step it runs the core's
//! own invariant sweep (`assert_invariants`) and the harness's checks:
//!
//! - every request got exactly one reply, first, to its session, with its cid;
//! - a refused request changed nothing (party-table digest before = after) and caused no event;
//! - party data reached exactly the other member sessions, in join order (never the sender);
//! - no other event reached a non-member: membership events go to members after the step, and
//!   "removed" goes only to a session that was a member or requester before and is not after;
//! - no event reaches a disconnected session, and a disconnected session is in no party;
//! - disconnecting everyone leaves empty tables;
//! - every search (followed to its last page) agrees with a brute-force evaluation of its query
//!   over the party table, lists only live non-hidden parties with their current member count,
//!   and changes nothing.
//!
//! `cargo test` runs `SEEDS` seeds × `STEPS` steps. Replay one seed with
//! `HUDDLE_SIM_SEED=<n> cargo test --test sim -- --nocapture` (optionally `HUDDLE_SIM_STEPS`).
//! Canaries prove that the invariant sweep catches a planted session-index corruption and a
//! search index out of step with the party table.

use huddle::sim::party::{run, Sim, Stats};

const SEEDS: u64 = 120;
const STEPS: usize = 1_000;

#[test]
fn simulation_keeps_every_invariant_over_many_seeds() {
    let steps = std::env::var("HUDDLE_SIM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(STEPS);
    if let Some(seed) = std::env::var("HUDDLE_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        let stats = run(seed, steps);
        eprintln!("seed {seed}: {stats:?}");
        return;
    }
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in 0..SEEDS {
        let stats = run(seed, steps);
        total.requests += stats.requests;
        total.refused += stats.refused;
        total.events += stats.events;
        total.deliveries += stats.deliveries;
        total.searches += stats.searches;
        total.search_results += stats.search_results;
        for (name, n) in stats.errors {
            *total.errors.entry(name).or_default() += n;
        }
    }
    eprintln!("{SEEDS} seeds x {steps} steps in {:?}: {total:?}", started.elapsed());
    // The workload must exercise both paths, or the checks above prove little.
    assert!(total.refused > total.requests / 20, "too few refused requests: {total:?}");
    assert!(total.requests - total.refused > total.requests / 4, "too few successful requests: {total:?}");
    assert!(total.deliveries > total.events, "events reached several recipients: {total:?}");
    // Searches ran, returned parties, and were refused for each reason the workload provokes.
    assert!(total.search_results > total.searches / 2, "searches returned parties: {total:?}");
    for error in ["SearchQueryInvalid", "SearchCursorMismatch", "SearchQueryTooBroad"] {
        assert!(total.errors.get(error).is_some_and(|n| *n > 0), "no {error}: {total:?}");
    }
}

#[test]
fn same_seed_same_outcome() {
    let a = run(7, 300);
    let b = run(7, 300);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn canary_the_invariant_sweep_catches_a_corrupted_index() {
    let mut sim = Sim::new(1);
    let mut planted = false;
    for step in 0..2_000 {
        sim.step(step);
        if sim.core.debug_party_table_sizes().0 > 0 {
            planted = sim.core.debug_corrupt_party_index();
            if planted {
                break;
            }
        }
    }
    assert!(planted, "the simulation never created a party to corrupt");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.core.assert_invariants()));
    assert!(caught.is_err(), "a corrupted index went unnoticed");
}

#[test]
fn canary_the_invariant_sweep_catches_a_search_index_out_of_step() {
    let mut sim = Sim::new(2);
    let mut planted = false;
    for step in 0..2_000 {
        sim.step(step);
        planted = sim.core.debug_corrupt_search_index();
        if planted {
            break;
        }
    }
    assert!(planted, "the simulation never created a visible party");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.core.assert_invariants()));
    assert!(caught.is_err(), "a search index out of step with the party table went unnoticed");
}
