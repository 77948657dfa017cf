//! Users signing in (wechat-upstream-contract-2 §A): Mini Program login
//! (`wx.login` → `sns/jscode2session`, and the component's variant), an
//! Official Account's web authorization (`sns/oauth2/*`, and the
//! component's variants), the user's web token (`sns/userinfo`,
//! `sns/auth`) and `wxa/checksession`.
//!
//! | rule | WeChat | here |
//! |---|---|---|
//! | login code | from `wx.login`; five minutes, single use: 40029 when unknown, expired or another app's, 40163 when used | `login`, `take_code` |
//! | openid | one per user and appid | `openid` |
//! | unionid | only when the app is bound to an Open Platform account (the same for every app bound to it); web authorization: only for `snsapi_userinfo` | `bind_unionid` |
//! | session_key | 16 random bytes, base64; a new one at each exchange, the old one dead | `session_keys` |
//! | jscode2session | `appid`, `secret`, `js_code`, `grant_type=authorization_code`; success has no errcode; 40125 wrong secret; 45011 over 100 a minute for one user | `jscode2session` |
//! | component jscode2session | the component's token (not the app's secret) and `component_appid`; 61003 for an app not authorized to it | `component_jscode2session` |
//! | web authorization code | from the consent page, five minutes, single use (40029 / 40163) | `oauth_code` |
//! | oauth2/access_token | `appid`, `secret`, `code`, `grant_type=authorization_code` → user token (2 h), refresh token (30 days), openid, scope, unionid; `is_snapshotuser: 1` for a user who only saw the snapshot page | `oauth_access_token`, `snapshot_user` |
//! | oauth2/refresh_token | no secret; an expired user token is replaced, a live one extended; the refresh token is not renewed; 40030 unknown or past 30 days | `oauth_refresh` |
//! | component oauth2 | the component's token for both, `component_appid` | `component_oauth_*` |
//! | sns/userinfo | the user token, `snsapi_userinfo` only (48001 otherwise) | `userinfo` |
//! | sns/auth | the user token and its openid: 0, or 40003 | `sns_auth` |
//! | wxa/checksession | the app's token, `openid`, `signature` = hex HMAC-SHA256 of "" keyed by the session_key's text, `sig_method=hmac_sha256` (87008 otherwise); 87009 for a stale or wrong one | `checksession` |

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Answer, Family, World, err, random};

/// A code lives this long.
pub const CODE_TTL_MS: i64 = 5 * 60 * 1000;
/// A user's web token lives this long.
pub const USER_TOKEN_TTL_SECS: i64 = 7200;
/// A user's refresh token lives this long.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// jscode2session calls a minute for one user.
pub const LOGINS_PER_MINUTE: u32 = 100;

/// What a code was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// `wx.login`.
    Login,
    /// The web authorization page, with the scope granted and the
    /// component whose page it was (its code is exchanged by it alone).
    Web { scope: String, component: Option<String> },
}

#[derive(Debug, Clone)]
struct Code {
    appid: String,
    user: String,
    purpose: Purpose,
    expires_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct UserToken {
    appid: String,
    openid: String,
    user: String,
    scope: String,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct Refresh {
    appid: String,
    user: String,
    scope: String,
    /// The component that obtained it, for the component's variant.
    component: Option<String>,
    token: String,
    expires_at: i64,
}

/// Everything about users.
#[derive(Debug, Default)]
pub struct Users {
    codes: HashMap<String, Code>,
    /// appid → the Open Platform account it is bound to.
    bound: HashMap<String, String>,
    /// (appid, openid) → the session key now.
    session_keys: HashMap<(String, String), String>,
    user_tokens: HashMap<String, UserToken>,
    refresh: HashMap<String, Refresh>,
    /// (appid, user, minute) → logins exchanged.
    per_minute: HashMap<(String, String, i64), u32>,
    /// (appid, user) of users who only saw the snapshot page.
    snapshot: std::collections::HashSet<(String, String)>,
}

/// A user's openid for `appid`: stable, 28 characters, like WeChat's.
pub fn openid(appid: &str, user: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("openid/{appid}/{user}")));
    format!("o{}", &h[..27])
}

fn unionid(open_account: &str, user: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("unionid/{open_account}/{user}")));
    format!("u{}", &h[..27])
}

