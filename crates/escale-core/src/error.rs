//! Errors of the engine.
//!
//! Policy:
//! - The engine has one error type, [`Error`]. Each variant carries the
//!   context a person needs to act (which file, which repository) and its
//!   message is a complete sentence in plain words, because the desktop app
//!   shows it as-is.
//! - [`Error::kind`] sorts errors into a few [`ErrorKind`]s. Front ends match
//!   on the kind and its stable [`ErrorKind::code`], never on message text.
//! - [`ErrorKind::is_retryable`] tells schedulers whether trying the same
//!   thing again later can succeed without anyone changing anything.
//! - The original cause is kept as the [`std::error::Error::source`] so logs
//!   can show the full chain; secrets never appear in messages.

use std::path::PathBuf;

use crate::format::FormatError;
use crate::relay::{RelayError, RelayErrorKind};
use crate::state::StateError;

/// Shorthand for results whose error is the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No configuration folder was given and the platform has no standard one.
    #[error(
        "cannot find a folder for Escale's settings on this computer; \
         set ESCALE_CONFIG_DIR or pass --config-dir"
    )]
    NoConfigDir,

    /// The configuration file exists but could not be read or written.
    #[error("cannot {action} the settings file {}: {source}", path.display())]
    ConfigIo {
        /// What was being done: "read" or "write".
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The configuration file is not valid TOML or does not match the schema.
    #[error("the settings file {} is not valid: {reason}", path.display())]
    ConfigSyntax {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, with its line and column when known.
        reason: String,
    },

    /// The configuration file was written by a newer Escale.
    #[error(
        "the settings file {} has format version {found}, but this Escale reads \
         only version {supported}; install a newer Escale",
        path.display()
    )]
    ConfigVersion {
        /// The file concerned.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },

    /// A repository's settings break a rule (empty name, duplicate, relative folder…).
    #[error("invalid settings for repository \"{repository}\": {reason}")]
    InvalidRepository {
        /// The repository's name as given.
        repository: String,
        /// Which rule is broken.
        reason: String,
    },

    /// No repository of that name is configured on this computer.
    #[error("no synced folder named \"{0}\" is set up on this computer")]
    UnknownRepository(String),

    /// `init` found a repository already on the relay.
    #[error(
        "{relay} already holds an Escale repository; to use it from this computer, \
         join it instead"
    )]
    RepositoryExists {
        /// The relay, described without secrets.
        relay: String,
    },

    /// The relay holds another repository than the one this computer synced with.
    #[error(
        "{relay} now holds a different repository than the one \"{repository}\" was set up \
         with; remove this synced folder and join again"
    )]
    DifferentRepository {
        /// The local repository name.
        repository: String,
        /// The relay, described without secrets.
        relay: String,
    },

    /// The passphrase does not open the repository.
    #[error("the passphrase is wrong: it does not open the repository at {relay}")]
    WrongPassphrase {
        /// The relay, described without secrets.
        relay: String,
    },

    /// No passphrase was available.
    #[error(
        "no passphrase available for \"{repository}\": set ESCALE_PASSPHRASE, pass \
         --passphrase-file, or run on a terminal to type it"
    )]
    NoPassphrase {
        /// The repository's name.
        repository: String,
    },

    /// The relay could not be reached or refused an operation.
    #[error(transparent)]
    Relay(#[from] RelayError),

    /// A relay file is not what it should be.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The local state database failed.
    #[error(transparent)]
    State(#[from] StateError),

    /// A local file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    LocalIo {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The system keyring could not be used.
    #[error("the system keyring could not be used: {0}")]
    Keyring(String),

    /// The cycle was stopped on request (shutdown) before it finished.
    #[error("stopped before the sync finished; it continues at the next start")]
    Stopped,

    /// The mass-deletion guard paused the repository: so many synced files
    /// are missing at once that a disconnected drive is more likely than a
    /// person deleting them, and sending the deletions would wipe the
    /// other computers.
    #[error(
        "\"{repository}\" is paused: {gone} of its {total} synced files are missing from {}. \
         Nothing was sent or received. A disconnected drive or network share is the likely \
         cause: reconnect it (or put the files back) and sync again. If the files were \
         deleted on purpose, run `escale confirm-deletions {repository}` to delete them on the \
         other computers too",
        folder.display()
    )]
    MassDeletion {
        /// The repository's name.
        repository: String,
        /// The synced folder.
        folder: PathBuf,
        /// How many synced files are missing.
        gone: u64,
        /// How many synced files the state knew of.
        total: u64,
    },

    /// `confirm-deletions` was asked for a repository that is not paused.
    #[error(
        "\"{0}\" is not paused by missing files: there are no deletions waiting for a \
         confirmation"
    )]
    NothingToConfirm(String),

    /// Another Escale process is syncing this repository right now (say,
    /// `escale run` and the desktop app at once).
    #[error(
        "another Escale process is syncing \"{0}\" on this computer right now; \
         this one waits for its turn"
    )]
    Busy(String),

    /// Another computer retired this one from the repository.
    #[error(
        "this computer was retired from \"{repository}\" by {by}; remove this synced \
         folder and join the repository again to sync it"
    )]
    Retired {
        /// The repository's name.
        repository: String,
        /// The computer that retired this one.
        by: String,
    },

    /// A background task of the engine stopped unexpectedly.
    #[error("an internal task of Escale stopped unexpectedly: {0}")]
    Internal(String),
}

