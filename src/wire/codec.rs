//! The codec interface: what a connection's WebSocket messages mean, and what the core's outputs
//! look like on that connection. A codec is chosen per connection at the upgrade (huddle's
//! FlatBuffers, or Nakama's JSON: SPEC K-1) and the core never learns which one a session speaks.
//!
//! What the interface allows, because a second codec needs it:
//! - a codec answers in its own frame kind (FlatBuffers binary, JSON text) and reads the kinds
//!   it accepts (FlatBuffers refuses text frames with 104);
//! - one reply may become several frames, or none, or a different shape (Nakama answers a join
//!   with an ack and then a `party` message);
//! - an event is encoded once per codec and the same bytes go to every recipient of that codec;
//!   a codec may send nothing for an event (JSON sessions get no huddle-only events, no welcome);
//! - a codec may remember things about a connection (its `Session` state: the JSON codec keeps
//!   the session's own presence from the welcome to fill Nakama's `self` fields);
//! - decode errors carry the cid when it can be read.

use super::nakama::NakamaJsonCodec;
use super::{decode_request, peek_cid, verifier_options, DecodeError, DecodedRequest, Encoder};
use crate::core::{Cid, CoreError, ErrorCode, Event, Reply};
use crate::limits::Limits;
use bytes::Bytes;
use flatbuffers::VerifierOptions;

/// The kind of WebSocket data message a frame travels in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Binary,
    Text,
}

/// One WebSocket data message from a client, as the driver received it.
#[derive(Copy, Clone, Debug)]
pub enum ClientFrame<'a> {
    /// A binary message. `Bytes`, so payload fields can be sliced out without a copy.
    Binary(&'a Bytes),
    /// A text message (the WebSocket layer has checked that it is UTF-8).
    Text(&'a str),
}

/// One frame a codec produced. `payload` is borrowed from the codec's scratch buffer and valid
/// only during the `emit` call: the driver frames it (as `kind`) before returning.
#[derive(Copy, Clone, Debug)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub payload: &'a [u8],
}

/// Where a codec puts the frames it produces, in the order they must be sent.
pub type Emit<'e> = dyn FnMut(Frame<'_>) + 'e;

/// A wire format for client connections. One instance serves every connection of its kind
/// (its scratch buffers are reused across messages); what it must remember about one connection
/// lives in that connection's [`Codec::Session`].
pub trait Codec {
    /// What this codec remembers about one connection, from the upgrade to the close.
    type Session: Default;

    /// Decodes one data message into its cid and request. On failure: the cid when it could be
    /// read (else [`Cid::NONE`]) and what was wrong, to be answered with [`Codec::encode_error`].
    /// A request sent with cid 0 is refused with 101 unless it is party data (P-9).
    fn decode_request(
        &mut self,
        session: &mut Self::Session,
        message: ClientFrame<'_>,
    ) -> Result<DecodedRequest, (Cid, DecodeError)>;

