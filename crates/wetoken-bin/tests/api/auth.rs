use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_scope_who_reads_what() {
    let sim = sim().await;
    sim.add_app("wxa", "s");
    sim.add_app("wxb", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxa", "s").await;
    srv.add_mp("wxb", "s").await;
    let key_a = srv.key_for("only-a", &["mp:wxa"]).await;

    let (s, v) = srv.get("/v1/mp/wxa/access_token", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = srv.get("/v1/mp/wxa/access_token", Some("wtk_unknown")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = srv.get("/v1/mp/wxa/access_token", Some(&key_a)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv.get("/v1/mp/wxb/access_token", Some(&key_a)).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (s, _) = srv.post("/v1/mp/wxb/access_token/refresh", Some(&key_a), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A client key is not an admin key.
    let (s, _) = srv.get("/v1/accounts", Some(&key_a)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .post("/v1/keys", Some(&key_a), Some(json!({"name": "x", "accounts": ["*"]})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let key_all = srv.key_for("all", &["*"]).await;
    let (s, _) = srv.get("/v1/mp/wxb/jsapi_ticket", Some(&key_all)).await;
    assert_eq!(s, StatusCode::OK);

    // Keys are listed without the key, and deleting one revokes it.
    let (_, list) = srv.get("/v1/keys", Some(ADMIN)).await;
    let names: Vec<_> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["all", "only-a"]);
    assert!(!list.to_string().contains(&key_a));
    let (s, _) = srv
        .call(reqwest::Method::DELETE, "/v1/keys/only-a", Some(ADMIN), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv.get("/v1/mp/wxa/access_token", Some(&key_a)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = srv
        .post("/v1/keys", Some(ADMIN), Some(json!({"name": "all", "accounts": ["*"]})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "bad", "accounts": ["wx1"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_400_and_unknown_accounts_404() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let long = "a".repeat(200);
    for path in [
        "/v1/mp/wx1'%20OR%20'1'='1/access_token".to_string(),
        format!("/v1/mp/{long}/access_token"),
        "/v1/accounts/mp:wx1'%20OR%20'1'='1".to_string(),
        format!("/v1/accounts/mp:{long}"),
        "/v1/accounts/nope:wx1".to_string(),
    ] {
        let (s, v) = srv.get(&path, Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"], "invalid_request");
        assert!(v["message"].as_str().unwrap().len() > 5);
    }
    let (s, v) = srv.get("/v1/mp/wxnobody/access_token", Some(ADMIN)).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, _) = srv.get("/v1/mp/wxnobody/agent_ticket", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = srv.get("/v1/nothing/here", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(sim.token_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_and_change_nothing() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind": "mp", "appid": "wxbig", "secret": big})),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // Without a Content-Length too (chunked): capped while read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = srv.url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("8000\r\n{}\r\n", " ".repeat(0x8000));
    for _ in 0..64 {
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server answered and closed early
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 12];
    sock.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    let (_, list) = srv.get("/v1/accounts", Some(ADMIN)).await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_needs_no_content_type() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let resp = srv
        .client
        .post(format!("{}/v1/accounts", srv.url))
        .bearer_auth(ADMIN)
        .body(r#"{"kind":"mp","appid":"wxnoct","secret":"s"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (s, v) = srv.post("/v1/accounts", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_trusts_loopback_and_refuses_open_networks() {
    let sim = sim().await;
    sim.add_app("wxoff", "s");
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_AUTH", "off")]).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            None,
            Some(json!({"kind":"mp","appid":"wxoff","secret":"s"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = srv.get("/v1/mp/wxoff/access_token", None).await;
    assert_eq!(s, StatusCode::OK);

    let dir = tempdir();
    let mut env = base_env(&dir, &sim.url());
    env.push(("WETOKEN_AUTH".into(), "off".into()));
    env.retain(|(k, _)| k != "WETOKEN_LISTEN");
    env.push(("WETOKEN_LISTEN".into(), "0.0.0.0:0".into()));
    let out = cli(&["serve"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error:") && l.contains("WETOKEN_ALLOW_OPEN_NETWORK")),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_key_is_written_and_works() {
    let sim = sim().await;
    let dir2 = tempdir();
    let mut env = base_env(&dir2, &sim.url());
    env.retain(|(k, _)| k != "WETOKEN_ADMIN_KEY");
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .replace("wetoken listening on ", "");
    let key = std::fs::read_to_string(dir2.join("admin.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir2.join("admin.key")).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let resp = client()
        .get(format!("{url}/v1/accounts"))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client()
        .get(format!("{url}/v1/accounts"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_need_no_key() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let (s, v) = srv.get("/healthz", None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = srv.get("/readyz", None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_upstream_refreshes_cache_and_http() {
    let sim = sim().await;
    sim.add_app("wxmetrics", "s");
    let srv = spawn_process(&sim).await;
    srv.add_mp("wxmetrics", "s").await;
    srv.get("/v1/mp/wxmetrics/access_token", Some(ADMIN)).await;
    srv.get("/v1/mp/wxmetrics/access_token", Some(ADMIN)).await;
    let resp = srv.client.get(format!("{}/metrics", srv.url)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for needle in [
        r#"wetoken_upstream_calls_total{endpoint="stable_token",result="ok",errcode="0"} 1"#,
        r#"wetoken_refreshes_total{trigger="cold",result="ok"} 1"#,
        "wetoken_cache_hits_total 1",
        "wetoken_cache_misses_total 1",
        r#"wetoken_credential_remaining_seconds_min{kind="mp",credential="access_token"} 7"#,
        r#"wetoken_credentials_cached{kind="mp",credential="access_token"} 1"#,
        r#"wetoken_http_request_duration_seconds_count{method="GET",route="/v1/mp/{appid}/{cred}",status="200"} 2"#,
        "wetoken_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // No key is needed for /metrics: it names no account (SPEC §3, §4).
    assert!(!text.contains("wxmetrics"), "an account id in /metrics:\n{text}");

    // Per-account series only when asked for.
    let srv = spawn_process_with(&tempdir(), &sim.url(), &[("WETOKEN_METRICS_PER_ACCOUNT", "true")]).await;
    srv.add_mp("wxmetrics", "s").await;
    srv.get("/v1/mp/wxmetrics/access_token", Some(ADMIN)).await;
    let text = metrics_text(&srv).await;
    assert!(
        text.contains(r#"wetoken_credential_remaining_seconds{account="mp:wxmetrics",credential="access_token"} 7"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_the_api_without_a_key() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let (s, doc) = srv.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/mp/{appid}/{cred}",
        "/v1/work/{corpid}/{agentid}/jssdk_config",
        "/v1/component/{component_appid}/authorizers",
        "/v1/suite/{suite_id}/corps/{corpid}/{cred}",
        "/v1/accounts/{id}",
        "/v1/keys",
        "/v1/events",
        "/v1/webhooks/{name}/deliveries",
        "/callback/suite/{suite_id}",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert_eq!(
        paths["/v1/accounts"]["post"]["responses"]["201"]["description"],
        "success"
    );
}

/// SPEC §4 "browsers cannot be used against wetoken": a page on another
/// site cannot create accounts or keys, even with keys off, nor read
/// tokens by DNS rebinding; JSON endpoints take JSON only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_on_other_sites_get_nothing() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let own = srv.url.clone();
    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let mut req = srv
            .client
            .post(format!("{}/v1/accounts", srv.url))
            .bearer_auth(ADMIN)
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let account = r#"{"kind":"mp","appid":"wxbrowser01","secret":"s"}"#;
    let json = || ("content-type", "application/json".to_string());
    for (headers, what) in [
        (
            vec![("sec-fetch-site", "cross-site".to_string()), json()],
            "cross-site fetch",
        ),
        (
            vec![("origin", "https://evil.example".to_string()), json()],
            "another origin",
        ),
        (vec![("origin", "null".to_string()), json()], "an opaque origin"),
    ] {
        let (s, b) = post(headers, account).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {b}");
    }
    let (s, b) = post(vec![("content-type", "text/plain".to_string())], account).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(b.contains("unsupported_media_type"), "{b}");
    let (s, b) = post(
        vec![("content-type", "application/x-www-form-urlencoded".to_string())],
        account,
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    let (_, list) = srv.get("/v1/accounts", Some(ADMIN)).await;
    assert_eq!(
        list["accounts"].as_array().map(Vec::len),
        Some(0),
        "nothing was created: {list}"
    );
    // The server's own origin, same-site fetches and plain clients are fine.
    let (s, b) = post(
        vec![("origin", own), ("sec-fetch-site", "same-origin".into()), json()],
        account,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = post(vec![], r#"{"kind":"mp","appid":"wxbrowser02","secret":"s"}"#).await;
    assert_eq!(s, StatusCode::CREATED, "no Content-Type stays accepted: {b}");

    // The Go wetoken's state-changing GET, from another site.
    let resp = srv
        .client
        .get(format!(
            "{}/wechat/app/create?appid=wxbrowser03&secret=s&token=t",
            srv.url
        ))
        .bearer_auth(ADMIN)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Keys off: only this server's own host names (no DNS rebinding).
    let open = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_AUTH", "off")]).await;
    let port = open.url.rsplit(':').next().unwrap().to_owned();
    for (host, want) in [
        (format!("rebind.evil.example:{port}"), StatusCode::FORBIDDEN),
        (format!("localhost:{port}"), StatusCode::OK),
        (format!("127.0.0.1:{port}"), StatusCode::OK),
    ] {
        let resp = open
            .client
            .get(format!("{}/v1/accounts", open.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "Host: {host}");
    }
}

/// SPEC §4: a key in the URL is HTTP Basic — the username, or the password
/// with an empty username — so a client given only a URL authenticates, as
/// the Go wetoken's SDK does with
/// `NewDefaultAccessTokenByURL(appid, secret, "http://KEY@wetoken:8080/{appid}/wechat/token/get")`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_the_url_is_basic_authentication() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    sim.add_app("wxbasicauth01", "s");
    srv.add_mp("wxbasicauth01", "s").await;
    let key = srv.key_for("go-sdk", &["mp:wxbasicauth01"]).await;
    let other = srv.key_for("elsewhere", &["mp:wxsomeoneelse"]).await;
    let hostport = srv.url.trim_start_matches("http://").to_owned();
    let url = |userinfo: &str, path: &str| format!("http://{userinfo}@{hostport}{path}");
    // reqwest, given only the URL, sends its user info as Basic credentials.
    let plain = reqwest::Client::new();
    for (userinfo, path, status) in [
        (key.clone(), "/wxbasicauth01/wechat/token/get", StatusCode::OK),
        (format!(":{key}"), "/wxbasicauth01/wechat/ticket/get", StatusCode::OK),
        (key.clone(), "/v1/mp/wxbasicauth01/access_token", StatusCode::OK),
        (
            "wtk_not_a_key".to_owned(),
            "/wxbasicauth01/wechat/token/get",
            StatusCode::UNAUTHORIZED,
        ),
        (
            other.clone(),
            "/v1/mp/wxbasicauth01/access_token",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let resp = plain.get(url(&userinfo, path)).send().await.unwrap();
        let s = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(s, status, "{path} as {}: {body}", &userinfo[..6]);
        if s == StatusCode::OK && path.contains("/wechat/") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["errcode"], 0, "{body}");
        }
    }
    // curl, given only the URL, as a shell script would.
    if std::process::Command::new("curl").arg("--version").output().is_ok() {
        let out = tokio::process::Command::new("curl")
            .args(["-s", &url(&key, "/wxbasicauth01/wechat/token/get")])
            .output()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["errcode"], 0, "{v}");
        assert!(v["access_token"].as_str().is_some_and(|t| sim.is_valid(t)), "{v}");
    }
}

/// SPEC §3/§6: a key made with `"tokens": false` cannot read a token or a
/// ticket anywhere (so a leaked business system leaks none), but still does
/// what needs no value; keys made before keep working as they did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_tokens_reads_no_token() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    sim.add_app("wxnotokens01", "s");
    srv.add_mp("wxnotokens01", "s").await;
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "tokenless", "accounts": ["mp:wxnotokens01"], "tokens": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["tokens"], false);
    let key = v["key"].as_str().unwrap().to_owned();
    let reader = srv.key_for("reader", &["mp:wxnotokens01"]).await;
    let base = srv.url.trim_start_matches("http://").to_owned();
    let reads = [
        (Method::GET, "/v1/mp/wxnotokens01/access_token"),
        (Method::GET, "/v1/mp/wxnotokens01/jsapi_ticket"),
        (Method::POST, "/v1/mp/wxnotokens01/access_token/refresh"),
        (Method::GET, "/wxnotokens01/wechat/token/get"),
        (Method::GET, "/wxnotokens01/wechat/ticket/get"),
    ];
    for (method, path) in reads.clone() {
        let (s, v) = srv.call(method, path, Some(&key), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("tokens"), "{v}");
    }
    assert_eq!(sim.token_calls(), 0, "the refused reads fetched nothing");
    for (method, path) in reads {
        let (s, v) = srv.call(method, path, Some(&reader), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: other keys as before: {v}");
    }
    // What hands out no value still works.
    let (s, v) = srv
        .post(
            "/v1/mp/wxnotokens01/jssdk_config",
            Some(&key),
            Some(json!({"url": "https://example.com/a"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(srv.get("/v1/events", Some(&key)).await.0, StatusCode::OK);
    // Through HTTP Basic too.
    let resp = reqwest::get(format!("http://{key}@{base}/v1/mp/wxnotokens01/access_token"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The list says which keys may read tokens.
    let (_, keys) = srv.get("/v1/keys", Some(ADMIN)).await;
    let tokens_of = |name: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["tokens"]
            .clone()
    };
    assert_eq!(
        (tokens_of("tokenless"), tokens_of("reader")),
        (json!(false), json!(true))
    );
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "bad", "accounts": ["*"], "tokens": "no"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}
