//! Parties (SPEC P-1 … P-12, Q-1): the party rules and the party tables, a room per sub-state.
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | the request, reply and event types; dispatch of a request to its rule; the sweep |
//! | `table.rs` | [`Party`](table::Party) and the tables: parties by id, session → parties; every mutation (link, unlink, dissolve), each recorded in the change list; the table invariants |
//! | `changes.rs` | the per-request change list and its commit: the one place that keeps derived state (the search index) in step with the table |
//! | `membership.rs` | P-2 open join, P-4 kick, P-5 leave, P-6 leader rotation, P-7 promote, P-8 close, P-11 get and my parties, C-6 disconnect |
//! | `requests.rs` | P-2 join requests to closed parties, P-3 list, accept and reject |
//! | `settings.rs` | P-1 create and P-10 update: size, open, hidden, label rules |
//! | `data.rs` | P-9 party data, the hot path: one lookup, one event, no allocation of its own |
//! | `search.rs` | Q-1 … Q-4 through [`crate::core::search`]: label preparation, index upkeep, search requests |
//! | `lobby.rs` | the lobby extensions' vocabulary (L-2, L-3, L-4, L-9): settings, requests, replies, huddle-only events; dispatch of a lobby request |
//! | `invites.rs` | L-2 invitations: invite, refresh, cancel, accept (with L-1's move), reject, list, expiry, delivery on connect |
//! | `codes.rs` | L-3 party codes: read, regenerate, join by code, and the per-session guessing limit |
//! | `history.rs` | O-3 history records, built from the change list; the creation order the admin API lists parties in |
//! | `admin.rs` | O-1 moderation (close, kick) and the operator's views of parties |
//!
//! Shape of the tables (`table.rs`):
//! - `by_id`: each party with its members in join order (so tenure is the index: the first
//!   member has been there longest) and its pending join requests in arrival order;
//! - `of_session`: for every session that is in a party or has asked to join one, those parties
//!   in the order it joined (or asked), so a disconnect finds its parties without a scan;
//! - `invited`: invitee user → the parties that invited it (L-2);
//! - `by_code`: code → party (L-3).
//!
//! Beside them, the search index (`search.rs`) holds every non-hidden party, the code guard
//! (`codes.rs`) each session's recent wrong codes, and the history (`history.rs`) a record in
//! progress per party and the most recent finished ones.
//!
//! # One contract for every rule
//!
//! A rule takes the requester's presence, its request's fields and the request context
//! ([`Ctx`]: limits, clocks, session table, id generator, event sink) and returns its reply or
//! a [`CoreError`]. The core reserved the reply's place before the rule runs, so events the rule
//! queues on `ctx.events` always follow the reply. Every rule validates first and mutates after:
//! a refused request returns its error before touching any table, so it leaves no trace. Each
//! event is queued once with all its recipients in member (join) order. Nothing iterates a
//! `HashMap` into an output.
//!
//! # The change list, and what hangs on it
//!
//! Rules never touch derived state. Every mutation goes through the table (`table.rs`), which
//! records what changed in which party (created, a member joined or left, the leader changed,
//! settings changed, the party ended) in one list per request. Recording moves the party's
//! version (L-9), once per request however many entries or events it caused. After the rule
//! returns, [`Parties::commit`] walks that list once (`changes.rs`): it keeps the search index
//! in step, so the very next search sees the change (Q-3); it ends the invitations a join
//! consumed or a dissolved party took along (L-2); and it sends `PartySnapshot` events to the
//! member sessions that asked for them (L-9); and it feeds the history (SPEC O-3, `history.rs`):
//! `Created`, `Leader`, `Joined` and `Left` entries with `ctx.now.wall` give leaders over time
//! and members with join and leave times; `Dissolved` carries the end reason.
//!
//! # One party per user (L-1)
//!
//! With `Limits::one_party_per_user`, every path into a party (create, join, join request, code
//! join) first asks [`Parties::user_party`] whether the user has a member session anywhere and
//! refuses with `already in party`; an explicit invitation accept instead moves the user
//! (`invites.rs`); a leader's accept of a stale join request drops it (`requests.rs`).
//!
//! Decisions where SPEC is silent are listed in the README's "Parties" section; the comments
//! in the rules name them where they are made.

