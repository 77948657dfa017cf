//! The store conformance suite: what every `Store` backend must do.
//!
//! `tests/backends.rs` calls [`run`] for every backend with a store on a fresh, migrated database.
//! Each check uses its own account ids, so the order does not matter and a
//! failure names the operation.

use std::sync::Arc;

use serde_json::{Map, Value};
use wetoken_core::account::{AccountConfig, AccountStatus};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{AttemptWrite, CallbackSource, DeliveryStatus, Format, NewEvent, TypePattern, Webhook};
use wetoken_core::keys::Pattern;
use wetoken_core::store::{
    AccountQuery, ApiKey, AuditEntry, AuditQuery, CredentialState, EventQuery, FailureWrite, ForceBudget, KeyCheck,
    LastError, PushWrite, RefreshWrite, Sealed, Store, StoreError, StoredAccount, Verdict,
};

use Credential::{AccessToken, JsapiTicket, VerifyTicket};

/// A staleness deadline that never comes in these checks.
const NEVER: i64 = i64::MAX / 4;

/// A verify ticket pushed at `at`.
fn push_write<'a>(
    account: &'a AccountId,
    value: &'a Sealed,
    expires_at: i64,
    at: i64,
    stale_at: i64,
    events: &'a [NewEvent],
) -> PushWrite<'a> {
    PushWrite {
        account,
        credential: VerifyTicket,
        value,
        expires_at,
        at,
        stale_at,
        events,
    }
}

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
    verdicts_and_the_force_cap(store.clone()).await;
    rotated_secrets_with_refresh(&*store).await;
    long_values(&*store).await;
    due_order(&*store).await;
    values_by_hash(&*store).await;
    keys(&*store).await;
    master_keys_and_resealing(&*store).await;
    events_outbox(&*store).await;
    events_commit_in_order(store.clone()).await;
    webhooks_and_deliveries(&*store).await;
    console_queries(&*store).await;
    audit_trail(&*store).await;
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

    // Every account, in pages, in id order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = AccountQuery {
            after: after.take(),
            limit: 3,
            ..Default::default()
        };
        let page = s.accounts_page(&q).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|a| a.id.to_string());
        seen.extend(page.into_iter().map(|a| a.id.to_string()));
    }
    let all = ids_with_prefix(s, "").await;
    assert_eq!(seen, all);
    assert!(seen.len() > 3, "the walk took several pages");

    // A corp's WeCom apps: an id range, not a scan; ids of other corps that
    // share a prefix are outside it.
    for id in [
        "work:wwconf:1000002",
        "work:wwconf:1000003",
        "work:wwconfx:1000002",
        "provider:wwconf",
    ] {
        s.insert_account(&account(id), &[]).await.unwrap();
    }
    assert_eq!(
        ids_with_prefix(s, "work:wwconf:").await,
        ["work:wwconf:1000002", "work:wwconf:1000003"]
    );
    // By status, and not of one.
    let mut suspended = account("work:wwconf:1000004");
    suspended.status = AccountStatus::Revoked;
    s.insert_account(&suspended, &[]).await.unwrap();
    let q = |status, not_status| AccountQuery {
        prefix: "work:wwconf:".into(),
        status,
        not_status,
        limit: 10,
        ..Default::default()
    };
    let ids = |v: Vec<StoredAccount>| v.into_iter().map(|a| a.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(s.accounts_page(&q(Some(AccountStatus::Revoked), None)).await.unwrap()),
        ["work:wwconf:1000004"]
    );
    assert_eq!(
        ids(s.accounts_page(&q(None, Some(AccountStatus::Revoked))).await.unwrap()),
        ["work:wwconf:1000002", "work:wwconf:1000003"]
    );
    // The credentials of a page's accounts, in one range.
    let (w2, w3) = (id("work:wwconf:1000002"), id("work:wwconf:1000003"));
    for w in [&w2, &w3, &id("work:wwconfx:1000002")] {
        assert!(s.try_lease(w, AccessToken, "o", 0, LEASE).await.unwrap());
    }
    let rows = s.credentials_between(&w2, &w3).await.unwrap();
    let owners: Vec<String> = rows.iter().map(|r| r.account.to_string()).collect();
    assert_eq!(owners, ["work:wwconf:1000002", "work:wwconf:1000003"]);

    // Re-sealing is compare-and-set on what was read.
    let a = account("mp:conf_reseal");
    s.insert_account(&a, &[]).await.unwrap();
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
    let written = s
        .record_failure(&FailureWrite {
            account: id,
            credential,
            owner,
            error: &error,
            blocked_until: Some(99_999_999),
            due_at: 99_999_999,
            attempts: 7,
            events: &[],
        })
        .await
        .unwrap();
    assert!(!written, "a late failure says it was not written");
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
        events: &[],
    }
}

fn errcode(row: &CredentialState) -> Option<i64> {
    row.last_error.as_ref().map(|e| e.errcode)
}

