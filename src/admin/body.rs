//! Request bodies: one JSON object, read field by field so every refusal names its field
//! (`expires_in: expected an integer in 1..=4294967295`). serde_json parses the object once
//! (the body is bounded by `admin_body_bytes_max`, nesting by serde_json's recursion limit); the
//! typed getters take fields out, and [`Fields::finish`] refuses any field no getter took, so a
//! misspelt field is an error rather than silently ignored.

use super::AdminError;
use crate::auth::CLAIM_BYTES_MAX;
use crate::core::{PartyId, SessionId, UserId};
use crate::wire::nakama::{parse_party_id, parse_session_id};
use serde_json::{Map, Value};

pub(crate) struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Parses `body` as a JSON object (an empty body is an empty object: every field absent).
    pub fn parse(body: &[u8]) -> Result<Fields, AdminError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields { map: Map::new() });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields { map }),
            Ok(_) => Err(AdminError::BadRequest("body: expected a JSON object".into())),
            Err(e) => Err(AdminError::BadRequest(format!("body: not valid JSON: {e}"))),
        }
    }

    /// A required string field.
    pub fn string(&mut self, name: &str) -> Result<String, AdminError> {
        self.opt_string(name)?.ok_or_else(|| AdminError::BadRequest(format!("{name}: required")))
    }

    pub fn opt_string(&mut self, name: &str) -> Result<Option<String>, AdminError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(type_error(name, "a string", &other)),
        }
    }

    /// A required non-negative integer field within `range`.
    pub fn integer(&mut self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, AdminError> {
        self.opt_integer(name, range)?.ok_or_else(|| AdminError::BadRequest(format!("{name}: required")))
    }

    pub fn opt_integer(&mut self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, AdminError> {
        let expected = || format!("an integer in {}..={}", range.start(), range.end());
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().filter(|v| range.contains(v)) {
                Some(value) => Ok(Some(value)),
                None => Err(AdminError::BadRequest(format!("{name}: expected {}, got {n}", expected()))),
            },
            Some(other) => Err(type_error(name, &expected(), &other)),
        }
    }

    /// Refuses fields no getter took.
    pub fn finish(self) -> Result<(), AdminError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => {
                let shown: String = name.chars().take(64).collect();
                Err(AdminError::BadRequest(format!("{shown}: unknown field")))
            }
        }
    }
}

fn type_error(name: &str, expected: &str, got: &Value) -> AdminError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    AdminError::BadRequest(format!("{name}: expected {expected}, got {kind}"))
}

