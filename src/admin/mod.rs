//! The admin HTTP API (SPEC O-1, O-2) as pure functions: from a parsed request (method, path,
//! query, `Authorization`, body) to a typed, validated [`AdminCall`], or an [`AdminError`]
//! with its HTTP status, and the JSON the driver answers with. No socket, clock or core here:
//! `net::admin` reads requests off the admin listener's connections, calls [`route`], executes
//! the call (through the core for anything that changes sessions, so its closes and events reach
//! sessions in the normal order) and writes the response.
//!
//! Rooms: `router.rs` (the route table: method and path pattern → parser, the key check),
//! `body.rs` (JSON bodies read field by field, refusals naming the field; ids in every form),
//! `query.rs` (query parameters, the same way), `views.rs` (the JSON of parties and history,
//! and the history file's lines), `key.rs` (the admin key, compared in constant time),
//! `playground.rs` (the K-3 page and its loopback-only token mint).

mod body;
pub mod key;
pub mod lobby;
pub mod playground;
mod query;
mod router;
pub mod views;

pub use body::TokenRequest;
pub use key::AdminKey;
pub use playground::Playground;
pub use router::{route, Request, Route, RouteId, Routed, PUBLIC_PATHS, ROUTES};

use crate::core::{CoreError, HistoryQuery, PartyId, SessionId, UnixMillis, UserId};
use crate::net::http::Status;
use serde::Serialize;

/// What an admin request asks for, parsed and validated; the driver executes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCall {
    /// `GET /metrics` (O-2).
    Metrics,
    /// `GET /healthz` (O-2).
    Health,
    /// `POST /v1/tokens`: a session token signed with the server's token key.
    MintToken { user_id: String, username: String, expires_in_s: u32 },
    /// `DELETE /v1/users/{user_id}/sessions`.
    DisconnectUser { user_id: UserId },
    /// `PUT /v1/users/{user_id}/ban`.
    Ban { user_id: UserId, until: UnixMillis },
    /// `DELETE /v1/users/{user_id}/ban`.
    Unban { user_id: UserId },
    /// `GET /playground` (K-3): the page, for a browser that reached us as `host`.
    Playground { host: Option<String> },
    /// `POST /playground/token` (K-3): checked by [`Playground::admit_token`].
    PlaygroundToken(playground::TokenAttempt),
    /// SPEC L-4, L-8: friends, blocks and party attributes (`lobby.rs`).
    Lobby(lobby::LobbyCall),
    /// `GET /v1/parties?offset&limit`: parties in creation order.
    ListParties { offset: usize, limit: usize },
    /// `GET /v1/parties/{party_id}`.
    GetParty { party_id: PartyId },
    /// `GET /v1/users/{user_id}/parties`.
    UserParties { user_id: UserId },
    /// `DELETE /v1/parties/{party_id}`.
    CloseParty { party_id: PartyId },
    /// `DELETE /v1/parties/{party_id}/members/{user_id}[?session_id=]`.
    KickMember { party_id: PartyId, user_id: UserId, session: Option<SessionId> },
    /// `GET /v1/history?party_id&user_id&since&until&limit&cursor`.
    History { query: HistoryQuery, limit: usize },
}

/// Why an admin request failed. [`AdminError::status`] and [`AdminError::code`] map each to
/// its HTTP status and the stable `code` of the JSON body, in this one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    /// No `Authorization: Bearer` with the admin key.
    Unauthorized,
    /// No route has this path.
    NotFound,
    /// Refused whoever asks this way (the playground's mint from elsewhere than this machine);
    /// the message says why.
    Forbidden(String),
    /// The path names a party that does not exist (never did, or ended).
    PartyNotFound,
    /// The user (or the session named) is not a member of the party.
    MemberNotFound(String),
    /// The server's state refuses the request (the message says why; L-8: a timestamp not
    /// newer than the stored one), and nothing changed.
    Conflict(String),
    /// Routes have this path, with other methods (listed in `Allow`).
    MethodNotAllowed { allow: String },
    /// A bad body, field, path segment or header; the message names it.
    BadRequest(String),
    /// `Content-Length` over `admin_body_bytes_max`.
    BodyTooLarge { bytes_max: usize },
    /// A head over `admin_head_bytes_max` (or with too many headers).
    HeadTooLarge,
    /// Bytes that are not an HTTP/1.x request head.
    MalformedHead,
    /// A `Transfer-Encoding` body (only `Content-Length` bodies are read).
    TransferEncodingUnsupported,
    /// The request did not arrive within `admin_request_timeout_ms`.
    RequestTimeout,
    /// A bound of the server's tables (the message names the limit).
    LimitExceeded(String),
}

