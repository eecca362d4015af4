//! Listeners: a table of bound sockets, each with a kind (what its connections speak) and its
//! own limits: game clients, and the admin HTTP API (SPEC O-1), one more entry in the table
//! whose connections take their own phase (`admin.rs`), not a second loop. Accepting is bounded per turn, stops
//! at the listener's connection limit, and pauses after a transient failure (out of
//! descriptors) instead of spinning or stopping.

use super::driver::Driver;
use super::metrics::Limit;
use super::per_ip::{AddressRefusal, PerAddress};
use crate::core::Millis;
use crate::limits::Limits;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Pause before retrying accept after the process ran out of file descriptors.
const ACCEPT_RETRY_MS: u64 = 100;
/// Listener tokens count down from here; connection tokens are slab slots, far below.
const LISTENER_TOKEN_TOP: usize = usize::MAX - 1;

/// What a listener's connections speak.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// Game clients: an HTTP upgrade to WebSocket with a session token, then requests.
    Game,
    /// The admin HTTP API: keep-alive HTTP/1.1 requests with the admin key.
    Admin,
}

/// One listener's own bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open from this listener at once; more are accepted and closed at once.
    pub connections_max: usize,
    /// Connections accepted per loop turn; the rest wait for the next turn.
    pub accepts_per_turn_max: usize,
    /// Bytes of one request head; more is answered with 431.
    pub head_bytes_max: usize,
    /// Time from accept until the request head is complete; later, the connection is dropped.
    pub head_timeout_ms: u64,
    /// Connections open at once from one source address; 0 = no bound (`per_ip.rs`).
    pub connections_per_ip_max: usize,
    /// New connections per second from one source address; 0 = no bound.
    pub handshakes_per_ip_per_second_max: u32,
}

impl ListenerLimits {
    /// The game listener's bounds, from the server's limits.
    pub fn game(limits: &Limits) -> ListenerLimits {
        ListenerLimits {
            connections_max: limits.connections_max,
            accepts_per_turn_max: limits.accepts_per_turn_max,
            head_bytes_max: limits.handshake_bytes_max,
            head_timeout_ms: limits.handshake_timeout_ms,
            connections_per_ip_max: limits.connections_per_ip_max,
            handshakes_per_ip_per_second_max: limits.handshakes_per_ip_per_second_max,
        }
    }

    /// The admin listener's bounds, from the server's limits.
    pub fn admin(limits: &Limits) -> ListenerLimits {
        ListenerLimits {
            connections_max: limits.admin_connections_max,
            accepts_per_turn_max: limits.accepts_per_turn_max.min(limits.admin_connections_max),
            head_bytes_max: limits.admin_head_bytes_max,
            head_timeout_ms: limits.admin_request_timeout_ms,
            // The admin key, not the address, guards the admin API; its connection bound is small.
            connections_per_ip_max: 0,
            handshakes_per_ip_per_second_max: 0,
        }
    }
}

/// A listener to bind: what, where, within which bounds.
#[derive(Clone, Debug)]
pub struct ListenerSpec {
    pub kind: ListenerKind,
    pub addr: SocketAddr,
    pub limits: ListenerLimits,
}

/// A listener's place in the table; every connection remembers the one it came in on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenerId(pub u8);

struct Listener {
    kind: ListenerKind,
    limits: ListenerLimits,
    local_addr: SocketAddr,
    /// `None` once it stopped accepting (shutdown).
    socket: Option<TcpListener>,
    /// Readiness seen and not yet drained to WouldBlock.
    accept_ready: bool,
    /// After a transient accept failure: no accepting before then.
    accept_paused_until: Option<Millis>,
    connections_open: usize,
    /// Open connections and recent handshakes per source address.
    per_address: PerAddress,
}

/// Every listener of the loop.
pub(crate) struct Listeners {
    table: Vec<Listener>,
}

