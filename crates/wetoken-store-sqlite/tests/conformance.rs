//! The store conformance suite on a fresh SQLite file.

use std::sync::Arc;

use wetoken_core::store::Store;
use wetoken_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conf.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    wetoken_core::conformance::run(Arc::new(store)).await;
}

#[tokio::test]
async fn migrating_an_installed_schema_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    for _ in 0..3 {
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
    }
}
