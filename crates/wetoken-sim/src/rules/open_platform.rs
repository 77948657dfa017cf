//! The Open Platform: components, their tickets and tokens, pre-auth and
//! authorization codes, authorizers and their refresh tokens.

use super::*;

impl World {
    pub fn add_component(&mut self, appid: &str, secret: &str, token: &str, aes_key: &str) {
        self.components
            .insert(appid.to_owned(), ThirdPartyApp::new(secret, token, aes_key));
    }

    pub fn component(&self, appid: &str) -> Option<&ThirdPartyApp> {
        self.components.get(appid)
    }

    /// A new component_verify_ticket, as WeChat pushes every 10 minutes.
    pub fn new_verify_ticket(&mut self, component: &str, now: i64) -> Option<String> {
        let ticket = format!("ticket@@@{}", random(60));
        self.components.get_mut(component)?.tickets.push((ticket.clone(), now));
        Some(ticket)
    }

    /// `POST /cgi-bin/component/api_component_token`.
    pub fn component_token(&mut self, body: &Value, now: i64) -> Answer {
        let appid = body["component_appid"].as_str().unwrap_or_default();
        let Some(c) = self.components.get(appid) else {
            return err(61011, "invalid component");
        };
        match body["component_appsecret"].as_str() {
            None | Some("") => return err(41004, "appsecret missing"),
            Some(s) if s != c.secret => return err(40125, "invalid appsecret"),
            Some(_) => {}
        }
        let ticket = body["component_verify_ticket"].as_str().unwrap_or_default();
        match c.tickets.iter().find(|(t, _)| t == ticket) {
            None => return err(61006, "component ticket is invalid"),
            Some((_, issued)) if now - issued > 12 * 3600 * 1000 => return err(61005, "component ticket is expired"),
            Some(_) => {}
        }
        let used = self
            .quota_used
            .entry((appid.to_owned(), "api_component_token"))
            .or_default();
        if *used >= self.cfg.daily_quota {
            return err(45009, "reach max api daily quota limit");
        }
        *used += 1;
        let appid = appid.to_owned();
        self.issue_as(&appid, Family::Component, "component_access_token", now)
            .1
    }

    /// `POST /cgi-bin/component/api_create_preauthcode`.
    pub fn pre_auth_code(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let owner = match self.token_owner(token, Family::Component, now) {
            Ok(o) => o,
            Err(e) => return e,
        };
        if body["component_appid"].as_str() != Some(owner.as_str()) {
            return err(61011, "invalid component");
        }
        let code = format!("preauthcode@@@{}", random(40));
        self.pre_auth_codes.insert(code.clone(), (owner, now + 600_000));
        json!({"pre_auth_code": code, "expires_in": 600})
    }

    /// The authorization page consumes a pre_auth_code of `component`:
    /// once, within its 600 s.
    pub fn use_pre_auth_code(&mut self, component: &str, code: &str, now: i64) -> Result<(), &'static str> {
        match self.pre_auth_codes.get(code) {
            Some((owner, _)) if owner != component => Err("the pre_auth_code belongs to another component"),
            Some((_, until)) if *until <= now => Err("the pre_auth_code has expired"),
            Some(_) => {
                self.pre_auth_codes.remove(code);
                Ok(())
            }
            None => Err("unknown or used pre_auth_code"),
        }
    }

    /// An authorization code, as WeChat gives one after an administrator
    /// authorizes `authorizer` (in the redirect and in the `authorized` event).
    pub fn new_auth_code(&mut self, component: &str, authorizer: &str, now: i64) -> String {
        let code = format!("queryauthcode@@@{}", random(40));
        self.auth_codes.insert(
            code.clone(),
            (component.to_owned(), authorizer.to_owned(), now + 600_000),
        );
        code
    }

    fn new_refresh_token() -> String {
        format!("refreshtoken@@@{}", random(40))
    }

    /// `POST /cgi-bin/component/api_query_auth`.
    pub fn query_auth(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let owner = match self.token_owner(token, Family::Component, now) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let code = body["authorization_code"].as_str().unwrap_or_default();
        let Some((component, authorizer, expires)) = self.auth_codes.get(code).cloned() else {
            return err(61009, "code is invalid");
        };
        if component != owner || now > expires {
            return err(61009, "code is invalid");
        }
        // A new authorization replaces the previous refresh token at once.
        let refresh = Self::new_refresh_token();
        self.authorizations.insert(
            (component, authorizer.clone()),
            Authorization {
                refresh_token: refresh.clone(),
                previous: None,
            },
        );
        let (token, _) = self.issue_as(&authorizer, Family::Authorizer, "authorizer_access_token", now);
        json!({"authorization_info": {
            "authorizer_appid": authorizer,
            "authorizer_access_token": token,
            "expires_in": self.cfg.token_ttl_secs,
            "authorizer_refresh_token": refresh,
            "func_info": [{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": 15}}],
        }})
    }

    /// `POST /cgi-bin/component/api_authorizer_token`.
    pub fn authorizer_token(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let owner = match self.token_owner(token, Family::Component, now) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let appid = body["authorizer_appid"].as_str().unwrap_or_default().to_owned();
        let presented = body["authorizer_refresh_token"].as_str().unwrap_or_default();
        let rotate = self.cfg.rotate_refresh_tokens;
        let grace = self.cfg.grace_secs * 1000;
        let Some(auth) = self.authorizations.get_mut(&(owner, appid.clone())) else {
            return err(61023, "refresh_token is invalid");
        };
        let current = auth.refresh_token == presented;
        let in_grace = auth
            .previous
            .as_ref()
            .is_some_and(|(p, until)| p == presented && now < *until);
        if !current && !in_grace {
            return err(61023, "refresh_token is invalid");
        }
        if rotate && current {
            let new = Self::new_refresh_token();
            auth.previous = Some((std::mem::replace(&mut auth.refresh_token, new), now + grace));
        }
        let refresh = auth.refresh_token.clone();
        let (token, _) = self.issue_as(&appid, Family::Authorizer, "authorizer_access_token", now);
        json!({"authorizer_access_token": token, "expires_in": self.cfg.token_ttl_secs, "authorizer_refresh_token": refresh})
    }

    /// An existing authorization (as if the administrator had authorized
    /// long ago): its refresh token, for importing into wetoken.
    pub fn add_authorization(&mut self, component: &str, authorizer: &str) -> String {
        let refresh = Self::new_refresh_token();
        self.authorizations.insert(
            (component.to_owned(), authorizer.to_owned()),
            Authorization {
                refresh_token: refresh.clone(),
                previous: None,
            },
        );
        refresh
    }

    /// The authorizer's current refresh token (tests check what wetoken stored).
    pub fn refresh_token_of(&self, component: &str, authorizer: &str) -> Option<String> {
        self.authorizations
            .get(&(component.to_owned(), authorizer.to_owned()))
            .map(|a| a.refresh_token.clone())
    }

    /// Invalidates an authorizer's refresh token (as an authorization
    /// elsewhere would): the next api_authorizer_token answers 61023.
    pub fn invalidate_refresh_token(&mut self, component: &str, authorizer: &str) {
        if let Some(a) = self
            .authorizations
            .get_mut(&(component.to_owned(), authorizer.to_owned()))
        {
            a.refresh_token = Self::new_refresh_token();
            a.previous = None;
        }
    }
}
