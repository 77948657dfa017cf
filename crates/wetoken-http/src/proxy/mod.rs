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
//! Token-free calls (SPEC §6, [`routes`], `token_free`):
//! `/proxy/{kind}/…/<WeChat path>` authenticated by a wetoken key that
//! covers the account (and, with `paths`, the path); wetoken adds the
//! account's token. The same relay.
//!
//! What the relay guarantees whichever way a call came (SPEC §6):
//! - only an allow-list of request headers reaches WeChat (`FORWARDED`):
//!   no cookie, forwarding, proxy or `Authorization` header, no `Origin`;
//! - WeChat's `Set-Cookie` never reaches the caller, and every answer is
//!   inert on wetoken's origin (`nosniff`, `Content-Security-Policy:
//!   sandbox`);
//! - an answer is read at most [`READ_AHEAD`] ahead of the caller: a small
//!   one whole (its errcode and rid decide the retry and the audit), a
//!   larger one streamed on as the caller reads;
//! - a call holds its `WETOKEN_PROXY_MAX_INFLIGHT` slot until the answer
//!   has been sent to the caller (or the caller went away);
//! - a rejection on a `/sns/` path (user tokens) never refreshes the
//!   account's token.
//!
//! Bodies up to `WETOKEN_MAX_BODY_BYTES` are read whole (a retry sends them
//! again); a token-free call's larger body (up to `MAX_UPLOAD`) streams
//! through once, never held whole, and is not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wetoken_core::domain::{AccountId, Credential};
use wetoken_core::service::TokenCall;
use wetoken_core::upstream::{Api, Attempt, Transport, rejects_token};
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

/// How much of an answer is read ahead of the caller: a WeChat answer
/// this small is read whole (errors always are); a larger one streams.
pub const READ_AHEAD: usize = 64 << 10;

/// The request headers forwarded to WeChat; no other reaches it (the
/// body's length is set by the client library).
const FORWARDED: &[&str] = &["content-type", "accept", "accept-encoding", "user-agent"];

/// WeChat's answer headers that never reach the caller: hop-by-hop ones,
/// and cookies (they would be set on wetoken's origin).
const NOT_ANSWERED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "set-cookie",
    "set-cookie2",
    "content-security-policy",
    "x-content-type-options",
];

/// Where and how the proxy forwards.
#[derive(Clone)]
pub struct Proxy {
    /// The one transport to WeChat, the engine's.
    upstream: Transport,
    /// `WETOKEN_PROXY_MAX_INFLIGHT`: requests forwarded at once; beyond,
    /// WeChat's "system busy" (-1) at once.
    inflight: Arc<Semaphore>,
}

impl Proxy {
    pub fn new(upstream: Transport, max_inflight: usize) -> Self {
        Proxy {
            upstream,
            inflight: Arc::new(Semaphore::new(max_inflight.max(1))),
        }
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

/// The caller's headers that go upstream: the allow-list only.
fn forwarded(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        if FORWARDED.contains(&k.as_str()) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// WeChat's headers that go to the caller, made inert on wetoken's origin.
fn answered(headers: &HeaderMap) -> HeaderMap {
    use axum::http::HeaderValue;
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        if !NOT_ANSWERED.contains(&k.as_str()) {
            out.append(k.clone(), v.clone());
        }
    }
    out.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    out.insert("content-security-policy", HeaderValue::from_static("sandbox"));
    out
}

/// What goes upstream: a body read whole, which a retry can send again, or
/// a larger one streamed through once (no retry: it is not kept).
enum Outgoing {
    Kept(Bytes),
    Streamed(std::sync::Mutex<Option<reqwest::Body>>, Option<u64>),
}

/// WeChat's answer: read whole when it is at most [`READ_AHEAD`] of JSON
/// or text (its errcode decides a retry and goes to the audit trail),
/// anything else (images, media, large lists) streamed back as the caller
/// reads it.
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: AnswerBody,
    /// WeChat's errcode, when the answer is JSON (0 when a JSON answer has
    /// none: WeChat's success); read once, when the answer arrives.
    errcode: Option<i64>,
    /// The rid WeChat appends to an error message (`… rid: 6475…`).
    rid: Option<String>,
}

enum AnswerBody {
    Read(Bytes),
    /// What was read ahead, then the rest as it comes.
    Stream(Bytes, reqwest::Body),
}

/// The errcode and rid of a JSON answer: only those two fields are read
/// (the rest of a large answer is skipped, not built).
fn wechat_status(body: &[u8]) -> (Option<i64>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Status {
        errcode: Option<i64>,
        errmsg: Option<String>,
    }
    if body.first() != Some(&b'{') {
        return (None, None);
    }
    let Ok(st) = serde_json::from_slice::<Status>(body) else {
        return (None, None);
    };
    let rid = st.errmsg.as_deref().and_then(wetoken_core::upstream::rid_in);
    (Some(st.errcode.unwrap_or(0)), rid)
}

impl Answer {
    pub fn errcode(&self) -> Option<i64> {
        self.errcode
    }

