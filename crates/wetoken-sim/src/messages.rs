//! Users' messages and events pushed to a receiving URL (contract-2
//! §B.1–B.6): an Official Account's or Mini Program's server
//! configuration in each mode (plaintext, compatible, safe) and format
//! (XML, JSON), a third-party platform's message URL (safe mode, XML, the
//! component's key), a WeCom app's or suite's data callback (always
//! encrypted, HTTP 200 means received).
//!
//! | rule | WeChat | here |
//! |---|---|---|
//! | timeout | no answer within 5 s: the connection dropped, the push tried again | `PUSH_TIMEOUT` |
//! | retries | three retries after the first attempt, four in all; a non-200 answer is tried again too (WeCom: "HTTP 200 = received") | `deliver` |
//! | no reply | an empty body or `success`: nothing shown, no retry | `Reply::None` |
//! | passive reply | plaintext mode: the reply in plaintext; safe mode (and the Open Platform, WeCom): encrypted in the envelope `Encrypt, MsgSignature, TimeStamp, Nonce`, signed, the receive id checked; compatible: either | `Reply::Message` |
//! | anything else | the user sees 该公众号暂时无法提供服务; no retry | `Reply::Invalid` |
//! | dedupe key | a message's `MsgId`; an event's `FromUserName` + `CreateTime` — the same on every retry | `Message` |

use std::time::Duration;

use serde_json::{Map, Value, json};
use wetoken_core::msgcrypt::{MsgCrypt, sha1_sorted};

use super::*;

/// How long WeChat waits for an answer to a push.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a push is sent at most: the first and three retries.
pub const PUSH_ATTEMPTS: usize = 4;

/// An Official Account's or Mini Program's message mode (服务器配置).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plaintext,
    Compatible,
    Safe,
}

/// A Mini Program's data format (an Official Account's is XML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

/// Who pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// An account's own server configuration.
    Mp,
    /// A third-party platform's message URL (safe mode, XML).
    OpenPlatform,
    /// A WeCom app's or suite's data callback (encrypted, XML).
    WeCom,
}

/// A receiving URL and what WeChat was configured with for it.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    pub token: String,
    pub aes_key: String,
    /// The receive id in every ciphertext: the appid, the component's appid,
    /// or the corpid.
    pub receive_id: String,
    pub platform: Platform,
    pub mode: Mode,
    pub format: Format,
    /// A WeCom app's agent id (the envelope's `AgentID`).
    pub agentid: Option<String>,
}

impl Receiver {
    /// An account's own server configuration.
    pub fn mp(url: &str, token: &str, aes_key: &str, appid: &str, mode: Mode, format: Format) -> Self {
        Receiver {
            url: url.to_owned(),
            token: token.to_owned(),
            aes_key: aes_key.to_owned(),
            receive_id: appid.to_owned(),
            platform: Platform::Mp,
            mode,
            format,
            agentid: None,
        }
    }

    /// A third-party platform's message URL for one authorizer (`$APPID$`
    /// already filled in): the component's token, key and appid.
    pub fn open_platform(url: &str, token: &str, aes_key: &str, component_appid: &str) -> Self {
        Receiver {
            receive_id: component_appid.to_owned(),
            platform: Platform::OpenPlatform,
            ..Receiver::mp(url, token, aes_key, component_appid, Mode::Safe, Format::Xml)
        }
    }

    /// A WeCom app's callback (receive id: the corpid) or a suite's data
    /// callback (receive id: the authorized corp's corpid).
    pub fn wecom(url: &str, token: &str, aes_key: &str, corpid: &str, agentid: Option<&str>) -> Self {
        Receiver {
            receive_id: corpid.to_owned(),
            platform: Platform::WeCom,
            agentid: agentid.map(str::to_owned),
            ..Receiver::mp(url, token, aes_key, corpid, Mode::Safe, Format::Xml)
        }
    }

    fn encrypted(&self) -> bool {
        self.platform != Platform::Mp || self.mode != Mode::Plaintext
    }
}

/// A user's message or event: its fields in WeChat's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub fields: Vec<(String, Value)>,
}

impl Message {
    /// A text message from `from` (an openid) to `to` (the account's
    /// original id, gh_…, or a corpid).
    pub fn text(to: &str, from: &str, content: &str, msg_id: u64, create_time: i64) -> Self {
        Message {
            fields: vec![
                ("ToUserName".into(), json!(to)),
                ("FromUserName".into(), json!(from)),
                ("CreateTime".into(), json!(create_time)),
                ("MsgType".into(), json!("text")),
                ("Content".into(), json!(content)),
                ("MsgId".into(), json!(msg_id)),
            ],
        }
    }

