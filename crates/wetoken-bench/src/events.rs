//! (d) events: from callback to webhook receiver over three instances.

use super::*;

/// A webhook receiver in this process: counts deliveries, and when the
/// n-th arrived.
#[derive(Clone, Default)]
struct Counter(Arc<std::sync::Mutex<(usize, Option<Instant>, usize)>>);

impl Counter {
    /// Starts a receiver; its URL.
    async fn serve(&self, expect: usize) -> String {
        self.0.lock().unwrap().2 = expect;
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let me = me.clone();
                async move {
                    let mut g = me.0.lock().unwrap();
                    g.0 += 1;
                    if g.0 == g.2 {
                        g.1 = Some(Instant::now());
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().0
    }

    fn done_at(&self) -> Option<Instant> {
        self.0.lock().unwrap().1
    }
}

/// A callback message WeChat sends that wetoken only records.
fn fast_register(component: &str, i: usize) -> String {
    format!(
        "<xml><AppId>{component}</AppId><CreateTime>{}</CreateTime><InfoType>notify_third_fasteregister</InfoType>\
         <appid>wxnew{i}</appid><status>0</status><msg>OK</msg></xml>",
        1_700_000_000 + i
    )
}

/// Sequential callbacks to one instance: each one's time to `success`, ms.
async fn callback_latencies(sim: &Sim, component: &str, url: &str, n: usize, from: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in from..from + n {
        let t = Instant::now();
        assert_eq!(
            sim.push_message(component, url, &fast_register(component, i)).await,
            Ok(200)
        );
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// (d) events: from callback to webhook receiver over three instances, and
/// what a webhook adds to a callback's answer.
pub(crate) async fn events(args: &Args) {
    const C: &str = "wxbenchcomponent";
    let aes = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_component(C, "s", "tok", aes);
    let dir = tempfile::tempdir().unwrap();
    let instances = cluster(args, dir.path(), &sim.url(), 3).await;
    let c = client();
    post(
        &c,
        &format!("{}/v1/accounts", instances[0].1),
        ADMIN,
        json!({"kind":"component","appid":C,"secret":"s","token":"tok","aes_key":aes}),
    )
    .await;
    let callbacks: Vec<String> = instances
        .iter()
        .map(|(_, url)| format!("{url}/callback/component/{C}"))
        .collect();

    // Added latency: the same callbacks answered with no webhook, then with
    // one, interleaved rounds on one instance.
    let rounds = if args.quick { 2 } else { 4 };
    let per_round = if args.quick { 100 } else { 250 };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let receiver = Counter::default();
    let hook_url = receiver.serve(usize::MAX).await;
    let mut seq = 0;
    for round in 0..rounds {
        without.extend(callback_latencies(&sim, C, &callbacks[0], per_round, seq).await);
        seq += per_round;
        let name = format!("latency{round}");
        post(
            &c,
            &format!("{}/v1/webhooks", instances[0].1),
            ADMIN,
            json!({"name": name, "url": hook_url, "events": ["component.*"]}),
        )
        .await;
        with.extend(callback_latencies(&sim, C, &callbacks[0], per_round, seq).await);
        seq += per_round;
        c.delete(format!("{}/v1/webhooks/{name}", instances[0].1))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
    }
    let p = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
    };
    let (w50, w99, n50, n99) = (
        p(&mut with, 0.5),
        p(&mut with, 0.99),
        p(&mut without, 0.5),
        p(&mut without, 0.99),
    );

    // Throughput: callbacks spread over three instances, each event
    // delivered to one webhook.
    let n = if args.quick { 1_000 } else { 5_000 };
    let counter = Counter::default();
    let url = counter.serve(n).await;
    post(
        &c,
        &format!("{}/v1/webhooks", instances[1].1),
        ADMIN,
        json!({"name": "throughput", "url": url, "events": ["component.*"]}),
    )
    .await;
    use futures::StreamExt;
    let started = Instant::now();
    let sim_ref = &sim;
    futures::stream::iter(0..n)
        .map(|i| {
            let url = callbacks[i % 3].clone();
            async move {
                assert_eq!(sim_ref.push_message(C, &url, &fast_register(C, seq + i)).await, Ok(200));
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let ingested = started.elapsed();
    while counter.done_at().is_none() && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = counter.done_at().map(|t| t - started);
    println!("(d) events: callbacks to a webhook receiver over 3 instances on one SQLite file");
    match delivered {
        Some(d) => println!(
            "    {n} callbacks answered in {:.1} s ({:.0}/s); all {n} delivered {:.1} s after the first was sent: {:.0} events/s end to end ({} deliveries, no duplicate)",
            ingested.as_secs_f64(),
            n as f64 / ingested.as_secs_f64(),
            d.as_secs_f64(),
            n as f64 / d.as_secs_f64(),
            counter.count()
        ),
        None => println!("    only {} of {n} delivered within 300 s", counter.count()),
    }
    println!(
        "    a callback answered `success`: median {n50:.2} ms, p99 {n99:.2} ms with no webhook; \
         median {w50:.2} ms, p99 {w99:.2} ms with one ({} callbacks each, interleaved): ratio {:.2} (median)\n",
        without.len(),
        w50 / n50
    );
}
