//! The `Store` trait: everything wetoken keeps in a database, in domain
//! types.
//!
//! A backend (`wetoken-store-sqlite`, …) implements it with its own dialect
//! and migrations and must pass the conformance suite in
//! `crates/wetoken-store-tests`. Backends turn their rows into these types in
//! one place (`wetoken-store-sql`'s `rows` module); a row that does not
//! decode is a [`StoreError::Corrupt`], never a default. Secrets and values
//! arrive already [`Sealed`] by the service, so a store never sees
//! plaintext. Instants are epoch milliseconds. A store enforces only what
//! must be atomic in the database:
//!
//! - **the refresh lease** ([`AccountStore::try_lease`]): one conditional UPDATE on the
//!   credential row, on the database's clock, so that across every instance
//!   sharing the database at most one holds the right to call WeChat for a
//!   credential, and only the holder, while its lease runs, writes the
//!   outcome (fencing);
//! - **versions**: every write of a credential value increments `version`;
//! - **the force-refresh limit** ([`AccountStore::try_mark_forced`]), cluster-wide;
//! - **durability of pushed values and rotated secrets**, committed before the
//!   call returns;
//! - **the outbox** (SPEC §10): the events a write carries are committed in
//!   its transaction, with ids that increase in commit order (each
//!   transaction that appends events takes the next ids from one counter
//!   row, whose row lock it holds until it commits), so a reader that has
//!   seen id `n` never later finds a smaller one;
//! - **one attempt per delivery at a time** ([`EventStore::try_lease_delivery`]),
//!   cluster-wide, on the database's clock.

use async_trait::async_trait;

pub use crate::account::StoredAccount;
use crate::domain::{AccountId, Credential};
use crate::events::{AttemptWrite, Delivery, DeliveryStatus, Event, NewEvent, Webhook};
pub use crate::secret::Sealed;

mod types;

pub use types::*;

/// Every part of the [`Store`] in scope at once, for code that calls a
/// whole store (`use wetoken_core::store::prelude::*`).
pub mod prelude {
    pub use super::{AccountStore, AuditStore, EventStore, KeyStore, SessionKeyStore, SessionStore, Store};
}

