//! The `file://` backend: a relay in a folder of this computer, typically a
//! mounted network share (SMB, NFS) or a synced cloud-drive folder.
//!
//! Every operation runs as one blocking task on tokio's blocking pool, so
//! a slow share or a big file never stalls the async threads, and one
//! operation costs one hop rather than one per system call.
//!
//! Writes are atomic for readers: the data goes to a uniquely named
//! temporary file beside the target (`.escale-tmp-` and random hex),
//! is flushed to disk, then renamed over the target. Other clients reading
//! the same share see the old file or the new one, never half of one.
//! Temporaries are hidden from listings; one left behind by a crash is
//! removed by a later listing of its folder once it is clearly abandoned.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{Capabilities, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath};

/// Names starting with this are the backend's own temporaries, never relay
/// files: the relay format's names are opaque hex and never start with `.`.
/// The rclone backend names its temporaries the same way.
pub(super) const TEMP_PREFIX: &str = ".escale-tmp-";

/// How old a temporary must be before a listing removes it. Far longer
/// than any single write of a few-MiB object, even over a slow share, so a
/// write in progress on another computer is never cut short.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A relay in a local or mounted folder.
#[derive(Debug, Clone)]
pub(crate) struct FileRelay {
    /// The relay's folder, as configured; checked to exist at opening.
    root: PathBuf,
}

impl FileRelay {
    /// Opens the relay in `root`, which must be an existing folder.
    ///
    /// A missing root is refused rather than created: it usually means a
    /// network share that is not mounted, and writing into the empty mount
    /// point would split the relay in two.
    pub(crate) fn new(root: PathBuf) -> Result<Self, RelayError> {
        let what = format!("the relay folder {}", root.display());
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(FileRelay { root }),
            Ok(_) => Err(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} is a file, not a folder"),
            )),
            Err(err) => Err(RelayError::from_io(err, &what)),
        }
    }

    /// The local path of `path`, built component by component.
    ///
    /// Validation of [`RelayPath`] already rules out `..` and absolute
    /// paths; this also refuses a component that the platform would read
    /// as more than a plain name (on Windows, `C:x` carries a drive and
    /// would replace the root when joined).
    fn local(&self, path: &RelayPath) -> Result<PathBuf, RelayError> {
        let mut local = self.root.clone();
        for name in path.components() {
            let mut parts = Path::new(name).components();
            match (parts.next(), parts.next()) {
                (Some(Component::Normal(part)), None) if part == OsStr::new(name) => {
                    local.push(part);
                }
                _ => {
                    return Err(RelayError::new(
                        RelayErrorKind::InvalidPath,
                        format!(
                            "the relay path {path} cannot be stored in the folder {} on this \
                             system (\"{name}\" is not a plain name here)",
                            self.root.display()
                        ),
                    ));
                }
            }
        }
        Ok(local)
    }
}

