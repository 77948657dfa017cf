//! A webhook's deliveries as the API answers them (SPEC §10, §14).

use serde::Serialize;
use wetoken_core::clock::from_millis;
use wetoken_core::events::{Delivery, DeliveryStatus};

use super::rfc3339;

/// One event's delivery to a webhook.
#[derive(Debug, Serialize)]
pub struct DeliveryBody {
    pub event_id: String,
    pub status: &'static str,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// A reply webhook's reply given to WeChat, and its call's time (ms).
    pub reply: Option<String>,
    pub reply_ms: Option<i64>,
}

pub fn delivery(d: &Delivery) -> DeliveryBody {
    DeliveryBody {
        event_id: d.event_id.to_string(),
        status: d.status.as_str(),
        attempts: d.attempts,
        next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| rfc3339(from_millis(d.next_at))),
        created_at: rfc3339(from_millis(d.created_at)),
        updated_at: rfc3339(from_millis(d.updated_at)),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        reply: d.reply.clone(),
        reply_ms: d.reply_ms,
    }
}
