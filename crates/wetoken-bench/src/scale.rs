//! (e) many authorizers under one component: start-up, memory, the wave, reads, pages.

use super::*;

/// The authorizers the reader reads: 1 000 spread over the n, each read
/// every quarter second or so — a working set read often enough that its
/// values stay in the cache (checked in the background ahead of the TTL).
const HOT: usize = 1_000;

/// Cache-hit reads of random authorizers of the hot set for `secs`:
/// latencies (ms) and how many answered a token WeChat no longer took.
async fn reads(c: &Client, url: &str, component: &str, n: usize, sim: &Sim, time: Duration) -> (Vec<f64>, usize) {
    use rand::Rng;
    let end = Instant::now() + time;
    let (mut lat, mut expired) = (Vec::new(), 0);
    let step = (n / HOT).max(1);
    while Instant::now() < end {
        let i = rand::thread_rng().gen_range(0..n.min(HOT)) * step;
        let t = Instant::now();
        let v: Value = c
            .get(format!(
                "{url}/v1/component/{component}/authorizers/wxa{i:06}/access_token"
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if !v["access_token"].as_str().is_some_and(|tok| sim.is_valid(tok)) {
            expired += 1;
        }
    }
    (lat, expired)
}

/// The instance's cache misses so far (`/metrics`).
async fn cache_misses(c: &Client, url: &str) -> u64 {
    let text = c
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("wetoken_cache_misses_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// (e) Many authorizers under one component on one instance: start-up,
/// memory, idle CPU, every token refreshed before expiry under
/// WETOKEN_MAX_UPSTREAM_RPS, cache-hit latency during the wave against idle,
/// and a page of 100 authorizers.
pub(crate) async fn scale(args: &Args, label: &str, database_url: &str, n: usize) {
    const C: &str = "wxscalecomponent";
    const RPS: u64 = 200;
    let aes = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    // Lifetime and refresh-ahead scaled so the wave comes after the warm-up
    // and the cap can refresh everything before it expires.
    // The first come due `gap` after their first fetch: after the import,
    // the restart and the idle reads.
    let gap = 240 + n as i64 / 250;
    let ttl = gap + (n as i64 / RPS as i64) * 3 / 2 + 240;
    let ahead = ttl - gap;
    let sim = Sim::start(SimConfig {
        token_ttl_secs: ttl,
        rotate_refresh_tokens: false,
        daily_quota: u32::MAX,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.add_component(C, "s", "tok", aes);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WETOKEN_DATABASE_URL", database_url.to_owned()),
        ("WETOKEN_MAX_UPSTREAM_RPS", RPS.to_string()),
        ("WETOKEN_REFRESH_AHEAD_SECS", ahead.to_string()),
        // Sized for the set read (SPEC §12: the operator's setting), so that
        // the reads timed are cache hits; the misses are reported.
        ("WETOKEN_CACHE_MAX_ENTRIES", (n + 1_000).to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (child, url) = wetoken(args, dir.path(), &sim.url(), &env).await;
    let c = client();
    post(
        &c,
        &format!("{url}/v1/accounts"),
        ADMIN,
        json!({"kind":"component","appid":C,"secret":"s","token":"tok","aes_key":aes}),
    )
    .await;
    sim.push_verify_ticket(C, &format!("{url}/callback/component/{C}"))
        .await
        .unwrap();
    use futures::StreamExt;
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let appid = format!("wxa{i:06}");
            let refresh = sim.add_authorization(C, &appid);
            async move {
                let r = c
                    .post(format!("{url}/v1/accounts"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"kind":"authorizer","component_appid":C,"appid":appid,"refresh_token":refresh}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                let r = c
                    .get(format!("{url}/v1/component/{C}/authorizers/{appid}/access_token"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let warm = started.elapsed();
    let base = sim.calls(wetoken_sim::AUTHORIZER_TOKEN);
    // Restart: start-up time with n accounts in the database.
    drop(child);
    let t = Instant::now();
    let (child, url) = wetoken(args, dir.path(), &sim.url(), &env).await;
    let startup = t.elapsed();
    let pid = child.id().unwrap();
    let (_, _, cpu0) = usage(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss_idle, _, cpu1) = usage(pid);
    // Every authorizer read once after the restart (into the cache), then
    // the idle reads.
    let unread: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let r = c
                    .get(format!("{url}/v1/component/{C}/authorizers/wxa{i:06}/access_token"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            }
        })
        .buffer_unordered(32)
        .filter(|s| std::future::ready(*s != 200))
        .collect()
        .await;
    if !unread.is_empty() {
        println!(
            "    (reading every authorizer once after the restart: {} answers not 200: {:?})",
            unread.len(),
            &unread[..unread.len().min(10)]
        );
    }
    let misses0 = cache_misses(&c, &url).await;
    let (mut idle_lat, _) = reads(&c, &url, C, n, &sim, Duration::from_secs(5)).await;
    let misses1 = cache_misses(&c, &url).await;
    // 200 pages of 100, one after another along the list (cursors are
    // wetoken's own, tagged: each page's `next_cursor`).
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let t = Instant::now();
        let page = format!("{url}/v1/component/{C}/authorizers?limit=100");
        let page = match &cursor {
            Some(c) => format!("{page}&cursor={c}"),
            None => page,
        };
        let r = c.get(page).bearer_auth(ADMIN).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let v: Value = r.json().await.unwrap();
        pages.push(t.elapsed().as_secs_f64() * 1000.0);
        cursor = v["next_cursor"].as_str().map(str::to_owned);
    }
    let console = console_pages(&url, C, n).await;
    // The wave: sample upstream calls per second until all are refreshed,
    // reading meanwhile.
    let wave_start = Instant::now();
    // Upstream calls sampled every ~100 ms; the peak is the most calls in
    // any window of at most one second.
    let (mut samples, mut wave_lat, mut expired) = (vec![(Instant::now(), base)], Vec::new(), 0);
    while sim.calls(wetoken_sim::AUTHORIZER_TOKEN) < base + n as u64
        && wave_start.elapsed() < Duration::from_secs(ttl as u64 + 60)
    {
        let (l, e) = reads(&c, &url, C, n, &sim, Duration::from_millis(100)).await;
        wave_lat.extend(l);
        expired += e;
        samples.push((Instant::now(), sim.calls(wetoken_sim::AUTHORIZER_TOKEN)));
    }
    let mut peak = 0;
    for (i, (t0, c0)) in samples.iter().enumerate() {
        for (t1, c1) in &samples[i..] {
            if t1.duration_since(*t0) > Duration::from_secs(1) {
                break;
            }
            peak = peak.max(c1 - c0);
        }
    }
    let misses2 = cache_misses(&c, &url).await;
    let refreshed = sim.calls(wetoken_sim::AUTHORIZER_TOKEN) - base;
    let (rss, hwm, _) = usage(pid);
    println!("(e) {n} authorizers under one component, one instance on {label}");
    println!(
        "    warm-up (import + first token each): {:.0} s; start-up with {n} accounts: {:.2} s",
        warm.as_secs_f64(),
        startup.as_secs_f64()
    );
    println!(
        "    refreshed {refreshed}/{n} proactively (lifetime {ttl} s, ahead {ahead} s, cap {RPS}/s): peak {peak} calls/s; reads that got an expired token: {expired}"
    );
    println!(
        "    resident memory: {:.1} MiB idle, {:.1} MiB after the wave, {:.1} MiB peak; idle CPU {:.2} s over 5 s",
        rss_idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        cpu1 - cpu0
    );
    println!(
        "    cache-hit read p50/p99: {:.2}/{:.2} ms idle, {:.2}/{:.2} ms during the wave ({} and {} reads, {} and {} cache misses); a page of 100 authorizers: p50 {:.2} ms, p99 {:.2} ms\n",
        quantile(&mut idle_lat, 0.5),
        quantile(&mut idle_lat, 0.99),
        quantile(&mut wave_lat, 0.5),
        quantile(&mut wave_lat, 0.99),
        idle_lat.len(),
        wave_lat.len(),
        misses1 - misses0,
        misses2 - misses1,
        quantile(&mut pages, 0.5),
        quantile(&mut pages, 0.99)
    );
    println!("    console (signed in, idle): {console}\n");
}

/// The console at scale: the overview (counts, alerts, latest events), a
/// page of the component's authorizers at random places, a search by appid
/// prefix; 50 of each, p50 and p99 in ms.
async fn console_pages(url: &str, component: &str, n: usize) -> String {
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = raw
        .post(format!("{url}/console/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN}"))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut out = Vec::new();
    type PathOf<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let pages: [(&str, PathOf); 3] = [
        ("overview", Box::new(|_| "/console/".to_owned())),
        (
            "authorizers page",
            Box::new(|k| {
                // A page of 50 from a place in the id range (cursors are
                // wetoken's own, so the place is a 3-digit appid prefix).
                format!(
                    "/console/accounts/component:{component}?q=wxa{:03}",
                    (k * 7919) % (n / 1000).max(1)
                )
            }),
        ),
        (
            "appid search",
            Box::new(|k| {
                format!(
                    "/console/accounts/component:{component}?q=wxa{:04}",
                    (k * 31) % (n / 100).max(1)
                )
            }),
        ),
    ];
    for (name, path) in pages {
        let mut lat = Vec::new();
        for k in 0..50 {
            let t = Instant::now();
            let r = raw
                .get(format!("{url}{}", path(k)))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK, "{name}");
            r.bytes().await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out.push(format!(
            "{name} p50 {:.2} ms, p99 {:.2} ms",
            quantile(&mut lat, 0.5),
            quantile(&mut lat, 0.99)
        ));
    }
    out.join("; ")
}
