//! The services around the engine, each holding the engine and only the
//! parts of the store it uses, and the front door that assembles them.

use super::*;

/// Accounts: creating, listing, changing and deleting them; what
/// WeChat-shaped callers present (secrets, tokens); an account's WeChat
/// diagnostics (quota, rid, clear_quota).
#[derive(Clone)]
pub struct Accounts {
    pub(super) engine: CredentialEngine,
    pub(super) accounts: Arc<dyn AccountStore>,
    /// Parsed API-security keys (see `signed`).
    pub(super) signers: signed::Signers,
}

/// Open Platform components and WeCom suites: their children (authorizers,
/// corps), authorization flows, pushed tickets and verified callbacks.
#[derive(Clone)]
pub struct Platforms {
    pub(super) engine: CredentialEngine,
    /// Landing-page code exchanges per component this minute (see
    /// `component`): (minute, count), one entry per existing component.
    pub(super) landings: Arc<std::sync::Mutex<std::collections::HashMap<AccountId, (i64, u32)>>>,
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) events: Arc<dyn EventStore>,
}

/// Events, webhooks and their delivery.
#[derive(Clone)]
pub struct Events {
    pub(super) engine: CredentialEngine,
    /// Posts to webhooks (see `deliver`): 10 s, no redirects.
    pub(super) webhooks: reqwest::Client,
    pub(super) events: Arc<dyn EventStore>,
    /// The webhooks as the push path last read them (see `replies`).
    pub(super) hooks: replies::HookCache,
}

/// The console's own state: sessions, sign-in links, the overview.
#[derive(Clone)]
pub struct Console {
    pub(super) engine: CredentialEngine,
    /// The account list, as the API reads it.
    pub(super) listing: Accounts,
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) events: Arc<dyn EventStore>,
    pub(super) sessions: Arc<dyn SessionStore>,
}

/// Custody of secrets: the master key's checks and re-sealing, API keys,
/// the audit trail of token-free calls.
#[derive(Clone)]
pub struct Custody {
    pub(super) engine: CredentialEngine,
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) keys: Arc<dyn KeyStore>,
    pub(super) events: Arc<dyn EventStore>,
    pub(super) audit: Arc<dyn AuditStore>,
}

/// Sign-in without secrets (SPEC §13): users' logins and web
/// authorization made with the account's secret or its component's token,
/// and users' session keys kept (see `signin`).
#[derive(Clone)]
pub struct SignIn {
    pub(super) engine: CredentialEngine,
    pub(super) keys: Arc<dyn SessionKeyStore>,
    /// The audit trail (`Custody::record_call`).
    pub(super) custody: Custody,
    /// When this instance last purged expired session keys (epoch ms).
    pub(super) purged_at: Arc<std::sync::atomic::AtomicI64>,
}

/// Users' messages and events pushed to an account's receiving URL
/// (SPEC §14; see `messages`).
#[derive(Clone)]
pub struct Messages {
    pub(super) engine: CredentialEngine,
    pub(super) events: Arc<dyn EventStore>,
    /// Calls reply webhooks (see `replies`).
    pub(super) delivery: Events,
    /// Commits pushes a batch at a time (see `batch`).
    pub(super) batcher: batch::Batcher,
}

/// The front door: the engine and the services around it, assembled once
/// over one store. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub engine: CredentialEngine,
    pub accounts: Accounts,
    pub platforms: Platforms,
    pub events: Events,
    pub console: Console,
    pub custody: Custody,
    pub signin: SignIn,
    pub messages: Messages,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        key: MasterKey,
        cfg: ServiceConfig,
    ) -> Self {
        let engine = CredentialEngine::new(store.clone(), upstream, clock, key, cfg);
        let e = || engine.clone();
        let events = Events {
            engine: e(),
            webhooks: deliver::client(),
            events: store.clone(),
            hooks: Default::default(),
        };
        let custody = Custody {
            engine: e(),
            accounts: store.clone(),
            keys: store.clone(),
            events: store.clone(),
            audit: store.clone(),
        };
        let accounts = Accounts {
            engine: e(),
            accounts: store.clone(),
            signers: Default::default(),
        };
        Services {
            accounts: accounts.clone(),
            platforms: Platforms {
                engine: e(),
                landings: Default::default(),
                accounts: store.clone(),
                events: store.clone(),
            },
            events: events.clone(),
            console: Console {
                engine: e(),
                listing: accounts,
                accounts: store.clone(),
                events: store.clone(),
                sessions: store.clone(),
            },
            custody: custody.clone(),
            messages: Messages {
                engine: e(),
                events: store.clone(),
                delivery: events,
                batcher: Default::default(),
            },
            signin: SignIn {
                engine: e(),
                keys: store,
                custody,
                purged_at: Default::default(),
            },
            engine,
        }
    }
}
