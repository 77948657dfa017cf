//! The web console (SPEC §11) at `/console/`: server-rendered HTML
//! (askama templates under `templates/console/`, compiled into the binary
//! with the stylesheet and the one small script), in English and Chinese.
//!
//! - Sign-in with the admin key starts a session (`service::sessions`): a
//!   cookie `HttpOnly; SameSite=Strict; Path=/console` (`Secure` when
//!   `WETOKEN_PUBLIC_URL` is https), 12 h, ended by sign-out on every
//!   instance. Pages without a session redirect to the sign-in page.
//! - Every form is a POST carrying the session's CSRF token ([`Posted`]);
//!   a post from another site or origin (the same check as the API's), or
//!   without the token, is 403 and changes nothing.
//! - Pages call the same service functions, with the same parsing, as the
//!   API routes (`accounts`, `platforms`, `events`, `diagnostics` export
//!   them): the console has no rule of its own, only presentation
//!   (`view`).
//! - Responses carry a strict Content-Security-Policy (no inline script,
//!   nothing from another origin), `X-Frame-Options: DENY`,
//!   `Referrer-Policy: same-origin` and `Cache-Control: no-store`.

mod i18n;
mod pages;
mod view;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wetoken_core::service::sessions::{csrf_ok, csrf_token};

pub use i18n::Lang;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{not_from_a_browser_elsewhere, read_body};

const SESSION_COOKIE: &str = "wetoken_session";
const LANG_COOKIE: &str = "wetoken_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { see("/console/") }))
        .route("/console", get(|| async { see("/console/") }))
        .route("/console/", get(pages::overview))
        .route("/console/signin", get(pages::signin_page).post(pages::signin))
        .route("/console/signout", post(pages::signout))
        .route("/console/lang/{lang}", get(pages::set_lang))
        .route("/console/assets/{file}", get(asset))
        .route("/console/accounts", get(pages::accounts).post(pages::create_account))
        .route("/console/accounts/new", get(pages::new_account))
        .route("/console/accounts/{id}", get(pages::account))
        .route("/console/accounts/{id}/refresh", post(pages::refresh))
        .route("/console/accounts/{id}/rotate", post(pages::rotate))
        .route("/console/accounts/{id}/delete", post(pages::delete_account))
        .route(
            "/console/accounts/{id}/authorize",
            get(pages::authorize_page).post(pages::authorize),
        )
        .route("/console/accounts/{id}/diagnostics", get(pages::diagnostics))
        .route("/console/accounts/{id}/clear_quota", post(pages::clear_quota))
        .route("/console/platforms", get(pages::platforms))
        .route("/console/keys", get(pages::keys).post(pages::create_key))
        .route("/console/keys/{name}/delete", post(pages::delete_key))
        .route("/console/webhooks", get(pages::webhooks).post(pages::create_webhook))
        .route("/console/webhooks/{name}", get(pages::deliveries))
        .route("/console/webhooks/{name}/delete", post(pages::delete_webhook))
        .route(
            "/console/webhooks/{name}/deliveries/{event_id}/retry",
            post(pages::retry_delivery),
        )
        .route("/console/events", get(pages::events))
        .route("/console/diagnostics", get(pages::diagnostics_pick))
}

/// What the layout needs on every page.
pub struct Chrome {
    pub lang: Lang,
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    pub signed_in: bool,
    /// The section the page belongs to, for the navigation.
    pub nav: &'static str,
    /// This page's path and query, URL-encoded: where a language switch
    /// comes back to.
    pub back: String,
    /// What the action that led here did (`?done=`), from a fixed list.
    pub flash: Option<&'static str>,
}

impl Chrome {
    /// `en` in the page's language.
    pub fn t<'a>(&self, en: &'a str) -> &'a str {
        self.lang.t(en)
    }

    fn new(parts: &Parts, signed_in: Option<&str>) -> Self {
        Chrome {
            lang: Lang::of(&parts.headers),
            csrf: signed_in.map(csrf_token).unwrap_or_default(),
            signed_in: signed_in.is_some(),
            nav: "",
            back: form_urlencoded::byte_serialize(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/console/", |p| p.as_str())
                    .as_bytes(),
            )
            .collect(),
            flash: flash_of(&parts.uri),
        }
    }

    fn with_nav(mut self, nav: &'static str) -> Self {
        self.nav = nav;
        self
    }
}

/// The messages an action may leave for the page it redirects to.
const FLASHES: &[(&str, &str)] = &[
    ("created", "Created."),
    ("refreshed", "Refreshed."),
    (
        "rotated",
        "Saved. Credentials derived from the old secret were dropped.",
    ),
    ("deleted", "Deleted."),
    ("retried", "The delivery will be attempted again."),
    ("cleared", "The quota was cleared."),
    ("signed_out", "Signed out."),
];

fn flash_of(uri: &Uri) -> Option<&'static str> {
    let done = form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == "done")?
        .1;
    FLASHES.iter().find(|(k, _)| *k == done).map(|(_, m)| *m)
}

