//! When to refresh: pure arithmetic on epoch milliseconds, so that
//! scheduling and backoff are tested without a clock at all.
//!
//! - A fetched value is due at `expires_at - ahead + jitter`, the jitter
//!   drawn in `[0, ahead/2)`: credentials that expire together are
//!   refreshed spread over half the refresh-ahead window, never in a burst.
//!   It is never due sooner than `min(30 s, remaining/2)` from now, so a value
//!   WeChat gives a short life does not loop.
//! - A refresh that got the value it already had (stable_token before its
//!   last 5 minutes) is retried at `max(now + 30 s, expires_at - 290 s)`:
//!   inside WeChat's rotation window, at most one call per 30 s.
//! - A transient failure backs off `min(1 s · 2^(n-1), 60 s)` after the n-th
//!   consecutive failure, scaled by a jitter in `[0.5, 1)`.

/// At most one upstream call per 30 s for a credential whose value did not change.
pub const UNCHANGED_GAP_MS: i64 = 30_000;
/// WeChat's stable_token rotates in the last 5 minutes; aim 10 s inside.
pub const STABLE_ROTATION_MS: i64 = 290_000;
const BACKOFF_BASE_MS: i64 = 1_000;
const BACKOFF_MAX_MS: i64 = 60_000;

/// The next refresh of a value fetched at `now` that expires at
/// `expires_at`. `jitter` is uniform in `[0, 1)`.
pub fn due_after_fetch(now: i64, expires_at: i64, ahead_ms: i64, jitter: f64, unchanged: bool) -> i64 {
    if unchanged {
        return (now + UNCHANGED_GAP_MS).max(expires_at - STABLE_ROTATION_MS);
    }
    let spread = (ahead_ms as f64 / 2.0 * jitter.clamp(0.0, 1.0)) as i64;
    let earliest = now + UNCHANGED_GAP_MS.min((expires_at - now) / 2).max(0);
    (expires_at - ahead_ms + spread).max(earliest)
}

/// The next attempt after the `attempts`-th consecutive transient failure.
pub fn due_after_failure(now: i64, attempts: i64, jitter: f64) -> i64 {
    let exp = (attempts.clamp(1, 30) - 1) as u32;
    let delay = BACKOFF_BASE_MS.saturating_mul(1i64 << exp.min(20)).min(BACKOFF_MAX_MS);
    now + (delay as f64 * (0.5 + jitter.clamp(0.0, 1.0) / 2.0)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000;

    #[test]
    fn fetched_values_are_due_ahead_of_expiry_with_jitter() {
        let now = 1_000_000 * S;
        let exp = now + 7200 * S;
        assert_eq!(due_after_fetch(now, exp, 600 * S, 0.0, false), exp - 600 * S);
        assert_eq!(due_after_fetch(now, exp, 600 * S, 0.999_999, false), exp - 300 * S - 1);
        // 10 000 values expiring together spread over the whole window.
        let dues: Vec<i64> = (0..10_000)
            .map(|i| due_after_fetch(now, exp, 600 * S, i as f64 / 10_000.0, false))
            .collect();
        let per_second = dues.iter().fold(std::collections::HashMap::new(), |mut m, d| {
            *m.entry(d / S).or_insert(0) += 1;
            m
        });
        assert!(
            per_second.values().all(|&n| n <= 34),
            "at most ~33/s over a 300 s window"
        );
    }

    #[test]
    fn short_lived_values_do_not_loop() {
        let now = 0;
        // WeChat gave 400 s, less than the 600 s ahead: not due at once.
        assert_eq!(due_after_fetch(now, 400 * S, 600 * S, 0.0, false), 30 * S);
        // 8 s of life: due half-way.
        assert_eq!(due_after_fetch(now, 8 * S, 600 * S, 0.0, false), 4 * S);
    }

    #[test]
    fn unchanged_values_wait_for_the_rotation_window() {
        let now = 0;
        assert_eq!(due_after_fetch(now, 600 * S, 600 * S, 0.5, true), 310 * S);
        assert_eq!(
            due_after_fetch(now, 300 * S, 600 * S, 0.5, true),
            30 * S,
            "never sooner than 30 s"
        );
    }

    #[test]
    fn failures_back_off_exponentially_with_a_cap() {
        let now = 0;
        assert_eq!(due_after_failure(now, 1, 1.0), S);
        assert_eq!(due_after_failure(now, 1, 0.0), S / 2);
        assert_eq!(due_after_failure(now, 2, 1.0), 2 * S);
        assert_eq!(due_after_failure(now, 4, 1.0), 8 * S);
        assert_eq!(due_after_failure(now, 7, 1.0), 60 * S);
        assert_eq!(due_after_failure(now, 1_000, 1.0), 60 * S);
        assert!(due_after_failure(now, 3, 0.3) < due_after_failure(now, 3, 0.9));
    }
}
