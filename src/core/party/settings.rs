//! A party's settings: P-1 create (size, open, hidden, label, and L-4's strategies) and P-10
//! update (open, hidden, label, strategies; absent fields keep their value). A label is checked
//! once, by the search index's own parser, before anything changes; the prepared label then
//! travels to the index through the change list, so indexing it cannot fail.

use super::lobby::{LobbySettings, LobbySettingsPatch};
use super::table::{Party, Settings};
use super::{done, send, Outcome, Parties, PartyEvent, PartyReply};
use crate::core::context::Ctx;
use crate::core::search::PreparedLabel;
use crate::core::{CoreError, PartyId, Presence};

/// A create request's fields (`PartyRequest::Create`).
pub(super) struct NewParty {
    pub open: bool,
    pub max_size: u32,
    /// Empty = none.
    pub label: String,
    pub hidden: bool,
    pub lobby: LobbySettings,
}

/// An update request's fields (`PartyRequest::Update`): `None` keeps the current value;
/// `Some("")` clears the label.
pub(super) struct SettingsPatch {
    pub open: Option<bool>,
    pub hidden: Option<bool>,
    pub label: Option<String>,
    pub lobby: LobbySettingsPatch,
}

/// L-7: a name is at most `party_name_bytes_max` bytes of one line of display text (no control
/// characters: 200) and contains no entry of the deny-list (265). "" is no name.
fn check_name(name: &str, ctx: &Ctx) -> Result<(), CoreError> {
    let bytes_max = ctx.limits.party_name_bytes_max;
    if name.len() > bytes_max {
        return Err(CoreError::BadInput(format!(
            "name is {} bytes, more than party_name_bytes_max {bytes_max}",
            name.len()
        )));
    }
    if let Some((byte, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(CoreError::BadInput(format!(
            "name has the control character U+{:04X} at byte {byte}; a name is one line of display text",
            u32::from(c)
        )));
    }
    if ctx.names.denies(name) {
        return Err(CoreError::PartyNameDenied);
    }
    Ok(())
}

impl Parties {
    /// P-1 / P-10 label rules: empty is none; a hidden party carries none; otherwise a JSON
    /// object within the label bounds, as the search index parses it (`core/search/label.rs`).
    fn prepare_label(&self, label: &str, hidden: bool) -> Result<PreparedLabel, CoreError> {
        if label.is_empty() {
            return Ok(PreparedLabel::none());
        }
        if hidden {
            return Err(CoreError::BadInput("a hidden party cannot carry a label".into()));
        }
        self.search.prepare_label(label)
    }

    /// P-1: a new party with `me` as its only member and leader, with a fresh code (L-3).
    pub(super) fn create(&mut self, me: &Presence, new: NewParty, ctx: &mut Ctx) -> Outcome {
        let NewParty { open, max_size, label, hidden, lobby } = new;
        let limits = ctx.limits;
        if max_size == 0 || max_size as usize > limits.party_members_max {
            return Err(CoreError::BadInput(format!(
                "max_size must be 1..={}, got {max_size}",
                limits.party_members_max
            )));
        }
        let prepared = self.prepare_label(&label, hidden)?;
        check_name(&lobby.name, ctx)?;
        self.check_not_in_party(me, ctx)?;
        self.table.check_room_for_one_more(limits, me.session_id)?;

        let id = self.table.fresh_id(ctx.ids);
        let code = self.table.fresh_code(ctx.ids);
        // Invariant: party_members_max ≤ 256 (Limits::validate), so max_size fits u16.
        let party = Party::new(id, me.clone(), max_size as u16, Settings { open, hidden, label, lobby }, code);
        let party = self.table.create(party, prepared);
        done(PartyReply::Info(Box::new(party.snapshot())))
    }

    /// P-10 and L-4, L-6, L-7, leader only: absent fields keep their value; the resulting party
    /// may not be hidden and labelled; a new name follows the name rules (a name kept as it is
    /// is not checked again, so reloading the deny-list never blocks other updates). Every
    /// member (the leader too) gets the new settings, also when nothing changed (then the
    /// version stays, L-9).
    pub(super) fn update(&mut self, me: &Presence, party_id: PartyId, patch: SettingsPatch, ctx: &mut Ctx) -> Outcome {
        let party = self.table.find_as_leader(party_id, me.session_id)?;
        let open = patch.open.unwrap_or(party.open);
        let hidden = patch.hidden.unwrap_or(party.hidden);
        let label = patch.label.unwrap_or_else(|| party.label.clone());
        let lobby = patch.lobby.apply(&party.lobby);
        if lobby.name != party.lobby.name {
            check_name(&lobby.name, ctx)?;
        }
        // The label is checked (and the index entry rebuilt) only when the label or the hidden
        // flag changes: unchanged, they passed these rules when they were set.
        let prepared = if party.hidden != hidden || party.label != label {
            Some(self.prepare_label(&label, hidden)?)
        } else {
            None
        };

        let party = self.table.set_settings(party_id, Settings { open, hidden, label, lobby }, prepared);
        let updated = PartyEvent::Updated {
            party_id,
            open: party.open,
            hidden: party.hidden,
            max_size: party.max_size,
            label: party.label.clone(),
            lobby: party.lobby.clone(),
            version: party.version,
        };
        send(&mut ctx.events, party.member_sessions(), updated);
        done(PartyReply::Ok { party_id })
    }
}
