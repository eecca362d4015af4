//! Deadlines: every timed rule of the driver (a request head due, a closing connection's linger,
//! the keepalive check of an open one, a fragmented message's assembly), kept in queues ordered by time, and what happens when
//! one passes. The loop sleeps until the earliest of these, the core's own timers
//! (`Core::poll_timeout`), a paused accept and the shutdown drain.
//!
//! An entry names a connection by its id, so one that outlived its connection is skipped. The
//! queues are heaps rather than FIFOs: listeners may have different head timeouts, so deadlines
//! need not arrive in order.

use super::conn::{Phase, Transport};
use super::driver::Driver;
use super::ws::CLOSE_AWAY;
use crate::core::{Millis, SessionId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Deadlines of one kind, earliest first.
#[derive(Debug, Default)]
pub(crate) struct DeadlineQueue {
    heap: BinaryHeap<Reverse<(Millis, SessionId)>>,
}

impl DeadlineQueue {
    pub fn push(&mut self, at: Millis, id: SessionId) {
        self.heap.push(Reverse((at, id)));
    }

    pub fn earliest(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest entry if it is due at `now`, removed.
    pub fn pop_due(&mut self, now: Millis) -> Option<(Millis, SessionId)> {
        if self.earliest()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}

/// The driver's deadline queues.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// A request head must be complete by then (`handshake_timeout_ms` for game clients); an
    /// admin request by then (`admin_request_timeout_ms`, one entry per connection, re-armed).
    pub heads: DeadlineQueue,
    /// A closing connection is dropped by then whether or not the peer closed (`close_linger_ms`).
    pub closings: DeadlineQueue,
    /// An open connection's liveness is checked then (every `keepalive_interval_ms`).
    pub keepalives: DeadlineQueue,
    /// A fragmented message must be complete by then (`message_assembly_ms_max`); at most one
    /// entry per connection (see `inbound::InboundFrames::assembly_deadline_to_arm`).
    pub assemblies: DeadlineQueue,
}

impl Deadlines {
    pub fn earliest(&self) -> Option<Millis> {
        [self.heads.earliest(), self.closings.earliest(), self.keepalives.earliest(), self.assemblies.earliest()]
            .into_iter()
            .flatten()
            .min()
    }
}

impl<S: Transport> Driver<S> {
    /// Acts on every deadline due at `now`.
    pub(crate) fn expire(&mut self, now: Millis) {
        while let Some((deadline, id)) = self.deadlines.heads.pop_due(now) {
            let Some(conn) = self.conns.get_mut(id) else { continue };
            if let Phase::Admin(_) = conn.phase {
                self.admin_deadline(id, now);
                continue;
            }
            if matches!(&conn.phase, Phase::Head(head) if head.deadline() == deadline) {
                log::debug!("slot {}: request head not complete within its deadline", id.slot());
                self.counters.handshake_timeouts_total += 1;
                self.metrics.limit_trip(super::metrics::Limit::handshake_timeout_ms);
                self.counters.handshakes_open -= 1;
                // Out of the head phase, so the reap does not count it twice.
                conn.phase = Phase::closing(true);
                self.list_reap(id);
            }
        }
        while let Some((_, id)) = self.deadlines.keepalives.pop_due(now) {
            self.check_liveness(id, now);
        }
        while let Some((_, id)) = self.deadlines.assemblies.pop_due(now) {
            self.check_assembly(id, now);
        }
        while let Some((_, id)) = self.deadlines.closings.pop_due(now) {
            if self.conns.get(id).is_some() {
                self.list_reap(id);
            }
        }
    }

    /// Runs every `keepalive_interval_ms` per open connection: ping a silent peer, drop one that
    /// stayed silent through a whole interval after its ping, and enforce the soft output limit
    /// on a connection nobody is sending to any more.
    fn check_liveness(&mut self, id: SessionId, now: Millis) {
        let interval_ms = self.limits.keepalive_interval_ms;
        let soft_duration_ms = self.limits.outbound_soft_duration_ms;
        let Some(conn) = self.conns.get_mut(id) else { return };
        if !conn.is_open() {
            return;
        }
        if conn.soft_exceeded_since.is_some_and(|since| now.saturating_sub(since) >= soft_duration_ms) {
            return self.cut_off_slow_consumer(id, now);
        }
        let silent_ms = now.saturating_sub(conn.last_heard_at);
        if silent_ms < interval_ms {
            conn.ping_outstanding = false;
        } else if !conn.ping_outstanding {
            conn.ping_outstanding = true;
            self.ping(id);
        } else {
            self.counters.keepalive_timeouts_total += 1;
            log::debug!("session {id}: silent for {silent_ms} ms after a keepalive ping; closing");
            return self.close_with(id, CLOSE_AWAY, "keepalive timeout", now);
        }
        self.deadlines.keepalives.push(now.saturating_add(interval_ms), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_pushed_out_of_order_come_out_in_time_order_when_due() {
        let mut queue = DeadlineQueue::default();
        let (a, b) = (SessionId::new(0, 1), SessionId::new(1, 1));
        queue.push(Millis(30), a);
        queue.push(Millis(10), b);
        assert_eq!(queue.earliest(), Some(Millis(10)));
        assert_eq!(queue.pop_due(Millis(9)), None);
        assert_eq!(queue.pop_due(Millis(30)), Some((Millis(10), b)));
        assert_eq!(queue.pop_due(Millis(30)), Some((Millis(30), a)));
        assert_eq!(queue.pop_due(Millis(99)), None);
    }
}
