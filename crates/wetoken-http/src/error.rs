//! The one mapping from every error to its HTTP answer: [`ApiError`] for the
//! native API (SPEC §3: `{"error": "<code>", "message": "…"}` plus
//! `"upstream"` when WeChat said no), [`WxError`] for WeChat-shaped routes
//! (SPEC §6: `{"errcode", "errmsg"}` with HTTP 200).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use wetoken_core::auth::AuthError;
use wetoken_core::domain::{AccountId, Credential, ParseError};
use wetoken_core::service::ServiceError;
use wetoken_core::store::StoreError;
use wetoken_core::upstream::UpstreamError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub upstream: Option<(i64, String)>,
    /// Quota clears used this month, on clear_quota's refusal.
    pub used_this_month: Option<u32>,
    /// Seconds for a `Retry-After` header (a throttled source).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            upstream: None,
            used_this_month: None,
            retry_after: None,
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

/// The body of every `/v1` error (SPEC §3).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
    /// What WeChat answered, when the error is WeChat's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_this_month: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct UpstreamErrorBody {
    pub errcode: i64,
    pub errmsg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            upstream: self
                .upstream
                .map(|(errcode, errmsg)| UpstreamErrorBody { errcode, errmsg }),
            used_this_month: self.used_this_month,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
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
            ServiceError::TicketMissing { ref account, ticket } => {
                let hint = ticket_hint(account, ticket);
                ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", format!("{e}: {hint}"))
            }
            ServiceError::Upstream(u) => upstream(u),
            ServiceError::Store(s) => store(s),
        }
    }
}

/// Where WeChat sends a pushed ticket: this server's callback route.
fn ticket_hint(account: &AccountId, ticket: Credential) -> String {
    match (account, ticket) {
        (AccountId::Component { appid }, _) => {
            format!("WeChat pushes one every 10 minutes to the authorization event URL /callback/component/{appid}")
        }
        (AccountId::Suite { suite_id }, _) => {
            format!("WeCom pushes one every 10 minutes to the instruction callback URL /callback/suite/{suite_id}")
        }
        (_, t) => format!("WeChat pushes {t} to this server's callback URL"),
    }
}

pub fn upstream(u: UpstreamError) -> ApiError {
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
        StoreError::Corrupt(_) | StoreError::Other(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            AuthError::Throttled { retry_after_secs } => {
                let mut a = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
                a.retry_after = Some(retry_after_secs);
                a
            }
            AuthError::Store(s) => store(s),
        }
    }
}

/// WeChat's error answer: `{"errcode": …, "errmsg": …}` with HTTP 200.
#[derive(Debug)]
pub struct WxError {
    pub errcode: i64,
    pub errmsg: String,
}

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        Json(json!({"errcode": self.errcode, "errmsg": self.errmsg})).into_response()
    }
}

pub fn wx_error(errcode: i64, errmsg: impl Into<String>) -> WxError {
    WxError {
        errcode,
        errmsg: errmsg.into(),
    }
}

impl From<ServiceError> for WxError {
    /// A service error in WeChat's terms.
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Upstream(u) => wx_error(u.errcode(), u.errmsg()),
            ServiceError::NotFound(m) => wx_error(40013, format!("invalid appid: {m}")),
            ServiceError::Invalid(m) => wx_error(40097, format!("invalid args: {m}")),
            ServiceError::RateLimited(m) => wx_error(45011, m),
            e @ (ServiceError::Unavailable(_) | ServiceError::TicketMissing { .. }) => {
                wx_error(-1, format!("system error: {e}"))
            }
            ServiceError::Conflict(m) => wx_error(-1, m),
            ServiceError::Store(_) => wx_error(-1, "system error"),
        }
    }
}
