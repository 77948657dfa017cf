//! Server-API security (API安全鉴权, contract-2 §C) from WeChat's side,
//! written apart from wetoken's client (`wetoken_core::apisec` is not used
//! here): the simulator checks what a signed call carries and answers
//! sealed and signed with a platform key of its own.
//!
//! | case | WeChat answers |
//! |---|---|
//! | `intracity/*` (but `apply`) without `Wechatmp-*` headers | 934011 signature is needed |
//! | another supporting API without them | answered in plain JSON |
//! | a header missing | 40233 (appid), 40231 (timestamp), 40232 (signature) |
//! | `Wechatmp-Appid` neither the token's account nor a component it authorized | 40237 |
//! | no keys registered for that appid | 40238 |
//! | the RSASSA-PSS signature over `urlpath\nappid\nts\nbody` fails | 40234 |
//! | the body does not open (AES-256-GCM, `urlpath\|appid\|ts\|sym_sn`) | 40235 |
//! | `_appid` or `_timestamp` not the headers', or the time 300 s off | 40240 |
//! | the call | its answer sealed with a new timestamp and signed by the platform key: `Wechatmp-Appid`, `-TimeStamp`, `-Serial` (the certificate's number), `-Signature`; during a rotation also `-Serial-Deprecated` and `-Signature-Deprecated` by the old key |
//!
//! Errors come as plain JSON, HTTP 200. The platform key and its
//! certificate are made at first use; `rotate_platform_certificate` makes
//! a new one and keeps signing with the old as deprecated;
//! `tamper_answers` spoils the next answers' signatures.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs8::EncodePublicKey;
use rsa::pss::{BlindedSigningKey, Signature, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use super::*;

/// An app's (or a component's) keys as registered at WeChat: the
/// symmetric key and the public half of its signing key.
#[derive(Clone)]
pub struct AppKeys {
    sym: Vec<u8>,
    sym_sn: String,
    public: RsaPublicKey,
}

/// WeChat's platform key and its certificate.
#[derive(Clone)]
pub struct PlatformKey {
    key: RsaPrivateKey,
    pub sn: String,
    pub cert_pem: String,
}

#[derive(Default)]
pub struct ApiSecurity {
    apps: HashMap<String, AppKeys>,
    current: Option<PlatformKey>,
    deprecated: Option<PlatformKey>,
    tamper: u32,
    /// What signed calls carried, opened: (appid in the header, fields).
    pub received: Vec<(String, Value)>,
}

/// A signed call as it arrived.
pub struct SignedCall<'a> {
    /// The URL called, scheme and host included, without the query.
    pub urlpath: String,
    /// The API's path after the host.
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub headers: &'a axum::http::HeaderMap,
    pub body: &'a [u8],
}

/// What the simulator answers: headers and body.
pub struct SignedAnswer {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ApiSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSecurity")
            .field("apps", &self.apps.keys().collect::<Vec<_>>())
            .field("platform", &self.current.as_ref().map(|p| &p.sn))
            .finish_non_exhaustive()
    }
}

fn plain(v: Value) -> SignedAnswer {
    SignedAnswer {
        headers: Vec::new(),
        body: v.to_string().into_bytes(),
    }
}

/// A new RSA-2048 key and a self-issued certificate for it, valid for
/// `days` from now.
fn new_platform_key(days: u32) -> PlatformKey {
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::Validity;
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("an RSA key");
    let spki_der = key.to_public_key().to_public_key_der().expect("a public key");
    let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).expect("SPKI");
    let validity = Validity::from_now(std::time::Duration::from_secs(u64::from(days) * 86_400)).expect("validity");
    let subject = Name::from_str("CN=wxsim platform,OU=WxgMp,O=Tencent Inc.,C=CN").expect("a name");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let serial = SerialNumber::from(rand::random::<u32>());
    let cert = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)
        .expect("a certificate builder")
        .build::<rsa::pkcs1v15::Signature>()
        .expect("a certificate");
    PlatformKey {
        key,
        sn: hex::encode(rand::random::<[u8; 16]>()),
        cert_pem: cert.to_pem(x509_cert::der::pem::LineEnding::LF).expect("PEM"),
    }
}

fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

impl ApiSecurity {
    /// Registers `appid`'s keys (base64 symmetric key, its sn, the public
    /// key in SPKI PEM).
    pub fn register(&mut self, appid: &str, sym_b64: &str, sym_sn: &str, public_pem: &str) -> Result<(), String> {
        use rsa::pkcs8::DecodePublicKey;
        let sym = STANDARD.decode(sym_b64).map_err(|e| e.to_string())?;
        let public = RsaPublicKey::from_public_key_pem(public_pem).map_err(|e| e.to_string())?;
        self.apps.insert(
            appid.to_owned(),
            AppKeys {
                sym,
                sym_sn: sym_sn.to_owned(),
                public,
            },
        );
        Ok(())
    }

    /// The current platform certificate (made at first use): (sn, PEM).
    pub fn platform(&mut self) -> (String, String) {
        let p = self.current.get_or_insert_with(|| new_platform_key(365));
        (p.sn.clone(), p.cert_pem.clone())
    }

    /// A new platform key and certificate (valid `days`); the old one
    /// signs too, as deprecated, until the next rotation.
    pub fn rotate(&mut self, days: u32) -> (String, String) {
        let next = new_platform_key(days);
        let shown = (next.sn.clone(), next.cert_pem.clone());
        self.deprecated = self.current.replace(next);
        shown
    }

    /// The next `n` answers carry a signature that does not verify.
    pub fn tamper_answers(&mut self, n: u32) {
        self.tamper = n;
    }

    fn sign(key: &RsaPrivateKey, m: &[u8]) -> String {
        let signer = BlindedSigningKey::<Sha256>::new(key.clone());
        STANDARD.encode(signer.sign_with_rng(&mut rand::rngs::OsRng, m).to_bytes())
    }
}