    /// The cid of a message the driver refuses without decoding it (the request rate limit), or
    /// [`Cid::NONE`] when it cannot be read. Bounded work whatever the message holds.
    fn peek_cid(&mut self, session: &mut Self::Session, message: ClientFrame<'_>) -> Cid;

    /// The core's reply to request `cid` of this connection, as zero or more frames.
    fn encode_reply(
        &mut self,
        session: &mut Self::Session,
        cid: Cid,
        result: &Result<Reply, CoreError>,
        emit: &mut Emit<'_>,
    );

    /// An error from a layer that refused a message before the core saw it: a decode error
    /// (`error.code()`, `error.to_string()`) or a rate-limit refusal. `cid` may be 0.
    fn encode_error(
        &mut self,
        session: &mut Self::Session,
        cid: Cid,
        code: ErrorCode,
        message: &str,
        emit: &mut Emit<'_>,
    );

    /// An event, encoded once for every recipient that speaks this codec: the frames must not
    /// depend on who receives them, except through `sole`, which is the recipient's session
    /// state when the event has exactly one recipient (the welcome always has). May emit nothing.
    fn encode_event(&mut self, event: &Event, sole: Option<&mut Self::Session>, emit: &mut Emit<'_>);
}

/// huddle's own protocol: binary FlatBuffers envelopes (`schema/huddle.fbs`). Keeps nothing per
/// connection; its encoder's one builder is reused for every frame.
pub struct FlatBuffersCodec {
    encoder: Encoder,
    verifier: VerifierOptions,
}

impl FlatBuffersCodec {
    /// `message_bytes_max` bounds what the verifier walks (see [`verifier_options`]).
    pub fn new(message_bytes_max: usize) -> FlatBuffersCodec {
        FlatBuffersCodec { encoder: Encoder::new(), verifier: verifier_options(message_bytes_max) }
    }

    /// The encoder, for callers that still use the FlatBuffers functions directly.
    pub fn encoder(&mut self) -> &mut Encoder {
        &mut self.encoder
    }

    pub fn verifier(&self) -> &VerifierOptions {
        &self.verifier
    }
}

fn binary(payload: &[u8]) -> Frame<'_> {
    Frame { kind: FrameKind::Binary, payload }
}

impl Codec for FlatBuffersCodec {
    type Session = ();

    fn decode_request(&mut self, _: &mut (), message: ClientFrame<'_>) -> Result<DecodedRequest, (Cid, DecodeError)> {
        match message {
            ClientFrame::Binary(frame) => decode_request(frame, &self.verifier),
            ClientFrame::Text(_) => Err((Cid::NONE, DecodeError::TextFrame)),
        }
    }

    fn peek_cid(&mut self, _: &mut (), message: ClientFrame<'_>) -> Cid {
        match message {
            ClientFrame::Binary(frame) => peek_cid(frame, &self.verifier),
            ClientFrame::Text(_) => Cid::NONE,
        }
    }

    fn encode_reply(&mut self, _: &mut (), cid: Cid, result: &Result<Reply, CoreError>, emit: &mut Emit<'_>) {
        emit(binary(self.encoder.reply(cid, result)));
    }

    fn encode_error(&mut self, _: &mut (), cid: Cid, code: ErrorCode, message: &str, emit: &mut Emit<'_>) {
        emit(binary(self.encoder.error(cid, code, message)));
    }

    fn encode_event(&mut self, event: &Event, _: Option<&mut ()>, emit: &mut Emit<'_>) {
        emit(binary(self.encoder.event(event)));
    }
}

/// Which codec a connection speaks: chosen at the upgrade, fixed for the connection's life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    FlatBuffers,
    /// Nakama's realtime JSON (SPEC K-1): `?format=json`, or `lang` without `format`.
    NakamaJson,
}

impl CodecKind {
    /// Every kind, in [`CodecKind::index`] order: the driver walks it to encode an event once per
    /// codec in use.
    pub const ALL: &'static [CodecKind] = &[CodecKind::FlatBuffers, CodecKind::NakamaJson];

    /// A dense index (0..ALL.len()) for per-codec arrays in the driver.
    pub fn index(self) -> usize {
        match self {
            CodecKind::FlatBuffers => 0,
            CodecKind::NakamaJson => 1,
        }
    }

    /// The frame kind this codec answers in.
    pub fn frame_kind(self) -> FrameKind {
        match self {
            CodecKind::FlatBuffers => FrameKind::Binary,
            CodecKind::NakamaJson => FrameKind::Text,
        }
    }
}

/// A connection's codec with what that codec remembers about the connection. Lives in the
/// connection's open phase.
#[derive(Debug)]
pub enum ConnCodec {
    FlatBuffers(<FlatBuffersCodec as Codec>::Session),
    NakamaJson(<NakamaJsonCodec as Codec>::Session),
}

impl ConnCodec {
    /// A fresh connection speaking `kind`.
    pub fn new(kind: CodecKind) -> ConnCodec {
        match kind {
            CodecKind::FlatBuffers => ConnCodec::FlatBuffers(()),
            CodecKind::NakamaJson => ConnCodec::NakamaJson(Default::default()),
        }
    }

