//! Lobby messages on the wire (SPEC L-2 invitations, L-3 codes, L-9 snapshots): server-side
//! request decode and reply/event encode, and their mirror images for clients. Strings from
//! clients are bounded before they are copied. The strategies (L-4) and versions (L-9) are
//! fields of the party messages (`party.rs`).
//!
//! Accept and code join reply with `PartyInfo`, invite, cancel and reject with `PartyOk` (the
//! party family encodes and decodes both); the lobby's own replies are the invitation list and
//! the code. Every event here is huddle-only.

use super::dispatch::{Claim, Claims};
use super::fields::{party_id_from_wire, party_id_to_wire, presence_from_wire};
use super::party::{party_info_from_wire, party_summary_from_wire};
use super::{fb, Body, DecodeError, Encoder, ServerMessage};
use crate::core::{
    Cid, Event, InvitationEndReason, LobbyEvent, LobbyReply, LobbyRequest, PartyCode, PartyInvitation, Reply, Request,
    UnixMillis, UserId,
};
use crate::limits::INVITEES_PER_REQUEST_CEILING;
use bytes::Bytes;
use flatbuffers::WIPOffset;

pub(super) const CLAIMS: Claims = &[
    (fb::Message::PartyInvite, Claim::Request(decode_invite)),
    (fb::Message::PartyInvitationCancel, Claim::Request(decode_cancel)),
    (fb::Message::PartyInvitationAccept, Claim::Request(decode_accept)),
    (fb::Message::PartyInvitationReject, Claim::Request(decode_reject)),
    (fb::Message::PartyInvitationList, Claim::Request(decode_list)),
    (fb::Message::PartyCodeGet, Claim::Request(decode_code_get)),
    (fb::Message::PartyCodeRegenerate, Claim::Request(decode_code_regenerate)),
    (fb::Message::PartyJoinByCode, Claim::Request(decode_join_by_code)),
    (fb::Message::PartyInvitationListResult, Claim::Server(decode_list_result)),
    (fb::Message::PartyCode, Claim::Server(decode_code)),
    (fb::Message::PartyInvited, Claim::Server(decode_invited)),
    (fb::Message::PartyInvitationSent, Claim::Server(decode_sent)),
    (fb::Message::PartyInvitationRejected, Claim::Server(decode_rejected)),
    (fb::Message::PartyInvitationEnded, Claim::Server(decode_ended)),
    (fb::Message::PartySnapshot, Claim::Server(decode_snapshot)),
];

fn body<T>(message: Option<T>) -> Result<T, DecodeError> {
    message.ok_or(DecodeError::MissingField("message"))
}

fn lobby(request: LobbyRequest) -> Result<Request, DecodeError> {
    Ok(Request::Lobby(request))
}

/// A user id a request names: copied whatever its length up to a frame's size (the rule names
/// a malformed invitee in its error, so the decoder does not refuse one on its own), absent
/// reads as empty (malformed).
fn user_id(value: Option<&str>) -> UserId {
    UserId::new(value.unwrap_or_default())
}

// ---- requests (server side) ----

fn decode_invite(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_invite())?;
    let ids = m.user_ids();
    let len = ids.map_or(0, |v| v.len());
    // Bounded before anything is copied; the configured (smaller) bound is the rule's.
    if len > INVITEES_PER_REQUEST_CEILING {
        return Err(DecodeError::TooMany { field: "user_ids", len, max: INVITEES_PER_REQUEST_CEILING });
    }
    let user_ids = ids.iter().flatten().map(UserId::new).collect();
    lobby(LobbyRequest::Invite { party_id: party_id_from_wire(m.party_id())?, user_ids })
}

fn decode_cancel(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_invitation_cancel())?;
    let id = m.user_id().ok_or(DecodeError::MissingField("user_id"))?;
    if id.len() > UserId::BYTES_MAX {
        return Err(DecodeError::TooLong { field: "user_id", len: id.len(), max: UserId::BYTES_MAX });
    }
    lobby(LobbyRequest::CancelInvitation { party_id: party_id_from_wire(m.party_id())?, user_id: user_id(Some(id)) })
}

