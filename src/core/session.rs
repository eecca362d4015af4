//! The session table: who is connected, indexed by the driver's slot for O(1) lookups.

use super::{Presence, SessionId};

pub(crate) struct SessionEntry {
    pub presence: Presence,
}

/// Sessions by slot. The slot comes from the driver's slab, so the table stays dense; the
/// generation check keeps a stale id from matching the slot's next occupant.
pub(crate) struct Sessions {
    by_slot: Vec<Option<SessionEntry>>,
    len: usize,
}

impl Sessions {
    pub fn with_capacity(capacity: usize) -> Sessions {
        // Capacity grows on demand; preallocating the whole connection limit would cost memory
        // on servers configured for far more connections than they carry.
        Sessions { by_slot: Vec::with_capacity(capacity.min(1024)), len: 0 }
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

    /// Files a new session; false (and nothing changed) when its slot is already taken, which
    /// only a driver bug can cause.
    pub fn insert(&mut self, presence: Presence) -> bool {
        let slot = presence.session_id.slot() as usize;
        if self.by_slot.len() <= slot {
            self.by_slot.resize_with(slot + 1, || None);
        }
        if self.by_slot[slot].is_some() {
            return false;
        }
        self.by_slot[slot] = Some(SessionEntry { presence });
        self.len += 1;
        true
    }

    pub fn remove(&mut self, id: SessionId) -> Option<SessionEntry> {
        let cell = self.by_slot.get_mut(id.slot() as usize)?;
        match cell {
            Some(entry) if entry.presence.session_id == id => {
                self.len -= 1;
                cell.take()
            }
            _ => None,
        }
    }

    pub fn check_invariants(&self) {
        let occupied = self.by_slot.iter().flatten().count();
        assert_eq!(occupied, self.len, "session count disagrees with the table");
        for (slot, entry) in self.by_slot.iter().enumerate() {
            if let Some(entry) = entry {
                assert_eq!(entry.presence.session_id.slot() as usize, slot, "session filed under another slot");
            }
        }
    }
}
