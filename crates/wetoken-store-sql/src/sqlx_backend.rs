//! The sqlx databases as a [`Backend`]: connections from a sqlx pool,
//! migrations by sqlx's migrator, and a [`Tx`] over a pooled connection.
//! One small adapter, instantiated for each sqlx database whose cargo
//! feature is on; the transactions themselves are `crate::store`'s.

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use wetoken_core::store::{Schema, StoreError};

use crate::statements::{Dialect, Statements};
use crate::store::SqlStore;

/// A sqlx pool, with its dialect's statements and its backend's migrations.
pub struct SqlxBackend<DB: Database> {
    pool: Pool<DB>,
    sql: &'static Statements,
    migrator: &'static Migrator,
}

impl<DB: Database> SqlxBackend<DB> {
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// The `Store` on a sqlx pool.
pub fn sql_store<DB: Database>(
    pool: Pool<DB>,
    dialect: Dialect,
    migrator: &'static Migrator,
) -> SqlStore<SqlxBackend<DB>>
where
    SqlxBackend<DB>: crate::tx::Backend,
{
    SqlStore::new(SqlxBackend {
        pool,
        sql: Statements::for_dialect(dialect),
        migrator,
    })
}

/// A pooled connection, in a transaction or in autocommit.
pub struct SqlxTx<DB: Database> {
    conn: Conn<DB>,
    sql: &'static Statements,
}

enum Conn<DB: Database> {
    Auto(PoolConnection<DB>),
    Tx(sqlx::Transaction<'static, DB>),
}

impl<DB: Database> SqlxTx<DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        match &mut self.conn {
            Conn::Auto(c) => c,
            Conn::Tx(t) => t,
        }
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
/// database resolved by aborting us: worth one more try for a statement in
/// autocommit (MySQL InnoDB and PostgreSQL may, under lease contention). A
/// transaction is not retried (PostgreSQL aborts all of it): a failed pass
/// is the next pass's work.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

fn schema_of(installed: Result<(Option<i64>,), sqlx::Error>, migrator: &Migrator) -> Result<Schema, StoreError> {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match installed {
        Ok((v,)) => Ok(Schema::of(Some(v.unwrap_or(0)), latest)),
        // No migrations table: no schema at all.
        Err(sqlx::Error::Database(_)) => Ok(Schema::Absent),
        Err(e) => Err(map_err(e)),
    }
}

macro_rules! sqlx_backend {
    ($db:ty, $row:ty) => {
        impl crate::tx::Columns for $row {
            fn int(&self, i: usize) -> wetoken_core::store::StoreResult<Option<i64>> {
                sqlx::Row::try_get(self, i).map_err(map_err)
            }
            fn text(&self, i: usize) -> wetoken_core::store::StoreResult<Option<String>> {
                sqlx::Row::try_get(self, i).map_err(map_err)
            }
        }

        impl SqlxTx<$db> {
            fn query(
                sql: &'static str,
                binds: &[crate::tx::Bind<'_>],
            ) -> sqlx::query::Query<'static, $db, <$db as Database>::Arguments> {
                binds.iter().fold(sqlx::query(sql), |q, b| match *b {
                    crate::tx::Bind::Int(v) => q.bind(v),
                    crate::tx::Bind::Text(v) => q.bind(v),
                })
            }
        }

        #[async_trait::async_trait]
        impl crate::tx::Tx for SqlxTx<$db> {
            fn sql(&self) -> &'static Statements {
                self.sql
            }

            async fn execute(
                &mut self,
                sql: &'static str,
                binds: &[crate::tx::Bind<'_>],
            ) -> wetoken_core::store::StoreResult<u64> {
                let autocommit = matches!(self.conn, Conn::Auto(_));
                let mut tries = 0;
                loop {
                    match Self::query(sql, binds).execute(self.conn()).await {
                        Err(e) if autocommit && tries < 3 && is_retryable(&e) => tries += 1,
                        other => return other.map(|r| r.rows_affected()).map_err(map_err),
                    }
                }
            }

            async fn fetch<T: Send + 'static>(
                &mut self,
                sql: &'static str,
                binds: &[crate::tx::Bind<'_>],
                map: crate::tx::RowMap<T>,
            ) -> wetoken_core::store::StoreResult<Vec<T>> {
                let rows = Self::query(sql, binds)
                    .fetch_all(self.conn())
                    .await
                    .map_err(map_err)?;
                rows.iter().map(|r| map(r)).collect()
            }
        }

        impl crate::tx::Backend for SqlxBackend<$db> {
            type Tx = SqlxTx<$db>;

            async fn transaction<R, W>(&self, work: W) -> wetoken_core::store::StoreResult<R>
            where
                R: Send + 'static,
                W: for<'t> FnOnce(&'t mut Self::Tx) -> crate::tx::TxFuture<'t, R> + Send + 'static,
            {
                let tx = self.pool.begin().await.map_err(map_err)?;
                let mut t = SqlxTx {
                    conn: Conn::Tx(tx),
                    sql: self.sql,
                };
                // An error drops the transaction, which rolls it back.
                let v = work(&mut t).await?;
                if let Conn::Tx(tx) = t.conn {
                    tx.commit().await.map_err(map_err)?;
                }
                Ok(v)
            }

            async fn autocommit<R, W>(&self, work: W) -> wetoken_core::store::StoreResult<R>
            where
                R: Send + 'static,
                W: for<'t> FnOnce(&'t mut Self::Tx) -> crate::tx::TxFuture<'t, R> + Send + 'static,
            {
                let conn = self.pool.acquire().await.map_err(map_err)?;
                let mut t = SqlxTx {
                    conn: Conn::Auto(conn),
                    sql: self.sql,
                };
                work(&mut t).await
            }

            async fn migrate(&self) -> wetoken_core::store::StoreResult<()> {
                self.migrator
                    .run(&self.pool)
                    .await
                    .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
            }

            async fn schema(&self) -> wetoken_core::store::StoreResult<Schema> {
                let installed = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await;
                schema_of(installed, self.migrator)
            }

            async fn ping(&self) -> wetoken_core::store::StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sqlx_backend!(sqlx::Sqlite, sqlx::sqlite::SqliteRow);
#[cfg(feature = "mysql")]
sqlx_backend!(sqlx::MySql, sqlx::mysql::MySqlRow);
#[cfg(feature = "postgres")]
sqlx_backend!(sqlx::Postgres, sqlx::postgres::PgRow);
