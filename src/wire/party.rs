//! Party messages on the wire (SPEC P-1 … P-12): server-side request decode and reply/event
//! encode, and their mirror images for clients. Party ids travel as `struct PartyId { hi, lo }`
//! (the u128's high and low halves).

use super::{fb, DecodeError, Encoder, ServerMessage};
use crate::core::{
    Cid, Event, PartyEvent, PartyId, PartyListing, PartyReply, PartyRequest, PartySnapshot, PartySummary, Presence,
    RemovedReason, Reply, Request,
};
use crate::limits::SEARCH_QUERY_BYTES_CEILING;
use bytes::Bytes;
use flatbuffers::{UnionWIPOffset, WIPOffset};

type Body = (fb::Message, WIPOffset<UnionWIPOffset>);

/// Longest search cursor the decoder copies. The server's cursors are 44 characters; 64 leaves
/// room for a future format while a longer one is refused as garbage before it is copied.
pub const SEARCH_CURSOR_BYTES_MAX: usize = 64;

pub(super) fn party_id_to_wire(id: PartyId) -> fb::PartyId {
    fb::PartyId::new((id.0 >> 64) as u64, id.0 as u64)
}

fn party_id_from_wire(id: Option<&fb::PartyId>) -> Result<PartyId, DecodeError> {
    let id = id.ok_or(DecodeError::MissingField("party_id"))?;
    Ok(PartyId((u128::from(id.hi()) << 64) | u128::from(id.lo())))
}

fn presence_from_wire(presence: Option<fb::Presence<'_>>, field: &'static str) -> Result<Presence, DecodeError> {
    super::decode_presence(presence.ok_or(DecodeError::MissingField(field))?)
}

fn presences_from_wire(
    list: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::Presence<'_>>>>,
) -> Result<Vec<Presence>, DecodeError> {
    list.map_or(Ok(Vec::new()), |list| list.iter().map(super::decode_presence).collect())
}

fn reason_to_wire(reason: RemovedReason) -> fb::PartyRemovedReason {
    match reason {
        RemovedReason::Kicked => fb::PartyRemovedReason::Kicked,
        RemovedReason::Closed => fb::PartyRemovedReason::Closed,
        RemovedReason::Rejected => fb::PartyRemovedReason::Rejected,
    }
}

