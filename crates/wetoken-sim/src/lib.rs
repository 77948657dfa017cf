//! # wetoken-sim
//!
//! A faithful WeChat API simulator for wetoken's tests and
//! `wetoken serve --sandbox`. Start it on a free port, point wetoken's
//! `WETOKEN_UPSTREAM_MP` at [`Sim::url`], and read what wetoken did through
//! per-endpoint call counters. WeChat's rules (token rotation and grace,
//! stable_token, tickets, errcodes, quotas) are all in [`rules`]; `routes`
//! holds the HTTP handlers, fault injection and the control API, `push`
//! what WeChat pushes to callbacks, and this file the [`Sim`] handle.
//!
//! Control API (for tests in other processes): `POST /__sim/apps`
//! `{"appid","secret"}`; `GET /__sim/calls`; `POST /__sim/faults`
//! `{"endpoint","fault":"latency|http500|errcode|hang","ms","errcode","times"}`;
//! `DELETE /__sim/faults`; `GET /__sim/valid?access_token=` →
//! `{"valid": bool}`; `POST /__sim/expire` `{"appid","secs"}`;
//! `POST /__sim/components` `{"appid","secret","token","aes_key"}`;
//! `POST /__sim/components/{c}/push_ticket` `{"callback_url"}` → `{"ticket"}`;
//! `POST /__sim/components/{c}/authorize` `{"appid","callback_url"?}` →
//! `{"auth_code"}` (pushes `authorized` when a callback URL is given);
//! `POST /__sim/components/{c}/unauthorize` `{"appid","callback_url"}`.
//!
//! Pushes are what WeChat sends to a component's authorization event URL:
//! encrypted and signed with the component's token and EncodingAESKey
//! (`wetoken_core::msgcrypt`, checked against Tencent's and wechatpy's
//! vectors), `?signature&timestamp&nonce&encrypt_type=aes&msg_signature`.

mod domains;
mod media;
pub mod messages;
mod push;
mod routes;
pub mod rules;
mod users;
mod wecom;

pub use domains::{Domain, Reach};
use push::{authorize, http, push_to_suite, push_verify_ticket, unauthorize};
use routes::router;
pub use routes::{INTRACITY, RISK_RANK};

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
use rules::{Answer, TokenState, World};

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
pub const COMPONENT_TOKEN: &str = "api_component_token";
pub const PRE_AUTH_CODE: &str = "api_create_preauthcode";
pub const QUERY_AUTH: &str = "api_query_auth";
pub const AUTHORIZER_TOKEN: &str = "api_authorizer_token";
pub const GETTOKEN: &str = "gettoken";
pub const GET_JSAPI_TICKET: &str = "get_jsapi_ticket";
pub const AGENT_TICKET: &str = "ticket/get";
pub const PROVIDER_TOKEN: &str = "get_provider_token";
pub const SUITE_TOKEN: &str = "get_suite_token";
pub const PERMANENT_CODE: &str = "get_permanent_code";
pub const AUTH_INFO: &str = "get_auth_info";
pub const CORP_TOKEN: &str = "get_corp_token";
/// Ordinary business APIs (for the proxy): they only check the token.
pub const GETCALLBACKIP: &str = "getcallbackip";
/// The no-quota call wetoken asks whether a token is dead with.
pub const GET_API_DOMAIN_IP: &str = "get_api_domain_ip";
/// A user-token API (`/sns/userinfo`): an account's token gets 40001.
pub const SNS_USERINFO: &str = "sns/userinfo";
/// Mini Program login with the app's secret.
pub const JSCODE2SESSION: &str = "sns/jscode2session";
/// Mini Program login of an authorizer, with its component's token.
pub const COMPONENT_JSCODE2SESSION: &str = "sns/component/jscode2session";
/// Web authorization: code → user token, with the app's secret.
pub const OAUTH2_ACCESS_TOKEN: &str = "sns/oauth2/access_token";
/// Web authorization: a user token refreshed (no secret).
pub const OAUTH2_REFRESH_TOKEN: &str = "sns/oauth2/refresh_token";
/// The component's variants of the two.
pub const COMPONENT_OAUTH2_ACCESS_TOKEN: &str = "sns/oauth2/component/access_token";
pub const COMPONENT_OAUTH2_REFRESH_TOKEN: &str = "sns/oauth2/component/refresh_token";
/// A user token checked.
pub const SNS_AUTH: &str = "sns/auth";
/// A session key checked by its signature.
pub const CHECKSESSION: &str = "wxa/checksession";
pub const MEDIA_UPLOAD: &str = "media/upload";
pub const MEDIA_GET: &str = "media/get";
pub const USER_GET: &str = "user/get";
pub const MENU_CREATE: &str = "menu/create";
pub const CUSTOM_SEND: &str = "message/custom/send";
pub const GETWXACODE: &str = "wxa/getwxacode";
pub const QUOTA_GET: &str = "openapi/quota/get";
pub const RID_GET: &str = "openapi/rid/get";
pub const CLEAR_QUOTA: &str = "clear_quota";
pub const COMPONENT_CLEAR_QUOTA: &str = "component/clear_quota/v2";

/// Faults queued per endpoint, each with how many more calls it applies to.
type FaultQueues = HashMap<String, VecDeque<(Fault, Option<u32>)>>;

