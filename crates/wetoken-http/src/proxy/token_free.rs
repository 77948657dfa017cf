//! Token-free calls (SPEC §6): `/proxy/{mp|authorizer|work|corp}/…/<WeChat
//! path>` with a wetoken key and no token. Before anything goes upstream a
//! call is refused (and recorded as refused) when:
//! - the key does not cover the account (403, in the extractor) or the
//!   path (its `paths`, 403);
//! - the path hands out or manages credentials
//!   (`wetoken_core::upstream::paths::CREDENTIAL_PATHS`, 403): those have
//!   native routes with their own rules;
//! - the path is not a WeChat API path as sent (`%`, `..`, `//` or `\`:
//!   400; another prefix: 404);
//! - the query has a `;` or a token parameter in any letter case (400;
//!   an empty lowercase one, as an SDK with no token sends, is dropped);
//! - `WETOKEN_PROXY_MAX_INFLIGHT` calls are in flight (WeChat's -1).

use axum::body::Body;
use axum::extract::{RawPathParams, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use wetoken_core::auth::Principal;
use wetoken_core::domain::AccountId;
use wetoken_core::upstream::paths;

use super::{Outgoing, PREFIXES, TOKEN_PARAMS, holding};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Authed, Target, read_body};

/// The largest body a token-free call streams upstream (WeCom takes files
/// of 20 MB; bodies up to `WETOKEN_MAX_BODY_BYTES` are kept for a retry,
/// larger ones are streamed, never held whole).
pub const MAX_UPLOAD: usize = 64 << 20;

/// Token-free calls (SPEC §6): `/proxy/{mp|authorizer|work|corp}/…/<WeChat
/// path>` with a wetoken key and no token.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::any;
    axum::Router::new()
        .route("/proxy/mp/{appid}/{*path}", any(token_free))
        .route("/proxy/authorizer/{component_appid}/{appid}/{*path}", any(token_free))
        .route("/proxy/work/{corpid}/{agentid}/{*path}", any(token_free))
        .route("/proxy/corp/{suite_id}/{corpid}/{*path}", any(token_free))
}

/// The account of a token-free call (its WeChat path is read from the URI
/// as sent: `wechat_path`).
pub struct ProxyPath(pub AccountId);

impl Target for ProxyPath {
    fn resolve(id: AccountId, _: &RawPathParams) -> Result<Self, ApiError> {
        Ok(ProxyPath(id))
    }
}

/// The WeChat path of `/proxy/{kind}/{ids…}/<path>`, as sent: one of the
/// API prefixes, no `%`, `..`, `//` or `\` (a path that could mean another
/// once decoded or normalised upstream is refused, not forwarded), so that
/// what the audit records is what WeChat was asked.
fn wechat_path(uri_path: &str, id: &AccountId) -> Result<String, ApiError> {
    let ids = if matches!(id, AccountId::Mp { .. }) { 1 } else { 2 };
    let rest = uri_path.splitn(4 + ids, '/').nth(3 + ids).unwrap_or_default();
    let path = format!("/{rest}");
    if path.contains('%') || path.contains("..") || path.contains("//") || path.contains('\\') {
        let shown: String = path.chars().take(200).collect();
        return Err(ApiError::invalid(format!("{shown:?} is not a WeChat API path")));
    }
    if !PREFIXES.iter().any(|p| path.starts_with(p)) {
        let shown: String = path.chars().take(200).collect();
        return Err(ApiError::not_found(format!(
            "{shown} is not a WeChat API path (they start with /cgi-bin/, /sns/, /wxa/, …)"
        )));
    }
    Ok(path)
}

