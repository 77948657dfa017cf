//! (g) sign-in on PostgreSQL: logins at 1 000 a second through wetoken
//! (each one exchange upstream, one sealed session key kept) against the
//! same exchange made straight to the simulator; then a million kept
//! session keys: wetoken's memory with them, and the time to purge the
//! expired ones, a batch at a time, by a fresh instance.

use super::*;

const APPID: &str = "wxbenchsignin";
const SECRET: &str = "bench-secret";

/// Sends one request every `1/rate` s for `secs` (open loop: a slow answer
/// does not slow the sending), each made by `call(i)`; latencies in ms and
/// how many failed.
pub(crate) async fn open_loop<F, Fut>(rate: u32, secs: u64, call: F) -> (Vec<f64>, usize)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for i in 0..(rate as usize * secs as usize) {
        tick.tick().await;
        let fut = call(i);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = fut.await;
            (t.elapsed().as_secs_f64() * 1000.0, ok)
        }));
    }
    let (mut lat, mut failed) = (Vec::new(), 0);
    for t in join_all(tasks).await {
        let (ms, ok) = t.unwrap();
        lat.push(ms);
        failed += usize::from(!ok);
    }
    (lat, failed)
}

/// Runs SQL on the benchmark's PostgreSQL with `psql` (Debian's
/// postgresql-client, installed with the server): its output, trimmed.
fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .expect("psql (postgresql-client) runs");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// (g) sign-in: see the module.
pub(crate) async fn signin(args: &Args, pg: &str) {
    let (rate, secs, kept) = if args.quick {
        (1_000, 3, 200_000)
    } else {
        (1_000, 10, 1_000_000)
    };
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app(APPID, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let env = [("WETOKEN_DATABASE_URL", pg)];
    let (child, url) = wetoken(args, dir.path(), &sim.url(), &env).await;
    let pid = child.id().unwrap();
    let c = client();
    post(
        &c,
        &format!("{url}/v1/accounts"),
        ADMIN,
        json!({"kind": "mp", "appid": APPID, "secret": SECRET}),
    )
    .await;
    let key = post(
        &c,
        &format!("{url}/v1/keys"),
        ADMIN,
        json!({"name": "bench-signin", "accounts": [format!("mp:{APPID}")], "tokens": false}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    psql(
        pg,
        &format!("DELETE FROM wt_session_keys WHERE account_id = 'mp:{APPID}'"),
    );
    let sim = Arc::new(sim);
    // Users take turns (WeChat allows 100 logins a minute per user).
    let user = |i: usize| format!("user{:06}", i % 50_000);
    let direct = |i: usize| {
        let (c, sim) = (c.clone(), sim.clone());
        let code = sim.login(APPID, &user(i));
        let url = format!(
            "{}/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code={code}&grant_type=authorization_code",
            sim.url()
        );
        async move {
            let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            v["openid"].is_string()
        }
    };
    let through = |i: usize| {
        let (c, sim, key) = (c.clone(), sim.clone(), key.clone());
        let code = sim.login(APPID, &user(i));
        let url = format!("{url}/v1/mp/{APPID}/sns/jscode2session");
        async move {
            let resp = c
                .post(url)
                .bearer_auth(key)
                .json(&json!({"js_code": code}))
                .send()
                .await
                .unwrap();
            let ok = resp.status().is_success();
            let v: Value = resp.json().await.unwrap();
            ok && v["openid"].is_string() && v.get("session_key").is_none()
        }
    };
    // Warm both at the full rate (connections, the database pool), then
    // the baseline and wetoken, each at the same rate.
    open_loop(rate, 2, direct).await;
    open_loop(rate, 2, through).await;
    let (mut d, dfail) = open_loop(rate, secs, direct).await;
    let (mut w, wfail) = open_loop(rate, secs, through).await;
    let kept_now: i64 = psql(
        pg,
        &format!("SELECT count(*) FROM wt_session_keys WHERE account_id = 'mp:{APPID}'"),
    )
    .parse()
    .unwrap_or(0);
    let (d50, d99) = (quantile(&mut d, 0.5), quantile(&mut d, 0.99));
    let (w50, w99) = (quantile(&mut w, 0.5), quantile(&mut w, 0.99));
    println!("(g) sign-in on PostgreSQL: {rate} logins a second for {secs} s, open loop, a key without tokens");
    println!("    straight to the simulator (the secret sent): p50 {d50:.2} ms, p99 {d99:.2} ms, {dfail} failed");
    println!(
        "    through wetoken (secret added, session key sealed and kept): p50 {w50:.2} ms, p99 {w99:.2} ms, {wfail} failed; {kept_now} keys kept (one per user)"
    );
    println!(
        "    wetoken's own time (through − straight): p50 {:.2} ms, p99 {:.2} ms",
        w50 - d50,
        w99 - d99
    );

    // A million kept keys (half expired): memory does not grow with them.
    let (rss0, _, _) = usage(pid);
    let now = now_ms();
    let t = Instant::now();
    psql(
        pg,
        &format!(
            "INSERT INTO wt_session_keys (account_id, openid, sealed, expires_at) \
             SELECT 'mp:{APPID}', 'obench' || g, 'v1:bench-not-a-key', \
             CASE WHEN g % 2 = 0 THEN {now} - 1000 - g ELSE {now} + 86400000 END \
             FROM generate_series(1, {kept}) g"
        ),
    );
    let filled = t.elapsed();
    // Settled as a table that grew over days would be (not a bulk load's
    // autovacuum and checkpoint running under the logins).
    psql(pg, "VACUUM ANALYZE wt_session_keys");
    psql(pg, "CHECKPOINT");
    let (mut w2, fail2) = open_loop(rate, secs.min(5), through).await;
    let (rss1, _, _) = usage(pid);
    println!(
        "    {kept} more kept keys (half expired; inserted in {:.1} s): logins p99 {:.2} ms ({fail2} failed); wetoken's RSS {} → {} MiB",
        filled.as_secs_f64(),
        quantile(&mut w2, 0.99),
        rss0 / 1024,
        rss1 / 1024
    );

    // A fresh instance purges on its first login: the expired ones go, a
    // batch of 10 000 at a time (two index ranges each).
    let expired = |pg: &str| -> i64 {
        psql(
            pg,
            &format!(
                "SELECT count(*) FROM wt_session_keys WHERE account_id = 'mp:{APPID}' AND expires_at < {}",
                now_ms()
            ),
        )
        .parse()
        .unwrap_or(-1)
    };
    let before = expired(pg);
    let (_other, url2) = wetoken(args, dir.path(), &sim.url(), &env).await;
    let t = Instant::now();
    let code = sim.login(APPID, "purge-trigger");
    let resp = c
        .post(format!("{url2}/v1/mp/{APPID}/sns/jscode2session"))
        .bearer_auth(&key)
        .json(&json!({"js_code": code}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    while expired(pg) > 0 && t.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = t.elapsed().as_secs_f64();
    let batches = (before as f64 / 10_000.0).ceil().max(1.0);
    println!(
        "    purge of {before} expired keys by a fresh instance: {took:.1} s, {batches:.0} batches, {:.0} ms a batch; {} left expired",
        took * 1000.0 / batches,
        expired(pg)
    );
    psql(
        pg,
        &format!("DELETE FROM wt_session_keys WHERE account_id = 'mp:{APPID}'"),
    );
    println!();
}
