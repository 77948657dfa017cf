//! Pushed messages committed a batch at a time (SPEC §14): every event
//! takes the outbox's sequence row, whose lock is held until its commit,
//! so one transaction per push would queue the whole cluster behind it.
//! Pushes go to one task per instance, which commits all that queued while
//! the previous batch was committing, in one transaction
//! (`EventStore::append_messages`), and answers each. An idle instance
//! commits a push alone, at once: batching adds no wait of its own.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{Result, ServiceError};
use crate::store::{Appended, EventStore, MessageAppend};

/// The most pushes committed in one transaction.
pub const BATCH: usize = 64;

type Waiting = (MessageAppend, oneshot::Sender<Result<Appended>>);

/// This instance's committer of pushed messages, started at its first use.
#[derive(Clone, Default)]
pub(super) struct Batcher(Arc<OnceLock<mpsc::Sender<Waiting>>>);

impl Batcher {
    /// Commits `m` with whatever else is waiting; what was done with it.
    pub(super) async fn append(&self, store: &Arc<dyn EventStore>, m: MessageAppend) -> Result<Appended> {
        let sender = self.0.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * BATCH);
            tokio::spawn(commit_batches(store.clone(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        sender
            .send((m, done))
            .await
            .map_err(|_| ServiceError::Unavailable("the message committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Unavailable("the message committer has stopped".into()))?
    }
}

/// The committing task: a batch of what is queued, one transaction, each
/// answered; until every sender is gone.
async fn commit_batches(store: Arc<dyn EventStore>, mut rx: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (messages, waiting): (Vec<MessageAppend>, Vec<_>) = batch.drain(..).unzip();
        metrics::histogram!("wetoken_message_batch_size").record(messages.len() as f64);
        match store.append_messages(&messages).await {
            Ok(done) => {
                for (w, a) in waiting.into_iter().zip(done) {
                    let _ = w.send(Ok(a));
                }
            }
            Err(e) => {
                let e = ServiceError::from(e);
                for w in waiting {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}
