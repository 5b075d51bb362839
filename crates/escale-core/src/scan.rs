//! Listing what a synced folder holds, from metadata alone.
//!
//! A scan never opens a file: the engine compares size, modification time
//! and inode with what it recorded and hashes only the files that differ, so
//! a rescan of an unchanged folder costs one `lstat` per entry.
//!
//! What a scan cannot see matters as much as what it sees: the engine infers
//! deletions from absences, so anything that might exist but could not be
//! listed is reported in [`Scan::unreadable_dirs`] rather than left out
//! silently (design invariant 5: nothing silently lost).

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::path::{RelPath, WORK_FOLDER};

#[cfg(test)]
mod tests;

/// What kind of entry a scan found; links and special files are never
/// entries (see [`Skipped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
}

/// A file or folder as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScannedEntry {
    /// Where it is inside the synced folder.
    pub(crate) path: RelPath,
    /// File or folder.
    pub(crate) kind: EntryKind,
    /// Size in bytes; 0 for folders, whose on-disk size means nothing portable.
    pub(crate) size: u64,
    /// Last modification, in nanoseconds since the Unix epoch (negative
    /// before 1970). Clamped to the range of `i64` (years 1677 to 2262).
    pub(crate) mtime_ns: i64,
    /// Inode number, to recognise a file that was replaced by another one of
    /// the same size and time; 0 where the platform has none (Windows).
    pub(crate) inode: u64,
    /// Whether a Unix execute bit is set on a file; always false for folders
    /// and on other platforms.
    pub(crate) executable: bool,
}

/// Something found in the folder that is not synced, with why, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// The local path.
    pub(crate) path: PathBuf,
    /// Why, in plain words.
    pub(crate) reason: String,
}

/// The result of [`scan`].
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Every file and folder, sorted by path.
    pub(crate) entries: Vec<ScannedEntry>,
    /// Everything left out, sorted by path.
    pub(crate) skipped: Vec<Skipped>,
    /// Folders whose listing is incomplete: they could not be read, or some
    /// of their entries could not be examined. They are themselves in
    /// `entries`, but the engine must not treat anything *under* them
    /// ([`RelPath::is_under`]) as deleted because it is missing from this
    /// scan. Sorted, without duplicates.
    pub(crate) unreadable_dirs: Vec<RelPath>,
}

/// Walks `root` recursively. Skips the `.escale` work folder at the root,
/// does not follow symbolic links, never reads file contents.
///
/// `root` itself may be a symbolic link to the folder. `root` missing, not a
/// folder, or unreadable (including one of its own entries that cannot be
/// examined, since no folder above it could be marked incomplete) → `Err`.
/// Problems below the root are reported in the result instead.
pub(crate) fn scan(root: &Path) -> io::Result<Scan> {
    if !fs::metadata(root)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a folder", root.display()),
        ));
    }
    let mut scan = Scan::default();
    // A stack rather than recursion: folder depth is up to the user.
    let mut folders: Vec<(PathBuf, Option<RelPath>)> = vec![(root.to_path_buf(), None)];
    while let Some((dir, rel_dir)) = folders.pop() {
        let listing = match (fs::read_dir(&dir), &rel_dir) {
            (Ok(listing), _) => listing,
            (Err(error), None) => return Err(error),
            (Err(error), Some(rel_dir)) => {
                scan.unreadable(dir, rel_dir, &error);
                continue;
            }
        };
        for item in listing {
            let item = match (item, &rel_dir) {
                (Ok(item), _) => item,
                (Err(error), None) => return Err(error),
                (Err(error), Some(rel_dir)) => {
                    scan.unreadable(dir.clone(), rel_dir, &error);
                    break;
                }
            };
            let local = item.path();
            let name = item.file_name();
            if rel_dir.is_none() && name == WORK_FOLDER {
                continue;
            }
            let Some(name) = name.to_str() else {
                scan.skip(
                    local,
                    "its name is not valid UTF-8 text, which other systems cannot represent"
                        .to_owned(),
                );
                continue;
            };
            let rel_path = match &rel_dir {
                None => RelPath::new(name),
                Some(rel_dir) => rel_dir.join(name),
            };
            let rel_path = match rel_path {
                Ok(rel_path) => rel_path,
                Err(error) => {
                    scan.skip(local, format!("its name cannot be synced: {error}"));
                    continue;
                }
            };
            // Not `DirEntry::metadata`: on Windows that comes from the folder
            // listing, which lags behind files still open for writing.
            let metadata = match fs::symlink_metadata(&local) {
                Ok(metadata) => metadata,
                // Deleted since the listing: it simply is not there any more.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    let Some(rel_dir) = &rel_dir else {
                        return Err(error);
                    };
                    scan.skip(local, format!("its details could not be read: {error}"));
                    scan.unreadable_dirs.push(rel_dir.clone());
                    continue;
                }
            };
            match entry(rel_path, &metadata) {
                Ok(entry) => {
                    if entry.kind == EntryKind::Dir {
                        folders.push((local, Some(entry.path.clone())));
                    }
                    scan.entries.push(entry);
                }
                Err(reason) => scan.skip(local, reason.to_owned()),
            }
        }
    }
    scan.entries.sort_by(|a, b| a.path.cmp(&b.path));
    scan.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    scan.unreadable_dirs.sort();
    scan.unreadable_dirs.dedup();
    Ok(scan)
}

