//! The route table: each row is a method, a path pattern (`{name}` captures one segment) and the
//! function that turns the request into an [`AdminCall`]. Adding a route is adding a row (and,
//! when it is a new kind of call, an arm where the driver executes it).
//!
//! Order of checks: the admin key first, on every path but [`PUBLIC_PATHS`], so a caller
//! without the key learns nothing about which routes exist; then the path (404), then the
//! method (405 with the path's methods); then the row's parser (400 naming the field or
//! parameter). Parsers check what they can without the core, the page limits included.

use super::body::{self, Fields};
use super::query::QueryParams;
use super::{playground, AdminCall, AdminError, AdminKey};
use crate::core::{HistoryQuery, UnixMillis};
use crate::limits::Limits;
use crate::net::http::{percent_decode, PlusSign};

/// Paths served without the admin key: metrics and health for scrapers and probes (O-2), and
/// the playground's page and token mint (K-3), which answer 404 unless the server runs with
/// `--playground` (see `playground.rs` for how the mint is confined to loopback).
pub const PUBLIC_PATHS: &[&str] = &["/metrics", "/healthz", "/playground", "/playground/token"];

/// Captures one pattern may have.
const PARAMS_MAX: usize = 4;

type Parse = fn(&Params<'_>, &Request<'_>, &Limits) -> Result<AdminCall, AdminError>;

pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    parse: Parse,
}

/// Every route of the admin API.
pub const ROUTES: &[Route] = &[
    Route { method: "GET", pattern: "/metrics", parse: |_, _, _| Ok(AdminCall::Metrics) },
    Route { method: "GET", pattern: "/healthz", parse: |_, _, _| Ok(AdminCall::Health) },
    Route { method: "GET", pattern: "/playground", parse: playground::page_call },
    Route { method: "POST", pattern: "/playground/token", parse: playground::token_call },
    Route { method: "POST", pattern: "/v1/tokens", parse: mint_token },
    Route { method: "DELETE", pattern: "/v1/users/{user_id}/sessions", parse: disconnect_user },
    Route { method: "PUT", pattern: "/v1/users/{user_id}/ban", parse: ban },
    Route { method: "DELETE", pattern: "/v1/users/{user_id}/ban", parse: unban },
    Route { method: "GET", pattern: "/v1/parties", parse: list_parties },
    Route { method: "GET", pattern: "/v1/parties/{party_id}", parse: get_party },
    Route { method: "DELETE", pattern: "/v1/parties/{party_id}", parse: close_party },
    Route { method: "DELETE", pattern: "/v1/parties/{party_id}/members/{user_id}", parse: kick_member },
    Route { method: "GET", pattern: "/v1/users/{user_id}/parties", parse: user_parties },
    Route { method: "GET", pattern: "/v1/history", parse: history },
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

/// Routes `request`, checking `key` first unless the path is public; `limits` bound what the
/// request may ask for (page sizes).
pub fn route(request: &Request<'_>, key: &AdminKey, limits: &Limits) -> Routed {
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
        Some((id, params)) => (id.route().parse)(&params, request, limits),
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

    fn user_id(&self) -> Result<crate::core::UserId, AdminError> {
        body::user_id("user_id", &self.get("user_id")?)
    }

    fn party_id(&self) -> Result<crate::core::PartyId, AdminError> {
        body::party_id("party_id", &self.get("party_id")?)
    }
}

/// The `limit` parameter of a list route: 1..=`admin_page_limit_max`, that when absent.
fn page_limit(query: &mut QueryParams, limits: &Limits) -> Result<usize, AdminError> {
    let max = limits.admin_page_limit_max as u64;
    // Invariant: the range keeps the value within a usize limit.
    Ok(query.opt_integer("limit", 1..=max)?.map_or(limits.admin_page_limit_max, |limit| limit as usize))
}

fn list_parties(_: &Params<'_>, request: &Request<'_>, limits: &Limits) -> Result<AdminCall, AdminError> {
    let mut query = QueryParams::parse(request.query, &["offset", "limit"])?;
    let offset = query.opt_integer("offset", 0..=u32::MAX.into())?.unwrap_or(0) as usize;
    let limit = page_limit(&mut query, limits)?;
    Ok(AdminCall::ListParties { offset, limit })
}

fn get_party(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    QueryParams::parse(request.query, &[])?;
    Ok(AdminCall::GetParty { party_id: params.party_id()? })
}

fn close_party(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    QueryParams::parse(request.query, &[])?;
    Ok(AdminCall::CloseParty { party_id: params.party_id()? })
}

fn kick_member(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    let mut query = QueryParams::parse(request.query, &["session_id"])?;
    let session = match query.opt_string("session_id") {
        Some(text) => Some(body::session_id("session_id", &text)?),
        None => None,
    };
    Ok(AdminCall::KickMember { party_id: params.party_id()?, user_id: params.user_id()?, session })
}

fn user_parties(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    QueryParams::parse(request.query, &[])?;
    Ok(AdminCall::UserParties { user_id: params.user_id()? })
}

fn history(_: &Params<'_>, request: &Request<'_>, limits: &Limits) -> Result<AdminCall, AdminError> {
    let mut query = QueryParams::parse(request.query, &["party_id", "user_id", "since", "until", "limit", "cursor"])?;
    let party_id = query.opt_string("party_id").map(|text| body::party_id("party_id", &text)).transpose()?;
    let user_id = query.opt_string("user_id").map(|text| body::user_id("user_id", &text)).transpose()?;
    let since = query.opt_integer("since", 0..=u64::MAX)?.map(UnixMillis);
    let until = query.opt_integer("until", 0..=u64::MAX)?.map(UnixMillis);
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(AdminError::BadRequest(format!("until: {} is before since {}", until.0, since.0)));
        }
    }
    let before_seq = query.opt_integer("cursor", 1..=u64::MAX)?;
    let limit = page_limit(&mut query, limits)?;
    Ok(AdminCall::History { query: HistoryQuery { party_id, user_id, since, until, before_seq }, limit })
}

