//! The Open Platform's release test (全网发布, contract-2 §B.4), answered
//! with no code (SPEC §14): for WeChat's test accounts, the text case gets
//! its `_callback` reply, `QUERY_AUTH_CODE:<code>` an empty answer at once
//! and then `<code>_from_api` through the customer-service API with the
//! authorizer token the code exchanges for, and an event `<Event>from_callback`.
//! Off with `WETOKEN_RELEASE_TEST=off`.

use serde_json::{Map, Value};

use super::{Messages, Result};
use crate::domain::{AccountId, Credential};

/// The test accounts' appids (Official Accounts and Mini Programs of the
/// five groups).
pub const TEST_APPIDS: [&str; 10] = [
    "wx570bc396a51b8ff8",
    "wxd101a85aa106f53e",
    "wx9252c5e0bb1836fc",
    "wxc39235c15087f6f3",
    "wx8e1097c5bc82cde9",
    "wx7720d01d4b2a4500",
    "wx14550af28c71a144",
    "wx05d483572dcd5d8b",
    "wxa35b9c23cfe664eb",
    "wx5910277cae6fd970",
];

/// The text of the test's text case.
pub const TEXT_CASE: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
/// The prefix of the customer-service case.
pub const QUERY_AUTH_CODE: &str = "QUERY_AUTH_CODE:";

/// What the test wants for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Case {
    /// A passive text reply with this content.
    Reply(String),
    /// Nothing at once; then this code's `_from_api` message.
    FromApi(String),
}

/// The case of a message to a test account, if it is one.
pub fn case(fields: &Map<String, Value>) -> Option<Case> {
    let get = |k: &str| fields.get(k).and_then(Value::as_str);
    match get("MsgType")? {
        "text" => {
            let content = get("Content")?;
            if content == TEXT_CASE {
                Some(Case::Reply(format!("{TEXT_CASE}_callback")))
            } else {
                let code = content.strip_prefix(QUERY_AUTH_CODE)?;
                (!code.is_empty()).then(|| Case::FromApi(code.to_owned()))
            }
        }
        "event" => Some(Case::Reply(format!("{}from_callback", get("Event")?))),
        _ => None,
    }
}

/// A passive text reply to the sender of `fields`, in WeChat's XML.
pub fn text_reply(fields: &Map<String, Value>, content: &str, now_secs: i64) -> String {
    let get = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default();
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now_secs}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(get("FromUserName")),
        cdata(get("ToUserName")),
        cdata(content)
    )
}

/// Text as CDATA sections ("]]>" split across two).
fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

impl Messages {
    /// The test's case of a message to authorizer `id`, when it is to one
    /// of the test accounts and the test is on.
    pub(super) fn release_case(&self, id: &AccountId, fields: &Map<String, Value>) -> Option<Case> {
        let AccountId::Authorizer { appid, .. } = id else {
            return None;
        };
        if !self.engine.inner.cfg.release_test || !TEST_APPIDS.contains(&appid.as_str()) {
            return None;
        }
        case(fields)
    }

    /// The passive reply of a case (empty: the empty answer), the
    /// customer-service answer started in the background the first time
    /// the message arrives (`first`).
    pub(super) fn answer_case(&self, id: &AccountId, fields: &Map<String, Value>, case: Case, first: bool) -> String {
        match case {
            Case::Reply(content) => {
                let now = self.engine.inner.now_ms().div_euclid(1000);
                text_reply(fields, &content, now)
            }
            Case::FromApi(code) => {
                if let (true, AccountId::Authorizer { component_appid, .. }) = (first, id) {
                    let component = AccountId::Component {
                        appid: component_appid.clone(),
                    };
                    let touser = fields
                        .get("FromUserName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let service = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = service.answer_from_api(&component, &code, &touser).await {
                            tracing::warn!(component = %component, error = %e, "release test: the customer-service answer failed");
                        }
                    });
                }
                String::new()
            }
        }
    }

    /// The code exchanged with the component's token, and `<code>_from_api`
    /// sent to `touser` with the authorizer token it gave.
    async fn answer_from_api(&self, component: &AccountId, code: &str, touser: &str) -> Result<()> {
        let AccountId::Component { appid } = component else {
            return Ok(());
        };
        let token = self.engine.get(component, Credential::AccessToken).await?.value;
        let up = &self.engine.inner.upstream;
        let auth = up.query_auth(&token, appid.as_str(), code).await?;
        let access = auth.token.ok_or_else(|| {
            crate::upstream::UpstreamError::Malformed("no authorizer_access_token in api_query_auth's answer".into())
        })?;
        let body = serde_json::json!({
            "touser": touser,
            "msgtype": "text",
            "text": {"content": format!("{code}_from_api")},
        });
        up.custom_send(&access.value, body).await?;
        tracing::info!(component = %component, "release test: customer-service case answered");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_cases_of_the_test() {
        let text = fields(json!({"MsgType": "text", "Content": TEXT_CASE}));
        assert_eq!(
            case(&text),
            Some(Case::Reply("TESTCOMPONENT_MSG_TYPE_TEXT_callback".into()))
        );
        let code = fields(json!({"MsgType": "text", "Content": "QUERY_AUTH_CODE:queryauthcode@@@abc"}));
        assert_eq!(case(&code), Some(Case::FromApi("queryauthcode@@@abc".into())));
        let event = fields(json!({"MsgType": "event", "Event": "LOCATION"}));
        assert_eq!(case(&event), Some(Case::Reply("LOCATIONfrom_callback".into())));
        assert_eq!(case(&fields(json!({"MsgType": "text", "Content": "hello"}))), None);
        assert_eq!(
            case(&fields(json!({"MsgType": "text", "Content": QUERY_AUTH_CODE}))),
            None
        );
        assert_eq!(case(&fields(json!({"MsgType": "image"}))), None);
    }

    #[test]
    fn the_reply_goes_back_to_the_sender() {
        let f = fields(json!({"ToUserName": "gh_3c884a361561", "FromUserName": "ozy4qt1", "MsgType": "text"}));
        let xml = text_reply(&f, "a]]>b", 1700000000);
        let back = crate::wxml::fields(&xml).unwrap();
        assert_eq!(back["ToUserName"], "ozy4qt1");
        assert_eq!(back["FromUserName"], "gh_3c884a361561");
        assert_eq!(back["Content"], "a]]>b");
        assert_eq!(back["CreateTime"], "1700000000");
    }
}
