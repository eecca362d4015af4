//! Parties (SPEC P-1 … P-12): every party rule and the party tables, in one place.
//!
//! Shape of the tables:
//! - `by_id`: each [`Party`] with its members in join order (so tenure is the index: the first
//!   member has been there longest) and its pending join requests in arrival order;
//! - `of_session`: for every session that is in a party or has asked to join one, those parties
//!   in the order it joined (or asked), so a disconnect finds its parties without a scan.
//!
//! - `search`: the label search index (SPEC Q-1 … Q-4, see [`crate::core::search`]) over every
//!   non-hidden party, kept in step with `by_id` by every operation that changes a party, so
//!   the very next search sees the change (Q-3). Hidden parties are never in it.
//!
//! Every operation validates first and mutates after: a rejected request returns its error
//! before touching any table, so it leaves no trace. An operation that succeeds queues its one
//! reply first and then its events, each event once with all its recipients in member (join)
//! order. Nothing iterates a `HashMap` into an output.
//!
//! Decisions where SPEC is silent are listed in the README's "Parties" section; the comments
//! below name them where they are made.

use super::search::{parse_query, PartyDoc, Query, SearchError, SearchIndex};
use super::{Cid, CoreError, Event, IdGenerator, Outbox, PartyId, Presence, Reply, SessionId};
use crate::limits::Limits;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// A decoded party request (`Request::Party`).
#[derive(Clone, Debug, PartialEq)]
pub enum PartyRequest {
    /// P-1. `label` empty = none.
    Create { open: bool, max_size: u32, label: String, hidden: bool },
    /// P-2.
    Join { party_id: PartyId },
    /// P-3, leader only: the pending join requests.
    JoinRequests { party_id: PartyId },
    /// P-3, leader only.
    Accept { party_id: PartyId, presence: Presence },
    /// P-3 (reject a pending request) and P-4 (kick a member), leader only.
    Remove { party_id: PartyId, presence: Presence },
    /// P-5. Also withdraws the session's own pending join request.
    Leave { party_id: PartyId },
    /// P-7, leader only.
    Promote { party_id: PartyId, presence: Presence },
    /// P-8, leader only.
    Close { party_id: PartyId },
    /// P-9, members only. `data` is a slice of the request frame (no copy).
    Data { party_id: PartyId, op_code: i64, data: Bytes },
    /// P-10, leader only. `None` keeps the current value; `Some("")` clears the label.
    Update { party_id: PartyId, open: Option<bool>, hidden: Option<bool>, label: Option<String> },
    /// P-11, members only.
    Get { party_id: PartyId },
    /// P-11: the calling session's parties.
    MyParties,
    /// Q-1: anyone may search. `query` empty = every non-hidden party; `open` keeps only open
    /// (`Some(true)`) or closed (`Some(false)`) parties; `limit` `None` = the default page;
    /// `cursor` (empty = none) continues a previous search with the same query, filter and limit.
    Search { query: String, open: Option<bool>, limit: Option<u32>, cursor: Option<String> },
}

/// A whole party as members see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartySnapshot {
    pub party_id: PartyId,
    pub open: bool,
    pub hidden: bool,
    pub max_size: u16,
    /// A JSON object, or empty for none.
    pub label: String,
    pub leader: Presence,
    /// Join order, longest tenure first.
    pub members: Vec<Presence>,
}

/// A party without its member list: what "my parties" returns, so that a session in many large
/// parties gets a reply of bounded size (16 full snapshots of 256 members could exceed a client's
/// output buffer).
#[derive(Clone, Debug, PartialEq)]
pub struct PartySummary {
    pub party_id: PartyId,
    pub open: bool,
    pub hidden: bool,
    pub max_size: u16,
    pub member_count: u16,
    pub label: String,
    pub leader: Presence,
}

/// One party in a search result (Q-1): what a player needs to pick a party to join.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyListing {
    pub party_id: PartyId,
    pub open: bool,
    pub max_size: u16,
    pub member_count: u16,
    /// A JSON object, or empty for none.
    pub label: String,
}

/// The successful result of a party request.
#[derive(Clone, Debug, PartialEq)]
pub enum PartyReply {
    /// Create, open join (or joining a party the session is already in), get.
    Info(PartySnapshot),
    /// A closed party queued the join request.
    JoinPending { party_id: PartyId },
    /// The pending join requests, in arrival order.
    JoinRequests { party_id: PartyId, presences: Vec<Presence> },
    /// Done; nothing more to say.
    Ok { party_id: PartyId },
    /// The session's parties in the order it joined them.
    MyParties(Vec<PartySummary>),
    /// Q-1: one page of search results, best first; `cursor` is present only when more exist.
    SearchResult { parties: Vec<PartyListing>, cursor: Option<String> },
}

/// Why a session stopped being a member or requester of a party.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RemovedReason {
    /// P-4: the leader removed this member.
    Kicked,
    /// P-8: the leader closed the party; also sent to pending requesters of a party that closed
    /// or whose last member left, so they stop waiting.
    Closed,
    /// P-3: the leader rejected this join request.
    Rejected,
}

/// Party events. Each is queued once with all its recipients.
#[derive(Clone, Debug, PartialEq)]
pub enum PartyEvent {
    /// Members joined or left.
    Presence { party_id: PartyId, joins: Vec<Presence>, leaves: Vec<Presence> },
    /// To the leader: a new join request, or every pending one when it became leader.
    JoinRequest { party_id: PartyId, presences: Vec<Presence> },
    /// The leader changed.
    Leader { party_id: PartyId, leader: Presence },
    /// The recipient is no longer a member (or requester).
    Removed { party_id: PartyId, reason: RemovedReason },
    /// Party data from `sender`.
    Data { party_id: PartyId, sender: Presence, op_code: i64, data: Bytes },
    /// The party's settings after an update.
    Updated { party_id: PartyId, open: bool, hidden: bool, max_size: u16, label: String },
    /// To a session whose join request was accepted: the party it is now in.
    Joined(PartySnapshot),
}

