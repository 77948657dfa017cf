//! What a session key does: WeChat's user-session signature and the
//! decryption of what a Mini Program sends its server.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{AccountId, Result, ServiceError};

/// WeChat's user-session signature: hex HMAC-SHA256 of `message` keyed by
/// the session key's text (contract-2 §A.1; the doc's example is a test).
pub fn user_signature(session_key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What a session key is bound to when sealed.
pub(super) fn binding(id: &AccountId, openid: &str) -> String {
    format!("session_key:{id}:{openid}")
}

/// Decrypts what a Mini Program sent its server (`encrypted_data`, `iv`,
/// base64) with the user's session key: AES-128-CBC, PKCS#7, a JSON object
/// whose `watermark.appid` must be `appid`.
pub fn decrypt_user_data(session_key: &str, encrypted_data: &str, iv: &str, appid: &str) -> Result<Value> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let b64 = base64::engine::general_purpose::STANDARD;
    let invalid = |m: &str| ServiceError::Invalid(m.to_owned());
    let key: [u8; 16] = b64
        .decode(session_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ServiceError::Unavailable("the kept session_key is not 16 bytes of base64".into()))?;
    let iv: [u8; 16] = b64
        .decode(iv)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| invalid("iv must be 16 bytes of base64"))?;
    let mut data = b64
        .decode(encrypted_data)
        .map_err(|_| invalid("encrypted_data must be base64"))?;
    let plain = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut data)
        .map_err(|_| invalid("encrypted_data does not decrypt with this user's session_key"))?;
    let v: Value = serde_json::from_slice(plain)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("encrypted_data does not decrypt with this user's session_key"))?;
    if v.pointer("/watermark/appid").and_then(Value::as_str) != Some(appid) {
        return Err(invalid(
            "the data was not sealed for this account (its watermark names another appid)",
        ));
    }
    Ok(v)
}
