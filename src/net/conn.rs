//! One connection's state as the driver sees it: the socket, its outbound queue, and where it
//! is in its life (upgrading, open, closing).

use super::outbound::OutboundQueue;
use super::ratelimit::RequestBudget;
use crate::core::{Millis, SessionId};
use bytes::Bytes;
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketContext;
use tungstenite::Message;

pub(crate) enum Phase {
    /// Reading the HTTP upgrade request into `received` (its deadline is in the driver's queue).
    Handshake { received: Vec<u8> },
    /// Upgraded: `ws` parses frames; the core knows `session`.
    Open { ws: Box<WebSocketContext>, session: SessionId },
    /// A final response or close frame is queued: flush it, half-close, wait for the peer's
    /// FIN (so our last bytes are not lost to a reset) until the linger deadline, then drop.
    Closing { write_shut: bool },
}

pub(crate) struct Conn {
    pub generation: u32,
    pub socket: TcpStream,
    pub out: OutboundQueue,
    pub phase: Phase,
    /// Listed in the driver's read list (more frames may be buffered than one turn handles).
    pub read_listed: bool,
    /// Listed in the driver's flush list.
    pub flush_listed: bool,
    /// Request rate budget (SPEC O-4; `requests_per_second_max`).
    pub budget: RequestBudget,
    /// When the peer last sent anything; keepalive pings only silent connections.
    pub last_heard_at: Millis,
    /// A keepalive ping went out and nothing has been heard since.
    pub ping_outstanding: bool,
    /// Since when the queue has been above `outbound_soft_bytes_max`.
    pub soft_exceeded_since: Option<Millis>,
    /// The last socket read came back short: the kernel queue was empty, so a further read can
    /// only say WouldBlock until the next readable edge. Skipping it saves a syscall per
    /// connection per turn; any byte that arrives later raises a new edge (and clears this).
    pub read_drained: bool,
}

impl Conn {
    pub fn session(&self) -> Option<SessionId> {
        match self.phase {
            Phase::Open { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// The stream tungstenite sees: reads come straight from the socket, writes (pongs, close
/// frames) land in the outbound queue behind any frames already queued, so our pre-framed
/// events and tungstenite's control frames never interleave mid-frame, and every byte counts
/// against the same output limit.
pub(crate) struct WsIo<'a, S: Read = TcpStream> {
    pub socket: &'a mut S,
    pub out: &'a mut OutboundQueue,
    /// The connection's `read_drained`.
    pub drained: &'a mut bool,
}

impl<S: Read> Read for WsIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_until_short(self.socket, buf, self.drained)
    }
}

/// One read of an edge-triggered socket: after a short read, answer WouldBlock without asking
/// the kernel (see `Conn::read_drained`).
pub(crate) fn read_until_short(socket: &mut impl Read, buf: &mut [u8], drained: &mut bool) -> io::Result<usize> {
    if *drained {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let n = socket.read(buf)?;
    if n > 0 && n < buf.len() {
        *drained = true;
    }
    Ok(n)
}

impl<S: Read> Write for WsIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.push(bytes::Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one `WebSocketContext::read` result means for the connection. Shared by the driver and
/// the `conn_bytes` fuzz target, so the fuzzer exercises the driver's own decisions.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A binary frame: one request envelope to decode.
    Binary(Bytes),
    /// A text frame: answered with an error (SPEC C-1).
    Text,
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
    /// The stream ended or failed: drop the connection.
    Gone,
}

pub(crate) fn classify(result: tungstenite::Result<Message>) -> Inbound {
    use tungstenite::error::ProtocolError as P;
    use tungstenite::Error as E;
    match result {
        Ok(Message::Binary(frame)) => Inbound::Binary(frame),
        Ok(Message::Text(_)) => Inbound::Text,
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
