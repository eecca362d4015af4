//! The WebSocket upgrade of the game listener (RFC 6455 §4.2), as a pure function of a parsed
//! request head: authentication (SPEC C-2) happens here, before any session exists. The head is
//! read by the shared bounded reader (`net::http`), so the byte limit, the deadline and the
//! token check stay in the driver's hands and no callback state needs sharing.

use super::http::{self, Head, HeadError, Status};
use crate::auth::{self, Claims, TokenError, TokenKey};
use crate::core::ConnectOptions;
use crate::wire::CodecKind;

/// The only path that upgrades.
pub const WS_PATH: &str = "/ws";

/// What to do with a complete request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a whole request yet: read more (the caller enforces the deadline).
    Incomplete,
    /// Upgrade: send `response`, start WebSocket framing at byte `consumed`, speak `codec`.
    Accept { response: Vec<u8>, consumed: usize, claims: Claims, options: ConnectOptions, codec: CodecKind },
    /// Refuse: send `response`, then close.
    Reject { response: Vec<u8>, reason: Rejection },
}

/// Why an upgrade was refused; the status it maps to is in [`Rejection::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    BadRequest(&'static str),
    NotFound,
    MethodNotAllowed,
    UnsupportedVersion,
    Unauthorized(TokenError),
    /// The token is good, but its user is banned (admin API, SPEC O-1).
    Banned,
    /// The user already has `sessions_per_user_max` sessions (SPEC C-2a).
    TooManySessions {
        sessions_per_user_max: usize,
    },
}

impl Rejection {
    pub fn status(&self) -> (u16, &'static str) {
        let Status(code, reason) = self.http_status();
        (code, reason)
    }

    fn http_status(&self) -> Status {
        match self {
            Rejection::TooLarge => Status::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::BadRequest(_) => Status::BAD_REQUEST,
            Rejection::NotFound => Status::NOT_FOUND,
            Rejection::MethodNotAllowed => Status::METHOD_NOT_ALLOWED,
            Rejection::UnsupportedVersion => Status::UPGRADE_REQUIRED,
            Rejection::Unauthorized(_) => Status::UNAUTHORIZED,
            Rejection::Banned => Status::FORBIDDEN,
            Rejection::TooManySessions { .. } => Status::TOO_MANY_REQUESTS,
        }
    }
}

impl From<HeadError> for Rejection {
    fn from(error: HeadError) -> Rejection {
        match error {
            HeadError::TooLarge => Rejection::TooLarge,
            HeadError::Malformed => Rejection::BadRequest("not an HTTP/1.1 request"),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::TooLarge => write!(f, "upgrade request too large"),
            Rejection::BadRequest(why) => write!(f, "bad upgrade request: {why}"),
            Rejection::NotFound => write!(f, "only {WS_PATH} upgrades to WebSocket"),
            Rejection::MethodNotAllowed => write!(f, "upgrade must use GET"),
            Rejection::UnsupportedVersion => write!(f, "only WebSocket version 13 is supported"),
            Rejection::Unauthorized(e) => write!(f, "unauthorized: {e}"),
            Rejection::Banned => write!(f, "this user is banned"),
            Rejection::TooManySessions { sessions_per_user_max } => {
                write!(f, "too many sessions: this user already has sessions_per_user_max {sessions_per_user_max}")
            }
        }
    }
}

/// Parses `received` (everything read so far) and decides. `bytes_max` is the handshake limit;
/// `now_unix_s` is the caller's clock for token expiry. The driver parses with its own reader and
/// calls [`upgrade`]; this whole-buffer form serves tests and tools.
pub fn evaluate(received: &[u8], bytes_max: usize, key: &TokenKey, now_unix_s: u64) -> Outcome {
    match http::parse_head(received, bytes_max) {
        Ok(Some(head)) => upgrade(&head, key, now_unix_s),
        Ok(None) => Outcome::Incomplete,
        Err(error) => reject(error.into()),
    }
}

/// Decides on a complete head: a 101 with the session's claims, or a refusal to send.
pub fn upgrade(head: &Head<'_>, key: &TokenKey, now_unix_s: u64) -> Outcome {
    match check(head, key, now_unix_s) {
        Ok((claims, options, codec, accept_key)) => {
            let headers =
                format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n");
            let response = http::response(Status::SWITCHING_PROTOCOLS, &headers, None);
            Outcome::Accept { response, consumed: head.len, claims, options, codec }
        }
        Err(rejection) => reject(rejection),
    }
}

type Accepted = (Claims, ConnectOptions, CodecKind, String);

