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
}

impl<S: Transport> Driver<S> {
    /// `seed` seeds the core's id generator (the OS's CSPRNG in production).
    pub(crate) fn new(limits: Limits, token_key: TokenKey, seed: [u8; 32]) -> Driver<S> {
        Driver {
            conns: ConnTable::new(),
            core: Core::new(limits.clone(), seed),
            outbox: Outbox::new(),
            codecs: Codecs::new(limits.message_bytes_max),
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
            kind,
            socket,
            out: Default::default(),
            phase,
            read_listed: false,
            flush_listed: false,
            budget: RequestBudget::new(burst, now),
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
    /// reap closed connections, handing each one's socket to `release`.
    pub(crate) fn turn(&mut self, now: Millis, release: impl FnMut(S, ListenerId)) {
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
    /// queued, and the connection is dropped at the latest after `close_linger_ms`.
    pub(super) fn enter_closing(&mut self, id: SessionId, now: Millis) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if matches!(conn.phase, Phase::Closing { .. }) {
            return;
        }
        if let Phase::Open { .. } = std::mem::replace(&mut conn.phase, Phase::Closing { write_shut: false }) {
            self.pending_disconnects.push(id);
        }
        self.deadlines.closings.push(now.saturating_add(self.limits.close_linger_ms), id);
        self.list_flush(id);
    }

    /// Removes every connection listed for reaping; the core hears of each open one at once, so
    /// its events (a party's `leaves`) go out this turn.
    fn reap(&mut self, now: Millis, mut release: impl FnMut(S, ListenerId)) {
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
            release(conn.socket, conn.listener);
            self.apply_outputs(now);
        }
        self.apply_outputs(now);
    }

    /// Graceful shutdown of every game connection: one still in its head phase is dropped, an
    /// open one gets a close frame (1001 "server shutting down") and lingers to flush it. Admin
    /// connections keep being served through the drain (`/healthz` answers 503 from now on).
    pub(crate) fn close_all(&mut self, now: Millis) {
        self.draining = true;
        // Parties alive now are recorded as ended by the shutdown (O-3), before their sessions
        // drain away and would end them as `empty`.
        self.core.record_shutdown(self.core_now(now));
        for id in self.conns.ids() {
            let Some(conn) = self.conns.get_mut(id) else { continue };
            match conn.phase {
                Phase::Head(_) => {
                    // Out of the head phase now, so a read later this turn cannot still upgrade it.
                    conn.phase = Phase::Closing { write_shut: true };
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
