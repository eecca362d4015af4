//! Dispatch: frame → codec → core → outputs. The one place in `net` that calls the wire codec
//! and the core: it decodes a frame with the connection's codec, hands the request to the core,
//! and executes the core's outputs in order, a reply to its requester and an event encoded and
//! framed once, with a refcounted clone queued for each recipient. Sessions that stopped being
//! open meanwhile (a slow consumer cut off mid-fan-out) are disconnected from the core here too,
//! the core's timers run here when due, and admin requests (`admin.rs`) reach the core here.
//! Messages are counted for `/metrics` by kind as they are queued (`metrics.rs`).

use super::conn::{Phase, Transport};
use super::driver::Driver;
use super::frame;
use super::metrics::{self, Limit, SentKind};
use super::outbound::output_within_limits;
use super::ratelimit::RequestRefusal;
use crate::core::{AdminReply, AdminRequest, Cid, CloseReason, ConnectOptions, CoreError, Event, Identity};
use crate::core::{Millis, Output, Reply, SessionId, UserId};
use crate::wire::{self, DecodeError, DecodedRequest, Encoder};
use bytes::Bytes;
use flatbuffers::VerifierOptions;

/// How a connection's messages are encoded. Chosen at the upgrade and kept in the connection's
/// open phase; only FlatBuffers exists today (a second codec joins as a variant).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    FlatBuffers,
}

/// The codecs of the loop, each with its reusable encoder and its decoding bounds.
pub(crate) struct Codecs {
    flatbuffers: Encoder,
    verifier: VerifierOptions,
}

impl Codecs {
    pub fn new(message_bytes_max: usize) -> Codecs {
        Codecs { flatbuffers: Encoder::new(), verifier: wire::verifier_options(message_bytes_max) }
    }

    fn decode(&self, codec: Codec, frame: &Bytes) -> Result<DecodedRequest, (Cid, DecodeError)> {
        match codec {
            Codec::FlatBuffers => wire::decode_request(frame, &self.verifier),
        }
    }

    /// The cid of a frame that will not be decoded (a refused request), or `Cid::NONE`.
    fn peek_cid(&self, codec: Codec, frame: &[u8]) -> Cid {
        match codec {
            Codec::FlatBuffers => wire::peek_cid(frame, &self.verifier),
        }
    }

    fn reply(&mut self, codec: Codec, cid: Cid, result: &Result<Reply, CoreError>) -> Bytes {
        match codec {
            Codec::FlatBuffers => frame::binary(self.flatbuffers.reply(cid, result)),
        }
    }

    fn event(&mut self, codec: Codec, event: &Event) -> Bytes {
        match codec {
            Codec::FlatBuffers => frame::binary(self.flatbuffers.event(event)),
        }
    }

    fn decode_error(&mut self, codec: Codec, cid: Cid, error: &DecodeError) -> Bytes {
        match codec {
            Codec::FlatBuffers => frame::binary(self.flatbuffers.decode_error(cid, error)),
        }
    }

    fn refusal(&mut self, codec: Codec, cid: Cid, refusal: &RequestRefusal) -> Bytes {
        match codec {
            Codec::FlatBuffers => frame::binary(self.flatbuffers.error(cid, refusal.code(), &refusal.to_string())),
        }
    }
}

impl<S: Transport> Driver<S> {
    /// A binary frame of an open session: decode, run, answer.
    pub(super) fn dispatch_frame(&mut self, id: SessionId, codec: Codec, frame: &Bytes, now: Millis) {
        match self.codecs.decode(codec, frame) {
            Ok((cid, request)) => {
                self.counters.requests_total += 1;
                self.metrics.received(&request);
                self.core.handle_request(id, cid, request, self.core_now(now), &mut self.outbox);
                self.apply_outputs(now);
            }
            Err((cid, error)) => self.reply_decode_error(id, codec, cid, &error, now),
        }
    }

    /// A frame over the request rate limit: an error reply with its cid, not executed.
    pub(super) fn refuse_rate_limited(&mut self, id: SessionId, codec: Codec, frame: &Bytes, now: Millis) {
        self.counters.rate_limited_total += 1;
        self.metrics.limit_trip(Limit::requests_per_second_max);
        let cid = self.codecs.peek_cid(codec, frame);
        let refusal = RequestRefusal::RateLimited { requests_per_second_max: self.limits.requests_per_second_max };
        self.metrics.error(refusal.code());
        self.metrics.sent(SentKind::Error, 1);
        let framed = self.codecs.refusal(codec, cid, &refusal);
        self.send(id, framed, now);
    }

