//! Accounts as the service sees them, and the one parser of account
//! requests shared by `POST /v1/accounts`, `PATCH /v1/accounts/{id}` and
//! `wetoken account add` (SPEC §3).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::{AccountId, AccountKind, AgentId, Ident, ParseError, TokenApi};
use crate::secret::{KeyError, MasterKey, Sealed, Secret};

/// Everything secret about an account; sealed as one blob at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Callback message token (component, suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Callback EncodingAESKey (component, suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_key: Option<Secret>,
    /// authorizer_refresh_token (authorizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// permanent_code (corp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent_code: Option<Secret>,
}

/// Non-secret settings of an account.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountConfig {
    #[serde(default)]
    pub token_api: TokenApi,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agentid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func_info: Option<Value>,
    /// When the authorizer (or corp) last authorized (epoch ms; WeChat's
    /// CreateTime for pushed events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_at: Option<i64>,
    /// SHA-256 (hex) of the authorization codes last exchanged for it,
    /// newest last, at most [`AccountConfig::AUTH_CODES_KEPT`] (never the
    /// codes): an event that carries one of them again is a replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_codes: Vec<String>,
    /// A corp's authorization as WeCom described it (auth_corp_info, auth_info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_info: Option<Value>,
    /// Quota clears this account used this month (WeChat allows 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_clears: Option<QuotaClears>,
}

/// How many times an account's daily quota was cleared in a month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaClears {
    /// `YYYY-MM` in +08:00, WeChat's month.
    pub month: String,
    pub used: u32,
}

impl AccountConfig {
    /// WeChat retries an event for minutes and a code lives an hour: the
    /// last 16 codes cover any replay.
    pub const AUTH_CODES_KEPT: usize = 16;

    /// Remembers that `code` was exchanged for this account.
    pub fn exchanged(&mut self, code: &str) {
        let hash = crate::keys::hash_key(code);
        if !self.auth_codes.contains(&hash) {
            self.auth_codes.push(hash);
        }
        let extra = self.auth_codes.len().saturating_sub(Self::AUTH_CODES_KEPT);
        self.auth_codes.drain(..extra);
    }

    /// Whether `code` was exchanged for this account.
    pub fn has_exchanged(&self, code: &str) -> bool {
        self.auth_codes.contains(&crate::keys::hash_key(code))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    NeedsReauthorization,
    Revoked,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReauthorization => "needs_reauthorization",
            AccountStatus::Revoked => "revoked",
        }
    }
}

impl std::str::FromStr for AccountStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        [
            AccountStatus::Active,
            AccountStatus::NeedsReauthorization,
            AccountStatus::Revoked,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| ParseError(format!("unknown account status {s:?}")))
    }
}

