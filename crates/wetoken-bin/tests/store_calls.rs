//! How many store calls a read makes (issue 23): a cold read is four —
//! the row, the account, the lease, the write — and a cache hit none. The
//! service runs in-process on SQLite, behind a store that counts every call,
//! against the simulator over HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use wetoken_core::clock::SystemClock;
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{AttemptWrite, Delivery, DeliveryStatus, Event, NewEvent, Webhook};
use wetoken_core::secret::MasterKey;
use wetoken_core::service::{ServiceConfig, Services};
use wetoken_core::store::prelude::*;
use wetoken_core::store::{
    AccountQuery, ApiKey, Appended, AuditEntry, AuditQuery, CredentialState, EventQuery, FailureWrite, ForceBudget,
    KeyCheck, MessageAppend, PushWrite, RefreshWrite, Schema, Sealed, Store, StoreResult, StoredAccount, Verdict,
};
use wetoken_core::upstream::{Upstream, UpstreamConfig};
use wetoken_sim::{Sim, SimConfig};

/// A store that counts every call by method, then does it.
struct Counting {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn count(&self, name: &'static str) {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
    }

    /// The calls since the last time, by method.
    fn take(&self) -> BTreeMap<&'static str, usize> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl Store for Counting {
    async fn migrate(&self) -> StoreResult<()> {
        self.count("migrate");
        self.inner.migrate().await
    }

    async fn schema(&self) -> StoreResult<Schema> {
        self.count("schema");
        self.inner.schema().await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.count("ping");
        self.inner.ping().await
    }
}

#[async_trait]
impl AccountStore for Counting {
    async fn insert_account(&self, account: &StoredAccount, events: &[NewEvent]) -> StoreResult<()> {
        self.count("insert_account");
        self.inner.insert_account(account, events).await
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>> {
        self.count("account");
        self.inner.account(id).await
    }

    async fn accounts_page(&self, q: &AccountQuery) -> StoreResult<Vec<StoredAccount>> {
        self.count("accounts_page");
        self.inner.accounts_page(q).await
    }

    async fn update_account(
        &self,
        account: &StoredAccount,
        drop_credentials: bool,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.count("update_account");
        self.inner.update_account(account, drop_credentials, events).await
    }

    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
        self.count("delete_account");
        self.inner.delete_account(id).await
    }

    async fn credential(&self, id: &AccountId, credential: Credential) -> StoreResult<Option<CredentialState>> {
        self.count("credential");
        self.inner.credential(id, credential).await
    }

    async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>> {
        self.count("credentials");
        self.inner.credentials(id).await
    }

    async fn credentials_between(&self, first: &AccountId, last: &AccountId) -> StoreResult<Vec<CredentialState>> {
        self.count("credentials_between");
        self.inner.credentials_between(first, last).await
    }

    async fn try_lease(
        &self,
        id: &AccountId,
        credential: Credential,
        owner: &str,
        seen_version: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        self.count("try_lease");
        self.inner
            .try_lease(id, credential, owner, seen_version, lease_ms)
            .await
    }

    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
        self.count("complete_refresh");
        self.inner.complete_refresh(w).await
    }

    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<bool> {
        self.count("record_failure");
        self.inner.record_failure(w).await
    }

    async fn put_pushed(&self, w: &PushWrite<'_>) -> StoreResult<Option<i64>> {
        self.count("put_pushed");
        self.inner.put_pushed(w).await
    }

    async fn mark_pushed_stale(
        &self,
        id: &AccountId,
        credential: Credential,
        version: i64,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.count("mark_pushed_stale");
        self.inner.mark_pushed_stale(id, credential, version, events).await
    }

    async fn try_mark_forced(&self, id: &AccountId, credential: Credential, interval_ms: i64) -> StoreResult<bool> {
        self.count("try_mark_forced");
        self.inner.try_mark_forced(id, credential, interval_ms).await
    }

    async fn record_verdict(
        &self,
        id: &AccountId,
        credential: Credential,
        version: i64,
        verdict: Verdict,
    ) -> StoreResult<bool> {
        self.count("record_verdict");
        self.inner.record_verdict(id, credential, version, verdict).await
    }

    async fn try_force_today(
        &self,
        id: &AccountId,
        credential: Credential,
        max: i64,
        spent_events: &[NewEvent],
    ) -> StoreResult<ForceBudget> {
        self.count("try_force_today");
        self.inner.try_force_today(id, credential, max, spent_events).await
    }

    async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()> {
        self.count("clear_blocks");
        self.inner.clear_blocks(id, now).await
    }

    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>> {
        self.count("due");
        self.inner.due(now, limit).await
    }

    async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>> {
        self.count("credential_by_hash");
        self.inner.credential_by_hash(hash, now).await
    }

    async fn reseal_account(&self, read: &StoredAccount, secrets: &Sealed) -> StoreResult<bool> {
        self.count("reseal_account");
        self.inner.reseal_account(read, secrets).await
    }

    async fn reseal_value(&self, read: &CredentialState, value: &Sealed) -> StoreResult<bool> {
        self.count("reseal_value");
        self.inner.reseal_value(read, value).await
    }

    async fn count_accounts(&self, q: &AccountQuery) -> StoreResult<i64> {
        self.count("count_accounts");
        self.inner.count_accounts(q).await
    }

    async fn failing_credentials(&self, limit: i64) -> StoreResult<Vec<CredentialState>> {
        self.count("failing_credentials");
        self.inner.failing_credentials(limit).await
    }
}

