//! The Lobby II half of the simulation's grammar and checks (SPEC L-4 … L-8): the game backend's
//! social writes (friends and blocks, single and bulk, some refused) and attribute writes (in and
//! out of timestamp order), custom data, chat (with the wall clock jumping back now and then),
//! names against a small deny-list at create and update, and the friend strategies.
//!
//! Models, and what each step checks against them:
//! - **social** (`Social`): every write's outcome is predicted (ids, no self, the per-user and
//!   whole-table bounds, all or nothing), and afterwards the core's lists are the model's;
//! - **who may join**: every plain join's gates are predicted from the party before it and the
//!   social model (already a member; 241 `NotAllowed`; 260 blocked either way with the leader;
//!   240; 202; an invitation lets in; 242, 261, 262 by strategy): a gate's refusal must be
//!   exactly that code, and a join past every gate must not be refused by any of them. The
//!   invitation, code and accept models of `lobby.rs` ask the same blocks (263, 260), and a
//!   leader's accept of a join request from a blocked user must be 260;
//! - **custom data**: the outcome (201, 204, 203, 300) and the one `PartyCustomDataChanged` to
//!   every member, in join order, with the version after the request; the snapshot's strings
//!   are the model's (a member's string leaves with it);
//! - **chat**: the outcome (201, 204, 264, 200, 300, and the per-session sliding window) and, for
//!   a message sent, the reply's sequence number (+1 per party) and time (the later of the
//!   party's last message and the wall clock, which this simulation moves backwards now and
//!   then), the one event to every other member session, nothing else: chat is no version step;
//! - **attributes**: the outcome (201, stale, too large) and the one `PartyAttributesUpdated` to
//!   every member; the snapshot's attributes are the model's;
//! - **names**: a create or update that set a name succeeded only with a valid name, and a
//!   refusal as denied only for a denied one.
//!
//! Versions and snapshot events of all of these are the L-9 checks of `lobby.rs`, which compare
//! whole snapshots (custom data and attributes included) step by step.

use super::party::View;
use super::Sim;
use crate::core::{
    ChatKind, CoreError, CustomDataScope, ErrorCode, Event, JoinStrategy, LobbyEvent, LobbyReply, LobbyRequest, Millis,
    NameDenyList, Output, PartyId, PartyReply, PartyRequest, PartySnapshot, Presence, Reply, Request, SessionId,
    SocialList, SocialWrite, UnixMillis, UserId,
};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The deny-list the simulated server runs with (one entry; the names below spell it in ways
/// folding must see through, and in ways it must not).
pub(super) const DENY_LIST: &str = "bad\n";

/// Names the simulation writes, and whether the deny-list refuses each.
const NAMES: [(&str, bool); 9] = [
    ("", false),
    ("alpha", false),
    ("Alpha", false),
    ("the b\u{e4}d crew", false),       // "bäd" is another word
    ("\u{ff42}\u{ff41}\u{ff44}", true), // full-width "bad"
    ("BA\u{200B}D", true),              // a zero-width space inside
    ("badass", true),
    ("ba\u{308}d", false), // decomposed "bäd"
    ("a\nb", false),       // a control character: refused, but not as denied
];

/// The Lobby II requests of the grammar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Lobby2Op {
    /// The backend writes friends or blocks (one user or several).
    Social,
    CustomData,
    Chat,
    /// The backend writes a party's attributes.
    Attributes,
    /// The wall clock jumps (back, mostly): chat times must not follow it backwards.
    ClockJump,
}

/// Lobby II counters, to see that the workload reaches every rule.
#[derive(Default, Debug)]
pub struct Lobby2Counts {
    pub social_writes: u64,
    pub social_refused: u64,
    pub joins_gated: u64,
    pub joins_blocked: u64,
    pub joins_not_friend: u64,
    pub joins_as_friend: u64,
    pub custom_data_set: u64,
    pub chat_sent: u64,
    pub chat_rate_limited: u64,
    pub chat_time_held: u64,
    pub attributes_written: u64,
    pub attributes_stale: u64,
    pub names_set: u64,
    pub names_denied: u64,
}

