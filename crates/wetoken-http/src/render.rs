//! The JSON shapes of SPEC §3, rendered from the service's typed values.
//! The CLI prints the same shapes (`wetoken account show`, `token get
//! --json`), so they live here once.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};
use wetoken_core::domain::Credential;
use wetoken_core::service::{AccountView, AuthorizerEntry, CorpEntry, Issued, KeyView};

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
/// written straight from the issued value (the hot path: no intermediate
/// map, no format string parsed, one buffer sized up front).
pub struct CredentialBody {
    cred: Credential,
    issued: Issued,
    now: DateTime<Utc>,
}

impl Serialize for CredentialBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(field(self.cred), &self.issued.value)?;
        m.serialize_entry("expires_in", &self.issued.expires_in(self.now))?;
        let at = rfc3339_bytes(self.issued.expires_at);
        m.serialize_entry("expires_at", std::str::from_utf8(&at).unwrap_or_default())?;
        m.end()
    }
}

impl IntoResponse for CredentialBody {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(self.issued.value.len() + 96);
        match serde_json::to_writer(&mut buf, &self) {
            Ok(()) => ([(CONTENT_TYPE, "application/json")], buf).into_response(),
            Err(e) => crate::error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                .into_response(),
        }
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

pub fn credential(cred: Credential, issued: Issued, now: DateTime<Utc>) -> CredentialBody {
    CredentialBody { cred, issued, now }
}

/// An account: id, kind, identifiers, settings and credential state.
pub fn account(a: &AccountView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), a.id.to_string().into());
    m.insert("kind".into(), a.id.kind().as_str().into());
    for (k, v) in a.id.fields() {
        m.insert(k.into(), v.into());
    }
    if let Some(api) = a.token_api {
        m.insert("token_api".into(), api.as_str().into());
    }
    if let Some(agentid) = &a.agentid {
        m.insert("agentid".into(), agentid.clone().into());
    }
    m.insert("status".into(), a.status.as_str().into());
    m.insert("created_at".into(), rfc3339(a.created_at).into());
    m.insert("updated_at".into(), rfc3339(a.updated_at).into());
    let mut creds = Map::new();
    for c in &a.credentials {
        let last_error = c
            .last_error
            .as_ref()
            .map(|e| json!({"errcode": e.errcode, "errmsg": e.errmsg, "at": rfc3339(e.at)}));
        creds.insert(
            c.credential.as_str().into(),
            json!({
                "expires_at": c.expires_at.map(rfc3339),
                "refreshed_at": c.refreshed_at.map(rfc3339),
                "last_error": last_error,
                "blocked_until": c.blocked_until.map(rfc3339),
            }),
        );
    }
    m.insert("credentials".into(), Value::Object(creds));
    Value::Object(m)
}

pub fn authorizer(a: &AuthorizerEntry) -> Value {
    json!({
        "appid": a.appid.as_str(),
        "authorized_at": rfc3339(a.authorized_at),
        "status": a.status.as_str(),
        "func_info": a.func_info,
    })
}

pub fn corp(c: &CorpEntry) -> Value {
    json!({
        "corpid": c.corpid.as_str(),
        "agentid": c.agentid,
        "authorized_at": rfc3339(c.authorized_at),
        "status": c.status.as_str(),
    })
}

pub fn key(k: &KeyView) -> Value {
    let accounts: Vec<String> = k.accounts.iter().map(ToString::to_string).collect();
    json!({"name": k.name, "accounts": accounts, "created_at": rfc3339(k.created_at)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    #[test]
    fn credentials_render_as_spec_3_says() {
        let now: DateTime<Utc> = "2026-11-21T08:00:00.400Z".parse().unwrap();
        let issued = Issued {
            value: "tok\"en".into(),
            expires_at: "2026-11-21T10:00:00Z".parse().unwrap(),
        };
        let text = serde_json::to_string(&credential(Credential::AccessToken, issued.clone(), now)).unwrap();
        assert_eq!(
            text,
            r#"{"access_token":"tok\"en","expires_in":7199,"expires_at":"2026-11-21T10:00:00Z"}"#
        );
        let v = serde_json::to_value(credential(Credential::JsapiTicket, issued.clone(), now)).unwrap();
        assert_eq!(v["ticket"], "tok\"en");
        assert_eq!(rfc3339(issued.expires_at), "2026-11-21T10:00:00Z");
        for t in ["1999-01-02T03:04:05Z", "2026-12-31T23:59:59Z", "0042-07-09T00:00:00Z"] {
            let at: DateTime<Utc> = t.parse().unwrap();
            assert_eq!(&rfc3339_bytes(at), t.as_bytes());
            assert_eq!(
                rfc3339(at),
                at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "as chrono writes it"
            );
        }
    }
}
