//! The one `Store` implementation: every transaction written once, over a
//! [`Backend`]'s [`Tx`], for SQLite, MySQL/MariaDB, PostgreSQL and Oracle.
//!
//! Each method encodes its arguments into owned rows, then hands the
//! backend one piece of work: a transaction when it writes more than one
//! statement or reads back what it wrote (MySQL has no `RETURNING`), or
//! autocommit for a single statement or a read. The lease statements are
//! single conditional statements in autocommit, so they are atomic across
//! processes on every database.

use async_trait::async_trait;
use wetoken_core::events::NewEvent;
use wetoken_core::store::{Schema, Store, StoreResult};

use crate::binds;
use crate::query::PageBinds;
use crate::rows::NewEventRow;
use crate::tx::{Backend, Bind, Tx};

mod accounts;
mod events;
mod keys;
mod session_keys;

/// A `Store` on a [`Backend`].
pub struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        SqlStore { backend }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate().await
    }

    async fn schema(&self) -> StoreResult<Schema> {
        self.backend.schema().await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.backend.ping().await
    }
}

fn encode_events(events: &[NewEvent]) -> Vec<NewEventRow> {
    events.iter().map(NewEventRow::encode).collect()
}

/// The outbox: appends `events` in the caller's transaction. The counter
/// row is taken first (its lock held to commit, so ids increase in commit
/// order; on SQLite the first statement is a write); events already stored
/// by their dedupe hash are skipped, leaving a gap in the ids, which is
/// harmless.
async fn append<T: Tx>(tx: &mut T, events: &[NewEventRow]) -> StoreResult<Vec<(i64, bool)>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let sql = tx.sql();
    let n = events.len() as i64;
    tx.execute(sql.bump_event_seq, &binds![n]).await?;
    let last = tx.int(sql.select_event_seq, &[]).await?;
    let mut ids = Vec::with_capacity(events.len());
    for (i, r) in events.iter().enumerate() {
        let id = last - n + 1 + i as i64;
        let inserted = tx
            .execute(
                sql.insert_event,
                &binds![
                    &r.dedupe,
                    id,
                    &r.event_type,
                    &r.account_id,
                    &r.family_id,
                    r.created_at,
                    &r.data,
                    &r.source
                ],
            )
            .await?;
        match (&r.dedupe, inserted) {
            (Some(d), 0) => {
                // A retry: the event its first push made.
                let first = tx.optional(sql.select_dedupe, &binds![d], crate::columns::int).await?;
                ids.push((first.unwrap_or(id), false));
            }
            _ => ids.push((id, true)),
        }
    }
    Ok(ids)
}

/// Creates a credential's row if it has none, so that conditional updates
/// have a row to test.
async fn ensure_row<T: Tx>(tx: &mut T, account_id: &str, kind: &str) -> StoreResult<()> {
    let sql = tx.sql().insert_credential_if_absent;
    tx.execute(sql, &binds![account_id, kind]).await.map(drop)
}

/// An account page's range and filters, then its limit, in bind order (a
/// page and its bounded count take the same).
fn page<'a>(b: &'a PageBinds, limit: i64) -> [Bind<'a>; 8] {
    binds![
        &b.lower,
        &b.upper,
        &b.after,
        &b.status,
        &b.status,
        &b.not_status,
        &b.not_status,
        limit
    ]
}

/// Runs a block as one piece of work on the store's backend: `mode` is
/// `transaction` or `autocommit`; the block sees the connection as `tx` and
/// its dialect's statements as `sql`, and owns what it names (the work may
/// run on another thread).
macro_rules! work {
    ($store:expr, $mode:ident, |$tx:ident, $sql:ident| $body:block) => {
        $store
            .backend
            .$mode(move |$tx| {
                Box::pin(async move {
                    #[allow(unused_variables)]
                    let $sql = $crate::tx::Tx::sql($tx);
                    $body
                })
            })
            .await
    };
}
use work;
