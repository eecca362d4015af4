//! Ids as Nakama's clients see them: strings. Nakama's party ids are `<uuid>.<node>` and its
//! session ids are UUIDs; the SDKs treat both as opaque strings that they hand back unchanged
//! (a presence in `party_promote`, a party id in `party_join`), so each rendering here must parse
//! back to the same huddle id.
//!
//! - A [`PartyId`]'s 128 bits are printed as a UUID followed by `.huddle`, the name of the only
//!   node: `07787d76-008c-4342-a3f3-936140c10fab.huddle`. [`parse_party_id`] also accepts a
//!   bare UUID, any node name (one node: the 128 random bits alone name the party) and huddle's
//!   own 32-hex form, so every place that takes a party id accepts both forms.
//! - A [`SessionId`]'s 64-bit wire form fills the low half of a UUID whose high half is the fixed
//!   tag `68756464-6c65-0000` ("huddle" in ASCII): `68756464-6c65-0000-0000-000100000007`. The tag
//!   keeps the id from ever being the nil UUID, which some code treats as "no session", and marks
//!   an id that is not huddle's (the tag differs) as naming nobody.

use crate::core::{PartyId, SessionId};
use std::fmt;

/// The node name in party ids (Nakama names its nodes; huddle is one node).
pub const NODE: &str = "huddle";

/// Longest party id string the decoder looks at: a UUID (36) and a node name. Nakama's node
/// names are short configuration values; 128 bytes leaves room for any of them while a longer
/// string is refused before it is parsed.
pub const PARTY_ID_BYTES_MAX: usize = 128;

/// High 64 bits of every session id UUID huddle prints: "huddle" in ASCII, then zeros.
const SESSION_TAG: u64 = 0x6875_6464_6c65_0000;

/// `value` as a lowercase 8-4-4-4-12 UUID.
fn uuid_text(value: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut nibble = 0;
    for (i, byte) in text.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let shift = 124 - 4 * nibble;
        *byte = HEX[((value >> shift) & 0xf) as usize];
        nibble += 1;
    }
    text
}

/// A UUID in its hyphenated (8-4-4-4-12) or plain 32-hex form, either case, as 128 bits.
fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    let hyphenated = match bytes.len() {
        32 => false,
        36 => true,
        _ => return None,
    };
    let mut value: u128 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if hyphenated && matches!(i, 8 | 13 | 18 | 23) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        let digit = (byte as char).to_digit(16)?;
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// A party id in Nakama's form, `<uuid>.huddle`; `Display` and `Serialize` print it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NakamaPartyId(pub PartyId);

impl fmt::Display for NakamaPartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = uuid_text(self.0 .0);
        // Invariant: uuid_text writes only ASCII hex digits and hyphens.
        f.write_str(std::str::from_utf8(&text).expect("Invariant: a UUID's text is ASCII"))?;
        f.write_str(".")?;
        f.write_str(NODE)
    }
}

impl serde::Serialize for NakamaPartyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A party id from a client, in any form huddle prints or Nakama's clients send: `<uuid>.<node>`
/// (any node name), a bare UUID, or huddle's own 32 hex digits. `None` when it is none of them.
pub fn parse_party_id(text: &str) -> Option<PartyId> {
    if text.len() > PARTY_ID_BYTES_MAX {
        return None;
    }
    let uuid = text.split_once('.').map_or(text, |(uuid, _node)| uuid);
    parse_uuid(uuid).map(PartyId)
}

/// A session id in Nakama's form, a UUID; `Display` and `Serialize` print it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NakamaSessionId(pub SessionId);

impl fmt::Display for NakamaSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = uuid_text((u128::from(SESSION_TAG) << 64) | u128::from(self.0.to_wire()));
        f.write_str(std::str::from_utf8(&text).expect("Invariant: a UUID's text is ASCII"))
    }
}

impl serde::Serialize for NakamaSessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A session id printed by [`NakamaSessionId`] (either UUID form, either case); `None` for any
/// other string, including UUIDs without huddle's tag.
pub fn parse_session_id(text: &str) -> Option<SessionId> {
    let value = parse_uuid(text)?;
    ((value >> 64) as u64 == SESSION_TAG).then(|| SessionId::from_wire(value as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_ids_print_as_uuid_dot_node_and_parse_back_in_every_accepted_form() {
        let id = PartyId(0x07787d76_008c_4342_a3f3_936140c10fab);
        let text = NakamaPartyId(id).to_string();
        assert_eq!(text, "07787d76-008c-4342-a3f3-936140c10fab.huddle");
        assert_eq!(parse_party_id(&text), Some(id));
        assert_eq!(parse_party_id("07787d76-008c-4342-a3f3-936140c10fab.nakama-anchor"), Some(id));
        assert_eq!(parse_party_id("07787D76-008C-4342-A3F3-936140C10FAB"), Some(id));
        // huddle's own form (`PartyId`'s Display) is accepted everywhere a party id is taken.
        assert_eq!(parse_party_id(&id.to_string()), Some(id));
        for extreme in [PartyId(0), PartyId(u128::MAX), PartyId(1 << 127)] {
            assert_eq!(parse_party_id(&NakamaPartyId(extreme).to_string()), Some(extreme));
        }
    }

    #[test]
    fn malformed_party_ids_name_no_party() {
        let long = format!("07787d76-008c-4342-a3f3-936140c10fab.{}", "n".repeat(PARTY_ID_BYTES_MAX));
        for bad in [
            "",
            ".huddle",
            "not-a-uuid.huddle",
            "07787d76-008c-4342-a3f3-936140c10fa.huddle",
            "07787d76-008c-4342-a3f3-936140c10fab0.huddle",
            "07787d76+008c-4342-a3f3-936140c10fab.huddle",
            "07787d76-008c-4342-a3f3-936140c10fag",
            "0x787d76008c4342a3f3936140c10fab",
            "07787d76-008c-4342-a3f3-936140c1éab",
            &long,
        ] {
            assert_eq!(parse_party_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn session_ids_print_as_tagged_uuids_and_parse_back() {
        let session = SessionId::new(7, 1);
        let text = NakamaSessionId(session).to_string();
        assert_eq!(text, "68756464-6c65-0000-0000-000100000007");
        assert_eq!(parse_session_id(&text), Some(session));
        assert_eq!(parse_session_id(&text.to_uppercase()), Some(session));
        assert_eq!(parse_session_id(&text.replace('-', "")), Some(session));
        let max = SessionId::new(u32::MAX, u32::MAX);
        assert_eq!(parse_session_id(&NakamaSessionId(max).to_string()), Some(max));
        // A Nakama session id (no huddle tag) names no huddle session.
        assert_eq!(parse_session_id("3ca0bbc5-e592-11f1-b9f3-317fd32acb25"), None);
        assert_eq!(parse_session_id("4294967303"), None);
    }
}
