//! # wetoken-http
//!
//! wetoken's HTTP surface as an axum [`Router`]: the native `/v1` API
//! (SPEC §3), authentication (SPEC §4) and the operations endpoints.
//! Mount [`router`] in an existing axum application to embed wetoken.
//!
//! Every error leaves through [`error::ApiError`], so every failure has the
//! same JSON shape; every body is read through [`extract`], so the body
//! limit holds everywhere.

pub mod error;
pub mod extract;
mod native;
mod ops;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use wetoken_core::auth::{Authenticator, Principal};
use wetoken_core::domain::AccountId;
use wetoken_core::service::CredentialService;

use crate::error::ApiError;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub service: CredentialService,
    pub auth: Arc<Authenticator>,
    pub max_body: usize,
}

impl AppState {
    pub async fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let h = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        Ok(self.auth.authenticate(h).await?)
    }

    /// The admin key (or auth off).
    pub async fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.principal(headers).await?.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this endpoint needs the admin key"))
        }
    }
}

/// A caller that may read `id`.
pub fn authorize(p: &Principal, id: &AccountId) -> Result<(), ApiError> {
    if p.may_read(id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("this key does not cover {id}")))
    }
}

/// The whole wetoken HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(native::routes())
        .merge(ops::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), extract::limit_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
