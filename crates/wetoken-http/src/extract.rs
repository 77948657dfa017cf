//! Request plumbing shared by every route, so that each rule is written
//! once:
//!
//! - the body limit while reading ([`read_body`]; a declared length over it
//!   is refused in front of every route, `ops::front`) and JSON bodies as serde
//!   types that refuse unknown fields ([`JsonBody`]: `application/json` or
//!   no Content-Type);
//! - browsers on other sites get nothing: cross-site and foreign-origin
//!   requests are 403 before authentication, and with keys off so is a
//!   foreign `Host` (DNS rebinding);
//! - who may do what: [`Authed`] authenticates the key (401), parses the
//!   target from the path (400, or 404 for a credential the kind does not
//!   own) and authorizes the key for it (403), in that order, once;
//!   [`Admin`] requires the admin key;
//! - the account a route's path names ([`AccountPath`]): the path parameter
//!   names say which kind (`appid`; `corpid` + `agentid`;
//!   `component_appid` [+ `appid`]; `suite_id` [+ `corpid`]; `corpid`);
//! - a callback's query with `+` kept ([`RawQuery`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, ORIGIN};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use wetoken_core::auth::Principal;
use wetoken_core::domain::{AccountId, AgentId, Credential, Ident};

use crate::AppState;
use crate::error::ApiError;

/// Reads a whole body, at most `limit` bytes. An oversized body is read on
/// and discarded up to a cap before the 413 goes out: a client still
/// sending when the server closes would otherwise see a reset instead of
/// the answer.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let cap = limit.saturating_mul(4).max(8 << 20);
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::invalid("the request body could not be read to its end"));
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > cap {
                break;
            }
        }
    }
    if seen > limit {
        Err(ApiError::too_large(limit))
    } else {
        Ok(Bytes::from(buf))
    }
}

/// A JSON body read within the limit and parsed into `T` (whose serde
/// attributes refuse unknown fields). Accepted as `application/json` or
/// with no Content-Type (else 415); an empty body reads as `{}`, so a type whose fields are
/// all optional takes one.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
        // SPEC §4: JSON, or no Content-Type at all (a form a browser could
        // post cross-site is not JSON).
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let essence = ct
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            if !essence.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
        }
        let bytes = read_body(req.into_body(), st.max_body).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
    }
}

/// The principal behind a request's `Authorization` header (401 if none),
/// once the request is known not to come from a browser on another site.
async fn principal(parts: &Parts, st: &AppState) -> Result<Arc<Principal>, ApiError> {
    not_from_a_browser_elsewhere(parts, st)?;
    let h = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let source = parts.extensions.get::<crate::serve::Peer>().map(|p| p.0);
    Ok(st.auth.authenticate_from(source, h).await?)
}

/// SPEC §4 "browsers cannot be used against wetoken": a cross-site fetch
/// (`Sec-Fetch-Site: cross-site`) or one from another origin is 403; with
/// keys off, so is a `Host` that is not this server's (DNS rebinding).
pub(crate) fn not_from_a_browser_elsewhere(parts: &Parts, st: &AppState) -> Result<(), ApiError> {
    // A name made once: looking a header up by a `&str` parses the name
    // on every request.
    const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    let h = &parts.headers;
    if h.get(SEC_FETCH_SITE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::forbidden("cross-site requests are refused"));
    }
    let host = h.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(origin) = h.get(ORIGIN) {
        let own = |o: &str| {
            authority(o).is_some_and(|a| a.eq_ignore_ascii_case(host) || Some(a) == authority(&st.public_url))
        };
        if !origin.to_str().is_ok_and(own) {
            return Err(ApiError::forbidden("requests from another origin are refused"));
        }
    }
    if !st.auth.enabled() && !own_host(host, &st.public_url) {
        return Err(ApiError::forbidden(
            "with WETOKEN_AUTH=off only this server's own host names are served",
        ));
    }
    Ok(())
}

/// `host[:port]` of an origin or URL (`scheme://host[:port][/…]`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let a = rest.split(['/', '?', '#']).next()?;
    (!a.is_empty()).then_some(a)
}

