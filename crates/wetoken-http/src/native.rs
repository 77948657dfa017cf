//! The native `/v1` API (SPEC §3): credential reads and refreshes, JS-SDK
//! configs, accounts and API keys.
//!
//! Order of checks in every handler: authenticate (401), parse the ids (400),
//! authorize (403), then act. Nothing unparsed reaches the service.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use wetoken_core::account::{AccountPatch, NewAccount};
use wetoken_core::domain::{AccountId, Credential, Ident};
use wetoken_core::jssdk;
use wetoken_core::keys::Pattern;
use wetoken_core::service::Issued;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::{AppState, authorize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/mp/{appid}/jssdk_config", post(mp_jssdk_config))
        .route("/v1/mp/{appid}/{cred}", get(mp_get))
        .route("/v1/mp/{appid}/{cred}/refresh", post(mp_refresh))
        .route("/v1/accounts", get(list_accounts).post(create_account))
        .route(
            "/v1/accounts/{id}",
            get(show_account).patch(patch_account).delete(delete_account),
        )
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{name}", axum::routing::delete(delete_key))
}

fn credential_json(st: &AppState, cred: Credential, issued: &Issued) -> Json<Value> {
    Json(issued.to_json(cred, st.service.now()))
}

/// A credential named in a URL, which the account's kind must own.
pub(crate) fn parse_cred(id: &AccountId, s: &str) -> Result<Credential, ApiError> {
    s.parse::<Credential>()
        .ok()
        .filter(|c| id.owns(*c))
        .ok_or_else(|| ApiError::not_found(format!("{} accounts have no credential {:?}", id.kind(), truncate(s))))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn mp_id(appid: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::mp(Ident::parse("appid", appid)?))
}

/// Authenticates, parses and authorizes a credential URL.
async fn credential_target(
    st: &AppState,
    headers: &HeaderMap,
    id: impl FnOnce() -> Result<AccountId, ApiError>,
    cred: &str,
) -> Result<(AccountId, Credential), ApiError> {
    let principal = st.principal(headers).await?;
    let id = id()?;
    authorize(&principal, &id)?;
    let cred = parse_cred(&id, cred)?;
    Ok((id, cred))
}

/// `GET …/{cred}` for any account.
pub(crate) async fn read(
    st: &AppState,
    headers: &HeaderMap,
    id: impl FnOnce() -> Result<AccountId, ApiError>,
    cred: &str,
) -> Result<Json<Value>, ApiError> {
    let (id, cred) = credential_target(st, headers, id, cred).await?;
    let issued = st.service.get(&id, cred).await?;
    Ok(credential_json(st, cred, &issued))
}

/// `POST …/{cred}/refresh` for any account.
pub(crate) async fn refresh(
    st: &AppState,
    headers: &HeaderMap,
    id: impl FnOnce() -> Result<AccountId, ApiError>,
    cred: &str,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (id, cred) = credential_target(st, headers, id, cred).await?;
    let stale = stale_of(body.0)?;
    let issued = st.service.refresh(&id, cred, stale.as_deref()).await?;
    Ok(credential_json(st, cred, &issued))
}

/// `POST …/jssdk_config` for an account with a jsapi_ticket and an appid.
pub(crate) async fn jssdk_config(
    st: &AppState,
    headers: &HeaderMap,
    id: impl FnOnce() -> Result<AccountId, ApiError>,
    appid: &str,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (id, _) = credential_target(st, headers, id, "jsapi_ticket").await?;
    let url = page_url(body.required()?)?;
    let mut config = sign_page(st, &id, Credential::JsapiTicket, &url).await?;
    config.insert("appId".into(), appid.into());
    Ok(Json(Value::Object(reorder(config, "appId"))))
}

