//! # wetoken-sim
//!
//! A faithful WeChat API simulator for wetoken's tests and
//! `wetoken serve --sandbox`. Start it on a free port, point wetoken's
//! `WETOKEN_UPSTREAM_MP` at [`Sim::url`], and read what wetoken did through
//! per-endpoint call counters. WeChat's rules (token rotation and grace,
//! stable_token, tickets, errcodes, quotas) are all in [`rules`]; this file
//! holds the plumbing, fault injection and the control API.
//!
//! Control API (for tests in other processes): `POST /__sim/apps`
//! `{"appid","secret"}`; `GET /__sim/calls`; `POST /__sim/faults`
//! `{"endpoint","fault":"latency|http500|errcode|hang","ms","errcode","times"}`;
//! `DELETE /__sim/faults`; `GET /__sim/valid?access_token=` →
//! `{"valid": bool}`; `POST /__sim/expire` `{"appid","secs"}`.

pub mod rules;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub use rules::SimConfig;
use rules::{TokenState, World};

/// What a fault does to the next calls of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally, after a delay.
    Latency(Duration),
    /// HTTP 500 with an HTML body, as a broken gateway would.
    Http500,
    /// `{"errcode": N}` with HTTP 200 (-1 is WeChat's "system busy").
    Errcode(i64),
    /// Never answer.
    Hang,
}

/// Endpoint names for counters and faults.
pub const TOKEN: &str = "token";
pub const STABLE_TOKEN: &str = "stable_token";
pub const GETTICKET: &str = "getticket";

/// Faults queued per endpoint, each with how many more calls it applies to.
type FaultQueues = HashMap<String, VecDeque<(Fault, Option<u32>)>>;

#[derive(Default)]
struct Shared {
    world: Mutex<World>,
    calls: Mutex<HashMap<String, u64>>,
    faults: Mutex<FaultQueues>,
}

impl Shared {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// Counts a call and takes the fault to apply to it, if any.
    fn enter(&self, endpoint: &str) -> Option<Fault> {
        *self.calls.lock().unwrap().entry(endpoint.to_owned()).or_default() += 1;
        let mut faults = self.faults.lock().unwrap();
        let q = faults.get_mut(endpoint)?;
        let (fault, times) = q.front_mut()?;
        let fault = fault.clone();
        if let Some(n) = times {
            *n -= 1;
            if *n == 0 {
                q.pop_front();
            }
        }
        Some(fault)
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Sim> {
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), cfg).await
    }

    pub async fn start_on(addr: SocketAddr, cfg: SimConfig) -> std::io::Result<Sim> {
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(cfg)),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sim { addr, shared, task })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_app(&self, appid: &str, secret: &str) {
        self.shared.world.lock().unwrap().add_app(appid, secret);
    }

    /// Calls received by an endpoint, faulty ones included.
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.shared.calls.lock().unwrap().get(endpoint).copied().unwrap_or(0)
    }

    /// Calls to the token endpoints (classic and stable) together.
    pub fn token_calls(&self) -> u64 {
        self.calls(TOKEN) + self.calls(STABLE_TOKEN)
    }

    /// Applies `fault` to the next `times` calls of `endpoint` (None: all).
    pub fn inject(&self, endpoint: &str, fault: Fault, times: Option<u32>) {
        self.shared
            .faults
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default()
            .push_back((fault, times));
    }

    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Whether WeChat would accept this access token now (grace included).
    pub fn is_valid(&self, token: &str) -> bool {
        let now = self.shared.now();
        self.shared.world.lock().unwrap().token_state(token, now) == TokenState::Valid
    }

    /// Changes the rules while running.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.shared.world.lock().unwrap().cfg);
    }

    /// Makes every live token of an app expire within `secs`.
    pub fn expire_tokens_in(&self, appid: &str, secs: i64) {
        let now = self.shared.now();
        self.shared.world.lock().unwrap().expire_tokens_in(appid, secs, now);
    }

    pub fn reset_quota(&self) {
        self.shared.world.lock().unwrap().reset_quota();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(classic))
        .route("/cgi-bin/stable_token", post(stable))
        .route("/cgi-bin/ticket/getticket", get(getticket))
        .route("/__sim/apps", post(ctl_add_app))
        .route("/__sim/calls", get(ctl_calls))
        .route("/__sim/faults", post(ctl_fault).delete(ctl_clear_faults))
        .route("/__sim/valid", get(ctl_valid))
        .route("/__sim/expire", post(ctl_expire))
        .with_state(shared)
}

