//! The in-memory search index: inverted keyword postings, one ordered numeric set, keyset
//! cursors, and a meter on the work every search does.
//!
//! Layout: every party is a dense internal doc id (a slot in `docs`, reused after removal).
//! Keyword terms are global: one posting list (`postings`, by term id) per (field, text), found
//! through two dictionaries over the same keys, `by_text` ordered by (text, field) — so a bare
//! term finds its text in every label field with one range — and `by_field` ordered by (field,
//! text) — so a wildcard scans one field's terms from its literal prefix. Numbers live in one
//! ordered set of (field, number, doc) packed into a `u128`. Each doc keeps its own sorted lists
//! of (term, position in the posting) and (field, number): removal is `swap_remove` at a known
//! position (O(1), fixing up the one doc that moved), and checking whether a candidate matches
//! a term is a binary search in the candidate's own short lists, or one bit of the term's
//! bitmap when its posting is large (common terms are the ones checked most). The built-in
//! numbers are also copied onto the doc for the same reason. Label numbers are indexed twice:
//! under their field and under the pseudo-field "any label", which answers bare numeric terms
//! without visiting every field; a bare keyword term uses `by_text` instead.
//!
//! Memory: nothing is allocated per field beyond its name, a term's text is stored once (its
//! posting and both dictionary keys share it), and the index keeps a running estimate of its
//! own bytes ([`SearchIndex::bytes_estimated`]) so that a label which could take it past
//! `index_bytes_max` is refused before anything changes.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::mem::size_of;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::cost::Meter;
use super::label::{self, FlatValue, LabelError, PreparedLabel};
use super::query::{Clause, FieldRef, Occur, Query, RangeOp, ValueMatch, LABEL_PREFIX};
use super::SearchLimits;

type DocId = u32;
type FieldId = u32;
type TermId = u32;

/// Pseudo-field holding every label number once per party: what bare numeric terms search.
const FIELD_ANY_LABEL: FieldId = 0;
const FIELD_OPEN: FieldId = 1;
const FIELD_MAX_SIZE: FieldId = 2;
const FIELD_MEMBER_COUNT: FieldId = 3;
/// The party's name (SPEC L-7): a keyword, absent when the party has none.
const FIELD_NAME: FieldId = 4;
/// Fields below this id exist for the index's whole life; label fields are created on first
/// use and freed when their last value goes, so hostile labels cannot grow the field table.
const FIELDS_BUILTIN: FieldId = 5;
/// Terms of the `open` field, interned at construction and never freed, so `set_open` never
/// touches the dictionary. They are the two smallest term ids, so every doc's `open` entry is
/// the first of its (term-sorted) keyword list.
const TERM_FALSE: TermId = 0;
const TERM_TRUE: TermId = 1;

/// Below this many candidates, enumerating them all is cheap enough that trying a key-order
/// scan first is not worth it.
const SCAN_CANDIDATES_MIN: usize = 256;

/// Ranges are counted by walking their B-tree entries, so counting a broad range would cost as
/// much as enumerating it. Counts stop here: enough to rank terms and to budget a key-order
/// walk (a walk that gives up after this many parties costs tens of microseconds).
const RANGE_COUNT_MAX: usize = 4096;

/// Postings at least this long also keep a bitmap over doc ids. A bitmap costs one bit per doc
/// slot (12.5 KiB at 100k parties), as much as a posting of 3,200 docs; from 1,024 docs on, the
/// faster candidate checks are worth the extra memory.
/// Unit tests index a few hundred parties, so there the threshold is low enough for bitmaps to
/// come and go during the differential test.
const BITS_POSTING_MIN: usize = if cfg!(test) { 64 } else { 1024 };

/// Score levels are the subset sums of the should-terms' boosts: at most 2^8 subsets are
/// enumerated, and beyond 16 distinct levels a page could need many sparse levels, so such
/// queries enumerate and score all their candidates instead.
const LEVEL_SHOULDS_MAX: usize = 8;
const SCORE_LEVELS_MAX: usize = 16;

const CURSOR_VERSION: u8 = 1;
const CURSOR_FINGERPRINT_BYTES: usize = 8;
/// version + fingerprint + score (f64 bits) + key (u128).
const CURSOR_BYTES: usize = 1 + CURSOR_FINGERPRINT_BYTES + 8 + 16;
/// Base64 (URL-safe, no padding) length of `CURSOR_BYTES`: checked before decoding, so a huge
/// garbage cursor costs nothing.
const CURSOR_CHARS: usize = (CURSOR_BYTES * 4).div_ceil(3);

/// What the index needs to know about one party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyDoc<'a> {
    pub open: bool,
    pub max_size: u32,
    pub member_count: u32,
    /// The label JSON (an object). `None` or `Some("")` means no label (SPEC P-1).
    pub label: Option<&'a str>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Party keys, best first (score descending, then key ascending).
    pub keys: Vec<u128>,
    /// Present only when more results exist; pass it back with the same query, filter and limit.
    pub cursor: Option<String>,
    /// Cost units the search spent (see `cost.rs`).
    pub cost: u64,
}

/// A search the index refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// `limit` outside `1..=page_limit_max`.
    BadLimit { limit: usize, limit_max: usize },
    /// The cursor is not one this index produced.
    BadCursor,
    /// The cursor was produced for another query, open filter or limit.
    CursorMismatch,
    /// A wildcard term matches (or would have to inspect) more dictionary terms than allowed.
    WildcardTooBroad { byte_pos: usize, terms_max: usize },
    /// The search needs (or would need) more than `query_cost_max` cost units.
    TooCostly { cost_max: u64 },
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::BadLimit { limit, limit_max } => {
                write!(f, "limit {limit} outside 1..={limit_max}")
            }
            SearchError::BadCursor => write!(f, "invalid cursor"),
            SearchError::CursorMismatch => {
                write!(f, "cursor belongs to another query, open filter or limit")
            }
            SearchError::WildcardTooBroad { byte_pos, terms_max } => {
                write!(f, "wildcard term at byte {byte_pos} matches more than {terms_max} distinct values")
            }
            SearchError::TooCostly { cost_max } => write!(f, "search needs more than {cost_max} cost units"),
        }
    }
}

impl std::error::Error for SearchError {}

/// What the index holds about a party besides its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIns<'a> {
    pub open: bool,
    pub max_size: u32,
    pub member_count: u32,
    /// The party's name (SPEC L-7); "" for none, which is not indexed.
    pub name: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KeywordEntry {
    term: TermId,
    /// Index of this doc in the term's posting list (pair invariant: `docs[pos] == this doc`).
    posting_pos: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct NumberEntry {
    field: FieldId,
    /// The number as order-preserving bits (see `ordered_bits`).
    value: u64,
}

#[derive(Debug, Default)]
struct Doc {
    key: u128,
    open: bool,
    /// Copies of the built-in numbers (also in `numbers`), as ordered bits, so checking them
    /// does not chase the list pointer.
    max_size: u64,
    member_count: u64,
    /// Sorted by term, no duplicates; the first is the `open` term.
    keywords: Vec<KeywordEntry>,
    /// Sorted by (field, value), no duplicates.
    numbers: Vec<NumberEntry>,
}

/// A term's identity: its text (shared by its posting and both dictionary keys) and field.
#[derive(Debug, Clone, Default)]
struct TermKey {
    text: Arc<str>,
    field: FieldId,
}

/// `by_text` order: (text, field). Lookups borrow the key as `dyn TextFirst`, so a `(&str,
/// FieldId)` finds an entry without allocating a key.
trait TextFirst {
    fn parts(&self) -> (&str, FieldId);
}

/// `by_field` order: (field, text).
trait FieldFirst {
    fn parts(&self) -> (FieldId, &str);
}

#[derive(Debug, Clone)]
struct ByText(TermKey);

#[derive(Debug, Clone)]
struct ByField(TermKey);

impl TextFirst for ByText {
    fn parts(&self) -> (&str, FieldId) {
        (&self.0.text, self.0.field)
    }
}

impl TextFirst for (&str, FieldId) {
    fn parts(&self) -> (&str, FieldId) {
        *self
    }
}

impl FieldFirst for ByField {
    fn parts(&self) -> (FieldId, &str) {
        (self.0.field, &self.0.text)
    }
}

impl FieldFirst for (FieldId, &str) {
    fn parts(&self) -> (FieldId, &str) {
        *self
    }
}

/// Equality and order of the owned keys and of their borrowed views, from `parts` alone, so
/// they always agree (as `Borrow` requires).
macro_rules! order_by_parts {
    ($view:ident, $owned:ident) => {
        impl<'a> Borrow<dyn $view + 'a> for $owned {
            fn borrow(&self) -> &(dyn $view + 'a) {
                self
            }
        }
        impl PartialEq for dyn $view + '_ {
            fn eq(&self, other: &Self) -> bool {
                self.parts() == other.parts()
            }
        }
        impl Eq for dyn $view + '_ {}
        impl PartialOrd for dyn $view + '_ {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for dyn $view + '_ {
            fn cmp(&self, other: &Self) -> Ordering {
                self.parts().cmp(&other.parts())
            }
        }
        impl PartialEq for $owned {
            fn eq(&self, other: &Self) -> bool {
                self.parts() == other.parts()
            }
        }
        impl Eq for $owned {}
        impl PartialOrd for $owned {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $owned {
            fn cmp(&self, other: &Self) -> Ordering {
                self.parts().cmp(&other.parts())
            }
        }
    };
}

order_by_parts!(TextFirst, ByText);
order_by_parts!(FieldFirst, ByField);

/// A term's docs. Most terms of unique or hostile values have exactly one doc, so the first
/// is held inline and only a second doc allocates the rest.
#[derive(Debug, Default)]
struct Posting {
    /// The term (needed to drop its dictionary entries when the posting empties).
    key: TermKey,
    /// Unsorted (results are ordered by (score, key)): `first`, then `more.rest`.
    first: DocId,
    len: u32,
    /// The docs after the first and, for large postings, the bitmap; boxed, since most terms
    /// have neither.
    more: Option<Box<PostingMore>>,
}

#[derive(Debug, Default)]
struct PostingMore {
    rest: Vec<DocId>,
    /// For large postings only (see `BITS_POSTING_MIN`; empty otherwise): bit `d` set iff doc
    /// `d` is in the posting. Checking a candidate against a common term is then one read of a
    /// small, cache-resident bitmap instead of a walk to the candidate's own lists.
    bits: Vec<u64>,
}

impl Posting {
    fn len(&self) -> usize {
        self.len as usize
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The doc at `pos`, if the posting is that long.
    fn doc_at(&self, pos: usize) -> Option<DocId> {
        match pos {
            _ if pos >= self.len() => None,
            0 => Some(self.first),
            _ => self.more.as_ref().and_then(|more| more.rest.get(pos - 1).copied()),
        }
    }

    fn docs(&self) -> impl Iterator<Item = DocId> + '_ {
        let rest = self.more.as_ref().map_or(&[][..], |more| more.rest.as_slice());
        (self.len > 0).then_some(self.first).into_iter().chain(rest.iter().copied())
    }

    fn bits(&self) -> &[u64] {
        self.more.as_ref().map_or(&[], |more| more.bits.as_slice())
    }

    fn has_bits(&self) -> bool {
        !self.bits().is_empty()
    }

    /// Heap bytes beside the per-doc slots (which `estimate::KEYWORD_ENTRY` counts): the boxed
    /// tail and the bitmap.
    fn heap_bytes(&self) -> usize {
        self.more
            .as_ref()
            .map_or(0, |more| estimate::block(size_of::<PostingMore>()) + more.bits.capacity() * size_of::<u64>())
    }

    /// Appends a doc; returns its position and the change of `heap_bytes`.
    fn push(&mut self, doc_id: DocId) -> (u32, isize) {
        let bytes_before = self.heap_bytes();
        let pos = posting_pos(self.len());
        if self.len == 0 {
            self.first = doc_id;
        } else {
            let more = self.more.get_or_insert_with(Box::default);
            more.rest.push(doc_id);
        }
        self.len += 1;
        if self.has_bits() {
            set_bit(&mut self.more.as_mut().expect("a bitmap lives in the tail").bits, doc_id);
        } else if self.len() >= BITS_POSTING_MIN {
            let mut bits = Vec::new();
            for doc_id in self.docs() {
                set_bit(&mut bits, doc_id);
            }
            self.more.as_mut().expect("a posting this long has a tail").bits = bits;
        }
        (pos, self.heap_bytes() as isize - bytes_before as isize)
    }

    /// `swap_remove` at `pos`; returns the doc moved into `pos`, if any, and the change of
    /// `heap_bytes`.
    fn swap_remove(&mut self, pos: usize) -> (Option<DocId>, isize) {
        let bytes_before = self.heap_bytes();
        let removed = self.doc_at(pos).expect("the position is in the posting");
        let last = match self.more.as_mut().and_then(|more| more.rest.pop()) {
            Some(last) => last,
            None => self.first,
        };
        self.len -= 1;
        let moved = (pos < self.len()).then_some(last);
        if let Some(last) = moved {
            match pos {
                0 => self.first = last,
                _ => self.more.as_mut().expect("a doc after the first lives in the tail").rest[pos - 1] = last,
            }
        }
        if let Some(more) = &mut self.more {
            if more.rest.is_empty() {
                // Back to one doc (or none): the tail goes.
                self.more = None;
            } else if !more.bits.is_empty() {
                // Below half the threshold the bitmap goes; the gap avoids rebuilding it on
                // every join and leave around the threshold.
                if (self.len as usize) < BITS_POSTING_MIN / 2 {
                    more.bits = Vec::new();
                } else {
                    more.bits[removed as usize / 64] &= !(1u64 << (removed % 64));
                }
            }
        }
        (moved, self.heap_bytes() as isize - bytes_before as isize)
    }
}

fn set_bit(bits: &mut Vec<u64>, doc_id: DocId) {
    let word = doc_id as usize / 64;
    if word >= bits.len() {
        // Exactly: a bitmap grows a word per 64 doc slots, and doubling it would add its whole
        // size to the memory estimate at once.
        bits.reserve_exact(word + 1 - bits.len());
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1u64 << (doc_id % 64);
}

fn test_bit(bits: &[u64], doc_id: DocId) -> bool {
    bits.get(doc_id as usize / 64).is_some_and(|word| word & (1u64 << (doc_id % 64)) != 0)
}

#[derive(Debug, Default)]
struct Field {
    name: Arc<str>,
    /// Keyword and number entries of all docs in this field; a label field is freed at zero.
    entries: u32,
    /// Number entries of all docs in this field.
    numbers: u32,
}

/// The index's estimate of its own memory, in bytes, kept up to date as it changes and
/// recounted by `check_invariants`. B-tree entries and vectors that grow by doubling are counted
/// at 1.5× their size (their typical fill), heap blocks at glibc's chunk size. It leaves out
/// the allocator's free lists, so RSS per party measures somewhat above it (the README gives
/// both, from `examples/label_memory.rs`).
mod estimate {
    use super::*;

    const fn grown(bytes: usize) -> usize {
        bytes * 3 / 2
    }

    /// A heap block of `requested` bytes: glibc adds an 8-byte header, rounds to 16, 32 at least.
    pub const fn block(requested: usize) -> usize {
        let chunk = (requested + 8).div_ceil(16) * 16;
        if chunk < 32 {
            32
        } else {
            chunk
        }
    }

    /// An `Arc<str>` of `len` bytes: two counters and the text.
    pub const fn arc_str(len: usize) -> usize {
        block(2 * size_of::<usize>() + len)
    }

    /// A slot of `docs`, live or free (slots are reused, never returned).
    pub const DOC_SLOT: usize = grown(size_of::<Doc>());
    /// A live doc's `by_key` entry.
    pub const DOC_LIVE: usize = grown(size_of::<(u128, DocId)>());
    /// One keyword value of a doc: its entry in its own list, its place in the posting.
    pub const KEYWORD_ENTRY: usize = size_of::<KeywordEntry>() + grown(size_of::<DocId>());
    /// One number of a doc: its entry in its own list and in the numeric set.
    pub const NUMBER_ENTRY: usize = size_of::<NumberEntry>() + grown(size_of::<u128>());

    /// A term: its posting slot, its two dictionary entries, its text. (A posting with more
    /// than one doc adds its boxed tail, counted as it comes and goes.)
    pub const fn term(text_len: usize) -> usize {
        grown(size_of::<Posting>()) + 2 * grown(size_of::<(TermKey, TermId)>()) + arc_str(text_len)
    }

    /// A field: its slot, its `field_ids` entry, its name.
    pub const fn field(name_len: usize) -> usize {
        grown(size_of::<Field>()) + grown(size_of::<(Arc<str>, FieldId)>()) + arc_str(name_len)
    }

    /// A doc's own lists (exact capacity) and its `by_key` entry.
    pub fn doc(doc: &Doc) -> usize {
        DOC_LIVE + doc.keywords.len() * KEYWORD_ENTRY + doc.numbers.len() * NUMBER_ENTRY
    }
}

/// A query term resolved against the current dictionaries. Matches a doc if either part does.
struct Resolved<'a> {
    /// Sorted term ids (one for an exact term; a wildcard's expansion, or a bare term's text in
    /// every label field, may be several); absent when no term of the dictionary matches.
    keyword: Option<Vec<TermId>>,
    /// The bitmaps of the keyword terms, when every one of them has a bitmap.
    keyword_bits: Vec<&'a [u64]>,
    /// (field, lower, upper) over ordered bits.
    numeric: Option<(FieldId, Bound<u64>, Bound<u64>)>,
    boost: f64,
    /// The numeric part's size as counted so far: (count, whether that is all of it). Counting
    /// walks the range, so it is done once per search, as far as the planner needs.
    range_count: std::cell::Cell<Option<(usize, bool)>>,
}

impl Resolved<'_> {
    /// Whether checking a doc needs no walk to the doc's own lists.
    fn is_cheap(&self) -> bool {
        let keyword_cheap = self.keyword.is_none() || !self.keyword_bits.is_empty();
        let numeric_cheap =
            self.numeric.is_none_or(|(field, ..)| field == FIELD_MAX_SIZE || field == FIELD_MEMBER_COUNT);
        keyword_cheap && numeric_cheap
    }

    fn matches_nothing(&self) -> bool {
        self.keyword.is_none() && self.numeric.is_none()
    }

    /// Whether enumerating this term can yield a doc twice (several terms, or several numbers
    /// of one doc in range, or a doc matching both as keyword and as number).
    fn may_repeat_docs(&self) -> bool {
        match (&self.keyword, &self.numeric) {
            (Some(terms), None) => terms.len() > 1,
            _ => true,
        }
    }
}
/// A resolved query plus everything the per-candidate check needs.
struct Plan<'a> {
    musts: Vec<Resolved<'a>>,
    shoulds: Vec<Resolved<'a>>,
    must_nots: Vec<Resolved<'a>>,
    open_filter: Option<bool>,
    /// Sum of the must boosts, in query order.
    must_score: f64,
    /// No must-term but should-terms were written: at least one has to match.
    should_required: bool,
}

