//! P-9 party data, the hot path: one lookup, a size check, one event for every other member
//! session with the payload shared (`Bytes`, a slice of the request frame: no copy). It changes
//! no table, so it records nothing and its commit is a length check.

use super::{done, send, Outcome, Parties, PartyEvent, PartyReply};
use crate::core::context::Ctx;
use crate::core::{CoreError, PartyId, Presence};
use bytes::Bytes;

impl Parties {
    /// P-9, members only. With a cid the reply is `Ok`; sent without one (fire and forget),
    /// the core drops the reply and turns a refusal into an event (see `Core::handle_request`).
    pub(super) fn data(&self, me: &Presence, party_id: PartyId, op_code: i64, data: Bytes, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find_as_member(party_id, me.session_id)?;
        let data_bytes_max = ctx.limits.party_data_bytes_max;
        if data.len() > data_bytes_max {
            return Err(CoreError::LimitExceeded(format!(
                "party data of {} bytes is over party_data_bytes_max {data_bytes_max}",
                data.len()
            )));
        }
        let others = party.member_sessions().filter(|s| *s != me.session_id);
        send(&mut ctx.events, others, PartyEvent::Data { party_id, sender: me.clone(), op_code, data });
        done(PartyReply::Ok { party_id })
    }
}
