//! The client for WeChat's and WeCom's token endpoints.
//!
//! WeChat reports errors in the body with HTTP 200. The one rule for every
//! endpoint: success ⇔ `errcode` absent or 0; anything else is
//! [`UpstreamError::WeChat`] carrying errcode and errmsg. Never match on
//! errmsg (it carries a per-request `rid`). Every call has a timeout.
//! See ../shared/reference/wechat-upstream-contract.md.

//!
//! - `error`: [`UpstreamError`] and the one list of token-rejected errcodes;
//! - `answers`: the success rule and every answer parsed into a type;
//! - [`paths`]: the paths that hand out credentials, and metric families;
//! - `transport`: the one HTTP client to WeChat, for these calls and the
//!   proxy's.

mod answers;
pub mod egress;
mod error;
pub mod grants;
pub mod paths;
mod signed;
mod signin;
mod transport;

use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use answers::{Authorization, Fetched, Install, Quota, RidRequest, TicketType, check_errcode, fetched};
pub use error::{TOKEN_REJECTED, UpstreamError, rejects_token, rid_in};
pub use signed::Signed;
pub use signin::{Session, UserToken};
pub use transport::{Api, Attempt, REMEMBER_DOWN_MS, Transport, switches};

use crate::domain::{AccountKind, TokenApi};

/// Where the two WeChat APIs live and how to reach them (SPEC §7
/// `WETOKEN_UPSTREAM_MP`/`_WORK`, §16 domain lists and
/// `WETOKEN_UPSTREAM_PROXY`).
#[derive(Clone)]
pub struct UpstreamConfig {
    /// WeChat's API domains (base URLs), in order of preference.
    pub mp: Vec<String>,
    /// WeCom's.
    pub work: Vec<String>,
    /// One call's whole time, across domains.
    pub timeout: Duration,
    /// The HTTP proxy every upstream call goes through (CONNECT for https).
    pub proxy: Option<String>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("mp", &self.mp)
            .field("work", &self.work)
            .field("timeout", &self.timeout)
            // It may carry a password.
            .field("proxy", &self.proxy.as_ref().map(|_| "***"))
            .finish()
    }
}

impl UpstreamConfig {
    /// Base URLs from a comma-separated list (`WETOKEN_UPSTREAM_MP`'s
    /// form), without blanks or trailing slashes.
    pub fn list(urls: &str) -> Vec<String> {
        urls.split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            mp: vec!["https://api.weixin.qq.com".into()],
            work: vec!["https://qyapi.weixin.qq.com".into()],
            timeout: Duration::from_secs(10),
            proxy: None,
        }
    }
}

/// WeChat's credential and diagnostics APIs, answers parsed into types,
/// over the one [`Transport`].
#[derive(Debug, Clone)]
pub struct Upstream {
    t: Transport,
}

/// reqwest is built without a default rustls provider (no aws-lc-rs, no
/// OpenSSL); install ring once per process.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[derive(Serialize)]
struct StableTokenBody<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

impl Upstream {
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamError> {
        Ok(Upstream {
            t: Transport::new(cfg)?,
        })
    }

