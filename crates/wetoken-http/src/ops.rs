//! Operations endpoints (no key): `/healthz`, `/readyz`, `/metrics`, and the
//! layer in front of every route (body limit, request metrics).

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use metrics::Histogram;
use tower::{Layer, Service};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::read_body;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(crate::openapi::openapi))
}

/// Prometheus text exposition.
async fn metrics_text(State(st): State<AppState>) -> Result<Response, ApiError> {
    let handle = st
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("metrics are not enabled"))?;
    st.service.engine.observe_remaining(st.metrics_per_account);
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}

/// In front of every route ([`Front`]): refuses a declared body over the
/// limit (413, before any handler runs; bodies without a length are capped
/// while read, see [`read_body`]), and records the request's latency by
/// method, route and status: one histogram whose `_count` is the request
/// count. A plain tower layer rather than `middleware::from_fn` (which
/// clones the route and boxes a `Next` per request), with one cached metric
/// handle per (method, route, status): the hot path allocates nothing here
/// but its future.
#[derive(Clone, Copy)]
pub struct Front {
    /// `WETOKEN_MAX_BODY_BYTES`.
    pub max_body: usize,
    /// `WETOKEN_REQUEST_TIMEOUT_SECS`: a request with a body, or one for
    /// the proxy, must have arrived and been answered within it (408). Any
    /// other had its headers within 10 s (hyper) and its handler is bounded
    /// (reads wait at most the upstream timeout + 2 s).
    pub request_timeout: std::time::Duration,
}

impl<S> Layer<S> for Front {
    type Service = FrontService<S>;
    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            inner,
            max_body: self.max_body,
            request_timeout: self.request_timeout,
        }
    }
}

#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    max_body: usize,
    request_timeout: std::time::Duration,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + Unpin + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let labels = Measured {
            started: Instant::now(),
            metrics: RouteMetrics::of(req.method(), req.extensions().get::<MatchedPath>()),
            peer: req.extensions().get::<crate::serve::Peer>().map(|p| p.0),
        };
        // Token-free calls stream larger bodies upstream (SPEC §6).
        let max_body = if labels.metrics.route.starts_with("/proxy/") {
            crate::proxy::MAX_UPLOAD.max(self.max_body)
        } else {
            self.max_body
        };
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body as u64) {
            return FrontFuture::Boxed(
                Box::pin(async move {
                    let _ = read_body(req.into_body(), max_body).await;
                    Ok(ApiError::too_large(max_body).into_response())
                }),
                labels,
            );
        }
        // A body can be sent slowly, and the proxy (the router's fallback,
        // no matched route) waits on WeChat: those run under the deadline.
        // The hot path, a GET of a route without a body, arms no timer.
        let deadline = declared.is_some_and(|n| n > 0)
            || req.headers().contains_key(TRANSFER_ENCODING)
            || labels.metrics.route == UNMATCHED;
        if deadline {
            let (route, timeout) = (self.inner.call(req), self.request_timeout);
            return FrontFuture::Boxed(
                Box::pin(async move {
                    match tokio::time::timeout(timeout, route).await {
                        Ok(answer) => answer,
                        Err(_) => Ok(ApiError::new(
                            StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            format!("the request took longer than {} s to arrive", timeout.as_secs()),
                        )
                        .into_response()),
                    }
                }),
                labels,
            );
        }
        // A route is always ready (axum's `Route`): call it in place.
        FrontFuture::Route(self.inner.call(req), labels)
    }
}

/// When a request started and where its latency is recorded.
#[derive(Clone, Copy)]
pub struct Measured {
    started: Instant,
    metrics: &'static RouteMetrics,
    peer: Option<std::net::IpAddr>,
}

/// The route's answer, recorded: no allocation on the way.
pub enum FrontFuture<F> {
    Route(F, Measured),
    /// A refused oversized body, or a request under the deadline.
    Boxed(BoxFuture<Result<Response, Infallible>>, Measured),
}

impl<F: Future<Output = Result<Response, Infallible>> + Unpin> Future for FrontFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (poll, m) = match self.get_mut() {
            FrontFuture::Route(f, m) => (Pin::new(f).poll(cx), *m),
            FrontFuture::Boxed(f, m) => (f.as_mut().poll(cx), *m),
        };
        if let Poll::Ready(Ok(resp)) = &poll {
            m.metrics
                .latency(resp.status())
                .record(m.started.elapsed().as_secs_f64());
            if resp.status().is_client_error() {
                refused(m.peer, m.metrics, resp.status());
            }
        }
        poll
    }
}

/// Logs a refused request at most once per source and minute: bad input
/// is visible to the operator without letting a flood fill the log.
fn refused(peer: Option<std::net::IpAddr>, m: &RouteMetrics, status: StatusCode) {
    static LOGGED: LazyLock<Mutex<HashMap<Option<std::net::IpAddr>, u64>>> = LazyLock::new(Mutex::default);
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.get(&peer) == Some(&minute) {
        return;
    }
    if logged.len() >= 10_000 {
        logged.retain(|_, m| *m == minute);
        if logged.len() >= 10_000 {
            return;
        }
    }
    logged.insert(peer, minute);
    drop(logged);
    let source = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    tracing::warn!(%source, method = m.method, route = m.route, status = status.as_u16(), "refused a request (logged once per source and minute)");
}

