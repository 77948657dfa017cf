//! The JSON shapes of SPEC §3, rendered from the service's typed values.
//! The CLI prints the same shapes (`wetoken account show`, `token get
//! --json`), so they live here once.

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;
use wetoken_core::clock::from_millis;
use wetoken_core::domain::Credential;
use wetoken_core::events::Webhook;
use wetoken_core::service::{AccountView, AuthorizerEntry, CorpEntry, Issued, KeyView};
use wetoken_core::upstream::grants::FuncInfo;

/// RFC 3339 UTC, whole seconds: `2026-11-21T10:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    String::from_utf8_lossy(&rfc3339_bytes(t)).into_owned()
}

/// The JSON field a credential is served under.
pub fn field(cred: Credential) -> &'static str {
    match cred {
        Credential::AccessToken => "access_token",
        _ => "ticket",
    }
}

/// `{"access_token"|"ticket": …, "expires_in": …, "expires_at": …}`,
/// written straight into one buffer sized up front (the hot path: no
/// intermediate map, no serializer state, no date built for `now`).
pub struct CredentialBody {
    cred: Credential,
    issued: Issued,
    now_ms: i64,
}

impl CredentialBody {
    /// The body's text, as serde_json would write the same object.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = self.issued.value.as_str();
        let mut out = Vec::with_capacity(value.len() + 80);
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(field(self.cred).as_bytes());
        out.extend_from_slice(b"\":");
        json_string(&mut out, value);
        out.extend_from_slice(b",\"expires_in\":");
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(self.issued.expires_in_ms(self.now_ms))
                .as_bytes(),
        );
        out.extend_from_slice(b",\"expires_at\":\"");
        out.extend_from_slice(&rfc3339_bytes(self.issued.expires_at));
        if let Some(at) = self.issued.verified_at {
            out.extend_from_slice(b"\",\"verified_at\":\"");
            out.extend_from_slice(&rfc3339_bytes(at));
        }
        out.extend_from_slice(b"\"}");
        out
    }
}

/// `s` as a JSON string: copied as is when nothing in it needs escaping
/// (a credential value never does), else escaped by serde_json.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Folded without stopping early, so that the compiler checks many
    // bytes at a time.
    let plain = !s
        .bytes()
        .fold(false, |bad, b| bad | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

impl IntoResponse for CredentialBody {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.to_bytes()));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (years 0–9999, as WeChat's instants are).
fn rfc3339_bytes(t: DateTime<Utc>) -> [u8; 20] {
    let (y, mo, d) = (t.year().clamp(0, 9999) as u32, t.month(), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second().min(59));
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, mo, 2);
    put(8, d, 2);
    put(11, h, 2);
    put(14, mi, 2);
    put(17, s, 2);
    out
}

/// A credential's body at `now_ms` (the service clock's epoch milliseconds).
pub fn credential(cred: Credential, issued: Issued, now_ms: i64) -> CredentialBody {
    CredentialBody { cred, issued, now_ms }
}

/// An account: id, kind, identifiers, settings and credential state.
#[derive(Debug, Serialize)]
pub struct AccountBody {
    pub id: String,
    pub kind: &'static str,
    /// The identifiers its kind has (`appid`, `corpid`, `agentid`,
    /// `suite_id`, `component_appid`).
    #[serde(flatten)]
    pub ids: Fields<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_api: Option<&'static str>,
    /// A corp's agent id (a work app's is among its identifiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agentid: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_clears: Option<QuotaClearsBody>,
    pub created_at: String,
    pub updated_at: String,
    pub credentials: Fields<CredentialStateBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_security: Option<serde_json::Value>,
}

/// Quota clears used in WeChat's month (`YYYY-MM`, +08:00).
#[derive(Debug, Serialize)]
pub struct QuotaClearsBody {
    pub month: String,
    pub used: u32,
}

/// A credential's state, never its value.
#[derive(Debug, Serialize)]
pub struct CredentialStateBody {
    pub expires_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub last_error: Option<LastErrorBody>,
    pub blocked_until: Option<String>,
}

