//! The optional WeChat API proxy (`WETOKEN_PROXY=on`, SPEC §6): any other
//! WeChat/WeCom API path carrying a token wetoken manages (current or within
//! grace) is forwarded to the upstream of the account that owns it (WeCom
//! accounts to the WeCom API), with the token replaced by the current one.
//! Bodies and answers pass byte for byte. An answer that rejects the token
//! (`wetoken_core::upstream::TOKEN_REJECTED`, the list core uses) triggers
//! one compare-and-refresh and one retry, through the service's
//! `with_token`, as every other call made with a token. A token wetoken does not manage gets
//! 40001 without any upstream call: wetoken is no open relay.
//!
//! Request bodies are bounded by `WETOKEN_MAX_BODY_BYTES` and buffered (a
//! retry must send them again); answers are bounded by [`MAX_ANSWER`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wetoken_core::domain::{AccountKind, Credential};
use wetoken_core::service::TokenCall;
use wetoken_core::upstream::rejects_token;
use wetoken_core::urlenc::Query;

use crate::AppState;
use crate::error::{ApiError, WxError, wx_error};
use crate::extract::read_body;

/// API path prefixes forwarded (WeCom's APIs live under `/cgi-bin/` too).
const PREFIXES: &[&str] = &[
    "/cgi-bin/",
    "/sns/",
    "/wxa/",
    "/datacube/",
    "/card/",
    "/merchant/",
    "/customservice/",
    "/semantic/",
    "/shakearound/",
    "/tcb/",
    "/wxaapi/",
    "/channels/",
];

/// Query parameters that carry a token, in the order they are looked for.
const TOKEN_PARAMS: &[&str] = &[
    "access_token",
    "component_access_token",
    "suite_access_token",
    "provider_access_token",
];

/// The largest upstream answer relayed (media downloads included).
pub const MAX_ANSWER: usize = 64 << 20;

/// Headers not relayed: hop-by-hop ones, and ones the client library sets.
const DROPPED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "content-length",
    "authorization",
];

/// Where and how the proxy forwards.
#[derive(Clone)]
pub struct Proxy {
    http: reqwest::Client,
    mp_base: String,
    work_base: String,
    /// `WETOKEN_PROXY_MAX_INFLIGHT`: requests forwarded at once; beyond,
    /// WeChat's "system busy" (-1) at once.
    inflight: Arc<Semaphore>,
}

impl Proxy {
    pub fn new(mp_base: &str, work_base: &str, timeout: Duration, max_inflight: usize) -> Result<Self, String> {
        wetoken_core::upstream::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Proxy {
            http,
            mp_base: mp_base.trim_end_matches('/').to_owned(),
            work_base: work_base.trim_end_matches('/').to_owned(),
            inflight: Arc::new(Semaphore::new(max_inflight.max(1))),
        })
    }
}

/// The one token a request carries: every token parameter it has (by
/// decoded name, repeated or not) must carry the same value, or it is
/// refused before anything goes upstream.
fn presented_token(q: &Query<'_>) -> Result<String, WxError> {
    let mut values = TOKEN_PARAMS.iter().flat_map(|n| q.values(n));
    let token = values.next().ok_or_else(|| wx_error(41001, "access_token missing"))?;
    if values.any(|v| v != token) {
        return Err(wx_error(
            40001,
            "invalid credential, the request carries more than one token (not forwarded)",
        ));
    }
    Ok(token.to_owned())
}

