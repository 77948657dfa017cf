//! What an authorization grants, as WeChat and WeCom describe it: typed
//! where wetoken reads it (a permission set's category id, a corp's id, an
//! agent's id), everything else each object carries kept as given, so that
//! nothing WeChat adds is lost or refused.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// WeChat's `func_info` (`api_query_auth`): the permission sets an
/// authorizer granted its component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FuncInfo(pub Vec<FuncScope>);

/// One permission set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuncScope {
    pub funcscope_category: Category,
    /// What else WeChat says of it (`confirm_info`, …), as given.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A permission set's category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: i64,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl FuncInfo {
    /// The category ids granted.
    pub fn categories(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().map(|s| s.funcscope_category.id)
    }

    /// `func_info` of an answer: None when absent or not of WeChat's shape
    /// (logged: the authorization itself stands).
    pub fn of(v: Option<&Value>) -> Option<Self> {
        let v = v.filter(|v| !v.is_null())?;
        serde_json::from_value(v.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "func_info not of WeChat's documented shape; not kept"))
            .ok()
    }
}

/// A corp's authorization of a suite (`get_permanent_code`,
/// `get_auth_info`): the corp, and what it granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpAuthorization {
    pub auth_corp_info: CorpInfo,
    #[serde(default, deserialize_with = "null_as_default")]
    pub auth_info: AgentGrants,
}

/// The corp, as WeCom describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpInfo {
    pub corpid: String,
    /// `corp_name`, `corp_type`, … as given.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The apps a corp granted the suite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentGrants {
    #[serde(default, deserialize_with = "null_as_default")]
    pub agent: Vec<Agent>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One app of the install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub agentid: AgentNumber,
    /// `name`, `privilege`, … as given.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An agent id as WeCom writes it: a number (documented) or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AgentNumber {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for AgentNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentNumber::Number(n) => write!(f, "{n}"),
            AgentNumber::Text(s) => f.write_str(s),
        }
    }
}

impl CorpAuthorization {
    /// The first agent of the install, when WeCom names one.
    pub fn first_agentid(&self) -> Option<String> {
        self.auth_info.agent.first().map(|a| a.agentid.to_string())
    }
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + DeserializeOwned>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// For stored configurations: a value that does not read as `T` (written
/// before it was typed, or by a WeChat that changed) is dropped, never a
/// corrupt account.
pub fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn func_info_reads_categories_and_keeps_the_rest() {
        let given = json!([
            {"funcscope_category": {"id": 1}},
            {"funcscope_category": {"id": 17, "type": 1}, "confirm_info": {"need_confirm": 0, "already_confirm": 0, "can_confirm": 0}},
        ]);
        let f = FuncInfo::of(Some(&given)).unwrap();
        assert_eq!(f.categories().collect::<Vec<_>>(), [1, 17]);
        assert_eq!(serde_json::to_value(&f).unwrap(), given, "written back as given");
        assert_eq!(FuncInfo::of(Some(&json!({"not": "a list"}))), None);
        assert_eq!(FuncInfo::of(Some(&Value::Null)), None);
        assert_eq!(FuncInfo::of(None), None);
    }

    #[test]
    fn a_corp_authorization_reads_the_corp_and_its_first_agent() {
        let given = json!({
            "auth_corp_info": {"corpid": "wwcorp", "corp_name": "Corp"},
            "auth_info": {"agent": [{"agentid": 1000002, "name": "app", "privilege": {"level": 1}}]},
        });
        let a: CorpAuthorization = serde_json::from_value(given.clone()).unwrap();
        assert_eq!(
            (a.auth_corp_info.corpid.as_str(), a.first_agentid()),
            ("wwcorp", Some("1000002".into()))
        );
        assert_eq!(serde_json::to_value(&a).unwrap(), given, "written back as given");
        let text: CorpAuthorization = serde_json::from_value(
            json!({"auth_corp_info": {"corpid": "ww"}, "auth_info": {"agent": [{"agentid": "7"}]}}),
        )
        .unwrap();
        assert_eq!(text.first_agentid().as_deref(), Some("7"));
        let none: CorpAuthorization =
            serde_json::from_value(json!({"auth_corp_info": {"corpid": "ww"}, "auth_info": null})).unwrap();
        assert_eq!(none.first_agentid(), None);
        assert!(serde_json::from_value::<CorpAuthorization>(json!({"auth_corp_info": {}})).is_err());
    }

    #[test]
    fn stored_values_of_another_shape_are_dropped_not_corrupt() {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default, deserialize_with = "lenient")]
            func_info: Option<FuncInfo>,
        }
        let c: Config = serde_json::from_value(json!({"func_info": "odd"})).unwrap();
        assert_eq!(c.func_info, None);
        let c: Config = serde_json::from_value(json!({"func_info": [{"funcscope_category": {"id": 3}}]})).unwrap();
        assert_eq!(c.func_info.unwrap().categories().collect::<Vec<_>>(), [3]);
        let c: Config = serde_json::from_value(json!({})).unwrap();
        assert_eq!(c.func_info, None);
    }
}
