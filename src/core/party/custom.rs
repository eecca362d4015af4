//! Custom data (SPEC L-5, PGOS's party custom data): a global string the leader writes and a
//! string per member that only that member writes, each at most `party_custom_data_bytes_max`
//! bytes, "" until written. Every member session (the writer's included) gets
//! `PartyCustomDataChanged`; a change moves the version (L-9) through the change list. A member's
//! string lives beside it in the table (`Party::member_custom_data`) and leaves with it.

use super::lobby::{CustomDataScope, LobbyEvent};
use super::{done, Outcome, Parties, PartyReply};
use crate::core::context::Ctx;
use crate::core::{CoreError, Event, PartyId, Presence};

impl Parties {
    /// L-5: 201, 204 (not a member), 203 (`Global` from a member who is not the leader), 300
    /// (over `party_custom_data_bytes_max`). Writing the value already there changes nothing
    /// (the version stays) and is still announced, as an update that changes nothing is.
    pub(super) fn custom_data_set(
        &mut self,
        me: &Presence,
        party_id: PartyId,
        scope: CustomDataScope,
        value: String,
        ctx: &mut Ctx,
    ) -> Outcome {
        let party = self.table.find_as_member(party_id, me.session_id)?;
        let member = match scope {
            CustomDataScope::Global if party.leader != me.session_id => return Err(CoreError::PartyNotLeader),
            CustomDataScope::Global => None,
            // Invariant: find_as_member found the session among the members.
            CustomDataScope::Member => Some(party.member_index(me.session_id).expect("a member")),
        };
        let bytes_max = ctx.limits.party_custom_data_bytes_max;
        if value.len() > bytes_max {
            return Err(CoreError::LimitExceeded(format!(
                "custom data of {} bytes is over party_custom_data_bytes_max {bytes_max}",
                value.len()
            )));
        }

        let party = self.table.set_custom_data(party_id, member, value);
        let (value, owner) = match member {
            Some(index) => (party.member_custom_data[index].clone(), Some(me.clone())),
            None => (party.custom_data.clone(), None),
        };
        let changed = LobbyEvent::CustomDataChanged { party_id, member: owner, value, version: party.version };
        ctx.events.send(party.member_sessions(), Event::Lobby(changed));
        done(PartyReply::Ok { party_id })
    }
}
