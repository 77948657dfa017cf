//! API keys (SPEC §4): generation, hashing, and the account patterns a key
//! covers. Keys are stored only as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{AccountId, ParseError};

/// A new random client key: `wtk_` + 43 base64url characters (256 bits).
pub fn generate_key() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("wtk_{}", URL_SAFE_NO_PAD.encode(b))
}

/// The stored form of a key: [`digest`] in hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(digest(key))
}

/// SHA-256 of a key (what in-memory memos are keyed by).
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A key's name: 1 to 64 characters of `A-Z a-z 0-9 _ - .`.
pub fn check_name(name: &str) -> Result<(), ParseError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ParseError(
            "name must be 1 to 64 characters of A-Z a-z 0-9 _ - .".into(),
        ))
    }
}

/// What a key's `accounts` entry may say: `*`, an exact id, or `{id}/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    All,
    Exact(AccountId),
    WithChildren(AccountId),
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s == "*" {
            return Ok(Pattern::All);
        }
        if let Some(base) = s.strip_suffix("/*") {
            return Ok(Pattern::WithChildren(base.parse()?));
        }
        Ok(Pattern::Exact(s.parse().map_err(|_| {
            ParseError(format!(
                "account pattern {s:?} must be \"*\", an account id like mp:wx1, or an id followed by /*"
            ))
        })?))
    }

    pub fn covers(&self, id: &AccountId) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(p) => p == id,
            Pattern::WithChildren(p) => p == id || id.parent().as_ref() == Some(p),
        }
    }

    /// Whether some account is covered by both patterns (accounts nest one
    /// level: a component's or a suite's children have none).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::All, _) | (_, Pattern::All) => true,
            (Pattern::Exact(a), p) | (p, Pattern::Exact(a)) => p.covers(a),
            (Pattern::WithChildren(a), Pattern::WithChildren(b)) => self.covers(b) || other.covers(a),
        }
    }
}

#[cfg(test)]
#[test]
fn patterns_overlap_when_one_account_is_in_both() {
    let p = |s: &str| Pattern::parse(s).unwrap();
    for (a, b, both) in [
        ("*", "mp:wx1", true),
        ("mp:wx1", "mp:wx1", true),
        ("mp:wx1", "mp:wx2", false),
        ("component:wxc/*", "authorizer:wxc:wxa", true),
        ("component:wxc/*", "component:wxc", true),
        ("component:wxc/*", "authorizer:wxd:wxa", false),
        ("component:wxc/*", "component:wxd/*", false),
        ("component:wxc/*", "authorizer:wxc:wxa/*", true),
        ("suite:s1/*", "mp:wx1", false),
    ] {
        assert_eq!(p(a).overlaps(&p(b)), both, "{a} {b}");
        assert_eq!(p(b).overlaps(&p(a)), both, "{b} {a}");
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::All => f.write_str("*"),
            Pattern::Exact(id) => write!(f, "{id}"),
            Pattern::WithChildren(id) => write!(f, "{id}/*"),
        }
    }
}

/// A WeChat API path a key may call through the token-free proxy (SPEC §6):
/// an exact path (`/cgi-bin/menu/create`), a prefix ending in `*`
/// (`/cgi-bin/message/*`, `/wxa/*`), or `*` for every path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern(String);

impl PathPattern {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let body = s.strip_suffix('*').unwrap_or(s);
        let ok = s == "*"
            || (s.starts_with('/')
                && s.len() <= 200
                && !body.contains('*')
                && !s.contains("..")
                && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b)));
        if ok {
            Ok(PathPattern(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "path pattern {s:?} must be a WeChat API path like /cgi-bin/menu/create, a prefix ending in * like /cgi-bin/message/*, or *"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (a request's WeChat path, `/cgi-bin/…`) is allowed.
    pub fn allows(&self, path: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_allow_a_path_or_a_prefix() {
        let message = PathPattern::parse("/cgi-bin/message/*").unwrap();
        assert!(message.allows("/cgi-bin/message/custom/send"));
        assert!(!message.allows("/cgi-bin/menu/create"));
        assert!(!message.allows("/cgi-bin/messagex"), "a prefix of segments as written");
        let exact = PathPattern::parse("/cgi-bin/menu/create").unwrap();
        assert!(exact.allows("/cgi-bin/menu/create"));
        assert!(!exact.allows("/cgi-bin/menu/create/x"));
        assert!(PathPattern::parse("*").unwrap().allows("/anything"));
        for bad in [
            "cgi-bin/x",
            "/cgi-bin/*/x",
            "/cgi-bin/../x",
            "/a b",
            "",
            "**",
            &format!("/{}", "a".repeat(300)),
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn id(s: &str) -> AccountId {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_cover_as_specified() {
        let all = Pattern::parse("*").unwrap();
        assert!(all.covers(&id("mp:wx1")));
        let exact = Pattern::parse("mp:wx1").unwrap();
        assert!(exact.covers(&id("mp:wx1")));
        assert!(!exact.covers(&id("mp:wx2")));
        let comp = Pattern::parse("component:wxc/*").unwrap();
        assert!(comp.covers(&id("component:wxc")));
        assert!(comp.covers(&id("authorizer:wxc:wx1")));
        assert!(!comp.covers(&id("authorizer:wxd:wx1")));
        assert!(!comp.covers(&id("mp:wxc")));
        let suite = Pattern::parse("suite:s/*").unwrap();
        assert!(suite.covers(&id("corp:s:ww1")));
        assert!(Pattern::parse("mp:bad id").is_err());
        assert!(Pattern::parse("wx1").is_err());
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let a = generate_key();
        assert!(a.starts_with("wtk_"));
        assert_ne!(a, generate_key());
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), a);
    }
}
