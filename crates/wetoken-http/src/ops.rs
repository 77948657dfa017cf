//! Operations endpoints (no key): `/healthz`, `/readyz`, `/metrics`, and the
//! layer in front of every route (body limit, request metrics).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{LazyLock, RwLock};
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
#[derive(Clone)]
pub struct Front(pub AppState);

impl<S> Layer<S> for Front {
    type Service = FrontService<S>;
    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            inner,
            st: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    st: AppState,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| intern(p.as_str()));
        let max_body = self.st.max_body;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let record = move |resp: Response| {
            latency(method, route, status_label(resp.status())).record(started.elapsed().as_secs_f64());
            Ok(resp)
        };
        if declared.is_some_and(|n| n > max_body as u64) {
            return Box::pin(async move {
                let _ = read_body(req.into_body(), max_body).await;
                record(ApiError::too_large(max_body).into_response())
            });
        }
        // A route is always ready (axum's `Route`): call it in place.
        let fut = self.inner.call(req);
        Box::pin(async move {
            let Ok(resp) = fut.await;
            record(resp)
        })
    }
}

/// A route pattern as a `&'static str`: routes are few and fixed, so each
/// is leaked once.
fn intern(route: &str) -> &'static str {
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(RwLock::default);
    if let Some(r) = ROUTES.read().unwrap().get(route) {
        return r;
    }
    let mut routes = ROUTES.write().unwrap();
    match routes.get(route) {
        Some(r) => r,
        None => {
            let r: &'static str = Box::leak(route.to_owned().into_boxed_str());
            routes.insert(r);
            r
        }
    }
}

type Labels = (&'static str, &'static str, &'static str);

/// The latency histogram of one (method, route, status).
fn latency(method: &'static str, route: &'static str, status: &'static str) -> Histogram {
    static HANDLES: LazyLock<RwLock<HashMap<Labels, Histogram>>> = LazyLock::new(RwLock::default);
    let labels = (method, route, status);
    if let Some(h) = HANDLES.read().unwrap().get(&labels) {
        return h.clone();
    }
    let h = metrics::histogram!(
        "wetoken_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status,
    );
    HANDLES.write().unwrap().insert(labels, h.clone());
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
