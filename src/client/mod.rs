//! A blocking client (std::net + tungstenite) for tests, examples and tools: connect with a
//! token, send requests and wait for their replies by cid, wait for events with a deadline.
//! Not for the hot path of a load test (the load harness has its own mio client).
//!
//! An `Error` with cid 0 answers no request that had a cid (fire-and-forget party data refused,
//! P-9; a frame whose cid the server could not read, C-5), so the client never takes it for a
//! reply: it is queued as an error event for [`Client::wait_error_event`].

mod lobby;
mod party;

pub use party::PartyResult;
mod status;

use crate::core::{Cid, ConnectOptions, Event, Presence, Reply, Request};
use crate::wire::{self, DecodeError, Encoder, ErrorReply, ServerMessage};
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// How long `request` waits for its reply unless told otherwise.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames a client accepts from the server (a party snapshot of 256 members fits easily).
const CLIENT_MESSAGE_BYTES_MAX: usize = 1 << 20;

#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// The server answered the upgrade with this HTTP status (401: bad token).
    Refused {
        status: u16,
        body: String,
    },
    WebSocket(tungstenite::Error),
    Decode(DecodeError),
    /// Nothing matching arrived before the deadline.
    Timeout(&'static str),
    /// The server closed the connection, with its close frame when it sent one.
    Closed(Option<CloseFrame>),
    /// The first frame was not a welcome, or a reply did not fit its request.
    Unexpected(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "io: {e}"),
            ClientError::Refused { status, body } => {
                write!(f, "upgrade refused with HTTP {status}: {}", body.trim())
            }
            ClientError::WebSocket(e) => write!(f, "websocket: {e}"),
            ClientError::Decode(e) => write!(f, "decode: {e}"),
            ClientError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            ClientError::Closed(Some(frame)) => {
                write!(f, "closed by server: {} {}", u16::from(frame.code), frame.reason)
            }
            ClientError::Closed(None) => write!(f, "closed by server"),
            ClientError::Unexpected(what) => write!(f, "unexpected: {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

pub struct Client {
    ws: WebSocket<TcpStream>,
    encoder: Encoder,
    verifier: flatbuffers::VerifierOptions,
    next_cid: u64,
    /// Events that arrived while waiting for something else, oldest first.
    events: VecDeque<Event>,
    /// Errors with cid 0 that arrived while waiting for something else, oldest first.
    error_events: VecDeque<ErrorReply>,
    /// This session, from the welcome event.
    presence: Presence,
}

impl Client {
    /// Connects to `addr` (`host:port`), upgrades at `/ws` with `token`, and waits for the
    /// welcome event.
    pub fn connect(addr: &str, token: &str, options: ConnectOptions) -> Result<Client, ClientError> {
        let status = if options.status_visible { "&status=true" } else { "" };
        let snapshots = if options.snapshots { "&snapshots=true" } else { "" };
        Client::connect_url(&format!("ws://{addr}/ws?token={token}{status}{snapshots}"))
    }

    /// Connects to a full `ws://` URL and waits for the welcome event.
    pub fn connect_url(url: &str) -> Result<Client, ClientError> {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| ClientError::Unexpected(format!("not a ws:// URL: {url}")))?;
        let stream = TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(CLIENT_MESSAGE_BYTES_MAX)
            .max_message_size(Some(CLIENT_MESSAGE_BYTES_MAX))
            .max_frame_size(Some(CLIENT_MESSAGE_BYTES_MAX))
            .accept_unmasked_frames(false);
        let (ws, _response) = match tungstenite::client::client_with_config(url, stream, Some(config)) {
            Ok(ok) => ok,
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let body =
                    response.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                return Err(ClientError::Refused { status: response.status().as_u16(), body });
            }
            Err(tungstenite::HandshakeError::Failure(e)) => return Err(ClientError::WebSocket(e)),
            Err(tungstenite::HandshakeError::Interrupted(_)) => return Err(ClientError::Timeout("upgrade")),
        };
        let mut client = Client {
            ws,
            encoder: Encoder::new(),
            verifier: wire::verifier_options(CLIENT_MESSAGE_BYTES_MAX),
            next_cid: 1,
            events: VecDeque::new(),
            error_events: VecDeque::new(),
            presence: Presence {
                user_id: crate::core::UserId::new(""),
                session_id: crate::core::SessionId::new(0, 0),
                username: crate::core::Username::new(""),
            },
        };
        let deadline = Instant::now() + REPLY_TIMEOUT;
        match client.next_message(deadline)? {
            ServerMessage::Event(Event::Welcome { presence }) => client.presence = presence,
            other => return Err(ClientError::Unexpected(format!("first frame was not a welcome: {other:?}"))),
        }
        Ok(client)
    }

    /// This session's presence, as the welcome event gave it.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Sends `request` without waiting; returns its cid.
    pub fn send(&mut self, request: &Request) -> Result<Cid, ClientError> {
        let cid = Cid(self.next_cid);
        self.next_cid += 1;
        self.send_with_cid(cid, request)?;
        Ok(cid)
    }

    /// Sends `request` under a cid of the caller's choosing, without waiting. `Cid::NONE` on
    /// party data is fire-and-forget (P-9); on anything else the server answers 101 with cid 0
    /// (tests use it for that).
    pub fn send_with_cid(&mut self, cid: Cid, request: &Request) -> Result<(), ClientError> {
        let frame = self.encoder.request(cid, request).to_vec();
        self.send_raw(Message::Binary(frame.into()))
    }

    /// Sends any WebSocket message as is (tests use it for garbage and text frames).
    pub fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.ws.send(message).map_err(ClientError::WebSocket)
    }

    /// Sends `request` and waits for its reply: `Ok(Ok(reply))`, or `Ok(Err(error reply))`.
    pub fn request(&mut self, request: &Request) -> Result<Result<Reply, ErrorReply>, ClientError> {
        let cid = self.send(request)?;
        self.wait_reply(cid, Instant::now() + REPLY_TIMEOUT)
    }

    /// Waits for the reply with `cid`, keeping events that arrive meanwhile for `wait_event`.
    pub fn wait_reply(&mut self, cid: Cid, deadline: Instant) -> Result<Result<Reply, ErrorReply>, ClientError> {
        loop {
            match self.next_message(deadline)? {
                ServerMessage::Reply { cid: got, result } if got == cid => return Ok(result),
                ServerMessage::Reply { cid: got, result } => {
                    return Err(ClientError::Unexpected(format!(
                        "reply for cid {} while waiting for {}: {result:?}",
                        got.0, cid.0
                    )))
                }
                ServerMessage::Event(event) => self.events.push_back(event),
                ServerMessage::ErrorEvent(error) => self.error_events.push_back(error),
            }
        }
    }

    /// The next reply, event or error event, whichever comes first (buffered events first, then
    /// buffered error events).
    pub fn next(&mut self, timeout: Duration) -> Result<ServerMessage, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(ServerMessage::Event(event));
        }
        if let Some(error) = self.error_events.pop_front() {
            return Ok(ServerMessage::ErrorEvent(error));
        }
        self.next_message(Instant::now() + timeout)
    }

    /// Waits for the first event matching `matches` (earlier non-matching events stay queued).
    pub fn wait_event(&mut self, timeout: Duration, matches: impl Fn(&Event) -> bool) -> Result<Event, ClientError> {
        if let Some(i) = self.events.iter().position(&matches) {
            return Ok(self.events.remove(i).expect("index from position"));
        }
        self.wait_unsolicited(timeout, "event", |message| match message {
            ServerMessage::Event(event) if matches(&event) => ControlFlow::Break(event),
            other => ControlFlow::Continue(other),
        })
    }

    /// Waits for the next error event (an `Error` with cid 0; earlier ones first). Events that
    /// arrive meanwhile stay queued for `wait_event`; a reply is unexpected.
    pub fn wait_error_event(&mut self, timeout: Duration) -> Result<ErrorReply, ClientError> {
        if let Some(error) = self.error_events.pop_front() {
            return Ok(error);
        }
        self.wait_unsolicited(timeout, "error event", |message| match message {
            ServerMessage::ErrorEvent(error) => ControlFlow::Break(error),
            other => ControlFlow::Continue(other),
        })
    }

    /// Reads until `take` accepts a message (`Break`); events and error events it passes on
    /// (`Continue`) are queued, a reply is unexpected (nothing was asked).
    fn wait_unsolicited<T>(
        &mut self,
        timeout: Duration,
        what: &'static str,
        take: impl Fn(ServerMessage) -> ControlFlow<T, ServerMessage>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let message = match self.next_message(deadline) {
                Ok(message) => message,
                Err(ClientError::Timeout(_)) => return Err(ClientError::Timeout(what)),
                Err(e) => return Err(e),
            };
            match take(message) {
                ControlFlow::Break(found) => return Ok(found),
                ControlFlow::Continue(ServerMessage::Event(event)) => self.events.push_back(event),
                ControlFlow::Continue(ServerMessage::ErrorEvent(error)) => self.error_events.push_back(error),
                ControlFlow::Continue(ServerMessage::Reply { cid, result }) => {
                    return Err(ClientError::Unexpected(format!(
                        "reply for cid {} while waiting for an {what}: {result:?}",
                        cid.0
                    )))
                }
            }
        }
    }

    /// Events received and not yet taken, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Error events received and not yet taken, oldest first.
    pub fn take_error_events(&mut self) -> Vec<ErrorReply> {
        self.error_events.drain(..).collect()
    }

    /// Waits until the server closes the connection; returns its close frame.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Option<CloseFrame>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_message(deadline) {
                Ok(ServerMessage::Event(event)) => self.events.push_back(event),
                Ok(ServerMessage::ErrorEvent(error)) => self.error_events.push_back(error),
                Ok(ServerMessage::Reply { .. }) => {}
                Err(ClientError::Closed(frame)) => return Ok(frame),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a close frame and waits briefly for the server's reply.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.wait_closed(Duration::from_secs(2));
    }

    fn next_message(&mut self, deadline: Instant) -> Result<ServerMessage, ClientError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout("server message"));
            }
            self.ws.get_mut().set_read_timeout(Some(left))?;
            match self.ws.read() {
                Ok(Message::Binary(frame)) => {
                    return wire::decode_server_message(&frame, &self.verifier).map_err(ClientError::Decode)
                }
                Ok(Message::Close(frame)) => {
                    let _ = self.ws.flush();
                    return Err(ClientError::Closed(frame));
                }
                Ok(Message::Text(text)) => {
                    return Err(ClientError::Unexpected(format!("text frame from server: {text}")))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    return Err(ClientError::Timeout("server message"))
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(ClientError::Closed(None))
                }
                Err(e) => return Err(ClientError::WebSocket(e)),
            }
        }
    }
}
