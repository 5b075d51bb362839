//! Access to the relay: the folder on shared storage through which clients
//! exchange encrypted files.
//!
//! Every kind of storage (a local or network folder, FTP, WebDAV, S3, SFTP,
//! rclone) sits behind one narrow trait, [`Relay`], with the five operations
//! the relay format needs: list a folder, read (a range of) a file, write a
//! whole file, delete a file, make a folder. Nothing more is asked of a
//! backend — no rename, no lock, no conditional write — because many
//! servers only pretend to offer those (a WebDAV `If-None-Match: *` that
//! nginx ignores, an FTP rename that silently overwrites). The format stays
//! correct with single-writer files instead.
//!
//! What differs between backends and matters for speed or safety is
//! declared in [`Capabilities`], and the engine adapts; failures come back
//! as a [`RelayError`] whose [`RelayErrorKind`] says whether a retry can
//! help. Paths inside the relay are [`RelayPath`]s, validated once when
//! built so that no backend can be led outside the relay root.
//!
//! A relay is named by an address ([`RelayUrl`]); [`open`] turns one into a
//! backend. Backends only ever see ciphertext: encryption, retries and
//! throttling are meant to wrap a `dyn Relay` rather than live inside each
//! backend.

mod error;
mod file;
mod ftp;
mod opendal;
mod rclone;
mod sftp;
mod tls;
mod url;

#[cfg(test)]
pub(crate) mod conformance;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

pub use error::{RelayError, RelayErrorKind};
pub(crate) use file::FileRelay;
pub(crate) use ftp::FtpRelay;
pub(crate) use opendal::{OpendalRelay, Secrets};
pub(crate) use rclone::RcloneRelay;
pub(crate) use sftp::SftpRelay;
pub(crate) use url::RelayUrl;

/// A path inside the relay: `/`-separated and relative to the relay root.
///
/// Validation happens once, here, so that backends can join a `RelayPath`
/// to their root without further checks: no component is empty, `.` or
/// `..`, and no path starts with `/`, so none can climb out of the root.
/// Backslashes are refused because Windows treats them as separators, NUL
/// because no storage accepts it, and other control characters because FTP
/// sends names inside commands where a line break would start a new one.
///
/// The empty path is the relay root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RelayPath(String);

impl RelayPath {
    /// Validates `path` (see the type's rules); `""` is the root.
    pub(crate) fn new(path: &str) -> Result<Self, RelayError> {
        if path.is_empty() {
            return Ok(RelayPath::root());
        }
        if path.starts_with('/') {
            return Err(invalid_path(
                path,
                "starts with '/'; relay paths are relative",
            ));
        }
        for component in path.split('/') {
            check_component(component, path)?;
        }
        Ok(RelayPath(path.to_owned()))
    }

    /// The relay root itself.
    pub(crate) fn root() -> Self {
        RelayPath(String::new())
    }

    /// Whether this is the relay root.
    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path of `name` inside this folder; `name` must be a single
    /// component (no `/`).
    pub(crate) fn join(&self, name: &str) -> Result<Self, RelayError> {
        if name.contains('/') {
            return Err(invalid_path(name, "is not a single name (it contains '/')"));
        }
        check_component(name, name)?;
        if self.is_root() {
            Ok(RelayPath(name.to_owned()))
        } else {
            Ok(RelayPath(format!("{}/{name}", self.0)))
        }
    }

    /// The path as text, without a leading `/`; `""` for the root.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder holding this path; `None` for the root only.
    pub(crate) fn parent(&self) -> Option<RelayPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((parent, _)) => RelayPath(parent.to_owned()),
            None => RelayPath::root(),
        })
    }

    /// The last component; `""` for the root.
    pub(crate) fn file_name(&self) -> &str {
        match self.0.rsplit_once('/') {
            Some((_, name)) => name,
            None => &self.0,
        }
    }

    /// The components from the root down; none for the root.
    pub(crate) fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }
}

impl fmt::Display for RelayPath {
    /// Shows the path with a leading `/` so that the root reads as `/`
    /// rather than as nothing in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// Refuses a component that could escape the root or break a protocol.
fn check_component(component: &str, whole: &str) -> Result<(), RelayError> {
    let reason = if component.is_empty() {
        "has an empty part (two '/' in a row, or one at the end)"
    } else if component == "." || component == ".." {
        "contains '.' or '..', which could lead outside the relay"
    } else if component.contains('\\') {
        "contains a backslash"
    } else if component.contains('\0') {
        "contains a NUL character"
    } else if component.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(invalid_path(whole, reason))
}

/// A refused relay path, naming it.
fn invalid_path(path: &str, reason: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidPath,
        format!("the relay path {path:?} {reason}"),
    )
}

