//! Custody holds (SPEC §2, §4, §6, §10), tried as an attacker holding an
//! ordinary client key would: the real binary over HTTP, the simulator,
//! and a recording upstream that shows what reached "WeChat".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wetoken_core::upstream::paths::CREDENTIAL_PATHS;
use wetoken_sim::{Fault, GET_API_DOMAIN_IP, GETTICKET, SNS_USERINFO, STABLE_TOKEN, USER_GET};

use crate::helpers::*;

/// One request as the recording upstream saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
}

/// A stand-in for WeChat that records every request: a stable token, a
/// JSON answer that tries to set a cookie, an HTML page with a script,
/// and a 60 MB text answer that streams.
#[derive(Clone)]
struct Recording {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// The size of the large answer.
const LARGE: usize = 60 << 20;

impl Recording {
    async fn start() -> Recording {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Recording {
            url: format!("http://{}", listener.local_addr().unwrap()),
            seen: Arc::default(),
        };
        let rec = r.clone();
        let app = Router::new()
            .route(
                "/cgi-bin/stable_token",
                post(|| async { axum::Json(json!({"access_token": "REC-TOKEN", "expires_in": 7200})) }),
            )
            .route(
                "/cgi-bin/user/get",
                get(|| async {
                    (
                        [
                            ("set-cookie", "wetoken_session=stolen; Path=/"),
                            ("content-type", "application/json"),
                        ],
                        r#"{"errcode":0,"errmsg":"ok"}"#,
                    )
                }),
            )
            .route(
                "/cgi-bin/media/get",
                get(|| async {
                    (
                        [("content-type", "text/html")],
                        "<html><script>fetch('/v1/keys')</script></html>",
                    )
                }),
            )
            .route("/cgi-bin/material/get_material", get(large))
            .fallback(any(|| async { (axum::http::StatusCode::NOT_FOUND, "no such API") }))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let rec = rec.clone();
                    async move {
                        rec.seen.lock().unwrap().push(Seen {
                            path: req.uri().path().to_owned(),
                            headers: req.headers().clone(),
                        });
                        next.run(req).await
                    }
                },
            ));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// 60 MB of text, produced as it is read.
async fn large(_: Uri) -> Response {
    let chunk = bytes_of(64 << 10);
    let chunks = (0..LARGE / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let mut resp = Body::from_stream(futures::stream::iter(chunks)).into_response();
    resp.headers_mut().insert("content-type", "text/plain".parse().unwrap());
    resp
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b'a'; n])
}

/// wetoken in front of the recording upstream, with an mp account.
async fn behind_recording(run: Run, extra: &[(&str, &str)]) -> (Recording, TestServer) {
    let up = Recording::start().await;
    let mut env = vec![("WETOKEN_UPSTREAM_WORK", up.url.as_str())];
    env.extend_from_slice(extra);
    let srv = start(run, &tempdir(), &up.url, &env).await;
    srv.add_mp("wxrec", "s").await;
    (up, srv)
}

async fn get_with(srv: &TestServer, path: &str, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = srv.client.get(format!("{}{path}", srv.url)).bearer_auth(key);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Item 1: token-free calls never reach a path that hands out or manages
/// credentials, whatever the key (the list lives in one place; this walks
/// it), and a `tokens: false` key gets neither a ticket nor a cleared quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_free_calls_never_reach_a_credential_path() {
    let (up, srv) = behind_recording(Run::InProcess, &[]).await;
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "notokens", "accounts": ["mp:wxrec"], "tokens": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let no_tokens = v["key"].as_str().unwrap().to_owned();
    let open = srv.key_for("open", &["*"]).await;
    for listed in CREDENTIAL_PATHS {
        let path = match listed.strip_suffix('*') {
            Some(p) if p.ends_with('/') => format!("{p}get"),
            Some(p) => format!("{p}/v2"),
            None => (*listed).to_owned(),
        };
        for spelling in [path.clone(), path.to_uppercase(), format!("{path}/")] {
            for key in [&no_tokens, &open, &ADMIN.to_owned()] {
                for method in [Method::GET, Method::POST] {
                    let url = format!("{}/proxy/mp/wxrec{spelling}?type=jsapi", srv.url);
                    let resp = srv
                        .client
                        .request(method.clone(), url)
                        .bearer_auth(key)
                        .body("{}")
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    let body = resp.text().await.unwrap();
                    assert!(
                        status == StatusCode::FORBIDDEN || (status == StatusCode::NOT_FOUND && spelling != path),
                        "{method} {spelling}: {status} {body}"
                    );
                    assert!(!body.contains("REC-TOKEN"), "{body}");
                }
            }
        }
    }
    assert!(
        up.seen().is_empty(),
        "nothing reached WeChat, not even a token fetch: {:?}",
        up.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
    );
    // Each refusal is in the audit trail, as refused.
    let (_, audit) = srv.get("/v1/audit?key=notokens&limit=5", Some(ADMIN)).await;
    assert_eq!(audit["entries"][0]["status"], 403, "{audit}");
}

