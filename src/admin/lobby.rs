//! The lobby's admin routes (SPEC L-4, L-8): what a game backend writes into the lobby.
//!
//! - `PUT /v1/users/{user_id}/friends` `{friends: [user_id…]}` and `PUT /v1/users/{user_id}/blocks`
//!   `{blocks: [user_id…]}`: the user's whole list, replaced (idempotent; `[]` empties it).
//! - `PUT /v1/social` `{users: [{user_id, friends?, blocks?}…]}`: many users in one request, all
//!   or nothing (a list left out stays as it is), so a backend re-sends everything after it sees
//!   `/healthz`'s `instance_id` change (the table lives in memory).
//! - `PUT /v1/parties/{party_id}/attributes` `{attributes: {…}, timestamp}`: a JSON object
//!   stored compact (keys sorted, no whitespace) at a Unix-ms timestamp; one not newer than the
//!   stored one is 409 and changes nothing.
//!
//! Parsing and validation of the bodies happen here (400 naming the field); the rules (bounds,
//! self-references, timestamps) are the core's, reached as [`crate::core::AdminRequest`]s.

use super::body::{self, Fields};
use super::router::{Params, Request};
use super::{AdminCall, AdminError};
use crate::core::{PartyId, SocialList, SocialWrite, UnixMillis, UserId};
use crate::limits::Limits;
use serde::Serialize;
use serde_json::Value;

/// A lobby admin call, parsed and validated; the driver executes it through the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LobbyCall {
    /// One user's list (`…/friends`, `…/blocks`).
    SetList { user_id: UserId, list: SocialList, ids: Vec<UserId> },
    /// `PUT /v1/social`.
    SetSocial { writes: Vec<SocialWrite> },
    /// `PUT /v1/parties/{party_id}/attributes`.
    SetAttributes { party_id: PartyId, attributes: String, timestamp: UnixMillis },
}

pub(super) fn friends(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    list(params, request, SocialList::Friends)
}

pub(super) fn blocks(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    list(params, request, SocialList::Blocks)
}

fn list(params: &Params<'_>, request: &Request<'_>, list: SocialList) -> Result<AdminCall, AdminError> {
    let user_id = params.user_id()?;
    let mut fields = Fields::parse(request.body)?;
    let ids = user_ids(list.name(), fields.take(list.name()))?
        .ok_or_else(|| AdminError::BadRequest(format!("{}: required (an array of user ids)", list.name())))?;
    fields.finish()?;
    Ok(AdminCall::Lobby(LobbyCall::SetList { user_id, list, ids }))
}

pub(super) fn social(_: &Params<'_>, request: &Request<'_>, limits: &Limits) -> Result<AdminCall, AdminError> {
    let mut fields = Fields::parse(request.body)?;
    let users = match fields.take("users") {
        Some(Value::Array(users)) => users,
        Some(other) => return Err(expected("users", "an array of {user_id, friends?, blocks?}", &other)),
        None => return Err(AdminError::BadRequest("users: required".into())),
    };
    fields.finish()?;
    let users_max = limits.social_users_per_write_max;
    if users.len() > users_max {
        return Err(AdminError::BadRequest(format!(
            "users: {} entries, more than social_users_per_write_max {users_max}",
            users.len()
        )));
    }
    let mut writes = Vec::with_capacity(users.len());
    for (i, user) in users.into_iter().enumerate() {
        let Value::Object(map) = user else {
            return Err(expected(&format!("users[{i}]"), "an object", &user));
        };
        let mut fields = Fields::from_map(map);
        let name = |field: &str| format!("users[{i}].{field}");
        let user_id = match fields.take("user_id") {
            Some(Value::String(id)) => body::user_id(&name("user_id"), &id)?,
            Some(other) => return Err(expected(&name("user_id"), "a string", &other)),
            None => return Err(AdminError::BadRequest(format!("{}: required", name("user_id")))),
        };
        let friends = user_ids(&name("friends"), fields.take("friends"))?;
        let blocks = user_ids(&name("blocks"), fields.take("blocks"))?;
        fields.finish().map_err(|error| match error {
            AdminError::BadRequest(message) => AdminError::BadRequest(format!("users[{i}].{message}")),
            other => other,
        })?;
        writes.push(SocialWrite { user_id, friends, blocks });
    }
    Ok(AdminCall::Lobby(LobbyCall::SetSocial { writes }))
}

