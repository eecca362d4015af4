//! The Nakama JSON codec behind the driver's [`Codec`] interface: this module's decoder and
//! encoder, plus what they need to remember about one connection ([`NakamaSession`]).
//!
//! Nakama's `cid` is any string while the core's [`Cid`] is a number, and Nakama's reply shapes
//! depend on the request (a join is an ack and then a `party` message), so a request's
//! [`ReplyTo`] stays with the connection from its decode until the core's one reply to it. The
//! core answers a request before the driver reads the connection's next frame, so one slot is
//! enough. The same holds for a frame refused before the core (a decode error, the rate limit):
//! its `cid` text waits in the session for the error that answers it.

use super::decode::{decode_request, CidText, DecodeFailure, NakamaLimits, NakamaRequest, ReplyTo};
use super::encode::{Frames, NakamaEncoder};
use super::errors::NakamaOp;
use crate::core::{Cid, CoreError, ErrorCode, Event, Presence, Reply, SessionId, UserId, Username};
use crate::limits::Limits;
use crate::wire::codec::{ClientFrame, Codec, Emit, Frame, FrameKind};
use crate::wire::{DecodeError, DecodedRequest};

/// What the JSON codec remembers about one connection.
#[derive(Debug, Default)]
pub struct NakamaSession {
    /// The session's own presence, from its welcome (which JSON sessions do not receive):
    /// Nakama's `party` reply names its recipient as `self`.
    me: Option<Presence>,
    /// The request the core owes a reply to: the `cid` as the client wrote it and the operation
    /// (for the reply's shape and Nakama's error prefix). None for fire-and-forget party data.
    reply_to: Option<ReplyTo>,
    /// The `cid` text of the frame just refused outside the core, for the error answering it.
    refused_cid: CidText,
}

impl NakamaSession {
    /// The session's own presence, once its welcome went through the codec.
    pub fn me(&self) -> Option<&Presence> {
        self.me.as_ref()
    }
}

/// Nakama's realtime JSON: text frames, one `rtapi.Envelope` each. One instance serves every JSON
/// connection; its encoder's buffer is reused for every output.
pub struct NakamaJsonCodec {
    limits: NakamaLimits,
    encoder: NakamaEncoder,
}

impl NakamaJsonCodec {
    pub fn new(limits: &Limits) -> NakamaJsonCodec {
        NakamaJsonCodec { limits: NakamaLimits::new(limits), encoder: NakamaEncoder::new() }
    }

    fn decode_frame(&self, message: ClientFrame<'_>) -> Result<NakamaRequest, DecodeFailure> {
        match message {
            ClientFrame::Text(text) => decode_request(text.as_bytes(), &self.limits),
            ClientFrame::Binary(_) => Err(DecodeFailure::binary_frame()),
        }
    }
}

fn emit_text(frames: Frames<'_>, emit: &mut Emit<'_>) {
    for payload in frames.iter() {
        emit(Frame { kind: FrameKind::Text, payload });
    }
}

impl Codec for NakamaJsonCodec {
    type Session = NakamaSession;

    fn decode_request(
        &mut self,
        session: &mut NakamaSession,
        message: ClientFrame<'_>,
    ) -> Result<DecodedRequest, (Cid, DecodeError)> {
        match self.decode_frame(message) {
            Ok(request) => {
                let cid = request.reply_to.core_cid();
                // Fire-and-forget party data gets no reply: nothing to wait for.
                session.reply_to = (cid != Cid::NONE).then_some(request.reply_to);
                Ok((cid, request.request))
            }
            Err(failure) => {
                let cid = failure.cid.core_cid();
                session.refused_cid = failure.cid;
                Err((cid, DecodeError::Nakama(failure.error)))
            }
        }
    }

    fn peek_cid(&mut self, session: &mut NakamaSession, message: ClientFrame<'_>) -> Cid {
        // The decoder is bounded (frame size, depth) and keeps the cid of a frame that fails
        // later, so it serves as the cid read too; its request is dropped.
        let cid = match self.decode_frame(message) {
            Ok(request) => request.reply_to.cid,
            Err(failure) => failure.cid,
        };
        let core = cid.core_cid();
        session.refused_cid = cid;
        core
    }

