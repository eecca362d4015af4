//! The lobby half of the simulation's grammar and checks (SPEC L-1, L-2, L-3, L-4, L-9):
//! invitations (invite, refresh, cancel, accept with L-1's move, reject, list), codes (read,
//! regenerate, join by code, the guessing guard), strategies at create and update, expiry as
//! time advances (and a `Wait` that jumps it by tens of seconds), `?snapshots=true` sessions,
//! and one party per user on some seeds.
//!
//! A model predicts every lobby request's outcome (its error code, or success), the exact
//! events of invite, cancel, reject and expiry, what a connecting session is told, and the
//! guard's refusals. After every step:
//! - the invitations the core holds are the model's, party by party in first-sent order (so
//!   the index agrees both ways: the core's own sweep checks its two tables against each
//!   other), none to a user with a member session in the party; one that a join consumed or a
//!   party's end took along was announced (`accepted` to the joiner's other sessions,
//!   `party_gone` to the invitee's sessions);
//! - live parties' codes are distinct and each names its party;
//! - every live party's version is 1 + the steps that changed its member snapshot since create
//!   (the model keeps each party's last snapshot and counts the steps in which it differed);
//! - every party whose snapshot changed sent exactly one `PartySnapshot` to its member sessions
//!   that asked for them (in join order), equal to the party after the step and after the
//!   party's delta events; no other party sent one;
//! - `poll_timeout` is the earliest of the probes and the model's invitation deadlines.

use super::party::View;
use super::status::Expected;
use super::Sim;
use crate::core::{
    CoreError, Event, InvitationEndReason, InviteStrategy, JoinStrategy, LobbyEvent, LobbyReply, LobbyRequest,
    LobbySettings, LobbySettingsPatch, Millis, Output, PartyCode, PartyId, PartyInvitation, PartyReply, PartySnapshot,
    PartySummary, Presence, Reply, Request, SessionId, UnixMillis, UserId,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const JOIN_STRATEGIES: [JoinStrategy; 5] = [
    JoinStrategy::Public,
    JoinStrategy::FriendsOfLeader,
    JoinStrategy::FriendsOfMembers,
    JoinStrategy::InvitedOnly,
    JoinStrategy::NotAllowed,
];

/// The guard's window (SPEC L-3).
const MISS_WINDOW_MS: u64 = 60_000;

/// The lobby requests of the grammar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum LobbyOp {
    Invite,
    Cancel,
    Accept,
    Reject,
    List,
    CodeGet,
    CodeRegenerate,
    JoinByCode,
    /// Time jumps by tens of seconds: invitations expire in bulk, the guard's window slides.
    Wait,
}

/// One pending invitation as the model knows it.
#[derive(Clone, Debug)]
struct Pending {
    inviter: Presence,
    expires_at: UnixMillis,
    deadline: Millis,
    /// Arm order of its expiry timer (equal deadlines fire in it).
    armed: u64,
    /// First-sent order (a refresh keeps it): the invitee's list and connect order.
    first: u64,
}

/// Lobby counters, to see that the workload reaches every rule.
#[derive(Default, Debug)]
pub struct LobbyCounts {
    pub invites: u64,
    pub refreshes: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub party_gone: u64,
    pub told_on_connect: u64,
    pub moves: u64,
    pub code_joins: u64,
    pub code_misses: u64,
    pub code_guard_refusals: u64,
    pub snapshots: u64,
    pub version_steps: u64,
}

/// A lobby event a step's party checks passed on.
#[derive(Debug)]
struct Noted {
    call: u32,
    place: u64,
    recipients: Vec<SessionId>,
    event: LobbyEvent,
}

#[derive(Default)]
pub(super) struct LobbyModel {
    invitations: BTreeMap<(PartyId, UserId), Pending>,
    /// Per live party: the version the model expects and the snapshot (version 0) it goes with.
    versions: BTreeMap<PartyId, (u64, PartySnapshot)>,
    /// Sessions connected with `?snapshots=true`.
    watchers: BTreeSet<SessionId>,
    /// Every code seen, live or dead (a set: the step's end adds the live ones each step).
    codes: BTreeSet<PartyCode>,
    /// Each session's misses within the guard's window, oldest first.
    misses: BTreeMap<SessionId, VecDeque<Millis>>,
    seq: u64,
    /// Lobby events the step's party checks passed on (snapshots, `accepted`, `party_gone`),
    /// with the core call they came from and their place in the step.
    noted: Vec<Noted>,
    /// (call, place, party) of every party event of the step, for "snapshots after deltas".
    deltas: Vec<(u32, u64, PartyId)>,
    call: u32,
    place: u64,
}

