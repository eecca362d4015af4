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
    /// Open connections from one source address (IPv4-mapped IPv6 counts as IPv4). 0 = off, the
    /// default: a load test from one host, or a server behind a proxy or NAT, sees every client
    /// at one address. Past it the new TCP connection is accepted and closed at once, counted.
    /// For a server facing players directly the README recommends 256 (a campus or carrier NAT
    /// puts hundreds of players behind one address).
    pub connections_per_ip_max: usize,
    /// New connections (each one starts a handshake) one source address may open per second,
    /// as a token bucket holding one second's worth. 0 = off, the default, for the same reasons
    /// as `connections_per_ip_max`. Past it the connection is accepted and closed at once,
    /// counted. The README recommends 20 for a server facing players directly.
    pub handshakes_per_ip_per_second_max: u32,
    /// Bytes of the HTTP upgrade request. A real upgrade with a token is well under 2 KiB; 8 KiB
    /// matches common HTTP servers' header limits. Past it: HTTP 431 and close.
    pub handshake_bytes_max: usize,
    /// Time from accept to a completed upgrade. Past it the connection is dropped (slowloris).
    pub handshake_timeout_ms: u64,
    /// Sessions one user may have at once (SPEC C-2a; Centrifugo's `user_connection_limit`). 8
    /// covers a player's devices and reconnects racing their old session's close; it also bounds
    /// what one status update fans out to among the user's own sessions and, with
    /// `follow_ids_per_request_max`, the size of a follow reply. Past it the upgrade is refused
    /// with HTTP 429.
    pub sessions_per_user_max: usize,
    /// Largest WebSocket frame payload accepted from a client, and largest reassembled message.
    /// Party data and statuses are small; 16 KiB leaves room for a 2 KiB label plus envelope
    /// overhead many times over while bounding what one frame can make the server buffer.
    /// Past it: close 1009 "message too big".
    pub message_bytes_max: usize,
    /// Frames one message may arrive in (RFC 6455 fragmentation). Common clients send each
    /// message in one frame; 64 leaves room for a client that fragments a 16 KiB message into
    /// 256-byte pieces while bounding what an endless run of continuation frames can cost before
    /// it is noticed. Past it: close 1008 "message_fragments_max exceeded".
    pub message_fragments_max: usize,
    /// Time from a message's first fragment to its last. Its bytes are already bounded by
    /// `message_bytes_max`; this bounds how long a connection may hold a half-assembled message
    /// (and answer keepalive pings meanwhile). 5 s is far beyond any client that fragments while
    /// sending at network speed. Past it: close 1008 "message_assembly_ms_max exceeded".
    pub message_assembly_ms_max: u64,
    /// Frames per second a connection may send beyond one per message (token bucket refill):
    /// control frames (ping, pong, close) and continuation frames, each of which tungstenite
    /// handles inside one read without producing a request the request budget would see. A
    /// message in one frame (what common clients send) is charged to the request budget only,
    /// so the hot path pays nothing here. Normal clients send a pong per keepalive ping (one per
    /// 15 s) and perhaps pings of their own; 1000 also fits a client that splits every message
    /// into four frames at the full request rate. Past it: close 1008
    /// "extra_frames_per_second_max exceeded".
    pub extra_frames_per_second_max: u32,
    /// Frames beyond one per message a connection may send at once above the sustained rate
    /// (bucket size): two seconds' worth.
    pub extra_frames_burst_max: u32,
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
    /// closed (1008 "output buffer limit") as a slow consumer; nobody else notices. 3 MiB holds
    /// the largest follow reply the defaults allow in either codec (Nakama's JSON, which escapes
    /// text: 2,408,960 bytes, 2.30 MiB, see [`Limits::follow_reply_bytes_max`]) on top of a
    /// backlog at the soft limit, so a follow reply never cuts off a client that keeps up.
    /// Raising it costs little: it is the ceiling of a burst, not what a slow client may hold.
    /// A connection stays above `outbound_soft_bytes_max` for at most
    /// `outbound_soft_duration_ms`, so the soft limit bounds the memory each slow client holds
    /// for long; a client that keeps up drains a worst-case follow reply in a few turns
    /// (`write_bytes_per_turn_max` at a time).
    pub outbound_bytes_max: usize,
    /// Bytes written to one connection per loop turn, so one fast reader with a deep queue
    /// cannot stall the loop.
    pub write_bytes_per_turn_max: usize,
    /// Output queued during a turn's reads is written as soon as it averages this many bytes
    /// per connection waiting for it, instead of at the end of the turn, so a long turn (a
    /// thousand busy connections) does not hold the replies and events of its first reads
    /// until its last. Each such `writev` still carries about this much, because the batching
    /// is the throughput: on this project's machine a loopback `writev` costs about 6 µs of
    /// CPU whether it carries one 220-byte frame or sixteen, 0.2 µs a frame at 64 frames
    /// (docs/PERFORMANCE.md, *Bounded turns*). 8 KiB is about 37 party-data events, past the
    /// knee of that curve, so only turns long enough to have queued that much per connection
    /// are split. 0 writes only at the end of the turn.
    pub flush_batch_bytes: usize,
    /// Unsent bytes a connection may hold for at most `outbound_soft_duration_ms` (Redis's soft
    /// `client-output-buffer-limit`): a client that lags briefly is tolerated, one that stays
    /// behind is cut off like one over the hard limit. 256 KiB is about 2,000 typical events. It,
    /// not `outbound_bytes_max`, bounds the memory a slow client holds for long: 10,000 clients
    /// behind at once hold about 2.5 GiB, and only briefly more.
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
    /// How long a closing connection may take to flush its close frame (and the peer to close
    /// its side) before it is dropped. Not during a graceful shutdown: there the drain deadline
    /// governs every closing connection, so the two never disagree.
    pub close_linger_ms: u64,
    /// Bytes read and discarded from a closing connection while waiting for the peer's FIN. A
    /// peer that closes properly sends little after our close frame (requests already in flight,
    /// its close reply); one that keeps sending, like a flood the server closed with 1008, would
    /// otherwise cost a `recv` per 2 KiB until the linger ends. 64 KiB is four largest messages.
    /// Past it the server stops reading: the kernel's receive window fills and stops the sender,
    /// and the linger deadline drops the connection (with a reset, for the unread bytes).
    pub closing_discard_bytes_max: usize,
    /// How long a graceful shutdown waits for close frames to flush and peers to close. At the
    /// deadline each connection still open has the frames queued before its close frame dropped
    /// (unless already being written), gets one last write of that close frame, and is cut, with
    /// a warning that says how many and how many bytes went unsent.
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
    /// Past it: error 300 and the old status stays. A status is display text: C0 control
    /// characters other than tab, line feed and carriage return, and DEL, are refused (error
    /// 200), so no codec writes a status byte as more than two (JSON escapes a control character
    /// as six) and the follow reply bound holds for every codec.
    pub status_bytes_max: usize,
    /// Users one session follows at once (SPEC S-2 default 1000: a large friends list). Bounds
    /// the session's follow index and what one status change can fan out to per follower.
    /// Past it: error 220 and nothing of that request is followed.
    pub follows_per_session_max: usize,
    /// Users one follow request may resolve to (SPEC S-2: its ids plus every connected user each
    /// username names, each user once, the caller's own user not counted), and user ids one
    /// unfollow request may name. 64 (SPEC S-2's default) covers a friends list page; larger
    /// lists follow in several requests. It bounds a follow reply by construction: at most
    /// this many users × `sessions_per_user_max` visible sessions × one status each, which
    /// `validate` keeps within `outbound_bytes_max` in every codec (see
    /// [`Limits::follow_reply_bytes_max`]), so no follow reply can cut its own requester off.
    /// Past it: error 300 and nothing changes.
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
    /// issue 14): a value new to the index costs about 150–250 bytes besides its text. 12 is
    /// the most at which the costliest label `examples/label_memory.rs` builds (2 KiB of
    /// distinct strings over as many fields as allowed) keeps a party, with the lobby's state,
    /// within 8 KiB of server memory (7.6 KiB measured at these defaults; 16 took it to 8.4).
    /// A matchmaking label (mode, region, map, skill, a few tags) indexes 8 or so. Past it:
    /// error 236 and nothing changes.
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
    /// SPEC L-1: a user may be in one party at a time (AccelByte's and PGOS's rule). Off by
    /// default so Nakama's semantics (a session in up to `parties_per_session_max` parties) stay
    /// the default; `--one-party-per-user` turns it on. Not a count but a server option: it lives
    /// here because `Limits` is the one configuration every constructor of the core already
    /// carries (the server, the simulation, tests), validated and logged with the bounds.
    pub one_party_per_user: bool,
    /// SPEC L-2: how long an invitation stays pending before it expires (60 s: long enough to
    /// notice a pop-up and answer it, short enough that a stale invitation does not linger in a
    /// party screen). `--invitation-ttl-ms` shortens it for tests.
    pub invitation_ttl_ms: u64,
    /// SPEC L-2: pending invitations per party (64: four times the largest lobby a party screen
    /// shows; bounds what one party can make the server hold and announce when it ends).
    /// Past it: error 300 and nobody of that request is invited.
    pub invitations_per_party_max: usize,
    /// SPEC L-2: pending invitations per invitee user, over all parties (32: more than any player
    /// answers; bounds what the invitations list and a connecting session receive, and what a
    /// crowd of inviters can pile on one user). Past it: error 300, nobody of that request is
    /// invited.
    pub invitations_per_user_max: usize,
    /// SPEC L-2: invitees named in one invite request (1..=16 as the spec says): one request's
    /// events stay bounded (16 × (members + invitee sessions)). Past it: error 300. The decoder
    /// refuses lists over `INVITEES_PER_REQUEST_CEILING` before copying them.
    pub invitees_per_request_max: usize,
    /// SPEC L-3: wrong party codes one session may try in any 60 s (sliding window) before every
    /// code join of that session gets error 300 until the window allows again. 10 is generous
    /// for typing mistakes and keeps a guesser at 10 tries a minute per session (see the README
    /// for the odds).
    pub code_misses_per_minute_max: usize,
    /// SPEC L-7: bytes of a party name (64: a name is one line of a party screen; PGOS's names
    /// are as short). Past it: error 200, nothing changes.
    pub party_name_bytes_max: usize,
    /// Entries of the name deny-list (`--name-deny-list`, SPEC L-7). Every name set at create or
    /// update is matched against all of them at once (an Aho-Corasick automaton, so the cost per
    /// name does not grow with the list); 100,000 holds the largest multilingual profanity lists
    /// with room to spare while bounding the automaton's memory (a few tens of MB at most). A
    /// longer file is refused at startup and on a reload (the old list stays).
    pub name_deny_list_entries_max: usize,
    /// SPEC L-5: bytes of one custom data string, the party's global one or a member's (4,096 as
    /// the spec says: room for a ready flag, a vote or a loadout as JSON). Past it: error 300,
    /// nothing changes.
    pub party_custom_data_bytes_max: usize,
    /// SPEC L-6: bytes of one chat message body (1,024 as the spec says: a few lines of text).
    /// Past it: error 300, nothing sent.
    pub chat_body_bytes_max: usize,
    /// SPEC L-6: chat messages one session may send in any `chat_window_ms` (a sliding window;
    /// PGOS's 5 per 10 s: a quick exchange goes through, a flood does not). The next one gets
    /// error 300 and is not sent; refused messages do not count, so the window always reopens.
    pub chat_messages_per_window_max: usize,
    /// SPEC L-6: the chat rate limit's sliding window, in ms (PGOS's 10 s).
    pub chat_window_ms: u64,
    /// SPEC L-8: bytes of a party's attributes, the JSON object a game backend writes through
    /// the admin API, as stored (compact: keys sorted, no whitespace). 4 KiB as the spec says.
    /// Past it: HTTP 400, nothing changes.
    pub party_attributes_bytes_max: usize,
    /// SPEC L-4: friends one user's list may hold (2,000: the largest friend list of the big
    /// platforms). A longer list in an admin write: HTTP 400, nothing changes.
    pub social_friends_per_user_max: usize,
    /// SPEC L-4: users one user's block list may hold (1,000: far beyond what players block,
    /// and a bound on what one list costs). A longer list in an admin write: HTTP 400.
    pub social_blocks_per_user_max: usize,
    /// SPEC L-4: friend and block entries in the whole social table, every user's lists added
    /// up. About 40 bytes each (an id shared by reference, in a sorted list, plus its text), so
    /// 1,000,000 entries (10,000 players online with 100 friends each) cost about 40 MB. A write
    /// that would pass it: HTTP 507, nothing changes.
    pub social_entries_max: usize,
    /// SPEC L-4: users one bulk write (`PUT /v1/social`) may name. 10,000 is far more than an
    /// `admin_body_bytes_max` body of 64 KiB can hold with their lists; it bounds the work one
    /// request makes the loop do whatever that limit is raised to. Past it: HTTP 400.
    pub social_users_per_write_max: usize,
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

