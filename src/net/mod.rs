//! The mio driver: one `Poll` on one thread owns the listeners and every connection. It turns
//! socket bytes into requests for the sans-IO core and the core's outputs into bytes on sockets,
//! and decides nothing about parties or statuses.
//!
//! One turn of the loop ([`Server::run`]): poll (timeout from the earliest deadline, the
//! driver's or the core's, zero when work is left over); note readiness; accept up to a bound
//! per listener; read each listed connection up to a frame bound, handing each request to the
//! core and applying its outputs at once (replies and events encoded once, framed once, queued
//! per recipient as refcounted bytes); run the core's due timers; expire deadlines; flush every
//! connection with queued output (`writev`, up to a byte bound); reap closed connections. Only
//! listener or poll failure stops the server; a connection's error closes it alone.
//!
//! Rooms:
//! - `mod.rs`: [`Server`] (bind, the loop turn, shutdown) and its [`ServerHandle`].
//! - `listener.rs`: the listener table; a listener has a [`ListenerKind`] (game clients, the
//!   admin API) and its own [`ListenerLimits`]. `per_ip.rs`: a listener's bounds per source
//!   address (connections, handshakes per second; off by default).
//! - `admin.rs`: admin API connections (keep-alive HTTP requests routed by `crate::admin`,
//!   executed through the core); `metrics.rs`: the counters behind `/metrics` and their
//!   Prometheus exposition; `history.rs`: the party history file (one bounded write per turn,
//!   reopened on SIGHUP).
//! - `driver.rs`: the socket-independent `Driver` (connections, core, one turn's steps), which
//!   the `conn_bytes` fuzz target drives over memory.
//! - `conn.rs`: a connection, its phases, and the table with the one generation-checked lookup
//!   (a connection is named by its core `SessionId`).
//! - `read.rs`: the read path (shared `recv` buffer, heads, frames, closing reads).
//! - `http.rs`: the bounded HTTP/1.1 head reader, shared by every listener kind.
//! - `handshake.rs`: the WebSocket upgrade decision and token check on a parsed head.
//! - `ws.rs`: WebSocket glue (tungstenite over our buffers, close frames, what a read means).
//! - `inbound.rs`: a peek at each client frame header before tungstenite sees it: fragments per
//!   message, assembly time, and the budget of control and continuation frames.
//! - `dispatch.rs`: frame → codec → core → outputs; the only caller of the wire codec.
//! - `deadlines.rs`: head, linger and keepalive deadlines.
//! - `outbound.rs`: the outbound queue, its limits and flushing; `frame.rs`: server frames.
//! - `ratelimit.rs`: the per-connection request budget; `stats.rs`: counters and gauges.

mod admin;
mod conn;
mod deadlines;
mod dispatch;
mod driver;
pub mod frame;
pub mod handshake;
mod history;
pub mod http;
mod inbound;
mod listener;
mod metrics;
pub mod outbound;
mod per_ip;
pub mod ratelimit;
mod read;
mod stats;
mod ws;

pub use listener::{ListenerKind, ListenerLimits, ListenerSpec};
pub use stats::{Stats, StatsSnapshot};

pub(crate) use admin::AdminState;
pub(crate) use conn::Transport;
pub(crate) use driver::Driver;
pub(crate) use listener::ListenerId;

use crate::admin::AdminKey;
use crate::auth::TokenKey;
use crate::core::Millis;
use crate::limits::Limits;
use listener::Listeners;
use mio::net::TcpStream;
use mio::{Events, Poll, Token, Waker};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
/// mio events taken per poll; more simply wait for the next turn.
const EVENTS_PER_POLL: usize = 1024;

/// What `huddle serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The game listener's address (WebSocket clients).
    pub listen: SocketAddr,
    pub limits: Limits,
    pub token_key: TokenKey,
    /// The admin API's listener and key (SPEC O-1); `None` serves no admin API.
    pub admin: Option<AdminConfig>,
    /// Where finished party history records are appended as JSON lines (SPEC O-3); `None`
    /// keeps them in memory only.
    pub history_file: Option<PathBuf>,
}

/// Where the admin API listens and the key it wants.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub key: AdminKey,
    /// Serve the lobby playground (K-3) at `/playground` (`--playground`).
    pub playground: bool,
}

impl ServerConfig {
    /// The listener table this configuration asks for; every listener is one entry.
    pub fn listeners(&self) -> Vec<ListenerSpec> {
        let game =
            ListenerSpec { kind: ListenerKind::Game, addr: self.listen, limits: ListenerLimits::game(&self.limits) };
        let admin = self.admin.as_ref().map(|admin| ListenerSpec {
            kind: ListenerKind::Admin,
            addr: admin.listen,
            limits: ListenerLimits::admin(&self.limits),
        });
        std::iter::once(game).chain(admin).collect()
    }
}

/// Talks to a running server from another thread: read its stats, ask it to shut down.
#[derive(Clone)]
pub struct ServerHandle {
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    reopen_history: Arc<AtomicBool>,
    waker: Arc<Waker>,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
}

impl ServerHandle {
    /// The game listener's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's bound address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Asks the loop to shut down gracefully: stop accepting game clients, send every client a
    /// close frame ("server shutting down"), flush for at most `shutdown_drain_ms` (the admin
    /// API keeps answering meanwhile, `/healthz` with 503), then return from `run`.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            log::error!("could not wake the server loop for shutdown: {e}");
        }
    }

    /// Asks the loop to close the history file and open its path again (log rotation: the
    /// binary calls this on SIGHUP). Lines already buffered go to the new file.
    pub fn reopen_history(&self) {
        self.reopen_history.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            log::error!("could not wake the server loop to reopen the history file: {e}");
        }
    }
}

