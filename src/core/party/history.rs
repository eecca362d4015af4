//! Party history (SPEC O-3): a record per party, built from the change list as the party
//! lives, finished when it ends, kept in memory (the most recent `history_records_max`) and
//! handed to the driver, which appends each as a JSON line to the history file.
//!
//! Fed by one call in [`Parties::commit`](super::Parties)'s walk ([`PartyHistory::apply`]):
//! `Created` opens a record (the creator is its first member and leader), `Joined` and `Left`
//! add members with their join and leave times, `Leader` adds a leader, `Dissolved` finishes
//! the record with its end reason. Times are the wall clock of the request that made the
//! change (`ctx.now.wall`), never earlier than the record's previous time, so a wall clock
//! stepping back cannot make a member leave before it joined.
//!
//! Tables:
//! - `live`: party → its record in progress, for every party in the party table;
//! - `by_creation`: creation sequence → party, the stable order the admin API lists parties
//!   in (a new party comes last; an ended one leaves no gap in the sequence others keep);
//! - `recent`: finished records, oldest first, at most `history_records_max`;
//! - `finished`: records finished since the driver last took them ([`PartyHistory::take_finished`]).
//!
//! Bounds: a live record holds at most `history_entries_per_party_max` entries (members over
//! time plus leaders over time). Past it the oldest entry of a member who has left goes first,
//! then the oldest earlier leader, and the record says `truncated`: the members present and
//! the current leader are always listed (the bound exceeds `party_members_max`, validated at
//! startup, so there is always an older entry to drop).
//!
//! A graceful shutdown finishes every live record at once with reason `shutdown`
//! ([`PartyHistory::record_shutdown`]); the parties stay in the table while their sessions
//! drain, and their later changes are not recorded again.

use super::changes::{EndReason, PartyChange};
use super::table::PartyTable;
use crate::core::{PartyId, Presence, SessionId, UnixMillis, UserId};
use crate::limits::Limits;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Why a party's history record ended (the `end_reason` of its JSON line).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HistoryEndReason {
    /// P-8: the leader closed it.
    Closed,
    /// O-1: an operator closed it through the admin API.
    ClosedByAdmin,
    /// P-6: its last member left, disconnected or was kicked.
    Empty,
    /// It was alive when a graceful shutdown began.
    Shutdown,
}

impl HistoryEndReason {
    /// The word in the JSON line.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEndReason::Closed => "closed",
            HistoryEndReason::ClosedByAdmin => "closed_by_admin",
            HistoryEndReason::Empty => "empty",
            HistoryEndReason::Shutdown => "shutdown",
        }
    }
}

impl From<EndReason> for HistoryEndReason {
    fn from(reason: EndReason) -> HistoryEndReason {
        match reason {
            EndReason::Closed => HistoryEndReason::Closed,
            EndReason::ClosedByAdmin => HistoryEndReason::ClosedByAdmin,
            EndReason::Emptied => HistoryEndReason::Empty,
        }
    }
}

/// One membership of a session in a party: when it began and, once it did, ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryMember {
    pub presence: Presence,
    pub joined_at: UnixMillis,
    /// `None` while the session is a member; every member of a finished record has one (the
    /// party's end, for those still in it).
    pub left_at: Option<UnixMillis>,
}

/// A session that led the party from `since` (until the next leader's `since`, or the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLeader {
    pub presence: Presence,
    pub since: UnixMillis,
}

/// A finished party's history. Lobby features add their fields (name, code) here as they land.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRecord {
    /// Order in which records finished, from 1 for this process (the admin API's cursor).
    pub seq: u64,
    pub party_id: PartyId,
    pub max_size: u16,
    pub created_at: UnixMillis,
    pub ended_at: UnixMillis,
    pub end_reason: HistoryEndReason,
    /// In the order they took the lead.
    pub leaders: Vec<HistoryLeader>,
    /// In join order (a session that joined twice has two entries).
    pub members: Vec<HistoryMember>,
    /// Entries were dropped to stay within `history_entries_per_party_max`.
    pub truncated: bool,
}

