//! Operators and parties (SPEC O-1): closing a party and kicking a user's sessions through the
//! admin API, and the views the API lists and shows. Moderation follows the players' own rules
//! (P-4 kick, P-6 leader rotation, P-8 close) with its own reason for a close, and changes the
//! tables through `table.rs` and the change list like any request, so the search index and the
//! history follow; it runs inside [`crate::core::Core::handle_admin`], so its events reach
//! sessions in the normal order.
//!
//! Decisions where SPEC is silent: a kick names a user (every member session of it, or the one
//! named), since an operator knows users, not sessions; the kicked sessions are told `kicked`
//! in one event, the others get one `leaves` event naming them all (after the leader event when
//! the leader was among them, P-6); kicking the last members ends the party as if they had left
//! (`empty`), and its pending requesters are told `closed` as on any such end. An admin close
//! tells members and pending requesters `closed_by_admin`.

use super::changes::EndReason;
use super::membership::send_pending_to_leader;
use super::table::Party;
use super::{send, Parties, PartyEvent, PartySnapshot, PartySummary, RemovedReason};
use crate::core::context::Ctx;
use crate::core::{CoreError, PartyId, Presence, SessionId, UnixMillis, UserId};

/// A party as the admin API lists it. Lobby features that widen [`PartySummary`] (name,
/// strategies, version) reach the list through it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyAdminSummary {
    pub summary: PartySummary,
    pub pending_count: usize,
    pub created_at: UnixMillis,
}

/// A party in full (`GET /v1/parties/{party_id}`). Lobby features add what only operators see
/// (invitations, the code) beside the snapshot, which carries what members see.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyAdminView {
    pub snapshot: PartySnapshot,
    /// When each member (in snapshot order) joined.
    pub joined_at: Vec<UnixMillis>,
    /// Pending join requests, oldest first.
    pub pending: Vec<Presence>,
    pub created_at: UnixMillis,
}

/// A user's parties (`GET /v1/users/{user_id}/parties`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserParties {
    /// Parties with a member session of the user, each once: in the order of the user's
    /// sessions (connect order), then of their joins; with the user's sessions in it.
    pub memberships: Vec<(PartyAdminSummary, Vec<SessionId>)>,
    /// The user's pending join requests: (party, requesting session).
    pub requests: Vec<(PartyId, SessionId)>,
}

/// What an admin close did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminClosed {
    pub members_removed: usize,
    pub requests_removed: usize,
}

/// What an admin kick did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminKicked {
    /// The sessions removed, in join order.
    pub sessions: Vec<SessionId>,
    /// The leader after rotation, when the leader was kicked and the party lives on.
    pub new_leader: Option<Presence>,
    /// The kicked sessions were the last members: the party ended (`empty`).
    pub party_ended: bool,
}

impl Parties {
    /// O-1 close: every member and pending requester is told `closed_by_admin`; the party is
    /// gone.
    pub fn admin_close(&mut self, party_id: PartyId, ctx: &mut Ctx) -> Result<AdminClosed, CoreError> {
        self.table.find(party_id)?;
        let party = self.table.dissolve(party_id, EndReason::ClosedByAdmin);
        let everyone = party.member_sessions().chain(party.pending.iter().map(|p| p.session_id));
        let version = party.version;
        send(
            &mut ctx.events,
            everyone,
            PartyEvent::Removed { party_id, reason: RemovedReason::ClosedByAdmin, version },
        );
        let closed = AdminClosed { members_removed: party.members.len(), requests_removed: party.pending.len() };
        self.commit(ctx);
        Ok(closed)
    }

