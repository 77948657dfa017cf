//! One upstream fetch of a credential: the dispatch table by account kind
//! and credential, and calls that need another credential's token
//! (through the engine's `with_token`, never the public API: a ticket needs its
//! account's access token, an authorizer's token its component's, a corp's
//! its suite's).

use std::sync::Arc;

use super::failure::FetchError;
use super::{Inner, Result, ServiceError};
use crate::account::{Account, AccountStatus};
use crate::domain::{AccountId, Credential, TokenApi};
use crate::secret::Secret;
use crate::upstream::{Fetched, TicketType, UpstreamError};

/// What a call made with a token came to.
#[derive(Debug)]
pub enum TokenCall<T> {
    /// WeChat's answer: to the first call, or to the retry after a refresh.
    Answered(T),
    /// WeChat rejected the token and refreshing it failed: the first answer,
    /// and why there was no retry.
    RefreshFailed(T, ServiceError),
}

/// A secret the fetch needs, or why it cannot start.
fn secret_of<'a>(s: Option<&'a Secret>, what: &str) -> Result<&'a str, FetchError> {
    s.map(Secret::expose)
        .ok_or_else(|| FetchError::Dependency(ServiceError::Invalid(format!("the account has no {what}"))))
}

impl Inner {
    /// One upstream fetch of a credential: the dispatch table.
    pub(super) async fn fetch(
        self: &Arc<Self>,
        account: &Account,
        cred: Credential,
        force: bool,
    ) -> Result<Fetched, FetchError> {
        let up = &self.upstream;
        let own = |r: Result<Fetched, UpstreamError>| r.map_err(FetchError::Own);
        match (&account.id, cred) {
            (AccountId::Mp { appid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let api = account.config.token_api;
                // Classic always issues a new token; force matters to stable only.
                let force = force && api == TokenApi::Stable;
                own(up.mp_access_token(api, appid.as_str(), secret, force).await)
            }
            (
                AccountId::Mp { .. } | AccountId::Authorizer { .. } | AccountId::Work { .. } | AccountId::Corp { .. },
                Credential::JsapiTicket | Credential::WxCardTicket | Credential::AgentTicket,
            ) => {
                let ty = TicketType::of(account.id.kind(), cred);
                self.upstream_with_token(&account.id, move |t| async move { up.ticket(&t, ty).await })
                    .await
            }
            (AccountId::Component { appid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let ticket = self.pushed_ticket(&account.id, Credential::VerifyTicket).await?;
                own(up.component_token(appid.as_str(), secret, &ticket).await)
            }
            (AccountId::Authorizer { component_appid, appid }, Credential::AccessToken) => {
                let refresh = secret_of(account.secrets.refresh_token.as_ref(), "refresh_token")?;
                let component = AccountId::Component {
                    appid: component_appid.clone(),
                };
                let (c, a) = (component_appid.as_str(), appid.as_str());
                let r = self
                    .upstream_with_token(&component, move |t| async move {
                        up.authorizer_token(&t, c, a, refresh).await
                    })
                    .await;
                if let Err(FetchError::Own(e)) = &r
                    && e.errcode() == 61023
                {
                    // The refresh token is dead: only a new authorization helps.
                    let _ = self.set_status(account, AccountStatus::NeedsReauthorization).await;
                }
                r
            }
            (AccountId::Work { corpid, .. }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                own(up.work_token(corpid.as_str(), secret).await)
            }
            (AccountId::Provider { corpid }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                own(up.provider_token(corpid.as_str(), secret).await)
            }
            (AccountId::Suite { suite_id }, Credential::AccessToken) => {
                let secret = secret_of(account.secrets.secret.as_ref(), "secret")?;
                let ticket = self.pushed_ticket(&account.id, Credential::SuiteTicket).await?;
                own(up.suite_token(suite_id.as_str(), secret, &ticket).await)
            }
            (AccountId::Corp { suite_id, corpid }, Credential::AccessToken) => {
                let permanent = secret_of(account.secrets.permanent_code.as_ref(), "permanent_code")?;
                let suite = AccountId::Suite {
                    suite_id: suite_id.clone(),
                };
                let corpid = corpid.as_str();
                self.upstream_with_token(
                    &suite,
                    move |t| async move { up.corp_token(&t, corpid, permanent).await },
                )
                .await
            }
            (id, cred) => Err(FetchError::Dependency(ServiceError::Invalid(format!(
                "{} accounts have no fetchable {cred}",
                id.kind()
            )))),
        }
    }

    /// A WeChat call with `holder`'s access token, retried once after a
    /// compare-and-refresh when WeChat rejects the token.
    pub(super) async fn upstream_with_token<T, F, Fut>(
        self: &Arc<Self>,
        holder: &AccountId,
        call: F,
    ) -> Result<T, FetchError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let rejected = |r: &Result<T, UpstreamError>| matches!(r, Err(e) if e.is_token_rejected());
        match self.with_token(holder, call, rejected).await {
            Ok(TokenCall::Answered(r)) => r.map_err(FetchError::Own),
            Ok(TokenCall::RefreshFailed(_, e)) | Err(e) => Err(FetchError::Dependency(e)),
        }
    }

    /// The latest pushed ticket (verify_ticket, suite_ticket) while valid;
    /// without one the token cannot be fetched.
    async fn pushed_ticket(&self, id: &AccountId, cred: Credential) -> Result<String, FetchError> {
        let now = self.now_ms();
        let row = self
            .store
            .credential(id, cred)
            .await
            .map_err(|e| FetchError::Dependency(e.into()))?;
        row.and_then(|r| self.valid(&r, now)).map(|i| i.value).ok_or_else(|| {
            FetchError::Dependency(ServiceError::TicketMissing {
                account: id.clone(),
                ticket: cred,
            })
        })
    }
}
