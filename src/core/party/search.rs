//! Party search (SPEC Q-1 … Q-4) seen from the party layer: the index (`core::search`) knows
//! only `u128` keys, [`PreparedLabel`]s and built-in values; this adapter knows parties. It
//! keeps the rule "hidden parties are never indexed" in one place, brings the index in step
//! with each committed change, and answers search requests.

use super::changes::PartyChange;
use super::table::{Party, PartyTable};
use super::{done, Outcome, PartyReply};
use crate::core::search::{parse_query, BuiltIns, LabelError, PreparedLabel, SearchError, SearchIndex, SearchLimits};
use crate::core::{CoreError, PartyId};
use crate::limits::Limits;

/// A search request's fields (`PartyRequest::Search`).
pub(super) struct SearchParams {
    pub query: String,
    pub open: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Every non-hidden party, for search. About 1 KiB per labelled party (see the README).
pub(super) struct PartySearch {
    index: SearchIndex,
}

fn built_ins(party: &Party) -> BuiltIns<'_> {
    BuiltIns {
        open: party.open,
        max_size: u32::from(party.max_size),
        member_count: party.members.len() as u32,
        name: &party.lobby.name,
    }
}

impl PartySearch {
    pub fn new(limits: &Limits) -> PartySearch {
        PartySearch { index: SearchIndex::new(SearchLimits::from(limits)) }
    }

    /// Parses and flattens a label with the index's own rules (a JSON object within
    /// `party_label_bytes_max`; empty = none), before anything changes: the one label check.
    pub fn prepare_label(&self, label: &str) -> Result<PreparedLabel, LabelError> {
        self.index.prepare_label(label)
    }

    /// Brings the index in step with one committed change (see `changes.rs`). Every update
    /// here is infallible: labels were prepared before the rule changed anything.
    pub fn apply(&mut self, table: &PartyTable, change: PartyChange) {
        let visible = |party_id: PartyId| table.get(party_id).filter(|party| !party.hidden);
        match change {
            PartyChange::Created { party_id, label } => {
                if let Some(party) = visible(party_id) {
                    self.index.upsert_prepared(party_id.0, built_ins(party), &label);
                }
            }
            PartyChange::Joined { party_id, .. } | PartyChange::Left { party_id, .. } => {
                if let Some(party) = visible(party_id) {
                    let indexed = self.index.set_member_count(party_id.0, party.members.len() as u32);
                    debug_assert!(indexed, "non-hidden party {party_id} is indexed");
                }
            }
            PartyChange::Settings { party_id, label } => match (visible(party_id), label) {
                // Hidden now (or gone): out of the index, whatever it was.
                (None, _) => {
                    self.index.remove(party_id.0);
                }
                (Some(party), Some(label)) => self.index.upsert_prepared(party_id.0, built_ins(party), &label),
                // Only the open flag and the name (L-7) may have changed: no need to re-flatten
                // the label.
                (Some(party), None) => {
                    let indexed = self.index.set_open(party_id.0, party.open);
                    debug_assert!(indexed, "non-hidden party {party_id} is indexed");
                    self.index.set_name(party_id.0, &party.lobby.name);
                }
            },
            PartyChange::Dissolved { party_id, .. } => {
                self.index.remove(party_id.0);
            }
            // Custom data and attributes are not searchable.
            PartyChange::Leader { .. } | PartyChange::CustomData { .. } | PartyChange::Attributes { .. } => {}
        }
    }

    /// one page of the non-hidden parties matching the query, best first. Anyone may
    /// search. Limits are checked in the order a client can fix them: page size, query length,
    /// syntax, then the cursor and wildcard breadth (which the index reports).
    pub fn search(&self, table: &PartyTable, params: SearchParams, limits: &Limits) -> Outcome {
        let SearchParams { query, open, limit, cursor } = params;
        let limit = limit.map_or(limits.search_page_limit_default, |l| l as usize);
        if limit == 0 || limit > limits.search_page_limit_max {
            return Err(CoreError::BadInput(format!(
                "limit must be 1..={} (search_page_limit_max), got {limit}",
                limits.search_page_limit_max
            )));
        }
        if query.len() > limits.search_query_bytes_max {
            return Err(CoreError::LimitExceeded(format!(
                "search query of {} bytes is over search_query_bytes_max {}",
                query.len(),
                limits.search_query_bytes_max
            )));
        }
        let query = parse_query(&query, self.index.limits()).map_err(CoreError::SearchQueryInvalid)?;
        // An empty cursor means none, as an empty label means none: clients that always send
        // the field (Nakama's do) need not special-case the first page.
        let cursor = cursor.as_deref().filter(|c| !c.is_empty());
        let page = self.index.search(&query, open, limit, cursor).map_err(|error| match error {
            SearchError::CursorMismatch => CoreError::SearchCursorMismatch,
            SearchError::BadCursor => CoreError::SearchCursorInvalid,
            SearchError::WildcardTooBroad { byte_pos, terms_max } => {
                CoreError::SearchQueryTooBroad { byte_pos, values_max: terms_max }
            }
            // Checked above against the same limit; kept total rather than unreachable.
            SearchError::BadLimit { limit, limit_max } => {
                CoreError::BadInput(format!("limit must be 1..={limit_max}, got {limit}"))
            }
        })?;
        // Invariant: the index holds exactly the live non-hidden parties (check_invariants).
        let parties =
            page.keys.into_iter().map(|key| table.get(PartyId(key)).expect("indexed party exists").listing()).collect();
        done(PartyReply::SearchResult { parties, cursor: page.cursor })
    }

    /// Q-3 as an invariant: the index holds every non-hidden party with its current open flag,
    /// max_size and member count, and nothing else.
    pub fn check_invariants(&self, table: &PartyTable) {
        let mut visible = 0;
        for party in table.parties() {
            let built_ins = self.index.built_ins(party.id.0);
            if party.hidden {
                assert!(built_ins.is_none(), "hidden party {} is in the search index", party.id);
                continue;
            }
            visible += 1;
            let expected = (party.open, f64::from(party.max_size), party.members.len() as f64);
            assert_eq!(built_ins, Some(expected), "party {}: search index disagrees with the table", party.id);
            let name = self.index.name(party.id.0);
            assert_eq!(name, Some(party.lobby.name.as_str()), "party {}: the index has another name", party.id);
        }
        assert_eq!(self.index.len(), visible, "the search index holds a party that is gone");
        self.index.check_invariants();
    }

    pub fn digest(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        self.index.len().hash(hasher);
    }

    /// Test hook: gives the first indexed party (in id order) a wrong member count in the
    /// index, so the canary can prove that `check_invariants` notices. Returns whether there
    /// was a party to corrupt.
    pub fn corrupt_for_test(&mut self, table: &PartyTable) -> bool {
        for id in table.ids() {
            let party = table.get(id).expect("listed party exists");
            if !party.hidden {
                let wrong = party.members.len() as u32 + 1;
                return self.index.set_member_count(id.0, wrong);
            }
        }
        false
    }
}