/// An account. `S` is what its secrets are: [`Secrets`] in the service,
/// [`Sealed`] at rest ([`Account::seal`] and [`Account::open`] are the one
/// place where one becomes the other).
#[derive(Debug, Clone, PartialEq)]
pub struct Account<S = Secrets> {
    pub id: AccountId,
    pub secrets: S,
    pub config: AccountConfig,
    pub status: AccountStatus,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An account as a store holds it.
pub type StoredAccount = Account<Sealed>;

impl<S> Account<S> {
    fn with_secrets<T>(self, secrets: T) -> Account<T> {
        Account {
            id: self.id,
            secrets,
            config: self.config,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The field name an account's sealed secrets are bound to.
pub const SECRETS_FIELD: &str = "secrets";

impl Account {
    /// The account with its secrets sealed as one blob under `key`.
    /// Bound to this account's row: it opens nowhere else.
    pub fn seal(&self, key: &MasterKey) -> StoredAccount {
        let json = serde_json::to_string(&self.secrets).expect("secrets serialize");
        self.clone()
            .with_secrets(key.seal(&json, &crate::store::binding(&self.id, SECRETS_FIELD)))
    }
}

impl StoredAccount {
    /// The account with its secrets opened by `key`.
    pub fn open(self, key: &MasterKey) -> Result<Account, KeyError> {
        let json = key.open(&self.secrets, &crate::store::binding(&self.id, SECRETS_FIELD))?;
        let secrets: Secrets = serde_json::from_str(&json).map_err(|_| KeyError::Decrypt)?;
        Ok(self.with_secrets(secrets))
    }
}

/// A validated request to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub secrets: Secrets,
    pub config: AccountConfig,
}

/// The kinds this build can fetch credentials for; the others parse but are
/// refused at creation until their upstream support lands.
pub const SUPPORTED_KINDS: &[AccountKind] = &AccountKind::ALL;

/// A field of the body of `POST /v1/accounts` or `PATCH /v1/accounts/{id}`,
/// for forms that build one (the console): its name, whether it is a secret
/// (never shown back) and whether creation requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub secret: bool,
    pub required: bool,
}

/// The fields [`NewAccount::from_json`] reads for `kind` (besides `kind`).
pub fn new_account_fields(kind: AccountKind) -> &'static [FieldSpec] {
    match kind {
        AccountKind::Mp => &[
            FieldSpec {
                name: "appid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "secret",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "token_api",
                secret: false,
                required: false,
            },
        ],
        AccountKind::Work => &[
            FieldSpec {
                name: "corpid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "agentid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "secret",
                secret: true,
                required: true,
            },
        ],
        AccountKind::Component => &[
            FieldSpec {
                name: "appid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "secret",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "token",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "aes_key",
                secret: true,
                required: true,
            },
        ],
        AccountKind::Suite => &[
            FieldSpec {
                name: "suite_id",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "secret",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "token",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "aes_key",
                secret: true,
                required: true,
            },
        ],
        AccountKind::Provider => &[
            FieldSpec {
                name: "corpid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "secret",
                secret: true,
                required: true,
            },
        ],
        AccountKind::Authorizer => &[
            FieldSpec {
                name: "component_appid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "appid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "refresh_token",
                secret: true,
                required: true,
            },
        ],
        AccountKind::Corp => &[
            FieldSpec {
                name: "suite_id",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "corpid",
                secret: false,
                required: true,
            },
            FieldSpec {
                name: "permanent_code",
                secret: true,
                required: true,
            },
            FieldSpec {
                name: "agentid",
                secret: false,
                required: false,
            },
        ],
    }
}

/// The fields [`AccountPatch::from_json`] reads for `kind` (all optional).
pub fn patch_fields(kind: AccountKind) -> &'static [FieldSpec] {
    match kind {
        AccountKind::Mp => &[
            FieldSpec {
                name: "secret",
                secret: true,
                required: false,
            },
            FieldSpec {
                name: "token_api",
                secret: false,
                required: false,
            },
        ],
        AccountKind::Work | AccountKind::Provider => &[FieldSpec {
            name: "secret",
            secret: true,
            required: false,
        }],
        AccountKind::Component | AccountKind::Suite => &[
            FieldSpec {
                name: "secret",
                secret: true,
                required: false,
            },
            FieldSpec {
                name: "token",
                secret: true,
                required: false,
            },
            FieldSpec {
                name: "aes_key",
                secret: true,
                required: false,
            },
        ],
        AccountKind::Authorizer => &[FieldSpec {
            name: "refresh_token",
            secret: true,
            required: false,
        }],
        AccountKind::Corp => &[
            FieldSpec {
                name: "permanent_code",
                secret: true,
                required: false,
            },
            FieldSpec {
                name: "agentid",
                secret: false,
                required: false,
            },
        ],
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value) -> Result<Self, ParseError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ParseError("the body must be a JSON object".into()))?;
        Ok(Fields {
            obj,
            used: vec!["kind"],
        })
    }

    fn opt_str(&mut self, name: &'static str) -> Result<Option<String>, ParseError> {
        self.used.push(name);
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ParseError(format!("{name} must be a string"))),
        }
    }

    fn req_str(&mut self, name: &'static str) -> Result<String, ParseError> {
        match self.opt_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ParseError(format!("{name} is required"))),
        }
    }

    fn req_ident(&mut self, name: &'static str) -> Result<Ident, ParseError> {
        let s = self.req_str(name)?;
        Ident::parse(name, &s)
    }

    /// A secret: non-empty, at most 512 characters, no control characters.
    fn secret(&mut self, name: &'static str, required: bool) -> Result<Option<Secret>, ParseError> {
        let s = if required {
            Some(self.req_str(name)?)
        } else {
            self.opt_str(name)?
        };
        match s {
            None => Ok(None),
            Some(s) if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) => Err(ParseError(format!(
                "{name} must be 1 to 512 characters without control characters"
            ))),
            Some(s) => Ok(Some(Secret::new(s))),
        }
    }

    /// `agentid`: a number or a string of digits.
    fn agentid(&mut self, required: bool) -> Result<Option<AgentId>, ParseError> {
        self.used.push("agentid");
        match self.obj.get("agentid") {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(ParseError("agentid is required".into())),
            Some(Value::Number(n)) if n.is_u64() => AgentId::parse(&n.to_string()).map(Some),
            Some(Value::String(s)) => AgentId::parse(s).map(Some),
            Some(_) => Err(ParseError("agentid must be a number or a string of digits".into())),
        }
    }

    fn token_api(&mut self) -> Result<Option<TokenApi>, ParseError> {
        self.opt_str("token_api")?.map(|s| s.parse()).transpose()
    }

    /// The callback EncodingAESKey: 43 characters of [A-Za-z0-9].
    fn aes_key(&mut self, required: bool) -> Result<Option<Secret>, ParseError> {
        let s = self.secret("aes_key", required)?;
        if let Some(k) = &s {
            let k = k.expose();
            if k.len() != 43 || !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ParseError("aes_key must be 43 characters of A-Z a-z 0-9".into()));
            }
        }
        Ok(s)
    }

    /// Refuses fields nobody read: a typo must not pass silently.
    fn finish(self) -> Result<(), ParseError> {
        match self.obj.keys().find(|k| !self.used.contains(&k.as_str())) {
            Some(k) => Err(ParseError(format!("unknown field {k:?}"))),
            None => Ok(()),
        }
    }
}

