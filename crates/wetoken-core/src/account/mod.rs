//! Accounts as the service sees them, and (`fields`) the one parser of
//! account requests shared by `POST /v1/accounts`, `PATCH
//! /v1/accounts/{id}`, the console's forms and `wetoken account add`
//! (SPEC §3).

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, ParseError, TokenApi};
use crate::secret::{KeyError, MasterKey, Sealed, Secret};
use crate::upstream::grants::{CorpAuthorization, FuncInfo, lenient};

mod fields;

pub use fields::{FieldKind, FieldSource, FieldSpec, Raw, SUPPORTED_KINDS, new_account_fields, patch_fields};

/// Everything secret about an account; sealed as one blob at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Callback message token (component, suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Callback EncodingAESKey (component, suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_key: Option<Secret>,
    /// authorizer_refresh_token (authorizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// permanent_code (corp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent_code: Option<Secret>,
    /// The API-security keys (mp, component; SPEC §15): the checked
    /// `api_security` block as JSON (`crate::apisec::ApiSecurityConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_security: Option<Secret>,
}

/// Non-secret settings of an account.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountConfig {
    #[serde(default)]
    pub token_api: TokenApi,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agentid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub func_info: Option<FuncInfo>,
    /// When the authorizer (or corp) last authorized (epoch ms; WeChat's
    /// CreateTime for pushed events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_at: Option<i64>,
    /// SHA-256 (hex) of the authorization codes last exchanged for it,
    /// newest last, at most [`AccountConfig::AUTH_CODES_KEPT`] (never the
    /// codes): an event that carries one of them again is a replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_codes: Vec<String>,
    /// A corp's authorization as WeCom described it (auth_corp_info, auth_info).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub auth_info: Option<CorpAuthorization>,
    /// Quota clears this account used this month (WeChat allows 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_clears: Option<QuotaClears>,
}

/// How many times an account's daily quota was cleared in a month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaClears {
    /// `YYYY-MM` in +08:00, WeChat's month.
    pub month: String,
    pub used: u32,
}

impl AccountConfig {
    /// WeChat retries an event for minutes and a code lives an hour: the
    /// last 16 codes cover any replay.
    pub const AUTH_CODES_KEPT: usize = 16;

    /// Remembers that `code` was exchanged for this account.
    pub fn exchanged(&mut self, code: &str) {
        let hash = crate::keys::hash_key(code);
        if !self.auth_codes.contains(&hash) {
            self.auth_codes.push(hash);
        }
        let extra = self.auth_codes.len().saturating_sub(Self::AUTH_CODES_KEPT);
        self.auth_codes.drain(..extra);
    }

    /// Whether `code` was exchanged for this account.
    pub fn has_exchanged(&self, code: &str) -> bool {
        self.auth_codes.contains(&crate::keys::hash_key(code))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    NeedsReauthorization,
    Revoked,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReauthorization => "needs_reauthorization",
            AccountStatus::Revoked => "revoked",
        }
    }
}

impl std::str::FromStr for AccountStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        [
            AccountStatus::Active,
            AccountStatus::NeedsReauthorization,
            AccountStatus::Revoked,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| ParseError(format!("unknown account status {s:?}")))
    }
}

/// An account. `S` is what its secrets are: [`Secrets`] in the service,
/// [`Sealed`] at rest ([`Account::seal`] and [`Account::open`] are the one
/// place where one becomes the other).
#[derive(Debug, Clone, PartialEq)]
pub struct Account<S = Secrets> {
    pub id: AccountId,
    pub secrets: S,
    pub config: AccountConfig,
    pub status: AccountStatus,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An account as a store holds it.
pub type StoredAccount = Account<Sealed>;

impl<S> Account<S> {
    fn with_secrets<T>(self, secrets: T) -> Account<T> {
        Account {
            id: self.id,
            secrets,
            config: self.config,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The field name an account's sealed secrets are bound to.
pub const SECRETS_FIELD: &str = "secrets";

impl Account {
    /// The account with its secrets sealed as one blob under `key`.
    /// Bound to this account's row: it opens nowhere else.
    pub fn seal(&self, key: &MasterKey) -> StoredAccount {
        let json = serde_json::to_string(&self.secrets).expect("secrets serialize");
        self.clone()
            .with_secrets(key.seal(&json, &crate::store::binding(&self.id, SECRETS_FIELD)))
    }
}

impl StoredAccount {
    /// The account with its secrets opened by `key`.
    pub fn open(self, key: &MasterKey) -> Result<Account, KeyError> {
        let json = key.open(&self.secrets, &crate::store::binding(&self.id, SECRETS_FIELD))?;
        let secrets: Secrets = serde_json::from_str(&json).map_err(|_| KeyError::Decrypt)?;
        Ok(self.with_secrets(secrets))
    }
}

/// A validated request to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub secrets: Secrets,
    pub config: AccountConfig,
}

/// A validated `PATCH /v1/accounts/{id}`.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub secrets: Secrets,
    pub token_api: Option<TokenApi>,
    pub agentid: Option<String>,
}

impl AccountPatch {
    /// Whether this patch changes what credentials are derived from.
    pub fn invalidates_credentials(&self) -> bool {
        let s = &self.secrets;
        s.secret.is_some() || s.refresh_token.is_some() || s.permanent_code.is_some() || self.token_api.is_some()
    }

    pub fn apply(self, a: &mut Account) {
        let s = self.secrets;
        macro_rules! set {
            ($f:ident) => {
                if s.$f.is_some() {
                    a.secrets.$f = s.$f;
                }
            };
        }
        set!(secret);
        set!(token);
        set!(aes_key);
        set!(api_security);
        set!(refresh_token);
        set!(permanent_code);
        if let Some(t) = self.token_api {
            a.config.token_api = t;
        }
        if self.agentid.is_some() {
            a.config.agentid = self.agentid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sixteen_exchanged_codes_are_remembered_by_hash() {
        let mut c = AccountConfig::default();
        for i in 0..20 {
            c.exchanged(&format!("code{i}"));
        }
        c.exchanged("code19");
        assert_eq!(c.auth_codes.len(), AccountConfig::AUTH_CODES_KEPT);
        assert!(c.has_exchanged("code19") && c.has_exchanged("code4"));
        assert!(!c.has_exchanged("code3"), "the oldest are forgotten");
        assert!(!c.auth_codes.iter().any(|h| h.contains("code")), "hashes, never codes");
    }
}
