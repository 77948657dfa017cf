use super::*;
use crate::rules::SimConfig;

fn world() -> World {
    let mut w = World::new(SimConfig::default());
    w.add_app("wxmp", "s");
    w.add_app("wxother", "o");
    w
}

fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn errcode(a: &Answer) -> i64 {
    a["errcode"].as_i64().unwrap_or(0)
}

const AC: Option<&str> = Some("authorization_code");

#[test]
fn a_login_code_is_exchanged_once_within_five_minutes_for_its_own_app() {
    let mut w = world();
    let code = w.login("wxmp", "alice", 0);
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("x"), Some(&code), AC, 1)),
        40125
    );
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("s"), Some(&code), Some("client_credential"), 1)),
        40002
    );
    assert_eq!(
        errcode(&w.jscode2session(Some("wxother"), Some("o"), Some(&code), AC, 1)),
        40029,
        "another app's"
    );
    let a = w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 1);
    assert!(a.get("errcode").is_none(), "success carries no errcode: {a}");
    assert_eq!(a["openid"], openid("wxmp", "alice"));
    assert!(a.get("unionid").is_none(), "not bound");
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 2)),
        40163,
        "used"
    );
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("s"), Some("made-up"), AC, 2)),
        40029
    );
    let late = w.login("wxmp", "alice", 0);
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("s"), Some(&late), AC, CODE_TTL_MS)),
        40029,
        "expired"
    );
    let fresh = w.login("wxmp", "alice", 0);
    assert!(w.jscode2session(Some("wxmp"), Some("s"), Some(&fresh), AC, CODE_TTL_MS - 1)["openid"].is_string());
}

#[test]
fn openids_are_per_app_unionids_per_bound_account_and_session_keys_rotate() {
    let mut w = world();
    w.bind_unionid("wxmp", "open1");
    w.bind_unionid("wxother", "open1");
    let login = |w: &mut World, app: &str, secret: &str| {
        let code = w.login(app, "bob", 0);
        w.jscode2session(Some(app), Some(secret), Some(&code), AC, 1)
    };
    let (a, b) = (login(&mut w, "wxmp", "s"), login(&mut w, "wxother", "o"));
    assert_ne!(a["openid"], b["openid"]);
    assert_eq!(a["unionid"], b["unionid"], "one unionid across the bound account");
    let again = login(&mut w, "wxmp", "s");
    assert_ne!(
        again["session_key"], a["session_key"],
        "a new session key at each login"
    );
    let key = again["session_key"].as_str().unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(key).unwrap().len(), 16);
    assert_eq!(
        w.session_key("wxmp", a["openid"].as_str().unwrap()).as_deref(),
        Some(key)
    );
}

#[test]
fn one_user_logs_in_at_most_a_hundred_times_a_minute() {
    let mut w = world();
    for i in 0..LOGINS_PER_MINUTE {
        let code = w.login("wxmp", "carol", 0);
        assert!(
            w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 1)["openid"].is_string(),
            "{i}"
        );
    }
    let code = w.login("wxmp", "carol", 0);
    assert_eq!(
        errcode(&w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 2)),
        45011
    );
    let other = w.login("wxmp", "dave", 0);
    assert!(
        w.jscode2session(Some("wxmp"), Some("s"), Some(&other), AC, 2)["openid"].is_string(),
        "per user"
    );
    let next = w.login("wxmp", "carol", 60_000);
    assert!(
        w.jscode2session(Some("wxmp"), Some("s"), Some(&next), AC, 60_001)["openid"].is_string(),
        "next minute"
    );
}

#[test]
fn checksession_takes_the_current_key_signed_as_the_doc_says() {
    // The doc's example: the key is the session key's text, not its bytes.
    assert_eq!(
        user_signature("o0q0otL8aEzpcZL/FT9WsQ==", r#"{"foo":"bar"}"#),
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    );
    let mut w = world();
    let token = w.classic(Some("client_credential"), Some("wxmp"), Some("s"), 0)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = w.login("wxmp", "erin", 0);
    let a = w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 1);
    let (openid, old) = (
        a["openid"].as_str().unwrap(),
        a["session_key"].as_str().unwrap().to_owned(),
    );
    let check = |w: &World, sig: &str, method: &str| {
        errcode(&w.checksession(
            &q(&[
                ("access_token", &token),
                ("openid", openid),
                ("signature", sig),
                ("sig_method", method),
            ]),
            2,
        ))
    };
    assert_eq!(check(&w, &session_signature(&old), "hmac_sha256"), 0);
    assert_eq!(check(&w, &session_signature(&old), "md5"), 87008);
    assert_eq!(check(&w, &session_signature("wrong"), "hmac_sha256"), 87009);
    let code = w.login("wxmp", "erin", 0);
    w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 3);
    assert_eq!(
        check(&w, &session_signature(&old), "hmac_sha256"),
        87009,
        "rotated away"
    );
}

