//! Three real `wetoken serve` processes on one database and one simulator:
//! the one-refresher invariant across processes (SPEC §2). Every scenario
//! runs on SQLite (one file, WAL) and, under `cargo xtask ci`, on MariaDB and
//! PostgreSQL.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use reqwest::StatusCode;
use wetoken_sim::{Fault, Sim, SimConfig, TOKEN};

use crate::helpers::*;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    MariaDb,
    Postgres,
}

/// A fresh database for one test: a file in `dir`, or a new database on the
/// server `cargo xtask ci` started.
async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    let var = match backend {
        Backend::Sqlite => return format!("sqlite://{}", dir.join("wetoken.db").display()),
        Backend::MariaDb => "WETOKEN_TEST_MYSQL_URL",
        Backend::Postgres => "WETOKEN_TEST_POSTGRES_URL",
    };
    let server = std::env::var(var).unwrap_or_else(|_| panic!("set {var}, or run `cargo xtask ci`"));
    wetoken_store_tests::fresh_database(&server).await.unwrap()
}

/// Three instances sharing one database (and one data dir, so one master key).
async fn cluster(sim: &Sim, backend: Backend, extra: &[(&str, &str)]) -> Vec<TestServer> {
    let dir = tempdir();
    let url = database_url(backend, &dir).await;
    let mut env: Vec<(&str, &str)> = vec![("WETOKEN_DATABASE_URL", &url)];
    env.extend_from_slice(extra);
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(spawn_process_with(&dir, &sim.url(), &env).await);
    }
    servers
}

