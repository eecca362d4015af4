//! The party tables and every mutation of them.
//!
//! - `by_id`: each [`Party`] with its members in join order and its pending join requests in
//!   arrival order;
//! - `of_session`: for every session that is in a party or has asked to join one, those parties
//!   in the order it joined (or asked), so a disconnect finds its parties without a scan and
//!   "my parties" keeps join order.
//!
//! Rules read parties through [`PartyTable::get`] and the `find_*` lookups and change them only
//! through the methods below, which keep both tables linked (a member is in its party *and*
//! the session's entry names the party) and record each change that a member could see in
//! the change list (`changes.rs`). Pending join requests are not in a member's snapshot, so
//! they are linked but not recorded.

use super::changes::{EndReason, PartyChange};
use super::{PartyListing, PartySnapshot, PartySummary};
use crate::core::search::PreparedLabel;
use crate::core::{CoreError, IdGenerator, PartyId, Presence, SessionId};
use crate::limits::Limits;
use std::collections::{HashMap, VecDeque};

/// One party. Fields are read by the rules; only [`PartyTable`] changes them.
pub(super) struct Party {
    pub id: PartyId,
    pub open: bool,
    pub hidden: bool,
    pub max_size: u16,
    /// A JSON object, or empty for none.
    pub label: String,
    pub leader: SessionId,
    /// Join order: index 0 has the longest tenure.
    pub members: Vec<Presence>,
    /// Join requests, oldest first; at most `max_size`, at most one per user.
    pub pending: VecDeque<Presence>,
}

/// What P-10 may change in a party, all validated.
pub(super) struct Settings {
    pub open: bool,
    pub hidden: bool,
    pub label: String,
}

impl Party {
    /// A new party led by its only member, `leader`.
    pub fn new(id: PartyId, leader: Presence, max_size: u16, settings: Settings) -> Party {
        Party {
            id,
            open: settings.open,
            hidden: settings.hidden,
            max_size,
            label: settings.label,
            leader: leader.session_id,
            members: vec![leader],
            pending: VecDeque::new(),
        }
    }

    pub fn member_index(&self, session: SessionId) -> Option<usize> {
        self.members.iter().position(|m| m.session_id == session)
    }

    pub fn is_member(&self, session: SessionId) -> bool {
        self.member_index(session).is_some()
    }

    pub fn pending_index(&self, session: SessionId) -> Option<usize> {
        self.pending.iter().position(|p| p.session_id == session)
    }

    pub fn leader_presence(&self) -> &Presence {
        // Invariant: the leader is a member (check_invariants).
        self.members.iter().find(|m| m.session_id == self.leader).expect("leader is a member")
    }

    /// Full when every seat is taken. Accepted requests become members at once, so there are no
    /// accepted-but-pending seats to count (SPEC P-2's "reserved" seats are always zero here).
    pub fn is_full(&self) -> bool {
        self.members.len() >= usize::from(self.max_size)
    }

