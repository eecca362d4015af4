//! The mio driver: one `Poll` on one thread owns the listener and every connection (a `Slab`
//! with a generation per slot). It turns socket bytes into requests for the sans-IO core and
//! the core's outputs into bytes on sockets, and decides nothing about parties or statuses.
//!
//! One turn of the loop: poll (timeout from the earliest deadline, zero when work is left
//! over); note readiness; accept up to a bound; read each listed connection up to a frame
//! bound, handing each request to the core and applying its outputs at once (replies and events
//! encoded once, framed once, queued per recipient as refcounted bytes); expire deadlines;
//! flush every connection with queued output (`writev`, up to a byte bound); reap closed
//! connections. Only listener or poll failure stops the server; a connection's error closes it
//! alone.

pub(crate) mod conn;
pub mod frame;
pub mod handshake;
pub mod outbound;
pub mod ratelimit;
mod stats;

pub use stats::{Stats, StatsSnapshot};

use crate::auth::TokenKey;
use crate::core::{CloseReason, Core, Identity, Millis, Now, Outbox, Output, SessionId, UnixMillis, UserId, Username};
use crate::limits::Limits;
use crate::wire::{self, DecodeError, Encoder};
use bytes::Bytes;
use conn::{Conn, ConnReader, Inbound, NoRead, Phase, ReadScratch, WsIo};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use ratelimit::{Admission, RequestBudget, RequestRefusal};
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);
/// mio events taken per poll; more simply wait for the next turn.
const EVENTS_PER_POLL: usize = 1024;
/// Reads of a closing connection per turn while waiting for its FIN.
const CLOSING_READS_PER_TURN_MAX: usize = 8;
/// Pause before retrying accept after the process ran out of file descriptors.
const ACCEPT_RETRY_MS: u64 = 100;

/// What `huddle serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub limits: Limits,
    pub token_key: TokenKey,
}

/// Talks to a running server from another thread: read its stats, ask it to shut down.
#[derive(Clone)]
pub struct ServerHandle {
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    waker: Arc<Waker>,
    local_addr: SocketAddr,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Asks the loop to shut down gracefully: stop accepting, send every client a close frame
    /// ("server shutting down"), flush for at most `shutdown_drain_ms`, then return from `run`.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            log::error!("could not wake the server loop for shutdown: {e}");
        }
    }
}

/// How one connection's frame reading ended this turn.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ReadEnd {
    /// Nothing more to read until the next readable edge.
    Drained,
    /// `frames_per_turn_max` reached; read again next turn.
    BudgetSpent,
    /// The connection is closing or gone.
    Closed,
}

/// A connection named with its generation, so work listed for a slot never reaches the
/// connection that takes the slot over.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct ConnRef {
    slot: usize,
    generation: u32,
}

pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    /// Next generation of each slot; bumped when a connection leaves the slot.
    generations: Vec<u32>,
    core: Core,
    /// One `recv` buffer for every connection (see `conn::ReadScratch`).
    scratch: ReadScratch,
    encoder: Encoder,
    outbox: Outbox,
    limits: Limits,
    ws_config: WebSocketConfig,
    verifier: flatbuffers::VerifierOptions,
    token_key: TokenKey,
    started: Instant,
    /// Connections to read this turn (readiness, or frames left over from the last turn).
    read_list: Vec<ConnRef>,
    /// Connections with queued output to flush this turn.
    flush_list: Vec<ConnRef>,
    /// Connections to remove at the end of the turn.
    reap_list: Vec<ConnRef>,
    /// Sessions that left the Open phase and still have to be disconnected from the core.
    pending_disconnects: Vec<SessionId>,
    /// Deadlines in arrival order: every handshake and every linger has the same duration.
    handshake_deadlines: VecDeque<(Millis, ConnRef)>,
    closing_deadlines: VecDeque<(Millis, ConnRef)>,
    /// One entry per open connection, every `keepalive_interval_ms`.
    keepalive_checks: VecDeque<(Millis, ConnRef)>,
    accept_ready: bool,
    accept_paused_until: Option<Millis>,
    shutdown_deadline: Option<Millis>,
    /// The loop's own tally; counters only grow, gauges are set before publishing.
    counters: StatsSnapshot,
    /// When queue sizes were last summed into the gauges.
    outbound_sampled_at: Millis,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Server {
    /// Binds the listener and prepares the loop; `run` starts serving.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        config.limits.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        let limits = config.limits;
        let ws_config = websocket_config(&limits);
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            conns: Slab::new(),
            generations: Vec::new(),
            core: Core::new(limits.clone(), crate::auth::random_bytes()?),
            scratch: ReadScratch::new(limits.read_batch_bytes),
            encoder: Encoder::new(),
            outbox: Outbox::new(),
            verifier: wire::verifier_options(limits.message_bytes_max),
            ws_config,
            limits,
            token_key: config.token_key,
            started: Instant::now(),
            read_list: Vec::new(),
            flush_list: Vec::new(),
            reap_list: Vec::new(),
            pending_disconnects: Vec::new(),
            handshake_deadlines: VecDeque::new(),
            closing_deadlines: VecDeque::new(),
            keepalive_checks: VecDeque::new(),
            accept_ready: false,
            accept_paused_until: None,
            shutdown_deadline: None,
            counters: StatsSnapshot::default(),
            outbound_sampled_at: Millis(0),
            stats: Arc::new(Stats::default()),
            shutdown: Arc::new(AtomicBool::new(false)),
            waker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stats: self.stats.clone(),
            shutdown: self.shutdown.clone(),
            waker: self.waker.clone(),
            local_addr: self.local_addr,
        }
    }

    /// Serves until a graceful shutdown completes. Errors only when poll itself fails.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll failed, stopping: {e}");
                return Err(e);
            }
            let now = self.now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready = true,
                    WAKER => {}
                    Token(slot) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(slot) {
                                conn.read_drained = false; // a fresh edge: the kernel has bytes
                                conn.peer_closed |= event.is_read_closed();
                            }
                            self.list_read(slot);
                        }
                        // Edge-triggered EPOLLOUT comes with every EPOLLIN: list only real work.
                        let has_output = self.conns.get(slot).is_some_and(|c| !c.out.is_empty());
                        if (event.is_writable() && has_output) || event.is_error() {
                            self.list_flush(slot);
                        }
                    }
                }
            }
            if self.shutdown.load(Ordering::Acquire) && self.shutdown_deadline.is_none() {
                self.begin_shutdown(now);
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept_ready = true;
            }
            if self.accept_ready && self.accept_paused_until.is_none() && self.listener.is_some() {
                self.accept(now)?;
            }
            self.read_listed(now);
            self.expire(now);
            self.flush_listed(now);
            self.reap(now);
            self.counters.turns_total += 1;
            self.publish_stats(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || now >= deadline {
                    match self.conns.len() {
                        0 => log::info!("shutdown complete"),
                        cut => log::warn!("shutdown complete; {cut} connections cut at the drain deadline"),
                    }
                    return Ok(());
                }
            }
        }
    }

    fn now(&self) -> Millis {
        Millis(self.started.elapsed().as_millis() as u64)
    }

    /// Both clocks for the core: the loop's monotonic `now` and the wall clock. A wall clock set
    /// before 1970 reads as 0 rather than failing: it only stamps what users see.
    fn core_now(&self, now: Millis) -> Now {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Now::new(now, UnixMillis(wall))
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let work_left = !self.read_list.is_empty()
            || !self.flush_list.is_empty()
            || !self.reap_list.is_empty()
            || (self.accept_ready && self.accept_paused_until.is_none() && self.listener.is_some());
        if work_left {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.handshake_deadlines.front().map(|(at, _)| *at),
            self.closing_deadlines.front().map(|(at, _)| *at),
            self.keepalive_checks.front().map(|(at, _)| *at),
            self.accept_paused_until,
            self.shutdown_deadline,
        ];
        let earliest = deadlines.into_iter().flatten().min()?;
        // Round up so the turn that wakes finds the deadline passed, not 1 ms short.
        Some(Duration::from_millis(earliest.saturating_sub(self.now()) + 1))
    }

    fn conn_ref(&self, slot: usize) -> Option<ConnRef> {
        self.conns.get(slot).map(|c| ConnRef { slot, generation: c.generation })
    }

    fn conn_mut(&mut self, at: ConnRef) -> Option<&mut Conn> {
        self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation)
    }

    fn list_read(&mut self, slot: usize) {
        let Some(at) = self.conn_ref(slot) else {
            return;
        };
        if let Some(conn) = self.conn_mut(at) {
            if !conn.read_listed {
                conn.read_listed = true;
                self.read_list.push(at);
            }
        }
    }

    fn list_flush(&mut self, slot: usize) {
        let Some(at) = self.conn_ref(slot) else {
            return;
        };
        if let Some(conn) = self.conn_mut(at) {
            if !conn.flush_listed {
                conn.flush_listed = true;
                self.flush_list.push(at);
            }
        }
    }

    fn list_reap(&mut self, at: ConnRef) {
        self.reap_list.push(at);
    }

    fn accept(&mut self, now: Millis) -> io::Result<()> {
        for _ in 0..self.limits.accepts_per_turn_max {
            let Some(listener) = self.listener.as_ref() else {
                return Ok(());
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient_accept_error(&e) => {
                    log::warn!("accept failed ({e}); retrying in {ACCEPT_RETRY_MS} ms");
                    self.accept_paused_until = Some(now.saturating_add(ACCEPT_RETRY_MS));
                    return Ok(());
                }
                Err(e) => {
                    log::error!("listener failed, stopping: {e}");
                    return Err(e);
                }
            };
            if self.conns.len() >= self.limits.connections_max {
                self.counters.refused_total += 1;
                log::debug!("refused {peer}: connections_max {} reached", self.limits.connections_max);
                continue; // dropping the socket closes it
            }
            // Small frames are the whole workload; Nagle would add up to 40 ms to each.
            let _ = socket.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let slot = entry.key();
            if self.generations.len() <= slot {
                self.generations.resize(slot + 1, 1);
            }
            let generation = self.generations[slot];
            if let Err(e) =
                self.poll.registry().register(&mut socket, Token(slot), Interest::READABLE | Interest::WRITABLE)
            {
                log::warn!("could not register {peer}: {e}");
                continue;
            }
            let deadline = now.saturating_add(self.limits.handshake_timeout_ms);
            entry.insert(Conn {
                generation,
                socket,
                out: Default::default(),
                phase: Phase::Handshake { received: Vec::new() },
                read_listed: false,
                flush_listed: false,
                budget: RequestBudget::new(self.limits.requests_burst_max, now),
                last_heard_at: now,
                ping_outstanding: false,
                soft_exceeded_since: None,
                read_drained: false,
                peer_closed: false,
                pending: Default::default(),
            });
            self.handshake_deadlines.push_back((deadline, ConnRef { slot, generation }));
            self.counters.accepted_total += 1;
            self.counters.handshakes_open += 1;
            log::debug!("accepted {peer} in slot {slot}");
        }
        Ok(())
    }

    fn read_listed(&mut self, now: Millis) {
        let list = std::mem::take(&mut self.read_list);
        for at in &list {
            let Some(conn) = self.conn_mut(*at) else {
                continue;
            };
            conn.read_listed = false;
            match conn.phase {
                Phase::Handshake { .. } => self.read_handshake(*at, now),
                Phase::Open { .. } => self.read_frames(*at, now),
                Phase::Closing { .. } => self.read_closing(*at),
            }
        }
    }

    fn read_handshake(&mut self, at: ConnRef, now: Millis) {
        let bytes_max = self.limits.handshake_bytes_max;
        let outcome = loop {
            let Some(conn) = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation) else {
                return;
            };
            let Phase::Handshake { received, .. } = &mut conn.phase else {
                return;
            };
            let start = received.len();
            // evaluate() refuses at bytes_max, so there is always room here.
            let room = bytes_max.saturating_sub(start).clamp(1, 2048);
            received.resize(start + room, 0);
            if conn.peer_closed {
                conn.read_drained = false; // see the same line in read_frames_until
            }
            let read = conn::read_until_short(&mut conn.socket, &mut received[start..], &mut conn.read_drained);
            received.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return self.list_reap(at),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.list_reap(at),
            }
            // Parse only once the head can be complete (or is too long): re-parsing everything
            // after every few bytes would make a slow sender cost quadratic CPU.
            let head_ended = received[start.saturating_sub(3)..].windows(4).any(|w| w == b"\r\n\r\n");
            if !head_ended && received.len() < bytes_max {
                continue;
            }
            match handshake::evaluate(received, bytes_max, &self.token_key, unix_now_s()) {
                handshake::Outcome::Incomplete => continue,
                outcome => break outcome,
            }
        };
        self.counters.handshakes_open -= 1;
        match outcome {
            handshake::Outcome::Incomplete => {}
            handshake::Outcome::Reject { response, reason } => {
                self.counters.upgrades_rejected_total += 1;
                log::debug!("upgrade refused for slot {}: {reason}", at.slot);
                let Some(conn) = self.conn_mut(at) else {
                    return;
                };
                conn.out.push(Bytes::from(response));
                self.enter_closing(at, now);
            }
            handshake::Outcome::Accept { response, consumed, claims, options } => {
                let session = SessionId::new(at.slot as u32, at.generation);
                let ws_config = self.ws_config;
                let Some(conn) = self.conn_mut(at) else {
                    return;
                };
                let Phase::Handshake { received, .. } = &mut conn.phase else {
                    return;
                };
                let leftover = received.split_off(consumed);
                conn.out.push(Bytes::from(response));
                let ws = WebSocketContext::from_partially_read(leftover, Role::Server, Some(ws_config));
                conn.phase = Phase::Open { ws: Box::new(ws), session };
                conn.last_heard_at = now;
                let check_at = now.saturating_add(self.limits.keepalive_interval_ms);
                self.keepalive_checks.push_back((check_at, at));
                log::debug!("session {session} open for user {}", claims.user_id);
                let identity =
                    Identity { user_id: UserId::new(&claims.user_id), username: Username::new(&claims.username) };
                self.core.connect(session, identity, options, self.core_now(now), &mut self.outbox);
                self.apply_outputs(now);
                self.list_flush(at.slot);
                // Frames may have arrived with the upgrade request.
                self.read_frames(at, now);
            }
        }
    }

    fn read_frames(&mut self, at: ConnRef, now: Millis) {
        let end = self.read_frames_until(at, now);
        // Whatever the scratch still holds came from this connection: keep it for the
        // connection's next turn, or drop it with the connection.
        let open = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation && c.session().is_some());
        match (end, open) {
            (ReadEnd::Closed, _) | (_, None) => self.scratch.discard(),
            (ReadEnd::Drained | ReadEnd::BudgetSpent, Some(conn)) => self.scratch.stash_into(&mut conn.pending),
        }
        if end == ReadEnd::BudgetSpent {
            // More may be buffered, and an edge-triggered poll will not say so.
            if let Some(conn) = self.conn_mut(at) {
                if !conn.read_listed {
                    conn.read_listed = true;
                    self.read_list.push(at);
                }
            }
        }
    }

    /// Reads and handles frames of one open connection until it has nothing more, its frame
    /// budget is spent, or it closes.
    fn read_frames_until(&mut self, at: ConnRef, now: Millis) -> ReadEnd {
        // One `recv` per connection per turn: tungstenite loops inside one `read` over frames
        // that complete no message (a stream of empty continuation fragments), so without this
        // a fast sender could keep the loop on its connection forever.
        let mut recvs_left = 1u32;
        for _ in 0..self.limits.frames_per_turn_max {
            let limits = &self.limits;
            // Borrow the slab alone, so the limits stay readable below.
            let Some(conn) = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation) else {
                return ReadEnd::Closed;
            };
            let Phase::Open { ws, session } = &mut conn.phase else {
                return ReadEnd::Closed;
            };
            let session = *session;
            if conn.peer_closed {
                // The FIN may have come with the data: read on until the kernel says EOF.
                conn.read_drained = false;
            }
            let queued_before = conn.out.bytes_queued();
            let reader = ConnReader {
                socket: &mut conn.socket,
                drained: &mut conn.read_drained,
                recvs_left: &mut recvs_left,
                pending: &mut conn.pending,
                scratch: &mut self.scratch,
            };
            let mut io = WsIo { reader, out: &mut conn.out };
            let inbound = conn::classify(ws.read(&mut io));
            let control_queued = conn.out.bytes_queued() > queued_before;
            if matches!(inbound, Inbound::Binary(_) | Inbound::Text | Inbound::Control | Inbound::PeerClosed) {
                conn.last_heard_at = now;
                conn.ping_outstanding = false;
            }
            let admission = match inbound {
                Inbound::Binary(_) | Inbound::Text => conn.budget.admit(
                    now,
                    limits.requests_per_second_max,
                    limits.requests_burst_max,
                    limits.rate_limited_close_ms,
                ),
                _ => Admission::Allowed,
            };
            // A pong or close reply counts against the output limits like any frame of ours, or
            // a client pinging without reading would grow its queue without bound.
            if control_queued && !self.queued_more(at, now) {
                return ReadEnd::Closed;
            }
            match inbound {
                Inbound::Binary(_) | Inbound::Text if admission == Admission::Abusive => {
                    self.counters.rate_limited_total += 1;
                    log::warn!(
                        "session {session} closed: refused by requests_per_second_max {} for {} ms",
                        self.limits.requests_per_second_max,
                        self.limits.rate_limited_close_ms
                    );
                    self.close_with(at, CloseCode::Policy, "request rate limit", now);
                    return ReadEnd::Closed;
                }
                Inbound::Binary(frame) => {
                    self.counters.frames_in_total += 1;
                    if admission == Admission::Refused {
                        self.counters.rate_limited_total += 1;
                        let cid = wire::peek_cid(&frame, &self.verifier);
                        let refusal = RequestRefusal::RateLimited {
                            requests_per_second_max: self.limits.requests_per_second_max,
                        };
                        let framed = frame::binary(self.encoder.error(cid, refusal.code(), &refusal.to_string()));
                        self.send(session, framed, now);
                    } else {
                        self.handle_frame(session, &frame, now);
                    }
                }
                Inbound::Text => {
                    self.counters.frames_in_total += 1;
                    self.reply_decode_error(session, crate::core::Cid::NONE, &DecodeError::TextFrame, now);
                }
                Inbound::PeerClosed => {
                    // tungstenite queued its close reply; push it into our queue, then linger.
                    if let Some(conn) = self.conn_mut(at) {
                        if let Phase::Open { ws, .. } = &mut conn.phase {
                            let _ = ws.flush(&mut WsIo { reader: NoRead, out: &mut conn.out });
                        }
                    }
                    self.enter_closing(at, now);
                    return ReadEnd::Closed;
                }
                Inbound::Control | Inbound::Interrupted => {}
                // Out of this turn's `recv` rather than out of bytes: come back next turn.
                Inbound::Drained if recvs_left == 0 && !self.conn_mut(at).is_some_and(|c| c.read_drained) => {
                    return ReadEnd::BudgetSpent
                }
                Inbound::Drained => return ReadEnd::Drained,
                Inbound::CloseWith(code, reason) => {
                    log::debug!("session {session}: closing with {}: {reason}", u16::from(code));
                    self.close_with(at, code, reason, now);
                    return ReadEnd::Closed;
                }
                Inbound::Gone => {
                    self.list_reap(at);
                    return ReadEnd::Closed;
                }
            }
        }
        ReadEnd::BudgetSpent
    }

    /// Reads and discards what a closing peer still sends, until its FIN.
    fn read_closing(&mut self, at: ConnRef) {
        let mut scratch = [0u8; 2048];
        for _ in 0..CLOSING_READS_PER_TURN_MAX {
            let Some(conn) = self.conn_mut(at) else {
                return;
            };
            match conn.socket.read(&mut scratch) {
                Ok(0) => return self.list_reap(at),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.list_reap(at),
            }
        }
        self.list_read(at.slot);
    }

    fn handle_frame(&mut self, session: SessionId, frame: &Bytes, now: Millis) {
        match wire::decode_request(frame, &self.verifier) {
            Ok((cid, request)) => {
                self.core.handle_request(session, cid, request, self.core_now(now), &mut self.outbox);
                self.apply_outputs(now);
            }
            Err((cid, error)) => self.reply_decode_error(session, cid, &error, now),
        }
    }

    fn reply_decode_error(&mut self, session: SessionId, cid: crate::core::Cid, error: &DecodeError, now: Millis) {
        self.counters.decode_errors_total += 1;
        log::trace!("session {session}: undecodable frame: {error}");
        let framed = frame::binary(self.encoder.decode_error(cid, error));
        self.send(session, framed, now);
    }

    /// Executes the outbox, then disconnects from the core every session that left the Open
    /// phase meanwhile (a slow consumer cut off mid-fan-out), until nothing is left.
    fn apply_outputs(&mut self, now: Millis) {
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
                let framed = frame::binary(self.encoder.reply(cid, &result));
                self.send(to, framed, now);
            }
            Output::Event { event, .. } => {
                // Encoded and framed once; each recipient's queue gets a refcounted clone.
                let framed = frame::binary(self.encoder.event(&event));
                for &to in recipients {
                    self.send(to, framed.clone(), now);
                }
            }
            Output::Close { session, reason } => {
                let CloseReason::Policy(text) = reason;
                let at = ConnRef { slot: session.slot() as usize, generation: session.generation() };
                self.close_with(at, CloseCode::Policy, text, now);
            }
        }
    }

    /// Queues a framed message for an open session; enforces the output limit.
    fn send(&mut self, to: SessionId, framed: Bytes, now: Millis) {
        let at = ConnRef { slot: to.slot() as usize, generation: to.generation() };
        // Borrow the slab alone, so the counters stay usable below.
        let Some(conn) = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation) else {
            return;
        };
        if conn.session() != Some(to) {
            return; // closing or gone: the core hears of it through pending_disconnects
        }
        conn.out.push(framed);
        self.counters.frames_out_total += 1;
        self.queued_more(at, now);
    }

    /// After bytes were added to a connection's queue (our frames, or tungstenite's pongs and
    /// close replies): enforce the hard and soft output limits, else list it for flushing.
    /// Returns false when the connection was cut off.
    fn queued_more(&mut self, at: ConnRef, now: Millis) -> bool {
        let (hard, soft, soft_ms) = (
            self.limits.outbound_bytes_max,
            self.limits.outbound_soft_bytes_max,
            self.limits.outbound_soft_duration_ms,
        );
        let Some(conn) = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation) else {
            return false;
        };
        let queued = conn.out.bytes_queued();
        let soft_expired = queued > soft && {
            let since = *conn.soft_exceeded_since.get_or_insert(now);
            now.saturating_sub(since) >= soft_ms
        };
        if queued > hard || soft_expired {
            self.cut_off_slow_consumer(at, now);
            return false;
        }
        if !conn.flush_listed {
            conn.flush_listed = true;
            self.flush_list.push(at);
        }
        true
    }

    /// Redis's `client-output-buffer-limit`: a client that cannot keep up loses its unsent
    /// frames and its connection, with one warning; nobody else notices.
    fn cut_off_slow_consumer(&mut self, at: ConnRef, now: Millis) {
        let Some(conn) = self.conn_mut(at) else { return };
        let queued = conn.out.bytes_queued();
        let soft_for_ms = conn.soft_exceeded_since.map_or(0, |since| now.saturating_sub(since));
        conn.out.truncate_unstarted();
        self.counters.slow_consumers_total += 1;
        log::warn!(
            "slot {} cut off as a slow consumer: {queued} bytes queued (outbound_bytes_max {}, over outbound_soft_bytes_max {} for {soft_for_ms} ms)",
            at.slot,
            self.limits.outbound_bytes_max,
            self.limits.outbound_soft_bytes_max
        );
        self.close_with(at, CloseCode::Policy, "output buffer limit", now);
    }

    /// Queues a close frame with `reason` and moves the connection to Closing.
    fn close_with(&mut self, at: ConnRef, code: CloseCode, reason: &'static str, now: Millis) {
        let Some(conn) = self.conn_mut(at) else {
            return;
        };
        if let Phase::Open { ws, .. } = &mut conn.phase {
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = ws.close(&mut WsIo { reader: NoRead, out: &mut conn.out }, Some(frame));
        }
        self.enter_closing(at, now);
    }

    /// Leaves Handshake or Open for Closing: queued bytes still flush, nothing new is queued.
    fn enter_closing(&mut self, at: ConnRef, now: Millis) {
        let deadline = now.saturating_add(self.limits.close_linger_ms);
        let Some(conn) = self.conn_mut(at) else {
            return;
        };
        if matches!(conn.phase, Phase::Closing { .. }) {
            return;
        }
        if let Phase::Open { session, .. } = std::mem::replace(&mut conn.phase, Phase::Closing { write_shut: false }) {
            self.pending_disconnects.push(session);
        }
        self.closing_deadlines.push_back((deadline, at));
        self.list_flush(at.slot);
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&(deadline, at)) = self.handshake_deadlines.front() {
            if deadline > now {
                break;
            }
            self.handshake_deadlines.pop_front();
            if let Some(conn) = self.conn_mut(at) {
                if matches!(conn.phase, Phase::Handshake { .. }) {
                    log::debug!("slot {}: no upgrade within handshake_timeout_ms", at.slot);
                    self.counters.handshake_timeouts_total += 1;
                    self.counters.handshakes_open -= 1;
                    // Moved out of Handshake so the reap does not count it twice.
                    if let Some(conn) = self.conn_mut(at) {
                        conn.phase = Phase::Closing { write_shut: true };
                    }
                    self.list_reap(at);
                }
            }
        }
        while let Some(&(check_at, at)) = self.keepalive_checks.front() {
            if check_at > now {
                break;
            }
            self.keepalive_checks.pop_front();
            self.check_liveness(at, now);
        }
        while let Some(&(deadline, at)) = self.closing_deadlines.front() {
            if deadline > now {
                break;
            }
            self.closing_deadlines.pop_front();
            if self.conn_mut(at).is_some() {
                self.list_reap(at);
            }
        }
    }

    /// Runs every `keepalive_interval_ms` per open connection: ping a silent peer, drop one that
    /// stayed silent through a whole interval after its ping, and enforce the soft output limit
    /// on a connection nobody is sending to any more.
    fn check_liveness(&mut self, at: ConnRef, now: Millis) {
        let interval_ms = self.limits.keepalive_interval_ms;
        let soft_duration_ms = self.limits.outbound_soft_duration_ms;
        let Some(conn) = self.conns.get_mut(at.slot).filter(|c| c.generation == at.generation) else { return };
        let Phase::Open { ws, session } = &mut conn.phase else { return };
        let session = *session;
        if conn.soft_exceeded_since.is_some_and(|since| now.saturating_sub(since) >= soft_duration_ms) {
            return self.cut_off_slow_consumer(at, now);
        }
        let silent_ms = now.saturating_sub(conn.last_heard_at);
        if silent_ms < interval_ms {
            conn.ping_outstanding = false;
        } else if !conn.ping_outstanding {
            conn.ping_outstanding = true;
            let _ = ws.write(&mut WsIo { reader: NoRead, out: &mut conn.out }, Message::Ping(Bytes::new()));
            self.list_flush(at.slot);
        } else {
            self.counters.keepalive_timeouts_total += 1;
            log::debug!("session {session}: silent for {silent_ms} ms after a keepalive ping; closing");
            return self.close_with(at, CloseCode::Away, "keepalive timeout", now);
        }
        self.keepalive_checks.push_back((now.saturating_add(interval_ms), at));
    }

    fn flush_listed(&mut self, now: Millis) {
        let list = std::mem::take(&mut self.flush_list);
        let budget = self.limits.write_bytes_per_turn_max;
        let soft_bytes_max = self.limits.outbound_soft_bytes_max;
        for at in list {
            let Some(conn) = self.conn_mut(at) else {
                continue;
            };
            conn.flush_listed = false;
            match conn.out.write_to(&mut conn.socket, budget) {
                Ok(flushed) if !flushed.blocked && !conn.out.is_empty() => {
                    // Budget spent, socket still writable: no edge will come, so list it again.
                    conn.flush_listed = true;
                    self.flush_list.push(at);
                }
                Ok(_) => {}
                Err(e) => {
                    log::debug!("slot {}: write failed: {e}", at.slot);
                    // Nothing more can reach this peer; leave Open so the core forgets it now.
                    self.enter_closing(at, now);
                    self.list_reap(at);
                    continue;
                }
            }
            let Some(conn) = self.conn_mut(at) else {
                continue;
            };
            if conn.out.bytes_queued() <= soft_bytes_max {
                conn.soft_exceeded_since = None;
            }
            if let Phase::Closing { write_shut, .. } = &mut conn.phase {
                if conn.out.is_empty() && !*write_shut {
                    *write_shut = true;
                    // Our FIN after the last byte; the peer's FIN (or the linger deadline) ends it.
                    let _ = conn.socket.shutdown(std::net::Shutdown::Write);
                }
            }
        }
    }

    fn reap(&mut self, now: Millis) {
        while let Some(at) = self.reap_list.pop() {
            let Some(conn) = self.conn_mut(at) else {
                continue;
            };
            match conn.phase {
                Phase::Open { session, .. } => self.pending_disconnects.push(session),
                Phase::Handshake { .. } => self.counters.handshakes_open -= 1,
                Phase::Closing { .. } => {}
            }
            let mut conn = self.conns.remove(at.slot);
            let _ = self.poll.registry().deregister(&mut conn.socket);
            self.generations[at.slot] = self.generations[at.slot].wrapping_add(1).max(1);
            log::debug!("slot {} closed", at.slot);
            // The core hears of it now; its events (a party's `leaves`) go out this turn.
            self.apply_outputs(now);
        }
        self.apply_outputs(now);
    }

    fn begin_shutdown(&mut self, now: Millis) {
        log::info!("shutting down: closing {} connections", self.conns.len());
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.shutdown_deadline = Some(now.saturating_add(self.limits.shutdown_drain_ms));
        let open: Vec<ConnRef> =
            self.conns.iter().map(|(slot, c)| ConnRef { slot, generation: c.generation }).collect();
        for at in open {
            match self.conn_mut(at).map(|c| matches!(c.phase, Phase::Handshake { .. })) {
                Some(true) => {
                    // Out of Handshake now, so a read later this turn cannot still upgrade it.
                    if let Some(conn) = self.conn_mut(at) {
                        conn.phase = Phase::Closing { write_shut: true };
                    }
                    self.counters.handshakes_open -= 1;
                    self.list_reap(at);
                }
                Some(false) => self.close_with(at, CloseCode::Away, "server shutting down", now),
                None => {}
            }
        }
        self.apply_outputs(now);
    }

    fn publish_stats(&mut self, now: Millis) {
        self.counters.connections_open = self.conns.len() as u64;
        self.counters.sessions_open = self.core.session_count() as u64;
        // Summing every queue is O(connections): do it about every 100 ms, not every turn.
        if now.saturating_sub(self.outbound_sampled_at) >= 100 || self.conns.len() < 64 {
            self.outbound_sampled_at = now;
            let sizes = self.conns.iter().map(|(_, c)| c.out.bytes_queued() as u64);
            let (total, max) = sizes.fold((0, 0), |(t, m), q| (t + q, m.max(q)));
            self.counters.outbound_bytes_queued = total;
            self.counters.outbound_bytes_queued_conn_max = max;
        }
        self.stats.publish(&self.counters);
    }
}

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

fn unix_now_s() -> u64 {
    // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Accept errors that pass: out of descriptors or memory, or a peer gone before accept.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED | libc::EPERM)
    )
}

/// Pins the calling thread to one CPU (`--cpu N`), so the loop keeps its caches warm and the
/// scheduler never moves it.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} out of range")));
    }
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write within it (cpu checked above).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
