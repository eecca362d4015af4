//! Session tokens (SPEC C-2): HS256 JWTs with Nakama's claim layout (`uid`, `usn`, `exp`), and
//! the server key they are signed with. Verification is a pure function of (token, key, now),
//! so tests need no clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Longest `uid` or `usn` accepted: the identities' own bound ([`crate::core::UserId::BYTES_MAX`]).
pub const CLAIM_BYTES_MAX: usize = crate::core::UserId::BYTES_MAX;
/// Longest token accepted. The handshake limit bounds it too; this keeps `verify` safe on its own.
pub const TOKEN_BYTES_MAX: usize = 4096;

/// The HMAC key tokens are signed with.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey(<{} bytes>)", self.0.len())
    }
}

impl TokenKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> TokenKey {
        TokenKey(bytes.into())
    }

    /// The key's bytes: exactly what was configured (a key file's text without surrounding
    /// whitespace), which a backend signing tokens must use as its HMAC key too.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub user_id: String,
    pub username: String,
    /// Unix time in seconds after which the token is refused.
    pub expires_at_unix_s: u64,
}

/// Why a token was refused. Every variant becomes HTTP 401; the variant is logged at debug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    TooLong,
    Malformed(&'static str),
    /// The header names another algorithm (`none`, RS256, ...): only HS256 is accepted.
    UnsupportedAlgorithm,
    /// The header has a `crit` member: it names extensions the token's issuer requires the
    /// recipient to understand, and this server understands none (RFC 7515 §4.1.11).
    CriticalExtension,
    BadSignature,
    Expired,
    BadClaim(&'static str),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Missing => write!(f, "no token"),
            TokenError::TooLong => write!(f, "token longer than {TOKEN_BYTES_MAX} bytes"),
            TokenError::Malformed(what) => write!(f, "malformed token: {what}"),
            TokenError::UnsupportedAlgorithm => write!(f, "token algorithm is not HS256"),
            TokenError::CriticalExtension => {
                write!(f, "token header lists critical extensions (crit) this server does not support")
            }
            TokenError::BadSignature => write!(f, "token signature does not match the server key"),
            TokenError::Expired => write!(f, "token expired"),
            TokenError::BadClaim(what) => write!(f, "bad token claim: {what}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Checks signature, algorithm, expiry and claims. `now_unix_s` comes from the caller's clock.
///
/// ```
/// use huddle::auth::{mint, verify, Claims, TokenError, TokenKey};
/// let key = TokenKey::new("server-key");
/// let claims = Claims { user_id: "alice".into(), username: "Alice".into(), expires_at_unix_s: 2_000_000_000 };
/// let token = mint(&claims, &key);
/// assert_eq!(verify(&token, &key, 1_700_000_000), Ok(claims));
/// assert_eq!(verify(&token, &key, 2_000_000_000), Err(TokenError::Expired));
/// assert_eq!(verify(&token, &TokenKey::new("other"), 1_700_000_000), Err(TokenError::BadSignature));
/// ```
pub fn verify(token: &str, key: &TokenKey, now_unix_s: u64) -> Result<Claims, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > TOKEN_BYTES_MAX {
        return Err(TokenError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };

    let header = decode_json_part(header_b64, "header")?;
    // Check the algorithm before the signature: a token that asks for `none` or an asymmetric
    // algorithm must never be judged by our HMAC (the classic JWT confusion attacks).
    if header.get("alg").and_then(|v| v.as_str()) != Some("HS256") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    // RFC 7515 §4.1.11: a recipient must reject a token whose `crit` names an extension it does
    // not understand. This server implements no JWS extension, so any `crit` (a malformed one
    // included: it must be a non-empty list) is refused, before the signature like `alg`.
    if header.contains_key("crit") {
        return Err(TokenError::CriticalExtension);
    }

    let signature =
        URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let signed_len = header_b64.len() + 1 + claims_b64.len();
    let mut mac = HmacSha256::new_from_slice(&key.0).map_err(|_| TokenError::BadSignature)?;
    mac.update(&token.as_bytes()[..signed_len]);
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;

    let claims = decode_json_part(claims_b64, "claims")?;
    let user_id = string_claim(&claims, "uid")?;
    let username = string_claim(&claims, "usn")?;
    let expires_at_unix_s = match claims.get("exp") {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .ok_or(TokenError::BadClaim("exp is not a non-negative number"))?,
        Some(_) => return Err(TokenError::BadClaim("exp is not a number")),
        None => return Err(TokenError::BadClaim("exp missing")),
    };
    if expires_at_unix_s <= now_unix_s {
        return Err(TokenError::Expired);
    }
    Ok(Claims { user_id, username, expires_at_unix_s })
}

/// Signs `claims` with `key` as an HS256 JWT in Nakama's layout.
pub fn mint(claims: &Claims, key: &TokenKey) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = serde_json::json!({
        "uid": claims.user_id,
        "usn": claims.username,
        "exp": claims.expires_at_unix_s,
    });
    let body = URL_SAFE_NO_PAD.encode(body.to_string());
    let signing_input = format!("{header}.{body}");
    let mut mac = HmacSha256::new_from_slice(&key.0).expect("HMAC accepts keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn decode_json_part(b64: &str, part: &'static str) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| match part {
        "header" => TokenError::Malformed("header is not base64url"),
        _ => TokenError::Malformed("claims are not base64url"),
    })?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(match part {
            "header" => TokenError::Malformed("header is not a JSON object"),
            _ => TokenError::Malformed("claims are not a JSON object"),
        }),
    }
}

