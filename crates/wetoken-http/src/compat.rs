//! WeChat-compatible token endpoints (SPEC §6): WeChat's own paths, request
//! and answer shapes and errcodes (always HTTP 200), so that an SDK becomes a
//! wetoken client by changing its base URL. Callers authenticate as WeChat
//! would: with the account secret (constant-time), or with a token wetoken
//! manages (current or within grace). Values WeChat needs from the caller but
//! wetoken manages itself (component_verify_ticket, suite_ticket,
//! authorizer_refresh_token, permanent_code) are accepted and ignored.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use wetoken_core::domain::{AccountId, AccountKind, Credential, Ident};
use wetoken_core::service::{Issued, SecretCheck, ServiceError};

use crate::AppState;
use crate::error::{WxError, wx_error};
use crate::extract::read_body;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/cgi-bin/ticket/getticket", get(getticket))
        .route("/cgi-bin/gettoken", get(gettoken))
        .route("/cgi-bin/get_jsapi_ticket", get(get_jsapi_ticket))
        .route("/cgi-bin/ticket/get", get(ticket_get))
        .route("/cgi-bin/component/api_component_token", post(component_token))
        .route("/cgi-bin/component/api_authorizer_token", post(authorizer_token))
        .route("/cgi-bin/component/api_create_preauthcode", post(create_preauthcode))
        .route("/cgi-bin/service/get_suite_token", post(suite_token))
        .route("/cgi-bin/service/get_corp_token", post(corp_token))
        .route("/cgi-bin/service/get_provider_token", post(provider_token))
}

type WxResult = Result<Response, WxError>;

/// `{field: value, "expires_in": …}`, with `errcode: 0` where WeChat adds it.
fn issued(st: &AppState, field: &str, i: &Issued, with_errcode: bool) -> Response {
    let mut m = Map::new();
    if with_errcode {
        m.insert("errcode".into(), 0.into());
        m.insert("errmsg".into(), "ok".into());
    }
    m.insert(field.into(), i.value.clone().into());
    m.insert("expires_in".into(), i.expires_in(st.service.engine.now()).into());
    Json(Value::Object(m)).into_response()
}

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// A required identifier: `missing` errcode if absent, `invalid` if malformed.
fn ident(v: Option<&str>, name: &str, missing: i64, invalid: i64) -> Result<Ident, WxError> {
    let v = v.ok_or_else(|| wx_error(missing, format!("{name} missing")))?;
    Ident::parse(name, v).map_err(|_| wx_error(invalid, format!("invalid {name}")))
}

/// A JSON body: 47001 if it is not JSON (or is too large), as WeChat answers.
async fn json_body(st: &AppState, body: Body) -> Result<Value, WxError> {
    let bytes = read_body(body, st.max_body)
        .await
        .map_err(|_| wx_error(47001, "data format error"))?;
    serde_json::from_slice(&bytes).map_err(|_| wx_error(47001, "data format error"))
}

async fn current(st: &AppState, id: &AccountId, cred: Credential) -> Result<Issued, WxError> {
    st.service.engine.get(id, cred).await.map_err(WxError::from)
}

/// The secret check of WeChat's token endpoints.
async fn by_secret(
    st: &AppState,
    id: AccountId,
    secret: Option<&str>,
    wrong: i64,
    unknown: i64,
) -> Result<AccountId, WxError> {
    let secret = secret.ok_or_else(|| wx_error(41004, "appsecret missing"))?;
    match st
        .service
        .accounts
        .check_secret(&id, secret)
        .await
        .map_err(WxError::from)?
    {
        SecretCheck::Matches(id) => Ok(id),
        SecretCheck::Wrong => Err(wx_error(wrong, "invalid appsecret")),
        SecretCheck::NoAccount => Err(wx_error(unknown, "invalid appid")),
    }
}

