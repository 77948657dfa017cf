//! (i) signed calls (SPEC §15): what signing and verifying cost a call.
//! First wetoken's own work alone, in this process — seal and sign a
//! request, verify and open WeChat's published answer — with WeChat's
//! published keys; then the same `getuserriskrank` through `/proxy/`, pairs
//! interleaved, on an account with keys (`"sign": "all"`) and one without
//! (the simulator answers it unsigned): latency, and wetoken's CPU per call
//! in each mode.

use wetoken_core::apisec::{AnswerHeaders, ApiSecurityConfig, CertConfig};

use super::token_free::Proxied;
use super::*;

const KEY: &str = include_str!("../../wetoken-core/tests/fixtures/api_security/doc_app_private_key.pem");
const CERT: &str = include_str!("../../wetoken-core/tests/fixtures/api_security/doc_platform_cert.pem");
const SYM: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
const ANSWER: &str = r#"{"iv":"r2WDQt56rEAmMuoR","data":"HExs66Ik3el+iM4IpeQ7SMEN934FRLFYOd3EmeaIrpP4EPTHckoco6O+PaoRZRa3lqaPRZT7r52f7LUok6gLxc6cdR8C4vpIIfh4xfLC4L7FNy9GbuMK1hcoi8b7gkWJcwZMkuCFNEDmqn3T49oWzAQOrY4LZnnnykv6oUJotdAsnKvmoJkLK7hRh7M2B1d2UnTnRuoIyarXc5Iojwoghx4BOvnV","authtag":"z2BFD8QctKXTuBlhICGOjQ=="}"#;
const ANSWER_SIGNATURE: &str = "Ht0VfQkkEweJ4hU266C14Aj64H9AXfkwNi5zxUZETCvR2svU1ZYdosDhFX/voLj1TyszqKsVxAlENGt7PPZZ8RQX7jnA4SKhiPUhW4LTbyTenisHJ+ohSfDjYnXavjQsBHspFS+BlPHuSSJ2xyQzw1+HuC6nid09ZL4FnGSYo4OI5MJrSb9xLzIVZMIDuUQchGKi/KaB1KzxECLEZcfjqbAgmxC7qOmuBLyO1WkHYDM95NJrHJWba5xv4wrwPru9yYTJSNRnlM+zrW5w9pOubC4Jtj3szTAEuOz9AcqUmgaAvMLNAIa8hfODLRe3n/cu4SgYlN/ZkNRU4QXVNbPGMg==";

fn public_pem() -> String {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let k = rsa::RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
    k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
}

