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
    /// Connections open on the admin listener at once (O-1); more are accepted and closed at
    /// once. Operators and a game backend need a handful; 64 leaves room for scrapers and tools
    /// while bounding what the admin port can hold, whatever reaches it.
    pub admin_connections_max: usize,
    /// Bytes of one admin request head. Admin requests carry a path, a few headers and a key,
    /// well under 1 KiB; 8 KiB matches common HTTP servers. Past it: 431 and close.
    pub admin_head_bytes_max: usize,
    /// Bytes of one admin request body (`Content-Length`). The largest body today is a token
    /// request of a few hundred bytes; 64 KiB leaves room for bulk bodies of later routes while
    /// bounding what one request makes the loop buffer and parse. Past it: 413 and close.
    pub admin_body_bytes_max: usize,
    /// Time for one admin request (head and body) to arrive, counted from the connection's
    /// accept or its previous response; also how long an idle keep-alive connection is kept.
    /// 10 s is generous for a backend on the same network and short enough that a slow sender
    /// (slowloris) holds a connection slot briefly. Past it: 408 (or a silent close when nothing
    /// of a request had arrived).
    pub admin_request_timeout_ms: u64,
    /// Admin requests answered per loop turn, over every admin connection, so a flood on the
    /// admin port cannot starve game sessions: the rest wait for the next turn. 16 small
    /// requests cost well under a millisecond.
    pub admin_requests_per_turn_max: usize,
    /// User ids banned at once (O-1). About 100 bytes each: 100,000 bans cost about 10 MB.
    /// Expired bans are dropped before the bound is checked. Past it: 507 and nothing changes.
    pub admin_bans_max: usize,
    /// Largest `limit` of a list route of the admin API (parties, history), and its value when
    /// the request names none. 100 parties with 2 KiB labels, or 100 typical history records,
    /// fit well within `admin_response_bytes_max`. Past it: 400 naming `limit`.
    pub admin_page_limit_max: usize,
    /// Bytes of the items of one page of an admin list route (parties, a user's parties,
    /// history): a page stops before it would pass this, and says there is more (it always holds
    /// one item, however large). Bounds what one request makes the loop serialize and queue;
    /// 256 KiB is the default soft output limit, so a page never keeps a connection over it.
    pub admin_response_bytes_max: usize,
    /// Finished party history records kept in memory for `GET /v1/history` (O-3), with or
    /// without a history file. A record of a party of 4 is about 1 KiB, so 10,000 recent
    /// parties cost about 10 MB; records of large parties with churn are bigger (at most
    /// `history_entries_per_party_max` entries each). The oldest goes first.
    pub history_records_max: usize,
    /// Entries (members over time plus leaders over time) one party's history record holds.
    /// Past it the oldest entry of a member who left goes first, then the oldest earlier
    /// leader, and the record says `truncated`; the members present and the current leader are
    /// always kept, so it must exceed `party_members_max`. 320 is a full party of 256 with room
    /// for 63 more comings, goings and leaders; a record stays under about 320 KiB of JSON.
    pub history_entries_per_party_max: usize,
    /// Bytes of history lines waiting to be written to the history file. A healthy disk takes
    /// a turn's lines at once; the buffer covers a slow or failing file. Past it records are
    /// dropped from the file (still kept in memory), counted and logged. 4 MiB holds about 4,000
    /// typical records and any one record (checked at startup).
    pub history_buffer_bytes_max: usize,
    /// Bytes written to the history file per loop turn: one `write` of whole lines, so a burst of
    /// ended parties (a shutdown with thousands alive) cannot stall a turn on the disk. 256 KiB
    /// costs a page-cache copy of well under a millisecond.
    pub history_write_bytes_per_turn_max: usize,
}

