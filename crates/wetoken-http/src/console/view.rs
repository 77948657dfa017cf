//! What the templates show, built from the service's values: text for
//! people (times in China Standard Time, durations, a credential's state
//! as a word). Presentation only: no decision here changes anything.

use chrono::{DateTime, FixedOffset, Utc};
use wetoken_core::domain::AccountKind;
use wetoken_core::events::{Delivery, DeliveryStatus, Event, Webhook};
use wetoken_core::service::overview::CredentialAlert;
use wetoken_core::service::{AccountView, CredentialView, KeyView};

/// Labels the code passes to `c.t` (checked for translations).
#[cfg(test)]
pub const LABELS: &[&str] = &[
    "Official Accounts & Mini Programs",
    "WeCom apps",
    "Third-party platforms",
    "Authorized accounts",
    "WeCom suites",
    "WeCom service providers",
    "Corps of suites",
    "healthy",
    "expiring",
    "expired",
    "failing",
    "blocked",
    "not fetched yet",
    "not pushed yet",
    "stale",
    "active",
    "needs_reauthorization",
    "revoked",
    "pending",
    "delivered",
    "failed",
];

pub fn kind_label(k: AccountKind) -> &'static str {
    match k {
        AccountKind::Mp => "Official Accounts & Mini Programs",
        AccountKind::Work => "WeCom apps",
        AccountKind::Component => "Third-party platforms",
        AccountKind::Authorizer => "Authorized accounts",
        AccountKind::Suite => "WeCom suites",
        AccountKind::Provider => "WeCom service providers",
        AccountKind::Corp => "Corps of suites",
    }
}

/// (kind, label) of every kind, for selectors.
pub fn kinds() -> Vec<(&'static str, &'static str)> {
    AccountKind::ALL.iter().map(|k| (k.as_str(), kind_label(*k))).collect()
}

/// WeChat's zone: quota days and operators' clocks.
fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// `2026-11-30 14:35:00 +08:00`, or "—".
pub fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.with_timezone(&cst()).format("%Y-%m-%d %H:%M:%S %:z").to_string(),
    )
}

/// `1h 52m`, `3m 10s`, `45s`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// One credential of an account, as a row.
pub struct CredRow {
    pub name: &'static str,
    /// healthy | expiring | expired | failing | blocked | empty
    pub state: &'static str,
    pub state_label: &'static str,
    pub expires_in: String,
    pub refreshed_at: String,
    pub last_error: String,
    pub blocked_until: String,
    pub pushed: bool,
    /// The address WeChat refused (SPEC §16): to add to the whitelist.
    pub whitelist: Option<String>,
}

/// How a credential stands at `now`: blocked, failing (a last error),
/// never obtained, expired, inside the refresh-ahead margin, or healthy.
pub fn cred_row(v: &CredentialView, now: DateTime<Utc>, ahead_secs: i64) -> CredRow {
    let pushed = v.credential.is_pushed();
    let left = v.expires_at.map(|e| (e - now).num_seconds());
    let (state, state_label) = if v.blocked_until.is_some_and(|b| b > now) {
        ("blocked", "blocked")
    } else if v.last_error.is_some() {
        ("failing", "failing")
    } else {
        match left {
            None if pushed => ("empty", "not pushed yet"),
            None => ("empty", "not fetched yet"),
            Some(l) if l <= 0 => ("expired", "expired"),
            Some(l) if l < ahead_secs && !pushed => ("expiring", "expiring"),
            Some(_) => ("healthy", "healthy"),
        }
    };
    CredRow {
        name: v.credential.as_str(),
        state,
        state_label,
        expires_in: left.map_or_else(|| "—".to_owned(), duration),
        refreshed_at: when(v.refreshed_at),
        last_error: v.last_error.as_ref().map_or_else(String::new, |e| {
            format!("{} {} ({})", e.errcode, e.errmsg, when(Some(e.at)))
        }),
        blocked_until: if v.blocked_until.is_some_and(|b| b > now) {
            when(v.blocked_until)
        } else {
            String::new()
        },
        pushed,
        whitelist: v.last_error.as_ref().and_then(|e| {
            use wetoken_core::upstream::egress::{Refusal, address_in, refusal};
            (refusal(e.errcode) == Some(Refusal::IpNotWhitelisted))
                .then(|| address_in(&e.errmsg))
                .flatten()
        }),
    }
}

pub struct AccountRow {
    pub id: String,
    pub kind_label: &'static str,
    pub status: &'static str,
    pub created_at: String,
    pub creds: Vec<CredRow>,
}

pub fn account_row(a: &AccountView, now: DateTime<Utc>, ahead_secs: i64) -> AccountRow {
    AccountRow {
        id: a.id.to_string(),
        kind_label: kind_label(a.id.kind()),
        status: a.status.as_str(),
        created_at: when(Some(a.created_at)),
        creds: a.credentials.iter().map(|c| cred_row(c, now, ahead_secs)).collect(),
    }
}

