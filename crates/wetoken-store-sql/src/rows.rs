//! Rows as the database holds them (text and integers, in the column order
//! of [`crate::statements`]), and the one place where they become domain
//! types and back. Every backend, sqlx or Oracle, reads into these rows and
//! decodes them here: a row that does not decode is
//! [`StoreError::Corrupt`], never a default.

use wetoken_core::account::{AccountConfig, AccountStatus, StoredAccount};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::keys::Pattern;
use wetoken_core::store::{ApiKey, CredentialState, LastError, Sealed, StoreError, StoreResult};

/// `wt_accounts`, in [`crate::statements::ACCOUNT_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    any(feature = "sqlite", feature = "mysql", feature = "postgres"),
    derive(sqlx::FromRow)
)]
pub struct AccountRow {
    pub id: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub secrets: String,
    pub config: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `wt_credentials`, in [`crate::statements::CREDENTIAL_COLUMNS`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    any(feature = "sqlite", feature = "mysql", feature = "postgres"),
    derive(sqlx::FromRow)
)]
pub struct CredentialRow {
    pub account_id: String,
    pub kind: String,
    pub value: Option<String>,
    pub expires_at: Option<i64>,
    pub version: i64,
    pub refreshed_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_errcode: Option<i64>,
    pub last_errmsg: Option<String>,
    pub last_error_at: Option<i64>,
    pub blocked_until: Option<i64>,
    pub forced_at: Option<i64>,
    pub due_at: Option<i64>,
    pub attempts: i64,
}

/// `wt_keys`, in [`crate::statements::KEY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    any(feature = "sqlite", feature = "mysql", feature = "postgres"),
    derive(sqlx::FromRow)
)]
pub struct KeyRow {
    pub name: String,
    pub hash: String,
    pub accounts: String,
    pub created_at: i64,
}

fn corrupt(table: &str, key: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table} row {key:?}: {what}"))
}

fn account_id(table: &str, s: &str) -> StoreResult<AccountId> {
    s.parse().map_err(|e| corrupt(table, s, e))
}

