//! The lobby's admin requests (SPEC L-4, L-8), executed for `Core::handle_admin` (`admin.rs`):
//! the game backend writes friends and blocks (`AdminRequest::SetSocial`) and party attributes
//! (`AdminRequest::SetPartyAttributes`); and the driver hands in the name deny-list (L-7,
//! [`Core::set_name_deny_list`]). Each runs as a request does: its events go into the caller's
//! outbox, and `handle_admin` sweeps the tables after it.

use super::context::Ctx;
use super::outbox::Events;
use super::{
    AdminReply, Core, CoreError, NameDenyList, Now, Outbox, PartyId, SocialList, SocialWrite, UnixMillis, UserId,
};

impl Core {
    /// L-4: replaces the given lists of each user, all or nothing (see `Social::apply`). A
    /// write takes effect for the next request and changes no party (no retroactive kicks), so
    /// it causes no event.
    pub(super) fn set_social(&mut self, writes: Vec<SocialWrite>) -> Result<AdminReply, CoreError> {
        let entries = self.social.apply(writes, &self.limits)?;
        Ok(AdminReply::Social { users: self.social.users(), entries })
    }

    /// L-4: a user's list as stored (sorted), for the admin API and tests.
    pub fn social_list(&self, user_id: &UserId, list: SocialList) -> Vec<UserId> {
        self.social.list(user_id, list).to_vec()
    }

    /// L-4: (users with a list, entries) in the social table.
    pub fn social_size(&self) -> (usize, usize) {
        (self.social.users(), self.social.entries())
    }

    /// L-8: the game backend writes a party's attributes (a compact JSON object) at
    /// `timestamp`; members get `PartyAttributesUpdated`. Refusals (201, a timestamp not newer
    /// than the stored one, too large) change nothing.
    pub(super) fn set_party_attributes(
        &mut self,
        party_id: PartyId,
        attributes: String,
        timestamp: UnixMillis,
        now: Now,
        out: &mut Outbox,
    ) -> Result<AdminReply, CoreError> {
        let Core { limits, sessions, parties, ids, timers, social, names, .. } = self;
        let mut ctx = Ctx { limits, now, sessions, ids, timers, events: Events::new(out), social, names };
        let version = parties.set_attributes(party_id, attributes, timestamp, &mut ctx)?;
        Ok(AdminReply::PartyAttributes { version })
    }

    /// L-7: the deny-list names are checked against from now on (names already set stay).
    pub fn set_name_deny_list(&mut self, names: NameDenyList) {
        self.names = names;
    }

    /// L-7: entries of the deny-list in force.
    pub fn name_deny_list_len(&self) -> usize {
        self.names.len()
    }

    /// Test hook for the social canary: a user's list names the user itself.
    #[doc(hidden)]
    pub fn debug_corrupt_social_table(&mut self) -> bool {
        self.social.corrupt_for_test()
    }

    #[doc(hidden)]
    /// A hash of the social table, equal before and after any refused write.
    pub fn debug_social_digest(&self) -> u64 {
        use std::hash::Hasher;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.social.digest(&mut hasher);
        hasher.finish()
    }
}
