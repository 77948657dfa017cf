//! The console's pages and actions. Each parses what it is given with the
//! API's own functions, calls the service as the API route does, and
//! renders the answer; an action redirects back (`?done=`) or shows what
//! is shown once (a new key, a webhook's secret, authorization links).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::{Map, Value};
use wetoken_core::account::{AccountPatch, FieldSpec, NewAccount, new_account_fields, patch_fields};
use wetoken_core::auth::Principal;
use wetoken_core::domain::{AccountId, AccountKind, Credential};
use wetoken_core::service::overview::COUNT_CAP;
use wetoken_core::service::{AccountFilter, AccountView};

use super::view::{self, AccountRow, AlertRow, DeliveryRow, EventRow, KeyRow, WebhookRow};
use super::{
    Chrome, LANG_COOKIE, Lang, Posted, SESSION_COOKIE, Signed, error_page, html, read_form, safe_next, see,
    see_with_cookies,
};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Paging, RawQuery};
use crate::{accounts, diagnostics, events, platforms};

/// A page anyone may see (sign-in, errors before sign-in).
pub struct Anon(Chrome);

impl FromRequestParts<AppState> for Anon {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Anon(Chrome::new(parts, None)))
    }
}

fn ahead(st: &AppState) -> i64 {
    st.service.config().refresh_ahead.as_secs() as i64
}

fn account_id(s: &str) -> Result<AccountId, ApiError> {
    Ok(s.parse::<AccountId>()?)
}

/// `path?k=v&…` with the non-empty values, URL-encoded.
fn link(path: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// A list's "next page" link: the same filters and the page's cursor.
fn next_link(path: &str, params: &[(&str, &str)], cursor: Option<&str>) -> Option<String> {
    let cursor = cursor?;
    let mut all = params.to_vec();
    all.push(("cursor", cursor));
    Some(link(path, &all))
}

/// Patterns as a person types them: comma- or line-separated.
fn split_list(v: Option<&str>) -> Option<Vec<String>> {
    let items: Vec<String> = v?
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some(items)
}

fn q_get<'a>(q: &'a HashMap<String, String>, k: &str) -> &'a str {
    q.get(k).map_or("", String::as_str)
}

/// `; Secure` when browsers reach this server over https.
fn secure(st: &AppState) -> &'static str {
    if st.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

fn session_cookie(st: &AppState, token: &str, max_age: i64) -> String {
    let secure = secure(st);
    format!("{SESSION_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

// ---- sign-in, sign-out, language

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SigninPage {
    c: Chrome,
    error: Option<String>,
    keys_off: bool,
    next: String,
}

fn signin_form(st: &AppState, c: Chrome, status: StatusCode, error: Option<String>, next: String) -> Response {
    let keys_off = !st.auth.enabled();
    html(
        status,
        &SigninPage {
            c,
            error,
            keys_off,
            next,
        },
    )
}

/// `GET /console/signin[?next=][&link=]`: the form, or a one-time link
/// redeemed.
pub async fn signin_page(State(st): State<AppState>, Anon(c): Anon, RawQuery(q): RawQuery) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    if let Some(l) = q.get("link") {
        return match st.service.redeem_sign_in_link(l).await {
            Ok(Some(s)) => see_with_cookies(&next, &[session_cookie(&st, &s.token, s.max_age_secs)]),
            Ok(None) => {
                let msg = c.t("This sign-in link was used already or has expired: sign in with the admin key.");
                let msg = msg.to_owned();
                signin_form(&st, c, StatusCode::FORBIDDEN, Some(msg), next)
            }
            Err(e) => error_page(c, e.into()),
        };
    }
    signin_form(&st, c, StatusCode::OK, None, next)
}

/// `POST /console/signin`: the admin key (any key with keys off) starts a
/// session.
pub async fn signin(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let c = Chrome::new(&parts, None);
    let form = match read_form(&parts, body, &st).await {
        Ok(f) => f,
        Err(e) => return error_page(c, e),
    };
    let next = safe_next(form.get("next").map(String::as_str));
    let key = form.get("key").map_or("", |k| k.trim());
    let admin = match st.auth.authenticate(Some(&format!("Bearer {key}"))).await {
        Ok(p) => p.is_admin(),
        Err(wetoken_core::auth::AuthError::Unauthorized) => false,
        Err(e) => return error_page(c, e.into()),
    };
    if !admin {
        // A wrong sign-in counts against its source (SPEC §4).
        let source = parts.extensions.get::<crate::serve::Peer>().map(|p| p.0);
        if let e @ wetoken_core::auth::AuthError::Throttled { .. } = st.auth.failed(source) {
            return error_page(c, e.into());
        }
        let msg = c.t("That is not the admin key.").to_owned();
        return signin_form(&st, c, StatusCode::FORBIDDEN, Some(msg), next);
    }
    match st.service.start_session().await {
        Ok(s) => {
            tracing::info!("console: signed in");
            see_with_cookies(&next, &[session_cookie(&st, &s.token, s.max_age_secs)])
        }
        Err(e) => error_page(c, e.into()),
    }
}

/// `POST /console/signout`: the session ends everywhere.
pub async fn signout(State(st): State<AppState>, p: Posted) -> Response {
    if let Err(e) = st.service.end_session(&p.token).await {
        return error_page(p.c, e.into());
    }
    see_with_cookies("/console/signin?done=signed_out", &[session_cookie(&st, "", 0)])
}

/// `GET /console/lang/{en|zh}?back=`: remembers the choice in a cookie.
pub async fn set_lang(
    State(st): State<AppState>,
    Anon(c): Anon,
    Path(lang): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return error_page(c, ApiError::not_found("languages are en and zh"));
    };
    let secure = secure(&st);
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/console; SameSite=Lax; Max-Age=31536000{secure}",
        lang.code()
    );
    see_with_cookies(&safe_next(q.get("back").map(String::as_str)), &[cookie])
}

