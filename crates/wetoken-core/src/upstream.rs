//! The client for WeChat's and WeCom's token endpoints.
//!
//! WeChat reports errors in the body with HTTP 200. The one rule for every
//! endpoint: success ⇔ `errcode` absent or 0; anything else is
//! [`UpstreamError::WeChat`] carrying errcode and errmsg. Never match on
//! errmsg (it carries a per-request `rid`). Every call has a timeout.
//! See ../shared/reference/wechat-upstream-contract.md.

use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::domain::{AccountKind, Credential, TokenApi};

/// The errcodes by which WeChat and WeCom say the token a call carried is
/// not (or no longer) valid: rotated, expired, malformed. The one list:
/// every call made with a token (a ticket fetch, the proxy) answers them
/// with one compare-and-refresh and one retry.
pub const TOKEN_REJECTED: &[i64] = &[40001, 40014, 40082, 42001, 42009];

/// Whether `errcode` says the token used was rejected ([`TOKEN_REJECTED`]).
pub fn rejects_token(errcode: i64) -> bool {
    TOKEN_REJECTED.contains(&errcode)
}

/// A credential as WeChat returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub value: String,
    /// WeChat's own remaining life, in seconds.
    pub expires_in: i64,
    /// A new authorizer_refresh_token WeChat returned with the value.
    pub rotated_refresh_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("WeChat did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach WeChat: {0}")]
    Transport(String),
    #[error("WeChat answered HTTP {0}")]
    Status(u16),
    #[error("WeChat answered something unreadable: {0}")]
    Malformed(String),
}

impl UpstreamError {
    /// Transient: network, timeout, HTTP 5xx, errcode -1 (system busy) and
    /// the minute/concurrency limits. Worth retrying with backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::WeChat { errcode, .. } => matches!(errcode, -1 | 45011 | 45033),
            UpstreamError::Timeout(_) | UpstreamError::Transport(_) => true,
            UpstreamError::Status(s) => *s >= 500 || *s == 429,
            UpstreamError::Malformed(_) => true,
        }
    }

    /// The token used was rejected (rotated, expired, malformed): refresh it
    /// by compare-and-refresh and try once more.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, UpstreamError::WeChat { errcode, .. } if rejects_token(*errcode))
    }

    /// The daily quota is spent (45009).
    pub fn is_quota(&self) -> bool {
        matches!(self, UpstreamError::WeChat { errcode: 45009, .. })
    }

    /// The errcode to record; transport failures use -1 like WeChat's own
    /// "system busy".
    pub fn errcode(&self) -> i64 {
        match self {
            UpstreamError::WeChat { errcode, .. } => *errcode,
            _ => -1,
        }
    }

    pub fn errmsg(&self) -> String {
        match self {
            UpstreamError::WeChat { errmsg, .. } => errmsg.clone(),
            other => other.to_string(),
        }
    }
}

/// Which ticket endpoint a ticket comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketType {
    /// `GET /cgi-bin/ticket/getticket?type=jsapi` (Official Accounts, authorizers).
    MpJsapi,
    /// `GET /cgi-bin/ticket/getticket?type=wx_card`.
    MpWxCard,
    /// `GET /cgi-bin/get_jsapi_ticket` (WeCom, the corp's, for `wx.config`).
    WorkJsapi,
    /// `GET /cgi-bin/ticket/get?type=agent_config` (WeCom, the app's, for `wx.agentConfig`).
    WorkAgent,
}

impl TicketType {
    /// The ticket endpoint for a credential of an account of `kind`.
    pub fn of(kind: AccountKind, cred: Credential) -> Self {
        match (kind, cred) {
            (AccountKind::Work | AccountKind::Corp, Credential::AgentTicket) => TicketType::WorkAgent,
            (AccountKind::Work | AccountKind::Corp, _) => TicketType::WorkJsapi,
            (_, Credential::WxCardTicket) => TicketType::MpWxCard,
            _ => TicketType::MpJsapi,
        }
    }
}

/// `api_query_auth`'s `authorization_info`: an authorization just made.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub authorizer_appid: String,
    pub refresh_token: Option<String>,
    /// WeChat's `func_info`, kept as WeChat gave it.
    pub func_info: Option<Value>,
    /// The access token that came with it.
    pub token: Option<Fetched>,
}

