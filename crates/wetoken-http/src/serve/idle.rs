//! The idle guard of a connection (SPEC §4: request headers within 10 s,
//! idle keep-alive connections included), lazily: no timer per request.
//!
//! A connection is looked at every [`TICK`]: busy if a request is in
//! flight (a streamed answer counts until its body ends) or one started
//! since the last look. After [`QUIET_TICKS`] quiet looks in a row it is
//! closed, so a connection that starts no request for 10 s (a client
//! dribbling a header, or just holding the socket) is cut off between 10
//! and 12 s after its last request. The cost on a request is a store and
//! two uncontended counter updates; hyper's own header timer, armed and
//! cancelled on every keep-alive request, cost more (`docs/PERFORMANCE.md`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};

use super::HEADER_TIMEOUT;

/// How many quiet looks close a connection.
pub const QUIET_TICKS: u32 = 5;

/// How often a connection looks at itself.
pub const TICK: Duration = Duration::from_secs(HEADER_TIMEOUT.as_secs() / QUIET_TICKS as u64);

/// Answers at most this long (known in advance) are written with their
/// head, in one go; a longer or streamed one keeps the connection busy
/// until its body ends.
const SMALL_BODY: u64 = 16 * 1024;

/// The quiet looks in a row after one more look: `None` closes.
pub fn look(quiet: u32, busy: bool) -> Option<u32> {
    match (busy, quiet + 1) {
        (true, _) => Some(0),
        (false, n) if n >= QUIET_TICKS => None,
        (false, n) => Some(n),
    }
}

/// What a connection's requests are doing, as its guard sees it.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    started: AtomicBool,
}

impl Activity {
    /// A request starts: busy until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Relaxed);
        self.started.store(true, Relaxed);
        Busy(self.clone())
    }

    /// Whether anything happened since the last look (and forget it).
    fn busy(&self) -> bool {
        self.started.swap(false, Relaxed) | (self.in_flight.load(Relaxed) > 0)
    }
}

/// A request in flight.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Busy {
    /// `answer` with this request kept in flight until its body has been
    /// written, when that may take a while (streamed, or long).
    pub fn until_written(self, answer: axum::response::Response) -> axum::response::Response {
        let hint = answer.body().size_hint();
        if hint.exact().is_some_and(|n| n <= SMALL_BODY) {
            return answer;
        }
        answer.map(|body| Body::new(Streaming { body, _busy: self }))
    }
}

/// A body that keeps its request in flight while it is being written.
struct Streaming {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Streaming {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Watches a connection's task and aborts it (which drops the connection,
/// closing its socket and freeing its slot) once idle; ends at the first
/// look after the connection has. A task of its own, so that the
/// connection's task polls no timer when it wakes.
pub fn watch(connection: tokio::task::AbortHandle, activity: Arc<Activity>) {
    tokio::spawn(async move {
        let mut quiet = 0;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if connection.is_finished() {
                return;
            }
            match look(quiet, activity.busy()) {
                Some(q) => quiet = q,
                None => return connection.abort(),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_after_quiet_looks_in_a_row_and_never_while_busy() {
        let mut quiet = 0;
        for _ in 0..100 {
            quiet = look(quiet, true).expect("busy stays open");
        }
        for n in 1..QUIET_TICKS {
            quiet = look(quiet, false).expect("not yet");
            assert_eq!(quiet, n);
        }
        // A request just before the last quiet look starts the count again.
        assert_eq!(look(quiet, true), Some(0));
        assert_eq!(look(quiet, false), None);
        // Cut off between 10 and 12 s after the last request.
        assert_eq!(TICK * QUIET_TICKS, HEADER_TIMEOUT);
    }

    #[test]
    fn a_request_counts_until_its_guard_goes_and_once_after() {
        let a = Arc::new(Activity::default());
        assert!(!a.busy());
        let busy = a.begin();
        assert!(a.busy() && a.busy(), "in flight");
        drop(busy);
        assert!(!a.busy(), "done and seen");
        drop(a.begin());
        assert!(a.busy(), "started since the last look");
        assert!(!a.busy());
    }

    #[test]
    fn small_answers_are_not_wrapped_long_ones_are() {
        let a = Arc::new(Activity::default());
        let small = a.begin().until_written(axum::response::Response::new(Body::from("x")));
        assert!(a.busy() && !a.busy(), "started, then done with its head");
        let long = a
            .begin()
            .until_written(axum::response::Response::new(Body::from(vec![b'x'; 20_000])));
        a.busy();
        assert!(a.busy(), "in flight while the body is written");
        drop(long);
        assert!(!a.busy());
        drop(small);
    }
}