/// A cookie of the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The request's session token, if it names a live session.
async fn session_of(parts: &Parts, st: &AppState) -> Result<Option<String>, ApiError> {
    match cookie(&parts.headers, SESSION_COOKIE) {
        Some(t) if st.service.console.session_alive(t).await? => Ok(Some(t.to_owned())),
        _ => Ok(None),
    }
}

/// A page request with a live session; without one, a redirect to the
/// sign-in page that comes back here.
pub struct Signed {
    pub c: Chrome,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        match session_of(parts, st).await {
            Ok(Some(token)) => Ok(Signed {
                c: Chrome::new(parts, Some(&token)),
            }),
            Ok(None) => {
                let c = Chrome::new(parts, None);
                Err(see(&format!("/console/signin?next={}", c.back)))
            }
            Err(e) => Err(error_page(Chrome::new(parts, None), e)),
        }
    }
}

/// A form posted from one of the console's own pages: same site, a live
/// session, `application/x-www-form-urlencoded` within the body limit, and
/// the session's CSRF token in `csrf`. Anything else is refused (403, 415,
/// 413) before the handler runs.
pub struct Posted {
    pub c: Chrome,
    /// The session token (sign-out ends it).
    pub token: String,
    pub form: HashMap<String, String>,
}

impl Posted {
    /// A field as given, trimmed; None when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let session = session_of(&parts, st).await;
        let c = Chrome::new(&parts, session.as_ref().ok().and_then(|s| s.as_deref()));
        let token = match session {
            Err(e) => return Err(error_page(c, e)),
            Ok(None) => {
                let e = ApiError::forbidden("your session has ended (or you are not signed in): sign in again");
                return Err(error_page(c, e));
            }
            Ok(Some(t)) => t,
        };
        let form = match read_form(&parts, body, st).await {
            Ok(f) => f,
            Err(e) => return Err(error_page(c, e)),
        };
        if !form.get("csrf").is_some_and(|t| csrf_ok(&token, t)) {
            let e = ApiError::forbidden("the form's CSRF token is missing or wrong: reload the page and try again");
            return Err(error_page(c, e));
        }
        Ok(Posted { c, token, form })
    }
}

/// A form body from this site: the cross-site check, the content type,
/// the body limit.
async fn read_form(parts: &Parts, body: Body, st: &AppState) -> Result<HashMap<String, String>, ApiError> {
    not_from_a_browser_elsewhere(parts, st)?;
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the console's forms post application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_body(body, st.max_body).await?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// Headers every console answer carries.
fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: a browser then sends `Origin: null` on the
    // console's own posts, which the cross-origin check refuses.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A rendered page.
fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    let mut resp = match page.render() {
        Ok(body) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    };
    harden(&mut resp);
    resp
}

/// 303 See Other to a path of this console.
fn see(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    harden(&mut resp);
    resp
}

/// A redirect that also sets cookies.
fn see_with_cookies(location: &str, cookies: &[String]) -> Response {
    let mut resp = see(location);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    title: &'static str,
    message: String,
    upstream: Option<String>,
}

/// An error as a page with its status: what the API would have answered,
/// for a person.
fn error_page(c: Chrome, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::BAD_REQUEST => "Invalid request",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Refused",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::TOO_MANY_REQUESTS => "Too soon",
        StatusCode::BAD_GATEWAY => "WeChat refused",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        _ => "Error",
    };
    let page = ErrorPage {
        status: e.status.as_u16(),
        title,
        message: e.message,
        upstream: e.upstream.map(|(code, msg)| format!("{code} {msg}")),
        c,
    };
    html(page_status(e.status), &page)
}

/// A 401 from a bad key is a 403 here: the console has no bearer scheme.
fn page_status(s: StatusCode) -> StatusCode {
    if s == StatusCode::UNAUTHORIZED {
        StatusCode::FORBIDDEN
    } else {
        s
    }
}

/// The stylesheet and the script, compiled in.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (include_str!("../../assets/console.css"), "text/css; charset=utf-8"),
        "console.js" => (
            include_str!("../../assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut resp = (
        [
            (CONTENT_TYPE, HeaderValue::from_static(kind)),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        body,
    )
        .into_response();
    resp.headers_mut()
        .insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// Where to go after sign-in: a console path given as `next`, else the
/// overview (never another site: `//host` and `\` are refused).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.contains("//") && !n.contains('\\') && n.len() <= 2000 => {
            n.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/accounts?kind=mp")),
            "/console/accounts?kind=mp"
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/console//evil",
            "/console/\\evil",
            "/v1/keys",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console/", "{bad}");
        }
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; wetoken_session=wts_x; wetoken_lang=zh"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("wts_x"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("zh"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn flashes_come_from_the_list_only() {
        let uri: Uri = "/console/?done=deleted".parse().unwrap();
        assert_eq!(flash_of(&uri), Some("Deleted."));
        let uri: Uri = "/console/?done=%3Cscript%3E".parse().unwrap();
        assert_eq!(flash_of(&uri), None);
    }
}