pub async fn accounts(s: &dyn Store) {
    let a = account("mp:conf_acc");
    s.insert_account(&a, &[]).await.expect("insert_account");
    assert!(
        matches!(s.insert_account(&a, &[]).await, Err(StoreError::Conflict)),
        "insert_account of an existing id must be Conflict"
    );
    assert_eq!(s.account(&a.id).await.unwrap(), Some(a.clone()), "account round trip");
    assert_eq!(s.account(&id("mp:conf_absent")).await.unwrap(), None);
    let mut b = a.clone();
    b.secrets = sealed("v1:other");
    b.config.token_api = wetoken_core::domain::TokenApi::Classic;
    b.status = AccountStatus::NeedsReauthorization;
    b.updated_at = 2_000;
    s.update_account(&b, false, &[]).await.expect("update_account");
    assert_eq!(s.account(&a.id).await.unwrap(), Some(b));
    let mut absent = a.clone();
    absent.id = id("mp:conf_nobody");
    assert!(matches!(
        s.update_account(&absent, false, &[]).await,
        Err(StoreError::NotFound)
    ));
    assert!(ids_with_prefix(s, "mp:").await.contains(&a.id.to_string()));
}

/// The ids of every account starting with `prefix`, page by page.
async fn ids_with_prefix(s: &dyn Store, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = AccountQuery {
        prefix: prefix.into(),
        limit: 2,
        ..Default::default()
    };
    loop {
        let page = s.accounts_page(&q).await.unwrap();
        let full = page.len() == 2;
        q.after = page.last().map(|a| a.id.to_string());
        out.extend(page.into_iter().map(|a| a.id.to_string()));
        if !full {
            return out;
        }
    }
}

pub async fn account_children_and_delete(s: &dyn Store) {
    let component = id("component:conf_c");
    let child = id("authorizer:conf_c:wx1");
    s.insert_account(&account("component:conf_c"), &[]).await.unwrap();
    s.insert_account(&account("authorizer:conf_c:wx1"), &[]).await.unwrap();
    s.insert_account(&account("authorizer:conf_c:wx2"), &[]).await.unwrap();
    // A prefix is a range: a component whose appid extends this one's is
    // not its parent.
    s.insert_account(&account("component:conf_cc"), &[]).await.unwrap();
    s.insert_account(&account("authorizer:conf_cc:wx1"), &[]).await.unwrap();
    assert_eq!(
        ids_with_prefix(s, "authorizer:conf_c:").await,
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
    s.insert_account(&a, &[]).await.unwrap();
    assert!(s.try_lease(&a.id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&a.id, AccessToken, "o", &sealed("v"), 1))
        .await
        .unwrap();
    s.update_account(&a, false, &[]).await.unwrap();
    assert!(s.credential(&a.id, AccessToken).await.unwrap().is_some());
    assert!(s.try_lease(&a.id, JsapiTicket, "o", 0, LEASE).await.unwrap());
    let failed = LastError {
        errcode: 40125,
        errmsg: "invalid appsecret".into(),
        at: 2,
    };
    s.record_failure(&FailureWrite {
        account: &a.id,
        credential: JsapiTicket,
        owner: "o",
        error: &failed,
        blocked_until: Some(600_000),
        due_at: 600_000,
        attempts: 2,
        events: &[],
    })
    .await
    .unwrap();
    assert!(s.try_lease(&a.id, AccessToken, "late", 1, LEASE).await.unwrap());
    s.update_account(&a, true, &[]).await.unwrap();
    let dropped = s.credential(&a.id, AccessToken).await.unwrap().unwrap();
    assert_eq!(
        (dropped.value, dropped.expires_at, dropped.lease_owner, dropped.due_at),
        (None, None, None, None),
        "drop_credentials: the value and the lease go"
    );
    assert!(dropped.version > 1, "a fetch that read the old version cannot write");
    let failing = s.credential(&a.id, JsapiTicket).await.unwrap().unwrap();
    assert_eq!(failing.blocked_until, None, "the block is lifted");
    assert_eq!(
        (failing.last_error.as_ref(), failing.attempts),
        (Some(&failed), 2),
        "the failures stay: an open alert stays open"
    );
    assert!(
        s.complete_refresh(&write(&a.id, AccessToken, "late", &sealed("old"), 3))
            .await
            .unwrap()
            .is_none(),
        "the lease holder from before the rotation writes nothing"
    );
    // A component's rotation keeps what WeChat pushed, and its children.
    let c = account("component:conf_rotate");
    s.insert_account(&c, &[]).await.unwrap();
    let child = account("authorizer:conf_rotate:wxchild");
    s.insert_account(&child, &[]).await.unwrap();
    s.put_pushed(&push_write(&c.id, &sealed("v1:ticket"), 43_200_000, 1, NEVER, &[]))
        .await
        .unwrap();
    assert!(s.try_lease(&c.id, AccessToken, "o", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&c.id, AccessToken, "o", &sealed("v"), 1))
        .await
        .unwrap();
    s.update_account(&c, true, &[]).await.unwrap();
    assert_eq!(s.credential(&c.id, AccessToken).await.unwrap().unwrap().value, None);
    assert_eq!(
        s.credential(&c.id, VerifyTicket).await.unwrap().and_then(|r| r.value),
        Some(sealed("v1:ticket")),
        "the pushed ticket stays"
    );
    assert!(s.account(&child.id).await.unwrap().is_some(), "children stay");
}

pub async fn lease_and_versions(s: &dyn Store) {
    let id = &id("mp:conf_lease");
    s.insert_account(&account("mp:conf_lease"), &[]).await.unwrap();
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
    s.insert_account(&a, &[]).await.unwrap();
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
    s.insert_account(&account("mp:conf_expiry"), &[]).await.unwrap();
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
    s.insert_account(&account("mp:conf_fail"), &[]).await.unwrap();
    assert!(s.try_lease(id, AccessToken, "a", 0, LEASE).await.unwrap());
    let quota = LastError {
        errcode: 45009,
        errmsg: "reach max api daily quota limit".into(),
        at: 10,
    };
    let written = s
        .record_failure(&FailureWrite {
            account: id,
            credential: AccessToken,
            owner: "a",
            error: &quota,
            blocked_until: Some(99_000),
            due_at: 99_000,
            attempts: 1,
            events: &[],
        })
        .await
        .unwrap();
    assert!(written, "the holder's failure is written");
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
        events: &[],
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
    s.insert_account(&account("component:conf_push"), &[]).await.unwrap();
    let push = |value: &'static str, at: i64| async move {
        s.put_pushed(&push_write(id, &sealed(value), 43_200_000 + at, at, NEVER, &[]))
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
    assert_eq!(row.due_at, Some(NEVER), "a pushed value is due when it goes stale");
}

/// The force-refresh limit holds under concurrency: one winner per window,
/// on the database's clock.
pub async fn forced_limit(s: Arc<dyn Store>) {
    let a = account("mp:conf_forced");
    s.insert_account(&a, &[]).await.unwrap();
    let id = a.id;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            s.try_mark_forced(&id, AccessToken, 3_600_000).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1, "one force refresh per window");
    assert!(!s.try_mark_forced(&id, AccessToken, 3_600_000).await.unwrap());
    assert!(
        s.try_mark_forced(&id, AccessToken, 0).await.unwrap(),
        "allowed once the window has passed"
    );
}

