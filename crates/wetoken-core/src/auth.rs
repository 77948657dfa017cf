//! Who is calling (SPEC §4): the admin key, a scoped client key, or nobody.
//!
//! Client keys are looked up by their SHA-256 and remembered for a short
//! while, so an authenticated cache hit costs no database read. A deleted
//! key stops working on this instance at once and on others within the
//! remembered time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::AccountId;
use crate::keys::{Pattern, hash_key};
use crate::secret::ct_eq;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Client { name: String, patterns: Vec<Pattern> },
}

impl Principal {
    pub fn may_read(&self, id: &AccountId) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Client { patterns, .. } => patterns.iter().any(|p| p.covers(id)),
        }
    }
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown API key: send Authorization: Bearer <key>")]
    Unauthorized,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    /// SHA-256 of the admin key; None when keys are off.
    admin_hash: Option<String>,
    enabled: bool,
    remembered: Mutex<HashMap<String, (Arc<Principal>, Instant)>>,
    ttl: Duration,
}

impl Authenticator {
    /// `admin_key: None` with `enabled` means no admin access at all.
    pub fn new(store: Arc<dyn Store>, admin_key: Option<&str>, enabled: bool, ttl: Duration) -> Self {
        Authenticator {
            store,
            admin_hash: admin_key.map(hash_key),
            enabled,
            remembered: Mutex::default(),
            ttl,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Authenticates an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        static ADMIN: std::sync::LazyLock<Arc<Principal>> = std::sync::LazyLock::new(|| Arc::new(Principal::Admin));
        if !self.enabled {
            return Ok(ADMIN.clone());
        }
        let key = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or(AuthError::Unauthorized)?;
        let hash = hash_key(key);
        if let Some(admin) = &self.admin_hash
            && ct_eq(admin.as_bytes(), hash.as_bytes())
        {
            return Ok(ADMIN.clone());
        }
        if let Some((p, at)) = self.remembered.lock().unwrap().get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(p.clone());
        }
        let row = self.store.key_by_hash(&hash).await?.ok_or(AuthError::Unauthorized)?;
        let patterns: Vec<String> = serde_json::from_str(&row.accounts).unwrap_or_default();
        let principal = Arc::new(Principal::Client {
            name: row.name,
            patterns: patterns.iter().filter_map(|p| Pattern::parse(p).ok()).collect(),
        });
        let mut remembered = self.remembered.lock().unwrap();
        if remembered.len() > 10_000 {
            remembered.clear();
        }
        remembered.insert(hash, (principal.clone(), Instant::now()));
        Ok(principal)
    }

    /// Forget remembered keys (after a key is deleted).
    pub fn forget_all(&self) {
        self.remembered.lock().unwrap().clear();
    }
}
