//! WeCom: self-built apps, service providers, suites, installs and
//! permanent codes, corp tokens.

use super::*;

impl World {
    pub fn add_work_app(&mut self, corpid: &str, agentid: u64, secret: &str) {
        self.work_apps
            .entry(corpid.to_owned())
            .or_default()
            .insert(agentid, secret.to_owned());
    }

    pub fn add_provider(&mut self, corpid: &str, secret: &str) {
        self.providers.insert(corpid.to_owned(), secret.to_owned());
    }

    pub fn add_suite(&mut self, suite_id: &str, secret: &str, token: &str, aes_key: &str) {
        self.suites
            .insert(suite_id.to_owned(), ThirdPartyApp::new(secret, token, aes_key));
    }

    pub fn suite(&self, suite_id: &str) -> Option<&ThirdPartyApp> {
        self.suites.get(suite_id)
    }

    /// A new suite_ticket, as WeCom pushes every 10 minutes.
    pub fn new_suite_ticket(&mut self, suite_id: &str, now: i64) -> Option<String> {
        let ticket = format!("suiteticket_{}", random(48));
        self.suites.get_mut(suite_id)?.tickets.push((ticket.clone(), now));
        Some(ticket)
    }

    /// The current valid token of an owner and family, or a new one.
    fn token_for(&mut self, owner: &str, family: Family, field: &str, now: i64) -> Answer {
        let current = self
            .current
            .get(&(owner.to_owned(), family))
            .filter(|t| self.token_state(t, now) == TokenState::Valid)
            .map(|t| (t.clone(), self.tokens[t].expires_at));
        match current {
            Some((token, expires_at)) => json!({ field: token, "expires_in": (expires_at - now) / 1000 }),
            None => self.issue_as(owner, family, field, now).1,
        }
    }

    /// `GET /cgi-bin/gettoken` (WeCom).
    pub fn work_token(&mut self, corpid: Option<&str>, secret: Option<&str>, now: i64) -> Answer {
        let corpid = corpid.unwrap_or_default();
        let Some(apps) = self.work_apps.get(corpid) else {
            return err(40013, "invalid corpid");
        };
        let Some((agentid, _)) = apps.iter().find(|(_, s)| Some(s.as_str()) == secret) else {
            return err(40001, "invalid credential");
        };
        let owner = format!("{corpid}:{agentid}");
        let mut a = self.token_for(&owner, Family::Work, "access_token", now);
        a["errcode"] = json!(0);
        a["errmsg"] = json!("ok");
        a
    }

    /// `GET /cgi-bin/get_jsapi_ticket` (agent: false) or
    /// `GET /cgi-bin/ticket/get?type=agent_config` (agent: true).
    pub fn work_ticket(&mut self, token: Option<&str>, agent: bool, now: i64) -> Answer {
        let token = token.unwrap_or_default();
        match self.token_state(token, now) {
            TokenState::Invalid => return err(40014, "invalid access_token"),
            TokenState::Expired => return err(42001, "access_token expired"),
            TokenState::Valid if !matches!(self.tokens[token].family, Family::Work | Family::Corp) => {
                return err(40014, "invalid access_token");
            }
            TokenState::Valid => {}
        }
        let prefix = if agent { "AGENT" } else { "CORPJSAPI" };
        json!({"errcode": 0, "errmsg": "ok", "ticket": format!("{prefix}_{}", random(60)), "expires_in": self.cfg.ticket_ttl_secs})
    }

    /// `POST /cgi-bin/service/get_provider_token`.
    pub fn provider_token(&mut self, body: &Value, now: i64) -> Answer {
        let corpid = body["corpid"].as_str().unwrap_or_default();
        match self.providers.get(corpid) {
            None => err(40013, "invalid corpid"),
            Some(s) if body["provider_secret"].as_str() != Some(s) => err(40001, "invalid credential"),
            Some(_) => {
                let corpid = corpid.to_owned();
                let mut a = self.token_for(&corpid, Family::Provider, "provider_access_token", now);
                a["errcode"] = json!(0);
                a["errmsg"] = json!("ok");
                a
            }
        }
    }

