//! Who handles each member of the schema's `Message` union. Every family file (connection,
//! party, status, search, lobby) lists the members it claims with their decoders; this table joins the
//! lists, and a test walks every value of the generated `fb::Message` enum so a member added to
//! the schema without a claim (or claimed by two families) fails `cargo test`, instead of being
//! routed to whichever family happened to catch "everything else".

use super::{connection, fb, lobby, party, search, status, DecodeError, ServerMessage};
use crate::core::Request;
use bytes::Bytes;

/// Decodes a request's body (server side). Gets the frame too, so payloads can be sliced out of
/// it without a copy.
pub(super) type DecodeRequest = fn(&fb::Envelope<'_>, &Bytes) -> Result<Request, DecodeError>;
/// Decodes a reply or an event (client side).
pub(super) type DecodeServer = fn(&fb::Envelope<'_>) -> Result<ServerMessage, DecodeError>;

/// What one union member is and who decodes it.
#[derive(Copy, Clone)]
pub(super) enum Claim {
    /// A request; sent with cid 0 it is refused with 101 (C-5).
    Request(DecodeRequest),
    /// A request that may also be sent with cid 0, fire-and-forget: no reply on success (P-9:
    /// party data only).
    RequestOrFireAndForget(DecodeRequest),
    /// Sent only by the server (a reply or an event); a client sending it gets 103.
    Server(DecodeServer),
}

/// A family's claims: each union member it handles.
pub(super) type Claims = &'static [(fb::Message, Claim)];

/// Every family, named for the test's messages.
const FAMILIES: &[(&str, Claims)] = &[
    ("connection", connection::CLAIMS),
    ("party", party::CLAIMS),
    ("status", status::CLAIMS),
    ("search", search::CLAIMS),
    ("lobby", lobby::CLAIMS),
];

/// The claims indexed by union tag, built at compile time.
static ROUTES: [Option<Claim>; 256] = routes(FAMILIES);

const fn routes(families: &[(&str, Claims)]) -> [Option<Claim>; 256] {
    let mut table: [Option<Claim>; 256] = [None; 256];
    let mut family = 0;
    while family < families.len() {
        let claims = families[family].1;
        let mut i = 0;
        while i < claims.len() {
            let (message, claim) = claims[i];
            // A duplicate keeps its first claim; the test below refuses duplicates.
            if table[message.0 as usize].is_none() {
                table[message.0 as usize] = Some(claim);
            }
            i += 1;
        }
        family += 1;
    }
    table
}

/// The claim on a union member; `None` for NONE and for tags this build does not know (a newer
/// client's message).
pub(super) fn claim(message: fb::Message) -> Option<Claim> {
    ROUTES[message.0 as usize]
}

#[cfg(test)]
/// What is wrong with a set of family claims: members of the schema's union claimed by no
/// family or by more than one, claims on NONE or on tags the schema does not have.
fn claim_problems(families: &[(&str, Claims)]) -> Vec<String> {
    let mut problems = Vec::new();
    let claimants = |message: fb::Message| -> Vec<&str> {
        families
            .iter()
            .flat_map(|(name, claims)| claims.iter().filter(move |(m, _)| *m == message).map(move |_| *name))
            .collect()
    };
    for &message in fb::Message::ENUM_VALUES {
        let name = message.variant_name().unwrap_or("?");
        let by = claimants(message);
        match (message == fb::Message::NONE, by.len()) {
            (true, 0) | (false, 1) => {}
            (true, _) => problems.push(format!("NONE is claimed by {by:?}")),
            (false, 0) => problems.push(format!("{name} is claimed by no family")),
            (false, _) => problems.push(format!("{name} is claimed more than once: {by:?}")),
        }
    }
    for (family, claims) in families {
        for (message, _) in claims.iter() {
            if !fb::Message::ENUM_VALUES.contains(message) {
                problems.push(format!("{family} claims tag {} which the schema does not have", message.0));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_union_member_is_claimed_exactly_once() {
        assert_eq!(claim_problems(FAMILIES), Vec::<String>::new());
        for &message in fb::Message::ENUM_VALUES {
            assert_eq!(claim(message).is_some(), message != fb::Message::NONE, "{message:?}");
        }
    }

    /// Canary: the check above can fail, for each kind of mistake.
    #[test]
    fn a_missing_a_double_and_a_foreign_claim_are_each_reported() {
        let server: Claim = Claim::Server(|_| Err(DecodeError::UnknownMessage(0)));
        let without_pong: Vec<_> =
            connection::CLAIMS.iter().copied().filter(|(m, _)| *m != fb::Message::Pong).collect();
        let without_pong: Claims = Box::leak(without_pong.into_boxed_slice());
        let extra: Claims = Box::leak(Box::new([(fb::Message::PartyData, server), (fb::Message(250), server)]));
        let broken = [("connection", without_pong), ("party", party::CLAIMS), ("status", status::CLAIMS), ("x", extra)];
        let problems = claim_problems(&broken);
        assert!(problems.iter().any(|p| p == "Pong is claimed by no family"), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("PartyData is claimed more than once")), "{problems:?}");
        assert!(problems.iter().any(|p| p == "PartySearch is claimed by no family"), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("tag 250")), "{problems:?}");
    }

    #[test]
    fn only_party_data_may_be_sent_without_a_cid() {
        let fire_and_forget: Vec<_> = fb::Message::ENUM_VALUES
            .iter()
            .filter(|m| matches!(claim(**m), Some(Claim::RequestOrFireAndForget(_))))
            .collect();
        assert_eq!(fire_and_forget, [&fb::Message::PartyDataSend]);
    }
}