#[test]
fn web_authorization_gives_user_tokens_refreshed_without_a_secret() {
    let mut w = world();
    w.bind_unionid("wxmp", "open1");
    let base = w.oauth_code("wxmp", None, "frank", "snsapi_base", 0);
    let a = w.oauth_access_token(
        &q(&[
            ("appid", "wxmp"),
            ("secret", "s"),
            ("code", &base),
            ("grant_type", "authorization_code"),
        ]),
        1,
    );
    assert_eq!(a["scope"], "snsapi_base");
    assert!(a.get("unionid").is_none(), "snsapi_base gets no unionid: {a}");
    let (token, refresh) = (
        a["access_token"].as_str().unwrap(),
        a["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        errcode(&w.userinfo(Some(token), a["openid"].as_str(), 2)),
        48001,
        "base scope"
    );
    assert_eq!(errcode(&w.sns_auth(Some(token), a["openid"].as_str(), 2)), 0);
    assert_eq!(errcode(&w.sns_auth(Some(token), Some("oSomeoneElse"), 2)), 40003);
    let login = w.login("wxmp", "frank", 0);
    let used = w.oauth_access_token(
        &q(&[
            ("appid", "wxmp"),
            ("secret", "s"),
            ("code", &login),
            ("grant_type", "authorization_code"),
        ]),
        1,
    );
    assert_eq!(errcode(&used), 40029, "a login code is not a web code");

    let refreshed = |w: &mut World, now| {
        w.oauth_refresh(
            &q(&[
                ("appid", "wxmp"),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
            ]),
            now,
        )
    };
    assert_eq!(refreshed(&mut w, 10)["access_token"], token, "a live token is extended");
    let later = USER_TOKEN_TTL_SECS * 1000 + 20;
    let renewed = refreshed(&mut w, later);
    assert_ne!(renewed["access_token"], token, "an expired one replaced");
    assert_eq!(renewed["refresh_token"], refresh, "the refresh token is not renewed");
    assert_eq!(errcode(&refreshed(&mut w, REFRESH_TTL_MS + 1)), 40030, "30 days");

    let info = w.oauth_code("wxmp", None, "frank", "snsapi_userinfo", 0);
    let a = w.oauth_access_token(
        &q(&[
            ("appid", "wxmp"),
            ("secret", "s"),
            ("code", &info),
            ("grant_type", "authorization_code"),
        ]),
        1,
    );
    assert!(a["unionid"].is_string(), "{a}");
    let u = w.userinfo(a["access_token"].as_str(), a["openid"].as_str(), 2);
    assert_eq!(u["unionid"], a["unionid"]);
}

#[test]
fn a_component_signs_in_users_of_its_authorizers_only_with_its_own_codes() {
    let mut w = world();
    w.add_component("wxc", "cs", "tok", &"a".repeat(43));
    let ticket = w.new_verify_ticket("wxc", 0).unwrap();
    let body = json!({"component_appid": "wxc", "component_appsecret": "cs", "component_verify_ticket": ticket});
    let ct = w.component_token(&body, 0)["component_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    w.add_authorization("wxc", "wxauth");
    let login = |w: &mut World, app: &str| {
        let code = w.login(app, "gina", 0);
        w.component_jscode2session(
            &q(&[
                ("appid", app),
                ("js_code", &code),
                ("grant_type", "authorization_code"),
                ("component_appid", "wxc"),
                ("component_access_token", &ct),
            ]),
            1,
        )
    };
    assert_eq!(login(&mut w, "wxauth")["openid"], openid("wxauth", "gina"));
    assert_eq!(
        errcode(&login(&mut w, "wxmp")),
        61003,
        "not authorized to the component"
    );

    let code = w.oauth_code("wxauth", Some("wxc"), "gina", "snsapi_base", 0);
    let plain = w.oauth_access_token(
        &q(&[
            ("appid", "wxauth"),
            ("secret", "x"),
            ("code", &code),
            ("grant_type", "authorization_code"),
        ]),
        1,
    );
    assert_ne!(
        errcode(&plain),
        0,
        "the component's code needs the component's API: {plain}"
    );
    let code = w.oauth_code("wxauth", Some("wxc"), "gina", "snsapi_base", 0);
    let params = |code: &str| {
        q(&[
            ("appid", "wxauth"),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("component_appid", "wxc"),
            ("component_access_token", &ct),
        ])
    };
    let a = w.component_oauth_access_token(&params(&code), 1);
    assert_eq!(a["openid"], openid("wxauth", "gina"), "{a}");
    let refresh = a["refresh_token"].as_str().unwrap();
    let r = w.component_oauth_refresh(
        &q(&[
            ("appid", "wxauth"),
            ("grant_type", "refresh_token"),
            ("component_appid", "wxc"),
            ("component_access_token", &ct),
            ("refresh_token", refresh),
        ]),
        2,
    );
    assert_eq!(r["access_token"], a["access_token"]);
    let plain_refresh = w.oauth_refresh(
        &q(&[
            ("appid", "wxauth"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ]),
        2,
    );
    assert_eq!(
        errcode(&plain_refresh),
        40030,
        "a component's refresh token needs the component"
    );
    let wrong = w.component_oauth_access_token(
        &q(&[
            ("appid", "wxauth"),
            ("code", "x"),
            ("grant_type", "authorization_code"),
            ("component_appid", "wxc"),
            ("component_access_token", "forged"),
        ]),
        1,
    );
    assert_eq!(errcode(&wrong), 40001);
}

#[test]
fn user_data_is_sealed_under_the_session_key_with_the_watermark() {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let mut w = world();
    assert!(
        w.encrypted_user_data("wxmp", "hana", &json!({}), 0).is_none(),
        "no session yet"
    );
    let code = w.login("wxmp", "hana", 0);
    let key = w.jscode2session(Some("wxmp"), Some("s"), Some(&code), AC, 1)["session_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (data, iv) = w
        .encrypted_user_data("wxmp", "hana", &json!({"nickName": "花"}), 5_000)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let (key, iv) = (b64.decode(key).unwrap(), b64.decode(iv).unwrap());
    let mut buf = b64.decode(data).unwrap();
    let plain = cbc::Decryptor::<aes::Aes128>::new(key.as_slice().into(), iv.as_slice().into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .unwrap();
    let v: Value = serde_json::from_slice(plain).unwrap();
    assert_eq!(v["nickName"], "花");
    assert_eq!(v["watermark"], json!({"appid": "wxmp", "timestamp": 5}));
}
