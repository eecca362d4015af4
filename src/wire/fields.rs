//! Field types more than one family uses: presences, party ids, and the two shapes a field that
//! may be left out takes in the schema (a `Toggle` for yes/no, a `UintValue` struct for numbers),
//! since optional scalars (`= null`) are refused by some languages' generators.

use super::{fb, DecodeError, Encoder};
use crate::core::{InviteStrategy, JoinStrategy, LobbySettings, PartyId, Presence, SessionId, UserId, Username};
use flatbuffers::{ForwardsUOffset, Vector, WIPOffset};

/// A party id as the wire's `struct PartyId { hi, lo }` (the u128's high and low halves).
pub(super) fn party_id_to_wire(id: PartyId) -> fb::PartyId {
    fb::PartyId::new((id.0 >> 64) as u64, id.0 as u64)
}

pub(super) fn party_id_from_wire(id: Option<&fb::PartyId>) -> Result<PartyId, DecodeError> {
    let id = id.ok_or(DecodeError::MissingField("party_id"))?;
    Ok(PartyId((u128::from(id.hi()) << 64) | u128::from(id.lo())))
}

/// `None` (keep, or do not filter) is `Unset`, which the builder leaves off the wire.
pub(super) fn toggle_to_wire(value: Option<bool>) -> fb::Toggle {
    match value {
        None => fb::Toggle::Unset,
        Some(false) => fb::Toggle::No,
        Some(true) => fb::Toggle::Yes,
    }
}

/// A toggle value this build does not know (3..=255) is refused rather than guessed at.
pub(super) fn toggle_from_wire(value: fb::Toggle, field: &'static str) -> Result<Option<bool>, DecodeError> {
    match value {
        fb::Toggle::Unset => Ok(None),
        fb::Toggle::No => Ok(Some(false)),
        fb::Toggle::Yes => Ok(Some(true)),
        other => Err(DecodeError::UnknownEnumValue { field, value: other.0.into() }),
    }
}

pub(super) fn uint_to_wire(value: Option<u32>) -> Option<fb::UintValue> {
    value.map(fb::UintValue::new)
}

pub(super) fn uint_from_wire(value: Option<&fb::UintValue>) -> Option<u32> {
    value.map(fb::UintValue::value)
}

/// A join strategy as the wire writes it (never `Unset`).
pub(super) fn join_strategy_to_wire(strategy: JoinStrategy) -> fb::PartyJoinStrategy {
    match strategy {
        JoinStrategy::Public => fb::PartyJoinStrategy::Public,
        JoinStrategy::FriendsOfLeader => fb::PartyJoinStrategy::FriendsOfLeader,
        JoinStrategy::FriendsOfMembers => fb::PartyJoinStrategy::FriendsOfMembers,
        JoinStrategy::InvitedOnly => fb::PartyJoinStrategy::InvitedOnly,
        JoinStrategy::NotAllowed => fb::PartyJoinStrategy::NotAllowed,
    }
}

/// `Unset` (absent) is `None`; a value this build does not know is refused rather than guessed.
pub(super) fn join_strategy_from_wire(
    value: fb::PartyJoinStrategy,
    field: &'static str,
) -> Result<Option<JoinStrategy>, DecodeError> {
    Ok(Some(match value {
        fb::PartyJoinStrategy::Unset => return Ok(None),
        fb::PartyJoinStrategy::Public => JoinStrategy::Public,
        fb::PartyJoinStrategy::FriendsOfLeader => JoinStrategy::FriendsOfLeader,
        fb::PartyJoinStrategy::FriendsOfMembers => JoinStrategy::FriendsOfMembers,
        fb::PartyJoinStrategy::InvitedOnly => JoinStrategy::InvitedOnly,
        fb::PartyJoinStrategy::NotAllowed => JoinStrategy::NotAllowed,
        other => return Err(DecodeError::UnknownEnumValue { field, value: other.0.into() }),
    }))
}

pub(super) fn invite_strategy_to_wire(strategy: InviteStrategy) -> fb::PartyInviteStrategy {
    match strategy {
        InviteStrategy::AllMembers => fb::PartyInviteStrategy::AllMembers,
        InviteStrategy::LeaderOnly => fb::PartyInviteStrategy::LeaderOnly,
    }
}

pub(super) fn invite_strategy_from_wire(
    value: fb::PartyInviteStrategy,
    field: &'static str,
) -> Result<Option<InviteStrategy>, DecodeError> {
    Ok(Some(match value {
        fb::PartyInviteStrategy::Unset => return Ok(None),
        fb::PartyInviteStrategy::AllMembers => InviteStrategy::AllMembers,
        fb::PartyInviteStrategy::LeaderOnly => InviteStrategy::LeaderOnly,
        other => return Err(DecodeError::UnknownEnumValue { field, value: other.0.into() }),
    }))
}

