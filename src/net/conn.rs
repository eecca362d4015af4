//! One connection's state as the driver sees it: the socket, its outbound queue, and where it
//! is in its life (upgrading, open, closing).

use super::outbound::OutboundQueue;
use super::ratelimit::RequestBudget;
use crate::core::{Millis, SessionId};
use bytes::{Buf, Bytes, BytesMut};
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
    /// The peer's FIN was reported: never skip the read that returns EOF, even after a short
    /// read (data and FIN can arrive in one edge).
    pub peer_closed: bool,
    /// Bytes read from the socket but not yet given to tungstenite when the loop moved on
    /// (frame budget spent). Empty, and unallocated, almost always.
    pub pending: BytesMut,
}

impl Conn {
    pub fn session(&self) -> Option<SessionId> {
        match self.phase {
            Phase::Open { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// The bytes of one large `recv`, shared by every connection of the loop. Reading a connection
/// fills it once (up to `read_batch_bytes`), tungstenite takes frames out of it, and whatever is
/// left when the loop moves on is copied into that connection's `pending`. So a connection holds
/// no read buffer of its own while idle (only tungstenite's small frame buffer), and a busy one
/// costs one `recv` per turn rather than one per few frames.
pub(crate) struct ReadScratch {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadScratch {
    pub fn new(bytes: usize) -> ReadScratch {
        ReadScratch { buf: vec![0; bytes.max(1)].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Keeps the unread bytes for the connection they came from (read first next time).
    pub fn stash_into(&mut self, pending: &mut BytesMut) {
        pending.extend_from_slice(&self.buf[self.start..self.end]);
        self.discard();
    }

    /// Drops the unread bytes (their connection is closing).
    pub fn discard(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn take_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        n
    }
}

/// A connection's byte source, in order: bytes stashed from an earlier turn, the loop's
/// scratch, then one large `recv` into the scratch. After a short `recv` the kernel queue was
/// empty, so it answers WouldBlock without a syscall until the next readable edge (which
/// clears `drained`).
pub(crate) struct ConnReader<'a, S: Read = TcpStream> {
    pub socket: &'a mut S,
    pub drained: &'a mut bool,
    /// `recv`s this reader may still make (the driver allows one per connection per turn).
    pub recvs_left: &'a mut u32,
    pub pending: &'a mut BytesMut,
    pub scratch: &'a mut ReadScratch,
}

impl<S: Read> Read for ConnReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.advance(n); // O(1): no memmove of the rest
            if self.pending.is_empty() {
                *self.pending = BytesMut::new(); // release it: pending is the exception, not the rule
            }
            return Ok(n);
        }
        if self.scratch.start < self.scratch.end {
            return Ok(self.scratch.take_into(buf));
        }
        if *self.drained || *self.recvs_left == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        *self.recvs_left -= 1;
        let n = match self.socket.read(&mut self.scratch.buf) {
            Ok(n) => n,
            Err(e) => {
                // The kernel has nothing: "drained", so the driver waits for the next edge
                // instead of listing the connection again for another empty turn.
                if e.kind() == io::ErrorKind::WouldBlock {
                    *self.drained = true;
                }
                return Err(e);
            }
        };
        if n > 0 && n < self.scratch.buf.len() {
            *self.drained = true;
        }
        self.scratch.start = 0;
        self.scratch.end = n;
        Ok(self.scratch.take_into(buf))
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
        self.out.push(bytes::Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One read of an edge-triggered socket: after a short read, answer WouldBlock without asking
/// the kernel (see `Conn::read_drained`). Used for the upgrade request.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that hands out its chunks one per read, then WouldBlock.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let chunk = self.0.remove(0);
            assert!(chunk.len() <= buf.len(), "the test feeds chunks that fit the scratch");
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn read_all(reader: &mut ConnReader<'_, Chunks>, step: usize) -> (Vec<u8>, io::ErrorKind) {
        let mut got = Vec::new();
        loop {
            let mut buf = vec![0; step];
            match reader.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, e.kind()),
            }
        }
    }

    #[test]
    fn pending_bytes_come_before_new_ones_and_a_short_recv_stops_further_syscalls() {
        let mut scratch = ReadScratch::new(8);
        let mut socket = Chunks(vec![b"abcdefgh".to_vec(), b"ijk".to_vec(), b"never".to_vec()]);
        let (mut drained, mut pending) = (false, BytesMut::new());
        let mut recvs = 9u32;
        // Turn 1: take 5 bytes of a full 8-byte recv, then the loop moves on.
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
        };
        let mut buf = [0u8; 5];
        assert_eq!(reader.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        scratch.stash_into(&mut pending);
        assert_eq!(&pending[..], b"fgh");
        // Turn 2: the stash first, then a short recv ("ijk"), then WouldBlock without reading "never".
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
        };
        let (got, end) = read_all(&mut reader, 2);
        assert_eq!((got.as_slice(), end), (&b"fghijk"[..], io::ErrorKind::WouldBlock));
        assert!(drained, "a short recv marks the socket drained");
        assert_eq!(socket.0.len(), 1, "no syscall after the short recv");
        assert_eq!(pending.capacity(), 0, "an emptied stash is released");
        // A new edge clears `drained`; the next recv goes to the kernel again.
        drained = false;
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
        };
        assert_eq!(read_all(&mut reader, 16).0, b"never");
    }
}

#[cfg(test)]
mod recv_budget_tests {
    use super::*;

    #[test]
    fn a_spent_recv_budget_answers_would_block_without_reading() {
        let mut scratch = ReadScratch::new(4);
        let mut socket: &[u8] = b"abcdefgh";
        let (mut drained, mut pending, mut recvs) = (false, BytesMut::new(), 1u32);
        let mut reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs,
            pending: &mut pending,
            scratch: &mut scratch,
        };
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 4, "one full recv");
        assert_eq!(reader.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(!drained, "not drained: the budget, not the kernel, stopped it");
        assert_eq!(socket, b"efgh", "the second recv never happened");
    }
}
