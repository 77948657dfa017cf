//! Rows as the database holds them (text and integers, in the column order
//! of [`crate::statements`]), and the one place where they become domain
//! types and back. Every backend, sqlx or Oracle, reads into these rows and
//! decodes them here: a row that does not decode is
//! [`StoreError::Corrupt`], never a default.

use wetoken_core::account::{AccountConfig, AccountStatus, StoredAccount};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{self, Delivery, DeliveryStatus, Event, Format, NewEvent, TypePattern, Webhook};
use wetoken_core::keys::Pattern;
use wetoken_core::store::{ApiKey, AuditEntry, CredentialState, LastError, Sealed, StoreError, StoreResult, Verdict};

/// `wt_accounts`, in [`crate::statements::ACCOUNT_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub verified_at: Option<i64>,
    pub verdict: Option<i64>,
}

/// `wt_keys`, in [`crate::statements::KEY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub name: String,
    pub hash: String,
    pub accounts: String,
    pub created_at: i64,
}

/// `wt_audit`, in [`crate::statements::AUDIT_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    pub called_at: i64,
    pub key_name: String,
    pub account_id: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub errcode: Option<i64>,
    pub rid: Option<String>,
}

impl AuditRow {
    pub fn encode(e: &AuditEntry) -> Self {
        AuditRow {
            id: e.id.clone(),
            called_at: e.at,
            key_name: e.key.clone(),
            account_id: e.account.to_string(),
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            errcode: e.errcode,
            rid: e.rid.clone(),
        }
    }

    pub fn decode(self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            account: account_id("wt_audit", &self.account_id)?,
            id: self.id,
            at: self.called_at,
            key: self.key_name,
            method: self.method,
            path: self.path,
            status: self.status,
            errcode: self.errcode,
            rid: self.rid,
        })
    }
}

/// `wt_events`, in [`crate::statements::EVENT_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub event_type: String,
    pub account_id: String,
    pub created_at: i64,
    pub data: String,
    pub source: Option<String>,
}

/// A new event's columns, before its id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEventRow {
    pub event_type: String,
    pub account_id: String,
    pub family_id: String,
    pub created_at: i64,
    pub data: String,
    pub source: Option<String>,
    pub dedupe: Option<String>,
}

/// `wt_webhooks`, in [`crate::statements::WEBHOOK_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub name: String,
    pub url: String,
    pub events: String,
    pub accounts: String,
    pub format: String,
    pub secret: String,
    pub cursor_id: i64,
    pub created_at: i64,
    /// 1 for a reply webhook (SPEC §14).
    pub reply: i64,
}

/// `wt_deliveries`, in [`crate::statements::DELIVERY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub webhook: String,
    pub event_id: i64,
    pub status: String,
    pub attempts: i64,
    pub next_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub reply: Option<String>,
    pub reply_ms: Option<i64>,
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
        let verdict = match (self.verified_at, self.verdict) {
            (None, None) => None,
            (Some(at), Some(v @ (0 | 1))) => Some(Verdict { alive: v == 1, at }),
            _ => {
                return Err(corrupt(
                    "wt_credentials",
                    &key,
                    "verified_at without a verdict of 0 or 1",
                ));
            }
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
            verdict,
        })
    }
}

impl KeyRow {
    /// `accounts` holds the patterns as a JSON array, as it always has; a
    /// key that may not read tokens or may call only some paths holds
    /// `{"accounts": […], "tokens": false, "paths": […]}`.
    pub fn encode(k: &ApiKey) -> Self {
        let patterns: Vec<String> = k.accounts.iter().map(ToString::to_string).collect();
        let accounts = if k.tokens && k.paths.is_none() {
            serde_json::to_string(&patterns)
        } else {
            let mut o = serde_json::json!({"accounts": patterns, "tokens": k.tokens});
            if let Some(paths) = &k.paths {
                o["paths"] = paths.iter().map(|p| p.as_str()).collect::<Vec<_>>().into();
            }
            serde_json::to_string(&o)
        };
        KeyRow {
            name: k.name.clone(),
            hash: k.hash.clone(),
            accounts: accounts.expect("strings serialize"),
            created_at: k.created_at,
        }
    }

