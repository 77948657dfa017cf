//! Operations endpoints (no key): `/healthz`, `/readyz`, `/metrics`, and the
//! layer in front of every route (body limit, request metrics).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
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
    st.service.observe_remaining();
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
}

impl<S> Layer<S> for Front {
    type Service = FrontService<S>;
    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            inner,
            max_body: self.max_body,
        }
    }
}

#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    max_body: usize,
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
            method: method_label(req.method()),
            route: req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", |p| intern(p.as_str())),
        };
        let max_body = self.max_body;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body as u64) {
            return FrontFuture::TooLarge(
                Box::pin(async move {
                    let _ = read_body(req.into_body(), max_body).await;
                    Ok(ApiError::too_large(max_body).into_response())
                }),
                labels,
            );
        }
        // A route is always ready (axum's `Route`): call it in place.
        FrontFuture::Route(self.inner.call(req), labels)
    }
}

/// When a request started and what it is recorded under.
#[derive(Clone, Copy)]
pub struct Measured {
    started: Instant,
    method: &'static str,
    route: &'static str,
}

/// The route's answer, recorded: no allocation on the way.
pub enum FrontFuture<F> {
    Route(F, Measured),
    TooLarge(BoxFuture<Result<Response, Infallible>>, Measured),
}

impl<F: Future<Output = Result<Response, Infallible>> + Unpin> Future for FrontFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (poll, m) = match self.get_mut() {
            FrontFuture::Route(f, m) => (Pin::new(f).poll(cx), *m),
            FrontFuture::TooLarge(f, m) => (f.as_mut().poll(cx), *m),
        };
        if let Poll::Ready(Ok(resp)) = &poll {
            latency(m.method, m.route, status_label(resp.status())).record(m.started.elapsed().as_secs_f64());
        }
        poll
    }
}

/// A route pattern as a `&'static str`: routes are few and fixed, so each
/// is leaked once (per process; each worker thread remembers it by the
/// address of the matched path, so a request takes no lock here).
fn intern(route: &str) -> &'static str {
    static ROUTES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    thread_local! {
        static SEEN: RefCell<HashMap<usize, &'static str>> = RefCell::default();
    }
    let addr = route.as_ptr() as usize;
    if let Some(r) = SEEN.with_borrow(|seen| seen.get(&addr).copied())
        && r == route
    {
        return r;
    }
    let r = {
        let mut routes = ROUTES.lock().unwrap();
        match routes.get(route) {
            Some(r) => *r,
            None => {
                let r: &'static str = Box::leak(route.to_owned().into_boxed_str());
                routes.insert(r);
                r
            }
        }
    };
    SEEN.with_borrow_mut(|seen| {
        // axum keeps one matched path per route; should that ever change,
        // this memo still stays small.
        if seen.len() >= 1024 {
            seen.clear();
        }
        seen.insert(addr, r)
    });
    r
}

type Labels = (&'static str, &'static str, &'static str);

/// The latency histogram of one (method, route, status), its handle kept
/// per worker thread (the labels are interned: compared by address).
fn latency(method: &'static str, route: &'static str, status: &'static str) -> Histogram {
    thread_local! {
        static HANDLES: RefCell<HashMap<(usize, usize, usize), Histogram>> = RefCell::default();
    }
    let key = (
        method.as_ptr() as usize,
        route.as_ptr() as usize,
        status.as_ptr() as usize,
    );
    if let Some(h) = HANDLES.with_borrow(|m| m.get(&key).cloned()) {
        return h;
    }
    let labels: Labels = (method, route, status);
    let h = metrics::histogram!(
        "wetoken_http_request_duration_seconds",
        "method" => labels.0,
        "route" => labels.1,
        "status" => labels.2,
    );
    HANDLES.with_borrow_mut(|m| m.insert(key, h.clone()));
    h
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A status as a label without allocating for the common ones.
fn status_label(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => "other",
    }
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers.
async fn readyz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.service.store().ping().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("database not reachable: {e}"),
        )
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