/// The account whose managed token `token` is (current or within grace),
/// if it is of one of `kinds`.
async fn by_token(st: &AppState, token: Option<&str>, kinds: &[AccountKind]) -> Result<AccountId, WxError> {
    let token = token.ok_or_else(|| wx_error(41001, "access_token missing"))?;
    match st.service.accounts.owner_of(token).await.map_err(WxError::from)? {
        Some((id, Credential::AccessToken)) if kinds.contains(&id.kind()) => Ok(id),
        _ => Err(wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
    }
}

fn mp_id(appid: Option<&str>) -> Result<AccountId, WxError> {
    Ok(AccountId::mp(ident(appid, "appid", 41002, 40013)?))
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid&secret`.
async fn token(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    if param(&q, "grant_type") != Some("client_credential") {
        return Err(wx_error(40002, "invalid grant_type"));
    }
    let id = by_secret(&st, mp_id(param(&q, "appid"))?, param(&q, "secret"), 40125, 40013).await?;
    Ok(issued(
        &st,
        "access_token",
        &current(&st, &id, Credential::AccessToken).await?,
        false,
    ))
}

/// `POST /cgi-bin/stable_token`; `force_refresh: true` is a report that the
/// current token was rejected (SPEC §2 verified passive rules: a token
/// WeChat still accepts is answered unchanged; within the force-refresh
/// limit, the current token).
async fn stable_token(State(st): State<AppState>, body: Body) -> WxResult {
    let v = json_body(&st, body).await?;
    if v["grant_type"].as_str() != Some("client_credential") {
        return Err(wx_error(40002, "invalid grant_type"));
    }
    let id = by_secret(&st, mp_id(v["appid"].as_str())?, v["secret"].as_str(), 40125, 40013).await?;
    let mut token = current(&st, &id, Credential::AccessToken).await?;
    if v["force_refresh"].as_bool() == Some(true) {
        match st
            .service
            .engine
            .refresh(&id, Credential::AccessToken, Some(&token.value))
            .await
        {
            Err(ServiceError::RateLimited(_)) => {}
            r => token = r.map_err(WxError::from)?,
        }
    }
    Ok(issued(&st, "access_token", &token, false))
}

/// `GET /cgi-bin/ticket/getticket?access_token&type=jsapi|wx_card`.
async fn getticket(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    let id = by_token(
        &st,
        param(&q, "access_token"),
        &[AccountKind::Mp, AccountKind::Authorizer],
    )
    .await?;
    let cred = match param(&q, "type") {
        Some("jsapi") => Credential::JsapiTicket,
        Some("wx_card") => Credential::WxCardTicket,
        _ => return Err(wx_error(40097, "invalid args: type must be jsapi or wx_card")),
    };
    Ok(issued(&st, "ticket", &current(&st, &id, cred).await?, true))
}

/// `GET /cgi-bin/gettoken?corpid&corpsecret` (WeCom).
async fn gettoken(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    let corpid = ident(param(&q, "corpid"), "corpid", 41002, 40013)?;
    let secret = param(&q, "corpsecret").ok_or_else(|| wx_error(41004, "corpsecret missing"))?;
    let id = match st
        .service
        .accounts
        .work_app_by_secret(&corpid, secret)
        .await
        .map_err(WxError::from)?
    {
        SecretCheck::Matches(id) => id,
        SecretCheck::Wrong => return Err(wx_error(40001, "invalid credential")),
        SecretCheck::NoAccount => return Err(wx_error(40013, "invalid corpid")),
    };
    Ok(issued(
        &st,
        "access_token",
        &current(&st, &id, Credential::AccessToken).await?,
        true,
    ))
}

/// A WeCom ticket for the app or corp whose token is presented.
async fn wecom_ticket(st: &AppState, q: &HashMap<String, String>, cred: Credential) -> WxResult {
    let id = by_token(st, param(q, "access_token"), &[AccountKind::Work, AccountKind::Corp]).await?;
    Ok(issued(st, "ticket", &current(st, &id, cred).await?, true))
}

/// `GET /cgi-bin/get_jsapi_ticket?access_token` (WeCom corp ticket).
async fn get_jsapi_ticket(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    wecom_ticket(&st, &q, Credential::JsapiTicket).await
}

/// `GET /cgi-bin/ticket/get?access_token&type=agent_config` (WeCom app ticket).
async fn ticket_get(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    if param(&q, "type") != Some("agent_config") {
        return Err(wx_error(40097, "invalid args: type must be agent_config"));
    }
    wecom_ticket(&st, &q, Credential::AgentTicket).await
}

/// `POST /cgi-bin/component/api_component_token`: by component_appsecret;
/// the component_verify_ticket is wetoken's own.
async fn component_token(State(st): State<AppState>, body: Body) -> WxResult {
    let v = json_body(&st, body).await?;
    let appid = ident(v["component_appid"].as_str(), "component_appid", 41002, 61011)?;
    let id = by_secret(
        &st,
        AccountId::Component { appid },
        v["component_appsecret"].as_str(),
        40125,
        61011,
    )
    .await?;
    Ok(issued(
        &st,
        "component_access_token",
        &current(&st, &id, Credential::AccessToken).await?,
        false,
    ))
}

/// The component whose managed token is `?component_access_token=` (or `access_token=`).
async fn component_of(st: &AppState, q: &HashMap<String, String>) -> Result<AccountId, WxError> {
    let token = param(q, "component_access_token").or_else(|| param(q, "access_token"));
    by_token(st, token, &[AccountKind::Component]).await
}

/// `POST /cgi-bin/component/api_authorizer_token`: the authorizer_refresh_token
/// is wetoken's own (the one presented is echoed back, never the stored one).
async fn authorizer_token(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> WxResult {
    let component = component_of(&st, &q).await?;
    let v = json_body(&st, body).await?;
    let appid = ident(v["authorizer_appid"].as_str(), "authorizer_appid", 41002, 40013)?;
    let AccountId::Component { appid: c } = &component else {
        unreachable!("by_token checked the kind")
    };
    let id = AccountId::Authorizer {
        component_appid: c.clone(),
        appid,
    };
    let t = st
        .service
        .engine
        .get(&id, Credential::AccessToken)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(_) => wx_error(61023, "refresh_token is invalid"),
            other => other.into(),
        })?;
    let mut m = Map::new();
    m.insert("authorizer_access_token".into(), t.value.clone().into());
    m.insert("expires_in".into(), t.expires_in(st.service.engine.now()).into());
    if let Some(r) = v["authorizer_refresh_token"].as_str() {
        m.insert("authorizer_refresh_token".into(), r.into());
    }
    Ok(Json(Value::Object(m)).into_response())
}

/// `POST /cgi-bin/component/api_create_preauthcode`.
async fn create_preauthcode(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> WxResult {
    let component = component_of(&st, &q).await?;
    let (code, expires_in) = st
        .service
        .platforms
        .pre_auth_code(&component)
        .await
        .map_err(WxError::from)?;
    Ok(Json(json!({"pre_auth_code": code, "expires_in": expires_in})).into_response())
}

/// `POST /cgi-bin/service/get_suite_token`: by suite_secret; the suite_ticket
/// is wetoken's own. No errcode on success, as WeCom.
async fn suite_token(State(st): State<AppState>, body: Body) -> WxResult {
    let v = json_body(&st, body).await?;
    let suite_id = ident(v["suite_id"].as_str(), "suite_id", 41002, 40083)?;
    let id = by_secret(
        &st,
        AccountId::Suite { suite_id },
        v["suite_secret"].as_str(),
        40001,
        40083,
    )
    .await?;
    Ok(issued(
        &st,
        "suite_access_token",
        &current(&st, &id, Credential::AccessToken).await?,
        false,
    ))
}

/// `POST /cgi-bin/service/get_corp_token?suite_access_token`: the
/// permanent_code is wetoken's own. No errcode on success, as WeCom.
async fn corp_token(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>, body: Body) -> WxResult {
    let suite = by_token(&st, param(&q, "suite_access_token"), &[AccountKind::Suite]).await?;
    let v = json_body(&st, body).await?;
    let corpid = ident(v["auth_corpid"].as_str(), "auth_corpid", 41002, 40013)?;
    let AccountId::Suite { suite_id } = &suite else {
        unreachable!("by_token checked the kind")
    };
    let id = AccountId::Corp {
        suite_id: suite_id.clone(),
        corpid,
    };
    let t = st
        .service
        .engine
        .get(&id, Credential::AccessToken)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(_) => wx_error(40084, "invalid permanent_code"),
            other => other.into(),
        })?;
    Ok(issued(&st, "access_token", &t, false))
}

/// `POST /cgi-bin/service/get_provider_token`: by provider_secret.
async fn provider_token(State(st): State<AppState>, body: Body) -> WxResult {
    let v = json_body(&st, body).await?;
    let corpid = ident(v["corpid"].as_str(), "corpid", 41002, 40013)?;
    let id = by_secret(
        &st,
        AccountId::Provider { corpid },
        v["provider_secret"].as_str(),
        40001,
        40013,
    )
    .await?;
    Ok(issued(
        &st,
        "provider_access_token",
        &current(&st, &id, Credential::AccessToken).await?,
        true,
    ))
}
