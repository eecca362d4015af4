//! Statuses and follows (SPEC S-1 … S-3, C-3, C-6): every rule and every table of the feature.
//!
//! Tables, all keyed by connected sessions (every connected session has an entry, visible or
//! not, because follows and "the user's own sessions" do not depend on visibility):
//! - `sessions`: session → its status (`None` = not visible) and the users it follows;
//! - `followers`: followed user → the sessions following it, so one status change costs
//!   O(followers); it mirrors the sessions' follow sets, so a disconnect costs O(own follows).
//!
//! Who is connected as whom, a user's sessions in connect order (they receive the user's status
//! events; follow replies list them in that order) and username → users (follow by username)
//! come from the shared session table (`core/session.rs`) through the request context.
//!
//! Determinism: no hash-map iteration order reaches an output. Follower sets are ordered by
//! session id, a user's sessions keep connect order, follow replies keep request order.
//!
//! A session never follows its own user (skipped at follow time), so the followers of a user
//! and the user's own sessions are disjoint: an event's recipient list is their concatenation,
//! with no duplicates and no dedup pass.

use super::context::Ctx;
use super::outbox::Events;
use super::session::Sessions;
use super::{CoreError, Event, Presence, Reply, SessionId, UserId, Username};
use crate::limits::Limits;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A status request of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusRequest {
    /// S-1: `Some(text)` sets the status (`""` is online with an empty status); `None` = appear
    /// offline.
    Update { status: Option<String> },
    /// S-2: follow these users, by id and by username (resolved among connected users).
    Follow { user_ids: Vec<UserId>, usernames: Vec<Username> },
    /// S-2: stop following these users.
    Unfollow { user_ids: Vec<UserId> },
}

/// The successful result of a status request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusReply {
    Updated,
    /// The current status of every visible session of the users the request named.
    Followed {
        presences: Vec<StatusPresence>,
    },
    Unfollowed,
}

/// A presence with its status: one visible session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPresence {
    pub presence: Presence,
    pub status: String,
}

/// S-3: statuses that appeared (`joins`) and disappeared (`leaves`). A change is one event
/// with the old status in `leaves` and the new one in `joins`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub joins: Vec<StatusPresence>,
    pub leaves: Vec<StatusPresence>,
}

struct SessionStatus {
    /// `None`: not visible (never set, or appearing offline).
    status: Option<String>,
    /// Users this session follows. Only ever iterated to unindex on disconnect, where order
    /// does not matter.
    follows: HashSet<UserId>,
}

#[derive(Default)]
pub(crate) struct Statuses {
    sessions: HashMap<SessionId, SessionStatus>,
    followers: HashMap<UserId, BTreeSet<SessionId>>,
    /// Sessions whose status is `Some`, kept to cross-check the table.
    visible_count: usize,
}

impl Statuses {
    /// Registers a session that just connected (it is in `ctx.sessions` already); `visible`
    /// (C-3) gives it the empty status at once, announced to its followers and own sessions.
    pub fn connect(&mut self, presence: &Presence, visible: bool, ctx: &mut Ctx) {
        let session = presence.session_id;
        let previous = self.sessions.insert(session, SessionStatus { status: None, follows: HashSet::new() });
        debug_assert!(previous.is_none(), "session {session} connected twice");
        if visible {
            self.set_status(presence, Some(String::new()), ctx);
        }
    }

    /// Forgets a session that just disconnected (already gone from `ctx.sessions`, so its own
    /// event does not reach it): C-6, its follows die, and a visible status leaves with its
    /// last value. Unknown sessions are ignored.
    pub fn disconnect(&mut self, presence: &Presence, ctx: &mut Ctx) {
        let session = presence.session_id;
        let Some(entry) = self.sessions.remove(&session) else { return };
        for user_id in &entry.follows {
            unindex_follower(&mut self.followers, user_id, session);
        }
        let Some(status) = entry.status else { return };
        self.visible_count -= 1;
        let leave = StatusPresence { presence: presence.clone(), status };
        let event = StatusEvent { joins: vec![], leaves: vec![leave] };
        self.publish(&presence.user_id, event, ctx.sessions, &mut ctx.events);
    }

    /// One status request of `me`: its reply wrapped as the core's [`Reply`], as every feature
    /// handler returns it. Validates first, then mutates: an error leaves every table as it
    /// was. Events (after the reply) go to `ctx.events`.
    pub fn handle(&mut self, me: &Presence, request: StatusRequest, ctx: &mut Ctx) -> Result<Reply, CoreError> {
        self.rule(me, request, ctx).map(Reply::Status)
    }

