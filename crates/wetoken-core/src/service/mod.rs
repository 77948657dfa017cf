//! The credential service: get, refresh, and account management (SPEC §2).
//!
//! A read goes cache → database → upstream:
//!
//! 1. The in-process cache answers while the value is valid and was checked
//!    against the database less than `cache_ttl` ago. That bound is what keeps
//!    every instance within WeChat's 5-minute grace after another instance
//!    refreshed.
//! 2. Otherwise the caller takes the credential's *flight lock* (one per
//!    credential in this process), so 500 concurrent cold reads become one
//!    database read and at most one upstream call; the others find the cache
//!    filled when they get the lock.
//! 3. With no valid value in the database, the caller takes the database
//!    *lease* on the credential row (conditional UPDATE on the version it
//!    saw). Only the lease holder calls WeChat; an instance that loses the
//!    lease waits for the holder's write, bounded by the upstream timeout
//!    plus 2 s. The fetch runs in its own task, so a caller that goes away
//!    does not strand the lease.
//!
//! Every write schedules the credential's next refresh (`due_at`, see
//! [`crate::timing`]); the [`scheduler`] refreshes due credentials ahead of
//! readers through the same lease. Values are sealed with the master key
//! before they reach the store.

mod admin;
mod children;
pub mod compat;
pub mod component;
pub mod scheduler;
mod suite;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value};

use crate::account::{Account, AccountConfig, AccountStatus, Secrets};
use crate::clock::{Clock, from_millis, next_quota_day, to_millis};
use crate::domain::{AccountId, Credential, TokenApi};
use crate::secret::MasterKey;
use crate::store::{AccountRow, CredentialRow, FailureWrite, RefreshWrite, Store, StoreError};
use crate::timing;
use crate::upstream::{Fetched, Upstream, UpstreamError};

/// Tunables of the service (SPEC §7).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub refresh_ahead: Duration,
    pub lease: Duration,
    pub cache_ttl: Duration,
    pub upstream_timeout: Duration,
    pub force_refresh_min_interval: Duration,
    /// This instance's lease owner name; unique per process.
    pub instance_id: String,
    /// Proactive refreshes in flight at once in this instance.
    pub refresh_concurrency: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            refresh_ahead: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(10),
            force_refresh_min_interval: Duration::from_secs(60),
            instance_id: new_instance_id(),
            refresh_concurrency: 16,
        }
    }
}

/// A name for this process in lease rows: host-independent and unique.
pub fn new_instance_id() -> String {
    format!("{}-{}", std::process::id(), &crate::keys::generate_key()[4..16])
}

/// WeChat keeps a replaced token working this long.
const GRACE_MS: i64 = 300_000;

/// Permanent upstream errors are not retried automatically for this long.
const PERMANENT_BLOCK: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A credential value handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub value: String,
    pub expires_at: DateTime<Utc>,
}

impl Issued {
    /// Remaining whole seconds at `now` (never negative).
    pub fn expires_in(&self, now: DateTime<Utc>) -> i64 {
        // Instants are stored as whole milliseconds: compare in those.
        ((self.expires_at.timestamp_millis() - now.timestamp_millis()) / 1000).max(0)
    }

    /// The credential response of SPEC §3:
    /// `{"access_token"|"ticket": …, "expires_in": …, "expires_at": …}`.
    pub fn to_json(&self, cred: Credential, now: DateTime<Utc>) -> Value {
        let mut v = Map::new();
        v.insert(cred.response_field().into(), self.value.clone().into());
        v.insert("expires_in".into(), self.expires_in(now).into());
        v.insert("expires_at".into(), rfc3339(self.expires_at).into());
        Value::Object(v)
    }
}

/// What started a refresh (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, ahead of expiry.
    Proactive,
    /// A caller's refresh request (with or without a stale value).
    Passive,
    /// A read that found no valid value.
    Cold,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Proactive => "proactive",
            Trigger::Passive => "passive",
            Trigger::Cold => "cold",
        }
    }
}

type Key = (AccountId, Credential);

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone)]
struct Cached {
    value: String,
    expires_at: i64,
    checked_at: i64,
}

/// The credential service. Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct CredentialService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    upstream: Upstream,
    clock: Arc<dyn Clock>,
    key: MasterKey,
    cfg: ServiceConfig,
    cache: RwLock<HashMap<Key, Cached>>,
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Whose a presented token is (see `compat`).
    owners: compat::Recall<Key>,
    /// Which account a presented secret opened (see `compat`).
    secrets: compat::Recall<AccountId>,
}

