//! Request plumbing shared by every route, so that each rule is written
//! once:
//!
//! - the body limit while reading ([`read_body`]; a declared length over it
//!   is refused in front of every route, `ops::front`) and JSON bodies as serde
//!   types that refuse unknown fields ([`JsonBody`], no Content-Type needed);
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
use axum::http::header::AUTHORIZATION;
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
/// attributes refuse unknown fields). Accepted with any or no
/// Content-Type; an empty body reads as `{}`, so a type whose fields are
/// all optional takes one.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
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

/// The principal behind a request's `Authorization` header (401 if none).
async fn principal(parts: &Parts, st: &AppState) -> Result<Arc<Principal>, ApiError> {
    let h = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    Ok(st.auth.authenticate(h).await?)
}

/// Something a route acts on, named by its path parameters: an account,
/// then what of it.
pub trait Target: Sized {
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
        let target = T::resolve(id, &params)?;
        Ok(Authed { principal, target })
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

/// A credential of the account a route's path names: `{cred}`, or the
/// access token on routes that serve only that.
pub struct CredentialPath(pub AccountId, pub Credential);

impl Target for CredentialPath {
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
