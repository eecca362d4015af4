//! Every bound the server enforces, in one place, with its unit and the reason for its default.
//! The README's limits table mirrors this file; `Limits::validate` runs at startup.
//!
//! This module imports nothing from the crate: every other layer reads its bounds from here
//! (the search index converts its own `SearchLimits` from [`Limits`] in `core::search`).

/// All configurable bounds. Units are the last word of each name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections (handshaking or upgraded). Past it a new TCP connection is accepted and
    /// closed at once. 10,000 leaves headroom under the 20,000-file hard limit of this workplace's
    /// machines for the listener, poll and log files.
    pub connections_max: usize,
    /// Connections accepted per loop turn, so an accept storm cannot starve established sessions.
    pub accepts_per_turn_max: usize,
    /// Bytes of the HTTP upgrade request. A real upgrade with a token is well under 2 KiB; 8 KiB
    /// matches common HTTP servers' header limits. Past it: HTTP 431 and close.
    pub handshake_bytes_max: usize,
    /// Time from accept to a completed upgrade. Past it the connection is dropped (slowloris).
    pub handshake_timeout_ms: u64,
    /// Largest WebSocket frame payload accepted from a client, and largest reassembled message.
    /// Party data and statuses are small; 16 KiB leaves room for a 2 KiB label plus envelope
    /// overhead many times over while bounding what one frame can make the server buffer.
    /// Past it: close 1009 "message too big".
    pub message_bytes_max: usize,
    /// tungstenite's initial frame buffer per connection, and the most it takes from the loop's
    /// read batch per call. Small, because every idle connection holds one (the idle-memory
    /// target is 4 KiB a session); it grows on demand for a large frame.
    pub read_buffer_bytes: usize,
    /// Bytes one `recv` may bring in, into a buffer the whole loop shares: a busy connection
    /// costs one syscall per turn, and no connection keeps a socket-sized buffer of its own.
    pub read_batch_bytes: usize,
    /// Frames read from one connection per loop turn before the loop moves on to the others.
    pub frames_per_turn_max: usize,
    /// Bytes queued for one connection that it has not read yet. Past it the connection is
    /// closed (1008 "output buffer limit") as a slow consumer; nobody else notices.
    pub outbound_bytes_max: usize,
    /// Bytes written to one connection per loop turn, so one fast reader with a deep queue
    /// cannot stall the loop.
    pub write_bytes_per_turn_max: usize,
    /// Unsent bytes a connection may hold for at most `outbound_soft_duration_ms` (Redis's soft
    /// `client-output-buffer-limit`): a client that lags briefly is tolerated, one that stays
    /// behind is cut off like one over the hard limit. 256 KiB is about 2,000 typical events.
    pub outbound_soft_bytes_max: usize,
    /// How long a connection may stay above `outbound_soft_bytes_max`.
    pub outbound_soft_duration_ms: u64,
    /// Sustained requests per second per connection (token bucket refill). A game sending party
    /// data at a 60 Hz tick plus chatter stays well under 250. Past it: error 300 replies.
    pub requests_per_second_max: u32,
    /// Requests a connection may send at once above the sustained rate (bucket size).
    pub requests_burst_max: u32,
    /// A connection refused by the rate limit continuously for this long is closed
    /// (1008 "request rate limit"): a client that ignores the error replies is abusive.
    pub rate_limited_close_ms: u64,
    /// Silence after which the server sends a WebSocket ping; a connection that stays silent for
    /// another interval is dropped (close 1001 "keepalive timeout"). Nakama pings every 15 s.
    pub keepalive_interval_ms: u64,
    /// How long a closing connection may take to flush its close frame before it is dropped.
    pub close_linger_ms: u64,
    /// How long a graceful shutdown waits for close frames to flush before exiting anyway.
    pub shutdown_drain_ms: u64,
    /// Largest `max_size` a party may be created with (members, leader included). 256 is
    /// Nakama's bound (SPEC P-1); it can only be lowered. It also bounds the pending join
    /// requests of a party, which are at most its `max_size`.
    pub party_members_max: usize,
    /// Bytes of a party label (a JSON object). 2048 is Nakama's bound (SPEC P-1).
    pub party_label_bytes_max: usize,
    /// Parties one session may be a member of or have a pending join request for. Games keep a
    /// player in one or two parties; 16 leaves room for tools while bounding what one session can
    /// make the server hold (16 × 256 members) and what a disconnect must clean up.
    pub parties_per_session_max: usize,
    /// Bytes of the `data` of one party data message. 8 KiB leaves room in a 16 KiB frame for
    /// the envelope. The request is one frame, so `message_bytes_max` bounds the payload anyway:
    /// a value above it is allowed (lowering the frame limit alone stays valid) and simply never
    /// trips.
    pub party_data_bytes_max: usize,
    /// Bytes of one session's status (SPEC S-1: 2048, Nakama's documented size). Enough for a
    /// small JSON object (match id, activity); larger state belongs in party data or storage.
    /// Past it: error 300 and the old status stays.
    pub status_bytes_max: usize,
    /// Users one session follows at once (SPEC S-2 default 1000: a large friends list). Bounds
    /// the session's follow index and what one status change can fan out to per follower.
    /// Past it: error 220 and nothing of that request is followed.
    pub follows_per_session_max: usize,
    /// User ids plus usernames named in one follow or unfollow request. 256 UUID-sized ids
    /// (about 48 bytes each on the wire) fill 12 KiB, inside the default 16 KiB frame, and a
    /// reply listing 256 users with a 2 KiB status each (about 550 KiB) stays under
    /// `outbound_bytes_max`, so no follow reply cuts its own requester off. Larger friend lists
    /// follow in several requests. Past it: error 300 and nothing changes.
    pub follow_ids_per_request_max: usize,
    /// Bytes of one party search query (SPEC Q-2). 1024 bytes hold dozens of realistic terms;
    /// longer queries only cost parse and match time. Past it: error 300. The decoder refuses
    /// queries over `SEARCH_QUERY_BYTES_CEILING` before copying them.
    pub search_query_bytes_max: usize,
    /// Terms in one search query. 64 covers any hand-written or generated filter and bounds the
    /// per-candidate check (one lookup per term). Past it: error 230.
    pub search_query_terms_max: usize,
    /// Largest page of one search (SPEC Q-1: 1..=100). A page of 100 listings with 2 KiB labels
    /// is about 210 KiB, under `outbound_bytes_max`. Past it: error 200.
    pub search_page_limit_max: usize,
    /// Page size of a search that names no limit (SPEC Q-1: 10).
    pub search_page_limit_default: usize,
    /// Distinct indexed values one wildcard term may expand to. Each expansion is a posting list
    /// to read; 256 keeps a wildcard search within the latency target over 100k parties.
    /// Past it: error 233 (refused, not silently capped, since a capped expansion would return
    /// wrong results).
    pub search_wildcard_expansion_max: usize,
    /// Indexed values one wildcard term may inspect after its literal prefix, so a leading `*`
    /// over a field with 100k distinct values is refused instead of scanned on every search.
    /// Past it: error 233.
    pub search_wildcard_scan_max: usize,
    /// Values one label indexes: every string, number and boolean, array elements each on
    /// their own (`null` is not indexed). What a label costs the index grows with its values,
    /// not its bytes (a 2 KiB label of 255 one-letter keys cost over 100 KiB before this bound,
    /// issue 14): a value new to the index costs about 150–250 bytes besides its text. 16 is
    /// the most at which the costliest label `examples/label_memory.rs` builds (2 KiB of
    /// distinct strings over as many fields as allowed) keeps a party within 8 KiB of server
    /// memory (7.7 KiB measured at these defaults); 24 would take it to 9.3 KiB. Past it: error
    /// 236 and nothing changes.
    pub party_label_values_max: usize,
    /// Distinct fields (flattened paths, `label.a.b`) one label's values fall under; a field new
    /// to the index costs about 100 bytes besides its name. 10 covers a matchmaking label (mode,
    /// region, map, skill, version …) and keeps the costliest label within the 8 KiB above.
    /// The paths of a label's distinct fields also count against `party_label_bytes_max`
    /// (nested keys repeat their parents' path in every field). Past it: error 236.
    pub party_label_fields_max: usize,
    /// The search index's running estimate of its own memory, in bytes (about 1 KiB for a
    /// typical labelled party, 6 KiB for the costliest label at the defaults). A label that
    /// could take the index past it is refused (error 237) and the party keeps its old label
    /// or none; parties without a label are always indexed. 512 MiB holds 100,000 typical
    /// labelled parties five times over, and halves the most every session could make it hold
    /// with the costliest labels at the defaults (10,000 sessions × 16 parties × 6 KiB).
    pub search_index_bytes_max: usize,
    /// Cost units one search may spend (`core/search/cost.rs`: postings, candidates and range
    /// entries visited, terms checked). Past it the search is refused with error 234, before
    /// the work where the planner can count it (candidate enumerations) and as soon as it is
    /// spent otherwise. A unit took 3–14 ns in `cargo bench --bench search` on this project's
    /// machine, so 100,000 bound one search to about half a millisecond of the loop; every query
    /// of the bench's realistic set over 100,000 parties costs less (the costliest, five
    /// boosted should-terms, 85,000).
    pub search_query_cost_max: u64,
    /// Cost units a session's search budget regains per millisecond of the loop's monotonic
    /// clock; each search is charged what it spent. 2,000 (two million a second) is about 1 %
    /// of a core at the measured 4–7 ns per unit of expensive searches: twenty maximal searches
    /// a second, thousands of selective ones. A session whose budget is spent gets error 235
    /// with the milliseconds to wait, at no search cost.
    pub search_budget_cost_per_ms: u64,
    /// Cost units a session's search budget holds at most (its burst): four maximal searches
    /// back to back, so paging through results or refining a query is never refused.
    pub search_budget_burst_cost: u64,
}

