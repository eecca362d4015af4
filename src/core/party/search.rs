//! Party search (SPEC Q-1 … Q-4) seen from the party layer: the index (`core::search`) knows
//! only `u128` keys, [`PreparedLabel`]s and built-in values; this adapter knows parties. It
//! keeps the rule "hidden parties are never indexed" in one place, brings the index in step
//! with each committed change, answers search requests, and keeps each session's search budget
//! (issue 14: a token bucket of cost units, see `core/search/cost.rs`) and the counters of
//! what the budgets and label bounds refused.

use std::cell::Cell;

use super::changes::PartyChange;
use super::table::{Party, PartyTable};
use super::{done, Outcome, PartyReply};
use crate::core::context::Ctx;
use crate::core::search::{
    parse_query, BuiltIns, LabelError, PreparedLabel, SearchBudget, SearchError, SearchIndex, SearchLimits,
};
use crate::core::{CoreError, PartyId, SessionId};
use crate::limits::Limits;

/// A search request's fields (`PartyRequest::Search`).
pub(super) struct SearchParams {
    pub query: String,
    pub open: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// What search and the label bounds did since the server started (`Core::stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Searches run (admitted by the session's budget), refused ones included.
    pub searches_total: u64,
    /// Cost units those searches spent.
    pub search_cost_total: u64,
    /// Searches refused with 234 (`search_query_cost_max`).
    pub search_refused_too_costly_total: u64,
    /// Searches refused with 235 (the session's search budget was spent).
    pub search_refused_budget_total: u64,
    /// Labels refused with 236 (`party_label_values_max`, `party_label_fields_max`, paths).
    pub labels_refused_too_complex_total: u64,
    /// Labels refused with 237 (`search_index_bytes_max`).
    pub labels_refused_index_full_total: u64,
    /// The index's estimate of its own memory, in bytes.
    pub search_index_bytes: u64,
}

