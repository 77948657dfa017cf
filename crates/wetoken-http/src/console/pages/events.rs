//! Events, oldest first, from 50 before the newest.

use super::*;

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    c: Chrome,
    kind: String,
    account: String,
    after: String,
    events: Vec<EventRow>,
    next: Option<String>,
}

/// `GET /console/events?type=&account=&after=&cursor=`: oldest first, as
/// `GET /v1/events` lists them; without `after` or a cursor it starts 50
/// before the newest.
pub async fn events(State(st): State<AppState>, Signed { c }: Signed, RawQuery(mut q): RawQuery) -> Response {
    let c = c.with_nav("events");
    let listed = async {
        if q_get(&q, "after").is_empty() && q_get(&q, "cursor").is_empty() {
            let last = st.service.console.last_event_id().await?;
            q.insert("after".into(), (last - 50).max(0).to_string());
        }
        q.entry("limit".into()).or_insert_with(|| "50".into());
        let filter = api::events::event_filter(&st, &q, &Principal::Admin)?;
        Ok::<_, ApiError>(st.service.events.events(&filter, |_| true).await?)
    };
    match listed.await {
        Ok(page) => {
            let raw = page.next_cursor.map(|c| c.to_string());
            let cursor = crate::extract::next_cursor(&st, "events", raw.as_deref());
            let (kind, account) = (q_get(&q, "type").to_owned(), q_get(&q, "account").to_owned());
            let next = next_link(
                "/console/events",
                &[("type", &kind), ("account", &account)],
                cursor.as_deref(),
            );
            html(
                StatusCode::OK,
                &EventsPage {
                    after: q_get(&q, "after").to_owned(),
                    events: page.events.iter().map(view::event_row).collect(),
                    kind,
                    account,
                    next,
                    c,
                },
            )
        }
        Err(e) => error_page(c, e),
    }
}
