//! Webhook delivery (SPEC §10): at least once, one attempt at a time across
//! the cluster, retried with backoff for 24 h, a slow webhook delaying no
//! other.
//!
//! Each pass, for every webhook:
//!
//! 1. **Fan out.** Events after the webhook's cursor that it wants become
//!    pending deliveries, and the cursor moves past them, in one
//!    transaction that succeeds only if the cursor is still where this
//!    instance read it (`Store::fan_out`): one instance does each batch.
//!    Event ids increase in commit order, so the cursor never skips one.
//! 2. **Deliver.** Due deliveries are leased one by one (`Store::
//!    try_lease_delivery`, on the database's clock, longer than an attempt
//!    can take) and posted in tasks of their own, at most [`PER_WEBHOOK`]
//!    in flight per webhook and instance: a webhook that hangs holds only
//!    its own slots. The outcome is written only while the lease is held.
//!
//! A 2xx answer within [`ATTEMPT_TIMEOUT`] is success (for `wecom_bot`, also
//! an `errcode` of 0 when the answer has one); anything else is retried at
//! [`crate::events::next_attempt`], and after 24 h the delivery is failed
//! until retried by hand. An instance killed mid-attempt leaves a lease that
//! expires; the next pass of any instance attempts it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::header::CONTENT_TYPE;

use super::events::secret_binding;
use super::{Events, Result};
use crate::events::{self, AttemptWrite, Delivery, DeliveryStatus, Event, Format, Webhook};

/// How often an idle worker looks for work (it is also woken at once when
/// this process commits an event).
pub const POLL: Duration = Duration::from_millis(500);
/// The least time between the starts of two passes: under load, what
/// arrives meanwhile is one pass's work, not a pass each (bench (h): CPU
/// per push at 100/s 8.9 ms with 20 ms, 6.5 ms with 50 ms).
pub const PASS_GAP: Duration = Duration::from_millis(50);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery's lease: longer than an attempt, so that only a dead
/// instance's attempt is ever taken over.
pub(super) const LEASE_MS: i64 = 15_000;
/// Attempts in flight per webhook in one instance.
pub const PER_WEBHOOK: usize = 8;
/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 500;
/// How often the oldest pending delivery's age is read for its gauge.
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// How often old events are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How much of an answer is read (a `wecom_bot` errcode, a reply).
pub(super) const ANSWER_LIMIT: usize = 64 * 1024;

/// The HTTP client of deliveries: redirects are not followed (a 3xx is a
/// failed attempt).
pub(super) fn client() -> reqwest::Client {
    crate::upstream::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wetoken/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with rustls builds")
}

/// Attempts in flight per webhook in this process.
#[derive(Clone, Default)]
struct Slots(Arc<Mutex<HashMap<String, usize>>>);

/// One taken slot, given back when dropped (even if the attempt panics).
struct Slot(Slots, String);

impl Slots {
    fn free(&self, webhook: &str) -> usize {
        let used = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(webhook).copied();
        PER_WEBHOOK.saturating_sub(used.unwrap_or(0))
    }