/// Refuses to go through a symbolic link below the root, so that a link
/// planted in a shared folder cannot lead reads, writes or deletions
/// elsewhere on this computer. The root itself may be a link: the user
/// chose it. Components that do not exist yet end the walk; the operation
/// itself then reports them.
fn refuse_links(root: &Path, path: &RelayPath) -> Result<(), RelayError> {
    let mut local = root.to_path_buf();
    for name in path.components() {
        local.push(name);
        match fs::symlink_metadata(&local) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(RelayError::new(
                    RelayErrorKind::InvalidPath,
                    format!(
                        "{} is a symbolic link; Escale does not follow links inside the relay \
                         folder",
                        local.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Runs `work` on the blocking pool. A panic inside is carried on to the
/// caller as a panic, not turned into an error nobody expects.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RelayError> + Send + 'static,
) -> Result<T, RelayError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(RelayError::new(
            RelayErrorKind::Interrupted,
            "a relay operation was cancelled because Escale is stopping",
        )
        .with_source(err)),
    }
}

/// How messages name a local folder of the relay.
fn folder(local: &Path) -> String {
    format!("the relay folder {}", local.display())
}

/// How messages name a local file of the relay.
fn file(local: &Path) -> String {
    format!("the relay file {}", local.display())
}

/// Refuses to write over or delete the root, which is a folder the user
/// chose, not a relay file; `op` completes "cannot … the relay folder".
/// The refusal to remove a folder `what` that still holds something.
pub(crate) fn not_empty(what: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidPath,
        format!("{what} is not empty, so it was left in place"),
    )
}

fn refuse_root(path: &RelayPath, root: &Path, op: &str) -> Result<(), RelayError> {
    if path.is_root() {
        return Err(RelayError::new(
            RelayErrorKind::InvalidPath,
            format!("cannot {op} the relay folder {} itself", root.display()),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Relay for FileRelay {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranged_read: true,
            atomic_write: true,
            list_sizes: true,
            max_file_size: None,
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        let local = self.local(dir)?;
        let (root, dir) = (self.root.clone(), dir.clone());
        blocking(move || {
            refuse_links(&root, &dir)?;
            list_blocking(&local)
        })
        .await
    }

    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        let local = self.local(path)?;
        let (root, path) = (self.root.clone(), path.clone());
        blocking(move || {
            refuse_links(&root, &path)?;
            read_blocking(&local, range).map_err(|err| RelayError::from_io(err, &file(&local)))
        })
        .await
    }

    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        refuse_root(path, &self.root, "write over")?;
        let local = self.local(path)?;
        let (root, path) = (self.root.clone(), path.clone());
        blocking(move || {
            refuse_links(&root, &path)?;
            write_blocking(&local, &data)
        })
        .await
    }

    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        refuse_root(path, &self.root, "delete")?;
        let local = self.local(path)?;
        let (root, path) = (self.root.clone(), path.clone());
        blocking(move || {
            refuse_links(&root, &path)?;
            fs::remove_file(&local).map_err(|err| RelayError::from_io(err, &file(&local)))
        })
        .await
    }

    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        refuse_root(path, &self.root, "remove")?;
        let local = self.local(path)?;
        let (root, path) = (self.root.clone(), path.clone());
        blocking(move || {
            refuse_links(&root, &path)?;
            fs::remove_dir(&local).map_err(|err| match err.kind() {
                io::ErrorKind::DirectoryNotEmpty => not_empty(&folder(&local)).with_source(err),
                _ => RelayError::from_io(err, &folder(&local)),
            })
        })
        .await
    }

    async fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        let local = self.local(dir)?;
        blocking(move || {
            let entries = match fs::read_dir(&local) {
                Ok(entries) => entries,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return Err(RelayError::from_io(err, &folder(&local))),
            };
            for entry in entries.flatten() {
                let is_temporary = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(TEMP_PREFIX));
                if is_temporary && entry.file_type().is_ok_and(|kind| kind.is_file()) {
                    match fs::remove_file(entry.path()) {
                        Err(err) if err.kind() != io::ErrorKind::NotFound => {
                            return Err(RelayError::from_io(err, &file(&entry.path())));
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        let local = self.local(path)?;
        let (root, path) = (self.root.clone(), path.clone());
        blocking(move || {
            refuse_links(&root, &path)?;
            // Never the relay folder itself: when a network share is
            // unmounted, its mount point is an empty local folder, or gone,
            // and recreating the relay there would fill the local disk with
            // what the other computers never see.
            if !root.is_dir() {
                return Err(RelayError::from_io(
                    io::Error::from(io::ErrorKind::NotFound),
                    &format!("the relay folder {}", root.display()),
                ));
            }
            // `create_dir_all` succeeds when another client made the folder
            // in the meantime, which is what racing clients need.
            fs::create_dir_all(&local).map_err(|err| match err.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => RelayError::new(
                    RelayErrorKind::InvalidPath,
                    format!(
                        "cannot create {}: a file stands where a folder should be",
                        folder(&local)
                    ),
                )
                .with_source(err),
                _ => RelayError::from_io(err, &folder(&local)),
            })
        })
        .await
    }
}

/// [`Relay::list`] on the blocking pool.
fn list_blocking(local: &Path) -> Result<Vec<RelayEntry>, RelayError> {
    let io_error = |err| RelayError::from_io(err, &folder(local));
    let mut entries = Vec::new();
    let now = SystemTime::now();
    for entry in fs::read_dir(local).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let Ok(name) = entry.file_name().into_string() else {
            // Escale never writes such a name, and it could not be read
            // back through a RelayPath: someone else's file.
            tracing::warn!(
                folder = %local.display(),
                name = ?entry.file_name(),
                "ignoring a relay entry whose name is not valid Unicode"
            );
            continue;
        };
        // Entries may vanish between the listing and their metadata when
        // another client deletes them: such an entry is simply gone.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(RelayError::from_io(err, &file(&entry.path()))),
        };
        if name.starts_with(TEMP_PREFIX) {
            remove_if_stale(&entry.path(), &meta, now);
            continue;
        }
        let file_type = meta.file_type();
        if file_type.is_dir() {
            entries.push(RelayEntry {
                name,
                is_dir: true,
                size: None,
            });
        } else if file_type.is_file() {
            entries.push(RelayEntry {
                name,
                is_dir: false,
                size: Some(meta.len()),
            });
        }
        // Links and special files are left out: the relay never holds
        // them, and following them could lead outside the relay.
    }
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Removes a temporary abandoned by a crash, best effort: a failure only
/// means it is tried again at the next listing.
fn remove_if_stale(path: &Path, meta: &fs::Metadata, now: SystemTime) {
    let stale = meta
        .modified()
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|age| age > STALE_TEMP_AGE);
    if stale && meta.is_file() {
        match fs::remove_file(path) {
            Ok(()) => {
                tracing::debug!(path = %path.display(), "removed an abandoned temporary file")
            }
            Err(err) => tracing::debug!(
                path = %path.display(),
                error = %err,
                "could not remove an abandoned temporary file"
            ),
        }
    }
}

/// [`Relay::read`] on the blocking pool; the caller names the file in
/// the error.
fn read_blocking(local: &Path, range: Option<Range<u64>>) -> io::Result<Bytes> {
    let mut handle = fs::File::open(local)?;
    let meta = handle.metadata()?;
    if meta.is_dir() {
        return Err(io::ErrorKind::IsADirectory.into());
    }
    let len = meta.len();
    let Some(range) = range else {
        let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        handle.read_to_end(&mut data)?;
        return Ok(data.into());
    };
    let start = range.start.min(len);
    let end = range.end.min(len);
    if start >= end {
        return Ok(Bytes::new());
    }
    let count =
        usize::try_from(end - start).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut data = vec![0; count];
    handle.seek(SeekFrom::Start(start))?;
    // The file was opened before any rename can replace it, so its length
    // holds; a short read means it was truncated in place by someone else,
    // reported as an interrupted transfer and retried.
    handle.read_exact(&mut data)?;
    Ok(data.into())
}

/// [`Relay::write`] on the blocking pool: temporary file, flush, rename.
fn write_blocking(local: &Path, data: &[u8]) -> Result<(), RelayError> {
    let Some(dir) = local.parent() else {
        return Err(RelayError::new(
            RelayErrorKind::InvalidPath,
            format!("{} has no folder", file(local)),
        ));
    };
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}",
        hex::encode(crate::ids::random_bytes::<8>())
    ));
    // `create_new` makes the name ours alone even if two writers drew the
    // same random name; a missing parent folder shows up here.
    let mut handle = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                RelayError::from_io(err, &folder(dir))
            }
            _ => RelayError::from_io(err, &file(local)),
        })?;
    let written = handle
        .write_all(data)
        .and_then(|()| handle.sync_all())
        .and_then(|()| {
            drop(handle);
            fs::rename(&temp, local)
        });
    if let Err(err) = written {
        // Best effort: if even this fails, a later listing removes it.
        let _ = fs::remove_file(&temp);
        return Err(RelayError::from_io(err, &file(local)));
    }
    sync_dir(dir);
    Ok(())
}

