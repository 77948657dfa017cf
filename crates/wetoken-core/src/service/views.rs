//! What the service hands out, as types. Rendering them (JSON for the HTTP
//! API, lines for the CLI) is the caller's job: this crate builds no
//! response body.

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountStatus};
use crate::clock::from_millis;
use crate::domain::{AccountId, Credential, Ident, TokenApi};
use crate::keys::Pattern;
use crate::store::{ApiKey, CredentialState};

/// A credential value handed out. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub value: String,
    pub expires_at: DateTime<Utc>,
    /// When WeChat said it still accepts this value, if a caller reported it
    /// rejected and it was answered again unchanged (SPEC §2 "verified").
    pub verified_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("value", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Issued {
    /// Remaining whole seconds at `now` (never negative).
    pub fn expires_in(&self, now: DateTime<Utc>) -> i64 {
        self.expires_in_ms(now.timestamp_millis())
    }

    /// [`Issued::expires_in`] at `now_ms` (epoch milliseconds, as the
    /// service's clock answers `CredentialEngine::now_ms`).
    pub fn expires_in_ms(&self, now_ms: i64) -> i64 {
        // Instants are stored as whole milliseconds: compare in those.
        ((self.expires_at.timestamp_millis() - now_ms) / 1000).max(0)
    }
}

/// The last error recorded for a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorView {
    pub errcode: i64,
    pub errmsg: String,
    pub at: DateTime<Utc>,
}

/// The state of one credential of an account (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialView {
    pub credential: Credential,
    pub expires_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorView>,
    pub blocked_until: Option<DateTime<Utc>>,
}

impl CredentialView {
    /// The view of `credential` from its row (None: never fetched).
    pub fn of(credential: Credential, row: Option<&CredentialState>) -> Self {
        let filled = row.filter(|r| r.value.is_some());
        CredentialView {
            credential,
            expires_at: filled.and_then(|r| r.expires_at).map(from_millis),
            refreshed_at: filled.and_then(|r| r.refreshed_at).map(from_millis),
            last_error: row.and_then(|r| r.last_error.as_ref()).map(|e| ErrorView {
                errcode: e.errcode,
                errmsg: e.errmsg.clone(),
                at: from_millis(e.at),
            }),
            blocked_until: row.and_then(|r| r.blocked_until).map(from_millis),
        }
    }
}

/// An account as its administrator sees it: identifiers, settings and the
/// state of each credential it owns, in display order; never a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub id: AccountId,
    /// `mp` accounts only.
    pub token_api: Option<TokenApi>,
    pub agentid: Option<String>,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub credentials: Vec<CredentialView>,
    /// Quota clears used in the month named (WeChat allows 10 a month).
    pub quota_clears: Option<crate::account::QuotaClears>,
    /// What may be shown of its API-security keys (SPEC §15).
    pub api_security: Option<crate::apisec::ApiSecuritySummary>,
}

impl AccountView {
    pub(super) fn new(a: &Account, rows: &[CredentialState]) -> Self {
        let credentials =
            a.id.kind()
                .credentials()
                .iter()
                .map(|&credential| CredentialView::of(credential, rows.iter().find(|r| r.credential == credential)))
                .collect();
        AccountView {
            id: a.id.clone(),
            token_api: (a.id.kind() == crate::domain::AccountKind::Mp).then_some(a.config.token_api),
            agentid: a.config.agentid.clone(),
            status: a.status,
            created_at: from_millis(a.created_at),
            updated_at: from_millis(a.updated_at),
            credentials,
            quota_clears: a.config.quota_clears.clone(),
            api_security: a.secrets.api_security.as_ref().and_then(|b| {
                serde_json::from_str::<crate::apisec::ApiSecurityConfig>(b.expose())
                    .ok()
                    .and_then(|c| c.summary().ok())
            }),
        }
    }
}

/// How a child account's authorization stands (SPEC §3 names an active
/// one `authorized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Authorized,
    NeedsReauthorization,
}

impl ChildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Authorized => "authorized",
            ChildStatus::NeedsReauthorization => "needs_reauthorization",
        }
    }

    pub(super) fn of(a: &Account) -> Self {
        match a.status {
            AccountStatus::NeedsReauthorization => ChildStatus::NeedsReauthorization,
            _ => ChildStatus::Authorized,
        }
    }
}

/// An account authorized to a component.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerEntry {
    pub appid: Ident,
    pub authorized_at: DateTime<Utc>,
    pub status: ChildStatus,
    /// WeChat's `func_info`.
    pub func_info: Option<crate::upstream::grants::FuncInfo>,
}

/// A corp that installed a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpEntry {
    pub corpid: Ident,
    pub agentid: Option<String>,
    pub authorized_at: DateTime<Utc>,
    pub status: ChildStatus,
}

/// An API key as listed (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub name: String,
    pub accounts: Vec<Pattern>,
    /// Whether it may read tokens and tickets.
    pub tokens: bool,
    /// The WeChat paths it may call through the token-free proxy.
    pub paths: Option<Vec<crate::keys::PathPattern>>,
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            name: k.name,
            accounts: k.accounts,
            tokens: k.tokens,
            paths: k.paths,
            created_at: from_millis(k.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_value_does_not_print() {
        let i = Issued {
            value: "secret-token".into(),
            expires_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            verified_at: None,
        };
        assert!(!format!("{i:?}").contains("secret-token"));
    }
}

/// A page of a list (SPEC §3): its items, and the cursor of the next page
/// (None on the last).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` read with `limit`: a full page may have a next one,
    /// which starts after `cursor_of` its last item.
    pub fn of(items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let next_cursor = (items.len() as i64 >= limit)
            .then(|| items.last().map(&cursor_of))
            .flatten();
        Page { items, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// What `GET /v1/accounts` filters by.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub kind: Option<crate::domain::AccountKind>,
    pub status: Option<AccountStatus>,
    /// An id prefix.
    pub q: Option<String>,
}

impl AccountFilter {
    /// The id prefix every listed account has: the kind's `{kind}:` and `q`
    /// together, or None when they exclude each other.
    pub fn prefix(&self) -> Option<String> {
        let kind = self.kind.map(|k| format!("{}:", k.as_str()));
        match (kind, &self.q) {
            (None, None) => Some(String::new()),
            (Some(k), None) => Some(k),
            (None, Some(q)) => Some(q.clone()),
            (Some(k), Some(q)) if q.starts_with(&k) => Some(q.clone()),
            (Some(k), Some(q)) if k.starts_with(q.as_str()) => Some(k),
            _ => None,
        }
    }
}
