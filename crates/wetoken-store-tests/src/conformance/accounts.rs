//! Accounts, their children, API keys, master-key checks and re-sealing.

use super::*;

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
pub(super) async fn ids_with_prefix(s: &dyn Store, prefix: &str) -> Vec<String> {
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
