//! # wetoken-store-oracle
//!
//! The Oracle backend of the wetoken `Store`, on the `oracle` crate (ODPI-C,
//! bundled; blocking calls run in `spawn_blocking` on its session pool). It
//! runs the statements of `wetoken-store-sql` in their Oracle form (`:1`
//! binds, `MERGE` for insert-if-absent, `FETCH FIRST`), and applies its own
//! migrations (`migrations/oracle/`, same versions and names as the other
//! backends) with a small runner, since sqlx does not speak Oracle.
//!
//! The Oracle client library (Instant Client) must be installed where the
//! binary runs; without it, connecting fails at start with DPI-1047, which
//! [`connect`] turns into a message that says so. No Oracle server can run in
//! this project's CI: the SQL text, the migration splitting, the row mapping
//! and the error mapping are unit-tested, and the store conformance suite runs
//! against a real server when `WETOKEN_TEST_ORACLE_URL` is set.

use std::sync::Arc;

use async_trait::async_trait;
use oracle::pool::{Pool, PoolBuilder};
use oracle::sql_type::ToSql;
use oracle::{Connection, Row};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::events::{AttemptWrite, Delivery, DeliveryStatus, Event, NewEvent, Webhook};
use wetoken_core::store::prelude::*;
use wetoken_core::store::{
    AccountQuery, ApiKey, AuditEntry, AuditQuery, CredentialState, EventQuery, FailureWrite, ForceBudget, KeyCheck,
    PushWrite, RefreshWrite, Schema, Sealed, Store, StoreError, StoreResult, StoredAccount, Verdict,
};
use wetoken_core::urlenc::percent_decode;
use wetoken_store_sql::rows::{
    AccountRow, AuditRow, KeyRow, NewEventRow, PageBinds, WebhookRow, audit_binds, event_filters, page_binds,
};
use wetoken_store_sql::{Dialect, Statements};

mod migrate;
mod rows;

pub use migrate::{MIGRATIONS, schema_sql, split_statements};
pub use rows::{Columns, account_from, credential_from, delivery_from, event_from, key_from, webhook_from};
use rows::{account_of, audit_of, check_of, credential_of, delivery_of, event_of, key_of, required, webhook_of};

/// `oracle://user:password@host:port/service` → (user, password, `//host:port/service`).
pub fn parse_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("oracle://")
        .ok_or_else(|| "an Oracle URL starts with oracle://".to_owned())?;
    let (userinfo, target) = rest
        .rsplit_once('@')
        .ok_or_else(|| "an Oracle URL needs user:password@host:port/service".to_owned())?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    if user.is_empty() || target.is_empty() {
        return Err("an Oracle URL needs user:password@host:port/service".into());
    }
    Ok((percent_decode(user), percent_decode(password), format!("//{target}")))
}

/// Maps an Oracle error code and message (ORA-nnnnn, DPI-nnnn).
pub fn classify(code: Option<i32>, message: &str) -> StoreError {
    if message.contains("DPI-1047") {
        return StoreError::Unavailable(format!(
            "the Oracle client library (Instant Client) was not found: install it and add it to \
             LD_LIBRARY_PATH ({message})"
        ));
    }
    match code {
        // ORA-00001: unique constraint violated
        Some(1) => StoreError::Conflict,
        // listener, network, lost session, timeout
        Some(3113 | 3114 | 3135 | 12170 | 12514 | 12537 | 12541 | 12543 | 12545 | 12547) => {
            StoreError::Unavailable(message.to_owned())
        }
        _ => StoreError::Other(message.to_owned()),
    }
}

pub(crate) fn map_err(e: oracle::Error) -> StoreError {
    classify(e.db_error().map(|d| d.code()), &e.to_string())
}

pub struct OracleStore {
    pool: Arc<Pool>,
    sql: &'static Statements,
}

