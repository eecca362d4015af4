//! The route table: each row is a method, a path pattern (`{name}` captures one segment) and the
//! function that turns the request into an [`AdminCall`]. Adding a route is adding a row (and,
//! when it is a new kind of call, an arm where the driver executes it).
//!
//! Order of checks: the admin key first, on every path but [`PUBLIC_PATHS`], so a caller
//! without the key learns nothing about which routes exist; then the path (404), then the
//! method (405 with the path's methods); then the row's parser (400 naming the field).

use super::body::{self, Fields};
use super::{lobby, playground, AdminCall, AdminError, AdminKey};
use crate::core::UnixMillis;
use crate::net::http::{percent_decode, PlusSign};

/// Paths served without the admin key: metrics and health for scrapers and probes (O-2), and
/// the playground's page and token mint (K-3), which answer 404 unless the server runs with
/// `--playground` (see `playground.rs` for how the mint is confined to loopback).
pub const PUBLIC_PATHS: &[&str] = &["/metrics", "/healthz", "/playground", "/playground/token"];

/// Captures one pattern may have.
const PARAMS_MAX: usize = 4;

pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    parse: fn(&Params<'_>, &Request<'_>) -> Result<AdminCall, AdminError>,
}

/// Every route of the admin API.
pub const ROUTES: &[Route] = &[
    Route { method: "GET", pattern: "/metrics", parse: |_, _| Ok(AdminCall::Metrics) },
    Route { method: "GET", pattern: "/healthz", parse: |_, _| Ok(AdminCall::Health) },
    Route { method: "GET", pattern: "/playground", parse: playground::page_call },
    Route { method: "POST", pattern: "/playground/token", parse: playground::token_call },
    Route { method: "POST", pattern: "/v1/tokens", parse: mint_token },
    Route { method: "DELETE", pattern: "/v1/users/{user_id}/sessions", parse: disconnect_user },
    Route { method: "PUT", pattern: "/v1/users/{user_id}/ban", parse: ban },
    Route { method: "DELETE", pattern: "/v1/users/{user_id}/ban", parse: unban },
    // SPEC L-4, L-8: what a game backend writes into the lobby (`lobby.rs`).
    Route { method: "PUT", pattern: "/v1/users/{user_id}/friends", parse: lobby::friends },
    Route { method: "PUT", pattern: "/v1/users/{user_id}/blocks", parse: lobby::blocks },
    Route { method: "PUT", pattern: "/v1/social", parse: lobby::social },
    Route { method: "PUT", pattern: "/v1/parties/{party_id}/attributes", parse: lobby::attributes },
];

const _: () = assert!(ROUTES.len() < u8::MAX as usize, "route ids fit a byte");

/// A row of [`ROUTES`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId(pub u8);

impl RouteId {
    pub fn route(self) -> &'static Route {
        &ROUTES[usize::from(self.0)]
    }
}

/// One request as the router needs it.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    /// `Host` and `Origin`: the playground's mint checks that both name this machine.
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub body: &'a [u8],
}

/// The router's answer: the row it matched (for the metrics' route label) and the call or why
/// there is none.
#[derive(Debug)]
pub struct Routed {
    pub route: Option<RouteId>,
    pub result: Result<AdminCall, AdminError>,
}

/// Routes `request`, checking `key` first unless the path is public.
pub fn route(request: &Request<'_>, key: &AdminKey) -> Routed {
    let public = PUBLIC_PATHS.contains(&request.path);
    let mut path_matched = false;
    let mut found = None;
    for (index, row) in ROUTES.iter().enumerate() {
        if let Some(params) = Params::capture(row.pattern, request.path) {
            path_matched = true;
            if row.method == request.method {
                found = Some((RouteId(index as u8), params));
                break;
            }
        }
    }
    let route = found.as_ref().map(|(id, _)| *id);
    if !public && !key.accepts(request.authorization) {
        return Routed { route, result: Err(AdminError::Unauthorized) };
    }
    let result = match found {
        Some((id, params)) => (id.route().parse)(&params, request),
        None if path_matched => Err(AdminError::MethodNotAllowed { allow: allowed_methods(request.path) }),
        None => Err(AdminError::NotFound),
    };
    Routed { route, result }
}

