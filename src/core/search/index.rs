//! The in-memory search index: inverted keyword postings, ordered numeric sets, keyset cursors.
//!
//! Layout: every party is a dense internal doc id (a slot in `docs`, reused after removal).
//! Each field owns a term dictionary (`BTreeMap<term, TermId>`) whose postings are unsorted
//! `Vec<DocId>`s, plus a `BTreeSet<(ordered number, DocId)>` for its numbers. Each doc keeps its
//! own sorted lists of (field, term, position in the posting) and (field, number): removal is
//! `swap_remove` at a known position (O(1), fixing up the one doc that moved), and checking
//! whether a candidate matches a term is a binary search in the candidate's own short lists.
//! Label values are indexed twice: under their field and under the pseudo-field "any label",
//! which answers bare terms without visiting every field.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::mem::size_of;
use std::ops::{Bound, RangeBounds};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::query::{Clause, FieldRef, Occur, Query, RangeOp, ValueMatch, LABEL_PREFIX};
use super::SearchLimits;

type DocId = u32;
type FieldId = u32;
type TermId = u32;

/// Pseudo-field holding every label value once per party: what bare terms search.
const FIELD_ANY_LABEL: FieldId = 0;
const FIELD_OPEN: FieldId = 1;
const FIELD_MAX_SIZE: FieldId = 2;
const FIELD_MEMBER_COUNT: FieldId = 3;
/// Fields below this id exist for the index's whole life; label fields are created on first
/// use and freed when their last value goes, so hostile labels cannot grow the field table.
const FIELDS_BUILTIN: FieldId = 4;
/// Terms of the `open` field, interned at construction and never freed, so `set_open` never
/// touches the dictionary.
const TERM_FALSE: TermId = 0;
const TERM_TRUE: TermId = 1;

/// Below this many candidates, enumerating them all is cheap enough that trying a key-order
/// scan first is not worth it.
const SCAN_CANDIDATES_MIN: usize = 256;

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
            SearchError::WildcardTooBroad {
                byte_pos,
                terms_max,
            } => write!(
                f,
                "wildcard term at byte {byte_pos} matches more than {terms_max} distinct values"
            ),
        }
    }
}

impl std::error::Error for SearchError {}

/// A label the index refused; the index is left untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelError {
    TooLarge { bytes: usize, bytes_max: usize },
    NotJson,
    NotObject,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::TooLarge { bytes, bytes_max } => {
                write!(f, "label of {bytes} bytes exceeds {bytes_max}")
            }
            LabelError::NotJson => write!(f, "label is not valid JSON"),
            LabelError::NotObject => write!(f, "label is not a JSON object"),
        }
    }
}

impl std::error::Error for LabelError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeywordEntry {
    field: FieldId,
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
    /// Sorted by (field, term), no duplicates.
    keywords: Vec<KeywordEntry>,
    /// Sorted by (field, value), no duplicates.
    numbers: Vec<NumberEntry>,
}

#[derive(Debug, Default)]
struct Posting {
    /// Copy of the dictionary key, needed to drop the dictionary entry when the posting empties.
    term: Box<str>,
    /// Unsorted; order is irrelevant because results are ordered by (score, key).
    docs: Vec<DocId>,
}

#[derive(Debug, Default)]
struct Field {
    name: Box<str>,
    terms: BTreeMap<Box<str>, TermId>,
    postings: Vec<Posting>,
    free_terms: Vec<TermId>,
    numbers: BTreeSet<(u64, DocId)>,
    /// Keyword and number entries of all docs in this field; the field is freed at zero.
    entries: usize,
}

/// A label value after flattening.
enum FlatValue {
    Keyword(String),
    Number(u64),
}

/// A query term resolved against the current dictionaries. Matches a doc if either part does.
struct Resolved {
    /// (field, sorted term ids); absent when no term of the dictionary matches.
    keyword: Option<(FieldId, Vec<TermId>)>,
    /// (field, lower, upper) over ordered bits.
    numeric: Option<(FieldId, Bound<u64>, Bound<u64>)>,
    boost: f64,
}

