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
    /// A secret presented for `scope` that opened an account recently.
    fn recalled_secret(&self, scope: &str, presented: &str) -> (String, Option<AccountId>) {
        let hash = hash_key(&format!("{scope}\n{presented}"));
        let hit = self.engine.inner.secrets.get(&hash, self.engine.inner.now_ms());
        (hash, hit)
    }

    fn remember_secret(&self, hash: String, check: &SecretCheck) {
        if let SecretCheck::Matches(id) = check {
            self.engine
                .inner
                .secrets
                .put(hash, id.clone(), self.engine.inner.now_ms());
        }
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
        if let Some(owner) = self.engine.inner.owners.get(&hash, now) {
            return Ok(Some(owner));
        }
        let owner = self
            .engine
            .inner
            .store
            .credential_by_hash(&hash, now)
            .await?
            .map(|r| (r.account, r.credential));
        if let Some(o) = &owner {
            self.engine.inner.owners.put(hash, o.clone(), now);
        }
        Ok(owner)
    }

    /// Whether `presented` is the `secret` of account `id`.
    pub async fn check_secret(&self, id: &AccountId, presented: &str) -> Result<SecretCheck> {
        let (hash, hit) = self.recalled_secret(&id.to_string(), presented);
        if let Some(id) = hit {
            return Ok(SecretCheck::Matches(id));
        }
        let Some(a) = self.engine.inner.any_account(id).await? else {
            self.as_costly_as_opening_an_account();
            return Ok(SecretCheck::NoAccount);
        };
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
    /// corpid + corpsecret name an app only through its secret: the first
    /// call reads that corp's apps, an index range, never every account).
    pub async fn work_app_by_secret(&self, corpid: &Ident, presented: &str) -> Result<SecretCheck> {
        let (hash, hit) = self.recalled_secret(&format!("work:{corpid}"), presented);
        if let Some(id) = hit {
            return Ok(SecretCheck::Matches(id));
        }
        let mut known = false;
        for stored in self.engine.inner.with_prefix(&format!("work:{corpid}:")).await? {
            let a = self.engine.inner.open_account(stored)?;
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
            self.as_costly_as_opening_an_account();
            SecretCheck::NoAccount
        })
    }
}
