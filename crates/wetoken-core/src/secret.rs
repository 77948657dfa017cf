//! Secrets in memory and at rest.
//!
//! [`Secret`] never prints its content. [`MasterKey`] encrypts account secrets,
//! refresh tokens and credential values with AES-256-GCM before they reach a
//! store, so a database dump holds no usable secret.

use std::fmt;

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
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
    #[error("cannot decrypt a stored value: wrong master key, a value moved to another row, or corrupted data")]
    Decrypt,
    #[error(
        "a stored value is sealed with master key {0}, which is neither WETOKEN_MASTER_KEY nor in WETOKEN_OLD_MASTER_KEYS"
    )]
    UnknownKey(String),
}

/// One AES-256-GCM key, its id, and a MAC key derived from it.
#[derive(Clone)]
struct Key {
    id: String,
    aead: Aes256Gcm,
    /// SHA-256 of a label and the key: authenticates what wetoken hands out
    /// to come back (list cursors), never used to seal.
    mac: [u8; 32],
}

impl Key {
    fn from_bytes(bytes: &[u8; 32]) -> Self {
        // The id names the key without revealing it: 4 bytes of its SHA-256.
        let digest = Sha256::digest(bytes);
        let mut mac = Sha256::new();
        mac.update(b"wetoken mac key\0");
        mac.update(bytes);
        Key {
            id: hex::encode(&digest[..4]),
            aead: Aes256Gcm::new(bytes.into()),
            mac: mac.finalize().into(),
        }
    }

    fn tag(&self, message: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac).expect("HMAC takes any key length");
        Mac::update(&mut m, message.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..12])
    }
}

/// The keys that seal secrets at rest: the current one
/// (`WETOKEN_MASTER_KEY`), which seals, and old ones
/// (`WETOKEN_OLD_MASTER_KEYS`), which may still open during a rotation.
#[derive(Clone)]
pub struct MasterKey(Arc<Ring>);

struct Ring {
    current: Key,
    old: Vec<Key>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

/// Sealed before key ids and row binding: opened by any key of the ring,
/// without associated data, and re-sealed (`wetoken rekey`, or at start-up
/// the first time a database is checked).
const LEGACY_PREFIX: &str = "v1:";
/// `v2:{key id}:{base64(nonce ‖ ciphertext ‖ tag)}`, the associated data
/// binding it to its row.
const SEALED_PREFIX: &str = "v2:";
/// What a key check seals: opening it proves the key is the one recorded.
const CHECK_PLAINTEXT: &str = "wetoken master key check";
const CHECK_BINDING: &str = "wetoken:key-check";

/// A value sealed by a [`MasterKey`]: what stores hold instead of a secret
/// or a credential value. Opaque to everything but the key that made it,
/// and bound to the row it was sealed for.
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
    /// The id of the key that sealed it; None for a legacy (v1) value.
    pub fn key_id(&self) -> Option<&str> {
        self.0.strip_prefix(SEALED_PREFIX)?.split_once(':').map(|(id, _)| id)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        MasterKey(Arc::new(Ring {
            current: Key::from_bytes(bytes),
            old: Vec::new(),
        }))
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

    /// This key, able also to open what `old` keys sealed.
    pub fn with_old(self, old: &[MasterKey]) -> Self {
        let mut ring = Ring {
            current: self.0.current.clone(),
            old: Vec::new(),
        };
        for k in old.iter().flat_map(|k| std::iter::once(&k.0.current).chain(&k.0.old)) {
            if k.id != ring.current.id && !ring.old.iter().any(|o| o.id == k.id) {
                ring.old.push(k.clone());
            }
        }
        MasterKey(Arc::new(ring))
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_base64() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        STANDARD.encode(k)
    }

    /// A tag of `message` by the current key (HMAC-SHA256, 96 bits, hex),
    /// for values wetoken hands out and must recognise when they come back.
    pub fn tag(&self, message: &str) -> String {
        self.0.current.tag(message)
    }

    /// Whether `tag` is [`MasterKey::tag`] of `message` by a key of the ring
    /// (compared in constant time).
    pub fn tag_ok(&self, message: &str, tag: &str) -> bool {
        std::iter::once(&self.0.current)
            .chain(&self.0.old)
            .any(|k| ct_eq(k.tag(message).as_bytes(), tag.as_bytes()))
    }

    /// The id of the key that seals.
    pub fn id(&self) -> &str {
        &self.0.current.id
    }

    /// Whether the ring holds the key `id`.
    pub fn has(&self, id: &str) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: &str) -> Option<&Key> {
        std::iter::once(&self.0.current).chain(&self.0.old).find(|k| k.id == id)
    }