    pub fn kind(&self) -> CodecKind {
        match self {
            ConnCodec::FlatBuffers(_) => CodecKind::FlatBuffers,
            ConnCodec::NakamaJson(_) => CodecKind::NakamaJson,
        }
    }
}

/// One instance of every codec, owned by the driver, dispatching on a connection's
/// [`ConnCodec`]. See the module docs of `wire` for the calls the driver makes.
pub struct Codecs {
    flatbuffers: FlatBuffersCodec,
    nakama_json: NakamaJsonCodec,
}

impl Codecs {
    /// Every codec bounded by the server's `limits` (frame size; the JSON decoder also checks
    /// what Nakama's pipeline checks before its handlers run, against the same limits).
    pub fn new(limits: &Limits) -> Codecs {
        Codecs {
            flatbuffers: FlatBuffersCodec::new(limits.message_bytes_max),
            nakama_json: NakamaJsonCodec::new(limits),
        }
    }

    pub fn flatbuffers(&mut self) -> &mut FlatBuffersCodec {
        &mut self.flatbuffers
    }

    pub fn decode_request(
        &mut self,
        conn: &mut ConnCodec,
        message: ClientFrame<'_>,
    ) -> Result<DecodedRequest, (Cid, DecodeError)> {
        match conn {
            ConnCodec::FlatBuffers(session) => self.flatbuffers.decode_request(session, message),
            ConnCodec::NakamaJson(session) => self.nakama_json.decode_request(session, message),
        }
    }

    pub fn peek_cid(&mut self, conn: &mut ConnCodec, message: ClientFrame<'_>) -> Cid {
        match conn {
            ConnCodec::FlatBuffers(session) => self.flatbuffers.peek_cid(session, message),
            ConnCodec::NakamaJson(session) => self.nakama_json.peek_cid(session, message),
        }
    }

    pub fn encode_reply(
        &mut self,
        conn: &mut ConnCodec,
        cid: Cid,
        result: &Result<Reply, CoreError>,
        emit: &mut Emit<'_>,
    ) {
        match conn {
            ConnCodec::FlatBuffers(session) => self.flatbuffers.encode_reply(session, cid, result, emit),
            ConnCodec::NakamaJson(session) => self.nakama_json.encode_reply(session, cid, result, emit),
        }
    }

    pub fn encode_error(
        &mut self,
        conn: &mut ConnCodec,
        cid: Cid,
        code: ErrorCode,
        message: &str,
        emit: &mut Emit<'_>,
    ) {
        match conn {
            ConnCodec::FlatBuffers(session) => self.flatbuffers.encode_error(session, cid, code, message, emit),
            ConnCodec::NakamaJson(session) => self.nakama_json.encode_error(session, cid, code, message, emit),
        }
    }