#[derive(Default)]
pub(super) struct Lobby2Model {
    /// User → (friends, blocks), as the core must hold them.
    friends: BTreeMap<UserId, BTreeSet<UserId>>,
    blocks: BTreeMap<UserId, BTreeSet<UserId>>,
    /// Per session: its chat send times within the window, oldest first.
    chat_sent: BTreeMap<SessionId, VecDeque<Millis>>,
    /// Per party: (last sequence, last time).
    chat: BTreeMap<PartyId, (u64, UnixMillis)>,
}

impl Lobby2Model {
    pub(super) fn blocked_either_way(&self, a: &UserId, b: &UserId) -> bool {
        let blocks = |x: &UserId, y: &UserId| self.blocks.get(x).is_some_and(|set| set.contains(y));
        blocks(a, b) || blocks(b, a)
    }

    fn is_friend_of(&self, friend: &UserId, user: &UserId) -> bool {
        self.friends.get(user).is_some_and(|set| set.contains(friend))
    }

    fn entries(&self) -> usize {
        self.friends.values().chain(self.blocks.values()).map(BTreeSet::len).sum()
    }

    pub(super) fn forget(&mut self, session: SessionId) {
        self.chat_sent.remove(&session);
    }
}

/// The deny-list the simulation hands the core.
pub(super) fn deny_list() -> NameDenyList {
    NameDenyList::parse(DENY_LIST, 10).expect("the simulation's deny-list parses")
}

/// What the model says about a name: `Ok` valid, else the code it is refused with.
fn name_rule(name: &str, bytes_max: usize) -> Result<(), ErrorCode> {
    if name.len() > bytes_max || name.chars().any(char::is_control) {
        return Err(ErrorCode::BadInput);
    }
    match NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, true)) => Err(ErrorCode::PartyNameDenied),
        _ => Ok(()),
    }
}

impl Sim {
    /// A name for a create or an update: one of `NAMES`, or one over the length bound.
    pub(super) fn party_name(&mut self) -> String {
        if self.rng.chance(5) {
            return "n".repeat(self.limits.party_name_bytes_max + 1);
        }
        self.rng.pick(&NAMES).expect("non-empty").0.to_owned()
    }

    pub(super) fn lobby2_op(&mut self, op: Lobby2Op) {
        match op {
            Lobby2Op::Social => self.social_write(),
            Lobby2Op::CustomData => self.custom_data(),
            Lobby2Op::Chat => self.chat(),
            Lobby2Op::Attributes => self.attributes(),
            Lobby2Op::ClockJump => {
                // The wall clock lags the monotonic one by a random amount, so it moves
                // backwards when the lag grows (as after an NTP step) and forwards when it shrinks.
                self.wall_lag_ms = self.rng.below(self.now.0.min(10_000) as usize + 1) as u64;
            }
        }
    }

    fn any_user(&mut self) -> UserId {
        // Mostly users with a session, so lists name users who act.
        if self.rng.chance(60) && !self.sessions.is_empty() {
            return self.pick_presence_any().user_id;
        }
        if self.rng.chance(15) {
            self.rng.pick(&self.ghosts).expect("ghosts")
        } else {
            self.rng.pick(&self.users).expect("users")
        }
    }

    fn user_list(&mut self, owner: &UserId) -> Vec<UserId> {
        let len = self.rng.below(4);
        let mut ids: Vec<UserId> =
            (0..len).map(|_| if self.rng.chance(2) { owner.clone() } else { self.any_user() }).collect();
        if self.rng.chance(1) {
            ids.push(UserId::new(""));
        }
        ids
    }

    /// Sometimes a connected friend of the party's leader or members (per the social model),
    /// so that the friend strategies let someone in.
    pub(super) fn pick_friend_of(&mut self, party: &PartySnapshot) -> Option<Presence> {
        if !self.rng.chance(30) {
            return None;
        }
        let friends: Vec<Presence> = self
            .sessions
            .values()
            .map(|s| &s.presence)
            .filter(|p| party.members.iter().any(|m| self.lobby2.is_friend_of(&p.user_id, &m.user_id)))
            .cloned()
            .collect();
        self.rng.pick(&friends)
    }

    // ---- L-4: the backend's social writes ----

