//! The rclone backend: any storage that rclone reaches (Dropbox, Google
//! Drive, OneDrive, B2, Swift, …) through the user's own rclone program
//! and configuration.
//!
//! Escale never sees the storage's credentials: people log in with
//! rclone's own `rclone config`, and rclone keeps (and refreshes) the
//! tokens in its configuration file. An address `rclone:REMOTE:path`
//! names a remote of that configuration and a folder on it.
//!
//! # How Escale talks to rclone
//!
//! One `rclone rcd` (remote-control server) per relay, started at the
//! first call and stopped with the relay ([`daemon`]), answers plain HTTP
//! on loopback:
//!
//! - **list**: `operations/list`, one request however big the folder;
//! - **read**: rclone's file server (`--rc-serve`, `GET /[REMOTE:path]/file`)
//!   with an HTTP `Range`, so a range costs only its bytes;
//! - **write**: `operations/uploadfile` under a temporary name
//!   (`.escale-tmp-…`, hidden from listings), a size check with
//!   `operations/stat`, then `operations/movefile` onto the real name — a
//!   server-side rename where the storage has one;
//! - **delete**, **make a folder**: `operations/deletefile`,
//!   `operations/mkdir`.
//!
//! A process that lives as long as the relay keeps the remote's login,
//! connections and folder caches between calls: a small read costs about
//! 3 ms, where starting `rclone` for each call costs about 0.2 s and a
//! fresh login (measurements in `docs/architecture.md`).
//!
//! What the remote can do is asked once (`operations/fsinfo`) and decides
//! three things:
//!
//! - **Renames.** Remotes with a server-side move get the temporary name
//!   and rename, so readers never see half a file. When the target exists
//!   rclone deletes it just before the rename, so a reader may briefly
//!   find no file at all (never a partial one); the relay format allows
//!   for that (two head slots). Remotes without a move (S3, B2, Swift:
//!   object stores, where an upload appears whole once complete anyway)
//!   are written directly, since a "rename" there would copy the data.
//! - **Folders.** rclone creates missing parent folders on upload, and
//!   the relay contract wants a write into a missing folder refused, so
//!   that a vanished relay folder is never recreated. The parent is
//!   therefore checked first: at every write on a local remote (a mount
//!   point can go away at any moment, and checking costs little there),
//!   otherwise unless this relay saw the folder less than
//!   [`FOLDER_TRUST`] ago.
//!   `create_dir` checks the relay folder every time: it is never created.
//!   Object stores without real folders (rclone reports they cannot hold
//!   an empty folder) skip these checks: there a folder exists while it
//!   holds files, and `create_dir` has nothing to do.
//! - **Atomicity** reported in [`Capabilities`] follows from the two.
//!
//! # Errors
//!
//! rclone reports failures as text (with an HTTP status that only tells
//! "not found" apart). [`classify`] sorts that text into
//! [`RelayErrorKind`]s with plain words, and tells people to run
//! `rclone config reconnect REMOTE:` when a login has expired. An rclone
//! that crashed or was killed is started again once, transparently, and
//! the call retried.

mod daemon;

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opendal_reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::json;

use super::file::TEMP_PREFIX;
use super::{
    Capabilities, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath, RelayUrl, Secrets,
};
use daemon::{Daemon, Setup, Supervisor};

/// The environment variable naming the rclone program, when it is not
/// `rclone` on the `PATH`.
pub(crate) const RCLONE_ENV: &str = "ESCALE_RCLONE";

/// How long a folder this relay has seen (listed, made or checked) on a
/// network remote is trusted to still exist before a write into it checks
/// again: a check there is a request to the storage. Short, so that a
/// relay folder someone deleted is not recreated by uploads for long;
/// long enough that a burst of writes into one folder checks it once.
const FOLDER_TRUST: Duration = Duration::from_secs(30);

/// How long connecting to rclone on loopback may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long rclone may stay silent in a call. rclone answers an upload
/// only once the storage has the whole file, and retries the storage's
/// passing errors itself (its own `--timeout` is 5 minutes of silence), so
/// this only ends calls that rclone itself has lost.
const READ_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A relay on a remote of the user's rclone configuration.
pub(crate) struct RcloneRelay {
    /// The remote's name, for messages (`rclone config reconnect NAME:`).
    remote: String,
    /// The relay folder as rclone names it: `REMOTE:path`.
    fs: String,
    /// Where reads find the relay folder: rclone's file server takes the
    /// remote between brackets, up to the first `]`, so a relay folder
    /// with a `]` in its path is reached from a parent without one.
    serve_fs: String,
    /// The rest of the relay folder's path below [`Self::serve_fs`]
    /// (empty, or ending with `/`).
    serve_prefix: String,
    /// The relay's address, for messages.
    address: String,
    /// The HTTP client for rclone on loopback.
    client: opendal_reqwest::Client,
    /// The rclone process.
    daemon: Supervisor,
    /// What the remote can do, asked once at the first call.
    info: tokio::sync::OnceCell<RemoteInfo>,
    /// Folders known to exist (relay paths; `""` is the root), with when
    /// that was last seen.
    seen_dirs: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for RcloneRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcloneRelay")
            .field("address", &self.address)
            .field("setup", self.daemon.setup())
            .finish_non_exhaustive()
    }
}

/// What a remote can do, from rclone's `operations/fsinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RemoteInfo {
    /// Folders are real: they exist when empty (`CanHaveEmptyDirectories`).
    folders: bool,
    /// The storage renames files itself (`Move`).
    rename: bool,
    /// An object store (`BucketBased`): an upload appears whole once done.
    bucket: bool,
    /// The remote is a folder of this computer (`IsLocal`; also through
    /// an alias): a drive or share that can go away at any moment, and
    /// cheap to check.
    local: bool,
}

/// How a call to rclone failed, before it is put in words.
#[derive(Debug)]
enum Failure {
    /// rclone answered with an error.
    Rclone {
        /// The HTTP status of the answer: 404 for "not found", mostly 500
        /// otherwise.
        status: u16,
        /// rclone's error text.
        message: String,
    },
    /// The exchange with rclone itself failed: it may have crashed.
    Transport(opendal_reqwest::Error),
    /// Already sorted.
    Relay(RelayError),
}

impl From<RelayError> for Failure {
    fn from(err: RelayError) -> Self {
        Failure::Relay(err)
    }
}

/// rclone's error answer: `{"error": "…", "status": 404, …}`.
#[derive(Deserialize)]
struct ErrorReply {
    /// The error text.
    error: String,
}

