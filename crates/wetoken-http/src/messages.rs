//! Receiving URLs for users' messages and events (SPEC §14):
//! `GET|POST /callback/mp/{appid}`, an Official Account's or Mini
//! Program's server configuration, in each of WeChat's modes (plaintext,
//! compatible, safe) and formats (XML, JSON); `POST
//! /callback/component/{c}/messages/{appid}`, a third-party platform's
//! message URL (`…/messages/$APPID$` at WeChat; the platform's token and
//! key); `GET|POST /callback/work/{corpid}/{agentid}`, a WeCom app's; `GET|POST
//! /callback/suite/{suite_id}/data`, a suite's data callback (the receive id
//! is the corp that installed it). They authenticate with WeChat's
//! signature over the account's `token` (and its `aes_key` for what is
//! encrypted; WeCom and the Open Platform always encrypt), never with a key. Order of checks: the id (400),
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
use axum::routing::{get, post};
use serde_json::{Map, Value};
use wetoken_core::domain::AccountId;
use wetoken_core::msgcrypt::{MsgCrypt, sha1_sorted};
use wetoken_core::secret::ct_eq;
use wetoken_core::service::ServiceError;
use wetoken_core::service::messages::Pushed;
use wetoken_core::wxml;

use crate::AppState;
use crate::callback::{bad_signature, check_time, open_any, source_of, success, unauthorized, xml_error};
use crate::error::ApiError;
use crate::extract::{AccountPath, RawQuery, read_body};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/callback/mp/{appid}", get(verify_url).post(pushed))
        .route("/callback/component/{component_appid}/messages/{appid}", post(pushed))
        .route(
            "/callback/work/{corpid}/{agentid}",
            get(verify_encrypted_url).post(pushed),
        )
        .route(
            "/callback/suite/{suite_id}/data",
            get(verify_encrypted_url).post(pushed),
        )
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

/// `GET` of a WeCom receiving URL (`msg_signature`, `timestamp`, `nonce`,
/// an encrypted `echostr`): the decrypted echostr back. A suite's URLs
/// (instructions and data) are checked with the provider's corpid as
/// receive id, which wetoken need not know: the signature is what proves
/// them.
pub(crate) async fn verify_encrypted_url(
    State(st): State<AppState>,
    path: RawPathParams,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = AccountPath::id(&path)?;
    let echostr = q
        .get("echostr")
        .filter(|e| !e.is_empty() && e.len() <= 1024)
        .ok_or_else(|| ApiError::invalid("echostr is required"))?;
    let (_, crypt) = receiver(&st, &id).await?;
    let crypt = crypt.ok_or_else(bad_signature)?;
    let (plain, receive_id) = open_any(&st, &crypt, &q, echostr)?;
    if !matches!(id, AccountId::Suite { .. }) && receive_id != crypt.receive_id() {
        return Err(unauthorized("the message is addressed to another corp"));
    }
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], plain).into_response())
}

/// `POST` of a receiving URL: a user's message or event. Encrypted (WeCom
/// and the Open Platform always; an `mp` account with
/// `encrypt_type=aes`, its compatible and safe modes): `Encrypt` checked
/// against `msg_signature`, opened, its receive id checked; plaintext (an
/// `mp` account's plaintext mode): the request's `signature` checked.
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
    let encrypted = !matches!(id, AccountId::Mp { .. }) || q.get("encrypt_type").is_some_and(|t| t == "aes");
    // How a reply is sealed: the crypt for the receive id the push was
    // sealed for, in the envelope's format.
    let mut sealing = None;
    let (plain, target) = if encrypted {
        let crypt = crypt.ok_or_else(bad_signature)?;
        let (envelope, xml_envelope) = fields_of(text)?;
        let encrypt = envelope
            .get("Encrypt")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::invalid("no Encrypt in the body"))?;
        let (plain, receive_id) = open_any(&st, &crypt, &q, encrypt)?;
        sealing = Some((crypt.for_receiver(&receive_id), xml_envelope));
        let target = match &id {
            // A suite's data callback: the corp it was sealed for.
            AccountId::Suite { .. } => match st.service.messages.installed_corp(&id, &receive_id).await {
                Ok(corp) => corp,
                Err(ServiceError::NotFound(_)) => {
                    return Err(unauthorized("the message is addressed to no corp of this suite"));
                }
                Err(e) => return Err(e.into()),
            },
            _ if receive_id != crypt.receive_id() => {
                return Err(unauthorized("the message is addressed to another appid"));
            }
            _ => id.clone(),
        };
        (plain, target)
    } else {
        check_plain(&st, &token, &q)?;
        (text.to_owned(), id.clone())
    };
    let (fields, xml) = fields_of(&plain)?;
    let msg = Pushed {
        fields,
        text: plain,
        xml,
        source: source_of(&uri, &headers, text),
    };
    let Some(reply) = st.service.messages.received(&target, &msg).await? else {
        return Ok(success());
    };
    Ok(answer(&st, &reply, sealing, q.get("nonce").map_or("", String::as_str)))
}

/// A passive reply as WeChat takes it: empty as it is; sealed when the push was encrypted
/// (in the envelope of the push's format, with its nonce) unless the
/// reply webhook sealed it itself (a `wechat` webhook with the keys),
/// else as it is.
fn answer(st: &AppState, reply: &str, sealing: Option<(MsgCrypt, bool)>, nonce: &str) -> Response {
    if reply.is_empty() {
        return ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "").into_response();
    }
    let json = reply.starts_with('{');
    let body = match sealing {
        Some((crypt, xml_envelope)) if !fields_of(reply).is_ok_and(|(f, _)| f.contains_key("Encrypt")) => {
            let now = st.service.engine.now_ms().div_euclid(1000);
            let nonce = if nonce.is_empty() || nonce.len() > 64 {
                rand::random::<u32>().to_string()
            } else {
                nonce.to_owned()
            };
            let body = crypt.seal_reply(reply, now, &nonce, !xml_envelope);
            return ([(CONTENT_TYPE, content_type(!xml_envelope))], body).into_response();
        }
        _ => reply.to_owned(),
    };
    ([(CONTENT_TYPE, content_type(json))], body).into_response()
}

fn content_type(json: bool) -> &'static str {
    if json {
        "application/json"
    } else {
        "text/xml; charset=utf-8"
    }
}
