//! # wetoken-store-oracle
//!
//! The Oracle backend of the wetoken `Store`, on the `oracle` crate (ODPI-C,
//! bundled; blocking calls run in `spawn_blocking` on its session pool). It
//! runs the statements of `wetoken-store-sql` in their Oracle form (`:1`
//! binds, `MERGE` for insert-if-absent, `FETCH FIRST`), and applies its own
//! migrations (`migrations/oracle/`, same versions and names as the other
//! backends) with a small runner, since sqlx does not speak Oracle.
//!
//! The Oracle client library (Instant Client) must be installed where the
//! binary runs; without it, connecting fails at start with DPI-1047, which
//! [`connect`] turns into a message that says so. No Oracle server can run in
//! this project's CI: the SQL text, the migration splitting, the row mapping
//! and the error mapping are unit-tested, and the store conformance suite runs
//! against a real server when `WETOKEN_TEST_ORACLE_URL` is set.

use std::sync::Arc;

use async_trait::async_trait;
use oracle::pool::{Pool, PoolBuilder};
use oracle::sql_type::ToSql;
use oracle::{Connection, Row};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::store::{
    ApiKey, CredentialState, FailureWrite, RefreshWrite, Sealed, Store, StoreError, StoreResult, StoredAccount,
};
use wetoken_core::urlenc::percent_decode;
use wetoken_store_sql::rows::{AccountRow, CredentialRow, KeyRow};
use wetoken_store_sql::{Dialect, Statements};

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "initial", include_str!("../migrations/0001_initial.sql"))];

/// The DDL for a DBA, for `install-schema --print`.
pub fn schema_sql() -> String {
    let mut out = String::from(
        "CREATE TABLE wt_schema_migrations (version NUMBER(19) PRIMARY KEY, description VARCHAR2(200), installed_at NUMBER(19));\n",
    );
    for (version, name, sql) in MIGRATIONS {
        out.push_str(&format!("-- {version} {name}\n"));
        for stmt in split_statements(sql) {
            out.push_str(&stmt);
            out.push_str(";\n");
        }
        out.push_str(&format!(
            "INSERT INTO wt_schema_migrations (version, description, installed_at) VALUES ({version}, '{name}', 0);\n"
        ));
    }
    out
}

/// Splits a migration into statements: each ends with `;` at the end of a
/// line; `--` comment lines and blank lines are dropped; the `;` is not sent
/// (Oracle refuses it).
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        let code = line.split(" --").next().unwrap_or(line).trim_end();
        if !current.is_empty() {
            current.push('\n');
        }
        match code.strip_suffix(';') {
            Some(last) => {
                current.push_str(last);
                out.push(std::mem::take(&mut current).trim().to_owned());
            }
            None => current.push_str(code),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

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

fn map_err(e: oracle::Error) -> StoreError {
    classify(e.db_error().map(|d| d.code()), &e.to_string())
}

/// A read column, for row mapping that tests can drive without a server.
pub trait Columns {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
}

impl Columns for Row {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get::<usize, Option<String>>(i).map_err(map_err)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get::<usize, Option<i64>>(i).map_err(map_err)
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Other(format!("NULL in {what}")))
}

/// A `wt_accounts` row in `ACCOUNT_COLUMNS` order.
pub fn account_from<C: Columns>(r: &C) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        id: required(r.text(0)?, "id")?,
        kind: required(r.text(1)?, "kind")?,
        parent_id: r.text(2)?,
        secrets: required(r.text(3)?, "secrets")?,
        config: required(r.text(4)?, "config")?,
        status: required(r.text(5)?, "status")?,
        created_at: required(r.int(6)?, "created_at")?,
        updated_at: required(r.int(7)?, "updated_at")?,
    })
}

/// A `wt_credentials` row in `CREDENTIAL_COLUMNS` order.
pub fn credential_from<C: Columns>(r: &C) -> Result<CredentialRow, StoreError> {
    Ok(CredentialRow {
        account_id: required(r.text(0)?, "account_id")?,
        kind: required(r.text(1)?, "kind")?,
        value: r.text(2)?,
        expires_at: r.int(3)?,
        version: required(r.int(4)?, "version")?,
        refreshed_at: r.int(5)?,
        lease_owner: r.text(6)?,
        lease_until: r.int(7)?,
        last_errcode: r.int(8)?,
        last_errmsg: r.text(9)?,
        last_error_at: r.int(10)?,
        blocked_until: r.int(11)?,
        forced_at: r.int(12)?,
        due_at: r.int(13)?,
        attempts: r.int(14)?.unwrap_or(0),
    })
}

