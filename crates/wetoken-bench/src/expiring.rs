//! (c) many accounts expiring together.

use super::*;

/// (c) many accounts expiring together.
pub(crate) async fn expiring_together(args: &Args) {
    let n: usize = if args.quick { 1_000 } else { 10_000 };
    // Tokens live 120 s and are due 60 s ahead (+ up to 30 s jitter): the
    // wave ends before any token is due a second time.
    let sim = Sim::start(SimConfig {
        token_ttl_secs: 120,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = wetoken(args, dir.path(), &sim.url(), &[("WETOKEN_REFRESH_AHEAD_SECS", "60")]).await;
    let pid = child.id().unwrap();
    let c = client();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let setup = Instant::now();
    let tasks = (0..n).map(|i| {
        let (c, url, sem) = (c.clone(), url.clone(), sem.clone());
        let appid = format!("wxmany{i:05}");
        sim.add_app(&appid, "s");
        async move {
            let _p = sem.acquire().await.unwrap();
            c.post(format!("{url}/v1/accounts"))
                .bearer_auth(ADMIN)
                .json(&json!({"kind":"mp","appid":appid,"secret":"s","token_api":"classic"}))
                .send()
                .await
                .unwrap();
            let r = c
                .get(format!("{url}/v1/mp/{appid}/access_token"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    });
    join_all(tasks).await;
    let warm = setup.elapsed();
    let base = sim.token_calls();
    assert_eq!(base as usize, n);
    // Idle: all accounts loaded, none due yet. The scheduler must not scan.
    let (_, _, idle_start) = usage(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss_before, _, cpu_before) = usage(pid);
    let idle_cpu = cpu_before - idle_start;
    // Sample upstream calls per second until every token was refreshed once.
    let mut peak = 0;
    let mut last = base;
    let mut first_at = None;
    let started = Instant::now();
    while sim.token_calls() < base * 2 && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sim.token_calls();
        if now > last && first_at.is_none() {
            first_at = Some(started.elapsed());
        }
        peak = peak.max(now - last);
        last = now;
    }
    let refreshed = sim.token_calls() - base;
    let all_done = started.elapsed() - first_at.unwrap_or_default();
    let (rss, hwm, cpu_after) = usage(pid);
    println!(
        "(c) {n} accounts whose tokens expire within {:.0} s of each other (lifetime 120 s, refresh ahead 60 s)",
        warm.as_secs_f64()
    );
    println!(
        "    refreshed {refreshed}/{n} proactively; peak {peak} upstream calls/s; all refreshed within {:.0} s of the first",
        all_done.as_secs_f64()
    );
    println!(
        "    instance memory: {:.1} MiB resident after warm-up, {:.1} MiB after the wave, {:.1} MiB peak",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    println!(
        "    instance CPU: {:.2} s over 10 idle seconds with {n} accounts loaded; {:.1} s during the refresh wave",
        idle_cpu,
        cpu_after - cpu_before
    );
}
