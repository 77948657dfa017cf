//! Who is calling (SPEC §4): the admin key, a scoped client key, or nobody.
//!
//! Client keys are looked up by their SHA-256 and remembered for a short
//! while, so an authenticated cache hit costs no database read. A deleted
//! key stops working on this instance at once and on others within the
//! remembered time.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::AccountId;
use crate::keys::{Pattern, digest};
use crate::secret::ct_eq;
use crate::service::CredentialEngine;
use crate::service::cache::Memo;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Client {
        name: String,
        patterns: Vec<Pattern>,
        /// Whether it may read tokens and tickets (a key made with
        /// `"tokens": false` may not).
        tokens: bool,
        /// The WeChat paths it may call through the token-free proxy
        /// (None: every path).
        paths: Option<Vec<crate::keys::PathPattern>>,
    },
}

impl Principal {
    /// Whether it may be handed a token or a ticket (SPEC §3 credential
    /// reads, the Go wetoken's token routes).
    pub fn may_read_values(&self) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Client { tokens, .. } => *tokens,
        }
    }

    pub fn may_read(&self, id: &AccountId) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Client { patterns, .. } => patterns.iter().any(|p| p.covers(id)),
        }
    }
    /// Whether it may call the WeChat API `path` through the token-free
    /// proxy (SPEC §6 `paths`).
    pub fn may_call(&self, path: &str) -> bool {
        match self {
            Principal::Admin | Principal::Client { paths: None, .. } => true,
            Principal::Client { paths: Some(p), .. } => p.iter().any(|p| p.allows(path)),
        }
    }

    /// The key's name, for metrics and the audit trail (`admin` for the
    /// admin key, or everyone when keys are off).
    pub fn name(&self) -> &str {
        match self {
            Principal::Admin => "admin",
            Principal::Client { name, .. } => name,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }
}

/// The key an `Authorization` value presents: `Bearer <key>`, or HTTP
/// Basic with the key as the username (or as the password with an empty
/// username), so a client given only a URL (`http://KEY@host/…`) carries
/// it. At most 256 characters; anything else presents none.
/// A Bearer key is borrowed from the header (the hot path allocates
/// nothing); a Basic one is decoded.
pub fn presented_key(authorization: &str) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    let key: Cow<'_, str> = if scheme.eq_ignore_ascii_case("bearer") {
        Cow::Borrowed(rest.trim())
    } else if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let rest = rest.trim();
        if rest.len() > 1024 {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
        Cow::Owned(if user.is_empty() { password } else { user }.to_owned())
    } else {
        return None;
    };
    (!key.is_empty() && key.len() <= 256).then_some(key)
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown API key: send Authorization: Bearer <key> (or the key as HTTP Basic username)")]
    Unauthorized,
    /// Too many failed authentications from this source this minute.
    #[error("too many failed authentications from this address: try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// SHA-256 of the admin key; None when keys are off.
    admin_hash: Option<[u8; 32]>,
    enabled: bool,
    /// Client keys by hash, for the cache TTL, on the service's clock.
    remembered: Memo<[u8; 32], Arc<Principal>>,
    /// Failed authentications per source address this minute.
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>,
}

/// Failed authentications a source may make in a minute; past them it is
/// answered 429 for the rest of that minute (SPEC §4).
pub const FAILURES_PER_MINUTE: u32 = 10;

/// Sources whose failures are counted at once: past it, old minutes are
/// dropped, and new sources go uncounted until the next minute (bounded
/// memory whatever the number of addresses).
const MAX_SOURCES: usize = 65_536;

impl Authenticator {
    /// Keys checked against `service`'s store, remembered for its cache TTL
    /// on its clock. `admin_key: None` with `enabled` means no admin access
    /// at all.
    pub fn new(service: &CredentialEngine, admin_key: Option<&str>, enabled: bool) -> Self {
        Authenticator {
            store: service.store().clone(),
            clock: service.clock().clone(),
            admin_hash: admin_key.map(digest),
            enabled,
            remembered: Memo::new(service.config().cache_ttl.as_millis() as i64),
            failures: Default::default(),
        }
    }