/// Row readers that decode into domain types (in `wetoken_store_sql::rows`).
fn account_of(r: &Row) -> Result<StoredAccount, StoreError> {
    account_from(r)?.decode()
}

fn credential_of(r: &Row) -> Result<CredentialState, StoreError> {
    credential_from(r)?.decode()
}

fn key_of(r: &Row) -> Result<ApiKey, StoreError> {
    key_from(r)?.decode()
}

/// A `wt_keys` row in `KEY_COLUMNS` order.
pub fn key_from<C: Columns>(r: &C) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        name: required(r.text(0)?, "name")?,
        hash: required(r.text(1)?, "hash")?,
        accounts: required(r.text(2)?, "accounts")?,
        created_at: required(r.int(3)?, "created_at")?,
    })
}

pub struct OracleStore {
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
    Ok(OracleStore {
        pool: Arc::new(pool),
        sql: Statements::for_dialect(Dialect::Oracle),
    })
}

/// Errors that mean "already done" when a migration statement is re-run:
/// ORA-00955 (name already used), ORA-01408 (columns already indexed).
fn already_exists(e: &oracle::Error) -> bool {
    matches!(e.db_error().map(|d| d.code()), Some(955 | 1408))
}

impl OracleStore {
    /// Runs `f` on a pooled session in a blocking thread; commits on
    /// success, rolls back on failure.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &'static Statements) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let sql = self.sql;
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(map_err)?;
            match f(&conn, sql) {
                Ok(v) => {
                    conn.commit().map_err(map_err)?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = conn.rollback();
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| StoreError::Other(format!("blocking task failed: {e}")))?
    }
}