    /// O-1 kick: every member session of `user_id` in the party, or only `only`. Events: `kicked`
    /// to the kicked sessions, then (P-6) the leader event if the leader went, the `leaves`
    /// event, and the pending list to a new leader.
    pub fn admin_kick(
        &mut self,
        party_id: PartyId,
        user_id: &UserId,
        only: Option<SessionId>,
        ctx: &mut Ctx,
    ) -> Result<AdminKicked, CoreError> {
        let party = self.table.find(party_id)?;
        let kicked: Vec<SessionId> = party
            .members
            .iter()
            .filter(|m| m.user_id == *user_id && only.is_none_or(|session| session == m.session_id))
            .map(|m| m.session_id)
            .collect();
        if kicked.is_empty() {
            return Err(CoreError::PartyPresenceNotFound);
        }
        let leader_kicked = kicked.contains(&party.leader);

        let mut gone = Vec::with_capacity(kicked.len());
        for &session in &kicked {
            let index = self.table.get(party_id).and_then(|party| party.member_index(session));
            // Invariant: each was found among this party's members above, and only it leaves.
            let index = index.expect("a kicked session is a member until it is removed");
            gone.push(self.table.remove_member(party_id, index));
        }
        let events = &mut ctx.events;
        let outcome = match self.table.get(party_id).filter(|party| !party.members.is_empty()) {
            None => {
                let party = self.table.dissolve(party_id, EndReason::Emptied);
                let version = party.version;
                let reason = RemovedReason::Kicked;
                send(events, kicked.iter().copied(), PartyEvent::Removed { party_id, reason, version });
                let requesters = party.pending.iter().map(|p| p.session_id);
                send(events, requesters, PartyEvent::Removed { party_id, reason: RemovedReason::Closed, version });
                AdminKicked { sessions: kicked, new_leader: None, party_ended: true }
            }
            Some(party) => {
                let version = party.version;
                let reason = RemovedReason::Kicked;
                send(events, kicked.iter().copied(), PartyEvent::Removed { party_id, reason, version });
                let new_leader = leader_kicked.then(|| party.members[0].clone());
                let party = match &new_leader {
                    Some(leader) => {
                        // Longest tenure = earliest in join order (P-6).
                        let party = self.table.set_leader(party_id, leader.session_id);
                        let leader = leader.clone();
                        send(events, party.member_sessions(), PartyEvent::Leader { party_id, leader, version });
                        party
                    }
                    None => party,
                };
                send(
                    events,
                    party.member_sessions(),
                    PartyEvent::Presence { party_id, joins: Vec::new(), leaves: gone, version },
                );
                if leader_kicked {
                    send_pending_to_leader(party, events);
                }
                AdminKicked { sessions: kicked, new_leader, party_ended: false }
            }
        };
        self.commit(ctx);
        Ok(outcome)
    }

    fn admin_summary(&self, party: &Party) -> PartyAdminSummary {
        PartyAdminSummary {
            summary: party.summary(),
            pending_count: party.pending.len(),
            created_at: self.created_at(party.id),
        }
    }

    fn created_at(&self, party_id: PartyId) -> UnixMillis {
        let created_at = self.history.created_at(party_id);
        debug_assert!(created_at.is_some(), "live party {party_id} without a history record");
        created_at.unwrap_or_default()
    }

