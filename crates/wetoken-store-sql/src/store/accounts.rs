//! Accounts and their credentials.

use async_trait::async_trait;
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::NewEvent;
use wetoken_core::store::{
    AccountQuery, AccountStore, CredentialState, FailureWrite, ForceBudget, PushWrite, RefreshWrite, Sealed,
    StoreError, StoreResult, StoredAccount, Verdict,
};

use super::{SqlStore, append, encode_events, ensure_row, page, work};
use crate::binds;
use crate::columns;
use crate::query::page_binds;
use crate::rows::AccountRow;
use crate::tx::{Backend, Tx};

#[async_trait]
impl<B: Backend> AccountStore for SqlStore<B> {
    async fn insert_account(&self, a: &StoredAccount, events: &[NewEvent]) -> StoreResult<()> {
        let (r, events) = (AccountRow::encode(a), encode_events(events));
        work!(self, transaction, |tx, sql| {
            tx.execute(
                sql.insert_account,
                &binds![
                    &r.id,
                    &r.kind,
                    &r.parent_id,
                    &r.secrets,
                    &r.config,
                    &r.status,
                    r.created_at,
                    r.updated_at
                ],
            )
            .await?;
            append(tx, &events).await.map(drop)
        })
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>> {
        let id = id.to_string();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_account, &binds![&id], columns::account).await
        })
    }

    async fn accounts_page(&self, q: &AccountQuery) -> StoreResult<Vec<StoredAccount>> {
        let (b, limit) = (page_binds(q), q.limit);
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_accounts_page, &page(&b, limit), columns::account)
                .await
        })
    }

    async fn update_account(&self, a: &StoredAccount, drop_credentials: bool, events: &[NewEvent]) -> StoreResult<()> {
        let (r, events) = (AccountRow::encode(a), encode_events(events));
        work!(self, transaction, |tx, sql| {
            let n = tx
                .execute(
                    sql.update_account,
                    &binds![&r.secrets, &r.config, &r.status, r.updated_at, &r.id],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if drop_credentials {
                tx.execute(sql.delete_account_credentials, &binds![&r.id]).await?;
            }
            append(tx, &events).await.map(drop)
        })
    }

    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
        let id = id.to_string();
        work!(self, transaction, |tx, sql| {
            tx.execute(sql.delete_family_credentials, &binds![&id, &id]).await?;
            tx.execute(sql.delete_family_session_keys, &binds![&id, &id]).await?;
            tx.execute(sql.delete_child_accounts, &binds![&id]).await?;
            Ok(tx.execute(sql.delete_account, &binds![&id]).await? > 0)
        })
    }

    async fn credential(&self, id: &AccountId, c: Credential) -> StoreResult<Option<CredentialState>> {
        let id = id.to_string();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_credential, &binds![&id, c.as_str()], columns::credential)
                .await
        })
    }

    async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>> {
        let id = id.to_string();
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_credentials, &binds![&id], columns::credential)
                .await
        })
    }

    async fn credentials_between(&self, first: &AccountId, last: &AccountId) -> StoreResult<Vec<CredentialState>> {
        let (first, last) = (first.to_string(), last.to_string());
        work!(self, autocommit, |tx, sql| {
            tx.fetch(
                sql.select_credentials_between,
                &binds![&first, &last],
                columns::credential,
            )
            .await
        })
    }

    async fn try_lease(
        &self,
        id: &AccountId,
        c: Credential,
        owner: &str,
        seen_version: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.to_string(), owner.to_owned());
        work!(self, autocommit, |tx, sql| {
            ensure_row(tx, &id, c.as_str()).await?;
            let n = tx
                .execute(sql.take_lease, &binds![&owner, lease_ms, &id, c.as_str(), seen_version])
                .await?;
            Ok(n == 1)
        })
    }

    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
        let (id, c, owner) = (w.account.to_string(), w.credential, w.owner.to_owned());
        let (value, hash) = (w.value.as_str().to_owned(), w.value_hash.to_owned());
        let (previous_until, expires_at, refreshed_at, due_at) =
            (w.previous_until, w.expires_at, w.refreshed_at, w.due_at);
        let secrets = w.account_secrets.map(|s| s.as_str().to_owned());
        let events = encode_events(w.events);
        work!(self, transaction, |tx, sql| {
            let n = tx
                .execute(
                    sql.complete_refresh,
                    &binds![
                        previous_until,
                        &hash,
                        &value,
                        expires_at,
                        refreshed_at,
                        due_at,
                        &id,
                        c.as_str(),
                        &owner
                    ],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            let version = tx.int(sql.select_version, &binds![&id, c.as_str()]).await?;
            if let Some(secrets) = &secrets {
                tx.execute(sql.update_account_secrets, &binds![secrets, refreshed_at, &id])
                    .await?;
            }
            append(tx, &events).await?;
            Ok(Some(version))
        })
    }

    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<bool> {
        let (id, c, owner) = (w.account.to_string(), w.credential, w.owner.to_owned());
        let (errcode, errmsg, at) = (w.error.errcode, w.error.errmsg.clone(), w.error.at);
        let (blocked_until, due_at, attempts) = (w.blocked_until, w.due_at, w.attempts);
        let events = encode_events(w.events);
        work!(self, transaction, |tx, sql| {
            let n = tx
                .execute(
                    sql.record_failure,
                    &binds![
                        errcode,
                        &errmsg,
                        at,
                        blocked_until,
                        due_at,
                        attempts,
                        &id,
                        c.as_str(),
                        &owner
                    ],
                )
                .await?;
            if n == 1 {
                append(tx, &events).await?;
            }
            Ok(n == 1)
        })
    }

    async fn put_pushed(&self, w: &PushWrite<'_>) -> StoreResult<Option<i64>> {
        let (id, c, value) = (w.account.to_string(), w.credential, w.value.as_str().to_owned());
        let (expires_at, at, stale_at) = (w.expires_at, w.at, w.stale_at);
        let events = encode_events(w.events);
        let key = id.clone();
        work!(self, autocommit, |tx, _sql| { ensure_row(tx, &key, c.as_str()).await })?;
        work!(self, transaction, |tx, sql| {
            let n = tx
                .execute(
                    sql.put_pushed,
                    &binds![&value, expires_at, at, stale_at, &id, c.as_str(), at],
                )
                .await?;
            let version = if n == 0 {
                None
            } else {
                Some(tx.int(sql.select_version, &binds![&id, c.as_str()]).await?)
            };
            append(tx, &events).await?;
            Ok(version)
        })
    }

    async fn mark_pushed_stale(
        &self,
        id: &AccountId,
        c: Credential,
        version: i64,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let (id, events) = (id.to_string(), encode_events(events));
        work!(self, transaction, |tx, sql| {
            let n = tx
                .execute(sql.mark_pushed_stale, &binds![&id, c.as_str(), version])
                .await?;
            if n == 1 {
                append(tx, &events).await?;
            }
            Ok(n == 1)
        })
    }

    async fn try_mark_forced(&self, id: &AccountId, c: Credential, interval_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        work!(self, autocommit, |tx, sql| {
            ensure_row(tx, &id, c.as_str()).await?;
            Ok(tx
                .execute(sql.mark_forced, &binds![&id, c.as_str(), interval_ms])
                .await?
                == 1)
        })
    }

    async fn record_verdict(&self, id: &AccountId, c: Credential, version: i64, verdict: Verdict) -> StoreResult<bool> {
        let id = id.to_string();
        work!(self, autocommit, |tx, sql| {
            let alive = i64::from(verdict.alive);
            let n = tx
                .execute(sql.record_verdict, &binds![verdict.at, alive, &id, c.as_str(), version])
                .await?;
            Ok(n == 1)
        })
    }

    async fn try_force_today(
        &self,
        id: &AccountId,
        c: Credential,
        max: i64,
        spent_events: &[NewEvent],
    ) -> StoreResult<ForceBudget> {
        let (id, events) = (id.to_string(), encode_events(spent_events));
        work!(self, transaction, |tx, sql| {
            if tx.execute(sql.force_today, &binds![&id, c.as_str(), max]).await? == 1 {
                return Ok(ForceBudget::Granted);
            }
            let first = tx.execute(sql.force_spent_once, &binds![&id, c.as_str(), max]).await? == 1;
            if first {
                append(tx, &events).await?;
            }
            Ok(ForceBudget::Spent { first })
        })
    }

    async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()> {
        let id = id.to_string();
        work!(self, transaction, |tx, sql| {
            tx.execute(sql.clear_blocks_filled, &binds![now, &id]).await?;
            tx.execute(sql.clear_blocks_empty, &binds![&id]).await.map(drop)
        })
    }

    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>> {
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_due, &binds![now, now, limit], columns::credential)
                .await
        })
    }

    async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>> {
        let hash = hash.to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_by_hash, &binds![&hash, &hash, now], columns::credential)
                .await
        })
    }

    async fn reseal_account(&self, read: &StoredAccount, secrets: &Sealed) -> StoreResult<bool> {
        let (secrets, id, at) = (secrets.as_str().to_owned(), read.id.to_string(), read.updated_at);
        work!(self, autocommit, |tx, sql| {
            Ok(tx.execute(sql.reseal_account, &binds![&secrets, &id, at]).await? == 1)
        })
    }

    async fn reseal_value(&self, read: &CredentialState, value: &Sealed) -> StoreResult<bool> {
        let (value, id, c, version) = (
            value.as_str().to_owned(),
            read.account.to_string(),
            read.credential,
            read.version,
        );
        work!(self, autocommit, |tx, sql| {
            Ok(tx
                .execute(sql.reseal_value, &binds![&value, &id, c.as_str(), version])
                .await?
                == 1)
        })
    }

    async fn count_accounts(&self, q: &AccountQuery) -> StoreResult<i64> {
        let (b, limit) = (page_binds(q), q.limit);
        work!(self, autocommit, |tx, sql| {
            tx.int(sql.count_accounts, &page(&b, limit)).await
        })
    }

    async fn failing_credentials(&self, limit: i64) -> StoreResult<Vec<CredentialState>> {
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_failing, &binds![limit], columns::credential).await
        })
    }
}
