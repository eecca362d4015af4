//! The open-loop send schedule: message `k` is *intended* at `start + k / rate`, whatever
//! happened to earlier messages. A sender that stalls catches up by sending every message whose
//! time has passed, each stamped with its own intended time, so the stall shows up in the
//! latency of every message it delayed (no coordinated omission).

/// An open-loop schedule of `rate_per_s` messages per second from `start_ns` to `end_ns`.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: u64,
    end_ns: u64,
    rate_per_s: u64,
    next: u64,
}

impl Schedule {
    /// `rate_per_s` must be positive (rate 0 means "as fast as possible", which is not a
    /// schedule).
    pub fn new(start_ns: u64, end_ns: u64, rate_per_s: u64) -> Schedule {
        assert!(rate_per_s > 0, "a schedule needs a positive rate");
        Schedule { start_ns, end_ns, rate_per_s, next: 0 }
    }

    /// When message `k` is meant to be sent. Integer arithmetic from the start, so rounding
    /// never accumulates into drift.
    pub fn intended_ns(&self, k: u64) -> u64 {
        self.start_ns + (u128::from(k) * 1_000_000_000 / u128::from(self.rate_per_s)) as u64
    }

    /// Messages due at `now_ns` and not yet taken, at most `count_max` of them, as
    /// `first..end` (the caller sends each, stamped with `intended_ns(k)`). Never past `end_ns`.
    /// The bound keeps one loop turn short after a stall: what it leaves stays due, and its
    /// lateness shows in the send lag.
    pub fn due(&mut self, now_ns: u64, count_max: u64) -> std::ops::Range<u64> {
        let first = self.next;
        let until = now_ns.min(self.end_ns.saturating_sub(1));
        if until < self.start_ns {
            return first..first;
        }
        // Largest k with intended(k) <= until, plus one.
        let end = (u128::from(until - self.start_ns) * u128::from(self.rate_per_s) / 1_000_000_000) as u64 + 1;
        let end = end.max(first).min(first.saturating_add(count_max));
        self.next = end;
        first..end
    }

    /// Gives back messages `k..` of the last [`due`](Schedule::due) range: the caller could not
    /// send them this turn (a connection's output was full), so they stay due, keeping their
    /// intended times.
    pub fn put_back(&mut self, k: u64) {
        assert!(k <= self.next, "only taken messages can be given back");
        self.next = k;
    }

    /// Messages the whole schedule holds.
    pub fn total(&self) -> u64 {
        if self.end_ns <= self.start_ns {
            return 0;
        }
        (u128::from(self.end_ns - 1 - self.start_ns) * u128::from(self.rate_per_s) / 1_000_000_000) as u64 + 1
    }

    /// Messages not taken yet: at the schedule's end, those the sender never sent.
    pub fn owed(&self) -> u64 {
        self.total().saturating_sub(self.next)
    }

    /// Messages still owed at `now_ns` whose intended time is at or after `from_ns`, as
    /// `(lateness_ns, count)` groups of nearly equal lateness, at most `groups_max` of them: how
    /// late the sender is on what it never sent, without a sample per message.
    pub fn owed_lateness(&self, from_ns: u64, now_ns: u64, groups_max: u64) -> Vec<(u64, u64)> {
        let total = self.total();
        // The first owed message intended at or after `from_ns`.
        let first = if from_ns <= self.start_ns {
            self.next
        } else {
            let k = (u128::from(from_ns - self.start_ns) * u128::from(self.rate_per_s)).div_ceil(1_000_000_000) as u64;
            k.max(self.next)
        };
        if first >= total {
            return Vec::new();
        }
        let owed = total - first;
        let per_group = owed.div_ceil(groups_max.max(1));
        (first..total)
            .step_by(per_group as usize)
            .map(|k| {
                let count = per_group.min(total - k);
                // The group's middle message stands for the group.
                (now_ns.saturating_sub(self.intended_ns(k + count / 2)), count)
            })
            .collect()
    }

    /// Whether every message has been taken.
    pub fn finished(&self) -> bool {
        self.next >= self.total()
    }

    /// Time of the next message not yet taken, if any.
    pub fn next_ns(&self) -> Option<u64> {
        (!self.finished()).then(|| self.intended_ns(self.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn evenly_spaced_without_drift() {
        let s = Schedule::new(5 * S, 15 * S, 3);
        assert_eq!(s.intended_ns(0), 5 * S);
        assert_eq!(s.intended_ns(1), 5 * S + 333_333_333);
        assert_eq!(s.intended_ns(3), 6 * S);
        // A million messages later, still exact.
        assert_eq!(s.intended_ns(3_000_000), 5 * S + 1_000_000 * S);
        assert_eq!(s.total(), 30);
    }

    #[test]
    fn a_stalled_sender_catches_up_with_every_missed_message() {
        let mut s = Schedule::new(0, 10 * S, 1000);
        assert_eq!(s.due(0, u64::MAX), 0..1);
        assert_eq!(s.due(S / 2000, u64::MAX), 1..1, "nothing new before the next slot");
        assert_eq!(s.due(S / 1000, u64::MAX), 1..2);
        // Stall for a second: all 1000 missed messages are due, each with its own time.
        let due = s.due(S + S / 1000, u64::MAX);
        assert_eq!(due, 2..1002);
        assert_eq!(s.intended_ns(2), 2 * S / 1000);
        assert_eq!(s.intended_ns(1001), 1001 * S / 1000);
    }

    #[test]
    fn a_bounded_turn_takes_part_and_the_rest_stays_due() {
        let mut s = Schedule::new(0, 10 * S, 1000);
        assert_eq!(s.due(S, 300), 0..300);
        // The sender managed only 120 of them: the rest is due again, same times.
        s.put_back(120);
        assert_eq!(s.next_ns(), Some(120 * S / 1000));
        assert_eq!(s.due(S, u64::MAX), 120..1001);
        assert_eq!(s.due(S, 5), 1001..1001);
        assert_eq!(s.owed(), s.total() - 1001);
    }

    #[test]
    fn owed_messages_are_as_late_as_the_schedule_says() {
        let mut s = Schedule::new(0, 2 * S, 1000);
        assert_eq!(s.due(S, 500), 0..500);
        // At the end, 1,500 messages are owed (500 ms to 2 s); only those from 1 s on count.
        let groups = s.owed_lateness(S, 2 * S, 10);
        assert_eq!(groups.iter().map(|g| g.1).sum::<u64>(), 1000);
        assert_eq!(groups.len(), 10);
        // The first group (1.0 to 1.1 s) is about 950 ms late, the last about 50 ms.
        assert!((940_000_000..960_000_000).contains(&groups[0].0), "{groups:?}");
        assert!((40_000_000..60_000_000).contains(&groups[9].0), "{groups:?}");
        assert!(s.owed_lateness(0, 2 * S, 10).iter().map(|g| g.1).sum::<u64>() == 1500);
        assert!(s.owed_lateness(3 * S, 4 * S, 10).is_empty());
    }

    #[test]
    fn nothing_before_start_and_nothing_past_end() {
        let mut s = Schedule::new(S, 2 * S, 10);
        assert_eq!(s.due(S - 1, u64::MAX), 0..0);
        let mut taken = 0;
        for now in (S..5 * S).step_by(7_000_000) {
            taken += s.due(now, u64::MAX).count();
        }
        assert_eq!(taken as u64, s.total());
        assert_eq!(taken, 10);
        assert!(s.finished());
        assert_eq!(s.next_ns(), None);
    }
}
