//! The failure policy (SPEC §2), as pure functions of the error and the
//! time: what a failed fetch records, whether it blocks automatic calls,
//! and when the next attempt is due.
//!
//! - 45009 (the day's quota) blocks until 00:00 +08:00, WeChat's quota day;
//! - transient errors (network, timeout, HTTP 5xx, -1) and a ticket's
//!   rejected token are retried with exponential backoff and jitter;
//! - anything else WeChat refuses (40013, 61023, …) is permanent and
//!   blocks automatic calls for 10 minutes or until the account changes;
//! - a refusal of wetoken itself (SPEC §16): a frozen, wrong or missing
//!   secret (40243, 40125, 41004) blocks until the account changes (a
//!   change clears every block); an address not whitelisted (40164, 61004,
//!   60020) blocks like a permanent error; an administrator who refused a
//!   risky call (89506, 89507) blocks for the wait WeChat names, one still
//!   to confirm (89501–89505) backs off;
//! - a failure in what the fetch depends on (a ticket's access token, a
//!   component's verify ticket) backs off without blocking: that
//!   dependency has its own record.

use std::time::Duration;

use super::ServiceError;
use crate::clock::{from_millis, next_quota_day, to_millis};
use crate::domain::Credential;
use crate::store::{CredentialState, LastError};
use crate::timing;
use crate::upstream::UpstreamError;

/// Permanent upstream errors are not retried automatically for this long.
pub const PERMANENT_BLOCK: Duration = Duration::from_secs(600);

/// A misconfigured account (its secret frozen, wrong or missing) is not
/// retried automatically until it changes: for this long at most.
pub const UNTIL_CHANGED: Duration = Duration::from_secs(30 * 86_400);

/// Where a fetch failed: in this credential's own upstream call, or in
/// obtaining what it depends on (a ticket's access token).
#[derive(Debug)]
pub(super) enum FetchError {
    Own(UpstreamError),
    Dependency(ServiceError),
}

impl From<FetchError> for ServiceError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Own(u) => ServiceError::Upstream(u),
            FetchError::Dependency(d) => d,
        }
    }
}

/// What a failed fetch records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub error: LastError,
    pub blocked_until: Option<i64>,
    pub due_at: i64,
}

/// How a fetch of `cred` that failed with `e` at `now` (the `attempts`-th
/// failure in a row) is recorded. `jitter` is uniform in `[0, 1)`.
pub(super) fn classify(e: &FetchError, cred: Credential, now: i64, attempts: i64, jitter: f64) -> Failure {
    let (errcode, errmsg, blocked_until) = match e {
        FetchError::Own(u) => {
            use crate::upstream::egress::{Refusal, refusal};
            let blocked = if u.is_quota() {
                Some(to_millis(next_quota_day(from_millis(now))))
            } else if let Some(r) = refusal(u.errcode()) {
                match r {
                    Refusal::Misconfigured => Some(now + UNTIL_CHANGED.as_millis() as i64),
                    Refusal::IpNotWhitelisted => Some(now + PERMANENT_BLOCK.as_millis() as i64),
                    Refusal::NeedsConfirmation { wait_secs: 0 } => None,
                    Refusal::NeedsConfirmation { wait_secs } => Some(now + wait_secs * 1000),
                }
            } else if u.is_retryable() || (cred.needs_access_token() && u.is_token_rejected()) {
                None
            } else {
                Some(now + PERMANENT_BLOCK.as_millis() as i64)
            };
            (u.errcode(), u.errmsg(), blocked)
        }
        FetchError::Dependency(ServiceError::Upstream(u)) => (u.errcode(), u.errmsg(), None),
        FetchError::Dependency(other) => (-1, other.to_string(), None),
    };
    Failure {
        error: LastError {
            errcode,
            errmsg,
            at: now,
        },
        blocked_until,
        due_at: blocked_until.unwrap_or_else(|| timing::due_after_failure(now, attempts, jitter)),
    }
}

/// The recorded error of a credential that must not be fetched at `now`
/// (a permanent error, or the day's quota spent).
pub(super) fn blocked(row: &CredentialState, now: i64) -> Option<ServiceError> {
    row.blocked_until.filter(|until| *until > now).map(|_| recorded(row))
}

/// The error recorded on a row, as the service reports it.
pub(super) fn recorded(row: &CredentialState) -> ServiceError {
    let (errcode, errmsg) = row
        .last_error
        .as_ref()
        .map_or((-1, String::new()), |e| (e.errcode, e.errmsg.clone()));
    ServiceError::Upstream(UpstreamError::WeChat { errcode, errmsg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wechat(errcode: i64) -> FetchError {
        FetchError::Own(UpstreamError::WeChat {
            errcode,
            errmsg: "x".into(),
        })
    }

    const NOW: i64 = 1_763_740_800_000; // 2025-11-21T16:00:00Z, 00:00 +08:00

    #[test]
    fn refusals_of_wetoken_itself() {
        let day = 86_400_000;
        let f = classify(&wechat(40243), Credential::AccessToken, NOW, 1, 0.5);
        assert_eq!(f.blocked_until, Some(NOW + 30 * day), "until the account changes");
        let f = classify(&wechat(40164), Credential::AccessToken, NOW, 1, 0.5);
        assert_eq!(f.blocked_until, Some(NOW + 600_000));
        let f = classify(&wechat(89506), Credential::AccessToken, NOW, 1, 0.5);
        assert_eq!(f.blocked_until, Some(NOW + day));
        let f = classify(&wechat(89503), Credential::AccessToken, NOW, 1, 0.5);
        assert_eq!(f.blocked_until, None, "retried with backoff");
        assert!(f.due_at > NOW);
    }

    #[test]
    fn quota_blocks_until_the_next_beijing_midnight() {
        let f = classify(&wechat(45009), Credential::AccessToken, NOW + 1, 1, 0.5);
        assert_eq!(f.blocked_until, Some(NOW + 86_400_000));
        assert_eq!(f.due_at, NOW + 86_400_000);
        assert_eq!(f.error.errcode, 45009);
    }

    #[test]
    fn permanent_errors_block_ten_minutes_transient_ones_back_off() {
        let f = classify(&wechat(40013), Credential::AccessToken, NOW, 1, 0.5);
        assert_eq!(f.blocked_until, Some(NOW + 600_000));
        let f = classify(&wechat(-1), Credential::AccessToken, NOW, 3, 1.0);
        assert_eq!((f.blocked_until, f.due_at), (None, NOW + 4_000));
        let f = classify(
            &FetchError::Own(UpstreamError::Status(502)),
            Credential::AccessToken,
            NOW,
            1,
            1.0,
        );
        assert_eq!(f.blocked_until, None);
    }

    #[test]
    fn a_tickets_rejected_token_and_dependencies_do_not_block() {
        let f = classify(&wechat(40001), Credential::JsapiTicket, NOW, 1, 1.0);
        assert_eq!(f.blocked_until, None);
        let f = classify(&wechat(40001), Credential::AccessToken, NOW, 1, 1.0);
        assert!(f.blocked_until.is_some(), "an access token's own 40001 is permanent");
        let dep = FetchError::Dependency(ServiceError::Unavailable("no ticket".into()));
        let f = classify(&dep, Credential::AccessToken, NOW, 1, 1.0);
        assert_eq!((f.error.errcode, f.blocked_until), (-1, None));
    }
}
