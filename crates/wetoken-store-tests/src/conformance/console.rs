//! The console's bounded reads, and the audit trail.

use super::*;

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
