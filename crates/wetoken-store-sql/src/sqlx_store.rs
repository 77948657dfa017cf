//! The sqlx `Store`: one implementation for every sqlx database.

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::{Database, FromRow, Pool};

use crate::statements::{Dialect, Statements};
use wetoken_core::store::{
    AccountRow, CredentialRow, FailureWrite, KeyRow, RefreshWrite, Store, StoreError, StoreResult,
};

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

#[derive(FromRow)]
struct Account {
    id: String,
    kind: String,
    parent_id: Option<String>,
    secrets: String,
    config: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl From<Account> for AccountRow {
    fn from(a: Account) -> Self {
        AccountRow {
            id: a.id,
            kind: a.kind,
            parent_id: a.parent_id,
            secrets: a.secrets,
            config: a.config,
            status: a.status,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(FromRow)]
struct Credential {
    account_id: String,
    kind: String,
    value: Option<String>,
    expires_at: Option<i64>,
    version: i64,
    refreshed_at: Option<i64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    last_errcode: Option<i64>,
    last_errmsg: Option<String>,
    last_error_at: Option<i64>,
    blocked_until: Option<i64>,
    forced_at: Option<i64>,
    due_at: Option<i64>,
    attempts: i64,
}

impl From<Credential> for CredentialRow {
    fn from(c: Credential) -> Self {
        CredentialRow {
            account_id: c.account_id,
            kind: c.kind,
            value: c.value,
            expires_at: c.expires_at,
            version: c.version,
            refreshed_at: c.refreshed_at,
            lease_owner: c.lease_owner,
            lease_until: c.lease_until,
            last_errcode: c.last_errcode,
            last_errmsg: c.last_errmsg,
            last_error_at: c.last_error_at,
            blocked_until: c.blocked_until,
            forced_at: c.forced_at,
            due_at: c.due_at,
            attempts: c.attempts,
        }
    }
}

#[derive(FromRow)]
struct Key {
    name: String,
    hash: String,
    accounts: String,
    created_at: i64,
}

impl From<Key> for KeyRow {
    fn from(k: Key) -> Self {
        KeyRow {
            name: k.name,
            hash: k.hash,
            accounts: k.accounts,
            created_at: k.created_at,
        }
    }
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
/// backend runs exactly this code with its own dialect's text.
macro_rules! sql_store {
    ($db:ty) => {
        impl SqlStore<$db> {
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

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn insert_account(&self, r: &AccountRow) -> StoreResult<()> {
                sqlx::query(self.sql.insert_account)
                    .bind(&r.id)
                    .bind(&r.kind)
                    .bind(&r.parent_id)
                    .bind(&r.secrets)
                    .bind(&r.config)
                    .bind(&r.status)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
                let a: Option<Account> = sqlx::query_as(self.sql.select_account)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(a.map(Into::into))
            }

            async fn accounts(&self, parent: Option<&str>) -> StoreResult<Vec<AccountRow>> {
                let rows: Vec<Account> = match parent {
                    Some(p) => {
                        sqlx::query_as(self.sql.select_child_accounts)
                            .bind(p)
                            .fetch_all(&self.pool)
                            .await
                    }
                    None => {
                        sqlx::query_as(self.sql.select_all_accounts)
                            .fetch_all(&self.pool)
                            .await
                    }
                }
                .map_err(map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn update_account(&self, r: &AccountRow, drop_credentials: bool) -> StoreResult<()> {
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
                tx.commit().await.map_err(map_err)
            }

            async fn delete_account(&self, id: &str) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(self.sql.delete_family_credentials)
                    .bind(id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(self.sql.delete_child_accounts)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let n = sqlx::query(self.sql.delete_account)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                tx.commit().await.map_err(map_err)?;
                Ok(n > 0)
            }

            async fn credential(&self, account_id: &str, kind: &str) -> StoreResult<Option<CredentialRow>> {
                let c: Option<Credential> = sqlx::query_as(self.sql.select_credential)
                    .bind(account_id)
                    .bind(kind)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(c.map(Into::into))
            }

            async fn credentials(&self, account_id: &str) -> StoreResult<Vec<CredentialRow>> {
                let rows: Vec<Credential> = sqlx::query_as(self.sql.select_credentials)
                    .bind(account_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn try_lease(
                &self,
                account_id: &str,
                kind: &str,
                owner: &str,
                seen_version: i64,
                now: i64,
                until: i64,
            ) -> StoreResult<bool> {
                self.ensure_row(account_id, kind).await?;
                let n = retry!(
                    sqlx::query(self.sql.take_lease)
                        .bind(owner)
                        .bind(until)
                        .bind(account_id)
                        .bind(kind)
                        .bind(seen_version)
                        .bind(now)
                        .bind(owner)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.complete_refresh)
                    .bind(w.previous_until)
                    .bind(w.value_hash)
                    .bind(w.value)
                    .bind(w.expires_at)
                    .bind(w.refreshed_at)
                    .bind(w.due_at)
                    .bind(w.account_id)
                    .bind(w.kind)
                    .bind(w.owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                let (version,): (i64,) = sqlx::query_as(self.sql.select_version)
                    .bind(w.account_id)
                    .bind(w.kind)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if let Some(secrets) = w.account_secrets {
                    sqlx::query(self.sql.update_account_secrets)
                        .bind(secrets)
                        .bind(w.refreshed_at)
                        .bind(w.account_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(Some(version))
            }

            async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<()> {
                sqlx::query(self.sql.record_failure)
                    .bind(w.errcode)
                    .bind(w.errmsg)
                    .bind(w.at)
                    .bind(w.blocked_until)
                    .bind(w.due_at)
                    .bind(w.attempts)
                    .bind(w.account_id)
                    .bind(w.kind)
                    .bind(w.owner)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn put_pushed(
                &self,
                account_id: &str,
                kind: &str,
                value: &str,
                expires_at: i64,
                at: i64,
            ) -> StoreResult<Option<i64>> {
                self.ensure_row(account_id, kind).await?;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let n = sqlx::query(self.sql.put_pushed)
                    .bind(value)
                    .bind(expires_at)
                    .bind(at)
                    .bind(account_id)
                    .bind(kind)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                let (version,): (i64,) = sqlx::query_as(self.sql.select_version)
                    .bind(account_id)
                    .bind(kind)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(Some(version))
            }

            async fn try_mark_forced(
                &self,
                account_id: &str,
                kind: &str,
                now: i64,
                not_before: i64,
            ) -> StoreResult<bool> {
                self.ensure_row(account_id, kind).await?;
                let n = retry!(
                    sqlx::query(self.sql.mark_forced)
                        .bind(now)
                        .bind(account_id)
                        .bind(kind)
                        .bind(not_before)
                        .execute(&self.pool)
                        .await
                )?
                .rows_affected();
                Ok(n == 1)
            }

            async fn clear_blocks(&self, account_id: &str, now: i64) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(self.sql.clear_blocks_filled)
                    .bind(now)
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(self.sql.clear_blocks_empty)
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialRow>> {
                let rows: Vec<Credential> = sqlx::query_as(self.sql.select_due)
                    .bind(now)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialRow>> {
                let c: Option<Credential> = sqlx::query_as(self.sql.select_by_hash)
                    .bind(hash)
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(c.map(Into::into))
            }

            async fn insert_key(&self, k: &KeyRow) -> StoreResult<()> {
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

            async fn keys(&self) -> StoreResult<Vec<KeyRow>> {
                let rows: Vec<Key> = sqlx::query_as(self.sql.select_keys)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<KeyRow>> {
                let k: Option<Key> = sqlx::query_as(self.sql.select_key_by_hash)
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(k.map(Into::into))
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
    };
}

#[cfg(feature = "sqlite")]
sql_store!(sqlx::Sqlite);
#[cfg(feature = "mysql")]
sql_store!(sqlx::MySql);
#[cfg(feature = "postgres")]
sql_store!(sqlx::Postgres);

#[cfg(any(feature = "mysql", feature = "postgres"))]
/// Creates a fresh, uniquely named database on a MySQL/MariaDB or PostgreSQL
/// server and returns its URL. For tests: each run gets its own database.
pub async fn fresh_database(server_url: &str) -> Result<String, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "wt_test_{}_{}_{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let base = server_url.trim_end_matches('/');
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
    let scheme = base.split(':').next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            use sqlx::Connection;
            let mut c = sqlx::MySqlConnection::connect(&base.replacen("mariadb://", "mysql://", 1))
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            sqlx::query(create).execute(&mut c).await.map_err(|e| e.to_string())?;
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(base)
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            sqlx::query(create).execute(&mut c).await.map_err(|e| e.to_string())?;
        }
        _ => return Err(format!("no test databases for {scheme:?} in this build")),
    }
    Ok(format!("{base}/{name}"))
}
