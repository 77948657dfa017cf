//! The OpenAPI document against a running server's answers, both ways:
//! every answer of a documented `/v1` route validates against the schema
//! the document gives that route (no field missing from the document, no
//! wrong type, nothing required left out), and every field the schemas
//! name appears in some answer.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// Checks `v` against `schema` (resolving `$ref` in `doc`), recording each
/// (schema, property) seen; the first mismatch, with where it is.
fn validate(
    doc: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    validate_in(doc, "", schema, v, at, seen)
}

fn validate_named(
    doc: &Value,
    name: &str,
    v: &Value,
    at: &str,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    let schema = &doc["components"]["schemas"][name];
    if schema.is_null() {
        return Err(format!("{at}: no schema {name}"));
    }
    validate_in(doc, name, schema, v, at, seen)
}

fn validate_in(
    doc: &Value,
    name: &str,
    schema: &Value,
    v: &Value,
    at: &str,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        return validate_named(doc, r.rsplit('/').next().unwrap(), v, at, seen);
    }
    if v.is_null() {
        return if schema["nullable"] == true {
            Ok(())
        } else {
            Err(format!("{at}: null where the document says it is not nullable"))
        };
    }
    let ok = match schema["type"].as_str() {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        None => true,
        Some(other) => return Err(format!("{at}: the validator knows no type {other}")),
    };
    if !ok {
        return Err(format!("{at}: {v} is not a {}", schema["type"]));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {allowed:?}"));
    }
    if let Some(items) = v.as_array() {
        for (i, item) in items.iter().enumerate() {
            validate_in(doc, "", &schema["items"], item, &format!("{at}[{i}]"), seen)?;
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                return Err(format!("{at}: required {r} missing from {v}"));
            }
        }
        for (k, field) in obj {
            let here = format!("{at}.{k}");
            if let Some(p) = schema["properties"].get(k) {
                if !name.is_empty() {
                    seen.insert((name.to_owned(), k.clone()));
                }
                validate_in(doc, "", p, field, &here, seen)?;
            } else if schema["additionalProperties"].is_object() {
                validate_in(doc, "", &schema["additionalProperties"], field, &here, seen)?;
            } else if schema["additionalProperties"] == false {
                return Err(format!("{here}: a field the document does not name"));
            }
        }
    }
    Ok(())
}

struct Checker<'a> {
    srv: &'a TestServer,
    doc: Value,
    seen: HashSet<(String, String)>,
    checked: BTreeSet<String>,
}

