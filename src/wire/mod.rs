//! The FlatBuffers codec: the only module that knows the schema (`schema/huddle.fbs`). It
//! verifies and decodes a client frame into a typed [`Request`], encodes a reply or an event once
//! into bytes, and does the mirror images of both for clients. Every decode runs the verifier
//! with explicit bounds.
//!
//! # Rooms
//!
//! - One file per message family, as the core has them: `connection.rs` (welcome, errors,
//!   ping/pong), `party.rs`, `status.rs`, `search.rs`, `lobby.rs` (invitations, codes, snapshots). Each lists the union members it claims,
//!   with their decoders; `dispatch.rs` joins the lists into one table indexed by union tag, and a
//!   test fails when a member of the schema's `Message` is claimed by no family or by two.
//! - `envelope.rs`: the file identifier ("HUDL", written on every frame, optional on input) and
//!   reading the cid of a frame whose body does not verify (C-5).
//! - `fields.rs`: field types several families share (presences, party ids, `Toggle`,
//!   `UintValue`); `errors.rs`: [`DecodeError`] and the one mapping of [`ErrorCode`] to the
//!   schema's codes.
//! - `codec.rs`: the [`Codec`] interface a connection's codec implements, and
//!   [`FlatBuffersCodec`], this module behind it.
//! - `nakama/`: Nakama's realtime JSON (SPEC K-1), a second codec behind the same interface.
//!
//! # Codecs per connection
//!
//! The driver owns one [`Codecs`] (one instance of every codec, each with its reusable scratch
//! buffers) and stores a [`ConnCodec`] in each open connection, chosen at the upgrade. Then:
//!
//! - **A data message** (binary or text) from connection `c`:
//!   `codecs.decode_request(&mut c.codec, ClientFrame::Binary(&frame))` (or `Text(&str)`). `Ok((cid,
//!   request))` goes to `core.handle_request`; `Err((cid, error))` is answered with
//!   `codecs.encode_error(&mut c.codec, cid, error.code(), &error.to_string(), emit)`: the cid is
//!   the request's whenever it could be read (C-5), else [`Cid::NONE`].
//! - **A message refused unread** (the request rate limit): `codecs.peek_cid(..)`, then
//!   `encode_error` as above.
//! - **`Output::Reply { to, cid, result }`**: `codecs.encode_reply(&mut conn(to).codec, cid,
//!   &result, emit)`. A reply may become zero, one or several frames (Nakama answers a join with
//!   an ack and a `party` message); send them in order.
//! - **`Output::Event { event, recipients }`**: for each [`CodecKind`] in use among the recipients,
//!   `codecs.encode_event(kind, &event, sole, emit)` once, where `sole` is the connection's
//!   `ConnCodec` when the event has exactly one recipient (a codec may learn from a one-recipient
//!   event: the JSON codec keeps the session's own presence from its welcome) and `None`
//!   otherwise. Frame each emitted
//!   payload once and queue a clone of the framed bytes for every recipient of that codec. A codec
//!   may emit nothing (JSON sessions get no huddle-only events, no welcome).
//!
//! `emit` receives [`Frame`]s borrowed from the codec's scratch buffer: frame each one
//! (`frame.kind` says binary or text) before the call returns, e.g. into a reusable
//! `Vec<Bytes>` the driver drains afterwards. On the party-data path this costs what the free
//! functions cost: one encode into the reused builder, one framed buffer.
//!
//! The free functions ([`decode_request`], [`peek_cid`], [`Encoder`]) stay for the driver until
//! it moves to [`Codecs`], and for clients, benches and the load harness, which speak
//! FlatBuffers only.

#[allow(clippy::all, clippy::pedantic, unsafe_code, unsafe_op_in_unsafe_fn, non_camel_case_types, mismatched_lifetime_syntaxes)]
#[rustfmt::skip]
mod huddle_generated;
mod codec;
mod connection;
mod dispatch;
mod envelope;
mod errors;
mod fields;
mod lobby;
pub mod nakama;
mod party;
mod search;
mod status;