    /// `POST /cgi-bin/service/get_suite_token`: no errcode on success.
    pub fn suite_token(&mut self, body: &Value, now: i64) -> Answer {
        let suite_id = body["suite_id"].as_str().unwrap_or_default();
        let Some(s) = self.suites.get(suite_id) else {
            return err(40083, "invalid suite_id");
        };
        if body["suite_secret"].as_str() != Some(s.secret.as_str()) {
            return err(40001, "invalid credential");
        }
        let ticket = body["suite_ticket"].as_str().unwrap_or_default();
        if !s
            .tickets
            .iter()
            .any(|(t, at)| t == ticket && now - at <= 30 * 60 * 1000)
        {
            return err(40085, "invalid suite_ticket");
        }
        let suite_id = suite_id.to_owned();
        self.issue_as(&suite_id, Family::Suite, "suite_access_token", now).1
    }

    /// A corp installs the suite: a temporary auth code (single use, 10 min).
    pub fn new_install_code(&mut self, suite_id: &str, corpid: &str, agentid: u64, now: i64) -> String {
        let code = format!("authcode_{}", random(64));
        self.install_codes.insert(
            code.clone(),
            (suite_id.to_owned(), corpid.to_owned(), agentid, now + 600_000),
        );
        code
    }

    fn corp_answer(&self, corpid: &str, agentid: u64) -> Value {
        json!({
            "auth_corp_info": {"corpid": corpid, "corp_name": format!("Corp {corpid}")},
            "auth_info": {"agent": [{"agentid": agentid, "name": "demo app"}]},
        })
    }

    /// `POST /cgi-bin/service/get_permanent_code`.
    pub fn permanent_code(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let suite = match self.token_owner(token, Family::Suite, now) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let code = body["auth_code"].as_str().unwrap_or_default();
        let Some((s, corpid, agentid, expires)) = self.install_codes.remove(code) else {
            return err(40029, "invalid code");
        };
        if s != suite || now > expires {
            return err(40029, "invalid code");
        }
        let permanent = format!("permanentcode_{}", random(40));
        self.installs.insert(
            (suite.clone(), corpid.clone()),
            Install {
                permanent_code: permanent.clone(),
                agentid,
            },
        );
        let owner = format!("corp:{suite}:{corpid}");
        let (token, _) = self.issue_as(&owner, Family::Corp, "access_token", now);
        let mut a = self.corp_answer(&corpid, agentid);
        a["errcode"] = json!(0);
        a["errmsg"] = json!("ok");
        a["access_token"] = json!(token);
        a["expires_in"] = json!(self.cfg.token_ttl_secs);
        a["permanent_code"] = json!(permanent);
        a
    }

    fn install_of(&self, token: Option<&str>, body: &Value, now: i64) -> Result<(String, String, u64), Answer> {
        let suite = self.token_owner(token, Family::Suite, now)?;
        let corpid = body["auth_corpid"].as_str().unwrap_or_default().to_owned();
        match self.installs.get(&(suite.clone(), corpid.clone())) {
            Some(i) if body["permanent_code"].as_str() == Some(i.permanent_code.as_str()) => {
                Ok((suite, corpid, i.agentid))
            }
            _ => Err(err(40084, "invalid permanent_code")),
        }
    }

    /// `POST /cgi-bin/service/get_auth_info`.
    pub fn auth_info(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        match self.install_of(token, body, now) {
            Ok((_, corpid, agentid)) => {
                let mut a = self.corp_answer(&corpid, agentid);
                a["errcode"] = json!(0);
                a["errmsg"] = json!("ok");
                a
            }
            Err(e) => e,
        }
    }

    /// `POST /cgi-bin/service/get_corp_token`: no errcode on success.
    pub fn corp_token(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        match self.install_of(token, body, now) {
            Ok((suite, corpid, _)) => {
                self.token_for(&format!("corp:{suite}:{corpid}"), Family::Corp, "access_token", now)
            }
            Err(e) => e,
        }
    }

    /// An existing install (made long ago): its permanent code, to import.
    pub fn add_install(&mut self, suite_id: &str, corpid: &str, agentid: u64) -> String {
        let permanent = format!("permanentcode_{}", random(40));
        self.installs.insert(
            (suite_id.to_owned(), corpid.to_owned()),
            Install {
                permanent_code: permanent.clone(),
                agentid,
            },
        );
        permanent
    }

    /// Changes an install's agentid (what a `change_auth` reports).
    pub fn change_install(&mut self, suite_id: &str, corpid: &str, agentid: u64) {
        if let Some(i) = self.installs.get_mut(&(suite_id.to_owned(), corpid.to_owned())) {
            i.agentid = agentid;
        }
    }
}
