//! # wetoken-store-tests
//!
//! Test code only, never a dependency of production crates:
//!
//! - [`conformance`]: what every `Store` backend must do; `tests/backends.rs`
//!   runs it on SQLite, MariaDB, PostgreSQL (and Oracle when a server is
//!   named);
//! - [`fresh_database`]: a new, uniquely named database on a MariaDB or
//!   PostgreSQL server, for tests that need their own;
//! - `tests/tidy.rs`: every backend's migrations carry the same versions and
//!   names.

pub mod conformance;

/// Drops a database [`fresh_database`] made on a PostgreSQL server, cutting
/// the connections still open to it (an outage, for tests of how wetoken
/// answers one).
pub async fn drop_postgres_database(server_url: &str, database_url: &str) -> Result<(), String> {
    use sqlx::Connection;
    let name = database_url.rsplit('/').next().unwrap_or_default();
    let mut c = sqlx::PgConnection::connect(server_url.trim_end_matches('/'))
        .await
        .map_err(|e| format!("cannot reach {server_url}: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&mut c)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Creates a fresh, uniquely named database on a MySQL/MariaDB or PostgreSQL
/// server and returns its URL: each test run gets its own database.
pub async fn fresh_database(server_url: &str) -> Result<String, String> {
    use sqlx::Connection;
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
        "mysql" | "mariadb" => {
            let mut c = sqlx::MySqlConnection::connect(&base.replacen("mariadb://", "mysql://", 1))
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            sqlx::query(create).execute(&mut c).await.map_err(|e| e.to_string())?;
        }
        "postgres" | "postgresql" => {
            let mut c = sqlx::PgConnection::connect(base)
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            sqlx::query(create).execute(&mut c).await.map_err(|e| e.to_string())?;
        }
        _ => return Err(format!("no test databases for {scheme:?}")),
    }
    Ok(format!("{base}/{name}"))
}