/// Stable error codes (codec-neutral; the schema's `enum ErrorCode` carries the same numbers).
pub use crate::core::ErrorCode;
pub use codec::{ClientFrame, Codec, CodecKind, Codecs, ConnCodec, Emit, FlatBuffersCodec, Frame, FrameKind};
pub use envelope::FILE_IDENTIFIER;
pub use errors::DecodeError;
pub use huddle_generated::huddle::fb;
pub use search::SEARCH_CURSOR_BYTES_MAX;

use crate::core::{Cid, CoreError, Event, Reply, Request};
use bytes::Bytes;
use dispatch::Claim;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, VerifierOptions, WIPOffset};

/// A message body on its way into an envelope: its union tag and offset.
type Body = (fb::Message, WIPOffset<UnionWIPOffset>);

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
/// far enough to read it (else [`Cid::NONE`]) with what was wrong: a frame whose body is broken
/// still gets its error under its own cid (C-5). Takes `Bytes` so that payload fields (party
/// data) can be sliced out of the frame without a copy.
///
/// Every request needs a non-zero cid (101) except party data, which may be sent with cid 0,
/// fire-and-forget (P-9): it decodes as a request with [`Cid::NONE`].
pub fn decode_request(frame: &Bytes, options: &VerifierOptions) -> Result<DecodedRequest, (Cid, DecodeError)> {
    let envelope = envelope::verified(frame, options)?;
    let cid = Cid(envelope.cid());
    let kind = envelope.message_type();
    let claim = dispatch::claim(kind);
    if cid == Cid::NONE && !matches!(claim, Some(Claim::RequestOrFireAndForget(_))) {
        return Err((cid, DecodeError::MissingCid));
    }
    match claim {
        Some(Claim::Request(decode) | Claim::RequestOrFireAndForget(decode)) => {
            decode(&envelope, frame).map(|request| (cid, request)).map_err(|e| (cid, e))
        }
        Some(Claim::Server(_)) => Err((cid, DecodeError::NotARequest(message_name(kind)))),
        None => Err((cid, DecodeError::UnknownMessage(kind.0))),
    }
}

fn message_name(message: fb::Message) -> &'static str {
    message.variant_name().unwrap_or("unknown")
}

/// The cid of a frame, if the envelope verifies far enough to read it (else [`Cid::NONE`]):
/// a request refused unread (rate limit) still gets its reply under its own cid. Verifies only
/// the envelope table and its cid field, so it costs the same whatever the frame carries.
pub fn peek_cid(frame: &[u8], options: &VerifierOptions) -> Cid {
    envelope::read_cid(frame, options).unwrap_or(Cid::NONE)
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
    /// The reply to the request with this cid (never 0).
    Reply {
        cid: Cid,
        result: Result<Reply, ErrorReply>,
    },
    Event(Event),
    /// An `Error` with cid 0: it answers no request that carried a cid. Either fire-and-forget
    /// party data was refused (P-9; the message names the party), or the server could not read the
    /// cid of a frame (C-5), or a text frame was refused (104).
    ErrorEvent(ErrorReply),
}

