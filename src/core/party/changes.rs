//! The per-request change list: what one request (or disconnect) changed in which party, and
//! the commit that brings derived state in step with it.
//!
//! The table (`table.rs`) records an entry for every change a member could see, as it makes
//! it; rules never record anything themselves and never touch derived state. After the rule
//! returns, [`Parties::commit`] walks the list once, in order, with the table as the request
//! left it. What hangs on it, each without touching a rule:
//!
//! - **the search index** (Q-3): the only code that keeps it in step, so the very next search
//!   sees the change;
//! - **versions (L-9)**: moved by the table as it records, once per commit per party however
//!   many entries and events the request caused (see `PartyTable::record`); the commit closes
//!   the step;
//! - **invitations ended by a change**: a join consumes the joiner's pending invitation and the
//!   end of a party takes its invitations along; the change carries them, and the commit
//!   disarms their timers and tells the invitee (`accepted` to the user's other sessions,
//!   `party_gone` to all of them), so every path that joins or ends a party gets this right;
//! - **snapshot events (L-9)**: after the walk, every changed party that still exists sends its
//!   whole snapshot, once, to its member sessions that connected with `?snapshots=true`: after
//!   the rule's own events, so after the deltas, and after the reply;
//! - **history (O-3)**, next: `Created`, `Joined`/`Left` (with the session), `Leader` and
//!   `Dissolved` (with its [`EndReason`]), stamped with `ctx.now.wall`, give leaders over time,
//!   members with join and leave times and the end reason: one call per change into
//!   `history.rs`, which keeps its own tables.
//!
//! The list lives in the table and keeps its buffer between requests, and so does the list of
//! changed parties, so recording allocates nothing once warm and committing only what the
//! events it sends carry; party data records nothing, so its commit is one inlined length check.

use super::lobby::{InvitationEndReason, LobbyEvent};
use super::table::Invitation;
use super::Parties;
use crate::core::context::Ctx;
use crate::core::search::PreparedLabel;
use crate::core::{Event, PartyId, SessionId, UserId};

/// Why a party ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum EndReason {
    /// P-8: the leader closed it.
    Closed,
    /// P-6: its last member left or disconnected (or was moved out, L-1, or an operator kicked it).
    Emptied,
    /// O-1: an operator closed it through the admin API.
    ClosedByAdmin,
}

/// One change to one party, in the order the request made it.
#[derive(Debug)]
pub(super) enum PartyChange {
    /// The party exists, with its label prepared for the index.
    Created { party_id: PartyId, label: PreparedLabel },
    /// A member joined (open join, accepted request, accepted invitation, code join), consuming
    /// its user's pending invitation to the party, if it had one.
    Joined { party_id: PartyId, session: SessionId, invitation: Option<Invitation> },
    /// A member left (leave, kick, disconnect, a move, or the end of the party).
    Left { party_id: PartyId, session: SessionId },
    /// The leader changed (rotation or promotion).
    Leader { party_id: PartyId, session: SessionId },
    /// Open, hidden, label or the lobby settings changed; `label` is prepared when the label or
    /// the hidden flag changed (the index entry is rebuilt), `None` when they did not.
    Settings { party_id: PartyId, label: Option<PreparedLabel> },
    /// The party is gone from the table, with the invitations that were pending.
    Dissolved { party_id: PartyId, reason: EndReason, invitations: Vec<Invitation> },
}

impl PartyChange {
    pub fn party_id(&self) -> PartyId {
        match self {
            PartyChange::Created { party_id, .. }
            | PartyChange::Joined { party_id, .. }
            | PartyChange::Left { party_id, .. }
            | PartyChange::Leader { party_id, .. }
            | PartyChange::Settings { party_id, .. }
            | PartyChange::Dissolved { party_id, .. } => *party_id,
        }
    }
}

impl Parties {
    /// Brings derived state in step with the changes the last request recorded, announces what
    /// they imply, and empties the list. Called after every party or lobby request, disconnect
    /// and timer. A request that changed nothing (party data, the hot path) costs one length
    /// check here.
    #[inline]
    pub(super) fn commit(&mut self, ctx: &mut Ctx) {
        if self.table.changes_pending() != 0 {
            self.commit_changes(ctx);
        }
    }

    fn commit_changes(&mut self, ctx: &mut Ctx) {
        let Parties { table, search, changed, history, .. } = self;
        table.drain_changes(|table, mut change| {
            // Postconditions of the table's mutations, checked where the whole request's
            // outcome is known: each change is still true once the request is done.
            match &mut change {
                PartyChange::Joined { party_id, session, invitation } => {
                    debug_assert!(
                        table.get(*party_id).is_none_or(|party| party.is_member(*session)),
                        "{session} joined {party_id} and is not a member after the request"
                    );
                    if let Some(invitation) = invitation.take() {
                        let joiner = *session;
                        end_invitation(ctx, *party_id, invitation, InvitationEndReason::Accepted, |s| s != joiner);
                    }
                }
                PartyChange::Left { party_id, session } => debug_assert!(
                    table.get(*party_id).is_none_or(|party| !party.is_member(*session)),
                    "{session} left {party_id} and is a member after the request"
                ),
                PartyChange::Leader { party_id, session } => debug_assert!(
                    table.get(*party_id).is_none_or(|party| party.is_member(*session)),
                    "the new leader {session} of {party_id} is not a member after the request"
                ),
                PartyChange::Dissolved { party_id, reason, invitations } => {
                    debug_assert!(table.get(*party_id).is_none(), "{party_id} ended and is still in the table");
                    log::debug!("party {party_id} ended: {reason:?}");
                    for invitation in invitations.drain(..) {
                        end_invitation(ctx, *party_id, invitation, InvitationEndReason::PartyGone, |_| true);
                    }
                }
                PartyChange::Created { .. } | PartyChange::Settings { .. } => {}
            }
            history.apply(table, &change, ctx.now.wall, ctx.limits);
            let party_id = change.party_id();
            // A request changes a handful of parties (a disconnect at most
            // `parties_per_session_max`): a linear check beats a set.
            if !changed.contains(&party_id) {
                changed.push(party_id);
            }
            search.apply(table, change);
        });
        let sessions = ctx.sessions;
        let watches = |s: &SessionId| sessions.get(*s).is_some_and(|entry| entry.options.snapshots);
        for party_id in changed.drain(..) {
            let Some(party) = table.get(party_id) else { continue };
            if party.member_sessions().any(|s| watches(&s)) {
                let snapshot = Event::Lobby(LobbyEvent::Snapshot(Box::new(party.snapshot())));
                ctx.events.send(party.member_sessions().filter(watches), snapshot);
            }
        }
    }
}

/// An invitation ended by a change: its timer disarmed, the invitee's sessions that `tell`
/// keeps told why.
fn end_invitation(
    ctx: &mut Ctx,
    party_id: PartyId,
    invitation: Invitation,
    reason: InvitationEndReason,
    tell: impl Fn(SessionId) -> bool,
) {
    let disarmed = ctx.timers.cancel(invitation.timer);
    debug_assert!(disarmed.is_some(), "the expiry timer of a pending invitation is armed");
    let sessions = ctx.sessions;
    let recipients = sessions.sessions_of(&invitation.invitee).iter().copied().filter(|s| tell(*s));
    let invitee: UserId = invitation.invitee;
    ctx.events.send(recipients, Event::Lobby(LobbyEvent::InvitationEnded { party_id, invitee, reason }));
}
