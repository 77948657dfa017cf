//! What this process remembers, all on the service's clock (so tests move
//! time for every memo at once):
//!
//! - [`Cache`]: credential values, answered while valid and checked against
//!   the database less than the cache TTL ago. That bound keeps every
//!   instance within WeChat's 5-minute grace after another one refreshed.
//!   At most `WETOKEN_CACHE_MAX_ENTRIES` values are held: beyond, the
//!   accounts least recently read leave (a tenth at a time, so that eviction
//!   is amortized and a read stores at most one timestamp a second).
//! - [`Memo`]: what a presented token, secret or key resolved to, by its
//!   SHA-256 (the presented text is not kept), for the same TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// One account's cached values, when one of them was last read, and when
/// each was last sent to be checked again ahead of its TTL.
#[derive(Default)]
struct Slots {
    values: [Option<Cached>; Credential::ALL.len()],
    used: AtomicI64,
    rechecks: [AtomicI64; Credential::ALL.len()],
}

/// Credential values, by account then credential: a read borrows the
/// account id (no allocation on a hit).
pub(super) struct Cache {
    map: RwLock<Values>,
    ttl_ms: i64,
    max_entries: usize,
    hits: OnceLock<Counter>,
    misses: OnceLock<Counter>,
}

/// The accounts' slots and how many values they hold.
#[derive(Default)]
struct Values {
    by_account: Map<AccountId, Slots>,
    len: usize,
}

fn slot(c: Credential) -> usize {
    Credential::ALL
        .iter()
        .position(|x| *x == c)
        .expect("every credential has a slot")
}

impl Cache {
    pub(super) fn new(ttl_ms: i64, max_entries: usize) -> Self {
        Cache {
            map: RwLock::default(),
            ttl_ms,
            max_entries: max_entries.max(1),
            hits: OnceLock::new(),
            misses: OnceLock::new(),
        }
    }

    /// How many values are held.
    pub(super) fn len(&self) -> usize {
        self.map.read().unwrap().len
    }

    /// A read's first look: [`Cache::fresh`], counted as a hit or a miss,
    /// with whether the caller should check the value again now, in the
    /// background: three quarters of the TTL passed since it was checked
    /// and no check started since (one caller is told). So a value read
    /// often is checked before its TTL ends, and no reader waits for it.
    pub(super) fn lookup(&self, id: &AccountId, cred: Credential, now: i64) -> Option<(Issued, bool)> {
        let hit = self.look(id, cred, now, true);
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
        self.look(id, cred, now, false).map(|(i, _)| i)
    }

    /// [`Cache::fresh`], and (when asked) whether to check it again now.
    fn look(&self, id: &AccountId, cred: Credential, now: i64, ask: bool) -> Option<(Issued, bool)> {
        let map = self.map.read().unwrap();
        let slots = map.by_account.get(id)?;
        let i = slot(cred);
        let c = slots.values[i].as_ref()?;
        if c.expires_at <= now || now - c.checked_at >= self.ttl_ms {
            return None;
        }
        // Recency to the second is enough for eviction: at most one
        // store a second per account, so hot readers share the line.
        if slots.used.load(Ordering::Relaxed) < now - 1_000 {
            slots.used.store(now, Ordering::Relaxed);
        }
        let recheck = ask && now - c.checked_at >= self.ttl_ms * 3 / 4 && {
            let started = &slots.rechecks[i];
            let last = started.load(Ordering::Relaxed);
            last <= c.checked_at
                && started
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
        };
        let issued = Issued {
            value: c.value.clone(),
            expires_at: from_millis(c.expires_at),
            verified_at: None,
        };
        Some((issued, recheck))
    }

    /// A value still valid at `now`, however long ago it was checked.
    pub(super) fn held(&self, id: &AccountId, cred: Credential, now: i64) -> Option<Issued> {
        let map = self.map.read().unwrap();
        let c = map.by_account.get(id)?.values[slot(cred)].as_ref()?;
        (c.expires_at > now).then(|| Issued {
            value: c.value.clone(),
            expires_at: from_millis(c.expires_at),
            verified_at: None,
        })
    }