#[async_trait]
impl KeyStore for Counting {
    async fn key_checks(&self) -> StoreResult<Vec<KeyCheck>> {
        self.count("key_checks");
        self.inner.key_checks().await
    }

    async fn add_key_check(&self, check: &KeyCheck, now: i64) -> StoreResult<()> {
        self.count("add_key_check");
        self.inner.add_key_check(check, now).await
    }

    async fn remove_key_check(&self, key_id: &str) -> StoreResult<()> {
        self.count("remove_key_check");
        self.inner.remove_key_check(key_id).await
    }

    async fn insert_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.count("insert_key");
        self.inner.insert_key(key).await
    }

    async fn keys_page(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<ApiKey>> {
        self.count("keys_page");
        self.inner.keys_page(after, limit).await
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.count("key_by_hash");
        self.inner.key_by_hash(hash).await
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        self.count("delete_key");
        self.inner.delete_key(name).await
    }
}

#[async_trait]
impl EventStore for Counting {
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        self.count("append_events");
        self.inner.append_events(events).await
    }

    async fn append_messages(&self, messages: &[MessageAppend]) -> StoreResult<Vec<Appended>> {
        self.count("append_messages");
        self.inner.append_messages(messages).await
    }

    async fn events(&self, q: &EventQuery) -> StoreResult<Vec<Event>> {
        self.count("events");
        self.inner.events(q).await
    }

    async fn last_message(&self, account: &AccountId) -> StoreResult<Option<Event>> {
        self.count("last_message");
        self.inner.last_message(account).await
    }

    async fn purge_events(&self, before: i64) -> StoreResult<u64> {
        self.count("purge_events");
        self.inner.purge_events(before).await
    }

    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.count("insert_webhook");
        self.inner.insert_webhook(webhook).await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.count("webhooks");
        self.inner.webhooks().await
    }

    async fn webhook(&self, name: &str) -> StoreResult<Option<Webhook>> {
        self.count("webhook");
        self.inner.webhook(name).await
    }

    async fn delete_webhook(&self, name: &str) -> StoreResult<bool> {
        self.count("delete_webhook");
        self.inner.delete_webhook(name).await
    }

    async fn fan_out(&self, webhook: &str, from: i64, to: i64, event_ids: &[i64], now: i64) -> StoreResult<bool> {
        self.count("fan_out");
        self.inner.fan_out(webhook, from, to, event_ids, now).await
    }

    async fn due_deliveries(&self, webhook: &str, now: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
        self.count("due_deliveries");
        self.inner.due_deliveries(webhook, now, limit).await
    }

    async fn try_lease_delivery(&self, webhook: &str, event_id: i64, owner: &str, lease_ms: i64) -> StoreResult<bool> {
        self.count("try_lease_delivery");
        self.inner.try_lease_delivery(webhook, event_id, owner, lease_ms).await
    }

    async fn record_attempt(&self, w: &AttemptWrite<'_>) -> StoreResult<bool> {
        self.count("record_attempt");
        self.inner.record_attempt(w).await
    }

    async fn deliveries(
        &self,
        webhook: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.count("deliveries");
        self.inner.deliveries(webhook, status, after, limit).await
    }

    async fn retry_delivery(&self, webhook: &str, event_id: i64, now: i64) -> StoreResult<bool> {
        self.count("retry_delivery");
        self.inner.retry_delivery(webhook, event_id, now).await
    }

    async fn event(&self, id: i64) -> StoreResult<Option<Event>> {
        self.count("event");
        self.inner.event(id).await
    }

    async fn reseal_webhook(&self, read: &Webhook, secret: &Sealed, url: &Sealed) -> StoreResult<bool> {
        self.count("reseal_webhook");
        self.inner.reseal_webhook(read, secret, url).await
    }

    async fn oldest_pending_delivery(&self) -> StoreResult<Option<i64>> {
        self.count("oldest_pending_delivery");
        self.inner.oldest_pending_delivery().await
    }

    async fn last_event_id(&self) -> StoreResult<i64> {
        self.count("last_event_id");
        self.inner.last_event_id().await
    }
}