/// Most bytes one member or leader entry of a history record takes as JSON: a user id and a
/// username of at most 128 bytes each (`UserId::BYTES_MAX`), doubled for JSON escaping (claims
/// carry no control characters, so nothing escapes longer than `\"`), a session id and two
/// timestamps as decimal numbers, and the field names. A record's fixed fields take less than
/// one entry. A test serializes a worst-case entry and checks it against this.
pub const HISTORY_ENTRY_JSON_BYTES_MAX: usize = 1024;

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
            admin_connections_max: 64,
            admin_head_bytes_max: 8 * 1024,
            admin_body_bytes_max: 64 * 1024,
            admin_request_timeout_ms: 10_000,
            admin_requests_per_turn_max: 16,
            admin_bans_max: 100_000,
            admin_page_limit_max: 100,
            admin_response_bytes_max: 256 * 1024,
            history_records_max: 10_000,
            history_entries_per_party_max: 320,
            history_buffer_bytes_max: 4 * 1024 * 1024,
            history_write_bytes_per_turn_max: 256 * 1024,
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
        // Every field here is a count, a size or a duration for which zero cannot work.
        macro_rules! named {
            ($($field:ident),* $(,)?) => {
                [$((stringify!($field), self.$field as u64)),*]
            };
        }
        let positive = named!(
            connections_max,
            accepts_per_turn_max,
            handshake_bytes_max,
            handshake_timeout_ms,
            message_bytes_max,
            read_buffer_bytes,
            read_batch_bytes,
            frames_per_turn_max,
            outbound_bytes_max,
            write_bytes_per_turn_max,
            outbound_soft_bytes_max,
            requests_per_second_max,
            requests_burst_max,
            keepalive_interval_ms,
            party_members_max,
            parties_per_session_max,
            party_data_bytes_max,
            follows_per_session_max,
            follow_ids_per_request_max,
            search_query_bytes_max,
            search_query_terms_max,
            search_page_limit_max,
            search_page_limit_default,
            search_wildcard_expansion_max,
            search_wildcard_scan_max,
            admin_connections_max,
            admin_head_bytes_max,
            admin_body_bytes_max,
            admin_request_timeout_ms,
            admin_requests_per_turn_max,
            admin_bans_max,
            admin_page_limit_max,
            admin_response_bytes_max,
            history_records_max,
            history_entries_per_party_max,
            history_buffer_bytes_max,
            history_write_bytes_per_turn_max,
        );
        for (name, value) in positive {
            if value == 0 {
                return Err(LimitsError(format!("{name} must be positive")));
            }
        }
        // Slot numbers travel as u32 inside session ids; admin connections share the slab.
        if self.connections_max.saturating_add(self.admin_connections_max) > u32::MAX as usize {
            return Err(LimitsError("connections_max plus admin_connections_max must fit in 32 bits".into()));
        }
        if self.handshake_bytes_max < 256 {
            return Err(LimitsError("handshake_bytes_max below 256 cannot hold an upgrade request".into()));
        }
        if self.admin_head_bytes_max < 256 {
            return Err(LimitsError("admin_head_bytes_max below 256 cannot hold an admin request head".into()));
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
        // A record always keeps the members present (at most party_members_max) and the leader.
        if self.history_entries_per_party_max <= self.party_members_max {
            return Err(LimitsError("history_entries_per_party_max must exceed party_members_max".into()));
        }
        // Any one record (its entries and its fixed fields, less than one more entry) fits the
        // empty buffer, so a record is only ever dropped because the file is behind.
        let record_bytes_max =
            (self.history_entries_per_party_max.saturating_add(1)).saturating_mul(HISTORY_ENTRY_JSON_BYTES_MAX);
        if record_bytes_max > self.history_buffer_bytes_max {
            return Err(LimitsError(format!(
                "history_buffer_bytes_max must hold one whole history record: at least \
                 (history_entries_per_party_max + 1) x {HISTORY_ENTRY_JSON_BYTES_MAX} = {record_bytes_max} bytes"
            )));
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
        let short_history = Limits { history_entries_per_party_max: 256, ..Limits::default() };
        assert!(short_history.validate().unwrap_err().0.contains("history_entries_per_party_max"));
        let small_buffer = Limits { history_buffer_bytes_max: 64 * 1024, ..Limits::default() };
        assert!(small_buffer.validate().unwrap_err().0.contains("history_buffer_bytes_max"));
    }
}