mod access;
mod admin;
mod attributes;
mod changes;
mod chat;
mod codes;
mod custom;
mod data;
mod history;
mod invites;
mod lobby;
mod membership;
mod requests;
mod search;
mod settings;
mod table;

pub use lobby::{
    ChatKind, ChatMessage, CustomDataScope, InvitationEndReason, InviteStrategy, JoinStrategy, LobbyData, LobbyEvent,
    LobbyReply, LobbyRequest, LobbySettings, LobbySettingsPatch, PartyInvitation, ATTRIBUTES_NONE,
};

use super::context::Ctx;
use super::outbox::Events;
use super::session::Sessions;
use super::{CoreError, Event, PartyCode, PartyId, Presence, Reply, SessionId, UnixMillis, UserId};
use crate::limits::Limits;
use bytes::Bytes;
use chat::ChatGuard;
use codes::CodeGuard;
use history::PartyHistory;
use search::PartySearch;
pub use search::SearchStats;
use table::PartyTable;

pub use admin::{AdminClosed, AdminKicked, PartyAdminSummary, PartyAdminView, UserParties};
pub use history::{HistoryEndReason, HistoryLeader, HistoryMember, HistoryQuery, HistoryRecord};

/// A decoded party request (`Request::Party`).
#[derive(Clone, Debug, PartialEq)]
pub enum PartyRequest {
    /// P-1 (and L-4's strategies in `lobby`). `label` empty = none.
    Create { open: bool, max_size: u32, label: String, hidden: bool, lobby: LobbySettings },
    /// P-2.
    Join { party_id: PartyId },
    /// P-3, leader only: the pending join requests.
    JoinRequests { party_id: PartyId },
    /// P-3, leader only.
    Accept { party_id: PartyId, presence: Presence },
    /// P-3 (reject a pending request) and P-4 (kick a member), leader only.
    Remove { party_id: PartyId, presence: Presence },
    /// P-5. Also withdraws the session's own pending join request.
    Leave { party_id: PartyId },
    /// P-7, leader only.
    Promote { party_id: PartyId, presence: Presence },
    /// P-8, leader only.
    Close { party_id: PartyId },
    /// P-9, members only. `data` is a slice of the request frame (no copy).
    Data { party_id: PartyId, op_code: i64, data: Bytes },
    /// P-10 (and L-4's strategies in `lobby`), leader only. `None` keeps the current value;
    /// `Some("")` clears the label.
    Update {
        party_id: PartyId,
        open: Option<bool>,
        hidden: Option<bool>,
        label: Option<String>,
        lobby: LobbySettingsPatch,
    },
    /// P-11, members only.
    Get { party_id: PartyId },
    /// P-11: the calling session's parties.
    MyParties,
    /// Q-1: anyone may search. `query` empty = every non-hidden party; `open` keeps only open
    /// (`Some(true)`) or closed (`Some(false)`) parties; `limit` `None` = the default page;
    /// `cursor` (empty = none) continues a previous search with the same query, filter and limit.
    Search { query: String, open: Option<bool>, limit: Option<u32>, cursor: Option<String> },
}

/// A whole party as members see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartySnapshot {
    pub party_id: PartyId,
    pub open: bool,
    pub hidden: bool,
    pub max_size: u16,
    /// A JSON object, or empty for none.
    pub label: String,
    pub leader: Presence,
    /// Join order, longest tenure first.
    pub members: Vec<Presence>,
    /// L-4 strategies, L-6 chat flag, L-7 name.
    pub lobby: LobbySettings,
    /// L-5 custom data, L-8 attributes.
    pub data: LobbyData,
    /// L-9: 1 at create, +1 per request (or disconnect) that changed what this snapshot shows.
    pub version: u64,
}

/// A party without its member list: what "my parties" returns, so that a session in many large
/// parties gets a reply of bounded size (16 full snapshots of 256 members could exceed a client's
/// output buffer).
#[derive(Clone, Debug, PartialEq)]
pub struct PartySummary {
    pub party_id: PartyId,
    pub open: bool,
    pub hidden: bool,
    pub max_size: u16,
    pub member_count: u16,
    pub label: String,
    pub leader: Presence,
    pub lobby: LobbySettings,
    /// L-9.
    pub version: u64,
}

/// One party in a search result (Q-1): what a player needs to pick a party to join.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyListing {
    pub party_id: PartyId,
    pub open: bool,
    pub max_size: u16,
    pub member_count: u16,
    /// A JSON object, or empty for none.
    pub label: String,
    /// L-7: "" for none.
    pub name: String,
    /// L-9.
    pub version: u64,
}

