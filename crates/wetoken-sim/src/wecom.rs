//! The WeCom side of the [`Sim`] handle: apps, providers, suites, their
//! pushes (suite tickets, installs, auth and contact events) and the URL
//! check.

use super::*;

impl Sim {
    /// Registers a WeCom self-built app (one secret per agent).
    pub fn add_work_app(&self, corpid: &str, agentid: u64, secret: &str) {
        self.shared.world.lock().unwrap().add_work_app(corpid, agentid, secret);
    }

    /// Registers a WeCom service provider.
    pub fn add_provider(&self, corpid: &str, secret: &str) {
        self.shared.world.lock().unwrap().add_provider(corpid, secret);
    }

    /// Registers a WeCom third-party suite.
    pub fn add_suite(&self, suite_id: &str, secret: &str, token: &str, aes_key: &str) {
        self.shared
            .world
            .lock()
            .unwrap()
            .add_suite(suite_id, secret, token, aes_key);
    }

    /// Pushes a new suite_ticket to `callback_url`, as WeCom does every 10
    /// minutes. The ticket.
    pub async fn push_suite_ticket(&self, suite_id: &str, callback_url: &str) -> Result<String, String> {
        let now = self.shared.now();
        let ticket = self
            .shared
            .world
            .lock()
            .unwrap()
            .new_suite_ticket(suite_id, now)
            .ok_or("unknown suite")?;
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType> <![CDATA[suite_ticket]]></InfoType>\
             <TimeStamp>{}</TimeStamp><SuiteTicket><![CDATA[{ticket}]]></SuiteTicket></xml>",
            now / 1000
        );
        push_to_suite(&self.shared, suite_id, callback_url, &msg).await?;
        Ok(ticket)
    }

    /// A corp installs the suite from the app market: `create_auth` pushed
    /// with a temporary auth code (returned). With `reset`, the event is
    /// `reset_permanent_code` instead (a new permanent code).
    pub async fn install(
        &self,
        suite_id: &str,
        corpid: &str,
        agentid: u64,
        callback_url: &str,
        reset: bool,
    ) -> Result<String, String> {
        let now = self.shared.now();
        let code = self
            .shared
            .world
            .lock()
            .unwrap()
            .new_install_code(suite_id, corpid, agentid, now);
        let info_type = if reset { "reset_permanent_code" } else { "create_auth" };
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><AuthCode><![CDATA[{code}]]></AuthCode>\
             <InfoType><![CDATA[{info_type}]]></InfoType><TimeStamp>{}</TimeStamp><State><![CDATA[1]]></State></xml>",
            now / 1000
        );
        push_to_suite(&self.shared, suite_id, callback_url, &msg).await?;
        Ok(code)
    }

    /// `change_auth` (after changing the install's agentid) or `cancel_auth`.
    pub async fn auth_event(
        &self,
        suite_id: &str,
        corpid: &str,
        info_type: &str,
        callback_url: &str,
    ) -> Result<u16, String> {
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[{info_type}]]></InfoType>\
             <TimeStamp>{}</TimeStamp><AuthCorpId><![CDATA[{corpid}]]></AuthCorpId></xml>",
            self.shared.now() / 1000
        );
        push_to_suite(&self.shared, suite_id, callback_url, &msg).await
    }

    /// Sends any message to a suite's callback, encrypted and signed as WeCom
    /// would (`change_contact`, `change_external_contact`, …).
    pub async fn push_suite_message(&self, suite_id: &str, callback_url: &str, message: &str) -> Result<u16, String> {
        push_to_suite(&self.shared, suite_id, callback_url, message).await
    }

    /// A contact change in a corp that installed `suite_id`: the
    /// `change_contact` / `create_user` message WeCom sends, with an
    /// extended attribute (nested elements).
    pub async fn change_contact(
        &self,
        suite_id: &str,
        corpid: &str,
        user: &str,
        callback_url: &str,
    ) -> Result<u16, String> {
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><AuthCorpId><![CDATA[{corpid}]]></AuthCorpId>\
             <InfoType><![CDATA[change_contact]]></InfoType><TimeStamp>{}</TimeStamp>\
             <ChangeType><![CDATA[create_user]]></ChangeType><UserID><![CDATA[{user}]]></UserID>\
             <Name><![CDATA[张三]]></Name><Department><![CDATA[1,2]]></Department>\
             <ExtAttr><Item><Name><![CDATA[爱好]]></Name><Type>0</Type><Text><Value><![CDATA[旅游]]></Value></Text></Item>\
             <Item><Name><![CDATA[卡号]]></Name><Type>0</Type><Text><Value><![CDATA[1234567234]]></Value></Text></Item></ExtAttr></xml>",
            self.shared.now() / 1000
        );
        push_to_suite(&self.shared, suite_id, callback_url, &msg).await
    }

    /// An existing install of `suite_id` by `corpid`; its permanent code.
    pub fn add_install(&self, suite_id: &str, corpid: &str, agentid: u64) -> String {
        self.shared.world.lock().unwrap().add_install(suite_id, corpid, agentid)
    }

    /// Changes an install's agentid, as a corp admin's change would.
    pub fn change_install(&self, suite_id: &str, corpid: &str, agentid: u64) {
        self.shared
            .world
            .lock()
            .unwrap()
            .change_install(suite_id, corpid, agentid);
    }

    /// WeCom's URL verification of a suite's callback: a GET with an
    /// encrypted echostr whose base64 holds `+` and `/`. The answer's status
    /// and body, and the plaintext it should be.
    pub async fn verify_suite_url(&self, suite_id: &str, callback_url: &str) -> Result<(u16, String, String), String> {
        let app = self.shared.suite(suite_id)?;
        let crypt =
            wetoken_core::msgcrypt::MsgCrypt::new(&app.token, &app.aes_key, suite_id).map_err(|e| e.to_string())?;
        let (plain, echostr) = loop {
            let plain = rand::random::<u64>().to_string();
            let e = crypt.encrypt(&plain);
            if e.contains('+') && e.contains('/') {
                break (plain, e);
            }
        };
        let timestamp = (self.shared.now() / 1000).to_string();
        let nonce = rand::random::<u32>().to_string();
        let sig = crypt.signature(&timestamp, &nonce, &echostr);
        let resp = http()
            .get(callback_url)
            .query(&[
                ("msg_signature", sig.as_str()),
                ("timestamp", &timestamp),
                ("nonce", &nonce),
                ("echostr", &echostr),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default(), plain))
    }
}
