//! Accounts that hang under another: authorizers under a component, corps
//! under a suite. WeChat's events create, change and revoke them; the rules
//! are the same for both, so they live here once:
//!
//! - an authorization is known by its code (the SHA-256 of the last few is
//!   kept): an event carrying a code already exchanged is a replay and
//!   changes nothing; a
//!   new code is always exchanged, whatever its timestamp (two events of
//!   one second are two authorizations);
//! - a new authorization drops every credential of the previous one;
//! - a revocation older than the latest authorization changes nothing.

use super::{Platforms, Result, ServiceError};
use crate::account::{Account, AccountConfig, AccountStatus, Secrets};
use crate::domain::{AccountId, Credential};
use crate::events::{NewEvent, types};
use crate::store::AccountQuery;
use crate::upstream::Fetched;

/// WeChat keeps a component_verify_ticket valid for 12 hours.
const VERIFY_TICKET_LIFE_MS: i64 = 12 * 3600 * 1000;
/// WeCom keeps a suite_ticket valid for 30 minutes.
const SUITE_TICKET_LIFE_MS: i64 = 30 * 60 * 1000;

/// The id prefix of a parent's children: `authorizer:{c}:`, `corp:{s}:`.
fn children_prefix(parent: &AccountId) -> String {
    match parent {
        AccountId::Component { appid } => format!("authorizer:{appid}:"),
        AccountId::Suite { suite_id } => format!("corp:{suite_id}:"),
        // No other kind has children: a prefix no id has.
        other => format!("{other}:"),
    }
}

impl Platforms {
    /// Stores a ticket WeChat pushed to a component (component_verify_ticket)
    /// or WeCom to a suite (suite_ticket) at `create_time` (seconds),
    /// committed before returning with `events` (the callback's). False when
    /// a newer ticket is already stored (a replay or a late push). The ticket
    /// is due, for `wetoken.ticket.stale`, `stale_ticket` after it was pushed.
    pub async fn ticket_pushed(
        &self,
        parent: &AccountId,
        ticket: &str,
        create_time: i64,
        events: &[NewEvent],
    ) -> Result<bool> {
        let (cred, life) = match parent {
            AccountId::Component { .. } => (Credential::VerifyTicket, VERIFY_TICKET_LIFE_MS),
            AccountId::Suite { .. } => (Credential::SuiteTicket, SUITE_TICKET_LIFE_MS),
            other => return Err(ServiceError::Invalid(format!("{other} is pushed no tickets"))),
        };
        self.engine.inner.account(parent).await?;
        let at = create_time.saturating_mul(1000);
        let sealed = self
            .engine
            .inner
            .key
            .seal(ticket, &crate::store::binding(parent, cred.as_str()));
        let stored = self
            .engine
            .inner
            .store
            .put_pushed(&crate::store::PushWrite {
                account: parent,
                credential: cred,
                value: &sealed,
                expires_at: at + life,
                at,
                stale_at: at + self.engine.inner.cfg.stale_ticket.as_millis() as i64,
                events,
            })
            .await?;
        Ok(stored.is_some())
    }

    /// The child of `parent` whose authorization was made with `code`, if
    /// that code was already exchanged: `child` when the event names it,
    /// else any child of `parent`.
    pub(super) async fn exchanged(
        &self,
        parent: &AccountId,
        child: Option<&AccountId>,
        code: &str,
    ) -> Result<Option<AccountId>> {
        let candidates = match child {
            Some(id) => self.accounts.account(id).await?.into_iter().collect(),
            None => self.engine.inner.with_prefix(&children_prefix(parent)).await?,
        };
        Ok(candidates
            .into_iter()
            .find(|a| a.config.has_exchanged(code))
            .map(|a| a.id))
    }

