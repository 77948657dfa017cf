//! WeChat's answers, parsed into types at the edge: the one success rule
//! ([`check_errcode`]) and the shapes wetoken reads.

use serde_json::Value;

use super::UpstreamError;
use super::grants::{CorpAuthorization, FuncInfo};
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
    /// WeChat's `func_info`.
    pub func_info: Option<FuncInfo>,
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
    /// `auth_corp_info` and `auth_info`.
    pub authorization: CorpAuthorization,
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
        let authorization: CorpAuthorization = serde_json::from_value(serde_json::json!({
            "auth_corp_info": v["auth_corp_info"],
            "auth_info": v["auth_info"],
        }))
        .map_err(|e| UpstreamError::Malformed(format!("auth_corp_info / auth_info: {e}")))?;
        Ok(Install {
            corpid: authorization.auth_corp_info.corpid.clone(),
            permanent_code: v["permanent_code"]
                .as_str()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            agentid: authorization.first_agentid(),
            authorization,
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
    /// WeChat's record, with every credential in it redacted (SPEC §3):
    /// token and secret parameters of `request_url`, and credential fields
    /// of `request_body` and `response_body` (JSON, or a form), become
    /// `***`; a body that is neither is withheld whole.
    pub fn parse(v: &Value) -> Result<Self, UpstreamError> {
        let mut record = v["request"]
            .as_object()
            .cloned()
            .ok_or_else(|| UpstreamError::Malformed("no request in the answer".into()))?;
        if let Some(Value::String(url)) = record.get_mut("request_url") {
            *url = redact_credentials_in_url(url);
        }
        for field in ["request_body", "response_body"] {
            if let Some(Value::String(body)) = record.get_mut(field) {
                *body = redact_body(body);
            }
        }
        Ok(RidRequest(record))
    }
}

/// Names of parameters and fields that carry a credential, by what they
/// end with or are (compared in lower case).
fn is_credential_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("token")
        || n.ends_with("secret")
        || n.ends_with("ticket")
        || n.ends_with("_code")
        || n.ends_with("session_key")
        || matches!(
            n.as_str(),
            "appsecret" | "code" | "sign" | "signature" | "key" | "password"
        )
}

/// `a=1&access_token=T` → `a=1&access_token=***`, for every credential.
fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_credential_name(&crate::urlenc::percent_decode(name)) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_credentials_in_url(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{path}?{}", redact_query(query)),
        None => url.to_owned(),
    }
}

fn redact_json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if is_credential_name(k) && !v.is_object() && !v.is_array() {
                    *v = Value::from("***");
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn redact_body(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return String::new();
    }
    if let Ok(mut v) = serde_json::from_str::<Value>(trimmed) {
        redact_json(&mut v);
        return v.to_string();
    }
    let form_like = trimmed.contains('=')
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=&%+-_.~*".contains(&b));
    if form_like { redact_query(trimmed) } else { "***".into() }
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

    #[test]
    fn rid_records_come_back_with_every_credential_redacted() {
        let v = serde_json::json!({"request": {
            "invoke_time": 1,
            "request_url": "/cgi-bin/message/custom/send?access_token=TOKEN&x=1&ACCESS_TOKEN=T2&component_access_token=C",
            "request_body": "{\"grant_type\":\"client_credential\",\"appid\":\"wx1\",\"secret\":\"APPSECRET\",\"nested\":{\"authorizer_refresh_token\":\"R\",\"component_appsecret\":\"S\"}}",
            "response_body": "{\"access_token\":\"NEW\",\"expires_in\":7200}",
            "client_ip": "1.2.3.4"
        }});
        let r = RidRequest::parse(&v).unwrap().0;
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["=TOKEN", "=T2", "=C", "APPSECRET", "\\\"R\\\"", "\\\"S\\\"", "NEW"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            r["request_url"],
            "/cgi-bin/message/custom/send?access_token=***&x=1&ACCESS_TOKEN=***&component_access_token=***"
        );
        assert!(
            text.contains("wx1") && text.contains("1.2.3.4"),
            "the rest is kept: {text}"
        );
        let form = serde_json::json!({"request": {"request_body": "appid=wx1&appsecret=S3&a=b"}});
        assert_eq!(
            RidRequest::parse(&form).unwrap().0["request_body"],
            "appid=wx1&appsecret=***&a=b"
        );
        let xml = serde_json::json!({"request": {"request_body": "<xml><Secret>x</Secret></xml>"}});
        assert_eq!(RidRequest::parse(&xml).unwrap().0["request_body"], "***");
    }

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