impl LobbyModel {
    /// Called by the party checks for every event of one core call.
    pub(super) fn note_call(&mut self) -> u32 {
        self.call += 1;
        self.call
    }

    pub(super) fn note_lobby(&mut self, call: u32, recipients: &[SessionId], event: &LobbyEvent) {
        self.place += 1;
        self.noted.push(Noted { call, place: self.place, recipients: recipients.to_vec(), event: event.clone() });
    }

    pub(super) fn note_party(&mut self, call: u32, party_id: PartyId) {
        self.place += 1;
        self.deltas.push((call, self.place, party_id));
    }

    pub(super) fn watch(&mut self, session: SessionId, snapshots: bool) {
        if snapshots {
            self.watchers.insert(session);
        }
    }

    pub(super) fn forget(&mut self, session: SessionId) {
        self.watchers.remove(&session);
        self.misses.remove(&session);
    }

    /// Whether `user` has a pending invitation to `party_id`, as the step began (a join in
    /// this step consumes it only at the step's end, here).
    pub(super) fn is_invited(&self, party_id: PartyId, user: &UserId) -> bool {
        self.invitations.contains_key(&(party_id, user.clone()))
    }

    /// The earliest invitation deadline (for `poll_timeout`).
    pub(super) fn earliest_deadline(&self) -> Option<Millis> {
        self.invitations.values().map(|p| p.deadline).min()
    }
}

fn summary(party: &PartySnapshot) -> PartySummary {
    PartySummary {
        party_id: party.party_id,
        open: party.open,
        hidden: party.hidden,
        max_size: party.max_size,
        member_count: party.members.len() as u16,
        label: party.label.clone(),
        leader: party.leader.clone(),
        lobby: party.lobby.clone(),
        version: party.version,
    }
}

impl Sim {
    // ---- the grammar ----

    /// Lobby settings for a create: mostly the default, often something else.
    pub(super) fn lobby_settings(&mut self) -> LobbySettings {
        if self.rng.chance(50) {
            return LobbySettings { chat_enabled: self.rng.chance(70), ..LobbySettings::default() };
        }
        LobbySettings {
            join_strategy: self.rng.pick(&JOIN_STRATEGIES).expect("non-empty"),
            invite_strategy: if self.rng.chance(30) { InviteStrategy::LeaderOnly } else { InviteStrategy::AllMembers },
            name: if self.rng.chance(40) { self.party_name() } else { String::new() },
            chat_enabled: self.rng.chance(70),
        }
    }

    /// An update's lobby fields: mostly untouched.
    pub(super) fn lobby_patch(&mut self) -> LobbySettingsPatch {
        LobbySettingsPatch {
            join_strategy: self.rng.chance(20).then(|| self.rng.pick(&JOIN_STRATEGIES).expect("non-empty")),
            invite_strategy: self.rng.chance(15).then(|| {
                if self.rng.chance(50) {
                    InviteStrategy::LeaderOnly
                } else {
                    InviteStrategy::AllMembers
                }
            }),
            name: self.rng.chance(15).then(|| self.party_name()),
            chat_enabled: self.rng.chance(15).then(|| self.rng.chance(70)),
        }
    }

    pub(super) fn lobby_op(&mut self, op: LobbyOp) {
        match op {
            LobbyOp::Invite => self.invite(),
            LobbyOp::Cancel => self.cancel(),
            LobbyOp::Accept => self.accept_or_reject(true),
            LobbyOp::Reject => self.accept_or_reject(false),
            LobbyOp::List => self.list(),
            LobbyOp::CodeGet => self.code_read(false),
            LobbyOp::CodeRegenerate => self.code_read(true),
            LobbyOp::JoinByCode => self.join_by_code(),
            LobbyOp::Wait => self.now = self.now.saturating_add(self.rng.range(10_000, 40_000) as u64),
        }
    }

    fn connected_sessions_of(&self, user: &UserId) -> Vec<SessionId> {
        let mut sessions: Vec<(u64, SessionId)> =
            self.sessions.iter().filter(|(_, s)| &s.presence.user_id == user).map(|(id, s)| (s.order, *id)).collect();
        sessions.sort();
        sessions.into_iter().map(|(_, id)| id).collect()
    }

    fn members(party: &PartySnapshot) -> Vec<SessionId> {
        party.members.iter().map(|m| m.session_id).collect()
    }

    /// Someone to act on `party_id`: mostly a member (the leader when `leader`), else anyone.
    fn lobby_actor(&mut self, party_id: PartyId, leader: bool) -> Presence {
        if let Some(party) = self.core.debug_party(party_id) {
            if self.rng.chance(80) {
                return if leader { party.leader } else { self.rng.pick(&party.members).expect("a party has members") };
            }
        }
        self.pick_presence_any()
    }