pub struct Server {
    poll: Poll,
    listeners: Listeners,
    driver: Driver<TcpStream>,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    started: Instant,
    shutdown_deadline: Option<Millis>,
    shutdown_drain_ms: u64,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    reopen_history: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Server {
    /// Binds every listener and prepares the loop; `run` starts serving. A listener that cannot
    /// bind (a port in use) or limits that cannot work are errors here, before anything runs.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        config.limits.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let listeners = Listeners::bind(&config.listeners(), poll.registry())?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listeners
            .local_addr(ListenerKind::Game)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no game listener configured"))?;
        let admin_addr = listeners.local_addr(ListenerKind::Admin);
        let seed = crate::auth::random_bytes()?;
        let mut driver = Driver::new(config.limits.clone(), config.token_key, seed);
        if let Some(path) = config.history_file {
            driver.write_history_to(path);
        }
        if let (Some(admin), Some(bound)) = (config.admin, admin_addr) {
            let instance: [u8; 16] = crate::auth::random_bytes()?;
            driver.serve_admin(admin::AdminState {
                key: admin.key,
                instance_id: instance.iter().map(|b| format!("{b:02x}")).collect(),
                started_at_ms: driver::unix_now_ms(),
                // The bound addresses: a port 0 is known only now, and the mint's loopback rule
                // is about where the listener really is.
                playground: admin.playground.then(|| crate::admin::Playground::new(local_addr, bound)),
            });
        }
        Ok(Server {
            poll,
            listeners,
            shutdown_drain_ms: config.limits.shutdown_drain_ms,
            driver,
            local_addr,
            admin_addr,
            started: Instant::now(),
            shutdown_deadline: None,
            stats: Arc::new(Stats::default()),
            shutdown: Arc::new(AtomicBool::new(false)),
            reopen_history: Arc::new(AtomicBool::new(false)),
            waker,
        })
    }

    /// The game listener's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stats: self.stats.clone(),
            shutdown: self.shutdown.clone(),
            reopen_history: self.reopen_history.clone(),
            waker: self.waker.clone(),
            local_addr: self.local_addr,
            admin_addr: self.admin_addr,
        }
    }

    /// Serves until a graceful shutdown completes. Errors only when poll or a listener fails.
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
            let turn_started = Instant::now();
            let now = self.now_at(turn_started);
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    token => match self.listeners.by_token(token) {
                        Some(listener) => self.listeners.note_ready(listener),
                        None => self.driver.note_ready(
                            token.0,
                            event.is_readable(),
                            event.is_writable(),
                            event.is_read_closed(),
                            event.is_error(),
                        ),
                    },
                }
            }
            if self.shutdown.load(Ordering::Acquire) && self.shutdown_deadline.is_none() {
                self.begin_shutdown(now);
            }
            if self.reopen_history.swap(false, Ordering::AcqRel) {
                self.driver.reopen_history();
            }
            self.listeners.accept(now, self.poll.registry(), &mut self.driver)?;
            let (registry, listeners) = (self.poll.registry(), &mut self.listeners);
            self.driver.turn(now, |mut socket, listener, peer| {
                let _ = registry.deregister(&mut socket);
                listeners.connection_closed(listener, peer, now);
            });
            self.driver.counters.turns_total += 1;
            self.driver.publish_stats(now, &self.stats);
            self.driver.observe_turn(turn_started.elapsed());
            if let Some(deadline) = self.shutdown_deadline {
                // Admin connections are served through the drain and do not hold it up.
                if self.listeners.connections_open(ListenerKind::Game) == 0 {
                    self.driver.finish_history(now);
                    log::info!("shutdown complete");
                    return Ok(());
                }
                if now >= deadline {
                    let cut = self.driver.cut_at_drain_deadline();
                    self.driver.finish_history(now);
                    self.driver.publish_stats(now, &self.stats);
                    log::warn!(
                        "shutdown complete; {} connections cut at the drain deadline (shutdown_drain_ms {}) with \
                         {} bytes unsent, each after a last attempt at its close frame",
                        cut.connections,
                        self.shutdown_drain_ms,
                        cut.bytes_unsent
                    );
                    return Ok(());
                }
            }
        }
    }

    fn now(&self) -> Millis {
        self.now_at(Instant::now())
    }

    fn now_at(&self, at: Instant) -> Millis {
        Millis(at.saturating_duration_since(self.started).as_millis() as u64)
    }

    /// Zero when work is left over; else until the earliest deadline of the driver, the core, a
    /// paused listener or the shutdown drain; else forever.
    fn poll_timeout(&self) -> Option<Duration> {
        if self.driver.has_work() || self.listeners.has_work() {
            return Some(Duration::ZERO);
        }
        let deadlines = [self.driver.poll_timeout(), self.listeners.earliest_deadline(), self.shutdown_deadline];
        let earliest = deadlines.into_iter().flatten().min()?;
        // Round up so the turn that wakes finds the deadline passed, not 1 ms short.
        Some(Duration::from_millis(earliest.saturating_sub(self.now()) + 1))
    }

    fn begin_shutdown(&mut self, now: Millis) {
        let open = self.listeners.connections_open(ListenerKind::Game);
        log::info!("shutting down: closing {open} game connections; the admin API answers until they are gone");
        self.listeners.stop_accepting(ListenerKind::Game, self.poll.registry());
        let deadline = now.saturating_add(self.shutdown_drain_ms);
        self.shutdown_deadline = Some(deadline);
        self.driver.close_all(now, deadline);
    }
}