/// What WeCom says of a corp's install (`get_permanent_code`,
/// `get_auth_info`).
#[derive(Debug, Clone)]
pub struct Install {
    pub corpid: String,
    /// `get_permanent_code` only.
    pub permanent_code: Option<String>,
    /// The first agent of the install, when WeCom names one.
    pub agentid: Option<String>,
    /// `auth_corp_info` and `auth_info`, kept as WeCom gave them.
    pub auth_corp_info: Value,
    pub auth_info: Value,
    /// The corp token that came with a permanent code.
    pub token: Option<Fetched>,
}

impl Install {
    fn parse(v: &Value) -> Result<Self, UpstreamError> {
        let corpid = v["auth_corp_info"]["corpid"]
            .as_str()
            .ok_or_else(|| UpstreamError::Malformed("no auth_corp_info.corpid in the answer".into()))?;
        let agent = &v["auth_info"]["agent"][0]["agentid"];
        Ok(Install {
            corpid: corpid.to_owned(),
            permanent_code: v["permanent_code"]
                .as_str()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            agentid: agent
                .as_u64()
                .map(|n| n.to_string())
                .or_else(|| agent.as_str().map(str::to_owned)),
            auth_corp_info: v["auth_corp_info"].clone(),
            auth_info: v["auth_info"].clone(),
            token: fetched(v, "access_token").ok(),
        })
    }
}

/// Where the two WeChat APIs live (SPEC §7 `WETOKEN_UPSTREAM_MP`/`_WORK`).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub mp_base: String,
    pub work_base: String,
    pub timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            mp_base: "https://api.weixin.qq.com".into(),
            work_base: "https://qyapi.weixin.qq.com".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    cfg: UpstreamConfig,
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
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(concat!("wetoken/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Transport(e.to_string()))?;
        Ok(Upstream { http, cfg })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
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
        let url = format!(
            "{}/cgi-bin/{}",
            self.cfg.mp_base,
            match api {
                TokenApi::Stable => "stable_token",
                TokenApi::Classic => "token",
            }
        );
        let req = match api {
            TokenApi::Stable => self.http.post(url).json(&StableTokenBody {
                grant_type: "client_credential",
                appid,
                secret,
                force_refresh: force,
            }),
            TokenApi::Classic => self.http.get(url).query(&[
                ("grant_type", "client_credential"),
                ("appid", appid),
                ("secret", secret),
            ]),
        };
        let endpoint = match api {
            TokenApi::Stable => "stable_token",
            TokenApi::Classic => "token",
        };
        let v = self.send(endpoint, req).await?;
        fetched(&v, "access_token")
    }

    /// A JS-SDK ticket with an access token.
    pub async fn ticket(&self, access_token: &str, ty: TicketType) -> Result<Fetched, UpstreamError> {
        let (endpoint, base, path, kind) = match ty {
            TicketType::MpJsapi => ("getticket", &self.cfg.mp_base, "ticket/getticket", Some("jsapi")),
            TicketType::MpWxCard => ("getticket", &self.cfg.mp_base, "ticket/getticket", Some("wx_card")),
            TicketType::WorkJsapi => ("get_jsapi_ticket", &self.cfg.work_base, "get_jsapi_ticket", None),
            TicketType::WorkAgent => ("ticket/get", &self.cfg.work_base, "ticket/get", Some("agent_config")),
        };
        let mut req = self
            .http
            .get(format!("{base}/cgi-bin/{path}"))
            .query(&[("access_token", access_token)]);
        if let Some(kind) = kind {
            req = req.query(&[("type", kind)]);
        }
        let v = self.send(endpoint, req).await?;
        fetched(&v, "ticket")
    }

    /// `POST /cgi-bin/component/api_component_token` (Open Platform).
    pub async fn component_token(
        &self,
        component_appid: &str,
        secret: &str,
        verify_ticket: &str,
    ) -> Result<Fetched, UpstreamError> {
        let url = format!("{}/cgi-bin/component/api_component_token", self.cfg.mp_base);
        let body = serde_json::json!({
            "component_appid": component_appid,
            "component_appsecret": secret,
            "component_verify_ticket": verify_ticket,
        });
        let v = self
            .send("api_component_token", self.http.post(url).json(&body))
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
        let url = format!("{}/cgi-bin/component/{endpoint}", self.cfg.mp_base);
        let req = self
            .http
            .post(url)
            .query(&[("component_access_token", component_token)])
            .json(&body);
        self.send(endpoint, req).await
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
            func_info: info.get("func_info").cloned(),
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
        let url = format!("{}/cgi-bin/gettoken", self.cfg.work_base);
        let req = self.http.get(url).query(&[("corpid", corpid), ("corpsecret", secret)]);
        let v = self.send("gettoken", req).await?;
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
        let url = format!("{}/cgi-bin/service/{endpoint}", self.cfg.work_base);
        let mut req = self.http.post(url).json(&body);
        if let Some(t) = suite_token {
            req = req.query(&[("suite_access_token", t)]);
        }
        self.send(endpoint, req).await
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

    /// Sends a request, applies the success rule and counts the call by
    /// endpoint, result and errcode.
    async fn send(&self, endpoint: &'static str, req: reqwest::RequestBuilder) -> Result<Value, UpstreamError> {
        let result = self.send_inner(req).await;
        let (outcome, errcode) = match &result {
            Ok(_) => ("ok", "0".to_string()),
            Err(e) => ("error", e.errcode().to_string()),
        };
        metrics::counter!("wetoken_upstream_calls_total", "endpoint" => endpoint, "result" => outcome, "errcode" => errcode)
            .increment(1);
        result
    }

    async fn send_inner(&self, req: reqwest::RequestBuilder) -> Result<Value, UpstreamError> {
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Malformed(format!("not JSON: {e}")))?;
        check_errcode(v)
    }

    fn transport(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.cfg.timeout)
        } else {
            // The URL carries secrets in the classic API's query: never echo it.
            UpstreamError::Transport(e.without_url().to_string())
        }
    }
}

