//! The operator's half of the simulation: admin close and kick (SPEC O-1) drawn among the
//! players' requests, and the party history (O-3) checked after every step.
//!
//! Checks:
//! - an admin close of a live party tells exactly its members and pending requesters
//!   `closed_by_admin`, in one event, and the party is gone; of an unknown party, it is refused
//!   with "not found" and changes nothing;
//! - an admin kick removes exactly the member sessions of the named user (or the one session
//!   named): they are told `kicked` first, the rest of the events obey the party checks (a leader
//!   event by tenure before the leaves), and a party left without members is gone; naming no
//!   member is refused and changes nothing;
//! - history: every party that disappeared in a step has exactly one finished record, no other
//!   record finishes, and each record is consistent (a leader and a member, times in order
//!   within the party's life, within `history_entries_per_party_max`, never `shutdown`).

use super::party::View;
use super::Sim;
use crate::core::{
    AdminReply, AdminRequest, CoreError, Event, HistoryEndReason, Output, PartyEvent, PartyId, RemovedReason,
    SessionId, UserId,
};
use std::collections::BTreeSet;

impl Sim {
    pub(super) fn admin_close(&mut self) {
        let party_id = self.pick_party();
        let before = View::of(&self.core);
        // L-9: ending a party is one version step; its `PartyRemoved` carries the step's version.
        let version = self.core.debug_party(party_id).map(|p| p.version + 1);
        let digests = self.digests();
        let result = self.core.handle_admin(AdminRequest::CloseParty { party_id }, self.now(), &mut self.out);
        self.stats.requests += 1;
        self.check_recipients_connected();
        match result {
            Ok(AdminReply::PartyClosed(closed)) => {
                let members = before.members_of(party_id);
                let pending = before.pending_of(party_id);
                assert_eq!((closed.members_removed, closed.requests_removed), (members.len(), pending.len()));
                let everyone: Vec<SessionId> = members.iter().chain(pending).copied().collect();
                // One removed event, then the lobby's (invitations the party took along), which
                // the lobby's checks account for at the step's end.
                let Some(Output::Event { recipients, event }) = self.out.outputs().first() else {
                    panic!("an admin close starts with the removed event: {:?}", self.out.outputs())
                };
                assert_eq!(self.out.recipients(recipients.clone()), everyone, "members, then requesters");
                let version = version.expect("a closed party existed");
                let gone = PartyEvent::Removed { party_id, reason: RemovedReason::ClosedByAdmin, version };
                assert_eq!(*event, Event::Party(gone));
                let after = View::of(&self.core);
                let len = self.out.outputs().len();
                self.check_party_events(0..len, None, false, &before, &after);
                assert!(self.core.debug_party(party_id).is_none(), "the closed party is gone");
                self.stats.admin_closes += 1;
            }
            Err(error) => {
                assert_eq!(error, CoreError::PartyNotFound, "only an unknown party is refused");
                assert!(before.members_of(party_id).is_empty(), "a live party was refused");
                self.refused_without_trace(&error, digests);
            }
            Ok(other) => panic!("an admin close answered {other:?}"),
        }
        self.out.clear();
    }

