//! Settings (SPEC §7): defaults, then `wetoken.toml`, then `WETOKEN_*`
//! environment variables. The env names are the contract; each maps to the
//! TOML key of the same name without the prefix, lower-cased. File values and
//! env values go through one parser ([`Settings::set`]), so both accept the
//! same forms.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wetoken_core::service::ServiceConfig;
use wetoken_core::upstream::UpstreamConfig;

/// Every setting: TOML key and env name.
pub const KEYS: &[(&str, &str)] = &[
    ("listen", "WETOKEN_LISTEN"),
    ("database_url", "WETOKEN_DATABASE_URL"),
    ("data_dir", "WETOKEN_DATA_DIR"),
    ("auto_migrate", "WETOKEN_AUTO_MIGRATE"),
    ("master_key", "WETOKEN_MASTER_KEY"),
    ("old_master_keys", "WETOKEN_OLD_MASTER_KEYS"),
    ("admin_key", "WETOKEN_ADMIN_KEY"),
    ("auth", "WETOKEN_AUTH"),
    ("allow_open_network", "WETOKEN_ALLOW_OPEN_NETWORK"),
    ("max_body_bytes", "WETOKEN_MAX_BODY_BYTES"),
    ("public_url", "WETOKEN_PUBLIC_URL"),
    ("upstream_mp", "WETOKEN_UPSTREAM_MP"),
    ("upstream_work", "WETOKEN_UPSTREAM_WORK"),
    ("upstream_proxy", "WETOKEN_UPSTREAM_PROXY"),
    ("refresh_ahead_secs", "WETOKEN_REFRESH_AHEAD_SECS"),
    ("lease_secs", "WETOKEN_LEASE_SECS"),
    ("cache_ttl_secs", "WETOKEN_CACHE_TTL_SECS"),
    ("upstream_timeout_secs", "WETOKEN_UPSTREAM_TIMEOUT_SECS"),
    (
        "force_refresh_min_interval_secs",
        "WETOKEN_FORCE_REFRESH_MIN_INTERVAL_SECS",
    ),
    ("callback_max_skew_secs", "WETOKEN_CALLBACK_MAX_SKEW_SECS"),
    ("proxy", "WETOKEN_PROXY"),
    ("log", "WETOKEN_LOG"),
    ("request_timeout_secs", "WETOKEN_REQUEST_TIMEOUT_SECS"),
    ("max_connections", "WETOKEN_MAX_CONNECTIONS"),
    ("metrics_per_account", "WETOKEN_METRICS_PER_ACCOUNT"),
    ("proxy_max_inflight", "WETOKEN_PROXY_MAX_INFLIGHT"),
    ("event_retention_days", "WETOKEN_EVENT_RETENTION_DAYS"),
    ("stale_ticket_secs", "WETOKEN_STALE_TICKET_SECS"),
    ("cache_max_entries", "WETOKEN_CACHE_MAX_ENTRIES"),
    ("max_upstream_rps", "WETOKEN_MAX_UPSTREAM_RPS"),
    ("verify_ttl_secs", "WETOKEN_VERIFY_TTL_SECS"),
    ("max_forced_per_day", "WETOKEN_MAX_FORCED_PER_DAY"),
    ("session_key_ttl_secs", "WETOKEN_SESSION_KEY_TTL_SECS"),
    ("reply_budget_ms", "WETOKEN_REPLY_BUDGET_MS"),
    ("release_test", "WETOKEN_RELEASE_TEST"),
];

#[derive(Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: Option<PathBuf>,
    pub auto_migrate: bool,
    pub master_key: Option<String>,
    /// Base64 keys that may open (never seal) during a rotation.
    pub old_master_keys: Vec<String>,
    pub admin_key: Option<String>,
    pub auth: bool,
    pub allow_open_network: bool,
    pub max_body_bytes: usize,
    pub public_url: Option<String>,
    /// WeChat's API domains, in order (SPEC §16).
    pub upstream_mp: Vec<String>,
    pub upstream_work: Vec<String>,
    /// The HTTP proxy every upstream call goes through.
    pub upstream_proxy: Option<String>,
    pub refresh_ahead_secs: u64,
    pub lease_secs: u64,
    pub cache_ttl_secs: u64,
    pub upstream_timeout_secs: u64,
    pub force_refresh_min_interval_secs: u64,
    pub callback_max_skew_secs: u64,
    pub proxy: bool,
    pub log: String,
    pub request_timeout_secs: u64,
    pub max_connections: u64,
    pub metrics_per_account: bool,
    pub proxy_max_inflight: u64,
    pub event_retention_days: u64,
    pub stale_ticket_secs: u64,
    pub cache_max_entries: u64,
    pub max_upstream_rps: u64,
    pub verify_ttl_secs: u64,
    pub max_forced_per_day: u64,
    pub session_key_ttl_secs: u64,
    pub reply_budget_ms: u64,
    pub release_test: bool,
}