/// The last error WeChat (or the way to it) answered.
#[derive(Debug, Serialize)]
pub struct LastErrorBody {
    pub errcode: i64,
    pub errmsg: String,
    pub at: String,
}

pub fn account(a: &AccountView) -> AccountBody {
    let ids = Fields(a.id.fields().into_iter().map(|(k, v)| (k, v.to_string())).collect());
    AccountBody {
        id: a.id.to_string(),
        kind: a.id.kind().as_str(),
        ids,
        token_api: a.token_api.map(|api| api.as_str()),
        agentid: a.agentid.clone(),
        status: a.status.as_str(),
        quota_clears: a.quota_clears.as_ref().map(|c| QuotaClearsBody {
            month: c.month.clone(),
            used: c.used,
        }),
        api_security: a.api_security.as_ref().map(|k| {
            let certs: Vec<_> = k
                .certs
                .iter()
                .map(|c| {
                    serde_json::json!({"sn": c.sn,
                "not_before": rfc3339(from_millis(c.not_before)), "not_after": rfc3339(from_millis(c.not_after))})
                })
                .collect();
            serde_json::json!({"sym_sn": k.sym_sn, "private_sn": k.private_sn,
                "sign": if k.sign_all { "all" } else { "required" }, "platform_certs": certs})
        }),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
        credentials: Fields(
            a.credentials
                .iter()
                .map(|c| {
                    let state = CredentialStateBody {
                        expires_at: c.expires_at.map(rfc3339),
                        refreshed_at: c.refreshed_at.map(rfc3339),
                        last_error: c.last_error.as_ref().map(|e| LastErrorBody {
                            errcode: e.errcode,
                            errmsg: e.errmsg.clone(),
                            at: rfc3339(e.at),
                        }),
                        blocked_until: c.blocked_until.map(rfc3339),
                    };
                    (c.credential.as_str(), state)
                })
                .collect(),
        ),
    }
}

