//! The bounded decoder: one text frame of a JSON connection into huddle's [`Request`].
//!
//! A frame is Nakama's `rtapi.Envelope` as protojson: an object with an optional string `cid` and
//! exactly one message key (`party_join`, `status_update`, …) whose value is the message. The
//! decoder reads it in three steps, each bounded:
//! 1. the frame's length against [`NakamaLimits::frame_bytes_max`], and a byte scan that refuses
//!    nesting deeper than [`JSON_DEPTH_MAX`] before any parser recurses;
//! 2. one `serde_json` pass over the envelope that keeps every value as a borrowed raw slice (no
//!    tree, no copies) and remembers the `cid` as soon as it is read, so an error later in the
//!    frame can still be answered under that `cid`;
//! 3. the message's fields, each type-checked on its own, so an error names the field
//!    (`party_create.max_size must be an integer`). Lists are counted as they are read and kept
//!    only up to their bound.
//!
//! Field rules follow protojson as Nakama's server reads it: a field may be absent or `null`
//! (its default), a field may use its lowerCamelCase JSON name (`partyId`), int64 and int32 fields
//! take a JSON number or a decimal string, bytes fields take standard or URL-safe base64 with or
//! without padding. Unknown fields inside a known message are ignored (a newer SDK may send fields
//! this server does not know), unlike an unknown message. Where Nakama's pipeline validates a field
//! before its party handler runs (party id, presence, max size, label size, status size, user ids),
//! the decoder does the same check with Nakama's error text; the core checks again.

use super::errors::{FieldName, NakamaDecodeError, NakamaOp};
use super::ids::parse_party_id;
use crate::core::{Cid, PartyRequest, Presence, Request, StatusRequest, UserId, Username};
use crate::limits::{Limits, FOLLOW_IDS_PER_REQUEST_CEILING, NAKAMA_JSON_FOLLOW_REPLY_FRAMING_BYTES_MAX};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of objects and arrays accepted. The deepest request is three levels
/// (envelope → `party_accept` → `presence`); eight leaves room for unknown fields a newer SDK
/// might nest while refusing, before any parser recurses, the thousands of levels a hostile
/// frame can hold (serde_json alone would allow 128).
pub const JSON_DEPTH_MAX: usize = 8;

/// Longest `cid` accepted. The SDKs count up from 1 in decimal; 64 bytes fits any counter and a
/// UUID, while a longer cid is refused instead of being echoed back.
pub const CID_BYTES_MAX: usize = 64;

// A follow reply echoes the cid, each byte escaped to at most six (`\u0001`): that, the envelope
// around the presences (36 bytes) and the frame header (10) must stay within the framing the
// follow reply bound allows (SPEC S-2, `Limits::follow_reply_bytes_max`).
const _: () = assert!(6 * CID_BYTES_MAX + 36 + 10 <= NAKAMA_JSON_FOLLOW_REPLY_FRAMING_BYTES_MAX);

/// Longest message name repeated in an "unknown message" error (names are logged, never echoed
/// to the client, so a huge key costs nothing later).
const MESSAGE_NAME_KEPT_MAX: usize = 48;

/// Bounds the decoder enforces, taken from the server's [`Limits`] so the JSON codec refuses what
/// the FlatBuffers codec and the core refuse, with Nakama's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NakamaLimits {
    /// Longest frame (`Limits::message_bytes_max`).
    pub frame_bytes_max: usize,
    /// Largest `max_size` of `party_create` (`Limits::party_members_max`).
    pub party_members_max: usize,
    /// Longest label (`Limits::party_label_bytes_max`).
    pub party_label_bytes_max: usize,
    /// Longest status (`Limits::status_bytes_max`).
    pub status_bytes_max: usize,
}

impl NakamaLimits {
    pub fn new(limits: &Limits) -> NakamaLimits {
        NakamaLimits {
            frame_bytes_max: limits.message_bytes_max,
            party_members_max: limits.party_members_max,
            party_label_bytes_max: limits.party_label_bytes_max,
            status_bytes_max: limits.status_bytes_max,
        }
    }
}

