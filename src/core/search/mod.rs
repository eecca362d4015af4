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
//!   The party layer checks a label once with [`SearchIndex::prepare_label`] (parse, flatten,
//!   size bound) before it changes anything, and indexes the prepared label with
//!   [`SearchIndex::upsert_prepared`] (which cannot fail) on create and on every label or
//!   hidden change, [`SearchIndex::set_member_count`] on join and leave,
//!   [`SearchIndex::set_open`] on an update of the open flag alone, and [`SearchIndex::remove`]
//!   when the party ends. All of these run from one place, the party layer's per-request change
//!   list (`core/party/changes.rs`). Updates are synchronous, so the very next search sees them
//!   . **Hidden parties are never inserted**: the party layer removes a party from the
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

mod cost;
mod index;
mod label;
pub mod query;

pub use cost::SearchBudget;
pub use index::{BuiltIns, PartyDoc, SearchError, SearchIndex, SearchPage};
pub use label::{LabelError, PreparedLabel};
pub use query::{parse_query, Query, QueryError, QueryErrorKind};

use crate::limits::Limits;

/// Bounds on everything a search request or a label controls: the search fields of
/// [`Limits`], where each one's value and reason are documented (defaults and docs live there
/// only; this is the index's own view of them, so the index does not depend on the rest of the
/// server's limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchLimits {
    /// [`Limits::search_query_bytes_max`].
    pub query_bytes_max: usize,
    /// [`Limits::search_query_terms_max`].
    pub query_terms_max: usize,
    /// [`Limits::search_wildcard_expansion_max`].
    pub wildcard_expansion_max: usize,
    /// [`Limits::search_wildcard_scan_max`].
    pub wildcard_scan_max: usize,
    /// [`Limits::search_page_limit_max`].
    pub page_limit_max: usize,
    /// [`Limits::search_page_limit_default`]. The index itself always receives an explicit
    /// limit; this is here so the request layer reads it from one place.
    pub page_limit_default: usize,
    /// [`Limits::party_label_bytes_max`]. The party layer prepares labels through the index
    /// ([`SearchIndex::prepare_label`]), so this is the one check of a label's size.
    pub label_bytes_max: usize,
    /// [`Limits::party_label_values_max`].
    pub label_values_max: usize,
    /// [`Limits::party_label_fields_max`].
    pub label_fields_max: usize,
    /// [`Limits::search_index_bytes_max`].
    pub index_bytes_max: usize,
    /// [`Limits::search_query_cost_max`].
    pub query_cost_max: u64,
    /// [`Limits::party_name_bytes_max`]: a party's name is indexed as the keyword field `name`
    /// (SPEC L-7), so a label's worst case reserves room for one.
    pub name_bytes_max: usize,
}

impl From<&Limits> for SearchLimits {
    fn from(limits: &Limits) -> SearchLimits {
        SearchLimits {
            query_bytes_max: limits.search_query_bytes_max,
            query_terms_max: limits.search_query_terms_max,
            wildcard_expansion_max: limits.search_wildcard_expansion_max,
            wildcard_scan_max: limits.search_wildcard_scan_max,
            page_limit_max: limits.search_page_limit_max,
            page_limit_default: limits.search_page_limit_default,
            label_bytes_max: limits.party_label_bytes_max,
            label_values_max: limits.party_label_values_max,
            label_fields_max: limits.party_label_fields_max,
            index_bytes_max: limits.search_index_bytes_max,
            query_cost_max: limits.search_query_cost_max,
            name_bytes_max: limits.party_name_bytes_max,
        }
    }
}

impl Default for SearchLimits {
    /// The server's default limits, converted.
    fn default() -> Self {
        SearchLimits::from(&Limits::default())
    }
}
