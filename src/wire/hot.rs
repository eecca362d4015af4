//! The party-data hot path (SPEC P-9) by hand: the `PartyData` event every member gets and the
//! `PartyOk` that acknowledges data sent with a cid are laid out here, and the `PartyDataSend`
//! request is verified and read here. Through the generic builder the two messages cost about
//! 1,700 and 750 instructions (the vtable search of `write_vtable`, the zeroing `reset`,
//! alignment bookkeeping), through the generic verifier the request about 1,500 (error-trace
//! plumbing around every field, a union dispatch over every member): more than the rest of a
//! delivery's user-space work together.
//!
//! The layout is ordinary FlatBuffers, front to back: the root offset and the file identifier,
//! the vtables, the tables (parent before child, so every offset points forward as `uoffset`
//! must), then strings and the data vector. Everything before the strings sits at a fixed
//! position, so it is a template built at compile time; a message copies it and fills in its
//! ids, its op code and the two offsets that depend on string lengths. Every table starts
//! 8-aligned, so its `ulong` fields are aligned relative to the frame's first byte, which is what
//! the verifier checks; every string carries its terminating NUL. Both builders' frames decode
//! to the same value (the tests compare them for many shapes), so a client cannot tell which
//! wrote a frame.

use super::{fb, DecodedRequest, FILE_IDENTIFIER};
use crate::core::{Cid, PartyId, PartyRequest, Presence, Request};
use bytes::Bytes;
use flatbuffers::VerifierOptions;

// ---- PartyData event: the layout, every position fixed up to the strings ----
//
//   0 root uoffset → 40            4 "HUDL"
//   8 Envelope vtable  [10, 24, cid 8, message_type 16, message 4]
//  18 PartyData vtable [12, 40, party_id 8, sender 4, op_code 24, data 32]
//  30 Presence vtable  [10, 24, user_id 4, session_id 8, username 16]
//  40 Envelope table:  soffset 32, message → 64, cid 0, message_type PartyData
//  64 PartyData table: soffset 46, sender → 104, party_id, op_code, data → (after the strings)
// 104 Presence table:  soffset 74, user_id → 128, session_id, username → (after user_id)
// 128 user_id string, username string, data vector (each 4-aligned, strings NUL-terminated)

const ENVELOPE_VTABLE_AT: usize = 8;
const DATA_VTABLE_AT: usize = 18;
const PRESENCE_VTABLE_AT: usize = 30;
const DATA_ENVELOPE_AT: usize = 40;
const DATA_TABLE_AT: usize = 64;
const PRESENCE_TABLE_AT: usize = 104;
const DATA_PARTY_ID_AT: usize = DATA_TABLE_AT + 8;
const DATA_OP_CODE_AT: usize = DATA_TABLE_AT + 24;
const DATA_DATA_AT: usize = DATA_TABLE_AT + 32;
const PRESENCE_SESSION_ID_AT: usize = PRESENCE_TABLE_AT + 8;
const PRESENCE_USERNAME_AT: usize = PRESENCE_TABLE_AT + 16;
/// Bytes before the first string: the template below.
const DATA_FIXED_BYTES: usize = 128;

// ---- PartyOk reply ----
//
//  0 root uoffset → 24             4 "HUDL"
//  8 Envelope vtable [10, 24, cid 8, message_type 16, message 4]
// 18 PartyOk vtable  [6, 24, party_id 8]
// 24 Envelope table: soffset 16, message → 48, cid, message_type PartyOk
// 48 PartyOk table:  soffset 30, (4 bytes of padding), party_id

const OK_VTABLE_AT: usize = 18;
const OK_ENVELOPE_AT: usize = 24;
const OK_TABLE_AT: usize = 48;
const OK_CID_AT: usize = OK_ENVELOPE_AT + 8;
const OK_PARTY_ID_AT: usize = OK_TABLE_AT + 8;
const OK_BYTES: usize = 72;

