//! Account and API key management on the credential service.

use serde_json::{Map, Value, json};

use super::{CredentialService, Result, ServiceError, not_found, rfc3339_ms};
use crate::account::{Account, AccountPatch, AccountStatus, NewAccount, SUPPORTED_KINDS};
use crate::clock::to_millis;
use crate::domain::AccountId;
use crate::keys::{Pattern, check_name, generate_key, hash_key};
use crate::store::{CredentialRow, KeyRow, StoreError};

impl CredentialService {
    // ------------------------------------------------------------------
    // Accounts

    pub async fn create_account(&self, new: NewAccount) -> Result<Value> {
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
        match self.inner.store.insert_account(&self.inner.account_row(&account)).await {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("account {} already exists", account.id))),
            r => r.map_err(ServiceError::from),
        }?;
        self.describe(&account, &[]).map(Value::Object)
    }

    pub async fn list_accounts(&self) -> Result<Vec<Value>> {
        let rows = self.inner.store.accounts(None).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let account = self.inner.decode_account(&row)?;
            let creds = self.inner.store.credentials(&row.id).await?;
            out.push(Value::Object(self.describe(&account, &creds)?));
        }
        Ok(out)
    }

    pub async fn show_account(&self, id: &AccountId) -> Result<Value> {
        let account = self.inner.account(id).await?;
        let creds = self.inner.store.credentials(&id.to_string()).await?;
        self.describe(&account, &creds).map(Value::Object)
    }

    /// Applies a patch. A changed secret (or token API) drops the account's
    /// credentials; any patch clears recorded blocks (a manual reset).
    pub async fn patch_account(&self, id: &AccountId, patch: AccountPatch) -> Result<Value> {
        let mut account = self.inner.account(id).await?;
        let drop = patch.invalidates_credentials();
        patch.apply(&mut account);
        account.updated_at = to_millis(self.now());
        match self
            .inner
            .store
            .update_account(&self.inner.account_row(&account), drop)
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id)),
            r => r.map_err(ServiceError::from),
        }?;
        self.inner
            .store
            .clear_blocks(&id.to_string(), to_millis(self.now()))
            .await?;
        if drop {
            self.forget(id);
        }
        self.show_account(id).await
    }

    pub async fn delete_account(&self, id: &AccountId) -> Result<()> {
        let existed = self.inner.store.delete_account(&id.to_string()).await?;
        self.forget(id);
        if existed { Ok(()) } else { Err(not_found(id)) }
    }

    /// The API view of an account (SPEC §3): id, kind, identifiers, settings
    /// and credential status; never a secret.
    fn describe(&self, a: &Account, creds: &[CredentialRow]) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        m.insert("id".into(), a.id.to_string().into());
        m.insert("kind".into(), a.id.kind().as_str().into());
        for (k, v) in a.id.fields() {
            m.insert(k.into(), v.into());
        }
        if a.id.kind() == crate::domain::AccountKind::Mp {
            m.insert("token_api".into(), a.config.token_api.as_str().into());
        }
        if let Some(agentid) = &a.config.agentid {
            m.insert("agentid".into(), agentid.clone().into());
        }
        m.insert("status".into(), a.status.as_str().into());
        m.insert("created_at".into(), rfc3339_ms(a.created_at).into());
        m.insert("updated_at".into(), rfc3339_ms(a.updated_at).into());
        let mut cm = Map::new();
        for cred in a.id.kind().credentials() {
            let row = creds.iter().find(|r| r.kind == cred.as_str());
            let filled = row.filter(|r| r.value.is_some());
            let last_error = row.and_then(|r| {
                Some(json!({
                    "errcode": r.last_errcode?,
                    "errmsg": r.last_errmsg.clone().unwrap_or_default(),
                    "at": rfc3339_ms(r.last_error_at?),
                }))
            });
            cm.insert(
                cred.as_str().into(),
                json!({
                    "expires_at": filled.and_then(|r| r.expires_at).map(rfc3339_ms),
                    "refreshed_at": filled.and_then(|r| r.refreshed_at).map(rfc3339_ms),
                    "last_error": last_error,
                    "blocked_until": row.and_then(|r| r.blocked_until).map(rfc3339_ms),
                }),
            );
        }
        m.insert("credentials".into(), Value::Object(cm));
        Ok(m)
    }

    // ------------------------------------------------------------------
    // API keys

    /// Creates a client key; returns the key itself, shown only now.
    pub async fn create_key(&self, name: &str, patterns: &[Pattern]) -> Result<String> {
        check_name(name).map_err(|e| ServiceError::Invalid(e.0))?;
        if patterns.is_empty() {
            return Err(ServiceError::Invalid("accounts must name at least one pattern".into()));
        }
        let key = generate_key();
        let row = KeyRow {
            name: name.to_owned(),
            hash: hash_key(&key),
            accounts: serde_json::to_string(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
                .expect("strings serialize"),
            created_at: to_millis(self.now()),
        };
        match self.inner.store.insert_key(&row).await {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("key {name} already exists"))),
            r => r.map_err(ServiceError::from),
        }?;
        Ok(key)
    }

    pub async fn list_keys(&self) -> Result<Vec<Value>> {
        Ok(self
            .inner
            .store
            .keys()
            .await?
            .into_iter()
            .map(|k| {
                json!({
                    "name": k.name,
                    "accounts": serde_json::from_str::<Value>(&k.accounts).unwrap_or(Value::Null),
                    "created_at": rfc3339_ms(k.created_at),
                })
            })
            .collect())
    }

    pub async fn delete_key(&self, name: &str) -> Result<()> {
        if self.inner.store.delete_key(name).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no key named {name:?}")))
        }
    }
}
