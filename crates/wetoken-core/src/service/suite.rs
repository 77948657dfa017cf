//! The WeCom third-party flow (SPEC §1, §5): suite tickets WeCom pushes,
//! installs (`create_auth`, `reset_permanent_code`), changes and
//! cancellations, and the corps a suite serves. Tokens themselves are fetched
//! by the engine like any other credential.

use super::{ChildStatus, CorpEntry, Platforms, Result, ServiceError};
use crate::account::Account;
use crate::clock::from_millis;
use crate::domain::{AccountId, Ident};
use crate::events::NewEvent;
use crate::secret::Secret;
use crate::upstream::Install;

fn suite_id(id: &AccountId) -> Result<&Ident> {
    match id {
        AccountId::Suite { suite_id } => Ok(suite_id),
        other => Err(ServiceError::Invalid(format!("{other} is not a suite"))),
    }
}

/// Records what WeCom answered about an install (get_permanent_code or
/// get_auth_info): its agentid (the first agent listed; kept when none is)
/// and its authorization info.
fn record_install(a: &mut Account, i: &Install) {
    a.config.agentid = i.agentid.clone().or(a.config.agentid.take());
    a.config.auth_info = Some(i.authorization.clone());
}

impl Platforms {
    /// `create_auth` or `reset_permanent_code`: exchanges the temporary auth
    /// code with get_permanent_code, and stores the corp with its permanent
    /// code (sealed), agentid and authorization info, and the token that came
    /// with it. `at` is the event's TimeStamp (ms), now when absent. A code
    /// already exchanged changes nothing but `events`, which are committed
    /// with the corp.
    pub async fn install(
        &self,
        suite: &AccountId,
        auth_code: &str,
        at: Option<i64>,
        events: &[NewEvent],
    ) -> Result<AccountId> {
        let s = suite_id(suite)?.clone();
        self.engine.inner.account(suite).await?;
        if let Some(id) = self.exchanged(suite, None, auth_code).await? {
            self.events.append_events(events).await?;
            return Ok(id);
        }
        let up = &self.engine.inner.upstream;
        let install = self
            .engine
            .inner
            .upstream_with_token(suite, move |t| async move { up.permanent_code(&t, auth_code).await })
            .await?;
        let corpid = Ident::parse("auth_corp_info.corpid", &install.corpid).map_err(|e| ServiceError::Invalid(e.0))?;
        let id = AccountId::Corp { suite_id: s, corpid };
        let at = at.unwrap_or_else(|| self.engine.inner.now_ms());
        let permanent = install.permanent_code.clone().map(Secret::new);
        self.upsert_child(&id, at, Some(auth_code), true, events, |a| {
            a.secrets.permanent_code = permanent;
            record_install(a, &install);
        })
        .await?;
        self.keep_token(&id, install.token.as_ref()).await?;
        Ok(id)
    }

    /// `change_auth`: re-reads the corp's authorization with get_auth_info
    /// (idempotent, so a replay changes nothing); its credentials stay. A corp
    /// wetoken does not know is ignored.
    pub async fn change_auth(&self, suite: &AccountId, corpid: &Ident, at: i64, events: &[NewEvent]) -> Result<bool> {
        let id = AccountId::Corp {
            suite_id: suite_id(suite)?.clone(),
            corpid: corpid.clone(),
        };
        let Ok(corp) = self.engine.inner.account(&id).await else {
            self.events.append_events(events).await?;
            return Ok(false);
        };
        let permanent = corp
            .secrets
            .permanent_code
            .clone()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        let up = &self.engine.inner.upstream;
        let (c, p) = (corpid.as_str(), permanent.as_str());
        let install = self
            .engine
            .inner
            .upstream_with_token(suite, move |t| async move { up.auth_info(&t, c, p).await })
            .await?;
        let at = at.max(corp.config.authorized_at.unwrap_or(at));
        self.upsert_child(&id, at, None, false, events, |a| record_install(a, &install))
            .await?;
        Ok(true)
    }

    /// `cancel_auth`: the corp uninstalled the app; revoked, credentials dropped.
    pub async fn cancel_auth(&self, suite: &AccountId, corpid: &Ident, at: i64, events: &[NewEvent]) -> Result<bool> {
        let id = AccountId::Corp {
            suite_id: suite_id(suite)?.clone(),
            corpid: corpid.clone(),
        };
        self.revoke_child(&id, at, events).await
    }

    /// The agentid an account's tickets are for: a work app's own, a corp's
    /// install's.
    pub async fn agentid(&self, id: &AccountId) -> Result<Option<String>> {
        if let AccountId::Work { agentid, .. } = id {
            return Ok(Some(agentid.to_string()));
        }
        Ok(self.engine.inner.account(id).await?.config.agentid)
    }

    /// The corps that installed a suite and did not cancel (SPEC §3).
    pub async fn corps(&self, suite: &AccountId, after: Option<&str>, limit: i64) -> Result<super::Page<CorpEntry>> {
        suite_id(suite)?;
        let page = self.live_children(suite, after, limit).await?;
        let mut out = Vec::new();
        for a in page.items {
            let AccountId::Corp { corpid, .. } = &a.id else {
                continue;
            };
            out.push(CorpEntry {
                corpid: corpid.clone(),
                agentid: a.config.agentid.clone(),
                authorized_at: from_millis(a.config.authorized_at.unwrap_or(a.created_at)),
                status: ChildStatus::of(&a),
            });
        }
        Ok(super::Page {
            items: out,
            next_cursor: page.next_cursor,
        })
    }
}
