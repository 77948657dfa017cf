//! # wetoken as a library (SPEC §9)
//!
//! The front door for a Rust application that embeds wetoken instead of
//! running the server (the Go project's `Bind` and `Cron`): build a
//! [`Wetoken`] from a database URL and a master key, then read credentials
//! in-process with [`Wetoken::get`], mount [`Wetoken::router`] in an axum
//! application, and keep everything fresh with [`Wetoken::run_scheduler`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wetoken::{Credential, Wetoken};
//!
//! let wetoken = Wetoken::builder()
//!     .database("sqlite://wetoken.db")
//!     .master_key(&std::env::var("WETOKEN_MASTER_KEY")?)
//!     .build()
//!     .await?;
//! let _scheduler = wetoken.run_scheduler();
//! let token = wetoken.get(&"mp:wx1234567890".parse()?, Credential::AccessToken).await?;
//! println!("{} until {}", token.value, token.expires_at);
//! let app = axum::Router::new().merge(wetoken.router()); // the whole HTTP API
//! # let _ = app; Ok(()) }
//! ```
//!
//! `examples/embedded.rs` is a whole axum application doing this. The
//! `wetoken` binary is built on the same builder.

pub mod backend;
pub mod server;

use std::sync::Arc;

pub use wetoken_core as core;
pub use wetoken_core::domain::{AccountId, Credential};
pub use wetoken_core::service::{Issued, ServiceConfig, ServiceError, Services};
pub use wetoken_http as http;

use wetoken_core::auth::Authenticator;
use wetoken_core::clock::{Clock, SystemClock};
use wetoken_core::secret::MasterKey;
use wetoken_core::upstream::{Upstream, UpstreamConfig};
use wetoken_http::{AppConfig, AppState};

/// Why a [`Wetoken`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no database: call .database(url)")]
    NoDatabase,
    #[error("no master key: call .master_key(base64)")]
    NoMasterKey,
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("{0}")]
    Database(String),
    #[error("cannot install the schema: {0}")]
    Schema(String),
    /// The schema is missing or older and this build may not install it.
    #[error("{0}")]
    SchemaOutdated(String),
    #[error("upstream client: {0}")]
    Upstream(String),
    /// The master key does not open this database (SPEC §2).
    #[error("{0}")]
    WrongMasterKey(wetoken_core::service::custody::KeyProblem),
}

/// Settings of a [`Wetoken`]; defaults are SPEC §7's.
#[must_use]
pub struct Builder {
    database_url: Option<String>,
    master_key: Option<MasterKey>,
    old_keys: Vec<MasterKey>,
    key_error: Option<String>,
    upstream: UpstreamConfig,
    service: ServiceConfig,
    clock: Arc<dyn Clock>,
    auto_migrate: bool,
    admin_key: Option<String>,
    auth: bool,
    public_url: String,
    max_body_bytes: usize,
    callback_max_skew_secs: i64,
    proxy: bool,
    metrics: bool,
    request_timeout: std::time::Duration,
    metrics_per_account: bool,
    proxy_max_inflight: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            database_url: None,
            master_key: None,
            old_keys: Vec::new(),
            key_error: None,
            upstream: UpstreamConfig::default(),
            service: ServiceConfig::default(),
            clock: Arc::new(SystemClock),
            auto_migrate: true,
            admin_key: None,
            auth: true,
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1 << 20,
            callback_max_skew_secs: 300,
            proxy: false,
            metrics: false,
            request_timeout: std::time::Duration::from_secs(30),
            metrics_per_account: false,
            proxy_max_inflight: 256,
        }
    }
}

impl Builder {
    /// `sqlite:`, `mysql:`, `postgres:` or `oracle:` URL (the backend's cargo
    /// feature must be on).
    pub fn database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// The 32-byte base64 key that seals secrets at rest.
    pub fn master_key(mut self, base64: &str) -> Self {
        match MasterKey::from_base64(base64) {
            Ok(k) => self.master_key = Some(k),
            Err(e) => self.key_error = Some(e.to_string()),
        }
        self
    }

