//! Sign-in without secrets (SPEC §13): the exchanges that need an
//! account's AppSecret (an `mp` account) or its component's token (an
//! authorizer), made here so that business systems hold neither; and the
//! custody of users' session keys, so that a key that may not see tokens
//! never sees one either.
//!
//! Every exchange is one call to WeChat, never repeated (a code is single
//! use: a timeout is an error, not a second try), and one entry in the
//! audit trail (key, account, WeChat's path, status, errcode: never the
//! code, a token, an openid or a session key).

use std::sync::atomic::Ordering;

use serde_json::Value;

mod crypto;

use crypto::binding;
pub use crypto::{decrypt_user_data, user_signature};

use super::audit::CallRecord;
use super::fetch::TokenCall;
use super::*;
use crate::store::StoreResult;
use crate::upstream::{Session, UpstreamError, UserToken};

/// Session keys purged at most once a minute per instance, in batches.
const PURGE_EVERY_MS: i64 = 60_000;
const PURGE_BATCH: i64 = 10_000;

/// Who asks: the key's name (for the audit trail) and whether it may see
/// tokens and session keys (`"tokens": true`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub key: &'a str,
    pub sees_values: bool,
}

/// A Mini Program login as the caller gets it.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub openid: String,
    pub unionid: Option<String>,
    /// None for a caller that may not see it: wetoken keeps it.
    pub session_key: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("session_key", &self.session_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// The web authorization scopes (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Silent: the openid only.
    Base,
    /// A consent page: the user's profile too.
    UserInfo,
}

impl std::str::FromStr for Scope {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "snsapi_base" => Ok(Scope::Base),
            "snsapi_userinfo" => Ok(Scope::UserInfo),
            _ => Err(ServiceError::Invalid(
                "scope must be snsapi_base or snsapi_userinfo".into(),
            )),
        }
    }
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
        }
    }
}

/// What an exchange is made with: the account's secret, or its
/// component's token.
enum Holder {
    Secret {
        appid: String,
        secret: String,
    },
    Component {
        appid: String,
        component: AccountId,
        token: String,
    },
}

impl Holder {
    /// WeChat's path of an exchange: `own` with the account's secret,
    /// `component` with the component's token.
    fn path(&self, own: &'static str, component: &'static str) -> &'static str {
        match self {
            Holder::Secret { .. } => own,
            Holder::Component { .. } => component,
        }
    }
}

/// The appid of an account users sign in to, or of a component.
fn appid_of(id: &AccountId) -> &str {
    match id {
        AccountId::Mp { appid } | AccountId::Component { appid } | AccountId::Authorizer { appid, .. } => {
            appid.as_str()
        }
        AccountId::Work { corpid, .. } | AccountId::Corp { corpid, .. } | AccountId::Provider { corpid } => {
            corpid.as_str()
        }
        AccountId::Suite { suite_id } => suite_id.as_str(),
    }
}

/// A code, token or id as a caller sends it: present, bounded, plain.
fn check_text(what: &str, v: &str, max: usize) -> Result<()> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::Invalid(format!(
            "{what} must be 1 to {max} visible ASCII characters"
        )));
    }
    Ok(())
}

impl SignIn {
    /// What an exchange for `id` is made with.
    async fn holder(&self, id: &AccountId) -> Result<Holder> {
        match id {
            AccountId::Mp { appid } => {
                let account = self.engine.inner.account(id).await?;
                let secret = account
                    .secrets
                    .secret
                    .as_ref()
                    .ok_or_else(|| ServiceError::Invalid(format!("{id} has no secret")))?;
                Ok(Holder::Secret {
                    appid: appid.as_str().to_owned(),
                    secret: secret.expose().to_owned(),
                })
            }
            AccountId::Authorizer { component_appid, appid } => {
                self.engine.inner.account(id).await?;
                let component = AccountId::Component {
                    appid: component_appid.clone(),
                };
                let token = self.engine.get(&component, Credential::AccessToken).await?.value;
                Ok(Holder::Component {
                    appid: appid.as_str().to_owned(),
                    component,
                    token,
                })
            }
            other => Err(ServiceError::Invalid(format!(
                "users sign in to Official Accounts, Mini Programs and authorizers, not {} accounts",
                other.kind()
            ))),
        }
    }

