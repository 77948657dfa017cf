//! The store conformance suite: what every `Store` backend must do.
//!
//! `tests/backends.rs` calls [`run`] for every backend with a store on a fresh, migrated database.
//! Each check uses its own account ids, so the order does not matter and a
//! failure names the operation.

use std::sync::Arc;

use wetoken_core::account::{AccountConfig, AccountStatus};
use wetoken_core::domain::{AccountId, Credential, Ident};
use wetoken_core::keys::Pattern;
use wetoken_core::store::{
    ApiKey, CredentialState, FailureWrite, KeyCheck, LastError, RefreshWrite, Sealed, Store, StoreError, StoredAccount,
};

use Credential::{AccessToken, JsapiTicket, VerifyTicket};

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
    master_keys_and_resealing(&*store).await;
}

/// Key checks, the walk over every account, and re-sealing in place.
pub async fn master_keys_and_resealing(s: &dyn Store) {
    assert_eq!(s.key_checks().await.unwrap(), []);
    let check = |id: &str, v: &str| KeyCheck {
        key_id: id.into(),
        check: sealed(v),
    };
    s.add_key_check(&check("bbbb0002", "v2:bbbb0002:c2"), 1).await.unwrap();
    s.add_key_check(&check("aaaa0001", "v2:aaaa0001:c1"), 2).await.unwrap();
    s.add_key_check(&check("aaaa0001", "v2:aaaa0001:other"), 3)
        .await
        .unwrap();
    assert_eq!(
        s.key_checks().await.unwrap(),
        [check("aaaa0001", "v2:aaaa0001:c1"), check("bbbb0002", "v2:bbbb0002:c2")],
        "by key id; a second record of an id changes nothing"
    );
    s.remove_key_check("bbbb0002").await.unwrap();
    assert_eq!(s.key_checks().await.unwrap(), [check("aaaa0001", "v2:aaaa0001:c1")]);

    // Every account, in batches, in id order.
    let mut seen = Vec::new();
    let mut after: Option<AccountId> = None;
    loop {
        let page = s.accounts_after(after.as_ref(), 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|a| a.id.clone());
        seen.extend(page.into_iter().map(|a| a.id.to_string()));
    }
    let all: Vec<String> = s
        .accounts(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(seen, all);
    assert!(seen.len() > 3, "the walk took several batches");

    // A corp's WeCom apps: an id range, not a scan; ids of other corps that
    // share a prefix are outside it.
    for id in [
        "work:wwconf:1000002",
        "work:wwconf:1000003",
        "work:wwconfx:1000002",
        "provider:wwconf",
    ] {
        s.insert_account(&account(id)).await.unwrap();
    }
    let corp = Ident::parse("corpid", "wwconf").unwrap();
    let apps: Vec<String> = s
        .work_apps(&corp)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(apps, ["work:wwconf:1000002", "work:wwconf:1000003"]);

    // Re-sealing is compare-and-set on what was read.
    let a = account("mp:conf_reseal");
    s.insert_account(&a).await.unwrap();
    assert!(s.reseal_account(&a, &sealed("v2:k:new")).await.unwrap());
    assert_eq!(s.account(&a.id).await.unwrap().unwrap().secrets, sealed("v2:k:new"));
    let changed = StoredAccount {
        updated_at: a.updated_at + 1,
        ..a.clone()
    };
    assert!(
        !s.reseal_account(&changed, &sealed("v2:k:lost")).await.unwrap(),
        "a row written since it was read is left alone"
    );
    assert!(s.try_lease(&a.id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&a.id, AccessToken, "o", &sealed("v1:old"), 1))
        .await
        .unwrap();
    let row = s.credential(&a.id, AccessToken).await.unwrap().unwrap();
    assert!(s.reseal_value(&row, &sealed("v2:k:value")).await.unwrap());
    let after = s.credential(&a.id, AccessToken).await.unwrap().unwrap();
    assert_eq!((after.value, after.version), (Some(sealed("v2:k:value")), row.version));
    assert!(
        !s.reseal_value(
            &CredentialState {
                version: row.version - 1,
                ..row
            },
            &sealed("v2:k:lost")
        )
        .await
        .unwrap()
    );
}

fn id(s: &str) -> AccountId {
    s.parse().expect("a valid account id")
}

fn sealed(s: &str) -> Sealed {
    Sealed::from_stored(s)
}

/// An account (its parent follows from its id).
fn account(id_text: &str) -> StoredAccount {
    StoredAccount {
        id: id(id_text),
        secrets: sealed("v1:sealed"),
        config: AccountConfig::default(),
        status: AccountStatus::Active,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

/// A failure recorded by `owner` that would block the credential for long,
/// were it written.
async fn late_failure(s: &dyn Store, id: &AccountId, credential: Credential, owner: &str) {
    let error = LastError {
        errcode: 45009,
        errmsg: "late".into(),
        at: 31_003,
    };
    s.record_failure(&FailureWrite {
        account: id,
        credential,
        owner,
        error: &error,
        blocked_until: Some(99_999_999),
        due_at: 99_999_999,
        attempts: 7,
    })
    .await
    .unwrap();
}

/// A lease long enough for any check to finish inside it.
const LEASE: i64 = 60_000;

/// This host's clock in epoch milliseconds (the test databases run here).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits until the lease held on a credential has expired (the database's
/// clock cannot be moved, only waited for).
async fn lease_runs_out(s: &dyn Store, id: &AccountId, credential: Credential) {
    let row = s.credential(id, credential).await.unwrap().unwrap();
    let until = row.lease_until.expect("a lease is held");
    while wall_ms() <= until + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A refresh write of `value` (whose hash is the value itself) at `at`.
fn write<'a>(id: &'a AccountId, cred: Credential, owner: &'a str, value: &'a Sealed, at: i64) -> RefreshWrite<'a> {
    RefreshWrite {
        account: id,
        credential: cred,
        owner,
        value,
        value_hash: value.as_str(),
        previous_until: at + 300_000,
        expires_at: at + 7_200_000,
        refreshed_at: at,
        due_at: at + 6_600_000,
        account_secrets: None,
    }
}

fn errcode(row: &CredentialState) -> Option<i64> {
    row.last_error.as_ref().map(|e| e.errcode)
}

pub async fn accounts(s: &dyn Store) {
    let a = account("mp:conf_acc");
    s.insert_account(&a).await.expect("insert_account");
    assert!(
        matches!(s.insert_account(&a).await, Err(StoreError::Conflict)),
        "insert_account of an existing id must be Conflict"
    );
    assert_eq!(s.account(&a.id).await.unwrap(), Some(a.clone()), "account round trip");
    assert_eq!(s.account(&id("mp:conf_absent")).await.unwrap(), None);
    let mut b = a.clone();
    b.secrets = sealed("v1:other");
    b.config.token_api = wetoken_core::domain::TokenApi::Classic;
    b.status = AccountStatus::NeedsReauthorization;
    b.updated_at = 2_000;
    s.update_account(&b, false).await.expect("update_account");
    assert_eq!(s.account(&a.id).await.unwrap(), Some(b));
    let mut absent = a.clone();
    absent.id = id("mp:conf_nobody");
    assert!(matches!(
        s.update_account(&absent, false).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.accounts(None).await.unwrap().iter().any(|r| r.id == a.id));
}

pub async fn account_children_and_delete(s: &dyn Store) {
    let component = id("component:conf_c");
    let child = id("authorizer:conf_c:wx1");
    s.insert_account(&account("component:conf_c")).await.unwrap();
    s.insert_account(&account("authorizer:conf_c:wx1")).await.unwrap();
    s.insert_account(&account("authorizer:conf_c:wx2")).await.unwrap();
    let children = s.accounts(Some(&component)).await.unwrap();
    let ids: Vec<_> = children.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        ["authorizer:conf_c:wx1", "authorizer:conf_c:wx2"],
        "children ordered by id"
    );
    assert!(s.try_lease(&child, AccessToken, "o", 0, LEASE).await.unwrap());
    assert!(s.delete_account(&component).await.unwrap());
    assert!(
        !s.delete_account(&component).await.unwrap(),
        "second delete reports absence"
    );
    assert_eq!(s.account(&child).await.unwrap(), None, "children deleted");
    assert_eq!(
        s.credential(&child, AccessToken).await.unwrap(),
        None,
        "children's credentials deleted"
    );
}

pub async fn update_can_drop_credentials(s: &dyn Store) {
    let a = account("mp:conf_drop");
    s.insert_account(&a).await.unwrap();
    assert!(s.try_lease(&a.id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&a.id, AccessToken, "o", &sealed("v"), 1))
        .await
        .unwrap();
    s.update_account(&a, false).await.unwrap();
    assert!(s.credential(&a.id, AccessToken).await.unwrap().is_some());
    s.update_account(&a, true).await.unwrap();
    assert!(
        s.credential(&a.id, AccessToken).await.unwrap().is_none(),
        "drop_credentials"
    );
    // A component's rotation keeps what WeChat pushed, and its children.
    let c = account("component:conf_rotate");
    s.insert_account(&c).await.unwrap();
    let child = account("authorizer:conf_rotate:wxchild");
    s.insert_account(&child).await.unwrap();
    s.put_pushed(&c.id, VerifyTicket, &sealed("v1:ticket"), 43_200_000, 1)
        .await
        .unwrap();
    assert!(s.try_lease(&c.id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&c.id, AccessToken, "o", &sealed("v"), 1))
        .await
        .unwrap();
    s.update_account(&c, true).await.unwrap();
    assert!(s.credential(&c.id, AccessToken).await.unwrap().is_none());
    assert_eq!(
        s.credential(&c.id, VerifyTicket).await.unwrap().and_then(|r| r.value),
        Some(sealed("v1:ticket")),
        "the pushed ticket stays"
    );
    assert!(s.account(&child.id).await.unwrap().is_some(), "children stay");
}

pub async fn lease_and_versions(s: &dyn Store) {
    let id = &id("mp:conf_lease");
    s.insert_account(&account("mp:conf_lease")).await.unwrap();
    assert_eq!(s.credential(id, AccessToken).await.unwrap(), None);
    assert!(
        s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap(),
        "first lease"
    );
    let row = s
        .credential(id, AccessToken)
        .await
        .unwrap()
        .expect("lease creates the row");
    assert_eq!((row.version, row.lease_owner.as_deref()), (0, Some("a")));
    let until = row.lease_until.expect("a lease has an end");
    let wall = wall_ms();
    assert!(
        (wall + LEASE - 5_000..=wall + LEASE + 5_000).contains(&until),
        "the lease ends LEASE after the database's now: {until} vs {wall}"
    );
    assert!(
        !s.try_lease(id, AccessToken, "b", 0, LEASE).await.unwrap(),
        "held lease refuses another owner"
    );
    assert!(
        !s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap(),
        "a held lease refuses its own holder too: no second fetch while one is in flight"
    );
    assert_eq!(
        s.complete_refresh(&write(id, AccessToken, "b", &sealed("x"), 300))
            .await
            .unwrap(),
        None,
        "non-holder cannot write"
    );
    assert_eq!(
        s.complete_refresh(&write(id, AccessToken, "a", &sealed("v1:tok"), 300))
            .await
            .unwrap(),
        Some(1)
    );
    let row = s.credential(id, AccessToken).await.unwrap().unwrap();
    assert_eq!(row.value, Some(sealed("v1:tok")));
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
        !s.try_lease(id, AccessToken, "b", 0, LEASE).await.unwrap(),
        "stale version refused"
    );
    assert!(s.try_lease(id, AccessToken, "b", 1, LEASE).await.unwrap());
    assert_eq!(
        s.complete_refresh(&write(id, AccessToken, "b", &sealed("v1:tok2"), 500))
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(s.credentials(id).await.unwrap().len(), 1);
}

/// Many concurrent lease attempts at one version: exactly one wins.
pub async fn lease_contention(s: Arc<dyn Store>) {
    let a = account("mp:conf_contention");
    s.insert_account(&a).await.unwrap();
    let id = a.id;
    for round in 0..5i64 {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let s = s.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                s.try_lease(&id, AccessToken, &format!("owner{i}"), round, LEASE)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += t.await.unwrap() as usize;
        }
        assert_eq!(winners, 1, "exactly one lease holder in round {round}");
        let row = s.credential(&id, AccessToken).await.unwrap().unwrap();
        let owner = row.lease_owner.unwrap();
        assert_eq!(
            s.complete_refresh(&write(&id, AccessToken, &owner, &sealed("v"), 2_000))
                .await
                .unwrap(),
            Some(round + 1)
        );
    }
}

pub async fn lease_expiry(s: &dyn Store) {
    let id = &id("mp:conf_expiry");
    s.insert_account(&account("mp:conf_expiry")).await.unwrap();
    assert!(s.try_lease(id, JsapiTicket, "dead", 0, 50).await.unwrap());
    assert!(
        !s.try_lease(id, JsapiTicket, "alive", 0, LEASE).await.unwrap(),
        "held until it expires"
    );
    lease_runs_out(s, id, JsapiTicket).await;
    assert!(
        s.try_lease(id, JsapiTicket, "alive", 0, LEASE).await.unwrap(),
        "expired lease is taken over"
    );
    assert_eq!(
        s.complete_refresh(&write(id, JsapiTicket, "dead", &sealed("x"), 31_002))
            .await
            .unwrap(),
        None,
        "dead owner cannot write after takeover"
    );
    // Nor record a late failure over the new holder's work.
    late_failure(s, id, JsapiTicket, "dead").await;
    let row = s.credential(id, JsapiTicket).await.unwrap().unwrap();
    assert_eq!(
        (
            row.last_error,
            row.blocked_until,
            row.attempts,
            row.lease_owner.as_deref()
        ),
        (None, None, 0, Some("alive")),
        "a late failure from an expired holder changes nothing"
    );
    // Nor once the lease is released (no owner at all).
    assert_eq!(
        s.complete_refresh(&write(id, JsapiTicket, "alive", &sealed("v"), 31_004))
            .await
            .unwrap(),
        Some(1)
    );
    late_failure(s, id, JsapiTicket, "dead").await;
    let row = s.credential(id, JsapiTicket).await.unwrap().unwrap();
    assert_eq!((row.last_error, row.blocked_until), (None, None));

    // A lease that ran out, even with nobody taking over: its holder writes
    // nothing (fencing by the database's clock).
    assert!(s.try_lease(id, AccessToken, "late", 0, 50).await.unwrap());
    lease_runs_out(s, id, AccessToken).await;
    assert_eq!(
        s.complete_refresh(&write(id, AccessToken, "late", &sealed("x"), 1))
            .await
            .unwrap(),
        None,
        "an expired holder cannot write a value"
    );
    late_failure(s, id, AccessToken, "late").await;
    let row = s.credential(id, AccessToken).await.unwrap().unwrap();
    assert_eq!((row.value, row.last_error, row.attempts), (None, None, 0));
}

pub async fn failures_and_blocks(s: &dyn Store) {
    let id = &id("mp:conf_fail");
    s.insert_account(&account("mp:conf_fail")).await.unwrap();
    assert!(s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap());
    let quota = LastError {
        errcode: 45009,
        errmsg: "reach max api daily quota limit".into(),
        at: 10,
    };
    s.record_failure(&FailureWrite {
        account: id,
        credential: AccessToken,
        owner: "a",
        error: &quota,
        blocked_until: Some(99_000),
        due_at: 99_000,
        attempts: 1,
    })
    .await
    .unwrap();
    let row = s.credential(id, AccessToken).await.unwrap().unwrap();
    assert_eq!(row.last_error.as_ref(), Some(&quota));
    assert_eq!(row.blocked_until, Some(99_000));
    assert_eq!((row.due_at, row.attempts), (Some(99_000), 1));
    assert_eq!(row.lease_owner, None, "failure releases the lease");
    assert_eq!(row.version, 0, "failure does not bump the version");
    s.clear_blocks(id, 15).await.unwrap();
    let row = s.credential(id, AccessToken).await.unwrap().unwrap();
    assert_eq!((row.blocked_until, errcode(&row), row.attempts), (None, None, 0));
    assert_eq!(row.due_at, None, "an empty row is not scheduled by a reset");
    assert!(s.try_lease(id, AccessToken, "b", 0, LEASE).await.unwrap());
    s.record_failure(&FailureWrite {
        account: id,
        credential: AccessToken,
        owner: "b",
        error: &LastError {
            errcode: -1,
            errmsg: "system error".into(),
            at: 30,
        },
        blocked_until: None,
        due_at: 31_000,
        attempts: 2,
    })
    .await
    .unwrap();
    assert!(s.try_lease(id, AccessToken, "c", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(id, AccessToken, "c", &sealed("v"), 50))
        .await
        .unwrap();
    let row = s.credential(id, AccessToken).await.unwrap().unwrap();
    assert_eq!(row.last_error, None, "success clears the last error");
}

pub async fn pushed_values(s: &dyn Store) {
    let id = &id("component:conf_push");
    s.insert_account(&account("component:conf_push")).await.unwrap();
    let push = |value: &'static str, at: i64| async move {
        s.put_pushed(id, VerifyTicket, &sealed(value), 43_200_000 + at, at)
            .await
    };
    assert_eq!(push("v1:t1", 1).await.unwrap(), Some(1));
    assert_eq!(push("v1:t2", 2).await.unwrap(), Some(2));
    assert_eq!(push("v1:old", 1).await.unwrap(), None, "an older push changes nothing");
    assert_eq!(push("v1:t2", 2).await.unwrap(), Some(3), "the same push again is fine");
    let row = s.credential(id, VerifyTicket).await.unwrap().unwrap();
    assert_eq!(
        (row.value, row.expires_at, row.refreshed_at),
        (Some(sealed("v1:t2")), Some(43_200_002), Some(2))
    );
    assert_eq!(row.due_at, None, "pushed values are never scheduled");
}

/// The force-refresh limit holds under concurrency: one winner per window.
pub async fn forced_limit(s: Arc<dyn Store>) {
    let a = account("mp:conf_forced");
    s.insert_account(&a).await.unwrap();
    let id = a.id;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            s.try_mark_forced(&id, AccessToken, 100_000, 40_000).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1, "one force refresh per window");
    assert!(!s.try_mark_forced(&id, AccessToken, 159_999, 99_999).await.unwrap());
    assert!(
        s.try_mark_forced(&id, AccessToken, 160_001, 100_001).await.unwrap(),
        "allowed after the window"
    );
}