/// A request's `cid` as the client wrote it, to be echoed on its reply. The SDKs send decimal
/// counters ("1", "2", …), kept as a number so that the common case allocates nothing; any other
/// string of at most [`CID_BYTES_MAX`] bytes is kept as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CidText {
    /// No `cid` (or an empty one, which protojson cannot tell from none): the reply, if any, goes
    /// out without one, as Nakama's does.
    #[default]
    Absent,
    /// A canonical decimal number (no sign, no leading zero).
    Number(u64),
    Text(Box<str>),
}

impl CidText {
    fn from_str(text: &str) -> CidText {
        if text.is_empty() {
            return CidText::Absent;
        }
        let canonical = text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
        match text.parse::<u64>() {
            Ok(number) if canonical => CidText::Number(number),
            _ => CidText::Text(text.into()),
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, CidText::Absent)
    }

    /// The number the core and the driver use for this cid: 0 when there is none, the number
    /// itself when the client's cid is a non-zero number, else `u64::MAX` (the text stays with
    /// the connection, for the reply).
    pub fn core_cid(&self) -> Cid {
        match self {
            CidText::Absent => Cid::NONE,
            CidText::Number(number) if *number != 0 => Cid(*number),
            _ => Cid(u64::MAX),
        }
    }
}

impl fmt::Display for CidText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidText::Absent => Ok(()),
            CidText::Number(number) => write!(f, "{number}"),
            CidText::Text(text) => f.write_str(text),
        }
    }
}

/// What the reply to a decoded request needs: the `cid` to echo and the Nakama operation it
/// answers. The driver keeps it from the decode until it encodes the request's one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub cid: CidText,
    pub op: NakamaOp,
}

impl ReplyTo {
    /// The [`Cid`] the core sees for this request. Party data without a `cid` is fire-and-forget
    /// (SPEC P-9: cid 0, no reply). Every other request gets a reply, so it gets a non-zero cid
    /// even when it has none: the number when the client's cid is one, else `u64::MAX`. The core
    /// only echoes it; the reply's text comes from this `ReplyTo`.
    pub fn core_cid(&self) -> Cid {
        match self.cid {
            CidText::Absent if self.op != NakamaOp::PartyDataSend => Cid(u64::MAX),
            _ => self.cid.core_cid(),
        }
    }
}

/// A decoded frame: the request for the core and what its reply needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NakamaRequest {
    pub reply_to: ReplyTo,
    pub request: Request,
}

/// A frame that is not a request: the `cid` to answer under (when it could be read) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeFailure {
    pub cid: CidText,
    pub error: NakamaDecodeError,
}

impl DecodeFailure {
    /// A binary frame on a JSON connection (it has no readable `cid`).
    pub fn binary_frame() -> DecodeFailure {
        DecodeFailure { cid: CidText::Absent, error: NakamaDecodeError::BinaryFrame }
    }
}

