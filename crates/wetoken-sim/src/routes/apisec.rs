//! The APIs the simulator answers with API security (`rules::apisec`):
//! the risk-control API of WeChat's example and same-city delivery, and
//! the handle's controls for keys, the platform certificate and tampering.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::*;
use crate::rules::apisec::SignedCall;

/// Endpoint names for counters and faults.
pub const RISK_RANK: &str = "wxa/getuserriskrank";
pub const INTRACITY: &str = "express/intracity";

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/wxa/getuserriskrank", post(risk_rank))
        .route("/cgi-bin/express/intracity/{op}", post(intracity))
}

async fn risk_rank(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    secured(
        &s,
        RISK_RANK,
        &q,
        &uri,
        &headers,
        &body,
        |_| json!({"errcode": 0, "errmsg": "getuserriskrank succ", "risk_rank": 0, "unoin_id": 2258658297u64}),
    )
    .await
}

/// Same-city delivery: every operation answers `ok` with what it was
/// asked (`request`), so that a test sees the fields arrive.
async fn intracity(
    State(s): State<Arc<Shared>>,
    Path(op): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    secured(
        &s,
        INTRACITY,
        &q,
        &uri,
        &headers,
        &body,
        |fields| json!({"errcode": 0, "errmsg": "ok", "op": op, "request": fields}),
    )
    .await
}

