//! The Open Platform's release test (全网发布接入检测, contract-2 §B.4), run
//! as WeChat runs it against a platform's message URL: a test account of
//! one group (it authorizes the platform by itself), then each case —
//!
//! | case | WeChat pushes | passes when |
//! |---|---|---|
//! | text | text `TESTCOMPONENT_MSG_TYPE_TEXT` | an encrypted passive text reply `TESTCOMPONENT_MSG_TYPE_TEXT_callback` |
//! | customer service | text `QUERY_AUTH_CODE:<code>` (a fresh authorization code) | an empty answer within 5 s, then a customer-service text `<code>_from_api` to the sender, sent with the test account's token |
//! | event (legacy) | event `LOCATION` | a passive text reply `LOCATIONfrom_callback` |

use super::*;

/// The test accounts: (Official Account appid, its original id) per group.
pub const TEST_ACCOUNTS: [(&str, &str); 5] = [
    ("wx570bc396a51b8ff8", "gh_3c884a361561"),
    ("wx9252c5e0bb1836fc", "gh_c0f28a78b318"),
    ("wx8e1097c5bc82cde9", "gh_3f222ed8d140"),
    ("wx14550af28c71a144", "gh_26128078e9ab"),
    ("wxa35b9c23cfe664eb", "gh_2b3713f184a6"),
];

/// How long the customer-service answer may take after the push.
const FROM_API_WITHIN: Duration = Duration::from_secs(10);

/// The outcome of each case, by name.
#[derive(Debug, Clone)]
pub struct ReleaseReport {
    pub cases: Vec<(&'static str, Result<(), String>)>,
}

impl ReleaseReport {
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|(_, r)| r.is_ok())
    }
}

/// The text content of a passive reply.
fn content_of(reply: &Reply) -> Result<String, String> {
    match reply {
        Reply::Message(m) => wetoken_core::wxml::fields(m)
            .map_err(|e| format!("the reply is not XML: {e}"))
            .and_then(|f| match (f.get("MsgType").map(String::as_str), f.get("Content")) {
                (Some("text"), Some(c)) => Ok(c.clone()),
                _ => Err(format!("not a text reply: {m}")),
            }),
        other => Err(format!("no passive reply: {other:?}")),
    }
}

impl Sim {
    /// Runs the release test against `component`'s message URL
    /// (`url_template` holding `$APPID$`) with test group `group` (0–4).
    pub async fn release_test(&self, component: &str, url_template: &str, group: usize) -> ReleaseReport {
        let (appid, username) = TEST_ACCOUNTS[group % TEST_ACCOUNTS.len()];
        let (token, aes_key) = {
            let w = self.shared.world.lock().unwrap();
            match w.component(component) {
                Some(c) => (c.token.clone(), c.aes_key.clone()),
                None => {
                    return ReleaseReport {
                        cases: vec![("setup", Err(format!("no component {component}")))],
                    };
                }
            }
        };
        self.add_authorization(component, appid);
        let receiver = Receiver::open_platform(&url_template.replace("$APPID$", appid), &token, &aes_key, component);
        let user = format!("o-release-{}", rand::random::<u32>());
        let now = self.now_secs();
        let mut cases = Vec::new();

        let text = Message::text(username, &user, "TESTCOMPONENT_MSG_TYPE_TEXT", rand::random(), now);
        let got = content_of(&self.push_to(&receiver, &text).await.reply);
        cases.push((
            "text",
            got.and_then(|c| match c.as_str() {
                "TESTCOMPONENT_MSG_TYPE_TEXT_callback" => Ok(()),
                other => Err(format!("replied {other:?}")),
            }),
        ));

        let code = self
            .shared
            .world
            .lock()
            .unwrap()
            .new_auth_code(component, appid, self.shared.now());
        let ask = Message::text(
            username,
            &user,
            &format!("QUERY_AUTH_CODE:{code}"),
            rand::random(),
            now + 1,
        );
        let pushed = self.push_to(&receiver, &ask).await;
        let first = match pushed.reply {
            Reply::None if pushed.attempts.len() == 1 => Ok(()),
            other => Err(format!(
                "wanted an empty answer at once, got {other:?} after {} attempt(s)",
                pushed.attempts.len()
            )),
        };
        let wanted = format!("{code}_from_api");
        let deadline = std::time::Instant::now() + FROM_API_WITHIN;
        let sent = loop {
            let found = self.sent_messages().into_iter().any(|(from, body)| {
                from == appid && body["touser"] == user.as_str() && body["text"]["content"] == wanted.as_str()
            });
            if found || std::time::Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        cases.push((
            "customer service",
            first.and_then(|()| {
                sent.then_some(()).ok_or_else(|| {
                    format!("no customer-service message {wanted:?} to {user} within {FROM_API_WITHIN:?}")
                })
            }),
        ));

        let event = Message::event(username, &user, "LOCATION", now + 2)
            .with("Latitude", json!("23.137466"))
            .with("Longitude", json!("113.352425"));
        let got = content_of(&self.push_to(&receiver, &event).await.reply);
        cases.push((
            "event",
            got.and_then(|c| match c.as_str() {
                "LOCATIONfrom_callback" => Ok(()),
                other => Err(format!("replied {other:?}")),
            }),
        ));
        ReleaseReport { cases }
    }

    /// The customer-service messages WeChat was asked to send: (the
    /// sending token's appid, the request body).
    pub fn sent_messages(&self) -> Vec<(String, Value)> {
        self.shared.world.lock().unwrap().sent_messages()
    }
}
