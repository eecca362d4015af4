//! The sans-IO core: every domain rule and all domain state, and nothing else.
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | [`Core`]: the entry points, dispatch of a request to its feature, the driver contract, the cross-table sweep |
//! | `context.rs` | the per-call context every handler gets (limits, clocks, session table, id generator, timers, event sink) |
//! | `outbox.rs` | [`Outbox`]: outputs in order; the reply slot reserved before a handler runs; the event sink |
//! | `session.rs` | connected sessions, user → sessions (connect order), username → users |
//! | `party/` | parties (SPEC §2, P-1 … P-12), party search (Q-1 … Q-4), their history (O-3) and moderation (O-1), and the lobby extensions (L-1 one party per user, L-2 invitations, L-3 codes, L-4 strategies, L-9 versions and snapshots), a file per sub-state (see its docs) |
//! | `admin.rs`, `ban.rs` | the admin API's entry points ([`Core::handle_admin`], the party views, history queries) and the ban table |
//! | `status.rs` | statuses and follows (SPEC §4, S-1 … S-3, C-3) |
//! | `search/` | the label query language and the inverted index behind party search |
//! | `timers.rs` | armed deadlines, fired by [`Core::handle_timeout`] |
//! | `error.rs` | [`CoreError`] and the codec-neutral [`ErrorCode`] |
//! | `ids.rs`, `idgen.rs` | identity and time newtypes, unguessable party ids |
//!
//! # One handler contract
//!
//! A feature handler takes the requester's presence, its request and one context
//! (`context.rs`: limits, `now`, the session table, the id generator and an event sink) and
//! returns `Result<Reply, CoreError>` (its own reply type wrapped in [`Reply`]). Before it runs, [`Core::handle_request`] reserves the reply's
//! place in the outbox; events the handler queues land after that place, and the result fills
//! it. So every request gets exactly one reply, before the events it caused, by construction,
//! at no cost per request (no event buffer to copy). A refused request queues no event (rules
//! validate before they mutate).
//!
//! # Driver contract
//!
//! The driver owns sockets and clocks; the core never reads either. The driver calls
//! [`Core::connect`] when a session's WebSocket upgrade completes, [`Core::handle_request`] for
//! every decoded request, and [`Core::disconnect`] exactly once when the connection ends, for
//! any reason, each with [`Now`] read once per loop turn (a monotonic `mono` that never goes
//! back, and the wall clock). Between turns it sleeps no later than the earliest of its own
//! deadlines and [`Core::poll_timeout`], and then calls [`Core::handle_timeout`] (early or
//! repeated calls are harmless). Each call appends [`Output`]s to a caller-owned [`Outbox`],
//! which the driver executes in order: the requester's reply always precedes the events its
//! request caused, and every event reaches its recipients in the order the outbox lists it.
//! Party data sent without a cid (SPEC P-9, fire and forget) is the one request without a
//! reply: it gets nothing on success and an [`Event::PartyDataRefused`] on refusal. Any other
//! request must carry a cid (the wire refuses it with 101 before the core sees it). Admin
//! requests come through [`Core::handle_admin`], their events into the outbox like a request's.
//! Party history records finish inside the core: the driver takes them with
//! [`Core::take_finished_history`] at least once per turn (they pile up until taken) and calls
//! [`Core::record_shutdown`] once when a graceful shutdown begins. Because
//! nothing here touches a socket, a clock or FlatBuffers bytes, unit tests, the simulation and
//! fuzzers drive the core directly.

mod admin;
mod ban;
mod context;
mod error;
mod idgen;
mod ids;
mod lobby_admin;
mod names;
mod outbox;
mod party;
pub mod search;
mod session;
mod social;
mod status;
mod timers;

pub use admin::{AdminReply, AdminRequest, CLOSE_BANNED, CLOSE_DISCONNECTED_BY_ADMIN};
pub use error::{CoreError, ErrorCode};
pub use idgen::IdGenerator;
pub use ids::{Cid, Millis, Now, PartyCode, PartyId, Presence, SessionId, UnixMillis, UserId, Username};
pub use names::{fold as fold_name, NameDenyList};
pub use outbox::{CloseReason, Outbox, Output};
pub use party::{AdminClosed, AdminKicked, PartyAdminSummary, PartyAdminView, UserParties};
pub use party::{
    ChatKind, ChatMessage, CustomDataScope, InvitationEndReason, InviteStrategy, JoinStrategy, LobbyData, LobbyEvent,
    LobbyReply, LobbyRequest, LobbySettings, LobbySettingsPatch, PartyEvent, PartyInvitation, PartyListing, PartyReply,
    PartyRequest, PartySnapshot, PartySummary, RemovedReason, SearchStats, ATTRIBUTES_NONE,
};
pub use party::{HistoryEndReason, HistoryLeader, HistoryMember, HistoryQuery, HistoryRecord};
pub use social::{SocialList, SocialWrite};
pub use status::{StatusEvent, StatusPresence, StatusReply, StatusRequest};
pub use timers::TimerId;

