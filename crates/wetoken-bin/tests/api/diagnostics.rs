//! Diagnostics (SPEC §3) against the simulator, which models WeChat's
//! quota, rid and clear_quota endpoints with their limits and errcodes.

use reqwest::StatusCode;
use serde_json::json;
use wetoken_sim::{CLEAR_QUOTA, COMPONENT_CLEAR_QUOTA};

use crate::helpers::*;

const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_rid_and_ten_clears_a_month_for_an_mp() {
    let sim = sim().await;
    sim.add_app("wxdiag", "s");
    sim.add_app("wxdiagbad", "right");
    let srv = spawn(&sim).await;
    srv.add_mp("wxdiag", "s").await;
    srv.add_mp("wxdiagbad", "wrong").await;
    let key = srv.key_for("diag", &["mp:wxdiag"]).await;
    let (s, _) = srv.get("/v1/mp/wxdiag/access_token", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);

    let (s, q) = srv
        .get("/v1/mp/wxdiag/quota?cgi_path=/cgi-bin/stable_token", Some(&key))
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(
        (q["daily_limit"].as_i64(), q["used"].as_i64(), q["remain"].as_i64()),
        (Some(2000), Some(1), Some(1999))
    );
    assert!(q["rate_limit"].is_object());

    // A failed call's rid, from the errmsg WeChat gave.
    let (s, v) = srv.get("/v1/mp/wxdiagbad/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    let errmsg = v["upstream"]["errmsg"].as_str().unwrap();
    let rid = errmsg
        .split("rid: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{errmsg}"))
        .trim();
    // WeChat's record carries the call's URL and body: admin only, and
    // every credential in it redacted (SPEC §3).
    let (s, r) = srv.get(&format!("/v1/mp/wxdiag/rid/{rid}"), Some(&key)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a client key: {r}");
    let (s, r) = srv.get(&format!("/v1/mp/wxdiag/rid/{rid}"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["request_url"], "/cgi-bin/stable_token");
    let body: serde_json::Value = serde_json::from_str(r["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (body["appid"].as_str(), body["secret"].as_str()),
        (Some("wxdiagbad"), Some("***")),
        "{r}"
    );
    assert!(!r["request_body"].as_str().unwrap().contains("\"wrong\""), "{r}");
    assert!(r["response_body"].as_str().unwrap().contains("40125"), "{r}");
    assert!(r["client_ip"].is_string() && r["invoke_time"].is_i64());
    let (s, v) = srv.get("/v1/mp/wxdiag/rid/nosuchrid", Some(ADMIN)).await;
    assert_eq!(
        (s, v["upstream"]["errcode"].as_i64()),
        (StatusCode::BAD_GATEWAY, Some(76001))
    );

    // Clearing: admin only, 10 a month, each recorded.
    let (s, _) = srv.post("/v1/mp/wxdiag/clear_quota", Some(&key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for n in 1..=10 {
        let (s, v) = srv.post("/v1/mp/wxdiag/clear_quota", Some(ADMIN), None).await;
        assert_eq!((s, v["used_this_month"].as_u64()), (StatusCode::OK, Some(n)), "{v}");
    }
    let (s, v) = srv.post("/v1/mp/wxdiag/clear_quota", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(
        (v["upstream"]["errcode"].as_i64(), v["used_this_month"].as_u64()),
        (Some(48006), Some(10))
    );
    assert_eq!(sim.calls(CLEAR_QUOTA), 11);
    let (_, q) = srv
        .get("/v1/mp/wxdiag/quota?cgi_path=/cgi-bin/stable_token", Some(&key))
        .await;
    assert_eq!(q["used"], 0, "cleared: {q}");

    // Bad input is 400 before anything goes upstream; a key elsewhere is 403.
    let calls = sim.calls(wetoken_sim::QUOTA_GET);
    for bad in [
        "/v1/mp/wxdiag/quota",
        "/v1/mp/wxdiag/quota?cgi_path=nope",
        "/v1/mp/wxdiag/rid/a%20b",
        "/v1/mp/bad%20id/quota?cgi_path=/x",
    ] {
        let (s, v) = srv.get(bad, Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    assert_eq!(sim.calls(wetoken_sim::QUOTA_GET), calls);
    let (s, _) = srv
        .get("/v1/mp/wxdiagbad/quota?cgi_path=/cgi-bin/token", Some(&key))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .get("/v1/mp/wxnobody/quota?cgi_path=/cgi-bin/token", Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizers_quota_is_cleared_through_its_component() {
    let sim = sim().await;
    let c = "wxdiagcomponent";
    sim.add_component(c, "c-secret", "tok", AES);
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"component","appid":c,"secret":"c-secret","token":"tok","aes_key":AES})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    sim.push_verify_ticket(c, &format!("{}/callback/component/{c}", srv.url))
        .await
        .unwrap();
    let refresh = sim.add_authorization(c, "wxdiagauth");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"authorizer","component_appid":c,"appid":"wxdiagauth","refresh_token":refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let base = format!("/v1/component/{c}/authorizers/wxdiagauth");
    let (s, q) = srv
        .get(
            &format!("{base}/quota?cgi_path=/cgi-bin/message/custom/send"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert!(q["component_rate_limit"].is_object(), "{q}");
    let (s, v) = srv.post(&format!("{base}/clear_quota"), Some(ADMIN), None).await;
    assert_eq!((s, v["used_this_month"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    assert_eq!(sim.calls(COMPONENT_CLEAR_QUOTA), 1, "with the component's secret");
    let (_, account) = srv
        .get(&format!("/v1/accounts/authorizer:{c}:wxdiagauth"), Some(ADMIN))
        .await;
    assert!(!account.to_string().contains("c-secret"));
    assert_eq!(
        account["quota_clears"]["used"], 1,
        "the month's uses are shown: {account}"
    );
}