    /// An upstream whose memory of failed domains runs on `clock`.
    pub fn with_clock(
        cfg: UpstreamConfig,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Result<Self, UpstreamError> {
        Ok(Upstream {
            t: Transport::with_clock(cfg, clock)?,
        })
    }

    /// The transport, for calls relayed on a caller's behalf.
    pub fn transport(&self) -> &Transport {
        &self.t
    }

    pub fn config(&self) -> &UpstreamConfig {
        self.t.config()
    }

    /// An `mp` account's access token, from `stable_token` or the classic
    /// `/cgi-bin/token`. `force` applies to stable_token only (classic always
    /// issues a new token).
    pub async fn mp_access_token(
        &self,
        api: TokenApi,
        appid: &str,
        secret: &str,
        force: bool,
    ) -> Result<Fetched, UpstreamError> {
        let endpoint = match api {
            TokenApi::Stable => "stable_token",
            TokenApi::Classic => "token",
        };
        let v = self
            .send(endpoint, Api::Mp, |c, base| {
                let url = format!("{base}/cgi-bin/{endpoint}");
                match api {
                    TokenApi::Stable => c.post(url).json(&StableTokenBody {
                        grant_type: "client_credential",
                        appid,
                        secret,
                        force_refresh: force,
                    }),
                    TokenApi::Classic => c.get(url).query(&[
                        ("grant_type", "client_credential"),
                        ("appid", appid),
                        ("secret", secret),
                    ]),
                }
            })
            .await?;
        fetched(&v, "access_token")
    }

    /// A JS-SDK ticket with an access token.
    pub async fn ticket(&self, access_token: &str, ty: TicketType) -> Result<Fetched, UpstreamError> {
        let (endpoint, api, path, kind) = match ty {
            TicketType::MpJsapi => ("getticket", Api::Mp, "ticket/getticket", Some("jsapi")),
            TicketType::MpWxCard => ("getticket", Api::Mp, "ticket/getticket", Some("wx_card")),
            TicketType::WorkJsapi => ("get_jsapi_ticket", Api::Work, "get_jsapi_ticket", None),
            TicketType::WorkAgent => ("ticket/get", Api::Work, "ticket/get", Some("agent_config")),
        };
        let v = self
            .send(endpoint, api, |c, base| {
                let req = c
                    .get(format!("{base}/cgi-bin/{path}"))
                    .query(&[("access_token", access_token)]);
                match kind {
                    Some(kind) => req.query(&[("type", kind)]),
                    None => req,
                }
            })
            .await?;
        fetched(&v, "ticket")
    }

    /// `POST /cgi-bin/component/api_component_token` (Open Platform).
    pub async fn component_token(
        &self,
        component_appid: &str,
        secret: &str,
        verify_ticket: &str,
    ) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({
            "component_appid": component_appid,
            "component_appsecret": secret,
            "component_verify_ticket": verify_ticket,
        });
        let v = self
            .send("api_component_token", Api::Mp, |c, base| {
                c.post(format!("{base}/cgi-bin/component/api_component_token"))
                    .json(&body)
            })
            .await?;
        fetched(&v, "component_access_token")
    }

    /// A component API call: `POST {path}?component_access_token=…` with a JSON body.
    async fn component_call(
        &self,
        endpoint: &'static str,
        component_token: &str,
        body: serde_json::Value,
    ) -> Result<Value, UpstreamError> {
        self.send(endpoint, Api::Mp, |c, base| {
            c.post(format!("{base}/cgi-bin/component/{endpoint}"))
                .query(&[("component_access_token", component_token)])
                .json(&body)
        })
        .await
    }