/// Every non-hidden party, for search (Q-1); each session's search budget. See the README for
/// the memory a labelled party costs.
pub(super) struct PartySearch {
    index: SearchIndex,
    /// Search budgets by session slot. An entry names its session: one left by a session that
    /// is gone (a later session in the slot has another id) is replaced by a full bucket, so
    /// disconnects need not visit this table, and it never holds more than `connections_max`.
    budgets: Vec<Option<(SessionId, SearchBudget)>>,
    /// Counters (cells: a label is checked through `&self` before anything changes).
    stats: Cell<SearchStats>,
    /// Whether the index being full was logged since a label was last accepted (one warning
    /// per episode, not one per refused label).
    full_logged: Cell<bool>,
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
        PartySearch {
            index: SearchIndex::new(SearchLimits::from(limits)),
            budgets: Vec::new(),
            stats: Cell::new(SearchStats::default()),
            full_logged: Cell::new(false),
        }
    }

    /// Parses, flattens and bounds a label with the index's own rules (see
    /// `core/search/label.rs`; empty = none), before anything changes: the one label check.
    /// Size and syntax are the client's input errors (200); the index's bounds have their own
    /// codes (236, 237).
    pub fn prepare_label(&self, label: &str) -> Result<PreparedLabel, CoreError> {
        let prepared = self.index.prepare_label(label);
        if prepared.as_ref().is_ok_and(|label| label.values() > 0) {
            self.full_logged.set(false);
        }
        prepared.map_err(|error| match error {
            LabelError::TooLarge { bytes, bytes_max } => {
                CoreError::BadInput(format!("label is {bytes} bytes, more than party_label_bytes_max {bytes_max}"))
            }
            LabelError::NotObject => CoreError::BadInput("label must be a JSON object".into()),
            LabelError::NotJson(why) => CoreError::BadInput(format!("label is not valid JSON: {why}")),
            LabelError::TooManyValues { .. } | LabelError::TooManyFields { .. } | LabelError::PathsTooLong { .. } => {
                self.count(|stats| stats.labels_refused_too_complex_total += 1);
                CoreError::LabelTooComplex(error)
            }
            LabelError::IndexFull { bytes_max } => {
                self.count(|stats| stats.labels_refused_index_full_total += 1);
                if !self.full_logged.replace(true) {
                    log::warn!(
                        "search index full ({} estimated bytes, search_index_bytes_max {bytes_max}): labels are \
                         refused until parties end",
                        self.index.bytes_estimated()
                    );
                }
                CoreError::SearchIndexFull { bytes_max }
            }
        })
    }

    fn count(&self, change: impl FnOnce(&mut SearchStats)) {
        let mut stats = self.stats.get();
        change(&mut stats);
        self.stats.set(stats);
    }

    pub fn stats(&self) -> SearchStats {
        SearchStats { search_index_bytes: self.index.bytes_estimated() as u64, ..self.stats.get() }
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

    /// Q-1: one page of the non-hidden parties matching the query, best first. Anyone may
    /// search. Limits are checked in the order a client can fix them: page size, query length,
    /// syntax, then the session's search budget (a refusal costs no search work), then the
    /// cursor, wildcard breadth and the query's cost (which the index reports). The units the
    /// search spent are charged to the session's budget, refused or not.
    pub fn search(&mut self, table: &PartyTable, session: SessionId, params: SearchParams, ctx: &Ctx) -> Outcome {
        let limits = ctx.limits;
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
        let slot = self.budget_slot(session, ctx);
        let budget = self.budget_at(slot);
        if let Err(retry_after_ms) =
            budget.admit(ctx.now.mono, limits.search_budget_cost_per_ms, limits.search_budget_burst_cost)
        {
            self.count(|stats| stats.search_refused_budget_total += 1);
            return Err(CoreError::SearchBudgetExhausted { retry_after_ms });
        }
        // An empty cursor means none, as an empty label means none: clients that always send
        // the field (Nakama's do) need not special-case the first page.
        let cursor = cursor.as_deref().filter(|c| !c.is_empty());
        let (result, cost) = self.index.search_costed(&query, open, limit, cursor);
        self.budget_at(slot).charge(cost);
        self.count(|stats| {
            stats.searches_total += 1;
            stats.search_cost_total += cost;
            if matches!(result, Err(SearchError::TooCostly { .. })) {
                stats.search_refused_too_costly_total += 1;
            }
        });
        let page = result.map_err(|error| match error {
            SearchError::CursorMismatch => CoreError::SearchCursorMismatch,
            SearchError::BadCursor => CoreError::SearchCursorInvalid,
            SearchError::WildcardTooBroad { byte_pos, terms_max } => {
                CoreError::SearchQueryTooBroad { byte_pos, values_max: terms_max }
            }
            SearchError::TooCostly { cost_max } => CoreError::SearchQueryTooCostly { cost_max },
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

    /// The slot of the session's search budget, a full bucket for a session searching for the
    /// first time (or the first time since its slot's last session left).
    fn budget_slot(&mut self, session: SessionId, ctx: &Ctx) -> usize {
        let slot = session.slot() as usize;
        if slot >= self.budgets.len() {
            self.budgets.resize(slot + 1, None);
        }
        let entry = &mut self.budgets[slot];
        if entry.is_none_or(|(owner, _)| owner != session) {
            *entry = Some((session, SearchBudget::new(ctx.limits.search_budget_burst_cost, ctx.now.mono)));
        }
        slot
    }

    fn budget_at(&mut self, slot: usize) -> &mut SearchBudget {
        // Invariant: `budget_slot` filled the slot.
        &mut self.budgets[slot].as_mut().expect("a budget for this slot").1
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

    /// `check_invariants` for one party: indexed exactly when it exists and is not hidden,
    /// with its current built-in values, and its entries where they say they are.
    pub fn check_one(&self, table: &PartyTable, party_id: PartyId) {
        let built_ins = self.index.built_ins(party_id.0);
        match table.get(party_id).filter(|party| !party.hidden) {
            None => assert!(built_ins.is_none(), "party {party_id} is gone or hidden and still indexed"),
            Some(party) => {
                let expected = (party.open, f64::from(party.max_size), party.members.len() as f64);
                assert_eq!(built_ins, Some(expected), "party {party_id}: search index disagrees with the table");
                self.index.check_key(party_id.0);
            }
        }
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

#[cfg(test)]
mod tests {
    use crate::core::{
        Cid, ConnectOptions, Core, CoreError, Identity, Millis, Now, Outbox, Output, PartyReply, PartyRequest, Reply,
        Request, SessionId, UserId, Username,
    };
    use crate::limits::Limits;

    fn connect(core: &mut Core, slot: u32) -> SessionId {
        let session = SessionId::new(slot, 1);
        let identity = Identity { user_id: UserId::new(&format!("u{slot}")), username: Username::new("U") };
        core.connect(session, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut Outbox::new());
        session
    }

    fn request(core: &mut Core, session: SessionId, at_ms: u64, request: PartyRequest) -> Result<Reply, CoreError> {
        let mut out = Outbox::new();
        core.handle_request(session, Cid(1), Request::Party(request), Now::simulated(Millis(at_ms)), &mut out);
        match &out.outputs()[0] {
            Output::Reply { result, .. } => result.clone(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn search(core: &mut Core, session: SessionId, at_ms: u64) -> Result<Reply, CoreError> {
        let query = "label.n:>=0 label.n:>=1".to_owned();
        request(core, session, at_ms, PartyRequest::Search { query, open: None, limit: None, cursor: None })
    }

    /// The session's budget, exactly at its edge: admitted while positive (however little is
    /// left), refused at zero or below with the exact wait at the refill rate, admitted again
    /// once that wait is over; every search is charged what it cost; each session has its own.
    #[test]
    fn a_session_budget_admits_while_positive_and_refuses_with_the_exact_wait() {
        let limits = Limits { search_budget_cost_per_ms: 2, search_budget_burst_cost: 100, ..Limits::default() };
        let (refill, burst) = (limits.search_budget_cost_per_ms as i64, limits.search_budget_burst_cost as i64);
        let mut core = Core::new(limits, [1; 32]);
        let owner = connect(&mut core, 0);
        for n in 0..4 {
            let label = format!(r#"{{"n":{n}}}"#);
            request(
                &mut core,
                owner,
                0,
                PartyRequest::Create { open: true, max_size: 2, label, hidden: false, lobby: Default::default() },
            )
            .unwrap();
        }
        let (me, other) = (connect(&mut core, 1), connect(&mut core, 2));
        let mut level = burst;
        let mut searches = 0;
        while level > 0 {
            let spent_before = core.stats().search.search_cost_total;
            assert!(matches!(search(&mut core, me, 0), Ok(Reply::Party(PartyReply::SearchResult { .. }))));
            let cost = (core.stats().search.search_cost_total - spent_before) as i64;
            assert!(cost > 0, "a search costs something");
            level -= cost;
            searches += 1;
        }
        assert!(searches > 1, "the bucket held several searches");
        // Spent (zero or in debt): refused, at no cost, with the wait until one unit is back.
        let wait = ((1 - level) as u64).div_ceil(refill as u64);
        let stats = core.stats().search;
        assert_eq!(search(&mut core, me, 0), Err(CoreError::SearchBudgetExhausted { retry_after_ms: wait }));
        assert_eq!(search(&mut core, me, wait - 1), Err(CoreError::SearchBudgetExhausted { retry_after_ms: 1 }));
        assert_eq!(core.stats().search.search_cost_total, stats.search_cost_total, "a refusal costs nothing");
        assert_eq!(core.stats().search.search_refused_budget_total, stats.search_refused_budget_total + 2);
        // Another session's budget is untouched; this one is admitted again after the wait.
        assert!(search(&mut core, other, 0).is_ok());
        assert!(search(&mut core, me, wait).is_ok(), "one unit back after {wait} ms");
    }
}
