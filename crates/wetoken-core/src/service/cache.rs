//! What this process remembers, all on the service's clock (so tests move
//! time for every memo at once):
//!
//! - [`Cache`]: credential values, answered while valid and checked against
//!   the database less than the cache TTL ago. That bound keeps every
//!   instance within WeChat's 5-minute grace after another one refreshed.
//! - [`Memo`]: what a presented token, secret or key resolved to, by its
//!   SHA-256 (the presented text is not kept), for the same TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{OnceLock, RwLock};

use metrics::Counter;

use super::Key;
use crate::clock::from_millis;
use crate::domain::{AccountId, Credential};
use crate::service::Issued;

/// The maps here are read on every request and keyed by what wetoken
/// itself admitted (accounts, and digests of values that were accepted):
/// a fast hasher, seeded per process.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Clone)]
struct Cached {
    value: String,
    expires_at: i64,
    checked_at: i64,
}

/// Credential values, by account then credential: a read borrows the
/// account id (no allocation on a hit).
pub(super) struct Cache {
    map: RwLock<Map<AccountId, [Option<Cached>; Credential::ALL.len()]>>,
    ttl_ms: i64,
    hits: OnceLock<Counter>,
    misses: OnceLock<Counter>,
}

fn slot(c: Credential) -> usize {
    Credential::ALL
        .iter()
        .position(|x| *x == c)
        .expect("every credential has a slot")
}

impl Cache {
    pub(super) fn new(ttl_ms: i64) -> Self {
        Cache {
            map: RwLock::default(),
            ttl_ms,
            hits: OnceLock::new(),
            misses: OnceLock::new(),
        }
    }

    /// A read's first look: [`Cache::fresh`], counted as a hit or a miss.
    pub(super) fn lookup(&self, id: &AccountId, cred: Credential, now: i64) -> Option<Issued> {
        let hit = self.fresh(id, cred, now);
        // Handles are taken on first use, after the binary installed its
        // recorder: no registry lookup per read.
        let counter = match hit {
            Some(_) => self.hits.get_or_init(|| metrics::counter!("wetoken_cache_hits_total")),
            None => self
                .misses
                .get_or_init(|| metrics::counter!("wetoken_cache_misses_total")),
        };
        counter.increment(1);
        hit
    }

    /// A value that is valid at `now` and was checked recently enough.
    pub(super) fn fresh(&self, id: &AccountId, cred: Credential, now: i64) -> Option<Issued> {
        let map = self.map.read().unwrap();
        let c = map.get(id)?[slot(cred)].as_ref()?;
        (c.expires_at > now && now - c.checked_at < self.ttl_ms).then(|| Issued {
            value: c.value.clone(),
            expires_at: from_millis(c.expires_at),
        })
    }

    /// Remembers a value read from, or written to, the database at `now`.
    pub(super) fn put(&self, key: &Key, value: String, expires_at: i64, now: i64) {
        let mut map = self.map.write().unwrap();
        let slots = match map.get_mut(&key.0) {
            Some(s) => s,
            None => map.entry(key.0.clone()).or_default(),
        };
        slots[slot(key.1)] = Some(Cached {
            value,
            expires_at,
            checked_at: now,
        });
    }

    pub(super) fn remove(&self, key: &Key) {
        if let Some(slots) = self.map.write().unwrap().get_mut(&key.0) {
            slots[slot(key.1)] = None;
        }
    }

    /// Keeps the accounts `keep` says yes to.
    pub(super) fn retain(&self, keep: impl Fn(&AccountId) -> bool) {
        self.map.write().unwrap().retain(|id, _| keep(id));
    }

    /// (key, seconds of life left) of every cached value.
    pub(super) fn remaining(&self, now: i64) -> Vec<(Key, f64)> {
        let map = self.map.read().unwrap();
        map.iter()
            .flat_map(|(id, slots)| {
                Credential::ALL.iter().zip(slots).filter_map(move |(cred, c)| {
                    let c = c.as_ref()?;
                    Some(((id.clone(), *cred), ((c.expires_at - now) as f64 / 1000.0).max(0.0)))
                })
            })
            .collect()
    }
}

/// What presented values resolved to, by their hash, with when (ms) that
/// was read.
pub struct Memo<K, V> {
    map: RwLock<Map<K, (V, i64)>>,
    ttl_ms: i64,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    /// At most this many are remembered; beyond, the memo starts over.
    const CAPACITY: usize = 100_000;

    pub fn new(ttl_ms: i64) -> Self {
        Memo {
            map: RwLock::default(),
            ttl_ms,
        }
    }

    pub fn get(&self, k: &K, now: i64) -> Option<V> {
        let map = self.map.read().unwrap();
        let (v, at) = map.get(k)?;
        (now - at < self.ttl_ms).then(|| v.clone())
    }

    pub fn put(&self, k: K, v: V, now: i64) {
        let mut map = self.map.write().unwrap();
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(k, (v, now));
    }

    pub fn retain(&self, keep: impl Fn(&V) -> bool) {
        self.map.write().unwrap().retain(|_, (v, _)| keep(v));
    }

    pub fn clear(&self) {
        self.map.write().unwrap().clear();
    }
}
