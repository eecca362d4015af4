//! One connection as the driver sees it (its byte stream, outbound queue and phase of life) and
//! the table that holds them all. A connection is named by the [`SessionId`] it has (or will
//! have) in the core: slab slot plus the slot's generation, so work listed for a slot never
//! reaches the connection that takes the slot over. [`ConnTable::get_mut`] is the one
//! generation-checked lookup.

use super::admin::AdminConn;
use super::http::HeadReader;
use super::inbound::InboundFrames;
use super::listener::{ListenerId, ListenerKind};
use super::outbound::OutboundQueue;
use super::ratelimit::RequestBudget;
use crate::core::{Millis, SessionId};
use crate::wire::ConnCodec;
use bytes::BytesMut;
use slab::Slab;
use std::io::{Read, Write};
use std::net::IpAddr;
use tungstenite::protocol::WebSocketContext;

/// What the driver needs of a connection's byte stream: a non-blocking TCP socket in the
/// server, an in-memory stream in the `conn_bytes` fuzz target (so the fuzzer runs the driver's
/// own read path). Reads and writes answer `WouldBlock` when they cannot proceed.
pub(crate) trait Transport: Read + Write {
    /// Half-closes the sending side after the last byte (our FIN); errors are of no interest,
    /// the peer's FIN or the linger deadline ends the connection either way.
    fn shutdown_write(&mut self);
}

impl Transport for mio::net::TcpStream {
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

pub(crate) enum Phase {
    /// Reading an HTTP request head (its deadline is in the driver's queue and in the reader).
    Head(HeadReader),
    /// Upgraded to WebSocket: `ws` parses frames; the core knows the connection's id as a
    /// session; `codec` encodes and decodes its messages.
    Open { ws: Box<WebSocketContext>, codec: ConnCodec },
    /// An admin API connection (`admin.rs`): HTTP requests, one after another, for its life.
    Admin(AdminConn),
    /// A final response or close frame is queued: flush it, half-close, wait for the peer's
    /// FIN (so our last bytes are not lost to a reset) until the linger deadline, then drop.
    /// What the peer still sends meanwhile is read and discarded, up to a bound
    /// (`closing_discard_bytes_max`, counted in `discarded_bytes`).
    Closing { write_shut: bool, discarded_bytes: usize },
}

impl Phase {
    /// Closing, with nothing discarded yet.
    pub fn closing(write_shut: bool) -> Phase {
        Phase::Closing { write_shut, discarded_bytes: 0 }
    }
}

pub(crate) struct Conn<S> {
    /// This connection's name; as a session, the core knows it by the same id.
    pub id: SessionId,
    /// The listener it came in on, and what that listener serves.
    pub listener: ListenerId,
    /// The peer's address (the listener counts connections per address).
    pub peer: IpAddr,
    pub kind: ListenerKind,
    pub socket: S,
    pub out: OutboundQueue,
    pub phase: Phase,
    /// Listed in the driver's read list (more frames may be buffered than one turn handles).
    pub read_listed: bool,
    /// Listed in the driver's flush list.
    pub flush_listed: bool,
    /// Request rate budget (SPEC O-4; `requests_per_second_max`).
    pub budget: RequestBudget,
    /// The client's frames as counted before tungstenite sees them (fragments, assembly time,
    /// control and continuation frames).
    pub inbound: InboundFrames,
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

impl<S> Conn<S> {
    /// Upgraded and known to the core as a session.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }
}

/// Every connection of the loop, in a slab with a generation per slot.
pub(crate) struct ConnTable<S> {
    slab: Slab<Conn<S>>,
    /// Next generation of each slot; bumped when a connection leaves the slot. Never 0.
    generations: Vec<u32>,
}

impl<S> ConnTable<S> {
    pub fn new() -> ConnTable<S> {
        ConnTable { slab: Slab::new(), generations: Vec::new() }
    }

    /// The id the next inserted connection will get (its slot is the poll token to register).
    pub fn vacant_id(&self) -> SessionId {
        let slot = self.slab.vacant_key();
        let generation = self.generations.get(slot).copied().unwrap_or(1);
        SessionId::new(slot_u32(slot), generation)
    }

    /// Inserts the connection `make` builds for its id, which is returned.
    pub fn insert(&mut self, make: impl FnOnce(SessionId) -> Conn<S>) -> SessionId {
        let id = self.vacant_id();
        let slot = id.slot() as usize;
        if self.generations.len() <= slot {
            self.generations.resize(slot + 1, 1);
        }
        let conn = make(id);
        debug_assert_eq!(conn.id, id, "a connection carries the id it was inserted under");
        let key = self.slab.insert(conn);
        debug_assert_eq!(key, slot, "the slab filled the vacant slot");
        id
    }

    /// The connection named `id`, if it is still the one in that slot.
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Conn<S>> {
        self.slab.get_mut(id.slot() as usize).filter(|c| c.id == id)
    }

    pub fn get(&self, id: SessionId) -> Option<&Conn<S>> {
        self.slab.get(id.slot() as usize).filter(|c| c.id == id)
    }

    /// The id of whatever connection holds `slot` now (a poll token names a slot, not a
    /// generation: a stale readiness event is harmless, it only causes a read that blocks).
    pub fn id_at(&self, slot: usize) -> Option<SessionId> {
        self.slab.get(slot).map(|c| c.id)
    }

    /// Removes the connection and retires its id for good.
    pub fn remove(&mut self, id: SessionId) -> Option<Conn<S>> {
        self.get(id)?;
        let slot = id.slot() as usize;
        self.generations[slot] = self.generations[slot].wrapping_add(1).max(1);
        Some(self.slab.remove(slot))
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn ids(&self) -> Vec<SessionId> {
        self.slab.iter().map(|(_, c)| c.id).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Conn<S>> {
        self.slab.iter().map(|(_, c)| c)
    }
}

/// Slots travel as u32 inside session ids; `Limits::validate` keeps `connections_max` within it.
fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).expect("Invariant: connections_max (validated to fit u32) bounds the slab's slots")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: SessionId) -> Conn<()> {
        Conn {
            id,
            listener: ListenerId(0),
            peer: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            kind: ListenerKind::Game,
            socket: (),
            out: OutboundQueue::default(),
            phase: Phase::closing(true),
            read_listed: false,
            flush_listed: false,
            budget: RequestBudget::new(1, Millis(0)),
            inbound: InboundFrames::new(&crate::limits::Limits::default(), Millis(0)),
            last_heard_at: Millis(0),
            ping_outstanding: false,
            soft_exceeded_since: None,
            read_drained: false,
            peer_closed: false,
            pending: BytesMut::new(),
        }
    }

    #[test]
    fn a_reused_slot_gets_a_new_generation_and_the_old_id_finds_nothing() {
        let mut table = ConnTable::new();
        let first = table.insert(conn);
        assert!(table.get_mut(first).is_some());
        assert!(table.remove(first).is_some());
        assert!(table.remove(first).is_none(), "an id is removed once");
        let second = table.insert(conn);
        assert_eq!(second.slot(), first.slot(), "the slot is reused");
        assert_ne!(second.generation(), first.generation());
        assert!(table.get_mut(first).is_none(), "the stale id misses the new connection");
        assert_eq!(table.id_at(second.slot() as usize), Some(second));
        assert_eq!(table.len(), 1);
    }
}