/// A token-free call's query as forwarded: as it came, less token
/// parameters left empty (an SDK given an empty token source sends
/// `access_token=`). Refused (400): a token that is sent (it would be
/// ambiguous which one WeChat sees), a token parameter in another letter
/// case, and `;` (which some servers read as a separator).
fn without_empty_tokens(raw: &str) -> Result<String, ApiError> {
    if raw.contains(';') {
        return Err(ApiError::invalid("the query may not contain ';'"));
    }
    let mut kept = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = wetoken_core::urlenc::percent_decode(name);
        let lower = name.to_ascii_lowercase();
        if TOKEN_PARAMS.contains(&lower.as_str()) {
            if value.is_empty() && lower == name {
                continue;
            }
            let shown: String = name.chars().take(64).collect();
            return Err(ApiError::invalid(format!(
                "{shown} was sent: wetoken adds the account's token to token-free calls, send none"
            )));
        }
        kept.push(pair);
    }
    Ok(kept.join("&"))
}

/// A token-free call: refused as the module says, or relayed with the
/// account's current token.
async fn token_free(State(st): State<AppState>, a: Authed<ProxyPath>, req: Request) -> Response {
    let owner = a.target.0;
    let path = match wechat_path(req.uri().path(), &owner) {
        Ok(p) => p,
        Err(e) => return inert(e.into_response()),
    };
    let method = req.method().clone();
    let call = match super::signin::exchange_of(&owner, &path) {
        // Sign-in: the exchange records itself once it reaches WeChat.
        Some(kind) if a.principal.may_call(&path) => {
            let query = req.uri().query().unwrap_or_default().to_owned();
            let out = super::signin::exchange(&st, &a.principal, &owner, kind, &query).await;
            if out.relayed {
                return inert(out.response);
            }
            Call {
                response: out.response,
                errcode: out.errcode,
                rid: None,
                relayed: false,
            }
        }
        _ => call_for(&st, &a.principal, &owner, &path, req).await,
    };
    // Every call is recorded, refused or relayed: who, what, and the answer.
    let record = wetoken_core::service::audit::CallRecord {
        key: a.principal.name(),
        account: &owner,
        method: method.as_str(),
        path: &path,
        status: call.response.status().as_u16(),
        errcode: call.errcode,
        rid: call.rid,
        relayed: call.relayed,
    };
    if let Err(e) = st.service.custody.record_call(record).await {
        tracing::warn!(error = %e, account = %owner, path = %path, "a token-free call was not recorded in the audit trail");
    }
    inert(call.response)
}

/// Every answer of a token-free call, relayed or refused, is inert on
/// wetoken's origin (SPEC §6).
fn inert(mut resp: Response) -> Response {
    use axum::http::HeaderValue;
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("content-security-policy", HeaderValue::from_static("sandbox"));
    resp
}

/// A token-free call refused or relayed.
struct Call {
    response: Response,
    /// WeChat's errcode (-1 when too many were in flight).
    errcode: Option<i64>,
    rid: Option<String>,
    /// Whether it reached WeChat.
    relayed: bool,
}

impl Call {
    fn refused(e: impl IntoResponse) -> Self {
        Call {
            response: e.into_response(),
            errcode: None,
            rid: None,
            relayed: false,
        }
    }
}

