//! What WeChat-compatible callers need (SPEC §6): they present secrets and
//! tokens, not wetoken keys. Which account a presented token belongs to
//! (current, or replaced within WeChat's grace), and whether a presented
//! secret is an account's — compared in constant time.
//!
//! SDKs present the same token or secret on every call, so what one resolved
//! to is remembered for the cache TTL, as values are: another instance's
//! change to an account is seen within that TTL, this instance's at once
//! (`forget`).

use super::{Accounts, Result};
use crate::account::AccountStatus;
use crate::domain::{AccountId, Credential, Ident};
use crate::keys::hash_key;

/// A presented secret, checked against an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCheck {
    Matches(AccountId),
    Wrong,
    NoAccount,
}

impl Accounts {
    /// Whether `presented` opens an account for `scope`: remembered (by its
    /// hash) for the cache TTL when it did, and while the database cannot
    /// say; else `check` (the database read) decides.
    async fn recall_secret(
        &self,
        scope: &str,
        presented: &str,
        check: impl std::future::Future<Output = Result<SecretCheck>>,
    ) -> Result<SecretCheck> {
        let hash = hash_key(&format!("{scope}\n{presented}"));
        let mut miss = SecretCheck::NoAccount;
        let lookup = async {
            match check.await? {
                SecretCheck::Matches(id) => Ok::<_, super::ServiceError>(Some(id)),
                other => {
                    miss = other;
                    Ok(None)
                }
            }
        };
        let found = self
            .engine
            .inner
            .secrets
            .resolve(&hash, self.engine.inner.now_ms(), lookup)
            .await?;
        Ok(found.map_or(miss, SecretCheck::Matches))
    }

    /// SPEC §4: an unknown id costs what a wrong secret does (the same
    /// database read, and one AES-GCM operation in place of opening the
    /// account's secrets), so the time of an answer tells nothing more than
    /// WeChat's own errcode does.
    fn as_costly_as_opening_an_account(&self) {
        let _ = self.engine.inner.key.opens_check(&self.engine.inner.key.check_value());
    }

    /// The account and credential a presented token is: the current value or
    /// one replaced less than WeChat's grace ago. Remembered for the cache TTL.
    pub async fn owner_of(&self, token: &str) -> Result<Option<(AccountId, Credential)>> {
        let hash = hash_key(token);
        let now = self.engine.inner.now_ms();
        let inner = &self.engine.inner;
        let lookup = async {
            let row = inner.store.credential_by_hash(&hash, now).await?;
            Ok::<_, crate::store::StoreError>(row.map(|r| (r.account, r.credential)))
        };
        Ok(inner.owners.resolve(&hash, now, lookup).await?)
    }

    /// Whether `presented` is the `secret` of account `id`.
    pub async fn check_secret(&self, id: &AccountId, presented: &str) -> Result<SecretCheck> {
        let check = async {
            let Some(a) = self.engine.inner.any_account(id).await? else {
                self.as_costly_as_opening_an_account();
                return Ok(SecretCheck::NoAccount);
            };
            if a.status == AccountStatus::Revoked {
                return Ok(SecretCheck::NoAccount);
            }
            Ok(match &a.secrets.secret {
                Some(s) if s.matches(presented) => SecretCheck::Matches(a.id),
                _ => SecretCheck::Wrong,
            })
        };
        self.recall_secret(&id.to_string(), presented, check).await
    }

    /// The WeCom app of `corpid` whose secret is `presented` (gettoken's
    /// corpid + corpsecret name an app only through its secret: the first
    /// call reads that corp's apps, an index range, never every account).
    pub async fn work_app_by_secret(&self, corpid: &Ident, presented: &str) -> Result<SecretCheck> {
        let check = async {
            let mut known = false;
            for stored in self.engine.inner.with_prefix(&format!("work:{corpid}:")).await? {
                let a = self.engine.inner.open_account(stored)?;
                known = true;
                if a.secrets.secret.as_ref().is_some_and(|s| s.matches(presented)) {
                    return Ok(SecretCheck::Matches(a.id));
                }
            }
            Ok(if known {
                SecretCheck::Wrong
            } else {
                self.as_costly_as_opening_an_account();
                SecretCheck::NoAccount
            })
        };
        self.recall_secret(&format!("work:{corpid}"), presented, check).await
    }
}
