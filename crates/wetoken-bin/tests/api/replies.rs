//! SPEC §14 replies: the one reply webhook of an account answers users
//! while WeChat waits, through wetoken, which seals the reply when the push
//! was sealed; late, failed or empty answers are `success`; WeChat's
//! retries are one event and one call; an instance dying mid-reply loses
//! nothing; the Open Platform's release test passes with no code.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use wetoken_sim::Sim;
use wetoken_sim::messages::{Answered, Format, Message, Mode, Receiver, Reply};

use crate::helpers::*;
use crate::receiver::{Answer, Receiver as Hook};

const TOKEN: &str = "replytoken";
const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const REPLY: &str = "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_test]]></FromUserName>\
    <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[已收到]]></Content></xml>";

/// Creates a webhook; its secret.
async fn webhook(srv: &TestServer, name: &str, url: &str, accounts: Value, format: &str, reply: bool) -> String {
    let (s, v) = srv
        .post(
            "/v1/webhooks",
            Some(ADMIN),
            Some(json!({"name": name, "url": url, "events": ["message.*", "event.*"],
                        "accounts": accounts, "format": format, "reply": reply})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

async fn add(srv: &TestServer, body: Value) {
    let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn add_mp(sim: &Sim, srv: &TestServer, appid: &str) {
    sim.add_app(appid, "s");
    add(
        srv,
        json!({"kind": "mp", "appid": appid, "secret": "s", "token": TOKEN, "aes_key": AES}),
    )
    .await;
}

fn mp(srv: &TestServer, appid: &str, mode: Mode, format: Format) -> Receiver {
    Receiver::mp(
        &format!("{}/callback/mp/{appid}", srv.url),
        TOKEN,
        AES,
        appid,
        mode,
        format,
    )
}

/// The first delivery to webhook `name` for which `ok` holds, waited for
/// (at most 30 s).
async fn delivery(srv: &TestServer, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = srv.get(&format!("/v1/webhooks/{name}/deliveries"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if let Some(d) = v["deliveries"].as_array().unwrap().iter().find(|d| ok(d)) {
            return d.clone();
        }
        assert!(Instant::now() < end, "no such delivery of {name}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The MsgIds of events delivered in the `json` format.
fn msg_ids(got: &[crate::receiver::Received]) -> Vec<String> {
    got.iter()
        .map(|g| match &g.json()["data"]["MsgId"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// One reply webhook for every kind of receiving URL: each user's message
/// gets the reply, sealed for WeChat where the push was sealed (the
/// simulator opens it with the account's key), in plaintext where it was
/// not; every other webhook still gets the event; the delivery record
/// holds the reply and its time; the console shows the last push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_account_gets_its_reply_in_time() {
    const A: &str = "wxreplymp0001";
    const C: &str = "wxreplycomp01";
    const Z: &str = "wxreplyauthz1";
    const CORP: &str = "wwreplycorp01";
    const S: &str = "wwreplysuite1";
    let sim = sim().await;
    sim.add_component(C, "cs", TOKEN, AES);
    sim.add_work_app(CORP, 1000002, "ws");
    sim.add_suite(S, "ss", TOKEN, AES);
    let srv = spawn(&sim).await;
    add_mp(&sim, &srv, A).await;
    add(
        &srv,
        json!({"kind":"component","appid":C,"secret":"cs","token":TOKEN,"aes_key":AES}),
    )
    .await;
    sim.push_verify_ticket(C, &format!("{}/callback/component/{C}", srv.url))
        .await
        .unwrap();
    let refresh = sim.add_authorization(C, Z);
    add(
        &srv,
        json!({"kind":"authorizer","component_appid":C,"appid":Z,"refresh_token":refresh}),
    )
    .await;
    add(
        &srv,
        json!({"kind":"work","corpid":CORP,"agentid":"1000002","secret":"ws","token":TOKEN,"aes_key":AES}),
    )
    .await;
    add(
        &srv,
        json!({"kind":"suite","suite_id":S,"secret":"ss","token":TOKEN,"aes_key":AES}),
    )
    .await;
    let instructions = format!("{}/callback/suite/{S}", srv.url);
    sim.push_suite_ticket(S, &instructions).await.unwrap();
    sim.install(S, "wwreplyinst01", 1000007, &instructions, false)
        .await
        .unwrap();

    let replier = Hook::start().await;
    replier.otherwise(Answer::Reply(Duration::ZERO, REPLY));
    let listener = Hook::start().await;
    webhook(&srv, "replier", &replier.url, json!(["*"]), "wechat_plain", true).await;
    webhook(&srv, "listener", &listener.url, json!(["*"]), "json", false).await;

    let receivers = [
        mp(&srv, A, Mode::Plaintext, Format::Xml),
        mp(&srv, A, Mode::Compatible, Format::Xml),
        mp(&srv, A, Mode::Safe, Format::Xml),
        mp(&srv, A, Mode::Safe, Format::Json),
        Receiver::open_platform(
            &format!("{}/callback/component/{C}/messages/{Z}", srv.url),
            TOKEN,
            AES,
            C,
        ),
        Receiver::wecom(
            &format!("{}/callback/work/{CORP}/1000002", srv.url),
            TOKEN,
            AES,
            CORP,
            Some("1000002"),
        ),
        Receiver::wecom(
            &format!("{}/callback/suite/{S}/data", srv.url),
            TOKEN,
            AES,
            "wwreplyinst01",
            Some("1000007"),
        ),
    ];
    for (i, r) in receivers.iter().enumerate() {
        let m = Message::text(
            "gh_test",
            "oUser",
            &format!("第 {i} 条"),
            500 + i as u64,
            sim.now_secs(),
        );
        let d = sim.push_to(r, &m).await;
        assert_eq!(d.reply, Reply::Message(REPLY.into()), "{}: {:?}", r.url, d.attempts);
        assert_eq!(d.attempts.len(), 1, "{}", r.url);
        if r.mode != Mode::Plaintext {
            let Answered::Status(_, body) = &d.attempts[0].0 else {
                unreachable!()
            };
            assert!(body.contains("Encrypt"), "sealed for WeChat: {body}");
        }
    }
    let got = listener.wait_for(receivers.len(), Duration::from_secs(20)).await;
    assert_eq!(got.len(), receivers.len(), "every event reached the other webhook");
    assert_eq!(replier.count(), receivers.len(), "one call per message");
    let d = delivery(&srv, "replier", |d| d["status"] == "delivered").await;
    assert_eq!(d["reply"], REPLY, "{d}");
    assert!(d["reply_ms"].as_i64().is_some_and(|ms| ms >= 0), "{d}");

    // The console shows the account's last push.
    let (cookie, _) = crate::console::sign_in(&srv.url, ADMIN).await;
    let (_, _, body) = crate::console::page(&srv.url, &format!("/console/accounts/mp:{A}"), &cookie).await;
    let cell = body.split("id=\"last-push\"").nth(1).expect("a last push").to_owned();
    assert!(cell[..cell.find("</td>").unwrap()].contains("message.text"), "{cell}");
}

/// A reply webhook that fails (500), answers late or hangs: WeChat gets
/// `success` at once or when the budget ends — one attempt, no retry storm
/// — and the event still reaches the other webhook. A late reply is in the
/// record, noted as late; the failure as an attempt to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_late_or_hanging_reply_webhook_means_success_in_time() {
    let sim = sim().await;
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_REPLY_BUDGET_MS", "1000")]).await;
    let listener = Hook::start().await;
    webhook(&srv, "listener", &listener.url, json!(["*"]), "json", false).await;
    let cases = [
        ("wxfailing0001", Answer::Status(500)),
        ("wxlatereply01", Answer::Reply(Duration::from_millis(1800), REPLY)),
        ("wxhanging0001", Answer::Hang),
    ];
    for (i, (appid, answer)) in cases.iter().enumerate() {
        add_mp(&sim, &srv, appid).await;
        let hook = Hook::start().await;
        hook.otherwise(*answer);
        webhook(
            &srv,
            &format!("reply-{i}"),
            &hook.url,
            json!([format!("mp:{appid}")]),
            "json",
            true,
        )
        .await;
        let m = Message::text("gh_test", "oUser", "在吗", 700 + i as u64, sim.now_secs());
        let started = Instant::now();
        let d = sim.push_to(&mp(&srv, appid, Mode::Safe, Format::Xml), &m).await;
        let took = started.elapsed();
        assert_eq!(d.reply, Reply::None, "{appid}: {:?}", d.attempts);
        assert!(
            matches!(&d.attempts[..], [(Answered::Status(200, body), _)] if body == "success"),
            "{appid}: exactly `success`, once: {:?}",
            d.attempts
        );
        assert!(took < Duration::from_millis(2500), "{appid}: answered in {took:?}");
        if !matches!(answer, Answer::Status(_)) {
            assert!(
                took >= Duration::from_millis(1000),
                "{appid}: waited the budget, {took:?}"
            );
        }
    }
    let failed = delivery(&srv, "reply-0", |d| d["attempts"] == 1).await;
    assert_eq!(
        (&failed["status"], &failed["last_status"], &failed["reply"]),
        (&json!("pending"), &json!(500), &Value::Null),
        "{failed}"
    );
    let late = delivery(&srv, "reply-1", |d| d["status"] == "delivered").await;
    assert_eq!(late["reply"], REPLY, "kept for a retry of the push: {late}");
    assert!(late["reply_ms"].as_i64().unwrap() >= 1800, "{late}");
    assert!(
        late["last_error"].as_str().unwrap().contains("past the reply budget"),
        "{late}"
    );
    assert_eq!(
        listener.wait_for(3, Duration::from_secs(20)).await.len(),
        3,
        "every event reached the other webhook"
    );
}

/// WeChat's retries of one push (its 5 s passed, here a shorter wait) are
/// one event and one call of the reply webhook: a retry while the call is
/// in flight is answered `success`; one after the reply was given gets the
/// same reply again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_push_are_one_event_and_one_call() {
    const A: &str = "wxretrying0001";
    let sim = sim().await;
    let srv = spawn(&sim).await;
    add_mp(&sim, &srv, A).await;
    let replier = Hook::start().await;
    replier.otherwise(Answer::Reply(Duration::from_millis(800), REPLY));
    let listener = Hook::start().await;
    webhook(
        &srv,
        "replier",
        &replier.url,
        json!([format!("mp:{A}")]),
        "wechat_plain",
        true,
    )
    .await;
    webhook(&srv, "listener", &listener.url, json!(["*"]), "json", false).await;
    let r = mp(&srv, A, Mode::Safe, Format::Xml);
    let m = Message::text("gh_test", "oUser", "重试", 900, sim.now_secs());
    let d = sim.push_within(&r, &m, Duration::from_millis(300)).await;
    assert!(
        d.attempts.len() >= 2 && matches!(d.attempts[0].0, Answered::TimedOut),
        "{:?}",
        d.attempts
    );
    assert_eq!(
        d.reply,
        Reply::None,
        "a retry while the call is in flight: {:?}",
        d.attempts
    );
    let done = delivery(&srv, "replier", |d| d["status"] == "delivered").await;
    assert_eq!(done["reply"], REPLY);
    let again = sim.push_to(&r, &m).await;
    assert_eq!(again.reply, Reply::Message(REPLY.into()), "the same reply again");
    assert_eq!(replier.count(), 1, "one call, however often WeChat retried");

    let next = Message::text("gh_test", "oUser", "下一条", 901, sim.now_secs());
    sim.push_to(&r, &next).await;
    let got = listener.wait_for(2, Duration::from_secs(20)).await;
    let ids = msg_ids(&got);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.contains(&"900".into()) && ids.contains(&"901".into()),
        "each message once: {ids:?}"
    );
    let (_, v) = srv
        .get(&format!("/v1/events?type=message.text&account=mp:{A}"), Some(ADMIN))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "{v}");
}

/// An instance killed (-9) while its reply webhook is being called, the
/// push committed but not answered: WeChat's retry reaches another
/// instance, which answers `success` (the call is another's until its
/// lease ends) — one event, one delivery to every other webhook, and the
/// reply webhook's delivery completed by the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_mid_reply_loses_and_duplicates_nothing() {
    const A: &str = "wxkilledreply1";
    let sim = sim().await;
    let dir = tempdir();
    let first = spawn_process_with(&dir, &sim.url(), &[]).await;
    let second = spawn_process_with(&dir, &sim.url(), &[]).await;
    add_mp(&sim, &first, A).await;
    let replier = Hook::start().await;
    replier.script(&[Answer::Hang]);
    let listener = Hook::start().await;
    webhook(
        &first,
        "replier",
        &replier.url,
        json!([format!("mp:{A}")]),
        "wechat_plain",
        true,
    )
    .await;
    webhook(&first, "listener", &listener.url, json!(["*"]), "json", false).await;
    let m = Message::text("gh_test", "oUser", "别丢", 1000, sim.now_secs());
    let to_first = mp(&first, A, Mode::Safe, Format::Xml);
    let kill = async {
        replier.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(replier.count(), 1, "the reply webhook is being called");
        // The other webhook's delivery done and recorded first: a kill in
        // the middle of an ordinary attempt is delivered again (at least
        // once), which is not what this test is about.
        delivery(&first, "listener", |d| d["status"] == "delivered").await;
        first.kill().await;
    };
    let (d, ()) = tokio::join!(sim.push_to(&to_first, &m), kill);
    assert_eq!(d.reply, Reply::NoAnswer, "the first instance never answered");

    // WeChat retries; the load balancer sends it to the survivor.
    let d = sim.push_to(&mp(&second, A, Mode::Safe, Format::Xml), &m).await;
    assert_eq!(d.reply, Reply::None, "{:?}", d.attempts);
    let done = delivery(&second, "replier", |d| d["status"] == "delivered").await;
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(replier.count(), 2, "called again once the dead instance's lease ended");
    let (_, v) = second
        .get(&format!("/v1/events?type=message.text&account=mp:{A}"), Some(ADMIN))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "one event: {v}");
    let got = listener.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let again = Message::text("gh_test", "oUser", "之后", 1001, sim.now_secs());
    sim.push_to(&mp(&second, A, Mode::Safe, Format::Xml), &again).await;
    let got = listener.wait_for(2, Duration::from_secs(20)).await;
    let ids = msg_ids(&got);
    assert_eq!(ids.len(), 2, "no duplicate delivery: {ids:?}");
    assert!(ids.contains(&"1000".into()) && ids.contains(&"1001".into()), "{ids:?}");
}

/// The Open Platform's release test, run by the simulator as WeChat runs
/// it, passes with no code and no reply webhook; off, it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_test_passes_with_no_code() {
    const C: &str = "wxreleasecomp1";
    let sim = sim().await;
    sim.add_component(C, "cs", TOKEN, AES);
    for (setting, passes) in [(None, true), (Some("off"), false)] {
        let extra: Vec<(&str, &str)> = setting.map(|v| ("WETOKEN_RELEASE_TEST", v)).into_iter().collect();
        let srv = spawn_with(&tempdir(), &sim.url(), &extra).await;
        add(
            &srv,
            json!({"kind":"component","appid":C,"secret":"cs","token":TOKEN,"aes_key":AES}),
        )
        .await;
        sim.push_verify_ticket(C, &format!("{}/callback/component/{C}", srv.url))
            .await
            .unwrap();
        let template = format!("{}/callback/component/{C}/messages/$APPID$", srv.url);
        let report = sim.release_test(C, &template, 2).await;
        assert_eq!(report.passed(), passes, "{setting:?}: {report:?}");
        if passes {
            assert_eq!(report.cases.len(), 3, "{report:?}");
        }
    }
}

/// A reply webhook written with wechatpy as a plaintext-mode handler
/// (`check_signature`, `parse_message`, `create_reply`, the webhook's
/// secret as its Token) answers a safe-mode user; wechatpy's
/// `WeChatCrypto`, on WeChat's side, opens the reply wetoken sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wechatpy_handler_replies_through_wetoken() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    const A: &str = "wxwechatpyrep1";
    let Ok(python) = std::env::var("WETOKEN_TEST_PYTHON") else {
        eprintln!("wechatpy reply check NOT RUN: WETOKEN_TEST_PYTHON is not set (cargo xtask ci sets it)");
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/wechatpy_reply.py");
    let sim = sim().await;
    let srv = spawn(&sim).await;
    add_mp(&sim, &srv, A).await;
    let mut handler = tokio::process::Command::new(&python)
        .args([script, "serve"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut port = String::new();
    tokio::io::BufReader::new(handler.stdout.take().unwrap())
        .read_line(&mut port)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}/wechat", port.trim());
    let secret = webhook(&srv, "wechatpy", &url, json!([format!("mp:{A}")]), "wechat_plain", true).await;
    let mut stdin = handler.stdin.take().unwrap();
    stdin.write_all(format!("{secret}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();

    let m = Message::text("gh_wechatpy", "oPyUser", "你好", 1200, sim.now_secs());
    let d = sim.push_to(&mp(&srv, A, Mode::Safe, Format::Xml), &m).await;
    let Reply::Message(reply) = &d.reply else {
        panic!("no reply: {:?}", d.attempts)
    };
    let fields = wetoken_core::wxml::fields(reply).unwrap();
    assert_eq!(
        (fields["Content"].as_str(), fields["ToUserName"].as_str()),
        ("wechatpy: 你好", "oPyUser")
    );
    let Answered::Status(200, sealed) = &d.attempts[0].0 else {
        panic!("{:?}", d.attempts)
    };
    let mut open = tokio::process::Command::new(&python)
        .args([script, "open", TOKEN, AES, A])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    open.stdin.take().unwrap().write_all(sealed.as_bytes()).await.unwrap();
    let out = open.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let opened: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        opened,
        json!({"type": "text", "content": "wechatpy: 你好", "to": "oPyUser"})
    );
}