    /// Replaces a value held for `key` (a value not held stays out: it
    /// takes no reader's place).
    pub(super) fn update(&self, key: &Key, value: &str, expires_at: i64, now: i64) {
        let mut map = self.map.write().unwrap();
        if let Some(c) = map
            .by_account
            .get_mut(&key.0)
            .and_then(|s| s.values[slot(key.1)].as_mut())
        {
            *c = Cached {
                value: value.to_owned(),
                expires_at,
                checked_at: now,
            };
        }
    }

    /// Serves a value that could not be checked for another TTL from `now`.
    pub(super) fn recheck_later(&self, key: &Key, now: i64) {
        let mut map = self.map.write().unwrap();
        if let Some(c) = map
            .by_account
            .get_mut(&key.0)
            .and_then(|s| s.values[slot(key.1)].as_mut())
        {
            c.checked_at = c.checked_at.max(now);
        }
    }

    /// Remembers a value read from, or written to, the database at `now`.
    pub(super) fn put(&self, key: &Key, value: String, expires_at: i64, now: i64) {
        let mut map = self.map.write().unwrap();
        let Values { by_account, len } = &mut *map;
        let slots = match by_account.get_mut(&key.0) {
            Some(s) => s,
            None => by_account.entry(key.0.clone()).or_default(),
        };
        slots.used.store(now, Ordering::Relaxed);
        let old = slots.values[slot(key.1)].replace(Cached {
            value,
            expires_at,
            checked_at: now,
        });
        if old.is_none() {
            *len += 1;
        }
        if *len > self.max_entries {
            evict(&mut map, self.max_entries - self.max_entries / 10);
        }
    }

    pub(super) fn remove(&self, key: &Key) {
        let mut map = self.map.write().unwrap();
        let Values { by_account, len } = &mut *map;
        if let Some(slots) = by_account.get_mut(&key.0)
            && slots.values[slot(key.1)].take().is_some()
        {
            *len -= 1;
        }
    }

    /// Keeps the accounts `keep` says yes to.
    pub(super) fn retain(&self, keep: impl Fn(&AccountId) -> bool) {
        let mut map = self.map.write().unwrap();
        let Values { by_account, len } = &mut *map;
        by_account.retain(|id, slots| {
            let kept = keep(id);
            if !kept {
                *len -= held(slots);
            }
            kept
        });
    }

    /// (key, seconds of life left) of every cached value.
    pub(super) fn remaining(&self, now: i64) -> Vec<(Key, f64)> {
        let map = self.map.read().unwrap();
        map.by_account
            .iter()
            .flat_map(|(id, slots)| {
                Credential::ALL.iter().zip(&slots.values).filter_map(move |(cred, c)| {
                    let c = c.as_ref()?;
                    Some(((id.clone(), *cred), ((c.expires_at - now) as f64 / 1000.0).max(0.0)))
                })
            })
            .collect()
    }
}

fn held(slots: &Slots) -> usize {
    slots.values.iter().filter(|v| v.is_some()).count()
}

/// Drops the accounts least recently read until at most `target` values
/// are held: one pass to find the cut, one to drop.
fn evict(map: &mut Values, target: usize) {
    let mut used: Vec<i64> = map
        .by_account
        .values()
        .map(|s| s.used.load(Ordering::Relaxed))
        .collect();
    if used.is_empty() {
        return;
    }
    // Accounts hold one to three values: drop accounts up to the share of
    // values to go, oldest first.
    let share = (map.len - target) as f64 / map.len as f64;
    let k = ((used.len() as f64 * share).ceil() as usize).clamp(1, used.len());
    let (_, cut, _) = used.select_nth_unstable(k - 1);
    let cut = *cut;
    let mut dropped = 0;
    let Values { by_account, len } = map;
    by_account.retain(|_, slots| {
        if dropped < k && slots.used.load(Ordering::Relaxed) <= cut {
            dropped += 1;
            *len -= held(slots);
            false
        } else {
            true
        }
    });
    metrics::counter!("wetoken_cache_evictions_total").increment(dropped as u64);
}

