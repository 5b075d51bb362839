//! The repository's hidden work folder inside the synced folder.
//!
//! Temporary downloads live there, on the same filesystem as their targets
//! so that the final rename is atomic; so do the versions that sync
//! replaced or deleted, so that nothing is silently lost.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::path::{RelPath, WORK_FOLDER};
use crate::sync::planner::format_utc_minute;
use crate::sync::{Problem, Session};

/// The work folder of one synced folder.
#[derive(Debug, Clone)]
pub(crate) struct WorkFolder {
    root: PathBuf,
}

impl WorkFolder {
    /// The work folder of `folder`; created on first use.
    pub(crate) fn new(folder: &Path) -> Self {
        WorkFolder {
            root: folder.join(WORK_FOLDER),
        }
    }

    /// The folder of temporary downloads.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The folder holding versions that sync replaced or deleted.
    pub(crate) fn versions_dir(&self) -> PathBuf {
        self.root.join("versions")
    }

    /// The folder of chunks received ahead of the file they belong to (a
    /// large file that travels through the relay in windows).
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    fn staged_path(&self, id: &ChunkId) -> PathBuf {
        self.staging_dir().join(id.to_string())
    }

    /// Keeps a chunk's plaintext until the file that needs it arrives;
    /// written through a temporary file so a crash leaves no torn chunk.
    pub(crate) fn stage(&self, id: &ChunkId, data: &[u8]) -> io::Result<()> {
        fs::create_dir_all(self.staging_dir())?;
        let temp = self.temp_path()?;
        let mut out = fs::File::create(&temp)?;
        out.write_all(data)?;
        out.sync_all()?;
        drop(out);
        fs::rename(&temp, self.staged_path(id))
    }

    /// A staged chunk's plaintext, if present.
    pub(crate) fn staged(&self, id: &ChunkId) -> Option<Vec<u8>> {
        fs::read(self.staged_path(id)).ok()
    }

