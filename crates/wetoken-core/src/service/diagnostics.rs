//! Diagnostics (SPEC §3) for `mp` and `authorizer` accounts: the daily
//! quota of an API, the request a rid names, and clearing the day's counts
//! — which WeChat allows 10 times a month per account, so each use is
//! recorded on the account (`AccountConfig::quota_clears`) and shown.

use chrono::Duration as TimeDelta;

use super::{Accounts, Result, ServiceError};
use crate::account::QuotaClears;
use crate::domain::AccountId;
use crate::upstream::{Quota, RidRequest, UpstreamError};

/// WeChat's limit of quota clears per account and month.
pub const CLEARS_PER_MONTH: u32 = 10;

/// What a clear did: this month's uses recorded so far (the refused one
/// not counted), and WeChat's refusal if it refused.
#[derive(Debug, Clone)]
pub struct Cleared {
    pub used_this_month: u32,
    pub refused: Option<UpstreamError>,
}

/// Diagnostics are for `mp` and `authorizer` accounts (NotFound for others).
pub fn diagnosable(id: &AccountId) -> Result<()> {
    match id {
        AccountId::Mp { .. } | AccountId::Authorizer { .. } => Ok(()),
        other => Err(ServiceError::NotFound(format!(
            "diagnostics are for mp and authorizer accounts, not {}",
            other.kind()
        ))),
    }
}

/// The clears recorded for `month`.
fn used_in(clears: Option<&QuotaClears>, month: &str) -> u32 {
    clears.filter(|c| c.month == month).map_or(0, |c| c.used)
}

impl Accounts {
    /// WeChat's month now: `YYYY-MM` in +08:00.
    fn quota_month(&self) -> String {
        (self.engine.now() + TimeDelta::hours(8)).format("%Y-%m").to_string()
    }

    /// How many of this month's clears an account used, from its view.
    pub fn clears_used_this_month(&self, a: &super::AccountView) -> u32 {
        used_in(a.quota_clears.as_ref(), &self.quota_month())
    }

    /// WeChat's quota of `cgi_path` for the account (`openapi/quota/get`,
    /// with the account's own token).
    pub async fn quota(&self, id: &AccountId, cgi_path: &str) -> Result<Quota> {
        diagnosable(id)?;
        self.engine.inner.account(id).await?;
        let up = &self.engine.inner.upstream;
        Ok(self
            .engine
            .inner
            .upstream_with_token(id, move |t| async move { up.quota(&t, cgi_path).await })
            .await?)
    }

    /// The failed request `rid` names (`openapi/rid/get`).
    pub async fn rid(&self, id: &AccountId, rid: &str) -> Result<RidRequest> {
        diagnosable(id)?;
        self.engine.inner.account(id).await?;
        let up = &self.engine.inner.upstream;
        Ok(self
            .engine
            .inner
            .upstream_with_token(id, move |t| async move { up.rid(&t, rid).await })
            .await?)
    }

    /// Clears the account's daily API counts: an `mp` with its own token
    /// (`clear_quota`), an authorizer through its component's secret
    /// (`component/clear_quota/v2`, which works even when the authorizer's
    /// quota is spent). Each success is counted for the month (+08:00).
    pub async fn clear_quota(&self, id: &AccountId) -> Result<Cleared> {
        diagnosable(id)?;
        let mut account = self.engine.inner.account(id).await?;
        let up = &self.engine.inner.upstream;
        let outcome = match id {
            AccountId::Authorizer { component_appid, appid } => {
                let component = self
                    .engine
                    .inner
                    .account(&AccountId::Component {
                        appid: component_appid.clone(),
                    })
                    .await?;
                let secret = component
                    .secrets
                    .secret
                    .as_ref()
                    .ok_or_else(|| ServiceError::Invalid(format!("component {component_appid} has no secret")))?;
                up.component_clear_quota(component_appid.as_str(), secret.expose(), appid.as_str())
                    .await
            }
            AccountId::Mp { appid } => {
                let appid = appid.as_str();
                let r = self
                    .engine
                    .inner
                    .upstream_with_token(id, move |t| async move { up.clear_quota(&t, appid).await })
                    .await;
                match r {
                    Ok(()) => Ok(()),
                    Err(super::failure::FetchError::Own(e)) => Err(e),
                    Err(other) => return Err(other.into()),
                }
            }
            _ => unreachable!("checked by diagnosable"),
        };
        let month = self.quota_month();
        let used = used_in(account.config.quota_clears.as_ref(), &month);
        match outcome {
            Ok(()) => {
                account.config.quota_clears = Some(QuotaClears { month, used: used + 1 });
                account.updated_at = self.engine.now_ms();
                self.engine
                    .inner
                    .store
                    .update_account(&account.seal(&self.engine.inner.key), false, &[])
                    .await?;
                // The quota is back: lift a 45009 block at once.
                self.accounts.clear_blocks(id, self.engine.now_ms()).await?;
                tracing::info!(account = %id, used_this_month = used + 1, "quota cleared");
                Ok(Cleared {
                    used_this_month: used + 1,
                    refused: None,
                })
            }
            Err(e) if e.errcode() > 0 => Ok(Cleared {
                used_this_month: used,
                refused: Some(e),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