/// A position in the result order (score descending, key ascending).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    score: f64,
    key: u128,
}

/// Result order: higher score first, then lower key.
fn result_order(a: &Position, b: &Position) -> Ordering {
    b.score.total_cmp(&a.score).then(a.key.cmp(&b.key))
}

/// Where candidates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Every party (no must- or should-term).
    All,
    /// The must-term at this index.
    Must(usize),
    /// The should-term at this index.
    Should(usize),
    /// The union of all should-terms.
    Shoulds,
}

/// Which scores a candidate enumeration keeps.
#[derive(Debug, Clone, Copy)]
enum ScoreFilter {
    Any,
    Exactly(f64),
    Above(f64),
}

/// Every match of a level has the same score, so within a level results are in key order.
#[derive(Debug)]
struct ScoreLevel {
    score: f64,
    /// Enumerating these (deduplicated) yields every party of the level, and more.
    sources: Vec<Source>,
}

/// Which strategy answered a search: counted in tests, so the differential test can prove it
/// exercised every one.
#[derive(Debug, Clone, Copy)]
enum PlanTaken {
    /// A score level answered by a key-order walk.
    KeyWalk,
    /// A score level whose walk ran out of budget: its candidates were enumerated.
    KeyWalkGaveUp,
    /// A score level with too few candidates to try a walk.
    Enumerate,
    /// Too many score levels: every candidate enumerated and scored.
    EnumerateScored,
    /// Too many score levels, no must-term: the page was filled from the highest-boost
    /// should-terms alone.
    EssentialTerms,
}

#[cfg(test)]
thread_local! {
    static PLANS_TAKEN: std::cell::Cell<[usize; 5]> = const { std::cell::Cell::new([0; 5]) };
}

fn note_plan(plan: PlanTaken) {
    #[cfg(test)]
    PLANS_TAKEN.with(|counts| {
        let mut all = counts.get();
        all[plan as usize] += 1;
        counts.set(all);
    });
    let _ = plan;
}

/// The search index. See the module docs of [`crate::core::search`].
#[derive(Debug)]
pub struct SearchIndex {
    limits: SearchLimits,
    docs: Vec<Doc>,
    free_docs: Vec<DocId>,
    by_key: BTreeMap<u128, DocId>,
    fields: Vec<Field>,
    field_ids: BTreeMap<Arc<str>, FieldId>,
    free_fields: Vec<FieldId>,
    /// Postings by term id; a free slot is an empty default posting.
    postings: Vec<Posting>,
    free_terms: Vec<TermId>,
    by_text: BTreeMap<ByText, TermId>,
    by_field: BTreeMap<ByField, TermId>,
    /// Every number of every doc: `number_key(field, value, doc)`.
    numbers: BTreeSet<u128>,
    /// The running estimate of this index's memory (see `estimate`).
    bytes: usize,
}

impl Default for SearchIndex {
    fn default() -> Self {
        SearchIndex::new(SearchLimits::default())
    }
}

impl SearchIndex {
    pub fn new(limits: SearchLimits) -> SearchIndex {
        let mut index = SearchIndex {
            limits,
            docs: Vec::new(),
            free_docs: Vec::new(),
            by_key: BTreeMap::new(),
            fields: Vec::new(),
            field_ids: BTreeMap::new(),
            free_fields: Vec::new(),
            postings: Vec::new(),
            free_terms: Vec::new(),
            by_text: BTreeMap::new(),
            by_field: BTreeMap::new(),
            numbers: BTreeSet::new(),
            bytes: size_of::<SearchIndex>(),
        };
        for name in ["", "open", "max_size", "member_count", "name"] {
            index.fields.push(Field { name: name.into(), ..Field::default() });
            index.bytes += estimate::field(name.len());
        }
        let false_id = index.intern_term(FIELD_OPEN, "false");
        let true_id = index.intern_term(FIELD_OPEN, "true");
        assert_eq!((false_id, true_id), (TERM_FALSE, TERM_TRUE));
        index
    }

    pub fn limits(&self) -> &SearchLimits {
        &self.limits
    }