/// Item 2 on one instance: a proxied call that WeChat answers 40001 while
/// the token is alive rotates nothing (WeChat's answer stands); a
/// rejection on a `/sns/` path never asks and never refreshes; a ticket
/// endpoint's false 40001 leaves the token as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_is_never_rotated_by_a_caller() {
    let sim = sim().await;
    sim.add_app("wxgood", "s");
    let srv = spawn_process(&sim).await;
    srv.add_mp("wxgood", "s").await;
    let key = srv.key_for("biz", &["mp:wxgood"]).await;
    let (_, v) = srv.get("/v1/mp/wxgood/access_token", Some(ADMIN)).await;
    let token = v["access_token"].as_str().unwrap().to_owned();

    sim.inject(USER_GET, Fault::Errcode(40001), Some(1));
    let resp = get_with(&srv, "/proxy/mp/wxgood/cgi-bin/user/get?userid=u", &key, &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errcode"], 40001, "WeChat's answer stands: {body}");
    assert_eq!(sim.calls(USER_GET), 1, "and is not retried");
    assert_eq!(sim.calls(GET_API_DOMAIN_IP), 1, "WeChat was asked once");
    assert_eq!(sim.token_calls(), 1, "nothing rotated");
    assert!(sim.is_valid(&token));

    // A user-token API called with the account's token: no question, no refresh.
    sim.revoke(&token);
    let resp = get_with(&srv, "/proxy/mp/wxgood/sns/userinfo?openid=o1", &key, &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errcode"], 40001, "{body}");
    assert_eq!(sim.calls(SNS_USERINFO), 1);
    assert_eq!(
        (sim.calls(GET_API_DOMAIN_IP), sim.token_calls()),
        (1, 1),
        "no /sns/ rejection refreshes"
    );
    let passive = metric(&srv, "wetoken_refreshes_total", &["trigger=\"passive\""]).await;
    assert_eq!(passive, 0.0, "no passive refresh at all");

    // A fresh account whose ticket endpoint falsely rejects a live token.
    sim.add_app("wxgood2", "s");
    srv.add_mp("wxgood2", "s").await;
    let (_, v) = srv.get("/v1/mp/wxgood2/access_token", Some(ADMIN)).await;
    let token2 = v["access_token"].as_str().unwrap().to_owned();
    sim.inject(GETTICKET, Fault::Errcode(40001), Some(1));
    let (s, v) = srv.get("/v1/mp/wxgood2/jsapi_ticket", Some(ADMIN)).await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(40001)),
        "{v}"
    );
    let (_, v) = srv.get("/v1/mp/wxgood2/access_token", Some(ADMIN)).await;
    assert_eq!(v["access_token"], token2.as_str(), "the live token was kept");
    assert_eq!(
        sim.calls(STABLE_TOKEN),
        2,
        "the first fetch of each account, nothing else"
    );
}

