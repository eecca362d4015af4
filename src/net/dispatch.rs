//! Dispatch: frame → codec → core → outputs. The one place in `net` that calls the wire codec
//! and the core: it decodes a frame with the connection's codec, hands the request to the core,
//! and executes the core's outputs in order, a reply to its requester and an event encoded and
//! framed once, with a refcounted clone queued for each recipient. Sessions that stopped being
//! open meanwhile (a slow consumer cut off mid-fan-out) are disconnected from the core here too,
//! the core's timers run here when due, and admin requests (`admin.rs`) reach the core here.
//! Messages are counted for `/metrics` by kind as they are queued (`metrics.rs`): a recipient
//! whose codec sends nothing for an output (a JSON session gets no welcome and no huddle-only
//! event) or that is no longer open is sent nothing, and nothing is counted for it.

use super::conn::{ConnTable, Phase, Transport};
use super::driver::Driver;
use super::frame;
use super::metrics::{self, Limit, SentKind};
use super::outbound::output_within_limits;
use super::ratelimit::RequestRefusal;
use crate::core::{AdminReply, AdminRequest, Cid, CloseReason, ConnectOptions, CoreError, ErrorCode, Event};
use crate::core::{Identity, Millis, Output, SessionId, UserId};
use crate::wire::{ClientFrame, CodecKind, Codecs, ConnCodec, DecodeError, Frame};
use bytes::Bytes;

/// Frames of one event, encoded at most once per codec in use among its recipients. Kept by the
/// driver for its buffers, so fan-out allocates no list of its own once warm.
#[derive(Default)]
pub(crate) struct EventFrames {
    by_kind: [Vec<Bytes>; CodecKind::ALL.len()],
    encoded: [bool; CodecKind::ALL.len()],
}

impl EventFrames {
    fn clear(&mut self) {
        for frames in &mut self.by_kind {
            frames.clear();
        }
        self.encoded = [false; CodecKind::ALL.len()];
    }
}

impl<S: Transport> Driver<S> {
    /// A message of an open session: decode with its codec, run, answer.
    pub(super) fn dispatch_frame(&mut self, id: SessionId, message: ClientFrame<'_>, now: Millis) {
        let Some(codec) = open_codec(&mut self.conns, id) else {
            return;
        };
        match self.codecs.decode_request(codec, message) {
            Ok((cid, request)) => {
                self.counters.requests_total += 1;
                self.metrics.received(&request);
                self.core.handle_request(id, cid, request, self.core_now(now), &mut self.outbox);
                self.apply_outputs(now);
            }
            Err((cid, error)) => self.reply_decode_error(id, cid, &error, now),
        }
    }

    /// A message over the request rate limit: an error reply with its cid, not executed.
    pub(super) fn refuse_rate_limited(&mut self, id: SessionId, message: ClientFrame<'_>, now: Millis) {
        self.counters.rate_limited_total += 1;
        self.metrics.limit_trip(Limit::requests_per_second_max);
        let Some(codec) = open_codec(&mut self.conns, id) else {
            return;
        };
        let cid = self.codecs.peek_cid(codec, message);
        let refusal = RequestRefusal::RateLimited { requests_per_second_max: self.limits.requests_per_second_max };
        self.send_error(id, cid, refusal.code(), &refusal.to_string(), now);
    }