impl Resolved {
    fn matches_nothing(&self) -> bool {
        self.keyword.is_none() && self.numeric.is_none()
    }

    /// Whether enumerating this term can yield a doc twice (several terms, or several numbers
    /// of one doc in range, or a doc matching both as keyword and as number).
    fn may_repeat_docs(&self) -> bool {
        match (&self.keyword, &self.numeric) {
            (Some((_, terms)), None) => terms.len() > 1,
            _ => true,
        }
    }
}

/// A resolved query plus everything the per-candidate check needs.
struct Plan {
    musts: Vec<Resolved>,
    shoulds: Vec<Resolved>,
    must_nots: Vec<Resolved>,
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
enum Source {
    /// Every party (no must- or should-term).
    All,
    /// The must-term at this index (the one with the fewest candidates).
    Must(usize),
    /// The union of all should-terms.
    Shoulds,
}

/// The search index. See the module docs of [`crate::core::search`].
#[derive(Debug)]
pub struct SearchIndex {
    limits: SearchLimits,
    docs: Vec<Doc>,
    free_docs: Vec<DocId>,
    by_key: BTreeMap<u128, DocId>,
    fields: Vec<Field>,
    field_ids: BTreeMap<Box<str>, FieldId>,
    free_fields: Vec<FieldId>,
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
        };
        for name in ["", "open", "max_size", "member_count"] {
            index.fields.push(Field {
                name: name.into(),
                ..Field::default()
            });
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

    /// Inserts a party or replaces everything the index knows about it. A refused label leaves
    /// the index untouched (the party keeps its previous entry, if any).
    pub fn upsert(&mut self, key: u128, party: PartyDoc<'_>) -> Result<(), LabelError> {
        let flat = match party.label {
            None | Some("") => Vec::new(),
            Some(label) => flatten_label(label, self.limits.label_bytes_max)?,
        };
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
                        doc_id
                    }
                };
                self.by_key.insert(key, doc_id);
                doc_id
            }
        };

        let mut keywords: Vec<(FieldId, TermId)> = Vec::with_capacity(1 + 2 * flat.len());
        let mut numbers: Vec<NumberEntry> = Vec::with_capacity(2 + 2 * flat.len());
        keywords.push((FIELD_OPEN, if party.open { TERM_TRUE } else { TERM_FALSE }));
        numbers.push(NumberEntry {
            field: FIELD_MAX_SIZE,
            value: ordered_bits(f64::from(party.max_size)),
        });
        numbers.push(NumberEntry {
            field: FIELD_MEMBER_COUNT,
            value: ordered_bits(f64::from(party.member_count)),
        });
        for (name, value) in &flat {
            let field = self.intern_field(name);
            match value {
                FlatValue::Keyword(text) => {
                    keywords.push((field, self.intern_term(field, text)));
                    keywords.push((FIELD_ANY_LABEL, self.intern_term(FIELD_ANY_LABEL, text)));
                }
                FlatValue::Number(value) => {
                    numbers.push(NumberEntry {
                        field,
                        value: *value,
                    });
                    numbers.push(NumberEntry {
                        field: FIELD_ANY_LABEL,
                        value: *value,
                    });
                }
            }
        }
        keywords.sort_unstable();
        keywords.dedup();
        numbers.sort_unstable();
        numbers.dedup();

        let mut doc_keywords = Vec::with_capacity(keywords.len());
        for (field_id, term) in keywords {
            let field = &mut self.fields[field_id as usize];
            let posting = &mut field.postings[term as usize];
            doc_keywords.push(KeywordEntry {
                field: field_id,
                term,
                posting_pos: posting_pos(posting.docs.len()),
            });
            posting.docs.push(doc_id);
            field.entries += 1;
        }
        for entry in &numbers {
            let field = &mut self.fields[entry.field as usize];
            field.numbers.insert((entry.value, doc_id));
            field.entries += 1;
        }
        // Fields and terms interned above for values that turned out to be duplicates still
        // have entries from this doc (a duplicate implies an identical kept value).
        let doc = &mut self.docs[doc_id as usize];
        doc.key = key;
        doc.open = party.open;
        doc.keywords = doc_keywords;
        doc.numbers = numbers;
        self.debug_check_doc(doc_id);
        Ok(())
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
        let numbers = &mut self.fields[FIELD_MEMBER_COUNT as usize].numbers;
        let removed = numbers.remove(&(old, doc_id));
        debug_assert!(removed, "member_count entry and field set agree");
        numbers.insert((value, doc_id));
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
        // Invariant: every doc has exactly one `open` keyword entry (set by upsert).
        let at = doc
            .keywords
            .iter()
            .position(|entry| entry.field == FIELD_OPEN)
            .expect("every doc has an open entry");
        let entry = doc.keywords[at];
        if entry.term == new_term {
            return true;
        }
        remove_from_posting(&mut self.fields, &mut self.docs, doc_id, entry);
        let posting = &mut self.fields[FIELD_OPEN as usize].postings[new_term as usize];
        let pos = posting_pos(posting.docs.len());
        posting.docs.push(doc_id);
        let entry = &mut self.docs[doc_id as usize].keywords[at];
        entry.term = new_term;
        entry.posting_pos = pos;
        self.debug_check_doc(doc_id);
        true
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

    /// Runs a query. `open_filter` keeps only open (`Some(true)`) or closed (`Some(false)`)
    /// parties; `limit` must be in `1..=page_limit_max`; `cursor` comes from a previous page of
    /// the same query, filter and limit.
    pub fn search(
        &self,
        query: &Query,
        open_filter: Option<bool>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SearchPage, SearchError> {
        if limit == 0 || limit > self.limits.page_limit_max {
            return Err(SearchError::BadLimit {
                limit,
                limit_max: self.limits.page_limit_max,
            });
        }
        let fingerprint = cursor_fingerprint(query, open_filter, limit);
        let after = match cursor {
            None => None,
            Some(text) => Some(decode_cursor(text, &fingerprint)?),
        };
        let empty = SearchPage {
            keys: Vec::new(),
            cursor: None,
        };

        let mut plan = Plan {
            musts: Vec::new(),
            shoulds: Vec::new(),
            must_nots: Vec::new(),
            open_filter,
            must_score: 0.0,
            should_required: false,
        };
        let mut should_written = false;
        for clause in query.clauses() {
            let resolved = self.resolve(clause)?;
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
        if plan.should_required && plan.shoulds.is_empty() {
            return Ok(empty);
        }

        let source = if !plan.musts.is_empty() {
            Source::Must(self.cheapest_must(&plan.musts))
        } else if !plan.shoulds.is_empty() {
            Source::Shoulds
        } else {
            Source::All
        };
        // Every match scores the same when no should-term can vary the sum: then the order is
        // the key order and the walk can stop after `limit + 1` matches.
        let constant_score =
            plan.shoulds.is_empty() || (plan.musts.is_empty() && plan.shoulds.len() == 1);
        let wanted = limit + 1;
        let mut found = if constant_score {
            let score = plan.must_score + plan.shoulds.first().map_or(0.0, |s| s.boost);
            let lower = match after {
                None => Bound::Unbounded,
                Some(after) => match score.total_cmp(&after.score) {
                    // Every match sorts before the cursor: nothing left.
                    Ordering::Greater => return Ok(empty),
                    Ordering::Less => Bound::Unbounded,
                    Ordering::Equal => Bound::Excluded(after.key),
                },
            };
            let scanned = match source {
                Source::All => self.scan_key_order(&plan, lower, wanted, usize::MAX),
                _ => {
                    let candidates = self.source_estimate(&plan, &source);
                    if candidates >= SCAN_CANDIDATES_MIN {
                        // The walk is worth it only if matches are dense; give up after as
                        // many parties as enumerating the candidates would visit, so the
                        // worst case is twice the cost of enumeration.
                        self.scan_key_order(&plan, lower, wanted, candidates)
                    } else {
                        None
                    }
                }
            };
            match scanned {
                Some(found) => found,
                None => self.collect_candidates(&plan, &source, after, wanted),
            }
        } else {
            self.collect_candidates(&plan, &source, after, wanted)
        };

        let cursor = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|last| encode_cursor(&fingerprint, last))
        } else {
            None
        };
        Ok(SearchPage {
            keys: found.iter().map(|position| position.key).collect(),
            cursor,
        })
    }

    /// Approximate heap and inline bytes held by the index (for the memory-per-party figure).
    /// B-tree nodes are counted as 1.5× their entries, a typical fill for random inserts.
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
            for posting in &field.postings {
                // The term text is held twice: dictionary key and posting copy.
                bytes += 2 * posting.term.len() + posting.docs.capacity() * size_of::<DocId>();
            }
            bytes += field.postings.capacity() * size_of::<Posting>();
            bytes += btree(field.terms.len(), size_of::<(Box<str>, TermId)>());
            bytes += field.free_terms.capacity() * size_of::<TermId>();
            bytes += btree(field.numbers.len(), size_of::<(u64, DocId)>());
        }
        for name in self.field_ids.keys() {
            bytes += name.len();
        }
        bytes += btree(self.field_ids.len(), size_of::<(Box<str>, FieldId)>());
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
                keyword_entries[entry.field as usize] += 1;
            }
            for entry in &doc.numbers {
                number_entries[entry.field as usize] += 1;
            }
        }
        for &doc_id in &self.free_docs {
            let doc = &self.docs[doc_id as usize];
            assert!(
                doc.keywords.is_empty() && doc.numbers.is_empty(),
                "free slot is empty"
            );
            assert_ne!(
                self.by_key.get(&doc.key),
                Some(&doc_id),
                "free slot not indexed"
            );
        }
        assert_eq!(self.by_key.len() + self.free_docs.len(), self.docs.len());
        for (field_id, field) in self.fields.iter().enumerate() {
            let postings_len: usize = field.postings.iter().map(|p| p.docs.len()).sum();
            assert_eq!(
                postings_len, keyword_entries[field_id],
                "postings match doc entries"
            );
            assert_eq!(
                field.numbers.len(),
                number_entries[field_id],
                "numbers match entries"
            );
            assert_eq!(field.entries, postings_len + field.numbers.len());
            for (term, &term_id) in &field.terms {
                assert_eq!(&field.postings[term_id as usize].term, term);
            }
            assert_eq!(
                field.terms.len() + field.free_terms.len(),
                field.postings.len(),
                "every term slot is live or free"
            );
            for &(value, doc_id) in &field.numbers {
                let numbers = &self.docs[doc_id as usize].numbers;
                let entry = NumberEntry {
                    field: field_id as FieldId,
                    value,
                };
                assert!(numbers.binary_search(&entry).is_ok(), "number pair");
            }
            let field_id = field_id as FieldId;
            if field_id >= FIELDS_BUILTIN {
                let live = self.field_ids.get(&field.name) == Some(&field_id);
                assert_eq!(
                    live,
                    field.entries > 0,
                    "label fields live while they hold values"
                );
                assert_eq!(live, !self.free_fields.contains(&field_id));
            }
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
        assert!(doc
            .keywords
            .windows(2)
            .all(|w| (w[0].field, w[0].term) < (w[1].field, w[1].term)));
        assert!(doc.numbers.windows(2).all(|w| w[0] < w[1]));
        for entry in &doc.keywords {
            let posting = &self.fields[entry.field as usize].postings[entry.term as usize];
            assert_eq!(
                posting.docs.get(entry.posting_pos as usize),
                Some(&doc_id),
                "keyword pair"
            );
        }
        for entry in &doc.numbers {
            assert!(self.fields[entry.field as usize]
                .numbers
                .contains(&(entry.value, doc_id)));
        }
        let open_terms: Vec<TermId> = doc
            .keywords
            .iter()
            .filter(|e| e.field == FIELD_OPEN)
            .map(|e| e.term)
            .collect();
        assert_eq!(open_terms, [if doc.open { TERM_TRUE } else { TERM_FALSE }]);
        for builtin in [FIELD_MAX_SIZE, FIELD_MEMBER_COUNT] {
            assert_eq!(doc.numbers.iter().filter(|e| e.field == builtin).count(), 1);
        }
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
        self.fields[field_id as usize] = Field {
            name: name.into(),
            ..Field::default()
        };
        self.field_ids.insert(name.into(), field_id);
        field_id
    }

    fn intern_term(&mut self, field_id: FieldId, text: &str) -> TermId {
        let field = &mut self.fields[field_id as usize];
        if let Some(&term_id) = field.terms.get(text) {
            return term_id;
        }
        let posting = Posting {
            term: text.into(),
            docs: Vec::new(),
        };
        let term_id = match field.free_terms.pop() {
            Some(term_id) => {
                field.postings[term_id as usize] = posting;
                term_id
            }
            None => {
                // Invariant: terms hold at least one posting each, so fewer than 2³² exist.
                let term_id = TermId::try_from(field.postings.len()).expect("term ids fit u32");
                field.postings.push(posting);
                term_id
            }
        };
        field.terms.insert(text.into(), term_id);
        term_id
    }

    /// Removes every entry of a doc from the fields, freeing terms and label fields left empty.
    /// The doc keeps its slot and key.
    fn unindex_doc(&mut self, doc_id: DocId) {
        let keywords = std::mem::take(&mut self.docs[doc_id as usize].keywords);
        let numbers = std::mem::take(&mut self.docs[doc_id as usize].numbers);
        for &entry in &keywords {
            remove_from_posting(&mut self.fields, &mut self.docs, doc_id, entry);
            let field = &mut self.fields[entry.field as usize];
            field.entries -= 1;
            let posting = &mut field.postings[entry.term as usize];
            // The `open` terms are permanent; other emptied terms leave the dictionary so
            // wildcard expansion and memory only see live values.
            if posting.docs.is_empty() && entry.field != FIELD_OPEN {
                let term = std::mem::take(&mut posting.term);
                posting.docs = Vec::new();
                field.terms.remove(&term);
                field.free_terms.push(entry.term);
            }
        }
        for entry in &numbers {
            let field = &mut self.fields[entry.field as usize];
            let removed = field.numbers.remove(&(entry.value, doc_id));
            debug_assert!(removed, "number entry and field set agree");
            field.entries -= 1;
        }
        let touched = keywords
            .iter()
            .map(|e| e.field)
            .chain(numbers.iter().map(|e| e.field));
        for field_id in touched {
            let field = &mut self.fields[field_id as usize];
            if field_id >= FIELDS_BUILTIN && field.entries == 0 && !field.name.is_empty() {
                self.field_ids.remove(&field.name);
                *field = Field::default();
                self.free_fields.push(field_id);
            }
        }
    }

    fn field_of(&self, field: &FieldRef) -> Option<FieldId> {
        match field {
            FieldRef::AnyLabel => Some(FIELD_ANY_LABEL),
            FieldRef::Open => Some(FIELD_OPEN),
            FieldRef::MaxSize => Some(FIELD_MAX_SIZE),
            FieldRef::MemberCount => Some(FIELD_MEMBER_COUNT),
            FieldRef::Label(name) => {
                debug_assert!(name.starts_with(LABEL_PREFIX));
                self.field_ids.get(&**name).copied()
            }
        }
    }

    fn resolve(&self, clause: &Clause) -> Result<Resolved, SearchError> {
        let mut resolved = Resolved {
            keyword: None,
            numeric: None,
            boost: clause.boost,
        };
        let Some(field_id) = self.field_of(&clause.field) else {
            return Ok(resolved);
        };
        let field = &self.fields[field_id as usize];
        match &clause.value {
            ValueMatch::Exact { text, number } => {
                if let Some(&term_id) = field.terms.get(&**text) {
                    resolved.keyword = Some((field_id, vec![term_id]));
                }
                if let Some(number) = number {
                    let bits = ordered_bits(*number);
                    resolved.numeric =
                        Some((field_id, Bound::Included(bits), Bound::Included(bits)));
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
                let mut term_ids = Vec::new();
                let candidates = field
                    .terms
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(term, _)| term.starts_with(prefix.as_str()));
                for (scanned, (term, &term_id)) in candidates.enumerate() {
                    if scanned >= self.limits.wildcard_scan_max {
                        return Err(too_broad);
                    }
                    if pattern.matches(term) {
                        if term_ids.len() == self.limits.wildcard_expansion_max {
                            return Err(too_broad);
                        }
                        term_ids.push(term_id);
                    }
                }
                if !term_ids.is_empty() {
                    term_ids.sort_unstable();
                    resolved.keyword = Some((field_id, term_ids));
                }
            }
        }
        // A numeric part on a field without numbers can never match; dropping it lets a must
        // term short-circuit and keeps candidate enumeration to the keyword postings.
        if let Some((field_id, ..)) = resolved.numeric {
            if self.fields[field_id as usize].numbers.is_empty() {
                resolved.numeric = None;
            }
        }
        Ok(resolved)
    }

    /// The must-term with the fewest candidates. Numeric ranges have no cheap count, so they are
    /// counted only up to the best count so far.
    fn cheapest_must(&self, musts: &[Resolved]) -> usize {
        let mut best = (0, usize::MAX);
        for (index, resolved) in musts.iter().enumerate() {
            let count = self.estimate(resolved, best.1);
            if count < best.1 {
                best = (index, count);
            }
        }
        best.0
    }

    /// Candidate count of a term, exact for keywords, counted up to `budget` for ranges.
    fn estimate(&self, resolved: &Resolved, budget: usize) -> usize {
        let mut count = 0usize;
        if let Some((field_id, terms)) = &resolved.keyword {
            let postings = &self.fields[*field_id as usize].postings;
            count += terms
                .iter()
                .map(|&t| postings[t as usize].docs.len())
                .sum::<usize>();
        }
        if let Some((field_id, lower, upper)) = resolved.numeric {
            let numbers = &self.fields[field_id as usize].numbers;
            let budget = budget.saturating_sub(count);
            count += number_range(numbers, lower, upper).take(budget).count();
        }
        count
    }

    fn source_estimate(&self, plan: &Plan, source: &Source) -> usize {
        match source {
            Source::All => self.len(),
            Source::Must(index) => self.estimate(&plan.musts[*index], usize::MAX),
            Source::Shoulds => plan
                .shoulds
                .iter()
                .map(|s| self.estimate(s, usize::MAX))
                .fold(0usize, usize::saturating_add),
        }
    }

    /// Calls `visit` once per candidate doc of the source (deduplicated).
    fn for_each_candidate(&self, plan: &Plan, source: &Source, mut visit: impl FnMut(DocId)) {
        match source {
            Source::All => {
                for &doc_id in self.by_key.values() {
                    visit(doc_id);
                }
            }
            Source::Must(index) if !plan.musts[*index].may_repeat_docs() => {
                self.for_each_posting_doc(&plan.musts[*index], &mut visit);
            }
            Source::Must(index) => {
                let mut seen = DocSet::new(self.docs.len());
                self.for_each_posting_doc(&plan.musts[*index], &mut |doc_id| {
                    if seen.insert(doc_id) {
                        visit(doc_id);
                    }
                });
            }
            Source::Shoulds => {
                let mut seen = DocSet::new(self.docs.len());
                for should in &plan.shoulds {
                    self.for_each_posting_doc(should, &mut |doc_id| {
                        if seen.insert(doc_id) {
                            visit(doc_id);
                        }
                    });
                }
            }
        }
    }

    /// Every doc of a term's postings and number range, possibly repeated.
    fn for_each_posting_doc(&self, resolved: &Resolved, visit: &mut dyn FnMut(DocId)) {
        if let Some((field_id, terms)) = &resolved.keyword {
            let postings = &self.fields[*field_id as usize].postings;
            for &term in terms {
                for &doc_id in &postings[term as usize].docs {
                    visit(doc_id);
                }
            }
        }
        if let Some((field_id, lower, upper)) = resolved.numeric {
            let numbers = &self.fields[field_id as usize].numbers;
            for &(_, doc_id) in number_range(numbers, lower, upper) {
                visit(doc_id);
            }
        }
    }

    /// Enumerates all candidates, keeps those after the cursor, returns the best `wanted` in
    /// result order.
    fn collect_candidates(
        &self,
        plan: &Plan,
        source: &Source,
        after: Option<Position>,
        wanted: usize,
    ) -> Vec<Position> {
        let skip_must = match source {
            Source::Must(index) => Some(*index),
            _ => None,
        };
        let mut found = Vec::new();
        self.for_each_candidate(plan, source, |doc_id| {
            let doc = &self.docs[doc_id as usize];
            if let Some(score) = self.score(plan, doc, skip_must) {
                let position = Position {
                    score,
                    key: doc.key,
                };
                let is_after =
                    after.is_none_or(|after| result_order(&position, &after) == Ordering::Greater);
                if is_after {
                    found.push(position);
                }
            }
        });
        if found.len() > wanted {
            found.select_nth_unstable_by(wanted - 1, result_order);
            found.truncate(wanted);
        }
        found.sort_unstable_by(result_order);
        found
    }

    /// Walks parties in key order from `lower`, stopping at `wanted` matches. Only valid when
    /// every match has the same score. Returns None after `budget` parties without finishing.
    fn scan_key_order(
        &self,
        plan: &Plan,
        lower: Bound<u128>,
        wanted: usize,
        budget: usize,
    ) -> Option<Vec<Position>> {
        let mut found = Vec::with_capacity(wanted);
        for (visited, (_, &doc_id)) in self.by_key.range((lower, Bound::Unbounded)).enumerate() {
            if visited >= budget {
                return None;
            }
            let doc = &self.docs[doc_id as usize];
            if let Some(score) = self.score(plan, doc, None) {
                found.push(Position {
                    score,
                    key: doc.key,
                });
                if found.len() == wanted {
                    break;
                }
            }
        }
        Some(found)
    }

    /// The doc's score if it matches the plan. `skip_must` names a must-term already known to
    /// match (the candidate source).
    fn score(&self, plan: &Plan, doc: &Doc, skip_must: Option<usize>) -> Option<f64> {
        if plan.open_filter.is_some_and(|open| open != doc.open) {
            return None;
        }
        for (index, must) in plan.musts.iter().enumerate() {
            if skip_must != Some(index) && !doc_matches(must, doc) {
                return None;
            }
        }
        if plan.must_nots.iter().any(|not| doc_matches(not, doc)) {
            return None;
        }
        let mut score = plan.must_score;
        let mut should_matched = false;
        for should in &plan.shoulds {
            if doc_matches(should, doc) {
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

/// Whether a doc holds a value matching the resolved term: binary searches in its sorted lists.
fn doc_matches(resolved: &Resolved, doc: &Doc) -> bool {
    if let Some((field_id, terms)) = &resolved.keyword {
        if let [term] = terms.as_slice() {
            let found = doc
                .keywords
                .binary_search_by(|e| (e.field, e.term).cmp(&(*field_id, *term)))
                .is_ok();
            if found {
                return true;
            }
        } else {
            let start = doc.keywords.partition_point(|e| e.field < *field_id);
            let in_field = doc.keywords[start..]
                .iter()
                .take_while(|e| e.field == *field_id);
            for entry in in_field {
                if terms.binary_search(&entry.term).is_ok() {
                    return true;
                }
            }
        }
    }
    if let Some((field_id, lower, upper)) = resolved.numeric {
        let start = doc.numbers.partition_point(|e| e.field < field_id);
        let in_field = doc.numbers[start..]
            .iter()
            .take_while(|e| e.field == field_id);
        for entry in in_field {
            if (lower, upper).contains(&entry.value) {
                return true;
            }
        }
    }
    false
}

/// Removes a doc's keyword entry from its posting list, fixing the position of the doc that
/// `swap_remove` moved into its place.
fn remove_from_posting(fields: &mut [Field], docs: &mut [Doc], doc_id: DocId, entry: KeywordEntry) {
    let posting = &mut fields[entry.field as usize].postings[entry.term as usize];
    let pos = entry.posting_pos as usize;
    debug_assert_eq!(posting.docs.get(pos), Some(&doc_id), "keyword pair");
    posting.docs.swap_remove(pos);
    if let Some(&moved) = posting.docs.get(pos) {
        let moved_keywords = &mut docs[moved as usize].keywords;
        // Invariant: the moved doc is in this posting, so it holds the entry.
        let at = moved_keywords
            .binary_search_by(|e| (e.field, e.term).cmp(&(entry.field, entry.term)))
            .expect("a doc in a posting holds its entry");
        moved_keywords[at].posting_pos = entry.posting_pos;
    }
}

fn posting_pos(len: usize) -> u32 {
    // Invariant: a posting holds at most one entry per doc, and doc ids fit u32.
    u32::try_from(len).expect("posting positions fit u32")
}

/// The numbers of a field within bounds, as (value, doc) pairs.
fn number_range(
    numbers: &BTreeSet<(u64, DocId)>,
    lower: Bound<u64>,
    upper: Bound<u64>,
) -> impl Iterator<Item = &(u64, DocId)> {
    let start = match lower {
        Bound::Included(v) => Bound::Included((v, DocId::MIN)),
        Bound::Excluded(v) => Bound::Excluded((v, DocId::MAX)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let end = match upper {
        Bound::Included(v) => Bound::Included((v, DocId::MAX)),
        Bound::Excluded(v) => Bound::Excluded((v, DocId::MIN)),
        Bound::Unbounded => Bound::Unbounded,
    };
    // `BTreeSet::range` panics on an inverted or empty-excluded range; such a range is empty.
    let valid = match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e) | Bound::Included(e)) => s < e,
        _ => true,
    };
    valid
        .then(|| numbers.range((start, end)))
        .into_iter()
        .flatten()
}

/// A bitset over doc ids for deduplicating candidates.
struct DocSet {
    words: Vec<u64>,
}

impl DocSet {
    fn new(doc_slots: usize) -> DocSet {
        DocSet {
            words: vec![0; doc_slots.div_ceil(64)],
        }
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
fn ordered_bits(number: f64) -> u64 {
    let number = if number == 0.0 { 0.0 } else { number };
    let bits = number.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Flattens a label into (field name, value) pairs. Validates everything before the caller
/// mutates anything.
fn flatten_label(
    label: &str,
    label_bytes_max: usize,
) -> Result<Vec<(String, FlatValue)>, LabelError> {
    if label.len() > label_bytes_max {
        return Err(LabelError::TooLarge {
            bytes: label.len(),
            bytes_max: label_bytes_max,
        });
    }
    // serde_json bounds nesting (128 levels), so the recursion below is bounded too.
    let value: serde_json::Value = serde_json::from_str(label).map_err(|_| LabelError::NotJson)?;
    if !value.is_object() {
        return Err(LabelError::NotObject);
    }
    let mut flat = Vec::new();
    let mut path = String::from(LABEL_PREFIX.trim_end_matches('.'));
    flatten_value(&mut path, &value, &mut flat);
    Ok(flat)
}

fn flatten_value(
    path: &mut String,
    value: &serde_json::Value,
    flat: &mut Vec<(String, FlatValue)>,
) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Bool(b) => flat.push((path.clone(), FlatValue::Keyword(b.to_string()))),
        Value::Number(n) => {
            // Without serde_json's arbitrary precision every number converts; skip defensively.
            if let Some(number) = n.as_f64().filter(|n| n.is_finite()) {
                flat.push((path.clone(), FlatValue::Number(ordered_bits(number))));
            }
        }
        Value::String(s) => flat.push((path.clone(), FlatValue::Keyword(s.clone()))),
        Value::Array(items) => {
            for item in items {
                flatten_value(path, item, flat);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                flatten_value(path, item, flat);
                path.truncate(len);
            }
        }
    }
}

fn cursor_fingerprint(
    query: &Query,
    open_filter: Option<bool>,
    limit: usize,
) -> [u8; CURSOR_FINGERPRINT_BYTES] {
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

fn decode_cursor(
    text: &str,
    fingerprint: &[u8; CURSOR_FINGERPRINT_BYTES],
) -> Result<Position, SearchError> {
    if text.len() != CURSOR_CHARS {
        return Err(SearchError::BadCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| SearchError::BadCursor)?;
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
    Ok(Position {
        score,
        key: u128::from_be_bytes(key),
    })
}
