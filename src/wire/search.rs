//! Party search on the wire (SPEC Q-1 … Q-4): the request with its string bounds, the result
//! page, and the client-side mirror. The request and reply are party variants in the core
//! (`PartyRequest::Search`, `PartyReply::SearchResult`); on the wire they are their own family.

use super::dispatch::{Claim, Claims};
use super::fields::{
    party_id_from_wire, party_id_to_wire, toggle_from_wire, toggle_to_wire, uint_from_wire, uint_to_wire,
};
use super::{fb, Body, DecodeError, Encoder, ServerMessage};
use crate::core::{Cid, PartyListing, PartyReply, PartyRequest, Reply, Request};
use crate::limits::SEARCH_QUERY_BYTES_CEILING;
use bytes::Bytes;

pub(super) const CLAIMS: Claims = &[
    (fb::Message::PartySearch, Claim::Request(decode_search)),
    (fb::Message::PartySearchResult, Claim::Server(decode_search_result)),
];

/// Longest search cursor the decoder copies. The server's cursors are 44 characters; 64 leaves
/// room for a future format while a longer one is refused as garbage before it is copied.
pub const SEARCH_CURSOR_BYTES_MAX: usize = 64;

fn decode_search(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let m = envelope.message_as_party_search().ok_or(DecodeError::MissingField("message"))?;
    // Both strings are bounded before they are copied out of the frame.
    let query = m.query().unwrap_or_default();
    if query.len() > SEARCH_QUERY_BYTES_CEILING {
        return Err(DecodeError::TooLarge { field: "query", len: query.len(), max: SEARCH_QUERY_BYTES_CEILING });
    }
    let cursor = m.cursor();
    if let Some(cursor) = cursor.filter(|c| c.len() > SEARCH_CURSOR_BYTES_MAX) {
        return Err(DecodeError::CursorTooLong { len: cursor.len(), max: SEARCH_CURSOR_BYTES_MAX });
    }
    Ok(Request::Party(PartyRequest::Search {
        query: query.to_owned(),
        open: toggle_from_wire(m.open(), "open")?,
        limit: uint_from_wire(m.limit()),
        cursor: cursor.map(str::to_owned),
    }))
}

fn decode_search_result(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let m = envelope.message_as_party_search_result().ok_or(DecodeError::MissingField("message"))?;
    let mut parties = Vec::new();
    for l in m.parties().iter().flatten() {
        parties.push(PartyListing {
            party_id: party_id_from_wire(l.party_id())?,
            open: l.open(),
            max_size: l.max_size(),
            member_count: l.member_count(),
            label: l.label().unwrap_or_default().to_owned(),
            version: l.version(),
        });
    }
    let reply = PartyReply::SearchResult { parties, cursor: m.cursor().map(str::to_owned) };
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(Reply::Party(reply)) })
}

