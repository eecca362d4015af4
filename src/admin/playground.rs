//! The lobby playground (SPEC K-3): a developer's page served on the admin listener at
//! `GET /playground`, and the token mint it calls, `POST /playground/token`. Both are public
//! paths (no admin key) and both answer 404 unless the server runs with `--playground`.
//!
//! The page is one self-contained HTML file (the TypeScript client and the page's code bundled
//! inline) built from `clients/ts/playground/` by `npm run build:playground` and committed here
//! as `playground.html`, so `cargo build` needs no Node; CI checks it is fresh. The server writes
//! two things into it per request: the game listener's WebSocket URL and whether the mint works.
//!
//! The mint hands a token for any user id to whoever asks, so it is confined to this machine:
//! - the admin listener must be bound to a loopback address (checked on the bound address, once
//!   at start: bound to `0.0.0.0` it refuses even callers on loopback, since nothing but the
//!   bind keeps other machines out);
//! - the request's `Host` must name a loopback address or `localhost`, so a page of another
//!   site whose name an attacker re-points at 127.0.0.1 (DNS rebinding) is refused;
//! - an `Origin`, when the caller sends one (browsers do on every POST), must be this listener
//!   itself (`http://` + `Host`), so other sites' pages cannot mint through the browser.
//!
//! Refusals are 403 `forbidden` with the reason; the page shows it beside the mint form.

use super::body::{self, TokenRequest};
use super::router::{Params, Request};
use super::{AdminCall, AdminError};
use crate::limits::Limits;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The built page (see the module doc); `npm run build:playground` rewrites it.
const PAGE_TEMPLATE: &str = include_str!("playground.html");
/// Replaced by the game listener's WebSocket URL (`ws://127.0.0.1:7350/ws`).
const WS_URL_SLOT: &str = "%HUDDLE_WS_URL%";
/// Replaced by `on`, or by why the mint is refused.
const MINT_SLOT: &str = "%HUDDLE_MINT%";
/// A `Host` longer than this is not a name we would serve (DNS names stop at 253 bytes).
const HOST_BYTES_MAX: usize = 260;

/// `GET /playground`.
pub(super) fn page_call(_: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::Playground { host: request.host.map(str::to_owned) })
}

/// `POST /playground/token`: checked by [`Playground::admit_token`] only once the driver knows
/// the playground is on, so a server without `--playground` answers 404 whatever the body.
pub(super) fn token_call(_: &Params<'_>, request: &Request<'_>, _: &Limits) -> Result<AdminCall, AdminError> {
    Ok(AdminCall::PlaygroundToken(TokenAttempt {
        host: request.host.map(str::to_owned),
        origin: request.origin.map(str::to_owned),
        body: request.body.to_vec(),
    }))
}

/// A playground mint request before its checks (the body is bounded by `admin_body_bytes_max`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAttempt {
    pub host: Option<String>,
    pub origin: Option<String>,
    pub body: Vec<u8>,
}

/// Why the playground's mint is off for an admin listener bound to `admin_addr`, or `None`
/// when it works. `huddle serve` logs it at start; the page shows it.
pub fn mint_refusal(admin_addr: SocketAddr) -> Option<String> {
    (!admin_addr.ip().is_loopback()).then(|| {
        format!(
            "the playground mints tokens only while the admin listener is bound to loopback \
             (it is on {admin_addr}); paste a token instead"
        )
    })
}

/// The playground of a server started with `--playground`.
#[derive(Clone, Debug)]
pub struct Playground {
    game_addr: SocketAddr,
    mint_refusal: Option<String>,
}

impl Playground {
    /// For the bound addresses of the game and admin listeners.
    pub fn new(game_addr: SocketAddr, admin_addr: SocketAddr) -> Playground {
        Playground { game_addr, mint_refusal: mint_refusal(admin_addr) }
    }

    /// The page, with the WebSocket URL a browser that reached us as `host` can use.
    pub fn page(&self, host: Option<&str>) -> Vec<u8> {
        let mint = self.mint_refusal.as_deref().unwrap_or("on");
        PAGE_TEMPLATE
            .replacen(WS_URL_SLOT, &html_escape(&self.ws_url(host)), 1)
            .replacen(MINT_SLOT, &html_escape(mint), 1)
            .into_bytes()
    }

    /// The game listener's URL. Bound to a wildcard address (`0.0.0.0`, `::`) the listener has no
    /// one address to name: the host the browser used for this page is the best guess.
    fn ws_url(&self, host: Option<&str>) -> String {
        let port = self.game_addr.port();
        let ip = self.game_addr.ip();
        if !ip.is_unspecified() {
            return format!("ws://{}/ws", self.game_addr);
        }
        let name = host.and_then(host_name).filter(|name| name.bytes().all(is_host_byte));
        match (name, ip) {
            (Some(name), _) => format!("ws://{name}:{port}/ws"),
            (None, IpAddr::V4(_)) => format!("ws://{}/ws", SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)),
            (None, IpAddr::V6(_)) => format!("ws://{}/ws", SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)),
        }
    }

    /// Checks a mint request (the module doc's three rules, then the body as `/v1/tokens` reads
    /// it) and returns what to mint.
    pub fn admit_token(&self, attempt: &TokenAttempt) -> Result<TokenRequest, AdminError> {
        if let Some(refusal) = &self.mint_refusal {
            return Err(AdminError::Forbidden(refusal.clone()));
        }
        let host = attempt.host.as_deref().unwrap_or("");
        if !host_name(host).is_some_and(is_loopback_name) {
            return Err(AdminError::Forbidden(format!(
                "the playground mints tokens only for pages loaded from this machine \
                 (Host must be localhost or a loopback address, got {:?})",
                shown(host)
            )));
        }
        if let Some(origin) = attempt.origin.as_deref() {
            let own = origin.len() == "http://".len() + host.len()
                && origin.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
                && origin.get(7..).is_some_and(|rest| rest.eq_ignore_ascii_case(host));
            if !own {
                return Err(AdminError::Forbidden(format!(
                    "the playground mints tokens only for its own page (Origin must be http://{}, got {:?})",
                    shown(host),
                    shown(origin)
                )));
            }
        }
        body::token_request(&attempt.body)
    }
}

