//! Synchronous replies (SPEC §14): while WeChat waits for a push's answer,
//! the one reply webhook that wants its event is called, in its format, as
//! an attempt of its delivery (leased by this instance when the event was
//! committed, so no other instance posts it meanwhile). What it answers
//! within the budget is the reply; the call goes on past the budget in a
//! task of its own (at most an attempt's timeout) and its outcome, the
//! reply and its time are recorded either way — a push whose caller went
//! away or whose answer came late loses nothing and is not posted twice,
//! and a retry of it after the reply came gets that reply.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::deliver::Replied;
use super::{Events, Result};
use crate::events::{Delivery, Event, Webhook};

/// What a reply webhook's answer asks WeChat to be told: `Ok(None)` for
/// nothing (an empty body or `success`), `Ok(Some(reply))` for a reply
/// message (an XML element or a JSON object, trimmed), `Err` otherwise.
pub fn reply_in(body: &str) -> Result<Option<&str>, &'static str> {
    let t = body.trim();
    if t.is_empty() || t == "success" {
        return Ok(None);
    }
    let readable = if t.starts_with('{') {
        matches!(serde_json::from_str::<Value>(t), Ok(Value::Object(_)))
    } else {
        crate::wxml::tree(t).is_ok()
    };
    if readable {
        Ok(Some(t))
    } else {
        Err("the answer is neither a reply message (XML or JSON) nor empty or success: not used")
    }
}

/// How long the push path uses a list of webhooks it read: a webhook made
/// or deleted at another instance counts for pushes here within this.
pub const HOOKS_FOR: Duration = Duration::from_secs(1);

/// The webhooks as last read by the push path, and when; forgotten when
/// this instance makes or deletes one.
#[derive(Clone, Default)]
pub(super) struct HookCache(Arc<Mutex<Option<ReadHooks>>>);

/// Webhooks and when they were read.
type ReadHooks = (Instant, Arc<Vec<Webhook>>);

impl HookCache {
    pub(super) fn forget(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Events {
    /// The reply webhook that wants `e`, if any, from the webhooks read at
    /// most [`HOOKS_FOR`] ago.
    pub(super) async fn reply_webhook_for(&self, e: &Event) -> Result<Option<Webhook>> {
        let fresh = {
            let cached = self.hooks.0.lock().unwrap_or_else(|p| p.into_inner());
            cached
                .as_ref()
                .filter(|(at, _)| at.elapsed() < HOOKS_FOR)
                .map(|(_, h)| h.clone())
        };
        let hooks = match fresh {
            Some(h) => h,
            None => {
                let h = Arc::new(self.events.webhooks().await?);
                *self.hooks.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), h.clone()));
                h
            }
        };
        Ok(hooks.iter().find(|w| w.reply && w.wants(e)).cloned())
    }

    /// Calls reply webhook `w` with event `e`, whose delivery `d` this
    /// instance holds; the reply, if one comes within `budget`.
    pub(super) async fn reply(&self, w: Webhook, e: Event, d: Delivery, budget: Duration) -> Option<String> {
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let service = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = service.post(&w, &e).await;
            let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let mut replied = Replied {
                ms: Some(ms),
                ..Replied::default()
            };
            let result = match &outcome {
                Err(_) => "failed",
                Ok((_, body)) => match reply_in(body) {
                    Ok(None) => "empty",
                    Err(why) => {
                        replied.note = Some(why.to_owned());
                        "invalid"
                    }
                    Ok(Some(reply)) => {
                        // Kept even when late: a retry of the push gets it.
                        replied.reply = Some(reply.to_owned());
                        match tx.send(reply.to_owned()) {
                            Ok(()) => "reply",
                            Err(_) => {
                                replied.note = Some(format!(
                                    "the reply came after {ms} ms, past the reply budget (or WeChat hung up): \
                                     WeChat was answered success"
                                ));
                                "late"
                            }
                        }
                    }
                },
            };
            metrics::counter!("wetoken_replies_total", "result" => result).increment(1);
            service.record(&w, &d, outcome.map(|(code, _)| code), replied).await;
        });
        tokio::time::timeout(budget, rx).await.ok().and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_answer_asks_for() {
        assert_eq!(reply_in(""), Ok(None));
        assert_eq!(reply_in(" success\n"), Ok(None));
        let xml = "<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>";
        assert_eq!(reply_in(&format!("{xml}\n")), Ok(Some(xml)));
        assert_eq!(reply_in(r#" {"MsgType":"text"} "#), Ok(Some(r#"{"MsgType":"text"}"#)));
        assert!(reply_in("ok").is_err());
        assert!(reply_in("[1]").is_err());
        assert!(reply_in("<xml><a>").is_err());
    }
}
