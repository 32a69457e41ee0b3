//! The cursor keys one query environment holds, and when it reads them again.
//!
//! The keys are read when a list first needs them, not at start-up, so `GET /books/{id}` never
//! depends on the secret store. They are read again in two cases, so that a rotation breaks no
//! cursor in flight whichever environment a client's next page lands on:
//!
//! - a cursor names a key this environment does not hold: another environment started after a
//!   rotation signed it. At most one such read per [`RefreshPolicy::unknown_key_interval`], so a
//!   stream of forged ids cannot turn into a stream of secret store calls;
//! - the keys are older than [`RefreshPolicy::max_age`]: an environment started before a
//!   rotation stops signing with the replaced key within that time, before a second rotation
//!   can remove it.
//!
//! A failed read keeps the keys already held (and is logged); only an environment that never
//! read them answers a list with an error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cursor::{CursorError, CursorKeys};
use crate::config::ConfigError;
use crate::store::ViewKey;

/// One read of the keys from their store; the error says why, without any key material.
pub type KeyRead = Pin<Box<dyn Future<Output = Result<CursorKeys, ConfigError>> + Send>>;

/// When a keyring reads its keys again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Keys held longer than this are read again before their next use.
    pub max_age: Duration,
    /// A cursor naming an unknown key reads the keys again at most this often.
    pub unknown_key_interval: Duration,
}

impl RefreshPolicy {
    /// Production: keys at most 5 minutes old, an unknown key read again at most every 30 s.
    /// Two rotations 5 minutes apart therefore break no cursor signed after the first.
    pub const DEFAULT: Self =
        Self { max_age: Duration::from_secs(5 * 60), unknown_key_interval: Duration::from_secs(30) };
}

/// The keys could not be read and none are held: a list cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor keys could not be read: {0}")]
pub struct KeysUnavailable(pub String);

/// The cursor keys of one environment, shared by every request it serves (cheap to clone).
#[derive(Clone)]
pub struct CursorKeyring {
    inner: Arc<Inner>,
}

struct Inner {
    read: Option<Box<dyn Fn() -> KeyRead + Send + Sync>>,
    policy: RefreshPolicy,
    // A tokio mutex: one read at a time, and the requests that need the keys wait for it.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    held: Option<(Arc<CursorKeys>, Instant)>,
    last_unknown_key_read: Option<Instant>,
}

impl From<CursorKeys> for CursorKeyring {
    /// Keys fixed for the process's lifetime (tests, benchmarks, fuzzing): never read again.
    fn from(keys: CursorKeys) -> Self {
        let state = State { held: Some((Arc::new(keys), Instant::now())), last_unknown_key_read: None };
        Self {
            inner: Arc::new(Inner {
                read: None,
                policy: RefreshPolicy::DEFAULT,
                state: tokio::sync::Mutex::new(state),
            }),
        }
    }
}

impl CursorKeyring {
    /// Keys `read` from their store when first needed, then again as `policy` says.
    pub fn new(policy: RefreshPolicy, read: impl Fn() -> KeyRead + Send + Sync + 'static) -> Self {
        let read: Box<dyn Fn() -> KeyRead + Send + Sync> = Box::new(read);
        Self { inner: Arc::new(Inner { read: Some(read), policy, state: tokio::sync::Mutex::default() }) }
    }

    /// Signs the cursor of `query` that resumes after `key`.
    pub(crate) async fn encode(&self, query: &str, key: &ViewKey) -> Result<String, KeysUnavailable> {
        Ok(self.keys(false).await?.encode(query, key))
    }

    /// Checks a cursor a client sent back for `query`: the outer error is ours, the inner one
    /// the client's.
    pub(crate) async fn decode(
        &self,
        query: &str,
        cursor: &str,
    ) -> Result<Result<ViewKey, CursorError>, KeysUnavailable> {
        let keys = self.keys(false).await?;
        if keys.knows(cursor) || !self.may_read_for_unknown_key().await {
            return Ok(keys.decode(query, cursor));
        }
        Ok(self.keys(true).await?.decode(query, cursor))
    }