/// Runs a scenario on SQLite always, and on MariaDB and PostgreSQL when
/// their servers are there (`cargo xtask ci` passes --include-ignored).
macro_rules! on_every_backend {
    ($scenario:ident) => {
        mod $scenario {
            use super::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$scenario(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[ignore = "needs MariaDB: run `cargo xtask ci`, or set WETOKEN_TEST_MYSQL_URL and pass --include-ignored"]
            async fn mariadb() {
                super::$scenario(Backend::MariaDb).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[ignore = "needs PostgreSQL: run `cargo xtask ci`, or set WETOKEN_TEST_POSTGRES_URL and pass --include-ignored"]
            async fn postgres() {
                super::$scenario(Backend::Postgres).await
            }
        }
    };
}

on_every_backend!(six_hundred_cold_reads_over_three_instances_make_one_call);
on_every_backend!(proactive_refresh_keeps_every_served_token_valid);
on_every_backend!(a_killed_lease_holder_is_taken_over);
on_every_backend!(failing_upstream_serves_the_valid_token_then_fails_fast);
on_every_backend!(a_fetch_whose_caller_left_serves_every_instance);
on_every_backend!(stale_reports_over_three_instances_share_one_budget);
on_every_backend!(a_live_token_reported_on_three_instances_is_asked_about_once);
on_every_backend!(forced_refreshes_over_three_instances_share_the_day_cap);
on_every_backend!(a_holder_that_wakes_after_its_lease_changes_nothing);
on_every_backend!(three_instances_deliver_a_thousand_events_once_each);

/// The token `srv` serves once another holder's lease (of `lease_secs`)
/// has run out. Readers wait at most the upstream timeout + 2 s (503
/// meanwhile); then the next one takes the lease over.
async fn taken_over(srv: &TestServer, path: &str, lease_secs: u64) -> String {
    let started = Instant::now();
    loop {
        let asked = Instant::now();
        let (s, v) = srv.get(path, Some(ADMIN)).await;
        assert!(asked.elapsed() < Duration::from_secs(3 + 2 + 1), "a bounded wait");
        if s == StatusCode::OK {
            return v["access_token"].as_str().unwrap().to_owned();
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(lease_secs + 5),
            "taken over within the lease + a few seconds"
        );
    }
}

fn signal(srv: &TestServer, sig: &str) {
    let pid = srv.pid().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// SPEC §2 fencing, three processes: instance 0 holds the lease while
/// WeChat hangs, and is frozen (SIGSTOP) past its lease; instance 1 takes
/// over and refreshes. When instance 0 wakes, its late failure is not
/// written over instance 1's success.
async fn a_holder_that_wakes_after_its_lease_changes_nothing(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxfence", "s");
    let servers = cluster(&sim, backend, &[("WETOKEN_LEASE_SECS", "7")]).await;
    servers[0].add_mp("wxfence", "s").await;
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_secs(60)),
        Some(1),
    );
    let url = servers[0].url.clone();
    let stalled = tokio::spawn(async move {
        client()
            .get(format!("{url}/v1/mp/wxfence/access_token"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .map(|r| r.status())
    });
    assert!(
        until(Duration::from_secs(10), || async { sim.token_calls() == 1 }).await,
        "instance 0 called WeChat"
    );
    signal(&servers[0], "-STOP");
    let token = taken_over(&servers[1], "/v1/mp/wxfence/access_token", 7).await;
    signal(&servers[0], "-CONT");
    // Instance 0 wakes past its upstream timeout and its lease: it answers
    // its client and tries to record its failure.
    let answered = tokio::time::timeout(Duration::from_secs(20), stalled).await;
    assert!(answered.is_ok(), "instance 0 answered after waking");
    let (_, account) = servers[2].get("/v1/accounts/mp:wxfence", Some(ADMIN)).await;
    assert_eq!(
        account["credentials"]["access_token"]["last_error"],
        serde_json::Value::Null,
        "the late failure was not written: {account}"
    );
    for (i, srv) in servers.iter().enumerate() {
        let (s, v) = srv.get("/v1/mp/wxfence/access_token", Some(ADMIN)).await;
        assert_eq!(
            (s, v["access_token"].as_str()),
            (StatusCode::OK, Some(token.as_str())),
            "instance {i}: {v}"
        );
    }
    assert!(sim.is_valid(&token));
    assert_eq!(sim.token_calls(), 2);
}

/// SPEC §2 "a fetch outlives its caller": the client that started the fetch
/// disconnects after 100 ms of a 2 s WeChat call; readers on every
/// instance, the first one included, get its result: one upstream call.
async fn a_fetch_whose_caller_left_serves_every_instance(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxleft", "s");
    let servers = cluster(&sim, backend, &[]).await;
    servers[0].add_mp("wxleft", "s").await;
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_secs(2)),
        Some(1),
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gone = impatient
        .get(format!("{}/v1/mp/wxleft/access_token", servers[0].url))
        .bearer_auth(ADMIN)
        .send()
        .await;
    assert!(gone.is_err(), "the first client left");
    let reads = (0..30).map(|i| servers[i % 3].get("/v1/mp/wxleft/access_token", Some(ADMIN)));
    let answers = join_all(reads).await;
    let first = answers[0].1["access_token"].clone();
    for (s, v) in &answers {
        assert_eq!(*s, StatusCode::OK, "{v}");
        assert_eq!(v["access_token"], first);
    }
    assert_eq!(sim.token_calls(), 1, "one fetch across three processes");
}

/// SPEC §2 "callers cannot drain the quota", cluster-wide: stale reports of
/// the current value spread over three instances refresh it once.
async fn stale_reports_over_three_instances_share_one_budget(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxbudget", "s");
    let servers = cluster(&sim, backend, &[]).await;
    servers[0].add_mp("wxbudget", "s").await;
    let (_, v) = servers[0].get("/v1/mp/wxbudget/access_token", Some(ADMIN)).await;
    let mut current = v["access_token"].as_str().unwrap().to_owned();
    let mut refreshed = 0;
    for i in 0..21 {
        // Dead at WeChat each time (a report of a live token rotates nothing).
        sim.revoke(&current);
        let (s, v) = servers[i % 3]
            .post(
                "/v1/mp/wxbudget/access_token/refresh",
                Some(ADMIN),
                Some(serde_json::json!({"stale": current})),
            )
            .await;
        match s {
            StatusCode::OK => {
                current = v["access_token"].as_str().unwrap().to_owned();
                refreshed += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(refreshed, 1);
    assert_eq!(sim.token_calls(), 2, "the first fetch and one refresh, in all");
}

/// SPEC §2 "verified": reports of a token WeChat still accepts, on three
/// instances, ask WeChat once (the verdict is remembered cluster-wide for
/// WETOKEN_VERIFY_TTL_SECS) and rotate nothing: every answer is the same
/// token with `verified_at`.
async fn a_live_token_reported_on_three_instances_is_asked_about_once(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxlive", "s");
    let servers = cluster(&sim, backend, &[("WETOKEN_VERIFY_TTL_SECS", "300")]).await;
    servers[0].add_mp("wxlive", "s").await;
    let (_, v) = servers[0].get("/v1/mp/wxlive/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    for i in 0..9 {
        let (s, v) = servers[i % 3]
            .post(
                "/v1/mp/wxlive/access_token/refresh",
                Some(ADMIN),
                Some(serde_json::json!({"stale": token})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["access_token"], token.as_str(), "a live token is answered again");
        assert!(v["verified_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    }
    assert_eq!(sim.calls(wetoken_sim::GET_API_DOMAIN_IP), 1, "asked once, cluster-wide");
    assert_eq!(sim.token_calls(), 1, "nothing rotated");
    assert!(sim.is_valid(&token));
}

/// SPEC §2: a value WeChat rejects but stable_token's normal mode still
/// answers is replaced by a forced call, at most WETOKEN_MAX_FORCED_PER_DAY
/// a WeChat day across the cluster; the first refusal raises one
/// `wetoken.credential.force_budget_spent`, and later ones none.
async fn forced_refreshes_over_three_instances_share_the_day_cap(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxcap", "s");
    sim.configure(|c| c.force_min_gap_secs = 0);
    let servers = cluster(
        &sim,
        backend,
        &[
            ("WETOKEN_MAX_FORCED_PER_DAY", "2"),
            ("WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS", "0"),
        ],
    )
    .await;
    servers[0].add_mp("wxcap", "s").await;
    let (_, v) = servers[0].get("/v1/mp/wxcap/access_token", Some(ADMIN)).await;
    let mut current = v["access_token"].as_str().unwrap().to_owned();
    let mut outcomes = Vec::new();
    for i in 0..5 {
        sim.poison(&current);
        let (s, v) = servers[i % 3]
            .post(
                "/v1/mp/wxcap/access_token/refresh",
                Some(ADMIN),
                Some(serde_json::json!({"stale": current})),
            )
            .await;
        if s == StatusCode::OK {
            let new = v["access_token"].as_str().unwrap().to_owned();
            assert_ne!(new, current, "a rejected token is replaced");
            assert!(sim.is_valid(&new));
            current = new;
        } else {
            assert_eq!(v["error"], "rate_limited", "{v}");
        }
        outcomes.push(s.as_u16());
    }
    assert_eq!(
        outcomes,
        [200, 200, 429, 429, 429],
        "two forced calls a day, cluster-wide"
    );
    // Each round asks normal mode first; only the granted ones force.
    assert_eq!(sim.calls(wetoken_sim::STABLE_TOKEN), 1 + 5 + 2);
    let (s, v) = servers[1]
        .get("/v1/events?type=wetoken.credential.force_budget_spent", Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "raised once a day: {v}");
    assert_eq!(events[0]["account"], "mp:wxcap");
    assert_eq!(events[0]["data"]["credential"], "access_token");
}

async fn six_hundred_cold_reads_over_three_instances_make_one_call(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxcluster", "s");
    let servers = cluster(&sim, backend, &[]).await;
    servers[0].add_mp("wxcluster", "s").await;
    // A slow WeChat, so that every instance arrives while the lease is held.
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_millis(500)),
        Some(1),
    );
    let reads = (0..600).map(|i| servers[i % 3].get("/v1/mp/wxcluster/access_token", Some(ADMIN)));
    let answers = join_all(reads).await;
    let first = answers[0].1["access_token"].clone();
    for (s, v) in &answers {
        assert_eq!(*s, StatusCode::OK, "{v}");
        assert_eq!(v["access_token"], first);
    }
    assert_eq!(sim.token_calls(), 1, "exactly one upstream call across three processes");
    let mut waits = 0.0;
    for srv in &servers {
        waits += metric(srv, "wetoken_lease_waits_total", &[]).await;
    }
    assert!(waits >= 1.0, "the other instances waited on the lease");
}

async fn proactive_refresh_keeps_every_served_token_valid(backend: Backend) {
    // Short lives: a token lives 6 s, is due 3 s before expiry; WeChat's
    // grace is shortened to 3 s so a stale cache would be caught.
    let sim = Sim::start(SimConfig {
        token_ttl_secs: 6,
        grace_secs: 3,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.add_app("wxproactive", "s");
    let env = [("WETOKEN_REFRESH_AHEAD_SECS", "5"), ("WETOKEN_CACHE_TTL_SECS", "1")];
    let servers = cluster(&sim, backend, &env).await;
    let (s, v) = servers[0]
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(serde_json::json!({"kind":"mp","appid":"wxproactive","secret":"s","token_api":"classic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let mut served = std::collections::HashSet::new();
    let mut reads = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        for srv in &servers {
            let (s, v) = srv.get("/v1/mp/wxproactive/access_token", Some(ADMIN)).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let token = v["access_token"].as_str().unwrap().to_owned();
            assert!(
                sim.is_valid(&token),
                "instance {} served a token WeChat no longer accepts",
                srv.url
            );
            served.insert(token);
            reads += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        served.len() >= 5,
        "many refreshes: {} tokens over {reads} reads",
        served.len()
    );
    // The last refresh may still be writing its count: wait until every
    // upstream call the simulator saw is a counted refresh of one instance.
    let totals = || async {
        let (mut cold, mut passive, mut proactive) = (0.0, 0.0, 0.0);
        for srv in &servers {
            cold += metric(srv, "wetoken_refreshes_total", &["trigger=\"cold\""]).await;
            passive += metric(srv, "wetoken_refreshes_total", &["trigger=\"passive\""]).await;
            proactive += metric(srv, "wetoken_refreshes_total", &["trigger=\"proactive\""]).await;
        }
        (cold, passive, proactive)
    };
    let settled = until(Duration::from_secs(10), || async {
        let (cold, _, proactive) = totals().await;
        sim.token_calls() as f64 == cold + proactive
    })
    .await;
    let (cold, passive, proactive) = totals().await;
    assert!(
        settled,
        "upstream calls {} != counted refreshes {}: a duplicate fetch",
        sim.token_calls(),
        cold + proactive
    );
    assert_eq!(cold, 1.0, "only the first read fetched");
    assert_eq!(passive, 0.0, "no reader-triggered refresh");
    assert!(
        proactive as usize >= served.len() - 1,
        "every later token came from the scheduler"
    );
}

async fn a_killed_lease_holder_is_taken_over(backend: Backend) {
    let sim = sim().await;
    sim.add_app("wxkill", "s");
    let mut servers = cluster(&sim, backend, &[("WETOKEN_LEASE_SECS", "7")]).await;
    servers[0].add_mp("wxkill", "s").await;
    // Instance 0 takes the lease; WeChat is slow to answer it.
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_secs(30)),
        Some(1),
    );
    let holder = servers.remove(0);
    let url = holder.url.clone();
    tokio::spawn(async move {
        let _ = client()
            .get(format!("{url}/v1/mp/wxkill/access_token"))
            .bearer_auth(ADMIN)
            .send()
            .await;
    });
    assert!(
        until(Duration::from_secs(10), || async { sim.token_calls() == 1 }).await,
        "instance 0 called WeChat"
    );
    holder.kill().await;

    let token = taken_over(&servers[0], "/v1/mp/wxkill/access_token", 7).await;
    let token = token.as_str();
    assert!(sim.is_valid(token));
    assert_eq!(sim.token_calls(), 2);
    let (s, v) = servers[1].get("/v1/mp/wxkill/access_token", Some(ADMIN)).await;
    assert_eq!(
        (s, v["access_token"].as_str()),
        (StatusCode::OK, Some(token)),
        "nothing lost, one value"
    );
}

async fn failing_upstream_serves_the_valid_token_then_fails_fast(backend: Backend) {
    let sim = Sim::start(SimConfig {
        token_ttl_secs: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.add_app("wxdown", "s");
    let servers = cluster(
        &sim,
        backend,
        &[("WETOKEN_REFRESH_AHEAD_SECS", "3"), ("WETOKEN_CACHE_TTL_SECS", "1")],
    )
    .await;
    let (s, _) = servers[0]
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(serde_json::json!({"kind":"mp","appid":"wxdown","secret":"s","token_api":"classic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = servers[1].get("/v1/mp/wxdown/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    sim.inject(TOKEN, Fault::Http500, None);
    // While it is valid, every instance serves it.
    for srv in &servers {
        let (s, v) = srv.get("/v1/mp/wxdown/access_token", Some(ADMIN)).await;
        assert_eq!((s, v["access_token"].as_str()), (StatusCode::OK, Some(token.as_str())));
    }
    // Once expired: a quick 502 (or 503), never a hang and never the stale value.
    let failed = until(Duration::from_secs(10), || async {
        let started = Instant::now();
        let (s, v) = servers[2].get("/v1/mp/wxdown/access_token", Some(ADMIN)).await;
        assert!(
            started.elapsed() < Duration::from_secs(3 + 2),
            "within the request timeout"
        );
        if s == StatusCode::OK {
            assert_eq!(v["access_token"], token.as_str(), "no other token can exist");
            assert!(v["expires_in"].as_i64().unwrap() <= 4);
            false
        } else {
            assert!(
                s == StatusCode::BAD_GATEWAY || s == StatusCode::SERVICE_UNAVAILABLE,
                "{s} {v}"
            );
            true
        }
    })
    .await;
    assert!(failed, "the expired token is not served");
    let (_, acc) = servers[0].get("/v1/accounts/mp:wxdown", Some(ADMIN)).await;
    assert_eq!(acc["credentials"]["access_token"]["last_error"]["errcode"], -1, "{acc}");
}

/// SPEC §3: `/readyz` says when the database is not reachable, without the
/// database's own error text (no key is needed to read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run `cargo xtask ci`, or set WETOKEN_TEST_POSTGRES_URL and pass --include-ignored"]
async fn readyz_reports_a_lost_database_without_its_error_text() {
    let sim = sim().await;
    let dir = tempdir();
    let server = std::env::var("WETOKEN_TEST_POSTGRES_URL").expect("WETOKEN_TEST_POSTGRES_URL");
    let url = wetoken_store_tests::fresh_database(&server).await.unwrap();
    let srv = spawn_process_with(&dir, &sim.url(), &[("WETOKEN_DATABASE_URL", &url)]).await;
    let (s, _) = srv.get("/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    wetoken_store_tests::drop_postgres_database(&server, &url)
        .await
        .unwrap();
    let (s, v) = srv.get("/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["message"], "database not reachable", "{v}");
}

/// SPEC §10: three instances deliver 1 000 events, from callbacks spread
/// over all three, to one webhook: each exactly once (no duplicate, no loss).
async fn three_instances_deliver_a_thousand_events_once_each(backend: Backend) {
    const N: usize = 1_000;
    let (c, token, aes) = ("wxclusterevents", "tok", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C");
    let sim = sim().await;
    sim.add_component(c, "s", token, aes);
    let servers = cluster(&sim, backend, &[]).await;
    let rx = crate::receiver::Receiver::start().await;
    let (s, v) = servers[0]
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(serde_json::json!({"kind":"component","appid":c,"secret":"s","token":token,"aes_key":aes})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = servers[1]
        .post(
            "/v1/webhooks",
            Some(ADMIN),
            Some(serde_json::json!({"name":"all","url":rx.url,"events":["component.*"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let callbacks: Vec<String> = servers
        .iter()
        .map(|srv| format!("{}/callback/component/{c}", srv.url))
        .collect();
    let sim_ref = &sim;
    let pushes = futures::stream::iter(0..N)
        .map(|i| {
            let url = callbacks[i % 3].clone();
            async move {
                let msg = format!(
                    "<xml><AppId>{c}</AppId><CreateTime>{}</CreateTime><InfoType>notify_third_fasteregister</InfoType>\
                     <appid>wxnew{i}</appid><status>0</status></xml>",
                    1_700_000_000 + i
                );
                sim_ref.push_message(c, &url, &msg).await.unwrap()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    assert!(pushes.iter().all(|s| *s == 200));
    rx.wait_for(N, Duration::from_secs(120)).await;
    // Once every delivery is recorded delivered, no attempt can follow.
    let all_recorded = until(Duration::from_secs(30), || async {
        let (_, d) = servers[2]
            .get("/v1/webhooks/all/deliveries?status=delivered&limit=1000", Some(ADMIN))
            .await;
        d["deliveries"].as_array().is_some_and(|a| a.len() == N)
    })
    .await;
    assert!(all_recorded, "every delivery recorded as delivered");
    let got = rx.received();
    let ids: std::collections::HashSet<String> =
        got.iter().map(|r| r.header("x-wetoken-delivery").to_owned()).collect();
    assert_eq!(ids.len(), N, "every event delivered");
    assert_eq!(got.len(), N, "none twice");
}

/// SPEC §12: a rolling restart of three instances under read load loses no
/// request: each instance, sent SIGTERM while it waits on WeChat for a
/// fetch, answers that request, releases its lease and exits 0; readers of
/// the other instances see no error meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_loses_no_request() {
    let sim = sim().await;
    let dir = tempdir();
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(spawn_process_with(&dir, &sim.url(), &[]).await);
    }
    sim.add_app("wxrollhot", "s");
    servers[0].add_mp("wxrollhot", "s").await;
    for i in 0..3 {
        sim.add_app(&format!("wxroll{i}"), "s");
        servers[0].add_mp(&format!("wxroll{i}"), "s").await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for i in 0..3 {
        // Readers on the two other instances, all along.
        let others: Vec<String> = (1..3).map(|d| servers[(i + d) % 3].url.clone()).collect();
        let readers: Vec<_> = others
            .into_iter()
            .map(|url| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0, 0);
                    let c = client();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = c
                            .get(format!("{url}/v1/mp/wxrollhot/access_token"))
                            .bearer_auth(ADMIN)
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == StatusCode::OK => ok += 1,
                            _ => failed += 1,
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        // A fetch in flight on instance i when it is told to stop.
        sim.inject(
            wetoken_sim::STABLE_TOKEN,
            Fault::Latency(Duration::from_millis(1500)),
            Some(1),
        );
        let calls = sim.token_calls();
        let url = servers[i].url.clone();
        let appid = format!("wxroll{i}");
        let in_flight = tokio::spawn(async move {
            client()
                .get(format!("{url}/v1/mp/{appid}/access_token"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .map(|r| r.status())
        });
        assert!(
            until(Duration::from_secs(10), || async { sim.token_calls() > calls }).await,
            "the fetch went upstream"
        );
        signal(&servers[i], "-TERM");
        let answered = tokio::time::timeout(Duration::from_secs(10), in_flight).await;
        assert!(
            matches!(answered, Ok(Ok(Ok(StatusCode::OK)))),
            "instance {i} answered the request in flight: {answered:?}"
        );
        let status = tokio::time::timeout(Duration::from_secs(15), servers[i].child().wait())
            .await
            .expect("the instance exited")
            .unwrap();
        assert!(status.success(), "instance {i} exited with {status}");
        // Its fetch was written and its lease released, in the database.
        {
            use wetoken_core::store::prelude::*;
            let store = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.join("wetoken.db").display()))
                .await
                .unwrap();
            let row = store
                .credential(
                    &format!("mp:wxroll{i}").parse().unwrap(),
                    wetoken_core::domain::Credential::AccessToken,
                )
                .await
                .unwrap()
                .unwrap();
            assert!(row.value.is_some(), "instance {i}'s fetch was written");
            assert_eq!(row.lease_owner, None, "instance {i} released its lease");
        }
        servers[i] = spawn_process_with(&dir, &sim.url(), &[]).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            let (ok, failed) = r.await.unwrap();
            assert!(
                ok > 0 && failed == 0,
                "readers while instance {i} restarted: {ok} ok, {failed} failed"
            );
        }
        stop.store(false, std::sync::atomic::Ordering::Relaxed);
        // Another instance reads the value at once.
        let (s, v) = servers[(i + 1) % 3]
            .get(&format!("/v1/mp/wxroll{i}/access_token"), Some(ADMIN))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

/// SPEC §12: SIGTERM during a proactive refresh lets it finish and release
/// its lease before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_instance_finishes_its_refresh_and_releases_the_lease() {
    use wetoken_core::store::prelude::*;
    let sim = Sim::start(SimConfig {
        token_ttl_secs: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.add_app("wxdrain", "s");
    let dir = tempdir();
    let mut srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    srv.add_mp("wxdrain", "s").await;
    let (s, _) = srv.get("/v1/mp/wxdrain/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    // The proactive refresh (due 2 s later) meets a slow WeChat.
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_millis(1500)),
        Some(1),
    );
    assert!(
        until(Duration::from_secs(10), || async { sim.token_calls() == 2 }).await,
        "the proactive refresh went upstream"
    );
    signal(&srv, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), srv.child().wait())
        .await
        .expect("exited")
        .unwrap();
    assert!(status.success(), "{status}");
    let store = wetoken_store_sqlite::connect(&format!("sqlite://{}", dir.join("wetoken.db").display()))
        .await
        .unwrap();
    let row = store
        .credential(
            &"mp:wxdrain".parse().unwrap(),
            wetoken_core::domain::Credential::AccessToken,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.version, 2, "the refresh was written");
    assert_eq!(row.lease_owner, None, "and its lease released");
}
