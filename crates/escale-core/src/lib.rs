//! The Escale sync engine.
//!
//! Escale keeps a folder identical on several computers that cannot reach
//! each other, by passing encrypted files through a *relay*: a folder on
//! storage every computer can reach (a network share, FTP, WebDAV, S3, SFTP,
//! or any cloud rclone knows). This crate is the engine shared by the
//! `escale` command-line daemon and the desktop app; neither front end holds
//! sync logic of its own.
//!
//! The public surface is deliberately small and re-exported from here:
//!
//! - [`ConfigDir`] finds the one folder that holds the configuration (and,
//!   later, the state database and logs) shared by the CLI and the desktop
//!   app, and loads and saves [`Config`].
//! - [`Error`] is the single error type; every error has an [`ErrorKind`]
//!   with a stable [`code`](ErrorKind::code) for user interfaces and a
//!   [`retryable`](ErrorKind::is_retryable) flag for schedulers.
//!
//! # Example
//!
//! ```
//! use escale_core::{Config, ConfigDir, RepositoryConfig};
//!
//! # fn main() -> Result<(), escale_core::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! let dir = ConfigDir::new(tmp.path().join("escale"));
//! // A configuration folder that does not exist yet reads as empty.
//! let mut config = dir.load()?;
//! assert!(config.repositories.is_empty());
//!
//! config.add_repository(RepositoryConfig::new(
//!     "reports",
//!     "/home/ana/Reports",
//!     "file:///mnt/share/escale-reports",
//! ))?;
//! dir.save(&config)?;
//! assert_eq!(dir.load()?.repositories[0].name, "reports");
//! # Ok(())
//! # }
//! ```

mod check;
mod chunker;
mod clients;
mod config;
mod crypto;
mod daemon;
mod engine;
mod error;
mod events;
mod filter;
mod format;
mod ids;
mod keyring;
mod live;
mod path;
// The relay layer's full API (paths, descriptions) serves the network
// backends that come next; the file backend alone does not use all of it.
#[allow(dead_code)]
mod relay;
mod repository;
mod scan;
mod state;
mod sync;
mod units;
mod version;

pub use check::{CheckOutcome, CheckStep, CheckStepKind, RelayAccess, RelayCheck, check_relay};
pub use clients::{ClientInfo, Presence, clients, retire};
pub use config::{
    AccessRule, CONFIG_FILE_NAME, CONFIG_VERSION, Config, ConfigDir, DEFAULT_TRANSFERS,
    MAX_TRANSFERS, MIN_QUOTA, MIN_TRANSFERS, RepositoryConfig, RuleMode, SyncMode,
};
pub use crypto::CryptoError;
pub use daemon::{PollBounds, RunRepository, run};
pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use events::{
    Event, EventKind, EventSink, Holder, Phase, Progress, RelayUsage, RepositoryState,
};
pub use format::FormatError;
pub use ids::{ClientId, InvalidId, ObjectId, RepositoryId};
pub use keyring::{save_passphrase, save_relay_password, saved_passphrase};
pub use live::LiveStatus;
pub use relay::{RelayError, RelayErrorKind};
pub use state::StateError;

pub use repository::{
    ClientStatus, NewRepository, Passphrase, RepositoryStatus, StatusError, change_passphrase,
    confirm_deletions, init, join, remove, status, sync, verify_passphrase,
};
pub use sync::{Problem, SyncReport};
pub use units::{ByteSize, Span, UnitError};