    /// Deletes a staged chunk.
    pub(crate) fn unstage(&self, id: &ChunkId) -> io::Result<()> {
        match fs::remove_file(self.staged_path(id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// A new, unique temporary file path (the file is not created).
    pub(crate) fn temp_path(&self) -> io::Result<PathBuf> {
        let dir = self.tmp_dir();
        fs::create_dir_all(&dir)?;
        Ok(dir.join(format!(
            "download-{}",
            hex::encode(crate::ids::random_bytes::<8>())
        )))
    }

    /// Removes temporary files left by an interrupted cycle.
    pub(crate) fn clear_temporaries(&self) -> io::Result<()> {
        match fs::remove_dir_all(self.tmp_dir()) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Moves the local file at `path` into the versions folder, as
    /// `versions/<dir>/<stem> (<UTC time>).<ext>`, and returns where it went.
    ///
    /// The kept file's modification time becomes `now_ns`: versions are
    /// deleted [`keep_versions`](crate::RepositoryConfig::keep_versions)
    /// after they were set aside, and the file's own time says when it was
    /// last edited, which may be years earlier.
    pub(crate) fn keep_version(
        &self,
        folder: &Path,
        path: &RelPath,
        now_ns: i64,
    ) -> io::Result<PathBuf> {
        let source = path.to_local(folder);
        let name = path.file_name();
        let (stem, extension) = match name.rfind('.') {
            Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
            _ => (name, ""),
        };
        let stamp = format_utc_minute(now_ns);
        let dir = match path.parent() {
            Some(parent) => parent.to_local(&self.versions_dir()),
            None => self.versions_dir(),
        };
        fs::create_dir_all(&dir)?;
        let mut target = dir.join(format!("{stem} ({stamp}){extension}"));
        let mut counter = 2;
        while target.exists() {
            target = dir.join(format!("{stem} ({stamp} {counter}){extension}"));
            counter += 1;
        }
        fs::rename(&source, &target)?;
        let set_aside = filetime::FileTime::from_unix_time(
            now_ns.div_euclid(1_000_000_000),
            // In 0..1e9, so it fits.
            now_ns.rem_euclid(1_000_000_000) as u32,
        );
        if filetime::set_file_mtime(&target, set_aside).is_err() {
            // Only a file's owner may set its time (a shared folder where
            // someone else created the file): a copy is ours.
            let copy = self.temp_path()?;
            fs::copy(&target, &copy)?;
            filetime::set_file_mtime(&copy, set_aside)?;
            fs::rename(&copy, &target)?;
        }
        Ok(target)
    }

    /// Deletes the versions set aside more than `keep` before `now`, and
    /// the folders left empty; returns how many files were deleted.
    pub(crate) fn prune_versions(&self, keep: Duration, now: SystemTime) -> io::Result<u64> {
        let Some(limit) = now.checked_sub(keep) else {
            return Ok(0);
        };
        match prune_dir(&self.versions_dir(), limit) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
            other => other,
        }
    }
}

/// Deletes what in `dir` was set aside before `limit`, then the folders
/// left empty below `dir` (not `dir` itself).
fn prune_dir(dir: &Path, limit: SystemTime) -> io::Result<u64> {
    let mut deleted = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // The entry itself, never what a link points to.
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            deleted += prune_dir(&path, limit)?;
            // Fails while something newer is still inside: kept then.
            let _ = fs::remove_dir(&path);
        } else if meta.modified()? < limit {
            fs::remove_file(&path)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// State meta key: when versions were last pruned, in Unix seconds.
const PRUNED_KEY: &str = "versions_pruned";

/// Versions are pruned at most this often (seconds): walking the versions
/// folder at every cycle would cost a daemon polling every few seconds.
const PRUNE_EVERY_SECS: u64 = 3600;

impl Session {
    /// Deletes the versions kept longer than the settings' `keep_versions`,
    /// at most once an hour. A failure is reported as a problem: syncing
    /// itself is not affected.
    pub(crate) fn prune_versions(&mut self) -> Result<()> {
        let now = SystemTime::now();
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let last = self.db.meta_u64(PRUNED_KEY)?;
        // A clock set back makes `last` lie in the future: prune then too.
        if last <= now_secs && now_secs - last < PRUNE_EVERY_SECS {
            return Ok(());
        }
        match self.work.prune_versions(self.settings.keep_versions.0, now) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                repository = %self.settings.name,
                deleted,
                "deleted versions older than {}",
                self.settings.keep_versions
            ),
            Err(source) => {
                let error = Error::LocalIo {
                    path: self.work.versions_dir(),
                    source,
                };
                self.report.problems.push(Problem::new(
                    None,
                    error.code(),
                    format!("old versions could not be deleted: {error}"),
                ));
            }
        }
        self.db.set_meta(PRUNED_KEY, &now_secs.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// 2024-03-01 00:00 UTC, the fake "now" of these tests.
    const NOW_SECS: u64 = 1_709_251_200;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn a_kept_version_ages_from_when_it_was_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path();
        let work = WorkFolder::new(folder);
        fs::create_dir(folder.join("docs")).unwrap();
        let original = folder.join("docs/report.txt");
        fs::write(&original, b"old text").unwrap();
        // Last edited years before sync replaced it.
        filetime::set_file_mtime(
            &original,
            filetime::FileTime::from_unix_time(946_684_800, 0),
        )
        .unwrap();

        let set_aside_ns = i64::try_from(NOW_SECS).unwrap() * 1_000_000_000;
        let kept = work
            .keep_version(
                folder,
                &RelPath::new("docs/report.txt").unwrap(),
                set_aside_ns,
            )
            .unwrap();
        assert!(!original.exists());
        assert_eq!(fs::read(&kept).unwrap(), b"old text");
        assert_eq!(
            mtime(&kept),
            at(NOW_SECS),
            "its age starts when it was set aside"
        );

        // 29 days later it is still there; 31 days later it is gone, and so
        // is the folder it left empty.
        let keep = 30 * DAY;
        assert_eq!(
            work.prune_versions(keep, at(NOW_SECS) + 29 * DAY).unwrap(),
            0
        );
        assert!(kept.exists());
        assert_eq!(
            work.prune_versions(keep, at(NOW_SECS) + 31 * DAY).unwrap(),
            1
        );
        assert!(!kept.exists());
        assert!(!work.versions_dir().join("docs").exists());
    }

    #[test]
    fn pruning_keeps_recent_versions_and_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkFolder::new(dir.path());
        let nested = work.versions_dir().join("a/b");
        fs::create_dir_all(&nested).unwrap();
        let old = nested.join("old (2024-01-01 1000).txt");
        let recent = work.versions_dir().join("a/recent (2024-02-25 1000).txt");
        for (path, days_ago) in [(&old, 40), (&recent, 5)] {
            fs::write(path, b"x").unwrap();
            let secs = NOW_SECS - days_ago * 86_400;
            filetime::set_file_mtime(
                path,
                filetime::FileTime::from_unix_time(i64::try_from(secs).unwrap(), 0),
            )
            .unwrap();
        }
        assert_eq!(work.prune_versions(30 * DAY, at(NOW_SECS)).unwrap(), 1);
        assert!(!old.exists());
        assert!(!nested.exists(), "an emptied folder is removed");
        assert!(recent.exists());
        assert!(work.versions_dir().exists());
    }

    #[test]
    fn pruning_without_versions_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkFolder::new(dir.path());
        assert_eq!(work.prune_versions(DAY, at(NOW_SECS)).unwrap(), 0);
    }
}
