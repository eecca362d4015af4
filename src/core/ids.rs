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

/// A party's code (SPEC L-3): 6 characters from an alphabet without the look-alikes 0/O and
/// 1/I/L, so it can be read out and typed. Stored in upper case; [`PartyCode::parse`] accepts
/// either case. 31^6 ≈ 887 million codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyCode([u8; PartyCode::LEN]);

impl PartyCode {
    pub const LEN: usize = 6;
    /// The characters a code is made of: digits 2–9 and the letters without I, L and O.
    pub const ALPHABET: &'static [u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    /// Longest code text a request may carry: anything longer is not a code, and the wire refuses
    /// it before copying (it does not count as a miss). A little room over `LEN` so that a code
    /// pasted with spaces around it still reaches the core and gets a clear answer.
    pub const TEXT_BYTES_MAX: usize = 32;

    /// The code with these alphabet indexes (each below 31), as the id generator draws them.
    pub fn from_indexes(indexes: [u8; PartyCode::LEN]) -> PartyCode {
        PartyCode(indexes.map(|i| PartyCode::ALPHABET[usize::from(i) % PartyCode::ALPHABET.len()]))
    }

    /// A code as a user typed it: surrounding whitespace ignored, letters in either case. `None`
    /// when it cannot be a code (wrong length, or a character outside the alphabet).
    pub fn parse(text: &str) -> Option<PartyCode> {
        let text = text.trim().as_bytes();
        let mut code = [0u8; PartyCode::LEN];
        if text.len() != PartyCode::LEN {
            return None;
        }
        for (slot, byte) in code.iter_mut().zip(text) {
            let upper = byte.to_ascii_uppercase();
            if !PartyCode::ALPHABET.contains(&upper) {
                return None;
            }
            *slot = upper;
        }
        Some(PartyCode(code))
    }

    pub fn as_str(&self) -> &str {
        // Invariant: every byte comes from the ASCII alphabet (the constructors above).
        std::str::from_utf8(&self.0).expect("party codes are ASCII")
    }
}

impl fmt::Display for PartyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

    #[test]
    fn party_codes_parse_case_insensitively_and_refuse_look_alikes() {
        let code = PartyCode::from_indexes([0, 8, 30, 12, 20, 29]);
        assert_eq!(code.as_str(), "2AZEPY");
        assert_eq!(PartyCode::parse("2azepy"), Some(code));
        assert_eq!(PartyCode::parse(" 2AzEpY\n"), Some(code), "surrounding whitespace is ignored");
        for wrong in ["", "2AZEP", "2AZEPYY", "0AZEPY", "OAZEPY", "1AZEPY", "IAZEPY", "LAZEPY", "2AZ PY", "2AZEPé"] {
            assert_eq!(PartyCode::parse(wrong), None, "{wrong:?}");
        }
        assert_eq!(PartyCode::ALPHABET.len(), 31);
        for c in b"0O1IL" {
            assert!(!PartyCode::ALPHABET.contains(c));
        }
    }
}
