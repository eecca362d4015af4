//! WebSocket glue: the upgrade of a game connection once its head is complete, tungstenite
//! running over the connection's own buffers, what each tungstenite result means for the
//! connection, and close frames.
//!
//! tungstenite never touches the socket: it reads from bytes the driver already read
//! ([`WsIo`]'s reader) and writes its control frames (pongs, close replies) into the
//! connection's outbound queue, behind any frames already queued. So the socket IO is ours, the
//! queue is the one byte-counted truth for the output limits, and broadcast frames pushed
//! pre-framed never interleave with tungstenite's own mid-frame.

use super::conn::{Phase, Transport};
use super::driver::Driver;
use super::handshake::{self, Outcome, Rejection};
use super::inbound::FrameLimit;
use super::outbound::OutboundQueue;
use crate::core::{Identity, Millis, SessionId, UserId, Username};
use crate::limits::Limits;
use crate::wire::{ClientFrame, ConnCodec};
use bytes::{Bytes, BytesMut};
use std::io::{self, Read, Write};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

/// 1008: the peer broke a server policy (a limit).
pub(crate) const CLOSE_POLICY: CloseCode = CloseCode::Policy;
/// 1001: the server is going away, or the peer went silent.
pub(crate) const CLOSE_AWAY: CloseCode = CloseCode::Away;

/// tungstenite's settings, every field explicit: its defaults (128 KiB read buffer, 64 MiB
/// messages, unbounded write buffer) are wrong for many small-message connections.
pub(crate) fn websocket_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        // Write through: our outbound queue is the buffer, tungstenite keeps none.
        .write_buffer_size(0)
        // tungstenite only ever writes control frames (pong, close: at most 131 bytes each).
        .max_write_buffer_size(4096)
        .max_message_size(Some(limits.message_bytes_max))
        .max_frame_size(Some(limits.message_bytes_max))
        // RFC 6455 §5.1: a server must close on an unmasked client frame.
        .accept_unmasked_frames(false)
}

impl<S: Transport> Driver<S> {
    /// A game connection's head is complete: refuse it with an HTTP error, or send the 101,
    /// connect the session to the core and read the frames that came with the head. Returns
    /// false when the head is not complete after all (read more).
    pub(super) fn upgrade_websocket(&mut self, id: SessionId, now: Millis) -> bool {
        let unix_now_s = super::driver::unix_now_s();
        let Some(conn) = self.conns.get_mut(id) else {
            return true;
        };
        let Phase::Head(head) = &mut conn.phase else {
            return true;
        };
        let mut outcome = match head.parse() {
            Ok(Some(parsed)) => handshake::upgrade(&parsed, &self.token_key, unix_now_s),
            Ok(None) => return false,
            Err(error) => handshake::reject(Rejection::from(error)),
        };
        if outcome == Outcome::Incomplete {
            return false;
        }
        // SPEC C-2a. The count comes from the core's session table, and this same step connects
        // the session below: no other upgrade runs between the check and the connect, so a
        // burst of parallel upgrades of one user is decided one at a time and none passes the
        // cap (a handshake still in progress has not shown its token, so it names no user yet).
        let sessions_max = self.limits.sessions_per_user_max;
        if let Outcome::Accept { claims, .. } = &outcome {
            let user_id = UserId::new(&claims.user_id);
            if !self.user_admitted(&user_id, now) {
                // A good token of a banned user (admin API): refused before a session exists.
                outcome = handshake::reject(Rejection::Banned);
            } else if self.core.sessions_of_user_count(&user_id) >= sessions_max {
                self.counters.sessions_per_user_refused_total += 1;
                self.metrics.limit_trip(super::metrics::Limit::sessions_per_user_max);
                outcome = handshake::reject(Rejection::TooManySessions { sessions_per_user_max: sessions_max });
            }
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return true;
        };
        let Phase::Head(head) = &mut conn.phase else {
            return true;
        };
        self.counters.handshakes_open -= 1;
        match outcome {
            Outcome::Incomplete => {}
            Outcome::Reject { response, reason } => {
                self.counters.upgrades_rejected_total += 1;
                if reason == Rejection::TooLarge {
                    self.metrics.limit_trip(super::metrics::Limit::handshake_bytes_max);
                }
                log::debug!("upgrade refused for slot {}: {reason}", id.slot());
                conn.out.push(Bytes::from(response));
                self.enter_closing(id, now);
            }
            Outcome::Accept { response, consumed, claims, options, codec } => {
                let rest = head.take_rest(consumed);
                conn.out.push(Bytes::from(response));
                // Frames that came with the head wait in the connection's stash, so they pass the
                // frame accounting (`inbound.rs`) like every later byte.
                debug_assert!(conn.pending.is_empty(), "no frame bytes before the upgrade");
                conn.pending = BytesMut::from(&rest[..]);
                let ws = WebSocketContext::new(Role::Server, Some(self.ws_config));
                conn.phase = Phase::Open { ws: Box::new(ws), codec: ConnCodec::new(codec) };
                conn.last_heard_at = now;
                self.counters.upgrades_total += 1;
                self.deadlines.keepalives.push(now.saturating_add(self.limits.keepalive_interval_ms), id);
                log::debug!("session {id} open for user {} speaking {codec:?}", claims.user_id);
                let identity =
                    Identity { user_id: UserId::new(&claims.user_id), username: Username::new(&claims.username) };
                let user_id = identity.user_id.clone();
                self.connect_session(id, identity, options, now);
                debug_assert!(self.core.sessions_of_user_count(&user_id) <= sessions_max, "C-2a cap passed");
                self.list_flush(id);
                // Frames may have arrived with the upgrade request.
                self.read_frames(id, now);
            }
        }
        true
    }

