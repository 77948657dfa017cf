use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_lifecycle() {
    let sim = sim().await;
    sim.add_app("wxlife", "s1");
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"mp","appid":"wxlife","secret":"s1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["kind"].as_str(), v["appid"].as_str()),
        (Some("mp:wxlife"), Some("mp"), Some("wxlife"))
    );
    assert_eq!(v["token_api"], "stable");
    assert!(!v.to_string().contains("s1\""), "no secret in {v}");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"mp","appid":"wxlife","secret":"other"})),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")));

    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"mp","appid":"wx ok","secret":"s"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("appid"), "{v}");
    let (s, v) = srv
        .post("/v1/accounts", Some(ADMIN), Some(json!({"kind":"mp","appid":"wx2"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("secret"), "{v}");

    let (_, t) = srv.get("/v1/mp/wxlife/access_token", Some(ADMIN)).await;
    let old = t["access_token"].as_str().unwrap().to_owned();
    let (s, list) = srv.get("/v1/accounts", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    let acc = &list["accounts"][0];
    assert_eq!(acc["id"], "mp:wxlife");
    let cred = &acc["credentials"]["access_token"];
    assert!(
        cred["expires_at"].is_string() && cred["refreshed_at"].is_string(),
        "{acc}"
    );
    assert!(cred["last_error"].is_null());
    assert!(acc["credentials"]["jsapi_ticket"]["expires_at"].is_null());
    assert!(!list.to_string().contains(&old), "no token in the account list");
    let (s, one) = srv.get("/v1/accounts/mp:wxlife", Some(ADMIN)).await;
    assert_eq!((s, &one), (StatusCode::OK, acc));

    // Rotating the secret drops cached credentials.
    sim.add_app("wxlife", "s2");
    let (s, v) = srv
        .call(
            Method::PATCH,
            "/v1/accounts/mp:wxlife",
            Some(ADMIN),
            Some(json!({"secret":"s2"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["credentials"]["access_token"]["expires_at"].is_null());
    let calls = sim.token_calls();
    let (s, _) = srv.get("/v1/mp/wxlife/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sim.token_calls(), calls + 1, "fetched again with the new secret");
    let (s, v) = srv
        .call(
            Method::PATCH,
            "/v1/accounts/mp:wxlife",
            Some(ADMIN),
            Some(json!({"appid":"x"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = srv
        .call(
            Method::PATCH,
            "/v1/accounts/mp:wxnone",
            Some(ADMIN),
            Some(json!({"secret":"x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = srv
        .call(Method::DELETE, "/v1/accounts/mp:wxlife", Some(ADMIN), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv.get("/v1/mp/wxlife/access_token", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "deleted: gone from the cache too");
    let (s, _) = srv
        .call(Method::DELETE, "/v1/accounts/mp:wxlife", Some(ADMIN), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_can_be_created_and_agentid_is_a_string() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"work","corpid":"ww1","agentid":1000002,"secret":"s"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["agentid"].as_str()),
        (Some("work:ww1:1000002"), Some("1000002"))
    );
    let creds: Vec<_> = v["credentials"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(creds, ["access_token", "jsapi_ticket", "agent_ticket"]);
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"work","corpid":"ww1","agentid":"x","secret":"s"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("agentid"), "{v}");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"provider","corpid":"wwp","secret":"s"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"corp","suite_id":"nosuite","corpid":"ww","permanent_code":"p"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a corp needs its suite first: {v}");
}