pub async fn rotated_secrets_with_refresh(s: &dyn Store) {
    let id = &id("authorizer:conf_rot:wx1");
    s.insert_account(&account("authorizer:conf_rot:wx1")).await.unwrap();
    assert!(s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap());
    let (token, rotated) = (sealed("v1:tok"), sealed("v1:new-refresh-token"));
    let mut w = write(id, AccessToken, "a", &token, 10);
    w.account_secrets = Some(&rotated);
    assert_eq!(s.complete_refresh(&w).await.unwrap(), Some(1));
    assert_eq!(s.account(id).await.unwrap().unwrap().secrets, rotated);
    // A lost lease writes neither.
    let (token2, lost) = (sealed("v1:tok2"), sealed("v1:lost"));
    let mut w = write(id, AccessToken, "a", &token2, 20);
    w.account_secrets = Some(&lost);
    assert_eq!(s.complete_refresh(&w).await.unwrap(), None);
    assert_eq!(s.account(id).await.unwrap().unwrap().secrets, rotated);
}

/// WeChat asks for at least 512 characters per credential; sealed values
/// are longer still.
pub async fn long_values(s: &dyn Store) {
    let id = &id("mp:conf_long");
    s.insert_account(&account("mp:conf_long")).await.unwrap();
    let long = sealed(&"x".repeat(1_500));
    assert!(s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap());
    let mut w = write(id, AccessToken, "a", &long, 1);
    w.value_hash = "long-value-hash";
    s.complete_refresh(&w).await.unwrap();
    assert_eq!(s.credential(id, AccessToken).await.unwrap().unwrap().value, Some(long));
}

