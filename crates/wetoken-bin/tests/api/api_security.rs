//! SPEC §15: Mini Program calls signed and encrypted by wetoken with the
//! account's API-security keys; callers send and receive plain JSON. The
//! simulator checks each call as WeChat does and answers sealed and signed
//! with a platform certificate of its own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const APPID: &str = "wxapisecurity01";
const PLAIN_APP: &str = "wxapisecplain01";
const SYM: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
const KEY: &str = include_str!("../../../wetoken-core/tests/fixtures/api_security/doc_app_private_key.pem");

fn public_pem() -> String {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let k = rsa::RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
    k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
}

fn block(certs: &[(String, String)], sign: Option<&str>) -> Value {
    let mut b = json!({"sym_key": SYM, "sym_sn": "symsn0001", "private_key": KEY, "private_sn": "keysn0001",
        "platform_certs": certs.iter().map(|(sn, pem)| json!({"sn": sn, "pem": pem})).collect::<Vec<_>>()});
    if let Some(s) = sign {
        b["sign"] = json!(s);
    }
    b
}

/// An `mp` account with keys and one without, a client key for both; the
/// server in its own process (its log is read) with `WETOKEN_LOG=debug`.
async fn setup(sim: &wetoken_sim::Sim, dir: &TestDir) -> (TestServer, String) {
    sim.add_app(APPID, "s");
    sim.add_app(PLAIN_APP, "s");
    sim.set_api_security(APPID, SYM, "symsn0001", &public_pem());
    let srv = spawn_process_with(dir, &sim.url(), &[("WETOKEN_LOG", "debug")]).await;
    let cert = sim.platform_certificate();
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind": "mp", "appid": APPID, "secret": "s", "api_security": block(&[cert], Some("all"))})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    srv.add_mp(PLAIN_APP, "s").await;
    let (s, v) = srv
        .post(
            "/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "shop", "accounts": [format!("mp:{APPID}"), format!("mp:{PLAIN_APP}")], "tokens": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (srv, v["key"].as_str().unwrap().to_owned())
}

async fn proxy(srv: &TestServer, key: &str, appid: &str, path: &str, body: Value) -> (StatusCode, Value) {
    srv.call(Method::POST, &format!("/proxy/mp/{appid}{path}"), Some(key), Some(body))
        .await
}

/// The done-when: a business system holding only a wetoken key calls a
/// signed API end to end with plain JSON — the risk-control API of WeChat's
/// example (signed because the account says "all") and same-city delivery
/// (always signed); WeChat saw the fields sealed, never in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_tokens_calls_signed_apis_with_plain_json() {
    let sim = sim().await;
    let dir = tempdir();
    let (srv, key) = setup(&sim, &dir).await;
    let ask = json!({"appid": APPID, "openid": "oRisk1", "scene": 0, "client_ip": "127.0.0.1"});
    let (s, v) = proxy(&srv, &key, APPID, "/wxa/getuserriskrank", ask.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"errcode": 0, "errmsg": "getuserriskrank succ", "risk_rank": 0, "unoin_id": 2258658297u64})
    );
    let store = json!({"out_store_id": "s1", "store_name": "门店", "address_info": {"city": "深圳"}});
    let (s, v) = proxy(
        &srv,
        &key,
        APPID,
        "/cgi-bin/express/intracity/createstore",
        store.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["errcode"], &v["op"], &v["request"]),
        (&json!(0), &json!("createstore"), &store)
    );
    let seen = sim.signed_calls();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], (APPID.to_owned(), ask));

    // Without keys: WeChat's refusal, as WeChat sent it, in the audit.
    let (s, v) = proxy(&srv, &key, PLAIN_APP, "/cgi-bin/express/intracity/createstore", store).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["errcode"], 934011, "{v}");
    let (_, audit) = srv.get("/v1/audit?key=shop", Some(ADMIN)).await;
    let codes: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["errcode"])
        .collect();
    assert_eq!(codes, [&json!(0), &json!(0), &json!(934011)], "{audit}");
    // The keys are never shown: the account answers its sns and certificates.
    let (_, account) = srv.get(&format!("/v1/accounts/mp:{APPID}"), Some(ADMIN)).await;
    assert_eq!(account["api_security"]["sym_sn"], "symsn0001", "{account}");
    assert_eq!(account["api_security"]["sign"], "all");
    assert_eq!(account["api_security"]["platform_certs"].as_array().unwrap().len(), 1);
    // The console shows the sns and the certificate's validity.
    let (cookie, _) = crate::console::sign_in(&srv.url, ADMIN).await;
    let (_, _, page) = crate::console::page(&srv.url, &format!("/console/accounts/mp:{APPID}"), &cookie).await;
    assert!(
        page.contains("id=\"api-security\"") && page.contains("symsn0001"),
        "{page}"
    );
    assert!(page.contains("class=\"cert-validity\""), "{page}");
    // Nor in the log (debug level), whatever was called.
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let key_body = KEY.lines().nth(1).unwrap();
    for shown in [account.to_string(), audit.to_string(), page, log] {
        assert!(
            !shown.contains(SYM) && !shown.contains("PRIVATE KEY") && !shown.contains(key_body),
            "{shown}"
        );
    }
}

