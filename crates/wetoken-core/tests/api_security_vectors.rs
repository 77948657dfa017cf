//! WeChat's published API-security example (contract-2 §C.6, the
//! `getuserriskrank` call of 服务端 API 签名加密指南): wetoken's sealing
//! reproduces the published request body byte for byte, the published
//! request signature verifies with the public half of the published app
//! key, and the published answer verifies against the published platform
//! certificate and opens to the published fields.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use wetoken_core::apisec::{AnswerError, AnswerHeaders, ApiKeys, ApiSecurityConfig, CertConfig};

const APPID: &str = "wxba6223c06417af7b";
const URLPATH: &str = "https://api.weixin.qq.com/wxa/getuserriskrank";
const REQUEST: &str = r#"{"iv":"fmW/zNxXlytUZBgj","data":"0IDVdrPtSPF/Oe2CTXCV2vVNPbVJdJlP2WaTMQnoYLh5iCrrSNfQFh25EnStDMf0hLlVNBCZQtf9NaV0m4aRA4AAYIO7oR/Ge+4yY4EmZp5EVPB42xjScgMx5X3D4VdLCfynXIUKUtZHZvk1zmLVE3RauzJgiM1BB1CPmwcENo3MTJ0z8Vfkf5tMv54kOXobDLlV5rfqKdAX7gM/rP82DgZdt9vvZX44ipdbHIjJvw83ZXAFtvftdVw2Qd8=","authtag":"5qeM/2vZv+6KtScN94IpMg=="}"#;
const REQUEST_SIGNATURE: &str = "wcSSWHZunjz9VKl9q+If9deiyECXDAELfAJNZ4+5T+NhFr8zfhkwdQtlgQ7nN5xs99R57La9UjBTRBGge2KYyshWtw7HIMPAqWNsnpHvx0b2f7s6Bt7OpfOQLlIfNgepgTVmUwrqW8/7A12szj7tCe/bRFilwnaX6N0w4duHlfL7ic7IIZXouvy9dLRAa5GtEk1eD/LPWRiKh0SvJ3znPY/pSiQW9zSkXVdj9UGGM8qcKLzPGJ7gSmt3ZOPkFapk9wqFmhJwQj//xN5+hUlr2UiNPMNSHve5Y2ADLsNHqk5t7RfAZ8nW9/8lzhVt4t+toy1FeehxCGIC8qgmjIl1hg==";
const ANSWER: &str = r#"{"iv":"r2WDQt56rEAmMuoR","data":"HExs66Ik3el+iM4IpeQ7SMEN934FRLFYOd3EmeaIrpP4EPTHckoco6O+PaoRZRa3lqaPRZT7r52f7LUok6gLxc6cdR8C4vpIIfh4xfLC4L7FNy9GbuMK1hcoi8b7gkWJcwZMkuCFNEDmqn3T49oWzAQOrY4LZnnnykv6oUJotdAsnKvmoJkLK7hRh7M2B1d2UnTnRuoIyarXc5Iojwoghx4BOvnV","authtag":"z2BFD8QctKXTuBlhICGOjQ=="}"#;
const ANSWER_SIGNATURE: &str = "Ht0VfQkkEweJ4hU266C14Aj64H9AXfkwNi5zxUZETCvR2svU1ZYdosDhFX/voLj1TyszqKsVxAlENGt7PPZZ8RQX7jnA4SKhiPUhW4LTbyTenisHJ+ohSfDjYnXavjQsBHspFS+BlPHuSSJ2xyQzw1+HuC6nid09ZL4FnGSYo4OI5MJrSb9xLzIVZMIDuUQchGKi/KaB1KzxECLEZcfjqbAgmxC7qOmuBLyO1WkHYDM95NJrHJWba5xv4wrwPru9yYTJSNRnlM+zrW5w9pOubC4Jtj3szTAEuOz9AcqUmgaAvMLNAIa8hfODLRe3n/cu4SgYlN/ZkNRU4QXVNbPGMg==";

fn config() -> ApiSecurityConfig {
    ApiSecurityConfig {
        sym_key: "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=".into(),
        sym_sn: "fa05fe1e5bcc79b81ad5ad4b58acf787".into(),
        private_key: include_str!("fixtures/api_security/doc_app_private_key.pem").into(),
        private_sn: "97845f6ed842ea860df6fdf65941ff56".into(),
        platform_certs: vec![CertConfig {
            sn: "79ba700ea147819f640941bceb38b1d1".into(),
            pem: include_str!("fixtures/api_security/doc_platform_cert.pem").into(),
        }],
        sign: None,
    }
}

fn keys() -> ApiKeys {
    config().keys().expect("the published keys parse")
}

fn answer_headers() -> AnswerHeaders {
    AnswerHeaders {
        appid: Some(APPID.into()),
        timestamp: Some("1635927956".into()),
        serial: Some("79ba700ea147819f640941bceb38b1d1".into()),
        signature: Some(ANSWER_SIGNATURE.into()),
        serial_deprecated: Some("2171af9cdf1d7404423852e7e183d852".into()),
        signature_deprecated: Some("not checkable: its certificate is not published".into()),
    }
}