    fn social_write(&mut self) {
        let count = if self.rng.chance(70) { 1 } else { self.rng.range(0, 3) };
        let mut writes = Vec::new();
        for _ in 0..count {
            // Half the time a leader's lists, so the friend strategies meet their friends.
            let leader = self.rng.pick(&self.core.debug_party_ids()).and_then(|id| self.core.debug_party(id));
            let (user_id, leads) = match leader {
                Some(party) if self.rng.chance(50) => (party.leader.user_id, true),
                _ => (self.any_user(), false),
            };
            let friends = if leads {
                // A leader's friends among the users online (itself left out): who may join.
                let online: Vec<UserId> =
                    self.sessions.values().map(|s| s.presence.user_id.clone()).filter(|u| *u != user_id).collect();
                let count = self.rng.range(1, self.limits.social_friends_per_user_max);
                Some((0..count).filter_map(|_| self.rng.pick(&online)).collect())
            } else {
                self.rng.chance(60).then(|| self.user_list(&user_id))
            };
            let blocks = self.rng.chance(60).then(|| self.user_list(&user_id));
            writes.push(SocialWrite { user_id, friends, blocks });
        }
        let expected = self.expected_social(&writes);
        let digest = self.core.debug_social_digest();
        let party_digest = self.core.debug_party_digest();
        let result = self.core.handle_admin(
            crate::core::AdminRequest::SetSocial { writes: writes.clone() },
            self.now(),
            &mut self.out,
        );
        assert!(self.out.is_empty(), "a social write causes no event: {:?}", self.out.outputs());
        assert_eq!(self.core.debug_party_digest(), party_digest, "a social write changes no party");
        match (&result, expected) {
            (Ok(_), Ok(model)) => {
                self.lobby2.friends = model.0;
                self.lobby2.blocks = model.1;
                self.stats.lobby2.social_writes += 1;
            }
            (Err(got), Err(want)) => {
                assert_eq!(got.code(), want, "{writes:?}: {got}");
                assert_eq!(self.core.debug_social_digest(), digest, "a refused social write changed the table");
                self.stats.lobby2.social_refused += 1;
            }
            (got, want) => panic!("{writes:?}: got {got:?}, the model expected {want:?}"),
        }
        for user in self.users.iter().chain(&self.ghosts) {
            for (list, model) in
                [(SocialList::Friends, &self.lobby2.friends), (SocialList::Blocks, &self.lobby2.blocks)]
            {
                let expected: Vec<UserId> =
                    model.get(user).map(|set| set.iter().cloned().collect()).unwrap_or_default();
                assert_eq!(self.core.social_list(user, list), expected, "{user:?}'s {list:?}");
            }
        }
        assert_eq!(self.core.social_size().1, self.lobby2.entries(), "the social table's entries");
    }

    /// The tables after `writes`, or the code they are refused with.
    #[allow(clippy::type_complexity)]
    fn expected_social(
        &self,
        writes: &[SocialWrite],
    ) -> Result<(BTreeMap<UserId, BTreeSet<UserId>>, BTreeMap<UserId, BTreeSet<UserId>>), ErrorCode> {
        let (mut friends, mut blocks) = (self.lobby2.friends.clone(), self.lobby2.blocks.clone());
        for write in writes {
            for (list, table, max) in [
                (&write.friends, &mut friends, self.limits.social_friends_per_user_max),
                (&write.blocks, &mut blocks, self.limits.social_blocks_per_user_max),
            ] {
                let Some(ids) = list else { continue };
                if ids.iter().any(|id| id.as_str().is_empty() || id.as_str().len() > UserId::BYTES_MAX) {
                    return Err(ErrorCode::BadInput);
                }
                if ids.contains(&write.user_id) {
                    return Err(ErrorCode::BadInput);
                }
                let set: BTreeSet<UserId> = ids.iter().cloned().collect();
                if set.len() > max {
                    return Err(ErrorCode::BadInput);
                }
                if set.is_empty() {
                    table.remove(&write.user_id);
                } else {
                    table.insert(write.user_id.clone(), set);
                }
            }
        }
        let entries: usize = friends.values().chain(blocks.values()).map(BTreeSet::len).sum();
        if entries > self.limits.social_entries_max {
            return Err(ErrorCode::LimitExceeded);
        }
        Ok((friends, blocks))
    }

    // ---- L-4, L-7: checks on party requests (called by `party.rs`) ----