    pub fn rid(&self) -> Option<String> {
        self.rid.clone()
    }

    fn into_response(self) -> Response {
        // A bare body: no default content type before the upstream's own.
        let body = match self.body {
            AnswerBody::Read(b) => Body::from(b),
            AnswerBody::Stream(ahead, rest) => Body::new(Prefixed {
                ahead: (!ahead.is_empty()).then_some(ahead),
                rest,
            }),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

/// Whether an answer of this type may be read whole: JSON and text are
/// what WeChat says (and errs) in; anything else is data.
fn read_whole(headers: &HeaderMap) -> bool {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    ct.is_empty() || ct.starts_with("application/json") || ct.starts_with("text/")
}

impl Proxy {
    async fn send(
        &self,
        method: &axum::http::Method,
        url: &str,
        headers: &HeaderMap,
        body: &Outgoing,
        timeout: Duration,
    ) -> Result<Answer, WxError> {
        let upstream_unreachable = |e: reqwest::Error| wx_error(-1, format!("system error: {}", e.without_url()));
        let mut req = self
            .upstream
            .client()
            .request(method.clone(), url)
            .headers(forwarded(headers));
        req = match body {
            Outgoing::Kept(b) => req.timeout(timeout).body(b.clone()),
            Outgoing::Streamed(once, len) => {
                let taken = once.lock().map(|mut b| b.take()).ok().flatten();
                let stream = taken.ok_or_else(|| wx_error(-1, "system error: a streamed body is sent once"))?;
                let req = req.timeout(timeout).body(stream);
                match len {
                    Some(n) => req.header(CONTENT_LENGTH, *n),
                    None => req,
                }
            }
        };
        let mut resp = req.send().await.map_err(upstream_unreachable)?;
        let status = resp.status();
        let headers = answered(resp.headers());
        let stream = |ahead: Vec<u8>, resp: reqwest::Response| {
            let rest = axum::http::Response::from(resp).into_body();
            AnswerBody::Stream(Bytes::from(ahead), rest)
        };
        if !read_whole(resp.headers()) {
            return Ok(Answer {
                status,
                headers,
                body: stream(Vec::new(), resp),
                errcode: None,
                rid: None,
            });
        }
        let mut buf = Vec::new();
        while buf.len() < READ_AHEAD {
            match resp.chunk().await.map_err(upstream_unreachable)? {
                Some(chunk) => buf.extend_from_slice(&chunk),
                None => break,
            }
        }
        if buf.len() >= READ_AHEAD {
            // Not an error answer (those are small): on as it comes.
            return Ok(Answer {
                status,
                headers,
                body: stream(buf, resp),
                errcode: Some(0),
                rid: None,
            });
        }
        let (errcode, rid) = wechat_status(&buf);
        Ok(Answer {
            status,
            headers,
            body: AnswerBody::Read(Bytes::from(buf)),
            errcode,
            rid,
        })
    }

    /// One call relayed with `owner`'s current token (`url_for` puts it in
    /// the query): the compat proxy and token-free calls alike. A rejected
    /// token (`TOKEN_REJECTED`) is compare-and-refreshed once and the call
    /// made again when the body was kept (the service's `with_token`, within
    /// the §2 budget); otherwise WeChat's answer stands. With the time spent
    /// upstream, in milliseconds.
    async fn relay(
        &self,
        st: &AppState,
        owner: &AccountId,
        path: &str,
        url_for: impl Fn(&str) -> String,
        parts: &axum::http::request::Parts,
        body: Outgoing,
    ) -> Result<(Answer, u64), WxError> {
        let api = Api::of(owner.kind());
        let spent = AtomicU64::new(0);
        // A rejection on a user-token path says nothing of the account's
        // token (SPEC §2): WeChat's answer stands.
        let retryable = matches!(body, Outgoing::Kept(_)) && !path.starts_with("/sns/");
        let (method, headers, body, spent_ref, url_for) = (&parts.method, &parts.headers, &body, &spent, &url_for);
        let call = |token: String| async move {
            let query = url_for(&token);
            let started = Instant::now();
            let answer = match body {
                // A streamed body goes once, to the current domain, with
                // the request's whole time.
                Outgoing::Streamed(..) => {
                    let url = format!("{}{path}?{query}", self.upstream.current(api));
                    self.send(method, &url, headers, body, st.request_timeout).await
                }
                // Anything else moves to the next domain when one does not
                // answer or answers 5xx (SPEC §16).
                Outgoing::Kept(_) => {
                    let attempt = |a: Attempt| {
                        let url = format!("{}{path}?{query}", a.base);
                        async move { self.send(method, &url, headers, body, a.remaining).await }
                    };
                    let switches = |r: &Result<Answer, WxError>| !r.as_ref().is_ok_and(|a| !a.status.is_server_error());
                    let timed_out = |_| Err(wx_error(-1, "system error: WeChat did not answer in time"));
                    self.upstream.failover(api, false, attempt, switches, timed_out).await
                }
            };
            spent_ref.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            answer
        };
        let rejected =
            |r: &Result<Answer, WxError>| retryable && r.as_ref().is_ok_and(|a| a.errcode().is_some_and(rejects_token));
        let answer = match st.service.engine.with_token(owner, call, rejected).await? {
            TokenCall::Answered(answer) => answer?,
            TokenCall::RefreshFailed(first, e) => {
                // WeChat's own answer stands.
                tracing::warn!(account = %owner, error = %e, "proxy could not refresh a rejected token");
                first?
            }
        };
        Ok((answer, spent.load(Ordering::Relaxed)))
    }

    /// A slot of `WETOKEN_PROXY_MAX_INFLIGHT`, or WeChat's "system busy".
    fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, WxError> {
        self.inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| wx_error(-1, "system busy: too many proxied requests in flight, retry later"))
    }
}

mod body;
mod signin;
mod token_free;

use body::{Prefixed, holding};

pub use token_free::{MAX_UPLOAD, ProxyPath, routes};

/// The router's fallback: the proxy for WeChat API paths when it is on, else 404.
pub async fn fallback(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if st.proxy_compat && PREFIXES.iter().any(|pre| path.starts_with(pre)) {
        forward(&st, &st.proxy, &path, req)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    } else {
        ApiError::not_found("no such endpoint").into_response()
    }
}

async fn forward(st: &AppState, p: &Proxy, path: &str, req: Request) -> Result<Response, WxError> {
    // Bounded: a request beyond the limit buffers nothing and calls nothing.
    let slot = p.slot()?;
    let raw_query = req.uri().query().unwrap_or_default().to_owned();
    let query = Query::parse(&raw_query);
    let token = presented_token(&query)?;
    let owner = match st.service.accounts.owner_of(&token).await? {
        Some((id, Credential::AccessToken)) => id,
        _ => {
            return Err(wx_error(
                40001,
                "invalid credential, access_token is invalid or not latest (not managed by wetoken)",
            ));
        }
    };
    let (parts, body): (_, Body) = req.into_parts();
    let body = match read_body(body, st.max_body).await {
        Ok(b) => b,
        Err(e) => return Ok(e.into_response()),
    };
    let url_for = |token: &str| query.with_values(TOKEN_PARAMS, token);
    let (answer, _) = p.relay(st, &owner, path, url_for, &parts, Outgoing::Kept(body)).await?;
    Ok(holding(answer.into_response(), slot))
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

    fn answer(body: &str) -> Answer {
        let (errcode, rid) = wechat_status(body.as_bytes());
        Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: AnswerBody::Read(Bytes::copy_from_slice(body.as_bytes())),
            errcode,
            rid,
        }
    }

    #[test]
    fn answers_say_their_errcode_and_rid() {
        let rejected = answer(
            r#"{"errcode":40001,"errmsg":"invalid credential, access_token is invalid rid: 6475e8b0-5b0e1a52-0f7a1c2e"}"#,
        );
        assert!(rejected.errcode().is_some_and(rejects_token));
        assert_eq!(rejected.rid().as_deref(), Some("6475e8b0-5b0e1a52-0f7a1c2e"));
        assert!(answer(r#"{"errcode":42001}"#).errcode().is_some_and(rejects_token));
        assert_eq!(answer(r#"{"errcode":0,"errmsg":"ok"}"#).errcode(), Some(0));
        assert_eq!(
            answer(r#"{"media_id":"m"}"#).errcode(),
            Some(0),
            "success has no errcode"
        );
        assert_eq!(answer("\u{89}PNG binary").errcode(), None);
        assert_eq!(answer(r#"{"errcode":1,"errmsg":"x rid: <script>"}"#).rid(), None);
    }
}