// Every table 8-aligned (its ulong fields then are), every uoffset 4-aligned.
const _: () = assert!(
    DATA_ENVELOPE_AT.is_multiple_of(8) && DATA_TABLE_AT.is_multiple_of(8) && PRESENCE_TABLE_AT.is_multiple_of(8)
);
const _: () =
    assert!(OK_ENVELOPE_AT.is_multiple_of(8) && OK_TABLE_AT.is_multiple_of(8) && DATA_FIXED_BYTES.is_multiple_of(4));

const fn put_u16(out: &mut [u8], at: usize, value: u16) {
    let bytes = value.to_le_bytes();
    out[at] = bytes[0];
    out[at + 1] = bytes[1];
}

const fn put_u32(out: &mut [u8], at: usize, value: u32) {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 4 {
        out[at + i] = bytes[i];
        i += 1;
    }
}

/// A vtable at `at`: its own size, its table's size, then each field's offset in the table.
const fn put_vtable(out: &mut [u8], at: usize, table_bytes: u16, fields: &[u16]) {
    put_u16(out, at, 4 + 2 * fields.len() as u16);
    put_u16(out, at + 2, table_bytes);
    let mut i = 0;
    while i < fields.len() {
        put_u16(out, at + 4 + 2 * i, fields[i]);
        i += 1;
    }
}

/// The root offset and the file identifier.
const fn put_root(out: &mut [u8], envelope_at: usize) {
    put_u32(out, 0, envelope_at as u32);
    let identifier = FILE_IDENTIFIER.as_bytes();
    let mut i = 0;
    while i < 4 {
        out[4 + i] = identifier[i];
        i += 1;
    }
}

/// A table's soffset to its vtable (the vtable comes first: a positive distance back).
const fn put_table_start(out: &mut [u8], table_at: usize, vtable_at: usize) {
    put_u32(out, table_at, (table_at - vtable_at) as u32);
}

/// The envelope table at `at`: `message` at +4 (→ `message_at`), `cid` at +8, the type at +16.
const fn put_envelope(out: &mut [u8], at: usize, kind: fb::Message, message_at: usize) {
    put_vtable(out, ENVELOPE_VTABLE_AT, 24, &[8, 16, 4]);
    put_table_start(out, at, ENVELOPE_VTABLE_AT);
    put_u32(out, at + 4, (message_at - (at + 4)) as u32);
    out[at + 16] = kind.0;
}

const PARTY_DATA_TEMPLATE: [u8; DATA_FIXED_BYTES] = {
    let mut t = [0u8; DATA_FIXED_BYTES];
    put_root(&mut t, DATA_ENVELOPE_AT);
    put_envelope(&mut t, DATA_ENVELOPE_AT, fb::Message::PartyData, DATA_TABLE_AT);
    put_vtable(&mut t, DATA_VTABLE_AT, 40, &[8, 4, 24, 32]);
    put_table_start(&mut t, DATA_TABLE_AT, DATA_VTABLE_AT);
    put_u32(&mut t, DATA_TABLE_AT + 4, (PRESENCE_TABLE_AT - (DATA_TABLE_AT + 4)) as u32);
    put_vtable(&mut t, PRESENCE_VTABLE_AT, 24, &[4, 8, 16]);
    put_table_start(&mut t, PRESENCE_TABLE_AT, PRESENCE_VTABLE_AT);
    // The user id string comes first after the tables.
    put_u32(&mut t, PRESENCE_TABLE_AT + 4, (DATA_FIXED_BYTES - (PRESENCE_TABLE_AT + 4)) as u32);
    t
};

const PARTY_OK_TEMPLATE: [u8; OK_BYTES] = {
    let mut t = [0u8; OK_BYTES];
    put_root(&mut t, OK_ENVELOPE_AT);
    put_envelope(&mut t, OK_ENVELOPE_AT, fb::Message::PartyOk, OK_TABLE_AT);
    put_vtable(&mut t, OK_VTABLE_AT, 24, &[8]);
    put_table_start(&mut t, OK_TABLE_AT, OK_VTABLE_AT);
    t
};

