//! Open Platform: authorizing an account (PC and H5 links, a QR code), the platforms.

use super::*;

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
pub(super) fn qr_svg(text: &str) -> Option<String> {
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
        let pc = api::platforms::auth_url_for(&st, &id, &pc_q).await?;
        let mut h5_q = q.clone();
        h5_q.insert("platform".into(), "h5".into());
        let h5 = api::platforms::auth_url_for(&st, &id, &h5_q).await?;
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
    let now = st.service.engine.now();
    let mut lists = Vec::new();
    for kind in [AccountKind::Component, AccountKind::Suite] {
        let filter = AccountFilter {
            kind: Some(kind),
            ..AccountFilter::default()
        };
        match st.service.accounts.list_accounts(&filter, None, 100).await {
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