    fn rule(&mut self, me: &Presence, request: StatusRequest, ctx: &mut Ctx) -> Result<StatusReply, CoreError> {
        let limits = ctx.limits;
        match request {
            StatusRequest::Update { status } => {
                if let Some(text) = &status {
                    if text.len() > limits.status_bytes_max {
                        return Err(CoreError::LimitExceeded(format!(
                            "status is {} bytes; status_bytes_max is {}",
                            text.len(),
                            limits.status_bytes_max
                        )));
                    }
                    if let Some((character, byte)) = control_character(text) {
                        return Err(CoreError::StatusControlCharacter { character, byte });
                    }
                }
                self.set_status(me, status, ctx);
                Ok(StatusReply::Updated)
            }
            StatusRequest::Follow { user_ids, usernames } => self.follow(me, user_ids, usernames, ctx),
            StatusRequest::Unfollow { user_ids } => {
                check_names(user_ids.len(), limits)?;
                check_ids(user_ids.iter().map(UserId::as_str), "user_ids", UserId::BYTES_MAX)?;
                let session = me.session_id;
                let Some(entry) = self.sessions.get_mut(&session) else {
                    return Ok(StatusReply::Unfollowed);
                };
                for user_id in &user_ids {
                    if entry.follows.remove(user_id) {
                        unindex_follower(&mut self.followers, user_id, session);
                    }
                }
                Ok(StatusReply::Unfollowed)
            }
        }
    }

    fn follow(
        &mut self,
        me: &Presence,
        user_ids: Vec<UserId>,
        usernames: Vec<Username>,
        ctx: &Ctx,
    ) -> Result<StatusReply, CoreError> {
        let limits = ctx.limits;
        check_ids(user_ids.iter().map(UserId::as_str), "user_ids", UserId::BYTES_MAX)?;
        check_ids(usernames.iter().map(Username::as_str), "usernames", Username::BYTES_MAX)?;
        let session = me.session_id;
        let Some(entry) = self.sessions.get(&session) else {
            return Ok(StatusReply::Followed { presences: vec![] });
        };
        let own = &me.user_id;
        // The users this request names, in request order (ids, then usernames in the order
        // given, each resolving to its connected user ids in id order), once each, without the
        // caller's own user. Unknown usernames resolve to nobody: there is no user to follow yet.
        // SPEC S-2: these users, not the names given, count against follow_ids_per_request_max,
        // which bounds the reply by construction; resolving stops at the first one too many.
        let users_max = limits.follow_ids_per_request_max;
        let capacity = (user_ids.len() + usernames.len()).min(users_max + 1);
        let mut seen: HashSet<&UserId> = HashSet::with_capacity(capacity);
        let mut targets: Vec<UserId> = Vec::with_capacity(capacity);
        let resolved = usernames.iter().flat_map(|name| ctx.sessions.users_named(name));
        for user_id in user_ids.iter().chain(resolved) {
            if user_id != own && seen.insert(user_id) {
                if targets.len() == users_max {
                    return Err(CoreError::LimitExceeded(format!(
                        "request resolves to more than {users_max} users (its user ids plus every connected user \
                         its usernames name); follow_ids_per_request_max is {users_max}"
                    )));
                }
                targets.push(user_id.clone());
            }
        }
        let new_count = targets.iter().filter(|u| !entry.follows.contains(*u)).count();
        if entry.follows.len() + new_count > limits.follows_per_session_max {
            return Err(CoreError::FollowLimitReached {
                following: entry.follows.len(),
                adding: new_count,
                max: limits.follows_per_session_max,
            });
        }
        let mut presences = Vec::new();
        for user_id in &targets {
            for &other in ctx.sessions.sessions_of(user_id) {
                // Invariant: every connected session has a status entry (check_invariants).
                if let Some(status) = &self.sessions[&other].status {
                    let presence = ctx.sessions.presence(other).expect("Invariant: listed sessions are connected");
                    presences.push(StatusPresence { presence: presence.clone(), status: status.clone() });
                }
            }
        }
        // Invariant: the entry was found above and nothing removed it since.
        let entry = self.sessions.get_mut(&session).expect("caller's session entry");
        for user_id in targets {
            if entry.follows.insert(user_id.clone()) {
                self.followers.entry(user_id).or_default().insert(session);
            }
        }
        Ok(StatusReply::Followed { presences })
    }

