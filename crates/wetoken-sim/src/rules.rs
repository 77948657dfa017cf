//! WeChat's rules, in one place. Everything the simulator decides is here;
//! `server.rs` only moves bytes. Sources: ../shared/reference/
//! wechat-upstream-contract.md §1 and §5 (official docs, SDK behaviour).
//!
//! | rule | WeChat | here |
//! |---|---|---|
//! | classic `/cgi-bin/token` | every call issues a new token; the previous stays valid 5 min | `issue` with grace `grace_secs` (default 300) |
//! | only the latest predecessor has grace | a third fetch kills the first token | older retired tokens die at the next rotation |
//! | `stable_token` normal mode | same token while valid; rotated in its last 5 min, the old one still valid to its end | `stable` |
//! | `stable_token` force | new token, old one in grace; ≥ 30 s between forces else no refresh; 20 a day | `stable` |
//! | `get_api_domain_ip` | any valid token (account, component, authorizer, WeCom app); no business quota, changes nothing; 40001/42001 for a dead one | `api_domain_ip` |
//! | a token refused by the APIs | another party's force kills it (`revoke`: normal mode then issues a new one); or the APIs refuse one that normal mode still answers (`poison`: only a force replaces it) | `revoke`, `poison` |
//! | `/sns/userinfo` | a user's web token only; an account's token is 40001 | route `sns_userinfo` |
//! | `media/get` | a valid token; the medium, binary or (at times) with a text type; 40007 for an unknown id | route `media_get`: `big-{bytes}` is that many bytes of text |
//! | classic and stable are isolated | fetching one never invalidates the other | families |
//! | tickets | need a valid token; a new ticket each call, the old valid to its end | `ticket` |
//! | errors | 40002 grant_type, 41002 no appid, 41004 no secret, 40013 unknown appid, 40125 wrong secret, 41001 no token, 40001 invalid/retired token, 42001 expired token, 45009 daily quota, 47001 bad JSON | as WeChat |
//! | success | token endpoints omit errcode; getticket says errcode 0 | as WeChat |
//! | daily quota | 2000 token calls a day on a new account | `daily_quota`, per appid and endpoint |
//! | component_verify_ticket | pushed every 10 min, valid 12 h; api_component_token needs a valid one (61006 unknown, 61005 expired) | `new_verify_ticket`, `component_token` |
//! | component_access_token | each fetch issues a new one, the previous valid 5 min | family `Component` |
//! | pre_auth_code | single use, 600 s | `pre_auth_code` |
//! | authorization page | `mp.weixin.qq.com/cgi-bin/componentloginpage` (PC) or `open.weixin.qq.com/wxaopen/safe/bindcomponent` (H5) with `component_appid`, `pre_auth_code`, `redirect_uri`; the administrator confirms; the browser goes to `redirect_uri?auth_code=…&expires_in=600`; a used, expired or foreign pre_auth_code is refused | `use_pre_auth_code`, routes `authorization_page` (served at the same paths) |
//! | authorization code | from the authorization page or the `authorized` event, 10 min; usable by both | `new_auth_code`, `query_auth` (61009 invalid) |
//! | authorizer_refresh_token | replaced by a new authorization; may rotate on api_authorizer_token (then the old one works 5 min); else 61023 | `authorizer_token` |
//! | unknown component | 61011 | |
//! | WeCom gettoken | one token per app (per secret); the same while valid; errcode 0 on success; 40013 unknown corpid, 40001 wrong secret | `work_token` |
//! | WeCom tickets | get_jsapi_ticket (corp) and ticket/get?type=agent_config (app) with a valid app or corp token; 40014 invalid token, 42001 expired | `work_ticket` |
//! | suite_ticket | pushed every 10 min, valid 30 min; get_suite_token needs one (40085), no errcode on success; 40083 unknown suite | `suite_token` |
//! | install auth code | single use, 10 min (40029 otherwise); get_permanent_code answers the corp's token too | `permanent_code` |
//! | get_corp_token | suite token + permanent code (40084 wrong code); no errcode on success | `corp_token` |
//! | get_provider_token | errcode 0 on success; 40013 unknown corpid, 40001 wrong secret | `provider_token` |
//! | openapi/quota/get | an account's token; `cgi_path` (47001 without, 76021 unknown) → `quota {daily_limit, used, remain}`, `rate_limit`; `component_rate_limit` for an authorizer's token | `quota_get` |
//! | openapi/rid/get | a token; the `rid` an error answer named → `request {invoke_time, cost_in_ms, request_url, request_body, response_body, client_ip}`; 76001 unknown rid | `rid_get`, `record_rid` |
//! | clear_quota | the account's token and `appid` (its own); resets its daily counts; 10 a month (in +08:00), then 48006 | `clear_quota` |
//! | component/clear_quota/v2 | `component_appid` + `appsecret` (40125 wrong), `appid` an authorized account (61003 otherwise); the same monthly limit, on that account | `component_clear_quota` |