/// Whether a `Host` names this server: localhost, a loopback address, or
/// `WETOKEN_PUBLIC_URL`'s host (the listen address by default).
fn own_host(host: &str, public_url: &str) -> bool {
    let name = |h: &str| -> String {
        let h = h.trim();
        let h = if let Some(v6) = h.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default()
        } else {
            h.rsplit_once(':').map_or(h, |(n, _)| n)
        };
        h.to_ascii_lowercase()
    };
    let n = name(host);
    n == "localhost"
        || n.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || authority(public_url).is_some_and(|a| name(a) == n)
}

/// Something a route acts on, named by its path parameters: an account,
/// then what of it.
pub trait Target: Sized {
    /// Whether the route hands out a token or a ticket: a key made with
    /// `"tokens": false` gets 403 (SPEC §6).
    const HANDS_OUT_VALUES: bool = false;
    /// The target in the account `id` (which the key covers): 404 for what
    /// such an account does not have.
    fn resolve(id: AccountId, params: &RawPathParams) -> Result<Self, ApiError>;
}

/// Authenticated (401), the account parsed (400) and authorized (403), then
/// the target resolved in it (404), in that order.
pub struct Authed<T> {
    pub principal: Arc<Principal>,
    pub target: T,
}

impl<T: Target + Send> FromRequestParts<AppState> for Authed<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, st).await?;
        let params = RawPathParams::from_request_parts(parts, st)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        let id = AccountPath::id(&params)?;
        if !principal.may_read(&id) {
            return Err(ApiError::forbidden(format!("this key does not cover {id}")));
        }
        if T::HANDS_OUT_VALUES && !principal.may_read_values() {
            return Err(ApiError::forbidden(
                "this key cannot read tokens or tickets (it was made with \"tokens\": false)",
            ));
        }
        let target = T::resolve(id, &params)?;
        Ok(Authed { principal, target })
    }
}

/// A request made with any valid key (401 without one): what it may see is
/// the principal's to say.
pub struct Keyed(pub Arc<Principal>);

impl FromRequestParts<AppState> for Keyed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        Ok(Keyed(principal(parts, st).await?))
    }
}

/// A request made with the admin key (or with keys off): 401 without a
/// key, 403 with a client key.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        if principal(parts, st).await?.is_admin() {
            Ok(Admin)
        } else {
            Err(ApiError::forbidden("this endpoint needs the admin key"))
        }
    }
}

fn param<'a>(params: &'a RawPathParams, name: &str) -> Option<&'a str> {
    params.iter().find_map(|(k, v)| (k == name).then_some(v))
}

/// The account a route's path names.
pub struct AccountPath(pub AccountId);

impl AccountPath {
    pub fn id(params: &RawPathParams) -> Result<AccountId, ApiError> {
        let ident = |name: &str, v: &str| Ident::parse(name, v).map_err(ApiError::from);
        let p = |name| param(params, name);
        Ok(
            match (
                p("component_appid"),
                p("suite_id"),
                p("appid"),
                p("corpid"),
                p("agentid"),
            ) {
                (Some(c), None, None, None, None) => AccountId::Component {
                    appid: ident("component_appid", c)?,
                },
                (Some(c), None, Some(a), None, None) => AccountId::Authorizer {
                    component_appid: ident("component_appid", c)?,
                    appid: ident("appid", a)?,
                },
                (None, Some(s), None, None, None) => AccountId::Suite {
                    suite_id: ident("suite_id", s)?,
                },
                (None, Some(s), None, Some(corpid), None) => AccountId::Corp {
                    suite_id: ident("suite_id", s)?,
                    corpid: ident("corpid", corpid)?,
                },
                (None, None, Some(a), None, None) => AccountId::Mp {
                    appid: ident("appid", a)?,
                },
                (None, None, None, Some(corpid), Some(agentid)) => AccountId::Work {
                    corpid: ident("corpid", corpid)?,
                    agentid: AgentId::parse(agentid)?,
                },
                (None, None, None, Some(corpid), None) => AccountId::Provider {
                    corpid: ident("corpid", corpid)?,
                },
                // Every route names its account with one of the sets above.
                _ => return Err(ApiError::not_found("no such endpoint")),
            },
        )
    }
}

