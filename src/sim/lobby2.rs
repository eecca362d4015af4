//! The Lobby II half of the simulation's grammar and checks (SPEC L-4 … L-8).
#![allow(dead_code)]

use super::Sim;

/// Party names the simulation writes: a few plain ones, and spellings of the deny-list's word.
pub(super) const NAMES: [&str; 6] = ["", "alpha", "Alpha", "the b\u{e4}d crew", "ｂａｄ", "BA\u{200B}D"];

impl Sim {
    /// A name for a create or an update.
    pub(super) fn party_name(&mut self) -> String {
        self.rng.pick(&NAMES).expect("non-empty").to_owned()
    }
}
