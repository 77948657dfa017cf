//! The audit trail of token-free calls (SPEC §6): each call a key made
//! through `/proxy/`, with what WeChat answered — never a token or a body —
//! kept `WETOKEN_EVENT_RETENTION_DAYS` (purged with the events), and counted
//! by key, account kind, path family and errcode
//! (`wetoken_proxy_calls_total`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Custody, Page, Result};
use crate::domain::AccountId;
use crate::store::{AuditEntry, AuditQuery};
use crate::upstream::paths;

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
    /// Whether it reached WeChat (false: wetoken refused it).
    pub relayed: bool,
}

impl Custody {
    /// Records a token-free call. Ids are `{ms:013}-{instance}-{n:06}`:
    /// unique across instances and in time order.
    pub async fn record_call(&self, c: CallRecord<'_>) -> Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let at = self.engine.now_ms();
        let n = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        let instance: String = self.engine.inner.cfg.instance_id.chars().take(24).collect();
        // Bounded labels (SPEC §6): a fixed list of families, and every
        // call wetoken refused under one series (the audit trail says whose).
        if c.relayed {
            let errcode = c.errcode.map_or_else(|| "none".to_owned(), |e| e.to_string());
            metrics::counter!(
                "wetoken_proxy_calls_total",
                "key" => c.key.to_owned(),
                "kind" => c.account.kind().as_str(),
                "family" => paths::family(c.path),
                "errcode" => errcode,
            )
            .increment(1);
        } else {
            metrics::counter!(
                "wetoken_proxy_calls_total",
                "key" => "-",
                "kind" => "-",
                "family" => "refused",
                "errcode" => "none",
            )
            .increment(1);
        }
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
        Ok(self.audit.insert_audit(&entry).await?)
    }

    /// A page of the audit trail, oldest first; the next page starts after
    /// its last entry.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>> {
        let entries = self.audit.audit_page(q).await?;
        Ok(Page::of(entries, q.limit, |e| e.id.clone()))
    }
}