impl HistoryRecord {
    /// Whether `user_id` led or was a member of the party (as far as the record lists).
    pub fn names_user(&self, user_id: &UserId) -> bool {
        self.members.iter().any(|m| m.presence.user_id == *user_id)
            || self.leaders.iter().any(|l| l.presence.user_id == *user_id)
    }
}

/// What the admin API asks of the history: records newest first, filtered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub party_id: Option<PartyId>,
    /// Records in which the user was a member or leader.
    pub user_id: Option<UserId>,
    /// Records of parties alive at some point in `since..=until` (either end open).
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// Only records that finished before the one with this `seq` (a page's cursor).
    pub before_seq: Option<u64>,
}

impl HistoryQuery {
    fn matches(&self, record: &HistoryRecord) -> bool {
        self.before_seq.is_none_or(|before| record.seq < before)
            && self.party_id.is_none_or(|id| record.party_id == id)
            && self.since.is_none_or(|since| record.ended_at >= since)
            && self.until.is_none_or(|until| record.created_at <= until)
            && self.user_id.as_ref().is_none_or(|user| record.names_user(user))
    }
}

/// A live party's record in progress.
struct Live {
    created_seq: u64,
    created_at: UnixMillis,
    /// The latest time recorded, so later times never go back.
    last_at: UnixMillis,
    max_size: u16,
    leaders: VecDeque<HistoryLeader>,
    members: VecDeque<HistoryMember>,
    truncated: bool,
    /// Already finished by a shutdown: its later changes are not recorded.
    recorded: bool,
}

impl Live {
    fn entries(&self) -> usize {
        self.leaders.len() + self.members.len()
    }

    /// A time for a new entry: `now`, or the latest time recorded if the clock went back.
    fn stamp(&mut self, now: UnixMillis) -> UnixMillis {
        self.last_at = self.last_at.max(now);
        self.last_at
    }

    /// The open membership of `session` (its latest entry without a leave time).
    fn open_member(&self, session: SessionId) -> Option<usize> {
        self.members.iter().rposition(|m| m.presence.session_id == session && m.left_at.is_none())
    }

    /// Drops the oldest entries past `entries_max`: members who left first, then earlier
    /// leaders (never the current one).
    fn trim(&mut self, entries_max: usize) {
        while self.entries() > entries_max {
            if let Some(i) = self.members.iter().position(|m| m.left_at.is_some()) {
                self.members.remove(i);
            } else if self.leaders.len() > 1 {
                self.leaders.pop_front();
            } else {
                // Unreachable while history_entries_per_party_max > party_members_max
                // (validated): members present ≤ max_size, plus one leader.
                debug_assert!(false, "a record over its bound with nothing to drop");
                return;
            }
            self.truncated = true;
        }
    }

    fn finish(&self, seq: u64, party_id: PartyId, ended_at: UnixMillis, reason: HistoryEndReason) -> HistoryRecord {
        let members = self
            .members
            .iter()
            .map(|m| HistoryMember { left_at: Some(m.left_at.unwrap_or(ended_at)), ..m.clone() })
            .collect();
        HistoryRecord {
            seq,
            party_id,
            max_size: self.max_size,
            created_at: self.created_at,
            ended_at,
            end_reason: reason,
            leaders: self.leaders.iter().cloned().collect(),
            members,
            truncated: self.truncated,
        }
    }
}

#[derive(Default)]
pub(crate) struct PartyHistory {
    live: HashMap<PartyId, Live>,
    by_creation: BTreeMap<u64, PartyId>,
    next_created_seq: u64,
    next_finished_seq: u64,
    recent: VecDeque<Arc<HistoryRecord>>,
    finished: Vec<Arc<HistoryRecord>>,
    /// Records finished since the start (`huddle_history_records_total`).
    pub records_total: u64,
}

