//! The socket-independent half of the loop: every connection, the core, and one turn's work on
//! them (read, core timers, deadlines, flush, reap). [`super::Server`] adds the poll, the
//! listeners and the clock; the `conn_bytes` fuzz target drives the same `Driver` over
//! in-memory streams. Each step lives in its own room: `read.rs` (the read path), `ws.rs`
//! (WebSocket glue), `dispatch.rs` (frame → codec → core → outputs), `deadlines.rs`,
//! `outbound.rs` (queue limits and flushing); this file holds the tables, connection life
//! (insert, close, reap, shutdown) and the stats.

use super::admin::{AdminConn, AdminState};
use super::conn::{Conn, ConnTable, Phase, Transport};
use super::deadlines::Deadlines;
use super::dispatch::EventFrames;
use super::history::{HistoryFile, Pushed};
use super::http::HeadReader;
use super::inbound::InboundFrames;
use super::listener::{ListenerId, ListenerKind, ListenerLimits};
use super::metrics::{Limit, Metrics};
use super::ratelimit::RequestBudget;
use super::read::ReadScratch;
use super::stats::{Stats, StatsSnapshot};
use super::ws::{self, CLOSE_AWAY};
use crate::auth::TokenKey;
use crate::core::{Core, HistoryRecord, Millis, Now, Outbox, SessionId, UnixMillis};
use crate::limits::Limits;
use crate::wire::Codecs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tungstenite::protocol::WebSocketConfig;

/// Summing every queue into the stats is O(connections): about this often, not every turn.
const OUTBOUND_SAMPLE_INTERVAL_MS: u64 = 100;

pub(crate) struct Driver<S> {
    pub(super) conns: ConnTable<S>,
    pub(super) core: Core,
    /// The core's outputs, executed in order by dispatch; kept for its buffers.
    pub(super) outbox: Outbox,
    pub(super) codecs: Codecs,
    /// One event's frames per codec during a fan-out (dispatch), kept for its buffers.
    pub(super) event_frames: EventFrames,
    /// One `recv` buffer for every connection (see `read::ReadScratch`).
    pub(super) scratch: ReadScratch,
    pub(super) limits: Limits,
    pub(super) ws_config: WebSocketConfig,
    pub(super) token_key: TokenKey,
    /// Connections to read this turn (readiness, or frames left over from the last turn).
    pub(super) read_list: Vec<SessionId>,
    /// Connections with queued output to flush this turn.
    pub(super) flush_list: Vec<SessionId>,
    /// Connections to remove at the end of the turn.
    pub(super) reap_list: Vec<SessionId>,
    /// Sessions that left the open phase and still have to be disconnected from the core.
    pub(super) pending_disconnects: Vec<SessionId>,
    pub(super) deadlines: Deadlines,
    /// The loop's own tally; counters only grow, gauges are set before publishing.
    pub(super) counters: StatsSnapshot,
    /// Labelled counters for `/metrics` (`metrics.rs`).
    pub(super) metrics: Metrics,
    /// The admin API's key and identity; `None` when no admin listener is configured.
    pub(super) admin: Option<AdminState>,
    /// Admin requests this turn may still answer (`admin_requests_per_turn_max`).
    pub(super) admin_requests_left: usize,
    /// A graceful shutdown is draining the game connections (`/healthz` says 503).
    pub(super) draining: bool,
    /// The history file (`history.rs`), or none; written once per turn.
    pub(super) history: HistoryFile,
    /// Records taken from the core this turn (kept for its buffer).
    history_taken: Vec<Arc<HistoryRecord>>,
    /// When queue sizes were last summed into the gauges.
    outbound_sampled_at: Millis,
    /// Set by a graceful shutdown: the drain deadline, which then governs every closing
    /// connection instead of `close_linger_ms`.
    drain_deadline: Option<Millis>,
}

/// What a graceful shutdown cut at its drain deadline.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DrainCut {
    /// Connections still open at the deadline.
    pub connections: usize,
    /// Bytes they had queued and not sent, frames dropped to make room for the close included.
    pub bytes_unsent: usize,
}