use std::collections::HashMap;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};

/// Tunables of the simulated WeChat.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a replaced token keeps working.
    pub grace_secs: i64,
    /// Lifetime of a new access token (`expires_in`).
    pub token_ttl_secs: i64,
    /// Lifetime of a new ticket.
    pub ticket_ttl_secs: i64,
    /// Calls per appid per token endpoint before 45009.
    pub daily_quota: u32,
    /// stable_token hands out a new token in the last this-many seconds.
    pub stable_rotate_window_secs: i64,
    /// Minimum gap between effective stable_token force refreshes.
    pub force_min_gap_secs: i64,
    /// Effective force refreshes a day.
    pub force_daily: u32,
    /// api_authorizer_token answers a new authorizer_refresh_token each time.
    pub rotate_refresh_tokens: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            grace_secs: 300,
            token_ttl_secs: 7200,
            ticket_ttl_secs: 7200,
            daily_quota: 2000,
            stable_rotate_window_secs: 300,
            force_min_gap_secs: 30,
            force_daily: 20,
            rotate_refresh_tokens: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Classic,
    Stable,
    Component,
    Authorizer,
    Work,
    Suite,
    Corp,
    Provider,
}

#[derive(Debug, Clone)]
struct TokenInfo {
    appid: String,
    family: Family,
    expires_at: i64,
    /// Set when replaced: the end of its grace.
    dies_at: Option<i64>,
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Valid,
    Expired,
    Invalid,
}

/// A third-party app WeChat pushes tickets to: an Open Platform component
/// (component_verify_ticket) or a WeCom suite (suite_ticket).
#[derive(Debug, Clone)]
pub struct ThirdPartyApp {
    pub secret: String,
    pub token: String,
    pub aes_key: String,
    /// Tickets pushed, with the instant each was issued.
    tickets: Vec<(String, i64)>,
}