    /// Creates, or re-activates, a child authorized at `at` (ms) with `code`
    /// (None for a change of an existing authorization), with `set` applied
    /// to it, and commits `events` with it. A new authorization
    /// (`drop_credentials`) drops the credentials of the previous one; a
    /// changed one keeps them.
    pub(super) async fn upsert_child(
        &self,
        id: &AccountId,
        at: i64,
        code: Option<&str>,
        drop_credentials: bool,
        events: &[NewEvent],
        set: impl FnOnce(&mut Account),
    ) -> Result<()> {
        let now = self.engine.inner.now_ms();
        let existing = self.engine.inner.any_account(id).await?;
        let known = existing.is_some();
        let mut a = match existing {
            Some(a) => a,
            None => Account {
                id: id.clone(),
                secrets: Secrets::default(),
                config: AccountConfig::default(),
                status: AccountStatus::Active,
                created_at: now,
                updated_at: now,
            },
        };
        set(&mut a);
        // The latest authorization's instant: an older event applied late
        // does not let an older revocation through.
        a.config.authorized_at = Some(a.config.authorized_at.map_or(at, |t| t.max(at)));
        if let Some(code) = code {
            a.config.exchanged(code);
        }
        a.status = AccountStatus::Active;
        a.updated_at = now;
        let stored = a.seal(&self.engine.inner.key);
        if known {
            self.engine
                .inner
                .store
                .update_account(&stored, drop_credentials, events)
                .await?;
        } else {
            self.accounts.insert_account(&stored, events).await?;
        }
        self.engine.forget(id);
        tracing::info!(account = %id, "authorized");
        Ok(())
    }

    /// Revokes a child (an `unauthorized` / `cancel_auth` at `at` ms) and
    /// drops its credentials, unless it authorized again since, committing
    /// `events` and `wetoken.account.revoked` with it (`events` alone when
    /// nothing changes). Whether it did.
    pub(super) async fn revoke_child(&self, id: &AccountId, at: i64, events: &[NewEvent]) -> Result<bool> {
        let Some(mut a) = self.engine.inner.any_account(id).await? else {
            self.events.append_events(events).await?;
            return Ok(false);
        };
        if a.status == AccountStatus::Revoked || a.config.authorized_at.is_some_and(|t| t > at) {
            self.events.append_events(events).await?;
            return Ok(false);
        }
        let now = self.engine.inner.now_ms();
        a.status = AccountStatus::Revoked;
        a.updated_at = now;
        let mut all = events.to_vec();
        all.push(NewEvent::new(types::REVOKED, id, now, serde_json::Map::new()));
        self.engine
            .inner
            .store
            .update_account(&a.seal(&self.engine.inner.key), true, &all)
            .await?;
        self.engine.inner.committed(&all[events.len()..]);
        self.engine.forget(id);
        tracing::info!(account = %id, "revoked");
        Ok(true)
    }

    /// A page of the parent's children that are not revoked, ordered by id,
    /// after the child whose last id segment (appid, corpid) is `after`.
    pub(super) async fn live_children(
        &self,
        parent: &AccountId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<super::Page<Account>> {
        self.engine.inner.account(parent).await?;
        let prefix = children_prefix(parent);
        let q = AccountQuery {
            after: after.map(|a| format!("{prefix}{a}")),
            prefix,
            not_status: Some(AccountStatus::Revoked),
            limit,
            ..Default::default()
        };
        let mut out = Vec::new();
        for stored in self.accounts.accounts_page(&q).await? {
            out.push(self.engine.inner.open_account(stored)?);
        }
        Ok(super::Page::of(out, limit, |a| {
            a.id.to_string().rsplit(':').next().unwrap_or_default().to_owned()
        }))
    }

    /// Stores the token an authorization came with (api_query_auth's,
    /// get_permanent_code's), so the first read needs no upstream call.
    pub(super) async fn keep_token(&self, id: &AccountId, token: Option<&Fetched>) -> Result<()> {
        match token {
            Some(t) => self.engine.inner.store_obtained(id, Credential::AccessToken, t).await,
            None => Ok(()),
        }
    }
}