    /// Who may join, and names, for a party request just answered; `party` is the party the
    /// request named, as it was before.
    pub(super) fn check_lobby2_party_request(
        &mut self,
        me: &Presence,
        request: &PartyRequest,
        party: Option<&PartySnapshot>,
        before: &View,
        result: &Result<Reply, CoreError>,
    ) {
        match request {
            PartyRequest::Join { .. } => self.check_join_gates(me, party, before, result),
            PartyRequest::Accept { presence, .. } => {
                let Some(party) = party else { return };
                let leader = &party.leader.user_id;
                let pending = before.is_pending(party.party_id, presence.session_id);
                let in_party_elsewhere =
                    self.limits.one_party_per_user && self.connected_member_of_any(&presence.user_id, before).is_some();
                if party.leader == *me && pending && !in_party_elsewhere {
                    let blocked = self.lobby2.blocked_either_way(leader, &presence.user_id);
                    let refused_blocked = matches!(result, Err(CoreError::PartyJoinBlocked));
                    // A request from another presence (a wrong username) is refused first.
                    if result.is_ok() || refused_blocked {
                        assert_eq!(refused_blocked, blocked, "accepting a request of a blocked user: {result:?}");
                    }
                }
            }
            PartyRequest::Create { lobby, .. } => {
                self.check_name(&lobby.name, result, true);
            }
            PartyRequest::Update { lobby, .. } => {
                if let (Some(name), Some(party)) = (&lobby.name, party) {
                    self.check_name(name, result, *name != party.lobby.name);
                }
            }
            _ => {}
        }
    }

    fn check_name(&mut self, name: &str, result: &Result<Reply, CoreError>, checked: bool) {
        let rule = if checked { name_rule(name, self.limits.party_name_bytes_max) } else { Ok(()) };
        match result {
            Ok(_) => {
                assert_eq!(rule, Ok(()), "name {name:?} was accepted");
                if !name.is_empty() {
                    self.stats.lobby2.names_set += 1;
                }
            }
            Err(CoreError::PartyNameDenied) => {
                assert_eq!(rule, Err(ErrorCode::PartyNameDenied), "name {name:?} refused as denied");
                self.stats.lobby2.names_denied += 1;
            }
            Err(_) => {}
        }
    }

    /// The member session of `user` in any party, as `view` shows it (one party per user).
    fn connected_member_of_any(&self, user: &UserId, view: &View) -> Option<PartyId> {
        self.sessions.iter().filter(|(_, s)| &s.presence.user_id == user).find_map(|(id, _)| view.first_party_of(*id))
    }

    fn check_join_gates(
        &mut self,
        me: &Presence,
        party: Option<&PartySnapshot>,
        before: &View,
        result: &Result<Reply, CoreError>,
    ) {
        let Some(party) = party else { return };
        let gate = if party.members.contains(me) {
            None
        } else if party.lobby.join_strategy == JoinStrategy::NotAllowed {
            Some(ErrorCode::PartyJoinNotAllowed)
        } else if self.lobby2.blocked_either_way(&party.leader.user_id, &me.user_id) {
            Some(ErrorCode::PartyJoinBlocked)
        } else if self.limits.one_party_per_user && self.connected_member_of_any(&me.user_id, before).is_some() {
            Some(ErrorCode::PartyAlreadyInParty)
        } else if party.members.len() >= usize::from(party.max_size) {
            Some(ErrorCode::PartyFull)
        } else if self.lobby.is_invited(party.party_id, &me.user_id) {
            None
        } else {
            match party.lobby.join_strategy {
                JoinStrategy::InvitedOnly => Some(ErrorCode::PartyNotInvited),
                JoinStrategy::FriendsOfLeader if !self.lobby2.is_friend_of(&me.user_id, &party.leader.user_id) => {
                    Some(ErrorCode::PartyNotFriendOfLeader)
                }
                JoinStrategy::FriendsOfMembers
                    if !party.members.iter().any(|m| self.lobby2.is_friend_of(&me.user_id, &m.user_id)) =>
                {
                    Some(ErrorCode::PartyNotFriendOfMembers)
                }
                JoinStrategy::FriendsOfLeader | JoinStrategy::FriendsOfMembers => {
                    self.stats.lobby2.joins_as_friend += 1;
                    None
                }
                _ => None,
            }
        };
        let gates = [
            ErrorCode::PartyJoinNotAllowed,
            ErrorCode::PartyJoinBlocked,
            ErrorCode::PartyAlreadyInParty,
            ErrorCode::PartyFull,
            ErrorCode::PartyNotInvited,
            ErrorCode::PartyNotFriendOfLeader,
            ErrorCode::PartyNotFriendOfMembers,
        ];
        match (gate, result) {
            (Some(want), Err(got)) => {
                assert_eq!(got.code(), want, "the join of {me:?} to {}: {got}", party.party_id);
                self.stats.lobby2.joins_gated += 1;
                match want {
                    ErrorCode::PartyJoinBlocked => self.stats.lobby2.joins_blocked += 1,
                    ErrorCode::PartyNotFriendOfLeader | ErrorCode::PartyNotFriendOfMembers => {
                        self.stats.lobby2.joins_not_friend += 1
                    }
                    _ => {}
                }
            }
            (Some(want), Ok(reply)) => {
                panic!("the join of {me:?} to {} passed gate {want:?}: {reply:?}", party.party_id)
            }
            (None, Err(got)) => {
                assert!(!gates.contains(&got.code()), "the join of {me:?} to {} refused by {got}", party.party_id)
            }
            (None, Ok(_)) => {}
        }
    }

