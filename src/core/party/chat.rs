//! Party chat (SPEC L-6, PGOS's built-in party chat): a member of a party whose chat is on sends
//! a text (UTF-8) or custom message of 1..=`chat_body_bytes_max` bytes; the reply carries it
//! with its per-party sequence number (from 1) and server time (never earlier than the party's
//! previous message); every *other* member session gets it as `PartyChatMessage`. Chat is not a
//! change a snapshot shows: no version step, nothing recorded. Bodies are never logged.
//!
//! **The guard.** Each session may send `chat_messages_per_window_max` messages in any
//! `chat_window_ms` (a sliding window of its recent send times, on the monotonic clock); the
//! next one gets error 300. A refused message (for any reason) does not count, so the window
//! always reopens. Memory: at most that many times per session that chatted recently, freed on
//! disconnect.
//!
//! **Cost.** The body is a slice of the request frame; the message is allocated once and shared
//! by the reply and the event (`Arc`), which the driver encodes once for all recipients.

use super::lobby::{ChatKind, ChatMessage, LobbyEvent, LobbyReply};
use super::Outcome;
use super::Parties;
use crate::core::context::Ctx;
use crate::core::{CoreError, Event, Millis, PartyId, Presence, Reply, SessionId};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Recent chat messages per session, and the counters metrics read.
#[derive(Default)]
pub(super) struct ChatGuard {
    /// Session → the send times of its messages within the window, oldest first (at most
    /// `chat_messages_per_window_max`).
    sent: HashMap<SessionId, VecDeque<Millis>>,
    /// Messages sent.
    pub messages_total: u64,
    /// Chat requests refused, for any reason (the rate limit's share is also in the limit trips).
    pub refused_total: u64,
}

impl ChatGuard {
    /// Whether `session` may send at `now`; forgets send times that left the window.
    fn allows(&mut self, session: SessionId, now: Millis, window_ms: u64, messages_max: usize) -> bool {
        let Some(times) = self.sent.get_mut(&session) else { return true };
        while times.front().is_some_and(|t| now.saturating_sub(*t) >= window_ms) {
            times.pop_front();
        }
        if times.is_empty() {
            self.sent.remove(&session);
            return true;
        }
        times.len() < messages_max
    }

    fn sent(&mut self, session: SessionId, now: Millis) {
        self.sent.entry(session).or_default().push_back(now);
        self.messages_total += 1;
    }

    pub fn forget(&mut self, session: SessionId) {
        self.sent.remove(&session);
    }

    /// Each session keeps at most `chat_messages_per_window_max` send times, oldest first.
    pub fn check_invariants(&self, messages_max: usize) {
        for (session, times) in &self.sent {
            assert!(!times.is_empty() && times.len() <= messages_max, "{session}: {} chat send times", times.len());
            assert!(times.iter().zip(times.iter().skip(1)).all(|(a, b)| a <= b), "{session}: send times out of order");
        }
    }
}

impl Parties {
    /// L-6: checks in the order a client can fix them: the party (201, 204), its chat flag
    /// (264), the body (200 empty or not UTF-8 for text, 300 over `chat_body_bytes_max`), then
    /// the rate (300, `chat_messages_per_window_max`).
    pub(super) fn chat_send(
        &mut self,
        me: &Presence,
        party_id: PartyId,
        kind: ChatKind,
        body: Bytes,
        ctx: &mut Ctx,
    ) -> Outcome {
        let result = self.chat_checked(me, party_id, kind, body, ctx);
        if result.is_err() {
            self.chat.refused_total += 1;
        }
        result
    }

    fn chat_checked(
        &mut self,
        me: &Presence,
        party_id: PartyId,
        kind: ChatKind,
        body: Bytes,
        ctx: &mut Ctx,
    ) -> Outcome {
        let limits = ctx.limits;
        let party = self.table.find_as_member(party_id, me.session_id)?;
        if !party.lobby.chat_enabled {
            return Err(CoreError::PartyChatDisabled);
        }
        if body.is_empty() {
            return Err(CoreError::BadInput("body: a chat message needs at least one byte".into()));
        }
        if body.len() > limits.chat_body_bytes_max {
            return Err(CoreError::LimitExceeded(format!(
                "chat body of {} bytes is over chat_body_bytes_max {}",
                body.len(),
                limits.chat_body_bytes_max
            )));
        }
        if kind == ChatKind::Text {
            if let Err(error) = std::str::from_utf8(&body) {
                return Err(CoreError::BadInput(format!(
                    "body: a text message must be UTF-8; byte {} is not",
                    error.valid_up_to()
                )));
            }
        }
        let (window_ms, messages_max) = (limits.chat_window_ms, limits.chat_messages_per_window_max);
        if !self.chat.allows(me.session_id, ctx.now.mono, window_ms, messages_max) {
            return Err(CoreError::LimitExceeded(format!(
                "{messages_max} chat messages within {window_ms} ms (chat_messages_per_window_max); wait before \
                 sending again"
            )));
        }

        self.chat.sent(me.session_id, ctx.now.mono);
        let (sequence, sent_at) = self.table.next_chat_message(party_id, ctx.now.wall);
        let message = Arc::new(ChatMessage { party_id, sender: me.clone(), kind, body, sequence, sent_at });
        let party = self.table.get(party_id).expect("Invariant: found above; chat changes no member");
        let others = party.member_sessions().filter(|s| *s != me.session_id);
        ctx.events.send(others, Event::Lobby(LobbyEvent::ChatMessage(message.clone())));
        Ok(Reply::Lobby(LobbyReply::ChatSent(message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_and_only_sent_messages_count() {
        let mut guard = ChatGuard::default();
        let s = SessionId::new(1, 1);
        for t in [0, 1, 2] {
            assert!(guard.allows(s, Millis(t), 100, 3));
            guard.sent(s, Millis(t));
        }
        assert!(!guard.allows(s, Millis(99), 100, 3), "three within 100 ms");
        assert!(!guard.allows(s, Millis(99), 100, 3), "asking again is not sending");
        assert!(guard.allows(s, Millis(100), 100, 3), "the first one left the window");
        assert!(guard.allows(SessionId::new(2, 1), Millis(0), 100, 3), "per session");
        guard.check_invariants(3);
        guard.forget(s);
        assert!(guard.sent.is_empty());
    }
}