#[async_trait]
pub trait Store:
    AccountStore + KeyStore + EventStore + AuditStore + SessionStore + SessionKeyStore + Send + Sync + 'static
{
    /// Installs or upgrades the schema. Idempotent.
    async fn migrate(&self) -> StoreResult<()>;
    /// Which schema the database holds, against the migrations this build
    /// knows. Changes nothing.
    async fn schema(&self) -> StoreResult<Schema>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// Accounts and their credentials: the rows, the lease, refresh outcomes,
/// pushed values, the refresh budgets, WeChat's verdicts, and re-sealing.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    // ---- accounts
    /// `Conflict` if the id exists. `events` are committed with it.
    async fn insert_account(&self, account: &StoredAccount, events: &[NewEvent]) -> StoreResult<()>;
    async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>>;
    /// A page of accounts: ids starting with `q.prefix`, after `q.after`,
    /// ordered by id, at most `q.limit`, optionally of one status or not of
    /// one. One range scan of the primary key, whatever the total.
    async fn accounts_page(&self, q: &AccountQuery) -> StoreResult<Vec<StoredAccount>>;
    /// Replaces secrets, config, status and updated_at. With
    /// `drop_credentials`, the values of the account's fetched credentials
    /// go in the same transaction (a rotated secret invalidates everything
    /// derived from it), with their leases and blocks; their last error and
    /// failures in a row stay (an open alert stays open until a value
    /// comes); what WeChat pushed (verify_ticket, suite_ticket) and the
    /// account's children stay. `NotFound` if absent. `events` are
    /// committed with it.
    async fn update_account(
        &self,
        account: &StoredAccount,
        drop_credentials: bool,
        events: &[NewEvent],
    ) -> StoreResult<()>;
    /// Deletes the account, its children and all their credentials. Whether
    /// it existed.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool>;
    // ---- credentials
    async fn credential(&self, id: &AccountId, credential: Credential) -> StoreResult<Option<CredentialState>>;
    /// All credential rows of one account.
    async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>>;
    /// The credential rows of the accounts whose ids lie in `[first, last]`
    /// (a page of accounts): one range scan of the primary key.
    async fn credentials_between(&self, first: &AccountId, last: &AccountId) -> StoreResult<Vec<CredentialState>>;
    /// Takes the refresh lease for `owner` for `lease_ms`, if the row is
    /// still at `seen_version` and nobody holds an unexpired lease — its own
    /// holder included: an instance never starts a second fetch while its
    /// first is in flight. Lease time is the database's clock, so instances
    /// whose clocks differ still agree. Creates the row (version 0) if
    /// absent. Atomic across every connection and process.
    async fn try_lease(
        &self,
        id: &AccountId,
        credential: Credential,
        owner: &str,
        seen_version: i64,
        lease_ms: i64,
    ) -> StoreResult<bool>;
    /// Writes a refreshed value with version + 1 and its `due_at`, and
    /// releases the lease, clearing the last error and attempts, only if
    /// `owner` still holds the lease and it has not expired (by the
    /// database's clock): a late writer changes nothing. The new version, or None if the lease
    /// was lost.
    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>>;
    /// Records a failed refresh (error, block, attempts, next due) and
    /// releases the lease, only if `owner` still holds it unexpired: a late
    /// failure from a holder whose lease expired, was taken over or released
    /// changes nothing. Whether it was written.
    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<bool>;
    /// Stores a value WeChat pushed (verify_ticket, suite_ticket) at `w.at`
    /// (WeChat's CreateTime), committed before returning, unless a newer push
    /// is already stored (a replayed old message changes nothing). Its
    /// `due_at` is `w.stale_at`, when it raises `wetoken.ticket.stale` unless
    /// a newer push comes first. `w.events` (the callback's) are committed in
    /// the same transaction either way. The new version, or None when the
    /// stored push is newer.
    async fn put_pushed(&self, w: &PushWrite<'_>) -> StoreResult<Option<i64>>;
    /// Clears the `due_at` of a pushed value still at `version` and commits
    /// `events` with it (its staleness, raised once). Whether it was.
    async fn mark_pushed_stale(
        &self,
        id: &AccountId,
        credential: Credential,
        version: i64,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Records a refresh made on request (not due to expiry) now, by the
    /// database's clock, if none was recorded in the last `interval_ms`;
    /// false when rate-limited. Creates the row if absent.
    async fn try_mark_forced(&self, id: &AccountId, credential: Credential, interval_ms: i64) -> StoreResult<bool>;
    /// Records WeChat's verdict on the value at `version` (nothing if the
    /// value changed meanwhile). Whether it was recorded.
    async fn record_verdict(
        &self,
        id: &AccountId,
        credential: Credential,
        version: i64,
        verdict: Verdict,
    ) -> StoreResult<bool>;
    /// Counts one forced stable-token call against the WeChat day's cap
    /// (`max` a day, the day by the database's clock, 00:00 +08:00). When
    /// the day's calls are spent, the first refusal commits `spent_events`
    /// with it, once a day. The row must exist.
    async fn try_force_today(
        &self,
        id: &AccountId,
        credential: Credential,
        max: i64,
        spent_events: &[NewEvent],
    ) -> StoreResult<ForceBudget>;
    /// Clears `blocked_until`, the last error and attempts of every credential
    /// of an account, and makes filled ones due now (a manual reset).
    async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()>;
    /// Credentials with a value whose `due_at` has come and whose lease is
    /// free at `now`, earliest-expiring first, at most `limit`. An index range scan:
    /// the scheduler's deadline order lives in the database.
    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>>;
    /// The credential whose value hashes to `hash`, or whose previous value
    /// does while `previous_until > now`: which account a presented token
    /// belongs to.
    async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>>;
    /// Replaces an account's sealed secrets with `secrets` if the row is
    /// unchanged since `read` (its `updated_at`). Whether it was.
    async fn reseal_account(&self, read: &StoredAccount, secrets: &Sealed) -> StoreResult<bool>;
    /// Replaces a credential's sealed value with `value` if the row is still
    /// at `read`'s version. Whether it was.
    async fn reseal_value(&self, read: &CredentialState, value: &Sealed) -> StoreResult<bool>;
    // ---- the console (SPEC §11)
    /// How many accounts `q` matches (its prefix, status filters and
    /// `after`), counting at most `q.limit`: a bounded index range, so an
    /// overview of 100 000 authorizers reads no more than the cap.
    async fn count_accounts(&self, q: &AccountQuery) -> StoreResult<i64>;
    /// Credentials whose last refresh failed (a last error is recorded),
    /// most recent error first, at most `limit`: by the index on the
    /// error's time.
    async fn failing_credentials(&self, limit: i64) -> StoreResult<Vec<CredentialState>>;
}

/// API keys (stored hashed) and the master keys' check values.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    // ---- master keys (SPEC §2)
    /// The check values recorded for the master keys that sealed data here,
    /// by key id.
    async fn key_checks(&self) -> StoreResult<Vec<KeyCheck>>;
    /// Records a key's check value; nothing if its id is recorded already.
    async fn add_key_check(&self, check: &KeyCheck, now: i64) -> StoreResult<()>;
    /// Forgets a key's check (nothing is sealed with it any more).
    async fn remove_key_check(&self, key_id: &str) -> StoreResult<()>;
    // ---- API keys
    /// `Conflict` if the name exists.
    async fn insert_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// Keys with names after `after`, by name, at most `limit`.
    async fn keys_page(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<ApiKey>>;
    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn delete_key(&self, name: &str) -> StoreResult<bool>;
}

/// A reply webhook's delivery to take with a pushed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyClaim {
    pub webhook: String,
    pub owner: String,
    /// The lease, on the database's clock.
    pub lease_ms: i64,
    pub now: i64,
}

/// A pushed message's event, and the reply delivery to take with it.
#[derive(Debug, Clone)]
pub struct MessageAppend {
    pub event: NewEvent,
    pub claim: Option<ReplyClaim>,
}

/// What [`EventStore::append_messages`] did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event's id: new, or the one a retry of the same push made.
    pub event_id: i64,
    /// Whether this call created it.
    pub new: bool,
    /// Whether this call took the reply webhook's delivery.
    pub claimed: bool,
    /// The reply webhook's delivery as it is now (taken by this call, or
    /// for a retry of the push: answered already, or in other hands).
    pub delivery: Option<Delivery>,
}

