//! The Open Platform flow (SPEC §3, §5) against the real server and the
//! simulator over HTTP: verify tickets, the component token, authorization,
//! authorizers, refused and replayed callbacks.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use wetoken_core::msgcrypt::{MsgCrypt, sha1_sorted};
use wetoken_sim::{AUTHORIZER_TOKEN, COMPONENT_TOKEN, Fault, QUERY_AUTH, Sim, SimConfig};

use crate::helpers::*;

const C: &str = "wxcomponent0001";
const SECRET: &str = "component-secret";
const TOKEN: &str = "msgtoken";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// A server with a component account, and its callback URL.
async fn setup(run: Run, sim: &Sim, dir: &TestDir, extra: &[(&str, &str)]) -> (TestServer, String) {
    sim.add_component(C, SECRET, TOKEN, AES_KEY);
    let srv = start(run, dir, &sim.url(), extra).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"component","appid":C,"secret":SECRET,"token":TOKEN,"aes_key":AES_KEY})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let callback = format!("{}/callback/component/{C}", srv.url);
    (srv, callback)
}

/// A push as WeChat sends it, with the pieces a test may want to spoil.
struct Push {
    query: Vec<(String, String)>,
    body: String,
}

fn push_of(crypt: &MsgCrypt, message: &str, timestamp: i64) -> Push {
    let ts = timestamp.to_string();
    let nonce = "1372623149";
    let (msg_signature, body) = crypt.seal_push("AppId", message, &ts, nonce);
    Push {
        query: vec![
            ("signature".into(), sha1_sorted(&[TOKEN, &ts, nonce])),
            ("timestamp".into(), ts),
            ("nonce".into(), nonce.into()),
            ("encrypt_type".into(), "aes".into()),
            ("msg_signature".into(), msg_signature),
        ],
        body,
    }
}

fn ticket_message(ticket: &str, create_time: i64) -> String {
    format!(
        "<xml><AppId><![CDATA[{C}]]></AppId><CreateTime>{create_time}</CreateTime>\
         <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
         <ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
    )
}

