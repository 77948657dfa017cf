//! Passive refresh, verified (SPEC §2): a caller's report that WeChat
//! rejected a value rotates nothing until WeChat itself says the value is
//! dead. Rotating a good token kills the one every other system holds and
//! spends a quota WeChat counts in tens a day, so:
//!
//! 1. a report of a value that is no longer current answers the current one;
//! 2. a report of the current access token asks WeChat (`Upstream::probe`,
//!    a call that costs no business quota and changes nothing), and the
//!    verdict is remembered on the row, cluster-wide, for
//!    `WETOKEN_VERIFY_TTL_SECS`: a value WeChat accepts is answered again
//!    with `verified_at`, and nothing is fetched;
//! 3. a value WeChat rejects (or that cannot be asked about: tickets, a
//!    suite's or provider's token) is replaced within the cluster-wide
//!    interval budget (`WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS`): a stable
//!    token first in normal mode, which answers a new token when WeChat
//!    already rotated it, and forced only when normal mode answers the same
//!    dead value;
//! 4. forced stable-token calls are capped per credential per WeChat day
//!    (`WETOKEN_MAX_FORCED_PER_DAY`, on the database's clock); the first
//!    refusal of a day raises `wetoken.credential.force_budget_spent`.
//!
//! A refresh asked without a stale value (admin, console) is a force
//! refresh under the same interval and cap, without asking WeChat.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::lease::Plan;
use super::{Inner, Issued, Result, ServiceError, failure};
use crate::account::Account;
use crate::clock::from_millis;
use crate::domain::{AccountId, Credential, TokenApi};
use crate::events::{NewEvent, types};
use crate::store::{CredentialState, ForceBudget, Verdict};

impl Inner {
    /// The passive refresh decision, in this process's turn on the credential.
    pub(super) async fn refresh_locked(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        stale: Option<&str>,
    ) -> Result<Issued> {
        let key = (account.id.clone(), cred);
        let now = self.now_ms();
        let row = self.store.credential(&account.id, cred).await?;
        let current = self.usable(&key, row.as_ref(), now);
        match (stale, current) {
            // Someone already replaced the value the caller saw rejected.
            (Some(stale), Some(cur)) if cur.value != stale => Ok(cur),
            // No valid value: a fetch due to expiry, not a refresh.
            (Some(_), None) => {
                self.not_blocked(row.as_ref(), now)?;
                let plan = Plan::passive(cred, row, false, None);
                self.refresh_from(account, plan).await
            }
            (Some(_), Some(cur)) => {
                if let Some(at) = self.verdict(&account.id, cred, row.as_ref(), &cur.value).await? {
                    return Ok(Issued {
                        verified_at: Some(at),
                        ..cur
                    });
                }
                self.spend_refresh_budget(&account.id, cred).await?;
                self.not_blocked(row.as_ref(), now)?;
                self.rotate(account, cred, row, cur.value).await
            }
            (None, Some(cur)) => {
                self.spend_refresh_budget(&account.id, cred).await?;
                self.not_blocked(row.as_ref(), now)?;
                self.force(account, cred, row, cur.value).await
            }
            // Nothing valid to force away: a fetch, within the interval.
            (None, None) => {
                self.spend_refresh_budget(&account.id, cred).await?;
                self.not_blocked(row.as_ref(), now)?;
                self.refresh_from(account, Plan::passive(cred, row, false, None)).await
            }
        }
    }

    fn not_blocked(&self, row: Option<&CredentialState>, now: i64) -> Result<()> {
        match row.and_then(|r| failure::blocked(r, now)) {
            Some(blocked) => Err(blocked),
            None => Ok(()),
        }
    }