// ---- overview

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
    let o = match st.service.overview().await {
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

// ---- accounts

const STATUSES: [&str; 3] = ["active", "needs_reauthorization", "revoked"];

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    c: Chrome,
    kinds: Vec<(&'static str, &'static str)>,
    statuses: [&'static str; 3],
    kind: String,
    status: String,
    q: String,
    accounts: Vec<AccountRow>,
    next: Option<String>,
}

/// `GET /console/accounts?kind=&status=&q=&cursor=`.
pub async fn accounts(State(st): State<AppState>, Signed { c }: Signed, RawQuery(q): RawQuery) -> Response {
    let c = c.with_nav("accounts");
    let page = match accounts::accounts_page(&st, &q).await {
        Ok(p) => p,
        Err(e) => return error_page(c, e),
    };
    let now = st.service.now();
    let (kind, status, qq) = (q_get(&q, "kind"), q_get(&q, "status"), q_get(&q, "q"));
    let next = next_link(
        "/console/accounts",
        &[
            ("kind", kind),
            ("status", status),
            ("q", qq),
            ("limit", q_get(&q, "limit")),
        ],
        crate::extract::next_cursor(&st, "accounts", page.next_cursor.as_deref()).as_deref(),
    );
    html(
        StatusCode::OK,
        &AccountsPage {
            kinds: view::kinds(),
            statuses: STATUSES,
            kind: kind.to_owned(),
            status: status.to_owned(),
            q: qq.to_owned(),
            accounts: page
                .items
                .iter()
                .map(|a| view::account_row(a, now, ahead(&st)))
                .collect(),
            next,
            c,
        },
    )
}

struct FieldRow {
    name: &'static str,
    secret: bool,
    required: bool,
    value: String,
}

#[derive(Template)]
#[template(path = "console/account_new.html")]
struct NewAccountPage {
    c: Chrome,
    kinds: Vec<(&'static str, &'static str)>,
    kind: &'static str,
    fields: Vec<FieldRow>,
    error: Option<String>,
}

fn new_account_page(
    c: Chrome,
    kind: AccountKind,
    values: &HashMap<String, String>,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let fields = new_account_fields(kind)
        .iter()
        .map(|f| FieldRow {
            name: f.name,
            secret: f.secret,
            required: f.required,
            // Identifiers come back; secrets never do.
            value: if f.secret {
                String::new()
            } else {
                q_get(values, f.name).to_owned()
            },
        })
        .collect();
    html(
        status,
        &NewAccountPage {
            c: c.with_nav("accounts"),
            kinds: view::kinds(),
            kind: kind.as_str(),
            fields,
            error,
        },
    )
}

fn kind_of(v: Option<&str>) -> Result<AccountKind, ApiError> {
    match v {
        None | Some("") => Ok(AccountKind::Mp),
        Some(k) => Ok(k.parse::<AccountKind>()?),
    }
}

/// `GET /console/accounts/new?kind=` (identifiers may be given to prefill).
pub async fn new_account(Signed { c }: Signed, RawQuery(q): RawQuery) -> Response {
    match kind_of(q.get("kind").map(String::as_str)) {
        Ok(kind) => new_account_page(c, kind, &q, StatusCode::OK, None),
        Err(e) => error_page(c, e),
    }
}

/// The JSON body the API would get from a form: the given fields among
/// `fields`, as strings (empty ones left out).
fn body_of(p: &Posted, fields: &[FieldSpec], kind: Option<AccountKind>) -> Value {
    let mut m = Map::new();
    if let Some(k) = kind {
        m.insert("kind".into(), k.as_str().into());
    }
    for f in fields {
        if let Some(v) = p.get(f.name) {
            m.insert(f.name.into(), v.into());
        }
    }
    Value::Object(m)
}

/// `POST /console/accounts`: what `POST /v1/accounts` does.
pub async fn create_account(State(st): State<AppState>, p: Posted) -> Response {
    let kind = match kind_of(p.get("kind")) {
        Ok(k) => k,
        Err(e) => return error_page(p.c, e),
    };
    let created = async {
        let new = NewAccount::from_json(&body_of(&p, new_account_fields(kind), Some(kind)))?;
        Ok::<_, ApiError>(st.service.create_account(new).await?)
    };
    match created.await {
        Ok(a) => see(&format!("/console/accounts/{}?done=created", a.id)),
        Err(e) => new_account_page(p.c, kind, &p.form, e.status, Some(e.message)),
    }
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    c: Chrome,
    a: AccountRow,
    token_api: Option<&'static str>,
    agentid: Option<String>,
    created_at: String,
    is_component: bool,
    is_suite: bool,
    has_diagnostics: bool,
    patch_fields: &'static [FieldSpec],
    children: Vec<AccountRow>,
    children_q: String,
    children_next: Option<String>,
}

/// `GET /console/accounts/{id}[?q=&cursor=]`: the account, its
/// credentials, and a component's authorizers or a suite's corps (a page,
/// searched by id prefix, as `GET /v1/accounts?kind=&q=` lists them).
pub async fn account(
    State(st): State<AppState>,
    Signed { c }: Signed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let c = c.with_nav("accounts");
    let shown = async {
        let id = account_id(&id)?;
        let a = st.service.show_account(&id).await?;
        let children = match &id {
            AccountId::Component { appid } => Some(("authorizer", format!("authorizer:{appid}:"))),
            AccountId::Suite { suite_id } => Some(("corp", format!("corp:{suite_id}:"))),
            _ => None,
        };
        let page = match children {
            None => None,
            Some((kind, prefix)) => {
                let mut lq = HashMap::new();
                lq.insert("kind".to_owned(), kind.to_owned());
                lq.insert("q".to_owned(), format!("{prefix}{}", q_get(&q, "q")));
                lq.insert("limit".to_owned(), "50".to_owned());
                if let Some(cur) = q.get("cursor") {
                    lq.insert("cursor".to_owned(), cur.clone());
                }
                Some(accounts::accounts_page(&st, &lq).await?)
            }
        };
        Ok::<_, ApiError>((a, page))
    };
    let (a, children) = match shown.await {
        Ok(v) => v,
        Err(e) => return error_page(c, e),
    };
    let now = st.service.now();
    let ahead = ahead(&st);
    let kind = a.id.kind();
    let id_text = a.id.to_string();
    let children_q = q_get(&q, "q").to_owned();
    let children_next = children.as_ref().and_then(|p| {
        next_link(
            &format!("/console/accounts/{id_text}"),
            &[("q", &children_q)],
            crate::extract::next_cursor(&st, "accounts", p.next_cursor.as_deref()).as_deref(),
        )
    });
    let page = AccountPage {
        a: view::account_row(&a, now, ahead),
        token_api: a.token_api.map(|t| t.as_str()),
        agentid: a.agentid.clone(),
        created_at: view::when(Some(a.created_at)),
        is_component: kind == AccountKind::Component,
        is_suite: kind == AccountKind::Suite,
        has_diagnostics: matches!(kind, AccountKind::Mp | AccountKind::Authorizer),
        patch_fields: patch_fields(kind),
        children: children
            .map(|p| p.items.iter().map(|a| view::account_row(a, now, ahead)).collect())
            .unwrap_or_default(),
        children_q,
        children_next,
        c,
    };
    html(StatusCode::OK, &page)
}

/// `POST /console/accounts/{id}/refresh` (`credential`): what `POST
/// …/{cred}/refresh` with an empty body does.
pub async fn refresh(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let done = async {
        let id = account_id(&id)?;
        let cred = p
            .get("credential")
            .unwrap_or_default()
            .parse::<Credential>()
            .map_err(|_| ApiError::invalid("credential: not a credential name"))?;
        st.service.refresh(&id, cred, None).await?;
        Ok::<_, ApiError>(id)
    };
    match done.await {
        Ok(id) => see(&format!("/console/accounts/{id}?done=refreshed")),
        Err(e) => error_page(p.c, e),
    }
}

/// `POST /console/accounts/{id}/rotate`: what `PATCH /v1/accounts/{id}`
/// does with the fields filled in.
pub async fn rotate(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let done = async {
        let id = account_id(&id)?;
        let patch = AccountPatch::from_json(id.kind(), &body_of(&p, patch_fields(id.kind()), None))?;
        st.service.patch_account(&id, patch).await?;
        Ok::<_, ApiError>(id)
    };
    match done.await {
        Ok(id) => see(&format!("/console/accounts/{id}?done=rotated")),
        Err(e) => error_page(p.c, e),
    }
}

/// `POST /console/accounts/{id}/delete` with `confirm` = the id.
pub async fn delete_account(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let done = async {
        let id = account_id(&id)?;
        if p.get("confirm") != Some(id.to_string().as_str()) {
            return Err(ApiError::invalid(format!("type {id} to confirm the deletion")));
        }
        st.service.delete_account(&id).await?;
        Ok(())
    };
    match done.await {
        Ok(()) => see("/console/accounts?done=deleted"),
        Err(e) => error_page(p.c, e),
    }
}

// ---- Open Platform authorization

struct Links {
    pc: String,
    h5: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "console/authorize.html")]
