//! The one parser of account requests. A table says, per account kind, which
//! fields creating ([`new_account_fields`]) and changing ([`patch_fields`])
//! an account reads, of which type, and which are required; the parser
//! walks that table over a [`FieldSource`] — a JSON body, a form, the CLI's
//! flags — so every door accepts and refuses exactly the same requests, and
//! the console builds its forms from the same table.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{AccountConfig, AccountPatch, NewAccount, Secrets};
use crate::domain::{AccountId, AccountKind, AgentId, Ident, ParseError, TokenApi};
use crate::secret::Secret;

/// The kinds this build can fetch credentials for; the others parse but are
/// refused at creation until their upstream support lands.
pub const SUPPORTED_KINDS: &[AccountKind] = &AccountKind::ALL;

/// What a field holds, and so how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A part of the account's id (appid, corpid, suite_id,
    /// component_appid), in the order the id names them.
    Ident,
    /// A secret, in the [`Secrets`] slot of the same name: 1 to 512
    /// characters, no control characters, never shown back.
    Secret,
    /// The callback EncodingAESKey: a secret of 43 characters [A-Za-z0-9].
    AesKey,
    /// A WeCom agent id (a number or a string of digits): part of a work
    /// app's id, a corp's configuration.
    AgentId,
    /// How an Official Account's token is fetched (`classic`, `stable`).
    TokenApi,
    /// The API-security block (SPEC §15): a JSON object (or its text, from
    /// a form or the CLI), checked whole, sealed, never shown back.
    ApiSecurity,
}

/// A field of an account request: its name, what it holds, whether
/// creation requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

impl FieldSpec {
    /// Whether the field is a secret (a form hides it and never fills it).
    pub fn secret(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Secret | FieldKind::AesKey | FieldKind::ApiSecurity
        )
    }
}

const fn req(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
    }
}

use FieldKind::{AesKey, AgentId as Agent, ApiSecurity as ApiSec, Ident as Id, Secret as Sec, TokenApi as Api};

/// The fields creating an account of `kind` reads (besides `kind`), in the
/// order they are checked.
pub fn new_account_fields(kind: AccountKind) -> &'static [FieldSpec] {
    match kind {
        AccountKind::Mp => {
            const {
                &[
                    req("appid", Id),
                    req("secret", Sec),
                    opt("token_api", Api),
                    opt("token", Sec),
                    opt("aes_key", AesKey),
                    opt("api_security", ApiSec),
                ]
            }
        }
        AccountKind::Work => {
            const {
                &[
                    req("corpid", Id),
                    req("agentid", Agent),
                    req("secret", Sec),
                    opt("token", Sec),
                    opt("aes_key", AesKey),
                ]
            }
        }
        AccountKind::Component => {
            const {
                &[
                    req("appid", Id),
                    req("secret", Sec),
                    req("token", Sec),
                    req("aes_key", AesKey),
                    opt("api_security", ApiSec),
                ]
            }
        }
        AccountKind::Suite => {
            const {
                &[
                    req("suite_id", Id),
                    req("secret", Sec),
                    req("token", Sec),
                    req("aes_key", AesKey),
                ]
            }
        }
        AccountKind::Provider => const { &[req("corpid", Id), req("secret", Sec)] },
        AccountKind::Authorizer => const { &[req("component_appid", Id), req("appid", Id), req("refresh_token", Sec)] },
        AccountKind::Corp => {
            const {
                &[
                    req("suite_id", Id),
                    req("corpid", Id),
                    req("permanent_code", Sec),
                    opt("agentid", Agent),
                ]
            }
        }
    }
}

/// The fields changing an account of `kind` reads (all optional).
pub fn patch_fields(kind: AccountKind) -> &'static [FieldSpec] {
    match kind {
        AccountKind::Mp => {
            const {
                &[
                    opt("secret", Sec),
                    opt("token_api", Api),
                    opt("token", Sec),
                    opt("aes_key", AesKey),
                    opt("api_security", ApiSec),
                ]
            }
        }
        AccountKind::Work => const { &[opt("secret", Sec), opt("token", Sec), opt("aes_key", AesKey)] },
        AccountKind::Provider => const { &[opt("secret", Sec)] },
        AccountKind::Component => {
            const {
                &[
                    opt("secret", Sec),
                    opt("token", Sec),
                    opt("aes_key", AesKey),
                    opt("api_security", ApiSec),
                ]
            }
        }
        AccountKind::Suite => const { &[opt("secret", Sec), opt("token", Sec), opt("aes_key", AesKey)] },
        AccountKind::Authorizer => const { &[opt("refresh_token", Sec)] },
        AccountKind::Corp => const { &[opt("permanent_code", Sec), opt("agentid", Agent)] },
    }
}