/// Item 3: a proxied call holds its in-flight slot until its answer has
/// been sent; an answer is read at most 64 KiB ahead of the caller (eight
/// clients of a 60 MB answer keep the server small); a caller that stops
/// reading is cut off after WETOKEN_REQUEST_TIMEOUT_SECS, freeing its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_readers_hold_their_slot_and_no_memory() {
    let (_up, srv) = behind_recording(
        Run::Process,
        &[
            ("WETOKEN_PROXY_MAX_INFLIGHT", "2"),
            ("WETOKEN_REQUEST_TIMEOUT_SECS", "4"),
        ],
    )
    .await;
    let key = srv.key_for("dl", &["mp:wxrec"]).await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let path = "/proxy/mp/wxrec/cgi-bin/material/get_material";
    let mut streaming = Vec::new();
    let mut busy = 0;
    for _ in 0..8 {
        let (sock, head) = stalled_request(&addr, path, &key).await;
        if head.contains("text/plain") {
            streaming.push(sock);
        } else {
            assert!(head.contains("\"errcode\":-1"), "{head}");
            busy += 1;
        }
    }
    assert_eq!(
        (streaming.len(), busy),
        (2, 6),
        "the in-flight cap holds while answers stream"
    );
    let rss = rss_kib(srv.pid());
    assert!(
        rss < 100 * 1024,
        "resident memory {rss} KiB with two 60 MB answers half-sent"
    );
    let resp = get_with(&srv, "/proxy/mp/wxrec/cgi-bin/user/get", &key, &[]).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errcode"], -1, "still busy: {v}");
    // The stalled readers are cut off; their slots come back.
    let freed = until(Duration::from_secs(20), || async {
        let resp = get_with(&srv, "/proxy/mp/wxrec/cgi-bin/user/get", &key, &[]).await;
        resp.json::<Value>().await.unwrap()["errcode"] == 0
    })
    .await;
    assert!(freed, "slots freed once the stalled readers were cut off");
    for mut sock in streaming {
        let mut sink = vec![0u8; 1 << 20];
        let mut total = 0usize;
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match sock.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the connection was closed");
        assert!(total < LARGE, "cut off before the end ({total} bytes)");
    }
}

/// The idle guard (SPEC §4) closes a connection that starts no request
/// for 10 s, not one whose long answer is still being read: a slow but
/// steady reader of a proxied download keeps receiving for 15 s, while a
/// keep-alive connection left idle beside it is closed within 10–13 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_reader_outlives_the_idle_guard() {
    // A proxied call ends by the upstream timeout, the whole answer
    // included: longer than the test here.
    let (_up, srv) = behind_recording(
        Run::InProcess,
        &[("WETOKEN_UPSTREAM_TIMEOUT_SECS", "30"), ("WETOKEN_LEASE_SECS", "300")],
    )
    .await;
    let key = srv.key_for("dl", &["mp:wxrec"]).await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let (mut reader, head) = stalled_request(&addr, "/proxy/mp/wxrec/cgi-bin/material/get_material", &key).await;
    assert!(head.contains("text/plain"), "{head}");
    let (mut idle, head) = stalled_request(&addr, "/healthz", &key).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = std::time::Instant::now();
    let idle_closed = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    });
    // 3 MiB a second: far more than the sockets' buffers hold, so a
    // connection closed at 12 s runs dry well before 15 s.
    let mut buf = vec![0u8; 768 << 10];
    let mut total = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < Duration::from_secs(15) {
        tick.tick().await;
        let read = reader.read_exact(&mut buf).await;
        assert!(
            read.is_ok(),
            "the download was cut off after {:?} and {total} bytes: {read:?}",
            started.elapsed()
        );
        total += buf.len();
    }
    assert!(total < LARGE, "still going ({total} bytes)");
    let closed_after = idle_closed.await.unwrap();
    assert!(
        closed_after >= Duration::from_secs(9) && closed_after <= Duration::from_secs(13),
        "the idle connection was closed after {closed_after:?}"
    );
}

/// Sends a GET and reads until its header block ends (and, for a small
/// answer, a little of the body); then stops reading.
async fn stalled_request(addr: &str, path: &str, key: &str) -> (tokio::net::TcpStream, String) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") || (head.len() < 200 && !head.ends_with(b"}")) {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("headers within 10 s");
    (sock, String::from_utf8_lossy(&head).into_owned())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Item 3: refused calls count under one series, and a path's family is
