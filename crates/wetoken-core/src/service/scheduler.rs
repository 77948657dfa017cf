//! The proactive scheduler: refreshes credentials ahead of readers.
//!
//! Deadline order lives in the database: every write sets the credential's
//! `due_at` (see [`crate::timing`]), and each instance asks the store for the
//! rows whose `due_at` has come (`Store::due`, an index range scan, earliest
//! first, limited). Nothing is held in memory per credential, so memory and
//! CPU stay flat with 10 000 accounts, and an instance that starts, or takes
//! over from a dead one, finds the due work where it is.
//!
//! Each due credential is refreshed through [`CredentialEngine::refresh_due`]:
//! the same lease as readers, so only one instance does each; at most
//! `refresh_concurrency` at once per instance, and at most
//! `WETOKEN_MAX_UPSTREAM_RPS` started per second (an even pace, no burst).
//! Jitter in `due_at` spreads credentials that expire together; when more
//! are due than the pace allows, the earliest-expiring go first and
//! `wetoken_refresh_backlog_seconds` says how late the most overdue one is.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{CredentialEngine, Result};
use crate::domain::{AccountId, Credential};
use crate::store::CredentialState;

/// How often an idle scheduler looks for due work.
pub const POLL: Duration = Duration::from_secs(1);
/// Rows read per look.
const BATCH: i64 = 256;

fn key(row: &CredentialState) -> (AccountId, Credential) {
    (row.account.clone(), row.credential)
}

impl CredentialEngine {
    /// Refreshes every credential due now, waiting for each. How many were
    /// attempted. For tests and one-shot use; `serve` runs [`Self::spawn_scheduler`].
    pub async fn run_due_once(&self) -> Result<usize> {
        let now = self.inner.now_ms();
        let rows = self.inner.store.due(now, BATCH).await?;
        let mut n = 0;
        for (id, cred) in rows.iter().map(key) {
            n += 1;
            if let Err(e) = self.refresh_due(&id, cred).await {
                tracing::debug!(account = %id, %cred, error = %e, "proactive refresh failed");
            }
        }
        Ok(n)
    }

    /// Runs the scheduler in the background until the returned handle is
    /// aborted.
    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move { service.schedule_forever().await })
    }

    async fn schedule_forever(self) {
        let permits = Arc::new(Semaphore::new(self.inner.cfg.refresh_concurrency.max(1)));
        let in_flight: Arc<Mutex<HashSet<(AccountId, Credential)>>> = Arc::default();
        let mut pace = tokio::time::interval(Duration::from_secs_f64(
            1.0 / f64::from(self.inner.cfg.max_upstream_rps.max(1)),
        ));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = self.inner.now_ms();
            let rows = match self.inner.store.due(now, BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler cannot read due credentials");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            let full = rows.len() as i64 == BATCH;
            let late = rows
                .iter()
                .filter_map(|r| r.due_at)
                .map(|d| now - d)
                .max()
                .unwrap_or(0)
                .max(0);
            metrics::gauge!("wetoken_refresh_backlog_seconds").set(late as f64 / 1000.0);
            let mut started = 0;
            for key in rows.iter().map(key) {
                if !in_flight.lock().unwrap().insert(key.clone()) {
                    continue;
                }
                // Waits while `refresh_concurrency` refreshes are running,
                // then for the pace of WETOKEN_MAX_UPSTREAM_RPS.
                let permit = permits.clone().acquire_owned().await.expect("semaphore never closed");
                pace.tick().await;
                started += 1;
                let service = self.clone();
                let in_flight = in_flight.clone();
                tokio::spawn(async move {
                    if let Err(e) = service.refresh_due(&key.0, key.1).await {
                        tracing::debug!(account = %key.0, cred = %key.1, error = %e, "proactive refresh failed");
                    }
                    in_flight.lock().unwrap().remove(&key);
                    drop(permit);
                });
            }
            if !(full && started > 0) {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}
