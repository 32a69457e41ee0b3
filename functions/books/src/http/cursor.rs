//! Opaque, tamper-evident list cursors: the last key of a page and the query it belongs to,
//! signed with HMAC-SHA256 so a client can neither forge nor move a cursor between queries.
//!
//! A cursor reads `<key id>.<payload>.<tag>`: the id names the key that signed it, so that
//! during a rotation the previous key still verifies the cursors it signed while the new one
//! signs ([`CursorKeys`]). The tag covers the id and the payload.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::ViewKey;

type HmacSha256 = Hmac<Sha256>;

/// Minimum secret length: HMAC-SHA256 wants at least 256 bits of key.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a cursor was refused, worded to follow the parameter name (`cursor is not …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CursorError {
    #[error("is not a cursor issued by this API")]
    Invalid,
    #[error("belongs to a query with other filters")]
    OtherQuery,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    q: String,
    #[serde(flatten)]
    key: ViewKey,
}

/// A secret too short to be a cursor key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor key must have at least {MIN_KEY_BYTES} bytes, found {found}")]
pub struct KeyTooShort {
    /// How many bytes the secret had.
    pub found: usize,
}

/// One signing key and its id. Deliberately not `Debug`: it must never reach a log.
#[derive(Clone)]
pub struct CursorKey {
    id: String,
    secret: Vec<u8>,
}

impl CursorKey {
    /// A key from a secret of at least [`MIN_KEY_BYTES`] bytes. Its id is derived from the
    /// secret (8 characters of a domain-separated SHA-256: 48 bits, which tell two keys apart
    /// and say nothing usable about a secret of 256 bits or more), so every environment
    /// names the same key the same way without storing an id beside it.
    pub fn new(secret: &[u8]) -> Result<Self, KeyTooShort> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyTooShort { found: secret.len() });
        }
        let digest = Sha256::new().chain_update(b"books cursor key id\0").chain_update(secret).finalize();
        Ok(Self { id: URL_SAFE_NO_PAD.encode(&digest[..6]), secret: secret.to_vec() })
    }

    /// The key's id, as cursors carry it: safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn tag(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(self.id.as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac
    }
}

/// The keys of list cursors at one moment: the current key signs, the current and the previous
/// one (during a rotation) verify. An environment holds them in a
/// [`CursorKeyring`](super::CursorKeyring), which reads them again when they may have changed.
#[derive(Clone)]
pub struct CursorKeys {
    current: CursorKey,
    previous: Option<CursorKey>,
}

impl CursorKeys {
    /// The keys of a store holding `current` and, while a rotation is under way, `previous`.
    pub fn new(current: CursorKey, previous: Option<CursorKey>) -> Self {
        Self { current, previous }
    }

    /// One key only (tests, benchmarks, a store that has never rotated).
    pub fn single(current: CursorKey) -> Self {
        Self::new(current, None)
    }