/// Decodes one text frame of a JSON connection. Never panics; every refusal is a
/// [`DecodeFailure`] carrying the `cid` when the frame got far enough to show one.
pub fn decode_request(frame: &[u8], limits: &NakamaLimits) -> Result<NakamaRequest, DecodeFailure> {
    let fail = |error| DecodeFailure { cid: CidText::Absent, error };
    if frame.len() > limits.frame_bytes_max {
        return Err(fail(NakamaDecodeError::TooLarge { len: frame.len(), max: limits.frame_bytes_max }));
    }
    check_depth(frame, JSON_DEPTH_MAX).map_err(fail)?;
    let text = std::str::from_utf8(frame).map_err(|e| fail(NakamaDecodeError::InvalidJson(e.to_string())))?;
    if !text.trim_start().starts_with('{') {
        // Valid JSON that is not an object, or not JSON at all: say which.
        return Err(fail(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => NakamaDecodeError::NotAnObject,
            Err(e) => NakamaDecodeError::InvalidJson(e.to_string()),
        }));
    }

    let mut raw_cid = None;
    let mut parser = serde_json::Deserializer::from_str(text);
    let parsed = EnvelopeSeed { cid: &mut raw_cid }.deserialize(&mut parser).and_then(|envelope| {
        parser.end()?;
        Ok(envelope)
    });
    let cid = match raw_cid.map(read_cid).transpose() {
        Ok(cid) => cid.unwrap_or(CidText::Absent),
        Err(error) => return Err(fail(error)),
    };
    let fail = |error| DecodeFailure { cid: cid.clone(), error };
    let envelope = parsed.map_err(|e| fail(NakamaDecodeError::InvalidJson(e.to_string())))?;
    if envelope.duplicate_cid {
        return Err(fail(NakamaDecodeError::InvalidJson("duplicate field `cid`".into())));
    }
    if envelope.messages > 1 {
        return Err(fail(NakamaDecodeError::MultipleMessages));
    }
    let Some((name, body)) = envelope.message else {
        return Err(fail(NakamaDecodeError::MissingMessage));
    };
    let Some(op) = NakamaOp::from_message_name(&name) else {
        return Err(fail(not_served(&name)));
    };
    // protojson reads `null` as "not set": an envelope whose only message is null has none.
    if body.get() == "null" {
        return Err(fail(NakamaDecodeError::MissingMessage));
    }
    if !body.get().starts_with('{') {
        let field = FieldName { message: "envelope", field: op.message_name() };
        return Err(fail(NakamaDecodeError::WrongType { field, expected: "an object" }));
    }
    let request = decode_message(op, body, limits).map_err(fail)?;
    Ok(NakamaRequest { reply_to: ReplyTo { cid, op }, request })
}

/// Nakama requests huddle does not serve, and messages only a server sends.
fn not_served(name: &str) -> NakamaDecodeError {
    const UNSUPPORTED: &[&str] = &[
        "channel_join",
        "channel_leave",
        "channel_message_send",
        "channel_message_update",
        "channel_message_remove",
        "match_create",
        "match_data_send",
        "match_join",
        "match_leave",
        "matchmaker_add",
        "matchmaker_remove",
        "party_matchmaker_add",
        "party_matchmaker_remove",
        "rpc",
    ];
    const SERVER_ONLY: &[&str] = &[
        "channel",
        "channel_message",
        "channel_message_ack",
        "channel_presence_event",
        "error",
        "match",
        "match_data",
        "match_presence_event",
        "matchmaker_matched",
        "matchmaker_ticket",
        "notifications",
        "party",
        "party_data",
        "party_join_request",
        "party_leader",
        "party_matchmaker_ticket",
        "party_presence_event",
        "pong",
        "status",
        "status_presence_event",
        "stream_data",
        "stream_presence_event",
    ];
    if let Some(name) = UNSUPPORTED.iter().find(|n| **n == name) {
        return NakamaDecodeError::Unsupported(name);
    }
    if let Some(name) = SERVER_ONLY.iter().find(|n| **n == name) {
        return NakamaDecodeError::NotARequest(name);
    }
    let mut end = name.len().min(MESSAGE_NAME_KEPT_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    NakamaDecodeError::UnknownMessage(name[..end].to_owned())
}

/// Refuses nesting deeper than `max` by scanning bytes (strings skipped), before any recursive
/// parser sees the frame. Unbalanced brackets are left for the parser to report.
fn check_depth(frame: &[u8], max: usize) -> Result<(), NakamaDecodeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in frame {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(NakamaDecodeError::TooDeep { max });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn read_cid(raw: &RawValue) -> Result<CidText, NakamaDecodeError> {
    if raw.get() == "null" {
        return Ok(CidText::Absent);
    }
    let text = raw_str(raw).ok_or(NakamaDecodeError::InvalidCid)?;
    if text.len() > CID_BYTES_MAX {
        return Err(NakamaDecodeError::InvalidCid);
    }
    Ok(CidText::from_str(&text))
}

/// The envelope's top level: the message (first key other than `cid`) as a raw slice, and how
/// many message keys there were. The `cid` goes to the seed's slot the moment it is read.
struct Envelope<'a> {
    message: Option<(Cow<'a, str>, &'a RawValue)>,
    messages: usize,
    duplicate_cid: bool,
}

struct EnvelopeSeed<'s, 'a> {
    cid: &'s mut Option<&'a RawValue>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, 'de> {
    type Value = Envelope<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Envelope<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, 'de> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut envelope = Envelope { message: None, messages: 0, duplicate_cid: false };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            if key == "cid" {
                envelope.duplicate_cid |= self.cid.is_some();
                self.cid.get_or_insert(value);
            } else {
                envelope.messages += 1;
                if envelope.message.is_none() {
                    envelope.message = Some((key, value));
                }
            }
        }
        Ok(envelope)
    }
}