impl ThirdPartyApp {
    fn new(secret: &str, token: &str, aes_key: &str) -> Self {
        ThirdPartyApp {
            secret: secret.to_owned(),
            token: token.to_owned(),
            aes_key: aes_key.to_owned(),
            tickets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Authorization {
    refresh_token: String,
    /// The previous refresh token and when it stops working.
    previous: Option<(String, i64)>,
}

#[derive(Debug, Clone)]
struct Install {
    permanent_code: String,
    agentid: u64,
}

#[derive(Debug, Default)]
pub struct World {
    pub cfg: SimConfig,
    apps: HashMap<String, String>,
    tokens: HashMap<String, TokenInfo>,
    current: HashMap<(String, Family), String>,
    last_force: HashMap<String, i64>,
    forces_today: HashMap<String, u32>,
    tickets: HashMap<String, (String, i64)>,
    quota_used: HashMap<(String, &'static str), u32>,
    components: HashMap<String, ThirdPartyApp>,
    pre_auth_codes: HashMap<String, (String, i64)>,
    /// code → (component, authorizer appid, expires at)
    auth_codes: HashMap<String, (String, String, i64)>,
    authorizations: HashMap<(String, String), Authorization>,
    /// corpid → agentid → secret (WeCom self-built apps)
    work_apps: HashMap<String, HashMap<u64, String>>,
    providers: HashMap<String, String>,
    suites: HashMap<String, ThirdPartyApp>,
    /// install auth code → (suite, corpid, agentid, expires at)
    install_codes: HashMap<String, (String, String, u64, i64)>,
    installs: HashMap<(String, String), Install>,
    /// rid → the failed request, as rid/get answers it
    rids: HashMap<String, Value>,
    /// (appid, "YYYY-MM" in +08:00) → quota clears that month
    clears: HashMap<(String, String), u32>,
    /// Tokens WeChat's APIs refuse (40001) while its token service still
    /// answers them in normal mode: what a forced refresh exists for.
    poisoned: std::collections::HashSet<String>,
}

pub type Answer = Value;

fn err(errcode: i64, errmsg: &str) -> Answer {
    json!({"errcode": errcode, "errmsg": format!("{errmsg} rid: {}", random(8))})
}

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Looks like a real token: long, URL-safe.
fn new_token(prefix: &str) -> String {
    format!("{prefix}_{}", random(120))
}

impl World {
    pub fn new(cfg: SimConfig) -> Self {
        World {
            cfg,
            ..Default::default()
        }
    }

    pub fn add_app(&mut self, appid: &str, secret: &str) {
        self.apps.insert(appid.to_owned(), secret.to_owned());
    }

    /// Forget quota use (WeChat's day rolled over).
    pub fn reset_quota(&mut self) {
        self.quota_used.clear();
        self.forces_today.clear();
    }

    pub fn token_state(&self, token: &str, now: i64) -> TokenState {
        match self.tokens.get(token) {
            None => TokenState::Invalid,
            Some(t) if t.dies_at.is_some_and(|d| now >= d) => TokenState::Invalid,
            Some(t) if now >= t.expires_at => TokenState::Expired,
            Some(_) => TokenState::Valid,
        }
    }

    /// Checks grant_type, appid, secret and quota of a token request.
    fn admit(
        &mut self,
        endpoint: &'static str,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
    ) -> Result<String, Answer> {
        if grant_type != Some("client_credential") {
            return Err(err(40002, "invalid grant_type"));
        }
        let appid = appid
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err(41002, "appid missing"))?;
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(41004, "appsecret missing"))?;
        let known = self.apps.get(appid).ok_or_else(|| err(40013, "invalid appid"))?;
        if known != secret {
            return Err(err(40125, "invalid appsecret"));
        }
        let used = self.quota_used.entry((appid.to_owned(), endpoint)).or_default();
        if *used >= self.cfg.daily_quota {
            return Err(err(
                45009,
                "reach max api daily quota limit, could get access_token by getStableAccessToken",
            ));
        }
        *used += 1;
        Ok(appid.to_owned())
    }

    /// Issues a new token of a family, retiring the current one with grace
    /// and killing any older one still in grace.
    fn issue(&mut self, appid: &str, family: Family, now: i64) -> Answer {
        for t in self.tokens.values_mut() {
            if t.appid == appid && t.family == family && t.dies_at.is_some() {
                t.dies_at = Some(now.min(t.dies_at.unwrap_or(now)));
            }
        }
        let key = (appid.to_owned(), family);
        if let Some(prev) = self.current.get(&key).and_then(|p| self.tokens.get_mut(p)) {
            prev.dies_at = Some((now + self.cfg.grace_secs * 1000).min(prev.expires_at));
        }
        let token = new_token(if family == Family::Stable { "STABLE" } else { "ACCESS" });
        let expires_at = now + self.cfg.token_ttl_secs * 1000;
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                appid: appid.to_owned(),
                family,
                expires_at,
                dies_at: None,
            },
        );
        self.current.insert(key, token.clone());
        json!({"access_token": token, "expires_in": self.cfg.token_ttl_secs})
    }