impl Target for AccountPath {
    fn resolve(id: AccountId, _: &RawPathParams) -> Result<Self, ApiError> {
        Ok(AccountPath(id))
    }
}

/// The account of a route that hands out its token or ticket (the Go
/// wetoken's `/{appid}/wechat/token/get`).
pub struct ValuePath(pub AccountId);

impl Target for ValuePath {
    const HANDS_OUT_VALUES: bool = true;

    fn resolve(id: AccountId, _: &RawPathParams) -> Result<Self, ApiError> {
        Ok(ValuePath(id))
    }
}

/// A credential of the account a route's path names: `{cred}`, or the
/// access token on routes that serve only that.
pub struct CredentialPath(pub AccountId, pub Credential);

impl Target for CredentialPath {
    const HANDS_OUT_VALUES: bool = true;

    fn resolve(id: AccountId, params: &RawPathParams) -> Result<Self, ApiError> {
        let cred = match param(params, "cred") {
            None => Credential::AccessToken,
            Some(s) => s.parse::<Credential>().ok().filter(|c| id.owns(*c)).ok_or_else(|| {
                let shown: String = s.chars().take(64).collect();
                ApiError::not_found(format!("{} accounts have no credential {shown:?}", id.kind()))
            })?,
        };
        Ok(CredentialPath(id, cred))
    }
}

/// A callback's query: percent-decoded, `+` kept (a WeCom echostr is
/// base64 and arrives URL-encoded; form decoding would turn `+` into a space).
pub struct RawQuery(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RawQuery(wetoken_core::urlenc::query_params(
            parts.uri.query().unwrap_or_default(),
        )))
    }
}

/// `?limit=&cursor=` of every list (SPEC §3): `limit` 1–1000 (default 100;
/// anything else is 400), `cursor` a `next_cursor` wetoken handed out for
/// the same list (tagged by the master key: a made-up, edited or foreign
/// cursor is 400), here as where the page starts.
#[derive(Debug, Clone)]
pub struct Paging {
    pub limit: i64,
    pub cursor: Option<String>,
}

impl Paging {
    /// Whether `c` has the characters of an id (bounded, nothing else).
    pub fn is_cursor(c: &str) -> bool {
        c.len() <= 200 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
    }

    /// The paging of a request for `list` (its name with its scope, such
    /// as `authorizers:component:wxc`).
    pub fn from_query(q: &HashMap<String, String>, st: &AppState, list: &str) -> Result<Self, ApiError> {
        let limit = match q.get("limit").filter(|v| !v.is_empty()) {
            None => 100,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ApiError::invalid("limit must be a whole number from 1 to 1000"))?,
        };
        let cursor = match q.get("cursor").filter(|v| !v.is_empty()) {
            None => None,
            Some(c) => Some(
                Some(c)
                    .filter(|c| Self::is_cursor(c))
                    .and_then(|c| st.service.engine.cursor_from(list, c))
                    .ok_or_else(|| {
                        ApiError::invalid("cursor must be the next_cursor of a previous page of this list")
                    })?,
            ),
        };
        Ok(Paging { limit, cursor })
    }
}

/// A page's `next_cursor` as handed out for `list`.
pub fn next_cursor(st: &AppState, list: &str, raw: Option<&str>) -> Option<String> {
    raw.map(|r| st.service.engine.cursor_for(list, r))
}

/// A list's answer: `{"<name>": [...], "next_cursor": …}`, the cursor
/// handed out for `list`.
pub fn page_json<T, B>(
    st: &AppState,
    list: &str,
    name: &'static str,
    page: &wetoken_core::service::Page<T>,
    render: impl Fn(&T) -> B,
) -> crate::render::PageBody<B> {
    crate::render::PageBody {
        name,
        items: page.items.iter().map(render).collect(),
        next_cursor: next_cursor(st, list, page.next_cursor.as_deref()),
    }
}
