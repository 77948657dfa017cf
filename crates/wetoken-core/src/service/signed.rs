//! Signed calls (SPEC §15): a token-free call of an `mp` account (or of an
//! authorizer, with its component's keys and the component's appid in
//! `Wechatmp-Appid`) to an API that must be signed — `intracity/*` always,
//! every other when the block says `"sign": "all"`, never an upload — is
//! sealed and signed here with the account's keys (`crate::apisec`), and
//! WeChat's answer verified and opened before the caller sees it. WeChat's
//! own refusals (40230–40240, 934011) come back as WeChat sent them; an
//! answer that does not verify is an error, never passed on. A platform
//! certificate within 30 days of its end raises
//! `wetoken.api_security.certificate_expiring`, once per certificate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Accounts, Result, ServiceError};
use crate::apisec::{AnswerHeaders, ApiKeys, ApiSecurityConfig, must_sign};
use crate::domain::{AccountId, Credential};
use crate::events::NewEvent;
use crate::upstream::{Signed, UpstreamError};

/// How long before a platform certificate's end it is announced.
pub const EXPIRING_WITHIN_MS: i64 = 30 * 86_400_000;

/// The largest answer of a signed call read.
const ANSWER_LIMIT: usize = 1 << 20;

/// Parsed keys per holder (the account, or an authorizer's component) —
/// or none, for one without a block — read at most once per cache TTL
/// (a token-free call makes no database read for them), forgotten when this
/// instance changes the account; certificates announced.
#[derive(Clone, Default)]
pub(super) struct Signers {
    keys: Arc<Mutex<HashMap<AccountId, Parsed>>>,
    announced: Arc<Mutex<HashSet<(AccountId, String)>>>,
}

/// When a holder's keys were read, and what they were.
type Parsed = (std::time::Instant, Option<Arc<ApiKeys>>);

impl Signers {
    /// Forgets what was read of `id`'s keys (it changed here).
    pub(super) fn forget(&self, id: &AccountId) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// The keys one call is signed with.
#[derive(Clone)]
pub struct Signer {
    /// Whose keys: the account, or an authorizer's component.
    pub holder: AccountId,
    /// `Wechatmp-Appid`: the holder's appid.
    pub appid: String,
    keys: Arc<ApiKeys>,
}

/// A signed call's answer as the caller gets it.
#[derive(Debug, Clone, PartialEq)]
pub enum SignedAnswer {
    /// WeChat's plain answer (a refusal, or an API that answered
    /// unsigned), as it came.
    Plain(Vec<u8>),
    /// The verified, opened answer (without `_n`, `_appid`, `_timestamp`).
    Opened(Map<String, Value>),
}

impl Accounts {
    /// The keys a token-free call of `owner` to `path` is signed with, when
    /// it is to be signed (never for an upload).
    pub async fn signer_for(&self, owner: &AccountId, path: &str, upload: bool) -> Result<Option<Signer>> {
        let holder = match owner {
            AccountId::Mp { .. } => owner.clone(),
            AccountId::Authorizer { component_appid, .. } => AccountId::Component {
                appid: component_appid.clone(),
            },
            _ => return Ok(None),
        };
        let Some(keys) = self.keys_of(&holder).await? else {
            return Ok(None);
        };
        if !must_sign(path, keys.sign_all(), upload) {
            return Ok(None);
        }
        self.announce_expiring(&holder, &keys).await;
        let appid = match &holder {
            AccountId::Mp { appid } | AccountId::Component { appid } => appid.to_string(),
            _ => unreachable!("a holder is an mp account or a component"),
        };
        Ok(Some(Signer { holder, appid, keys }))
    }