/// Named values written as a JSON object in their order (an account's
/// identifiers in its id's order, its credentials in its kind's order).
#[derive(Debug)]
pub struct Fields<V>(pub Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Fields<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// An authorizer of a component.
#[derive(Debug, Serialize)]
pub struct AuthorizerBody {
    pub appid: String,
    pub authorized_at: String,
    pub status: &'static str,
    /// WeChat's `func_info` (each permission set as WeChat describes it).
    pub func_info: Option<FuncInfo>,
}

pub fn authorizer(a: &AuthorizerEntry) -> AuthorizerBody {
    AuthorizerBody {
        appid: a.appid.to_string(),
        authorized_at: rfc3339(a.authorized_at),
        status: a.status.as_str(),
        func_info: a.func_info.clone(),
    }
}

/// A corp that installed a suite.
#[derive(Debug, Serialize)]
pub struct CorpBody {
    pub corpid: String,
    pub agentid: Option<String>,
    pub authorized_at: String,
    pub status: &'static str,
}

pub fn corp(c: &CorpEntry) -> CorpBody {
    CorpBody {
        corpid: c.corpid.to_string(),
        agentid: c.agentid.clone(),
        authorized_at: rfc3339(c.authorized_at),
        status: c.status.as_str(),
    }
}

/// A client key, never the key itself.
#[derive(Debug, Serialize)]
pub struct KeyBody {
    pub name: String,
    pub accounts: Vec<String>,
    pub tokens: bool,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

pub fn key(k: &KeyView) -> KeyBody {
    KeyBody {
        name: k.name.clone(),
        accounts: k.accounts.iter().map(ToString::to_string).collect(),
        tokens: k.tokens,
        created_at: rfc3339(k.created_at),
        paths: k
            .paths
            .as_ref()
            .map(|p| p.iter().map(|p| p.as_str().to_owned()).collect()),
    }
}

/// A client key as created: the key itself, shown this once.
#[derive(Debug, Serialize)]
pub struct NewKeyBody {
    pub name: String,
    pub key: String,
    pub accounts: Vec<String>,
    pub tokens: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// A webhook, never its secret (and its URL redacted by the service).
#[derive(Debug, Serialize)]
pub struct WebhookBody {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub accounts: Vec<String>,
    pub format: &'static str,
    /// Whether it answers pushed messages (SPEC §14).
    pub reply: bool,
    pub created_at: String,
    /// The signing secret: only in the answer that created the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

pub fn webhook(w: &Webhook) -> WebhookBody {
    WebhookBody {
        name: w.name.clone(),
        url: w.url.clone(),
        events: w.events.iter().map(|p| p.as_str().to_owned()).collect(),
        accounts: w.accounts.iter().map(ToString::to_string).collect(),
        format: w.format.as_str(),
        reply: w.reply,
        created_at: rfc3339(from_millis(w.created_at)),
        secret: None,
    }
}

/// One token-free call of the audit trail: never a token or a body.
#[derive(Debug, Serialize)]
pub struct AuditBody {
    pub id: String,
    pub at: String,
    pub key: String,
    pub account: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub errcode: Option<i64>,
    pub rid: Option<String>,
}

pub fn audit(e: &wetoken_core::store::AuditEntry) -> AuditBody {
    AuditBody {
        id: e.id.clone(),
        at: rfc3339(from_millis(e.at)),
        key: e.key.clone(),
        account: e.account.to_string(),
        method: e.method.clone(),
        path: e.path.clone(),
        status: e.status,
        errcode: e.errcode,
        rid: e.rid.clone(),
    }
}

/// A page of a list: its items under the list's name, and the cursor of
/// the next page (null on the last).
#[derive(Debug)]
pub struct PageBody<T> {
    pub name: &'static str,
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Serialize for PageBody<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(self.name, &self.items)?;
        m.serialize_entry("next_cursor", &self.next_cursor)?;
        m.end()
    }
}

/// A component's pre_auth_code.
#[derive(Debug, Serialize)]
pub struct PreAuthCodeBody {
    pub pre_auth_code: String,
    pub expires_in: i64,
}

/// A URL to open (an authorization page).
#[derive(Debug, Serialize)]
pub struct UrlBody {
    pub url: String,
}

/// A Mini Program login: the user's ids, and the session key for a key
/// that may see it.
#[derive(Debug, Serialize)]
pub struct LoginBody {
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
}

/// A user's web authorization: the user's token (not the account's).
#[derive(Debug, Serialize)]
pub struct UserTokenBody {
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub scope: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_snapshotuser: Option<i64>,
}

impl From<wetoken_core::upstream::UserToken> for UserTokenBody {
    fn from(t: wetoken_core::upstream::UserToken) -> Self {
        UserTokenBody {
            openid: t.openid,
            unionid: t.unionid,
            scope: t.scope,
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            is_snapshotuser: t.is_snapshotuser,
        }
    }
}

/// Whether WeChat still holds a user's kept session key.
#[derive(Debug, Serialize)]
pub struct CheckSessionBody {
    pub valid: bool,
    pub errcode: i64,
    pub errmsg: String,
}

/// An API's quota, as WeChat counts it.
#[derive(Debug, Serialize)]
pub struct QuotaBody {
    pub daily_limit: i64,
    pub used: i64,
    pub remain: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_rate_limit: Option<Value>,
}

/// Quota clears used this month.
#[derive(Debug, Serialize)]
pub struct ClearedBody {
    pub used_this_month: u32,
}

/// A JS-SDK configuration for one page: the ids the page's `wx.config`
/// (or `wx.agentConfig`) takes, and the signature of the page's URL.
#[derive(Debug, Serialize)]
pub struct JssdkConfig {
    /// `appId`; for an agent config `corpid` and `agentid`.
    #[serde(flatten)]
    pub ids: Fields<String>,
    pub timestamp: i64,
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    pub signature: String,
}

/// `POST …/jssdk_config`: a page's configuration, and for WeCom the app's
/// agent configuration beside the corp's.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum JssdkBody {
    Page(JssdkConfig),
    WeCom {
        config: JssdkConfig,
        agent_config: JssdkConfig,
    },
}

mod deliveries;
pub use deliveries::{DeliveryBody, delivery};

#[cfg(test)]
mod tests;
