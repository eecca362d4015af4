//! Client helpers for the lobby extensions (SPEC L-2 invitations, L-3 codes, L-5 custom data,
//! L-6 chat). Each waits for its reply and returns `Ok(Ok(result))`, `Ok(Err(error reply))`, or
//! `Err` when the connection failed or the reply did not fit the request. Events
//! (`Event::Lobby`) stay queued for `wait_event`. Strategies, names and the chat flag (L-4, L-6,
//! L-7) are set with `party_create_with` and changed with `party_update_lobby` (or
//! `party_update_strategies`); `?snapshots=true` (L-9) is `ConnectOptions::snapshots`. Friends,
//! blocks and attributes (L-4, L-8) are written by the game's backend through the admin API.

use super::party::unexpected;
use super::{Client, ClientError, PartyResult};
use crate::core::{
    ChatKind, ChatMessage, CustomDataScope, LobbyReply, LobbyRequest, PartyCode, PartyId, PartyInvitation, PartyReply,
    PartySnapshot, Reply, Request, UserId,
};
use bytes::Bytes;

/// The reply of a lobby request: a lobby reply or a party one (accept and code join answer with
/// the snapshot, invite, cancel and reject with `PartyOk`).
enum Answer {
    Lobby(LobbyReply),
    Party(PartyReply),
}

impl Client {
    fn lobby_request(&mut self, request: LobbyRequest) -> PartyResult<Answer> {
        match self.request(&Request::Lobby(request))? {
            Ok(Reply::Lobby(reply)) => Ok(Ok(Answer::Lobby(reply))),
            Ok(Reply::Party(reply)) => Ok(Ok(Answer::Party(reply))),
            Ok(other) => Err(ClientError::Unexpected(format!("non-lobby reply {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }

    fn lobby_ok(&mut self, what: &str, request: LobbyRequest) -> PartyResult<()> {
        Ok(match self.lobby_request(request)? {
            Ok(Answer::Party(PartyReply::Ok { .. })) => Ok(()),
            Ok(Answer::Party(other)) => return unexpected(what, other),
            Ok(Answer::Lobby(other)) => return unexpected(what, other),
            Err(e) => Err(e),
        })
    }

    fn lobby_snapshot(&mut self, what: &str, request: LobbyRequest) -> PartyResult<PartySnapshot> {
        Ok(match self.lobby_request(request)? {
            Ok(Answer::Party(PartyReply::Info(snapshot))) => Ok(*snapshot),
            Ok(Answer::Party(other)) => return unexpected(what, other),
            Ok(Answer::Lobby(other)) => return unexpected(what, other),
            Err(e) => Err(e),
        })
    }

    fn lobby_code(&mut self, what: &str, request: LobbyRequest) -> PartyResult<PartyCode> {
        Ok(match self.lobby_request(request)? {
            Ok(Answer::Lobby(LobbyReply::Code { code, .. })) => Ok(code),
            Ok(Answer::Party(other)) => return unexpected(what, other),
            Ok(Answer::Lobby(other)) => return unexpected(what, other),
            Err(e) => Err(e),
        })
    }

    /// L-2 (a member; the leader alone under `leader_only`): invite users by id, all or nothing.
    pub fn party_invite(&mut self, party_id: PartyId, user_ids: &[&str]) -> PartyResult<()> {
        let user_ids = user_ids.iter().map(|id| UserId::new(id)).collect();
        self.lobby_ok("invite", LobbyRequest::Invite { party_id, user_ids })
    }

    /// L-2 (the member who sent it, or the leader).
    pub fn party_invitation_cancel(&mut self, party_id: PartyId, user_id: &str) -> PartyResult<()> {
        self.lobby_ok("cancel", LobbyRequest::CancelInvitation { party_id, user_id: UserId::new(user_id) })
    }

    /// L-2 (the invitee): join; the reply is the party's snapshot.
    pub fn party_invitation_accept(&mut self, party_id: PartyId) -> PartyResult<PartySnapshot> {
        self.lobby_snapshot("accept", LobbyRequest::AcceptInvitation { party_id })
    }

    /// L-2 (the invitee).
    pub fn party_invitation_reject(&mut self, party_id: PartyId) -> PartyResult<()> {
        self.lobby_ok("reject", LobbyRequest::RejectInvitation { party_id })
    }

    /// L-2: this user's pending invitations, in the order first sent.
    pub fn party_invitations(&mut self) -> PartyResult<Vec<PartyInvitation>> {
        Ok(match self.lobby_request(LobbyRequest::Invitations)? {
            Ok(Answer::Lobby(LobbyReply::Invitations(invitations))) => Ok(invitations),
            Ok(Answer::Party(other)) => return unexpected("invitations", other),
            Ok(Answer::Lobby(other)) => return unexpected("invitations", other),
            Err(e) => Err(e),
        })
    }

    /// L-3 (leader).
    pub fn party_code(&mut self, party_id: PartyId) -> PartyResult<PartyCode> {
        self.lobby_code("code get", LobbyRequest::CodeGet { party_id })
    }

    /// L-3 (leader): a new code; the old one stops working at once.
    pub fn party_code_regenerate(&mut self, party_id: PartyId) -> PartyResult<PartyCode> {
        self.lobby_code("code regenerate", LobbyRequest::CodeRegenerate { party_id })
    }

    /// L-3: join by code (any case); the reply is the party's snapshot.
    pub fn party_join_by_code(&mut self, code: &str) -> PartyResult<PartySnapshot> {
        self.lobby_snapshot("code join", LobbyRequest::JoinByCode { code: code.to_owned() })
    }

    /// L-5 (a member; `Global`: the leader): write a custom data string ("" clears it). Every
    /// member session, this one included, gets `PartyCustomDataChanged`.
    pub fn party_custom_data(&mut self, party_id: PartyId, scope: CustomDataScope, value: &str) -> PartyResult<()> {
        self.lobby_ok("custom data", LobbyRequest::CustomDataSet { party_id, scope, value: value.to_owned() })
    }

    /// L-6 (a member of a party whose chat is on): one message; the reply is the message with
    /// its sequence number and server time, as the other members receive it.
    pub fn party_chat(&mut self, party_id: PartyId, kind: ChatKind, body: &[u8]) -> PartyResult<ChatMessage> {
        let request = LobbyRequest::ChatSend { party_id, kind, body: Bytes::copy_from_slice(body) };
        Ok(match self.lobby_request(request)? {
            Ok(Answer::Lobby(LobbyReply::ChatSent(message))) => Ok((*message).clone()),
            Ok(Answer::Party(other)) => return unexpected("chat", other),
            Ok(Answer::Lobby(other)) => return unexpected("chat", other),
            Err(e) => Err(e),
        })
    }

    /// L-6: a text message.
    pub fn party_chat_text(&mut self, party_id: PartyId, text: &str) -> PartyResult<ChatMessage> {
        self.party_chat(party_id, ChatKind::Text, text.as_bytes())
    }
}
