//! Statuses and follows (SPEC S-1 … S-3, C-3, C-6): every rule and every table of the feature.
//!
//! Tables, all keyed by connected sessions (every connected session has an entry, visible or
//! not, because follows and "the user's own sessions" do not depend on visibility):
//! - `sessions`: session → its presence, its status (`None` = not visible) and the users it
//!   follows;
//! - `followers`: followed user → the sessions following it, so one status change costs
//!   O(followers); it mirrors the sessions' follow sets, so a disconnect costs O(own follows);
//! - `user_sessions`: user → its connected sessions in connect order (the user's own sessions
//!   receive its status events; follow replies list them in this order);
//! - `by_username`: username → the connected user ids carrying it (follow by username).
//!
//! Determinism: no hash-map iteration order reaches an output. Follower sets are ordered by
//! session id, a user's sessions keep connect order, follow replies keep request order.
//!
//! A session never follows its own user (skipped at follow time), so the followers of a user
//! and the user's own sessions are disjoint: an event's recipient list is their concatenation,
//! with no duplicates and no dedup pass.

use super::{CoreError, Event, Outbox, Presence, SessionId, UserId, Username};
use crate::auth::CLAIM_BYTES_MAX;
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

/// An event still to be sent: the user whose status changed decides the recipients.
#[derive(Debug)]
pub(crate) struct StatusFanout {
    user_id: UserId,
    event: StatusEvent,
}

struct SessionStatus {
    presence: Presence,
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
    user_sessions: HashMap<UserId, Vec<SessionId>>,
    by_username: HashMap<Username, UserCounts>,
    /// Sessions whose status is `Some`, kept to cross-check the table.
    visible_count: usize,
}

impl Statuses {
    /// Registers a connected session; `visible` (C-3) gives it the empty status at once.
    pub fn connect(&mut self, presence: Presence, visible: bool) -> Option<StatusFanout> {
        let session = presence.session_id;
        self.user_sessions.entry(presence.user_id.clone()).or_default().push(session);
        self.by_username.entry(presence.username.clone()).or_default().add(&presence.user_id);
        let entry = SessionStatus { presence: presence.clone(), status: None, follows: HashSet::new() };
        let previous = self.sessions.insert(session, entry);
        debug_assert!(previous.is_none(), "session {session} connected twice");
        if visible {
            self.set_status(session, Some(String::new()))
        } else {
            None
        }
    }

    /// Forgets a session (C-6): its follows die, and a visible status leaves with its last value.
    /// Unknown sessions are ignored.
    pub fn disconnect(&mut self, session: SessionId) -> Option<StatusFanout> {
        let entry = self.sessions.remove(&session)?;
        for user_id in &entry.follows {
            unindex_follower(&mut self.followers, user_id, session);
        }
        let user_id = &entry.presence.user_id;
        if let Some(sessions) = self.user_sessions.get_mut(user_id) {
            sessions.retain(|&s| s != session);
            if sessions.is_empty() {
                self.user_sessions.remove(user_id);
            }
        }
        if let Some(users) = self.by_username.get_mut(&entry.presence.username) {
            users.remove_one(user_id);
            if users.is_empty() {
                self.by_username.remove(&entry.presence.username);
            }
        }
        let status = entry.status?;
        self.visible_count -= 1;
        let leave = StatusPresence { presence: entry.presence, status };
        Some(StatusFanout {
            user_id: leave.presence.user_id.clone(),
            event: StatusEvent { joins: vec![], leaves: vec![leave] },
        })
    }