/// Encodes server and client messages, reusing one builder so steady-state encoding allocates
/// nothing but the output it returns. Every frame carries the file identifier.
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
        let body = match result {
            Ok(Reply::Pong) => self.pong(),
            Ok(Reply::Party(reply)) => self.party_reply(reply),
            Ok(Reply::Status(reply)) => self.status_reply(reply),
            Ok(Reply::Lobby(reply)) => self.lobby_reply(reply),
            Err(error) => self.error_body(error.code(), &error.to_string()),
        };
        self.finish(cid, body)
    }

    /// An error reply for a frame that did not decode.
    pub fn decode_error(&mut self, cid: Cid, error: &DecodeError) -> &[u8] {
        self.error(cid, error.code(), &error.to_string())
    }

    /// An error reply from any layer that refused a request before the core saw it (a decode
    /// error, the driver's rate limit): its code and the message the client reads.
    pub fn error(&mut self, cid: Cid, code: ErrorCode, message: &str) -> &[u8] {
        self.builder.reset();
        let body = self.error_body(code, message);
        self.finish(cid, body)
    }

    /// An event (no cid). Encoded once however many sessions receive it.
    pub fn event(&mut self, event: &Event) -> &[u8] {
        self.builder.reset();
        let body = match event {
            Event::Welcome { presence } => self.welcome(presence),
            Event::Party(event) => self.party_event(event),
            Event::Status(event) => self.status_event(event),
            Event::Lobby(event) => self.lobby_event(event),
            Event::PartyDataRefused { party_id, error } => {
                let text = format!("party data for party {party_id} refused: {error}");
                self.error_body(error.code(), &text)
            }
        };
        self.finish(Cid::NONE, body)
    }

    /// A client's request frame. `Cid::NONE` on party data sends it fire-and-forget (P-9).
    pub fn request(&mut self, cid: Cid, request: &Request) -> &[u8] {
        self.builder.reset();
        let body = match request {
            Request::Ping => self.ping(),
            Request::Party(request) => self.party_request(request),
            Request::Status(request) => self.status_request(request),
            Request::Lobby(request) => self.lobby_request(request),
        };
        self.finish(cid, body)
    }

    fn finish(&mut self, cid: Cid, (kind, message): Body) -> &[u8] {
        let envelope = fb::Envelope::create(
            &mut self.builder,
            &fb::EnvelopeArgs { cid: cid.0, message_type: kind, message: Some(message) },
        );
        self.builder.finish(envelope, Some(FILE_IDENTIFIER));
        self.builder.finished_data()
    }
}

/// Helpers the family files' tests share.
#[cfg(test)]
mod testing {
    use super::*;

    /// A hand-built message body in an envelope, finished without the file identifier (as a
    /// client of the previous schema, or another FlatBuffers library, may write it).
    pub(super) fn hand_built(
        mut builder: FlatBufferBuilder<'_>,
        cid: u64,
        kind: fb::Message,
        body: WIPOffset<UnionWIPOffset>,
    ) -> Bytes {
        let envelope =
            fb::Envelope::create(&mut builder, &fb::EnvelopeArgs { cid, message_type: kind, message: Some(body) });
        builder.finish(envelope, None);
        Bytes::copy_from_slice(builder.finished_data())
    }

    /// Encodes `request` as a client does and checks the server decodes the same value.
    pub(super) fn request_round_trips(request: Request) {
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(77), &request));
        assert_eq!(decode_request(&frame, &verifier_options(1 << 20)), Ok((Cid(77), request.clone())), "{request:?}");
    }

    /// Encodes `reply` as the server does and checks the client decodes the same value.
    pub(super) fn reply_round_trips(reply: Reply) {
        let frame = Encoder::new().reply(Cid(9), &Ok(reply.clone())).to_vec();
        assert_eq!(
            decode_server_message(&frame, &verifier_options(1 << 20)),
            Ok(ServerMessage::Reply { cid: Cid(9), result: Ok(reply.clone()) }),
            "{reply:?}"
        );
    }
}