/// Connects to `oracle://user:password@host:port/service`.
pub async fn connect(url: &str) -> StoreResult<OracleStore> {
    let (user, password, target) = parse_url(url).map_err(StoreError::Other)?;
    let pool = tokio::task::spawn_blocking(move || {
        PoolBuilder::new(user, password, target)
            .min_connections(1)
            .max_connections(16)
            .build()
    })
    .await
    .map_err(|e| StoreError::Other(e.to_string()))?
    .map_err(map_err)?;
    Ok(OracleStore {
        pool: Arc::new(pool),
        sql: Statements::for_dialect(Dialect::Oracle),
    })
}

impl OracleStore {
    /// Runs `f` on a pooled session in a blocking thread; commits on
    /// success, rolls back on failure.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &'static Statements) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let sql = self.sql;
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(map_err)?;
            match f(&conn, sql) {
                Ok(v) => {
                    conn.commit().map_err(map_err)?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = conn.rollback();
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| StoreError::Other(format!("blocking task failed: {e}")))?
    }
}

fn exec(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> Result<u64, StoreError> {
    conn.execute(sql, params).map_err(map_err)?.row_count().map_err(map_err)
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    conn.query(sql, params)
        .map_err(map_err)?
        .map(|r| r.map_err(map_err).and_then(|r| map(&r)))
        .collect()
}

fn ensure_row(conn: &Connection, sql: &Statements, account_id: &str, kind: &str) -> Result<(), StoreError> {
    exec(conn, sql.insert_credential_if_absent, &[&account_id, &kind]).map(drop)
}

fn version_of(conn: &Connection, sql: &Statements, account_id: &str, kind: &str) -> Result<i64, StoreError> {
    let row = conn
        .query_row(sql.select_version, &[&account_id, &kind])
        .map_err(map_err)?;
    required(row.int(0)?, "version")
}

/// The outbox in the caller's transaction: the counter row first (its lock
/// held to commit, so ids increase in commit order), then each event not
/// already stored by its dedupe hash.
fn append(conn: &Connection, sql: &Statements, events: &[NewEventRow]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    exec(conn, sql.bump_event_seq, &[&n])?;
    let row = conn.query_row(sql.select_event_seq, &[]).map_err(map_err)?;
    let last = required(row.int(0)?, "last_id")?;
    for (i, r) in events.iter().enumerate() {
        if let Some(d) = &r.dedupe {
            let row = conn.query_row(sql.count_dedupe, &[d]).map_err(map_err)?;
            if required(row.int(0)?, "count")? > 0 {
                continue;
            }
        }
        let id = last - n + 1 + i as i64;
        exec(
            conn,
            sql.insert_event,
            &[
                &id,
                &r.event_type,
                &r.account_id,
                &r.family_id,
                &r.created_at,
                &r.data,
                &r.source,
                &r.dedupe,
            ],
        )?;
    }
    Ok(())
}

/// The binds of an account page's range and filters, then its limit (a
/// page and its bounded count take the same).
fn page_params<'a>(b: &'a PageBinds, limit: &'a i64) -> [&'a dyn ToSql; 8] {
    [
        &b.lower,
        &b.upper,
        &b.after,
        &b.status,
        &b.status,
        &b.not_status,
        &b.not_status,
        limit,
    ]
}

fn encode_events(events: &[NewEvent]) -> Vec<NewEventRow> {
    events.iter().map(NewEventRow::encode).collect()
}