/// Keys and the database URL's password never print (SPEC §12: logs hold
/// no secret).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "***");
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &crate::backend::redact(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("auto_migrate", &self.auto_migrate)
            .field("master_key", &hidden(&self.master_key))
            .field("old_master_keys", &self.old_master_keys.len())
            .field("admin_key", &hidden(&self.admin_key))
            .field("auth", &self.auth)
            .field("allow_open_network", &self.allow_open_network)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_url", &self.public_url)
            .field("upstream_mp", &self.upstream_mp)
            .field("upstream_work", &self.upstream_work)
            .field("upstream_proxy", &self.upstream_proxy.as_deref().map(redact_userinfo))
            .field("refresh_ahead_secs", &self.refresh_ahead_secs)
            .field("lease_secs", &self.lease_secs)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("upstream_timeout_secs", &self.upstream_timeout_secs)
            .field("force_refresh_min_interval_secs", &self.force_refresh_min_interval_secs)
            .field("callback_max_skew_secs", &self.callback_max_skew_secs)
            .field("proxy", &self.proxy)
            .field("log", &self.log)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("metrics_per_account", &self.metrics_per_account)
            .field("proxy_max_inflight", &self.proxy_max_inflight)
            .field("event_retention_days", &self.event_retention_days)
            .field("stale_ticket_secs", &self.stale_ticket_secs)
            .field("cache_max_entries", &self.cache_max_entries)
            .field("max_upstream_rps", &self.max_upstream_rps)
            .field("verify_ttl_secs", &self.verify_ttl_secs)
            .field("max_forced_per_day", &self.max_forced_per_day)
            .field("session_key_ttl_secs", &self.session_key_ttl_secs)
            .field("reply_budget_ms", &self.reply_budget_ms)
            .field("release_test", &self.release_test)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".parse().expect("valid default"),
            database_url: "sqlite://wetoken.db".into(),
            data_dir: None,
            auto_migrate: true,
            master_key: None,
            old_master_keys: Vec::new(),
            admin_key: None,
            auth: true,
            allow_open_network: false,
            max_body_bytes: 1024 * 1024,
            public_url: None,
            upstream_mp: vec!["https://api.weixin.qq.com".into()],
            upstream_work: vec!["https://qyapi.weixin.qq.com".into()],
            upstream_proxy: None,
            refresh_ahead_secs: 600,
            lease_secs: 30,
            cache_ttl_secs: 30,
            upstream_timeout_secs: 10,
            force_refresh_min_interval_secs: 60,
            callback_max_skew_secs: 300,
            proxy: false,
            log: "info".into(),
            request_timeout_secs: 30,
            max_connections: 10_000,
            metrics_per_account: false,
            proxy_max_inflight: 256,
            event_retention_days: 7,
            stale_ticket_secs: 1500,
            cache_max_entries: 100_000,
            max_upstream_rps: 200,
            verify_ttl_secs: 30,
            max_forced_per_day: 10,
            session_key_ttl_secs: 259_200,
            reply_budget_ms: 4000,
            release_test: true,
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(format!("{key} must be true/false or on/off (got {v:?})")),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{key} must be a whole number (got {v:?})"))
}

fn parse_url(key: &str, v: &str) -> Result<String, String> {
    let v = v.trim().trim_end_matches('/');
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_owned())
    } else {
        Err(format!("{key} must be an http:// or https:// URL (got {v:?})"))
    }
}

/// A comma-separated list of base URLs, at least one (SPEC §16).
fn parse_urls(key: &str, v: &str) -> Result<Vec<String>, String> {
    let urls = v
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| parse_url(key, u))
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(format!("{key} must name at least one http:// or https:// URL"));
    }
    Ok(urls)
}

