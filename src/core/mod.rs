//! The sans-IO core: every domain rule and all domain state, and nothing else. Sessions
//! (`session.rs`), parties (`party.rs`, SPEC §2) and statuses with follows (`status.rs`, SPEC §4)
//! each keep their rules and tables in one file; this module dispatches requests to them and
//! runs their invariant checks.
//!
//! The driver contract (see `net`): the driver owns sockets and the clock; it calls
//! [`Core::connect`] when a session's WebSocket upgrade completes, [`Core::handle_request`] for
//! every decoded request, and [`Core::disconnect`] exactly once when the connection ends, for
//! any reason. Each call appends [`Output`]s to a caller-owned [`Outbox`], which the driver
//! executes in order: the requester's reply always precedes the events its request caused, and
//! every event reaches its recipients in the order the outbox lists it. The core never touches a
//! socket, a clock or FlatBuffers bytes, so unit tests, the simulation and fuzzers drive it
//! directly.

mod error;
mod idgen;
mod ids;
mod outbox;
mod party;
pub mod search;
mod session;
mod status;

pub use error::{CoreError, ErrorCode};
pub use idgen::IdGenerator;
pub use ids::{Cid, Millis, Now, PartyId, Presence, SessionId, UnixMillis, UserId, Username};
pub use outbox::{CloseReason, Outbox, Output};
pub use party::{PartyEvent, PartyListing, PartyReply, PartyRequest, PartySnapshot, PartySummary, RemovedReason};
pub use status::{StatusEvent, StatusPresence, StatusReply, StatusRequest};

use crate::limits::Limits;
use party::Parties;
use session::Sessions;
use status::Statuses;

/// A decoded client request. Feature requests join as variants.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Ping,
    Party(PartyRequest),
    /// Status and follows (SPEC S-1, S-2).
    Status(StatusRequest),
}

/// The successful result of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Pong,
    Party(PartyReply),
    Status(StatusReply),
}

/// Something pushed to sessions without a request of theirs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// First event of every session (SPEC C-4): who the server thinks you are.
    Welcome {
        presence: Presence,
    },
    Party(PartyEvent),
    /// Status joins and leaves of a followed user or of the session's own user (SPEC S-3).
    Status(StatusEvent),
    /// Fire-and-forget party data (`cid` 0, SPEC P-9) was refused: there is no reply to carry the
    /// error, so it comes as an event naming the party the data was for.
    PartyDataRefused {
        party_id: PartyId,
        error: CoreError,
    },
}

/// Who a connecting session is, as its verified token says.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user_id: UserId,
    pub username: Username,
}

/// Options a client chose in its connect URL.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `?status=true`: visible with an empty status from the first moment (SPEC C-3).
    pub status_visible: bool,
}

pub struct Core {
    limits: Limits,
    sessions: Sessions,
    parties: Parties,
    statuses: Statuses,
    /// Source of unguessable ids (party ids), seeded by the driver.
    ids: IdGenerator,
}