    /// The master key itself (as the binary reads it from its key file).
    pub fn key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    /// Keys that sealed data before the current one, still able to open it
    /// during a rotation (`WETOKEN_OLD_MASTER_KEYS`, base64 each).
    pub fn old_master_keys<'a>(mut self, base64: impl IntoIterator<Item = &'a str>) -> Self {
        for k in base64 {
            match MasterKey::from_base64(k) {
                Ok(k) => self.old_keys.push(k),
                Err(e) => self.key_error = Some(format!("an old master key: {e}")),
            }
        }
        self
    }

    /// Base URLs of the WeChat and WeCom APIs (a simulator in tests), each
    /// a comma-separated list of domains tried in order (SPEC §16).
    pub fn upstream(mut self, mp: &str, work: &str) -> Self {
        self.upstream.mp = UpstreamConfig::list(mp);
        self.upstream.work = UpstreamConfig::list(work);
        self
    }

    /// The HTTP proxy every upstream call goes through
    /// (`WETOKEN_UPSTREAM_PROXY`, CONNECT for https).
    pub fn upstream_proxy(mut self, url: &str) -> Self {
        self.upstream.proxy = Some(url.to_owned());
        self
    }

    /// Every upstream setting at once; the timeout stays the service's.
    pub fn upstream_config(mut self, cfg: UpstreamConfig) -> Self {
        self.upstream = UpstreamConfig {
            timeout: self.upstream.timeout,
            ..cfg
        };
        self
    }

    /// Refresh-ahead, lease, cache TTL, timeouts, force-refresh interval.
    /// The upstream timeout is the service's.
    pub fn service_config(mut self, cfg: ServiceConfig) -> Self {
        self.upstream.timeout = cfg.upstream_timeout;
        self.service = cfg;
        self
    }

    /// The clock every expiry and TTL runs on (tests move a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Install or upgrade the schema when building (the default).
    pub fn auto_migrate(mut self, on: bool) -> Self {
        self.auto_migrate = on;
        self
    }

    /// The admin key of the HTTP API; without one, only client keys work.
    pub fn admin_key(mut self, key: &str) -> Self {
        self.admin_key = Some(key.to_owned());
        self
    }

    /// `false` trusts every HTTP caller as admin (SPEC §4 `WETOKEN_AUTH=off`).
    pub fn auth(mut self, on: bool) -> Self {
        self.auth = on;
        self
    }

    /// The URL WeChat and browsers reach the router at.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = url.trim_end_matches('/').to_owned();
        self
    }

    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    pub fn callback_max_skew(mut self, secs: i64) -> Self {
        self.callback_max_skew_secs = secs;
        self
    }

    /// The longest a request may take to arrive and be answered (SPEC §4;
    /// 408 after it).
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Per-account series in `/metrics` (off: its size does not grow with
    /// the number of accounts, and strangers learn no account id from it).
    pub fn metrics_per_account(mut self, on: bool) -> Self {
        self.metrics_per_account = on;
        self
    }

    /// Proxied requests forwarded at once (beyond: WeChat's -1 at once).
    pub fn proxy_max_inflight(mut self, n: usize) -> Self {
        self.proxy_max_inflight = n;
        self
    }

    /// Forward other WeChat API paths carrying a managed token (SPEC §6).
    pub fn proxy(mut self, on: bool) -> Self {
        self.proxy = on;
        self
    }

    /// Install the process-wide Prometheus recorder and serve `/metrics`.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Opens the database (installing the schema unless told not to) and
    /// builds the service and the router state.
    pub async fn build(self) -> Result<Wetoken, BuildError> {
        if let Some(e) = self.key_error {
            return Err(BuildError::MasterKey(e));
        }
        let url = self.database_url.ok_or(BuildError::NoDatabase)?;
        let key = self.master_key.ok_or(BuildError::NoMasterKey)?.with_old(&self.old_keys);
        let store = backend::open(&url).await.map_err(BuildError::Database)?;
        if self.auto_migrate {
            store.migrate().await.map_err(|e| BuildError::Schema(e.to_string()))?;
        } else if store.schema().await.map_err(|e| BuildError::Database(e.to_string()))?
            != wetoken_core::store::Schema::Current
        {
            return Err(BuildError::SchemaOutdated(
                "the database has no wetoken schema, or an older one: run `wetoken install-schema` (or have a DBA \
                 apply `wetoken install-schema --print`), or start `wetoken serve` with WETOKEN_AUTO_MIGRATE=true"
                    .into(),
            ));
        }
        let upstream = Upstream::with_clock(self.upstream.clone(), self.clock.clone())
            .map_err(|e| BuildError::Upstream(e.to_string()))?;
        let proxy = wetoken_http::proxy::Proxy::new(upstream.transport().clone(), self.proxy_max_inflight);
        let service = Services::new(store, upstream, self.clock, key, self.service);
        // Nothing runs on a key that does not open the database.
        service
            .custody
            .check_master_key()
            .await
            .map_err(|e| BuildError::Database(e.to_string()))?
            .map_err(BuildError::WrongMasterKey)?;
        let auth = Authenticator::new(&service.engine, self.admin_key.as_deref(), self.auth);
        let state = AppState::new(AppConfig {
            service,
            auth: Arc::new(auth),
            max_body: self.max_body_bytes,
            metrics: if self.metrics {
                wetoken_http::install_metrics()
            } else {
                None
            },
            callback_max_skew_secs: self.callback_max_skew_secs,
            public_url: self.public_url,
            request_timeout: self.request_timeout,
            metrics_per_account: self.metrics_per_account,
            proxy,
            proxy_compat: self.proxy,
        });
        Ok(Wetoken { state })
    }
}

/// An embedded wetoken: the credential service and its HTTP API.
#[derive(Clone)]
pub struct Wetoken {
    /// The service and the router's settings (`state.service`).
    state: AppState,
}

impl Wetoken {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The current value of a credential, fetched if none is valid.
    pub async fn get(&self, id: &AccountId, cred: Credential) -> Result<Issued, ServiceError> {
        self.state.service.engine.get(id, cred).await
    }

    /// SPEC §2 passive refresh: with the value WeChat rejected as `stale`, or
    /// a rate-limited force refresh without.
    pub async fn refresh(&self, id: &AccountId, cred: Credential, stale: Option<&str>) -> Result<Issued, ServiceError> {
        self.state.service.engine.refresh(id, cred, stale).await
    }

    /// Everything else: accounts, keys, the Open Platform and WeCom flows.
    pub fn service(&self) -> &Services {
        &self.state.service
    }

    /// The whole HTTP API as an axum router, to serve or to merge into an
    /// application's own.
    pub fn router(&self) -> axum::Router {
        wetoken_http::router(self.state.clone())
    }

    /// Refreshes every credential ahead of expiry, in the background, until
    /// the handle is aborted (one refresher per credential across every
    /// instance sharing the database).
    pub fn run_scheduler(&self) -> tokio::task::JoinHandle<()> {
        self.state.service.engine.spawn_scheduler()
    }

    /// Delivers events to webhooks, in the background, until stopped (each
    /// delivery attempted by one instance at a time across every instance
    /// sharing the database; SPEC §10). `stop().await` on shutdown lets the
    /// attempts in flight record their outcome.
    pub fn run_deliverer(&self) -> wetoken_core::service::deliver::DeliveryWorker {
        self.state.service.events.spawn_deliverer()
    }
}