impl Listeners {
    /// Binds every listener of `specs` and registers it with the poll. A bind failure (a port in
    /// use) is returned as is: the server does not start half-listening.
    pub fn bind(specs: &[ListenerSpec], registry: &Registry) -> io::Result<Listeners> {
        assert!(specs.len() < 256, "Invariant: listener ids fit in a byte");
        let mut table = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let what = match spec.kind {
                ListenerKind::Game => "game",
                ListenerKind::Admin => "admin",
            };
            // The error names the address and the listener, so a taken port is easy to find.
            let mut socket = TcpListener::bind(spec.addr)
                .map_err(|e| io::Error::new(e.kind(), format!("on {} ({what}): {e}", spec.addr)))?;
            registry.register(&mut socket, token(index), Interest::READABLE)?;
            table.push(Listener {
                kind: spec.kind,
                limits: spec.limits.clone(),
                local_addr: socket.local_addr()?,
                socket: Some(socket),
                accept_ready: false,
                accept_paused_until: None,
                connections_open: 0,
                per_address: PerAddress::new(
                    spec.limits.connections_per_ip_max,
                    spec.limits.handshakes_per_ip_per_second_max,
                ),
            });
        }
        Ok(Listeners { table })
    }

    /// The listener a poll token names, if it names one.
    pub fn by_token(&self, token: Token) -> Option<ListenerId> {
        let index = LISTENER_TOKEN_TOP.checked_sub(token.0)?;
        (index < self.table.len()).then_some(ListenerId(index as u8))
    }

    pub fn note_ready(&mut self, id: ListenerId) {
        self.table[usize::from(id.0)].accept_ready = true;
    }

    /// The bound address of the first listener of `kind`.
    pub fn local_addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.table.iter().find(|l| l.kind == kind).map(|l| l.local_addr)
    }

    /// Connections open from the listeners of `kind`.
    pub fn connections_open(&self, kind: ListenerKind) -> usize {
        self.table.iter().filter(|l| l.kind == kind).map(|l| l.connections_open).sum()
    }

    /// A listener can accept right now (the loop must not sleep).
    pub fn has_work(&self) -> bool {
        self.table.iter().any(|l| l.accept_ready && l.accept_paused_until.is_none() && l.socket.is_some())
    }

    /// When a paused listener may accept again.
    pub fn earliest_deadline(&self) -> Option<Millis> {
        self.table.iter().filter_map(|l| l.accept_paused_until).min()
    }

    /// A connection that came in on `id` from `peer` is gone.
    pub fn connection_closed(&mut self, id: ListenerId, peer: IpAddr, now: Millis) {
        let listener = &mut self.table[usize::from(id.0)];
        debug_assert!(listener.connections_open > 0, "a listener's count matches its connections");
        listener.connections_open = listener.connections_open.saturating_sub(1);
        listener.per_address.release(peer, now);
        debug_assert!(
            listener.per_address.connections_counted() <= listener.connections_open,
            "per-address counts cover only open connections"
        );
    }

    /// Stops accepting on every listener of `kind` (the game listener at shutdown).
    pub fn stop_accepting(&mut self, kind: ListenerKind, registry: &Registry) {
        for listener in self.table.iter_mut().filter(|l| l.kind == kind) {
            if let Some(mut socket) = listener.socket.take() {
                let _ = registry.deregister(&mut socket);
            }
        }
    }

    /// Accepts on every ready listener, up to each one's bounds, into `driver`. Errors only when
    /// a listener itself failed.
    pub fn accept(&mut self, now: Millis, registry: &Registry, driver: &mut Driver<TcpStream>) -> io::Result<()> {
        for (index, listener) in self.table.iter_mut().enumerate() {
            if listener.accept_paused_until.is_some_and(|until| now >= until) {
                listener.accept_paused_until = None;
                listener.accept_ready = true;
            }
            if listener.accept_ready && listener.accept_paused_until.is_none() {
                listener.accept_some(ListenerId(index as u8), now, registry, driver)?;
            }
        }
        Ok(())
    }
}

impl Listener {
    fn accept_some(
        &mut self,
        id: ListenerId,
        now: Millis,
        registry: &Registry,
        driver: &mut Driver<TcpStream>,
    ) -> io::Result<()> {
        for _ in 0..self.limits.accepts_per_turn_max {
            let Some(socket) = self.socket.as_ref() else {
                return Ok(());
            };
            let (mut socket, peer) = match socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if crate::os::is_transient_accept_error(&e) => {
                    log::warn!("accept failed ({e}); retrying in {ACCEPT_RETRY_MS} ms");
                    self.accept_paused_until = Some(now.saturating_add(ACCEPT_RETRY_MS));
                    return Ok(());
                }
                Err(e) => {
                    log::error!("listener failed, stopping: {e}");
                    return Err(e);
                }
            };
            if self.connections_open >= self.limits.connections_max {
                driver.counters.refused_total += 1;
                driver.metrics.limit_trip(match self.kind {
                    ListenerKind::Game => Limit::connections_max,
                    ListenerKind::Admin => Limit::admin_connections_max,
                });
                log::debug!("refused {peer}: connections_max {} reached", self.limits.connections_max);
                continue; // dropping the socket closes it
            }
            if let Err(refusal) = self.per_address.admit(peer.ip(), now) {
                let limit = match refusal {
                    AddressRefusal::Connections => {
                        driver.counters.refused_ip_connections_total += 1;
                        Limit::connections_per_ip_max
                    }
                    AddressRefusal::HandshakeRate => {
                        driver.counters.refused_ip_handshakes_total += 1;
                        Limit::handshakes_per_ip_per_second_max
                    }
                };
                driver.metrics.limit_trip(limit);
                log::debug!("refused {peer}: {refusal}");
                continue; // dropping the socket closes it
            }
            // Small frames are the whole workload; Nagle would add up to 40 ms to each.
            let _ = socket.set_nodelay(true);
            let slot = driver.conns.vacant_id().slot() as usize;
            if let Err(e) = registry.register(&mut socket, Token(slot), Interest::READABLE | Interest::WRITABLE) {
                log::warn!("could not register {peer}: {e}");
                self.per_address.release(peer.ip(), now);
                continue;
            }
            let conn = driver.insert(socket, peer.ip(), id, self.kind, &self.limits, now);
            self.connections_open += 1;
            log::debug!("accepted {peer} in slot {}", conn.slot());
        }
        Ok(())
    }
}

fn token(index: usize) -> Token {
    Token(LISTENER_TOKEN_TOP - index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_tokens_map_back_to_their_entry_and_nothing_else_does() {
        let poll = mio::Poll::new().unwrap();
        let game = ListenerSpec {
            kind: ListenerKind::Game,
            addr: "127.0.0.1:0".parse().unwrap(),
            limits: ListenerLimits::game(&Limits::default()),
        };
        let listeners = Listeners::bind(&[game.clone(), game], poll.registry()).unwrap();
        assert_eq!(listeners.by_token(token(0)), Some(ListenerId(0)));
        assert_eq!(listeners.by_token(token(1)), Some(ListenerId(1)));
        assert_eq!(listeners.by_token(token(2)), None);
        assert_eq!(listeners.by_token(Token(0)), None, "a connection's token is no listener");
        assert_eq!(listeners.by_token(Token(usize::MAX)), None, "the waker's token is no listener");
        assert_ne!(listeners.local_addr(ListenerKind::Game).unwrap().port(), 0);
    }
}
