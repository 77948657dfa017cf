//! The WeCom third-party flow (SPEC §1, §5): suite tickets WeCom pushes,
//! installs (`create_auth`, `reset_permanent_code`), changes and
//! cancellations, and the corps a suite serves. Tokens themselves are fetched
//! by the engine like any other credential.

use serde_json::{Value, json};

use super::{CredentialService, Result, ServiceError, rfc3339_ms};
use crate::account::{Account, AccountStatus};
use crate::domain::{AccountId, Credential, Ident};
use crate::secret::Secret;

fn suite_id(id: &AccountId) -> Result<&Ident> {
    match id {
        AccountId::Suite { suite_id } => Ok(suite_id),
        other => Err(ServiceError::Invalid(format!("{other} is not a suite"))),
    }
}

/// Records what WeCom answered about an install (get_permanent_code or
/// get_auth_info): its agentid (the first agent listed; kept when none is)
/// and its authorization info.
fn record_install(a: &mut Account, v: &Value) {
    let agent = &v["auth_info"]["agent"][0]["agentid"];
    let agentid = agent
        .as_u64()
        .map(|n| n.to_string())
        .or_else(|| agent.as_str().map(str::to_owned));
    a.config.agentid = agentid.or(a.config.agentid.take());
    a.config.auth_info = Some(json!({"auth_corp_info": v["auth_corp_info"], "auth_info": v["auth_info"]}));
}

impl CredentialService {
    /// `create_auth` or `reset_permanent_code`: exchanges the temporary auth
    /// code with get_permanent_code, and stores the corp with its permanent
    /// code (sealed), agentid and authorization info, and the token that came
    /// with it. `at` is the event's TimeStamp (ms), now when absent.
    pub async fn install(&self, suite: &AccountId, auth_code: &str, at: Option<i64>) -> Result<AccountId> {
        let s = suite_id(suite)?.clone();
        self.inner.account(suite).await?;
        let up = &self.inner.upstream;
        let v = self
            .inner
            .with_token(suite, move |t| async move { up.permanent_code(&t, auth_code).await })
            .await?;
        let corpid = Ident::parse(
            "auth_corp_info.corpid",
            v["auth_corp_info"]["corpid"].as_str().unwrap_or_default(),
        )
        .map_err(|e| ServiceError::Invalid(e.0))?;
        let id = AccountId::Corp { suite_id: s, corpid };
        let at = at.unwrap_or_else(|| self.inner.now_ms());
        let permanent = v["permanent_code"].as_str().unwrap_or_default().to_owned();
        self.upsert_child(&id, at, true, |a| {
            a.secrets.permanent_code = Some(Secret::new(permanent));
            record_install(a, &v);
        })
        .await?;
        if let (Some(token), Some(expires_in)) = (v["access_token"].as_str(), v["expires_in"].as_i64()) {
            self.inner
                .store_value(&id, Credential::AccessToken, token, expires_in)
                .await?;
        }
        Ok(id)
    }

    /// `change_auth`: re-reads the corp's authorization with get_auth_info
    /// (idempotent, so a replay changes nothing); its credentials stay. A corp
    /// wetoken does not know is ignored.
    pub async fn change_auth(&self, suite: &AccountId, corpid: &Ident, at: i64) -> Result<bool> {
        let id = AccountId::Corp {
            suite_id: suite_id(suite)?.clone(),
            corpid: corpid.clone(),
        };
        let Ok(corp) = self.inner.account(&id).await else {
            return Ok(false);
        };
        let permanent = corp
            .secrets
            .permanent_code
            .clone()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        let up = &self.inner.upstream;
        let (c, p) = (corpid.as_str(), permanent.as_str());
        let v = self
            .inner
            .with_token(suite, move |t| async move { up.auth_info(&t, c, p).await })
            .await?;
        let at = at.max(corp.config.authorized_at.unwrap_or(at));
        self.upsert_child(&id, at, false, |a| record_install(a, &v)).await?;
        Ok(true)
    }

    /// `cancel_auth`: the corp uninstalled the app; revoked, credentials dropped.
    pub async fn cancel_auth(&self, suite: &AccountId, corpid: &Ident, at: i64) -> Result<bool> {
        let id = AccountId::Corp {
            suite_id: suite_id(suite)?.clone(),
            corpid: corpid.clone(),
        };
        self.revoke_child(&id, at).await
    }

    /// The agentid an account's tickets are for: a work app's own, a corp's
    /// install's.
    pub async fn agentid(&self, id: &AccountId) -> Result<Option<String>> {
        if let AccountId::Work { agentid, .. } = id {
            return Ok(Some(agentid.to_string()));
        }
        Ok(self.inner.account(id).await?.config.agentid)
    }

    /// The corps that installed a suite and did not cancel (SPEC §3).
    pub async fn corps(&self, suite: &AccountId) -> Result<Vec<Value>> {
        suite_id(suite)?;
        let mut out = Vec::new();
        for a in self.live_children(suite).await? {
            let AccountId::Corp { corpid, .. } = &a.id else {
                continue;
            };
            out.push(json!({
                "corpid": corpid.as_str(),
                "agentid": a.config.agentid,
                "authorized_at": rfc3339_ms(a.config.authorized_at.unwrap_or(a.created_at)),
                "status": match a.status {
                    AccountStatus::NeedsReauthorization => "needs_reauthorization",
                    _ => "authorized",
                },
            }));
        }
        Ok(out)
    }
}