/// The successful result of a party request.
#[derive(Clone, Debug, PartialEq)]
pub enum PartyReply {
    /// Create, open join (or joining a party the session is already in), get, accepting an
    /// invitation, code join. Boxed: the largest reply by far, and every reply travels in the
    /// outbox's `Output`, which the party-data path moves by value.
    Info(Box<PartySnapshot>),
    /// A closed party queued the join request.
    JoinPending { party_id: PartyId },
    /// The pending join requests, in arrival order.
    JoinRequests { party_id: PartyId, presences: Vec<Presence> },
    /// Done; nothing more to say.
    Ok { party_id: PartyId },
    /// The session's parties in the order it joined them.
    MyParties(Vec<PartySummary>),
    /// Q-1: one page of search results, best first; `cursor` is present only when more exist.
    SearchResult { parties: Vec<PartyListing>, cursor: Option<String> },
}

/// Why a session stopped being a member or requester of a party.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RemovedReason {
    /// P-4: the leader removed this member.
    Kicked,
    /// P-8: the leader closed the party; also sent to pending requesters of a party that closed
    /// or whose last member left, so they stop waiting.
    Closed,
    /// P-3: the leader rejected this join request.
    Rejected,
    /// L-1: the user accepted an invitation to another party and the server keeps one party
    /// per user, so this session was taken out first.
    Moved,
    /// O-1: an operator closed the party through the admin API (members and requesters).
    ClosedByAdmin,
}

/// Party events. Each is queued once with all its recipients. Those about the party's state
/// carry its `version` after the change (L-9); party data and join requests do not.
#[derive(Clone, Debug, PartialEq)]
pub enum PartyEvent {
    /// Members joined or left.
    Presence { party_id: PartyId, joins: Vec<Presence>, leaves: Vec<Presence>, version: u64 },
    /// To the leader: a new join request, or every pending one when it became leader.
    JoinRequest { party_id: PartyId, presences: Vec<Presence> },
    /// The leader changed.
    Leader { party_id: PartyId, leader: Presence, version: u64 },
    /// The recipient is no longer a member (or requester).
    Removed { party_id: PartyId, reason: RemovedReason, version: u64 },
    /// Party data from `sender`.
    Data { party_id: PartyId, sender: Presence, op_code: i64, data: Bytes },
    /// The party's settings after an update.
    Updated {
        party_id: PartyId,
        open: bool,
        hidden: bool,
        max_size: u16,
        label: String,
        lobby: LobbySettings,
        version: u64,
    },
    /// To a session whose join request was accepted: the party it is now in. Boxed: the largest
    /// payload by far, and events are moved by value on the party-data path (see `LobbyEvent`).
    Joined(Box<PartySnapshot>),
}

/// What a party rule returns, as every feature handler does: its reply wrapped as the core's
/// [`Reply`], or why the request was refused (and then it changed nothing).
type Outcome = Result<Reply, CoreError>;

/// A party rule's reply, wrapped (built in place: party data is the hot path).
#[inline]
fn done(reply: PartyReply) -> Outcome {
    Ok(Reply::Party(reply))
}

/// Counters and gauges of the lobby extensions (read by metrics, SPEC O-2).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LobbyStats {
    /// Code joins with a code no live party has (L-3: `huddle_party_code_misses_total`).
    pub code_misses_total: u64,
    /// Code joins refused with 300 because the session had used up its misses.
    pub code_joins_limited_total: u64,
    /// Invitations pending now.
    pub invitations_pending: usize,
    /// Invitations that expired since the start.
    pub invitations_expired_total: u64,
    /// L-6: chat messages sent since the start.
    pub chat_messages_total: u64,
    /// L-6: chat requests refused since the start, for any reason (not a member, chat off, a bad
    /// body, the rate limit).
    pub chat_refused_total: u64,
}

/// The party tables, the search index over them, the code guard and the history of parties.
pub(crate) struct Parties {
    table: PartyTable,
    search: PartySearch,
    history: PartyHistory,
    /// L-3: recent wrong codes per session.
    guard: CodeGuard,
    /// L-6: recent chat messages per session.
    chat: ChatGuard,
    /// The parties the current commit changed, in first-change order (a reused buffer).
    changed: Vec<PartyId>,
    invitations_expired_total: u64,
}

