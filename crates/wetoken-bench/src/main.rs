//! wetoken's benchmarks, run by `cargo xtask bench` (release build).
//!
//! Three figures, each against a baseline measured in the same run:
//! (a) cache-hit `GET /v1/mp/{appid}/access_token` with a client key, against
//!     a bare axum handler answering a same-size JSON from memory, both
//!     separate processes under the same load generator (wrk, from Debian's
//!     package): the ratio of interleaved runs;
//! (b) a cold stampede: 1000 concurrent readers over 3 instances on one
//!     SQLite file: upstream calls and time to serve all;
//! (c) 10 000 accounts expiring together: peak upstream calls per second,
//!     time to refresh all, memory and CPU of the instance;
//! (d) events: callbacks over 3 instances delivered to a webhook receiver
//!     (events per second end to end), and a callback's time to `success`
//!     with a webhook against the same callback with none.
//!
//! (e) 100 000 authorizers under one component on PostgreSQL (and 10 000
//!     on SQLite): start-up, memory, idle CPU, every token refreshed before
//!     expiry under WETOKEN_MAX_UPSTREAM_RPS, read latency during the wave
//!     against idle, a page of 100 authorizers, the console's overview,
//!     a page of authorizers and an appid search.
//!
//! (f) token-free calls: a proxied `POST /cgi-bin/message/custom/send`
//!     against the same call made straight to the simulator, interleaved in
//!     one run (p50, p99, ratio); wetoken's memory while 50 clients
//!     upload 20 MB each through `/proxy/…/cgi-bin/media/upload`; and while
//!     50 slow clients download 60 MB each (`downloads`).
//!
//! Usage: wetoken-bench --wetoken PATH [--quick] [--only a|b|c|d|e|f].
//! `--bare-server LEN` is the baseline process itself.

mod downloads;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wetoken_sim::{Fault, Sim, SimConfig};

const ADMIN: &str = "bench-admin-key-0123456789-abcdefghij";

struct Args {
    wetoken: PathBuf,
    quick: bool,
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--bare-server") {
        let len: usize = argv.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(200);
        return bare_server(len).await;
    }
    let wetoken = argv
        .iter()
        .position(|a| a == "--wetoken")
        .and_then(|i| argv.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/wetoken"));
    let only = argv
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| argv.get(i + 1))
        .cloned();
    let args = Args {
        wetoken,
        quick: argv.iter().any(|a| a == "--quick"),
    };
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "wetoken benchmarks ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if run("a") {
        hot_path(&args).await;
    }
    if run("b") {
        stampede(&args).await;
    }
    if run("c") {
        expiring_together(&args).await;
    }
    if run("d") {
        events(&args).await;
    }
    if run("f") {
        token_free(&args).await;
    }
    if run("e") {
        let (sqlite_n, pg_n) = if args.quick { (2_000, 10_000) } else { (10_000, 100_000) };
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("scale.db").display());
        scale(&args, "SQLite", &sqlite, sqlite_n).await;
        match std::env::var("WETOKEN_BENCH_POSTGRES_URL") {
            Ok(pg) => scale(&args, "PostgreSQL", &pg, pg_n).await,
            Err(_) => println!(
                "(e) on PostgreSQL skipped: WETOKEN_BENCH_POSTGRES_URL is not set (`cargo xtask bench` sets it)\n"
            ),
        }
    }
}

