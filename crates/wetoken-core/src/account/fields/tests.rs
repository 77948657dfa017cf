use super::*;
use serde_json::json;

/// A value each field accepts.
fn sample(name: &str) -> Value {
    match name {
        "aes_key" => Value::from("a".repeat(43)),
        "agentid" => Value::from("1000002"),
        "token_api" => Value::from("classic"),
        "api_security" => json!({
            "sym_key": "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=", "sym_sn": "s1", "private_sn": "k1",
            "private_key": include_str!("../../../tests/fixtures/api_security/doc_app_private_key.pem"),
            "platform_certs": [{"sn": "c1", "pem": include_str!("../../../tests/fixtures/api_security/doc_platform_cert.pem")}],
        }),
        _ => Value::from("x1"),
    }
}

#[test]
fn the_field_tables_say_what_the_parsers_read() {
    for kind in AccountKind::ALL {
        let fields = new_account_fields(kind);
        let mut all = Map::new();
        all.insert("kind".into(), kind.as_str().into());
        for f in fields {
            all.insert(f.name.into(), sample(f.name));
        }
        NewAccount::from_json(&Value::Object(all.clone())).unwrap_or_else(|e| panic!("{kind:?}: {}", e.0));
        for f in fields {
            let mut without = all.clone();
            without.remove(f.name);
            let parsed = NewAccount::from_json(&Value::Object(without));
            assert_eq!(parsed.is_err(), f.required, "{kind:?} without {}", f.name);
        }
        let patch: Map<String, Value> = patch_fields(kind)
            .iter()
            .map(|f| (f.name.into(), sample(f.name)))
            .collect();
        let p = AccountPatch::from_json(kind, &Value::Object(patch)).unwrap_or_else(|e| panic!("{kind:?}: {}", e.0));
        assert!(p.invalidates_credentials() || kind == AccountKind::Component || kind == AccountKind::Suite);
        let mut extra = Map::new();
        extra.insert("nope".into(), Value::from("x"));
        assert!(AccountPatch::from_json(kind, &Value::Object(extra)).is_err());
    }
}

#[test]
fn parses_every_kind() {
    let key = "a".repeat(43);
    for (body, id) in [
        (json!({"kind":"mp","appid":"wx1","secret":"s"}), "mp:wx1"),
        (
            json!({"kind":"work","corpid":"ww1","agentid":1000002,"secret":"s"}),
            "work:ww1:1000002",
        ),
        (
            json!({"kind":"work","corpid":"ww1","agentid":"1000002","secret":"s"}),
            "work:ww1:1000002",
        ),
        (
            json!({"kind":"component","appid":"wxc","secret":"s","token":"t","aes_key":key}),
            "component:wxc",
        ),
        (
            json!({"kind":"suite","suite_id":"ss","secret":"s","token":"t","aes_key":key}),
            "suite:ss",
        ),
        (json!({"kind":"provider","corpid":"ww","secret":"s"}), "provider:ww"),
        (
            json!({"kind":"authorizer","component_appid":"wxc","appid":"wx2","refresh_token":"r"}),
            "authorizer:wxc:wx2",
        ),
        (
            json!({"kind":"corp","suite_id":"ss","corpid":"ww3","permanent_code":"p","agentid":7}),
            "corp:ss:ww3",
        ),
    ] {
        let n = NewAccount::from_json(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(n.id.to_string(), id);
    }
}

#[test]
fn names_the_bad_field() {
    let cases = [
        (json!({"appid":"wx1","secret":"s"}), "kind"),
        (json!({"kind":"mp","secret":"s"}), "appid"),
        (json!({"kind":"mp","appid":"wx1' OR '1'='1","secret":"s"}), "appid"),
        (json!({"kind":"mp","appid":"wx1"}), "secret"),
        (
            json!({"kind":"mp","appid":"wx1","secret":"s","token_api":"x"}),
            "token_api",
        ),
        (json!({"kind":"mp","appid":"wx1","secret":"s","secert":"s"}), "secert"),
        (
            json!({"kind":"work","corpid":"ww","agentid":"12a","secret":"s"}),
            "agentid",
        ),
        (
            json!({"kind":"component","appid":"wxc","secret":"s","token":"t","aes_key":"short"}),
            "aes_key",
        ),
        (json!({"kind":"mp","appid":7,"secret":"s"}), "appid"),
        (json!([1]), "object"),
    ];
    for (body, field) in cases {
        let e = NewAccount::from_json(&body).unwrap_err();
        assert!(e.0.contains(field), "{body}: {e}");
    }
}

#[test]
fn patch_rules() {
    let p = AccountPatch::from_json(AccountKind::Mp, &json!({"secret":"new"})).unwrap();
    assert!(p.invalidates_credentials());
    assert!(AccountPatch::from_json(AccountKind::Mp, &json!({"appid":"x"})).is_err());
    assert!(AccountPatch::from_json(AccountKind::Mp, &json!({"kind":"work"})).is_err());
    let p = AccountPatch::from_json(AccountKind::Mp, &json!({})).unwrap();
    assert!(!p.invalidates_credentials());
}
#[test]
fn a_form_and_a_json_body_are_read_alike() {
    let key = "a".repeat(43);
    for body in [
        json!({"kind":"work","corpid":"ww1","agentid":"1000002","secret":"s"}),
        json!({"kind":"component","appid":"wxc","secret":"s","token":"t","aes_key":key}),
        json!({"kind":"corp","suite_id":"ss","corpid":"ww3","permanent_code":"p","agentid":"7"}),
        json!({"kind":"mp","appid":"wx1","secret":"s","token_api":"stable"}),
        json!({"kind":"mp","appid":"wx1","secret":""}),
        json!({"kind":"mp","appid":"wx1","secret":"s","token_api":"x"}),
        json!({"kind":"mp","appid":"wx1","secret":"s","corpid":"ww"}),
    ] {
        let form: HashMap<String, String> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let kind: AccountKind = form["kind"].parse().unwrap();
        let from_json = NewAccount::from_json(&body).map(|n| (n.id, n.secrets, n.config));
        let from_form = NewAccount::parse(kind, &form, &["kind"]).map(|n| (n.id, n.secrets, n.config));
        assert_eq!(from_json, from_form, "{body}");
    }
}