    /// Number of parties in the index.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn contains(&self, key: u128) -> bool {
        self.by_key.contains_key(&key)
    }

    /// The index's running estimate of its own memory in bytes, which `index_bytes_max`
    /// bounds (see `estimate`).
    pub fn bytes_estimated(&self) -> usize {
        self.bytes
    }

    /// The built-in fields the index holds for a party: `(open, max_size, member_count)`. For
    /// the party layer's consistency check (its table and the index must agree).
    pub fn built_ins(&self, key: u128) -> Option<(bool, f64, f64)> {
        let doc = &self.docs[*self.by_key.get(&key)? as usize];
        Some((doc.open, number_from_ordered_bits(doc.max_size), number_from_ordered_bits(doc.member_count)))
    }

    /// Inserts a party or replaces everything the index knows about it. A refused label leaves
    /// the index untouched (the party keeps its previous entry, if any). [`Self::prepare_label`]
    /// then [`Self::upsert_prepared`], for callers that hold the label only here.
    pub fn upsert(&mut self, key: u128, party: PartyDoc<'_>) -> Result<(), LabelError> {
        let label = self.prepare_label(party.label.unwrap_or_default())?;
        let built_ins =
            BuiltIns { open: party.open, max_size: party.max_size, member_count: party.member_count, name: "" };
        self.upsert_prepared(key, built_ins, &label);
        Ok(())
    }

    /// Parses, flattens and bounds a label (see `label.rs`; empty = none) without touching the
    /// index: the one check of a label, done before the caller changes anything, so indexing it
    /// later cannot fail. A label is also refused when indexing it could take the index past
    /// `index_bytes_max` (counted as if every value and field were new to the index, and
    /// without the bytes the party's old label would free): past the budget, labels are
    /// refused and parties without one are still indexed.
    pub fn prepare_label(&self, label: &str) -> Result<PreparedLabel, LabelError> {
        let prepared = label::prepare(label, &self.limits)?;
        if prepared.values() > 0 && self.bytes + self.label_bytes_worst(&prepared) > self.limits.index_bytes_max {
            return Err(LabelError::IndexFull { bytes_max: self.limits.index_bytes_max });
        }
        Ok(prepared)
    }

    /// What indexing `label` can add at most, as the running estimate counts it: a new doc
    /// slot, its entries, every new field and term, and what joining an existing term can add
    /// (its posting's tail on a second doc, its bitmap when it reaches `BITS_POSTING_MIN` or
    /// grows to a new doc slot), and room for the party's name. Without what the party's old
    /// label would free.
    pub fn label_bytes_worst(&self, label: &PreparedLabel) -> usize {
        // The doc's id is at most a new slot's.
        let doc_id = DocId::try_from(self.docs.len()).unwrap_or(DocId::MAX);
        let open = [TERM_FALSE, TERM_TRUE].map(|term| self.join_bytes_worst(&self.postings[term as usize], doc_id));
        let mut bytes = estimate::DOC_SLOT
            + estimate::DOC_LIVE
            + estimate::KEYWORD_ENTRY
            + open.into_iter().max().unwrap_or(0)
            + 2 * estimate::NUMBER_ENTRY;
        for (name, value) in &label.flat {
            bytes += match value {
                FlatValue::Keyword(text) => {
                    let field = self.field_ids.get(name.as_str());
                    let term = field.and_then(|&field| self.by_text.get(&(text.as_str(), field) as &dyn TextFirst));
                    estimate::KEYWORD_ENTRY
                        + match term {
                            Some(&term) => self.join_bytes_worst(&self.postings[term as usize], doc_id),
                            None => estimate::term(text.len()),
                        }
                }
                FlatValue::Number(_) => 2 * estimate::NUMBER_ENTRY,
            };
        }
        // The party's name, if it has one (SPEC L-7): a new term, or joining an existing one.
        let name = estimate::KEYWORD_ENTRY
            + estimate::term(self.limits.name_bytes_max)
                .max(estimate::block(size_of::<PostingMore>()) + (doc_id as usize / 64 + 1) * size_of::<u64>());
        let new_fields = label.fields.iter().filter(|name| !self.field_ids.contains_key(name.as_str()));
        bytes + name + new_fields.map(|name| estimate::field(name.len())).sum::<usize>()
    }

    /// What `doc_id` joining `posting` can add to its heap bytes (see `Posting::heap_bytes`).
    fn join_bytes_worst(&self, posting: &Posting, doc_id: DocId) -> usize {
        let words = doc_id as usize / 64 + 1;
        let tail = if posting.len() == 1 { estimate::block(size_of::<PostingMore>()) } else { 0 };
        let bits = if posting.has_bits() {
            words.saturating_sub(posting.bits().len())
        } else if posting.len() + 1 >= BITS_POSTING_MIN {
            words
        } else {
            0
        };
        tail + bits * size_of::<u64>()
    }

    /// Inserts a party or replaces everything the index knows about it, with a label prepared
    /// by [`Self::prepare_label`]. Cannot fail.
    pub fn upsert_prepared(&mut self, key: u128, party: BuiltIns<'_>, label: &PreparedLabel) {
        let flat = &label.flat;
        let doc_id = match self.by_key.get(&key) {
            Some(&doc_id) => {
                self.unindex_doc(doc_id);
                doc_id
            }
            None => {
                let doc_id = match self.free_docs.pop() {
                    Some(doc_id) => doc_id,
                    None => {
                        // Invariant: fewer than 2³² parties (memory runs out long before).
                        let doc_id = DocId::try_from(self.docs.len()).expect("doc ids fit u32");
                        self.docs.push(Doc::default());
                        self.bytes += estimate::DOC_SLOT;
                        doc_id
                    }
                };
                self.by_key.insert(key, doc_id);
                doc_id
            }
        };

        let label_numbers = flat.iter().filter(|(_, value)| matches!(value, FlatValue::Number(_))).count();
        let mut keywords: Vec<TermId> = Vec::with_capacity(1 + flat.len() - label_numbers);
        let mut numbers: Vec<NumberEntry> = Vec::with_capacity(2 + 2 * label_numbers);
        keywords.push(if party.open { TERM_TRUE } else { TERM_FALSE });
        numbers.push(NumberEntry { field: FIELD_MAX_SIZE, value: ordered_bits(f64::from(party.max_size)) });
        numbers.push(NumberEntry { field: FIELD_MEMBER_COUNT, value: ordered_bits(f64::from(party.member_count)) });
        if !party.name.is_empty() {
            keywords.push(self.intern_term(FIELD_NAME, party.name));
        }
        for (name, value) in flat {
            let field = self.intern_field(name);
            match value {
                FlatValue::Keyword(text) => keywords.push(self.intern_term(field, text)),
                FlatValue::Number(value) => {
                    numbers.push(NumberEntry { field, value: *value });
                    numbers.push(NumberEntry { field: FIELD_ANY_LABEL, value: *value });
                }
            }
        }
        keywords.sort_unstable();
        keywords.dedup();
        numbers.sort_unstable();
        numbers.dedup();
        numbers.shrink_to_fit();

        let mut doc_keywords = Vec::with_capacity(keywords.len());
        for term in keywords {
            let posting = &mut self.postings[term as usize];
            let (posting_pos, bits_delta) = posting.push(doc_id);
            self.fields[posting.key.field as usize].entries += 1;
            self.bytes = self.bytes.wrapping_add_signed(bits_delta);
            doc_keywords.push(KeywordEntry { term, posting_pos });
        }
        for entry in &numbers {
            let field = &mut self.fields[entry.field as usize];
            field.entries += 1;
            field.numbers += 1;
            self.numbers.insert(number_key(entry.field, entry.value, doc_id));
        }
        // Fields and terms interned above for values that turned out to be duplicates still
        // have entries from this doc (a duplicate implies an identical kept value).
        let doc = &mut self.docs[doc_id as usize];
        doc.key = key;
        doc.open = party.open;
        doc.max_size = ordered_bits(f64::from(party.max_size));
        doc.member_count = ordered_bits(f64::from(party.member_count));
        doc.keywords = doc_keywords;
        doc.numbers = numbers;
        self.bytes += estimate::doc(doc);
        self.debug_check_doc(doc_id);
    }

    /// Updates the member count of an indexed party. Returns false if the key is not indexed.
    pub fn set_member_count(&mut self, key: u128, member_count: u32) -> bool {
        let Some(&doc_id) = self.by_key.get(&key) else {
            return false;
        };
        let doc = &mut self.docs[doc_id as usize];
        let value = ordered_bits(f64::from(member_count));
        // Invariant: every doc has exactly one member_count entry (set by upsert); it stays in
        // place in the sorted list because no other entry shares its field.
        let at = doc
            .numbers
            .iter()
            .position(|entry| entry.field == FIELD_MEMBER_COUNT)
            .expect("every doc has a member_count entry");
        let old = std::mem::replace(&mut doc.numbers[at].value, value);
        doc.member_count = value;
        let removed = self.numbers.remove(&number_key(FIELD_MEMBER_COUNT, old, doc_id));
        debug_assert!(removed, "member_count entry and numeric set agree");
        self.numbers.insert(number_key(FIELD_MEMBER_COUNT, value, doc_id));
        self.debug_check_doc(doc_id);
        true
    }

    /// Updates the open flag of an indexed party. Returns false if the key is not indexed.
    pub fn set_open(&mut self, key: u128, open: bool) -> bool {
        let Some(&doc_id) = self.by_key.get(&key) else {
            return false;
        };
        let new_term = if open { TERM_TRUE } else { TERM_FALSE };
        let doc = &mut self.docs[doc_id as usize];
        doc.open = open;
        // Invariant: every doc's first keyword entry is its `open` term (the smallest ids).
        let entry = doc.keywords[0];
        debug_assert!(entry.term <= TERM_TRUE, "the first keyword entry is the open term");
        if entry.term == new_term {
            return true;
        }
        self.bytes =
            self.bytes.wrapping_add_signed(remove_from_posting(&mut self.postings, &mut self.docs, doc_id, entry));
        let (posting_pos, bits_delta) = self.postings[new_term as usize].push(doc_id);
        self.bytes = self.bytes.wrapping_add_signed(bits_delta);
        self.docs[doc_id as usize].keywords[0] = KeywordEntry { term: new_term, posting_pos };
        self.debug_check_doc(doc_id);
        true
    }

    /// Updates the name of an indexed party ("" = none). Returns false if the key is not indexed.
    /// A name is bounded by `party_name_bytes_max` and there is one per party, so like the
    /// built-in fields it is not refused by `index_bytes_max`.
    pub fn set_name(&mut self, key: u128, name: &str) -> bool {
        let Some(&doc_id) = self.by_key.get(&key) else {
            return false;
        };
        if self.name(key) == Some(name) {
            return true;
        }
        self.bytes -= estimate::doc(&self.docs[doc_id as usize]);
        let postings = &self.postings;
        let old = self.docs[doc_id as usize]
            .keywords
            .iter()
            .position(|entry| postings[entry.term as usize].key.field == FIELD_NAME);
        if let Some(at) = old {
            let entry = self.docs[doc_id as usize].keywords[at];
            let bits_delta = remove_from_posting(&mut self.postings, &mut self.docs, doc_id, entry);
            self.bytes = self.bytes.wrapping_add_signed(bits_delta);
            self.docs[doc_id as usize].keywords.remove(at);
            self.fields[FIELD_NAME as usize].entries -= 1;
            if self.postings[entry.term as usize].is_empty() {
                self.free_term(entry.term);
            }
        }
        if !name.is_empty() {
            let term = self.intern_term(FIELD_NAME, name);
            let (posting_pos, bits_delta) = self.postings[term as usize].push(doc_id);
            self.bytes = self.bytes.wrapping_add_signed(bits_delta);
            self.fields[FIELD_NAME as usize].entries += 1;
            let keywords = &mut self.docs[doc_id as usize].keywords;
            // Sorted by term id: the name's place is found, not assumed.
            let at = keywords.partition_point(|entry| entry.term < term);
            keywords.insert(at, KeywordEntry { term, posting_pos });
        }
        self.bytes += estimate::doc(&self.docs[doc_id as usize]);
        self.debug_check_doc(doc_id);
        true
    }

    /// The name an indexed party is indexed under ("" for none); `None` when not indexed. For the
    /// party layer's consistency check.
    pub fn name(&self, key: u128) -> Option<&str> {
        let doc = &self.docs[*self.by_key.get(&key)? as usize];
        let mut names = doc.keywords.iter().map(|entry| &self.postings[entry.term as usize].key);
        Some(names.find(|term| term.field == FIELD_NAME).map_or("", |term| &*term.text))
    }

    /// Removes a party. Returns false if the key was not indexed.
    pub fn remove(&mut self, key: u128) -> bool {
        let Some(doc_id) = self.by_key.remove(&key) else {
            return false;
        };
        self.unindex_doc(doc_id);
        let doc = &mut self.docs[doc_id as usize];
        // Release the lists' memory: a freed slot may stay unused for a long time.
        *doc = Doc::default();
        self.free_docs.push(doc_id);
        true
    }

    fn intern_field(&mut self, name: &str) -> FieldId {
        if let Some(&field_id) = self.field_ids.get(name) {
            return field_id;
        }
        let field_id = match self.free_fields.pop() {
            Some(field_id) => field_id,
            None => {
                // Invariant: fields hold at least one value each, so fewer than 2³² exist.
                let field_id = FieldId::try_from(self.fields.len()).expect("field ids fit u32");
                self.fields.push(Field::default());
                field_id
            }
        };
        let name: Arc<str> = name.into();
        self.bytes += estimate::field(name.len());
        self.fields[field_id as usize] = Field { name: name.clone(), entries: 0, numbers: 0 };
        self.field_ids.insert(name, field_id);
        field_id
    }

    fn intern_term(&mut self, field: FieldId, text: &str) -> TermId {
        if let Some(&term_id) = self.by_text.get(&(text, field) as &dyn TextFirst) {
            return term_id;
        }
        let key = TermKey { text: text.into(), field };
        let posting = Posting { key: key.clone(), ..Posting::default() };
        let term_id = match self.free_terms.pop() {
            Some(term_id) => {
                self.postings[term_id as usize] = posting;
                term_id
            }
            None => {
                // Invariant: terms hold at least one posting each, so fewer than 2³² exist.
                let term_id = TermId::try_from(self.postings.len()).expect("term ids fit u32");
                self.postings.push(posting);
                term_id
            }
        };
        self.bytes += estimate::term(text.len());
        self.by_text.insert(ByText(key.clone()), term_id);
        self.by_field.insert(ByField(key), term_id);
        term_id
    }

    /// Drops an emptied term from both dictionaries and frees its slot.
    fn free_term(&mut self, term_id: TermId) {
        let posting = std::mem::take(&mut self.postings[term_id as usize]);
        debug_assert!(posting.is_empty() && posting.more.is_none(), "only empty terms are freed");
        let TermKey { text, field } = posting.key;
        self.by_text.remove(&(&*text, field) as &dyn TextFirst);
        self.by_field.remove(&(field, &*text) as &dyn FieldFirst);
        self.bytes -= estimate::term(text.len());
        self.free_terms.push(term_id);
    }

    /// Removes every entry of a doc from the postings and the numeric set, freeing terms and
    /// label fields left empty. The doc keeps its slot and key.
    fn unindex_doc(&mut self, doc_id: DocId) {
        self.bytes -= estimate::doc(&self.docs[doc_id as usize]);
        let keywords = std::mem::take(&mut self.docs[doc_id as usize].keywords);
        let numbers = std::mem::take(&mut self.docs[doc_id as usize].numbers);
        let mut touched: Vec<FieldId> = Vec::with_capacity(keywords.len() + numbers.len());
        for &entry in &keywords {
            let bits_delta = remove_from_posting(&mut self.postings, &mut self.docs, doc_id, entry);
            self.bytes = self.bytes.wrapping_add_signed(bits_delta);
            let field = self.postings[entry.term as usize].key.field;
            self.fields[field as usize].entries -= 1;
            touched.push(field);
            // The `open` terms are permanent; other emptied terms leave the dictionaries so
            // wildcard expansion and memory only see live values.
            if self.postings[entry.term as usize].is_empty() && entry.term > TERM_TRUE {
                self.free_term(entry.term);
            }
        }
        for entry in &numbers {
            let removed = self.numbers.remove(&number_key(entry.field, entry.value, doc_id));
            debug_assert!(removed, "number entry and numeric set agree");
            let field = &mut self.fields[entry.field as usize];
            field.entries -= 1;
            field.numbers -= 1;
            touched.push(entry.field);
        }
        for field_id in touched {
            let field = &mut self.fields[field_id as usize];
            if field_id >= FIELDS_BUILTIN && field.entries == 0 && !field.name.is_empty() {
                let name = std::mem::take(&mut field.name);
                self.bytes -= estimate::field(name.len());
                self.field_ids.remove(&name);
                self.free_fields.push(field_id);
            }
        }
    }

    /// Approximate heap and inline bytes held by the index, walking every structure (the
    /// bench's memory-per-party figure). B-tree nodes are counted as 1.5× their entries, a
    /// typical fill for random inserts. Compare [`Self::bytes_estimated`], kept as it changes.
    pub fn memory_bytes_approx(&self) -> usize {
        let btree = |entries: usize, entry_bytes: usize| entries * entry_bytes * 3 / 2;
        let mut bytes = size_of::<SearchIndex>();
        bytes += self.docs.capacity() * size_of::<Doc>();
        for doc in &self.docs {
            bytes += doc.keywords.capacity() * size_of::<KeywordEntry>();
            bytes += doc.numbers.capacity() * size_of::<NumberEntry>();
        }
        bytes += self.free_docs.capacity() * size_of::<DocId>();
        bytes += btree(self.by_key.len(), size_of::<(u128, DocId)>());
        bytes += self.fields.capacity() * size_of::<Field>();
        for field in &self.fields {
            bytes += field.name.len();
        }
        bytes += btree(self.field_ids.len(), size_of::<(Arc<str>, FieldId)>());
        bytes += self.postings.capacity() * size_of::<Posting>();
        for posting in &self.postings {
            let rest = posting.more.as_ref().map_or(0, |more| more.rest.capacity());
            bytes += posting.key.text.len() + rest * size_of::<DocId>() + posting.heap_bytes();
        }
        bytes += self.free_terms.capacity() * size_of::<TermId>();
        bytes += 2 * btree(self.by_text.len(), size_of::<(TermKey, TermId)>());
        bytes += btree(self.numbers.len(), size_of::<u128>());
        bytes
    }

    /// The running estimate recounted from scratch (`check_invariants` compares the two).
    fn bytes_recounted(&self) -> usize {
        let mut bytes = size_of::<SearchIndex>() + self.docs.len() * estimate::DOC_SLOT;
        for &doc_id in self.by_key.values() {
            bytes += estimate::doc(&self.docs[doc_id as usize]);
        }
        for (field_id, field) in self.fields.iter().enumerate() {
            if (field_id as FieldId) < FIELDS_BUILTIN || field.entries > 0 {
                bytes += estimate::field(field.name.len());
            }
        }
        for &term_id in self.by_text.values() {
            let posting = &self.postings[term_id as usize];
            bytes += estimate::term(posting.key.text.len()) + posting.heap_bytes();
        }
        bytes
    }

    /// Checks every structural invariant (pair assertions in both directions). O(size of the
    /// index): for tests and the simulation, not for the hot path.
    pub fn check_invariants(&self) {
        let mut keyword_entries = vec![0usize; self.fields.len()];
        let mut number_entries = vec![0usize; self.fields.len()];
        for (&key, &doc_id) in &self.by_key {
            let doc = &self.docs[doc_id as usize];
            assert_eq!(doc.key, key, "by_key and doc agree");
            self.check_doc(doc_id);
            for entry in &doc.keywords {
                keyword_entries[self.postings[entry.term as usize].key.field as usize] += 1;
            }
            for entry in &doc.numbers {
                number_entries[entry.field as usize] += 1;
            }
        }
        for &doc_id in &self.free_docs {
            let doc = &self.docs[doc_id as usize];
            assert!(doc.keywords.is_empty() && doc.numbers.is_empty(), "free slot is empty");
            assert_ne!(self.by_key.get(&doc.key), Some(&doc_id), "free slot not indexed");
        }
        assert_eq!(self.by_key.len() + self.free_docs.len(), self.docs.len());

        // Terms: each live one in both dictionaries under its own key, every slot live or free.
        assert_eq!(self.by_text.len(), self.by_field.len(), "both dictionaries hold every term");
        assert_eq!(self.by_text.len() + self.free_terms.len(), self.postings.len(), "every term slot is live or free");
        let mut postings_len = vec![0usize; self.fields.len()];
        for (ByText(key), &term_id) in &self.by_text {
            let posting = &self.postings[term_id as usize];
            assert!(Arc::ptr_eq(&posting.key.text, &key.text) && posting.key.field == key.field, "text key pair");
            assert_eq!(self.by_field.get(&(key.field, &*key.text) as &dyn FieldFirst), Some(&term_id), "field key");
            assert!(!posting.is_empty() || term_id <= TERM_TRUE, "empty terms are freed");
            assert_eq!(posting.more.is_some(), posting.len() > 1, "a tail exactly when there is a second doc");
            let keyword_field = matches!(key.field, FIELD_OPEN | FIELD_NAME) || key.field >= FIELDS_BUILTIN;
            assert!(keyword_field, "keywords live in open, name and label fields");
            postings_len[key.field as usize] += posting.len();
            if posting.has_bits() {
                let ones: u32 = posting.bits().iter().map(|w| w.count_ones()).sum();
                assert_eq!(ones as usize, posting.len(), "bitmap matches posting");
                assert!(posting.docs().all(|doc_id| test_bit(posting.bits(), doc_id)));
                assert!(posting.len() >= BITS_POSTING_MIN / 2);
            } else {
                assert!(posting.len() < BITS_POSTING_MIN);
            }
        }
        for &term_id in &self.free_terms {
            assert!(self.postings[term_id as usize].is_empty(), "free term slots are empty");
        }
        let mut set_entries = vec![0usize; self.fields.len()];
        for &key in &self.numbers {
            let (field, value, doc_id) = number_key_parts(key);
            let entry = NumberEntry { field, value };
            assert!(self.docs[doc_id as usize].numbers.binary_search(&entry).is_ok(), "number pair");
            set_entries[field as usize] += 1;
        }
        for (field_id, field) in self.fields.iter().enumerate() {
            assert_eq!(postings_len[field_id], keyword_entries[field_id], "postings match doc entries");
            assert_eq!(set_entries[field_id], number_entries[field_id], "numbers match entries");
            assert_eq!(field.numbers as usize, number_entries[field_id]);
            assert_eq!(field.entries as usize, postings_len[field_id] + number_entries[field_id]);
            let field_id = field_id as FieldId;
            if field_id >= FIELDS_BUILTIN {
                let live = self.field_ids.get(&field.name) == Some(&field_id);
                assert_eq!(live, field.entries > 0, "label fields live while they hold values");
                assert_eq!(live, !self.free_fields.contains(&field_id));
            }
        }
        assert_eq!(self.bytes, self.bytes_recounted(), "the running memory estimate is exact");
    }

    /// The pair assertions of one party's entries (`check_invariants` for one doc); nothing
    /// when the key is not indexed.
    pub fn check_key(&self, key: u128) {
        if let Some(&doc_id) = self.by_key.get(&key) {
            assert_eq!(self.docs[doc_id as usize].key, key, "by_key and doc agree");
            self.check_doc(doc_id);
        }
    }

    fn debug_check_doc(&self, doc_id: DocId) {
        if cfg!(debug_assertions) {
            self.check_doc(doc_id);
        }
    }

    /// Pair assertions for one doc: each of its entries is found where it says.
    fn check_doc(&self, doc_id: DocId) {
        let doc = &self.docs[doc_id as usize];
        assert!(doc.keywords.windows(2).all(|w| w[0].term < w[1].term));
        assert!(doc.numbers.windows(2).all(|w| w[0] < w[1]));
        for entry in &doc.keywords {
            let posting = &self.postings[entry.term as usize];
            assert_eq!(posting.doc_at(entry.posting_pos as usize), Some(doc_id), "keyword pair");
            assert!(!posting.has_bits() || test_bit(posting.bits(), doc_id));
        }
        for entry in &doc.numbers {
            assert!(self.numbers.contains(&number_key(entry.field, entry.value, doc_id)));
        }
        let open_terms: Vec<TermId> = doc.keywords.iter().filter(|e| e.term <= TERM_TRUE).map(|e| e.term).collect();
        assert_eq!(open_terms, [if doc.open { TERM_TRUE } else { TERM_FALSE }]);
        let names = doc.keywords.iter().filter(|e| self.postings[e.term as usize].key.field == FIELD_NAME).count();
        assert!(names <= 1, "at most one name");
        for (builtin, copy) in [(FIELD_MAX_SIZE, doc.max_size), (FIELD_MEMBER_COUNT, doc.member_count)] {
            let values: Vec<u64> = doc.numbers.iter().filter(|e| e.field == builtin).map(|e| e.value).collect();
            assert_eq!(values, [copy], "one built-in number, copied on the doc");
        }
    }

    /// Runs a query. `open_filter` keeps only open (`Some(true)`) or closed (`Some(false)`)
    /// parties; `limit` must be in `1..=page_limit_max`; `cursor` comes from a previous page of
    /// the same query, filter and limit. Refused with [`SearchError::TooCostly`] when it needs
    /// more than `query_cost_max` cost units.
    pub fn search(
        &self,
        query: &Query,
        open_filter: Option<bool>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SearchPage, SearchError> {
        self.search_costed(query, open_filter, limit, cursor).0
    }

    /// [`Self::search`], also returning the cost units it spent, whether it succeeded or not
    /// (a refused search did work too; the session's budget is charged for it).
    pub fn search_costed(
        &self,
        query: &Query,
        open_filter: Option<bool>,
        limit: usize,
        cursor: Option<&str>,
    ) -> (Result<SearchPage, SearchError>, u64) {
        let meter = Meter::new(self.limits.query_cost_max);
        let result = self.search_metered(query, open_filter, limit, cursor, &meter);
        // Whatever the search found after its budget ran out is incomplete: refused, never
        // returned as a short page.
        let result =
            if meter.over() { Err(SearchError::TooCostly { cost_max: self.limits.query_cost_max }) } else { result };
        let result = result.map(|page| SearchPage { cost: meter.spent(), ..page });
        (result, meter.spent())
    }

    fn search_metered(
        &self,
        query: &Query,
        open_filter: Option<bool>,
        limit: usize,
        cursor: Option<&str>,
        meter: &Meter,
    ) -> Result<SearchPage, SearchError> {
        if limit == 0 || limit > self.limits.page_limit_max {
            return Err(SearchError::BadLimit { limit, limit_max: self.limits.page_limit_max });
        }
        let fingerprint = cursor_fingerprint(query, open_filter, limit);
        let after = match cursor {
            None => None,
            Some(text) => Some(decode_cursor(text, &fingerprint)?),
        };
        let empty = SearchPage { keys: Vec::new(), cursor: None, cost: 0 };

        let mut plan = Plan {
            musts: Vec::new(),
            shoulds: Vec::new(),
            must_nots: Vec::new(),
            open_filter,
            must_score: 0.0,
            should_required: false,
        };
        let mut should_written = false;
        // Resolve every distinct term before acting on any, so a refused wildcard is reported
        // whatever the other terms match. A term written twice is one term whose boost is the
        // sum (the same score for every party), so repeating a term costs nothing more.
        let clauses = merge_duplicate_clauses(query.clauses(), meter);
        let mut resolved_all = Vec::with_capacity(clauses.len());
        for (clause, boost) in &clauses {
            resolved_all.push(self.resolve(clause, *boost, meter)?);
            if meter.over() {
                return Ok(empty);
            }
        }
        for ((clause, _), resolved) in clauses.iter().zip(resolved_all) {
            match clause.occur {
                Occur::Must if resolved.matches_nothing() => return Ok(empty),
                Occur::Must => {
                    plan.must_score += resolved.boost;
                    plan.musts.push(resolved);
                }
                Occur::MustNot if resolved.matches_nothing() => {}
                Occur::MustNot => plan.must_nots.push(resolved),
                Occur::Should => {
                    should_written = true;
                    if !resolved.matches_nothing() {
                        plan.shoulds.push(resolved);
                    }
                }
            }
        }
        plan.should_required = plan.musts.is_empty() && should_written;
        merge_must_ranges(&mut plan.musts);
        // Check cheap must-terms first (the score was summed in query order above already).
        plan.musts.sort_by_key(|must| !must.is_cheap());
        if plan.should_required && plan.shoulds.is_empty() {
            return Ok(empty);
        }

        let wanted = limit + 1;
        let mut found = match self.score_levels(&plan, meter) {
            Some(levels) => self.search_levels(&plan, &levels, after, wanted, meter),
            // With a must-term the should-terms are optional: candidates come from the cheapest
            // must-term. Without one, a match has to match some should-term.
            None if plan.musts.is_empty() => self.search_essential_terms(&plan, after, wanted, meter),
            None => {
                note_plan(PlanTaken::EnumerateScored);
                let sources = [Source::Must(self.cheapest_must(&plan.musts, meter))];
                self.collect_candidates(&plan, &sources, ScoreFilter::Any, after, wanted, meter)
            }
        };

        let cursor = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|last| encode_cursor(&fingerprint, last))
        } else {
            None
        };
        Ok(SearchPage { keys: found.iter().map(|position| position.key).collect(), cursor, cost: 0 })
    }

    fn field_of(&self, field: &FieldRef) -> Option<FieldId> {
        match field {
            FieldRef::AnyLabel => Some(FIELD_ANY_LABEL),
            FieldRef::Open => Some(FIELD_OPEN),
            FieldRef::MaxSize => Some(FIELD_MAX_SIZE),
            FieldRef::MemberCount => Some(FIELD_MEMBER_COUNT),
            FieldRef::Name => Some(FIELD_NAME),
            FieldRef::Label(name) => {
                debug_assert!(name.starts_with(LABEL_PREFIX));
                self.field_ids.get(&**name).copied()
            }
        }
    }

    fn resolve(&self, clause: &Clause, boost: f64, meter: &Meter) -> Result<Resolved<'_>, SearchError> {
        let mut resolved = Resolved {
            keyword: None,
            keyword_bits: Vec::new(),
            numeric: None,
            boost,
            range_count: std::cell::Cell::new(None),
        };
        meter.charge(1);
        let Some(field_id) = self.field_of(&clause.field) else {
            return Ok(resolved);
        };
        let any_label = field_id == FIELD_ANY_LABEL;
        let mut term_ids = Vec::new();
        match &clause.value {
            ValueMatch::Exact { text, number } => {
                if any_label {
                    // The text in every label field (`by_text` is ordered by text first).
                    let from: &dyn TextFirst = &(&**text, FIELDS_BUILTIN);
                    for (ByText(key), &term_id) in
                        self.by_text.range::<dyn TextFirst, _>((Bound::Included(from), Bound::Unbounded))
                    {
                        if *key.text != **text || !meter.charge(1) {
                            break;
                        }
                        term_ids.push(term_id);
                    }
                } else if let Some(&term_id) = self.by_text.get(&(&**text, field_id) as &dyn TextFirst) {
                    term_ids.push(term_id);
                }
                if let Some(number) = number {
                    let bits = ordered_bits(*number);
                    resolved.numeric = Some((field_id, Bound::Included(bits), Bound::Included(bits)));
                }
            }
            ValueMatch::Range { op, number } => {
                let bits = ordered_bits(*number);
                let (lower, upper) = match op {
                    RangeOp::Greater => (Bound::Excluded(bits), Bound::Unbounded),
                    RangeOp::GreaterOrEqual => (Bound::Included(bits), Bound::Unbounded),
                    RangeOp::Less => (Bound::Unbounded, Bound::Excluded(bits)),
                    RangeOp::LessOrEqual => (Bound::Unbounded, Bound::Included(bits)),
                };
                resolved.numeric = Some((field_id, lower, upper));
            }
            ValueMatch::Wildcard(pattern) => {
                let prefix = pattern.literal_prefix();
                let too_broad = SearchError::WildcardTooBroad {
                    byte_pos: clause.byte_pos,
                    terms_max: self.limits.wildcard_expansion_max,
                };
                // A bare pattern scans every label field's terms from the prefix (text first),
                // a field's pattern only that field's (field first).
                let candidates: Box<dyn Iterator<Item = (&TermKey, TermId)>> = if any_label {
                    let from: &dyn TextFirst = &(prefix.as_str(), 0);
                    Box::new(
                        self.by_text
                            .range::<dyn TextFirst, _>((Bound::Included(from), Bound::Unbounded))
                            .take_while(|(ByText(key), _)| key.text.starts_with(prefix.as_str()))
                            .map(|(ByText(key), &term_id)| (key, term_id)),
                    )
                } else {
                    let from: &dyn FieldFirst = &(field_id, prefix.as_str());
                    Box::new(
                        self.by_field
                            .range::<dyn FieldFirst, _>((Bound::Included(from), Bound::Unbounded))
                            .take_while(|(ByField(key), _)| {
                                key.field == field_id && key.text.starts_with(prefix.as_str())
                            })
                            .map(|(ByField(key), &term_id)| (key, term_id)),
                    )
                };
                for (scanned, (key, term_id)) in candidates.enumerate() {
                    if scanned >= self.limits.wildcard_scan_max {
                        return Err(too_broad);
                    }
                    if !meter.charge(1) {
                        return Ok(resolved);
                    }
                    if (any_label && key.field < FIELDS_BUILTIN) || !pattern.matches(&key.text) {
                        continue;
                    }
                    if term_ids.len() == self.limits.wildcard_expansion_max {
                        return Err(too_broad);
                    }
                    term_ids.push(term_id);
                }
            }
        }
        if !term_ids.is_empty() {
            term_ids.sort_unstable();
            resolved.keyword = Some(term_ids);
        }
        // A numeric part on a field without numbers can never match; dropping it lets a must
        // term short-circuit and keeps candidate enumeration to the keyword postings.
        if let Some((field_id, ..)) = resolved.numeric {
            if self.fields[field_id as usize].numbers == 0 {
                resolved.numeric = None;
            }
        }
        if let Some(terms) = &resolved.keyword {
            if terms.iter().all(|&t| self.postings[t as usize].has_bits()) {
                resolved.keyword_bits = terms.iter().map(|&t| self.postings[t as usize].bits()).collect();
            }
        }
        Ok(resolved)
    }

    /// The must-term with the fewest candidates. Keyword counts are free (posting lengths);
    /// ranges have no cheap count, so they are counted last and only up to the best count so far
    /// (and at most `RANGE_COUNT_MAX`).
    fn cheapest_must(&self, musts: &[Resolved], meter: &Meter) -> usize {
        if musts.len() == 1 {
            return 0;
        }
        let mut best = (0, usize::MAX);
        let keyword_only = |r: &Resolved| r.numeric.is_none();
        for (index, resolved) in musts.iter().enumerate().filter(|(_, r)| keyword_only(r)) {
            let count = self.estimate(resolved, 0, meter);
            if count < best.1 {
                best = (index, count);
            }
        }
        for (index, resolved) in musts.iter().enumerate().filter(|(_, r)| !keyword_only(r)) {
            let count = self.estimate(resolved, best.1.min(RANGE_COUNT_MAX), meter);
            if count < best.1 {
                best = (index, count);
            }
        }
        best.0
    }

    /// Candidate count of a term: exact for keywords, counted up to `range_budget` for the
    /// numeric part (each range entry counted is a cost unit; a count is remembered, so a term
    /// is counted at most once per bound).
    fn estimate(&self, resolved: &Resolved, range_budget: usize, meter: &Meter) -> usize {
        let mut count = 0usize;
        if let Some(terms) = &resolved.keyword {
            count += terms.iter().map(|&t| self.postings[t as usize].len()).sum::<usize>();
        }
        if let Some((field_id, lower, upper)) = resolved.numeric {
            let known = resolved.range_count.get().filter(|&(counted, whole)| whole || counted >= range_budget);
            let counted = match known {
                Some((counted, _)) => counted.min(range_budget),
                None => {
                    let mut counted = 0;
                    for _ in number_range(&self.numbers, field_id, lower, upper).take(range_budget) {
                        if !meter.charge(1) {
                            break;
                        }
                        counted += 1;
                    }
                    resolved.range_count.set(Some((counted, counted < range_budget)));
                    counted
                }
            };
            count += counted;
        }
        count
    }

    /// Candidate count of a set of sources, for the key-walk budget (ranges capped, see
    /// `RANGE_COUNT_MAX`).
    fn sources_estimate(&self, plan: &Plan, sources: &[Source], meter: &Meter) -> usize {
        sources
            .iter()
            .map(|source| match *source {
                Source::All => self.len(),
                Source::Must(index) => self.estimate(&plan.musts[index], RANGE_COUNT_MAX, meter),
                Source::Should(index) => self.estimate(&plan.shoulds[index], RANGE_COUNT_MAX, meter),
                Source::Shoulds => plan
                    .shoulds
                    .iter()
                    .map(|s| self.estimate(s, RANGE_COUNT_MAX, meter))
                    .fold(0usize, usize::saturating_add),
            })
            .fold(0usize, usize::saturating_add)
    }

    /// Splits the result order into score levels: a party's score is the must score plus the
    /// boosts of the subset of should-terms it matches, so the possible scores are the subset
    /// sums. Each level lists, per subset, the cheapest term every party of that subset must
    /// match. None when there are too many should-terms or levels for this to pay off.
    fn score_levels(&self, plan: &Plan, meter: &Meter) -> Option<Vec<ScoreLevel>> {
        let shoulds = plan.shoulds.len();
        if shoulds > LEVEL_SHOULDS_MAX {
            return None;
        }
        let must_source = (!plan.musts.is_empty()).then(|| {
            let index = self.cheapest_must(&plan.musts, meter);
            (Source::Must(index), self.estimate(&plan.musts[index], RANGE_COUNT_MAX, meter))
        });
        let should_costs: Vec<usize> = plan.shoulds.iter().map(|s| self.estimate(s, RANGE_COUNT_MAX, meter)).collect();
        let mut levels: Vec<ScoreLevel> = Vec::new();
        // The empty subset is possible only when a must-term makes should-terms optional, or
        // when there are no should-terms at all (then it is the only level).
        let first_subset = if plan.should_required { 1u32 } else { 0 };
        meter.charge(u64::from((1u32 << shoulds) - first_subset) * (shoulds as u64 + 1));
        for subset in first_subset..(1u32 << shoulds) {
            // Summed in query order, exactly as `score` sums, so equal levels are equal bits.
            let mut score = plan.must_score;
            let mut source = must_source;
            for (index, should) in plan.shoulds.iter().enumerate() {
                if subset & (1 << index) != 0 {
                    score += should.boost;
                    if source.is_none_or(|(_, cost)| should_costs[index] < cost) {
                        source = Some((Source::Should(index), should_costs[index]));
                    }
                }
            }
            let source = source.map_or(Source::All, |(source, _)| source);
            let existing = levels.iter().position(|level| level.score.total_cmp(&score) == Ordering::Equal);
            match existing {
                Some(at) => {
                    if !levels[at].sources.contains(&source) {
                        levels[at].sources.push(source);
                    }
                }
                None if levels.len() == SCORE_LEVELS_MAX => return None,
                None => levels.push(ScoreLevel { score, sources: vec![source] }),
            }
        }
        levels.sort_by(|a, b| b.score.total_cmp(&a.score));
        Some(levels)
    }

    /// Fills a page level by level, best score first. Within a level every match has the same
    /// score, so the order is the key order: a dense level is answered by walking parties in
    /// key order and stopping once the page is full; a sparse one (the walk gives up after as
    /// many parties as its candidates) by enumerating its candidates.
    fn search_levels(
        &self,
        plan: &Plan,
        levels: &[ScoreLevel],
        after: Option<Position>,
        wanted: usize,
        meter: &Meter,
    ) -> Vec<Position> {
        let mut found = Vec::with_capacity(wanted);
        let parties = self.len().max(1) as f64;
        // A range counted up to `RANGE_COUNT_MAX` may be far larger: for the density estimate
        // it is taken as matching everything, which favours trying the walk (its budget still
        // bounds the cost of a wrong guess).
        let range_capped = |resolved: &Resolved, count: usize| resolved.numeric.is_some() && count >= RANGE_COUNT_MAX;
        let must_selectivity: Vec<f64> = plan
            .musts
            .iter()
            .map(|must| {
                let count = self.estimate(must, RANGE_COUNT_MAX, meter);
                if range_capped(must, count) {
                    1.0
                } else {
                    count as f64 / parties
                }
            })
            .collect();
        for level in levels {
            if meter.over() {
                break;
            }
            let lower = match after {
                None => Bound::Unbounded,
                Some(after) => match level.score.total_cmp(&after.score) {
                    // The whole level sorts before the cursor: served on earlier pages.
                    Ordering::Greater => continue,
                    Ordering::Equal => Bound::Excluded(after.key),
                    Ordering::Less => Bound::Unbounded,
                },
            };
            let need = wanted - found.len();
            let walk_budget = if level.sources.contains(&Source::All) {
                Some(usize::MAX)
            } else {
                // Expected matches if terms were independent: the walk visits about
                // `need × parties / matches` parties, worth it only below the candidate count.
                let candidates = self.sources_estimate(plan, &level.sources, meter);
                let source_capped = level.sources.iter().any(|source| match *source {
                    Source::Must(index) => range_capped(&plan.musts[index], candidates),
                    Source::Should(index) => range_capped(&plan.shoulds[index], candidates),
                    Source::All | Source::Shoulds => false,
                });
                let source_matches = if source_capped { parties } else { candidates as f64 };
                let matches = must_selectivity
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| !level.sources.contains(&Source::Must(*index)))
                    .fold(source_matches, |m, (_, &selectivity)| m * selectivity);
                let walk_expected = need as f64 * parties / matches.max(1.0);
                Some(candidates)
                    .filter(|&candidates| candidates >= SCAN_CANDIDATES_MIN && walk_expected < candidates as f64)
            };
            let walked =
                walk_budget.and_then(|budget| self.scan_key_order(plan, level.score, lower, need, budget, meter));
            let level_found = match (walked, walk_budget) {
                (Some(level_found), _) => {
                    note_plan(PlanTaken::KeyWalk);
                    level_found
                }
                (None, budget) => {
                    note_plan(if budget.is_some() { PlanTaken::KeyWalkGaveUp } else { PlanTaken::Enumerate });
                    let level_after = match lower {
                        Bound::Excluded(key) => Some(Position { score: level.score, key }),
                        _ => None,
                    };
                    let filter = ScoreFilter::Exactly(level.score);
                    self.collect_candidates(plan, &level.sources, filter, level_after, need, meter)
                }
            };
            found.extend(level_found);
            if found.len() == wanted {
                break;
            }
        }
        found
    }

    /// Calls `visit` once per candidate doc of the sources (deduplicated), one cost unit each
    /// (and one per bitmap word cleared for the dedup); stops early once the budget is spent.
    fn for_each_candidate(&self, plan: &Plan, sources: &[Source], meter: &Meter, mut visit: impl FnMut(DocId)) {
        let term = |source: &Source| match *source {
            Source::Must(index) => Some(&plan.musts[index]),
            Source::Should(index) => Some(&plan.shoulds[index]),
            Source::All | Source::Shoulds => None,
        };
        if sources.contains(&Source::All) {
            for &doc_id in self.by_key.values() {
                if !meter.charge(1) {
                    return;
                }
                visit(doc_id);
            }
            return;
        }
        if let [source] = sources {
            if let Some(resolved) = term(source).filter(|r| !r.may_repeat_docs()) {
                self.for_each_posting_doc(resolved, meter, &mut visit);
                return;
            }
        }
        if !meter.charge(self.docs.len().div_ceil(64) as u64) {
            return;
        }
        let mut seen = DocSet::new(self.docs.len());
        let mut visit_once = |doc_id| {
            if seen.insert(doc_id) {
                visit(doc_id);
            }
        };
        for source in sources {
            match term(source) {
                Some(resolved) => self.for_each_posting_doc(resolved, meter, &mut visit_once),
                None => {
                    for should in &plan.shoulds {
                        self.for_each_posting_doc(should, meter, &mut visit_once);
                    }
                }
            }
        }
    }

    /// Every doc of a term's postings and number range, possibly repeated, one cost unit each.
    fn for_each_posting_doc(&self, resolved: &Resolved, meter: &Meter, visit: &mut dyn FnMut(DocId)) {
        if let Some(terms) = &resolved.keyword {
            for &term in terms {
                for doc_id in self.postings[term as usize].docs() {
                    if !meter.charge(1) {
                        return;
                    }
                    visit(doc_id);
                }
            }
        }
        if let Some((field_id, lower, upper)) = resolved.numeric {
            for key in number_range(&self.numbers, field_id, lower, upper) {
                if !meter.charge(1) {
                    return;
                }
                visit(number_key_parts(key).2);
            }
        }
    }

    /// Scored search without a must-term and with too many levels for `search_levels` (the
    /// "max-score" idea): with should-terms sorted by boost, a party scoring above the sum of
    /// the boosts after the first `k` must match one of those `k`. So enumerating only the
    /// first `k` terms finds every party above that sum; if they fill the page, the page is
    /// final. Tried while those terms hold at most a quarter of all candidates (twice at most),
    /// then every candidate is enumerated, so a miss costs at most 1.5× the plain enumeration.
    fn search_essential_terms(
        &self,
        plan: &Plan,
        after: Option<Position>,
        wanted: usize,
        meter: &Meter,
    ) -> Vec<Position> {
        let mut order: Vec<usize> = (0..plan.shoulds.len()).collect();
        order.sort_by(|&a, &b| plan.shoulds[b].boost.total_cmp(&plan.shoulds[a].boost));
        let costs: Vec<usize> = plan
            .shoulds
            .iter()
            .map(|should| {
                let count = self.estimate(should, RANGE_COUNT_MAX, meter);
                // A capped range count may hide a broad range: count it as every party.
                if should.numeric.is_some() && count >= RANGE_COUNT_MAX {
                    self.len()
                } else {
                    count
                }
            })
            .collect();
        let total_cost: usize = costs.iter().sum();
        let mut prefix_cost = 0usize;
        for (attempt, essential) in (1..order.len()).enumerate() {
            prefix_cost += costs[order[essential - 1]];
            if attempt == 2 || prefix_cost > total_cost / 4 || meter.over() {
                break;
            }
            let rest: f64 = order[essential..].iter().map(|&index| plan.shoulds[index].boost).sum();
            // Scores are summed in another order than `rest`; the margin absorbs rounding so
            // "above" never admits a party that matches no essential term.
            let bound = plan.must_score + rest + (plan.must_score + rest) * 1e-9;
            let sources: Vec<Source> = order[..essential].iter().map(|&index| Source::Should(index)).collect();
            let found = self.collect_candidates(plan, &sources, ScoreFilter::Above(bound), after, wanted, meter);
            if found.len() == wanted {
                note_plan(PlanTaken::EssentialTerms);
                return found;
            }
        }
        note_plan(PlanTaken::EnumerateScored);
        self.collect_candidates(plan, &[Source::Shoulds], ScoreFilter::Any, after, wanted, meter)
    }

    /// Enumerates all candidates of the sources, keeps the matches after the cursor whose score
    /// passes `filter`, returns the best `wanted` in result order.
    ///
    /// The page is kept sorted and bounded as it fills, and a candidate's score (from the
    /// should-terms, usually bitmap reads) is computed before anything else: a candidate that
    /// cannot enter the page is dropped without reading the doc or its lists.
    ///
    /// Every candidate costs at least a unit, so when the sources hold more candidates than
    /// the budget has left (keywords counted exactly, ranges at least as far as counted), the
    /// search is refused here, before enumerating anything.
    fn collect_candidates(
        &self,
        plan: &Plan,
        sources: &[Source],
        filter: ScoreFilter,
        after: Option<Position>,
        wanted: usize,
        meter: &Meter,
    ) -> Vec<Position> {
        let candidates = self.sources_estimate(plan, sources, meter);
        if candidates as u64 > meter.left() {
            meter.refuse();
            return Vec::new();
        }
        // A lone must-term source is known to match every candidate: skip re-checking it.
        let skip_must = match sources {
            [Source::Must(index)] => Some(*index),
            _ => None,
        };
        // What the should-terms after each one can still add: a candidate is dropped as soon
        // as even matching all the remaining terms could not reach the page (max-score pruning).
        let mut remaining_max = vec![0.0f64; plan.shoulds.len()];
        let mut sum = 0.0f64;
        for (index, should) in plan.shoulds.iter().enumerate().rev() {
            remaining_max[index] = sum;
            sum += should.boost;
        }
        let mut found: Vec<Position> = Vec::with_capacity(wanted + 1);
        self.for_each_candidate(plan, sources, meter, |doc_id| {
            let page_floor = if found.len() == wanted {
                found.last().map_or(f64::NEG_INFINITY, |last| last.score)
            } else {
                f64::NEG_INFINITY
            };
            let floor = match filter {
                ScoreFilter::Above(bound) => page_floor.max(bound.next_up()),
                ScoreFilter::Exactly(level) => page_floor.max(level),
                ScoreFilter::Any => page_floor,
            };
            let Some(score) = self.should_score_at_least(plan, doc_id, &remaining_max, floor, meter) else {
                return;
            };
            let wanted_score = match filter {
                ScoreFilter::Any => true,
                ScoreFilter::Exactly(level) => level.total_cmp(&score) == Ordering::Equal,
                ScoreFilter::Above(bound) => score > bound,
            };
            if !wanted_score {
                return;
            }
            // Scores strictly better than the cursor's were served on earlier pages; scores
            // strictly worse than a full page's last cannot enter it.
            if after.is_some_and(|after| score.total_cmp(&after.score) == Ordering::Greater) {
                return;
            }
            if found.len() == wanted && found.last().is_some_and(|last| score.total_cmp(&last.score) == Ordering::Less)
            {
                return;
            }
            if !self.passes_filters(plan, doc_id, skip_must, meter) {
                return;
            }
            let position = Position { score, key: self.docs[doc_id as usize].key };
            if after.is_some_and(|after| result_order(&position, &after) != Ordering::Greater) {
                return;
            }
            let at = found.partition_point(|p| result_order(p, &position) == Ordering::Less);
            if at < wanted {
                found.insert(at, position);
                found.truncate(wanted);
            }
        });
        found
    }

    /// Walks parties in key order from `lower`, collecting matches scoring exactly `level`,
    /// stopping at `wanted`. Returns None after `budget` parties without finishing (or once the
    /// cost budget is spent).
    fn scan_key_order(
        &self,
        plan: &Plan,
        level: f64,
        lower: Bound<u128>,
        wanted: usize,
        budget: usize,
        meter: &Meter,
    ) -> Option<Vec<Position>> {
        let mut found = Vec::with_capacity(wanted);
        for (visited, (_, &doc_id)) in self.by_key.range((lower, Bound::Unbounded)).enumerate() {
            if visited >= budget || !meter.charge(1) {
                return None;
            }
            let doc = &self.docs[doc_id as usize];
            let score = self.score(plan, doc_id, None, meter);
            if let Some(score) = score.filter(|s| s.total_cmp(&level) == Ordering::Equal) {
                found.push(Position { score, key: doc.key });
                if found.len() == wanted {
                    break;
                }
            }
        }
        Some(found)
    }

    /// The doc's score if it matches the plan. `skip_must` names a must-term already known to
    /// match (the candidate source).
    fn score(&self, plan: &Plan, doc_id: DocId, skip_must: Option<usize>, meter: &Meter) -> Option<f64> {
        if self.passes_filters(plan, doc_id, skip_must, meter) {
            self.should_score(plan, doc_id, meter)
        } else {
            None
        }
    }

    /// Must-terms, open filter and must-not terms. Must-terms come first and cheap ones
    /// (bitmaps) before the rest (see `search`), so most rejected candidates are rejected
    /// without reading the doc's own lists.
    fn passes_filters(&self, plan: &Plan, doc_id: DocId, skip_must: Option<usize>, meter: &Meter) -> bool {
        let doc = &self.docs[doc_id as usize];
        for (index, must) in plan.musts.iter().enumerate() {
            if skip_must != Some(index) && !doc_matches(must, doc_id, doc, meter) {
                return false;
            }
        }
        if plan.open_filter.is_some_and(|open| open != doc.open) {
            return false;
        }
        if plan.must_nots.iter().any(|not| doc_matches(not, doc_id, doc, meter)) {
            return false;
        }
        true
    }

    /// `should_score`, or None as soon as the score cannot reach `floor` even if every
    /// remaining should-term matched (`remaining_max[i]` bounds the boosts after term `i`).
    fn should_score_at_least(
        &self,
        plan: &Plan,
        doc_id: DocId,
        remaining_max: &[f64],
        floor: f64,
        meter: &Meter,
    ) -> Option<f64> {
        let doc = &self.docs[doc_id as usize];
        let mut score = plan.must_score;
        let mut should_matched = false;
        for (index, should) in plan.shoulds.iter().enumerate() {
            if doc_matches(should, doc_id, doc, meter) {
                score += should.boost;
                should_matched = true;
            }
            // The padding (far above the rounding error of ≤ 64 additions) keeps the bound an
            // upper bound, so pruning never drops a party that could reach `floor`.
            let reachable = score + remaining_max[index];
            if reachable + (score.abs() + remaining_max[index]) * 1e-9 < floor {
                return None;
            }
        }
        if (plan.should_required && !should_matched) || score < floor {
            return None;
        }
        Some(score)
    }

    /// The must score plus the boosts of the matching should-terms, summed in query order (the
    /// score levels are computed with the same additions, so equal scores are equal bits).
    /// None when a should-term is required and none matches.
    fn should_score(&self, plan: &Plan, doc_id: DocId, meter: &Meter) -> Option<f64> {
        let doc = &self.docs[doc_id as usize];
        let mut score = plan.must_score;
        let mut should_matched = false;
        for should in &plan.shoulds {
            if doc_matches(should, doc_id, doc, meter) {
                score += should.boost;
                should_matched = true;
            }
        }
        if plan.should_required && !should_matched {
            return None;
        }
        Some(score)
    }
}