struct Party {
    id: PartyId,
    open: bool,
    hidden: bool,
    max_size: u16,
    /// A JSON object, or empty for none.
    label: String,
    leader: SessionId,
    /// Join order: index 0 has the longest tenure.
    members: Vec<Presence>,
    /// Join requests, oldest first; at most `max_size`, at most one per user.
    pending: VecDeque<Presence>,
}

impl Party {
    /// A leader (by rotation or promotion) decides on join requests from now on: send it the
    /// whole pending list, if there is one.
    fn send_pending_to_leader(&self, out: &mut Outbox) {
        if !self.pending.is_empty() {
            let presences = self.pending.iter().cloned().collect();
            event(out, [self.leader], PartyEvent::JoinRequest { party_id: self.id, presences });
        }
    }

    fn member_index(&self, session: SessionId) -> Option<usize> {
        self.members.iter().position(|m| m.session_id == session)
    }

    fn is_member(&self, session: SessionId) -> bool {
        self.member_index(session).is_some()
    }

    fn pending_index(&self, session: SessionId) -> Option<usize> {
        self.pending.iter().position(|p| p.session_id == session)
    }

    fn leader_presence(&self) -> &Presence {
        // Invariant: the leader is a member (checked by check_invariants).
        self.members.iter().find(|m| m.session_id == self.leader).expect("leader is a member")
    }

    /// Full when every seat is taken. Accepted requests become members at once, so there are no
    /// accepted-but-pending seats to count (SPEC P-2's "reserved" seats are always zero here).
    fn is_full(&self) -> bool {
        self.members.len() >= usize::from(self.max_size)
    }

    fn member_sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.members.iter().map(|m| m.session_id)
    }

    fn snapshot(&self) -> PartySnapshot {
        PartySnapshot {
            party_id: self.id,
            open: self.open,
            hidden: self.hidden,
            max_size: self.max_size,
            label: self.label.clone(),
            leader: self.leader_presence().clone(),
            members: self.members.clone(),
        }
    }

    fn listing(&self) -> PartyListing {
        PartyListing {
            party_id: self.id,
            open: self.open,
            max_size: self.max_size,
            member_count: self.members.len() as u16,
            label: self.label.clone(),
        }
    }

    fn summary(&self) -> PartySummary {
        PartySummary {
            party_id: self.id,
            open: self.open,
            hidden: self.hidden,
            max_size: self.max_size,
            member_count: self.members.len() as u16,
            label: self.label.clone(),
            leader: self.leader_presence().clone(),
        }
    }
}

/// One session's parties, in the order it joined or asked.
#[derive(Default)]
struct SessionParties {
    member_of: Vec<PartyId>,
    requested: Vec<PartyId>,
}

impl SessionParties {
    fn count(&self) -> usize {
        self.member_of.len() + self.requested.len()
    }
}

#[derive(Copy, Clone)]
enum Slot {
    Member,
    Requested,
}

/// The search index seen through party ids: the index itself knows only `u128` keys and
/// [`PartyDoc`]s, the party layer only [`PartyId`]s and [`Party`]s. Every method keeps the
/// rule "hidden parties are never indexed" in one place.
struct PartyIndex {
    index: SearchIndex,
}

impl PartyIndex {
    /// Indexes the party's current settings, label and member count (or drops it if hidden).
    /// Create, and updates that change the label or hidden flag.
    fn upsert(&mut self, party: &Party) {
        if party.hidden {
            self.index.remove(party.id.0);
            return;
        }
        let doc = PartyDoc {
            open: party.open,
            max_size: u32::from(party.max_size),
            member_count: party.members.len() as u32,
            label: Some(&party.label),
        };
        // Invariant: `check_label` accepted this label with the index's own rules (a JSON
        // object within `party_label_bytes_max`, which is the index's `label_bytes_max`), so a
        // refusal here means the two disagree: a bug, never input.
        if let Err(error) = self.index.upsert(party.id.0, doc) {
            log::error!("search index refused the label of party {}: {error}", party.id);
            panic!("search index refused the label of party {} that check_label accepted: {error}", party.id);
        }
    }

    /// An update that changed only the open flag: no need to re-flatten the label.
    fn set_open(&mut self, party: &Party) {
        if !party.hidden {
            let indexed = self.index.set_open(party.id.0, party.open);
            debug_assert!(indexed, "non-hidden party {} is indexed", party.id);
        }
    }

    /// Join, accept, leave, kick, disconnect: only the member count changed.
    fn set_member_count(&mut self, party: &Party) {
        if !party.hidden {
            let indexed = self.index.set_member_count(party.id.0, party.members.len() as u32);
            debug_assert!(indexed, "non-hidden party {} is indexed", party.id);
        }
    }

    /// Close, last member gone.
    fn remove(&mut self, party_id: PartyId) {
        self.index.remove(party_id.0);
    }

    /// One page: party ids best first, and the next page's cursor.
    fn search(
        &self,
        query: &Query,
        open: Option<bool>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<PartyId>, Option<String>), SearchError> {
        let page = self.index.search(query, open, limit, cursor)?;
        Ok((page.keys.into_iter().map(PartyId).collect(), page.cursor))
    }
}

