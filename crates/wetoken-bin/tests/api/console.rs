//! The web console (SPEC §11). Over plain HTTP: sessions, cookies, CSRF,
//! cross-site refusal, languages, hostile input. In a real headless
//! Chromium driven through WebDriver (`console_in_a_real_browser`): what an
//! operator does, page by page, with screenshots under
//! `target/console-screenshots/`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::*;

/// A client that does not follow redirects, as a test of them needs.
fn raw() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: impl reqwest::header::AsHeaderName) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

/// Signs in with `key`: the session cookie (`name=value`) and the whole
/// Set-Cookie line.
async fn sign_in(base: &str, key: &str) -> (String, String) {
    let resp = raw()
        .post(format!("{base}/console/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("key", key), ("next", "/console/")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in with the admin key");
    let line = header(resp.headers(), SET_COOKIE).to_owned();
    (line.split(';').next().unwrap().to_owned(), line)
}

/// A form's body, as a browser encodes it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// A page's first CSRF token.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("the page has a form")
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

async fn page(base: &str, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let resp = raw()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    (s, h, resp.text().await.unwrap())
}

async fn post_form(
    base: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = raw()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_cookies_and_sign_out_everywhere() {
    let sim = sim().await;
    let dir = tempdir();
    let a = spawn_with(&dir, &sim.url(), &[]).await;
    let b = spawn_with(&dir, &sim.url(), &[]).await;

    // GET / goes to the console; the console to its sign-in page.
    let root = raw().get(format!("{}/", a.url)).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(root.headers(), LOCATION), "/console/");
    let (s, h, _) = page(&a.url, "/console/keys", "").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(header(&h, LOCATION), "/console/signin?next=%2Fconsole%2Fkeys");

    // Wrong keys, client keys, cross-site posts and other bodies start nothing.
    let client_key = a.key_for("reader", &["*"]).await;
    for (key, extra, status) in [
        ("not-the-key", vec![], StatusCode::FORBIDDEN),
        ("", vec![], StatusCode::FORBIDDEN),
        (client_key.as_str(), vec![], StatusCode::FORBIDDEN),
        (ADMIN, vec![("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (ADMIN, vec![("origin", "https://evil.example")], StatusCode::FORBIDDEN),
    ] {
        let resp = post_form(&a.url, "/console/signin", "", &[("key", key)], &extra).await;
        assert_eq!(resp.status(), status, "{key:?} {extra:?}");
        assert!(
            resp.headers().get(SET_COOKIE).is_none(),
            "no session for {key:?} {extra:?}"
        );
    }
    let json_body = raw()
        .post(format!("{}/console/signin", a.url))
        .json(&json!({"key": ADMIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The admin key: a session cookie as SPEC §11 says.
    let (cookie, line) = sign_in(&a.url, ADMIN).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(line.contains(attr), "{attr} in {line}");
    }
    assert!(!line.contains("Secure"), "plain http: {line}");
    let (s, h, body) = page(&a.url, "/console/", &cookie).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<h1>Overview</h1>"));
    assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
    assert_eq!(header(&h, "x-frame-options"), "DENY");
    assert_eq!(header(&h, "cache-control"), "no-store");

    // The session works on the other instance; signing out there ends it here.
    let (s, _, body) = page(&b.url, "/console/keys", &cookie).await;
    assert_eq!(s, StatusCode::OK);
    let out = post_form(&b.url, "/console/signout", &cookie, &[("csrf", &csrf_of(&body))], &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(header(out.headers(), SET_COOKIE).contains("Max-Age=0"));
    let (s, h, _) = page(&a.url, "/console/", &cookie).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "the old cookie no longer opens the console");
    assert!(header(&h, LOCATION).starts_with("/console/signin"));

    // Behind https the cookie is Secure.
    let c = spawn_with(
        &tempdir(),
        &sim.url(),
        &[("WETOKEN_PUBLIC_URL", "https://wetoken.example.com")],
    )
    .await;
    let (_, line) = sign_in(&c.url, ADMIN).await;
    assert!(line.contains("; Secure"), "{line}");
    // After sign-in the console sends you where you were going, never elsewhere.
    for (next, to) in [
        ("/console/keys", "/console/keys"),
        ("//evil.example/", "/console/"),
        ("https://evil.example", "/console/"),
    ] {
        let resp = post_form(&c.url, "/console/signin", "", &[("key", ADMIN), ("next", next)], &[]).await;
        assert_eq!(header(resp.headers(), LOCATION), to, "{next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_their_csrf_token_change_nothing() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    sim.add_app("wxcsrf", "s");
    srv.add_mp("wxcsrf", "s").await;
    let (cookie, _) = sign_in(&srv.url, ADMIN).await;
    let (_, _, body) = page(&srv.url, "/console/accounts/mp:wxcsrf", &cookie).await;
    let csrf = csrf_of(&body);
    let (other_cookie, _) = sign_in(&srv.url, ADMIN).await;
    let (_, _, other_body) = page(&srv.url, "/console/", &other_cookie).await;
    let others_csrf = csrf_of(&other_body);
    assert_ne!(csrf, others_csrf, "each session has its own token");
    let path = "/console/accounts/mp:wxcsrf/delete";
    let confirm = ("confirm", "mp:wxcsrf");
    for (form, extra, why) in [
        (vec![confirm], vec![], "no token"),
        (
            vec![confirm, ("csrf", "0".repeat(64).as_str())],
            vec![],
            "a wrong token",
        ),
        (
            vec![confirm, ("csrf", others_csrf.as_str())],
            vec![],
            "another session's token",
        ),
        (
            vec![confirm, ("csrf", csrf.as_str())],
            vec![("sec-fetch-site", "cross-site")],
            "cross-site",
        ),
        (
            vec![confirm, ("csrf", csrf.as_str())],
            vec![("origin", "http://evil.example")],
            "another origin",
        ),
    ] {
        let resp = post_form(&srv.url, path, &cookie, &form, &extra).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{why}");
        assert_eq!(
            srv.get("/v1/accounts/mp:wxcsrf", Some(ADMIN)).await.0,
            StatusCode::OK,
            "{why}: kept"
        );
    }
    let no_session = post_form(&srv.url, path, "", &[confirm, ("csrf", &csrf)], &[]).await;
    assert_eq!(no_session.status(), StatusCode::FORBIDDEN, "no session");
    let unconfirmed = post_form(
        &srv.url,
        path,
        &cookie,
        &[("confirm", "mp:other"), ("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST, "the id must be typed");
    assert_eq!(srv.get("/v1/accounts/mp:wxcsrf", Some(ADMIN)).await.0, StatusCode::OK);
    let done = post_form(&srv.url, path, &cookie, &[confirm, ("csrf", &csrf)], &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(done.headers(), LOCATION), "/console/accounts?done=deleted");
    assert_eq!(
        srv.get("/v1/accounts/mp:wxcsrf", Some(ADMIN)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn languages_assets_and_hostile_input() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let get = |path: &'static str, lang: &'static str| {
        raw()
            .get(format!("{}{path}", srv.url))
            .header("accept-language", lang)
            .send()
    };
    let zh = get("/console/signin", "zh-CN,zh;q=0.9,en;q=0.8")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        zh.contains("<html lang=\"zh-CN\">") && zh.contains("管理员密钥"),
        "Chinese by Accept-Language"
    );
    let en = get("/console/signin", "en-US,en;q=0.9")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Admin key"));
    let switch = raw()
        .get(format!("{}/console/lang/zh?back=%2Fconsole%2Fkeys", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(switch.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(switch.headers(), LOCATION), "/console/keys");
    let lang_cookie = header(switch.headers(), SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(lang_cookie, "wetoken_lang=zh");
    let (cookie, _) = sign_in(&srv.url, ADMIN).await;
    let both = format!("{cookie}; {lang_cookie}");
    let (_, _, body) = page(&srv.url, "/console/", &both).await;
    assert!(body.contains("概览"), "the switch wins over Accept-Language");

    let css = raw()
        .get(format!("{}/console/assets/console.css", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(header(css.headers(), "content-type").starts_with("text/css"));
    assert_eq!(
        raw()
            .get(format!("{}/console/assets/../../etc/passwd", srv.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Garbage anywhere: a 4xx page, never a 500.
    for (path, status) in [
        ("/console/accounts/not-an-id", StatusCode::BAD_REQUEST),
        ("/console/accounts/mp:%00", StatusCode::BAD_REQUEST),
        ("/console/accounts/mp:wxnobody", StatusCode::NOT_FOUND),
        ("/console/accounts?limit=5000", StatusCode::BAD_REQUEST),
        ("/console/accounts?kind=nope", StatusCode::BAD_REQUEST),
        ("/console/accounts?cursor=%27%20OR%201=1", StatusCode::BAD_REQUEST),
        ("/console/events?after=-1", StatusCode::BAD_REQUEST),
        ("/console/events?type=%25%25%25", StatusCode::BAD_REQUEST),
        ("/console/webhooks/nobody", StatusCode::NOT_FOUND),
        (
            "/console/accounts/mp:wxnobody/diagnostics?rid=%3Cscript%3E",
            StatusCode::NOT_FOUND,
        ),
        ("/console/accounts/work:ww1:1/diagnostics", StatusCode::NOT_FOUND),
        ("/console/accounts/mp:wx1/authorize", StatusCode::NOT_FOUND),
        ("/console/lang/xx", StatusCode::NOT_FOUND),
    ] {
        let (s, _, body) = page(&srv.url, path, &cookie).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(body.contains("id=\"error\""), "{path}: a page that says why");
        assert!(!body.contains("<script>"), "{path}: nothing reflected unescaped");
    }
    let (_, _, body) = page(
        &srv.url,
        "/console/accounts?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &cookie,
    )
    .await;
    assert!(!body.contains("<script>alert"), "escaped");
    // An oversized form is 413 before any parsing.
    let (_, _, keys) = page(&srv.url, "/console/keys", &cookie).await;
    let big = "x".repeat(2 << 20);
    let resp = post_form(
        &srv.url,
        "/console/keys",
        &cookie,
        &[("csrf", &csrf_of(&keys)), ("name", &big)],
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