    /// `GET /cgi-bin/token`.
    pub fn classic(&mut self, grant_type: Option<&str>, appid: Option<&str>, secret: Option<&str>, now: i64) -> Answer {
        match self.admit("token", grant_type, appid, secret) {
            Ok(appid) => self.issue(&appid, Family::Classic, now),
            Err(e) => e,
        }
    }

    /// `POST /cgi-bin/stable_token`.
    pub fn stable(
        &mut self,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
        force: bool,
        now: i64,
    ) -> Answer {
        let appid = match self.admit("stable_token", grant_type, appid, secret) {
            Ok(a) => a,
            Err(e) => return e,
        };
        let current = self
            .current
            .get(&(appid.clone(), Family::Stable))
            .and_then(|t| Some((t.clone(), self.tokens.get(t)?.expires_at)))
            .filter(|(t, _)| self.token_state(t, now) == TokenState::Valid);
        if force {
            let recent = self
                .last_force
                .get(&appid)
                .is_some_and(|at| now - at < self.cfg.force_min_gap_secs * 1000);
            let spent = self.forces_today.get(&appid).copied().unwrap_or(0) >= self.cfg.force_daily;
            if !recent && !spent {
                self.last_force.insert(appid.clone(), now);
                *self.forces_today.entry(appid.clone()).or_default() += 1;
                return self.issue(&appid, Family::Stable, now);
            }
        }
        match current {
            Some((token, expires_at)) if expires_at - now > self.cfg.stable_rotate_window_secs * 1000 => {
                json!({"access_token": token, "expires_in": (expires_at - now) / 1000})
            }
            _ => self.issue(&appid, Family::Stable, now),
        }
    }

    /// `GET /cgi-bin/ticket/getticket`.
    pub fn ticket(&mut self, access_token: Option<&str>, ty: Option<&str>, now: i64) -> Answer {
        let Some(token) = access_token.filter(|t| !t.is_empty()) else {
            return err(41001, "access_token missing");
        };
        match self.token_state(token, now) {
            TokenState::Invalid => {
                return err(40001, "invalid credential, access_token is invalid or not latest");
            }
            TokenState::Expired => return err(42001, "access_token expired"),
            TokenState::Valid => {}
        }
        let ty = match ty {
            Some(t @ ("jsapi" | "wx_card")) => t,
            _ => return err(40097, "invalid args"),
        };
        let appid = self.tokens[token].appid.clone();
        let ticket = format!("{}_{}", if ty == "jsapi" { "JSAPI" } else { "CARD" }, random(80));
        self.tickets.insert(
            format!("{appid}/{ty}"),
            (ticket.clone(), now + self.cfg.ticket_ttl_secs * 1000),
        );
        json!({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": self.cfg.ticket_ttl_secs})
    }

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

    /// The appid of a valid token of `family`, or WeChat's error.
    fn token_owner(&self, token: Option<&str>, family: Family, now: i64) -> Result<String, Answer> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err(41001, "access_token missing"))?;
        match self.token_state(token, now) {
            TokenState::Invalid => Err(err(40001, "invalid credential, access_token is invalid or not latest")),
            TokenState::Expired => Err(err(42001, "access_token expired")),
            TokenState::Valid if self.tokens[token].family != family => Err(err(40014, "invalid access_token")),
            TokenState::Valid => Ok(self.tokens[token].appid.clone()),
        }
    }