    /// An event (`subscribe`, `CLICK`, `LOCATION`, …).
    pub fn event(to: &str, from: &str, event: &str, create_time: i64) -> Self {
        Message {
            fields: vec![
                ("ToUserName".into(), json!(to)),
                ("FromUserName".into(), json!(from)),
                ("CreateTime".into(), json!(create_time)),
                ("MsgType".into(), json!("event")),
                ("Event".into(), json!(event)),
            ],
        }
    }

    /// With one more field (a WeCom message's `AgentID`, an event's `EventKey`).
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.fields.push((name.to_owned(), value));
        self
    }

    /// The message as WeChat writes it in `format`: XML with CDATA for
    /// text, or a JSON object.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => Value::Object(self.fields.iter().cloned().collect::<Map<_, _>>()).to_string(),
            Format::Xml => {
                let mut x = String::from("<xml>");
                for (k, v) in &self.fields {
                    match v {
                        Value::String(s) => x.push_str(&format!("<{k}><![CDATA[{s}]]></{k}>")),
                        other => x.push_str(&format!("<{k}>{other}</{k}>")),
                    }
                }
                x.push_str("</xml>");
                x
            }
        }
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// How one attempt was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Nothing within [`PUSH_TIMEOUT`].
    TimedOut,
    /// The connection failed.
    Failed(String),
    /// An HTTP answer: status and body.
    Status(u16, String),
}

/// What the user got from a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `success` or an empty body: nothing.
    None,
    /// A passive reply, in plaintext (decrypted when it came encrypted).
    Message(String),
    /// An answer WeChat cannot use: the user sees an error.
    Invalid(String),
    /// No attempt was answered.
    NoAnswer,
}

/// One push as WeChat made it: every attempt, and what the user got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub attempts: Vec<(Answered, Duration)>,
    pub reply: Reply,
}

