//! wetoken-core used in-process as a library (SPEC §9), with an injected
//! clock: expiry, cache revalidation across instances and error blocks,
//! tested by moving time instead of sleeping. Real SQLite, real simulator.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use wetoken_core::account::{AccountPatch, NewAccount};
use wetoken_core::clock::{Clock, ManualClock};
use wetoken_core::domain::{AccountId, AccountKind, Credential, Ident};
use wetoken_core::secret::MasterKey;
use wetoken_core::service::compat::SecretCheck;
use wetoken_core::service::{ServiceConfig, ServiceError, Services};
use wetoken_core::store::Store;
use wetoken_core::upstream::{Upstream, UpstreamConfig};
use wetoken_sim::{Sim, SimConfig};

struct Instance {
    service: Services,
    clock: Arc<ManualClock>,
}

/// A service on the SQLite file in `dir`; several share one database.
async fn instance(dir: &std::path::Path, sim: &Sim, key: &MasterKey) -> Instance {
    let store = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.join("w.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let upstream = Upstream::new(UpstreamConfig {
        mp: vec![sim.url()],
        work: vec![sim.url()],
        timeout: Duration::from_secs(3),
        proxy: None,
    })
    .unwrap();
    let service = Services::new(
        Arc::new(store),
        upstream,
        clock.clone(),
        key.clone(),
        ServiceConfig::default(),
    );
    Instance { service, clock }
}

fn key() -> MasterKey {
    MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
}

async fn setup(appid: &str, secret: &str, api: &str) -> (Sim, tempfile::TempDir, MasterKey, Instance, AccountId) {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app(appid, "right");
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    let a = instance(dir.path(), &sim, &key).await;
    let new = NewAccount::from_json(&json!({"kind":"mp","appid":appid,"secret":secret,"token_api":api})).unwrap();
    a.service.accounts.create_account(new).await.unwrap();
    let id = format!("mp:{appid}").parse().unwrap();
    (sim, dir, key, a, id)
}

#[tokio::test]
async fn an_expired_value_is_fetched_again() {
    let (sim, _dir, _key, a, id) = setup("wxexp", "right", "classic").await;
    let first = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    assert_eq!(first.expires_in(a.clock.now()), 7200);
    a.clock.advance(TimeDelta::seconds(7199));
    assert_eq!(
        a.service.engine.get(&id, Credential::AccessToken).await.unwrap(),
        first,
        "still valid"
    );
    assert_eq!(sim.token_calls(), 1);
    a.clock.advance(TimeDelta::seconds(1));
    let second = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    assert_ne!(second.value, first.value);
    assert_eq!(sim.token_calls(), 2);
}

#[tokio::test]
async fn another_instances_refresh_is_seen_within_the_cache_ttl() {
    let (sim, dir, key, a, id) = setup("wxttl", "right", "classic").await;
    let b = instance(dir.path(), &sim, &key).await;
    let t1 = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    assert_eq!(
        b.service.engine.get(&id, Credential::AccessToken).await.unwrap(),
        t1,
        "b reads a's value from the database"
    );
    sim.revoke(&t1.value);
    let t2 = b
        .service
        .engine
        .refresh(&id, Credential::AccessToken, Some(&t1.value))
        .await
        .unwrap();
    assert_ne!(t2, t1);
    // a still has t1 cached (valid within WeChat's grace) until its TTL passes.
    a.clock.advance(TimeDelta::seconds(29));
    assert_eq!(a.service.engine.get(&id, Credential::AccessToken).await.unwrap(), t1);
    a.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        a.service.engine.get(&id, Credential::AccessToken).await.unwrap(),
        t2,
        "revalidated after 30 s"
    );
    assert_eq!(sim.token_calls(), 2);
    assert!(sim.is_valid(&t1.value), "and t1 was still in its grace meanwhile");
}

