//! Diagnostics: quotas of the token endpoints, rid lookup, clear quota.

use super::*;

struct QuotaRow {
    daily_limit: i64,
    used: i64,
    remain: i64,
}

#[derive(Template)]
#[template(path = "console/diagnostics.html")]
struct DiagnosticsPage {
    c: Chrome,
    account: Option<String>,
    error: Option<String>,
    cgi_paths: &'static [&'static str],
    cgi_path: String,
    quota: Option<QuotaRow>,
    rid: String,
    rid_result: Option<String>,
    clears_used: u32,
}

/// The token endpoints whose quota an operator asks about most.
const CGI_PATHS: &[&str] = &["/cgi-bin/stable_token", "/cgi-bin/token", "/cgi-bin/ticket/getticket"];

/// An account id that diagnostics serve (the service's own rule).
fn diagnosable(id: &str) -> Result<AccountId, ApiError> {
    let id = account_id(id)?;
    wetoken_core::service::diagnostics::diagnosable(&id)?;
    Ok(id)
}

/// `GET /console/diagnostics[?account=]`: pick an account.
pub async fn diagnostics_pick(Signed { c }: Signed, RawQuery(q): RawQuery) -> Response {
    let c = c.with_nav("diagnostics");
    match q.get("account").map(|a| a.trim()).filter(|a| !a.is_empty()) {
        Some(a) => match diagnosable(a) {
            Ok(id) => see(&format!("/console/accounts/{id}/diagnostics")),
            Err(e) => error_page(c, e),
        },
        None => html(
            StatusCode::OK,
            &DiagnosticsPage {
                c,
                account: None,
                error: None,
                cgi_paths: CGI_PATHS,
                cgi_path: String::new(),
                quota: None,
                rid: String::new(),
                rid_result: None,
                clears_used: 0,
            },
        ),
    }
}

/// `GET /console/accounts/{id}/diagnostics[?cgi_path=][&rid=]`: what
/// `GET …/quota` and `GET …/rid/{rid}` answer.
pub async fn diagnostics(
    State(st): State<AppState>,
    Signed { c }: Signed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let c = c.with_nav("diagnostics");
    let id = match diagnosable(&id) {
        Ok(id) => id,
        Err(e) => return error_page(c, e),
    };
    let clears_used = match st.service.accounts.show_account(&id).await {
        Ok(a) => st.service.accounts.clears_used_this_month(&a),
        Err(e) => return error_page(c, e.into()),
    };
    let mut page = DiagnosticsPage {
        c,
        account: Some(id.to_string()),
        error: None,
        cgi_paths: CGI_PATHS,
        cgi_path: q_get(&q, "cgi_path").to_owned(),
        quota: None,
        rid: q_get(&q, "rid").to_owned(),
        rid_result: None,
        clears_used,
    };
    let asked = async {
        if q.contains_key("cgi_path") {
            let quota = st.service.accounts.quota(&id, api::diagnostics::cgi_path(&q)?).await?;
            page.quota = Some(QuotaRow {
                daily_limit: quota.daily_limit,
                used: quota.used,
                remain: quota.remain,
            });
        }
        if let Some(rid) = q.get("rid") {
            let found = st.service.accounts.rid(&id, api::diagnostics::rid_param(rid)?).await?;
            page.rid_result = Some(serde_json::to_string_pretty(&Value::Object(found.0)).unwrap_or_default());
        }
        Ok::<_, ApiError>(())
    };
    let status = match asked.await {
        Ok(()) => StatusCode::OK,
        Err(e) => {
            let mut msg = e.message;
            if let Some((code, m)) = e.upstream {
                msg = format!("{msg} (errcode {code}: {m})");
            }
            page.error = Some(msg);
            e.status
        }
    };
    html(status, &page)
}

/// `POST /console/accounts/{id}/clear_quota` (confirmed): what `POST
/// …/clear_quota` does.
pub async fn clear_quota(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let done = async {
        confirmed(&p)?;
        let id = diagnosable(&id)?;
        api::diagnostics::clear(&st, &id).await?;
        Ok::<_, ApiError>(id)
    };
    match done.await {
        Ok(id) => see(&format!("/console/accounts/{id}/diagnostics?done=cleared")),
        Err(e) => error_page(p.c, e),
    }
}
