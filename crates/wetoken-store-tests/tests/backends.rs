//! The store conformance suite on every backend.
//!
//! SQLite always runs. MariaDB and PostgreSQL need a server: `cargo xtask ci`
//! starts both and runs these with `--include-ignored`; by hand, set
//! `WETOKEN_TEST_MYSQL_URL` / `WETOKEN_TEST_POSTGRES_URL` to a server URL
//! (each run creates its own database there). Oracle runs when
//! `WETOKEN_TEST_ORACLE_URL` names a schema on a real server and
//! `--include-ignored` is passed; no Oracle server can run in CI, so
//! `cargo xtask ci` skips it by name there (it is never reported passed
//! without having run).

use std::sync::Arc;

use wetoken_core::store::prelude::*;

async fn conform(store: impl Store) {
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating again is a no-op");
    wetoken_store_tests::conformance::run(Arc::new(store)).await;
}

/// A fresh database on the server named by `var`.
async fn database(var: &str) -> String {
    let server = std::env::var(var).unwrap_or_else(|_| panic!("set {var} to a server URL, or run `cargo xtask ci`"));
    wetoken_store_tests::fresh_database(&server)
        .await
        .expect("create a test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conf.db").display());
    conform(wetoken_store_sqlite::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs MariaDB/MySQL: run `cargo xtask ci`, or set WETOKEN_TEST_MYSQL_URL and pass --include-ignored"]
async fn mysql_passes_the_conformance_suite() {
    let url = database("WETOKEN_TEST_MYSQL_URL").await;
    conform(wetoken_store_mysql::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run `cargo xtask ci`, or set WETOKEN_TEST_POSTGRES_URL and pass --include-ignored"]
async fn postgres_passes_the_conformance_suite() {
    let url = database("WETOKEN_TEST_POSTGRES_URL").await;
    conform(wetoken_store_postgres::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs an Oracle server: set WETOKEN_TEST_ORACLE_URL=oracle://user:pass@host:1521/service and pass --include-ignored"]
async fn oracle_passes_the_conformance_suite() {
    let url = std::env::var("WETOKEN_TEST_ORACLE_URL")
        .expect("set WETOKEN_TEST_ORACLE_URL to a schema on an Oracle server (none runs in CI: it skips this test)");
    // The schema must be empty or wetoken's own: the suite adds rows with
    // fixed ids, so use a schema made for this test.
    conform(wetoken_store_oracle::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    for _ in 0..3 {
        wetoken_store_sqlite::connect(&url)
            .await
            .unwrap()
            .migrate()
            .await
            .unwrap();
    }
}

/// Expired session keys are purged by the index on their expiry, never
/// by a scan of the table (SPEC §13): SQLite's plan for both statements of
/// a purge batch names the index.
#[tokio::test]
async fn session_keys_are_purged_by_their_index() {
    use wetoken_store_sql::{Dialect, Statements};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plan.db").display());
    let store = wetoken_store_sqlite::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let sql = Statements::for_dialect(Dialect::Sqlite);
    for statement in [sql.session_keys_batch, sql.purge_session_keys] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {statement}")))
                .bind(1_i64)
                .bind(1_i64)
                .fetch_all(store.backend().pool())
                .await
                .unwrap();
        let text: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            text.iter().any(|t| t.contains("wt_session_keys_expiry")),
            "{statement}: {text:?}"
        );
        assert!(
            !text.iter().any(|t| t.starts_with("SCAN wt_session_keys")),
            "{statement}: {text:?}"
        );
    }
}

/// An account's last push is read through the index on (account, id),
/// never by a scan of every event (SPEC §14: the console shows it).
#[tokio::test]
async fn the_last_push_is_read_by_its_index() {
    use wetoken_store_sql::{Dialect, Statements};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("last.db").display());
    let store = wetoken_store_sqlite::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let statement = Statements::for_dialect(Dialect::Sqlite).select_last_message;
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {statement}")))
            .bind("mp:wx1")
            .bind(1_i64)
            .fetch_all(store.backend().pool())
            .await
            .unwrap();
    let text: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("wt_events_account")), "{text:?}");
    assert!(!text.iter().any(|t| t.starts_with("SCAN wt_events")), "{text:?}");
}

/// A row the service did not write (a hand edit, a newer version's value)
/// is an error where it is read, never a default.
#[tokio::test]
async fn rows_that_do_not_decode_are_errors() {
    use wetoken_core::domain::{AccountId, Credential};
    use wetoken_core::store::StoreError;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("corrupt.db").display());
    let store = wetoken_store_sqlite::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    for sql in [
        "INSERT INTO wt_accounts (id, kind, parent_id, secrets, config, status, created_at, updated_at) \
         VALUES ('mp:wxbad', 'mp', NULL, 'v1:x', '{}', 'suspended', 1, 1)",
        "INSERT INTO wt_credentials (account_id, kind, version, attempts) VALUES ('mp:wxbad', 'refresh_token', 0, 0)",
    ] {
        sqlx::query(sql).execute(store.backend().pool()).await.unwrap();
    }
    let id: AccountId = "mp:wxbad".parse().unwrap();
    assert!(
        matches!(store.account(&id).await, Err(StoreError::Corrupt(_))),
        "unknown status"
    );
    let page = wetoken_core::store::AccountQuery {
        prefix: "mp:wxbad".into(),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(store.accounts_page(&page).await, Err(StoreError::Corrupt(_))));
    assert!(
        matches!(store.credentials(&id).await, Err(StoreError::Corrupt(_))),
        "unknown credential"
    );
    assert_eq!(store.credential(&id, Credential::AccessToken).await.unwrap(), None);
}
