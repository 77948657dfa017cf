//! wetoken's benchmarks, run by `cargo xtask bench` (release build).
//!
//! Three figures, each against a baseline measured in the same run:
//! (a) cache-hit `GET /v1/mp/{appid}/access_token` with a client key, against
//!     a bare axum handler answering a same-size JSON from memory, both
//!     separate processes under the same load generator (wrk, from Debian's
//!     package): the ratio of interleaved runs, pinned (each server on core
//!     0, wrk -t1 on core 1) and unpinned;
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
//! (g) sign-in on PostgreSQL: 1 000 logins a second through wetoken against
//!     the same exchange straight to the simulator (wetoken's own time at
//!     p50 and p99), then a million kept session keys: memory with them,
//!     and the purge of the expired ones a batch at a time.
//!
//! (h) users' messages on PostgreSQL: 1 000 pushes a second over three
//!     instances, each answered with a 5 ms reply webhook's reply sealed
//!     for WeChat, against that webhook called straight (wetoken's own
//!     time at p50 and p99); every event delivered once to another webhook.
//!
//! (i) signed calls: wetoken's signing and verifying work per call alone
//!     (WeChat's published keys), and the same call through `/proxy/`
//!     signed and unsigned, interleaved: latency and wetoken's CPU a call.
//!
//! Usage: wetoken-bench --wetoken PATH [--quick] [--only a|b|c|d|e|f|g|h|i].
//! `--bare-server LEN` is the baseline process itself.

mod downloads;
mod events;
mod expiring;
mod hot_path;
mod messages;
mod scale;
mod signed;
mod signin;
mod stampede;
mod token_free;

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
        return hot_path::bare_server(len).await;
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
        hot_path::hot_path(&args).await;
    }
    if run("b") {
        stampede::stampede(&args).await;
    }
    if run("c") {
        expiring::expiring_together(&args).await;
    }
    if run("d") {
        events::events(&args).await;
    }
    if run("f") {
        token_free::token_free(&args).await;
    }
    if run("i") {
        signed::signed(&args).await;
    }
    if run("g") {
        match std::env::var("WETOKEN_BENCH_POSTGRES_URL") {
            Ok(pg) => signin::signin(&args, &pg).await,
            Err(_) => println!("(g) skipped: WETOKEN_BENCH_POSTGRES_URL is not set (`cargo xtask bench` sets it)\n"),
        }
    }
    if run("h") {
        match std::env::var("WETOKEN_BENCH_POSTGRES_URL") {
            Ok(pg) => messages::messages(&args, &pg).await,
            Err(_) => println!("(h) skipped: WETOKEN_BENCH_POSTGRES_URL is not set (`cargo xtask bench` sets it)\n"),
        }
    }
    if run("e") {
        let (sqlite_n, pg_n) = if args.quick { (2_000, 10_000) } else { (10_000, 100_000) };
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("scale.db").display());
        // WETOKEN_BENCH_E=postgres: the PostgreSQL run alone (the 100 000 wave).
        if std::env::var("WETOKEN_BENCH_E").as_deref() != Ok("postgres") {
            scale::scale(&args, "SQLite", &sqlite, sqlite_n).await;
        }
        match std::env::var("WETOKEN_BENCH_POSTGRES_URL") {
            Ok(pg) => scale::scale(&args, "PostgreSQL", &pg, pg_n).await,
            Err(_) => println!(
                "(e) on PostgreSQL skipped: WETOKEN_BENCH_POSTGRES_URL is not set (`cargo xtask bench` sets it)\n"
            ),
        }
    }
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
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

/// p-th quantile of `v` (sorted here).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))]
}