/// The host part of a `Host` value (`127.0.0.1:7351` → `127.0.0.1`, `[::1]:7351` → `[::1]`).
fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    if host.is_empty() || host.len() > HOST_BYTES_MAX {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        let port_ok = rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port);
        return port_ok.then_some(&host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) && !name.contains(':') => Some(name),
        Some(_) => None,
        None => Some(host),
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Bytes a host name or IP literal may have; anything else never reaches the page.
fn is_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'[' | b']' | b':')
}

fn is_loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// At most 64 characters of a header value, for an error message.
fn shown(value: &str) -> String {
    value.chars().take(64).collect()
}

/// Text for an HTML attribute value.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Playground {
        Playground::new("127.0.0.1:7350".parse().unwrap(), "127.0.0.1:7351".parse().unwrap())
    }

    fn attempt(host: Option<&str>, origin: Option<&str>, body: &str) -> TokenAttempt {
        TokenAttempt {
            host: host.map(str::to_owned),
            origin: origin.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        }
    }

    fn forbidden(result: Result<TokenRequest, AdminError>) -> String {
        match result {
            Err(AdminError::Forbidden(message)) => message,
            other => panic!("expected 403, got {other:?}"),
        }
    }

    #[test]
    fn the_template_has_each_slot_once_before_the_script() {
        for slot in [WS_URL_SLOT, MINT_SLOT] {
            let at = PAGE_TEMPLATE.find(slot).unwrap_or_else(|| panic!("{slot} missing from playground.html"));
            assert!(at < PAGE_TEMPLATE.find("<script").unwrap(), "{slot} is filled in before any script text");
        }
    }

    #[test]
    fn the_page_names_the_game_listener_and_the_mint() {
        let page = String::from_utf8(loopback().page(Some("127.0.0.1:7351"))).unwrap();
        assert!(page.contains(r#"content="ws://127.0.0.1:7350/ws""#));
        assert!(page.contains(r#"name="huddle-mint" content="on""#));

        let public = Playground::new("0.0.0.0:7350".parse().unwrap(), "0.0.0.0:7351".parse().unwrap());
        let page = String::from_utf8(public.page(Some("play.example:7351"))).unwrap();
        assert!(page.contains(r#"content="ws://play.example:7350/ws""#), "a wildcard bind names the page's host");
        assert!(
            page.contains("mints tokens only while the admin listener is bound to loopback (it is on 0.0.0.0:7351)")
        );
        let page = String::from_utf8(public.page(Some("\"><script>"))).unwrap();
        assert!(page.contains(r#"content="ws://127.0.0.1:7350/ws""#), "a Host that is no name is not written");
    }

    #[test]
    fn the_mint_works_for_this_machine_only() {
        let playground = loopback();
        let same = Some("http://127.0.0.1:7351");
        let minted = playground.admit_token(&attempt(Some("127.0.0.1:7351"), same, r#"{"user_id":"alice"}"#));
        assert_eq!(minted.unwrap().username, "alice");
        for host in ["localhost:7351", "[::1]:7351", "127.0.0.2", "LOCALHOST"] {
            assert!(playground.admit_token(&attempt(Some(host), None, r#"{"user_id":"a"}"#)).is_ok(), "{host}");
        }

        let rebound = forbidden(playground.admit_token(&attempt(Some("evil.example:7351"), None, "{}")));
        assert!(rebound.contains("Host must be localhost or a loopback address"), "{rebound}");
        assert!(forbidden(playground.admit_token(&attempt(None, None, "{}"))).contains("Host"));
        let cross =
            forbidden(playground.admit_token(&attempt(Some("127.0.0.1:7351"), Some("http://evil.example"), "{}")));
        assert!(cross.contains("Origin must be http://127.0.0.1:7351"), "{cross}");
        assert!(playground.admit_token(&attempt(Some("127.0.0.1:7351"), Some("null"), "{}")).is_err());
        assert!(playground
            .admit_token(&attempt(Some("127.0.0.1:7351"), Some("https://127.0.0.1:7351"), "{}"))
            .is_err());

        let public = Playground::new("127.0.0.1:7350".parse().unwrap(), "0.0.0.0:7351".parse().unwrap());
        let off = forbidden(public.admit_token(&attempt(Some("127.0.0.1:7351"), same, r#"{"user_id":"a"}"#)));
        assert!(off.contains("bound to loopback"), "{off}");

        match playground.admit_token(&attempt(Some("127.0.0.1:7351"), same, "{}")) {
            Err(AdminError::BadRequest(message)) => assert!(message.starts_with("user_id: required")),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:7351"), Some("127.0.0.1"));
        assert_eq!(host_name("[::1]:7351"), Some("[::1]"));
        assert_eq!(host_name("[::1]"), Some("[::1]"));
        assert_eq!(host_name("localhost"), Some("localhost"));
        assert_eq!(host_name("::1"), None, "an IPv6 literal must be bracketed");
        assert_eq!(host_name("a:b"), None);
        assert_eq!(host_name(""), None);
    }
}