/// Queues a party event once for all of `recipients`.
fn send(events: &mut Events, recipients: impl IntoIterator<Item = SessionId>, event: PartyEvent) {
    events.send(recipients, Event::Party(event));
}

impl Parties {
    pub fn new(limits: &Limits) -> Parties {
        Parties {
            table: PartyTable::default(),
            search: PartySearch::new(limits),
            history: PartyHistory::default(),
            guard: CodeGuard::default(),
            chat: ChatGuard::default(),
            changed: Vec::new(),
            invitations_expired_total: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Memberships over every party (a session in two parties counts twice), for metrics.
    pub fn member_count(&self) -> usize {
        self.table.member_count()
    }

    pub fn history(&self) -> &PartyHistory {
        &self.history
    }

    pub fn history_mut(&mut self) -> &mut PartyHistory {
        &mut self.history
    }

    /// One party request of `me`: the rule's reply, its events on `ctx.events`, then the
    /// commit of what it changed.
    pub fn handle(&mut self, me: &Presence, request: PartyRequest, ctx: &mut Ctx) -> Outcome {
        let result = match request {
            PartyRequest::Data { party_id, op_code, data } => self.data(me, party_id, op_code, data, ctx),
            PartyRequest::Create { open, max_size, label, hidden, lobby } => {
                self.create(me, settings::NewParty { open, max_size, label, hidden, lobby }, ctx)
            }
            PartyRequest::Join { party_id } => self.join(me, party_id, ctx),
            PartyRequest::JoinRequests { party_id } => self.join_requests(me, party_id),
            PartyRequest::Accept { party_id, presence } => self.accept(me, party_id, &presence, ctx),
            PartyRequest::Remove { party_id, presence } => self.remove(me, party_id, &presence, ctx),
            PartyRequest::Leave { party_id } => self.leave(me, party_id, ctx),
            PartyRequest::Promote { party_id, presence } => self.promote(me, party_id, &presence, ctx),
            PartyRequest::Close { party_id } => self.close(me, party_id, ctx),
            PartyRequest::Update { party_id, open, hidden, label, lobby } => {
                self.update(me, party_id, settings::SettingsPatch { open, hidden, label, lobby }, ctx)
            }
            PartyRequest::Get { party_id } => self.get(me, party_id),
            PartyRequest::MyParties => done(self.my_parties(me)),
            PartyRequest::Search { query, open, limit, cursor } => {
                let params = search::SearchParams { query, open, limit, cursor };
                self.search.search(&self.table, me.session_id, params, ctx)
            }
        };
        self.finish(result.is_ok(), ctx);
        result
    }

    /// The end of every request: a refusal changed nothing; the commit. Takes the outcome's
    /// success only, so the reply (a hundred bytes and more) is not moved through it on the
    /// party-data path.
    #[inline]
    fn finish(&mut self, succeeded: bool, ctx: &mut Ctx) {
        debug_assert!(succeeded || self.table.changes_pending() == 0, "a refused request changed a table");
        self.commit(ctx);
    }

    /// A session connected (it is in `ctx.sessions`): L-2, it hears of its user's pending
    /// invitations, in the order they were first sent.
    pub fn connect(&mut self, me: &Presence, ctx: &mut Ctx) {
        for invitation in self.invitations_of(&me.user_id) {
            ctx.events.send_to(me.session_id, Event::Lobby(LobbyEvent::Invited(Box::new(invitation))));
        }
    }

    /// C-6: `session` (already gone from the session table) leaves every party it is in, in
    /// the order it joined them; its pending join requests vanish silently (the leader's next
    /// list shows it), and so do its recent wrong codes.
    pub fn disconnect(&mut self, session: SessionId, ctx: &mut Ctx) {
        self.leave_everything(session, ctx);
        self.guard.forget(session);
        self.chat.forget(session);
        self.commit(ctx);
    }

    /// L-1: the member session of `user_id` and its party, if the user is in one (with one
    /// party per user there is at most one). Costs the user's sessions (at most
    /// `sessions_per_user_max`).
    fn user_party(&self, user_id: &UserId, sessions: &Sessions) -> Option<(SessionId, PartyId)> {
        sessions
            .sessions_of(user_id)
            .iter()
            .find_map(|&session| self.table.first_membership(session).map(|party_id| (session, party_id)))
    }

    /// L-1: refuses a way into a party while the user is in one, when the server keeps one party
    /// per user.
    fn check_not_in_party(&self, me: &Presence, ctx: &Ctx) -> Result<(), CoreError> {
        if ctx.limits.one_party_per_user && self.user_party(&me.user_id, ctx.sessions).is_some() {
            return Err(CoreError::PartyAlreadyInParty);
        }
        Ok(())
    }

    pub fn lobby_stats(&self) -> LobbyStats {
        LobbyStats {
            code_misses_total: self.guard.misses_total,
            code_joins_limited_total: self.guard.limited_total,
            invitations_pending: self.table.invitations_len(),
            invitations_expired_total: self.invitations_expired_total,
            chat_messages_total: self.chat.messages_total,
            chat_refused_total: self.chat.refused_total,
        }
    }

    pub fn code_of(&self, party_id: PartyId) -> Option<PartyCode> {
        self.table.get(party_id).map(|party| party.code)
    }

    pub fn invitations_of_party(&self, party_id: PartyId) -> Option<Vec<(UserId, Presence, UnixMillis)>> {
        let party = self.table.get(party_id)?;
        Some(party.invitations.iter().map(|i| (i.invitee.clone(), i.inviter.clone(), i.expires_at)).collect())
    }

    /// Every pending invitation with its party, for the core's timer cross-check.
    pub(super) fn invitations(&self) -> impl Iterator<Item = (PartyId, &table::Invitation)> {
        self.table.invitations()
    }

    // ---- checks and inspection ----

    /// Every session the tables name, for the core's cross-table check.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.table.sessions()
    }

    pub fn check_invariants(&self, limits: &Limits) {
        assert_eq!(self.table.changes_pending(), 0, "a change list was left uncommitted");
        self.table.check_invariants(limits);
        self.search.check_invariants(&self.table);
        self.chat.check_invariants(limits.chat_messages_per_window_max);
        self.history.check_invariants(&self.table, limits);
    }

    /// `check_invariants` for one party (tables and search index), for sweeps limited to what
    /// a request touched.
    pub fn check_one(&self, party_id: PartyId, limits: &Limits) {
        assert_eq!(self.table.changes_pending(), 0, "a change list was left uncommitted");
        self.table.check_one(party_id, limits);
        self.search.check_one(&self.table, party_id);
    }

    /// A hash of one party and one session's links: see [`PartyTable::digest_touched`].
    pub fn digest_touched(&self, party_id: PartyId, session: SessionId, hasher: &mut impl std::hash::Hasher) {
        self.table.digest_touched(party_id, session, hasher);
    }

    /// What search and the label bounds did (`Core::stats`).
    pub fn search_stats(&self) -> SearchStats {
        self.search.stats()
    }

    /// Table sizes: (parties, sessions indexed).
    pub fn table_sizes(&self) -> (usize, usize) {
        self.table.sizes()
    }

    /// Party ids, sorted.
    pub fn ids(&self) -> Vec<PartyId> {
        self.table.ids()
    }

    pub fn snapshot(&self, party_id: PartyId) -> Option<PartySnapshot> {
        self.table.get(party_id).map(table::Party::snapshot)
    }

    pub fn pending(&self, party_id: PartyId) -> Option<Vec<Presence>> {
        self.table.get(party_id).map(|p| p.pending.iter().cloned().collect())
    }

    /// A hash of every table, independent of `HashMap` order.
    pub fn digest(&self, hasher: &mut impl std::hash::Hasher) {
        self.table.digest(hasher);
        self.search.digest(hasher);
    }

    /// Test hook for the search canary: see [`PartySearch::corrupt_for_test`].
    pub fn corrupt_search_index(&mut self) -> bool {
        self.search.corrupt_for_test(&self.table)
    }

    /// Test hook for the party-index canary: see [`PartyTable::corrupt_for_test`].
    pub fn corrupt_index(&mut self) -> bool {
        self.table.corrupt_for_test()
    }

    pub fn corrupt_invitations(&mut self) -> bool {
        self.table.corrupt_invitations_for_test()
    }

    pub fn corrupt_codes(&mut self) -> bool {
        self.table.corrupt_codes_for_test()
    }

    pub fn corrupt_version(&mut self) -> bool {
        self.table.corrupt_version_for_test()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::search::{PartyDoc, SearchIndex, SearchLimits};
    use crate::core::{
        Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, Output, Reply, Request, UserId, Username,
    };

    fn core_with(n: u32) -> (Core, Vec<SessionId>) {
        connect_all(Core::new(Limits::default(), [3; 32]), n)
    }

    fn connect_all(mut core: Core, n: u32) -> (Core, Vec<SessionId>) {
        let mut out = Outbox::new();
        let sessions: Vec<SessionId> = (0..n).map(|i| SessionId::new(i, 1)).collect();
        for (i, s) in sessions.iter().enumerate() {
            let identity =
                Identity { user_id: UserId::new(&format!("u{i}")), username: Username::new(&format!("U{i}")) };
            core.connect(*s, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut out);
        }
        (core, sessions)
    }

    fn run(core: &mut Core, session: SessionId, request: PartyRequest) -> Outbox {
        let mut out = Outbox::new();
        core.handle_request(session, Cid(1), Request::Party(request), Now::simulated(Millis(0)), &mut out);
        out
    }

    fn created(out: &Outbox) -> PartyId {
        match &out.outputs()[0] {
            Output::Reply { result: Ok(Reply::Party(PartyReply::Info(s))), .. } => s.party_id,
            other => panic!("expected a snapshot reply, got {other:?}"),
        }
    }

    /// `sessions` connected sessions of distinct users; the first creates an open party with a
    /// seat for each of them, and the next `members - 1` join it in order.
    fn party_of(sessions: u32, members: usize) -> (Core, Vec<SessionId>, PartyId) {
        let (mut core, s) = core_with(sessions);
        let create = PartyRequest::Create {
            open: true,
            max_size: sessions,
            label: String::new(),
            hidden: false,
            lobby: Default::default(),
        };
        let party_id = created(&run(&mut core, s[0], create));
        for &session in &s[1..members] {
            run(&mut core, session, PartyRequest::Join { party_id });
        }
        (core, s, party_id)
    }

    #[test]
    fn leader_leaving_orders_reply_then_leader_then_leaves_then_pending_list() {
        let (mut core, s, party_id) = party_of(4, 3);
        run(
            &mut core,
            s[0],
            PartyRequest::Update { party_id, open: Some(false), hidden: None, label: None, lobby: Default::default() },
        );
        run(&mut core, s[3], PartyRequest::Join { party_id });
        let out = run(&mut core, s[0], PartyRequest::Leave { party_id });
        let kinds: Vec<String> = out
            .outputs()
            .iter()
            .map(|o| match o {
                Output::Reply { to, .. } => format!("reply {}", to.slot()),
                Output::Event { recipients, event: Event::Party(e), .. } => {
                    let to: Vec<u32> = out.recipients(recipients.clone()).iter().map(|s| s.slot()).collect();
                    let name = format!("{e:?}");
                    format!("{} {to:?}", name.split([' ', '{', '(']).next().unwrap())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["reply 0", "Leader [1, 2]", "Presence [1, 2]", "JoinRequest [1]"]);
    }

    #[test]
    fn party_data_is_one_event_to_every_other_member_and_shares_the_payload() {
        let (mut core, s, party_id) = party_of(3, 3);
        let data = Bytes::from(vec![5u8; 32]);
        let out = run(&mut core, s[1], PartyRequest::Data { party_id, op_code: 3, data: data.clone() });
        assert_eq!(out.outputs().len(), 2);
        let Output::Event { recipients, event: Event::Party(PartyEvent::Data { data: sent, .. }) } = &out.outputs()[1]
        else {
            panic!("expected one data event")
        };
        assert_eq!(out.recipients(recipients.clone()), &[s[0], s[2]]);
        assert_eq!(sent.as_ptr(), data.as_ptr(), "the payload is shared, not copied");
    }

    #[test]
    fn create_accepts_exactly_the_labels_the_search_index_accepts() {
        // One parser: the party layer prepares labels through the index, so a label passes the
        // party rules exactly when the index takes it, and committing it cannot fail.
        let limits = Limits { party_label_bytes_max: 24, ..Limits::default() };
        let labels = [
            "",
            "{}",
            r#"{"a":1}"#,
            r#"{"a":{"b":[1,"x",true,null]}}"#,
            r#"{"pad":"xxxxxxxxxxxxxxx"}"#,
            r#"{"pad":"xxxxxxxxxxxxxxxx"}"#,
            "[1]",
            "1",
            "\"s\"",
            "null",
            "{not json",
            r#"{"a":1}x"#,
            r#"{"a":1e400}"#,
            r#"{"a":-0}"#,
            " {} ",
        ];
        for label in labels {
            let mut index = SearchIndex::new(SearchLimits::from(&limits));
            let doc = PartyDoc { open: true, max_size: 4, member_count: 1, label: Some(label) };
            let indexed = index.upsert(1, doc).is_ok();
            let (mut core, s) = connect_all(Core::new(limits.clone(), [3; 32]), 1);
            let create = PartyRequest::Create {
                open: true,
                max_size: 4,
                label: label.into(),
                hidden: false,
                lobby: Default::default(),
            };
            let out = run(&mut core, s[0], create);
            let created = matches!(out.outputs()[0], Output::Reply { result: Ok(_), .. });
            assert_eq!(created, indexed, "{label:?}");
            core.assert_invariants();
        }
    }

    #[test]
    fn refused_requests_leave_the_tables_as_they_were() {
        let (mut core, s) = core_with(2);
        let party_id = created(&run(
            &mut core,
            s[0],
            PartyRequest::Create {
                open: false,
                max_size: 2,
                label: r#"{"a":1}"#.into(),
                hidden: false,
                lobby: Default::default(),
            },
        ));
        let digest = core.debug_party_digest();
        let refused = [
            (
                s[0],
                PartyRequest::Update {
                    party_id,
                    open: Some(true),
                    hidden: Some(true),
                    label: None,
                    lobby: Default::default(),
                },
            ),
            (s[1], PartyRequest::Close { party_id }),
            (
                s[0],
                PartyRequest::Create {
                    open: true,
                    max_size: 0,
                    label: String::new(),
                    hidden: false,
                    lobby: Default::default(),
                },
            ),
        ];
        for (session, request) in refused {
            let out = run(&mut core, session, request.clone());
            assert!(matches!(out.outputs(), [Output::Reply { result: Err(_), .. }]), "{request:?}");
            assert_eq!(core.debug_party_digest(), digest, "{request:?} changed the tables");
        }
    }

    /// Party data of `bytes` bytes, sent by `session` with `cid`.
    fn send_data(core: &mut Core, session: SessionId, cid: Cid, party_id: PartyId, bytes: usize) -> Outbox {
        let mut out = Outbox::new();
        let data = PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(vec![1; bytes]) };
        core.handle_request(session, cid, Request::Party(data), Now::simulated(Millis(0)), &mut out);
        out
    }

    #[test]
    fn party_data_without_a_cid_gets_no_reply_and_a_refusal_comes_as_an_event() {
        let (mut core, s, party_id) = party_of(3, 3);
        let out = send_data(&mut core, s[1], Cid::NONE, party_id, 4);
        let [Output::Event { recipients, event: Event::Party(PartyEvent::Data { .. }) }] = out.outputs() else {
            panic!("only the data event, no reply: {:?}", out.outputs())
        };
        assert_eq!(out.recipients(recipients.clone()), [s[0], s[2]]);
        assert_eq!(out.reply_count(), 0);

        // Refused (too large, then for a party that does not exist): one event to the sender,
        // naming the party, and nothing else.
        let too_large = core.limits().party_data_bytes_max + 1;
        for (party, bytes) in [(party_id, too_large), (PartyId(7), 1)] {
            let out = send_data(&mut core, s[1], Cid::NONE, party, bytes);
            let [Output::Event { recipients, event: Event::PartyDataRefused { party_id, error } }] = out.outputs()
            else {
                panic!("one refusal event: {:?}", out.outputs())
            };
            assert_eq!(out.recipients(recipients.clone()), [s[1]]);
            assert_eq!(*party_id, party);
            assert!(matches!(error, CoreError::LimitExceeded(_) | CoreError::PartyNotFound), "{error:?}");
            assert_eq!(out.reply_count(), 0);
        }

        // With a cid, the same data gets its reply first, then the event.
        let out = send_data(&mut core, s[1], Cid(9), party_id, 4);
        assert!(matches!(out.outputs(), [Output::Reply { cid: Cid(9), result: Ok(_), .. }, Output::Event { .. }]));
    }
}