/// WeChat's verdict belongs to the value it was given on; forced calls are
/// capped per WeChat day, and the first refusal commits its event once,
/// however many ask at once.
pub async fn verdicts_and_the_force_cap(s: Arc<dyn Store>) {
    let a = account("mp:conf_verdict");
    s.insert_account(&a, &[]).await.unwrap();
    let id = a.id;
    assert!(s.try_lease(&id, AccessToken, "o", 0, LEASE).await.unwrap());
    let v1 = sealed("v1:one");
    assert_eq!(
        s.complete_refresh(&write(&id, AccessToken, "o", &v1, 1)).await.unwrap(),
        Some(1)
    );
    let alive = Verdict { alive: true, at: 5 };
    assert!(
        !s.record_verdict(&id, AccessToken, 0, alive).await.unwrap(),
        "another value's verdict"
    );
    assert!(s.record_verdict(&id, AccessToken, 1, alive).await.unwrap());
    let row = s.credential(&id, AccessToken).await.unwrap().unwrap();
    assert_eq!(row.verdict, Some(alive));
    let dead = Verdict { alive: false, at: 6 };
    assert!(s.record_verdict(&id, AccessToken, 1, dead).await.unwrap());
    assert_eq!(
        s.credential(&id, AccessToken).await.unwrap().unwrap().verdict,
        Some(dead)
    );
    assert!(s.try_lease(&id, AccessToken, "o", 1, LEASE).await.unwrap());
    let v2 = sealed("v1:two");
    s.complete_refresh(&write(&id, AccessToken, "o", &v2, 2)).await.unwrap();
    assert_eq!(
        s.credential(&id, AccessToken).await.unwrap().unwrap().verdict,
        None,
        "a new value has no verdict yet"
    );

    let spent = NewEvent::credential(
        wetoken_core::events::types::FORCE_BUDGET_SPENT,
        &id,
        AccessToken,
        7,
        &[],
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, id, spent) = (s.clone(), id.clone(), spent.clone());
        tasks.push(tokio::spawn(async move {
            s.try_force_today(&id, AccessToken, 3, &[spent]).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let count = |b: ForceBudget| outcomes.iter().filter(|o| **o == b).count();
    assert_eq!(count(ForceBudget::Granted), 3, "three forced calls a day: {outcomes:?}");
    assert_eq!(count(ForceBudget::Spent { first: true }), 1, "{outcomes:?}");
    assert_eq!(count(ForceBudget::Spent { first: false }), 4, "{outcomes:?}");
    assert_eq!(
        s.try_force_today(&id, AccessToken, 3, std::slice::from_ref(&spent))
            .await
            .unwrap(),
        ForceBudget::Spent { first: false }
    );
    let q = EventQuery {
        after: 0,
        type_prefix: Some("wetoken.credential.force_budget_spent".into()),
        account: Some(id.clone()),
        family: None,
        limit: 100,
    };
    assert_eq!(s.events(&q).await.unwrap().len(), 1, "raised once a day");
    assert_eq!(
        s.try_force_today(&id, AccessToken, 10, &[spent]).await.unwrap(),
        ForceBudget::Granted,
        "a larger cap counts the same day on"
    );
}

pub async fn rotated_secrets_with_refresh(s: &dyn Store) {
    let id = &id("authorizer:conf_rot:wx1");
    s.insert_account(&account("authorizer:conf_rot:wx1"), &[])
        .await
        .unwrap();
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
    s.insert_account(&account("mp:conf_long"), &[]).await.unwrap();
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
            s.insert_account(&a, &[]).await.unwrap();
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
    s.put_pushed(&push_write(
        &id("mp:conf_due_a"),
        &sealed("t"),
        base + 99,
        0,
        NEVER,
        &[],
    ))
    .await
    .unwrap();
    let e = account("mp:conf_due_e");
    s.insert_account(&e, &[]).await.unwrap();
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

    // Of the due ones, the earliest-expiring come first, whatever their due_at.
    let fill_expiring = |name: &'static str, due: i64, expires: i64| {
        let value = value.clone();
        async move {
            let a = account(name);
            s.insert_account(&a, &[]).await.unwrap();
            assert!(s.try_lease(&a.id, AccessToken, "o", 0, LEASE).await.unwrap());
            let mut w = write(&a.id, AccessToken, "o", &value, 0);
            (w.due_at, w.expires_at) = (due, expires);
            s.complete_refresh(&w).await.unwrap();
        }
    };
    let later = base + 10 * 86_400_000;
    fill_expiring("mp:conf_due_x", later + 10, later + 900_000).await;
    fill_expiring("mp:conf_due_y", later + 20, later + 100_000).await;
    let due: Vec<String> = s
        .due(later + 30, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.account.to_string())
        .filter(|a| a.starts_with("mp:conf_due_x") || a.starts_with("mp:conf_due_y"))
        .collect();
    assert_eq!(due, ["mp:conf_due_y", "mp:conf_due_x"], "earliest expiry first");
}

/// A presented token is found by its hash, the previous one within its grace.
pub async fn values_by_hash(s: &dyn Store) {
    let id = &id("mp:conf_hash");
    s.insert_account(&account("mp:conf_hash"), &[]).await.unwrap();
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
        tokens: true,
        paths: None,
        created_at: 5,
    };
    s.insert_key(&k).await.unwrap();
    assert!(matches!(s.insert_key(&k).await, Err(StoreError::Conflict)));
    assert_eq!(s.key_by_hash(&k.hash).await.unwrap(), Some(k.clone()));
    assert_eq!(s.key_by_hash(&"cd".repeat(32)).await.unwrap(), None);
    assert!(s.keys_page(None, 1000).await.unwrap().contains(&k));
    let mut k2 = k.clone();
    k2.name = "conf-key2".into();
    k2.hash = "ef".repeat(32);
    k2.tokens = false;
    k2.paths = Some(vec![
        wetoken_core::keys::PathPattern::parse("/cgi-bin/message/*").unwrap(),
    ]);
    s.insert_key(&k2).await.unwrap();
    assert_eq!(
        s.key_by_hash(&k2.hash).await.unwrap(),
        Some(k2.clone()),
        "a key that may not read tokens keeps saying so"
    );
    let page = s.keys_page(Some("conf-key"), 1).await.unwrap();
    assert_eq!(page, [k2.clone()], "after a name, by name, limited");
    assert!(s.delete_key("conf-key2").await.unwrap());
    assert!(s.delete_key("conf-key").await.unwrap());
    assert!(!s.delete_key("conf-key").await.unwrap());
    assert_eq!(s.key_by_hash(&k.hash).await.unwrap(), None);
}

fn event(kind: &str, account: &str, n: i64) -> NewEvent {
    let mut data = Map::new();
    data.insert("n".into(), Value::from(n));
    data.insert("text".into(), Value::from("授权 <ok> & \"quoted\""));
    NewEvent::new(kind, &id(account), 1_000 + n, data)
}

/// The events of `account` after `after`, as (type, data.n).
async fn events_of(s: &dyn Store, account: &str) -> Vec<(String, i64)> {
    let q = EventQuery {
        account: Some(id(account)),
        limit: 1_000,
        ..Default::default()
    };
    s.events(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.data["n"].as_i64().unwrap_or(-1)))
        .collect()
}

