//! (a) the authenticated cache hit against a bare handler, under wrk.

use super::*;

/// The baseline: one route answering a fixed JSON body of `len` bytes.
pub(crate) async fn bare_server(len: usize) {
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

/// How wrk loads a server: threads, connections, and the core it runs on
/// (None: wherever the scheduler puts it).
#[derive(Clone, Copy)]
struct Shape {
    threads: u32,
    conns: u32,
    cpu: Option<u32>,
}

/// Pins every thread of `pid` to `cpus` (a `taskset` list such as `0` or `0-1`).
fn pin(pid: u32, cpus: &str) {
    let ok = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "taskset -a -p -c {cpus} {pid} failed (util-linux's taskset is needed)"
    );
}

/// Medians of interleaved pairs of runs, bare then wetoken.
struct Pairs {
    bare_rps: f64,
    ours_rps: f64,
    bare_p99: f64,
    ours_p99: f64,
    bare_cpu: f64,
    ours_cpu: f64,
    /// Core 0's busy time per request, µs (pinned runs only).
    bare_core: f64,
    ours_core: f64,
    ratio: f64,
    low: f64,
    high: f64,
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

/// Busy seconds of one core (`/proc/stat`: everything but idle and iowait,
/// softirq included, which a process's own counters leave out).
fn core_busy_secs(cpu: u32) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let name = format!("cpu{cpu} ");
    let Some(line) = stat.lines().find(|l| l.starts_with(&name)) else {
        return 0.0;
    };
    let f: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    (f.iter().take(8).sum::<f64>() - idle) / 100.0
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

    /// One run: requests per second and p99 latency; on `cpu` alone when given.
    fn run(&self, url: &str, header: Option<&str>, load: Shape, secs: u32) -> Load {
        let (threads, conns) = (load.threads, load.conns);
        let mut cmd = match load.cpu {
            Some(cpu) => {
                let mut c = std::process::Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "wrk"]);
                c
            }
            None => std::process::Command::new("wrk"),
        };
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
pub(crate) async fn hot_path(args: &Args) {
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

    let (secs, rounds) = (if args.quick { 3 } else { 8 }, if args.quick { 3 } else { 7 });
    let wrk = Wrk::find();
    let auth = format!("Authorization: Bearer {key}");
    let (bare, ours) = (format!("{burl}{path}"), format!("{wurl}{path}"));
    let measure = |shape: Shape| {
        // Warm both, then interleaved pairs, back to back, and medians: the
        // ratio of each pair is immune to the machine getting busier or
        // quieter between pairs.
        wrk.run(&bare, None, shape, 1);
        wrk.run(&ours, Some(&auth), shape, 1);
        let (mut bare_rps, mut ours_rps, mut bare_p99, mut ours_p99, mut ratios) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut bare_cpu, mut ours_cpu, mut bare_core, mut ours_core) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (before, core) = (cpu_secs(b_pid), core_busy_secs(0));
            let b = wrk.run(&bare, None, shape, secs);
            bare_cpu.push((cpu_secs(b_pid) - before) * 1e6 / b.requests);
            bare_core.push((core_busy_secs(0) - core) * 1e6 / b.requests);
            let (before, core) = (cpu_secs(w_pid), core_busy_secs(0));
            let w = wrk.run(&ours, Some(&auth), shape, secs);
            ours_cpu.push((cpu_secs(w_pid) - before) * 1e6 / w.requests);
            ours_core.push((core_busy_secs(0) - core) * 1e6 / w.requests);
            ratios.push(w.per_sec / b.per_sec);
            bare_rps.push(b.per_sec);
            ours_rps.push(w.per_sec);
            bare_p99.push(b.p99_ms);
            ours_p99.push(w.p99_ms);
        }
        Pairs {
            bare_rps: median(&mut bare_rps),
            ours_rps: median(&mut ours_rps),
            bare_p99: median(&mut bare_p99),
            ours_p99: median(&mut ours_p99),
            bare_cpu: median(&mut bare_cpu),
            ours_cpu: median(&mut ours_cpu),
            bare_core: median(&mut bare_core),
            ours_core: median(&mut ours_core),
            low: ratios.iter().cloned().fold(f64::MAX, f64::min),
            high: ratios.iter().cloned().fold(0.0, f64::max),
            ratio: median(&mut ratios),
        }
    };
    let report = |title: &str, p: &Pairs, pinned_view: bool| {
        println!("    {title}");
        println!(
            "      bare axum handler   {:>9.0} req/s   p99 {:.2} ms   server CPU {:.1} µs/request",
            p.bare_rps, p.bare_p99, p.bare_cpu
        );
        println!(
            "      wetoken             {:>9.0} req/s   p99 {:.2} ms   server CPU {:.1} µs/request",
            p.ours_rps, p.ours_p99, p.ours_cpu
        );
        println!(
            "      ratio (wetoken / bare, per pair): median {:.2}, range {:.2}–{:.2}; CPU per request, bare / wetoken: {:.2}",
            p.ratio,
            p.low,
            p.high,
            p.bare_cpu / p.ours_cpu
        );
        if pinned_view {
            println!(
                "      core 0 busy per request (softirq included): bare {:.1} µs, wetoken {:.1} µs, ratio {:.2}",
                p.bare_core,
                p.ours_core,
                p.bare_core / p.ours_core
            );
        }
    };
    println!(
        "(a) cache-hit GET {path}, client key, {rounds} interleaved pairs of {secs} s runs each way (medians); response bytes: wetoken {} / bare {}",
        sample.len(),
        bare_sample.len()
    );
    // Pinned, as a server is measured on two cores: each server alone on
    // core 0, wrk with one thread alone on core 1.
    pin(b_pid, "0");
    pin(w_pid, "0");
    let pinned = measure(Shape {
        threads: 1,
        conns: 64,
        cpu: Some(1),
    });
    report("pinned: each server on core 0, wrk -t1 -c64 on core 1", &pinned, true);
    pin(b_pid, "0-1");
    pin(w_pid, "0-1");
    let free = measure(Shape {
        threads: 2,
        conns: 64,
        cpu: None,
    });
    report("unpinned: wrk -t2 -c64, everything on both cores", &free, false);
    println!();
}
