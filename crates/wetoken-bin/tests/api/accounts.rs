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

/// Follows `next_cursor` from `path` (which has a `?`), `limit` at a time:
/// the ids (by `field`) of every page, and how many pages it took.
async fn walk(srv: &TestServer, path: &str, list: &str, field: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, String::new());
    loop {
        let (s, v) = srv.get(&format!("{path}&limit={limit}{cursor}"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v[list].as_array().unwrap();
        assert!(items.len() <= limit, "a page holds at most limit");
        ids.extend(items.iter().map(|a| a[field].as_str().unwrap().to_owned()));
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return (ids, pages),
        }
    }
}

/// SPEC §3: every list is paginated with `limit` and an opaque `cursor`;
/// accounts filter by kind, status and id prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated_and_accounts_filtered() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    for i in 1..=5 {
        srv.add_mp(&format!("wxpage{i}"), "s").await;
    }
    srv.add_mp("wxother", "s").await;
    for body in [
        json!({"kind":"work","corpid":"wwpage","agentid":1000002,"secret":"s"}),
        json!({"kind":"component","appid":"wxpagec","secret":"s","token":"t","aes_key":"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}),
        json!({"kind":"authorizer","component_appid":"wxpagec","appid":"wxa1","refresh_token":"r"}),
        json!({"kind":"authorizer","component_appid":"wxpagec","appid":"wxa2","refresh_token":"r"}),
        json!({"kind":"authorizer","component_appid":"wxpagec","appid":"wxa3","refresh_token":"r"}),
    ] {
        let (s, v) = srv.post("/v1/accounts", Some(ADMIN), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let (all, pages) = walk(&srv, "/v1/accounts?", "accounts", "id", 3).await;
    assert_eq!(all.len(), 11);
    assert!(pages >= 4, "{pages} pages");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ordered by id, none twice");
    let (mp, _) = walk(&srv, "/v1/accounts?kind=mp", "accounts", "id", 2).await;
    assert_eq!(mp.len(), 6);
    let (prefixed, _) = walk(&srv, "/v1/accounts?q=mp:wxpage", "accounts", "id", 100).await;
    assert_eq!(prefixed, (1..=5).map(|i| format!("mp:wxpage{i}")).collect::<Vec<_>>());
    let (both, _) = walk(
        &srv,
        "/v1/accounts?kind=authorizer&q=authorizer:wxpagec:wxa",
        "accounts",
        "id",
        100,
    )
    .await;
    assert_eq!(both.len(), 3);
    let (none, _) = walk(&srv, "/v1/accounts?kind=work&q=mp:", "accounts", "id", 100).await;
    assert!(none.is_empty());
    let (active, _) = walk(&srv, "/v1/accounts?status=active&kind=work", "accounts", "id", 100).await;
    assert_eq!(active, ["work:wwpage:1000002"]);
    // The filter is applied: no account has either of the other statuses.
    for status in ["needs_reauthorization", "revoked"] {
        let (none, _) = walk(&srv, &format!("/v1/accounts?status={status}"), "accounts", "id", 100).await;
        assert!(none.is_empty(), "{status}: {none:?}");
    }
    let (all_active, _) = walk(&srv, "/v1/accounts?status=active", "accounts", "id", 100).await;
    assert_eq!(all_active.len(), 11, "every account here is active");
    let (_, page) = srv.get("/v1/accounts?q=mp:wxpage1", Some(ADMIN)).await;
    assert!(page["accounts"][0]["credentials"].is_object(), "{page}");

    let (authorizers, pages) = walk(&srv, "/v1/component/wxpagec/authorizers?", "authorizers", "appid", 2).await;
    assert_eq!(
        (authorizers, pages),
        (vec!["wxa1".to_owned(), "wxa2".into(), "wxa3".into()], 2)
    );

    for name in ["k1", "k2", "k3"] {
        srv.key_for(name, &["*"]).await;
    }
    let (keys, pages) = walk(&srv, "/v1/keys?", "keys", "name", 2).await;
    assert_eq!((keys.len(), pages), (3, 2));

    for bad in [
        "/v1/accounts?limit=1001",
        "/v1/accounts?limit=0",
        "/v1/accounts?limit=x",
        "/v1/accounts?cursor=a%20b",
        "/v1/accounts?kind=bogus",
        "/v1/accounts?status=bogus",
        "/v1/accounts?q=%27%20OR%201=1",
        "/v1/keys?limit=5000",
        "/v1/component/wxpagec/authorizers?limit=-1",
    ] {
        let (s, v) = srv.get(bad, Some(ADMIN)).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
}

/// SPEC §3 (issue: custody holds, item 7): a cursor wetoken did not issue
/// for that list — made up, edited, or from another list — is 400, never a
/// page that starts somewhere else; the one it issued still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cursors_wetoken_issued_for_the_list_are_taken() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    for i in 1..=4 {
        srv.add_mp(&format!("wxcur{i}"), "s").await;
        srv.key_for(&format!("kcur{i}"), &["*"]).await;
    }
    let (_, page) = srv.get("/v1/accounts?limit=2", Some(ADMIN)).await;
    let accounts_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, keys) = srv.get("/v1/keys?limit=2", Some(ADMIN)).await;
    let keys_cursor = keys["next_cursor"].as_str().unwrap().to_owned();
    let (raw, tag) = accounts_cursor.rsplit_once('.').unwrap();
    let flipped = if tag.starts_with('0') { "1" } else { "0" };
    for bad in [
        "not-a-cursor".to_owned(),
        "mp:wxcur1".to_owned(),
        raw.to_owned(),
        format!("{raw}.{flipped}{}", &tag[1..]),
        format!("mp:wxcur3.{tag}"),
        keys_cursor.clone(),
    ] {
        let (s, v) = srv
            .get(&format!("/v1/accounts?limit=2&cursor={bad}"), Some(ADMIN))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
    let (s, v) = srv
        .get(&format!("/v1/keys?limit=2&cursor={accounts_cursor}"), Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an accounts cursor on the keys list: {v}");
    let (s, v) = srv
        .get(&format!("/v1/accounts?limit=2&cursor={accounts_cursor}"), Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["accounts"][0]["id"], "mp:wxcur3",
        "the issued cursor goes on where it left off"
    );
}
