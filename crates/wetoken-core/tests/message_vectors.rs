//! WeChat's published message-push vectors (contract-2 §B.2, §B.3, §B.5):
//! the signatures and ciphertexts WeChat's own documents show, reproduced
//! by `msgcrypt` (which the simulator's pushes and wetoken's callbacks use).

use wetoken_core::msgcrypt::{MsgCrypt, reply_envelope, sha1_sorted};

const MP_TOKEN: &str = "AAAAA";

fn a43() -> String {
    "A".repeat(43)
}

#[test]
fn mini_program_push_vectors() {
    // GET verification and a plaintext POST: the 3-value signature.
    assert_eq!(
        sha1_sorted(&[MP_TOKEN, "1714036504", "1514711492"]),
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    );
    assert_eq!(
        sha1_sorted(&[MP_TOKEN, "1714037059", "486452656"]),
        "899cf89e464efb63f54ddac96b0a0a235f53aa78"
    );
    // A safe-mode POST: msg_signature over the ciphertext, the URL
    // signature over the three values, and the message inside.
    let c = MsgCrypt::new(MP_TOKEN, &a43(), "wxba5fad812f8e6fb9").unwrap();
    let encrypt = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";
    assert_eq!(
        c.signature("1714112445", "415670741", encrypt),
        "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
    );
    assert_eq!(
        sha1_sorted(&[MP_TOKEN, "1714112445", "415670741"]),
        "6c5c811b55cc85e0e1b54100749188c20beb3f5d"
    );
    let msg = c
        .open(
            "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3",
            "1714112445",
            "415670741",
            encrypt,
        )
        .unwrap();
    assert_eq!(
        msg,
        r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#
    );
    // The encrypted reply, with the doc's random prefix.
    let reply = c.encrypt_with(b"707722b803182950", r#"{"demo_resp":"good luck"}"#);
    assert_eq!(
        reply,
        "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
    );
    assert_eq!(
        c.signature("1713424427", "415670741", &reply),
        "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
    );
    // The JSON envelope of the doc's example.
    let envelope: serde_json::Value =
        serde_json::from_str(&reply_envelope(&reply, MP_TOKEN, 1713424427, "415670741", true)).unwrap();
    assert_eq!(
        envelope,
        serde_json::json!({"Encrypt": reply, "MsgSignature": "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
            "TimeStamp": 1713424427, "Nonce": "415670741"})
    );
}

#[test]
fn open_platform_push_vectors() {
    let c = MsgCrypt::new(MP_TOKEN, &a43(), "wx134c8103faa5a59e").unwrap();
    let encrypt = "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==";
    assert_eq!(
        sha1_sorted(&[MP_TOKEN, "1715943329", "1590219412"]),
        "cc0c594499c1634947d5b502f158ee518947db27"
    );
    let msg = c
        .open(
            "6c12a4205838198b8fa631b3220723bb07f1015c",
            "1715943329",
            "1590219412",
            encrypt,
        )
        .unwrap();
    assert!(msg.contains("debug_demo"), "{msg}");
    assert_eq!(msg.len(), 292);
    let reply = c.encrypt_with(
        b"999951349e8ee746",
        "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
    );
    assert_eq!(
        reply,
        "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
    );
    assert_eq!(
        c.signature("1713424427", "415670741", &reply),
        "03e0812039325c2712ef5f0f980fd14c70d6e307"
    );
    // The XML envelope, as the doc writes it.
    assert_eq!(
        reply_envelope(&reply, MP_TOKEN, 1713424427, "415670741", false),
        format!(
            "<xml><Encrypt><![CDATA[{reply}]]></Encrypt><MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]>\
             </MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
        )
    );
}

#[test]
fn wecom_push_vectors() {
    let c = MsgCrypt::new(
        "123456",
        "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        "wx49f0ab532d5d035a",
    )
    .unwrap();
    let echostr = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
    assert_eq!(
        c.open(
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "1411443780",
            "437374425",
            echostr
        )
        .unwrap(),
        "5927782489442352469"
    );
}
