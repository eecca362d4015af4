//! Who may come in (SPEC L-4): the friend- and block-based rules every way into a party asks,
//! over the social table (`core::social`, written through the admin API and read through
//! [`Ctx::social`]).
//!
//! - **Blocks** are two-way and gate every way in (plain join, join request, invitation accept,
//!   code join, and a leader's accept of a join request): a user the party's leader blocked, or
//!   who blocked the leader, is refused with `PartyJoinBlocked`. Other members' blocks do not
//!   gate joins. An invite is refused when the invitee and the leader, or the invitee and the
//!   inviter, blocked each other (either way): `InviteeBlocked`, naming it.
//! - **The join strategy** gates plain joins and join requests of users without an invitation:
//!   `FriendsOfLeader` wants the user in the leader's friend list, `FriendsOfMembers` in any
//!   member's, `InvitedOnly` an invitation. Invitations and codes bypass it (but not blocks and
//!   not `NotAllowed`, which the callers check first).
//!
//! Cost on the open-join path: a `Public` party asks the blocks alone, two lookups (none while
//! the social table is empty); the friend strategies add one lookup (the leader's list) or one
//! per member.

use super::lobby::JoinStrategy;
use super::table::Party;
use crate::core::context::Ctx;
use crate::core::{CoreError, UserId};

/// L-4: refuses `user` when it and the party's leader blocked each other (either way).
pub(super) fn check_not_blocked(party: &Party, user: &UserId, ctx: &Ctx) -> Result<(), CoreError> {
    // Nobody has a list yet: not even the leader's presence is looked up.
    if ctx.social.is_empty() {
        return Ok(());
    }
    if ctx.social.blocked_either_way(&party.leader_presence().user_id, user) {
        return Err(CoreError::PartyJoinBlocked);
    }
    Ok(())
}

/// L-4: the join strategy for a plain join or join request of `user`, who has no invitation.
/// `NotAllowed` is the callers' to check first (it refuses invited users too).
pub(super) fn check_join_strategy(party: &Party, user: &UserId, ctx: &Ctx) -> Result<(), CoreError> {
    match party.lobby.join_strategy {
        JoinStrategy::Public => Ok(()),
        JoinStrategy::FriendsOfLeader => {
            if ctx.social.is_friend_of(user, &party.leader_presence().user_id) {
                Ok(())
            } else {
                Err(CoreError::PartyNotFriendOfLeader)
            }
        }
        JoinStrategy::FriendsOfMembers => {
            if party.members.iter().any(|member| ctx.social.is_friend_of(user, &member.user_id)) {
                Ok(())
            } else {
                Err(CoreError::PartyNotFriendOfMembers)
            }
        }
        JoinStrategy::InvitedOnly => Err(CoreError::PartyNotInvited),
        JoinStrategy::NotAllowed => {
            debug_assert!(false, "NotAllowed is checked before the join strategy");
            Err(CoreError::PartyJoinNotAllowed)
        }
    }
}

/// L-4: refuses inviting `invitee` when it and the leader, or it and the inviter, blocked each
/// other (either way).
pub(super) fn check_invitee_not_blocked(
    party: &Party,
    inviter: &UserId,
    invitee: &UserId,
    ctx: &Ctx,
) -> Result<(), CoreError> {
    let social = ctx.social;
    if social.blocked_either_way(&party.leader_presence().user_id, invitee)
        || social.blocked_either_way(inviter, invitee)
    {
        return Err(CoreError::InviteeBlocked(invitee.clone()));
    }
    Ok(())
}
