//! One connection's state as the driver sees it: the socket, its outbound queue, and where it
//! is in its life (upgrading, open, closing).

use super::outbound::OutboundQueue;
use crate::core::SessionId;
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use tungstenite::protocol::WebSocketContext;

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
pub(crate) struct WsIo<'a> {
    pub socket: &'a mut TcpStream,
    pub out: &'a mut OutboundQueue,
}

impl Read for WsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for WsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.push(bytes::Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