/// The distinct terms of a query, each with its summed boost, in the order each first
/// appears: a term written twice scores every party exactly as the one term with both boosts
/// does, so it is resolved, counted and checked once. Comparing terms pairwise is at most
/// `query_terms_max`² comparisons, charged like any other work.
fn merge_duplicate_clauses<'q>(clauses: &'q [Clause], meter: &Meter) -> Vec<(&'q Clause, f64)> {
    let mut merged: Vec<(&Clause, f64)> = Vec::with_capacity(clauses.len());
    meter.charge((clauses.len() * clauses.len() / 16) as u64);
    for clause in clauses {
        let same = |kept: &&mut (&Clause, f64)| {
            kept.0.occur == clause.occur && kept.0.field == clause.field && kept.0.value == clause.value
        };
        match merged.iter_mut().find(same) {
            Some(kept) => kept.1 += clause.boost,
            None => merged.push((clause, clause.boost)),
        }
    }
    merged
}

/// Whether a doc holds a value matching the resolved term: bitmap reads when the postings have
/// them, the built-in numbers from the doc itself, otherwise binary searches in its lists. One
/// cost unit, plus one per entry of the doc's lists walked.
fn doc_matches(resolved: &Resolved, doc_id: DocId, doc: &Doc, meter: &Meter) -> bool {
    meter.charge(1);
    if let Some(terms) = &resolved.keyword {
        if !resolved.keyword_bits.is_empty() {
            if resolved.keyword_bits.iter().any(|bits| test_bit(bits, doc_id)) {
                return true;
            }
        } else if let [term] = terms.as_slice() {
            if doc.keywords.binary_search_by(|e| e.term.cmp(term)).is_ok() {
                return true;
            }
        } else {
            // Both lists are sorted: binary-search the longer for each entry of the shorter.
            let found = if terms.len() <= doc.keywords.len() {
                meter.charge(terms.len() as u64);
                terms.iter().any(|term| doc.keywords.binary_search_by(|e| e.term.cmp(term)).is_ok())
            } else {
                meter.charge(doc.keywords.len() as u64);
                doc.keywords.iter().any(|entry| terms.binary_search(&entry.term).is_ok())
            };
            if found {
                return true;
            }
        }
    }
    if let Some((field_id, lower, upper)) = resolved.numeric {
        match field_id {
            FIELD_MAX_SIZE => return (lower, upper).contains(&doc.max_size),
            FIELD_MEMBER_COUNT => return (lower, upper).contains(&doc.member_count),
            _ => {}
        }
        let start = doc.numbers.partition_point(|e| e.field < field_id);
        let in_field = doc.numbers[start..].iter().take_while(|e| e.field == field_id);
        for entry in in_field {
            meter.charge(1);
            if (lower, upper).contains(&entry.value) {
                return true;
            }
        }
    }
    false
}

