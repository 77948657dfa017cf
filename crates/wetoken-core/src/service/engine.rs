//! The credential engine: the handle ([`CredentialEngine`]) and its state
//! (`Inner`: the store, the upstream client, the clock, the master key, the
//! cache, the flights), with the life cycle's public API — `get`, `refresh`,
//! `with_token`, the proactive refresh — and the account reads the engine
//! and the services share. The decide, lease, fetch, write and failure
//! steps live in their own modules, as `Inner`'s methods.

use super::*;

/// The credential engine: the life cycle of every credential (cache,
/// flights, the lease, fetches, writes, the failure policy, the read
/// decision) behind `get`, `refresh`, `with_token` and the proactive
/// refresh. Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct CredentialEngine {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) upstream: Upstream,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) key: MasterKey,
    pub(super) cfg: ServiceConfig,
    pub(super) cache: cache::Cache,
    pub(super) flights: flight::Flights,
    /// Whose a presented token is (see `compat`).
    pub(super) owners: cache::Memo<String, Key>,
    /// Which account a presented secret opened (see `compat`).
    pub(super) secrets: cache::Memo<String, AccountId>,
    /// Wakes this process's delivery worker when it committed an event.
    pub(super) wake: tokio::sync::Notify,
}

impl CredentialEngine {
    pub(super) fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        key: MasterKey,
        cfg: ServiceConfig,
    ) -> Self {
        let ttl = cfg.cache_ttl.as_millis() as i64;
        let cache = cache::Cache::new(ttl, cfg.cache_max_entries);
        CredentialEngine {
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
                wake: tokio::sync::Notify::new(),
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

    /// Where a cursor handed out by [`CredentialEngine::cursor_for`] for
    /// `list` starts; None for any other text (made up, edited, or from
    /// another list).
    pub fn cursor_from(&self, list: &str, cursor: &str) -> Option<String> {
        let (raw, tag) = cursor.rsplit_once('.')?;
        self.inner
            .key
            .tag_ok(&format!("{list}\0{raw}"), tag)
            .then(|| raw.to_owned())
    }

    /// [`CredentialEngine::now`] as epoch milliseconds (no date built).
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

    /// [`CredentialEngine::refresh_due`] once this process's turn came.
    pub(super) async fn refresh_due_in_turn(&self, id: &AccountId, cred: Credential) -> Result<()> {
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

impl Inner {
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(super) fn jitter() -> f64 {
        rand::thread_rng().r#gen()
    }

    /// The account, if it exists and is not revoked.
    pub(super) async fn account(&self, id: &AccountId) -> Result<Account> {
        let account = self.any_account(id).await?.ok_or_else(|| not_found(id))?;
        if account.status == AccountStatus::Revoked {
            return Err(not_found(id));
        }
        Ok(account)
    }

    /// The account, revoked or not, with its secrets opened.
    pub(super) async fn any_account(&self, id: &AccountId) -> Result<Option<Account>> {
        self.store.account(id).await?.map(|a| self.open_account(a)).transpose()
    }

    pub(super) fn open_account(&self, a: crate::store::StoredAccount) -> Result<Account> {
        let id = a.id.clone();
        a.open(&self.key).map_err(|e| corrupt(format!("account {id}: {e}")))
    }

    pub(super) async fn set_status(&self, account: &Account, status: AccountStatus) -> Result<()> {
        let mut a = account.clone();
        a.status = status;
        a.updated_at = self.now_ms();
        self.store.update_account(&a.seal(&self.key), false, &[]).await?;
        Ok(())
    }

    /// Checks that the parent of a new child account (an imported authorizer
    /// or corp) exists.
    pub(super) async fn require_parent(&self, id: &AccountId) -> Result<()> {
        if let Some(parent) = id.parent() {
            self.account(&parent).await.map_err(|e| match e {
                ServiceError::NotFound(_) => {
                    ServiceError::Invalid(format!("{parent} does not exist: create it before {id}"))
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// Every account whose id starts with `prefix`, read a page at a time
    /// (a corp's apps, a suite's corps): bounded pages, never one answer.
    pub(super) async fn with_prefix(&self, prefix: &str) -> Result<Vec<crate::store::StoredAccount>> {
        const PAGE: i64 = 500;
        let mut out = Vec::new();
        let mut q = crate::store::AccountQuery {
            prefix: prefix.to_owned(),
            limit: PAGE,
            ..Default::default()
        };
        loop {
            let page = self.store.accounts_page(&q).await?;
            let full = page.len() as i64 == PAGE;
            q.after = page.last().map(|a| a.id.to_string());
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
}
