//! What the store's methods take and return: credential rows, writes,
//! queries, keys, audit entries, errors.

use crate::domain::{AccountId, Credential};
use crate::events::NewEvent;
use crate::keys::Pattern;

use super::Sealed;

/// What a sealed value is bound to (AES-GCM associated data): its row
/// (the account) and its field (`secrets`, or the credential's name). A
/// value copied into another row does not open there.
pub fn binding(id: &AccountId, field: &str) -> String {
    format!("{id}#{field}")
}

/// The last error WeChat (or the way to it) gave for a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub errcode: i64,
    pub errmsg: String,
    /// Epoch milliseconds.
    pub at: i64,
}

/// Everything stored about one credential of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialState {
    pub account: AccountId,
    pub credential: Credential,
    pub value: Option<Sealed>,
    pub expires_at: Option<i64>,
    /// Increments on every change of `value`; 0 for a row never filled.
    pub version: i64,
    pub refreshed_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<LastError>,
    /// No automatic upstream call for this credential before this instant
    /// (permanent errors, daily quota).
    pub blocked_until: Option<i64>,
    /// Last unqualified force refresh (SPEC §2 rate limit).
    pub forced_at: Option<i64>,
    /// When the scheduler should next refresh this credential.
    pub due_at: Option<i64>,
    /// Consecutive failed attempts (backoff).
    pub attempts: i64,
    /// WeChat's last verdict on the current value (SPEC §2 "verified"):
    /// cleared whenever the value changes.
    pub verdict: Option<Verdict>,
}

/// The schema a database holds (see [`super::Store::schema`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// No wetoken schema at all (an empty database).
    Absent,
    /// An older one: some migrations of this build are not installed.
    Older,
    /// Every migration this build knows.
    Current,
}

impl Schema {
    /// From the newest installed migration (None: no migrations table).
    pub fn of(installed: Option<i64>, latest: i64) -> Schema {
        match installed {
            None => Schema::Absent,
            Some(v) if v < latest => Schema::Older,
            Some(_) => Schema::Current,
        }
    }
}

/// Whether WeChat still accepted a credential's value when asked, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub alive: bool,
    /// Epoch milliseconds.
    pub at: i64,
}

/// What the day's cap of forced stable-token calls said (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceBudget {
    /// One more forced call is recorded for today.
    Granted,
    /// The day's calls are spent; `first` for the first refusal of the day
    /// (whose events were committed with it).
    Spent { first: bool },
}

/// A refreshed value, written by the lease holder.
#[derive(Debug, Clone)]
pub struct RefreshWrite<'a> {
    pub account: &'a AccountId,
    pub credential: Credential,
    pub owner: &'a str,
    pub value: &'a Sealed,
    /// SHA-256 (hex) of the plaintext value; the previous one's hash stays
    /// findable until `previous_until` (WeChat's grace).
    pub value_hash: &'a str,
    pub previous_until: i64,
    pub expires_at: i64,
    pub refreshed_at: i64,
    /// When the scheduler should next refresh it.
    pub due_at: i64,
    /// New sealed secrets of the account, written in the same transaction
    /// (an authorizer_refresh_token that WeChat rotated).
    pub account_secrets: Option<&'a Sealed>,
    /// Events committed with the value (a credential recovered).
    pub events: &'a [NewEvent],
}

/// A failed refresh, recorded by the lease holder.
#[derive(Debug, Clone)]
pub struct FailureWrite<'a> {
    pub account: &'a AccountId,
    pub credential: Credential,
    pub owner: &'a str,
    pub error: &'a LastError,
    pub blocked_until: Option<i64>,
    /// The next scheduled attempt (backoff or end of block).
    pub due_at: i64,
    /// Consecutive failures including this one.
    pub attempts: i64,
    /// Events committed with the failure (a condition that starts).
    pub events: &'a [NewEvent],
}

/// Which accounts a page holds (see [`super::AccountStore::accounts_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountQuery {
    /// Ids starting with this (`""`: every account; `authorizer:wxc:`: a
    /// component's authorizers).
    pub prefix: String,
    /// Ids after this one (exclusive), from the first when None.
    pub after: Option<String>,
    pub status: Option<crate::account::AccountStatus>,
    pub not_status: Option<crate::account::AccountStatus>,
    pub limit: i64,
}

/// A value WeChat pushed, with the callback's events.
#[derive(Debug, Clone)]
pub struct PushWrite<'a> {
    pub account: &'a AccountId,
    pub credential: Credential,
    pub value: &'a Sealed,
    pub expires_at: i64,
    /// WeChat's CreateTime of the push.
    pub at: i64,
    /// When it is stale unless a newer push comes.
    pub stale_at: i64,
    pub events: &'a [NewEvent],
}

/// Which events to read: ids after `after`, oldest first. The filters
/// narrow the scan; callers match types exactly themselves (`type_prefix`
/// is a prefix, and `_` in it may match any character).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub after: i64,
    pub type_prefix: Option<String>,
    /// Exactly this account.
    pub account: Option<AccountId>,
    /// This account and its children (`{id}/*`).
    pub family: Option<AccountId>,
    pub limit: i64,
}

/// One token-free call as the audit trail keeps it (SPEC §6): who, which
/// account, what, and what WeChat answered; never a token or a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `{ms:013}-{instance}-{n}`: unique, and sorts by time.
    pub id: String,
    pub at: i64,
    /// The key's name (`admin` for the admin key).
    pub key: String,
    pub account: AccountId,
    pub method: String,
    /// The WeChat path called (`/cgi-bin/message/custom/send`), no query.
    pub path: String,
    /// The HTTP status answered.
    pub status: i64,
    /// WeChat's errcode when it answered JSON (0 for success), else None.
    pub errcode: Option<i64>,
    /// The rid WeChat gave with an error.
    pub rid: Option<String>,
}

/// Which audit entries to read: ids after `after` (exclusive, a cursor)
/// and not before `from` (inclusive, an id prefix such as a zero-padded
/// time), of one key and/or one account, by id, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub after: Option<String>,
    pub from: Option<String>,
    pub key: Option<String>,
    pub account: Option<AccountId>,
    pub limit: i64,
}

/// A master key's check value, recorded where it sealed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    pub key_id: String,
    pub check: Sealed,
}

/// One API key, stored by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    /// SHA-256 (hex) of the key.
    pub hash: String,
    /// The accounts it covers.
    pub accounts: Vec<Pattern>,
    /// Whether it may read tokens and tickets (SPEC §3 credential reads);
    /// false for a key that only makes token-free calls (SPEC §6).
    pub tokens: bool,
    /// The WeChat paths it may call through the token-free proxy; None:
    /// every path.
    pub paths: Option<Vec<crate::keys::PathPattern>>,
    pub created_at: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row that does not decode into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
