//! Credentials: the lease, versions, fencing, failures and blocks.

use super::*;

/// A failure recorded by `owner` that would block the credential for long,
/// were it written.
pub(super) async fn late_failure(s: &dyn Store, id: &AccountId, credential: Credential, owner: &str) {
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

/// This host's clock in epoch milliseconds (the test databases run here).
pub(super) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits until the lease held on a credential has expired (the database's
/// clock cannot be moved, only waited for).
pub(super) async fn lease_runs_out(s: &dyn Store, id: &AccountId, credential: Credential) {
    let row = s.credential(id, credential).await.unwrap().unwrap();
    let until = row.lease_until.expect("a lease is held");
    while wall_ms() <= until + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A refresh write of `value` (whose hash is the value itself) at `at`.
pub(super) fn write<'a>(
    id: &'a AccountId,
    cred: Credential,
    owner: &'a str,
    value: &'a Sealed,
    at: i64,
) -> RefreshWrite<'a> {
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

pub(super) fn errcode(row: &CredentialState) -> Option<i64> {
    row.last_error.as_ref().map(|e| e.errcode)
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