use crate::limits::Limits;
use ban::Bans;
use context::Ctx;
use outbox::Events;
pub use party::LobbyStats;
use party::Parties;
use session::Sessions;
use social::Social;
use status::Statuses;
use timers::Timers;

/// A decoded client request. Feature requests join as variants.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Ping,
    Party(PartyRequest),
    /// Status and follows (SPEC S-1, S-2).
    Status(StatusRequest),
    /// Invitations and codes (SPEC L-2, L-3): huddle's own requests, beside Nakama's parties.
    Lobby(LobbyRequest),
}

/// The successful result of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Pong,
    Party(PartyReply),
    Status(StatusReply),
    Lobby(LobbyReply),
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
    /// Invitations, snapshots, custom data, chat and attributes (SPEC L-2, L-5, L-6, L-8, L-9).
    /// Huddle-only: a codec for another protocol (Nakama's JSON) sends nothing for any of them.
    Lobby(LobbyEvent),
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
    /// `?snapshots=true`: a `PartySnapshot` event after the delta events of every change to a
    /// party the session is a member of (SPEC L-9).
    pub snapshots: bool,
}

/// The core's counters and gauges, for the driver's metrics: cheap to read (a copy of a few
/// numbers), so a metrics endpoint may call [`Core::stats`] on every scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Searches, their cost, and what the search budgets and label bounds refused (issue 14).
    pub search: SearchStats,
}

/// What a core timer does when it fires.
#[derive(Debug, PartialEq)]
enum Timeout {
    /// A timer armed by the simulation through [`Core::debug_arm_probe`], to drive the timer
    /// facility beside the rules' own: firing records its tag and the time it fired, and
    /// changes nothing else.
    Probe { tag: u64 },
    /// L-2: the pending invitation of `invitee` to `party_id` expires. Disarmed whenever the
    /// invitation ends otherwise, so it always finds its invitation.
    InvitationExpiry { party_id: PartyId, invitee: UserId },
}

pub struct Core {
    limits: Limits,
    sessions: Sessions,
    parties: Parties,
    statuses: Statuses,
    /// Users refused a session until a time (admin API, `admin.rs`).
    bans: Bans,
    /// L-4: friends and blocks per user (admin API, `lobby_admin.rs`).
    social: Social,
    /// L-7: the name deny-list, configuration the driver passes in (`set_name_deny_list`).
    names: NameDenyList,
    /// Source of unguessable ids (party ids), seeded by the driver.
    ids: IdGenerator,
    timers: Timers<Timeout>,
    /// Probes fired and not yet taken by [`Core::debug_take_fired_probes`]: (tag, fired at).
    /// Empty unless a test arms probes.
    fired_probes: Vec<(u64, Millis)>,
}