impl PartyHistory {
    /// One change of the commit walk, with the table as the request left it.
    pub(super) fn apply(&mut self, table: &PartyTable, change: &PartyChange, now: UnixMillis, limits: &Limits) {
        match change {
            PartyChange::Created { party_id, .. } => {
                let Some(party) = table.get(*party_id) else {
                    debug_assert!(false, "{party_id} was created and is not in the table");
                    return;
                };
                self.next_created_seq += 1;
                let leader = party.leader_presence().clone();
                let live = Live {
                    created_seq: self.next_created_seq,
                    created_at: now,
                    last_at: now,
                    max_size: party.max_size,
                    leaders: VecDeque::from([HistoryLeader { presence: leader.clone(), since: now }]),
                    members: VecDeque::from([HistoryMember { presence: leader, joined_at: now, left_at: None }]),
                    truncated: false,
                    recorded: false,
                };
                self.by_creation.insert(live.created_seq, *party_id);
                let previous = self.live.insert(*party_id, live);
                debug_assert!(previous.is_none(), "party id {party_id} reused while live");
            }
            PartyChange::Joined { party_id, session, .. } => {
                let Some(live) = self.live.get_mut(party_id).filter(|live| !live.recorded) else { return };
                // The joiner is a member after the request (the commit's postcondition), unless
                // the same request ended the party: then there is nothing left to record.
                let presence = table.get(*party_id).and_then(|p| p.members.iter().find(|m| m.session_id == *session));
                let Some(presence) = presence.cloned() else { return };
                let joined_at = live.stamp(now);
                live.members.push_back(HistoryMember { presence, joined_at, left_at: None });
                live.trim(limits.history_entries_per_party_max);
            }
            PartyChange::Left { party_id, session } => {
                let Some(live) = self.live.get_mut(party_id).filter(|live| !live.recorded) else { return };
                let left_at = live.stamp(now);
                match live.open_member(*session) {
                    Some(i) => live.members[i].left_at = Some(left_at),
                    None => debug_assert!(live.truncated, "{session} left {party_id} without a recorded join"),
                }
            }
            PartyChange::Leader { party_id, session } => {
                let Some(live) = self.live.get_mut(party_id).filter(|live| !live.recorded) else { return };
                let Some(i) = live.open_member(*session) else {
                    debug_assert!(false, "the new leader {session} of {party_id} has no open membership");
                    return;
                };
                let presence = live.members[i].presence.clone();
                let since = live.stamp(now);
                live.leaders.push_back(HistoryLeader { presence, since });
                live.trim(limits.history_entries_per_party_max);
            }
            PartyChange::Dissolved { party_id, reason, .. } => {
                let Some(live) = self.live.remove(party_id) else {
                    debug_assert!(false, "{party_id} ended without a live record");
                    return;
                };
                self.by_creation.remove(&live.created_seq);
                if !live.recorded {
                    let mut live = live;
                    let ended_at = live.stamp(now);
                    self.finish(&live, *party_id, ended_at, (*reason).into(), limits);
                }
            }
            PartyChange::Settings { .. } => {}
        }
    }

    /// Finishes the record of every live party with reason `shutdown`, in creation order.
    pub fn record_shutdown(&mut self, now: UnixMillis, limits: &Limits) {
        let order: Vec<PartyId> = self.by_creation.values().copied().collect();
        for party_id in order {
            let Some(mut live) = self.live.remove(&party_id) else { continue };
            if !live.recorded {
                let ended_at = live.stamp(now);
                self.finish(&live, party_id, ended_at, HistoryEndReason::Shutdown, limits);
                live.recorded = true;
            }
            self.live.insert(party_id, live);
        }
    }

    fn finish(
        &mut self,
        live: &Live,
        party_id: PartyId,
        ended_at: UnixMillis,
        reason: HistoryEndReason,
        limits: &Limits,
    ) {
        self.next_finished_seq += 1;
        let record = Arc::new(live.finish(self.next_finished_seq, party_id, ended_at, reason));
        if self.recent.len() >= limits.history_records_max {
            self.recent.pop_front();
        }
        self.recent.push_back(record.clone());
        self.finished.push(record);
        self.records_total += 1;
    }

