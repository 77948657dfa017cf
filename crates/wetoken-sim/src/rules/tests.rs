use super::*;

fn world() -> World {
    let mut w = World::new(SimConfig::default());
    w.add_app("wx1", "s1");
    w
}

fn token(a: &Answer) -> String {
    a["access_token"].as_str().unwrap().to_owned()
}

const GT: Option<&str> = Some("client_credential");

#[test]
fn the_authorization_page_uses_a_pre_auth_code_once_within_ten_minutes() {
    let mut w = world();
    w.add_component("wxc", "cs", "tok", &"a".repeat(43));
    w.add_component("wxd", "ds", "tok", &"a".repeat(43));
    let ticket = w.new_verify_ticket("wxc", 0).unwrap();
    let body = json!({"component_appid": "wxc", "component_appsecret": "cs", "component_verify_ticket": ticket});
    let ct = w.component_token(&body, 0)["component_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut code = || {
        w.pre_auth_code(Some(&ct), &json!({"component_appid": "wxc"}), 0)["pre_auth_code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b, c) = (code(), code(), code());
    assert!(w.use_pre_auth_code("wxd", &a, 1).is_err(), "another component's code");
    assert_eq!(w.use_pre_auth_code("wxc", &a, 1), Ok(()));
    assert!(w.use_pre_auth_code("wxc", &a, 2).is_err(), "used once");
    assert!(w.use_pre_auth_code("wxc", &b, 600_000).is_err(), "expired after 600 s");
    assert_eq!(w.use_pre_auth_code("wxc", &c, 599_999), Ok(()));
    assert!(w.use_pre_auth_code("wxc", "made-up", 1).is_err());
}

#[test]
fn diagnostics_count_quota_find_rids_and_clear_ten_times_a_month() {
    let mut w = world();
    let code = |a: &Answer| a["errcode"].as_i64().unwrap();
    let t = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
    let path = json!({"cgi_path": "/cgi-bin/token"});
    let q = w.quota_get(Some(&t), &path, 0);
    assert_eq!(
        (q["quota"]["used"].as_u64(), q["quota"]["remain"].as_u64()),
        (Some(1), Some(1999))
    );
    assert_eq!(code(&w.quota_get(Some(&t), &json!({"cgi_path": "bogus"}), 0)), 76021);
    assert_eq!(code(&w.quota_get(Some(&t), &json!({}), 0)), 47001);
    assert_eq!(code(&w.quota_get(Some("nope"), &path, 0)), 40001);
    // A failed call's rid finds its request.
    let failed = w.classic(GT, Some("wx1"), Some("bad"), 0);
    w.record_rid(&failed, "/cgi-bin/token", "", 0);
    let rid = failed["errmsg"]
        .as_str()
        .unwrap()
        .split("rid: ")
        .nth(1)
        .unwrap()
        .to_owned();
    let r = w.rid_get(Some(&t), &json!({"rid": rid}), 0);
    assert_eq!(r["request"]["request_url"], "/cgi-bin/token");
    assert!(r["request"]["response_body"].as_str().unwrap().contains("40125"));
    assert_eq!(code(&w.rid_get(Some(&t), &json!({"rid": "zzz"}), 0)), 76001);
    // Ten clears a month, each resetting the day's counts.
    for _ in 0..10 {
        assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx1"}), 0)), 0);
    }
    assert_eq!(w.quota_get(Some(&t), &path, 0)["quota"]["used"], 0);
    assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx1"}), 0)), 48006);
    assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx2"}), 0)), 40013);
    let next_month = 40 * 86_400_000;
    let t2 = token(&w.classic(GT, Some("wx1"), Some("s1"), next_month));
    assert_eq!(code(&w.clear_quota(Some(&t2), &json!({"appid": "wx1"}), next_month)), 0);
}

#[test]
fn classic_rotates_with_grace_for_the_last_one_only() {
    let mut w = world();
    let a = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
    let b = token(&w.classic(GT, Some("wx1"), Some("s1"), 1_000));
    assert_eq!(w.token_state(&a, 2_000), TokenState::Valid, "grace");
    assert_eq!(w.token_state(&a, 301_000), TokenState::Invalid, "grace over");
    let c = token(&w.classic(GT, Some("wx1"), Some("s1"), 2_000));
    assert_eq!(w.token_state(&a, 2_000), TokenState::Invalid, "older predecessor dies");
    assert_eq!(w.token_state(&b, 2_000), TokenState::Valid);
    assert_eq!(w.token_state(&c, 7_201_999), TokenState::Valid);
    assert_eq!(w.token_state(&c, 7_202_000), TokenState::Expired);
}

#[test]
fn stable_is_idempotent_until_its_last_minutes() {
    let mut w = world();
    let a = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
    assert_eq!(token(&w.stable(GT, Some("wx1"), Some("s1"), false, 1_000_000)), a);
    let late = w.stable(GT, Some("wx1"), Some("s1"), false, 6_950_000);
    assert_ne!(token(&late), a, "rotated in the last 5 minutes");
    assert_eq!(w.token_state(&a, 6_960_000), TokenState::Valid);
}

#[test]
fn stable_force_needs_30_seconds() {
    let mut w = world();
    let a = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
    let b = token(&w.stable(GT, Some("wx1"), Some("s1"), true, 1_000));
    assert_ne!(a, b);
    assert_eq!(
        token(&w.stable(GT, Some("wx1"), Some("s1"), true, 10_000)),
        b,
        "too soon: no refresh"
    );
    let c = token(&w.stable(GT, Some("wx1"), Some("s1"), true, 40_000));
    assert_ne!(b, c);
    assert_eq!(w.token_state(&a, 40_000), TokenState::Invalid);
}

#[test]
fn families_are_isolated() {
    let mut w = world();
    let s = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
    w.classic(GT, Some("wx1"), Some("s1"), 0);
    w.classic(GT, Some("wx1"), Some("s1"), 0);
    assert_eq!(w.token_state(&s, 0), TokenState::Valid);
}

#[test]
fn errors_as_wechat() {
    let mut w = world();
    let code = |a: Answer| a["errcode"].as_i64().unwrap();
    assert_eq!(code(w.classic(Some("x"), Some("wx1"), Some("s1"), 0)), 40002);
    assert_eq!(code(w.classic(GT, None, Some("s1"), 0)), 41002);
    assert_eq!(code(w.classic(GT, Some("wx1"), None, 0)), 41004);
    assert_eq!(code(w.classic(GT, Some("wx9"), Some("s1"), 0)), 40013);
    assert_eq!(code(w.classic(GT, Some("wx1"), Some("bad"), 0)), 40125);
    assert_eq!(code(w.ticket(None, Some("jsapi"), 0)), 41001);
    assert_eq!(code(w.ticket(Some("nope"), Some("jsapi"), 0)), 40001);
    w.cfg.daily_quota = 1;
    assert!(w.classic(GT, Some("wx1"), Some("s1"), 0).get("errcode").is_none());
    assert_eq!(code(w.classic(GT, Some("wx1"), Some("s1"), 0)), 45009);
}

#[test]
fn tickets_need_a_valid_token() {
    let mut w = world();
    let a = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
    let t = w.ticket(Some(&a), Some("jsapi"), 1);
    assert_eq!(t["errcode"], 0);
    assert!(t["ticket"].as_str().unwrap().starts_with("JSAPI_"));
    assert_eq!(w.ticket(Some(&a), Some("wx_card"), 1)["errcode"], 0);
    assert_eq!(w.ticket(Some(&a), Some("other"), 1)["errcode"], 40097);
    assert_eq!(w.ticket(Some(&a), Some("jsapi"), 7_200_000)["errcode"], 42001);
}
