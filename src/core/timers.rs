//! Time in the core: deadlines armed by the rules, fired by [`super::Core::handle_timeout`].
//!
//! The driver owns the clock. It asks [`super::Core::poll_timeout`] for the earliest deadline,
//! sleeps no later than that, and calls `handle_timeout(now)`, which runs every timer due at
//! `now.mono`. The core never reads a clock, so the simulation drives time step by step and a
//! replayed seed fires the same timers in the same order.
//!
//! The table is an ordered map keyed by (deadline, arm sequence) rather than a heap with lazy
//! cancellation or a wheel: cancelling removes the entry at once, so memory is exactly the
//! armed timers (no tombstones to compact), timers with equal deadlines fire in the order they
//! were armed (deterministic), and every operation is O(log n). Each timer belongs to something
//! a limit already bounds (an invitation, a grace period), so the table is bounded by those
//! limits; it holds no bound of its own.

use super::Millis;
use std::collections::BTreeMap;

/// A handle on an armed timer, to cancel it. Orders as timers fire: by deadline, then by arm
/// order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    deadline: Millis,
    seq: u64,
}

impl TimerId {
    pub fn deadline(self) -> Millis {
        self.deadline
    }
}

/// Armed timers, each carrying what to do when it fires (`T`).
#[derive(Debug)]
pub(crate) struct Timers<T> {
    armed: BTreeMap<TimerId, T>,
    /// Sequence number of the next timer armed; never reused.
    next_seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { armed: BTreeMap::new(), next_seq: 0 }
    }
}

impl<T> Timers<T> {
    /// Arms a timer firing at `deadline` (at once on the next `pop_due` if it is already past).
    pub fn arm(&mut self, deadline: Millis, what: T) -> TimerId {
        let id = TimerId { deadline, seq: self.next_seq };
        self.next_seq += 1;
        self.armed.insert(id, what);
        id
    }

    /// Disarms a timer; `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.armed.remove(&id)
    }

    /// What an armed timer will do; `None` once it fired or was cancelled.
    pub fn get(&self, id: TimerId) -> Option<&T> {
        self.armed.get(&id)
    }

    /// Every armed timer, in firing order.
    pub fn armed(&self) -> impl Iterator<Item = (TimerId, &T)> {
        self.armed.iter().map(|(id, what)| (*id, what))
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.armed.first_key_value().map(|(id, _)| id.deadline)
    }

    /// A mark for [`Self::pop_due`]: timers armed after it are left for a later call, so a rule
    /// that re-arms while timers run cannot keep one call busy.
    pub fn mark(&self) -> u64 {
        self.next_seq
    }

    /// The next timer due at `now` among those armed before `mark`, removed from the table, in
    /// (deadline, arm order) order.
    pub fn pop_due(&mut self, now: Millis, mark: u64) -> Option<(TimerId, T)> {
        let id = self.armed.keys().take_while(|id| id.deadline <= now).find(|id| id.seq < mark).copied()?;
        self.armed.remove_entry(&id)
    }

    pub fn check_invariants(&self) {
        for id in self.armed.keys() {
            assert!(id.seq < self.next_seq, "timer {id:?} armed with a sequence not yet issued");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_by_deadline_then_arm_order_and_cancelled_ones_never() {
        let mut timers = Timers::default();
        let late = timers.arm(Millis(30), "late");
        timers.arm(Millis(10), "first at 10");
        let cancelled = timers.arm(Millis(10), "cancelled");
        timers.arm(Millis(10), "second at 10");
        timers.arm(Millis(20), "at 20");
        assert_eq!(timers.cancel(cancelled), Some("cancelled"));
        assert_eq!(timers.cancel(cancelled), None, "cancelling twice is harmless");
        assert_eq!(timers.next_deadline(), Some(Millis(10)));

        let mark = timers.mark();
        assert_eq!(timers.pop_due(Millis(9), mark), None, "nothing is due before its deadline");
        let mut fired = Vec::new();
        while let Some((_, what)) = timers.pop_due(Millis(20), mark) {
            fired.push(what);
        }
        assert_eq!(fired, ["first at 10", "second at 10", "at 20"]);
        assert_eq!(timers.next_deadline(), Some(late.deadline()));

        // A timer armed after the mark waits for the next call, even when already due.
        timers.arm(Millis(0), "armed while running");
        assert_eq!(timers.pop_due(Millis(100), mark).map(|(_, what)| what), Some("late"));
        assert_eq!(timers.pop_due(Millis(100), mark), None);
        let mark = timers.mark();
        assert_eq!(timers.pop_due(Millis(100), mark).map(|(_, what)| what), Some("armed while running"));
        assert_eq!(timers.next_deadline(), None, "nothing is left armed");
        timers.check_invariants();
    }
}