/// Longest user id and username a token may carry: the bound `core::UserId::BYTES_MAX` and
/// `core::Username::BYTES_MAX` own (this module imports nothing from the crate; a compile-time
/// assertion in `core::ids` keeps the three equal).
pub const CLAIM_BYTES_MAX: usize = 128;

/// Bytes one follow-reply entry adds to its status text, at most, in the FlatBuffers codec: the
/// presence's user id and username (each at most `CLAIM_BYTES_MAX`), the session id, and the
/// tables, offsets, length prefixes and padding around them (measured: at most 320 bytes with both
/// names at 128 bytes; a test encodes worst-case replies against this bound). FlatBuffers writes
/// text as it is, so the status counts once.
pub const FLATBUFFERS_FOLLOW_ENTRY_FRAMING_BYTES_MAX: usize = 2 * CLAIM_BYTES_MAX + 96;
/// Bytes a FlatBuffers follow reply adds beyond its entries, at most: the envelope, the reply
/// tables and the WebSocket frame header.
pub const FLATBUFFERS_FOLLOW_REPLY_FRAMING_BYTES_MAX: usize = 128;

/// Most bytes Nakama's JSON codec writes for one byte of a status, user id or username. serde_json
/// escapes `"`, `\`, tab, line feed, carriage return, backspace and form feed as two bytes, any
/// other C0 control character as six (`\u0001`), and writes everything else (DEL, non-ASCII UTF-8)
/// as it is. Statuses refuse the six-byte characters (`core::status`), token claims refuse every
/// control character (`auth`), so two holds for all three.
pub const NAKAMA_JSON_ESCAPED_BYTES_PER_BYTE_MAX: usize = 2;
/// Bytes one follow-reply entry of Nakama's JSON adds beyond its escaped text: the field names,
/// quotes and punctuation of `{"user_id":"…","session_id":"…","username":"…","status":"…"}` and
/// the comma after it (57 bytes), and the session id's UUID string (36): 93, measured by a test;
/// 96 leaves a few bytes for a longer field name.
pub const NAKAMA_JSON_FOLLOW_ENTRY_FRAMING_BYTES_MAX: usize = 96;
/// Bytes a follow reply of Nakama's JSON adds beyond its entries, at most: the echoed `cid` (at
/// most 64 bytes, `wire::nakama::CID_BYTES_MAX`, each escaped to at most six: 384), the envelope
/// `{"cid":"…","status":{"presences":[…]}}` (36 bytes) and the WebSocket frame header (10); a
/// compile-time assertion in `wire::nakama` keeps the `cid` bound within it.
pub const NAKAMA_JSON_FOLLOW_REPLY_FRAMING_BYTES_MAX: usize = 512;

