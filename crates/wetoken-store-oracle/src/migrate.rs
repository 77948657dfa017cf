//! Oracle's migrations: sqlx does not speak Oracle, so a small runner
//! applies `migrations/oracle/` (same versions and names as the other
//! backends) statement by statement; "already exists" counts as done, so an
//! interrupted run can be run again.

use oracle::Connection;
use wetoken_core::store::StoreError;

use crate::map_err;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "master_keys", include_str!("../migrations/0002_master_keys.sql")),
    (3, "events", include_str!("../migrations/0003_events.sql")),
    (4, "console", include_str!("../migrations/0004_console.sql")),
    (5, "audit", include_str!("../migrations/0005_audit.sql")),
    (6, "custody", include_str!("../migrations/0006_custody.sql")),
    (7, "signin", include_str!("../migrations/0007_signin.sql")),
    (8, "replies", include_str!("../migrations/0008_replies.sql")),
];

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

/// Errors that mean "already done" when a migration statement is re-run:
/// ORA-00955 (name already used), ORA-01408 (columns already indexed),
/// ORA-01430 (column being added already exists).
fn already_exists(e: &oracle::Error) -> bool {
    matches!(e.db_error().map(|d| d.code()), Some(955 | 1408 | 1430))
}

/// Applies every migration not yet recorded.
pub(crate) fn run(conn: &Connection) -> Result<(), StoreError> {
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
    fn schema_for_a_dba_is_complete() {
        let ddl = schema_sql();
        assert!(ddl.contains("CREATE TABLE wt_schema_migrations"));
        assert!(ddl.contains("CREATE TABLE wt_credentials"));
        assert!(ddl.contains("VALUES (1, 'initial', 0);"));
    }
}
