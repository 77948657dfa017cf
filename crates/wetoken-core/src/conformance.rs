//! The store conformance suite: what every `Store` backend must do.
//!
//! A backend's test calls [`run`] with a store on a fresh, migrated database.
//! Each check uses its own account ids, so the order does not matter and a
//! failure names the operation.

use std::sync::Arc;

use crate::store::{AccountRow, FailureWrite, KeyRow, RefreshWrite, Store, StoreError};

/// Runs every check. Panics with the name of the first that fails.
pub async fn run(store: Arc<dyn Store>) {
    store.migrate().await.expect("migrate twice is idempotent");
    store.ping().await.expect("ping");
    accounts(&*store).await;
    account_children_and_delete(&*store).await;
    update_can_drop_credentials(&*store).await;
    lease_and_versions(&*store).await;
    lease_contention(store.clone()).await;
    lease_expiry(&*store).await;
    failures_and_blocks(&*store).await;
    pushed_values(&*store).await;
    forced_limit(store.clone()).await;
    rotated_secrets_with_refresh(&*store).await;
    long_values(&*store).await;
    due_order(&*store).await;
    values_by_hash(&*store).await;
    keys(&*store).await;
}

fn account(id: &str, parent: Option<&str>) -> AccountRow {
    AccountRow {
        id: id.into(),
        kind: id.split(':').next().unwrap().into(),
        parent_id: parent.map(Into::into),
        secrets: "v1:sealed".into(),
        config: "{}".into(),
        status: "active".into(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn write<'a>(id: &'a str, kind: &'a str, owner: &'a str, value: &'a str, at: i64) -> RefreshWrite<'a> {
    RefreshWrite {
        account_id: id,
        kind,
        owner,
        value,
        value_hash: value,
        previous_until: at + 300_000,
        expires_at: at + 7_200_000,
        refreshed_at: at,
        due_at: at + 6_600_000,
        account_secrets: None,
    }
}

pub async fn accounts(s: &dyn Store) {
    let a = account("mp:conf_acc", None);
    s.insert_account(&a).await.expect("insert_account");
    assert!(
        matches!(s.insert_account(&a).await, Err(StoreError::Conflict)),
        "insert_account of an existing id must be Conflict"
    );
    assert_eq!(
        s.account("mp:conf_acc").await.unwrap(),
        Some(a.clone()),
        "account round trip"
    );
    assert_eq!(s.account("mp:conf_absent").await.unwrap(), None);
    let mut b = a.clone();
    b.secrets = "v1:other".into();
    b.config = r#"{"token_api":"classic"}"#.into();
    b.status = "needs_reauthorization".into();
    b.updated_at = 2_000;
    s.update_account(&b, false).await.expect("update_account");
    assert_eq!(s.account("mp:conf_acc").await.unwrap(), Some(b));
    let mut absent = a.clone();
    absent.id = "mp:conf_nobody".into();
    assert!(matches!(
        s.update_account(&absent, false).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.accounts(None).await.unwrap().iter().any(|r| r.id == "mp:conf_acc"));
}

pub async fn account_children_and_delete(s: &dyn Store) {
    s.insert_account(&account("component:conf_c", None)).await.unwrap();
    s.insert_account(&account("authorizer:conf_c:wx1", Some("component:conf_c")))
        .await
        .unwrap();
    s.insert_account(&account("authorizer:conf_c:wx2", Some("component:conf_c")))
        .await
        .unwrap();
    let children = s.accounts(Some("component:conf_c")).await.unwrap();
    let ids: Vec<_> = children.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["authorizer:conf_c:wx1", "authorizer:conf_c:wx2"],
        "children ordered by id"
    );
    assert!(
        s.try_lease("authorizer:conf_c:wx1", "access_token", "o", 0, 0, 10)
            .await
            .unwrap()
    );
    assert!(s.delete_account("component:conf_c").await.unwrap());
    assert!(
        !s.delete_account("component:conf_c").await.unwrap(),
        "second delete reports absence"
    );
    assert_eq!(
        s.account("authorizer:conf_c:wx1").await.unwrap(),
        None,
        "children deleted"
    );
    assert_eq!(
        s.credential("authorizer:conf_c:wx1", "access_token").await.unwrap(),
        None,
        "children's credentials deleted"
    );
}

pub async fn update_can_drop_credentials(s: &dyn Store) {
    let a = account("mp:conf_drop", None);
    s.insert_account(&a).await.unwrap();
    assert!(
        s.try_lease("mp:conf_drop", "access_token", "o", 0, 0, 10)
            .await
            .unwrap()
    );
    s.complete_refresh(&write("mp:conf_drop", "access_token", "o", "v", 1))
        .await
        .unwrap();
    s.update_account(&a, false).await.unwrap();
    assert!(s.credential("mp:conf_drop", "access_token").await.unwrap().is_some());
    s.update_account(&a, true).await.unwrap();
    assert!(
        s.credential("mp:conf_drop", "access_token").await.unwrap().is_none(),
        "drop_credentials"
    );
}

pub async fn lease_and_versions(s: &dyn Store) {
    let id = "mp:conf_lease";
    s.insert_account(&account(id, None)).await.unwrap();
    assert_eq!(s.credential(id, "access_token").await.unwrap(), None);
    assert!(
        s.try_lease(id, "access_token", "a", 0, 100, 30_100).await.unwrap(),
        "first lease"
    );
    let row = s
        .credential(id, "access_token")
        .await
        .unwrap()
        .expect("lease creates the row");
    assert_eq!(
        (row.version, row.lease_owner.as_deref(), row.lease_until),
        (0, Some("a"), Some(30_100))
    );
    assert!(
        !s.try_lease(id, "access_token", "b", 0, 200, 30_200).await.unwrap(),
        "held lease refuses another owner"
    );
    assert!(
        s.try_lease(id, "access_token", "a", 0, 200, 30_200).await.unwrap(),
        "holder may renew"
    );
    assert_eq!(
        s.complete_refresh(&write(id, "access_token", "b", "x", 300))
            .await
            .unwrap(),
        None,
        "non-holder cannot write"
    );
    assert_eq!(
        s.complete_refresh(&write(id, "access_token", "a", "v1:tok", 300))
            .await
            .unwrap(),
        Some(1)
    );
    let row = s.credential(id, "access_token").await.unwrap().unwrap();
    assert_eq!(row.value.as_deref(), Some("v1:tok"));
    assert_eq!(
        (row.version, row.expires_at, row.refreshed_at),
        (1, Some(7_200_300), Some(300))
    );
    assert_eq!(
        (row.lease_owner, row.lease_until),
        (None, None),
        "write releases the lease"
    );
    assert!(
        !s.try_lease(id, "access_token", "b", 0, 400, 30_400).await.unwrap(),
        "stale version refused"
    );
    assert!(s.try_lease(id, "access_token", "b", 1, 400, 30_400).await.unwrap());
    assert_eq!(
        s.complete_refresh(&write(id, "access_token", "b", "v1:tok2", 500))
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(s.credentials(id).await.unwrap().len(), 1);
}

/// Many concurrent lease attempts at one version: exactly one wins.
pub async fn lease_contention(s: Arc<dyn Store>) {
    let id = "mp:conf_contention";
    s.insert_account(&account(id, None)).await.unwrap();
    for round in 0..5i64 {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.try_lease(id, "access_token", &format!("owner{i}"), round, 1_000, 31_000)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += t.await.unwrap() as usize;
        }
        assert_eq!(winners, 1, "exactly one lease holder in round {round}");
        let row = s.credential(id, "access_token").await.unwrap().unwrap();
        let owner = row.lease_owner.unwrap();
        assert_eq!(
            s.complete_refresh(&write(id, "access_token", &owner, "v", 2_000))
                .await
                .unwrap(),
            Some(round + 1)
        );
    }
}

pub async fn lease_expiry(s: &dyn Store) {
    let id = "mp:conf_expiry";
    s.insert_account(&account(id, None)).await.unwrap();
    assert!(s.try_lease(id, "jsapi_ticket", "dead", 0, 1_000, 31_000).await.unwrap());
    assert!(
        !s.try_lease(id, "jsapi_ticket", "alive", 0, 30_999, 60_999)
            .await
            .unwrap()
    );
    assert!(
        s.try_lease(id, "jsapi_ticket", "alive", 0, 31_001, 61_001)
            .await
            .unwrap(),
        "expired lease is taken over"
    );
    assert_eq!(
        s.complete_refresh(&write(id, "jsapi_ticket", "dead", "x", 31_002))
            .await
            .unwrap(),
        None,
        "dead owner cannot write after takeover"
    );
}

pub async fn failures_and_blocks(s: &dyn Store) {
    let id = "mp:conf_fail";
    s.insert_account(&account(id, None)).await.unwrap();
    assert!(s.try_lease(id, "access_token", "a", 0, 0, 30_000).await.unwrap());
    s.record_failure(&FailureWrite {
        account_id: id,
        kind: "access_token",
        owner: "a",
        errcode: 45009,
        errmsg: "reach max api daily quota limit",
        at: 10,
        blocked_until: Some(99_000),
        due_at: 99_000,
        attempts: 1,
    })
    .await
    .unwrap();
    let row = s.credential(id, "access_token").await.unwrap().unwrap();
    assert_eq!(row.last_errcode, Some(45009));
    assert_eq!(row.last_errmsg.as_deref(), Some("reach max api daily quota limit"));
    assert_eq!((row.last_error_at, row.blocked_until), (Some(10), Some(99_000)));
    assert_eq!((row.due_at, row.attempts), (Some(99_000), 1));
    assert_eq!(row.lease_owner, None, "failure releases the lease");
    assert_eq!(row.version, 0, "failure does not bump the version");
    s.clear_blocks(id, 15).await.unwrap();
    let row = s.credential(id, "access_token").await.unwrap().unwrap();
    assert_eq!((row.blocked_until, row.last_errcode, row.attempts), (None, None, 0));
    assert_eq!(row.due_at, None, "an empty row is not scheduled by a reset");
    assert!(s.try_lease(id, "access_token", "b", 0, 20, 30_020).await.unwrap());
    s.record_failure(&FailureWrite {
        account_id: id,
        kind: "access_token",
        owner: "b",
        errcode: -1,
        errmsg: "system error",
        at: 30,
        blocked_until: None,
        due_at: 31_000,
        attempts: 2,
    })
    .await
    .unwrap();
    assert!(s.try_lease(id, "access_token", "c", 0, 40, 30_040).await.unwrap());
    s.complete_refresh(&write(id, "access_token", "c", "v", 50))
        .await
        .unwrap();
    let row = s.credential(id, "access_token").await.unwrap().unwrap();
    assert_eq!(
        (row.last_errcode, row.last_error_at),
        (None, None),
        "success clears the last error"
    );
}

pub async fn pushed_values(s: &dyn Store) {
    let id = "component:conf_push";
    s.insert_account(&account(id, None)).await.unwrap();
    let push = |value: &'static str, at: i64| s.put_pushed(id, "verify_ticket", value, 43_200_000 + at, at);
    assert_eq!(push("v1:t1", 1).await.unwrap(), Some(1));
    assert_eq!(push("v1:t2", 2).await.unwrap(), Some(2));
    assert_eq!(push("v1:old", 1).await.unwrap(), None, "an older push changes nothing");
    assert_eq!(push("v1:t2", 2).await.unwrap(), Some(3), "the same push again is fine");
    let row = s.credential(id, "verify_ticket").await.unwrap().unwrap();
    assert_eq!(
        (row.value.as_deref(), row.expires_at, row.refreshed_at),
        (Some("v1:t2"), Some(43_200_002), Some(2))
    );
    assert_eq!(row.due_at, None, "pushed values are never scheduled");
}

/// The force-refresh limit holds under concurrency: one winner per window.
pub async fn forced_limit(s: Arc<dyn Store>) {
    let id = "mp:conf_forced";
    s.insert_account(&account(id, None)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.try_mark_forced(id, "access_token", 100_000, 40_000).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1, "one force refresh per window");
    assert!(!s.try_mark_forced(id, "access_token", 159_999, 99_999).await.unwrap());
    assert!(
        s.try_mark_forced(id, "access_token", 160_001, 100_001).await.unwrap(),
        "allowed after the window"
    );
}

pub async fn rotated_secrets_with_refresh(s: &dyn Store) {
    let id = "authorizer:conf_rot:wx1";
    s.insert_account(&account(id, Some("component:conf_rot")))
        .await
        .unwrap();
    assert!(s.try_lease(id, "access_token", "a", 0, 0, 30_000).await.unwrap());
    let mut w = write(id, "access_token", "a", "v1:tok", 10);
    w.account_secrets = Some("v1:new-refresh-token");
    assert_eq!(s.complete_refresh(&w).await.unwrap(), Some(1));
    assert_eq!(s.account(id).await.unwrap().unwrap().secrets, "v1:new-refresh-token");
    // A lost lease writes neither.
    let mut w = write(id, "access_token", "a", "v1:tok2", 20);
    w.account_secrets = Some("v1:lost");
    assert_eq!(s.complete_refresh(&w).await.unwrap(), None);
    assert_eq!(s.account(id).await.unwrap().unwrap().secrets, "v1:new-refresh-token");
}

/// WeChat asks for at least 512 characters per credential; sealed values
/// are longer still.
pub async fn long_values(s: &dyn Store) {
    let id = "mp:conf_long";
    s.insert_account(&account(id, None)).await.unwrap();
    let long = "x".repeat(1_500);
    assert!(s.try_lease(id, "access_token", "a", 0, 0, 30_000).await.unwrap());
    let mut w = write(id, "access_token", "a", &long, 1);
    w.value_hash = "long-value-hash";
    s.complete_refresh(&w).await.unwrap();
    assert_eq!(
        s.credential(id, "access_token").await.unwrap().unwrap().value,
        Some(long)
    );
}

/// The scheduler's query: filled, due, lease free; earliest first.
pub async fn due_order(s: &dyn Store) {
    let fill = |id: &'static str, due: i64| async move {
        s.insert_account(&account(id, None)).await.unwrap();
        assert!(s.try_lease(id, "access_token", "o", 0, 0, 1).await.unwrap());
        let mut w = write(id, "access_token", "o", "v", 0);
        w.due_at = due;
        s.complete_refresh(&w).await.unwrap();
    };
    // Far in the future, so that other checks' rows (due around 6.6e6) sort first.
    let base = 10_000_000_000;
    fill("mp:conf_due_a", base + 100).await;
    fill("mp:conf_due_b", base + 50).await;
    fill("mp:conf_due_c", base + 200).await;
    fill("mp:conf_due_d", base + 10).await;
    assert!(
        s.try_lease("mp:conf_due_d", "access_token", "busy", 1, base, base + 1_000)
            .await
            .unwrap()
    );
    s.put_pushed("mp:conf_due_a", "verify_ticket", "t", base + 99, 0)
        .await
        .unwrap();
    s.insert_account(&account("mp:conf_due_e", None)).await.unwrap();
    assert!(
        s.try_lease("mp:conf_due_e", "access_token", "o", 0, base, base + 1)
            .await
            .unwrap()
    );

    let ids = |rows: Vec<crate::store::CredentialRow>| -> Vec<String> {
        rows.into_iter()
            .filter(|r| r.account_id.starts_with("mp:conf_due"))
            .map(|r| format!("{}/{}", r.account_id, r.kind))
            .collect()
    };
    let due = ids(s.due(base + 150, 1_000).await.unwrap());
    assert_eq!(
        due,
        ["mp:conf_due_b/access_token", "mp:conf_due_a/access_token"],
        "leased, pushed, empty and future rows are not due"
    );
    let due = ids(s.due(base + 1_001, 1_000).await.unwrap());
    assert_eq!(due[0], "mp:conf_due_d/access_token", "an expired lease is due again");
    assert_eq!(due.len(), 4);
    assert_eq!(s.due(base + 1_001, 2).await.unwrap().len(), 2, "limit");
}

/// A presented token is found by its hash, the previous one within its grace.
pub async fn values_by_hash(s: &dyn Store) {
    let id = "mp:conf_hash";
    s.insert_account(&account(id, None)).await.unwrap();
    assert!(s.try_lease(id, "access_token", "o", 0, 0, 1).await.unwrap());
    s.complete_refresh(&write(id, "access_token", "o", "h1", 1_000))
        .await
        .unwrap();
    let found = |h: &'static str, now: i64| async move {
        s.credential_by_hash(h, now)
            .await
            .unwrap()
            .map(|r| (r.account_id, r.kind))
    };
    assert_eq!(
        found("h1", 2_000).await,
        Some((id.to_owned(), "access_token".to_owned()))
    );
    assert!(s.try_lease(id, "access_token", "o", 1, 2_000, 3_000).await.unwrap());
    s.complete_refresh(&write(id, "access_token", "o", "h2", 10_000))
        .await
        .unwrap();
    assert!(found("h2", 11_000).await.is_some());
    assert!(
        found("h1", 309_999).await.is_some(),
        "the previous value within its grace"
    );
    assert_eq!(found("h1", 310_000).await, None, "not after");
    assert_eq!(found("nothing", 11_000).await, None);
}

pub async fn keys(s: &dyn Store) {
    let k = KeyRow {
        name: "conf-key".into(),
        hash: "ab".repeat(32),
        accounts: r#"["mp:wx1"]"#.into(),
        created_at: 5,
    };
    s.insert_key(&k).await.unwrap();
    assert!(matches!(s.insert_key(&k).await, Err(StoreError::Conflict)));
    assert_eq!(s.key_by_hash(&k.hash).await.unwrap(), Some(k.clone()));
    assert_eq!(s.key_by_hash(&"cd".repeat(32)).await.unwrap(), None);
    assert!(s.keys().await.unwrap().contains(&k));
    assert!(s.delete_key("conf-key").await.unwrap());
    assert!(!s.delete_key("conf-key").await.unwrap());
    assert_eq!(s.key_by_hash(&k.hash).await.unwrap(), None);
}