    fn is_idle(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    fn take(&self, webhook: &str) -> Slot {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(webhook.to_owned())
            .or_default() += 1;
        Slot(self.clone(), webhook.to_owned())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Why an attempt failed: the HTTP status if there was one, and what went wrong.
pub(super) type Failed = (Option<i64>, String);

/// What a reply webhook's synchronous call adds to its delivery record.
#[derive(Debug, Default)]
pub(super) struct Replied {
    /// The reply it gave.
    pub reply: Option<String>,
    /// How long the call took.
    pub ms: Option<i64>,
    /// Why a delivered answer was not used (late, not a reply).
    pub note: Option<String>,
}

/// The running delivery worker of this process.
pub struct DeliveryWorker {
    task: tokio::task::JoinHandle<()>,
    slots: Slots,
}

impl DeliveryWorker {
    /// Stops starting attempts and waits (at most an attempt's timeout and a
    /// second) for those in flight to record their outcome, so that a
    /// stopping instance leaves no lease for others to wait out.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT + Duration::from_secs(1);
        while !self.slots.is_idle() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops at once; attempts in flight are abandoned (their leases expire).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Events {
    /// One delivery pass, waiting for every attempt it started. How many
    /// attempts it made. For tests and one-shot use; `serve` runs
    /// [`Self::spawn_deliverer`].
    pub async fn deliver_once(&self) -> Result<usize> {
        let handles = self.delivery_pass(&Slots::default()).await?;
        let n = handles.len();
        for h in handles {
            let _ = h.await;
        }
        Ok(n)
    }

    /// Runs the delivery worker in the background until it is stopped: a
    /// pass whenever this process commits an event or an attempt ends, and
    /// every [`POLL`]; the oldest pending delivery's age as a gauge; old
    /// events purged hourly. Attempts run in tasks of their own, so stopping
    /// the worker lets those in flight finish ([`DeliveryWorker::stop`]).
    pub fn spawn_deliverer(&self) -> DeliveryWorker {
        let (service, slots) = (self.clone(), Slots::default());
        let s = slots.clone();
        let task = tokio::spawn(async move { service.deliver_forever(s).await });
        DeliveryWorker { task, slots }
    }

    async fn deliver_forever(self, slots: Slots) {
        let mut last_purge: Option<tokio::time::Instant> = None;
        let mut last_gauge: Option<tokio::time::Instant> = None;
        loop {
            let started = tokio::time::Instant::now();
            if let Err(e) = self.delivery_pass(&slots).await {
                tracing::warn!(error = %e, "delivery pass failed");
            }
            // Passes run after every attempt under load: the gauge's query
            // runs at most every GAUGE_EVERY, not once per delivery.
            if last_gauge.is_none_or(|t| t.elapsed() >= GAUGE_EVERY) {
                last_gauge = Some(tokio::time::Instant::now());
                match self.events.oldest_pending_delivery().await {
                    Ok(oldest) => {
                        let age = oldest.map_or(0.0, |t| (self.engine.inner.now_ms() - t).max(0) as f64 / 1000.0);
                        metrics::gauge!("wetoken_delivery_oldest_pending_seconds").set(age);
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read the oldest pending delivery"),
                }
            }
            if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                last_purge = Some(tokio::time::Instant::now());
                let before = self.engine.inner.now_ms() - self.engine.inner.cfg.event_retention.as_millis() as i64;
                match self.events.purge_events(before).await {
                    Ok(n) if n > 0 => tracing::info!(events = n, "purged events past their retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot purge old events"),
                }
            }
            tokio::select! {
                _ = self.engine.inner.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            tokio::time::sleep_until(started + PASS_GAP).await;
        }
    }

    /// Fans out and starts the due attempts of every webhook.
    async fn delivery_pass(&self, slots: &Slots) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut started = Vec::new();
        for w in self.events.webhooks().await? {
            if let Err(e) = self.fan_out(&w).await {
                tracing::warn!(webhook = %w.name, error = %e, "cannot hand events to a webhook");
            }
            let free = slots.free(&w.name);
            if free == 0 {
                continue;
            }
            let now = self.engine.inner.now_ms();
            let w = Arc::new(w);
            for d in self.events.due_deliveries(&w.name, now, free as i64).await? {
                let owner = &self.engine.inner.cfg.instance_id;
                if !self
                    .engine
                    .inner
                    .store
                    .try_lease_delivery(&w.name, d.event_id, owner, LEASE_MS)
                    .await?
                {
                    continue;
                }
                let slot = slots.take(&w.name);
                let (service, w) = (self.clone(), w.clone());
                started.push(tokio::spawn(async move {
                    service.attempt(&w, &d).await;
                    drop(slot);
                    service.engine.inner.wake.notify_one();
                }));
            }
        }
        Ok(started)
    }

    /// Hands the events after `w`'s cursor to it, a batch per transaction.
    async fn fan_out(&self, w: &Webhook) -> Result<()> {
        let mut cursor = w.cursor;
        loop {
            let q = crate::store::EventQuery {
                after: cursor,
                limit: FAN_OUT_BATCH,
                ..Default::default()
            };
            let batch = self.events.events(&q).await?;
            let Some(last) = batch.last().map(|e| e.id) else {
                return Ok(());
            };
            let wanted: Vec<i64> = batch.iter().filter(|e| w.wants(e)).map(|e| e.id).collect();
            let now = self.engine.inner.now_ms();
            if !self.events.fan_out(&w.name, cursor, last, &wanted, now).await? {
                return Ok(()); // another instance moved the cursor
            }
            cursor = last;
            if (batch.len() as i64) < FAN_OUT_BATCH {
                return Ok(());
            }
        }
    }

    /// One attempt of a leased delivery, and its outcome recorded.
    async fn attempt(&self, w: &Webhook, d: &Delivery) {
        let outcome = match self.events.event(d.event_id).await {
            Ok(Some(e)) => self.post(w, &e).await.map(|(code, _)| code),
            Ok(None) => Err((None, "the event is no longer kept".to_owned())),
            Err(e) => {
                // The lease runs out and the attempt is made again.
                tracing::warn!(webhook = %w.name, event = d.event_id, error = %e, "cannot read an event to deliver");
                return;
            }
        };
        self.record(w, d, outcome, Replied::default()).await;
    }

    /// Writes the outcome of an attempt of leased delivery `d` to `w`: done,
    /// or due again with backoff, or failed after 24 h.
    pub(super) async fn record(&self, w: &Webhook, d: &Delivery, outcome: Result<i64, Failed>, replied: Replied) {
        let now = self.engine.inner.now_ms();
        let attempts = d.attempts + 1;
        let (status, next_at, last_status, last_error, result) = match &outcome {
            Ok(code) => (
                DeliveryStatus::Delivered,
                now,
                Some(*code),
                replied.note.as_deref(),
                "delivered",
            ),
            Err((code, why)) => {
                let jitter = rand::thread_rng().r#gen::<f64>();
                match events::next_attempt(now, d.created_at, attempts, jitter) {
                    Some(at) => (DeliveryStatus::Pending, at, *code, Some(why.as_str()), "retry"),
                    None => (DeliveryStatus::Failed, now, *code, Some(why.as_str()), "failed"),
                }
            }
        };
        metrics::counter!("wetoken_deliveries_total", "format" => w.format.as_str(), "result" => result).increment(1);
        if let Err((_, why)) = &outcome {
            tracing::info!(webhook = %w.name, event = d.event_id, attempts, error = %why, result, "delivery attempt failed");
        }
        let write = AttemptWrite {
            webhook: &w.name,
            event_id: d.event_id,
            owner: &self.engine.inner.cfg.instance_id,
            status,
            attempts,
            next_at,
            updated_at: now,
            last_status,
            last_error,
            reply: replied.reply.as_deref(),
            reply_ms: replied.ms,
        };
        match self.events.record_attempt(&write).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(webhook = %w.name, event = d.event_id, "delivery lease lost during an attempt"),
            Err(e) => {
                tracing::warn!(webhook = %w.name, event = d.event_id, error = %e, "cannot record a delivery attempt")
            }
        }
    }

    /// Posts one event to one webhook in its format: the HTTP status, and
    /// the answer's body (at most [`ANSWER_LIMIT`]) for a reply webhook or
    /// a `wecom_bot` one.
    pub(super) async fn post(&self, w: &Webhook, e: &Event) -> std::result::Result<(i64, String), Failed> {
        let http = &self.webhooks;
        let url = self
            .engine
            .inner
            .webhook_url(w)
            .map_err(|_| (None, "the webhook's URL does not open with the master key".to_owned()))?;
        let request = match w.format {
            Format::Json => {
                let secret = self
                    .engine
                    .inner
                    .key
                    .open(&w.secret, &secret_binding(&w.name))
                    .map_err(|_| {
                        (
                            None,
                            "the webhook's secret does not open with the master key".to_owned(),
                        )
                    })?;
                let body = serde_json::to_vec(&e.record()).expect("an event record serializes");
                let ts = self.engine.inner.now_ms().div_euclid(1000);
                http.post(&url)
                    .header(CONTENT_TYPE, "application/json")
                    .header("X-Wetoken-Event", &e.kind)
                    .header("X-Wetoken-Delivery", e.id.to_string())
                    .header("X-Wetoken-Timestamp", ts.to_string())
                    .header("X-Wetoken-Signature", events::signature(&secret, ts, &body))
                    .body(body)
            }
            Format::Wechat => {
                let Some(src) = &e.source else {
                    return Err((None, "the event did not come from a callback".to_owned()));
                };
                http.post(with_query(&url, &src.query))
                    .header(CONTENT_TYPE, src.content_type.as_deref().unwrap_or("text/xml"))
                    .body(src.body.clone())
            }
            Format::WechatPlain => {
                let Some((message, xml)) = events::plain_message(e) else {
                    return Err((None, "the event carries no message".to_owned()));
                };
                let secret = self
                    .engine
                    .inner
                    .key
                    .open(&w.secret, &secret_binding(&w.name))
                    .map_err(|_| {
                        (
                            None,
                            "the webhook's secret does not open with the master key".to_owned(),
                        )
                    })?;
                // WeChat's plaintext mode: signature over the token (here
                // the webhook's secret), timestamp and nonce.
                let ts = self.engine.inner.now_ms().div_euclid(1000).to_string();
                let nonce = rand::random::<u32>().to_string();
                let mut query = vec![
                    ("signature", crate::msgcrypt::sha1_sorted(&[&secret, &ts, &nonce])),
                    ("timestamp", ts),
                    ("nonce", nonce),
                ];
                if let Some(openid) = e.data.get("FromUserName").and_then(serde_json::Value::as_str) {
                    query.push(("openid", openid.to_owned()));
                }
                http.post(&url)
                    .query(&query)
                    .header(CONTENT_TYPE, if xml { "text/xml" } else { "application/json" })
                    .header("X-Wetoken-Event", &e.kind)
                    .header("X-Wetoken-Delivery", e.id.to_string())
                    .body(message.to_owned())
            }
            Format::WecomBot => http.post(&url).json(&events::wecom_markdown(e)),
        };
        let mut response = request.send().await.map_err(|err| (None, describe(&err)))?;
        let status = i64::from(response.status().as_u16());
        if !response.status().is_success() {
            return Err((Some(status), format!("HTTP {status}")));
        }
        let mut body = Vec::new();
        if w.format == Format::WecomBot || w.reply {
            while let Some(chunk) = response.chunk().await.map_err(|err| (Some(status), describe(&err)))? {
                body.extend_from_slice(&chunk);
                if body.len() > ANSWER_LIMIT {
                    // Cut: no longer a reply message nor a robot's JSON.
                    break;
                }
            }
        }
        if w.format == Format::WecomBot
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(code) = v.get("errcode").and_then(serde_json::Value::as_i64)
            && code != 0
        {
            let msg = v.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or_default();
            return Err((Some(status), format!("errcode {code}: {msg}")));
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// `url` with the callback's query string appended.
fn with_query(url: &str, query: &str) -> String {
    match (query.is_empty(), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    }
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // reqwest's own text names the URL, which may carry a key (a WeCom
    // robot's): only the causes beneath it are told.
    let mut s = what.to_owned();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    let mut s = s.replace(e.url().map_or("\u{0}", |u| u.as_str()), "***");
    s.truncate(500);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_query_is_appended() {
        assert_eq!(with_query("http://h/cb", "a=1&b=2"), "http://h/cb?a=1&b=2");
        assert_eq!(with_query("http://h/cb?x=0", "a=1"), "http://h/cb?x=0&a=1");
        assert_eq!(with_query("http://h/cb", ""), "http://h/cb");
    }

    #[test]
    fn slots_are_given_back_when_dropped() {
        let s = Slots::default();
        let held: Vec<Slot> = (0..PER_WEBHOOK).map(|_| s.take("a")).collect();
        assert_eq!(s.free("a"), 0);
        assert_eq!(s.free("b"), PER_WEBHOOK);
        drop(held);
        assert_eq!(s.free("a"), PER_WEBHOOK);
        assert!(s.0.lock().unwrap().is_empty());
    }
}
