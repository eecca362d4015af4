//! Client helpers for every party operation (SPEC P-1 … P-12) and party search. Each waits for its reply and
//! returns `Ok(Ok(result))`, `Ok(Err(error reply))`, or `Err` when the connection failed or the
//! reply did not fit the request. Events that arrive meanwhile stay queued for `wait_event`.

use super::{Client, ClientError};
use crate::core::{
    Cid, InviteStrategy, JoinStrategy, LobbySettings, LobbySettingsPatch, PartyId, PartyListing, PartyReply,
    PartyRequest, PartySnapshot, PartySummary, Presence, Reply, Request,
};
use crate::wire::ErrorReply;
use bytes::Bytes;

/// A party request's outcome: transport failure outside, the server's answer inside.
pub type PartyResult<T> = Result<Result<T, ErrorReply>, ClientError>;

pub(super) fn unexpected<T>(what: &str, reply: impl std::fmt::Debug) -> PartyResult<T> {
    Err(ClientError::Unexpected(format!("{what}: unexpected reply {reply:?}")))
}

impl Client {
    /// Sends any party request and returns its party reply.
    pub fn party_request(&mut self, request: PartyRequest) -> PartyResult<PartyReply> {
        match self.request(&Request::Party(request))? {
            Ok(Reply::Party(reply)) => Ok(Ok(reply)),
            Ok(other) => Err(ClientError::Unexpected(format!("non-party reply {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }

    pub(super) fn party_ok(&mut self, what: &str, request: PartyRequest) -> PartyResult<()> {
        Ok(match self.party_request(request)? {
            Ok(PartyReply::Ok { .. }) => Ok(()),
            Ok(other) => return unexpected(what, other),
            Err(e) => Err(e),
        })
    }

    fn party_info(&mut self, what: &str, request: PartyRequest) -> PartyResult<PartySnapshot> {
        Ok(match self.party_request(request)? {
            Ok(PartyReply::Info(snapshot)) => Ok(*snapshot),
            Ok(other) => return unexpected(what, other),
            Err(e) => Err(e),
        })
    }

    /// P-1: the new party's snapshot. `label` empty = none. Default lobby settings (public,
    /// every member invites); [`Client::party_create_with`] sets them.
    pub fn party_create(&mut self, open: bool, max_size: u32, label: &str, hidden: bool) -> PartyResult<PartySnapshot> {
        self.party_create_with(open, max_size, label, hidden, LobbySettings::default())
    }

    /// P-1 with L-4's strategies.
    pub fn party_create_with(
        &mut self,
        open: bool,
        max_size: u32,
        label: &str,
        hidden: bool,
        lobby: LobbySettings,
    ) -> PartyResult<PartySnapshot> {
        self.party_info("create", PartyRequest::Create { open, max_size, label: label.to_owned(), hidden, lobby })
    }

    /// P-2: `PartyReply::Info` (joined) or `PartyReply::JoinPending` (closed party).
    pub fn party_join(&mut self, party_id: PartyId) -> PartyResult<PartyReply> {
        self.party_request(PartyRequest::Join { party_id })
    }

    /// P-3 (leader): pending join requests, oldest first.
    pub fn party_join_requests(&mut self, party_id: PartyId) -> PartyResult<Vec<Presence>> {
        Ok(match self.party_request(PartyRequest::JoinRequests { party_id })? {
            Ok(PartyReply::JoinRequests { presences, .. }) => Ok(presences),
            Ok(other) => return unexpected("join requests", other),
            Err(e) => Err(e),
        })
    }

    /// P-3 (leader).
    pub fn party_accept(&mut self, party_id: PartyId, presence: &Presence) -> PartyResult<()> {
        self.party_ok("accept", PartyRequest::Accept { party_id, presence: presence.clone() })
    }

    /// P-3 reject a pending request / P-4 kick a member (leader).
    pub fn party_remove(&mut self, party_id: PartyId, presence: &Presence) -> PartyResult<()> {
        self.party_ok("remove", PartyRequest::Remove { party_id, presence: presence.clone() })
    }

    /// P-5.
    pub fn party_leave(&mut self, party_id: PartyId) -> PartyResult<()> {
        self.party_ok("leave", PartyRequest::Leave { party_id })
    }

    /// P-7 (leader).
    pub fn party_promote(&mut self, party_id: PartyId, presence: &Presence) -> PartyResult<()> {
        self.party_ok("promote", PartyRequest::Promote { party_id, presence: presence.clone() })
    }

    /// P-8 (leader).
    pub fn party_close(&mut self, party_id: PartyId) -> PartyResult<()> {
        self.party_ok("close", PartyRequest::Close { party_id })
    }

    /// P-9: sends party data and waits for the server's acknowledgement.
    pub fn party_data(&mut self, party_id: PartyId, op_code: i64, data: &[u8]) -> PartyResult<()> {
        self.party_ok("data", PartyRequest::Data { party_id, op_code, data: Bytes::copy_from_slice(data) })
    }

    /// P-9 without waiting (load generation): returns the cid whose reply will come later.
    pub fn party_data_send(&mut self, party_id: PartyId, op_code: i64, data: &[u8]) -> Result<Cid, ClientError> {
        self.send(&Request::Party(PartyRequest::Data { party_id, op_code, data: Bytes::copy_from_slice(data) }))
    }

    /// P-9 fire-and-forget: sent with cid 0, so no reply comes on success. A refusal (not a
    /// member, no such party, too large) comes back as an error event naming the party: see
    /// [`Client::wait_error_event`].
    pub fn party_data_fire_and_forget(
        &mut self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let request = Request::Party(PartyRequest::Data { party_id, op_code, data: Bytes::copy_from_slice(data) });
        self.send_with_cid(Cid::NONE, &request)
    }

    /// P-10 (leader): `None` keeps a field; `Some("")` clears the label.
    pub fn party_update(
        &mut self,
        party_id: PartyId,
        open: Option<bool>,
        hidden: Option<bool>,
        label: Option<&str>,
    ) -> PartyResult<()> {
        let lobby = LobbySettingsPatch::default();
        self.party_ok("update", PartyRequest::Update { party_id, open, hidden, label: label.map(str::to_owned), lobby })
    }

    /// P-10 / L-4 (leader): change the strategies; `None` keeps one.
    pub fn party_update_strategies(
        &mut self,
        party_id: PartyId,
        join_strategy: Option<JoinStrategy>,
        invite_strategy: Option<InviteStrategy>,
    ) -> PartyResult<()> {
        let lobby = LobbySettingsPatch { join_strategy, invite_strategy };
        self.party_ok("update", PartyRequest::Update { party_id, open: None, hidden: None, label: None, lobby })
    }

    /// P-11 (members).
    pub fn party_get(&mut self, party_id: PartyId) -> PartyResult<PartySnapshot> {
        self.party_info("get", PartyRequest::Get { party_id })
    }

    /// P-11: this session's parties, in the order it joined them.
    pub fn party_my_parties(&mut self) -> PartyResult<Vec<PartySummary>> {
        Ok(match self.party_request(PartyRequest::MyParties)? {
            Ok(PartyReply::MyParties(parties)) => Ok(parties),
            Ok(other) => return unexpected("my parties", other),
            Err(e) => Err(e),
        })
    }

    /// one page of matching non-hidden parties, best first, and the cursor of the next
    /// page (present only when more results exist). `query` "" = all; `open` `None` = both;
    /// `limit` `None` = the server's default page; `cursor` from the previous page of the same
    /// query, filter and limit.
    pub fn party_search(
        &mut self,
        query: &str,
        open: Option<bool>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> PartyResult<(Vec<PartyListing>, Option<String>)> {
        let request = PartyRequest::Search { query: query.to_owned(), open, limit, cursor: cursor.map(str::to_owned) };
        Ok(match self.party_request(request)? {
            Ok(PartyReply::SearchResult { parties, cursor }) => Ok((parties, cursor)),
            Ok(other) => return unexpected("search", other),
            Err(e) => Err(e),
        })
    }
}
