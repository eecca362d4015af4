//! The one place where errors of every layer become wire error codes.

use super::ErrorCode;
use crate::core::CoreError;
use crate::net::ratelimit::RequestRefusal;

/// Why a client frame could not be turned into a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// FlatBuffers verification failed; the text is the verifier's.
    Malformed(String),
    MissingCid,
    /// A union type this server does not know (0 = none given).
    UnknownMessage(u8),
    /// A message only the server sends.
    NotARequest(&'static str),
    /// A required field is absent.
    MissingField(&'static str),
    /// A text WebSocket frame (C-1: only binary FlatBuffers frames are requests).
    TextFrame,
    /// A list longer than the decoder accepts, refused before anything is allocated for it.
    TooMany {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A string longer than any valid value of its field (a presence's user id or username).
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A string longer than any configurable limit allows (a search query over
    /// `SEARCH_QUERY_BYTES_CEILING`), refused before it is copied. A limit, like the core's own
    /// check against the configured value, so both answer 300.
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A search cursor longer than any the server issues: garbage, refused before it is copied.
    CursorTooLong {
        len: usize,
        max: usize,
    },
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Malformed(_) => ErrorCode::MalformedEnvelope,
            DecodeError::MissingCid => ErrorCode::MissingCid,
            DecodeError::UnknownMessage(_) => ErrorCode::UnknownMessage,
            DecodeError::NotARequest(_) => ErrorCode::NotARequest,
            DecodeError::MissingField(_) => ErrorCode::BadInput,
            DecodeError::TextFrame => ErrorCode::TextFrameUnsupported,
            DecodeError::TooMany { .. } => ErrorCode::LimitExceeded,
            DecodeError::TooLong { .. } => ErrorCode::BadInput,
            DecodeError::TooLarge { .. } => ErrorCode::LimitExceeded,
            DecodeError::CursorTooLong { .. } => ErrorCode::SearchCursorInvalid,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "frame is not a valid huddle Envelope: {why}"),
            DecodeError::MissingCid => write!(f, "request has no cid (it must be non-zero)"),
            DecodeError::UnknownMessage(0) => write!(f, "envelope carries no message"),
            DecodeError::UnknownMessage(kind) => write!(f, "unknown message type {kind}"),
            DecodeError::NotARequest(name) => {
                write!(f, "{name} is sent by the server, not a request")
            }
            DecodeError::MissingField(field) => write!(f, "required field {field} is missing"),
            DecodeError::TextFrame => write!(f, "text frames are not supported; send binary FlatBuffers envelopes"),
            DecodeError::TooMany { field, len, max } => {
                write!(f, "{field} has {len} entries; at most {max} are accepted")
            }
            DecodeError::TooLong { field, len, max } => write!(f, "{field} is {len} bytes; at most {max}"),
            DecodeError::TooLarge { field, len, max } => {
                write!(f, "{field} is {len} bytes; at most {max} are accepted")
            }
            DecodeError::CursorTooLong { len, max } => {
                write!(
                    f,
                    "the cursor is {len} bytes, longer than any this server issues ({max}); it is not one of ours"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The wire code of a rule error.
pub(crate) fn core_error_code(error: &CoreError) -> ErrorCode {
    match error {
        CoreError::BadInput(_) => ErrorCode::BadInput,
        CoreError::LimitExceeded(_) => ErrorCode::LimitExceeded,
        CoreError::PartyNotFound => ErrorCode::PartyNotFound,
        CoreError::PartyFull => ErrorCode::PartyFull,
        CoreError::PartyNotLeader => ErrorCode::PartyNotLeader,
        CoreError::PartyNotMember => ErrorCode::PartyNotMember,
        CoreError::PartyJoinRequestDuplicate => ErrorCode::PartyJoinRequestDuplicate,
        CoreError::PartyAlreadyMember => ErrorCode::PartyAlreadyMember,
        CoreError::PartyCannotRemoveSelf => ErrorCode::PartyCannotRemoveSelf,
        CoreError::PartyPresenceNotFound => ErrorCode::PartyPresenceNotFound,
        CoreError::PartyJoinRequestsFull => ErrorCode::PartyJoinRequestsFull,
        CoreError::PartyTooManyParties(_) => ErrorCode::PartyTooManyParties,
        CoreError::PartyPresenceMismatch => ErrorCode::PartyPresenceMismatch,
        CoreError::FollowLimitReached { .. } => ErrorCode::FollowLimitReached,
        CoreError::SearchQueryInvalid(_) => ErrorCode::SearchQueryInvalid,
        CoreError::SearchCursorMismatch => ErrorCode::SearchCursorMismatch,
        CoreError::SearchCursorInvalid => ErrorCode::SearchCursorInvalid,
        CoreError::SearchQueryTooBroad { .. } => ErrorCode::SearchQueryTooBroad,
    }
}

/// The wire code of a request the driver refused.
pub(crate) fn refusal_code(refusal: &RequestRefusal) -> ErrorCode {
    match refusal {
        RequestRefusal::RateLimited { .. } => ErrorCode::LimitExceeded,
    }
}