    /// The ids of the keys held now, current first (none before the first read).
    pub async fn ids(&self) -> Vec<String> {
        let state = self.inner.state.lock().await;
        state.held.as_ref().map(|(keys, _)| keys.ids().into_iter().map(str::to_owned).collect()).unwrap_or_default()
    }

    async fn may_read_for_unknown_key(&self) -> bool {
        let mut state = self.inner.state.lock().await;
        let allowed = self.inner.read.is_some()
            && state.last_unknown_key_read.is_none_or(|at| at.elapsed() >= self.inner.policy.unknown_key_interval);
        if allowed {
            state.last_unknown_key_read = Some(Instant::now());
        }
        allowed
    }

    /// The keys to use now: those held, unless `force`d or too old, then a fresh read.
    async fn keys(&self, force: bool) -> Result<Arc<CursorKeys>, KeysUnavailable> {
        let mut state = self.inner.state.lock().await;
        let Some(read) = &self.inner.read else {
            return state.held.as_ref().map(|(keys, _)| Arc::clone(keys)).ok_or_else(unreachable_unheld);
        };
        let fresh = |at: &Instant| at.elapsed() < self.inner.policy.max_age;
        match &state.held {
            Some((keys, at)) if !force && fresh(at) => return Ok(Arc::clone(keys)),
            _ => {}
        }
        match (read().await, &state.held) {
            (Ok(keys), held) => {
                let ids = keys.ids().into_iter().map(str::to_owned).collect::<Vec<_>>();
                if held.as_ref().is_none_or(|(old, _)| old.ids() != keys.ids()) {
                    tracing::info!(cursor_keys = ?ids, "cursor keys read");
                }
                let keys = Arc::new(keys);
                state.held = Some((Arc::clone(&keys), Instant::now()));
                Ok(keys)
            }
            (Err(err), Some((keys, _))) => {
                tracing::warn!(error = %err, "cursor keys could not be read again; the keys held stay in use");
                Ok(Arc::clone(keys))
            }
            (Err(err), None) => {
                tracing::error!(error = %err, "cursor keys could not be read");
                Err(KeysUnavailable(err.to_string()))
            }
        }
    }
}

