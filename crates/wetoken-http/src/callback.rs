//! Callbacks from WeChat (SPEC §5). They authenticate with WeChat's
//! msg_signature, not with a key. Order of checks: parse the id (400), read
//! the body within the limit (413), refuse any DTD (400), parse the envelope
//! (400), the timestamp window (401), the signature (401), decrypt and the
//! receive id (401/400), then act. A refused callback changes nothing; every
//! state change is committed before `success` is answered.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, RawPathParams, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wetoken_core::domain::{AccountId, Ident};
use wetoken_core::msgcrypt::CryptError;
use wetoken_core::service::ServiceError;
use wetoken_core::wxml::{self, XmlError};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AccountPath, RawQuery, read_body};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/callback/component/{component_appid}", post(component_event))
        .route("/callback/component/{component_appid}/authorized", get(landing))
        .route("/callback/suite/{suite_id}", get(suite_verify_url).post(suite_event))
}

fn xml_error(e: XmlError) -> ApiError {
    ApiError::invalid(e.to_string())
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// A verified, decrypted callback message: its fields.
pub(crate) struct Verified(pub HashMap<String, String>);

/// Runs every check of a pushed, encrypted message to account `id`.
pub(crate) async fn verify(
    st: &AppState,
    id: &AccountId,
    q: &HashMap<String, String>,
    body: Body,
) -> Result<Verified, ApiError> {
    let bytes = read_body(body, st.max_body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    let envelope = wxml::fields(text).map_err(xml_error)?;
    let encrypt = envelope
        .get("Encrypt")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("no Encrypt element: wetoken accepts only encrypted (safe mode) callbacks"))?;
    let plain = open(st, id, q, encrypt).await?;
    Ok(Verified(wxml::fields(&plain).map_err(xml_error)?))
}

/// The timestamp window and the signature of `encrypt` (with the callback
/// crypto of account `id`, read only then), then its plaintext.
async fn open(st: &AppState, id: &AccountId, q: &HashMap<String, String>, encrypt: &str) -> Result<String, ApiError> {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(signature), Some(timestamp), Some(nonce)) = (param("msg_signature"), param("timestamp"), param("nonce"))
    else {
        return Err(unauthorized("msg_signature, timestamp and nonce are required"));
    };
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| unauthorized("timestamp is not a number"))?;
    // abs_diff: no overflow whatever the timestamp.
    if st.service.now().timestamp().abs_diff(ts) > st.callback_max_skew_secs.unsigned_abs() {
        return Err(unauthorized("timestamp outside the accepted window"));
    }
    let bad_signature = || unauthorized("msg_signature does not match");
    // An account wetoken does not know answers like a bad signature: no
    // oracle for which accounts exist (SPEC §4).
    let crypt = match st.service.callback_crypt(id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound(_)) => return Err(bad_signature()),
        Err(e) => return Err(e.into()),
    };
    crypt.open(signature, timestamp, nonce, encrypt).map_err(|e| match e {
        CryptError::Signature => bad_signature(),
        CryptError::ReceiveId => unauthorized("the message is addressed to another appid"),
        other => ApiError::invalid(other.to_string()),
    })
}

fn success() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "success").into_response()
}

/// WeChat's CreateTime (WeCom's TimeStamp), seconds, as epoch milliseconds;
/// now when absent.
fn create_time_ms(st: &AppState, m: &HashMap<String, String>) -> i64 {
    m.get("CreateTime")
        .or_else(|| m.get("TimeStamp"))
        .and_then(|t| t.parse::<i64>().ok())
        .map_or_else(|| st.service.now().timestamp_millis(), |s| s.saturating_mul(1000))
}

fn field<'a>(m: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    m.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("the message has no {name}")))
}

/// `POST /callback/component/{c}`: verify tickets and authorization events.
async fn component_event(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let Verified(m) = verify(&st, &id, &q, body).await?;
    let at = create_time_ms(&st, &m);
    match m.get("InfoType").map(String::as_str).unwrap_or_default() {
        "component_verify_ticket" => {
            let ticket = field(&m, "ComponentVerifyTicket")?;
            st.service.ticket_pushed(&id, ticket, at / 1000).await?;
        }
        "authorized" | "updateauthorized" => {
            let appid = Ident::parse("AuthorizerAppid", field(&m, "AuthorizerAppid")?)?;
            let code = field(&m, "AuthorizationCode")?;
            st.service.authorize(&id, code, Some((&appid, at))).await?;
        }
        "unauthorized" => {
            let appid = Ident::parse("AuthorizerAppid", field(&m, "AuthorizerAppid")?)?;
            st.service.unauthorize(&id, &appid, at).await?;
        }
        other => tracing::debug!(component = %id, info_type = other, "callback ignored"),
    }
    Ok(success())
}

/// `GET /callback/suite/{s}?msg_signature&timestamp&nonce&echostr`: WeCom's
/// URL verification. Answers the decrypted echostr as plain text.
async fn suite_verify_url(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let echostr = q
        .get("echostr")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("echostr is required"))?;
    let plain = open(&st, &id, &q, echostr).await?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], plain).into_response())
}

/// `POST /callback/suite/{s}`: suite tickets and install events.
async fn suite_event(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let Verified(m) = verify(&st, &id, &q, body).await?;
    let at = create_time_ms(&st, &m);
    match m.get("InfoType").map(String::as_str).unwrap_or_default() {
        "suite_ticket" => {
            st.service
                .ticket_pushed(&id, field(&m, "SuiteTicket")?, at / 1000)
                .await?;
        }
        "create_auth" | "reset_permanent_code" => {
            st.service.install(&id, field(&m, "AuthCode")?, Some(at)).await?;
        }
        "change_auth" => {
            let corpid = Ident::parse("AuthCorpId", field(&m, "AuthCorpId")?)?;
            st.service.change_auth(&id, &corpid, at).await?;
        }
        "cancel_auth" => {
            let corpid = Ident::parse("AuthCorpId", field(&m, "AuthCorpId")?)?;
            st.service.cancel_auth(&id, &corpid, at).await?;
        }
        other => tracing::debug!(suite = %id, info_type = other, "callback ignored"),
    }
    Ok(success())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{t}</title></head><body style=\"font-family:sans-serif;\
         max-width:32em;margin:3em auto\"><h1>{t}</h1><p>{d}</p></body></html>",
        t = escape(title),
        d = escape(detail)
    );
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
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
    match st.service.authorize(&id, code, None).await {
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