/// A party's lobby settings as a snapshot, summary or update event carries them (client side):
/// a field an older server did not write reads as the default.
pub(super) fn lobby_settings_from_wire(
    join: fb::PartyJoinStrategy,
    invite: fb::PartyInviteStrategy,
) -> Result<LobbySettings, DecodeError> {
    Ok(LobbySettings {
        join_strategy: join_strategy_from_wire(join, "join_strategy")?.unwrap_or_default(),
        invite_strategy: invite_strategy_from_wire(invite, "invite_strategy")?.unwrap_or_default(),
    })
}

/// A presence as requests name it. User ids and usernames come from token claims, so nothing
/// longer than a claim can name a real session: refuse it here, before any rule sees it.
pub(super) fn decode_presence(presence: fb::Presence<'_>) -> Result<Presence, DecodeError> {
    fn claim<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, DecodeError> {
        let value = value.ok_or(DecodeError::MissingField(field))?;
        if value.len() > crate::core::UserId::BYTES_MAX {
            return Err(DecodeError::TooLong { field, len: value.len(), max: crate::core::UserId::BYTES_MAX });
        }
        Ok(value)
    }
    Ok(Presence {
        user_id: UserId::new(claim(presence.user_id(), "presence.user_id")?),
        session_id: SessionId::from_wire(presence.session_id()),
        username: Username::new(claim(presence.username(), "presence.username")?),
    })
}

/// A required presence field of a message.
pub(super) fn presence_from_wire(
    presence: Option<fb::Presence<'_>>,
    field: &'static str,
) -> Result<Presence, DecodeError> {
    decode_presence(presence.ok_or(DecodeError::MissingField(field))?)
}

/// A presence list; absent reads as empty.
pub(super) fn presences_from_wire(
    list: Option<Vector<'_, ForwardsUOffset<fb::Presence<'_>>>>,
) -> Result<Vec<Presence>, DecodeError> {
    list.map_or(Ok(Vec::new()), |list| list.iter().map(decode_presence).collect())
}

impl Encoder {
    pub(super) fn presence(&mut self, presence: &Presence) -> WIPOffset<fb::Presence<'static>> {
        let user_id = self.builder.create_string(presence.user_id.as_str());
        let username = self.builder.create_string(presence.username.as_str());
        fb::Presence::create(
            &mut self.builder,
            &fb::PresenceArgs {
                user_id: Some(user_id),
                session_id: presence.session_id.to_wire(),
                username: Some(username),
            },
        )
    }

    pub(super) fn presences(
        &mut self,
        presences: &[Presence],
    ) -> WIPOffset<Vector<'static, ForwardsUOffset<fb::Presence<'static>>>> {
        let offsets: Vec<_> = presences.iter().map(|p| self.presence(p)).collect();
        self.builder.create_vector(&offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip_unset_is_none_and_unknown_values_are_refused() {
        use JoinStrategy::*;
        for strategy in [Public, FriendsOfLeader, FriendsOfMembers, InvitedOnly, NotAllowed] {
            assert_eq!(join_strategy_from_wire(join_strategy_to_wire(strategy), "j"), Ok(Some(strategy)));
        }
        for strategy in [InviteStrategy::AllMembers, InviteStrategy::LeaderOnly] {
            assert_eq!(invite_strategy_from_wire(invite_strategy_to_wire(strategy), "i"), Ok(Some(strategy)));
        }
        assert_eq!(join_strategy_from_wire(fb::PartyJoinStrategy::Unset, "j"), Ok(None));
        assert_eq!(invite_strategy_from_wire(fb::PartyInviteStrategy::Unset, "i"), Ok(None));
        assert_eq!(
            join_strategy_from_wire(fb::PartyJoinStrategy(9), "join_strategy"),
            Err(DecodeError::UnknownEnumValue { field: "join_strategy", value: 9 })
        );
        assert_eq!(
            invite_strategy_from_wire(fb::PartyInviteStrategy(3), "invite_strategy"),
            Err(DecodeError::UnknownEnumValue { field: "invite_strategy", value: 3 })
        );
    }

    #[test]
    fn toggles_round_trip_and_unknown_values_are_refused() {
        for value in [None, Some(false), Some(true)] {
            assert_eq!(toggle_from_wire(toggle_to_wire(value), "open"), Ok(value));
        }
        // The bytes of the optional bool this replaced: false = 0, true = 1, absent = Unset.
        assert_eq!((fb::Toggle::No.0, fb::Toggle::Yes.0), (0, 1));
        assert_eq!(
            toggle_from_wire(fb::Toggle(3), "hidden"),
            Err(DecodeError::UnknownEnumValue { field: "hidden", value: 3 })
        );
    }
}
