//! The overview: what needs an operator.

use super::*;

struct CountRow {
    kind: &'static str,
    label: &'static str,
    count: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    c: Chrome,
    counts: Vec<CountRow>,
    failing: Vec<AlertRow>,
    expiring: Vec<AlertRow>,
    stale: Vec<AlertRow>,
    events: Vec<EventRow>,
}

pub async fn overview(State(st): State<AppState>, Signed { c }: Signed) -> Response {
    let c = c.with_nav("overview");
    let o = match st.service.console.overview().await {
        Ok(o) => o,
        Err(e) => return error_page(c, e.into()),
    };
    let ahead = ahead(&st);
    let rows = |list: &[wetoken_core::service::overview::CredentialAlert]| {
        list.iter().map(|a| view::alert_row(a, o.at, ahead)).collect::<Vec<_>>()
    };
    let page = OverviewPage {
        counts: o
            .counts
            .iter()
            .map(|(k, n)| CountRow {
                kind: k.as_str(),
                label: view::kind_label(*k),
                count: if *n >= COUNT_CAP {
                    format!("{COUNT_CAP}+")
                } else {
                    n.to_string()
                },
            })
            .collect(),
        failing: rows(&o.failing),
        expiring: rows(&o.expiring),
        stale: rows(&o.stale_tickets),
        events: o.events.iter().map(view::event_row).collect(),
        c,
    };
    html(StatusCode::OK, &page)
}
