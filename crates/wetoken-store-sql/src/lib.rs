//! # wetoken-store-sql
//!
//! What wetoken's SQL backends share, written once:
//!
//! - [`statements`]: every SQL statement, in one canonical text rewritten per
//!   dialect (SQLite, MySQL/MariaDB, PostgreSQL, Oracle);
//! - [`query`]: the binds of the paged queries;
//! - [`rows`]: rows as the database holds them and the one place where they
//!   become domain types (a row that does not decode is an error);
//! - [`columns`]: reading each table's columns into those rows;
//! - [`SqlStore`]: the one `Store` implementation, every transaction written
//!   once over the small [`tx::Tx`] interface (execute, fetch, typed binds)
//!   of a [`tx::Backend`];
//! - `SqlxBackend` (with a sqlx feature): that interface over a sqlx pool,
//!   for each sqlx database whose cargo feature is on (`sqlite`, `mysql`,
//!   `postgres`), with error mapping and deadlock retry.
//!
//! A backend crate (`wetoken-store-sqlite`, `-mysql`, `-postgres`) owns only
//! its connection options and its migrations (`migrations/<backend>/`, the
//! same version numbers and names in every backend). The Oracle backend,
//! whose driver is not sqlx, implements [`tx::Backend`] over its own
//! session pool, one blocking task per transaction, and so runs the same
//! `SqlStore`; every backend passes the conformance suite
//! (`crates/wetoken-store-tests`).

pub mod columns;
mod dialect;
pub mod query;
pub mod rows;
#[cfg(any(feature = "sqlite", feature = "mysql", feature = "postgres"))]
mod sqlx_backend;
pub mod statements;
mod store;
pub mod tx;

#[cfg(any(feature = "sqlite", feature = "mysql", feature = "postgres"))]
pub use sqlx_backend::*;
pub use statements::{Dialect, Statements};
pub use store::SqlStore;
