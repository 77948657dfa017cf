//! # wetoken-http
//!
//! wetoken's HTTP surface as an axum [`Router`]: the native `/v1` API
//! (SPEC §3), authentication (SPEC §4) and the operations endpoints.
//! Mount [`router`] in an existing axum application to embed wetoken.
//!
//! `/metrics` renders the process's Prometheus recorder, which the binary
//! installs ([`install_metrics`]).
//!
//! Route modules (`credentials`, `accounts`, `platforms`, `compat`,
//! `proxy`, `legacy`, `callback`, `ops`) import nothing from each other:
//! only the shared [`extract`]ors (body limit, serde bodies, authenticate →
//! parse → authorize once), [`error`]s (every native failure leaves through
//! [`error::ApiError`], every WeChat-shaped one through [`error::WxError`])
//! and [`render`] (the JSON shapes of SPEC §3, rendered from the service's
//! typed values).

mod accounts;
mod callback;
mod compat;
pub mod console;
mod credentials;
mod diagnostics;
pub mod error;
mod events;
pub mod extract;
mod legacy;
mod messages;
pub mod openapi;
mod ops;
mod platforms;
pub mod proxy;
pub mod render;
pub mod serve;
mod signin;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use wetoken_core::auth::Authenticator;
use wetoken_core::service::Services;

/// What every handler needs: cheap to clone (one `Arc`), since every
/// request clones it.
#[derive(Clone)]
pub struct AppState(Arc<AppConfig>);

/// The parts of an [`AppState`].
pub struct AppConfig {
    pub service: Services,
    pub auth: Arc<Authenticator>,
    pub max_body: usize,
    /// Renders `/metrics`; None when no Prometheus recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// Callbacks older or newer than this (seconds) are refused.
    pub callback_max_skew_secs: i64,
    /// The URL WeChat and browsers reach this server at (no trailing `/`).
    pub public_url: String,
    /// The relay to WeChat's API: token-free calls always, and the compat
    /// proxy when `proxy_compat`.
    pub proxy: proxy::Proxy,
    /// `WETOKEN_PROXY=on`: other WeChat API paths carrying a managed token
    /// are forwarded (the router's fallback).
    pub proxy_compat: bool,
    /// `WETOKEN_REQUEST_TIMEOUT_SECS`: the longest a request may take to
    /// arrive and be answered (408 after it).
    pub request_timeout: std::time::Duration,
    /// `WETOKEN_METRICS_PER_ACCOUNT`: per-account series in `/metrics`.
    pub metrics_per_account: bool,
}

impl AppState {
    pub fn new(config: AppConfig) -> Self {
        AppState(Arc::new(config))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppConfig;
    fn deref(&self) -> &AppConfig {
        &self.0
    }
}

/// The whole wetoken HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(signin::routes())
        .merge(credentials::routes())
        .merge(platforms::routes())
        .merge(accounts::routes())
        .merge(events::routes())
        .merge(diagnostics::routes())
        .merge(compat::routes())
        .merge(legacy::routes())
        .merge(callback::routes())
        .merge(messages::routes())
        .merge(ops::routes())
        .merge(console::routes())
        .merge(proxy::routes())
        .fallback(proxy::fallback)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(ops::Front {
            max_body: state.max_body,
            request_timeout: state.request_timeout,
        })
        .with_state(state)
}

/// Installs the process-wide Prometheus recorder (once) and returns the
/// handle that renders it. Latencies are histograms in seconds. Call from
/// within a Tokio runtime: it starts the recorder's upkeep task.
pub fn install_metrics() -> Option<PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()?;
            // Histograms buffer raw samples until drained: drain them every
            // few seconds, scraped or not, so memory stays flat.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .clone()
}
