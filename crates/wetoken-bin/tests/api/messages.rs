//! SPEC §14: users' messages and events reach business systems through
//! wetoken, which holds the account's Token and EncodingAESKey. The
//! simulator pushes as WeChat does (its modes, formats, timeout and
//! retries).

use reqwest::StatusCode;
use serde_json::{Value, json};
use wetoken_sim::messages::{Answered, Format, Message, Mode, Receiver, Reply};

use crate::helpers::*;

const APPID: &str = "wxmessages0001";
const TOKEN: &str = "msgtoken";
const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

async fn server_with_receiver(sim: &wetoken_sim::Sim) -> TestServer {
    sim.add_app(APPID, "s");
    let srv = spawn(sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind": "mp", "appid": APPID, "secret": "s", "token": TOKEN, "aes_key": AES})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    srv
}

fn receiver(srv: &TestServer, mode: Mode, format: Format) -> Receiver {
    Receiver::mp(
        &format!("{}/callback/mp/{APPID}", srv.url),
        TOKEN,
        AES,
        APPID,
        mode,
        format,
    )
}

async fn events(srv: &TestServer, kind: &str) -> Vec<Value> {
    let (s, v) = srv
        .get(&format!("/v1/events?type={kind}&account=mp:{APPID}"), Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// Every mode (plaintext, compatible, safe) in both formats (XML, JSON):
/// answered `success` at the first attempt, one `message.text` event each
/// with the message's fields; WeChat's retries of a push are that one
/// event; an event is deduplicated by its sender and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_and_format_is_one_event_per_message() {
    let sim = sim().await;
    let srv = server_with_receiver(&sim).await;
    let cases = [
        (Mode::Plaintext, Format::Xml),
        (Mode::Compatible, Format::Xml),
        (Mode::Safe, Format::Xml),
        (Mode::Plaintext, Format::Json),
        (Mode::Compatible, Format::Json),
        (Mode::Safe, Format::Json),
    ];
    for (i, (mode, format)) in cases.into_iter().enumerate() {
        let m = Message::text(
            "gh_test",
            "oUser1",
            &format!("你好 {i}"),
            1000 + i as u64,
            sim.now_secs(),
        );
        let r = receiver(&srv, mode, format);
        for _ in 0..2 {
            // The second is a retry of the same push.
            let d = sim.push_to(&r, &m).await;
            assert_eq!(d.reply, Reply::None, "{mode:?} {format:?}: {:?}", d.attempts);
            assert_eq!(d.attempts.len(), 1, "{mode:?} {format:?}");
        }
    }
    let got = events(&srv, "message.text").await;
    assert_eq!(got.len(), cases.len(), "{got:#?}");
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e["account"], format!("mp:{APPID}"));
        assert_eq!(e["data"]["Content"], format!("你好 {i}"), "{e}");
        assert_eq!(e["data"]["FromUserName"], "oUser1");
    }
    assert!(got[0]["data"]["xml"].is_string() && got[3]["data"]["json"].is_string());

    let at = sim.now_secs();
    for _ in 0..2 {
        let d = sim
            .push_to(
                &receiver(&srv, Mode::Safe, Format::Xml),
                &Message::event("gh_test", "oUser1", "subscribe", at),
            )
            .await;
        assert_eq!(d.reply, Reply::None);
    }
    assert_eq!(events(&srv, "event.subscribe").await.len(), 1);
}

