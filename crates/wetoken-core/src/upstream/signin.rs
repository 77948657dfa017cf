//! Users signing in (SPEC §13; wechat-upstream-contract-2 §A): the
//! exchanges that need an AppSecret or a component's token, made here so
//! that no business system holds either. Each is one call, never retried
//! (a code is single use); the code, the user's tokens and the session key
//! never reach a log (requests fail without their URL, answers are typed
//! and redacted in `Debug`).

use serde::Deserialize;
use serde_json::Value;

use super::{Api, Upstream, UpstreamError};

/// A Mini Program user's session: `jscode2session`'s answer.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    pub session_key: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("openid", &"***")
            .field("unionid", &self.unionid.as_ref().map(|_| "***"))
            .field("session_key", &"***")
            .finish()
    }
}

/// A user's web authorization: the user's token (not the account's), its
/// refresh token, who and what scope.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct UserToken {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub openid: String,
    pub scope: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// 1 for a user who only saw the snapshot page (a virtual account).
    #[serde(default)]
    pub is_snapshotuser: Option<i64>,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("access_token", &"***")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"***")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Reads a successful answer into `T` (missing fields are malformed).
fn answer<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, UpstreamError> {
    serde_json::from_value(v).map_err(|e| UpstreamError::Malformed(format!("{what}: {e}")))
}

impl Upstream {
    /// `GET /sns/{path}` with `query`, counted under `endpoint`.
    async fn sns(&self, endpoint: &'static str, query: &[(&str, &str)]) -> Result<Value, UpstreamError> {
        self.send(endpoint, Api::Mp, |c, base| {
            c.get(format!("{base}/{endpoint}")).query(query)
        })
        .await
    }

    /// `sns/jscode2session`: a Mini Program login code with the app's secret.
    pub async fn jscode2session(&self, appid: &str, secret: &str, js_code: &str) -> Result<Session, UpstreamError> {
        let q = [
            ("appid", appid),
            ("secret", secret),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ];
        answer(self.sns("sns/jscode2session", &q).await?, "jscode2session")
    }

    /// `sns/component/jscode2session`: an authorizer's login code with its
    /// component's token.
    pub async fn component_jscode2session(
        &self,
        appid: &str,
        js_code: &str,
        component_appid: &str,
        component_token: &str,
    ) -> Result<Session, UpstreamError> {
        let q = [
            ("appid", appid),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
            ("component_appid", component_appid),
            ("component_access_token", component_token),
        ];
        answer(self.sns("sns/component/jscode2session", &q).await?, "jscode2session")
    }

    /// `sns/oauth2/access_token`: a web authorization code with the app's secret.
    pub async fn oauth_access_token(&self, appid: &str, secret: &str, code: &str) -> Result<UserToken, UpstreamError> {
        let q = [
            ("appid", appid),
            ("secret", secret),
            ("code", code),
            ("grant_type", "authorization_code"),
        ];
        answer(self.sns("sns/oauth2/access_token", &q).await?, "oauth2/access_token")
    }

    /// `sns/oauth2/component/access_token`: an authorizer's web code with
    /// its component's token.
    pub async fn component_oauth_access_token(
        &self,
        appid: &str,
        code: &str,
        component_appid: &str,
        component_token: &str,
    ) -> Result<UserToken, UpstreamError> {
        let q = [
            ("appid", appid),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("component_appid", component_appid),
            ("component_access_token", component_token),
        ];
        answer(
            self.sns("sns/oauth2/component/access_token", &q).await?,
            "oauth2/component/access_token",
        )
    }

    /// `sns/oauth2/refresh_token`: no secret.
    pub async fn oauth_refresh(&self, appid: &str, refresh_token: &str) -> Result<UserToken, UpstreamError> {
        let q = [
            ("appid", appid),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        answer(self.sns("sns/oauth2/refresh_token", &q).await?, "oauth2/refresh_token")
    }

    /// `sns/oauth2/component/refresh_token`: with the component's token.
    pub async fn component_oauth_refresh(
        &self,
        appid: &str,
        refresh_token: &str,
        component_appid: &str,
        component_token: &str,
    ) -> Result<UserToken, UpstreamError> {
        let q = [
            ("appid", appid),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("component_appid", component_appid),
            ("component_access_token", component_token),
        ];
        answer(
            self.sns("sns/oauth2/component/refresh_token", &q).await?,
            "oauth2/component/refresh_token",
        )
    }

    /// `wxa/checksession`: whether WeChat still holds this session key for
    /// the user (the key never sent: its signature of "").
    pub async fn checksession(&self, access_token: &str, openid: &str, signature: &str) -> Result<(), UpstreamError> {
        let q = [
            ("access_token", access_token),
            ("openid", openid),
            ("signature", signature),
            ("sig_method", "hmac_sha256"),
        ];
        self.send("wxa/checksession", Api::Mp, |c, base| {
            c.get(format!("{base}/wxa/checksession")).query(&q)
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_typed_and_never_show_their_secrets() {
        let s: Session = answer(
            serde_json::json!({"openid": "o1", "session_key": "k==", "unionid": "u1"}),
            "x",
        )
        .unwrap();
        assert_eq!(s.unionid.as_deref(), Some("u1"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("k==") && !shown.contains("o1"), "{shown}");
        assert!(
            answer::<Session>(serde_json::json!({"openid": "o1"}), "x").is_err(),
            "no session_key"
        );
        let t: UserToken = answer(
            serde_json::json!({"access_token": "AT", "expires_in": 7200, "refresh_token": "RT",
                               "openid": "o", "scope": "snsapi_base", "is_snapshotuser": 1}),
            "x",
        )
        .unwrap();
        assert_eq!((t.unionid.as_deref(), t.is_snapshotuser), (None, Some(1)));
        let shown = format!("{t:?}");
        assert!(!shown.contains("AT") && !shown.contains("RT"), "{shown}");
    }
}