    /// Sets a session's status and announces the change (nothing when nothing changes).
    fn set_status(&mut self, presence: &Presence, status: Option<String>, ctx: &mut Ctx) {
        let Some(entry) = self.sessions.get_mut(&presence.session_id) else { return };
        if entry.status == status {
            // Same status again, or offline while offline: nobody would learn anything.
            return;
        }
        let old = std::mem::replace(&mut entry.status, status.clone());
        match (&old, &status) {
            (None, Some(_)) => self.visible_count += 1,
            (Some(_), None) => self.visible_count -= 1,
            _ => {}
        }
        let with = |status: Option<String>| {
            status.map(|status| StatusPresence { presence: presence.clone(), status }).into_iter().collect()
        };
        let event = StatusEvent { joins: with(status), leaves: with(old) };
        self.publish(&presence.user_id, event, ctx.sessions, &mut ctx.events);
    }

    /// Queues a status event of `user_id` for the sessions following it and the user's own
    /// sessions (including the one that changed, which gets it after its reply).
    fn publish(&self, user_id: &UserId, event: StatusEvent, sessions: &Sessions, events: &mut Events) {
        let followers = self.followers.get(user_id).into_iter().flatten();
        let own = sessions.sessions_of(user_id);
        events.send(followers.chain(own).copied(), Event::Status(event));
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether `session` follows `user_id` (for tests and the simulation's model checks).
    pub fn follows(&self, session: SessionId, user_id: &UserId) -> bool {
        self.sessions.get(&session).is_some_and(|e| e.follows.contains(user_id))
    }

    /// The session's status: `None` when not visible or not connected.
    pub fn status_of(&self, session: SessionId) -> Option<&str> {
        self.sessions.get(&session).and_then(|e| e.status.as_deref())
    }

    /// A hash of every table, independent of `HashMap` order.
    pub fn digest(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let mut sessions: Vec<(&SessionId, &SessionStatus)> = self.sessions.iter().collect();
        sessions.sort_by_key(|(id, _)| **id);
        for (id, entry) in sessions {
            let mut follows: Vec<&UserId> = entry.follows.iter().collect();
            follows.sort();
            (id, &entry.status, follows).hash(hasher);
        }
    }

    /// Test hook for the simulation's canary: breaks the mirror between the two follow indexes
    /// (or, with no follows at all, the visible count) so the checker must notice.
    pub fn corrupt_for_test(&mut self) {
        if let Some(set) = self.followers.values_mut().next() {
            let first = *set.iter().next().expect("no empty follower sets");
            set.remove(&first);
        } else {
            self.visible_count += 1;
        }
    }

    /// Consistency of every table, alone and against the session table.
    pub fn check_invariants(&self, limits: &Limits, sessions: &Sessions) {
        assert_eq!(self.sessions.len(), sessions.len(), "status table and session table differ in size");
        // Each check walks one side and looks every entry up in the other index, then compares
        // totals: an injection between finite sets of equal size is a bijection, so the indexes
        // mirror each other exactly without building a copy of either (this runs after every
        // step of the simulation, so it must stay cheap).
        let mut visible = 0;
        let mut follow_pairs = 0;
        for (&session, entry) in &self.sessions {
            let presence = sessions.presence(session);
            assert!(presence.is_some(), "status entry of {session}, which is not connected");
            if let Some(status) = &entry.status {
                visible += 1;
                assert!(status.len() <= limits.status_bytes_max, "status of {session} over status_bytes_max");
                assert!(control_character(status).is_none(), "status of {session} holds a control character");
            }
            assert!(entry.follows.len() <= limits.follows_per_session_max, "{session} follows too many users");
            assert!(!presence.is_some_and(|p| entry.follows.contains(&p.user_id)), "{session} follows its own user");
            for user_id in &entry.follows {
                follow_pairs += 1;
                assert!(
                    self.followers.get(user_id).is_some_and(|set| set.contains(&session)),
                    "{session} follows {user_id:?} but the followers index does not say so"
                );
            }
        }
        assert_eq!(visible, self.visible_count, "visible session count drifted");
        let mut indexed_pairs = 0;
        for (user_id, set) in &self.followers {
            assert!(!set.is_empty(), "empty follower set kept for {user_id:?}");
            indexed_pairs += set.len();
        }
        assert_eq!(follow_pairs, indexed_pairs, "the followers index lists follows no session has");
    }
}

/// S-1: a status is display text. Its first C0 control character other than tab, line feed and
/// carriage return, or DEL, with its byte offset; such a status is refused. No client displays
/// one, and Nakama's JSON escapes one to six bytes (`\u0001`), which would let a status outgrow
/// the follow reply bound (SPEC S-2: `Limits::follow_reply_bytes_max` counts two bytes per
/// byte). Tab, line feed and carriage return stay: statuses often carry pretty-printed JSON, and
/// they escape to two bytes. All of these are ASCII, so a byte scan finds them (no byte of a
/// multi-byte UTF-8 character is below 0x80).
fn control_character(status: &str) -> Option<(char, usize)> {
    let refused = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
    status.bytes().position(refused).map(|byte| (char::from(status.as_bytes()[byte]), byte))
}

fn unindex_follower(followers: &mut HashMap<UserId, BTreeSet<SessionId>>, user_id: &UserId, session: SessionId) {
    if let Some(set) = followers.get_mut(user_id) {
        set.remove(&session);
        if set.is_empty() {
            followers.remove(user_id);
        }
    }
}

fn check_names(count: usize, limits: &Limits) -> Result<(), CoreError> {
    if count > limits.follow_ids_per_request_max {
        return Err(CoreError::LimitExceeded(format!(
            "request names {count} users; follow_ids_per_request_max is {}",
            limits.follow_ids_per_request_max
        )));
    }
    Ok(())
}

/// Ids and usernames come from tokens (1..=`BYTES_MAX` bytes), so anything else names nobody
/// and is a client bug worth reporting rather than storing.
fn check_ids<'a>(names: impl Iterator<Item = &'a str>, field: &str, bytes_max: usize) -> Result<(), CoreError> {
    for (i, name) in names.enumerate() {
        if name.is_empty() || name.len() > bytes_max {
            return Err(CoreError::BadInput(format!("{field}[{i}] must be 1..={bytes_max} bytes")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Cid, ConnectOptions, Core, Identity, Millis, Now, Outbox, Output, Request};

    fn connect(core: &mut Core, user: &str, slot: u32) -> Presence {
        let presence = Presence {
            user_id: UserId::new(user),
            session_id: SessionId::new(slot, 1),
            username: Username::new(&user.to_uppercase()),
        };
        let identity = Identity { user_id: presence.user_id.clone(), username: presence.username.clone() };
        core.connect(presence.session_id, identity, ConnectOptions::default(), Now::default(), &mut Outbox::new());
        presence
    }

    /// The outputs of one status request.
    fn request(core: &mut Core, me: &Presence, request: StatusRequest) -> Vec<(Vec<SessionId>, Output)> {
        let mut out = Outbox::new();
        core.handle_request(me.session_id, Cid(1), Request::Status(request), Now::simulated(Millis(1)), &mut out);
        let mut outputs = Vec::new();
        out.drain(|output, recipients| outputs.push((recipients.to_vec(), output)));
        outputs
    }

    #[test]
    fn change_is_one_event_with_old_in_leaves_and_new_in_joins_to_followers_then_own_sessions() {
        let mut core = Core::new(Limits::default(), [1; 32]);
        let (alice, alice2, bob) =
            (connect(&mut core, "alice", 0), connect(&mut core, "alice", 1), connect(&mut core, "bob", 2));
        let follow = StatusRequest::Follow { user_ids: vec![UserId::new("alice")], usernames: vec![] };
        request(&mut core, &bob, follow);
        let update = |s: &str| StatusRequest::Update { status: Some(s.into()) };
        request(&mut core, &alice, update("a"));
        let outputs = request(&mut core, &alice, update("b"));
        let [(_, Output::Reply { result: Ok(Reply::Status(StatusReply::Updated)), .. }), (recipients, Output::Event { event: Event::Status(event), .. })] =
            &outputs[..]
        else {
            panic!("expected the reply, then one status event: {outputs:?}")
        };
        assert_eq!(recipients, &[bob.session_id, alice.session_id, alice2.session_id]);
        assert_eq!(event.leaves, vec![StatusPresence { presence: alice.clone(), status: "a".into() }]);
        assert_eq!(event.joins, vec![StatusPresence { presence: alice.clone(), status: "b".into() }]);
        let again = request(&mut core, &alice, update("b"));
        assert_eq!(again.len(), 1, "the same status again changes nothing and sends nothing: {again:?}");
        core.assert_invariants();
    }

    /// S-1: a status is display text. A C0 control character other than tab, line feed and
    /// carriage return, or DEL, is refused with error 200 naming it and its byte offset; the
    /// old status stays and nobody hears anything. Tab, line feed and carriage return (statuses
    /// carrying pretty-printed JSON) and non-ASCII text are taken.
    #[test]
    fn a_status_with_a_control_character_is_refused_naming_it_and_the_old_status_stays() {
        let mut core = Core::new(Limits::default(), [1; 32]);
        let (alice, bob) = (connect(&mut core, "alice", 0), connect(&mut core, "bob", 1));
        request(&mut core, &bob, StatusRequest::Follow { user_ids: vec![UserId::new("alice")], usernames: vec![] });
        let update = |s: &str| StatusRequest::Update { status: Some(s.into()) };
        let pretty = "{\n\t\"match\": \"é\\\"\"\r\n}";
        assert_eq!(request(&mut core, &alice, update(pretty)).len(), 2, "the reply and the join");
        for (status, character, byte) in
            [("\u{0}", '\u{0}', 0), ("ok \u{1}", '\u{1}', 3), ("é\u{1b}[31m", '\u{1b}', 2), ("x\u{7f}", '\u{7f}', 1)]
        {
            let outputs = request(&mut core, &alice, update(status));
            let [(_, Output::Reply { result: Err(error), .. })] = &outputs[..] else {
                panic!("{status:?} must be refused and announce nothing: {outputs:?}")
            };
            assert_eq!(error, &CoreError::StatusControlCharacter { character, byte });
            assert_eq!(error.code(), crate::core::ErrorCode::BadInput);
            let text = error.to_string();
            assert!(text.contains(&format!("U+{:04X} at byte {byte}", u32::from(character))), "{text}");
            assert_eq!(core.status_of(alice.session_id), Some(pretty), "the old status stays");
        }
        core.assert_invariants();
    }

    /// SPEC S-2: the users a follow resolves to count against follow_ids_per_request_max, each
    /// once and without the caller's own user, however many names the request gives.
    #[test]
    fn a_follow_counts_the_users_it_resolves_to_not_the_names_it_gives() {
        let limits = Limits { follow_ids_per_request_max: 3, ..Limits::default() };
        let mut core = Core::new(limits, [1; 32]);
        // Every user here is named "SAME" (connect upper-cases the user id): `same-…` ids.
        let caller = connect(&mut core, "same-me", 0);
        for i in 1..=3 {
            connect(&mut core, &format!("same-u{i}"), i);
        }
        let follow = |user_ids: &[&str], usernames: &[&str]| StatusRequest::Follow {
            user_ids: user_ids.iter().map(|u| UserId::new(u)).collect(),
            usernames: usernames.iter().map(|n| Username::new(n)).collect(),
        };
        // Seven names, three users: the duplicates and the caller's own user are not counted.
        let named = |user: &str| Username::new(&user.to_uppercase());
        let (u1, u2) = (named("same-u1"), named("same-u2"));
        let request_names = [u1.as_str(), u1.as_str(), "NOBODY", u2.as_str()];
        let outputs =
            request(&mut core, &caller, follow(&["same-u1", "same-u1", "same-me", "same-u3"], &request_names));
        let [(_, Output::Reply { result: Ok(Reply::Status(StatusReply::Followed { .. })), .. })] = &outputs[..] else {
            panic!("three users fit a limit of three: {outputs:?}")
        };
        // One more user: the same kind of request now resolves to four users.
        connect(&mut core, "same-u4", 4);
        let other = connect(&mut core, "other", 5);
        let outputs = request(&mut core, &other, follow(&["same-u1", "same-u2", "same-u3", "same-u4"], &["NOBODY"]));
        let [(_, Output::Reply { result: Err(CoreError::LimitExceeded(message)), .. })] = &outputs[..] else {
            panic!("four users are one too many: {outputs:?}")
        };
        assert!(message.contains("follow_ids_per_request_max"), "{message}");
        assert!(!core.status_follows(other.session_id, &UserId::new("same-u1")), "nothing followed");
        assert_eq!(core.sessions_of_user_count(&UserId::new("same-u1")), 1);
        assert_eq!(core.sessions_of_user_count(&UserId::new("nobody")), 0);
    }
}
