//! Admin entry points of the core (SPEC O-1): what an operator or a game backend asks of the
//! server through the admin API, as rules over the core's tables. The driver parses and
//! authenticates the HTTP request and calls [`Core::handle_admin`] like any request, so the
//! closes and events it causes reach sessions in the normal order; the result is the driver's to
//! answer over HTTP. The ban table is its own sub-state (`ban.rs`).

use super::{CloseReason, Core, CoreError, Now, Outbox, PartyId, SessionId, SocialWrite, UnixMillis, UserId};

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
    /// L-4: replace the given friend and block lists of each user, all or nothing
    /// (`lobby_admin.rs`).
    SetSocial { writes: Vec<SocialWrite> },
    /// L-8: the game backend writes a party's attributes (a compact JSON object) at `timestamp`
    /// (`lobby_admin.rs`).
    SetPartyAttributes { party_id: PartyId, attributes: String, timestamp: UnixMillis },
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
    /// The social table after the write: users with a list, and entries.
    Social {
        users: usize,
        entries: usize,
    },
    /// The party's version after the attributes write.
    PartyAttributes {
        version: u64,
    },
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
            AdminRequest::SetSocial { writes } => self.set_social(writes)?,
            AdminRequest::SetPartyAttributes { party_id, attributes, timestamp } => {
                self.set_party_attributes(party_id, attributes, timestamp, now, out)?
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

    /// Asks the driver to close every session of `user_id` with `reason` (1008); returns how many.
    fn close_user_sessions(&mut self, user_id: &UserId, reason: &'static str, out: &mut Outbox) -> usize {
        let sessions: Vec<SessionId> = self.sessions.sessions_of(user_id).to_vec();
        for &session in &sessions {
            out.close(session, CloseReason::Policy(reason));
        }
        sessions.len()
    }
}