async fn secured(
    s: &Arc<Shared>,
    name: &'static str,
    q: &HashMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    answer: impl FnOnce(&Value) -> Value,
) -> Response {
    let (fault, _in_flight) = s.enter(name);
    if let Some(r) = apply(fault).await {
        return r;
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let call = SignedCall {
        urlpath: format!("http://{host}{}", uri.path()),
        path: uri.path(),
        token: q.get("access_token").map(String::as_str),
        headers,
        body,
    };
    let now = s.now();
    let out = s.world.lock().unwrap().signed_call(&call, now, answer);
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")],
        out.body,
    )
        .into_response();
    for (k, v) in out.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

impl Sim {
    /// Registers an app's (or a component's) API-security keys at WeChat:
    /// the base64 symmetric key, its sn, and the public half of its signing
    /// key (SPKI PEM).
    pub fn set_api_security(&self, appid: &str, sym_key: &str, sym_sn: &str, public_pem: &str) {
        self.shared
            .world
            .lock()
            .unwrap()
            .api_security
            .register(appid, sym_key, sym_sn, public_pem)
            .expect("valid API-security keys");
    }

    /// WeChat's current platform certificate: (its number, PEM).
    pub fn platform_certificate(&self) -> (String, String) {
        self.shared.world.lock().unwrap().api_security.platform()
    }

    /// A new platform certificate valid for `days`; the old one signs as
    /// deprecated beside it. The new (number, PEM).
    pub fn rotate_platform_certificate(&self, days: u32) -> (String, String) {
        let mut w = self.shared.world.lock().unwrap();
        w.api_security.platform();
        w.api_security.rotate(days)
    }

    /// The next `n` signed answers carry a signature that does not verify.
    pub fn tamper_signed_answers(&self, n: u32) {
        self.shared.world.lock().unwrap().api_security.tamper_answers(n);
    }

    /// What signed calls carried, opened: (the header's appid, the fields).
    pub fn signed_calls(&self) -> Vec<(String, Value)> {
        self.shared.world.lock().unwrap().api_security.received.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetoken_core::apisec::{AnswerError, AnswerHeaders, ApiSecurityConfig, CertConfig};

    const APPID: &str = "wxsimapisec01";
    const SYM: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
    const KEY: &str = include_str!("../../../wetoken-core/tests/fixtures/api_security/doc_app_private_key.pem");

    fn public_pem() -> String {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let k = RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
        k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
    }

    use rsa::RsaPrivateKey;

    async fn call(sim: &Sim, path: &str, token: &str, headers: &[(&str, String)], body: Vec<u8>) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}?access_token={token}", sim.url()))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap()
    }

    fn answer_headers(r: &reqwest::Response) -> AnswerHeaders {
        let h = |k: &str| r.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        AnswerHeaders {
            appid: h("wechatmp-appid"),
            timestamp: h("wechatmp-timestamp"),
            serial: h("wechatmp-serial"),
            signature: h("wechatmp-signature"),
            serial_deprecated: h("wechatmp-serial-deprecated"),
            signature_deprecated: h("wechatmp-signature-deprecated"),
        }
    }

    /// wetoken's client (written apart) against the simulator's side:
    /// a signed call opens and verifies; unsigned intracity is 934011; a
    /// tampered answer and another key are refused; rotation signs with
    /// both certificates.
    #[tokio::test]
    async fn a_signed_call_round_trips_with_the_simulators_side() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        sim.add_app(APPID, "s");
        let token: Value = reqwest::get(format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret=s",
            sim.url()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        sim.set_api_security(APPID, SYM, "symsn01", &public_pem());
        let (sn, pem) = sim.platform_certificate();
        let cfg = ApiSecurityConfig {
            sym_key: SYM.into(),
            sym_sn: "symsn01".into(),
            private_key: KEY.into(),
            private_sn: "keysn01".into(),
            platform_certs: vec![CertConfig { sn: sn.clone(), pem }],
            sign: None,
        };
        let keys = cfg.keys().unwrap();
        let urlpath = format!("{}/wxa/getuserriskrank", sim.url());
        let ts = sim.now_secs();
        let fields = json!({"openid": "o1", "scene": 0}).as_object().unwrap().clone();
        let (body, sig) = keys.seal_request(&urlpath, APPID, ts, &fields);
        let signed = |sig: String| {
            vec![
                ("Wechatmp-Appid", APPID.to_owned()),
                ("Wechatmp-TimeStamp", ts.to_string()),
                ("Wechatmp-Signature", sig),
            ]
        };
        let r = call(&sim, "/wxa/getuserriskrank", &token, &signed(sig.clone()), body.clone()).await;
        let h = answer_headers(&r);
        let answer = r.bytes().await.unwrap();
        let (opened, deprecated) = keys.open_answer(&urlpath, APPID, &h, &answer).unwrap();
        assert!(!deprecated);
        assert_eq!(opened["risk_rank"], 0);
        assert_eq!(
            sim.signed_calls(),
            vec![(APPID.to_owned(), Value::Object(fields.clone()))]
        );

        // A signature over something else: 40234.
        let r = call(
            &sim,
            "/wxa/getuserriskrank",
            &token,
            &signed(keys.sign(&urlpath, APPID, ts, b"x")),
            body.clone(),
        )
        .await;
        assert_eq!(r.json::<Value>().await.unwrap()["errcode"], 40234);
        // Intracity unsigned: 934011.
        let r = call(
            &sim,
            "/cgi-bin/express/intracity/createstore",
            &token,
            &[],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(r.json::<Value>().await.unwrap()["errcode"], 934011);
        // A tampered answer does not verify.
        sim.tamper_signed_answers(1);
        let r = call(&sim, "/wxa/getuserriskrank", &token, &signed(sig.clone()), body.clone()).await;
        let h = answer_headers(&r);
        let answer = r.bytes().await.unwrap();
        assert_eq!(
            keys.open_answer(&urlpath, APPID, &h, &answer),
            Err(AnswerError::BadSignature)
        );
        // Rotated: the old certificate still verifies, as deprecated.
        sim.rotate_platform_certificate(30);
        let r = call(&sim, "/wxa/getuserriskrank", &token, &signed(sig), body).await;
        let h = answer_headers(&r);
        assert_eq!(h.serial_deprecated.as_deref(), Some(sn.as_str()));
        let answer = r.bytes().await.unwrap();
        let (_, deprecated) = keys.open_answer(&urlpath, APPID, &h, &answer).unwrap();
        assert!(deprecated, "verified with the deprecated certificate");
    }
}
