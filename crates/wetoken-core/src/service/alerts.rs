//! wetoken's own events (SPEC §10): which conditions a refresh's outcome
//! starts or ends, as pure functions of the credential row before it and
//! the outcome. Each condition raises one event when it starts, not one
//! per attempt; the row itself is the memory (attempts, the last error and
//! when it came, the block), so nothing is kept in a process.
//!
//! - `refresh_failed`: the credential has no valid value, or its refresh
//!   failed 3 times in a row;
//! - `blocked`: a block (45009 or a permanent error) starts;
//! - `needs_reauthorization`: an authorizer's refresh token is refused (61023);
//! - `ip_not_whitelisted`, `misconfigured`, `needs_confirmation`: WeChat
//!   refused wetoken itself (SPEC §16: the address it saw, a secret frozen,
//!   wrong or missing, an administrator to confirm), once per refusal (and
//!   per address);
//! - `recovered`: a value is written after `refresh_failed` or a block;
//! - `ticket.stale`: a pushed ticket is older than `WETOKEN_STALE_TICKET_SECS`.

use serde_json::{Map, Value};

use super::{Inner, Result};
use crate::clock::from_millis;
use crate::domain::{AccountId, Credential};
use crate::events::{NewEvent, types};
use crate::store::{CredentialState, LastError};

/// Failures in a row after which a credential that still has a valid
/// value raises `refresh_failed`.
pub const FAILURES_TO_RAISE: i64 = 3;

