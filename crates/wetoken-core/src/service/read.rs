//! The read decision: a credential's value from the cache, or the row as
//! the database holds it (opened, valid, cached), or — when there is none —
//! a fetch under the lease; and the engine's own `get`, `refresh` and
//! `with_token`, which the fetch path uses instead of the public API.

use std::sync::Arc;

use super::cache::HELD_WAIT;
use super::lease;
use super::{Inner, Issued, Key, Result, ServiceError, TokenCall, Trigger, check_owns, corrupt, failure};
use crate::clock::to_millis;
use crate::domain::{AccountId, Credential};

impl Inner {
    /// [`super::CredentialEngine::get`], inside the engine.
    pub(super) async fn get(self: &Arc<Self>, id: &AccountId, cred: Credential) -> Result<Issued> {
        check_owns(id, cred)?;
        if let Some((hit, recheck)) = self.cache.lookup(id, cred, self.now_ms()) {
            if recheck {
                // Checked against the database before the TTL ends, in
                // turn with any other work on it; nobody waits (SPEC §16).
                let key = (id.clone(), cred);
                let (inner, k) = (self.clone(), key.clone());
                drop(self.read_flight(&key, async move { inner.recheck_locked(&k).await }));
            }
            return Ok(hit);
        }
        let key = (id.clone(), cred);
        let (inner, k) = (self.clone(), key.clone());
        let flight = self.read_flight(&key, async move { inner.get_locked(&k).await });
        // A value still valid, only not checked within the cache TTL: the
        // database is asked, but a reader never waits on it for long
        // (SPEC §16: reads are served from the cache while the database
        // fails over). Unchecked, it is served for another TTL.
        let now = self.now_ms();
        if let Some(held) = self.cache.held(id, cred, now) {
            let unreachable = match tokio::time::timeout(HELD_WAIT, flight.outcome()).await {
                Ok(Err(ServiceError::Store(e))) => e.to_string(),
                Ok(answer) => return answer,
                Err(_) => format!("no answer within {} ms", HELD_WAIT.as_millis()),
            };
            self.cache.recheck_later(&key, now);
            metrics::counter!("wetoken_cache_served_unchecked_total").increment(1);
            tracing::warn!(account = %id, credential = %cred, error = %unreachable,
                "the database did not answer: the cached value, still valid, is served");
            return Ok(held);
        }
        self.bounded(flight).await
    }

    /// [`super::CredentialEngine::refresh`] (SPEC §2 passive rules, `verify`), inside the engine.
    pub(super) async fn refresh(
        self: &Arc<Self>,
        id: &AccountId,
        cred: Credential,
        stale: Option<&str>,
    ) -> Result<Issued> {
        check_owns(id, cred)?;
        if cred.is_pushed() {
            return Err(ServiceError::Invalid(format!(
                "{cred} is pushed by WeChat and cannot be refreshed"
            )));
        }
        let account = self.account(id).await?;
        let (inner, stale) = (self.clone(), stale.map(str::to_owned));
        let flight = self.in_turn((id.clone(), cred), async move {
            inner.refresh_locked(account, cred, stale.as_deref()).await
        });
        self.bounded(flight).await
    }

