use std::sync::Mutex;

use axum::extract::{Query, State};
use wetoken_core::msgcrypt::MsgCrypt;

use super::*;

const TOKEN: &str = "msgtoken";
const AES: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const APPID: &str = "wxpushtest";

/// What a receiver saw: each request's query and body.
type Seen = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

/// How a receiver answers its n-th request (None: never).
type Answer = dyn Fn(usize, &HashMap<String, String>, &str) -> Option<(u16, String)> + Send + Sync;

/// A receiving URL answering each request with `answer(n, query, body)`
/// (n from 0); `None` never answers.
async fn receiver(
    answer: impl Fn(usize, &HashMap<String, String>, &str) -> Option<(u16, String)> + Send + Sync + 'static,
) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answer = Arc::new(answer);
    let app = Router::new()
        .route(
            "/push",
            post(
                |State((seen, answer)): State<(Seen, Arc<Answer>)>,
                 Query(q): Query<HashMap<String, String>>,
                 body: String| async move {
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push((q.clone(), body.clone()));
                        s.len() - 1
                    };
                    match answer(n, &q, &body) {
                        Some((status, text)) => (StatusCode::from_u16(status).unwrap(), text).into_response(),
                        None => {
                            std::future::pending::<()>().await;
                            StatusCode::OK.into_response()
                        }
                    }
                },
            ),
        )
        .with_state((seen.clone(), answer as Arc<Answer>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(TOKEN, AES, APPID).unwrap()
}

/// A passive reply sealed as a receiver in safe mode sends it.
fn sealed_reply(plain: &str, nonce: &str) -> String {
    let c = crypt();
    let encrypt = c.encrypt(plain);
    let ts = "1713424427";
    format!(
        "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature><TimeStamp>{ts}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>",
        c.signature(ts, nonce, &encrypt)
    )
}

#[tokio::test]
async fn a_safe_mode_push_is_signed_and_sealed_and_its_encrypted_reply_opens() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let reply = "<xml><ToUserName><![CDATA[o1]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>";
    let (url, seen) = receiver(move |_, q, _| Some((200, sealed_reply(reply, &q["nonce"])))).await;
    let r = Receiver::mp(&url, TOKEN, AES, APPID, Mode::Safe, Format::Xml);
    let m = Message::text("gh_test", "o1", "你好", 7, sim.now_secs());
    let d = sim.push_to(&r, &m).await;
    assert_eq!(d.reply, Reply::Message(reply.to_owned()));
    assert_eq!(d.attempts.len(), 1);
    let (q, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(q["encrypt_type"], "aes");
    assert_eq!(q["signature"], sha1_sorted(&[TOKEN, &q["timestamp"], &q["nonce"]]));
    let fields = wetoken_core::wxml::fields(&body).unwrap();
    assert_eq!(fields.len(), 2, "safe mode: ToUserName and Encrypt only: {body}");
    let plain = crypt()
        .open(&q["msg_signature"], &q["timestamp"], &q["nonce"], &fields["Encrypt"])
        .unwrap();
    assert_eq!(plain, m.render(Format::Xml));
}

#[tokio::test]
async fn an_unanswered_push_is_tried_four_times_with_the_same_message() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (url, seen) = receiver(|_, _, _| None).await;
    let r = Receiver::mp(&url, TOKEN, AES, APPID, Mode::Plaintext, Format::Xml);
    let m = Message::event("gh_test", "o1", "subscribe", 1_700_000_000);
    let d = sim.push_within(&r, &m, Duration::from_millis(200)).await;
    assert_eq!(d.attempts.len(), PUSH_ATTEMPTS);
    assert!(
        d.attempts.iter().all(|(a, _)| *a == Answered::TimedOut),
        "{:?}",
        d.attempts
    );
    assert_eq!(d.reply, Reply::NoAnswer);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), PUSH_ATTEMPTS);
    assert!(
        seen.iter().all(|(_, body)| *body == m.render(Format::Xml)),
        "the same event each time"
    );
}

#[tokio::test]
async fn a_failed_answer_is_tried_again_and_success_means_no_reply() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (url, _) = receiver(|n, _, _| {
        Some(if n == 0 {
            (503, "busy".into())
        } else {
            (200, "success".into())
        })
    })
    .await;
    let r = Receiver::wecom(&url, TOKEN, AES, "wwcorp", Some("1000002"));
    let m = Message::text("wwcorp", "zhangsan", "hi", 9, 1_700_000_000).with("AgentID", json!(1000002));
    let d = sim.push_to(&r, &m).await;
    assert_eq!(d.attempts.len(), 2);
    assert_eq!(d.attempts[0].0, Answered::Status(503, "busy".into()));
    assert_eq!(d.reply, Reply::None);
}

#[tokio::test]
async fn plaintext_and_compatible_modes_carry_the_message_as_it_is() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (url, seen) = receiver(|_, _, _| Some((200, String::new()))).await;
    let m = Message::text("gh_test", "o1", "hello", 11, 1_700_000_000);
    let plain = Receiver::mp(&url, TOKEN, AES, APPID, Mode::Plaintext, Format::Xml);
    assert_eq!(sim.push_to(&plain, &m).await.reply, Reply::None);
    let compat = Receiver::mp(&url, TOKEN, AES, APPID, Mode::Compatible, Format::Json);
    sim.push_to(&compat, &m).await;
    let seen = seen.lock().unwrap();
    let (q, body) = &seen[0];
    assert!(!q.contains_key("encrypt_type") && !q.contains_key("msg_signature"));
    assert_eq!(*body, m.render(Format::Xml));
    let (q, body) = &seen[1];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["Content"], "hello", "compatible: the fields in the clear");
    let opened = crypt()
        .open(
            &q["msg_signature"],
            &q["timestamp"],
            &q["nonce"],
            v["Encrypt"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(opened, m.render(Format::Json), "and sealed beside them");
}

#[test]
fn what_an_answer_means_to_wechat() {
    let safe = Receiver::mp("http://x", TOKEN, AES, APPID, Mode::Safe, Format::Xml);
    let plain = Receiver::mp("http://x", TOKEN, AES, APPID, Mode::Plaintext, Format::Xml);
    let msg = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[x]]></Content></xml>";
    assert_eq!(reply_of(&safe, " success "), Reply::None);
    assert_eq!(reply_of(&safe, ""), Reply::None);
    assert_eq!(reply_of(&safe, &sealed_reply(msg, "5")), Reply::Message(msg.into()));
    assert!(
        matches!(reply_of(&safe, msg), Reply::Invalid(_)),
        "plaintext in safe mode"
    );
    assert!(matches!(reply_of(&plain, &sealed_reply(msg, "5")), Reply::Invalid(_)));
    assert_eq!(reply_of(&plain, msg), Reply::Message(msg.into()));
    assert!(matches!(reply_of(&plain, "OK"), Reply::Invalid(_)));
    let forged = sealed_reply(msg, "5").replace("<Nonce><![CDATA[5]]>", "<Nonce><![CDATA[6]]>");
    assert!(
        matches!(reply_of(&safe, &forged), Reply::Invalid(_)),
        "a signature that does not match"
    );
    let other = Receiver::mp("http://x", TOKEN, AES, "wxanother", Mode::Safe, Format::Xml);
    assert!(
        matches!(reply_of(&other, &sealed_reply(msg, "5")), Reply::Invalid(_)),
        "another receive id"
    );
}