pub(super) fn attributes(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    let party_id = params.party_id()?;
    let mut fields = Fields::parse(request.body)?;
    let attributes = match fields.take("attributes") {
        // Compact and keys sorted (serde_json's map is ordered): one stored form for one object.
        Some(object @ Value::Object(_)) => super::json_text(&object),
        Some(other) => return Err(expected("attributes", "a JSON object", &other)),
        None => return Err(AdminError::BadRequest("attributes: required (a JSON object)".into())),
    };
    let timestamp = fields.integer("timestamp", 1..=u64::MAX)?;
    fields.finish()?;
    Ok(AdminCall::Lobby(LobbyCall::SetAttributes { party_id, attributes, timestamp: UnixMillis(timestamp) }))
}

/// A list of user ids, each as tokens carry them (`body::user_id`); absent (or null) is `None`.
fn user_ids(name: &str, value: Option<Value>) -> Result<Option<Vec<UserId>>, AdminError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(expected(name, "an array of user ids", &other)),
    };
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::String(id) => ids.push(body::user_id(&format!("{name}[{i}]"), &id)?),
            other => return Err(expected(&format!("{name}[{i}]"), "a string", &other)),
        }
    }
    Ok(Some(ids))
}

fn expected(name: &str, what: &str, got: &Value) -> AdminError {
    body::type_error(name, what, got)
}

/// `PUT /v1/users/{user_id}/friends` and `…/blocks` → 200: the list's length as stored (after
/// duplicates were dropped).
#[derive(Debug, Serialize)]
pub struct ListSet {
    pub user_id: String,
    pub list: &'static str,
    pub count: usize,
}

/// `PUT /v1/social` → 200: the users written, and the social table's size afterwards.
#[derive(Debug, Serialize)]
pub struct SocialSet {
    pub users_written: usize,
    pub users: usize,
    pub entries: usize,
}

/// `PUT /v1/parties/{party_id}/attributes` → 200.
#[derive(Debug, Serialize)]
pub struct AttributesSet {
    pub party_id: String,
    pub timestamp: u64,
    /// The party's version after the write (L-9).
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::super::router::route;
    use super::super::{AdminKey, Request as RouterRequest};
    use super::*;

    fn call(method: &str, path: &str, body: &str) -> Result<AdminCall, AdminError> {
        call_with(method, path, body, &Limits::default())
    }

    fn call_with(method: &str, path: &str, body: &str, limits: &Limits) -> Result<AdminCall, AdminError> {
        let request = RouterRequest {
            method,
            path,
            query: "",
            authorization: Some("Bearer k"),
            host: None,
            origin: None,
            body: body.as_bytes(),
        };
        route(&request, &AdminKey::new(b"k"), limits).result
    }

    #[test]
    fn a_bulk_write_names_at_most_social_users_per_write_max_users() {
        let limits = Limits { social_users_per_write_max: 2, ..Limits::default() };
        let two = r#"{"users":[{"user_id":"a","friends":[]},{"user_id":"b","blocks":[]}]}"#;
        assert!(matches!(
            call_with("PUT", "/v1/social", two, &limits),
            Ok(AdminCall::Lobby(LobbyCall::SetSocial { .. }))
        ));
        let three = r#"{"users":[{"user_id":"a"},{"user_id":"b"},{"user_id":"c"}]}"#;
        match call_with("PUT", "/v1/social", three, &limits) {
            Err(AdminError::BadRequest(message)) => {
                assert_eq!(message, "users: 3 entries, more than social_users_per_write_max 2")
            }
            other => panic!("expected 400, got {other:?}"),
        }
    }

    fn bad(method: &str, path: &str, body: &str) -> String {
        match call(method, path, body) {
            Err(AdminError::BadRequest(message)) => message,
            other => panic!("{path} {body}: expected 400, got {other:?}"),
        }
    }

