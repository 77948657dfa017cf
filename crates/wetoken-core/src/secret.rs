//! Secrets in memory and at rest.
//!
//! [`Secret`] never prints its content. [`MasterKey`] encrypts account secrets,
//! refresh tokens and credential values with AES-256-GCM before they reach a
//! store, so a database dump holds no usable secret.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// A string that must not be logged or returned.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key must be 32 bytes encoded as base64 ({0})")]
    Malformed(String),
    #[error("cannot decrypt a stored value: wrong master key or corrupted data")]
    Decrypt,
}

/// The key that encrypts secrets at rest (`WETOKEN_MASTER_KEY`).
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

const SEALED_PREFIX: &str = "v1:";

/// A value sealed by a [`MasterKey`]: what stores hold instead of a secret
/// or a credential value. Opaque to everything but the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// The stored text, as a backend read it back.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Sealed(s.into())
    }
    /// The text to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        MasterKey(Aes256Gcm::new(bytes.into()))
    }

    /// Parses the base64 form (as in `WETOKEN_MASTER_KEY` or `master.key`).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let raw = STANDARD
            .decode(s.trim())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed(format!("{} bytes", raw.len())))?;
        Ok(Self::from_bytes(&arr))
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_base64() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        STANDARD.encode(k)
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag). A fresh nonce every time, so
    /// equal plaintexts do not give equal ciphertexts.
    pub fn seal(&self, plaintext: &str) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Sealed(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &Sealed) -> Result<String, KeyError> {
        let b64 = sealed.0.strip_prefix(SEALED_PREFIX).ok_or(KeyError::Decrypt)?;
        let raw = STANDARD.decode(b64).map_err(|_| KeyError::Decrypt)?;
        if raw.len() < 12 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .0
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| KeyError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| KeyError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_differ() {
        let k = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let a = k.seal("secret-value");
        let b = k.seal("secret-value");
        assert_ne!(a, b);
        assert!(!a.as_str().contains("secret-value"));
        assert_eq!(k.open(&a).unwrap(), "secret-value");
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert!(other.open(&a).is_err());
        assert!(k.open(&Sealed::from_stored("v1:AAAA")).is_err());
        assert!(k.open(&Sealed::from_stored("plain")).is_err());
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(MasterKey::from_base64("short").is_err());
        assert!(MasterKey::from_base64("AAAA").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
    }
}
