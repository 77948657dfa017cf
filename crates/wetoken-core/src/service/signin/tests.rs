use base64::Engine;

use super::*;

#[test]
fn the_user_signature_is_keyed_by_the_session_keys_text() {
    // The doc's example (contract-2 §A.1).
    assert_eq!(
        user_signature("o0q0otL8aEzpcZL/FT9WsQ==", r#"{"foo":"bar"}"#),
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    );
}

#[test]
fn user_data_decrypts_only_with_its_key_and_for_its_app() {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let b64 = base64::engine::general_purpose::STANDARD;
    let (key, iv) = ([7u8; 16], [9u8; 16]);
    let seal = |text: &str| {
        let mut buf = text.as_bytes().to_vec();
        let len = buf.len();
        buf.resize(len + 16, 0);
        let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, len)
            .unwrap()
            .to_vec();
        b64.encode(ct)
    };
    let data = seal(r#"{"phoneNumber":"13800000000","watermark":{"appid":"wxmp","timestamp":1}}"#);
    let (k, v) = (b64.encode(key), b64.encode(iv));
    let plain = decrypt_user_data(&k, &data, &v, "wxmp").unwrap();
    assert_eq!(plain["phoneNumber"], "13800000000");
    assert!(
        decrypt_user_data(&k, &data, &v, "wxother").is_err(),
        "another app's watermark"
    );
    assert!(
        decrypt_user_data(&b64.encode([8u8; 16]), &data, &v, "wxmp").is_err(),
        "another key"
    );
    assert!(decrypt_user_data(&k, &data, "short", "wxmp").is_err());
    assert!(decrypt_user_data(&k, "!!!", &v, "wxmp").is_err());
    assert!(
        decrypt_user_data(&k, &seal("[1]"), &v, "wxmp").is_err(),
        "not an object"
    );
}

#[test]
fn rids_are_read_from_wechats_message() {
    let e = UpstreamError::WeChat {
        errcode: 40029,
        errmsg: "invalid code rid: 6612-abc".into(),
    };
    assert_eq!(e.rid().as_deref(), Some("6612-abc"));
    assert_eq!(UpstreamError::Status(500).rid(), None);
}