impl<S: Transport> Driver<S> {
    /// `seed` seeds the core's id generator (the OS's CSPRNG in production).
    pub(crate) fn new(limits: Limits, token_key: TokenKey, seed: [u8; 32]) -> Driver<S> {
        Driver {
            conns: ConnTable::new(),
            core: Core::new(limits.clone(), seed),
            outbox: Outbox::new(),
            codecs: Codecs::new(&limits),
            event_frames: EventFrames::default(),
            scratch: ReadScratch::new(limits.read_batch_bytes),
            ws_config: ws::websocket_config(&limits),
            limits,
            token_key,
            read_list: Vec::new(),
            flush_list: Vec::new(),
            reap_list: Vec::new(),
            pending_disconnects: Vec::new(),
            deadlines: Deadlines::default(),
            counters: StatsSnapshot::default(),
            metrics: Metrics::default(),
            admin: None,
            admin_requests_left: 0,
            draining: false,
            history: HistoryFile::new(None),
            history_taken: Vec::new(),
            outbound_sampled_at: Millis(0),
            drain_deadline: None,
        }
    }

    /// Appends finished party history records to the file at `path` (SPEC O-3).
    pub(crate) fn write_history_to(&mut self, path: PathBuf) {
        self.history = HistoryFile::new(Some(path));
    }

    /// Rotation (SIGHUP): the history file is closed and the path opened again.
    pub(crate) fn reopen_history(&mut self) {
        self.history.reopen();
    }

    /// Takes the core's finished history records into the file's buffer and makes this turn's
    /// one bounded write.
    fn write_history(&mut self, now: Millis) {
        self.core.take_finished_history(&mut self.history_taken);
        for record in self.history_taken.drain(..) {
            if self.history.push(&record, &self.limits) == Pushed::Dropped {
                self.metrics.limit_trip(Limit::history_buffer_bytes_max);
            }
        }
        self.history.flush(now, &self.limits);
    }

    /// At exit: the records of the last turn, and everything buffered, written without the
    /// per-turn bound.
    pub(crate) fn finish_history(&mut self, now: Millis) {
        self.write_history(now);
        self.history.finish(now, &self.limits);
    }

    /// Serves the admin API on connections of the admin listener, with `state`'s key.
    pub(crate) fn serve_admin(&mut self, state: AdminState) {
        self.admin = Some(state);
    }

    /// Records how long one loop turn took (`huddle_loop_turn_seconds`).
    pub(crate) fn observe_turn(&mut self, turn: std::time::Duration) {
        self.metrics.loop_turns.observe(turn);
    }

    /// Takes in a connection accepted on `listener`: its request head is due within the
    /// listener's head timeout. Returns its id.
    pub(crate) fn insert(
        &mut self,
        socket: S,
        peer: IpAddr,
        listener: ListenerId,
        kind: ListenerKind,
        limits: &ListenerLimits,
        now: Millis,
    ) -> SessionId {
        let deadline = now.saturating_add(limits.head_timeout_ms);
        let burst = self.limits.requests_burst_max;
        let phase = match kind {
            ListenerKind::Game => {
                self.counters.handshakes_open += 1;
                Phase::Head(HeadReader::new(limits.head_bytes_max, deadline))
            }
            ListenerKind::Admin => Phase::Admin(AdminConn::new(limits.head_bytes_max, deadline)),
        };
        let id = self.conns.insert(|id| Conn {
            id,
            listener,
            peer,
            kind,
            socket,
            out: Default::default(),
            phase,
            read_listed: false,
            flush_listed: false,
            budget: RequestBudget::new(burst, now),
            inbound: InboundFrames::new(&self.limits, now),
            last_heard_at: now,
            ping_outstanding: false,
            soft_exceeded_since: None,
            read_drained: false,
            peer_closed: false,
            pending: Default::default(),
        });
        self.deadlines.heads.push(deadline, id);
        self.counters.accepted_total += 1;
        id
    }

