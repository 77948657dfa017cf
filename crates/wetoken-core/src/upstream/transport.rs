//! The one HTTP transport to WeChat and WeCom, shared by the engine's own
//! calls ([`super::Upstream`]) and by the relay of business calls (the HTTP
//! layer's proxy): one client — timeouts, no redirects (WeChat's APIs never
//! redirect; a redirect is an error, never followed with a token in the
//! query), wetoken's User-Agent unless the caller sends its own — and the
//! one rule of which API serves an account kind. Where WeChat's hosts and
//! the way out to them are configured, they are configured here.

use crate::domain::AccountKind;

use super::{UpstreamConfig, UpstreamError, install_crypto_provider};

#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    cfg: UpstreamConfig,
}

impl Transport {
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamError> {
        install_crypto_provider();
        let mp_base = cfg.mp_base.trim_end_matches('/').to_owned();
        let work_base = cfg.work_base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wetoken/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Transport(e.to_string()))?;
        Ok(Transport {
            http,
            cfg: UpstreamConfig {
                mp_base,
                work_base,
                ..cfg
            },
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The client every call to WeChat goes through.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// WeChat's API (`WETOKEN_UPSTREAM_MP`) for Official Accounts, Mini
    /// Programs and the Open Platform; WeCom's (`WETOKEN_UPSTREAM_WORK`) for
    /// every WeCom kind.
    pub fn base_for(&self, kind: AccountKind) -> &str {
        match kind {
            AccountKind::Mp | AccountKind::Component | AccountKind::Authorizer => &self.cfg.mp_base,
            AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider => &self.cfg.work_base,
        }
    }

    /// A transport error as an [`UpstreamError`], without reqwest's URL (a
    /// query may carry a secret or a token).
    pub fn error(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.cfg.timeout)
        } else {
            UpstreamError::Transport(e.without_url().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_api_and_bases_lose_a_trailing_slash() {
        let t = Transport::new(UpstreamConfig {
            mp_base: "http://mp.example/".into(),
            work_base: "http://work.example".into(),
            ..UpstreamConfig::default()
        })
        .unwrap();
        for k in AccountKind::ALL {
            let wecom = matches!(
                k,
                AccountKind::Work | AccountKind::Suite | AccountKind::Corp | AccountKind::Provider
            );
            let want = if wecom {
                "http://work.example"
            } else {
                "http://mp.example"
            };
            assert_eq!(t.base_for(k), want, "{k:?}");
        }
    }
}