struct AuthorizePage {
    c: Chrome,
    component: String,
    auth_type: String,
    biz_appid: String,
    category_id_list: String,
    links: Option<Links>,
    error: Option<String>,
}

fn component_of(id: &str) -> Result<AccountId, ApiError> {
    match account_id(id)? {
        c @ AccountId::Component { .. } => Ok(c),
        _ => Err(ApiError::not_found("authorization links are made for components")),
    }
}

/// `GET /console/accounts/{component}/authorize`: the form.
pub async fn authorize_page(Signed { c }: Signed, Path(id): Path<String>) -> Response {
    match component_of(&id) {
        Ok(id) => html(
            StatusCode::OK,
            &AuthorizePage {
                c: c.with_nav("platforms"),
                component: id.to_string(),
                auth_type: "3".into(),
                biz_appid: String::new(),
                category_id_list: String::new(),
                links: None,
                error: None,
            },
        ),
        Err(e) => error_page(c, e),
    }
}

/// The QR code of `text` as inline SVG, drawn on the server.
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Some(svg[svg.find("<svg")?..].to_owned())
}

/// `POST /console/accounts/{component}/authorize`: a PC and an H5 link
/// (each with its own pre_auth_code, as `GET …/auth_url` makes them) and
/// the H5 link's QR code.
pub async fn authorize(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let mut q = HashMap::new();
    for k in ["auth_type", "biz_appid", "category_id_list"] {
        if let Some(v) = p.get(k) {
            q.insert(k.to_owned(), v.to_owned());
        }
    }
    let made = async {
        let id = component_of(&id)?;
        let mut pc_q = q.clone();
        pc_q.insert("platform".into(), "pc".into());
        let pc = platforms::auth_url_for(&st, &id, &pc_q).await?;
        let mut h5_q = q.clone();
        h5_q.insert("platform".into(), "h5".into());
        let h5 = platforms::auth_url_for(&st, &id, &h5_q).await?;
        let qr_svg = qr_svg(&h5).ok_or_else(|| ApiError::invalid("the link is too long for a QR code"))?;
        Ok::<_, ApiError>(Links { pc, h5, qr_svg })
    };
    let (status, links, error) = match made.await {
        Ok(l) => (StatusCode::OK, Some(l), None),
        Err(e) => (e.status, None, Some(e.message)),
    };
    html(
        status,
        &AuthorizePage {
            c: p.c.with_nav("platforms"),
            component: id,
            auth_type: q.get("auth_type").cloned().unwrap_or_else(|| "3".into()),
            biz_appid: q.get("biz_appid").cloned().unwrap_or_default(),
            category_id_list: q.get("category_id_list").cloned().unwrap_or_default(),
            links,
            error,
        },
    )
}