/// A codec the server speaks, as far as the size of its follow replies goes (see
/// [`Limits::follow_reply_bytes_max_in`]). This module imports nothing from the crate, so it
/// names the codecs itself; `wire::CodecKind` is the driver's list of the same two.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FollowReplyCodec {
    /// huddle's own protocol: text written as it is.
    FlatBuffers,
    /// Nakama's realtime JSON (SPEC K-1): text escaped, at most two bytes for one.
    NakamaJson,
}

impl FollowReplyCodec {
    pub const ALL: [FollowReplyCodec; 2] = [FollowReplyCodec::FlatBuffers, FollowReplyCodec::NakamaJson];

    pub fn name(self) -> &'static str {
        match self {
            FollowReplyCodec::FlatBuffers => "FlatBuffers",
            FollowReplyCodec::NakamaJson => "Nakama JSON",
        }
    }

    /// Most bytes one entry (one visible session with a status of `status_bytes` bytes) takes.
    /// Saturates rather than overflows, so absurd limits fail validation instead of wrapping.
    const fn entry_bytes_max(self, status_bytes: usize) -> usize {
        match self {
            FollowReplyCodec::FlatBuffers => status_bytes.saturating_add(FLATBUFFERS_FOLLOW_ENTRY_FRAMING_BYTES_MAX),
            FollowReplyCodec::NakamaJson => {
                let text = status_bytes.saturating_add(2 * CLAIM_BYTES_MAX);
                text.saturating_mul(NAKAMA_JSON_ESCAPED_BYTES_PER_BYTE_MAX)
                    .saturating_add(NAKAMA_JSON_FOLLOW_ENTRY_FRAMING_BYTES_MAX)
            }
        }
    }

    /// Most bytes a reply adds beyond its entries.
    const fn reply_framing_bytes_max(self) -> usize {
        match self {
            FollowReplyCodec::FlatBuffers => FLATBUFFERS_FOLLOW_REPLY_FRAMING_BYTES_MAX,
            FollowReplyCodec::NakamaJson => NAKAMA_JSON_FOLLOW_REPLY_FRAMING_BYTES_MAX,
        }
    }

    /// See [`Limits::follow_reply_bytes_max_in`]; a `const fn`, so the defaults are checked at
    /// compile time.
    const fn follow_reply_bytes_bound(self, users: usize, sessions_per_user: usize, status_bytes: usize) -> usize {
        users
            .saturating_mul(sessions_per_user)
            .saturating_mul(self.entry_bytes_max(status_bytes))
            .saturating_add(self.reply_framing_bytes_max())
    }
}

