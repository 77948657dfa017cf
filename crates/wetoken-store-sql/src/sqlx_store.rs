//! The sqlx `Store`: one implementation for every sqlx database.

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::{Database, Pool};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{AttemptWrite, Delivery, DeliveryStatus, Event, NewEvent, Webhook};
use wetoken_core::store::prelude::*;
use wetoken_core::store::{
    AccountQuery, ApiKey, AuditEntry, AuditQuery, CredentialState, EventQuery, FailureWrite, ForceBudget, KeyCheck,
    PushWrite, RefreshWrite, Schema, Sealed, Store, StoreError, StoreResult, StoredAccount, Verdict,
};

use crate::rows::{
    AccountRow, AuditRow, CredentialRow, DeliveryRow, EventRow, KeyRow, NewEventRow, PageBinds, WebhookRow,
    audit_binds, decode_all, event_filters, page_binds,
};
use crate::statements::{Dialect, Statements};

/// A `Store` on a sqlx pool, with its dialect's statements and its
/// backend's migrations.
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    sql: &'static Statements,
    migrator: &'static Migrator,
}

impl<DB: Database> SqlStore<DB> {
    pub fn new(pool: Pool<DB>, dialect: Dialect, migrator: &'static Migrator) -> Self {
        SqlStore {
            pool,
            sql: Statements::for_dialect(dialect),
            migrator,
        }
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// Pool settings every sqlx backend uses: enough connections for the
/// scheduler's concurrency plus readers, and a bounded wait for one.
pub fn pool_options<DB: Database>(max_connections: u32) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
}

/// The DDL of a backend's migrations, for `install-schema --print`.
pub fn schema_sql(migrator: &Migrator) -> String {
    migrator
        .iter()
        .map(|m| format!("-- {} {}\n{}\n", m.version, m.description, m.sql.as_str().trim_end()))
        .collect()
}

/// Maps a driver error: unique violations are `Conflict`, connection
/// trouble `Unavailable`.
pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Whether an error is a deadlock or serialization failure, which the
/// database resolved by aborting us: worth one more try.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

/// Runs a statement once more if the database aborted it as a deadlock
/// victim (MySQL InnoDB and PostgreSQL may, under lease contention).
macro_rules! retry {
    ($body:expr) => {{
        let mut tries = 0;
        loop {
            match $body {
                Err(e) if tries < 3 && is_retryable(&e) => tries += 1,
                other => break other.map_err(map_err),
            }
        }
    }};
}

/// The one `Store` implementation, instantiated per sqlx database. Every
/// backend runs exactly this code with its own dialect's text; rows become
/// domain types in `crate::rows`.
macro_rules! sql_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// An account page's range and filters, then its limit, bound
            /// in order (a page and its bounded count take the same).
            fn bind_page<'q, O>(
                q: sqlx::query::QueryAs<'q, $db, O, <$db as Database>::Arguments>,
                b: &'q PageBinds,
                limit: i64,
            ) -> sqlx::query::QueryAs<'q, $db, O, <$db as Database>::Arguments> {
                q.bind(&b.lower)
                    .bind(&b.upper)
                    .bind(&b.after)
                    .bind(&b.status)
                    .bind(&b.status)
                    .bind(&b.not_status)
                    .bind(&b.not_status)
                    .bind(limit)
            }

            /// The outbox: appends `events` in the caller's transaction. The
            /// counter row is taken first (its lock held to commit, so ids
            /// increase in commit order; on SQLite the first statement is a
            /// write); events already stored by their dedupe hash are skipped,
            /// leaving a gap in the ids, which is harmless.
            async fn append_in(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                events: &[NewEvent],
            ) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                sqlx::query(self.sql.bump_event_seq)
                    .bind(events.len() as i64)
                    .execute(&mut *conn)
                    .await
                    .map_err(map_err)?;
                let (last,): (i64,) = sqlx::query_as(self.sql.select_event_seq)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(map_err)?;
                let first = last - events.len() as i64 + 1;
                for (i, e) in events.iter().enumerate() {
                    let r = NewEventRow::encode(e);
                    if let Some(d) = &r.dedupe {
                        let (n,): (i64,) = sqlx::query_as(self.sql.count_dedupe)
                            .bind(d)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(map_err)?;
                        if n > 0 {
                            continue;
                        }
                    }
                    sqlx::query(self.sql.insert_event)
                        .bind(first + i as i64)
                        .bind(&r.event_type)
                        .bind(&r.account_id)
                        .bind(&r.family_id)
                        .bind(r.created_at)
                        .bind(&r.data)
                        .bind(&r.source)
                        .bind(&r.dedupe)
                        .execute(&mut *conn)
                        .await
                        .map_err(map_err)?;
                }
                Ok(())
            }

            async fn ensure_row(&self, account_id: &str, kind: &str) -> StoreResult<()> {
                retry!(
                    sqlx::query(self.sql.insert_credential_if_absent)
                        .bind(account_id)
                        .bind(kind)
                        .execute(&self.pool)
                        .await
                )?;
                Ok(())
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            async fn migrate(&self) -> StoreResult<()> {
                self.migrator
                    .run(&self.pool)
                    .await
                    .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
            }

            async fn schema(&self) -> StoreResult<Schema> {
                let latest = self.migrator.iter().map(|m| m.version).max().unwrap_or(0);
                let installed: Result<(Option<i64>,), sqlx::Error> =
                    sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool)
                        .await;
                match installed {
                    Ok((v,)) => Ok(Schema::of(Some(v.unwrap_or(0)), latest)),
                    // No migrations table: no schema at all.
                    Err(sqlx::Error::Database(_)) => Ok(Schema::Absent),
                    Err(e) => Err(map_err(e)),
                }
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }

        #[async_trait]
        impl AccountStore for SqlStore<$db> {
            async fn insert_account(&self, a: &StoredAccount, events: &[NewEvent]) -> StoreResult<()> {
                let r = AccountRow::encode(a);
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(self.sql.insert_account)
                    .bind(&r.id)
                    .bind(&r.kind)
                    .bind(&r.parent_id)
                    .bind(&r.secrets)
                    .bind(&r.config)
                    .bind(&r.status)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                self.append_in(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>> {
                let a: Option<AccountRow> = sqlx::query_as(self.sql.select_account)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                a.map(AccountRow::decode).transpose()
            }

            async fn update_account(
                &self,
                a: &StoredAccount,
                drop_credentials: bool,
                events: &[NewEvent],
            ) -> StoreResult<()> {
                let r = AccountRow::encode(a);
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.update_account)
                    .bind(&r.secrets)
                    .bind(&r.config)
                    .bind(&r.status)
                    .bind(r.updated_at)
                    .bind(&r.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                if drop_credentials {
                    sqlx::query(self.sql.delete_account_credentials)
                        .bind(&r.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                self.append_in(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
                let id = id.to_string();
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(self.sql.delete_family_credentials)
                    .bind(&id)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(self.sql.delete_child_accounts)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let n = sqlx::query(self.sql.delete_account)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                tx.commit().await.map_err(map_err)?;
                Ok(n > 0)
            }

            async fn credential(&self, id: &AccountId, c: Credential) -> StoreResult<Option<CredentialState>> {
                let row: Option<CredentialRow> = sqlx::query_as(self.sql.select_credential)
                    .bind(id.to_string())
                    .bind(c.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(CredentialRow::decode).transpose()
            }

            async fn accounts_page(&self, q: &AccountQuery) -> StoreResult<Vec<StoredAccount>> {
                let b = page_binds(q);
                let rows: Vec<AccountRow> = Self::bind_page(sqlx::query_as(self.sql.select_accounts_page), &b, q.limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, AccountRow::decode)
            }

            async fn credentials_between(
                &self,
                first: &AccountId,
                last: &AccountId,
            ) -> StoreResult<Vec<CredentialState>> {
                let rows: Vec<CredentialRow> = sqlx::query_as(self.sql.select_credentials_between)
                    .bind(first.to_string())
                    .bind(last.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, CredentialRow::decode)
            }

            async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>> {
                let rows: Vec<CredentialRow> = sqlx::query_as(self.sql.select_credentials)
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, CredentialRow::decode)
            }

            async fn try_lease(
                &self,
                id: &AccountId,
                c: Credential,
                owner: &str,
                seen_version: i64,
                lease_ms: i64,
            ) -> StoreResult<bool> {
                let id = id.to_string();
                self.ensure_row(&id, c.as_str()).await?;
                let n = retry!(
                    sqlx::query(self.sql.take_lease)
                        .bind(owner)
                        .bind(lease_ms)
                        .bind(&id)
                        .bind(c.as_str())
                        .bind(seen_version)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
                let id = w.account.to_string();
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.complete_refresh)
                    .bind(w.previous_until)
                    .bind(w.value_hash)
                    .bind(w.value.as_str())
                    .bind(w.expires_at)
                    .bind(w.refreshed_at)
                    .bind(w.due_at)
                    .bind(&id)
                    .bind(w.credential.as_str())
                    .bind(w.owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                let (version,): (i64,) = sqlx::query_as(self.sql.select_version)
                    .bind(&id)
                    .bind(w.credential.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if let Some(secrets) = w.account_secrets {
                    sqlx::query(self.sql.update_account_secrets)
                        .bind(secrets.as_str())
                        .bind(w.refreshed_at)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                self.append_in(&mut tx, w.events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(Some(version))
            }

            async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.record_failure)
                    .bind(w.error.errcode)
                    .bind(&w.error.errmsg)
                    .bind(w.error.at)
                    .bind(w.blocked_until)
                    .bind(w.due_at)
                    .bind(w.attempts)
                    .bind(w.account.to_string())
                    .bind(w.credential.as_str())
                    .bind(w.owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 1 {
                    self.append_in(&mut tx, w.events).await?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(n == 1)
            }

            async fn put_pushed(&self, w: &PushWrite<'_>) -> StoreResult<Option<i64>> {
                let (id, c, value, at) = (w.account.to_string(), w.credential, w.value, w.at);
                self.ensure_row(&id, c.as_str()).await?;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.put_pushed)
                    .bind(value.as_str())
                    .bind(w.expires_at)
                    .bind(at)
                    .bind(w.stale_at)
                    .bind(&id)
                    .bind(c.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                let version = if n == 0 {
                    None
                } else {
                    let (v,): (i64,) = sqlx::query_as(self.sql.select_version)
                        .bind(&id)
                        .bind(c.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    Some(v)
                };
                self.append_in(&mut tx, w.events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(version)
            }

            async fn mark_pushed_stale(
                &self,
                id: &AccountId,
                c: Credential,
                version: i64,
                events: &[NewEvent],
            ) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.mark_pushed_stale)
                    .bind(id.to_string())
                    .bind(c.as_str())
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 1 {
                    self.append_in(&mut tx, events).await?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(n == 1)
            }

            async fn try_mark_forced(&self, id: &AccountId, c: Credential, interval_ms: i64) -> StoreResult<bool> {
                let id = id.to_string();
                self.ensure_row(&id, c.as_str()).await?;
                let n = retry!(
                    sqlx::query(self.sql.mark_forced)
                        .bind(&id)
                        .bind(c.as_str())
                        .bind(interval_ms)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn record_verdict(
                &self,
                id: &AccountId,
                c: Credential,
                version: i64,
                verdict: Verdict,
            ) -> StoreResult<bool> {
                let n = retry!(
                    sqlx::query(self.sql.record_verdict)
                        .bind(verdict.at)
                        .bind(i64::from(verdict.alive))
                        .bind(id.to_string())
                        .bind(c.as_str())
                        .bind(version)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn try_force_today(
                &self,
                id: &AccountId,
                c: Credential,
                max: i64,
                spent_events: &[NewEvent],
            ) -> StoreResult<ForceBudget> {
                let id = id.to_string();
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let granted = sqlx::query(self.sql.force_today)
                    .bind(&id)
                    .bind(c.as_str())
                    .bind(max)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected()
                    == 1;
                let budget = if granted {
                    ForceBudget::Granted
                } else {
                    let first = sqlx::query(self.sql.force_spent_once)
                        .bind(&id)
                        .bind(c.as_str())
                        .bind(max)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .rows_affected()
                        == 1;
                    if first {
                        self.append_in(&mut tx, spent_events).await?;
                    }
                    ForceBudget::Spent { first }
                };
                tx.commit().await.map_err(map_err)?;
                Ok(budget)
            }

            async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()> {
                let id = id.to_string();
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(self.sql.clear_blocks_filled)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(self.sql.clear_blocks_empty)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>> {
                let rows: Vec<CredentialRow> = sqlx::query_as(self.sql.select_due)
                    .bind(now)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, CredentialRow::decode)
            }

            async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>> {
                let row: Option<CredentialRow> = sqlx::query_as(self.sql.select_by_hash)
                    .bind(hash)
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(CredentialRow::decode).transpose()
            }

            async fn reseal_account(&self, read: &StoredAccount, secrets: &Sealed) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.reseal_account)
                    .bind(secrets.as_str())
                    .bind(read.id.to_string())
                    .bind(read.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n == 1)
            }

            async fn reseal_value(&self, read: &CredentialState, value: &Sealed) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.reseal_value)
                    .bind(value.as_str())
                    .bind(read.account.to_string())
                    .bind(read.credential.as_str())
                    .bind(read.version)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n == 1)
            }

            async fn count_accounts(&self, q: &AccountQuery) -> StoreResult<i64> {
                let b = page_binds(q);
                let (n,): (i64,) = Self::bind_page(sqlx::query_as(self.sql.count_accounts), &b, q.limit)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(n)
            }

            async fn failing_credentials(&self, limit: i64) -> StoreResult<Vec<CredentialState>> {
                let rows: Vec<CredentialRow> = sqlx::query_as(self.sql.select_failing)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, CredentialRow::decode)
            }
        }

        #[async_trait]
        impl KeyStore for SqlStore<$db> {
            async fn keys_page(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<ApiKey>> {
                let rows: Vec<KeyRow> = sqlx::query_as(self.sql.select_keys_page)
                    .bind(after.unwrap_or(" "))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, KeyRow::decode)
            }

            async fn key_checks(&self) -> StoreResult<Vec<KeyCheck>> {
                let rows: Vec<(String, String)> = sqlx::query_as(self.sql.select_key_checks)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(key_id, check)| KeyCheck {
                        key_id,
                        check: Sealed::from_stored(check),
                    })
                    .collect())
            }

            async fn add_key_check(&self, c: &KeyCheck, now: i64) -> StoreResult<()> {
                let r = sqlx::query(self.sql.insert_key_check)
                    .bind(&c.key_id)
                    .bind(c.check.as_str())
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err);
                match r {
                    Ok(_) | Err(StoreError::Conflict) => Ok(()),
                    Err(e) => Err(e),
                }
            }

            async fn remove_key_check(&self, key_id: &str) -> StoreResult<()> {
                sqlx::query(self.sql.delete_key_check)
                    .bind(key_id)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn insert_key(&self, k: &ApiKey) -> StoreResult<()> {
                let k = KeyRow::encode(k);
                sqlx::query(self.sql.insert_key)
                    .bind(&k.name)
                    .bind(&k.hash)
                    .bind(&k.accounts)
                    .bind(k.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
                let k: Option<KeyRow> = sqlx::query_as(self.sql.select_key_by_hash)
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                k.map(KeyRow::decode).transpose()
            }

            async fn delete_key(&self, name: &str) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.delete_key)
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n > 0)
            }
        }

        #[async_trait]
        impl EventStore for SqlStore<$db> {
            async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                self.append_in(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn events(&self, q: &EventQuery) -> StoreResult<Vec<Event>> {
                let f = event_filters(q);
                let rows: Vec<EventRow> = sqlx::query_as(self.sql.select_events)
                    .bind(q.after)
                    .bind(&f.like)
                    .bind(&f.like)
                    .bind(&f.account)
                    .bind(&f.account)
                    .bind(&f.family)
                    .bind(&f.family)
                    .bind(q.limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, EventRow::decode)
            }

            async fn event(&self, id: i64) -> StoreResult<Option<Event>> {
                let row: Option<EventRow> = sqlx::query_as(self.sql.select_event)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(EventRow::decode).transpose()
            }

            async fn purge_events(&self, before: i64) -> StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.purge_events)
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                sqlx::query(self.sql.purge_deliveries)
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(self.sql.purge_audit)
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(n)
            }

            async fn insert_webhook(&self, w: &Webhook) -> StoreResult<()> {
                let r = WebhookRow::encode(w);
                sqlx::query(self.sql.insert_webhook)
                    .bind(&r.name)
                    .bind(&r.url)
                    .bind(&r.events)
                    .bind(&r.accounts)
                    .bind(&r.format)
                    .bind(&r.secret)
                    .bind(r.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
                let rows: Vec<WebhookRow> = sqlx::query_as(self.sql.select_webhooks)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, WebhookRow::decode)
            }

            async fn webhook(&self, name: &str) -> StoreResult<Option<Webhook>> {
                let row: Option<WebhookRow> = sqlx::query_as(self.sql.select_webhook)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(WebhookRow::decode).transpose()
            }

            async fn delete_webhook(&self, name: &str) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.delete_webhook)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                sqlx::query(self.sql.delete_webhook_deliveries)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(n > 0)
            }

            async fn fan_out(
                &self,
                webhook: &str,
                from: i64,
                to: i64,
                event_ids: &[i64],
                now: i64,
            ) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                // No retry inside a transaction (PostgreSQL aborts it on a
                // deadlock): a failed pass is simply the next pass's work.
                let n = sqlx::query(self.sql.move_cursor)
                    .bind(to)
                    .bind(webhook)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                for id in event_ids {
                    sqlx::query(self.sql.insert_delivery)
                        .bind(webhook)
                        .bind(id)
                        .bind(now)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn due_deliveries(&self, webhook: &str, now: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
                let rows: Vec<DeliveryRow> = sqlx::query_as(self.sql.select_due_deliveries)
                    .bind(webhook)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, DeliveryRow::decode)
            }

            async fn try_lease_delivery(
                &self,
                webhook: &str,
                event_id: i64,
                owner: &str,
                lease_ms: i64,
            ) -> StoreResult<bool> {
                let n = retry!(
                    sqlx::query(self.sql.take_delivery_lease)
                        .bind(owner)
                        .bind(lease_ms)
                        .bind(webhook)
                        .bind(event_id)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn record_attempt(&self, w: &AttemptWrite<'_>) -> StoreResult<bool> {
                let n = retry!(
                    sqlx::query(self.sql.record_attempt)
                        .bind(w.status.as_str())
                        .bind(w.attempts)
                        .bind(w.next_at)
                        .bind(w.updated_at)
                        .bind(w.last_status)
                        .bind(w.last_error)
                        .bind(w.webhook)
                        .bind(w.event_id)
                        .bind(w.owner)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn deliveries(
                &self,
                webhook: &str,
                status: Option<DeliveryStatus>,
                after: i64,
                limit: i64,
            ) -> StoreResult<Vec<Delivery>> {
                let status = status.map(DeliveryStatus::as_str);
                let rows: Vec<DeliveryRow> = sqlx::query_as(self.sql.select_deliveries)
                    .bind(webhook)
                    .bind(after)
                    .bind(status)
                    .bind(status)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, DeliveryRow::decode)
            }

            async fn retry_delivery(&self, webhook: &str, event_id: i64, now: i64) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.retry_delivery)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(webhook)
                    .bind(event_id)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n == 1)
            }

            async fn reseal_webhook(&self, read: &Webhook, secret: &Sealed, url: &Sealed) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.reseal_webhook)
                    .bind(secret.as_str())
                    .bind(url.as_str())
                    .bind(&read.name)
                    .bind(read.secret.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n == 1)
            }

            async fn oldest_pending_delivery(&self) -> StoreResult<Option<i64>> {
                let (min,): (Option<i64>,) = sqlx::query_as(self.sql.select_oldest_pending)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(min)
            }

            async fn last_event_id(&self) -> StoreResult<i64> {
                let (last,): (i64,) = sqlx::query_as(self.sql.select_event_seq)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(last)
            }
        }

        #[async_trait]
        impl AuditStore for SqlStore<$db> {
            async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<()> {
                let r = AuditRow::encode(e);
                sqlx::query(self.sql.insert_audit)
                    .bind(&r.id)
                    .bind(r.called_at)
                    .bind(&r.key_name)
                    .bind(&r.account_id)
                    .bind(&r.method)
                    .bind(&r.path)
                    .bind(r.status)
                    .bind(r.errcode)
                    .bind(&r.rid)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn audit_page(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
                let b = audit_binds(q);
                let rows: Vec<AuditRow> = sqlx::query_as(self.sql.select_audit)
                    .bind(&b.after)
                    .bind(&b.from)
                    .bind(&b.key)
                    .bind(&b.key)
                    .bind(&b.account)
                    .bind(&b.account)
                    .bind(q.limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                decode_all(rows, AuditRow::decode)
            }
        }

        #[async_trait]
        impl SessionStore for SqlStore<$db> {
            async fn insert_session(&self, hash: &str, created_at: i64, expires_at: i64) -> StoreResult<()> {
                sqlx::query(self.sql.insert_session)
                    .bind(hash)
                    .bind(created_at)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn session_expiry(&self, hash: &str) -> StoreResult<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as(self.sql.select_session)
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(|(t,)| t))
            }

            async fn delete_session(&self, hash: &str) -> StoreResult<bool> {
                let n = sqlx::query(self.sql.delete_session)
                    .bind(hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn purge_sessions(&self, now: i64) -> StoreResult<u64> {
                let n = sqlx::query(self.sql.purge_sessions)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(n)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sql_store!(sqlx::Sqlite);
#[cfg(feature = "mysql")]
sql_store!(sqlx::MySql);
#[cfg(feature = "postgres")]
sql_store!(sqlx::Postgres);