#[derive(Template)]
#[template(path = "console/platforms.html")]
struct PlatformsPage {
    c: Chrome,
    components: Vec<AccountRow>,
    suites: Vec<AccountRow>,
}

/// `GET /console/platforms`: components and suites (the first 100 of
/// each; the accounts page lists them all).
pub async fn platforms(State(st): State<AppState>, Signed { c }: Signed) -> Response {
    let c = c.with_nav("platforms");
    let now = st.service.now();
    let mut lists = Vec::new();
    for kind in [AccountKind::Component, AccountKind::Suite] {
        let filter = AccountFilter {
            kind: Some(kind),
            ..AccountFilter::default()
        };
        match st.service.list_accounts(&filter, None, 100).await {
            Ok(p) => lists.push(
                p.items
                    .iter()
                    .map(|a: &AccountView| view::account_row(a, now, ahead(&st)))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => return error_page(c, e.into()),
        }
    }
    let suites = lists.pop().unwrap_or_default();
    let components = lists.pop().unwrap_or_default();
    html(StatusCode::OK, &PlatformsPage { c, components, suites })
}

// ---- keys

struct NewKeyRow {
    name: String,
    key: String,
    accounts: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    c: Chrome,
    created: Option<NewKeyRow>,
    error: Option<String>,
    form_name: String,
    form_accounts: String,
    keys: Vec<KeyRow>,
    next: Option<String>,
}

async fn keys_page(
    st: &AppState,
    c: Chrome,
    q: &HashMap<String, String>,
    status: StatusCode,
    created: Option<NewKeyRow>,
    error: Option<(String, String, String)>,
) -> Response {
    let c = c.with_nav("keys");
    let listed = async {
        let p = Paging::from_query(q, st, "keys")?;
        Ok::<_, ApiError>(st.service.list_keys(p.cursor.as_deref(), p.limit).await?)
    };
    let page = match listed.await {
        Ok(p) => p,
        Err(e) => return error_page(c, e),
    };
    let (error, form_name, form_accounts) =
        error.map_or((None, String::new(), String::new()), |(e, n, a)| (Some(e), n, a));
    html(
        status,
        &KeysPage {
            created,
            error,
            form_name,
            form_accounts,
            keys: page.items.iter().map(view::key_row).collect(),
            next: next_link(
                "/console/keys",
                &[],
                crate::extract::next_cursor(st, "keys", page.next_cursor.as_deref()).as_deref(),
            ),
            c,
        },
    )
}

pub async fn keys(State(st): State<AppState>, Signed { c }: Signed, RawQuery(q): RawQuery) -> Response {
    keys_page(&st, c, &q, StatusCode::OK, None, None).await
}

/// `POST /console/keys`: what `POST /v1/keys` does; the key is shown on
/// this answer only.
pub async fn create_key(State(st): State<AppState>, p: Posted) -> Response {
    let name = p.get("name").map(str::to_owned);
    let patterns = split_list(p.get("accounts"));
    let no_query = HashMap::new();
    // The box is ticked unless the key is for token-free calls only.
    let tokens = p.get("tokens") == Some("yes");
    let paths = split_list(p.get("paths")).filter(|l| !l.is_empty());
    match accounts::create_client_key(&st, name, patterns, tokens, paths).await {
        Ok((name, key, accounts)) => {
            let created = NewKeyRow {
                name,
                key,
                accounts: accounts.join(", "),
            };
            keys_page(&st, p.c, &no_query, StatusCode::OK, Some(created), None).await
        }
        Err(e) => {
            let again = (
                e.message,
                p.get("name").unwrap_or_default().to_owned(),
                p.get("accounts").unwrap_or_default().to_owned(),
            );
            keys_page(&st, p.c, &no_query, e.status, None, Some(again)).await
        }
    }
}

fn confirmed(p: &Posted) -> Result<(), ApiError> {
    if p.get("confirm") == Some("yes") {
        Ok(())
    } else {
        Err(ApiError::invalid("tick the box to confirm"))
    }
}

/// `POST /console/keys/{name}/delete` (confirmed).
pub async fn delete_key(State(st): State<AppState>, Path(name): Path<String>, p: Posted) -> Response {
    let done = async {
        confirmed(&p)?;
        accounts::remove_key(&st, &name).await
    };
    match done.await {
        Ok(()) => see("/console/keys?done=deleted"),
        Err(e) => error_page(p.c, e),
    }
}

// ---- webhooks and deliveries

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
        Ok::<_, ApiError>(st.service.webhooks_page(p.cursor.as_deref(), p.limit).await?)
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
        let req = events::webhook_request(events::NewWebhook {
            name: p.get("name").map(str::to_owned),
            url: p.get("url").map(str::to_owned),
            events: split_list(p.get("events")),
            accounts: split_list(p.get("accounts")).filter(|a| !a.is_empty()),
            format: p.get("format").map(str::to_owned),
        })?;
        Ok::<_, ApiError>(st.service.create_webhook(&req).await?)
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
        Ok::<_, ApiError>(st.service.delete_webhook(&name).await?)
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
    match events::deliveries_page(&st, &name, &q).await {
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
    match events::retry(&st, &name, &event_id).await {
        Ok(_) => see(&format!("/console/webhooks/{name}?done=retried")),
        Err(e) => error_page(p.c, e),
    }
}

// ---- events

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
            let last = st.service.last_event_id().await?;
            q.insert("after".into(), (last - 50).max(0).to_string());
        }
        q.entry("limit".into()).or_insert_with(|| "50".into());
        let filter = events::event_filter(&st, &q, &Principal::Admin)?;
        Ok::<_, ApiError>(st.service.events(&filter, |_| true).await?)
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