/// WeChat's check of the URL: the echostr back when the signature is the
/// account's; a wrong one, an unknown account and an account without a
/// token all answer alike (401), and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_wechat_with_the_accounts_token_gets_in() {
    let sim = sim().await;
    let srv = server_with_receiver(&sim).await;
    srv.add_mp("wxnotoken00001", "s").await;
    let ts = sim.now_secs().to_string();
    let sign = |token: &str| wetoken_core::msgcrypt::sha1_sorted(&[token, &ts, "77"]);
    let verify = |appid: &str, signature: String| {
        let c = srv.client.clone();
        let url = format!(
            "{}/callback/mp/{appid}?signature={signature}&timestamp={ts}&nonce=77&echostr=4375120948345356249",
            srv.url
        );
        async move {
            let resp = c.get(url).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    assert_eq!(
        verify(APPID, sign(TOKEN)).await,
        (StatusCode::OK, "4375120948345356249".to_owned())
    );
    let (wrong, unknown, tokenless) = (
        verify(APPID, sign("another")).await,
        verify("wxnosuchapp001", sign(TOKEN)).await,
        verify("wxnotoken00001", sign(TOKEN)).await,
    );
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (wrong.clone(), wrong),
        (unknown, tokenless),
        "no oracle for which accounts exist"
    );

    // Pushes signed with another token: refused every time WeChat tries.
    let forged = Receiver::mp(
        &format!("{}/callback/mp/{APPID}", srv.url),
        "another",
        AES,
        APPID,
        Mode::Safe,
        Format::Xml,
    );
    let d = sim
        .push_to(&forged, &Message::text("gh_test", "oUser1", "hi", 1, sim.now_secs()))
        .await;
    assert_eq!(d.reply, Reply::NoAnswer);
    assert!(
        d.attempts.iter().all(|(a, _)| matches!(a, Answered::Status(401, _))),
        "{:?}",
        d.attempts
    );
    let plain = Receiver::mp(
        &format!("{}/callback/mp/{APPID}", srv.url),
        "another",
        AES,
        APPID,
        Mode::Plaintext,
        Format::Xml,
    );
    let d = sim
        .push_to(&plain, &Message::text("gh_test", "oUser1", "hi", 2, sim.now_secs()))
        .await;
    assert_eq!(d.reply, Reply::NoAnswer);
    assert!(events(&srv, "message.*").await.is_empty());
}

