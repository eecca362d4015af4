//! The session table: who is connected, and the two user indexes every feature shares.
//!
//! - `by_slot`: session → its presence, indexed by the driver's slot for O(1) lookups; the
//!   generation check keeps a stale id from matching the slot's next occupant;
//! - `by_user`: user → its connected sessions in connect order (a user's own sessions receive
//!   its status events; follow replies list them in this order; invitations and "one party per
//!   user" address users through it);
//! - `by_username`: username → the connected users carrying it, in user-id order (follow by
//!   username; later name lookups).
//!
//! Only `Core::connect` and `Core::disconnect` change it; during a request features read it
//! through the request context. Nothing iterates a `HashMap` into an output: the lists a
//! lookup returns have their own order.

use super::{ConnectOptions, Presence, SessionId, UserId, Username};
use std::collections::HashMap;

pub(crate) struct SessionEntry {
    pub presence: Presence,
    /// What the client asked for in its connect URL (`?snapshots=true`: L-9 snapshot events).
    pub options: ConnectOptions,
}

pub(crate) struct Sessions {
    by_slot: Vec<Option<SessionEntry>>,
    len: usize,
    by_user: HashMap<UserId, Vec<SessionId>>,
    by_username: HashMap<Username, UserCounts>,
}

impl Sessions {
    pub fn with_capacity(capacity: usize) -> Sessions {
        // Capacity grows on demand; preallocating the whole connection limit would cost memory
        // on servers configured for far more connections than they carry.
        Sessions {
            by_slot: Vec::with_capacity(capacity.min(1024)),
            len: 0,
            by_user: HashMap::new(),
            by_username: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, id: SessionId) -> Option<&SessionEntry> {
        match self.by_slot.get(id.slot() as usize) {
            Some(Some(entry)) if entry.presence.session_id == id => Some(entry),
            _ => None,
        }
    }

    /// The presence of a connected session.
    pub fn presence(&self, id: SessionId) -> Option<&Presence> {
        self.get(id).map(|entry| &entry.presence)
    }

    /// A user's connected sessions, in connect order (empty when none is connected).
    pub fn sessions_of(&self, user_id: &UserId) -> &[SessionId] {
        self.by_user.get(user_id).map_or(&[], Vec::as_slice)
    }

    /// The connected users carrying `username`, in user-id order.
    pub fn users_named(&self, username: &Username) -> impl Iterator<Item = &UserId> {
        self.by_username.get(username).into_iter().flat_map(UserCounts::user_ids)
    }

    /// Files a new session; false (and nothing changed) when its slot is already taken, which
    /// only a driver bug can cause.
    pub fn insert(&mut self, presence: Presence, options: ConnectOptions) -> bool {
        let slot = presence.session_id.slot() as usize;
        if self.by_slot.len() <= slot {
            self.by_slot.resize_with(slot + 1, || None);
        }
        if self.by_slot[slot].is_some() {
            return false;
        }
        self.by_user.entry(presence.user_id.clone()).or_default().push(presence.session_id);
        self.by_username.entry(presence.username.clone()).or_default().add(&presence.user_id);
        self.by_slot[slot] = Some(SessionEntry { presence, options });
        self.len += 1;
        true
    }

    /// Forgets a session and hands back its presence; `None` for a session not connected.
    pub fn remove(&mut self, id: SessionId) -> Option<Presence> {
        let cell = self.by_slot.get_mut(id.slot() as usize)?;
        if !matches!(cell, Some(entry) if entry.presence.session_id == id) {
            return None;
        }
        let presence = cell.take()?.presence;
        self.len -= 1;
        let user_id = &presence.user_id;
        if let Some(sessions) = self.by_user.get_mut(user_id) {
            // `retain`, not `swap_remove`: the list keeps connect order.
            sessions.retain(|&s| s != id);
            if sessions.is_empty() {
                self.by_user.remove(user_id);
            }
        }
        if let Some(users) = self.by_username.get_mut(&presence.username) {
            users.remove_one(user_id);
            if users.is_empty() {
                self.by_username.remove(&presence.username);
            }
        }
        Some(presence)
    }

    pub fn check_invariants(&self) {
        // Each index is walked once and its entries looked up in the slot table; with the
        // totals compared, the indexes list exactly the connected sessions (an injection
        // between finite sets of equal size is a bijection), without building a copy.
        let mut occupied = 0;
        for (slot, entry) in self.by_slot.iter().enumerate() {
            let Some(entry) = entry else { continue };
            occupied += 1;
            let presence = &entry.presence;
            assert_eq!(presence.session_id.slot() as usize, slot, "session filed under another slot");
            let own = self.sessions_of(&presence.user_id).iter().filter(|&&s| s == presence.session_id).count();
            assert_eq!(own, 1, "{} is not listed exactly once among its user's sessions", presence.session_id);
        }
        assert_eq!(occupied, self.len, "session count disagrees with the table");
        let mut listed = 0;
        for (user_id, sessions) in &self.by_user {
            assert!(!sessions.is_empty(), "empty session list kept for {user_id:?}");
            listed += sessions.len();
            let mut names: Vec<&Username> = Vec::with_capacity(sessions.len());
            for &session in sessions {
                let presence = self.presence(session);
                assert!(presence.is_some_and(|p| &p.user_id == user_id), "{user_id:?} lists {session}, not its own");
                names.extend(presence.map(|p| &p.username));
            }
            // Each of this user's names counts exactly its sessions with that name.
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    continue;
                }
                let with_name = names.iter().filter(|n| *n == name).count();
                let indexed = self.by_username.get(*name).and_then(|users| users.count(user_id));
                assert_eq!(indexed, Some(with_name), "username index count of {name:?} for {user_id:?}");
            }
        }
        assert_eq!(listed, self.len, "user → sessions index lists sessions that are gone");
        let mut named = 0;
        for (name, users) in &self.by_username {
            assert!(!users.is_empty(), "empty username entry kept for {name:?}");
            assert!(users.0.windows(2).all(|pair| pair[0].0 < pair[1].0), "users of {name:?} out of order");
            named += users.total();
        }
        assert_eq!(named, self.len, "username index counts sessions that are gone");
    }

    /// Test hook for the simulation's canary: lists one session twice among its user's
    /// sessions, so the sweep must notice. Returns false when nobody is connected.
    pub fn corrupt_for_test(&mut self) -> bool {
        let Some(entry) = self.by_slot.iter().flatten().next() else { return false };
        let (user_id, session) = (entry.presence.user_id.clone(), entry.presence.session_id);
        self.by_user.entry(user_id).or_default().push(session);
        true
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