    /// Encodes `event` once for the recipients speaking `kind`. `sole`: the connection of the
    /// event's only recipient, when it has exactly one (it must speak `kind`).
    pub fn encode_event(&mut self, kind: CodecKind, event: &Event, sole: Option<&mut ConnCodec>, emit: &mut Emit<'_>) {
        debug_assert!(sole.as_ref().is_none_or(|conn| conn.kind() == kind), "sole recipient speaks another codec");
        match kind {
            CodecKind::FlatBuffers => {
                let sole = sole.and_then(|conn| match conn {
                    ConnCodec::FlatBuffers(session) => Some(session),
                    _ => None,
                });
                self.flatbuffers.encode_event(event, sole, emit)
            }
            CodecKind::NakamaJson => {
                let sole = sole.and_then(|conn| match conn {
                    ConnCodec::NakamaJson(session) => Some(session),
                    _ => None,
                });
                self.nakama_json.encode_event(event, sole, emit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_server_message, ServerMessage};
    use super::*;
    use crate::core::{PartyEvent, PartyId, PartyRequest, Presence, Request, SessionId, UserId, Username};

    /// Runs `encode` and collects what it emitted.
    fn frames(encode: impl FnOnce(&mut Emit<'_>)) -> Vec<(FrameKind, Vec<u8>)> {
        let mut out = Vec::new();
        encode(&mut |frame: Frame<'_>| out.push((frame.kind, frame.payload.to_vec())));
        out
    }

    fn decode_one(frames: &[(FrameKind, Vec<u8>)]) -> ServerMessage {
        assert_eq!(frames.len(), 1, "FlatBuffers answers with exactly one frame");
        assert_eq!(frames[0].0, FrameKind::Binary);
        decode_server_message(&frames[0].1, &verifier_options(1 << 16)).expect("the codec's frame decodes")
    }

    #[test]
    fn flatbuffers_behind_the_interface_speaks_the_free_functions_bytes() {
        let mut codecs = Codecs::new(&Limits::default());
        let mut conn = ConnCodec::new(CodecKind::FlatBuffers);
        assert_eq!(conn.kind().frame_kind(), FrameKind::Binary);
        let request = Request::Party(PartyRequest::Leave { party_id: PartyId(3) });
        let frame = Bytes::copy_from_slice(Encoder::new().request(Cid(12), &request));
        assert_eq!(codecs.decode_request(&mut conn, ClientFrame::Binary(&frame)), Ok((Cid(12), request)));
        assert_eq!(codecs.peek_cid(&mut conn, ClientFrame::Binary(&frame)), Cid(12));

        let pong = frames(|emit| codecs.encode_reply(&mut conn, Cid(12), &Ok(Reply::Pong), emit));
        assert_eq!(decode_one(&pong), ServerMessage::Reply { cid: Cid(12), result: Ok(Reply::Pong) });
        assert_eq!(pong[0].1, Encoder::new().reply(Cid(12), &Ok(Reply::Pong)));

        let presence =
            Presence { user_id: UserId::new("u"), session_id: SessionId::new(1, 2), username: Username::new("U") };
        let event = Event::Party(PartyEvent::Leader { party_id: PartyId(3), leader: presence, version: 2 });
        let shared = frames(|emit| codecs.encode_event(CodecKind::FlatBuffers, &event, None, emit));
        assert_eq!(decode_one(&shared), ServerMessage::Event(event.clone()));
        let sole = frames(|emit| codecs.encode_event(CodecKind::FlatBuffers, &event, Some(&mut conn), emit));
        assert_eq!(sole, shared, "FlatBuffers events do not depend on their recipients");
    }

    #[test]
    fn flatbuffers_refuses_text_with_104_and_errors_keep_their_cid() {
        let mut codecs = Codecs::new(&Limits::default());
        let mut conn = ConnCodec::new(CodecKind::FlatBuffers);
        let (cid, error) = codecs.decode_request(&mut conn, ClientFrame::Text("{\"ping\":{}}")).unwrap_err();
        assert_eq!((cid, error.code()), (Cid::NONE, ErrorCode::TextFrameUnsupported));
        assert_eq!(codecs.peek_cid(&mut conn, ClientFrame::Text("{\"cid\":\"4\"}")), Cid::NONE);

        let refused =
            frames(|emit| codecs.encode_error(&mut conn, Cid(9), ErrorCode::LimitExceeded, "slow down", emit));
        let ServerMessage::Reply { cid: Cid(9), result: Err(error) } = decode_one(&refused) else {
            panic!("expected the error reply of cid 9")
        };
        assert_eq!((error.code, error.message.as_str()), (ErrorCode::LimitExceeded, "slow down"));
        let unread = frames(|emit| codecs.encode_error(&mut conn, Cid::NONE, ErrorCode::MalformedEnvelope, "x", emit));
        assert!(matches!(decode_one(&unread), ServerMessage::ErrorEvent(e) if e.code == ErrorCode::MalformedEnvelope));
    }

    #[test]
    fn kinds_index_densely_in_order() {
        for (i, kind) in CodecKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(ConnCodec::new(*kind).kind(), *kind);
        }
    }
}
