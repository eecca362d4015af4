//! Party chat on the wire (SPEC L-6): the send request, the sender's reply and every other
//! member's event, and their mirror images for clients. The body is a slice of the request
//! frame (no copy) on the server; the reply and the event encode the same `ChatMessage` table.

use super::dispatch::{Claim, Claims};
use super::fields::{party_id_from_wire, party_id_to_wire, presence_from_wire};
use super::{fb, Body, DecodeError, Encoder, ServerMessage};
use crate::core::{
    ChatKind, ChatMessage, Cid, Event, LobbyEvent, LobbyReply, LobbyRequest, PartyId, Reply, Request, UnixMillis,
};
use bytes::Bytes;
use flatbuffers::WIPOffset;
use std::sync::Arc;

pub(super) const CLAIMS: Claims = &[
    (fb::Message::PartyChatSend, Claim::Request(decode_send)),
    (fb::Message::PartyChatSent, Claim::Server(decode_sent)),
    (fb::Message::PartyChatMessage, Claim::Server(decode_message)),
];

fn kind_to_wire(kind: ChatKind) -> fb::PartyChatKind {
    match kind {
        ChatKind::Text => fb::PartyChatKind::Text,
        ChatKind::Custom => fb::PartyChatKind::Custom,
    }
}

/// `Unset` is a missing field; a value this build does not know is refused rather than guessed.
fn kind_from_wire(kind: fb::PartyChatKind) -> Result<ChatKind, DecodeError> {
    match kind {
        fb::PartyChatKind::Text => Ok(ChatKind::Text),
        fb::PartyChatKind::Custom => Ok(ChatKind::Custom),
        fb::PartyChatKind::Unset => Err(DecodeError::MissingField("kind")),
        other => Err(DecodeError::UnknownEnumValue { field: "kind", value: other.0.into() }),
    }
}

fn decode_send(envelope: &fb::Envelope<'_>, frame: &Bytes) -> Result<Request, DecodeError> {
    let m = envelope.message_as_party_chat_send().ok_or(DecodeError::MissingField("message"))?;
    // The body stays in the frame's buffer: a refcounted slice the reply and event share.
    let body = m.body().map_or_else(Bytes::new, |b| frame.slice_ref(b.bytes()));
    let party_id = party_id_from_wire(m.party_id())?;
    Ok(Request::Lobby(LobbyRequest::ChatSend { party_id, kind: kind_from_wire(m.kind())?, body }))
}

fn message_from_wire(m: fb::PartyChatMessage<'_>) -> Result<ChatMessage, DecodeError> {
    Ok(ChatMessage {
        party_id: party_id_from_wire(m.party_id())?,
        sender: presence_from_wire(m.sender(), "sender")?,
        kind: kind_from_wire(m.kind())?,
        body: Bytes::copy_from_slice(m.body().map(|b| b.bytes()).unwrap_or_default()),
        sequence: m.sequence(),
        sent_at: UnixMillis(m.sent_at()),
    })
}

fn decode_sent(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = envelope.message_as_party_chat_sent().ok_or(DecodeError::MissingField("message"))?;
    let message = message_from_wire(m.message().ok_or(DecodeError::MissingField("message"))?)?;
    let reply = Reply::Lobby(LobbyReply::ChatSent(Arc::new(message)));
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(reply) })
}

fn decode_message(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = envelope.message_as_party_chat_message().ok_or(DecodeError::MissingField("message"))?;
    Ok(ServerMessage::Event(Event::Lobby(LobbyEvent::ChatMessage(Arc::new(message_from_wire(m)?)))))
}