impl World {
    /// A call to an API that supports signing: checked and opened when
    /// signed, answered by `answer(fields)` sealed and signed.
    pub fn signed_call(
        &mut self,
        call: &SignedCall<'_>,
        now: i64,
        answer: impl FnOnce(&Value) -> Value,
    ) -> SignedAnswer {
        let token_appid = match self.business(call.token, now) {
            Err(e) => return plain(e),
            Ok(()) => call
                .token
                .and_then(|t| self.tokens.get(t))
                .map(|t| t.appid.clone())
                .unwrap_or_default(),
        };
        let h = call.headers;
        let mandatory = call
            .path
            .strip_prefix("/cgi-bin/express/intracity/")
            .is_some_and(|op| op != "apply");
        let (appid, ts, signature) = (
            header(h, "wechatmp-appid"),
            header(h, "wechatmp-timestamp"),
            header(h, "wechatmp-signature"),
        );
        if appid.is_none() && ts.is_none() && signature.is_none() {
            if mandatory {
                return plain(err(
                    934011,
                    "signature is needed, please refer document for help [https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/getting_started/api_signature.html]",
                ));
            }
            let fields = serde_json::from_slice::<Value>(call.body).unwrap_or(Value::Null);
            return plain(answer(&fields));
        }
        let Some(appid) = appid else {
            return plain(err(40233, "API_Missing_Wechatmp_Appid"));
        };
        let Some(ts_text) = ts else {
            return plain(err(40231, "API_Missing_Wechatmp_Timestamp"));
        };
        let Some(signature) = signature else {
            return plain(err(40232, "API_Missing_Wechatmp_Signature"));
        };
        let own = appid == token_appid || self.is_authorized(appid, &token_appid);
        if !own {
            return plain(err(40237, "invalid Wechatmp-Appid match request"));
        }
        let Some(keys) = self.api_security.apps.get(appid).cloned() else {
            return plain(err(40238, "developer secret sym serial not existed"));
        };
        let Ok(ts) = ts_text.parse::<i64>() else {
            return plain(err(40240, "API_Expired_Wechatmp_Timestamp"));
        };
        let mut m = format!("{}\n{appid}\n{ts}\n", call.urlpath).into_bytes();
        m.extend_from_slice(call.body);
        let verified = STANDARD
            .decode(signature)
            .ok()
            .and_then(|b| Signature::try_from(b.as_slice()).ok())
            .is_some_and(|s| VerifyingKey::<Sha256>::new(keys.public.clone()).verify(&m, &s).is_ok());
        if !verified {
            return plain(err(40234, "invalid signature"));
        }
        let aad = format!("{}|{appid}|{ts}|{}", call.urlpath, keys.sym_sn);
        let opened = serde_json::from_slice::<Value>(call.body).ok().and_then(|e| {
            let f = |k: &str| e.get(k).and_then(Value::as_str).and_then(|s| STANDARD.decode(s).ok());
            let (iv, mut data, tag) = (f("iv")?, f("data")?, f("authtag")?);
            data.extend_from_slice(&tag);
            let cipher = Aes256Gcm::new_from_slice(&keys.sym).ok()?;
            let plain = cipher
                .decrypt(
                    Nonce::from_slice(iv.get(..12)?),
                    Payload {
                        msg: &data,
                        aad: aad.as_bytes(),
                    },
                )
                .ok()?;
            serde_json::from_slice::<Value>(&plain).ok()
        });
        let Some(mut fields) = opened else {
            return plain(err(40235, "API_Invalid_Encrypt"));
        };
        if fields["_appid"] != appid || fields["_timestamp"].as_i64() != Some(ts) || (now / 1000 - ts).abs() > 300 {
            return plain(err(40240, "API_Expired_Wechatmp_Timestamp"));
        }
        if let Some(o) = fields.as_object_mut() {
            for k in ["_n", "_appid", "_timestamp"] {
                o.remove(k);
            }
        }
        self.api_security.received.push((appid.to_owned(), fields.clone()));
        // The answer, sealed at a new time and signed.
        let out_ts = now / 1000 + 1;
        let mut reply = answer(&fields);
        if let Some(o) = reply.as_object_mut() {
            o.insert("_n".into(), Value::from(hex::encode(rand::random::<[u8; 8]>())));
            o.insert("_appid".into(), Value::from(appid));
            o.insert("_timestamp".into(), Value::from(out_ts));
        }
        let aad = format!("{}|{appid}|{out_ts}|{}", call.urlpath, keys.sym_sn);
        let iv: [u8; 12] = rand::random();
        let cipher = Aes256Gcm::new_from_slice(&keys.sym).expect("a 32-byte key");
        let mut sealed = cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: reply.to_string().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("sealed");
        let tag = sealed.split_off(sealed.len() - 16);
        let body = serde_json::json!({"iv": STANDARD.encode(iv), "data": STANDARD.encode(&sealed), "authtag": STANDARD.encode(tag)})
            .to_string()
            .into_bytes();
        let mut m = format!("{}\n{appid}\n{out_ts}\n", call.urlpath).into_bytes();
        m.extend_from_slice(&body);
        self.api_security.platform();
        let sec = &mut self.api_security;
        let current = sec.current.as_ref().expect("made above");
        let mut signature = ApiSecurity::sign(&current.key, &m);
        if sec.tamper > 0 {
            sec.tamper -= 1;
            signature = ApiSecurity::sign(&current.key, b"something else");
        }
        let mut headers = vec![
            ("Wechatmp-Appid", appid.to_owned()),
            ("Wechatmp-TimeStamp", out_ts.to_string()),
            ("Wechatmp-Serial", current.sn.clone()),
            ("Wechatmp-Signature", signature),
        ];
        if let Some(old) = &sec.deprecated {
            headers.push(("Wechatmp-Serial-Deprecated", old.sn.clone()));
            headers.push(("Wechatmp-Signature-Deprecated", ApiSecurity::sign(&old.key, &m)));
        }
        SignedAnswer { headers, body }
    }
}
