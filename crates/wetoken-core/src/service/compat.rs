//! What WeChat-compatible callers need (SPEC §6): they present secrets and
//! tokens, not wetoken keys. Which account a presented token belongs to
//! (current, or replaced within WeChat's grace), and whether a presented
//! secret is an account's — compared in constant time.

use std::time::Instant;

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

impl CredentialService {
    /// The account and credential a presented token is: the current value or
    /// one replaced less than WeChat's grace ago. Remembered for the cache TTL.
    pub async fn owner_of(&self, token: &str) -> Result<Option<(AccountId, Credential)>> {
        let hash = hash_key(token);
        let ttl = self.inner.cfg.cache_ttl;
        if let Some((owner, at)) = self.inner.owners.read().unwrap().get(&hash)
            && at.elapsed() < ttl
        {
            return Ok(Some(owner.clone()));
        }
        let now = self.inner.now_ms();
        let owner = self
            .inner
            .store
            .credential_by_hash(&hash, now)
            .await?
            .and_then(|r| Some((r.account_id.parse().ok()?, r.kind.parse().ok()?)));
        if let Some(o) = &owner {
            let mut owners = self.inner.owners.write().unwrap();
            if owners.len() > 100_000 {
                owners.clear();
            }
            owners.insert(hash, (o.clone(), Instant::now()));
        }
        Ok(owner)
    }

    /// Whether `presented` is the `secret` of account `id`.
    pub async fn check_secret(&self, id: &AccountId, presented: &str) -> Result<SecretCheck> {
        let Some(row) = self.inner.store.account(&id.to_string()).await? else {
            return Ok(SecretCheck::NoAccount);
        };
        let a = self.inner.decode_account(&row)?;
        if a.status == AccountStatus::Revoked {
            return Ok(SecretCheck::NoAccount);
        }
        Ok(match &a.secrets.secret {
            Some(s) if s.matches(presented) => SecretCheck::Matches(a.id),
            _ => SecretCheck::Wrong,
        })
    }

    /// The WeCom app of `corpid` whose secret is `presented` (gettoken's
    /// corpid + corpsecret name an app only through its secret).
    pub async fn work_app_by_secret(&self, corpid: &Ident, presented: &str) -> Result<SecretCheck> {
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
                return Ok(SecretCheck::Matches(a.id));
            }
        }
        Ok(if known {
            SecretCheck::Wrong
        } else {
            SecretCheck::NoAccount
        })
    }
}
