//! # wetoken-store-oracle
//!
//! The Oracle backend of the wetoken `Store`, on the `oracle` crate (ODPI-C,
//! bundled). It implements `wetoken-store-sql`'s [`Backend`] over the
//! driver's session pool, each piece of work (a transaction, or statements
//! in autocommit) as one blocking task on one pooled session, and so runs
//! the same `SqlStore`, the same transactions and the statements in their
//! Oracle form (`:1` binds, `MERGE` for insert-if-absent, `FETCH FIRST`). It
//! applies its own migrations (`migrations/oracle/`, same versions and names
//! as the other backends) with a small runner, since sqlx does not speak
//! Oracle.
//!
//! The Oracle client library (Instant Client) must be installed where the
//! binary runs; without it, connecting fails at start with DPI-1047, which
//! [`connect`] turns into a message that says so. No Oracle server can run in
//! this project's CI: the SQL text, the migration splitting and the error
//! mapping are unit-tested, the transactions are those every other backend
//! runs, and the store conformance suite runs against a real server when
//! `WETOKEN_TEST_ORACLE_URL` is set (it shows as ignored otherwise).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use oracle::pool::{Pool, PoolBuilder};
use oracle::sql_type::ToSql;
use oracle::{Connection, Row};
use wetoken_core::store::{Schema, StoreError, StoreResult};
use wetoken_core::urlenc::percent_decode;
use wetoken_store_sql::tx::{Backend, Bind, Columns, RowMap, Tx, TxFuture};
use wetoken_store_sql::{Dialect, SqlStore, Statements};

mod migrate;

pub use migrate::{MIGRATIONS, schema_sql, split_statements};

/// `oracle://user:password@host:port/service` → (user, password, `//host:port/service`).
pub fn parse_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("oracle://")
        .ok_or_else(|| "an Oracle URL starts with oracle://".to_owned())?;
    let (userinfo, target) = rest
        .rsplit_once('@')
        .ok_or_else(|| "an Oracle URL needs user:password@host:port/service".to_owned())?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    if user.is_empty() || target.is_empty() {
        return Err("an Oracle URL needs user:password@host:port/service".into());
    }
    Ok((percent_decode(user), percent_decode(password), format!("//{target}")))
}

/// Maps an Oracle error code and message (ORA-nnnnn, DPI-nnnn).
pub fn classify(code: Option<i32>, message: &str) -> StoreError {
    if message.contains("DPI-1047") {
        return StoreError::Unavailable(format!(
            "the Oracle client library (Instant Client) was not found: install it and add it to \
             LD_LIBRARY_PATH ({message})"
        ));
    }
    match code {
        // ORA-00001: unique constraint violated
        Some(1) => StoreError::Conflict,
        // listener, network, lost session, timeout
        Some(3113 | 3114 | 3135 | 12170 | 12514 | 12537 | 12541 | 12543 | 12545 | 12547) => {
            StoreError::Unavailable(message.to_owned())
        }
        _ => StoreError::Other(message.to_owned()),
    }
}

pub(crate) fn map_err(e: oracle::Error) -> StoreError {
    classify(e.db_error().map(|d| d.code()), &e.to_string())
}

/// The `Store` on Oracle.
pub type OracleStore = SqlStore<OracleBackend>;

/// Oracle's session pool as a [`Backend`].
pub struct OracleBackend {
    pool: Arc<Pool>,
    sql: &'static Statements,
}

/// Connects to `oracle://user:password@host:port/service`.
pub async fn connect(url: &str) -> StoreResult<OracleStore> {
    let (user, password, target) = parse_url(url).map_err(StoreError::Other)?;
    let pool = tokio::task::spawn_blocking(move || {
        PoolBuilder::new(user, password, target)
            .min_connections(1)
            .max_connections(16)
            .build()
    })
    .await
    .map_err(|e| StoreError::Other(e.to_string()))?
    .map_err(map_err)?;
    Ok(SqlStore::new(OracleBackend {
        pool: Arc::new(pool),
        sql: Statements::for_dialect(Dialect::Oracle),
    }))
}

impl OracleBackend {
    /// Runs `f` on a pooled session in one blocking task.
    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Connection) -> StoreResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(pool.get().map_err(map_err)?))
            .await
            .map_err(|e| StoreError::Other(format!("blocking task failed: {e}")))?
    }

    /// Runs `work` on one session in one blocking task (the driver blocks;
    /// the work's statements run one after another there): committed at the
    /// end of a transaction, after each statement in autocommit, rolled back
    /// on failure.
    fn run<R, W>(&self, autocommit: bool, work: W) -> impl Future<Output = StoreResult<R>> + Send
    where
        R: Send + 'static,
        W: for<'t> FnOnce(&'t mut OracleTx) -> TxFuture<'t, R> + Send + 'static,
    {
        let sql = self.sql;
        let handle = tokio::runtime::Handle::current();
        self.blocking(move |conn| {
            let mut tx = OracleTx { conn, sql, autocommit };
            match handle.block_on(work(&mut tx)) {
                Ok(v) => {
                    tx.conn.commit().map_err(map_err)?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = tx.conn.rollback();
                    Err(e)
                }
            }
        })
    }
}