/// success ⇔ errcode absent or 0.
pub fn check_errcode(v: Value) -> Result<Value, UpstreamError> {
    match v.get("errcode").and_then(Value::as_i64) {
        None | Some(0) => Ok(v),
        Some(errcode) => Err(UpstreamError::WeChat {
            errcode,
            errmsg: v.get("errmsg").and_then(Value::as_str).unwrap_or_default().to_owned(),
        }),
    }
}

/// Reads `{field, expires_in}` from a successful answer.
pub fn fetched(v: &Value, field: &str) -> Result<Fetched, UpstreamError> {
    let value = v
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UpstreamError::Malformed(format!("no {field} in the answer")))?;
    let expires_in = v
        .get("expires_in")
        .and_then(|e| e.as_i64().or_else(|| e.as_str()?.parse().ok()))
        .filter(|e| *e > 0)
        .ok_or_else(|| UpstreamError::Malformed("no expires_in in the answer".into()))?;
    Ok(Fetched {
        value: value.to_owned(),
        expires_in,
        rotated_refresh_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_rule() {
        assert!(check_errcode(json!({"access_token":"a","expires_in":7200})).is_ok());
        assert!(check_errcode(json!({"errcode":0,"errmsg":"ok","ticket":"t"})).is_ok());
        let e = check_errcode(json!({"errcode":40125,"errmsg":"invalid appsecret, rid: x"})).unwrap_err();
        assert_eq!(e.errcode(), 40125);
        assert!(!e.is_retryable());
        let busy = check_errcode(json!({"errcode":-1,"errmsg":"system error"})).unwrap_err();
        assert!(busy.is_retryable());
        assert!(UpstreamError::Status(502).is_retryable());
        assert!(!UpstreamError::Status(404).is_retryable());
    }

    #[test]
    fn fetched_reads_value_and_expiry() {
        let f = fetched(&json!({"access_token":"abc","expires_in":7200}), "access_token").unwrap();
        assert_eq!(
            (f.value.as_str(), f.expires_in, f.rotated_refresh_token),
            ("abc", 7200, None)
        );
        assert!(fetched(&json!({"expires_in":7200}), "access_token").is_err());
        assert!(fetched(&json!({"access_token":"a"}), "access_token").is_err());
        assert!(fetched(&json!({"access_token":"","expires_in":1}), "access_token").is_err());
    }
}
