//! Nakama's realtime errors: the operations whose names prefix Nakama's error texts, the decode
//! errors of the JSON codec, and the one mapping from huddle's codec-neutral [`ErrorCode`] to
//! Nakama's `Error.Code` and message ([`nakama_error`]).
//!
//! Nakama's SDK users match on error texts, so where Nakama has a text for a refusal huddle also
//! makes, the text is Nakama's, word for word (from Nakama 3.40's `server/pipeline_party.go`,
//! `server/pipeline_status.go`, `server/pipeline.go` and the party errors of
//! `nakama-common/runtime`). Refusals Nakama does not have keep huddle's text, behind Nakama's
//! prefix for the operation.

use crate::core::{CoreError, ErrorCode};
use std::borrow::Cow;
use std::fmt;

/// Nakama's `rtapi.Error.Code` (nakama-common `rtapi/realtime.proto`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum NakamaCode {
    /// An unexpected result from the server.
    RuntimeException = 0,
    /// The server received a message which is not recognised.
    UnrecognizedPayload = 1,
    /// A message was expected but contains no content.
    MissingPayload = 2,
    /// Fields in the message have an invalid format.
    BadInput = 3,
    /// The match id was not found (matches are not huddle's).
    MatchNotFound = 4,
    /// The match join was rejected (matches are not huddle's).
    MatchJoinRejected = 5,
    /// The runtime function does not exist on the server (no runtime in huddle).
    RuntimeFunctionNotFound = 6,
    /// The runtime function executed with an error (no runtime in huddle).
    RuntimeFunctionException = 7,
}

impl NakamaCode {
    /// The number on the wire.
    pub fn number(self) -> i32 {
        self as i32
    }
}

/// An error as a Nakama client receives it in an `error` envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NakamaError<'a> {
    pub code: NakamaCode,
    pub message: Cow<'a, str>,
}

/// The Nakama request a reply answers. Nakama's error texts name the operation ("Error joining
/// party: party full"), and some replies take the request's shape (a join is a bare ack followed
/// by a `party` message), so the encoder needs to know it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NakamaOp {
    Ping,
    PartyCreate,
    PartyJoin,
    PartyLeave,
    PartyPromote,
    PartyAccept,
    PartyRemove,
    PartyClose,
    PartyJoinRequestList,
    PartyDataSend,
    PartyUpdate,
    StatusUpdate,
    StatusFollow,
    StatusUnfollow,
}

impl NakamaOp {
    /// Every operation, in the order of the table in `docs/nakama-compat.md`.
    pub const ALL: &'static [NakamaOp] = &[
        NakamaOp::Ping,
        NakamaOp::PartyCreate,
        NakamaOp::PartyJoin,
        NakamaOp::PartyLeave,
        NakamaOp::PartyPromote,
        NakamaOp::PartyAccept,
        NakamaOp::PartyRemove,
        NakamaOp::PartyClose,
        NakamaOp::PartyJoinRequestList,
        NakamaOp::PartyDataSend,
        NakamaOp::PartyUpdate,
        NakamaOp::StatusUpdate,
        NakamaOp::StatusFollow,
        NakamaOp::StatusUnfollow,
    ];

    /// The envelope key of the request (`rtapi.Envelope`'s oneof field name).
    pub fn message_name(self) -> &'static str {
        match self {
            NakamaOp::Ping => "ping",
            NakamaOp::PartyCreate => "party_create",
            NakamaOp::PartyJoin => "party_join",
            NakamaOp::PartyLeave => "party_leave",
            NakamaOp::PartyPromote => "party_promote",
            NakamaOp::PartyAccept => "party_accept",
            NakamaOp::PartyRemove => "party_remove",
            NakamaOp::PartyClose => "party_close",
            NakamaOp::PartyJoinRequestList => "party_join_request_list",
            NakamaOp::PartyDataSend => "party_data_send",
            NakamaOp::PartyUpdate => "party_update",
            NakamaOp::StatusUpdate => "status_update",
            NakamaOp::StatusFollow => "status_follow",
            NakamaOp::StatusUnfollow => "status_unfollow",
        }
    }

    /// The operation whose envelope key is `name`.
    pub fn from_message_name(name: &str) -> Option<NakamaOp> {
        NakamaOp::ALL.iter().copied().find(|op| op.message_name() == name)
    }

    /// What Nakama's pipeline writes before the party handler's error text. Status and ping
    /// errors have no prefix; Nakama's leave never fails once its party id parsed.
    pub fn error_prefix(self) -> &'static str {
        match self {
            NakamaOp::PartyCreate => "Error creating party: ",
            NakamaOp::PartyJoin => "Error joining party: ",
            NakamaOp::PartyPromote => "Error promoting new party leader: ",
            NakamaOp::PartyAccept => "Error accepting party join request: ",
            NakamaOp::PartyRemove => "Error removing party member or join request: ",
            NakamaOp::PartyClose => "Error closing party: ",
            NakamaOp::PartyJoinRequestList => "Error listing party join requests: ",
            NakamaOp::PartyDataSend => "Error sending party data: ",
            NakamaOp::PartyUpdate => "Error updating party: ",
            NakamaOp::Ping
            | NakamaOp::PartyLeave
            | NakamaOp::StatusUpdate
            | NakamaOp::StatusFollow
            | NakamaOp::StatusUnfollow => "",
        }
    }
}