impl Core {
    /// `seed` must come from the OS's CSPRNG in production; tests pass a fixed one.
    pub fn new(limits: Limits, seed: [u8; 32]) -> Core {
        Core {
            sessions: Sessions::with_capacity(limits.connections_max),
            parties: Parties::new(&limits),
            statuses: Statuses::default(),
            bans: Bans::default(),
            social: Social::default(),
            names: NameDenyList::empty(),
            limits,
            ids: IdGenerator::new(seed),
            timers: Timers::default(),
            fired_probes: Vec::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The core's counters and gauges (see [`CoreStats`]).
    pub fn stats(&self) -> CoreStats {
        CoreStats { search: self.parties.search_stats() }
    }

    /// Number of connected sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Connected sessions of `user_id`: the driver refuses an upgrade that would pass
    /// `sessions_per_user_max` (SPEC C-2a). Answered from the status tables' user → sessions
    /// index, which lists every connected session, visible or not.
    pub fn sessions_of_user_count(&self, user_id: &UserId) -> usize {
        self.sessions.sessions_of(user_id).len()
    }

    /// A session's upgrade completed. The driver guarantees `session` is not connected.
    pub fn connect(
        &mut self,
        session: SessionId,
        identity: Identity,
        options: ConnectOptions,
        now: Now,
        out: &mut Outbox,
    ) {
        let presence = Presence { user_id: identity.user_id, session_id: session, username: identity.username };
        if !self.sessions.insert(presence.clone(), options) {
            // A driver bug, not client input. Refusing keeps every table consistent, in release
            // builds too, where the tables would otherwise silently diverge.
            debug_assert!(false, "slot of {session} connected twice without a disconnect");
            log::error!("session {session}: slot already connected; connect ignored");
            return;
        }
        out.event_to(session, Event::Welcome { presence: presence.clone() });
        let Core { limits, sessions, parties, statuses, ids, timers, social, names, .. } = self;
        let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
        // C-3: visible at once; the join reaches followers and own sessions after the welcome.
        statuses.connect(&presence, options.status_visible, &mut ctx);
        // L-2: the user's pending invitations, after the welcome and the own-status event.
        parties.connect(&presence, &mut ctx);
        self.check_invariants();
    }

    /// The session's connection ended (any cause: SPEC C-6). Idempotent for unknown sessions, so
    /// a driver racing a close against a request cannot corrupt the tables.
    pub fn disconnect(&mut self, session: SessionId, now: Now, out: &mut Outbox) {
        // Out of the session table first: nothing the disconnect causes reaches the session.
        let Some(presence) = self.sessions.remove(session) else {
            return;
        };
        let Core { limits, sessions, parties, statuses, ids, timers, social, names, .. } = self;
        let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
        parties.disconnect(session, &mut ctx);
        // C-6: the status leaves (to followers and the user's other sessions), follows die.
        statuses.disconnect(&presence, &mut ctx);
        self.check_invariants();
    }

    /// One decoded request of a connected session. Appends exactly one `Output::Reply` with
    /// `cid`, before any event the request causes, except for party data without a cid (SPEC
    /// P-9, fire and forget): no reply on success, an [`Event::PartyDataRefused`] to the sender
    /// on refusal.
    pub fn handle_request(&mut self, session: SessionId, cid: Cid, request: Request, now: Now, out: &mut Outbox) {
        let replies_before = out.reply_count();
        let Core { limits, sessions, parties, statuses, ids, timers, social, names, .. } = self;
        let Some(me) = sessions.presence(session) else {
            // A driver bug, not client input: requests only come from upgraded connections.
            debug_assert!(false, "request from unknown session {session}");
            log::error!("request from unknown session {session}; dropped");
            return;
        };
        if cid == Cid::NONE && matches!(request, Request::Party(PartyRequest::Data { .. })) {
            // P-9, fire and forget: no reply on success; a refusal has no reply to travel in,
            // so it comes as an event naming the party.
            let Request::Party(data @ PartyRequest::Data { party_id, .. }) = request else {
                unreachable!("matched just above");
            };
            let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
            if let Err(error) = parties.handle(me, data, &mut ctx) {
                ctx.events.send_to(session, Event::PartyDataRefused { party_id, error });
            }
            debug_assert_eq!(out.reply_count(), replies_before, "fire-and-forget data gets no reply");
            self.check_invariants();
            return;
        }
        // The wire refuses every other request without a cid (101) before it gets here. Should
        // one slip through in a release build, it is answered like any request, with cid 0.
        debug_assert!(cid != Cid::NONE, "{request:?} without a cid reached the core; the wire refuses it");
        let slot = out.reserve_reply(session, cid);
        let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
        let result = match request {
            Request::Ping => Ok(Reply::Pong),
            Request::Party(request) => parties.handle(me, request, &mut ctx),
            Request::Status(request) => statuses.handle(me, request, &mut ctx),
            Request::Lobby(request) => parties.handle_lobby(me, request, &mut ctx),
        };
        out.fill_reply(slot, result);
        debug_assert_eq!(out.reply_count(), replies_before + 1, "exactly one reply per request");
        self.check_invariants();
    }

    /// The earliest monotonic time at which [`Core::handle_timeout`] has work, or `None` when
    /// no timer is armed. The driver sleeps no later than this (a deadline in the past means
    /// "now"); ask again after every call into the core, since any call may arm a timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.next_deadline()
    }

    /// Runs every timer due at `now.mono`, in deadline order (equal deadlines in the order they
    /// were armed); their events go into `out` like a request's. Calling it early or twice is
    /// harmless. A timer armed while timers run waits for the next call, so one call's work is
    /// bounded by the timers armed before it.
    pub fn handle_timeout(&mut self, now: Now, out: &mut Outbox) {
        let mark = self.timers.mark();
        let Core { limits, sessions, parties, ids, timers, fired_probes, social, names, .. } = self;
        while let Some((_, timeout)) = timers.pop_due(now.mono, mark) {
            match timeout {
                Timeout::Probe { tag } => fired_probes.push((tag, now.mono)),
                Timeout::InvitationExpiry { party_id, invitee } => {
                    let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
                    parties.expire_invitation(party_id, &invitee, &mut ctx);
                }
            }
        }
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
        self.sessions.check_invariants();
        self.parties.check_invariants(&self.limits);
        for session in self.parties.sessions() {
            assert!(self.sessions.get(session).is_some(), "disconnected session {session} still in a party table");
        }
        self.statuses.check_invariants(&self.limits, &self.sessions);
        self.timers.check_invariants();
        self.bans.check_invariants(self.limits.admin_bans_max);
        self.social.check_invariants(&self.limits);
        // L-2: every pending invitation has its expiry armed, and every armed expiry names a
        // pending invitation (equal counts and an injection: a bijection).
        let mut invitations = 0;
        for (party_id, invitation) in self.parties.invitations() {
            invitations += 1;
            let expiry = Timeout::InvitationExpiry { party_id, invitee: invitation.invitee.clone() };
            assert_eq!(
                self.timers.get(invitation.timer),
                Some(&expiry),
                "the invitation of {:?} to {party_id} has no armed expiry",
                invitation.invitee
            );
        }
        let expiries = self.timers.armed().filter(|(_, t)| matches!(t, Timeout::InvitationExpiry { .. })).count();
        assert_eq!(expiries, invitations, "an expiry timer outlived its invitation");
    }

    /// Number of parties.
    pub fn party_count(&self) -> usize {
        self.parties.len()
    }

    /// Memberships over every party (a session in two parties counts twice), for metrics.
    pub fn party_member_count(&self) -> usize {
        self.parties.member_count()
    }

    /// Counters and gauges of the lobby extensions, for metrics (SPEC O-2:
    /// `huddle_party_code_misses_total` is `code_misses_total`).
    pub fn lobby_stats(&self) -> LobbyStats {
        self.parties.lobby_stats()
    }

    // ---- read access for the admin API (SPEC O-1, O-3) ----

    /// A party's code (L-3), as its leader would read it.
    pub fn party_code(&self, party_id: PartyId) -> Option<PartyCode> {
        self.parties.code_of(party_id)
    }

    /// A party's pending invitations (L-2) in the order first sent: (invitee, inviter, expiry).
    pub fn party_invitations(&self, party_id: PartyId) -> Option<Vec<(UserId, Presence, UnixMillis)>> {
        self.parties.invitations_of_party(party_id)
    }

    /// A user's pending invitations, as `PartyInvitationList` answers that user.
    pub fn user_invitations(&self, user_id: &UserId) -> Vec<PartyInvitation> {
        self.parties.invitations_of(user_id)
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
        use std::hash::Hasher;
        let mut hasher = DigestHasher::default();
        self.parties.digest(&mut hasher);
        hasher.finish()
    }

    #[doc(hidden)]
    /// A hash of one party and of one session's party links: what a request naming that party
    /// from that session may change (the fuzz target's per-step check; see `debug_party_digest`).
    pub fn debug_party_digest_touched(&self, party_id: PartyId, session: SessionId) -> u64 {
        use std::hash::Hasher;
        let mut hasher = DigestHasher::default();
        self.parties.digest_touched(party_id, session, &mut hasher);
        hasher.finish()
    }

    /// The invariant sweep for one party (its tables and its search index entry), in every
    /// build: what the fuzz target checks after a step that touched it, between full sweeps.
    #[doc(hidden)]
    pub fn debug_check_party(&self, party_id: PartyId) {
        self.parties.check_one(party_id, &self.limits);
    }

    #[doc(hidden)]
    /// A hash of the status tables, equal before and after any rejected request.
    pub fn debug_status_digest(&self) -> u64 {
        use std::hash::Hasher;
        let mut hasher = DigestHasher::default();
        self.statuses.digest(&mut hasher);
        hasher.finish()
    }

    #[doc(hidden)]
    /// Corrupts the party index (for the canary test); returns false when nothing could be.
    pub fn debug_corrupt_party_index(&mut self) -> bool {
        self.parties.corrupt_index()
    }

    /// Lifts every ban, so the `admin_bytes` fuzz target starts each input from the same state.
    #[doc(hidden)]
    pub fn debug_lift_all_bans(&mut self) {
        self.bans = Bans::default();
    }

    /// Test hook for the search canary: see `PartySearch::corrupt_for_test`.
    #[doc(hidden)]
    pub fn debug_corrupt_search_index(&mut self) -> bool {
        self.parties.corrupt_search_index()
    }

    /// Test hook for the invitation canary: forgets one invitee's index entry.
    #[doc(hidden)]
    pub fn debug_corrupt_invitation_index(&mut self) -> bool {
        self.parties.corrupt_invitations()
    }

    /// Test hook for the code canary: files a party under a second code.
    #[doc(hidden)]
    pub fn debug_corrupt_code_index(&mut self) -> bool {
        self.parties.corrupt_codes()
    }

    /// Test hook for the simulation's version canary: moves a party's version without a change.
    #[doc(hidden)]
    pub fn debug_corrupt_party_version(&mut self) -> bool {
        self.parties.corrupt_version()
    }

    /// Test hook for the session-table canary: lists a session twice among its user's
    /// sessions. Returns false when nobody is connected.
    #[doc(hidden)]
    pub fn debug_corrupt_session_index(&mut self) -> bool {
        self.sessions.corrupt_for_test()
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

    /// Arms a probe timer (see `Timeout::Probe`) for the simulation's timer checks.
    #[doc(hidden)]
    pub fn debug_arm_probe(&mut self, deadline: Millis, tag: u64) -> TimerId {
        self.timers.arm(deadline, Timeout::Probe { tag })
    }

    /// Cancels a timer; false when it already fired or was cancelled.
    #[doc(hidden)]
    pub fn debug_cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id).is_some()
    }

