//! Webhooks (a new secret shown once) and their deliveries, with retry.

use super::*;

struct NewWebhookRow {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    c: Chrome,
    created: Option<NewWebhookRow>,
    error: Option<String>,
    webhooks: Vec<WebhookRow>,
    next: Option<String>,
}

async fn webhooks_page(
    st: &AppState,
    c: Chrome,
    q: &HashMap<String, String>,
    status: StatusCode,
    created: Option<NewWebhookRow>,
    error: Option<String>,
) -> Response {
    let c = c.with_nav("webhooks");
    let listed = async {
        let p = Paging::from_query(q, st, "webhooks")?;
        Ok::<_, ApiError>(st.service.events.webhooks_page(p.cursor.as_deref(), p.limit).await?)
    };
    match listed.await {
        Ok(page) => html(
            status,
            &WebhooksPage {
                created,
                error,
                webhooks: page.items.iter().map(view::webhook_row).collect(),
                next: next_link(
                    "/console/webhooks",
                    &[],
                    crate::extract::next_cursor(st, "webhooks", page.next_cursor.as_deref()).as_deref(),
                ),
                c,
            },
        ),
        Err(e) => error_page(c, e),
    }
}

pub async fn webhooks(State(st): State<AppState>, Signed { c }: Signed, RawQuery(q): RawQuery) -> Response {
    webhooks_page(&st, c, &q, StatusCode::OK, None, None).await
}

/// `POST /console/webhooks`: what `POST /v1/webhooks` does; the secret is
/// shown on this answer only.
pub async fn create_webhook(State(st): State<AppState>, p: Posted) -> Response {
    let no_query = HashMap::new();
    let made = async {
        let req = api::events::webhook_request(api::events::NewWebhook {
            name: p.get("name").map(str::to_owned),
            url: p.get("url").map(str::to_owned),
            events: split_list(p.get("events")),
            accounts: split_list(p.get("accounts")).filter(|a| !a.is_empty()),
            format: p.get("format").map(str::to_owned),
            // Reply webhooks are made with the API for now (SPEC §14).
            reply: None,
        })?;
        Ok::<_, ApiError>(st.service.events.create_webhook(&req).await?)
    };
    match made.await {
        Ok((w, secret)) => {
            let created = NewWebhookRow {
                name: w.name,
                secret: secret.expose().to_owned(),
            };
            webhooks_page(&st, p.c, &no_query, StatusCode::OK, Some(created), None).await
        }
        Err(e) => webhooks_page(&st, p.c, &no_query, e.status, None, Some(e.message)).await,
    }
}

/// `POST /console/webhooks/{name}/delete` (confirmed).
pub async fn delete_webhook(State(st): State<AppState>, Path(name): Path<String>, p: Posted) -> Response {
    let done = async {
        confirmed(&p)?;
        Ok::<_, ApiError>(st.service.events.delete_webhook(&name).await?)
    };
    match done.await {
        Ok(()) => see("/console/webhooks?done=deleted"),
        Err(e) => error_page(p.c, e),
    }
}

#[derive(Template)]
#[template(path = "console/deliveries.html")]
struct DeliveriesPage {
    c: Chrome,
    name: String,
    status: String,
    statuses: [&'static str; 3],
    deliveries: Vec<DeliveryRow>,
    next: Option<String>,
}

/// `GET /console/webhooks/{name}?status=&cursor=`.
pub async fn deliveries(
    State(st): State<AppState>,
    Signed { c }: Signed,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let c = c.with_nav("webhooks");
    match api::events::deliveries_page(&st, &name, &q).await {
        Ok(page) => {
            let status = q_get(&q, "status").to_owned();
            let next = next_link(
                &format!("/console/webhooks/{name}"),
                &[("status", &status)],
                crate::extract::next_cursor(&st, &format!("deliveries:{name}"), page.next_cursor.as_deref()).as_deref(),
            );
            html(
                StatusCode::OK,
                &DeliveriesPage {
                    c,
                    status,
                    statuses: ["pending", "delivered", "failed"],
                    deliveries: page.items.iter().map(view::delivery_row).collect(),
                    next,
                    name,
                },
            )
        }
        Err(e) => error_page(c, e),
    }
}

/// `POST /console/webhooks/{name}/deliveries/{event_id}/retry`.
pub async fn retry_delivery(
    State(st): State<AppState>,
    Path((name, event_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    match api::events::retry(&st, &name, &event_id).await {
        Ok(_) => see(&format!("/console/webhooks/{name}?done=retried")),
        Err(e) => error_page(p.c, e),
    }
}