    /// Queues a close frame with `reason` (when the connection is open) and moves it to Closing.
    pub(crate) fn close_with(&mut self, id: SessionId, code: CloseCode, reason: &'static str, now: Millis) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Open { ws, .. } = &mut conn.phase {
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = ws.close(&mut WsIo { reader: NoRead, out: &mut conn.out }, Some(frame));
        }
        self.enter_closing(id, now);
    }

    /// Queues a WebSocket ping (keepalive) on an open connection.
    pub(super) fn ping(&mut self, id: SessionId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Phase::Open { ws, .. } = &mut conn.phase {
            let _ = ws.write(&mut WsIo { reader: NoRead, out: &mut conn.out }, Message::Ping(Bytes::new()));
            self.list_flush(id);
        }
    }
}

/// For tungstenite calls that only write (close, ping, flush): there is nothing to read.
pub(crate) struct NoRead;

impl Read for NoRead {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// The stream tungstenite sees: reads come from `reader`, writes (pongs, close frames) land in
/// the outbound queue behind any frames already queued, so our pre-framed events and
/// tungstenite's control frames never interleave mid-frame, and every byte counts against the
/// same output limit.
pub(crate) struct WsIo<'a, R: Read> {
    pub reader: R,
    pub out: &'a mut OutboundQueue,
}

impl<R: Read> Read for WsIo<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl<R: Read> Write for WsIo<'_, R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.push(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one `WebSocketContext::read` result means for the connection.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A binary frame: one request envelope to decode.
    Binary(Bytes),
    /// A text message: the connection's codec decides (FlatBuffers answers 104, SPEC C-1).
    Text(tungstenite::Utf8Bytes),
    /// The peer started the close handshake; tungstenite has queued its reply.
    PeerClosed,
    /// A ping or pong, already handled by tungstenite (a pong may be queued).
    Control,
    /// Nothing more to read now.
    Drained,
    /// A signal interrupted the read; read again.
    Interrupted,
    /// The stream is broken in a way the peer should hear about: close with this code and reason.
    CloseWith(CloseCode, &'static str),
    /// The next frame breaks a frame limit (`inbound.rs`); tungstenite never saw it.
    FrameLimit(FrameLimit),
    /// The stream ended or failed: drop the connection.
    Gone,
}

impl Inbound {
    /// The message a codec decodes, for a binary or text message.
    pub(crate) fn client_frame(&self) -> Option<ClientFrame<'_>> {
        match self {
            Inbound::Binary(frame) => Some(ClientFrame::Binary(frame)),
            Inbound::Text(text) => Some(ClientFrame::Text(text)),
            _ => None,
        }
    }
}

pub(crate) fn classify(result: tungstenite::Result<Message>) -> Inbound {
    use tungstenite::error::ProtocolError as P;
    use tungstenite::Error as E;
    match result {
        Ok(Message::Binary(frame)) => Inbound::Binary(frame),
        Ok(Message::Text(text)) => Inbound::Text(text),
        Ok(Message::Close(_)) => Inbound::PeerClosed,
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Inbound::Control,
        Err(E::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Inbound::Drained,
        Err(E::Io(e)) if e.kind() == io::ErrorKind::Interrupted => Inbound::Interrupted,
        Err(E::Capacity(_)) => Inbound::CloseWith(CloseCode::Size, "message too big"),
        Err(E::Utf8(_)) => Inbound::CloseWith(CloseCode::Invalid, "invalid UTF-8 in text frame"),
        Err(E::Protocol(P::ResetWithoutClosingHandshake)) => Inbound::Gone,
        // Reasons stay within the 123 bytes a close frame allows.
        Err(E::Protocol(e)) => Inbound::CloseWith(
            CloseCode::Protocol,
            match e {
                P::UnmaskedFrameFromClient => "unmasked client frame",
                P::NonZeroReservedBits => "reserved bits set",
                P::UnknownControlFrameType(_) | P::UnknownDataFrameType(_) => "unknown opcode",
                P::FragmentedControlFrame | P::ControlFrameTooBig => "bad control frame",
                P::UnexpectedContinueFrame | P::ExpectedFragment(_) => "bad fragmentation",
                _ => "protocol error",
            },
        ),
        Err(_) => Inbound::Gone,
    }
}
