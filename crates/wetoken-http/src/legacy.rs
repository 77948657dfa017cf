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

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::FixedOffset;
use serde_json::json;
use wetoken_core::account::{AccountPatch, NewAccount};
use wetoken_core::domain::{AccountKind, Credential};
use wetoken_core::secret::Secret;
use wetoken_core::service::ServiceError;

use crate::AppState;
use crate::error::{ApiError, WxError, wx_error};
use crate::extract::{Admin, Authed, ValuePath};
use crate::render;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/wechat/app/create", get(create).post(create))
        .route("/{appid}/wechat/token/get", get(token))
        .route("/{appid}/wechat/ticket/get", get(ticket))
}

async fn create(
    State(st): State<AppState>,
    _: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (Some(appid), Some(secret)) = (q.get("appid"), q.get("secret").filter(|s| !s.is_empty())) else {
        return Ok(wx_error(41002, "appid and secret are required").into_response());
    };
    let Ok(new) = NewAccount::parse(
        AccountKind::Mp,
        &HashMap::from([
            ("appid".to_owned(), appid.clone()),
            ("secret".to_owned(), secret.clone()),
        ]),
        &[],
    ) else {
        return Ok(wx_error(40013, "invalid appid or secret").into_response());
    };
    let id = new.id.clone();
    match st.service.accounts.create_account(new).await {
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
            if let Err(e) = st.service.accounts.patch_account(&id, patch).await {
                return Ok(WxError::from(e).into_response());
            }
        }
        Err(e) => return Ok(WxError::from(e).into_response()),
    }
    Ok(Json(json!({"errcode": 0, "errmsg": "success"})).into_response())
}

async fn serve(st: AppState, a: Authed<ValuePath>, cred: Credential) -> Response {
    let id = a.target.0;
    let issued = match st.service.engine.get(&id, cred).await {
        Ok(i) => i,
        Err(e) => return WxError::from(e).into_response(),
    };
    let cst = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let mut v = json!({"errcode": 0, "errmsg": "success"});
    v[render::field(cred)] = issued.value.clone().into();
    v["expires_in"] = issued.expires_in(st.service.engine.now()).into();
    v["expires_date"] = issued
        .expires_at
        .with_timezone(&cst)
        .format("%Y%m%d%H%M%S")
        .to_string()
        .into();
    Json(v).into_response()
}

async fn token(State(st): State<AppState>, a: Authed<ValuePath>) -> Response {
    serve(st, a, Credential::AccessToken).await
}

async fn ticket(State(st): State<AppState>, a: Authed<ValuePath>) -> Response {
    serve(st, a, Credential::JsapiTicket).await
}
