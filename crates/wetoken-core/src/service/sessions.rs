//! Console sessions (SPEC §11). Signing in with the admin key starts a
//! session: a random token the browser keeps in a cookie, of which the
//! database keeps only the SHA-256 and the end (12 h after sign-in), so a
//! session works on every instance and signing out ends it on all of them.
//! Every form carries a CSRF token derived from the session token (HMAC),
//! which a page on another site cannot read.
//!
//! A one-time sign-in link (`wetoken serve --sandbox` prints one) is a
//! second kind of row in the same table: redeeming it deletes it, and only
//! the one delete that removes the row starts a session, cluster-wide.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Console, Result};
use crate::clock::to_millis;
use crate::secret::ct_eq;

/// How long a session lasts after sign-in.
pub const SESSION_SECS: i64 = 12 * 3600;
/// How long a one-time sign-in link stays usable.
pub const LINK_SECS: i64 = 12 * 3600;

/// A session just started: its token (for the cookie, never stored) and
/// its length in seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub max_age_secs: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("token", &"***").finish()
    }
}

fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(b))
}

/// A presented token of the given prefix, or None when it cannot be one
/// (bounded length, URL-safe base64): no database read for garbage.
fn well_formed<'a>(token: &'a str, prefix: &str) -> Option<&'a str> {
    let body = token.strip_prefix(prefix)?;
    (body.len() == 43
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(token)
}

/// The stored form of a token: SHA-256 in hex, the kind named inside so a
/// link's row never opens as a session.
fn row_hash(kind: &str, token: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

const SESSION_PREFIX: &str = "wts_";
const LINK_PREFIX: &str = "wtl_";

/// The CSRF token of a session: HMAC-SHA256 keyed by the session token.
pub fn csrf_token(session_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"wetoken console form");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a form's CSRF token is its session's, in constant time.
pub fn csrf_ok(session_token: &str, presented: &str) -> bool {
    ct_eq(csrf_token(session_token).as_bytes(), presented.as_bytes())
}

impl Console {
    /// Starts a console session (the caller has checked the admin key).
    /// Sessions that ended are purged on the way (an index range).
    pub async fn start_session(&self) -> Result<Session> {
        let now = to_millis(self.engine.now());
        let _ = self.sessions.purge_sessions(now).await?;
        let token = random_token(SESSION_PREFIX);
        self.engine
            .inner
            .store
            .insert_session(&row_hash("session", &token), now, now + SESSION_SECS * 1000)
            .await?;
        Ok(Session {
            token,
            max_age_secs: SESSION_SECS,
        })
    }

    /// Whether a session token names a session that has not ended.
    pub async fn session_alive(&self, token: &str) -> Result<bool> {
        let Some(token) = well_formed(token, SESSION_PREFIX) else {
            return Ok(false);
        };
        let now = to_millis(self.engine.now());
        Ok(self
            .engine
            .inner
            .store
            .session_expiry(&row_hash("session", token))
            .await?
            .is_some_and(|end| end > now))
    }

    /// Ends a session (sign-out), on every instance at once.
    pub async fn end_session(&self, token: &str) -> Result<()> {
        if let Some(token) = well_formed(token, SESSION_PREFIX) {
            self.sessions.delete_session(&row_hash("session", token)).await?;
        }
        Ok(())
    }

    /// A one-time sign-in link's token: whoever redeems it first, within
    /// [`LINK_SECS`], gets a session; nobody after.
    pub async fn issue_sign_in_link(&self) -> Result<String> {
        let now = to_millis(self.engine.now());
        let token = random_token(LINK_PREFIX);
        self.engine
            .inner
            .store
            .insert_session(&row_hash("link", &token), now, now + LINK_SECS * 1000)
            .await?;
        Ok(token)
    }

    /// Redeems a one-time sign-in link: a session if the link was issued,
    /// unused and unexpired; None otherwise.
    pub async fn redeem_sign_in_link(&self, token: &str) -> Result<Option<Session>> {
        let Some(token) = well_formed(token, LINK_PREFIX) else {
            return Ok(None);
        };
        let hash = row_hash("link", token);
        let now = to_millis(self.engine.now());
        let alive = self
            .engine
            .inner
            .store
            .session_expiry(&hash)
            .await?
            .is_some_and(|end| end > now);
        // The delete decides: of two instances redeeming at once, one wins.
        if alive && self.sessions.delete_session(&hash).await? {
            Ok(Some(self.start_session().await?))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_for_shape_before_any_read() {
        let t = random_token(SESSION_PREFIX);
        assert_eq!(well_formed(&t, SESSION_PREFIX), Some(t.as_str()));
        assert_eq!(well_formed(&t, LINK_PREFIX), None, "a session token is no link");
        assert_eq!(well_formed("wts_short", SESSION_PREFIX), None);
        assert_eq!(well_formed(&format!("{t}x"), SESSION_PREFIX), None);
        assert_eq!(well_formed(&t.replace('_', "%"), SESSION_PREFIX), None);
        assert_ne!(row_hash("session", &t), row_hash("link", &t), "kinds do not mix");
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let (a, b) = (random_token(SESSION_PREFIX), random_token(SESSION_PREFIX));
        assert!(csrf_ok(&a, &csrf_token(&a)));
        assert!(!csrf_ok(&a, &csrf_token(&b)));
        assert!(!csrf_ok(&a, ""));
        assert!(!csrf_ok(&a, &csrf_token(&a)[..63]));
        assert_eq!(csrf_token(&a).len(), 64);
    }
}
