//! The social graph (SPEC L-4): each user's friend list and block list, as the game's backend
//! writes them through the admin API (`PUT /v1/users/{id}/friends`, `…/blocks`, and the bulk
//! `PUT /v1/social`), read by the join and invite rules through [`super::context::Ctx`].
//!
//! Friendship is as the backend lists it: X is a friend of L when X is in L's list (one
//! direction; a backend that wants mutual friendship writes both lists). A block gates both ways
//! wherever the rules ask ([`Social::blocked_either_way`]).
//!
//! Table: `by_user` (user → its two lists, each sorted and without duplicates, so a lookup is one
//! hash and one binary search). Invariants: no user's lists name the user itself; no entry is
//! kept with both lists empty; each list within its per-user bound; `entries` is the sum of every
//! list's length and within `social_entries_max`. A write replaces a whole list (idempotent);
//! it takes effect for the next request and changes no party (no retroactive kicks).

use super::{CoreError, UserId};
use crate::limits::Limits;
use std::collections::HashMap;

/// One user's write, checked: the user, then its new friends and blocks lists (`None` keeps the
/// list as it is).
type PreparedWrite = (UserId, Option<Box<[UserId]>>, Option<Box<[UserId]>>);

/// Which list of a user.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SocialList {
    Friends,
    Blocks,
}

impl SocialList {
    /// The name the admin API's fields and messages use.
    pub fn name(self) -> &'static str {
        match self {
            SocialList::Friends => "friends",
            SocialList::Blocks => "blocks",
        }
    }

    fn per_user_max(self, limits: &Limits) -> (usize, &'static str) {
        match self {
            SocialList::Friends => (limits.social_friends_per_user_max, "social_friends_per_user_max"),
            SocialList::Blocks => (limits.social_blocks_per_user_max, "social_blocks_per_user_max"),
        }
    }
}

/// One user's lists after an admin write: `None` keeps a list as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialWrite {
    pub user_id: UserId,
    pub friends: Option<Vec<UserId>>,
    pub blocks: Option<Vec<UserId>>,
}

#[derive(Default)]
struct Lists {
    /// Sorted, no duplicates.
    friends: Box<[UserId]>,
    /// Sorted, no duplicates.
    blocks: Box<[UserId]>,
}

impl Lists {
    fn get(&self, list: SocialList) -> &[UserId] {
        match list {
            SocialList::Friends => &self.friends,
            SocialList::Blocks => &self.blocks,
        }
    }

    fn len(&self) -> usize {
        self.friends.len() + self.blocks.len()
    }
}

#[derive(Default)]
pub(crate) struct Social {
    by_user: HashMap<UserId, Lists>,
    /// Every list's length added up (`social_entries_max`).
    entries: usize,
}

impl Social {
    /// Whether `friend` is in `user`'s friend list.
    pub fn is_friend_of(&self, friend: &UserId, user: &UserId) -> bool {
        self.lists(user).is_some_and(|lists| lists.friends.binary_search(friend).is_ok())
    }

    /// Whether `a` blocked `b` or `b` blocked `a`: two lookups, the cost a join pays for blocks.
    pub fn blocked_either_way(&self, a: &UserId, b: &UserId) -> bool {
        if self.by_user.is_empty() {
            return false;
        }
        let blocks = |user: &UserId, other: &UserId| {
            self.by_user.get(user).is_some_and(|lists| lists.blocks.binary_search(other).is_ok())
        };
        blocks(a, b) || blocks(b, a)
    }

    fn lists(&self, user: &UserId) -> Option<&Lists> {
        if self.by_user.is_empty() {
            return None;
        }
        self.by_user.get(user)
    }

    /// A user's list, sorted (empty when none was written).
    pub fn list(&self, user: &UserId, list: SocialList) -> &[UserId] {
        self.by_user.get(user).map_or(&[], |lists| lists.get(list))
    }