fn party_id_bytes(id: PartyId) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&((id.0 >> 64) as u64).to_le_bytes());
    bytes[8..].copy_from_slice(&(id.0 as u64).to_le_bytes());
    bytes
}

/// A string (NUL-terminated) or byte vector at the end of `out`, its length first, padded
/// before to 4; returns where it starts.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], nul: bool) -> usize {
    out.resize(out.len().next_multiple_of(4), 0);
    let at = out.len();
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    if nul {
        out.push(0);
    }
    at
}

/// Points the uoffset at `at` (4-aligned, in the fixed part) at `target`, further on.
fn patch_uoffset(out: &mut [u8], at: usize, target: usize) {
    debug_assert!(target > at && at.is_multiple_of(4), "a uoffset points forward from an aligned field");
    out[at..at + 4].copy_from_slice(&((target - at) as u32).to_le_bytes());
}

/// `Envelope { cid: 0, message: PartyData { party_id, sender, op_code, data } }` into `out`.
pub(super) fn party_data_event(out: &mut Vec<u8>, party_id: PartyId, sender: &Presence, op_code: i64, data: &[u8]) {
    out.clear();
    out.extend_from_slice(&PARTY_DATA_TEMPLATE);
    out[DATA_PARTY_ID_AT..DATA_PARTY_ID_AT + 16].copy_from_slice(&party_id_bytes(party_id));
    out[DATA_OP_CODE_AT..DATA_OP_CODE_AT + 8].copy_from_slice(&op_code.to_le_bytes());
    let session_id = sender.session_id.to_wire().to_le_bytes();
    out[PRESENCE_SESSION_ID_AT..PRESENCE_SESSION_ID_AT + 8].copy_from_slice(&session_id);
    let user_id = put_bytes(out, sender.user_id.as_str().as_bytes(), true);
    debug_assert_eq!(user_id, DATA_FIXED_BYTES, "the template points user_id at the first string");
    let username = put_bytes(out, sender.username.as_str().as_bytes(), true);
    let bytes = put_bytes(out, data, false);
    patch_uoffset(out, PRESENCE_USERNAME_AT, username);
    patch_uoffset(out, DATA_DATA_AT, bytes);
}

/// `Envelope { cid, message: PartyOk { party_id } }` into `out`.
pub(super) fn party_ok_reply(out: &mut Vec<u8>, cid: Cid, party_id: PartyId) {
    out.clear();
    out.extend_from_slice(&PARTY_OK_TEMPLATE);
    out[OK_CID_AT..OK_CID_AT + 8].copy_from_slice(&cid.0.to_le_bytes());
    out[OK_PARTY_ID_AT..OK_PARTY_ID_AT + 16].copy_from_slice(&party_id_bytes(party_id));
}

// ---- PartyDataSend, verified and read ----
//
// What `flatbuffers::root_with_opts::<Envelope>` checks for a frame whose message is a
// `PartyDataSend`, check for check in the same order (`flatbuffers` 25.12.19, `verifier.rs`,
// and the generated `run_verifier`s): every read aligned to its type relative to the frame's
// first byte and within the frame, every byte range added to the apparent size, the table
// count and depth, a vtable of even length within the frame, a union whose type and value are
// both present or both absent. Anything else, including any message but `PartyDataSend` or one
// without its party id, returns `None`, and the generic verifier and decoder take the frame
// and give the answer (an error with its code, or another request): so this path only ever
// says yes to a frame the verifier accepts, and then with the value the decoder would read
// (tests compare the two on valid and mutated frames; the `decode_envelope` fuzz target too).