/// A field's value as its source gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    Text(&'a str),
    /// A JSON number that is a whole non-negative number.
    Number(u64),
    /// A JSON object (only the API-security block is one).
    Object(&'a Map<String, Value>),
    /// Anything else (a boolean, an array, …): never a valid field.
    Other,
}

/// Where a request's fields come from.
pub trait FieldSource {
    /// The field called `name`; None when it is absent (or JSON `null`).
    fn field(&self, name: &str) -> Option<Raw<'_>>;
    /// Every field name given, so that one nobody reads (a typo) is refused.
    fn names(&self) -> Vec<&str>;
}

/// A JSON object: `POST /v1/accounts`, `PATCH /v1/accounts/{id}`.
impl FieldSource for Map<String, Value> {
    fn field(&self, name: &str) -> Option<Raw<'_>> {
        match self.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(Raw::Text(s)),
            Value::Number(n) => Some(n.as_u64().map_or(Raw::Other, Raw::Number)),
            Value::Object(m) => Some(Raw::Object(m)),
            _ => Some(Raw::Other),
        }
    }
    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

/// Fields as text (a form's, the CLI's flags): every name given is read.
impl FieldSource for HashMap<String, String> {
    fn field(&self, name: &str) -> Option<Raw<'_>> {
        self.get(name).map(|s| Raw::Text(s))
    }
    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

/// What the table's fields held, read and checked.
#[derive(Default)]
struct Read {
    idents: Vec<Ident>,
    agentid: Option<AgentId>,
    secrets: Secrets,
    token_api: Option<TokenApi>,
}

fn required(name: &str) -> ParseError {
    ParseError(format!("{name} is required"))
}

/// A text field: absent is None (an error when required, as is an empty
/// text); any other type is an error.
fn text<'a>(f: &FieldSpec, raw: Option<Raw<'a>>) -> Result<Option<&'a str>, ParseError> {
    match raw {
        None if f.required => Err(required(f.name)),
        None => Ok(None),
        Some(Raw::Text("")) if f.required => Err(required(f.name)),
        Some(Raw::Text(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError(format!("{} must be a string", f.name))),
    }
}

fn secret(f: &FieldSpec, raw: Option<Raw<'_>>) -> Result<Option<Secret>, ParseError> {
    match text(f, raw)? {
        None => Ok(None),
        Some(s) if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) => Err(ParseError(format!(
            "{} must be 1 to 512 characters without control characters",
            f.name
        ))),
        Some(s) => Ok(Some(Secret::new(s))),
    }
}

fn aes_key(f: &FieldSpec, raw: Option<Raw<'_>>) -> Result<Option<Secret>, ParseError> {
    let key = secret(f, raw)?;
    if let Some(k) = &key {
        let k = k.expose();
        if k.len() != 43 || !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError(format!("{} must be 43 characters of A-Z a-z 0-9", f.name)));
        }
    }
    Ok(key)
}

fn agentid(f: &FieldSpec, raw: Option<Raw<'_>>) -> Result<Option<AgentId>, ParseError> {
    match raw {
        None if f.required => Err(required(f.name)),
        None => Ok(None),
        Some(Raw::Number(n)) => AgentId::parse(&n.to_string()).map(Some),
        Some(Raw::Text(s)) => AgentId::parse(s).map(Some),
        Some(Raw::Other | Raw::Object(_)) => {
            Err(ParseError(format!("{} must be a number or a string of digits", f.name)))
        }
    }
}

/// The API-security block: an object (or its JSON text), every key checked
/// (`ApiSecurityConfig::keys`), kept as its JSON.
fn api_security(f: &FieldSpec, raw: Option<Raw<'_>>) -> Result<Option<Secret>, ParseError> {
    use crate::apisec::ApiSecurityConfig;
    let cfg: ApiSecurityConfig = match raw {
        None => return Ok(None),
        Some(Raw::Object(m)) => serde_json::from_value(Value::Object(m.clone())),
        Some(Raw::Text(t)) if t.len() <= 64 * 1024 => serde_json::from_str(t),
        Some(_) => return Err(ParseError(format!("{} must be an object", f.name))),
    }
    .map_err(|e| ParseError(format!("{}: {e}", f.name)))?;
    cfg.keys()?;
    Ok(Some(Secret::new(serde_json::to_string(&cfg).expect("JSON"))))
}

fn slot<'s>(secrets: &'s mut Secrets, name: &str) -> &'s mut Option<Secret> {
    match name {
        "secret" => &mut secrets.secret,
        "token" => &mut secrets.token,
        "aes_key" => &mut secrets.aes_key,
        "refresh_token" => &mut secrets.refresh_token,
        "permanent_code" => &mut secrets.permanent_code,
        other => unreachable!("no secret slot {other}: the field tables name only these"),
    }
}

