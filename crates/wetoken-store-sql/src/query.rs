//! The binds of the paged queries, from the store's query types: ranges
//! and cursors as the canonical statements compare them (Oracle reads an
//! empty string as NULL, so "from the first" is a single space), optional
//! filters bound twice for their `? IS NULL OR column = ?` tests.

use wetoken_core::store::{AccountQuery, AuditQuery, EventQuery};

/// The binds of an audit page, in `select_audit` order (the limit last).
pub struct AuditBinds {
    pub after: String,
    pub from: String,
    pub key: Option<String>,
    pub account: Option<String>,
}

pub fn audit_binds(q: &AuditQuery) -> AuditBinds {
    AuditBinds {
        // Every id sorts after a space.
        after: q.after.clone().unwrap_or_else(|| " ".to_owned()),
        from: q.from.clone().unwrap_or_else(|| " ".to_owned()),
        key: q.key.clone(),
        account: q.account.as_ref().map(ToString::to_string),
    }
}

/// The optional filters of an event query, as bound: a `LIKE` pattern for
/// the type prefix, the account, the family.
pub struct EventFilters {
    pub like: Option<String>,
    pub account: Option<String>,
    pub family: Option<String>,
}

pub fn event_filters(q: &EventQuery) -> EventFilters {
    EventFilters {
        like: q
            .type_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}%")),
        account: q.account.as_ref().map(ToString::to_string),
        family: q.family.as_ref().map(ToString::to_string),
    }
}

/// The binds of an account page: `[lower, upper)` from the prefix (every id
/// character sorts below `~`; a single space stands for "from the first",
/// since Oracle reads an empty string as NULL), the cursor, the statuses.
pub struct PageBinds {
    pub lower: String,
    pub upper: String,
    pub after: String,
    pub status: Option<String>,
    pub not_status: Option<String>,
}

pub fn page_binds(q: &AccountQuery) -> PageBinds {
    PageBinds {
        lower: if q.prefix.is_empty() {
            " ".to_owned()
        } else {
            q.prefix.clone()
        },
        upper: format!("{}~", q.prefix),
        after: q
            .after
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| " ".to_owned()),
        status: q.status.map(|s| s.as_str().to_owned()),
        not_status: q.not_status.map(|s| s.as_str().to_owned()),
    }
}
