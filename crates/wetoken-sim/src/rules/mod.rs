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
//! | users signing in | Mini Program login, web authorization, user tokens, `wxa/checksession` | `signin` (its own table) |
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
//! | wxa/getuserriskrank, express/intracity/* | API security, WeChat's side: see `apisec`'s table (934011 unsigned intracity; 40231–40240; answers sealed and signed with the simulator's platform key) | `signed_call` |
//! | message/custom/send | a business token (41001/40001/42001); a JSON body (47001); recorded with the token's appid (the release test's `_from_api` answer) | `custom_send`, `sent_messages` |

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
    /// Users signing in (`signin`).
    users: signin::Users,
    /// Customer-service messages sent: (the token's appid, the body).
    sent: Vec<(String, Value)>,
    /// API security: apps' keys, the platform key (`apisec`).
    pub api_security: apisec::ApiSecurity,
}

pub type Answer = Value;

fn err(errcode: i64, errmsg: &str) -> Answer {
    json!({"errcode": errcode, "errmsg": format!("{errmsg} rid: {}", random(8))})
}

/// `n` random letters and digits (a rid's parts).
pub(crate) fn random_text(n: usize) -> String {
    random(n)
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
}

pub mod apisec;
mod diagnostics;
mod open_platform;
mod signin;
pub use signin::{CODE_TTL_MS, LOGINS_PER_MINUTE, REFRESH_TTL_MS, USER_TOKEN_TTL_SECS, openid, session_signature};
#[cfg(test)]
mod tests;
mod wecom;
