//! The mass-deletion guard: an unmounted drive must not wipe the other
//! computers.
//!
//! When a drive holding the synced folder is disconnected, the folder looks
//! empty (or nearly so) and every file in it looks deleted. Sending those
//! deletions would delete the files everywhere, so when a scan finds at
//! least `mass_deletion_percent` % of the synced files gone, and at least
//! `mass_deletion_min_files` of them, the repository pauses instead: the
//! cycle sends nothing, receives nothing (writing into an empty mount point
//! would be wrong too) and fails with [`Error::MassDeletion`].
//!
//! The pause is recorded in the state database, so that `escale status`
//! shows it from another process. A person then either reconnects the drive
//! (the next cycle finds the files and carries on) or confirms the
//! deletions with [`confirm`]: the confirmation covers the number of files
//! missing when the guard stopped, so if even more files vanish afterwards
//! the guard stops again. It is consumed once a cycle has published.

use crate::config::RepositoryConfig;
use crate::error::{Error, Result};
use crate::state::{StateDb, StateKind};
use crate::sync::Session;
use crate::sync::publish::LocalView;

/// State meta key of the pause: `"GONE TOTAL"`, or empty when not paused.
const PAUSE_KEY: &str = "mass_deletion_paused";

/// State meta key of the confirmation: how many missing files a person
/// allowed the next cycle to delete everywhere; 0 when none.
const CONFIRMED_KEY: &str = "mass_deletion_confirmed";

/// A pause recorded by the guard: `gone` of `total` synced files were missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pause {
    /// Synced files missing from the folder.
    pub(crate) gone: u64,
    /// Synced files the state knew of.
    pub(crate) total: u64,
}

impl Pause {
    /// The error a cycle stopped by this pause reports.
    pub(crate) fn error(self, settings: &RepositoryConfig) -> Error {
        Error::MassDeletion {
            repository: settings.name.clone(),
            folder: settings.folder.clone(),
            gone: self.gone,
            total: self.total,
        }
    }
}

/// Whether `gone` missing files out of `total` synced ones are too many to
/// send without a person's confirmation.
pub(crate) fn is_mass_deletion(gone: u64, total: u64, settings: &RepositoryConfig) -> bool {
    // Wide arithmetic: the product cannot overflow whatever the counts.
    gone > 0
        && gone >= settings.mass_deletion_min_files
        && u128::from(gone) * 100 >= u128::from(total) * u128::from(settings.mass_deletion_percent)
}

/// The pause recorded in `db`, if the repository is paused.
pub(crate) fn recorded_pause(db: &StateDb) -> Result<Option<Pause>> {
    let Some(text) = db.meta(PAUSE_KEY)? else {
        return Ok(None);
    };
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    Ok(match (numbers.next(), numbers.next()) {
        (Some(Ok(gone)), Some(Ok(total))) => Some(Pause { gone, total }),
        // Empty: the pause was lifted.
        _ => None,
    })
}

/// Allows the next cycle to send the deletions that paused the repository
/// kept in `db` (named `name`), and lifts the pause. Returns how many files
/// it allows to delete.
pub(crate) fn confirm(db: &StateDb, name: &str) -> Result<u64> {
    let Some(pause) = recorded_pause(db)? else {
        return Err(Error::NothingToConfirm(name.to_owned()));
    };
    // The confirmation first: were the pause lifted alone, a crash in
    // between would leave a repository that looks fine but stays stuck.
    db.set_meta(CONFIRMED_KEY, &pause.gone.to_string())?;
    db.set_meta(PAUSE_KEY, "")?;
    Ok(pause.gone)
}

impl Session {
    /// Stops the cycle with [`Error::MassDeletion`] (and records the pause)
    /// when the scan in `view` finds too many synced files gone and no
    /// confirmation covers them. Called before anything is sent, so that a
    /// paused cycle uploads nothing either.
    pub(crate) fn guard_deletions(&self, view: &LocalView) -> Result<()> {
        // Files only: a folder's deletion follows from its files', and the
        // settings speak of files.
        let gone = self
            .gone(view)
            .iter()
            .filter(|state| state.kind == StateKind::File)
            .count() as u64;
        let total = view
            .known
            .values()
            .filter(|state| state.kind == StateKind::File && self.sends(&state.path, false))
            .count() as u64;
        let paused = recorded_pause(&self.db)?.is_some();
        if !is_mass_deletion(gone, total, &self.settings)
            || gone <= self.db.meta_u64(CONFIRMED_KEY)?
        {
            // The drive is back, or a person confirmed: no longer paused.
            if paused {
                self.db.set_meta(PAUSE_KEY, "")?;
            }
            return Ok(());
        }
        let pause = Pause { gone, total };
        self.db
            .set_meta(PAUSE_KEY, &format!("{} {}", pause.gone, pause.total))?;
        tracing::warn!(
            repository = %self.settings.name,
            gone,
            total,
            "paused: too many synced files are missing"
        );
        Err(pause.error(&self.settings))
    }

    /// Called once a cycle has published its changes: a confirmation
    /// covers one set of deletions, not every later one.
    pub(crate) fn deletions_published(&self) -> Result<()> {
        if self.db.meta_u64(CONFIRMED_KEY)? != 0 {
            self.db.set_meta(CONFIRMED_KEY, "0")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::{ConfigDir, NewRepository, Passphrase};

    const PASSPHRASE: &str = "guard test passphrase";

    /// The files in `folder` (not the work folder), by name.
    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != ".escale")
            .collect();
        names.sort();
        names
    }