    // ---- L-5 custom data ----

    fn custom_data(&mut self) {
        let party_id = self.pick_party();
        let party = self.core.debug_party(party_id);
        let scope = if self.rng.chance(50) { CustomDataScope::Global } else { CustomDataScope::Member };
        let me = match &party {
            Some(p) if self.rng.chance(85) => {
                if scope == CustomDataScope::Global && self.rng.chance(70) {
                    p.leader.clone()
                } else {
                    self.rng.pick(&p.members).expect("members")
                }
            }
            _ => self.pick_presence_any(),
        };
        let bytes_max = self.limits.party_custom_data_bytes_max;
        let len = self.rng.below(bytes_max + 2);
        let value: String = ["", "r", "ready", "x"][self.rng.below(4)].repeat(len).chars().take(len).collect();
        let expected = match &party {
            None => Some(ErrorCode::PartyNotFound),
            Some(p) if !p.members.contains(&me) => Some(ErrorCode::PartyNotMember),
            Some(p) if scope == CustomDataScope::Global && p.leader != me => Some(ErrorCode::PartyNotLeader),
            Some(_) if value.len() > bytes_max => Some(ErrorCode::LimitExceeded),
            Some(_) => None,
        };
        let request = LobbyRequest::CustomDataSet { party_id, scope, value: value.clone() };
        let Some(result) = self.lobby2_request(&me, request, expected) else { return };
        assert_eq!(result, Reply::Party(PartyReply::Ok { party_id }));
        let after = self.core.debug_party(party_id).expect("the party is live");
        let (held, owner) = match scope {
            CustomDataScope::Global => (after.data.custom_data.clone(), None),
            CustomDataScope::Member => {
                let held = after.data.member_custom_data.iter().find(|(s, _)| *s == me.session_id);
                (held.map_or(String::new(), |(_, v)| v.clone()), Some(me.clone()))
            }
        };
        assert_eq!(held, value, "the snapshot holds the value written");
        self.stats.lobby2.custom_data_set += 1;
        let changed = LobbyEvent::CustomDataChanged { party_id, member: owner, value, version: after.version };
        self.expect_first_event(&Self::member_sessions(&after), &Event::Lobby(changed), "custom data");
    }

    // ---- L-6 chat ----