/// Makes the rename itself durable, so that a power cut after a write
/// reported success cannot bring back the old file. Best effort: some
/// network file systems refuse to sync a folder, and Windows cannot open
/// one as a file at all.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(err) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(folder = %dir.display(), error = %err, "could not sync the relay folder");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::relay::conformance::{Fixture, pattern, relay_conformance_tests};

    async fn setup() -> Option<Fixture> {
        let tmp = tempfile::tempdir().unwrap();
        let relay = FileRelay::new(tmp.path().to_path_buf()).unwrap();
        Some(Fixture {
            relay: Arc::new(relay),
            _guard: Box::new(tmp),
        })
    }

    relay_conformance_tests!(setup, many_entries = 500);

    fn relay_in(tmp: &tempfile::TempDir) -> FileRelay {
        FileRelay::new(tmp.path().to_path_buf()).unwrap()
    }

    fn path(text: &str) -> RelayPath {
        RelayPath::new(text).unwrap()
    }

    fn temporaries(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[tokio::test]
    async fn writes_leave_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        relay.create_dir(&path("d")).await.unwrap();
        for i in 0..20 {
            relay
                .write(&path("d/f"), Bytes::from(pattern(1000 + i, i as u64)))
                .await
                .unwrap();
            relay
                .write(&path(&format!("g{i}")), Bytes::new())
                .await
                .unwrap();
        }
        assert!(temporaries(tmp.path()).is_empty());
        assert!(temporaries(&tmp.path().join("d")).is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_removes_its_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        // A folder where the file should go makes the final rename fail
        // after the temporary was written.
        relay.create_dir(&path("taken/inner")).await.unwrap();
        let err = relay
            .write(&path("taken"), Bytes::from_static(b"data"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
        assert!(temporaries(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn a_vanished_relay_folder_is_never_recreated() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("share");
        fs::create_dir(&root).unwrap();
        let relay = FileRelay::new(root.clone()).unwrap();
        fs::remove_dir(&root).unwrap();
        let error = relay.create_dir(&path("clients/x")).await.unwrap_err();
        assert_eq!(error.kind(), RelayErrorKind::NotFound);
        assert!(error.to_string().contains("does not exist"), "{error}");
        assert!(!root.exists(), "the unmounted relay folder was recreated");
    }

    #[tokio::test]
    async fn clearing_leftovers_removes_every_temporary_of_the_folder_only() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        fs::create_dir_all(tmp.path().join("own/journal")).unwrap();
        let fresh = tmp
            .path()
            .join(format!("own/{TEMP_PREFIX}0123456789abcdef"));
        let deeper = tmp
            .path()
            .join(format!("own/journal/{TEMP_PREFIX}0123456789abcdef"));
        fs::write(&fresh, b"killed mid-write a second ago").unwrap();
        fs::write(&deeper, b"not this folder").unwrap();
        fs::write(tmp.path().join("own/head.0"), b"kept").unwrap();
        relay.clear_leftovers(&path("own")).await.unwrap();
        assert!(!fresh.exists(), "a fresh leftover was kept");
        assert!(deeper.exists(), "a subfolder was cleared too");
        assert!(tmp.path().join("own/head.0").exists());
        relay.clear_leftovers(&path("missing")).await.unwrap();
    }

    #[tokio::test]
    async fn listings_hide_temporaries_and_remove_abandoned_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        let fresh = tmp.path().join(format!("{TEMP_PREFIX}0123456789abcdef"));
        let abandoned = tmp.path().join(format!("{TEMP_PREFIX}fedcba9876543210"));
        fs::write(&fresh, b"being written").unwrap();
        fs::write(&abandoned, b"left by a crash").unwrap();
        let two_days_ago = SystemTime::now() - 2 * STALE_TEMP_AGE;
        filetime::set_file_mtime(
            &abandoned,
            filetime::FileTime::from_system_time(two_days_ago),
        )
        .unwrap();
        relay
            .write(&path("real"), Bytes::from_static(b"x"))
            .await
            .unwrap();

        let names: Vec<_> = relay
            .list(&RelayPath::root())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["real"]);
        assert!(fresh.exists(), "a write in progress was removed");
        assert!(!abandoned.exists(), "an abandoned temporary was kept");
    }

    #[tokio::test]
    async fn readers_never_see_half_a_write() {
        const LEN: usize = 256 * 1024;
        let tmp = tempfile::tempdir().unwrap();
        let relay = Arc::new(relay_in(&tmp));
        let target = path("head");
        relay
            .write(&target, Bytes::from(vec![b'a'; LEN]))
            .await
            .unwrap();

        let writer = {
            let (relay, target) = (Arc::clone(&relay), target.clone());
            tokio::spawn(async move {
                for i in 0..40 {
                    let byte = if i % 2 == 0 { b'b' } else { b'a' };
                    relay
                        .write(&target, Bytes::from(vec![byte; LEN]))
                        .await
                        .unwrap();
                }
            })
        };
        while !writer.is_finished() {
            let data = relay.read(&target, None).await.unwrap();
            assert_eq!(data.len(), LEN, "a reader saw a partial file");
            assert!(
                data.iter().all(|&b| b == data[0]),
                "a reader saw two versions mixed"
            );
        }
        writer.await.unwrap();
    }

    #[test]
    fn a_missing_root_is_not_found_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("not mounted");
        let err = FileRelay::new(missing.clone()).unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            format!("the relay folder {} does not exist", missing.display())
        );

        let a_file = tmp.path().join("file");
        fs::write(&a_file, b"x").unwrap();
        let err = FileRelay::new(a_file.clone()).unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound);
        assert!(
            err.to_string().contains(&*a_file.to_string_lossy()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn errors_name_the_local_path() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        let err = relay.list(&path("nope")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the relay folder {} does not exist",
                tmp.path().join("nope").display()
            )
        );
        let err = relay
            .write(&path("nope/file"), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the relay folder {} does not exist",
                tmp.path().join("nope").display()
            )
        );
        assert_eq!(relay.describe(), tmp.path().display().to_string());
    }

    #[tokio::test]
    async fn the_root_itself_cannot_be_written_or_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        let root = RelayPath::root();
        let err = relay.write(&root, Bytes::new()).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath);
        assert_eq!(
            relay.delete(&root).await.unwrap_err().kind(),
            RelayErrorKind::InvalidPath
        );
        relay.create_dir(&root).await.unwrap();
        assert!(tmp.path().is_dir());
    }

    #[tokio::test]
    async fn files_and_folders_in_the_wrong_place_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        relay
            .write(&path("f"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        relay.create_dir(&path("d")).await.unwrap();

        let err = relay.create_dir(&path("f")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.create_dir(&path("f/sub")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.read(&path("d"), None).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        assert!(err.to_string().contains("is a folder"), "{err}");
        let err = relay.list(&path("f")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let err = relay.read(&path("f/x"), None).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
    }

    #[test]
    fn local_paths_stay_under_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        for text in ["", "a", "a/b/c", "...", "a..b/..c", "été/✓", "C:x", "a:b"] {
            let local = relay.local(&path(text)).unwrap();
            assert!(
                local.starts_with(tmp.path()),
                "{text} -> {}",
                local.display()
            );
            let below = local.strip_prefix(tmp.path()).unwrap();
            assert_eq!(below.components().count(), path(text).components().count());
            assert!(
                below
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{text} -> {}",
                local.display()
            );
        }
        for text in ["..", "../x", "a/../../x", "/etc/passwd", "a\\..\\..\\x"] {
            assert_eq!(
                RelayPath::new(text).unwrap_err().kind(),
                RelayErrorKind::InvalidPath,
                "{text}"
            );
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn links_inside_the_relay_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"private").unwrap();
        let relay_dir = tmp.path().join("relay");
        fs::create_dir(&relay_dir).unwrap();
        std::os::unix::fs::symlink(outside.path(), relay_dir.join("link")).unwrap();
        let relay = FileRelay::new(relay_dir).unwrap();

        let through = path("link/secret");
        let err = relay.read(&through, None).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay
            .write(&path("link/new"), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.delete(&through).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.list(&path("link")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.create_dir(&path("link/sub")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");

        assert!(relay.list(&RelayPath::root()).await.unwrap().is_empty());
        assert_eq!(fs::read(outside.path().join("secret")).unwrap(), b"private");
        assert!(!outside.path().join("new").exists());
        assert!(!outside.path().join("sub").exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_read_only_folder_is_permission_denied() {
        use std::os::unix::fs::PermissionsExt;

        let tmp = tempfile::tempdir().unwrap();
        let relay = relay_in(&tmp);
        relay.create_dir(&path("ro")).await.unwrap();
        relay
            .write(&path("ro/f"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        let ro = tmp.path().join("ro");
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();

        // Root ignores permissions; then there is nothing to test.
        let probe = ro.join("probe");
        if fs::write(&probe, b"").is_ok() {
            fs::remove_file(&probe).unwrap();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
            eprintln!("skipped: running with permissions that bypass file modes");
            return;
        }

        let write = relay.write(&path("ro/g"), Bytes::from_static(b"x")).await;
        let overwrite = relay.write(&path("ro/f"), Bytes::from_static(b"y")).await;
        let delete = relay.delete(&path("ro/f")).await;
        let mkdir = relay.create_dir(&path("ro/sub")).await;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();

        for (op, result) in [
            ("write", write),
            ("overwrite", overwrite),
            ("delete", delete),
            ("create_dir", mkdir),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), RelayErrorKind::PermissionDenied, "{op}: {err}");
            assert!(!err.is_retryable());
            assert!(
                err.to_string().contains(&*ro.to_string_lossy()),
                "{op}: {err}"
            );
        }
        assert_eq!(relay.read(&path("ro/f"), None).await.unwrap(), &b"x"[..]);
        assert!(temporaries(&ro).is_empty());
    }
}