/// Decodes a party request (server side). `None`: not a party request.
pub(super) fn decode_request(envelope: &fb::Envelope<'_>, frame: &Bytes) -> Option<Result<Request, DecodeError>> {
    let missing = || DecodeError::MissingField("message");
    let request = (|| -> Result<Option<PartyRequest>, DecodeError> {
        Ok(Some(match envelope.message_type() {
            fb::Message::PartyCreate => {
                let m = envelope.message_as_party_create().ok_or_else(missing)?;
                PartyRequest::Create {
                    open: m.open(),
                    max_size: m.max_size(),
                    label: m.label().unwrap_or_default().to_owned(),
                    hidden: m.hidden(),
                }
            }
            fb::Message::PartyJoin => {
                let m = envelope.message_as_party_join().ok_or_else(missing)?;
                PartyRequest::Join { party_id: party_id_from_wire(m.party_id())? }
            }
            fb::Message::PartyJoinRequestListGet => {
                let m = envelope.message_as_party_join_request_list_get().ok_or_else(missing)?;
                PartyRequest::JoinRequests { party_id: party_id_from_wire(m.party_id())? }
            }
            fb::Message::PartyAccept => {
                let m = envelope.message_as_party_accept().ok_or_else(missing)?;
                PartyRequest::Accept {
                    party_id: party_id_from_wire(m.party_id())?,
                    presence: presence_from_wire(m.presence(), "presence")?,
                }
            }
            fb::Message::PartyRemove => {
                let m = envelope.message_as_party_remove().ok_or_else(missing)?;
                PartyRequest::Remove {
                    party_id: party_id_from_wire(m.party_id())?,
                    presence: presence_from_wire(m.presence(), "presence")?,
                }
            }
            fb::Message::PartyLeave => {
                let m = envelope.message_as_party_leave().ok_or_else(missing)?;
                PartyRequest::Leave { party_id: party_id_from_wire(m.party_id())? }
            }
            fb::Message::PartyPromote => {
                let m = envelope.message_as_party_promote().ok_or_else(missing)?;
                PartyRequest::Promote {
                    party_id: party_id_from_wire(m.party_id())?,
                    presence: presence_from_wire(m.presence(), "presence")?,
                }
            }
            fb::Message::PartyClose => {
                let m = envelope.message_as_party_close().ok_or_else(missing)?;
                PartyRequest::Close { party_id: party_id_from_wire(m.party_id())? }
            }
            fb::Message::PartyDataSend => {
                let m = envelope.message_as_party_data_send().ok_or_else(missing)?;
                // The payload stays in the frame's buffer: a refcounted slice, not a copy (P-9).
                let data = m.data().map_or_else(Bytes::new, |d| frame.slice_ref(d.bytes()));
                PartyRequest::Data { party_id: party_id_from_wire(m.party_id())?, op_code: m.op_code(), data }
            }
            fb::Message::PartyUpdate => {
                let m = envelope.message_as_party_update().ok_or_else(missing)?;
                PartyRequest::Update {
                    party_id: party_id_from_wire(m.party_id())?,
                    open: m.open(),
                    hidden: m.hidden(),
                    label: m.label().map(str::to_owned),
                }
            }
            fb::Message::PartyGet => {
                let m = envelope.message_as_party_get().ok_or_else(missing)?;
                PartyRequest::Get { party_id: party_id_from_wire(m.party_id())? }
            }
            fb::Message::PartyMyList => PartyRequest::MyParties,
            fb::Message::PartySearch => {
                let m = envelope.message_as_party_search().ok_or_else(missing)?;
                // Both strings are bounded before they are copied out of the frame.
                let query = m.query().unwrap_or_default();
                if query.len() > SEARCH_QUERY_BYTES_CEILING {
                    return Err(DecodeError::TooLarge {
                        field: "query",
                        len: query.len(),
                        max: SEARCH_QUERY_BYTES_CEILING,
                    });
                }
                let cursor = m.cursor();
                if let Some(cursor) = cursor.filter(|c| c.len() > SEARCH_CURSOR_BYTES_MAX) {
                    return Err(DecodeError::CursorTooLong { len: cursor.len(), max: SEARCH_CURSOR_BYTES_MAX });
                }
                PartyRequest::Search {
                    query: query.to_owned(),
                    open: m.open(),
                    limit: m.limit(),
                    cursor: cursor.map(str::to_owned),
                }
            }
            fb::Message::PartyInfo
            | fb::Message::PartyJoinPending
            | fb::Message::PartyJoinRequestList
            | fb::Message::PartyOk
            | fb::Message::PartyMyListResult
            | fb::Message::PartyPresence
            | fb::Message::PartyJoinRequest
            | fb::Message::PartyLeader
            | fb::Message::PartyRemoved
            | fb::Message::PartyData
            | fb::Message::PartyUpdated
            | fb::Message::PartyJoined
            | fb::Message::PartySearchResult => {
                return Err(DecodeError::NotARequest(envelope.message_type().variant_name().unwrap_or("unknown")))
            }
            _ => return Ok(None),
        }))
    })();
    match request {
        Ok(Some(request)) => Some(Ok(Request::Party(request))),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

impl Encoder {
    fn presences(
        &mut self,
        presences: &[Presence],
    ) -> WIPOffset<flatbuffers::Vector<'static, flatbuffers::ForwardsUOffset<fb::Presence<'static>>>> {
        let offsets: Vec<_> = presences.iter().map(|p| self.presence(p)).collect();
        self.builder.create_vector(&offsets)
    }

    fn party_info(&mut self, snapshot: &PartySnapshot) -> WIPOffset<fb::PartyInfo<'static>> {
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
            },
        )
    }

    fn party_summary(&mut self, summary: &PartySummary) -> WIPOffset<fb::PartySummary<'static>> {
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
            },
        )
    }

    fn party_listing(&mut self, listing: &PartyListing) -> WIPOffset<fb::PartyListing<'static>> {
        let label = self.builder.create_string(&listing.label);
        let party_id = party_id_to_wire(listing.party_id);
        fb::PartyListing::create(
            &mut self.builder,
            &fb::PartyListingArgs {
                party_id: Some(&party_id),
                open: listing.open,
                max_size: listing.max_size,
                member_count: listing.member_count,
                label: Some(label),
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
            PartyReply::SearchResult { parties, cursor } => {
                let offsets: Vec<_> = parties.iter().map(|p| self.party_listing(p)).collect();
                let parties = self.builder.create_vector(&offsets);
                let cursor = cursor.as_deref().map(|c| self.builder.create_string(c));
                let m = fb::PartySearchResult::create(
                    &mut self.builder,
                    &fb::PartySearchResultArgs { parties: Some(parties), cursor },
                );
                (fb::Message::PartySearchResult, m.as_union_value())
            }
        }
    }

    pub(super) fn party_event(&mut self, event: &PartyEvent) -> Body {
        match event {
            PartyEvent::Presence { party_id, joins, leaves } => {
                let joins = self.presences(joins);
                let leaves = self.presences(leaves);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyPresence::create(
                    &mut self.builder,
                    &fb::PartyPresenceArgs { party_id: Some(&id), joins: Some(joins), leaves: Some(leaves) },
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
            PartyEvent::Leader { party_id, leader } => {
                let leader = self.presence(leader);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyLeader::create(
                    &mut self.builder,
                    &fb::PartyLeaderArgs { party_id: Some(&id), leader: Some(leader) },
                );
                (fb::Message::PartyLeader, m.as_union_value())
            }
            PartyEvent::Removed { party_id, reason } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyRemoved::create(
                    &mut self.builder,
                    &fb::PartyRemovedArgs { party_id: Some(&id), reason: reason_to_wire(*reason) },
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
            PartyEvent::Updated { party_id, open, hidden, max_size, label } => {
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
            PartyRequest::Create { open, max_size, label, hidden } => {
                let label = self.builder.create_string(label);
                let m = fb::PartyCreate::create(
                    &mut self.builder,
                    &fb::PartyCreateArgs { open: *open, max_size: *max_size, label: Some(label), hidden: *hidden },
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
            PartyRequest::Update { party_id, open, hidden, label } => {
                let label = label.as_deref().map(|l| self.builder.create_string(l));
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyUpdate::create(
                    &mut self.builder,
                    &fb::PartyUpdateArgs { party_id: Some(&id), open: *open, hidden: *hidden, label },
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
                let query = self.builder.create_string(query);
                let cursor = cursor.as_deref().map(|c| self.builder.create_string(c));
                let m = fb::PartySearch::create(
                    &mut self.builder,
                    &fb::PartySearchArgs { query: Some(query), open: *open, limit: *limit, cursor },
                );
                (fb::Message::PartySearch, m.as_union_value())
            }
        }
    }
}

fn party_info_from_wire(info: fb::PartyInfo<'_>) -> Result<PartySnapshot, DecodeError> {
    Ok(PartySnapshot {
        party_id: party_id_from_wire(info.party_id())?,
        open: info.open(),
        hidden: info.hidden(),
        max_size: info.max_size(),
        label: info.label().unwrap_or_default().to_owned(),
        leader: presence_from_wire(info.leader(), "leader")?,
        members: presences_from_wire(info.members())?,
    })
}

fn reason_from_wire(reason: fb::PartyRemovedReason) -> Result<RemovedReason, DecodeError> {
    match reason {
        fb::PartyRemovedReason::Kicked => Ok(RemovedReason::Kicked),
        fb::PartyRemovedReason::Closed => Ok(RemovedReason::Closed),
        fb::PartyRemovedReason::Rejected => Ok(RemovedReason::Rejected),
        _ => Err(DecodeError::MissingField("reason")),
    }
}

/// Decodes a party reply or event (client side). `None`: not a party message.
pub(super) fn decode_server_message(envelope: &fb::Envelope<'_>) -> Option<Result<ServerMessage, DecodeError>> {
    let cid = Cid(envelope.cid());
    let missing = || DecodeError::MissingField("message");
    let reply = |r: PartyReply| ServerMessage::Reply { cid, result: Ok(Reply::Party(r)) };
    let event = |e: PartyEvent| ServerMessage::Event(Event::Party(e));
    let message = (|| -> Result<Option<ServerMessage>, DecodeError> {
        Ok(Some(match envelope.message_type() {
            fb::Message::PartyInfo => {
                let m = envelope.message_as_party_info().ok_or_else(missing)?;
                reply(PartyReply::Info(party_info_from_wire(m)?))
            }
            fb::Message::PartyJoinPending => {
                let m = envelope.message_as_party_join_pending().ok_or_else(missing)?;
                reply(PartyReply::JoinPending { party_id: party_id_from_wire(m.party_id())? })
            }
            fb::Message::PartyJoinRequestList => {
                let m = envelope.message_as_party_join_request_list().ok_or_else(missing)?;
                reply(PartyReply::JoinRequests {
                    party_id: party_id_from_wire(m.party_id())?,
                    presences: presences_from_wire(m.presences())?,
                })
            }
            fb::Message::PartyOk => {
                let m = envelope.message_as_party_ok().ok_or_else(missing)?;
                reply(PartyReply::Ok { party_id: party_id_from_wire(m.party_id())? })
            }
            fb::Message::PartyMyListResult => {
                let m = envelope.message_as_party_my_list_result().ok_or_else(missing)?;
                let mut parties = Vec::new();
                for s in m.parties().iter().flatten() {
                    parties.push(PartySummary {
                        party_id: party_id_from_wire(s.party_id())?,
                        open: s.open(),
                        hidden: s.hidden(),
                        max_size: s.max_size(),
                        member_count: s.member_count(),
                        label: s.label().unwrap_or_default().to_owned(),
                        leader: presence_from_wire(s.leader(), "leader")?,
                    });
                }
                reply(PartyReply::MyParties(parties))
            }
            fb::Message::PartySearchResult => {
                let m = envelope.message_as_party_search_result().ok_or_else(missing)?;
                let mut parties = Vec::new();
                for l in m.parties().iter().flatten() {
                    parties.push(PartyListing {
                        party_id: party_id_from_wire(l.party_id())?,
                        open: l.open(),
                        max_size: l.max_size(),
                        member_count: l.member_count(),
                        label: l.label().unwrap_or_default().to_owned(),
                    });
                }
                reply(PartyReply::SearchResult { parties, cursor: m.cursor().map(str::to_owned) })
            }
            fb::Message::PartyPresence => {
                let m = envelope.message_as_party_presence().ok_or_else(missing)?;
                event(PartyEvent::Presence {
                    party_id: party_id_from_wire(m.party_id())?,
                    joins: presences_from_wire(m.joins())?,
                    leaves: presences_from_wire(m.leaves())?,
                })
            }
            fb::Message::PartyJoinRequest => {
                let m = envelope.message_as_party_join_request().ok_or_else(missing)?;
                event(PartyEvent::JoinRequest {
                    party_id: party_id_from_wire(m.party_id())?,
                    presences: presences_from_wire(m.presences())?,
                })
            }
            fb::Message::PartyLeader => {
                let m = envelope.message_as_party_leader().ok_or_else(missing)?;
                event(PartyEvent::Leader {
                    party_id: party_id_from_wire(m.party_id())?,
                    leader: presence_from_wire(m.leader(), "leader")?,
                })
            }
            fb::Message::PartyRemoved => {
                let m = envelope.message_as_party_removed().ok_or_else(missing)?;
                event(PartyEvent::Removed {
                    party_id: party_id_from_wire(m.party_id())?,
                    reason: reason_from_wire(m.reason())?,
                })
            }
            fb::Message::PartyData => {
                let m = envelope.message_as_party_data().ok_or_else(missing)?;
                event(PartyEvent::Data {
                    party_id: party_id_from_wire(m.party_id())?,
                    sender: presence_from_wire(m.sender(), "sender")?,
                    op_code: m.op_code(),
                    data: Bytes::copy_from_slice(m.data().map(|d| d.bytes()).unwrap_or_default()),
                })
            }
            fb::Message::PartyUpdated => {
                let m = envelope.message_as_party_updated().ok_or_else(missing)?;
                event(PartyEvent::Updated {
                    party_id: party_id_from_wire(m.party_id())?,
                    open: m.open(),
                    hidden: m.hidden(),
                    max_size: m.max_size(),
                    label: m.label().unwrap_or_default().to_owned(),
                })
            }
            fb::Message::PartyJoined => {
                let m = envelope.message_as_party_joined().ok_or_else(missing)?;
                event(PartyEvent::Joined(party_info_from_wire(m.party().ok_or(DecodeError::MissingField("party"))?)?))
            }
            _ => return Ok(None),
        }))
    })();
    message.transpose()
}

#[cfg(test)]
mod tests {
    use super::super::{decode_request as decode, decode_server_message as decode_server, verifier_options};
    use super::*;
    use crate::core::{CoreError, SessionId, UserId, Username};

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
        }
    }

    #[test]
    fn every_party_request_round_trips() {
        let requests = vec![
            PartyRequest::Create { open: true, max_size: 300, label: r#"{"a":1}"#.into(), hidden: false },
            PartyRequest::Join { party_id: ID },
            PartyRequest::JoinRequests { party_id: ID },
            PartyRequest::Accept { party_id: ID, presence: presence(4) },
            PartyRequest::Remove { party_id: ID, presence: presence(5) },
            PartyRequest::Leave { party_id: ID },
            PartyRequest::Promote { party_id: ID, presence: presence(6) },
            PartyRequest::Close { party_id: ID },
            PartyRequest::Data { party_id: ID, op_code: -7, data: Bytes::from_static(b"hello party") },
            PartyRequest::Data { party_id: ID, op_code: i64::MAX, data: Bytes::new() },
            PartyRequest::Update { party_id: ID, open: Some(false), hidden: None, label: Some(String::new()) },
            PartyRequest::Update { party_id: ID, open: None, hidden: Some(true), label: None },
            PartyRequest::Get { party_id: ID },
            PartyRequest::MyParties,
            PartyRequest::Search {
                query: r#"+label.mode:ctf -open:false "a b"^2"#.into(),
                open: Some(false),
                limit: Some(0),
                cursor: Some("c".repeat(44)),
            },
            PartyRequest::Search { query: String::new(), open: None, limit: None, cursor: None },
            PartyRequest::Search { query: "x".into(), open: Some(true), limit: Some(u32::MAX), cursor: None },
        ];
        let mut encoder = Encoder::new();
        for request in requests {
            let request = Request::Party(request);
            let frame = Bytes::copy_from_slice(encoder.request(Cid(77), &request));
            assert_eq!(decode(&frame, &options()), Ok((Cid(77), request.clone())), "{request:?}");
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
        let env = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs { cid: 4, message_type: fb::Message::PartyJoin, message: Some(join) },
        );
        builder.finish(env, None);
        let (cid, error) = decode(&Bytes::copy_from_slice(builder.finished_data()), &options()).unwrap_err();
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
        };
        let replies = vec![
            PartyReply::Info(snapshot()),
            PartyReply::JoinPending { party_id: ID },
            PartyReply::JoinRequests { party_id: ID, presences: vec![presence(7), presence(8)] },
            PartyReply::JoinRequests { party_id: ID, presences: vec![] },
            PartyReply::Ok { party_id: ID },
            PartyReply::MyParties(vec![summary.clone(), PartySummary { party_id: PartyId(1), ..summary }]),
            PartyReply::MyParties(vec![]),
            PartyReply::SearchResult {
                parties: vec![
                    PartyListing { party_id: ID, open: true, max_size: 8, member_count: 3, label: r#"{"a":1}"#.into() },
                    PartyListing {
                        party_id: PartyId(2),
                        open: false,
                        max_size: 256,
                        member_count: 256,
                        label: "".into(),
                    },
                ],
                cursor: Some("AQ".into()),
            },
            PartyReply::SearchResult { parties: vec![], cursor: None },
        ];
        let mut encoder = Encoder::new();
        for r in replies {
            let frame = encoder.reply(Cid(9), &Ok(Reply::Party(r.clone()))).to_vec();
            assert_eq!(
                decode_server(&frame, &options()),
                Ok(ServerMessage::Reply { cid: Cid(9), result: Ok(Reply::Party(r.clone())) }),
                "{r:?}"
            );
        }
    }

    #[test]
    fn every_party_event_round_trips() {
        let events = vec![
            PartyEvent::Presence { party_id: ID, joins: vec![presence(1)], leaves: vec![] },
            PartyEvent::Presence { party_id: ID, joins: vec![], leaves: vec![presence(2), presence(3)] },
            PartyEvent::JoinRequest { party_id: ID, presences: vec![presence(4)] },
            PartyEvent::Leader { party_id: ID, leader: presence(5) },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Kicked },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Closed },
            PartyEvent::Removed { party_id: ID, reason: RemovedReason::Rejected },
            PartyEvent::Data { party_id: ID, sender: presence(6), op_code: 42, data: Bytes::from_static(&[0, 1, 2]) },
            PartyEvent::Updated { party_id: ID, open: false, hidden: true, max_size: 256, label: String::new() },
            PartyEvent::Joined(snapshot()),
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
    fn search_strings_are_bounded_before_they_are_copied() {
        use super::super::ErrorCode;
        let mut encoder = Encoder::new();
        let long_query = Request::Party(PartyRequest::Search {
            query: "a".repeat(SEARCH_QUERY_BYTES_CEILING + 1),
            open: None,
            limit: None,
            cursor: None,
        });
        let frame = Bytes::copy_from_slice(encoder.request(Cid(2), &long_query));
        let (cid, error) = decode(&frame, &verifier_options(1 << 20)).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(2), ErrorCode::LimitExceeded), "{error}");
        let long_cursor = Request::Party(PartyRequest::Search {
            query: String::new(),
            open: None,
            limit: None,
            cursor: Some("A".repeat(SEARCH_CURSOR_BYTES_MAX + 1)),
        });
        let frame = Bytes::copy_from_slice(encoder.request(Cid(3), &long_cursor));
        let (cid, error) = decode(&frame, &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(3), ErrorCode::SearchCursorInvalid), "{error}");
    }

    #[test]
    fn server_only_party_messages_are_not_requests() {
        let frame = Encoder::new().reply(Cid(5), &Ok(Reply::Party(PartyReply::Ok { party_id: ID }))).to_vec();
        let (cid, error) = decode(&Bytes::from(frame), &options()).unwrap_err();
        assert_eq!((cid, error), (Cid(5), DecodeError::NotARequest("PartyOk")));
    }
}
