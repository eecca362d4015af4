//! Invitations (SPEC L-2): invite, refresh, cancel, accept (with L-1's move), reject, list,
//! expiry through the core's timers, and delivery to sessions that connect while one is pending.
//!
//! An invitation belongs to a party and an invitee *user* (not a session): one pending per
//! (party, user), told to every session of the user, accepted or rejected from any of them.
//! It lives in its party (`Party::invitations`, first-sent order) and under its invitee
//! (`PartyTable::invited`), each with an armed expiry timer; every way it ends disarms the timer,
//! so a timer that fires always finds its invitation. Joining the party by any path consumes it,
//! and the party's end takes it along: both through the change list (`changes.rs`).
//!
//! Who hears what:
//! - invite (or refresh): `PartyInvitationSent` to every member session, then `PartyInvited` to
//!   every session of the invitee, per invitee in request order;
//! - accept: the usual `joins` to the other members; `accepted` to the invitee's other sessions;
//! - reject: `PartyInvitationRejected` to the members; `rejected` to the invitee's other sessions;
//! - cancel, expiry: `PartyInvitationEnded` to the invitee's sessions and the members;
//! - the party's end: `party_gone` to the invitee's sessions.

use super::lobby::{InvitationEndReason, InviteStrategy, JoinStrategy, LobbyEvent, PartyInvitation};
use super::table::{Invitation, Party};
use super::{done, Outcome, Parties, PartyReply, RemovedReason};
use crate::core::context::Ctx;
use crate::core::{CoreError, Event, PartyId, Presence, Timeout, UnixMillis, UserId};

/// An invitee id as an error names it: a malformed one may be huge or empty.
fn shown(id: &str) -> String {
    const SHOWN_BYTES_MAX: usize = 40;
    if id.len() <= SHOWN_BYTES_MAX {
        return id.to_owned();
    }
    let mut end = SHOWN_BYTES_MAX;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &id[..end])
}

