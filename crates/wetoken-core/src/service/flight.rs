//! The in-process single flight: one lock per credential, so that 500
//! concurrent cold reads in one process become one database read and at
//! most one lease attempt; the others find the cache filled when their turn
//! comes. Across processes the database lease ([`super::lease`]) does the
//! same job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::Key;

#[derive(Default)]
pub(super) struct Flights {
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl Flights {
    /// Waits for this process's turn at a credential.
    pub(super) async fn turn(&self, key: &Key) -> OwnedMutexGuard<()> {
        let lock = self.locks.lock().unwrap().entry(key.clone()).or_default().clone();
        lock.lock_owned().await
    }
}
