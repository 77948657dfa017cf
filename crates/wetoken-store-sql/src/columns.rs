//! Reading rows: each table's columns, in the select order of
//! [`crate::statements`], into the rows of [`crate::rows`] and on into
//! domain types. Every backend reads through these, whatever its driver.

use wetoken_core::events::{Delivery, Event, Webhook};
use wetoken_core::store::{ApiKey, AuditEntry, CredentialState, KeyCheck, Sealed, StoreResult, StoredAccount};

use crate::rows::{AccountRow, AuditRow, CredentialRow, DeliveryRow, EventRow, KeyRow, WebhookRow};
use crate::tx::{Columns, required};

/// A `wt_accounts` row, decoded.
pub fn account(r: &dyn Columns) -> StoreResult<StoredAccount> {
    account_from(r)?.decode()
}

/// A `wt_credentials` row, decoded.
pub fn credential(r: &dyn Columns) -> StoreResult<CredentialState> {
    credential_from(r)?.decode()
}

/// A `wt_keys` row, decoded.
pub fn key(r: &dyn Columns) -> StoreResult<ApiKey> {
    key_from(r)?.decode()
}

/// A `wt_key_checks` row (`key_id, check_value`).
pub fn key_check(r: &dyn Columns) -> StoreResult<KeyCheck> {
    Ok(KeyCheck {
        key_id: required(r.text(0)?, "wt_key_checks", "key_id")?,
        check: Sealed::from_stored(required(r.text(1)?, "wt_key_checks", "check_value")?),
    })
}

/// A `wt_events` row, decoded.
pub fn event(r: &dyn Columns) -> StoreResult<Event> {
    event_from(r)?.decode()
}

/// A `wt_webhooks` row, decoded.
pub fn webhook(r: &dyn Columns) -> StoreResult<Webhook> {
    webhook_from(r)?.decode()
}

/// A `wt_deliveries` row, decoded.
pub fn delivery(r: &dyn Columns) -> StoreResult<Delivery> {
    delivery_from(r)?.decode()
}

/// A `wt_audit` row, decoded.
pub fn audit(r: &dyn Columns) -> StoreResult<AuditEntry> {
    audit_from(r)?.decode()
}

/// The first column, which may be NULL (an optional minimum).
pub fn maybe_int(r: &dyn Columns) -> StoreResult<Option<i64>> {
    r.int(0)
}

/// The first column, never NULL.
pub fn int(r: &dyn Columns) -> StoreResult<i64> {
    required(r.int(0)?, "result", "the first column")
}

/// The first column as text, never NULL.
pub fn text(r: &dyn Columns) -> StoreResult<String> {
    required(r.text(0)?, "result", "the first column")
}

/// A `wt_accounts` row in `ACCOUNT_COLUMNS` order.
fn account_from(r: &dyn Columns) -> StoreResult<AccountRow> {
    Ok(AccountRow {
        id: required(r.text(0)?, "wt_accounts", "id")?,
        kind: required(r.text(1)?, "wt_accounts", "kind")?,
        parent_id: r.text(2)?,
        secrets: required(r.text(3)?, "wt_accounts", "secrets")?,
        config: required(r.text(4)?, "wt_accounts", "config")?,
        status: required(r.text(5)?, "wt_accounts", "status")?,
        created_at: required(r.int(6)?, "wt_accounts", "created_at")?,
        updated_at: required(r.int(7)?, "wt_accounts", "updated_at")?,
    })
}

/// A `wt_credentials` row in `CREDENTIAL_COLUMNS` order.
fn credential_from(r: &dyn Columns) -> StoreResult<CredentialRow> {
    Ok(CredentialRow {
        account_id: required(r.text(0)?, "wt_credentials", "account_id")?,
        kind: required(r.text(1)?, "wt_credentials", "kind")?,
        value: r.text(2)?,
        expires_at: r.int(3)?,
        version: required(r.int(4)?, "wt_credentials", "version")?,
        refreshed_at: r.int(5)?,
        lease_owner: r.text(6)?,
        lease_until: r.int(7)?,
        last_errcode: r.int(8)?,
        last_errmsg: r.text(9)?,
        last_error_at: r.int(10)?,
        blocked_until: r.int(11)?,
        forced_at: r.int(12)?,
        due_at: r.int(13)?,
        attempts: r.int(14)?.unwrap_or(0),
        verified_at: r.int(15)?,
        verdict: r.int(16)?,
    })
}

/// A `wt_keys` row in `KEY_COLUMNS` order.
fn key_from(r: &dyn Columns) -> StoreResult<KeyRow> {
    Ok(KeyRow {
        name: required(r.text(0)?, "wt_keys", "name")?,
        hash: required(r.text(1)?, "wt_keys", "hash")?,
        accounts: required(r.text(2)?, "wt_keys", "accounts")?,
        created_at: required(r.int(3)?, "wt_keys", "created_at")?,
    })
}

/// A `wt_events` row in `EVENT_COLUMNS` order.
fn event_from(r: &dyn Columns) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: required(r.int(0)?, "wt_events", "id")?,
        event_type: required(r.text(1)?, "wt_events", "event_type")?,
        account_id: required(r.text(2)?, "wt_events", "account_id")?,
        created_at: required(r.int(3)?, "wt_events", "created_at")?,
        data: required(r.text(4)?, "wt_events", "data")?,
        source: r.text(5)?,
    })
}

