//! API keys (SPEC §3): created with a name and account patterns, stored as
//! SHA-256, listed without the key.

use super::{Custody, KeyView, Result, ServiceError};
use crate::clock::to_millis;
use crate::keys::{Pattern, check_name, generate_key, hash_key};
use crate::store::{ApiKey, StoreError};

impl Custody {
    /// Creates a client key; returns the key itself, shown only now. With
    /// `tokens` false it cannot read tokens or tickets; with `paths`, it may
    /// call only those WeChat paths through the token-free proxy.
    pub async fn create_key(
        &self,
        name: &str,
        patterns: &[Pattern],
        tokens: bool,
        paths: Option<Vec<crate::keys::PathPattern>>,
    ) -> Result<String> {
        check_name(name).map_err(|e| ServiceError::Invalid(e.0))?;
        if patterns.is_empty() {
            return Err(ServiceError::Invalid("accounts must name at least one pattern".into()));
        }
        let key = generate_key();
        let row = ApiKey {
            name: name.to_owned(),
            hash: hash_key(&key),
            accounts: patterns.to_vec(),
            tokens,
            paths,
            created_at: to_millis(self.engine.now()),
        };
        match self.keys.insert_key(&row).await {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("key {name} already exists"))),
            r => r.map_err(ServiceError::from),
        }?;
        Ok(key)
    }

    /// A page of keys by name, after the key `after`.
    pub async fn list_keys(&self, after: Option<&str>, limit: i64) -> Result<super::Page<KeyView>> {
        let keys = self.keys.keys_page(after, limit).await?;
        Ok(super::Page::of(keys, limit, |k| k.name.clone()).map(KeyView::from))
    }

    pub async fn delete_key(&self, name: &str) -> Result<()> {
        if self.keys.delete_key(name).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no key named {name:?}")))
        }
    }
}
