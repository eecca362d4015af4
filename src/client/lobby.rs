//! Client helpers for the lobby extensions (SPEC L-2 invitations, L-3 codes). Each waits for its
//! reply and returns `Ok(Ok(result))`, `Ok(Err(error reply))`, or `Err` when the connection
//! failed or the reply did not fit the request. Events (`Event::Lobby`) stay queued for
//! `wait_event`. Strategies (L-4) are set with `party_create_with` and
//! `party_update_strategies`; `?snapshots=true` (L-9) is `ConnectOptions::snapshots`.

use super::party::unexpected;
use super::{Client, ClientError, PartyResult};
use crate::core::{
    LobbyReply, LobbyRequest, PartyCode, PartyId, PartyInvitation, PartyReply, PartySnapshot, Reply, Request, UserId,
};

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
}