/// The route label of a request no route matched (the proxy, 404s).
const UNMATCHED: &str = "unmatched";

const METHODS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"];

/// Status labels without allocating; the rest are "other".
const STATUSES: [&str; 15] = [
    "200", "201", "204", "400", "401", "403", "404", "405", "409", "413", "429", "500", "502", "503", "other",
];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The index of `s`'s label in [`STATUSES`].
fn status_index(s: StatusCode) -> usize {
    match s.as_u16() {
        200 => 0,
        201 => 1,
        204 => 2,
        400 => 3,
        401 => 4,
        403 => 5,
        404 => 6,
        405 => 7,
        409 => 8,
        413 => 9,
        429 => 10,
        500 => 11,
        502 => 12,
        503 => 13,
        _ => 14,
    }
}

/// The latency histograms of one (method, route pattern), one per status,
/// each registered on first use. Routes and methods are few and fixed, so
/// each pair's is made once per process and leaked; a worker thread finds
/// it by the address of axum's matched path (one per route), so a request
/// takes no lock and allocates nothing here.
pub struct RouteMetrics {
    method: &'static str,
    route: &'static str,
    by_status: [OnceLock<Histogram>; STATUSES.len()],
}

type Seen = HashMap<(usize, usize, usize), &'static RouteMetrics, foldhash::fast::RandomState>;

impl RouteMetrics {
    fn of(method: &Method, route: Option<&MatchedPath>) -> &'static RouteMetrics {
        thread_local! {
            static SEEN: RefCell<Seen> = RefCell::default();
        }
        let route = route.map_or(UNMATCHED, |p| p.as_str());
        let m = method_index(method);
        let key = (route.as_ptr() as usize, route.len(), m);
        if let Some(r) = SEEN.with_borrow(|seen| seen.get(&key).copied())
            && r.route == route
        {
            return r;
        }
        let r = Self::shared(METHODS[m], route);
        SEEN.with_borrow_mut(|seen| {
            // axum keeps one matched path per route; should that ever
            // change, this memo still stays small.
            if seen.len() >= 1024 {
                seen.clear();
            }
            seen.insert(key, r)
        });
        r
    }

    /// The process's one [`RouteMetrics`] of (method, route).
    fn shared(method: &'static str, route: &str) -> &'static RouteMetrics {
        static ALL: LazyLock<Mutex<HashMap<(&'static str, String), &'static RouteMetrics>>> =
            LazyLock::new(Mutex::default);
        let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
        let key = (method, route.to_owned());
        if let Some(r) = all.get(&key) {
            return r;
        }
        let r: &'static RouteMetrics = Box::leak(Box::new(RouteMetrics {
            method,
            route: Box::leak(route.to_owned().into_boxed_str()),
            by_status: Default::default(),
        }));
        all.insert(key, r);
        r
    }

    fn latency(&self, status: StatusCode) -> &Histogram {
        let i = status_index(status);
        self.by_status[i].get_or_init(|| {
            metrics::histogram!(
                "wetoken_http_request_duration_seconds",
                "method" => self.method,
                "route" => self.route,
                "status" => STATUSES[i],
            )
        })
    }
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers.
async fn readyz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.service.engine.store().ping().await.map_err(|e| {
        // The database's own error text stays in the log (SPEC §3).
        tracing::warn!(error = %e, "readyz: database not reachable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "database not reachable")
    })?;
    Ok(Json(json!({"status": "ready"})))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_method_and_status_or_other() {
        for (i, label) in METHODS.iter().enumerate().take(METHODS.len() - 1) {
            assert_eq!(method_index(&label.parse::<Method>().unwrap()), i);
        }
        assert_eq!(METHODS[method_index(&Method::from_bytes(b"PURGE").unwrap())], "other");
        for code in 100..600 {
            let s = StatusCode::from_u16(code).unwrap();
            let label = STATUSES[status_index(s)];
            assert!(label == s.as_str() || label == "other", "{code} → {label}");
            assert_eq!(label == "other", !STATUSES.contains(&s.as_str()), "{code}");
        }
    }

    #[test]
    fn one_route_metrics_per_method_and_route_across_threads() {
        let here = RouteMetrics::of(&Method::GET, None);
        let there = std::thread::spawn(|| RouteMetrics::of(&Method::GET, None) as *const _ as usize)
            .join()
            .unwrap();
        assert_eq!(here as *const _ as usize, there);
        assert_eq!((here.method, here.route), ("GET", "unmatched"));
        let post = RouteMetrics::of(&Method::POST, None);
        assert_eq!((post.method, post.route), ("POST", "unmatched"));
    }
}
