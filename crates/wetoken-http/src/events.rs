//! Events and webhooks (SPEC §10): `GET /v1/events` for any key (it sees
//! the accounts it covers), webhooks and their deliveries with the admin
//! key. Lists are paginated as every list is: `?limit=` (default 100, at
//! most 1000) and `?cursor=` from the previous page's `next_cursor`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use wetoken_core::auth::Principal;
use wetoken_core::events::{Delivery, DeliveryStatus, TypePattern};
use wetoken_core::keys::Pattern;
use wetoken_core::service::events::{EventFilter, WebhookRequest};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, JsonBody, Keyed, Paging, RawQuery, next_cursor, page_json};
use crate::render;
use crate::render::{AuditBody, DeliveryBody, PageBody, WebhookBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/audit", get(list_audit))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/{name}", delete(delete_webhook))
        .route("/v1/webhooks/{name}/deliveries", get(list_deliveries))
        .route("/v1/webhooks/{name}/deliveries/{event_id}/retry", post(retry_delivery))
}

/// A page's size and the event id it starts after: `cursor` (a previous
/// page's `next_cursor`), else `after`.
struct Page {
    limit: i64,
    after: i64,
}

fn event_id(v: &str, name: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::invalid(format!("{name} must be an event id or a cursor from a previous page")))
}

fn page(q: &HashMap<String, String>, st: &AppState, list: &str) -> Result<Page, ApiError> {
    let p = Paging::from_query(q, st, list)?;
    let after = match (&p.cursor, q.get("after").filter(|v| !v.is_empty())) {
        (Some(c), _) => event_id(c, "cursor")?,
        (None, Some(a)) => event_id(a, "after")?,
        (None, None) => 0,
    };
    Ok(Page { limit: p.limit, after })
}

