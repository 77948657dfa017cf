//! The small interface every SQL backend implements, so that each
//! transaction is written once (in `SqlStore`) for all of them.
//!
//! A backend hands out a [`Tx`]: a connection inside a transaction, or a
//! connection in autocommit for single statements. A `Tx` runs a statement
//! with typed binds ([`Bind`]: every column is an integer or a text) and
//! reads rows through [`Columns`]. The sqlx databases implement it in
//! `crate::sqlx_backend`; Oracle, whose driver blocks, implements it in its
//! crate and runs each transaction as one blocking task.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use wetoken_core::store::{Schema, StoreError, StoreResult};

use crate::statements::Statements;

/// A value bound to a `?` of a statement. Every column wetoken stores is an
/// integer or a text, either possibly NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Bind<'_> {
    fn from(v: i64) -> Self {
        Bind::Int(Some(v))
    }
}

impl From<Option<i64>> for Bind<'_> {
    fn from(v: Option<i64>) -> Self {
        Bind::Int(v)
    }
}

impl<'a> From<&'a str> for Bind<'a> {
    fn from(v: &'a str) -> Self {
        Bind::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Bind<'a> {
    fn from(v: &'a String) -> Self {
        Bind::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Bind<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Bind::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Bind<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Bind::Text(v.as_deref())
    }
}

/// The binds of a statement, in the order of its `?`: `binds![a, b, c]`.
#[macro_export]
macro_rules! binds {
    ($($v:expr),* $(,)?) => {
        [$($crate::tx::Bind::from($v)),*]
    };
}

/// A row being read: column `i` (0-based, in the statement's select order)
/// as an integer or a text.
pub trait Columns {
    fn int(&self, i: usize) -> StoreResult<Option<i64>>;
    fn text(&self, i: usize) -> StoreResult<Option<String>>;
}

/// Maps one row to a value.
pub type RowMap<T> = fn(&dyn Columns) -> StoreResult<T>;

/// A connection inside a transaction (or in autocommit, for the single
/// statements the store runs outside one).
#[async_trait]
pub trait Tx: Send {
    /// The statements of this connection's dialect.
    fn sql(&self) -> &'static Statements;

    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, sql: &'static str, binds: &[Bind<'_>]) -> StoreResult<u64>;

    /// Runs a query; every row, mapped.
    async fn fetch<T: Send + 'static>(
        &mut self,
        sql: &'static str,
        binds: &[Bind<'_>],
        map: RowMap<T>,
    ) -> StoreResult<Vec<T>>;

    /// The first row of a query, if any.
    async fn optional<T: Send + 'static>(
        &mut self,
        sql: &'static str,
        binds: &[Bind<'_>],
        map: RowMap<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.fetch(sql, binds, map).await?.into_iter().next())
    }

    /// An integer that a query always returns (a count, a counter): NULL or
    /// no row is a corrupt store.
    async fn int(&mut self, sql: &'static str, binds: &[Bind<'_>]) -> StoreResult<i64> {
        self.optional(sql, binds, |r| r.int(0))
            .await?
            .flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("no value from {}", first_words(sql))))
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
}

/// A future a piece of work returns, borrowing its connection.
pub type TxFuture<'t, R> = Pin<Box<dyn Future<Output = StoreResult<R>> + Send + 't>>;

/// A database a `SqlStore` runs on: where connections come from, and the
/// few things (migrations, schema version, a ping) that differ per driver.
pub trait Backend: Send + Sync + 'static {
    type Tx: Tx;

    /// Runs `work` in one transaction: committed when it returns `Ok`,
    /// rolled back otherwise.
    fn transaction<R, W>(&self, work: W) -> impl Future<Output = StoreResult<R>> + Send
    where
        R: Send + 'static,
        W: for<'t> FnOnce(&'t mut Self::Tx) -> TxFuture<'t, R> + Send + 'static;

    /// Runs `work` on a connection in autocommit: each statement commits on
    /// its own (and one the database aborted as a deadlock victim may run
    /// again).
    fn autocommit<R, W>(&self, work: W) -> impl Future<Output = StoreResult<R>> + Send
    where
        R: Send + 'static,
        W: for<'t> FnOnce(&'t mut Self::Tx) -> TxFuture<'t, R> + Send + 'static;

    fn migrate(&self) -> impl Future<Output = StoreResult<()>> + Send;

    fn schema(&self) -> impl Future<Output = StoreResult<Schema>> + Send;

    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A column that may not be NULL.
pub fn required<T>(v: Option<T>, table: &str, column: &str) -> StoreResult<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("{table}: NULL in {column}")))
}
