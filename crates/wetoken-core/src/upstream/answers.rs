//! WeChat's answers, parsed into types at the edge: the one success rule
//! ([`check_errcode`]) and the shapes wetoken reads.

use serde_json::Value;

use super::UpstreamError;
use crate::domain::{AccountKind, Credential};

/// The longest life wetoken takes from an answer (WeChat's are two hours;
/// a pushed ticket's twelve): anything longer is malformed, and no
/// arithmetic on it can overflow.
pub const MAX_EXPIRES_IN: i64 = 31 * 86_400;

/// A credential as WeChat returned it. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Fetched {
    pub value: String,
    /// WeChat's own remaining life, in seconds.
    pub expires_in: i64,
    /// A new authorizer_refresh_token WeChat returned with the value.
    pub rotated_refresh_token: Option<String>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("value", &"***")
            .field("expires_in", &self.expires_in)
            .field(
                "rotated_refresh_token",
                &self.rotated_refresh_token.as_ref().map(|_| "***"),
            )
            .finish()
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
#[derive(Clone)]
pub struct Authorization {
    pub authorizer_appid: String,
    pub refresh_token: Option<String>,
    /// WeChat's `func_info`, kept as WeChat gave it.
    pub func_info: Option<Value>,
    /// The access token that came with it.
    pub token: Option<Fetched>,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("authorizer_appid", &self.authorizer_appid)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What WeCom says of a corp's install (`get_permanent_code`,
/// `get_auth_info`).
#[derive(Clone)]
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

impl std::fmt::Debug for Install {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Install")
            .field("corpid", &self.corpid)
            .field("permanent_code", &self.permanent_code.as_ref().map(|_| "***"))
            .field("agentid", &self.agentid)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Install {
    pub(super) fn parse(v: &Value) -> Result<Self, UpstreamError> {
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

/// An account's daily quota of one API (`openapi/quota/get`), with the
/// rate limits WeChat adds for some APIs, as it gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub daily_limit: i64,
    pub used: i64,
    pub remain: i64,
    pub rate_limit: Option<Value>,
    pub component_rate_limit: Option<Value>,
}

impl Quota {
    pub fn parse(v: &Value) -> Result<Self, UpstreamError> {
        let q = &v["quota"];
        let n = |k: &str| {
            q[k].as_i64()
                .ok_or_else(|| UpstreamError::Malformed(format!("quota.{k} is not a number")))
        };
        Ok(Quota {
            daily_limit: n("daily_limit")?,
            used: n("used")?,
            remain: n("remain")?,
            rate_limit: v.get("rate_limit").filter(|r| r.is_object()).cloned(),
            component_rate_limit: v.get("component_rate_limit").filter(|r| r.is_object()).cloned(),
        })
    }
}

/// The request a rid names (`openapi/rid/get`), as WeChat recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RidRequest(pub serde_json::Map<String, Value>);

impl RidRequest {
    pub fn parse(v: &Value) -> Result<Self, UpstreamError> {
        v["request"]
            .as_object()
            .cloned()
            .map(RidRequest)
            .ok_or_else(|| UpstreamError::Malformed("no request in the answer".into()))
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
        .filter(|e| (1..=MAX_EXPIRES_IN).contains(e))
        .ok_or_else(|| UpstreamError::Malformed("no expires_in (1 s to 31 days) in the answer".into()))?;
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
        // A life no credential has: malformed (and no overflow downstream).
        for e in [json!(i64::MAX), json!(0), json!(-5), json!(MAX_EXPIRES_IN + 1)] {
            assert!(
                fetched(&json!({"access_token":"a","expires_in":e}), "access_token").is_err(),
                "{e}"
            );
        }
        let f = fetched(&json!({"access_token":"tok-secret","expires_in":7200}), "access_token").unwrap();
        assert!(!format!("{f:?}").contains("tok-secret"), "Debug hides the value");
        assert!(fetched(&json!({"access_token":"a"}), "access_token").is_err());
        assert!(fetched(&json!({"access_token":"","expires_in":1}), "access_token").is_err());
    }
}