/// The verifier's bookkeeping for one frame.
struct Verify<'a> {
    frame: &'a [u8],
    apparent_bytes: usize,
    apparent_bytes_max: usize,
}

impl Verify<'_> {
    /// `Verifier::range_in_buffer`.
    fn range(&mut self, at: usize, len: usize) -> Option<()> {
        if at.saturating_add(len) > self.frame.len() {
            return None;
        }
        self.apparent_bytes += len;
        (self.apparent_bytes <= self.apparent_bytes_max).then_some(())
    }

    /// `Verifier::in_buffer::<T>` for a `N`-byte scalar aligned to `N` (`align_of` of `u16`,
    /// `u32`, `u64` and `i64` equals their size on every target the server builds for; the
    /// assertions below pin it), then its bytes.
    fn scalar<const N: usize>(&mut self, at: usize) -> Option<[u8; N]> {
        if !at.is_multiple_of(N) {
            return None;
        }
        self.range(at, N)?;
        self.frame[at..at + N].try_into().ok()
    }

    fn u16_at(&mut self, at: usize) -> Option<usize> {
        self.scalar::<2>(at).map(|b| usize::from(u16::from_le_bytes(b)))
    }

    fn u32_at(&mut self, at: usize) -> Option<usize> {
        self.scalar::<4>(at).map(|b| u32::from_le_bytes(b) as usize)
    }

    /// `ForwardsUOffset::run_verifier`: the position the uoffset at `at` points to.
    fn follow(&mut self, at: usize) -> Option<usize> {
        Some(self.u32_at(at)?.saturating_add(at))
    }

    /// `Verifier::visit_table`: the table's vtable and its length.
    fn table(&mut self, at: usize) -> Option<Table> {
        let soffset = i32::from_le_bytes(self.scalar::<4>(at)?);
        let vtable = if soffset > 0 {
            at.checked_sub(soffset.unsigned_abs() as usize)?
        } else {
            at.checked_add(soffset.unsigned_abs() as usize)?
        };
        if vtable >= self.frame.len() {
            return None;
        }
        let vtable_len = self.u16_at(vtable)?;
        if !vtable.saturating_add(vtable_len).is_multiple_of(2) {
            return None;
        }
        self.range(vtable, vtable_len)?;
        Some(Table { at, vtable, vtable_len })
    }

    /// `TableVerifier::deref`: where a field is, if present.
    fn field(&mut self, table: &Table, voffset: u16) -> Option<Option<usize>> {
        let voffset = usize::from(voffset);
        if voffset < table.vtable_len {
            let offset = self.u16_at(table.vtable.saturating_add(voffset))?;
            if offset > 0 {
                return Some(Some(table.at.saturating_add(offset)));
            }
        }
        Some(None)
    }
}

// The verifier aligns each read to `align_of` of its type; `scalar` aligns to the size.
const _: () = assert!(core::mem::align_of::<u64>() == 8 && core::mem::align_of::<i64>() == 8);
const _: () = assert!(core::mem::align_of::<u32>() == 4 && core::mem::align_of::<i32>() == 4);
// `PartyId` is a struct the verifier checks as `in_buffer::<PartyId>`: 16 bytes, aligned to 1.
const _: () = assert!(core::mem::align_of::<fb::PartyId>() == 1 && core::mem::size_of::<fb::PartyId>() == 16);

struct Table {
    at: usize,
    vtable: usize,
    vtable_len: usize,
}

