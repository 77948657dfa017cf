//! The JSON shapes of SPEC §3, rendered from the service's typed values.
//! The CLI prints the same shapes (`wetoken account show`, `token get
//! --json`), so they live here once.

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value, json};
use wetoken_core::clock::from_millis;
use wetoken_core::domain::Credential;
use wetoken_core::events::{Delivery, DeliveryStatus, Webhook};
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
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
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
    if let Some(c) = &a.quota_clears {
        m.insert("quota_clears".into(), json!({"month": c.month, "used": c.used}));
    }
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
    let mut v = json!({"name": k.name, "accounts": accounts, "tokens": k.tokens, "created_at": rfc3339(k.created_at)});
    if let Some(paths) = &k.paths {
        v["paths"] = paths.iter().map(|p| p.as_str()).collect::<Vec<_>>().into();
    }
    v
}

/// A webhook, never its secret.
pub fn webhook(w: &Webhook) -> Value {
    let events: Vec<&str> = w.events.iter().map(|p| p.as_str()).collect();
    let accounts: Vec<String> = w.accounts.iter().map(ToString::to_string).collect();
    json!({
        "name": w.name,
        "url": w.url,
        "events": events,
        "accounts": accounts,
        "format": w.format.as_str(),
        "created_at": rfc3339(from_millis(w.created_at)),
    })
}

/// One token-free call of the audit trail: never a token or a body.
pub fn audit(e: &wetoken_core::store::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at": rfc3339(from_millis(e.at)),
        "key": e.key,
        "account": e.account.to_string(),
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "errcode": e.errcode,
        "rid": e.rid,
    })
}

/// One event's delivery to a webhook.
pub fn delivery(d: &Delivery) -> Value {
    json!({
        "event_id": d.event_id.to_string(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "next_attempt_at": (d.status == DeliveryStatus::Pending).then(|| rfc3339(from_millis(d.next_at))),
        "created_at": rfc3339(from_millis(d.created_at)),
        "updated_at": rfc3339(from_millis(d.updated_at)),
        "last_status": d.last_status,
        "last_error": d.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    #[test]
    fn credentials_render_as_spec_3_says() {
        let now: DateTime<Utc> = "2026-11-21T08:00:00.400Z".parse().unwrap();
        let now = now.timestamp_millis();
        let issued = Issued {
            value: "tok\"en".into(),
            expires_at: "2026-11-21T10:00:00Z".parse().unwrap(),
            verified_at: None,
        };
        let text = credential(Credential::AccessToken, issued.clone(), now).to_bytes();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            r#"{"access_token":"tok\"en","expires_in":7199,"expires_at":"2026-11-21T10:00:00Z"}"#
        );
        let v: Value =
            serde_json::from_slice(&credential(Credential::JsapiTicket, issued.clone(), now).to_bytes()).unwrap();
        assert_eq!(v["ticket"], "tok\"en");
        // Past its expiry a value has 0 seconds left, never fewer.
        let late = credential(Credential::AccessToken, issued.clone(), now + 3 * 3_600_000).to_bytes();
        assert!(String::from_utf8(late).unwrap().contains(r#""expires_in":0,"#));
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

    #[test]
    fn a_credential_body_is_the_json_serde_writes_for_any_value() {
        // Every ASCII character, alone and inside a token, and some beyond.
        let mut values: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        values.extend((0u8..=0x7f).map(|b| format!("AB{}cd_-{}", char::from(b), char::from(b))));
        values.extend(["", "中控服务器", "\u{2028}x\u{7f}", "é\"\\\n\u{10ffff}"].map(String::from));
        for (i, value) in values.into_iter().enumerate() {
            let left = i as i64 * 997;
            let expires_at = DateTime::from_timestamp(1_800_000_000 + left, 0).unwrap();
            let issued = Issued {
                value: value.clone(),
                expires_at,
                verified_at: None,
            };
            for (cred, field) in [
                (Credential::AccessToken, "access_token"),
                (Credential::AgentTicket, "ticket"),
            ] {
                let body = credential(cred, issued.clone(), 1_800_000_000_000).to_bytes();
                let mut expected = Map::new();
                expected.insert(field.into(), value.clone().into());
                expected.insert("expires_in".into(), left.into());
                expected.insert("expires_at".into(), rfc3339(expires_at).into());
                assert_eq!(
                    String::from_utf8(body).unwrap(),
                    Value::Object(expected).to_string(),
                    "{value:?}"
                );
            }
        }
    }
}
