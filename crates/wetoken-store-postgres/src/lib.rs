//! # wetoken-store-postgres
//!
//! The PostgreSQL backend of the wetoken `Store`. It owns its connection
//! options and its migrations (`migrations/postgres/`, embedded at build
//! time); the SQL and the `Store` implementation are `wetoken-store-sql`'s.
//! Ids use `COLLATE "C"`: they compare and sort byte for byte. Several
//! wetoken instances may share one database: the lease is a single
//! conditional UPDATE (row lock), and migrations take an advisory lock.

use sqlx::{Connection, Postgres};
use wetoken_core::store::StoreResult;
use wetoken_store_sql::{Dialect, SqlStore, SqlxBackend, map_err, pool_options, sql_store};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub type PostgresStore = SqlStore<SqlxBackend<Postgres>>;

/// The DDL of every migration, for `install-schema --print`.
pub fn schema_sql() -> String {
    wetoken_store_sql::schema_sql(&MIGRATOR)
}

/// Connects to a `postgres://user:password@host:port/database` URL.
pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
    // One direct connection first: a pool only says "timed out", this says why.
    sqlx::PgConnection::connect(url)
        .await
        .map_err(map_err)?
        .close()
        .await
        .map_err(map_err)?;
    let pool = pool_options::<Postgres>(16).connect(url).await.map_err(map_err)?;
    Ok(sql_store(pool, Dialect::Postgres, &MIGRATOR))
}