async fn call_for(st: &AppState, principal: &Principal, owner: &AccountId, path: &str, req: Request) -> Call {
    if paths::manages_credentials(path) {
        return Call::refused(ApiError::forbidden(format!(
            "{path} hands out or manages credentials: token-free calls never reach it (use wetoken's own API)"
        )));
    }
    if !principal.may_call(path) {
        return Call::refused(ApiError::forbidden(format!("this key may not call {path} (its paths)")));
    }
    let raw_query = match without_empty_tokens(req.uri().query().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return Call::refused(e),
    };
    let p = &st.proxy;
    let slot = match p.slot() {
        Ok(s) => s,
        Err(e) => {
            return Call {
                errcode: Some(-1),
                ..Call::refused(e)
            };
        }
    };
    let (parts, body): (_, Body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = parts.headers.contains_key(axum::http::header::TRANSFER_ENCODING);
    let body = if declared.is_some_and(|n| n > st.max_body as u64) || (declared.is_none() && chunked) {
        use http_body_util::BodyExt;
        let limited = http_body_util::Limited::new(body, MAX_UPLOAD).into_data_stream();
        Outgoing::Streamed(
            std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(limited))),
            declared,
        )
    } else {
        match read_body(body, st.max_body).await {
            Ok(b) => Outgoing::Kept(b),
            Err(e) => return Call::refused(e),
        }
    };
    // SPEC §15: a call that must be signed is sealed and signed with the
    // account's keys, its answer verified and opened (an upload never).
    if let Outgoing::Kept(bytes) = &body {
        let upload = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/"));
        match st.service.accounts.signer_for(owner, path, upload).await {
            Ok(Some(signer)) => return signed(st, owner, &signer, path, &raw_query, bytes, slot).await,
            Ok(None) => {}
            Err(e) => return Call::refused(ApiError::from(e)),
        }
    }
    let token_param = |token: &str| {
        let t: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        if raw_query.is_empty() {
            format!("access_token={t}")
        } else {
            format!("access_token={t}&{raw_query}")
        }
    };
    match p.relay(st, owner, path, token_param, &parts, body).await {
        Ok((answer, ms)) => {
            let (errcode, rid) = (answer.errcode(), answer.rid());
            let mut resp = answer.into_response();
            resp.headers_mut()
                .insert("x-wetoken-upstream-ms", axum::http::HeaderValue::from(ms));
            Call {
                response: holding(resp, slot),
                errcode,
                rid,
                relayed: true,
            }
        }
        Err(e) => Call {
            errcode: Some(e.errcode),
            relayed: true,
            ..Call::refused(e)
        },
    }
}

/// A signed call (SPEC §15): WeChat's plain answer as it came, or the
/// verified answer opened; one that does not verify is 502, never passed on.
async fn signed(
    st: &AppState,
    owner: &AccountId,
    signer: &wetoken_core::service::signed::Signer,
    path: &str,
    query: &str,
    body: &[u8],
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Call {
    use wetoken_core::service::signed::SignedAnswer;
    let bytes = match st.service.accounts.call_signed(owner, signer, path, query, body).await {
        Ok(SignedAnswer::Plain(b)) => b,
        Ok(SignedAnswer::Opened(fields)) => serde_json::to_vec(&fields).expect("JSON"),
        Err(e) => {
            return Call {
                relayed: true,
                ..Call::refused(ApiError::from(e))
            };
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let errcode = v.get("errcode").and_then(serde_json::Value::as_i64);
    let rid = v
        .get("errmsg")
        .and_then(serde_json::Value::as_str)
        .and_then(wetoken_core::upstream::rid_in);
    let resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")],
        bytes,
    )
        .into_response();
    Call {
        response: holding(resp, slot),
        errcode,
        rid,
        relayed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_free_queries_carry_no_token() {
        assert_eq!(without_empty_tokens("").unwrap(), "");
        assert_eq!(without_empty_tokens("type=image&x=%2B1").unwrap(), "type=image&x=%2B1");
        assert_eq!(without_empty_tokens("access_token=&type=image").unwrap(), "type=image");
        assert_eq!(without_empty_tokens("type=image&acc%65ss_token").unwrap(), "type=image");
        for sent in [
            "access_token=T",
            "type=1&acc%65ss_token=T",
            "suite_access_token=x",
            "ACCESS_TOKEN=T",
            "Access_Token=",
            "type=1;access_token=T",
            "a=b;c",
        ] {
            assert!(without_empty_tokens(sent).is_err(), "{sent}");
        }
    }

    #[test]
    fn paths_as_sent_only() {
        let id: AccountId = "mp:wx1".parse().unwrap();
        assert_eq!(
            wechat_path("/proxy/mp/wx1/cgi-bin/user/get", &id).unwrap(),
            "/cgi-bin/user/get"
        );
        for bad in [
            "/proxy/mp/wx1/cgi-bin/user\\get",
            "/proxy/mp/wx1/cgi-bin/../token",
            "/proxy/mp/wx1/cgi-bin//token",
            "/proxy/mp/wx1/cgi-bin/%74oken",
        ] {
            assert!(wechat_path(bad, &id).is_err(), "{bad}");
        }
    }
}
