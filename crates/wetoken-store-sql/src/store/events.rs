//! Events, webhooks and their deliveries.

use async_trait::async_trait;
use wetoken_core::domain::AccountId;
use wetoken_core::events::{AttemptWrite, Delivery, DeliveryStatus, Event, NewEvent, Webhook};
use wetoken_core::store::{Appended, EventQuery, EventStore, MessageAppend, ReplyClaim, Sealed, StoreResult};

use super::{SqlStore, append, encode_events, work};
use crate::binds;
use crate::columns;
use crate::query::event_filters;
use crate::rows::{NewEventRow, WebhookRow};
use crate::tx::{Backend, Tx};

#[async_trait]
impl<B: Backend> EventStore for SqlStore<B> {
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        let events = encode_events(events);
        work!(self, transaction, |tx, sql| { append(tx, &events).await.map(drop) })
    }

    async fn append_messages(&self, messages: &[MessageAppend]) -> StoreResult<Vec<Appended>> {
        let events: Vec<_> = messages.iter().map(|m| NewEventRow::encode(&m.event)).collect();
        let claims: Vec<Option<ReplyClaim>> = messages.iter().map(|m| m.claim.clone()).collect();
        work!(self, transaction, |tx, sql| {
            let ids = append(tx, &events).await?;
            let mut done = Vec::with_capacity(ids.len());
            for ((event_id, new), claim) in ids.into_iter().zip(&claims) {
                done.push(claim_reply(tx, event_id, new, claim.as_ref()).await?);
            }
            Ok(done)
        })
    }

    async fn events(&self, q: &EventQuery) -> StoreResult<Vec<Event>> {
        let (f, after, limit) = (event_filters(q), q.after, q.limit);
        work!(self, autocommit, |tx, sql| {
            let b = binds![
                after, &f.like, &f.like, &f.account, &f.account, &f.family, &f.family, limit
            ];
            tx.fetch(sql.select_events, &b, columns::event).await
        })
    }

    async fn event(&self, id: i64) -> StoreResult<Option<Event>> {
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_event, &binds![id], columns::event).await
        })
    }

    async fn last_message(&self, account: &AccountId) -> StoreResult<Option<Event>> {
        let account = account.to_string();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_last_message, &binds![&account, 1i64], columns::event)
                .await
        })
    }

    async fn purge_events(&self, before: i64) -> StoreResult<u64> {
        work!(self, transaction, |tx, sql| {
            let n = tx.execute(sql.purge_events, &binds![before]).await?;
            tx.execute(sql.purge_deliveries, &binds![before]).await?;
            tx.execute(sql.purge_audit, &binds![before]).await?;
            Ok(n)
        })
    }

    async fn insert_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let r = WebhookRow::encode(w);
        work!(self, autocommit, |tx, sql| {
            let b = binds![
                &r.name,
                &r.url,
                &r.events,
                &r.accounts,
                &r.format,
                &r.secret,
                r.created_at,
                r.reply
            ];
            tx.execute(sql.insert_webhook, &b).await.map(drop)
        })
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        work!(self, autocommit, |tx, sql| {
            tx.fetch(sql.select_webhooks, &[], columns::webhook).await
        })
    }

    async fn webhook(&self, name: &str) -> StoreResult<Option<Webhook>> {
        let name = name.to_owned();
        work!(self, autocommit, |tx, sql| {
            tx.optional(sql.select_webhook, &binds![&name], columns::webhook).await
        })
    }

    async fn delete_webhook(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        work!(self, transaction, |tx, sql| {
            let gone = tx.execute(sql.delete_webhook, &binds![&name]).await? > 0;
            tx.execute(sql.delete_webhook_deliveries, &binds![&name]).await?;
            Ok(gone)
        })
    }

    async fn fan_out(&self, webhook: &str, from: i64, to: i64, event_ids: &[i64], now: i64) -> StoreResult<bool> {
        let (webhook, event_ids) = (webhook.to_owned(), event_ids.to_vec());
        // No retry inside a transaction (PostgreSQL aborts it on a
        // deadlock): a failed pass is simply the next pass's work.
        work!(self, transaction, |tx, sql| {
            if tx.execute(sql.move_cursor, &binds![to, &webhook, from]).await? != 1 {
                return Ok(false);
            }
            for id in event_ids {
                tx.execute(sql.insert_delivery, &binds![&webhook, id, now, now, now])
                    .await?;
            }
            Ok(true)
        })
    }

    async fn due_deliveries(&self, webhook: &str, now: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
        let webhook = webhook.to_owned();
        work!(self, autocommit, |tx, sql| {
            let b = binds![&webhook, now, limit];
            tx.fetch(sql.select_due_deliveries, &b, columns::delivery).await
        })
    }

    async fn try_lease_delivery(&self, webhook: &str, event_id: i64, owner: &str, lease_ms: i64) -> StoreResult<bool> {
        let (webhook, owner) = (webhook.to_owned(), owner.to_owned());
        work!(self, autocommit, |tx, sql| {
            let b = binds![&owner, lease_ms, &webhook, event_id];
            Ok(tx.execute(sql.take_delivery_lease, &b).await? == 1)
        })
    }

    async fn record_attempt(&self, w: &AttemptWrite<'_>) -> StoreResult<bool> {
        let (status, attempts, next_at, updated_at) = (w.status, w.attempts, w.next_at, w.updated_at);
        let (last_status, last_error) = (w.last_status, w.last_error.map(str::to_owned));
        let (reply, reply_ms) = (w.reply.map(str::to_owned), w.reply_ms);
        let (webhook, event_id, owner) = (w.webhook.to_owned(), w.event_id, w.owner.to_owned());
        work!(self, autocommit, |tx, sql| {
            let b = binds![
                status.as_str(),
                attempts,
                next_at,
                updated_at,
                last_status,
                &last_error,
                &reply,
                reply_ms,
                &webhook,
                event_id,
                &owner
            ];
            Ok(tx.execute(sql.record_attempt, &b).await? == 1)
        })
    }

    async fn deliveries(
        &self,
        webhook: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let webhook = webhook.to_owned();
        let status = status.map(DeliveryStatus::as_str);
        work!(self, autocommit, |tx, sql| {
            let b = binds![&webhook, after, status, status, limit];
            tx.fetch(sql.select_deliveries, &b, columns::delivery).await
        })
    }

    async fn retry_delivery(&self, webhook: &str, event_id: i64, now: i64) -> StoreResult<bool> {
        let webhook = webhook.to_owned();
        work!(self, autocommit, |tx, sql| {
            let b = binds![now, now, now, &webhook, event_id];
            Ok(tx.execute(sql.retry_delivery, &b).await? == 1)
        })
    }

    async fn reseal_webhook(&self, read: &Webhook, secret: &Sealed, url: &Sealed) -> StoreResult<bool> {
        let (secret, url) = (secret.as_str().to_owned(), url.as_str().to_owned());
        let (name, old) = (read.name.clone(), read.secret.as_str().to_owned());
        work!(self, autocommit, |tx, sql| {
            let b = binds![&secret, &url, &name, &old];
            Ok(tx.execute(sql.reseal_webhook, &b).await? == 1)
        })
    }

    async fn oldest_pending_delivery(&self) -> StoreResult<Option<i64>> {
        work!(self, autocommit, |tx, sql| {
            let oldest = tx.optional(sql.select_oldest_pending, &[], columns::maybe_int).await?;
            Ok(oldest.flatten())
        })
    }

    async fn last_event_id(&self) -> StoreResult<i64> {
        work!(self, autocommit, |tx, sql| { tx.int(sql.select_event_seq, &[]).await })
    }
}