/// A credential of some account (the overview's lists).
pub struct AlertRow {
    pub account: String,
    pub cred: CredRow,
}

pub fn alert_row(a: &CredentialAlert, now: DateTime<Utc>, ahead_secs: i64) -> AlertRow {
    let mut cred = cred_row(&a.view, now, ahead_secs);
    if a.view.credential.is_pushed() && cred.state == "healthy" {
        // Listed as stale: valid, but WeChat stopped pushing newer ones.
        cred.state = "expiring";
        cred.state_label = "stale";
    }
    AlertRow {
        account: a.account.to_string(),
        cred,
    }
}

pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub account: String,
    pub at: String,
    /// A line of the data: its first few fields.
    pub summary: String,
    pub data: String,
}

pub fn event_row(e: &Event) -> EventRow {
    let summary: Vec<String> = e
        .data
        .iter()
        .filter(|(k, _)| k.as_str() != "xml")
        .take(3)
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let v: String = v.chars().take(40).collect();
            format!("{k}={v}")
        })
        .collect();
    EventRow {
        id: e.id,
        kind: e.kind.clone(),
        account: e.account.to_string(),
        at: when(Some(wetoken_core::clock::from_millis(e.at))),
        summary: summary.join(" "),
        data: serde_json::to_string_pretty(&e.data).unwrap_or_default(),
    }
}

pub struct KeyRow {
    pub name: String,
    pub accounts: String,
    pub tokens: bool,
    /// The paths it may call through the proxy, or `*`.
    pub paths: String,
    pub created_at: String,
}

pub fn key_row(k: &KeyView) -> KeyRow {
    KeyRow {
        name: k.name.clone(),
        accounts: k
            .accounts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        tokens: k.tokens,
        paths: k.paths.as_ref().map_or_else(
            || "*".to_owned(),
            |p| p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
        ),
        created_at: when(Some(k.created_at)),
    }
}

pub struct WebhookRow {
    pub name: String,
    pub url: String,
    pub events: String,
    pub accounts: String,
    pub format: &'static str,
}

pub fn webhook_row(w: &Webhook) -> WebhookRow {
    WebhookRow {
        name: w.name.clone(),
        url: w.url.clone(),
        events: w.events.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
        accounts: if w.accounts.is_empty() {
            "*".to_owned()
        } else {
            w.accounts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        format: w.format.as_str(),
    }
}

pub struct DeliveryRow {
    pub event_id: i64,
    pub status: &'static str,
    pub attempts: i64,
    pub next_at: String,
    pub last: String,
    pub updated_at: String,
}

pub fn delivery_row(d: &Delivery) -> DeliveryRow {
    let at = |ms| Some(wetoken_core::clock::from_millis(ms));
    DeliveryRow {
        event_id: d.event_id,
        status: d.status.as_str(),
        attempts: d.attempts,
        next_at: if d.status == DeliveryStatus::Pending {
            when(at(d.next_at))
        } else {
            "—".to_owned()
        },
        last: match (&d.last_status, &d.last_error) {
            (Some(s), Some(e)) => format!("HTTP {s}: {e}"),
            (Some(s), None) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "—".to_owned(),
        },
        updated_at: when(at(d.updated_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetoken_core::domain::Credential;
    use wetoken_core::service::ErrorView;

    fn view(expires_in: Option<i64>, error: bool, blocked: Option<i64>) -> (CredentialView, DateTime<Utc>) {
        let now: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
        let at = |s: i64| now + chrono::Duration::seconds(s);
        (
            CredentialView {
                credential: Credential::AccessToken,
                expires_at: expires_in.map(at),
                refreshed_at: expires_in.map(|_| at(-100)),
                last_error: error.then(|| ErrorView {
                    errcode: 40013,
                    errmsg: "invalid appid".into(),
                    at: at(-5),
                }),
                blocked_until: blocked.map(at),
            },
            now,
        )
    }

    #[test]
    fn a_credential_state_is_read_from_its_view() {
        let state = |v: (CredentialView, DateTime<Utc>)| cred_row(&v.0, v.1, 600).state;
        assert_eq!(state(view(Some(7000), false, None)), "healthy");
        assert_eq!(state(view(Some(300), false, None)), "expiring");
        assert_eq!(state(view(Some(-1), false, None)), "expired");
        assert_eq!(state(view(None, false, None)), "empty");
        assert_eq!(state(view(Some(7000), true, None)), "failing");
        assert_eq!(state(view(None, true, Some(60))), "blocked");
        assert_eq!(state(view(None, true, Some(-60))), "failing", "a block that ended");
        let (v, now) = view(Some(6732), true, None);
        let row = cred_row(&v, now, 600);
        assert_eq!(row.expires_in, "1h 52m");
        assert_eq!(row.last_error, "40013 invalid appid (2026-11-30 13:59:55 +08:00)");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(190), "3m 10s");
        assert_eq!(duration(7200), "2h 0m");
        assert_eq!(duration(-5), "0s");
    }
}
