//! SPEC §16: an upstream is a list of domains. Two domains of one
//! simulated WeChat (a token from one is good at the other), the real
//! binary configured with both: one killed or hanging, every refresh still
//! succeeds within one upstream timeout; the failed one is passed over;
//! WeChat's errcodes never switch domains.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use wetoken_sim::{Fault, Reach, STABLE_TOKEN, TOKEN};

use crate::helpers::*;

/// The upstream timeout the servers here run with.
const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_hanging_domain_is_passed_over_and_errcodes_stay() {
    let sim = sim().await;
    let (a, b) = (sim.domain().await.unwrap(), sim.domain().await.unwrap());
    let list = format!("{},{}", a.url(), b.url());
    let srv = spawn_process_with(&tempdir(), &list, &[("WETOKEN_PROXY", "on")]).await;
    for i in 0..6 {
        sim.add_app(&format!("wxdomain{i:04}"), "s");
        srv.add_mp(&format!("wxdomain{i:04}"), "s").await;
    }
    let read = |i: usize| {
        let srv = &srv;
        async move {
            let started = Instant::now();
            let (s, v) = srv
                .get(&format!("/v1/mp/wxdomain{i:04}/access_token"), Some(ADMIN))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            (v["access_token"].as_str().unwrap().to_owned(), started.elapsed())
        }
    };

    // Both up: the first domain serves.
    let (token, _) = read(0).await;
    assert!(sim.is_valid(&token));
    assert_eq!((a.calls(), b.calls()), (1, 0));

    // The first killed: every fetch succeeds through the second, at once.
    a.set(Reach::Down);
    for i in 1..4 {
        let (token, took) = read(i).await;
        assert!(sim.is_valid(&token) && took < TIMEOUT, "{took:?}");
    }
    assert_eq!((a.calls(), b.calls()), (1, 3));
    // The proxy too.
    let (s, v) = srv
        .get(&format!("/cgi-bin/getcallbackip?access_token={token}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["ip_list"].is_array(), "{v}");
    assert_eq!(b.calls(), 4);
    // Back up, but passed over for a minute: still the second.
    a.set(Reach::Up);
    read(4).await;
    assert_eq!((a.calls(), b.calls()), (1, 5));
    assert_eq!(
        metric(&srv, "wetoken_upstream_failovers_total", &["api=\"mp\""]).await,
        1.0
    );

    // WeChat's errcode never switches: one call, to the domain in use.
    for endpoint in [TOKEN, STABLE_TOKEN] {
        sim.inject(endpoint, Fault::Errcode(40013), Some(1));
    }
    let (s, v) = srv.get("/v1/mp/wxdomain0005/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!((a.calls(), b.calls()), (1, 6));
    // Nor does a 5xx of the last domain left: it is WeChat's answer.
    sim.clear_faults();

    // A hanging first domain (a second server, nothing remembered): the
    // fetch moves on after half the timeout and ends within it.
    let (c, d) = (sim.domain().await.unwrap(), sim.domain().await.unwrap());
    c.set(Reach::Hangs);
    let srv2 = spawn_process_with(&tempdir(), &format!("{},{}", c.url(), d.url()), &[]).await;
    srv2.add_mp("wxdomain0005", "s").await;
    let started = Instant::now();
    let (s, v) = srv2.get("/v1/mp/wxdomain0005/access_token", Some(ADMIN)).await;
    let took = started.elapsed();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(took >= TIMEOUT / 2 && took < TIMEOUT, "{took:?}");
    assert_eq!((c.calls(), d.calls()), (1, 1));
}