/// The Nakama code and message for an error of huddle's, in one place.
///
/// `op` is the Nakama request a refusal of the core answers: the message is then Nakama's text for
/// the same refusal behind Nakama's prefix for the operation ("Error promoting new party leader:
/// party leader only"), or huddle's own text behind that prefix where Nakama has no such refusal.
/// `op` is `None` for errors whose `text` is already final: the JSON decoder's (they carry
/// Nakama's validation texts, such as "Invalid party ID"), and refusals of the driver (the rate
/// limit), which are about the connection rather than an operation.
///
/// Codes: the codec-neutral codes of "unknown message" and "not a request" are Nakama's
/// `UNRECOGNIZED_PAYLOAD`, `Unspecified` is `RUNTIME_EXCEPTION`, and every other code is
/// `BAD_INPUT`, which is what Nakama sends for every party and status refusal.
pub fn nakama_error(op: Option<NakamaOp>, code: ErrorCode, text: &str) -> NakamaError<'_> {
    let nakama_code = match code {
        ErrorCode::Unspecified => NakamaCode::RuntimeException,
        ErrorCode::UnknownMessage | ErrorCode::NotARequest | ErrorCode::TextFrameUnsupported => {
            NakamaCode::UnrecognizedPayload
        }
        ErrorCode::MalformedEnvelope
        | ErrorCode::MissingCid
        | ErrorCode::BadInput
        | ErrorCode::PartyNotFound
        | ErrorCode::PartyFull
        | ErrorCode::PartyNotLeader
        | ErrorCode::PartyNotMember
        | ErrorCode::PartyJoinRequestDuplicate
        | ErrorCode::PartyAlreadyMember
        | ErrorCode::PartyCannotRemoveSelf
        | ErrorCode::PartyPresenceNotFound
        | ErrorCode::PartyJoinRequestsFull
        | ErrorCode::PartyTooManyParties
        | ErrorCode::PartyPresenceMismatch
        | ErrorCode::FollowLimitReached
        | ErrorCode::SearchQueryInvalid
        | ErrorCode::SearchCursorMismatch
        | ErrorCode::SearchCursorInvalid
        | ErrorCode::SearchQueryTooBroad
        | ErrorCode::SearchQueryTooCostly
        | ErrorCode::SearchBudgetExhausted
        | ErrorCode::LabelTooComplex
        | ErrorCode::SearchIndexFull
        // The lobby's refusals reach JSON sessions too (one party per user and the join
        // strategies refuse their joins); the others answer huddle-only requests.
        | ErrorCode::PartyAlreadyInParty
        | ErrorCode::PartyJoinNotAllowed
        | ErrorCode::PartyNotInvited
        | ErrorCode::InviteeIsSelf
        | ErrorCode::InviteeInvalid
        | ErrorCode::InviteeInParty
        | ErrorCode::InvitationNotFound
        | ErrorCode::PartyCodeNotFound
        | ErrorCode::InvitationCancelNotAllowed
        // Lobby II: blocks and the friend strategies refuse JSON sessions' joins too; the
        // others answer huddle-only requests (or names, which Nakama's create has not).
        | ErrorCode::PartyJoinBlocked
        | ErrorCode::PartyNotFriendOfLeader
        | ErrorCode::PartyNotFriendOfMembers
        | ErrorCode::InviteeBlocked
        | ErrorCode::PartyChatDisabled
        | ErrorCode::PartyNameDenied
        | ErrorCode::LimitExceeded => NakamaCode::BadInput,
    };
    let Some(op) = op else {
        return NakamaError { code: nakama_code, message: Cow::Borrowed(text) };
    };
    // Nakama's party handler checks "is the caller the leader" before anything else, so a
    // non-member of a leader-only operation hears "party leader only"; only party data asks
    // "is the caller a member". A presence that does not match (huddle tells a wrong user id or
    // username apart from an unknown session; Nakama compares all three at once) is an unknown
    // join request for accept and an unknown member otherwise.
    let nakama_text = match code {
        ErrorCode::PartyNotFound => Some("party not found"),
        ErrorCode::PartyFull => Some("party full"),
        ErrorCode::PartyNotLeader => Some("party leader only"),
        ErrorCode::PartyNotMember if op == NakamaOp::PartyDataSend => Some("party member not found"),
        ErrorCode::PartyNotMember => Some("party leader only"),
        ErrorCode::PartyJoinRequestDuplicate => Some("party join request duplicate"),
        ErrorCode::PartyAlreadyMember => Some("party join request already member"),
        ErrorCode::PartyCannotRemoveSelf => Some("party cannot remove self"),
        ErrorCode::PartyPresenceNotFound | ErrorCode::PartyPresenceMismatch if op == NakamaOp::PartyAccept => {
            Some("party join request not found")
        }
        ErrorCode::PartyPresenceNotFound | ErrorCode::PartyPresenceMismatch => Some("party member not found"),
        ErrorCode::PartyJoinRequestsFull => Some("party join requests full"),
        _ => None,
    };
    let message = format!("{}{}", op.error_prefix(), nakama_text.unwrap_or(text));
    NakamaError { code: nakama_code, message: Cow::Owned(message) }
}