fn exec(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> Result<u64, StoreError> {
    conn.execute(sql, params).map_err(map_err)?.row_count().map_err(map_err)
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    conn.query(sql, params)
        .map_err(map_err)?
        .map(|r| r.map_err(map_err).and_then(|r| map(&r)))
        .collect()
}

fn ensure_row(conn: &Connection, sql: &Statements, account_id: &str, kind: &str) -> Result<(), StoreError> {
    exec(conn, sql.insert_credential_if_absent, &[&account_id, &kind]).map(drop)
}

fn version_of(conn: &Connection, sql: &Statements, account_id: &str, kind: &str) -> Result<i64, StoreError> {
    let row = conn
        .query_row(sql.select_version, &[&account_id, &kind])
        .map_err(map_err)?;
    required(row.int(0)?, "version")
}

#[async_trait]
impl Store for OracleStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.run(|conn, _| {
            if let Err(e) = conn.execute(
                "CREATE TABLE wt_schema_migrations (version NUMBER(19) PRIMARY KEY, \
                 description VARCHAR2(200), installed_at NUMBER(19))",
                &[],
            ) && !already_exists(&e)
            {
                return Err(map_err(e));
            }
            for (version, name, text) in MIGRATIONS {
                let done = conn
                    .query(
                        "SELECT version FROM wt_schema_migrations WHERE version = :1",
                        &[version],
                    )
                    .map_err(map_err)?
                    .next()
                    .is_some();
                if done {
                    continue;
                }
                for stmt in split_statements(text) {
                    if let Err(e) = conn.execute(&stmt, &[])
                        && !already_exists(&e)
                    {
                        return Err(StoreError::Other(format!("migration {version} {name}: {e}")));
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                if let Err(e) = conn.execute(
                    "INSERT INTO wt_schema_migrations (version, description, installed_at) VALUES (:1, :2, :3)",
                    &[version, name, &now],
                ) && e.db_error().map(|d| d.code()) != Some(1)
                {
                    return Err(map_err(e));
                }
            }
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|conn, _| conn.query_row("SELECT 1 FROM dual", &[]).map(drop).map_err(map_err))
            .await
    }

    async fn insert_account(&self, a: &StoredAccount) -> StoreResult<()> {
        let r = AccountRow::encode(a);
        self.run(move |conn, sql| {
            exec(
                conn,
                sql.insert_account,
                &[
                    &r.id,
                    &r.kind,
                    &r.parent_id,
                    &r.secrets,
                    &r.config,
                    &r.status,
                    &r.created_at,
                    &r.updated_at,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>> {
        let id = id.to_string();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_account, &[&id], account_of)?.pop()))
            .await
    }

    async fn accounts(&self, parent: Option<&AccountId>) -> StoreResult<Vec<StoredAccount>> {
        let parent = parent.map(ToString::to_string);
        self.run(move |conn, sql| match &parent {
            Some(p) => rows(conn, sql.select_child_accounts, &[p], account_of),
            None => rows(conn, sql.select_all_accounts, &[], account_of),
        })
        .await
    }

    async fn update_account(&self, a: &StoredAccount, drop_credentials: bool) -> StoreResult<()> {
        let r = AccountRow::encode(a);
        self.run(move |conn, sql| {
            let n = exec(
                conn,
                sql.update_account,
                &[&r.secrets, &r.config, &r.status, &r.updated_at, &r.id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if drop_credentials {
                exec(conn, sql.delete_account_credentials, &[&r.id])?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
        let id = id.to_string();
        self.run(move |conn, sql| {
            exec(conn, sql.delete_family_credentials, &[&id, &id])?;
            exec(conn, sql.delete_child_accounts, &[&id])?;
            Ok(exec(conn, sql.delete_account, &[&id])? > 0)
        })
        .await
    }

    async fn credential(&self, id: &AccountId, c: Credential) -> StoreResult<Option<CredentialState>> {
        let (a, k) = (id.to_string(), c.as_str());
        self.run(move |conn, sql| Ok(rows(conn, sql.select_credential, &[&a, &k], credential_of)?.pop()))
            .await
    }

    async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>> {
        let a = id.to_string();
        self.run(move |conn, sql| rows(conn, sql.select_credentials, &[&a], credential_of))
            .await
    }

    async fn try_lease(
        &self,
        id: &AccountId,
        c: Credential,
        owner: &str,
        seen_version: i64,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        let (a, k, o) = (id.to_string(), c.as_str(), owner.to_owned());
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            conn.commit().map_err(map_err)?;
            Ok(exec(conn, sql.take_lease, &[&o, &until, &a, &k, &seen_version, &now, &o])? == 1)
        })
        .await
    }

    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
        let (a, k, o, v) = (
            w.account.to_string(),
            w.credential.as_str(),
            w.owner.to_owned(),
            w.value.as_str().to_owned(),
        );
        let (expires_at, refreshed_at, due_at) = (w.expires_at, w.refreshed_at, w.due_at);
        let (h, previous_until) = (w.value_hash.to_owned(), w.previous_until);
        let secrets = w.account_secrets.map(|s| s.as_str().to_owned());
        self.run(move |conn, sql| {
            let n = exec(
                conn,
                sql.complete_refresh,
                &[&previous_until, &h, &v, &expires_at, &refreshed_at, &due_at, &a, &k, &o],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let version = version_of(conn, sql, &a, k)?;
            if let Some(s) = &secrets {
                exec(conn, sql.update_account_secrets, &[s, &refreshed_at, &a])?;
            }
            Ok(Some(version))
        })
        .await
    }

    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<()> {
        let (a, k, o, m) = (
            w.account.to_string(),
            w.credential.as_str(),
            w.owner.to_owned(),
            w.error.errmsg.clone(),
        );
        let (errcode, at) = (w.error.errcode, w.error.at);
        let (blocked, due, attempts) = (w.blocked_until, w.due_at, w.attempts);
        self.run(move |conn, sql| {
            exec(
                conn,
                sql.record_failure,
                &[&errcode, &m, &at, &blocked, &due, &attempts, &a, &k, &o],
            )
            .map(drop)
        })
        .await
    }

    async fn put_pushed(
        &self,
        id: &AccountId,
        c: Credential,
        value: &Sealed,
        expires_at: i64,
        at: i64,
    ) -> StoreResult<Option<i64>> {
        let (a, k, v) = (id.to_string(), c.as_str(), value.as_str().to_owned());
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            if exec(conn, sql.put_pushed, &[&v, &expires_at, &at, &a, &k, &at])? == 0 {
                return Ok(None);
            }
            version_of(conn, sql, &a, k).map(Some)
        })
        .await
    }

    async fn try_mark_forced(&self, id: &AccountId, c: Credential, now: i64, not_before: i64) -> StoreResult<bool> {
        let (a, k) = (id.to_string(), c.as_str());
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            conn.commit().map_err(map_err)?;
            Ok(exec(conn, sql.mark_forced, &[&now, &a, &k, &not_before])? == 1)
        })
        .await
    }

    async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()> {
        let a = id.to_string();
        self.run(move |conn, sql| {
            exec(conn, sql.clear_blocks_filled, &[&now, &a])?;
            exec(conn, sql.clear_blocks_empty, &[&a]).map(drop)
        })
        .await
    }

    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>> {
        self.run(move |conn, sql| rows(conn, sql.select_due, &[&now, &now, &limit], credential_of))
            .await
    }

    async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>> {
        let h = hash.to_owned();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_by_hash, &[&h, &h, &now], credential_of)?.pop()))
            .await
    }

    async fn insert_key(&self, k: &ApiKey) -> StoreResult<()> {
        let k = KeyRow::encode(k);
        self.run(move |conn, sql| exec(conn, sql.insert_key, &[&k.name, &k.hash, &k.accounts, &k.created_at]).map(drop))
            .await
    }

    async fn keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.run(|conn, sql| rows(conn, sql.select_keys, &[], key_of)).await
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let h = hash.to_owned();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_key_by_hash, &[&h], key_of)?.pop()))
            .await
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        let n = name.to_owned();
        self.run(move |conn, sql| Ok(exec(conn, sql.delete_key, &[&n])? > 0))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements_without_semicolons() {
        let stmts = split_statements(MIGRATIONS[0].2);
        assert_eq!(stmts.len(), 7, "{stmts:#?}");
        assert!(
            stmts
                .iter()
                .any(|s| s == "CREATE INDEX wt_credentials_hash ON wt_credentials (value_hash)")
        );
        assert!(stmts[0].starts_with("CREATE TABLE wt_accounts ("));
        assert!(stmts[1] == "CREATE INDEX wt_accounts_parent ON wt_accounts (parent_id)");
        for s in &stmts {
            assert!(!s.ends_with(';'), "{s}");
            assert!(!s.contains("--"), "comments are dropped: {s}");
            assert!(
                !s.contains("IF NOT EXISTS"),
                "Oracle before 23ai has no IF NOT EXISTS: {s}"
            );
            assert!(!s.contains("BOOLEAN"), "{s}");
        }
        let value_col = stmts[2].lines().find(|l| l.trim_start().starts_with("value")).unwrap();
        assert!(
            value_col.contains("VARCHAR2(4000)"),
            "a credential holds at least 512 characters: {value_col}"
        );
        assert_eq!(split_statements("A;\n-- c\nB\n  C;\nD"), ["A", "B\n  C", "D"]);
    }

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

    /// Columns from memory, as a row would give them.
    struct Fake(Vec<Option<&'static str>>);

    impl Columns for Fake {
        fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
            Ok(self.0[i].map(str::to_owned))
        }
        fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
            self.0[i]
                .map(|s| {
                    s.parse()
                        .map_err(|_| StoreError::Other(format!("column {i} is not a number")))
                })
                .transpose()
        }
    }

    #[test]
    fn rows_map_in_column_order() {
        use wetoken_store_sql::statements::{ACCOUNT_COLUMNS, CREDENTIAL_COLUMNS, KEY_COLUMNS};
        fn cols(c: &'static str) -> Vec<&'static str> {
            c.split(',').map(str::trim).collect()
        }
        assert_eq!(cols(CREDENTIAL_COLUMNS).len(), 15);
        let row = Fake(vec![
            Some("mp:wx1"),
            Some("access_token"),
            Some("v1:x"),
            Some("7200"),
            Some("3"),
            Some("10"),
            None,
            None,
            Some("40125"),
            Some("invalid appsecret"),
            Some("11"),
            Some("12"),
            Some("13"),
            Some("14"),
            Some("2"),
        ]);
        let c = credential_from(&row).unwrap();
        assert_eq!(
            (c.account_id.as_str(), c.kind.as_str(), c.version, c.attempts),
            ("mp:wx1", "access_token", 3, 2)
        );
        assert_eq!((c.last_errcode, c.due_at, c.lease_owner), (Some(40125), Some(14), None));
        assert_eq!(cols(ACCOUNT_COLUMNS)[3], "secrets");
        let a = account_from(&Fake(vec![
            Some("authorizer:c:wx"),
            Some("authorizer"),
            Some("component:c"),
            Some("v1:s"),
            Some("{}"),
            Some("active"),
            Some("1"),
            Some("2"),
        ]))
        .unwrap();
        assert_eq!((a.parent_id.as_deref(), a.updated_at), (Some("component:c"), 2));
        assert_eq!(cols(KEY_COLUMNS), ["name", "hash", "accounts", "created_at"]);
        let k = key_from(&Fake(vec![Some("k"), Some("ab"), Some("[\"*\"]"), Some("5")])).unwrap();
        assert_eq!(k.created_at, 5);
        assert!(
            key_from(&Fake(vec![None, Some("ab"), Some("[]"), Some("5")])).is_err(),
            "NULL name"
        );
    }

    #[test]
    fn schema_for_a_dba_is_complete() {
        let ddl = schema_sql();
        assert!(ddl.contains("CREATE TABLE wt_schema_migrations"));
        assert!(ddl.contains("CREATE TABLE wt_credentials"));
        assert!(ddl.contains("VALUES (1, 'initial', 0);"));
    }
}