fn rfc3339(ms: i64) -> Value {
    Value::from(from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Whether the failure condition holds on `row` as it was last recorded:
/// valid values only age while refreshes fail, so whether the value was
/// valid at the last failure is whether it expired before that failure.
fn was_failing(row: &CredentialState) -> bool {
    let last_failure_without_value = row
        .last_error
        .as_ref()
        .is_some_and(|e| row.value.is_none() || row.expires_at.is_none_or(|x| x <= e.at));
    row.attempts >= FAILURES_TO_RAISE || (row.attempts >= 1 && last_failure_without_value)
}

/// The event of a refusal of wetoken itself (SPEC §16), unless the row
/// already recorded the same one (for an address refusal: the same address).
fn on_refusal(
    prev: Option<&CredentialState>,
    id: &AccountId,
    cred: Credential,
    now: i64,
    error: &LastError,
) -> Option<NewEvent> {
    use crate::upstream::egress::{Refusal, address_in, refusal};
    let r = refusal(error.errcode)?;
    let before = prev.and_then(|p| p.last_error.as_ref());
    let same = before.is_some_and(|b| {
        refusal(b.errcode) == Some(r)
            && (r != Refusal::IpNotWhitelisted || address_in(&b.errmsg) == address_in(&error.errmsg))
    });
    if same {
        return None;
    }
    let mut detail = vec![
        ("errcode", Value::from(error.errcode)),
        ("errmsg", Value::from(error.errmsg.clone())),
    ];
    let kind = match r {
        Refusal::IpNotWhitelisted => {
            detail.push(("address", address_in(&error.errmsg).map_or(Value::Null, Value::from)));
            types::IP_NOT_WHITELISTED
        }
        Refusal::Misconfigured => types::MISCONFIGURED,
        Refusal::NeedsConfirmation { wait_secs } => {
            detail.push(("wait_secs", Value::from(wait_secs)));
            types::NEEDS_CONFIRMATION
        }
    };
    Some(NewEvent::credential(kind, id, cred, now, &detail))
}

/// The events a failure recorded at `now` raises, given the row before it.
pub(super) fn on_failure(
    prev: Option<&CredentialState>,
    id: &AccountId,
    cred: Credential,
    now: i64,
    error: &LastError,
    blocked_until: Option<i64>,
    attempts: i64,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let detail = [
        ("errcode", Value::from(error.errcode)),
        ("errmsg", Value::from(error.errmsg.clone())),
    ];
    let valid = prev.is_some_and(|r| r.value.is_some() && r.expires_at.is_some_and(|x| x > now));
    let failing = attempts >= FAILURES_TO_RAISE || !valid;
    if failing && !prev.is_some_and(was_failing) {
        out.push(NewEvent::credential(types::REFRESH_FAILED, id, cred, now, &detail));
    }
    if let Some(until) = blocked_until
        && prev.and_then(|r| r.blocked_until).is_none_or(|b| b <= now)
    {
        let mut extra = detail.to_vec();
        extra.push(("until", rfc3339(until)));
        out.push(NewEvent::credential(types::BLOCKED, id, cred, now, &extra));
    }
    out.extend(on_refusal(prev, id, cred, now, error));
    let was_61023 = prev
        .and_then(|r| r.last_error.as_ref())
        .is_some_and(|e| e.errcode == 61023);
    if error.errcode == 61023 && matches!(id, AccountId::Authorizer { .. }) && !was_61023 {
        out.push(NewEvent::credential(
            types::NEEDS_REAUTHORIZATION,
            id,
            cred,
            now,
            &detail,
        ));
    }
    out
}

/// The events a value written at `now` raises, given the row before it.
pub(super) fn on_success(prev: Option<&CredentialState>, id: &AccountId, cred: Credential, now: i64) -> Vec<NewEvent> {
    match prev {
        Some(r) if was_failing(r) || r.blocked_until.is_some() => {
            vec![NewEvent::credential(types::RECOVERED, id, cred, now, &[])]
        }
        _ => Vec::new(),
    }
}

impl Inner {
    /// Events this process committed: counted by source
    /// (`wetoken_events_total{source="component"|"suite"|"wetoken"}`), and the
    /// delivery worker woken.
    pub(super) fn committed(&self, events: &[NewEvent]) {
        if events.is_empty() {
            return;
        }
        for e in events {
            let source = match e.kind.split('.').next() {
                Some("component") => "component",
                Some("suite") => "suite",
                Some("wetoken") => "wetoken",
                _ => "other",
            };
            metrics::counter!("wetoken_events_total", "source" => source).increment(1);
        }
        self.wake.notify_one();
    }

    /// A pushed ticket whose staleness deadline (`due_at`) has come: raises
    /// `wetoken.ticket.stale` once, with clearing the deadline, so one
    /// instance raises it; a newer push sets a new deadline.
    pub(super) async fn ticket_stale(&self, row: &CredentialState, now: i64) -> Result<()> {
        let mut data = Map::new();
        data.insert("credential".into(), Value::from(row.credential.as_str()));
        if let Some(at) = row.refreshed_at {
            data.insert("received_at".into(), rfc3339(at));
            data.insert("age_secs".into(), Value::from((now - at) / 1000));
        }
        let event = NewEvent::new(types::TICKET_STALE, &row.account, now, data);
        if self
            .store
            .mark_pushed_stale(&row.account, row.credential, row.version, std::slice::from_ref(&event))
            .await?
        {
            tracing::warn!(account = %row.account, credential = %row.credential, "no newer ticket pushed");
            self.committed(std::slice::from_ref(&event));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Sealed;

    const NOW: i64 = 1_000_000_000;

    fn row(attempts: i64, expires_at: Option<i64>, last_error_at: Option<i64>) -> CredentialState {
        CredentialState {
            account: "mp:wx1".parse().unwrap(),
            credential: Credential::AccessToken,
            value: expires_at.map(|_| Sealed::from_stored("v")),
            expires_at,
            version: 1,
            refreshed_at: None,
            lease_owner: None,
            lease_until: None,
            last_error: last_error_at.map(|at| LastError {
                errcode: -1,
                errmsg: "x".into(),
                at,
            }),
            blocked_until: None,
            forced_at: None,
            due_at: None,
            attempts,
            verdict: None,
        }
    }

    fn kinds(v: Vec<NewEvent>) -> Vec<String> {
        v.into_iter().map(|e| e.kind).collect()
    }

    fn fail(prev: Option<&CredentialState>, attempts: i64, errcode: i64, blocked: Option<i64>) -> Vec<String> {
        let id: AccountId = if errcode == 61023 {
            "authorizer:wxc:wx1".parse().unwrap()
        } else {
            "mp:wx1".parse().unwrap()
        };
        let e = LastError {
            errcode,
            errmsg: "e".into(),
            at: NOW,
        };
        kinds(on_failure(
            prev,
            &id,
            Credential::AccessToken,
            NOW,
            &e,
            blocked,
            attempts,
        ))
    }

    #[test]
    fn a_valid_value_raises_refresh_failed_at_the_third_failure_only() {
        let valid = NOW + 600_000;
        assert!(fail(Some(&row(0, Some(valid), None)), 1, -1, None).is_empty());
        assert!(fail(Some(&row(1, Some(valid), Some(NOW - 1))), 2, -1, None).is_empty());
        assert_eq!(
            fail(Some(&row(2, Some(valid), Some(NOW - 1))), 3, -1, None),
            [types::REFRESH_FAILED]
        );
        assert!(fail(Some(&row(3, Some(valid), Some(NOW - 1))), 4, -1, None).is_empty());
    }

    #[test]
    fn no_valid_value_raises_at_once_and_once() {
        assert_eq!(fail(None, 1, -1, None), [types::REFRESH_FAILED]);
        // Expired since the last failure, which was with a valid value.
        assert_eq!(
            fail(Some(&row(1, Some(NOW - 5), Some(NOW - 10))), 2, -1, None),
            [types::REFRESH_FAILED]
        );
        // Already failing without a value at the last failure.
        assert!(fail(Some(&row(1, Some(NOW - 20), Some(NOW - 10))), 2, -1, None).is_empty());
        assert!(fail(Some(&row(1, None, Some(NOW - 10))), 2, -1, None).is_empty());
    }

    #[test]
    fn refusals_of_wetoken_raise_once_each() {
        let valid = Some(NOW + 600_000);
        let refused = |errcode: i64, errmsg: &str| {
            let mut r = row(1, valid, Some(NOW - 1));
            r.last_error = Some(LastError {
                errcode,
                errmsg: errmsg.into(),
                at: NOW - 1,
            });
            r
        };
        let ip = |addr: &str| format!("invalid ip {addr} ipv6 ::ffff:{addr}, not in whitelist rid: x");
        let raised = |prev: &CredentialState, errcode: i64, errmsg: &str| {
            let e = LastError {
                errcode,
                errmsg: errmsg.into(),
                at: NOW,
            };
            on_failure(
                Some(prev),
                &"mp:wx1".parse::<AccountId>().unwrap(),
                Credential::AccessToken,
                NOW,
                &e,
                None,
                1,
            )
            .into_iter()
            .map(|e| (e.kind, e.data.get("address").cloned()))
            .collect::<Vec<_>>()
        };
        let fresh = row(0, valid, None);
        assert_eq!(
            raised(&fresh, 40164, &ip("1.2.3.4")),
            [(types::IP_NOT_WHITELISTED.to_owned(), Some(Value::from("1.2.3.4")))]
        );
        assert!(
            raised(&refused(40164, &ip("1.2.3.4")), 40164, &ip("1.2.3.4")).is_empty(),
            "once"
        );
        assert_eq!(
            raised(&refused(40164, &ip("1.2.3.4")), 40164, &ip("5.6.7.8")).len(),
            1,
            "a new address"
        );
        assert_eq!(raised(&fresh, 40243, "frozen")[0].0, types::MISCONFIGURED);
        assert!(
            raised(&refused(40125, "x"), 40243, "frozen").is_empty(),
            "still misconfigured"
        );
        assert_eq!(raised(&fresh, 89506, "refused")[0].0, types::NEEDS_CONFIRMATION);
    }

    #[test]
    fn blocks_and_61023_raise_when_they_start() {
        let until = NOW + 600_000;
        let valid = Some(NOW + 600_000);
        assert_eq!(
            fail(Some(&row(0, valid, None)), 1, 40013, Some(until)),
            [types::BLOCKED]
        );
        let mut blocked = row(1, valid, Some(NOW - 1));
        blocked.blocked_until = Some(until);
        assert!(fail(Some(&blocked), 2, 40013, Some(until + 1)).is_empty());
        blocked.blocked_until = Some(NOW - 1);
        assert_eq!(fail(Some(&blocked), 2, 40013, Some(until)), [types::BLOCKED]);
        assert_eq!(
            fail(Some(&row(0, valid, None)), 1, 61023, Some(until)),
            [types::BLOCKED, types::NEEDS_REAUTHORIZATION]
        );
    }

    #[test]
    fn recovered_only_after_a_raised_condition() {
        let id: AccountId = "mp:wx1".parse().unwrap();
        let ok = |r: &CredentialState| kinds(on_success(Some(r), &id, Credential::AccessToken, NOW));
        assert!(ok(&row(0, Some(NOW + 1), None)).is_empty());
        assert!(ok(&row(2, Some(NOW + 1), Some(NOW - 1))).is_empty());
        assert_eq!(ok(&row(3, Some(NOW + 1), Some(NOW - 1))), [types::RECOVERED]);
        assert_eq!(ok(&row(1, None, Some(NOW - 1))), [types::RECOVERED]);
        let mut blocked = row(1, Some(NOW + 1), Some(NOW - 1));
        blocked.blocked_until = Some(NOW + 5);
        assert_eq!(ok(&blocked), [types::RECOVERED]);
        assert!(on_success(None, &id, Credential::AccessToken, NOW).is_empty());
    }
}
