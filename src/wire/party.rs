//! Party messages on the wire (SPEC P-1 … P-12): server-side request decode and reply/event
//! encode, and their mirror images for clients. Party search (Q-1) has its own file.

use super::dispatch::{Claim, Claims};
use super::fields::{
    invite_strategy_from_wire, invite_strategy_to_wire, join_strategy_from_wire, join_strategy_to_wire,
    lobby_settings_from_wire, party_id_from_wire, party_id_to_wire, presence_from_wire, presences_from_wire,
    toggle_from_wire, toggle_to_wire,
};
use super::{fb, Body, DecodeError, Encoder, ServerMessage};
use crate::core::{
    Cid, Event, LobbySettings, LobbySettingsPatch, PartyEvent, PartyReply, PartyRequest, PartySnapshot, PartySummary,
    RemovedReason, Reply, Request,
};
use bytes::Bytes;

pub(super) const CLAIMS: Claims = &[
    (fb::Message::PartyCreate, Claim::Request(decode_create)),
    (fb::Message::PartyJoin, Claim::Request(decode_join)),
    (fb::Message::PartyJoinRequestListGet, Claim::Request(decode_join_requests)),
    (fb::Message::PartyAccept, Claim::Request(decode_accept)),
    (fb::Message::PartyRemove, Claim::Request(decode_remove)),
    (fb::Message::PartyLeave, Claim::Request(decode_leave)),
    (fb::Message::PartyPromote, Claim::Request(decode_promote)),
    (fb::Message::PartyClose, Claim::Request(decode_close)),
    // P-9: real-time state nobody waits an ack for may be sent with cid 0.
    (fb::Message::PartyDataSend, Claim::RequestOrFireAndForget(decode_data_send)),
    (fb::Message::PartyUpdate, Claim::Request(decode_update)),
    (fb::Message::PartyGet, Claim::Request(decode_get)),
    (fb::Message::PartyMyList, Claim::Request(decode_my_list)),
    (fb::Message::PartyInfo, Claim::Server(decode_info)),
    (fb::Message::PartyJoinPending, Claim::Server(decode_join_pending)),
    (fb::Message::PartyJoinRequestList, Claim::Server(decode_join_request_list)),
    (fb::Message::PartyOk, Claim::Server(decode_ok)),
    (fb::Message::PartyMyListResult, Claim::Server(decode_my_list_result)),
    (fb::Message::PartyPresence, Claim::Server(decode_presence_event)),
    (fb::Message::PartyJoinRequest, Claim::Server(decode_join_request_event)),
    (fb::Message::PartyLeader, Claim::Server(decode_leader)),
    (fb::Message::PartyRemoved, Claim::Server(decode_removed)),
    (fb::Message::PartyData, Claim::Server(decode_data)),
    (fb::Message::PartyUpdated, Claim::Server(decode_updated)),
    (fb::Message::PartyJoined, Claim::Server(decode_joined)),
];

/// A message body the envelope's type says is there.
fn body<T>(message: Option<T>) -> Result<T, DecodeError> {
    message.ok_or(DecodeError::MissingField("message"))
}

fn party(request: PartyRequest) -> Result<Request, DecodeError> {
    Ok(Request::Party(request))
}

// ---- requests (server side) ----

fn decode_create(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_create())?;
    // L-4: an unset strategy is the default one.
    let lobby = LobbySettings {
        join_strategy: join_strategy_from_wire(m.join_strategy(), "join_strategy")?.unwrap_or_default(),
        invite_strategy: invite_strategy_from_wire(m.invite_strategy(), "invite_strategy")?.unwrap_or_default(),
    };
    party(PartyRequest::Create {
        open: m.open(),
        max_size: m.max_size(),
        label: m.label().unwrap_or_default().to_owned(),
        hidden: m.hidden(),
        lobby,
    })
}

fn decode_join(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    party(PartyRequest::Join { party_id: party_id_from_wire(body(envelope.message_as_party_join())?.party_id())? })
}