    /// Readiness for the connection in `slot` (a poll token names a slot).
    pub(crate) fn note_ready(&mut self, slot: usize, readable: bool, writable: bool, read_closed: bool, error: bool) {
        let Some(id) = self.conns.id_at(slot) else {
            return; // a stale event for a slot emptied this turn
        };
        if readable || read_closed || error {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.read_drained = false; // a fresh edge: the kernel has bytes
                conn.peer_closed |= read_closed;
            }
            self.list_read(id);
        }
        // Edge-triggered EPOLLOUT comes with every EPOLLIN: list only real work.
        let has_output = self.conns.get(id).is_some_and(|c| !c.out.is_empty());
        if (writable && has_output) || error {
            self.list_flush(id);
        }
    }

    /// One turn's work after polling and accepting: read every listed connection (dispatching
    /// what it sent), run due core timers, act on passed deadlines, flush queued output, and
    /// reap closed connections, handing each one's socket, listener and peer to `release`.
    pub(crate) fn turn(&mut self, now: Millis, release: impl FnMut(S, ListenerId, IpAddr)) {
        self.admin_requests_left = self.limits.admin_requests_per_turn_max;
        self.read_listed(now);
        self.run_core_timers(now);
        self.expire(now);
        self.flush_listed(now);
        self.reap(now, release);
        self.write_history(now);
    }

    /// Work is left for the next turn: the loop must not sleep.
    pub(crate) fn has_work(&self) -> bool {
        !self.read_list.is_empty()
            || !self.flush_list.is_empty()
            || !self.reap_list.is_empty()
            || self.history.has_work()
    }

    /// The earliest of the driver's deadlines and the core's timers.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Millis> {
        [self.deadlines.earliest(), self.core.poll_timeout(), self.history.poll_deadline()].into_iter().flatten().min()
    }

    pub(super) fn list_read(&mut self, id: SessionId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.read_listed {
                conn.read_listed = true;
                self.read_list.push(id);
            }
        }
    }

    pub(super) fn list_flush(&mut self, id: SessionId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.flush_listed {
                conn.flush_listed = true;
                self.flush_list.push(id);
            }
        }
    }

    pub(super) fn list_reap(&mut self, id: SessionId) {
        self.reap_list.push(id);
    }

    /// Leaves the head or open phase for Closing: queued bytes still flush, nothing new is
    /// queued, and the connection is dropped at the latest after `close_linger_ms`, or, for a
    /// game connection during a graceful shutdown, at the drain deadline (so the linger never
    /// cuts a connection the drain is still waiting for). The drain does not wait for admin
    /// connections, which keep their linger: a closed one must not hold an admin slot until the
    /// process exits.
    pub(super) fn enter_closing(&mut self, id: SessionId, now: Millis) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if matches!(conn.phase, Phase::Closing { .. }) {
            return;
        }
        if let Phase::Open { .. } = std::mem::replace(&mut conn.phase, Phase::closing(false)) {
            self.pending_disconnects.push(id);
        }
        if self.drain_deadline.is_none() || conn.kind == ListenerKind::Admin {
            self.deadlines.closings.push(now.saturating_add(self.limits.close_linger_ms), id);
        }
        self.list_flush(id);
    }

    /// Removes every connection listed for reaping; the core hears of each open one at once, so
    /// its events (a party's `leaves`) go out this turn.
    fn reap(&mut self, now: Millis, mut release: impl FnMut(S, ListenerId, IpAddr)) {
        while let Some(id) = self.reap_list.pop() {
            let Some(conn) = self.conns.remove(id) else {
                continue;
            };
            match conn.phase {
                Phase::Open { .. } => self.pending_disconnects.push(id),
                Phase::Head(_) => self.counters.handshakes_open -= 1,
                Phase::Admin(_) | Phase::Closing { .. } => {}
            }
            log::debug!("slot {} closed", id.slot());
            release(conn.socket, conn.listener, conn.peer);
            self.apply_outputs(now);
        }
        self.apply_outputs(now);
    }

    /// Graceful shutdown of every game connection: one still in its head phase is dropped, an
    /// open one gets a close frame (1001 "server shutting down") behind what it has queued and
    /// lingers to flush it until `drain_deadline`, where [`Driver::cut_at_drain_deadline`] ends
    /// what is left. Admin connections keep being served through the drain (`/healthz` answers
    /// 503 from now on).
    pub(crate) fn close_all(&mut self, now: Millis, drain_deadline: Millis) {
        self.draining = true;
        self.drain_deadline = Some(drain_deadline);
        // Parties alive now are recorded as ended by the shutdown (O-3), before their sessions
        // drain away and would end them as `empty`.
        self.core.record_shutdown(self.core_now(now));
        for id in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(id) else { continue };
            match conn.phase {
                Phase::Head(_) => {
                    // Out of the head phase now, so a read later this turn cannot still upgrade it.
                    conn.phase = Phase::closing(true);
                    self.counters.handshakes_open -= 1;
                    self.list_reap(id);
                }
                Phase::Admin(_) => {}
                Phase::Open { .. } | Phase::Closing { .. } => {
                    self.close_with(id, CLOSE_AWAY, "server shutting down", now)
                }
            }
        }
        self.apply_outputs(now);
    }

    /// The drain deadline passed with connections still open: each gets a last attempt at its
    /// close frame (everything queued before it that has not started is dropped, so a client
    /// whose queue could not flush still has a chance to learn why the server went away), then
    /// the caller drops them all. Returns what was cut, for the warning.
    pub(crate) fn cut_at_drain_deadline(&mut self) -> DrainCut {
        let mut cut = DrainCut::default();
        for id in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(id) else { continue };
            if conn.kind == ListenerKind::Admin {
                // The admin API is served to the end and does not hold up the drain; one that is
                // closing (its last response queued) is no game connection cut either.
                continue;
            }
            cut.connections += 1;
            cut.bytes_unsent += conn.out.truncate_all_but_last();
            // One write, whatever the socket takes; the process is about to let go of it.
            let _ = conn.out.write_to(&mut conn.socket, self.limits.write_bytes_per_turn_max);
            cut.bytes_unsent += conn.out.bytes_queued();
        }
        self.counters.shutdown_cut_total += cut.connections as u64;
        cut
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Both clocks for the core: the loop's monotonic `now` and the wall clock. A wall clock set
    /// before 1970 reads as 0 rather than failing: it only stamps what users see.
    pub(super) fn core_now(&self, now: Millis) -> Now {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Now::new(now, UnixMillis(wall))
    }

    /// Publishes the tally to the shared stats (once per turn).
    pub(crate) fn publish_stats(&mut self, now: Millis, stats: &Stats) {
        self.counters.connections_open = self.conns.len() as u64;
        self.counters.sessions_open = self.core.session_count() as u64;
        let lobby = self.core.lobby_stats();
        self.counters.party_code_misses_total = lobby.code_misses_total;
        self.counters.party_invitations_pending = lobby.invitations_pending as u64;
        if now.saturating_sub(self.outbound_sampled_at) >= OUTBOUND_SAMPLE_INTERVAL_MS || self.conns.len() < 64 {
            self.outbound_sampled_at = now;
            let sizes = self.conns.iter().map(|c| c.out.bytes_queued() as u64);
            let (total, max) = sizes.fold((0, 0), |(t, m), q| (t + q, m.max(q)));
            self.counters.outbound_bytes_queued = total;
            self.counters.outbound_bytes_queued_conn_max = max;
        }
        stats.publish(&self.counters);
    }

    /// The fuzz target varies the read batch and the frame budget per input, so frames straddle
    /// every edge; the server sets both once from its limits.
    #[doc(hidden)]
    pub(crate) fn reshape_reads_for_fuzzing(&mut self, read_batch_bytes: usize, frames_per_turn_max: usize) {
        self.limits.frames_per_turn_max = frames_per_turn_max.max(1);
        if self.limits.read_batch_bytes != read_batch_bytes {
            self.limits.read_batch_bytes = read_batch_bytes.max(1);
            self.scratch = ReadScratch::new(self.limits.read_batch_bytes);
        }
    }

    /// Forgets what admin requests left in the core (bans), for the `admin_bytes` fuzz target.
    #[doc(hidden)]
    pub(crate) fn forget_admin_state_for_fuzzing(&mut self) {
        self.core.debug_lift_all_bans();
    }

    /// Asserts that nothing is left of past connections: no connection, no listed work, no
    /// pending deadline or disconnect, no session or party in the core, its invariants intact.
    pub(crate) fn assert_idle(&self) {
        assert!(self.conns.is_empty(), "connections left");
        assert!(!self.has_work() && self.pending_disconnects.is_empty(), "listed work left");
        assert_eq!(self.deadlines.earliest(), None, "deadlines left");
        assert!(self.outbox.is_empty(), "outputs left");
        assert_eq!(self.counters.handshakes_open, 0, "a head-phase connection counted twice or never");
        assert_eq!((self.core.session_count(), self.core.party_count()), (0, 0), "sessions or parties left");
        self.core.assert_invariants();
    }

    pub(crate) fn counters(&self) -> &StatsSnapshot {
        &self.counters
    }
}

