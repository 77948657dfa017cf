//! (f) token-free calls: the relay's overhead, uploads, and slow downloads.

use super::*;

/// (f) Token-free calls: the overhead of the relay against calling the
/// simulator straight (pairs interleaved, one run), and memory under 50
/// uploads of 20 MB at once.
pub(crate) async fn token_free(args: &Args) {
    const APPID: &str = "wxbenchproxy";
    let p = Proxied::start(args, APPID, &[("WETOKEN_REQUEST_TIMEOUT_SECS", "120")]).await;
    let (c, url, key, sim) = (&p.client, &p.url, &p.key, &p.sim);
    let pid = p.child.id().unwrap();
    let token = c
        .get(format!("{url}/v1/mp/{APPID}/access_token"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = r#"{"touser":"oBench","msgtype":"text","text":{"content":"hello"}}"#;
    let direct_url = format!("{}/cgi-bin/message/custom/send?access_token={token}", sim.url());
    let proxied_url = format!("{url}/proxy/mp/{APPID}/cgi-bin/message/custom/send");
    let n = if args.quick { 500 } else { 3000 };
    let (mut direct, mut proxied) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n * 2 {
        let t = Instant::now();
        let req = if i % 2 == 0 {
            c.post(&direct_url)
        } else {
            c.post(&proxied_url).bearer_auth(key)
        };
        let resp = req.body(body).send().await.unwrap();
        assert!(resp.status().is_success());
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["errcode"], 0, "{v}");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if i % 2 == 0 { direct.push(ms) } else { proxied.push(ms) }
    }
    let (d50, d99) = (quantile(&mut direct, 0.5), quantile(&mut direct, 0.99));
    let (p50, p99) = (quantile(&mut proxied, 0.5), quantile(&mut proxied, 0.99));
    println!("(f) token-free calls, {n} pairs interleaved, one client");
    println!("    straight to the simulator: p50 {d50:.2} ms, p99 {d99:.2} ms");
    println!("    through /proxy/ (key, token, audit): p50 {p50:.2} ms, p99 {p99:.2} ms");
    println!("    ratio proxied/direct: p50 {:.2}, p99 {:.2}", p50 / d50, p99 / d99);

    // 50 clients upload 20 MB each at once.
    let (rss0, _, _) = usage(pid);
    let media = axum::body::Bytes::from((0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let upload = format!("{url}/proxy/mp/{APPID}/cgi-bin/media/upload?type=video");
    let started = Instant::now();
    let sampler = {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(usage(pid).0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        });
        (stop, task)
    };
    let answers = join_all((0..50).map(|_| {
        let (c, upload, key, media) = (c.clone(), upload.clone(), key.clone(), media.clone());
        async move {
            let v: Value = c
                .post(&upload)
                .bearer_auth(&key)
                .body(media)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["size"].as_u64() == Some(20 * 1024 * 1024)
        }
    }))
    .await;
    sampler.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.1.await.unwrap();
    let (_, hwm, _) = usage(pid);
    println!(
        "    50 uploads of 20 MB at once: {}/50 arrived whole in {:.1} s; wetoken's resident memory {:.1} MiB before, {:.1} MiB at the sampled peak, {:.1} MiB high-water mark (1000 MiB went through)\n",
        answers.iter().filter(|ok| **ok).count(),
        started.elapsed().as_secs_f64(),
        rss0 as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    drop(p);
    downloads::slow_downloads(args).await;
}

/// An instance in front of a simulator with one mp account and a key
/// covering it (token-free calls).
pub(crate) struct Proxied {
    pub(crate) sim: Sim,
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) client: Client,
    pub(crate) key: String,
    _dir: tempfile::TempDir,
}

impl Proxied {
    pub(crate) async fn start(args: &Args, appid: &str, extra: &[(&str, &str)]) -> Proxied {
        let sim = Sim::start(SimConfig {
            daily_quota: u32::MAX,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        sim.add_app(appid, "s");
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = wetoken(args, dir.path(), &sim.url(), extra).await;
        let client = client();
        let account = json!({"kind": "mp", "appid": appid, "secret": "s"});
        post(&client, &format!("{url}/v1/accounts"), ADMIN, account).await;
        let key = json!({"name": "bench", "accounts": [format!("mp:{appid}")]});
        let key = post(&client, &format!("{url}/v1/keys"), ADMIN, key).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        Proxied {
            sim,
            child,
            url,
            client,
            key,
            _dir: dir,
        }
    }
}