/// An object key, borrowed from the frame unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

// ---- message bodies: every field kept raw, then checked on its own ----

type Raw<'a> = Option<&'a RawValue>;

#[derive(Deserialize)]
struct PartyCreateBody<'a> {
    #[serde(borrow, default)]
    open: Raw<'a>,
    #[serde(borrow, default, alias = "maxSize")]
    max_size: Raw<'a>,
    #[serde(borrow, default)]
    label: Raw<'a>,
    #[serde(borrow, default)]
    hidden: Raw<'a>,
}

/// `party_join`, `party_leave`, `party_close`, `party_join_request_list`.
#[derive(Deserialize)]
struct PartyIdBody<'a> {
    #[serde(borrow, default, alias = "partyId")]
    party_id: Raw<'a>,
}

/// `party_promote`, `party_accept`, `party_remove`.
#[derive(Deserialize)]
struct PartyPresenceBody<'a> {
    #[serde(borrow, default, alias = "partyId")]
    party_id: Raw<'a>,
    #[serde(borrow, default)]
    presence: Raw<'a>,
}

#[derive(Deserialize)]
struct PresenceBody<'a> {
    #[serde(borrow, default, alias = "userId")]
    user_id: Raw<'a>,
    #[serde(borrow, default, alias = "sessionId")]
    session_id: Raw<'a>,
    #[serde(borrow, default)]
    username: Raw<'a>,
}

#[derive(Deserialize)]
struct PartyDataSendBody<'a> {
    #[serde(borrow, default, alias = "partyId")]
    party_id: Raw<'a>,
    #[serde(borrow, default, alias = "opCode")]
    op_code: Raw<'a>,
    #[serde(borrow, default)]
    data: Raw<'a>,
}

#[derive(Deserialize)]
struct PartyUpdateBody<'a> {
    #[serde(borrow, default, alias = "partyId")]
    party_id: Raw<'a>,
    #[serde(borrow, default)]
    label: Raw<'a>,
    #[serde(borrow, default)]
    open: Raw<'a>,
    #[serde(borrow, default)]
    hidden: Raw<'a>,
}

#[derive(Deserialize)]
struct StatusUpdateBody<'a> {
    #[serde(borrow, default)]
    status: Raw<'a>,
}

#[derive(Deserialize)]
struct StatusFollowBody<'a> {
    #[serde(borrow, default, alias = "userIds")]
    user_ids: Raw<'a>,
    #[serde(borrow, default)]
    usernames: Raw<'a>,
}

/// Parses a message body (known to be an object) into its raw fields.
fn body<'a, T: Deserialize<'a>>(op: NakamaOp, raw: &'a RawValue) -> Result<T, NakamaDecodeError> {
    serde_json::from_str(raw.get()).map_err(|e| {
        // Only a duplicate field can fail here: the envelope pass checked the syntax and the
        // object shape, and every field is a raw slice.
        NakamaDecodeError::InvalidJson(format!("{}: {e}", op.message_name()))
    })
}

