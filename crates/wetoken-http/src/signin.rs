//! Sign-in without secrets (SPEC §13): Mini Program login, web
//! authorization and what a session key is for, for `mp` accounts and
//! authorizers. One handler each; the exchanges and the session keys'
//! custody are `wetoken_core::service::SignIn`'s.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use wetoken_core::service::ServiceError;
use wetoken_core::service::signin::{Caller, Scope};
use wetoken_core::upstream::UpstreamError;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AccountPath, Authed, JsonBody};
use crate::render::{CheckSessionBody, LoginBody, UrlBody, UserTokenBody};

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for base in ["/v1/mp/{appid}", "/v1/component/{component_appid}/authorizers/{appid}"] {
        r = r
            .route(&format!("{base}/sns/jscode2session"), post(jscode2session))
            .route(&format!("{base}/sns/decrypt"), post(decrypt))
            .route(&format!("{base}/sns/checksession"), post(checksession))
            .route(&format!("{base}/oauth2/authorize_url"), get(authorize_url))
            .route(&format!("{base}/oauth2/access_token"), post(access_token))
            .route(&format!("{base}/oauth2/refresh_token"), post(refresh_token));
    }
    r
}

/// An exchange's failure: WeChat not answering in time is 504 (the code
/// may or may not have been used: it is not tried again).
fn exchange_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Upstream(UpstreamError::Timeout(t)) => ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!("WeChat did not answer within {t:?}; the code is not tried again"),
        ),
        other => other.into(),
    }
}

fn caller<T>(a: &Authed<T>) -> Caller<'_> {
    Caller {
        key: a.principal.name(),
        sees_values: a.principal.may_read_values(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    js_code: String,
}

/// `POST …/sns/jscode2session {"js_code"}`.
async fn jscode2session(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Json<LoginBody>, ApiError> {
    let login = st
        .service
        .signin
        .code_to_session(&caller(&a), &a.target.0, &body.js_code)
        .await
        .map_err(exchange_error)?;
    Ok(Json(LoginBody {
        openid: login.openid,
        unionid: login.unionid,
        session_key: login.session_key,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecryptBody {
    openid: String,
    encrypted_data: String,
    iv: String,
}

/// `POST …/sns/decrypt {"openid", "encrypted_data", "iv"}`: the data, decrypted.
async fn decrypt(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(b): JsonBody<DecryptBody>,
) -> Result<Json<Value>, ApiError> {
    let plain = st
        .service
        .signin
        .decrypt(&a.target.0, &b.openid, &b.encrypted_data, &b.iv)
        .await?;
    Ok(Json(plain))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenidBody {
    openid: String,
}

/// `POST …/sns/checksession {"openid"}`: whether WeChat still holds the
/// kept session key (`valid`, with WeChat's errcode).
async fn checksession(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(b): JsonBody<OpenidBody>,
) -> Result<Json<CheckSessionBody>, ApiError> {
    match st.service.signin.check_session(&a.target.0, &b.openid).await {
        Ok(()) => Ok(Json(CheckSessionBody {
            valid: true,
            errcode: 0,
            errmsg: "ok".into(),
        })),
        Err(ServiceError::Upstream(UpstreamError::WeChat { errcode: 87009, errmsg })) => Ok(Json(CheckSessionBody {
            valid: false,
            errcode: 87009,
            errmsg,
        })),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeQuery {
    redirect_uri: String,
    scope: String,
    #[serde(default)]
    state: String,
}

/// `GET …/oauth2/authorize_url?redirect_uri=&scope=&state=`.
async fn authorize_url(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    q: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UrlBody>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let scope: Scope = q.scope.parse()?;
    let url = st
        .service
        .signin
        .authorize_url(&a.target.0, &q.redirect_uri, scope, &q.state)
        .await?;
    Ok(Json(UrlBody { url }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OauthCodeBody {
    code: String,
}

/// `POST …/oauth2/access_token {"code"}`: the user's token.
async fn access_token(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(b): JsonBody<OauthCodeBody>,
) -> Result<Json<UserTokenBody>, ApiError> {
    let t = st
        .service
        .signin
        .user_token(&caller(&a), &a.target.0, &b.code)
        .await
        .map_err(exchange_error)?;
    Ok(Json(UserTokenBody::from(t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshTokenBody {
    refresh_token: String,
}

/// `POST …/oauth2/refresh_token {"refresh_token"}`.
async fn refresh_token(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    JsonBody(b): JsonBody<RefreshTokenBody>,
) -> Result<Json<UserTokenBody>, ApiError> {
    let t = st
        .service
        .signin
        .refresh_user_token(&caller(&a), &a.target.0, &b.refresh_token)
        .await
        .map_err(exchange_error)?;
    Ok(Json(UserTokenBody::from(t)))
}