/// A third-party platform's message URL (`…/messages/$APPID$` at WeChat):
/// its authorizers' messages, sealed with the platform's token and key,
/// are events of the authorizer; an appid that is not one of its
/// authorizers is refused like a bad signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizers_messages_come_through_its_platforms_url() {
    const C: &str = "wxmsgcomponent";
    const A: &str = "wxmsgauthz0001";
    let sim = sim().await;
    sim.add_component(C, "cs", TOKEN, AES);
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"component","appid":C,"secret":"cs","token":TOKEN,"aes_key":AES})),
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
    let url = |appid: &str| format!("{}/callback/component/{C}/messages/{appid}", srv.url);
    let m = Message::text("gh_authz", "oFan1", "hello platform", 31, sim.now_secs());
    let d = sim.push_to(&Receiver::open_platform(&url(A), TOKEN, AES, C), &m).await;
    assert_eq!(d.reply, Reply::None, "{:?}", d.attempts);
    let (_, v) = srv
        .get(
            &format!("/v1/events?type=message.text&account=authorizer:{C}:{A}"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(v["events"][0]["data"]["Content"], "hello platform", "{v}");
    let d = sim
        .push_to(&Receiver::open_platform(&url("wxnotauthz001"), TOKEN, AES, C), &m)
        .await;
    assert!(
        d.attempts.iter().all(|(a, _)| matches!(a, Answered::Status(401, _))),
        "{:?}",
        d.attempts
    );
}

/// A WeCom app's receiving URL (always encrypted, receive id the corpid)
/// and a suite's data callback (the receive id is the corp that installed
/// it, whose event it becomes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_apps_and_suites_data_callbacks() {
    use wetoken_core::msgcrypt::MsgCrypt;
    const CORP: &str = "wwmsgcorp0001";
    const S: &str = "wwmsgsuite001";
    let sim = sim().await;
    sim.add_work_app(CORP, 1000002, "ws");
    sim.add_suite(S, "ss", TOKEN, AES);
    let srv = spawn(&sim).await;
    for body in [
        json!({"kind":"work","corpid":CORP,"agentid":"1000002","secret":"ws","token":TOKEN,"aes_key":AES}),
        json!({"kind":"suite","suite_id":S,"secret":"ss","token":TOKEN,"aes_key":AES}),
    ] {
        let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // WeCom's check of the app's URL: the decrypted echostr.
    let crypt = MsgCrypt::new(TOKEN, AES, CORP).unwrap();
    let (ts, nonce) = (sim.now_secs().to_string(), "99");
    let echostr = crypt.encrypt("5927782489442352469");
    let url = format!("{}/callback/work/{CORP}/1000002", srv.url);
    let resp = srv
        .client
        .get(&url)
        .query(&[
            ("msg_signature", crypt.signature(&ts, nonce, &echostr)),
            ("timestamp", ts.clone()),
            ("nonce", nonce.into()),
            ("echostr", echostr),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "5927782489442352469");
    let m = Message::text(CORP, "zhangsan", "你好企业微信", 41, sim.now_secs()).with("AgentID", json!(1000002));
    let d = sim
        .push_to(&Receiver::wecom(&url, TOKEN, AES, CORP, Some("1000002")), &m)
        .await;
    assert_eq!(d.reply, Reply::None, "{:?}", d.attempts);
    let (_, v) = srv
        .get(
            &format!("/v1/events?type=message.text&account=work:{CORP}:1000002"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(v["events"][0]["data"]["Content"], "你好企业微信", "{v}");

    // WeCom checks a suite's URLs with the echostr sealed for the
    // provider's corpid, which wetoken need not know.
    let provider = MsgCrypt::new(TOKEN, AES, "wwprovider0001").unwrap();
    let echostr = provider.encrypt("1616140317555161061");
    for path in [format!("/callback/suite/{S}"), format!("/callback/suite/{S}/data")] {
        let resp = srv
            .client
            .get(format!("{}{path}", srv.url))
            .query(&[
                ("msg_signature", provider.signature(&ts, nonce, &echostr)),
                ("timestamp", ts.clone()),
                ("nonce", nonce.into()),
                ("echostr", echostr.clone()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.text().await.unwrap(), "1616140317555161061", "{path}");
    }

    // A corp installs the suite; its users' messages come to the data URL.
    let callback = format!("{}/callback/suite/{S}", srv.url);
    sim.push_suite_ticket(S, &callback).await.unwrap();
    sim.install(S, "wwinstalled01", 1000007, &callback, false)
        .await
        .unwrap();
    let data = format!("{}/callback/suite/{S}/data", srv.url);
    let m = Message::text("wwinstalled01", "lisi", "第三方应用", 42, sim.now_secs()).with("AgentID", json!(1000007));
    let d = sim
        .push_to(
            &Receiver::wecom(&data, TOKEN, AES, "wwinstalled01", Some("1000007")),
            &m,
        )
        .await;
    assert_eq!(d.reply, Reply::None, "{:?}", d.attempts);
    let (_, v) = srv
        .get(
            &format!("/v1/events?type=message.text&account=corp:{S}:wwinstalled01"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(v["events"][0]["data"]["Content"], "第三方应用", "{v}");
    let d = sim
        .push_to(&Receiver::wecom(&data, TOKEN, AES, "wwnotinstalled", Some("1")), &m)
        .await;
    assert!(
        d.attempts.iter().all(|(a, _)| matches!(a, Answered::Status(401, _))),
        "{:?}",
        d.attempts
    );
}

/// A `wechat_plain` webhook: the user's message re-posted as WeChat posts
/// in plaintext mode, signed with the webhook's secret as the Token, so a
/// plaintext-mode handler of any SDK works unchanged (wechatpy's
/// `check_signature` and `parse_message` here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wechat_plain_webhook_gets_the_message_as_a_plaintext_handler_would() {
    let sim = sim().await;
    let srv = server_with_receiver(&sim).await;
    let rx = crate::receiver::Receiver::start().await;
    let (s, hook) = srv
        .post(
            "/v1/webhooks",
            Some(ADMIN),
            Some(
                json!({"name": "handler", "url": rx.url, "events": ["message.*", "event.*"],
                        "accounts": [format!("mp:{APPID}")], "format": "wechat_plain"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let m = Message::text("gh_test", "oUser9", "明文处理器", 77, sim.now_secs());
    let d = sim.push_to(&receiver(&srv, Mode::Safe, Format::Xml), &m).await;
    assert_eq!(d.reply, Reply::None);
    // WeChat's retries of the push, then another message: two deliveries.
    for _ in 0..3 {
        sim.push_to(&receiver(&srv, Mode::Safe, Format::Xml), &m).await;
    }
    let next = Message::text("gh_test", "oUser9", "下一条", 78, sim.now_secs());
    sim.push_to(&receiver(&srv, Mode::Safe, Format::Xml), &next).await;
    let got = rx.wait_for(2, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "one delivery per message, retries included");
    let bodies: std::collections::BTreeSet<&[u8]> = got.iter().map(|r| r.body.as_ref()).collect();
    let (first, second) = (m.render(Format::Xml), next.render(Format::Xml));
    let want: std::collections::BTreeSet<&[u8]> = [first.as_bytes(), second.as_bytes()].into();
    assert_eq!(bodies, want, "each message once; the retries were not delivered");
    let r = got.iter().find(|r| r.body == first.as_bytes()).unwrap();
    assert_eq!(
        r.body,
        m.render(Format::Xml).as_bytes(),
        "the decrypted message as WeChat wrote it"
    );
    assert_eq!(r.header("content-type"), "text/xml");
    let q: std::collections::HashMap<String, String> = url_params(&r.query);
    assert_eq!(
        q["signature"],
        wetoken_core::msgcrypt::sha1_sorted(&[&secret, &q["timestamp"], &q["nonce"]]),
        "signed with the webhook's secret as WeChat's Token"
    );
    assert_eq!(q["openid"], "oUser9");

    if let Ok(python) = std::env::var("WETOKEN_TEST_PYTHON") {
        use tokio::io::AsyncWriteExt;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/wechatpy_plain.py");
        let mut child = tokio::process::Command::new(python)
            .args([script, &secret, &r.query])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&r.body).await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            parsed,
            json!({"type": "text", "content": "明文处理器", "source": "oUser9", "id": 77})
        );
    } else {
        eprintln!("wechatpy check NOT RUN: WETOKEN_TEST_PYTHON is not set (cargo xtask ci sets it)");
    }
}

fn url_params(query: &str) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// At most one reply webhook covers any account (SPEC §14): one whose
/// accounts overlap another reply webhook's is 409; a plain webhook on the
/// same accounts is fine; a WeCom robot cannot reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reply_webhook_per_account() {
    let sim = sim().await;
    let srv = server_with_receiver(&sim).await;
    let hook = |name: &str, accounts: Value, format: &str, reply: bool| {
        json!({"name": name, "url": "https://app.example.com/wechat", "events": ["message.*"],
               "accounts": accounts, "format": format, "reply": reply})
    };
    let create = |body: Value| srv.post("/v1/webhooks", Some(ADMIN), Some(body));
    let (s, v) = create(hook("answers", json!([format!("mp:{APPID}")]), "wechat_plain", true)).await;
    assert_eq!((s, &v["reply"]), (StatusCode::CREATED, &json!(true)), "{v}");
    for (name, accounts) in [("everyone", json!(["*"])), ("same", json!([format!("mp:{APPID}")]))] {
        let (s, v) = create(hook(name, accounts, "json", true)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {v}");
    }
    let (s, v) = create(hook(
        "elsewhere",
        json!(["mp:wxanother0001", "component:wxc/*"]),
        "json",
        true,
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = create(hook("listener", json!(["*"]), "json", false)).await;
    assert_eq!((s, &v["reply"]), (StatusCode::CREATED, &json!(false)), "{v}");
    let (s, v) = create(hook("robot", json!(["mp:wxrobot00001"]), "wecom_bot", true)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}
