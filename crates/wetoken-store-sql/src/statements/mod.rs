//! Every SQL statement wetoken runs, written once.
//!
//! The canonical text uses `?` placeholders and standard SQL that SQLite,
//! MySQL/MariaDB, PostgreSQL and Oracle all accept. [`Statements::for_dialect`]
//! rewrites the placeholders (`$1…` for PostgreSQL, `:1…` for Oracle) and
//! substitutes the three pieces whose syntax differs: inserting a row only
//! if absent, limiting a result, and the database's clock in epoch
//! milliseconds (`dialect::db_now_ms`: lease time is the database's, SPEC §2
//! fencing). Nothing else may differ: no `RETURNING`
//! (MySQL has none: versions are read back inside the same transaction), no
//! boolean columns, no empty strings that Oracle would turn into NULL.

use std::sync::LazyLock;

pub use crate::dialect::Dialect;
use crate::dialect::{db_now_ms, db_wechat_day, insert_if_absent, number_placeholders};

/// Columns of `wt_accounts`, in the order rows are read.
pub const ACCOUNT_COLUMNS: &str = "id, kind, parent_id, secrets, config, status, created_at, updated_at";
/// Columns of `wt_credentials`, in the order rows are read.
pub const CREDENTIAL_COLUMNS: &str = "account_id, kind, value, expires_at, version, refreshed_at, lease_owner, \
     lease_until, last_errcode, last_errmsg, last_error_at, blocked_until, forced_at, due_at, attempts, verified_at, verdict";
/// Columns of `wt_keys`, in the order rows are read.
pub const KEY_COLUMNS: &str = "name, hash, accounts, created_at";
/// Columns of `wt_events`, in the order rows are read.
pub const EVENT_COLUMNS: &str = "id, event_type, account_id, created_at, data, source";
/// Columns of `wt_webhooks`, in the order rows are read.
pub const WEBHOOK_COLUMNS: &str = "name, url, events, accounts, format, secret, cursor_id, created_at, reply";
/// Columns of `wt_audit`, in the order rows are read.
pub const AUDIT_COLUMNS: &str = "id, called_at, key_name, account_id, method, path, status, errcode, rid";
/// Columns of `wt_deliveries`, in the order rows are read.
pub const DELIVERY_COLUMNS: &str =
    "webhook, event_id, status, attempts, next_at, created_at, updated_at, last_status, last_error, reply, reply_ms";

/// One backend's SQL. Field names say what each statement does; the bind
/// order is the order of `?` in the canonical text below.
#[derive(Debug)]
pub struct Statements {
    pub insert_account: &'static str,
    pub select_account: &'static str,
    pub update_account: &'static str,
    pub delete_account_credentials: &'static str,
    pub delete_family_credentials: &'static str,
    pub delete_child_accounts: &'static str,
    pub delete_account: &'static str,
    pub select_credential: &'static str,
    pub select_credentials: &'static str,
    pub insert_credential_if_absent: &'static str,
    pub take_lease: &'static str,
    pub complete_refresh: &'static str,
    pub select_version: &'static str,
    pub update_account_secrets: &'static str,
    pub record_failure: &'static str,
    pub put_pushed: &'static str,
    pub mark_forced: &'static str,
    pub record_verdict: &'static str,
    pub force_today: &'static str,
    pub force_spent_once: &'static str,
    pub clear_blocks_filled: &'static str,
    pub clear_blocks_empty: &'static str,
    pub select_due: &'static str,
    pub select_by_hash: &'static str,
    pub insert_key: &'static str,
    pub select_key_by_hash: &'static str,
    pub delete_key: &'static str,
    pub select_key_checks: &'static str,
    pub insert_key_check: &'static str,
    pub delete_key_check: &'static str,
    pub reseal_account: &'static str,
    pub reseal_value: &'static str,
    pub mark_pushed_stale: &'static str,
    pub select_dedupe: &'static str,
    pub bump_event_seq: &'static str,
    pub select_event_seq: &'static str,
    pub insert_event: &'static str,
    pub select_events: &'static str,
    pub select_event: &'static str,
    pub select_last_message: &'static str,
    pub purge_events: &'static str,
    pub purge_deliveries: &'static str,
    pub insert_webhook: &'static str,
    pub select_webhooks: &'static str,
    pub select_webhook: &'static str,
    pub delete_webhook_deliveries: &'static str,
    pub delete_webhook: &'static str,
    pub move_cursor: &'static str,
    pub insert_delivery: &'static str,
    pub insert_leased_delivery: &'static str,
    pub select_delivery: &'static str,
    pub select_due_deliveries: &'static str,
    pub take_delivery_lease: &'static str,
    pub record_attempt: &'static str,
    pub select_deliveries: &'static str,
    pub retry_delivery: &'static str,
    pub select_oldest_pending: &'static str,
    pub reseal_webhook: &'static str,
    pub select_accounts_page: &'static str,
    pub select_credentials_between: &'static str,
    pub select_keys_page: &'static str,
    pub count_accounts: &'static str,
    pub select_failing: &'static str,
    pub insert_session: &'static str,
    pub select_session: &'static str,
    pub delete_session: &'static str,
    pub purge_sessions: &'static str,
    pub insert_audit: &'static str,
    pub select_audit: &'static str,
    pub purge_audit: &'static str,
    pub upsert_session_key: &'static str,
    pub select_session_key: &'static str,
    pub session_keys_batch: &'static str,
    pub purge_session_keys: &'static str,
    pub delete_family_session_keys: &'static str,
}