/// How a refresh proceeds once it has decided to call WeChat.
#[derive(Debug, Clone)]
struct Plan {
    cred: Credential,
    /// The row version seen; the lease is taken against it.
    seen: i64,
    /// stable_token `force_refresh` (the current value was rejected).
    force: bool,
    trigger: Trigger,
    /// Wait for another instance's lease (readers) or give up (scheduler).
    wait: bool,
    /// The value held before, to notice an unchanged answer.
    previous: Option<String>,
}

impl CredentialService {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        key: MasterKey,
        cfg: ServiceConfig,
    ) -> Self {
        CredentialService {
            inner: Arc::new(Inner {
                store,
                upstream,
                clock,
                key,
                cfg,
                cache: RwLock::default(),
                flights: Mutex::default(),
                owners: compat::Recall::default(),
                secrets: compat::Recall::default(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.cfg
    }

    /// The current value of a credential, fetching it if none is valid.
    pub async fn get(&self, id: &AccountId, cred: Credential) -> Result<Issued> {
        check_owns(id, cred)?;
        let key = (id.clone(), cred);
        if let Some(hit) = self.inner.cache_fresh(&key) {
            metrics::counter!("wetoken_cache_hits_total").increment(1);
            return Ok(hit);
        }
        metrics::counter!("wetoken_cache_misses_total").increment(1);
        let flight = self.inner.flight(&key);
        let _turn = flight.lock().await;
        self.inner.clone().get_locked(&key).await
    }

    /// Passive refresh (SPEC §2). With `stale`, refreshes only if that value is
    /// still the current one and otherwise answers the newer value at once.
    /// Without it, a force refresh limited to one per credential per
    /// `force_refresh_min_interval` (else `RateLimited`).
    pub async fn refresh(&self, id: &AccountId, cred: Credential, stale: Option<&str>) -> Result<Issued> {
        check_owns(id, cred)?;
        if cred.is_pushed() {
            return Err(ServiceError::Invalid(format!(
                "{cred} is pushed by WeChat and cannot be refreshed"
            )));
        }
        let account = self.inner.account(id).await?;
        let key = (id.clone(), cred);
        let flight = self.inner.flight(&key);
        let _turn = flight.lock().await;
        self.inner.clone().refresh_locked(account, cred, stale).await
    }

    /// Proactive refresh of one credential whose `due_at` has come. Skips it
    /// when another instance holds the lease or already refreshed it. A
    /// ticket first refreshes the access token it depends on, if that is due.
    pub async fn refresh_due(&self, id: &AccountId, cred: Credential) -> Result<()> {
        if cred.needs_access_token() {
            // The ticket is fetched with the token: refresh that first if due.
            // Its failure is its own; the ticket still tries with a valid token.
            let _ = Box::pin(self.refresh_due(id, Credential::AccessToken)).await;
        }
        let key = (id.clone(), cred);
        let flight = self.inner.flight(&key);
        let _turn = flight.lock().await;
        let now = self.inner.now_ms();
        let Some(row) = self.inner.store.credential(&id.to_string(), cred.as_str()).await? else {
            return Ok(());
        };
        if row.value.is_none() || row.due_at.is_none_or(|d| d > now) {
            return Ok(());
        }
        let account = self.inner.account(id).await?;
        let previous = self.inner.decrypt(&row)?;
        let plan = Plan {
            cred,
            seen: row.version,
            force: false,
            trigger: Trigger::Proactive,
            wait: false,
            previous,
        };
        self.inner.clone().refresh_from(account, plan).await.map(drop)
    }

    /// Drops what this process remembers of an account and its children:
    /// cached values, and which tokens and secrets were found to be theirs.
    pub fn forget(&self, id: &AccountId) {
        let gone = |a: &AccountId| a == id || a.parent().as_ref() == Some(id);
        self.inner.cache.write().unwrap().retain(|(a, _), _| !gone(a));
        self.inner.owners.retain(|(a, _)| !gone(a));
        self.inner.secrets.retain(|a| !gone(a));
    }

    /// Sets the per-credential remaining-life gauges from this instance's
    /// cache (called when metrics are scraped).
    pub fn observe_remaining(&self) {
        let now = self.inner.now_ms();
        for ((id, cred), c) in self.inner.cache.read().unwrap().iter() {
            metrics::gauge!(
                "wetoken_credential_remaining_seconds",
                "account" => id.to_string(),
                "credential" => cred.as_str(),
            )
            .set(((c.expires_at - now) as f64 / 1000.0).max(0.0));
        }
    }
}

fn check_owns(id: &AccountId, cred: Credential) -> Result<()> {
    if id.owns(cred) {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("{} accounts have no {cred}", id.kind())))
    }
}

fn not_found(id: &AccountId) -> ServiceError {
    ServiceError::NotFound(format!("no account {id}"))
}

/// RFC 3339 UTC, whole seconds: `2026-11-21T10:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339_ms(ms: i64) -> String {
    rfc3339(from_millis(ms))
}

