//! API keys and master-key checks, the audit trail, console sessions.

use async_trait::async_trait;
use wetoken_core::store::{
    ApiKey, AuditEntry, AuditQuery, AuditStore, KeyCheck, KeyStore, SessionStore, StoreError, StoreResult,
};

use super::{SqlStore, work};
use crate::binds;
use crate::columns;
use crate::query::audit_binds;
use crate::rows::{AuditRow, KeyRow};
use crate::tx::{Backend, Tx};

#[async_trait]
impl<B: Backend> KeyStore for SqlStore<B> {
    async fn key_checks(&self) -> StoreResult<Vec<KeyCheck>> {
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_key_checks, &[], columns::key_check).await
        })
    }

    async fn add_key_check(&self, c: &KeyCheck, now: i64) -> StoreResult<()> {
        let (id, check) = (c.key_id.clone(), c.check.as_str().to_owned());
        work!(self, autocommit, |tx, sql| {
            match tx.execute(sql.insert_key_check, &binds![&id, &check, now]).await {
                // Another instance recorded the same key first.
                Ok(_) | Err(StoreError::Conflict) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    async fn remove_key_check(&self, key_id: &str) -> StoreResult<()> {
        let id = key_id.to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.execute(sql.delete_key_check, &binds![&id]).await.map(drop)
        })
    }

    async fn insert_key(&self, k: &ApiKey) -> StoreResult<()> {
        let k = KeyRow::encode(k);
        work!(self, autocommit, |tx, sql| {
            let b = binds![&k.name, &k.hash, &k.accounts, k.created_at];
            tx.execute(sql.insert_key, &b).await.map(drop)
        })
    }

    async fn keys_page(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<ApiKey>> {
        // Every name sorts after a space.
        let after = after.unwrap_or(" ").to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_keys_page, &binds![&after, limit], columns::key)
                .await
        })
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let hash = hash.to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_key_by_hash, &binds![&hash], columns::key).await
        })
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        work!(self, autocommit, |tx, sql| {
            Ok(tx.execute(sql.delete_key, &binds![&name]).await? > 0)
        })
    }
}

#[async_trait]
impl<B: Backend> AuditStore for SqlStore<B> {
    async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let r = AuditRow::encode(e);
        work!(self, autocommit, |tx, sql| {
            let b = binds![
                &r.id,
                r.called_at,
                &r.key_name,
                &r.account_id,
                &r.method,
                &r.path,
                r.status,
                r.errcode,
                &r.rid
            ];
            tx.execute(sql.insert_audit, &b).await.map(drop)
        })
    }

    async fn audit_page(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let (b, limit) = (audit_binds(q), q.limit);
        work!(self, autocommit, |tx, sql| {
            let b = binds![&b.after, &b.from, &b.key, &b.key, &b.account, &b.account, limit];
            tx.fetch(sql.select_audit, &b, columns::audit).await
        })
    }
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn insert_session(&self, hash: &str, created_at: i64, expires_at: i64) -> StoreResult<()> {
        let hash = hash.to_owned();
        work!(self, autocommit, |tx, sql| {
            let b = binds![&hash, created_at, expires_at];
            tx.execute(sql.insert_session, &b).await.map(drop)
        })
    }

    async fn session_expiry(&self, hash: &str) -> StoreResult<Option<i64>> {
        let hash = hash.to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_session, &binds![&hash], columns::int).await
        })
    }

    async fn delete_session(&self, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        work!(self, autocommit, |tx, sql| {
            Ok(tx.execute(sql.delete_session, &binds![&hash]).await? > 0)
        })
    }

    async fn purge_sessions(&self, now: i64) -> StoreResult<u64> {
        work!(self, autocommit, |tx, sql| {
            tx.execute(sql.purge_sessions, &binds![now]).await
        })
    }
}