impl Encoder {
    fn chat_message(&mut self, message: &ChatMessage) -> WIPOffset<fb::PartyChatMessage<'static>> {
        let body = self.builder.create_vector(message.body.as_ref());
        let sender = self.presence(&message.sender);
        let id = party_id_to_wire(message.party_id);
        fb::PartyChatMessage::create(
            &mut self.builder,
            &fb::PartyChatMessageArgs {
                party_id: Some(&id),
                sender: Some(sender),
                kind: kind_to_wire(message.kind),
                body: Some(body),
                sequence: message.sequence,
                sent_at: message.sent_at.0,
            },
        )
    }

    /// The sender's reply: the message as the others receive it.
    pub(super) fn chat_sent(&mut self, message: &ChatMessage) -> Body {
        let message = self.chat_message(message);
        let m = fb::PartyChatSent::create(&mut self.builder, &fb::PartyChatSentArgs { message: Some(message) });
        (fb::Message::PartyChatSent, m.as_union_value())
    }

    /// The event every other member session gets.
    pub(super) fn chat_event(&mut self, message: &ChatMessage) -> Body {
        (fb::Message::PartyChatMessage, self.chat_message(message).as_union_value())
    }

    /// A client's send request.
    pub(super) fn chat_send(&mut self, party_id: PartyId, kind: ChatKind, body: &[u8]) -> Body {
        let body = self.builder.create_vector(body);
        let id = party_id_to_wire(party_id);
        let m = fb::PartyChatSend::create(
            &mut self.builder,
            &fb::PartyChatSendArgs { party_id: Some(&id), kind: kind_to_wire(kind), body: Some(body) },
        );
        (fb::Message::PartyChatSend, m.as_union_value())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hand_built, reply_round_trips, request_round_trips};
    use super::super::{decode_request, decode_server_message, verifier_options};
    use super::*;
    use crate::core::{Presence, SessionId, UserId, Username};

    const ID: PartyId = PartyId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);

    fn message(kind: ChatKind, body: &[u8]) -> ChatMessage {
        let sender =
            Presence { user_id: UserId::new("u1"), session_id: SessionId::new(2, 3), username: Username::new("U1") };
        ChatMessage {
            party_id: ID,
            sender,
            kind,
            body: Bytes::copy_from_slice(body),
            sequence: 7,
            sent_at: UnixMillis(9),
        }
    }

    #[test]
    fn the_request_reply_and_event_round_trip() {
        for (kind, body) in [(ChatKind::Text, "héllo".as_bytes()), (ChatKind::Custom, &[0xff, 0, 1][..])] {
            request_round_trips(Request::Lobby(LobbyRequest::ChatSend {
                party_id: ID,
                kind,
                body: Bytes::copy_from_slice(body),
            }));
            reply_round_trips(Reply::Lobby(LobbyReply::ChatSent(Arc::new(message(kind, body)))));
            let event = Event::Lobby(LobbyEvent::ChatMessage(Arc::new(message(kind, body))));
            let frame = Encoder::new().event(&event).to_vec();
            assert_eq!(decode_server_message(&frame, &verifier_options(1 << 20)), Ok(ServerMessage::Event(event)));
        }
    }

    #[test]
    fn the_body_is_a_slice_of_the_frame_and_a_missing_kind_is_named() {
        let request = Request::Lobby(LobbyRequest::ChatSend {
            party_id: ID,
            kind: ChatKind::Text,
            body: Bytes::from_static(b"gg"),
        });
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(4), &request));
        let Ok((_, Request::Lobby(LobbyRequest::ChatSend { body, .. }))) =
            decode_request(&frame, &verifier_options(1 << 20))
        else {
            panic!("a chat request")
        };
        let inside = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(inside.contains(&(body.as_ptr() as usize)), "no copy");

        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let id = party_id_to_wire(ID);
        let m = fb::PartyChatSend::create(
            &mut builder,
            &fb::PartyChatSendArgs { party_id: Some(&id), ..Default::default() },
        );
        let frame = hand_built(builder, 8, fb::Message::PartyChatSend, m.as_union_value());
        assert_eq!(
            decode_request(&frame, &verifier_options(1 << 20)),
            Err((Cid(8), DecodeError::MissingField("kind")))
        );
    }
}