fn relayed(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        if !DROPPED.contains(&k.as_str()) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// Whether WeChat rejected the token (so one compare-and-refresh is worth it).
fn token_rejected(body: &[u8]) -> bool {
    body.first() == Some(&b'{')
        && serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["errcode"].as_i64())
            .is_some_and(rejects_token)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Proxy {
    async fn send(
        &self,
        method: &axum::http::Method,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Answer, WxError> {
        let upstream_unreachable = |e: reqwest::Error| wx_error(-1, format!("system error: {}", e.without_url()));
        let mut resp = self
            .http
            .request(method.clone(), url)
            .headers(relayed(headers))
            .body(body.clone())
            .send()
            .await
            .map_err(upstream_unreachable)?;
        let status = resp.status();
        let headers = relayed(resp.headers());
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(upstream_unreachable)? {
            if buf.len() + chunk.len() > MAX_ANSWER {
                return Err(wx_error(-1, "system error: the upstream answer is too large to relay"));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: Bytes::from(buf),
        })
    }
}

/// The router's fallback: the proxy for WeChat API paths when it is on, else 404.
pub async fn fallback(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    match &st.proxy {
        Some(p) if PREFIXES.iter().any(|pre| path.starts_with(pre)) => forward(&st, p, &path, req)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        _ => ApiError::not_found("no such endpoint").into_response(),
    }
}

async fn forward(st: &AppState, p: &Proxy, path: &str, req: Request) -> Result<Response, WxError> {
    // Bounded: a request beyond the limit buffers nothing and calls nothing.
    let Ok(_slot) = p.inflight.clone().try_acquire_owned() else {
        return Err(wx_error(
            -1,
            "system busy: too many proxied requests in flight, retry later",
        ));
    };
    let raw_query = req.uri().query().unwrap_or_default().to_owned();
    let query = Query::parse(&raw_query);
    let token = presented_token(&query)?;
    let owner = match st.service.owner_of(&token).await? {
        Some((id, Credential::AccessToken)) => id,
        _ => {
            return Err(wx_error(
                40001,
                "invalid credential, access_token is invalid or not latest (not managed by wetoken)",
            ));
        }
    };
    let base = match owner.kind() {
        AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider => &p.work_base,
        _ => &p.mp_base,
    };
    let (parts, body): (_, Body) = req.into_parts();
    let body = match read_body(body, st.max_body).await {
        Ok(b) => b,
        Err(e) => return Ok(e.into_response()),
    };
    let (method, headers, body, query) = (&parts.method, &parts.headers, &body, &query);
    let call = |token: String| async move {
        let url = format!("{base}{path}?{}", query.with_values(TOKEN_PARAMS, &token));
        p.send(method, &url, headers, body).await
    };
    let rejected = |r: &Result<Answer, WxError>| r.as_ref().is_ok_and(|a| token_rejected(&a.body));
    let answer = match st.service.with_token(&owner, call, rejected).await? {
        TokenCall::Answered(answer) => answer?,
        TokenCall::RefreshFailed(first, e) => {
            // WeChat's own answer stands.
            tracing::warn!(account = %owner, error = %e, "proxy could not refresh a rejected token");
            first?
        }
    };
    // A bare body: no default content type before the upstream's own.
    let mut resp = Response::new(Body::from(answer.body));
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = answer.headers;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_per_request_whatever_its_spelling() {
        let q = Query::parse("access_token=T&type=image&acc%65ss_token=T");
        assert_eq!(presented_token(&q).unwrap(), "T");
        assert_eq!(
            q.with_values(TOKEN_PARAMS, "NEW+/="),
            "access_token=NEW%2B%2F%3D&type=image&acc%65ss_token=NEW%2B%2F%3D"
        );
        for junk in [
            "access_token=T&access_token=junk",
            "access_token=T&component_access_token=junk",
            "acc%65ss_token=junk&access_token=T",
        ] {
            let e = presented_token(&Query::parse(junk)).unwrap_err();
            assert_eq!(e.errcode, 40001, "{junk}");
        }
        assert_eq!(presented_token(&Query::parse("type=image")).unwrap_err().errcode, 41001);
    }

    #[test]
    fn rejected_tokens_are_recognised() {
        assert!(token_rejected(br#"{"errcode":40001,"errmsg":"invalid credential"}"#));
        assert!(token_rejected(br#"{"errcode":42001}"#));
        assert!(!token_rejected(br#"{"errcode":0,"errmsg":"ok"}"#));
        assert!(!token_rejected(b"\x89PNG binary"));
    }
}