    /// [`Authenticator::authenticate`] for a request from `source`: a key
    /// that is presented and unknown counts as a failure of that source
    /// ([`Authenticator::failed`]). Valid keys pass however many failures
    /// their source made.
    pub async fn authenticate_from(
        &self,
        source: Option<std::net::IpAddr>,
        authorization: Option<&str>,
    ) -> Result<Arc<Principal>, AuthError> {
        match self.authenticate(authorization).await {
            Err(AuthError::Unauthorized) if authorization.and_then(presented_key).is_some() => Err(self.failed(source)),
            other => other,
        }
    }

    /// Counts a failed authentication (an unknown key, a wrong console
    /// sign-in) from `source`: `Unauthorized` while the source has made at
    /// most [`FAILURES_PER_MINUTE`] this minute, `Throttled` after.
    pub fn failed(&self, source: Option<std::net::IpAddr>) -> AuthError {
        let Some(ip) = source else {
            return AuthError::Unauthorized;
        };
        let now = self.clock.now_ms();
        let minute = now.div_euclid(60_000);
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            map.retain(|_, (m, _)| *m == minute);
            if map.len() >= MAX_SOURCES {
                return AuthError::Unauthorized;
            }
        }
        let entry = map.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 > FAILURES_PER_MINUTE {
            let left_ms = (minute + 1) * 60_000 - now;
            metrics::counter!("wetoken_auth_throttled_total").increment(1);
            AuthError::Throttled {
                retry_after_secs: (left_ms.max(1) as u64).div_ceil(1000),
            }
        } else {
            AuthError::Unauthorized
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Authenticates an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        if !self.enabled {
            return Ok(admin());
        }
        let key = authorization.and_then(presented_key).ok_or(AuthError::Unauthorized)?;
        self.authenticate_key(&key).await
    }

    /// Authenticates a key as typed (the console's sign-in form): the one
    /// check every presented key goes through.
    pub async fn authenticate_key(&self, key: &str) -> Result<Arc<Principal>, AuthError> {
        if !self.enabled {
            return Ok(admin());
        }
        if key.is_empty() {
            return Err(AuthError::Unauthorized);
        }
        let hash = digest(key);
        if let Some(admin) = &self.admin_hash
            && ct_eq(admin, &hash)
        {
            return Ok(self::admin());
        }
        let now = self.clock.now_ms();
        let lookup = async {
            let key = self.store.key_by_hash(&hex::encode(hash)).await?;
            Ok::<_, StoreError>(key.map(|key| {
                Arc::new(Principal::Client {
                    name: key.name,
                    patterns: key.accounts,
                    tokens: key.tokens,
                    paths: key.paths,
                })
            }))
        };
        self.remembered
            .resolve(&hash, now, lookup)
            .await?
            .ok_or(AuthError::Unauthorized)
    }

    /// Forget remembered keys (after a key is deleted).
    pub fn forget_all(&self) {
        self.remembered.clear();
    }
}

/// The admin principal, one allocation per process.
fn admin() -> Arc<Principal> {
    static ADMIN: std::sync::LazyLock<Arc<Principal>> = std::sync::LazyLock::new(|| Arc::new(Principal::Admin));
    ADMIN.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
    }

    #[test]
    fn keys_come_as_bearer_or_basic() {
        assert_eq!(presented_key("Bearer wtk_abc").as_deref(), Some("wtk_abc"));
        assert_eq!(presented_key("bearer  wtk_abc ").as_deref(), Some("wtk_abc"));
        assert_eq!(
            presented_key(&basic("wtk_abc:")).as_deref(),
            Some("wtk_abc"),
            "the username"
        );
        assert_eq!(
            presented_key(&basic("wtk_abc")).as_deref(),
            Some("wtk_abc"),
            "no colon at all"
        );
        assert_eq!(
            presented_key(&basic(":wtk_abc")).as_deref(),
            Some("wtk_abc"),
            "the password, no username"
        );
        assert_eq!(presented_key(&basic("wtk_abc:ignored")).as_deref(), Some("wtk_abc"));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic !!!",
            "Token wtk_abc",
            &basic(":"),
            &basic(&"k".repeat(300)),
        ] {
            assert_eq!(presented_key(bad), None, "{bad:?}");
        }
        assert_eq!(presented_key(&format!("Basic {}", "A".repeat(5000))), None, "bounded");
    }
}