    fn chat(&mut self) {
        let party_id = self.pick_party();
        let party = self.core.debug_party(party_id);
        let me = match &party {
            Some(p) if self.rng.chance(85) => self.rng.pick(&p.members).expect("members"),
            _ => self.pick_presence_any(),
        };
        let kind = if self.rng.chance(70) { ChatKind::Text } else { ChatKind::Custom };
        let bytes_max = self.limits.chat_body_bytes_max;
        let len = self.rng.below(bytes_max + 2);
        let mut body = vec![b'g'; len];
        if len > 0 && self.rng.chance(10) {
            body[0] = 0xff; // not UTF-8
        }
        let now = self.now;
        let (window_ms, messages_max) = (self.limits.chat_window_ms, self.limits.chat_messages_per_window_max);
        let window = self.lobby2.chat_sent.entry(me.session_id).or_default();
        while window.front().is_some_and(|t| now.saturating_sub(*t) >= window_ms) {
            window.pop_front();
        }
        let full = window.len() >= messages_max;
        let expected = match &party {
            None => Some(ErrorCode::PartyNotFound),
            Some(p) if !p.members.contains(&me) => Some(ErrorCode::PartyNotMember),
            Some(p) if !p.lobby.chat_enabled => Some(ErrorCode::PartyChatDisabled),
            Some(_) if body.is_empty() => Some(ErrorCode::BadInput),
            Some(_) if body.len() > bytes_max => Some(ErrorCode::LimitExceeded),
            Some(_) if kind == ChatKind::Text && std::str::from_utf8(&body).is_err() => Some(ErrorCode::BadInput),
            Some(_) if full => Some(ErrorCode::LimitExceeded),
            Some(_) => None,
        };
        if full && expected == Some(ErrorCode::LimitExceeded) && body.len() <= bytes_max {
            self.stats.lobby2.chat_rate_limited += 1;
        }
        let version = party.as_ref().map(|p| p.version);
        let request = LobbyRequest::ChatSend { party_id, kind, body: Bytes::from(body.clone()) };
        let Some(result) = self.lobby2_request(&me, request, expected) else { return };
        let Reply::Lobby(LobbyReply::ChatSent(message)) = result else { panic!("a chat reply: {result:?}") };
        self.lobby2.chat_sent.entry(me.session_id).or_default().push_back(now);
        let wall = self.now().wall;
        let (last_sequence, last_at) = self.lobby2.chat.get(&party_id).copied().unwrap_or((0, UnixMillis(0)));
        if last_at > wall {
            self.stats.lobby2.chat_time_held += 1;
        }
        let sent_at = last_at.max(wall);
        assert_eq!((message.sequence, message.sent_at), (last_sequence + 1, sent_at), "sequence and time");
        assert_eq!((&message.sender, message.kind, &message.body[..]), (&me, kind, &body[..]));
        self.lobby2.chat.insert(party_id, (message.sequence, sent_at));
        let after = self.core.debug_party(party_id).expect("live");
        assert_eq!(Some(after.version), version, "chat is not a version step");
        let others: Vec<SessionId> =
            Self::member_sessions(&after).into_iter().filter(|s| *s != me.session_id).collect();
        let outputs = &self.out.outputs()[1..];
        match outputs {
            [] => assert!(others.is_empty(), "chat reached nobody"),
            [Output::Event { recipients, event: Event::Lobby(LobbyEvent::ChatMessage(sent)) }] => {
                assert_eq!(self.out.recipients(recipients.clone()), &others[..], "every other member session");
                assert_eq!(sent, &message, "the event is the reply's message");
            }
            other => panic!("chat caused {other:?}"),
        }
        self.stats.lobby2.chat_sent += 1;
        self.stats.events += u64::from(!others.is_empty());
        self.stats.deliveries += others.len() as u64;
        self.out.clear();
    }

    // ---- L-8 attributes ----