fn string_claim(claims: &serde_json::Map<String, serde_json::Value>, name: &'static str) -> Result<String, TokenError> {
    let value = claims.get(name).and_then(|v| v.as_str());
    let Some(value) = value else {
        return Err(TokenError::BadClaim(if name == "uid" {
            "uid missing or not a string"
        } else {
            "usn missing or not a string"
        }));
    };
    if value.len() > CLAIM_BYTES_MAX || !is_visible_name(value) {
        return Err(TokenError::BadClaim(if name == "uid" {
            "uid empty, blank, longer than 128 bytes, or with control or format characters"
        } else {
            "usn empty, blank, longer than 128 bytes, or with control or format characters"
        }));
    }
    Ok(value.to_owned())
}

/// Whether `name` can stand for a user in front of other users: not empty, not blank, and free
/// of characters that are invisible or rearrange the text around them, so one name cannot be
/// made to look like another. Refused: control characters (Cc), format characters (Cf: the
/// right-to-left override U+202E, zero-width space U+200B, byte order mark U+FEFF, joiners, …),
/// line and paragraph separators (Zl, Zp), and names made only of whitespace and blank-looking
/// fillers. Emoji sequences joined by U+200D (a format character) are refused with the rest.
pub fn is_visible_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().all(|c| c.is_whitespace() || BLANK_FILLERS.contains(&c))
        && !name.chars().any(|c| c.is_control() || is_format_or_separator(c))
}

/// Letters and symbols that render as nothing, the classic way to make a name look empty
/// (Hangul fillers, the blank Braille pattern). Only a name made of nothing else is refused.
const BLANK_FILLERS: [char; 5] = ['\u{115F}', '\u{1160}', '\u{2800}', '\u{3164}', '\u{FFA0}'];

/// General category Cf (Unicode 16.0; the table is small and changes rarely, so no crate), plus
/// U+2028 and U+2029 (Zl, Zp), which break lines like control characters do. Sorted, disjoint
/// inclusive ranges (checked at compile time below), searched by their last character.
const FORMAT_OR_SEPARATOR: [(u32, u32); 22] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x2029),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

const _: () = {
    let mut i = 0;
    while i < FORMAT_OR_SEPARATOR.len() {
        assert!(FORMAT_OR_SEPARATOR[i].0 <= FORMAT_OR_SEPARATOR[i].1, "a range runs forwards");
        assert!(i == 0 || FORMAT_OR_SEPARATOR[i - 1].1 < FORMAT_OR_SEPARATOR[i].0, "ranges are sorted and disjoint");
        i += 1;
    }
};

