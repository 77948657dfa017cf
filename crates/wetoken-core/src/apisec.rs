//! WeChat's server-API security for Mini Programs (API安全鉴权; SPEC §15,
//! contract-2 §C), as pure functions of an account's keys:
//!
//! - a request's fields (URL and POST parameters without `access_token`,
//!   plus `_n`, `_appid`, `_timestamp`) sealed with AES-256-GCM under the
//!   symmetric key, associated data `urlpath|appid|timestamp|sym_sn`, into
//!   `{"iv","data","authtag"}`;
//! - that exact body signed with RSASSA-PSS (SHA-256, MGF1-SHA-256, salt
//!   32) over `urlpath\nappid\ntimestamp\nbody`;
//! - an answer's signature checked against the platform certificate its
//!   `Wechatmp-Serial` (or, during WeChat's rotation,
//!   `Wechatmp-Serial-Deprecated`) names, then opened with the answer's own
//!   timestamp in the associated data, its `_appid` and `_timestamp`
//!   checked and the three fields removed.
//!
//! The published `getuserriskrank` vectors are reproduced in
//! `tests/api_security_vectors.rs`.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::DecodePem;
use x509_cert::spki::DecodePublicKey;

use crate::domain::ParseError;

/// An account's `api_security` block as given (SPEC §15): sealed with the
/// account's secrets, never handed out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSecurityConfig {
    /// Base64 of the 32-byte AES-256-GCM key (API 对称密钥).
    pub sym_key: String,
    pub sym_sn: String,
    /// The app's RSA private key, PKCS#1 or PKCS#8 PEM (API 非对称密钥).
    pub private_key: String,
    pub private_sn: String,
    /// The platform certificates WeChat signs answers with: the current
    /// one and, during a rotation, the next or the deprecated one.
    pub platform_certs: Vec<CertConfig>,
    /// `"all"`: every call through `/proxy/` is signed, not only those
    /// that must be (`intracity/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<String>,
}

impl std::fmt::Debug for ApiSecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSecurityConfig")
            .field("sym_sn", &self.sym_sn)
            .field("private_sn", &self.private_sn)
            .field(
                "platform_certs",
                &self.platform_certs.iter().map(|c| &c.sn).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A platform certificate: its number on the MP admin page (证书编号, not
/// the X.509 serial) and its PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    pub sn: String,
    pub pem: String,
}

/// A platform certificate as shown (never a key): its number and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertView {
    pub sn: String,
    /// Epoch milliseconds.
    pub not_before: i64,
    pub not_after: i64,
}

struct Cert {
    view: CertView,
    /// The certificate's RSA key (modulus, exponent) for ring's PSS check.
    key: ring::signature::RsaPublicKeyComponents<Vec<u8>>,
}

/// The keys of one account, checked and ready.
pub struct ApiKeys {
    sym: Aes256Gcm,
    sym_sn: String,
    /// The app key, for ring's constant-time RSASSA-PSS (SHA-256, salt 32):
    /// bench (i) measured the `rsa` crate's blinded signing at ~4.7 ms a
    /// call on the CI machine.
    signer: ring::signature::RsaKeyPair,
    private_sn: String,
    certs: Vec<Cert>,
    sign_all: bool,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("sym_sn", &self.sym_sn)
            .field("private_sn", &self.private_sn)
            .finish_non_exhaustive()
    }
}

/// What a signed call's answer carried in its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerHeaders {
    pub appid: Option<String>,
    pub timestamp: Option<String>,
    pub serial: Option<String>,
    pub signature: Option<String>,
    pub serial_deprecated: Option<String>,
    pub signature_deprecated: Option<String>,
}

