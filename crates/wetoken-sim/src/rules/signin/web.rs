//! Web authorization (contract-2 §A.3, §A.4): a consent page's code for the
//! user's token, refreshed without a secret (the component's variants with
//! its token), and what a user token does (`sns/userinfo`, `sns/auth`).

use std::collections::HashMap;

use serde_json::json;

use super::{Purpose, REFRESH_TTL_MS, Refresh, USER_TOKEN_TTL_SECS, UserToken, openid, unionid};
use crate::rules::{Answer, World, err, random};

impl World {
    /// `GET /sns/oauth2/access_token`.
    pub fn oauth_access_token(&mut self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("grant_type") != Some("authorization_code") {
            return err(40002, "invalid grant_type");
        }
        match self.app_secret(get("appid"), get("secret")) {
            Ok(appid) => self.user_token(&appid, get("code"), None, now),
            Err(e) => e,
        }
    }

    /// `GET /sns/oauth2/component/access_token`.
    pub fn component_oauth_access_token(&mut self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("grant_type") != Some("authorization_code") {
            return err(40002, "invalid grant_type");
        }
        match self.component_for(get("appid"), get("component_appid"), get("component_access_token"), now) {
            Ok((component, appid)) => self.user_token(&appid, get("code"), Some(component), now),
            Err(e) => e,
        }
    }

    fn user_token(&mut self, appid: &str, code: Option<&str>, component: Option<String>, now: i64) -> Answer {
        let code = match self.take_code(appid, code, true, now) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let Purpose::Web { scope, component: by } = code.purpose else {
            return err(40029, "invalid code");
        };
        if by != component {
            return err(40029, "invalid code");
        }
        let openid = openid(appid, &code.user);
        let token = format!("USER_{}", random(96));
        let refresh_token = format!("REFRESH_{}", random(96));
        let users = &mut self.users;
        users.user_tokens.insert(
            token.clone(),
            UserToken {
                appid: appid.to_owned(),
                openid: openid.clone(),
                user: code.user.clone(),
                scope: scope.clone(),
                expires_at: now + USER_TOKEN_TTL_SECS * 1000,
            },
        );
        users.refresh.insert(
            refresh_token.clone(),
            Refresh {
                appid: appid.to_owned(),
                user: code.user.clone(),
                scope: scope.clone(),
                component,
                token: token.clone(),
                expires_at: now + REFRESH_TTL_MS,
            },
        );
        let mut a = json!({
            "access_token": token,
            "expires_in": USER_TOKEN_TTL_SECS,
            "refresh_token": refresh_token,
            "openid": openid,
            "scope": scope,
        });
        if scope.split(',').any(|s| s == "snsapi_userinfo")
            && let Some(open) = users.bound.get(appid)
        {
            a["unionid"] = json!(unionid(open, &code.user));
        }
        if users.snapshot.contains(&(appid.to_owned(), code.user.clone())) {
            a["is_snapshotuser"] = json!(1);
        }
        a
    }

    /// `GET /sns/oauth2/refresh_token` (no secret).
    pub fn oauth_refresh(&mut self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("grant_type") != Some("refresh_token") {
            return err(40002, "invalid grant_type");
        }
        let appid = get("appid").unwrap_or_default().to_owned();
        self.refresh_user_token(&appid, get("refresh_token"), None, now)
    }

    /// `GET /sns/oauth2/component/refresh_token`.
    pub fn component_oauth_refresh(&mut self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("grant_type") != Some("refresh_token") {
            return err(40002, "invalid grant_type");
        }
        match self.component_for(get("appid"), get("component_appid"), get("component_access_token"), now) {
            Ok((component, appid)) => self.refresh_user_token(&appid, get("refresh_token"), Some(component), now),
            Err(e) => e,
        }
    }

    fn refresh_user_token(
        &mut self,
        appid: &str,
        refresh_token: Option<&str>,
        component: Option<String>,
        now: i64,
    ) -> Answer {
        let users = &mut self.users;
        let Some(r) = refresh_token
            .and_then(|t| users.refresh.get_mut(t))
            .filter(|r| r.appid == appid && r.component == component && now < r.expires_at)
        else {
            return err(40030, "invalid refresh_token");
        };
        let openid = openid(appid, &r.user);
        let live = users.user_tokens.get(&r.token).is_some_and(|t| now < t.expires_at);
        if !live {
            users.user_tokens.remove(&r.token);
            r.token = format!("USER_{}", random(96));
        }
        users.user_tokens.insert(
            r.token.clone(),
            UserToken {
                appid: appid.to_owned(),
                openid: openid.clone(),
                user: r.user.clone(),
                scope: r.scope.clone(),
                expires_at: now + USER_TOKEN_TTL_SECS * 1000,
            },
        );
        json!({
            "access_token": r.token,
            "expires_in": USER_TOKEN_TTL_SECS,
            "refresh_token": refresh_token.unwrap_or_default(),
            "openid": openid,
            "scope": r.scope,
        })
    }

    /// A user token's grant, or WeChat's error.
    fn user_grant(&self, token: Option<&str>, now: i64) -> Result<&UserToken, Answer> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err(41001, "access_token missing"))?;
        match self.users.user_tokens.get(token) {
            Some(t) if now < t.expires_at => Ok(t),
            Some(_) => Err(err(42001, "access_token expired")),
            None => Err(err(40001, "invalid credential, access_token is invalid or not latest")),
        }
    }

    /// `GET /sns/userinfo`.
    pub fn userinfo(&self, token: Option<&str>, openid: Option<&str>, now: i64) -> Answer {
        let grant = match self.user_grant(token, now) {
            Ok(g) => g,
            Err(e) => return e,
        };
        if openid != Some(grant.openid.as_str()) {
            return err(40003, "invalid openid");
        }
        if !grant.scope.split(',').any(|s| s == "snsapi_userinfo") {
            return err(48001, "api unauthorized");
        }
        let mut a = json!({
            "openid": grant.openid,
            "nickname": format!("user {}", &grant.openid[1..7]),
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
        });
        if let Some(open) = self.users.bound.get(&grant.appid) {
            a["unionid"] = json!(unionid(open, &grant.user));
        }
        a
    }

    /// `GET /sns/auth`.
    pub fn sns_auth(&self, token: Option<&str>, openid: Option<&str>, now: i64) -> Answer {
        match self.user_grant(token, now) {
            Ok(g) if openid == Some(g.openid.as_str()) => json!({"errcode": 0, "errmsg": "ok"}),
            Ok(_) => err(40003, "invalid openid"),
            Err(e) => e,
        }
    }
}