/// Folds must-terms that are pure numeric ranges on the same field into one range, so
/// `+label.skill:>=1000 +label.skill:<1030` enumerates the 30 values in between rather than
/// everything above 1000.
fn merge_must_ranges(musts: &mut Vec<Resolved<'_>>) {
    let mut index = 0;
    while index < musts.len() {
        if let (None, Some((field_id, mut lower, mut upper))) = (&musts[index].keyword, musts[index].numeric) {
            let mut other = index + 1;
            while other < musts.len() {
                match (&musts[other].keyword, musts[other].numeric) {
                    (None, Some((other_field, other_lower, other_upper))) if other_field == field_id => {
                        lower = tighter_lower(lower, other_lower);
                        upper = tighter_upper(upper, other_upper);
                        musts.remove(other);
                    }
                    _ => other += 1,
                }
            }
            musts[index].numeric = Some((field_id, lower, upper));
            // The range changed: a count made for the old one no longer holds.
            musts[index].range_count.set(None);
        }
        index += 1;
    }
}

fn tighter_lower(a: Bound<u64>, b: Bound<u64>) -> Bound<u64> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.max(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.max(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if e >= i {
                Bound::Excluded(e)
            } else {
                Bound::Included(i)
            }
        }
    }
}

fn tighter_upper(a: Bound<u64>, b: Bound<u64>) -> Bound<u64> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.min(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.min(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if e <= i {
                Bound::Excluded(e)
            } else {
                Bound::Included(i)
            }
        }
    }
}

