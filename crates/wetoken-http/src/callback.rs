//! Callbacks from WeChat (SPEC §5). They authenticate with WeChat's
//! msg_signature, not with a key. Order of checks: parse the id (400), read
//! the body within the limit (413), refuse any DTD (400), parse the envelope
//! (400), the timestamp window (401), the signature (401), decrypt and the
//! receive id (401/400), then hand the message to core, which acts on it
//! and records it as an event in the same transaction. A refused callback
//! changes nothing; everything is committed before `success` is answered.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, RawPathParams, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wetoken_core::domain::AccountId;
use wetoken_core::events::CallbackSource;
use wetoken_core::msgcrypt::MsgCrypt;
use wetoken_core::service::ServiceError;
use wetoken_core::service::callbacks::Callback;
use wetoken_core::wxml::{self, XmlError};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AccountPath, RawQuery, read_body};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/callback/component/{component_appid}", post(pushed))
        .route("/callback/component/{component_appid}/authorized", get(landing))
        // WeCom checks a suite's instruction URL as it checks its data URL:
        // the echostr is sealed for the provider's corpid (contract-2 §B.6).
        .route(
            "/callback/suite/{suite_id}",
            get(crate::messages::verify_encrypted_url).post(pushed),
        )
}

pub(crate) fn xml_error(e: XmlError) -> ApiError {
    ApiError::invalid(e.to_string())
}

pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Runs every check of a pushed, encrypted message to account `id`, and
/// returns it with the request it came in (for `wechat` webhooks).
async fn verify(
    st: &AppState,
    id: &AccountId,
    q: &HashMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Callback, ApiError> {
    let bytes = read_body(body, st.max_body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    let envelope = wxml::fields(text).map_err(xml_error)?;
    let encrypt = envelope
        .get("Encrypt")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("no Encrypt element: wetoken accepts only encrypted (safe mode) callbacks"))?;
    let plain = open(st, id, q, encrypt).await?;
    let fields = wxml::fields(&plain).map_err(xml_error)?;
    Ok(Callback {
        fields,
        source: source_of(uri, headers, text),
        encrypted: encrypt.clone(),
        xml: plain,
    })
}

/// The timestamp window and the signature of `encrypt` (with the callback
/// crypto of account `id`), then its plaintext, sealed for that account.
async fn open(st: &AppState, id: &AccountId, q: &HashMap<String, String>, encrypt: &str) -> Result<String, ApiError> {
    // An account wetoken does not know answers like a bad signature: no
    // oracle for which accounts exist (SPEC §4).
    let crypt = match st.service.platforms.callback_crypt(id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound(_)) => return Err(bad_signature()),
        Err(e) => return Err(e.into()),
    };
    let (plain, receive_id) = open_any(st, &crypt, q, encrypt)?;
    if receive_id != crypt.receive_id() {
        return Err(unauthorized("the message is addressed to another appid"));
    }
    Ok(plain)
}

pub(crate) fn bad_signature() -> ApiError {
    unauthorized("signature does not match")
}

/// `msg_signature` over `encrypt` checked (and the timestamp window), then
/// the plaintext and the receive id it was sealed for (every encrypted
/// push and URL check goes through here).
pub(crate) fn open_any(
    st: &AppState,
    crypt: &MsgCrypt,
    q: &HashMap<String, String>,
    encrypt: &str,
) -> Result<(String, String), ApiError> {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(signature), Some(timestamp), Some(nonce)) = (param("msg_signature"), param("timestamp"), param("nonce"))
    else {
        return Err(unauthorized("msg_signature, timestamp and nonce are required"));
    };
    check_time(st, timestamp)?;
    crypt
        .verify(signature, timestamp, nonce, encrypt)
        .map_err(|_| bad_signature())?;
    crypt.decrypt_any(encrypt).map_err(|e| ApiError::invalid(e.to_string()))
}

/// The request as WeChat sent it (for `wechat` webhooks).
pub(crate) fn source_of(uri: &Uri, headers: &HeaderMap, body: &str) -> CallbackSource {
    CallbackSource {
        query: uri.query().unwrap_or_default().to_owned(),
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_owned(),
    }
}

/// A callback's `timestamp` within `WETOKEN_CALLBACK_MAX_SKEW_SECS` of now
/// (SPEC §5), else 401.
pub(crate) fn check_time(st: &AppState, timestamp: &str) -> Result<(), ApiError> {
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| unauthorized("timestamp is not a number"))?;
    // abs_diff: no overflow whatever the timestamp.
    if st.service.engine.now().timestamp().abs_diff(ts) > st.callback_max_skew_secs.unsigned_abs() {
        return Err(unauthorized("timestamp outside the accepted window"));
    }
    Ok(())
}

pub(crate) fn success() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "success").into_response()
}

/// WeChat's CreateTime (WeCom's TimeStamp), seconds, as epoch milliseconds;
/// now when absent.
fn create_time_ms(st: &AppState, m: &HashMap<String, String>) -> i64 {
    m.get("CreateTime")
        .or_else(|| m.get("TimeStamp"))
        .and_then(|t| t.parse::<i64>().ok())
        .map_or_else(
            || st.service.engine.now().timestamp_millis(),
            |s| s.saturating_mul(1000),
        )
}

/// `POST /callback/component/{c}` and `POST /callback/suite/{s}`: every
/// verified message is applied and recorded as an event (core's
/// `service::callbacks`), committed before `success`.
async fn pushed(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let msg = verify(&st, &id, &q, &uri, &headers, body).await?;
    let at = create_time_ms(&st, &msg.fields);
    st.service.platforms.callback(&id, at, &msg).await?;
    Ok(success())
}

#[derive(askama::Template)]
#[template(path = "callback/landing.html")]
struct Landing<'a> {
    title: &'a str,
    detail: &'a str,
}

/// The landing page after an authorization, in both languages.
fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    use askama::Template;
    match (Landing { title, detail }).render() {
        Ok(html) => (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response(),
    }
}

/// `GET /callback/component/{c}/authorized?auth_code=…`: where WeChat sends
/// the administrator after authorizing. Exchanges the code, shows the result.
async fn landing(
    State(st): State<AppState>,
    path: RawPathParams,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = match AccountPath::id(&path) {
        Ok(id) => id,
        Err(e) => return page(StatusCode::BAD_REQUEST, "授权失败 Authorization failed", &e.message),
    };
    let Some(code) = q.get("auth_code").filter(|c| !c.is_empty() && c.len() <= 512) else {
        return page(
            StatusCode::BAD_REQUEST,
            "授权失败 Authorization failed",
            "no auth_code in the link",
        );
    };
    match st.service.platforms.authorize(&id, code, None, &[]).await {
        // An unknown component looks like a refused code: no oracle.
        Err(ServiceError::NotFound(_)) => page(
            StatusCode::BAD_GATEWAY,
            "授权失败 Authorization failed",
            "WeChat did not accept this authorization code",
        ),
        Ok(AccountId::Authorizer { appid, component_appid }) => page(
            StatusCode::OK,
            "授权成功 Authorized",
            &format!("{appid} is now authorized to {component_appid}. You can close this page."),
        ),
        Ok(other) => page(StatusCode::OK, "授权成功 Authorized", &other.to_string()),
        Err(e) => {
            let e = ApiError::from(e);
            page(e.status, "授权失败 Authorization failed", &e.message)
        }
    }
}
