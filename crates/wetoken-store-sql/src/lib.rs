//! # wetoken-store-sql
//!
//! What wetoken's SQL backends share, written once:
//!
//! - [`statements`]: every SQL statement, in one canonical text rewritten per
//!   dialect (SQLite, MySQL/MariaDB, PostgreSQL, Oracle);
//! - [`rows`]: rows as the database holds them and the one place where they
//!   become domain types (a row that does not decode is an error);
//! - `SqlStore` (with a sqlx feature): the one `Store` implementation over
//!   sqlx, compiled for each sqlx database whose cargo feature is on
//!   (`sqlite`, `mysql`, `postgres`), with row mapping and error mapping.
//!
//! A backend crate (`wetoken-store-sqlite`, `-mysql`, `-postgres`) owns only
//! its connection options and its migrations (`migrations/<backend>/`, the
//! same version numbers and names in every backend). The Oracle backend,
//! which is not sqlx, shares [`statements`], [`rows`] and the conformance
//! suite (`crates/wetoken-store-tests`).

pub mod rows;
#[cfg(any(feature = "sqlite", feature = "mysql", feature = "postgres"))]
mod sqlx_store;
pub mod statements;

#[cfg(any(feature = "sqlite", feature = "mysql", feature = "postgres"))]
pub use sqlx_store::*;
pub use statements::{Dialect, Statements};