/// `GET /v1/events?after=&type=&account=&limit=&cursor=`.
async fn list_events(
    State(st): State<AppState>,
    Keyed(principal): Keyed,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<Value>>, ApiError> {
    let filter = event_filter(&st, &q, &principal)?;
    let page = st.service.events.events(&filter, |id| principal.may_read(id)).await?;
    Ok(Json(PageBody {
        name: "events",
        items: page.events.iter().map(|e| e.record()).collect(),
        next_cursor: next_cursor(&st, "events", page.next_cursor.map(|c| c.to_string()).as_deref()),
    }))
}

/// `?after=&type=&account=&limit=&cursor=` of an event list, for what
/// `principal` may see (the API's query, the console's filter form).
pub(crate) fn event_filter(
    st: &AppState,
    q: &HashMap<String, String>,
    principal: &Principal,
) -> Result<EventFilter, ApiError> {
    let Page { limit, after } = page(q, st, "events")?;
    let kind = q
        .get("type")
        .filter(|v| !v.is_empty())
        .map(|t| TypePattern::parse(t))
        .transpose()
        .map_err(|e| ApiError::invalid(format!("type: {}", e.0)))?;
    let account = q
        .get("account")
        .filter(|v| !v.is_empty())
        .map(|a| Pattern::parse(a))
        .transpose()
        .map_err(|e| ApiError::invalid(format!("account: {}", e.0)))?;
    match &account {
        Some(Pattern::Exact(id) | Pattern::WithChildren(id)) if !principal.may_read(id) => {
            return Err(ApiError::forbidden(format!("this key does not cover {id}")));
        }
        _ => {}
    }
    Ok(EventFilter {
        after,
        kind,
        account,
        limit,
    })
}

async fn create_webhook(
    State(st): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<Response, ApiError> {
    let (w, secret) = st.service.events.create_webhook(&webhook_request(body)?).await?;
    let v = WebhookBody {
        secret: Some(secret.expose().to_owned()),
        ..render::webhook(&w)
    };
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// A webhook definition as given (the API's body, the console's form).
/// `GET /v1/audit?key=&account=&after=&limit=&cursor=` (admin): the
/// token-free calls, oldest first. `after` is an RFC 3339 instant (entries
/// after it) or an entry's id.
async fn list_audit(
    State(st): State<AppState>,
    _: Admin,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<AuditBody>>, ApiError> {
    let p = Paging::from_query(&q, &st, "audit")?;
    let given = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (mut from, mut after) = (None, p.cursor.clone());
    if let Some(a) = given("after") {
        match chrono::DateTime::parse_from_rfc3339(a) {
            Ok(t) => from = Some(format!("{:013}", t.timestamp_millis().max(-1) + 1)),
            Err(_) if Paging::is_cursor(a) => {
                after = after.or_else(|| Some(a.to_owned()));
            }
            Err(_) => {
                return Err(ApiError::invalid(
                    "after must be an RFC 3339 time like 2026-11-30T08:00:00Z, or an entry's id",
                ));
            }
        }
    }
    let key = given("key")
        .map(|k| {
            wetoken_core::keys::check_name(k)
                .map(|()| k.to_owned())
                .map_err(|e| ApiError::invalid(format!("key: {}", e.0)))
        })
        .transpose()?;
    let account = given("account")
        .map(|a| a.parse::<wetoken_core::domain::AccountId>())
        .transpose()
        .map_err(|e| ApiError::invalid(format!("account: {}", e.0)))?;
    let query = wetoken_core::store::AuditQuery {
        after,
        from,
        key,
        account,
        limit: p.limit,
    };
    let page = st.service.custody.audit(&query).await?;
    Ok(Json(page_json(&st, "audit", "entries", &page, render::audit)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub accounts: Option<Vec<String>>,
    pub format: Option<String>,
    pub reply: Option<bool>,
}

pub(crate) fn webhook_request(body: NewWebhook) -> Result<WebhookRequest, ApiError> {
    Ok(WebhookRequest {
        name: body.name.ok_or_else(|| ApiError::invalid("name: is required"))?,
        url: body.url.ok_or_else(|| ApiError::invalid("url: is required"))?,
        events: body
            .events
            .ok_or_else(|| ApiError::invalid("events: is required, a list of event type patterns"))?,
        accounts: body.accounts,
        format: body.format,
        reply: body.reply.unwrap_or(false),
    })
}

async fn list_webhooks(
    State(st): State<AppState>,
    _: Admin,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<WebhookBody>>, ApiError> {
    let p = Paging::from_query(&q, &st, "webhooks")?;
    let page = st.service.events.webhooks_page(p.cursor.as_deref(), p.limit).await?;
    Ok(Json(page_json(&st, "webhooks", "webhooks", &page, render::webhook)))
}

async fn delete_webhook(
    State(st): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.service.events.delete_webhook(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_deliveries(
    State(st): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<PageBody<DeliveryBody>>, ApiError> {
    let page = deliveries_page(&st, &name, &q).await?;
    Ok(Json(page_json(
        &st,
        &format!("deliveries:{name}"),
        "deliveries",
        &page,
        render::delivery,
    )))
}

/// A page of a webhook's deliveries for `?status=&after=&limit=&cursor=`.
pub(crate) async fn deliveries_page(
    st: &AppState,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<wetoken_core::service::Page<Delivery>, ApiError> {
    let Page { limit, after } = page(q, st, &format!("deliveries:{name}"))?;
    let status = q
        .get("status")
        .filter(|v| !v.is_empty())
        .map(|s| DeliveryStatus::parse(s))
        .transpose()
        .map_err(|e| ApiError::invalid(e.0))?;
    let list = st.service.events.deliveries(name, status, after, limit).await?;
    Ok(wetoken_core::service::Page::of(list, limit, |d| d.event_id.to_string()))
}

async fn retry_delivery(
    State(st): State<AppState>,
    _: Admin,
    Path((name, event_id)): Path<(String, String)>,
) -> Result<Json<DeliveryBody>, ApiError> {
    Ok(Json(render::delivery(&retry(&st, &name, &event_id).await?)))
}

/// Makes a finished delivery pending again (`event_id` as given).
pub(crate) async fn retry(st: &AppState, name: &str, event_id: &str) -> Result<Delivery, ApiError> {
    let event_id: i64 = event_id
        .parse()
        .map_err(|_| ApiError::invalid("event_id must be an event id"))?;
    Ok(st.service.events.retry_delivery(name, event_id).await?)
}