/// One entry of a relay folder, as [`Relay::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelayEntry {
    /// The entry's name inside the folder (a single component).
    pub(crate) name: String,
    /// Whether the entry is a folder.
    pub(crate) is_dir: bool,
    /// The file's size in bytes, when the backend lists sizes (see
    /// [`Capabilities::list_sizes`]); `None` for folders.
    pub(crate) size: Option<u64>,
}

/// What a backend can do; the engine adapts to it (for example, without
/// ranged reads it fetches whole objects, and with a size limit it packs
/// smaller objects).
///
/// Capabilities describe cost and guarantees, never correctness of the
/// trait's contract: every backend honours every [`Relay`] method as
/// documented, emulating what its storage lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// Reading part of a file transfers only that part. Without it a
    /// ranged [`Relay::read`] still works but downloads the whole file.
    pub(crate) ranged_read: bool,
    /// A reader never sees a half-written file: a write replaces the old
    /// content at once. Without it the engine relies on authentication
    /// failures and retries (the two `head` slots of the relay format).
    pub(crate) atomic_write: bool,
    /// [`Relay::list`] reports file sizes, saving one request per file
    /// when the engine totals relay usage.
    pub(crate) list_sizes: bool,
    /// The largest file the storage accepts, when it has a limit.
    pub(crate) max_file_size: Option<u64>,
}

/// A relay backend: the five operations the relay format needs.
///
/// Implementations are shared between tasks and called concurrently, so
/// each method must be safe to run alongside any other. Paths are
/// relative to the relay root the backend was opened on. Every error names
/// the path concerned in plain words and has a [`RelayErrorKind`] that
/// says whether a retry can help.
#[async_trait::async_trait]
pub(crate) trait Relay: Send + Sync + fmt::Debug {
    /// What this backend can do, so the engine can adapt.
    fn capabilities(&self) -> Capabilities;

    /// The relay's address for messages, never containing a secret.
    fn describe(&self) -> String;

    /// The entries directly inside `dir`, in no particular order. A missing
    /// folder is [`RelayErrorKind::NotFound`]. Temporary files a backend
    /// makes for its own purposes are not listed.
    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError>;

    /// The whole file, or `range` of it. The range's end is exclusive and
    /// clamped to the file's end, so a range past the end gives fewer bytes
    /// or none, never an error. A missing file is
    /// [`RelayErrorKind::NotFound`].
    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError>;

    /// Creates or replaces the whole file.
    ///
    /// The parent folder must exist ([`RelayErrorKind::NotFound`]
    /// otherwise): the engine makes folders first, since some servers
    /// (Apache) refuse a PUT into a missing folder and others create it
    /// silently, and one behaviour everywhere is simpler to reason about.
    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError>;

    /// Deletes a file. A missing file is [`RelayErrorKind::NotFound`];
    /// callers that only want it gone treat that as done.
    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError>;

    /// Creates a folder and any missing parents; a folder that already
    /// exists is success, so that clients racing to create it both succeed.
    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError>;

    /// Removes an empty folder below the relay folder. A missing folder is
    /// [`RelayErrorKind::NotFound`]; a folder that still holds something is
    /// refused ([`RelayErrorKind::InvalidPath`]) rather than emptied, since
    /// what it holds may be another client's; the relay folder itself is
    /// never removed.
    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError>;

    /// Removes what interrupted writes of this backend left in `dir` (not
    /// in its subfolders). Called by a client on its own folders only, at
    /// the start of a cycle, when none of its own writes can be under way:
    /// a killed upload then takes no relay space for long. Backends whose
    /// writes leave nothing behind keep this default.
    async fn clear_leftovers(&self, _dir: &RelayPath) -> Result<(), RelayError> {
        Ok(())
    }
}

/// Opens the backend for `url`, with the secrets of the environment
/// ([`Secrets::from_env`]).
///
/// `file://`, FTP, FTPS, WebDAV, S3, SFTP and rclone relays exist in this
/// version; every other kind is refused with
/// [`RelayErrorKind::Unsupported`].
pub(crate) fn open(url: &RelayUrl) -> Result<Arc<dyn Relay>, RelayError> {
    open_with(url, &Secrets::from_env())
}