/// (i) signed calls: see the module.
pub(crate) async fn signed(args: &Args) {
    let n = if args.quick { 300 } else { 2000 };
    // wetoken's own work per call, alone.
    let doc = ApiSecurityConfig {
        sym_key: SYM.into(),
        sym_sn: "fa05fe1e5bcc79b81ad5ad4b58acf787".into(),
        private_key: KEY.into(),
        private_sn: "97845f6ed842ea860df6fdf65941ff56".into(),
        platform_certs: vec![CertConfig {
            sn: "79ba700ea147819f640941bceb38b1d1".into(),
            pem: CERT.into(),
        }],
        sign: None,
    };
    let keys = doc.keys().unwrap();
    let (url, appid) = ("https://api.weixin.qq.com/wxa/getuserriskrank", "wxba6223c06417af7b");
    let h = AnswerHeaders {
        appid: Some(appid.into()),
        timestamp: Some("1635927956".into()),
        serial: Some("79ba700ea147819f640941bceb38b1d1".into()),
        signature: Some(ANSWER_SIGNATURE.into()),
        ..AnswerHeaders::default()
    };
    let fields =
        json!({"appid": appid, "openid": "oEWzBfmdLqhFS2mTXCo2E4Y9gJAM", "scene": 0, "client_ip": "127.0.0.1"});
    let fields = fields.as_object().unwrap().clone();
    let (mut sign_us, mut open_us) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let (body, sig) = keys.seal_request(url, appid, 1635927954, &fields);
        sign_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(!body.is_empty() && !sig.is_empty());
        let t = Instant::now();
        keys.open_answer(url, appid, &h, ANSWER.as_bytes()).unwrap();
        open_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!("(i) signed calls: {n} calls");
    println!(
        "    wetoken's own work, alone: seal + sign a request p50 {:.0} µs, p99 {:.0} µs; verify + open an answer p50 {:.0} µs, p99 {:.0} µs",
        quantile(&mut sign_us, 0.5),
        quantile(&mut sign_us, 0.99),
        quantile(&mut open_us, 0.5),
        quantile(&mut open_us, 0.99)
    );

    // Through /proxy/: the same API, signed and unsigned, interleaved.
    const PLAIN: &str = "wxbenchunsigned";
    const SIGNED: &str = "wxbenchsigned01";
    let p = Proxied::start(args, PLAIN, &[]).await;
    let (c, base, sim) = (&p.client, &p.url, &p.sim);
    sim.add_app(SIGNED, "s");
    sim.set_api_security(SIGNED, SYM, "symsn", &public_pem());
    let (sn, pem) = sim.platform_certificate();
    let block = json!({"sym_key": SYM, "sym_sn": "symsn", "private_key": KEY, "private_sn": "keysn",
        "platform_certs": [{"sn": sn, "pem": pem}], "sign": "all"});
    post(
        c,
        &format!("{base}/v1/accounts"),
        ADMIN,
        json!({"kind": "mp", "appid": SIGNED, "secret": "s", "api_security": block}),
    )
    .await;
    let key = post(
        c,
        &format!("{base}/v1/keys"),
        ADMIN,
        json!({"name": "bench-signed", "accounts": [format!("mp:{PLAIN}"), format!("mp:{SIGNED}")]}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let pid = p.child.id().unwrap();
    let body = r#"{"openid":"oBench","scene":0}"#;
    let call = |appid: &'static str| {
        let (c, key) = (c.clone(), key.clone());
        let url = format!("{base}/proxy/mp/{appid}/wxa/getuserriskrank");
        async move {
            let t = Instant::now();
            let v: Value = c
                .post(url)
                .bearer_auth(key)
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(v["risk_rank"], 0, "{v}");
            t.elapsed().as_secs_f64() * 1000.0
        }
    };
    for _ in 0..50 {
        call(PLAIN).await;
        call(SIGNED).await;
    }
    let (mut plain, mut signed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut plain_cpu, mut signed_cpu) = (0.0, 0.0);
    for _ in 0..n {
        let c0 = usage(pid).2;
        plain.push(call(PLAIN).await);
        let c1 = usage(pid).2;
        signed.push(call(SIGNED).await);
        let c2 = usage(pid).2;
        plain_cpu += c1 - c0;
        signed_cpu += c2 - c1;
    }
    let (u50, u99) = (quantile(&mut plain, 0.5), quantile(&mut plain, 0.99));
    let (s50, s99) = (quantile(&mut signed, 0.5), quantile(&mut signed, 0.99));
    println!(
        "    through /proxy/, unsigned: p50 {u50:.2} ms, p99 {u99:.2} ms; wetoken's CPU {:.0} µs a call",
        plain_cpu * 1e6 / n as f64
    );
    println!(
        "    through /proxy/, signed (the simulator verifies and signs too): p50 {s50:.2} ms, p99 {s99:.2} ms; wetoken's CPU {:.0} µs a call",
        signed_cpu * 1e6 / n as f64
    );
    println!(
        "    signing's cost to wetoken: {:.0} µs of CPU a call; latency + {:.2} ms p50, + {:.2} ms p99 (WeChat's side included)",
        (signed_cpu - plain_cpu) * 1e6 / n as f64,
        s50 - u50,
        s99 - u99
    );
    println!();
}