fn check(head: &Head<'_>, key: &TokenKey, now_unix_s: u64) -> Result<Accepted, Rejection> {
    if head.method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    if head.path != WS_PATH {
        return Err(Rejection::NotFound);
    }
    if !head.header_has_token("upgrade", "websocket") {
        return Err(Rejection::BadRequest("Upgrade: websocket header missing"));
    }
    if !head.header_has_token("connection", "upgrade") {
        return Err(Rejection::BadRequest("Connection: Upgrade header missing"));
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Rejection::UnsupportedVersion);
    }
    let ws_key = head.header("sec-websocket-key").map(str::trim).filter(|k| !k.is_empty());
    let Some(ws_key) = ws_key else {
        return Err(Rejection::BadRequest("Sec-WebSocket-Key header missing"));
    };

    let mut token = None;
    let mut options = ConnectOptions::default();
    let mut format = None;
    let mut lang = false;
    for pair in head.query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "token" => {
                token = Some(
                    http::percent_decode(value, http::PlusSign::Space)
                        .ok_or(Rejection::BadRequest("token is not valid percent-encoding"))?,
                )
            }
            "status" => options.status_visible = matches!(value, "true" | "1"),
            "format" => format = Some(value),
            "lang" => lang = true,
            "snapshots" => options.snapshots = matches!(value, "true" | "1"),
            _ => {}
        }
    }
    if token.is_none() {
        // The auth scheme is case-insensitive (RFC 9110 §11.1).
        let authorization = head.header("authorization").map(str::trim).unwrap_or("");
        if let Some((scheme, bearer)) = authorization.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                token = Some(bearer.trim().to_owned());
            }
        }
    }
    let token = token.ok_or(Rejection::Unauthorized(TokenError::Missing))?;
    let claims = auth::verify(&token, key, now_unix_s).map_err(Rejection::Unauthorized)?;
    let codec = codec_for(format, lang);
    Ok((claims, options, codec, tungstenite::handshake::derive_accept_key(ws_key.as_bytes())))
}

/// SPEC K-1: Nakama's JSON when the query says `format=json`, or names `lang` without a
/// `format` (every Nakama SDK sends `lang` and leaves `format` to Nakama's default, JSON);
/// huddle's FlatBuffers otherwise.
fn codec_for(format: Option<&str>, lang: bool) -> CodecKind {
    match format {
        Some("json") => CodecKind::NakamaJson,
        None if lang => CodecKind::NakamaJson,
        _ => CodecKind::FlatBuffers,
    }
}

