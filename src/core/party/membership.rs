//! Who is in a party: P-2 join (with L-4's join strategies and L-1), P-4 kick, P-5 leave, P-6
//! leader rotation and the end of an emptied party, P-7 promote, P-8 close, P-11 get and "my
//! parties", C-6 (a disconnected session leaves everything), and the one way in that open joins,
//! invitations and codes share ([`Parties::admit`]).

use super::changes::EndReason;
use super::lobby::JoinStrategy;
use super::requests::find_named;
use super::table::Party;
use super::{done, send, Outcome, Parties, PartyEvent, PartyReply, RemovedReason};
use crate::core::context::Ctx;
use crate::core::outbox::Events;
use crate::core::{CoreError, PartyId, Presence, SessionId};

impl Parties {
    /// P-2 with L-4 and L-1. A member asking again gets the snapshot (a no-op). Otherwise: a
    /// `not_allowed` party refuses (241); with one party per user, a user in a party is refused
    /// (240); a full party refuses (202). An invited user joins at once, whatever the party's
    /// open flag and join strategy (L-2: PGOS clients accept by joining). Without an invitation,
    /// `invited_only` refuses (242), a closed party queues a request (`requests.rs`) and an open
    /// one takes the session at once, even if it had asked while the party was closed.
    pub(super) fn join(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        if party.is_member(me.session_id) {
            return done(PartyReply::Info(Box::new(party.snapshot())));
        }
        if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            return Err(CoreError::PartyJoinNotAllowed);
        }
        self.check_not_in_party(me, ctx)?;
        if party.is_full() {
            return Err(CoreError::PartyFull);
        }
        let invited = party.invitation_index(&me.user_id).is_some();
        if !invited {
            if party.lobby.join_strategy == JoinStrategy::InvitedOnly {
                return Err(CoreError::PartyNotInvited);
            }
            if !party.open {
                return self.ask_to_join(me, party_id, ctx);
            }
        }
        self.check_room(party, me.session_id, ctx)?;
        done(PartyReply::Info(Box::new(self.admit(me, party_id, ctx))))
    }

    /// `parties_per_session_max` for a session about to become a member of `party`: a session
    /// that asked to join it already holds a counted slot.
    pub(super) fn check_room(&self, party: &Party, session: SessionId, ctx: &Ctx) -> Result<(), CoreError> {
        if party.pending_index(session).is_some() {
            return Ok(());
        }
        self.table.check_room_for_one_more(ctx.limits, session)
    }

    /// The one way in for open joins, invitations and codes, once every check passed: the
    /// session becomes a member (its pending request here, if any, turns into the membership;
    /// its user's invitation here, if any, is consumed by the table and ended by the commit),
    /// the other members get `joins`; the joiner's snapshot is the reply.
    pub(super) fn admit(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> super::PartySnapshot {
        if let Some(i) = self.table.get(party_id).and_then(|party| party.pending_index(me.session_id)) {
            self.table.remove_request(party_id, i);
        }
        let party = self.table.add_member(party_id, me.clone());
        let joins =
            PartyEvent::Presence { party_id, joins: vec![me.clone()], leaves: Vec::new(), version: party.version };
        send(&mut ctx.events, party.member_sessions().filter(|s| *s != me.session_id), joins);
        party.snapshot()
    }

    /// P-4 (kick a member) and P-3 (reject a pending request), leader only. Members are
    /// matched first, then pending requests.
    pub(super) fn remove(&mut self, me: &Presence, party_id: PartyId, named: &Presence, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        if named.session_id == me.session_id {
            return Err(CoreError::PartyCannotRemoveSelf);
        }
        let i = match find_named(&party.members, named) {
            Ok(i) => i,
            Err(CoreError::PartyPresenceNotFound) => return self.reject(party_id, named, ctx),
            Err(mismatch) => return Err(mismatch),
        };
        // The leader stays (it cannot remove itself), so the party keeps a member and a leader.
        let kicked = self.table.remove_member(party_id, i);
        let party = self.table.get(party_id).expect("Invariant: the leader stays, so the party does");
        let version = party.version;
        send(
            &mut ctx.events,
            [kicked.session_id],
            PartyEvent::Removed { party_id, reason: RemovedReason::Kicked, version },
        );
        send(
            &mut ctx.events,
            party.member_sessions(),
            PartyEvent::Presence { party_id, joins: Vec::new(), leaves: vec![kicked], version },
        );
        done(PartyReply::Ok { party_id })
    }

    /// P-5. Not a member: a no-op success; a pending request of the session is withdrawn.
    pub(super) fn leave(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        if party.is_member(me.session_id) {
            self.remove_member(party_id, me.session_id, None, &mut ctx.events);
        } else if party.pending_index(me.session_id).is_some() {
            self.table.withdraw_request(party_id, me.session_id);
        }
        done(PartyReply::Ok { party_id })
    }

    /// C-6: the session leaves every party it is in (in the order it joined them) and its
    /// pending join requests vanish silently.
    pub(super) fn leave_everything(&mut self, session: SessionId, ctx: &mut Ctx) {
        let Some(entry) = self.table.parties_of(session) else { return };
        let requested = entry.requested.clone();
        let member_of = entry.member_of.clone();
        for party_id in requested {
            self.table.withdraw_request(party_id, session);
        }
        for party_id in member_of {
            self.remove_member(party_id, session, None, &mut ctx.events);
        }
        debug_assert!(self.table.parties_of(session).is_none(), "disconnect left {session} indexed");
    }

    /// A member goes (leave, disconnect, or a move: L-1): P-5, P-6. Events: `told` to the
    /// leaving session when it is told why (a move), then the leader change (if the leader
    /// went), then `leaves`, then the pending list to the new leader; or, for the last member,
    /// the party's end to its pending requesters.
    pub(super) fn remove_member(
        &mut self,
        party_id: PartyId,
        session: SessionId,
        told: Option<RemovedReason>,
        events: &mut Events,
    ) {
        let Some(i) = self.table.get(party_id).and_then(|party| party.member_index(session)) else {
            debug_assert!(false, "{session} indexed as a member of {party_id} but not in it");
            return;
        };
        let gone = self.table.remove_member(party_id, i);
        let Some(party) = self.table.get(party_id).filter(|party| !party.members.is_empty()) else {
            // Last member gone = party gone (P-6); requesters would otherwise wait forever.
            let party = self.table.dissolve(party_id, EndReason::Emptied);
            let version = party.version;
            if let Some(reason) = told {
                send(events, [session], PartyEvent::Removed { party_id, reason, version });
            }
            let requesters = party.pending.iter().map(|p| p.session_id);
            send(events, requesters, PartyEvent::Removed { party_id, reason: RemovedReason::Closed, version });
            return;
        };
        if let Some(reason) = told {
            send(events, [session], PartyEvent::Removed { party_id, reason, version: party.version });
        }
        let leader_left = party.leader == session;
        let party = if leader_left {
            // Longest tenure = earliest in join order.
            let leader = party.members[0].clone();
            let party = self.table.set_leader(party_id, leader.session_id);
            send(events, party.member_sessions(), PartyEvent::Leader { party_id, leader, version: party.version });
            party
        } else {
            party
        };
        let leaves = PartyEvent::Presence { party_id, joins: Vec::new(), leaves: vec![gone], version: party.version };
        send(events, party.member_sessions(), leaves);
        if leader_left {
            send_pending_to_leader(party, events);
        }
    }

    /// P-7, leader only. Promoting the current leader is a no-op success without an event.
    pub(super) fn promote(&mut self, me: &Presence, party_id: PartyId, named: &Presence, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        let i = find_named(&party.members, named)?;
        if named.session_id == me.session_id {
            return done(PartyReply::Ok { party_id });
        }
        let leader = party.members[i].clone();
        let party = self.table.set_leader(party_id, leader.session_id);
        let version = party.version;
        send(&mut ctx.events, party.member_sessions(), PartyEvent::Leader { party_id, leader, version });
        // The new leader decides on join requests from now on, so it needs the queue.
        send_pending_to_leader(party, &mut ctx.events);
        done(PartyReply::Ok { party_id })
    }

    /// P-8, leader only: every member and every pending requester is told `closed`; the party
    /// is gone.
    pub(super) fn close(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        self.table.find_as_leader(party_id, me.session_id)?;
        let party = self.table.dissolve(party_id, EndReason::Closed);
        let everyone = party.member_sessions().chain(party.pending.iter().map(|p| p.session_id));
        let version = party.version;
        send(&mut ctx.events, everyone, PartyEvent::Removed { party_id, reason: RemovedReason::Closed, version });
        done(PartyReply::Ok { party_id })
    }

    /// P-11, members only.
    pub(super) fn get(&self, me: &Presence, party_id: PartyId) -> Outcome {
        let party = self.table.find_as_member(party_id, me.session_id)?;
        done(PartyReply::Info(Box::new(party.snapshot())))
    }

    /// P-11: the session's parties in the order it joined them.
    pub(super) fn my_parties(&self, me: &Presence) -> PartyReply {
        let parties = self.table.parties_of(me.session_id).map_or(Vec::new(), |entry| {
            // Invariant: the session index names only live parties (check_invariants).
            entry.member_of.iter().map(|id| self.table.get(*id).expect("indexed party exists").summary()).collect()
        });
        PartyReply::MyParties(parties)
    }
}

/// A leader (by rotation or promotion) decides on join requests from now on: send it the
/// whole pending list, if there is one.
pub(super) fn send_pending_to_leader(party: &super::table::Party, events: &mut Events) {
    if !party.pending.is_empty() {
        let presences = party.pending.iter().cloned().collect();
        send(events, [party.leader], PartyEvent::JoinRequest { party_id: party.id, presences });
    }
}
