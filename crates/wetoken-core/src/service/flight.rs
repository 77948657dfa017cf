//! The in-process single flight (SPEC §2 "a fetch outlives its caller").
//!
//! Work on a credential runs in a task of its own, never in the caller's
//! future, and one at a time per credential (its *turn*): a caller that
//! goes away — the client disconnected, a timeout fired — leaves the work
//! running, and its result still fills the cache and answers everyone
//! waiting. A cold read joins the read already in flight for its
//! credential instead of queueing behind it, so 500 concurrent cold reads
//! in one process are one database read and at most one lease attempt.
//! Across processes the database lease ([`super::lease`]) does the same
//! job. A caller waits for a flight at most a bound it chooses
//! ([`Inner::bounded`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedMutexGuard, watch};

use super::{Inner, Issued, Key, Result, ServiceError};

/// What a flight came to, for everyone who joined it.
type Outcome = Option<Result<Issued>>;

#[derive(Default)]
pub(super) struct Flights {
    turns: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    reads: Mutex<HashMap<Key, watch::Receiver<Outcome>>>,
}

/// A flight to wait for: its outcome once it lands.
pub(super) struct Flight(watch::Receiver<Outcome>);

impl Flight {
    /// The flight's outcome; `Unavailable` if its task died without one.
    pub(super) async fn outcome(mut self) -> Result<Issued> {
        match self.0.wait_for(Option::is_some).await {
            Ok(o) => o.clone().unwrap_or_else(|| Err(lost())),
            Err(_) => Err(lost()),
        }
    }
}

fn lost() -> ServiceError {
    ServiceError::Unavailable("the refresh task ended without an answer".into())
}

/// Unregisters a read flight when its task ends, even by a panic.
struct Landed {
    inner: Arc<Inner>,
    key: Key,
    rx: watch::Receiver<Outcome>,
}

impl Drop for Landed {
    fn drop(&mut self) {
        let mut reads = self.inner.flights.reads.lock().unwrap_or_else(|e| e.into_inner());
        if reads.get(&self.key).is_some_and(|r| r.same_channel(&self.rx)) {
            reads.remove(&self.key);
        }
    }
}

impl Flights {
    /// Waits for this process's turn at a credential.
    pub(super) async fn turn(&self, key: &Key) -> OwnedMutexGuard<()> {
        let lock = self.turns.lock().unwrap().entry(key.clone()).or_default().clone();
        lock.lock_owned().await
    }

    /// Forgets a credential's turn once nobody holds or waits for it: the
    /// map holds only credentials with work in flight, not every id ever
    /// asked for.
    pub(super) fn release(&self, key: &Key) {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        if turns.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            turns.remove(key);
        }
    }

    /// Credentials with work in flight or waiting.
    pub(super) fn len(&self) -> usize {
        self.turns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Inner {
    /// Runs `work` once this process's earlier work on `key` is done, then
    /// forgets the key's turn if nobody else waits for it.
    pub(super) async fn run_in_turn<T>(&self, key: &Key, work: impl Future<Output = T>) -> T {
        let turn = self.flights.turn(key).await;
        let out = work.await;
        drop(turn);
        self.flights.release(key);
        out
    }

    /// Runs `work` on `key` in a task of its own once this process's earlier
    /// work on the credential is done. The task runs to its end whether or
    /// not anyone still waits for it.
    pub(super) fn in_turn<F>(self: &Arc<Self>, key: Key, work: F) -> Flight
    where
        F: Future<Output = Result<Issued>> + Send + 'static,
    {
        let (tx, rx) = watch::channel(None);
        let this = self.clone();
        tokio::spawn(async move {
            let _ = tx.send(Some(this.run_in_turn(&key, work).await));
        });
        Flight(rx)
    }

    /// A cold read of `key`: joins the read in flight, or starts `work` in
    /// turn as the new one.
    pub(super) fn read_flight<F>(self: &Arc<Self>, key: &Key, work: F) -> Flight
    where
        F: Future<Output = Result<Issued>> + Send + 'static,
    {
        let mut reads = self.flights.reads.lock().unwrap();
        if let Some(rx) = reads.get(key) {
            return Flight(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        reads.insert(key.clone(), rx.clone());
        drop(reads);
        let done = Landed {
            inner: self.clone(),
            key: key.clone(),
            rx: rx.clone(),
        };
        tokio::spawn(async move {
            let outcome = done.inner.run_in_turn(&done.key, work).await;
            // Answer first, then let the next reader start a new flight
            // (`done` drops): a reader that joined just before sees the
            // outcome; one that comes after finds the cache filled.
            let _ = tx.send(Some(outcome));
            drop(done);
        });
        Flight(rx)
    }

    /// Waits for `flight` at most a reader's bound (SPEC §2): the upstream
    /// timeout plus 2 s. The flight goes on if the bound passes first.
    pub(super) async fn bounded(&self, flight: Flight) -> Result<Issued> {
        let bound = self.cfg.upstream_timeout + std::time::Duration::from_secs(2);
        match tokio::time::timeout(bound, flight.outcome()).await {
            Ok(r) => r,
            Err(_) => Err(ServiceError::Unavailable(format!(
                "WeChat has not answered within {} s; the fetch goes on: try again shortly",
                bound.as_secs()
            ))),
        }
    }
}
