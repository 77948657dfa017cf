//! WeChat's callback message crypto (WXBizMsgCrypt), identical for Official
//! Accounts, the Open Platform and WeCom (SPEC §5; reference §6):
//!
//! - key = base64(EncodingAESKey + "="), 32 bytes. WeChat's 43-character keys
//!   leave non-zero bits in the last character, which strict base64 refuses:
//!   trailing bits are allowed here, as every official SDK does;
//! - AES-256-CBC, IV = key[..16], plaintext = 16 random bytes ‖ u32 BE length ‖
//!   message ‖ receive id, PKCS#7 padded to **32**-byte blocks (so the padding
//!   is checked here, not by a 16-byte PKCS#7 unpadder);
//! - msg_signature = sha1 of the byte-sorted concatenation of token,
//!   timestamp, nonce and the ciphertext, compared in constant time.
//!
//! Tested against Tencent's published samples and against vectors generated
//! with wechatpy (tests/fixtures).

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::alphabet::STANDARD as ALPHABET;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use sha1::{Digest, Sha1};

use crate::secret::ct_eq;

const BLOCK: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("EncodingAESKey must be 43 characters of A-Z a-z 0-9")]
    AesKey,
    #[error("msg_signature does not match")]
    Signature,
    #[error("the message is not valid base64")]
    Base64,
    #[error("the message cannot be decrypted")]
    Decrypt,
    #[error("the decrypted message is malformed")]
    Buffer,
    #[error("the message is addressed to another appid / receive id")]
    ReceiveId,
}

/// One account's callback crypto: its token, EncodingAESKey and receive id
/// (component appid, suite_id, corpid, …).
#[derive(Clone)]
pub struct MsgCrypt {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

/// Decodes an EncodingAESKey, allowing the non-zero trailing bits of WeChat's keys.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<[u8; 32], CryptError> {
    if encoding_aes_key.len() != 43 || !encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CryptError::AesKey);
    }
    let lenient = GeneralPurpose::new(
        &ALPHABET,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    lenient
        .decode(format!("{encoding_aes_key}="))
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(CryptError::AesKey)
}

