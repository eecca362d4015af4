//! The lobby half of the simulation's grammar and checks (SPEC L-1, L-2, L-3, L-4, L-9).
#![allow(dead_code)]

use super::Sim;
use crate::core::{InviteStrategy, JoinStrategy, LobbySettings, LobbySettingsPatch};

const JOIN_STRATEGIES: [JoinStrategy; 5] = [
    JoinStrategy::Public,
    JoinStrategy::FriendsOfLeader,
    JoinStrategy::FriendsOfMembers,
    JoinStrategy::InvitedOnly,
    JoinStrategy::NotAllowed,
];

impl Sim {
    /// Lobby settings for a create: mostly the default, often something else.
    pub(super) fn lobby_settings(&mut self) -> LobbySettings {
        if self.rng.chance(50) {
            return LobbySettings::default();
        }
        LobbySettings {
            join_strategy: self.rng.pick(&JOIN_STRATEGIES).expect("non-empty"),
            invite_strategy: if self.rng.chance(30) { InviteStrategy::LeaderOnly } else { InviteStrategy::AllMembers },
        }
    }

    /// An update's lobby fields: mostly untouched.
    pub(super) fn lobby_patch(&mut self) -> LobbySettingsPatch {
        LobbySettingsPatch {
            join_strategy: self.rng.chance(20).then(|| self.rng.pick(&JOIN_STRATEGIES).expect("non-empty")),
            invite_strategy: self.rng.chance(15).then(|| {
                if self.rng.chance(50) {
                    InviteStrategy::LeaderOnly
                } else {
                    InviteStrategy::AllMembers
                }
            }),
        }
    }
}