// The defaults that the follow reply bound relates, named so the relation is checked at compile
// time (below); each is explained on its field.
const DEFAULT_SESSIONS_PER_USER_MAX: usize = 8;
const DEFAULT_FOLLOW_IDS_PER_REQUEST_MAX: usize = 64;
const DEFAULT_STATUS_BYTES_MAX: usize = 2048;
const DEFAULT_OUTBOUND_BYTES_MAX: usize = 3 * 1024 * 1024;
const DEFAULT_OUTBOUND_SOFT_BYTES_MAX: usize = 256 * 1024;
/// Hard ceiling for `invitees_per_request_max`: the wire decoder refuses a longer invitee list
/// before copying it, whatever the configured limit says.
pub const INVITEES_PER_REQUEST_CEILING: usize = 256;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: 10_000,
            accepts_per_turn_max: 256,
            connections_per_ip_max: 0,
            handshakes_per_ip_per_second_max: 0,
            handshake_bytes_max: 8 * 1024,
            handshake_timeout_ms: 5_000,
            sessions_per_user_max: DEFAULT_SESSIONS_PER_USER_MAX,
            message_bytes_max: 16 * 1024,
            message_fragments_max: 64,
            message_assembly_ms_max: 5_000,
            extra_frames_per_second_max: 1_000,
            extra_frames_burst_max: 2_000,
            read_buffer_bytes: 256,
            read_batch_bytes: 64 * 1024,
            frames_per_turn_max: 64,
            outbound_bytes_max: DEFAULT_OUTBOUND_BYTES_MAX,
            write_bytes_per_turn_max: 256 * 1024,
            flush_batch_bytes: 8192,
            outbound_soft_bytes_max: DEFAULT_OUTBOUND_SOFT_BYTES_MAX,
            outbound_soft_duration_ms: 5_000,
            requests_per_second_max: 250,
            requests_burst_max: 500,
            rate_limited_close_ms: 10_000,
            keepalive_interval_ms: 15_000,
            close_linger_ms: 1_000,
            closing_discard_bytes_max: 64 * 1024,
            shutdown_drain_ms: 2_000,
            party_members_max: 256,
            party_label_bytes_max: 2048,
            parties_per_session_max: 16,
            party_data_bytes_max: 8 * 1024,
            status_bytes_max: DEFAULT_STATUS_BYTES_MAX,
            follows_per_session_max: 1000,
            follow_ids_per_request_max: DEFAULT_FOLLOW_IDS_PER_REQUEST_MAX,
            search_query_bytes_max: 1024,
            search_query_terms_max: 64,
            search_page_limit_max: 100,
            search_page_limit_default: 10,
            search_wildcard_expansion_max: 256,
            search_wildcard_scan_max: 16_384,
            party_label_values_max: 12,
            party_label_fields_max: 10,
            search_index_bytes_max: 512 * 1024 * 1024,
            search_query_cost_max: 100_000,
            search_budget_cost_per_ms: 2_000,
            search_budget_burst_cost: 400_000,
            admin_connections_max: 64,
            admin_head_bytes_max: 8 * 1024,
            admin_body_bytes_max: 64 * 1024,
            admin_request_timeout_ms: 10_000,
            admin_requests_per_turn_max: 16,
            admin_bans_max: 100_000,
            one_party_per_user: false,
            invitation_ttl_ms: 60_000,
            invitations_per_party_max: 64,
            invitations_per_user_max: 32,
            invitees_per_request_max: 16,
            code_misses_per_minute_max: 10,
            party_name_bytes_max: 64,
            name_deny_list_entries_max: 100_000,
            party_custom_data_bytes_max: 4096,
            chat_body_bytes_max: 1024,
            chat_messages_per_window_max: 5,
            chat_window_ms: 10_000,
            party_attributes_bytes_max: 4096,
            social_friends_per_user_max: 2000,
            social_blocks_per_user_max: 1000,
            social_entries_max: 1_000_000,
            social_users_per_write_max: 10_000,
            admin_page_limit_max: 100,
            admin_response_bytes_max: 256 * 1024,
            history_records_max: 10_000,
            history_entries_per_party_max: 320,
            history_buffer_bytes_max: 4 * 1024 * 1024,
            history_write_bytes_per_turn_max: 256 * 1024,
        }
    }
}