/// sha1 hex of the sorted concatenation of the parts.
pub fn sha1_sorted(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

impl MsgCrypt {
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, CryptError> {
        Ok(MsgCrypt {
            token: token.to_owned(),
            key: decode_aes_key(encoding_aes_key)?,
            receive_id: receive_id.to_owned(),
        })
    }

    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// The same token and key for another receive id (a suite's data
    /// callback seals for each corp).
    pub fn for_receiver(&self, receive_id: &str) -> Self {
        MsgCrypt {
            receive_id: receive_id.to_owned(),
            ..self.clone()
        }
    }

    /// The msg_signature of a ciphertext.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        sha1_sorted(&[&self.token, timestamp, nonce, encrypt])
    }

    /// Checks a presented msg_signature, in constant time.
    pub fn verify(&self, msg_signature: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Result<(), CryptError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        if ct_eq(expected.as_bytes(), msg_signature.to_ascii_lowercase().as_bytes()) {
            Ok(())
        } else {
            Err(CryptError::Signature)
        }
    }

    /// Verifies the signature, then decrypts and checks the receive id.
    pub fn open(&self, msg_signature: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Result<String, CryptError> {
        self.verify(msg_signature, timestamp, nonce, encrypt)?;
        self.decrypt(encrypt)
    }

    /// Decrypts a ciphertext addressed to this receive id.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptError> {
        let (message, receive_id) = self.decrypt_any(encrypt)?;
        if receive_id != self.receive_id {
            return Err(CryptError::ReceiveId);
        }
        Ok(message)
    }

    /// Decrypts, returning the message and the receive id it carries.
    pub fn decrypt_any(&self, encrypt: &str) -> Result<(String, String), CryptError> {
        let mut buf = STANDARD.decode(encrypt.trim()).map_err(|_| CryptError::Base64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptError::Decrypt);
        }
        let dec = cbc::Decryptor::<aes::Aes256>::new((&self.key).into(), self.key[..16].into());
        let plain = dec
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptError::Decrypt)?;
        let pad = *plain.last().ok_or(CryptError::Buffer)? as usize;
        if pad == 0
            || pad > BLOCK
            || pad > plain.len()
            || !plain[plain.len() - pad..].iter().all(|&b| b as usize == pad)
        {
            return Err(CryptError::Buffer);
        }
        let content = &plain[..plain.len() - pad];
        if content.len() < 20 {
            return Err(CryptError::Buffer);
        }
        let len = u32::from_be_bytes(content[16..20].try_into().expect("4 bytes")) as usize;
        let rest = &content[20..];
        if len > rest.len() {
            return Err(CryptError::Buffer);
        }
        let message = String::from_utf8(rest[..len].to_vec()).map_err(|_| CryptError::Buffer)?;
        let receive_id = String::from_utf8(rest[len..].to_vec()).map_err(|_| CryptError::Buffer)?;
        Ok((message, receive_id))
    }

    /// Encrypts a message with a fresh random prefix.
    pub fn encrypt(&self, message: &str) -> String {
        let mut random = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut random);
        self.encrypt_with(&random, message)
    }

    /// Encrypts with a given 16-byte prefix (deterministic; for tests).
    pub fn encrypt_with(&self, random: &[u8; 16], message: &str) -> String {
        let mut buf = Vec::with_capacity(16 + 4 + message.len() + self.receive_id.len() + BLOCK);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&(message.len() as u32).to_be_bytes());
        buf.extend_from_slice(message.as_bytes());
        buf.extend_from_slice(self.receive_id.as_bytes());
        let pad = BLOCK - buf.len() % BLOCK;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let len = buf.len();
        let enc = cbc::Encryptor::<aes::Aes256>::new((&self.key).into(), self.key[..16].into());
        let ct = enc
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("the buffer is a whole number of blocks");
        STANDARD.encode(ct)
    }

    /// A passive reply sealed for WeChat (contract-2 §B.2): `Encrypt`,
    /// `MsgSignature`, `TimeStamp`, `Nonce`, in XML or (a Mini Program's
    /// JSON format) JSON.
    pub fn seal_reply(&self, message: &str, timestamp: i64, nonce: &str, json: bool) -> String {
        reply_envelope(&self.encrypt(message), &self.token, timestamp, nonce, json)
    }

    /// The encrypted, signed envelope WeChat pushes (and a passive reply):
    /// `(query msg_signature, body)`. `outer` names the id element:
    /// `AppId` for Open Platform pushes, `ToUserName` otherwise.
    pub fn seal_push(&self, outer: &str, message: &str, timestamp: &str, nonce: &str) -> (String, String) {
        let encrypt = self.encrypt(message);
        let signature = self.signature(timestamp, nonce, &encrypt);
        let body = format!(
            "<xml><{outer}><![CDATA[{id}]]></{outer}><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
            id = self.receive_id
        );
        (signature, body)
    }
}