fn decode_join_requests(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_join_request_list_get())?;
    party(PartyRequest::JoinRequests { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_accept(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_accept())?;
    party(PartyRequest::Accept {
        party_id: party_id_from_wire(m.party_id())?,
        presence: presence_from_wire(m.presence(), "presence")?,
    })
}

fn decode_remove(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_remove())?;
    party(PartyRequest::Remove {
        party_id: party_id_from_wire(m.party_id())?,
        presence: presence_from_wire(m.presence(), "presence")?,
    })
}

fn decode_leave(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    party(PartyRequest::Leave { party_id: party_id_from_wire(body(envelope.message_as_party_leave())?.party_id())? })
}

fn decode_promote(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_promote())?;
    party(PartyRequest::Promote {
        party_id: party_id_from_wire(m.party_id())?,
        presence: presence_from_wire(m.presence(), "presence")?,
    })
}

fn decode_close(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    party(PartyRequest::Close { party_id: party_id_from_wire(body(envelope.message_as_party_close())?.party_id())? })
}

fn decode_data_send(envelope: &fb::Envelope<'_>, frame: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_data_send())?;
    // The payload stays in the frame's buffer: a refcounted slice, not a copy (P-9).
    let data = m.data().map_or_else(Bytes::new, |d| frame.slice_ref(d.bytes()));
    party(PartyRequest::Data { party_id: party_id_from_wire(m.party_id())?, op_code: m.op_code(), data })
}

fn decode_update(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_update())?;
    party(PartyRequest::Update {
        party_id: party_id_from_wire(m.party_id())?,
        open: toggle_from_wire(m.open(), "open")?,
        hidden: toggle_from_wire(m.hidden(), "hidden")?,
        label: m.label().map(str::to_owned),
        lobby: LobbySettingsPatch {
            join_strategy: join_strategy_from_wire(m.join_strategy(), "join_strategy")?,
            invite_strategy: invite_strategy_from_wire(m.invite_strategy(), "invite_strategy")?,
        },
    })
}

fn decode_get(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    party(PartyRequest::Get { party_id: party_id_from_wire(body(envelope.message_as_party_get())?.party_id())? })
}

fn decode_my_list(_: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    party(PartyRequest::MyParties)
}

// ---- replies and events (client side) ----

fn reply(envelope: &fb::Envelope<'_>, reply: PartyReply) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(Reply::Party(reply)) })
}

fn event(event: PartyEvent) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Event(Event::Party(event)))
}

pub(super) fn party_info_from_wire(info: fb::PartyInfo<'_>) -> Result<PartySnapshot, DecodeError> {
    Ok(PartySnapshot {
        party_id: party_id_from_wire(info.party_id())?,
        open: info.open(),
        hidden: info.hidden(),
        max_size: info.max_size(),
        label: info.label().unwrap_or_default().to_owned(),
        leader: presence_from_wire(info.leader(), "leader")?,
        members: presences_from_wire(info.members())?,
        lobby: lobby_settings_from_wire(info.join_strategy(), info.invite_strategy())?,
        version: info.version(),
    })
}

pub(super) fn party_summary_from_wire(s: fb::PartySummary<'_>) -> Result<PartySummary, DecodeError> {
    Ok(PartySummary {
        party_id: party_id_from_wire(s.party_id())?,
        open: s.open(),
        hidden: s.hidden(),
        max_size: s.max_size(),
        member_count: s.member_count(),
        label: s.label().unwrap_or_default().to_owned(),
        leader: presence_from_wire(s.leader(), "leader")?,
        lobby: lobby_settings_from_wire(s.join_strategy(), s.invite_strategy())?,
        version: s.version(),
    })
}

fn decode_info(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    reply(envelope, PartyReply::Info(Box::new(party_info_from_wire(body(envelope.message_as_party_info())?)?)))
}

