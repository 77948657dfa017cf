//! The outbox, its commit order, webhooks and deliveries.

use super::*;

pub(super) fn event(kind: &str, account: &str, n: i64) -> NewEvent {
    let mut data = Map::new();
    data.insert("n".into(), Value::from(n));
    data.insert("text".into(), Value::from("授权 <ok> & \"quoted\""));
    NewEvent::new(kind, &id(account), 1_000 + n, data)
}

/// The events of `account` after `after`, as (type, data.n).
pub(super) async fn events_of(s: &dyn Store, account: &str) -> Vec<(String, i64)> {
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
        reply: name.ends_with("-reply"),
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
    s.insert_webhook(&hook("conf-b-reply")).await.unwrap();
    assert!(
        s.webhook("conf-b-reply").await.unwrap().unwrap().reply,
        "the reply flag round-trips"
    );
    assert!(!got.reply);
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
        reply: None,
        reply_ms: None,
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