/// one of a fixed list: /metrics does not grow with what callers send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_do_not_grow_with_what_callers_send() {
    let (_up, srv) = behind_recording(Run::Process, &[]).await;
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "msgs", "accounts": ["mp:wxrec"], "paths": ["/cgi-bin/message/*"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let msgs = v["key"].as_str().unwrap().to_owned();
    let open = srv.key_for("open", &["mp:wxrec"]).await;
    // Each round: 200 refused calls to paths never seen before, and five
    // relayed ones with a 30 KB path segment.
    let round = |n: usize| {
        let (srv, msgs, open) = (&srv, &msgs, &open);
        async move {
            for i in 0..200 {
                let path = format!("/proxy/mp/wxrec/cgi-bin/user{n}x{i}/get");
                let resp = get_with(srv, &path, msgs, &[]).await;
                assert_eq!(resp.status(), StatusCode::FORBIDDEN);
            }
            let long = format!("{n}").repeat(30_000);
            for _ in 0..5 {
                let resp = get_with(srv, &format!("/proxy/mp/wxrec/cgi-bin/{long}/x"), open, &[]).await;
                assert_eq!(resp.status(), StatusCode::NOT_FOUND, "relayed, WeChat's 404");
            }
            metrics_text(srv).await
        }
    };
    metrics_text(&srv).await; // the scrape's own series
    let first = round(1).await;
    let second = round(2).await;
    assert!(
        !second.contains("1111111111") && !second.contains("2222222222"),
        "no path in a label"
    );
    assert!(!second.contains("user2x17"), "no refused path in a label");
    let series = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("wetoken_proxy_calls_total{"))
            .count()
    };
    assert_eq!(series(&second), series(&first), "{second}");
    let refused: Vec<_> = second.lines().filter(|l| l.contains("family=\"refused\"")).collect();
    assert_eq!(refused.len(), 1, "one refused series, whoever was refused: {refused:?}");
    assert!(refused[0].ends_with(" 400"), "{refused:?}");
    assert!(
        second.contains("family=\"refused\"") && second.contains("family=\"other\""),
        "{second}"
    );
    assert_eq!(first.lines().count(), second.lines().count(), "no new series at all");
    assert!(
        second.len() < first.len() + 256,
        "{} → {} bytes",
        first.len(),
        second.len()
    );
}

