//! The party half of the simulation's grammar and checks: every party request, party data
//! with and without a cid, and searches checked against a brute-force evaluation over the
//! party table. See the module docs of `sim` for the list of checks.

use super::Sim;
use crate::core::search::query::{FieldRef, Occur, RangeOp, ValueMatch};
use crate::core::search::{parse_query, Query, SearchLimits};
use crate::core::{
    Core, CoreError, Event, Output, PartyEvent, PartyId, PartyListing, PartyReply, PartyRequest, PartySnapshot,
    Presence, RemovedReason, Reply, Request, SessionId, Username,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Range;

/// The party requests of the grammar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum PartyOp {
    Create,
    Join,
    JoinRequests,
    Accept,
    Remove,
    Leave,
    Promote,
    Close,
    Data,
    /// Party data with cid 0 (SPEC P-9, fire and forget).
    DataWithoutCid,
    Update,
    Get,
    MyParties,
}

/// Label values the simulation writes and queries: few, so terms hit.
const WORDS: [&str; 5] = ["a", "b", "ab", "ba", "a b"];
const NUMBERS: [&str; 6] = ["-1", "0", "1", "2", "2.5", "10"];

/// Who is in which party, as the core reports it; taken before and after each step.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct View {
    members: BTreeMap<PartyId, Vec<SessionId>>,
    pending: BTreeMap<PartyId, Vec<SessionId>>,
}

impl View {
    pub(super) fn of(core: &Core) -> View {
        let mut view = View::default();
        for id in core.debug_party_ids() {
            let party = core.debug_party(id).expect("listed party exists");
            view.members.insert(id, party.members.iter().map(|m| m.session_id).collect());
            let pending = core.debug_party_pending(id).expect("listed party exists");
            view.pending.insert(id, pending.iter().map(|p| p.session_id).collect());
        }
        view
    }

    /// The view of only `parties` (those that exist): enough to check a request naming one
    /// party, at the cost of that party alone.
    pub(super) fn of_parties(core: &Core, parties: &[PartyId]) -> View {
        let mut view = View::default();
        for &id in parties {
            let (Some(party), Some(pending)) = (core.debug_party(id), core.debug_party_pending(id)) else {
                continue;
            };
            view.members.insert(id, party.members.iter().map(|m| m.session_id).collect());
            view.pending.insert(id, pending.iter().map(|p| p.session_id).collect());
        }
        view
    }

    /// The parties `session` is a member or requester of.
    pub(super) fn parties_of(&self, session: SessionId) -> Vec<PartyId> {
        let mut parties: Vec<PartyId> = self
            .members
            .iter()
            .chain(&self.pending)
            .filter(|(_, sessions)| sessions.contains(&session))
            .map(|(id, _)| *id)
            .collect();
        parties.dedup();
        parties
    }

    pub(super) fn is_member(&self, party: PartyId, session: SessionId) -> bool {
        self.members.get(&party).is_some_and(|m| m.contains(&session))
    }

    /// The party's member sessions in join order (none when it does not exist).
    pub(super) fn members_of(&self, party: PartyId) -> &[SessionId] {
        self.members.get(&party).map_or(&[], Vec::as_slice)
    }

    /// The party's pending requesters, oldest first.
    pub(super) fn pending_of(&self, party: PartyId) -> &[SessionId] {
        self.pending.get(&party).map_or(&[], Vec::as_slice)
    }

    pub(super) fn is_pending(&self, party: PartyId, session: SessionId) -> bool {
        self.pending.get(&party).is_some_and(|p| p.contains(&session))
    }

    /// A party the session is a member of (with one party per user, its only one).
    pub(super) fn first_party_of(&self, session: SessionId) -> Option<PartyId> {
        self.members.iter().find(|(_, m)| m.contains(&session)).map(|(id, _)| *id)
    }

    /// How many parties the session is in or has asked to join (`parties_per_session_max`).
    pub(super) fn count_of(&self, session: SessionId) -> usize {
        self.members.values().chain(self.pending.values()).filter(|s| s.contains(&session)).count()
    }

    pub(super) fn in_any(&self, session: SessionId) -> bool {
        self.members.values().chain(self.pending.values()).any(|s| s.contains(&session))
    }
}