impl AccountRow {
    pub fn encode(a: &StoredAccount) -> Self {
        AccountRow {
            id: a.id.to_string(),
            kind: a.id.kind().as_str().to_owned(),
            parent_id: a.id.parent().map(|p| p.to_string()),
            secrets: a.secrets.as_str().to_owned(),
            config: serde_json::to_string(&a.config).expect("config serializes"),
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }

    pub fn decode(self) -> StoreResult<StoredAccount> {
        let id = account_id("wt_accounts", &self.id)?;
        if id.kind().as_str() != self.kind {
            return Err(corrupt("wt_accounts", &self.id, format!("kind {:?}", self.kind)));
        }
        if id.parent().map(|p| p.to_string()) != self.parent_id {
            return Err(corrupt("wt_accounts", &self.id, "parent_id does not match the id"));
        }
        let config: AccountConfig =
            serde_json::from_str(&self.config).map_err(|e| corrupt("wt_accounts", &self.id, format!("config: {e}")))?;
        let status: AccountStatus = self.status.parse().map_err(|e| corrupt("wt_accounts", &self.id, e))?;
        Ok(StoredAccount {
            id,
            secrets: Sealed::from_stored(self.secrets),
            config,
            status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl CredentialRow {
    pub fn decode(self) -> StoreResult<CredentialState> {
        let key = format!("{}/{}", self.account_id, self.kind);
        let account = account_id("wt_credentials", &self.account_id)?;
        let credential: Credential = self.kind.parse().map_err(|e| corrupt("wt_credentials", &key, e))?;
        let last_error = match (self.last_errcode, self.last_error_at) {
            (None, None) => None,
            // Oracle stores '' as NULL: an empty errmsg reads back as none.
            (Some(errcode), Some(at)) => Some(LastError {
                errcode,
                errmsg: self.last_errmsg.unwrap_or_default(),
                at,
            }),
            _ => return Err(corrupt("wt_credentials", &key, "last_errcode without last_error_at")),
        };
        Ok(CredentialState {
            account,
            credential,
            value: self.value.map(Sealed::from_stored),
            expires_at: self.expires_at,
            version: self.version,
            refreshed_at: self.refreshed_at,
            lease_owner: self.lease_owner,
            lease_until: self.lease_until,
            last_error,
            blocked_until: self.blocked_until,
            forced_at: self.forced_at,
            due_at: self.due_at,
            attempts: self.attempts,
        })
    }
}

impl KeyRow {
    pub fn encode(k: &ApiKey) -> Self {
        let patterns: Vec<String> = k.accounts.iter().map(ToString::to_string).collect();
        KeyRow {
            name: k.name.clone(),
            hash: k.hash.clone(),
            accounts: serde_json::to_string(&patterns).expect("strings serialize"),
            created_at: k.created_at,
        }
    }

    pub fn decode(self) -> StoreResult<ApiKey> {
        let patterns: Vec<String> = serde_json::from_str(&self.accounts)
            .map_err(|e| corrupt("wt_keys", &self.name, format!("accounts: {e}")))?;
        let accounts = patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("wt_keys", &self.name, e))?;
        Ok(ApiKey {
            name: self.name,
            hash: self.hash,
            accounts,
            created_at: self.created_at,
        })
    }
}

/// Where an account walk starts: after `after`, or before every id (a
/// single space: every id starts with its kind's letters, and Oracle would
/// read an empty string as NULL).
pub fn after_key(after: Option<&AccountId>) -> String {
    after.map_or_else(|| " ".to_owned(), ToString::to_string)
}

/// The id range of `corpid`'s WeCom apps: `[work:{corpid}:, work:{corpid};)`
/// (`;` is the character after `:`).
pub fn work_app_range(corpid: &wetoken_core::domain::Ident) -> (String, String) {
    (format!("work:{corpid}:"), format!("work:{corpid};"))
}

/// Decodes every row, failing on the first that does not decode.
pub fn decode_all<R, T>(rows: Vec<R>, decode: fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_row() -> AccountRow {
        AccountRow {
            id: "authorizer:wxc:wx1".into(),
            kind: "authorizer".into(),
            parent_id: Some("component:wxc".into()),
            secrets: "v1:x".into(),
            config: r#"{"token_api":"classic"}"#.into(),
            status: "needs_reauthorization".into(),
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn accounts_round_trip() {
        let a = account_row().decode().unwrap();
        assert_eq!(a.status, AccountStatus::NeedsReauthorization);
        assert_eq!(AccountRow::encode(&a), account_row());
    }

    #[test]
    fn rows_that_do_not_decode_are_errors_not_defaults() {
        for bad in [
            AccountRow {
                status: "bogus".into(),
                ..account_row()
            },
            AccountRow {
                id: "mp:bad id".into(),
                ..account_row()
            },
            AccountRow {
                kind: "mp".into(),
                ..account_row()
            },
            AccountRow {
                parent_id: None,
                ..account_row()
            },
            AccountRow {
                config: "{".into(),
                ..account_row()
            },
        ] {
            assert!(matches!(bad.clone().decode(), Err(StoreError::Corrupt(_))), "{bad:?}");
        }
        let cred = CredentialRow {
            account_id: "mp:wx1".into(),
            kind: "access_token".into(),
            ..CredentialRow::default()
        };
        assert!(cred.clone().decode().is_ok());
        for bad in [
            CredentialRow {
                kind: "refresh_token".into(),
                ..cred.clone()
            },
            CredentialRow {
                last_errcode: Some(1),
                ..cred.clone()
            },
        ] {
            assert!(matches!(bad.clone().decode(), Err(StoreError::Corrupt(_))), "{bad:?}");
        }
        let key = KeyRow {
            name: "k".into(),
            hash: "h".into(),
            accounts: r#"["mp:wx1","component:wxc/*"]"#.into(),
            created_at: 1,
        };
        assert_eq!(KeyRow::encode(&key.clone().decode().unwrap()), key);
        for accounts in [r#"["mp:bad id"]"#, "nope", r#"[1]"#] {
            let bad = KeyRow {
                accounts: accounts.into(),
                ..key.clone()
            };
            assert!(matches!(bad.decode(), Err(StoreError::Corrupt(_))), "{accounts}");
        }
    }
}