#[async_trait]
impl AuditStore for Counting {
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.count("insert_audit");
        self.inner.insert_audit(entry).await
    }

    async fn audit_page(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.count("audit_page");
        self.inner.audit_page(q).await
    }
}

#[async_trait]
impl SessionStore for Counting {
    async fn insert_session(&self, hash: &str, created_at: i64, expires_at: i64) -> StoreResult<()> {
        self.count("insert_session");
        self.inner.insert_session(hash, created_at, expires_at).await
    }

    async fn session_expiry(&self, hash: &str) -> StoreResult<Option<i64>> {
        self.count("session_expiry");
        self.inner.session_expiry(hash).await
    }

    async fn delete_session(&self, hash: &str) -> StoreResult<bool> {
        self.count("delete_session");
        self.inner.delete_session(hash).await
    }

    async fn purge_sessions(&self, now: i64) -> StoreResult<u64> {
        self.count("purge_sessions");
        self.inner.purge_sessions(now).await
    }
}

#[async_trait]
impl SessionKeyStore for Counting {
    async fn put_session_key(
        &self,
        account: &AccountId,
        openid: &str,
        key: &Sealed,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.count("put_session_key");
        self.inner.put_session_key(account, openid, key, expires_at).await
    }

    async fn session_key(&self, account: &AccountId, openid: &str, now: i64) -> StoreResult<Option<Sealed>> {
        self.count("session_key");
        self.inner.session_key(account, openid, now).await
    }

    async fn purge_session_keys(&self, now: i64, limit: i64) -> StoreResult<u64> {
        self.count("purge_session_keys");
        self.inner.purge_session_keys(now, limit).await
    }
}

#[tokio::test]
async fn a_cold_read_is_four_store_calls_and_a_hit_none() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app("wxcount", "s");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let store = Arc::new(Counting {
        inner: Arc::new(sqlite),
        calls: Mutex::default(),
    });
    let upstream = Upstream::new(UpstreamConfig {
        mp: vec![sim.url()],
        work: vec![sim.url()],
        timeout: Duration::from_secs(3),
        proxy: None,
    })
    .unwrap();
    let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let service = Services::new(
        store.clone(),
        upstream,
        Arc::new(SystemClock),
        key,
        ServiceConfig::default(),
    );
    let new =
        wetoken_core::account::NewAccount::from_json(&serde_json::json!({"kind":"mp","appid":"wxcount","secret":"s"}))
            .unwrap();
    service.accounts.create_account(new).await.unwrap();
    store.take();
    let id: AccountId = "mp:wxcount".parse().unwrap();

    service.engine.get(&id, Credential::AccessToken).await.unwrap();
    let cold = store.take();
    assert_eq!(
        cold,
        BTreeMap::from([
            ("account", 1),
            ("complete_refresh", 1),
            ("credential", 1),
            ("try_lease", 1)
        ]),
        "a cold read: the row, the account, the lease, the write"
    );
    assert_eq!(sim.token_calls(), 1);

    service.engine.get(&id, Credential::AccessToken).await.unwrap();
    assert_eq!(store.take(), BTreeMap::new(), "a cache hit calls no store");
}