    /// One status request. Validates first, then mutates: an error leaves every table as it
    /// was. The event to send after the reply, if any, goes to `fanout`.
    pub fn handle(
        &mut self,
        session: SessionId,
        request: StatusRequest,
        limits: &Limits,
        fanout: &mut Option<StatusFanout>,
    ) -> Result<StatusReply, CoreError> {
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
                }
                *fanout = self.set_status(session, status);
                Ok(StatusReply::Updated)
            }
            StatusRequest::Follow { user_ids, usernames } => self.follow(session, user_ids, usernames, limits),
            StatusRequest::Unfollow { user_ids } => {
                check_names(user_ids.len(), limits)?;
                check_ids(user_ids.iter().map(UserId::as_str), "user_ids")?;
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
        session: SessionId,
        user_ids: Vec<UserId>,
        usernames: Vec<Username>,
        limits: &Limits,
    ) -> Result<StatusReply, CoreError> {
        check_ids(user_ids.iter().map(UserId::as_str), "user_ids")?;
        check_ids(usernames.iter().map(Username::as_str), "usernames")?;
        let Some(entry) = self.sessions.get(&session) else {
            return Ok(StatusReply::Followed { presences: vec![] });
        };
        let own = &entry.presence.user_id;
        // The users this request names, in request order (ids, then usernames in the order
        // given, each resolving to its connected user ids in id order), once each, without the
        // caller's own user. Unknown usernames resolve to nobody: there is no user to follow yet.
        // SPEC S-2: these users, not the names given, count against follow_ids_per_request_max,
        // which bounds the reply by construction; resolving stops at the first one too many.
        let users_max = limits.follow_ids_per_request_max;
        let capacity = (user_ids.len() + usernames.len()).min(users_max + 1);
        let mut seen: HashSet<&UserId> = HashSet::with_capacity(capacity);
        let mut targets: Vec<UserId> = Vec::with_capacity(capacity);
        let resolved =
            usernames.iter().filter_map(|name| self.by_username.get(name)).flat_map(|users| users.user_ids());
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
            for other in self.user_sessions.get(user_id).into_iter().flatten() {
                // Invariant: every session in user_sessions has an entry.
                let other = &self.sessions[other];
                if let Some(status) = &other.status {
                    presences.push(StatusPresence { presence: other.presence.clone(), status: status.clone() });
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

    /// Sets a session's status; returns the event it causes (none when nothing changes).
    fn set_status(&mut self, session: SessionId, status: Option<String>) -> Option<StatusFanout> {
        let entry = self.sessions.get_mut(&session)?;
        if entry.status == status {
            // Same status again, or offline while offline: nobody would learn anything.
            return None;
        }
        let old = std::mem::replace(&mut entry.status, status.clone());
        match (&old, &status) {
            (None, Some(_)) => self.visible_count += 1,
            (Some(_), None) => self.visible_count -= 1,
            _ => {}
        }
        let presence = &entry.presence;
        let with = |status: Option<String>| {
            status.map(|status| StatusPresence { presence: presence.clone(), status }).into_iter().collect()
        };
        let event = StatusEvent { joins: with(status), leaves: with(old) };
        Some(StatusFanout { user_id: presence.user_id.clone(), event })
    }

    /// Queues a status event for the sessions following its user and the user's own sessions
    /// (including the one that changed, which gets it after its reply).
    pub fn publish(&self, fanout: StatusFanout, out: &mut Outbox) {
        let followers = self.followers.get(&fanout.user_id).into_iter().flatten();
        let own = self.user_sessions.get(&fanout.user_id).into_iter().flatten();
        out.event(followers.chain(own).copied(), Event::Status(fanout.event));
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Connected sessions of `user_id`, visible or not.
    pub fn sessions_of_user_count(&self, user_id: &UserId) -> usize {
        self.user_sessions.get(user_id).map_or(0, Vec::len)
    }

    /// Whether `session` follows `user_id` (for tests and the simulation's model checks).
    pub fn follows(&self, session: SessionId, user_id: &UserId) -> bool {
        self.sessions.get(&session).is_some_and(|e| e.follows.contains(user_id))
    }

    /// The session's status: `None` when not visible or not connected.
    pub fn status_of(&self, session: SessionId) -> Option<&str> {
        self.sessions.get(&session).and_then(|e| e.status.as_deref())
    }

    /// Test hook for the simulation's canary: breaks the mirror between the two follow indexes
    /// (or, with no follows at all, the user → sessions index) so the checker must notice.
    pub fn corrupt_for_test(&mut self) {
        if let Some(set) = self.followers.values_mut().next() {
            let first = *set.iter().next().expect("no empty follower sets");
            set.remove(&first);
        } else if let Some(sessions) = self.user_sessions.values_mut().next() {
            sessions.push(sessions[0]);
        } else {
            self.visible_count += 1;
        }
    }

    /// Consistency of every table, alone and against the session table (`session_presence`
    /// answers "is this session connected, and as whom"; `session_count` is its size).
    pub fn check_invariants(
        &self,
        limits: &Limits,
        session_count: usize,
        session_presence: impl Fn(SessionId) -> Option<Presence>,
    ) {
        assert_eq!(self.sessions.len(), session_count, "status table and session table differ in size");
        // Each check walks one side and looks every entry up in the other index, then compares
        // totals: an injection between finite sets of equal size is a bijection, so the indexes
        // mirror each other exactly without building a copy of either (this runs after every
        // step of the simulation, so it must stay cheap).
        let mut visible = 0;
        let mut follow_pairs = 0;
        for (&session, entry) in &self.sessions {
            let presence = &entry.presence;
            assert_eq!(presence.session_id, session, "status entry filed under another session");
            assert_eq!(
                session_presence(session).as_ref(),
                Some(presence),
                "status entry of {session} disagrees with the session table"
            );
            if let Some(status) = &entry.status {
                visible += 1;
                assert!(status.len() <= limits.status_bytes_max, "status of {session} over status_bytes_max");
            }
            assert!(entry.follows.len() <= limits.follows_per_session_max, "{session} follows too many users");
            assert!(!entry.follows.contains(&presence.user_id), "{session} follows its own user");
            for user_id in &entry.follows {
                follow_pairs += 1;
                assert!(
                    self.followers.get(user_id).is_some_and(|set| set.contains(&session)),
                    "{session} follows {user_id:?} but the followers index does not say so"
                );
            }
            let own = self
                .user_sessions
                .get(&presence.user_id)
                .map_or(0, |list| list.iter().filter(|&&s| s == session).count());
            assert_eq!(own, 1, "{session} is not listed exactly once among its user's sessions");
        }
        assert_eq!(visible, self.visible_count, "visible session count drifted");
        let mut indexed_pairs = 0;
        for (user_id, set) in &self.followers {
            assert!(!set.is_empty(), "empty follower set kept for {user_id:?}");
            indexed_pairs += set.len();
        }
        assert_eq!(follow_pairs, indexed_pairs, "the followers index lists follows no session has");
        let mut listed = 0;
        for (user_id, sessions) in &self.user_sessions {
            assert!(!sessions.is_empty(), "empty session list kept for {user_id:?}");
            listed += sessions.len();
            // Usernames: each of this user's names counts exactly its sessions with that name.
            // (Invariant checked above: every listed session has an entry.)
            let names: Vec<&Username> = sessions.iter().map(|s| &self.sessions[s].presence.username).collect();
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    continue;
                }
                let with_name = names.iter().filter(|n| *n == name).count();
                let indexed = self.by_username.get(*name).and_then(|users| users.count(user_id));
                assert_eq!(indexed, Some(with_name), "username index count of {name:?} for {user_id:?}");
            }
        }
        assert_eq!(listed, self.sessions.len(), "user → sessions index lists sessions that are gone");
        let mut named = 0;
        for (name, users) in &self.by_username {
            assert!(!users.is_empty(), "empty username entry kept for {name:?}");
            named += users.total();
        }
        assert_eq!(named, self.sessions.len(), "username index counts sessions that are gone");
    }
}

/// The connected users carrying one username, in user-id order, each with its number of
/// connected sessions. Nearly every username belongs to one user, so a sorted vector (one
/// small allocation) replaces a map whose first node alone would cost about 300 bytes a session.
#[derive(Default)]
struct UserCounts(Vec<(UserId, usize)>);

impl UserCounts {
    fn add(&mut self, user_id: &UserId) {
        match self.0.binary_search_by(|(u, _)| u.cmp(user_id)) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (user_id.clone(), 1)),
        }
    }

    /// One session of `user_id` left; the user goes when its last session does.
    fn remove_one(&mut self, user_id: &UserId) {
        if let Ok(i) = self.0.binary_search_by(|(u, _)| u.cmp(user_id)) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.remove(i);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn count(&self, user_id: &UserId) -> Option<usize> {
        self.0.binary_search_by(|(u, _)| u.cmp(user_id)).ok().map(|i| self.0[i].1)
    }

    fn user_ids(&self) -> impl Iterator<Item = &UserId> {
        self.0.iter().map(|(u, _)| u)
    }

    fn total(&self) -> usize {
        self.0.iter().map(|(_, n)| n).sum()
    }
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

/// Ids and usernames come from tokens (1..=128 bytes), so anything else names nobody and is a
/// client bug worth reporting rather than storing.
fn check_ids<'a>(names: impl Iterator<Item = &'a str>, field: &str) -> Result<(), CoreError> {
    for (i, name) in names.enumerate() {
        if name.is_empty() || name.len() > CLAIM_BYTES_MAX {
            return Err(CoreError::BadInput(format!("{field}[{i}] must be 1..={CLAIM_BYTES_MAX} bytes")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Output;

    fn presence(user: &str, slot: u32) -> Presence {
        Presence {
            user_id: UserId::new(user),
            session_id: SessionId::new(slot, 1),
            username: Username::new(&user.to_uppercase()),
        }
    }

    fn sent(statuses: &Statuses, fanout: Option<StatusFanout>) -> Vec<(Vec<SessionId>, StatusEvent)> {
        let mut out = Outbox::new();
        if let Some(fanout) = fanout {
            statuses.publish(fanout, &mut out);
        }
        let mut events = Vec::new();
        out.drain(|output, recipients| {
            if let Output::Event { event: Event::Status(event), .. } = output {
                events.push((recipients.to_vec(), event));
            }
        });
        events
    }

    #[test]
    fn change_is_one_event_with_old_in_leaves_and_new_in_joins_to_followers_then_own_sessions() {
        let limits = Limits::default();
        let mut statuses = Statuses::default();
        let (alice, alice2, bob) = (presence("alice", 0), presence("alice", 1), presence("bob", 2));
        assert!(statuses.connect(alice.clone(), false).is_none());
        statuses.connect(alice2.clone(), false);
        statuses.connect(bob.clone(), false);
        let mut fanout = None;
        let follow = StatusRequest::Follow { user_ids: vec![UserId::new("alice")], usernames: vec![] };
        statuses.handle(bob.session_id, follow, &limits, &mut fanout).unwrap();
        let update = |s: &str| StatusRequest::Update { status: Some(s.into()) };
        statuses.handle(alice.session_id, update("a"), &limits, &mut fanout).unwrap();
        statuses.handle(alice.session_id, update("b"), &limits, &mut fanout).unwrap();
        let events = sent(&statuses, fanout.take());
        assert_eq!(events.len(), 1);
        let (recipients, event) = &events[0];
        assert_eq!(recipients, &[bob.session_id, alice.session_id, alice2.session_id]);
        assert_eq!(event.leaves, vec![StatusPresence { presence: alice.clone(), status: "a".into() }]);
        assert_eq!(event.joins, vec![StatusPresence { presence: alice.clone(), status: "b".into() }]);
        statuses.handle(alice.session_id, update("b"), &limits, &mut fanout).unwrap();
        assert!(fanout.is_none(), "the same status again changes nothing and sends nothing");
        statuses
            .check_invariants(&limits, 3, |s| [&alice, &alice2, &bob].into_iter().find(|p| p.session_id == s).cloned());
    }

    /// SPEC S-2: the users a follow resolves to count against follow_ids_per_request_max, each
    /// once and without the caller's own user, however many names the request gives.
    #[test]
    fn a_follow_counts_the_users_it_resolves_to_not_the_names_it_gives() {
        let limits = Limits { follow_ids_per_request_max: 3, ..Limits::default() };
        let named = |user: &str, slot: u32, name: &str| Presence {
            user_id: UserId::new(user),
            session_id: SessionId::new(slot, 1),
            username: Username::new(name),
        };
        let mut statuses = Statuses::default();
        let caller = named("me", 0, "Same");
        let others: Vec<Presence> = (1..=3).map(|i| named(&format!("u{i}"), i, "Same")).collect();
        for presence in std::iter::once(&caller).chain(&others) {
            statuses.connect(presence.clone(), true);
        }
        let ids = |names: &[&str]| names.iter().map(|u| UserId::new(u)).collect::<Vec<_>>();
        let follow = |user_ids: Vec<UserId>, usernames: &[&str]| StatusRequest::Follow {
            user_ids,
            usernames: usernames.iter().map(|n| Username::new(n)).collect(),
        };
        let mut fanout = None;
        // Seven names, three users: the duplicates and the caller's own user are not counted.
        let request = follow(ids(&["u1", "u1", "me", "u2"]), &["Same", "Same", "Nobody"]);
        let Ok(StatusReply::Followed { presences }) = statuses.handle(caller.session_id, request, &limits, &mut fanout)
        else {
            panic!("three users fit a limit of three");
        };
        assert_eq!(presences.iter().map(|p| p.presence.user_id.as_str()).collect::<Vec<_>>(), ["u1", "u2", "u3"]);
        // One more user carrying the name: the same request now resolves to four.
        let fourth = named("u4", 4, "Same");
        statuses.connect(fourth.clone(), true);
        let other = named("x", 5, "Other");
        statuses.connect(other.clone(), false);
        let error = statuses.handle(other.session_id, follow(vec![], &["Same"]), &limits, &mut fanout).unwrap_err();
        assert!(matches!(&error, CoreError::LimitExceeded(m) if m.contains("follow_ids_per_request_max")), "{error:?}");
        assert!(!statuses.follows(other.session_id, &UserId::new("u1")), "nothing followed");
        assert_eq!(statuses.sessions_of_user_count(&UserId::new("u1")), 1);
        assert_eq!(statuses.sessions_of_user_count(&UserId::new("nobody")), 0);
    }
}