fn is_format_or_separator(c: char) -> bool {
    let c = u32::from(c);
    let at = FORMAT_OR_SEPARATOR.partition_point(|&(_, last)| last < c);
    FORMAT_OR_SEPARATOR.get(at).is_some_and(|&(first, _)| first <= c)
}

/// Where the key came from, for the startup log (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Flag,
    Environment,
    ExistingFile(PathBuf),
    CreatedFile(PathBuf),
}

/// Environment variable holding the key.
pub const KEY_ENV: &str = "HUDDLE_TOKEN_KEY";

/// The default key file: `$HUDDLE_KEY_FILE`, else `$XDG_CONFIG_HOME/huddle/token.key`, else
/// `$HOME/.config/huddle/token.key`, else `./huddle-token.key`. The server and `huddle token`
/// resolve it the same way, so a minted token is accepted by a server started anywhere by the
/// same user.
pub fn default_key_file() -> PathBuf {
    if let Some(path) = std::env::var_os("HUDDLE_KEY_FILE") {
        return PathBuf::from(path);
    }
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(config).join("huddle").join("token.key");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".config").join("huddle").join("token.key");
    }
    PathBuf::from("huddle-token.key")
}

/// What [`load_key`] does when the key file does not exist.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MissingKeyFile {
    /// Create it with a new random key: the server's first start, and tools using the default
    /// file (they then share the key the server will read).
    Create,
    /// Refuse with `NotFound`: a file named on purpose (`huddle token --key-file`) that is not
    /// there is a mistake, and a token signed with a key made up on the spot is useless.
    Refuse,
}

/// The key by precedence: `flag` (`--token-key`), then `env` (the value of `HUDDLE_TOKEN_KEY`,
/// passed in so tests do not depend on the process environment), then the key file, created
/// with 32 random bytes (hex, mode 0600 on Unix) when it does not exist yet.
pub fn load_or_create_key(flag: Option<&str>, env: Option<&str>, key_file: &Path) -> io::Result<(TokenKey, KeySource)> {
    load_key(flag, env, key_file, MissingKeyFile::Create)
}