/// Hard ceiling for `search_query_bytes_max`: the wire decoder refuses a longer query before
/// copying it, whatever the configured limit says.
pub const SEARCH_QUERY_BYTES_CEILING: usize = 4096;

/// Hard ceiling for `follow_ids_per_request_max`: the wire decoder refuses a longer id list
/// before allocating anything for it, whatever the configured limit says. A 16 KiB frame cannot
/// hold more than about 2,000 ids anyway; this only matters for much larger frame limits.
pub const FOLLOW_IDS_PER_REQUEST_CEILING: usize = 4096;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: 10_000,
            accepts_per_turn_max: 256,
            handshake_bytes_max: 8 * 1024,
            handshake_timeout_ms: 5_000,
            message_bytes_max: 16 * 1024,
            read_buffer_bytes: 256,
            read_batch_bytes: 64 * 1024,
            frames_per_turn_max: 64,
            outbound_bytes_max: 1024 * 1024,
            write_bytes_per_turn_max: 256 * 1024,
            outbound_soft_bytes_max: 256 * 1024,
            outbound_soft_duration_ms: 5_000,
            requests_per_second_max: 250,
            requests_burst_max: 500,
            rate_limited_close_ms: 10_000,
            keepalive_interval_ms: 15_000,
            close_linger_ms: 1_000,
            shutdown_drain_ms: 2_000,
            party_members_max: 256,
            party_label_bytes_max: 2048,
            parties_per_session_max: 16,
            party_data_bytes_max: 8 * 1024,
            status_bytes_max: 2048,
            follows_per_session_max: 1000,
            follow_ids_per_request_max: 256,
            search_query_bytes_max: 1024,
            search_query_terms_max: 64,
            search_page_limit_max: 100,
            search_page_limit_default: 10,
            search_wildcard_expansion_max: 256,
            search_wildcard_scan_max: 16_384,
            party_label_values_max: 16,
            party_label_fields_max: 10,
            search_index_bytes_max: 512 * 1024 * 1024,
            search_query_cost_max: 100_000,
            search_budget_cost_per_ms: 2_000,
            search_budget_burst_cost: 400_000,
        }
    }
}

