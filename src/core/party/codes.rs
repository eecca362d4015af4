//! Party codes (SPEC L-3): the leader reads and regenerates a party's code; anyone joins by
//! code as an accepted invitation would; and a guard keeps codes from being guessed at scale.
//!
//! Every party gets a code at create (`settings.rs`), unique among live parties
//! (`PartyTable::by_code`), drawn from the core's seeded id generator so simulation replays are
//! exact. Regenerating replaces it in the same request: the old code is dead at once.
//!
//! **The guard.** Each session may try `code_misses_per_minute_max` wrong codes in any 60 s
//! (a sliding window: the times of its recent misses, oldest first); from the next attempt
//! every code join of that session, right or wrong, gets error 300 until the oldest miss is
//! 60 s old. A refused attempt is not a miss (it tells the guesser nothing), so the window
//! always reopens. Misses change no party: they are the one trace a refused request leaves,
//! outside the party tables (and outside their digest). Memory: at most
//! `code_misses_per_minute_max` times per session that missed recently, freed on disconnect.

use super::lobby::{JoinStrategy, LobbyReply};
use super::{done, Outcome, Parties, PartyReply};
use crate::core::context::Ctx;
use crate::core::{CoreError, Millis, PartyCode, PartyId, Presence, Reply, SessionId};
use std::collections::{HashMap, VecDeque};

/// The guard's window (SPEC L-3: "in any 60 s").
const MISS_WINDOW_MS: u64 = 60_000;

/// Recent wrong codes per session, and the counters metrics read.
#[derive(Default)]
pub(super) struct CodeGuard {
    /// Session → the times of its misses within the window, oldest first (at most
    /// `code_misses_per_minute_max`).
    misses: HashMap<SessionId, VecDeque<Millis>>,
    pub misses_total: u64,
    pub limited_total: u64,
}

impl CodeGuard {
    /// Whether `session` may try a code at `now` (its misses within the window are under the
    /// limit); forgets misses that left the window.
    fn allows(&mut self, session: SessionId, now: Millis, misses_max: usize) -> bool {
        let Some(times) = self.misses.get_mut(&session) else { return true };
        while times.front().is_some_and(|t| now.saturating_sub(*t) >= MISS_WINDOW_MS) {
            times.pop_front();
        }
        if times.is_empty() {
            self.misses.remove(&session);
            return true;
        }
        times.len() < misses_max
    }

    fn miss(&mut self, session: SessionId, now: Millis) {
        self.misses.entry(session).or_default().push_back(now);
        self.misses_total += 1;
    }

    pub fn forget(&mut self, session: SessionId) {
        self.misses.remove(&session);
    }
}

impl Parties {
    /// L-3, leader only (201, 204, 203).
    pub(super) fn code_get(&self, me: &Presence, party_id: PartyId) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        Ok(Reply::Lobby(LobbyReply::Code { party_id, code: party.code }))
    }

    /// L-3, leader only: a fresh code; the old one stops working with this request.
    pub(super) fn code_regenerate(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        self.table.find_as_leader(party_id, me.session_id)?;
        let code = self.table.fresh_code(ctx.ids);
        let party = self.table.set_code(party_id, code);
        Ok(Reply::Lobby(LobbyReply::Code { party_id, code: party.code }))
    }

    /// L-3: join the party whose code this is, as an accepted invitation would (closed and
    /// invited-only parties too). Checks: the guard (300), the code (247, counted as a miss:
    /// unknown, dead, or not a code at all), then as an invitation: already a member (a no-op
    /// with the snapshot, as P-2), 241 `not_allowed`, 240 one party per user, 202, 210.
    pub(super) fn join_by_code(&mut self, me: &Presence, text: &str, ctx: &mut Ctx) -> Outcome {
        let misses_max = ctx.limits.code_misses_per_minute_max;
        if !self.guard.allows(me.session_id, ctx.now.mono, misses_max) {
            self.guard.limited_total += 1;
            return Err(CoreError::LimitExceeded(format!(
                "{misses_max} wrong party codes within 60 s (code_misses_per_minute_max); wait before trying again"
            )));
        }
        let Some(party) = PartyCode::parse(text).and_then(|code| self.table.find_by_code(code)) else {
            self.guard.miss(me.session_id, ctx.now.mono);
            return Err(CoreError::PartyCodeNotFound);
        };
        let party_id = party.id;
        if party.is_member(me.session_id) {
            return done(PartyReply::Info(Box::new(party.snapshot())));
        }
        if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            return Err(CoreError::PartyJoinNotAllowed);
        }
        self.check_not_in_party(me, ctx)?;
        if party.is_full() {
            return Err(CoreError::PartyFull);
        }
        self.check_room(party, me.session_id, ctx)?;
        done(PartyReply::Info(Box::new(self.admit(me, party_id, ctx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_window_slides_and_a_refusal_is_not_a_miss() {
        let mut guard = CodeGuard::default();
        let s = SessionId::new(1, 1);
        for t in [0, 10, 20] {
            assert!(guard.allows(s, Millis(t), 3));
            guard.miss(s, Millis(t));
        }
        assert!(!guard.allows(s, Millis(59_999), 3), "three misses within 60 s");
        assert!(guard.allows(s, Millis(60_000), 3), "the first miss left the window");
        guard.miss(s, Millis(60_000));
        assert!(!guard.allows(s, Millis(60_005), 3));
        assert!(guard.allows(s, Millis(60_010), 3), "the second one left too");
        assert_eq!(guard.misses_total, 4);
        assert!(guard.allows(SessionId::new(2, 1), Millis(0), 3), "per session");
        guard.forget(s);
        assert!(guard.allows(s, Millis(60_010), 3));
        assert!(guard.misses.is_empty());
    }
}
