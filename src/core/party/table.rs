//! The party tables and every mutation of them.
//!
//! - `by_id`: each [`Party`] with its members in join order, its pending join requests in
//!   arrival order and its pending invitations in the order they were first sent;
//! - `of_session`: for every session that is in a party or has asked to join one, those parties
//!   in the order it joined (or asked), so a disconnect finds its parties without a scan and
//!   "my parties" keeps join order;
//! - `invited`: for every user with a pending invitation, the parties that invited it, in the
//!   order first sent (L-2: the invitee's list, and what a connecting session is told);
//! - `by_code`: every live party's code (L-3), so a code join is one lookup.
//!
//! Rules read parties through [`PartyTable::get`] and the `find_*` lookups and change them only
//! through the methods below, which keep the tables linked both ways (a member is in its party
//! *and* the session's entry names the party; an invitation is in its party *and* under its
//! invitee; a code is on its party *and* in `by_code`) and record each change that a member
//! could see in the change list (`changes.rs`). Recording is also where the party's version
//! moves (L-9): the first change a commit records for a party bumps it, the next ones of the
//! same commit do not, so a request is one step however many changes and events it makes.
//! Pending join requests, invitations and codes are not in a member's snapshot: they are linked
//! but not recorded, and never move the version.

use super::changes::{EndReason, PartyChange};
use super::lobby::{LobbyData, LobbySettings, ATTRIBUTES_NONE};
use super::{PartyListing, PartySnapshot, PartySummary};
use crate::core::search::PreparedLabel;
use crate::core::{CoreError, IdGenerator, PartyCode, PartyId, Presence, SessionId, TimerId, UnixMillis, UserId};
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
    /// L-4 strategies, L-6 chat flag, L-7 name.
    pub lobby: LobbySettings,
    /// L-5: the global custom data ("" until written).
    pub custom_data: String,
    /// L-5: each member's own custom data, parallel to `members` ("" until written; it leaves
    /// with its member).
    pub member_custom_data: Vec<String>,
    /// L-8: the attributes (a compact JSON object) and the timestamp of their write.
    pub attributes: String,
    pub attributes_timestamp: UnixMillis,
    /// L-6: the last chat message's sequence number (0 before the first) and server time.
    pub chat_sequence: u64,
    pub chat_sent_at: UnixMillis,
    /// L-9: 1 at create, +1 per commit that changed what a member snapshot shows.
    pub version: u64,
    /// The commit whose changes last moved `version` (see [`PartyTable::record`]).
    changed_in: u64,
    /// L-3: unique among live parties (`PartyTable::by_code`).
    pub code: PartyCode,
    /// L-2: pending invitations, in the order first sent (a refresh keeps its place); at most
    /// `invitations_per_party_max`, one per invitee user, none to a user with a member session.
    pub invitations: Vec<Invitation>,
}

/// One pending invitation (L-2). About 80 bytes here, plus its timer and its entry in the
/// invitee's list (the README's memory figure adds them up).
#[derive(Clone, Debug)]
pub(crate) struct Invitation {
    pub invitee: UserId,
    /// The member who sent it last.
    pub inviter: Presence,
    /// What clients are told (wall clock); the timer holds the monotonic deadline.
    pub expires_at: UnixMillis,
    /// The armed expiry timer (`Timeout::InvitationExpiry`), cancelled whenever the invitation
    /// ends otherwise.
    pub timer: TimerId,
}

/// What P-10 may change in a party, all validated.
#[derive(PartialEq)]
pub(super) struct Settings {
    pub open: bool,
    pub hidden: bool,
    pub label: String,
    pub lobby: LobbySettings,
}