fn decode_accept(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_invitation_accept())?;
    lobby(LobbyRequest::AcceptInvitation { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_reject(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_invitation_reject())?;
    lobby(LobbyRequest::RejectInvitation { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_list(_: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    lobby(LobbyRequest::Invitations)
}

fn decode_code_get(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_code_get())?;
    lobby(LobbyRequest::CodeGet { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_code_regenerate(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_code_regenerate())?;
    lobby(LobbyRequest::CodeRegenerate { party_id: party_id_from_wire(m.party_id())? })
}

fn decode_join_by_code(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = body(envelope.message_as_party_join_by_code())?;
    let code = m.code().ok_or(DecodeError::MissingField("code"))?;
    // Longer text cannot be a code: refused before it is copied, and not a miss.
    if code.len() > PartyCode::TEXT_BYTES_MAX {
        return Err(DecodeError::TooLong { field: "code", len: code.len(), max: PartyCode::TEXT_BYTES_MAX });
    }
    lobby(LobbyRequest::JoinByCode { code: code.to_owned() })
}

// ---- replies and events (client side) ----

fn reply(envelope: &fb::Envelope<'_>, reply: LobbyReply) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(Reply::Lobby(reply)) })
}

fn event(event: LobbyEvent) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Event(Event::Lobby(event)))
}

fn invitation_from_wire(m: fb::PartyInvitation<'_>) -> Result<PartyInvitation, DecodeError> {
    Ok(PartyInvitation {
        party: party_summary_from_wire(m.party().ok_or(DecodeError::MissingField("party"))?)?,
        inviter: presence_from_wire(m.inviter(), "inviter")?,
        expires_at: UnixMillis(m.expires_at()),
    })
}

fn decode_list_result(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_invitation_list_result())?;
    let invitations = m.invitations().iter().flatten().map(invitation_from_wire).collect::<Result<_, _>>()?;
    reply(envelope, LobbyReply::Invitations(invitations))
}

fn decode_code(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_code())?;
    let text = m.code().unwrap_or_default();
    let code = PartyCode::parse(text).ok_or(DecodeError::MissingField("code"))?;
    reply(envelope, LobbyReply::Code { party_id: party_id_from_wire(m.party_id())?, code })
}

fn decode_invited(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_invited())?;
    let invitation = m.invitation().ok_or(DecodeError::MissingField("invitation"))?;
    event(LobbyEvent::Invited(Box::new(invitation_from_wire(invitation)?)))
}

fn decode_sent(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_invitation_sent())?;
    event(LobbyEvent::InvitationSent {
        party_id: party_id_from_wire(m.party_id())?,
        invitee: user_id(m.invitee()),
        inviter: presence_from_wire(m.inviter(), "inviter")?,
        expires_at: UnixMillis(m.expires_at()),
    })
}

fn decode_rejected(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_invitation_rejected())?;
    event(LobbyEvent::InvitationRejected { party_id: party_id_from_wire(m.party_id())?, invitee: user_id(m.invitee()) })
}

fn decode_ended(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_invitation_ended())?;
    let reason = match m.reason() {
        fb::PartyInvitationEndReason::Accepted => InvitationEndReason::Accepted,
        fb::PartyInvitationEndReason::Rejected => InvitationEndReason::Rejected,
        fb::PartyInvitationEndReason::Cancelled => InvitationEndReason::Cancelled,
        fb::PartyInvitationEndReason::Expired => InvitationEndReason::Expired,
        fb::PartyInvitationEndReason::PartyGone => InvitationEndReason::PartyGone,
        other => return Err(DecodeError::UnknownEnumValue { field: "reason", value: other.0.into() }),
    };
    event(LobbyEvent::InvitationEnded {
        party_id: party_id_from_wire(m.party_id())?,
        invitee: user_id(m.invitee()),
        reason,
    })
}

fn decode_snapshot(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = body(envelope.message_as_party_snapshot())?;
    event(LobbyEvent::Snapshot(Box::new(party_info_from_wire(m.party().ok_or(DecodeError::MissingField("party"))?)?)))
}

// ---- encoding ----

fn reason_to_wire(reason: InvitationEndReason) -> fb::PartyInvitationEndReason {
    match reason {
        InvitationEndReason::Accepted => fb::PartyInvitationEndReason::Accepted,
        InvitationEndReason::Rejected => fb::PartyInvitationEndReason::Rejected,
        InvitationEndReason::Cancelled => fb::PartyInvitationEndReason::Cancelled,
        InvitationEndReason::Expired => fb::PartyInvitationEndReason::Expired,
        InvitationEndReason::PartyGone => fb::PartyInvitationEndReason::PartyGone,
    }
}