    /// Sends one lobby request; returns its result and the outbox range of its events.
    fn lobby_request(&mut self, me: &Presence, request: LobbyRequest) -> Result<Reply, CoreError> {
        self.stats.requests += 1;
        let cid = self.next_cid();
        self.core.handle_request(me.session_id, cid, Request::Lobby(request.clone()), self.now(), &mut self.out);
        self.check_recipients_connected();
        let result = self.reply_first(me.session_id, cid, &request);
        if let Err(error) = &result {
            self.stats.refusal(error);
            assert_eq!(self.out.outputs().len(), 1, "refused {request:?} caused events");
        }
        // Swept at the step's end between full steps: the party named and the one joined (a
        // party a move left is swept on the next full step).
        let named = match &request {
            LobbyRequest::Invite { party_id, .. }
            | LobbyRequest::CancelInvitation { party_id, .. }
            | LobbyRequest::AcceptInvitation { party_id }
            | LobbyRequest::RejectInvitation { party_id }
            | LobbyRequest::CodeGet { party_id }
            | LobbyRequest::CodeRegenerate { party_id }
            | LobbyRequest::CustomDataSet { party_id, .. }
            | LobbyRequest::ChatSend { party_id, .. } => Some(*party_id),
            LobbyRequest::Invitations | LobbyRequest::JoinByCode { .. } => None,
        };
        let joined = match &result {
            Ok(Reply::Party(PartyReply::Info(snapshot))) => Some(snapshot.party_id),
            _ => None,
        };
        self.touched.extend(named.into_iter().chain(joined));
        result
    }

    /// The error code the model predicts, or `None` for success.
    fn check_outcome(
        &self,
        what: &dyn std::fmt::Debug,
        result: &Result<Reply, CoreError>,
        expected: Option<CoreError>,
    ) {
        match (result, &expected) {
            (Ok(_), None) => {}
            (Err(got), Some(want)) => assert_eq!(got.code(), want.code(), "{what:?}: {got}"),
            _ => panic!("{what:?}: got {result:?}, the model expected {expected:?}"),
        }
    }

    fn invite(&mut self) {
        let party_id = self.pick_party();
        let leader =
            self.core.debug_party(party_id).is_some_and(|p| p.lobby.invite_strategy == InviteStrategy::LeaderOnly);
        let as_leader = leader && self.rng.chance(80);
        let me = self.lobby_actor(party_id, as_leader);
        let limits = self.limits.clone();
        let count = match self.rng.below(20) {
            0 => 0,
            1 => limits.invitees_per_request_max + 1,
            _ => self.rng.range(1, limits.invitees_per_request_max.min(3)),
        };
        let mut user_ids = Vec::new();
        for _ in 0..count {
            user_ids.push(match self.rng.below(50) {
                0 => me.user_id.clone(),
                1 => UserId::new(""),
                2 => UserId::new(&"x".repeat(UserId::BYTES_MAX + 1)),
                3..=7 => self.rng.pick(&self.ghosts).expect("ghosts"),
                _ => self.rng.pick(&self.users).expect("users"),
            });
        }
        let party = self.core.debug_party(party_id);
        let expected = self.expected_invite(&me, party.as_ref(), &user_ids);
        let digest = self.core.debug_party_digest();
        let request = LobbyRequest::Invite { party_id, user_ids: user_ids.clone() };
        let result = self.lobby_request(&me, request.clone());
        self.check_outcome(&request, &result, expected);
        if result.is_err() {
            assert_eq!(self.core.debug_party_digest(), digest, "refused {request:?} changed the tables");
            self.out.clear();
            return;
        }
        let party = party.expect("an invite succeeded");
        let ttl = limits.invitation_ttl_ms;
        let (expires_at, deadline) = (UnixMillis(self.now().wall.0 + ttl), self.now.saturating_add(ttl));
        let mut expected_events = Vec::new();
        let mut invitees: Vec<UserId> = Vec::new();
        for user in user_ids {
            if invitees.contains(&user) {
                continue;
            }
            invitees.push(user.clone());
            self.lobby.seq += 1;
            let seq = self.lobby.seq;
            let key = (party_id, user.clone());
            let first = match self.lobby.invitations.get(&key) {
                Some(old) => {
                    self.stats.lobby.refreshes += 1;
                    old.first
                }
                None => seq,
            };
            self.stats.lobby.invites += 1;
            self.lobby
                .invitations
                .insert(key, Pending { inviter: me.clone(), expires_at, deadline, armed: seq, first });
            let sent = LobbyEvent::InvitationSent { party_id, invitee: user.clone(), inviter: me.clone(), expires_at };
            expected_events.push((Self::members(&party), Event::Lobby(sent)));
            let invitation = PartyInvitation { party: summary(&party), inviter: me.clone(), expires_at };
            let invitee_sessions = self.connected_sessions_of(&user);
            if !invitee_sessions.is_empty() {
                expected_events.push((invitee_sessions, Event::Lobby(LobbyEvent::Invited(Box::new(invitation)))));
            }
        }
        self.expect_events(1, &expected_events, "invite");
    }