    fn encode_reply(
        &mut self,
        session: &mut NakamaSession,
        cid: Cid,
        result: &Result<Reply, CoreError>,
        emit: &mut Emit<'_>,
    ) {
        let reply_to = match session.reply_to.take() {
            Some(reply_to) if reply_to.core_cid() == cid => reply_to,
            // Party data sent without a cid (fire-and-forget, P-9), should the core answer it:
            // an ack is no frame, a refusal a cid-less error, as for Nakama's SDKs.
            None if cid == Cid::NONE => ReplyTo { cid: CidText::Absent, op: NakamaOp::PartyDataSend },
            other => {
                // Invariant: the core answers a request before the connection's next frame is
                // read, so the kept ReplyTo is this reply's. Should that break, the reply still
                // goes out, under the core's cid and without an operation's shape or prefix.
                debug_assert!(false, "reply to cid {} while {other:?} was in flight", cid.0);
                log::error!("JSON session: reply to cid {} does not match the request in flight", cid.0);
                ReplyTo { cid: CidText::Number(cid.0), op: NakamaOp::Ping }
            }
        };
        let fallback;
        let me = match &session.me {
            Some(me) => me,
            None => {
                // Invariant: the welcome (the session's first output) precedes any reply.
                debug_assert!(false, "a JSON session got a reply before its welcome");
                fallback = Presence {
                    user_id: UserId::new(""),
                    session_id: SessionId::new(0, 0),
                    username: Username::new(""),
                };
                &fallback
            }
        };
        emit_text(self.encoder.reply(&reply_to, me, result), emit);
    }

    fn encode_error(
        &mut self,
        session: &mut NakamaSession,
        cid: Cid,
        code: ErrorCode,
        message: &str,
        emit: &mut Emit<'_>,
    ) {
        let mut cid_text = std::mem::take(&mut session.refused_cid);
        if cid_text.core_cid() != cid {
            // Only a refusal that did not go through decode_request or peek_cid lands here.
            cid_text = if cid == Cid::NONE { CidText::Absent } else { CidText::Number(cid.0) };
        }
        emit_text(self.encoder.refusal(&cid_text, code, message), emit);
    }

    fn encode_event(&mut self, event: &Event, sole: Option<&mut NakamaSession>, emit: &mut Emit<'_>) {
        if let (Event::Welcome { presence }, Some(session)) = (event, sole) {
            session.me = Some(presence.clone());
        }
        emit_text(self.encoder.event(event), emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{PartyId, PartyReply, PartyRequest, Request};
    use bytes::Bytes;

    fn texts(encode: impl FnOnce(&mut Emit<'_>)) -> Vec<String> {
        let mut out = Vec::new();
        encode(&mut |frame: Frame<'_>| {
            assert_eq!(frame.kind, FrameKind::Text, "a JSON session gets text frames only");
            out.push(String::from_utf8(frame.payload.to_vec()).expect("UTF-8"));
        });
        out
    }

    fn me() -> Presence {
        Presence { user_id: UserId::new("u"), session_id: SessionId::new(7, 1), username: Username::new("U") }
    }

    #[test]
    fn the_welcome_is_kept_not_sent_and_a_text_cid_comes_back_as_written() {
        let mut codec = NakamaJsonCodec::new(&Limits::default());
        let mut session = NakamaSession::default();
        let welcome = Event::Welcome { presence: me() };
        assert!(texts(|emit| codec.encode_event(&welcome, Some(&mut session), emit)).is_empty());
        assert_eq!(session.me(), Some(&me()));

        let frame = r#"{"cid":"req-a","party_leave":{"party_id":"00000000-0000-0000-0000-000000000003"}}"#;
        let (cid, request) = codec.decode_request(&mut session, ClientFrame::Text(frame)).expect("decodes");
        assert_eq!((cid, request), (Cid(u64::MAX), Request::Party(PartyRequest::Leave { party_id: PartyId(3) })));
        let reply = Ok(Reply::Party(PartyReply::Ok { party_id: PartyId(3) }));
        assert_eq!(texts(|emit| codec.encode_reply(&mut session, cid, &reply, emit)), [r#"{"cid":"req-a"}"#]);
    }

    #[test]
    fn refusals_outside_the_core_keep_the_frames_cid_text() {
        let mut codec = NakamaJsonCodec::new(&Limits::default());
        let mut session = NakamaSession::default();
        // The rate limit: the cid is read, the request is not run, the error carries the cid.
        let cid = codec.peek_cid(&mut session, ClientFrame::Text(r#"{"cid":"x1","ping":{}}"#));
        let refused = texts(|emit| codec.encode_error(&mut session, cid, ErrorCode::LimitExceeded, "slow down", emit));
        assert_eq!(refused, [r#"{"cid":"x1","error":{"code":3,"message":"slow down"}}"#]);

        let binary = Bytes::from_static(b"\x01\x02");
        let (cid, error) = codec.decode_request(&mut session, ClientFrame::Binary(&binary)).unwrap_err();
        assert_eq!(cid, Cid::NONE);
        let answer = texts(|emit| codec.encode_error(&mut session, cid, error.code(), &error.to_string(), emit));
        assert_eq!(
            answer,
            [
                r#"{"error":{"code":3,"message":"binary frames are not supported on a JSON connection; send text frames"}}"#
            ]
        );
    }
}
