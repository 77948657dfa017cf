//! # wetoken-store-sqlite
//!
//! The SQLite backend of the wetoken [`Store`]: the embedded default. It owns
//! its migrations (`migrations/sqlite/`, embedded at build time) and its SQL.
//! Several wetoken processes may share one database file: it is opened in WAL
//! mode with a busy timeout, and every lease operation is a single
//! conditional statement, atomic across connections and processes.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Row};
use wetoken_core::store::{
    AccountRow, CredentialRow, FailureWrite, KeyRow, RefreshWrite, Store, StoreError, StoreResult,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The DDL of every migration, for `install-schema --print`.
pub fn schema_sql() -> String {
    MIGRATOR
        .iter()
        .map(|m| format!("-- {} {}\n{}\n", m.version, m.description, m.sql.as_str().trim_end()))
        .collect()
}

pub struct SqliteStore {
    pool: SqlitePool,
}

/// The file a `sqlite:` URL names, if it names one.
pub fn database_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl SqliteStore {
    /// Opens (creating the file if missing) a `sqlite:` URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed pushed ticket survives power loss, not only kill -9.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        Ok(SqliteStore { pool })
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
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

// Column lists as macros: sqlx takes only static SQL, and concat! keeps it so.
macro_rules! account_cols {
    () => {
        "id, kind, parent_id, secrets, config, status, created_at, updated_at"
    };
}
macro_rules! cred_cols {
    () => {
        "account_id, kind, value, expires_at, version, refreshed_at, lease_owner, lease_until, \
         last_errcode, last_errmsg, last_error_at, blocked_until, forced_at, due_at, attempts"
    };
}

impl SqliteStore {
    async fn ensure_row(&self, account_id: &str, kind: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO wt_credentials (account_id, kind, version) VALUES (?, ?, 0) ON CONFLICT DO NOTHING")
            .bind(account_id)
            .bind(kind)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_account(&self, r: &AccountRow) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO wt_accounts (",
            account_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
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
        let a: Option<Account> = sqlx::query_as(concat!("SELECT ", account_cols!(), " FROM wt_accounts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(a.map(Into::into))
    }

    async fn accounts(&self, parent: Option<&str>) -> StoreResult<Vec<AccountRow>> {
        let q = match parent {
            Some(_) => concat!(
                "SELECT ",
                account_cols!(),
                " FROM wt_accounts WHERE parent_id = ? ORDER BY id"
            ),
            None => concat!(
                "SELECT ",
                account_cols!(),
                " FROM wt_accounts WHERE ? IS NULL ORDER BY id"
            ),
        };
        let rows: Vec<Account> = sqlx::query_as(q)
            .bind(parent)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_account(&self, r: &AccountRow, drop_credentials: bool) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let n = sqlx::query("UPDATE wt_accounts SET secrets = ?, config = ?, status = ?, updated_at = ? WHERE id = ?")
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
            sqlx::query("DELETE FROM wt_credentials WHERE account_id = ?")
                .bind(&r.id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn delete_account(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "DELETE FROM wt_credentials WHERE account_id = ? \
             OR account_id IN (SELECT id FROM wt_accounts WHERE parent_id = ?)",
        )
        .bind(id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM wt_accounts WHERE parent_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let n = sqlx::query("DELETE FROM wt_accounts WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(n > 0)
    }

    async fn credential(&self, account_id: &str, kind: &str) -> StoreResult<Option<CredentialRow>> {
        let c: Option<Credential> = sqlx::query_as(concat!(
            "SELECT ",
            cred_cols!(),
            " FROM wt_credentials WHERE account_id = ? AND kind = ?"
        ))
        .bind(account_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(c.map(Into::into))
    }

    async fn credentials(&self, account_id: &str) -> StoreResult<Vec<CredentialRow>> {
        let rows: Vec<Credential> = sqlx::query_as(concat!(
            "SELECT ",
            cred_cols!(),
            " FROM wt_credentials WHERE account_id = ? ORDER BY kind"
        ))
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
        let n = sqlx::query(
            "UPDATE wt_credentials SET lease_owner = ?, lease_until = ? \
             WHERE account_id = ? AND kind = ? AND version = ? \
             AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)",
        )
        .bind(owner)
        .bind(until)
        .bind(account_id)
        .bind(kind)
        .bind(seen_version)
        .bind(now)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let version: Option<i64> = sqlx::query(
            "UPDATE wt_credentials SET value = ?, expires_at = ?, refreshed_at = ?, due_at = ?, \
             version = version + 1, attempts = 0, lease_owner = NULL, lease_until = NULL, \
             last_errcode = NULL, last_errmsg = NULL, last_error_at = NULL, blocked_until = NULL \
             WHERE account_id = ? AND kind = ? AND lease_owner = ? RETURNING version",
        )
        .bind(w.value)
        .bind(w.expires_at)
        .bind(w.refreshed_at)
        .bind(w.due_at)
        .bind(w.account_id)
        .bind(w.kind)
        .bind(w.owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .map(|r| r.get(0));
        if version.is_some()
            && let Some(secrets) = w.account_secrets
        {
            sqlx::query("UPDATE wt_accounts SET secrets = ?, updated_at = ? WHERE id = ?")
                .bind(secrets)
                .bind(w.refreshed_at)
                .bind(w.account_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(version)
    }

    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE wt_credentials SET last_errcode = ?, last_errmsg = ?, last_error_at = ?, blocked_until = ?, \
             due_at = ?, attempts = ?, lease_owner = NULL, lease_until = NULL \
             WHERE account_id = ? AND kind = ? AND (lease_owner = ? OR lease_owner IS NULL)",
        )
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
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO wt_credentials (account_id, kind, value, expires_at, refreshed_at, version) \
             VALUES (?, ?, ?, ?, ?, 1) \
             ON CONFLICT (account_id, kind) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at, refreshed_at = excluded.refreshed_at, \
             version = wt_credentials.version + 1 \
             RETURNING version",
        )
        .bind(account_id)
        .bind(kind)
        .bind(value)
        .bind(expires_at)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn try_mark_forced(&self, account_id: &str, kind: &str, now: i64, not_before: i64) -> StoreResult<bool> {
        self.ensure_row(account_id, kind).await?;
        let n = sqlx::query(
            "UPDATE wt_credentials SET forced_at = ? \
             WHERE account_id = ? AND kind = ? AND (forced_at IS NULL OR forced_at < ?)",
        )
        .bind(now)
        .bind(account_id)
        .bind(kind)
        .bind(not_before)
        .execute(&self.pool)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn clear_blocks(&self, account_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE wt_credentials SET blocked_until = NULL, last_errcode = NULL, last_errmsg = NULL, \
             last_error_at = NULL, attempts = 0, \
             due_at = CASE WHEN value IS NULL THEN NULL ELSE ? END WHERE account_id = ?",
        )
        .bind(now)
        .bind(account_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialRow>> {
        let rows: Vec<Credential> = sqlx::query_as(concat!(
            "SELECT ",
            cred_cols!(),
            " FROM wt_credentials WHERE due_at <= ? AND value IS NOT NULL \
             AND (lease_until IS NULL OR lease_until < ?) ORDER BY due_at LIMIT ?"
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn insert_key(&self, k: &KeyRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO wt_keys (name, hash, accounts, created_at) VALUES (?, ?, ?, ?)")
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
        let rows: Vec<Key> = sqlx::query_as("SELECT name, hash, accounts, created_at FROM wt_keys ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<KeyRow>> {
        let k: Option<Key> = sqlx::query_as("SELECT name, hash, accounts, created_at FROM wt_keys WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(k.map(Into::into))
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM wt_keys WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_file_of_urls() {
        assert_eq!(database_file("sqlite://wetoken.db"), Some(PathBuf::from("wetoken.db")));
        assert_eq!(
            database_file("sqlite:///var/lib/w.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/w.db"))
        );
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("mysql://x"), None);
    }

    #[test]
    fn schema_is_printable() {
        assert!(schema_sql().contains("CREATE TABLE IF NOT EXISTS wt_credentials"));
    }
}