fn decode_message(op: NakamaOp, raw: &RawValue, limits: &NakamaLimits) -> Result<Request, NakamaDecodeError> {
    let name = op.message_name();
    let field = |field| FieldName { message: name, field };
    let request = match op {
        NakamaOp::Ping => Request::Ping,
        NakamaOp::PartyCreate => {
            let m: PartyCreateBody = body(op, raw)?;
            let open = boolean(m.open, field("open"))?;
            let max_size = int(m.max_size, field("max_size"), i64::from(i32::MIN), i64::from(i32::MAX))?;
            if max_size < 1 || max_size as u64 > limits.party_members_max as u64 {
                return Err(NakamaDecodeError::InvalidMaxSize { max: limits.party_members_max });
            }
            let label = label(m.label, field("label"), op, limits)?;
            let hidden = boolean(m.hidden, field("hidden"))?;
            // Nakama has no lobby settings: the defaults (public, all members invite).
            let lobby = Default::default();
            Request::Party(PartyRequest::Create { open, max_size: max_size as u32, label, hidden, lobby })
        }
        NakamaOp::PartyJoin | NakamaOp::PartyLeave | NakamaOp::PartyClose | NakamaOp::PartyJoinRequestList => {
            let m: PartyIdBody = body(op, raw)?;
            let party_id = party_id(m.party_id, field("party_id"))?;
            Request::Party(match op {
                NakamaOp::PartyJoin => PartyRequest::Join { party_id },
                NakamaOp::PartyLeave => PartyRequest::Leave { party_id },
                NakamaOp::PartyClose => PartyRequest::Close { party_id },
                _ => PartyRequest::JoinRequests { party_id },
            })
        }
        NakamaOp::PartyPromote | NakamaOp::PartyAccept | NakamaOp::PartyRemove => {
            let m: PartyPresenceBody = body(op, raw)?;
            // Nakama checks the presence before the party id.
            let presence = presence(m.presence, name)?;
            let party_id = party_id(m.party_id, field("party_id"))?;
            Request::Party(match op {
                NakamaOp::PartyPromote => PartyRequest::Promote { party_id, presence },
                NakamaOp::PartyAccept => PartyRequest::Accept { party_id, presence },
                _ => PartyRequest::Remove { party_id, presence },
            })
        }
        NakamaOp::PartyDataSend => {
            let m: PartyDataSendBody = body(op, raw)?;
            let party_id = party_id(m.party_id, field("party_id"))?;
            let op_code = int(m.op_code, field("op_code"), i64::MIN, i64::MAX)?;
            let data = base64_bytes(m.data, field("data"))?;
            Request::Party(PartyRequest::Data { party_id, op_code, data })
        }
        NakamaOp::PartyUpdate => {
            let m: PartyUpdateBody = body(op, raw)?;
            let party_id = party_id(m.party_id, field("party_id"))?;
            let open = boolean(m.open, field("open"))?;
            let hidden = boolean(m.hidden, field("hidden"))?;
            let label = label(m.label, field("label"), op, limits)?;
            if hidden && !label.is_empty() {
                return Err(NakamaDecodeError::HiddenWithLabel);
            }
            // Nakama's update replaces all three settings: absent means false or empty. It has no
            // lobby settings, so those keep their value.
            Request::Party(PartyRequest::Update {
                party_id,
                open: Some(open),
                hidden: Some(hidden),
                label: Some(label),
                lobby: Default::default(),
            })
        }
        NakamaOp::StatusUpdate => {
            let m: StatusUpdateBody = body(op, raw)?;
            // A wrapper (`google.protobuf.StringValue`): absent or null = appear offline.
            let status = match m.status {
                None => None,
                Some(raw) => {
                    let text = raw_str(raw)
                        .ok_or(NakamaDecodeError::WrongType { field: field("status"), expected: "a string" })?;
                    if text.len() > limits.status_bytes_max {
                        return Err(NakamaDecodeError::StatusTooLong { max: limits.status_bytes_max });
                    }
                    Some(text.into_owned())
                }
            };
            Request::Status(StatusRequest::Update { status })
        }
        NakamaOp::StatusFollow => {
            let m: StatusFollowBody = body(op, raw)?;
            let user_ids = string_list(m.user_ids, field("user_ids"), FOLLOW_IDS_PER_REQUEST_CEILING)?;
            let room = FOLLOW_IDS_PER_REQUEST_CEILING - user_ids.len();
            let usernames = string_list(m.usernames, field("usernames"), room).map_err(|e| match e {
                NakamaDecodeError::TooMany { field, len, .. } => {
                    NakamaDecodeError::TooMany { field, len: len + user_ids.len(), max: FOLLOW_IDS_PER_REQUEST_CEILING }
                }
                other => other,
            })?;
            Request::Status(StatusRequest::Follow {
                user_ids: user_ids.iter().map(|id| user_id(id)).collect::<Result<_, _>>()?,
                usernames: usernames.iter().map(|name| username(name)).collect::<Result<_, _>>()?,
            })
        }
        NakamaOp::StatusUnfollow => {
            let m: StatusFollowBody = body(op, raw)?;
            let user_ids = string_list(m.user_ids, field("user_ids"), FOLLOW_IDS_PER_REQUEST_CEILING)?;
            Request::Status(StatusRequest::Unfollow {
                user_ids: user_ids.iter().map(|id| user_id(id)).collect::<Result<_, _>>()?,
            })
        }
    };
    Ok(request)
}

