//! Users' session keys (SPEC §13).

use super::*;

/// Kept until they expire, replaced by the next login's, per account and
/// openid; purged oldest first in batches; gone with their account and its
/// children.
pub async fn session_keys(s: &dyn Store) {
    let (mp, other) = (id("mp:conf_sk"), id("mp:conf_sk2"));
    s.put_session_key(&mp, "o1", &sealed("v1:k1"), 5_000)
        .await
        .expect("put_session_key");
    s.put_session_key(&other, "o1", &sealed("v1:other"), 5_000)
        .await
        .unwrap();
    let got = |account: AccountId, openid: &'static str, now: i64| async move {
        s.session_key(&account, openid, now)
            .await
            .expect("session_key")
            .map(|k| k.as_str().to_owned())
    };
    assert_eq!(got(mp.clone(), "o1", 4_999).await.as_deref(), Some("v1:k1"));
    assert_eq!(got(mp.clone(), "o1", 5_000).await, None, "expired at expires_at");
    assert_eq!(got(mp.clone(), "o2", 1).await, None, "another user");
    assert_eq!(
        got(other.clone(), "o1", 1).await.as_deref(),
        Some("v1:other"),
        "another account"
    );
    s.put_session_key(&mp, "o1", &sealed("v1:k2"), 9_000).await.unwrap();
    assert_eq!(got(mp.clone(), "o1", 6_000).await.as_deref(), Some("v1:k2"), "replaced");

    // 25 expired (distinct expiries, oldest first) and 3 still valid.
    let purge = id("mp:conf_sk_purge");
    for n in 0..25 {
        let openid = format!("expired{n:02}");
        s.put_session_key(&purge, &openid, &sealed("v1:x"), 100 + n)
            .await
            .unwrap();
    }
    for n in 0..3 {
        s.put_session_key(&purge, &format!("valid{n}"), &sealed("v1:y"), NEVER)
            .await
            .unwrap();
    }
    let now = 1_000;
    assert!(s.purge_session_keys(now, 10).await.unwrap() >= 10, "a batch of ten");
    assert_eq!(
        s.session_key(&purge, "expired09", 0).await.unwrap(),
        None,
        "the oldest went first"
    );
    assert!(
        s.session_key(&purge, "expired24", 0).await.unwrap().is_some(),
        "the newest expired one stays"
    );
    let mut total = 10;
    loop {
        let n = s.purge_session_keys(now, 10).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    // Every expired key of the suite's accounts is gone (some from other checks, too).
    assert!(total >= 25, "purged {total}");
    assert_eq!(s.session_key(&purge, "expired24", 0).await.unwrap(), None);
    for n in 0..3 {
        assert!(
            s.session_key(&purge, &format!("valid{n}"), now)
                .await
                .unwrap()
                .is_some()
        );
    }

    // Deleting an account deletes its users' keys and its children's.
    s.insert_account(&account("component:conf_skc"), &[]).await.unwrap();
    s.insert_account(&account("authorizer:conf_skc:wxa"), &[])
        .await
        .unwrap();
    let (c, a) = (id("component:conf_skc"), id("authorizer:conf_skc:wxa"));
    s.put_session_key(&a, "o1", &sealed("v1:a"), NEVER).await.unwrap();
    s.put_session_key(&c, "o1", &sealed("v1:c"), NEVER).await.unwrap();
    assert!(s.delete_account(&c).await.unwrap());
    assert_eq!(s.session_key(&a, "o1", 0).await.unwrap(), None, "the child's users");
    assert_eq!(s.session_key(&c, "o1", 0).await.unwrap(), None, "the account's users");
}