impl Core {
    /// `seed` must come from the OS's CSPRNG in production; tests pass a fixed one.
    pub fn new(limits: Limits, seed: [u8; 32]) -> Core {
        Core {
            sessions: Sessions::with_capacity(limits.connections_max),
            parties: Parties::new(&limits),
            statuses: Statuses::default(),
            limits,
            ids: IdGenerator::new(seed),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of connected sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Connected sessions of `user_id`: the driver refuses an upgrade that would pass
    /// `sessions_per_user_max` (SPEC C-2a). Answered from the status tables' user → sessions
    /// index, which lists every connected session, visible or not.
    pub fn sessions_of_user_count(&self, user_id: &UserId) -> usize {
        self.statuses.sessions_of_user_count(user_id)
    }

    /// A session's upgrade completed. The driver guarantees `session` is not connected.
    pub fn connect(
        &mut self,
        session: SessionId,
        identity: Identity,
        options: ConnectOptions,
        _now: Now,
        out: &mut Outbox,
    ) {
        let presence = Presence { user_id: identity.user_id, session_id: session, username: identity.username };
        if !self.sessions.insert(presence.clone()) {
            // A driver bug, not client input. Refusing keeps every table consistent, in release
            // builds too, where the tables would otherwise silently diverge.
            debug_assert!(false, "slot of {session} connected twice without a disconnect");
            log::error!("session {session}: slot already connected; connect ignored");
            return;
        }
        out.event_to(session, Event::Welcome { presence: presence.clone() });
        // C-3: visible at once; the join reaches followers and own sessions after the welcome.
        if let Some(fanout) = self.statuses.connect(presence, options.status_visible) {
            self.statuses.publish(fanout, out);
        }
        self.check_invariants();
    }

    /// The session's connection ended (any cause: SPEC C-6). Idempotent for unknown sessions, so
    /// a driver racing a close against a request cannot corrupt the tables.
    pub fn disconnect(&mut self, session: SessionId, _now: Now, out: &mut Outbox) {
        if self.sessions.remove(session).is_none() {
            return;
        }
        self.parties.disconnect(session, out);
        // C-6: the status leaves (to followers and the user's other sessions), follows die.
        if let Some(fanout) = self.statuses.disconnect(session) {
            self.statuses.publish(fanout, out);
        }
        self.check_invariants();
    }

    /// One decoded request of a connected session. Appends exactly one `Output::Reply` with
    /// `cid`, before any event the request causes.
    pub fn handle_request(&mut self, session: SessionId, cid: Cid, request: Request, _now: Now, out: &mut Outbox) {
        let replies_before = out.reply_count();
        let Some(entry) = self.sessions.get(session) else {
            // A driver bug, not client input: requests only come from upgraded connections.
            debug_assert!(false, "request from unknown session {session}");
            log::error!("request from unknown session {session}; dropped");
            return;
        };
        match request {
            Request::Ping => out.reply(session, cid, Ok(Reply::Pong)),
            Request::Party(request) => {
                self.parties.handle(&mut self.ids, &self.limits, &entry.presence, cid, request, out)
            }
            Request::Status(request) => {
                let mut status_fanout = None;
                let result =
                    self.statuses.handle(session, request, &self.limits, &mut status_fanout).map(Reply::Status);
                out.reply(session, cid, result);
                if let Some(fanout) = status_fanout {
                    self.statuses.publish(fanout, out);
                }
            }
        }
        debug_assert_eq!(out.reply_count(), replies_before + 1, "exactly one reply per request");
        self.check_invariants();
    }

    /// The earliest monotonic time at which [`Core::handle_timeout`] has work (an invitation
    /// expiring, …), or `None` when no timer is armed. The driver sleeps no later than this.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        None
    }

    /// Runs every timer due at `now.mono`; their events go into `out` like a request's. Calling it
    /// early or twice is harmless.
    pub fn handle_timeout(&mut self, _now: Now, _out: &mut Outbox) {}

    /// Runs every table's consistency checks. Debug builds call it after each mutating entry
    /// point; the simulation calls it after every step.
    pub fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            self.assert_invariants();
        }
    }

    /// The checks behind [`Core::check_invariants`], in every build (the simulation and its
    /// canary call this directly so they also work in release builds).
    #[doc(hidden)]
    pub fn assert_invariants(&self) {
        {
            self.sessions.check_invariants();
            self.parties.check_invariants(&self.limits);
            for session in self.parties.sessions() {
                assert!(self.sessions.get(session).is_some(), "disconnected session {session} still in a party table");
            }
            let presence = |id| self.sessions.get(id).map(|entry| entry.presence.clone());
            self.statuses.check_invariants(&self.limits, self.sessions.len(), presence);
        }
    }

    /// Number of parties.
    pub fn party_count(&self) -> usize {
        self.parties.len()
    }

    // ---- inspection for tests and the simulation; not part of the API ----

    #[doc(hidden)]
    /// (parties, sessions in the party index).
    pub fn debug_party_table_sizes(&self) -> (usize, usize) {
        self.parties.table_sizes()
    }

    #[doc(hidden)]
    pub fn debug_party_ids(&self) -> Vec<PartyId> {
        self.parties.ids()
    }

    #[doc(hidden)]
    pub fn debug_party(&self, party_id: PartyId) -> Option<PartySnapshot> {
        self.parties.snapshot(party_id)
    }

    #[doc(hidden)]
    pub fn debug_party_pending(&self, party_id: PartyId) -> Option<Vec<Presence>> {
        self.parties.pending(party_id)
    }

    #[doc(hidden)]
    /// A hash of the party tables, equal before and after any rejected request.
    pub fn debug_party_digest(&self) -> u64 {
        self.parties.digest()
    }

    #[doc(hidden)]
    /// Corrupts the party index (for the canary test); returns false when nothing could be.
    pub fn debug_corrupt_party_index(&mut self) -> bool {
        self.parties.corrupt_index()
    }

    /// Test hook for the search canary: see `Parties::corrupt_search_index`.
    #[doc(hidden)]
    pub fn debug_corrupt_search_index(&mut self) -> bool {
        self.parties.corrupt_search_index()
    }

    /// Whether `session` follows `user_id` (tests and the simulation's model checks).
    #[doc(hidden)]
    pub fn status_follows(&self, session: SessionId, user_id: &UserId) -> bool {
        self.statuses.follows(session, user_id)
    }

    /// A session's status; `None` when it is not visible or not connected.
    #[doc(hidden)]
    pub fn status_of(&self, session: SessionId) -> Option<&str> {
        self.statuses.status_of(session)
    }

    /// Sessions the status tables know (equals `session_count` when consistent).
    #[doc(hidden)]
    pub fn status_session_count(&self) -> usize {
        self.statuses.len()
    }

    /// Canary hook for the simulation: corrupts one status index so that `check_invariants`
    /// must panic. Never call it outside tests.
    #[doc(hidden)]
    pub fn corrupt_status_index_for_test(&mut self) {
        self.statuses.corrupt_for_test();
    }
}
