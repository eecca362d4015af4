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

mod idgen;
mod ids;
mod outbox;
mod party;
pub mod search;
mod session;
mod status;

pub use idgen::IdGenerator;
pub use ids::{Cid, Millis, PartyId, Presence, SessionId, UserId, Username};
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
}

/// Why a request was refused. Mapped to a wire error code in exactly one place
/// (`wire::errors`); the Display text is the error reply's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreError {
    /// A field's value is not acceptable; the text says which and why.
    BadInput(String),
    /// A size or count limit; the text names it.
    LimitExceeded(String),
    /// No party with that id (never existed, or its last member left).
    PartyNotFound,
    /// The party has `max_size` members.
    PartyFull,
    /// A leader-only operation from a member who is not the leader (P-12).
    PartyNotLeader,
    /// A members-only (or leader-only) operation from a session that is not a member.
    PartyNotMember,
    /// The user already has a pending join request for this party (P-2).
    PartyJoinRequestDuplicate,
    /// Another session of the user is already a member of this closed party (P-2).
    PartyAlreadyMember,
    /// The leader named its own session in a remove (P-4).
    PartyCannotRemoveSelf,
    /// The named presence is not a member or pending requester, as the operation needs.
    PartyPresenceNotFound,
    /// The closed party has `max_size` pending join requests (P-2).
    PartyJoinRequestsFull,
    /// The session is in, or has asked to join, `parties_per_session_max` parties.
    PartyTooManyParties(usize),
    /// The named presence's session matched but its user id or username did not (P-12).
    PartyPresenceMismatch,
    /// Following would take the session past `follows_per_session_max` followed users.
    FollowLimitReached { following: usize, adding: usize, max: usize },
    /// the search query does not parse; the error says what is wrong and at which byte.
    SearchQueryInvalid(search::QueryError),
    /// the cursor was issued for another query, open filter or limit.
    SearchCursorMismatch,
    /// the cursor is not one this server issued (garbage, truncated, or too long).
    SearchCursorInvalid,
    /// A wildcard term of the query matches (or would have to inspect) more indexed values than
    /// `search_wildcard_expansion_max` / `search_wildcard_scan_max` allow.
    SearchQueryTooBroad { byte_pos: usize, values_max: usize },
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreError::BadInput(why) => write!(f, "bad input: {why}"),
            CoreError::LimitExceeded(why) => write!(f, "limit exceeded: {why}"),
            CoreError::PartyNotFound => write!(f, "party not found"),
            CoreError::PartyFull => write!(f, "party is full"),
            CoreError::PartyNotLeader => write!(f, "only the party leader may do this"),
            CoreError::PartyNotMember => write!(f, "not a member of this party"),
            CoreError::PartyJoinRequestDuplicate => write!(f, "this user already asked to join the party"),
            CoreError::PartyAlreadyMember => write!(f, "this user is already a member of the party"),
            CoreError::PartyCannotRemoveSelf => write!(f, "the leader cannot remove itself; leave instead"),
            CoreError::PartyPresenceNotFound => {
                write!(f, "the named presence is not in the party (or has no pending request)")
            }
            CoreError::PartyJoinRequestsFull => write!(f, "the party's join request queue is full"),
            CoreError::PartyTooManyParties(max) => {
                write!(f, "this session is in or asked to join parties_per_session_max {max} parties")
            }
            CoreError::PartyPresenceMismatch => {
                write!(f, "the named presence's user_id or username does not match its session")
            }
            CoreError::FollowLimitReached { following, adding, max } => write!(
                f,
                "follow limit reached: following {following} users, this request adds {adding}, \
                 follows_per_session_max is {max}; nothing was followed"
            ),
            CoreError::SearchQueryInvalid(error) => write!(f, "invalid search query: {error}"),
            CoreError::SearchCursorMismatch => {
                write!(f, "the cursor belongs to another query, open filter or limit; start again without it")
            }
            CoreError::SearchCursorInvalid => write!(f, "the cursor is not one this server issued"),
            CoreError::SearchQueryTooBroad { byte_pos, values_max } => write!(
                f,
                "search query too broad: the wildcard term at byte {byte_pos} matches or scans more than \
                 {values_max} distinct values; give it a longer literal prefix"
            ),
        }
    }
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

    /// A session's upgrade completed. The driver guarantees `session` is not connected.
    pub fn connect(
        &mut self,
        session: SessionId,
        identity: Identity,
        options: ConnectOptions,
        _now: Millis,
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
    pub fn disconnect(&mut self, session: SessionId, _now: Millis, out: &mut Outbox) {
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
    pub fn handle_request(&mut self, session: SessionId, cid: Cid, request: Request, _now: Millis, out: &mut Outbox) {
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