    /// Re-labels an issued token answer: `{"<field>": token, "expires_in"}`.
    fn issue_as(&mut self, appid: &str, family: Family, field: &str, now: i64) -> (String, Answer) {
        let a = self.issue(appid, family, now);
        let token = a["access_token"].as_str().unwrap_or_default().to_owned();
        (
            token.clone(),
            json!({ field: token, "expires_in": self.cfg.token_ttl_secs }),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let mut w = World::new(SimConfig::default());
        w.add_app("wx1", "s1");
        w
    }

    fn token(a: &Answer) -> String {
        a["access_token"].as_str().unwrap().to_owned()
    }

    const GT: Option<&str> = Some("client_credential");

    #[test]
    fn the_authorization_page_uses_a_pre_auth_code_once_within_ten_minutes() {
        let mut w = world();
        w.add_component("wxc", "cs", "tok", &"a".repeat(43));
        w.add_component("wxd", "ds", "tok", &"a".repeat(43));
        let ticket = w.new_verify_ticket("wxc", 0).unwrap();
        let body = json!({"component_appid": "wxc", "component_appsecret": "cs", "component_verify_ticket": ticket});
        let ct = w.component_token(&body, 0)["component_access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut code = || {
            w.pre_auth_code(Some(&ct), &json!({"component_appid": "wxc"}), 0)["pre_auth_code"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (a, b, c) = (code(), code(), code());
        assert!(w.use_pre_auth_code("wxd", &a, 1).is_err(), "another component's code");
        assert_eq!(w.use_pre_auth_code("wxc", &a, 1), Ok(()));
        assert!(w.use_pre_auth_code("wxc", &a, 2).is_err(), "used once");
        assert!(w.use_pre_auth_code("wxc", &b, 600_000).is_err(), "expired after 600 s");
        assert_eq!(w.use_pre_auth_code("wxc", &c, 599_999), Ok(()));
        assert!(w.use_pre_auth_code("wxc", "made-up", 1).is_err());
    }

    #[test]
    fn diagnostics_count_quota_find_rids_and_clear_ten_times_a_month() {
        let mut w = world();
        let code = |a: &Answer| a["errcode"].as_i64().unwrap();
        let t = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
        let path = json!({"cgi_path": "/cgi-bin/token"});
        let q = w.quota_get(Some(&t), &path, 0);
        assert_eq!(
            (q["quota"]["used"].as_u64(), q["quota"]["remain"].as_u64()),
            (Some(1), Some(1999))
        );
        assert_eq!(code(&w.quota_get(Some(&t), &json!({"cgi_path": "bogus"}), 0)), 76021);
        assert_eq!(code(&w.quota_get(Some(&t), &json!({}), 0)), 47001);
        assert_eq!(code(&w.quota_get(Some("nope"), &path, 0)), 40001);
        // A failed call's rid finds its request.
        let failed = w.classic(GT, Some("wx1"), Some("bad"), 0);
        w.record_rid(&failed, "/cgi-bin/token", "", 0);
        let rid = failed["errmsg"]
            .as_str()
            .unwrap()
            .split("rid: ")
            .nth(1)
            .unwrap()
            .to_owned();
        let r = w.rid_get(Some(&t), &json!({"rid": rid}), 0);
        assert_eq!(r["request"]["request_url"], "/cgi-bin/token");
        assert!(r["request"]["response_body"].as_str().unwrap().contains("40125"));
        assert_eq!(code(&w.rid_get(Some(&t), &json!({"rid": "zzz"}), 0)), 76001);
        // Ten clears a month, each resetting the day's counts.
        for _ in 0..10 {
            assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx1"}), 0)), 0);
        }
        assert_eq!(w.quota_get(Some(&t), &path, 0)["quota"]["used"], 0);
        assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx1"}), 0)), 48006);
        assert_eq!(code(&w.clear_quota(Some(&t), &json!({"appid": "wx2"}), 0)), 40013);
        let next_month = 40 * 86_400_000;
        let t2 = token(&w.classic(GT, Some("wx1"), Some("s1"), next_month));
        assert_eq!(code(&w.clear_quota(Some(&t2), &json!({"appid": "wx1"}), next_month)), 0);
    }

    #[test]
    fn classic_rotates_with_grace_for_the_last_one_only() {
        let mut w = world();
        let a = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
        let b = token(&w.classic(GT, Some("wx1"), Some("s1"), 1_000));
        assert_eq!(w.token_state(&a, 2_000), TokenState::Valid, "grace");
        assert_eq!(w.token_state(&a, 301_000), TokenState::Invalid, "grace over");
        let c = token(&w.classic(GT, Some("wx1"), Some("s1"), 2_000));
        assert_eq!(w.token_state(&a, 2_000), TokenState::Invalid, "older predecessor dies");
        assert_eq!(w.token_state(&b, 2_000), TokenState::Valid);
        assert_eq!(w.token_state(&c, 7_201_999), TokenState::Valid);
        assert_eq!(w.token_state(&c, 7_202_000), TokenState::Expired);
    }

    #[test]
    fn stable_is_idempotent_until_its_last_minutes() {
        let mut w = world();
        let a = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
        assert_eq!(token(&w.stable(GT, Some("wx1"), Some("s1"), false, 1_000_000)), a);
        let late = w.stable(GT, Some("wx1"), Some("s1"), false, 6_950_000);
        assert_ne!(token(&late), a, "rotated in the last 5 minutes");
        assert_eq!(w.token_state(&a, 6_960_000), TokenState::Valid);
    }

    #[test]
    fn stable_force_needs_30_seconds() {
        let mut w = world();
        let a = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
        let b = token(&w.stable(GT, Some("wx1"), Some("s1"), true, 1_000));
        assert_ne!(a, b);
        assert_eq!(
            token(&w.stable(GT, Some("wx1"), Some("s1"), true, 10_000)),
            b,
            "too soon: no refresh"
        );
        let c = token(&w.stable(GT, Some("wx1"), Some("s1"), true, 40_000));
        assert_ne!(b, c);
        assert_eq!(w.token_state(&a, 40_000), TokenState::Invalid);
    }

    #[test]
    fn families_are_isolated() {
        let mut w = world();
        let s = token(&w.stable(GT, Some("wx1"), Some("s1"), false, 0));
        w.classic(GT, Some("wx1"), Some("s1"), 0);
        w.classic(GT, Some("wx1"), Some("s1"), 0);
        assert_eq!(w.token_state(&s, 0), TokenState::Valid);
    }

    #[test]
    fn errors_as_wechat() {
        let mut w = world();
        let code = |a: Answer| a["errcode"].as_i64().unwrap();
        assert_eq!(code(w.classic(Some("x"), Some("wx1"), Some("s1"), 0)), 40002);
        assert_eq!(code(w.classic(GT, None, Some("s1"), 0)), 41002);
        assert_eq!(code(w.classic(GT, Some("wx1"), None, 0)), 41004);
        assert_eq!(code(w.classic(GT, Some("wx9"), Some("s1"), 0)), 40013);
        assert_eq!(code(w.classic(GT, Some("wx1"), Some("bad"), 0)), 40125);
        assert_eq!(code(w.ticket(None, Some("jsapi"), 0)), 41001);
        assert_eq!(code(w.ticket(Some("nope"), Some("jsapi"), 0)), 40001);
        w.cfg.daily_quota = 1;
        assert!(w.classic(GT, Some("wx1"), Some("s1"), 0).get("errcode").is_none());
        assert_eq!(code(w.classic(GT, Some("wx1"), Some("s1"), 0)), 45009);
    }

    #[test]
    fn tickets_need_a_valid_token() {
        let mut w = world();
        let a = token(&w.classic(GT, Some("wx1"), Some("s1"), 0));
        let t = w.ticket(Some(&a), Some("jsapi"), 1);
        assert_eq!(t["errcode"], 0);
        assert!(t["ticket"].as_str().unwrap().starts_with("JSAPI_"));
        assert_eq!(w.ticket(Some(&a), Some("wx_card"), 1)["errcode"], 0);
        assert_eq!(w.ticket(Some(&a), Some("other"), 1)["errcode"], 40097);
        assert_eq!(w.ticket(Some(&a), Some("jsapi"), 7_200_000)["errcode"], 42001);
    }
}