impl NewAccount {
    /// Parses the body of `POST /v1/accounts`.
    pub fn from_json(v: &Value) -> Result<Self, ParseError> {
        let mut f = Fields::new(v)?;
        let kind: AccountKind = f
            .opt_str("kind")?
            .ok_or_else(|| ParseError("kind is required".into()))?
            .parse()?;
        let mut secrets = Secrets::default();
        let mut config = AccountConfig::default();
        let id = match kind {
            AccountKind::Mp => {
                let appid = f.req_ident("appid")?;
                secrets.secret = f.secret("secret", true)?;
                config.token_api = f.token_api()?.unwrap_or_default();
                AccountId::Mp { appid }
            }
            AccountKind::Work => {
                let corpid = f.req_ident("corpid")?;
                let agentid = f.agentid(true)?.expect("required");
                secrets.secret = f.secret("secret", true)?;
                AccountId::Work { corpid, agentid }
            }
            AccountKind::Component | AccountKind::Suite => {
                let ident = if kind == AccountKind::Component {
                    f.req_ident("appid")?
                } else {
                    f.req_ident("suite_id")?
                };
                secrets.secret = f.secret("secret", true)?;
                secrets.token = f.secret("token", true)?;
                secrets.aes_key = f.aes_key(true)?;
                if kind == AccountKind::Component {
                    AccountId::Component { appid: ident }
                } else {
                    AccountId::Suite { suite_id: ident }
                }
            }
            AccountKind::Provider => {
                let corpid = f.req_ident("corpid")?;
                secrets.secret = f.secret("secret", true)?;
                AccountId::Provider { corpid }
            }
            AccountKind::Authorizer => {
                let component_appid = f.req_ident("component_appid")?;
                let appid = f.req_ident("appid")?;
                secrets.refresh_token = f.secret("refresh_token", true)?;
                AccountId::Authorizer { component_appid, appid }
            }
            AccountKind::Corp => {
                let suite_id = f.req_ident("suite_id")?;
                let corpid = f.req_ident("corpid")?;
                secrets.permanent_code = f.secret("permanent_code", true)?;
                config.agentid = f.agentid(false)?.map(|a| a.as_str().to_owned());
                AccountId::Corp { suite_id, corpid }
            }
        };
        f.finish()?;
        Ok(NewAccount { id, secrets, config })
    }
}

