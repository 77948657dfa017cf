//! API keys: the list, a new key shown once, delete.

use super::*;

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
        Ok::<_, ApiError>(st.service.custody.list_keys(p.cursor.as_deref(), p.limit).await?)
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
    match api::accounts::create_client_key(&st, name, patterns, tokens, paths).await {
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

/// `POST /console/keys/{name}/delete` (confirmed).
pub async fn delete_key(State(st): State<AppState>, Path(name): Path<String>, p: Posted) -> Response {
    let done = async {
        confirmed(&p)?;
        api::accounts::remove_key(&st, &name).await
    };
    match done.await {
        Ok(()) => see("/console/keys?done=deleted"),
        Err(e) => error_page(p.c, e),
    }
}