// The defaults keep a follow reply within the output limit in every codec (SPEC S-2), with room
// for a backlog at the soft limit beside it (the reason for `outbound_bytes_max`'s default).
const _: () = {
    let mut i = 0;
    while i < FollowReplyCodec::ALL.len() {
        assert!(
            FollowReplyCodec::ALL[i].follow_reply_bytes_bound(
                DEFAULT_FOLLOW_IDS_PER_REQUEST_MAX,
                DEFAULT_SESSIONS_PER_USER_MAX,
                DEFAULT_STATUS_BYTES_MAX
            ) + DEFAULT_OUTBOUND_SOFT_BYTES_MAX
                <= DEFAULT_OUTBOUND_BYTES_MAX
        );
        i += 1;
    }
};

/// SPEC L-5, L-9: bytes one member adds to a FlatBuffers party snapshot at most beside its custom
/// data: its presence (two claims of `CLAIM_BYTES_MAX` with length prefixes, terminators and
/// padding, the table, its vtable and its offset in the list: 2 × (128 + 8) + 48) and its custom
/// data entry's table around the string (48). The test `worst_case_snapshots_fit_the_computed_bound`
/// encodes the largest snapshot and checks it.
const SNAPSHOT_MEMBER_FRAMING_BYTES_MAX: usize = 2 * (CLAIM_BYTES_MAX + 8) + 48 + 48;
/// The snapshot's own fields and the envelope around them, beside its strings.
const SNAPSHOT_FRAMING_BYTES_MAX: usize = 1024;

impl Limits {
    /// The largest party snapshot (SPEC L-9: every reply snapshot, `PartyJoined`,
    /// `PartySnapshot`) these limits allow, framed: `party_members_max` members each with
    /// `party_custom_data_bytes_max` bytes of custom data (L-5), the leader again, the label, the
    /// name, the global custom data and the attributes (L-8) at their bounds.
    pub fn party_snapshot_bytes_max(&self) -> usize {
        let member = SNAPSHOT_MEMBER_FRAMING_BYTES_MAX.saturating_add(self.party_custom_data_bytes_max);
        self.party_members_max
            .saturating_add(1)
            .saturating_mul(member)
            .saturating_add(self.party_label_bytes_max)
            .saturating_add(self.party_name_bytes_max)
            .saturating_add(self.party_custom_data_bytes_max)
            .saturating_add(self.party_attributes_bytes_max)
            .saturating_add(SNAPSHOT_FRAMING_BYTES_MAX)
    }