/// Why an answer is not passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer names no platform certificate this account holds")]
    UnknownCertificate,
    #[error("the answer's signature does not verify")]
    BadSignature,
    #[error("the answer lacks {0}")]
    Missing(&'static str),
    #[error("the answer does not decrypt: {0}")]
    Undecryptable(&'static str),
    #[error("the answer is for another appid or time")]
    Mismatch,
}

fn bad(field: &str, why: impl std::fmt::Display) -> ParseError {
    ParseError(format!("api_security.{field}: {why}"))
}

/// An sn: 1–64 letters and digits.
fn check_sn(field: &str, sn: &str) -> Result<(), ParseError> {
    if sn.is_empty() || sn.len() > 64 || !sn.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad(field, "1 to 64 letters and digits"));
    }
    Ok(())
}

/// A certificate's validity as epoch milliseconds.
fn millis(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
}

/// What may be shown of a block (SPEC §15): the sns, whether every call is
/// signed, the certificates' validity; never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSecuritySummary {
    pub sym_sn: String,
    pub private_sn: String,
    pub sign_all: bool,
    pub certs: Vec<CertView>,
}

/// A certificate's number and validity, and its RSA key.
fn parse_cert(c: &CertConfig) -> Result<(CertView, RsaPublicKey), ParseError> {
    check_sn("platform_certs.sn", &c.sn)?;
    let cert = Certificate::from_pem(c.pem.trim().as_bytes()).map_err(|_| {
        bad(
            "platform_certs.pem",
            format!("{}: not an X.509 certificate in PEM", c.sn),
        )
    })?;
    let spki = x509_cert::der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)
        .map_err(|_| bad("platform_certs.pem", format!("{}: no public key", c.sn)))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|_| bad("platform_certs.pem", format!("{}: not an RSA key", c.sn)))?;
    let validity = &cert.tbs_certificate.validity;
    let view = CertView {
        sn: c.sn.clone(),
        not_before: millis(&validity.not_before),
        not_after: millis(&validity.not_after),
    };
    Ok((view, key))
}

