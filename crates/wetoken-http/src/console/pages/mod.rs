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
use serde_json::Value;
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

/// The API modules whose parsing the console shares.
mod api {
    pub(super) use crate::{accounts, diagnostics, events, platforms};
}

/// A page anyone may see (sign-in, errors before sign-in).
pub struct Anon(Chrome);

impl FromRequestParts<AppState> for Anon {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Anon(Chrome::new(parts, None)))
    }
}

fn ahead(st: &AppState) -> i64 {
    st.service.engine.config().refresh_ahead.as_secs() as i64
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

fn confirmed(p: &Posted) -> Result<(), ApiError> {
    if p.get("confirm") == Some("yes") {
        Ok(())
    } else {
        Err(ApiError::invalid("tick the box to confirm"))
    }
}

mod accounts;
mod diagnostics;
mod events;
mod keys;
mod overview;
mod platform;
mod signin;
mod webhooks;

pub use accounts::*;
pub use diagnostics::*;
pub use events::*;
pub use keys::*;
pub use overview::*;
pub use platform::*;
pub use signin::*;
pub use webhooks::*;

#[cfg(test)]
mod tests {
    use super::platform::qr_svg;
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
