//! The one HTTP transport to WeChat and WeCom, shared by the engine's own
//! calls ([`super::Upstream`]) and by the relay of business calls (the HTTP
//! layer's proxy): one client — timeouts, no redirects (WeChat's APIs never
//! redirect; a redirect is an error, never followed with a token in the
//! query), wetoken's User-Agent unless the caller sends its own, the egress
//! proxy when one is set (`WETOKEN_UPSTREAM_PROXY`) — the one rule of which
//! API serves an account kind, and the failover between an API's domains
//! (SPEC §16, [`Transport::failover`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::domain::AccountKind;

use super::{UpstreamConfig, UpstreamError, install_crypto_provider};

/// How long a domain that failed is passed over (SPEC §16: a minute).
pub const REMEMBER_DOWN_MS: i64 = 60_000;

/// The two APIs wetoken calls: WeChat's (`WETOKEN_UPSTREAM_MP`) for
/// Official Accounts, Mini Programs and the Open Platform; WeCom's
/// (`WETOKEN_UPSTREAM_WORK`) for every WeCom kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Mp,
    Work,
}

impl Api {
    pub fn of(kind: AccountKind) -> Api {
        match kind {
            AccountKind::Mp | AccountKind::Component | AccountKind::Authorizer => Api::Mp,
            AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider => Api::Work,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::Mp => "mp",
            Api::Work => "work",
        }
    }
}

/// One API's domains in the order configured, and until when (epoch ms)
/// each is passed over after failing.
#[derive(Debug)]
struct Domains {
    bases: Vec<String>,
    down_until: Vec<AtomicI64>,
}

impl Domains {
    fn new(bases: &[String]) -> Domains {
        let bases: Vec<String> = bases.iter().map(|b| b.trim_end_matches('/').to_owned()).collect();
        let down_until = bases.iter().map(|_| AtomicI64::new(0)).collect();
        Domains { bases, down_until }
    }

    /// The order to try them in at `now`: those not passed over, as
    /// configured, then those passed over (they are the last resort, not
    /// skipped).
    fn order(&self, now: i64) -> Vec<usize> {
        let down = |i: &usize| self.down_until[*i].load(Ordering::Relaxed) > now;
        let (mut up, down): (Vec<usize>, Vec<usize>) = (0..self.bases.len()).partition(|i| !down(i));
        up.extend(down);
        up
    }
}

/// What one attempt of a call is given: the domain to call and how long
/// the whole call may still take (its request's own timeout, covering an
/// answer read as it streams).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub base: String,
    pub remaining: Duration,
}

#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    cfg: UpstreamConfig,
    domains: Arc<[Domains; 2]>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamError> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    /// A transport whose memory of failed domains runs on `clock`.
    pub fn with_clock(cfg: UpstreamConfig, clock: Arc<dyn Clock>) -> Result<Self, UpstreamError> {
        install_crypto_provider();
        if cfg.mp.is_empty() || cfg.work.is_empty() {
            return Err(UpstreamError::Transport(
                "each upstream needs at least one base URL".into(),
            ));
        }
        let mut http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wetoken/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &cfg.proxy {
            // Every scheme through it (CONNECT for https); nothing around
            // it, whatever NO_PROXY says.
            let proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| UpstreamError::Transport(format!("WETOKEN_UPSTREAM_PROXY: {e}")))?
                .no_proxy(None);
            http = http.proxy(proxy);
        }
        let http = http.build().map_err(|e| UpstreamError::Transport(e.to_string()))?;
        let domains = Arc::new([Domains::new(&cfg.mp), Domains::new(&cfg.work)]);
        Ok(Transport {
            http,
            cfg,
            domains,
            clock,
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The client every call to WeChat goes through.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    fn domains(&self, api: Api) -> &Domains {
        &self.domains[api as usize]
    }

    /// The domain a call of `api` goes to first now (the first configured
    /// that is not passed over).
    pub fn current(&self, api: Api) -> &str {
        let d = self.domains(api);
        &d.bases[d.order(self.clock.now_ms())[0]]
    }

    /// One call to `api`, moved to its next domain on a connect error, a
    /// timeout or an HTTP 5xx (`switches`) — never on WeChat's own answer —
    /// the failed domain passed over by this instance for a minute. The
    /// whole call ends within the upstream timeout: each attempt waits at
    /// most its share of what is left (what is left ÷ domains still to
    /// try) for its answer; `timed_out` is the result of one that did not
    /// answer in time. An attempt that may not be repeated (a body already
    /// streamed) is `once`: it goes to the current domain alone.
    pub async fn failover<R, F, Fut>(
        &self,
        api: Api,
        once: bool,
        mut attempt: F,
        switches: impl Fn(&R) -> bool,
        timed_out: impl Fn(Duration) -> R,
    ) -> R
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = R>,
    {
        let started = Instant::now();
        let d = self.domains(api);
        let mut order = d.order(self.clock.now_ms());
        if once {
            order.truncate(1);
        }
        let mut last = None;
        for (n, &i) in order.iter().enumerate() {
            let remaining = self.cfg.timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                break;
            }
            let share = remaining / (order.len() - n) as u32;
            let a = Attempt {
                base: d.bases[i].clone(),
                remaining,
            };
            let result = match tokio::time::timeout(share, attempt(a)).await {
                Ok(r) => r,
                Err(_) => timed_out(share),
            };
            if !switches(&result) {
                d.down_until[i].store(0, Ordering::Relaxed);
                return result;
            }
            let was_up =
                d.down_until[i].swap(self.clock.now_ms() + REMEMBER_DOWN_MS, Ordering::Relaxed) <= self.clock.now_ms();
            if was_up && d.bases.len() > 1 {
                metrics::counter!("wetoken_upstream_failovers_total", "api" => api.name()).increment(1);
                tracing::warn!(domain = %d.bases[i], api = api.name(),
                    "an upstream domain did not answer: passed over for a minute");
            }
            last = Some(result);
        }
        last.unwrap_or_else(|| timed_out(self.cfg.timeout))
    }

    /// A transport error as an [`UpstreamError`], without reqwest's URL (a
    /// query may carry a secret or a token).
    pub fn error(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.cfg.timeout)
        } else {
            UpstreamError::Transport(e.without_url().to_string())
        }
    }
}

