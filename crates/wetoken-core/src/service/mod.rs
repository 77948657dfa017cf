//! The credential service (SPEC §2, §9): get, refresh, and account
//! management, with one home per concern:
//!
//! | module | concern |
//! |---|---|
//! | [`cache`] | values (and presented tokens, secrets, keys) remembered for the cache TTL |
//! | `read` | the read decision (cache, row, fetch), and the engine's own `get`, `refresh`, `with_token` |
//! | `verify` | the passive-refresh decision: WeChat asked before anything rotates, the day's force cap |
//! | `flight` | work on a credential in a task of its own, one turn per credential; cold reads join the one in flight |
//! | `lease` | the database lease across instances (on the database's clock): take it, or wait for its holder |
//! | `fetch` | one dispatch table by (kind, credential) to WeChat; calls made with another credential |
//! | `failure` | what a failure records: block, backoff, the error to answer |
//! | `write` | the one write path of a value obtained from WeChat |
//! | `accounts`, `apikeys` | accounts and API keys, as typed views ([`views`]) |
//! | `children`, [`component`], `suite` | authorizers and corps, the Open Platform and WeCom flows |
//! | [`compat`] | what WeChat-shaped callers present: secrets and tokens |
//! | [`custody`] | the master key: the database's key checks, re-sealing (`rekey`) |
//! | [`scheduler`] | proactive refreshes ahead of expiry (and stale pushed tickets) |
//! | [`callbacks`] | a verified callback applied and recorded as an event in one transaction |
//! | `alerts` | wetoken's own events: which conditions an outcome starts or ends |
//! | [`events`], [`deliver`] | reading events, webhooks, and delivering to them |
//!
//! A read goes cache → flight → database → lease → WeChat. Every write
//! schedules the credential's next refresh (`due_at`, see [`crate::timing`]).
//! Values are sealed with the master key before they reach the store.

mod accounts;
mod alerts;
mod apikeys;
pub mod audit;
pub(crate) mod cache;
pub mod callbacks;
mod children;
pub mod compat;
pub mod component;
pub mod custody;
pub mod deliver;
pub mod diagnostics;
pub mod events;
mod failure;
mod fetch;
mod flight;
mod lease;
pub mod overview;
mod read;
pub mod scheduler;
pub mod sessions;
mod suite;
mod verify;
pub mod views;
mod write;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::account::{Account, AccountStatus};
use crate::clock::Clock;
use crate::domain::{AccountId, Credential};
use crate::secret::MasterKey;
use crate::store::{Store, StoreError};
use crate::upstream::{Upstream, UpstreamError};

pub use compat::SecretCheck;
pub use fetch::TokenCall;
pub use lease::ATTEMPTS_PER_LEASE;
pub use views::{
    AccountFilter, AccountView, AuthorizerEntry, ChildStatus, CorpEntry, CredentialView, ErrorView, Issued, KeyView,
    Page,
};

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
    /// A pushed ticket older than this raises `wetoken.ticket.stale`.
    pub stale_ticket: Duration,
    /// Events and finished deliveries are kept this long.
    pub event_retention: Duration,
    /// Values held in the in-process cache (least recently read leave first).
    pub cache_max_entries: usize,
    /// Proactive refreshes started per second, at most, by this instance.
    pub max_upstream_rps: u32,
    /// How long WeChat's verdict on a reported value is remembered.
    pub verify_ttl: Duration,
    /// Forced stable-token fetches per credential per WeChat day.
    pub max_forced_per_day: u32,
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
            stale_ticket: Duration::from_secs(1500),
            event_retention: Duration::from_secs(7 * 86_400),
            cache_max_entries: 100_000,
            max_upstream_rps: 200,
            verify_ttl: Duration::from_secs(30),
            max_forced_per_day: 10,
        }
    }
}

/// A name for this process in lease rows: host-independent and unique.
pub fn new_instance_id() -> String {
    format!("{}-{}", std::process::id(), &crate::keys::generate_key()[4..16])
}

#[derive(Debug, Clone, thiserror::Error)]
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
    /// A token cannot be fetched before WeChat pushes the ticket it needs
    /// (a component's verify_ticket, a suite's suite_ticket).
    #[error("no valid {} has been received from WeChat for {account}", wechat_name(*ticket))]
    TicketMissing { account: AccountId, ticket: Credential },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The name WeChat gives a pushed ticket.
