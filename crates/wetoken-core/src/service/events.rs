//! Events and webhooks as the API and the command line see them (SPEC
//! §10): reading events a page at a time, and managing webhooks and their
//! deliveries. Delivery itself is in `deliver`.

use super::{Events, Result, ServiceError};
use crate::domain::AccountId;
use crate::events::{Delivery, DeliveryStatus, Event, Format, TypePattern, Webhook, check_url, generate_secret};
use crate::keys::{Pattern, check_name};
use crate::secret::{Sealed, Secret};
use crate::store::EventQuery;

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Ids after this one (0: from the oldest kept).
    pub after: i64,
    pub kind: Option<TypePattern>,
    pub account: Option<Pattern>,
    pub limit: i64,
}

/// A page of events, oldest first.
#[derive(Debug, Clone)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// Where the next page starts; None on the last page.
    pub next_cursor: Option<i64>,
}

/// A webhook definition as given (`POST /v1/webhooks`, `wetoken webhook
/// add`), before it is checked.
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// `["*"]` when absent.
    pub accounts: Option<Vec<String>>,
    /// `json` when absent.
    pub format: Option<String>,
    /// A reply webhook (SPEC §14): `false` when absent.
    pub reply: bool,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::Invalid(format!("{field}: {why}"))
}

/// What a webhook's secret is bound to (AES-GCM associated data).
pub(super) fn secret_binding(name: &str) -> String {
    format!("webhook:{name}#secret")
}

/// What a webhook's sealed URL is bound to.
pub(super) fn url_binding(name: &str) -> String {
    format!("webhook:{name}#url")
}

/// Whether stored text is a sealed value (rows from before URLs were
/// sealed hold the URL itself).
pub(super) fn is_sealed(stored: &str) -> bool {
    stored.starts_with("v2:") || stored.starts_with("v1:")
}

impl super::Inner {
    /// A webhook's URL, opened (SPEC §10: sealed at rest).
    pub(super) fn webhook_url(&self, w: &Webhook) -> std::result::Result<String, crate::secret::KeyError> {
        if is_sealed(&w.url) {
            self.key
                .open(&Sealed::from_stored(w.url.as_str()), &url_binding(&w.name))
        } else {
            Ok(w.url.clone())
        }
    }

    /// A webhook as it is handed out: its URL shown with `***` for the
    /// query and userinfo, never sealed text or a robot's key.
    pub(super) fn shown(&self, mut w: Webhook) -> Webhook {
        w.url = self
            .webhook_url(&w)
            .map_or_else(|_| "***".to_owned(), |u| crate::urlenc::hide_secrets(&u));
        w
    }
}

impl WebhookRequest {
    /// The webhook it defines, or a 400 naming the first bad field.
    fn parse(&self, secret: crate::secret::Sealed, now: i64) -> Result<Webhook> {
        check_name(&self.name).map_err(|e| invalid("name", e.0))?;
        check_url(&self.url).map_err(|e| invalid("url", e.0))?;
        if self.events.is_empty() {
            return Err(invalid(
                "events",
                "give at least one event type pattern, such as \"component.*\"",
            ));
        }
        if self.events.len() > 100 {
            return Err(invalid("events", "at most 100 patterns"));
        }
        let events = self
            .events
            .iter()
            .map(|p| TypePattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("events", e.0))?;
        let accounts = match &self.accounts {
            None => vec![Pattern::All],
            Some(list) if list.is_empty() => {
                return Err(invalid(
                    "accounts",
                    "give at least one account pattern, or leave it out for all",
                ));
            }
            Some(list) if list.len() > 100 => return Err(invalid("accounts", "at most 100 patterns")),
            Some(list) => list
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("accounts", e.0))?,
        };
        let format = match &self.format {
            None => Format::Json,
            Some(f) => Format::parse(f).map_err(|e| invalid("format", e.0))?,
        };
        if self.reply && format == Format::WecomBot {
            return Err(invalid("reply", "a wecom_bot webhook cannot reply to WeChat"));
        }
        Ok(Webhook {
            name: self.name.clone(),
            url: self.url.clone(),
            events,
            accounts,
            format,
            secret,
            created_at: now,
            cursor: 0,
            reply: self.reply,
        })
    }
}