/// Applies a fault; `Some(response)` when the fault replaces the answer.
async fn apply(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::Latency(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Http500 => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html><body>500 Internal Server Error</body></html>",
            )
                .into_response(),
        ),
        Fault::Errcode(c) => Some(Json(json!({"errcode": c, "errmsg": "system error"})).into_response()),
        Fault::Hang => {
            std::future::pending::<()>().await;
            None
        }
    }
}

/// WeChat answers JSON with a text/plain content type at times; keep
/// clients honest about not relying on it.
fn answer(v: Value) -> Response {
    ([("content-type", "application/json; encoding=utf-8")], v.to_string()).into_response()
}

async fn classic(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = apply(s.enter(TOKEN)).await {
        return r;
    }
    let now = s.now();
    let a = s.world.lock().unwrap().classic(
        q.get("grant_type").map(String::as_str),
        q.get("appid").map(String::as_str),
        q.get("secret").map(String::as_str),
        now,
    );
    answer(a)
}

async fn stable(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(r) = apply(s.enter(STABLE_TOKEN)).await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return answer(json!({"errcode": 47001, "errmsg": "data format error"}));
    };
    let now = s.now();
    let a = s.world.lock().unwrap().stable(
        v["grant_type"].as_str(),
        v["appid"].as_str(),
        v["secret"].as_str(),
        v["force_refresh"].as_bool().unwrap_or(false),
        now,
    );
    answer(a)
}

async fn getticket(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = apply(s.enter(GETTICKET)).await {
        return r;
    }
    let now = s.now();
    let a = s.world.lock().unwrap().ticket(
        q.get("access_token").map(String::as_str),
        q.get("type").map(String::as_str),
        now,
    );
    answer(a)
}

#[derive(Deserialize)]
struct AppBody {
    appid: String,
    secret: String,
}

async fn ctl_add_app(State(s): State<Arc<Shared>>, Json(b): Json<AppBody>) -> StatusCode {
    s.world.lock().unwrap().add_app(&b.appid, &b.secret);
    StatusCode::NO_CONTENT
}

async fn ctl_calls(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(*s.calls.lock().unwrap()))
}

#[derive(Deserialize)]
struct FaultBody {
    endpoint: String,
    fault: String,
    ms: Option<u64>,
    errcode: Option<i64>,
    times: Option<u32>,
}

async fn ctl_fault(State(s): State<Arc<Shared>>, Json(b): Json<FaultBody>) -> Response {
    let fault = match b.fault.as_str() {
        "latency" => Fault::Latency(Duration::from_millis(b.ms.unwrap_or(1000))),
        "http500" => Fault::Http500,
        "errcode" => Fault::Errcode(b.errcode.unwrap_or(-1)),
        "hang" => Fault::Hang,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "fault must be latency, http500, errcode or hang",
            )
                .into_response();
        }
    };
    s.faults
        .lock()
        .unwrap()
        .entry(b.endpoint)
        .or_default()
        .push_back((fault, b.times));
    StatusCode::NO_CONTENT.into_response()
}

async fn ctl_clear_faults(State(s): State<Arc<Shared>>) -> StatusCode {
    s.faults.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

async fn ctl_valid(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let now = s.now();
    let token = q.get("access_token").map(String::as_str).unwrap_or_default();
    let valid = s.world.lock().unwrap().token_state(token, now) == TokenState::Valid;
    Json(json!({ "valid": valid }))
}

#[derive(Deserialize)]
struct ExpireBody {
    appid: String,
    secs: i64,
}

async fn ctl_expire(State(s): State<Arc<Shared>>, Json(b): Json<ExpireBody>) -> StatusCode {
    let now = s.now();
    s.world.lock().unwrap().expire_tokens_in(&b.appid, b.secs, now);
    StatusCode::NO_CONTENT
}
