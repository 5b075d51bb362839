//! The desktop app's own settings (not the engine's): kept beside the
//! engine's settings file, in `desktop.json` of the same folder.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in the settings folder.
const FILE_NAME: &str = "desktop.json";

/// What the person chose for the app itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppSettings {
    /// Show desktop notifications.
    pub notifications: bool,
    /// Start Escale when the person logs in.
    pub start_at_login: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            notifications: true,
            start_at_login: true,
        }
    }
}

fn file(config_dir: &Path) -> PathBuf {
    config_dir.join(FILE_NAME)
}

impl AppSettings {
    /// The saved settings; the defaults when there are none, or when the
    /// file cannot be read (it is rewritten at the next change).
    pub fn load(config_dir: &Path) -> Self {
        fs::read(file(config_dir))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Saves them, replacing the file whole.
    pub fn save(&self, config_dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(config_dir)?;
        let temp = config_dir.join(format!(".{FILE_NAME}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        fs::write(&temp, text)?;
        fs::rename(&temp, file(config_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_until_saved_then_what_was_saved() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(AppSettings::load(tmp.path()), AppSettings::default());
        let chosen = AppSettings {
            notifications: false,
            start_at_login: true,
        };
        chosen.save(tmp.path()).unwrap();
        assert_eq!(AppSettings::load(tmp.path()), chosen);
        fs::write(file(tmp.path()), "{not json").unwrap();
        assert_eq!(AppSettings::load(tmp.path()), AppSettings::default());
    }

    #[test]
    fn uses_the_ui_names() {
        let json = serde_json::to_string(&AppSettings::default()).unwrap();
        assert_eq!(json, r#"{"notifications":true,"startAtLogin":true}"#);
    }
}