    pub(super) fn admin_kick(&mut self) {
        let party_id = self.pick_party();
        let before = View::of(&self.core);
        // Mostly a member's user, sometimes naming one of its sessions; sometimes anyone.
        let party = self.core.debug_party(party_id);
        let leader_before = party.as_ref().map(|p| p.leader.session_id);
        // L-9: the kick is one version step; every event it causes carries the new version.
        let version = party.as_ref().map(|p| p.version + 1);
        let members = party.map(|p| p.members).unwrap_or_default();
        let target = match self.rng.pick(&members) {
            Some(member) if self.rng.chance(85) => member,
            _ => self.pick_presence_any(),
        };
        let session = self.rng.chance(30).then_some(target.session_id);
        let user_id: UserId = target.user_id.clone();
        let expected: Vec<SessionId> = members
            .iter()
            .filter(|m| m.user_id == user_id && session.is_none_or(|s| s == m.session_id))
            .map(|m| m.session_id)
            .collect();
        let digests = self.digests();
        let kick = AdminRequest::KickMember { party_id, user_id, session };
        let result = self.core.handle_admin(kick, self.now(), &mut self.out);
        self.stats.requests += 1;
        self.touched.push(party_id);
        let after = View::of(&self.core);
        self.check_recipients_connected();
        match result {
            Ok(AdminReply::MembersKicked(kicked)) => {
                assert_eq!(kicked.sessions, expected, "every member session of the user (or the one named)");
                let Some(Output::Event { recipients, event }) = self.out.outputs().first() else {
                    panic!("a kick starts with the removed event: {:?}", self.out.outputs())
                };
                assert_eq!(self.out.recipients(recipients.clone()), expected);
                let version = version.expect("a kick found the party");
                let kicked_event = PartyEvent::Removed { party_id, reason: RemovedReason::Kicked, version };
                assert_eq!(*event, Event::Party(kicked_event));
                let len = self.out.outputs().len();
                self.check_party_events(1..len, None, false, &before, &after);
                assert_eq!(kicked.party_ended, after.members_of(party_id).is_empty());
                // P-6: a kicked leader hands over to the longest tenure left.
                let rotated = !kicked.party_ended && leader_before.is_some_and(|l| expected.contains(&l));
                let new_leader = rotated.then(|| after.members_of(party_id)[0]);
                assert_eq!(kicked.new_leader.map(|p| p.session_id), new_leader);
                for session in &expected {
                    assert!(!after.is_member(party_id, *session), "{session} was kicked and is still a member");
                }
                self.stats.admin_kicks += 1;
            }
            Err(error) => {
                assert!(expected.is_empty(), "a kick of members was refused: {error:?}");
                let code = if members.is_empty() { CoreError::PartyNotFound } else { CoreError::PartyPresenceNotFound };
                assert_eq!(error, code);
                self.refused_without_trace(&error, digests);
            }
            Ok(other) => panic!("an admin kick answered {other:?}"),
        }
        self.out.clear();
    }

    /// A refused admin request caused nothing and changed no table.
    fn refused_without_trace(&mut self, error: &CoreError, digests: Option<(u64, u64)>) {
        self.stats.refusal(error);
        assert!(self.out.is_empty(), "a refused admin request caused {:?}", self.out.outputs());
        assert_eq!(self.digests(), digests, "a refused admin request changed a table");
    }

    /// The parties alive now, for [`Sim::check_history`] after the step.
    pub(super) fn live_parties(&self) -> BTreeSet<PartyId> {
        self.core.debug_party_ids().into_iter().collect()
    }

    /// Each party gone since `before` has one finished record, and nothing else finished.
    pub(super) fn check_history(&mut self, before: &BTreeSet<PartyId>) {
        let mut records = Vec::new();
        self.core.take_finished_history(&mut records);
        let after = self.live_parties();
        let ended: BTreeSet<PartyId> = before.difference(&after).copied().collect();
        let recorded: BTreeSet<PartyId> = records.iter().map(|r| r.party_id).collect();
        assert_eq!(recorded.len(), records.len(), "a party recorded twice");
        assert_eq!(recorded, ended, "the parties that ended are the ones recorded");
        for record in &records {
            let id = record.party_id;
            assert_ne!(record.end_reason, HistoryEndReason::Shutdown, "{id}: no shutdown in a simulation");
            assert!(!record.leaders.is_empty() && !record.members.is_empty(), "{id}: a record without people");
            let entries = record.leaders.len() + record.members.len();
            assert!(entries <= self.limits.history_entries_per_party_max, "{id}: {entries} entries");
            assert!(record.created_at <= record.ended_at, "{id}: ended before it began");
            for member in &record.members {
                let left = member.left_at.expect("every member of a finished record left");
                assert!(record.created_at <= member.joined_at && member.joined_at <= left && left <= record.ended_at);
            }
            let since: Vec<_> = record.leaders.iter().map(|l| l.since).collect();
            assert!(since.windows(2).all(|w| w[0] <= w[1]), "{id}: leaders out of order");
            assert!(since.iter().all(|t| record.created_at <= *t && *t <= record.ended_at));
            if !record.truncated {
                assert_eq!(since[0], record.created_at, "{id}: the creator leads from the start");
            }
            self.stats.history_records += 1;
            self.stats.history_truncated += u64::from(record.truncated);
        }
    }
}
