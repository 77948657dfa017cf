//! SPEC §4: slow or idle clients cannot hold the server. Real sockets
//! against the real binary.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn open_files(srv: &TestServer) -> usize {
    let pid = srv.pid();
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn addr(srv: &TestServer) -> String {
    srv.url.trim_start_matches("http://").to_owned()
}

/// 500 connections dribbling a header byte per second: a normal client
/// still gets its token at once, the server's open files stay bounded by
/// `WETOKEN_MAX_CONNECTIONS`, and every dribbler is cut off once its
/// headers are 10 s late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_cannot_hold_the_server() {
    let sim = sim().await;
    sim.add_app("wxslow", "s");
    let srv = spawn_process_with(&tempdir(), &sim.url(), &[("WETOKEN_MAX_CONNECTIONS", "300")]).await;
    srv.add_mp("wxslow", "s").await;
    let before = open_files(&srv);
    let mut dribblers = Vec::new();
    for _ in 0..500 {
        let a = addr(&srv);
        dribblers.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(&a).await else {
                return Duration::ZERO;
            };
            let started = Instant::now();
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                // Closed by the server?
                let mut buf = [0u8; 64];
                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) => {}
                }
                if started.elapsed() > Duration::from_secs(40) {
                    break;
                }
            }
            started.elapsed()
        }));
    }
    // Once the server holds as many as it takes: a normal client, at once.
    let full = until(Duration::from_secs(10), || async { open_files(&srv) >= before + 250 }).await;
    assert!(full, "the dribblers connected: {}", open_files(&srv));
    let asked = Instant::now();
    let (s, v) = srv.get("/v1/mp/wxslow/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    let during = open_files(&srv);
    assert!(
        during <= before + 300 + 10,
        "open files bounded by WETOKEN_MAX_CONNECTIONS: {before} → {during}"
    );
    let mut longest = Duration::ZERO;
    for d in dribblers {
        longest = longest.max(d.await.unwrap());
    }
    assert!(
        longest < Duration::from_secs(30),
        "every dribbler was cut off (headers 10 s late), the last after {longest:?}"
    );
}

/// A body that never finishes arriving: 408 after
/// `WETOKEN_REQUEST_TIMEOUT_SECS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_is_cut_off() {
    let sim = sim().await;
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_REQUEST_TIMEOUT_SECS", "2")]).await;
    let mut s = TcpStream::connect(addr(&srv)).await.unwrap();
    s.write_all(
        format!(
            "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered, not held");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // Cut off at the 2 s timeout; the upper bound leaves room for a loaded
    // CI machine (six tests at once, database servers failing over beside).
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

/// Bad input is logged at most once per source and minute: a flood of
/// refused requests leaves one line, not thousands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_once_per_source_and_minute() {
    let sim = sim().await;
    let dir = tempdir();
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    for i in 0..30 {
        let (s, _) = srv
            .get(&format!("/v1/mp/wxflood{i}/access_token"), Some("wrong-key"))
            .await;
        // Ten failed authentications a minute, then 429 (SPEC §4).
        let throttled = i >= wetoken_core::auth::FAILURES_PER_MINUTE;
        assert_eq!(
            s,
            if throttled {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            }
        );
    }
    let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let logged = until(Duration::from_secs(5), || async { log().contains("refused a request") }).await;
    assert!(logged, "the first refusal is logged:\n{}", log());
    let lines = log().lines().filter(|l| l.contains("refused a request")).count();
    // One per minute: two if the minute turned over during the flood.
    assert!((1..=2).contains(&lines), "{lines} lines:\n{}", log());
    assert!(log().contains("127.0.0.1"), "names the source:\n{}", log());
}

/// The proxy waits on WeChat: its requests run under
/// `WETOKEN_REQUEST_TIMEOUT_SECS` too, even without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxied_request_is_answered_within_the_request_timeout() {
    let sim = sim().await;
    sim.add_app("wxdeadline", "s");
    let srv = spawn_with(
        &tempdir(),
        &sim.url(),
        &[("WETOKEN_PROXY", "on"), ("WETOKEN_REQUEST_TIMEOUT_SECS", "1")],
    )
    .await;
    srv.add_mp("wxdeadline", "s").await;
    let (_, t) = srv.get("/v1/mp/wxdeadline/access_token", Some(ADMIN)).await;
    let token = t["access_token"].as_str().unwrap();
    sim.inject(
        wetoken_sim::GETCALLBACKIP,
        wetoken_sim::Fault::Latency(Duration::from_secs(10)),
        Some(1),
    );
    let started = Instant::now();
    let (s, v) = srv
        .get(&format!("/cgi-bin/getcallbackip?access_token={token}"), None)
        .await;
    assert_eq!(s, StatusCode::REQUEST_TIMEOUT, "{v}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}
