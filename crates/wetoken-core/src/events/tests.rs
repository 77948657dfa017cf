use super::*;

#[test]
fn webhook_urls_are_checked_without_showing_their_keys() {
    let e = check_url(&format!("ftp://h/?key={}", "s3cret")).unwrap_err();
    assert!(!e.0.contains("s3cret"), "{}", e.0);
    assert!(check_url(&format!("https://h.example.com/{}", "a".repeat(MAX_URL))).is_err());
}

#[test]
fn type_patterns() {
    let p = |s| TypePattern::parse(s).unwrap();
    assert!(p("component.*").matches("component.authorized"));
    assert!(!p("component.*").matches("suite.create_auth"));
    assert!(p("*").matches("wetoken.ticket.stale"));
    assert!(p("*.unauthorized").matches("component.unauthorized"));
    assert!(p("wetoken.*.blocked").matches("wetoken.credential.blocked"));
    assert!(!p("wetoken.*.blocked").matches("wetoken.credential.recovered"));
    assert!(p("suite.change_contact").matches("suite.change_contact"));
    assert!(!p("suite.change_contact").matches("suite.change_contact_x"));
    assert_eq!(p("component.*").prefix(), "component.");
    assert_eq!(p("*").prefix(), "");
    for bad in ["", "a b", "x'--", &"a".repeat(101), "é"] {
        assert!(TypePattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn retry_schedule_backs_off_to_an_hour_and_stops_after_a_day() {
    let h = 3600 * 1000;
    assert_eq!(next_attempt(0, 0, 1, 0.5), Some(10_000));
    assert_eq!(next_attempt(0, 0, 2, 0.5), Some(20_000));
    assert_eq!(next_attempt(0, 0, 3, 0.0), Some(32_000));
    assert_eq!(next_attempt(0, 0, 12, 0.5), Some(h));
    assert_eq!(next_attempt(0, 0, 40, 0.5), Some(h));
    // The jitter stays within ±20 %.
    assert_eq!(next_attempt(0, 0, 1, 0.999_999), Some(11_999));
    // The whole schedule: attempts until 24 h, then failed.
    let (mut now, mut n, created) = (0, 0, 0);
    while let Some(at) = next_attempt(now, created, n + 1, 0.5) {
        now = at;
        n += 1;
    }
    assert!(now <= 24 * h && now > 23 * h, "{now}");
    assert!((30..40).contains(&n), "{n} attempts");
}

#[test]
fn signature_is_hmac_sha256_of_timestamp_dot_body() {
    // RFC 4231-style check against an independent computation:
    // HMAC-SHA256("key", "1700000000.{}")
    let s = signature("key", 1_700_000_000, b"{}");
    assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
    assert_ne!(s, signature("key", 1_700_000_001, b"{}"));
    assert_ne!(s, signature("key2", 1_700_000_000, b"{}"));
    // Known answer (python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.{}",hashlib.sha256).hexdigest())')
    assert_eq!(
        s,
        "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    );
}

#[test]
fn urls_are_http_or_https_with_a_host() {
    assert!(check_url("https://hooks.example.com/wetoken").is_ok());
    assert!(check_url("http://127.0.0.1:9000/x?y=1").is_ok());
    for bad in [
        "file:///etc/passwd",
        "ftp://x/y",
        "gopher://x",
        "not a url",
        "http://",
        "javascript:alert(1)",
    ] {
        assert!(check_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn wechat_webhooks_take_only_callback_events() {
    let id: AccountId = "component:wxc".parse().unwrap();
    let mut e = Event {
        id: 1,
        kind: "wetoken.credential.blocked".into(),
        account: id.clone(),
        at: 0,
        data: Map::new(),
        source: None,
    };
    let mut w = Webhook {
        name: "w".into(),
        url: "http://x/".into(),
        events: vec![TypePattern::parse("*").unwrap()],
        accounts: vec![Pattern::All],
        format: Format::Wechat,
        secret: Sealed::from_stored("x"),
        created_at: 0,
        cursor: 0,
        reply: false,
    };
    assert!(!w.wants(&e));
    e.source = Some(CallbackSource {
        query: String::new(),
        content_type: None,
        body: String::new(),
    });
    assert!(w.wants(&e));
    w.accounts = vec![Pattern::parse("component:other/*").unwrap()];
    assert!(!w.wants(&e));
}
