//! Sign-in through token-free calls (SPEC §13): an SDK configured with an
//! empty secret calls `/proxy/mp/{appid}/sns/jscode2session` (or the
//! web authorization's `sns/oauth2/*`, or an authorizer's
//! `sns/component/…` variants) as it would call WeChat; the exchange is
//! `SignIn`'s (the account's secret or the component's token added, made
//! once, in the audit trail, the session key kept and withheld from a key
//! that may not see values) and the answer is WeChat's shape.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use wetoken_core::auth::Principal;
use wetoken_core::domain::AccountId;
use wetoken_core::service::ServiceError;
use wetoken_core::service::signin::Caller;
use wetoken_core::upstream::{UpstreamError, UserToken};

use super::TOKEN_PARAMS;
use crate::AppState;
use crate::error::{ApiError, WxError, wx_error};

/// The sign-in exchanges a token-free call can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exchange {
    Session,
    UserToken,
    RefreshUserToken,
}

/// The exchange `path` is for an account like `owner`, if it is one.
pub(super) fn exchange_of(owner: &AccountId, path: &str) -> Option<Exchange> {
    let p = path.trim_end_matches('/');
    match (owner, p) {
        (AccountId::Mp { .. }, "/sns/jscode2session")
        | (AccountId::Authorizer { .. }, "/sns/component/jscode2session") => Some(Exchange::Session),
        (AccountId::Mp { .. }, "/sns/oauth2/access_token")
        | (AccountId::Authorizer { .. }, "/sns/oauth2/component/access_token") => Some(Exchange::UserToken),
        (AccountId::Mp { .. }, "/sns/oauth2/refresh_token")
        | (AccountId::Authorizer { .. }, "/sns/oauth2/component/refresh_token") => Some(Exchange::RefreshUserToken),
        _ => None,
    }
}

/// The identifiers a caller may send, checked against the path's account:
/// `appid` and `component_appid` must name it when sent.
fn names(owner: &AccountId) -> (&str, Option<&str>) {
    match owner {
        AccountId::Mp { appid } => (appid.as_str(), None),
        AccountId::Authorizer { component_appid, appid } => (appid.as_str(), Some(component_appid.as_str())),
        _ => ("", None),
    }
}

/// The query of a sign-in call, checked: a secret or a token that is sent
/// is 400 (an empty one, as an SDK with none sends, is dropped); ids must
/// name the path's account.
fn checked_query(owner: &AccountId, raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut q = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if q.insert(k.to_string(), v.to_string()).is_some() {
            return Err(ApiError::invalid(format!("{k} is sent twice")));
        }
    }
    for name in std::iter::once("secret").chain(TOKEN_PARAMS.iter().copied()) {
        if q.get(name).is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::invalid(format!(
                "{name} was sent: wetoken adds the account's secret or token to sign-in calls, send none"
            )));
        }
    }
    let (appid, component) = names(owner);
    if q.get("appid").is_some_and(|a| !a.is_empty() && a != appid) {
        return Err(ApiError::invalid("appid names another account than the path"));
    }
    if q.get("component_appid")
        .is_some_and(|c| !c.is_empty() && Some(c.as_str()) != component)
    {
        return Err(ApiError::invalid(
            "component_appid names another component than the path",
        ));
    }
    Ok(q)
}

/// A user's token in WeChat's shape.
fn user_token_json(t: UserToken) -> Value {
    let mut v = json!({
        "access_token": t.access_token,
        "expires_in": t.expires_in,
        "refresh_token": t.refresh_token,
        "openid": t.openid,
        "scope": t.scope,
    });
    if let Some(u) = t.unionid {
        v["unionid"] = json!(u);
    }
    if let Some(s) = t.is_snapshotuser {
        v["is_snapshotuser"] = json!(s);
    }
    v
}

/// What a sign-in call came to: the answer, WeChat's errcode, and whether
/// it reached WeChat (the exchange records itself in the audit trail).
pub(super) struct Outcome {
    pub response: Response,
    pub errcode: Option<i64>,
    pub relayed: bool,
}

/// A sign-in exchange made for a token-free call.
pub(super) async fn exchange(
    st: &AppState,
    principal: &Principal,
    owner: &AccountId,
    kind: Exchange,
    raw_query: &str,
) -> Outcome {
    let q = match checked_query(owner, raw_query) {
        Ok(q) => q,
        Err(e) => {
            return Outcome {
                response: e.into_response(),
                errcode: None,
                relayed: false,
            };
        }
    };
    let _slot = match st.proxy.slot() {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                response: e.into_response(),
                errcode: Some(-1),
                relayed: false,
            };
        }
    };
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let caller = Caller {
        key: principal.name(),
        sees_values: principal.may_read_values(),
    };
    let signin = &st.service.signin;
    let answer = match kind {
        Exchange::Session => signin.code_to_session(&caller, owner, get("js_code")).await.map(|l| {
            let mut v = json!({"openid": l.openid});
            if let Some(k) = l.session_key {
                v["session_key"] = json!(k);
            }
            if let Some(u) = l.unionid {
                v["unionid"] = json!(u);
            }
            v
        }),
        Exchange::UserToken => signin
            .user_token(&caller, owner, get("code"))
            .await
            .map(user_token_json),
        Exchange::RefreshUserToken => signin
            .refresh_user_token(&caller, owner, get("refresh_token"))
            .await
            .map(user_token_json),
    };
    match answer {
        Ok(v) => Outcome {
            response: Json(v).into_response(),
            errcode: None,
            relayed: true,
        },
        Err(ServiceError::Upstream(UpstreamError::Timeout(_))) => Outcome {
            response: (
                StatusCode::GATEWAY_TIMEOUT,
                wx_error(
                    -1,
                    "system error: WeChat did not answer in time; the code is not tried again",
                ),
            )
                .into_response(),
            errcode: Some(-1),
            relayed: true,
        },
        Err(e) => {
            let reached = matches!(e, ServiceError::Upstream(_));
            let wx = WxError::from(e);
            Outcome {
                errcode: Some(wx.errcode),
                response: wx.into_response(),
                relayed: reached,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_paths_account_is_named_and_no_secret_is_sent() {
        let mp: AccountId = "mp:wxa".parse().unwrap();
        assert!(checked_query(&mp, "appid=wxa&secret=&js_code=c&grant_type=authorization_code").is_ok());
        assert!(
            checked_query(&mp, "appid=wxa&secret=s&js_code=c").is_err(),
            "a sent secret"
        );
        assert!(checked_query(&mp, "appid=wxb&js_code=c").is_err(), "another app");
        assert!(checked_query(&mp, "js_code=a&js_code=b").is_err(), "twice");
        let auth: AccountId = "authorizer:wxc:wxa".parse().unwrap();
        assert!(checked_query(&auth, "appid=wxa&component_appid=wxc&component_access_token=").is_ok());
        assert!(checked_query(&auth, "component_appid=wxd").is_err());
        assert!(checked_query(&auth, "component_access_token=t").is_err());
        assert_eq!(exchange_of(&mp, "/sns/jscode2session"), Some(Exchange::Session));
        assert_eq!(exchange_of(&mp, "/sns/component/jscode2session"), None);
        assert_eq!(
            exchange_of(&auth, "/sns/oauth2/component/refresh_token"),
            Some(Exchange::RefreshUserToken)
        );
    }
}
