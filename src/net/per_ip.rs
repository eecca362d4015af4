//! A listener's bounds per source address: connections open at once (`connections_per_ip_max`)
//! and new connections per second, each of which starts a handshake
//! (`handshakes_per_ip_per_second_max`, a token bucket holding one second's worth). Both are off
//! by default (0): a load test from one host, or a server behind a proxy or a carrier NAT, sees
//! many legitimate clients at one address. A refused connection is closed at once after accept,
//! before anything is read from it, like one past `connections_max`.
//!
//! The table holds an entry per address with an open connection, or with a handshake in the
//! last second (its bucket not yet full again); older entries are swept once a second, so it
//! stays bounded by open connections plus one second of new addresses. Addresses are compared
//! in canonical form, so an IPv4 client reaching a dual-stack listener counts as its IPv4
//! address.

use super::ratelimit::TokenBucket;
use crate::core::Millis;
use std::collections::HashMap;
use std::net::IpAddr;

/// How often entries of addresses that went quiet are dropped.
const SWEEP_INTERVAL_MS: u64 = 1_000;

/// Why a connection from an address was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddressRefusal {
    /// The address already has `connections_per_ip_max` open connections.
    Connections,
    /// The address opened connections faster than `handshakes_per_ip_per_second_max`.
    HandshakeRate,
}

impl std::fmt::Display for AddressRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressRefusal::Connections => write!(f, "connections_per_ip_max reached"),
            AddressRefusal::HandshakeRate => write!(f, "handshakes_per_ip_per_second_max exceeded"),
        }
    }
}

struct Peer {
    connections_open: usize,
    handshakes: TokenBucket,
}

/// Open connections and recent handshakes per source address, for one listener.
pub(crate) struct PerAddress {
    /// 0 = no bound.
    connections_max: usize,
    /// 0 = no bound; also the bucket's size.
    handshakes_per_second_max: u32,
    peers: HashMap<IpAddr, Peer>,
    swept_at: Millis,
}

impl PerAddress {
    pub fn new(connections_max: usize, handshakes_per_second_max: u32) -> PerAddress {
        PerAddress { connections_max, handshakes_per_second_max, peers: HashMap::new(), swept_at: Millis(0) }
    }

    fn is_off(&self) -> bool {
        self.connections_max == 0 && self.handshakes_per_second_max == 0
    }

    /// A connection from `ip` was accepted: counts it, or says why it must be closed (then
    /// nothing is counted). With both bounds off it costs nothing and keeps no entry.
    pub fn admit(&mut self, ip: IpAddr, now: Millis) -> Result<(), AddressRefusal> {
        if self.is_off() {
            return Ok(());
        }
        if now.saturating_sub(self.swept_at) >= SWEEP_INTERVAL_MS {
            self.sweep(now);
        }
        let rate = self.handshakes_per_second_max;
        let peer = self
            .peers
            .entry(ip.to_canonical())
            .or_insert_with(|| Peer { connections_open: 0, handshakes: TokenBucket::new(rate, now) });
        if self.connections_max > 0 && peer.connections_open >= self.connections_max {
            return Err(AddressRefusal::Connections);
        }
        if rate > 0 && !peer.handshakes.try_take(now, rate, rate) {
            return Err(AddressRefusal::HandshakeRate);
        }
        peer.connections_open += 1;
        Ok(())
    }

    /// A connection from `ip` that [`PerAddress::admit`] counted has closed.
    pub fn release(&mut self, ip: IpAddr, now: Millis) {
        if self.is_off() {
            return;
        }
        let ip = ip.to_canonical();
        let Some(peer) = self.peers.get_mut(&ip) else {
            debug_assert!(false, "a counted connection from {ip} has an entry");
            return;
        };
        debug_assert!(peer.connections_open > 0, "a counted connection from {ip} is open");
        peer.connections_open = peer.connections_open.saturating_sub(1);
        if self.is_forgettable(&ip, now) {
            self.peers.remove(&ip);
        }
    }

    fn is_forgettable(&self, ip: &IpAddr, now: Millis) -> bool {
        let rate = self.handshakes_per_second_max;
        self.peers.get(ip).is_some_and(|p| p.connections_open == 0 && p.handshakes.is_full(now, rate, rate))
    }

    /// Drops the entries that remember nothing a new one would not.
    fn sweep(&mut self, now: Millis) {
        let rate = self.handshakes_per_second_max;
        self.peers.retain(|_, p| p.connections_open > 0 || !p.handshakes.is_full(now, rate, rate));
        self.swept_at = now;
    }

    /// Connections counted across every address (for the listener's consistency check).
    pub fn connections_counted(&self) -> usize {
        self.peers.values().map(|p| p.connections_open).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn off_admits_everyone_and_keeps_nothing() {
        let mut table = PerAddress::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(table.admit(ip("10.0.0.1"), Millis(0)), Ok(()));
        }
        assert!(table.peers.is_empty());
        table.release(ip("10.0.0.1"), Millis(0));
    }

    #[test]
    fn connections_per_address_are_bounded_and_freed_on_close() {
        let mut table = PerAddress::new(2, 0);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert_eq!(table.admit(a, Millis(0)), Ok(()));
        assert_eq!(table.admit(a, Millis(0)), Ok(()));
        assert_eq!(table.admit(a, Millis(0)), Err(AddressRefusal::Connections));
        assert_eq!(table.admit(b, Millis(0)), Ok(()), "another address has its own count");
        // An IPv4 client seen through a dual-stack listener is the same address.
        assert_eq!(table.admit(ip("::ffff:10.0.0.1"), Millis(0)), Err(AddressRefusal::Connections));
        table.release(ip("::ffff:10.0.0.1"), Millis(0));
        assert_eq!(table.admit(a, Millis(0)), Ok(()));
        assert_eq!(table.connections_counted(), 3);
        for address in [a, a, b] {
            table.release(address, Millis(0));
        }
        assert!(table.peers.is_empty(), "an address with nothing open is forgotten");
    }

    #[test]
    fn handshakes_per_address_are_rate_limited_and_quiet_addresses_are_swept() {
        let mut table = PerAddress::new(0, 4);
        let a = ip("2001:db8::1");
        let admitted = (0..10).filter(|_| table.admit(a, Millis(0)).is_ok()).count();
        assert_eq!(admitted, 4, "one second's worth at once");
        assert_eq!(table.admit(a, Millis(0)), Err(AddressRefusal::HandshakeRate));
        assert_eq!(table.admit(a, Millis(250)), Ok(()), "one more every 250 ms");
        for _ in 0..5 {
            table.release(a, Millis(250));
        }
        assert_eq!(table.peers.len(), 1, "remembered while its bucket refills");
        // Many addresses, each closing at once: the sweep drops them once their buckets are full.
        for i in 0..100u8 {
            let other = IpAddr::from([10, 1, 0, i]);
            table.admit(other, Millis(300)).unwrap();
            table.release(other, Millis(300));
        }
        assert_eq!(table.peers.len(), 101);
        assert_eq!(table.admit(ip("10.9.9.9"), Millis(1_300)), Ok(()));
        assert_eq!(table.peers.len(), 1, "only the address with an open connection is left");
    }
}
