//! Users' messages and events (SPEC §14): what WeChat pushes to an
//! account's receiving URL, verified by the HTTP layer with the account's
//! `token` and `aes_key` (read here), becomes one event —
//! `message.<MsgType>` or `event.<Event>` — however many times WeChat
//! retries it (the same `MsgId`, or for an event the same `FromUserName` and
//! `CreateTime`), committed before WeChat is answered.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::deliver::LEASE_MS;
use super::{Messages, Result, ServiceError};
use crate::domain::AccountId;
use crate::events::{CallbackSource, DeliveryStatus, Event, NewEvent};
use crate::msgcrypt::MsgCrypt;
use crate::store::{MessageAppend, ReplyClaim};

/// A pushed message that passed every check, opened.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Its top-level fields (WeChat's XML elements or JSON keys).
    pub fields: Map<String, Value>,
    /// The message as WeChat wrote it (XML or JSON, decrypted).
    pub text: String,
    /// Whether it came as XML (else JSON).
    pub xml: bool,
    /// The request as WeChat sent it, for `wechat` webhooks.
    pub source: CallbackSource,
}

impl Pushed {
    fn text_field(&self, name: &str) -> Option<String> {
        self.fields.get(name).and_then(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    /// `message.<MsgType>` or `event.<Event>` (a name of letters, digits
    /// and `_` at most 64 long; else `unknown`).
    pub fn kind(&self) -> String {
        let name = |v: Option<String>| {
            v.filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .unwrap_or_else(|| "unknown".into())
        };
        match self.text_field("MsgType").as_deref() {
            Some("event") => format!("event.{}", name(self.text_field("Event"))),
            other => format!("message.{}", name(other.map(str::to_owned))),
        }
    }

    /// What makes WeChat's retries of one push the same: its `MsgId`, or
    /// an event's sender and time.
    pub fn dedupe_key(&self) -> Result<String> {
        if let Some(id) = self.text_field("MsgId") {
            return Ok(format!("msg:{id}"));
        }
        match (self.text_field("FromUserName"), self.text_field("CreateTime")) {
            (Some(from), Some(at)) => Ok(format!("event:{from}:{at}")),
            _ => Err(ServiceError::Invalid(
                "the message has neither MsgId nor FromUserName and CreateTime".into(),
            )),
        }
    }
}

impl Messages {
    /// The receiving URL's settings for pushes to account `id`: the token,
    /// and the crypto when there is an `aes_key` — an `mp` account's or a
    /// WeCom app's own, an authorizer's component's (the platform's message
    /// URL), a suite's (its data callback, for every corp that installed
    /// it: the receive id, the corp, is checked by the caller). `NotFound`
    /// for an account without a token (which, to a caller without a
    /// signature, looks the same as one that does not exist).
    pub async fn receiver(&self, id: &AccountId) -> Result<(String, Option<MsgCrypt>)> {
        let (holder, receive_id) = match id {
            AccountId::Mp { appid } => (id.clone(), appid.as_str()),
            AccountId::Work { corpid, .. } => (id.clone(), corpid.as_str()),
            AccountId::Authorizer { component_appid, .. } => (
                AccountId::Component {
                    appid: component_appid.clone(),
                },
                component_appid.as_str(),
            ),
            AccountId::Suite { suite_id } => (id.clone(), suite_id.as_str()),
            other => return Err(ServiceError::NotFound(format!("{other} has no message URL here"))),
        };
        let test_account = matches!(id, AccountId::Authorizer { appid, .. }
            if self.engine.inner.cfg.release_test && super::release_test::TEST_APPIDS.contains(&appid.as_str()));
        if holder != *id && !test_account {
            // The authorizer itself must exist (WeChat's release-test
            // accounts need not: the component's signature is the proof).
            self.engine.inner.account(id).await?;
        }
        let a = self.engine.inner.account(&holder).await?;
        let token = a
            .secrets
            .token
            .as_ref()
            .ok_or_else(|| ServiceError::NotFound(format!("{holder} has no message token")))?
            .expose()
            .to_owned();
        let crypt = match &a.secrets.aes_key {
            Some(key) => Some(
                MsgCrypt::new(&token, key.expose(), receive_id).map_err(|e| ServiceError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        Ok((token, crypt))
    }

    /// The corp of a suite's data callback, by the receive id a push was
    /// sealed for: `NotFound` unless that corp installed the suite.
    pub async fn installed_corp(&self, suite: &AccountId, corpid: &str) -> Result<AccountId> {
        let AccountId::Suite { suite_id } = suite else {
            return Err(ServiceError::NotFound(format!("{suite} is not a suite")));
        };
        let corpid = crate::domain::Ident::parse("corpid", corpid).map_err(|e| ServiceError::NotFound(e.0))?;
        let corp = AccountId::Corp {
            suite_id: suite_id.clone(),
            corpid,
        };
        self.engine.inner.account(&corp).await?;
        Ok(corp)
    }

    /// The newest message or event pushed to account `id` (the console's
    /// "last push").
    pub async fn last_push(&self, id: &AccountId) -> Result<Option<Event>> {
        Ok(self.events.last_message(id).await?)
    }

    /// Records a verified push to account `id` as its event, once, and
    /// the reply to give WeChat, if any (empty: an empty answer rather
    /// than `success`): the release test's for its test
    /// accounts, else what the reply webhook that wants the event answers
    /// within the budget (see `replies`). A retry of a push that was
    /// answered gets the same reply again; one whose reply webhook is being
    /// called elsewhere, none.
    pub async fn received(&self, id: &AccountId, msg: &Pushed) -> Result<Option<String>> {
        let inner = &self.engine.inner;
        let mut data = msg.fields.clone();
        data.insert(
            if msg.xml { "xml" } else { "json" }.into(),
            Value::from(msg.text.clone()),
        );
        let now = inner.now_ms();
        let mut event = NewEvent::new(msg.kind(), id, now, data);
        event.source = Some(msg.source.clone());
        let digest = Sha256::new()
            .chain_update(id.to_string())
            .chain_update(b"\n")
            .chain_update(msg.dedupe_key()?)
            .finalize();
        event.dedupe = Some(hex::encode(digest));
        let test = self.release_case(id, &msg.fields);
        let mut stored = Event {
            id: 0,
            kind: event.kind.clone(),
            account: id.clone(),
            at: now,
            data: event.data.clone(),
            source: event.source.clone(),
        };
        let hook = match test {
            Some(_) => None,
            None => self.delivery.reply_webhook_for(&stored).await?,
        };
        let claim = hook.as_ref().map(|w| ReplyClaim {
            webhook: w.name.clone(),
            owner: inner.cfg.instance_id.clone(),
            lease_ms: LEASE_MS,
            now,
        });
        let m = MessageAppend { event, claim };
        let appended = self.batcher.append(&self.events, m.clone()).await?;
        if appended.new {
            inner.committed(std::slice::from_ref(&m.event));
        }
        if let Some(case) = test {
            return Ok(Some(self.answer_case(id, &msg.fields, case, appended.new)));
        }
        let (Some(w), Some(d)) = (hook, appended.delivery) else {
            return Ok(None);
        };
        if appended.claimed {
            stored.id = appended.event_id;
            return Ok(self.delivery.reply(w, stored, d, inner.cfg.reply_budget).await);
        }
        Ok(if d.status == DeliveryStatus::Delivered {
            d.reply
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(v: Value) -> Pushed {
        Pushed {
            fields: v.as_object().unwrap().clone(),
            text: v.to_string(),
            xml: false,
            source: CallbackSource {
                query: String::new(),
                content_type: None,
                body: String::new(),
            },
        }
    }

    #[test]
    fn kinds_and_the_keys_of_retries() {
        let text = pushed(serde_json::json!({"MsgType": "text", "MsgId": 7, "FromUserName": "o1", "CreateTime": 5}));
        assert_eq!(
            (text.kind(), text.dedupe_key().unwrap()),
            ("message.text".into(), "msg:7".into())
        );
        let ev = pushed(
            serde_json::json!({"MsgType": "event", "Event": "subscribe", "FromUserName": "o1", "CreateTime": 5}),
        );
        assert_eq!(
            (ev.kind(), ev.dedupe_key().unwrap()),
            ("event.subscribe".into(), "event:o1:5".into())
        );
        let odd = pushed(serde_json::json!({"MsgType": "a.b", "FromUserName": "o1"}));
        assert_eq!(odd.kind(), "message.unknown");
        assert!(odd.dedupe_key().is_err(), "no way to tell its retries apart");
    }
}