// A keyring without a source is built from keys (`From<CursorKeys>`) and always holds them.
fn unreachable_unheld() -> KeysUnavailable {
    KeysUnavailable("a keyring with fixed keys holds none".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::http::CursorKey;

    fn key(byte: u8) -> CursorKey {
        CursorKey::new(&[byte; 32]).unwrap()
    }

    fn view_key() -> ViewKey {
        ViewKey { pk: "BOOK#01J".into(), sk: "BOOK".into(), book_id: "01J".into() }
    }

    /// A secret store in memory whose answers the test sets, counting reads.
    #[derive(Clone, Default)]
    struct Store {
        answer: Arc<Mutex<Option<CursorKeys>>>,
        reads: Arc<AtomicUsize>,
    }

    impl Store {
        fn holding(keys: CursorKeys) -> Self {
            let store = Self::default();
            store.set(Some(keys));
            store
        }

        fn set(&self, keys: Option<CursorKeys>) {
            *self.answer.lock().unwrap() = keys;
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }

        fn keyring(&self, policy: RefreshPolicy) -> CursorKeyring {
            let store = self.clone();
            CursorKeyring::new(policy, move || {
                store.reads.fetch_add(1, Ordering::SeqCst);
                let answer = store
                    .answer
                    .lock()
                    .unwrap()
                    .clone()
                    .ok_or_else(|| ConfigError { name: "TEST_SECRET", problem: "the store is down".to_owned() });
                Box::pin(async move { answer })
            })
        }
    }

    const SLOW: RefreshPolicy =
        RefreshPolicy { max_age: Duration::from_secs(3600), unknown_key_interval: Duration::from_secs(3600) };

    #[tokio::test]
    async fn keys_are_read_when_first_needed_not_before() {
        let store = Store::holding(CursorKeys::single(key(1)));
        let keyring = store.keyring(SLOW);
        assert_eq!(store.reads(), 0);
        assert!(keyring.ids().await.is_empty());
        keyring.encode("q", &view_key()).await.unwrap();
        keyring.encode("q", &view_key()).await.unwrap();
        assert_eq!(store.reads(), 1);
        assert_eq!(keyring.ids().await, vec![key(1).id()]);
    }

    #[tokio::test]
    async fn a_cursor_signed_after_a_rotation_is_accepted_by_an_environment_started_before_it() {
        let store = Store::holding(CursorKeys::single(key(1)));
        let before = store.keyring(SLOW);
        before.encode("q", &view_key()).await.unwrap();
        store.set(Some(CursorKeys::new(key(2), Some(key(1)))));
        let after = store.keyring(SLOW);
        let cursor = after.encode("q", &view_key()).await.unwrap();
        assert_eq!(before.decode("q", &cursor).await, Ok(Ok(view_key())));
        assert!(before.encode("q", &view_key()).await.unwrap().starts_with(key(2).id()), "and signs with the new key");
    }

    #[tokio::test]
    async fn unknown_keys_read_the_store_again_at_most_once_an_interval() {
        let store = Store::holding(CursorKeys::single(key(1)));
        let keyring = store.keyring(SLOW);
        let forged = |byte: u8| CursorKeys::single(key(byte)).encode("q", &view_key());
        for byte in 10..20 {
            assert_eq!(keyring.decode("q", &forged(byte)).await, Ok(Err(CursorError::Invalid)));
        }
        assert_eq!(store.reads(), 2, "the first read, then one for the first unknown key");

        let eager = store.keyring(RefreshPolicy { unknown_key_interval: Duration::ZERO, ..SLOW });
        for byte in 10..13 {
            assert_eq!(eager.decode("q", &forged(byte)).await, Ok(Err(CursorError::Invalid)));
        }
        assert_eq!(store.reads(), 2 + 4, "without the interval, every unknown key reads again");
    }

    #[tokio::test]
    async fn old_keys_are_read_again_and_a_failed_read_keeps_them() {
        let store = Store::holding(CursorKeys::single(key(1)));
        let keyring = store.keyring(RefreshPolicy { max_age: Duration::ZERO, ..SLOW });
        keyring.encode("q", &view_key()).await.unwrap();
        store.set(Some(CursorKeys::new(key(2), Some(key(1)))));
        assert!(keyring.encode("q", &view_key()).await.unwrap().starts_with(key(2).id()));
        store.set(None);
        assert!(keyring.encode("q", &view_key()).await.unwrap().starts_with(key(2).id()), "kept");
        assert_eq!(store.reads(), 3);
    }

    #[tokio::test]
    async fn without_keys_a_list_fails_until_the_store_answers() {
        let store = Store::default();
        let keyring = store.keyring(SLOW);
        let err = keyring.encode("q", &view_key()).await.unwrap_err();
        assert!(err.to_string().contains("the store is down"), "{err}");
        assert!(keyring.decode("q", "a.b.c").await.is_err());
        store.set(Some(CursorKeys::single(key(1))));
        assert!(keyring.encode("q", &view_key()).await.is_ok(), "a failure is not remembered");
    }

    #[tokio::test]
    async fn fixed_keys_are_never_read_again() {
        let keyring = CursorKeyring::from(CursorKeys::single(key(1)));
        let other = CursorKeys::single(key(2)).encode("q", &view_key());
        assert_eq!(keyring.decode("q", &other).await, Ok(Err(CursorError::Invalid)));
        assert_eq!(keyring.ids().await, vec![key(1).id()]);
    }
}