    fn attributes(&mut self) {
        let party_id = self.pick_party();
        let party = self.core.debug_party(party_id);
        let stored = party.as_ref().map_or(0, |p| p.data.attributes_timestamp.0);
        let timestamp = match self.rng.below(4) {
            0 => stored.saturating_sub(self.rng.below(3) as u64).max(1),
            _ => stored + self.rng.range(1, 5) as u64,
        };
        let filler = "a".repeat(self.rng.below(self.limits.party_attributes_bytes_max));
        let attributes = format!(r#"{{"k":"{filler}"}}"#);
        let too_large = attributes.len() > self.limits.party_attributes_bytes_max;
        let stale = party.is_some() && !too_large && timestamp <= stored;
        let expected = match &party {
            None => Some(ErrorCode::PartyNotFound),
            Some(_) if too_large => Some(ErrorCode::BadInput),
            // `StaleAttributes` (the admin API's 409) has the code of bad input.
            Some(_) if stale => Some(ErrorCode::BadInput),
            Some(_) => None,
        };
        let before = View::of(&self.core);
        let digest = self.core.debug_party_digest();
        let request = crate::core::AdminRequest::SetPartyAttributes {
            party_id,
            attributes: attributes.clone(),
            timestamp: UnixMillis(timestamp),
        };
        let result = self.core.handle_admin(request, self.now(), &mut self.out);
        self.check_recipients_connected();
        match (&result, expected) {
            (Err(CoreError::StaleAttributes { stored: s, given }), Some(_)) if stale => {
                assert_eq!((s.0, given.0), (stored, timestamp));
                self.stats.lobby2.attributes_stale += 1;
            }
            (Err(got), Some(want)) if !stale => assert_eq!(got.code(), want, "{got}"),
            (Ok(_), None) => {}
            (got, want) => panic!("attributes at {timestamp} (stored {stored}): got {got:?}, expected {want:?}"),
        }
        if result.is_err() {
            assert!(self.out.is_empty(), "a refused write causes no event");
            assert_eq!(self.core.debug_party_digest(), digest, "a refused write changed the tables");
            return;
        }
        let after = self.core.debug_party(party_id).expect("live");
        assert_eq!((&after.data.attributes, after.data.attributes_timestamp.0), (&attributes, timestamp));
        self.stats.lobby2.attributes_written += 1;
        let updated = LobbyEvent::AttributesUpdated {
            party_id,
            attributes,
            timestamp: UnixMillis(timestamp),
            version: after.version,
        };
        // The snapshot events after it are the L-9 checks' (noted as a party check notes them).
        let first = self.out.outputs().first().cloned();
        match first {
            Some(Output::Event { recipients, event }) => {
                assert_eq!(self.out.recipients(recipients), &Self::member_sessions(&after)[..]);
                assert_eq!(event, Event::Lobby(updated));
            }
            other => panic!("attributes caused {other:?}"),
        }
        let outputs = 1..self.out.outputs().len();
        self.check_party_events(outputs, None, false, &before, &before);
        self.out.clear();
    }

    // ---- shared ----

    fn member_sessions(party: &PartySnapshot) -> Vec<SessionId> {
        party.members.iter().map(|m| m.session_id).collect()
    }

    /// Sends a Lobby II request and checks its outcome against `expected`; a refusal must change
    /// no table and cause no event. Returns the reply on success (the outbox still holds its
    /// events), `None` on a refusal (the outbox cleared).
    fn lobby2_request(&mut self, me: &Presence, request: LobbyRequest, expected: Option<ErrorCode>) -> Option<Reply> {
        self.stats.requests += 1;
        let digest = self.core.debug_party_digest();
        let cid = self.next_cid();
        self.core.handle_request(me.session_id, cid, Request::Lobby(request.clone()), self.now(), &mut self.out);
        self.check_recipients_connected();
        let result = self.reply_first(me.session_id, cid, &request);
        match (&result, expected) {
            (Ok(reply), None) => Some(reply.clone()),
            (Err(got), Some(want)) => {
                assert_eq!(got.code(), want, "{request:?}: {got}");
                self.stats.refusal(got);
                assert_eq!(self.out.outputs().len(), 1, "refused {request:?} caused events");
                assert_eq!(self.core.debug_party_digest(), digest, "refused {request:?} changed the tables");
                self.out.clear();
                None
            }
            (got, want) => panic!("{request:?}: got {got:?}, the model expected {want:?}"),
        }
    }

    /// The first event after the reply is `event` to `recipients`; the rest (snapshots) go to the
    /// party checks, which note them for the L-9 checks at the step's end.
    fn expect_first_event(&mut self, recipients: &[SessionId], event: &Event, what: &str) {
        match self.out.outputs().get(1) {
            Some(Output::Event { recipients: got, event: sent }) => {
                assert_eq!(self.out.recipients(got.clone()), recipients, "{what}: recipients");
                assert_eq!(sent, event, "{what}: the event");
            }
            other => panic!("{what}: expected an event, got {other:?}"),
        }
        self.stats.events += 1;
        self.stats.deliveries += recipients.len() as u64;
        let view = View::of(&self.core);
        let outputs = 2..self.out.outputs().len();
        self.check_party_events(outputs, None, false, &view, &view);
        self.out.clear();
    }
}