/// A validated `PATCH /v1/accounts/{id}`.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub secrets: Secrets,
    pub token_api: Option<TokenApi>,
    pub agentid: Option<String>,
}

impl AccountPatch {
    pub fn from_json(kind: AccountKind, v: &Value) -> Result<Self, ParseError> {
        let mut f = Fields::new(v)?;
        let mut p = AccountPatch::default();
        match kind {
            AccountKind::Mp => {
                p.secrets.secret = f.secret("secret", false)?;
                p.token_api = f.token_api()?;
            }
            AccountKind::Work | AccountKind::Provider => {
                p.secrets.secret = f.secret("secret", false)?;
            }
            AccountKind::Component | AccountKind::Suite => {
                p.secrets.secret = f.secret("secret", false)?;
                p.secrets.token = f.secret("token", false)?;
                p.secrets.aes_key = f.aes_key(false)?;
            }
            AccountKind::Authorizer => {
                p.secrets.refresh_token = f.secret("refresh_token", false)?;
            }
            AccountKind::Corp => {
                p.secrets.permanent_code = f.secret("permanent_code", false)?;
                p.agentid = f.agentid(false)?.map(|a| a.as_str().to_owned());
            }
        }
        // `kind`, if given, must not change.
        if let Some(k) = f.obj.get("kind")
            && k.as_str() != Some(kind.as_str())
        {
            return Err(ParseError("kind cannot be changed".into()));
        }
        f.finish()?;
        Ok(p)
    }

    /// Whether this patch changes what credentials are derived from.
    pub fn invalidates_credentials(&self) -> bool {
        let s = &self.secrets;
        s.secret.is_some() || s.refresh_token.is_some() || s.permanent_code.is_some() || self.token_api.is_some()
    }

