//! Party search (SPEC Q-1 … Q-4): the label query language and the in-memory index.
//!
//! This module owns two things and nothing else:
//!
//! - **The query language** ([`parse_query`] → [`Query`]): Nakama's label query syntax (Bleve's
//!   query string), see [`query`] for the grammar. Terms are separated by whitespace; `+term`
//!   must match, `-term` must not, a term without prefix *should* match (when a query has no
//!   must-term, at least one should-term has to match; a query of only must-not terms matches
//!   every party not excluded; the empty query matches every party). `field:value` is an exact,
//!   case-sensitive keyword; `field:>N`, `>=`, `<`, `<=` are numeric ranges; `"quoted phrase"`
//!   is an exact string with spaces; `*` / `?` are wildcards in unquoted values; `^N` boosts a
//!   term; `\` escapes the next character. A bare term (no field) matches the keyword (or, if it
//!   is a number, the numeric value) of *any label field*; the built-in fields are left out of
//!   bare terms on purpose, so `true` or `4` do not match every open party or every party of four.
//!
//! - **The index** ([`SearchIndex`]), keyed by the party key (the 128 raw bits of the party id).
//!   The party layer calls [`SearchIndex::upsert`] on create and on every label / open change,
//!   [`SearchIndex::set_member_count`] on join and leave, [`SearchIndex::set_open`] on update,
//!   and [`SearchIndex::remove`] on close. Updates are synchronous, so the very next search sees
//!   them. **Hidden parties are never inserted**: the party layer removes a party from the
//!   index when it becomes hidden and upserts it when it stops being hidden, so search has no
//!   notion of hidden.
//!
//! # Indexed fields
//!
//! A label is a JSON object. It is flattened into fields named by the path from the root:
//! `{"a":{"b":1}}` gives the field `label.a.b` with the number 1; `{"a.b":1}` gives the same
//! field (as in Nakama). Arrays index every element under the array's own field
//! (`{"tags":["x","y"]}` → `label.tags` holds `x` and `y`). Strings are exact keywords,
//! booleans are the keywords `true` / `false`, numbers are numeric values (range queries, and
//! `field:N` exact equality, so `label.skill:5` matches `5` and `5.0`), `null` is not indexed.
//! A string that looks like a number stays a keyword (`{"n":"7"}` matches `label.n:7` but not
//! `label.n:>5`). Wildcards match keywords only. Built-in fields: `open` (keyword `true` /
//! `false`), `max_size` and `member_count` (numeric), so "parties with a free seat" needs no
//! label bookkeeping.
//!
//! # Results, scoring and the cursor
//!
//! A party's score is the sum of the boosts (default 1.0) of the must- and should-terms it
//! matches; must-not terms and the open filter only filter. Results are ordered by score
//! (descending), then by party key (ascending) as the stable tie-breaker. Pagination is keyset
//! pagination: the cursor is the (score, key) of the last party returned plus a fingerprint of
//! the query text, the open filter and the limit, encoded as 44 characters of URL-safe base64.
//! It is opaque to clients, present only when more results exist, and refused with
//! [`SearchError::CursorMismatch`] when presented with another query, filter or limit. A cursor
//! is a position, not a snapshot: a party created or changed between pages appears on a later
//! page if it sorts after the position. Cursors are not signed: a forged cursor can only move
//! the starting position of a search the caller is allowed to run anyway.
//!
//! # Performance
//!
//! An inverted index, never a scan of every party per search: per field a term dictionary
//! (`BTreeMap`, so wildcards expand over the prefix range before any `*` or `?`) with a posting
//! list per term (plus a bitmap over doc ids once a posting is large), and per field an ordered
//! set of (number, party) for ranges. Updates cost a few `O(log n)` operations per indexed
//! value. A search checks candidates against each term through the bitmaps or the candidate's
//! own sorted value lists, cheap checks first.
//!
//! The result order is split into *score levels*: a party's score is the must score plus the
//! boosts of the subset of should-terms it matches, so the possible scores are known before
//! looking at any party. Within a level every match has the same score, so results are in key
//! order. Each level is answered either by walking parties in key order from the cursor and
//! stopping as soon as the page is full (dense levels: a broad query costs about `limit`
//! parties, not its match count), or, when that walk has visited as many parties as the level
//! has candidates without filling the page, by enumerating the cheapest term every party of the
//! level must match. A query with more than 8 should-terms or 16 distinct levels is answered by
//! enumeration instead: from the cheapest must-term if there is one; otherwise first from the
//! highest-boost should-terms alone (a party scoring above the sum of the other boosts must
//! match one of them, so if those fill the page it is final), and only then from all
//! should-terms. Such broad many-boost queries cost time proportional to their candidates.
//! Nothing iterates a `HashMap`: results are deterministic.
//!
//! # Bounds
//!
//! Everything an input controls is bounded by [`SearchLimits`]: query bytes, terms, the
//! dictionary terms a wildcard may scan and expand to (beyond that the search is refused with
//! [`SearchError::WildcardTooBroad`] rather than silently capped, because a capped expansion
//! would return wrong results), page size, label bytes.

mod index;
pub mod query;

pub use index::{LabelError, PartyDoc, SearchError, SearchIndex, SearchPage};
pub use query::{parse_query, Query, QueryError, QueryErrorKind};

/// Bounds on everything a search request or a label controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchLimits {
    /// Longest query text accepted. 1024 bytes holds dozens of realistic terms; longer queries
    /// only cost parse and match time.
    pub query_bytes_max: usize,
    /// Most terms in one query. 64 covers any hand-written or generated filter, and keeps the
    /// per-candidate check (one lookup per term) bounded.
    pub query_terms_max: usize,
    /// Most distinct dictionary terms one wildcard term may expand to. Each expansion is a
    /// posting list to read and a lookup per candidate check; 256 keeps a wildcard search within
    /// the latency target over 100k parties.
    pub wildcard_expansion_max: usize,
    /// Most dictionary terms one wildcard term may inspect (those after its literal prefix), so
    /// a leading `*` over a field with 100k distinct values is refused instead of scanning them
    /// all on every search.
    pub wildcard_scan_max: usize,
    /// Largest page (SPEC Q-1: 1..=100).
    pub page_limit_max: usize,
    /// Page size when the request names none (SPEC Q-1: 10). The index itself always receives
    /// an explicit limit; this is here so the request layer reads it from one place.
    pub page_limit_default: usize,
    /// Largest label indexed (SPEC P-1: 2048 bytes). The party layer validates labels first;
    /// the index checks again so it stays bounded whoever calls it.
    pub label_bytes_max: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            query_bytes_max: 1024,
            query_terms_max: 64,
            wildcard_expansion_max: 256,
            wildcard_scan_max: 16_384,
            page_limit_max: 100,
            page_limit_default: 10,
            label_bytes_max: 2048,
        }
    }
}