    #[test]
    fn only_the_confirmed_deletions_are_sent() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        fs::create_dir(&relay).unwrap();
        let relay = format!("file://{}", relay.display());
        let (config_a, folder_a) = (ConfigDir::new(dir.path().join("ca")), dir.path().join("a"));
        let (config_b, folder_b) = (ConfigDir::new(dir.path().join("cb")), dir.path().join("b"));
        let pass = || Passphrase::new(PASSPHRASE.into());
        let sync = |config: &ConfigDir| runtime.block_on(crate::sync(config, "t", pass()));
        runtime
            .block_on(crate::init(
                &config_a,
                NewRepository::new("t", &folder_a, &relay),
                pass(),
            ))
            .unwrap();
        runtime
            .block_on(crate::join(
                &config_b,
                NewRepository::new("t", &folder_b, &relay),
                pass(),
            ))
            .unwrap();
        for index in 0..20 {
            fs::write(folder_a.join(format!("file-{index:02}.txt")), b"data").unwrap();
        }
        sync(&config_a).unwrap();
        sync(&config_b).unwrap();
        assert_eq!(names(&folder_b).len(), 20);

        // 12 of 20 vanish: paused, recorded, nothing sent.
        for index in 0..12 {
            fs::remove_file(folder_a.join(format!("file-{index:02}.txt"))).unwrap();
        }
        let error = sync(&config_a).unwrap_err();
        assert!(
            matches!(
                error,
                Error::MassDeletion {
                    gone: 12,
                    total: 20,
                    ..
                }
            ),
            "{error}"
        );
        let status = runtime
            .block_on(crate::status(&config_a, "t", None))
            .unwrap();
        assert_eq!(status.state, "paused");
        assert_eq!(status.error.unwrap().code, "mass_deletion");
        sync(&config_b).unwrap();
        assert_eq!(names(&folder_b).len(), 20, "nothing was deleted elsewhere");

        // Confirmed for 12, but 14 are missing by the next sync: paused again.
        assert_eq!(
            runtime
                .block_on(crate::confirm_deletions(&config_a, "t"))
                .unwrap(),
            12
        );
        let status = runtime
            .block_on(crate::status(&config_a, "t", None))
            .unwrap();
        assert_eq!(status.state, "locked", "the pause is lifted");
        for index in 12..14 {
            fs::remove_file(folder_a.join(format!("file-{index:02}.txt"))).unwrap();
        }
        let error = sync(&config_a).unwrap_err();
        assert!(
            matches!(error, Error::MassDeletion { gone: 14, .. }),
            "{error}"
        );

        // Confirmed for 14: sent, and the confirmation is used up.
        assert_eq!(
            runtime
                .block_on(crate::confirm_deletions(&config_a, "t"))
                .unwrap(),
            14
        );
        let report = sync(&config_a).unwrap();
        assert_eq!(report.changes_sent, 14);
        sync(&config_b).unwrap();
        assert_eq!(names(&folder_b).len(), 6);
        let error = runtime
            .block_on(crate::confirm_deletions(&config_a, "t"))
            .unwrap_err();
        assert!(matches!(error, Error::NothingToConfirm(_)), "{error}");
        let db = StateDb::open(&config_a.path().join("state/t/state.sqlite3")).unwrap();
        assert_eq!(db.meta_u64(CONFIRMED_KEY).unwrap(), 0);
    }

    fn settings(percent: u8, min_files: u64) -> RepositoryConfig {
        let mut settings = RepositoryConfig::new("t", "/t", "file:///r");
        settings.mass_deletion_percent = percent;
        settings.mass_deletion_min_files = min_files;
        settings
    }

    #[test]
    fn both_the_share_and_the_count_must_be_reached() {
        let defaults = settings(50, 10);
        assert!(is_mass_deletion(27, 30, &defaults));
        assert!(is_mass_deletion(15, 30, &defaults), "exactly the share");
        assert!(!is_mass_deletion(14, 30, &defaults), "below the share");
        assert!(!is_mass_deletion(3, 30, &defaults));
        assert!(!is_mass_deletion(9, 9, &defaults), "below the count");
        assert!(is_mass_deletion(10, 10, &defaults));
        assert!(!is_mass_deletion(0, 0, &settings(50, 0)), "nothing gone");
        assert!(is_mass_deletion(1, 1, &settings(100, 0)));
        assert!(
            is_mass_deletion(u64::MAX, u64::MAX, &defaults),
            "no overflow"
        );
    }

    #[test]
    fn a_confirmation_lifts_the_pause_and_needs_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.sqlite3")).unwrap();
        let error = confirm(&db, "t").unwrap_err();
        assert!(matches!(error, Error::NothingToConfirm(_)), "{error}");
        assert_eq!(error.code(), "invalid_input");

        db.set_meta(PAUSE_KEY, "27 30").unwrap();
        assert_eq!(
            recorded_pause(&db).unwrap(),
            Some(Pause {
                gone: 27,
                total: 30
            })
        );
        assert_eq!(confirm(&db, "t").unwrap(), 27);
        assert_eq!(recorded_pause(&db).unwrap(), None);
        assert_eq!(db.meta_u64(CONFIRMED_KEY).unwrap(), 27);
    }

    #[test]
    fn the_error_says_how_many_and_what_to_do() {
        let settings = settings(50, 10);
        let error = Pause {
            gone: 27,
            total: 30,
        }
        .error(&settings);
        assert_eq!(error.code(), "mass_deletion");
        assert!(!error.is_retryable());
        let text = error.to_string();
        for expected in [
            "27 of its 30",
            "disconnected drive",
            "escale confirm-deletions t",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from {text}");
        }
    }
}