fn decode_join_pending(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_join_pending())?;
    reply(envelope, PartyReply::JoinPending { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_join_request_list(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_join_request_list())?;
    reply(
        envelope,
        PartyReply::JoinRequests {
            party_id: party_id_from_wire(m.party_id())?,
            presences: presences_from_wire(m.presences())?,
        },
    )
}

fn decode_ok(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_ok())?;
    reply(envelope, PartyReply::Ok { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_my_list_result(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_my_list_result())?;
    let mut parties = Vec::new();
    for s in m.parties().iter().flatten() {
        parties.push(party_summary_from_wire(s)?);
    }
    reply(envelope, PartyReply::MyParties(parties))
}

fn decode_presence_event(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_presence())?;
    event(PartyEvent::Presence {
        party_id: party_id_from_wire(m.party_id())?,
        joins: presences_from_wire(m.joins())?,
        leaves: presences_from_wire(m.leaves())?,
        version: m.version(),
    })
}

fn decode_join_request_event(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_join_request())?;
    event(PartyEvent::JoinRequest {
        party_id: party_id_from_wire(m.party_id())?,
        presences: presences_from_wire(m.presences())?,
    })
}

fn decode_leader(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_leader())?;
    event(PartyEvent::Leader {
        party_id: party_id_from_wire(m.party_id())?,
        leader: presence_from_wire(m.leader(), "leader")?,
        version: m.version(),
    })
}

fn decode_removed(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_removed())?;
    let reason = match m.reason() {
        fb::PartyRemovedReason::Kicked => RemovedReason::Kicked,
        fb::PartyRemovedReason::Closed => RemovedReason::Closed,
        fb::PartyRemovedReason::Rejected => RemovedReason::Rejected,
        fb::PartyRemovedReason::Moved => RemovedReason::Moved,
        fb::PartyRemovedReason::ClosedByAdmin => RemovedReason::ClosedByAdmin,
        other => return Err(DecodeError::UnknownEnumValue { field: "reason", value: other.0.into() }),
    };
    event(PartyEvent::Removed { party_id: party_id_from_wire(m.party_id())?, reason, version: m.version() })
}

fn decode_data(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_data())?;
    event(PartyEvent::Data {
        party_id: party_id_from_wire(m.party_id())?,
        sender: presence_from_wire(m.sender(), "sender")?,
        op_code: m.op_code(),
        data: Bytes::copy_from_slice(m.data().map(|d| d.bytes()).unwrap_or_default()),
    })
}

fn decode_updated(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_updated())?;
    event(PartyEvent::Updated {
        party_id: party_id_from_wire(m.party_id())?,
        open: m.open(),
        hidden: m.hidden(),
        max_size: m.max_size(),
        label: m.label().unwrap_or_default().to_owned(),
        lobby: lobby_settings_from_wire(m.join_strategy(), m.invite_strategy())?,
        version: m.version(),
    })
}

fn decode_joined(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_joined())?;
    event(PartyEvent::Joined(Box::new(party_info_from_wire(m.party().ok_or(DecodeError::MissingField("party"))?)?)))
}

// ---- encoding ----

fn reason_to_wire(reason: RemovedReason) -> fb::PartyRemovedReason {
    match reason {
        RemovedReason::Kicked => fb::PartyRemovedReason::Kicked,
        RemovedReason::Closed => fb::PartyRemovedReason::Closed,
        RemovedReason::Rejected => fb::PartyRemovedReason::Rejected,
        RemovedReason::Moved => fb::PartyRemovedReason::Moved,
        RemovedReason::ClosedByAdmin => fb::PartyRemovedReason::ClosedByAdmin,
    }
}