impl Statements {
    /// The statements of one dialect, built once per process.
    pub fn for_dialect(d: Dialect) -> &'static Statements {
        static SQLITE: LazyLock<Statements> = LazyLock::new(|| Statements::build(Dialect::Sqlite));
        static MYSQL: LazyLock<Statements> = LazyLock::new(|| Statements::build(Dialect::MySql));
        static POSTGRES: LazyLock<Statements> = LazyLock::new(|| Statements::build(Dialect::Postgres));
        static ORACLE: LazyLock<Statements> = LazyLock::new(|| Statements::build(Dialect::Oracle));
        match d {
            Dialect::Sqlite => &SQLITE,
            Dialect::MySql => &MYSQL,
            Dialect::Postgres => &POSTGRES,
            Dialect::Oracle => &ORACLE,
        }
    }

    fn build(d: Dialect) -> Statements {
        // Leaked once per dialect per process: sqlx takes only 'static SQL.
        let s = |canonical: String| -> &'static str {
            let text = match d {
                Dialect::Sqlite | Dialect::MySql => canonical,
                Dialect::Postgres => number_placeholders(&canonical, '$'),
                Dialect::Oracle => number_placeholders(&canonical, ':'),
            };
            Box::leak(text.into_boxed_str())
        };
        let insert_credential_if_absent = insert_if_absent(
            d,
            "wt_credentials",
            &["account_id", "kind"],
            &[("version", "0"), ("attempts", "0")],
        );
        let limit = match d {
            Dialect::Oracle => "FETCH FIRST ? ROWS ONLY",
            _ => "LIMIT ?",
        };
        let upsert_session_key = match d {
            Dialect::Sqlite | Dialect::Postgres => {
                "INSERT INTO wt_session_keys (account_id, openid, sealed, expires_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (account_id, openid) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at"
            }
            Dialect::MySql => {
                "INSERT INTO wt_session_keys (account_id, openid, sealed, expires_at) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE sealed = VALUES(sealed), expires_at = VALUES(expires_at)"
            }
            Dialect::Oracle => {
                "MERGE INTO wt_session_keys k \
                 USING (SELECT ? account_id, ? openid, ? sealed, ? expires_at FROM dual) s \
                 ON (k.account_id = s.account_id AND k.openid = s.openid) \
                 WHEN MATCHED THEN UPDATE SET k.sealed = s.sealed, k.expires_at = s.expires_at \
                 WHEN NOT MATCHED THEN INSERT (account_id, openid, sealed, expires_at) \
                 VALUES (s.account_id, s.openid, s.sealed, s.expires_at)"
            }
        };
        let now = db_now_ms(d);
        let day = db_wechat_day(d);
        Statements {
            insert_account: s(format!(
                "INSERT INTO wt_accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            select_account: s(format!("SELECT {ACCOUNT_COLUMNS} FROM wt_accounts WHERE id = ?")),
            update_account: s(
                "UPDATE wt_accounts SET secrets = ?, config = ?, status = ?, updated_at = ? WHERE id = ?".into(),
            ),
            // What WeChat pushed (verify/suite tickets) is not derived from a
            // secret: it stays. The rest lose their value, lease and block
            // but keep the last error and the failures in a row: whether an
            // alert is open (`service::alerts`), so the first value after
            // the fix raises `recovered`.
            delete_account_credentials: s(
                "UPDATE wt_credentials SET value = NULL, value_hash = NULL, previous_hash = NULL, \
                 previous_until = NULL, expires_at = NULL, refreshed_at = NULL, version = version + 1, \
                 lease_owner = NULL, lease_until = NULL, blocked_until = NULL, forced_at = NULL, due_at = NULL, \
                 verified_at = NULL, verdict = NULL \
                 WHERE account_id = ? AND kind NOT IN ('verify_ticket', 'suite_ticket')"
                    .into(),
            ),
            delete_family_credentials: s("DELETE FROM wt_credentials WHERE account_id = ? \
                 OR account_id IN (SELECT id FROM wt_accounts WHERE parent_id = ?)"
                .into()),
            delete_child_accounts: s("DELETE FROM wt_accounts WHERE parent_id = ?".into()),
            delete_account: s("DELETE FROM wt_accounts WHERE id = ?".into()),
            select_credential: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE account_id = ? AND kind = ?"
            )),
            select_credentials: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE account_id = ? ORDER BY kind"
            )),
            insert_credential_if_absent: s(insert_credential_if_absent),
            // Lease time is the database's: `?` is the lease's length.
            take_lease: s(format!(
                "UPDATE wt_credentials SET lease_owner = ?, lease_until = {now} + ? \
                 WHERE account_id = ? AND kind = ? AND version = ? \
                 AND (lease_until IS NULL OR lease_until < {now})"
            )),
            // previous_hash first: MySQL assigns left to right, with new values.
            // Fenced: only by the holder, while its lease runs.
            complete_refresh: s(format!(
                "UPDATE wt_credentials SET previous_hash = value_hash, previous_until = ?, \
                 value_hash = ?, value = ?, expires_at = ?, refreshed_at = ?, due_at = ?, \
                 version = version + 1, attempts = 0, lease_owner = NULL, lease_until = NULL, \
                 last_errcode = NULL, last_errmsg = NULL, last_error_at = NULL, blocked_until = NULL, \
                 verified_at = NULL, verdict = NULL \
                 WHERE account_id = ? AND kind = ? AND lease_owner = ? AND lease_until >= {now}"
            )),
            select_version: s("SELECT version FROM wt_credentials WHERE account_id = ? AND kind = ?".into()),
            update_account_secrets: s("UPDATE wt_accounts SET secrets = ?, updated_at = ? WHERE id = ?".into()),
            record_failure: s(format!(
                "UPDATE wt_credentials SET last_errcode = ?, last_errmsg = ?, last_error_at = ?, \
                 blocked_until = ?, due_at = ?, attempts = ?, lease_owner = NULL, lease_until = NULL \
                 WHERE account_id = ? AND kind = ? AND lease_owner = ? AND lease_until >= {now}"
            )),
            put_pushed: s(
                "UPDATE wt_credentials SET value = ?, expires_at = ?, refreshed_at = ?, \
                 version = version + 1, due_at = ? WHERE account_id = ? AND kind = ? \
                 AND (refreshed_at IS NULL OR refreshed_at <= ?)"
                    .into(),
            ),
            // On the database's clock: `?` is the interval's length.
            mark_forced: s(format!(
                "UPDATE wt_credentials SET forced_at = {now} \
                 WHERE account_id = ? AND kind = ? AND (forced_at IS NULL OR forced_at <= {now} - ?)"
            )),
            // A verdict belongs to the value it was given on: the version.
            record_verdict: s("UPDATE wt_credentials SET verified_at = ?, verdict = ? \
                 WHERE account_id = ? AND kind = ? AND version = ?"
                .into()),
            // forced_count first: MySQL assigns left to right, and the
            // count must read the day as it was.
            force_today: s(format!(
                "UPDATE wt_credentials SET \
                 forced_count = CASE WHEN forced_day = {day} THEN forced_count + 1 ELSE 1 END, \
                 forced_day = {day} \
                 WHERE account_id = ? AND kind = ? \
                 AND (forced_day IS NULL OR forced_day <> {day} OR forced_count < ?)"
            )),
            // The first refusal of the day steps past the cap, once.
            force_spent_once: s(format!(
                "UPDATE wt_credentials SET forced_count = forced_count + 1 \
                 WHERE account_id = ? AND kind = ? AND forced_day = {day} AND forced_count = ?"
            )),
            clear_blocks_filled: s("UPDATE wt_credentials SET blocked_until = NULL, last_errcode = NULL, \
                 last_errmsg = NULL, last_error_at = NULL, attempts = 0, due_at = ? \
                 WHERE account_id = ? AND value IS NOT NULL \
                 AND kind NOT IN ('verify_ticket', 'suite_ticket')"
                .into()),
            clear_blocks_empty: s("UPDATE wt_credentials SET blocked_until = NULL, last_errcode = NULL, \
                 last_errmsg = NULL, last_error_at = NULL, attempts = 0, due_at = NULL \
                 WHERE account_id = ? AND value IS NULL"
                .into()),
            // The due range by its index; of those, the earliest-expiring
            // first: when more are due than the rate cap allows, the tokens
            // closest to expiry are refreshed before the others.
            select_due: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE due_at <= ? AND value IS NOT NULL \
                 AND (lease_until IS NULL OR lease_until < ?) ORDER BY expires_at, due_at {limit}"
            )),
            select_by_hash: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE value_hash = ? \
                 OR (previous_hash = ? AND previous_until > ?)"
            )),
            insert_key: s(format!("INSERT INTO wt_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?)")),
            select_key_by_hash: s(format!("SELECT {KEY_COLUMNS} FROM wt_keys WHERE hash = ?")),
            delete_key: s("DELETE FROM wt_keys WHERE name = ?".into()),
            select_key_checks: s("SELECT key_id, check_value FROM wt_master_keys ORDER BY key_id".into()),
            insert_key_check: s("INSERT INTO wt_master_keys (key_id, check_value, created_at) VALUES (?, ?, ?)".into()),
            delete_key_check: s("DELETE FROM wt_master_keys WHERE key_id = ?".into()),
            // Re-sealing changes no plaintext: compare-and-set on what was
            // read (updated_at, version), so a concurrent write wins.
            reseal_account: s("UPDATE wt_accounts SET secrets = ? WHERE id = ? AND updated_at = ?".into()),
            reseal_value: s(
                "UPDATE wt_credentials SET value = ? WHERE account_id = ? AND kind = ? AND version = ?".into(),
            ),
            mark_pushed_stale: s(
                "UPDATE wt_credentials SET due_at = NULL WHERE account_id = ? AND kind = ? AND version = ? \
                 AND due_at IS NOT NULL"
                    .into(),
            ),
            // The outbox: the counter row's lock is held to commit, so ids
            // increase in commit order.
            select_dedupe: s("SELECT id FROM wt_events WHERE dedupe = ?".into()),
            bump_event_seq: s("UPDATE wt_event_seq SET last_id = last_id + ? WHERE name = 'events'".into()),
            select_event_seq: s("SELECT last_id FROM wt_event_seq WHERE name = 'events'".into()),
            // If absent by its dedupe: WeChat's retry of a push is the
            // same event (an event without one is always new).
            insert_event: s(insert_if_absent(
                d,
                "wt_events",
                &["dedupe"],
                &[
                    ("id", "?"),
                    ("event_type", "?"),
                    ("account_id", "?"),
                    ("family_id", "?"),
                    ("created_at", "?"),
                    ("data", "?"),
                    ("source", "?"),
                ],
            )),
            select_events: s(format!(
                "SELECT {EVENT_COLUMNS} FROM wt_events WHERE id > ? \
                 AND (? IS NULL OR event_type LIKE ?) AND (? IS NULL OR account_id = ?) \
                 AND (? IS NULL OR family_id = ?) ORDER BY id {limit}"
            )),
            select_event: s(format!("SELECT {EVENT_COLUMNS} FROM wt_events WHERE id = ?")),
            // By index wt_events_account, newest first.
            select_last_message: s(format!(
                "SELECT {EVENT_COLUMNS} FROM wt_events WHERE account_id = ? \
                 AND (event_type LIKE 'message.%' OR event_type LIKE 'event.%') ORDER BY id DESC {limit}"
            )),
            purge_events: s("DELETE FROM wt_events WHERE created_at < ?".into()),
            purge_deliveries: s("DELETE FROM wt_deliveries WHERE updated_at < ? AND status <> 'pending'".into()),
            // A new webhook starts at the newest committed event.
            insert_webhook: s(format!(
                "INSERT INTO wt_webhooks ({WEBHOOK_COLUMNS}) \
                 SELECT ?, ?, ?, ?, ?, ?, last_id, ?, ? FROM wt_event_seq WHERE name = 'events'"
            )),
            select_webhooks: s(format!("SELECT {WEBHOOK_COLUMNS} FROM wt_webhooks ORDER BY name")),
            select_webhook: s(format!("SELECT {WEBHOOK_COLUMNS} FROM wt_webhooks WHERE name = ?")),
            delete_webhook_deliveries: s("DELETE FROM wt_deliveries WHERE webhook = ?".into()),
            delete_webhook: s("DELETE FROM wt_webhooks WHERE name = ?".into()),
            move_cursor: s("UPDATE wt_webhooks SET cursor_id = ? WHERE name = ? AND cursor_id = ?".into()),
            // If absent: a reply webhook's delivery may exist already,
            // taken by the push it answered (SPEC §14).
            insert_delivery: s(insert_if_absent(
                d,
                "wt_deliveries",
                &["webhook", "event_id"],
                &[
                    ("status", "'pending'"),
                    ("attempts", "0"),
                    ("next_at", "?"),
                    ("created_at", "?"),
                    ("updated_at", "?"),
                ],
            )),
            // A reply webhook's delivery, created leased by the instance
            // that calls it while WeChat waits.
            insert_leased_delivery: s(insert_if_absent(
                d,
                "wt_deliveries",
                &["webhook", "event_id"],
                &[
                    ("status", "'pending'"),
                    ("attempts", "0"),
                    ("next_at", "?"),
                    ("created_at", "?"),
                    ("updated_at", "?"),
                    ("lease_owner", "?"),
                    ("lease_until", &format!("{now} + ?")),
                ],
            )),
            select_delivery: s(format!(
                "SELECT {DELIVERY_COLUMNS} FROM wt_deliveries WHERE webhook = ? AND event_id = ?"
            )),
            select_due_deliveries: s(format!(
                "SELECT {DELIVERY_COLUMNS} FROM wt_deliveries WHERE webhook = ? AND status = 'pending' \
                 AND next_at <= ? AND (lease_until IS NULL OR lease_until < {now}) ORDER BY next_at {limit}"
            )),
            take_delivery_lease: s(format!(
                "UPDATE wt_deliveries SET lease_owner = ?, lease_until = {now} + ? \
                 WHERE webhook = ? AND event_id = ? AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until < {now})"
            )),
            // Fenced like a refresh: only by the holder, while its lease runs.
            record_attempt: s(format!(
                "UPDATE wt_deliveries SET status = ?, attempts = ?, next_at = ?, updated_at = ?, \
                 last_status = ?, last_error = ?, reply = ?, reply_ms = ?, lease_owner = NULL, lease_until = NULL \
                 WHERE webhook = ? AND event_id = ? AND lease_owner = ? AND lease_until >= {now}"
            )),
            select_deliveries: s(format!(
                "SELECT {DELIVERY_COLUMNS} FROM wt_deliveries WHERE webhook = ? AND event_id > ? \
                 AND (? IS NULL OR status = ?) ORDER BY event_id {limit}"
            )),
            retry_delivery: s(
                "UPDATE wt_deliveries SET status = 'pending', attempts = 0, next_at = ?, \
                 created_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL \
                 WHERE webhook = ? AND event_id = ? AND status <> 'pending'"
                    .into(),
            ),
            select_oldest_pending: s("SELECT MIN(created_at) FROM wt_deliveries WHERE status = 'pending'".into()),
            reseal_webhook: s("UPDATE wt_webhooks SET secret = ?, url = ? WHERE name = ? AND secret = ?".into()),
            // Pages: a range of the primary key (a prefix is `[p, p~)`: every
            // id character sorts below `~`), then the cursor.
            select_accounts_page: s(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM wt_accounts WHERE id >= ? AND id < ? AND id > ? \
                 AND (? IS NULL OR status = ?) AND (? IS NULL OR status <> ?) ORDER BY id {limit}"
            )),
            select_credentials_between: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE account_id >= ? AND account_id <= ? \
                 ORDER BY account_id, kind"
            )),
            select_keys_page: s(format!(
                "SELECT {KEY_COLUMNS} FROM wt_keys WHERE name > ? ORDER BY name {limit}"
            )),
            // The page's range and filters, counted up to a cap.
            count_accounts: s(format!(
                "SELECT COUNT(*) FROM (SELECT id FROM wt_accounts WHERE id >= ? AND id < ? AND id > ? \
                 AND (? IS NULL OR status = ?) AND (? IS NULL OR status <> ?) {limit}) capped"
            )),
            select_failing: s(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM wt_credentials WHERE last_error_at IS NOT NULL \
                 ORDER BY last_error_at DESC {limit}"
            )),
            insert_session: s("INSERT INTO wt_console_sessions (hash, created_at, expires_at) VALUES (?, ?, ?)".into()),
            select_session: s("SELECT expires_at FROM wt_console_sessions WHERE hash = ?".into()),
            delete_session: s("DELETE FROM wt_console_sessions WHERE hash = ?".into()),
            purge_sessions: s("DELETE FROM wt_console_sessions WHERE expires_at < ?".into()),
            insert_audit: s(format!(
                "INSERT INTO wt_audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            // Ids sort by time: the cursor and the start are one id range.
            select_audit: s(format!(
                "SELECT {AUDIT_COLUMNS} FROM wt_audit WHERE id > ? AND id >= ? \
                 AND (? IS NULL OR key_name = ?) AND (? IS NULL OR account_id = ?) ORDER BY id {limit}"
            )),
            purge_audit: s("DELETE FROM wt_audit WHERE called_at < ?".into()),
            upsert_session_key: s(upsert_session_key.into()),
            select_session_key: s(
                "SELECT sealed FROM wt_session_keys WHERE account_id = ? AND openid = ? AND expires_at > ?".into(),
            ),
            // A purge takes the oldest expired keys by the index, then
            // deletes up to the last of them: two index ranges, never a scan.
            session_keys_batch: s(format!(
                "SELECT expires_at FROM wt_session_keys WHERE expires_at < ? ORDER BY expires_at {limit}"
            )),
            purge_session_keys: s("DELETE FROM wt_session_keys WHERE expires_at < ? AND expires_at <= ?".into()),
            delete_family_session_keys: s("DELETE FROM wt_session_keys WHERE account_id = ? \
                 OR account_id IN (SELECT id FROM wt_accounts WHERE parent_id = ?)"
                .into()),
        }
    }
}

#[cfg(test)]
mod tests;