impl Parties {
    /// L-2: `me` (a member; the leader alone under `leader_only`) invites `user_ids`, all or
    /// nothing. Checks, in the order a client can fix them: the party (201, 204), its
    /// strategies (241, 203), the list's size (200 when empty, 300 over
    /// `invitees_per_request_max`), each invitee (244 malformed, 243 yourself, 245 already in
    /// the party; the first bad one is named), then the bounds (300 over
    /// `invitations_per_party_max`, or over `invitations_per_user_max` for an invitee, named).
    /// A user named twice is invited once. An invitee already invited is refreshed: new expiry,
    /// `me` its inviter, announced again.
    pub(super) fn invite(&mut self, me: &Presence, party_id: PartyId, user_ids: Vec<UserId>, ctx: &mut Ctx) -> Outcome {
        let limits = ctx.limits;
        let party = self.table.find_as_member(party_id, me.session_id)?;
        if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            return Err(CoreError::PartyJoinNotAllowed);
        }
        if party.lobby.invite_strategy == InviteStrategy::LeaderOnly && party.leader != me.session_id {
            return Err(CoreError::PartyNotLeader);
        }
        if user_ids.is_empty() {
            return Err(CoreError::BadInput("user_ids must name at least one user to invite".into()));
        }
        if user_ids.len() > limits.invitees_per_request_max {
            return Err(CoreError::LimitExceeded(format!(
                "{} invitees in one request; invitees_per_request_max is {}",
                user_ids.len(),
                limits.invitees_per_request_max
            )));
        }
        let mut invitees: Vec<UserId> = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let id = user_id.as_str();
            if id.is_empty() || id.len() > UserId::BYTES_MAX {
                return Err(CoreError::InviteeInvalid(shown(id)));
            }
            if user_id == me.user_id {
                return Err(CoreError::InviteeIsSelf);
            }
            if party.has_member_user(&user_id) {
                return Err(CoreError::InviteeInParty(user_id));
            }
            if !invitees.contains(&user_id) {
                invitees.push(user_id);
            }
        }
        let new: Vec<&UserId> = invitees.iter().filter(|u| party.invitation_index(u).is_none()).collect();
        if party.invitations.len() + new.len() > limits.invitations_per_party_max {
            return Err(CoreError::LimitExceeded(format!(
                "the party has {} pending invitations and this request adds {}; invitations_per_party_max is {}",
                party.invitations.len(),
                new.len(),
                limits.invitations_per_party_max
            )));
        }
        if let Some(full) = new.iter().find(|u| self.table.invited(u).len() >= limits.invitations_per_user_max) {
            return Err(CoreError::LimitExceeded(format!(
                "invitee {:?} has invitations_per_user_max {} pending invitations",
                full.as_str(),
                limits.invitations_per_user_max
            )));
        }

        let expires_at = UnixMillis(ctx.now.wall.0.saturating_add(limits.invitation_ttl_ms));
        let deadline = ctx.now.mono.saturating_add(limits.invitation_ttl_ms);
        for invitee in invitees {
            let timer = ctx.timers.arm(deadline, Timeout::InvitationExpiry { party_id, invitee: invitee.clone() });
            let pending = self.table.get(party_id).and_then(|party| party.invitation_index(&invitee));
            match pending {
                Some(i) => {
                    let old = self.table.refresh_invitation(party_id, i, me.clone(), expires_at, timer);
                    let disarmed = ctx.timers.cancel(old);
                    debug_assert!(disarmed.is_some(), "the expiry timer of a pending invitation is armed");
                }
                None => {
                    let invitation = Invitation { invitee: invitee.clone(), inviter: me.clone(), expires_at, timer };
                    self.table.add_invitation(party_id, invitation);
                }
            }
            let party = self.table.get(party_id).expect("Invariant: validated above; inviting changes no member");
            let sent =
                LobbyEvent::InvitationSent { party_id, invitee: invitee.clone(), inviter: me.clone(), expires_at };
            ctx.events.send(party.member_sessions(), Event::Lobby(sent));
            let invitation = PartyInvitation { party: party.summary(), inviter: me.clone(), expires_at };
            ctx.events.send(
                ctx.sessions.sessions_of(&invitee).iter().copied(),
                Event::Lobby(LobbyEvent::Invited(Box::new(invitation))),
            );
        }
        done(PartyReply::Ok { party_id })
    }

    /// L-2: the inviter (any member session of the user who sent it last) or the leader cancels
    /// the invitation of `user_id`: 201, 204, 246 (none pending), 248 (anyone else).
    pub(super) fn cancel_invitation(
        &mut self,
        me: &Presence,
        party_id: PartyId,
        user_id: &UserId,
        ctx: &mut Ctx,
    ) -> Outcome {
        let party = self.table.find_as_member(party_id, me.session_id)?;
        let i = party.invitation_index(user_id).ok_or(CoreError::InvitationNotFound)?;
        if party.leader != me.session_id && party.invitations[i].inviter.user_id != me.user_id {
            return Err(CoreError::InvitationCancelNotAllowed);
        }
        let invitation = self.table.remove_invitation(party_id, i);
        let disarmed = ctx.timers.cancel(invitation.timer);
        debug_assert!(disarmed.is_some(), "the expiry timer of a pending invitation is armed");
        self.announce_end(party_id, invitation.invitee, InvitationEndReason::Cancelled, ctx);
        done(PartyReply::Ok { party_id })
    }

    /// L-2: the invitation's timer fired. The invitation is there (every other end disarms the
    /// timer); the invitee's sessions and the members are told it expired.
    pub(crate) fn expire_invitation(&mut self, party_id: PartyId, invitee: &UserId, ctx: &mut Ctx) {
        let Some(i) = self.table.get(party_id).and_then(|party| party.invitation_index(invitee)) else {
            debug_assert!(false, "the expiry of {invitee:?} to {party_id} fired without its invitation");
            return;
        };
        let invitation = self.table.remove_invitation(party_id, i);
        self.invitations_expired_total += 1;
        self.announce_end(party_id, invitation.invitee, InvitationEndReason::Expired, ctx);
        // Nothing a member sees changed: the commit finds no change (every entry point ends with
        // one all the same, so nothing recorded can be left behind).
        self.commit(ctx);
    }

    /// `PartyInvitationEnded` to the invitee's sessions and the party's members (cancel, expiry).
    fn announce_end(&mut self, party_id: PartyId, invitee: UserId, reason: InvitationEndReason, ctx: &mut Ctx) {
        let members = self.table.get(party_id).map(Party::member_sessions).into_iter().flatten();
        let recipients = ctx.sessions.sessions_of(&invitee).iter().copied().chain(members);
        ctx.events.send(recipients, Event::Lobby(LobbyEvent::InvitationEnded { party_id, invitee, reason }));
    }

    /// L-2: a session of the invitee accepts: it joins the party, closed or invited-only, if
    /// not full (201, 246 none pending, 241 `not_allowed`, 202, 210). With one party per user,
    /// the user's session in another party is moved out first (`PartyRemoved{moved}` to it, the
    /// usual leave events there). Reply: the snapshot.
    pub(super) fn accept_invitation(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        party.invitation_index(&me.user_id).ok_or(CoreError::InvitationNotFound)?;
        if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            return Err(CoreError::PartyJoinNotAllowed);
        }
        if party.is_full() {
            return Err(CoreError::PartyFull);
        }
        // Invariant: an invitation is never pending for a user with a member session here.
        debug_assert!(!party.is_member(me.session_id), "{} invited to {party_id}, its own party", me.user_id.as_str());
        let moving = if ctx.limits.one_party_per_user { self.user_party(&me.user_id, ctx.sessions) } else { None };
        // A session moved out of its party frees that party's slot for this one.
        let frees_a_slot = moving.is_some_and(|(session, _)| session == me.session_id);
        if !frees_a_slot {
            self.check_room(party, me.session_id, ctx)?;
        }

        if let Some((session, old_party)) = moving {
            self.remove_member(old_party, session, Some(RemovedReason::Moved), &mut ctx.events);
        }
        done(PartyReply::Info(Box::new(self.admit(me, party_id, ctx))))
    }

    /// L-2: a session of the invitee rejects (201, 246): the members hear it, and so do the
    /// invitee's other sessions (`rejected`).
    pub(super) fn reject_invitation(&mut self, me: &Presence, party_id: PartyId, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find(party_id)?;
        let i = party.invitation_index(&me.user_id).ok_or(CoreError::InvitationNotFound)?;
        let invitation = self.table.remove_invitation(party_id, i);
        let disarmed = ctx.timers.cancel(invitation.timer);
        debug_assert!(disarmed.is_some(), "the expiry timer of a pending invitation is armed");
        let invitee = invitation.invitee;
        let party = self.table.get(party_id).expect("Invariant: rejecting changes no member");
        let rejected = LobbyEvent::InvitationRejected { party_id, invitee: invitee.clone() };
        ctx.events.send(party.member_sessions(), Event::Lobby(rejected));
        let others = ctx.sessions.sessions_of(&invitee).iter().copied().filter(|s| *s != me.session_id);
        let ended =
            LobbyEvent::InvitationEnded { party_id, invitee: invitee.clone(), reason: InvitationEndReason::Rejected };
        ctx.events.send(others, Event::Lobby(ended));
        done(PartyReply::Ok { party_id })
    }

    /// L-2: the pending invitations of `user_id`, in the order first sent.
    pub(crate) fn invitations_of(&self, user_id: &UserId) -> Vec<PartyInvitation> {
        self.table
            .invited(user_id)
            .iter()
            .filter_map(|id| {
                let party = self.table.get(*id)?;
                let invitation = &party.invitations[party.invitation_index(user_id)?];
                Some(PartyInvitation {
                    party: party.summary(),
                    inviter: invitation.inviter.clone(),
                    expires_at: invitation.expires_at,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_malformed_invitee_is_shown_short_and_on_a_char_boundary() {
        assert_eq!(shown(""), "");
        assert_eq!(shown("alice"), "alice");
        let long = "é".repeat(100);
        let short = shown(&long);
        assert!(short.ends_with('…') && short.len() <= 40 + '…'.len_utf8(), "{short}");
    }
}