    /// When WeChat said it still accepts `value`, the current value of an
    /// access token: remembered on the row for the verify TTL, else asked
    /// now. None when WeChat rejects it, or when there is no call to ask
    /// with (tickets, suite and provider tokens). A probe that fails for
    /// another reason (network, -1) is the answer: without a verdict
    /// nothing rotates.
    async fn verdict(
        &self,
        id: &AccountId,
        cred: Credential,
        row: Option<&CredentialState>,
        value: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        if cred != Credential::AccessToken {
            return Ok(None);
        }
        let now = self.now_ms();
        let ttl = self.cfg.verify_ttl.as_millis() as i64;
        if let Some(v) = row.and_then(|r| r.verdict).filter(|v| v.at <= now && now - v.at < ttl) {
            return Ok(v.alive.then(|| from_millis(v.at)));
        }
        let Some(answer) = self.upstream.probe(id.kind(), value).await else {
            return Ok(None);
        };
        let alive = match answer {
            Ok(()) => true,
            Err(e) if e.is_token_rejected() => false,
            Err(e) => return Err(e.into()),
        };
        let verdict = if alive { "alive" } else { "rejected" };
        metrics::counter!("wetoken_verifications_total", "kind" => id.kind().as_str(), "verdict" => verdict)
            .increment(1);
        tracing::info!(account = %id, %cred, verdict, "asked WeChat about a value reported rejected");
        let version = row.map_or(0, |r| r.version);
        self.store
            .record_verdict(id, cred, version, Verdict { alive, at: now })
            .await?;
        Ok(alive.then(|| from_millis(now)))
    }

    /// One refresh on request per credential per interval, cluster-wide.
    async fn spend_refresh_budget(&self, id: &AccountId, cred: Credential) -> Result<()> {
        let interval = self.cfg.force_refresh_min_interval;
        if self
            .store
            .try_mark_forced(id, cred, interval.as_millis() as i64)
            .await?
        {
            return Ok(());
        }
        Err(ServiceError::RateLimited(format!(
            "{cred} of {id} was refreshed on request less than {} s ago: it is refreshed at most once per interval \
             (WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS)",
            interval.as_secs()
        )))
    }

    /// Replaces a value WeChat rejects: normal mode first, forced only
    /// when normal mode answers the same dead value.
    async fn rotate(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        row: Option<CredentialState>,
        dead: String,
    ) -> Result<Issued> {
        let plan = Plan::passive(cred, row, false, Some(dead.clone()));
        let fresh = self.clone().refresh_from(account.clone(), plan).await?;
        if fresh.value != dead || !forcible(&account, cred) {
            return Ok(fresh);
        }
        let row = self.store.credential(&account.id, cred).await?;
        self.force(account, cred, row, dead).await
    }

    /// A forced fetch; a stable token's within the day's cap.
    async fn force(
        self: Arc<Self>,
        account: Account,
        cred: Credential,
        row: Option<CredentialState>,
        previous: String,
    ) -> Result<Issued> {
        if forcible(&account, cred) {
            self.spend_force_budget(&account.id, cred).await?;
        }
        self.refresh_from(account, Plan::passive(cred, row, true, Some(previous)))
            .await
    }

    async fn spend_force_budget(&self, id: &AccountId, cred: Credential) -> Result<()> {
        let max = i64::from(self.cfg.max_forced_per_day);
        let events = [NewEvent::credential(
            types::FORCE_BUDGET_SPENT,
            id,
            cred,
            self.now_ms(),
            &[("max_per_day", max.into())],
        )];
        match self.store.try_force_today(id, cred, max, &events).await? {
            ForceBudget::Granted => Ok(()),
            ForceBudget::Spent { first } => {
                if first {
                    self.committed(&events);
                }
                Err(ServiceError::RateLimited(format!(
                    "{cred} of {id} was forced {max} times today (WETOKEN_MAX_FORCED_PER_DAY; WeChat allows 20 a \
                     day): no more forced refreshes until 00:00 +08:00"
                )))
            }
        }
    }
}

/// Whether fetching `cred` can be forced: an `mp` account's stable token
/// (classic `/cgi-bin/token` always issues a new one; other kinds have no
/// force).
fn forcible(account: &Account, cred: Credential) -> bool {
    cred == Credential::AccessToken
        && matches!(account.id, AccountId::Mp { .. })
        && account.config.token_api == TokenApi::Stable
}