/// The outbox: events alone and with the writes they report, committed
/// with them or not at all; dedupe; filters.
pub async fn events_outbox(s: &dyn Store) {
    let c = "component:conf_ev";
    let mut first = event("component.authorized", c, 1);
    first.source = Some(CallbackSource {
        query: "msg_signature=a&timestamp=1&nonce=n".into(),
        content_type: Some("text/xml".into()),
        body: "<xml><Encrypt>x</Encrypt></xml>".into(),
    });
    first.dedupe = Some("d".repeat(64));
    s.append_events(&[first.clone(), event("component.unauthorized", c, 2)])
        .await
        .unwrap();
    s.append_events(&[first.clone()]).await.unwrap();
    s.append_events(&[]).await.unwrap();
    let all = s
        .events(&EventQuery {
            account: Some(id(c)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "a second event with the same dedupe is skipped");
    assert!(all[0].id < all[1].id, "ids increase");
    assert_eq!(all[0].kind, "component.authorized");
    assert_eq!(all[0].data, first.data, "data round-trips, text included");
    assert_eq!(all[0].source, first.source);
    assert_eq!(all[0].at, 1_001);
    assert_eq!(all[1].source, None);
    assert_eq!(s.event(all[1].id).await.unwrap().unwrap(), all[1]);
    assert_eq!(s.event(-5).await.unwrap(), None);

    // Filters: after, type prefix, exact account, family (children).
    let child = "authorizer:conf_ev:wx1";
    s.append_events(&[event("wetoken.credential.blocked", child, 3)])
        .await
        .unwrap();
    let q = |after: i64, prefix: Option<&str>, account: Option<&str>, family: Option<&str>| EventQuery {
        after,
        type_prefix: prefix.map(str::to_owned),
        account: account.map(id),
        family: family.map(id),
        limit: 100,
    };
    let n =
        |v: Vec<wetoken_core::events::Event>| v.into_iter().map(|e| e.data["n"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(n(s.events(&q(0, None, None, Some(c))).await.unwrap()), [1, 2, 3]);
    assert_eq!(n(s.events(&q(all[0].id, None, None, Some(c))).await.unwrap()), [2, 3]);
    assert_eq!(
        n(s.events(&q(0, Some("component.un"), None, Some(c))).await.unwrap()),
        [2]
    );
    assert_eq!(
        n(s.events(&q(0, Some("wetoken."), Some(child), None)).await.unwrap()),
        [3]
    );
    let mut limited = q(0, None, None, Some(c));
    limited.limit = 2;
    assert_eq!(n(s.events(&limited).await.unwrap()), [1, 2], "limit");

    // With a write: committed together, or not at all.
    let a = account("mp:conf_ev_a");
    s.insert_account(&a, &[event("t.insert", "mp:conf_ev_a", 10)])
        .await
        .unwrap();
    assert!(matches!(
        s.insert_account(&a, &[event("t.insert", "mp:conf_ev_a", 11)]).await,
        Err(StoreError::Conflict)
    ));
    s.update_account(&a, false, &[event("t.update", "mp:conf_ev_a", 12)])
        .await
        .unwrap();
    assert!(matches!(
        s.update_account(
            &account("mp:conf_ev_absent"),
            true,
            &[event("t.update", "mp:conf_ev_absent", 13)]
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        events_of(s, "mp:conf_ev_absent").await.is_empty(),
        "rolled back with the update"
    );
    assert!(s.try_lease(&a.id, AccessToken, "owner", 0, LEASE).await.unwrap());
    let failure = |owner: &'static str, n: i64| {
        let ev = vec![event("t.failure", "mp:conf_ev_a", n)];
        async move {
            let err = LastError {
                errcode: 40125,
                errmsg: "invalid appsecret".into(),
                at: 5,
            };
            s.record_failure(&FailureWrite {
                account: &id("mp:conf_ev_a"),
                credential: AccessToken,
                owner,
                error: &err,
                blocked_until: Some(9),
                due_at: 9,
                attempts: 1,
                events: &ev,
            })
            .await
            .unwrap()
        }
    };
    assert!(!failure("intruder", 14).await);
    assert!(failure("owner", 15).await);
    let v = sealed("v1:value");
    assert!(s.try_lease(&a.id, AccessToken, "owner", 0, LEASE).await.unwrap());
    let recovered = [event("t.recovered", "mp:conf_ev_a", 16)];
    let mut w = write(&a.id, AccessToken, "intruder", &v, 10);
    w.events = &recovered;
    assert_eq!(s.complete_refresh(&w).await.unwrap(), None);
    w.owner = "owner";
    assert_eq!(s.complete_refresh(&w).await.unwrap(), Some(1));
    // A pushed value: the callback's event is committed whether or not the
    // push was newer; the staleness deadline comes once.
    let push = |at: i64, n: i64| async move {
        s.put_pushed(&push_write(
            &id("mp:conf_ev_a"),
            &sealed("v1:t"),
            at + 43_200_000,
            at,
            at + 1_500_000,
            &[event("t.push", "mp:conf_ev_a", n)],
        ))
        .await
        .unwrap()
    };
    assert_eq!(push(2_000, 17).await, Some(1));
    assert_eq!(push(1_000, 18).await, None);
    let ticket = s.credential(&a.id, VerifyTicket).await.unwrap().unwrap();
    assert_eq!(ticket.due_at, Some(1_502_000));
    let stale = [event("t.stale", "mp:conf_ev_a", 19)];
    assert!(s.mark_pushed_stale(&a.id, VerifyTicket, 1, &stale).await.unwrap());
    assert!(
        !s.mark_pushed_stale(&a.id, VerifyTicket, 1, &stale).await.unwrap(),
        "once"
    );
    assert_eq!(s.credential(&a.id, VerifyTicket).await.unwrap().unwrap().due_at, None);
    assert_eq!(
        events_of(s, "mp:conf_ev_a").await,
        [
            ("t.insert".to_owned(), 10),
            ("t.update".to_owned(), 12),
            ("t.failure".to_owned(), 15),
            ("t.recovered".to_owned(), 16),
            ("t.push".to_owned(), 17),
            ("t.push".to_owned(), 18),
            ("t.stale".to_owned(), 19),
        ],
        "a write that did not happen commits no event"
    );

    // Retention.
    let before = s.events(&q(0, None, None, Some(c))).await.unwrap().len();
    assert_eq!(before, 3);
    assert!(s.purge_events(1_003).await.unwrap() >= 2);
    assert_eq!(n(s.events(&q(0, None, None, Some(c))).await.unwrap()), [3]);
}

/// Ids increase in commit order: a reader that follows the cursor while
/// 8 writers append concurrently sees every event, none skipped.
pub async fn events_commit_in_order(s: std::sync::Arc<dyn Store>) {
    const WRITERS: i64 = 8;
    const EACH: i64 = 25;
    let stream = "mp:conf_ev_order";
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let e = event("t.order", stream, w * 1_000 + i);
                    // Half alone, half with a write they report.
                    if i % 2 == 0 {
                        s.append_events(&[e]).await.unwrap();
                    } else {
                        let a = account(&format!("mp:conf_ev_o{w}_{i}"));
                        s.insert_account(&a, &[e]).await.unwrap();
                    }
                }
            })
        })
        .collect();
    let (mut cursor, mut seen) = (0i64, Vec::new());
    let reader = async {
        while (seen.len() as i64) < WRITERS * EACH {
            let q = EventQuery {
                after: cursor,
                account: Some(id(stream)),
                limit: 50,
                ..Default::default()
            };
            let page = s.events(&q).await.unwrap();
            if let Some(last) = page.last() {
                cursor = last.id;
            }
            seen.extend(page.into_iter().map(|e| e.data["n"].as_i64().unwrap()));
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), reader)
        .await
        .expect("the reader saw every event: none was committed behind its cursor");
    for w in writers {
        w.await.unwrap();
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len() as i64, WRITERS * EACH, "no event seen twice");
}