impl Encoder {
    pub(super) fn search_request(
        &mut self,
        query: &str,
        open: Option<bool>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Body {
        let query = self.builder.create_string(query);
        let cursor = cursor.map(|c| self.builder.create_string(c));
        let limit = uint_to_wire(limit);
        let m = fb::PartySearch::create(
            &mut self.builder,
            &fb::PartySearchArgs { query: Some(query), open: toggle_to_wire(open), limit: limit.as_ref(), cursor },
        );
        (fb::Message::PartySearch, m.as_union_value())
    }

    pub(super) fn search_result(&mut self, parties: &[PartyListing], cursor: Option<&str>) -> Body {
        let offsets: Vec<_> = parties
            .iter()
            .map(|listing| {
                let label = self.builder.create_string(&listing.label);
                let party_id = party_id_to_wire(listing.party_id);
                fb::PartyListing::create(
                    &mut self.builder,
                    &fb::PartyListingArgs {
                        party_id: Some(&party_id),
                        open: listing.open,
                        max_size: listing.max_size,
                        member_count: listing.member_count,
                        label: Some(label),
                        version: listing.version,
                    },
                )
            })
            .collect();
        let parties = self.builder.create_vector(&offsets);
        let cursor = cursor.map(|c| self.builder.create_string(c));
        let m = fb::PartySearchResult::create(
            &mut self.builder,
            &fb::PartySearchResultArgs { parties: Some(parties), cursor },
        );
        (fb::Message::PartySearchResult, m.as_union_value())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hand_built, reply_round_trips, request_round_trips};
    use super::super::{decode_request as decode, verifier_options, ErrorCode};
    use super::*;
    use crate::core::PartyId;
    use flatbuffers::FlatBufferBuilder;

    fn options() -> flatbuffers::VerifierOptions {
        verifier_options(1 << 20)
    }

    #[test]
    fn every_search_request_round_trips() {
        let requests = [
            PartyRequest::Search {
                query: r#"+label.mode:ctf -open:false "a b"^2"#.into(),
                open: Some(false),
                limit: Some(0),
                cursor: Some("c".repeat(44)),
            },
            PartyRequest::Search { query: String::new(), open: None, limit: None, cursor: None },
            PartyRequest::Search { query: "x".into(), open: Some(true), limit: Some(u32::MAX), cursor: None },
        ];
        for request in requests {
            request_round_trips(Request::Party(request));
        }
    }

    #[test]
    fn search_results_round_trip() {
        let replies = [
            PartyReply::SearchResult {
                parties: vec![
                    PartyListing {
                        party_id: PartyId(1 << 100),
                        open: true,
                        max_size: 8,
                        member_count: 3,
                        label: r#"{"a":1}"#.into(),
                        version: 3,
                    },
                    PartyListing {
                        party_id: PartyId(2),
                        open: false,
                        max_size: 256,
                        member_count: 256,
                        label: "".into(),
                        version: u64::MAX,
                    },
                ],
                cursor: Some("AQ".into()),
            },
            PartyReply::SearchResult { parties: vec![], cursor: None },
        ];
        for reply in replies {
            reply_round_trips(Reply::Party(reply));
        }
    }

    /// The previous schema's optional scalars (`open: bool = null`, `limit: uint = null`) wrote
    /// the same bytes a `Toggle` and a `UintValue` do, so frames built the old way still decode.
    #[test]
    fn a_search_written_with_the_previous_optional_scalars_decodes_the_same() {
        for (open, limit) in [(Some(false), Some(0)), (Some(true), Some(25)), (None, None)] {
            let mut builder = FlatBufferBuilder::new();
            let query = builder.create_string("q");
            let table = builder.start_table();
            builder.push_slot_always(fb::PartySearch::VT_QUERY, query);
            if let Some(open) = open {
                builder.push_slot_always::<bool>(fb::PartySearch::VT_OPEN, open);
            }
            if let Some(limit) = limit {
                builder.push_slot_always::<u32>(fb::PartySearch::VT_LIMIT, limit);
            }
            let search = builder.end_table(table).as_union_value();
            let frame = hand_built(builder, 6, fb::Message::PartySearch, search);
            let expected = Request::Party(PartyRequest::Search { query: "q".into(), open, limit, cursor: None });
            assert_eq!(decode(&frame, &options()), Ok((Cid(6), expected)));
        }
    }

    #[test]
    fn search_strings_are_bounded_before_they_are_copied() {
        let mut encoder = Encoder::new();
        let long_query = Request::Party(PartyRequest::Search {
            query: "a".repeat(SEARCH_QUERY_BYTES_CEILING + 1),
            open: None,
            limit: None,
            cursor: None,
        });
        let frame = Bytes::copy_from_slice(encoder.request(Cid(2), &long_query));
        let (cid, error) = decode(&frame, &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(2), ErrorCode::LimitExceeded), "{error}");
        let long_cursor = Request::Party(PartyRequest::Search {
            query: String::new(),
            open: None,
            limit: None,
            cursor: Some("A".repeat(SEARCH_CURSOR_BYTES_MAX + 1)),
        });
        let frame = Bytes::copy_from_slice(encoder.request(Cid(3), &long_cursor));
        let (cid, error) = decode(&frame, &verifier_options(16 * 1024)).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(3), ErrorCode::SearchCursorInvalid), "{error}");
    }
}
