//! Users' messages and events (SPEC §14): what WeChat pushes to an
//! account's receiving URL, verified by the HTTP layer with the account's
//! `token` and `aes_key` (read here), becomes one event —
//! `message.<MsgType>` or `event.<Event>` — however many times WeChat
//! retries it (the same `MsgId`, or for an event the same `FromUserName` and
//! `CreateTime`), committed before WeChat is answered.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Messages, Result, ServiceError};
use crate::domain::AccountId;
use crate::events::{CallbackSource, NewEvent};
use crate::msgcrypt::MsgCrypt;

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
        if holder != *id {
            // The authorizer itself must exist.
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

    /// Records a verified push to account `id` as its event, once.
    pub async fn received(&self, id: &AccountId, msg: &Pushed) -> Result<()> {
        let mut data = msg.fields.clone();
        data.insert(
            if msg.xml { "xml" } else { "json" }.into(),
            Value::from(msg.text.clone()),
        );
        let mut event = NewEvent::new(msg.kind(), id, self.engine.inner.now_ms(), data);
        event.source = Some(msg.source.clone());
        let digest = Sha256::new()
            .chain_update(id.to_string())
            .chain_update(b"\n")
            .chain_update(msg.dedupe_key()?)
            .finalize();
        event.dedupe = Some(hex::encode(digest));
        let events = std::slice::from_ref(&event);
        self.events.append_events(events).await?;
        self.engine.inner.committed(events);
        Ok(())
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