impl Error {
    /// The broad category of this error, for front ends and schedulers.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoConfigDir | Error::ConfigSyntax { .. } | Error::ConfigVersion { .. } => {
                ErrorKind::Config
            }
            Error::InvalidRepository { .. }
            | Error::UnknownRepository(_)
            | Error::NothingToConfirm(_) => ErrorKind::InvalidInput,
            Error::ConfigIo { source, .. } | Error::LocalIo { source, .. } => {
                ErrorKind::from_io(source)
            }
            Error::RepositoryExists { .. } => ErrorKind::RepositoryExists,
            Error::DifferentRepository { .. } | Error::Retired { .. } => ErrorKind::Config,
            Error::WrongPassphrase { .. } | Error::NoPassphrase { .. } => ErrorKind::Passphrase,
            Error::Relay(error) => ErrorKind::Relay(error.kind()),
            Error::Format(_) => ErrorKind::RelayData,
            Error::State(_) => ErrorKind::Io,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Keyring(_) => ErrorKind::Keyring,
            Error::Stopped => ErrorKind::Stopped,
            Error::MassDeletion { .. } => ErrorKind::MassDeletion,
            Error::Busy(_) => ErrorKind::Busy,
        }
    }

    /// Shorthand for `self.kind().code()`.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Shorthand for `self.kind().is_retryable()`.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// The category of an [`Error`]: what a front end shows and whether a retry helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The settings are missing, unreadable or invalid; a person must fix them.
    Config,
    /// A value given by the user or a caller breaks a rule.
    InvalidInput,
    /// The operating system refused access to a local file.
    PermissionDenied,
    /// The local disk is full.
    DiskFull,
    /// Any other local input/output failure; it may go away by itself.
    Io,
    /// The passphrase is missing or wrong.
    Passphrase,
    /// `init` was run where a repository already exists.
    RepositoryExists,
    /// The relay failed; the inner kind says how.
    Relay(RelayErrorKind),
    /// A relay file is damaged, tampered with, or of an unknown format.
    RelayData,
    /// A bug or an unexpected stop inside Escale.
    Internal,
    /// The system keyring is missing, locked or refused access.
    Keyring,
    /// Work was stopped on request.
    Stopped,
    /// The repository paused because many synced files vanished at once;
    /// a person must reconnect the drive or confirm the deletions.
    MassDeletion,
    /// Another process is syncing the same repository; try again later.
    Busy,
}

impl ErrorKind {
    /// A stable, machine-readable code (`snake_case`) that user interfaces
    /// match on and that appears in `--json` output. Codes never change
    /// meaning once released.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Config => "config_invalid",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::DiskFull => "disk_full",
            ErrorKind::Io => "io_error",
            ErrorKind::Passphrase => "wrong_passphrase",
            ErrorKind::RepositoryExists => "repository_exists",
            ErrorKind::Relay(kind) => kind.code(),
            ErrorKind::RelayData => "relay_data_invalid",
            ErrorKind::Internal => "internal",
            ErrorKind::Keyring => "keyring_unavailable",
            ErrorKind::Stopped => "stopped",
            ErrorKind::MassDeletion => "mass_deletion",
            ErrorKind::Busy => "busy",
        }
    }

    /// Whether trying the same operation again later can succeed without
    /// anyone changing anything. A full disk is retryable: files may be
    /// removed, and the scheduler backs off meanwhile.
    pub fn is_retryable(self) -> bool {
        match self {
            ErrorKind::Config
            | ErrorKind::InvalidInput
            | ErrorKind::PermissionDenied
            | ErrorKind::Passphrase
            | ErrorKind::RepositoryExists
            | ErrorKind::RelayData
            | ErrorKind::Internal
            | ErrorKind::Keyring
            // Retrying sends nothing until a person acts; the daemon still
            // looks again later, which is how a confirmation is picked up.
            | ErrorKind::MassDeletion => false,
            ErrorKind::DiskFull | ErrorKind::Io | ErrorKind::Stopped | ErrorKind::Busy => true,
            ErrorKind::Relay(kind) => kind.is_retryable(),
        }
    }

    fn from_io(error: &std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                ErrorKind::PermissionDenied
            }
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                ErrorKind::DiskFull
            }
            _ => ErrorKind::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let kinds = [
            ErrorKind::Config,
            ErrorKind::InvalidInput,
            ErrorKind::PermissionDenied,
            ErrorKind::DiskFull,
            ErrorKind::Io,
            ErrorKind::Passphrase,
            ErrorKind::RepositoryExists,
            ErrorKind::RelayData,
            ErrorKind::Internal,
            ErrorKind::Keyring,
            ErrorKind::Stopped,
            ErrorKind::MassDeletion,
            ErrorKind::Busy,
        ];
        let mut codes: Vec<_> = kinds.iter().map(|k| k.code()).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code} is not snake_case"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len(), "two kinds share a code");
    }

    #[test]
    fn io_errors_are_sorted_by_what_a_person_can_do() {
        let denied = Error::ConfigIo {
            action: "write",
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        assert!(!denied.is_retryable());

        let full = Error::ConfigIo {
            action: "write",
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(full.code(), "disk_full");
        assert!(full.is_retryable());
    }

    #[test]
    fn messages_name_the_file() {
        let err = Error::ConfigVersion {
            path: "/etc/escale/config.toml".into(),
            found: 9,
            supported: 1,
        };
        let text = err.to_string();
        assert!(text.contains("/etc/escale/config.toml"), "{text}");
        assert!(text.contains("version 9"), "{text}");
    }
}
