//! # wetoken-store-sqlite
//!
//! The SQLite backend of the wetoken `Store`: the embedded default. It owns
//! its connection options and its migrations (`migrations/sqlite/`, embedded
//! at build time through the crate's `migrations` symlink); the SQL and the
//! `Store` implementation are `wetoken-store-sql`'s. Several wetoken
//! processes may share one database file: it is opened in WAL mode with a
//! busy timeout and `synchronous=FULL`, and every lease operation is a single
//! conditional statement, atomic across connections and processes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use wetoken_core::store::{StoreError, StoreResult};
use wetoken_store_sql::{Dialect, SqlStore, SqlxBackend, map_err, pool_options, sql_store};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub type SqliteStore = SqlStore<SqlxBackend<Sqlite>>;

/// The DDL of every migration, for `install-schema --print`.
pub fn schema_sql() -> String {
    wetoken_store_sql::schema_sql(&MIGRATOR)
}

/// Opens (creating the file if missing) a `sqlite:` URL.
pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed pushed ticket survives power loss, not only kill -9.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let pool = pool_options::<Sqlite>(8).connect_with(opts).await.map_err(map_err)?;
    Ok(sql_store(pool, Dialect::Sqlite, &MIGRATOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_printable() {
        assert!(schema_sql().contains("CREATE TABLE IF NOT EXISTS wt_credentials"));
    }
}
