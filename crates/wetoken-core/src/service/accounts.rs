//! Accounts (SPEC §3): create, list, show, patch (a rotation drops the
//! credentials derived from the old secret), delete. Answers are
//! [`AccountView`]s: identifiers, settings and credential state, never a
//! secret.

use super::{AccountView, CredentialService, Result, ServiceError, not_found};
use crate::account::{Account, AccountPatch, AccountStatus, NewAccount, SUPPORTED_KINDS};
use crate::clock::to_millis;
use crate::domain::AccountId;
use crate::store::StoreError;

impl CredentialService {
    pub async fn create_account(&self, new: NewAccount) -> Result<AccountView> {
        if !SUPPORTED_KINDS.contains(&new.id.kind()) {
            return Err(ServiceError::Invalid(format!(
                "kind {} is not supported by this version of wetoken yet",
                new.id.kind()
            )));
        }
        self.require_parent(&new.id).await?;
        let now = to_millis(self.now());
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
            .inner
            .store
            .insert_account(&account.seal(&self.inner.key), &[])
            .await
        {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("account {} already exists", account.id))),
            r => r.map_err(ServiceError::from),
        }?;
        Ok(AccountView::new(&account, &[]))
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountView>> {
        let stored = self.inner.store.accounts(None).await?;
        let mut out = Vec::with_capacity(stored.len());
        for a in stored {
            let account = self.inner.open_account(a)?;
            let creds = self.inner.store.credentials(&account.id).await?;
            out.push(AccountView::new(&account, &creds));
        }
        Ok(out)
    }

    pub async fn show_account(&self, id: &AccountId) -> Result<AccountView> {
        let account = self.inner.account(id).await?;
        let creds = self.inner.store.credentials(id).await?;
        Ok(AccountView::new(&account, &creds))
    }

    /// Applies a patch. A changed secret (or token API) drops the account's
    /// credentials; any patch clears recorded blocks (a manual reset).
    pub async fn patch_account(&self, id: &AccountId, patch: AccountPatch) -> Result<AccountView> {
        let mut account = self.inner.account(id).await?;
        let drop = patch.invalidates_credentials();
        patch.apply(&mut account);
        account.updated_at = to_millis(self.now());
        match self
            .inner
            .store
            .update_account(&account.seal(&self.inner.key), drop, &[])
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id)),
            r => r.map_err(ServiceError::from),
        }?;
        self.inner.store.clear_blocks(id, to_millis(self.now())).await?;
        if drop {
            self.forget(id);
        }
        self.show_account(id).await
    }

    pub async fn delete_account(&self, id: &AccountId) -> Result<()> {
        let existed = self.inner.store.delete_account(id).await?;
        self.forget(id);
        if existed { Ok(()) } else { Err(not_found(id)) }
    }
}
