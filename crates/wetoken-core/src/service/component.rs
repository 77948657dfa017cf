//! The Open Platform flow (SPEC §3, §5): verify tickets pushed by WeChat,
//! pre-authorization, authorization events, and the authorizers a component
//! manages. The component's and authorizers' tokens themselves are fetched by
//! the engine (`fetch` in `mod.rs`) like any other credential.

use super::{AuthorizerEntry, ChildStatus, Platforms, Result, ServiceError};
use crate::clock::from_millis;
use crate::domain::{AccountId, Ident};
use crate::events::NewEvent;
use crate::msgcrypt::MsgCrypt;
use crate::secret::Secret;

/// The optional parts of an authorization URL (SPEC §3).
#[derive(Debug, Clone, Default)]
pub struct AuthUrlParams {
    pub auth_type: Option<String>,
    pub biz_appid: Option<Ident>,
    pub category_id_list: Option<String>,
    /// The H5 `bindcomponent` form instead of the PC `componentloginpage`.
    pub h5: bool,
}

/// Landing-page code exchanges allowed per component and minute.
pub const LANDINGS_PER_MINUTE: u32 = 10;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The URL an administrator opens to authorize accounts to a component:
/// every value URL-encoded.
pub fn auth_url(component_appid: &str, pre_auth_code: &str, redirect_uri: &str, p: &AuthUrlParams) -> String {
    let mut q = format!(
        "component_appid={}&pre_auth_code={}&redirect_uri={}&auth_type={}",
        enc(component_appid),
        enc(pre_auth_code),
        enc(redirect_uri),
        enc(p.auth_type.as_deref().unwrap_or("3"))
    );
    if let Some(b) = &p.biz_appid {
        q.push_str(&format!("&biz_appid={}", enc(b.as_str())));
    }
    if let Some(c) = &p.category_id_list {
        q.push_str(&format!("&category_id_list={}", enc(c)));
    }
    if p.h5 {
        format!(
            "https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&{q}#wechat_redirect"
        )
    } else {
        format!("https://mp.weixin.qq.com/cgi-bin/componentloginpage?{q}")
    }
}

fn component_appid(id: &AccountId) -> Result<&Ident> {
    match id {
        AccountId::Component { appid } => Ok(appid),
        other => Err(ServiceError::Invalid(format!("{other} is not a component"))),
    }
}

