//! The database lease (SPEC §2 "one refresher"): with no valid value, a
//! caller takes the lease on the credential row with a conditional UPDATE at
//! the version it saw. Only the holder calls WeChat; another instance waits
//! for the holder's write, bounded by the upstream timeout plus 2 s. The
//! fetch runs in its own task, so a caller that goes away does not strand
//! the lease: the result is written (or the failure recorded) either way.

use std::sync::Arc;
use std::time::Duration;

use super::failure::FetchError;
use super::{Inner, Issued, Result, ServiceError, Trigger, failure, not_found};
use crate::account::Account;
use crate::domain::Credential;
use crate::store::CredentialState;
use crate::upstream::UpstreamError;

/// How a refresh proceeds once it has decided to call WeChat.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub cred: Credential,
    /// The row as read before the lease: the lease is taken at its version,
    /// and the write decides its alerts from it (no second read).
    pub row: Option<CredentialState>,
    /// stable_token `force_refresh` (the current value was rejected).
    pub force: bool,
    pub trigger: Trigger,
    /// Wait for another instance's lease (readers) or give up (scheduler).
    pub wait: bool,
    /// The value held before, to notice an unchanged answer.
    pub previous: Option<String>,
}

impl Plan {
    /// A refresh a caller asked for, waiting for another holder's lease.
    pub(super) fn passive(
        cred: Credential,
        row: Option<CredentialState>,
        force: bool,
        previous: Option<String>,
    ) -> Self {
        Plan {
            cred,
            row,
            force,
            trigger: Trigger::Passive,
            wait: true,
            previous,
        }
    }

    /// The version the lease is taken at (0: no row yet).
    pub fn seen(&self) -> i64 {
        self.row.as_ref().map_or(0, |r| r.version)
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Upstream calls one lease must cover: a ticket's call and its retry after
/// the token was refreshed. `serve` refuses a lease not longer than this
/// many upstream timeouts, and the holder's work is cut off before its
/// lease ends (a late write would be refused anyway: fencing).
pub const ATTEMPTS_PER_LEASE: u32 = 2;

/// How long a reader polls another holder's lease: first and longest gap.
const FIRST_POLL: Duration = Duration::from_millis(20);
const LONGEST_POLL: Duration = Duration::from_millis(500);

impl Inner {
    /// Takes the lease at the version of `plan.row` and fetches, or waits
    /// for whoever holds it.
    /// Boxed: a ticket's fetch recurses into its access token's refresh.
    pub(super) fn refresh_from(self: Arc<Self>, account: Account, plan: Plan) -> BoxFuture<'static, Result<Issued>> {
        Box::pin(self.take_or_wait(account, plan))
    }

    async fn take_or_wait(self: Arc<Self>, account: Account, mut plan: Plan) -> Result<Issued> {
        let cred = plan.cred;
        let key = (account.id.clone(), cred);
        let started = self.now_ms();
        let waiting_since = tokio::time::Instant::now();
        let deadline = waiting_since + self.cfg.upstream_timeout + Duration::from_secs(2);
        let mut backoff = FIRST_POLL;
        let mut waited = false;
        let lease_ms = self.cfg.lease.as_millis() as i64;
        loop {
            if self
                .store
                .try_lease(&account.id, cred, &self.cfg.instance_id, plan.seen(), lease_ms)
                .await?
            {
                if waited {
                    metrics::histogram!("wetoken_lease_wait_seconds").record(waiting_since.elapsed().as_secs_f64());
                }
                // Run the fetch in its own task: if the caller goes away the
                // lease is still written or released.
                let this = self.clone();
                let account = account.clone();
                let plan = plan.clone();
                return tokio::spawn(async move { this.fetch_and_store(account, plan).await })
                    .await
                    .map_err(|e| ServiceError::Unavailable(format!("refresh task failed: {e}")))?;
            }
            if !plan.wait {
                return Err(ServiceError::Unavailable(format!(
                    "{cred} of {} is being refreshed elsewhere",
                    account.id
                )));
            }
            // Another holder: wait for its write.
            if !waited {
                waited = true;
                metrics::counter!("wetoken_lease_waits_total").increment(1);
            }
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(ServiceError::Unavailable(format!(
                    "{cred} of {} is being refreshed by another instance; try again",
                    account.id
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(LONGEST_POLL);
            let Some(row) = self.store.credential(&account.id, cred).await? else {
                return Err(not_found(&account.id));
            };
            let now = self.now_ms();
            if row.version > plan.seen()
                && let Some(v) = self.usable(&key, Some(&row), now)
            {
                metrics::histogram!("wetoken_lease_wait_seconds").record(waiting_since.elapsed().as_secs_f64());
                return Ok(v);
            }
            let lease_free = row.lease_until.is_none_or(|u| u < now);
            if lease_free && row.last_error.as_ref().is_some_and(|e| e.at >= started) {
                // The holder failed while we waited: answer its error rather
                // than calling WeChat again at once.
                return Err(failure::recorded(&row));
            }
            plan.row = Some(row);
        }
    }

    /// Holding the lease: call WeChat and write the outcome.
    async fn fetch_and_store(self: Arc<Self>, account: Account, plan: Plan) -> Result<Issued> {
        let cred = plan.cred;
        // Within the lease, with a second to write the outcome.
        let budget = self
            .cfg
            .lease
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        let outcome = match tokio::time::timeout(budget, self.fetch(&account, cred, plan.force)).await {
            Ok(o) => o,
            Err(_) => Err(FetchError::Own(UpstreamError::Timeout(budget))),
        };
        let result = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("wetoken_refreshes_total", "trigger" => plan.trigger.as_str(), "result" => result)
            .increment(1);
        match outcome {
            Ok(f) => {
                let unchanged = plan.previous.as_deref() == Some(f.value.as_str());
                let issued = self
                    .write_fetched(&account, plan.trigger, cred, &f, unchanged, plan.row.as_ref())
                    .await?;
                tracing::info!(account = %account.id, %cred, trigger = plan.trigger.as_str(), unchanged, expires_in = f.expires_in, "refreshed");
                Ok(issued)
            }
            Err(e) => self.write_failure(&account.id, cred, e, plan.row.as_ref()).await,
        }
    }
}
