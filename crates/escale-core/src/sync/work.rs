//! The repository's hidden work folder inside the synced folder.
//!
//! Temporary downloads live there, on the same filesystem as their targets
//! so that the final rename is atomic; so do the versions that sync
//! replaced or deleted, so that nothing is silently lost.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::path::{RelPath, WORK_FOLDER};
use crate::sync::planner::format_utc_minute;

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
        Ok(target)
    }
}