    /// Every party in creation order, from the `offset`-th (O(offset) to get there).
    pub fn admin_list(&self, offset: usize) -> impl Iterator<Item = PartyAdminSummary> + '_ {
        self.history.by_creation().skip(offset).filter_map(|id| self.table.get(id)).map(|p| self.admin_summary(p))
    }

    pub fn admin_view(&self, party_id: PartyId) -> Option<PartyAdminView> {
        let party = self.table.get(party_id)?;
        let joined_at =
            party.members.iter().map(|m| self.history.joined_at(party_id, m.session_id).unwrap_or_default()).collect();
        Some(PartyAdminView {
            snapshot: party.snapshot(),
            joined_at,
            pending: party.pending.iter().cloned().collect(),
            created_at: self.created_at(party_id),
        })
    }

    /// The parties of a user whose sessions are `sessions` (connect order).
    pub fn admin_user_parties(&self, sessions: &[SessionId]) -> UserParties {
        let mut parties = UserParties::default();
        for &session in sessions {
            let Some(entry) = self.table.parties_of(session) else { continue };
            for &party_id in &entry.member_of {
                match parties.memberships.iter_mut().find(|(p, _)| p.summary.party_id == party_id) {
                    Some((_, in_it)) => in_it.push(session),
                    None => {
                        // Invariant: the session index names only live parties (check_invariants).
                        let Some(party) = self.table.get(party_id) else { continue };
                        parties.memberships.push((self.admin_summary(party), vec![session]));
                    }
                }
            }
            parties.requests.extend(entry.requested.iter().map(|&party_id| (party_id, session)));
        }
        parties
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{
        AdminReply, AdminRequest, Cid, ConnectOptions, Core, Event, HistoryEndReason, Identity, Millis, Now, Outbox,
        Output, PartyReply, PartyRequest, Reply, Request, Username,
    };
    use crate::limits::Limits;

    /// Sessions 0..n: user `u{i / 2}`, so sessions 2k and 2k+1 belong to one user.
    fn core_with(n: u32) -> (Core, Vec<Presence>) {
        let mut core = Core::new(Limits::default(), [4; 32]);
        let mut out = Outbox::new();
        let presences: Vec<Presence> = (0..n)
            .map(|i| Presence {
                user_id: UserId::new(&format!("u{}", i / 2)),
                session_id: SessionId::new(i, 1),
                username: Username::new("U"),
            })
            .collect();
        for p in &presences {
            let identity = Identity { user_id: p.user_id.clone(), username: p.username.clone() };
            core.connect(p.session_id, identity, ConnectOptions::default(), Now::default(), &mut out);
        }
        (core, presences)
    }

    fn run(core: &mut Core, who: &Presence, request: PartyRequest) -> Outbox {
        let mut out = Outbox::new();
        core.handle_request(who.session_id, Cid(1), Request::Party(request), Now::simulated(Millis(1)), &mut out);
        out
    }

    /// Session 0 creates a closed party of 6; sessions 1..members join (opened for them, then
    /// closed again), and `pending` more ask to join.
    fn party(core: &mut Core, p: &[Presence], members: usize, pending: usize) -> PartyId {
        let create = PartyRequest::Create {
            open: true,
            max_size: 6,
            label: String::new(),
            hidden: false,
            lobby: Default::default(),
        };
        let Output::Reply { result: Ok(Reply::Party(PartyReply::Info(snapshot))), .. } =
            run(core, &p[0], create).outputs()[0].clone()
        else {
            panic!("created")
        };
        let party_id = snapshot.party_id;
        for who in &p[1..members] {
            run(core, who, PartyRequest::Join { party_id });
        }
        run(
            core,
            &p[0],
            PartyRequest::Update { party_id, open: Some(false), hidden: None, label: None, lobby: Default::default() },
        );
        for who in &p[members..members + pending] {
            run(core, who, PartyRequest::Join { party_id });
        }
        party_id
    }

    /// Each output as (event name, recipient slots).
    fn events(out: &Outbox) -> Vec<(String, Vec<u32>)> {
        out.outputs()
            .iter()
            .map(|o| match o {
                Output::Event { recipients, event: Event::Party(e) } => {
                    let name = format!("{e:?}");
                    let name = name.split([' ', '{', '(']).next().unwrap_or_default().to_owned();
                    (name, out.recipients(recipients.clone()).iter().map(|s| s.slot()).collect())
                }
                other => panic!("only party events: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_admin_close_tells_members_and_requesters_closed_by_admin() {
        let (mut core, p) = core_with(5);
        let party_id = party(&mut core, &p, 4, 1);
        let mut out = Outbox::new();
        let reply = core.handle_admin(AdminRequest::CloseParty { party_id }, Now::simulated(Millis(2)), &mut out);
        assert_eq!(reply, Ok(AdminReply::PartyClosed(AdminClosed { members_removed: 4, requests_removed: 1 })));
        assert_eq!(events(&out), [("Removed".to_owned(), vec![0, 1, 2, 3, 4])]);
        assert!(matches!(
            out.outputs()[0],
            Output::Event { event: Event::Party(PartyEvent::Removed { reason: RemovedReason::ClosedByAdmin, .. }), .. }
        ));
        assert_eq!(core.party_count(), 0);
        let mut records = Vec::new();
        core.take_finished_history(&mut records);
        assert_eq!(records[0].end_reason, HistoryEndReason::ClosedByAdmin);
        let again = core.handle_admin(AdminRequest::CloseParty { party_id }, Now::default(), &mut Outbox::new());
        assert_eq!(again, Err(CoreError::PartyNotFound));
    }

    #[test]
    fn kicking_the_leaders_user_kicks_each_of_its_sessions_and_rotates_the_lead_first() {
        // Sessions 0 and 1 are one user (the leader's); 2 and 3 another; 4 asks to join.
        let (mut core, p) = core_with(5);
        let party_id = party(&mut core, &p, 4, 1);
        let mut out = Outbox::new();
        let kick = AdminRequest::KickMember { party_id, user_id: UserId::new("u0"), session: None };
        let reply = core.handle_admin(kick, Now::simulated(Millis(2)), &mut out).expect("kicked");
        let AdminReply::MembersKicked(kicked) = reply else { panic!("{reply:?}") };
        assert_eq!(kicked.sessions, [p[0].session_id, p[1].session_id]);
        assert_eq!(kicked.new_leader.as_ref(), Some(&p[2]), "the longest tenure left leads");
        assert!(!kicked.party_ended);
        assert_eq!(
            events(&out),
            [
                ("Removed".to_owned(), vec![0, 1]),
                ("Leader".to_owned(), vec![2, 3]),
                ("Presence".to_owned(), vec![2, 3]),
                ("JoinRequest".to_owned(), vec![2]),
            ]
        );
        let snapshot = core.debug_party(party_id).expect("the party lives on");
        assert_eq!(snapshot.members, [p[2].clone(), p[3].clone()]);
    }

    #[test]
    fn a_kick_can_name_one_session_and_refuses_sessions_or_users_not_in_the_party() {
        let (mut core, p) = core_with(4);
        let party_id = party(&mut core, &p, 4, 0);
        let now = Now::simulated(Millis(2));
        let one = AdminRequest::KickMember { party_id, user_id: UserId::new("u1"), session: Some(p[3].session_id) };
        let Ok(AdminReply::MembersKicked(kicked)) = core.handle_admin(one, now, &mut Outbox::new()) else {
            panic!("kicked one")
        };
        assert_eq!((kicked.sessions, kicked.new_leader), (vec![p[3].session_id], None));
        for (user, session) in [("u1", Some(p[3].session_id)), ("u1", Some(p[0].session_id)), ("nobody", None)] {
            let kick = AdminRequest::KickMember { party_id, user_id: UserId::new(user), session };
            let digest = core.debug_party_digest();
            assert_eq!(core.handle_admin(kick, now, &mut Outbox::new()), Err(CoreError::PartyPresenceNotFound));
            assert_eq!(core.debug_party_digest(), digest, "a refused kick changes nothing");
        }
        // Kicking everyone left ends the party as empty.
        for user in ["u1", "u0"] {
            let kick = AdminRequest::KickMember { party_id, user_id: UserId::new(user), session: None };
            core.handle_admin(kick, now, &mut Outbox::new()).expect("kicked");
        }
        assert_eq!(core.party_count(), 0);
        let mut records = Vec::new();
        core.take_finished_history(&mut records);
        assert_eq!(records[0].end_reason, HistoryEndReason::Empty);
    }

    #[test]
    fn views_list_parties_in_creation_order_with_pending_requests_and_join_times() {
        let (mut core, p) = core_with(6);
        let first = party(&mut core, &p, 2, 1);
        let second = party(&mut core, &p[3..], 2, 0);
        let listed: Vec<PartyId> = core.admin_parties(0).map(|s| s.summary.party_id).collect();
        assert_eq!(listed, [first, second]);
        assert_eq!(core.admin_parties(1).map(|s| s.summary.party_id).collect::<Vec<_>>(), [second]);
        let view = core.admin_party(first).expect("exists");
        assert_eq!((view.snapshot.members.len(), view.pending, view.joined_at.len()), (2, vec![p[2].clone()], 2));
        assert!(view.joined_at.iter().all(|t| *t >= view.created_at));
        // u1 has session 2 pending in the first party and session 3 leading the second.
        let mine = core.admin_user_parties(&UserId::new("u1"));
        let memberships: Vec<(PartyId, Vec<SessionId>)> =
            mine.memberships.iter().map(|(s, sessions)| (s.summary.party_id, sessions.clone())).collect();
        assert_eq!(memberships, [(second, vec![p[3].session_id])]);
        assert_eq!(mine.requests, [(first, p[2].session_id)]);
    }
}