impl Party {
    /// A new party led by its only member, `leader`, at version 1.
    pub fn new(id: PartyId, leader: Presence, max_size: u16, settings: Settings, code: PartyCode) -> Party {
        Party {
            id,
            open: settings.open,
            hidden: settings.hidden,
            max_size,
            label: settings.label,
            leader: leader.session_id,
            members: vec![leader],
            pending: VecDeque::new(),
            lobby: settings.lobby,
            custom_data: String::new(),
            member_custom_data: vec![String::new()],
            attributes: ATTRIBUTES_NONE.to_owned(),
            attributes_timestamp: UnixMillis(0),
            chat_sequence: 0,
            chat_sent_at: UnixMillis(0),
            version: 1,
            changed_in: 0,
            code,
            invitations: Vec::new(),
        }
    }

    /// The pending invitation of `user_id`, if any.
    pub fn invitation_index(&self, user_id: &UserId) -> Option<usize> {
        self.invitations.iter().position(|i| &i.invitee == user_id)
    }

    /// Whether a session of `user_id` is a member.
    pub fn has_member_user(&self, user_id: &UserId) -> bool {
        self.members.iter().any(|m| &m.user_id == user_id)
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
            lobby: self.lobby.clone(),
            data: self.data(),
            version: self.version,
        }
    }

    /// L-5, L-8: what the snapshot shows beside the settings.
    pub fn data(&self) -> LobbyData {
        let member_custom_data = self
            .members
            .iter()
            .zip(&self.member_custom_data)
            .filter(|(_, value)| !value.is_empty())
            .map(|(member, value)| (member.session_id, value.clone()))
            .collect();
        LobbyData {
            custom_data: self.custom_data.clone(),
            member_custom_data,
            attributes: self.attributes.clone(),
            attributes_timestamp: self.attributes_timestamp,
        }
    }

    pub fn listing(&self) -> PartyListing {
        PartyListing {
            party_id: self.id,
            open: self.open,
            max_size: self.max_size,
            member_count: self.members.len() as u16,
            label: self.label.clone(),
            name: self.lobby.name.clone(),
            version: self.version,
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
            lobby: self.lobby.clone(),
            version: self.version,
        }
    }

    /// The settings P-10 and L-4 may change, as they are.
    pub fn settings(&self) -> Settings {
        Settings { open: self.open, hidden: self.hidden, label: self.label.clone(), lobby: self.lobby.clone() }
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
    /// Boxed: the map's buckets (up to twice as many as parties) hold a pointer each instead
    /// of a whole `Party` (about 300 bytes), which halves what a party costs the table.
    by_id: HashMap<PartyId, Box<Party>>,
    of_session: HashMap<SessionId, SessionParties>,
    /// Invitee user → the parties with a pending invitation for it, in the order first sent.
    invited: HashMap<UserId, Vec<PartyId>>,
    /// Code → the live party carrying it.
    by_code: HashMap<PartyCode, PartyId>,
    /// Pending invitations in all parties (a gauge metrics read every loop turn, so kept, not
    /// counted).
    invitations_len: usize,
    /// What the current request changed, in order; emptied by `Parties::commit`.
    changes: Vec<PartyChange>,
    /// Commits so far, numbering the current one (see [`PartyTable::record`]).
    commits: u64,
}

impl PartyTable {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Memberships over every party. O(parties): for a metrics scrape, not a hot path.
    pub fn member_count(&self) -> usize {
        self.by_id.values().map(|party| party.members.len()).sum()
    }