/// WeChat's user-session signature: hex HMAC-SHA256 of `message`, keyed by
/// the session key's text (not its decoded bytes).
pub fn user_signature(session_key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_key.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `signature` of `wxa/checksession`: the user signature of "".
pub fn session_signature(session_key: &str) -> String {
    user_signature(session_key, "")
}

fn new_session_key() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl World {
    /// `wx.login` on the user's phone: a code for `appid`.
    pub fn login(&mut self, appid: &str, user: &str, now: i64) -> String {
        self.new_code(appid, user, Purpose::Login, now)
    }

    /// The user consents on the web authorization page of `appid` (opened
    /// by `component` for an authorizer).
    pub fn oauth_code(&mut self, appid: &str, component: Option<&str>, user: &str, scope: &str, now: i64) -> String {
        let purpose = Purpose::Web {
            scope: scope.to_owned(),
            component: component.map(str::to_owned),
        };
        self.new_code(appid, user, purpose, now)
    }

    fn new_code(&mut self, appid: &str, user: &str, purpose: Purpose, now: i64) -> String {
        let users = &mut self.users;
        // Codes past their life are forgotten after as long again.
        users.codes.retain(|_, c| c.expires_at > now - CODE_TTL_MS);
        let code = random(32);
        users.codes.insert(
            code.clone(),
            Code {
                appid: appid.to_owned(),
                user: user.to_owned(),
                purpose,
                expires_at: now + CODE_TTL_MS,
                used: false,
            },
        );
        code
    }

    /// Whether `appid` is an app WeChat knows (with its secret).
    pub fn has_app(&self, appid: &str) -> bool {
        self.apps.contains_key(appid)
    }

    /// Whether `appid` is authorized to `component`.
    pub fn is_authorized(&self, component: &str, appid: &str) -> bool {
        self.authorizations
            .contains_key(&(component.to_owned(), appid.to_owned()))
    }

    /// Marks `user` of `appid` as one who only saw the snapshot page (a
    /// virtual account): web authorization says `is_snapshotuser: 1`.
    pub fn snapshot_user(&mut self, appid: &str, user: &str) {
        self.users.snapshot.insert((appid.to_owned(), user.to_owned()));
    }

    /// Binds `appid` to an Open Platform account: its users get unionids.
    pub fn bind_unionid(&mut self, appid: &str, open_account: &str) {
        self.users.bound.insert(appid.to_owned(), open_account.to_owned());
    }

    /// The session key WeChat holds now for a user of `appid`.
    pub fn session_key(&self, appid: &str, openid: &str) -> Option<String> {
        self.users
            .session_keys
            .get(&(appid.to_owned(), openid.to_owned()))
            .cloned()
    }

    /// Uses a code: the user it names, or WeChat's error.
    fn take_code(&mut self, appid: &str, code: Option<&str>, web: bool, now: i64) -> Result<Code, Answer> {
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| err(41008, "missing code"))?;
        let Some(c) = self.users.codes.get_mut(code) else {
            return Err(err(40029, "invalid code"));
        };
        if c.appid != appid || now >= c.expires_at || matches!(c.purpose, Purpose::Web { .. }) != web {
            return Err(err(40029, "invalid code"));
        }
        if c.used {
            return Err(err(40163, "code been used"));
        }
        c.used = true;
        Ok(c.clone())
    }

    /// Checks an app's id and secret as the `sns` exchanges do.
    fn app_secret(&self, appid: Option<&str>, secret: Option<&str>) -> Result<String, Answer> {
        let appid = appid
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err(41002, "appid missing"))?;
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(41004, "appsecret missing"))?;
        match self.apps.get(appid) {
            None => Err(err(40013, "invalid appid")),
            Some(s) if s != secret => Err(err(40125, "invalid appsecret")),
            Some(_) => Ok(appid.to_owned()),
        }
    }

    /// A component's valid token and that an app is authorized to it.
    fn component_for(
        &self,
        appid: Option<&str>,
        component_appid: Option<&str>,
        component_token: Option<&str>,
        now: i64,
    ) -> Result<(String, String), Answer> {
        let owner = self.token_owner(component_token, Family::Component, now)?;
        let component = component_appid
            .filter(|c| !c.is_empty())
            .ok_or_else(|| err(41002, "component_appid missing"))?;
        if owner != component {
            return Err(err(40001, "invalid credential, access_token is invalid or not latest"));
        }
        let appid = appid
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err(41002, "appid missing"))?;
        if !self.is_authorized(component, appid) {
            return Err(err(61003, "component is not authorized by this account"));
        }
        Ok((component.to_owned(), appid.to_owned()))
    }

    /// `GET /sns/jscode2session`.
    pub fn jscode2session(
        &mut self,
        appid: Option<&str>,
        secret: Option<&str>,
        js_code: Option<&str>,
        grant_type: Option<&str>,
        now: i64,
    ) -> Answer {
        if grant_type != Some("authorization_code") {
            return err(40002, "invalid grant_type");
        }
        match self.app_secret(appid, secret) {
            Ok(appid) => self.session(&appid, js_code, now),
            Err(e) => e,
        }
    }

    /// `GET /sns/component/jscode2session`.
    pub fn component_jscode2session(&mut self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("grant_type") != Some("authorization_code") {
            return err(40002, "invalid grant_type");
        }
        match self.component_for(get("appid"), get("component_appid"), get("component_access_token"), now) {
            Ok((_, appid)) => self.session(&appid, get("js_code"), now),
            Err(e) => e,
        }
    }

    /// Exchanges a login code: a new session key for the user.
    fn session(&mut self, appid: &str, js_code: Option<&str>, now: i64) -> Answer {
        let code = match self.take_code(appid, js_code, false, now) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let minute = now.div_euclid(60_000);
        let users = &mut self.users;
        users.per_minute.retain(|(_, _, m), _| *m == minute);
        let n = users
            .per_minute
            .entry((appid.to_owned(), code.user.clone(), minute))
            .or_default();
        *n += 1;
        if *n > LOGINS_PER_MINUTE {
            return err(45011, "api minute-quota reach limit mustslower retry next minute");
        }
        let openid = openid(appid, &code.user);
        let key = new_session_key();
        users
            .session_keys
            .insert((appid.to_owned(), openid.clone()), key.clone());
        let mut a = json!({"openid": openid, "session_key": key});
        if let Some(open) = users.bound.get(appid) {
            a["unionid"] = json!(unionid(open, &code.user));
        }
        a
    }

    /// `GET /wxa/checksession`: an app's (or authorizer's) token.
    pub fn checksession(&self, q: &HashMap<String, String>, now: i64) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str);
        let token = get("access_token");
        let appid = match self
            .token_owner(token, Family::Stable, now)
            .or_else(|_| self.token_owner(token, Family::Classic, now))
            .or_else(|_| self.token_owner(token, Family::Authorizer, now))
        {
            Ok(a) => a,
            Err(e) => return e,
        };
        if get("sig_method") != Some("hmac_sha256") {
            return err(87008, "invalid sig_method");
        }
        let openid = get("openid").unwrap_or_default();
        match self.session_key(&appid, openid) {
            Some(key) if get("signature") == Some(session_signature(&key).as_str()) => {
                json!({"errcode": 0, "errmsg": "ok"})
            }
            _ => err(87009, "invalid signature"),
        }
    }

    /// What `wx.getUserInfo` hands a Mini Program for its server to decrypt:
    /// `(encrypted_data, iv)` under the user's session key, with the
    /// watermark WeChat adds. `None` before the user's first exchange.
    pub fn encrypted_user_data(&self, appid: &str, user: &str, data: &Value, now: i64) -> Option<(String, String)> {
        use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
        let key = self.session_key(appid, &openid(appid, user))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let key: [u8; 16] = b64.decode(key).ok()?.try_into().ok()?;
        let iv: [u8; 16] = rand::random();
        let mut plain = data.clone();
        plain["watermark"] = json!({"appid": appid, "timestamp": now / 1000});
        let text = plain.to_string().into_bytes();
        let len = text.len();
        let mut buf = text;
        buf.resize(len + 16 - len % 16, 0);
        let sealed = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, len)
            .ok()?
            .to_vec();
        Some((b64.encode(sealed), b64.encode(iv)))
    }
}

mod web;

#[cfg(test)]
mod tests;