pub(super) fn unix_now_ms() -> u64 {
    // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(super) fn unix_now_s() -> u64 {
    // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{self, Claims};
    use crate::core::{Cid, Request};
    use std::cell::RefCell;
    use std::io::{self, Read, Write};
    use std::rc::Rc;

    /// A connection's far end in memory: the bytes the client sent, and a receive window the
    /// test opens and closes (writes beyond it would block, as a client that does not read).
    #[derive(Default)]
    struct Peer {
        to_server: Vec<u8>,
        read_at: usize,
        from_server: Vec<u8>,
        window: usize,
    }

    struct Pipe(Rc<RefCell<Peer>>);

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut peer = self.0.borrow_mut();
            let n = buf.len().min(peer.to_server.len() - peer.read_at);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let at = peer.read_at;
            buf[..n].copy_from_slice(&peer.to_server[at..at + n]);
            peer.read_at += n;
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut peer = self.0.borrow_mut();
            let n = buf.len().min(peer.window);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            peer.window -= n;
            peer.from_server.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Pipe {
        fn shutdown_write(&mut self) {}
    }

    /// The server's frames in `bytes` (after its 101 response): opcode and payload of each.
    fn server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
        let mut rest = &bytes[head..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let (len, header) = match rest[1] & 0x7F {
                126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                127 => (u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize, 10),
                len => (usize::from(len), 2),
            };
            assert!(rest.len() >= header + len, "a whole frame, never a torn one");
            frames.push((rest[0] & 0x0F, rest[header..header + len].to_vec()));
            rest = &rest[header + len..];
        }
        frames
    }

    /// A client that stopped reading has replies queued at shutdown: its close frame would wait
    /// behind them forever. At the drain deadline (and not before: the linger no longer cuts
    /// connections during a drain) the queued replies are dropped and the close frame is tried
    /// on its own, so the client learns why the server went away.
    #[test]
    fn a_client_whose_queue_cannot_flush_gets_a_close_frame_attempt_at_the_drain_deadline() {
        let limits = Limits::default();
        let key = TokenKey::new("k");
        let mut driver: Driver<Pipe> = Driver::new(limits.clone(), key.clone(), [1; 32]);
        let claims = Claims { user_id: "u".into(), username: "U".into(), expires_at_unix_s: u64::MAX / 2 };
        let upgrade = format!(
            "GET /ws?token={} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            auth::mint(&claims, &key)
        );
        let peer =
            Rc::new(RefCell::new(Peer { to_server: upgrade.into_bytes(), window: usize::MAX, ..Peer::default() }));
        let listener_limits = ListenerLimits::game(&limits);
        let id = driver.insert(
            Pipe(peer.clone()),
            [127, 0, 0, 1].into(),
            ListenerId(0),
            ListenerKind::Game,
            &listener_limits,
            Millis(0),
        );
        let turn = |driver: &mut Driver<Pipe>, now: u64| {
            driver.note_ready(id.slot() as usize, true, true, false, false);
            driver.turn(Millis(now), |_, _, _| {});
        };
        turn(&mut driver, 0);
        let welcome_bytes = peer.borrow().from_server.len();
        assert!(welcome_bytes > 0, "the 101 and the welcome went out");
        // The client stops reading, then sends ten pings: ten replies wait in the queue.
        peer.borrow_mut().window = 0;
        let mut encoder = crate::wire::Encoder::new();
        for cid in 1..=10 {
            let request = encoder.request(Cid(cid), &Request::Ping).to_vec();
            let mut frame = vec![0x82, 0x80 | request.len() as u8, 0, 0, 0, 0];
            frame.extend_from_slice(&request); // a zero mask leaves the payload as it is
            peer.borrow_mut().to_server.extend(frame);
        }
        turn(&mut driver, 10);
        let queued = driver.conns.get(id).unwrap().out.bytes_queued();
        assert!(queued > 0, "ten replies queued");
        driver.close_all(Millis(20), Millis(2_020));
        for now in [30, 1_020, 1_500, 2_019] {
            turn(&mut driver, now);
            assert_eq!(driver.connection_count(), 1, "the linger does not cut a draining connection at {now} ms");
        }
        // The drain deadline: the client's window opens by a little, enough for a close frame.
        peer.borrow_mut().window = 64;
        let cut = driver.cut_at_drain_deadline();
        assert_eq!(cut.connections, 1);
        assert_eq!(cut.bytes_unsent, queued, "the replies were dropped for the close frame");
        assert_eq!(driver.counters().shutdown_cut_total, 1);
        let frames = server_frames(&peer.borrow().from_server);
        let (opcode, payload) = frames.last().expect("frames");
        assert_eq!(*opcode, 0x8, "the last frame is the close frame");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
        assert_eq!(&payload[2..], b"server shutting down");
    }

    /// A drain in progress: one game session that never answers its close frame, and an admin
    /// connection whose client asked `/healthz` with `Connection: close` during the drain and
    /// never closes its side. Returns the driver at 20 ms, the two ids, and the listeners of the
    /// connections released so far (shared with [`drain_turn`]).
    fn drain_with_a_closing_admin_connection() -> (Driver<Pipe>, [SessionId; 2], Rc<RefCell<Vec<ListenerId>>>) {
        let limits = Limits::default();
        let key = TokenKey::new("k");
        let mut driver: Driver<Pipe> = Driver::new(limits.clone(), key.clone(), [2; 32]);
        driver.serve_admin(AdminState {
            key: crate::admin::AdminKey::new(b"admin"),
            instance_id: "i".into(),
            started_at_ms: 0,
            playground: None,
        });
        let claims = Claims { user_id: "u".into(), username: "U".into(), expires_at_unix_s: u64::MAX / 2 };
        let upgrade = format!(
            "GET /ws?token={} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            auth::mint(&claims, &key)
        );
        let gamer =
            Rc::new(RefCell::new(Peer { to_server: upgrade.into_bytes(), window: usize::MAX, ..Peer::default() }));
        let game_limits = ListenerLimits::game(&limits);
        let game = driver.insert(
            Pipe(gamer),
            [127, 0, 0, 1].into(),
            ListenerId(0),
            ListenerKind::Game,
            &game_limits,
            Millis(0),
        );
        let operator = Rc::new(RefCell::new(Peer { window: usize::MAX, ..Peer::default() }));
        let admin_limits = ListenerLimits::admin(&limits);
        let admin = driver.insert(
            Pipe(operator.clone()),
            [127, 0, 0, 1].into(),
            ListenerId(1),
            ListenerKind::Admin,
            &admin_limits,
            Millis(0),
        );
        let released = Rc::new(RefCell::new(Vec::new()));
        let ids = [game, admin];
        drain_turn(&mut driver, ids, &released, 0);
        assert_eq!(driver.core.session_count(), 1, "the game session is open");
        driver.close_all(Millis(10), Millis(60_010));
        operator.borrow_mut().to_server.extend_from_slice(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
        drain_turn(&mut driver, ids, &released, 20);
        let answer = String::from_utf8(operator.borrow().from_server.clone()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "the admin API answers during the drain: {answer}");
        assert_eq!(driver.connection_count(), 2, "the admin connection waits for its client to close");
        (driver, ids, released)
    }

    fn drain_turn(driver: &mut Driver<Pipe>, ids: [SessionId; 2], released: &Rc<RefCell<Vec<ListenerId>>>, now: u64) {
        for id in ids {
            driver.note_ready(id.slot() as usize, true, true, false, false);
        }
        driver.turn(Millis(now), |_, listener, _| released.borrow_mut().push(listener));
    }

    /// The drain waits for game connections only: an admin connection closed during it keeps
    /// its `close_linger_ms`, rather than holding an admin slot until the process exits.
    #[test]
    fn an_admin_connection_closed_during_the_drain_lingers_as_usual() {
        let (mut driver, ids, released) = drain_with_a_closing_admin_connection();
        drain_turn(&mut driver, ids, &released, 20 + Limits::default().close_linger_ms);
        assert_eq!(*released.borrow(), [ListenerId(1)], "the closing admin connection is dropped after its linger");
        assert_eq!(driver.connection_count(), 1, "the game connection is still draining");
    }

    /// What the drain deadline cuts is the game connections it waited for: a closing admin
    /// connection is not counted (nor written to) as one.
    #[test]
    fn a_closing_admin_connection_is_not_counted_as_cut_at_the_drain_deadline() {
        let (mut driver, _, _) = drain_with_a_closing_admin_connection();
        let cut = driver.cut_at_drain_deadline();
        assert_eq!(cut.connections, 1, "only the game connection was cut");
        assert_eq!(driver.counters().shutdown_cut_total, 1);
    }
}