/// The envelope of an encrypted passive reply, signed with `token`.
pub fn reply_envelope(encrypt: &str, token: &str, timestamp: i64, nonce: &str, json: bool) -> String {
    let ts = timestamp.to_string();
    let signature = sha1_sorted(&[token, &ts, nonce, encrypt]);
    if json {
        serde_json::json!({"Encrypt": encrypt, "MsgSignature": signature, "TimeStamp": timestamp, "Nonce": nonce})
            .to_string()
    } else {
        // A nonce WeChat sent is digits; CDATA cannot hold "]]>".
        let nonce = nonce.replace("]]>", "");
        format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>\
             <TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Tencent's published WXBizMsgCrypt sample (WeCom; the same algorithm everywhere).
    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const CORPID: &str = "wx5823bf96d3bd56c7";

    #[test]
    fn published_url_verification_sample() {
        let c = MsgCrypt::new(TOKEN, KEY, CORPID).unwrap();
        let echo = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
        let plain = c
            .open(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                "1409659589",
                "263014780",
                echo,
            )
            .unwrap();
        assert_eq!(plain, "1616140317555161061");
        assert_eq!(
            c.open(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4",
                "1409659589",
                "263014780",
                echo
            ),
            Err(CryptError::Signature)
        );
    }

    #[test]
    fn published_message_sample() {
        let c = MsgCrypt::new(TOKEN, KEY, CORPID).unwrap();
        let encrypt = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
        let plain = c
            .open(
                "477715d11cdb4164915debcba66cb864d751f3e6",
                "1409659813",
                "1372623149",
                encrypt,
            )
            .unwrap();
        assert!(plain.contains("<Content><![CDATA[hello]]></Content>"), "{plain}");
        assert!(plain.contains('\n'), "the plaintext is not normalised");
        let other = MsgCrypt::new(TOKEN, KEY, "wxsomeoneelse").unwrap();
        assert_eq!(other.decrypt(encrypt), Err(CryptError::ReceiveId));
    }

    #[derive(Deserialize)]
    struct Vectors {
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        token: String,
        encoding_aes_key: String,
        receive_id: String,
        random: String,
        timestamp: String,
        nonce: String,
        message: String,
        encrypt: String,
        msg_signature: String,
    }

    /// Vectors from wechatpy (an independent implementation); see
    /// tests/fixtures/gen_wxbizmsgcrypt.py for how they were made.
    #[test]
    fn matches_wechatpy_vectors() {
        let v: Vectors = serde_json::from_str(include_str!("../tests/fixtures/wxbizmsgcrypt_wechatpy.json")).unwrap();
        assert!(v.cases.len() >= 50);
        for (i, c) in v.cases.iter().enumerate() {
            let m = MsgCrypt::new(&c.token, &c.encoding_aes_key, &c.receive_id).unwrap();
            assert_eq!(
                m.signature(&c.timestamp, &c.nonce, &c.encrypt),
                c.msg_signature,
                "case {i}: signature"
            );
            assert_eq!(
                m.open(&c.msg_signature, &c.timestamp, &c.nonce, &c.encrypt).unwrap(),
                c.message,
                "case {i}"
            );
            let random: [u8; 16] = c.random.as_bytes().try_into().unwrap();
            assert_eq!(
                m.encrypt_with(&random, &c.message),
                c.encrypt,
                "case {i}: encryption byte for byte"
            );
        }
    }

    #[test]
    fn keys_with_trailing_bits_are_accepted_and_bad_keys_refused() {
        assert_eq!(decode_aes_key(&"A".repeat(43)).unwrap(), [0u8; 32]);
        assert!(decode_aes_key(KEY).is_ok(), "non-canonical last character");
        assert_eq!(decode_aes_key("short"), Err(CryptError::AesKey));
        assert_eq!(decode_aes_key(&format!("{}+", &KEY[..42])), Err(CryptError::AesKey));
    }

    #[test]
    fn round_trips_and_refuses_tampering() {
        let c = MsgCrypt::new("tok", KEY, "wxc").unwrap();
        for msg in ["", "x", &"y".repeat(12), &"z".repeat(1000), "中文 🙂"] {
            let e = c.encrypt(msg);
            assert_eq!(c.decrypt(&e).unwrap(), msg);
            assert_ne!(c.encrypt(msg), e, "fresh random prefix");
        }
        let e = c.encrypt("hello");
        let mut raw = STANDARD.decode(&e).unwrap();
        let n = raw.len();
        raw[n - 1] ^= 1;
        assert!(
            c.decrypt(&STANDARD.encode(&raw)).is_err(),
            "a flipped bit breaks the padding check"
        );
        assert_eq!(c.decrypt("not base64!"), Err(CryptError::Base64));
        assert_eq!(c.decrypt("AAAA"), Err(CryptError::Decrypt));
        let (sig, body) = c.seal_push("AppId", "<xml/>", "1", "2");
        assert!(body.starts_with("<xml><AppId><![CDATA[wxc]]></AppId><Encrypt><![CDATA["));
        let enc = body
            .split("<Encrypt><![CDATA[")
            .nth(1)
            .unwrap()
            .split("]]>")
            .next()
            .unwrap();
        assert_eq!(c.open(&sig, "1", "2", enc).unwrap(), "<xml/>");
    }
}