    pub fn decode(self) -> StoreResult<ApiKey> {
        let bad = |e: String| corrupt("wt_keys", &self.name, format!("accounts: {e}"));
        let (list, tokens, paths) = match serde_json::from_str(&self.accounts).map_err(|e| bad(e.to_string()))? {
            serde_json::Value::Object(mut o) => {
                let tokens = o.get("tokens").map(|t| t.as_bool().ok_or_else(|| bad("tokens".into())));
                let paths = match o.remove("paths") {
                    None => None,
                    Some(v) => Some(
                        serde_json::from_value::<Vec<String>>(v)
                            .map_err(|e| bad(e.to_string()))?
                            .iter()
                            .map(|p| wetoken_core::keys::PathPattern::parse(p).map_err(|e| bad(e.0)))
                            .collect::<StoreResult<Vec<_>>>()?,
                    ),
                };
                (
                    o.remove("accounts").unwrap_or_default(),
                    tokens.transpose()?.unwrap_or(true),
                    paths,
                )
            }
            list => (list, true, None),
        };
        let patterns: Vec<String> = serde_json::from_value(list).map_err(|e| bad(e.to_string()))?;
        let accounts = patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("wt_keys", &self.name, e))?;
        Ok(ApiKey {
            name: self.name,
            hash: self.hash,
            accounts,
            tokens,
            paths,
            created_at: self.created_at,
        })
    }
}

impl NewEventRow {
    pub fn encode(e: &NewEvent) -> Self {
        NewEventRow {
            event_type: e.kind.clone(),
            account_id: e.account.to_string(),
            family_id: events::family(&e.account).to_string(),
            created_at: e.at,
            data: serde_json::to_string(&e.data).expect("a JSON map serializes"),
            source: e
                .source
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("a source serializes")),
            dedupe: e.dedupe.clone(),
        }
    }
}

impl EventRow {
    pub fn decode(self) -> StoreResult<Event> {
        let key = self.id.to_string();
        let corrupt = |what: String| corrupt("wt_events", &key, what);
        Ok(Event {
            id: self.id,
            account: account_id("wt_events", &self.account_id)?,
            at: self.created_at,
            data: serde_json::from_str(&self.data).map_err(|e| corrupt(format!("data: {e}")))?,
            source: self
                .source
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| corrupt(format!("source: {e}")))?,
            kind: self.event_type,
        })
    }
}

fn strings(table: &str, key: &str, column: &str, json: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(json).map_err(|e| corrupt(table, key, format!("{column}: {e}")))
}

impl WebhookRow {
    pub fn encode(w: &Webhook) -> Self {
        let events: Vec<&str> = w.events.iter().map(TypePattern::as_str).collect();
        let accounts: Vec<String> = w.accounts.iter().map(ToString::to_string).collect();
        WebhookRow {
            name: w.name.clone(),
            url: w.url.clone(),
            events: serde_json::to_string(&events).expect("strings serialize"),
            accounts: serde_json::to_string(&accounts).expect("strings serialize"),
            format: w.format.as_str().to_owned(),
            secret: w.secret.as_str().to_owned(),
            cursor_id: w.cursor,
            created_at: w.created_at,
            reply: i64::from(w.reply),
        }
    }

    pub fn decode(self) -> StoreResult<Webhook> {
        let t = "wt_webhooks";
        let bad = |e: wetoken_core::domain::ParseError| corrupt(t, &self.name, e);
        let events = strings(t, &self.name, "events", &self.events)?
            .iter()
            .map(|p| TypePattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let accounts = strings(t, &self.name, "accounts", &self.accounts)?
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let format = Format::parse(&self.format).map_err(bad)?;
        Ok(Webhook {
            events,
            accounts,
            format,
            name: self.name,
            url: self.url,
            secret: Sealed::from_stored(self.secret),
            created_at: self.created_at,
            cursor: self.cursor_id,
            reply: self.reply != 0,
        })
    }
}

impl DeliveryRow {
    pub fn decode(self) -> StoreResult<Delivery> {
        let status = DeliveryStatus::parse(&self.status)
            .map_err(|e| corrupt("wt_deliveries", &format!("{}/{}", self.webhook, self.event_id), e))?;
        Ok(Delivery {
            webhook: self.webhook,
            event_id: self.event_id,
            status,
            attempts: self.attempts,
            next_at: self.next_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_status: self.last_status,
            last_error: self.last_error,
            reply: self.reply,
            reply_ms: self.reply_ms,
        })
    }
}

#[cfg(test)]
mod tests;