/// The party tables.
pub(crate) struct Parties {
    by_id: HashMap<PartyId, Party>,
    of_session: HashMap<SessionId, SessionParties>,
    /// Every non-hidden party, for search (Q-1). About 1 KiB per labelled party (see the README).
    search: PartyIndex,
}

fn reply(out: &mut Outbox, me: &Presence, cid: Cid, reply: PartyReply) {
    out.reply(me.session_id, cid, Ok(Reply::Party(reply)));
}

fn event(out: &mut Outbox, recipients: impl IntoIterator<Item = SessionId>, event: PartyEvent) {
    out.event(recipients, Event::Party(event));
}

/// P-12: a named presence matches by session id; its user id and username must agree.
fn check_presence(named: &Presence, actual: &Presence) -> Result<(), CoreError> {
    if named.user_id != actual.user_id || named.username != actual.username {
        return Err(CoreError::PartyPresenceMismatch);
    }
    Ok(())
}

/// The position of the presence a request names in `list`, matched by session id (P-12), with
/// its user id and username checked.
fn find_named<'a>(list: impl IntoIterator<Item = &'a Presence>, named: &Presence) -> Result<usize, CoreError> {
    let (i, found) = list
        .into_iter()
        .enumerate()
        .find(|(_, p)| p.session_id == named.session_id)
        .ok_or(CoreError::PartyPresenceNotFound)?;
    check_presence(named, found)?;
    Ok(i)
}

/// P-1 / P-10 label rules. They are also exactly what the search index accepts (a JSON object
/// of at most `party_label_bytes_max` bytes), so indexing a label that passed cannot fail.
fn check_label(label: &str, hidden: bool, limits: &Limits) -> Result<(), CoreError> {
    if label.is_empty() {
        return Ok(());
    }
    if hidden {
        return Err(CoreError::BadInput("a hidden party cannot carry a label".into()));
    }
    if label.len() > limits.party_label_bytes_max {
        return Err(CoreError::BadInput(format!(
            "label is {} bytes, more than party_label_bytes_max {}",
            label.len(),
            limits.party_label_bytes_max
        )));
    }
    match serde_json::from_str::<serde_json::Value>(label) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(CoreError::BadInput("label must be a JSON object".into())),
        Err(e) => Err(CoreError::BadInput(format!("label is not valid JSON: {e}"))),
    }
}