    /// Whether no user has a list (the rules then skip every lookup).
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Entries in the whole table.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Users with a list.
    pub fn users(&self) -> usize {
        self.by_user.len()
    }

    /// Applies `writes` all or nothing: every list is checked (ids, no self, its per-user bound),
    /// then the table's size after all of them; a refusal changes nothing. A user named twice
    /// takes its last write. Returns the table's entries afterwards.
    pub fn apply(&mut self, writes: Vec<SocialWrite>, limits: &Limits) -> Result<usize, CoreError> {
        let mut prepared: Vec<PreparedWrite> = Vec::with_capacity(writes.len());
        // A bulk write names up to 10,000 users: found by hash, not by a scan per user.
        let mut index: HashMap<UserId, usize> = HashMap::with_capacity(writes.len());
        for write in writes {
            let friends =
                write.friends.map(|ids| prepare(&write.user_id, ids, SocialList::Friends, limits)).transpose()?;
            let blocks =
                write.blocks.map(|ids| prepare(&write.user_id, ids, SocialList::Blocks, limits)).transpose()?;
            match index.get(&write.user_id).map(|&i| &mut prepared[i]) {
                Some(earlier) => {
                    if friends.is_some() {
                        earlier.1 = friends;
                    }
                    if blocks.is_some() {
                        earlier.2 = blocks;
                    }
                }
                None => {
                    index.insert(write.user_id.clone(), prepared.len());
                    prepared.push((write.user_id, friends, blocks));
                }
            }
        }
        let mut entries = self.entries;
        for (user, friends, blocks) in &prepared {
            let current = self.by_user.get(user);
            for (new, list) in [(friends, SocialList::Friends), (blocks, SocialList::Blocks)] {
                if let Some(new) = new {
                    entries = entries - current.map_or(0, |lists| lists.get(list).len()) + new.len();
                }
            }
        }
        if entries > limits.social_entries_max {
            return Err(CoreError::LimitExceeded(format!(
                "the social table would hold {entries} entries; social_entries_max is {}",
                limits.social_entries_max
            )));
        }
        for (user, friends, blocks) in prepared {
            let lists = self.by_user.entry(user.clone()).or_default();
            if let Some(friends) = friends {
                lists.friends = friends;
            }
            if let Some(blocks) = blocks {
                lists.blocks = blocks;
            }
            if lists.len() == 0 {
                self.by_user.remove(&user);
            }
        }
        self.entries = entries;
        debug_assert_eq!(self.entries, self.by_user.values().map(Lists::len).sum::<usize>(), "entries counted");
        Ok(entries)
    }

    pub fn check_invariants(&self, limits: &Limits) {
        let mut entries = 0;
        for (user, lists) in &self.by_user {
            assert!(lists.len() > 0, "{user:?} kept with empty lists");
            for list in [SocialList::Friends, SocialList::Blocks] {
                let ids = lists.get(list);
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "{user:?}'s {} are not sorted and distinct", list.name());
                assert!(!ids.contains(user), "{user:?} lists itself in its {}", list.name());
                assert!(ids.len() <= list.per_user_max(limits).0, "{user:?} has too many {}", list.name());
            }
            entries += lists.len();
        }
        assert_eq!(entries, self.entries, "the social table's entry count");
        assert!(entries <= limits.social_entries_max, "the social table over social_entries_max");
    }

    /// Test hook: makes a user's list name the user itself, as a write that skipped its checks
    /// would. Returns whether there was a user to corrupt.
    pub fn corrupt_for_test(&mut self) -> bool {
        let Some(user) = self.by_user.keys().min().cloned() else { return false };
        let lists = self.by_user.get_mut(&user).expect("key from the map");
        let mut friends = lists.friends.to_vec();
        friends.push(user);
        friends.sort();
        lists.friends = friends.into_boxed_slice();
        self.entries += 1;
        true
    }

    /// A hash of the table, independent of `HashMap` order.
    pub fn digest(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let mut users: Vec<&UserId> = self.by_user.keys().collect();
        users.sort();
        for user in users {
            let lists = &self.by_user[user];
            (user, &lists.friends, &lists.blocks).hash(h);
        }
    }
}

