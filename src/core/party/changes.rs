//! The per-request change list: what one request (or disconnect) changed in which party, and
//! the commit that brings derived state in step with it.
//!
//! The table (`table.rs`) records an entry for every change a member could see, as it makes
//! it; rules never record anything themselves and never touch derived state. After the rule
//! returns, [`Parties::commit`] walks the list once, in order, with the table as the request
//! left it. That walk is the only code that keeps the search index in step, and the place
//! where the next features hang, each without touching a rule:
//!
//! - **versions (L-9)**: bump each party named in the list once per commit, however many
//!   entries and events the request caused;
//! - **snapshot events**: after the walk, send a `PartySnapshot` of each changed live party to
//!   the sessions that asked for them (the events follow the rule's own, after the reply);
//! - **history (O-3)**: `Created`, `Joined`/`Left` (with the session), `Leader` and
//!   `Dissolved` (with its [`EndReason`]), stamped with `ctx.now.wall`, give leaders over time,
//!   members with join and leave times and the end reason: one call per change into
//!   `history.rs`, which keeps its own tables.
//!
//! The list lives in the table and keeps its buffer between requests, so recording and
//! committing allocate nothing once warm; party data records nothing, so its commit is one
//! length check.

use super::Parties;
use crate::core::context::Ctx;
use crate::core::search::PreparedLabel;
use crate::core::{PartyId, SessionId};

/// Why a party ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum EndReason {
    /// P-8: the leader closed it.
    Closed,
    /// P-6: its last member left or disconnected (or an operator kicked it).
    Emptied,
    /// O-1: an operator closed it through the admin API.
    ClosedByAdmin,
}

/// One change to one party, in the order the request made it.
#[derive(Debug)]
pub(super) enum PartyChange {
    /// The party exists, with its label prepared for the index.
    Created { party_id: PartyId, label: PreparedLabel },
    /// A member joined (open join, accepted request).
    Joined { party_id: PartyId, session: SessionId },
    /// A member left (leave, kick, disconnect, or the end of the party).
    Left { party_id: PartyId, session: SessionId },
    /// The leader changed (rotation or promotion).
    Leader { party_id: PartyId, session: SessionId },
    /// Open, hidden or label changed; `label` is prepared when the label or the hidden flag
    /// changed (the index entry is rebuilt), `None` when only the open flag may have.
    Settings { party_id: PartyId, label: Option<PreparedLabel> },
    /// The party is gone from the table.
    Dissolved { party_id: PartyId, reason: EndReason },
}

impl Parties {
    /// Brings derived state in step with the changes the last request recorded, and empties
    /// the list. Called after every party request and disconnect.
    pub(super) fn commit(&mut self, ctx: &mut Ctx) {
        let Parties { table, search, history } = self;
        table.drain_changes(|table, change| {
            // Postconditions of the table's mutations, checked where the whole request's
            // outcome is known: each change is still true once the request is done.
            match &change {
                PartyChange::Joined { party_id, session } => debug_assert!(
                    table.get(*party_id).is_none_or(|party| party.is_member(*session)),
                    "{session} joined {party_id} and is not a member after the request"
                ),
                PartyChange::Left { party_id, session } => debug_assert!(
                    table.get(*party_id).is_none_or(|party| !party.is_member(*session)),
                    "{session} left {party_id} and is a member after the request"
                ),
                PartyChange::Leader { party_id, session } => debug_assert!(
                    table.get(*party_id).is_none_or(|party| party.is_member(*session)),
                    "the new leader {session} of {party_id} is not a member after the request"
                ),
                PartyChange::Dissolved { party_id, reason } => {
                    debug_assert!(table.get(*party_id).is_none(), "{party_id} ended and is still in the table");
                    log::debug!("party {party_id} ended: {reason:?}");
                }
                PartyChange::Created { .. } | PartyChange::Settings { .. } => {}
            }
            history.apply(table, &change, ctx.now.wall, ctx.limits);
            search.apply(table, change);
        });
    }
}
