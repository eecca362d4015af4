//! Join requests to closed parties (SPEC P-2, P-3): queueing a request, the leader's list,
//! accept and reject. Requests are linked in the session index (they count toward
//! `parties_per_session_max`) but are not in a member's snapshot, so they record no change.

use super::{done, send, Outcome, Parties, PartyEvent, PartyReply, RemovedReason};
use crate::core::context::Ctx;
use crate::core::{CoreError, PartyId, Presence};

/// P-12: a named presence matches by session id; its user id and username must agree.
fn check_presence(named: &Presence, actual: &Presence) -> Result<(), CoreError> {
    if named.user_id != actual.user_id || named.username != actual.username {
        return Err(CoreError::PartyPresenceMismatch);
    }
    Ok(())
}

/// The position of the presence a request names in `list`, matched by session id (P-12), with
/// its user id and username checked.
pub(super) fn find_named<'a>(
    list: impl IntoIterator<Item = &'a Presence>,
    named: &Presence,
) -> Result<usize, CoreError> {
    let (i, found) = list
        .into_iter()
        .enumerate()
        .find(|(_, p)| p.session_id == named.session_id)
        .ok_or(CoreError::PartyPresenceNotFound)?;
    check_presence(named, found)?;
    Ok(i)
}

impl Parties {
    /// P-2 for a closed party that is not full (`join` checked both): the request queues and
    /// the leader hears of it.
    pub(super) fn ask_to_join(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        if party.members.iter().any(|m| m.user_id == me.user_id) {
            return Err(CoreError::PartyAlreadyMember);
        }
        if party.pending.iter().any(|p| p.user_id == me.user_id) {
            return Err(CoreError::PartyJoinRequestDuplicate);
        }
        if party.pending.len() >= usize::from(party.max_size) {
            return Err(CoreError::PartyJoinRequestsFull);
        }
        self.table.check_room_for_one_more(ctx.limits, me.session_id)?;

        let party = self.table.add_request(party_id, me.clone());
        send(&mut ctx.events, [party.leader], PartyEvent::JoinRequest { party_id, presences: vec![me.clone()] });
        done(PartyReply::JoinPending { party_id })
    }

    /// P-3, leader only: the pending list, oldest first.
    pub(super) fn join_requests(&self, me: &Presence, party_id: PartyId) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        let presences = party.pending.iter().cloned().collect();
        done(PartyReply::JoinRequests { party_id, presences })
    }

    /// P-3, leader only: a pending request becomes a membership. The new member learns the
    /// roster from its snapshot; the others from a presence event.
    ///
    /// L-1: with one party per user, a request from a user who meanwhile joined another party
    /// is stale: the accept fails with `already in party` and drops the request. This is the one
    /// refusal that changes a table (the queue; nobody's snapshot), and it tells nobody but the
    /// leader: a refused request queues no event, and the requester, now a member elsewhere,
    /// learned everything from that party.
    pub(super) fn accept(&mut self, me: &Presence, party_id: PartyId, named: &Presence, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        let i = find_named(&party.pending, named)?;
        if ctx.limits.one_party_per_user && self.user_party(&named.user_id, ctx.sessions).is_some() {
            self.table.remove_request(party_id, i);
            return Err(CoreError::PartyAlreadyInParty);
        }
        if party.is_full() {
            return Err(CoreError::PartyFull); // the request stays queued
        }

        // The slot moves from requested to member: the session's count is unchanged.
        let joiner = self.table.remove_request(party_id, i);
        let party = self.table.add_member(party_id, joiner.clone());
        send(&mut ctx.events, [joiner.session_id], PartyEvent::Joined(Box::new(party.snapshot())));
        let joiner_session = joiner.session_id;
        let others = party.member_sessions().filter(|s| *s != joiner_session);
        let joins = PartyEvent::Presence { party_id, joins: vec![joiner], leaves: Vec::new(), version: party.version };
        send(&mut ctx.events, others, joins);
        done(PartyReply::Ok { party_id })
    }

    /// P-3, leader only: a pending request is turned down (`Remove` naming a requester; the
    /// leader's checks were made by `remove`).
    pub(super) fn reject(&mut self, party_id: PartyId, named: &Presence, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        let i = find_named(&party.pending, named)?;
        let rejected = self.table.remove_request(party_id, i);
        // A pending request is not in the snapshot: the version stays, and tells the requester
        // which version it was turned down at.
        let version = self.table.get(party_id).map_or(0, |party| party.version);
        let removed = PartyEvent::Removed { party_id, reason: RemovedReason::Rejected, version };
        send(&mut ctx.events, [rejected.session_id], removed);
        done(PartyReply::Ok { party_id })
    }
}
