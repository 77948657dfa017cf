//! The audit trail of token-free calls (SPEC §6): each call a key made
//! through `/proxy/`, with what WeChat answered — never a token or a body —
//! kept `WETOKEN_EVENT_RETENTION_DAYS` (purged with the events), and counted
//! by key, account kind, path family and errcode
//! (`wetoken_proxy_calls_total`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{CredentialService, Page, Result};
use crate::domain::AccountId;
use crate::store::{AuditEntry, AuditQuery};

/// One call to record.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    pub key: &'a str,
    pub account: &'a AccountId,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub errcode: Option<i64>,
    pub rid: Option<String>,
}

/// `/cgi-bin/message/custom/send` → `/cgi-bin/message`: the metric's path
/// label (bounded: the API's families, not every path).
pub fn path_family(path: &str) -> &str {
    let mut ends = path.match_indices('/').map(|(i, _)| i).skip(2);
    match ends.next() {
        Some(i) => &path[..i],
        None => path,
    }
}

impl CredentialService {
    /// Records a token-free call. Ids are `{ms:013}-{instance}-{n:06}`:
    /// unique across instances and in time order.
    pub async fn record_call(&self, c: CallRecord<'_>) -> Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let at = self.now_ms();
        let n = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        let instance: String = self.inner.cfg.instance_id.chars().take(24).collect();
        let errcode = c.errcode.map_or_else(|| "none".to_owned(), |e| e.to_string());
        metrics::counter!(
            "wetoken_proxy_calls_total",
            "key" => c.key.to_owned(),
            "kind" => c.account.kind().as_str(),
            "family" => path_family(c.path).to_owned(),
            "errcode" => errcode,
        )
        .increment(1);
        let entry = AuditEntry {
            id: format!("{at:013}-{instance}-{n:06}"),
            at,
            key: c.key.to_owned(),
            account: c.account.clone(),
            method: c.method.to_owned(),
            path: c.path.chars().take(200).collect(),
            status: i64::from(c.status),
            errcode: c.errcode,
            rid: c.rid,
        };
        Ok(self.inner.store.insert_audit(&entry).await?)
    }

    /// A page of the audit trail, oldest first; the next page starts after
    /// its last entry.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>> {
        let entries = self.inner.store.audit_page(q).await?;
        Ok(Page::of(entries, q.limit, |e| e.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_families_are_the_first_two_segments() {
        assert_eq!(path_family("/cgi-bin/message/custom/send"), "/cgi-bin/message");
        assert_eq!(path_family("/cgi-bin/menu/create"), "/cgi-bin/menu");
        assert_eq!(path_family("/wxa/getwxacode"), "/wxa/getwxacode");
        assert_eq!(path_family("/sns"), "/sns");
    }
}
