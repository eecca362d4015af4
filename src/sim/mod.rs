//! Deterministic simulations of the core (parties; statuses and follows), in the crate so that
//! `tests/sim*.rs` (seeded, many seeds) and the `core_ops` fuzz target (the fuzzer's bytes)
//! share one operation grammar and one set of checks. Not part of the API.
#![doc(hidden)]

pub mod party;
mod rng;
pub mod status;

pub use rng::Rng;

/// Steps one fuzz input may drive, so every case ends.
const FUZZ_STEPS_MAX: usize = 2_000;

/// The `core_ops` fuzz target: the first byte picks the simulation, the rest are its choices.
/// Every check of the simulations applies; a failed check panics, which the fuzzer reports.
pub fn fuzz_core_ops(data: &[u8]) {
    let Some((&which, choices)) = data.split_first() else { return };
    if which & 1 == 0 {
        let mut sim = party::Sim::with_rng(Rng::from_bytes(choices), 0);
        let mut step = 0;
        while !sim.exhausted() && step < FUZZ_STEPS_MAX {
            sim.step(step);
            // Fuzz builds (-O) compile check_invariants out; run the full sweep explicitly.
            sim.core.assert_invariants();
            step += 1;
        }
        sim.disconnect_everyone();
    } else {
        let mut sim = status::Sim::with_rng(Rng::from_bytes(choices), 0);
        let mut steps = 0;
        while !sim.exhausted() && steps < FUZZ_STEPS_MAX {
            sim.step();
            sim.core.assert_invariants();
            steps += 1;
        }
        sim.disconnect_everyone();
    }
}