/// One entry of a listing or a `stat`, as rclone's `lsjson` shows it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    /// The name inside its folder.
    name: String,
    /// The size in bytes; -1 when the storage does not know it.
    size: i64,
    /// Whether it is a folder.
    is_dir: bool,
}

/// The answer of `operations/list`.
#[derive(Deserialize)]
struct ListReply {
    /// The folder's entries.
    list: Vec<Item>,
}

/// The answer of `operations/stat`: `null` when nothing is there.
#[derive(Deserialize)]
struct StatReply {
    /// The file or folder.
    item: Option<Item>,
}

/// The part of `operations/fsinfo`'s answer that Escale uses.
#[derive(Deserialize)]
struct FsInfoReply {
    /// Optional features by name, and whether the remote has them.
    #[serde(rename = "Features", default)]
    features: HashMap<String, bool>,
}

/// The part of `core/version`'s answer that Escale uses.
#[derive(Deserialize)]
struct VersionReply {
    /// The version as numbers: `[1, 75, 2]`.
    decomposed: Vec<u64>,
    /// The version as text, for messages.
    version: String,
}

impl RcloneRelay {
    /// The relay on `remote`, in its folder `path`, with the rclone that
    /// `secrets` names. Nothing runs yet: rclone starts at the first call,
    /// so that its absence or an unknown remote shows up as that call's
    /// error.
    pub(crate) fn new(url: &RelayUrl, secrets: &Secrets) -> Result<Self, RelayError> {
        let RelayUrl::Rclone { remote, path } = url else {
            return Err(RelayError::new(
                RelayErrorKind::InvalidUrl,
                format!("{url} is not an rclone relay address"),
            ));
        };
        let (serve_fs, serve_prefix) = serve_location(remote, path);
        Ok(RcloneRelay {
            remote: remote.clone(),
            fs: format!("{remote}:{path}"),
            serve_fs,
            serve_prefix,
            address: url.to_string(),
            client: http_client()?,
            daemon: Supervisor::new(Setup {
                binary: secrets.rclone_binary.clone(),
                config: secrets.rclone_config.clone(),
            }),
            info: tokio::sync::OnceCell::new(),
            seen_dirs: Mutex::new(HashMap::new()),
        })
    }

    /// How messages name a relay file.
    fn file_words(&self, path: &RelayPath) -> String {
        format!("the relay file {path} at {}", self.address)
    }

    /// How messages name a relay folder.
    fn dir_words(&self, path: &RelayPath) -> String {
        format!("the relay folder {path} at {}", self.address)
    }

    /// The running rclone, started and its version checked if need be.
    async fn daemon(&self) -> Result<Arc<Daemon>, RelayError> {
        self.daemon
            .daemon(|daemon| async move { self.check_version(&daemon).await })
            .await
    }

    /// Refuses an rclone older than [`daemon::MIN_VERSION`].
    async fn check_version(&self, daemon: &Daemon) -> Result<(), RelayError> {
        let what = "the rclone program";
        let reply: VersionReply = self
            .call(daemon, "core/version", json!({}))
            .await
            .map_err(|failure| self.sort(failure, what))?;
        let version = (
            reply.decomposed.first().copied().unwrap_or(0),
            reply.decomposed.get(1).copied().unwrap_or(0),
        );
        if version < daemon::MIN_VERSION {
            return Err(self.daemon.setup().unusable(&format!(
                "rclone {} is too old",
                reply.version.trim_start_matches('v')
            )));
        }
        Ok(())
    }

    /// Runs `op` against the running rclone. When the exchange fails
    /// because rclone has ended, starts it again and runs `op` once more:
    /// every operation of this backend can be repeated from its start.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, RelayError>
    where
        F: Fn(Arc<Daemon>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut restarted = false;
        loop {
            let daemon = self.daemon().await?;
            let failure = match op(Arc::clone(&daemon)).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            match failure {
                Failure::Transport(err) if daemon.ended_soon().await => {
                    if restarted {
                        return Err(RelayError::new(
                            RelayErrorKind::Interrupted,
                            format!(
                                "rclone stopped unexpectedly twice while working on {what}{}",
                                said(daemon.last_words())
                            ),
                        )
                        .with_source(err));
                    }
                    tracing::warn!(
                        relay = %self.address,
                        last_words = daemon.last_words().unwrap_or_default(),
                        "rclone stopped in the middle of a call; starting it again"
                    );
                    restarted = true;
                }
                other => return Err(self.sort(other, what)),
            }
        }
    }

    /// What the remote can do, asked once. Also the first proof that the
    /// remote is in rclone's configuration.
    async fn info(&self) -> Result<RemoteInfo, RelayError> {
        self.info
            .get_or_try_init(|| async {
                let what = format!("the relay {}", self.address);
                let reply: FsInfoReply = self
                    .run(&what, |daemon| async move {
                        self.call(&daemon, "operations/fsinfo", json!({ "fs": self.fs }))
                            .await
                    })
                    .await?;
                let feature = |name: &str| reply.features.get(name).copied().unwrap_or(false);
                let info = RemoteInfo {
                    folders: feature("CanHaveEmptyDirectories"),
                    rename: feature("Move"),
                    bucket: feature("BucketBased"),
                    local: feature("IsLocal"),
                };
                tracing::debug!(relay = %self.address, ?info, "rclone remote");
                Ok(info)
            })
            .await
            .copied()
    }

    /// Calls rclone's remote-control `method` with `params`.
    async fn call<T: DeserializeOwned>(
        &self,
        daemon: &Daemon,
        method: &str,
        params: serde_json::Value,
    ) -> Result<T, Failure> {
        let response = daemon
            .request(&self.client, Method::POST, method)
            .header(header::CONTENT_TYPE, "application/json")
            .body(params.to_string())
            .send()
            .await
            .map_err(Failure::Transport)?;
        answer(response).await
    }

    /// The file or folder at `path`, `None` when nothing is there.
    async fn stat(&self, daemon: &Daemon, path: &RelayPath) -> Result<Option<Item>, Failure> {
        let reply: StatReply = self
            .call(
                daemon,
                "operations/stat",
                json!({
                    "fs": self.fs,
                    "remote": path.as_str(),
                    "opt": { "noModTime": true, "noMimeType": true },
                }),
            )
            .await?;
        Ok(reply.item)
    }

    /// Uploads `body` (a multipart form made by [`multipart`] with
    /// `boundary`) into the folder `dir`.
    async fn upload(
        &self,
        daemon: &Daemon,
        dir: &RelayPath,
        boundary: &str,
        body: Bytes,
    ) -> Result<(), Failure> {
        let target = format!(
            "operations/uploadfile?fs={}&remote={}",
            encode(&self.fs, false),
            encode(dir.as_str(), false)
        );
        let response = daemon
            .request(&self.client, Method::POST, &target)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(Failure::Transport)?;
        answer::<IgnoredAny>(response).await.map(drop)
    }

