//! Party attributes (SPEC L-8, AccelByte's party storage): a JSON object the game's backend
//! writes through the admin API (`PUT /v1/parties/{id}/attributes`) with a timestamp; a write
//! whose timestamp is not newer than the stored one is refused and changes nothing, so when
//! several game servers write, the latest write wins whatever order they arrive in. Every
//! member session gets `PartyAttributesUpdated`; the write is a version step (L-9) and the
//! attributes are in every snapshot.

use super::lobby::LobbyEvent;
use super::Parties;
use crate::core::context::Ctx;
use crate::core::{CoreError, Event, PartyId, UnixMillis};

impl Parties {
    /// L-8: `attributes` is a JSON object in its compact form (the admin API parsed it); 201,
    /// `StaleAttributes` (not newer), `BadInput` (over `party_attributes_bytes_max`). Returns
    /// the party's version after the write.
    pub(crate) fn set_attributes(
        &mut self,
        party_id: PartyId,
        attributes: String,
        timestamp: UnixMillis,
        ctx: &mut Ctx,
    ) -> Result<u64, CoreError> {
        let party = self.table.find(party_id)?;
        let bytes_max = ctx.limits.party_attributes_bytes_max;
        if attributes.len() > bytes_max {
            return Err(CoreError::BadInput(format!(
                "attributes: {} bytes (compact), more than party_attributes_bytes_max {bytes_max}",
                attributes.len()
            )));
        }
        if timestamp <= party.attributes_timestamp {
            return Err(CoreError::StaleAttributes { stored: party.attributes_timestamp, given: timestamp });
        }

        let party = self.table.set_attributes(party_id, attributes, timestamp);
        let version = party.version;
        let updated =
            LobbyEvent::AttributesUpdated { party_id, attributes: party.attributes.clone(), timestamp, version };
        ctx.events.send(party.member_sessions(), Event::Lobby(updated));
        self.commit(ctx);
        Ok(version)
    }
}