// ---- field readers ----

/// A JSON string's contents, borrowed from the frame unless it holds escapes; `None` when the
/// value is not a string.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    if !text.contains('\\') {
        // serde_json checked the string when it captured it: quotes at both ends, no controls.
        return Some(Cow::Borrowed(&text[1..text.len() - 1]));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A bool; absent or null is `false`.
fn boolean(raw: Raw<'_>, field: FieldName) -> Result<bool, NakamaDecodeError> {
    match raw.map(RawValue::get) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(NakamaDecodeError::WrongType { field, expected: "a boolean" }),
    }
}

/// An integer in `min..=max` from a JSON number or a decimal string (protojson writes int64 as a
/// string and reads both); absent or null is 0. A number in exponent or fraction form is accepted
/// when it is a whole number in range, as protojson does.
fn int(raw: Raw<'_>, field: FieldName, min: i64, max: i64) -> Result<i64, NakamaDecodeError> {
    let Some(raw) = raw else {
        return Ok(0);
    };
    let wrong = NakamaDecodeError::WrongType { field, expected: "an integer (a number or a decimal string)" };
    let text = match raw.get().as_bytes().first() {
        Some(b'"') => raw_str(raw).ok_or(wrong.clone())?,
        Some(b'-' | b'0'..=b'9') => Cow::Borrowed(raw.get()),
        _ => return Err(wrong),
    };
    let out_of_range = NakamaDecodeError::NumberOutOfRange { field };
    let value = match text.parse::<i64>() {
        Ok(value) => value,
        Err(_) => {
            let looks_numeric =
                text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
                    && text.bytes().any(|b| b.is_ascii_digit());
            if !looks_numeric {
                return Err(wrong);
            }
            let float = text.parse::<f64>().map_err(|_| wrong.clone())?;
            // 2^63 is exact as an f64; i64 holds -2^63 up to (not including) 2^63.
            let bound = 2f64.powi(63);
            if float.fract() != 0.0 || !(-bound..bound).contains(&float) {
                return Err(out_of_range);
            }
            float as i64
        }
    };
    if value < min || value > max {
        return Err(out_of_range);
    }
    Ok(value)
}

/// A string; absent or null is empty.
fn string<'a>(raw: Raw<'a>, field: FieldName) -> Result<Cow<'a, str>, NakamaDecodeError> {
    match raw {
        None => Ok(Cow::Borrowed("")),
        Some(raw) => raw_str(raw).ok_or(NakamaDecodeError::WrongType { field, expected: "a string" }),
    }
}

/// A party label: at most the configured bytes; Nakama's empty label `{}` is huddle's "none".
fn label(raw: Raw<'_>, field: FieldName, op: NakamaOp, limits: &NakamaLimits) -> Result<String, NakamaDecodeError> {
    let label = string(raw, field)?;
    if label.len() > limits.party_label_bytes_max {
        return Err(NakamaDecodeError::LabelTooLong { op });
    }
    Ok(if label == "{}" { String::new() } else { label.into_owned() })
}

fn party_id(raw: Raw<'_>, field: FieldName) -> Result<crate::core::PartyId, NakamaDecodeError> {
    let text = string(raw, field)?;
    parse_party_id(&text).ok_or(NakamaDecodeError::InvalidPartyId)
}