/// Where a fetch failed: in this credential's own upstream call, or in
/// obtaining what it depends on (a ticket's access token).
enum FetchError {
    Own(UpstreamError),
    Dependency(ServiceError),
}

impl From<FetchError> for ServiceError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Own(u) => ServiceError::Upstream(u),
            FetchError::Dependency(d) => d,
        }
    }
}

/// A secret the fetch needs, or why it cannot start.
fn secret_of<'a>(s: Option<&'a crate::secret::Secret>, what: &str) -> std::result::Result<&'a str, FetchError> {
    s.map(crate::secret::Secret::expose)
        .ok_or_else(|| FetchError::Dependency(ServiceError::Invalid(format!("the account has no {what}"))))
}

impl Inner {
    fn now_ms(&self) -> i64 {
        to_millis(self.clock.now())
    }

    fn jitter() -> f64 {
        rand::thread_rng().r#gen()
    }

    fn flight(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        self.flights.lock().unwrap().entry(key.clone()).or_default().clone()
    }

    /// A cached value that is valid and was checked recently enough.
    fn cache_fresh(&self, key: &Key) -> Option<Issued> {
        let now = self.now_ms();
        let ttl = self.cfg.cache_ttl.as_millis() as i64;
        let cache = self.cache.read().unwrap();
        let c = cache.get(key)?;
        (c.expires_at > now && now - c.checked_at < ttl).then(|| Issued {
            value: c.value.clone(),
            expires_at: from_millis(c.expires_at),
        })
    }

    fn remember(&self, key: &Key, value: String, expires_at: i64, now: i64) {
        self.cache.write().unwrap().insert(
            key.clone(),
            Cached {
                value,
                expires_at,
                checked_at: now,
            },
        );
    }

    fn decrypt(&self, row: &CredentialRow) -> Result<Option<String>> {
        row.value
            .as_deref()
            .map(|sealed| self.key.open(sealed))
            .transpose()
            .map_err(|e| ServiceError::Store(StoreError::Other(e.to_string())))
    }

    /// The valid value of a row, decrypted; also refreshes the cache from it.
    fn usable(&self, key: &Key, row: Option<&CredentialRow>, now: i64) -> Result<Option<Issued>> {
        let Some(row) = row else {
            self.cache.write().unwrap().remove(key);
            return Ok(None);
        };
        let Some(expires_at) = row.expires_at.filter(|e| *e > now) else {
            return Ok(None);
        };
        let Some(value) = self.decrypt(row)? else {
            return Ok(None);
        };
        self.remember(key, value.clone(), expires_at, now);
        Ok(Some(Issued {
            value,
            expires_at: from_millis(expires_at),
        }))
    }

    async fn get_locked(self: Arc<Self>, key: &Key) -> Result<Issued> {
        if let Some(hit) = self.cache_fresh(key) {
            return Ok(hit);
        }
        let (id, cred) = key;
        let now = self.now_ms();
        let row = self.store.credential(&id.to_string(), cred.as_str()).await?;
        if let Some(v) = self.usable(key, row.as_ref(), now)? {
            return Ok(v);
        }
        let account = self.account(id).await?;
        if cred.is_pushed() {
            return Err(ServiceError::Unavailable(format!(
                "no {cred} has been received from WeChat yet for {id}"
            )));
        }
        if let Some(blocked) = row.as_ref().and_then(blocked_error(now)) {
            return Err(blocked);
        }
        let plan = Plan {
            cred: *cred,
            seen: row.map_or(0, |r| r.version),
            force: false,
            trigger: Trigger::Cold,
            wait: true,
            previous: None,
        };
        self.refresh_from(account, plan).await
    }

