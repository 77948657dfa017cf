//! Diagnostics (SPEC §3) of `mp` and `authorizer` accounts: WeChat's quota
//! of an API (a key covering the account), the request a rid names
//! (the admin key; redacted), and clearing the day's quota (the admin key;
//! WeChat allows 10 a month, each use recorded and shown as
//! `used_this_month`).

use std::collections::HashMap;

use axum::extract::{RawPathParams, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use wetoken_core::domain::AccountId;

use crate::AppState;
use crate::error::{ApiError, upstream};
use crate::extract::{AccountPath, Admin, Authed, RawQuery};
use crate::render::{ClearedBody, QuotaBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/mp/{appid}/quota", get(quota))
        .route("/v1/mp/{appid}/rid/{rid}", get(rid))
        .route("/v1/mp/{appid}/clear_quota", post(clear_quota))
        .route("/v1/component/{component_appid}/authorizers/{appid}/quota", get(quota))
        .route(
            "/v1/component/{component_appid}/authorizers/{appid}/rid/{rid}",
            get(rid),
        )
        .route(
            "/v1/component/{component_appid}/authorizers/{appid}/clear_quota",
            post(clear_quota),
        )
}

/// `GET …/quota?cgi_path=/cgi-bin/stable_token`.
async fn quota(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    RawQuery(q): RawQuery,
) -> Result<Json<QuotaBody>, ApiError> {
    let quota = st.service.accounts.quota(&a.target.0, cgi_path(&q)?).await?;
    Ok(Json(QuotaBody {
        daily_limit: quota.daily_limit,
        used: quota.used,
        remain: quota.remain,
        rate_limit: quota.rate_limit,
        component_rate_limit: quota.component_rate_limit,
    }))
}

/// `GET …/rid/{rid}` (admin): WeChat's record of a failed request, every
/// credential in it redacted (core's `RidRequest`): the record carries the
/// URL and body of any key's call, and of wetoken's own token calls.
async fn rid(State(st): State<AppState>, _: Admin, path: RawPathParams) -> Result<Json<Value>, ApiError> {
    let id = AccountPath::id(&path)?;
    let rid = rid_param(
        path.iter()
            .find_map(|(k, v)| (k == "rid").then_some(v))
            .unwrap_or_default(),
    )?;
    let request = st.service.accounts.rid(&id, rid).await?;
    Ok(Json(Value::Object(request.0)))
}

/// `POST …/clear_quota` (admin): `{"used_this_month"}`; a refusal (48006
/// when the month's 10 are used) is 502 with WeChat's errcode and the count.
async fn clear_quota(State(st): State<AppState>, _: Admin, path: RawPathParams) -> Result<Json<ClearedBody>, ApiError> {
    let id = AccountPath::id(&path)?;
    let used = clear(&st, &id).await?;
    Ok(Json(ClearedBody { used_this_month: used }))
}

/// Clears an account's quota: this month's uses, or WeChat's refusal as a
/// 502 that carries them (`used_this_month`).
pub(crate) async fn clear(st: &AppState, id: &AccountId) -> Result<u32, ApiError> {
    let cleared = st.service.accounts.clear_quota(id).await?;
    match cleared.refused {
        None => Ok(cleared.used_this_month),
        Some(e) => {
            let mut err = upstream(e);
            err.message = format!("{} (used this month: {})", err.message, cleared.used_this_month);
            err.used_this_month = Some(cleared.used_this_month);
            Err(err)
        }
    }
}

/// `cgi_path`, the WeChat API path whose quota is asked (the API's query,
/// the console's form).
pub(crate) fn cgi_path(q: &HashMap<String, String>) -> Result<&str, ApiError> {
    q.get("cgi_path")
        .map(|p| p.trim())
        .filter(|p| p.starts_with('/') && p.len() <= 200 && p.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::invalid("cgi_path is required: a WeChat API path such as /cgi-bin/stable_token"))
}

/// A rid as WeChat writes it in an errmsg.
pub(crate) fn rid_param(rid: &str) -> Result<&str, ApiError> {
    let rid = rid.trim();
    if !rid.is_empty() && rid.len() <= 64 && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(rid)
    } else {
        Err(ApiError::invalid(
            "rid must be the rid of a WeChat error message (letters, digits, -)",
        ))
    }
}