/// The outbox of events, webhooks and their deliveries.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    // ---- events and webhooks (SPEC §10)
    /// Commits events that report no other state change, in one
    /// transaction. An event whose `dedupe` is stored already is skipped
    /// (WeChat's retry of a callback).
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    /// Commits pushed messages' events, each once (by its `dedupe`), and
    /// for each whose reply webhook wants it, takes that webhook's delivery
    /// of it for `claim.owner` — created leased if absent, else leased if
    /// pending and free — all in one transaction (SPEC §14; one
    /// transaction for a batch of pushes: see `service::batch`). What was
    /// done with each, in order.
    async fn append_messages(&self, messages: &[MessageAppend]) -> StoreResult<Vec<Appended>>;
    /// Events after `q.after`, oldest first, at most `q.limit`: one range
    /// scan of the primary key.
    async fn events(&self, q: &EventQuery) -> StoreResult<Vec<Event>>;
    /// The newest `message.*` or `event.*` event of `account` (its last
    /// push, SPEC §14).
    async fn last_message(&self, account: &AccountId) -> StoreResult<Option<Event>>;
    /// Deletes events older than `before`, finished deliveries last changed
    /// before it, and audit entries from before it. How many events went.
    async fn purge_events(&self, before: i64) -> StoreResult<u64>;
    /// `Conflict` if the name exists. Its cursor starts at the newest event
    /// committed: a new webhook receives what happens from now on.
    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn webhook(&self, name: &str) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook and its deliveries. Whether it existed.
    async fn delete_webhook(&self, name: &str) -> StoreResult<bool>;
    /// Moves a webhook's cursor from `from` to `to` and creates a pending
    /// delivery, due at `now`, of each of `event_ids`, in one transaction,
    /// if the cursor is still at `from` (else another instance did it:
    /// false, nothing written).
    async fn fan_out(&self, webhook: &str, from: i64, to: i64, event_ids: &[i64], now: i64) -> StoreResult<bool>;
    /// A webhook's pending deliveries due at `now` whose lease is free,
    /// earliest first, at most `limit`.
    async fn due_deliveries(&self, webhook: &str, now: i64, limit: i64) -> StoreResult<Vec<Delivery>>;
    /// Takes the lease on a pending delivery for `owner` (database clock),
    /// if nobody holds it: one attempt at a time across the cluster.
    async fn try_lease_delivery(&self, webhook: &str, event_id: i64, owner: &str, lease_ms: i64) -> StoreResult<bool>;
    /// Records an attempt's outcome and releases the lease, only while
    /// `owner` holds it unexpired. Whether it did.
    async fn record_attempt(&self, w: &AttemptWrite<'_>) -> StoreResult<bool>;
    /// A webhook's deliveries with event ids after `after`, by event id, at
    /// most `limit`, optionally of one status.
    async fn deliveries(
        &self,
        webhook: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;
    /// Makes a finished (failed or delivered) delivery pending again, due
    /// at `now`, its 24 h counted from `now`. Whether it was finished.
    async fn retry_delivery(&self, webhook: &str, event_id: i64, now: i64) -> StoreResult<bool>;
    async fn event(&self, id: i64) -> StoreResult<Option<Event>>;
    /// Replaces a webhook's sealed secret and URL if its secret is still
    /// the one `read` holds (re-sealing under a new master key). Whether it
    /// was.
    async fn reseal_webhook(&self, read: &Webhook, secret: &Sealed, url: &Sealed) -> StoreResult<bool>;
    /// When the oldest pending delivery was created.
    async fn oldest_pending_delivery(&self) -> StoreResult<Option<i64>>;
    /// The id of the newest committed event (0 before the first): where
    /// "the latest events" start.
    async fn last_event_id(&self) -> StoreResult<i64>;
}

/// The audit trail of token-free calls.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    // ---- the audit trail of token-free calls (SPEC §6)
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// A page of entries by id: an index range (of the key or the account
    /// when one is given).
    async fn audit_page(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
}

/// Console sessions and one-time sign-in links.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records a console session by the SHA-256 of its token.
    async fn insert_session(&self, hash: &str, created_at: i64, expires_at: i64) -> StoreResult<()>;
    /// When the session ends, if it exists (ended or not).
    async fn session_expiry(&self, hash: &str) -> StoreResult<Option<i64>>;
    /// Ends a session (sign-out). Whether it existed.
    async fn delete_session(&self, hash: &str) -> StoreResult<bool>;
    /// Deletes sessions that ended before `now`; how many.
    async fn purge_sessions(&self, now: i64) -> StoreResult<u64>;
}

/// Users' session keys (SPEC §13), kept for keys that may not see them:
/// sealed, bound to (account, openid), until they expire. Deleting an
/// account deletes its users' keys (and its children's).
#[async_trait]
pub trait SessionKeyStore: Send + Sync + 'static {
    /// Keeps a user's session key until `expires_at`, replacing the one
    /// before (a new login's key is the only one WeChat still honours).
    async fn put_session_key(
        &self,
        account: &AccountId,
        openid: &str,
        key: &Sealed,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The user's session key, if one is kept and has not expired at `now`.
    async fn session_key(&self, account: &AccountId, openid: &str, now: i64) -> StoreResult<Option<Sealed>>;
    /// Deletes the oldest keys that expired before `now`, about `limit` of
    /// them (two index ranges on the expiry, never a scan); how many.
    async fn purge_session_keys(&self, now: i64, limit: i64) -> StoreResult<u64>;
}
