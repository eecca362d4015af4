//! The ban table (SPEC O-1): user ids refused a session until a wall-clock time. A ban is a rule
//! about users, so it lives in the core beside the sessions it closes; the driver asks
//! [`super::Core::admits`] at the upgrade.
//!
//! Table: `until_by_user` (user → Unix ms the ban ends). Invariants: every entry's time is
//! positive; the table holds at most `admin_bans_max` entries. Expired entries are treated as
//! absent and swept when the table is full, so the bound counts live bans.

use super::{CoreError, UnixMillis, UserId};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct Bans {
    until_by_user: HashMap<UserId, UnixMillis>,
}

impl Bans {
    /// Bans `user_id` until `until` (replacing an earlier ban of the user). A full table is
    /// swept of expired bans first; still full: refused, nothing changes.
    pub fn ban(
        &mut self,
        user_id: UserId,
        until: UnixMillis,
        now: UnixMillis,
        bans_max: usize,
    ) -> Result<(), CoreError> {
        debug_assert!(until > now, "the caller refuses bans that already ended");
        if !self.until_by_user.contains_key(&user_id) && self.until_by_user.len() >= bans_max {
            self.until_by_user.retain(|_, ends| *ends > now);
            if self.until_by_user.len() >= bans_max {
                return Err(CoreError::LimitExceeded(format!(
                    "{bans_max} users are banned; admin_bans_max is {bans_max}"
                )));
            }
        }
        self.until_by_user.insert(user_id, until);
        debug_assert!(self.until_by_user.len() <= bans_max, "the ban table stays within admin_bans_max");
        Ok(())
    }

    /// Lifts the ban of `user_id`; true when a ban was in force.
    pub fn lift(&mut self, user_id: &UserId, now: UnixMillis) -> bool {
        self.until_by_user.remove(user_id).is_some_and(|until| until > now)
    }

    pub fn is_banned(&self, user_id: &UserId, now: UnixMillis) -> bool {
        self.until_by_user.get(user_id).is_some_and(|until| *until > now)
    }

    pub fn len(&self) -> usize {
        self.until_by_user.len()
    }

    pub fn check_invariants(&self, bans_max: usize) {
        assert!(self.until_by_user.len() <= bans_max, "more bans than admin_bans_max");
        assert!(self.until_by_user.values().all(|until| until.0 > 0), "a ban without an end");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::new(id)
    }

    #[test]
    fn a_ban_holds_until_its_time_and_can_be_lifted_early() {
        let mut bans = Bans::default();
        bans.ban(user("a"), UnixMillis(1_000), UnixMillis(10), 4).unwrap();
        assert!(bans.is_banned(&user("a"), UnixMillis(999)));
        assert!(!bans.is_banned(&user("a"), UnixMillis(1_000)), "the ban ends at `until`");
        assert!(!bans.is_banned(&user("b"), UnixMillis(10)));
        assert!(bans.lift(&user("a"), UnixMillis(500)));
        assert!(!bans.is_banned(&user("a"), UnixMillis(500)));
        assert!(!bans.lift(&user("a"), UnixMillis(500)), "nothing left to lift");
    }

    #[test]
    fn a_full_table_sweeps_expired_bans_and_refuses_when_every_ban_is_live() {
        let mut bans = Bans::default();
        bans.ban(user("a"), UnixMillis(100), UnixMillis(0), 2).unwrap();
        bans.ban(user("b"), UnixMillis(1_000), UnixMillis(0), 2).unwrap();
        bans.ban(user("b"), UnixMillis(2_000), UnixMillis(0), 2).unwrap(); // a re-ban takes no room
        let refused = bans.ban(user("c"), UnixMillis(1_000), UnixMillis(50), 2).unwrap_err();
        assert!(refused.to_string().contains("admin_bans_max"), "{refused}");
        assert!(!bans.is_banned(&user("c"), UnixMillis(60)), "a refused ban changes nothing");
        bans.ban(user("c"), UnixMillis(1_000), UnixMillis(200), 2).unwrap(); // a's ban expired: swept
        assert_eq!(bans.len(), 2);
        bans.check_invariants(2);
    }
}