    fn expected_invite(&self, me: &Presence, party: Option<&PartySnapshot>, user_ids: &[UserId]) -> Option<CoreError> {
        let Some(party) = party else { return Some(CoreError::PartyNotFound) };
        if !party.members.contains(me) {
            return Some(CoreError::PartyNotMember);
        }
        if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            return Some(CoreError::PartyJoinNotAllowed);
        }
        if party.lobby.invite_strategy == InviteStrategy::LeaderOnly && party.leader != *me {
            return Some(CoreError::PartyNotLeader);
        }
        if user_ids.is_empty() {
            return Some(CoreError::BadInput(String::new()));
        }
        if user_ids.len() > self.limits.invitees_per_request_max {
            return Some(CoreError::LimitExceeded(String::new()));
        }
        let mut distinct: Vec<&UserId> = Vec::new();
        for user in user_ids {
            if user.as_str().is_empty() || user.as_str().len() > UserId::BYTES_MAX {
                return Some(CoreError::InviteeInvalid(String::new()));
            }
            if *user == me.user_id {
                return Some(CoreError::InviteeIsSelf);
            }
            if party.members.iter().any(|m| &m.user_id == user) {
                return Some(CoreError::InviteeInParty(user.clone()));
            }
            // L-4: blocked by, or blocking, the leader or the inviter.
            let blocks = &self.lobby2;
            if blocks.blocked_either_way(&party.leader.user_id, user) || blocks.blocked_either_way(&me.user_id, user) {
                return Some(CoreError::InviteeBlocked(user.clone()));
            }
            if !distinct.contains(&user) {
                distinct.push(user);
            }
        }
        let pending_here = self.lobby.invitations.keys().filter(|(p, _)| *p == party.party_id).count();
        let new: Vec<&&UserId> = distinct
            .iter()
            .filter(|u| !self.lobby.invitations.contains_key(&(party.party_id, (**u).clone())))
            .collect();
        if pending_here + new.len() > self.limits.invitations_per_party_max {
            return Some(CoreError::LimitExceeded(String::new()));
        }
        for user in new {
            let of_user = self.lobby.invitations.keys().filter(|(_, u)| u == *user).count();
            if of_user >= self.limits.invitations_per_user_max {
                return Some(CoreError::LimitExceeded(String::new()));
            }
        }
        None
    }

    /// The outputs after the reply (from `at`) are exactly `expected`, recipients in order.
    fn expect_events(&mut self, at: usize, expected: &[(Vec<SessionId>, Event)], what: &str) {
        let outputs = &self.out.outputs()[at..];
        let got: Vec<(Vec<SessionId>, Event)> = outputs
            .iter()
            .map(|o| match o {
                Output::Event { recipients, event } => {
                    (self.out.recipients(recipients.clone()).to_vec(), event.clone())
                }
                other => panic!("{what}: unexpected {other:?}"),
            })
            .collect();
        assert_eq!(got, expected, "{what}: events");
        self.stats.events += got.len() as u64;
        self.stats.deliveries += got.iter().map(|(r, _)| r.len() as u64).sum::<u64>();
        self.out.clear();
    }

    fn cancel(&mut self) {
        let party_id = self.pick_party();
        let as_leader = self.rng.chance(50);
        let me = self.lobby_actor(party_id, as_leader);
        let pending: Vec<UserId> =
            self.lobby.invitations.keys().filter(|(p, _)| *p == party_id).map(|(_, u)| u.clone()).collect();
        let user_id = match self.rng.pick(&pending) {
            Some(user) if self.rng.chance(80) => user,
            _ => self.rng.pick(&self.users).expect("users"),
        };
        let party = self.core.debug_party(party_id);
        let key = (party_id, user_id.clone());
        let expected = match &party {
            None => Some(CoreError::PartyNotFound),
            Some(p) if !p.members.contains(&me) => Some(CoreError::PartyNotMember),
            Some(p) => match self.lobby.invitations.get(&key) {
                None => Some(CoreError::InvitationNotFound),
                Some(pending) if p.leader != me && pending.inviter.user_id != me.user_id => {
                    Some(CoreError::InvitationCancelNotAllowed)
                }
                Some(_) => None,
            },
        };
        let digest = self.core.debug_party_digest();
        let request = LobbyRequest::CancelInvitation { party_id, user_id: user_id.clone() };
        let result = self.lobby_request(&me, request.clone());
        self.check_outcome(&request, &result, expected);
        if result.is_err() {
            assert_eq!(self.core.debug_party_digest(), digest, "refused {request:?} changed the tables");
            self.out.clear();
            return;
        }
        self.lobby.invitations.remove(&key);
        self.stats.lobby.cancelled += 1;
        let party = party.expect("a cancel succeeded");
        let mut recipients = self.connected_sessions_of(&user_id);
        recipients.extend(Self::members(&party));
        let ended = LobbyEvent::InvitationEnded { party_id, invitee: user_id, reason: InvitationEndReason::Cancelled };
        self.expect_events(1, &[(recipients, Event::Lobby(ended))], "cancel");
    }

    /// A session of an invited user (mostly), for accept and reject.
    fn pick_invited(&mut self) -> (Presence, PartyId) {
        let keys: Vec<(PartyId, UserId)> = self.lobby.invitations.keys().cloned().collect();
        if let Some((party_id, user)) = self.rng.pick(&keys).filter(|_| self.rng.chance(85)) {
            let sessions = self.connected_sessions_of(&user);
            if let Some(session) = self.rng.pick(&sessions) {
                return (self.sessions[&session].presence.clone(), party_id);
            }
        }
        let party_id = self.pick_party();
        (self.pick_presence_any(), party_id)
    }

    fn accept_or_reject(&mut self, accept: bool) {
        let (me, party_id) = self.pick_invited();
        let party = self.core.debug_party(party_id);
        let key = (party_id, me.user_id.clone());
        let before = View::of(&self.core);
        let moving = if self.limits.one_party_per_user { self.member_session_of(&before, &me.user_id) } else { None };
        let expected = match &party {
            None => Some(CoreError::PartyNotFound),
            Some(_) if !self.lobby.invitations.contains_key(&key) => Some(CoreError::InvitationNotFound),
            Some(_) if !accept => None,
            Some(p) if p.lobby.join_strategy == JoinStrategy::NotAllowed => Some(CoreError::PartyJoinNotAllowed),
            Some(p) if self.lobby2.blocked_either_way(&p.leader.user_id, &me.user_id) => {
                Some(CoreError::PartyJoinBlocked)
            }
            Some(p) if p.members.len() >= usize::from(p.max_size) => Some(CoreError::PartyFull),
            Some(_) => {
                let frees = moving.is_some_and(|(session, _)| session == me.session_id);
                (!frees && !self.has_room(&before, me.session_id, party_id))
                    .then_some(CoreError::PartyTooManyParties(self.limits.parties_per_session_max))
            }
        };
        let digest = self.core.debug_party_digest();
        let request = if accept {
            LobbyRequest::AcceptInvitation { party_id }
        } else {
            LobbyRequest::RejectInvitation { party_id }
        };
        let result = self.lobby_request(&me, request.clone());
        self.check_outcome(&request, &result, expected);
        if result.is_err() {
            assert_eq!(self.core.debug_party_digest(), digest, "refused {request:?} changed the tables");
            self.out.clear();
            return;
        }
        if accept {
            let Ok(Reply::Party(PartyReply::Info(snapshot))) = &result else {
                panic!("accept replies with the snapshot")
            };
            assert_eq!(Some(&**snapshot), self.core.debug_party(party_id).as_ref(), "the snapshot is current");
            assert!(snapshot.members.contains(&me), "the invitee is a member");
            if let Some((session, old)) = moving {
                assert!(!self.core.debug_party(old).is_some_and(|p| p.members.iter().any(|m| m.session_id == session)));
                self.stats.lobby.moves += 1;
            }
            // The consumed invitation is the step's end's to check (`accepted` to the others).
            let after = View::of(&self.core);
            let outputs = 1..self.out.outputs().len();
            self.check_party_events(outputs, Some(&me), false, &before, &after);
            self.out.clear();
            return;
        }
        self.lobby.invitations.remove(&key);
        self.stats.lobby.rejected += 1;
        let party = party.expect("a reject succeeded");
        let mut expected_events = vec![(
            Self::members(&party),
            Event::Lobby(LobbyEvent::InvitationRejected { party_id, invitee: me.user_id.clone() }),
        )];
        let others: Vec<SessionId> =
            self.connected_sessions_of(&me.user_id).into_iter().filter(|s| *s != me.session_id).collect();
        if !others.is_empty() {
            let ended = LobbyEvent::InvitationEnded {
                party_id,
                invitee: me.user_id.clone(),
                reason: InvitationEndReason::Rejected,
            };
            expected_events.push((others, Event::Lobby(ended)));
        }
        self.expect_events(1, &expected_events, "reject");
    }

    /// L-1: the member session of `user` and its party, as `view` shows them.
    fn member_session_of(&self, view: &View, user: &UserId) -> Option<(SessionId, PartyId)> {
        let sessions = self.connected_sessions_of(user);
        sessions.iter().find_map(|s| view.first_party_of(*s).map(|p| (*s, p)))
    }

    /// `parties_per_session_max` for `session` joining `party_id`.
    fn has_room(&self, view: &View, session: SessionId, party_id: PartyId) -> bool {
        view.is_pending(party_id, session) || view.count_of(session) < self.limits.parties_per_session_max
    }

    /// The model's pending invitations of `user`, in first-sent order.
    fn invitations_of(&self, user: &UserId) -> Vec<PartyInvitation> {
        let mut mine: Vec<(&u64, PartyId, &Pending)> = self
            .lobby
            .invitations
            .iter()
            .filter(|((_, u), _)| u == user)
            .map(|((p, _), pending)| (&pending.first, *p, pending))
            .collect();
        mine.sort_by_key(|(first, _, _)| **first);
        mine.into_iter()
            .map(|(_, party_id, pending)| {
                let party = self.core.debug_party(party_id).expect("the model's invitations are to live parties");
                PartyInvitation {
                    party: summary(&party),
                    inviter: pending.inviter.clone(),
                    expires_at: pending.expires_at,
                }
            })
            .collect()
    }

    /// C-4 then C-3 then L-2: what a connecting session is told of its user's invitations.
    pub(super) fn invitations_on_connect(&mut self, session: SessionId, user: &UserId) -> Vec<Expected> {
        let invitations = self.invitations_of(user);
        self.stats.lobby.told_on_connect += invitations.len() as u64;
        invitations
            .into_iter()
            .map(|i| Expected::Event {
                recipients: BTreeSet::from([session]),
                event: Event::Lobby(LobbyEvent::Invited(Box::new(i))),
            })
            .collect()
    }

    fn list(&mut self) {
        let me = self.pick_presence_any();
        let expected = self.invitations_of(&me.user_id);
        let result = self.lobby_request(&me, LobbyRequest::Invitations);
        assert_eq!(result, Ok(Reply::Lobby(LobbyReply::Invitations(expected))), "the invitation list");
        assert_eq!(self.out.outputs().len(), 1, "a list causes no event");
        self.out.clear();
    }

    fn code_read(&mut self, regenerate: bool) {
        let party_id = self.pick_party();
        let me = self.lobby_actor(party_id, true);
        let party = self.core.debug_party(party_id);
        let old = self.core.party_code(party_id);
        let expected = match &party {
            None => Some(CoreError::PartyNotFound),
            Some(p) if !p.members.contains(&me) => Some(CoreError::PartyNotMember),
            Some(p) if p.leader != me => Some(CoreError::PartyNotLeader),
            Some(_) => None,
        };
        let request =
            if regenerate { LobbyRequest::CodeRegenerate { party_id } } else { LobbyRequest::CodeGet { party_id } };
        let result = self.lobby_request(&me, request.clone());
        self.check_outcome(&request, &result, expected);
        if let Ok(reply) = &result {
            let now = self.core.party_code(party_id).expect("the party is live");
            assert_eq!(reply, &Reply::Lobby(LobbyReply::Code { party_id, code: now }), "the reply is the code");
            assert_eq!(regenerate, Some(now) != old, "a regenerate, and only a regenerate, changes the code");
            self.lobby.codes.insert(now);
        }
        assert_eq!(self.out.outputs().len(), 1, "codes cause no event");
        self.out.clear();
    }

    fn join_by_code(&mut self) {
        let me = self.pick_presence_any();
        let live: Vec<PartyCode> =
            self.core.debug_party_ids().iter().filter_map(|id| self.core.party_code(*id)).collect();
        let code = match self.rng.below(20) {
            0..=11 => self.rng.pick(&live).map(|c| c.to_string()),
            12..=14 => {
                let seen = self.lobby.codes.len();
                (seen > 0).then(|| self.lobby.codes.iter().nth(self.rng.below(seen))).flatten().map(|c| c.to_string())
            }
            15..=16 => {
                let indexes = [0; 6].map(|_: u8| self.rng.below(31) as u8);
                Some(PartyCode::from_indexes(indexes).to_string())
            }
            _ => None,
        };
        let text = match code {
            Some(code) => match self.rng.below(4) {
                0 => code.to_lowercase(),
                1 => format!(" {code}\t"),
                _ => code,
            },
            None => ["", "0O1IL2", "abc", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"][self.rng.below(4)].to_owned(),
        };
        let target = PartyCode::parse(&text).and_then(|code| {
            self.core.debug_party_ids().into_iter().find(|id| self.core.party_code(*id) == Some(code))
        });
        let now = self.now;
        let misses_max = self.limits.code_misses_per_minute_max;
        let window = self.lobby.misses.entry(me.session_id).or_default();
        while window.front().is_some_and(|t| now.saturating_sub(*t) >= MISS_WINDOW_MS) {
            window.pop_front();
        }
        let guarded = window.len() >= misses_max;
        let before = View::of(&self.core);
        let expected = if guarded {
            Some(CoreError::LimitExceeded(String::new()))
        } else {
            match target.and_then(|id| self.core.debug_party(id)) {
                None => Some(CoreError::PartyCodeNotFound),
                Some(p) if p.members.contains(&me) => None,
                Some(p) if p.lobby.join_strategy == JoinStrategy::NotAllowed => Some(CoreError::PartyJoinNotAllowed),
                Some(p) if self.lobby2.blocked_either_way(&p.leader.user_id, &me.user_id) => {
                    Some(CoreError::PartyJoinBlocked)
                }
                Some(_) if self.limits.one_party_per_user && self.member_session_of(&before, &me.user_id).is_some() => {
                    Some(CoreError::PartyAlreadyInParty)
                }
                Some(p) if p.members.len() >= usize::from(p.max_size) => Some(CoreError::PartyFull),
                Some(p) if !self.has_room(&before, me.session_id, p.party_id) => {
                    Some(CoreError::PartyTooManyParties(self.limits.parties_per_session_max))
                }
                Some(_) => None,
            }
        };
        if guarded {
            self.stats.lobby.code_guard_refusals += 1;
        } else if target.is_none() {
            self.stats.lobby.code_misses += 1;
            self.lobby.misses.entry(me.session_id).or_default().push_back(now);
        }
        let digest = self.core.debug_party_digest();
        let request = LobbyRequest::JoinByCode { code: text };
        let result = self.lobby_request(&me, request.clone());
        self.check_outcome(&request, &result, expected);
        match &result {
            Err(_) => assert_eq!(self.core.debug_party_digest(), digest, "refused {request:?} changed the tables"),
            Ok(Reply::Party(PartyReply::Info(snapshot))) => {
                assert_eq!(Some(snapshot.party_id), target);
                assert_eq!(Some(&**snapshot), self.core.debug_party(snapshot.party_id).as_ref());
                assert!(snapshot.members.contains(&me));
                self.stats.lobby.code_joins += 1;
                let after = View::of(&self.core);
                let outputs = 1..self.out.outputs().len();
                self.check_party_events(outputs, Some(&me), false, &before, &after);
            }
            Ok(other) => panic!("a code join replied {other:?}"),
        }
        self.out.clear();
    }

    // ---- time ----

    /// The invitations due at `now` expire in (deadline, arm order) order: the outputs of the
    /// `handle_timeout` call just made are exactly their `expired` events, to the invitee's
    /// sessions and the party's members.
    pub(super) fn check_expiries(&mut self) {
        let now = self.now;
        let mut due: Vec<((PartyId, UserId), Pending)> = self
            .lobby
            .invitations
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        due.sort_by_key(|(_, p)| (p.deadline, p.armed));
        let mut expected = Vec::new();
        for ((party_id, user), _) in due {
            self.lobby.invitations.remove(&(party_id, user.clone()));
            self.stats.lobby.expired += 1;
            let party = self.core.debug_party(party_id).expect("an invitation's party is live");
            let mut recipients = self.connected_sessions_of(&user);
            recipients.extend(Self::members(&party));
            let ended = LobbyEvent::InvitationEnded { party_id, invitee: user, reason: InvitationEndReason::Expired };
            expected.push((recipients, Event::Lobby(ended)));
        }
        self.expect_events(0, &expected, "expiry");
    }

    // ---- the checks after every step ----

    pub(super) fn lobby_step_begins(&mut self) {
        self.lobby.noted.clear();
        self.lobby.deltas.clear();
    }

    pub(super) fn lobby_step_ends(&mut self) {
        let noted = std::mem::take(&mut self.lobby.noted);
        let mut noted: Vec<Option<Noted>> = noted.into_iter().map(Some).collect();
        // `what` names the event only when it is missing: formatting it every step would cost
        // more than the search.
        let mut take = |what: &dyn Fn() -> String, find: &dyn Fn(&LobbyEvent) -> bool| -> Noted {
            let i = noted
                .iter()
                .position(|n| n.as_ref().is_some_and(|n| find(&n.event)))
                .unwrap_or_else(|| panic!("{} was not announced", what()));
            noted[i].take().expect("position found it")
        };

        // Invitations a join consumed, or a party's end took along.
        let keys: Vec<(PartyId, UserId)> = self.lobby.invitations.keys().cloned().collect();
        for (party_id, user) in keys {
            let party = self.core.debug_party(party_id);
            let reason = match &party {
                None => InvitationEndReason::PartyGone,
                Some(p) if p.members.iter().any(|m| m.user_id == user) => InvitationEndReason::Accepted,
                Some(_) => continue,
            };
            self.lobby.invitations.remove(&(party_id, user.clone()));
            let mut recipients = self.connected_sessions_of(&user);
            if reason == InvitationEndReason::Accepted {
                self.stats.lobby.accepted += 1;
                // No session of an invited user is a member (the core's sweep checks it), and a
                // step adds at most one member to a party: the user's member is the joiner.
                let joiners: Vec<SessionId> = party
                    .iter()
                    .flat_map(|p| p.members.iter().filter(|m| m.user_id == user).map(|m| m.session_id))
                    .collect();
                assert_eq!(joiners.len(), 1, "one session of {user:?} joined {party_id} in this step");
                recipients.retain(|s| *s != joiners[0]);
            } else {
                self.stats.lobby.party_gone += 1;
            }
            if recipients.is_empty() {
                continue;
            }
            let got = take(&|| format!("the end ({reason:?}) of {user:?}'s invitation to {party_id}"), &|e| {
                matches!(e, LobbyEvent::InvitationEnded { party_id: p, invitee, reason: r }
                    if *p == party_id && *invitee == user && *r == reason)
            });
            assert_eq!(
                got.recipients, recipients,
                "who hears that {user:?}'s invitation to {party_id} ended ({reason:?})"
            );
        }

        // Versions: +1 per step that changed the member snapshot; snapshots to the watchers.
        let ids = self.core.debug_party_ids();
        let mut live = BTreeMap::new();
        let mut codes = BTreeSet::new();
        for id in ids {
            let mut party = self.core.debug_party(id).expect("listed party exists");
            // Compared without the version (one clone less per party and step).
            let version = std::mem::take(&mut party.version);
            let (expected_version, changed) = match self.lobby.versions.get(&id) {
                None => (1, true),
                Some((last_version, last)) if *last != party => (last_version + 1, true),
                Some((last_version, _)) => (*last_version, false),
            };
            party.version = version;
            assert_eq!(party.version, expected_version, "party {id}: version = 1 + the steps that changed it");
            if changed {
                self.stats.lobby.version_steps += 1;
                let watchers: Vec<SessionId> =
                    Self::members(&party).into_iter().filter(|s| self.lobby.watchers.contains(s)).collect();
                if !watchers.is_empty() {
                    let got = take(
                        &|| format!("the snapshot of {id}"),
                        &|e| matches!(e, LobbyEvent::Snapshot(s) if s.party_id == id),
                    );
                    assert_eq!(
                        got.recipients, watchers,
                        "party {id}: the snapshot goes to its watching members, in join order"
                    );
                    assert_eq!(
                        got.event,
                        LobbyEvent::Snapshot(Box::new(party.clone())),
                        "party {id}: the snapshot is the state"
                    );
                    let late =
                        self.lobby.deltas.iter().find(|(c, at, p)| *c == got.call && *p == id && *at > got.place);
                    assert!(late.is_none(), "party {id}: a delta event after its snapshot");
                    self.stats.lobby.snapshots += 1;
                }
            }

            // The invitations are the model's, none to a member; codes are distinct.
            let held = self.core.party_invitations(id).expect("listed party exists");
            let mut expected: Vec<(&u64, UserId, Presence, UnixMillis)> = self
                .lobby
                .invitations
                .iter()
                .filter(|((p, _), _)| *p == id)
                .map(|((_, u), pending)| (&pending.first, u.clone(), pending.inviter.clone(), pending.expires_at))
                .collect();
            expected.sort_by_key(|(first, ..)| **first);
            let expected: Vec<(UserId, Presence, UnixMillis)> =
                expected.into_iter().map(|(_, u, inviter, at)| (u, inviter, at)).collect();
            assert_eq!(held, expected, "party {id}: the pending invitations, in first-sent order");
            for (user, ..) in &held {
                assert!(!party.members.iter().any(|m| &m.user_id == user), "party {id}: an invitation to a member");
            }
            let code = self.core.party_code(id).expect("a live party has a code");
            assert!(codes.insert(code), "code {code} names two parties");
            self.lobby.codes.insert(code);

            party.version = 0;
            live.insert(id, (expected_version, party));
        }
        self.lobby.versions = live;
        let left: Vec<&Noted> = noted.iter().flatten().collect();
        assert!(left.is_empty(), "lobby events no rule explains: {left:?}");
        assert!(
            self.lobby.invitations.keys().all(|(p, _)| self.core.debug_party(*p).is_some()),
            "the model holds invitations to dead parties"
        );
    }
}
