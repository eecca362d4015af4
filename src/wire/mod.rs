//! The only module that knows the FlatBuffers schema (`schema/huddle.fbs`): verify and decode a
//! client frame into a typed [`Request`], encode a reply or event once into bytes, and the
//! mirror images of both for clients. Every decode runs the verifier with explicit bounds.

#[allow(clippy::all, clippy::pedantic, unsafe_op_in_unsafe_fn, non_camel_case_types, mismatched_lifetime_syntaxes)]
#[rustfmt::skip]
mod huddle_generated;
mod errors;
mod party;
mod status;

/// Stable error codes (codec-neutral; the schema's `enum ErrorCode` carries the same numbers).
pub use crate::core::ErrorCode;
pub use errors::DecodeError;
pub use huddle_generated::huddle::fb;

use crate::core::{Cid, CoreError, Event, Presence, Reply, Request, SessionId, UserId, Username};
use bytes::Bytes;
use flatbuffers::{FlatBufferBuilder, VerifierOptions, WIPOffset};

/// Bounds on what the verifier will walk, derived from the frame-size limit.
pub fn verifier_options(message_bytes_max: usize) -> VerifierOptions {
    VerifierOptions {
        // Our deepest message is envelope -> message -> presence list -> presence.
        max_depth: 8,
        // A request names at most a few thousand ids; tables per frame stay well under this.
        max_tables: 4096,
        // Shared substructures could make a small buffer describe a huge tree; bound the tree.
        max_apparent_size: message_bytes_max.saturating_mul(4),
        ignore_missing_null_terminator: false,
    }
}

/// A frame decoded on the server: its cid and request.
pub type DecodedRequest = (Cid, Request);

/// Verifies and decodes one client frame. On failure returns the cid when the envelope verified
/// far enough to read it (else [`Cid::NONE`]) with what was wrong. Takes `Bytes` so that
/// payload fields (party data) can be sliced out of the frame without a copy.
pub fn decode_request(frame: &Bytes, options: &VerifierOptions) -> Result<DecodedRequest, (Cid, DecodeError)> {
    let envelope = flatbuffers::root_with_opts::<fb::Envelope>(options, frame)
        .map_err(|e| (Cid::NONE, DecodeError::Malformed(e.to_string())))?;
    let cid = Cid(envelope.cid());
    if cid == Cid::NONE {
        return Err((cid, DecodeError::MissingCid));
    }
    let request = match envelope.message_type() {
        fb::Message::Ping => Request::Ping,
        kind @ (fb::Message::StatusUpdate | fb::Message::StatusFollow | fb::Message::StatusUnfollow) => {
            status::decode_request(&envelope, kind).map_err(|e| (cid, e))?
        }
        kind @ (fb::Message::StatusUpdated
        | fb::Message::StatusFollowed
        | fb::Message::StatusUnfollowed
        | fb::Message::StatusPresenceEvent) => return Err((cid, DecodeError::NotARequest(message_name(kind)))),
        fb::Message::Welcome | fb::Message::Error | fb::Message::Pong => {
            return Err((cid, DecodeError::NotARequest(message_name(envelope.message_type()))))
        }
        fb::Message::NONE => return Err((cid, DecodeError::UnknownMessage(0))),
        other => match party::decode_request(&envelope, frame) {
            Some(request) => request.map_err(|e| (cid, e))?,
            None => return Err((cid, DecodeError::UnknownMessage(other.0))),
        },
    };
    Ok((cid, request))
}

fn message_name(message: fb::Message) -> &'static str {
    message.variant_name().unwrap_or("unknown")
}

/// The cid of a frame, if the envelope verifies far enough to read it (else [`Cid::NONE`]):
/// a refused request still gets its reply under its own cid.
pub fn peek_cid(frame: &[u8], options: &VerifierOptions) -> Cid {
    flatbuffers::root_with_opts::<fb::Envelope>(options, frame).map(|e| Cid(e.cid())).unwrap_or(Cid::NONE)
}

/// An error reply as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

/// A decoded server frame, on the client side.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    Reply { cid: Cid, result: Result<Reply, ErrorReply> },
    Event(Event),
}