    /// Checks that the file at `path` holds `len` bytes: a cut
    /// connection can look like a complete short file to the storage.
    async fn check_size(
        &self,
        daemon: &Daemon,
        path: &RelayPath,
        len: u64,
        what: &str,
    ) -> Result<(), Failure> {
        let stored = match self.stat(daemon, path).await? {
            Some(item) if !item.is_dir => item.size,
            _ => {
                return Err(RelayError::new(
                    RelayErrorKind::Interrupted,
                    format!("{what} was not stored: it is missing after the upload"),
                )
                .into());
            }
        };
        if u64::try_from(stored).ok() != Some(len) {
            return Err(RelayError::new(
                RelayErrorKind::Interrupted,
                format!("{what} was stored with {stored} bytes instead of {len}"),
            )
            .into());
        }
        Ok(())
    }

    /// Reads `path`, or `range` of it, from rclone's file server.
    async fn get(
        &self,
        daemon: &Daemon,
        path: &RelayPath,
        range: Option<&Range<u64>>,
        what: &str,
    ) -> Result<Bytes, Failure> {
        let target = format!(
            "{}/{}",
            encode(&format!("[{}]", self.serve_fs), false),
            encode(&format!("{}{}", self.serve_prefix, path.as_str()), true)
        );
        let mut request = daemon.request(&self.client, Method::GET, &target);
        if let Some(range) = range {
            request = request.header(
                header::RANGE,
                format!("bytes={}-{}", range.start, range.end - 1),
            );
        }
        let response = request.send().await.map_err(Failure::Transport)?;
        let status = response.status();
        let total = response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(content_range_total);
        let body = response.bytes().await.map_err(Failure::Transport)?;
        // A range starting at or past the end: rclone answers 206 with a
        // range like "bytes 10-5/6" (local files), or 404 "Not Found" with
        // that header when the storage refused the range (WebDAV's 416).
        // Either way the file exists and holds no bytes there.
        if let (Some(range), Some(total)) = (range, total)
            && range.start >= total
        {
            return Ok(Bytes::new());
        }
        if !status.is_success() {
            return Err(rclone_failure(status, &body));
        }
        let Some(range) = range else {
            return Ok(body);
        };
        if status != StatusCode::PARTIAL_CONTENT {
            // The whole file came back; the contract clamps the range.
            let len = body.len() as u64;
            let start = usize::try_from(range.start.min(len)).unwrap_or(body.len());
            let end = usize::try_from(range.end.min(len)).unwrap_or(body.len());
            return Ok(body.slice(start..end.max(start)));
        }
        let Some(total) = total else {
            return Err(not_understood(what, "a partial answer without its range").into());
        };
        let expected = range.end.min(total) - range.start;
        if body.len() as u64 != expected {
            return Err(RelayError::new(
                RelayErrorKind::Interrupted,
                format!(
                    "the read of {what} was cut short ({} bytes of {expected})",
                    body.len()
                ),
            )
            .into());
        }
        Ok(body)
    }

    /// Makes sure the folder `dir` exists before something is put in it.
    /// A sighting less than `trust` old is taken as proof; none is when
    /// `trust` is zero.
    async fn check_dir(&self, dir: &RelayPath, trust: Duration) -> Result<(), RelayError> {
        let recently = lock(&self.seen_dirs)
            .get(dir.as_str())
            .is_some_and(|at| at.elapsed() < trust);
        if recently {
            return Ok(());
        }
        let what = self.dir_words(dir);
        let item = self
            .run(&what, |daemon| async move { self.stat(&daemon, dir).await })
            .await?;
        match item {
            Some(item) if item.is_dir => {
                self.seen(dir);
                Ok(())
            }
            Some(_) => Err(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} does not exist (a file stands where a folder should be)"),
            )),
            None => Err(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} does not exist"),
            )),
        }
    }

    /// Notes that `dir`, and so every folder above it, exists now.
    fn seen(&self, dir: &RelayPath) {
        let now = Instant::now();
        let mut seen = lock(&self.seen_dirs);
        let mut current = Some(dir.clone());
        while let Some(dir) = current {
            current = dir.parent();
            seen.insert(dir.as_str().to_owned(), now);
        }
    }

    /// Forgets that `dir` exists, after it was found missing.
    fn gone(&self, dir: &RelayPath) {
        lock(&self.seen_dirs).remove(dir.as_str());
    }

    /// Lists `dir` as rclone sees it, temporaries included.
    async fn list_all(&self, dir: &RelayPath) -> Result<Vec<Item>, RelayError> {
        let what = self.dir_words(dir);
        let result = self
            .run(&what, |daemon| async move {
                let reply: ListReply = self
                    .call(
                        &daemon,
                        "operations/list",
                        json!({
                            "fs": self.fs,
                            "remote": dir.as_str(),
                            "opt": { "noModTime": true, "noMimeType": true },
                        }),
                    )
                    .await?;
                Ok(reply.list)
            })
            .await;
        match &result {
            Ok(_) => self.seen(dir),
            Err(err) if err.kind() == RelayErrorKind::NotFound => self.gone(dir),
            Err(_) => {}
        }
        result
    }

    /// Deletes the file at `path`.
    async fn delete_file(&self, daemon: &Daemon, path: &RelayPath) -> Result<(), Failure> {
        self.call::<IgnoredAny>(
            daemon,
            "operations/deletefile",
            json!({ "fs": self.fs, "remote": path.as_str() }),
        )
        .await
        .map(drop)
    }

    /// Puts a failure in words about `what`.
    fn sort(&self, failure: Failure, what: &str) -> RelayError {
        match failure {
            Failure::Relay(err) => err,
            Failure::Rclone { status, message } => classify(status, &message, what, &self.remote),
            Failure::Transport(err) if err.is_timeout() => RelayError::new(
                RelayErrorKind::Timeout,
                format!("rclone did not answer in time about {what}"),
            )
            .with_source(err),
            Failure::Transport(err) => RelayError::new(
                RelayErrorKind::Interrupted,
                format!("the exchange with rclone about {what} was interrupted"),
            )
            .with_source(err),
        }
    }

    /// The folder `dir` as rclone names it on its command line.
    fn dir_fs(&self, dir: &RelayPath) -> String {
        if dir.is_root() {
            self.fs.clone()
        } else if self.fs.ends_with(':') || self.fs.ends_with('/') {
            format!("{}{}", self.fs, dir.as_str())
        } else {
            format!("{}/{}", self.fs, dir.as_str())
        }
    }

    /// The running rclone, for tests that kill it.
    #[cfg(test)]
    async fn running_daemon(&self) -> Option<Arc<Daemon>> {
        self.daemon.running().await
    }
}