/// An answer whose signature does not verify is 502 and never passed on;
/// during WeChat's rotation the deprecated certificate still verifies; a
/// certificate within 30 days of its end raises one
/// `wetoken.api_security.certificate_expiring`; a bad block is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_verified_and_certificates_watched() {
    let sim = sim().await;
    let dir = tempdir();
    let (srv, key) = setup(&sim, &dir).await;
    let ask = json!({"openid": "oRisk2", "scene": 1});
    sim.tamper_signed_answers(1);
    let (s, v) = proxy(&srv, &key, APPID, "/wxa/getuserriskrank", ask.clone()).await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::BAD_GATEWAY, &json!("upstream_error")),
        "{v}"
    );
    assert!(!v.to_string().contains("risk_rank"), "never passed on: {v}");

    // WeChat rotates: the answer carries the new certificate's signature
    // and the old one's as deprecated; wetoken holds only the old.
    let (new_sn, new_pem) = sim.rotate_platform_certificate(10);
    let (s, v) = proxy(&srv, &key, APPID, "/wxa/getuserriskrank", ask.clone()).await;
    assert_eq!((s, &v["risk_rank"]), (StatusCode::OK, &json!(0)), "{v}");

    // The new certificate ends in 10 days: once added, it is announced once.
    let (s, v) = srv
        .call(
            Method::PATCH,
            &format!("/v1/accounts/mp:{APPID}"),
            Some(ADMIN),
            Some(json!({"api_security": block(&[(new_sn.clone(), new_pem)], Some("all"))})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for _ in 0..2 {
        let (s, v) = proxy(&srv, &key, APPID, "/wxa/getuserriskrank", ask.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, events) = srv
        .get("/v1/events?type=wetoken.api_security.certificate_expiring", Some(ADMIN))
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["sn"], new_sn.as_str());

    // WeChat's own refusal (keys that no longer match what WeChat holds:
    // it cannot open the call) comes back as WeChat sent it.
    sim.set_api_security(
        APPID,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "symsn0001",
        &public_pem(),
    );
    let (s, v) = proxy(&srv, &key, APPID, "/wxa/getuserriskrank", ask.clone()).await;
    assert_eq!((s, &v["errcode"]), (StatusCode::OK, &json!(40235)), "{v}");
    // An upload is never signed (WeChat does not support it).
    let before = sim.signed_calls().len();
    let mut form = b"--b0undary\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\n\
        Content-Type: image/jpeg\r\n\r\n"
        .to_vec();
    form.extend_from_slice(&[7u8; 1024]);
    form.extend_from_slice(b"\r\n--b0undary--\r\n");
    let resp = srv
        .client
        .post(format!("{}/proxy/mp/{APPID}/cgi-bin/media/upload?type=image", srv.url))
        .bearer_auth(&key)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert!(v["media_id"].is_string(), "{v}");
    assert_eq!(sim.signed_calls().len(), before, "unsigned");

    for (bad, field) in [
        (
            json!({"sym_key": "c2hvcnQ=", "sym_sn": "a", "private_key": KEY, "private_sn": "b", "platform_certs": []}),
            "sym_key",
        ),
        (
            json!({"sym_key": SYM, "sym_sn": "a", "private_key": "no key", "private_sn": "b", "platform_certs": []}),
            "private_key",
        ),
        (
            json!({"sym_key": SYM, "sym_sn": "a", "private_key": KEY, "private_sn": "b", "platform_certs": [], "x": 1}),
            "unknown field",
        ),
    ] {
        let (s, v) = srv
            .call(
                Method::PATCH,
                &format!("/v1/accounts/mp:{APPID}"),
                Some(ADMIN),
                Some(json!({"api_security": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains(field), "{v}");
    }
}

/// An authorizer's calls are signed with its component's keys and the
/// component's appid in `Wechatmp-Appid` (contract-2 §C.8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_signs_with_its_components_keys() {
    const C: &str = "wxapiseccomp01";
    const A: &str = "wxapisecauthz01";
    const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let sim = sim().await;
    sim.add_component(C, "cs", "ctoken", AES);
    sim.set_api_security(C, SYM, "symsn0001", &public_pem());
    let srv = spawn(&sim).await;
    let cert = sim.platform_certificate();
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(
                json!({"kind": "component", "appid": C, "secret": "cs", "token": "ctoken", "aes_key": AES,
                        "api_security": block(&[cert], None)}),
            ),
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
            Some(json!({"kind": "authorizer", "component_appid": C, "appid": A, "refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = srv.key_for("platform-shop", &[&format!("authorizer:{C}:{A}")]).await;
    let store = json!({"out_store_id": "s9"});
    let (s, v) = srv
        .call(
            Method::POST,
            &format!("/proxy/authorizer/{C}/{A}/cgi-bin/express/intracity/createstore"),
            Some(&key),
            Some(store.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((&v["errcode"], &v["request"]), (&json!(0), &store), "{v}");
    assert_eq!(
        sim.signed_calls(),
        vec![(C.to_owned(), store)],
        "signed as the component"
    );
    // Not "all": an API that need not be signed goes as it is.
    let (s, v) = srv
        .call(
            Method::POST,
            &format!("/proxy/authorizer/{C}/{A}/wxa/getuserriskrank"),
            Some(&key),
            Some(json!({"openid": "o"})),
        )
        .await;
    assert_eq!((s, &v["risk_rank"]), (StatusCode::OK, &json!(0)), "{v}");
    assert_eq!(sim.signed_calls().len(), 1, "unsigned");
}
