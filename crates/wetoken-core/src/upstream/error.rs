//! How a WeChat call fails, and which failures mean the token it carried
//! was rejected.

use std::time::Duration;

/// The errcodes by which WeChat and WeCom say the token a call carried is
/// not (or no longer) valid: rotated, expired, malformed. The one list:
/// every call made with a token (a ticket fetch, the proxy) answers them
/// with one compare-and-refresh and one retry.
pub const TOKEN_REJECTED: &[i64] = &[40001, 40014, 40082, 42001, 42009];

/// The `rid` a WeChat error message names (`… rid: 6612-abc`), if it is
/// one: at most 64 letters, digits and `-` (what `openapi/rid/get` takes).
pub fn rid_in(errmsg: &str) -> Option<String> {
    let rid = errmsg.rsplit_once("rid: ")?.1.trim();
    (!rid.is_empty() && rid.len() <= 64 && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| rid.to_owned())
}

/// Whether `errcode` says the token used was rejected ([`TOKEN_REJECTED`]).
pub fn rejects_token(errcode: i64) -> bool {
    TOKEN_REJECTED.contains(&errcode)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("WeChat did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach WeChat: {0}")]
    Transport(String),
    #[error("WeChat answered HTTP {0}")]
    Status(u16),
    #[error("WeChat answered something unreadable: {0}")]
    Malformed(String),
}

impl UpstreamError {
    /// Transient: network, timeout, HTTP 5xx, errcode -1 (system busy) and
    /// the minute/concurrency limits. Worth retrying with backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::WeChat { errcode, .. } => matches!(errcode, -1 | 45011 | 45033),
            UpstreamError::Timeout(_) | UpstreamError::Transport(_) => true,
            UpstreamError::Status(s) => *s >= 500 || *s == 429,
            UpstreamError::Malformed(_) => true,
        }
    }

    /// The token used was rejected (rotated, expired, malformed): refresh it
    /// by compare-and-refresh and try once more.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, UpstreamError::WeChat { errcode, .. } if rejects_token(*errcode))
    }

    /// The daily quota is spent (45009).
    pub fn is_quota(&self) -> bool {
        matches!(self, UpstreamError::WeChat { errcode: 45009, .. })
    }

    /// The errcode to record; transport failures use -1 like WeChat's own
    /// "system busy".
    pub fn errcode(&self) -> i64 {
        match self {
            UpstreamError::WeChat { errcode, .. } => *errcode,
            _ => -1,
        }
    }

    /// The `rid` WeChat's answer named, if any ([`rid_in`]).
    pub fn rid(&self) -> Option<String> {
        match self {
            UpstreamError::WeChat { errmsg, .. } => rid_in(errmsg),
            _ => None,
        }
    }

    pub fn errmsg(&self) -> String {
        match self {
            UpstreamError::WeChat { errmsg, .. } => errmsg.clone(),
            other => other.to_string(),
        }
    }
}
