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
//! Token-free calls (SPEC §6, [`routes`]): `/proxy/{kind}/…/<WeChat path>`
//! authenticated by a wetoken key that covers the account (and, with
//! `paths`, the path); wetoken adds the account's token. The same relay.
//!
//! Bodies up to `WETOKEN_MAX_BODY_BYTES` are read whole (a retry sends them
//! again); a token-free call's larger body (up to [`MAX_UPLOAD`]) streams
//! through once, never held whole, and is not retried. JSON and text
//! answers are read whole (bounded by [`MAX_ANSWER`]: their errcode decides
//! the retry); anything else streams back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes};
use axum::extract::{RawPathParams, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wetoken_core::auth::Principal;
use wetoken_core::domain::{AccountId, AccountKind, Credential};
use wetoken_core::service::TokenCall;
use wetoken_core::upstream::rejects_token;
use wetoken_core::urlenc::Query;

use crate::AppState;
use crate::error::{ApiError, WxError, wx_error};
use crate::extract::{Authed, Target, read_body};

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

/// What goes upstream: a body read whole, which a retry can send again, or
/// a larger one streamed through once (no retry: it is not kept).
enum Outgoing {
    Kept(Bytes),
    Streamed(std::sync::Mutex<Option<reqwest::Body>>, Option<u64>),
}

/// WeChat's answer: JSON or text read whole (its errcode decides a retry
/// and goes to the audit trail), anything else (images, media) streamed
/// back as it comes.
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
    Stream(reqwest::Response),
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
    let rid = st.errmsg.as_deref().and_then(|m| {
        let rid = m.rsplit_once("rid: ")?.1.trim();
        (!rid.is_empty() && rid.len() <= 64 && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .then(|| rid.to_owned())
    });
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
            AnswerBody::Stream(resp) => Body::from_stream(resp.bytes_stream()),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

/// Whether an answer of this type is read whole: JSON and text are what
/// WeChat says (and errs) in; anything else is data.
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
        let mut req = self.http.request(method.clone(), url).headers(relayed(headers));
        req = match body {
            Outgoing::Kept(b) => req.body(b.clone()),
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
        let headers = relayed(resp.headers());
        if !read_whole(resp.headers()) {
            return Ok(Answer {
                status,
                headers,
                body: AnswerBody::Stream(resp),
                errcode: None,
                rid: None,
            });
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(upstream_unreachable)? {
            if buf.len() + chunk.len() > MAX_ANSWER {
                return Err(wx_error(-1, "system error: the upstream answer is too large to relay"));
            }
            buf.extend_from_slice(&chunk);
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

    fn base_of(&self, owner: &AccountId) -> &str {
        match owner.kind() {
            AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider => &self.work_base,
            _ => &self.mp_base,
        }
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
        let base = self.base_of(owner);
        let spent = AtomicU64::new(0);
        let retryable = matches!(body, Outgoing::Kept(_));
        let (method, headers, body, spent_ref, url_for) = (&parts.method, &parts.headers, &body, &spent, &url_for);
        let call = |token: String| async move {
            let url = format!("{base}{path}?{}", url_for(&token));
            let started = Instant::now();
            let answer = self.send(method, &url, headers, body, st.request_timeout).await;
            spent_ref.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            answer
        };
        let rejected =
            |r: &Result<Answer, WxError>| retryable && r.as_ref().is_ok_and(|a| a.errcode().is_some_and(rejects_token));
        let answer = match st.service.with_token(owner, call, rejected).await? {
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
/// as sent: [`wechat_path`]).
pub struct ProxyPath(pub AccountId);

impl Target for ProxyPath {
    fn resolve(id: AccountId, _: &RawPathParams) -> Result<Self, ApiError> {
        Ok(ProxyPath(id))
    }
}

/// The WeChat path of `/proxy/{kind}/{ids…}/<path>`, as sent: one of the
/// API prefixes, no `%`, `..` or `//` (a path that could mean another once
/// decoded upstream is refused, not forwarded).
fn wechat_path(uri_path: &str, id: &AccountId) -> Result<String, ApiError> {
    let ids = if matches!(id, AccountId::Mp { .. }) { 1 } else { 2 };
    let rest = uri_path.splitn(4 + ids, '/').nth(3 + ids).unwrap_or_default();
    let path = format!("/{rest}");
    if path.contains('%') || path.contains("..") || path.contains("//") {
        return Err(ApiError::invalid(format!("{path:?} is not a WeChat API path")));
    }
    if !PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Err(ApiError::not_found(format!(
            "{path} is not a WeChat API path (they start with /cgi-bin/, /sns/, /wxa/, …)"
        )));
    }
    Ok(path)
}

/// A token-free call's query as forwarded: as it came, less token
/// parameters left empty (an SDK given an empty token source sends
/// `access_token=`); a token that is sent is refused (400): it would be
/// ambiguous which one WeChat sees.
fn without_empty_tokens(raw: &str) -> Result<String, ApiError> {
    let mut kept = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = wetoken_core::urlenc::percent_decode(name);
        if TOKEN_PARAMS.contains(&name.as_str()) {
            if value.is_empty() {
                continue;
            }
            return Err(ApiError::invalid(format!(
                "{name} was sent: wetoken adds the account's token to token-free calls, send none"
            )));
        }
        kept.push(pair);
    }
    Ok(kept.join("&"))
}

/// A token-free call: the key covers the account (else 403) and the path
/// (its `paths`, else 403); the caller sends no token (400); wetoken adds
/// the account's current one and relays the rest as it came.
async fn token_free(State(st): State<AppState>, a: Authed<ProxyPath>, req: Request) -> Response {
    let owner = a.target.0;
    let path = match wechat_path(req.uri().path(), &owner) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let (resp, errcode, rid) = call_for(&st, &a.principal, &owner, &path, req).await;
    // Every call is recorded, refused or relayed: who, what, and the answer.
    let record = wetoken_core::service::audit::CallRecord {
        key: a.principal.name(),
        account: &owner,
        method: method.as_str(),
        path: &path,
        status: resp.status().as_u16(),
        errcode,
        rid,
    };
    if let Err(e) = st.service.record_call(record).await {
        tracing::warn!(error = %e, account = %owner, path = %path, "a token-free call was not recorded in the audit trail");
    }
    resp
}

/// A token-free call refused or relayed: the answer, with WeChat's errcode
/// and rid (none when wetoken refused it; -1 when too many were in flight).
async fn call_for(
    st: &AppState,
    principal: &Principal,
    owner: &AccountId,
    path: &str,
    req: Request,
) -> (Response, Option<i64>, Option<String>) {
    if !principal.may_call(path) {
        let e = ApiError::forbidden(format!("this key may not call {path} (its paths)"));
        return (e.into_response(), None, None);
    }
    let raw_query = match without_empty_tokens(req.uri().query().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return (e.into_response(), None, None),
    };
    let p = &st.proxy;
    let _slot = match p.slot() {
        Ok(s) => s,
        Err(e) => return (e.into_response(), Some(-1), None),
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
            Err(e) => return (e.into_response(), None, None),
        }
    };
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
            (resp, errcode, rid)
        }
        Err(e) => {
            let errcode = e.errcode;
            (e.into_response(), Some(errcode), None)
        }
    }
}

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
    let _slot = p.slot()?;
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
    let (parts, body): (_, Body) = req.into_parts();
    let body = match read_body(body, st.max_body).await {
        Ok(b) => b,
        Err(e) => return Ok(e.into_response()),
    };
    let url_for = |token: &str| query.with_values(TOKEN_PARAMS, token);
    let (answer, _) = p.relay(st, &owner, path, url_for, &parts, Outgoing::Kept(body)).await?;
    Ok(answer.into_response())
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
        for sent in ["access_token=T", "type=1&acc%65ss_token=T", "suite_access_token=x"] {
            assert!(without_empty_tokens(sent).is_err(), "{sent}");
        }
    }

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