/// Encodes server and client messages, reusing one builder so steady-state encoding allocates
/// nothing but the output it returns.
pub struct Encoder {
    builder: FlatBufferBuilder<'static>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { builder: FlatBufferBuilder::with_capacity(1024) }
    }

    /// The reply to request `cid`. The returned bytes live until the next call.
    pub fn reply(&mut self, cid: Cid, result: &Result<Reply, CoreError>) -> &[u8] {
        self.builder.reset();
        let (kind, message) = match result {
            Ok(reply) => self.reply_body(reply),
            Err(error) => {
                let text = error.to_string();
                self.error_body(error.code(), &text)
            }
        };
        self.finish(cid, kind, message)
    }

    /// An error reply for a frame that did not decode.
    pub fn decode_error(&mut self, cid: Cid, error: &DecodeError) -> &[u8] {
        self.builder.reset();
        let text = error.to_string();
        let (kind, message) = self.error_body(error.code(), &text);
        self.finish(cid, kind, message)
    }

    /// An error reply from any layer that refused a request before the core saw it (the
    /// driver's rate limit): its code and the message the client reads.
    pub fn error(&mut self, cid: Cid, code: ErrorCode, message: &str) -> &[u8] {
        self.builder.reset();
        let (kind, message) = self.error_body(code, message);
        self.finish(cid, kind, message)
    }

    /// An event (no cid). Encoded once however many sessions receive it.
    pub fn event(&mut self, event: &Event) -> &[u8] {
        self.builder.reset();
        let (kind, message) = match event {
            Event::Welcome { presence } => {
                let presence = self.presence(presence);
                let server_version = self.builder.create_string(env!("CARGO_PKG_VERSION"));
                let welcome = fb::Welcome::create(
                    &mut self.builder,
                    &fb::WelcomeArgs { presence: Some(presence), server_version: Some(server_version) },
                );
                (fb::Message::Welcome, welcome.as_union_value())
            }
            Event::Party(event) => self.party_event(event),
            Event::Status(event) => self.status_event(event),
            Event::PartyDataRefused { party_id, error } => {
                let text = format!("party data for party {party_id} refused: {error}");
                self.error_body(error.code(), &text)
            }
        };
        self.finish(Cid::NONE, kind, message)
    }

    /// A client's request frame.
    pub fn request(&mut self, cid: Cid, request: &Request) -> &[u8] {
        self.builder.reset();
        let (kind, message) = match request {
            Request::Ping => {
                (fb::Message::Ping, fb::Ping::create(&mut self.builder, &fb::PingArgs {}).as_union_value())
            }
            Request::Party(request) => self.party_request(request),
            Request::Status(request) => self.status_request(request),
        };
        self.finish(cid, kind, message)
    }

    fn reply_body(&mut self, reply: &Reply) -> (fb::Message, WIPOffset<flatbuffers::UnionWIPOffset>) {
        match reply {
            Reply::Pong => (fb::Message::Pong, fb::Pong::create(&mut self.builder, &fb::PongArgs {}).as_union_value()),
            Reply::Party(reply) => self.party_reply(reply),
            Reply::Status(reply) => self.status_reply(reply),
        }
    }

    fn error_body(&mut self, code: ErrorCode, text: &str) -> (fb::Message, WIPOffset<flatbuffers::UnionWIPOffset>) {
        let message = self.builder.create_string(text);
        let error = fb::Error::create(
            &mut self.builder,
            &fb::ErrorArgs { code: errors::fb_code(code), message: Some(message) },
        );
        (fb::Message::Error, error.as_union_value())
    }

    fn presence(&mut self, presence: &Presence) -> WIPOffset<fb::Presence<'static>> {
        let user_id = self.builder.create_string(presence.user_id.as_str());
        let username = self.builder.create_string(presence.username.as_str());
        fb::Presence::create(
            &mut self.builder,
            &fb::PresenceArgs {
                user_id: Some(user_id),
                session_id: presence.session_id.to_wire(),
                username: Some(username),
            },
        )
    }

    fn finish(&mut self, cid: Cid, kind: fb::Message, message: WIPOffset<flatbuffers::UnionWIPOffset>) -> &[u8] {
        let envelope = fb::Envelope::create(
            &mut self.builder,
            &fb::EnvelopeArgs { cid: cid.0, message_type: kind, message: Some(message) },
        );
        self.builder.finish(envelope, None);
        self.builder.finished_data()
    }
}

/// Verifies and decodes one server frame (client side).
pub fn decode_server_message(frame: &[u8], options: &VerifierOptions) -> Result<ServerMessage, DecodeError> {
    let envelope = flatbuffers::root_with_opts::<fb::Envelope>(options, frame)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let cid = Cid(envelope.cid());
    let reply = |result| Ok(ServerMessage::Reply { cid, result });
    match envelope.message_type() {
        fb::Message::Welcome => {
            let welcome = envelope.message_as_welcome().ok_or(DecodeError::MissingField("message"))?;
            let presence = decode_presence(welcome.presence().ok_or(DecodeError::MissingField("presence"))?)?;
            Ok(ServerMessage::Event(Event::Welcome { presence }))
        }
        fb::Message::Error => {
            let error = envelope.message_as_error().ok_or(DecodeError::MissingField("message"))?;
            reply(Err(ErrorReply {
                code: errors::from_fb_code(error.code()),
                message: error.message().unwrap_or_default().to_owned(),
            }))
        }
        fb::Message::Pong => reply(Ok(Reply::Pong)),
        kind @ (fb::Message::StatusUpdated | fb::Message::StatusFollowed | fb::Message::StatusUnfollowed) => {
            reply(Ok(Reply::Status(status::decode_reply(&envelope, kind)?)))
        }
        fb::Message::StatusPresenceEvent => Ok(ServerMessage::Event(Event::Status(status::decode_event(&envelope)?))),
        fb::Message::Ping => Err(DecodeError::NotARequest("Ping")),
        other => party::decode_server_message(&envelope).unwrap_or(Err(DecodeError::UnknownMessage(other.0))),
    }
}

