//! Accounts, their ids and the credentials they own (SPEC §1).
//!
//! Every identifier that enters wetoken (a URL segment, a CLI argument, a JSON
//! field) is parsed here once into a type. Past this module nothing
//! re-validates strings, and nothing unvalidated reaches a query.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused. The message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A WeChat identifier: appid, corpid, suite_id, component appid.
/// `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    pub fn parse(field: &str, s: &str) -> Result<Self, ParseError> {
        let ok =
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Ident(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "{field} must be 1 to 64 characters of A-Z a-z 0-9 _ -"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WeCom agent id: digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AgentId(s.to_owned()))
        } else {
            Err(ParseError("agentid must be 1 to 20 digits".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The seven kinds of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Mp,
    Work,
    Component,
    Authorizer,
    Suite,
    Provider,
    Corp,
}

impl AccountKind {
    pub const ALL: [AccountKind; 7] = [
        AccountKind::Mp,
        AccountKind::Work,
        AccountKind::Component,
        AccountKind::Authorizer,
        AccountKind::Suite,
        AccountKind::Provider,
        AccountKind::Corp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Mp => "mp",
            AccountKind::Work => "work",
            AccountKind::Component => "component",
            AccountKind::Authorizer => "authorizer",
            AccountKind::Suite => "suite",
            AccountKind::Provider => "provider",
            AccountKind::Corp => "corp",
        }
    }

    /// The credentials an account of this kind owns, in display order.
    pub fn credentials(self) -> &'static [Credential] {
        use Credential::*;
        match self {
            AccountKind::Mp | AccountKind::Authorizer => &[AccessToken, JsapiTicket, WxCardTicket],
            AccountKind::Work | AccountKind::Corp => &[AccessToken, JsapiTicket, AgentTicket],
            AccountKind::Component => &[VerifyTicket, AccessToken],
            AccountKind::Suite => &[SuiteTicket, AccessToken],
            AccountKind::Provider => &[AccessToken],
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            ParseError(format!(
                "kind must be one of mp, work, component, authorizer, suite, provider, corp (got {s:?})"
            ))
        })
    }
}

/// The id of an account, e.g. `mp:wx1`, `work:corp1:1000002`,
/// `authorizer:wxcomponent:wx1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountId {
    Mp { appid: Ident },
    Work { corpid: Ident, agentid: AgentId },
    Component { appid: Ident },
    Authorizer { component_appid: Ident, appid: Ident },
    Suite { suite_id: Ident },
    Provider { corpid: Ident },
    Corp { suite_id: Ident, corpid: Ident },
}

impl AccountId {
    pub fn mp(appid: Ident) -> Self {
        AccountId::Mp { appid }
    }

    pub fn kind(&self) -> AccountKind {
        match self {
            AccountId::Mp { .. } => AccountKind::Mp,
            AccountId::Work { .. } => AccountKind::Work,
            AccountId::Component { .. } => AccountKind::Component,
            AccountId::Authorizer { .. } => AccountKind::Authorizer,
            AccountId::Suite { .. } => AccountKind::Suite,
            AccountId::Provider { .. } => AccountKind::Provider,
            AccountId::Corp { .. } => AccountKind::Corp,
        }
    }

    /// The account this one hangs under: a component for an authorizer, a
    /// suite for a corp.
    pub fn parent(&self) -> Option<AccountId> {
        match self {
            AccountId::Authorizer { component_appid, .. } => Some(AccountId::Component {
                appid: component_appid.clone(),
            }),
            AccountId::Corp { suite_id, .. } => Some(AccountId::Suite {
                suite_id: suite_id.clone(),
            }),
            _ => None,
        }
    }

    /// Whether this account owns credential `c`.
    pub fn owns(&self, c: Credential) -> bool {
        self.kind().credentials().contains(&c)
    }