impl Parties {
    pub fn new(limits: &Limits) -> Parties {
        Parties {
            by_id: HashMap::new(),
            of_session: HashMap::new(),
            search: PartyIndex { index: SearchIndex::new(limits.search_limits()) },
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Memberships over every party. O(parties): for a metrics scrape, not a hot path.
    pub fn member_count(&self) -> usize {
        self.by_id.values().map(|party| party.members.len()).sum()
    }

    /// Handles one party request of `me`: exactly one reply, then its events.
    pub fn handle(
        &mut self,
        ids: &mut IdGenerator,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        request: PartyRequest,
        out: &mut Outbox,
    ) {
        let result = match request {
            PartyRequest::Create { open, max_size, label, hidden } => {
                self.create(ids, limits, me, cid, open, max_size, label, hidden, out)
            }
            PartyRequest::Join { party_id } => self.join(limits, me, cid, party_id, out),
            PartyRequest::JoinRequests { party_id } => self.join_requests(me, cid, party_id, out),
            PartyRequest::Accept { party_id, presence } => self.accept(me, cid, party_id, &presence, out),
            PartyRequest::Remove { party_id, presence } => self.remove(me, cid, party_id, &presence, out),
            PartyRequest::Leave { party_id } => self.leave(me, cid, party_id, out),
            PartyRequest::Promote { party_id, presence } => self.promote(me, cid, party_id, &presence, out),
            PartyRequest::Close { party_id } => self.close(me, cid, party_id, out),
            PartyRequest::Data { party_id, op_code, data } => self.data(limits, me, cid, party_id, op_code, data, out),
            PartyRequest::Update { party_id, open, hidden, label } => {
                self.update(limits, me, cid, party_id, open, hidden, label, out)
            }
            PartyRequest::Get { party_id } => self.get(me, cid, party_id, out),
            PartyRequest::MyParties => {
                let parties = self
                    .of_session
                    .get(&me.session_id)
                    .map_or(Vec::new(), |s| s.member_of.iter().map(|id| self.by_id[id].summary()).collect());
                reply(out, me, cid, PartyReply::MyParties(parties));
                Ok(())
            }
            PartyRequest::Search { query, open, limit, cursor } => {
                self.search(limits, me, cid, &query, open, limit, cursor.as_deref(), out)
            }
        };
        if let Err(error) = result {
            out.reply(me.session_id, cid, Err(error));
        }
    }

    /// C-6: the session leaves every party it is in (in the order it joined them) and its
    /// pending join requests vanish silently (the leader's next list shows it).
    pub fn disconnect(&mut self, session: SessionId, out: &mut Outbox) {
        let Some(entry) = self.of_session.get(&session) else {
            return;
        };
        let requested = entry.requested.clone();
        let member_of = entry.member_of.clone();
        for party_id in requested {
            self.withdraw_request(party_id, session);
        }
        for party_id in member_of {
            self.remove_member(party_id, session, out);
        }
        debug_assert!(!self.of_session.contains_key(&session), "disconnect left {session} indexed");
    }

    // ---- lookups shared by the rules ----

    fn find(&self, party_id: PartyId) -> Result<&Party, CoreError> {
        self.by_id.get(&party_id).ok_or(CoreError::PartyNotFound)
    }

    fn find_as_member(&self, party_id: PartyId, me: SessionId) -> Result<&Party, CoreError> {
        let party = self.find(party_id)?;
        if !party.is_member(me) {
            return Err(CoreError::PartyNotMember);
        }
        Ok(party)
    }

    /// P-12: leader-only operations. A non-member gets "not member", a member "not leader".
    fn find_as_leader(&self, party_id: PartyId, me: SessionId) -> Result<&Party, CoreError> {
        let party = self.find_as_member(party_id, me)?;
        if party.leader != me {
            return Err(CoreError::PartyNotLeader);
        }
        Ok(party)
    }

    fn session_party_count(&self, session: SessionId) -> usize {
        self.of_session.get(&session).map_or(0, SessionParties::count)
    }

    fn check_room_for_one_more(&self, limits: &Limits, session: SessionId) -> Result<(), CoreError> {
        if self.session_party_count(session) >= limits.parties_per_session_max {
            return Err(CoreError::PartyTooManyParties(limits.parties_per_session_max));
        }
        Ok(())
    }

    fn party_mut(&mut self, party_id: PartyId) -> &mut Party {
        // Callers validated that the party exists in the same request.
        self.by_id.get_mut(&party_id).expect("party validated before mutation")
    }

    /// Removes a party from every table (by id, search, each member's and requester's index)
    /// and hands it back for the events that announce its end.
    fn dissolve(&mut self, party_id: PartyId) -> Party {
        let party = self.by_id.remove(&party_id).expect("party validated before dissolving");
        self.search.remove(party_id);
        for m in &party.members {
            self.unindex(m.session_id, party_id, Slot::Member);
        }
        for p in &party.pending {
            self.unindex(p.session_id, party_id, Slot::Requested);
        }
        party
    }

    /// A session's pending join request goes, silently (leave, or disconnect).
    fn withdraw_request(&mut self, party_id: PartyId, session: SessionId) {
        if let Some(party) = self.by_id.get_mut(&party_id) {
            if let Some(i) = party.pending_index(session) {
                party.pending.remove(i);
            }
        }
        self.unindex(session, party_id, Slot::Requested);
    }

    fn index(&mut self, session: SessionId, party_id: PartyId, slot: Slot) {
        let entry = self.of_session.entry(session).or_default();
        match slot {
            Slot::Member => entry.member_of.push(party_id),
            Slot::Requested => entry.requested.push(party_id),
        }
    }

    fn unindex(&mut self, session: SessionId, party_id: PartyId, slot: Slot) {
        let Some(entry) = self.of_session.get_mut(&session) else {
            debug_assert!(false, "{session} not indexed");
            return;
        };
        let list = match slot {
            Slot::Member => &mut entry.member_of,
            Slot::Requested => &mut entry.requested,
        };
        if let Some(i) = list.iter().position(|id| *id == party_id) {
            // `remove`, not `swap_remove`: the list keeps join order for "my parties".
            list.remove(i);
        } else {
            debug_assert!(false, "{session} not indexed under {party_id}");
        }
        if entry.count() == 0 {
            self.of_session.remove(&session);
        }
    }

    // ---- the rules ----

    /// P-1.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        ids: &mut IdGenerator,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        open: bool,
        max_size: u32,
        label: String,
        hidden: bool,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        if max_size == 0 || max_size as usize > limits.party_members_max {
            return Err(CoreError::BadInput(format!(
                "max_size must be 1..={}, got {max_size}",
                limits.party_members_max
            )));
        }
        check_label(&label, hidden, limits)?;
        self.check_room_for_one_more(limits, me.session_id)?;

        let mut id = ids.next_party_id();
        while self.by_id.contains_key(&id) {
            id = ids.next_party_id(); // 2^-128 odds; cheap to rule out all the same
        }
        let party = Party {
            id,
            open,
            hidden,
            max_size: max_size as u16,
            label,
            leader: me.session_id,
            members: vec![me.clone()],
            pending: VecDeque::new(),
        };
        let snapshot = party.snapshot();
        self.search.upsert(&party);
        self.by_id.insert(id, party);
        self.index(me.session_id, id, Slot::Member);
        reply(out, me, cid, PartyReply::Info(snapshot));
        Ok(())
    }

    /// P-2.
    fn join(
        &mut self,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find(party_id)?;
        if party.is_member(me.session_id) {
            // Already in: a no-op that still hands back the snapshot.
            reply(out, me, cid, PartyReply::Info(party.snapshot()));
            return Ok(());
        }
        if party.is_full() {
            return Err(CoreError::PartyFull);
        }
        let pending_here = party.pending_index(me.session_id);
        if party.open {
            // A session that asked while the party was closed already holds a counted slot.
            if pending_here.is_none() {
                self.check_room_for_one_more(limits, me.session_id)?;
            }
            let party = self.by_id.get_mut(&party_id).expect("validated above");
            if let Some(i) = pending_here {
                party.pending.remove(i);
            }
            party.members.push(me.clone());
            let snapshot = party.snapshot();
            self.search.set_member_count(party);
            if pending_here.is_some() {
                self.unindex(me.session_id, party_id, Slot::Requested);
            }
            self.index(me.session_id, party_id, Slot::Member);
            reply(out, me, cid, PartyReply::Info(snapshot));
            let party = &self.by_id[&party_id];
            let others = party.member_sessions().filter(|s| *s != me.session_id);
            event(out, others, PartyEvent::Presence { party_id, joins: vec![me.clone()], leaves: Vec::new() });
            return Ok(());
        }
        if party.members.iter().any(|m| m.user_id == me.user_id) {
            return Err(CoreError::PartyAlreadyMember);
        }
        if party.pending.iter().any(|p| p.user_id == me.user_id) {
            return Err(CoreError::PartyJoinRequestDuplicate);
        }
        if party.pending.len() >= usize::from(party.max_size) {
            return Err(CoreError::PartyJoinRequestsFull);
        }
        self.check_room_for_one_more(limits, me.session_id)?;

        let party = self.party_mut(party_id);
        party.pending.push_back(me.clone());
        let leader = party.leader;
        self.index(me.session_id, party_id, Slot::Requested);
        reply(out, me, cid, PartyReply::JoinPending { party_id });
        event(out, [leader], PartyEvent::JoinRequest { party_id, presences: vec![me.clone()] });
        Ok(())
    }

    /// P-3: the pending list, oldest first.
    fn join_requests(&mut self, me: &Presence, cid: Cid, party_id: PartyId, out: &mut Outbox) -> Result<(), CoreError> {
        let party = self.find_as_leader(party_id, me.session_id)?;
        let presences = party.pending.iter().cloned().collect();
        reply(out, me, cid, PartyReply::JoinRequests { party_id, presences });
        Ok(())
    }

    /// P-3: a pending request becomes a membership.
    fn accept(
        &mut self,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        named: &Presence,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find_as_leader(party_id, me.session_id)?;
        let i = find_named(&party.pending, named)?;
        if party.is_full() {
            return Err(CoreError::PartyFull); // the request stays queued
        }

        // `by_id` alone (not party_mut), so the search index can be updated while this is held.
        let party = self.by_id.get_mut(&party_id).expect("party validated before mutation");
        let joiner = party.pending.remove(i).expect("index from pending_index");
        party.members.push(joiner.clone());
        let snapshot = party.snapshot();
        self.search.set_member_count(party);
        // The slot moves from requested to member: the session's count is unchanged.
        self.unindex(joiner.session_id, party_id, Slot::Requested);
        self.index(joiner.session_id, party_id, Slot::Member);
        reply(out, me, cid, PartyReply::Ok { party_id });
        event(out, [joiner.session_id], PartyEvent::Joined(snapshot));
        // The new member learns the roster from its snapshot; the others from this event.
        let party = &self.by_id[&party_id];
        let joiner_session = joiner.session_id;
        let others = party.member_sessions().filter(|s| *s != joiner_session);
        event(out, others, PartyEvent::Presence { party_id, joins: vec![joiner], leaves: Vec::new() });
        Ok(())
    }

    /// P-4 (kick a member) and P-3 (reject a pending request).
    fn remove(
        &mut self,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        named: &Presence,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find_as_leader(party_id, me.session_id)?;
        if named.session_id == me.session_id {
            return Err(CoreError::PartyCannotRemoveSelf);
        }
        // Members first, then pending requests.
        let member = match find_named(&party.members, named) {
            Ok(i) => Some(i),
            Err(CoreError::PartyPresenceNotFound) => None,
            Err(mismatch) => return Err(mismatch),
        };
        if let Some(i) = member {
            // `by_id` alone (not party_mut), so the search index can be updated while this is held.
            let party = self.by_id.get_mut(&party_id).expect("party validated before mutation");
            let kicked = party.members.remove(i);
            self.search.set_member_count(party);
            self.unindex(kicked.session_id, party_id, Slot::Member);
            reply(out, me, cid, PartyReply::Ok { party_id });
            event(out, [kicked.session_id], PartyEvent::Removed { party_id, reason: RemovedReason::Kicked });
            let party = &self.by_id[&party_id];
            event(
                out,
                party.member_sessions(),
                PartyEvent::Presence { party_id, joins: Vec::new(), leaves: vec![kicked] },
            );
            return Ok(());
        }
        let i = find_named(&party.pending, named)?;
        let party = self.party_mut(party_id);
        let rejected = party.pending.remove(i).expect("index from pending_index");
        self.unindex(rejected.session_id, party_id, Slot::Requested);
        reply(out, me, cid, PartyReply::Ok { party_id });
        event(out, [rejected.session_id], PartyEvent::Removed { party_id, reason: RemovedReason::Rejected });
        Ok(())
    }

    /// P-5. Not a member: a no-op success; a pending request of the session is withdrawn.
    fn leave(&mut self, me: &Presence, cid: Cid, party_id: PartyId, out: &mut Outbox) -> Result<(), CoreError> {
        let party = self.find(party_id)?;
        let member = party.is_member(me.session_id);
        let pending = party.pending_index(me.session_id).is_some();
        reply(out, me, cid, PartyReply::Ok { party_id });
        if member {
            self.remove_member(party_id, me.session_id, out);
        } else if pending {
            self.withdraw_request(party_id, me.session_id);
        }
        Ok(())
    }

    /// A member goes (leave or disconnect): P-5, P-6. Events: leader change first (if the leader
    /// went), then `leaves`, then the pending list to the new leader; or, for the last member, the
    /// party's end to its pending requesters.
    fn remove_member(&mut self, party_id: PartyId, session: SessionId, out: &mut Outbox) {
        let party = self.party_mut(party_id);
        let Some(i) = party.member_index(session) else {
            debug_assert!(false, "{session} indexed as a member of {party_id} but not in it");
            return;
        };
        let gone = party.members.remove(i);
        self.unindex(session, party_id, Slot::Member);
        // `by_id` alone (not party_mut), so the search index can be updated while this is held.
        let party = self.by_id.get_mut(&party_id).expect("party validated before mutation");
        if party.members.is_empty() {
            // Last member gone = party gone (P-6); requesters would otherwise wait forever.
            let party = self.dissolve(party_id);
            let requesters = party.pending.iter().map(|p| p.session_id);
            event(out, requesters, PartyEvent::Removed { party_id, reason: RemovedReason::Closed });
            return;
        }
        self.search.set_member_count(party);
        let leader_left = party.leader == session;
        if leader_left {
            // Longest tenure = earliest in join order.
            party.leader = party.members[0].session_id;
            let leader = party.members[0].clone();
            event(out, party.member_sessions(), PartyEvent::Leader { party_id, leader });
        }
        event(out, party.member_sessions(), PartyEvent::Presence { party_id, joins: Vec::new(), leaves: vec![gone] });
        if leader_left {
            party.send_pending_to_leader(out);
        }
    }

    /// P-7. Promoting the current leader is a no-op success without an event.
    fn promote(
        &mut self,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        named: &Presence,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find_as_leader(party_id, me.session_id)?;
        let i = find_named(&party.members, named)?;
        reply(out, me, cid, PartyReply::Ok { party_id });
        if named.session_id == me.session_id {
            return Ok(());
        }
        let party = self.party_mut(party_id);
        party.leader = named.session_id;
        let leader = party.members[i].clone();
        event(out, party.member_sessions(), PartyEvent::Leader { party_id, leader });
        // The new leader decides on join requests from now on, so it needs the queue.
        party.send_pending_to_leader(out);
        Ok(())
    }

    /// P-8: every member and every pending requester is told `closed`; the party is gone.
    fn close(&mut self, me: &Presence, cid: Cid, party_id: PartyId, out: &mut Outbox) -> Result<(), CoreError> {
        self.find_as_leader(party_id, me.session_id)?;
        let party = self.dissolve(party_id);
        reply(out, me, cid, PartyReply::Ok { party_id });
        let everyone = party.member_sessions().chain(party.pending.iter().map(|p| p.session_id));
        event(out, everyone, PartyEvent::Removed { party_id, reason: RemovedReason::Closed });
        Ok(())
    }

    /// P-9, the hot path: one event for every other member session, the payload shared.
    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find_as_member(party_id, me.session_id)?;
        if data.len() > limits.party_data_bytes_max {
            return Err(CoreError::LimitExceeded(format!(
                "party data of {} bytes is over party_data_bytes_max {}",
                data.len(),
                limits.party_data_bytes_max
            )));
        }
        reply(out, me, cid, PartyReply::Ok { party_id });
        let others = party.member_sessions().filter(|s| *s != me.session_id);
        event(out, others, PartyEvent::Data { party_id, sender: me.clone(), op_code, data });
        Ok(())
    }