/// Metadata of one path (for re-checking a target right before replacing
/// it); `None` if it does not exist, or cannot because one of its parents is
/// a file.
///
/// Refused with an error, because writing there could lose data or escape
/// the synced folder: a symbolic link or special file at the path, or a
/// symbolic link anywhere between `root` and it (a scan never descends into
/// those, so the engine has no business writing through them).
pub(crate) fn stat(root: &Path, path: &RelPath) -> io::Result<Option<ScannedEntry>> {
    let depth = path.components().count();
    let mut local = root.to_path_buf();
    for (index, name) in path.components().enumerate() {
        local.push(name);
        let metadata = match fs::symlink_metadata(&local) {
            Ok(metadata) => metadata,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            return Err(io::Error::other(format!(
                "{} is a symbolic link, which Escale neither follows nor replaces",
                local.display()
            )));
        }
        if index + 1 < depth {
            if !file_type.is_dir() {
                return Ok(None);
            }
            continue;
        }
        return entry(path.clone(), &metadata)
            .map(Some)
            .map_err(|reason| io::Error::other(format!("{}: {reason}", local.display())));
    }
    // A RelPath has at least one component, so the loop has returned.
    Ok(None)
}

impl Scan {
    /// Records something left out of the scan.
    fn skip(&mut self, path: PathBuf, reason: String) {
        self.skipped.push(Skipped { path, reason });
    }

    /// Records a folder whose listing failed or stopped part-way.
    fn unreadable(&mut self, dir: PathBuf, rel_dir: &RelPath, error: &io::Error) {
        self.skip(dir, format!("the folder could not be read: {error}"));
        self.unreadable_dirs.push(rel_dir.clone());
    }
}

/// The entry for a file or folder, or why the thing at `path` is not synced.
fn entry(path: RelPath, metadata: &Metadata) -> Result<ScannedEntry, &'static str> {
    let file_type = metadata.file_type();
    let kind = if file_type.is_symlink() {
        return Err("it is a symbolic link, which Escale does not follow");
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        return Err("it is a special file (device, pipe or socket), which cannot be synced");
    };
    let is_file = kind == EntryKind::File;
    Ok(ScannedEntry {
        path,
        size: if is_file { metadata.len() } else { 0 },
        mtime_ns: mtime_ns(metadata),
        inode: inode(metadata),
        executable: is_file && is_executable(metadata),
        kind,
    })
}

/// The modification time in nanoseconds since the epoch; 0 on a platform
/// that does not record one (none Escale supports).
fn mtime_ns(metadata: &Metadata) -> i64 {
    let Ok(modified) = metadata.modified() else {
        return 0;
    };
    match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |ns| -ns),
    }
}

/// The inode number, which survives renames and changes on replacement.
#[cfg(unix)]
fn inode(metadata: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

/// No inode outside Unix: std exposes no stable file index on Windows.
#[cfg(not(unix))]
fn inode(_metadata: &Metadata) -> u64 {
    0
}

/// Any execute bit, as Git does: the mode bits beyond that are local policy.
#[cfg(unix)]
fn is_executable(metadata: &Metadata) -> bool {
    std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 != 0
}

/// Windows and others have no execute bit to carry.
#[cfg(not(unix))]
fn is_executable(_metadata: &Metadata) -> bool {
    false
}
