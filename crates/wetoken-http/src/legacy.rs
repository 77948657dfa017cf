//! The routes of the Go `wetoken` this project succeeds (SPEC §6), for its
//! existing clients:
//!
//! - `GET|POST /wechat/app/create?appid&secret&token` (admin key): adds (or
//!   updates the secret of) an Official Account;
//! - `GET /{appid}/wechat/token/get`, `GET /{appid}/wechat/ticket/get`
//!   (client key) → `{"errcode":0,"errmsg":"success","access_token"|"ticket",
//!   "expires_in","expires_date":"YYYYMMDDHHMMSS"}`, `expires_date` in +08:00
//!   as the Go project wrote it.
//!
//! With `WETOKEN_AUTH=off` they need no key, as before.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::FixedOffset;
use serde_json::json;
use wetoken_core::account::{AccountPatch, NewAccount};
use wetoken_core::domain::{AccountId, Credential, Ident};
use wetoken_core::secret::Secret;
use wetoken_core::service::ServiceError;

use crate::compat::{wx_error, wx_from};
use crate::error::ApiError;
use crate::{AppState, authorize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/wechat/app/create", get(create).post(create))
        .route("/{appid}/wechat/token/get", get(token))
        .route("/{appid}/wechat/ticket/get", get(ticket))
}

async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    st.require_admin(&headers).await?;
    let (Some(appid), Some(secret)) = (q.get("appid"), q.get("secret").filter(|s| !s.is_empty())) else {
        return Ok(wx_error(41002, "appid and secret are required").into_response());
    };
    let Ok(new) = NewAccount::from_json(&json!({"kind": "mp", "appid": appid, "secret": secret})) else {
        return Ok(wx_error(40013, "invalid appid or secret").into_response());
    };
    let id = new.id.clone();
    match st.service.create_account(new).await {
        Ok(_) => {}
        // Adding an account again updates its secret, as the Go project did.
        Err(ServiceError::Conflict(_)) => {
            let patch = AccountPatch {
                secrets: wetoken_core::account::Secrets {
                    secret: Some(Secret::new(secret.as_str())),
                    ..Default::default()
                },
                ..Default::default()
            };
            if let Err(e) = st.service.patch_account(&id, patch).await {
                return Ok(wx_from(e).into_response());
            }
        }
        Err(e) => return Ok(wx_from(e).into_response()),
    }
    Ok(Json(json!({"errcode": 0, "errmsg": "success"})).into_response())
}

async fn serve(st: AppState, headers: HeaderMap, appid: String, cred: Credential) -> Result<Response, ApiError> {
    let principal = st.principal(&headers).await?;
    let id = AccountId::mp(Ident::parse("appid", &appid)?);
    authorize(&principal, &id)?;
    let issued = match st.service.get(&id, cred).await {
        Ok(i) => i,
        Err(e) => return Ok(wx_from(e).into_response()),
    };
    let cst = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let mut v = json!({"errcode": 0, "errmsg": "success"});
    v[cred.response_field()] = issued.value.clone().into();
    v["expires_in"] = issued.expires_in(st.service.now()).into();
    v["expires_date"] = issued
        .expires_at
        .with_timezone(&cst)
        .format("%Y%m%d%H%M%S")
        .to_string()
        .into();
    Ok(Json(v).into_response())
}

async fn token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(appid): Path<String>,
) -> Result<Response, ApiError> {
    serve(st, headers, appid, Credential::AccessToken).await
}

async fn ticket(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(appid): Path<String>,
) -> Result<Response, ApiError> {
    serve(st, headers, appid, Credential::JsapiTicket).await
}