    /// P-10: absent fields keep their value; the resulting party may not be hidden and labelled.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        party_id: PartyId,
        open: Option<bool>,
        hidden: Option<bool>,
        label: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
        let party = self.find_as_leader(party_id, me.session_id)?;
        let new_open = open.unwrap_or(party.open);
        let new_hidden = hidden.unwrap_or(party.hidden);
        let new_label = label.unwrap_or_else(|| party.label.clone());
        check_label(&new_label, new_hidden, limits)?;

        let party = self.by_id.get_mut(&party_id).expect("validated above");
        let reindex = party.hidden != new_hidden || party.label != new_label;
        party.open = new_open;
        party.hidden = new_hidden;
        party.label = new_label;
        // Q-3: the index follows before the reply, so the requester's next search sees it.
        if reindex {
            self.search.upsert(party);
        } else {
            self.search.set_open(party);
        }
        reply(out, me, cid, PartyReply::Ok { party_id });
        let updated = PartyEvent::Updated {
            party_id,
            open: party.open,
            hidden: party.hidden,
            max_size: party.max_size,
            label: party.label.clone(),
        };
        event(out, party.member_sessions(), updated);
        Ok(())
    }

    /// P-11.
    fn get(&mut self, me: &Presence, cid: Cid, party_id: PartyId, out: &mut Outbox) -> Result<(), CoreError> {
        let party = self.find_as_member(party_id, me.session_id)?;
        reply(out, me, cid, PartyReply::Info(party.snapshot()));
        Ok(())
    }

    /// Q-1: one page of the non-hidden parties matching `query`, best first. Anyone may search.
    /// Limits are checked in the order a client can fix them: page size, query length, syntax,
    /// then the cursor and wildcard breadth (which the index reports).
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        limits: &Limits,
        me: &Presence,
        cid: Cid,
        query: &str,
        open: Option<bool>,
        limit: Option<u32>,
        cursor: Option<&str>,
        out: &mut Outbox,
    ) -> Result<(), CoreError> {
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
        let query = parse_query(query, self.search.index.limits()).map_err(CoreError::SearchQueryInvalid)?;
        // An empty cursor means none, as an empty label means none: clients that always send
        // the field (Nakama's do) need not special-case the first page.
        let cursor = cursor.filter(|c| !c.is_empty());
        let (ids, cursor) = self.search.search(&query, open, limit, cursor).map_err(|error| match error {
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
        let parties = ids.iter().map(|id| self.by_id.get(id).expect("indexed party exists").listing()).collect();
        reply(out, me, cid, PartyReply::SearchResult { parties, cursor });
        Ok(())
    }

    // ---- checks and inspection ----

    /// Every session the tables name, for the core's cross-table check.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.of_session.keys().copied()
    }

    pub fn check_invariants(&self, limits: &Limits) {
        let mut members_total = 0;
        let mut pending_total = 0;
        for (id, party) in &self.by_id {
            assert_eq!(party.id, *id, "party filed under another id");
            assert!(!party.members.is_empty(), "party {id} has no member");
            assert!(party.max_size >= 1 && usize::from(party.max_size) <= limits.party_members_max);
            assert!(party.members.len() <= usize::from(party.max_size), "party {id} over max_size");
            assert!(party.pending.len() <= usize::from(party.max_size), "party {id} has too many requests");
            assert!(party.is_member(party.leader), "party {id}: leader is not a member");
            assert!(!party.hidden || party.label.is_empty(), "party {id} is hidden and labelled");
            for (i, m) in party.members.iter().enumerate() {
                assert!(
                    !party.members[..i].iter().any(|o| o.session_id == m.session_id),
                    "party {id}: session {} is a member twice",
                    m.session_id
                );
                assert!(party.pending_index(m.session_id).is_none(), "party {id}: member also pending");
                let entry = self.of_session.get(&m.session_id);
                assert!(
                    entry.is_some_and(|e| e.member_of.contains(id)),
                    "party {id}: member {} not indexed",
                    m.session_id
                );
            }
            for (i, p) in party.pending.iter().enumerate() {
                assert!(
                    !party.pending.iter().take(i).any(|o| o.user_id == p.user_id),
                    "party {id}: two pending requests of one user"
                );
                let entry = self.of_session.get(&p.session_id);
                assert!(
                    entry.is_some_and(|e| e.requested.contains(id)),
                    "party {id}: requester {} not indexed",
                    p.session_id
                );
            }
            members_total += party.members.len();
            pending_total += party.pending.len();
        }
        let mut indexed_members = 0;
        let mut indexed_pending = 0;
        for (session, entry) in &self.of_session {
            assert!(entry.count() > 0, "empty index entry for {session}");
            assert!(entry.count() <= limits.parties_per_session_max, "{session} in too many parties");
            for id in &entry.member_of {
                let party = self.by_id.get(id);
                assert!(party.is_some_and(|p| p.is_member(*session)), "{session} indexed in {id} but not a member");
            }
            for id in &entry.requested {
                let party = self.by_id.get(id);
                assert!(
                    party.is_some_and(|p| p.pending_index(*session).is_some()),
                    "{session} indexed as requesting {id} but not pending"
                );
            }
            indexed_members += entry.member_of.len();
            indexed_pending += entry.requested.len();
        }
        assert_eq!(members_total, indexed_members, "member index disagrees with the parties");
        assert_eq!(pending_total, indexed_pending, "request index disagrees with the parties");
        self.check_search_index();
    }

    /// Q-3 as an invariant: the search index holds every non-hidden party with its current
    /// open flag, max_size and member count, and nothing else.
    fn check_search_index(&self) {
        let index = &self.search.index;
        let mut visible = 0;
        for (id, party) in &self.by_id {
            let built_ins = index.built_ins(id.0);
            if party.hidden {
                assert!(built_ins.is_none(), "hidden party {id} is in the search index");
                continue;
            }
            visible += 1;
            let expected = (party.open, f64::from(party.max_size), party.members.len() as f64);
            assert_eq!(built_ins, Some(expected), "party {id}: search index disagrees with the table");
        }
        assert_eq!(index.len(), visible, "the search index holds a party that is gone");
        index.check_invariants();
    }

    /// Table sizes: (parties, sessions indexed).
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.by_id.len(), self.of_session.len())
    }

    /// Party ids, sorted.
    pub fn ids(&self) -> Vec<PartyId> {
        let mut ids: Vec<PartyId> = self.by_id.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn snapshot(&self, party_id: PartyId) -> Option<PartySnapshot> {
        self.by_id.get(&party_id).map(Party::snapshot)
    }

    pub fn pending(&self, party_id: PartyId) -> Option<Vec<Presence>> {
        self.by_id.get(&party_id).map(|p| p.pending.iter().cloned().collect())
    }

    /// A hash of every table, independent of `HashMap` order.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let presence = |h: &mut std::collections::hash_map::DefaultHasher, p: &Presence| {
            p.session_id.hash(h);
            p.user_id.hash(h);
            p.username.hash(h);
        };
        for id in self.ids() {
            let party = &self.by_id[&id];
            (id, party.open, party.hidden, party.max_size, &party.label, party.leader).hash(&mut h);
            party.members.len().hash(&mut h);
            party.members.iter().for_each(|p| presence(&mut h, p));
            party.pending.len().hash(&mut h);
            party.pending.iter().for_each(|p| presence(&mut h, p));
        }
        self.search.index.len().hash(&mut h);
        let mut sessions: Vec<&SessionId> = self.of_session.keys().collect();
        sessions.sort();
        for s in sessions {
            let entry = &self.of_session[s];
            (s, &entry.member_of, &entry.requested).hash(&mut h);
        }
        h.finish()
    }

    /// Test hook: gives the first indexed party (in id order) a wrong member count in the search
    /// index, so the canary can prove that `check_invariants` notices. Returns whether there was
    /// a party to corrupt.
    pub fn corrupt_search_index(&mut self) -> bool {
        for id in self.ids() {
            let party = &self.by_id[&id];
            if !party.hidden {
                let wrong = party.members.len() as u32 + 1;
                return self.search.index.set_member_count(id.0, wrong);
            }
        }
        false
    }

    /// Test hook: forgets one membership in the session index, so the canary can prove that
    /// `check_invariants` notices. Returns whether there was anything to corrupt.
    pub fn corrupt_index(&mut self) -> bool {
        let mut sessions: Vec<SessionId> = self.of_session.keys().copied().collect();
        sessions.sort();
        for s in sessions {
            let entry = self.of_session.get_mut(&s).expect("key from the map");
            if entry.member_of.pop().is_some() {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ConnectOptions, Core, Identity, Millis, Now, Output, Request, UserId, Username};

    fn core_with(n: u32) -> (Core, Vec<SessionId>) {
        let mut core = Core::new(Limits::default(), [3; 32]);
        let mut out = Outbox::new();
        let sessions: Vec<SessionId> = (0..n).map(|i| SessionId::new(i, 1)).collect();
        for (i, s) in sessions.iter().enumerate() {
            let identity =
                Identity { user_id: UserId::new(&format!("u{i}")), username: Username::new(&format!("U{i}")) };
            core.connect(*s, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut out);
        }
        (core, sessions)
    }

    fn run(core: &mut Core, session: SessionId, request: PartyRequest) -> Outbox {
        let mut out = Outbox::new();
        core.handle_request(session, Cid(1), Request::Party(request), Now::simulated(Millis(0)), &mut out);
        out
    }

    fn created(out: &Outbox) -> PartyId {
        match &out.outputs()[0] {
            Output::Reply { result: Ok(Reply::Party(PartyReply::Info(s))), .. } => s.party_id,
            other => panic!("expected a snapshot reply, got {other:?}"),
        }
    }

    #[test]
    fn leader_leaving_orders_reply_then_leader_then_leaves_then_pending_list() {
        let (mut core, s) = core_with(4);
        let party_id = created(&run(
            &mut core,
            s[0],
            PartyRequest::Create { open: true, max_size: 4, label: String::new(), hidden: false },
        ));
        run(&mut core, s[1], PartyRequest::Join { party_id });
        run(&mut core, s[2], PartyRequest::Join { party_id });
        run(&mut core, s[0], PartyRequest::Update { party_id, open: Some(false), hidden: None, label: None });
        run(&mut core, s[3], PartyRequest::Join { party_id });
        let out = run(&mut core, s[0], PartyRequest::Leave { party_id });
        let kinds: Vec<String> = out
            .outputs()
            .iter()
            .map(|o| match o {
                Output::Reply { to, .. } => format!("reply {}", to.slot()),
                Output::Event { recipients, event: Event::Party(e), .. } => {
                    let to: Vec<u32> = out.recipients(recipients.clone()).iter().map(|s| s.slot()).collect();
                    let name = format!("{e:?}");
                    format!("{} {to:?}", name.split([' ', '{', '(']).next().unwrap())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["reply 0", "Leader [1, 2]", "Presence [1, 2]", "JoinRequest [1]"]);
    }

    #[test]
    fn party_data_is_one_event_to_every_other_member_and_shares_the_payload() {
        let (mut core, s) = core_with(3);
        let party_id = created(&run(
            &mut core,
            s[0],
            PartyRequest::Create { open: true, max_size: 3, label: String::new(), hidden: false },
        ));
        run(&mut core, s[1], PartyRequest::Join { party_id });
        run(&mut core, s[2], PartyRequest::Join { party_id });
        let data = Bytes::from(vec![5u8; 32]);
        let out = run(&mut core, s[1], PartyRequest::Data { party_id, op_code: 3, data: data.clone() });
        assert_eq!(out.outputs().len(), 2);
        let Output::Event { recipients, event: Event::Party(PartyEvent::Data { data: sent, .. }) } = &out.outputs()[1]
        else {
            panic!("expected one data event")
        };
        assert_eq!(out.recipients(recipients.clone()), &[s[0], s[2]]);
        assert_eq!(sent.as_ptr(), data.as_ptr(), "the payload is shared, not copied");
    }

    #[test]
    fn check_label_accepts_exactly_what_the_search_index_accepts() {
        // The party layer relies on this to treat an index refusal as a bug (PartyIndex::upsert).
        let limits = Limits { party_label_bytes_max: 24, ..Limits::default() };
        let labels = [
            "",
            "{}",
            r#"{"a":1}"#,
            r#"{"a":{"b":[1,"x",true,null]}}"#,
            r#"{"pad":"xxxxxxxxxxxxxxx"}"#,
            r#"{"pad":"xxxxxxxxxxxxxxxx"}"#,
            "[1]",
            "1",
            "\"s\"",
            "null",
            "{not json",
            r#"{"a":1}x"#,
            r#"{"a":1e400}"#,
            r#"{"a":-0}"#,
            " {} ",
        ];
        for label in labels {
            let mut index = SearchIndex::new(limits.search_limits());
            let doc = PartyDoc { open: true, max_size: 4, member_count: 1, label: Some(label) };
            let indexed = index.upsert(1, doc).is_ok();
            assert_eq!(check_label(label, false, &limits).is_ok(), indexed, "{label:?}");
        }
    }

    #[test]
    fn refused_requests_leave_the_tables_as_they_were() {
        let (mut core, s) = core_with(2);
        let party_id = created(&run(
            &mut core,
            s[0],
            PartyRequest::Create { open: false, max_size: 2, label: r#"{"a":1}"#.into(), hidden: false },
        ));
        let digest = core.debug_party_digest();
        let refused = [
            (s[0], PartyRequest::Update { party_id, open: Some(true), hidden: Some(true), label: None }),
            (s[1], PartyRequest::Close { party_id }),
            (s[0], PartyRequest::Create { open: true, max_size: 0, label: String::new(), hidden: false }),
        ];
        for (session, request) in refused {
            let out = run(&mut core, session, request.clone());
            assert!(matches!(out.outputs(), [Output::Reply { result: Err(_), .. }]), "{request:?}");
            assert_eq!(core.debug_party_digest(), digest, "{request:?} changed the tables");
        }
    }
}