    /// One exchange: made once, recorded in the audit trail; a component
    /// token WeChat refused is reported (its next use gets a checked one),
    /// never retried with this code.
    async fn exchange<T, Fut>(
        &self,
        caller: &Caller<'_>,
        id: &AccountId,
        path: &str,
        call: impl FnOnce(Holder) -> Fut,
        holder: Holder,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = std::result::Result<T, UpstreamError>>,
    {
        let used = match &holder {
            Holder::Component { component, token, .. } => Some((component.clone(), token.clone())),
            Holder::Secret { .. } => None,
        };
        let result = call(holder).await;
        let (status, errcode) = match &result {
            Ok(_) => (200, None),
            Err(UpstreamError::Timeout(_)) => (504, None),
            Err(e) => (502, Some(e.errcode())),
        };
        let rid = result.as_ref().err().and_then(UpstreamError::rid);
        let record = CallRecord {
            key: caller.key,
            account: id,
            method: "GET",
            path,
            status,
            errcode,
            rid,
            relayed: true,
        };
        if let Err(e) = self.custody.record_call(record).await {
            tracing::warn!(error = %e, "cannot record a sign-in exchange in the audit trail");
        }
        if let (Err(e), Some((component, token))) = (&result, used)
            && e.is_token_rejected()
        {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                let _ = engine.refresh(&component, Credential::AccessToken, Some(&token)).await;
            });
        }
        Ok(result?)
    }

    /// `jscode2session` (SPEC §13): the user's openid and unionid; the
    /// session key kept sealed for `WETOKEN_SESSION_KEY_TTL_SECS`, handed to
    /// a caller that may see values only.
    pub async fn code_to_session(&self, caller: &Caller<'_>, id: &AccountId, js_code: &str) -> Result<Login> {
        check_text("js_code", js_code, 256)?;
        let holder = self.holder(id).await?;
        let up = &self.engine.inner.upstream;
        let path = holder.path("/sns/jscode2session", "/sns/component/jscode2session");
        let session: Session = self
            .exchange(
                caller,
                id,
                path,
                |h| async move {
                    match h {
                        Holder::Secret { appid, secret } => up.jscode2session(&appid, &secret, js_code).await,
                        Holder::Component {
                            appid,
                            component,
                            token,
                        } => {
                            up.component_jscode2session(&appid, js_code, appid_of(&component), &token)
                                .await
                        }
                    }
                },
                holder,
            )
            .await?;
        self.keep(id, &session).await?;
        Ok(Login {
            openid: session.openid,
            unionid: session.unionid,
            session_key: caller.sees_values.then_some(session.session_key),
        })
    }

    /// Keeps a user's new session key (the one before it is dead at WeChat).
    async fn keep(&self, id: &AccountId, session: &Session) -> Result<()> {
        check_text("openid", &session.openid, 128)
            .map_err(|_| ServiceError::Upstream(UpstreamError::Malformed("an unusable openid".into())))?;
        let inner = &self.engine.inner;
        let now = inner.now_ms();
        let sealed = inner.key.seal(&session.session_key, &binding(id, &session.openid));
        let until = now.saturating_add(inner.cfg.session_key_ttl.as_millis() as i64);
        self.keys.put_session_key(id, &session.openid, &sealed, until).await?;
        self.purge_now_and_then(now);
        Ok(())
    }

    /// At most once a minute, purges expired session keys in the background.
    fn purge_now_and_then(&self, now: i64) {
        let last = self.purged_at.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_MS
            || self
                .purged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match me.purge_expired(now).await {
                Ok(n) if n > 0 => tracing::info!(session_keys = n, "purged expired session keys"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot purge expired session keys"),
            }
        });
    }

    /// Deletes every session key expired at `now`, a batch at a time; how many.
    pub async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let n = self.keys.purge_session_keys(now, PURGE_BATCH).await?;
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// The session key kept for a user, opened.
    async fn kept(&self, id: &AccountId, openid: &str) -> Result<String> {
        check_text("openid", openid, 128)?;
        self.engine.inner.account(id).await?;
        let inner = &self.engine.inner;
        let sealed = self
            .keys
            .session_key(id, openid, inner.now_ms())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "no session_key is kept for this user of {id}: they must log in again"
                ))
            })?;
        inner
            .key
            .open(&sealed, &binding(id, openid))
            .map_err(|e| ServiceError::Unavailable(format!("a kept session_key cannot be opened: {e}")))
    }

    /// `sns/decrypt` (SPEC §13): what the Mini Program sent, decrypted with
    /// the user's kept session key, its watermark checked.
    pub async fn decrypt(&self, id: &AccountId, openid: &str, encrypted_data: &str, iv: &str) -> Result<Value> {
        if encrypted_data.is_empty() || encrypted_data.len() > 64 * 1024 || iv.len() > 64 {
            return Err(ServiceError::Invalid(
                "encrypted_data (at most 64 KiB) and iv are required".into(),
            ));
        }
        let key = self.kept(id, openid).await?;
        decrypt_user_data(&key, encrypted_data, iv, appid_of(id))
    }

    /// `sns/checksession` (SPEC §13): whether WeChat still holds the kept
    /// session key (`wxa/checksession`, signed, the key never sent).
    pub async fn check_session(&self, id: &AccountId, openid: &str) -> Result<()> {
        let key = self.kept(id, openid).await?;
        let signature = user_signature(&key, "");
        let up = &self.engine.inner.upstream;
        let answer = self
            .engine
            .with_token(
                id,
                |t| {
                    let signature = signature.clone();
                    async move { up.checksession(&t, openid, &signature).await }
                },
                |r: &std::result::Result<(), UpstreamError>| r.as_ref().is_err_and(UpstreamError::is_token_rejected),
            )
            .await?;
        match answer {
            TokenCall::Answered(r) | TokenCall::RefreshFailed(r, _) => Ok(r?),
        }
    }

    /// The web authorization page's URL (SPEC §13): `redirect_uri` an
    /// absolute http(s) URL, `state` at most 128 letters and digits.
    pub async fn authorize_url(&self, id: &AccountId, redirect_uri: &str, scope: Scope, state: &str) -> Result<String> {
        let ok_redirect = (redirect_uri.starts_with("https://") || redirect_uri.starts_with("http://"))
            && redirect_uri.len() <= 1024
            && !redirect_uri
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'#');
        if !ok_redirect {
            return Err(ServiceError::Invalid(
                "redirect_uri must be an absolute http(s) URL without a fragment".into(),
            ));
        }
        if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ServiceError::Invalid(
                "state must be at most 128 letters and digits".into(),
            ));
        }
        let component = match id {
            AccountId::Mp { .. } => None,
            AccountId::Authorizer { component_appid, .. } => Some(component_appid.as_str()),
            other => {
                return Err(ServiceError::Invalid(format!(
                    "web authorization is for Official Accounts and authorizers, not {} accounts",
                    other.kind()
                )));
            }
        };
        self.engine.inner.account(id).await?;
        let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        // WeChat wants these parameters in this order (contract-2 §A.4).
        let mut url = format!(
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}",
            appid_of(id),
            enc(redirect_uri),
            scope.as_str(),
            state
        );
        if let Some(c) = component {
            url.push_str(&format!("&component_appid={c}"));
        }
        url.push_str("#wechat_redirect");
        Ok(url)
    }

    /// `oauth2/access_token` (SPEC §13): a web authorization code for the
    /// user's token.
    pub async fn user_token(&self, caller: &Caller<'_>, id: &AccountId, code: &str) -> Result<UserToken> {
        check_text("code", code, 512)?;
        let holder = self.holder(id).await?;
        let up = &self.engine.inner.upstream;
        let path = holder.path("/sns/oauth2/access_token", "/sns/oauth2/component/access_token");
        self.exchange(
            caller,
            id,
            path,
            |h| async move {
                match h {
                    Holder::Secret { appid, secret } => up.oauth_access_token(&appid, &secret, code).await,
                    Holder::Component {
                        appid,
                        component,
                        token,
                    } => {
                        up.component_oauth_access_token(&appid, code, appid_of(&component), &token)
                            .await
                    }
                }
            },
            holder,
        )
        .await
    }

    /// `oauth2/refresh_token` (SPEC §13): an Official Account's needs no
    /// secret; an authorizer's needs its component's token.
    pub async fn refresh_user_token(
        &self,
        caller: &Caller<'_>,
        id: &AccountId,
        refresh_token: &str,
    ) -> Result<UserToken> {
        check_text("refresh_token", refresh_token, 512)?;
        let holder = match id {
            AccountId::Mp { appid } => {
                self.engine.inner.account(id).await?;
                Holder::Secret {
                    appid: appid.as_str().to_owned(),
                    secret: String::new(),
                }
            }
            _ => self.holder(id).await?,
        };
        let up = &self.engine.inner.upstream;
        let path = holder.path("/sns/oauth2/refresh_token", "/sns/oauth2/component/refresh_token");
        self.exchange(
            caller,
            id,
            path,
            |h| async move {
                match h {
                    Holder::Secret { appid, .. } => up.oauth_refresh(&appid, refresh_token).await,
                    Holder::Component {
                        appid,
                        component,
                        token,
                    } => {
                        up.component_oauth_refresh(&appid, refresh_token, appid_of(&component), &token)
                            .await
                    }
                }
            },
            holder,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
