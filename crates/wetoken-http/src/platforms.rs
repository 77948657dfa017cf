//! The Open Platform and WeCom suite routes beyond credentials (SPEC §3):
//! a component's pre-authorization and authorization URL and its
//! authorizers, a suite's corps.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use wetoken_core::domain::{AccountId, Ident};
use wetoken_core::service::component::{AuthUrlParams, auth_url};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AccountPath, Authed, Paging, RawQuery, page_json};
use crate::render;
use crate::render::{AuthorizerBody, CorpBody, PageBody, PreAuthCodeBody, UrlBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/component/{component_appid}/pre_auth_code", post(pre_auth_code))
        .route("/v1/component/{component_appid}/auth_url", get(authorization_url))
        .route("/v1/component/{component_appid}/authorizers", get(authorizers))
        .route("/v1/suite/{suite_id}/corps", get(corps))
}

async fn pre_auth_code(State(st): State<AppState>, a: Authed<AccountPath>) -> Result<Json<PreAuthCodeBody>, ApiError> {
    let (code, expires_in) = st.service.platforms.pre_auth_code(&a.target.0).await?;
    Ok(Json(PreAuthCodeBody {
        pre_auth_code: code,
        expires_in,
    }))
}

async fn authorization_url(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UrlBody>, ApiError> {
    Ok(Json(UrlBody {
        url: auth_url_for(&st, &a.target.0, &q).await?,
    }))
}

/// A fresh authorization URL of a component from `?redirect_uri=&auth_type=
/// &biz_appid=&category_id_list=&platform=` (the API's query, the console's
/// form): each value checked, a new pre_auth_code from WeChat.
pub(crate) async fn auth_url_for(
    st: &AppState,
    id: &AccountId,
    q: &HashMap<String, String>,
) -> Result<String, ApiError> {
    let AccountId::Component { appid: c } = id else {
        return Err(ApiError::not_found("no such endpoint"));
    };
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
        // The landing page WeChat redirects the administrator to by default.
        None => format!("{}/callback/component/{c}/authorized", st.public_url),
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
    let (code, _) = st.service.platforms.pre_auth_code(id).await?;
    Ok(auth_url(c.as_str(), &code, &redirect_uri, &params))
}

async fn authorizers(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<AuthorizerBody>>, ApiError> {
    let list = format!("authorizers:{}", a.target.0);
    let p = Paging::from_query(&q, &st, &list)?;
    let page = st
        .service
        .platforms
        .authorizers(&a.target.0, p.cursor.as_deref(), p.limit)
        .await?;
    Ok(Json(page_json(&st, &list, "authorizers", &page, render::authorizer)))
}

async fn corps(
    State(st): State<AppState>,
    a: Authed<AccountPath>,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<CorpBody>>, ApiError> {
    let list = format!("corps:{}", a.target.0);
    let p = Paging::from_query(&q, &st, &list)?;
    let page = st
        .service
        .platforms
        .corps(&a.target.0, p.cursor.as_deref(), p.limit)
        .await?;
    Ok(Json(page_json(&st, &list, "corps", &page, render::corp)))
}