/// Item 4: only an allow-list of headers reaches WeChat; WeChat's cookies
/// never reach the caller, and every answer is inert on wetoken's origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_pass_an_allow_list_both_ways() {
    let (up, srv) = behind_recording(Run::InProcess, &[]).await;
    let key = srv.key_for("hdr", &["mp:wxrec"]).await;
    let resp = get_with(
        &srv,
        "/proxy/mp/wxrec/cgi-bin/user/get?userid=u1",
        &key,
        &[
            ("cookie", "wetoken_session=mine"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-forwarded-for", "10.1.2.3"),
            ("forwarded", "for=10.1.2.3"),
            ("x-real-ip", "10.1.2.3"),
            ("origin", &srv.url),
            ("user-agent", "test-sdk/1.0"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "WeChat's cookie never reaches the caller"
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["content-security-policy"], "sandbox");
    let seen = up.seen().into_iter().find(|s| s.path == "/cgi-bin/user/get").unwrap();
    for h in [
        "cookie",
        "proxy-authorization",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "origin",
        "authorization",
    ] {
        assert!(seen.headers.get(h).is_none(), "{h} reached WeChat");
    }
    assert_eq!(seen.headers["user-agent"], "test-sdk/1.0");
    assert_eq!(seen.headers["accept"], "application/json");

    let resp = get_with(&srv, "/proxy/mp/wxrec/cgi-bin/media/get?media_id=m", &key, &[]).await;
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert_eq!(
        resp.headers()["content-security-policy"],
        "sandbox",
        "a page WeChat sends runs nothing"
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}

/// Item 4: a query with `;` or a token parameter in any letter case, and a
/// path with `\`, are refused before anything goes upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_queries_and_paths_are_refused() {
    let (up, srv) = behind_recording(Run::InProcess, &[]).await;
    let key = srv.key_for("amb", &["mp:wxrec"]).await;
    for path in [
        "/proxy/mp/wxrec/cgi-bin/user/get?userid=u;access_token=T",
        "/proxy/mp/wxrec/cgi-bin/user/get?ACCESS_TOKEN=T",
        "/proxy/mp/wxrec/cgi-bin/user/get?Access_Token=",
        "/proxy/mp/wxrec/cgi-bin/user/get?access_token=T",
    ] {
        let resp = get_with(&srv, path, &key, &[]).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.headers()["content-security-policy"], "sandbox", "a refusal too");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    // `\` cannot be sent by an HTTP library (it normalises it): raw.
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let (_sock, head) = stalled_request(&addr, "/proxy/mp/wxrec/cgi-bin\\user/get", &key).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(up.seen().is_empty(), "nothing went upstream");
}

/// Item 5: a WeCom robot's URL carries its key: it is sealed at rest and
/// shown as `***` in answers, logs and delivery errors, and still used
/// whole to deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_urls_key_stays_secret() {
    const ROBOT_KEY: &str = "693a91f6-robot-key-7f3e";
    let sim = sim().await;
    sim.add_app("wxalert", "right");
    let dir = tempdir();
    let srv = spawn_process_with(&dir, &sim.url(), &[("WETOKEN_LOG", "info")]).await;
    let rx = crate::receiver::Receiver::start().await;
    let dead = format!("http://127.0.0.1:1/cgi-bin/webhook/send?key={ROBOT_KEY}");
    let live = format!("{}?key={ROBOT_KEY}", rx.url);
    for (name, url) in [("deadbot", &dead), ("livebot", &live)] {
        let (s, v) = srv
            .post(
                "/v1/webhooks",
                Some(ADMIN),
                Some(json!({"name": name, "url": url, "events": ["wetoken.*"], "format": "wecom_bot"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(!v.to_string().contains(ROBOT_KEY), "{v}");
        assert!(v["url"].as_str().unwrap().ends_with("?***"), "{v}");
    }
    // An event: a credential that cannot be fetched.
    srv.add_mp("wxalert", "wrong").await;
    let (s, _) = srv.get("/v1/mp/wxalert/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    let got = rx.wait_for(1, Duration::from_secs(20)).await;
    assert!(
        got[0].query.contains(ROBOT_KEY),
        "delivered to the whole URL: {}",
        got[0].query
    );
    let failed = until(Duration::from_secs(20), || async {
        let (_, v) = srv.get("/v1/webhooks/deadbot/deliveries", Some(ADMIN)).await;
        v["deliveries"][0]["last_error"].is_string()
    })
    .await;
    assert!(failed, "the dead robot's attempt failed");
    let (_, v) = srv.get("/v1/webhooks/deadbot/deliveries", Some(ADMIN)).await;
    assert!(!v.to_string().contains(ROBOT_KEY), "{v}");
    let (_, v) = srv.get("/v1/webhooks", Some(ADMIN)).await;
    assert!(!v.to_string().contains(ROBOT_KEY), "{v}");
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(
        log.contains("webhook created") && log.contains("delivery attempt failed"),
        "{log}"
    );
    assert!(!log.contains(ROBOT_KEY), "{log}");
    // At rest: in no file of the database (WAL included).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("wetoken.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(ROBOT_KEY.len()).any(|w| w == ROBOT_KEY.as_bytes()),
                "{} holds the robot's key",
                path.display()
            );
        }
    }
}

/// Item 6: an admin key shorter than 32 characters is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_admin_key_is_refused() {
    let dir = tempdir();
    let mut env = base_env(&dir, "http://127.0.0.1:1");
    env.retain(|(k, _)| k != "WETOKEN_ADMIN_KEY");
    env.push(("WETOKEN_ADMIN_KEY".into(), "admin".into()));
    let out = cli(&["serve"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: ") && err.contains("WETOKEN_ADMIN_KEY"), "{err}");
    assert!(out.stdout.is_empty(), "nothing listening");
}

/// Item 6: after ten failed authentications in a minute a source gets 429
/// with Retry-After (API keys and console sign-ins alike); valid keys and
/// other sources are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_keys_is_throttled_per_source() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    for i in 0..10 {
        let (s, _) = srv.get("/v1/accounts", Some(&format!("guess-{i}"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let resp = srv
        .client
        .get(format!("{}/v1/accounts", srv.url))
        .bearer_auth("guess-10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");
    // The console's sign-in counts too, from the same source.
    let form = srv
        .client
        .post(format!("{}/console/signin", srv.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=not-the-admin-key&next=%2Fconsole%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    // The valid key still works from this source.
    assert_eq!(srv.get("/v1/accounts", Some(ADMIN)).await.0, StatusCode::OK);
    // Another source is not throttled.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let resp = other
        .get(format!("{}/v1/accounts", srv.url))
        .bearer_auth("guess-11")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