impl ApiSecurityConfig {
    /// What may be shown of it.
    pub fn summary(&self) -> Result<ApiSecuritySummary, ParseError> {
        Ok(ApiSecuritySummary {
            sym_sn: self.sym_sn.clone(),
            private_sn: self.private_sn.clone(),
            sign_all: self.sign.as_deref() == Some("all"),
            certs: self
                .platform_certs
                .iter()
                .map(|c| parse_cert(c).map(|(v, _)| v))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The keys it holds, each checked: a 32-byte symmetric key, an RSA
    /// private key in PKCS#1 or PKCS#8 PEM, 1–4 X.509 certificates with RSA
    /// keys, `sign` absent or `"all"`.
    pub fn keys(&self) -> Result<ApiKeys, ParseError> {
        check_sn("sym_sn", &self.sym_sn)?;
        check_sn("private_sn", &self.private_sn)?;
        let sym = STANDARD
            .decode(self.sym_key.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| bad("sym_key", "the base64 of 32 bytes (AES256_GCM; SM4 is not supported)"))?;
        let private = RsaPrivateKey::from_pkcs1_pem(self.private_key.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(self.private_key.trim()))
            .map_err(|_| bad("private_key", "an RSA private key in PKCS#1 or PKCS#8 PEM"))?;
        let signer = private
            .to_pkcs1_der()
            .ok()
            .and_then(|der| ring::signature::RsaKeyPair::from_der(der.as_bytes()).ok())
            .ok_or_else(|| bad("private_key", "not a usable RSA key (2048 to 4096 bits)"))?;
        if !(1..=4).contains(&self.platform_certs.len()) {
            return Err(bad("platform_certs", "1 to 4 certificates"));
        }
        let mut certs = Vec::new();
        for c in &self.platform_certs {
            let (view, key) = parse_cert(c)?;
            certs.push(Cert {
                view,
                key: ring::signature::RsaPublicKeyComponents {
                    n: key.n().to_bytes_be(),
                    e: key.e().to_bytes_be(),
                },
            });
        }
        let sign_all = match self.sign.as_deref() {
            None => false,
            Some("all") => true,
            Some(_) => return Err(bad("sign", "absent, or \"all\"")),
        };
        Ok(ApiKeys {
            sym: Aes256Gcm::new_from_slice(&sym).expect("32 bytes"),
            sym_sn: self.sym_sn.clone(),
            signer,
            private_sn: self.private_sn.clone(),
            certs,
            sign_all,
        })
    }
}

/// A fresh `_n`: 16 random bytes, base64 without padding.
fn nonce_field() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// What is signed: `urlpath\nappid\ntimestamp\nbody`.
fn signed_text(urlpath: &str, appid: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{urlpath}\n{appid}\n{ts}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

impl ApiKeys {
    pub fn sym_sn(&self) -> &str {
        &self.sym_sn
    }

    /// The app key's sn (sent as `Wechatmp-Serial`).
    pub fn private_sn(&self) -> &str {
        &self.private_sn
    }

    /// Whether every call is signed (`"sign": "all"`).
    pub fn sign_all(&self) -> bool {
        self.sign_all
    }

    pub fn certs(&self) -> Vec<CertView> {
        self.certs.iter().map(|c| c.view.clone()).collect()
    }

    /// The associated data of a message at `ts`.
    fn aad(&self, urlpath: &str, appid: &str, ts: i64) -> String {
        format!("{urlpath}|{appid}|{ts}|{}", self.sym_sn)
    }

    /// `plain` sealed with IV `iv`: the body `{"iv","data","authtag"}`.
    pub fn seal_with(&self, urlpath: &str, appid: &str, ts: i64, plain: &[u8], iv: [u8; 12]) -> Vec<u8> {
        let aad = self.aad(urlpath, appid, ts);
        let mut sealed = self
            .sym
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM seals any length wetoken sends");
        let tag = sealed.split_off(sealed.len() - 16);
        serde_json::to_vec(&serde_json::json!({
            "iv": STANDARD.encode(iv),
            "data": STANDARD.encode(&sealed),
            "authtag": STANDARD.encode(tag),
        }))
        .expect("JSON of strings")
    }

    /// A request's fields sealed at `ts` (with `_n`, `_appid`,
    /// `_timestamp` added) and the signature of the body: `(body,
    /// Wechatmp-Signature)`.
    pub fn seal_request(&self, urlpath: &str, appid: &str, ts: i64, fields: &Map<String, Value>) -> (Vec<u8>, String) {
        let mut plain = Map::new();
        plain.insert("_n".into(), Value::from(nonce_field()));
        plain.insert("_appid".into(), Value::from(appid));
        plain.insert("_timestamp".into(), Value::from(ts));
        for (k, v) in fields {
            if !matches!(k.as_str(), "_n" | "_appid" | "_timestamp") {
                plain.insert(k.clone(), v.clone());
            }
        }
        let text = serde_json::to_vec(&Value::Object(plain)).expect("JSON");
        let body = self.seal_with(urlpath, appid, ts, &text, rand::random());
        let signature = self.sign(urlpath, appid, ts, &body);
        (body, signature)
    }

    /// RSASSA-PSS (SHA-256, salt 32) of `urlpath\nappid\nts\nbody`, base64.
    pub fn sign(&self, urlpath: &str, appid: &str, ts: i64, body: &[u8]) -> String {
        let mut sig = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &ring::signature::RSA_PSS_SHA256,
                &ring::rand::SystemRandom::new(),
                &signed_text(urlpath, appid, ts, body),
                &mut sig,
            )
            .expect("ring signs with a key it accepted");
        STANDARD.encode(sig)
    }

    /// Checks a signed answer and opens it: its plain fields (without
    /// `_n`, `_appid`, `_timestamp`), and whether it was verified with a
    /// certificate WeChat marks deprecated.
    pub fn open_answer(
        &self,
        urlpath: &str,
        appid: &str,
        h: &AnswerHeaders,
        body: &[u8],
    ) -> Result<(Map<String, Value>, bool), AnswerError> {
        let ts_text = h
            .timestamp
            .as_deref()
            .ok_or(AnswerError::Missing("Wechatmp-TimeStamp"))?;
        let ts: i64 = ts_text
            .trim()
            .parse()
            .map_err(|_| AnswerError::Missing("a numeric Wechatmp-TimeStamp"))?;
        if h.appid.as_deref().is_some_and(|a| a != appid) {
            return Err(AnswerError::Mismatch);
        }
        let m = signed_text(urlpath, appid, ts, body);
        let pairs = [
            (h.serial.as_deref(), h.signature.as_deref(), false),
            (h.serial_deprecated.as_deref(), h.signature_deprecated.as_deref(), true),
        ];
        let mut known = false;
        let mut verified = None;
        for (serial, sig, deprecated) in pairs {
            let (Some(serial), Some(sig)) = (serial, sig) else {
                continue;
            };
            let Some(cert) = self.certs.iter().find(|c| c.view.sn == serial) else {
                continue;
            };
            known = true;
            let ok = STANDARD.decode(sig.trim()).ok().is_some_and(|s| {
                cert.key
                    .verify(&ring::signature::RSA_PSS_2048_8192_SHA256, &m, &s)
                    .is_ok()
            });
            if ok {
                verified = Some(deprecated);
                break;
            }
        }
        let deprecated = match (known, verified) {
            (_, Some(d)) => d,
            (false, None) => return Err(AnswerError::UnknownCertificate),
            (true, None) => return Err(AnswerError::BadSignature),
        };
        let envelope: Value = serde_json::from_slice(body).map_err(|_| AnswerError::Undecryptable("not JSON"))?;
        let field = |k: &'static str| {
            envelope
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or(AnswerError::Undecryptable(k))
        };
        let (iv, mut data, tag) = (field("iv")?, field("data")?, field("authtag")?);
        if iv.len() != 12 || tag.len() != 16 {
            return Err(AnswerError::Undecryptable("iv or authtag of the wrong length"));
        }
        data.extend_from_slice(&tag);
        let aad = self.aad(urlpath, appid, ts);
        let plain = self
            .sym
            .decrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &data,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| AnswerError::Undecryptable("the tag does not check"))?;
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&plain) else {
            return Err(AnswerError::Undecryptable("not a JSON object inside"));
        };
        let stamped = fields.remove("_timestamp").and_then(|v| v.as_i64());
        let for_app = fields.remove("_appid");
        fields.remove("_n");
        if for_app.as_ref().and_then(Value::as_str) != Some(appid) || stamped != Some(ts) {
            return Err(AnswerError::Mismatch);
        }
        Ok((fields, deprecated))
    }
}

/// Whether a call to `path` (after the base, e.g. `cgi-bin/express/intracity/createstore`)
/// is signed: `intracity/*` always (WeChat refuses it unsigned, 934011)
/// but its `apply`; every other when the account signs all; uploads never
/// (WeChat does not support them: the caller's multipart body passes as it is).
pub fn must_sign(path: &str, sign_all: bool, upload: bool) -> bool {
    if upload {
        return false;
    }
    let path = path.trim_start_matches('/');
    if let Some(rest) = path.strip_prefix("cgi-bin/express/intracity/") {
        return rest != "apply";
    }
    sign_all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_calls_are_signed() {
        assert!(must_sign("cgi-bin/express/intracity/createstore", false, false));
        assert!(must_sign("/cgi-bin/express/intracity/preaddorder", false, false));
        assert!(!must_sign("cgi-bin/express/intracity/apply", false, false));
        assert!(!must_sign("wxa/getuserriskrank", false, false));
        assert!(must_sign("wxa/getuserriskrank", true, false));
        assert!(!must_sign("cgi-bin/media/upload", true, true));
    }
}