    /// Moves the records finished since the last call into `into`, in the order they finished.
    pub fn take_finished(&mut self, into: &mut Vec<Arc<HistoryRecord>>) {
        into.append(&mut self.finished);
    }

    /// Kept records that match `query`, newest first.
    pub fn matching<'a>(&'a self, query: &'a HistoryQuery) -> impl Iterator<Item = &'a Arc<HistoryRecord>> + 'a {
        self.recent.iter().rev().filter(move |record| query.matches(record))
    }

    /// Live parties in creation order.
    pub fn by_creation(&self) -> impl Iterator<Item = PartyId> + '_ {
        self.by_creation.values().copied()
    }

    pub fn created_at(&self, party_id: PartyId) -> Option<UnixMillis> {
        self.live.get(&party_id).map(|live| live.created_at)
    }

    /// When `session` joined the party (its current membership).
    pub fn joined_at(&self, party_id: PartyId, session: SessionId) -> Option<UnixMillis> {
        let live = self.live.get(&party_id)?;
        live.open_member(session).map(|i| live.members[i].joined_at)
    }

    /// Every live party has one record, open for exactly its members, within the bounds.
    pub(super) fn check_invariants(&self, table: &PartyTable, limits: &Limits) {
        assert_eq!(self.live.len(), table.len(), "history and party table disagree on the live parties");
        assert_eq!(self.by_creation.len(), self.live.len(), "creation order and live records disagree");
        assert!(self.recent.len() <= limits.history_records_max, "more records kept than history_records_max");
        for (seq, party_id) in &self.by_creation {
            let live = self.live.get(party_id).expect("creation order names a live record");
            assert_eq!(live.created_seq, *seq, "{party_id} filed under another creation sequence");
            assert!(live.entries() <= limits.history_entries_per_party_max, "{party_id}: history over its bound");
            let party = table.get(*party_id).expect("a live record names a live party");
            if live.recorded {
                continue;
            }
            let open = live.members.iter().filter(|m| m.left_at.is_none()).count();
            assert_eq!(open, party.members.len(), "{party_id}: open history entries differ from the members");
            for member in &party.members {
                assert!(live.open_member(member.session_id).is_some(), "{party_id}: member without an open entry");
            }
            let leader = live.leaders.back().expect("a record has a leader");
            assert_eq!(leader.presence.session_id, party.leader, "{party_id}: history names another leader");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, PartyRequest, Request, Username};

    /// A core with `n` sessions of distinct users `u0`…, connected at time 0.
    fn core_with(limits: Limits, n: u32) -> (Core, Vec<Presence>) {
        let mut core = Core::new(limits, [9; 32]);
        let mut out = Outbox::new();
        let presences: Vec<Presence> = (0..n)
            .map(|i| Presence {
                user_id: UserId::new(&format!("u{i}")),
                session_id: SessionId::new(i, 1),
                username: Username::new(&format!("U{i}")),
            })
            .collect();
        for p in &presences {
            let identity = Identity { user_id: p.user_id.clone(), username: p.username.clone() };
            core.connect(p.session_id, identity, ConnectOptions::default(), Now::simulated(Millis(0)), &mut out);
        }
        (core, presences)
    }

    fn at(ms: u64) -> Now {
        Now::simulated(Millis(ms))
    }

    fn wall(ms: u64) -> UnixMillis {
        at(ms).wall
    }

    fn run(core: &mut Core, who: &Presence, request: PartyRequest, now: Now) -> Outbox {
        let mut out = Outbox::new();
        core.handle_request(who.session_id, Cid(1), Request::Party(request), now, &mut out);
        out
    }

    fn create(core: &mut Core, who: &Presence, max_size: u32, now: Now) -> PartyId {
        let request = PartyRequest::Create {
            open: true,
            max_size,
            label: String::new(),
            hidden: false,
            lobby: Default::default(),
        };
        match &run(core, who, request, now).outputs()[0] {
            crate::core::Output::Reply {
                result: Ok(crate::core::Reply::Party(crate::core::PartyReply::Info(s))),
                ..
            } => s.party_id,
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    fn finished(core: &mut Core) -> Vec<Arc<HistoryRecord>> {
        let mut records = Vec::new();
        core.take_finished_history(&mut records);
        records
    }

    #[test]
    fn a_record_lists_leaders_and_members_over_time_with_the_end_reason() {
        let (mut core, p) = core_with(Limits::default(), 3);
        let party_id = create(&mut core, &p[0], 4, at(10));
        run(&mut core, &p[1], PartyRequest::Join { party_id }, at(20));
        run(&mut core, &p[2], PartyRequest::Join { party_id }, at(30));
        run(&mut core, &p[0], PartyRequest::Promote { party_id, presence: p[1].clone() }, at(40));
        run(&mut core, &p[2], PartyRequest::Leave { party_id }, at(50));
        assert!(finished(&mut core).is_empty(), "nothing ends while the party lives");
        run(&mut core, &p[1], PartyRequest::Close { party_id }, at(60));

        let records = finished(&mut core);
        let [record] = records.as_slice() else { panic!("one record: {records:?}") };
        assert_eq!((record.party_id, record.max_size, record.end_reason), (party_id, 4, HistoryEndReason::Closed));
        assert_eq!((record.created_at, record.ended_at, record.truncated), (wall(10), wall(60), false));
        let leaders: Vec<(&str, UnixMillis)> =
            record.leaders.iter().map(|l| (l.presence.user_id.as_str(), l.since)).collect();
        assert_eq!(leaders, [("u0", wall(10)), ("u1", wall(40))]);
        let members: Vec<(&str, UnixMillis, Option<UnixMillis>)> =
            record.members.iter().map(|m| (m.presence.user_id.as_str(), m.joined_at, m.left_at)).collect();
        assert_eq!(
            members,
            [("u0", wall(10), Some(wall(60))), ("u1", wall(20), Some(wall(60))), ("u2", wall(30), Some(wall(50)))]
        );
        assert!(finished(&mut core).is_empty(), "taken once");
        let query = HistoryQuery { user_id: Some(UserId::new("u2")), ..HistoryQuery::default() };
        assert_eq!(core.history(&query).count(), 1, "kept in memory after the driver took it");
    }

    #[test]
    fn the_last_member_leaving_ends_the_party_as_empty_and_times_never_go_back() {
        let (mut core, p) = core_with(Limits::default(), 2);
        let party_id = create(&mut core, &p[0], 2, at(100));
        run(&mut core, &p[1], PartyRequest::Join { party_id }, at(200));
        // The wall clock steps back: later entries keep the latest time seen.
        let back = Now { mono: Millis(300), wall: wall(150) };
        run(&mut core, &p[0], PartyRequest::Leave { party_id }, back);
        let mut out = Outbox::new();
        core.disconnect(p[1].session_id, at(400), &mut out);
        let records = finished(&mut core);
        let [record] = records.as_slice() else { panic!("one record") };
        assert_eq!(record.end_reason, HistoryEndReason::Empty);
        assert_eq!(record.members[0].left_at, Some(wall(200)), "not before the previous entry");
        assert_eq!(record.leaders.last().map(|l| l.presence.user_id.as_str()), Some("u1"), "rotation is recorded");
        assert_eq!(record.ended_at, wall(400));
    }

    #[test]
    fn churn_past_the_bound_drops_the_oldest_departed_entries_and_says_so() {
        let limits = Limits { party_members_max: 2, history_entries_per_party_max: 4, ..Limits::default() };
        let (mut core, p) = core_with(limits.clone(), 2);
        let party_id = create(&mut core, &p[0], 2, at(0));
        for round in 1..=5 {
            run(&mut core, &p[1], PartyRequest::Join { party_id }, at(round * 10));
            run(&mut core, &p[1], PartyRequest::Leave { party_id }, at(round * 10 + 5));
        }
        run(&mut core, &p[1], PartyRequest::Join { party_id }, at(100));
        core.assert_invariants();
        run(&mut core, &p[0], PartyRequest::Close { party_id }, at(200));
        let records = finished(&mut core);
        let record = &records[0];
        assert!(record.truncated);
        assert!(record.leaders.len() + record.members.len() <= limits.history_entries_per_party_max);
        let joined: Vec<UnixMillis> = record.members.iter().map(|m| m.joined_at).collect();
        assert_eq!(
            joined,
            [wall(0), wall(50), wall(100)],
            "one leader and three members: the founder and the latest stay"
        );
    }

    #[test]
    fn a_shutdown_records_every_live_party_once_and_later_ends_are_not_recorded_again() {
        let (mut core, p) = core_with(Limits::default(), 3);
        let first = create(&mut core, &p[0], 4, at(0));
        let second = create(&mut core, &p[1], 4, at(5));
        run(&mut core, &p[2], PartyRequest::Join { party_id: first }, at(8));
        core.record_shutdown(at(10));
        let records = finished(&mut core);
        let ids: Vec<(PartyId, HistoryEndReason)> = records.iter().map(|r| (r.party_id, r.end_reason)).collect();
        assert_eq!(ids, [(first, HistoryEndReason::Shutdown), (second, HistoryEndReason::Shutdown)]);
        assert!(records
            .iter()
            .all(|r| r.ended_at == wall(10) && r.members.iter().all(|m| m.left_at == Some(wall(10)))));
        // The sessions drain: the parties end in the table, and nothing more is recorded.
        let mut out = Outbox::new();
        for presence in &p {
            core.disconnect(presence.session_id, at(20), &mut out);
        }
        assert_eq!(core.party_count(), 0);
        assert!(finished(&mut core).is_empty());
        assert_eq!(core.history_records_total(), 2);
    }

    #[test]
    fn memory_keeps_the_newest_records_and_queries_filter_by_party_user_and_overlapping_time() {
        let limits = Limits { history_records_max: 3, ..Limits::default() };
        let (mut core, p) = core_with(limits, 2);
        let mut ids = Vec::new();
        for i in 0..4u64 {
            let who = &p[(i % 2) as usize];
            let party_id = create(&mut core, who, 2, at(i * 100));
            run(&mut core, who, PartyRequest::Close { party_id }, at(i * 100 + 50));
            ids.push(party_id);
        }
        let all: Vec<PartyId> = core.history(&HistoryQuery::default()).map(|r| r.party_id).collect();
        assert_eq!(all, [ids[3], ids[2], ids[1]], "newest first; the oldest was dropped");
        let by_party = HistoryQuery { party_id: Some(ids[2]), ..HistoryQuery::default() };
        assert_eq!(core.history(&by_party).map(|r| r.party_id).collect::<Vec<_>>(), [ids[2]]);
        let by_user = HistoryQuery { user_id: Some(UserId::new("u1")), ..HistoryQuery::default() };
        assert_eq!(core.history(&by_user).map(|r| r.party_id).collect::<Vec<_>>(), [ids[3], ids[1]]);
        // [120, 210] overlaps the party alive 100..150 and the one alive 200..250, not 300..350.
        let range = HistoryQuery { since: Some(wall(120)), until: Some(wall(210)), ..HistoryQuery::default() };
        assert_eq!(core.history(&range).map(|r| r.party_id).collect::<Vec<_>>(), [ids[2], ids[1]]);
        let edge = HistoryQuery { since: Some(wall(350)), ..HistoryQuery::default() };
        assert_eq!(core.history(&edge).count(), 1, "a party that ended at `since` overlaps it");
        let newest_seq = core.history(&HistoryQuery::default()).next().map(|r| r.seq);
        let page = HistoryQuery { before_seq: newest_seq, ..HistoryQuery::default() };
        assert_eq!(core.history(&page).map(|r| r.party_id).collect::<Vec<_>>(), [ids[2], ids[1]]);
    }
}
