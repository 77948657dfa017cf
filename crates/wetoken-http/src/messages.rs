//! Receiving URLs for users' messages and events (SPEC §14):
//! `GET|POST /callback/mp/{appid}`, an Official Account's or Mini
//! Program's server configuration, in each of WeChat's modes (plaintext,
//! compatible, safe) and formats (XML, JSON). They authenticate with
//! WeChat's signature over the account's `token` (and its `aes_key` for
//! what is encrypted), never with a key. Order of checks: the id (400),
//! the body within the limit (413), the timestamp window (401), the
//! signature (401; an account without a token, or none at all, answers the
//! same), then the message (400); it is recorded as one event however often
//! WeChat retries it, committed before `success` is answered.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawPathParams, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value};
use wetoken_core::domain::AccountId;
use wetoken_core::events::CallbackSource;
use wetoken_core::msgcrypt::{CryptError, MsgCrypt, sha1_sorted};
use wetoken_core::secret::ct_eq;
use wetoken_core::service::ServiceError;
use wetoken_core::service::messages::Pushed;
use wetoken_core::wxml;

use crate::AppState;
use crate::callback::{check_time, success, unauthorized, xml_error};
use crate::error::ApiError;
use crate::extract::{AccountPath, RawQuery, read_body};

pub fn routes() -> Router<AppState> {
    Router::new().route("/callback/mp/{appid}", get(verify_url).post(pushed))
}

fn bad_signature() -> ApiError {
    unauthorized("signature does not match")
}

/// The account's token and crypto; an account wetoken does not know, or
/// one without a token, answers like a bad signature (SPEC §4: no oracle).
async fn receiver(st: &AppState, id: &AccountId) -> Result<(String, Option<MsgCrypt>), ApiError> {
    match st.service.messages.receiver(id).await {
        Ok(r) => Ok(r),
        Err(ServiceError::NotFound(_)) => Err(bad_signature()),
        Err(e) => Err(e.into()),
    }
}

/// The plain signature of a request (`signature` over token, timestamp,
/// nonce), the timestamp within the window.
fn check_plain(st: &AppState, token: &str, q: &HashMap<String, String>) -> Result<(), ApiError> {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(signature), Some(timestamp), Some(nonce)) = (param("signature"), param("timestamp"), param("nonce"))
    else {
        return Err(unauthorized("signature, timestamp and nonce are required"));
    };
    check_time(st, timestamp)?;
    if ct_eq(sha1_sorted(&[token, timestamp, nonce]).as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(bad_signature())
    }
}

/// `GET /callback/mp/{appid}?signature&timestamp&nonce&echostr`: WeChat's
/// check of the URL, in every mode: `echostr` back as it came.
async fn verify_url(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let echostr = q
        .get("echostr")
        .filter(|e| !e.is_empty() && e.len() <= 512)
        .ok_or_else(|| ApiError::invalid("echostr is required"))?;
    let (token, _) = receiver(&st, &id).await?;
    check_plain(&st, &token, &q)?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], echostr.clone()).into_response())
}

/// A message's top-level fields, from WeChat's XML or JSON.
fn fields_of(text: &str) -> Result<(Map<String, Value>, bool), ApiError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(m)) => Ok((m, false)),
            _ => Err(ApiError::invalid("the body is not a JSON object")),
        }
    } else {
        wxml::tree(text).map(|m| (m, true)).map_err(xml_error)
    }
}

/// `POST /callback/mp/{appid}`: a user's message or event. With
/// `encrypt_type=aes` (compatible and safe modes) its `Encrypt` is checked
/// against `msg_signature` and opened; otherwise (plaintext mode) the
/// request's `signature` is checked.
async fn pushed(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let bytes = read_body(body, st.max_body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    let (token, crypt) = receiver(&st, &id).await?;
    let encrypted = q.get("encrypt_type").is_some_and(|t| t == "aes");
    let plain = if encrypted {
        let crypt = crypt.ok_or_else(bad_signature)?;
        let (envelope, _) = fields_of(text)?;
        let encrypt = envelope
            .get("Encrypt")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::invalid("no Encrypt in the body"))?;
        let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let (Some(signature), Some(timestamp), Some(nonce)) =
            (param("msg_signature"), param("timestamp"), param("nonce"))
        else {
            return Err(unauthorized("msg_signature, timestamp and nonce are required"));
        };
        check_time(&st, timestamp)?;
        crypt.open(signature, timestamp, nonce, encrypt).map_err(|e| match e {
            CryptError::Signature => bad_signature(),
            CryptError::ReceiveId => unauthorized("the message is addressed to another appid"),
            other => ApiError::invalid(other.to_string()),
        })?
    } else {
        check_plain(&st, &token, &q)?;
        text.to_owned()
    };
    let (fields, xml) = fields_of(&plain)?;
    let msg = Pushed {
        fields,
        text: plain,
        xml,
        source: CallbackSource {
            query: uri.query().unwrap_or_default().to_owned(),
            content_type: headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: text.to_owned(),
        },
    };
    st.service.messages.received(&id, &msg).await?;
    Ok(success())
}