#[tokio::test]
async fn a_permanent_error_blocks_automatic_calls_for_ten_minutes() {
    // A permanent error that is not a misconfiguration (a wrong secret
    // blocks until the account changes, SPEC §16): an invalid appid.
    let (sim, _dir, _key, a, id) = setup("wxperm", "right", "stable").await;
    sim.inject(wetoken_sim::STABLE_TOKEN, wetoken_sim::Fault::Errcode(40013), None);
    let errcode = || async {
        match a.service.engine.get(&id, Credential::AccessToken).await.unwrap_err() {
            ServiceError::Upstream(u) => u.errcode(),
            other => panic!("{other}"),
        }
    };
    assert_eq!(errcode().await, 40013);
    a.clock.advance(TimeDelta::seconds(599));
    assert_eq!(errcode().await, 40013);
    assert_eq!(sim.token_calls(), 1, "blocked: answered from the record");
    a.clock.advance(TimeDelta::seconds(2));
    assert_eq!(errcode().await, 40013);
    assert_eq!(sim.token_calls(), 2, "tried again after the block");
}

#[tokio::test]
async fn the_daily_quota_blocks_until_beijing_midnight() {
    let (sim, _dir, _key, a, id) = setup("wxquota", "right", "classic").await;
    sim.configure(|c| c.daily_quota = 0);
    let midnight: chrono::DateTime<Utc> = "2026-11-21T15:00:00Z".parse().unwrap(); // 23:00 +08:00
    a.clock.set(midnight);
    let e = a.service.engine.get(&id, Credential::AccessToken).await.unwrap_err();
    assert!(matches!(&e, ServiceError::Upstream(u) if u.is_quota()), "{e}");
    a.clock.advance(TimeDelta::minutes(59));
    assert!(a.service.engine.get(&id, Credential::AccessToken).await.is_err());
    assert_eq!(sim.token_calls(), 1);
    let shown = serde_json::to_value(wetoken_http::render::account(
        &a.service.accounts.show_account(&id).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(
        shown["credentials"]["access_token"]["blocked_until"],
        "2026-11-21T16:00:00Z"
    );
    assert_eq!(shown["credentials"]["access_token"]["last_error"]["errcode"], 45009);
    sim.configure(|c| c.daily_quota = 100);
    a.clock.advance(TimeDelta::minutes(1));
    assert!(
        a.service.engine.get(&id, Credential::AccessToken).await.is_ok(),
        "a new quota day"
    );
    assert_eq!(sim.token_calls(), 2);
}

#[tokio::test]
async fn the_scheduler_refreshes_ahead_of_expiry_and_tickets_after_their_token() {
    let (sim, _dir, _key, a, id) = setup("wxsched", "right", "classic").await;
    let token = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    let ticket = a.service.engine.get(&id, Credential::JsapiTicket).await.unwrap();
    // Due at expiry - 600 s + jitter in [0, 300 s): not before 6600 s.
    a.clock.advance(TimeDelta::seconds(6599));
    assert_eq!(a.service.engine.run_due_once().await.unwrap(), 0);
    a.clock.advance(TimeDelta::seconds(301));
    assert_eq!(
        a.service.engine.run_due_once().await.unwrap(),
        2,
        "token and ticket due"
    );
    assert_eq!(sim.token_calls(), 2);
    assert_eq!(sim.calls(wetoken_sim::GETTICKET), 2);
    let new_token = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    let new_ticket = a.service.engine.get(&id, Credential::JsapiTicket).await.unwrap();
    assert_ne!(new_token, token);
    assert_ne!(new_ticket, ticket);
    assert!(new_token.expires_at > token.expires_at);
    assert_eq!(
        sim.last_token(wetoken_sim::GETTICKET).as_deref(),
        Some(new_token.value.as_str()),
        "the ticket was fetched after its token, with the new one"
    );
    assert_eq!(
        a.service.engine.run_due_once().await.unwrap(),
        0,
        "nothing due right after"
    );
    let shown = serde_json::to_value(wetoken_http::render::account(
        &a.service.accounts.show_account(&id).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(
        shown["credentials"]["access_token"]["last_error"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn an_unchanged_stable_token_does_not_loop() {
    let (sim, _dir, _key, a, id) = setup("wxsame", "right", "stable").await;
    let token = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    a.clock.advance(TimeDelta::seconds(6900));
    // The simulator's own clock has not moved: it answers the same token.
    assert_eq!(a.service.engine.run_due_once().await.unwrap(), 1);
    assert_eq!(sim.token_calls(), 2);
    assert_eq!(
        a.service.engine.get(&id, Credential::AccessToken).await.unwrap().value,
        token.value
    );
    for _ in 0..5 {
        a.clock.advance(TimeDelta::seconds(29));
        assert_eq!(
            a.service.engine.run_due_once().await.unwrap(),
            0,
            "not again within 30 s"
        );
    }
    assert_eq!(sim.token_calls(), 2);
}

#[tokio::test]
async fn failures_back_off_while_the_valid_value_is_served() {
    let (sim, _dir, _key, a, id) = setup("wxback", "right", "classic").await;
    let token = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    sim.inject(wetoken_sim::TOKEN, wetoken_sim::Fault::Http500, None);
    a.clock.advance(TimeDelta::seconds(6900));
    let mut gaps = Vec::new();
    for attempt in 1..=5 {
        assert_eq!(a.service.engine.run_due_once().await.unwrap(), 1, "attempt {attempt}");
        assert_eq!(sim.token_calls(), 1 + attempt);
        assert_eq!(
            a.service.engine.run_due_once().await.unwrap(),
            0,
            "backing off after attempt {attempt}"
        );
        let row = a
            .service
            .engine
            .store()
            .credential(&id, Credential::AccessToken)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.attempts, attempt as i64);
        let gap = row.due_at.unwrap() - a.clock.now().timestamp_millis();
        gaps.push(gap);
        assert_eq!(
            a.service.engine.get(&id, Credential::AccessToken).await.unwrap(),
            token,
            "still served"
        );
        a.clock.advance(TimeDelta::milliseconds(gap));
    }
    assert!(gaps[4] > gaps[0] * 4, "exponential: {gaps:?}");
    sim.clear_faults();
    assert_eq!(a.service.engine.run_due_once().await.unwrap(), 1);
    let row = a
        .service
        .engine
        .store()
        .credential(&id, Credential::AccessToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.attempts, row.last_error.map(|e| e.errcode)),
        (0, None),
        "success resets"
    );
}

#[tokio::test]
async fn a_presented_secret_is_remembered_for_the_cache_ttl_and_forgotten_on_rotation() {
    // WeCom gettoken names an app only by corpid + secret: without the memo
    // every call would read and decrypt every account.
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    let a = instance(dir.path(), &sim, &key).await;
    let b = instance(dir.path(), &sim, &key).await;
    for (agentid, secret) in [(1000002, "first-secret"), (1000003, "other-secret")] {
        let new = NewAccount::from_json(&json!({"kind":"work","corpid":"wwmemo","agentid":agentid,"secret":secret}));
        a.service.accounts.create_account(new.unwrap()).await.unwrap();
    }
    let corpid = Ident::parse("corpid", "wwmemo").unwrap();
    let id: AccountId = "work:wwmemo:1000002".parse().unwrap();
    let matches = SecretCheck::Matches(id.clone());
    assert_eq!(
        b.service
            .accounts
            .work_app_by_secret(&corpid, "first-secret")
            .await
            .unwrap(),
        matches
    );
    assert_eq!(
        b.service.accounts.check_secret(&id, "first-secret").await.unwrap(),
        matches
    );

    // a rotates the secret: a knows at once, b within its cache TTL.
    let patch = AccountPatch::from_json(AccountKind::Work, &json!({"secret":"second-secret"})).unwrap();
    a.service.accounts.patch_account(&id, patch).await.unwrap();
    assert_eq!(
        a.service
            .accounts
            .work_app_by_secret(&corpid, "first-secret")
            .await
            .unwrap(),
        SecretCheck::Wrong
    );
    assert_eq!(
        a.service.accounts.check_secret(&id, "first-secret").await.unwrap(),
        SecretCheck::Wrong
    );
    b.clock.advance(TimeDelta::seconds(29));
    assert_eq!(
        b.service
            .accounts
            .work_app_by_secret(&corpid, "first-secret")
            .await
            .unwrap(),
        matches,
        "remembered, not read again"
    );
    assert_eq!(
        b.service.accounts.check_secret(&id, "first-secret").await.unwrap(),
        matches
    );
    b.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        b.service
            .accounts
            .work_app_by_secret(&corpid, "first-secret")
            .await
            .unwrap(),
        SecretCheck::Wrong
    );
    assert_eq!(
        b.service.accounts.check_secret(&id, "first-secret").await.unwrap(),
        SecretCheck::Wrong
    );
    assert_eq!(
        b.service
            .accounts
            .work_app_by_secret(&corpid, "second-secret")
            .await
            .unwrap(),
        matches
    );
    assert_eq!(
        b.service
            .accounts
            .work_app_by_secret(&Ident::parse("corpid", "wwnone").unwrap(), "x")
            .await
            .unwrap(),
        SecretCheck::NoAccount
    );

    // Deleting forgets it in this process at once.
    a.service.accounts.delete_account(&id).await.unwrap();
    assert_eq!(
        a.service.accounts.check_secret(&id, "second-secret").await.unwrap(),
        SecretCheck::NoAccount
    );
}

#[tokio::test]
async fn a_removed_key_is_forgotten_when_the_service_clock_passes_the_ttl() {
    use wetoken_core::auth::{AuthError, Authenticator};
    use wetoken_core::keys::Pattern;
    let (sim, dir, key, a, _id) = setup("wxkeys", "right", "classic").await;
    let b = instance(dir.path(), &sim, &key).await;
    let client_key = a
        .service
        .custody
        .create_key("reader", &[Pattern::parse("mp:wxkeys").unwrap()], true, None)
        .await
        .unwrap();
    let auth = Authenticator::new(&b.service.engine, None, true);
    let header = format!("Bearer {client_key}");
    assert!(!auth.authenticate(Some(&header)).await.unwrap().is_admin());
    a.service.custody.delete_key("reader").await.unwrap();
    // b remembers the key for its cache TTL, on its service's clock: moving
    // that clock, not waiting, ends it.
    b.clock.advance(TimeDelta::seconds(29));
    assert!(
        auth.authenticate(Some(&header)).await.is_ok(),
        "remembered within the TTL"
    );
    b.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        auth.authenticate(Some(&header)).await,
        Err(AuthError::Unauthorized)
    ));
}

/// SPEC §2 "a fetch outlives its caller": the first reader gives up after
/// 100 ms while WeChat takes 2 s; the fetch goes on, and the next reader
/// joins it instead of starting a second one (a second rotation on the
/// classic API).
#[tokio::test]
async fn a_fetch_outlives_its_cancelled_caller() {
    let (sim, _dir, _key, a, id) = setup("wxcancel", "right", "classic").await;
    sim.inject(
        wetoken_sim::TOKEN,
        wetoken_sim::Fault::Latency(Duration::from_secs(2)),
        Some(1),
    );
    let cut = tokio::time::timeout(
        Duration::from_millis(100),
        a.service.engine.get(&id, Credential::AccessToken),
    )
    .await;
    assert!(cut.is_err(), "the first caller gave up");
    let got = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    assert_eq!(sim.token_calls(), 1, "one fetch, joined");
    assert!(sim.is_valid(&got.value));
    // And once it landed, from the cache.
    assert_eq!(a.service.engine.get(&id, Credential::AccessToken).await.unwrap(), got);
    assert_eq!(sim.token_calls(), 1);
}

/// SPEC §2 "readers are bounded": with WeChat hanging, a reader answers
/// within the upstream timeout + 2 s, whether it started the fetch or
/// joined it, and a ticket's reader too (its fetch needs the token first).
#[tokio::test]
async fn readers_answer_within_the_upstream_timeout_plus_two_seconds() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app("wxhang", "right");
    let dir = tempfile::tempdir().unwrap();
    let store = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.path().join("w.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let timeout = Duration::from_secs(1);
    let upstream = Upstream::new(UpstreamConfig {
        mp: vec![sim.url()],
        work: vec![sim.url()],
        timeout,
        proxy: None,
    })
    .unwrap();
    let service = Services::new(
        Arc::new(store),
        upstream,
        Arc::new(wetoken_core::clock::SystemClock),
        key(),
        ServiceConfig {
            upstream_timeout: timeout,
            ..ServiceConfig::default()
        },
    );
    let new = NewAccount::from_json(&json!({"kind":"mp","appid":"wxhang","secret":"right"})).unwrap();
    service.accounts.create_account(new).await.unwrap();
    let id: AccountId = "mp:wxhang".parse().unwrap();
    sim.inject(wetoken_sim::STABLE_TOKEN, wetoken_sim::Fault::Hang, None);
    let started = std::time::Instant::now();
    let reads = (0..3)
        .map(|_| service.engine.get(&id, Credential::AccessToken))
        .chain((0..2).map(|_| service.engine.get(&id, Credential::JsapiTicket)));
    for r in futures::future::join_all(reads).await {
        assert!(
            matches!(r, Err(ServiceError::Unavailable(_) | ServiceError::Upstream(_))),
            "{r:?}"
        );
    }
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_secs(2), "readers waited {took:?}");
}

/// SPEC §2: an account whose secrets do not open (sealed with a key not
/// given, or moved from another row) is recorded as an error on its due
/// credential and backed off — never retried on every scheduler tick.
#[tokio::test]
async fn secrets_that_do_not_open_are_recorded_and_backed_off() {
    let (sim, _dir, _key, a, id) = setup("wxsealed", "right", "classic").await;
    a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    let store = a.service.engine.store().clone();
    let stored = store.account(&id).await.unwrap().unwrap();
    let foreign = key().seal("{}", &wetoken_core::store::binding(&id, "secrets"));
    assert!(store.reseal_account(&stored, &foreign).await.unwrap());
    a.clock.advance(TimeDelta::seconds(7000));
    assert_eq!(a.service.engine.run_due_once().await.unwrap(), 1);
    let row = store.credential(&id, Credential::AccessToken).await.unwrap().unwrap();
    let error = row.last_error.expect("recorded on the credential");
    assert!(error.errmsg.contains("master key"), "{}", error.errmsg);
    assert_eq!(row.attempts, 1);
    assert!(row.due_at.unwrap() > a.clock.now().timestamp_millis(), "backed off");
    assert_eq!(a.service.engine.run_due_once().await.unwrap(), 0, "not retried at once");
    assert_eq!(sim.token_calls(), 1, "nothing went upstream");
}

/// SPEC §2: a database sealed before key ids (v1 values, no key checks) is
/// checked by opening it, then re-sealed once under the current key, bound
/// to its rows; a wrong key is refused before anything runs.
#[tokio::test]
async fn a_database_from_before_key_ids_is_resealed_at_the_first_check() {
    let (sim, dir, key, a, id) = setup("wxlegacy", "right", "classic").await;
    let token = a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    // Turn the database back into what an older wetoken wrote.
    let store = a.service.engine.store().clone();
    let stored = store.account(&id).await.unwrap().unwrap();
    let plain = key
        .open(&stored.secrets, &wetoken_core::store::binding(&id, "secrets"))
        .unwrap();
    assert!(store.reseal_account(&stored, &key.seal_legacy(&plain)).await.unwrap());
    let row = store.credential(&id, Credential::AccessToken).await.unwrap().unwrap();
    assert!(store.reseal_value(&row, &key.seal_legacy(&token.value)).await.unwrap());
    for c in store.key_checks().await.unwrap() {
        store.remove_key_check(&c.key_id).await.unwrap();
    }

    let wrong = instance(dir.path(), &sim, &self::key()).await;
    assert!(
        wrong.service.custody.check_master_key().await.unwrap().is_err(),
        "a wrong key is refused"
    );
    assert!(store.key_checks().await.unwrap().is_empty(), "and records nothing");

    let b = instance(dir.path(), &sim, &key).await;
    b.service.custody.check_master_key().await.unwrap().unwrap();
    let stored = store.account(&id).await.unwrap().unwrap();
    assert_eq!(stored.secrets.key_id(), Some(key.id()), "re-sealed with a key id");
    let row = store.credential(&id, Credential::AccessToken).await.unwrap().unwrap();
    assert_eq!(row.value.as_ref().and_then(|v| v.key_id()), Some(key.id()));
    assert_eq!(
        store
            .key_checks()
            .await
            .unwrap()
            .iter()
            .map(|c| c.key_id.clone())
            .collect::<Vec<_>>(),
        [key.id().to_owned()]
    );
    assert_eq!(b.service.engine.get(&id, Credential::AccessToken).await.unwrap(), token);
    assert_eq!(sim.token_calls(), 1);
}

/// SPEC §4 "no request input can make the process allocate without bound":
/// reads of a thousand accounts that do not exist leave nothing behind in
/// the in-process flight map.
#[tokio::test]
async fn reads_of_unknown_accounts_leave_nothing_behind() {
    let (_sim, _dir, _key, a, _id) = setup("wxknown", "right", "classic").await;
    for i in 0..1000 {
        let id: AccountId = format!("mp:wxnobody{i:04}").parse().unwrap();
        let r = a.service.engine.get(&id, Credential::AccessToken).await;
        assert!(matches!(r, Err(ServiceError::NotFound(_))), "{r:?}");
    }
    assert_eq!(a.service.engine.credentials_in_flight(), 0);
}

// ---- events and webhooks (SPEC §10), on the injected clock

#[path = "api/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use receiver::{Answer, Receiver};
use wetoken_core::events::{DeliveryStatus, NewEvent};
use wetoken_core::service::events::{EventFilter, WebhookRequest};

async fn hook(a: &Instance, name: &str, url: &str) {
    let req = WebhookRequest {
        name: name.into(),
        url: url.into(),
        events: vec!["*".into()],
        ..Default::default()
    };
    a.service.events.create_webhook(&req).await.unwrap();
}

async fn ping(a: &Instance) {
    let id: AccountId = "mp:wxping".parse().unwrap();
    let e = NewEvent::new("test.ping", &id, a.service.engine.now_ms(), serde_json::Map::new());
    a.service.engine.store().append_events(&[e]).await.unwrap();
}

async fn delivery(a: &Instance, name: &str) -> wetoken_core::events::Delivery {
    a.service.events.deliveries(name, None, 0, 10).await.unwrap().remove(0)
}

async fn own_events(a: &Instance, id: &AccountId) -> Vec<String> {
    let f = EventFilter {
        account: Some(wetoken_core::keys::Pattern::Exact(id.clone())),
        limit: 100,
        ..Default::default()
    };
    let page = a.service.events.events(&f, |_| true).await.unwrap();
    page.events.into_iter().map(|e| e.kind).collect()
}

/// A receiver that answers 500 five times then 200 gets the event on the
/// sixth attempt, each retry after its backoff (time moved, not slept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_five_times_gets_the_event_on_the_sixth_attempt() {
    let (_sim, _dir, _key, a, _) = setup("wxhook", "right", "classic").await;
    let rx = Receiver::start().await;
    rx.script(&[Answer::Status(500); 5]);
    hook(&a, "crm", &rx.url).await;
    ping(&a).await;
    assert_eq!(a.service.events.deliver_once().await.unwrap(), 1);
    assert_eq!(rx.count(), 1);
    let d = delivery(&a, "crm").await;
    assert_eq!(
        (d.status, d.attempts, d.last_status),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    let backoff = d.next_at - a.service.engine.now_ms();
    assert!(
        (8_000..=12_000).contains(&backoff),
        "first retry after about 10 s: {backoff} ms"
    );
    assert_eq!(
        a.service.events.deliver_once().await.unwrap(),
        0,
        "not before its backoff"
    );
    for n in 2..=6 {
        let d = delivery(&a, "crm").await;
        a.clock
            .advance(TimeDelta::milliseconds(d.next_at - a.service.engine.now_ms()));
        assert_eq!(a.service.events.deliver_once().await.unwrap(), 1, "attempt {n}");
        assert_eq!(rx.count(), n);
    }
    let d = delivery(&a, "crm").await;
    assert_eq!(
        (d.status, d.attempts, d.last_status),
        (DeliveryStatus::Delivered, 6, Some(200))
    );
    a.clock.advance(TimeDelta::hours(2));
    assert_eq!(a.service.events.deliver_once().await.unwrap(), 0, "delivered once");
    let bodies: Vec<_> = rx.received().iter().map(|r| r.body.clone()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same event each time");
}

/// After 24 h of failures a delivery is failed, with its last status, until
/// retried by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failing_for_a_day_waits_to_be_retried_by_hand() {
    let (_sim, _dir, _key, a, _) = setup("wxhook2", "right", "classic").await;
    let rx = Receiver::start().await;
    rx.otherwise(Answer::Status(503));
    hook(&a, "down", &rx.url).await;
    ping(&a).await;
    let start = a.service.engine.now_ms();
    let mut attempts = 0;
    loop {
        attempts += a.service.events.deliver_once().await.unwrap();
        let d = delivery(&a, "down").await;
        if d.status == DeliveryStatus::Failed {
            assert_eq!(d.last_status, Some(503));
            assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
            break;
        }
        let gap = d.next_at - a.service.engine.now_ms();
        assert!(
            gap <= 3_600_000 * 12 / 10,
            "at most an hour (+jitter) between attempts: {gap}"
        );
        a.clock.advance(TimeDelta::milliseconds(gap));
    }
    let elapsed = a.service.engine.now_ms() - start;
    assert!(elapsed <= 24 * 3_600_000 && elapsed > 22 * 3_600_000, "{elapsed}");
    assert_eq!(attempts, rx.count());
    a.clock.advance(TimeDelta::hours(5));
    assert_eq!(a.service.events.deliver_once().await.unwrap(), 0, "failed stays failed");
    rx.otherwise(Answer::Status(204));
    let d = a
        .service
        .events
        .retry_delivery("down", delivery(&a, "down").await.event_id)
        .await
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert!(matches!(
        a.service.events.retry_delivery("down", d.event_id).await,
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        a.service.events.retry_delivery("down", 999_999).await,
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(a.service.events.deliver_once().await.unwrap(), 1);
    assert_eq!(delivery(&a, "down").await.status, DeliveryStatus::Delivered);
}

/// A proactive refresh failing 3 times in a row raises refresh_failed once
/// (the value is still valid), and the next success raises recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_proactive_failures_raise_refresh_failed_once_then_recovered() {
    let (sim, _dir, _key, a, id) = setup("wxflaky", "right", "classic").await;
    a.service.engine.get(&id, Credential::AccessToken).await.unwrap();
    a.clock.advance(TimeDelta::seconds(7200 - 300));
    sim.inject(wetoken_sim::TOKEN, wetoken_sim::Fault::Http500, Some(4));
    for n in 1..=4 {
        a.service.engine.run_due_once().await.unwrap();
        let raised = own_events(&a, &id).await;
        let expected: &[&str] = if n < 3 {
            &[]
        } else {
            &["wetoken.credential.refresh_failed"]
        };
        assert_eq!(raised, expected, "after failure {n}");
        a.clock.advance(TimeDelta::seconds(90));
    }
    a.service.engine.run_due_once().await.unwrap();
    assert_eq!(
        own_events(&a, &id).await,
        ["wetoken.credential.refresh_failed", "wetoken.credential.recovered"]
    );
}

/// A pushed ticket older than WETOKEN_STALE_TICKET_SECS raises
/// wetoken.ticket.stale once; a newer push re-arms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_verify_ticket_raises_one_event() {
    let (sim, dir, key, _, _) = setup("wxunused", "right", "classic").await;
    let a = instance(dir.path(), &sim, &key).await;
    let new = NewAccount::from_json(
        &json!({"kind":"component","appid":"wxstalec","secret":"s","token":"t","aes_key":"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}),
    )
    .unwrap();
    a.service.accounts.create_account(new).await.unwrap();
    let id: AccountId = "component:wxstalec".parse().unwrap();
    let now = || a.clock.now().timestamp();
    a.service
        .platforms
        .ticket_pushed(&id, "ticket-1", now(), &[])
        .await
        .unwrap();
    a.clock.advance(TimeDelta::seconds(1499));
    a.service.engine.run_due_once().await.unwrap();
    assert!(own_events(&a, &id).await.is_empty(), "not yet");
    a.clock.advance(TimeDelta::seconds(2));
    a.service.engine.run_due_once().await.unwrap();
    a.service.engine.run_due_once().await.unwrap();
    assert_eq!(own_events(&a, &id).await, ["wetoken.ticket.stale"], "once");
    a.service
        .platforms
        .ticket_pushed(&id, "ticket-2", now(), &[])
        .await
        .unwrap();
    a.clock.advance(TimeDelta::seconds(1501));
    a.service.engine.run_due_once().await.unwrap();
    assert_eq!(
        own_events(&a, &id).await,
        ["wetoken.ticket.stale", "wetoken.ticket.stale"]
    );
}

/// Console sessions (SPEC §11): 12 h on the database, so they work on every
/// instance and a sign-out on one ends them on all; a one-time link signs
/// in once, cluster-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_last_12_hours_and_end_everywhere() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    let a = instance(dir.path(), &sim, &key).await;
    let b = instance(dir.path(), &sim, &key).await;
    let s = a.service.console.start_session().await.unwrap();
    assert_eq!(s.max_age_secs, 12 * 3600);
    assert!(
        b.service.console.session_alive(&s.token).await.unwrap(),
        "another instance knows it"
    );
    b.clock
        .advance(chrono::Duration::hours(12) - chrono::Duration::seconds(1));
    assert!(
        b.service.console.session_alive(&s.token).await.unwrap(),
        "alive to its last second"
    );
    b.clock.advance(chrono::Duration::seconds(1));
    assert!(
        !b.service.console.session_alive(&s.token).await.unwrap(),
        "ended after 12 h"
    );
    // Sign-out on one instance ends it on the other at once.
    let s2 = a.service.console.start_session().await.unwrap();
    assert!(a.service.console.session_alive(&s2.token).await.unwrap());
    b.service.console.end_session(&s2.token).await.unwrap();
    assert!(
        !a.service.console.session_alive(&s2.token).await.unwrap(),
        "signed out everywhere"
    );
    // Garbage is no session and reads nothing.
    for t in ["", "wts_", "x".repeat(5000).as_str(), "wts_' OR 1=1 --"] {
        assert!(!a.service.console.session_alive(t).await.unwrap());
    }
    // A one-time link: two instances redeem it at once, one gets a session.
    let link = a.service.console.issue_sign_in_link().await.unwrap();
    assert!(
        !a.service.console.session_alive(&link).await.unwrap(),
        "a link is not a session"
    );
    let (ra, rb) = tokio::join!(
        a.service.console.redeem_sign_in_link(&link),
        b.service.console.redeem_sign_in_link(&link)
    );
    let won: Vec<_> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "the link signs in once");
    assert!(a.service.console.session_alive(&won[0].token).await.unwrap());
    assert!(a.service.console.redeem_sign_in_link(&link).await.unwrap().is_none());
    // An unused link expires with its 12 h.
    let late = a.service.console.issue_sign_in_link().await.unwrap();
    a.clock.advance(chrono::Duration::hours(13));
    assert!(
        a.service.console.redeem_sign_in_link(&late).await.unwrap().is_none(),
        "expired"
    );
}

/// SPEC §16: a domain that failed is passed over by this instance for a
/// minute, then tried first again (the clock moved, not slept).
#[tokio::test]
async fn a_failed_domain_is_tried_again_after_a_minute() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (a, b) = (sim.domain().await.unwrap(), sim.domain().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.path().join("w.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let cfg = UpstreamConfig {
        mp: vec![a.url(), b.url()],
        work: vec![sim.url()],
        timeout: Duration::from_secs(3),
        proxy: None,
    };
    let upstream = Upstream::with_clock(cfg, clock.clone()).unwrap();
    let service = Services::new(
        Arc::new(store),
        upstream,
        clock.clone(),
        key(),
        ServiceConfig::default(),
    );
    for i in 0..3 {
        sim.add_app(&format!("wxminute{i}"), "right");
        let new = NewAccount::from_json(&json!({"kind":"mp","appid":format!("wxminute{i}"),"secret":"right"}));
        service.accounts.create_account(new.unwrap()).await.unwrap();
    }
    // A first fetch of another account each time.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let fetch = || async {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id: AccountId = format!("mp:wxminute{i}").parse().unwrap();
        service.engine.get(&id, Credential::AccessToken).await.unwrap()
    };

    a.set(wetoken_sim::Reach::Down);
    fetch().await;
    a.set(wetoken_sim::Reach::Up);
    clock.advance(TimeDelta::seconds(59));
    fetch().await;
    assert_eq!((a.calls(), b.calls()), (0, 2), "passed over within the minute");
    clock.advance(TimeDelta::seconds(2));
    let got = fetch().await;
    assert_eq!((a.calls(), b.calls()), (1, 2), "tried first again after it");
    assert!(sim.is_valid(&got.value));
}