/// The baseline: one route answering a fixed JSON body of `len` bytes.
async fn bare_server(len: usize) {
    let body = format!(
        "{{\"access_token\":\"{}\",\"expires_in\":7200}}",
        "x".repeat(len.saturating_sub(37))
    );
    let app = axum::Router::new().route(
        "/v1/mp/{appid}/access_token",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

fn client() -> Client {
    Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A `wetoken serve` on `dir`'s database.
async fn wetoken(args: &Args, dir: &Path, upstream: &str, extra: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(&args.wetoken);
    cmd.arg("serve")
        .env_clear()
        .env("WETOKEN_LISTEN", "127.0.0.1:0")
        .env(
            "WETOKEN_DATABASE_URL",
            format!("sqlite://{}", dir.join("w.db").display()),
        )
        .env("WETOKEN_ADMIN_KEY", ADMIN)
        .env("WETOKEN_UPSTREAM_MP", upstream)
        .env("WETOKEN_LOG", "error");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    spawn_listening(cmd).await
}

/// `n` instances on `dir`'s database.
async fn cluster(args: &Args, dir: &Path, upstream: &str, n: usize) -> Vec<(Child, String)> {
    let mut instances = Vec::new();
    for _ in 0..n {
        instances.push(wetoken(args, dir, upstream, &[]).await);
    }
    instances
}

/// Starts a process that prints `… listening on http://ADDR` and returns it
/// with its URL.
async fn spawn_listening(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("process exited before listening");
        if let Some(i) = line.find("listening on ") {
            break line[i + "listening on ".len()..].to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn post(c: &Client, url: &str, key: &str, body: Value) -> Value {
    c.post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

struct Load {
    per_sec: f64,
    p99_ms: f64,
    /// Requests served in the run.
    requests: f64,
}

/// User + system CPU seconds a process has used (Linux `/proc`), to report
/// each server's CPU per request beside the throughput.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field, stime the 15th, in clock ticks (100 Hz on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    f.get(11).zip(f.get(12)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// wrk (Debian's package, installed when missing): a load generator in C,
/// faster than either server, so that it is not what is measured.
struct Wrk;

impl Wrk {
    fn find() -> Self {
        let present = || std::process::Command::new("wrk").arg("--version").output().is_ok();
        if !present() {
            eprintln!("installing wrk (apt-get install -y wrk)");
            let _ = std::process::Command::new("apt-get")
                .args(["install", "-y", "-qq", "wrk"])
                .status();
            assert!(present(), "wrk is needed for (a): apt-get install wrk");
        }
        Wrk
    }

    /// One run: requests per second and p99 latency.
    fn run(&self, url: &str, header: Option<&str>, threads: u32, conns: u32, secs: u32) -> Load {
        let mut cmd = std::process::Command::new("wrk");
        cmd.args([
            &format!("-t{threads}"),
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
        ]);
        if let Some(h) = header {
            cmd.args(["-H", h]);
        }
        let out = cmd.arg(url).output().expect("run wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Non-2xx"), "wrk saw errors from {url}:\n{text}");
        parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
    }
}

/// `Requests/sec: N` and the `99%` latency line of `wrk --latency`.
fn parse_wrk(text: &str) -> Option<Load> {
    let per_sec = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%"))?.trim();
    let p99_ms = if let Some(us) = p99.strip_suffix("us") {
        us.parse::<f64>().ok()? / 1000.0
    } else if let Some(ms) = p99.strip_suffix("ms") {
        ms.parse().ok()?
    } else {
        p99.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0
    };
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))?
        .0
        .trim()
        .parse()
        .ok()?;
    Some(Load {
        per_sec,
        p99_ms,
        requests,
    })
}

/// (a) the authenticated cache hit against a bare handler.
async fn hot_path(args: &Args) {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_app("wxbench", "s");
    let dir = tempfile::tempdir().unwrap();
    let (w_child, wurl) = wetoken(args, dir.path(), &sim.url(), &[]).await;
    let w_pid = w_child.id().expect("wetoken runs");
    let c = client();
    post(
        &c,
        &format!("{wurl}/v1/accounts"),
        ADMIN,
        json!({"kind":"mp","appid":"wxbench","secret":"s"}),
    )
    .await;
    let key = post(
        &c,
        &format!("{wurl}/v1/keys"),
        ADMIN,
        json!({"name":"bench","accounts":["mp:wxbench"]}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = "/v1/mp/wxbench/access_token";
    let sample = c
        .get(format!("{wurl}{path}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut bare_cmd = Command::new(std::env::current_exe().unwrap());
    bare_cmd.args(["--bare-server", &sample.len().to_string()]);
    let (b_child, burl) = spawn_listening(bare_cmd).await;
    let b_pid = b_child.id().expect("the bare server runs");
    let bare_sample = c
        .get(format!("{burl}{path}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let (threads, conns, secs, rounds) = (2, 64, if args.quick { 3 } else { 8 }, if args.quick { 3 } else { 7 });
    let wrk = Wrk::find();
    let auth = format!("Authorization: Bearer {key}");
    // Warm both, then measure in interleaved pairs, back to back, and take
    // medians: the ratio of each pair is immune to the machine getting
    // busier or quieter between pairs.
    wrk.run(&format!("{burl}{path}"), None, threads, conns, 1);
    wrk.run(&format!("{wurl}{path}"), Some(&auth), threads, conns, 1);
    let (mut bare_rps, mut ours_rps, mut bare_p99, mut ours_p99, mut ratios) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut bare_cpu, mut ours_cpu) = (vec![], vec![]);
    for _ in 0..rounds {
        let before = cpu_secs(b_pid);
        let b = wrk.run(&format!("{burl}{path}"), None, threads, conns, secs);
        bare_cpu.push((cpu_secs(b_pid) - before) * 1e6 / b.requests);
        let before = cpu_secs(w_pid);
        let w = wrk.run(&format!("{wurl}{path}"), Some(&auth), threads, conns, secs);
        ours_cpu.push((cpu_secs(w_pid) - before) * 1e6 / w.requests);
        ratios.push(w.per_sec / b.per_sec);
        bare_rps.push(b.per_sec);
        ours_rps.push(w.per_sec);
        bare_p99.push(b.p99_ms);
        ours_p99.push(w.p99_ms);
    }
    println!(
        "(a) cache-hit GET {path}, client key, wrk -t{threads} -c{conns}, {rounds} interleaved pairs of {secs} s runs (medians)"
    );
    println!(
        "    response bytes: wetoken {} / bare {}",
        sample.len(),
        bare_sample.len()
    );
    let (bc, oc) = (median(&mut bare_cpu), median(&mut ours_cpu));
    println!(
        "    bare axum handler   {:>9.0} req/s   p99 {:.2} ms   server CPU {bc:.1} µs/request",
        median(&mut bare_rps),
        median(&mut bare_p99)
    );
    println!(
        "    wetoken             {:>9.0} req/s   p99 {:.2} ms   server CPU {oc:.1} µs/request",
        median(&mut ours_rps),
        median(&mut ours_p99)
    );
    println!("    CPU per request, bare / wetoken: {:.2}", bc / oc);
    let mut sorted = ratios.clone();
    println!(
        "    ratio (wetoken / bare, per pair): median {:.2}, range {:.2}–{:.2}\n",
        median(&mut sorted),
        ratios.iter().cloned().fold(f64::MAX, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max)
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (b) 1000 concurrent cold readers over 3 instances.
async fn stampede(args: &Args) {
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

/// Resident memory and CPU seconds of a process.
fn usage(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (kb("VmRSS:"), kb("VmHWM:"), (ticks(11) + ticks(12)) / 100.0)
}

/// (c) many accounts expiring together.
async fn expiring_together(args: &Args) {
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
async fn events(args: &Args) {
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

/// p-th quantile of `v` (sorted here).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))]
}

/// Cache-hit reads of random authorizers for `secs`: latencies (ms) and how
/// many answered a token WeChat no longer took.
async fn reads(c: &Client, url: &str, component: &str, n: usize, sim: &Sim, time: Duration) -> (Vec<f64>, usize) {
    use rand::Rng;
    let end = Instant::now() + time;
    let (mut lat, mut expired) = (Vec::new(), 0);
    while Instant::now() < end {
        let i = rand::thread_rng().gen_range(0..n);
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

/// (e) Many authorizers under one component on one instance: start-up,
/// memory, idle CPU, every token refreshed before expiry under
/// WETOKEN_MAX_UPSTREAM_RPS, cache-hit latency during the wave against idle,
/// and a page of 100 authorizers.
async fn scale(args: &Args, label: &str, database_url: &str, n: usize) {
    const C: &str = "wxscalecomponent";
    const RPS: u64 = 200;
    let aes = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    // Lifetime and refresh-ahead scaled so the wave comes after the warm-up
    // and the cap can refresh everything before it expires.
    let ttl = (n as i64 / RPS as i64) * 3 / 2 + 240;
    let ahead = ttl - 120 - n as i64 / 500;
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
    let (mut idle_lat, _) = reads(&c, &url, C, n, &sim, Duration::from_secs(5)).await;
    // A page of 100 out of n, at random places.
    let mut pages = Vec::new();
    for k in 0..200 {
        let cursor = format!("wxa{:06}", (k * 7919) % n);
        let t = Instant::now();
        let r = c
            .get(format!("{url}/v1/component/{C}/authorizers?limit=100&cursor={cursor}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        pages.push(t.elapsed().as_secs_f64() * 1000.0);
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
        "    cache-hit read p99: {:.2} ms idle, {:.2} ms during the wave ({} and {} reads); a page of 100 authorizers: p50 {:.2} ms, p99 {:.2} ms\n",
        quantile(&mut idle_lat, 0.99),
        quantile(&mut wave_lat, 0.99),
        idle_lat.len(),
        wave_lat.len(),
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

/// (f) Token-free calls: the overhead of the relay against calling the
/// simulator straight (pairs interleaved, one run), and memory under 50
/// uploads of 20 MB at once.
async fn token_free(args: &Args) {
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
struct Proxied {
    sim: Sim,
    child: Child,
    url: String,
    client: Client,
    key: String,
    _dir: tempfile::TempDir,
}

impl Proxied {
    async fn start(args: &Args, appid: &str, extra: &[(&str, &str)]) -> Proxied {
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
