//! Events and webhooks (SPEC §10), as domain types and pure functions.
//!
//! An event is something a business system may act on: every verified
//! callback from WeChat (`component.<InfoType>`, `suite.<InfoType>`) and
//! wetoken's own conditions (`wetoken.*`). Events are written by the store
//! in the same transaction as the state change they report (the outbox),
//! with ids that increase in commit order, so a reader that has seen id `n`
//! never later finds a smaller one. Webhooks receive them at least once;
//! the delivery worker is `service::deliver`.
//!
//! Here: the records ([`NewEvent`], [`Event`], [`Webhook`], [`Delivery`]),
//! the type patterns (`component.*`), the one JSON form of an event record
//! (answered by `GET /v1/events` and posted by `json` webhooks), the
//! signature of `json` deliveries, the retry schedule, and the tree of a
//! callback message's XML.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::clock::from_millis;
use crate::domain::{AccountId, Credential, ParseError};
use crate::keys::Pattern;
use crate::secret::Sealed;

/// Event types wetoken raises itself.
pub mod types {
    pub const REFRESH_FAILED: &str = "wetoken.credential.refresh_failed";
    pub const RECOVERED: &str = "wetoken.credential.recovered";
    pub const BLOCKED: &str = "wetoken.credential.blocked";
    pub const NEEDS_REAUTHORIZATION: &str = "wetoken.authorizer.needs_reauthorization";
    pub const IP_NOT_WHITELISTED: &str = "wetoken.credential.ip_not_whitelisted";
    pub const MISCONFIGURED: &str = "wetoken.credential.misconfigured";
    pub const NEEDS_CONFIRMATION: &str = "wetoken.credential.needs_confirmation";
    pub const REVOKED: &str = "wetoken.account.revoked";
    pub const TICKET_STALE: &str = "wetoken.ticket.stale";
    pub const FORCE_BUDGET_SPENT: &str = "wetoken.credential.force_budget_spent";
}

/// The callback request an event came from, kept so a `wechat` webhook can
/// re-post it verbatim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallbackSource {
    /// The query string as WeChat sent it (without `?`).
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
}

/// An event about to be written, in the transaction of its state change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub account: AccountId,
    /// Epoch milliseconds.
    pub at: i64,
    pub data: Map<String, Value>,
    pub source: Option<CallbackSource>,
    /// For callbacks: SHA-256 of the encrypted message, so that WeChat's
    /// retry of the same callback is one event, not two.
    pub dedupe: Option<String>,
}

impl NewEvent {
    pub fn new(kind: impl Into<String>, account: &AccountId, at: i64, data: Map<String, Value>) -> Self {
        NewEvent {
            kind: kind.into(),
            account: account.clone(),
            at,
            data,
            source: None,
            dedupe: None,
        }
    }