impl AdminError {
    pub fn status(&self) -> Status {
        match self {
            AdminError::Unauthorized => Status::UNAUTHORIZED,
            AdminError::Forbidden(_) => Status::FORBIDDEN,
            AdminError::NotFound | AdminError::PartyNotFound | AdminError::MemberNotFound(_) => Status::NOT_FOUND,
            AdminError::Conflict(_) => Status::CONFLICT,
            AdminError::MethodNotAllowed { .. } => Status::METHOD_NOT_ALLOWED,
            AdminError::BadRequest(_) | AdminError::MalformedHead => Status::BAD_REQUEST,
            AdminError::BodyTooLarge { .. } => Status::CONTENT_TOO_LARGE,
            AdminError::HeadTooLarge => Status::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AdminError::TransferEncodingUnsupported => Status::NOT_IMPLEMENTED,
            AdminError::RequestTimeout => Status::REQUEST_TIMEOUT,
            AdminError::LimitExceeded(_) => Status::INSUFFICIENT_STORAGE,
        }
    }

    /// The stable `code` of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotFound => "not_found",
            AdminError::PartyNotFound => "party_not_found",
            AdminError::MemberNotFound(_) => "member_not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::BadRequest(_) | AdminError::MalformedHead => "bad_request",
            AdminError::BodyTooLarge { .. } => "body_too_large",
            AdminError::HeadTooLarge => "head_too_large",
            AdminError::TransferEncodingUnsupported => "transfer_encoding_unsupported",
            AdminError::RequestTimeout => "request_timeout",
            AdminError::LimitExceeded(_) => "limit_exceeded",
        }
    }

    /// The request's end is unknown (or never came): answer, then close the connection rather
    /// than read what follows as the next request.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            AdminError::BodyTooLarge { .. }
                | AdminError::HeadTooLarge
                | AdminError::MalformedHead
                | AdminError::TransferEncodingUnsupported
                | AdminError::RequestTimeout
        )
    }

    /// The JSON body: `{"code": …, "message": …}`.
    pub fn to_json(&self) -> Vec<u8> {
        json(&ErrorBody { code: self.code(), message: self.to_string() })
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Unauthorized => write!(f, "missing or wrong admin key (Authorization: Bearer KEY)"),
            AdminError::Forbidden(message) => write!(f, "{message}"),
            AdminError::NotFound => write!(f, "no such route"),
            AdminError::PartyNotFound => write!(f, "no such party (it never existed, or it ended)"),
            AdminError::MemberNotFound(message) | AdminError::Conflict(message) => write!(f, "{message}"),
            AdminError::MethodNotAllowed { allow } => write!(f, "method not allowed here; allowed: {allow}"),
            AdminError::BadRequest(message) => write!(f, "{message}"),
            AdminError::BodyTooLarge { bytes_max } => {
                write!(f, "body: larger than admin_body_bytes_max {bytes_max}")
            }
            AdminError::HeadTooLarge => write!(f, "request head larger than admin_head_bytes_max"),
            AdminError::MalformedHead => write!(f, "not an HTTP/1.1 request"),
            AdminError::TransferEncodingUnsupported => {
                write!(f, "Transfer-Encoding is not supported; send a Content-Length body")
            }
            AdminError::RequestTimeout => write!(f, "request not complete within admin_request_timeout_ms"),
            AdminError::LimitExceeded(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for AdminError {}

/// The message of a 400, for the parsers' tests; anything else fails the test.
#[cfg(test)]
pub(crate) fn bad_request_message(error: AdminError) -> String {
    match error {
        AdminError::BadRequest(message) => message,
        other => panic!("expected a 400, got {other:?}"),
    }
}

impl From<CoreError> for AdminError {
    /// The core's refusals of admin requests, mapped once: bad fields are 400, what is not
    /// there 404, full tables 507, a state that refuses the change 409.
    fn from(error: CoreError) -> AdminError {
        match error {
            CoreError::LimitExceeded(message) => AdminError::LimitExceeded(message),
            CoreError::BadInput(message) => AdminError::BadRequest(message),
            // L-8: the stored attributes are newer; the message names both timestamps.
            CoreError::StaleAttributes { .. } => AdminError::Conflict(format!("timestamp: {error}")),
            CoreError::PartyNotFound => AdminError::PartyNotFound,
            CoreError::PartyPresenceNotFound | CoreError::PartyNotMember => {
                AdminError::MemberNotFound("no such member session in the party".into())
            }
            CoreError::SearchQueryInvalid(_)
            | CoreError::SearchCursorMismatch
            | CoreError::SearchCursorInvalid
            | CoreError::SearchQueryTooBroad { .. }
            | CoreError::SearchQueryTooCostly { .. }
            | CoreError::LabelTooComplex(_)
            | CoreError::PartyPresenceMismatch => AdminError::BadRequest(error.to_string()),
            CoreError::SearchBudgetExhausted { .. } | CoreError::SearchIndexFull { .. } => {
                AdminError::LimitExceeded(error.to_string())
            }
            CoreError::PartyFull
            | CoreError::PartyNotLeader
            | CoreError::PartyJoinRequestDuplicate
            | CoreError::PartyAlreadyMember
            | CoreError::PartyCannotRemoveSelf
            | CoreError::PartyJoinRequestsFull
            | CoreError::PartyTooManyParties(_)
            | CoreError::FollowLimitReached { .. }
            | CoreError::PartyAlreadyInParty
            | CoreError::PartyJoinNotAllowed
            | CoreError::PartyNotInvited
            | CoreError::InviteeIsSelf
            | CoreError::InviteeInvalid(_)
            | CoreError::InviteeInParty(_)
            | CoreError::InvitationNotFound
            | CoreError::PartyCodeNotFound
            | CoreError::InvitationCancelNotAllowed
            | CoreError::StatusControlCharacter { .. }
            | CoreError::PartyJoinBlocked
            | CoreError::PartyNotFriendOfLeader
            | CoreError::PartyNotFriendOfMembers
            | CoreError::InviteeBlocked(_)
            | CoreError::PartyChatDisabled
            | CoreError::PartyNameDenied => AdminError::Conflict(error.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

/// `POST /v1/tokens` → 200.
#[derive(Debug, Serialize)]
pub struct TokenMinted {
    pub token: String,
    pub user_id: String,
    pub username: String,
    /// The token's `exp`: Unix seconds.
    pub expires_at_s: u64,
}

/// `DELETE /v1/users/{user_id}/sessions` → 200.
#[derive(Debug, Serialize)]
pub struct SessionsClosed {
    pub user_id: String,
    pub sessions_closed: usize,
}

/// `PUT /v1/users/{user_id}/ban` → 200.
#[derive(Debug, Serialize)]
pub struct Banned {
    pub user_id: String,
    /// Unix ms the ban ends.
    pub until: u64,
    pub sessions_closed: usize,
}

/// `DELETE /v1/users/{user_id}/ban` → 200.
#[derive(Debug, Serialize)]
pub struct Unbanned {
    pub user_id: String,
    /// False when the user was not banned.
    pub lifted: bool,
}

/// `GET /healthz` → 200 (`ok`) or 503 (`draining`).
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    /// Random per start: a backend that sees it change knows the server restarted.
    pub instance_id: String,
    pub started_at_ms: u64,
}

/// Serializes a response body. Our own types always serialize; the fallback is never sent.
pub fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// A JSON value as compact text. A parsed `Value` always serializes; the fallback is never used.
pub fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}