impl Encoder {
    fn invitation(&mut self, invitation: &PartyInvitation) -> WIPOffset<fb::PartyInvitation<'static>> {
        let party = self.party_summary(&invitation.party);
        let inviter = self.presence(&invitation.inviter);
        fb::PartyInvitation::create(
            &mut self.builder,
            &fb::PartyInvitationArgs {
                party: Some(party),
                inviter: Some(inviter),
                expires_at: invitation.expires_at.0,
            },
        )
    }

    pub(super) fn lobby_reply(&mut self, reply: &LobbyReply) -> Body {
        match reply {
            LobbyReply::Invitations(invitations) => {
                let offsets: Vec<_> = invitations.iter().map(|i| self.invitation(i)).collect();
                let invitations = self.builder.create_vector(&offsets);
                let m = fb::PartyInvitationListResult::create(
                    &mut self.builder,
                    &fb::PartyInvitationListResultArgs { invitations: Some(invitations) },
                );
                (fb::Message::PartyInvitationListResult, m.as_union_value())
            }
            LobbyReply::Code { party_id, code } => {
                let code = self.builder.create_string(code.as_str());
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyCode::create(
                    &mut self.builder,
                    &fb::PartyCodeArgs { party_id: Some(&id), code: Some(code) },
                );
                (fb::Message::PartyCode, m.as_union_value())
            }
        }
    }

    pub(super) fn lobby_event(&mut self, event: &LobbyEvent) -> Body {
        match event {
            LobbyEvent::Invited(invitation) => {
                let invitation = self.invitation(invitation);
                let m =
                    fb::PartyInvited::create(&mut self.builder, &fb::PartyInvitedArgs { invitation: Some(invitation) });
                (fb::Message::PartyInvited, m.as_union_value())
            }
            LobbyEvent::InvitationSent { party_id, invitee, inviter, expires_at } => {
                let invitee = self.builder.create_string(invitee.as_str());
                let inviter = self.presence(inviter);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationSent::create(
                    &mut self.builder,
                    &fb::PartyInvitationSentArgs {
                        party_id: Some(&id),
                        invitee: Some(invitee),
                        inviter: Some(inviter),
                        expires_at: expires_at.0,
                    },
                );
                (fb::Message::PartyInvitationSent, m.as_union_value())
            }
            LobbyEvent::InvitationRejected { party_id, invitee } => {
                let invitee = self.builder.create_string(invitee.as_str());
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationRejected::create(
                    &mut self.builder,
                    &fb::PartyInvitationRejectedArgs { party_id: Some(&id), invitee: Some(invitee) },
                );
                (fb::Message::PartyInvitationRejected, m.as_union_value())
            }
            LobbyEvent::InvitationEnded { party_id, invitee, reason } => {
                let invitee = self.builder.create_string(invitee.as_str());
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationEnded::create(
                    &mut self.builder,
                    &fb::PartyInvitationEndedArgs {
                        party_id: Some(&id),
                        invitee: Some(invitee),
                        reason: reason_to_wire(*reason),
                    },
                );
                (fb::Message::PartyInvitationEnded, m.as_union_value())
            }
            LobbyEvent::Snapshot(snapshot) => {
                let party = self.party_info(snapshot);
                let m = fb::PartySnapshot::create(&mut self.builder, &fb::PartySnapshotArgs { party: Some(party) });
                (fb::Message::PartySnapshot, m.as_union_value())
            }
        }
    }

    /// A client's lobby request body.
    pub(super) fn lobby_request(&mut self, request: &LobbyRequest) -> Body {
        match request {
            LobbyRequest::Invite { party_id, user_ids } => {
                let ids: Vec<_> = user_ids.iter().map(|u| self.builder.create_string(u.as_str())).collect();
                let user_ids = self.builder.create_vector(&ids);
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvite::create(
                    &mut self.builder,
                    &fb::PartyInviteArgs { party_id: Some(&id), user_ids: Some(user_ids) },
                );
                (fb::Message::PartyInvite, m.as_union_value())
            }
            LobbyRequest::CancelInvitation { party_id, user_id } => {
                let user_id = self.builder.create_string(user_id.as_str());
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationCancel::create(
                    &mut self.builder,
                    &fb::PartyInvitationCancelArgs { party_id: Some(&id), user_id: Some(user_id) },
                );
                (fb::Message::PartyInvitationCancel, m.as_union_value())
            }
            LobbyRequest::AcceptInvitation { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationAccept::create(
                    &mut self.builder,
                    &fb::PartyInvitationAcceptArgs { party_id: Some(&id) },
                );
                (fb::Message::PartyInvitationAccept, m.as_union_value())
            }
            LobbyRequest::RejectInvitation { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyInvitationReject::create(
                    &mut self.builder,
                    &fb::PartyInvitationRejectArgs { party_id: Some(&id) },
                );
                (fb::Message::PartyInvitationReject, m.as_union_value())
            }
            LobbyRequest::Invitations => {
                let m = fb::PartyInvitationList::create(&mut self.builder, &fb::PartyInvitationListArgs {});
                (fb::Message::PartyInvitationList, m.as_union_value())
            }
            LobbyRequest::CodeGet { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyCodeGet::create(&mut self.builder, &fb::PartyCodeGetArgs { party_id: Some(&id) });
                (fb::Message::PartyCodeGet, m.as_union_value())
            }
            LobbyRequest::CodeRegenerate { party_id } => {
                let id = party_id_to_wire(*party_id);
                let m = fb::PartyCodeRegenerate::create(
                    &mut self.builder,
                    &fb::PartyCodeRegenerateArgs { party_id: Some(&id) },
                );
                (fb::Message::PartyCodeRegenerate, m.as_union_value())
            }
            LobbyRequest::JoinByCode { code } => {
                let code = self.builder.create_string(code);
                let m = fb::PartyJoinByCode::create(&mut self.builder, &fb::PartyJoinByCodeArgs { code: Some(code) });
                (fb::Message::PartyJoinByCode, m.as_union_value())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hand_built, reply_round_trips, request_round_trips};
    use super::super::{decode_request as decode, decode_server_message as decode_server, verifier_options, ErrorCode};
    use super::*;
    use crate::core::{
        CoreError, InviteStrategy, JoinStrategy, LobbySettings, PartyId, PartySnapshot, PartySummary, Presence,
        SessionId, Username,
    };

    const ID: PartyId = PartyId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);

    fn options() -> flatbuffers::VerifierOptions {
        verifier_options(1 << 20)
    }

    fn presence(n: u32) -> Presence {
        Presence {
            user_id: UserId::new(&format!("user{n}")),
            session_id: SessionId::new(n, n + 1),
            username: Username::new(&format!("User{n}")),
        }
    }

    fn invitation() -> PartyInvitation {
        PartyInvitation {
            party: PartySummary {
                party_id: ID,
                open: false,
                hidden: true,
                max_size: 4,
                member_count: 2,
                label: String::new(),
                leader: presence(1),
                lobby: LobbySettings {
                    join_strategy: JoinStrategy::InvitedOnly,
                    invite_strategy: InviteStrategy::LeaderOnly,
                },
                version: 7,
            },
            inviter: presence(2),
            expires_at: UnixMillis(1_767_225_660_000),
        }
    }

    #[test]
    fn every_lobby_request_round_trips() {
        let requests = [
            LobbyRequest::Invite { party_id: ID, user_ids: vec![UserId::new("a"), UserId::new("b")] },
            LobbyRequest::Invite { party_id: ID, user_ids: vec![] },
            LobbyRequest::CancelInvitation { party_id: ID, user_id: UserId::new("a") },
            LobbyRequest::AcceptInvitation { party_id: ID },
            LobbyRequest::RejectInvitation { party_id: ID },
            LobbyRequest::Invitations,
            LobbyRequest::CodeGet { party_id: ID },
            LobbyRequest::CodeRegenerate { party_id: ID },
            LobbyRequest::JoinByCode { code: "abc234".into() },
        ];
        for request in requests {
            request_round_trips(Request::Lobby(request));
        }
    }

    #[test]
    fn every_lobby_reply_round_trips() {
        let code = PartyCode::parse("XYZ234").unwrap();
        for reply in [
            LobbyReply::Invitations(vec![invitation(), invitation()]),
            LobbyReply::Invitations(vec![]),
            LobbyReply::Code { party_id: ID, code },
        ] {
            reply_round_trips(Reply::Lobby(reply));
        }
    }

    #[test]
    fn every_lobby_event_round_trips() {
        let snapshot = PartySnapshot {
            party_id: ID,
            open: true,
            hidden: false,
            max_size: 8,
            label: r#"{"m":1}"#.into(),
            leader: presence(1),
            members: vec![presence(1), presence(3)],
            lobby: LobbySettings {
                join_strategy: JoinStrategy::FriendsOfMembers,
                invite_strategy: InviteStrategy::AllMembers,
            },
            version: 42,
        };
        let events = [
            LobbyEvent::Invited(Box::new(invitation())),
            LobbyEvent::InvitationSent {
                party_id: ID,
                invitee: UserId::new("carol"),
                inviter: presence(2),
                expires_at: UnixMillis(5),
            },
            LobbyEvent::InvitationRejected { party_id: ID, invitee: UserId::new("carol") },
            LobbyEvent::InvitationEnded {
                party_id: ID,
                invitee: UserId::new("c"),
                reason: InvitationEndReason::Accepted,
            },
            LobbyEvent::InvitationEnded {
                party_id: ID,
                invitee: UserId::new("c"),
                reason: InvitationEndReason::Rejected,
            },
            LobbyEvent::InvitationEnded {
                party_id: ID,
                invitee: UserId::new("c"),
                reason: InvitationEndReason::Cancelled,
            },
            LobbyEvent::InvitationEnded {
                party_id: ID,
                invitee: UserId::new("c"),
                reason: InvitationEndReason::Expired,
            },
            LobbyEvent::InvitationEnded {
                party_id: ID,
                invitee: UserId::new("c"),
                reason: InvitationEndReason::PartyGone,
            },
            LobbyEvent::Snapshot(Box::new(snapshot)),
        ];
        let mut encoder = Encoder::new();
        for e in events {
            let frame = encoder.event(&Event::Lobby(e.clone())).to_vec();
            assert_eq!(decode_server(&frame, &options()), Ok(ServerMessage::Event(Event::Lobby(e.clone()))), "{e:?}");
        }
    }

    #[test]
    fn over_long_lists_and_strings_are_refused_before_they_are_copied() {
        let many: Vec<UserId> = (0..=INVITEES_PER_REQUEST_CEILING).map(|i| UserId::new(&i.to_string())).collect();
        let frame = Bytes::copy_from_slice(
            Encoder::new().request(Cid(3), &Request::Lobby(LobbyRequest::Invite { party_id: ID, user_ids: many })),
        );
        let (cid, error) = decode(&frame, &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(3), ErrorCode::LimitExceeded));
        let long_code = LobbyRequest::JoinByCode { code: "A".repeat(PartyCode::TEXT_BYTES_MAX + 1) };
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(4), &Request::Lobby(long_code)));
        assert_eq!(decode(&frame, &options()).unwrap_err().1.code(), ErrorCode::BadInput);
        let long_id = LobbyRequest::CancelInvitation { party_id: ID, user_id: UserId::new(&"u".repeat(129)) };
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(5), &Request::Lobby(long_id)));
        assert_eq!(decode(&frame, &options()).unwrap_err().1.code(), ErrorCode::BadInput);
        // An over-long invitee is the rule's to name (244), not the decoder's.
        let long_invitee = LobbyRequest::Invite { party_id: ID, user_ids: vec![UserId::new(&"u".repeat(300))] };
        request_round_trips(Request::Lobby(long_invitee));
    }

    #[test]
    fn a_code_join_without_a_code_is_named() {
        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let m = fb::PartyJoinByCode::create(&mut builder, &fb::PartyJoinByCodeArgs { code: None }).as_union_value();
        let (cid, error) = decode(&hand_built(builder, 8, fb::Message::PartyJoinByCode, m), &options()).unwrap_err();
        assert_eq!((cid, error), (Cid(8), DecodeError::MissingField("code")));
    }

    #[test]
    fn lobby_errors_get_their_codes() {
        let cases = [
            (CoreError::PartyAlreadyInParty, ErrorCode::PartyAlreadyInParty, 240),
            (CoreError::PartyJoinNotAllowed, ErrorCode::PartyJoinNotAllowed, 241),
            (CoreError::PartyNotInvited, ErrorCode::PartyNotInvited, 242),
            (CoreError::InviteeIsSelf, ErrorCode::InviteeIsSelf, 243),
            (CoreError::InviteeInvalid(String::new()), ErrorCode::InviteeInvalid, 244),
            (CoreError::InviteeInParty(UserId::new("bob")), ErrorCode::InviteeInParty, 245),
            (CoreError::InvitationNotFound, ErrorCode::InvitationNotFound, 246),
            (CoreError::PartyCodeNotFound, ErrorCode::PartyCodeNotFound, 247),
            (CoreError::InvitationCancelNotAllowed, ErrorCode::InvitationCancelNotAllowed, 248),
        ];
        for (error, code, number) in cases {
            assert_eq!(code.number(), number);
            let frame = Encoder::new().reply(Cid(3), &Err(error.clone())).to_vec();
            let Ok(ServerMessage::Reply { result: Err(reply), .. }) = decode_server(&frame, &options()) else {
                panic!("expected an error reply for {error:?}")
            };
            assert_eq!(reply.code, code, "{error:?}");
            assert_eq!(reply.message, error.to_string());
        }
    }
}
