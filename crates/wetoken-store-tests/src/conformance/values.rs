//! Values: pushed tickets, the refresh budgets and verdicts, rotated
//! secrets, long values, due order, lookups by hash.

use super::*;

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