impl Sim {
    pub(super) fn party_op(&mut self, op: PartyOp) {
        let party_id = self.pick_party();
        let me = self.pick_actor(op, party_id);
        let request = match op {
            PartyOp::Create => PartyRequest::Create {
                open: self.rng.chance(50),
                max_size: if self.rng.chance(10) {
                    [0, self.limits.party_members_max + 1][self.rng.below(2)] as u32
                } else {
                    self.rng.range(1, self.limits.party_members_max) as u32
                },
                label: self.label(),
                hidden: self.rng.chance(15),
                lobby: self.lobby_settings(),
            },
            PartyOp::Join => PartyRequest::Join { party_id },
            PartyOp::JoinRequests => PartyRequest::JoinRequests { party_id },
            PartyOp::Accept => PartyRequest::Accept { party_id, presence: self.pick_named(party_id, true) },
            PartyOp::Remove => {
                let pending = self.rng.chance(50);
                PartyRequest::Remove { party_id, presence: self.pick_named(party_id, pending) }
            }
            PartyOp::Leave => PartyRequest::Leave { party_id },
            PartyOp::Promote => PartyRequest::Promote { party_id, presence: self.pick_named(party_id, false) },
            PartyOp::Close => PartyRequest::Close { party_id },
            PartyOp::Data | PartyOp::DataWithoutCid => {
                let len = self.rng.below(self.limits.party_data_bytes_max + 4);
                let data = Bytes::from(vec![self.next_cid as u8; len]);
                let request = PartyRequest::Data { party_id, op_code: self.rng.next_u64() as i64, data };
                if op == PartyOp::DataWithoutCid {
                    return self.data_without_cid(me, request);
                }
                request
            }
            PartyOp::Update => PartyRequest::Update {
                party_id,
                open: self.rng.chance(50).then(|| self.rng.chance(50)),
                hidden: self.rng.chance(30).then(|| self.rng.chance(50)),
                label: self.rng.chance(40).then(|| self.label()),
                lobby: self.lobby_patch(),
            },
            PartyOp::Get => PartyRequest::Get { party_id },
            PartyOp::MyParties => PartyRequest::MyParties,
        };
        self.party_request(me, request);
    }

    /// One party request with a cid: one reply first; a refusal changes nothing and causes no
    /// event; a success changes no status; party data reaches every other member once.
    fn party_request(&mut self, me: Presence, request: PartyRequest) {
        self.stats.requests += 1;
        // A party request changes at most the party it names (or the one it creates) and the
        // requester's links: between full steps only those are viewed and digested.
        let named = party_of(&request);
        let before = if self.full_step { View::of(&self.core) } else { View::of_parties(&self.core, &named) };
        let digests = self.digests();
        let touched_digest = named.first().map(|&id| (id, self.core.debug_party_digest_touched(id, me.session_id)));
        let index_bytes = self.core.stats().search.search_index_bytes;
        let named_party = match &request {
            PartyRequest::Join { party_id }
            | PartyRequest::Accept { party_id, .. }
            | PartyRequest::Update { party_id, .. } => self.core.debug_party(*party_id),
            _ => None,
        };
        // Lobby II's join checks ask whether a user is in any party (one party per user): they
        // need every party, not only the named one.
        let whole_before = (!self.full_step
            && self.limits.one_party_per_user
            && matches!(request, PartyRequest::Join { .. } | PartyRequest::Accept { .. }))
        .then(|| View::of(&self.core));
        let cid = self.next_cid();
        self.core.handle_request(me.session_id, cid, Request::Party(request.clone()), self.now(), &mut self.out);
        self.check_recipients_connected();
        let result = self.reply_first(me.session_id, cid, &request);
        let created = match (&request, &result) {
            (PartyRequest::Create { .. }, Ok(Reply::Party(PartyReply::Info(snapshot)))) => Some(snapshot.party_id),
            _ => None,
        };
        self.touched.extend(named.iter().chain(&created));
        let after = if self.full_step {
            View::of(&self.core)
        } else {
            View::of_parties(&self.core, &[named.as_slice(), created.as_slice()].concat())
        };
        if let Some((_, status_digest)) = digests {
            assert_eq!(self.core.debug_status_digest(), status_digest, "{request:?} changed a status");
        }
        self.check_label_bounds(&request, &result, index_bytes);
        let lobby_before = whole_before.as_ref().unwrap_or(&before);
        self.check_lobby2_party_request(&me, &request, named_party.as_ref(), lobby_before, &result);
        match &result {
            // L-1: the one refusal that changes a table: a stale join request is dropped.
            Err(CoreError::PartyAlreadyInParty) if matches!(request, PartyRequest::Accept { .. }) => {
                let PartyRequest::Accept { party_id, presence } = &request else { unreachable!("matched") };
                assert!(self.limits.one_party_per_user, "240 without one party per user");
                assert!(before.is_pending(*party_id, presence.session_id), "a stale request was pending");
                assert!(!after.is_pending(*party_id, presence.session_id), "and is dropped");
                let in_a_party = self.core.debug_party_ids().into_iter().filter_map(|id| self.core.debug_party(id));
                let in_a_party =
                    in_a_party.into_iter().any(|p| p.members.iter().any(|m| m.user_id == presence.user_id));
                assert!(in_a_party, "its user is in a party");
                assert_eq!(self.out.outputs().len(), 1, "refused {request:?} caused events");
                self.stats.refusal(&CoreError::PartyAlreadyInParty);
            }
            Err(error) => {
                self.stats.refusal(error);
                if let Some((party_digest, _)) = digests {
                    assert_eq!(self.core.debug_party_digest(), party_digest, "refused {request:?} changed the tables");
                }
                if let Some((id, digest)) = touched_digest {
                    let now = self.core.debug_party_digest_touched(id, me.session_id);
                    assert_eq!(now, digest, "refused {request:?} changed its party or the requester's links");
                }
                assert_eq!(self.out.outputs().len(), 1, "refused {request:?} caused events");
            }
            Ok(Reply::Party(PartyReply::Info(snapshot))) => {
                assert_eq!(Some(&**snapshot), self.core.debug_party(snapshot.party_id).as_ref(), "snapshot is current");
                assert!(snapshot.members.contains(&me), "the requester is in the party it got");
                if matches!(request, PartyRequest::Create { .. }) {
                    assert!(!self.known_parties.contains(&snapshot.party_id), "party ids are fresh");
                    self.known_parties.push(snapshot.party_id);
                }
            }
            Ok(_) => {}
        }
        if let (PartyRequest::Data { party_id, .. }, Ok(_)) = (&request, &result) {
            self.check_data_delivery(1, &me, *party_id, &before);
        }
        let promote = matches!(request, PartyRequest::Promote { .. });
        let outputs = 1..self.out.outputs().len();
        self.check_party_events(outputs, Some(&me), promote, &before, &after);
        self.out.clear();
    }