    /// [`super::CredentialEngine::with_token`], inside the engine: the fetch path calls this one.
    pub(super) async fn with_token<T, F, Fut>(
        self: &Arc<Self>,
        holder: &AccountId,
        call: F,
        rejected: impl Fn(&T) -> bool,
    ) -> Result<TokenCall<T>>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let token = self.get(holder, Credential::AccessToken).await?;
        let first = call(token.value.clone()).await;
        if !rejected(&first) {
            return Ok(TokenCall::Answered(first));
        }
        match self.refresh(holder, Credential::AccessToken, Some(&token.value)).await {
            // WeChat still accepts the token: its answer had another cause.
            Ok(fresh) if fresh.value == token.value => Ok(TokenCall::Answered(first)),
            Ok(fresh) => Ok(TokenCall::Answered(call(fresh.value).await)),
            Err(e) => Ok(TokenCall::RefreshFailed(first, e)),
        }
    }

    /// The plaintext of a row's value, if it has one.
    pub(super) fn open_value(&self, row: &crate::store::CredentialState) -> Result<Option<String>> {
        row.value
            .as_ref()
            .map(|sealed| {
                self.key
                    .open(sealed, &crate::store::binding(&row.account, row.credential.as_str()))
            })
            .transpose()
            .map_err(|e| corrupt(format!("{}/{}: {e}", row.account, row.credential)))
    }

    /// A row's value while it is valid at `now`, opened. A value that does
    /// not open (sealed with a key not given, or moved from another row) is
    /// no value: it is fetched again, and the new one sealed properly.
    pub(super) fn valid(&self, row: &crate::store::CredentialState, now: i64) -> Option<Issued> {
        let expires_at = row.expires_at.filter(|e| *e > now)?;
        let value = self.open_value(row).unwrap_or_else(|e| {
            tracing::warn!(account = %row.account, credential = %row.credential, error = %e, "a stored value does not open; it will be fetched again");
            None
        });
        value.map(|value| Issued {
            value,
            expires_at: crate::clock::from_millis(expires_at),
            verified_at: None,
        })
    }

    /// Records why a due credential cannot be refreshed (its account's
    /// secrets do not open) under the lease, with the failure policy's
    /// backoff.
    pub(super) async fn record_unusable(&self, row: &crate::store::CredentialState, e: &ServiceError) -> Result<()> {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let (id, cred) = (&row.account, row.credential);
        if self
            .store
            .try_lease(id, cred, &self.cfg.instance_id, row.version, lease_ms)
            .await?
        {
            // The recorded error is the answer; only the store's own fails this.
            if let Err(ServiceError::Store(s)) = self
                .write_failure(id, cred, failure::FetchError::Dependency(e.clone()), Some(row))
                .await
            {
                return Err(s.into());
            }
        }
        Ok(())
    }

    /// [`Inner::valid`], and the cache refreshed from it (a row that is gone
    /// is forgotten).
    pub(super) fn usable(&self, key: &Key, row: Option<&crate::store::CredentialState>, now: i64) -> Option<Issued> {
        let Some(row) = row else {
            self.cache.remove(key);
            return None;
        };
        let issued = self.valid(row, now);
        if let Some(i) = &issued {
            self.cache.put(key, i.value.clone(), to_millis(i.expires_at), now);
        }
        issued
    }

    /// A held value checked against its row (the cache refreshed from it);
    /// a row with no valid value is read as a cold read would.
    async fn recheck_locked(self: Arc<Self>, key: &Key) -> Result<Issued> {
        let now = self.now_ms();
        let row = self.store.credential(&key.0, key.1).await?;
        match self.usable(key, row.as_ref(), now) {
            Some(v) => Ok(v),
            None => self.get_locked(key).await,
        }
    }

    pub(super) async fn get_locked(self: Arc<Self>, key: &Key) -> Result<Issued> {
        let now = self.now_ms();
        let (id, cred) = key;
        if let Some(hit) = self.cache.fresh(id, *cred, now) {
            return Ok(hit);
        }
        let row = self.store.credential(id, *cred).await?;
        if let Some(v) = self.usable(key, row.as_ref(), now) {
            return Ok(v);
        }
        let account = self.account(id).await?;
        if cred.is_pushed() {
            return Err(ServiceError::TicketMissing {
                account: id.clone(),
                ticket: *cred,
            });
        }
        if let Some(blocked) = row.as_ref().and_then(|r| failure::blocked(r, now)) {
            return Err(blocked);
        }
        let plan = lease::Plan {
            cred: *cred,
            row,
            force: false,
            trigger: Trigger::Cold,
            wait: true,
            previous: None,
        };
        self.refresh_from(account, plan).await
    }
}
