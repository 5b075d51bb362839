//! Relay calls from the sync thread: blocking on the async relay, with
//! retries for errors that a retry can fix.
//!
//! A sync cycle is sequential work (read a file, seal, upload, next) run on
//! a blocking thread so that hashing and encryption never occupy the async
//! threads; it drives the async relay through the runtime's handle. Object
//! transfers are the exception: [`RelayIo::spawn_write`] and
//! [`RelayIo::spawn_read`] start one on the runtime and return at once, so
//! that several are in flight while the cycle goes on (see
//! `docs/architecture.md`). They retry exactly as the blocking calls do.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::relay::{Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath};

/// How many times a retryable relay error is retried before it is reported.
const ATTEMPTS: u32 = 4;

/// Calls the relay until it succeeds, fails for good, or has failed
/// [`ATTEMPTS`] times, sleeping with exponential back-off in between.
async fn with_retries<T, F, Fut>(relay: Arc<dyn Relay>, mut call: F) -> Result<T, RelayError>
where
    F: FnMut(Arc<dyn Relay>) -> Fut,
    Fut: Future<Output = Result<T, RelayError>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call(Arc::clone(&relay)).await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "relay call failed; retrying");
                // Jitter keeps several clients (and several transfers of
                // one client) from retrying in lockstep.
                let jitter = u64::from(crate::ids::random_bytes::<1>()[0]);
                tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A relay transfer running on the runtime; [`RelayIo::wait`] gives its
/// outcome.
#[derive(Debug)]
pub(crate) struct Transfer<T>(tokio::task::JoinHandle<Result<T, RelayError>>);

/// A relay driven from a blocking thread.
#[derive(Debug, Clone)]
pub(crate) struct RelayIo {
    relay: Arc<dyn Relay>,
    runtime: tokio::runtime::Handle,
}

impl RelayIo {
    /// Wraps `relay`; `runtime` is the runtime its futures run on.
    pub(crate) fn new(relay: Arc<dyn Relay>, runtime: tokio::runtime::Handle) -> Self {
        RelayIo { relay, runtime }
    }

    fn retrying<T, F, Fut>(&self, call: F) -> Result<T, RelayError>
    where
        F: FnMut(Arc<dyn Relay>) -> Fut,
        Fut: Future<Output = Result<T, RelayError>>,
    {
        self.runtime
            .block_on(with_retries(Arc::clone(&self.relay), call))
    }

    /// Starts writing a whole file on the runtime, with the same retries
    /// as [`write`](Self::write), and returns at once. The write goes on
    /// even if the handle is dropped: whoever starts one waits for it.
    pub(crate) fn spawn_write(&self, path: RelayPath, data: Bytes) -> Transfer<()> {
        let relay = Arc::clone(&self.relay);
        Transfer(self.runtime.spawn(with_retries(relay, move |relay| {
            let path = path.clone();
            let data = data.clone();
            async move { relay.write(&path, data).await }
        })))
    }

    /// Starts reading a file or a range of it on the runtime, with the same
    /// retries as [`read`](Self::read), and returns at once.
    pub(crate) fn spawn_read(
        &self,
        path: RelayPath,
        range: Option<Range<u64>>,
    ) -> Transfer<Option<Bytes>> {
        let relay = Arc::clone(&self.relay);
        Transfer(self.runtime.spawn(async move {
            let read = with_retries(relay, move |relay| {
                let path = path.clone();
                let range = range.clone();
                async move { relay.read(&path, range).await }
            });
            match read.await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == RelayErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            }
        }))
    }

    /// Waits, from the blocking thread, for a transfer started by
    /// [`spawn_write`](Self::spawn_write) or [`spawn_read`](Self::spawn_read).
    pub(crate) fn wait<T>(&self, transfer: Transfer<T>) -> Result<T, RelayError> {
        match self.runtime.block_on(transfer.0) {
            Ok(outcome) => outcome,
            Err(error) => Err(RelayError::new(
                RelayErrorKind::Other,
                format!("a relay transfer stopped unexpectedly: {error}"),
            )),
        }
    }

    /// Lists a folder; a missing folder lists as empty.
    pub(crate) fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        match self.retrying(|relay| {
            let dir = dir.clone();
            async move { relay.list(&dir).await }
        }) {
            Err(error) if error.kind() == RelayErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    /// Reads a file or a range of it; `None` if it does not exist.
    pub(crate) fn read(
        &self,
        path: &RelayPath,
        range: Option<Range<u64>>,
    ) -> Result<Option<Bytes>, RelayError> {
        match self.retrying(|relay| {
            let path = path.clone();
            let range = range.clone();
            async move { relay.read(&path, range).await }
        }) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == RelayErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes a whole file.
    pub(crate) fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        self.retrying(|relay| {
            let path = path.clone();
            let data = data.clone();
            async move { relay.write(&path, data).await }
        })
    }

    /// Deletes a file; a file already gone counts as deleted.
    pub(crate) fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        match self.retrying(|relay| {
            let path = path.clone();
            async move { relay.delete(&path).await }
        }) {
            Err(error) if error.kind() == RelayErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Creates a folder and its parents.
    pub(crate) fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        self.retrying(|relay| {
            let path = path.clone();
            async move { relay.create_dir(&path).await }
        })
    }

    /// Removes the backend's leftovers of interrupted writes in `dir`.
    pub(crate) fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        self.retrying(|relay| {
            let dir = dir.clone();
            async move { relay.clear_leftovers(&dir).await }
        })
    }

    /// Whether ranged reads are supported.
    pub(crate) fn ranged_read(&self) -> bool {
        self.relay.capabilities().ranged_read
    }
}