    /// P-9 without a cid: no reply; on success exactly the data event, on refusal one
    /// `PartyDataRefused` to the sender naming the party, and nothing changed.
    fn data_without_cid(&mut self, me: Presence, request: PartyRequest) {
        let PartyRequest::Data { party_id, .. } = request else { unreachable!("called with party data") };
        self.stats.requests += 1;
        self.stats.data_without_cid += 1;
        let before = if self.full_step { View::of(&self.core) } else { View::of_parties(&self.core, &[party_id]) };
        let digests = self.digests();
        let touched_digest = self.core.debug_party_digest_touched(party_id, me.session_id);
        self.core.handle_request(
            me.session_id,
            crate::core::Cid::NONE,
            Request::Party(request),
            self.now(),
            &mut self.out,
        );
        self.check_recipients_connected();
        assert_eq!(self.out.reply_count(), 0, "fire-and-forget data gets no reply: {:?}", self.out.outputs());
        assert_eq!(self.digests(), digests, "party data changed a table");
        let now = self.core.debug_party_digest_touched(party_id, me.session_id);
        assert_eq!(now, touched_digest, "party data changed its party");
        match self.out.outputs() {
            [Output::Event { recipients, event: Event::PartyDataRefused { party_id: refused, error } }] => {
                assert_eq!(self.out.recipients(recipients.clone()), [me.session_id], "the refusal goes to the sender");
                assert_eq!(*refused, party_id, "the refusal names the party");
                let error = error.clone();
                self.stats.data_without_cid_refused += 1;
                self.stats.refusal(&error);
            }
            _ => {
                assert!(before.is_member(party_id, me.session_id), "data accepted from a non-member");
                self.check_data_delivery(0, &me, party_id, &before);
                let outputs = 0..self.out.outputs().len();
                self.check_party_events(outputs, Some(&me), false, &before, &before);
            }
        }
        self.out.clear();
    }

    /// Accepted party data: the output at `at` (and nothing after it) is one data event from
    /// `me` to every other member session in join order; no event at all when alone.
    fn check_data_delivery(&mut self, at: usize, me: &Presence, party_id: PartyId, before: &View) {
        let expected: Vec<SessionId> =
            before.members[&party_id].iter().copied().filter(|s| *s != me.session_id).collect();
        let delivered: Vec<SessionId> = match self.out.outputs().get(at) {
            Some(Output::Event { recipients, event: Event::Party(PartyEvent::Data { sender, .. }) }) => {
                assert_eq!(sender, me);
                self.out.recipients(recipients.clone()).to_vec()
            }
            None => vec![],
            other => panic!("party data caused {other:?}"),
        };
        assert_eq!(delivered, expected, "party data goes to every other member session, once");
        assert!(self.out.outputs().len() <= at + 1, "one event for all recipients");
    }

