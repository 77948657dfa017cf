//! The web console (SPEC §11). Over plain HTTP: sessions, cookies, CSRF,
//! cross-site refusal, languages, hostile input. In a real headless
//! Chromium driven through WebDriver (`console_in_a_real_browser`): what an
//! operator does, page by page, with screenshots under
//! `target/console-screenshots/`.

use std::time::Duration;

use futures::StreamExt;
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

fn header(h: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> &str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

/// Signs in with `key`: the session cookie (`name=value`) and the whole
/// Set-Cookie line.
pub(crate) async fn sign_in(base: &str, key: &str) -> (String, String) {
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

pub(crate) async fn page(base: &str, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
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
    // SPEC §14: the account shows the URL WeChat pushes its messages to.
    assert!(
        body.contains(&format!(
            "<code class=\"receiving-url\">{}/callback/mp/wxcsrf</code>",
            srv.url
        )),
        "{body}"
    );
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

// ---- in a real browser

mod browser {
    use std::path::PathBuf;
    use std::process::Stdio;
    use std::time::Duration;

    use fantoccini::{Client, ClientBuilder, Locator};
    use serde_json::json;

    /// chromedriver on a free port, and a headless Chromium session with a
    /// profile directory of its own: dropping the driver ends both, and
    /// every browser process started with that profile (a failed test must
    /// not leave Chromium running).
    pub struct Driver {
        pub client: Client,
        _child: tokio::process::Child,
        profile: tempfile::TempDir,
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pkill")
                .arg("-9")
                .arg("-f")
                .arg(self.profile.path())
                .status();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    impl Driver {
        pub async fn start(lang: &str) -> Driver {
            let driver = std::env::var("WETOKEN_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
            let chromium = std::env::var("WETOKEN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
            let port = free_port();
            let child = tokio::process::Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {driver} ({e}): install chromium and chromium-driver, or run `cargo xtask ci`")
                });
            let url = format!("http://127.0.0.1:{port}");
            let profile = tempfile::tempdir().unwrap();
            let user_data = format!("--user-data-dir={}", profile.path().display());
            let caps = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1280,1000", format!("--lang={lang}"), user_data],
                    "prefs": {"intl.accept_languages": lang},
                }
            });
            let caps = caps.as_object().unwrap().clone();
            // The driver takes a moment to listen: retry the session until it does.
            let mut last = None;
            for _ in 0..100 {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => {
                        return Driver {
                            client,
                            _child: child,
                            profile,
                        };
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no WebDriver session: {last:?}");
        }
    }

    /// Screenshots of each page, for people: `target/console-screenshots/`.
    pub async fn shot(b: &Client, name: &str) {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .map_or_else(
                |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                PathBuf::from,
            )
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = b.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn find(b: &Client, css: &str) -> fantoccini::elements::Element {
        match b
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{css}: {e}; page: {}", b.source().await.unwrap_or_default()),
        }
    }

    pub async fn fill(b: &Client, css: &str, value: &str) {
        let e = find(b, css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    /// Clicks something that loads a new page, and waits for that page:
    /// until the old document is gone.
    pub async fn click(b: &Client, css: &str) {
        let old = find(b, "html").await;
        find(b, css).await.click().await.unwrap();
        for _ in 0..300 {
            if old.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no page");
    }

    pub async fn text(b: &Client, css: &str) -> String {
        find(b, css).await.text().await.unwrap()
    }

    /// Waits until the page's path is `path`.
    pub async fn at(b: &Client, path: &str) {
        for _ in 0..150 {
            if b.current_url().await.unwrap().path() == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached {path}: at {}", b.current_url().await.unwrap());
    }
}

use browser::{at, click, fill, find, shot, text};

const APPID: &str = "wxbrowsermp00001";
const SECRET: &str = "browser-mp-secret";
const C: &str = "wxbrowsercomp001";
const C_SECRET: &str = "browser-component-secret";
const C_TOKEN: &str = "browsertoken";
const C_AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const AUTHORIZER: &str = "wxbrowserauth001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver (Debian: chromium, chromium-driver): run `cargo xtask ci`, or pass --include-ignored"]
async fn console_in_a_real_browser() {
    let sim = sim().await;
    sim.add_app(APPID, SECRET);
    sim.add_component(C, C_SECRET, C_TOKEN, C_AES);
    let srv = spawn(&sim).await;
    let base = srv.url.clone();
    let driver = browser::Driver::start("en-US").await;
    let b = &driver.client;

    // Signed out, the console asks for the admin key; a wrong one is refused.
    b.goto(&format!("{base}/console/")).await.unwrap();
    at(b, "/console/signin").await;
    fill(b, "#key", "not-the-admin-key").await;
    click(b, "#signin").await;
    let refused = text(b, "#error").await;
    assert!(refused.contains("not the admin key"), "{refused}");
    shot(b, "01-sign-in-refused").await;
    fill(b, "#key", ADMIN).await;
    click(b, "#signin").await;
    find(b, "section.counts").await;
    at(b, "/console/").await;

    // Add an mp account; its token becomes healthy against the simulator.
    b.goto(&format!("{base}/console/accounts/new?kind=mp")).await.unwrap();
    fill(b, "#f-appid", APPID).await;
    fill(b, "#f-secret", SECRET).await;
    shot(b, "02-add-account").await;
    click(b, "#create-account").await;
    assert_eq!(text(b, "#account-id").await, format!("mp:{APPID}"));
    click(b, "#refresh-access_token").await;
    find(b, "#cred-access_token [data-state=healthy]").await;
    shot(b, "03-account-healthy").await;
    let (_, v) = srv.get(&format!("/v1/mp/{APPID}/access_token"), Some(ADMIN)).await;
    assert!(
        sim.is_valid(v["access_token"].as_str().unwrap()),
        "the healthy token is WeChat's: {v}"
    );
    assert_eq!(sim.token_calls(), 1, "fetched once, by the click");

    // A key is shown once and works; the list never shows it again.
    b.goto(&format!("{base}/console/keys")).await.unwrap();
    fill(b, "#key-name", "shop-backend").await;
    fill(b, "#key-accounts", &format!("mp:{APPID}")).await;
    click(b, "#create-key").await;
    let key = text(b, "#new-key-value").await;
    assert!(key.starts_with("wtk_"), "{key}");
    shot(b, "04-key-shown-once").await;
    let (s, v) = srv.get(&format!("/v1/mp/{APPID}/access_token"), Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    b.goto(&format!("{base}/console/keys")).await.unwrap();
    find(b, "#key-shop-backend").await;
    assert!(!b.source().await.unwrap().contains(&key), "the key is not shown again");

    // A webhook for wetoken's alerts: its secret is shown once.
    let receiver = crate::receiver::Receiver::start().await;
    b.goto(&format!("{base}/console/webhooks")).await.unwrap();
    fill(b, "#wh-name", "alerts").await;
    fill(b, "#wh-url", &receiver.url).await;
    fill(b, "#wh-events", "wetoken.*").await;
    click(b, "#create-webhook").await;
    assert!(text(b, "#new-webhook-secret").await.starts_with("whsec_"));
    shot(b, "08-webhooks").await;

    // A component: its authorization links and QR code.
    b.goto(&format!("{base}/console/accounts/new?kind=component"))
        .await
        .unwrap();
    fill(b, "#f-appid", C).await;
    fill(b, "#f-secret", C_SECRET).await;
    fill(b, "#f-token", C_TOKEN).await;
    fill(b, "#f-aes_key", C_AES).await;
    click(b, "#create-account").await;
    assert_eq!(text(b, "#account-id").await, format!("component:{C}"));
    sim.push_verify_ticket(C, &format!("{base}/callback/component/{C}"))
        .await
        .unwrap();
    click(b, "#authorize-link").await;
    find(b, "#auth_type").await.select_by_value("1").await.unwrap();
    fill(b, "#category_id_list", "1|2").await;
    click(b, "#authorize-submit").await;
    let pc = find(b, "#pc-link").await.attr("href").await.unwrap().unwrap();
    let h5 = find(b, "#h5-link").await.attr("href").await.unwrap().unwrap();
    assert!(
        pc.starts_with(&format!(
            "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid={C}&pre_auth_code="
        )),
        "{pc}"
    );
    assert!(
        pc.contains("&auth_type=1") && pc.contains("&category_id_list=1%7C2"),
        "{pc}"
    );
    assert!(
        h5.starts_with("https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&")
            && h5.ends_with("#wechat_redirect"),
        "{h5}"
    );
    let qr = find(b, "#qr svg").await;
    assert!(
        qr.rectangle().await.unwrap().2 >= 200.0,
        "a QR code drawn on the server"
    );
    b.execute("document.querySelector('#links').scrollIntoView()", vec![])
        .await
        .unwrap();
    shot(b, "05-authorization-links").await;

    // Follow the simulator's authorization page: the authorizer is listed.
    let on_sim = pc.replace("https://mp.weixin.qq.com", &sim.url());
    b.goto(&on_sim).await.unwrap();
    fill(b, "#sim-appid", AUTHORIZER).await;
    click(b, "#sim-authorize").await;
    at(b, &format!("/callback/component/{C}/authorized")).await;
    assert!(text(b, "#landing-detail").await.contains(AUTHORIZER));
    b.goto(&format!("{base}/console/accounts/component:{C}")).await.unwrap();
    let listed = text(b, "#authorizers table").await;
    assert!(listed.contains(&format!("authorizer:{C}:{AUTHORIZER}")), "{listed}");
    shot(b, "06-authorizers").await;

    // Rotate to a wrong secret: the refresh fails and the overview shows it.
    b.goto(&format!("{base}/console/accounts/mp:{APPID}")).await.unwrap();
    fill(b, "#r-secret", "a-wrong-secret").await;
    click(b, "#rotate-submit").await;
    assert!(text(b, ".flash").await.contains("Saved"));
    click(b, "#refresh-access_token").await;
    let refused = text(b, "#error").await;
    assert!(refused.contains("40125"), "WeChat's refusal shown: {refused}");
    let rid = refused
        .split("rid: ")
        .nth(1)
        .expect("WeChat's rid")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    b.goto(&format!("{base}/console/")).await.unwrap();
    let failing = text(b, "#failing").await;
    assert!(
        failing.contains(&format!("mp:{APPID}")) && failing.contains("40125"),
        "{failing}"
    );
    shot(b, "07-overview-failing").await;
    // And back: the right secret, a healthy token again.
    b.goto(&format!("{base}/console/accounts/mp:{APPID}")).await.unwrap();
    fill(b, "#r-secret", SECRET).await;
    click(b, "#rotate-submit").await;
    click(b, "#refresh-access_token").await;
    find(b, "#cred-access_token [data-state=healthy]").await;

    // The alerts reached the webhook; a delivery is retried by hand.
    let delivered = receiver.wait_for(4, Duration::from_secs(30)).await;
    let mut kinds: Vec<&str> = delivered.iter().map(|r| r.header("x-wetoken-event")).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "wetoken.credential.blocked",
            "wetoken.credential.misconfigured",
            "wetoken.credential.recovered",
            "wetoken.credential.refresh_failed",
        ],
        "the alerts of the bad rotation and of its fix (in any order: attempts run side by side)"
    );
    b.goto(&format!("{base}/console/webhooks/alerts?status=delivered"))
        .await
        .unwrap();
    let first = delivered[0].header("x-wetoken-delivery").to_owned();
    find(b, &format!("#delivery-{first}")).await;
    shot(b, "09-deliveries").await;
    click(b, &format!("#retry-{first}")).await;
    assert!(text(b, ".flash").await.contains("attempted again"));
    let again = receiver.wait_for(delivered.len() + 1, Duration::from_secs(30)).await;
    assert!(
        again[delivered.len()..]
            .iter()
            .any(|r| r.header("x-wetoken-delivery") == first),
        "the retried delivery came again"
    );
    b.goto(&format!("{base}/console/events")).await.unwrap();
    let events = text(b, "table.events").await;
    let (_, api) = srv.get("/v1/events", Some(ADMIN)).await;
    assert!(events.contains("component.component_verify_ticket"), "{events}");
    assert!(events.contains("wetoken.credential.refresh_failed"), "{events} {api}");
    shot(b, "10-events").await;

    // Diagnostics: a quota, and a clear that counts.
    b.goto(&format!("{base}/console/accounts/mp:{APPID}/diagnostics"))
        .await
        .unwrap();
    click(b, "#quota-go").await;
    assert!(text(b, "#quota-result").await.contains("daily_limit"));
    fill(b, "#rid-input", &rid).await;
    click(b, "#rid-go").await;
    let request = text(b, "#rid-result").await;
    assert!(
        request.contains("request_url") && request.contains("40125"),
        "{request}"
    );
    find(b, "#clear-confirm").await.click().await.unwrap();
    click(b, "#clear-submit").await;
    assert!(text(b, ".flash").await.contains("cleared"));
    assert_eq!(text(b, "#clears-used").await, "1");
    shot(b, "11-diagnostics").await;
    b.goto(&format!("{base}/console/platforms")).await.unwrap();
    assert!(text(b, "#components").await.contains(&format!("component:{C}")));
    shot(b, "12-platforms").await;

    // Delete an account, confirmed by its id.
    srv.add_mp("wxbrowserdelete1", "s").await;
    b.goto(&format!("{base}/console/accounts/mp:wxbrowserdelete1"))
        .await
        .unwrap();
    fill(b, "#delete-confirm", "mp:wxbrowserdelete1").await;
    click(b, "#delete-submit").await;
    assert!(text(b, ".flash").await.contains("Deleted"));
    assert_eq!(
        srv.get("/v1/accounts/mp:wxbrowserdelete1", Some(ADMIN)).await.0,
        StatusCode::NOT_FOUND
    );

    // A form whose CSRF token was removed is refused and changes nothing.
    srv.add_mp("wxbrowserkeep001", "s").await;
    b.goto(&format!("{base}/console/accounts/mp:wxbrowserkeep001"))
        .await
        .unwrap();
    fill(b, "#delete-confirm", "mp:wxbrowserkeep001").await;
    b.execute("document.querySelector('#delete input[name=csrf]').remove()", vec![])
        .await
        .unwrap();
    click(b, "#delete-submit").await;
    assert!(text(b, "#error").await.contains("CSRF"));
    assert_eq!(
        srv.get("/v1/accounts/mp:wxbrowserkeep001", Some(ADMIN)).await.0,
        StatusCode::OK
    );

    // 中文.
    b.goto(&format!("{base}/console/")).await.unwrap();
    click(b, "#lang-zh").await;
    at(b, "/console/").await;
    assert!(text(b, "header nav").await.contains("概览"));
    assert_eq!(
        find(b, "html").await.attr("lang").await.unwrap().as_deref(),
        Some("zh-CN")
    );
    shot(b, "13-overview-zh").await;
    b.goto(&format!("{base}/console/accounts")).await.unwrap();
    shot(b, "14-accounts-zh").await;
    click(b, "#lang-en").await;
    assert!(text(b, "header nav").await.contains("Overview"));

    // Sign out: the session is over.
    click(b, "#signout").await;
    at(b, "/console/signin").await;
    assert!(text(b, ".flash").await.contains("Signed out"));
    b.goto(&format!("{base}/console/keys")).await.unwrap();
    at(b, "/console/signin").await;
}

/// A Chinese browser gets the console in Chinese without choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver (Debian: chromium, chromium-driver): run `cargo xtask ci`, or pass --include-ignored"]
async fn a_chinese_browser_gets_chinese() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let driver = browser::Driver::start("zh-CN").await;
    let b = &driver.client;
    b.goto(&format!("{}/console/", srv.url)).await.unwrap();
    at(b, "/console/signin").await;
    assert!(text(b, "h1").await.contains("登录"));
    fill(b, "#key", ADMIN).await;
    click(b, "#signin").await;
    assert!(text(b, "h1").await.contains("概览"));
}

/// A component with many authorizers: its page shows one page at a time,
/// the next link walks them all once, a prefix search narrows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizers_are_paged_and_searched_by_appid_prefix() {
    let sim = sim().await;
    let srv = spawn(&sim).await;
    let (s, v) = srv
        .post(
            "/v1/accounts",
            Some(ADMIN),
            Some(json!({"kind":"component","appid":"wxmanyc","secret":"s","token":"t","aes_key":"a".repeat(43)})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let appids: Vec<String> = (0..120).map(|i| format!("wxmany{i:03}")).collect();
    futures::stream::iter(appids.clone())
        .for_each_concurrent(8, |appid| {
            let srv = &srv;
            async move {
                let body = json!({"kind":"authorizer","component_appid":"wxmanyc","appid":appid,"refresh_token":"r"});
                assert_eq!(
                    srv.post("/v1/accounts", Some(ADMIN), Some(body)).await.0,
                    StatusCode::CREATED
                );
            }
        })
        .await;
    let (cookie, _) = sign_in(&srv.url, ADMIN).await;
    let listed = |html: &str| -> Vec<String> {
        html.split("<a href=\"/console/accounts/authorizer:wxmanyc:")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .collect()
    };
    let mut seen = Vec::new();
    let mut path = "/console/accounts/component:wxmanyc".to_owned();
    let mut pages = 0;
    loop {
        let (s, _, html) = page(&srv.url, &path, &cookie).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        pages += 1;
        let got = listed(&html);
        assert!(got.len() <= 50, "a page holds at most 50");
        seen.extend(got);
        match html.split("id=\"children-next\" href=\"").nth(1) {
            Some(rest) => path = rest.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, appids, "every authorizer once, in order");
    let (_, _, html) = page(&srv.url, "/console/accounts/component:wxmanyc?q=wxmany11", &cookie).await;
    assert_eq!(
        listed(&html),
        (110..120).map(|i| format!("wxmany{i}")).collect::<Vec<_>>()
    );
    let (s, _, _) = page(&srv.url, "/console/accounts/component:wxmanyc?q=%27%3B--", &cookie).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a search is an id prefix, nothing else");
    // The overview counts them (bounded reads, see the store's count cap).
    let (_, _, html) = page(&srv.url, "/console/", &cookie).await;
    assert!(
        html.contains("<strong>120</strong><span>Authorized accounts"),
        "counted"
    );
}