/// Webhooks, fan-out by cursor, the delivery lease, attempts, retries.
pub async fn webhooks_and_deliveries(s: &dyn Store) {
    let hook = |name: &str| Webhook {
        name: name.into(),
        url: "https://hooks.example.com/in?x=1".into(),
        events: vec![
            TypePattern::parse("component.*").unwrap(),
            TypePattern::parse("wetoken.*").unwrap(),
        ],
        accounts: vec![Pattern::parse("component:conf_wh/*").unwrap()],
        format: Format::Wechat,
        secret: sealed("v2:k:secret"),
        created_at: 7,
        cursor: 0,
    };
    s.append_events(&[event("t.before", "mp:conf_wh", 1)]).await.unwrap();
    let newest = s
        .events(&EventQuery {
            account: Some(id("mp:conf_wh")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .id;
    s.insert_webhook(&hook("conf-a")).await.unwrap();
    assert!(matches!(
        s.insert_webhook(&hook("conf-a")).await,
        Err(StoreError::Conflict)
    ));
    let got = s.webhook("conf-a").await.unwrap().unwrap();
    assert!(got.cursor >= newest, "a new webhook starts at the newest event");
    assert_eq!(
        Webhook {
            cursor: 0,
            ..got.clone()
        },
        hook("conf-a"),
        "round-trips"
    );
    assert!(s.webhooks().await.unwrap().iter().any(|w| w.name == "conf-a"));
    // Re-sealing the secret: compare-and-set on what was read.
    assert!(
        s.reseal_webhook(&got, &sealed("v2:k2:secret"), &sealed("v2:k2:url"))
            .await
            .unwrap()
    );
    assert!(
        !s.reseal_webhook(&got, &sealed("v2:k3:secret"), &sealed("v2:k3:url"))
            .await
            .unwrap(),
        "changed meanwhile"
    );
    let got = s.webhook("conf-a").await.unwrap().unwrap();
    assert_eq!((got.secret, got.url.as_str()), (sealed("v2:k2:secret"), "v2:k2:url"));
    assert_eq!(s.webhook("conf-none").await.unwrap(), None);

    // Fan-out moves the cursor once.
    let c = got.cursor;
    assert!(s.fan_out("conf-a", c, c + 3, &[c + 1, c + 3], 100).await.unwrap());
    assert!(
        !s.fan_out("conf-a", c, c + 3, &[c + 1, c + 3], 100).await.unwrap(),
        "cursor moved"
    );
    assert_eq!(s.webhook("conf-a").await.unwrap().unwrap().cursor, c + 3);
    let due = s.due_deliveries("conf-a", 100, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.event_id).collect::<Vec<_>>(), [c + 1, c + 3]);
    assert_eq!(due[0].status, DeliveryStatus::Pending);
    assert!(
        s.due_deliveries("conf-a", 99, 10).await.unwrap().is_empty(),
        "not yet due"
    );
    assert_eq!(s.oldest_pending_delivery().await.unwrap().map(|t| t <= 100), Some(true));

    // The lease: one attempt at a time; only its holder writes.
    assert!(s.try_lease_delivery("conf-a", c + 1, "i1", LEASE).await.unwrap());
    assert!(!s.try_lease_delivery("conf-a", c + 1, "i2", LEASE).await.unwrap());
    assert_eq!(
        s.due_deliveries("conf-a", 100, 10).await.unwrap().len(),
        1,
        "leased is not due"
    );
    let attempt = |owner: &'static str, status, next_at| AttemptWrite {
        webhook: "conf-a",
        event_id: c + 1,
        owner,
        status,
        attempts: 1,
        next_at,
        updated_at: 150,
        last_status: Some(500),
        last_error: Some("HTTP 500"),
    };
    assert!(
        !s.record_attempt(&attempt("i2", DeliveryStatus::Pending, 10_000))
            .await
            .unwrap()
    );
    assert!(
        s.record_attempt(&attempt("i1", DeliveryStatus::Pending, 10_000))
            .await
            .unwrap()
    );
    assert!(
        !s.record_attempt(&attempt("i1", DeliveryStatus::Pending, 10_000))
            .await
            .unwrap(),
        "released"
    );
    let later = s.due_deliveries("conf-a", 10_000, 10).await.unwrap();
    assert_eq!(later.len(), 2);
    let retried = later.iter().find(|d| d.event_id == c + 1).unwrap();
    assert_eq!(
        (retried.attempts, retried.last_status, retried.last_error.as_deref()),
        (1, Some(500), Some("HTTP 500"))
    );
    assert!(s.try_lease_delivery("conf-a", c + 1, "i1", LEASE).await.unwrap());
    assert!(
        s.record_attempt(&attempt("i1", DeliveryStatus::Failed, 10_000))
            .await
            .unwrap()
    );
    assert!(
        !s.try_lease_delivery("conf-a", c + 1, "i1", LEASE).await.unwrap(),
        "failed is not leased"
    );
    let failed = s
        .deliveries("conf-a", Some(DeliveryStatus::Failed), 0, 10)
        .await
        .unwrap();
    assert_eq!(failed.iter().map(|d| d.event_id).collect::<Vec<_>>(), [c + 1]);
    assert_eq!(s.deliveries("conf-a", None, c + 1, 10).await.unwrap().len(), 1, "after");

    // Retried by hand: pending again, due now, its 24 h from now.
    assert!(s.retry_delivery("conf-a", c + 1, 20_000).await.unwrap());
    assert!(
        !s.retry_delivery("conf-a", c + 1, 20_000).await.unwrap(),
        "already pending"
    );
    assert!(
        !s.retry_delivery("conf-a", c + 99, 20_000).await.unwrap(),
        "no such delivery"
    );
    let d = &s.deliveries("conf-a", None, c, 1).await.unwrap()[0];
    assert_eq!(
        (d.status, d.attempts, d.next_at, d.created_at),
        (DeliveryStatus::Pending, 0, 20_000, 20_000)
    );

    // Deleting a webhook deletes its deliveries.
    assert!(s.delete_webhook("conf-a").await.unwrap());
    assert!(!s.delete_webhook("conf-a").await.unwrap());
    assert!(s.deliveries("conf-a", None, 0, 10).await.unwrap().is_empty());
}

/// What the console reads (SPEC §11): bounded counts, failing credentials
/// newest error first, the newest event's id, sessions.
pub async fn console_queries(s: &dyn Store) {
    for n in 1..=5 {
        s.insert_account(&account(&format!("mp:conf_cnt{n}")), &[])
            .await
            .unwrap();
    }
    let revoked = StoredAccount {
        status: AccountStatus::Revoked,
        ..account("mp:conf_cntx")
    };
    s.insert_account(&revoked, &[]).await.unwrap();
    let q = |prefix: &str, limit: i64| AccountQuery {
        prefix: prefix.into(),
        limit,
        ..AccountQuery::default()
    };
    assert_eq!(
        s.count_accounts(&q("mp:conf_cnt", 100)).await.unwrap(),
        6,
        "count_accounts"
    );
    assert_eq!(
        s.count_accounts(&q("mp:conf_cnt", 3)).await.unwrap(),
        3,
        "a count stops at its cap"
    );
    assert_eq!(s.count_accounts(&q("mp:conf_cntz", 100)).await.unwrap(), 0);
    let active = AccountQuery {
        not_status: Some(AccountStatus::Revoked),
        ..q("mp:conf_cnt", 100)
    };
    assert_eq!(
        s.count_accounts(&active).await.unwrap(),
        5,
        "a count takes the page's filters"
    );

    // Failing credentials: the newest error first; a success takes one off.
    let late = NEVER - 1_000;
    for (n, at) in [("1", late), ("2", late + 1)] {
        let a = id(&format!("mp:conf_failing{n}"));
        s.insert_account(&account(&a.to_string()), &[]).await.unwrap();
        assert!(s.try_lease(&a, AccessToken, "f", 0, LEASE).await.unwrap());
        s.record_failure(&FailureWrite {
            account: &a,
            credential: AccessToken,
            owner: "f",
            error: &LastError {
                errcode: 40013,
                errmsg: "invalid appid".into(),
                at,
            },
            blocked_until: None,
            due_at: NEVER,
            attempts: 1,
            events: &[],
        })
        .await
        .unwrap();
    }
    let failing: Vec<String> = s
        .failing_credentials(2)
        .await
        .unwrap()
        .iter()
        .map(|c| c.account.to_string())
        .collect();
    assert_eq!(failing, ["mp:conf_failing2", "mp:conf_failing1"], "failing_credentials");
    let a2 = id("mp:conf_failing2");
    assert!(s.try_lease(&a2, AccessToken, "g", 0, LEASE).await.unwrap());
    s.complete_refresh(&write(&a2, AccessToken, "g", &sealed("v"), 60))
        .await
        .unwrap();
    let first = s.failing_credentials(1).await.unwrap();
    assert_eq!(
        first[0].account.to_string(),
        "mp:conf_failing1",
        "a success is not failing"
    );

    // The newest event's id.
    s.append_events(&[event("wetoken.test", "mp:conf_cnt1", 1)])
        .await
        .unwrap();
    let last = s.last_event_id().await.unwrap();
    let newest = s
        .events(&EventQuery {
            after: last - 1,
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.len(), 1, "last_event_id is the newest event");
    assert_eq!(newest[0].id, last);

    // Sessions: by hash, until deleted or purged.
    s.insert_session("a".repeat(64).as_str(), 10, 1_000).await.unwrap();
    s.insert_session("b".repeat(64).as_str(), 10, 5_000).await.unwrap();
    assert_eq!(s.session_expiry(&"a".repeat(64)).await.unwrap(), Some(1_000));
    assert_eq!(s.session_expiry(&"c".repeat(64)).await.unwrap(), None);
    assert!(s.delete_session(&"a".repeat(64)).await.unwrap(), "delete_session");
    assert!(!s.delete_session(&"a".repeat(64)).await.unwrap(), "deleted once");
    assert_eq!(s.session_expiry(&"a".repeat(64)).await.unwrap(), None);
    s.insert_session("d".repeat(64).as_str(), 10, 2_000).await.unwrap();
    assert_eq!(s.purge_sessions(3_000).await.unwrap(), 1, "purge_sessions");
    assert_eq!(s.session_expiry(&"b".repeat(64)).await.unwrap(), Some(5_000));
}

/// The audit trail of token-free calls: pages by id (time order), by key or
/// account, from a time, purged with the events.
pub async fn audit_trail(s: &dyn Store) {
    let entry = |n: i64, key: &str, account: &str| AuditEntry {
        id: format!("{:013}-conf-{n:06}", 9_000_000_000_000 + n),
        at: 9_000_000_000_000 + n,
        key: key.into(),
        account: id(account),
        method: "POST".into(),
        path: "/cgi-bin/message/custom/send".into(),
        status: 200,
        errcode: (n % 2 == 0).then_some(40001),
        rid: (n % 2 == 0).then(|| format!("rid-{n}")),
    };
    let all = [
        entry(1, "shop", "mp:conf_audit"),
        entry(2, "crm", "mp:conf_audit"),
        entry(3, "shop", "mp:conf_audit2"),
        entry(4, "shop", "mp:conf_audit"),
    ];
    for e in &all {
        s.insert_audit(e).await.unwrap();
    }
    let from = Some(format!("{:013}", 9_000_000_000_000i64));
    let q = |key: Option<&str>, account: Option<&str>, after: Option<&str>, limit: i64| AuditQuery {
        after: after.map(str::to_owned),
        from: from.clone(),
        key: key.map(str::to_owned),
        account: account.map(id),
        limit,
    };
    assert_eq!(
        s.audit_page(&q(None, None, None, 10)).await.unwrap(),
        all,
        "audit_page: in id order, whole"
    );
    let shop: Vec<String> = s
        .audit_page(&q(Some("shop"), Some("mp:conf_audit"), None, 10))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(shop, [all[0].id.clone(), all[3].id.clone()], "by key and account");
    let page = s.audit_page(&q(None, None, Some(&all[1].id), 1)).await.unwrap();
    assert_eq!(page, [all[2].clone()], "after a cursor, limited");
    let later = AuditQuery {
        from: Some(format!("{:013}", 9_000_000_000_003i64)),
        ..q(None, None, None, 10)
    };
    assert_eq!(s.audit_page(&later).await.unwrap(), all[2..], "from a time");
    s.purge_events(9_000_000_000_003).await.unwrap();
    assert_eq!(
        s.audit_page(&q(None, None, None, 10)).await.unwrap(),
        all[2..],
        "purged with the events"
    );
    s.purge_events(i64::MAX / 2).await.unwrap();
}