impl Encoder {
    pub(super) fn party_info(&mut self, snapshot: &PartySnapshot) -> flatbuffers::WIPOffset<fb::PartyInfo<'static>> {
        let label = self.builder.create_string(&snapshot.label);
        let leader = self.presence(&snapshot.leader);
        let members = self.presences(&snapshot.members);
        let party_id = party_id_to_wire(snapshot.party_id);
        fb::PartyInfo::create(
            &mut self.builder,
            &fb::PartyInfoArgs {
                party_id: Some(&party_id),
                open: snapshot.open,
                hidden: snapshot.hidden,
                max_size: snapshot.max_size,
                label: Some(label),
                leader: Some(leader),
                members: Some(members),
                version: snapshot.version,
                join_strategy: join_strategy_to_wire(snapshot.lobby.join_strategy),
                invite_strategy: invite_strategy_to_wire(snapshot.lobby.invite_strategy),
            },
        )
    }

    pub(super) fn party_summary(
        &mut self,
        summary: &PartySummary,
    ) -> flatbuffers::WIPOffset<fb::PartySummary<'static>> {
        let label = self.builder.create_string(&summary.label);
        let leader = self.presence(&summary.leader);
        let party_id = party_id_to_wire(summary.party_id);
        fb::PartySummary::create(
            &mut self.builder,
            &fb::PartySummaryArgs {
                party_id: Some(&party_id),
                open: summary.open,
                hidden: summary.hidden,
                max_size: summary.max_size,
                member_count: summary.member_count,
                label: Some(label),
                leader: Some(leader),
                version: summary.version,
                join_strategy: join_strategy_to_wire(summary.lobby.join_strategy),
                invite_strategy: invite_strategy_to_wire(summary.lobby.invite_strategy),
            },
        )
    }

    pub(super) fn party_reply(&mut self, reply: &PartyReply) -> Body {
        match reply {
            PartyReply::Info(snapshot) => (fb::Message::PartyInfo, self.party_info(snapshot).as_union_value()),
            PartyReply::JoinPending { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m =
                    fb::PartyJoinPending::create(&mut self.builder, &fb::PartyJoinPendingArgs { party_id: Some(&id) });
                (fb::Message::PartyJoinPending, m.as_union_value())
            }
            PartyReply::JoinRequests { party_id, presences } => {
                let presences = self.presences(presences);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyJoinRequestList::create(
                    &mut self.builder,
                    &fb::PartyJoinRequestListArgs { party_id: Some(&id), presences: Some(presences) },
                );
                (fb::Message::PartyJoinRequestList, m.as_union_value())
            }
            PartyReply::Ok { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyOk::create(&mut self.builder, &fb::PartyOkArgs { party_id: Some(&id) });
                (fb::Message::PartyOk, m.as_union_value())
            }
            PartyReply::MyParties(parties) => {
                let offsets: Vec<_> = parties.iter().map(|p| self.party_summary(p)).collect();
                let parties = self.builder.create_vector(&offsets);
                let m = fb::PartyMyListResult::create(
                    &mut self.builder,
                    &fb::PartyMyListResultArgs { parties: Some(parties) },
                );
                (fb::Message::PartyMyListResult, m.as_union_value())
            }
            PartyReply::SearchResult { parties, cursor } => self.search_result(parties, cursor.as_deref()),
        }
    }

    pub(super) fn party_event(&mut self, event: &PartyEvent) -> Body {
        match event {
            PartyEvent::Presence { party_id, joins, leaves, version } => {
                let joins = self.presences(joins);
                let leaves = self.presences(leaves);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyPresence::create(
                    &mut self.builder,
                    &fb::PartyPresenceArgs {
                        party_id: Some(&id),
                        joins: Some(joins),
                        leaves: Some(leaves),
                        version: *version,
                    },
                );
                (fb::Message::PartyPresence, m.as_union_value())
            }
            PartyEvent::JoinRequest { party_id, presences } => {
                let presences = self.presences(presences);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyJoinRequest::create(
                    &mut self.builder,
                    &fb::PartyJoinRequestArgs { party_id: Some(&id), presences: Some(presences) },
                );
                (fb::Message::PartyJoinRequest, m.as_union_value())
            }
            PartyEvent::Leader { party_id, leader, version } => {
                let leader = self.presence(leader);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyLeader::create(
                    &mut self.builder,
                    &fb::PartyLeaderArgs { party_id: Some(&id), leader: Some(leader), version: *version },
                );
                (fb::Message::PartyLeader, m.as_union_value())
            }
            PartyEvent::Removed { party_id, reason, version } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyRemoved::create(
                    &mut self.builder,
                    &fb::PartyRemovedArgs { party_id: Some(&id), reason: reason_to_wire(*reason), version: *version },
                );
                (fb::Message::PartyRemoved, m.as_union_value())
            }
            PartyEvent::Data { party_id, sender, op_code, data } => {
                let data = self.builder.create_vector(data.as_ref());
                let sender = self.presence(sender);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyData::create(
                    &mut self.builder,
                    &fb::PartyDataArgs {
                        party_id: Some(&id),
                        sender: Some(sender),
                        op_code: *op_code,
                        data: Some(data),
                    },
                );
                (fb::Message::PartyData, m.as_union_value())
            }
            PartyEvent::Updated { party_id, open, hidden, max_size, label, lobby, version } => {
                let label = self.builder.create_string(label);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyUpdated::create(
                    &mut self.builder,
                    &fb::PartyUpdatedArgs {
                        party_id: Some(&id),
                        open: *open,
                        hidden: *hidden,
                        max_size: *max_size,
                        label: Some(label),
                        join_strategy: join_strategy_to_wire(lobby.join_strategy),
                        invite_strategy: invite_strategy_to_wire(lobby.invite_strategy),
                        version: *version,
                    },
                );
                (fb::Message::PartyUpdated, m.as_union_value())
            }
            PartyEvent::Joined(snapshot) => {
                let party = self.party_info(snapshot);
                let m = fb::PartyJoined::create(&mut self.builder, &fb::PartyJoinedArgs { party: Some(party) });
                (fb::Message::PartyJoined, m.as_union_value())
            }
        }
    }

    /// A client's party request body.
    pub(super) fn party_request(&mut self, request: &PartyRequest) -> Body {
        match request {
            PartyRequest::Create { open, max_size, label, hidden, lobby } => {
                let label = self.builder.create_string(label);
                let m = fb::PartyCreate::create(
                    &mut self.builder,
                    &fb::PartyCreateArgs {
                        open: *open,
                        max_size: *max_size,
                        label: Some(label),
                        hidden: *hidden,
                        join_strategy: join_strategy_to_wire(lobby.join_strategy),
                        invite_strategy: invite_strategy_to_wire(lobby.invite_strategy),
                    },
                );
                (fb::Message::PartyCreate, m.as_union_value())
            }
            PartyRequest::Join { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyJoin::create(&mut self.builder, &fb::PartyJoinArgs { party_id: Some(&id) });
                (fb::Message::PartyJoin, m.as_union_value())
            }
            PartyRequest::JoinRequests { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyJoinRequestListGet::create(
                    &mut self.builder,
                    &fb::PartyJoinRequestListGetArgs { party_id: Some(&id) },
                );
                (fb::Message::PartyJoinRequestListGet, m.as_union_value())
            }
            PartyRequest::Accept { party_id, presence } => {
                let presence = self.presence(presence);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyAccept::create(
                    &mut self.builder,
                    &fb::PartyAcceptArgs { party_id: Some(&id), presence: Some(presence) },
                );
                (fb::Message::PartyAccept, m.as_union_value())
            }
            PartyRequest::Remove { party_id, presence } => {
                let presence = self.presence(presence);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyRemove::create(
                    &mut self.builder,
                    &fb::PartyRemoveArgs { party_id: Some(&id), presence: Some(presence) },
                );
                (fb::Message::PartyRemove, m.as_union_value())
            }
            PartyRequest::Leave { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyLeave::create(&mut self.builder, &fb::PartyLeaveArgs { party_id: Some(&id) });
                (fb::Message::PartyLeave, m.as_union_value())
            }
            PartyRequest::Promote { party_id, presence } => {
                let presence = self.presence(presence);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyPromote::create(
                    &mut self.builder,
                    &fb::PartyPromoteArgs { party_id: Some(&id), presence: Some(presence) },
                );
                (fb::Message::PartyPromote, m.as_union_value())
            }
            PartyRequest::Close { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyClose::create(&mut self.builder, &fb::PartyCloseArgs { party_id: Some(&id) });
                (fb::Message::PartyClose, m.as_union_value())
            }
            PartyRequest::Data { party_id, op_code, data } => {
                let data = self.builder.create_vector(data.as_ref());
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyDataSend::create(
                    &mut self.builder,
                    &fb::PartyDataSendArgs { party_id: Some(&id), op_code: *op_code, data: Some(data) },
                );
                (fb::Message::PartyDataSend, m.as_union_value())
            }
            PartyRequest::Update { party_id, open, hidden, label, lobby } => {
                let label = label.as_deref().map(|l| self.builder.create_string(l));
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyUpdate::create(
                    &mut self.builder,
                    &fb::PartyUpdateArgs {
                        party_id: Some(&id),
                        open: toggle_to_wire(*open),
                        hidden: toggle_to_wire(*hidden),
                        label,
                        join_strategy: lobby.join_strategy.map_or(fb::PartyJoinStrategy::Unset, join_strategy_to_wire),
                        invite_strategy: lobby
                            .invite_strategy
                            .map_or(fb::PartyInviteStrategy::Unset, invite_strategy_to_wire),
                    },
                );
                (fb::Message::PartyUpdate, m.as_union_value())
            }
            PartyRequest::Get { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyGet::create(&mut self.builder, &fb::PartyGetArgs { party_id: Some(&id) });
                (fb::Message::PartyGet, m.as_union_value())
            }
            PartyRequest::MyParties => (
                fb::Message::PartyMyList,
                fb::PartyMyList::create(&mut self.builder, &fb::PartyMyListArgs {}).as_union_value(),
            ),
            PartyRequest::Search { query, open, limit, cursor } => {
                self.search_request(query, *open, *limit, cursor.as_deref())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hand_built, reply_round_trips, request_round_trips};
    use super::super::{decode_request as decode, decode_server_message as decode_server, verifier_options};
    use super::*;
    use crate::core::{CoreError, InviteStrategy, JoinStrategy, PartyId, Presence, SessionId, UserId, Username};

    fn presence(n: u32) -> Presence {
        Presence {
            user_id: UserId::new(&format!("user{n}")),
            session_id: SessionId::new(n, n + 1),
            username: Username::new(&format!("User{n}")),
        }
    }

    const ID: PartyId = PartyId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);

    fn options() -> flatbuffers::VerifierOptions {
        verifier_options(1 << 20)
    }

    fn snapshot() -> PartySnapshot {
        PartySnapshot {
            party_id: ID,
            open: true,
            hidden: false,
            max_size: 8,
            label: r#"{"mode":"ctf"}"#.into(),
            leader: presence(1),
            members: vec![presence(1), presence(2), presence(3)],
            lobby: LobbySettings {
                join_strategy: JoinStrategy::NotAllowed,
                invite_strategy: InviteStrategy::AllMembers,
            },
            version: 9,
        }
    }

    #[test]
    fn every_party_request_round_trips() {
        let requests = vec![
            PartyRequest::Create {
                open: true,
                max_size: 300,
                label: r#"{"a":1}"#.into(),
                hidden: false,
                lobby: LobbySettings {
                    join_strategy: JoinStrategy::InvitedOnly,
                    invite_strategy: InviteStrategy::LeaderOnly,
                },
            },
            PartyRequest::Join { party_id: ID },
            PartyRequest::JoinRequests { party_id: ID },
            PartyRequest::Accept { party_id: ID, presence: presence(4) },
            PartyRequest::Remove { party_id: ID, presence: presence(5) },
            PartyRequest::Leave { party_id: ID },
            PartyRequest::Promote { party_id: ID, presence: presence(6) },
            PartyRequest::Close { party_id: ID },
            PartyRequest::Data { party_id: ID, op_code: -7, data: Bytes::from_static(b"hello party") },
            PartyRequest::Data { party_id: ID, op_code: i64::MAX, data: Bytes::new() },
            PartyRequest::Update {
                party_id: ID,
                open: Some(false),
                hidden: None,
                label: Some(String::new()),
                lobby: Default::default(),
            },
            PartyRequest::Update {
                party_id: ID,
                open: None,
                hidden: Some(true),
                label: None,
                lobby: Default::default(),
            },
            PartyRequest::Update {
                party_id: ID,
                open: None,
                hidden: None,
                label: None,
                lobby: LobbySettingsPatch { join_strategy: Some(JoinStrategy::NotAllowed), invite_strategy: None },
            },
            PartyRequest::Update {
                party_id: ID,
                open: None,
                hidden: None,
                label: None,
                lobby: LobbySettingsPatch { join_strategy: None, invite_strategy: Some(InviteStrategy::LeaderOnly) },
            },
            PartyRequest::Get { party_id: ID },
            PartyRequest::MyParties,
        ];
        for request in requests {
            request_round_trips(Request::Party(request));
        }
    }

    #[test]
    fn party_data_payload_is_a_slice_of_the_frame_not_a_copy() {
        let request = Request::Party(PartyRequest::Data { party_id: ID, op_code: 1, data: Bytes::from(vec![9u8; 64]) });
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(1), &request));
        let Ok((_, Request::Party(PartyRequest::Data { data, .. }))) = decode(&frame, &options()) else {
            panic!("expected party data")
        };
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(frame_range.contains(&(data.as_ptr() as usize)), "data points into the frame");
        assert_eq!(&data[..], &[9u8; 64][..]);
    }

    #[test]
    fn missing_party_id_is_named() {
        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let join = fb::PartyJoin::create(&mut builder, &fb::PartyJoinArgs { party_id: None }).as_union_value();
        let (cid, error) = decode(&hand_built(builder, 4, fb::Message::PartyJoin, join), &options()).unwrap_err();
        assert_eq!(cid, Cid(4));
        assert_eq!(error, DecodeError::MissingField("party_id"));
    }

    #[test]
    fn every_party_reply_round_trips() {
        let summary = PartySummary {
            party_id: ID,
            open: false,
            hidden: true,
            max_size: 4,
            member_count: 2,
            label: String::new(),
            leader: presence(2),
            lobby: LobbySettings::default(),
            version: 1,
        };
        let replies = vec![
            PartyReply::Info(Box::new(snapshot())),
            PartyReply::JoinPending { party_id: ID },
            PartyReply::JoinRequests { party_id: ID, presences: vec![presence(7), presence(8)] },
            PartyReply::JoinRequests { party_id: ID, presences: vec![] },
            PartyReply::Ok { party_id: ID },
            PartyReply::MyParties(vec![summary.clone(), PartySummary { party_id: PartyId(1), ..summary }]),
            PartyReply::MyParties(vec![]),
        ];
        for reply in replies {
            reply_round_trips(Reply::Party(reply));
        }
    }

    #[test]
    fn every_party_event_round_trips() {
        let events = vec![
            PartyEvent::Presence { party_id: ID, joins: vec![presence(1)], leaves: vec![], version: 2 },
            PartyEvent::Presence { party_id: ID, joins: vec![], leaves: vec![presence(2), presence(3)], version: 3 },
            PartyEvent::JoinRequest { party_id: ID, presences: vec![presence(4)] },
            PartyEvent::Leader { party_id: ID, leader: presence(5), version: 4 },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Kicked, version: 5 },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Closed, version: 6 },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Rejected, version: 7 },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Moved, version: 8 },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::ClosedByAdmin, version: 9 },
            PartyEvent::Data { party_id: ID, sender: presence(6), op_code: 42, data: Bytes::from_static(&[0, 1, 2]) },
            PartyEvent::Updated {
                party_id: ID,
                open: false,
                hidden: true,
                max_size: 256,
                label: String::new(),
                lobby: LobbySettings {
                    join_strategy: JoinStrategy::FriendsOfLeader,
                    invite_strategy: InviteStrategy::LeaderOnly,
                },
                version: u64::MAX,
            },
            PartyEvent::Joined(Box::new(snapshot())),
        ];
        let mut encoder = Encoder::new();
        for e in events {
            let frame = encoder.event(&Event::Party(e.clone())).to_vec();
            assert_eq!(decode_server(&frame, &options()), Ok(ServerMessage::Event(Event::Party(e.clone()))), "{e:?}");
        }
    }

    #[test]
    fn party_errors_get_their_codes() {
        use super::super::ErrorCode;
        let cases = [
            (CoreError::PartyNotFound, ErrorCode::PartyNotFound),
            (CoreError::PartyFull, ErrorCode::PartyFull),
            (CoreError::PartyNotLeader, ErrorCode::PartyNotLeader),
            (CoreError::PartyNotMember, ErrorCode::PartyNotMember),
            (CoreError::PartyJoinRequestDuplicate, ErrorCode::PartyJoinRequestDuplicate),
            (CoreError::PartyAlreadyMember, ErrorCode::PartyAlreadyMember),
            (CoreError::PartyCannotRemoveSelf, ErrorCode::PartyCannotRemoveSelf),
            (CoreError::PartyPresenceNotFound, ErrorCode::PartyPresenceNotFound),
            (CoreError::PartyJoinRequestsFull, ErrorCode::PartyJoinRequestsFull),
            (CoreError::PartyTooManyParties(16), ErrorCode::PartyTooManyParties),
            (CoreError::PartyPresenceMismatch, ErrorCode::PartyPresenceMismatch),
            (CoreError::LimitExceeded("x".into()), ErrorCode::LimitExceeded),
            (
                CoreError::SearchQueryInvalid(
                    crate::core::search::parse_query("label.a:", &Default::default()).unwrap_err(),
                ),
                ErrorCode::SearchQueryInvalid,
            ),
            (CoreError::SearchCursorMismatch, ErrorCode::SearchCursorMismatch),
            (CoreError::SearchCursorInvalid, ErrorCode::SearchCursorInvalid),
            (CoreError::SearchQueryTooBroad { byte_pos: 3, values_max: 256 }, ErrorCode::SearchQueryTooBroad),
        ];
        for (error, code) in cases {
            let frame = Encoder::new().reply(Cid(3), &Err(error.clone())).to_vec();
            let Ok(ServerMessage::Reply { result: Err(reply), .. }) = decode_server(&frame, &options()) else {
                panic!("expected an error reply for {error:?}")
            };
            assert_eq!(reply.code, code, "{error:?}");
            assert_eq!(reply.message, error.to_string());
        }
    }

    #[test]
    fn server_only_party_messages_are_not_requests() {
        let frame = Encoder::new().reply(Cid(5), &Ok(Reply::Party(PartyReply::Ok { party_id: ID }))).to_vec();
        let (cid, error) = decode(&Bytes::from(frame), &options()).unwrap_err();
        assert_eq!((cid, error), (Cid(5), DecodeError::NotARequest("PartyOk")));
    }

    /// Builds a PartyUpdate table by hand with raw bytes for `open` and `hidden` (`None`: left
    /// out), as a client of the previous schema (`bool = null`) or a buggy one would.
    fn raw_update(open: Option<u8>, hidden: Option<u8>) -> Bytes {
        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let id = super::party_id_to_wire(ID);
        let table = builder.start_table();
        builder.push_slot_always(fb::PartyUpdate::VT_PARTY_ID, id);
        if let Some(open) = open {
            builder.push_slot_always::<u8>(fb::PartyUpdate::VT_OPEN, open);
        }
        if let Some(hidden) = hidden {
            builder.push_slot_always::<u8>(fb::PartyUpdate::VT_HIDDEN, hidden);
        }
        let update = builder.end_table(table).as_union_value();
        hand_built(builder, 31, fb::Message::PartyUpdate, update)
    }

    #[test]
    fn an_update_written_with_the_previous_optional_bools_decodes_the_same() {
        for (open, hidden) in [(Some(0), None), (Some(1), Some(0)), (None, Some(1)), (None, None)] {
            let expected = Request::Party(PartyRequest::Update {
                party_id: ID,
                open: open.map(|b| b == 1),
                hidden: hidden.map(|b| b == 1),
                label: None,
                lobby: Default::default(),
            });
            assert_eq!(decode(&raw_update(open, hidden), &options()), Ok((Cid(31), expected)));
        }
    }

    #[test]
    fn an_unknown_toggle_value_is_bad_input_under_the_requests_cid() {
        let (cid, error) = decode(&raw_update(Some(1), Some(9)), &options()).unwrap_err();
        assert_eq!((cid, &error), (Cid(31), &DecodeError::UnknownEnumValue { field: "hidden", value: 9 }));
        assert_eq!(error.code(), super::super::ErrorCode::BadInput);
    }
}
