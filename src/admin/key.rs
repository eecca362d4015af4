//! The admin key (SPEC O-1): a shared secret an operator or a game backend sends as
//! `Authorization: Bearer KEY`. Like the token key it is used as its bytes. Only its SHA-256
//! digest is kept, and a presented key is compared digest to digest in constant time, so neither
//! the key's bytes nor its length leak through response timing.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Environment variable holding the admin key.
pub const ADMIN_KEY_ENV: &str = "HUDDLE_ADMIN_KEY";
/// Environment variable naming the admin key file.
pub const ADMIN_KEY_FILE_ENV: &str = "HUDDLE_ADMIN_KEY_FILE";
/// The admin key file's name beside the token key file, unless named otherwise.
pub const ADMIN_KEY_FILE_NAME: &str = "admin.key";

#[derive(Clone)]
pub struct AdminKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminKey {
    // Never print the key (nor its digest, which would let a log reader test guesses offline).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminKey(<redacted>)")
    }
}

impl AdminKey {
    /// A key of these bytes. Empty keys are refused by the loaders before they get here.
    pub fn new(bytes: &[u8]) -> AdminKey {
        AdminKey { digest: Sha256::digest(bytes).into() }
    }

    /// Whether an `Authorization` header value carries this key as a bearer token (the scheme
    /// is case-insensitive, RFC 9110 §11.1).
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, presented)) = authorization.map(str::trim).and_then(|v| v.split_once(' ')) else {
            return false;
        };
        let presented = presented.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || presented.is_empty() {
            return false;
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

/// `admin.key` in the folder of the token key file, so a server's two secrets live together.
pub fn default_admin_key_file(token_key_file: &Path) -> PathBuf {
    token_key_file.with_file_name(ADMIN_KEY_FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_as_a_bearer_token_is_accepted() {
        let key = AdminKey::new(b"s3cret");
        assert!(key.accepts(Some("Bearer s3cret")));
        assert!(key.accepts(Some("bearer  s3cret ")), "scheme case and surrounding blanks do not matter");
        for refused in [None, Some(""), Some("Bearer"), Some("Bearer "), Some("Basic s3cret"), Some("Bearer s3cre")] {
            assert!(!key.accepts(refused), "{refused:?}");
        }
        assert!(!key.accepts(Some("Bearer s3cret2")));
        assert_eq!(format!("{key:?}"), "AdminKey(<redacted>)");
    }

    #[test]
    fn the_default_file_sits_beside_the_token_key_file() {
        let path = default_admin_key_file(Path::new("/etc/huddle/token.key"));
        assert_eq!(path, Path::new("/etc/huddle/admin.key"));
    }
}
