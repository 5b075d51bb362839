//! The folders paused from the app, remembered across restarts: a person
//! who paused a folder before the weekend expects it still paused on
//! Monday, not syncing again because the computer restarted.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The file's name in the settings folder.
const FILE_NAME: &str = "desktop-paused.json";

/// The names of the paused folders, as saved in the settings folder.
#[derive(Debug)]
pub(crate) struct PausedFolders {
    file: PathBuf,
    names: BTreeSet<String>,
}

impl PausedFolders {
    /// The folders saved as paused in `config_dir`; none when the file is
    /// missing or unreadable (it is rewritten at the next change).
    pub(crate) fn load(config_dir: &Path) -> Self {
        let file = config_dir.join(FILE_NAME);
        let names = fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        PausedFolders { file, names }
    }

    /// Whether folder `name` was paused.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Records folder `name` as paused or not, and saves the change.
    pub(crate) fn set(&mut self, name: &str, paused: bool) -> std::io::Result<()> {
        let changed = if paused {
            self.names.insert(name.to_owned())
        } else {
            self.names.remove(name)
        };
        if !changed {
            return Ok(());
        }
        let temp = self.file.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.names).map_err(std::io::Error::other)?;
        fs::write(&temp, text)?;
        fs::rename(&temp, &self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_remembered_until_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut paused = PausedFolders::load(tmp.path());
        assert!(!paused.contains("Reports"));
        paused.set("Reports", true).unwrap();
        paused.set("Scans", true).unwrap();
        let reloaded = PausedFolders::load(tmp.path());
        assert!(reloaded.contains("Reports") && reloaded.contains("Scans"));
        paused.set("Reports", false).unwrap();
        let reloaded = PausedFolders::load(tmp.path());
        assert!(!reloaded.contains("Reports") && reloaded.contains("Scans"));
    }

    #[test]
    fn an_unreadable_file_means_nothing_paused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FILE_NAME), "{not json").unwrap();
        assert!(!PausedFolders::load(tmp.path()).contains("Reports"));
    }
}