    /// `v2:{id}:` + base64(nonce ‖ ciphertext ‖ tag), with `binding` (the
    /// row and field it is for) as associated data: a value copied to
    /// another row does not open. A fresh nonce every time, so equal
    /// plaintexts do not give equal ciphertexts.
    pub fn seal(&self, plaintext: &str, binding: &str) -> Sealed {
        let key = &self.0.current;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = key
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: binding.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Sealed(format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(out)))
    }

    /// The plaintext of a value sealed for `binding`, by the key that
    /// sealed it (current or old). A legacy v1 value opens with any key of
    /// the ring, without binding.
    pub fn open(&self, sealed: &Sealed, binding: &str) -> Result<String, KeyError> {
        if let Some(b64) = sealed.0.strip_prefix(LEGACY_PREFIX) {
            return std::iter::once(&self.0.current)
                .chain(&self.0.old)
                .find_map(|k| decrypt(&k.aead, b64, b"").ok())
                .ok_or(KeyError::Decrypt);
        }
        let rest = sealed.0.strip_prefix(SEALED_PREFIX).ok_or(KeyError::Decrypt)?;
        let (id, b64) = rest.split_once(':').ok_or(KeyError::Decrypt)?;
        let key = self.key(id).ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?;
        decrypt(&key.aead, b64, binding.as_bytes())
    }

    /// The legacy v1 format (no key id, no binding), as databases from
    /// before key ids hold it: for tests of their re-sealing only.
    #[doc(hidden)]
    pub fn seal_legacy(&self, plaintext: &str) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .current
            .aead
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed(format!(
            "{LEGACY_PREFIX}{}",
            STANDARD.encode([&nonce[..], &ct].concat())
        ))
    }

    /// Whether `sealed` is already what [`MasterKey::seal`] would make now:
    /// sealed by the current key in the current format.
    pub fn is_current(&self, sealed: &Sealed) -> bool {
        sealed.key_id() == Some(self.id())
    }

    /// The check value the database records for the current key.
    pub fn check_value(&self) -> Sealed {
        self.seal(CHECK_PLAINTEXT, CHECK_BINDING)
    }

    /// Whether a recorded check value opens with this ring, proving the
    /// key it names is here.
    pub fn opens_check(&self, check: &Sealed) -> bool {
        self.open(check, CHECK_BINDING).is_ok_and(|p| p == CHECK_PLAINTEXT)
    }
}

fn decrypt(aead: &Aes256Gcm, b64: &str, aad: &[u8]) -> Result<String, KeyError> {
    let raw = STANDARD.decode(b64).map_err(|_| KeyError::Decrypt)?;
    if raw.len() < 12 + 16 {
        return Err(KeyError::Decrypt);
    }
    let (nonce, ct) = raw.split_at(12);
    let pt = aead
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| KeyError::Decrypt)?;
    String::from_utf8(pt).map_err(|_| KeyError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_differ() {
        let k = key();
        let a = k.seal("secret-value", "mp:wx1#secrets");
        let b = k.seal("secret-value", "mp:wx1#secrets");
        assert_ne!(a, b);
        assert!(!a.as_str().contains("secret-value"));
        assert_eq!(a.key_id(), Some(k.id()));
        assert!(a.as_str().starts_with(&format!("v2:{}:", k.id())));
        assert_eq!(k.open(&a, "mp:wx1#secrets").unwrap(), "secret-value");
        let other = key();
        assert!(matches!(other.open(&a, "mp:wx1#secrets"), Err(KeyError::UnknownKey(id)) if id == k.id()));
        assert!(k.open(&Sealed::from_stored("v1:AAAA"), "x").is_err());
        assert!(k.open(&Sealed::from_stored("plain"), "x").is_err());
        assert!(
            k.open(&Sealed::from_stored(format!("v2:{}:AAAA", k.id())), "x")
                .is_err()
        );
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let k = key();
        let a = k.seal("token", "mp:wx1#access_token");
        assert!(matches!(k.open(&a, "mp:wx2#access_token"), Err(KeyError::Decrypt)));
        assert!(k.open(&a, "mp:wx1#jsapi_ticket").is_err());
    }

    #[test]
    fn old_keys_open_and_the_current_one_seals() {
        let (old, new) = (key(), key());
        let sealed_by_old = old.seal("v", "b");
        let ring = new.clone().with_old(std::slice::from_ref(&old));
        assert_eq!(ring.id(), new.id());
        assert_eq!(ring.open(&sealed_by_old, "b").unwrap(), "v");
        assert!(!ring.is_current(&sealed_by_old));
        assert!(ring.is_current(&ring.seal("v", "b")));
        assert!(
            new.open(&sealed_by_old, "b").is_err(),
            "without the old key it does not open"
        );
        assert!(ring.has(old.id()) && ring.has(new.id()) && !new.has(old.id()));
    }

    #[test]
    fn legacy_values_open_with_any_key_of_the_ring() {
        // v1: nonce ‖ ciphertext, no associated data, no key id.
        let old = key();
        let legacy = old.seal_legacy("legacy");
        assert!(legacy.as_str().starts_with("v1:"));
        assert_eq!(legacy.key_id(), None);
        assert_eq!(old.open(&legacy, "anything").unwrap(), "legacy");
        let ring = key().with_old(&[old]);
        assert_eq!(ring.open(&legacy, "anything").unwrap(), "legacy");
        assert!(key().open(&legacy, "anything").is_err());
    }

    #[test]
    fn a_check_value_proves_the_key() {
        let k = key();
        let check = k.check_value();
        assert!(k.opens_check(&check));
        assert!(!key().opens_check(&check));
        assert!(key().with_old(std::slice::from_ref(&k)).opens_check(&check));
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
