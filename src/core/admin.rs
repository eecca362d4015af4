//! Admin entry points of the core (SPEC O-1): what an operator or a game backend asks of the
//! server through the admin API, as rules over the core's tables. The driver parses and
//! authenticates the HTTP request and calls [`Core::handle_admin`] like any request, so the
//! closes and events it causes reach sessions in the normal order; the result is the driver's to
//! answer over HTTP. The ban table is its own sub-state (`ban.rs`); party moderation and the
//! operator's views of parties are the party feature's (`party/admin.rs`), and the history
//! (O-3) is built there too (`party/history.rs`): this file is the door to them.
//!
//! # History and the driver
//!
//! Records finish inside the core as parties end; the driver takes them with
//! [`Core::take_finished_history`] after its calls into the core (once per loop turn is
//! enough) and writes them to the history file, so nothing here touches a file. Until taken,
//! finished records accumulate: a driver that never takes them grows the core without bound.
//! At a graceful shutdown the driver calls [`Core::record_shutdown`] once, when the drain
//! begins.

use super::context::Ctx;
use super::outbox::Events;
use super::party::UserParties;
use super::party::{AdminClosed, AdminKicked, HistoryQuery, HistoryRecord, PartyAdminSummary, PartyAdminView};
use super::{CloseReason, Core, CoreError, Now, Outbox, PartyId, SessionId, UnixMillis, UserId};
use std::sync::Arc;

/// Close reason of a session disconnected by `DELETE /v1/users/{id}/sessions`.
pub const CLOSE_DISCONNECTED_BY_ADMIN: &str = "disconnected by admin";
/// Close reason of a session whose user was banned (`PUT /v1/users/{id}/ban`).
pub const CLOSE_BANNED: &str = "banned";

/// An admin request the core executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// Close every session of the user (they may reconnect).
    DisconnectUser { user_id: UserId },
    /// Close every session of the user and refuse new ones until `until` (Unix ms).
    Ban { user_id: UserId, until: UnixMillis },
    /// Lift a ban early.
    Unban { user_id: UserId },
    /// Close a party: members and pending requesters are told `closed_by_admin`.
    CloseParty { party_id: PartyId },
    /// Kick every member session of `user_id` from the party, or only `session`.
    KickMember { party_id: PartyId, user_id: UserId, session: Option<SessionId> },
}

/// The result of an admin request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminReply {
    SessionsClosed {
        sessions_closed: usize,
    },
    Banned {
        until: UnixMillis,
        sessions_closed: usize,
    },
    /// `lifted` is false when the user was not banned (or the ban had expired).
    Unbanned {
        lifted: bool,
    },
    PartyClosed(AdminClosed),
    MembersKicked(AdminKicked),
}

impl Core {
    /// Executes an admin request at `now`; closes go into `out` like a request's events.
    pub fn handle_admin(&mut self, request: AdminRequest, now: Now, out: &mut Outbox) -> Result<AdminReply, CoreError> {
        let reply = match request {
            AdminRequest::DisconnectUser { user_id } => {
                let sessions_closed = self.close_user_sessions(&user_id, CLOSE_DISCONNECTED_BY_ADMIN, out);
                AdminReply::SessionsClosed { sessions_closed }
            }
            AdminRequest::Ban { user_id, until } => {
                if until <= now.wall {
                    return Err(CoreError::BadInput(format!(
                        "until: {} is not in the future (now is {} Unix ms)",
                        until.0, now.wall.0
                    )));
                }
                self.bans.ban(user_id.clone(), until, now.wall, self.limits.admin_bans_max)?;
                let sessions_closed = self.close_user_sessions(&user_id, CLOSE_BANNED, out);
                AdminReply::Banned { until, sessions_closed }
            }
            AdminRequest::Unban { user_id } => AdminReply::Unbanned { lifted: self.bans.lift(&user_id, now.wall) },
            AdminRequest::CloseParty { party_id } => {
                let Core { limits, sessions, parties, ids, timers, .. } = self;
                let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out) };
                AdminReply::PartyClosed(parties.admin_close(party_id, &mut ctx)?)
            }
            AdminRequest::KickMember { party_id, user_id, session } => {
                let Core { limits, sessions, parties, ids, timers, .. } = self;
                let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out) };
                AdminReply::MembersKicked(parties.admin_kick(party_id, &user_id, session, &mut ctx)?)
            }
        };
        self.check_invariants();
        Ok(reply)
    }

    /// Whether `user_id` may open a session at `now` (not banned). The driver asks before it
    /// accepts an upgrade, and refuses a banned user with 403.
    #[must_use]
    pub fn admits(&self, user_id: &UserId, now: Now) -> bool {
        !self.bans.is_banned(user_id, now.wall)
    }

    /// Number of bans in the table (expired ones included until they are swept).
    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// Every party in creation order (a stable order: new parties come last), from the
    /// `offset`-th; O(offset) to get there.
    pub fn admin_parties(&self, offset: usize) -> impl Iterator<Item = PartyAdminSummary> + '_ {
        self.parties.admin_list(offset)
    }

    /// A party in full, with its pending join requests; `None` when there is no such party.
    pub fn admin_party(&self, party_id: PartyId) -> Option<PartyAdminView> {
        self.parties.admin_view(party_id)
    }

    /// The parties of every session of `user_id`, and its pending join requests.
    pub fn admin_user_parties(&self, user_id: &UserId) -> UserParties {
        self.parties.admin_user_parties(self.sessions.sessions_of(user_id))
    }

    /// Kept history records (the most recent `history_records_max`) that match `query`,
    /// newest first.
    pub fn history<'a>(&'a self, query: &'a HistoryQuery) -> impl Iterator<Item = &'a Arc<HistoryRecord>> + 'a {
        self.parties.history().matching(query)
    }

    /// Moves the history records finished since the last call into `into`, in the order they
    /// finished (see the module docs: the driver calls it every turn).
    pub fn take_finished_history(&mut self, into: &mut Vec<Arc<HistoryRecord>>) {
        self.parties.history_mut().take_finished(into);
    }

    /// A graceful shutdown began: every live party's history record finishes now with reason
    /// `shutdown`. The parties stay while their sessions drain; what happens to them after this
    /// is not recorded again. Call it once.
    pub fn record_shutdown(&mut self, now: Now) {
        let Core { limits, parties, .. } = self;
        parties.history_mut().record_shutdown(now.wall, limits);
        self.check_invariants();
    }

    /// History records finished since the start.
    pub fn history_records_total(&self) -> u64 {
        self.parties.history().records_total
    }

    /// Asks the driver to close every session of `user_id` with `reason` (1008); returns how many.
    fn close_user_sessions(&mut self, user_id: &UserId, reason: &'static str, out: &mut Outbox) -> usize {
        let sessions: Vec<SessionId> = self.sessions.sessions_of(user_id).to_vec();
        for &session in &sessions {
            out.close(session, CloseReason::Policy(reason));
        }
        sessions.len()
    }
}