/// What presented values resolved to, by their hash, with when (ms) that
/// was read.
pub struct Memo<K, V> {
    map: RwLock<Map<K, (V, i64)>>,
    ttl_ms: i64,
}

/// How long a lookup that resolved before (however long ago) waits for the
/// database before that answer is used again (SPEC §16: served while the
/// database fails over; a primary key read takes a millisecond).
pub const HELD_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// At most this many are remembered; beyond, the memo starts over.
    const CAPACITY: usize = 100_000;

    /// What `k` resolves to: remembered within the TTL, else `lookup`'s
    /// answer (the database's), remembered when found. When `k` resolved
    /// before and the database fails or does not answer within
    /// [`HELD_WAIT`], that earlier answer, for another TTL.
    pub async fn resolve<E: std::fmt::Display>(
        &self,
        k: &K,
        now: i64,
        lookup: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(v) = self.get(k, now) {
            return Ok(Some(v));
        }
        let held = self.map.read().unwrap().get(k).map(|(v, _)| v.clone());
        let answer = match held {
            None => lookup.await,
            Some(held) => {
                let unreachable = match tokio::time::timeout(HELD_WAIT, lookup).await {
                    Ok(Ok(answer)) => return Ok(self.remember(k, answer, now)),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {} ms", HELD_WAIT.as_millis()),
                };
                metrics::counter!("wetoken_cache_served_unchecked_total").increment(1);
                tracing::warn!(error = %unreachable, "the database did not answer: what a key resolved to before stands");
                self.put(k.clone(), held.clone(), now);
                return Ok(Some(held));
            }
        };
        answer.map(|a| self.remember(k, a, now))
    }

    /// The database's answer, remembered — or forgotten when it found
    /// nothing (it will not stand in for the database later).
    fn remember(&self, k: &K, answer: Option<V>, now: i64) -> Option<V> {
        match &answer {
            Some(v) => self.put(k.clone(), v.clone(), now),
            // The write lock only when there is something to forget (an
            // unknown key presented again and again takes none).
            None if self.map.read().unwrap().contains_key(k) => {
                self.map.write().unwrap().remove(k);
            }
            None => {}
        }
        answer
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        (format!("mp:wx{i:04}").parse().unwrap(), Credential::AccessToken)
    }

    #[test]
    fn at_most_max_entries_and_the_least_recently_read_leave() {
        let c = Cache::new(30_000, 100);
        for i in 0..100 {
            c.put(&key(i), format!("v{i}"), 10_000_000, i as i64);
        }
        assert_eq!(c.len(), 100);
        // The first ten are read again, later than every other was written.
        for i in 0..10 {
            assert!(c.fresh(&key(i).0, Credential::AccessToken, 5_000 + i as i64).is_some());
        }
        c.put(&key(100), "v100".into(), 10_000_000, 6_000);
        assert!(c.len() <= 90, "a tenth left at once: {}", c.len());
        for i in 0..10 {
            assert!(
                c.fresh(&key(i).0, Credential::AccessToken, 2_001).is_some(),
                "{i} was read recently"
            );
        }
        assert!(
            c.fresh(&key(100).0, Credential::AccessToken, 2_001).is_some(),
            "the new one stays"
        );
        assert!(
            c.fresh(&key(10).0, Credential::AccessToken, 2_001).is_none(),
            "the oldest unread left"
        );
        // However many come, never more than the bound.
        for i in 200..2_000 {
            c.put(&key(i), "v".into(), 10_000_000, 7_000 + i as i64);
            assert!(c.len() <= 100);
        }
    }

    #[test]
    fn counts_follow_removals_and_replacements() {
        let c = Cache::new(30_000, 100);
        let (a, b) = (key(1), (key(1).0, Credential::JsapiTicket));
        c.put(&a, "x".into(), 10, 0);
        c.put(&a, "y".into(), 10, 0);
        c.put(&b, "z".into(), 10, 0);
        assert_eq!(c.len(), 2);
        c.remove(&a);
        c.remove(&a);
        assert_eq!(c.len(), 1);
        c.retain(|_| false);
        assert_eq!(c.len(), 0);
    }

    /// SPEC §16: what resolved before stands while the database fails or
    /// hangs (and is remembered for another TTL); what never resolved
    /// waits for the database and gets its error.
    #[tokio::test(start_paused = true)]
    async fn a_resolved_key_stands_while_the_database_cannot_answer() {
        let memo: Memo<u8, &str> = Memo::new(1_000);
        let fails = || async { Err::<Option<&str>, _>("connection refused") };
        assert_eq!(memo.resolve(&1, 0, fails()).await, Err("connection refused"));
        assert_eq!(
            memo.resolve(&1, 0, async { Ok::<_, &str>(Some("a")) }).await,
            Ok(Some("a"))
        );
        // Within the TTL, the database is not asked.
        assert_eq!(memo.resolve(&1, 999, fails()).await, Ok(Some("a")));
        // After it: failing, then hanging, the earlier answer stands…
        assert_eq!(memo.resolve(&1, 5_000, fails()).await, Ok(Some("a")));
        let started = tokio::time::Instant::now();
        let hangs = async { std::future::pending::<Result<Option<&str>, &str>>().await };
        assert_eq!(memo.resolve(&1, 10_000, hangs).await, Ok(Some("a")));
        assert_eq!(started.elapsed(), HELD_WAIT);
        // …for another TTL, and the database's answer wins once it comes.
        assert_eq!(memo.get(&1, 10_999), Some("a"));
        assert_eq!(memo.resolve(&1, 20_000, async { Ok::<_, &str>(None) }).await, Ok(None));
        // Found gone, it no longer stands in.
        assert_eq!(memo.resolve(&1, 30_000, fails()).await, Err("connection refused"));
    }

    /// SPEC §16: a proactive refresh replaces what the cache holds and
    /// never adds what it does not (no reader's value leaves for it).
    #[test]
    fn an_update_replaces_a_held_value_and_adds_none() {
        let c = Cache::new(30_000, 10);
        let (a, b) = (key(1), key(2));
        c.put(&a, "old".into(), 100_000, 0);
        c.update(&a, "new", 200_000, 10);
        c.update(&b, "other", 200_000, 10);
        assert_eq!(c.fresh(&a.0, a.1, 20).map(|i| i.value), Some("new".to_owned()));
        assert!(c.held(&b.0, b.1, 20).is_none());
        assert_eq!(c.len(), 1);
    }

    /// A value read after three quarters of its TTL is sent to be checked
    /// again, once, by one reader; every reader still gets it at once.
    #[test]
    fn one_reader_sends_a_value_to_be_checked_ahead_of_its_ttl() {
        let c = Cache::new(1_000, 10);
        let k = key(1);
        c.put(&k, "v".into(), 100_000, 0);
        let look = |now| c.lookup(&k.0, k.1, now).map(|(i, recheck)| (i.value, recheck));
        assert_eq!(look(700), Some(("v".to_owned(), false)));
        assert_eq!(look(750), Some(("v".to_owned(), true)));
        assert_eq!(look(760), Some(("v".to_owned(), false)), "one reader is told");
        assert_eq!(look(1_000), None, "the TTL still bounds it");
        c.put(&k, "v".into(), 100_000, 800);
        assert_eq!(look(1_549), Some(("v".to_owned(), false)));
        assert_eq!(
            look(1_550),
            Some(("v".to_owned(), true)),
            "checked again after each check"
        );
    }
}