/// A URL with any `user:password@` hidden, for logs.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

impl Settings {
    /// Loads defaults, then the file (if any), then the environment.
    pub fn load(config: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = Settings::default();
        if let Some(path) = config {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
            for (k, v) in table {
                let v = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(format!("{}: {k} cannot be {}", path.display(), other.type_str()));
                    }
                };
                s.set(&k, &v).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        for (key, env_name) in KEYS {
            if let Some(v) = env(env_name) {
                s.set(key, &v).map_err(|e| format!("{env_name}: {e}"))?;
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// Sets one setting from its text form.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "listen" => {
                self.listen = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("listen must be an address like 127.0.0.1:8080 (got {v:?})"))?
            }
            "database_url" => self.database_url = non_empty(v).ok_or("database_url must not be empty")?,
            "data_dir" => self.data_dir = non_empty(v).map(PathBuf::from),
            "auto_migrate" => self.auto_migrate = parse_bool(key, v)?,
            "master_key" => self.master_key = non_empty(v),
            "old_master_keys" => {
                self.old_master_keys = v
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect();
                for k in &self.old_master_keys {
                    wetoken_core::secret::MasterKey::from_base64(k)
                        .map_err(|e| format!("WETOKEN_OLD_MASTER_KEYS: {e}"))?;
                }
            }
            "admin_key" => self.admin_key = non_empty(v),
            "auth" => self.auth = parse_bool(key, v)?,
            "allow_open_network" => self.allow_open_network = parse_bool(key, v)?,
            "max_body_bytes" => self.max_body_bytes = parse_num(key, v)?,
            "public_url" => self.public_url = Some(parse_url(key, v)?),
            "upstream_mp" => self.upstream_mp = parse_urls(key, v)?,
            "upstream_work" => self.upstream_work = parse_urls(key, v)?,
            "upstream_proxy" => {
                self.upstream_proxy = match non_empty(v) {
                    Some(v) => Some(parse_url(key, &v)?),
                    None => None,
                }
            }
            "refresh_ahead_secs" => self.refresh_ahead_secs = parse_num(key, v)?,
            "lease_secs" => self.lease_secs = parse_num(key, v)?,
            "cache_ttl_secs" => self.cache_ttl_secs = parse_num(key, v)?,
            "upstream_timeout_secs" => self.upstream_timeout_secs = parse_num(key, v)?,
            "force_refresh_min_interval_secs" => self.force_refresh_min_interval_secs = parse_num(key, v)?,
            "callback_max_skew_secs" => self.callback_max_skew_secs = parse_num(key, v)?,
            "proxy" => self.proxy = parse_bool(key, v)?,
            "log" => self.log = non_empty(v).ok_or("log must not be empty")?,
            "request_timeout_secs" => self.request_timeout_secs = parse_num(key, v)?,
            "max_connections" => self.max_connections = parse_num(key, v)?,
            "metrics_per_account" => self.metrics_per_account = parse_bool(key, v)?,
            "proxy_max_inflight" => self.proxy_max_inflight = parse_num(key, v)?,
            "event_retention_days" => self.event_retention_days = parse_num(key, v)?,
            "stale_ticket_secs" => self.stale_ticket_secs = parse_num(key, v)?,
            "cache_max_entries" => self.cache_max_entries = parse_num(key, v)?,
            "max_upstream_rps" => self.max_upstream_rps = parse_num(key, v)?,
            "verify_ttl_secs" => self.verify_ttl_secs = parse_num(key, v)?,
            "max_forced_per_day" => self.max_forced_per_day = parse_num(key, v)?,
            "session_key_ttl_secs" => self.session_key_ttl_secs = parse_num(key, v)?,
            "reply_budget_ms" => self.reply_budget_ms = parse_num(key, v)?,
            "release_test" => self.release_test = parse_bool(key, v)?,
            _ => return Err(format!("unknown setting {key:?}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=299).contains(&self.cache_ttl_secs) {
            return Err(format!(
                "WETOKEN_CACHE_TTL_SECS must be 1 to 299, below WeChat's 300 s grace (got {})",
                self.cache_ttl_secs
            ));
        }
        if self.lease_secs == 0 || self.upstream_timeout_secs == 0 {
            return Err("WETOKEN_LEASE_SECS and WETOKEN_UPSTREAM_TIMEOUT_SECS must be at least 1".into());
        }
        if self.max_body_bytes == 0 {
            return Err("WETOKEN_MAX_BODY_BYTES must be at least 1".into());
        }
        if self.request_timeout_secs == 0 || self.max_connections == 0 || self.proxy_max_inflight == 0 {
            return Err(
                "WETOKEN_REQUEST_TIMEOUT_SECS, WETOKEN_MAX_CONNECTIONS and WETOKEN_PROXY_MAX_INFLIGHT must be at least 1"
                    .into(),
            );
        }
        if !(1..=3650).contains(&self.event_retention_days) {
            return Err(format!(
                "WETOKEN_EVENT_RETENTION_DAYS must be 1 to 3650, at least the 24 h of webhook retries (got {})",
                self.event_retention_days
            ));
        }
        if self.cache_max_entries == 0 || self.max_upstream_rps == 0 {
            return Err("WETOKEN_CACHE_MAX_ENTRIES and WETOKEN_MAX_UPSTREAM_RPS must be at least 1".into());
        }
        if self.max_forced_per_day > 20 {
            return Err(format!(
                "WETOKEN_MAX_FORCED_PER_DAY must be at most 20, WeChat's own daily limit (got {})",
                self.max_forced_per_day
            ));
        }
        if !(100..=4500).contains(&self.reply_budget_ms) {
            return Err(format!(
                "WETOKEN_REPLY_BUDGET_MS must be 100 to 4500, inside WeChat's 5 s wait for an answer (got {})",
                self.reply_budget_ms
            ));
        }
        if self.stale_ticket_secs < 60 {
            return Err(format!(
                "WETOKEN_STALE_TICKET_SECS must be at least 60: WeChat pushes a ticket every 10 minutes (got {})",
                self.stale_ticket_secs
            ));
        }
        Ok(())
    }

    /// SPEC §2 fencing: a lease must outlast the upstream calls it covers,
    /// or a second instance could fetch while the first still waits.
    pub fn check_lease(&self) -> Result<(), String> {
        let attempts = u64::from(wetoken_core::service::ATTEMPTS_PER_LEASE);
        if self.lease_secs <= self.upstream_timeout_secs.saturating_mul(attempts) {
            return Err(format!(
                "WETOKEN_LEASE_SECS ({}) must be greater than WETOKEN_UPSTREAM_TIMEOUT_SECS ({}) × {attempts}, \
                 the upstream calls one lease covers",
                self.lease_secs, self.upstream_timeout_secs
            ));
        }
        Ok(())
    }

    /// Where generated keys live: the setting, else the SQLite file's folder,
    /// else the working directory.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        crate::backend::sqlite_file(&self.database_url)
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            refresh_ahead: Duration::from_secs(self.refresh_ahead_secs),
            lease: Duration::from_secs(self.lease_secs),
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            upstream_timeout: Duration::from_secs(self.upstream_timeout_secs),
            force_refresh_min_interval: Duration::from_secs(self.force_refresh_min_interval_secs),
            stale_ticket: Duration::from_secs(self.stale_ticket_secs),
            event_retention: Duration::from_secs(self.event_retention_days * 86_400),
            cache_max_entries: usize::try_from(self.cache_max_entries).unwrap_or(usize::MAX),
            max_upstream_rps: u32::try_from(self.max_upstream_rps).unwrap_or(u32::MAX),
            verify_ttl: Duration::from_secs(self.verify_ttl_secs),
            max_forced_per_day: u32::try_from(self.max_forced_per_day).unwrap_or(u32::MAX),
            session_key_ttl: Duration::from_secs(self.session_key_ttl_secs),
            reply_budget: Duration::from_millis(self.reply_budget_ms),
            release_test: self.release_test,
            ..ServiceConfig::default()
        }
    }

    pub fn upstream_config(&self) -> UpstreamConfig {
        UpstreamConfig {
            mp: self.upstream_mp.clone(),
            work: self.upstream_work.clone(),
            timeout: Duration::from_secs(self.upstream_timeout_secs),
            proxy: self.upstream_proxy.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
