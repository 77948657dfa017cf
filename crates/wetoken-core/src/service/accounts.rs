//! Accounts (SPEC §3): create, list, show, patch (a rotation drops the
//! credentials derived from the old secret), delete. Answers are
//! [`AccountView`]s: identifiers, settings and credential state, never a
//! secret.

use std::collections::HashMap;

use super::{AccountFilter, AccountView, Accounts, Page, Result, ServiceError, not_found};
use crate::account::{Account, AccountPatch, AccountStatus, NewAccount, SUPPORTED_KINDS};
use crate::clock::to_millis;
use crate::domain::AccountId;
use crate::store::{AccountQuery, CredentialState, StoreError};

impl Accounts {
    pub async fn create_account(&self, new: NewAccount) -> Result<AccountView> {
        if !SUPPORTED_KINDS.contains(&new.id.kind()) {
            return Err(ServiceError::Invalid(format!(
                "kind {} is not supported by this version of wetoken yet",
                new.id.kind()
            )));
        }
        self.engine.inner.require_parent(&new.id).await?;
        let now = to_millis(self.engine.now());
        let mut config = new.config;
        if new.id.parent().is_some() {
            config.authorized_at = Some(now);
        }
        let account = Account {
            id: new.id,
            secrets: new.secrets,
            config,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
        };
        match self
            .engine
            .inner
            .store
            .insert_account(&account.seal(&self.engine.inner.key), &[])
            .await
        {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("account {} already exists", account.id))),
            r => r.map_err(ServiceError::from),
        }?;
        Ok(AccountView::new(&account, &[]))
    }

    /// A page of accounts matching `f`, after the account `after` (a
    /// previous page's cursor), at most `limit`: one range scan for the
    /// accounts and one for their credentials, whatever the total.
    pub async fn list_accounts(&self, f: &AccountFilter, after: Option<&str>, limit: i64) -> Result<Page<AccountView>> {
        let Some(prefix) = f.prefix() else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let q = AccountQuery {
            prefix,
            after: after.map(str::to_owned),
            status: f.status,
            not_status: None,
            limit,
        };
        let stored = self.accounts.accounts_page(&q).await?;
        let mut creds: HashMap<AccountId, Vec<CredentialState>> = HashMap::new();
        if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
            for c in self.accounts.credentials_between(&first.id, &last.id).await? {
                creds.entry(c.account.clone()).or_default().push(c);
            }
        }
        let mut views = Vec::with_capacity(stored.len());
        for a in stored {
            let account = self.engine.inner.open_account(a)?;
            let rows = creds.remove(&account.id).unwrap_or_default();
            views.push(AccountView::new(&account, &rows));
        }
        Ok(Page::of(views, limit, |v| v.id.to_string()))
    }

    pub async fn show_account(&self, id: &AccountId) -> Result<AccountView> {
        let account = self.engine.inner.account(id).await?;
        let creds = self.accounts.credentials(id).await?;
        Ok(AccountView::new(&account, &creds))
    }

    /// Applies a patch. A changed secret (or token API) drops the account's
    /// credential values and their blocks (the failures recorded stay until
    /// a value comes, which then raises `recovered`); any other patch clears
    /// recorded blocks and errors (a manual reset).
    pub async fn patch_account(&self, id: &AccountId, patch: AccountPatch) -> Result<AccountView> {
        let mut account = self.engine.inner.account(id).await?;
        let drop = patch.invalidates_credentials();
        patch.apply(&mut account);
        account.updated_at = to_millis(self.engine.now());
        match self
            .engine
            .inner
            .store
            .update_account(&account.seal(&self.engine.inner.key), drop, &[])
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id)),
            r => r.map_err(ServiceError::from),
        }?;
        self.signers.forget(id);
        if drop {
            self.engine.forget(id);
        } else {
            self.accounts.clear_blocks(id, to_millis(self.engine.now())).await?;
        }
        self.show_account(id).await
    }

    pub async fn delete_account(&self, id: &AccountId) -> Result<()> {
        let existed = self.accounts.delete_account(id).await?;
        self.engine.forget(id);
        self.signers.forget(id);
        if existed { Ok(()) } else { Err(not_found(id)) }
    }
}
