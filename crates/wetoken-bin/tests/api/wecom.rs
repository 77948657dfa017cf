//! WeCom (SPEC §1, §3, §5) against the real server and the simulator over
//! HTTP: self-built apps per agent, suites and their callback, installed
//! corps, providers.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wetoken_core::msgcrypt::MsgCrypt;
use wetoken_sim::{CORP_TOKEN, GETTOKEN, SUITE_TOKEN, Sim};

use crate::helpers::*;

const S: &str = "wwsuite0001";
const SUITE_SECRET: &str = "suite-secret";
const TOKEN: &str = "suitetoken";
const AES_KEY: &str = "ClwZ9gcSJogk3RhlyJsL9OH5t4ox8Dku5bXkpKNYJBA";

fn signed(ticket: &str, cfg: &Value, url: &str) -> String {
    let plain = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={url}",
        cfg["nonceStr"].as_str().unwrap(),
        cfg["timestamp"].as_i64().expect("timestamp is an integer")
    );
    hex::encode(Sha1::digest(plain.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_of_one_corp_never_share_a_value() {
    let sim = sim().await;
    sim.add_work_app("wwcorp", 1000002, "secret-a");
    sim.add_work_app("wwcorp", 1000003, "secret-b");
    let srv = spawn(&sim).await;
    for (agentid, secret) in [(1000002, "secret-a"), (1000003, "secret-b")] {
        let (s, v) = srv
            .post(
                "/v1/accounts",
                Some(ADMIN),
                Some(json!({"kind":"work","corpid":"wwcorp","agentid":agentid,"secret":secret})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let mut seen = Vec::new();
    for cred in ["access_token", "jsapi_ticket", "agent_ticket"] {
        let field = if cred == "access_token" {
            "access_token"
        } else {
            "ticket"
        };
        let (s, a) = srv.get(&format!("/v1/work/wwcorp/1000002/{cred}"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::OK, "{a}");
        let (_, b) = srv.get(&format!("/v1/work/wwcorp/1000003/{cred}"), Some(ADMIN)).await;
        assert_ne!(a[field], b[field], "{cred} shared between agents");
        seen.push(a[field].as_str().unwrap().to_owned());
        seen.push(b[field].as_str().unwrap().to_owned());
    }
    assert_eq!(sim.calls(GETTOKEN), 2, "one token per agent");
    assert!(seen[0..2].iter().all(|t| sim.is_valid(t)));

    // wx.config with the corp ticket, wx.agentConfig with the agent ticket.
    let url = "https://work.example.com/app?x=1";
    let (s, cfg) = srv
        .post(
            "/v1/work/wwcorp/1000003/jssdk_config",
            Some(ADMIN),
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    assert_eq!(cfg["config"]["appId"], "wwcorp");
    assert_eq!(cfg["config"]["signature"], signed(&seen[3], &cfg["config"], url));
    assert_eq!(
        (
            cfg["agent_config"]["corpid"].as_str(),
            cfg["agent_config"]["agentid"].as_str()
        ),
        (Some("wwcorp"), Some("1000003"))
    );
    assert_eq!(
        cfg["agent_config"]["signature"],
        signed(&seen[5], &cfg["agent_config"], url)
    );
    assert_ne!(cfg["config"]["nonceStr"], cfg["agent_config"]["nonceStr"]);

    let (s, v) = srv.get("/v1/work/wwcorp/100000x/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "agentid is digits: {v}");
    sim.add_work_app("wwcorp", 1000009, "right");
    srv.post(
        "/v1/accounts",
        Some(ADMIN),
        Some(json!({"kind":"work","corpid":"wwcorp","agentid":1000009,"secret":"wrong"})),
    )
    .await;
    let (s, v) = srv.get("/v1/work/wwcorp/1000009/access_token", Some(ADMIN)).await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(40001)),
        "{v}"
    );
}

/// A server with a suite account, and the suite's callback URL.
async fn suite_setup(run: Run, sim: &Sim, dir: &TestDir) -> (TestServer, String) {
    sim.add_suite(S, SUITE_SECRET, TOKEN, AES_KEY);
    let srv = start(run, dir, &sim.url(), &[]).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"suite","suite_id":S,"secret":SUITE_SECRET,"token":TOKEN,"aes_key":AES_KEY})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let callback = format!("{}/callback/suite/{S}", srv.url);
    (srv, callback)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_answers_the_decrypted_echostr() {
    let sim = sim().await;
    let (_srv, callback) = suite_setup(Run::InProcess, &sim, &tempdir()).await;
    for _ in 0..5 {
        let (status, body, plain) = sim.verify_suite_url(S, &callback).await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (200, plain.as_str()),
            "the echostr held + and /"
        );
    }
    // A forged signature is refused.
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, S).unwrap();
    let echostr = crypt.encrypt("123");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let resp = client()
        .get(&callback)
        .query(&[
            ("msg_signature", "0".repeat(40).as_str()),
            ("timestamp", &ts),
            ("nonce", "1"),
            ("echostr", &echostr),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_suite_ticket_survives_kill_9_and_gives_the_suite_token() {
    let sim = sim().await;
    let dir = tempdir();
    let (srv, callback) = suite_setup(Run::Process, &sim, &dir).await;
    let (s, v) = srv.get(&format!("/v1/suite/{S}/access_token"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["message"].as_str().unwrap().contains("suite_ticket"), "{v}");
    sim.push_suite_ticket(S, &callback).await.unwrap();
    srv.kill().await;
    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    let (s, v) = srv.get(&format!("/v1/suite/{S}/access_token"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
    assert_eq!(sim.calls(SUITE_TOKEN), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_give_corp_tokens_and_follow_change_reset_and_cancel() {
    let sim = sim().await;
    let (srv, callback) = suite_setup(Run::InProcess, &sim, &tempdir()).await;
    sim.push_suite_ticket(S, &callback).await.unwrap();
    let key = srv.key_for("saas", &[&format!("suite:{S}/*")]).await;

    sim.install(S, "wwcorpa", 1000005, &callback, false).await.unwrap();
    let (s, list) = srv.get(&format!("/v1/suite/{S}/corps"), Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let c = &list["corps"][0];
    assert_eq!(
        (c["corpid"].as_str(), c["agentid"].as_str(), c["status"].as_str()),
        (Some("wwcorpa"), Some("1000005"), Some("authorized"))
    );
    assert!(c["authorized_at"].as_str().unwrap().ends_with('Z'));
    let base = format!("/v1/suite/{S}/corps/wwcorpa");
    let (s, v) = srv.get(&format!("{base}/access_token"), Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(sim.calls(CORP_TOKEN), 0, "the token from get_permanent_code is used");
    let token = v["access_token"].as_str().unwrap().to_owned();
    for cred in ["jsapi_ticket", "agent_ticket"] {
        let (s, v) = srv.get(&format!("{base}/{cred}"), Some(&key)).await;
        assert_eq!(s, StatusCode::OK, "{cred}: {v}");
    }
    let (s, cfg) = srv
        .post(
            &format!("{base}/jssdk_config"),
            Some(&key),
            Some(json!({"url":"https://a.example.com/"})),
        )
        .await;
    assert_eq!(
        (s, cfg["agent_config"]["agentid"].as_str()),
        (StatusCode::OK, Some("1000005")),
        "{cfg}"
    );

    // The permanent code works: a refresh goes through get_corp_token.
    sim.revoke(&token);
    let (s, v) = srv
        .post(
            &format!("{base}/access_token/refresh"),
            Some(&key),
            Some(json!({"stale": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(sim.calls(CORP_TOKEN), 1);

    // change_auth: the new agentid is read back.
    sim.change_install(S, "wwcorpa", 1000006);
    sim.auth_event(S, "wwcorpa", "change_auth", &callback).await.unwrap();
    let (_, list) = srv.get(&format!("/v1/suite/{S}/corps"), Some(&key)).await;
    assert_eq!(list["corps"][0]["agentid"], "1000006", "{list}");

    // reset_permanent_code: the new code replaces the old one.
    sim.install(S, "wwcorpa", 1000006, &callback, true).await.unwrap();
    let (s, v) = srv
        .post(&format!("{base}/access_token/refresh"), Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the new permanent code is used: {v}");

    // cancel_auth: gone.
    sim.auth_event(S, "wwcorpa", "cancel_auth", &callback).await.unwrap();
    let (_, list) = srv.get(&format!("/v1/suite/{S}/corps"), Some(&key)).await;
    assert_eq!(list["corps"], json!([]));
    let (s, _) = srv.get(&format!("{base}/access_token"), Some(&key)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Importing a corp with a known permanent code.
    let permanent = sim.add_install(S, "wwcorpb", 1000007);
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"corp","suite_id":S,"corpid":"wwcorpb","permanent_code":permanent,"agentid":1000007})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .get(&format!("/v1/suite/{S}/corps/wwcorpb/access_token"), Some(&key))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_token() {
    let sim = sim().await;
    sim.add_provider("wwprovider", "provider-secret");
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"provider","corpid":"wwprovider","secret":"provider-secret"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv.get("/v1/provider/wwprovider/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
    assert!((7195..=7200).contains(&v["expires_in"].as_i64().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_stale_suite_callbacks_change_nothing() {
    let sim = sim().await;
    let (srv, callback) = suite_setup(Run::InProcess, &sim, &tempdir()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let message = |t: i64| {
        format!(
            "<xml><SuiteId><![CDATA[{S}]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>{t}</TimeStamp>\
             <SuiteTicket><![CDATA[forged]]></SuiteTicket></xml>"
        )
    };
    let send = |crypt: MsgCrypt, ts: i64, spoil: bool, body_prefix: &'static str| {
        let callback = callback.clone();
        let msg = message(ts);
        async move {
            let ts = ts.to_string();
            let (mut sig, body) = crypt.seal_push("ToUserName", &msg, &ts, "99");
            if spoil {
                sig = "f".repeat(40);
            }
            client()
                .post(&callback)
                .query(&[("msg_signature", sig.as_str()), ("timestamp", &ts), ("nonce", "99")])
                .body(format!("{body_prefix}{body}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let ours = || MsgCrypt::new(TOKEN, AES_KEY, S).unwrap();
    assert_eq!(
        send(ours(), now, true, "").await,
        StatusCode::UNAUTHORIZED,
        "forged signature"
    );
    assert_eq!(
        send(ours(), now - 3600, false, "").await,
        StatusCode::UNAUTHORIZED,
        "stale timestamp"
    );
    let other = MsgCrypt::new(TOKEN, AES_KEY, "wwothersuite").unwrap();
    assert_eq!(
        send(other, now, false, "").await,
        StatusCode::UNAUTHORIZED,
        "another suite"
    );
    assert_eq!(
        send(ours(), now, false, "<!DOCTYPE x>").await,
        StatusCode::BAD_REQUEST,
        "DTD"
    );
    let (_, acc) = srv.get(&format!("/v1/accounts/suite:{S}"), Some(ADMIN)).await;
    assert!(
        acc["credentials"]["suite_ticket"]["expires_at"].is_null(),
        "nothing stored: {acc}"
    );
    assert_eq!(send(ours(), now, false, "").await, StatusCode::OK, "the genuine one");
    let (_, acc) = srv.get(&format!("/v1/accounts/suite:{S}"), Some(ADMIN)).await;
    assert!(acc["credentials"]["suite_ticket"]["expires_at"].is_string());
}

/// SPEC §2 "authorization events are applied once": a replayed
/// `create_auth` (WeCom retries until it sees `success`) carries a code
/// already exchanged and is not exchanged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_create_auth_is_not_exchanged_again() {
    let sim = sim().await;
    let (srv, callback) = suite_setup(Run::InProcess, &sim, &tempdir()).await;
    sim.push_suite_ticket(S, &callback).await.unwrap();
    let code = sim.install(S, "wwreplay", 1000005, &callback, false).await.unwrap();
    assert_eq!(sim.calls(wetoken_sim::PERMANENT_CODE), 1);
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, S).unwrap();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let message = format!(
        "<xml><SuiteId><![CDATA[{S}]]></SuiteId><AuthCode><![CDATA[{code}]]></AuthCode>\
         <InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>{ts}</TimeStamp></xml>"
    );
    let (msg_signature, body) = crypt.seal_push("ToUserName", &message, &ts, "42");
    for _ in 0..3 {
        let resp = client()
            .post(&callback)
            .query(&[
                ("msg_signature", msg_signature.as_str()),
                ("timestamp", &ts),
                ("nonce", "42"),
            ])
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), "success");
    }
    assert_eq!(
        sim.calls(wetoken_sim::PERMANENT_CODE),
        1,
        "the replays were not exchanged"
    );
    let (s, v) = srv
        .get(&format!("/v1/suite/{S}/corps/wwreplay/access_token"), Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