/// A `PartyDataSend` request, when `frame` is one the generic verifier accepts and it names its
/// party; `None` sends the frame down the generic path (see above).
pub(super) fn decode_party_data_send(frame: &Bytes, options: &VerifierOptions) -> Option<DecodedRequest> {
    // Two tables, the envelope's and the message's, one inside the other.
    if options.max_tables < 2 || options.max_depth < 2 {
        return None;
    }
    let mut v = Verify { frame, apparent_bytes: 0, apparent_bytes_max: options.max_apparent_size };
    let envelope_at = v.follow(0)?;
    let envelope = v.table(envelope_at)?;
    let cid = match v.field(&envelope, fb::Envelope::VT_CID)? {
        Some(at) => u64::from_le_bytes(v.scalar::<8>(at)?),
        None => 0,
    };
    let message_at = v.field(&envelope, fb::Envelope::VT_MESSAGE)?;
    let message_type_at = v.field(&envelope, fb::Envelope::VT_MESSAGE_TYPE)?;
    let (Some(message_at), Some(message_type_at)) = (message_at, message_type_at) else {
        return None;
    };
    if v.scalar::<1>(message_type_at)?[0] != fb::Message::PartyDataSend.0 {
        return None;
    }
    let body_at = v.follow(message_at)?;
    let body = v.table(body_at)?;
    let party_id = v.field(&body, fb::PartyDataSend::VT_PARTY_ID)?;
    if let Some(at) = party_id {
        v.range(at, 16)?; // a struct: aligned to 1 for the verifier
    }
    let op_code = match v.field(&body, fb::PartyDataSend::VT_OP_CODE)? {
        Some(at) => i64::from_le_bytes(v.scalar::<8>(at)?),
        None => 0,
    };
    let data = match v.field(&body, fb::PartyDataSend::VT_DATA)? {
        Some(at) => {
            let vector = v.follow(at)?;
            let len = v.u32_at(vector)?;
            let start = vector.saturating_add(4);
            v.range(start, len)?;
            frame.slice(start..start + len)
        }
        None => Bytes::new(),
    };
    let party_id = frame.get(party_id?..)?.get(..16)?;
    let hi = u64::from_le_bytes(party_id[..8].try_into().ok()?);
    let lo = u64::from_le_bytes(party_id[8..].try_into().ok()?);
    let party_id = PartyId((u128::from(hi) << 64) | u128::from(lo));
    Some((Cid(cid), Request::Party(PartyRequest::Data { party_id, op_code, data })))
}

#[cfg(test)]
mod tests {
    use super::super::{decode_server_message, verifier_options, ServerMessage};
    use super::*;
    use crate::core::{Event, PartyEvent, PartyReply, Reply, SessionId, UserId, Username};
    use flatbuffers::FlatBufferBuilder;

    /// The fields of `table NAME { ... }` (or `struct`) in the schema, in order, comments dropped.
    fn schema_fields(schema: &str, kind_and_name: &str) -> Vec<String> {
        let start =
            schema.find(&format!("{kind_and_name} {{")).unwrap_or_else(|| panic!("{kind_and_name} in the schema"));
        let body = &schema[start + kind_and_name.len() + 2..];
        let body = &body[..body.find('}').expect("a closing brace")];
        let lines = body.lines().map(|line| line.split("//").next().unwrap_or(""));
        let fields = lines.flat_map(|line| line.split(';')).filter_map(|field| field.split(':').next());
        fields.map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect()
    }

    /// The messages this file writes and reads by hand have exactly the fields it knows. A field
    /// appended to one of them (the schema is append-only) must be laid out or verified here
    /// too, or the hand path would drop it (an event) or accept what the verifier refuses (a
    /// request): this test fails first, naming the table.
    #[test]
    fn the_hand_written_messages_know_every_field_of_their_tables() {
        let schema = include_str!("../../schema/huddle.fbs");
        let known: [(&str, &[&str]); 6] = [
            ("table Envelope", &["cid", "message"]),
            ("table PartyDataSend", &["party_id", "op_code", "data"]),
            ("table PartyData", &["party_id", "sender", "op_code", "data"]),
            ("table PartyOk", &["party_id"]),
            ("table Presence", &["user_id", "session_id", "username"]),
            ("struct PartyId", &["hi", "lo"]),
        ];
        for (table, fields) in known {
            assert_eq!(schema_fields(schema, table), fields, "{table} changed: update wire/hot.rs with it");
        }
    }

