//! SPEC §13: users sign in with no WeChat secret outside wetoken. The
//! business side of these tests holds only a wetoken key; the simulator
//! plays WeChat and the users' phones.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wetoken_sim::{CHECKSESSION, COMPONENT_JSCODE2SESSION, Fault, JSCODE2SESSION, OAUTH2_ACCESS_TOKEN, Sim};

use crate::helpers::*;

const MP: &str = "wxsigninmp0001";

/// A key that may not see tokens or session keys: a business system's.
async fn business_key(srv: &TestServer, name: &str, patterns: &[&str]) -> String {
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": name, "accounts": patterns, "tokens": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn mp_server(sim: &Sim, extra: &[(&str, &str)]) -> TestServer {
    sim.add_app(MP, "mp-secret");
    let srv = spawn_with(&tempdir(), &sim.url(), extra).await;
    srv.add_mp(MP, "mp-secret").await;
    srv
}

/// Done-when of issue 24: a Mini Program login end to end, the business
/// side holding a `tokens: false` key only. It gets the user's ids, never
/// the session key, which wetoken keeps for decrypt and checksession; a
/// code is exchanged once (a reused one is WeChat's 40163, one call each);
/// the audit trail names each exchange without its code, openid or key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mini_program_login_with_no_secret_outside_wetoken() {
    let sim = sim().await;
    sim.bind_unionid(MP, "open-account-1");
    let srv = mp_server(&sim, &[]).await;
    let key = business_key(&srv, "shop", &[&format!("mp:{MP}")]).await;
    let base = format!("/v1/mp/{MP}/sns");

    let code = sim.login(MP, "alice");
    let (s, v) = srv
        .post(
            &format!("{base}/jscode2session"),
            Some(&key),
            Some(json!({"js_code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["openid"], sim.openid(MP, "alice"));
    assert!(v["unionid"].is_string(), "the app is bound: {v}");
    assert!(
        v.get("session_key").is_none(),
        "a key without tokens never sees it: {v}"
    );
    let openid = v["openid"].as_str().unwrap().to_owned();

    let (s, v) = srv
        .post(
            &format!("{base}/jscode2session"),
            Some(&key),
            Some(json!({"js_code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["upstream"]["errcode"], 40163, "{v}");
    assert_eq!(sim.calls(JSCODE2SESSION), 2, "one call per exchange, none repeated");

    // What the session key is for, without it leaving wetoken.
    let (data, iv) = sim
        .encrypted_user_data(MP, "alice", &json!({"phoneNumber": "13800000000"}))
        .unwrap();
    let decrypt = |data: &str, iv: &str| json!({"openid": openid, "encrypted_data": data, "iv": iv});
    let (s, v) = srv
        .post(&format!("{base}/decrypt"), Some(&key), Some(decrypt(&data, &iv)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["phoneNumber"], "13800000000");
    assert_eq!(v["watermark"]["appid"], MP);
    let (s, v) = srv
        .post(
            &format!("{base}/decrypt"),
            Some(&key),
            Some(decrypt(&data, "AAAAAAAAAAAAAAAAAAAAAA==")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "another iv: {v}");
    let check_url = format!("{base}/checksession");
    let check = || srv.post(&check_url, Some(&key), Some(json!({"openid": openid})));
    let (s, v) = check().await;
    assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");
    assert_eq!(sim.calls(CHECKSESSION), 1);

    // The user logs in again through wetoken: the kept key follows.
    let again = sim.login(MP, "alice");
    srv.post(
        &format!("{base}/jscode2session"),
        Some(&key),
        Some(json!({"js_code": again})),
    )
    .await;
    let (s, v) = check().await;
    assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = srv
        .post(&format!("{base}/decrypt"), Some(&key), Some(decrypt(&data, &iv)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "data sealed under the old key: {v}");

    // A user nobody logged in: nothing is kept.
    let (s, v) = srv
        .post(
            &format!("{base}/checksession"),
            Some(&key),
            Some(json!({"openid": sim.openid(MP, "bob")})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // The audit trail: each exchange, WeChat's answer, nothing secret.
    let (s, audit) = srv.get("/v1/audit?key=shop", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    let entries = audit["entries"].as_array().unwrap();
    let exchanges: Vec<&Value> = entries.iter().filter(|e| e["path"] == "/sns/jscode2session").collect();
    assert_eq!(exchanges.len(), 3, "{audit}");
    assert!(exchanges.iter().any(|e| e["errcode"] == 40163 && e["status"] == 502));
    let text = audit.to_string();
    for secret in [&code, &again, &openid, &sim.session_key(MP, "alice").unwrap()] {
        assert!(!text.contains(secret.as_str()), "the audit trail shows {secret}");
    }
}

/// A key that may see values gets WeChat's answer whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_tokens_gets_the_session_key() {
    let sim = sim().await;
    let srv = mp_server(&sim, &[]).await;
    let key = srv.key_for("backend", &[&format!("mp:{MP}")]).await;
    let code = sim.login(MP, "carol");
    let (s, v) = srv
        .post(
            &format!("/v1/mp/{MP}/sns/jscode2session"),
            Some(&key),
            Some(json!({"js_code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session_key"].as_str(), sim.session_key(MP, "carol").as_deref());
    assert!(v.get("unionid").is_none(), "not bound: {v}");
}

/// A code is never tried twice: WeChat not answering is 504 after one
/// call; bad input is 400 before any call; kept keys expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_are_made_once_and_bad_input_changes_nothing() {
    let sim = sim().await;
    let srv = mp_server(
        &sim,
        &[
            ("WETOKEN_UPSTREAM_TIMEOUT_SECS", "1"),
            ("WETOKEN_SESSION_KEY_TTL_SECS", "1"),
        ],
    )
    .await;
    let key = business_key(&srv, "shop", &[&format!("mp:{MP}")]).await;
    let url = format!("/v1/mp/{MP}/sns/jscode2session");
    sim.inject(JSCODE2SESSION, Fault::Hang, Some(1));
    let (s, v) = srv
        .post(&url, Some(&key), Some(json!({"js_code": sim.login(MP, "dan")})))
        .await;
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{v}");
    assert_eq!(sim.calls(JSCODE2SESSION), 1, "not tried again");
    for bad in [
        json!({}),
        json!({"js_code": ""}),
        json!({"js_code": "a b"}),
        json!({"js_code": "x".repeat(300)}),
        json!({"js_code": "ok", "extra": 1}),
    ] {
        let (s, v) = srv.post(&url, Some(&key), Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    assert_eq!(sim.calls(JSCODE2SESSION), 1, "bad input never reaches WeChat");
    // A code past its five minutes is WeChat's 40029, asked once.
    let late = sim.login(MP, "dan");
    sim.advance(Duration::from_secs(5 * 60 + 1));
    let (s, v) = srv.post(&url, Some(&key), Some(json!({"js_code": late}))).await;
    assert_eq!(
        (s, &v["upstream"]["errcode"]),
        (StatusCode::BAD_GATEWAY, &json!(40029)),
        "{v}"
    );
    assert_eq!(sim.calls(JSCODE2SESSION), 2);
    let (s, _) = srv
        .post(
            "/v1/mp/wxnosuchapp/sns/jscode2session",
            Some(ADMIN),
            Some(json!({"js_code": "c"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = srv
        .post(&url, Some(&key), Some(json!({"js_code": sim.login(MP, "dan")})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let openid = v["openid"].as_str().unwrap().to_owned();
    let (data, iv) = sim.encrypted_user_data(MP, "dan", &json!({"x": 1})).unwrap();
    let body = json!({"openid": openid, "encrypted_data": data, "iv": iv});
    let kept = until(Duration::from_secs(5), || async {
        srv.post(&format!("/v1/mp/{MP}/sns/decrypt"), Some(&key), Some(body.clone()))
            .await
            .0
            == StatusCode::NOT_FOUND
    })
    .await;
    assert!(kept, "a session key past WETOKEN_SESSION_KEY_TTL_SECS is not used");
}

/// An Official Account's web authorization end to end: the URL wetoken
/// builds is WeChat's page (here the simulator's), its code becomes the
/// user's token, which refreshes without a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_authorization_end_to_end() {
    let sim = sim().await;
    sim.bind_unionid(MP, "open-account-1");
    let srv = mp_server(&sim, &[]).await;
    let key = business_key(&srv, "h5", &[&format!("mp:{MP}")]).await;
    let base = format!("/v1/mp/{MP}/oauth2");
    let (s, v) = srv
        .get(
            &format!("{base}/authorize_url?redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Fa%3D1&scope=snsapi_userinfo&state=xyz"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid={MP}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Fa%3D1&response_type=code&scope=snsapi_userinfo&state=xyz"
    )), "{url}");
    assert!(url.ends_with("#wechat_redirect"), "{url}");
    // The user's WeChat opens it and consents.
    let page = url
        .replace("https://open.weixin.qq.com", &sim.url())
        .replace("#wechat_redirect", "&sim_user=erin");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(page).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://shop.example/cb?a=1&code="), "{location}");
    assert!(location.ends_with("&state=xyz"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let (s, v) = srv
        .post(&format!("{base}/access_token"), Some(&key), Some(json!({"code": code})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["openid"], sim.openid(MP, "erin"));
    assert_eq!(v["scope"], "snsapi_userinfo");
    assert!(v["unionid"].is_string(), "{v}");
    let (token, refresh) = (
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
    );
    // The user's token works at WeChat for what a user token does.
    let info: Value = reqwest::get(format!(
        "{}/sns/userinfo?access_token={token}&openid={}",
        sim.url(),
        v["openid"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(info["openid"], v["openid"], "{info}");
    let (s, again) = srv
        .post(&format!("{base}/access_token"), Some(&key), Some(json!({"code": code})))
        .await;
    assert_eq!(
        (s, &again["upstream"]["errcode"]),
        (StatusCode::BAD_GATEWAY, &json!(40163)),
        "{again}"
    );
    assert_eq!(sim.calls(OAUTH2_ACCESS_TOKEN), 2);
    let (s, r) = srv
        .post(
            &format!("{base}/refresh_token"),
            Some(&key),
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["access_token"], token, "a live token is extended");

    for (q, why) in [
        ("redirect_uri=https%3A%2F%2Fa.example&scope=snsapi_login", "scope"),
        ("redirect_uri=ftp%3A%2F%2Fa.example&scope=snsapi_base", "redirect_uri"),
        (
            "redirect_uri=https%3A%2F%2Fa.example&scope=snsapi_base&state=a-b",
            "state",
        ),
        ("scope=snsapi_base", "no redirect_uri"),
    ] {
        let (s, v) = srv.get(&format!("{base}/authorize_url?{q}"), Some(&key)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
    }
}

/// An authorizer's users sign in through its component's token: the
/// authorizer's secret is never needed, the component's never leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_signs_in_through_its_component() {
    const C: &str = "wxsignincomponent";
    const A: &str = "wxsigninauthz01";
    const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let sim = sim().await;
    sim.add_component(C, "cs", "tok", AES);
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"component","appid":C,"secret":"cs","token":"tok","aes_key":AES})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    sim.push_verify_ticket(C, &format!("{}/callback/component/{C}", srv.url))
        .await
        .unwrap();
    let refresh = sim.add_authorization(C, A);
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"authorizer","component_appid":C,"appid":A,"refresh_token":refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = business_key(&srv, "platform", &[&format!("component:{C}/*")]).await;
    let base = format!("/v1/component/{C}/authorizers/{A}");

    let (s, v) = srv
        .post(
            &format!("{base}/sns/jscode2session"),
            Some(&key),
            Some(json!({"js_code": sim.login(A, "fay")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["openid"], sim.openid(A, "fay"));
    assert!(v.get("session_key").is_none());
    assert_eq!(sim.calls(COMPONENT_JSCODE2SESSION), 1);

    let (s, v) = srv
        .get(
            &format!("{base}/oauth2/authorize_url?redirect_uri=https%3A%2F%2Fp.example%2Fcb&scope=snsapi_base"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("&component_appid={C}#wechat_redirect")),
        "{v}"
    );
    let code = sim.component_web_code(C, A, "fay", "snsapi_base");
    let (s, t) = srv
        .post(
            &format!("{base}/oauth2/access_token"),
            Some(&key),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["openid"], sim.openid(A, "fay"));
    let (s, r) = srv
        .post(
            &format!("{base}/oauth2/refresh_token"),
            Some(&key),
            Some(json!({"refresh_token": t["refresh_token"]})),
        )
        .await;
    assert_eq!((s, &r["access_token"]), (StatusCode::OK, &t["access_token"]), "{r}");
}

/// The same through token-free calls, as an SDK with an empty secret
/// sends them: WeChat's shape back, the secret added by wetoken, a sent
/// secret refused, the session key withheld from a key without tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_free_sign_in_with_an_empty_secret() {
    let sim = sim().await;
    let srv = mp_server(&sim, &[]).await;
    let key = business_key(&srv, "sdk", &[&format!("mp:{MP}")]).await;
    let call = |query: String| {
        let c = srv.client.clone();
        let url = format!("{}/proxy/mp/{MP}/sns/jscode2session?{query}", srv.url);
        let key = key.clone();
        async move {
            let resp = c.get(url).bearer_auth(key).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let code = sim.login(MP, "gus");
    let (s, v) = call(format!(
        "appid={MP}&secret=&js_code={code}&grant_type=authorization_code"
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["openid"], sim.openid(MP, "gus"));
    assert!(v.get("session_key").is_none() && v.get("errcode").is_none(), "{v}");
    let (s, v) = call(format!("appid={MP}&js_code={code}&grant_type=authorization_code")).await;
    assert_eq!(
        (s, &v["errcode"]),
        (StatusCode::OK, &json!(40163)),
        "WeChat's own answer: {v}"
    );
    let (s, v) = call(format!("appid={MP}&secret=mp-secret&js_code={}", sim.login(MP, "gus"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a sent secret: {v}");
    let (s, v) = call(format!("appid=wxsomeoneelse&js_code={}", sim.login(MP, "gus"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "another app: {v}");
    assert_eq!(sim.calls(JSCODE2SESSION), 2, "refused calls never reach WeChat");

    let web = sim.web_code(MP, "gus", "snsapi_base");
    let resp = srv
        .client
        .get(format!(
            "{}/proxy/mp/{MP}/sns/oauth2/access_token?appid={MP}&secret=&code={web}&grant_type=authorization_code",
            srv.url
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["openid"], sim.openid(MP, "gus"), "{v}");
    assert!(v["access_token"].is_string() && v["refresh_token"].is_string(), "{v}");
}

/// wechatpy, the business side's SDK, pointed at wetoken with an empty
/// secret and a key that may not see tokens: `WeChatWxa.code_to_session`
/// and `WeChatOAuth.fetch_access_token` work unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Python with wechatpy: run `cargo xtask ci`, or set WETOKEN_TEST_PYTHON"]
async fn wechatpy_signs_users_in_without_a_secret() {
    let python = std::env::var("WETOKEN_TEST_PYTHON").expect("WETOKEN_TEST_PYTHON names a Python with wechatpy");
    let sim = sim().await;
    let srv = mp_server(&sim, &[]).await;
    let key = business_key(&srv, "wechatpy", &[&format!("mp:{MP}")]).await;
    let (login, web) = (sim.login(MP, "hal"), sim.web_code(MP, "hal", "snsapi_base"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/wechatpy_signin.py");
    let out = tokio::process::Command::new(&python)
        .args([script, &srv.url, MP, &key, &login, &web])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["session"]["openid"], sim.openid(MP, "hal"), "{v}");
    assert!(v["session"].get("session_key").is_none(), "{v}");
    assert_eq!(v["token"]["openid"], sim.openid(MP, "hal"), "{v}");
    assert!(v["token"]["access_token"].is_string(), "{v}");
}