/// A `wt_webhooks` row in `WEBHOOK_COLUMNS` order.
fn webhook_from(r: &dyn Columns) -> StoreResult<WebhookRow> {
    Ok(WebhookRow {
        name: required(r.text(0)?, "wt_webhooks", "name")?,
        url: required(r.text(1)?, "wt_webhooks", "url")?,
        events: required(r.text(2)?, "wt_webhooks", "events")?,
        accounts: required(r.text(3)?, "wt_webhooks", "accounts")?,
        format: required(r.text(4)?, "wt_webhooks", "format")?,
        secret: required(r.text(5)?, "wt_webhooks", "secret")?,
        cursor_id: required(r.int(6)?, "wt_webhooks", "cursor_id")?,
        created_at: required(r.int(7)?, "wt_webhooks", "created_at")?,
        reply: required(r.int(8)?, "wt_webhooks", "reply")?,
    })
}

/// A `wt_deliveries` row in `DELIVERY_COLUMNS` order.
fn delivery_from(r: &dyn Columns) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        webhook: required(r.text(0)?, "wt_deliveries", "webhook")?,
        event_id: required(r.int(1)?, "wt_deliveries", "event_id")?,
        status: required(r.text(2)?, "wt_deliveries", "status")?,
        attempts: required(r.int(3)?, "wt_deliveries", "attempts")?,
        next_at: required(r.int(4)?, "wt_deliveries", "next_at")?,
        created_at: required(r.int(5)?, "wt_deliveries", "created_at")?,
        updated_at: required(r.int(6)?, "wt_deliveries", "updated_at")?,
        last_status: r.int(7)?,
        last_error: r.text(8)?,
        reply: r.text(9)?,
        reply_ms: r.int(10)?,
    })
}

/// A `wt_audit` row in `AUDIT_COLUMNS` order.
fn audit_from(r: &dyn Columns) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: required(r.text(0)?, "wt_audit", "id")?,
        called_at: required(r.int(1)?, "wt_audit", "called_at")?,
        key_name: required(r.text(2)?, "wt_audit", "key_name")?,
        account_id: required(r.text(3)?, "wt_audit", "account_id")?,
        method: required(r.text(4)?, "wt_audit", "method")?,
        path: required(r.text(5)?, "wt_audit", "path")?,
        status: required(r.int(6)?, "wt_audit", "status")?,
        errcode: r.int(7)?,
        rid: r.text(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetoken_core::store::StoreError;

    #[test]
    fn rows_map_in_column_order() {
        use crate::statements::{ACCOUNT_COLUMNS, CREDENTIAL_COLUMNS, KEY_COLUMNS};
        fn cols(c: &'static str) -> Vec<&'static str> {
            c.split(',').map(str::trim).collect()
        }
        assert_eq!(cols(CREDENTIAL_COLUMNS).len(), 17);
        let row = Fake(vec![
            Some("mp:wx1"),
            Some("access_token"),
            Some("v1:x"),
            Some("7200"),
            Some("3"),
            Some("10"),
            None,
            None,
            Some("40125"),
            Some("invalid appsecret"),
            Some("11"),
            Some("12"),
            Some("13"),
            Some("14"),
            Some("2"),
            Some("15"),
            Some("1"),
        ]);
        let c = credential_from(&row).unwrap();
        assert_eq!(
            (c.account_id.as_str(), c.kind.as_str(), c.version, c.attempts),
            ("mp:wx1", "access_token", 3, 2)
        );
        assert_eq!((c.last_errcode, c.due_at, c.lease_owner), (Some(40125), Some(14), None));
        assert_eq!((c.verified_at, c.verdict), (Some(15), Some(1)));
        assert_eq!(cols(ACCOUNT_COLUMNS)[3], "secrets");
        let a = account_from(&Fake(vec![
            Some("authorizer:c:wx"),
            Some("authorizer"),
            Some("component:c"),
            Some("v1:s"),
            Some("{}"),
            Some("active"),
            Some("1"),
            Some("2"),
        ]))
        .unwrap();
        assert_eq!((a.parent_id.as_deref(), a.updated_at), (Some("component:c"), 2));
        assert_eq!(cols(KEY_COLUMNS), ["name", "hash", "accounts", "created_at"]);
        let k = key_from(&Fake(vec![Some("k"), Some("ab"), Some("[\"*\"]"), Some("5")])).unwrap();
        assert_eq!(k.created_at, 5);
        assert!(
            key_from(&Fake(vec![None, Some("ab"), Some("[]"), Some("5")])).is_err(),
            "NULL name"
        );
    }

    /// Columns from memory, as a row would give them.
    struct Fake(Vec<Option<&'static str>>);

    impl Columns for Fake {
        fn text(&self, i: usize) -> StoreResult<Option<String>> {
            Ok(self.0[i].map(str::to_owned))
        }
        fn int(&self, i: usize) -> StoreResult<Option<i64>> {
            self.0[i]
                .map(|s| {
                    s.parse()
                        .map_err(|_| StoreError::Other(format!("column {i} is not a number")))
                })
                .transpose()
        }
    }
}