/// The text of a refusal of the core as a Nakama client reads it, before [`nakama_error`] puts
/// the operation's prefix (or Nakama's own text) on it: the core's text, except for a status
/// that is not display text, which is refused in Nakama's words for its status checks (as in
/// `Status must be 2048 characters or less`). Nakama accepts such a status; huddle refuses it so
/// the follow reply bound holds in JSON (`docs/nakama-compat.md`).
pub fn core_refusal_text(error: &CoreError) -> String {
    match error {
        CoreError::StatusControlCharacter { character, byte } => {
            format!("Status must not contain control characters: U+{:04X} at byte {byte}", u32::from(*character))
        }
        other => other.to_string(),
    }
}

/// A name in a decode error: `message.field` (`party_create.max_size`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FieldName {
    pub message: &'static str,
    pub field: &'static str,
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.message, self.field)
    }
}

/// Why a frame on a JSON connection is not a request. Every variant becomes an `error` envelope
/// (with the frame's `cid` when it could be read) and changes nothing; the connection stays open.
/// Variants that mirror one of Nakama's validation errors display Nakama's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NakamaDecodeError {
    /// A binary WebSocket frame: JSON connections speak text frames only.
    BinaryFrame,
    /// The frame is longer than the decoder accepts.
    TooLarge { len: usize, max: usize },
    /// Objects and arrays nest deeper than any request needs.
    TooDeep { max: usize },
    /// Not JSON (serde_json's description of where and why), or not UTF-8.
    InvalidJson(String),
    /// The frame (or a message body) is JSON but not an object.
    NotAnObject,
    /// `cid` is not a string, or longer than any client's correlation id.
    InvalidCid,
    /// The envelope names no message (only a `cid`, or nothing).
    MissingMessage,
    /// The envelope names more than one message (`rtapi.Envelope.message` is a oneof).
    MultipleMessages,
    /// The envelope key is not one of Nakama's messages. The name is cut to a few dozen bytes.
    UnknownMessage(String),
    /// A Nakama request huddle does not serve (matches, chat, matchmaker, RPC, …).
    Unsupported(&'static str),
    /// A message only the server sends.
    NotARequest(&'static str),
    /// A field has the wrong JSON type.
    WrongType { field: FieldName, expected: &'static str },
    /// An integer field holds a number that is not an integer of the field's range.
    NumberOutOfRange { field: FieldName },
    /// A bytes field is not base64.
    InvalidBase64 { field: FieldName },
    /// A string is longer than any valid value of its field.
    TooLong { field: FieldName, len: usize, max: usize },
    /// A list is longer than the decoder accepts; refused before the rest is kept.
    TooMany { field: FieldName, len: usize, max: usize },
    /// Nakama: "Invalid party ID".
    InvalidPartyId,
    /// Nakama: "Invalid presence" (a field missing or empty, or a session id that is not one of
    /// huddle's).
    InvalidPresence,
    /// Nakama: "Invalid party max size, must be 1-256" (with the configured bound).
    InvalidMaxSize { max: usize },
    /// Nakama: "party label too long", behind the operation's prefix.
    LabelTooLong { op: NakamaOp },
    /// Nakama: "Error updating party: party is hidden and label is not empty, invalid operation".
    HiddenWithLabel,
    /// Nakama: "Status must be 2048 characters or less" (with the configured bound).
    StatusTooLong { max: usize },
    /// Nakama: "Invalid user identifier".
    InvalidUserId,
    /// Nakama: "Invalid username".
    InvalidUsername,
}

impl NakamaDecodeError {
    /// The codec-neutral code, chosen as the FlatBuffers codec chooses for the same problem.
    pub fn code(&self) -> ErrorCode {
        match self {
            NakamaDecodeError::BinaryFrame
            | NakamaDecodeError::TooDeep { .. }
            | NakamaDecodeError::InvalidJson(_)
            | NakamaDecodeError::NotAnObject
            | NakamaDecodeError::InvalidCid
            | NakamaDecodeError::MultipleMessages => ErrorCode::MalformedEnvelope,
            NakamaDecodeError::MissingMessage
            | NakamaDecodeError::UnknownMessage(_)
            | NakamaDecodeError::Unsupported(_) => ErrorCode::UnknownMessage,
            NakamaDecodeError::NotARequest(_) => ErrorCode::NotARequest,
            NakamaDecodeError::WrongType { .. }
            | NakamaDecodeError::NumberOutOfRange { .. }
            | NakamaDecodeError::InvalidBase64 { .. }
            | NakamaDecodeError::TooLong { .. }
            | NakamaDecodeError::InvalidPartyId
            | NakamaDecodeError::InvalidPresence
            | NakamaDecodeError::InvalidMaxSize { .. }
            | NakamaDecodeError::LabelTooLong { .. }
            | NakamaDecodeError::HiddenWithLabel
            | NakamaDecodeError::InvalidUserId
            | NakamaDecodeError::InvalidUsername => ErrorCode::BadInput,
            NakamaDecodeError::TooLarge { .. }
            | NakamaDecodeError::TooMany { .. }
            | NakamaDecodeError::StatusTooLong { .. } => ErrorCode::LimitExceeded,
        }
    }
}

impl fmt::Display for NakamaDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NakamaDecodeError::BinaryFrame => {
                write!(f, "binary frames are not supported on a JSON connection; send text frames")
            }
            NakamaDecodeError::TooLarge { len, max } => write!(f, "frame is {len} bytes; at most {max} are accepted"),
            NakamaDecodeError::TooDeep { max } => {
                write!(f, "objects and arrays nest more than {max} levels deep")
            }
            NakamaDecodeError::InvalidJson(why) => write!(f, "frame is not valid JSON: {why}"),
            NakamaDecodeError::NotAnObject => write!(f, "frame is not a JSON object"),
            NakamaDecodeError::InvalidCid => {
                write!(f, "cid must be a string of at most {} bytes", super::decode::CID_BYTES_MAX)
            }
            NakamaDecodeError::MissingMessage => write!(f, "Missing message."),
            NakamaDecodeError::MultipleMessages => write!(f, "envelope carries more than one message"),
            NakamaDecodeError::UnknownMessage(_) => write!(f, "Unrecognized message."),
            // What Nakama answers for a message its server has disabled.
            NakamaDecodeError::Unsupported(_) => write!(f, "Requested resource was not found."),
            NakamaDecodeError::NotARequest(_) => write!(f, "Unrecognized message."),
            NakamaDecodeError::WrongType { field, expected } => write!(f, "{field} must be {expected}"),
            NakamaDecodeError::NumberOutOfRange { field } => {
                write!(f, "{field} is not an integer in the field's range")
            }
            NakamaDecodeError::InvalidBase64 { field } => write!(f, "{field} is not valid base64"),
            NakamaDecodeError::TooLong { field, len, max } => write!(f, "{field} is {len} bytes; at most {max}"),
            NakamaDecodeError::TooMany { field, len, max } => {
                write!(f, "{field} has {len} entries; at most {max} are accepted")
            }
            NakamaDecodeError::InvalidPartyId => write!(f, "Invalid party ID"),
            NakamaDecodeError::InvalidPresence => write!(f, "Invalid presence"),
            NakamaDecodeError::InvalidMaxSize { max } => write!(f, "Invalid party max size, must be 1-{max}"),
            NakamaDecodeError::LabelTooLong { op } => write!(f, "{}party label too long", op.error_prefix()),
            NakamaDecodeError::HiddenWithLabel => write!(
                f,
                "{}party is hidden and label is not empty, invalid operation",
                NakamaOp::PartyUpdate.error_prefix()
            ),
            NakamaDecodeError::StatusTooLong { max } => write!(f, "Status must be {max} characters or less"),
            NakamaDecodeError::InvalidUserId => write!(f, "Invalid user identifier"),
            NakamaDecodeError::InvalidUsername => write!(f, "Invalid username"),
        }
    }
}