    async fn refresh_locked(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        stale: Option<&str>,
    ) -> Result<Issued> {
        let key = (account.id.clone(), cred);
        let sid = account.id.to_string();
        let now = self.now_ms();
        let row = self.store.credential(&sid, cred.as_str()).await?;
        let current = self.usable(&key, row.as_ref(), now)?;
        match (stale, &current) {
            // Someone already replaced the value the caller saw rejected.
            (Some(stale), Some(cur)) if cur.value != stale => return Ok(cur.clone()),
            (Some(_), _) => {}
            (None, _) => {
                let interval = self.cfg.force_refresh_min_interval.as_millis() as i64;
                if !self
                    .store
                    .try_mark_forced(&sid, cred.as_str(), now, now - interval)
                    .await?
                {
                    return Err(ServiceError::RateLimited(format!(
                        "{cred} of {} was force-refreshed less than {} s ago; pass the rejected value as \"stale\" to refresh it",
                        account.id,
                        self.cfg.force_refresh_min_interval.as_secs()
                    )));
                }
            }
        }
        if let Some(blocked) = row.as_ref().and_then(blocked_error(now)) {
            return Err(blocked);
        }
        let plan = Plan {
            cred,
            seen: row.map_or(0, |r| r.version),
            // The current value is rejected: a stable token must be forced.
            force: current.is_some(),
            trigger: Trigger::Passive,
            wait: true,
            previous: current.map(|c| c.value),
        };
        self.refresh_from(account, plan).await
    }

