//! The loop's counters and gauges, declared once. The loop keeps a plain `StatsSnapshot` as its
//! tally and publishes it to the shared atomics once per turn (relaxed stores, no locks), for
//! tests, the load harness and, later, metrics.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Shared, lock-free copy of the loop's counters.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($name: AtomicU64,)*
        }

        /// The counters at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            pub(crate) fn publish(&self, tally: &StatsSnapshot) {
                $(self.$name.store(tally.$name, Ordering::Relaxed);)*
            }

            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

stats! {
    /// Connections in the slab (upgrading, open or closing).
    connections_open,
    /// Sessions the core knows.
    sessions_open,
    /// Connections still in the HTTP upgrade.
    handshakes_open,
    /// Bytes queued for all connections and not yet written (sampled about every 100 ms).
    outbound_bytes_queued,
    /// The largest single connection's queue at the last sample.
    outbound_bytes_queued_conn_max,
    accepted_total,
    /// Connections accepted and closed at once because `connections_max` was reached.
    refused_total,
    /// Connections accepted and closed at once because their address had `connections_per_ip_max`.
    refused_ip_connections_total,
    /// Connections accepted and closed at once because their address passed
    /// `handshakes_per_ip_per_second_max`.
    refused_ip_handshakes_total,
    /// Upgrades completed: sessions opened.
    upgrades_total,
    /// Upgrade requests answered with an HTTP error (401 and the rest).
    upgrades_rejected_total,
    /// Of those, upgrades refused with 429 because the user had `sessions_per_user_max` sessions.
    sessions_per_user_refused_total,
    handshake_timeouts_total,
    /// Connections cut off by the hard or soft output limit.
    slow_consumers_total,
    /// Requests refused (or connections closed) by the request rate limit.
    rate_limited_total,
    /// Connections closed (1008) for breaking a frame limit: `message_fragments_max`,
    /// `message_assembly_ms_max` or `extra_frames_per_second_max`.
    frame_limited_total,
    /// Connections dropped for not answering keepalive pings.
    keepalive_timeouts_total,
    /// Connections still open at a graceful shutdown's drain deadline, cut after a last attempt
    /// at their close frame.
    shutdown_cut_total,
    frames_in_total,
    frames_out_total,
    /// Events encoded: once per codec in use among an event's recipients (SPEC K-1), however
    /// many recipients share the bytes.
    events_encoded_total,
    /// Requests decoded and handed to the core.
    requests_total,
    /// Frames answered with a decode error (text frames included).
    decode_errors_total,
    turns_total,
    /// Code joins with a code no live party has (SPEC L-3; O-2's `huddle_party_code_misses_total`).
    party_code_misses_total,
    /// Invitations pending (SPEC L-2).
    party_invitations_pending,
}