/// A limit set that cannot work, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError(pub String);

impl std::fmt::Display for LimitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid limits: {}", self.0)
    }
}

impl std::error::Error for LimitsError {}

impl Limits {
    pub fn validate(&self) -> Result<(), LimitsError> {
        let positive = [
            ("connections_max", self.connections_max as u64),
            ("accepts_per_turn_max", self.accepts_per_turn_max as u64),
            ("handshake_bytes_max", self.handshake_bytes_max as u64),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("message_bytes_max", self.message_bytes_max as u64),
            ("read_buffer_bytes", self.read_buffer_bytes as u64),
            ("read_batch_bytes", self.read_batch_bytes as u64),
            ("frames_per_turn_max", self.frames_per_turn_max as u64),
            ("outbound_bytes_max", self.outbound_bytes_max as u64),
            ("write_bytes_per_turn_max", self.write_bytes_per_turn_max as u64),
            ("outbound_soft_bytes_max", self.outbound_soft_bytes_max as u64),
            ("requests_per_second_max", u64::from(self.requests_per_second_max)),
            ("requests_burst_max", u64::from(self.requests_burst_max)),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("party_members_max", self.party_members_max as u64),
            ("parties_per_session_max", self.parties_per_session_max as u64),
            ("party_data_bytes_max", self.party_data_bytes_max as u64),
            ("follows_per_session_max", self.follows_per_session_max as u64),
            ("follow_ids_per_request_max", self.follow_ids_per_request_max as u64),
            ("search_query_bytes_max", self.search_query_bytes_max as u64),
            ("search_query_terms_max", self.search_query_terms_max as u64),
            ("search_page_limit_max", self.search_page_limit_max as u64),
            ("search_page_limit_default", self.search_page_limit_default as u64),
            ("search_wildcard_expansion_max", self.search_wildcard_expansion_max as u64),
            ("search_wildcard_scan_max", self.search_wildcard_scan_max as u64),
            ("party_label_values_max", self.party_label_values_max as u64),
            ("party_label_fields_max", self.party_label_fields_max as u64),
            ("search_index_bytes_max", self.search_index_bytes_max as u64),
            ("search_query_cost_max", self.search_query_cost_max),
            ("search_budget_cost_per_ms", self.search_budget_cost_per_ms),
            ("search_budget_burst_cost", self.search_budget_burst_cost),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(LimitsError(format!("{name} must be positive")));
            }
        }
        // Slot numbers travel as u32 inside session ids.
        if self.connections_max > u32::MAX as usize {
            return Err(LimitsError("connections_max must fit in 32 bits".into()));
        }
        if self.handshake_bytes_max < 256 {
            return Err(LimitsError("handshake_bytes_max below 256 cannot hold an upgrade request".into()));
        }
        if self.outbound_soft_bytes_max > self.outbound_bytes_max {
            return Err(LimitsError("outbound_soft_bytes_max must not exceed outbound_bytes_max".into()));
        }
        if self.outbound_bytes_max < self.message_bytes_max {
            return Err(LimitsError("outbound_bytes_max must hold at least one largest message".into()));
        }
        // Member counts travel as ushort and SPEC P-1 caps parties at 256.
        if self.party_members_max > 256 {
            return Err(LimitsError("party_members_max must be at most 256".into()));
        }
        // status_bytes_max is deliberately not tied to message_bytes_max: a status too large
        // for a frame is unreachable, not harmful, and small-frame test setups keep the default.
        if self.follow_ids_per_request_max > FOLLOW_IDS_PER_REQUEST_CEILING {
            return Err(LimitsError(format!(
                "follow_ids_per_request_max must be at most {FOLLOW_IDS_PER_REQUEST_CEILING}"
            )));
        }
        if self.search_query_bytes_max > SEARCH_QUERY_BYTES_CEILING {
            return Err(LimitsError(format!("search_query_bytes_max must be at most {SEARCH_QUERY_BYTES_CEILING}")));
        }
        // SPEC Q-1: pages are 1..=100; the default must be a valid page.
        if self.search_page_limit_max > 100 {
            return Err(LimitsError("search_page_limit_max must be at most 100".into()));
        }
        if self.search_page_limit_default > self.search_page_limit_max {
            return Err(LimitsError("search_page_limit_default must not exceed search_page_limit_max".into()));
        }
        Ok(())
    }

    /// One line per limit, for the startup log.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_rejected() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits { frames_per_turn_max: 0, ..Limits::default() };
        assert!(zero.validate().unwrap_err().0.contains("frames_per_turn_max"));
        let tiny_out = Limits { outbound_bytes_max: 10, ..Limits::default() };
        assert!(tiny_out.validate().is_err());
        let huge_party = Limits { party_members_max: 257, ..Limits::default() };
        assert!(huge_party.validate().unwrap_err().0.contains("party_members_max"));
        let no_data = Limits { party_data_bytes_max: 0, ..Limits::default() };
        assert!(no_data.validate().unwrap_err().0.contains("party_data_bytes_max"));
        let small_frames = Limits { message_bytes_max: 1024, ..Limits::default() };
        assert_eq!(small_frames.validate(), Ok(()), "the frame limit bounds party data by itself");
        let no_follows = Limits { follows_per_session_max: 0, ..Limits::default() };
        assert!(no_follows.validate().unwrap_err().0.contains("follows_per_session_max"));
        let many_ids = Limits { follow_ids_per_request_max: FOLLOW_IDS_PER_REQUEST_CEILING + 1, ..Limits::default() };
        assert!(many_ids.validate().unwrap_err().0.contains("follow_ids_per_request_max"));
        let big_page = Limits { search_page_limit_max: 101, ..Limits::default() };
        assert!(big_page.validate().unwrap_err().0.contains("search_page_limit_max"));
        let bad_default = Limits { search_page_limit_max: 5, ..Limits::default() };
        assert!(bad_default.validate().unwrap_err().0.contains("search_page_limit_default"));
        let long_query = Limits { search_query_bytes_max: SEARCH_QUERY_BYTES_CEILING + 1, ..Limits::default() };
        assert!(long_query.validate().unwrap_err().0.contains("search_query_bytes_max"));
        let no_refill = Limits { search_budget_cost_per_ms: 0, ..Limits::default() };
        assert!(no_refill.validate().unwrap_err().0.contains("search_budget_cost_per_ms"));
        let no_values = Limits { party_label_values_max: 0, ..Limits::default() };
        assert!(no_values.validate().unwrap_err().0.contains("party_label_values_max"));
    }
}