/// [`open`] with the secrets given.
pub(crate) fn open_with(url: &RelayUrl, secrets: &Secrets) -> Result<Arc<dyn Relay>, RelayError> {
    if let Some(relay) = OpendalRelay::open(url, secrets) {
        return Ok(Arc::new(relay?));
    }
    if let Some(relay) = FtpRelay::open(url, secrets) {
        return Ok(Arc::new(relay?));
    }
    match url {
        RelayUrl::File { root } => Ok(Arc::new(FileRelay::new(root.clone())?)),
        RelayUrl::Sftp { .. } => Ok(Arc::new(SftpRelay::open(url, secrets)?)),
        RelayUrl::Rclone { .. } => Ok(Arc::new(RcloneRelay::new(url, secrets)?)),
        other => Err(RelayError::new(
            RelayErrorKind::Unsupported,
            format!(
                "{} relays are not available in this version yet ({other})",
                other.kind_name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_keep_their_text() {
        for text in [
            "a",
            "a/b",
            "clients/0f3a/journal/17",
            "été 2026/résumé ✓.txt",
            ".hidden",
            "a..b",
        ] {
            let path = RelayPath::new(text).unwrap();
            assert_eq!(path.as_str(), text);
        }
        assert_eq!(RelayPath::new("").unwrap(), RelayPath::root());
    }

    #[test]
    fn paths_that_could_escape_or_break_protocols_are_refused() {
        for text in [
            "/a",
            "a/",
            "a//b",
            ".",
            "..",
            "a/..",
            "../a",
            "a/./b",
            "a\\b",
            "..\\a",
            "a\0b",
            "a\nb",
            "a\r\nDELE b",
            "//",
        ] {
            let err = RelayPath::new(text).unwrap_err();
            assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{text:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn join_accepts_only_single_names() {
        let root = RelayPath::root();
        let clients = root.join("clients").unwrap();
        assert_eq!(clients.as_str(), "clients");
        assert_eq!(clients.join("x y").unwrap().as_str(), "clients/x y");
        for bad in ["", ".", "..", "a/b", "/", "a\\b", "a\0"] {
            assert_eq!(
                clients.join(bad).unwrap_err().kind(),
                RelayErrorKind::InvalidPath,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parent_and_file_name_walk_up_to_the_root() {
        let path = RelayPath::new("a/b/c.txt").unwrap();
        assert_eq!(path.file_name(), "c.txt");
        let parent = path.parent().unwrap();
        assert_eq!(parent.as_str(), "a/b");
        assert_eq!(parent.parent().unwrap().as_str(), "a");
        assert_eq!(
            parent.parent().unwrap().parent().unwrap(),
            RelayPath::root()
        );
        assert_eq!(RelayPath::root().parent(), None);
        assert_eq!(RelayPath::root().file_name(), "");
        assert_eq!(RelayPath::new("top").unwrap().file_name(), "top");
        assert_eq!(path.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        assert_eq!(RelayPath::root().components().count(), 0);
        assert_eq!(path.to_string(), "/a/b/c.txt");
        assert_eq!(RelayPath::root().to_string(), "/");
    }

    #[test]
    fn every_kind_of_relay_opens_without_connecting() {
        let tmp = tempfile::tempdir().unwrap();
        let url = RelayUrl::File {
            root: tmp.path().to_path_buf(),
        };
        let relay = open(&url).unwrap();
        assert!(relay.capabilities().atomic_write);

        // Opening a network relay sends nothing yet: these hosts do not
        // exist, and nothing is asked of them until the first call.
        for address in [
            "ftp://ana@files.example.com/escale",
            "ftps://ana@files.example.com:2121/escale",
            "webdavs://ana@cloud.example.com/dav/escale",
            "s3://bucket/escale?endpoint=https://s3.example.com&region=eu-west-1",
            "sftp://ana@files.example.com/srv/escale",
            "rclone:remote:escale",
        ] {
            let url = RelayUrl::parse(address).unwrap();
            let secrets = Secrets {
                s3_keys: Some(("id".into(), "secret".into())),
                ..Secrets::default()
            };
            let relay = open_with(&url, &secrets).unwrap_or_else(|e| panic!("{address}: {e}"));
            assert_eq!(relay.describe(), url.to_string(), "{address}");
        }
    }
}