    pub fn apply(self, a: &mut Account) {
        let s = self.secrets;
        macro_rules! set {
            ($f:ident) => {
                if s.$f.is_some() {
                    a.secrets.$f = s.$f;
                }
            };
        }
        set!(secret);
        set!(token);
        set!(aes_key);
        set!(refresh_token);
        set!(permanent_code);
        if let Some(t) = self.token_api {
            a.config.token_api = t;
        }
        if self.agentid.is_some() {
            a.config.agentid = self.agentid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A value each field accepts.
    fn sample(name: &str) -> Value {
        match name {
            "aes_key" => Value::from("a".repeat(43)),
            "agentid" => Value::from("1000002"),
            "token_api" => Value::from("classic"),
            _ => Value::from("x1"),
        }
    }

    #[test]
    fn the_field_tables_say_what_the_parsers_read() {
        for kind in AccountKind::ALL {
            let fields = new_account_fields(kind);
            let mut all = Map::new();
            all.insert("kind".into(), kind.as_str().into());
            for f in fields {
                all.insert(f.name.into(), sample(f.name));
            }
            NewAccount::from_json(&Value::Object(all.clone())).unwrap_or_else(|e| panic!("{kind:?}: {}", e.0));
            for f in fields {
                let mut without = all.clone();
                without.remove(f.name);
                let parsed = NewAccount::from_json(&Value::Object(without));
                assert_eq!(parsed.is_err(), f.required, "{kind:?} without {}", f.name);
            }
            let patch: Map<String, Value> = patch_fields(kind)
                .iter()
                .map(|f| (f.name.into(), sample(f.name)))
                .collect();
            let p =
                AccountPatch::from_json(kind, &Value::Object(patch)).unwrap_or_else(|e| panic!("{kind:?}: {}", e.0));
            assert!(p.invalidates_credentials() || kind == AccountKind::Component || kind == AccountKind::Suite);
            let mut extra = Map::new();
            extra.insert("nope".into(), Value::from("x"));
            assert!(AccountPatch::from_json(kind, &Value::Object(extra)).is_err());
        }
    }

    #[test]
    fn parses_every_kind() {
        let key = "a".repeat(43);
        for (body, id) in [
            (json!({"kind":"mp","appid":"wx1","secret":"s"}), "mp:wx1"),
            (
                json!({"kind":"work","corpid":"ww1","agentid":1000002,"secret":"s"}),
                "work:ww1:1000002",
            ),
            (
                json!({"kind":"work","corpid":"ww1","agentid":"1000002","secret":"s"}),
                "work:ww1:1000002",
            ),
            (
                json!({"kind":"component","appid":"wxc","secret":"s","token":"t","aes_key":key}),
                "component:wxc",
            ),
            (
                json!({"kind":"suite","suite_id":"ss","secret":"s","token":"t","aes_key":key}),
                "suite:ss",
            ),
            (json!({"kind":"provider","corpid":"ww","secret":"s"}), "provider:ww"),
            (
                json!({"kind":"authorizer","component_appid":"wxc","appid":"wx2","refresh_token":"r"}),
                "authorizer:wxc:wx2",
            ),
            (
                json!({"kind":"corp","suite_id":"ss","corpid":"ww3","permanent_code":"p","agentid":7}),
                "corp:ss:ww3",
            ),
        ] {
            let n = NewAccount::from_json(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(n.id.to_string(), id);
        }
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (json!({"appid":"wx1","secret":"s"}), "kind"),
            (json!({"kind":"mp","secret":"s"}), "appid"),
            (json!({"kind":"mp","appid":"wx1' OR '1'='1","secret":"s"}), "appid"),
            (json!({"kind":"mp","appid":"wx1"}), "secret"),
            (
                json!({"kind":"mp","appid":"wx1","secret":"s","token_api":"x"}),
                "token_api",
            ),
            (json!({"kind":"mp","appid":"wx1","secret":"s","secert":"s"}), "secert"),
            (
                json!({"kind":"work","corpid":"ww","agentid":"12a","secret":"s"}),
                "agentid",
            ),
            (
                json!({"kind":"component","appid":"wxc","secret":"s","token":"t","aes_key":"short"}),
                "aes_key",
            ),
            (json!({"kind":"mp","appid":7,"secret":"s"}), "appid"),
            (json!([1]), "object"),
        ];
        for (body, field) in cases {
            let e = NewAccount::from_json(&body).unwrap_err();
            assert!(e.0.contains(field), "{body}: {e}");
        }
    }

    #[test]
    fn patch_rules() {
        let p = AccountPatch::from_json(AccountKind::Mp, &json!({"secret":"new"})).unwrap();
        assert!(p.invalidates_credentials());
        assert!(AccountPatch::from_json(AccountKind::Mp, &json!({"appid":"x"})).is_err());
        assert!(AccountPatch::from_json(AccountKind::Mp, &json!({"kind":"work"})).is_err());
        let p = AccountPatch::from_json(AccountKind::Mp, &json!({})).unwrap();
        assert!(!p.invalidates_credentials());
    }

    #[test]
    fn the_last_sixteen_exchanged_codes_are_remembered_by_hash() {
        let mut c = AccountConfig::default();
        for i in 0..20 {
            c.exchanged(&format!("code{i}"));
        }
        c.exchanged("code19");
        assert_eq!(c.auth_codes.len(), AccountConfig::AUTH_CODES_KEPT);
        assert!(c.has_exchanged("code19") && c.has_exchanged("code4"));
        assert!(!c.has_exchanged("code3"), "the oldest are forgotten");
        assert!(!c.auth_codes.iter().any(|h| h.contains("code")), "hashes, never codes");
    }
}
