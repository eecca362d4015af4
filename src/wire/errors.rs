//! Decode errors, and the FlatBuffers codec's one mapping from the codec-neutral
//! [`ErrorCode`] to the schema's `fb::ErrorCode`.

use super::fb;
use crate::core::ErrorCode;

/// The schema's code for a codec-neutral one: the same number (the test below checks every code
/// against the generated enum, name and number).
pub(crate) fn fb_code(code: ErrorCode) -> fb::ErrorCode {
    fb::ErrorCode(code.number())
}

/// The codec-neutral code of a schema code; a number this build does not know (a newer server)
/// reads as `Unspecified`.
pub(crate) fn from_fb_code(code: fb::ErrorCode) -> ErrorCode {
    ErrorCode::from_number(code.0).unwrap_or(ErrorCode::Unspecified)
}

/// Why a client frame could not be turned into a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// FlatBuffers verification failed; the text is the verifier's.
    Malformed(String),
    /// A request other than party data sent with cid 0 (C-5, P-9).
    MissingCid,
    /// A union type this server does not know (0 = none given).
    UnknownMessage(u8),
    /// A message only the server sends.
    NotARequest(&'static str),
    /// A required field is absent.
    MissingField(&'static str),
    /// An enum field holds a value this build does not know (a `Toggle` of 3, say).
    UnknownEnumValue { field: &'static str, value: u32 },
    /// A text WebSocket frame (C-1: only binary FlatBuffers frames are requests).
    TextFrame,
    /// A list longer than the decoder accepts, refused before anything is allocated for it.
    TooMany { field: &'static str, len: usize, max: usize },
    /// A string longer than any valid value of its field (a presence's user id or username).
    TooLong { field: &'static str, len: usize, max: usize },
    /// A string longer than any configurable limit allows (a search query over
    /// `SEARCH_QUERY_BYTES_CEILING`), refused before it is copied. A limit, like the core's own
    /// check against the configured value, so both answer 300.
    TooLarge { field: &'static str, len: usize, max: usize },
    /// A search cursor longer than any the server issues: garbage, refused before it is copied.
    CursorTooLong { len: usize, max: usize },
    /// A frame on a Nakama JSON connection that is not a request (its own words and codes).
    Nakama(super::nakama::NakamaDecodeError),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Malformed(_) => ErrorCode::MalformedEnvelope,
            DecodeError::MissingCid => ErrorCode::MissingCid,
            DecodeError::UnknownMessage(_) => ErrorCode::UnknownMessage,
            DecodeError::NotARequest(_) => ErrorCode::NotARequest,
            DecodeError::MissingField(_) => ErrorCode::BadInput,
            DecodeError::UnknownEnumValue { .. } => ErrorCode::BadInput,
            DecodeError::TextFrame => ErrorCode::TextFrameUnsupported,
            DecodeError::TooMany { .. } => ErrorCode::LimitExceeded,
            DecodeError::TooLong { .. } => ErrorCode::BadInput,
            DecodeError::TooLarge { .. } => ErrorCode::LimitExceeded,
            DecodeError::CursorTooLong { .. } => ErrorCode::SearchCursorInvalid,
            DecodeError::Nakama(error) => error.code(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "frame is not a valid huddle Envelope: {why}"),
            DecodeError::MissingCid => {
                write!(f, "request has no cid (it must be non-zero; only party data may be sent without one)")
            }
            DecodeError::UnknownMessage(0) => write!(f, "envelope carries no message"),
            DecodeError::UnknownMessage(kind) => write!(f, "unknown message type {kind}"),
            DecodeError::NotARequest(name) => {
                write!(f, "{name} is sent by the server, not a request")
            }
            DecodeError::MissingField(field) => write!(f, "required field {field} is missing"),
            DecodeError::UnknownEnumValue { field, value } => write!(f, "{field} has the unknown value {value}"),
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
            DecodeError::Nakama(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_neutral_code_is_the_schema_code_of_the_same_name_and_number() {
        for code in ErrorCode::ALL {
            let wire = fb_code(*code);
            assert_eq!(wire.variant_name(), Some(format!("{code:?}").as_str()), "{code}");
            assert_eq!(from_fb_code(wire), *code);
        }
        for wire in fb::ErrorCode::ENUM_VALUES {
            assert!(
                *wire == fb::ErrorCode::Unspecified || from_fb_code(*wire) != ErrorCode::Unspecified,
                "{wire:?} has no neutral code"
            );
        }
    }
}