/// The refusal response for `reason`: its status, a one-line text body, and `Connection: close`.
pub fn reject(reason: Rejection) -> Outcome {
    let body = format!("{reason}\n");
    let extra = if reason == Rejection::UnsupportedVersion { "Sec-WebSocket-Version: 13\r\n" } else { "" };
    let headers = format!("{extra}Connection: close\r\n");
    let response = http::response(reason.http_status(), &headers, Some(("text/plain; charset=utf-8", body.as_bytes())));
    Outcome::Reject { response, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new("k")
    }

    fn token() -> String {
        auth::mint(&Claims { user_id: "u1".into(), username: "Alice".into(), expires_at_unix_s: 1_000 }, &key())
    }

    fn upgrade(target: &str, extra: &str) -> Vec<u8> {
        format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn rejection(outcome: Outcome) -> Rejection {
        match outcome {
            Outcome::Reject { reason, response } => {
                let status = reason.status().0.to_string();
                assert!(String::from_utf8_lossy(&response).starts_with(&format!("HTTP/1.1 {status} ")));
                reason
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn valid_upgrade_with_query_token_is_accepted_with_rfc_accept_key() {
        let mut request = upgrade(&format!("/ws?status=true&token={}&snapshots=1", token()), "");
        let head_len = request.len();
        request.extend_from_slice(b"\x82\x80leftover");
        let Outcome::Accept { response, consumed, claims, options, codec } = evaluate(&request, 8192, &key(), 10)
        else {
            panic!("not accepted");
        };
        assert_eq!(consumed, head_len, "bytes after the request belong to the WebSocket stream");
        assert_eq!(claims.user_id, "u1");
        assert!(options.status_visible);
        assert_eq!(codec, CodecKind::FlatBuffers);
        assert!(options.snapshots, "?snapshots=1 asks for L-9 snapshot events");
        // RFC 6455's own example key and accept value.
        assert!(String::from_utf8(response).unwrap().contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn the_query_chooses_the_codec_as_k1_says() {
        let t = token();
        let codec = |query: &str| match evaluate(&upgrade(&format!("/ws?{query}&token={t}"), ""), 8192, &key(), 10) {
            Outcome::Accept { codec, .. } => codec,
            other => panic!("{query}: not accepted: {other:?}"),
        };
        // What every Nakama SDK sends: `lang`, no `format`.
        assert_eq!(codec("lang=en&status=true"), CodecKind::NakamaJson);
        assert_eq!(codec("format=json"), CodecKind::NakamaJson);
        assert_eq!(codec("lang=en&format=json"), CodecKind::NakamaJson);
        assert_eq!(codec("status=true"), CodecKind::FlatBuffers);
        assert_eq!(codec("lang=en&format=flatbuffers"), CodecKind::FlatBuffers);
        // Nakama's protobuf is not spoken here; a named format other than JSON is huddle's own.
        assert_eq!(codec("lang=en&format=protobuf"), CodecKind::FlatBuffers);
        assert_eq!(codec("format=JSON"), CodecKind::FlatBuffers);
    }

    #[test]
    fn bearer_header_token_is_accepted() {
        let request = upgrade("/ws", &format!("Authorization: Bearer {}\r\n", token()));
        assert!(matches!(evaluate(&request, 8192, &key(), 10), Outcome::Accept { .. }));
    }

    #[test]
    fn missing_bad_and_expired_tokens_get_401() {
        assert_eq!(
            rejection(evaluate(&upgrade("/ws", ""), 8192, &key(), 10)),
            Rejection::Unauthorized(TokenError::Missing)
        );
        assert_eq!(
            rejection(evaluate(&upgrade("/ws?token=abc", ""), 8192, &key(), 10)),
            Rejection::Unauthorized(TokenError::Malformed("expected three dot-separated parts"))
        );
        let request = upgrade(&format!("/ws?token={}", token()), "");
        assert_eq!(rejection(evaluate(&request, 8192, &key(), 1_000)), Rejection::Unauthorized(TokenError::Expired));
        assert_eq!(
            rejection(evaluate(&request, 8192, &TokenKey::new("other"), 10)),
            Rejection::Unauthorized(TokenError::BadSignature)
        );
    }

    #[test]
    fn partial_request_waits_and_oversize_is_refused() {
        let request = upgrade(&format!("/ws?token={}", token()), "");
        assert_eq!(evaluate(&request[..request.len() - 3], 8192, &key(), 10), Outcome::Incomplete);
        assert_eq!(rejection(evaluate(&request[..request.len() - 3], 64, &key(), 10)), Rejection::TooLarge);
        assert_eq!(rejection(evaluate(&request, 64, &key(), 10)), Rejection::TooLarge);
    }

    #[test]
    fn wrong_path_method_version_and_garbage_are_refused() {
        let t = token();
        assert_eq!(
            rejection(evaluate(&upgrade(&format!("/other?token={t}"), ""), 8192, &key(), 10)),
            Rejection::NotFound
        );
        let post = String::from_utf8(upgrade(&format!("/ws?token={t}"), "")).unwrap().replacen("GET", "POST", 1);
        assert_eq!(rejection(evaluate(post.as_bytes(), 8192, &key(), 10)), Rejection::MethodNotAllowed);
        let v8 =
            String::from_utf8(upgrade(&format!("/ws?token={t}"), "")).unwrap().replace("Version: 13", "Version: 8");
        assert_eq!(rejection(evaluate(v8.as_bytes(), 8192, &key(), 10)), Rejection::UnsupportedVersion);
        assert!(matches!(
            rejection(evaluate(b"\x16\x03\x01 garbage\r\n\r\n", 8192, &key(), 10)),
            Rejection::BadRequest(_)
        ));
        let no_key =
            String::from_utf8(upgrade(&format!("/ws?token={t}"), "")).unwrap().replace("Sec-WebSocket-Key", "X-Other");
        assert!(matches!(rejection(evaluate(no_key.as_bytes(), 8192, &key(), 10)), Rejection::BadRequest(_)));
    }

    #[test]
    fn too_many_sessions_is_429_with_a_reason_naming_the_limit() {
        let Outcome::Reject { response, reason } = reject(Rejection::TooManySessions { sessions_per_user_max: 8 })
        else {
            panic!("a refusal");
        };
        assert_eq!(reason.status(), (429, "Too Many Requests"));
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{response}");
        assert!(response.ends_with("sessions_per_user_max 8\n"), "{response}");
    }
}
