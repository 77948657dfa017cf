//! What needs an operator's attention, for the console's overview (SPEC
//! §11): accounts by kind, credentials failing or blocked, credentials
//! expiring without a refresh, stale pushed tickets, the latest events.
//! Every part is a bounded read: counts stop at [`COUNT_CAP`], lists at a
//! few dozen rows, whatever the number of accounts.

use chrono::{DateTime, Utc};

use super::{AccountFilter, Console, CredentialView, Result};
use crate::clock::{from_millis, to_millis};
use crate::domain::{AccountId, AccountKind, Credential};
use crate::events::Event;
use crate::store::{AccountQuery, EventQuery};

/// Counts of accounts stop here ("10 000 or more").
pub const COUNT_CAP: i64 = 10_000;
/// Rows in each list of the overview.
pub const LIST_LIMIT: i64 = 20;
/// Components and suites whose tickets are checked.
const PUSHERS_LIMIT: i64 = 100;

/// One credential of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialAlert {
    pub account: AccountId,
    pub view: CredentialView,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub at: DateTime<Utc>,
    /// Accounts of each kind, at most [`COUNT_CAP`].
    pub counts: Vec<(AccountKind, i64)>,
    /// Credentials whose last refresh failed (blocked ones included), the
    /// newest error first.
    pub failing: Vec<CredentialAlert>,
    /// Credentials due for refresh now whose remaining life is under the
    /// refresh-ahead margin: the refresher is behind.
    pub expiring: Vec<CredentialAlert>,
    /// Verify/suite tickets not pushed within `WETOKEN_STALE_TICKET_SECS`
    /// (or never).
    pub stale_tickets: Vec<CredentialAlert>,
    /// The latest events, newest first.
    pub events: Vec<Event>,
}

impl Console {
    pub async fn overview(&self) -> Result<Overview> {
        let now = to_millis(self.engine.now());
        let mut counts = Vec::with_capacity(AccountKind::ALL.len());
        for kind in AccountKind::ALL {
            let q = AccountQuery {
                prefix: format!("{}:", kind.as_str()),
                limit: COUNT_CAP,
                ..AccountQuery::default()
            };
            counts.push((kind, self.accounts.count_accounts(&q).await?));
        }
        let alert = |c: &crate::store::CredentialState| CredentialAlert {
            account: c.account.clone(),
            view: CredentialView::of(c.credential, Some(c)),
        };
        let failing = self
            .accounts
            .failing_credentials(LIST_LIMIT)
            .await?
            .iter()
            .map(alert)
            .collect();
        let ahead = self.engine.inner.cfg.refresh_ahead.as_millis() as i64;
        let expiring = self
            .accounts
            .due(now, LIST_LIMIT)
            .await?
            .iter()
            .filter(|c| c.expires_at.is_some_and(|e| e - now < ahead))
            .map(alert)
            .collect();
        let stale_before = self.engine.now() - self.engine.inner.cfg.stale_ticket;
        let mut stale_tickets = Vec::new();
        for (kind, ticket) in [
            (AccountKind::Component, Credential::VerifyTicket),
            (AccountKind::Suite, Credential::SuiteTicket),
        ] {
            let filter = AccountFilter {
                kind: Some(kind),
                ..AccountFilter::default()
            };
            for a in self.listing.list_accounts(&filter, None, PUSHERS_LIMIT).await?.items {
                let Some(view) = a.credentials.iter().find(|c| c.credential == ticket) else {
                    continue;
                };
                if view.refreshed_at.is_none_or(|t| t < stale_before) {
                    stale_tickets.push(CredentialAlert {
                        account: a.id.clone(),
                        view: view.clone(),
                    });
                }
            }
        }
        let last = self.events.last_event_id().await?;
        let mut events = self
            .events
            .events(&EventQuery {
                after: (last - LIST_LIMIT).max(0),
                limit: LIST_LIMIT,
                ..EventQuery::default()
            })
            .await?;
        events.reverse();
        Ok(Overview {
            at: from_millis(now),
            counts,
            failing,
            expiring,
            stale_tickets,
            events,
        })
    }

    /// The id of the newest event (0 before the first): where the console's
    /// event list starts when no cursor is given.
    pub async fn last_event_id(&self) -> Result<i64> {
        Ok(self.events.last_event_id().await?)
    }
}