    /// Takes the lease at `plan.seen` and fetches, or waits for whoever holds it.
    /// Boxed: a ticket's fetch recurses into its access token's refresh.
    fn refresh_from(self: Arc<Self>, account: Account, plan: Plan) -> BoxFuture<'static, Result<Issued>> {
        Box::pin(self.refresh_from_inner(account, plan))
    }

    async fn refresh_from_inner(self: Arc<Self>, account: Account, mut plan: Plan) -> Result<Issued> {
        let cred = plan.cred;
        let key = (account.id.clone(), cred);
        let sid = account.id.to_string();
        let owner = self.cfg.instance_id.clone();
        let started = self.now_ms();
        let waiting_since = tokio::time::Instant::now();
        let deadline = waiting_since + self.cfg.upstream_timeout + Duration::from_secs(2);
        let mut backoff = Duration::from_millis(20);
        let mut waited = false;
        loop {
            let now = self.now_ms();
            let until = now + self.cfg.lease.as_millis() as i64;
            if self
                .store
                .try_lease(&sid, cred.as_str(), &owner, plan.seen, now, until)
                .await?
            {
                if waited {
                    metrics::histogram!("wetoken_lease_wait_seconds").record(waiting_since.elapsed().as_secs_f64());
                }
                // Run the fetch in its own task: if the caller goes away the
                // lease is still written or released.
                let this = self.clone();
                let account = account.clone();
                let plan = plan.clone();
                return tokio::spawn(async move { this.fetch_and_store(account, plan).await })
                    .await
                    .map_err(|e| ServiceError::Unavailable(format!("refresh task failed: {e}")))?;
            }
            if !plan.wait {
                return Err(ServiceError::Unavailable(format!(
                    "{cred} of {} is being refreshed elsewhere",
                    account.id
                )));
            }
            // Another holder: wait for its write.
            if !waited {
                waited = true;
                metrics::counter!("wetoken_lease_waits_total").increment(1);
            }
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(ServiceError::Unavailable(format!(
                    "{cred} of {} is being refreshed by another instance; try again",
                    account.id
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
            let Some(row) = self.store.credential(&sid, cred.as_str()).await? else {
                return Err(not_found(&account.id));
            };
            let now = self.now_ms();
            if row.version > plan.seen
                && let Some(v) = self.usable(&key, Some(&row), now)?
            {
                metrics::histogram!("wetoken_lease_wait_seconds").record(waiting_since.elapsed().as_secs_f64());
                return Ok(v);
            }
            let lease_free = row.lease_until.is_none_or(|u| u < now);
            if lease_free && row.last_error_at.is_some_and(|at| at >= started) {
                // The holder failed while we waited: answer its error rather
                // than calling WeChat again at once.
                return Err(recorded_error(&row));
            }
            plan.seen = row.version;
        }
    }

    /// Holding the lease: call WeChat and write the result.
    async fn fetch_and_store(self: Arc<Self>, account: Account, plan: Plan) -> Result<Issued> {
        let cred = plan.cred;
        let key = (account.id.clone(), cred);
        let sid = account.id.to_string();
        let owner = self.cfg.instance_id.clone();
        let outcome = self.clone().fetch(&account, cred, plan.force).await;
        let result = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("wetoken_refreshes_total", "trigger" => plan.trigger.as_str(), "result" => result)
            .increment(1);
        let now = self.now_ms();
        match outcome {
            Ok(f) => {
                let expires_at = now + f.expires_in * 1000;
                let unchanged = plan.previous.as_deref() == Some(f.value.as_str());
                let ahead = self.cfg.refresh_ahead.as_millis() as i64;
                let due_at = timing::due_after_fetch(now, expires_at, ahead, Self::jitter(), unchanged);
                let sealed = self.key.seal(&f.value);
                // WeChat rotated the authorizer_refresh_token: store it with the token.
                let rotated = f.rotated_refresh_token.as_ref().map(|r| {
                    let mut secrets = account.secrets.clone();
                    secrets.refresh_token = Some(crate::secret::Secret::new(r.clone()));
                    self.key
                        .seal(&serde_json::to_string(&secrets).expect("secrets serialize"))
                });
                let version = self
                    .store
                    .complete_refresh(&RefreshWrite {
                        account_id: &sid,
                        kind: cred.as_str(),
                        owner: &owner,
                        value: &sealed,
                        value_hash: &crate::keys::hash_key(&f.value),
                        previous_until: now + GRACE_MS,
                        expires_at,
                        refreshed_at: now,
                        due_at,
                        account_secrets: rotated.as_deref(),
                    })
                    .await?;
                match version {
                    Some(_) => self.remember(&key, f.value.clone(), expires_at, now),
                    // Our lease expired and someone else refreshed meanwhile:
                    // the value we hold is still valid (WeChat's grace).
                    None => tracing::warn!(account = %sid, %cred, "lease lost during refresh"),
                }
                tracing::info!(account = %sid, %cred, trigger = plan.trigger.as_str(), unchanged, expires_in = f.expires_in, "refreshed");
                Ok(Issued {
                    value: f.value,
                    expires_at: from_millis(expires_at),
                })
            }
            Err(e) => {
                let attempts = self
                    .store
                    .credential(&sid, cred.as_str())
                    .await?
                    .map_or(0, |r| r.attempts)
                    + 1;
                let (errcode, errmsg, blocked_until, err) = match e {
                    FetchError::Own(u) => {
                        let blocked = if u.is_quota() {
                            Some(to_millis(next_quota_day(from_millis(now))))
                        } else if u.is_retryable() || (cred.needs_access_token() && u.is_token_rejected()) {
                            None
                        } else {
                            Some(now + PERMANENT_BLOCK.as_millis() as i64)
                        };
                        (u.errcode(), u.errmsg(), blocked, ServiceError::Upstream(u))
                    }
                    FetchError::Dependency(ServiceError::Upstream(u)) => {
                        (u.errcode(), u.errmsg(), None, ServiceError::Upstream(u))
                    }
                    FetchError::Dependency(other) => (-1, other.to_string(), None, other),
                };
                let due_at = blocked_until.unwrap_or_else(|| timing::due_after_failure(now, attempts, Self::jitter()));
                tracing::warn!(account = %sid, %cred, errcode, %errmsg, attempts, "refresh failed");
                self.store
                    .record_failure(&FailureWrite {
                        account_id: &sid,
                        kind: cred.as_str(),
                        owner: &owner,
                        errcode,
                        errmsg: &errmsg,
                        at: now,
                        blocked_until,
                        due_at,
                        attempts,
                    })
                    .await?;
                Err(err)
            }
        }
    }

    /// One upstream fetch of a credential.
    async fn fetch(
        self: Arc<Self>,
        account: &Account,
        cred: Credential,
        force: bool,
    ) -> std::result::Result<Fetched, FetchError> {
        let up = &self.upstream;
        match (&account.id, cred) {
            (AccountId::Mp { appid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let api = account.config.token_api;
                // Classic always issues a new token; force matters to stable only.
                let force = force && api == TokenApi::Stable;
                up.mp_access_token(api, appid.as_str(), secret, force)
                    .await
                    .map_err(FetchError::Own)
            }
            (
                AccountId::Mp { .. } | AccountId::Authorizer { .. },
                Credential::JsapiTicket | Credential::WxCardTicket,
            ) => {
                let ty = if cred == Credential::JsapiTicket {
                    "jsapi"
                } else {
                    "wx_card"
                };
                self.with_token(&account.id, move |token| async move { up.mp_ticket(&token, ty).await })
                    .await
            }
            (AccountId::Component { appid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let ticket = self
                    .pushed_ticket(
                        &account.id,
                        Credential::VerifyTicket,
                        "component_verify_ticket",
                        &format!("WeChat pushes one every 10 minutes to the authorization event URL /callback/component/{appid}"),
                    )
                    .await?;
                up.component_token(appid.as_str(), secret, &ticket)
                    .await
                    .map_err(FetchError::Own)
            }
            (AccountId::Authorizer { component_appid, appid }, Credential::AccessToken) => {
                let refresh = secret_of(account.secrets.refresh_token.as_ref(), "refresh_token")?;
                let component = AccountId::Component {
                    appid: component_appid.clone(),
                };
                let (c, a) = (component_appid.as_str(), appid.as_str());
                let r = self
                    .with_token(&component, move |token| async move {
                        up.authorizer_token(&token, c, a, refresh).await
                    })
                    .await;
                if let Err(FetchError::Own(e)) = &r
                    && e.errcode() == 61023
                {
                    // The refresh token is dead: only a new authorization helps.
                    let _ = self.set_status(account, AccountStatus::NeedsReauthorization).await;
                }
                r
            }
            (AccountId::Work { corpid, .. }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                up.work_token(corpid.as_str(), secret).await.map_err(FetchError::Own)
            }
            (AccountId::Work { .. } | AccountId::Corp { .. }, Credential::JsapiTicket | Credential::AgentTicket) => {
                let agent = cred == Credential::AgentTicket;
                self.with_token(
                    &account.id,
                    move |token| async move { up.work_ticket(&token, agent).await },
                )
                .await
            }
            (AccountId::Provider { corpid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                up.provider_token(corpid.as_str(), secret)
                    .await
                    .map_err(FetchError::Own)
            }
            (AccountId::Suite { suite_id }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let ticket = self
                    .pushed_ticket(
                        &account.id,
                        Credential::SuiteTicket,
                        "suite_ticket",
                        &format!("WeCom pushes one every 10 minutes to the instruction callback URL /callback/suite/{suite_id}"),
                    )
                    .await?;
                up.suite_token(suite_id.as_str(), secret, &ticket)
                    .await
                    .map_err(FetchError::Own)
            }
            (AccountId::Corp { suite_id, corpid }, Credential::AccessToken) => {
                let permanent = secret_of(account.secrets.permanent_code.as_ref(), "permanent_code")?;
                let suite = AccountId::Suite {
                    suite_id: suite_id.clone(),
                };
                let corpid = corpid.as_str();
                self.with_token(
                    &suite,
                    move |t| async move { up.corp_token(&t, corpid, permanent).await },
                )
                .await
            }
            (id, cred) => Err(FetchError::Dependency(ServiceError::Unavailable(format!(
                "fetching {cred} for {} accounts is not supported by this version",
                id.kind()
            )))),
        }
    }

    /// Calls WeChat with the current access token of `holder`; if WeChat
    /// rejects the token (40001/40014/42001), refreshes it by
    /// compare-and-refresh and tries once more.
    async fn with_token<T, F, Fut>(self: &Arc<Self>, holder: &AccountId, call: F) -> std::result::Result<T, FetchError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, UpstreamError>>,
    {
        let service = CredentialService { inner: self.clone() };
        let token = service
            .get(holder, Credential::AccessToken)
            .await
            .map_err(FetchError::Dependency)?;
        match call(token.value.clone()).await {
            Err(e) if e.is_token_rejected() => {
                let token = service
                    .refresh(holder, Credential::AccessToken, Some(&token.value))
                    .await
                    .map_err(FetchError::Dependency)?;
                call(token.value).await.map_err(FetchError::Own)
            }
            r => r.map_err(FetchError::Own),
        }
    }

    /// The latest pushed ticket (verify_ticket, suite_ticket) while valid;
    /// without one the token cannot be fetched: the error names the ticket
    /// as WeChat does and says where WeChat sends it (`whence`).
    async fn pushed_ticket(
        &self,
        id: &AccountId,
        cred: Credential,
        name: &str,
        whence: &str,
    ) -> std::result::Result<String, FetchError> {
        let now = self.now_ms();
        let row = self
            .store
            .credential(&id.to_string(), cred.as_str())
            .await
            .map_err(|e| FetchError::Dependency(e.into()))?;
        let value = match row.filter(|r| r.expires_at.is_some_and(|e| e > now)) {
            Some(r) => self.decrypt(&r).map_err(FetchError::Dependency)?,
            None => None,
        };
        value.ok_or_else(|| {
            FetchError::Dependency(ServiceError::Unavailable(format!(
                "no valid {name} has been received for {id}: {whence}"
            )))
        })
    }

    async fn set_status(&self, account: &Account, status: AccountStatus) -> Result<()> {
        let mut a = account.clone();
        a.status = status;
        a.updated_at = self.now_ms();
        self.store.update_account(&self.account_row(&a), false).await?;
        Ok(())
    }

    /// Writes a value obtained outside a refresh (api_query_auth's token) under
    /// the lease, as a refresh would. Skipped if another holder has the lease.
    async fn store_value(&self, id: &AccountId, cred: Credential, value: &str, expires_in: i64) -> Result<()> {
        let sid = id.to_string();
        let owner = &self.cfg.instance_id;
        let now = self.now_ms();
        let seen = self
            .store
            .credential(&sid, cred.as_str())
            .await?
            .map_or(0, |r| r.version);
        let until = now + self.cfg.lease.as_millis() as i64;
        if !self
            .store
            .try_lease(&sid, cred.as_str(), owner, seen, now, until)
            .await?
        {
            return Ok(());
        }
        let expires_at = now + expires_in * 1000;
        let ahead = self.cfg.refresh_ahead.as_millis() as i64;
        let written = self
            .store
            .complete_refresh(&RefreshWrite {
                account_id: &sid,
                kind: cred.as_str(),
                owner,
                value: &self.key.seal(value),
                value_hash: &crate::keys::hash_key(value),
                previous_until: now + GRACE_MS,
                expires_at,
                refreshed_at: now,
                due_at: timing::due_after_fetch(now, expires_at, ahead, Self::jitter(), false),
                account_secrets: None,
            })
            .await?;
        if written.is_some() {
            self.remember(&(id.clone(), cred), value.to_owned(), expires_at, now);
        }
        Ok(())
    }

    /// The account, if it exists and is not revoked.
    async fn account(&self, id: &AccountId) -> Result<Account> {
        let row = self
            .store
            .account(&id.to_string())
            .await?
            .ok_or_else(|| not_found(id))?;
        let account = self.decode_account(&row)?;
        if account.status == AccountStatus::Revoked {
            return Err(not_found(id));
        }
        Ok(account)
    }

    fn decode_account(&self, row: &AccountRow) -> Result<Account> {
        let corrupt = |what: &str| ServiceError::Store(StoreError::Other(format!("account {}: {what}", row.id)));
        let id: AccountId = row.id.parse().map_err(|_| corrupt("malformed id"))?;
        let secrets_json = self.key.open(&row.secrets).map_err(|e| corrupt(&e.to_string()))?;
        let secrets: Secrets = serde_json::from_str(&secrets_json).map_err(|_| corrupt("malformed secrets"))?;
        let config: AccountConfig = serde_json::from_str(&row.config).map_err(|_| corrupt("malformed config"))?;
        Ok(Account {
            id,
            secrets,
            config,
            status: AccountStatus::parse(&row.status),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    fn account_row(&self, a: &Account) -> AccountRow {
        AccountRow {
            id: a.id.to_string(),
            kind: a.id.kind().as_str().to_owned(),
            parent_id: a.id.parent().map(|p| p.to_string()),
            secrets: self
                .key
                .seal(&serde_json::to_string(&a.secrets).expect("secrets serialize")),
            config: serde_json::to_string(&a.config).expect("config serializes"),
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The recorded error of a credential that must not be fetched before
/// `blocked_until` (a permanent error, or the day's quota spent).
fn blocked_error(now: i64) -> impl Fn(&CredentialRow) -> Option<ServiceError> {
    move |row| {
        row.blocked_until
            .filter(|until| *until > now)
            .map(|_| recorded_error(row))
    }
}

fn recorded_error(row: &CredentialRow) -> ServiceError {
    ServiceError::Upstream(UpstreamError::WeChat {
        errcode: row.last_errcode.unwrap_or(-1),
        errmsg: row.last_errmsg.clone().unwrap_or_default(),
    })
}