impl Backend for OracleBackend {
    type Tx = OracleTx;

    fn transaction<R, W>(&self, work: W) -> impl Future<Output = StoreResult<R>> + Send
    where
        R: Send + 'static,
        W: for<'t> FnOnce(&'t mut OracleTx) -> TxFuture<'t, R> + Send + 'static,
    {
        self.run(false, work)
    }

    fn autocommit<R, W>(&self, work: W) -> impl Future<Output = StoreResult<R>> + Send
    where
        R: Send + 'static,
        W: for<'t> FnOnce(&'t mut OracleTx) -> TxFuture<'t, R> + Send + 'static,
    {
        self.run(true, work)
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.blocking(|conn| {
            migrate::run(&conn)?;
            conn.commit().map_err(map_err)
        })
        .await
    }

    async fn schema(&self) -> StoreResult<Schema> {
        let latest = migrate::MIGRATIONS.last().map_or(0, |m| m.0);
        self.blocking(move |conn| {
            match conn.query_row_as::<Option<i64>>("SELECT MAX(version) FROM wt_schema_migrations", &[]) {
                Ok(v) => Ok(Schema::of(Some(v.unwrap_or(0)), latest)),
                // ORA-00942: no migrations table, no schema.
                Err(e) if e.db_error().is_some_and(|d| d.code() == 942) => Ok(Schema::Absent),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|conn| conn.query_row("SELECT 1 FROM dual", &[]).map(drop).map_err(map_err))
            .await
    }
}

/// One pooled Oracle session, inside a transaction or in autocommit.
pub struct OracleTx {
    conn: Connection,
    sql: &'static Statements,
    autocommit: bool,
}

/// The driver's view of the binds.
fn params<'a>(binds: &'a [Bind<'a>]) -> Vec<&'a dyn ToSql> {
    binds
        .iter()
        .map(|b| match b {
            Bind::Int(v) => v as &dyn ToSql,
            Bind::Text(v) => v as &dyn ToSql,
        })
        .collect()
}

struct OracleRow<'a>(&'a Row);

impl Columns for OracleRow<'_> {
    fn int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.get::<usize, Option<i64>>(i).map_err(map_err)
    }
    fn text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.get::<usize, Option<String>>(i).map_err(map_err)
    }
}

#[async_trait]
impl Tx for OracleTx {
    fn sql(&self) -> &'static Statements {
        self.sql
    }

    async fn execute(&mut self, sql: &'static str, binds: &[Bind<'_>]) -> StoreResult<u64> {
        let n = self
            .conn
            .execute(sql, &params(binds))
            .map_err(map_err)?
            .row_count()
            .map_err(map_err)?;
        if self.autocommit {
            self.conn.commit().map_err(map_err)?;
        }
        Ok(n)
    }

    async fn fetch<T: Send + 'static>(
        &mut self,
        sql: &'static str,
        binds: &[Bind<'_>],
        map: RowMap<T>,
    ) -> StoreResult<Vec<T>> {
        self.conn
            .query(sql, &params(binds))
            .map_err(map_err)?
            .map(|r| r.map_err(map_err).and_then(|r| map(&OracleRow(&r))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_connect_strings() {
        assert_eq!(
            parse_url("oracle://wt:p%40ss@db.example.com:1521/ORCLPDB1").unwrap(),
            ("wt".into(), "p@ss".into(), "//db.example.com:1521/ORCLPDB1".into())
        );
        assert!(parse_url("oracle://db:1521/x").is_err());
        assert!(parse_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn error_codes_map_to_store_errors() {
        assert!(matches!(
            classify(Some(1), "ORA-00001: unique constraint"),
            StoreError::Conflict
        ));
        assert!(matches!(
            classify(Some(12541), "ORA-12541: no listener"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(Some(3113), "ORA-03113: end-of-file"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(Some(942), "ORA-00942: table or view does not exist"),
            StoreError::Other(_)
        ));
        match classify(
            None,
            "DPI Error: DPI-1047: Cannot locate a 64-bit Oracle Client library",
        ) {
            StoreError::Unavailable(m) => assert!(m.contains("Instant Client") && m.contains("LD_LIBRARY_PATH")),
            other => panic!("{other:?}"),
        }
    }
}
