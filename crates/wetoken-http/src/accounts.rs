//! Accounts and API keys (SPEC §3), admin key only.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use wetoken_core::account::{AccountPatch, AccountStatus, NewAccount};
use wetoken_core::domain::AccountId;
use wetoken_core::keys::{PathPattern, Pattern};
use wetoken_core::service::{AccountFilter, AccountView, Page};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, JsonBody, Paging, RawQuery, page_json};
use crate::render;
use crate::render::{AccountBody, KeyBody, NewKeyBody, PageBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", get(list_accounts).post(create_account))
        .route(
            "/v1/accounts/{id}",
            get(show_account).patch(patch_account).delete(delete_account),
        )
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{name}", delete(delete_key))
}

fn account_id(s: &str) -> Result<AccountId, ApiError> {
    Ok(s.parse::<AccountId>()?)
}

async fn create_account(
    State(st): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let new = NewAccount::from_json(&body)?;
    let account = st.service.accounts.create_account(new).await?;
    Ok((StatusCode::CREATED, Json(render::account(&account))).into_response())
}

/// `GET /v1/accounts?kind=&status=&q=&limit=&cursor=`.
async fn list_accounts(
    State(st): State<AppState>,
    _: Admin,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<AccountBody>>, ApiError> {
    let page = accounts_page(&st, &q).await?;
    Ok(Json(page_json(&st, "accounts", "accounts", &page, render::account)))
}

/// A page of accounts for `?kind=&status=&q=&limit=&cursor=` (the API's
/// list, the console's lists).
pub(crate) async fn accounts_page(st: &AppState, q: &HashMap<String, String>) -> Result<Page<AccountView>, ApiError> {
    let p = Paging::from_query(q, st, "accounts")?;
    let filter = account_filter(q)?;
    Ok(st
        .service
        .accounts
        .list_accounts(&filter, p.cursor.as_deref(), p.limit)
        .await?)
}

/// `?kind=&status=&q=` of an account list (the API's and the console's).
pub(crate) fn account_filter(q: &HashMap<String, String>) -> Result<AccountFilter, ApiError> {
    let given = |k: &str| q.get(k).filter(|v| !v.is_empty());
    Ok(AccountFilter {
        kind: given("kind").map(|k| k.parse()).transpose()?,
        status: given("status")
            .map(|s| s.parse::<AccountStatus>())
            .transpose()
            .map_err(|e| ApiError::invalid(format!("status: {}", e.0)))?,
        q: given("q")
            .map(|v| {
                let ok = v.len() <= 200 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-:".contains(&b));
                ok.then(|| v.clone())
                    .ok_or_else(|| ApiError::invalid("q must be the start of an account id, such as mp:wx"))
            })
            .transpose()?,
    })
}

async fn show_account(
    State(st): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<AccountBody>, ApiError> {
    let account = st.service.accounts.show_account(&account_id(&id)?).await?;
    Ok(Json(render::account(&account)))
}

async fn patch_account(
    State(st): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<AccountBody>, ApiError> {
    let id = account_id(&id)?;
    let patch = AccountPatch::from_json(id.kind(), &body)?;
    Ok(Json(render::account(
        &st.service.accounts.patch_account(&id, patch).await?,
    )))
}

async fn delete_account(State(st): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    st.service.accounts.delete_account(&account_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: Option<String>,
    accounts: Option<Vec<String>>,
    tokens: Option<bool>,
    paths: Option<Vec<String>>,
}

async fn create_key(
    State(st): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<Response, ApiError> {
    let tokens = body.tokens.unwrap_or(true);
    let paths = body.paths.clone();
    let (name, key, accounts) = create_client_key(&st, body.name, body.accounts, tokens, body.paths).await?;
    let created = NewKeyBody {
        name,
        key,
        accounts,
        tokens,
        paths,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Creates a client key from a name, account patterns and whether it may
/// read tokens, as given (the API's body, the console's form): (name, the
/// key, the patterns).
pub(crate) async fn create_client_key(
    st: &AppState,
    name: Option<String>,
    accounts: Option<Vec<String>>,
    tokens: bool,
    paths: Option<Vec<String>>,
) -> Result<(String, String, Vec<String>), ApiError> {
    let name = name.ok_or_else(|| ApiError::invalid("name is required"))?;
    let patterns = accounts
        .ok_or_else(|| ApiError::invalid("accounts is required: a list of account patterns"))?
        .iter()
        .map(|p| Pattern::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let paths = paths
        .map(|list| {
            if list.is_empty() {
                return Err(ApiError::invalid(
                    "paths: a list of WeChat API paths such as /cgi-bin/message/*",
                ));
            }
            list.iter()
                .map(|p| PathPattern::parse(p).map_err(|e| ApiError::invalid(format!("paths: {}", e.0))))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let key = st.service.custody.create_key(&name, &patterns, tokens, paths).await?;
    Ok((name, key, patterns.iter().map(ToString::to_string).collect()))
}

/// Deletes a key; every key this instance remembers is forgotten, so the
/// deleted one stops working here at once.
pub(crate) async fn remove_key(st: &AppState, name: &str) -> Result<(), ApiError> {
    st.service.custody.delete_key(name).await?;
    st.auth.forget_all();
    Ok(())
}

async fn list_keys(
    State(st): State<AppState>,
    _: Admin,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<KeyBody>>, ApiError> {
    let p = Paging::from_query(&q, &st, "keys")?;
    let page = st.service.custody.list_keys(p.cursor.as_deref(), p.limit).await?;
    Ok(Json(page_json(&st, "keys", "keys", &page, render::key)))
}

async fn delete_key(State(st): State<AppState>, _: Admin, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    remove_key(&st, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