    fn label(&mut self) -> String {
        match self.rng.below(10) {
            0..=3 => String::new(),
            4..=7 => {
                // A few of the fields the queries ask about; often within the label limit.
                let mut fields = Vec::new();
                if self.rng.chance(50) {
                    fields.push(format!(r#""k":{}"#, self.pick_str(&NUMBERS)));
                }
                if self.rng.chance(50) {
                    fields.push(format!(r#""m":"{}""#, self.pick_str(&WORDS)));
                }
                if self.rng.chance(30) {
                    let tags: Vec<String> =
                        (0..self.rng.below(3)).map(|_| format!(r#""{}""#, self.pick_str(&WORDS))).collect();
                    fields.push(format!(r#""t":[{}]"#, tags.join(",")));
                }
                if self.rng.chance(30) {
                    fields.push(format!(r#""f":{}"#, self.rng.chance(50)));
                }
                if self.rng.chance(20) {
                    fields.push(format!(r#""n":{{"k":{}}}"#, self.pick_str(&NUMBERS)));
                }
                format!("{{{}}}", fields.join(","))
            }
            8 if self.rng.chance(50) => format!(r#"{{"pad":"{}"}}"#, "x".repeat(self.rng.below(80))),
            // A long key over several leaves: its path repeats in every field below it, and the
            // paths count against the label bytes.
            8 => format!(r#"{{"{}":{{"a":1,"b":2,"c":[3,4]}}}}"#, "p".repeat(self.rng.below(24))),
            _ => "[1]".into(),
        }
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        self.rng.pick(items).expect("non-empty")
    }

    /// A random query over the simulation's label fields: every syntax form, sometimes malformed.
    fn query(&mut self) -> String {
        let mut terms = Vec::new();
        for _ in 0..self.rng.below(4) {
            let occur = ["", "", "+", "-"][self.rng.below(4)];
            let number = self.pick_str(&NUMBERS);
            let word = self.pick_str(&WORDS);
            let op = [">", ">=", "<", "<="][self.rng.below(4)];
            let term = match self.rng.below(14) {
                0 => format!("label.k:{number}"),
                1 => format!("label.k:{op}{number}"),
                2 | 3 => match word {
                    "a b" => r#"label.m:"a b""#.to_owned(),
                    _ => format!("label.m:{word}"),
                },
                4 => format!("label.m:{}", ["a*", "?b", "*", "b?", "*a", r"a\ b"][self.rng.below(6)]),
                5 => format!("label.t:{}", if word == "a b" { r"a\ b" } else { word }),
                6 => format!("label.f:{}", self.rng.chance(50)),
                7 => format!("label.n.k:{op}{number}"),
                8 => format!("open:{}", self.rng.chance(50)),
                9 => format!("max_size:{op}{}", self.rng.range(1, self.limits.party_members_max)),
                10 => format!("member_count:{}{}", ["", ">=", "<"][self.rng.below(3)], self.rng.range(1, 3)),
                11 => {
                    if self.rng.chance(50) {
                        word.replace(' ', r"\ ")
                    } else {
                        number.to_owned()
                    }
                }
                12 => format!("label.missing:{word}"),
                // Malformed: each of these must be refused with 230.
                _ => ["label.k:", "bad:x", r#"label.m:"a"#, "label.k:>x", "label.m:a^", "\\"][self.rng.below(6)]
                    .to_owned(),
            };
            let boost = if self.rng.chance(20) { ["^0.5", "^2", "^3", "^0"][self.rng.below(4)] } else { "" };
            terms.push(format!("{occur}{term}{boost}"));
        }
        terms.join(" ")
    }

    /// Q-1: one search followed to its last page, checked page by page and as a whole against
    /// a brute-force evaluation over the party table.
    pub(super) fn search(&mut self, me: Presence) {
        self.stats.searches += 1;
        let query = self.query();
        let open = if self.rng.chance(60) { None } else { Some(self.rng.chance(50)) };
        let page_max = self.limits.search_page_limit_max;
        let limit = match self.rng.below(20) {
            0 => Some(0),
            1 => Some(page_max as u32 + 1),
            2..=4 => None,
            _ => Some(self.rng.range(1, page_max.min(6)) as u32),
        };
        let limit_ok = limit.is_none_or(|l| (1..=page_max).contains(&(l as usize)));
        let parsed = parse_query(&query, &SearchLimits::from(&self.limits));
        let parties: Vec<PartySnapshot> =
            self.core.debug_party_ids().into_iter().filter_map(|id| self.core.debug_party(id)).collect();

        let mut cursor: Option<String> = None;
        let mut listed: Vec<PartyId> = Vec::new();
        let pages_max = parties.len() + 2;
        for _ in 0..pages_max {
            let request = PartyRequest::Search { query: query.clone(), open, limit, cursor: cursor.clone() };
            let result = match self.search_once(&me, request, limit_ok && parsed.is_ok()) {
                // The budgets may refuse any page (the budget model checked 235 exactly).
                Err(CoreError::SearchQueryTooCostly { .. } | CoreError::SearchBudgetExhausted { .. })
                    if parsed.is_ok() =>
                {
                    return
                }
                Err(error) => {
                    assert!(cursor.is_none(), "a later page of {query:?} failed: {error:?}");
                    match (&error, &parsed) {
                        (CoreError::BadInput(_), _) => assert!(!limit_ok, "{query:?} limit {limit:?}: {error:?}"),
                        (CoreError::SearchQueryInvalid(got), Err(want)) => assert_eq!(got, want),
                        // Only the index knows how many values a wildcard expands to.
                        (CoreError::SearchQueryTooBroad { .. }, Ok(parsed)) => assert!(
                            parsed.clauses().iter().any(|c| matches!(c.value, ValueMatch::Wildcard(_))),
                            "{query:?} refused as too broad without a wildcard"
                        ),
                        _ => panic!("search {query:?} {open:?} {limit:?} refused with {error:?}"),
                    }
                    return;
                }
                Ok(result) => result,
            };
            assert!(limit_ok, "limit {limit:?} accepted");
            let Ok(parsed) = &parsed else { panic!("malformed query {query:?} accepted") };
            let (page, next) = result;
            let page_len = limit.map_or(self.limits.search_page_limit_default, |l| l as usize);
            assert!(page.len() <= page_len, "page over its limit");
            assert!(next.is_none() || page.len() == page_len, "a cursor after a short page");
            for listing in &page {
                let party = parties.iter().find(|p| p.party_id == listing.party_id);
                let party = party.unwrap_or_else(|| panic!("search returned a party that is gone: {listing:?}"));
                assert!(!party.hidden, "search returned hidden party {}", party.party_id);
                assert!(open.is_none_or(|open| open == party.open), "open filter {open:?} let {listing:?} through");
                let expected = PartyListing {
                    party_id: party.party_id,
                    open: party.open,
                    max_size: party.max_size,
                    member_count: party.members.len() as u16,
                    label: party.label.clone(),
                    name: party.lobby.name.clone(),
                    version: party.version,
                };
                assert_eq!(*listing, expected, "a listing disagrees with the party table");
                assert!(!listed.contains(&listing.party_id), "{} listed twice by {query:?}", listing.party_id);
                listed.push(listing.party_id);
            }
            self.stats.search_results += page.len() as u64;
            let Some(next) = next else {
                let expected = brute_force(parsed, open, &parties);
                assert_eq!(listed, expected, "search {query:?} open {open:?} limit {limit:?}");
                if query.trim().is_empty() && open.is_none() {
                    let visible = parties.iter().filter(|p| !p.hidden).count();
                    assert_eq!(listed.len(), visible, "the empty query lists every non-hidden party");
                }
                return;
            };
            if self.rng.chance(10) {
                // A cursor is valid only with its own query, filter and limit.
                let other = PartyRequest::Search {
                    query: query.clone(),
                    open: Some(!open.unwrap_or(false)),
                    limit,
                    cursor: Some(next.clone()),
                };
                // (Or its budget is spent, as the model says.)
                let refused = self.search_once(&me, other, true).map(|_| ());
                assert!(
                    matches!(refused, Err(CoreError::SearchCursorMismatch | CoreError::SearchBudgetExhausted { .. })),
                    "{refused:?}"
                );
            }
            cursor = Some(next);
        }
        panic!("search {query:?} did not end within {pages_max} pages");
    }

    /// Runs one search request: one reply, no event, nothing changed. `budgeted`: the request
    /// passes the checks before the session's search budget (page size, syntax), so the
    /// budget model predicts whether it is admitted (error 235 exactly when the model's bucket
    /// is empty, with the model's wait) and learns what it cost from the core's counters.
    fn search_once(
        &mut self,
        me: &Presence,
        request: PartyRequest,
        budgeted: bool,
    ) -> Result<(Vec<PartyListing>, Option<String>), CoreError> {
        self.stats.requests += 1;
        let digests = self.digests();
        let counters_before = self.core.stats().search;
        let admitted = budgeted.then(|| {
            let (refill, burst, now) =
                (self.limits.search_budget_cost_per_ms, self.limits.search_budget_burst_cost, self.now);
            let budget = self.search_budgets.entry(me.session_id).or_insert_with(|| BudgetModel::full(burst, now));
            budget.admit(now, refill, burst)
        });
        let cid = self.next_cid();
        self.core.handle_request(me.session_id, cid, Request::Party(request), self.now(), &mut self.out);
        // No invariant sweep here: a search mutates nothing (the digests say so), and the step
        // sweeps at its end (`handle_request` itself does in debug builds).
        assert_eq!(self.digests(), digests, "a search changed a table");
        let outputs = std::mem::take(&mut self.out);
        let [Output::Reply { to, cid: got, result }] = outputs.outputs() else {
            panic!("a search causes exactly one reply and no event: {:?}", outputs.outputs())
        };
        assert_eq!((*to, *got), (me.session_id, cid));
        let counters = self.core.stats().search;
        let cost = counters.search_cost_total - counters_before.search_cost_total;
        let ran = counters.searches_total - counters_before.searches_total;
        match admitted {
            Some(Ok(())) => {
                assert_eq!(ran, 1, "an admitted search runs");
                let budget = self.search_budgets.get_mut(&me.session_id).expect("admitted above");
                budget.level -= cost as i64;
                assert!(
                    !matches!(result, Err(CoreError::SearchBudgetExhausted { .. })),
                    "the model's budget admits this search: {result:?}"
                );
                if result.is_ok() {
                    assert!(cost <= self.limits.search_query_cost_max, "an answered search spent {cost} units");
                }
            }
            Some(Err(retry_after_ms)) => {
                assert_eq!((ran, cost), (0, 0), "a search refused by its budget does no work");
                assert_eq!(
                    result,
                    &Err(CoreError::SearchBudgetExhausted { retry_after_ms }),
                    "the model's budget is spent"
                );
            }
            None => assert_eq!((ran, cost), (0, 0), "a search refused before its budget does no work"),
        }
        let refused_too_costly =
            counters.search_refused_too_costly_total - counters_before.search_refused_too_costly_total;
        assert_eq!(refused_too_costly, u64::from(matches!(result, Err(CoreError::SearchQueryTooCostly { .. }))));
        match result {
            Ok(Reply::Party(PartyReply::SearchResult { parties, cursor })) => Ok((parties.clone(), cursor.clone())),
            Ok(other) => panic!("search replied {other:?}"),
            Err(error) => {
                self.stats.refusal(error);
                Err(error.clone())
            }
        }
    }

    /// Issue 14's label bounds, against the harness's own flattening of the label: a label
    /// refused as too complex exceeds one of them, an accepted one is within all of them, a
    /// full index is refused only for labels within them, and after a party with a label that
    /// indexes values is created the index's estimate is within its budget.
    fn check_label_bounds(&self, request: &PartyRequest, result: &Result<Reply, CoreError>, index_bytes_before: u64) {
        let label = match request {
            PartyRequest::Create { label, .. } => label,
            PartyRequest::Update { label: Some(label), .. } => label,
            _ => return,
        };
        if label.is_empty() {
            return;
        }
        let limits = &self.limits;
        let within = |(values, fields, path_bytes): (usize, usize, usize)| {
            values <= limits.party_label_values_max
                && fields <= limits.party_label_fields_max
                && path_bytes <= limits.party_label_bytes_max
        };
        let shape = label_shape(label);
        match result {
            Err(CoreError::LabelTooComplex(why)) => {
                let shape =
                    shape.unwrap_or_else(|| panic!("{label:?} refused as too complex ({why}) is no JSON object"));
                assert!(!within(shape), "{label:?} ({shape:?}) refused as too complex: {why}");
            }
            Err(CoreError::SearchIndexFull { bytes_max }) => {
                assert_eq!(*bytes_max, limits.search_index_bytes_max);
                assert!(shape.is_some_and(within), "{label:?} refused for a full index before its bounds");
                assert!(index_bytes_before > 0);
            }
            Ok(_) => {
                assert!(shape.is_some_and(within), "{label:?} ({shape:?}) accepted past a label bound");
                // A label that indexes nothing (`{}`, only nulls) is indexed like none, budget or not.
                let indexes_values = shape.is_some_and(|(values, ..)| values > 0);
                if matches!(request, PartyRequest::Create { .. }) && indexes_values {
                    let bytes = self.core.stats().search.search_index_bytes;
                    assert!(bytes as usize <= limits.search_index_bytes_max, "a label took the index to {bytes} bytes");
                }
            }
            Err(_) => {}
        }
    }

    /// Mostly a live party, sometimes any id ever seen (possibly gone, or never valid).
    pub(super) fn pick_party(&mut self) -> PartyId {
        if self.rng.chance(85) {
            if let Some(id) = self.rng.pick(&self.core.debug_party_ids()) {
                return id;
            }
        }
        self.rng.pick(&self.known_parties).expect("never empty")
    }

    /// Who sends request `op` on `party_id`: mostly someone entitled to (the leader for
    /// leader-only operations, a member for members-only ones), sometimes anyone.
    fn pick_actor(&mut self, op: PartyOp, party_id: PartyId) -> Presence {
        if let Some(party) = self.core.debug_party(party_id) {
            if self.rng.chance(75) {
                use PartyOp::*;
                match op {
                    JoinRequests | Accept | Remove | Promote | Close | Update => return party.leader,
                    Leave | Data | DataWithoutCid | Get | MyParties => {
                        return self.rng.pick(&party.members).expect("a party has members")
                    }
                    Join => {
                        if let Some(friend) = self.pick_friend_of(&party) {
                            return friend;
                        }
                    }
                    Create => {}
                }
            }
        }
        self.pick_presence_any()
    }

    /// A member or pending requester of the party (or anyone), sometimes with a wrong username.
    fn pick_named(&mut self, party_id: PartyId, prefer_pending: bool) -> Presence {
        let candidates = if prefer_pending {
            self.core.debug_party_pending(party_id).unwrap_or_default()
        } else {
            self.core.debug_party(party_id).map(|p| p.members).unwrap_or_default()
        };
        let mut presence = match self.rng.pick(&candidates) {
            Some(p) if self.rng.chance(85) => p,
            _ => self.pick_presence_any(),
        };
        if self.rng.chance(5) {
            presence.username = Username::new("impostor");
        }
        presence
    }

    /// Who may receive what, for the party events at `outputs` of the outbox. Recipients were
    /// checked to be connected, once each, for every output of the step.
    pub(super) fn check_party_events(
        &mut self,
        outputs: Range<usize>,
        me: Option<&Presence>,
        promote: bool,
        before: &View,
        after: &View,
    ) {
        // Parties whose `leaves` event went out in this step: a leader event must come first.
        let mut left_parties: Vec<PartyId> = Vec::new();
        let call = self.lobby.note_call();
        for output in &self.out.outputs()[outputs] {
            let Output::Event { recipients, event } = output else { panic!("only events after the reply: {output:?}") };
            let recipients = self.out.recipients(recipients.clone());
            self.stats.events += 1;
            self.stats.deliveries += recipients.len() as u64;
            // Snapshots and invitation ends: the lobby's checks at the step's end (`lobby.rs`).
            if let Event::Lobby(event) = event {
                self.lobby.note_lobby(call, recipients, event);
                continue;
            }
            let Event::Party(event) = event else { panic!("unexpected event {event:?}") };
            let party = match event {
                PartyEvent::Presence { party_id, .. }
                | PartyEvent::JoinRequest { party_id, .. }
                | PartyEvent::Leader { party_id, .. }
                | PartyEvent::Removed { party_id, .. }
                | PartyEvent::Data { party_id, .. }
                | PartyEvent::Updated { party_id, .. } => *party_id,
                PartyEvent::Joined(snapshot) => snapshot.party_id,
            };
            self.lobby.note_party(call, party);
            match event {
                PartyEvent::Removed { reason, .. } => {
                    for to in recipients {
                        let was = before.is_member(party, *to) || before.is_pending(party, *to);
                        assert!(was, "removed event to {to}, who was not in {party}");
                        assert!(!after.is_member(party, *to) && !after.is_pending(party, *to));
                        if *reason == RemovedReason::Rejected {
                            assert!(before.is_pending(party, *to), "only requesters are rejected");
                        }
                    }
                }
                _ => {
                    for to in recipients {
                        assert!(after.is_member(party, *to), "{event:?} to non-member {to}");
                    }
                    if let PartyEvent::Data { .. } = event {
                        let me = me.expect("data comes from a request");
                        assert!(!recipients.contains(&me.session_id), "party data echoed to its sender");
                    }
                    if let PartyEvent::Presence { leaves, .. } = event {
                        if !leaves.is_empty() {
                            left_parties.push(party);
                        }
                    }
                    if let PartyEvent::Leader { leader, .. } = event {
                        assert!(!left_parties.contains(&party), "leader event after the leaves event");
                        let now = self.core.debug_party(party).expect("party exists").leader;
                        assert_eq!(*leader, now, "the leader event names the leader");
                        if !promote {
                            // Rotation (P-6): the longest tenure is the earliest member left.
                            assert_eq!(leader.session_id, after.members[&party][0], "rotation by tenure");
                        }
                    }
                    if let PartyEvent::JoinRequest { .. } = event {
                        assert_eq!(recipients.len(), 1, "join requests go to the leader alone");
                        let leader = self.core.debug_party(party).expect("party exists").leader.session_id;
                        assert_eq!(recipients[0], leader);
                    }
                }
            }
        }
    }
}

/// A party's indexed values, flattened as SPEC Q-2 says (independently of the index's code).
#[derive(Default)]
struct Flat {
    /// (field with its `label.` prefix, keyword)
    keywords: Vec<(String, String)>,
    numbers: Vec<(String, f64)>,
}

fn flatten(path: &str, value: &serde_json::Value, flat: &mut Flat) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Bool(b) => flat.keywords.push((path.to_owned(), b.to_string())),
        Value::Number(n) => flat.numbers.push((path.to_owned(), n.as_f64().expect("no arbitrary precision"))),
        Value::String(text) => flat.keywords.push((path.to_owned(), text.clone())),
        Value::Array(items) => items.iter().for_each(|item| flatten(path, item, flat)),
        Value::Object(fields) => {
            for (name, item) in fields {
                flatten(&format!("{path}.{name}"), item, flat);
            }
        }
    }
}

/// What the index must return for `query` over `parties`: every matching non-hidden party,
/// score descending, then id ascending.
fn brute_force(query: &Query, open_filter: Option<bool>, parties: &[PartySnapshot]) -> Vec<PartyId> {
    let mut found: Vec<(f64, PartyId)> = Vec::new();
    for party in parties.iter().filter(|p| !p.hidden && open_filter.is_none_or(|open| open == p.open)) {
        let mut flat = Flat::default();
        if !party.label.is_empty() {
            let label: serde_json::Value = serde_json::from_str(&party.label).expect("stored labels are JSON");
            flatten("label", &label, &mut flat);
        }
        let member_count = party.members.len() as f64;
        let matches = |field: &FieldRef, value: &ValueMatch| -> bool {
            let (keywords, numbers): (Vec<&str>, Vec<f64>) = match field {
                FieldRef::AnyLabel => (
                    flat.keywords.iter().map(|(_, k)| k.as_str()).collect(),
                    flat.numbers.iter().map(|(_, n)| *n).collect(),
                ),
                FieldRef::Label(name) => (
                    flat.keywords.iter().filter(|(f, _)| **f == **name).map(|(_, k)| k.as_str()).collect(),
                    flat.numbers.iter().filter(|(f, _)| **f == **name).map(|(_, n)| *n).collect(),
                ),
                FieldRef::Open => (vec![if party.open { "true" } else { "false" }], vec![]),
                FieldRef::MaxSize => (vec![], vec![f64::from(party.max_size)]),
                FieldRef::MemberCount => (vec![], vec![member_count]),
                FieldRef::Name if party.lobby.name.is_empty() => (vec![], vec![]),
                FieldRef::Name => (vec![party.lobby.name.as_str()], vec![]),
            };
            match value {
                ValueMatch::Exact { text, number } => {
                    keywords.contains(&&**text) || number.is_some_and(|n| numbers.contains(&n))
                }
                ValueMatch::Wildcard(pattern) => keywords.iter().any(|k| pattern.matches(k)),
                ValueMatch::Range { op, number } => numbers.iter().any(|n| match op {
                    RangeOp::Greater => n > number,
                    RangeOp::GreaterOrEqual => n >= number,
                    RangeOp::Less => n < number,
                    RangeOp::LessOrEqual => n <= number,
                }),
            }
        };
        let (mut score, mut must_ok, mut has_must, mut has_should, mut any_should) = (0.0, true, false, false, false);
        for clause in query.clauses() {
            let hit = matches(&clause.field, &clause.value);
            match clause.occur {
                Occur::Must => {
                    has_must = true;
                    must_ok &= hit;
                    if hit {
                        score += clause.boost;
                    }
                }
                Occur::MustNot => must_ok &= !hit,
                Occur::Should => {
                    has_should = true;
                    if hit {
                        any_should = true;
                        score += clause.boost;
                    }
                }
            }
        }
        if must_ok && (has_must || !has_should || any_should) {
            found.push((score, party.party_id));
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().map(|(_, id)| id).collect()
}

/// The party a request names (none for create, my parties and search).
fn party_of(request: &PartyRequest) -> Vec<PartyId> {
    match request {
        PartyRequest::Create { .. } | PartyRequest::MyParties | PartyRequest::Search { .. } => Vec::new(),
        PartyRequest::Join { party_id }
        | PartyRequest::JoinRequests { party_id }
        | PartyRequest::Accept { party_id, .. }
        | PartyRequest::Remove { party_id, .. }
        | PartyRequest::Leave { party_id }
        | PartyRequest::Promote { party_id, .. }
        | PartyRequest::Close { party_id }
        | PartyRequest::Data { party_id, .. }
        | PartyRequest::Update { party_id, .. }
        | PartyRequest::Get { party_id } => vec![*party_id],
    }
}

/// (indexed values, distinct fields, bytes of those fields' paths without `label.`) of a label
/// that is a JSON object, flattened as SPEC Q-2 says; `None` for anything else.
fn label_shape(label: &str) -> Option<(usize, usize, usize)> {
    let value: serde_json::Value = serde_json::from_str(label).ok()?;
    if !value.is_object() {
        return None;
    }
    let mut flat = Flat::default();
    flatten("label", &value, &mut flat);
    let mut fields: Vec<&str> =
        flat.keywords.iter().map(|(f, _)| f.as_str()).chain(flat.numbers.iter().map(|(f, _)| f.as_str())).collect();
    fields.sort_unstable();
    fields.dedup();
    let path_bytes = fields.iter().map(|f| f.len() - "label.".len()).sum();
    Some((flat.keywords.len() + flat.numbers.len(), fields.len(), path_bytes))
}

/// The harness's model of a session's search budget (see `SearchBudget` in the core, which it
/// does not share code with): a bucket of cost units refilled per millisecond up to `burst`,
/// admitting a search while positive and charged afterwards what the search spent.
pub(super) struct BudgetModel {
    level: i64,
    at: crate::core::Millis,
}

impl BudgetModel {
    fn full(burst: u64, now: crate::core::Millis) -> BudgetModel {
        BudgetModel { level: burst as i64, at: now }
    }

    /// Refills for the time since the last search; admitted, or the wait in ms.
    fn admit(&mut self, now: crate::core::Millis, refill_per_ms: u64, burst: u64) -> Result<(), u64> {
        let elapsed = now.0 - self.at.0;
        self.at = now;
        self.level = (self.level + (elapsed * refill_per_ms) as i64).min(burst as i64);
        if self.level > 0 {
            Ok(())
        } else {
            Err(((1 - self.level) as u64).div_ceil(refill_per_ms))
        }
    }
}
