//! (b) 1000 concurrent cold readers over 3 instances.

use super::*;

/// (b) 1000 concurrent cold readers over 3 instances.
pub(crate) async fn stampede(args: &Args) {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app("wxstampede", "s");
    // WeChat's answer takes ~100 ms from mainland servers.
    sim.inject(
        wetoken_sim::STABLE_TOKEN,
        Fault::Latency(Duration::from_millis(100)),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let instances = cluster(args, dir.path(), &sim.url(), 3).await;
    let c = client();
    post(
        &c,
        &format!("{}/v1/accounts", instances[0].1),
        ADMIN,
        json!({"kind":"mp","appid":"wxstampede","secret":"s"}),
    )
    .await;
    let started = Instant::now();
    let reads = (0..1000).map(|i| {
        let c = c.clone();
        let url = format!("{}/v1/mp/wxstampede/access_token", instances[i % 3].1);
        async move {
            c.get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        }
    });
    let ok = join_all(reads).await.into_iter().filter(|ok| *ok).count();
    let took = started.elapsed();
    println!("(b) cold stampede: 1000 concurrent readers over 3 instances, WeChat answering in 100 ms");
    println!(
        "    served {ok}/1000 in {:.0} ms with {} upstream token call(s)\n",
        took.as_secs_f64() * 1000.0,
        sim.token_calls()
    );
}