impl Platforms {
    /// The callback crypto of a component or suite: its token and
    /// EncodingAESKey, receive id = its appid / suite_id.
    pub async fn callback_crypt(&self, id: &AccountId) -> Result<MsgCrypt> {
        let a = self.engine.inner.account(id).await?;
        let receive_id = match id {
            AccountId::Component { appid } => appid.as_str(),
            AccountId::Suite { suite_id } => suite_id.as_str(),
            other => return Err(ServiceError::Invalid(format!("{other} receives no callbacks"))),
        };
        let (Some(token), Some(key)) = (&a.secrets.token, &a.secrets.aes_key) else {
            return Err(ServiceError::Invalid(format!("{id} has no callback token and aes_key")));
        };
        MsgCrypt::new(token.expose(), key.expose(), receive_id).map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// A fresh single-use pre_auth_code and its life in seconds.
    pub async fn pre_auth_code(&self, component: &AccountId) -> Result<(String, i64)> {
        let c = component_appid(component)?.as_str();
        self.engine.inner.account(component).await?;
        let up = &self.engine.inner.upstream;
        let f = self
            .engine
            .inner
            .upstream_with_token(component, move |t| async move { up.pre_auth_code(&t, c).await })
            .await?;
        Ok((f.value, f.expires_in))
    }

    /// Exchanges an authorization code (from an `authorized` event or the
    /// landing page) with api_query_auth and stores the authorizer, its
    /// refresh token (sealed) and func_info, and the access token that came
    /// with it. `event` is (AuthorizerAppid, CreateTime in ms) of a pushed
    /// event, committed with `events`. A code already exchanged (by the
    /// event or the landing page, whichever came first) changes nothing but
    /// `events`.
    pub async fn authorize(
        &self,
        component: &AccountId,
        code: &str,
        event: Option<(&Ident, i64)>,
        events: &[NewEvent],
    ) -> Result<AccountId> {
        let c = component_appid(component)?.clone();
        self.engine.inner.account(component).await?;
        let named = event.map(|(appid, _)| AccountId::Authorizer {
            component_appid: c.clone(),
            appid: appid.clone(),
        });
        if let Some(id) = self.exchanged(component, named.as_ref(), code).await? {
            self.events.append_events(events).await?;
            return Ok(id);
        }
        if event.is_none() {
            self.count_landing(component)?;
        }
        let up = &self.engine.inner.upstream;
        let cs = c.as_str();
        let info = self
            .engine
            .inner
            .upstream_with_token(component, move |t| async move { up.query_auth(&t, cs, code).await })
            .await?;
        let appid = Ident::parse("authorizer_appid", &info.authorizer_appid).map_err(|e| ServiceError::Invalid(e.0))?;
        let id = AccountId::Authorizer {
            component_appid: c,
            appid,
        };
        let at = event.map_or_else(|| self.engine.inner.now_ms(), |(_, at)| at);
        let refresh = info.refresh_token.clone().map(Secret::new);
        let func_info = info.func_info.clone();
        self.upsert_child(&id, at, Some(code), true, events, |a| {
            if refresh.is_some() {
                a.secrets.refresh_token = refresh;
            }
            a.config.func_info = func_info;
        })
        .await?;
        self.keep_token(&id, info.token.as_ref()).await?;
        Ok(id)
    }

    /// The landing page is reachable by anyone: at most
    /// [`LANDINGS_PER_MINUTE`] codes per component and minute go upstream
    /// from it (an administrator authorizes a handful).
    fn count_landing(&self, component: &AccountId) -> Result<()> {
        let minute = self.engine.inner.now_ms().div_euclid(60_000);
        let mut landings = self.landings.lock().unwrap_or_else(|e| e.into_inner());
        let entry = landings.entry(component.clone()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= LANDINGS_PER_MINUTE {
            return Err(ServiceError::RateLimited(format!(
                "too many authorization codes for {component} this minute; try again shortly"
            )));
        }
        entry.1 += 1;
        Ok(())
    }

    /// An `unauthorized` event at `at` (ms): the authorizer is revoked and its
    /// credentials dropped, unless it authorized again since. Whether it was.
    pub async fn unauthorize(
        &self,
        component: &AccountId,
        appid: &Ident,
        at: i64,
        events: &[NewEvent],
    ) -> Result<bool> {
        let c = component_appid(component)?.clone();
        self.revoke_child(
            &AccountId::Authorizer {
                component_appid: c,
                appid: appid.clone(),
            },
            at,
            events,
        )
        .await
    }

    /// A page of the authorizers of a component that are not revoked (SPEC
    /// §3), after the appid `after`.
    pub async fn authorizers(
        &self,
        component: &AccountId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<super::Page<AuthorizerEntry>> {
        component_appid(component)?;
        let page = self.live_children(component, after, limit).await?;
        let mut out = Vec::new();
        for a in page.items {
            let AccountId::Authorizer { appid, .. } = &a.id else {
                continue;
            };
            out.push(AuthorizerEntry {
                appid: appid.clone(),
                authorized_at: from_millis(a.config.authorized_at.unwrap_or(a.created_at)),
                status: ChildStatus::of(&a),
                func_info: a.config.func_info.clone(),
            });
        }
        Ok(super::Page {
            items: out,
            next_cursor: page.next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_urls_in_both_forms_with_every_value_encoded() {
        let p = AuthUrlParams {
            biz_appid: Some(Ident::parse("biz_appid", "wxbiz").unwrap()),
            category_id_list: Some("1|2".into()),
            ..AuthUrlParams::default()
        };
        let pc = auth_url(
            "wxc",
            "pre@auth/code+1",
            "https://w.example.com/callback/component/wxc/authorized?a=1",
            &p,
        );
        assert_eq!(
            pc,
            "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wxc&pre_auth_code=pre%40auth%2Fcode%2B1\
             &redirect_uri=https%3A%2F%2Fw.example.com%2Fcallback%2Fcomponent%2Fwxc%2Fauthorized%3Fa%3D1\
             &auth_type=3&biz_appid=wxbiz&category_id_list=1%7C2"
        );
        let h5 = auth_url(
            "wxc",
            "p",
            "https://x",
            &AuthUrlParams {
                h5: true,
                auth_type: Some("2".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            h5,
            "https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1\
             &component_appid=wxc&pre_auth_code=p&redirect_uri=https%3A%2F%2Fx&auth_type=2#wechat_redirect"
        );
    }
}
