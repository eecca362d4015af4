//! The lobby extensions' vocabulary (SPEC §5, from AccelByte Lobby and PGOS): the settings a
//! party gains (L-4 strategies; Lobby II adds name and chat here), the requests, replies and
//! events of invitations (L-2) and codes (L-3), the snapshot event (L-9), and the dispatch of a
//! lobby request to its rule (`invites.rs`, `codes.rs`).
//!
//! Every [`LobbyEvent`] is huddle-only: a codec speaking another protocol (Nakama's JSON) has no
//! message for them and sends nothing, so it can match `Event::Lobby(_)` once. What the lobby
//! changes in Nakama's own vocabulary (a member moved out by L-1, strategies refusing a join)
//! travels as the usual party events and errors.

use super::{Outcome, Parties, PartySnapshot, PartySummary};
use crate::core::context::Ctx;
use crate::core::{PartyCode, PartyId, Presence, Reply, UnixMillis, UserId};

/// Who may join without an invitation or a code (SPEC L-4, PGOS's join strategies).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum JoinStrategy {
    /// Anyone; open/closed then decides between member-at-once and a join request.
    #[default]
    Public,
    /// Friends of the leader. Stored and reported; until Lobby II brings friend lists it admits
    /// like `Public`.
    FriendsOfLeader,
    /// Friends of any member; as `FriendsOfLeader`, `Public` until Lobby II.
    FriendsOfMembers,
    /// Only users with a pending invitation (and code joins).
    InvitedOnly,
    /// Nobody: joins, join requests, code joins and invitations are refused.
    NotAllowed,
}

/// Who may invite (SPEC L-4).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum InviteStrategy {
    #[default]
    AllMembers,
    LeaderOnly,
}

/// The settings the lobby extensions add to a party, as create sets them, update changes them
/// and every snapshot shows them. Lobby II adds its own (name, chat) here, so create, update,
/// snapshots and summaries carry them without new parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LobbySettings {
    pub join_strategy: JoinStrategy,
    pub invite_strategy: InviteStrategy,
}

/// An update's lobby fields: `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LobbySettingsPatch {
    pub join_strategy: Option<JoinStrategy>,
    pub invite_strategy: Option<InviteStrategy>,
}

impl LobbySettingsPatch {
    /// The settings after this patch.
    pub fn apply(&self, current: &LobbySettings) -> LobbySettings {
        LobbySettings {
            join_strategy: self.join_strategy.unwrap_or(current.join_strategy),
            invite_strategy: self.invite_strategy.unwrap_or(current.invite_strategy),
        }
    }
}

/// A decoded lobby request (`Request::Lobby`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LobbyRequest {
    /// L-2, a member (the leader alone under `leader_only`): invite these users, all or nothing.
    Invite { party_id: PartyId, user_ids: Vec<UserId> },
    /// L-2, the member who sent the invitation (any session of that user) or the leader.
    CancelInvitation { party_id: PartyId, user_id: UserId },
    /// L-2, the invitee (any session): join. Reply: the snapshot.
    AcceptInvitation { party_id: PartyId },
    /// L-2, the invitee (any session).
    RejectInvitation { party_id: PartyId },
    /// L-2: the calling user's pending invitations.
    Invitations,
    /// L-3, leader only.
    CodeGet { party_id: PartyId },
    /// L-3, leader only: a new code; the old one is dead at once.
    CodeRegenerate { party_id: PartyId },
    /// L-3: join the party with this code, as an accepted invitation would. The text as the
    /// client sent it (bounded by the wire); the rule parses it, so a malformed code is a miss.
    JoinByCode { code: String },
}

/// A pending invitation as its invitee sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyInvitation {
    pub party: PartySummary,
    /// The member who sent it (the last one, when several invited the same user).
    pub inviter: Presence,
    pub expires_at: UnixMillis,
}

/// The successful result of a lobby request that is not a party reply (accept and code join
/// reply with the snapshot, `PartyReply::Info`; invite, cancel and reject with `PartyReply::Ok`).
#[derive(Clone, Debug, PartialEq)]
pub enum LobbyReply {
    /// The caller's pending invitations, in the order they were first sent.
    Invitations(Vec<PartyInvitation>),
    /// The party's code (get and regenerate).
    Code { party_id: PartyId, code: PartyCode },
}

/// How a pending invitation ended (SPEC L-2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvitationEndReason {
    /// A session of the invitee joined the party (accept, plain join, code join, accepted
    /// request).
    Accepted,
    Rejected,
    /// The inviter or the leader cancelled it.
    Cancelled,
    Expired,
    /// The party ended.
    PartyGone,
}

/// Lobby events; all huddle-only (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum LobbyEvent {
    /// To the invitee's sessions: a new or refreshed invitation. Boxed, like the snapshot
    /// below: every event travels in the outbox's `Output`, and the party-data path moves those
    /// by value, so the largest variant sets the cost of every event.
    Invited(Box<PartyInvitation>),
    /// To the members: `inviter` invited `invitee` (again, on a refresh).
    InvitationSent { party_id: PartyId, invitee: UserId, inviter: Presence, expires_at: UnixMillis },
    /// To the members: the invitee rejected the invitation.
    InvitationRejected { party_id: PartyId, invitee: UserId },
    /// An invitation ended; see [`InvitationEndReason`] and the README for who hears it.
    InvitationEnded { party_id: PartyId, invitee: UserId, reason: InvitationEndReason },
    /// L-9, to member sessions that connected with `?snapshots=true`: the whole party after the
    /// delta events of a change.
    Snapshot(Box<PartySnapshot>),
}

impl Parties {
    /// One lobby request of `me`: the rule's reply, its events on `ctx.events`, then the commit.
    pub fn handle_lobby(&mut self, me: &Presence, request: LobbyRequest, ctx: &mut Ctx) -> Outcome {
        let result = match request {
            LobbyRequest::Invite { party_id, user_ids } => self.invite(me, party_id, user_ids, ctx),
            LobbyRequest::CancelInvitation { party_id, user_id } => self.cancel_invitation(me, party_id, &user_id, ctx),
            LobbyRequest::AcceptInvitation { party_id } => self.accept_invitation(me, party_id, ctx),
            LobbyRequest::RejectInvitation { party_id } => self.reject_invitation(me, party_id, ctx),
            LobbyRequest::Invitations => Ok(Reply::Lobby(LobbyReply::Invitations(self.invitations_of(&me.user_id)))),
            LobbyRequest::CodeGet { party_id } => self.code_get(me, party_id),
            LobbyRequest::CodeRegenerate { party_id } => self.code_regenerate(me, party_id, ctx),
            LobbyRequest::JoinByCode { code } => self.join_by_code(me, &code, ctx),
        };
        self.finish(result.is_ok(), ctx);
        result
    }
}
