//! Accounts: the list, adding one of any kind, an account with its credentials, refresh, rotate and delete.

use super::*;

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
    let page = match api::accounts::accounts_page(&st, &q).await {
        Ok(p) => p,
        Err(e) => return error_page(c, e),
    };
    let now = st.service.engine.now();
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
            secret: f.secret(),
            required: f.required,
            // Identifiers come back; secrets never do.
            value: if f.secret() {
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

/// The form's fields among `fields` (trimmed, empty ones left out), for
/// the one account parser the API uses.
fn fields_of(p: &Posted, fields: &[FieldSpec]) -> HashMap<String, String> {
    fields
        .iter()
        .filter_map(|f| p.get(f.name).map(|v| (f.name.to_owned(), v.to_owned())))
        .collect()
}

/// `POST /console/accounts`: what `POST /v1/accounts` does.
pub async fn create_account(State(st): State<AppState>, p: Posted) -> Response {
    let kind = match kind_of(p.get("kind")) {
        Ok(k) => k,
        Err(e) => return error_page(p.c, e),
    };
    let created = async {
        let new = NewAccount::parse(kind, &fields_of(&p, new_account_fields(kind)), &[])?;
        Ok::<_, ApiError>(st.service.accounts.create_account(new).await?)
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
    /// Where WeChat pushes for this account: (label, URL).
    receiving: Vec<(&'static str, String)>,
    /// Whether users' messages come to this account (SPEC §14), and the
    /// last one that came: (type, when).
    receives_messages: bool,
    last_push: Option<(String, String)>,
    /// The API-security keys as shown (SPEC §15): sns, which calls are
    /// signed, each certificate's number and validity; never a key.
    api_security: Option<ApiSecurityShown>,
}

struct ApiSecurityShown {
    sym_sn: String,
    private_sn: String,
    sign_all: bool,
    certs: Vec<(String, String, String)>,
}

/// The URLs to set at WeChat for account `id` (SPEC §5, §14), on this
/// server's public URL.
fn receiving_urls(public_url: &str, id: &AccountId) -> Vec<(&'static str, String)> {
    let base = public_url.trim_end_matches('/');
    match id {
        AccountId::Mp { appid } => vec![("Message URL", format!("{base}/callback/mp/{appid}"))],
        AccountId::Work { corpid, agentid } => {
            vec![("Message URL", format!("{base}/callback/work/{corpid}/{agentid}"))]
        }
        AccountId::Authorizer { component_appid, appid } => vec![(
            "Message URL",
            format!("{base}/callback/component/{component_appid}/messages/{appid}"),
        )],
        AccountId::Corp { suite_id, .. } => vec![("Message URL", format!("{base}/callback/suite/{suite_id}/data"))],
        AccountId::Component { appid } => vec![
            ("Authorization event URL", format!("{base}/callback/component/{appid}")),
            (
                "Message URL",
                format!("{base}/callback/component/{appid}/messages/$APPID$"),
            ),
        ],
        AccountId::Suite { suite_id } => vec![
            ("Instruction URL", format!("{base}/callback/suite/{suite_id}")),
            ("Data URL", format!("{base}/callback/suite/{suite_id}/data")),
        ],
        AccountId::Provider { .. } => Vec::new(),
    }
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
        let a = st.service.accounts.show_account(&id).await?;
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
                Some(api::accounts::accounts_page(&st, &lq).await?)
            }
        };
        let last_push = match &id {
            AccountId::Mp { .. } | AccountId::Work { .. } | AccountId::Authorizer { .. } | AccountId::Corp { .. } => {
                st.service.messages.last_push(&id).await?
            }
            _ => None,
        };
        Ok::<_, ApiError>((a, page, last_push))
    };
    let (a, children, last_push) = match shown.await {
        Ok(v) => v,
        Err(e) => return error_page(c, e),
    };
    let now = st.service.engine.now();
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
        receiving: receiving_urls(&st.public_url, &a.id),
        receives_messages: matches!(
            kind,
            AccountKind::Mp | AccountKind::Work | AccountKind::Authorizer | AccountKind::Corp
        ),
        last_push: last_push.map(|e| (e.kind, view::when(Some(wetoken_core::clock::from_millis(e.at))))),
        api_security: a.api_security.as_ref().map(|k| ApiSecurityShown {
            sym_sn: k.sym_sn.clone(),
            private_sn: k.private_sn.clone(),
            sign_all: k.sign_all,
            certs: k
                .certs
                .iter()
                .map(|c| {
                    let when = |ms| view::when(Some(wetoken_core::clock::from_millis(ms)));
                    (c.sn.clone(), when(c.not_before), when(c.not_after))
                })
                .collect(),
        }),
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
        st.service.engine.refresh(&id, cred, None).await?;
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
        let patch = AccountPatch::parse(id.kind(), &fields_of(&p, patch_fields(id.kind())), &[])?;
        st.service.accounts.patch_account(&id, patch).await?;
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
        st.service.accounts.delete_account(&id).await?;
        Ok(())
    };
    match done.await {
        Ok(()) => see("/console/accounts?done=deleted"),
        Err(e) => error_page(p.c, e),
    }
}