#[test]
fn the_published_request_is_reproduced() {
    let k = keys();
    let plain = r#"{"_n":"o89QaPVsRu1yppIZzvSZc4","_appid":"wxba6223c06417af7b","_timestamp":1635927954,"appid":"wxba6223c06417af7b","openid":"oEWzBfmdLqhFS2mTXCo2E4Y9gJAM","scene":0,"client_ip":"127.0.0.1"}"#;
    let iv: [u8; 12] = STANDARD.decode("fmW/zNxXlytUZBgj").unwrap().try_into().unwrap();
    let body = k.seal_with(URLPATH, APPID, 1635927954, plain.as_bytes(), iv);
    assert_eq!(String::from_utf8(body).unwrap(), REQUEST);
}

#[test]
fn signatures_are_wechats_pss_over_the_four_lines() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pss::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let private =
        rsa::RsaPrivateKey::from_pkcs1_pem(include_str!("fixtures/api_security/doc_app_private_key.pem")).unwrap();
    let public = VerifyingKey::<sha2::Sha256>::new(private.to_public_key());
    let m = format!("{URLPATH}\n{APPID}\n1635927954\n{REQUEST}");
    let published = Signature::try_from(STANDARD.decode(REQUEST_SIGNATURE).unwrap().as_slice()).unwrap();
    public
        .verify(m.as_bytes(), &published)
        .expect("the published request signature verifies");
    // wetoken's signature (randomised, so never the same twice) verifies the same way.
    let ours = keys().sign(URLPATH, APPID, 1635927954, REQUEST.as_bytes());
    assert_ne!(ours, REQUEST_SIGNATURE, "PSS is randomised");
    let ours = Signature::try_from(STANDARD.decode(ours).unwrap().as_slice()).unwrap();
    public
        .verify(m.as_bytes(), &ours)
        .expect("wetoken's signature verifies");
    assert!(
        public.verify(format!("{m} ").as_bytes(), &ours).is_err(),
        "over the exact body"
    );
}

#[test]
fn the_published_answer_verifies_and_opens() {
    let (fields, deprecated) = keys()
        .open_answer(URLPATH, APPID, &answer_headers(), ANSWER.as_bytes())
        .expect("the published answer");
    assert!(!deprecated, "verified with the current certificate");
    assert_eq!(
        serde_json::Value::Object(fields),
        json!({"errcode": 0, "errmsg": "getuserriskrank succ", "risk_rank": 0, "unoin_id": 2258658297u64})
    );
}

#[test]
fn a_tampered_or_unknown_answer_is_refused() {
    let k = keys();
    let mut tampered = ANSWER.replace("HExs66Ik", "HExs66Il");
    assert_eq!(
        k.open_answer(URLPATH, APPID, &answer_headers(), tampered.as_bytes()),
        Err(AnswerError::BadSignature)
    );
    tampered = ANSWER.to_owned();
    let mut h = answer_headers();
    h.timestamp = Some("1635927957".into());
    assert_eq!(
        k.open_answer(URLPATH, APPID, &h, tampered.as_bytes()),
        Err(AnswerError::BadSignature),
        "the timestamp is signed"
    );
    let mut h = answer_headers();
    h.serial = Some("00000000000000000000000000000000".into());
    h.serial_deprecated = None;
    assert_eq!(
        k.open_answer(URLPATH, APPID, &h, ANSWER.as_bytes()),
        Err(AnswerError::UnknownCertificate)
    );
    assert_eq!(
        k.open_answer(
            "https://api2.weixin.qq.com/wxa/getuserriskrank",
            APPID,
            &answer_headers(),
            ANSWER.as_bytes()
        ),
        Err(AnswerError::BadSignature),
        "the URL called is signed"
    );
}

#[test]
fn a_request_round_trips_and_the_keys_are_checked() {
    let k = keys();
    let fields = json!({"openid": "oPlainOpenidMarker", "scene": 0})
        .as_object()
        .unwrap()
        .clone();
    let (body, signature) = k.seal_request(URLPATH, APPID, 1700000000, &fields);
    assert!(!signature.is_empty());
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(STANDARD.decode(envelope["iv"].as_str().unwrap()).unwrap().len(), 12);
    // (A marker long enough not to turn up in the base64 of random bytes.)
    assert!(!String::from_utf8_lossy(&body).contains("PlainOpenidMarker"), "sealed");
    // The certificate's validity, never a key.
    let certs = k.certs();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].not_after, 1_820_047_162_000, "2027-09-04T08:39:22Z");
    assert!(
        format!("{k:?} {:?}", config()).find("BEGIN").is_none(),
        "Debug shows no key"
    );

    for broken in [
        ApiSecurityConfig {
            sym_key: "c2hvcnQ=".into(),
            ..config()
        },
        ApiSecurityConfig {
            private_key: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----".into(),
            ..config()
        },
        ApiSecurityConfig {
            platform_certs: vec![],
            ..config()
        },
        ApiSecurityConfig {
            sym_sn: "not/a-sn".into(),
            ..config()
        },
        ApiSecurityConfig {
            sign: Some("some".into()),
            ..config()
        },
    ] {
        assert!(broken.keys().is_err(), "{broken:?}");
    }
}