impl Checker<'_> {
    /// Calls `path` (an instance of `template`) and validates the answer
    /// against the schema the document gives (template, method, status).
    async fn check(&mut self, method: Method, template: &str, path: &str, key: &str, body: Option<Value>) -> Value {
        let (s, v) = self.srv.call(method.clone(), path, Some(key), body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let schema = &op["responses"][s.as_str()]["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {s}: the document gives no schema"
        );
        if let Err(e) = validate(&self.doc, schema, &v, "answer", &mut self.seen) {
            panic!("{method} {path}: {e}\n{v:#}");
        }
        self.checked.insert(format!("{m} {template}"));
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_answer_matches_the_document_both_ways() {
    let sim = sim().await;
    sim.add_app("wxdoc", "s");
    sim.add_app("wxdocbad", "right");
    sim.add_work_app("wwdoc", 1000002, "ws");
    sim.add_component("wxdoccomp", "cs", "ctoken", AES_KEY);
    sim.add_suite("ssdoc", "ss", "stoken", AES_KEY);
    let srv = spawn_with(&tempdir(), &sim.url(), &[("WETOKEN_PROXY", "on")]).await;
    let (s, doc) = srv.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let mut c = Checker {
        srv: &srv,
        doc,
        seen: HashSet::new(),
        checked: BTreeSet::new(),
    };
    let post = Method::POST;
    let get = Method::GET;

    // Accounts of every family, and one whose secret WeChat refuses.
    for body in [
        json!({"kind":"mp","appid":"wxdoc","secret":"s","token_api":"stable"}),
        json!({"kind":"mp","appid":"wxdocbad","secret":"wrong","api_security":{
            "sym_key": "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=", "sym_sn": "docsym", "private_sn": "dockey",
            "private_key": include_str!("../../../wetoken-core/tests/fixtures/api_security/doc_app_private_key.pem"),
            "platform_certs": [{"sn": "doccert",
                "pem": include_str!("../../../wetoken-core/tests/fixtures/api_security/doc_platform_cert.pem")}]}}),
        json!({"kind":"work","corpid":"wwdoc","agentid":1000002,"secret":"ws"}),
        json!({"kind":"component","appid":"wxdoccomp","secret":"cs","token":"ctoken","aes_key":AES_KEY}),
        json!({"kind":"suite","suite_id":"ssdoc","secret":"ss","token":"stoken","aes_key":AES_KEY}),
    ] {
        c.check(post.clone(), "/v1/accounts", "/v1/accounts", ADMIN, Some(body))
            .await;
    }
    let (s, _) = srv.get("/v1/mp/wxdocbad/access_token", Some(ADMIN)).await;
    assert_eq!(
        s,
        StatusCode::BAD_GATEWAY,
        "a refused secret: last_error, blocked_until"
    );

    // Credentials, refreshed and verified, tickets, JS-SDK configs.
    let t = c
        .check(
            get.clone(),
            "/v1/mp/{appid}/{cred}",
            "/v1/mp/wxdoc/access_token",
            ADMIN,
            None,
        )
        .await;
    let stale = json!({"stale": t["access_token"]});
    c.check(
        post.clone(),
        "/v1/mp/{appid}/{cred}/refresh",
        "/v1/mp/wxdoc/access_token/refresh",
        ADMIN,
        Some(stale),
    )
    .await;
    c.check(
        get.clone(),
        "/v1/mp/{appid}/{cred}",
        "/v1/mp/wxdoc/jsapi_ticket",
        ADMIN,
        None,
    )
    .await;
    let page = json!({"url": "https://example.com/page"});
    c.check(
        post.clone(),
        "/v1/mp/{appid}/jssdk_config",
        "/v1/mp/wxdoc/jssdk_config",
        ADMIN,
        Some(page.clone()),
    )
    .await;
    c.check(
        post.clone(),
        "/v1/work/{corpid}/{agentid}/jssdk_config",
        "/v1/work/wwdoc/1000002/jssdk_config",
        ADMIN,
        Some(page),
    )
    .await;

    // The Open Platform: an authorizer, a pre_auth_code, an authorization URL.
    let callback = format!("{}/callback/component/wxdoccomp", srv.url);
    sim.push_verify_ticket("wxdoccomp", &callback).await.unwrap();
    sim.authorize("wxdoccomp", "wxdocauth", Some(&callback)).await.unwrap();
    c.check(
        get.clone(),
        "/v1/component/{component_appid}/authorizers",
        "/v1/component/wxdoccomp/authorizers",
        ADMIN,
        None,
    )
    .await;
    c.check(
        post.clone(),
        "/v1/component/{component_appid}/pre_auth_code",
        "/v1/component/wxdoccomp/pre_auth_code",
        ADMIN,
        None,
    )
    .await;
    c.check(
        get.clone(),
        "/v1/component/{component_appid}/auth_url",
        "/v1/component/wxdoccomp/auth_url?redirect_uri=https%3A%2F%2Fexample.com%2Fdone",
        ADMIN,
        None,
    )
    .await;
    c.check(
        get.clone(),
        "/v1/component/{component_appid}/authorizers/{appid}/quota",
        "/v1/component/wxdoccomp/authorizers/wxdocauth/quota?cgi_path=/cgi-bin/message/custom/send",
        ADMIN,
        None,
    )
    .await;

    // WeCom: a corp that installed the suite.
    let suite_callback = format!("{}/callback/suite/ssdoc", srv.url);
    sim.push_suite_ticket("ssdoc", &suite_callback).await.unwrap();
    sim.install("ssdoc", "wwcorpdoc", 7, &suite_callback, false)
        .await
        .unwrap();
    c.check(
        get.clone(),
        "/v1/suite/{suite_id}/corps",
        "/v1/suite/ssdoc/corps",
        ADMIN,
        None,
    )
    .await;

    // Diagnostics.
    c.check(
        get.clone(),
        "/v1/mp/{appid}/quota",
        "/v1/mp/wxdoc/quota?cgi_path=/cgi-bin/stable_token",
        ADMIN,
        None,
    )
    .await;
    c.check(
        post.clone(),
        "/v1/mp/{appid}/clear_quota",
        "/v1/mp/wxdoc/clear_quota",
        ADMIN,
        None,
    )
    .await;
    let (_, v) = srv.get("/v1/mp/wxdocbad/access_token", Some(ADMIN)).await;
    let errmsg = v["upstream"]["errmsg"].as_str().unwrap_or_default().to_owned();
    if let Some(rid) = errmsg.split("rid: ").nth(1) {
        c.check(
            get.clone(),
            "/v1/mp/{appid}/rid/{rid}",
            &format!("/v1/mp/wxdoc/rid/{}", rid.trim()),
            ADMIN,
            None,
        )
        .await;
    }

    // Sign-in (SPEC §13): the admin key sees the session key; a bound app
    // answers unionids; a snapshot-page user is flagged.
    sim.bind_unionid("wxdoc", "open-doc");
    sim.snapshot_user("wxdoc", "snap");
    let login = c
        .check(
            post.clone(),
            "/v1/mp/{appid}/sns/jscode2session",
            "/v1/mp/wxdoc/sns/jscode2session",
            ADMIN,
            Some(json!({"js_code": sim.login("wxdoc", "doc-user")})),
        )
        .await;
    let openid = login["openid"].as_str().unwrap().to_owned();
    let (data, iv) = sim.encrypted_user_data("wxdoc", "doc-user", &json!({"x": 1})).unwrap();
    c.check(
        post.clone(),
        "/v1/mp/{appid}/sns/decrypt",
        "/v1/mp/wxdoc/sns/decrypt",
        ADMIN,
        Some(json!({"openid": openid, "encrypted_data": data, "iv": iv})),
    )
    .await;
    c.check(
        post.clone(),
        "/v1/mp/{appid}/sns/checksession",
        "/v1/mp/wxdoc/sns/checksession",
        ADMIN,
        Some(json!({"openid": openid})),
    )
    .await;
    c.check(
        get.clone(),
        "/v1/mp/{appid}/oauth2/authorize_url",
        "/v1/mp/wxdoc/oauth2/authorize_url?redirect_uri=https%3A%2F%2Fa.example&scope=snsapi_base",
        ADMIN,
        None,
    )
    .await;
    let token = c
        .check(
            post.clone(),
            "/v1/mp/{appid}/oauth2/access_token",
            "/v1/mp/wxdoc/oauth2/access_token",
            ADMIN,
            Some(json!({"code": sim.web_code("wxdoc", "snap", "snsapi_userinfo")})),
        )
        .await;
    c.check(
        post.clone(),
        "/v1/mp/{appid}/oauth2/refresh_token",
        "/v1/mp/wxdoc/oauth2/refresh_token",
        ADMIN,
        Some(json!({"refresh_token": token["refresh_token"]})),
    )
    .await;

    // Accounts, read and changed.
    c.check(get.clone(), "/v1/accounts", "/v1/accounts?limit=100", ADMIN, None)
        .await;
    for id in ["mp:wxdoc", "mp:wxdocbad", "work:wwdoc:1000002", "corp:ssdoc:wwcorpdoc"] {
        c.check(
            get.clone(),
            "/v1/accounts/{id}",
            &format!("/v1/accounts/{id}"),
            ADMIN,
            None,
        )
        .await;
    }
    c.check(
        Method::PATCH,
        "/v1/accounts/{id}",
        "/v1/accounts/mp:wxdoc",
        ADMIN,
        Some(json!({"token_api": "stable"})),
    )
    .await;

    // Keys, and a token-free call for the audit trail.
    let made = c
        .check(
            post.clone(),
            "/v1/keys",
            "/v1/keys",
            ADMIN,
            Some(json!({"name":"doc","accounts":["mp:wxdoc"],"tokens":false,"paths":["/cgi-bin/user/*"]})),
        )
        .await;
    c.check(get.clone(), "/v1/keys", "/v1/keys", ADMIN, None).await;
    let key = made["key"].as_str().unwrap().to_owned();
    let (s, v) = srv.get("/proxy/mp/wxdoc/cgi-bin/user/get", Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    c.check(get.clone(), "/v1/audit", "/v1/audit", ADMIN, None).await;

    // Events, a webhook nobody answers, its deliveries.
    c.check(
        post.clone(),
        "/v1/webhooks",
        "/v1/webhooks",
        ADMIN,
        Some(json!({"name":"doc","url":"http://127.0.0.1:9/hook","events":["*"]})),
    )
    .await;
    c.check(get.clone(), "/v1/webhooks", "/v1/webhooks", ADMIN, None).await;
    sim.authorize("wxdoccomp", "wxdocauth2", Some(&callback)).await.unwrap();
    c.check(get.clone(), "/v1/events", "/v1/events", ADMIN, None).await;
    let tried = until(Duration::from_secs(10), || async {
        let (_, v) = srv.get("/v1/webhooks/doc/deliveries", Some(ADMIN)).await;
        v["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["attempts"].as_i64() > Some(0)))
    })
    .await;
    assert!(tried, "a delivery attempted");
    c.check(
        get.clone(),
        "/v1/webhooks/{name}/deliveries",
        "/v1/webhooks/doc/deliveries",
        ADMIN,
        None,
    )
    .await;

    // Errors: every status family the API answers, WeChat's refusal
    // included, against the one error schema.
    for _ in 0..10 {
        let (s, v) = srv.post("/v1/mp/wxdoc/clear_quota", Some(ADMIN), None).await;
        if s == StatusCode::BAD_GATEWAY {
            assert!(v["used_this_month"].is_u64(), "{v}");
            break;
        }
    }
    let error = c.doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"].clone();
    for (method, path, key, want) in [
        (
            get.clone(),
            "/v1/mp/wxdocbad/access_token",
            ADMIN,
            StatusCode::BAD_GATEWAY,
        ),
        (post.clone(), "/v1/mp/wxdoc/clear_quota", ADMIN, StatusCode::BAD_GATEWAY),
        (get.clone(), "/v1/mp/wxnone/access_token", ADMIN, StatusCode::NOT_FOUND),
        (
            get.clone(),
            "/v1/mp/bad%20id/access_token",
            ADMIN,
            StatusCode::BAD_REQUEST,
        ),
        (get.clone(), "/v1/accounts", key.as_str(), StatusCode::FORBIDDEN),
        (get.clone(), "/v1/accounts", "wrong-key", StatusCode::UNAUTHORIZED),
    ] {
        let (s, v) = srv.call(method.clone(), path, Some(key), None).await;
        assert_eq!(s, want, "{method} {path}: {v}");
        if let Err(e) = validate_in(&c.doc, "Error", &error, &v, "error", &mut c.seen) {
            panic!("{method} {path}: {e}\n{v:#}");
        }
    }

    // The other way: every field the schemas name was in some answer.
    let mut schemas = c.doc["components"]["schemas"].as_object().unwrap().clone();
    schemas.insert("Error".into(), error);
    let mut unseen = Vec::new();
    for (name, schema) in &schemas {
        for prop in schema["properties"].as_object().into_iter().flatten().map(|(k, _)| k) {
            if !c.seen.contains(&(name.clone(), prop.clone())) {
                unseen.push(format!("{name}.{prop}"));
            }
        }
    }
    assert_eq!(unseen, Vec::<String>::new(), "named by the document, in no answer");
    // And every answer schema was exercised: a page's items are validated
    // through its page.
    let used: BTreeSet<&str> = c.seen.iter().map(|(n, _)| n.as_str()).collect();
    let all: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
    let missing: Vec<_> = all.difference(&used).collect();
    assert!(
        missing.is_empty(),
        "schemas no answer exercised: {missing:?} (routes checked: {:?})",
        c.checked
    );
}
