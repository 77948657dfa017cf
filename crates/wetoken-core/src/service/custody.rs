//! Custody of the master key (SPEC §2 "the master key cannot be lost
//! silently"):
//!
//! - the database records a check value of every key that sealed data in it
//!   (`wt_master_keys`); before anything runs, [`Custody::check_master_key`]
//!   proves the ring holds each of them, and refuses otherwise — a missing
//!   `master.key` never becomes a new key over sealed data;
//! - [`Custody::rekey`] re-seals everything under the current key,
//!   in batches, compare-and-set (safe to interrupt and re-run), then
//!   forgets the keys nothing is sealed with any more;
//! - a database sealed before key ids existed (v1 values, no checks) is
//!   checked by opening its first account and re-sealed once, at the first
//!   start that sees it.

use super::{Custody, Result};
use crate::account::SECRETS_FIELD;
use crate::secret::{KeyError, MasterKey, Sealed};
use crate::store::{KeyCheck, binding};

/// Accounts read per batch by [`Custody::rekey`].
const BATCH: i64 = 500;

/// Why the ring cannot serve this database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// Data here is sealed with keys the ring does not hold.
    #[error("the database holds data sealed with master key {}, which is not the key given (id {current}) nor one of the old keys", expected.join(", "))]
    Missing { expected: Vec<String>, current: String },
}

/// What [`Custody::rekey`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Values re-sealed under the current key.
    pub resealed: u64,
    /// Values already sealed with it.
    pub current: u64,
    /// Values that changed while being re-sealed, or did not open: left for
    /// the next run.
    pub skipped: u64,
    /// Keys no longer recorded, nothing being sealed with them any more.
    pub retired: Vec<String>,
}

impl Custody {
    /// The id of the key that seals (as `wt_master_keys` records it).
    pub fn master_key_id(&self) -> &str {
        self.engine.inner.key.id()
    }

    /// Proves the ring opens this database (SPEC §2) and records the current
    /// key's check. A database sealed before key ids existed is re-sealed
    /// now, once.
    pub async fn check_master_key(&self) -> Result<std::result::Result<(), KeyProblem>> {
        let key = &self.engine.inner.key;
        let checks = self.keys.key_checks().await?;
        let missing: Vec<String> = checks
            .iter()
            .filter(|c| !key.opens_check(&c.check))
            .map(|c| c.key_id.clone())
            .collect();
        if !missing.is_empty() {
            return Ok(Err(KeyProblem::Missing {
                expected: missing,
                current: key.id().to_owned(),
            }));
        }
        let legacy = if checks.is_empty() {
            let first = crate::store::AccountQuery {
                limit: 1,
                ..Default::default()
            };
            match self.accounts.accounts_page(&first).await?.pop() {
                // A fresh database: nothing sealed yet.
                None => false,
                Some(first) => {
                    if let Err(e) = key.open(&first.secrets, &binding(&first.id, SECRETS_FIELD)) {
                        let expected = match e {
                            KeyError::UnknownKey(id) => id,
                            _ => "(sealed before key ids were recorded)".to_owned(),
                        };
                        return Ok(Err(KeyProblem::Missing {
                            expected: vec![expected],
                            current: key.id().to_owned(),
                        }));
                    }
                    true
                }
            }
        } else {
            false
        };
        if !checks.iter().any(|c| c.key_id == key.id()) {
            let check = KeyCheck {
                key_id: key.id().to_owned(),
                check: key.check_value(),
            };
            self.keys.add_key_check(&check, self.engine.inner.now_ms()).await?;
        }
        if legacy {
            let r = self.rekey().await?;
            tracing::info!(
                resealed = r.resealed,
                skipped = r.skipped,
                "re-sealed a database sealed before key ids"
            );
        }
        Ok(Ok(()))
    }

    /// Re-seals every sealed value under the current key, batch by batch,
    /// compare-and-set: safe to interrupt and run again. When every value is
    /// sealed with the current key, the other keys' checks are removed.
    pub async fn rekey(&self) -> Result<Rekeyed> {
        let key = &self.engine.inner.key;
        let mut out = Rekeyed::default();
        let mut after = None;
        loop {
            let q = crate::store::AccountQuery {
                after: after.take(),
                limit: BATCH,
                ..Default::default()
            };
            let batch = self.accounts.accounts_page(&q).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id.to_string());
            for a in &batch {
                let field = binding(&a.id, SECRETS_FIELD);
                match reseal(key, &a.secrets, &field) {
                    Reseal::Current => out.current += 1,
                    Reseal::Unopenable => out.skipped += 1,
                    Reseal::New(s) if self.accounts.reseal_account(a, &s).await? => out.resealed += 1,
                    Reseal::New(_) => out.skipped += 1,
                }
                for row in self.accounts.credentials(&a.id).await? {
                    let Some(value) = &row.value else { continue };
                    let field = binding(&row.account, row.credential.as_str());
                    match reseal(key, value, &field) {
                        Reseal::Current => out.current += 1,
                        Reseal::Unopenable => out.skipped += 1,
                        Reseal::New(s) if self.accounts.reseal_value(&row, &s).await? => out.resealed += 1,
                        Reseal::New(_) => out.skipped += 1,
                    }
                }
            }
        }
        for w in self.events.webhooks().await? {
            // The secret and the URL together (a URL from before URLs were
            // sealed is sealed now).
            let field = super::events::secret_binding(&w.name);
            let url_current = super::events::is_sealed(&w.url) && key.is_current(&Sealed::from_stored(w.url.as_str()));
            let url = self
                .engine
                .inner
                .webhook_url(&w)
                .ok()
                .map(|u| key.seal(&u, &super::events::url_binding(&w.name)));
            let secret = match reseal(key, &w.secret, &field) {
                Reseal::Current if url_current => {
                    out.current += 1;
                    continue;
                }
                Reseal::Current => w.secret.clone(),
                Reseal::New(s) => s,
                Reseal::Unopenable => {
                    out.skipped += 1;
                    continue;
                }
            };
            match url {
                Some(url) if self.events.reseal_webhook(&w, &secret, &url).await? => out.resealed += 1,
                _ => out.skipped += 1,
            }
        }
        if out.skipped == 0 {
            for c in self.keys.key_checks().await? {
                if c.key_id != key.id() {
                    self.keys.remove_key_check(&c.key_id).await?;
                    out.retired.push(c.key_id);
                }
            }
        }
        Ok(out)
    }
}

enum Reseal {
    Current,
    Unopenable,
    New(Sealed),
}

fn reseal(key: &MasterKey, sealed: &Sealed, field: &str) -> Reseal {
    if key.is_current(sealed) {
        return Reseal::Current;
    }
    match key.open(sealed, field) {
        Ok(plain) => Reseal::New(key.seal(&plain, field)),
        Err(e) => {
            tracing::warn!(field, error = %e, "a stored value cannot be opened; left as it is");
            Reseal::Unopenable
        }
    }
}