/// Reads `fields` from `src` in table order (the first bad field is the
/// error), then refuses any field given that neither the table nor
/// `also` names.
fn read(src: &dyn FieldSource, fields: &[FieldSpec], also: &[&str]) -> Result<Read, ParseError> {
    let mut r = Read::default();
    for f in fields {
        let raw = src.field(f.name);
        match f.kind {
            FieldKind::Ident => {
                if let Some(s) = text(f, raw)? {
                    r.idents.push(Ident::parse(f.name, s)?);
                }
            }
            FieldKind::Secret => *slot(&mut r.secrets, f.name) = secret(f, raw)?,
            FieldKind::AesKey => r.secrets.aes_key = aes_key(f, raw)?,
            FieldKind::ApiSecurity => r.secrets.api_security = api_security(f, raw)?,
            FieldKind::AgentId => r.agentid = agentid(f, raw)?,
            FieldKind::TokenApi => r.token_api = text(f, raw)?.map(str::parse).transpose()?,
        }
    }
    let known = |k: &str| also.contains(&k) || fields.iter().any(|f| f.name == k);
    match src.names().into_iter().find(|k| !known(k)) {
        Some(k) => Err(ParseError(format!("unknown field {k:?}"))),
        None => Ok(r),
    }
}

impl NewAccount {
    /// Parses the body of `POST /v1/accounts`: a JSON object with `kind`.
    pub fn from_json(v: &Value) -> Result<Self, ParseError> {
        let obj = object(v)?;
        let kind: AccountKind = match obj.field("kind") {
            None | Some(Raw::Text("")) => return Err(required("kind")),
            Some(Raw::Text(k)) => k.parse()?,
            Some(_) => return Err(ParseError("kind must be a string".into())),
        };
        Self::parse(kind, obj, &["kind"])
    }

    /// Parses a request to create an account of `kind` from any source;
    /// `also` names fields the caller reads itself (such as `kind`).
    pub fn parse(kind: AccountKind, src: &dyn FieldSource, also: &[&str]) -> Result<Self, ParseError> {
        let r = read(src, new_account_fields(kind), also)?;
        // The table holds every required part, in the id's order.
        let part = |i: usize| r.idents[i].clone();
        let agent = || r.agentid.clone().ok_or_else(|| required("agentid"));
        let id = match kind {
            AccountKind::Mp => AccountId::Mp { appid: part(0) },
            AccountKind::Work => AccountId::Work {
                corpid: part(0),
                agentid: agent()?,
            },
            AccountKind::Component => AccountId::Component { appid: part(0) },
            AccountKind::Suite => AccountId::Suite { suite_id: part(0) },
            AccountKind::Provider => AccountId::Provider { corpid: part(0) },
            AccountKind::Authorizer => AccountId::Authorizer {
                component_appid: part(0),
                appid: part(1),
            },
            AccountKind::Corp => AccountId::Corp {
                suite_id: part(0),
                corpid: part(1),
            },
        };
        let config = AccountConfig {
            token_api: r.token_api.unwrap_or_default(),
            agentid: match kind {
                AccountKind::Corp => r.agentid.map(|a| a.as_str().to_owned()),
                _ => None,
            },
            ..AccountConfig::default()
        };
        Ok(NewAccount {
            id,
            secrets: r.secrets,
            config,
        })
    }
}

impl AccountPatch {
    /// Parses the body of `PATCH /v1/accounts/{id}` for an account of
    /// `kind` (a `kind` given must be that one).
    pub fn from_json(kind: AccountKind, v: &Value) -> Result<Self, ParseError> {
        let obj = object(v)?;
        if obj.field("kind").is_some_and(|k| k != Raw::Text(kind.as_str())) {
            return Err(ParseError("kind cannot be changed".into()));
        }
        Self::parse(kind, obj, &["kind"])
    }

    /// Parses a change to an account of `kind` from any source.
    pub fn parse(kind: AccountKind, src: &dyn FieldSource, also: &[&str]) -> Result<Self, ParseError> {
        let r = read(src, patch_fields(kind), also)?;
        Ok(AccountPatch {
            secrets: r.secrets,
            token_api: r.token_api,
            agentid: r.agentid.map(|a| a.as_str().to_owned()),
        })
    }
}

fn object(v: &Value) -> Result<&Map<String, Value>, ParseError> {
    v.as_object()
        .ok_or_else(|| ParseError("the body must be a JSON object".into()))
}

#[cfg(test)]
mod tests;