async fn send(url: &str, p: &Push) -> (StatusCode, String) {
    let resp = client()
        .post(url)
        .query(&p.query)
        .body(p.body.clone())
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_verify_ticket_survives_kill_9_and_gives_the_component_token() {
    let sim = sim().await;
    let dir = tempdir();
    let (srv, callback) = setup(Run::Process, &sim, &dir, &[]).await;
    let (s, v) = srv.get(&format!("/v1/component/{C}/access_token"), Some(ADMIN)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("component_verify_ticket"),
        "names the cause: {v}"
    );
    assert_eq!(sim.calls(COMPONENT_TOKEN), 0, "no call without a ticket");

    let (_, status) = sim.push_verify_ticket(C, &callback).await.unwrap();
    assert_eq!(status, 200);
    srv.kill().await; // SIGKILL right after `success`

    let srv = spawn_process_with(&dir, &sim.url(), &[]).await;
    let (s, v) = srv.get(&format!("/v1/component/{C}/access_token"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
    assert_eq!(sim.calls(COMPONENT_TOKEN), 1);
}

/// SPEC §2 "rotation keeps what WeChat pushed": a PATCHed secret drops the
/// component's access token only; its verify ticket and its authorizers
/// stay, so the token is fetched again at once (no 503 for up to 10 min).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_component_secret_keeps_the_verify_ticket_and_authorizers() {
    let sim = sim().await;
    let dir = tempdir();
    let (srv, callback) = setup(Run::InProcess, &sim, &dir, &[]).await;
    let (_, status) = sim.push_verify_ticket(C, &callback).await.unwrap();
    assert_eq!(status, 200);
    let (s, v) = srv.get(&format!("/v1/component/{C}/access_token"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let refresh = sim.add_authorization(C, "wxrotatedchild");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"authorizer","component_appid":C,"appid":"wxrotatedchild","refresh_token":refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/accounts/component:{C}"),
            Some(ADMIN),
            Some(json!({"secret": SECRET})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv.get(&format!("/v1/component/{C}/access_token"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "the verify ticket was kept: {v}");
    assert_eq!(sim.calls(COMPONENT_TOKEN), 2, "the token itself was fetched again");
    let (s, v) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wxrotatedchild/access_token"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the authorizer was kept: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_callbacks_change_nothing() {
    let sim = sim().await;
    let (srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, C).unwrap();
    let good = push_of(&crypt, &ticket_message("ticket@@@good", now()), now());

    let mut forged = push_of(&crypt, &ticket_message("ticket@@@forged", now()), now());
    forged.query[4].1 = "0".repeat(40);
    assert_eq!(
        send(&callback, &forged).await.0,
        StatusCode::UNAUTHORIZED,
        "forged signature"
    );

    let old = now() - 3600;
    let stale = push_of(&crypt, &ticket_message("ticket@@@stale", old), old);
    assert_eq!(
        send(&callback, &stale).await.0,
        StatusCode::UNAUTHORIZED,
        "stale timestamp"
    );

    let other = MsgCrypt::new(TOKEN, AES_KEY, "wxsomeoneelse").unwrap();
    let wrong_appid = push_of(&other, &ticket_message("ticket@@@wrong", now()), now());
    assert_eq!(
        send(&callback, &wrong_appid).await.0,
        StatusCode::UNAUTHORIZED,
        "another appid"
    );

    // A timestamp at the edge of i64: refused, no overflow.
    let mut extreme = push_of(&crypt, &ticket_message("ticket@@@min", now()), now());
    extreme.query[1].1 = i64::MIN.to_string();
    assert_eq!(send(&callback, &extreme).await.0, StatusCode::UNAUTHORIZED, "i64::MIN");

    // An account wetoken does not know answers exactly like a bad signature
    // (SPEC §4: no oracle for which accounts exist).
    let unknown_url = callback.replace(C, "wxnobodyknows");
    let (s_unknown, b_unknown) = send(&unknown_url, &forged).await;
    let (s_forged, b_forged) = send(&callback, &forged).await;
    assert_eq!(
        (s_unknown, &b_unknown),
        (s_forged, &b_forged),
        "{b_unknown} vs {b_forged}"
    );
    let resp = client()
        .get(format!("{unknown_url}/authorized?auth_code=whatever"))
        .send()
        .await
        .unwrap();
    let unknown_page = (resp.status(), resp.text().await.unwrap());
    assert_eq!(
        unknown_page.0,
        StatusCode::BAD_GATEWAY,
        "the landing page of an unknown component looks like a refused code"
    );
    assert!(!unknown_page.1.contains("wxnobodyknows"), "{}", unknown_page.1);

    let mut dtd = push_of(&crypt, &ticket_message("ticket@@@dtd", now()), now());
    dtd.body = format!("<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}", dtd.body);
    assert_eq!(
        send(&callback, &dtd).await.0,
        StatusCode::BAD_REQUEST,
        "DTD in the envelope"
    );

    let dtd_inside = push_of(
        &crypt,
        &format!(
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>{}",
            ticket_message("ticket@@@dtd2", now())
        ),
        now(),
    );
    assert_eq!(
        send(&callback, &dtd_inside).await.0,
        StatusCode::BAD_REQUEST,
        "DTD in the decrypted message"
    );

    let mut malformed = push_of(&crypt, &ticket_message("x", now()), now());
    malformed.body = "<xml><Encrypt>".into();
    assert_eq!(
        send(&callback, &malformed).await.0,
        StatusCode::BAD_REQUEST,
        "malformed XML"
    );

    let mut big = push_of(&crypt, &ticket_message("x", now()), now());
    big.body = format!("<xml><Encrypt>{}</Encrypt></xml>", "A".repeat(2 * 1024 * 1024));
    assert_eq!(
        send(&callback, &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversized body"
    );

    let (_, acc) = srv.get(&format!("/v1/accounts/component:{C}"), Some(ADMIN)).await;
    assert!(
        acc["credentials"]["verify_ticket"]["expires_at"].is_null(),
        "nothing stored: {acc}"
    );

    let (s, text) = send(&callback, &good).await;
    assert_eq!((s, text.as_str()), (StatusCode::OK, "success"));
    let (_, acc) = srv.get(&format!("/v1/accounts/component:{C}"), Some(ADMIN)).await;
    assert!(
        acc["credentials"]["verify_ticket"]["expires_at"].is_string(),
        "the good one is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_callbacks_change_nothing() {
    let sim = sim().await;
    let (srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, C).unwrap();
    let older = push_of(&crypt, &ticket_message("ticket@@@older", now() - 60), now() - 60);
    let newer = push_of(&crypt, &ticket_message("ticket@@@newer", now()), now());
    assert_eq!(send(&callback, &newer).await.0, StatusCode::OK);
    let (_, before) = srv.get(&format!("/v1/accounts/component:{C}"), Some(ADMIN)).await;
    // The older push arrives late (or is replayed): it must not replace the newer ticket.
    assert_eq!(send(&callback, &older).await.0, StatusCode::OK);
    assert_eq!(send(&callback, &newer).await.0, StatusCode::OK, "the same push again");
    let (_, after) = srv.get(&format!("/v1/accounts/component:{C}"), Some(ADMIN)).await;
    assert_eq!(
        before["credentials"]["verify_ticket"],
        after["credentials"]["verify_ticket"]
    );

    // An `unauthorized` older than the latest authorization changes nothing.
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let stale_unauth = push_of(
        &crypt,
        &format!(
            "<xml><AppId><![CDATA[{C}]]></AppId><CreateTime>{}</CreateTime><InfoType><![CDATA[unauthorized]]></InfoType>\
             <AuthorizerAppid><![CDATA[wxreplay]]></AuthorizerAppid></xml>",
            now() - 120
        ),
        now(),
    );
    sim.authorize(C, "wxreplay", Some(&callback)).await.unwrap();
    assert_eq!(send(&callback, &stale_unauth).await.0, StatusCode::OK);
    let (_, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(ADMIN)).await;
    assert_eq!(list["authorizers"][0]["appid"], "wxreplay", "still authorized: {list}");
}

/// SPEC §2 "authorization events are applied once", by code: an
/// `updateauthorized` in the same second as the `authorized` before it, with
/// a new code, is exchanged; a code already exchanged (replayed, or seen on
/// the landing page first) is not exchanged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_events_are_applied_by_code_not_by_second() {
    let sim = sim().await;
    let (srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, C).unwrap();
    let t = now();
    let event = |info: &str, code: &str| {
        let message = format!(
            "<xml><AppId><![CDATA[{C}]]></AppId><CreateTime>{t}</CreateTime>\
             <InfoType><![CDATA[{info}]]></InfoType><AuthorizerAppid><![CDATA[wxsame]]></AuthorizerAppid>\
             <AuthorizationCode><![CDATA[{code}]]></AuthorizationCode>\
             <AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime></xml>",
            t + 3600
        );
        push_of(&crypt, &message, t)
    };
    let first = sim.authorize(C, "wxsame", None).await.unwrap();
    assert_eq!(send(&callback, &event("authorized", &first)).await.0, StatusCode::OK);
    assert_eq!(sim.calls(QUERY_AUTH), 1);
    let second = sim.authorize(C, "wxsame", None).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        send(&callback, &event("updateauthorized", &second)).await.0,
        StatusCode::OK
    );
    assert_eq!(sim.calls(QUERY_AUTH), 2, "a new code in the same second is exchanged");
    for replay in [event("updateauthorized", &second), event("authorized", &first)] {
        assert_eq!(send(&callback, &replay).await.0, StatusCode::OK);
    }
    assert_eq!(sim.calls(QUERY_AUTH), 2, "replays are not exchanged");
    // The landing page with a code the event already exchanged: no call.
    let resp = client()
        .get(format!("{callback}/authorized?auth_code={second}&expires_in=600"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.calls(QUERY_AUTH), 2);
    let (s, v) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wxsame/access_token"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_auth_codes_and_both_authorization_url_forms() {
    let sim = sim().await;
    let (srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let (s, v) = srv
        .post(&format!("/v1/component/{C}/pre_auth_code"), Some(ADMIN), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["pre_auth_code"].as_str().unwrap().starts_with("preauthcode@@@"));
    assert_eq!(v["expires_in"], 600);

    let (s, v) = srv.get(&format!("/v1/component/{C}/auth_url"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = v["url"].as_str().unwrap();
    let landing: String = form_urlencoded::byte_serialize(format!("{callback}/authorized").as_bytes()).collect();
    assert!(
        url.starts_with(&format!(
            "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid={C}&pre_auth_code=preauthcode%40%40%40"
        )),
        "{url}"
    );
    assert!(url.contains(&format!("&redirect_uri={landing}&auth_type=3")), "{url}");

    let (s, v) = srv
        .get(
            &format!(
                "/v1/component/{C}/auth_url?platform=h5&auth_type=2&biz_appid=wxbiz&category_id_list=1%7C2\
                 &redirect_uri=https%3A%2F%2Fshop.example.com%2Fdone%3Fx%3D1"
            ),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid={C}&pre_auth_code="
    )));
    assert!(url.ends_with(
        "&redirect_uri=https%3A%2F%2Fshop.example.com%2Fdone%3Fx%3D1&auth_type=2&biz_appid=wxbiz&category_id_list=1%7C2#wechat_redirect"
    ), "{url}");
    for bad in [
        "platform=tv",
        "auth_type=x",
        "biz_appid=a%20b",
        "category_id_list=1,2",
        "redirect_uri=ftp%3A%2F%2Fx",
        "other=1",
    ] {
        let (s, v) = srv.get(&format!("/v1/component/{C}/auth_url?{bad}"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_by_event_and_landing_page_then_rotation_and_revocation() {
    // The old refresh token dies the moment WeChat rotates it.
    let sim = Sim::start(SimConfig {
        rotate_refresh_tokens: true,
        grace_secs: 0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempdir();
    let (srv, callback) = setup(Run::Process, &sim, &dir, &[]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let key = srv.key_for("shop", &[&format!("component:{C}/*")]).await;

    // By the `authorized` event.
    sim.authorize(C, "wxauth1", Some(&callback)).await.unwrap();
    let (s, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let a = &list["authorizers"][0];
    assert_eq!(
        (a["appid"].as_str(), a["status"].as_str()),
        (Some("wxauth1"), Some("authorized"))
    );
    assert!(a["authorized_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(a["func_info"][0]["funcscope_category"]["id"], 1);
    let (s, v) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wxauth1/access_token"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sim.is_valid(v["access_token"].as_str().unwrap()));
    assert_eq!(
        sim.calls(AUTHORIZER_TOKEN),
        0,
        "the token that came with the authorization is used"
    );

    // By the landing page after the administrator's redirect.
    let code = sim.authorize(C, "wxauth2", None).await.unwrap();
    let resp = client()
        .get(format!("{callback}/authorized?auth_code={code}&expires_in=600"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("wxauth2"));
    let resp = client()
        .get(format!("{callback}/authorized?auth_code=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY, "a bad code shows an error page");
    let (_, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(&key)).await;
    assert_eq!(list["authorizers"].as_array().unwrap().len(), 2);

    // Tickets and the JS-SDK config of an authorizer.
    let (s, t) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wxauth1/jsapi_ticket"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, cfg) = srv
        .post(
            &format!("/v1/component/{C}/authorizers/wxauth1/jssdk_config"),
            Some(&key),
            Some(json!({"url":"https://m.example.com/a"})),
        )
        .await;
    assert_eq!((s, cfg["appId"].as_str()), (StatusCode::OK, Some("wxauth1")), "{cfg}");

    // WeChat rotates the refresh token on the next refresh: the new one is
    // stored with the new access token and survives a restart.
    let (s, v) = srv
        .post(
            &format!("/v1/component/{C}/authorizers/wxauth1/access_token/refresh"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first_rotation = sim.refresh_token_of(C, "wxauth1").unwrap();
    srv.kill().await;
    // Restarted without a refresh budget, so that the next refresh need not
    // wait out the interval the one above started (SPEC §2).
    let srv = spawn_process_with(&dir, &sim.url(), &[("WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS", "0")]).await;
    let stale = v["access_token"].as_str().unwrap();
    sim.revoke(stale);
    let (s, v) = srv
        .post(
            &format!("/v1/component/{C}/authorizers/wxauth1/access_token/refresh"),
            Some(&key),
            Some(json!({"stale": stale})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the rotated refresh token was persisted: {v}");
    assert_ne!(
        sim.refresh_token_of(C, "wxauth1").unwrap(),
        first_rotation,
        "and rotated again"
    );

    // Unauthorized: gone from the list and from the API.
    let callback = format!("{}/callback/component/{C}", srv.url);
    sim.unauthorize(C, "wxauth1", &callback).await.unwrap();
    let (_, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(&key)).await;
    let appids: Vec<_> = list["authorizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].clone())
        .collect();
    assert_eq!(appids, [json!("wxauth2")]);
    let (s, _) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wxauth1/access_token"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_refresh_token_marks_the_authorizer_for_reauthorization() {
    let sim = sim().await;
    let (srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    // Imported with a known refresh token.
    let refresh = sim.add_authorization(C, "wximport");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"authorizer","component_appid":C,"appid":"wximport","refresh_token":refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wximport/access_token"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();

    sim.invalidate_refresh_token(C, "wximport");
    sim.revoke(&token);
    let (s, v) = srv
        .post(
            &format!("/v1/component/{C}/authorizers/wximport/access_token/refresh"),
            Some(ADMIN),
            Some(json!({"stale": token})),
        )
        .await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(61023)),
        "{v}"
    );
    let (_, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(ADMIN)).await;
    assert_eq!(list["authorizers"][0]["status"], "needs_reauthorization", "{list}");

    // Authorizing again heals it.
    sim.authorize(C, "wximport", Some(&callback)).await.unwrap();
    let (_, list) = srv.get(&format!("/v1/component/{C}/authorizers"), Some(ADMIN)).await;
    assert_eq!(list["authorizers"][0]["status"], "authorized");
    let (s, _) = srv
        .get(
            &format!("/v1/component/{C}/authorizers/wximport/access_token"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Importing under a component that does not exist is refused.
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"authorizer","component_appid":"wxnone","appid":"wx1","refresh_token":"r"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_authorizers_are_refreshed_proactively_within_the_concurrency_bound() {
    // Authorizer tokens live 30 s and are due 8 s ahead: all due 22 s or
    // more after their fetch, which leaves the import 22 s however busy the
    // machine is (CI runs six tests at once), and the refreshes within the
    // minute waited below.
    let sim = Sim::start(SimConfig {
        token_ttl_secs: 30,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (srv, callback) = setup(Run::Process, &sim, &tempdir(), &[("WETOKEN_REFRESH_AHEAD_SECS", "8")]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let imports = (0..1000).map(|i| {
        let appid = format!("wxa{i:04}");
        let refresh = sim.add_authorization(C, &appid);
        let body = json!({"kind":"authorizer","component_appid":C,"appid":appid,"refresh_token":refresh});
        let srv = &srv;
        async move {
            let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            // A reader waits 5 s at most (SPEC §2): on a machine this busy
            // the fetch may outlast it and the reader tries again.
            let path = format!("/v1/component/{C}/authorizers/{appid}/access_token");
            let mut got = srv.get(&path, Some(ADMIN)).await;
            for _ in 0..5 {
                if got.0 != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
                got = srv.get(&path, Some(ADMIN)).await;
            }
            assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        }
    });
    futures::stream::iter(imports)
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(sim.calls(AUTHORIZER_TOKEN), 1000);
    // WeChat answers slowly, so that concurrency shows.
    sim.inject(AUTHORIZER_TOKEN, Fault::Latency(Duration::from_millis(20)), None);
    let done = until(Duration::from_secs(60), || async {
        sim.calls(AUTHORIZER_TOKEN) >= 2000
    })
    .await;
    assert!(
        done,
        "every authorizer refreshed: {} calls",
        sim.calls(AUTHORIZER_TOKEN)
    );
    assert!(
        sim.max_in_flight(AUTHORIZER_TOKEN) <= 16,
        "the engine's bound of 16: {}",
        sim.max_in_flight(AUTHORIZER_TOKEN)
    );
    // The last refreshes may still be writing: wait for their count.
    let counted = until(Duration::from_secs(10), || async {
        metric(
            &srv,
            "wetoken_refreshes_total",
            &["trigger=\"proactive\"", "result=\"ok\""],
        )
        .await
            >= 1000.0
    })
    .await;
    assert!(counted, "by the scheduler, not by readers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_endpoints_need_a_key_that_covers_the_component() {
    let sim = sim().await;
    let (srv, _) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    let other = srv.key_for("other", &["mp:wxother"]).await;
    for (method, path) in [
        (Method::GET, format!("/v1/component/{C}/access_token")),
        (Method::GET, format!("/v1/component/{C}/authorizers")),
        (Method::POST, format!("/v1/component/{C}/pre_auth_code")),
        (Method::GET, format!("/v1/component/{C}/auth_url")),
        (Method::GET, format!("/v1/component/{C}/authorizers/wx1/access_token")),
    ] {
        let (s, _) = srv.call(method.clone(), &path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, v) = srv.call(method, &path, Some(&other), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }
}

/// The landing page is open to anyone: bogus codes reach WeChat at most
/// ten times a minute per component, the rest are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_exchanges_are_limited_per_component() {
    let sim = sim().await;
    let (_srv, callback) = setup(Run::InProcess, &sim, &tempdir(), &[]).await;
    sim.push_verify_ticket(C, &callback).await.unwrap();
    let mut statuses = Vec::new();
    // 25 codes: even if a minute turns over meanwhile, at most 2 × 10 go
    // upstream.
    for i in 0..25 {
        let resp = client()
            .get(format!("{callback}/authorized?auth_code=bogus{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
    }
    let upstream = sim.calls(QUERY_AUTH) as usize;
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    let bad_gateway = statuses.iter().filter(|s| **s == StatusCode::BAD_GATEWAY).count();
    assert!((10..=20).contains(&upstream), "{upstream}: {statuses:?}");
    assert_eq!((bad_gateway, refused), (upstream, 25 - upstream), "{statuses:?}");
    assert!(
        statuses[..10].iter().all(|s| *s == StatusCode::BAD_GATEWAY),
        "the first ten go upstream: {statuses:?}"
    );
}
