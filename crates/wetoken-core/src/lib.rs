//! # wetoken-core
//!
//! The domain of wetoken and everything that does not speak HTTP:
//!
//! - [`domain`]: account ids, kinds and credentials, parsed once at the edge;
//! - [`account`]: accounts and the one parser of account requests;
//! - [`store`]: the `Store` trait every database backend implements, in
//!   domain types (its conformance suite lives in `wetoken-store-tests`);
//! - [`upstream`]: the WeChat/WeCom client (reqwest + rustls, timeouts);
//! - [`service`]: the credential service — cache, single flight, lease,
//!   compare-and-refresh, the proactive scheduler — and account and key
//!   management;
//! - [`auth`], [`keys`]: API keys and who may read what;
//! - [`msgcrypt`], [`wxml`]: WeChat's callback crypto (WXBizMsgCrypt) and XML;
//! - [`secret`]: secrets that never print, sealed at rest with AES-256-GCM;
//! - [`clock`]: injected time; [`timing`]: when to refresh and back off;
//!   [`jssdk`]: JS-SDK signatures.
//!
//! This crate never opens a socket to listen and never names a database:
//! HTTP lives in `wetoken-http`, SQL in the `wetoken-store-*` crates.
//!
//! ```no_run
//! # async fn demo(engine: wetoken_core::service::CredentialEngine) -> Result<(), Box<dyn std::error::Error>> {
//! use wetoken_core::domain::{AccountId, Credential};
//! let id: AccountId = "mp:wx1234567890".parse()?;
//! let token = engine.get(&id, Credential::AccessToken).await?;
//! println!("{} expires at {}", token.value, token.expires_at);
//! # Ok(()) }
//! ```

pub mod account;
pub mod apisec;
pub mod auth;
pub mod clock;
pub mod domain;
pub mod events;
pub mod jssdk;
pub mod keys;
pub mod msgcrypt;
pub mod secret;
pub mod service;
pub mod store;
pub mod timing;
pub mod upstream;
pub mod urlenc;
pub mod wxml;
