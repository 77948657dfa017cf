use super::*;
use chrono::SecondsFormat;

#[test]
fn credentials_render_as_spec_3_says() {
    let now: DateTime<Utc> = "2026-11-21T08:00:00.400Z".parse().unwrap();
    let now = now.timestamp_millis();
    let issued = Issued {
        value: "tok\"en".into(),
        expires_at: "2026-11-21T10:00:00Z".parse().unwrap(),
        verified_at: None,
    };
    let text = credential(Credential::AccessToken, issued.clone(), now).to_bytes();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        r#"{"access_token":"tok\"en","expires_in":7199,"expires_at":"2026-11-21T10:00:00Z"}"#
    );
    let v: Value =
        serde_json::from_slice(&credential(Credential::JsapiTicket, issued.clone(), now).to_bytes()).unwrap();
    assert_eq!(v["ticket"], "tok\"en");
    // Past its expiry a value has 0 seconds left, never fewer.
    let late = credential(Credential::AccessToken, issued.clone(), now + 3 * 3_600_000).to_bytes();
    assert!(String::from_utf8(late).unwrap().contains(r#""expires_in":0,"#));
    assert_eq!(rfc3339(issued.expires_at), "2026-11-21T10:00:00Z");
    for t in ["1999-01-02T03:04:05Z", "2026-12-31T23:59:59Z", "0042-07-09T00:00:00Z"] {
        let at: DateTime<Utc> = t.parse().unwrap();
        assert_eq!(&rfc3339_bytes(at), t.as_bytes());
        assert_eq!(
            rfc3339(at),
            at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "as chrono writes it"
        );
    }
}

#[test]
fn a_credential_body_is_the_json_serde_writes_for_any_value() {
    // Every ASCII character, alone and inside a token, and some beyond.
    let mut values: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
    values.extend((0u8..=0x7f).map(|b| format!("AB{}cd_-{}", char::from(b), char::from(b))));
    values.extend(["", "中控服务器", "\u{2028}x\u{7f}", "é\"\\\n\u{10ffff}"].map(String::from));
    for (i, value) in values.into_iter().enumerate() {
        let left = i as i64 * 997;
        let expires_at = DateTime::from_timestamp(1_800_000_000 + left, 0).unwrap();
        let issued = Issued {
            value: value.clone(),
            expires_at,
            verified_at: None,
        };
        for (cred, field) in [
            (Credential::AccessToken, "access_token"),
            (Credential::AgentTicket, "ticket"),
        ] {
            let body = credential(cred, issued.clone(), 1_800_000_000_000).to_bytes();
            let mut expected = serde_json::Map::new();
            expected.insert(field.into(), value.clone().into());
            expected.insert("expires_in".into(), left.into());
            expected.insert("expires_at".into(), rfc3339(expires_at).into());
            assert_eq!(
                String::from_utf8(body).unwrap(),
                Value::Object(expected).to_string(),
                "{value:?}"
            );
        }
    }
}