    /// A text frame (SPEC C-1: binary envelopes only) gets an error reply.
    pub(super) fn answer_text_frame(&mut self, id: SessionId, codec: Codec, now: Millis) {
        self.reply_decode_error(id, codec, Cid::NONE, &DecodeError::TextFrame, now);
    }

    fn reply_decode_error(&mut self, id: SessionId, codec: Codec, cid: Cid, error: &DecodeError, now: Millis) {
        self.counters.decode_errors_total += 1;
        self.metrics.error(error.code());
        self.metrics.sent(SentKind::Error, 1);
        log::trace!("session {id}: undecodable frame: {error}");
        let framed = self.codecs.decode_error(codec, cid, error);
        self.send(id, framed, now);
    }

    /// The upgrade completed: the core learns of the session (its welcome goes out now).
    pub(super) fn connect_session(&mut self, id: SessionId, identity: Identity, options: ConnectOptions, now: Millis) {
        self.core.connect(id, identity, options, self.core_now(now), &mut self.outbox);
        self.apply_outputs(now);
    }

    /// Whether the core admits `user_id` now (not banned): asked before a session is accepted.
    pub(super) fn user_admitted(&self, user_id: &UserId, now: Millis) -> bool {
        self.core.admits(user_id, self.core_now(now))
    }

    /// An admin request for the core; its closes and events go out like a request's.
    pub(super) fn run_admin(&mut self, request: AdminRequest, now: Millis) -> Result<AdminReply, CoreError> {
        let result = self.core.handle_admin(request, self.core_now(now), &mut self.outbox);
        if let Err(CoreError::LimitExceeded(message)) = &result {
            if let Some(limit) = Limit::named_in(message) {
                self.metrics.limit_trip(limit);
            }
        }
        self.apply_outputs(now);
        result
    }

    /// Runs the core's timers when the earliest is due; their outputs go out like a request's.
    pub(super) fn run_core_timers(&mut self, now: Millis) {
        if self.core.poll_timeout().is_some_and(|due| due <= now) {
            self.core.handle_timeout(self.core_now(now), &mut self.outbox);
            self.apply_outputs(now);
        }
    }

    /// Executes the outbox, then disconnects from the core every session that left the open
    /// phase meanwhile (a slow consumer cut off mid-fan-out), until nothing is left.
    pub(super) fn apply_outputs(&mut self, now: Millis) {
        loop {
            if self.outbox.is_empty() {
                let Some(session) = self.pending_disconnects.pop() else {
                    return;
                };
                self.core.disconnect(session, self.core_now(now), &mut self.outbox);
                continue;
            }
            let mut outbox = std::mem::take(&mut self.outbox);
            outbox.drain(|output, recipients| self.execute(output, recipients, now));
            self.outbox = outbox;
        }
    }

    fn execute(&mut self, output: Output, recipients: &[SessionId], now: Millis) {
        match output {
            Output::Reply { to, cid, result } => {
                self.metrics.sent(metrics::reply_kind(&result), 1);
                if let Err(error) = &result {
                    self.metrics.core_error(error);
                }
                self.send_encoded(to, now, |codecs, codec| codecs.reply(codec, cid, &result));
            }
            Output::Event { event, .. } => {
                self.metrics.sent(metrics::event_kind(&event), recipients.len());
                if let Event::PartyDataRefused { error, .. } = &event {
                    self.metrics.core_error(error);
                }
                // Encoded and framed once; each recipient's queue gets a refcounted clone. With a
                // second codec, once per codec in use among the recipients.
                let framed = self.codecs.event(Codec::FlatBuffers, &event);
                for &to in recipients {
                    self.send(to, framed.clone(), now);
                }
            }
            Output::Close { session, reason } => {
                let CloseReason::Policy(text) = reason;
                self.close_with(session, super::ws::CLOSE_POLICY, text, now);
            }
        }
    }

    /// Queues a framed message for an open session; enforces the output limits.
    fn send(&mut self, to: SessionId, framed: Bytes, now: Millis) {
        self.send_encoded(to, now, |_, _| framed);
    }

    /// Encodes with the session's own codec and queues the frame, with one lookup of the
    /// connection; a session that is closing or gone gets nothing (the core hears of it through
    /// `pending_disconnects`).
    fn send_encoded(&mut self, to: SessionId, now: Millis, encode: impl FnOnce(&mut Codecs, Codec) -> Bytes) {
        let Some(conn) = self.conns.get_mut(to) else {
            return;
        };
        let Phase::Open { codec, .. } = conn.phase else {
            return;
        };
        conn.out.push(encode(&mut self.codecs, codec));
        self.counters.frames_out_total += 1;
        if !output_within_limits(conn, &self.limits, &mut self.flush_list, now) {
            self.cut_off_slow_consumer(to, now);
        }
    }
}