impl std::error::Error for NakamaDecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_and_only_unknown_messages_are_unrecognized_payloads() {
        for &code in ErrorCode::ALL {
            let error = nakama_error(None, code, "why");
            assert_eq!(error.message, "why", "{code}: a final text passes unchanged");
            let expected = match code {
                ErrorCode::Unspecified => NakamaCode::RuntimeException,
                ErrorCode::UnknownMessage | ErrorCode::NotARequest | ErrorCode::TextFrameUnsupported => {
                    NakamaCode::UnrecognizedPayload
                }
                _ => NakamaCode::BadInput,
            };
            assert_eq!(error.code, expected, "{code}");
        }
    }

    #[test]
    fn party_refusals_read_as_nakamas_texts_behind_the_operations_prefix() {
        let cases = [
            // The recorded Nakama frame: promote after leaving the party.
            (NakamaOp::PartyPromote, ErrorCode::PartyNotMember, "Error promoting new party leader: party leader only"),
            (NakamaOp::PartyJoin, ErrorCode::PartyFull, "Error joining party: party full"),
            (NakamaOp::PartyJoin, ErrorCode::PartyNotFound, "Error joining party: party not found"),
            (
                NakamaOp::PartyJoin,
                ErrorCode::PartyAlreadyMember,
                "Error joining party: party join request already member",
            ),
            (
                NakamaOp::PartyJoin,
                ErrorCode::PartyJoinRequestDuplicate,
                "Error joining party: party join request duplicate",
            ),
            (NakamaOp::PartyJoin, ErrorCode::PartyJoinRequestsFull, "Error joining party: party join requests full"),
            (
                NakamaOp::PartyAccept,
                ErrorCode::PartyPresenceNotFound,
                "Error accepting party join request: party join request not found",
            ),
            (
                NakamaOp::PartyRemove,
                ErrorCode::PartyPresenceMismatch,
                "Error removing party member or join request: party member not found",
            ),
            (
                NakamaOp::PartyRemove,
                ErrorCode::PartyCannotRemoveSelf,
                "Error removing party member or join request: party cannot remove self",
            ),
            (NakamaOp::PartyDataSend, ErrorCode::PartyNotMember, "Error sending party data: party member not found"),
            (NakamaOp::PartyClose, ErrorCode::PartyNotLeader, "Error closing party: party leader only"),
            (
                NakamaOp::PartyJoinRequestList,
                ErrorCode::PartyNotMember,
                "Error listing party join requests: party leader only",
            ),
            (NakamaOp::PartyUpdate, ErrorCode::PartyNotLeader, "Error updating party: party leader only"),
            // Refusals Nakama does not have keep huddle's text behind the prefix.
            (NakamaOp::PartyJoin, ErrorCode::PartyTooManyParties, "Error joining party: huddle's words"),
            (NakamaOp::PartyCreate, ErrorCode::BadInput, "Error creating party: huddle's words"),
            (NakamaOp::StatusFollow, ErrorCode::FollowLimitReached, "huddle's words"),
        ];
        for (op, code, expected) in cases {
            let error = nakama_error(Some(op), code, "huddle's words");
            assert_eq!((error.code, error.message.as_ref()), (NakamaCode::BadInput, expected), "{op:?} {code}");
        }
    }

    #[test]
    fn decode_errors_that_mirror_nakamas_validation_read_as_nakamas_texts() {
        assert_eq!(NakamaDecodeError::InvalidPartyId.to_string(), "Invalid party ID");
        assert_eq!(NakamaDecodeError::InvalidPresence.to_string(), "Invalid presence");
        assert_eq!(NakamaDecodeError::InvalidMaxSize { max: 256 }.to_string(), "Invalid party max size, must be 1-256");
        assert_eq!(
            NakamaDecodeError::StatusTooLong { max: 2048 }.to_string(),
            "Status must be 2048 characters or less"
        );
        assert_eq!(
            NakamaDecodeError::LabelTooLong { op: NakamaOp::PartyCreate }.to_string(),
            "Error creating party: party label too long"
        );
        assert_eq!(
            NakamaDecodeError::HiddenWithLabel.to_string(),
            "Error updating party: party is hidden and label is not empty, invalid operation"
        );
        assert_eq!(NakamaDecodeError::MissingMessage.to_string(), "Missing message.");
        assert_eq!(NakamaDecodeError::UnknownMessage("x".into()).to_string(), "Unrecognized message.");
    }

    /// A status that is not display text is refused by the core (SPEC S-1) for both codecs; a
    /// Nakama client reads it in the words of Nakama's own status checks, any other refusal of the
    /// core in huddle's.
    #[test]
    fn a_status_control_character_reads_as_a_nakama_status_check() {
        let refusal = CoreError::StatusControlCharacter { character: '\u{1}', byte: 5 };
        let text = core_refusal_text(&refusal);
        let error = nakama_error(Some(NakamaOp::StatusUpdate), refusal.code(), &text);
        assert_eq!(error.code, NakamaCode::BadInput);
        assert_eq!(error.message, "Status must not contain control characters: U+0001 at byte 5");
        assert_eq!(core_refusal_text(&CoreError::PartyFull), CoreError::PartyFull.to_string());
    }

    #[test]
    fn op_names_round_trip() {
        for &op in NakamaOp::ALL {
            assert_eq!(NakamaOp::from_message_name(op.message_name()), Some(op));
        }
        assert_eq!(NakamaOp::from_message_name("party"), None);
    }
}
