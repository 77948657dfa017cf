//! What a verified callback does (SPEC §5, §10). The HTTP layer checks the
//! request (size, signature, timestamp, receive id) and hands over the
//! decrypted message; here it becomes an event, and by its `InfoType` a
//! state change committed in the same transaction as that event: a ticket
//! stored, an authorization exchanged, an account revoked. A message
//! wetoken does not act on (`change_contact`, `notify_third_fasteregister`,
//! …) is an event alone. Everything is committed before the caller answers
//! WeChat `success`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Platforms, Result, ServiceError};
use crate::domain::{AccountId, Ident};
use crate::events::{self, CallbackSource, NewEvent};

/// A callback message that passed every check.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The decrypted message.
    pub xml: String,
    /// Its top-level fields.
    pub fields: HashMap<String, String>,
    /// The request as WeChat sent it, for `wechat` webhooks.
    pub source: CallbackSource,
    /// The encrypted message (`Encrypt`): what makes a retry the same event.
    pub encrypted: String,
}

impl Callback {
    fn field(&self, name: &str) -> Result<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ServiceError::Invalid(format!("the message has no {name}")))
    }

    fn ident(&self, name: &str) -> Result<Ident> {
        Ident::parse(name, self.field(name)?).map_err(|e| ServiceError::Invalid(e.0))
    }

    /// What the message is: its `InfoType` (or, failing that, `Event` or
    /// `MsgType`), if it is a plain name; else `unknown`.
    fn info_type(&self) -> &str {
        ["InfoType", "Event", "MsgType"]
            .iter()
            .find_map(|k| self.fields.get(*k).filter(|v| !v.is_empty()))
            .map(String::as_str)
            .filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or("unknown")
    }
}

impl Platforms {
    /// Applies a verified callback to component or suite `id` at `at` (its
    /// CreateTime / TimeStamp, ms, which orders authorizations and
    /// revocations) and records it as the event `{component|suite}.{InfoType}`
    /// at the time it was received.
    pub async fn callback(&self, id: &AccountId, at: i64, msg: &Callback) -> Result<()> {
        let family = match id {
            AccountId::Component { .. } => "component",
            AccountId::Suite { .. } => "suite",
            other => return Err(ServiceError::Invalid(format!("{other} receives no callbacks"))),
        };
        let info_type = msg.info_type();
        let data = events::callback_data(&msg.xml).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        // The event's time is when wetoken received it (retention counts
        // from it); WeChat's own CreateTime is in `data`.
        let mut event = NewEvent::new(format!("{family}.{info_type}"), id, self.engine.inner.now_ms(), data);
        event.source = Some(msg.source.clone());
        let digest = Sha256::new()
            .chain_update(id.to_string())
            .chain_update(b"\n")
            .chain_update(&msg.encrypted)
            .finalize();
        event.dedupe = Some(hex::encode(digest));
        let events = std::slice::from_ref(&event);
        match self.apply(id, family, info_type, at, msg, events).await {
            Ok(()) => {}
            Err(
                e @ (ServiceError::Upstream(_) | ServiceError::TicketMissing { .. } | ServiceError::Unavailable(_)),
            ) => {
                // WeChat refused the exchange the message asks for (or could
                // not be reached): the event is recorded all the same, and
                // WeChat, answered an error, retries the callback, which is
                // then the same event and is exchanged again.
                self.events.append_events(events).await?;
                self.engine.inner.committed(events);
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.engine.inner.committed(events);
        Ok(())
    }

    /// The state change a callback asks for, committing `events` with it.
    async fn apply(
        &self,
        id: &AccountId,
        family: &str,
        info_type: &str,
        at: i64,
        msg: &Callback,
        events: &[NewEvent],
    ) -> Result<()> {
        match (family, info_type) {
            ("component", "component_verify_ticket") => {
                self.ticket_pushed(id, msg.field("ComponentVerifyTicket")?, at / 1000, events)
                    .await?;
            }
            ("component", "authorized" | "updateauthorized") => {
                let appid = msg.ident("AuthorizerAppid")?;
                let code = msg.field("AuthorizationCode")?;
                self.authorize(id, code, Some((&appid, at)), events).await?;
            }
            ("component", "unauthorized") => {
                let appid = msg.ident("AuthorizerAppid")?;
                self.unauthorize(id, &appid, at, events).await?;
            }
            ("suite", "suite_ticket") => {
                self.ticket_pushed(id, msg.field("SuiteTicket")?, at / 1000, events)
                    .await?;
            }
            ("suite", "create_auth" | "reset_permanent_code") => {
                self.install(id, msg.field("AuthCode")?, Some(at), events).await?;
            }
            ("suite", "change_auth") => {
                let corpid = msg.ident("AuthCorpId")?;
                self.change_auth(id, &corpid, at, events).await?;
            }
            ("suite", "cancel_auth") => {
                let corpid = msg.ident("AuthCorpId")?;
                self.cancel_auth(id, &corpid, at, events).await?;
            }
            _ => {
                self.engine.inner.account(id).await?;
                self.events.append_events(events).await?;
            }
        }
        Ok(())
    }
}