    /// A wetoken condition about one credential.
    pub fn credential(kind: &str, account: &AccountId, cred: Credential, at: i64, extra: &[(&str, Value)]) -> Self {
        let mut data = Map::new();
        data.insert("credential".into(), Value::from(cred.as_str()));
        for (k, v) in extra {
            data.insert((*k).into(), v.clone());
        }
        NewEvent::new(kind, account, at, data)
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub account: AccountId,
    pub at: i64,
    pub data: Map<String, Value>,
    pub source: Option<CallbackSource>,
}

impl Event {
    /// The event record of SPEC §10, the one JSON form of an event.
    pub fn record(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "type": self.kind,
            "account": self.account.to_string(),
            "at": from_millis(self.at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
    }
}

/// The account an event is filed under for `{id}/*` filters: a child's
/// parent, else the account itself.
pub fn family(id: &AccountId) -> AccountId {
    id.parent().unwrap_or_else(|| id.clone())
}

/// An event type pattern: an exact type, or `*` standing for any run of
/// characters (`component.*`, `*.unauthorized`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePattern(String);

impl TypePattern {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok =
            !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-*".contains(&b));
        if ok {
            Ok(TypePattern(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "event type pattern {s:?} must be 1 to 100 characters of A-Z a-z 0-9 _ . - and *"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, kind: &str) -> bool {
        glob(self.0.as_bytes(), kind.as_bytes())
    }

    /// The literal text before the first `*`: every matching type starts
    /// with it (a store narrows its range scan with it).
    pub fn prefix(&self) -> &str {
        self.0.split('*').next().unwrap_or_default()
    }
}

impl std::fmt::Display for TypePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` matches any run of bytes; linear in practice (one star backtrack).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// How a webhook receives its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The event record, signed.
    Json,
    /// The original callback request, re-posted verbatim.
    Wechat,
    /// A user's message re-posted as WeChat posts in plaintext mode, signed
    /// with the webhook's secret as WeChat's Token (SPEC §14): an SDK's
    /// plaintext-mode handler works with the secret as its token.
    WechatPlain,
    /// A WeCom group-robot markdown message.
    WecomBot,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "json" => Ok(Format::Json),
            "wechat" => Ok(Format::Wechat),
            "wechat_plain" => Ok(Format::WechatPlain),
            "wecom_bot" => Ok(Format::WecomBot),
            other => Err(ParseError(format!(
                "format {other:?} must be one of json, wechat, wechat_plain, wecom_bot"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Wechat => "wechat",
            Format::WechatPlain => "wechat_plain",
            Format::WecomBot => "wecom_bot",
        }
    }
}

/// A webhook as stored (its secret sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub name: String,
    /// As stored: sealed by the service (`v2:…`, bound to the webhook) —
    /// plaintext only in rows from before URLs were sealed; as the service
    /// hands a webhook out, [`crate::urlenc::hide_secrets`] of it.
    pub url: String,
    pub events: Vec<TypePattern>,
    pub accounts: Vec<Pattern>,
    pub format: Format,
    pub secret: Sealed,
    pub created_at: i64,
    /// The last event id handed to this webhook's deliveries.
    pub cursor: i64,
    /// Whether it answers pushed messages synchronously (SPEC §14): at most
    /// one such webhook covers any account.
    pub reply: bool,
}

impl Webhook {
    /// Whether this webhook takes `e`: its type and account match, a
    /// `wechat` webhook takes only events that came from a callback, a
    /// `wechat_plain` one only those that carry the message (`xml` or
    /// `json` in their data).
    pub fn wants(&self, e: &Event) -> bool {
        self.events.iter().any(|p| p.matches(&e.kind))
            && self.accounts.iter().any(|p| p.covers(&e.account))
            && match self.format {
                Format::Wechat => e.source.is_some(),
                Format::WechatPlain => plain_message(e).is_some(),
                Format::Json | Format::WecomBot => true,
            }
    }
}

/// The message an event carries, as WeChat wrote it, and whether it is
/// XML (else JSON): what a `wechat_plain` webhook posts.
pub fn plain_message(e: &Event) -> Option<(&str, bool)> {
    match (e.data.get("xml"), e.data.get("json")) {
        (Some(Value::String(x)), _) => Some((x, true)),
        (_, Some(Value::String(j))) => Some((j, false)),
        _ => None,
    }
}

/// The checked URL of a webhook: `http` or `https`, with a host.
pub fn check_url(url: &str) -> Result<(), ParseError> {
    let bad = |why: &str| ParseError(format!("url {:?} {why}", crate::urlenc::hide_secrets(url)));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    // Sealed at rest, it must still fit the 2000-character column.
    if url.len() > MAX_URL {
        return Err(bad(&format!("is longer than {MAX_URL} characters")));
    }
    Ok(())
}

/// The longest webhook URL: sealed (base64 and a key id) it fits the
/// store's 2000 characters.
pub const MAX_URL: usize = 1400;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(ParseError(format!(
                "status {other:?} must be one of pending, delivered, failed"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub webhook: String,
    pub event_id: i64,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The next attempt (pending).
    pub next_at: i64,
    /// When it was created (or retried by hand): the 24 h of retries count from here.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// What a reply webhook answered for WeChat (SPEC §14), when it was
    /// used.
    pub reply: Option<String>,
    /// How long the synchronous call of a reply webhook took, ms.
    pub reply_ms: Option<i64>,
}

/// The outcome of one attempt, written by the delivery's leaseholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptWrite<'a> {
    pub webhook: &'a str,
    pub event_id: i64,
    pub owner: &'a str,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_at: i64,
    pub updated_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<&'a str>,
    /// The reply a reply webhook gave in time (SPEC §14).
    pub reply: Option<&'a str>,
    /// How long a reply webhook's synchronous call took, ms.
    pub reply_ms: Option<i64>,
}

/// Deliveries are retried for this long after they were created.
pub const RETRY_FOR_MS: i64 = 24 * 3600 * 1000;
const RETRY_FIRST_MS: i64 = 10_000;
const RETRY_MAX_MS: i64 = 3600 * 1000;

/// When the attempt after the `attempts`-th failed one is due: `10 s ·
/// 2^(n-1)`, at most 1 h, scaled by a jitter in `[0.8, 1.2)`; None once
/// that falls beyond 24 h from `created_at` (the delivery has failed).
/// `jitter` is uniform in `[0, 1)`.
pub fn next_attempt(now: i64, created_at: i64, attempts: i64, jitter: f64) -> Option<i64> {
    let exp = (attempts.clamp(1, 30) - 1) as u32;
    let delay = RETRY_FIRST_MS.saturating_mul(1i64 << exp.min(20)).min(RETRY_MAX_MS);
    let at = now + (delay as f64 * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as i64;
    (at <= created_at + RETRY_FOR_MS).then_some(at)
}

/// `X-Wetoken-Signature` of a `json` delivery: `sha256=` + hex
/// HMAC-SHA256(secret, timestamp + "." + body).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new webhook secret: `whsec_` + 64 hex characters (256 bits).
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("whsec_{}", hex::encode(b))
}

/// The markdown a `wecom_bot` webhook posts for an event.
pub fn wecom_markdown(e: &Event) -> Value {
    let mut text = format!(
        "**wetoken** `{}`\n> account: {}\n> at: {}",
        e.kind,
        e.account,
        from_millis(e.at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    for (k, v) in &e.data {
        if k == "xml" {
            continue;
        }
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.push_str(&format!("\n> {k}: {}", v.chars().take(200).collect::<String>()));
    }
    json!({"msgtype": "markdown", "markdown": {"content": text}})
}

/// The event data of a verified callback: every element of the message as
/// a string (nested elements as objects, repeated ones as arrays), plus
/// `xml`, the message itself.
pub fn callback_data(xml: &str) -> Result<Map<String, Value>, crate::wxml::XmlError> {
    let mut data = crate::wxml::tree(xml)?;
    data.insert("xml".into(), Value::from(xml));
    Ok(data)
}

#[cfg(test)]
mod tests;
