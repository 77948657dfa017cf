//! Drop-in for existing SDKs (SPEC §6): WeChat's own token endpoints, the
//! optional API proxy, the Go wetoken's routes, and a real SDK (wechatpy).

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wetoken_sim::{Fault, GETCALLBACKIP, Sim, SimConfig, USER_GET};

use crate::helpers::*;

/// An answer from a WeChat-shaped endpoint: always HTTP 200.
async fn wx(srv: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = srv.client.request(method, format!("{}{path}", srv.url));
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn wx_get(srv: &TestServer, path: &str) -> Value {
    wx(srv, reqwest::Method::GET, path, None).await
}

async fn wx_post(srv: &TestServer, path: &str, body: Value) -> Value {
    wx(srv, reqwest::Method::POST, path, Some(body)).await
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_account_endpoints_answer_in_wechats_shape() {
    let sim = Sim::start(SimConfig {
        grace_secs: 0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.add_app("wxsdk", "s");
    // WeChat is asked afresh each time (its verdict not remembered).
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_VERIFY_TTL_SECS", "0")]).await;
    srv.add_mp("wxsdk", "s").await;
    srv.add_mp("wxother", "s2").await;

    let v = wx_get(&srv, "/cgi-bin/token?grant_type=client_credential&appid=wxsdk&secret=s").await;
    assert_eq!(
        keys(&v),
        ["access_token", "expires_in"],
        "no errcode on success, as WeChat: {v}"
    );
    let (_, native) = srv.get("/v1/mp/wxsdk/access_token", Some(ADMIN)).await;
    assert_eq!(v["access_token"], native["access_token"], "the managed token");
    let token = v["access_token"].as_str().unwrap().to_owned();
    for (path, errcode) in [
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wxsdk&secret=wrong",
            40125,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=wxnobody&secret=s",
            40013,
        ),
        (
            "/cgi-bin/token?grant_type=client_credential&appid=bad%20id&secret=s",
            40013,
        ),
        ("/cgi-bin/token?grant_type=other&appid=wxsdk&secret=s", 40002),
        ("/cgi-bin/token?grant_type=client_credential&appid=wxsdk", 41004),
    ] {
        let v = wx_get(&srv, path).await;
        assert_eq!(v["errcode"], errcode, "{path}: {v}");
        assert!(v["errmsg"].is_string());
    }

    let body = json!({"grant_type":"client_credential","appid":"wxsdk","secret":"s"});
    let v = wx_post(&srv, "/cgi-bin/stable_token", body.clone()).await;
    assert_eq!(v["access_token"], token.as_str());
    let mut force = body.clone();
    force["force_refresh"] = json!(true);
    // A token WeChat still accepts is answered unchanged (SPEC §2 verified).
    let kept = wx_post(&srv, "/cgi-bin/stable_token", force.clone()).await;
    assert_eq!(
        kept["access_token"],
        token.as_str(),
        "a live token is not rotated: {kept}"
    );
    assert_eq!(sim.calls(wetoken_sim::STABLE_TOKEN), 1, "nothing fetched");
    sim.poison(&token);
    let forced = wx_post(&srv, "/cgi-bin/stable_token", force.clone()).await;
    let new = forced["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, token, "a force refresh");
    let again = wx_post(&srv, "/cgi-bin/stable_token", force).await;
    assert_eq!(
        again["access_token"],
        new.as_str(),
        "within the force-refresh interval: the current token"
    );
    let v = wx(&srv, reqwest::Method::POST, "/cgi-bin/stable_token", None).await;
    assert_eq!(v["errcode"], 47001);

    // Tickets by a managed token, current or within grace; others 40001.
    for t in [&new, &token] {
        let v = wx_get(&srv, &format!("/cgi-bin/ticket/getticket?access_token={t}&type=jsapi")).await;
        assert_eq!(
            (v["errcode"].as_i64(), v["errmsg"].as_str()),
            (Some(0), Some("ok")),
            "{v}"
        );
        assert!(v["ticket"].as_str().unwrap().starts_with("JSAPI_"));
        assert!(v["expires_in"].as_i64().unwrap() > 7000);
    }
    let v = wx_get(
        &srv,
        &format!("/cgi-bin/ticket/getticket?access_token={new}&type=wx_card"),
    )
    .await;
    assert!(v["ticket"].as_str().unwrap().starts_with("CARD_"), "{v}");
    let v = wx_get(&srv, "/cgi-bin/ticket/getticket?access_token=forged&type=jsapi").await;
    assert_eq!(v["errcode"], 40001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_open_platform_and_provider_endpoints_answer_in_their_shapes() {
    let sim = sim().await;
    sim.add_work_app("wwsdk", 1000002, "corp-secret");
    sim.add_provider("wwprov", "prov-secret");
    let key = "ClwZ9gcSJogk3RhlyJsL9OH5t4ox8Dku5bXkpKNYJBA";
    sim.add_component("wxcomp", "comp-secret", "tok", key);
    sim.add_suite("wwsuite", "suite-secret", "tok", key);
    let srv = spawn(&sim).await;
    for body in [
        json!({"kind":"work","corpid":"wwsdk","agentid":1000002,"secret":"corp-secret"}),
        json!({"kind":"provider","corpid":"wwprov","secret":"prov-secret"}),
        json!({"kind":"component","appid":"wxcomp","secret":"comp-secret","token":"tok","aes_key":key}),
        json!({"kind":"suite","suite_id":"wwsuite","secret":"suite-secret","token":"tok","aes_key":key}),
    ] {
        let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    // WeCom self-built app.
    let v = wx_get(&srv, "/cgi-bin/gettoken?corpid=wwsdk&corpsecret=corp-secret").await;
    assert_eq!(keys(&v), ["access_token", "errcode", "errmsg", "expires_in"], "{v}");
    let work_token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        wx_get(&srv, "/cgi-bin/gettoken?corpid=wwsdk&corpsecret=nope").await["errcode"],
        40001
    );
    assert_eq!(
        wx_get(&srv, "/cgi-bin/gettoken?corpid=wwnobody&corpsecret=x").await["errcode"],
        40013
    );
    let v = wx_get(&srv, &format!("/cgi-bin/get_jsapi_ticket?access_token={work_token}")).await;
    assert!(v["ticket"].as_str().unwrap().starts_with("CORPJSAPI_"), "{v}");
    let v = wx_get(
        &srv,
        &format!("/cgi-bin/ticket/get?access_token={work_token}&type=agent_config"),
    )
    .await;
    assert!(v["ticket"].as_str().unwrap().starts_with("AGENT_"), "{v}");
    let v = wx_get(
        &srv,
        &format!("/cgi-bin/ticket/getticket?access_token={work_token}&type=jsapi"),
    )
    .await;
    assert_eq!(v["errcode"], 40001, "a WeCom token is no Official Account's: {v}");

    // Provider.
    let v = wx_post(
        &srv,
        "/cgi-bin/service/get_provider_token",
        json!({"corpid":"wwprov","provider_secret":"prov-secret"}),
    )
    .await;
    assert!(v["provider_access_token"].is_string(), "{v}");
    let v = wx_post(
        &srv,
        "/cgi-bin/service/get_provider_token",
        json!({"corpid":"wwprov","provider_secret":"x"}),
    )
    .await;
    assert_eq!(v["errcode"], 40001);

    // Open Platform: the verify ticket the caller sends is ignored; wetoken's own is used.
    sim.push_verify_ticket("wxcomp", &format!("{}/callback/component/wxcomp", srv.url))
        .await
        .unwrap();
    let body =
        json!({"component_appid":"wxcomp","component_appsecret":"comp-secret","component_verify_ticket":"whatever"});
    let v = wx_post(&srv, "/cgi-bin/component/api_component_token", body).await;
    assert_eq!(keys(&v), ["component_access_token", "expires_in"], "{v}");
    let ctoken = v["component_access_token"].as_str().unwrap().to_owned();
    let body = json!({"component_appid":"wxcomp","component_appsecret":"bad"});
    assert_eq!(
        wx_post(&srv, "/cgi-bin/component/api_component_token", body).await["errcode"],
        40125
    );
    sim.authorize(
        "wxcomp",
        "wxauthsdk",
        Some(&format!("{}/callback/component/wxcomp", srv.url)),
    )
    .await
    .unwrap();
    let body = json!({"component_appid":"wxcomp","authorizer_appid":"wxauthsdk","authorizer_refresh_token":"ignored"});
    let v = wx_post(
        &srv,
        &format!("/cgi-bin/component/api_authorizer_token?component_access_token={ctoken}"),
        body.clone(),
    )
    .await;
    assert!(v["authorizer_access_token"].is_string(), "{v}");
    assert_eq!(
        v["authorizer_refresh_token"], "ignored",
        "the stored refresh token is never shown"
    );
    let v = wx_post(
        &srv,
        "/cgi-bin/component/api_authorizer_token?component_access_token=forged",
        body,
    )
    .await;
    assert_eq!(v["errcode"], 40001);
    let v = wx_post(
        &srv,
        &format!("/cgi-bin/component/api_create_preauthcode?component_access_token={ctoken}"),
        json!({"component_appid":"wxcomp"}),
    )
    .await;
    assert!(v["pre_auth_code"].is_string(), "{v}");

    // Suite and corp: no errcode on success, as WeCom.
    sim.push_suite_ticket("wwsuite", &format!("{}/callback/suite/wwsuite", srv.url))
        .await
        .unwrap();
    let body = json!({"suite_id":"wwsuite","suite_secret":"suite-secret","suite_ticket":"ignored"});
    let v = wx_post(&srv, "/cgi-bin/service/get_suite_token", body).await;
    assert_eq!(keys(&v), ["expires_in", "suite_access_token"], "{v}");
    let stoken = v["suite_access_token"].as_str().unwrap().to_owned();
    sim.install(
        "wwsuite",
        "wwinstalled",
        1000008,
        &format!("{}/callback/suite/wwsuite", srv.url),
        false,
    )
    .await
    .unwrap();
    let v = wx_post(
        &srv,
        &format!("/cgi-bin/service/get_corp_token?suite_access_token={stoken}"),
        json!({"auth_corpid":"wwinstalled","permanent_code":"ignored"}),
    )
    .await;
    assert_eq!(keys(&v), ["access_token", "expires_in"], "{v}");
    let v = wx_post(
        &srv,
        &format!("/cgi-bin/service/get_corp_token?suite_access_token={stoken}"),
        json!({"auth_corpid":"wwnone"}),
    )
    .await;
    assert_eq!(v["errcode"], 40084);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_with_the_current_token_and_refuses_unmanaged_ones() {
    // WeChat forgets a replaced token at once here; wetoken still knows it
    // for 5 minutes, so the proxy must replace it.
    let mp = Sim::start(SimConfig {
        grace_secs: 0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let work = sim().await;
    mp.add_app("wxproxy", "s");
    work.add_work_app("wwproxy", 1000002, "cs");
    let dir = tempdir();
    let srv = spawn_with(
        &dir,
        &mp.url(),
        &[("WETOKEN_PROXY", "on"), ("WETOKEN_UPSTREAM_WORK", &work.url())],
    )
    .await;
    srv.add_mp("wxproxy", "s").await;
    srv.post(
        "/v1/accounts",
        Some(ADMIN),
        Some(json!({"kind":"work","corpid":"wwproxy","agentid":1000002,"secret":"cs"})),
    )
    .await;
    let (_, t) = srv.get("/v1/mp/wxproxy/access_token", Some(ADMIN)).await;
    let old = t["access_token"].as_str().unwrap().to_owned();
    mp.revoke(&old);
    let (_, t) = srv
        .post(
            "/v1/mp/wxproxy/access_token/refresh",
            Some(ADMIN),
            Some(json!({"stale": old})),
        )
        .await;
    let current = t["access_token"].as_str().unwrap().to_owned();
    assert!(!mp.is_valid(&old), "WeChat no longer accepts the old token");

    let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?access_token={old}")).await;
    assert!(v["ip_list"].is_array(), "the stale managed token was replaced: {v}");
    let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?access_token={current}")).await;
    assert!(v["ip_list"].is_array(), "{v}");
    assert_eq!(mp.calls(GETCALLBACKIP), 2);

    // WeChat answers 40001 for a token it still accepts (the probe says
    // so): WeChat's own answer, no refresh (SPEC §2 "verified").
    let tokens_before = mp.token_calls();
    mp.inject(GETCALLBACKIP, Fault::Errcode(40001), Some(1));
    let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?access_token={current}")).await;
    assert_eq!(v["errcode"], 40001, "{v}");
    assert_eq!((mp.calls(GETCALLBACKIP), mp.token_calls()), (3, tokens_before));

    // Another account, budget intact: its token dies at WeChat → one
    // verified compare-and-refresh, one retry.
    mp.add_app("wxproxy2", "s");
    srv.add_mp("wxproxy2", "s").await;
    let (_, t) = srv.get("/v1/mp/wxproxy2/access_token", Some(ADMIN)).await;
    let current2 = t["access_token"].as_str().unwrap().to_owned();
    let tokens_before = mp.token_calls();
    mp.revoke(&current2);
    let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?access_token={current2}")).await;
    assert!(v["ip_list"].is_array(), "{v}");
    assert_eq!((mp.calls(GETCALLBACKIP), mp.token_calls()), (5, tokens_before + 1));

    // SPEC §2 "callers cannot drain the quota": WeChat keeps rejecting (as
    // it would a junk token the caller slipped in); 20 calls, no refresh.
    let (_, t) = srv.get("/v1/mp/wxproxy2/access_token", Some(ADMIN)).await;
    let current2 = t["access_token"].as_str().unwrap().to_owned();
    let tokens_before = mp.token_calls();
    mp.inject(GETCALLBACKIP, Fault::Errcode(40001), Some(20));
    for _ in 0..20 {
        let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?access_token={current2}")).await;
        assert_eq!(v["errcode"], 40001, "WeChat's own answer: {v}");
    }
    assert_eq!((mp.calls(GETCALLBACKIP), mp.token_calls()), (25, tokens_before));
    mp.clear_faults();

    // A junk extra token parameter, however spelled: refused, nothing sent.
    for junk in [
        format!("access_token={current2}&access_token=junk"),
        format!("access_token={current2}&acc%65ss_token=junk"),
        format!("acc%65ss_token=junk&access_token={current2}"),
        format!("access_token={current2}&component_access_token=junk"),
    ] {
        let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?{junk}")).await;
        assert_eq!(v["errcode"], 40001, "{junk}: {v}");
    }
    // The token under another spelling is still checked and replaced.
    let v = wx_get(&srv, &format!("/cgi-bin/getcallbackip?acc%65ss_token={old}")).await;
    assert!(v["ip_list"].is_array(), "{v}");
    assert_eq!((mp.calls(GETCALLBACKIP), mp.token_calls()), (26, tokens_before));

    // A token wetoken does not manage: 40001 and no upstream call.
    let v = wx_get(&srv, "/cgi-bin/getcallbackip?access_token=someone-elses-token").await;
    assert_eq!(v["errcode"], 40001);
    assert_eq!(mp.calls(GETCALLBACKIP), 26, "no open relay");

    // Bodies pass byte for byte (a multipart upload), answers too.
    let (_, t) = srv.get("/v1/mp/wxproxy/access_token", Some(ADMIN)).await;
    let token = t["access_token"].as_str().unwrap();
    let file: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let resp = srv
        .client
        .post(format!(
            "{}/cgi-bin/media/upload?access_token={token}&type=image",
            srv.url
        ))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["media_id"],
        hex::encode(Sha1::digest(&body)),
        "the body arrived unchanged"
    );
    assert_eq!(v["type"], "image");

    // A WeCom token goes to the WeCom API.
    let (_, t) = srv.get("/v1/work/wwproxy/1000002/access_token", Some(ADMIN)).await;
    let wtoken = t["access_token"].as_str().unwrap();
    let v = wx_get(
        &srv,
        &format!("/cgi-bin/user/get?access_token={wtoken}&userid=zhangsan"),
    )
    .await;
    assert_eq!(
        (v["errcode"].as_i64(), v["userid"].as_str()),
        (Some(0), Some("zhangsan")),
        "{v}"
    );
    assert_eq!((work.calls(USER_GET), mp.calls(USER_GET)), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_proxy_other_api_paths_are_404() {
    let sim = sim().await;
    sim.add_app("wxnoproxy", "s");
    let srv = spawn(&sim).await;
    srv.add_mp("wxnoproxy", "s").await;
    let (_, t) = srv.get("/v1/mp/wxnoproxy/access_token", Some(ADMIN)).await;
    let (s, _) = srv
        .get(
            &format!(
                "/cgi-bin/getcallbackip?access_token={}",
                t["access_token"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(sim.calls(GETCALLBACKIP), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_wetoken_routes_keep_their_shape() {
    let sim = sim().await;
    sim.add_app("wx9e02ddcc34513fd4", "6acb2b999177524beba3d97d54df2de5");
    let srv = spawn(&sim).await;
    let create =
        "/wechat/app/create?appid=wx9e02ddcc34513fd4&secret=6acb2b999177524beba3d97d54df2de5&token=oTSvVuXdjx1FPi6bz";
    let (s, _) = srv.get(create, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the admin key is needed");
    let (s, v) = srv.get(create, Some(ADMIN)).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"errcode": 0, "errmsg": "success"})));
    // Again (POST) with the secret WeChat now has: the secret is updated,
    // so the first fetch (with it) succeeds.
    sim.add_app("wx9e02ddcc34513fd4", "1d4f7c5a7fbd4e3a9c2b6e8f0a1b2c3d");
    let rotated =
        "/wechat/app/create?appid=wx9e02ddcc34513fd4&secret=1d4f7c5a7fbd4e3a9c2b6e8f0a1b2c3d&token=oTSvVuXdjx1FPi6bz";
    let (_, v) = srv.post(rotated, Some(ADMIN), None).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let key = srv.key_for("go-client", &["mp:wx9e02ddcc34513fd4"]).await;

    let (s, v) = srv.get("/wx9e02ddcc34513fd4/wechat/token/get", Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["errcode", "errmsg", "access_token", "expires_in", "expires_date"],
        "the Go project's order"
    );
    assert_eq!(
        (v["errcode"].as_i64(), v["errmsg"].as_str()),
        (Some(0), Some("success"))
    );
    let date = v["expires_date"].as_str().unwrap();
    assert_eq!(date.len(), 14);
    let (_, native) = srv.get("/v1/mp/wx9e02ddcc34513fd4/access_token", Some(&key)).await;
    let expires_at: chrono::DateTime<chrono::Utc> = native["expires_at"].as_str().unwrap().parse().unwrap();
    let cst = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    assert_eq!(
        date,
        expires_at.with_timezone(&cst).format("%Y%m%d%H%M%S").to_string(),
        "in +08:00"
    );
    let (_, v) = srv.get("/wx9e02ddcc34513fd4/wechat/ticket/get", Some(&key)).await;
    assert!(v["ticket"].as_str().unwrap().starts_with("JSAPI_"), "{v}");
    let (s, _) = srv.get("/wx9e02ddcc34513fd4/wechat/token/get", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // With keys off, as before.
    let open = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_AUTH", "off")]).await;
    let (_, v) = open.get(rotated, None).await;
    assert_eq!(v["errcode"], 0);
    let (_, v) = open.get("/wx9e02ddcc34513fd4/wechat/token/get", None).await;
    assert!(v["access_token"].is_string(), "{v}");
}

/// wechatpy, a real SDK from PyPI, pointed at wetoken by base URL. `cargo
/// xtask ci` makes a virtualenv with it and sets WETOKEN_TEST_PYTHON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs wechatpy: run `cargo xtask ci`, or set WETOKEN_TEST_PYTHON to a python with wechatpy 2 and pass --include-ignored"]
async fn wechatpy_works_against_wetoken() {
    let python = std::env::var("WETOKEN_TEST_PYTHON").expect("WETOKEN_TEST_PYTHON");
    let sim = sim().await;
    sim.add_app("wxpython", "py-secret");
    sim.add_work_app("wwpython", 1000002, "py-corp-secret");
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_PROXY", "on")]).await;
    srv.add_mp("wxpython", "py-secret").await;
    srv.post(
        "/v1/accounts",
        Some(ADMIN),
        Some(json!({"kind":"work","corpid":"wwpython","agentid":1000002,"secret":"py-corp-secret"})),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/wechatpy_check.py");
    let out = tokio::process::Command::new(python)
        .args([script, &srv.url, "wxpython", "py-secret", "wwpython", "py-corp-secret"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, mp) = srv.get("/v1/mp/wxpython/access_token", Some(ADMIN)).await;
    assert_eq!(got["mp_token"], mp["access_token"], "the SDK got the managed token");
    let (_, ticket) = srv.get("/v1/mp/wxpython/jsapi_ticket", Some(ADMIN)).await;
    assert_eq!(got["mp_ticket"], ticket["ticket"]);
    let (_, work) = srv.get("/v1/work/wwpython/1000002/access_token", Some(ADMIN)).await;
    assert_eq!(got["work_token"], work["access_token"]);
    assert!(got["work_agent_ticket"].as_str().unwrap().starts_with("AGENT_"));
    assert!(
        got["wechat_ips"].as_array().is_some_and(|a| !a.is_empty()),
        "an ordinary API call through the proxy"
    );
    assert_eq!(sim.calls(GETCALLBACKIP), 1);
}

/// SPEC §4: the proxy forwards at most `WETOKEN_PROXY_MAX_INFLIGHT`
/// requests at once; beyond, WeChat's "system busy" (-1) at once, with
/// nothing buffered or sent upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_forwards_a_bounded_number_at_once() {
    let sim = sim().await;
    sim.add_app("wxbusy", "s");
    let srv = spawn_with(
        &tempdir(),
        &sim.url(),
        &[("WETOKEN_PROXY", "on"), ("WETOKEN_PROXY_MAX_INFLIGHT", "2")],
    )
    .await;
    srv.add_mp("wxbusy", "s").await;
    let (_, t) = srv.get("/v1/mp/wxbusy/access_token", Some(ADMIN)).await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    sim.inject(
        GETCALLBACKIP,
        Fault::Latency(std::time::Duration::from_millis(1500)),
        Some(2),
    );
    let path = format!("/cgi-bin/getcallbackip?access_token={token}");
    let answers = futures::future::join_all((0..6).map(|_| wx_get(&srv, &path))).await;
    let busy = answers.iter().filter(|v| v["errcode"] == -1).count();
    let ok = answers.iter().filter(|v| v["ip_list"].is_array()).count();
    assert_eq!((ok, busy), (2, 4), "{answers:?}");
    assert_eq!(sim.calls(GETCALLBACKIP), 2, "the busy ones went nowhere");
}