    /// Deterministic variety without a dependency: xorshift.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }

        fn text(&mut self, max: u64) -> String {
            // Multi-byte characters too: lengths are in bytes.
            let len = self.below(max + 1);
            (0..len).map(|i| if (self.next() + i as u64).is_multiple_of(7) { 'é' } else { 'a' }).collect()
        }
    }

    /// What the generic builder writes for the same event (the encoder without this module).
    fn built_party_data(party_id: PartyId, sender: &Presence, op_code: i64, data: &[u8]) -> Vec<u8> {
        let mut builder = FlatBufferBuilder::new();
        let data = builder.create_vector(data);
        let user_id = builder.create_string(sender.user_id.as_str());
        let username = builder.create_string(sender.username.as_str());
        let presence = fb::Presence::create(
            &mut builder,
            &fb::PresenceArgs {
                user_id: Some(user_id),
                session_id: sender.session_id.to_wire(),
                username: Some(username),
            },
        );
        let id = super::super::fields::party_id_to_wire(party_id);
        let message = fb::PartyData::create(
            &mut builder,
            &fb::PartyDataArgs { party_id: Some(&id), sender: Some(presence), op_code, data: Some(data) },
        );
        let envelope = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs { cid: 0, message_type: fb::Message::PartyData, message: Some(message.as_union_value()) },
        );
        builder.finish(envelope, Some(FILE_IDENTIFIER));
        builder.finished_data().to_vec()
    }

    #[test]
    fn hand_laid_party_data_decodes_as_the_builders_does_for_every_shape() {
        // Strict bounds: the smallest frame limit a server may run with still verifies them.
        let options = verifier_options(64 * 1024);
        let strict = flatbuffers::VerifierOptions::default();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        for case in 0..2_000 {
            let sender = Presence {
                user_id: UserId::new(&rng.text(if case % 3 == 0 { 0 } else { 40 })),
                session_id: SessionId::from_wire(rng.next()),
                username: Username::new(&rng.text(24)),
            };
            let party_id = PartyId(u128::from(rng.next()) << 64 | u128::from(rng.next()));
            let op_code = [0, 1, -1, i64::MIN, i64::MAX][case % 5] ^ (rng.next() as i64 & 0xff);
            let data: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            party_data_event(&mut out, party_id, &sender, op_code, &data);
            let expected = Event::Party(PartyEvent::Data {
                party_id,
                sender: sender.clone(),
                op_code,
                data: bytes::Bytes::from(data.clone()),
            });
            assert_eq!(
                decode_server_message(&out, &options),
                Ok(ServerMessage::Event(expected.clone())),
                "case {case}"
            );
            assert!(flatbuffers::root_with_opts::<fb::Envelope>(&strict, &out).is_ok(), "case {case}");
            assert!(fb::envelope_buffer_has_identifier(&out));
            let built = built_party_data(party_id, &sender, op_code, &data);
            assert_eq!(decode_server_message(&built, &options), Ok(ServerMessage::Event(expected)), "case {case}");
        }
    }

    #[test]
    fn hand_laid_party_ok_decodes_as_the_reply_it_is() {
        let options = verifier_options(64 * 1024);
        let mut out = Vec::new();
        for (cid, id) in [(1, 0), (u64::MAX, u128::MAX), (7, 0x0123_4567_89ab_cdef_0011_2233_4455_6677)] {
            party_ok_reply(&mut out, Cid(cid), PartyId(id));
            assert_eq!(
                decode_server_message(&out, &options),
                Ok(ServerMessage::Reply {
                    cid: Cid(cid),
                    result: Ok(Reply::Party(PartyReply::Ok { party_id: PartyId(id) }))
                })
            );
            assert!(flatbuffers::root_with_opts::<fb::Envelope>(&flatbuffers::VerifierOptions::default(), &out).is_ok());
        }
    }

    /// The hand-written `PartyDataSend` path against the generic verifier and decoder, on valid
    /// frames of every shape (with and without identifier, cid, op code, data; without party
    /// id, which the hand path leaves to the decoder's error) and on thousands of mutations of
    /// them: `decode_request` (hand path first) always equals the verifier's answer, and the
    /// hand path did take the valid frames.
    #[test]
    fn the_hand_written_request_path_agrees_with_the_verifier_on_valid_and_mutated_frames() {
        use super::super::{decode_request, decode_request_verified, Encoder};
        let options = verifier_options(16 * 1024);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut taken, mut checked) = (0, 0);
        let mut check = |frame: &[u8]| {
            let frame = Bytes::copy_from_slice(frame);
            assert_eq!(decode_request(&frame, &options), decode_request_verified(&frame, &options), "{frame:?}");
            checked += 1;
            usize::from(decode_party_data_send(&frame, &options).is_some())
        };
        for case in 0..3_000 {
            let party_id = PartyId(u128::from(rng.next()) << 64 | u128::from(rng.next()));
            let op_code = if case % 4 == 0 { 0 } else { rng.next() as i64 };
            let data: Vec<u8> = (0..rng.below(if case % 5 == 0 { 1 } else { 200 })).map(|_| rng.next() as u8).collect();
            let cid = Cid(if case % 3 == 0 { 0 } else { rng.next() });
            let frame = if case % 7 == 0 {
                // As another library may write it: no identifier, no data field, and now and
                // then no party id.
                let mut builder = FlatBufferBuilder::new();
                let id = super::super::fields::party_id_to_wire(party_id);
                let body = fb::PartyDataSend::create(
                    &mut builder,
                    &fb::PartyDataSendArgs { party_id: (case % 2 == 0).then_some(&id), op_code, data: None },
                );
                let envelope = fb::Envelope::create(
                    &mut builder,
                    &fb::EnvelopeArgs {
                        cid: cid.0,
                        message_type: fb::Message::PartyDataSend,
                        message: Some(body.as_union_value()),
                    },
                );
                builder.finish(envelope, None);
                builder.finished_data().to_vec()
            } else {
                let request = Request::Party(PartyRequest::Data { party_id, op_code, data: Bytes::from(data) });
                Encoder::new().request(cid, &request).to_vec()
            };
            taken += check(&frame);
            for _ in 0..10 {
                let mut mutated = frame.clone();
                match rng.below(4) {
                    0 => mutated.truncate(rng.below(frame.len() as u64 + 1)),
                    1 => mutated.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
                    _ => {
                        for _ in 0..1 + rng.below(3) {
                            let at = rng.below(frame.len() as u64);
                            mutated[at] = rng.next() as u8;
                        }
                    }
                }
                taken += check(&mutated);
            }
        }
        assert!(taken > 2_000, "the hand path took {taken} of {checked} frames");
    }

    /// A verifier that checks alignment relative to the frame's first byte refuses a table
    /// whose `ulong` is misaligned: so the layout's alignment is what makes it pass, and a
    /// frame moved by 4 bytes (as a careless copy would) is refused.
    #[test]
    fn the_layouts_alignment_is_load_bearing() {
        let sender =
            Presence { user_id: UserId::new("u"), session_id: SessionId::new(1, 2), username: Username::new("n") };
        let mut out = Vec::new();
        party_data_event(&mut out, PartyId(5), &sender, 3, b"x");
        let mut shifted = vec![0; 4];
        shifted.extend_from_slice(&out);
        // Re-root the shifted frame: the root offset is relative to the buffer's start.
        let root = u32::from_le_bytes(out[0..4].try_into().unwrap()) + 4;
        shifted[0..4].copy_from_slice(&root.to_le_bytes());
        assert!(flatbuffers::root_with_opts::<fb::Envelope>(&verifier_options(1 << 16), &shifted).is_err());
    }
}
