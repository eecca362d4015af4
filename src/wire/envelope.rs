//! The envelope around every frame: its file identifier, its verification, and reading its cid
//! alone when the rest does not verify (C-5).

use super::{fb, DecodeError};
use crate::core::Cid;
use flatbuffers::{Verifier, VerifierOptions};

/// Written at bytes 4..8 of every frame the encoder finishes, so a tool (or a client juggling
/// several protocols) can tell a huddle frame at a glance. Never required on input: the root
/// offset at bytes 0..4 points past it either way, so frames with and without it read the same.
pub const FILE_IDENTIFIER: &str = fb::ENVELOPE_IDENTIFIER;

/// Verifies the whole frame within `options`' bounds. On failure the error carries the cid when
/// the envelope verifies far enough to read it (see [`read_cid`]), so the client can match the
/// error to its request.
pub(super) fn verified<'a>(frame: &'a [u8], options: &VerifierOptions) -> Result<fb::Envelope<'a>, (Cid, DecodeError)> {
    // The full verify is the hot path; the cid-only read runs only for frames that fail it.
    flatbuffers::root_with_opts::<fb::Envelope>(options, frame)
        .map_err(|e| (read_cid(frame, options).unwrap_or(Cid::NONE), DecodeError::Malformed(e.to_string())))
}

/// The envelope's cid, verifying only what reading it needs: the root offset, the envelope
/// table with its vtable, and the cid field itself (under the same rules and bounds as the full
/// verify). `None` when one of those does not verify; a verified envelope without a cid field
/// has cid 0. Bounded: a fixed handful of reads, whatever the frame holds.
pub(super) fn read_cid(frame: &[u8], options: &VerifierOptions) -> Option<Cid> {
    let mut verifier = Verifier::new(options, frame);
    let table = verifier.get_uoffset(0).ok()? as usize;
    let mut table = verifier.visit_table(table).ok()?;
    let Some(at) = table.deref(fb::Envelope::VT_CID).ok()? else {
        return Some(Cid::NONE);
    };
    table.verifier().in_buffer::<u64>(at).ok()?;
    let bytes: [u8; 8] = frame.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(Cid(u64::from_le_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::hand_built;
    use super::super::{verifier_options, Encoder};
    use super::*;
    use crate::core::{PartyId, PartyRequest, Request};
    use bytes::Bytes;
    use flatbuffers::FlatBufferBuilder;

    fn options() -> VerifierOptions {
        verifier_options(16 * 1024)
    }

    #[test]
    fn every_encoded_frame_carries_the_identifier() {
        let frame = Encoder::new().request(Cid(3), &Request::Ping).to_vec();
        assert_eq!(&frame[4..8], FILE_IDENTIFIER.as_bytes());
        assert!(fb::envelope_buffer_has_identifier(&frame));
    }

    #[test]
    fn the_cid_reads_from_a_frame_whose_body_is_broken() {
        let request = Request::Party(PartyRequest::Data {
            party_id: PartyId(7),
            op_code: 1,
            data: Bytes::from_static(b"0123456789abcdef"),
        });
        let mut frame = Encoder::new().request(Cid(41), &request).to_vec();
        // The data vector's length word is the last u32 before the payload: make it point past
        // the end of the frame, so the body fails verification while the envelope stays intact.
        let payload_at = frame.windows(16).position(|w| w == b"0123456789abcdef").unwrap();
        frame[payload_at - 4..payload_at].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(flatbuffers::root_with_opts::<fb::Envelope>(&options(), &frame).is_err());
        assert_eq!(read_cid(&frame, &options()), Some(Cid(41)));
        let (cid, error) = verified(&frame, &options()).unwrap_err();
        assert_eq!((cid, error.code()), (Cid(41), crate::core::ErrorCode::MalformedEnvelope));
    }

    #[test]
    fn no_cid_when_the_envelope_itself_does_not_verify() {
        let good = Encoder::new().request(Cid(5), &Request::Ping).to_vec();
        for garbage in [&b""[..], b"\x01\x02", b"\xff\xff\xff\xff HUDL", &good[..6]] {
            assert_eq!(read_cid(garbage, &options()), None, "{garbage:?}");
            let error = verified(garbage, &options()).unwrap_err();
            assert_eq!(error.0, Cid::NONE, "{garbage:?}");
        }
        // The root offset is fine but the vtable offset points outside the frame.
        let mut broken_vtable = good.clone();
        let table = u32::from_le_bytes(good[0..4].try_into().unwrap()) as usize;
        broken_vtable[table..table + 4].copy_from_slice(&i32::MIN.to_le_bytes());
        assert_eq!(read_cid(&broken_vtable, &options()), None);
    }

    #[test]
    fn frames_without_the_identifier_still_verify() {
        let mut builder = FlatBufferBuilder::new();
        let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
        let frame = hand_built(builder, 8, fb::Message::Ping, ping);
        assert!(!fb::envelope_buffer_has_identifier(&frame));
        assert_eq!(verified(&frame, &options()).map(|e| e.cid()), Ok(8));
        assert_eq!(read_cid(&frame, &options()), Some(Cid(8)));
    }

    #[test]
    fn an_envelope_without_a_cid_field_reads_as_cid_zero() {
        let mut builder = FlatBufferBuilder::new();
        let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
        assert_eq!(read_cid(&hand_built(builder, 0, fb::Message::Ping, ping), &options()), Some(Cid::NONE));
    }
}
