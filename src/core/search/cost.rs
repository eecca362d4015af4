//! What a search costs, counted rather than timed (the core reads no clock), and the two
//! budgets that bound it (issue 14: one connection's searches must not stall the loop).
//!
//! # Cost units
//!
//! One unit is one step of work whose time does not depend on the data: a dictionary term a
//! wildcard inspects, a posting entry or range entry visited (enumerating candidates, or
//! counting a range to plan), a candidate checked against one term, a party visited by a
//! key-order walk, a word of the dedup bitmap cleared. Each is a few to a few tens of
//! nanoseconds on this project's machines (`cargo bench --bench search` prints the measured
//! ns per unit of every query shape, and the worst); no query shape does unbounded work per
//! unit, so a bound on units is a bound on time.
//!
//! # The budgets
//!
//! - **Per query** ([`SearchLimits::query_cost_max`]): the [`Meter`] refuses a search as soon
//!   as it has spent its budget, wherever that happens (checked in every loop that can run
//!   long); where the work ahead is known before it starts (a candidate enumeration whose
//!   postings and ranges are counted first), the search is refused before starting it.
//! - **Per session** ([`SearchBudget`]): a token bucket of cost units, refilled per millisecond
//!   of the driver's monotonic clock and charged the units each search spent (refused ones
//!   too: their work was done). A search is admitted while the bucket is positive, so a
//!   session's sustained search work is bounded by the refill rate and its burst by the
//!   bucket size plus one query.

use std::cell::Cell;

use crate::core::Millis;

/// Counts the units one search spends against its budget. Shared by reference into the
/// closures that enumerate candidates, hence the `Cell`.
#[derive(Debug)]
pub(super) struct Meter {
    spent: Cell<u64>,
    max: u64,
    /// Set when the work ahead was known to exceed the budget before it was done.
    refused: Cell<bool>,
}

impl Meter {
    pub fn new(max: u64) -> Meter {
        Meter { spent: Cell::new(0), max, refused: Cell::new(false) }
    }

    /// Spends `units`; false once the budget is spent (the caller stops its loop).
    #[inline]
    pub fn charge(&self, units: u64) -> bool {
        let spent = self.spent.get().saturating_add(units);
        self.spent.set(spent);
        spent <= self.max && !self.refused.get()
    }

    /// The work ahead is known to exceed what is left: the search is over without doing it
    /// (and without paying for it).
    pub fn refuse(&self) {
        self.refused.set(true);
    }

    /// Whether the budget is spent (or the search was refused ahead of the work).
    #[inline]
    pub fn over(&self) -> bool {
        self.spent.get() > self.max || self.refused.get()
    }

    /// Units left before the budget is spent.
    pub fn left(&self) -> u64 {
        self.max.saturating_sub(self.spent.get())
    }

    pub fn spent(&self) -> u64 {
        self.spent.get()
    }
}

/// A session's search budget: a token bucket of cost units (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchBudget {
    /// Units available; negative after a search that cost more than was left.
    level: i64,
    /// When `level` was last brought up to date.
    at: Millis,
}

impl SearchBudget {
    /// A full bucket at `now`.
    pub fn new(burst: u64, now: Millis) -> SearchBudget {
        SearchBudget { level: saturating_i64(burst), at: now }
    }

    /// Refills for the time since the last call (the clock never goes back; if it did, nothing
    /// is refilled) and admits a search if the bucket is positive. Refused: how many
    /// milliseconds until it will be.
    pub fn admit(&mut self, now: Millis, refill_per_ms: u64, burst: u64) -> Result<(), u64> {
        let elapsed = now.saturating_sub(self.at);
        self.at = self.at.max(now);
        let refill = saturating_i64(elapsed.saturating_mul(refill_per_ms));
        self.level = self.level.saturating_add(refill).min(saturating_i64(burst));
        if self.level > 0 {
            return Ok(());
        }
        // Invariant: refill_per_ms > 0 (Limits::validate).
        let missing = self.level.unsigned_abs() + 1;
        Err(missing.div_ceil(refill_per_ms.max(1)))
    }

    /// Takes what an admitted search spent.
    pub fn charge(&mut self, units: u64) {
        self.level = self.level.saturating_sub(saturating_i64(units));
    }

    /// Units available now (negative: owed).
    pub fn level(&self) -> i64 {
        self.level
    }
}

fn saturating_i64(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_says_over_one_unit_past_its_budget() {
        let meter = Meter::new(10);
        assert!(meter.charge(10));
        assert!(!meter.over());
        assert_eq!(meter.left(), 0);
        assert!(!meter.charge(1));
        assert!(meter.over());
        assert_eq!(meter.spent(), 11);
        // Refused ahead of the work: over, and nothing charged for it.
        let meter = Meter::new(10);
        meter.charge(3);
        meter.refuse();
        assert!(meter.over() && !meter.charge(1));
        assert_eq!(meter.spent(), 4);
    }

    #[test]
    fn the_bucket_admits_while_positive_and_refills_per_millisecond() {
        let (refill, burst) = (10, 100);
        let mut budget = SearchBudget::new(burst, Millis(0));
        assert_eq!(budget.admit(Millis(0), refill, burst), Ok(()));
        budget.charge(99);
        assert_eq!(budget.admit(Millis(0), refill, burst), Ok(()), "one unit left");
        budget.charge(1);
        // Exactly empty: refused until one unit is back (1 ms at 10 units per ms).
        assert_eq!(budget.admit(Millis(0), refill, burst), Err(1));
        budget.charge(0);
        assert_eq!(budget.admit(Millis(1), refill, burst), Ok(()));
        // A search may overdraw (its cost is known only afterwards); the debt is repaid first.
        budget.charge(500);
        assert_eq!(budget.level(), -490);
        assert_eq!(budget.admit(Millis(2), refill, burst), Err(49));
        assert_eq!(budget.admit(Millis(50), refill, burst), Err(1));
        assert_eq!(budget.admit(Millis(51), refill, burst), Ok(()));
        // Refill stops at the bucket size, and a clock that went back refills nothing.
        assert_eq!(budget.admit(Millis(1_000_000), refill, burst), Ok(()));
        assert_eq!(budget.level(), 100);
        budget.charge(100);
        assert_eq!(budget.admit(Millis(5), refill, burst), Err(1));
    }
}
