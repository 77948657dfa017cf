//! SPEC §16: WeChat's refusals of wetoken itself become one event an
//! operator can act on — the address WeChat saw when it is not whitelisted,
//! a frozen secret that is not tried again until the account changes.

use reqwest::{Method, StatusCode};
use serde_json::json;
use wetoken_sim::{Fault, STABLE_TOKEN, TOKEN};

use crate::helpers::*;

async fn events_of(srv: &TestServer, kind: &str) -> Vec<serde_json::Value> {
    let (s, v) = srv.get(&format!("/v1/events?type={kind}"), Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_wetoken_name_what_to_fix() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    sim.add_app("wxrefusedip01", "s");
    sim.add_app("wxfrozen0001", "s");
    srv.add_mp("wxrefusedip01", "s").await;
    srv.add_mp("wxfrozen0001", "s").await;

    // 40164: the address WeChat saw, once, however often it is read.
    for endpoint in [TOKEN, STABLE_TOKEN] {
        sim.inject(endpoint, Fault::Errcode(40164), Some(1));
    }
    for _ in 0..3 {
        let (s, v) = srv.get("/v1/mp/wxrefusedip01/access_token", Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    }
    let ip = events_of(&srv, "wetoken.credential.ip_not_whitelisted").await;
    assert_eq!(ip.len(), 1, "{ip:?}");
    assert_eq!(
        (&ip[0]["account"], &ip[0]["data"]["address"], &ip[0]["data"]["errcode"]),
        (&json!("mp:wxrefusedip01"), &json!("127.0.0.1"), &json!(40164))
    );

    // The console's overview says which address to whitelist.
    let (cookie, _) = crate::console::sign_in(&srv.url, ADMIN).await;
    let (_, _, page) = crate::console::page(&srv.url, "/console/", &cookie).await;
    assert!(
        page.contains("class=\"whitelist\"") && page.contains("<code>127.0.0.1</code>"),
        "{page}"
    );

    // 40243 (a frozen secret): misconfigured, and not tried again until
    // the account changes.
    sim.clear_faults();
    for endpoint in [TOKEN, STABLE_TOKEN] {
        sim.inject(endpoint, Fault::Errcode(40243), None);
    }
    let before = sim.token_calls();
    for _ in 0..3 {
        let (s, _) = srv.get("/v1/mp/wxfrozen0001/access_token", Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY);
    }
    assert_eq!(sim.token_calls(), before + 1, "one call, then blocked");
    let m = events_of(&srv, "wetoken.credential.misconfigured").await;
    assert_eq!((m.len(), &m[0]["data"]["errcode"]), (1, &json!(40243)), "{m:?}");
    sim.clear_faults();
    let (s, v) = srv
        .call(
            Method::PATCH,
            "/v1/accounts/mp:wxfrozen0001",
            Some(ADMIN),
            Some(json!({"secret": "s"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv.get("/v1/mp/wxfrozen0001/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "the change lifts the block: {v}");
}