/// `presence` of promote, accept and remove. Every field must be there and name a huddle session
/// (Nakama: "Invalid presence" for a missing field); `persistence` and `status`, which a client
/// may copy from an event, are ignored.
fn presence(raw: Raw<'_>, message: &'static str) -> Result<Presence, NakamaDecodeError> {
    let raw = raw.filter(|raw| raw.get() != "null").ok_or(NakamaDecodeError::InvalidPresence)?;
    if !raw.get().starts_with('{') {
        let field = FieldName { message, field: "presence" };
        return Err(NakamaDecodeError::WrongType { field, expected: "an object" });
    }
    let m: PresenceBody = serde_json::from_str(raw.get())
        .map_err(|e| NakamaDecodeError::InvalidJson(format!("{message}.presence: {e}")))?;
    let claim = |raw, field| -> Result<String, NakamaDecodeError> {
        let value = string(raw, FieldName { message, field })?;
        if value.is_empty() || value.len() > UserId::BYTES_MAX {
            // Empty is Nakama's "Invalid presence"; longer than any token claim names nobody.
            return Err(NakamaDecodeError::InvalidPresence);
        }
        Ok(value.into_owned())
    };
    let user_id = claim(m.user_id, "presence.user_id")?;
    let username = claim(m.username, "presence.username")?;
    let session = string(m.session_id, FieldName { message, field: "presence.session_id" })?;
    let session_id = super::ids::parse_session_id(&session).ok_or(NakamaDecodeError::InvalidPresence)?;
    Ok(Presence { user_id: UserId::new(&user_id), session_id, username: Username::new(&username) })
}

/// Bytes as protojson writes them: base64, standard or URL-safe alphabet (chosen by whether
/// `-` or `_` occurs, as Go's protojson does), padding optional. Absent or null is empty.
fn base64_bytes(raw: Raw<'_>, field: FieldName) -> Result<Bytes, NakamaDecodeError> {
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    let text = string(raw, field)?;
    let engine = if text.contains(['-', '_']) { &URL_SAFE } else { &STANDARD };
    engine.decode(text.as_bytes()).map(Bytes::from).map_err(|_| NakamaDecodeError::InvalidBase64 { field })
}

/// A list of strings of at most `max` entries: counted while read, kept only up to `max`, so a
/// long list costs no more memory than a full one before it is refused.
fn string_list<'a>(raw: Raw<'a>, field: FieldName, max: usize) -> Result<Vec<Cow<'a, str>>, NakamaDecodeError> {
    let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
        return Ok(Vec::new());
    };
    if !raw.get().starts_with('[') {
        return Err(NakamaDecodeError::WrongType { field, expected: "a list of strings" });
    }
    let mut parser = serde_json::Deserializer::from_str(raw.get());
    let (items, len) = ListSeed { max }
        .deserialize(&mut parser)
        .map_err(|e| NakamaDecodeError::InvalidJson(format!("{field}: {e}")))?;
    if len > max {
        return Err(NakamaDecodeError::TooMany { field, len, max });
    }
    items
        .into_iter()
        .map(|item| raw_str(item).ok_or(NakamaDecodeError::WrongType { field, expected: "a list of strings" }))
        .collect()
}

fn user_id(text: &str) -> Result<UserId, NakamaDecodeError> {
    if text.is_empty() || text.len() > UserId::BYTES_MAX {
        return Err(NakamaDecodeError::InvalidUserId);
    }
    Ok(UserId::new(text))
}

fn username(text: &str) -> Result<Username, NakamaDecodeError> {
    if text.is_empty() || text.len() > UserId::BYTES_MAX {
        return Err(NakamaDecodeError::InvalidUsername);
    }
    Ok(Username::new(text))
}

/// Reads a JSON array into at most `max` raw items and the array's full length.
struct ListSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = (Vec<&'de RawValue>, usize);

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = (Vec<&'de RawValue>, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(64));
        let mut len = 0usize;
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            len += 1;
            if items.len() < self.max {
                items.push(item);
            }
        }
        Ok((items, len))
    }
}
