//! Oracle rows into `wetoken_store_sql::rows` (column order of the shared
//! statements), then decoded into domain types there, as every backend's.

use oracle::Row;
use wetoken_core::events::{Delivery, Event, Webhook};
use wetoken_core::store::{ApiKey, AuditEntry, CredentialState, KeyCheck, Sealed, StoreError, StoredAccount};
use wetoken_store_sql::rows::{AccountRow, AuditRow, CredentialRow, DeliveryRow, EventRow, KeyRow, WebhookRow};

use crate::map_err;

/// A read column, for row mapping that tests can drive without a server.
pub trait Columns {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
}

impl Columns for Row {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get::<usize, Option<String>>(i).map_err(map_err)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get::<usize, Option<i64>>(i).map_err(map_err)
    }
}

pub(crate) fn required<T>(v: Option<T>, what: &str) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Other(format!("NULL in {what}")))
}

/// A `wt_accounts` row in `ACCOUNT_COLUMNS` order.
pub fn account_from<C: Columns>(r: &C) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        id: required(r.text(0)?, "id")?,
        kind: required(r.text(1)?, "kind")?,
        parent_id: r.text(2)?,
        secrets: required(r.text(3)?, "secrets")?,
        config: required(r.text(4)?, "config")?,
        status: required(r.text(5)?, "status")?,
        created_at: required(r.int(6)?, "created_at")?,
        updated_at: required(r.int(7)?, "updated_at")?,
    })
}

/// A `wt_credentials` row in `CREDENTIAL_COLUMNS` order.
pub fn credential_from<C: Columns>(r: &C) -> Result<CredentialRow, StoreError> {
    Ok(CredentialRow {
        account_id: required(r.text(0)?, "account_id")?,
        kind: required(r.text(1)?, "kind")?,
        value: r.text(2)?,
        expires_at: r.int(3)?,
        version: required(r.int(4)?, "version")?,
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
pub fn key_from<C: Columns>(r: &C) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        name: required(r.text(0)?, "name")?,
        hash: required(r.text(1)?, "hash")?,
        accounts: required(r.text(2)?, "accounts")?,
        created_at: required(r.int(3)?, "created_at")?,
    })
}

/// Row readers that decode into domain types (in `wetoken_store_sql::rows`).
pub(crate) fn account_of(r: &Row) -> Result<StoredAccount, StoreError> {
    account_from(r)?.decode()
}

pub(crate) fn credential_of(r: &Row) -> Result<CredentialState, StoreError> {
    credential_from(r)?.decode()
}

pub(crate) fn check_of(r: &Row) -> Result<KeyCheck, StoreError> {
    Ok(KeyCheck {
        key_id: required(r.text(0)?, "key_id")?,
        check: Sealed::from_stored(required(r.text(1)?, "check_value")?),
    })
}

pub(crate) fn key_of(r: &Row) -> Result<ApiKey, StoreError> {
    key_from(r)?.decode()
}

/// A `wt_events` row in `EVENT_COLUMNS` order.
pub fn event_from<C: Columns>(r: &C) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        id: required(r.int(0)?, "id")?,
        event_type: required(r.text(1)?, "event_type")?,
        account_id: required(r.text(2)?, "account_id")?,
        created_at: required(r.int(3)?, "created_at")?,
        data: required(r.text(4)?, "data")?,
        source: r.text(5)?,
    })
}

/// A `wt_webhooks` row in `WEBHOOK_COLUMNS` order.
pub fn webhook_from<C: Columns>(r: &C) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow {
        name: required(r.text(0)?, "name")?,
        url: required(r.text(1)?, "url")?,
        events: required(r.text(2)?, "events")?,
        accounts: required(r.text(3)?, "accounts")?,
        format: required(r.text(4)?, "format")?,
        secret: required(r.text(5)?, "secret")?,
        cursor_id: required(r.int(6)?, "cursor_id")?,
        created_at: required(r.int(7)?, "created_at")?,
    })
}

/// A `wt_deliveries` row in `DELIVERY_COLUMNS` order.
pub fn delivery_from<C: Columns>(r: &C) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        webhook: required(r.text(0)?, "webhook")?,
        event_id: required(r.int(1)?, "event_id")?,
        status: required(r.text(2)?, "status")?,
        attempts: required(r.int(3)?, "attempts")?,
        next_at: required(r.int(4)?, "next_at")?,
        created_at: required(r.int(5)?, "created_at")?,
        updated_at: required(r.int(6)?, "updated_at")?,
        last_status: r.int(7)?,
        last_error: r.text(8)?,
    })
}

/// A `wt_audit` row in `AUDIT_COLUMNS` order.
pub fn audit_from<C: Columns>(r: &C) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: required(r.text(0)?, "id")?,
        called_at: required(r.int(1)?, "called_at")?,
        key_name: required(r.text(2)?, "key_name")?,
        account_id: required(r.text(3)?, "account_id")?,
        method: required(r.text(4)?, "method")?,
        path: required(r.text(5)?, "path")?,
        status: required(r.int(6)?, "status")?,
        errcode: r.int(7)?,
        rid: r.text(8)?,
    })
}

pub(crate) fn audit_of(r: &Row) -> Result<AuditEntry, StoreError> {
    audit_from(r)?.decode()
}

pub(crate) fn event_of(r: &Row) -> Result<Event, StoreError> {
    event_from(r)?.decode()
}

pub(crate) fn webhook_of(r: &Row) -> Result<Webhook, StoreError> {
    webhook_from(r)?.decode()
}

pub(crate) fn delivery_of(r: &Row) -> Result<Delivery, StoreError> {
    delivery_from(r)?.decode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_map_in_column_order() {
        use wetoken_store_sql::statements::{ACCOUNT_COLUMNS, CREDENTIAL_COLUMNS, KEY_COLUMNS};
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
        fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
            Ok(self.0[i].map(str::to_owned))
        }
        fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
            self.0[i]
                .map(|s| {
                    s.parse()
                        .map_err(|_| StoreError::Other(format!("column {i} is not a number")))
                })
                .transpose()
        }
    }
}