/// The body and query of one push, sealed as the receiver's mode says.
fn sealed(
    r: &Receiver,
    message: &Message,
    timestamp: &str,
    nonce: &str,
) -> Result<(String, Vec<(String, String)>), String> {
    let plain = message.render(r.format);
    let openid = message
        .field("FromUserName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let signature = sha1_sorted(&[&r.token, timestamp, nonce]);
    let mut query = vec![
        ("timestamp".to_owned(), timestamp.to_owned()),
        ("nonce".to_owned(), nonce.to_owned()),
    ];
    if r.platform != Platform::WeCom {
        query.push(("signature".into(), signature));
        query.push(("openid".into(), openid));
    }
    if !r.encrypted() {
        return Ok((plain, query));
    }
    let crypt = MsgCrypt::new(&r.token, &r.aes_key, &r.receive_id).map_err(|e| e.to_string())?;
    let encrypt = crypt.encrypt(&plain);
    query.push(("msg_signature".into(), crypt.signature(timestamp, nonce, &encrypt)));
    if r.platform != Platform::WeCom {
        query.push(("encrypt_type".into(), "aes".into()));
    }
    let to = message.field("ToUserName").and_then(Value::as_str).unwrap_or_default();
    let body = match (r.platform, r.mode, r.format) {
        (Platform::WeCom, ..) => format!(
            "<xml><ToUserName><![CDATA[{to}]]></ToUserName><AgentID><![CDATA[{}]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
            r.agentid.as_deref().unwrap_or_default()
        ),
        (_, Mode::Compatible, Format::Xml) => {
            // The plaintext fields and the ciphertext side by side.
            let inner = plain.trim_end_matches("</xml>");
            format!("{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        }
        (_, Mode::Compatible, Format::Json) => {
            let mut v: Value = serde_json::from_str(&plain).map_err(|e| e.to_string())?;
            v["Encrypt"] = json!(encrypt);
            v.to_string()
        }
        (_, _, Format::Xml) => {
            format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        }
        (_, _, Format::Json) => json!({"ToUserName": to, "Encrypt": encrypt}).to_string(),
    };
    Ok((body, query))
}

/// What an answer's body means to WeChat, for a receiver like `r`.
pub fn reply_of(r: &Receiver, body: &str) -> Reply {
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return Reply::None;
    }
    let envelope = if trimmed.starts_with('{') {
        serde_json::from_str::<Value>(trimmed).ok().and_then(|v| {
            let s = |k: &str| {
                v.get(k)
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            };
            Some((s("Encrypt")?, s("MsgSignature")?, s("TimeStamp")?, s("Nonce")?))
        })
    } else {
        wetoken_core::wxml::fields(trimmed).ok().and_then(|f| {
            let s = |k: &str| f.get(k).cloned();
            Some((s("Encrypt")?, s("MsgSignature")?, s("TimeStamp")?, s("Nonce")?))
        })
    };
    match envelope {
        Some((encrypt, signature, timestamp, nonce)) if r.encrypted() => {
            let opened = MsgCrypt::new(&r.token, &r.aes_key, &r.receive_id)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    c.open(&signature, &timestamp, &nonce, &encrypt)
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok(plain) => Reply::Message(plain),
                Err(e) => Reply::Invalid(format!("an encrypted reply that does not open: {e}")),
            }
        }
        Some(_) => Reply::Invalid("an encrypted reply in plaintext mode".into()),
        None if r.platform == Platform::Mp && r.mode != Mode::Safe => {
            let readable = if trimmed.starts_with('{') {
                serde_json::from_str::<Value>(trimmed).is_ok_and(|v| v.get("MsgType").is_some())
            } else {
                wetoken_core::wxml::fields(trimmed).is_ok_and(|f| f.contains_key("MsgType"))
            };
            if readable {
                Reply::Message(trimmed.to_owned())
            } else {
                Reply::Invalid(format!("not a reply message: {trimmed:.80}"))
            }
        }
        None => Reply::Invalid(format!(
            "a plaintext answer where WeChat wants it encrypted: {trimmed:.80}"
        )),
    }
}

/// Pushes `message` to `r` as WeChat does: up to [`PUSH_ATTEMPTS`] times,
/// each answered within [`PUSH_TIMEOUT`] with HTTP 200 or tried again, the
/// same message (same MsgId or FromUserName + CreateTime) each time, signed
/// anew. What the user got comes from the first attempt answered.
pub(crate) async fn deliver(shared: &Shared, r: &Receiver, message: &Message, timeout: Duration) -> Delivery {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(timeout).build().expect("client");
    let mut attempts = Vec::new();
    for _ in 0..PUSH_ATTEMPTS {
        let timestamp = (shared.now() / 1000).to_string();
        let nonce = rand::random::<u32>().to_string();
        let (body, query) = match sealed(r, message, &timestamp, &nonce) {
            Ok(b) => b,
            Err(e) => {
                attempts.push((Answered::Failed(e), Duration::ZERO));
                break;
            }
        };
        let content_type = if r.format == Format::Json {
            "application/json"
        } else {
            "text/xml"
        };
        let started = std::time::Instant::now();
        let sent = client
            .post(&r.url)
            .query(&query)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        let answered = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(text) => Answered::Status(status, text),
                    Err(e) if e.is_timeout() => Answered::TimedOut,
                    Err(e) => Answered::Failed(e.to_string()),
                }
            }
            Err(e) if e.is_timeout() => Answered::TimedOut,
            Err(e) => Answered::Failed(e.without_url().to_string()),
        };
        let done = matches!(&answered, Answered::Status(200, _));
        attempts.push((answered, started.elapsed()));
        if done {
            break;
        }
    }
    let reply = match attempts.last() {
        Some((Answered::Status(200, body), _)) => reply_of(r, body),
        _ => Reply::NoAnswer,
    };
    Delivery { attempts, reply }
}

impl Sim {
    /// Pushes a user's message or event to `receiver` as WeChat would
    /// (see [`deliver`]), with WeChat's 5 s timeout.
    pub async fn push_to(&self, receiver: &Receiver, message: &Message) -> Delivery {
        self.push_within(receiver, message, PUSH_TIMEOUT).await
    }

    /// The same with another timeout (to see what a slower WeChat would).
    pub async fn push_within(&self, receiver: &Receiver, message: &Message, timeout: Duration) -> Delivery {
        deliver(&self.shared, receiver, message, timeout).await
    }

    /// The simulator's clock, epoch seconds (a message's `CreateTime`).
    pub fn now_secs(&self) -> i64 {
        self.shared.now() / 1000
    }
}

mod release;
pub use release::{ReleaseReport, TEST_ACCOUNTS};

#[cfg(test)]
mod tests;