    pub fn get(&self, party_id: PartyId) -> Option<&Party> {
        self.by_id.get(&party_id).map(|party| &**party)
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

    /// A code no live party has (L-3). With 31^6 codes, even 100,000 live parties make a retry
    /// a 1-in-8,870 event.
    pub fn fresh_code(&self, ids: &mut IdGenerator) -> PartyCode {
        let mut code = ids.next_party_code();
        while self.by_code.contains_key(&code) {
            code = ids.next_party_code();
        }
        code
    }

    /// The live party with this code.
    pub fn find_by_code(&self, code: PartyCode) -> Option<&Party> {
        self.by_code.get(&code).and_then(|id| self.by_id.get(id)).map(|party| &**party)
    }

    /// The parties with a pending invitation for `user_id`, in the order first sent.
    pub fn invited(&self, user_id: &UserId) -> &[PartyId] {
        self.invited.get(user_id).map_or(&[], Vec::as_slice)
    }

    /// The first party a session is a member of (with one party per user, its only one).
    pub fn first_membership(&self, session: SessionId) -> Option<PartyId> {
        self.of_session.get(&session).and_then(|entry| entry.member_of.first().copied())
    }

    // ---- mutations: each keeps both tables linked and records its change ----

    /// Files a new party (its one member is its leader) at version 1, with its code. `label`
    /// is its label, prepared by the search adapter before anything changed.
    pub fn create(&mut self, mut party: Party, label: PreparedLabel) -> &Party {
        let (id, leader, code) = (party.id, party.leader, party.code);
        debug_assert!(!self.by_id.contains_key(&id), "party id {id} reused");
        debug_assert!(!self.by_code.contains_key(&code), "party code {code} in use");
        // Version 1 is the creating commit's step: later changes of the same commit keep it.
        party.changed_in = self.commits;
        self.by_id.insert(id, Box::new(party));
        self.by_code.insert(code, id);
        self.link(leader, id, Link::Member);
        self.record(PartyChange::Created { party_id: id, label });
        &self.by_id[&id]
    }

    /// A member joins (last in join order). A pending invitation of its user to this party is
    /// consumed (L-2: whatever the path, a joined user is no longer invited); the change carries
    /// it, so the commit disarms its timer and tells the user's other sessions.
    pub fn add_member(&mut self, party_id: PartyId, presence: Presence) -> &Party {
        let session = presence.session_id;
        let party = self.party_mut(party_id);
        let invitation = party.invitation_index(&presence.user_id).map(|i| party.invitations.remove(i));
        party.members.push(presence);
        party.member_custom_data.push(String::new());
        if let Some(invitation) = &invitation {
            self.unlink_invitee(&invitation.invitee, party_id);
            self.invitations_len -= 1;
        }
        self.link(session, party_id, Link::Member);
        self.record(PartyChange::Joined { party_id, session, invitation });
        &self.by_id[&party_id]
    }

    /// The member at `index` leaves (leave, kick, disconnect, a move). The party may be left
    /// empty or without its leader for the rule to settle (dissolve it, or rotate the leader).
    pub fn remove_member(&mut self, party_id: PartyId, index: usize) -> Presence {
        let party = self.party_mut(party_id);
        // L-5: a member's custom data goes with it.
        party.member_custom_data.remove(index);
        let gone = party.members.remove(index);
        self.unlink(gone.session_id, party_id, Link::Member);
        self.record(PartyChange::Left { party_id, session: gone.session_id });
        gone
    }

    pub fn set_leader(&mut self, party_id: PartyId, session: SessionId) -> &Party {
        let party = self.party_mut(party_id);
        debug_assert!(party.is_member(session), "the new leader {session} is a member of {party_id}");
        debug_assert!(party.leader != session, "{session} already leads {party_id}");
        party.leader = session;
        self.record(PartyChange::Leader { party_id, session });
        &self.by_id[&party_id]
    }

    /// P-10 and L-4: new settings, all validated; `label` is prepared when the label or the
    /// hidden flag changed, `None` when they did not. Settings equal to the current ones change
    /// nothing and record nothing (the version stays, L-9).
    pub fn set_settings(&mut self, party_id: PartyId, settings: Settings, label: Option<PreparedLabel>) -> &Party {
        let party = self.party_mut(party_id);
        if party.settings() != settings {
            party.open = settings.open;
            party.hidden = settings.hidden;
            party.label = settings.label;
            party.lobby = settings.lobby;
            self.record(PartyChange::Settings { party_id, label });
        }
        &self.by_id[&party_id]
    }

    /// L-5: the global custom data (`member` `None`) or the custom data of the member at index
    /// `member` is now `value` (validated). An equal value changes nothing and records nothing.
    pub fn set_custom_data(&mut self, party_id: PartyId, member: Option<usize>, value: String) -> &Party {
        let party = self.party_mut(party_id);
        let slot = match member {
            Some(index) => &mut party.member_custom_data[index],
            None => &mut party.custom_data,
        };
        if *slot != value {
            *slot = value;
            self.record(PartyChange::CustomData { party_id });
        }
        &self.by_id[&party_id]
    }

    /// L-8: the attributes written at `timestamp` (validated: newer than the stored one).
    pub fn set_attributes(&mut self, party_id: PartyId, attributes: String, timestamp: UnixMillis) -> &Party {
        let party = self.party_mut(party_id);
        debug_assert!(timestamp > party.attributes_timestamp, "attributes only move forward in time");
        party.attributes = attributes;
        party.attributes_timestamp = timestamp;
        self.record(PartyChange::Attributes { party_id });
        &self.by_id[&party_id]
    }

    /// L-6: the next chat message's sequence number and server time: +1, and the later of the
    /// party's last message and `wall`, so neither goes backwards whatever the clock does. Not a
    /// change a snapshot shows: nothing is recorded, the version stays.
    pub fn next_chat_message(&mut self, party_id: PartyId, wall: UnixMillis) -> (u64, UnixMillis) {
        let party = self.party_mut(party_id);
        party.chat_sequence += 1;
        party.chat_sent_at = party.chat_sent_at.max(wall);
        (party.chat_sequence, party.chat_sent_at)
    }

    /// L-3: the party's code is now `code` (fresh); the old one is dead at once.
    pub fn set_code(&mut self, party_id: PartyId, code: PartyCode) -> &Party {
        debug_assert!(!self.by_code.contains_key(&code), "party code {code} in use");
        let party = self.party_mut(party_id);
        let old = std::mem::replace(&mut party.code, code);
        self.by_code.remove(&old);
        self.by_code.insert(code, party_id);
        &self.by_id[&party_id]
    }

    /// L-2: a new pending invitation (validated: no pending one for that user, none of its
    /// sessions a member, both bounds respected).
    pub fn add_invitation(&mut self, party_id: PartyId, invitation: Invitation) {
        let invitee = invitation.invitee.clone();
        let party = self.party_mut(party_id);
        debug_assert!(party.invitation_index(&invitee).is_none(), "{invitee:?} invited twice to {party_id}");
        party.invitations.push(invitation);
        self.invited.entry(invitee).or_default().push(party_id);
        self.invitations_len += 1;
    }

    /// L-2: the pending invitation at `index` is refreshed: new inviter, expiry and timer. It
    /// keeps its place in both lists. Hands back the old timer to disarm.
    pub fn refresh_invitation(
        &mut self,
        party_id: PartyId,
        index: usize,
        inviter: Presence,
        expires_at: UnixMillis,
        timer: TimerId,
    ) -> TimerId {
        let invitation = &mut self.party_mut(party_id).invitations[index];
        invitation.inviter = inviter;
        invitation.expires_at = expires_at;
        std::mem::replace(&mut invitation.timer, timer)
    }

    /// L-2: the pending invitation at `index` ends (rejected, cancelled, expired); the caller
    /// disarms its timer (unless it is the one firing) and announces it.
    pub fn remove_invitation(&mut self, party_id: PartyId, index: usize) -> Invitation {
        let invitation = self.party_mut(party_id).invitations.remove(index);
        self.unlink_invitee(&invitation.invitee, party_id);
        self.invitations_len -= 1;
        invitation
    }

    /// Pending invitations in all parties.
    pub fn invitations_len(&self) -> usize {
        self.invitations_len
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

    /// Removes a party from every table (by id, by code, each member's, requester's and
    /// invitee's entry) and hands it back for the events that announce its end. Its pending
    /// invitations travel in the change, so the commit disarms their timers and tells the
    /// invitees (`party_gone`); the party handed back has none.
    pub fn dissolve(&mut self, party_id: PartyId, reason: EndReason) -> Party {
        // The end is a step the members see (their `PartyRemoved` carries the version): bump
        // before the party leaves the table, unless this commit already did.
        self.bump(party_id);
        // Invariant: callers found the party in the same request.
        let mut party = self.by_id.remove(&party_id).expect("party validated before dissolving");
        self.by_code.remove(&party.code);
        for m in &party.members {
            self.unlink(m.session_id, party_id, Link::Member);
        }
        for p in &party.pending {
            self.unlink(p.session_id, party_id, Link::Requested);
        }
        let invitations = std::mem::take(&mut party.invitations);
        for invitation in &invitations {
            self.unlink_invitee(&invitation.invitee, party_id);
        }
        self.invitations_len -= invitations.len();
        self.changes.push(PartyChange::Dissolved { party_id, reason, invitations });
        *party
    }

    /// Records a change a member could see, moving the party's version on the first change of
    /// this commit (L-9). Every recording mutation goes through here.
    fn record(&mut self, change: PartyChange) {
        self.bump(change.party_id());
        self.changes.push(change);
    }

    /// +1 to the party's version, once per commit.
    fn bump(&mut self, party_id: PartyId) {
        let commit = self.commits;
        if let Some(party) = self.by_id.get_mut(&party_id) {
            if party.changed_in != commit {
                party.changed_in = commit;
                party.version += 1;
            }
        }
    }

    fn unlink_invitee(&mut self, invitee: &UserId, party_id: PartyId) {
        let Some(parties) = self.invited.get_mut(invitee) else {
            debug_assert!(false, "{invitee:?} not indexed as invited");
            return;
        };
        if let Some(i) = parties.iter().position(|id| *id == party_id) {
            // `remove`, not `swap_remove`: the list keeps the order invitations were sent in.
            parties.remove(i);
        } else {
            debug_assert!(false, "{invitee:?} not indexed as invited to {party_id}");
        }
        if parties.is_empty() {
            self.invited.remove(invitee);
        }
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
    /// request, and empties the list (keeping its buffer, so a commit allocates nothing). The
    /// next request's changes belong to the next commit (L-9 versions move once per commit).
    pub fn drain_changes(&mut self, mut apply: impl FnMut(&PartyTable, PartyChange)) {
        if self.changes.is_empty() {
            return;
        }
        self.commits += 1;
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
        self.by_id.values().map(|party| &**party)
    }

    pub fn check_invariants(&self, limits: &Limits) {
        let mut members_total = 0;
        let mut pending_total = 0;
        let mut invitations_total = 0;
        for (id, party) in &self.by_id {
            assert_eq!(party.id, *id, "party filed under another id");
            self.check_party(party, limits);
            members_total += party.members.len();
            pending_total += party.pending.len();
            invitations_total += party.invitations.len();
        }
        // L-3: codes unique and mapped both ways (each party's code maps to it, and the map
        // holds nothing else: equal sizes and an injection make a bijection).
        assert_eq!(self.by_code.len(), self.by_id.len(), "the code index holds a dead or duplicate code");
        // L-2: the invitee index lists exactly the parties' invitations.
        let mut indexed_invitations = 0;
        for (user_id, parties) in &self.invited {
            assert!(!parties.is_empty(), "empty invitation list kept for {user_id:?}");
            assert!(parties.len() <= limits.invitations_per_user_max, "{user_id:?} has too many invitations");
            for (i, id) in parties.iter().enumerate() {
                assert!(!parties[..i].contains(id), "{user_id:?} indexed twice as invited to {id}");
                let party = self.by_id.get(id);
                assert!(
                    party.is_some_and(|p| p.invitation_index(user_id).is_some()),
                    "{user_id:?} indexed as invited to {id}, which has no invitation for it"
                );
            }
            indexed_invitations += parties.len();
        }
        assert_eq!(invitations_total, indexed_invitations, "invitation index disagrees with the parties");
        assert_eq!(self.invitations_len, invitations_total, "the invitation count disagrees with the parties");
        if limits.one_party_per_user {
            // L-1: every user has at most one member session, in one party.
            let mut users: HashMap<&UserId, PartyId> = HashMap::new();
            for party in self.by_id.values() {
                for m in &party.members {
                    let other = users.insert(&m.user_id, party.id);
                    assert!(other.is_none(), "one party per user: {:?} is a member twice", m.user_id);
                }
            }
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
        assert_eq!(party.member_custom_data.len(), party.members.len(), "party {id}: custom data per member");
        let custom = std::iter::once(&party.custom_data).chain(&party.member_custom_data);
        assert!(custom.into_iter().all(|v| v.len() <= limits.party_custom_data_bytes_max), "party {id}: custom data");
        assert!(party.lobby.name.len() <= limits.party_name_bytes_max, "party {id}: name over its bound");
        assert!(party.attributes.len() <= limits.party_attributes_bytes_max.max(2), "party {id}: attributes");
        assert!(party.chat_sequence > 0 || party.chat_sent_at.0 == 0, "party {id}: a chat time without a message");
        assert!(party.version >= 1, "party {id} below version 1");
        assert_eq!(self.by_code.get(&party.code), Some(&id), "party {id}: its code {} is not indexed", party.code);
        assert!(party.invitations.len() <= limits.invitations_per_party_max, "party {id} has too many invitations");
        for (i, invitation) in party.invitations.iter().enumerate() {
            let invitee = &invitation.invitee;
            assert!(
                !party.invitations[..i].iter().any(|o| &o.invitee == invitee),
                "party {id}: two invitations of {invitee:?}"
            );
            assert!(!party.has_member_user(invitee), "party {id}: an invitation to {invitee:?}, a member");
            assert!(
                self.invited.get(invitee).is_some_and(|parties| parties.contains(&id)),
                "party {id}: invitee {invitee:?} not indexed"
            );
        }
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
        (&party.lobby, party.version, party.code).hash(h);
        (&party.custom_data, &party.member_custom_data, &party.attributes, party.attributes_timestamp).hash(h);
        (party.chat_sequence, party.chat_sent_at).hash(h);
        for invitation in &party.invitations {
            (&invitation.invitee, invitation.expires_at, invitation.timer).hash(h);
            presence(h, &invitation.inviter);
        }
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

    /// Every pending invitation, with its party: for the core's timer cross-check.
    pub fn invitations(&self) -> impl Iterator<Item = (PartyId, &Invitation)> {
        self.by_id.values().flat_map(|party| party.invitations.iter().map(move |i| (party.id, i)))
    }

    /// Test hook: forgets one invitee's index entry, so the canary can prove that
    /// `check_invariants` notices. Returns whether there was an invitation to corrupt.
    pub fn corrupt_invitations_for_test(&mut self) -> bool {
        let Some(user_id) = self.invited.keys().min().cloned() else { return false };
        self.invited.remove(&user_id);
        true
    }

    /// Test hook: files one party's code under another code, as a regenerate that forgot the
    /// old entry would. Returns whether there was a party.
    pub fn corrupt_codes_for_test(&mut self) -> bool {
        let Some(id) = self.by_id.keys().min().copied() else { return false };
        let code = self.by_id[&id].code;
        let other = PartyCode::from_indexes([7; PartyCode::LEN]);
        if other == code {
            self.by_code.remove(&code);
        } else {
            self.by_code.insert(other, id);
        }
        true
    }

    /// Test hook for the simulation's version check: moves one party's version without a change.
    pub fn corrupt_version_for_test(&mut self) -> bool {
        let Some(id) = self.by_id.keys().min().copied() else { return false };
        self.party_mut(id).version += 1;
        true
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