/// The key by precedence as in [`load_or_create_key`]; `missing` says whether a key file that
/// does not exist is created or refused.
pub fn load_key(
    flag: Option<&str>,
    env: Option<&str>,
    key_file: &Path,
    missing: MissingKeyFile,
) -> io::Result<(TokenKey, KeySource)> {
    if let Some(key) = flag.filter(|k| !k.is_empty()) {
        return Ok((TokenKey::new(key.as_bytes()), KeySource::Flag));
    }
    if let Some(key) = env.filter(|k| !k.is_empty()) {
        return Ok((TokenKey::new(key.as_bytes()), KeySource::Environment));
    }
    match fs::read_to_string(key_file) {
        Ok(text) => {
            let key = text.trim();
            if key.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("key file {} is empty", key_file.display()),
                ));
            }
            Ok((TokenKey::new(key.as_bytes()), KeySource::ExistingFile(key_file.to_path_buf())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && missing == MissingKeyFile::Refuse => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such key file (start the server once to create one, or name the server's)",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let key = random_hex(32)?;
            match create_private_file(key_file) {
                Ok(mut file) => {
                    file.write_all(key.as_bytes())?;
                    file.write_all(b"\n")?;
                    file.sync_all()?;
                    Ok((TokenKey::new(key.into_bytes()), KeySource::CreatedFile(key_file.to_path_buf())))
                }
                // Another process created it first: use theirs, so both agree.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_key(None, None, key_file, missing),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` for a secret: `create_new`, so two processes starting at once cannot both win
/// and disagree; readable by the owner only on Unix (0600). Elsewhere the file gets the
/// directory's default permissions (on Windows, the user profile's ACL).
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// `N` bytes from the OS's CSPRNG.
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("the OS random source failed: {e}")))?;
    Ok(bytes)
}

fn random_hex(n: usize) -> io::Result<String> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(bytes[..n.min(32)].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new("test-key")
    }

    fn claims(exp: u64) -> Claims {
        Claims { user_id: "u1".into(), username: "Alice".into(), expires_at_unix_s: exp }
    }

    fn forge(header: &str, body: &str, key: &TokenKey) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let b = URL_SAFE_NO_PAD.encode(body);
        let mut mac = HmacSha256::new_from_slice(&key.0).unwrap();
        mac.update(format!("{h}.{b}").as_bytes());
        format!("{h}.{b}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn minted_token_verifies_and_carries_claims() {
        let token = mint(&claims(2_000), &key());
        assert_eq!(verify(&token, &key(), 1_999), Ok(claims(2_000)));
    }

    #[test]
    fn expired_token_is_refused_at_and_after_exp() {
        let token = mint(&claims(2_000), &key());
        assert_eq!(verify(&token, &key(), 2_000), Err(TokenError::Expired));
        assert_eq!(verify(&token, &key(), 9_999), Err(TokenError::Expired));
    }

    #[test]
    fn wrong_key_is_refused() {
        let token = mint(&claims(2_000), &key());
        assert_eq!(verify(&token, &TokenKey::new("other"), 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_claims_are_refused() {
        let token = mint(&claims(2_000), &key());
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(r#"{"uid":"admin","usn":"Alice","exp":2000}"#);
        assert_eq!(verify(&parts.join("."), &key(), 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused_even_when_signed() {
        let body = r#"{"uid":"u1","usn":"Alice","exp":2000}"#;
        for alg in [r#"{"alg":"none"}"#, r#"{"alg":"HS512"}"#, r#"{"alg":"RS256"}"#, r#"{"typ":"JWT"}"#] {
            let token = forge(alg, body, &key());
            assert_eq!(verify(&token, &key(), 1), Err(TokenError::UnsupportedAlgorithm), "{alg}");
        }
        // `alg: none` with an empty signature, the classic bypass.
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let b = URL_SAFE_NO_PAD.encode(body);
        assert_eq!(verify(&format!("{h}.{b}."), &key(), 1), Err(TokenError::UnsupportedAlgorithm));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "....", "\u{0}.\u{0}.\u{0}"] {
            assert!(verify(token, &key(), 1).is_err(), "{token:?}");
        }
        assert_eq!(verify(&"a".repeat(TOKEN_BYTES_MAX + 1), &key(), 1), Err(TokenError::TooLong));
    }

    #[test]
    fn missing_or_oversized_claims_are_refused() {
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let cases = [
            r#"{"usn":"Alice","exp":2000}"#,
            r#"{"uid":"u1","exp":2000}"#,
            r#"{"uid":"u1","usn":"Alice"}"#,
            r#"{"uid":"","usn":"Alice","exp":2000}"#,
            r#"{"uid":1,"usn":"Alice","exp":2000}"#,
            r#"{"uid":"u1","usn":"Alice","exp":"2000"}"#,
            r#"{"uid":"u1","usn":"Alice","exp":-5}"#,
            r#"[1,2]"#,
        ];
        for body in cases {
            assert!(
                matches!(
                    verify(&forge(hs, body, &key()), &key(), 1),
                    Err(TokenError::BadClaim(_) | TokenError::Malformed(_))
                ),
                "{body}"
            );
        }
        let long = format!(r#"{{"uid":"{}","usn":"Alice","exp":2000}}"#, "x".repeat(CLAIM_BYTES_MAX + 1));
        assert!(matches!(verify(&forge(hs, &long, &key()), &key(), 1), Err(TokenError::BadClaim(_))));
    }

    #[test]
    fn a_crit_header_is_refused_even_when_signed() {
        let body = r#"{"uid":"u1","usn":"Alice","exp":2000}"#;
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"nonsense"}"#,
        ] {
            assert_eq!(verify(&forge(header, body, &key()), &key(), 1), Err(TokenError::CriticalExtension), "{header}");
        }
        let plain = forge(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#, body, &key());
        assert_eq!(verify(&plain, &key(), 1), Ok(claims(2_000)), "other header members stay accepted");
    }

    #[test]
    fn names_with_format_characters_or_only_blanks_are_refused() {
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let with_name = |usn: &str| {
            let body = serde_json::json!({"uid": "u1", "usn": usn, "exp": 2000}).to_string();
            verify(&forge(hs, &body, &key()), &key(), 1)
        };
        let refused = [
            "Alice\u{202E}gnp.exe", // right-to-left override
            "Al\u{200B}ice",        // zero-width space
            "\u{FEFF}Alice",        // byte order mark
            "Ali\u{200D}ce",        // zero-width joiner
            "Alice\u{2066}",        // left-to-right isolate
            "tag\u{E0041}",         // a tag character
            "a\u{2028}b",           // line separator
            "a\u{7}b",              // a control character, as before
            " ",
            "\u{3000}\t ",      // ideographic space and a tab
            "\u{3164}\u{3164}", // Hangul fillers
            "",
        ];
        for name in refused {
            assert!(matches!(with_name(name), Err(TokenError::BadClaim(_))), "{name:?} accepted");
        }
        for name in ["Alice", "Ann Lee", "Zoë", "日本語", "\u{3164}x", "a\u{AC}b", "🎮"] {
            assert!(with_name(name).is_ok(), "{name:?} refused");
        }
        let uid = serde_json::json!({"uid": "u\u{202E}1", "usn": "Alice", "exp": 2000}).to_string();
        assert!(
            matches!(verify(&forge(hs, &uid, &key()), &key(), 1), Err(TokenError::BadClaim(m)) if m.starts_with("uid"))
        );
    }

    #[test]
    fn the_format_table_refuses_both_ends_of_its_ranges_and_nothing_beside_them() {
        for c in ['\u{AD}', '\u{600}', '\u{605}', '\u{200F}', '\u{206F}', '\u{1343F}', '\u{E007F}', '\u{2029}'] {
            assert!(is_format_or_separator(c), "{:X}", u32::from(c));
        }
        for c in ['\u{AC}', '\u{606}', '\u{2010}', '\u{2070}', '\u{13440}', '\u{E0080}', 'a', '\u{10FFFF}'] {
            assert!(!is_format_or_separator(c), "{:X}", u32::from(c));
        }
    }

    #[test]
    fn nakama_style_token_with_extra_claims_is_accepted() {
        let body = r#"{"tid":"t","uid":"u1","usn":"Alice","vrs":{},"exp":2000,"iat":1}"#;
        let token = forge(r#"{"alg":"HS256","typ":"JWT"}"#, body, &key());
        assert_eq!(verify(&token, &key(), 1), Ok(claims(2_000)));
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = std::env::temp_dir().join(format!("huddle-key-test-{}", std::process::id()));
        let path = dir.join("nested").join("token.key");
        let _ = fs::remove_dir_all(&dir);
        let (first, source) = load_or_create_key(None, None, &path).unwrap();
        assert_eq!(source, KeySource::CreatedFile(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (second, source) = load_or_create_key(None, None, &path).unwrap();
        assert_eq!(source, KeySource::ExistingFile(path.clone()));
        assert_eq!(first.0, second.0);
        let (flag, source) = load_or_create_key(Some("explicit"), Some("env"), &path).unwrap();
        assert_eq!((flag.0.as_slice(), source), (&b"explicit"[..], KeySource::Flag));
        let (env, source) = load_or_create_key(None, Some("env"), &path).unwrap();
        assert_eq!((env.0.as_slice(), source), (&b"env"[..], KeySource::Environment));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_key_file_is_refused_when_asked_and_never_created() {
        let path = std::env::temp_dir().join(format!("huddle-no-key-{}", std::process::id())).join("token.key");
        let error = load_key(None, None, &path, MissingKeyFile::Refuse).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(!path.exists(), "refusing creates nothing");
        assert!(path.parent().is_some_and(|dir| !dir.exists()), "not even the folder");
        let (key, _) = load_key(Some("flag"), None, &path, MissingKeyFile::Refuse).unwrap();
        assert_eq!(key.0, b"flag", "a key given directly needs no file");
    }
}
