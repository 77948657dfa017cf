//! The one mapping from every error to its HTTP answer (SPEC §3):
//! `{"error": "<code>", "message": "…"}` plus `"upstream"` when WeChat said no.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wetoken_core::auth::AuthError;
use wetoken_core::domain::ParseError;
use wetoken_core::service::ServiceError;
use wetoken_core::store::StoreError;
use wetoken_core::upstream::UpstreamError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub upstream: Option<(i64, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            upstream: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body over the limit of {limit} bytes"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some((errcode, errmsg)) = self.upstream {
            body["upstream"] = json!({"errcode": errcode, "errmsg": errmsg});
        }
        (self.status, Json::<Value>(body)).into_response()
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError::invalid(e.0)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        match e {
            ServiceError::Invalid(m) => ApiError::invalid(m),
            ServiceError::NotFound(m) => ApiError::not_found(m),
            ServiceError::Conflict(m) => ApiError::new(S::CONFLICT, "conflict", m),
            ServiceError::RateLimited(m) => ApiError::new(S::TOO_MANY_REQUESTS, "rate_limited", m),
            ServiceError::Unavailable(m) => ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", m),
            ServiceError::Upstream(u) => upstream(u),
            ServiceError::Store(s) => store(s),
        }
    }
}

fn upstream(u: UpstreamError) -> ApiError {
    let mut e = ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", u.to_string());
    e.upstream = Some((u.errcode(), u.errmsg()));
    e
}

fn store(s: StoreError) -> ApiError {
    tracing::error!(error = %s, "store error");
    match s {
        StoreError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable",
        ),
        StoreError::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", "already exists"),
        StoreError::NotFound => ApiError::not_found("not found"),
        StoreError::Other(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"),
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            AuthError::Store(s) => store(s),
        }
    }
}
