//! Connection-level messages (SPEC C-4, C-5): the welcome, error replies and error events, and
//! application-level ping/pong.

use super::dispatch::{Claim, Claims};
use super::fields::decode_presence;
use super::{errors, fb, Body, DecodeError, Encoder, ErrorReply, ServerMessage};
use crate::core::{Cid, ErrorCode, Event, Presence, Reply, Request};
use bytes::Bytes;

pub(super) const CLAIMS: Claims = &[
    (fb::Message::Welcome, Claim::Server(decode_welcome)),
    (fb::Message::Error, Claim::Server(decode_error)),
    (fb::Message::Ping, Claim::Request(decode_ping)),
    (fb::Message::Pong, Claim::Server(decode_pong)),
];

fn decode_ping(_: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    Ok(Request::Ping)
}

fn decode_welcome(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let welcome = envelope.message_as_welcome().ok_or(DecodeError::MissingField("message"))?;
    let presence = decode_presence(welcome.presence().ok_or(DecodeError::MissingField("presence"))?)?;
    Ok(ServerMessage::Event(Event::Welcome { presence }))
}

/// An error with a cid answers that request; one with cid 0 answers none that had a cid (P-9's
/// refused fire-and-forget data, or a frame whose cid could not be read), so it is an event.
fn decode_error(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let error = envelope.message_as_error().ok_or(DecodeError::MissingField("message"))?;
    let error = ErrorReply {
        code: errors::from_fb_code(error.code()),
        message: error.message().unwrap_or_default().to_owned(),
    };
    Ok(match Cid(envelope.cid()) {
        Cid::NONE => ServerMessage::ErrorEvent(error),
        cid => ServerMessage::Reply { cid, result: Err(error) },
    })
}

fn decode_pong(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(Reply::Pong) })
}

impl Encoder {
    pub(super) fn ping(&mut self) -> Body {
        (fb::Message::Ping, fb::Ping::create(&mut self.builder, &fb::PingArgs {}).as_union_value())
    }

    pub(super) fn pong(&mut self) -> Body {
        (fb::Message::Pong, fb::Pong::create(&mut self.builder, &fb::PongArgs {}).as_union_value())
    }

    pub(super) fn welcome(&mut self, presence: &Presence) -> Body {
        let presence = self.presence(presence);
        let server_version = self.builder.create_string(env!("CARGO_PKG_VERSION"));
        let welcome = fb::Welcome::create(
            &mut self.builder,
            &fb::WelcomeArgs { presence: Some(presence), server_version: Some(server_version) },
        );
        (fb::Message::Welcome, welcome.as_union_value())
    }

    pub(super) fn error_body(&mut self, code: ErrorCode, text: &str) -> Body {
        let message = self.builder.create_string(text);
        let error = fb::Error::create(
            &mut self.builder,
            &fb::ErrorArgs { code: errors::fb_code(code), message: Some(message) },
        );
        (fb::Message::Error, error.as_union_value())
    }
}