/// Whether an engine call's failure moves it to the next domain: the
/// domain did not answer (connect error, timeout) or answered 5xx.
pub fn switches<T>(r: &Result<T, UpstreamError>) -> bool {
    matches!(r, Err(UpstreamError::Transport(_) | UpstreamError::Timeout(_)))
        || matches!(r, Err(UpstreamError::Status(s)) if *s >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn transport(mp: &[&str], clock: Arc<ManualClock>) -> Transport {
        Transport::with_clock(
            UpstreamConfig {
                mp: mp.iter().map(|s| s.to_string()).collect(),
                work: vec!["http://work.example".into()],
                timeout: Duration::from_secs(2),
                ..UpstreamConfig::default()
            },
            clock,
        )
        .unwrap()
    }

    #[test]
    fn each_kind_has_its_api_and_bases_lose_a_trailing_slash() {
        let t = transport(&["http://mp.example/"], Arc::new(ManualClock::new(chrono::Utc::now())));
        for k in AccountKind::ALL {
            let wecom = matches!(
                k,
                AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider
            );
            let want = if wecom {
                "http://work.example"
            } else {
                "http://mp.example"
            };
            assert_eq!(t.current(Api::of(k)), want, "{k:?}");
        }
    }

    /// Calls that record the domains they were made to, each domain
    /// answering as `answer` says.
    async fn call(
        t: &Transport,
        answer: fn(&str) -> Result<u8, UpstreamError>,
    ) -> (Result<u8, UpstreamError>, Vec<String>) {
        let seen = std::sync::Mutex::new(Vec::new());
        let r = t
            .failover(
                Api::Mp,
                false,
                |a: Attempt| {
                    seen.lock().unwrap().push(a.base.clone());
                    async move {
                        if a.base.contains("hang") {
                            std::future::pending::<()>().await;
                        }
                        answer(&a.base)
                    }
                },
                switches,
                |d| Err(UpstreamError::Timeout(d)),
            )
            .await;
        (r, seen.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_dead_domain_is_passed_over_for_a_minute_and_errcodes_never_switch() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let t = transport(&["http://a", "http://b"], clock.clone());
        let dead_a = |b: &str| {
            if b == "http://a" {
                Err(UpstreamError::Transport("connection refused".into()))
            } else {
                Ok(2)
            }
        };
        assert_eq!(
            call(&t, dead_a).await,
            (Ok(2), vec!["http://a".into(), "http://b".into()])
        );
        // Remembered: straight to b.
        assert_eq!(call(&t, dead_a).await.1, vec!["http://b".to_string()]);
        assert_eq!(t.current(Api::Mp), "http://b");
        clock.advance(chrono::Duration::seconds(61));
        assert_eq!(t.current(Api::Mp), "http://a");
        let up = |_: &str| Ok(1);
        assert_eq!(call(&t, up).await, (Ok(1), vec!["http://a".into()]));
        // WeChat's errcode or a 4xx stands.
        let errcode = |_: &str| {
            Err(UpstreamError::WeChat {
                errcode: 40013,
                errmsg: "invalid appid".into(),
            })
        };
        assert_eq!(call(&t, errcode).await.1.len(), 1);
        let status = |_: &str| Err(UpstreamError::Status(404));
        assert_eq!(call(&t, status).await.1.len(), 1);
        // A 5xx switches.
        let broken = |b: &str| {
            if b == "http://a" {
                Err(UpstreamError::Status(502))
            } else {
                Ok(2)
            }
        };
        assert_eq!(call(&t, broken).await.0, Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_domain_takes_half_the_timeout_and_the_call_ends_within_it() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let t = transport(&["http://hang", "http://b"], clock.clone());
        let started = tokio::time::Instant::now();
        let (r, seen) = call(&t, |_| Ok(2)).await;
        assert_eq!((r, seen.len()), (Ok(2), 2));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // Every domain hanging: the timeout, whole.
        let t = transport(&["http://hang1", "http://hang2"], clock);
        let started = tokio::time::Instant::now();
        let (r, _) = call(&t, |_| Ok(2)).await;
        assert!(matches!(r, Err(UpstreamError::Timeout(_))), "{r:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn once_tries_the_current_domain_alone_and_all_down_still_tries_all() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let t = transport(&["http://a", "http://b"], clock);
        let dead = |_: &str| Err(UpstreamError::Transport("refused".into()));
        let (_, seen) = call(&t, dead).await;
        assert_eq!(seen.len(), 2);
        // Both passed over: both still tried, in order.
        let (_, seen) = call(&t, dead).await;
        assert_eq!(seen, vec!["http://a".to_string(), "http://b".to_string()]);
        let r: Result<u8, UpstreamError> = t
            .failover(
                Api::Mp,
                true,
                |_| async { Err(UpstreamError::Status(503)) },
                switches,
                |d| Err(UpstreamError::Timeout(d)),
            )
            .await;
        assert_eq!(r, Err(UpstreamError::Status(503)));
    }
}