fn mint_token(_: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    let body::TokenRequest { user_id, username, expires_in_s } = body::token_request(request.body)?;
    Ok(AdminCall::MintToken { user_id, username, expires_in_s })
}

fn disconnect_user(params: &Params<'_>, _: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::DisconnectUser { user_id: params.user_id()? })
}

fn ban(params: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    let user_id = params.user_id()?;
    let mut fields = Fields::parse(request.body)?;
    let until = fields.integer("until", 1..=u64::MAX)?;
    fields.finish()?;
    Ok(AdminCall::Ban { user_id, until: UnixMillis(until) })
}

fn unban(params: &Params<'_>, _: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::Unban { user_id: params.user_id()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::UserId;

    const KEY: &str = "Bearer k";
    const PARTY: &str = "000000000000000000000000000000ab";

    fn call(method: &str, target: &str, authorization: Option<&str>, body: &str) -> Routed {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let request = Request { method, path, query, authorization, host: None, origin: None, body: body.as_bytes() };
        route(&request, &AdminKey::new(b"k"), &Limits::default())
    }

    #[test]
    fn every_row_is_reachable_and_no_two_rows_share_method_and_pattern() {
        for (index, row) in ROUTES.iter().enumerate() {
            let path = row.pattern.replace("{user_id}", "u").replace("{party_id}", PARTY);
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
        assert!(bad("GET", "/v1/parties/xyz", "").starts_with("party_id: expected a party id"));
        assert!(bad("GET", "/v1/parties?limit=0", "").starts_with("limit: expected an integer in 1..=100"));
        assert!(bad("GET", "/v1/parties?limit=101", "").starts_with("limit: expected an integer in 1..=100"));
        assert!(bad("GET", "/v1/parties?offset=x", "").starts_with("offset: expected an integer"));
        assert!(bad("GET", "/v1/parties?ofset=1", "").starts_with("ofset: unknown parameter"));
        assert!(bad("GET", "/v1/history?since=5&until=4", "").starts_with("until: 4 is before since 5"));
        assert!(bad("GET", "/v1/history?user_id=", "").starts_with("user_id: must be"));
        let kick = format!("/v1/parties/{PARTY}/members/u?session_id=abc");
        assert!(bad("DELETE", &kick, "").starts_with("session_id: expected a session id"));
    }

    #[test]
    fn party_and_history_routes_carry_their_parsed_parameters() {
        use crate::core::{PartyId, SessionId, UserId};
        let party_id = PartyId(0xab);
        assert_eq!(
            call("GET", "/v1/parties?offset=5&limit=7", Some(KEY), "").result,
            Ok(AdminCall::ListParties { offset: 5, limit: 7 })
        );
        assert_eq!(
            call("GET", "/v1/parties", Some(KEY), "").result,
            Ok(AdminCall::ListParties { offset: 0, limit: 100 })
        );
        let nakama_form = "00000000-0000-0000-0000-0000000000ab.huddle";
        assert_eq!(
            call("DELETE", &format!("/v1/parties/{nakama_form}"), Some(KEY), "").result,
            Ok(AdminCall::CloseParty { party_id })
        );
        assert_eq!(
            call("DELETE", &format!("/v1/parties/{PARTY}/members/bob?session_id=4294967297"), Some(KEY), "").result,
            Ok(AdminCall::KickMember { party_id, user_id: UserId::new("bob"), session: Some(SessionId::new(1, 1)) })
        );
        assert_eq!(
            call("GET", "/v1/history?user_id=a%2Bb&since=1&until=2&limit=3&cursor=9", Some(KEY), "").result,
            Ok(AdminCall::History {
                query: HistoryQuery {
                    party_id: None,
                    user_id: Some(UserId::new("a+b")),
                    since: Some(UnixMillis(1)),
                    until: Some(UnixMillis(2)),
                    before_seq: Some(9),
                },
                limit: 3
            })
        );
    }
}