#[derive(Default)]
struct Shared {
    world: Mutex<World>,
    /// How far the simulator's clock is ahead of the wall clock, ms
    /// (`Sim::advance`).
    ahead_ms: std::sync::atomic::AtomicI64,
    calls: Mutex<HashMap<String, u64>>,
    /// The access token the last call of each GET API presented.
    last_tokens: Mutex<HashMap<String, String>>,
    /// Requests being answered now, and the most ever at once, per endpoint.
    in_flight: Mutex<HashMap<String, (u64, u64)>>,
    faults: Mutex<FaultQueues>,
    pushers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.ahead_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A component's settings (token, EncodingAESKey), copied out of the world.
    fn component(&self, appid: &str) -> Result<rules::ThirdPartyApp, String> {
        let world = self.world.lock().unwrap();
        world
            .component(appid)
            .cloned()
            .ok_or_else(|| "unknown component".into())
    }

    /// A suite's settings, copied out of the world.
    fn suite(&self, suite_id: &str) -> Result<rules::ThirdPartyApp, String> {
        let world = self.world.lock().unwrap();
        world.suite(suite_id).cloned().ok_or_else(|| "unknown suite".into())
    }

    /// Counts a call and takes the fault to apply to it, if any. The guard
    /// counts the call as in flight until it is dropped.
    fn enter(self: &Arc<Self>, endpoint: &str) -> (Option<Fault>, InFlight) {
        *self.calls.lock().unwrap().entry(endpoint.to_owned()).or_default() += 1;
        {
            let mut f = self.in_flight.lock().unwrap();
            let e = f.entry(endpoint.to_owned()).or_default();
            e.0 += 1;
            e.1 = e.1.max(e.0);
        }
        let guard = InFlight(self.clone(), endpoint.to_owned());
        (self.take_fault(endpoint), guard)
    }

    fn take_fault(&self, endpoint: &str) -> Option<Fault> {
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

/// A request being answered.
struct InFlight(Arc<Shared>, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(e) = self.0.in_flight.lock().unwrap().get_mut(&self.1) {
            e.0 -= 1;
        }
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
        for p in self.shared.pushers.lock().unwrap().drain(..) {
            p.abort();
        }
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

    /// The `access_token` the last call of a GET endpoint presented (which
    /// token a ticket was fetched with, for example).
    pub fn last_token(&self, endpoint: &str) -> Option<String> {
        self.shared.last_tokens.lock().unwrap().get(endpoint).cloned()
    }

    /// The most requests to an endpoint ever answered at once.
    pub fn max_in_flight(&self, endpoint: &str) -> u64 {
        self.shared.in_flight.lock().unwrap().get(endpoint).map_or(0, |e| e.1)
    }

    /// An existing authorization of `authorizer` to `component`; its refresh
    /// token (to import into wetoken).
    pub fn add_authorization(&self, component: &str, authorizer: &str) -> String {
        self.shared
            .world
            .lock()
            .unwrap()
            .add_authorization(component, authorizer)
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

    /// Kills `token` for every API, as another party's forced refresh does.
    pub fn revoke(&self, token: &str) {
        let now = self.shared.now();
        self.shared.world.lock().unwrap().revoke(token, now);
    }

    /// Makes every API refuse `token` while stable_token's normal mode still
    /// answers it: only a forced refresh replaces it.
    pub fn poison(&self, token: &str) {
        self.shared.world.lock().unwrap().poison(token);
    }

    pub fn reset_quota(&self) {
        self.shared.world.lock().unwrap().reset_quota();
    }

    /// Registers an Open Platform component.
    pub fn add_component(&self, appid: &str, secret: &str, token: &str, aes_key: &str) {
        self.shared
            .world
            .lock()
            .unwrap()
            .add_component(appid, secret, token, aes_key);
    }

    /// Pushes a new component_verify_ticket to `callback_url`, as WeChat does
    /// every 10 minutes. The ticket and the HTTP status of the answer.
    pub async fn push_verify_ticket(&self, component: &str, callback_url: &str) -> Result<(String, u16), String> {
        push_verify_ticket(&self.shared, component, callback_url).await
    }

    /// Pushes a verify ticket now and then every `every`, until the simulator stops.
    pub fn start_pushing(&self, component: &str, callback_url: &str, every: Duration) {
        let (shared, c, url) = (self.shared.clone(), component.to_owned(), callback_url.to_owned());
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = push_verify_ticket(&shared, &c, &url).await {
                    tracing::warn!(component = %c, error = %e, "verify ticket push failed");
                }
                tokio::time::sleep(every).await;
            }
        });
        self.shared.pushers.lock().unwrap().push(task);
    }

    /// An administrator authorizes `authorizer` to `component`: a new
    /// authorization code, pushed as an `authorized` event when a callback URL
    /// is given. The code (it also works on the landing page).
    pub async fn authorize(
        &self,
        component: &str,
        authorizer: &str,
        callback_url: Option<&str>,
    ) -> Result<String, String> {
        authorize(&self.shared, component, authorizer, callback_url).await
    }

    /// An administrator revokes the authorization: an `unauthorized` event.
    pub async fn unauthorize(&self, component: &str, authorizer: &str, callback_url: &str) -> Result<u16, String> {
        unauthorize(&self.shared, component, authorizer, callback_url).await
    }

    /// Sends any message to a component's callback, encrypted and signed as WeChat would.
    pub async fn push_message(&self, component: &str, callback_url: &str, message: &str) -> Result<u16, String> {
        push::push(&self.shared, component, callback_url, message).await
    }

    /// The authorizer's current refresh token at WeChat.
    pub fn refresh_token_of(&self, component: &str, authorizer: &str) -> Option<String> {
        self.shared
            .world
            .lock()
            .unwrap()
            .refresh_token_of(component, authorizer)
    }

    /// Makes the authorizer's refresh token invalid (61023 next time).
    pub fn invalidate_refresh_token(&self, component: &str, authorizer: &str) {
        self.shared
            .world
            .lock()
            .unwrap()
            .invalidate_refresh_token(component, authorizer);
    }
}