    /// The ids of the keys that verify, current first (for the start-up log line).
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current).chain(&self.previous).map(CursorKey::id).collect()
    }

    /// Whether the key a cursor names is one of these (whatever the rest of the cursor says).
    pub(crate) fn knows(&self, cursor: &str) -> bool {
        let id = cursor.split('.').next().unwrap_or_default();
        std::iter::once(&self.current).chain(&self.previous).any(|key| key.id == id)
    }

    pub(crate) fn encode(&self, query: &str, key: &ViewKey) -> String {
        let payload = serde_json::to_vec(&Payload { q: query.to_owned(), key: key.clone() }).unwrap_or_default();
        let tag = self.current.tag(&payload).finalize().into_bytes();
        format!("{}.{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
    }

    pub(crate) fn decode(&self, query: &str, cursor: &str) -> Result<ViewKey, CursorError> {
        let mut parts = cursor.splitn(3, '.');
        let (Some(id), Some(payload), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CursorError::Invalid);
        };
        let signer = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
            .ok_or(CursorError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| CursorError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CursorError::Invalid)?;
        signer.tag(&payload).verify_slice(&tag).map_err(|_| CursorError::Invalid)?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| CursorError::Invalid)?;
        if payload.q != query {
            return Err(CursorError::OtherQuery);
        }
        Ok(payload.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> CursorKey {
        CursorKey::new(&[byte; 32]).unwrap()
    }

    fn key() -> CursorKeys {
        CursorKeys::single(secret(7))
    }

    fn view_key() -> ViewKey {
        ViewKey { pk: "BOOK#01J".into(), sk: "BOOK".into(), book_id: "01J".into() }
    }

    #[test]
    fn a_cursor_round_trips() {
        let cursor = key().encode(r#"["",""]"#, &view_key());
        assert_eq!(key().decode(r#"["",""]"#, &cursor), Ok(view_key()));
        assert!(cursor.starts_with(&format!("{}.", secret(7).id())), "{cursor}");
    }

    #[test]
    fn a_tampered_cursor_is_rejected() {
        let cursor = key().encode("q", &view_key());
        let (id, rest) = cursor.split_once('.').unwrap();
        let (payload, tag) = rest.split_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(payload).unwrap();
        forged[10] ^= 1;
        let forged = format!("{id}.{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(key().decode("q", &forged), Err(CursorError::Invalid));
        assert_eq!(key().decode("q", "garbage"), Err(CursorError::Invalid));
        assert_eq!(key().decode("q", &format!("{id}.{payload}.")), Err(CursorError::Invalid));
        assert_eq!(key().decode("q", &format!("{payload}.{tag}")), Err(CursorError::Invalid), "the id is required");
    }

    #[test]
    fn a_cursor_signed_with_another_key_is_rejected() {
        let other = CursorKeys::single(secret(8));
        assert_eq!(key().decode("q", &other.encode("q", &view_key())), Err(CursorError::Invalid));
    }

    #[test]
    fn the_id_is_covered_by_the_tag() {
        // Another key's id in front of a cursor the current key signed: refused, even though
        // both keys verify.
        let keys = CursorKeys::new(secret(7), Some(secret(8)));
        let cursor = keys.encode("q", &view_key());
        let moved = cursor.replacen(secret(7).id(), secret(8).id(), 1);
        assert_eq!(keys.decode("q", &moved), Err(CursorError::Invalid));
    }

    #[test]
    fn during_a_rotation_the_previous_key_verifies_and_the_new_one_signs() {
        let before = CursorKeys::single(secret(7));
        let during = CursorKeys::new(secret(8), Some(secret(7)));
        let after = CursorKeys::new(secret(9), Some(secret(8)));
        let old = before.encode("q", &view_key());
        assert_eq!(during.decode("q", &old), Ok(view_key()), "issued before the rotation");
        let new = during.encode("q", &view_key());
        assert!(new.starts_with(secret(8).id()));
        assert_eq!(before.decode("q", &new), Err(CursorError::Invalid), "these keys alone do not know it");
        assert!(!before.knows(&new) && during.knows(&new) && during.knows(&old));
        assert_eq!(after.decode("q", &new), Ok(view_key()));
        assert_eq!(after.decode("q", &old), Err(CursorError::Invalid), "two rotations later the key is gone");
        assert_eq!(during.ids(), vec![secret(8).id(), secret(7).id()]);
    }

    #[test]
    fn ids_tell_keys_apart_and_hold_no_dot() {
        let ids: std::collections::HashSet<String> = (0..=255u8).map(|b| secret(b).id().to_owned()).collect();
        assert_eq!(ids.len(), 256);
        assert!(ids.iter().all(|id| id.len() == 8 && !id.contains('.')));
    }

    #[test]
    fn a_cursor_of_another_query_is_rejected() {
        let cursor = key().encode(r#"["a",""]"#, &view_key());
        assert_eq!(key().decode(r#"["b",""]"#, &cursor), Err(CursorError::OtherQuery));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
    }
}