// ---- diagnostics

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
    let clears_used = match st.service.show_account(&id).await {
        Ok(a) => st.service.clears_used_this_month(&a),
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
            let quota = st.service.quota(&id, diagnostics::cgi_path(&q)?).await?;
            page.quota = Some(QuotaRow {
                daily_limit: quota.daily_limit,
                used: quota.used,
                remain: quota.remain,
            });
        }
        if let Some(rid) = q.get("rid") {
            let found = st.service.rid(&id, diagnostics::rid_param(rid)?).await?;
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
        diagnostics::clear(&st, &id).await?;
        Ok::<_, ApiError>(id)
    };
    match done.await {
        Ok(id) => see(&format!("/console/accounts/{id}/diagnostics?done=cleared")),
        Err(e) => error_page(p.c, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_encode_them() {
        assert_eq!(
            link("/console/accounts", &[("kind", "mp"), ("q", "")]),
            "/console/accounts?kind=mp"
        );
        assert_eq!(
            next_link("/console/events", &[("type", "component.*")], Some("41")).as_deref(),
            Some("/console/events?type=component.*&cursor=41")
        );
        assert_eq!(link("/x", &[("q", "a b&c")]), "/x?q=a+b%26c");
        assert_eq!(next_link("/x", &[], None), None);
    }

    #[test]
    fn lists_split_on_commas_and_lines() {
        assert_eq!(
            split_list(Some("mp:wx1, component:wxc/*\n*\r\n")).unwrap(),
            ["mp:wx1", "component:wxc/*", "*"]
        );
        assert_eq!(split_list(None), None);
    }

    #[test]
    fn qr_codes_are_inline_svg() {
        let svg = qr_svg("https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("<path") || svg.contains("<rect"));
    }
}