    /// `api_create_preauthcode`: a single-use pre_auth_code.
    pub async fn pre_auth_code(&self, component_token: &str, component_appid: &str) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({ "component_appid": component_appid });
        let v = self
            .component_call("api_create_preauthcode", component_token, body)
            .await?;
        fetched(&v, "pre_auth_code")
    }

    /// `api_query_auth`: exchanges an authorization code.
    pub async fn query_auth(
        &self,
        component_token: &str,
        component_appid: &str,
        authorization_code: &str,
    ) -> Result<Authorization, UpstreamError> {
        let body = serde_json::json!({ "component_appid": component_appid, "authorization_code": authorization_code });
        let v = self.component_call("api_query_auth", component_token, body).await?;
        let info = &v["authorization_info"];
        let appid = info["authorizer_appid"]
            .as_str()
            .ok_or_else(|| UpstreamError::Malformed("no authorization_info in the answer".into()))?;
        Ok(Authorization {
            authorizer_appid: appid.to_owned(),
            refresh_token: info["authorizer_refresh_token"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            func_info: grants::FuncInfo::of(info.get("func_info")),
            token: fetched(info, "authorizer_access_token").ok(),
        })
    }

    /// `api_authorizer_token`: an authorizer's access token from its refresh
    /// token, and the refresh token WeChat returns with it if it changed.
    pub async fn authorizer_token(
        &self,
        component_token: &str,
        component_appid: &str,
        authorizer_appid: &str,
        refresh_token: &str,
    ) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({
            "component_appid": component_appid,
            "authorizer_appid": authorizer_appid,
            "authorizer_refresh_token": refresh_token,
        });
        let v = self
            .component_call("api_authorizer_token", component_token, body)
            .await?;
        let mut f = fetched(&v, "authorizer_access_token")?;
        f.rotated_refresh_token = v
            .get("authorizer_refresh_token")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != refresh_token)
            .map(str::to_owned);
        Ok(f)
    }

    /// `GET /cgi-bin/gettoken` (WeCom): the token of one app (one secret).
    pub async fn work_token(&self, corpid: &str, secret: &str) -> Result<Fetched, UpstreamError> {
        let v = self
            .send("gettoken", Api::Work, |c, base| {
                c.get(format!("{base}/cgi-bin/gettoken"))
                    .query(&[("corpid", corpid), ("corpsecret", secret)])
            })
            .await?;
        fetched(&v, "access_token")
    }

    /// A WeCom service-provider API: `POST /cgi-bin/service/{endpoint}` with a
    /// JSON body, authenticated by `suite_access_token` when given.
    async fn service_call(
        &self,
        endpoint: &'static str,
        suite_token: Option<&str>,
        body: serde_json::Value,
    ) -> Result<Value, UpstreamError> {
        self.send(endpoint, Api::Work, |c, base| {
            let req = c.post(format!("{base}/cgi-bin/service/{endpoint}")).json(&body);
            match suite_token {
                Some(t) => req.query(&[("suite_access_token", t)]),
                None => req,
            }
        })
        .await
    }

    /// `get_provider_token`.
    pub async fn provider_token(&self, corpid: &str, secret: &str) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({ "corpid": corpid, "provider_secret": secret });
        let v = self.service_call("get_provider_token", None, body).await?;
        fetched(&v, "provider_access_token")
    }

    /// `get_suite_token` with the latest suite_ticket.
    pub async fn suite_token(&self, suite_id: &str, secret: &str, ticket: &str) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({ "suite_id": suite_id, "suite_secret": secret, "suite_ticket": ticket });
        let v = self.service_call("get_suite_token", None, body).await?;
        fetched(&v, "suite_access_token")
    }

    /// `get_permanent_code`: exchanges an install's temporary auth code.
    pub async fn permanent_code(&self, suite_token: &str, auth_code: &str) -> Result<Install, UpstreamError> {
        let body = serde_json::json!({ "auth_code": auth_code });
        let v = self.service_call("get_permanent_code", Some(suite_token), body).await?;
        let install = Install::parse(&v)?;
        if install.permanent_code.is_none() {
            return Err(UpstreamError::Malformed("no permanent_code in the answer".into()));
        }
        Ok(install)
    }

    /// `get_auth_info`: a corp's current authorization.
    pub async fn auth_info(
        &self,
        suite_token: &str,
        auth_corpid: &str,
        permanent_code: &str,
    ) -> Result<Install, UpstreamError> {
        let body = serde_json::json!({ "auth_corpid": auth_corpid, "permanent_code": permanent_code });
        let v = self.service_call("get_auth_info", Some(suite_token), body).await?;
        Install::parse(&v)
    }

    /// `get_corp_token`: an installed corp's token.
    pub async fn corp_token(
        &self,
        suite_token: &str,
        auth_corpid: &str,
        permanent_code: &str,
    ) -> Result<Fetched, UpstreamError> {
        let body = serde_json::json!({ "auth_corpid": auth_corpid, "permanent_code": permanent_code });
        let v = self.service_call("get_corp_token", Some(suite_token), body).await?;
        fetched(&v, "access_token")
    }

    /// `POST /cgi-bin/openapi/quota/get`: an account's daily quota of one API.
    pub async fn quota(&self, access_token: &str, cgi_path: &str) -> Result<Quota, UpstreamError> {
        let v = self
            .openapi(
                "openapi/quota/get",
                access_token,
                serde_json::json!({ "cgi_path": cgi_path }),
            )
            .await?;
        Quota::parse(&v)
    }

    /// `POST /cgi-bin/openapi/rid/get`: the failed request a rid names.
    pub async fn rid(&self, access_token: &str, rid: &str) -> Result<RidRequest, UpstreamError> {
        let v = self
            .openapi("openapi/rid/get", access_token, serde_json::json!({ "rid": rid }))
            .await?;
        RidRequest::parse(&v)
    }

    /// `POST /cgi-bin/clear_quota`: resets an account's daily counts with its
    /// own token (10 a month).
    pub async fn clear_quota(&self, access_token: &str, appid: &str) -> Result<(), UpstreamError> {
        self.openapi("clear_quota", access_token, serde_json::json!({ "appid": appid }))
            .await
            .map(drop)
    }

    /// `POST /cgi-bin/component/clear_quota/v2`: resets an authorizer's daily
    /// counts with the component's secret (works even when its token
    /// cannot be had).
    pub async fn component_clear_quota(
        &self,
        component_appid: &str,
        component_secret: &str,
        appid: &str,
    ) -> Result<(), UpstreamError> {
        let body =
            serde_json::json!({ "component_appid": component_appid, "appsecret": component_secret, "appid": appid });
        self.send("component/clear_quota/v2", Api::Mp, |c, base| {
            c.post(format!("{base}/cgi-bin/component/clear_quota/v2")).json(&body)
        })
        .await
        .map(drop)
    }

    /// `POST /cgi-bin/message/custom/send`: a customer-service message
    /// (the release test's `_from_api` answer).
    pub async fn custom_send(&self, access_token: &str, body: Value) -> Result<(), UpstreamError> {
        self.openapi("message/custom/send", access_token, body).await.map(drop)
    }

    /// A `/cgi-bin/{path}?access_token=` JSON call.
    async fn openapi(&self, path: &'static str, access_token: &str, body: Value) -> Result<Value, UpstreamError> {
        self.send(path, Api::Mp, |c, base| {
            c.post(format!("{base}/cgi-bin/{path}"))
                .query(&[("access_token", access_token)])
                .json(&body)
        })
        .await
    }

    /// Sends a request, applies the success rule and counts the call by
    /// endpoint, result and errcode.
    /// Asks WeChat whether an access token of an account of `kind` is still
    /// accepted, with a call that costs no business quota and changes
    /// nothing (SPEC §2 "verified"): `GET /cgi-bin/get_api_domain_ip`,
    /// which takes an account's, an authorizer's or a component's token
    /// (WeChat) and a corp app's (WeCom). None for a suite's or a
    /// provider's token: WeCom names no such call for them (its staff: the
    /// IP list refuses service-provider tokens), and their token APIs answer
    /// the same token again while it lives, so a re-fetch rotates nothing.
    pub async fn probe(&self, kind: AccountKind, token: &str) -> Option<Result<(), UpstreamError>> {
        if matches!(kind, AccountKind::Suite | AccountKind::Provider) {
            return None;
        }
        let answer = self
            .send("get_api_domain_ip", Api::of(kind), |c, base| {
                c.get(format!("{base}/cgi-bin/get_api_domain_ip"))
                    .query(&[("access_token", token)])
            })
            .await;
        Some(answer.map(drop))
    }

    /// One call of `endpoint` to `api`, the request built by `build` for
    /// the domain it goes to (again for the next domain on failover).
    async fn send(
        &self,
        endpoint: &'static str,
        api: Api,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Value, UpstreamError> {
        let result = self
            .t
            .failover(
                api,
                false,
                |a: Attempt| self.send_inner(build(self.t.client(), &a.base).timeout(a.remaining)),
                switches,
                |_| Err(UpstreamError::Timeout(self.t.config().timeout)),
            )
            .await;
        let (outcome, errcode) = match &result {
            Ok(_) => ("ok", "0".to_string()),
            Err(e) => ("error", e.errcode().to_string()),
        };
        metrics::counter!("wetoken_upstream_calls_total", "endpoint" => endpoint, "result" => outcome, "errcode" => errcode)
            .increment(1);
        result
    }

    async fn send_inner(&self, req: reqwest::RequestBuilder) -> Result<Value, UpstreamError> {
        let resp = req.send().await.map_err(|e| self.t.error(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.t.error(e))?;
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Malformed(format!("not JSON: {e}")))?;
        check_errcode(v)
    }
}