    /// The largest follow reply these limits allow in `codec`, in bytes on the wire: every user
    /// it resolves to (`follow_ids_per_request_max`) with every session it may have
    /// (`sessions_per_user_max`) visible, each with a status of `status_bytes_max` (and, in JSON,
    /// every byte of status, id and username escaped to two), plus framing.
    pub fn follow_reply_bytes_max_in(&self, codec: FollowReplyCodec) -> usize {
        codec.follow_reply_bytes_bound(
            self.follow_ids_per_request_max,
            self.sessions_per_user_max,
            self.status_bytes_max,
        )
    }

    /// The largest follow reply these limits allow in any codec: what must fit
    /// `outbound_bytes_max` (SPEC S-2).
    pub fn follow_reply_bytes_max(&self) -> usize {
        self.follow_reply_bytes_max_in(self.widest_follow_reply_codec())
    }

    /// The codec whose follow replies can grow largest under these limits.
    fn widest_follow_reply_codec(&self) -> FollowReplyCodec {
        let bytes = |codec| self.follow_reply_bytes_max_in(codec);
        FollowReplyCodec::ALL.into_iter().fold(FollowReplyCodec::FlatBuffers, |widest, codec| {
            if bytes(codec) > bytes(widest) {
                codec
            } else {
                widest
            }
        })
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
            sessions_per_user_max,
            message_bytes_max,
            message_fragments_max,
            message_assembly_ms_max,
            extra_frames_per_second_max,
            extra_frames_burst_max,
            read_buffer_bytes,
            read_batch_bytes,
            frames_per_turn_max,
            outbound_bytes_max,
            write_bytes_per_turn_max,
            outbound_soft_bytes_max,
            requests_per_second_max,
            requests_burst_max,
            keepalive_interval_ms,
            closing_discard_bytes_max,
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
            party_label_values_max,
            party_label_fields_max,
            search_index_bytes_max,
            search_query_cost_max,
            search_budget_cost_per_ms,
            search_budget_burst_cost,
            admin_connections_max,
            admin_head_bytes_max,
            admin_body_bytes_max,
            admin_request_timeout_ms,
            admin_requests_per_turn_max,
            admin_bans_max,
            invitation_ttl_ms,
            invitations_per_party_max,
            invitations_per_user_max,
            invitees_per_request_max,
            code_misses_per_minute_max,
            party_name_bytes_max,
            name_deny_list_entries_max,
            party_custom_data_bytes_max,
            chat_body_bytes_max,
            chat_messages_per_window_max,
            chat_window_ms,
            party_attributes_bytes_max,
            social_friends_per_user_max,
            social_blocks_per_user_max,
            social_entries_max,
            social_users_per_write_max,
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
        // SPEC S-2: a follow reply is bounded by construction and must fit the output limit in
        // every codec, or one user with many visible sessions could get everyone who follows them
        // cut off.
        let codec = self.widest_follow_reply_codec();
        let follow_reply_bytes_max = self.follow_reply_bytes_max_in(codec);
        if follow_reply_bytes_max > self.outbound_bytes_max {
            return Err(LimitsError(format!(
                "a follow reply may reach {follow_reply_bytes_max} bytes in {} (follow_ids_per_request_max {} × \
                 sessions_per_user_max {} × one entry of at most {} bytes with status_bytes_max {}, plus framing), \
                 more than outbound_bytes_max {}: raise outbound_bytes_max or lower one of the others",
                codec.name(),
                self.follow_ids_per_request_max,
                self.sessions_per_user_max,
                codec.entry_bytes_max(self.status_bytes_max),
                self.status_bytes_max,
                self.outbound_bytes_max
            )));
        }
        // SPEC L-5, L-9: a snapshot is sent whole to every member; the largest one these limits
        // allow must fit the output limit, or a full party's custom data could cut off its own
        // members.
        let snapshot_bytes_max = self.party_snapshot_bytes_max();
        if snapshot_bytes_max > self.outbound_bytes_max {
            return Err(LimitsError(format!(
                "a party snapshot may reach {snapshot_bytes_max} bytes (party_members_max {} × \
                 party_custom_data_bytes_max {} and framing, plus the label, name and attributes), more than \
                 outbound_bytes_max {}: raise outbound_bytes_max or lower one of the others",
                self.party_members_max, self.party_custom_data_bytes_max, self.outbound_bytes_max
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
        if self.invitees_per_request_max > INVITEES_PER_REQUEST_CEILING {
            return Err(LimitsError(format!(
                "invitees_per_request_max must be at most {INVITEES_PER_REQUEST_CEILING}"
            )));
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
        let no_refill = Limits { search_budget_cost_per_ms: 0, ..Limits::default() };
        assert!(no_refill.validate().unwrap_err().0.contains("search_budget_cost_per_ms"));
        let no_values = Limits { party_label_values_max: 0, ..Limits::default() };
        assert!(no_values.validate().unwrap_err().0.contains("party_label_values_max"));
        let short_history = Limits { history_entries_per_party_max: 256, ..Limits::default() };
        assert!(short_history.validate().unwrap_err().0.contains("history_entries_per_party_max"));
        let small_buffer = Limits { history_buffer_bytes_max: 64 * 1024, ..Limits::default() };
        assert!(small_buffer.validate().unwrap_err().0.contains("history_buffer_bytes_max"));
        let no_ttl = Limits { invitation_ttl_ms: 0, ..Limits::default() };
        assert!(no_ttl.validate().unwrap_err().0.contains("invitation_ttl_ms"));
        let many_invitees = Limits { invitees_per_request_max: INVITEES_PER_REQUEST_CEILING + 1, ..Limits::default() };
        assert!(many_invitees.validate().unwrap_err().0.contains("invitees_per_request_max"));
        let no_guesses = Limits { code_misses_per_minute_max: 0, ..Limits::default() };
        assert!(no_guesses.validate().unwrap_err().0.contains("code_misses_per_minute_max"));
        let no_chat = Limits { chat_messages_per_window_max: 0, ..Limits::default() };
        assert!(no_chat.validate().unwrap_err().0.contains("chat_messages_per_window_max"));
        let no_window = Limits { chat_window_ms: 0, ..Limits::default() };
        assert!(no_window.validate().unwrap_err().0.contains("chat_window_ms"));
        let no_friends = Limits { social_entries_max: 0, ..Limits::default() };
        assert!(no_friends.validate().unwrap_err().0.contains("social_entries_max"));
    }

    #[test]
    fn limits_whose_follow_reply_would_not_fit_the_output_limit_are_refused() {
        let defaults = Limits::default();
        // The figures the README quotes: the JSON codec's worst case is the one that must fit.
        assert_eq!(defaults.follow_reply_bytes_max_in(FollowReplyCodec::FlatBuffers), 1_228_928);
        assert_eq!(defaults.follow_reply_bytes_max_in(FollowReplyCodec::NakamaJson), 2_408_960);
        assert_eq!(defaults.follow_reply_bytes_max(), 2_408_960);
        assert!(defaults.follow_reply_bytes_max() + defaults.outbound_soft_bytes_max <= defaults.outbound_bytes_max);
        // The previous default output limit held the FlatBuffers reply but not the JSON one.
        let old_output = Limits { outbound_bytes_max: 1536 * 1024, ..Limits::default() };
        let error = old_output.validate().unwrap_err().0;
        for name in [
            "Nakama JSON",
            "follow_ids_per_request_max",
            "sessions_per_user_max",
            "status_bytes_max",
            "outbound_bytes_max",
        ] {
            assert!(error.contains(name), "{error}");
        }
        let fewer_sessions = Limits { sessions_per_user_max: 4, ..old_output.clone() };
        assert_eq!(fewer_sessions.validate(), Ok(()), "lowering one factor makes it fit again");
        let absurd =
            Limits { follow_ids_per_request_max: 4096, sessions_per_user_max: usize::MAX, ..Limits::default() };
        assert_eq!(absurd.follow_reply_bytes_max(), usize::MAX, "saturates instead of wrapping");
        assert!(absurd.validate().is_err());
        let no_cap = Limits { sessions_per_user_max: 0, ..Limits::default() };
        assert!(no_cap.validate().unwrap_err().0.contains("sessions_per_user_max"));
    }

    /// The snapshot bound holds: the largest snapshot, framed as the server sends it, is within
    /// `party_snapshot_bytes_max`, which the defaults keep within the output limit.
    #[test]
    fn worst_case_snapshots_fit_the_computed_bound() {
        use crate::core::{
            Event, LobbyData, LobbyEvent, LobbySettings, PartyId, PartySnapshot, Presence, SessionId, UnixMillis,
            UserId, Username,
        };
        let limits = Limits::default();
        let member = |i: u32| Presence {
            user_id: UserId::new(&format!("{i:0>128}")),
            session_id: SessionId::new(u32::MAX - i, u32::MAX),
            username: Username::new(&format!("{i:x>128}")),
        };
        let members: Vec<Presence> = (0..limits.party_members_max as u32).map(member).collect();
        let custom = "c".repeat(limits.party_custom_data_bytes_max);
        let snapshot = PartySnapshot {
            party_id: PartyId(u128::MAX),
            open: true,
            hidden: false,
            max_size: limits.party_members_max as u16,
            label: format!(r#"{{"a":"{}"}}"#, "l".repeat(limits.party_label_bytes_max - 8)),
            leader: members[0].clone(),
            members: members.clone(),
            lobby: LobbySettings { name: "n".repeat(limits.party_name_bytes_max), ..LobbySettings::default() },
            data: LobbyData {
                custom_data: custom.clone(),
                member_custom_data: members.iter().map(|m| (m.session_id, custom.clone())).collect(),
                attributes: format!(r#"{{"a":"{}"}}"#, "x".repeat(limits.party_attributes_bytes_max - 8)),
                attributes_timestamp: UnixMillis(u64::MAX),
            },
            version: u64::MAX,
        };
        let event = Event::Lobby(LobbyEvent::Snapshot(Box::new(snapshot)));
        let framed = crate::net::frame::binary(crate::wire::Encoder::new().event(&event)).len();
        let bound = limits.party_snapshot_bytes_max();
        eprintln!("the largest snapshot: {framed} bytes framed, bound {bound}");
        assert!(framed <= bound, "{framed} > {bound}");
        assert!(bound <= limits.outbound_bytes_max);
        let tight = Limits {
            outbound_bytes_max: bound - 1,
            outbound_soft_bytes_max: 1024,
            follow_ids_per_request_max: 1,
            ..Limits::default()
        };
        assert!(tight.validate().unwrap_err().0.contains("party snapshot"));
    }

    /// The follow reply bound holds for every codec: follow replies of worst-case entries,
    /// framed as the server sends them, never exceed what `follow_reply_bytes_max_in` computes
    /// for their codec. Worst case for each: 128-byte user ids and usernames and full statuses,
    /// every byte of them one that JSON escapes to two (`"`, `\`, tab, line feed; the six-byte
    /// escapes are refused in statuses and claims), the largest session ids, and for JSON the
    /// longest `cid` of characters it escapes to six.
    #[test]
    fn worst_case_follow_replies_fit_the_computed_bound() {
        use crate::core::{Cid, Presence, Reply, SessionId, StatusPresence, StatusReply, UserId, Username};
        use crate::wire::nakama::{CidText, NakamaEncoder, NakamaOp, ReplyTo, CID_BYTES_MAX};
        let quotes = "\"".repeat(CLAIM_BYTES_MAX);
        let escaped = |bytes: usize| ["\"", "\\", "\t", "\n"].iter().cycle().take(bytes).copied().collect::<String>();
        let reply_of = |entries: usize, status_bytes: usize| {
            let presences = (0..entries)
                .map(|i| StatusPresence {
                    presence: Presence {
                        user_id: UserId::new(&quotes),
                        session_id: SessionId::new(u32::MAX - i as u32, u32::MAX),
                        username: Username::new(&quotes),
                    },
                    status: escaped(status_bytes),
                })
                .collect();
            Ok(Reply::Status(StatusReply::Followed { presences }))
        };
        let mut flatbuffers = crate::wire::Encoder::new();
        let mut nakama = NakamaEncoder::new();
        let to = ReplyTo { cid: CidText::Text("\u{1}".repeat(CID_BYTES_MAX).into()), op: NakamaOp::StatusFollow };
        let me =
            Presence { user_id: UserId::new("me"), session_id: SessionId::new(1, 1), username: Username::new("me") };
        let mut json_framed = |reply: &Result<Reply, crate::core::CoreError>| {
            let frames = nakama.reply(&to, &me, reply);
            assert_eq!(frames.len(), 1, "a follow reply is one frame");
            frames.iter().map(|frame| crate::net::frame::text(frame).len()).sum::<usize>()
        };

        // The JSON framing of one entry beyond its escaped text, measured: one entry more adds it.
        let (one, two) = (json_framed(&reply_of(1, 10)), json_framed(&reply_of(2, 10)));
        let entry_framing = two - one - NAKAMA_JSON_ESCAPED_BYTES_PER_BYTE_MAX * (10 + 2 * CLAIM_BYTES_MAX);
        eprintln!("Nakama JSON: {entry_framing} bytes of framing per entry");
        assert!(entry_framing <= NAKAMA_JSON_FOLLOW_ENTRY_FRAMING_BYTES_MAX, "{entry_framing}");

        for (users, sessions, status_bytes) in [(1, 1, 0), (1, 1, 2048), (3, 2, 5), (64, 8, 2048)] {
            let limits = Limits {
                follow_ids_per_request_max: users,
                sessions_per_user_max: sessions,
                status_bytes_max: status_bytes,
                ..Limits::default()
            };
            let reply = reply_of(users * sessions, status_bytes);
            let framed = [
                (
                    FollowReplyCodec::FlatBuffers,
                    crate::net::frame::binary(flatbuffers.reply(Cid(u64::MAX), &reply)).len(),
                ),
                (FollowReplyCodec::NakamaJson, json_framed(&reply)),
            ];
            for (codec, framed) in framed {
                let bound = limits.follow_reply_bytes_max_in(codec);
                // The figures the README quotes: `cargo test --lib worst_case_follow -- --nocapture`.
                eprintln!(
                    "{}: {users} users × {sessions} sessions × {status_bytes}-byte statuses: {framed} bytes framed, bound {bound}",
                    codec.name()
                );
                assert!(
                    framed <= bound,
                    "{}: {users} × {sessions} × {status_bytes} bytes: {framed} > {bound}",
                    codec.name()
                );
                assert!(framed <= limits.follow_reply_bytes_max());
            }
            if status_bytes == 2048 && users == 64 {
                // A bound computed for FlatBuffers alone (the defect this test guards against)
                // would not hold JSON's escaped text.
                let json = framed[1].1;
                assert!(json > limits.follow_reply_bytes_max_in(FollowReplyCodec::FlatBuffers), "{json}");
                assert!(json <= Limits::default().outbound_bytes_max, "fits the default output limit");
            }
        }
    }
}
