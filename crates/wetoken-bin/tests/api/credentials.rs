use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use sha1::{Digest, Sha1};
use wetoken_sim::{Fault, GETTICKET, STABLE_TOKEN};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_cold_reads_make_one_upstream_call() {
    let sim = sim().await;
    sim.add_app("wxcold", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxcold", "s").await;
    let reads = (0..500).map(|_| srv.get("/v1/mp/wxcold/access_token", Some(ADMIN)));
    let answers = join_all(reads).await;
    let first = answers[0].1["access_token"].as_str().unwrap().to_owned();
    for (status, v) in &answers {
        assert_eq!(*status, StatusCode::OK, "{v}");
        assert_eq!(v["access_token"], first.as_str());
    }
    assert_eq!(sim.token_calls(), 1);
    let (_, v) = &answers[0];
    let expires_in = v["expires_in"].as_i64().unwrap();
    assert!(
        (7195..=7200).contains(&expires_in),
        "WeChat's own remaining life, got {expires_in}"
    );
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refreshes_with_one_stale_value_make_one_call() {
    let sim = sim().await;
    sim.add_app("wxstale", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxstale", "s").await;
    let (_, v) = srv.get("/v1/mp/wxstale/access_token", Some(ADMIN)).await;
    let old = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sim.calls(STABLE_TOKEN), 1);
    // Another party's force killed it (a live token would be answered again).
    sim.revoke(&old);

    let refreshes = (0..20).map(|_| {
        srv.post(
            "/v1/mp/wxstale/access_token/refresh",
            Some(ADMIN),
            Some(json!({"stale": old})),
        )
    });
    let answers = join_all(refreshes).await;
    assert_eq!(sim.calls(STABLE_TOKEN), 2, "one forced stable_token call");
    let new = answers[0].1["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    for (s, v) in &answers {
        assert_eq!(*s, StatusCode::OK, "{v}");
        assert_eq!(v["access_token"], new.as_str(), "all see the new token");
    }
    assert!(sim.is_valid(&new));

    // An outdated stale value: the newer token at once, no call.
    let outdated = (0..20).map(|_| {
        srv.post(
            "/v1/mp/wxstale/access_token/refresh",
            Some(ADMIN),
            Some(json!({"stale": old})),
        )
    });
    for (s, v) in join_all(outdated).await {
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["access_token"], new.as_str());
    }
    assert_eq!(sim.calls(STABLE_TOKEN), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_refresh_without_stale_is_rate_limited() {
    let sim = sim().await;
    sim.add_app("wxforce", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxforce", "s").await;
    let (_, v) = srv.get("/v1/mp/wxforce/access_token", Some(ADMIN)).await;
    let before = v["access_token"].as_str().unwrap().to_owned();
    // An empty body is fine.
    let (s, v) = srv.post("/v1/mp/wxforce/access_token/refresh", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_ne!(v["access_token"], before.as_str());
    let (s, v) = srv.post("/v1/mp/wxforce/access_token/refresh", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "rate_limited");
    assert_eq!(sim.calls(STABLE_TOKEN), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_accounts_use_the_classic_api() {
    let sim = sim().await;
    sim.add_app("wxclassic", "s");
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"mp","appid":"wxclassic","secret":"s","token_api":"classic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["token_api"], "classic");
    let (s, v) = srv.get("/v1/mp/wxclassic/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((sim.calls(wetoken_sim::TOKEN), sim.calls(STABLE_TOKEN)), (1, 0));
    let old = v["access_token"].as_str().unwrap().to_owned();
    sim.poison(&old);
    let (_, v) = srv
        .post(
            "/v1/mp/wxclassic/access_token/refresh",
            Some(ADMIN),
            Some(json!({"stale": old})),
        )
        .await;
    let new = v["access_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(sim.is_valid(&old), "the replaced classic token is in its grace");
    assert!(sim.is_valid(new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_serves_from_the_database() {
    let sim = sim().await;
    sim.add_app("wxrestart", "s");
    let dir = tempdir();
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    srv.add_mp("wxrestart", "s").await;
    let (_, v) = srv.get("/v1/mp/wxrestart/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    let (_, v) = srv.get("/v1/mp/wxrestart/jsapi_ticket", Some(ADMIN)).await;
    let ticket = v["ticket"].as_str().unwrap().to_owned();
    srv.kill().await;
    let calls = (sim.token_calls(), sim.calls(GETTICKET));

    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    let (s, v) = srv.get("/v1/mp/wxrestart/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["access_token"], token.as_str());
    let (_, v) = srv.get("/v1/mp/wxrestart/jsapi_ticket", Some(ADMIN)).await;
    assert_eq!(v["ticket"], ticket.as_str());
    assert_eq!(
        (sim.token_calls(), sim.calls(GETTICKET)),
        calls,
        "no upstream call after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_tokens_are_not_in_clear_in_the_database() {
    let sim = sim().await;
    let secret = "0123456789abcdef-very-secret-value";
    sim.add_app("wxclear", secret);
    let dir = tempdir();
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    srv.add_mp("wxclear", secret).await;
    let (_, v) = srv.get("/v1/mp/wxclear/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    let (_, v) = srv.get("/v1/mp/wxclear/jsapi_ticket", Some(ADMIN)).await;
    let ticket = v["ticket"].as_str().unwrap().to_owned();
    let key = srv.key_for("clear-key", &["mp:wxclear"]).await;
    srv.kill().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("wetoken.db") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(bytes.len() > 1000, "the database was read");
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("mp:wxclear"), "sanity: the account id is stored");
    assert!(!contains(secret), "secret in clear");
    assert!(!contains(&token), "access token in clear");
    assert!(!contains(&ticket), "ticket in clear");
    assert!(!contains(&key), "API key in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssdk_config_signs_the_page_with_the_ticket() {
    let sim = sim().await;
    sim.add_app("wxjs", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxjs", "s").await;
    let url = "https://example.com/page?a=1&b=%E4%B8%AD";
    let (s, cfg) = srv
        .post(
            "/v1/mp/wxjs/jssdk_config",
            Some(ADMIN),
            Some(json!({"url": format!("{url}#section")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    let (_, t) = srv.get("/v1/mp/wxjs/jsapi_ticket", Some(ADMIN)).await;
    let ticket = t["ticket"].as_str().unwrap();
    assert_eq!(cfg["appId"], "wxjs");
    let ts = cfg["timestamp"].as_i64().expect("timestamp is an integer");
    let nonce = cfg["nonceStr"].as_str().unwrap();
    let plain = format!("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={ts}&url={url}");
    assert_eq!(cfg["signature"], hex::encode(Sha1::digest(plain.as_bytes())));
    let (_, again) = srv
        .post("/v1/mp/wxjs/jssdk_config", Some(ADMIN), Some(json!({"url": url})))
        .await;
    assert_ne!(again["nonceStr"], cfg["nonceStr"], "fresh nonce each call");
    let (s, v) = srv.post("/v1/mp/wxjs/jssdk_config", Some(ADMIN), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refusal_is_a_502_with_its_errcode() {
    let sim = sim().await;
    sim.add_app("wxwrong", "right");
    let srv = spawn(&sim).await;
    srv.add_mp("wxwrong", "wrong").await;
    let (s, v) = srv.get("/v1/mp/wxwrong/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["error"], "upstream_error");
    assert_eq!(v["upstream"]["errcode"], 40125);
    // Recorded, and not retried at once.
    let (s, v) = srv.get("/v1/mp/wxwrong/access_token", Some(ADMIN)).await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(40125))
    );
    assert_eq!(sim.token_calls(), 1, "a permanent error is not retried automatically");
    let (_, acc) = srv.get("/v1/accounts/mp:wxwrong", Some(ADMIN)).await;
    assert_eq!(acc["credentials"]["access_token"]["last_error"]["errcode"], 40125);
    // Fixing the secret lifts the block.
    let (s, _) = srv
        .call(
            reqwest::Method::PATCH,
            "/v1/accounts/mp:wxwrong",
            Some(ADMIN),
            Some(json!({"secret": "right"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = srv.get("/v1/mp/wxwrong/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_upstream_then_a_ticket_refetches_a_rejected_token() {
    let sim = sim().await;
    sim.add_app("wxbusy", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxbusy", "s").await;
    sim.inject(STABLE_TOKEN, Fault::Errcode(-1), Some(1));
    let (s, v) = srv.get("/v1/mp/wxbusy/access_token", Some(ADMIN)).await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(-1))
    );
    let (s, v) = srv.get("/v1/mp/wxbusy/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "a transient error is not recorded as a block: {v}");
    // WeChat killed the token: the ticket call is rejected, wetoken asks,
    // refreshes the token and retries with the new one.
    let old = v["access_token"].as_str().unwrap().to_owned();
    sim.revoke(&old);
    let (s, v) = srv.get("/v1/mp/wxbusy/jsapi_ticket", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(sim.calls(GETTICKET), 2, "the rejected call and its retry");
    let (_, t) = srv.get("/v1/mp/wxbusy/access_token", Some(ADMIN)).await;
    let new = t["access_token"].as_str().unwrap();
    assert_ne!(new, old, "the retry used a new token");
    assert!(sim.is_valid(new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_times_out() {
    let sim = sim().await;
    sim.add_app("wxhang", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxhang", "s").await;
    sim.inject(STABLE_TOKEN, Fault::Hang, Some(1));
    let started = std::time::Instant::now();
    let (s, v) = srv.get("/v1/mp/wxhang/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded by the upstream timeout (3 s here)"
    );
}

/// SPEC §2 "a fetch outlives its caller", over HTTP: a client that
/// disconnects 100 ms into a 2 s WeChat call does not cancel the fetch;
/// the next reader gets its result, with one upstream call in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_does_not_cause_a_second_fetch() {
    let sim = sim().await;
    sim.add_app("wxgone", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxgone", "s").await;
    sim.inject(STABLE_TOKEN, Fault::Latency(std::time::Duration::from_secs(2)), Some(1));
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let gone = impatient
        .get(format!("{}/v1/mp/wxgone/access_token", srv.url))
        .bearer_auth(ADMIN)
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up and closed the connection");
    let (status, v) = srv.get("/v1/mp/wxgone/access_token", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
    assert_eq!(sim.calls(STABLE_TOKEN), 1);
}

/// SPEC §2 "callers cannot drain the quota": a client key that reports the
/// current value as stale in a loop rotates the token once per
/// interval, not once per call; an older value still answers the current
/// one at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reports_of_the_current_value_cannot_drain_the_quota() {
    let sim = sim().await;
    sim.add_app("wxdrain", "s");
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"mp","appid":"wxdrain","secret":"s","token_api":"classic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let client = srv.key_for("drainer", &["mp:wxdrain"]).await;
    let (_, v) = srv.get("/v1/mp/wxdrain/access_token", Some(&client)).await;
    let first = v["access_token"].as_str().unwrap().to_owned();
    let mut current = first.clone();
    let mut refused = 0;
    for _ in 0..20 {
        // WeChat refuses it each time (a live token is only answered again).
        sim.poison(&current);
        let (s, v) = srv
            .post(
                "/v1/mp/wxdrain/access_token/refresh",
                Some(&client),
                Some(json!({"stale": current})),
            )
            .await;
        match s {
            StatusCode::OK => current = v["access_token"].as_str().unwrap().to_owned(),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(v["error"], "rate_limited", "{v}");
                refused += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(sim.calls(wetoken_sim::TOKEN), 2, "the first fetch and one refresh");
    assert_eq!(refused, 19);
    assert_ne!(current, first);
    // A force refresh shares the budget.
    let (s, _) = srv
        .post("/v1/mp/wxdrain/access_token/refresh", Some(&client), None)
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // An older value: the current one at once.
    let (s, v) = srv
        .post(
            "/v1/mp/wxdrain/access_token/refresh",
            Some(&client),
            Some(json!({"stale": first})),
        )
        .await;
    assert_eq!(
        (s, v["access_token"].as_str()),
        (StatusCode::OK, Some(current.as_str()))
    );
    assert_eq!(sim.calls(wetoken_sim::TOKEN), 2);
}

/// SPEC §7/§12: proactive refreshes never exceed WETOKEN_MAX_UPSTREAM_RPS,
/// even when every token comes due at once; all are refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_refreshes_keep_to_the_upstream_rate_cap() {
    const N: usize = 30;
    const RPS: u64 = 5;
    let sim = wetoken_sim::Sim::start(wetoken_sim::SimConfig {
        token_ttl_secs: 20,
        ..Default::default()
    })
    .await
    .unwrap();
    let srv = spawn_process_with(&tempdir(), &sim.url(), &[("WETOKEN_MAX_UPSTREAM_RPS", "5")]).await;
    for i in 0..N {
        let appid = format!("wxcap{i:02}");
        sim.add_app(&appid, "s");
        srv.add_mp(&appid, "s").await;
        let (s, _) = srv.get(&format!("/v1/mp/{appid}/access_token"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::OK);
    }
    let base = sim.token_calls();
    assert_eq!(base as usize, N);
    // Tokens of 20 s are due within 10 s of their fetch: all at once. Count
    // the upstream calls in every one-second window until all are done.
    let mut samples = vec![(Instant::now(), sim.token_calls())];
    // How late the most overdue credential is, while the capped wave runs.
    let mut backlog: f64 = 0.0;
    while sim.token_calls() < base * 2 && samples[0].0.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        samples.push((Instant::now(), sim.token_calls()));
        backlog = backlog.max(metric(&srv, "wetoken_refresh_backlog_seconds", &[]).await);
    }
    assert!(sim.token_calls() >= base * 2, "every token was refreshed");
    let mut worst = 0;
    for (i, (t0, c0)) in samples.iter().enumerate() {
        for (t1, c1) in &samples[i..] {
            if t1.duration_since(*t0) <= Duration::from_secs(1) {
                worst = worst.max(c1 - c0);
            }
        }
    }
    assert!(
        worst <= RPS + 1,
        "{worst} calls within one second with a cap of {RPS}/s"
    );
    // Due rows are found on the scheduler's one-second tick and started at
    // 5 a second: some wait, and the gauge says so (a missing series, or
    // one never set, reads 0).
    assert!(backlog > 0.0, "the backlog gauge showed {backlog} s during the wave");
    assert!(backlog < 30.0, "{backlog} s");
}