#[async_trait::async_trait]
impl Relay for RcloneRelay {
    fn capabilities(&self) -> Capabilities {
        // Before the first call the remote's features are unknown: the
        // safe answer until then.
        let info = self.info.get();
        Capabilities {
            ranged_read: true,
            atomic_write: info.is_some_and(|info| info.rename || info.bucket),
            list_sizes: true,
            max_file_size: None,
        }
    }

    fn describe(&self) -> String {
        self.address.clone()
    }

    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        self.info().await?;
        let mut entries: Vec<RelayEntry> = self
            .list_all(dir)
            .await?
            .into_iter()
            .filter(|item| {
                !item.name.starts_with(TEMP_PREFIX)
                    && !item.name.is_empty()
                    && !item.name.contains('/')
            })
            .map(|item| RelayEntry {
                size: (!item.is_dir)
                    .then(|| u64::try_from(item.size).ok())
                    .flatten(),
                is_dir: item.is_dir,
                name: item.name,
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Storages that allow two entries with one name (Google Drive) can
        // get a second folder when two computers make the same one at
        // once; half of the relay would then be out of sight.
        if let Some(twice) = entries.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!(
                    "{} holds two entries named \"{}\"; merge them with `rclone dedupe \
                     --dedupe-mode merge {}`",
                    self.dir_words(dir),
                    twice[0].name,
                    self.dir_fs(dir)
                ),
            ));
        }
        Ok(entries)
    }

    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        let what = self.file_words(path);
        if path.is_root() {
            return Err(is_a_folder(&what));
        }
        self.info().await?;
        match range {
            Some(range) if range.start >= range.end => {
                // No bytes asked for: only whether the file is there.
                let item = self
                    .run(
                        &what,
                        |daemon| async move { self.stat(&daemon, path).await },
                    )
                    .await?;
                match item {
                    Some(item) if item.is_dir => Err(is_a_folder(&what)),
                    Some(_) => Ok(Bytes::new()),
                    None => Err(RelayError::new(
                        RelayErrorKind::NotFound,
                        format!("{what} does not exist"),
                    )),
                }
            }
            range => {
                let (range, what) = (range.as_ref(), what.as_str());
                self.run(what, |daemon| async move {
                    self.get(&daemon, path, range, what).await
                })
                .await
            }
        }
    }

    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        let what = self.file_words(path);
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot write over the relay folder {}", self.address),
            ));
        }
        let info = self.info().await?;
        let parent = path.parent().unwrap_or_else(RelayPath::root);
        if info.folders {
            // A local folder (a mount point) is checked at every write: it
            // costs little there, and a drive that went away a moment ago
            // must not be refilled by rclone's upload.
            let trust = if info.local {
                Duration::ZERO
            } else {
                FOLDER_TRUST
            };
            self.check_dir(&parent, trust).await?;
        }
        let len = data.len() as u64;
        let boundary = format!("escale-{}", hex::encode(crate::ids::random_bytes::<16>()));
        if !info.rename {
            let body = multipart(&boundary, path.file_name(), &data);
            let (parent, boundary, body, what) = (&parent, boundary.as_str(), &body, what.as_str());
            return self
                .run(what, |daemon| async move {
                    self.upload(&daemon, parent, boundary, body.clone()).await?;
                    self.check_size(&daemon, path, len, what).await
                })
                .await;
        }
        let temp = parent.join(&format!(
            "{TEMP_PREFIX}{}",
            hex::encode(crate::ids::random_bytes::<8>())
        ))?;
        let body = multipart(&boundary, temp.file_name(), &data);
        drop(data);
        let (temp, parent, boundary, body, what) =
            (&temp, &parent, boundary.as_str(), &body, what.as_str());
        let result = self
            .run(what, |daemon| async move {
                self.upload(&daemon, parent, boundary, body.clone()).await?;
                self.check_size(&daemon, temp, len, what).await?;
                self.call::<IgnoredAny>(
                    &daemon,
                    "operations/movefile",
                    json!({
                        "srcFs": self.fs,
                        "srcRemote": temp.as_str(),
                        "dstFs": self.fs,
                        "dstRemote": path.as_str(),
                    }),
                )
                .await
                .map(drop)
            })
            .await;
        if result.is_err() {
            // Best effort, and without restarting rclone for it: whatever
            // stays is removed by the next `clear_leftovers`.
            if let Some(daemon) = self.daemon.running().await
                && daemon.alive()
            {
                let _ = self.delete_file(&daemon, temp).await;
            }
        }
        result
    }

    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        let what = self.file_words(path);
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot delete the relay folder {}", self.address),
            ));
        }
        self.info().await?;
        self.run(&what, |daemon| async move {
            self.delete_file(&daemon, path).await
        })
        .await
    }

    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        let info = self.info().await?;
        if !info.folders {
            // Folders of object stores exist while they hold files.
            return Ok(());
        }
        // Never the relay folder itself: a missing one is a drive or a
        // share that went away, or a wrong address, and making it would
        // split the relay in two. rclone's mkdir would make it with the
        // folder asked for, so the root is checked every time: making
        // folders is rare.
        self.check_dir(&RelayPath::root(), Duration::ZERO).await?;
        if path.is_root() {
            return Ok(());
        }
        let what = self.dir_words(path);
        let what = what.as_str();
        self.run(what, |daemon| async move {
            let made = self
                .call::<IgnoredAny>(
                    &daemon,
                    "operations/mkdir",
                    json!({ "fs": self.fs, "remote": path.as_str() }),
                )
                .await;
            match made {
                Err(Failure::Rclone { message, .. })
                    if message.contains("not a directory") || message.contains("file exists") =>
                {
                    Err(RelayError::new(
                        RelayErrorKind::InvalidPath,
                        format!("cannot create {what}: a file stands where a folder should be"),
                    )
                    .with_source(std::io::Error::other(short(&message)))
                    .into())
                }
                other => other.map(drop),
            }
        })
        .await?;
        self.seen(path);
        Ok(())
    }

    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot remove the relay folder {} itself", self.address),
            ));
        }
        let info = self.info().await?;
        let what = self.dir_words(path);
        // Temporaries count: they are another client's upload in progress.
        if !self.list_all(path).await?.is_empty() {
            return Err(crate::relay::file::not_empty(&what));
        }
        if !info.folders {
            // On object stores an empty folder is already gone.
            return Ok(());
        }
        let what = what.as_str();
        self.run(what, |daemon| async move {
            self.call::<IgnoredAny>(
                &daemon,
                "operations/rmdir",
                json!({ "fs": self.fs, "remote": path.as_str() }),
            )
            .await
            .map(drop)
        })
        .await?;
        let prefix = format!("{}/", path.as_str());
        lock(&self.seen_dirs).retain(|dir, _| dir != path.as_str() && !dir.starts_with(&prefix));
        Ok(())
    }

    async fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        self.info().await?;
        let items = match self.list_all(dir).await {
            Ok(items) => items,
            Err(err) if err.kind() == RelayErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for item in items {
            if item.is_dir || !item.name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let temp = dir.join(&item.name)?;
            let what = self.file_words(&temp);
            match self
                .run(&what, |daemon| {
                    let temp = &temp;
                    async move { self.delete_file(&daemon, temp).await }
                })
                .await
            {
                Err(err) if err.kind() != RelayErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Reads rclone's answer: the JSON result, or its error.
async fn answer<T: DeserializeOwned>(response: opendal_reqwest::Response) -> Result<T, Failure> {
    let status = response.status();
    let body = response.bytes().await.map_err(Failure::Transport)?;
    if !status.is_success() {
        return Err(rclone_failure(status, &body));
    }
    serde_json::from_slice(&body).map_err(|err| {
        Failure::Relay(
            not_understood("the relay", "an answer that is not the JSON expected").with_source(err),
        )
    })
}

/// An error answer of rclone, as a [`Failure`].
fn rclone_failure(status: StatusCode, body: &[u8]) -> Failure {
    if status == StatusCode::UNAUTHORIZED {
        // Only the remote-control server itself answers 401: the storage's
        // refusals come back as rclone errors with status 500.
        return Failure::Relay(RelayError::new(
            RelayErrorKind::Other,
            "rclone refused Escale's own login to it; it was probably replaced by another \
             program on the same port",
        ));
    }
    let message = serde_json::from_slice::<ErrorReply>(body)
        .map(|reply| reply.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_owned());
    Failure::Rclone {
        status: status.as_u16(),
        message,
    }
}

/// An answer from rclone that Escale cannot read.
fn not_understood(what: &str, answer: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::Other,
        format!("rclone gave {answer} about {what}; is it a version Escale supports?"),
    )
}

/// Sorts an error text of rclone about `what` (a noun phrase) on remote
/// `remote` by what a person or the scheduler can do about it.
///
/// rclone passes the storage's own words on (Google's, Microsoft's, an
/// SFTP server's), so the text is matched on phrases those use; numbers
/// alone are never matched, since paths in the text hold hex names.
fn classify(status: u16, message: &str, what: &str, remote: &str) -> RelayError {
    use RelayErrorKind as K;
    let lower = message.to_lowercase();
    let says = |phrases: &[&str]| phrases.iter().any(|p| lower.contains(p));
    let (kind, text) = if says(&["didn't find section in config file"]) {
        (
            K::InvalidUrl,
            format!(
                "the rclone remote \"{remote}\" is not in rclone's configuration; add it with \
                 `rclone config` (`rclone config file` shows which file rclone reads), or \
                 correct the relay address"
            ),
        )
    } else if says(&["is a directory"]) {
        (K::InvalidPath, format!("{what} is a folder, not a file"))
    } else if status == 404
        || says(&[
            "directory not found",
            "object not found",
            "file not found",
            "no such file or directory",
            "not a directory",
        ])
    {
        (K::NotFound, format!("{what} does not exist"))
    } else if says(&[
        "token expired",
        "token has expired",
        "expired or revoked",
        "invalid_grant",
        "couldn't fetch token",
        "refresh token",
        "unauthorized",
        "unauthenticated",
        "invalidauthenticationtoken",
        "expired_access_token",
        "invalid_access_token",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "authentication failed",
        "unable to authenticate",
        "login incorrect",
        "invalid credentials",
    ]) {
        (
            K::AuthenticationFailed,
            format!(
                "the storage refused rclone's login for {what} (its sign-in may have expired \
                 or been revoked); run `rclone config reconnect {remote}:` and try again"
            ),
        )
    } else if says(&[
        "rate limit",
        "ratelimit",
        "too many requests",
        "throttl",
        "slow down",
        "slowdown",
    ]) {
        (
            K::Other,
            format!("the storage of {what} asks Escale to send fewer requests for a while"),
        )
    } else if says(&[
        "quota",
        "insufficient storage",
        "insufficient_space",
        "no space left",
        "storage full",
        "cap exceeded",
        "not enough space",
        "disk full",
    ]) {
        (
            K::StorageFull,
            format!("the storage holding {what} is full"),
        )
    } else if says(&["too large", "too big", "entitytoolarge"]) {
        (
            K::Unsupported,
            format!("{what} is larger than the storage accepts"),
        )
    } else if says(&[
        "permission denied",
        "access denied",
        "accessdenied",
        "forbidden",
        "insufficientpermissions",
        "not allowed",
        "read-only file system",
    ]) {
        (
            K::PermissionDenied,
            format!("permission to access {what} was refused"),
        )
    } else if says(&["timeout", "timed out", "deadline exceeded"]) {
        (
            K::Timeout,
            format!("the storage of {what} did not answer in time"),
        )
    } else if says(&[
        "connection refused",
        "no such host",
        "network is unreachable",
        "host is unreachable",
        "no route to host",
        "server misbehaving",
    ]) {
        (
            K::Unreachable,
            format!("the storage of {what} cannot be reached"),
        )
    } else if says(&[
        "connection reset",
        "broken pipe",
        "unexpected eof",
        "connection closed",
    ]) {
        (
            K::Interrupted,
            format!("the transfer of {what} was interrupted"),
        )
    } else {
        (
            K::Other,
            format!("cannot access {what}: {}", short(message)),
        )
    };
    RelayError::new(kind, text)
        .with_source(std::io::Error::other(format!("rclone: {}", short(message))))
}

/// The error for a folder where a file is expected.
fn is_a_folder(what: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidPath,
        format!("{what} is a folder, not a file"),
    )
}

/// " (rclone said: …)" when rclone said something.
fn said(words: Option<String>) -> String {
    words
        .map(|words| format!(" (rclone said: {words})"))
        .unwrap_or_default()
}

/// Where reads reach the relay folder `path` of `remote`: the remote
/// between brackets and the rest of the path. rclone's file server takes
/// everything up to the first `]` as the remote, so a path holding one is
/// split at the last `/` before it.
fn serve_location(remote: &str, path: &str) -> (String, String) {
    match path.find(']') {
        None => (format!("{remote}:{path}"), String::new()),
        Some(at) => {
            let cut = path[..at].rfind('/').map_or(0, |slash| slash + 1);
            (
                format!("{remote}:{}", &path[..cut]),
                format!("{}/", &path[cut..]),
            )
        }
    }
}

/// The file's total size in a `Content-Range` header (`bytes 0-9/123`).
fn content_range_total(value: &str) -> Option<u64> {
    value.rsplit_once('/')?.1.trim().parse().ok()
}

/// Percent-encodes everything but unreserved characters (and `/` when
/// `keep_slash`), for URL paths and query values alike.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// A `multipart/form-data` body holding one file, as
/// `operations/uploadfile` takes it.
///
/// Written by hand because the form is one part and the name must reach
/// rclone exactly: it goes in RFC 2231 form (`filename*=UTF-8''…`), which
/// rclone's Go decodes, rather than the percent-escapes that HTML forms
/// use and Go keeps as they are. The data is copied once into the body;
/// objects are a few MiB to tens of MiB.
fn multipart(boundary: &str, file_name: &str, data: &[u8]) -> Bytes {
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename*=UTF-8''{}\r\nContent-Type: application/octet-stream\r\n\r\n",
        encode(file_name, false)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut body = Vec::with_capacity(head.len() + data.len() + tail.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(tail.as_bytes());
    body.into()
}

/// The HTTP client for rclone on loopback: no proxy (a proxy from the
/// environment must not see loopback calls or their password) and plain
/// HTTP. The TLS set-up is never used; it only spares reqwest from
/// looking for a process-wide crypto provider (see `opendal.rs`).
fn http_client() -> Result<opendal_reqwest::Client, RelayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| RelayError::new(RelayErrorKind::Other, format!("cannot set up TLS: {err}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    opendal_reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|err| {
            RelayError::new(
                RelayErrorKind::Other,
                format!("cannot set up the HTTP client for rclone: {err}"),
            )
            .with_source(err)
        })
}

/// A message cut to one short line.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// Locks `mutex`, also when a panic poisoned it: a map of folders stays
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::relay::conformance::servers;
    use crate::relay::conformance::{Fixture, pattern};

    #[test]
    fn rclone_errors_are_sorted_by_kind() {
        use RelayErrorKind as K;
        let what = "the relay file /clients/ab40/head.0 at rclone:gdrive:Escale";
        let cases: &[(u16, &str, RelayErrorKind)] = &[
            (404, "object not found", K::NotFound),
            (404, "error in ListJSON: directory not found", K::NotFound),
            (500, "File not found: 1AbCd", K::NotFound),
            (
                500,
                "error in ListJSON: failed to read directory entry: readdirent /r/a.txt: not a \
                 directory",
                K::NotFound,
            ),
            (
                500,
                "failed to find object: is a directory not a file",
                K::InvalidPath,
            ),
            (
                500,
                "didn't find section in config file (\"gdrive\")",
                K::InvalidUrl,
            ),
            (
                500,
                "couldn't fetch token: invalid_grant: maybe token expired? - try refreshing with \
                 \"rclone config reconnect gdrive:\"",
                K::AuthenticationFailed,
            ),
            (
                500,
                "InvalidAuthenticationToken: Access token has expired or is not yet valid.",
                K::AuthenticationFailed,
            ),
            (
                500,
                "HTTP error 401 (401 Unauthorized) returned body: \"\"",
                K::AuthenticationFailed,
            ),
            (
                500,
                "ssh: handshake failed: ssh: unable to authenticate, attempted methods [none \
                 password]",
                K::AuthenticationFailed,
            ),
            (
                500,
                "googleapi: Error 403: The user's Drive storage quota has been exceeded., \
                 storageQuotaExceeded",
                K::StorageFull,
            ),
            (
                500,
                "upload failed: path/insufficient_space/..",
                K::StorageFull,
            ),
            (500, "write /r/x: no space left on device", K::StorageFull),
            (
                500,
                "googleapi: Error 403: User Rate Limit Exceeded. Rate of requests for user exceed \
                 configured project quota., userRateLimitExceeded",
                K::Other,
            ),
            (
                500,
                "googleapi: Error 403: Insufficient Permission: Request had insufficient \
                 authentication scopes., insufficientPermissions",
                K::PermissionDenied,
            ),
            (500, "open /r/x: permission denied", K::PermissionDenied),
            (
                500,
                "AccessDenied: Access Denied\n\tstatus code: 403",
                K::PermissionDenied,
            ),
            (
                500,
                "EntityTooLarge: Your proposed upload exceeds the maximum allowed size",
                K::Unsupported,
            ),
            (
                500,
                "Get \"https://www.googleapis.com/x\": dial tcp: lookup www.googleapis.com: no \
                 such host",
                K::Unreachable,
            ),
            (
                500,
                "read tcp 10.0.0.2:5000->10.0.0.3:443: read: connection reset by peer",
                K::Interrupted,
            ),
            (500, "context deadline exceeded", K::Timeout),
            // Numbers alone mean nothing: hex names are full of them.
            (
                500,
                "odd failure in clients/ab401cd4043/objects/5071",
                K::Other,
            ),
        ];
        for (status, message, kind) in cases {
            let err = classify(*status, message, what, "gdrive");
            assert_eq!(err.kind(), *kind, "{message}: {err}");
            if *kind == K::InvalidUrl {
                assert!(err.to_string().contains("`rclone config`"), "{err}");
                assert!(err.to_string().contains("\"gdrive\""), "{err}");
            } else {
                assert!(err.to_string().contains(what), "{message}: {err}");
            }
            if *kind == K::AuthenticationFailed {
                assert!(
                    err.to_string()
                        .contains("run `rclone config reconnect gdrive:`"),
                    "{err}"
                );
            }
            assert!(
                std::error::Error::source(&err).is_some(),
                "{message}: the cause is lost"
            );
        }
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("a-b_c.d~e", false), "a-b_c.d~e");
        assert_eq!(encode("local:/tmp/x y", false), "local%3A%2Ftmp%2Fx%20y");
        assert_eq!(encode("été/[x]&", true), "%C3%A9t%C3%A9/%5Bx%5D%26");
    }

    #[test]
    fn the_upload_form_carries_the_exact_name() {
        let body = multipart("BOUND", "résumé ✓.txt", b"data");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            text,
            "--BOUND\r\nContent-Disposition: form-data; name=\"file\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93.txt\r\nContent-Type: \
             application/octet-stream\r\n\r\ndata\r\n--BOUND--\r\n"
        );
    }

    #[test]
    fn reads_reach_folders_with_brackets_from_a_parent() {
        assert_eq!(
            serve_location("gdrive", "Escale/Reports"),
            ("gdrive:Escale/Reports".to_owned(), String::new())
        );
        assert_eq!(
            serve_location("local", "/srv/share [old]/relay"),
            ("local:/srv/".to_owned(), "share [old]/relay/".to_owned())
        );
        assert_eq!(
            serve_location("b2", "x]y"),
            ("b2:".to_owned(), "x]y/".to_owned())
        );
        assert_eq!(serve_location("b2", ""), ("b2:".to_owned(), String::new()));
    }

    #[test]
    fn content_ranges_give_the_total_size() {
        assert_eq!(content_range_total("bytes 0-9/123"), Some(123));
        assert_eq!(content_range_total("bytes 10-5/6"), Some(6));
        assert_eq!(content_range_total("bytes 0--1/0"), Some(0));
        assert_eq!(content_range_total("bytes */*"), None);
    }

    /// A relay on `url` with `secrets`, as the concrete type so that tests
    /// can reach its rclone process.
    fn open_rclone(url: &str, secrets: &Secrets) -> RcloneRelay {
        RcloneRelay::new(&RelayUrl::parse(url).unwrap(), secrets).unwrap()
    }

    #[test]
    fn folders_are_named_as_rclone_writes_them() {
        let sub = RelayPath::new("clients/ab").unwrap();
        for (url, root, inside) in [
            (
                "rclone:gdrive:Escale",
                "gdrive:Escale",
                "gdrive:Escale/clients/ab",
            ),
            ("rclone:b2:", "b2:", "b2:clients/ab"),
            ("rclone:nas:/", "nas:/", "nas:/clients/ab"),
        ] {
            let relay = open_rclone(url, &Secrets::default());
            assert_eq!(relay.dir_fs(&RelayPath::root()), root);
            assert_eq!(relay.dir_fs(&sub), inside);
        }
    }

    #[tokio::test]
    async fn a_missing_rclone_is_refused_with_how_to_install_it() {
        let secrets = Secrets {
            rclone_binary: Some("/nonexistent/escale-test/rclone".into()),
            ..Secrets::default()
        };
        let relay =
            crate::relay::open_with(&RelayUrl::parse("rclone:gdrive:Escale").unwrap(), &secrets)
                .unwrap();
        let err = relay.list(&RelayPath::root()).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::Unsupported, "{err}");
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("/nonexistent/escale-test/rclone"), "{text}");
        assert!(text.contains(daemon::INSTALL_URL), "{text}");
        assert!(text.contains(RCLONE_ENV), "{text}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_old_rclone_is_refused_with_how_to_install_a_new_one() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("rclone");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = version ] && { echo 'rclone v1.53.3'; exit 0; }\n\
             echo 'Error: unknown flag: --ask-password' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let secrets = Secrets {
            rclone_binary: Some(fake),
            ..Secrets::default()
        };
        // A script just written can be "busy" for an instant while another
        // test's process is being started: try again then.
        let mut attempts = 0;
        let err = loop {
            let relay = open_rclone("rclone:gdrive:Escale", &secrets);
            let err = relay.list(&RelayPath::root()).await.unwrap_err();
            attempts += 1;
            if !err.to_string().contains("busy") || attempts == 5 {
                break err;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(err.kind(), RelayErrorKind::Unsupported, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("version 1.53") && text.contains("too old"),
            "{text}"
        );
        assert!(text.contains(daemon::INSTALL_URL), "{text}");
    }

    /// The harness's rclone and its configuration (a `local` remote).
    fn harness_secrets(vars: &HashMap<String, String>) -> Secrets {
        Secrets {
            rclone_binary: Some(vars["RCLONE_BIN"].clone().into()),
            rclone_config: Some(vars["RCLONE_CONFIG"].clone().into()),
            ..Secrets::default()
        }
    }

    /// The harness's `local` remote, or `None` without servers.
    async fn local_remote() -> Option<Fixture> {
        let vars = servers::vars()?;
        let relay = open_rclone(&vars["RCLONE_URL"], &harness_secrets(&vars));
        Some(Fixture {
            relay: Arc::new(relay),
            _guard: Box::new(()),
        })
    }

    /// An rclone `webdav` remote on the harness's nginx, configured in a
    /// file of its own, or `None` without servers: the same backend over a
    /// network storage, with rclone's WebDAV client doing the renames.
    async fn webdav_remote() -> Option<Fixture> {
        let vars = servers::vars()?;
        let tmp = tempfile::tempdir().unwrap();
        let rclone = &vars["RCLONE_BIN"];
        let obscured = std::process::Command::new(rclone)
            .args(["obscure", &vars["WEBDAV_PASSWORD"]])
            .output()
            .unwrap();
        assert!(obscured.status.success(), "rclone obscure failed");
        // `relay-servers.sh run` exports RCLONE_WEBDAV_URL and friends for
        // its rclone_webdav server, which rclone reads as options of every
        // webdav remote; options in a connection string outrank them.
        let config = tmp.path().join("rclone.conf");
        std::fs::write(
            &config,
            format!(
                "[dav]\ntype = alias\nremote = :webdav,url='{}',vendor=other,user='{}',pass='{}':\n",
                vars["WEBDAV_HTTP_URL"],
                vars["WEBDAV_USER"],
                String::from_utf8(obscured.stdout).unwrap().trim()
            ),
        )
        .unwrap();
        // The relay folder is the test's to make: the backend never does.
        let made = std::process::Command::new(rclone)
            .args(["mkdir", "dav:rclone-relay"])
            .env("RCLONE_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "rclone mkdir dav:rclone-relay failed"
        );
        let secrets = Secrets {
            rclone_binary: Some(rclone.into()),
            rclone_config: Some(config),
            ..Secrets::default()
        };
        Some(Fixture {
            relay: Arc::new(open_rclone("rclone:dav:rclone-relay", &secrets)),
            _guard: Box::new(tmp),
        })
    }

    /// The conformance suite through the `local` remote. rclone lists a
    /// folder in one answer, however big, so there is no paging to reach:
    /// 1,000 files are written through the relay here, and a folder of
    /// 5,000 is listed by its own test below (each write is four calls to
    /// rclone, which take a minute for 5,000 on a busy two-core machine).
    mod local_remote {
        async fn setup() -> Option<crate::relay::conformance::Fixture> {
            super::local_remote().await
        }
        crate::relay::conformance::relay_conformance_tests!(
            setup,
            many_entries = 1_000,
            ignore = "needs scripts/relay-servers.sh"
        );
    }

    /// The conformance suite through an rclone `webdav` remote on nginx.
    mod webdav_remote {
        async fn setup() -> Option<crate::relay::conformance::Fixture> {
            super::webdav_remote().await
        }
        crate::relay::conformance::relay_conformance_tests!(
            setup,
            many_entries = 300,
            ignore = "needs scripts/relay-servers.sh"
        );
    }

    /// A fresh name for a test's own folder.
    fn fresh(prefix: &str) -> String {
        format!("{prefix}-{}", hex::encode(crate::ids::random_bytes::<6>()))
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_folder_of_5000_files_is_listed_whole() {
        let Some(vars) = servers::vars() else { return };
        let relay = open_rclone(&vars["RCLONE_URL"], &harness_secrets(&vars));
        let name = fresh("five-thousand");
        // Written straight into the remote's folder: the listing is what
        // is tested here, and writes through the relay are tested above.
        let local = Path::new(&vars["RCLONE_DATA"]).join("relay").join(&name);
        std::fs::create_dir(&local).unwrap();
        for i in 0..5_000 {
            std::fs::write(local.join(format!("entry-{i:05}")), i.to_string()).unwrap();
        }
        std::fs::write(local.join(format!("{TEMP_PREFIX}0011")), "x").unwrap();
        let dir = RelayPath::root().join(&name).unwrap();
        relay.list(&RelayPath::root()).await.unwrap();
        let started = Instant::now();
        let listed = relay.list(&dir).await.unwrap();
        eprintln!(
            "listed 5,000 files through rclone in {:?}",
            started.elapsed()
        );
        assert_eq!(listed.len(), 5_000, "the temporary is hidden, nothing lost");
        for (i, entry) in listed.iter().enumerate() {
            assert_eq!(entry.name, format!("entry-{i:05}"));
            assert_eq!(entry.size, Some(i.to_string().len() as u64));
        }
        relay.clear_leftovers(&dir).await.unwrap();
        assert!(!local.join(format!("{TEMP_PREFIX}0011")).exists());
        std::fs::remove_dir_all(&local).unwrap();
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn an_unknown_remote_names_rclone_config() {
        let Some(vars) = servers::vars() else { return };
        let relay = open_rclone("rclone:no-such-remote:/x", &harness_secrets(&vars));
        let err = relay.list(&RelayPath::root()).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidUrl, "{err}");
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("\"no-such-remote\""), "{text}");
        assert!(text.contains("`rclone config`"), "{text}");
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_missing_relay_folder_is_never_made() {
        let Some(vars) = servers::vars() else { return };
        let secrets = harness_secrets(&vars);
        let folder = Path::new(&vars["RCLONE_DATA"]).join(fresh("missing"));
        let relay = open_rclone(&format!("rclone:local:{}", folder.display()), &secrets);
        let root = RelayPath::root();
        let sub = RelayPath::new("clients").unwrap();
        let file = RelayPath::new("escale-repo.json").unwrap();
        for err in [
            relay.list(&root).await.unwrap_err(),
            relay.create_dir(&root).await.unwrap_err(),
            relay.create_dir(&sub).await.unwrap_err(),
            relay
                .write(&file, Bytes::from_static(b"{}"))
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        }
        assert!(!folder.exists(), "{} was made", folder.display());

        // A relay folder that goes away after it was seen is not made again
        // either: a local remote checks it at every write.
        std::fs::create_dir(&folder).unwrap();
        relay.create_dir(&sub).await.unwrap();
        relay
            .write(&sub.join("a").unwrap(), Bytes::from_static(b"a"))
            .await
            .unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        let err = relay
            .write(&sub.join("b").unwrap(), Bytes::from_static(b"b"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let err = relay.create_dir(&sub).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        assert!(!folder.exists(), "{} was made again", folder.display());
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_killed_rclone_is_started_again() {
        let Some(vars) = servers::vars() else { return };
        let relay = open_rclone(&vars["RCLONE_URL"], &harness_secrets(&vars));
        let dir = RelayPath::root().join(&fresh("restart")).unwrap();
        relay.create_dir(&dir).await.unwrap();
        let kill = |pid: u32| {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {pid}");
        };

        // Killed between two calls.
        let first = relay.running_daemon().await.unwrap().pid();
        kill(first);
        let small = dir.join("small").unwrap();
        relay
            .write(&small, Bytes::from_static(b"after"))
            .await
            .unwrap();
        assert_eq!(relay.read(&small, None).await.unwrap(), &b"after"[..]);
        let second = relay.running_daemon().await.unwrap().pid();
        assert_ne!(first, second);

        // Killed in the middle of a 100 MB upload: the write is done again.
        let big = dir.join("big").unwrap();
        let data = Bytes::from(pattern(100_000_000, 7));
        let writing = {
            let (big, data) = (big.clone(), data.clone());
            let relay = &relay;
            async move { relay.write(&big, data).await }
        };
        let killing = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            kill(second);
        };
        let (written, ()) = tokio::join!(writing, killing);
        written.unwrap();
        assert!(relay.read(&big, None).await.unwrap() == data);
        let third = relay.running_daemon().await.unwrap().pid();
        assert_ne!(second, third);
        relay.clear_leftovers(&dir).await.unwrap();
        let listed: Vec<String> = std::fs::read_dir(
            Path::new(&vars["RCLONE_DATA"])
                .join("relay")
                .join(dir.as_str()),
        )
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
        assert_eq!(listed.len(), 2, "leftovers remain: {listed:?}");

        // Nothing is left running once the relay is gone.
        drop(relay);
        #[cfg(target_os = "linux")]
        assert!(
            !Path::new(&format!("/proc/{third}")).exists(),
            "rclone {third} still runs"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn the_watchdog_stops_rclone_when_escale_goes_away() {
        let Some(vars) = servers::vars() else { return };
        let relay = open_rclone(&vars["RCLONE_URL"], &harness_secrets(&vars));
        relay.list(&RelayPath::root()).await.unwrap();
        let daemon = relay.running_daemon().await.unwrap();
        assert!(daemon.alive());
        // What the kernel does to the pipe when Escale ends in any way.
        daemon.close_watchdog_pipe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while daemon.alive() {
            assert!(
                Instant::now() < deadline,
                "rclone still runs after its watchdog's pipe closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(daemon);
        // The relay carries on with a new rclone.
        relay.list(&RelayPath::root()).await.unwrap();
    }
}
