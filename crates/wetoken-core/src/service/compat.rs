//! What WeChat-compatible callers need (SPEC §6): they present secrets and
//! tokens, not wetoken keys. Which account a presented token belongs to
//! (current, or replaced within WeChat's grace), and whether a presented
//! secret is an account's — compared in constant time.
//!
//! SDKs present the same token or secret on every call, so what one resolved
//! to is remembered for the cache TTL, as values are: another instance's
//! change to an account is seen within that TTL, this instance's at once
//! (`forget`).

use std::collections::HashMap;
use std::sync::RwLock;

use super::{CredentialService, Result};
use crate::account::AccountStatus;
use crate::domain::{AccountId, AccountKind, Credential, Ident};
use crate::keys::hash_key;

/// A presented secret, checked against an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCheck {
    Matches(AccountId),
    Wrong,
    NoAccount,
}

/// What presented tokens or secrets resolved to, by their SHA-256 (the
/// presented text itself is not kept), with when (ms) that was read.
pub(super) struct Recall<V> {
    map: RwLock<HashMap<String, (V, i64)>>,
}

impl<V> Default for Recall<V> {
    fn default() -> Self {
        Recall { map: RwLock::default() }
    }
}

impl<V: Clone> Recall<V> {
    /// At most this many are remembered; beyond, the memo starts over.
    const CAPACITY: usize = 100_000;

    fn get(&self, hash: &str, now: i64, ttl_ms: i64) -> Option<V> {
        let map = self.map.read().unwrap();
        let (v, at) = map.get(hash)?;
        (now - at < ttl_ms).then(|| v.clone())
    }

    fn put(&self, hash: String, v: V, now: i64) {
        let mut map = self.map.write().unwrap();
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(hash, (v, now));
    }

    pub(super) fn retain(&self, keep: impl Fn(&V) -> bool) {
        self.map.write().unwrap().retain(|_, (v, _)| keep(v));
    }
}

impl CredentialService {
    fn ttl_ms(&self) -> i64 {
        self.inner.cfg.cache_ttl.as_millis() as i64
    }

    /// A secret presented for `scope` that opened an account recently.
    fn recalled_secret(&self, scope: &str, presented: &str) -> (String, Option<AccountId>) {
        let hash = hash_key(&format!("{scope}\n{presented}"));
        let hit = self.inner.secrets.get(&hash, self.inner.now_ms(), self.ttl_ms());
        (hash, hit)
    }

    fn remember_secret(&self, hash: String, check: &SecretCheck) {
        if let SecretCheck::Matches(id) = check {
            self.inner.secrets.put(hash, id.clone(), self.inner.now_ms());
        }
    }

    /// The account and credential a presented token is: the current value or
    /// one replaced less than WeChat's grace ago. Remembered for the cache TTL.
    pub async fn owner_of(&self, token: &str) -> Result<Option<(AccountId, Credential)>> {
        let hash = hash_key(token);
        let now = self.inner.now_ms();
        if let Some(owner) = self.inner.owners.get(&hash, now, self.ttl_ms()) {
            return Ok(Some(owner));
        }
        let owner = self
            .inner
            .store
            .credential_by_hash(&hash, now)
            .await?
            .and_then(|r| Some((r.account_id.parse().ok()?, r.kind.parse().ok()?)));
        if let Some(o) = &owner {
            self.inner.owners.put(hash, o.clone(), now);
        }
        Ok(owner)
    }

    /// Whether `presented` is the `secret` of account `id`.
    pub async fn check_secret(&self, id: &AccountId, presented: &str) -> Result<SecretCheck> {
        let sid = id.to_string();
        let (hash, hit) = self.recalled_secret(&sid, presented);
        if let Some(id) = hit {
            return Ok(SecretCheck::Matches(id));
        }
        let Some(row) = self.inner.store.account(&sid).await? else {
            return Ok(SecretCheck::NoAccount);
        };
        let a = self.inner.decode_account(&row)?;
        if a.status == AccountStatus::Revoked {
            return Ok(SecretCheck::NoAccount);
        }
        let check = match &a.secrets.secret {
            Some(s) if s.matches(presented) => SecretCheck::Matches(a.id),
            _ => SecretCheck::Wrong,
        };
        self.remember_secret(hash, &check);
        Ok(check)
    }

    /// The WeCom app of `corpid` whose secret is `presented` (gettoken's
    /// corpid + corpsecret name an app only through its secret, so the
    /// first call reads every account).
    pub async fn work_app_by_secret(&self, corpid: &Ident, presented: &str) -> Result<SecretCheck> {
        let (hash, hit) = self.recalled_secret(&format!("work:{corpid}"), presented);
        if let Some(id) = hit {
            return Ok(SecretCheck::Matches(id));
        }
        let mut known = false;
        for row in self.inner.store.accounts(None).await? {
            if row.kind != AccountKind::Work.as_str() {
                continue;
            }
            let a = self.inner.decode_account(&row)?;
            let AccountId::Work { corpid: c, .. } = &a.id else {
                continue;
            };
            if c != corpid {
                continue;
            }
            known = true;
            if a.secrets.secret.as_ref().is_some_and(|s| s.matches(presented)) {
                let check = SecretCheck::Matches(a.id);
                self.remember_secret(hash, &check);
                return Ok(check);
            }
        }
        Ok(if known {
            SecretCheck::Wrong
        } else {
            SecretCheck::NoAccount
        })
    }
}
