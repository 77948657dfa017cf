//! The one write path of what a fetch got from WeChat: the value sealed,
//! its hash (so a presented token can be traced to its account), its
//! expiry as WeChat said, its next refresh (`due_at`), a rotated
//! authorizer_refresh_token in the same transaction, and the cache. And the
//! one way a failure is recorded.

use super::alerts;
use super::failure::{self, FetchError};
use super::{Inner, Issued, Result};
use crate::account::Account;
use crate::clock::{from_millis, to_millis};
use crate::domain::{AccountId, Credential};
use crate::secret::Secret;
use crate::store::{CredentialState, FailureWrite, RefreshWrite, Sealed};
use crate::timing;
use crate::upstream::Fetched;

/// WeChat keeps a replaced token working this long.
pub(super) const GRACE_MS: i64 = 300_000;

impl Inner {
    /// Writes a fetched value under this instance's lease (and the account's
    /// new secrets, if WeChat rotated its refresh token). The value is
    /// answered even when the lease was lost meanwhile: it is valid (WeChat's
    /// grace), only not the stored one. `prev` is the row as read before the
    /// lease was taken at its version: what the alerts are decided from.
    /// A proactive refresh updates this process's cache only where it
    /// holds the credential already: the wave of due refreshes never
    /// pushes out what readers read (SPEC §16).
    pub(super) async fn write_fetched(
        &self,
        account: &Account,
        trigger: super::Trigger,
        cred: Credential,
        f: &Fetched,
        unchanged: bool,
        prev: Option<&CredentialState>,
    ) -> Result<Issued> {
        let rotated = f.rotated_refresh_token.as_ref().map(|r| {
            let mut a = account.clone();
            a.secrets.refresh_token = Some(Secret::new(r.clone()));
            a.seal(&self.key).secrets
        });
        let written = self
            .write_value(&account.id, cred, f, unchanged, rotated.as_ref(), prev)
            .await?;
        Ok(self.cached(&account.id, cred, written, trigger != super::Trigger::Proactive))
    }

    async fn write_value(
        &self,
        id: &AccountId,
        cred: Credential,
        f: &Fetched,
        unchanged: bool,
        account_secrets: Option<&Sealed>,
        prev: Option<&CredentialState>,
    ) -> Result<(Issued, bool)> {
        let now = self.now_ms();
        let expires_at = now + f.expires_in * 1000;
        let ahead = self.cfg.refresh_ahead.as_millis() as i64;
        let events = alerts::on_success(prev, id, cred, now);
        let written = self
            .store
            .complete_refresh(&RefreshWrite {
                account: id,
                credential: cred,
                owner: &self.cfg.instance_id,
                value: &self.key.seal(&f.value, &crate::store::binding(id, cred.as_str())),
                value_hash: &crate::keys::hash_key(&f.value),
                previous_until: now + GRACE_MS,
                expires_at,
                refreshed_at: now,
                due_at: timing::due_after_fetch(now, expires_at, ahead, Self::jitter(), unchanged),
                account_secrets,
                events: &events,
            })
            .await?;
        if written.is_some() {
            self.committed(&events);
        }
        if written.is_none() {
            tracing::warn!(account = %id, %cred, "lease lost during refresh");
        }
        let issued = Issued {
            value: f.value.clone(),
            expires_at: from_millis(expires_at),
            verified_at: None,
        };
        Ok((issued, written.is_some()))
    }

    /// A value this instance wrote, into its cache — added (`admit`), or
    /// only replacing a value held (a proactive refresh: the wave never
    /// pushes out what readers read, SPEC §16).
    fn cached(&self, id: &AccountId, cred: Credential, (issued, written): (Issued, bool), admit: bool) -> Issued {
        if written {
            let (key, now, expires_at) = ((id.clone(), cred), self.now_ms(), to_millis(issued.expires_at));
            if admit {
                self.cache.put(&key, issued.value.clone(), expires_at, now);
            } else {
                self.cache.update(&key, &issued.value, expires_at, now);
            }
        }
        issued
    }

    /// Stores a value obtained outside a refresh (the token api_query_auth or
    /// get_permanent_code answers with) as a refresh would, under the lease.
    /// Skipped if another instance holds the lease.
    pub(super) async fn store_obtained(&self, id: &AccountId, cred: Credential, f: &Fetched) -> Result<()> {
        let row = self.store.credential(id, cred).await?;
        let seen = row.as_ref().map_or(0, |r| r.version);
        let lease_ms = self.cfg.lease.as_millis() as i64;
        if self
            .store
            .try_lease(id, cred, &self.cfg.instance_id, seen, lease_ms)
            .await?
        {
            let written = self.write_value(id, cred, f, false, None, row.as_ref()).await?;
            self.cached(id, cred, written, true);
        }
        Ok(())
    }

    /// Records a failed fetch under this instance's lease (releasing it) and
    /// returns the error to answer. If the lease was lost meanwhile (this
    /// instance stalled past it), the failure is not recorded, and the
    /// value the next holder wrote, if valid, is answered instead. `prev`
    /// is the row as read before the lease was taken at its version.
    pub(super) async fn write_failure(
        &self,
        id: &AccountId,
        cred: Credential,
        e: FetchError,
        prev: Option<&CredentialState>,
    ) -> Result<Issued> {
        let now = self.now_ms();
        let attempts = prev.map_or(0, |r| r.attempts) + 1;
        let f = failure::classify(&e, cred, now, attempts, Self::jitter());
        let events = alerts::on_failure(prev, id, cred, now, &f.error, f.blocked_until, attempts);
        tracing::warn!(account = %id, %cred, errcode = f.error.errcode, errmsg = %f.error.errmsg, attempts, "refresh failed");
        let written = self
            .store
            .record_failure(&FailureWrite {
                account: id,
                credential: cred,
                owner: &self.cfg.instance_id,
                error: &f.error,
                blocked_until: f.blocked_until,
                due_at: f.due_at,
                attempts,
                events: &events,
            })
            .await?;
        if written {
            self.committed(&events);
        } else {
            tracing::warn!(account = %id, %cred, "lease lost during a failed refresh; not recorded");
            let row = self.store.credential(id, cred).await?;
            if let Some(issued) = self.usable(&(id.clone(), cred), row.as_ref(), self.now_ms()) {
                return Ok(issued);
            }
        }
        Err(e.into())
    }
}