/// One list of a write: ids checked, sorted and deduplicated, within its per-user bound.
fn prepare(user: &UserId, mut ids: Vec<UserId>, list: SocialList, limits: &Limits) -> Result<Box<[UserId]>, CoreError> {
    let name = list.name();
    let (max, limit) = list.per_user_max(limits);
    if let Some(bad) = ids.iter().find(|id| id.as_str().is_empty() || id.as_str().len() > UserId::BYTES_MAX) {
        return Err(CoreError::BadInput(format!(
            "{name}: {:?} is not a user id (1..={} bytes)",
            bad.as_str().chars().take(40).collect::<String>(),
            UserId::BYTES_MAX
        )));
    }
    if ids.contains(user) {
        return Err(CoreError::BadInput(format!("{name}: the list of {:?} names that user itself", user.as_str())));
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > max {
        return Err(CoreError::BadInput(format!(
            "{name}: {} distinct users for {:?}; {limit} is {max}",
            ids.len(),
            user.as_str()
        )));
    }
    Ok(ids.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<UserId> {
        names.iter().map(|n| UserId::new(n)).collect()
    }

    fn write(user: &str, friends: Option<&[&str]>, blocks: Option<&[&str]>) -> SocialWrite {
        SocialWrite { user_id: UserId::new(user), friends: friends.map(ids), blocks: blocks.map(ids) }
    }

    #[test]
    fn lists_are_replaced_whole_and_a_write_of_the_same_lists_changes_nothing() {
        let limits = Limits::default();
        let mut social = Social::default();
        social.apply(vec![write("l", Some(&["b", "a", "a"]), Some(&["x"]))], &limits).unwrap();
        assert_eq!(social.list(&UserId::new("l"), SocialList::Friends), ids(&["a", "b"]).as_slice());
        assert_eq!(social.entries(), 3);
        assert!(social.is_friend_of(&UserId::new("a"), &UserId::new("l")));
        assert!(!social.is_friend_of(&UserId::new("l"), &UserId::new("a")), "one direction, as listed");
        assert!(social.blocked_either_way(&UserId::new("l"), &UserId::new("x")));
        assert!(social.blocked_either_way(&UserId::new("x"), &UserId::new("l")), "both ways");
        social.apply(vec![write("l", Some(&["a", "b"]), None)], &limits).unwrap();
        assert_eq!(social.entries(), 3, "idempotent; blocks kept");
        social.apply(vec![write("l", Some(&[]), Some(&[]))], &limits).unwrap();
        assert_eq!((social.entries(), social.users()), (0, 0), "empty lists leave no entry");
        social.check_invariants(&limits);
    }

    #[test]
    fn a_refused_write_changes_nothing_and_names_what_is_wrong() {
        let limits = Limits { social_friends_per_user_max: 2, social_entries_max: 3, ..Limits::default() };
        let mut social = Social::default();
        social.apply(vec![write("a", Some(&["b"]), None)], &limits).unwrap();
        let refusals = [
            (vec![write("a", Some(&["a"]), None)], "itself"),
            (vec![write("a", Some(&["b", "c", "d"]), None)], "social_friends_per_user_max"),
            (vec![write("a", Some(&[""]), None)], "not a user id"),
            (vec![write("b", Some(&["a", "c"]), None), write("c", None, Some(&["a", "b"]))], "social_entries_max"),
        ];
        for (writes, why) in refusals {
            let error = social.apply(writes, &limits).unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
            assert_eq!(social.entries(), 1);
        }
        // The bound counts the table after the write: replacing a list frees its old entries.
        social.apply(vec![write("a", Some(&[]), None), write("b", Some(&["a", "c"]), Some(&["d"]))], &limits).unwrap();
        assert_eq!(social.entries(), 3);
        social.check_invariants(&limits);
    }
}