#[async_trait]
impl Store for OracleStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.run(|conn, _| migrate::run(conn)).await
    }

    async fn schema(&self) -> StoreResult<Schema> {
        let latest = migrate::MIGRATIONS.last().map_or(0, |m| m.0);
        self.run(move |conn, _| {
            match conn.query_row_as::<Option<i64>>("SELECT MAX(version) FROM wt_schema_migrations", &[]) {
                Ok(v) => Ok(Schema::of(Some(v.unwrap_or(0)), latest)),
                // ORA-00942: no migrations table, no schema.
                Err(e) if e.db_error().is_some_and(|d| d.code() == 942) => Ok(Schema::Absent),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|conn, _| conn.query_row("SELECT 1 FROM dual", &[]).map(drop).map_err(map_err))
            .await
    }
}

#[async_trait]
impl AccountStore for OracleStore {
    async fn insert_account(&self, a: &StoredAccount, events: &[NewEvent]) -> StoreResult<()> {
        let r = AccountRow::encode(a);
        let events = encode_events(events);
        self.run(move |conn, sql| {
            exec(
                conn,
                sql.insert_account,
                &[
                    &r.id,
                    &r.kind,
                    &r.parent_id,
                    &r.secrets,
                    &r.config,
                    &r.status,
                    &r.created_at,
                    &r.updated_at,
                ],
            )?;
            append(conn, sql, &events)
        })
        .await
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<StoredAccount>> {
        let id = id.to_string();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_account, &[&id], account_of)?.pop()))
            .await
    }

    async fn update_account(&self, a: &StoredAccount, drop_credentials: bool, events: &[NewEvent]) -> StoreResult<()> {
        let r = AccountRow::encode(a);
        let events = encode_events(events);
        self.run(move |conn, sql| {
            let n = exec(
                conn,
                sql.update_account,
                &[&r.secrets, &r.config, &r.status, &r.updated_at, &r.id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if drop_credentials {
                exec(conn, sql.delete_account_credentials, &[&r.id])?;
            }
            append(conn, sql, &events)
        })
        .await
    }

    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
        let id = id.to_string();
        self.run(move |conn, sql| {
            exec(conn, sql.delete_family_credentials, &[&id, &id])?;
            exec(conn, sql.delete_child_accounts, &[&id])?;
            Ok(exec(conn, sql.delete_account, &[&id])? > 0)
        })
        .await
    }

    async fn credential(&self, id: &AccountId, c: Credential) -> StoreResult<Option<CredentialState>> {
        let (a, k) = (id.to_string(), c.as_str());
        self.run(move |conn, sql| Ok(rows(conn, sql.select_credential, &[&a, &k], credential_of)?.pop()))
            .await
    }

    async fn accounts_page(&self, q: &AccountQuery) -> StoreResult<Vec<StoredAccount>> {
        let b = page_binds(q);
        let limit = q.limit;
        self.run(move |conn, sql| rows(conn, sql.select_accounts_page, &page_params(&b, &limit), account_of))
            .await
    }

    async fn credentials_between(&self, first: &AccountId, last: &AccountId) -> StoreResult<Vec<CredentialState>> {
        let (f, l) = (first.to_string(), last.to_string());
        self.run(move |conn, sql| rows(conn, sql.select_credentials_between, &[&f, &l], credential_of))
            .await
    }

    async fn credentials(&self, id: &AccountId) -> StoreResult<Vec<CredentialState>> {
        let a = id.to_string();
        self.run(move |conn, sql| rows(conn, sql.select_credentials, &[&a], credential_of))
            .await
    }

    async fn try_lease(
        &self,
        id: &AccountId,
        c: Credential,
        owner: &str,
        seen_version: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let (a, k, o) = (id.to_string(), c.as_str(), owner.to_owned());
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            conn.commit().map_err(map_err)?;
            Ok(exec(conn, sql.take_lease, &[&o, &lease_ms, &a, &k, &seen_version])? == 1)
        })
        .await
    }

    async fn complete_refresh(&self, w: &RefreshWrite<'_>) -> StoreResult<Option<i64>> {
        let (a, k, o, v) = (
            w.account.to_string(),
            w.credential.as_str(),
            w.owner.to_owned(),
            w.value.as_str().to_owned(),
        );
        let (expires_at, refreshed_at, due_at) = (w.expires_at, w.refreshed_at, w.due_at);
        let (h, previous_until) = (w.value_hash.to_owned(), w.previous_until);
        let secrets = w.account_secrets.map(|s| s.as_str().to_owned());
        let events = encode_events(w.events);
        self.run(move |conn, sql| {
            let n = exec(
                conn,
                sql.complete_refresh,
                &[&previous_until, &h, &v, &expires_at, &refreshed_at, &due_at, &a, &k, &o],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let version = version_of(conn, sql, &a, k)?;
            if let Some(s) = &secrets {
                exec(conn, sql.update_account_secrets, &[s, &refreshed_at, &a])?;
            }
            append(conn, sql, &events)?;
            Ok(Some(version))
        })
        .await
    }

    async fn record_failure(&self, w: &FailureWrite<'_>) -> StoreResult<bool> {
        let (a, k, o, m) = (
            w.account.to_string(),
            w.credential.as_str(),
            w.owner.to_owned(),
            w.error.errmsg.clone(),
        );
        let (errcode, at) = (w.error.errcode, w.error.at);
        let (blocked, due, attempts) = (w.blocked_until, w.due_at, w.attempts);
        let events = encode_events(w.events);
        self.run(move |conn, sql| {
            let n = exec(
                conn,
                sql.record_failure,
                &[&errcode, &m, &at, &blocked, &due, &attempts, &a, &k, &o],
            )?;
            if n == 1 {
                append(conn, sql, &events)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn put_pushed(&self, w: &PushWrite<'_>) -> StoreResult<Option<i64>> {
        let (a, k, v) = (
            w.account.to_string(),
            w.credential.as_str(),
            w.value.as_str().to_owned(),
        );
        let (expires_at, at, stale_at) = (w.expires_at, w.at, w.stale_at);
        let events = encode_events(w.events);
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            let version = if exec(conn, sql.put_pushed, &[&v, &expires_at, &at, &stale_at, &a, &k, &at])? == 0 {
                None
            } else {
                Some(version_of(conn, sql, &a, k)?)
            };
            append(conn, sql, &events)?;
            Ok(version)
        })
        .await
    }

    async fn mark_pushed_stale(
        &self,
        id: &AccountId,
        c: Credential,
        version: i64,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let (a, k) = (id.to_string(), c.as_str());
        let events = encode_events(events);
        self.run(move |conn, sql| {
            let n = exec(conn, sql.mark_pushed_stale, &[&a, &k, &version])?;
            if n == 1 {
                append(conn, sql, &events)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn try_mark_forced(&self, id: &AccountId, c: Credential, interval_ms: i64) -> StoreResult<bool> {
        let (a, k) = (id.to_string(), c.as_str());
        self.run(move |conn, sql| {
            ensure_row(conn, sql, &a, k)?;
            conn.commit().map_err(map_err)?;
            Ok(exec(conn, sql.mark_forced, &[&a, &k, &interval_ms])? == 1)
        })
        .await
    }

    async fn record_verdict(&self, id: &AccountId, c: Credential, version: i64, verdict: Verdict) -> StoreResult<bool> {
        let (a, k) = (id.to_string(), c.as_str());
        let alive = i64::from(verdict.alive);
        self.run(move |conn, sql| Ok(exec(conn, sql.record_verdict, &[&verdict.at, &alive, &a, &k, &version])? == 1))
            .await
    }

    async fn try_force_today(
        &self,
        id: &AccountId,
        c: Credential,
        max: i64,
        spent_events: &[NewEvent],
    ) -> StoreResult<ForceBudget> {
        let (a, k) = (id.to_string(), c.as_str());
        let events = encode_events(spent_events);
        self.run(move |conn, sql| {
            if exec(conn, sql.force_today, &[&a, &k, &max])? == 1 {
                return Ok(ForceBudget::Granted);
            }
            let first = exec(conn, sql.force_spent_once, &[&a, &k, &max])? == 1;
            if first {
                append(conn, sql, &events)?;
            }
            Ok(ForceBudget::Spent { first })
        })
        .await
    }

    async fn clear_blocks(&self, id: &AccountId, now: i64) -> StoreResult<()> {
        let a = id.to_string();
        self.run(move |conn, sql| {
            exec(conn, sql.clear_blocks_filled, &[&now, &a])?;
            exec(conn, sql.clear_blocks_empty, &[&a]).map(drop)
        })
        .await
    }

    async fn due(&self, now: i64, limit: i64) -> StoreResult<Vec<CredentialState>> {
        self.run(move |conn, sql| rows(conn, sql.select_due, &[&now, &now, &limit], credential_of))
            .await
    }

    async fn credential_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<CredentialState>> {
        let h = hash.to_owned();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_by_hash, &[&h, &h, &now], credential_of)?.pop()))
            .await
    }

    async fn reseal_account(&self, read: &StoredAccount, secrets: &Sealed) -> StoreResult<bool> {
        let (s, id, at) = (secrets.as_str().to_owned(), read.id.to_string(), read.updated_at);
        self.run(move |conn, sql| Ok(exec(conn, sql.reseal_account, &[&s, &id, &at])? == 1))
            .await
    }

    async fn reseal_value(&self, read: &CredentialState, value: &Sealed) -> StoreResult<bool> {
        let (v, a, k, version) = (
            value.as_str().to_owned(),
            read.account.to_string(),
            read.credential.as_str(),
            read.version,
        );
        self.run(move |conn, sql| Ok(exec(conn, sql.reseal_value, &[&v, &a, &k, &version])? == 1))
            .await
    }

    async fn count_accounts(&self, q: &AccountQuery) -> StoreResult<i64> {
        let b = page_binds(q);
        let limit = q.limit;
        self.run(move |conn, sql| {
            let row = conn
                .query_row(sql.count_accounts, &page_params(&b, &limit))
                .map_err(map_err)?;
            required(row.int(0)?, "count")
        })
        .await
    }

    async fn failing_credentials(&self, limit: i64) -> StoreResult<Vec<CredentialState>> {
        self.run(move |conn, sql| rows(conn, sql.select_failing, &[&limit], credential_of))
            .await
    }
}

#[async_trait]
impl KeyStore for OracleStore {
    async fn keys_page(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<ApiKey>> {
        let after = after.unwrap_or(" ").to_owned();
        self.run(move |conn, sql| rows(conn, sql.select_keys_page, &[&after, &limit], key_of))
            .await
    }

    async fn key_checks(&self) -> StoreResult<Vec<KeyCheck>> {
        self.run(|conn, sql| rows(conn, sql.select_key_checks, &[], check_of))
            .await
    }

    async fn add_key_check(&self, c: &KeyCheck, now: i64) -> StoreResult<()> {
        let (id, check) = (c.key_id.clone(), c.check.as_str().to_owned());
        self.run(
            move |conn, sql| match exec(conn, sql.insert_key_check, &[&id, &check, &now]) {
                Ok(_) | Err(StoreError::Conflict) => Ok(()),
                Err(e) => Err(e),
            },
        )
        .await
    }

    async fn remove_key_check(&self, key_id: &str) -> StoreResult<()> {
        let id = key_id.to_owned();
        self.run(move |conn, sql| exec(conn, sql.delete_key_check, &[&id]).map(drop))
            .await
    }

    async fn insert_key(&self, k: &ApiKey) -> StoreResult<()> {
        let k = KeyRow::encode(k);
        self.run(move |conn, sql| exec(conn, sql.insert_key, &[&k.name, &k.hash, &k.accounts, &k.created_at]).map(drop))
            .await
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let h = hash.to_owned();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_key_by_hash, &[&h], key_of)?.pop()))
            .await
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        let n = name.to_owned();
        self.run(move |conn, sql| Ok(exec(conn, sql.delete_key, &[&n])? > 0))
            .await
    }
}

#[async_trait]
impl EventStore for OracleStore {
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        let events = encode_events(events);
        self.run(move |conn, sql| append(conn, sql, &events)).await
    }

    async fn events(&self, q: &EventQuery) -> StoreResult<Vec<Event>> {
        let f = event_filters(q);
        let (after, limit) = (q.after, q.limit);
        self.run(move |conn, sql| {
            rows(
                conn,
                sql.select_events,
                &[
                    &after, &f.like, &f.like, &f.account, &f.account, &f.family, &f.family, &limit,
                ],
                event_of,
            )
        })
        .await
    }

    async fn event(&self, id: i64) -> StoreResult<Option<Event>> {
        self.run(move |conn, sql| Ok(rows(conn, sql.select_event, &[&id], event_of)?.pop()))
            .await
    }

    async fn purge_events(&self, before: i64) -> StoreResult<u64> {
        self.run(move |conn, sql| {
            let n = exec(conn, sql.purge_events, &[&before])?;
            exec(conn, sql.purge_deliveries, &[&before])?;
            exec(conn, sql.purge_audit, &[&before])?;
            Ok(n)
        })
        .await
    }

    async fn insert_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let r = WebhookRow::encode(w);
        self.run(move |conn, sql| {
            exec(
                conn,
                sql.insert_webhook,
                &[
                    &r.name,
                    &r.url,
                    &r.events,
                    &r.accounts,
                    &r.format,
                    &r.secret,
                    &r.created_at,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.run(|conn, sql| rows(conn, sql.select_webhooks, &[], webhook_of))
            .await
    }

    async fn webhook(&self, name: &str) -> StoreResult<Option<Webhook>> {
        let n = name.to_owned();
        self.run(move |conn, sql| Ok(rows(conn, sql.select_webhook, &[&n], webhook_of)?.pop()))
            .await
    }

    async fn delete_webhook(&self, name: &str) -> StoreResult<bool> {
        let n = name.to_owned();
        self.run(move |conn, sql| {
            let gone = exec(conn, sql.delete_webhook, &[&n])? > 0;
            exec(conn, sql.delete_webhook_deliveries, &[&n])?;
            Ok(gone)
        })
        .await
    }

    async fn fan_out(&self, webhook: &str, from: i64, to: i64, event_ids: &[i64], now: i64) -> StoreResult<bool> {
        let (w, ids) = (webhook.to_owned(), event_ids.to_vec());
        self.run(move |conn, sql| {
            if exec(conn, sql.move_cursor, &[&to, &w, &from])? != 1 {
                return Ok(false);
            }
            for id in &ids {
                exec(conn, sql.insert_delivery, &[&w, id, &now, &now, &now])?;
            }
            Ok(true)
        })
        .await
    }

    async fn due_deliveries(&self, webhook: &str, now: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
        let w = webhook.to_owned();
        self.run(move |conn, sql| rows(conn, sql.select_due_deliveries, &[&w, &now, &limit], delivery_of))
            .await
    }

    async fn try_lease_delivery(&self, webhook: &str, event_id: i64, owner: &str, lease_ms: i64) -> StoreResult<bool> {
        let (w, o) = (webhook.to_owned(), owner.to_owned());
        self.run(move |conn, sql| Ok(exec(conn, sql.take_delivery_lease, &[&o, &lease_ms, &w, &event_id])? == 1))
            .await
    }

    async fn record_attempt(&self, a: &AttemptWrite<'_>) -> StoreResult<bool> {
        let (w, o, st) = (a.webhook.to_owned(), a.owner.to_owned(), a.status.as_str());
        let (event_id, attempts, next_at, updated_at, last_status) =
            (a.event_id, a.attempts, a.next_at, a.updated_at, a.last_status);
        let last_error = a.last_error.map(str::to_owned);
        self.run(move |conn, sql| {
            Ok(exec(
                conn,
                sql.record_attempt,
                &[
                    &st,
                    &attempts,
                    &next_at,
                    &updated_at,
                    &last_status,
                    &last_error,
                    &w,
                    &event_id,
                    &o,
                ],
            )? == 1)
        })
        .await
    }

    async fn deliveries(
        &self,
        webhook: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let w = webhook.to_owned();
        let status = status.map(|s| s.as_str().to_owned());
        self.run(move |conn, sql| {
            rows(
                conn,
                sql.select_deliveries,
                &[&w, &after, &status, &status, &limit],
                delivery_of,
            )
        })
        .await
    }

    async fn retry_delivery(&self, webhook: &str, event_id: i64, now: i64) -> StoreResult<bool> {
        let w = webhook.to_owned();
        self.run(move |conn, sql| Ok(exec(conn, sql.retry_delivery, &[&now, &now, &now, &w, &event_id])? == 1))
            .await
    }

    async fn reseal_webhook(&self, read: &Webhook, secret: &Sealed, url: &Sealed) -> StoreResult<bool> {
        let (s, u, n, old) = (
            secret.as_str().to_owned(),
            url.as_str().to_owned(),
            read.name.clone(),
            read.secret.as_str().to_owned(),
        );
        self.run(move |conn, sql| Ok(exec(conn, sql.reseal_webhook, &[&s, &u, &n, &old])? == 1))
            .await
    }

    async fn oldest_pending_delivery(&self) -> StoreResult<Option<i64>> {
        self.run(|conn, sql| {
            let row = conn.query_row(sql.select_oldest_pending, &[]).map_err(map_err)?;
            row.int(0)
        })
        .await
    }

    async fn last_event_id(&self) -> StoreResult<i64> {
        self.run(|conn, sql| {
            let row = conn.query_row(sql.select_event_seq, &[]).map_err(map_err)?;
            required(row.int(0)?, "last_id")
        })
        .await
    }
}

#[async_trait]
impl AuditStore for OracleStore {
    async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let r = AuditRow::encode(e);
        self.run(move |conn, sql| {
            exec(
                conn,
                sql.insert_audit,
                &[
                    &r.id,
                    &r.called_at,
                    &r.key_name,
                    &r.account_id,
                    &r.method,
                    &r.path,
                    &r.status,
                    &r.errcode,
                    &r.rid,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn audit_page(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let b = audit_binds(q);
        let limit = q.limit;
        self.run(move |conn, sql| {
            rows(
                conn,
                sql.select_audit,
                &[&b.after, &b.from, &b.key, &b.key, &b.account, &b.account, &limit],
                audit_of,
            )
        })
        .await
    }
}

#[async_trait]
impl SessionStore for OracleStore {
    async fn insert_session(&self, hash: &str, created_at: i64, expires_at: i64) -> StoreResult<()> {
        let h = hash.to_owned();
        self.run(move |conn, sql| exec(conn, sql.insert_session, &[&h, &created_at, &expires_at]).map(drop))
            .await
    }

    async fn session_expiry(&self, hash: &str) -> StoreResult<Option<i64>> {
        let h = hash.to_owned();
        self.run(move |conn, sql| {
            let found = rows(conn, sql.select_session, &[&h], |r| required(r.int(0)?, "expires_at"))?;
            Ok(found.into_iter().next())
        })
        .await
    }

    async fn delete_session(&self, hash: &str) -> StoreResult<bool> {
        let h = hash.to_owned();
        self.run(move |conn, sql| Ok(exec(conn, sql.delete_session, &[&h])? > 0))
            .await
    }

    async fn purge_sessions(&self, now: i64) -> StoreResult<u64> {
        self.run(move |conn, sql| exec(conn, sql.purge_sessions, &[&now])).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_connect_strings() {
        assert_eq!(
            parse_url("oracle://wt:p%40ss@db.example.com:1521/ORCLPDB1").unwrap(),
            ("wt".into(), "p@ss".into(), "//db.example.com:1521/ORCLPDB1".into())
        );
        assert!(parse_url("oracle://db:1521/x").is_err());
        assert!(parse_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn error_codes_map_to_store_errors() {
        assert!(matches!(
            classify(Some(1), "ORA-00001: unique constraint"),
            StoreError::Conflict
        ));
        assert!(matches!(
            classify(Some(12541), "ORA-12541: no listener"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(Some(3113), "ORA-03113: end-of-file"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(Some(942), "ORA-00942: table or view does not exist"),
            StoreError::Other(_)
        ));
        match classify(
            None,
            "DPI Error: DPI-1047: Cannot locate a 64-bit Oracle Client library",
        ) {
            StoreError::Unavailable(m) => assert!(m.contains("Instant Client") && m.contains("LD_LIBRARY_PATH")),
            other => panic!("{other:?}"),
        }
    }
}
