//! Identity and time newtypes shared by every layer. No bare integers cross a module boundary.

use std::fmt;
use std::sync::Arc;

/// One WebSocket connection of a user. `slot` is the driver's slab key and `generation` counts
/// how often that slot has been reused, so a stale id never reaches the connection that took
/// the slot over. Unique for the server's lifetime until one slot is reused 2^32 times.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    slot: u32,
    generation: u32,
}

impl SessionId {
    pub fn new(slot: u32, generation: u32) -> SessionId {
        SessionId { slot, generation }
    }

    pub fn slot(self) -> u32 {
        self.slot
    }

    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The 64-bit form clients see: generation in the high half, slot in the low half.
    pub fn to_wire(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }

    pub fn from_wire(raw: u64) -> SessionId {
        SessionId { slot: raw as u32, generation: (raw >> 32) as u32 }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_wire())
    }
}

/// A shared, bounded string identity from a token claim: one value is copied into every presence
/// and event that names its user, so clones share it.
macro_rules! claim_string {
    ($(#[$doc:meta])* $name:ident, $(#[$max_doc:meta])* BYTES_MAX = $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            $(#[$max_doc])*
            pub const BYTES_MAX: usize = $max;

            pub fn new(value: &str) -> $name {
                $name(Arc::from(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

claim_string!(
    /// A user's id, as the token's `uid` claim carries it.
    UserId,
    /// Longest user id: it is copied into every presence and event that names the user, so it
    /// is bounded. 128 bytes covers UUIDs and any id an account system hands out. Tokens
    /// (`auth`), the wire's presences and follow requests all check against this.
    BYTES_MAX = 128
);

// `limits` bounds follow replies with these sizes without importing the core.
const _: () = assert!(UserId::BYTES_MAX == crate::limits::CLAIM_BYTES_MAX);
const _: () = assert!(Username::BYTES_MAX == crate::limits::CLAIM_BYTES_MAX);

claim_string!(
    /// A user's display name, from the token's `usn` claim.
    Username,
    /// Longest username, for the same reason as [`UserId::BYTES_MAX`]; 128 bytes is Nakama's
    /// username bound.
    BYTES_MAX = 128
);

/// A session of a user: who is behind a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub username: Username,
}

/// A party's id: 128 random bits, so knowing an id is the only way to find a hidden party.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(pub u128);

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Correlation id of a request, echoed on its one reply. Zero is reserved for events.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cid(pub u64);

impl Cid {
    /// The cid of a frame whose cid could not be read.
    pub const NONE: Cid = Cid(0);
}

/// Milliseconds since the server started. The driver reads the clock; the core only sees this.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    pub fn saturating_add(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    pub fn saturating_sub(self, other: Millis) -> u64 {
        self.0.saturating_sub(other.0)
    }
}

/// Wall-clock time in Unix milliseconds, for timestamps users see (chat, history, invitation
/// expiry shown to clients). Never used to measure a duration: the wall clock can jump; deadlines
/// use [`Millis`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

/// The two clocks, read once by the driver and passed into every core entry point: `mono` for
/// deadlines and rates, `wall` for timestamps users see.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub mono: Millis,
    pub wall: UnixMillis,
}

impl Now {
    /// Where simulated wall clocks start: 2026-01-01T00:00:00Z, so simulated timestamps look real.
    pub const SIMULATED_EPOCH: UnixMillis = UnixMillis(1_767_225_600_000);

    pub fn new(mono: Millis, wall: UnixMillis) -> Now {
        Now { mono, wall }
    }

    /// Tests and simulations: a wall clock that moves with the monotonic one from
    /// [`Now::SIMULATED_EPOCH`], so replays are exact.
    pub fn simulated(mono: Millis) -> Now {
        Now { mono, wall: UnixMillis(Now::SIMULATED_EPOCH.0 + mono.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_wire_form_round_trips_and_keeps_generation_apart() {
        let a = SessionId::new(7, 1);
        let b = SessionId::new(7, 2);
        assert_ne!(a.to_wire(), b.to_wire());
        assert_eq!(SessionId::from_wire(a.to_wire()), a);
        assert_eq!(SessionId::from_wire(u64::MAX), SessionId::new(u32::MAX, u32::MAX));
    }
}