/// A reply webhook's delivery of event `event_id` taken for the claim's
/// owner in the caller's transaction: created leased if absent, else
/// leased if pending and free; as it is otherwise.
async fn claim_reply<T: Tx>(tx: &mut T, event_id: i64, new: bool, claim: Option<&ReplyClaim>) -> StoreResult<Appended> {
    let sql = tx.sql();
    let mut appended = Appended {
        event_id,
        new,
        claimed: false,
        delivery: None,
    };
    let Some(c) = claim else {
        return Ok(appended);
    };
    let b = binds![&c.webhook, event_id, c.now, c.now, c.now, &c.owner, c.lease_ms];
    if tx.execute(sql.insert_leased_delivery, &b).await? == 1 {
        // Created as written: no need to read it back.
        appended.claimed = true;
        appended.delivery = Some(Delivery {
            webhook: c.webhook.clone(),
            event_id,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_at: c.now,
            created_at: c.now,
            updated_at: c.now,
            last_status: None,
            last_error: None,
            reply: None,
            reply_ms: None,
        });
        return Ok(appended);
    }
    let b = binds![&c.owner, c.lease_ms, &c.webhook, event_id];
    appended.claimed = tx.execute(sql.take_delivery_lease, &b).await? == 1;
    let b = binds![&c.webhook, event_id];
    appended.delivery = tx.optional(sql.select_delivery, &b, columns::delivery).await?;
    Ok(appended)
}
