//! SPEC §16 `WETOKEN_UPSTREAM_PROXY`: every upstream call through an HTTP
//! proxy — a real tinyproxy (Debian's package) started here — CONNECT for
//! https, and nothing around it.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::process::{Child, Command};

use crate::helpers::*;

/// tinyproxy on a free loopback port, logging each request to `log`.
struct Tinyproxy {
    url: String,
    log: std::path::PathBuf,
    child: Child,
}

impl Tinyproxy {
    async fn start(dir: &std::path::Path) -> Tinyproxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("tinyproxy.conf");
        let log = dir.join("tinyproxy.log");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 10\nLogLevel Connect\nLogFile \"{}\"\nMaxClients 50\n\
                 Allow 127.0.0.1\nDisableViaHeader Yes\n",
                log.display()
            ),
        )
        .unwrap();
        let bin = std::env::var("WETOKEN_TEST_TINYPROXY").unwrap_or_else(|_| "tinyproxy".into());
        let child = Command::new(&bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): install tinyproxy, or run `cargo xtask ci`"));
        let url = format!("http://127.0.0.1:{port}");
        let up = until(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(up, "tinyproxy did not listen");
        Tinyproxy { url, log, child }
    }

    /// The requests it relayed (`GET http://…` or `CONNECT host:port`).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("Request (file descriptor ").map(|(_, r)| r))
            .filter_map(|r| r.split_once("): ").map(|(_, r)| r.to_owned()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tinyproxy (Debian: tinyproxy): run `cargo xtask ci`, or pass --include-ignored"]
async fn every_upstream_call_goes_through_the_egress_proxy() {
    let sim = sim().await;
    let dir = tempdir();
    let mut proxy = Tinyproxy::start(&dir).await;
    let host = sim.url().trim_start_matches("http://").to_owned();
    let srv = spawn_process_with(
        &dir,
        &sim.url(),
        &[("WETOKEN_UPSTREAM_PROXY", &proxy.url), ("WETOKEN_PROXY", "on")],
    )
    .await;
    sim.add_app("wxegress0001", "s");
    srv.add_mp("wxegress0001", "s").await;

    // A fetch, a ticket and a proxied call: each through the proxy, the
    // same number of requests as WeChat saw.
    let (s, v) = srv.get("/v1/mp/wxegress0001/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    let (s, v) = srv.get("/v1/mp/wxegress0001/jsapi_ticket", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .get(&format!("/cgi-bin/getcallbackip?access_token={token}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let relayed = proxy.requests();
    let to_wechat: Vec<_> = relayed.iter().filter(|r| r.contains(&host)).collect();
    assert_eq!(to_wechat.len(), 3, "{relayed:?}");
    for (r, path) in to_wechat.iter().zip([
        "/cgi-bin/stable_token",
        "/cgi-bin/ticket/getticket",
        "/cgi-bin/getcallbackip",
    ]) {
        assert!(r.contains(&format!("http://{host}{path}")), "{r}");
    }

    // Nothing goes around it: with the proxy gone, WeChat is out of reach
    // though it is up.
    proxy.child.kill().await.unwrap();
    sim.add_app("wxegress0002", "s");
    srv.add_mp("wxegress0002", "s").await;
    let before = sim.token_calls();
    let (s, v) = srv.get("/v1/mp/wxegress0002/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(sim.token_calls(), before, "no call reached WeChat around the proxy");
}

/// https goes through a CONNECT tunnel: WeCom at an https address (the
/// simulator's port, which speaks no TLS: the handshake fails inside the
/// tunnel), and the proxy says which tunnel it opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tinyproxy (Debian: tinyproxy): run `cargo xtask ci`, or pass --include-ignored"]
async fn https_goes_through_a_connect_tunnel() {
    let sim = sim().await;
    let dir = tempdir();
    let proxy = Tinyproxy::start(&dir).await;
    let host = sim.url().trim_start_matches("http://").to_owned();
    let srv = spawn_with(
        &dir,
        &sim.url(),
        &[
            ("WETOKEN_UPSTREAM_PROXY", &proxy.url),
            ("WETOKEN_UPSTREAM_WORK", &format!("https://{host}")),
        ],
    )
    .await;
    sim.add_work_app("wwegress", 1000002, "cs");
    let body = serde_json::json!({"kind":"work","corpid":"wwegress","agentid":1000002,"secret":"cs"});
    let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv.get("/v1/work/wwegress/1000002/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "no TLS at the other end: {v}");
    let relayed = proxy.requests();
    assert!(
        relayed.iter().any(|r| r.starts_with(&format!("CONNECT {host} "))),
        "{relayed:?}"
    );
    assert!(!relayed.iter().any(|r| r.contains("http://")), "{relayed:?}");
}
