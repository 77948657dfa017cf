//! Time is injected so that expiry, scheduling and backoff are tested
//! without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// [`Clock::now`] as epoch milliseconds, how instants are stored and
    /// compared (a clock may answer it without building a date).
    fn now_ms(&self) -> i64 {
        to_millis(self.now())
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Milliseconds since the epoch: how every instant is stored.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The start of the next WeChat quota day: 00:00 in +08:00.
pub fn next_quota_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let local = now.with_timezone(&cst).date_naive();
    let next = local.succ_opt().unwrap_or(local);
    next.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(cst)
        .single()
        .expect("fixed offset is unambiguous")
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_day_rolls_at_beijing_midnight() {
        let t: DateTime<Utc> = "2026-11-21T15:59:00Z".parse().unwrap();
        assert_eq!(
            next_quota_day(t),
            "2026-11-21T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let t: DateTime<Utc> = "2026-11-21T16:00:00Z".parse().unwrap();
        assert_eq!(
            next_quota_day(t),
            "2026-11-22T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn the_system_clock_in_milliseconds_agrees_with_its_date() {
        let c = SystemClock;
        let (a, ms, b) = (to_millis(c.now()), c.now_ms(), to_millis(c.now()));
        assert!(a <= ms && ms <= b, "{a} {ms} {b}");
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(from_millis(1_000));
        c.advance(Duration::seconds(5));
        assert_eq!(to_millis(c.now()), 6_000);
    }
}