/// `{"timestamp", "nonceStr", "signature"}` for a page, signed with a ticket
/// (a fresh nonce every time).
pub(crate) async fn sign_page(
    st: &AppState,
    id: &AccountId,
    ticket: Credential,
    url: &str,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let ticket = st.service.get(id, ticket).await?;
    let timestamp = st.service.now().timestamp();
    let nonce = jssdk::nonce();
    let mut m = serde_json::Map::new();
    m.insert("timestamp".into(), timestamp.into());
    m.insert(
        "signature".into(),
        jssdk::signature(&ticket.value, &nonce, timestamp, url).into(),
    );
    m.insert("nonceStr".into(), nonce.into());
    Ok(m)
}

/// Puts the identifying fields first, then timestamp, nonceStr, signature, as
/// WeChat's documentation shows them.
pub(crate) fn reorder(m: serde_json::Map<String, Value>, first: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for k in first.split(',').chain(["timestamp", "nonceStr", "signature"]) {
        if let Some(v) = m.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    out
}

async fn mp_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((appid, cred)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || mp_id(&appid), &cred).await
}

/// The optional `{"stale": "…"}` of a refresh.
fn stale_of(body: Option<Value>) -> Result<Option<String>, ApiError> {
    let Some(v) = body else { return Ok(None) };
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "stale") {
        return Err(ApiError::invalid(format!("unknown field {k:?}")));
    }
    match obj.get("stale") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid("stale must be a non-empty string")),
    }
}

async fn mp_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((appid, cred)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || mp_id(&appid), &cred, body).await
}

async fn mp_jssdk_config(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(appid): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    jssdk_config(&st, &headers, || mp_id(&appid), &appid, body).await
}

/// The `url` of a jssdk_config request: required, an http(s) URL.
pub(crate) fn page_url(v: Value) -> Result<String, ApiError> {
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid("url is required: the page URL to sign"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 4096 {
        return Err(ApiError::invalid(
            "url must be an http:// or https:// URL of at most 4096 characters",
        ));
    }
    Ok(url.to_owned())
}

// ---------------------------------------------------------------- accounts

fn account_id(s: &str) -> Result<AccountId, ApiError> {
    Ok(s.parse::<AccountId>()?)
}

async fn create_account(State(st): State<AppState>, headers: HeaderMap, body: JsonBody) -> Result<Response, ApiError> {
    st.require_admin(&headers).await?;
    let new = NewAccount::from_json(&body.required()?)?;
    let account = st.service.create_account(new).await?;
    Ok((StatusCode::CREATED, Json(account)).into_response())
}

async fn list_accounts(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    st.require_admin(&headers).await?;
    Ok(Json(json!({"accounts": st.service.list_accounts().await?})))
}

async fn show_account(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.require_admin(&headers).await?;
    Ok(Json(st.service.show_account(&account_id(&id)?).await?))
}

async fn patch_account(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    st.require_admin(&headers).await?;
    let id = account_id(&id)?;
    let patch = AccountPatch::from_json(id.kind(), &body.required()?)?;
    Ok(Json(st.service.patch_account(&id, patch).await?))
}

async fn delete_account(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.require_admin(&headers).await?;
    st.service.delete_account(&account_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- keys

async fn create_key(State(st): State<AppState>, headers: HeaderMap, body: JsonBody) -> Result<Response, ApiError> {
    st.require_admin(&headers).await?;
    let v = body.required()?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "name" | "accounts")) {
        return Err(ApiError::invalid(format!("unknown field {k:?}")));
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("name is required"))?;
    let patterns = obj
        .get("accounts")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("accounts is required: a list of account patterns"))?
        .iter()
        .map(|p| {
            p.as_str()
                .ok_or_else(|| ApiError::invalid("accounts must be strings"))
                .and_then(|s| Ok(Pattern::parse(s)?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = st.service.create_key(name, &patterns).await?;
    let accounts: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "key": key, "accounts": accounts})),
    )
        .into_response())
}

async fn list_keys(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    st.require_admin(&headers).await?;
    Ok(Json(json!({"keys": st.service.list_keys().await?})))
}

async fn delete_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.require_admin(&headers).await?;
    st.service.delete_key(&name).await?;
    st.auth.forget_all();
    Ok(StatusCode::NO_CONTENT)
}