/// The methods of every row whose pattern matches `path`, for `Allow`.
fn allowed_methods(path: &str) -> String {
    let methods: Vec<&str> =
        ROUTES.iter().filter(|row| Params::capture(row.pattern, path).is_some()).map(|row| row.method).collect();
    methods.join(", ")
}

/// The segments a pattern captured, still percent-encoded.
pub struct Params<'p> {
    captured: [(&'static str, &'p str); PARAMS_MAX],
    len: usize,
}

impl<'p> Params<'p> {
    /// Matches `path` against `pattern` segment by segment; `None` when it does not match.
    fn capture(pattern: &'static str, path: &'p str) -> Option<Params<'p>> {
        let mut params = Params { captured: [("", ""); PARAMS_MAX], len: 0 };
        let mut pattern_segments = pattern.split('/');
        let mut path_segments = path.split('/');
        loop {
            match (pattern_segments.next(), path_segments.next()) {
                (None, None) => return Some(params),
                (Some(want), Some(got)) => {
                    if let Some(name) = want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                        if got.is_empty() || params.len == PARAMS_MAX {
                            return None;
                        }
                        params.captured[params.len] = (name, got);
                        params.len += 1;
                    } else if want != got {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// The decoded segment captured as `{name}`.
    fn get(&self, name: &str) -> Result<String, AdminError> {
        let raw = self.captured[..self.len].iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        // Invariant: parsers only ask for names their own pattern captures.
        let raw = raw.unwrap_or_default();
        percent_decode(raw, PlusSign::Literal)
            .ok_or_else(|| AdminError::BadRequest(format!("{name}: not valid percent-encoded UTF-8")))
    }

    pub(super) fn user_id(&self) -> Result<crate::core::UserId, AdminError> {
        body::user_id("user_id", &self.get("user_id")?)
    }

    /// A party id in huddle's 32-hex form or Nakama's (`<uuid>.<node>`), as every id input takes.
    pub(super) fn party_id(&self) -> Result<crate::core::PartyId, AdminError> {
        let text = self.get("party_id")?;
        crate::wire::nakama::parse_party_id(&text).ok_or_else(|| {
            AdminError::BadRequest("party_id: not a party id (32 hex digits, or Nakama's <uuid>.<node>)".into())
        })
    }
}

fn mint_token(_: &Params<'_>, request: &Request<'_>) -> Result<AdminCall, AdminError> {
    let body::TokenRequest { user_id, username, expires_in_s } = body::token_request(request.body)?;
    Ok(AdminCall::MintToken { user_id, username, expires_in_s })
}

fn disconnect_user(params: &Params<'_>, _: &Request<'_>) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::DisconnectUser { user_id: params.user_id()? })
}

fn ban(params: &Params<'_>, request: &Request<'_>) -> Result<AdminCall, AdminError> {
    let user_id = params.user_id()?;
    let mut fields = Fields::parse(request.body)?;
    let until = fields.integer("until", 1..=u64::MAX)?;
    fields.finish()?;
    Ok(AdminCall::Ban { user_id, until: UnixMillis(until) })
}

fn unban(params: &Params<'_>, _: &Request<'_>) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::Unban { user_id: params.user_id()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::UserId;

    const KEY: &str = "Bearer k";

    fn call(method: &str, target: &str, authorization: Option<&str>, body: &str) -> Routed {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let request = Request { method, path, query, authorization, host: None, origin: None, body: body.as_bytes() };
        route(&request, &AdminKey::new(b"k"))
    }

    #[test]
    fn every_row_is_reachable_and_no_two_rows_share_method_and_pattern() {
        for (index, row) in ROUTES.iter().enumerate() {
            let path = row.pattern.replace("{user_id}", "u").replace("{party_id}", "0123456789abcdef0123456789abcdef");
            let routed = call(row.method, &path, Some(KEY), r#"{"user_id":"u","until":99}"#);
            assert_eq!(routed.route, Some(RouteId(index as u8)), "{} {}", row.method, row.pattern);
            for other in &ROUTES[..index] {
                assert!(!(other.method == row.method && other.pattern == row.pattern), "{} twice", row.pattern);
            }
        }
    }

    #[test]
    fn the_key_is_checked_before_routing_except_on_public_paths() {
        for (authorization, expected) in
            [(None, AdminError::Unauthorized), (Some("Bearer nope"), AdminError::Unauthorized)]
        {
            assert_eq!(call("POST", "/v1/tokens", authorization, "{}").result, Err(expected.clone()));
            assert_eq!(call("GET", "/no/such/path", authorization, "").result, Err(expected.clone()), "no 404 leak");
            assert_eq!(call("GET", "/v1/tokens", authorization, "").result, Err(expected), "no 405 leak");
        }
        assert_eq!(call("GET", "/metrics", None, "").result, Ok(AdminCall::Metrics));
        assert_eq!(call("GET", "/healthz", Some("Bearer nope"), "").result, Ok(AdminCall::Health));
        assert_eq!(call("GET", "/playground", None, "").result, Ok(AdminCall::Playground { host: None }));
        assert!(matches!(call("POST", "/playground/token", None, "").result, Ok(AdminCall::PlaygroundToken(_))));
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405_with_the_allowed_ones() {
        assert_eq!(call("GET", "/v1/nothing", Some(KEY), "").result, Err(AdminError::NotFound));
        assert_eq!(call("GET", "/v1/users//ban", Some(KEY), "").result, Err(AdminError::NotFound), "empty segment");
        assert_eq!(
            call("POST", "/v1/users/u/ban", Some(KEY), "").result,
            Err(AdminError::MethodNotAllowed { allow: "PUT, DELETE".into() })
        );
        assert_eq!(
            call("HEAD", "/metrics", None, "").result,
            Err(AdminError::MethodNotAllowed { allow: "GET".into() })
        );
    }

    #[test]
    fn calls_carry_their_decoded_and_validated_fields() {
        assert_eq!(
            call("POST", "/v1/tokens", Some(KEY), r#"{"user_id":"alice","username":"Alice","expires_in":60}"#).result,
            Ok(AdminCall::MintToken { user_id: "alice".into(), username: "Alice".into(), expires_in_s: 60 })
        );
        assert_eq!(
            call("POST", "/v1/tokens", Some(KEY), r#"{"user_id":"bob"}"#).result,
            Ok(AdminCall::MintToken { user_id: "bob".into(), username: "bob".into(), expires_in_s: 86_400 })
        );
        assert_eq!(
            call("DELETE", "/v1/users/a%20b+c/sessions", Some(KEY), "").result,
            Ok(AdminCall::DisconnectUser { user_id: UserId::new("a b+c") }),
            "path segments are percent-decoded; + stays a plus"
        );
        assert_eq!(
            call("PUT", "/v1/users/eve/ban", Some(KEY), r#"{"until":1700000000000}"#).result,
            Ok(AdminCall::Ban { user_id: UserId::new("eve"), until: UnixMillis(1_700_000_000_000) })
        );
    }

    #[test]
    fn bad_fields_are_400_naming_the_field() {
        let bad = |method, target, body: &str| match call(method, target, Some(KEY), body).result {
            Err(AdminError::BadRequest(message)) => message,
            other => panic!("{method} {target} {body}: expected 400, got {other:?}"),
        };
        assert!(bad("POST", "/v1/tokens", "{}").starts_with("user_id: required"));
        assert!(bad("POST", "/v1/tokens", r#"{"user_id":""}"#).starts_with("user_id: must be"));
        assert!(bad("POST", "/v1/tokens", r#"{"user_id":"a","expires_in":0}"#).starts_with("expires_in: expected"));
        assert!(bad("POST", "/v1/tokens", r#"{"user_id":"a","expires":5}"#).starts_with("expires: unknown field"));
        assert!(bad("POST", "/v1/tokens", r#"{"user_id":"a""#).starts_with("body: not valid JSON"));
        assert!(bad("PUT", "/v1/users/eve/ban", r#"{"until":"soon"}"#).starts_with("until: expected an integer"));
        assert!(bad("PUT", "/v1/users/eve/ban", "").starts_with("until: required"));
        assert!(bad("DELETE", "/v1/users/%ff/ban", "").starts_with("user_id: not valid percent-encoded"));
        assert!(bad("DELETE", "/v1/users/a%0Ab/ban", "").starts_with("user_id: must be"));
    }
}