    /// The identifier fields of this account, as they appear in the API.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            AccountId::Mp { appid } | AccountId::Component { appid } => {
                vec![("appid", appid.as_str())]
            }
            AccountId::Work { corpid, agentid } => {
                vec![("corpid", corpid.as_str()), ("agentid", agentid.as_str())]
            }
            AccountId::Authorizer { component_appid, appid } => {
                vec![("component_appid", component_appid.as_str()), ("appid", appid.as_str())]
            }
            AccountId::Suite { suite_id } => vec![("suite_id", suite_id.as_str())],
            AccountId::Provider { corpid } => vec![("corpid", corpid.as_str())],
            AccountId::Corp { suite_id, corpid } => {
                vec![("suite_id", suite_id.as_str()), ("corpid", corpid.as_str())]
            }
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().as_str())?;
        for (_, v) in self.fields() {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

impl FromStr for AccountId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError(format!("malformed account id {:?}", truncate(s)));
        if s.len() > 200 {
            return Err(bad());
        }
        let mut parts = s.split(':');
        let kind: AccountKind = parts.next().unwrap_or("").parse().map_err(|_| bad())?;
        let rest: Vec<&str> = parts.collect();
        let one = |field: &str| -> Result<Ident, ParseError> {
            match rest.as_slice() {
                [a] => Ident::parse(field, a),
                _ => Err(bad()),
            }
        };
        let two = |f1: &str| -> Result<(Ident, &str), ParseError> {
            match rest.as_slice() {
                [a, b] => Ok((Ident::parse(f1, a)?, *b)),
                _ => Err(bad()),
            }
        };
        Ok(match kind {
            AccountKind::Mp => AccountId::Mp { appid: one("appid")? },
            AccountKind::Component => AccountId::Component { appid: one("appid")? },
            AccountKind::Suite => AccountId::Suite {
                suite_id: one("suite_id")?,
            },
            AccountKind::Provider => AccountId::Provider { corpid: one("corpid")? },
            AccountKind::Work => {
                let (corpid, agent) = two("corpid")?;
                AccountId::Work {
                    corpid,
                    agentid: AgentId::parse(agent)?,
                }
            }
            AccountKind::Authorizer => {
                let (component_appid, appid) = two("component_appid")?;
                AccountId::Authorizer {
                    component_appid,
                    appid: Ident::parse("appid", appid)?,
                }
            }
            AccountKind::Corp => {
                let (suite_id, corpid) = two("suite_id")?;
                AccountId::Corp {
                    suite_id,
                    corpid: Ident::parse("corpid", corpid)?,
                }
            }
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A credential an account owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    AccessToken,
    JsapiTicket,
    WxCardTicket,
    AgentTicket,
    /// Pushed by WeChat to a component's callback.
    VerifyTicket,
    /// Pushed by WeCom to a suite's callback.
    SuiteTicket,
}

impl Credential {
    pub const ALL: [Credential; 6] = [
        Credential::AccessToken,
        Credential::JsapiTicket,
        Credential::WxCardTicket,
        Credential::AgentTicket,
        Credential::VerifyTicket,
        Credential::SuiteTicket,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Credential::AccessToken => "access_token",
            Credential::JsapiTicket => "jsapi_ticket",
            Credential::WxCardTicket => "wx_card_ticket",
            Credential::AgentTicket => "agent_ticket",
            Credential::VerifyTicket => "verify_ticket",
            Credential::SuiteTicket => "suite_ticket",
        }
    }

    /// Pushed credentials are stored as WeChat sends them, never fetched.
    pub fn is_pushed(self) -> bool {
        matches!(self, Credential::VerifyTicket | Credential::SuiteTicket)
    }

    /// Tickets are fetched with the account's current access token.
    pub fn needs_access_token(self) -> bool {
        matches!(
            self,
            Credential::JsapiTicket | Credential::WxCardTicket | Credential::AgentTicket
        )
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Credential {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Credential::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ParseError(format!("unknown credential {:?}", truncate(s))))
    }
}

/// Which WeChat endpoint an `mp` account's access token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token` (the default).
    #[default]
    Stable,
    /// `GET /cgi-bin/token`: every fetch rotates the token.
    Classic,
}

impl TokenApi {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenApi::Stable => "stable",
            TokenApi::Classic => "classic",
        }
    }
}

impl FromStr for TokenApi {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "stable" => Ok(TokenApi::Stable),
            "classic" => Ok(TokenApi::Classic),
            _ => Err(ParseError(format!(
                "token_api must be \"stable\" or \"classic\" (got {:?})",
                truncate(s)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for s in [
            "mp:wx1",
            "work:ww1:1000002",
            "component:wxc",
            "authorizer:wxc:wx9",
            "suite:ss1",
            "provider:ww2",
            "corp:ss1:wwcorp",
        ] {
            let id: AccountId = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn bad_ids_are_refused() {
        for s in [
            "",
            "mp",
            "mp:",
            "mp:wx1' OR '1'='1",
            "mp:a:b",
            "work:ww1:abc",
            "work:ww1",
            "nope:wx1",
            "authorizer:wxc",
            &format!("mp:{}", "a".repeat(65)),
            &format!("mp:{}", "a".repeat(200)),
            "mp:wx/1",
            "mp:wx 1",
            "mp:微信",
        ] {
            assert!(s.parse::<AccountId>().is_err(), "{s:?} accepted");
        }
        assert!(Ident::parse("appid", &"a".repeat(64)).is_ok());
    }

    #[test]
    fn parents_and_credentials() {
        let a: AccountId = "authorizer:wxc:wx9".parse().unwrap();
        assert_eq!(a.parent().unwrap().to_string(), "component:wxc");
        let c: AccountId = "corp:s1:ww".parse().unwrap();
        assert_eq!(c.parent().unwrap().to_string(), "suite:s1");
        assert!(a.owns(Credential::WxCardTicket));
        assert!(!a.owns(Credential::AgentTicket));
        assert!(c.owns(Credential::AgentTicket));
        let m: AccountId = "mp:wx".parse().unwrap();
        assert!(m.parent().is_none());
        assert!(!m.owns(Credential::VerifyTicket));
    }
}