    /// `holder`'s keys, parsed (none without a block), from what was read
    /// within the cache TTL or read now.
    async fn keys_of(&self, holder: &AccountId) -> Result<Option<Arc<ApiKeys>>> {
        let ttl = self.engine.inner.cfg.cache_ttl;
        let cached = {
            let m = self.signers.keys.lock().unwrap_or_else(|e| e.into_inner());
            m.get(holder)
                .filter(|(at, _)| at.elapsed() < ttl)
                .map(|(_, k)| k.clone())
        };
        if let Some(keys) = cached {
            return Ok(keys);
        }
        let block = self
            .engine
            .inner
            .any_account(holder)
            .await?
            .and_then(|a| a.secrets.api_security);
        let keys = match block {
            None => None,
            Some(b) => {
                let cfg: ApiSecurityConfig = serde_json::from_str(b.expose())
                    .map_err(|e| ServiceError::Invalid(format!("{holder}'s api_security: {e}")))?;
                Some(Arc::new(cfg.keys().map_err(|e| ServiceError::Invalid(e.0))?))
            }
        };
        self.signers
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(holder.clone(), (std::time::Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// `wetoken.api_security.certificate_expiring` for each of the holder's
    /// certificates within [`EXPIRING_WITHIN_MS`] of its end, once each.
    async fn announce_expiring(&self, holder: &AccountId, keys: &ApiKeys) {
        let now = self.engine.inner.now_ms();
        for c in keys.certs() {
            if c.not_after - now > EXPIRING_WITHIN_MS {
                continue;
            }
            let first = self
                .signers
                .announced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((holder.clone(), c.sn.clone()));
            if !first {
                continue;
            }
            let mut data = Map::new();
            data.insert("sn".into(), Value::from(c.sn.clone()));
            data.insert(
                "not_after".into(),
                Value::from(crate::clock::from_millis(c.not_after).to_rfc3339()),
            );
            let mut e = NewEvent::new("wetoken.api_security.certificate_expiring", holder, now, data);
            let key = format!("{holder}\ncertificate_expiring\n{}\n{}", c.sn, c.not_after);
            e.dedupe = Some(hex::encode(Sha256::digest(key.as_bytes())));
            let events = std::slice::from_ref(&e);
            match self.engine.inner.store.append_events(events).await {
                Ok(()) => self.engine.inner.committed(events),
                Err(err) => tracing::warn!(account = %holder, error = %err, "cannot record an expiring certificate"),
            }
        }
    }

    /// A signed call of `owner` to `path` (its query without a token, its
    /// JSON body), with its own token: sealed, signed, sent; the answer
    /// verified and opened.
    pub async fn call_signed(
        &self,
        owner: &AccountId,
        signer: &Signer,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<SignedAnswer> {
        let mut fields = Map::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            fields.insert(k.into_owned(), Value::from(v.into_owned()));
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => fields.extend(m),
                _ => {
                    return Err(ServiceError::Invalid(
                        "a signed call's body must be a JSON object (WeChat seals its fields)".into(),
                    ));
                }
            }
        }
        let token = self.engine.get(owner, Credential::AccessToken).await?.value;
        let up = &self.engine.inner.upstream;
        let ts = self.engine.inner.now_ms().div_euclid(1000);
        let seal = |urlpath: &str| {
            let (sealed, signature) = signer.keys.seal_request(urlpath, &signer.appid, ts, &fields);
            let headers = vec![
                ("Wechatmp-Appid", signer.appid.clone()),
                ("Wechatmp-TimeStamp", ts.to_string()),
                ("Wechatmp-Signature", signature),
                ("Wechatmp-Serial", signer.keys.private_sn().to_owned()),
            ];
            (headers, sealed)
        };
        let Signed {
            urlpath,
            headers: answer_headers,
            body: answer,
        } = up.signed_post(path, &token, seal, ANSWER_LIMIT).await?;
        let is_envelope = serde_json::from_slice::<Value>(&answer)
            .ok()
            .is_some_and(|v| v.get("iv").is_some() && v.get("data").is_some() && v.get("errcode").is_none());
        if !is_envelope {
            return Ok(SignedAnswer::Plain(answer));
        }
        let h = AnswerHeaders {
            appid: answer_headers.get("wechatmp-appid").cloned(),
            timestamp: answer_headers.get("wechatmp-timestamp").cloned(),
            serial: answer_headers.get("wechatmp-serial").cloned(),
            signature: answer_headers.get("wechatmp-signature").cloned(),
            serial_deprecated: answer_headers.get("wechatmp-serial-deprecated").cloned(),
            signature_deprecated: answer_headers.get("wechatmp-signature-deprecated").cloned(),
        };
        match signer.keys.open_answer(&urlpath, &signer.appid, &h, &answer) {
            Ok((fields, deprecated)) => {
                if deprecated {
                    tracing::warn!(account = %signer.holder, serial = ?h.serial,
                        "WeChat signed with a platform certificate this account does not hold: add the new one");
                }
                Ok(SignedAnswer::Opened(fields))
            }
            Err(e) => {
                metrics::counter!("wetoken_signed_answers_refused_total").increment(1);
                tracing::warn!(account = %signer.holder, error = %e, "a signed call's answer was refused");
                Err(UpstreamError::Malformed(format!("{e}: not passed on")).into())
            }
        }
    }
}
