//! The store conformance suite: what every `Store` backend must do.
//!
//! `tests/backends.rs` calls [`run`] for every backend with a store on a fresh, migrated database.
//! Each check uses its own account ids, so the order does not matter and a
//! failure names the operation.

use std::sync::Arc;

use serde_json::{Map, Value};
use wetoken_core::account::{AccountConfig, AccountStatus};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{AttemptWrite, CallbackSource, DeliveryStatus, Format, NewEvent, TypePattern, Webhook};
use wetoken_core::keys::Pattern;
use wetoken_core::store::{
    AccountQuery, ApiKey, AuditEntry, AuditQuery, CredentialState, EventQuery, FailureWrite, ForceBudget, KeyCheck,
    LastError, PushWrite, RefreshWrite, Sealed, Store, StoreError, StoredAccount, Verdict,
};

use Credential::{AccessToken, JsapiTicket, VerifyTicket};

mod accounts;
mod console;
mod credentials;
mod events;
mod replies;
mod signin;
mod values;

pub use accounts::*;
pub use console::*;
pub use credentials::*;
pub use events::*;
pub use replies::*;
pub use signin::*;
pub use values::*;

/// A staleness deadline that never comes in these checks.
const NEVER: i64 = i64::MAX / 4;

/// A lease long enough for any check to finish inside it.
const LEASE: i64 = 60_000;

/// A verify ticket pushed at `at`.
pub(super) fn push_write<'a>(
    account: &'a AccountId,
    value: &'a Sealed,
    expires_at: i64,
    at: i64,
    stale_at: i64,
    events: &'a [NewEvent],
) -> PushWrite<'a> {
    PushWrite {
        account,
        credential: VerifyTicket,
        value,
        expires_at,
        at,
        stale_at,
        events,
    }
}

/// Runs every check. Panics with the name of the first that fails.
pub async fn run(store: Arc<dyn Store>) {
    store.migrate().await.expect("migrate twice is idempotent");
    store.ping().await.expect("ping");
    accounts(&*store).await;
    account_children_and_delete(&*store).await;
    update_can_drop_credentials(&*store).await;
    lease_and_versions(&*store).await;
    lease_contention(store.clone()).await;
    lease_expiry(&*store).await;
    failures_and_blocks(&*store).await;
    pushed_values(&*store).await;
    forced_limit(store.clone()).await;
    verdicts_and_the_force_cap(store.clone()).await;
    rotated_secrets_with_refresh(&*store).await;
    long_values(&*store).await;
    due_order(&*store).await;
    values_by_hash(&*store).await;
    keys(&*store).await;
    master_keys_and_resealing(&*store).await;
    events_outbox(&*store).await;
    events_commit_in_order(store.clone()).await;
    webhooks_and_deliveries(&*store).await;
    messages_and_their_replies(&*store).await;
    console_queries(&*store).await;
    audit_trail(&*store).await;
    session_keys(&*store).await;
}

pub(super) fn id(s: &str) -> AccountId {
    s.parse().expect("a valid account id")
}

pub(super) fn sealed(s: &str) -> Sealed {
    Sealed::from_stored(s)
}

/// An account (its parent follows from its id).
pub(super) fn account(id_text: &str) -> StoredAccount {
    StoredAccount {
        id: id(id_text),
        secrets: sealed("v1:sealed"),
        config: AccountConfig::default(),
        status: AccountStatus::Active,
        created_at: 1_000,
        updated_at: 1_000,
    }
}
