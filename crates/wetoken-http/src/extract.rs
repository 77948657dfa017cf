//! Request plumbing shared by every route: the body limit and a JSON body
//! that needs no Content-Type header.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// Refuses a declared Content-Length over the limit. Bodies without a length
/// are capped while read (see [`read_body`]).
pub async fn limit_body(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body as u64) {
        let _ = read_body(req.into_body(), st.max_body).await;
        return ApiError::too_large(st.max_body).into_response();
    }
    next.run(req).await
}

/// Reads a whole body, at most `limit` bytes. An oversized body is read on
/// and discarded up to a cap before the 413 goes out: a client still
/// sending when the server closes would otherwise see a reset instead of
/// the answer.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let cap = limit.saturating_mul(4).max(8 << 20);
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::invalid("the request body could not be read to its end"));
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > cap {
                break;
            }
        }
    }
    if seen > limit {
        Err(ApiError::too_large(limit))
    } else {
        Ok(Bytes::from(buf))
    }
}

/// A JSON body (object or empty). Accepted with any or no Content-Type.
pub struct JsonBody(pub Option<Value>);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req.into_body(), st.max_body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("body is not valid JSON: {e}")))?;
        Ok(JsonBody(Some(v)))
    }
}

impl JsonBody {
    /// The body, which must be present.
    pub fn required(self) -> Result<Value, ApiError> {
        self.0.ok_or_else(|| ApiError::invalid("a JSON body is required"))
    }
}
