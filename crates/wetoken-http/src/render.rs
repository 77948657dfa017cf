//! The JSON shapes of SPEC §3, rendered from the service's typed values.
//! The CLI prints the same shapes (`wetoken account show`, `token get
//! --json`), so they live here once.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use wetoken_core::domain::Credential;
use wetoken_core::service::{AccountView, AuthorizerEntry, CorpEntry, Issued, KeyView};

/// RFC 3339 UTC, whole seconds: `2026-11-21T10:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The JSON field a credential is served under.
pub fn field(cred: Credential) -> &'static str {
    match cred {
        Credential::AccessToken => "access_token",
        _ => "ticket",
    }
}

/// `{"access_token"|"ticket": …, "expires_in": …, "expires_at": …}`.
pub fn credential(cred: Credential, issued: &Issued, now: DateTime<Utc>) -> Value {
    let mut v = Map::new();
    v.insert(field(cred).into(), issued.value.clone().into());
    v.insert("expires_in".into(), issued.expires_in(now).into());
    v.insert("expires_at".into(), rfc3339(issued.expires_at).into());
    Value::Object(v)
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