    #[test]
    fn lists_bulk_writes_and_attributes_parse() {
        let ids = |names: &[&str]| names.iter().map(|n| UserId::new(n)).collect::<Vec<_>>();
        assert_eq!(
            call("PUT", "/v1/users/al%20ice/friends", r#"{"friends":["b","c"]}"#),
            Ok(AdminCall::Lobby(LobbyCall::SetList {
                user_id: UserId::new("al ice"),
                list: SocialList::Friends,
                ids: ids(&["b", "c"])
            }))
        );
        assert_eq!(
            call("PUT", "/v1/users/a/blocks", r#"{"blocks":[]}"#),
            Ok(AdminCall::Lobby(LobbyCall::SetList {
                user_id: UserId::new("a"),
                list: SocialList::Blocks,
                ids: vec![]
            }))
        );
        assert_eq!(
            call("PUT", "/v1/social", r#"{"users":[{"user_id":"a","friends":["b"]},{"user_id":"b","blocks":["c"]}]}"#),
            Ok(AdminCall::Lobby(LobbyCall::SetSocial {
                writes: vec![
                    SocialWrite { user_id: UserId::new("a"), friends: Some(ids(&["b"])), blocks: None },
                    SocialWrite { user_id: UserId::new("b"), friends: None, blocks: Some(ids(&["c"])) },
                ]
            }))
        );
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            call("PUT", &format!("/v1/parties/{id}/attributes"), r#"{"timestamp":5,"attributes":{"z":1, "a":[true]}}"#),
            Ok(AdminCall::Lobby(LobbyCall::SetAttributes {
                party_id: PartyId(0x0123456789abcdef0123456789abcdef),
                attributes: r#"{"a":[true],"z":1}"#.into(),
                timestamp: UnixMillis(5)
            })),
            "compact, keys sorted"
        );
        let nakama = "01234567-89ab-cdef-0123-456789abcdef.huddle";
        assert!(call("PUT", &format!("/v1/parties/{nakama}/attributes"), r#"{"timestamp":5,"attributes":{}}"#).is_ok());
    }

    #[test]
    fn bad_bodies_are_400_naming_the_field() {
        assert!(bad("PUT", "/v1/users/a/friends", "{}").starts_with("friends: required"));
        assert!(bad("PUT", "/v1/users/a/friends", r#"{"friends":"b"}"#).starts_with("friends: expected an array"));
        assert!(
            bad("PUT", "/v1/users/a/friends", r#"{"friends":["b",7]}"#).starts_with("friends[1]: expected a string")
        );
        assert!(bad("PUT", "/v1/users/a/friends", r#"{"friends":[""]}"#).starts_with("friends[0]: must be"));
        assert!(bad("PUT", "/v1/users/a/blocks", r#"{"friends":[]}"#).starts_with("blocks: required"));
        assert!(bad("PUT", "/v1/users/a/blocks", r#"{"blocks":[],"x":1}"#).starts_with("x: unknown field"));
        assert!(bad("PUT", "/v1/social", r#"{"users":{}}"#).starts_with("users: expected an array"));
        assert!(bad("PUT", "/v1/social", r#"{"users":[1]}"#).starts_with("users[0]: expected an object"));
        assert!(bad("PUT", "/v1/social", r#"{"users":[{"friends":[]}]}"#).starts_with("users[0].user_id: required"));
        assert!(
            bad("PUT", "/v1/social", r#"{"users":[{"user_id":"a","blocks":[5]}]}"#).starts_with("users[0].blocks[0]")
        );
        assert!(bad("PUT", "/v1/social", r#"{"users":[{"user_id":"a","frends":[]}]}"#)
            .starts_with("users[0].frends: unknown"));
        let path = "/v1/parties/0123456789abcdef0123456789abcdef/attributes";
        assert!(bad("PUT", path, r#"{"timestamp":1}"#).starts_with("attributes: required"));
        assert!(
            bad("PUT", path, r#"{"timestamp":1,"attributes":[1]}"#).starts_with("attributes: expected a JSON object")
        );
        assert!(bad("PUT", path, r#"{"attributes":{}}"#).starts_with("timestamp: required"));
        assert!(bad("PUT", path, r#"{"attributes":{},"timestamp":0}"#).starts_with("timestamp: expected"));
        assert!(
            bad("PUT", "/v1/parties/nope/attributes", r#"{"attributes":{},"timestamp":1}"#).starts_with("party_id:")
        );
    }
}