/// Verifies and decodes one server frame (client side).
pub fn decode_server_message(frame: &[u8], options: &VerifierOptions) -> Result<ServerMessage, DecodeError> {
    let envelope = envelope::verified(frame, options).map_err(|(_, e)| e)?;
    match dispatch::claim(envelope.message_type()) {
        Some(Claim::Server(decode)) => decode(&envelope),
        // A request type, NONE, or a tag this build does not know (a newer server).
        _ => Err(DecodeError::UnknownMessage(envelope.message_type().0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{PartyId, PartyRequest, Presence, SessionId, UserId, Username};
    use testing::hand_built;

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
            let (cid, _) = decode_request(&good.slice(..len), &options()).unwrap_err();
            // A prefix that still holds the envelope table gets its error under cid 1 (C-5).
            assert!(cid == Cid::NONE || cid == Cid(1), "prefix of {len} bytes: {cid:?}");
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
        let (cid, error) = decode_request(&hand_built(builder, 9, fb::Message::Pong, pong), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(9), ErrorCode::NotARequest));
    }

    #[test]
    fn unknown_union_type_from_a_newer_client_is_named() {
        let mut builder = FlatBufferBuilder::new();
        let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
        let (cid, error) = decode_request(&hand_built(builder, 3, fb::Message(200), ping), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(3), ErrorCode::UnknownMessage));
    }

    fn party_data(cid: Cid) -> Bytes {
        let request =
            Request::Party(PartyRequest::Data { party_id: PartyId(5), op_code: 2, data: Bytes::from_static(b"pos") });
        Bytes::copy_from_slice(Encoder::new().request(cid, &request))
    }

    /// A frame whose envelope verifies but whose body does not: party data whose payload length
    /// points past the end of the frame.
    fn broken_body(cid: Cid) -> Bytes {
        let mut frame = party_data(cid).to_vec();
        let payload_at = frame.windows(3).position(|w| w == b"pos").unwrap();
        frame[payload_at - 4..payload_at].copy_from_slice(&1_000_000u32.to_le_bytes());
        Bytes::from(frame)
    }

    #[test]
    fn c5_an_unverifiable_body_is_answered_under_the_envelopes_cid() {
        let (cid, error) = decode_request(&broken_body(Cid(77)), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(77), ErrorCode::MalformedEnvelope), "{error}");
        assert_eq!(peek_cid(&broken_body(Cid(77)), &options()), Cid(77));
        // The same frame with its envelope's vtable offset broken: the cid cannot be read.
        let mut frame = broken_body(Cid(77)).to_vec();
        let table = u32::from_le_bytes(frame[0..4].try_into().unwrap()) as usize;
        frame[table..table + 4].copy_from_slice(&i32::MAX.to_le_bytes());
        let (cid, error) = decode_request(&Bytes::from(frame.clone()), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid::NONE, ErrorCode::MalformedEnvelope));
        assert_eq!(peek_cid(&frame, &options()), Cid::NONE);
    }

    #[test]
    fn p9_party_data_may_go_without_a_cid_and_nothing_else_may() {
        let (cid, request) = decode_request(&party_data(Cid::NONE), &options()).expect("fire-and-forget data");
        assert_eq!(cid, Cid::NONE);
        assert!(matches!(request, Request::Party(PartyRequest::Data { op_code: 2, .. })), "{request:?}");
        for request in [
            Request::Ping,
            Request::Party(PartyRequest::Leave { party_id: PartyId(5) }),
            Request::Party(PartyRequest::MyParties),
            Request::Status(crate::core::StatusRequest::Update { status: None }),
        ] {
            let frame = Bytes::copy_from_slice(Encoder::new().request(Cid::NONE, &request));
            assert_eq!(decode_request(&frame, &options()), Err((Cid::NONE, DecodeError::MissingCid)), "{request:?}");
        }
        // Fire-and-forget data with a broken body: the error can only go out under cid 0.
        let (cid, error) = decode_request(&broken_body(Cid::NONE), &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid::NONE, ErrorCode::MalformedEnvelope));
    }

    #[test]
    fn p9_a_refusal_of_fire_and_forget_data_is_an_error_event_naming_the_party() {
        let party_id = PartyId(0xabc);
        let frame =
            Encoder::new().event(&Event::PartyDataRefused { party_id, error: CoreError::PartyNotMember }).to_vec();
        let Ok(ServerMessage::ErrorEvent(error)) = decode_server_message(&frame, &options()) else {
            panic!("expected an error event");
        };
        assert_eq!(error.code, ErrorCode::PartyNotMember);
        assert!(error.message.contains(&party_id.to_string()), "{}", error.message);
        // An error with a cid stays the reply to that request.
        let frame = Encoder::new().error(Cid(4), ErrorCode::LimitExceeded, "x").to_vec();
        assert!(matches!(
            decode_server_message(&frame, &options()),
            Ok(ServerMessage::Reply { cid: Cid(4), result: Err(_) })
        ));
    }

    #[test]
    fn a_client_refuses_requests_as_server_messages() {
        let frame = Encoder::new().request(Cid(3), &Request::Ping).to_vec();
        assert_eq!(decode_server_message(&frame, &options()), Err(DecodeError::UnknownMessage(fb::Message::Ping.0)));
    }
}