    pub fn member_sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.members.iter().map(|m| m.session_id)
    }

    pub fn snapshot(&self) -> PartySnapshot {
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

    pub fn listing(&self) -> PartyListing {
        PartyListing {
            party_id: self.id,
            open: self.open,
            max_size: self.max_size,
            member_count: self.members.len() as u16,
            label: self.label.clone(),
        }
    }

    pub fn summary(&self) -> PartySummary {
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
pub(super) struct SessionParties {
    pub member_of: Vec<PartyId>,
    pub requested: Vec<PartyId>,
}

impl SessionParties {
    fn count(&self) -> usize {
        self.member_of.len() + self.requested.len()
    }
}

#[derive(Copy, Clone)]
enum Link {
    Member,
    Requested,
}

#[derive(Default)]
pub(super) struct PartyTable {
    by_id: HashMap<PartyId, Party>,
    of_session: HashMap<SessionId, SessionParties>,
    /// What the current request changed, in order; emptied by `Parties::commit`.
    changes: Vec<PartyChange>,
}

impl PartyTable {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn get(&self, party_id: PartyId) -> Option<&Party> {
        self.by_id.get(&party_id)
    }

    // ---- lookups shared by the rules ----

    pub fn find(&self, party_id: PartyId) -> Result<&Party, CoreError> {
        self.get(party_id).ok_or(CoreError::PartyNotFound)
    }

    pub fn find_as_member(&self, party_id: PartyId, me: SessionId) -> Result<&Party, CoreError> {
        let party = self.find(party_id)?;
        if !party.is_member(me) {
            return Err(CoreError::PartyNotMember);
        }
        Ok(party)
    }

    /// P-12: leader-only operations. A non-member gets "not member", a member "not leader".
    pub fn find_as_leader(&self, party_id: PartyId, me: SessionId) -> Result<&Party, CoreError> {
        let party = self.find_as_member(party_id, me)?;
        if party.leader != me {
            return Err(CoreError::PartyNotLeader);
        }
        Ok(party)
    }

    /// The session's parties (none when it is in none).
    pub fn parties_of(&self, session: SessionId) -> Option<&SessionParties> {
        self.of_session.get(&session)
    }

    /// `parties_per_session_max`: may the session join or ask to join one more party?
    pub fn check_room_for_one_more(&self, limits: &Limits, session: SessionId) -> Result<(), CoreError> {
        if self.of_session.get(&session).map_or(0, SessionParties::count) >= limits.parties_per_session_max {
            return Err(CoreError::PartyTooManyParties(limits.parties_per_session_max));
        }
        Ok(())
    }

    /// An id no party has.
    pub fn fresh_id(&self, ids: &mut IdGenerator) -> PartyId {
        let mut id = ids.next_party_id();
        while self.by_id.contains_key(&id) {
            id = ids.next_party_id(); // 2^-128 odds; cheap to rule out all the same
        }
        id
    }

    // ---- mutations: each keeps both tables linked and records its change ----

    /// Files a new party (its one member is its leader). `label` is its label, prepared by
    /// the search adapter before anything changed.
    pub fn create(&mut self, party: Party, label: PreparedLabel) -> &Party {
        let (id, leader) = (party.id, party.leader);
        debug_assert!(!self.by_id.contains_key(&id), "party id {id} reused");
        self.by_id.insert(id, party);
        self.link(leader, id, Link::Member);
        self.changes.push(PartyChange::Created { party_id: id, label });
        &self.by_id[&id]
    }

    /// A member joins (last in join order).
    pub fn add_member(&mut self, party_id: PartyId, presence: Presence) -> &Party {
        let session = presence.session_id;
        self.party_mut(party_id).members.push(presence);
        self.link(session, party_id, Link::Member);
        self.changes.push(PartyChange::Joined { party_id, session });
        &self.by_id[&party_id]
    }

    /// The member at `index` leaves (leave, kick, disconnect). The party may be left empty or
    /// without its leader for the rule to settle (dissolve it, or rotate the leader).
    pub fn remove_member(&mut self, party_id: PartyId, index: usize) -> Presence {
        let gone = self.party_mut(party_id).members.remove(index);
        self.unlink(gone.session_id, party_id, Link::Member);
        self.changes.push(PartyChange::Left { party_id, session: gone.session_id });
        gone
    }

    pub fn set_leader(&mut self, party_id: PartyId, session: SessionId) -> &Party {
        let party = self.party_mut(party_id);
        debug_assert!(party.is_member(session), "the new leader {session} is a member of {party_id}");
        party.leader = session;
        self.changes.push(PartyChange::Leader { party_id, session });
        &self.by_id[&party_id]
    }

    /// P-10: new settings, all validated; `label` is prepared when the label or the hidden
    /// flag changed, `None` when only the open flag may have.
    pub fn set_settings(&mut self, party_id: PartyId, settings: Settings, label: Option<PreparedLabel>) -> &Party {
        let party = self.party_mut(party_id);
        party.open = settings.open;
        party.hidden = settings.hidden;
        party.label = settings.label;
        self.changes.push(PartyChange::Settings { party_id, label });
        &self.by_id[&party_id]
    }

    /// A join request queues (last).
    pub fn add_request(&mut self, party_id: PartyId, presence: Presence) -> &Party {
        let session = presence.session_id;
        self.party_mut(party_id).pending.push_back(presence);
        self.link(session, party_id, Link::Requested);
        &self.by_id[&party_id]
    }

    /// The join request at `index` leaves the queue (accepted, rejected, or turned into a
    /// membership by an open join).
    pub fn remove_request(&mut self, party_id: PartyId, index: usize) -> Presence {
        // Invariant: callers found `index` in this party's queue in the same request.
        let presence = self.party_mut(party_id).pending.remove(index).expect("index from pending_index");
        self.unlink(presence.session_id, party_id, Link::Requested);
        presence
    }

    /// A session's pending join request goes, silently (leave, or disconnect).
    pub fn withdraw_request(&mut self, party_id: PartyId, session: SessionId) {
        match self.get(party_id).and_then(|party| party.pending_index(session)) {
            Some(index) => {
                self.remove_request(party_id, index);
            }
            None => {
                debug_assert!(false, "{session} indexed as requesting {party_id} but not pending");
                self.unlink(session, party_id, Link::Requested);
            }
        }
    }

    /// Removes a party from every table (by id, each member's and requester's entry) and hands
    /// it back for the events that announce its end.
    pub fn dissolve(&mut self, party_id: PartyId, reason: EndReason) -> Party {
        // Invariant: callers found the party in the same request.
        let party = self.by_id.remove(&party_id).expect("party validated before dissolving");
        for m in &party.members {
            self.unlink(m.session_id, party_id, Link::Member);
        }
        for p in &party.pending {
            self.unlink(p.session_id, party_id, Link::Requested);
        }
        self.changes.push(PartyChange::Dissolved { party_id, reason });
        party
    }

    fn party_mut(&mut self, party_id: PartyId) -> &mut Party {
        // Invariant: callers validated that the party exists in the same request.
        self.by_id.get_mut(&party_id).expect("party validated before mutation")
    }

    fn link(&mut self, session: SessionId, party_id: PartyId, link: Link) {
        let entry = self.of_session.entry(session).or_default();
        match link {
            Link::Member => entry.member_of.push(party_id),
            Link::Requested => entry.requested.push(party_id),
        }
    }

    fn unlink(&mut self, session: SessionId, party_id: PartyId, link: Link) {
        let Some(entry) = self.of_session.get_mut(&session) else {
            debug_assert!(false, "{session} not indexed");
            return;
        };
        let list = match link {
            Link::Member => &mut entry.member_of,
            Link::Requested => &mut entry.requested,
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

    // ---- the change list ----

    /// Changes recorded and not yet committed.
    pub fn changes_pending(&self) -> usize {
        self.changes.len()
    }

    /// Hands every recorded change, in order, to `apply` with the table as it is after the
    /// request, and empties the list (keeping its buffer, so a commit allocates nothing).
    pub fn drain_changes(&mut self, mut apply: impl FnMut(&PartyTable, PartyChange)) {
        if self.changes.is_empty() {
            return;
        }
        let mut changes = std::mem::take(&mut self.changes);
        for change in changes.drain(..) {
            apply(self, change);
        }
        self.changes = changes;
    }

    // ---- checks and inspection ----

    /// Every session the tables name.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.of_session.keys().copied()
    }

    /// Every party.
    pub fn parties(&self) -> impl Iterator<Item = &Party> {
        self.by_id.values()
    }

    pub fn check_invariants(&self, limits: &Limits) {
        let mut members_total = 0;
        let mut pending_total = 0;
        for (id, party) in &self.by_id {
            assert_eq!(party.id, *id, "party filed under another id");
            self.check_party(party, limits);
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
    }

    /// One party's invariants (see `check_party`); nothing for a party that is gone.
    pub fn check_one(&self, party_id: PartyId, limits: &Limits) {
        if let Some(party) = self.by_id.get(&party_id) {
            assert_eq!(party.id, party_id, "party filed under another id");
            self.check_party(party, limits);
        }
    }

    /// One party's invariants, and its links from the session index (the other direction is
    /// checked from the index's side). Costs O(members² + pending²) with members ≤ 256, so a
    /// sweep limited to the parties a request changed stays cheap.
    fn check_party(&self, party: &Party, limits: &Limits) {
        let id = party.id;
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
                entry.is_some_and(|e| e.member_of.contains(&id)),
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
                entry.is_some_and(|e| e.requested.contains(&id)),
                "party {id}: requester {} not indexed",
                p.session_id
            );
        }
    }

    /// Table sizes: (parties, sessions indexed).
    pub fn sizes(&self) -> (usize, usize) {
        (self.by_id.len(), self.of_session.len())
    }

    /// Party ids, sorted.
    pub fn ids(&self) -> Vec<PartyId> {
        let mut ids: Vec<PartyId> = self.by_id.keys().copied().collect();
        ids.sort();
        ids
    }

    /// A hash of every table, independent of `HashMap` order.
    pub fn digest(&self, h: &mut impl std::hash::Hasher) {
        for id in self.ids() {
            self.digest_party(&self.by_id[&id], h);
        }
        let mut sessions: Vec<&SessionId> = self.of_session.keys().collect();
        sessions.sort();
        for s in sessions {
            self.digest_session(*s, h);
        }
    }

    /// A hash of one party (or of its absence) and of one session's index entry: what a
    /// request naming that party and sent by that session may change, for checks that do not
    /// hash every table on every step (the fuzz target's).
    pub fn digest_touched(&self, party_id: PartyId, session: SessionId, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        match self.by_id.get(&party_id) {
            Some(party) => self.digest_party(party, h),
            None => party_id.hash(h),
        }
        self.digest_session(session, h);
    }

    fn digest_party(&self, party: &Party, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        fn presence(h: &mut impl std::hash::Hasher, p: &Presence) {
            p.session_id.hash(h);
            p.user_id.hash(h);
            p.username.hash(h);
        }
        (party.id, party.open, party.hidden, party.max_size, &party.label, party.leader).hash(h);
        party.members.len().hash(h);
        party.members.iter().for_each(|p| presence(h, p));
        party.pending.len().hash(h);
        party.pending.iter().for_each(|p| presence(h, p));
    }

    fn digest_session(&self, session: SessionId, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        if let Some(entry) = self.of_session.get(&session) {
            (session, &entry.member_of, &entry.requested).hash(h);
        }
    }

    /// Test hook: forgets one membership in the session index, so the canary can prove that
    /// `check_invariants` notices. Returns whether there was anything to corrupt.
    pub fn corrupt_for_test(&mut self) -> bool {
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
