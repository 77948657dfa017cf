//! What every business API checks of a token, revoked and poisoned
//! tokens, and the diagnostics APIs (domain probe, quota, rid, clear_quota).

use super::*;

impl World {
    /// The check every business API makes of its token: 41001 missing, 40001
    /// invalid or retired beyond grace, 42001 expired.
    pub fn business(&self, token: Option<&str>, now: i64) -> Result<(), Answer> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err(41001, "access_token missing"))?;
        if self.poisoned.contains(token) {
            return Err(err(40001, "invalid credential, access_token is invalid or not latest"));
        }
        match self.token_state(token, now) {
            TokenState::Valid => Ok(()),
            TokenState::Expired => Err(err(42001, "access_token expired")),
            TokenState::Invalid => Err(err(40001, "invalid credential, access_token is invalid or not latest")),
        }
    }

    /// `POST /cgi-bin/message/custom/send`: a customer-service message,
    /// recorded with the appid of the token that sent it.
    pub fn custom_send(&mut self, token: Option<&str>, body: &[u8], now: i64) -> Answer {
        if let Err(e) = self.business(token, now) {
            return e;
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return err(47001, "data format error");
        };
        let appid = token
            .and_then(|t| self.tokens.get(t))
            .map(|t| t.appid.clone())
            .unwrap_or_default();
        self.sent.push((appid, body));
        json!({"errcode": 0, "errmsg": "ok"})
    }

    /// The customer-service messages sent so far: (appid, body).
    pub fn sent_messages(&self) -> Vec<(String, Value)> {
        self.sent.clone()
    }

    /// Kills a token for every API at once (as another party's forced
    /// refresh does): normal-mode stable_token then issues a new one.
    pub fn revoke(&mut self, token: &str, now: i64) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.dies_at = Some(now);
        }
    }

    /// Makes the APIs refuse a token that stable_token's normal mode still
    /// answers (see `poisoned`); a forced refresh replaces it.
    pub fn poison(&mut self, token: &str) {
        self.poisoned.insert(token.to_owned());
    }

    /// `GET /cgi-bin/get_api_domain_ip` (WeChat and WeCom): the API's
    /// addresses for any valid token; costs no business quota.
    pub fn api_domain_ip(&self, token: Option<&str>, now: i64) -> Answer {
        match self.business(token, now) {
            Ok(()) => json!({"ip_list": ["127.0.0.1", "101.89.47.18"], "errcode": 0, "errmsg": "ok"}),
            Err(e) => e,
        }
    }

    /// The account a valid token of any family belongs to, and its family.
    fn owner_any(&self, token: Option<&str>, now: i64) -> Result<(String, Family), Answer> {
        self.business(token, now)?;
        let t = &self.tokens[token.unwrap_or_default()];
        Ok((t.appid.clone(), t.family))
    }

    /// Remembers the request behind an error answer that names a rid, for
    /// `rid/get`.
    pub fn record_rid(&mut self, answer: &Value, url: &str, body: &str, now: i64) {
        let Some(rid) = answer["errmsg"]
            .as_str()
            .and_then(|m| m.split("rid: ").nth(1))
            .map(|r| r.trim().to_owned())
        else {
            return;
        };
        self.rids.insert(
            rid,
            json!({
                "invoke_time": now / 1000,
                "cost_in_ms": 1,
                "request_url": url,
                "request_body": body,
                "response_body": answer.to_string(),
                "client_ip": "127.0.0.1",
            }),
        );
    }

    /// `POST /cgi-bin/openapi/quota/get`.
    pub fn quota_get(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let (appid, family) = match self.owner_any(token, now) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let Some(path) = body["cgi_path"].as_str().filter(|p| !p.is_empty()) else {
            return err(47001, "data format error");
        };
        let endpoint = match path {
            "/cgi-bin/token" => "token",
            "/cgi-bin/stable_token" => "stable_token",
            "/cgi-bin/component/api_component_token" => "api_component_token",
            p if p.starts_with("/cgi-bin/") || p.starts_with("/wxa/") || p.starts_with("/sns/") => "other",
            _ => return err(76021, "cgi_path not found, please check"),
        };
        let used = self.quota_used.get(&(appid, endpoint)).copied().unwrap_or(0);
        let limit = self.cfg.daily_quota;
        let mut a = json!({
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": limit, "used": used, "remain": limit.saturating_sub(used)},
            "rate_limit": {"call_count": 0, "refresh_second": 60},
        });
        if family == Family::Authorizer {
            a["component_rate_limit"] = json!({"call_count": 0, "refresh_second": 60});
        }
        a
    }

    /// `POST /cgi-bin/openapi/rid/get`.
    pub fn rid_get(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        if let Err(e) = self.owner_any(token, now) {
            return e;
        }
        let Some(rid) = body["rid"].as_str().filter(|r| !r.is_empty()) else {
            return err(47001, "data format error");
        };
        match self.rids.get(rid) {
            Some(r) => json!({"errcode": 0, "errmsg": "ok", "request": r}),
            None => err(76001, "rid not found"),
        }
    }

    /// Spends one of the month's 10 clears of `appid` and resets its daily
    /// counts, or 48006.
    fn spend_clear(&mut self, appid: &str, now: i64) -> Answer {
        let month = chrono::DateTime::from_timestamp_millis(now + 8 * 3600 * 1000)
            .map(|t| t.format("%Y-%m").to_string())
            .unwrap_or_default();
        let used = self.clears.entry((appid.to_owned(), month)).or_default();
        if *used >= 10 {
            return err(48006, "forbid to clear quota because of reaching the limit");
        }
        *used += 1;
        self.quota_used.retain(|(a, _), _| a != appid);
        json!({"errcode": 0, "errmsg": "ok"})
    }

    /// `POST /cgi-bin/clear_quota?access_token=` `{"appid"}`.
    pub fn clear_quota(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let (owner, _) = match self.owner_any(token, now) {
            Ok(o) => o,
            Err(e) => return e,
        };
        match body["appid"].as_str() {
            None | Some("") => err(41002, "appid missing"),
            Some(a) if a != owner => err(40013, "invalid appid"),
            Some(a) => {
                let a = a.to_owned();
                self.spend_clear(&a, now)
            }
        }
    }

    /// `POST /cgi-bin/component/clear_quota/v2` `{"component_appid",
    /// "appsecret", "appid"?}`.
    pub fn component_clear_quota(&mut self, body: &Value, now: i64) -> Answer {
        let component = body["component_appid"].as_str().unwrap_or_default();
        let Some(c) = self.components.get(component) else {
            return err(61011, "invalid component");
        };
        if body["appsecret"].as_str() != Some(c.secret.as_str()) {
            return err(40125, "invalid appsecret");
        }
        let target = match body["appid"].as_str().filter(|a| !a.is_empty()) {
            None => component.to_owned(),
            Some(a) if self.authorizations.contains_key(&(component.to_owned(), a.to_owned())) => a.to_owned(),
            Some(_) => return err(61003, "component is not authorized by this account"),
        };
        self.spend_clear(&target, now)
    }

    /// Shortens every live token of an app to expire in `secs` (tests of
    /// proactive refresh and expiry).
    pub fn expire_tokens_in(&mut self, appid: &str, secs: i64, now: i64) {
        for t in self.tokens.values_mut().filter(|t| t.appid == appid) {
            t.expires_at = t.expires_at.min(now + secs * 1000);
        }
    }
}
