//! Credential reads, refreshes and JS-SDK configs for every kind of account
//! (SPEC §3). One handler each: the path's parameter names say which
//! account ([`CredentialPath`], [`AccountPath`]).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::jssdk;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AccountPath, Authed, CredentialPath, JsonBody};
use crate::render::{self, CredentialBody, JssdkBody, JssdkConfig};

pub fn routes() -> Router<AppState> {
    let read = || get(read);
    let refresh = || post(refresh);
    let jssdk = || post(jssdk_config);
    Router::new()
        .route("/v1/mp/{appid}/jssdk_config", jssdk())
        .route("/v1/mp/{appid}/{cred}", read())
        .route("/v1/mp/{appid}/{cred}/refresh", refresh())
        .route("/v1/work/{corpid}/{agentid}/jssdk_config", jssdk())
        .route("/v1/work/{corpid}/{agentid}/{cred}", read())
        .route("/v1/work/{corpid}/{agentid}/{cred}/refresh", refresh())
        .route("/v1/component/{component_appid}/access_token", read())
        .route("/v1/component/{component_appid}/access_token/refresh", refresh())
        .route(
            "/v1/component/{component_appid}/authorizers/{appid}/jssdk_config",
            jssdk(),
        )
        .route("/v1/component/{component_appid}/authorizers/{appid}/{cred}", read())
        .route(
            "/v1/component/{component_appid}/authorizers/{appid}/{cred}/refresh",
            refresh(),
        )
        .route("/v1/suite/{suite_id}/access_token", read())
        .route("/v1/suite/{suite_id}/access_token/refresh", refresh())
        .route("/v1/suite/{suite_id}/corps/{corpid}/jssdk_config", jssdk())
        .route("/v1/suite/{suite_id}/corps/{corpid}/{cred}", read())
        .route("/v1/suite/{suite_id}/corps/{corpid}/{cred}/refresh", refresh())
        .route("/v1/provider/{corpid}/access_token", read())
        .route("/v1/provider/{corpid}/access_token/refresh", refresh())
}

/// `GET …/{cred}`.
async fn read(State(st): State<AppState>, a: Authed<CredentialPath>) -> Result<CredentialBody, ApiError> {
    let CredentialPath(id, cred) = a.target;
    let issued = st.service.engine.get(&id, cred).await?;
    Ok(render::credential(cred, issued, st.service.engine.now_ms()))
}

/// The optional body of a refresh: the value the caller saw rejected.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    stale: Option<String>,
}

/// `POST …/{cred}/refresh` (SPEC §2 passive rules).
async fn refresh(
    State(st): State<AppState>,
    a: Authed<CredentialPath>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<CredentialBody, ApiError> {
    let CredentialPath(id, cred) = a.target;
    if body.stale.as_deref() == Some("") {
        return Err(ApiError::invalid("stale must be a non-empty string"));
    }
    let issued = st.service.engine.refresh(&id, cred, body.stale.as_deref()).await?;
    Ok(render::credential(cred, issued, st.service.engine.now_ms()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageBody {
    url: Option<String>,
}

impl PageBody {
    /// The page to sign: required, an http(s) URL.
    fn url(self) -> Result<String, ApiError> {
        let url = self
            .url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ApiError::invalid("url is required: the page URL to sign"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 4096 {
            return Err(ApiError::invalid(
                "url must be an http:// or https:// URL of at most 4096 characters",
            ));
        }
        Ok(url)
    }
}

/// `POST …/jssdk_config`: `wx.config`'s fields for an Official Account or
/// authorizer; for WeCom, `{"config", "agent_config"}` signed with the
/// corp's jsapi_ticket and the app's agent ticket.
async fn jssdk_config(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(body): JsonBody<PageBody>,
) -> Result<Json<JssdkBody>, ApiError> {
    let id = a.target.0;
    let url = body.url()?;
    Ok(Json(match &id {
        AccountId::Mp { appid } | AccountId::Authorizer { appid, .. } => {
            JssdkBody::Page(signed(&st, &id, Credential::JsapiTicket, &url, &[("appId", appid.as_str())]).await?)
        }
        AccountId::Work { corpid, .. } | AccountId::Corp { corpid, .. } => {
            let agentid = st.service.platforms.agentid(&id).await?.ok_or_else(|| {
                ApiError::invalid(format!(
                    "the agentid of {id} is not known: set it with PATCH /v1/accounts/{id}"
                ))
            })?;
            let corpid = corpid.as_str();
            JssdkBody::WeCom {
                config: signed(&st, &id, Credential::JsapiTicket, &url, &[("appId", corpid)]).await?,
                agent_config: signed(
                    &st,
                    &id,
                    Credential::AgentTicket,
                    &url,
                    &[("corpid", corpid), ("agentid", &agentid)],
                )
                .await?,
            }
        }
        _ => return Err(ApiError::not_found("no such endpoint")),
    }))
}

/// The identifying fields, then `timestamp`, `nonceStr` and `signature` (a
/// fresh nonce every time), as WeChat's documentation orders them.
async fn signed(
    st: &AppState,
    id: &AccountId,
    ticket: Credential,
    url: &str,
    first: &[(&'static str, &str)],
) -> Result<JssdkConfig, ApiError> {
    let ticket = st.service.engine.get(id, ticket).await?;
    let timestamp = st.service.engine.now().timestamp();
    let nonce = jssdk::nonce();
    let signature = jssdk::signature(&ticket.value, &nonce, timestamp, url);
    Ok(JssdkConfig {
        ids: render::Fields(first.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()),
        timestamp,
        nonce_str: nonce,
        signature,
    })
}
