//! Nakama's realtime JSON (SPEC K-1): the codec of connections whose upgrade asked for
//! `format=json`, or named `lang` without a `format` (what every Nakama SDK sends). It turns
//! Nakama's `rtapi.Envelope` frames into huddle's [`crate::core::Request`] and huddle's replies
//! and events into the frames Nakama's server would send, so the official Nakama client SDKs drive
//! huddle's parties and status unchanged. `docs/nakama-compat.md` maps every message and says
//! where huddle's behaviour differs from Nakama's.
//!
//! Pure and self-contained: no sockets, no core state. The driver reaches it through
//! [`NakamaJsonCodec`], the wire's [`crate::wire::Codec`] for JSON connections, which keeps each
//! connection's [`NakamaSession`] (its own presence, the request in flight) and follows this
//! contract:
//! - a text frame goes to [`decode_request`] with the connection's [`NakamaLimits`]. On success,
//!   hand [`NakamaRequest::request`] to the core under [`ReplyTo::core_cid`] and keep the
//!   [`ReplyTo`] until the core's one reply to it, which [`NakamaEncoder::reply`] turns into
//!   frames (zero for an ack without a cid, up to [`FRAMES_PER_OUTPUT_MAX`]). On failure, send
//!   [`NakamaEncoder::decode_failure`]'s frames; nothing reaches the core;
//! - a binary frame is answered with `decode_failure(&DecodeFailure::binary_frame())`;
//! - an event is encoded once with [`NakamaEncoder::event`] and its frames (possibly none) are
//!   queued for every JSON recipient;
//! - a refusal outside the core (the rate limit) is [`NakamaEncoder::refusal`].
//!
//! Every error goes through [`nakama_error`], the one mapping from huddle's codec-neutral
//! [`crate::core::ErrorCode`] to Nakama's `Error.Code` and Nakama's texts.

mod codec;
mod decode;
mod encode;
mod errors;
mod ids;
mod request;

pub use codec::{NakamaJsonCodec, NakamaSession};
pub use decode::{
    decode_request, CidText, DecodeFailure, NakamaLimits, NakamaRequest, ReplyTo, CID_BYTES_MAX, JSON_DEPTH_MAX,
};
pub use encode::{Frames, NakamaEncoder, FRAMES_PER_OUTPUT_MAX};
pub use errors::{nakama_error, FieldName, NakamaCode, NakamaDecodeError, NakamaError, NakamaOp};
pub use ids::{parse_party_id, parse_session_id, NakamaPartyId, NakamaSessionId, NODE, PARTY_ID_BYTES_MAX};
pub use request::request_frame;

#[cfg(test)]
mod tests;