/// A presence as requests name it. User ids and usernames come from token claims, so nothing
/// longer than a claim can name a real session: refuse it here, before any rule sees it.
fn decode_presence(presence: fb::Presence<'_>) -> Result<Presence, DecodeError> {
    fn claim<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, DecodeError> {
        let value = value.ok_or(DecodeError::MissingField(field))?;
        if value.len() > UserId::BYTES_MAX {
            return Err(DecodeError::TooLong { field, len: value.len(), max: UserId::BYTES_MAX });
        }
        Ok(value)
    }
    Ok(Presence {
        user_id: UserId::new(claim(presence.user_id(), "presence.user_id")?),
        session_id: SessionId::from_wire(presence.session_id()),
        username: Username::new(claim(presence.username(), "presence.username")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> VerifierOptions {
        verifier_options(16 * 1024)
    }

    #[test]
    fn ping_round_trips_and_pong_reply_decodes() {
        let mut encoder = Encoder::new();
        let frame = Bytes::copy_from_slice(encoder.request(Cid(42), &Request::Ping));
        assert_eq!(decode_request(&frame, &options()), Ok((Cid(42), Request::Ping)));
        let reply = encoder.reply(Cid(42), &Ok(Reply::Pong)).to_vec();
        assert_eq!(
            decode_server_message(&reply, &options()),
            Ok(ServerMessage::Reply { cid: Cid(42), result: Ok(Reply::Pong) })
        );
    }

    #[test]
    fn welcome_event_round_trips() {
        let presence =
            Presence { user_id: UserId::new("u1"), session_id: SessionId::new(3, 9), username: Username::new("Alice") };
        let event = Event::Welcome { presence };
        let frame = Encoder::new().event(&event).to_vec();
        assert_eq!(decode_server_message(&frame, &options()), Ok(ServerMessage::Event(event)));
    }

    #[test]
    fn core_error_becomes_error_reply_with_its_code() {
        let frame = Encoder::new().reply(Cid(5), &Err(CoreError::BadInput("max_size must be 1..=256".into()))).to_vec();
        let Ok(ServerMessage::Reply { cid, result: Err(error) }) = decode_server_message(&frame, &options()) else {
            panic!("expected an error reply");
        };
        assert_eq!(cid, Cid(5));
        assert_eq!(error.code, ErrorCode::BadInput);
        assert!(error.message.contains("max_size"), "{}", error.message);
    }

    #[test]
    fn garbage_and_truncated_frames_are_malformed_not_panics() {
        let good = Bytes::copy_from_slice(Encoder::new().request(Cid(1), &Request::Ping));
        for len in 0..good.len() {
            assert!(decode_request(&good.slice(..len), &options()).is_err(), "prefix of {len} bytes");
        }
        for garbage in [&b"\xff\xff\xff\xff"[..], b"hello world, not flatbuffers", &[0u8; 64]] {
            assert!(decode_request(&Bytes::copy_from_slice(garbage), &options()).is_err());
        }
    }

    #[test]
    fn zero_cid_and_server_only_messages_are_refused_with_their_codes() {
        let mut encoder = Encoder::new();
        let frame = Bytes::copy_from_slice(encoder.request(Cid::NONE, &Request::Ping));
        let (_, error) = decode_request(&frame, &options()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MissingCid);
        let welcome = encoder
            .event(&Event::Welcome {
                presence: Presence {
                    user_id: UserId::new("u"),
                    session_id: SessionId::new(0, 1),
                    username: Username::new("n"),
                },
            })
            .to_vec();
        let welcome = Bytes::from(welcome);
        // An event has cid 0, so the cid check fires first; give it a cid to reach the type check.
        let (_, error) = decode_request(&welcome, &options()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MissingCid);
        let mut builder = FlatBufferBuilder::new();
        let pong = fb::Pong::create(&mut builder, &fb::PongArgs {}).as_union_value();
        let env = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs { cid: 9, message_type: fb::Message::Pong, message: Some(pong) },
        );
        builder.finish(env, None);
        let (cid, error) = decode_request(&Bytes::copy_from_slice(builder.finished_data()), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(9), ErrorCode::NotARequest));
    }

    #[test]
    fn unknown_union_type_from_a_newer_client_is_named() {
        let mut builder = FlatBufferBuilder::new();
        let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
        let env = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs { cid: 3, message_type: fb::Message(200), message: Some(ping) },
        );
        builder.finish(env, None);
        let (cid, error) = decode_request(&Bytes::copy_from_slice(builder.finished_data()), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(3), ErrorCode::UnknownMessage));
    }
}
