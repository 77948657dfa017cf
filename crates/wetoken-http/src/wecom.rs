//! WeCom routes (SPEC §3): self-built apps (`/v1/work/{corpid}/{agentid}`),
//! third-party suites and the corps that installed them
//! (`/v1/suite/{s}`, `/v1/suite/{s}/corps/{corpid}`), and service providers
//! (`/v1/provider/{corpid}`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use wetoken_core::domain::{AccountId, AgentId, Credential, Ident};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::native::{page_url, read, refresh, reorder, sign_page};
use crate::{AppState, authorize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/work/{corpid}/{agentid}/jssdk_config", post(work_jssdk_config))
        .route("/v1/work/{corpid}/{agentid}/{cred}", get(work_get))
        .route("/v1/work/{corpid}/{agentid}/{cred}/refresh", post(work_refresh))
        .route("/v1/suite/{s}/access_token", get(suite_token))
        .route("/v1/suite/{s}/access_token/refresh", post(suite_token_refresh))
        .route("/v1/suite/{s}/corps", get(corps))
        .route("/v1/suite/{s}/corps/{corpid}/jssdk_config", post(corp_jssdk_config))
        .route("/v1/suite/{s}/corps/{corpid}/{cred}", get(corp_get))
        .route("/v1/suite/{s}/corps/{corpid}/{cred}/refresh", post(corp_refresh))
        .route("/v1/provider/{corpid}/access_token", get(provider_token))
        .route(
            "/v1/provider/{corpid}/access_token/refresh",
            post(provider_token_refresh),
        )
}

fn work_id(corpid: &str, agentid: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Work {
        corpid: Ident::parse("corpid", corpid)?,
        agentid: AgentId::parse(agentid)?,
    })
}

pub(crate) fn suite_id(s: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Suite {
        suite_id: Ident::parse("suite_id", s)?,
    })
}

fn corp_id(s: &str, corpid: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Corp {
        suite_id: Ident::parse("suite_id", s)?,
        corpid: Ident::parse("corpid", corpid)?,
    })
}

fn provider_id(corpid: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Provider {
        corpid: Ident::parse("corpid", corpid)?,
    })
}

async fn work_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((corpid, agentid, cred)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || work_id(&corpid, &agentid), &cred).await
}

async fn work_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((corpid, agentid, cred)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || work_id(&corpid, &agentid), &cred, body).await
}

async fn suite_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(s): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || suite_id(&s), "access_token").await
}

async fn suite_token_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(s): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || suite_id(&s), "access_token", body).await
}

async fn corp_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((s, corpid, cred)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || corp_id(&s, &corpid), &cred).await
}

async fn corp_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((s, corpid, cred)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || corp_id(&s, &corpid), &cred, body).await
}

async fn provider_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(corpid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || provider_id(&corpid), "access_token").await
}

async fn provider_token_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(corpid): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || provider_id(&corpid), "access_token", body).await
}

async fn corps(State(st): State<AppState>, headers: HeaderMap, Path(s): Path<String>) -> Result<Json<Value>, ApiError> {
    let principal = st.principal(&headers).await?;
    let id = suite_id(&s)?;
    authorize(&principal, &id)?;
    Ok(Json(json!({ "corps": st.service.corps(&id).await? })))
}

/// `{"config": {…}, "agent_config": {…}}`: `wx.config` signed with the corp's
/// jsapi_ticket, `wx.agentConfig` with the app's agent ticket (SPEC §3).
async fn wecom_jssdk_config(
    st: &AppState,
    headers: &HeaderMap,
    id: Result<AccountId, ApiError>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let principal = st.principal(headers).await?;
    let id = id?;
    authorize(&principal, &id)?;
    let url = page_url(body.required()?)?;
    let (corpid, agentid) = match &id {
        AccountId::Work { corpid, agentid } => (corpid.to_string(), agentid.to_string()),
        AccountId::Corp { corpid, .. } => {
            let agentid = st.service.agentid(&id).await?.ok_or_else(|| {
                ApiError::invalid(format!(
                    "the agentid of {id} is not known: set it with PATCH /v1/accounts/{id}"
                ))
            })?;
            (corpid.to_string(), agentid)
        }
        _ => unreachable!("only WeCom accounts route here"),
    };
    let mut config = sign_page(st, &id, Credential::JsapiTicket, &url).await?;
    config.insert("appId".into(), corpid.clone().into());
    let mut agent = sign_page(st, &id, Credential::AgentTicket, &url).await?;
    agent.insert("corpid".into(), corpid.into());
    agent.insert("agentid".into(), agentid.into());
    Ok(Json(json!({
        "config": Value::Object(reorder(config, "appId")),
        "agent_config": Value::Object(reorder(agent, "corpid,agentid")),
    })))
}

async fn work_jssdk_config(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((corpid, agentid)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    wecom_jssdk_config(&st, &headers, work_id(&corpid, &agentid), body).await
}

async fn corp_jssdk_config(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((s, corpid)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    wecom_jssdk_config(&st, &headers, corp_id(&s, &corpid), body).await
}