/// The scheduler's query: filled, due, lease free; earliest first.
pub async fn due_order(s: &dyn Store) {
    let value = sealed("v");
    let fill = |name: &'static str, due: i64| {
        let value = value.clone();
        async move {
            let a = account(name);
            s.insert_account(&a).await.unwrap();
            assert!(s.try_lease(&a.id, AccessToken, "o", 0, LEASE).await.unwrap());
            let mut w = write(&a.id, AccessToken, "o", &value, 0);
            w.due_at = due;
            s.complete_refresh(&w).await.unwrap();
        }
    };
    // A year ahead of now, so that other checks' rows (due around 6.6e6)
    // sort first and leases (on the database's clock) can be placed
    // around `base`.
    let base = wall_ms() + 365 * 86_400_000;
    fill("mp:conf_due_a", base + 100).await;
    fill("mp:conf_due_b", base + 50).await;
    fill("mp:conf_due_c", base + 200).await;
    fill("mp:conf_due_d", base + 10).await;
    assert!(
        s.try_lease(&id("mp:conf_due_d"), AccessToken, "busy", 1, base + 500 - wall_ms())
            .await
            .unwrap()
    );
    s.put_pushed(&id("mp:conf_due_a"), VerifyTicket, &sealed("t"), base + 99, 0)
        .await
        .unwrap();
    let e = account("mp:conf_due_e");
    s.insert_account(&e).await.unwrap();
    assert!(s.try_lease(&e.id, AccessToken, "o", 0, LEASE).await.unwrap());

    let ids = |rows: Vec<CredentialState>| -> Vec<String> {
        rows.into_iter()
            .map(|r| format!("{}/{}", r.account, r.credential))
            .filter(|r| r.starts_with("mp:conf_due"))
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
    let id = &id("mp:conf_hash");
    s.insert_account(&account("mp:conf_hash")).await.unwrap();
    assert!(s.try_lease(id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(id, AccessToken, "o", &sealed("h1"), 1_000))
        .await
        .unwrap();
    let found = |h: &'static str, now: i64| async move {
        s.credential_by_hash(h, now)
            .await
            .unwrap()
            .map(|r| (r.account, r.credential))
    };
    assert_eq!(found("h1", 2_000).await, Some((id.clone(), AccessToken)));
    assert!(s.try_lease(id, AccessToken, "o", 1, LEASE).await.unwrap());
    s.complete_refresh(&write(id, AccessToken, "o", &sealed("h2"), 10_000))
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
    let k = ApiKey {
        name: "conf-key".into(),
        hash: "ab".repeat(32),
        accounts: vec![
            Pattern::parse("mp:wx1").unwrap(),
            Pattern::parse("component:wxc/*").unwrap(),
        ],
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
