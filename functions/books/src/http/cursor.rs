//! Opaque, tamper-evident list cursors: the last key of a page and the query it belongs to,
//! signed with HMAC-SHA256 so a client can neither forge nor move a cursor between queries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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

/// The signing key. Deliberately not `Debug`: it must never reach a log.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl CursorKey {
    /// A key from the secret in `BOOKS_CURSOR_KEY`; `Err` when it is shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!("the cursor key must have at least {MIN_KEY_BYTES} bytes, found {}", secret.len()));
        }
        Ok(Self(secret.to_vec()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    pub(crate) fn encode(&self, query: &str, key: &ViewKey) -> String {
        let payload = serde_json::to_vec(&Payload { q: query.to_owned(), key: key.clone() }).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
    }

    pub(crate) fn decode(&self, query: &str, cursor: &str) -> Result<ViewKey, CursorError> {
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| CursorError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CursorError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| CursorError::Invalid)?;
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

    fn key() -> CursorKey {
        CursorKey::new(&[7u8; 32]).unwrap()
    }

    fn view_key() -> ViewKey {
        ViewKey { pk: "BOOK#01J".into(), sk: "BOOK".into(), book_id: "01J".into() }
    }

    #[test]
    fn a_cursor_round_trips() {
        let cursor = key().encode("author=&tag=", &view_key());
        assert_eq!(key().decode("author=&tag=", &cursor), Ok(view_key()));
    }

    #[test]
    fn a_tampered_cursor_is_rejected() {
        let cursor = key().encode("q", &view_key());
        let (payload, tag) = cursor.split_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(payload).unwrap();
        forged[10] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(key().decode("q", &forged), Err(CursorError::Invalid));
        assert_eq!(key().decode("q", "garbage"), Err(CursorError::Invalid));
        assert_eq!(key().decode("q", &format!("{payload}.")), Err(CursorError::Invalid));
    }

    #[test]
    fn a_cursor_signed_with_another_key_is_rejected() {
        let other = CursorKey::new(&[8u8; 32]).unwrap();
        assert_eq!(key().decode("q", &other.encode("q", &view_key())), Err(CursorError::Invalid));
    }

    #[test]
    fn a_cursor_of_another_query_is_rejected() {
        let cursor = key().encode("author=a&tag=", &view_key());
        assert_eq!(key().decode("author=b&tag=", &cursor), Err(CursorError::OtherQuery));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
    }
}