/// Removes a doc's keyword entry from its posting list, fixing the position of the doc that
/// `swap_remove` moved into its place. Returns the change of the posting's bitmap bytes.
fn remove_from_posting(postings: &mut [Posting], docs: &mut [Doc], doc_id: DocId, entry: KeywordEntry) -> isize {
    let posting = &mut postings[entry.term as usize];
    let pos = entry.posting_pos as usize;
    debug_assert_eq!(posting.doc_at(pos), Some(doc_id), "keyword pair");
    let (moved, bits_delta) = posting.swap_remove(pos);
    if let Some(moved) = moved {
        let moved_keywords = &mut docs[moved as usize].keywords;
        // Invariant: the moved doc is in this posting, so it holds the entry.
        let at =
            moved_keywords.binary_search_by(|e| e.term.cmp(&entry.term)).expect("a doc in a posting holds its entry");
        moved_keywords[at].posting_pos = entry.posting_pos;
    }
    bits_delta
}

fn posting_pos(len: usize) -> u32 {
    // Invariant: a posting holds at most one entry per doc, and doc ids fit u32.
    u32::try_from(len).expect("posting positions fit u32")
}

/// A number of a doc as one key of the numeric set, ordered by field, then number, then doc.
fn number_key(field: FieldId, value: u64, doc_id: DocId) -> u128 {
    u128::from(field) << 96 | u128::from(value) << 32 | u128::from(doc_id)
}

/// (field, value, doc) of a numeric set key.
fn number_key_parts(key: u128) -> (FieldId, u64, DocId) {
    ((key >> 96) as FieldId, (key >> 32) as u64, key as DocId)
}

/// The numbers of one field within bounds, as numeric set keys.
fn number_range(
    numbers: &BTreeSet<u128>,
    field: FieldId,
    lower: Bound<u64>,
    upper: Bound<u64>,
) -> impl Iterator<Item = u128> + '_ {
    let start = match lower {
        Bound::Included(v) => number_key(field, v, DocId::MIN),
        Bound::Excluded(v) if v == u64::MAX => number_key(field + 1, 0, 0),
        Bound::Excluded(v) => number_key(field, v + 1, DocId::MIN),
        Bound::Unbounded => number_key(field, 0, DocId::MIN),
    };
    let end = match upper {
        Bound::Included(v) => Some(number_key(field, v, DocId::MAX)),
        Bound::Excluded(0) => None,
        Bound::Excluded(v) => Some(number_key(field, v - 1, DocId::MAX)),
        Bound::Unbounded => Some(number_key(field, u64::MAX, DocId::MAX)),
    };
    // `BTreeSet::range` panics on an inverted range; such a range is empty.
    end.filter(|&end| start <= end).map(|end| numbers.range(start..=end).copied()).into_iter().flatten()
}

/// A bitset over doc ids for deduplicating candidates.
struct DocSet {
    words: Vec<u64>,
}

impl DocSet {
    fn new(doc_slots: usize) -> DocSet {
        DocSet { words: vec![0; doc_slots.div_ceil(64)] }
    }

    /// Adds a doc; false if it was already there.
    fn insert(&mut self, doc_id: DocId) -> bool {
        let (word, bit) = (doc_id as usize / 64, doc_id % 64);
        let mask = 1u64 << bit;
        let fresh = self.words[word] & mask == 0;
        self.words[word] |= mask;
        fresh
    }
}