    /// The probes fired since the last call, in firing order: (tag, `now.mono` of the firing).
    #[doc(hidden)]
    pub fn debug_take_fired_probes(&mut self) -> Vec<(u64, Millis)> {
        std::mem::take(&mut self.fired_probes)
    }
}

/// The hasher of the `debug_*_digest` hooks: equality checks of the simulation and the fuzz
/// target, which hash tables around every request, so it is cheap rather than collision-proof
/// against an adversary (inputs cannot see it). FNV-1a over 8-byte words: SipHash cost the
/// fuzz target a tenth of its time. It starts from FNV's offset basis, not zero, so leading zero
/// words (an empty table's length) still change the hash.
struct DigestHasher(u64);

impl Default for DigestHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "without a cid reached the core")]
    fn any_request_but_party_data_without_a_cid_is_a_driver_bug_in_debug_builds() {
        let mut core = Core::new(Limits::default(), [5; 32]);
        let mut out = Outbox::new();
        let (session, user) =
            (SessionId::new(0, 1), Identity { user_id: UserId::new("u"), username: Username::new("U") });
        core.connect(session, user, ConnectOptions::default(), Now::default(), &mut out);
        core.handle_request(session, Cid::NONE, Request::Ping, Now::default(), &mut out);
    }

    #[test]
    fn timers_fire_through_the_driver_contract() {
        let mut core = Core::new(Limits::default(), [5; 32]);
        assert_eq!(core.poll_timeout(), None, "no timer armed");
        let cancelled = core.debug_arm_probe(Millis(10), 1);
        core.debug_arm_probe(Millis(20), 2);
        core.debug_arm_probe(Millis(10), 3);
        assert!(core.debug_cancel_timer(cancelled));
        assert_eq!(core.poll_timeout(), Some(Millis(10)));
        let mut out = Outbox::new();
        core.handle_timeout(Now::simulated(Millis(9)), &mut out);
        assert!(core.debug_take_fired_probes().is_empty(), "early calls are harmless");
        core.handle_timeout(Now::simulated(Millis(25)), &mut out);
        assert_eq!(core.debug_take_fired_probes(), [(3, Millis(25)), (2, Millis(25))]);
        assert_eq!(core.poll_timeout(), None);
        assert!(out.is_empty(), "probes cause no output");
    }
}