/// A user id or username as tokens carry them: 1–128 bytes without control characters (the
/// same rule the game port applies to token claims).
pub(crate) fn claim(name: &str, value: &str) -> Result<(), AdminError> {
    if value.is_empty() || value.len() > CLAIM_BYTES_MAX || value.chars().any(char::is_control) {
        return Err(AdminError::BadRequest(format!(
            "{name}: must be 1..={CLAIM_BYTES_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn user_id(name: &str, value: &str) -> Result<UserId, AdminError> {
    claim(name, value)?;
    Ok(UserId::new(value))
}

/// `expires_in` when a token request names none: one day, as `huddle token` mints.
const TOKEN_EXPIRES_IN_DEFAULT_S: u64 = 86_400;

/// The body of a token request (`POST /v1/tokens`, and the playground's own mint):
/// `{user_id, username?, expires_in?}`, the username defaulting to the user id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub user_id: String,
    pub username: String,
    pub expires_in_s: u32,
}

pub(crate) fn token_request(body: &[u8]) -> Result<TokenRequest, AdminError> {
    let mut fields = Fields::parse(body)?;
    let user_id = fields.string("user_id")?;
    claim("user_id", &user_id)?;
    let username = fields.opt_string("username")?.unwrap_or_else(|| user_id.clone());
    claim("username", &username)?;
    let expires_in = fields.opt_integer("expires_in", 1..=u64::from(u32::MAX))?;
    fields.finish()?;
    // Invariant: the range above keeps the value within u32.
    let expires_in_s = u32::try_from(expires_in.unwrap_or(TOKEN_EXPIRES_IN_DEFAULT_S)).unwrap_or(u32::MAX);
    Ok(TokenRequest { user_id, username, expires_in_s })
}

/// A party id in any form huddle prints or takes elsewhere: its own 32 hex digits, or Nakama's
/// `<uuid>.<node>` (the one parser every codec uses).
pub(crate) fn party_id(name: &str, value: &str) -> Result<PartyId, AdminError> {
    parse_party_id(value).ok_or_else(|| {
        AdminError::BadRequest(format!("{name}: expected a party id (32 hex digits, or Nakama's <uuid>.<node>)"))
    })
}

/// A session id as huddle prints it in JSON (its 64-bit wire form in decimal) or as Nakama's
/// clients see it (a UUID).
pub(crate) fn session_id(name: &str, value: &str) -> Result<SessionId, AdminError> {
    let decimal = (!value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u64>().ok())
        .flatten();
    decimal.map(SessionId::from_wire).or_else(|| parse_session_id(value)).ok_or_else(|| {
        AdminError::BadRequest(format!("{name}: expected a session id (decimal, as huddle prints it, or a UUID)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::bad_request_message as message;

    #[test]
    fn fields_are_typed_and_every_refusal_names_its_field() {
        let mut fields = Fields::parse(br#"{"user_id":"alice","expires_in":60,"extra":true}"#).unwrap();
        assert_eq!(fields.string("user_id").unwrap(), "alice");
        assert_eq!(fields.opt_integer("expires_in", 1..=100).unwrap(), Some(60));
        assert_eq!(fields.opt_string("username").unwrap(), None);
        assert_eq!(message(fields.finish().unwrap_err()), "extra: unknown field");

        let mut fields = Fields::parse(br#"{"user_id":5,"expires_in":"60","n":-1}"#).unwrap();
        assert_eq!(message(fields.string("user_id").unwrap_err()), "user_id: expected a string, got a number");
        assert_eq!(
            message(fields.opt_integer("expires_in", 1..=9).unwrap_err()),
            "expires_in: expected an integer in 1..=9, got a string"
        );
        assert_eq!(message(fields.integer("n", 1..=9).unwrap_err()), "n: expected an integer in 1..=9, got -1");
        assert_eq!(message(fields.integer("missing", 1..=9).unwrap_err()), "missing: required");
    }

    #[test]
    fn bodies_that_are_not_one_json_object_are_refused() {
        assert!(message(Fields::parse(b"{").err().unwrap()).starts_with("body: not valid JSON"));
        assert_eq!(message(Fields::parse(b"[1]").err().unwrap()), "body: expected a JSON object");
        assert!(Fields::parse(b"  ").unwrap().finish().is_ok(), "an empty body has no fields");
    }

    #[test]
    fn ids_are_taken_in_every_form_huddle_prints() {
        let party = PartyId(0x07787d76_008c_4342_a3f3_936140c10fab);
        assert_eq!(party_id("party_id", &party.to_string()), Ok(party));
        assert_eq!(party_id("party_id", "07787d76-008c-4342-a3f3-936140c10fab.huddle"), Ok(party));
        assert!(message(party_id("party_id", "nope").unwrap_err()).starts_with("party_id: expected a party id"));
        let session = SessionId::new(7, 3);
        assert_eq!(session_id("session_id", &session.to_wire().to_string()), Ok(session));
        let nakama = crate::wire::nakama::NakamaSessionId(session).to_string();
        assert_eq!(session_id("session_id", &nakama), Ok(session));
        for bad in ["", "-1", "18446744073709551616", "x"] {
            assert!(message(session_id("session_id", bad).unwrap_err()).starts_with("session_id: expected"), "{bad}");
        }
    }

    #[test]
    fn claims_follow_the_token_rule() {
        assert!(claim("user_id", "alice").is_ok());
        assert!(claim("user_id", "").is_err());
        assert!(claim("user_id", &"x".repeat(CLAIM_BYTES_MAX + 1)).is_err());
        assert_eq!(
            message(claim("username", "a\nb").unwrap_err()),
            "username: must be 1..=128 bytes without control characters"
        );
    }
}
