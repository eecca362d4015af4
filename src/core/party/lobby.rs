//! The lobby extensions' vocabulary (SPEC §5, from AccelByte Lobby and PGOS): the settings a
//! party gains (L-4 strategies, L-6 the chat flag, L-7 the name), what a snapshot adds (L-5
//! custom data, L-8 attributes), the requests, replies and events of invitations (L-2), codes
//! (L-3), custom data (L-5) and chat (L-6), the attributes and snapshot events (L-8, L-9), and
//! the dispatch of a lobby request to its rule (`invites.rs`, `codes.rs`, `custom.rs`,
//! `chat.rs`).
//!
//! Every [`LobbyEvent`] is huddle-only: a codec speaking another protocol (Nakama's JSON) has no
//! message for them and sends nothing, so it can match `Event::Lobby(_)` once. What the lobby
//! changes in Nakama's own vocabulary (a member moved out by L-1, strategies refusing a join)
//! travels as the usual party events and errors.

use super::{Outcome, Parties, PartySnapshot, PartySummary};
use crate::core::context::Ctx;
use crate::core::{PartyCode, PartyId, Presence, Reply, SessionId, UnixMillis, UserId};
use bytes::Bytes;
use std::sync::Arc;

/// Who may join without an invitation or a code (SPEC L-4, PGOS's join strategies).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum JoinStrategy {
    /// Anyone; open/closed then decides between member-at-once and a join request.
    #[default]
    Public,
    /// Users in the leader's friend list (the social table, written through the admin API).
    FriendsOfLeader,
    /// Users in the friend list of any member.
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

impl JoinStrategy {
    /// SPEC L-4's name, as the admin API's JSON shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinStrategy::Public => "public",
            JoinStrategy::FriendsOfLeader => "friends_of_leader",
            JoinStrategy::FriendsOfMembers => "friends_of_members",
            JoinStrategy::InvitedOnly => "invited_only",
            JoinStrategy::NotAllowed => "not_allowed",
        }
    }
}

impl InviteStrategy {
    /// SPEC L-4's name, as the admin API's JSON shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            InviteStrategy::AllMembers => "all_members",
            InviteStrategy::LeaderOnly => "leader_only",
        }
    }
}

/// The settings the lobby extensions add to a party, as create sets them, update changes them
/// and every snapshot, summary and update event shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LobbySettings {
    pub join_strategy: JoinStrategy,
    pub invite_strategy: InviteStrategy,
    /// L-7: "" for none; at most `party_name_bytes_max` bytes, not unique, checked against the
    /// deny-list when set.
    pub name: String,
    /// L-6: whether members may chat (off by default, as in PGOS).
    pub chat_enabled: bool,
}

/// An update's lobby fields: `None` keeps the current value (`Some("")` clears the name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LobbySettingsPatch {
    pub join_strategy: Option<JoinStrategy>,
    pub invite_strategy: Option<InviteStrategy>,
    pub name: Option<String>,
    pub chat_enabled: Option<bool>,
}

impl LobbySettingsPatch {
    /// The settings after this patch.
    pub fn apply(self, current: &LobbySettings) -> LobbySettings {
        LobbySettings {
            join_strategy: self.join_strategy.unwrap_or(current.join_strategy),
            invite_strategy: self.invite_strategy.unwrap_or(current.invite_strategy),
            name: self.name.unwrap_or_else(|| current.name.clone()),
            chat_enabled: self.chat_enabled.unwrap_or(current.chat_enabled),
        }
    }
}

/// What a member snapshot shows beside the settings (L-5, L-8): it changes through its own
/// requests (custom data) and the admin API (attributes), never through an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LobbyData {
    /// L-5: the global custom data, "" until written.
    pub custom_data: String,
    /// L-5: the members' own custom data, for the members that wrote any (not ""), in join
    /// order: (member session, value).
    pub member_custom_data: Vec<(SessionId, String)>,
    /// L-8: a JSON object (compact, keys sorted), "{}" until written.
    pub attributes: String,
    /// L-8: the timestamp of the write that set `attributes` (0 until written).
    pub attributes_timestamp: UnixMillis,
}

impl Default for LobbyData {
    fn default() -> LobbyData {
        LobbyData {
            custom_data: String::new(),
            member_custom_data: Vec::new(),
            attributes: ATTRIBUTES_NONE.to_owned(),
            attributes_timestamp: UnixMillis(0),
        }
    }
}

/// A party's attributes before the first write (L-8): an empty object, so clients always parse
/// a JSON object.
pub const ATTRIBUTES_NONE: &str = "{}";

/// Which custom data string a request writes (L-5).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CustomDataScope {
    /// The party's global string: the leader only.
    Global,
    /// The sender's own string.
    Member,
}

/// What a chat message carries (L-6).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// UTF-8 text.
    Text,
    /// Bytes the game interprets.
    Custom,
}

/// One chat message (L-6), as the sender's reply and every other member's event carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub party_id: PartyId,
    pub sender: Presence,
    pub kind: ChatKind,
    /// A slice of the request frame: shared by the reply and the event, never copied.
    pub body: Bytes,
    /// Per party, from 1.
    pub sequence: u64,
    /// Server time, never earlier than the party's previous message.
    pub sent_at: UnixMillis,
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
    /// L-5, a member (the leader alone for `Global`): write a custom data string ("" clears it).
    CustomDataSet { party_id: PartyId, scope: CustomDataScope, value: String },
    /// L-6, a member of a party whose chat is on: one message to every other member session.
    ChatSend { party_id: PartyId, kind: ChatKind, body: Bytes },
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
    /// L-6: the message as sent, with its sequence number and server time. Shared with the
    /// event the other members get (one allocation per message, whatever the party's size).
    ChatSent(Arc<ChatMessage>),
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
    /// L-5, to every member session (the writer's included): a custom data string changed;
    /// `member` is the member whose string it is, `None` for the global one.
    CustomDataChanged { party_id: PartyId, member: Option<Presence>, value: String, version: u64 },
    /// L-6, to every member session but the sender's.
    ChatMessage(Arc<ChatMessage>),
    /// L-8, to every member session: the game backend wrote the party's attributes.
    AttributesUpdated { party_id: PartyId, attributes: String, timestamp: UnixMillis, version: u64 },
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
            LobbyRequest::CustomDataSet { party_id, scope, value } => {
                self.custom_data_set(me, party_id, scope, value, ctx)
            }
            LobbyRequest::ChatSend { party_id, kind, body } => self.chat_send(me, party_id, kind, body, ctx),
        };
        self.finish(result.is_ok(), ctx);
        result
    }
}