impl Events {
    /// A page of events matching `f` that `visible` lets the caller see
    /// (the accounts its key covers). The page is one range scan of at most
    /// `f.limit` events; those filtered out still move the cursor on, so a
    /// page may hold fewer than `limit` events before the last.
    pub async fn events(&self, f: &EventFilter, visible: impl Fn(&AccountId) -> bool) -> Result<EventsPage> {
        let (account, family) = match &f.account {
            Some(Pattern::Exact(id)) => (Some(id.clone()), None),
            Some(Pattern::WithChildren(id)) if id.parent().is_some() => (Some(id.clone()), None),
            Some(Pattern::WithChildren(id)) => (None, Some(id.clone())),
            Some(Pattern::All) | None => (None, None),
        };
        let q = EventQuery {
            after: f.after,
            type_prefix: f.kind.as_ref().map(|k| k.prefix().to_owned()),
            account,
            family,
            limit: f.limit,
        };
        let rows = self.events.events(&q).await?;
        let next_cursor = (rows.len() as i64 >= f.limit)
            .then(|| rows.last().map(|e| e.id))
            .flatten();
        let events = rows
            .into_iter()
            .filter(|e| f.kind.as_ref().is_none_or(|k| k.matches(&e.kind)))
            .filter(|e| f.account.as_ref().is_none_or(|p| p.covers(&e.account)))
            .filter(|e| visible(&e.account))
            .collect();
        Ok(EventsPage { events, next_cursor })
    }

    /// Creates a webhook; its secret is returned this once and sealed at
    /// rest. It receives the events committed from now on.
    pub async fn create_webhook(&self, req: &WebhookRequest) -> Result<(Webhook, Secret)> {
        let secret = generate_secret();
        let now = self.engine.inner.now_ms();
        let sealed = self.engine.inner.key.seal(&secret, &secret_binding(&req.name));
        let mut w = req.parse(sealed, now)?;
        if w.reply {
            // At most one reply webhook covers any account (SPEC §14).
            for other in self.events.webhooks().await?.iter().filter(|o| o.reply) {
                let clash = w.accounts.iter().find(|a| other.accounts.iter().any(|b| a.overlaps(b)));
                if let Some(a) = clash {
                    return Err(ServiceError::Conflict(format!(
                        "reply webhook {} already covers accounts of {a}: at most one reply webhook covers an account",
                        other.name
                    )));
                }
            }
        }
        w.url = self
            .engine
            .inner
            .key
            .seal(&w.url, &url_binding(&w.name))
            .as_str()
            .to_owned();
        self.hooks.forget();
        match self.events.insert_webhook(&w).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict) => {
                return Err(ServiceError::Conflict(format!("webhook {} already exists", w.name)));
            }
            Err(e) => return Err(e.into()),
        }
        let w = self.engine.inner.shown(w);
        tracing::info!(webhook = %w.name, url = %w.url, format = w.format.as_str(), "webhook created");
        self.engine.inner.wake.notify_one();
        Ok((w, Secret::new(secret)))
    }

    /// Every webhook, URLs shown redacted.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let all = self.events.webhooks().await?;
        Ok(all.into_iter().map(|w| self.engine.inner.shown(w)).collect())
    }

    /// A page of webhooks by name, after the webhook `after`. Webhooks are
    /// an operator's handful, read whole and cut here.
    pub async fn webhooks_page(&self, after: Option<&str>, limit: i64) -> Result<super::Page<Webhook>> {
        let rest: Vec<Webhook> = self
            .engine
            .inner
            .store
            .webhooks()
            .await?
            .into_iter()
            .filter(|w| after.is_none_or(|a| w.name.as_str() > a))
            .take(limit as usize)
            .map(|w| self.engine.inner.shown(w))
            .collect();
        Ok(super::Page::of(rest, limit, |w| w.name.clone()))
    }

    async fn webhook_named(&self, name: &str) -> Result<Webhook> {
        self.engine
            .inner
            .store
            .webhook(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no webhook named {name:?}")))
    }

    /// Deletes a webhook and its deliveries.
    pub async fn delete_webhook(&self, name: &str) -> Result<()> {
        self.hooks.forget();
        if !self.events.delete_webhook(name).await? {
            return Err(ServiceError::NotFound(format!("no webhook named {name:?}")));
        }
        tracing::info!(webhook = %name, "webhook deleted");
        Ok(())
    }

    /// A webhook's deliveries after event id `after`, by event id.
    pub async fn deliveries(
        &self,
        name: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.webhook_named(name).await?;
        Ok(self.events.deliveries(name, status, after, limit).await?)
    }

    /// Makes a failed (or delivered) delivery pending again, due now, with
    /// 24 h of retries from now.
    pub async fn retry_delivery(&self, name: &str, event_id: i64) -> Result<Delivery> {
        self.webhook_named(name).await?;
        let now = self.engine.inner.now_ms();
        if !self.events.retry_delivery(name, event_id, now).await? {
            let exists = self
                .engine
                .inner
                .store
                .deliveries(name, None, event_id - 1, 1)
                .await?
                .into_iter()
                .any(|d| d.event_id == event_id);
            return Err(if exists {
                ServiceError::Conflict(format!("the delivery of event {event_id} is already pending"))
            } else {
                ServiceError::NotFound(format!("webhook {name:?} has no delivery of event {event_id}"))
            });
        }
        self.engine.inner.wake.notify_one();
        let d = self.events.deliveries(name, None, event_id - 1, 1).await?;
        d.into_iter()
            .next()
            .ok_or_else(|| ServiceError::NotFound(format!("webhook {name:?} has no delivery of event {event_id}")))
    }
}