fn wechat_name(c: Credential) -> &'static str {
    match c {
        Credential::VerifyTicket => "component_verify_ticket",
        other => other.as_str(),
    }
}

type Result<T, E = ServiceError> = std::result::Result<T, E>;

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

/// A credential of an account: the unit of caching, flights and leases.
type Key = (AccountId, Credential);

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
    cache: cache::Cache,
    flights: flight::Flights,
    /// Whose a presented token is (see `compat`).
    owners: cache::Memo<String, Key>,
    /// Which account a presented secret opened (see `compat`).
    secrets: cache::Memo<String, AccountId>,
    /// Landing-page code exchanges per component this minute (see
    /// `component`): (minute, count), one entry per existing component.
    landings: std::sync::Mutex<std::collections::HashMap<AccountId, (i64, u32)>>,
    /// Wakes this process's delivery worker when it committed an event.
    wake: tokio::sync::Notify,
    /// Posts to webhooks (see `deliver`): 10 s, no redirects.
    webhooks: reqwest::Client,
}

impl CredentialService {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        key: MasterKey,
        cfg: ServiceConfig,
    ) -> Self {
        let ttl = cfg.cache_ttl.as_millis() as i64;
        let cache = cache::Cache::new(ttl, cfg.cache_max_entries);
        CredentialService {
            inner: Arc::new(Inner {
                store,
                upstream,
                clock,
                key,
                cfg,
                cache,
                flights: flight::Flights::default(),
                owners: cache::Memo::new(ttl),
                secrets: cache::Memo::new(ttl),
                landings: Default::default(),
                wake: tokio::sync::Notify::new(),
                webhooks: deliver::client(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The service's clock: every TTL in the process runs on it.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// How many credentials have work in flight or waiting in this process
    /// (a diagnostic: it returns to 0 when nothing is being fetched).
    pub fn credentials_in_flight(&self) -> usize {
        self.inner.flights.len()
    }

    /// Waits (at most `limit`) until no work on a credential is in flight in
    /// this process: on shutdown, running fetches finish and release their
    /// leases instead of leaving them for other instances to wait out.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.inner.flights.len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `next_cursor` handed out for a page of `list` that ends at `raw`:
    /// `raw` and a tag of (list, raw) by the master key, so that only a
    /// cursor wetoken issued for that list comes back (SPEC §3).
    pub fn cursor_for(&self, list: &str, raw: &str) -> String {
        format!("{raw}.{}", self.inner.key.tag(&format!("{list}\0{raw}")))
    }

    /// Where a cursor handed out by [`CredentialService::cursor_for`] for
    /// `list` starts; None for any other text (made up, edited, or from
    /// another list).
    pub fn cursor_from(&self, list: &str, cursor: &str) -> Option<String> {
        let (raw, tag) = cursor.rsplit_once('.')?;
        self.inner
            .key
            .tag_ok(&format!("{list}\0{raw}"), tag)
            .then(|| raw.to_owned())
    }

    /// [`CredentialService::now`] as epoch milliseconds (no date built).
    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.cfg
    }

    /// The current value of a credential, fetching it if none is valid.
    pub async fn get(&self, id: &AccountId, cred: Credential) -> Result<Issued> {
        self.inner.get(id, cred).await
    }

    /// Passive refresh (SPEC §2, `verify`). With `stale`, answers the newer
    /// value at once if that one is no longer current; if it is, asks WeChat
    /// whether it is dead and replaces it only then (a value WeChat accepts
    /// comes back with `verified_at`). Without it, a force refresh. Either
    /// refresh of a current value counts against one budget per credential,
    /// shared by the cluster: at most one per `force_refresh_min_interval`,
    /// else `RateLimited` with nothing called upstream; forced stable-token
    /// calls also against the day's cap. With no valid value at all it is a
    /// plain fetch.
    pub async fn refresh(&self, id: &AccountId, cred: Credential, stale: Option<&str>) -> Result<Issued> {
        self.inner.refresh(id, cred, stale).await
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
        self.inner.run_in_turn(&key, self.refresh_due_in_turn(id, cred)).await
    }

    /// [`CredentialService::refresh_due`] once this process's turn came.
    async fn refresh_due_in_turn(&self, id: &AccountId, cred: Credential) -> Result<()> {
        let now = self.inner.now_ms();
        let Some(row) = self.inner.store.credential(id, cred).await? else {
            return Ok(());
        };
        if row.value.is_none() || row.due_at.is_none_or(|d| d > now) {
            return Ok(());
        }
        if cred.is_pushed() {
            // A pushed ticket is due when it has gone stale: raised once.
            return self.inner.ticket_stale(&row, now).await;
        }
        let account = match self.inner.account(id).await {
            Ok(a) => a,
            Err(e @ ServiceError::Store(StoreError::Corrupt(_))) => {
                // Secrets that do not open (a key not given, a row moved):
                // recorded on the credential and backed off, never retried
                // every tick.
                self.inner.record_unusable(&row, &e).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // A value that does not open is replaced by the refresh.
        let previous = self.inner.open_value(&row).unwrap_or(None);
        let plan = lease::Plan {
            cred,
            row: Some(row),
            force: false,
            trigger: Trigger::Proactive,
            wait: false,
            previous,
        };
        self.inner.clone().refresh_from(account, plan).await.map(drop)
    }

    /// Calls WeChat with the current access token of `holder` (SPEC §2
    /// passive rules): when `rejected` says WeChat refused that token, one
    /// verified compare-and-refresh of it and, if it was replaced, one more
    /// call (a token WeChat still accepts leaves the first answer standing). The proxy and every
    /// fetch that needs another credential go through here.
    pub async fn with_token<T, F, Fut>(
        &self,
        holder: &AccountId,
        call: F,
        rejected: impl Fn(&T) -> bool,
    ) -> Result<TokenCall<T>>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.inner.with_token(holder, call, rejected).await
    }

    /// Drops what this process remembers of an account and its children:
    /// cached values, and which tokens and secrets were found to be theirs.
    pub fn forget(&self, id: &AccountId) {
        let gone = |a: &AccountId| a == id || a.parent().as_ref() == Some(id);
        self.inner.cache.retain(|a| !gone(a));
        self.inner.owners.retain(|(a, _)| !gone(a));
        self.inner.secrets.retain(|a| !gone(a));
    }

    /// Sets the remaining-life gauges from this instance's cache (called
    /// when metrics are scraped): by account kind and credential, the
    /// shortest remaining life and how many are cached — series that do not
    /// grow with the number of accounts. With `per_account`
    /// (`WETOKEN_METRICS_PER_ACCOUNT`), one series per credential too.
    pub fn observe_remaining(&self, per_account: bool) {
        metrics::gauge!("wetoken_cache_entries").set(self.inner.cache.len() as f64);
        let mut by_kind: std::collections::BTreeMap<(&'static str, &'static str), (f64, u64)> = Default::default();
        for ((id, cred), secs) in self.inner.cache.remaining(self.inner.now_ms()) {
            let e = by_kind
                .entry((id.kind().as_str(), cred.as_str()))
                .or_insert((f64::MAX, 0));
            *e = (e.0.min(secs), e.1 + 1);
            if per_account {
                metrics::gauge!(
                    "wetoken_credential_remaining_seconds",
                    "account" => id.to_string(),
                    "credential" => cred.as_str(),
                )
                .set(secs);
            }
        }
        for ((kind, cred), (min, n)) in by_kind {
            metrics::gauge!("wetoken_credential_remaining_seconds_min", "kind" => kind, "credential" => cred).set(min);
            metrics::gauge!("wetoken_credentials_cached", "kind" => kind, "credential" => cred).set(n as f64);
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

fn corrupt(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(e.to_string()))
}

impl Inner {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn jitter() -> f64 {
        rand::thread_rng().r#gen()
    }

    /// The account, if it exists and is not revoked.
    async fn account(&self, id: &AccountId) -> Result<Account> {
        let account = self.any_account(id).await?.ok_or_else(|| not_found(id))?;
        if account.status == AccountStatus::Revoked {
            return Err(not_found(id));
        }
        Ok(account)
    }

    /// The account, revoked or not, with its secrets opened.
    async fn any_account(&self, id: &AccountId) -> Result<Option<Account>> {
        self.store.account(id).await?.map(|a| self.open_account(a)).transpose()
    }

    fn open_account(&self, a: crate::store::StoredAccount) -> Result<Account> {
        let id = a.id.clone();
        a.open(&self.key).map_err(|e| corrupt(format!("account {id}: {e}")))
    }

    async fn set_status(&self, account: &Account, status: AccountStatus) -> Result<()> {
        let mut a = account.clone();
        a.status = status;
        a.updated_at = self.now_ms();
        self.store.update_account(&a.seal(&self.key), false, &[]).await?;
        Ok(())
    }
}
