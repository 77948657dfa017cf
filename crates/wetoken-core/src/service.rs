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
//! Values are sealed with the master key before they reach the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::account::{Account, AccountConfig, AccountPatch, AccountStatus, NewAccount, SUPPORTED_KINDS, Secrets};
use crate::clock::{Clock, from_millis, next_quota_day, to_millis};
use crate::domain::{AccountId, Credential, TokenApi};
use crate::keys::{Pattern, check_name, generate_key, hash_key};
use crate::secret::MasterKey;
use crate::store::{AccountRow, CredentialRow, FailureWrite, KeyRow, RefreshWrite, Store, StoreError};
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
        }
    }
}

/// A name for this process in lease rows: host-independent and unique.
pub fn new_instance_id() -> String {
    format!("{}-{}", std::process::id(), &crate::keys::generate_key()[4..16])
}

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

    // ------------------------------------------------------------------
    // Credentials

    /// The current value of a credential, fetching it if none is valid.
    pub async fn get(&self, id: &AccountId, cred: Credential) -> Result<Issued> {
        check_owns(id, cred)?;
        let key = (id.clone(), cred);
        if let Some(hit) = self.inner.cache_fresh(&key) {
            return Ok(hit);
        }
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

    /// Drops this process's cached values of an account.
    pub fn forget(&self, id: &AccountId) {
        self.inner.cache.write().unwrap().retain(|(a, _), _| a != id);
    }

    // ------------------------------------------------------------------
    // Accounts

    pub async fn create_account(&self, new: NewAccount) -> Result<Value> {
        if !SUPPORTED_KINDS.contains(&new.id.kind()) {
            return Err(ServiceError::Invalid(format!(
                "kind {} is not supported by this version of wetoken yet",
                new.id.kind()
            )));
        }
        let now = to_millis(self.now());
        let account = Account {
            id: new.id,
            secrets: new.secrets,
            config: new.config,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
        };
        match self.inner.store.insert_account(&self.inner.account_row(&account)).await {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("account {} already exists", account.id))),
            r => r.map_err(ServiceError::from),
        }?;
        self.describe(&account, &[]).map(Value::Object)
    }

    pub async fn list_accounts(&self) -> Result<Vec<Value>> {
        let rows = self.inner.store.accounts(None).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let account = self.inner.decode_account(&row)?;
            let creds = self.inner.store.credentials(&row.id).await?;
            out.push(Value::Object(self.describe(&account, &creds)?));
        }
        Ok(out)
    }

    pub async fn show_account(&self, id: &AccountId) -> Result<Value> {
        let account = self.inner.account(id).await?;
        let creds = self.inner.store.credentials(&id.to_string()).await?;
        self.describe(&account, &creds).map(Value::Object)
    }

    /// Applies a patch. A changed secret (or token API) drops the account's
    /// credentials; any patch clears recorded blocks (a manual reset).
    pub async fn patch_account(&self, id: &AccountId, patch: AccountPatch) -> Result<Value> {
        let mut account = self.inner.account(id).await?;
        let drop = patch.invalidates_credentials();
        patch.apply(&mut account);
        account.updated_at = to_millis(self.now());
        match self
            .inner
            .store
            .update_account(&self.inner.account_row(&account), drop)
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id)),
            r => r.map_err(ServiceError::from),
        }?;
        self.inner.store.clear_blocks(&id.to_string()).await?;
        if drop {
            self.forget(id);
        }
        self.show_account(id).await
    }

    pub async fn delete_account(&self, id: &AccountId) -> Result<()> {
        let existed = self.inner.store.delete_account(&id.to_string()).await?;
        self.inner
            .cache
            .write()
            .unwrap()
            .retain(|(a, _), _| a != id && a.parent().as_ref() != Some(id));
        if existed { Ok(()) } else { Err(not_found(id)) }
    }

    /// The API view of an account (SPEC §3): id, kind, identifiers, settings
    /// and credential status; never a secret.
    fn describe(&self, a: &Account, creds: &[CredentialRow]) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        m.insert("id".into(), a.id.to_string().into());
        m.insert("kind".into(), a.id.kind().as_str().into());
        for (k, v) in a.id.fields() {
            m.insert(k.into(), v.into());
        }
        if a.id.kind() == crate::domain::AccountKind::Mp {
            m.insert("token_api".into(), a.config.token_api.as_str().into());
        }
        if let Some(agentid) = &a.config.agentid {
            m.insert("agentid".into(), agentid.clone().into());
        }
        m.insert("status".into(), a.status.as_str().into());
        m.insert("created_at".into(), rfc3339_ms(a.created_at).into());
        m.insert("updated_at".into(), rfc3339_ms(a.updated_at).into());
        let mut cm = Map::new();
        for cred in a.id.kind().credentials() {
            let row = creds.iter().find(|r| r.kind == cred.as_str());
            let filled = row.filter(|r| r.value.is_some());
            let last_error = row.and_then(|r| {
                Some(json!({
                    "errcode": r.last_errcode?,
                    "errmsg": r.last_errmsg.clone().unwrap_or_default(),
                    "at": rfc3339_ms(r.last_error_at?),
                }))
            });
            cm.insert(
                cred.as_str().into(),
                json!({
                    "expires_at": filled.and_then(|r| r.expires_at).map(rfc3339_ms),
                    "refreshed_at": filled.and_then(|r| r.refreshed_at).map(rfc3339_ms),
                    "last_error": last_error,
                    "blocked_until": row.and_then(|r| r.blocked_until).map(rfc3339_ms),
                }),
            );
        }
        m.insert("credentials".into(), Value::Object(cm));
        Ok(m)
    }

    // ------------------------------------------------------------------
    // API keys

    /// Creates a client key; returns the key itself, shown only now.
    pub async fn create_key(&self, name: &str, patterns: &[Pattern]) -> Result<String> {
        check_name(name).map_err(|e| ServiceError::Invalid(e.0))?;
        if patterns.is_empty() {
            return Err(ServiceError::Invalid("accounts must name at least one pattern".into()));
        }
        let key = generate_key();
        let row = KeyRow {
            name: name.to_owned(),
            hash: hash_key(&key),
            accounts: serde_json::to_string(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
                .expect("strings serialize"),
            created_at: to_millis(self.now()),
        };
        match self.inner.store.insert_key(&row).await {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict(format!("key {name} already exists"))),
            r => r.map_err(ServiceError::from),
        }?;
        Ok(key)
    }

    pub async fn list_keys(&self) -> Result<Vec<Value>> {
        Ok(self
            .inner
            .store
            .keys()
            .await?
            .into_iter()
            .map(|k| {
                json!({
                    "name": k.name,
                    "accounts": serde_json::from_str::<Value>(&k.accounts).unwrap_or(Value::Null),
                    "created_at": rfc3339_ms(k.created_at),
                })
            })
            .collect())
    }

    pub async fn delete_key(&self, name: &str) -> Result<()> {
        if self.inner.store.delete_key(name).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no key named {name:?}")))
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

impl Inner {
    fn now_ms(&self) -> i64 {
        to_millis(self.clock.now())
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

    fn remember(&self, key: &Key, c: Cached) {
        self.cache.write().unwrap().insert(key.clone(), c);
    }

    /// The valid value of a row, decrypted; also refreshes the cache from it.
    fn usable(&self, key: &Key, row: Option<&CredentialRow>, now: i64) -> Result<Option<Issued>> {
        let Some(row) = row else {
            self.cache.write().unwrap().remove(key);
            return Ok(None);
        };
        let (Some(sealed), Some(expires_at)) = (&row.value, row.expires_at) else {
            return Ok(None);
        };
        if expires_at <= now {
            return Ok(None);
        }
        let value = self
            .key
            .open(sealed)
            .map_err(|e| ServiceError::Store(StoreError::Other(e.to_string())))?;
        self.remember(
            key,
            Cached {
                value: value.clone(),
                expires_at,
                checked_at: now,
            },
        );
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
        let sid = id.to_string();
        let now = self.now_ms();
        let row = self.store.credential(&sid, cred.as_str()).await?;
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
        let seen = row.map_or(0, |r| r.version);
        self.refresh_from(account, *cred, seen, false).await
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
        let seen = row.map_or(0, |r| r.version);
        // The current value is rejected: a stable token must be forced.
        let force = current.is_some();
        self.refresh_from(account, cred, seen, force).await
    }

    /// Takes the lease at `seen` and fetches, or waits for whoever holds it.
    /// Boxed: a ticket's fetch recurses into its access token's refresh.
    fn refresh_from(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        seen: i64,
        force: bool,
    ) -> BoxFuture<'static, Result<Issued>> {
        Box::pin(self.refresh_from_inner(account, cred, seen, force))
    }

    async fn refresh_from_inner(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        mut seen: i64,
        force: bool,
    ) -> Result<Issued> {
        let key = (account.id.clone(), cred);
        let sid = account.id.to_string();
        let owner = self.cfg.instance_id.clone();
        let started = self.now_ms();
        let deadline = tokio::time::Instant::now() + self.cfg.upstream_timeout + Duration::from_secs(2);
        let mut backoff = Duration::from_millis(20);
        loop {
            let now = self.now_ms();
            let until = now + self.cfg.lease.as_millis() as i64;
            if self
                .store
                .try_lease(&sid, cred.as_str(), &owner, seen, now, until)
                .await?
            {
                // Run the fetch in its own task: if the caller goes away the
                // lease is still written or released.
                let this = self.clone();
                let account = account.clone();
                return tokio::spawn(async move { this.fetch_and_store(account, cred, force).await })
                    .await
                    .map_err(|e| ServiceError::Unavailable(format!("refresh task failed: {e}")))?;
            }
            // Another holder: wait for its write.
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
            if row.version > seen
                && let Some(v) = self.usable(&key, Some(&row), now)?
            {
                return Ok(v);
            }
            let lease_free = row.lease_until.is_none_or(|u| u < now);
            if lease_free && row.last_error_at.is_some_and(|at| at >= started) {
                // The holder failed while we waited: answer its error rather
                // than calling WeChat again at once.
                return Err(recorded_error(&row));
            }
            seen = row.version;
        }
    }

    /// Holding the lease: call WeChat and write the result.
    async fn fetch_and_store(self: Arc<Self>, account: Account, cred: Credential, force: bool) -> Result<Issued> {
        let key = (account.id.clone(), cred);
        let sid = account.id.to_string();
        let owner = self.cfg.instance_id.clone();
        match self.clone().fetch(&account, cred, force).await {
            Ok(f) => {
                let now = self.now_ms();
                let expires_at = now + f.expires_in * 1000;
                let sealed = self.key.seal(&f.value);
                let version = self
                    .store
                    .complete_refresh(&RefreshWrite {
                        account_id: &sid,
                        kind: cred.as_str(),
                        owner: &owner,
                        value: &sealed,
                        expires_at,
                        refreshed_at: now,
                        account_secrets: None,
                    })
                    .await?;
                match version {
                    Some(_) => self.remember(
                        &key,
                        Cached {
                            value: f.value.clone(),
                            expires_at,
                            checked_at: now,
                        },
                    ),
                    // Our lease expired and someone else refreshed meanwhile:
                    // the value we hold is still valid (WeChat's grace).
                    None => tracing::warn!(account = %sid, %cred, "lease lost during refresh"),
                }
                tracing::info!(account = %sid, %cred, expires_in = f.expires_in, "refreshed");
                Ok(Issued {
                    value: f.value,
                    expires_at: from_millis(expires_at),
                })
            }
            Err(e) => {
                let now = self.now_ms();
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
                tracing::warn!(account = %sid, %cred, errcode, %errmsg, "refresh failed");
                self.store
                    .record_failure(&FailureWrite {
                        account_id: &sid,
                        kind: cred.as_str(),
                        owner: &owner,
                        errcode,
                        errmsg: &errmsg,
                        at: now,
                        blocked_until,
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
        match (&account.id, cred) {
            (AccountId::Mp { appid }, Credential::AccessToken) => {
                let secret = account
                    .secrets
                    .secret
                    .as_ref()
                    .ok_or_else(|| FetchError::Dependency(ServiceError::Invalid("account has no secret".into())))?;
                let api = account.config.token_api;
                // Classic always issues a new token; force matters to stable only.
                let force = force && api == TokenApi::Stable;
                self.upstream
                    .mp_access_token(api, appid.as_str(), secret.expose(), force)
                    .await
                    .map_err(FetchError::Own)
            }
            (AccountId::Mp { .. }, Credential::JsapiTicket | Credential::WxCardTicket) => {
                let ty = if cred == Credential::JsapiTicket {
                    "jsapi"
                } else {
                    "wx_card"
                };
                let service = CredentialService { inner: self.clone() };
                let token = service
                    .get(&account.id, Credential::AccessToken)
                    .await
                    .map_err(FetchError::Dependency)?;
                match self.upstream.mp_ticket(&token.value, ty).await {
                    Err(e) if e.is_token_rejected() => {
                        let token = service
                            .refresh(&account.id, Credential::AccessToken, Some(&token.value))
                            .await
                            .map_err(FetchError::Dependency)?;
                        self.upstream.mp_ticket(&token.value, ty).await.map_err(FetchError::Own)
                    }
                    r => r.map_err(FetchError::Own),
                }
            }
            (id, cred) => Err(FetchError::Dependency(ServiceError::Unavailable(format!(
                "fetching {cred} for {} accounts is not supported by this version",
                id.kind()
            )))),
        }
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
