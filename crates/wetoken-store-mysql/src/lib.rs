//! # wetoken-store-mysql
//!
//! The MySQL / MariaDB backend of the wetoken `Store`. It owns its connection
//! options and its migrations (`migrations/mysql/`, embedded at build time);
//! the SQL and the `Store` implementation are `wetoken-store-sql`'s. Tables
//! are InnoDB with `utf8mb4_bin`: ids compare byte for byte, as WeChat's do.
//! Several wetoken instances may share one database: the lease is a single
//! conditional UPDATE (row lock), and migrations take MySQL's advisory lock.

use sqlx::{Connection, MySql};
use wetoken_core::store::StoreResult;
use wetoken_store_sql::{Dialect, SqlStore, SqlxBackend, map_err, pool_options, sql_store};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub type MySqlStore = SqlStore<SqlxBackend<MySql>>;

/// The DDL of every migration, for `install-schema --print`.
pub fn schema_sql() -> String {
    wetoken_store_sql::schema_sql(&MIGRATOR)
}

/// Connects to a `mysql://user:password@host:port/database` URL.
pub async fn connect(url: &str) -> StoreResult<MySqlStore> {
    let url = url.replacen("mariadb://", "mysql://", 1);
    // One direct connection first: a pool only says "timed out", this says why.
    sqlx::MySqlConnection::connect(&url)
        .await
        .map_err(map_err)?
        .close()
        .await
        .map_err(map_err)?;
    let pool = pool_options::<MySql>(16).connect(&url).await.map_err(map_err)?;
    Ok(sql_store(pool, Dialect::MySql, &MIGRATOR))
}