/// Maps an f64 to bits whose unsigned order is the numeric order (-0.0 folded into 0.0).
pub(super) fn ordered_bits(number: f64) -> u64 {
    let number = if number == 0.0 { 0.0 } else { number };
    let bits = number.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The inverse of `ordered_bits`.
fn number_from_ordered_bits(bits: u64) -> f64 {
    if bits >> 63 == 1 {
        f64::from_bits(bits & !(1 << 63))
    } else {
        f64::from_bits(!bits)
    }
}

fn cursor_fingerprint(query: &Query, open_filter: Option<bool>, limit: usize) -> [u8; CURSOR_FINGERPRINT_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(b"huddle.search.cursor.v1\0");
    hasher.update((query.text().len() as u64).to_le_bytes());
    hasher.update(query.text().as_bytes());
    hasher.update([match open_filter {
        None => 0u8,
        Some(false) => 1,
        Some(true) => 2,
    }]);
    hasher.update((limit as u64).to_le_bytes());
    let digest = hasher.finalize();
    let mut fingerprint = [0u8; CURSOR_FINGERPRINT_BYTES];
    fingerprint.copy_from_slice(&digest[..CURSOR_FINGERPRINT_BYTES]);
    fingerprint
}

fn encode_cursor(fingerprint: &[u8; CURSOR_FINGERPRINT_BYTES], position: &Position) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_BYTES);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(fingerprint);
    bytes.extend_from_slice(&position.score.to_bits().to_be_bytes());
    bytes.extend_from_slice(&position.key.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(text: &str, fingerprint: &[u8; CURSOR_FINGERPRINT_BYTES]) -> Result<Position, SearchError> {
    if text.len() != CURSOR_CHARS {
        return Err(SearchError::BadCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| SearchError::BadCursor)?;
    let Ok(bytes) = <[u8; CURSOR_BYTES]>::try_from(bytes.as_slice()) else {
        return Err(SearchError::BadCursor);
    };
    if bytes[0] != CURSOR_VERSION {
        return Err(SearchError::BadCursor);
    }
    let (fingerprint_bytes, rest) = bytes[1..].split_at(CURSOR_FINGERPRINT_BYTES);
    let (score_bytes, key_bytes) = rest.split_at(8);
    let mut score = [0u8; 8];
    score.copy_from_slice(score_bytes);
    let mut key = [0u8; 16];
    key.copy_from_slice(key_bytes);
    let score = f64::from_bits(u64::from_be_bytes(score));
    // Scores are sums of boosts in 0..=BOOST_MAX: anything else was not made here.
    if !score.is_finite() || score < 0.0 {
        return Err(SearchError::BadCursor);
    }
    if fingerprint_bytes != fingerprint {
        return Err(SearchError::CursorMismatch);
    }
    Ok(Position { score, key: u128::from_be_bytes(key) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::search::parse_query;

    fn query(text: &str) -> Query {
        match parse_query(text, &SearchLimits::default()) {
            Ok(query) => query,
            Err(error) => panic!("{text:?}: {error}"),
        }
    }

    fn party(open: bool, member_count: u32, label: Option<&str>) -> PartyDoc<'_> {
        PartyDoc { open, max_size: 4, member_count, label }
    }

    fn insert(index: &mut SearchIndex, key: u128, label: &str) {
        index.upsert(key, party(true, 1, Some(label))).unwrap_or_else(|error| panic!("{label}: {error}"));
    }

    /// All keys of a query (walking every page), in result order.
    fn keys_with(index: &SearchIndex, text: &str, open: Option<bool>, limit: usize) -> Vec<u128> {
        let query = query(text);
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        // A bound on pages, so a cursor that fails to advance fails the test instead of spinning.
        for _ in 0..=index.len() {
            let page = index
                .search(&query, open, limit, cursor.as_deref())
                .unwrap_or_else(|error| panic!("{text:?}: {error}"));
            assert!(page.keys.len() <= limit);
            keys.extend(&page.keys);
            match page.cursor {
                Some(next) => {
                    assert_eq!(page.keys.len(), limit, "a cursor only after a full page");
                    cursor = Some(next);
                }
                None => return keys,
            }
        }
        panic!("{text:?}: more pages than parties");
    }

    fn keys(index: &SearchIndex, text: &str) -> Vec<u128> {
        keys_with(index, text, None, 100)
    }

    #[test]
    fn names_are_one_keyword_per_party_replaced_cleared_and_counted_in_the_estimate() {
        let mut index = sample_index();
        let built_ins = |name| BuiltIns { open: true, max_size: 4, member_count: 1, name };
        index.upsert_prepared(7, built_ins("Friday squad"), &PreparedLabel::none());
        index.upsert_prepared(8, built_ins("Friday squad"), &PreparedLabel::none());
        assert_eq!(keys(&index, r#"name:"Friday squad""#), [7, 8]);
        assert!(keys(&index, "name:friday").is_empty(), "exact and case-sensitive");
        let before = index.bytes_estimated();
        assert!(index.set_name(7, "Night owls"));
        assert_eq!((index.name(7), index.name(8)), (Some("Night owls"), Some("Friday squad")));
        assert_eq!(keys(&index, r#"name:"Friday squad""#), [8]);
        assert_eq!(keys(&index, r#"name:"Night owls""#), [7]);
        assert!(index.set_name(8, ""));
        assert_eq!(index.name(8), Some(""));
        assert!(keys(&index, r#"name:"Friday squad""#).is_empty(), "the emptied term is gone");
        assert!(index.bytes_estimated() < before, "the freed term left the estimate");
        assert!(!index.set_name(99, "x"), "not indexed");
        // The running estimate equals the recount, pair invariants hold.
        index.check_invariants();
    }

    fn sample_index() -> SearchIndex {
        let mut index = SearchIndex::default();
        insert(&mut index, 1, r#"{"mode":"ranked","region":"eu-west","skill":12,"tags":["casual","voice"]}"#);
        insert(&mut index, 2, r#"{"mode":"ranked","region":"us-east","skill":-3.5,"tags":["voice"]}"#);
        insert(&mut index, 3, r#"{"mode":"casual","region":"eu-north","skill":30,"name":"two words"}"#);
        insert(&mut index, 4, r#"{"mode":"Ranked","nested":{"deep":{"x":1}},"flag":true,"count":"7"}"#);
        index.upsert(5, party(false, 3, None)).unwrap();
        index.check_invariants();
        index
    }

    #[test]
    fn empty_query_matches_every_party_in_key_order() {
        let index = sample_index();
        assert_eq!(keys(&index, ""), [1, 2, 3, 4, 5]);
        assert_eq!(keys(&index, "   "), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn exact_keywords_are_case_sensitive() {
        let index = sample_index();
        assert_eq!(keys(&index, "+label.mode:ranked"), [1, 2]);
        assert_eq!(keys(&index, "+label.mode:Ranked"), [4]);
        assert_eq!(keys(&index, "+label.mode:RANKED"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.region:eu"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.unknown:x"), Vec::<u128>::new());
    }

    #[test]
    fn must_should_and_must_not() {
        let index = sample_index();
        // Should-terms: at least one has to match when there is no must-term.
        assert_eq!(keys(&index, "label.mode:ranked label.mode:casual"), [1, 2, 3]);
        // With a must-term, should-terms are optional.
        assert_eq!(keys(&index, "+label.mode:ranked label.region:nowhere"), [1, 2]);
        // Only must-not terms: everything not excluded.
        assert_eq!(keys(&index, "-label.mode:ranked"), [3, 4, 5]);
        assert_eq!(keys(&index, "-label.mode:ranked -label.flag:true"), [3, 5]);
        assert_eq!(keys(&index, "-label.mode:nothing"), [1, 2, 3, 4, 5]);
        assert_eq!(keys(&index, "label.mode:ranked -label.tags:casual"), [2]);
        assert_eq!(keys(&index, "+label.tags:voice +label.region:us-east"), [2]);
        // A should-term that matches nothing, alone: nothing matches.
        assert_eq!(keys(&index, "label.mode:nothing"), Vec::<u128>::new());
        assert_eq!(keys(&index, "label.mode:nothing -label.mode:ranked"), Vec::<u128>::new());
    }

    #[test]
    fn flattening_nested_arrays_booleans_numbers() {
        let index = sample_index();
        assert_eq!(keys(&index, "+label.nested.deep.x:1"), [4]);
        assert_eq!(keys(&index, "+label.nested.deep.x:>0"), [4]);
        assert_eq!(keys(&index, "+label.tags:voice"), [1, 2]);
        assert_eq!(keys(&index, "+label.tags:casual"), [1]);
        assert_eq!(keys(&index, "+label.flag:true"), [4]);
        assert_eq!(keys(&index, "+label.flag:T"), Vec::<u128>::new());
        // Strings that look like numbers are keywords only.
        assert_eq!(keys(&index, "+label.count:7"), [4]);
        assert_eq!(keys(&index, "+label.count:>5"), Vec::<u128>::new());
        // Numbers match exactly through their value, whatever the spelling.
        assert_eq!(keys(&index, "+label.skill:12"), [1]);
        assert_eq!(keys(&index, "+label.skill:12.0"), [1]);
        assert_eq!(keys(&index, "+label.skill:1.2e1"), [1]);
        assert_eq!(keys(&index, "+label.skill:\"12\""), [1]);
        assert_eq!(keys(&index, "+label.skill:-3.5"), [2]);

        let mut index = SearchIndex::default();
        insert(&mut index, 9, r#"{"a":[{"b":1},{"b":[2,"x"]}],"n":null,"e":{},"z":[]}"#);
        insert(&mut index, 8, r#"{"a.b":3}"#);
        assert_eq!(keys(&index, "+label.a.b:1"), [9]);
        assert_eq!(keys(&index, "+label.a.b:2"), [9]);
        assert_eq!(keys(&index, "+label.a.b:x"), [9]);
        // A dotted key and a nested path name the same field, as in Nakama.
        assert_eq!(keys(&index, "+label.a.b:>=2"), [8, 9]);
        assert_eq!(keys(&index, "+label.n:null"), Vec::<u128>::new());
        index.check_invariants();
    }

    #[test]
    fn numeric_ranges_with_negatives_and_floats() {
        let index = sample_index();
        assert_eq!(keys(&index, "+label.skill:>12"), [3]);
        assert_eq!(keys(&index, "+label.skill:>=12"), [1, 3]);
        assert_eq!(keys(&index, "+label.skill:<12"), [2]);
        assert_eq!(keys(&index, "+label.skill:<=12"), [1, 2]);
        assert_eq!(keys(&index, "+label.skill:<-3"), [2]);
        assert_eq!(keys(&index, "+label.skill:>-3.6"), [1, 2, 3]);
        assert_eq!(keys(&index, "+label.skill:>-3.5"), [1, 3]);
        assert_eq!(keys(&index, "+label.skill:<0"), [2]);
        // Two ranges on one field are one interval (merged into a single range internally).
        assert_eq!(keys(&index, "+label.skill:>=0 +label.skill:<=12"), [1]);
        assert_eq!(keys(&index, "+label.skill:>-4 +label.skill:<31 +label.skill:>12"), [3]);
        assert_eq!(keys(&index, "+label.skill:>12 +label.skill:<12"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.skill:>=12 +label.skill:<=12"), [1]);
        assert_eq!(keys(&index, "+label.skill:>12 +label.skill:<=12"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.skill:12 +label.skill:>=12"), [1]);
    }

    #[test]
    fn zero_and_negative_zero_are_equal() {
        let mut index = SearchIndex::default();
        insert(&mut index, 1, r#"{"n":-0.0}"#);
        insert(&mut index, 2, r#"{"n":0}"#);
        assert_eq!(keys(&index, "+label.n:0"), [1, 2]);
        assert_eq!(keys(&index, "+label.n:-0"), [1, 2]);
        assert_eq!(keys(&index, "+label.n:<0"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.n:>=0"), [1, 2]);
    }

    #[test]
    fn built_in_fields() {
        let mut index = SearchIndex::default();
        index.upsert(1, PartyDoc { open: true, max_size: 4, member_count: 4, label: None }).unwrap();
        index.upsert(2, PartyDoc { open: true, max_size: 8, member_count: 3, label: None }).unwrap();
        index.upsert(3, PartyDoc { open: false, max_size: 2, member_count: 1, label: None }).unwrap();
        assert_eq!(keys(&index, "+open:true"), [1, 2]);
        assert_eq!(keys(&index, "+open:false"), [3]);
        assert_eq!(keys(&index, "+max_size:>=4"), [1, 2]);
        assert_eq!(keys(&index, "+member_count:<4"), [2, 3]);
        assert_eq!(keys(&index, "+member_count:4"), [1]);
        // Bare terms do not look at built-in fields.
        assert_eq!(keys(&index, "true"), Vec::<u128>::new());
        assert_eq!(keys(&index, "4"), Vec::<u128>::new());
    }

    #[test]
    fn bare_terms_match_any_label_field() {
        let index = sample_index();
        assert_eq!(keys(&index, "ranked"), [1, 2]);
        assert_eq!(keys(&index, "voice"), [1, 2]);
        assert_eq!(keys(&index, "\"two words\""), [3]);
        assert_eq!(keys(&index, "12"), [1]);
        assert_eq!(keys(&index, "7"), [4]);
        assert_eq!(keys(&index, ">20"), [3]);
        assert_eq!(keys(&index, "eu-*"), [1, 3]);
        assert_eq!(keys(&index, "-voice"), [3, 4, 5]);
    }

    #[test]
    fn quoted_phrases_match_the_exact_string() {
        let index = sample_index();
        assert_eq!(keys(&index, "+label.name:\"two words\""), [3]);
        assert_eq!(keys(&index, r"+label.name:two\ words"), [3]);
        assert_eq!(keys(&index, "+label.name:\"two\""), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.name:two"), Vec::<u128>::new());
    }

    #[test]
    fn wildcards_expand_over_the_dictionary() {
        let index = sample_index();
        assert_eq!(keys(&index, "+label.region:eu-*"), [1, 3]);
        assert_eq!(keys(&index, "+label.region:*-east"), [2]);
        assert_eq!(keys(&index, "+label.region:??-*"), [1, 2, 3]);
        assert_eq!(keys(&index, "+label.mode:?anked"), [1, 2, 4]);
        assert_eq!(keys(&index, "+label.mode:*"), [1, 2, 3, 4]);
        assert_eq!(keys(&index, "+label.tags:*"), [1, 2]);
        assert_eq!(keys(&index, "+label.mode:x*"), Vec::<u128>::new());
        // Wildcards match keywords, not numbers.
        assert_eq!(keys(&index, "+label.skill:1*"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+open:t*"), [1, 2, 3, 4]);
    }

    #[test]
    fn wildcard_expansion_is_bounded() {
        let limits = SearchLimits { wildcard_expansion_max: 3, wildcard_scan_max: 5, ..SearchLimits::default() };
        let mut index = SearchIndex::new(limits.clone());
        for key in 0..10u128 {
            insert(&mut index, key, &format!(r#"{{"v":"a{key}","w":"b{key}"}}"#));
        }
        let run = |text: &str| {
            let query = parse_query(text, &limits).unwrap();
            index.search(&query, None, 10, None).map(|page| page.keys)
        };
        let too_broad = |byte_pos| SearchError::WildcardTooBroad { byte_pos, terms_max: 3 };
        // Only the terms after the literal prefix are inspected.
        assert_eq!(run("+label.v:a1*"), Ok(vec![1]));
        assert_eq!(run("+label.w:b1?"), Ok(vec![]));
        // `a?` matches ten terms: more than three expansions.
        assert_eq!(run("+label.v:a?"), Err(too_broad(0)));
        // `a*9` matches one term but has to inspect ten: more than the scan budget of five.
        assert_eq!(run("label.v:a1 +label.v:a*9"), Err(too_broad(11)));
        assert_eq!(run("a0 *"), Err(too_broad(3)));
        // With default limits the same queries run.
        let mut index = SearchIndex::default();
        for key in 0..10u128 {
            insert(&mut index, key, &format!(r#"{{"v":"a{key}","w":"b{key}"}}"#));
        }
        let query = parse_query("label.v:a1 +label.v:a*9", &SearchLimits::default()).unwrap();
        assert_eq!(index.search(&query, None, 10, None).map(|page| page.keys), Ok(vec![9]));
    }

    #[test]
    fn boosts_reorder_results() {
        let index = sample_index();
        // Without boosts, parties matching both should-terms come first.
        assert_eq!(keys(&index, "label.region:eu-north label.tags:voice label.mode:casual"), [3, 1, 2]);
        assert_eq!(keys(&index, "label.mode:ranked label.mode:casual^5"), [3, 1, 2]);
        assert_eq!(keys(&index, "label.mode:ranked^5 label.mode:casual"), [1, 2, 3]);
        assert_eq!(keys(&index, "label.tags:voice label.mode:casual^0.5 label.region:eu-*^2"), [1, 3, 2]);
        // Boosts on must-terms shift every match alike.
        assert_eq!(keys(&index, "+label.mode:ranked^9 label.region:us-east"), [2, 1]);
    }

    #[test]
    fn updates_are_visible_to_the_next_search() {
        let mut index = sample_index();
        assert_eq!(keys(&index, "+member_count:3"), [5]);
        assert!(index.set_member_count(1, 3));
        assert_eq!(keys(&index, "+member_count:3"), [1, 5]);
        assert_eq!(keys(&index, "+member_count:<2"), [2, 3, 4]);
        assert!(index.set_open(1, false));
        assert_eq!(keys_with(&index, "", Some(false), 10), [1, 5]);
        assert_eq!(keys(&index, "+open:false"), [1, 5]);
        assert!(index.set_open(1, false), "idempotent");
        assert!(index.set_open(5, true));
        assert_eq!(keys(&index, "+open:true"), [2, 3, 4, 5]);
        index.check_invariants();

        // A label upsert replaces every indexed value of the party.
        index
            .upsert(1, PartyDoc { open: true, max_size: 6, member_count: 2, label: Some(r#"{"mode":"casual"}"#) })
            .unwrap();
        assert_eq!(keys(&index, "+label.mode:ranked"), [2]);
        assert_eq!(keys(&index, "+label.mode:casual"), [1, 3]);
        assert_eq!(keys(&index, "+label.tags:casual"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+max_size:6"), [1]);
        assert_eq!(keys(&index, "+open:true"), [1, 2, 3, 4, 5]);
        index.check_invariants();

        // Unknown keys are reported, not inserted.
        assert!(!index.set_member_count(99, 1));
        assert!(!index.set_open(99, true));
        assert_eq!(index.len(), 5);
    }

    #[test]
    fn removal_frees_terms_and_fields() {
        let mut index = sample_index();
        assert!(index.remove(4));
        assert!(!index.remove(4));
        assert_eq!(index.len(), 4);
        assert_eq!(keys(&index, "+label.mode:Ranked"), Vec::<u128>::new());
        assert_eq!(keys(&index, "+label.nested.deep.x:1"), Vec::<u128>::new());
        assert!(!index.field_ids.contains_key("label.nested.deep.x"), "empty field freed");
        assert!(
            index
                .by_text
                .range::<dyn TextFirst, _>((Bound::Included(&("Ranked", 0u32) as &dyn TextFirst), Bound::Unbounded))
                .all(|(ByText(key), _)| &*key.text != "Ranked"),
            "empty term freed"
        );
        index.check_invariants();
        for key in [1, 2, 3, 5] {
            assert!(index.remove(key));
            index.check_invariants();
        }
        assert!(index.is_empty());
        assert!(index.field_ids.is_empty());
        assert_eq!(keys(&index, ""), Vec::<u128>::new());
        // Slots, terms and fields are reused.
        insert(&mut index, 7, r#"{"mode":"ranked"}"#);
        assert_eq!(keys(&index, "+label.mode:ranked"), [7]);
        assert_eq!(index.docs.len(), 5);
        index.check_invariants();
    }

    #[test]
    fn refused_labels_leave_the_index_untouched() {
        let mut index = sample_index();
        let bad = ["[1]", "\"x\"", "{", "{\"a\":1}x", "nul"];
        for label in bad {
            assert!(index.upsert(1, party(false, 2, Some(label))).is_err(), "{label}");
        }
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(2048));
        assert_eq!(
            index.upsert(1, party(false, 2, Some(&big))),
            Err(LabelError::TooLarge { bytes: 2056, bytes_max: 2048 })
        );
        assert_eq!(index.upsert(1, party(false, 2, Some("[1]"))), Err(LabelError::NotObject));
        assert!(matches!(index.upsert(1, party(false, 2, Some("{"))), Err(LabelError::NotJson(_))));
        assert_eq!(keys(&index, "+label.mode:ranked +open:true"), [1, 2]);
        assert_eq!(index.len(), 5);
        // The empty label means no label.
        index.upsert(1, party(true, 1, Some(""))).unwrap();
        assert_eq!(keys(&index, "+label.mode:ranked"), [2]);
        index.check_invariants();
    }

    #[test]
    fn open_filter() {
        let index = sample_index();
        assert_eq!(keys_with(&index, "", Some(true), 10), [1, 2, 3, 4]);
        assert_eq!(keys_with(&index, "", Some(false), 10), [5]);
        assert_eq!(keys_with(&index, "-label.mode:ranked", Some(true), 10), [3, 4]);
        assert_eq!(keys_with(&index, "ranked casual", Some(false), 10), Vec::<u128>::new());
    }

    /// The query cost budget, exactly at and one past the cost of a search; a term written
    /// many times costs what it costs once.
    #[test]
    fn a_search_is_refused_one_unit_past_its_cost_budget_and_repeated_terms_cost_once() {
        let build = |query_cost_max| {
            let mut index = SearchIndex::new(SearchLimits { query_cost_max, ..SearchLimits::default() });
            for i in 0..300u128 {
                insert(&mut index, i, &format!(r#"{{"n":{i},"g":"g{}"}}"#, i % 7));
            }
            index
        };
        let queries = [
            (0..20).map(|i| format!("label.n:>={i}")).collect::<Vec<_>>().join(" "),
            "label.g:g1 label.g:g2^2 +label.n:<250 -label.n:<3".to_owned(),
            "g* 5 label.n:>=10".to_owned(),
        ];
        for text in &queries {
            let (result, cost) = build(u64::MAX).search_costed(&query(text), None, 10, None);
            let expected = result.expect("no budget, no refusal").keys;
            assert!(cost > 0);
            let (at, at_cost) = build(cost).search_costed(&query(text), None, 10, None);
            assert_eq!(at.map(|page| page.keys), Ok(expected), "{text}: exactly at its cost");
            assert_eq!(at_cost, cost);
            let (past, past_cost) = build(cost - 1).search_costed(&query(text), None, 10, None);
            assert_eq!(past, Err(SearchError::TooCostly { cost_max: cost - 1 }), "{text}: one unit past");
            assert!(past_cost <= cost, "a refused search does no more than the whole search");
        }
        // Written once or 64 times: the same results, the same cost.
        let index = build(u64::MAX);
        let once = index.search_costed(&query("label.n:>=0"), None, 10, None);
        let many = index.search_costed(&query(&vec!["label.n:>=0"; 64].join(" ")), None, 10, None);
        assert_eq!(once.0.map(|page| page.keys), many.0.map(|page| page.keys));
        // What merging adds is the pairwise comparison of the 64 terms (charged 64²/16).
        assert!(many.1 <= once.1 + 64 * 64 / 16, "64 repeats cost {} units, one term {}", many.1, once.1);
    }

    /// The memory budget, exactly at and one past what a label can add; parties without a
    /// label are indexed past it.
    #[test]
    fn a_label_is_refused_one_byte_past_the_index_memory_budget() {
        let mut index = sample_index();
        let label = r#"{"mode":"new","fresh":[1,2],"tag":"t"}"#;
        let prepared = index.prepare_label(label).unwrap();
        let needed = index.bytes_estimated() + index.label_bytes_worst(&prepared);
        index.limits.index_bytes_max = needed;
        let at = index.prepare_label(label).expect("exactly at the budget");
        index.limits.index_bytes_max = needed - 1;
        assert_eq!(index.prepare_label(label), Err(LabelError::IndexFull { bytes_max: needed - 1 }));
        assert_eq!(index.prepare_label(""), Ok(PreparedLabel::none()), "no label, no budget");
        assert_eq!(index.prepare_label("{}"), Ok(PreparedLabel::default()), "nothing to index, no budget");
        let before = index.bytes_estimated();
        index.upsert_prepared(9, BuiltIns { open: true, max_size: 2, member_count: 1, name: "" }, &at);
        assert!(index.bytes_estimated() <= needed, "the label took no more than its worst case");
        assert!(index.bytes_estimated() > before);
        index.upsert(10, party(true, 1, None)).expect("a party without a label is indexed past the budget");
        index.check_invariants();
        assert_eq!(keys(&index, "+label.mode:new"), [9]);
    }

    #[test]
    fn limit_is_checked() {
        let index = sample_index();
        let query = query("");
        assert_eq!(index.search(&query, None, 0, None), Err(SearchError::BadLimit { limit: 0, limit_max: 100 }));
        assert_eq!(index.search(&query, None, 101, None), Err(SearchError::BadLimit { limit: 101, limit_max: 100 }));
        assert!(index.search(&query, None, 100, None).is_ok());
    }

    #[test]
    fn cursor_present_only_when_more_results_exist() {
        let index = sample_index();
        let all = query("");
        let page = index.search(&all, None, 5, None).unwrap();
        assert_eq!((page.keys, page.cursor), (vec![1, 2, 3, 4, 5], None));
        let page = index.search(&all, None, 4, None).unwrap();
        assert_eq!(page.keys, [1, 2, 3, 4]);
        let cursor = page.cursor.expect("one more party");
        assert_eq!(cursor.len(), CURSOR_CHARS);
        let page = index.search(&all, None, 4, Some(&cursor)).unwrap();
        assert_eq!((page.keys, page.cursor), (vec![5], None));
    }

    #[test]
    fn cursor_mismatch_and_garbage() {
        let index = sample_index();
        let ranked = query("label.mode:ranked label.mode:casual");
        let page = index.search(&ranked, None, 1, None).unwrap();
        let cursor = page.cursor.expect("more results");
        assert!(index.search(&ranked, None, 1, Some(&cursor)).is_ok());
        let other = query("label.mode:casual label.mode:ranked");
        assert_eq!(index.search(&other, None, 1, Some(&cursor)), Err(SearchError::CursorMismatch));
        assert_eq!(index.search(&ranked, Some(true), 1, Some(&cursor)), Err(SearchError::CursorMismatch));
        assert_eq!(index.search(&ranked, None, 2, Some(&cursor)), Err(SearchError::CursorMismatch));

        let mut flipped = cursor.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let garbage = ["", "x", "!!!!", &"A".repeat(CURSOR_CHARS), &"é".repeat(22), &format!("{cursor}A"), &flipped];
        for text in garbage {
            assert_eq!(index.search(&ranked, None, 1, Some(text)), Err(SearchError::BadCursor), "{text:?}");
        }
        // A well-formed cursor with a negative score was not made here.
        let forged = encode_cursor(&cursor_fingerprint(&ranked, None, 1), &Position { score: -1.0, key: 1 });
        assert_eq!(index.search(&ranked, None, 1, Some(&forged)), Err(SearchError::BadCursor));
    }

    /// A few hundred parties with tied scores: every page walk returns each match exactly once,
    /// in order, for single-score-level queries (key-order walk) and scored ones (score levels).
    #[test]
    fn pagination_walks_every_result_exactly_once() {
        let mut index = SearchIndex::default();
        let mut expected_ranked = Vec::new();
        for i in 0..400u128 {
            // Spread keys over the whole u128 range, out of insertion order.
            let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            let mode = if i % 3 == 0 { "ranked" } else { "casual" };
            let label = format!(r#"{{"mode":"{mode}","skill":{},"tag":"t{}"}}"#, i % 7, i % 2);
            index.upsert(key, party(i % 5 != 0, (i % 4) as u32, Some(&label))).unwrap();
            if mode == "ranked" {
                expected_ranked.push(key);
            }
        }
        index.check_invariants();
        expected_ranked.sort_unstable();
        for limit in [1, 7, 10, 100] {
            let mut all: Vec<u128> = index.by_key.keys().copied().collect();
            assert_eq!(keys_with(&index, "", None, limit), all, "limit {limit}");
            assert_eq!(keys_with(&index, "+label.mode:ranked", None, limit), expected_ranked);
            assert_eq!(keys_with(&index, "label.mode:ranked", None, limit), expected_ranked);
            all.retain(|key| !expected_ranked.contains(key));
            assert_eq!(keys_with(&index, "-label.mode:ranked", None, limit), all);

            // Scored: three score classes (2, 1 and 1.5 by boost), ties broken by key.
            let walked = keys_with(&index, "label.mode:ranked label.tag:t1 label.skill:>=5^1.5", None, limit);
            let mut unique = walked.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), walked.len(), "no duplicates at limit {limit}");
            let single_page =
                index.search(&query("label.mode:ranked label.tag:t1 label.skill:>=5^1.5"), None, 100, None).unwrap();
            assert_eq!(&walked[..100], single_page.keys.as_slice());
            let expected = reference_search(&index, "label.mode:ranked label.tag:t1 label.skill:>=5^1.5", None);
            assert_eq!(walked, expected);
        }
    }

    /// The cursor is a position: a party changed between pages is neither lost nor repeated if
    /// it stays on the same side of the position.
    #[test]
    fn pagination_survives_unrelated_updates() {
        let mut index = SearchIndex::default();
        for key in 0..50u128 {
            insert(&mut index, key * 10, r#"{"mode":"ranked"}"#);
        }
        let ranked = query("+label.mode:ranked");
        let page = index.search(&ranked, None, 10, None).unwrap();
        assert_eq!(page.keys.last(), Some(&90));
        insert(&mut index, 5, r#"{"mode":"ranked"}"#); // before the position: not seen
        insert(&mut index, 95, r#"{"mode":"ranked"}"#); // after it: seen
        assert!(index.remove(100));
        let page = index.search(&ranked, None, 10, page.cursor.as_deref()).unwrap();
        assert_eq!(page.keys, [95, 110, 120, 130, 140, 150, 160, 170, 180, 190]);
    }

    // ----- Differential test against a brute-force evaluator -----

    /// Evaluates a query by brute force over each party's flattened values, the way the module
    /// docs define it, and sorts by (score desc, key asc).
    fn reference_search(index: &SearchIndex, text: &str, open_filter: Option<bool>) -> Vec<u128> {
        let query = query(text);
        let mut found: Vec<Position> = Vec::new();
        for (&key, &doc_id) in &index.by_key {
            let doc = &index.docs[doc_id as usize];
            // Rebuild the doc's values as strings from the index's own dictionaries; the
            // flattening itself is checked by the tests above.
            let keywords: Vec<(&str, &str)> = doc
                .keywords
                .iter()
                .map(|e| {
                    let key = &index.postings[e.term as usize].key;
                    (&*index.fields[key.field as usize].name, &*key.text)
                })
                .collect();
            let numbers: Vec<(&str, f64)> = doc
                .numbers
                .iter()
                .map(|e| (&*index.fields[e.field as usize].name, from_ordered_bits(e.value)))
                .collect();
            if open_filter.is_some_and(|open| open != doc.open) {
                continue;
            }
            let mut score = 0.0;
            let (mut must_ok, mut not_ok, mut any_should, mut has_should, mut has_must) =
                (true, true, false, false, false);
            let mut should_score = 0.0;
            for clause in query.clauses() {
                let name = match &clause.field {
                    FieldRef::AnyLabel => "",
                    FieldRef::Open => "open",
                    FieldRef::MaxSize => "max_size",
                    FieldRef::MemberCount => "member_count",
                    FieldRef::Name => "name",
                    FieldRef::Label(name) => name,
                };
                // A bare term (name "") sees every label field; "" also holds the numbers.
                let in_field = |f: &str| f == name || (name.is_empty() && f.starts_with(LABEL_PREFIX));
                let matched = match &clause.value {
                    ValueMatch::Exact { text, number } => {
                        keywords.iter().any(|&(f, t)| in_field(f) && t == &**text)
                            || number.is_some_and(|n| numbers.iter().any(|&(f, v)| in_field(f) && v == n))
                    }
                    ValueMatch::Wildcard(pattern) => keywords.iter().any(|&(f, t)| in_field(f) && pattern.matches(t)),
                    ValueMatch::Range { op, number } => numbers.iter().any(|&(f, v)| {
                        in_field(f)
                            && match op {
                                RangeOp::Greater => v > *number,
                                RangeOp::GreaterOrEqual => v >= *number,
                                RangeOp::Less => v < *number,
                                RangeOp::LessOrEqual => v <= *number,
                            }
                    }),
                };
                match clause.occur {
                    Occur::Must => {
                        has_must = true;
                        must_ok &= matched;
                        score += clause.boost;
                    }
                    Occur::MustNot => not_ok &= !matched,
                    Occur::Should => {
                        has_should = true;
                        if matched {
                            any_should = true;
                            should_score += clause.boost;
                        }
                    }
                }
            }
            let matches = must_ok && not_ok && (has_must || !has_should || any_should);
            if matches {
                found.push(Position { score: score + should_score, key });
            }
        }
        found.sort_by(result_order);
        found.iter().map(|p| p.key).collect()
    }

    fn from_ordered_bits(bits: u64) -> f64 {
        if bits >> 63 == 1 {
            f64::from_bits(bits & !(1 << 63))
        } else {
            f64::from_bits(!bits)
        }
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*: deterministic, good enough to pick workloads.
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    fn random_label(rng: &mut Rng) -> String {
        let mut parts = Vec::new();
        if rng.below(5) > 0 {
            parts.push(format!(r#""mode":"{}""#, rng.pick(&["ranked", "casual", "Ranked", "arena"])));
        }
        if rng.below(3) > 0 {
            parts.push(format!(r#""skill":{}"#, rng.pick(&["1", "2", "2.5", "-3", "10", "0", "7"])));
        }
        if rng.below(2) > 0 {
            let tags: Vec<String> =
                (0..rng.below(4)).map(|_| format!("\"{}\"", rng.pick(&["a", "b", "c", "ranked", "7"]))).collect();
            parts.push(format!(r#""tags":[{}]"#, tags.join(",")));
        }
        if rng.below(4) == 0 {
            parts.push(format!(r#""deep":{{"x":{}}}"#, rng.pick(&["true", "false", "1", "\"eu\""])));
        }
        format!("{{{}}}", parts.join(","))
    }

    fn random_query(rng: &mut Rng) -> String {
        let terms = [
            "label.mode:ranked",
            "label.mode:casual",
            "label.mode:*anked",
            "label.mode:?r*",
            "label.skill:>2",
            "label.skill:<=2",
            "label.skill:2.5",
            "label.skill:>=-3",
            "label.skill:7",
            "label.tags:a",
            "label.tags:7",
            "label.tags:*",
            "label.deep.x:true",
            "label.deep.x:1",
            "ranked",
            "7",
            "e*",
            "open:true",
            "open:false",
            "member_count:<2",
            "max_size:4",
            "member_count:>=1",
            "label.none:x",
        ];
        // Mostly short queries; sometimes long ones with varied boosts, whose many score
        // levels take the enumerate-and-score path.
        let count = if rng.below(6) == 0 { 5 + rng.below(5) } else { rng.below(4) };
        let mut out = Vec::new();
        for _ in 0..count {
            let prefix = rng.pick(&["", "", "+", "-"]);
            let boost = rng.pick(&["", "", "", "^2", "^0.5", "^3", "^0.25"]);
            out.push(format!("{prefix}{}{boost}", rng.pick(&terms)));
        }
        out.join(" ")
    }

    /// Random parties, random updates, random queries: the index (every planner path, every
    /// page size) agrees with the brute-force evaluator, and the invariants hold throughout.
    /// Replay one seed with HUDDLE_SEARCH_SEED=<n>.
    #[test]
    fn differential_against_brute_force() {
        PLANS_TAKEN.with(|counts| counts.set([0; 5]));
        let seeds: Vec<u64> = match std::env::var("HUDDLE_SEARCH_SEED") {
            Ok(seed) => vec![seed.parse().expect("HUDDLE_SEARCH_SEED is a number")],
            Err(_) => (1..=8).collect(),
        };
        for seed in seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut index = SearchIndex::default();
            // Enough parties for the key-order walk to be tried (SCAN_CANDIDATES_MIN).
            let parties = 300 + rng.below(500);
            for step in 0..(parties * 2) {
                let key = u128::from(rng.below(parties)) << 64 | u128::from(rng.below(3));
                match rng.below(10) {
                    0 => {
                        index.remove(key);
                    }
                    1 => {
                        index.set_member_count(key, rng.below(5) as u32);
                    }
                    2 => {
                        index.set_open(key, rng.below(2) == 0);
                    }
                    _ => {
                        let label = random_label(&mut rng);
                        let built_ins = BuiltIns {
                            open: rng.below(2) == 0,
                            max_size: 2 + rng.below(4) as u32,
                            member_count: rng.below(5) as u32,
                            name: "",
                        };
                        // The memory budget's bound: indexing a label never adds more than
                        // its worst case (bitmaps come and go here: see BITS_POSTING_MIN).
                        let prepared = index.prepare_label(&label).unwrap();
                        let (before, worst) = (index.bytes_estimated(), index.label_bytes_worst(&prepared));
                        index.upsert_prepared(key, built_ins, &prepared);
                        assert!(
                            index.bytes_estimated() <= before + worst,
                            "seed {seed}: {label} took more than its worst case"
                        );
                    }
                }
                if step % 97 == 0 {
                    index.check_invariants();
                }
            }
            index.check_invariants();
            for _ in 0..60 {
                let text = random_query(&mut rng);
                let open = [None, Some(true), Some(false)][rng.below(3) as usize];
                let expected = reference_search(&index, &text, open);
                for limit in [1, 10, 100] {
                    let got = keys_with(&index, &text, open, limit);
                    assert_eq!(got, expected, "seed {seed}, query {text:?}, open {open:?}, limit {limit}");
                }
            }
        }
        let plans = PLANS_TAKEN.with(|counts| counts.get());
        // One replayed seed need not reach every plan; the default seed set must.
        let replaying = std::env::var("HUDDLE_SEARCH_SEED").is_ok();
        assert!(replaying || plans.iter().all(|&n| n > 0), "every plan exercised: {plans:?}");
    }
}