    fn reply_decode_error(&mut self, id: SessionId, cid: Cid, error: &DecodeError, now: Millis) {
        self.counters.decode_errors_total += 1;
        log::trace!("session {id}: undecodable message: {error}");
        self.send_error(id, cid, error.code(), &error.to_string(), now);
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
                if let Err(error) = &result {
                    self.metrics.core_refusal(error);
                }
                let sent =
                    self.send_encoded(to, now, |codecs, codec, emit| codecs.encode_reply(codec, cid, &result, emit));
                if sent {
                    self.metrics.sent(metrics::reply_kind(&result), 1);
                    if let Err(error) = &result {
                        self.metrics.error(error.code(), 1);
                    }
                }
            }
            Output::Event { event, .. } => {
                if let Event::PartyDataRefused { error, .. } = &event {
                    self.metrics.core_refusal(error);
                }
                let sent_to = self.fan_out(&event, recipients, now);
                self.metrics.sent(metrics::event_kind(&event), sent_to);
                if let Event::PartyDataRefused { error, .. } = &event {
                    self.metrics.error(error.code(), sent_to);
                }
            }
            Output::Close { session, reason } => {
                let CloseReason::Policy(text) = reason;
                self.close_with(session, super::ws::CLOSE_POLICY, text, now);
            }
        }
    }

    /// An event to every recipient: encoded and framed once per codec in use among them (the
    /// first recipient of a codec pays for it), each recipient's queue gets refcounted clones.
    /// An event with one recipient (a welcome) shows the codec that recipient's state. Returns
    /// how many recipients were sent frames.
    fn fan_out(&mut self, event: &Event, recipients: &[SessionId], now: Millis) -> usize {
        let mut frames = std::mem::take(&mut self.event_frames);
        frames.clear();
        let only_one = recipients.len() == 1;
        let mut sent_to = 0;
        for &to in recipients {
            let Some(conn) = self.conns.get_mut(to) else {
                continue;
            };
            let Phase::Open { codec, .. } = &mut conn.phase else {
                continue;
            };
            let kind = codec.kind().index();
            if !frames.encoded[kind] {
                frames.encoded[kind] = true;
                self.counters.events_encoded_total += 1;
                let list = &mut frames.by_kind[kind];
                let kind = codec.kind();
                let sole = only_one.then_some(codec);
                self.codecs.encode_event(kind, event, sole, &mut |frame: Frame<'_>| list.push(frame::framed(frame)));
            }
            if frames.by_kind[kind].is_empty() {
                continue; // this codec sends nothing for this event
            }
            for framed in &frames.by_kind[kind] {
                conn.out.push(framed.clone());
                self.counters.frames_out_total += 1;
            }
            sent_to += 1;
            if !output_within_limits(conn, &self.limits, &mut self.flush_list, now) {
                self.cut_off_slow_consumer(to, now);
            }
        }
        self.event_frames = frames;
        sent_to
    }

    /// An error of a layer before the core (decode, rate limit) to one open session, in its
    /// codec; counted when sent.
    fn send_error(&mut self, to: SessionId, cid: Cid, code: ErrorCode, message: &str, now: Millis) {
        if self.send_encoded(to, now, |codecs, codec, emit| codecs.encode_error(codec, cid, code, message, emit)) {
            self.metrics.error(code, 1);
            self.metrics.sent(SentKind::Error, 1);
        }
    }

    /// Encodes with the session's own codec and queues the frames, with one lookup of the
    /// connection; a session that is closing or gone gets nothing (the core hears of it through
    /// `pending_disconnects`). Returns whether any frame was queued.
    fn send_encoded(
        &mut self,
        to: SessionId,
        now: Millis,
        encode: impl FnOnce(&mut Codecs, &mut ConnCodec, &mut dyn FnMut(Frame<'_>)),
    ) -> bool {
        let Some(conn) = self.conns.get_mut(to) else {
            return false;
        };
        let Phase::Open { codec, .. } = &mut conn.phase else {
            return false;
        };
        let out = &mut conn.out;
        let mut frames = 0;
        encode(&mut self.codecs, codec, &mut |frame: Frame<'_>| {
            out.push(frame::framed(frame));
            frames += 1;
        });
        if frames == 0 {
            return false;
        }
        self.counters.frames_out_total += frames;
        if !output_within_limits(conn, &self.limits, &mut self.flush_list, now) {
            self.cut_off_slow_consumer(to, now);
        }
        true
    }
}

/// The codec state of an open session (borrowing the connection table alone, so the driver's
/// codecs stay usable beside it).
fn open_codec<S>(conns: &mut ConnTable<S>, id: SessionId) -> Option<&mut ConnCodec> {
    match &mut conns.get_mut(id)?.phase {
        Phase::Open { codec, .. } => Some(codec),
        _ => None,
    }
}
