//! The credential engine and the services around it (SPEC §2, §9).
//!
//! [`CredentialEngine`] owns every credential's life cycle behind a small
//! API (`get`, `refresh`, `with_token`, the proactive refresh of
//! `scheduler`); the services hold the engine and only the parts of the
//! store they use; [`Services`] assembles them over one store:
//!
//! | type | modules | concern |
//! |---|---|---|
//! | [`CredentialEngine`] | `engine`, `read`, `verify`, `flight`, `lease`, `fetch`, `write`, `failure`, `alerts`, `cache`, [`scheduler`] | the read decision (cache, row, fetch); WeChat asked before anything rotates; one turn per credential; the database lease; one dispatch table to WeChat; one write path; what a failure records; wetoken's own events; proactive refreshes |
//! | [`Accounts`] | `accounts`, [`compat`], [`diagnostics`] | accounts as typed views ([`views`]); what WeChat-shaped callers present; quota, rid, clear_quota |
//! | [`Platforms`] | [`component`], `suite`, `children`, [`callbacks`] | the Open Platform and WeCom flows, pushed tickets, verified callbacks as events |
//! | [`Events`] | [`events`], [`deliver`] | reading events, webhooks, delivering to them |
//! | [`Console`] | [`sessions`], [`overview`] | console sessions and sign-in links, the overview |
//! | [`Custody`] | [`custody`], `apikeys`, [`audit`] | the master key's checks and re-sealing, API keys, the audit trail |
//!
//! No module here imports from a service: the engine never calls a
//! service, and the fetch path never calls the engine's public API.
//! A read goes cache → flight → database → lease → WeChat. Every write
//! schedules the credential's next refresh (`due_at`, see [`crate::timing`]).
//! Values are sealed with the master key before they reach the store.

mod accounts;
mod alerts;
mod apikeys;
pub mod audit;
mod batch;
pub(crate) mod cache;
pub mod callbacks;
mod children;
pub mod compat;
pub mod component;
pub mod custody;
pub mod deliver;
pub mod diagnostics;
mod engine;
pub mod events;
mod failure;
mod fetch;
mod flight;
mod lease;
pub mod messages;
pub mod overview;
mod read;
pub mod release_test;
pub mod replies;
pub mod scheduler;
mod services;
pub mod sessions;
pub mod signed;
pub mod signin;
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
use crate::store::{AccountStore, AuditStore, EventStore, KeyStore, SessionKeyStore, SessionStore, Store, StoreError};
use crate::upstream::{Upstream, UpstreamError};

pub use compat::SecretCheck;
pub use engine::CredentialEngine;
use engine::Inner;
pub use fetch::TokenCall;
pub use lease::ATTEMPTS_PER_LEASE;
pub use services::{Accounts, Console, Custody, Events, Messages, Platforms, Services, SignIn};
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
    /// How long a user's session key is kept after a login (SPEC §13).
    pub session_key_ttl: Duration,
    /// How long a push waits for its reply webhook (SPEC §14).
    pub reply_budget: Duration,
    /// Whether the Open Platform's release test is answered (SPEC §14).
    pub release_test: bool,
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
            session_key_ttl: Duration::from_secs(259_200),
            reply_budget: Duration::from_millis(4000),
            release_test: true,
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
