//! Open Platform routes under `/v1/component/{c}` (SPEC §3): the component's
//! token, its authorizers' credentials, pre-authorization and the
//! authorization URL.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use wetoken_core::domain::{AccountId, Ident};
use wetoken_core::service::component::{AuthUrlParams, auth_url};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::native::{jssdk_config, read, refresh};
use crate::{AppState, authorize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/component/{c}/access_token", get(component_token))
        .route("/v1/component/{c}/access_token/refresh", post(component_token_refresh))
        .route("/v1/component/{c}/pre_auth_code", post(pre_auth_code))
        .route("/v1/component/{c}/auth_url", get(authorization_url))
        .route("/v1/component/{c}/authorizers", get(authorizers))
        .route(
            "/v1/component/{c}/authorizers/{appid}/jssdk_config",
            post(authorizer_jssdk_config),
        )
        .route("/v1/component/{c}/authorizers/{appid}/{cred}", get(authorizer_get))
        .route(
            "/v1/component/{c}/authorizers/{appid}/{cred}/refresh",
            post(authorizer_refresh),
        )
}

pub(crate) fn component_id(c: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Component {
        appid: Ident::parse("component_appid", c)?,
    })
}

fn authorizer_id(c: &str, appid: &str) -> Result<AccountId, ApiError> {
    Ok(AccountId::Authorizer {
        component_appid: Ident::parse("component_appid", c)?,
        appid: Ident::parse("appid", appid)?,
    })
}

/// Authenticates and authorizes a component-level request.
async fn component_target(st: &AppState, headers: &HeaderMap, c: &str) -> Result<AccountId, ApiError> {
    let principal = st.principal(headers).await?;
    let id = component_id(c)?;
    authorize(&principal, &id)?;
    Ok(id)
}

async fn component_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(c): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || component_id(&c), "access_token").await
}

async fn component_token_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(c): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || component_id(&c), "access_token", body).await
}

async fn authorizer_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((c, appid, cred)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&st, &headers, || authorizer_id(&c, &appid), &cred).await
}

async fn authorizer_refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((c, appid, cred)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    refresh(&st, &headers, || authorizer_id(&c, &appid), &cred, body).await
}

async fn authorizer_jssdk_config(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((c, appid)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    jssdk_config(&st, &headers, || authorizer_id(&c, &appid), &appid, body).await
}

async fn pre_auth_code(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(c): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = component_target(&st, &headers, &c).await?;
    let (code, expires_in) = st.service.pre_auth_code(&id).await?;
    Ok(Json(json!({"pre_auth_code": code, "expires_in": expires_in})))
}

/// The landing page WeChat redirects the administrator to by default.
pub(crate) fn landing_url(st: &AppState, c: &str) -> String {
    format!("{}/callback/component/{c}/authorized", st.public_url)
}

async fn authorization_url(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(c): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = component_target(&st, &headers, &c).await?;
    if let Some(k) = q.keys().find(|k| {
        !matches!(
            k.as_str(),
            "redirect_uri" | "auth_type" | "biz_appid" | "category_id_list" | "platform"
        )
    }) {
        return Err(ApiError::invalid(format!("unknown parameter {k:?}")));
    }
    let non_empty = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let redirect_uri = match non_empty("redirect_uri") {
        Some(r) if r.starts_with("http://") || r.starts_with("https://") => r.clone(),
        Some(_) => return Err(ApiError::invalid("redirect_uri must be an http:// or https:// URL")),
        None => landing_url(&st, &c),
    };
    let auth_type = non_empty("auth_type").cloned();
    if auth_type
        .as_deref()
        .is_some_and(|t| t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::invalid(
            "auth_type must be a number: 1 official accounts, 2 mini programs, 3 both",
        ));
    }
    let category_id_list = non_empty("category_id_list").cloned();
    if category_id_list
        .as_deref()
        .is_some_and(|c| !c.bytes().all(|b| b.is_ascii_digit() || b == b'|'))
    {
        return Err(ApiError::invalid(
            "category_id_list must be ids separated by |, like 1|2",
        ));
    }
    let h5 = match non_empty("platform").map(String::as_str) {
        None | Some("pc") => false,
        Some("h5") => true,
        Some(_) => return Err(ApiError::invalid("platform must be pc or h5")),
    };
    let params = AuthUrlParams {
        auth_type,
        biz_appid: non_empty("biz_appid")
            .map(|b| Ident::parse("biz_appid", b))
            .transpose()?,
        category_id_list,
        h5,
    };
    let (code, _) = st.service.pre_auth_code(&id).await?;
    Ok(Json(json!({ "url": auth_url(&c, &code, &redirect_uri, &params) })))
}

async fn authorizers(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(c): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = component_target(&st, &headers, &c).await?;
    Ok(Json(json!({ "authorizers": st.service.authorizers(&id).await? })))
}
