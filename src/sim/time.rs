//! Time in the simulation: probe timers armed and cancelled through the core's test hooks, and
//! the driver contract (`poll_timeout`, then `handle_timeout` once the deadline has passed)
//! checked against a model of what is armed.

use super::Sim;
use crate::core::{Millis, TimerId};
use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct TimerModel {
    /// Armed probes by (deadline, arm order): the order they must fire in. Value: the tag.
    armed: BTreeMap<(Millis, u64), u64>,
    /// Every probe ever armed (fired, cancelled or not), to cancel at random.
    issued: Vec<(TimerId, (Millis, u64))>,
    armed_total: u64,
}

impl Sim {
    /// The driver's side of the contract: if the core's earliest deadline has passed (or
    /// `early`, regardless), run the timers; exactly the model's due probes fire, in order, and
    /// they cause no output; the due invitations expire (`lobby.rs` checks their events).
    pub(super) fn run_due_timers(&mut self, early: bool) {
        let earliest = self.earliest_deadline();
        assert_eq!(self.core.poll_timeout(), earliest, "poll_timeout is the earliest armed deadline");
        if !early && earliest.is_none_or(|deadline| deadline > self.now) {
            return;
        }
        self.core.handle_timeout(self.now(), &mut self.out);
        self.check_expiries();
        let mut expected = Vec::new();
        while let Some(entry) = self.timers.armed.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            expected.push((entry.remove(), self.now));
        }
        self.stats.probes_fired += expected.len() as u64;
        assert_eq!(self.core.debug_take_fired_probes(), expected, "the due probes fire, by deadline then arm order");
        assert_eq!(self.core.poll_timeout(), self.earliest_deadline(), "poll_timeout after handle_timeout");
    }

    /// The earliest of the model's probe and invitation deadlines.
    fn earliest_deadline(&self) -> Option<Millis> {
        let probe = self.timers.armed.keys().next().map(|(deadline, _)| *deadline);
        let invitation = self.lobby.earliest_deadline();
        probe.into_iter().chain(invitation).min()
    }

    /// A probe due within a few steps (sometimes already past, which means "now").
    pub(super) fn arm_probe(&mut self) {
        let deadline = if self.rng.chance(10) {
            Millis(self.now.0.saturating_sub(self.rng.below(3) as u64))
        } else {
            self.now.saturating_add(self.rng.below(30) as u64)
        };
        let tag = self.timers.armed_total;
        let key = (deadline, self.timers.armed_total);
        self.timers.armed_total += 1;
        let id = self.core.debug_arm_probe(deadline, tag);
        assert_eq!(id.deadline(), deadline);
        self.timers.armed.insert(key, tag);
        self.timers.issued.push((id, key));
    }

    /// Cancels a probe that may be armed, fired or cancelled already: the core must know which.
    pub(super) fn cancel_probe(&mut self) {
        let Some((id, key)) = self.rng.pick(&self.timers.issued) else { return };
        let armed = self.timers.armed.remove(&key).is_some();
        assert_eq!(self.core.debug_cancel_timer(id), armed, "cancel reports whether the probe was armed");
    }
}
