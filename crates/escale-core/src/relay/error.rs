//! Errors of relay access.
//!
//! Policy, the same as the engine's [`crate::Error`]:
//! - Every failure has a [`RelayErrorKind`]. Callers decide on the kind —
//!   never on message text — and schedulers ask
//!   [`RelayErrorKind::is_retryable`] whether waiting and trying again can
//!   help without anyone changing anything.
//! - The message is a complete sentence in plain words that names the path
//!   or address concerned, because the desktop app shows it as-is.
//! - The underlying error (I/O, protocol, TLS) is kept as the
//!   [`std::error::Error::source`] so logs can show the whole chain.
//! - Nothing secret ever appears in a message: relay addresses never hold
//!   passwords (the URL parser refuses them) and backends describe
//!   themselves through [`Relay::describe`](super::Relay::describe).

use std::fmt;

/// A failure to access the relay.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RelayError {
    /// What callers and schedulers decide on.
    kind: RelayErrorKind,
    /// The complete sentence people see.
    message: String,
    /// The underlying cause, for logs.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RelayError {
    /// An error of `kind` with a plain-language `message` that names the
    /// path or address concerned.
    pub(crate) fn new(kind: RelayErrorKind, message: impl Into<String>) -> Self {
        RelayError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the underlying cause, for logs.
    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong, for callers and schedulers.
    pub fn kind(&self) -> RelayErrorKind {
        self.kind
    }

    /// Shorthand for `self.kind().is_retryable()`.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Sorts an I/O error by what a person or the scheduler can do about it.
    ///
    /// `what` names the thing being accessed as a noun phrase, for example
    /// `"the relay folder /mnt/share/x"`; the message is built around it
    /// so that it reads as a sentence whatever the kind.
    pub(crate) fn from_io(err: std::io::Error, what: &str) -> Self {
        use std::io::ErrorKind as Io;
        let (kind, message) = match err.kind() {
            Io::NotFound => (RelayErrorKind::NotFound, format!("{what} does not exist")),
            // A path whose parent turns out to be a file: for the caller
            // the folder it expected is simply not there.
            Io::NotADirectory => (
                RelayErrorKind::NotFound,
                format!("{what} does not exist (a file stands where a folder should be)"),
            ),
            Io::PermissionDenied => (
                RelayErrorKind::PermissionDenied,
                format!("permission to access {what} was refused"),
            ),
            Io::ReadOnlyFilesystem => (
                RelayErrorKind::PermissionDenied,
                format!("{what} is on read-only storage"),
            ),
            Io::StorageFull | Io::QuotaExceeded => (
                RelayErrorKind::StorageFull,
                format!("the storage holding {what} is full"),
            ),
            // A file over the file system's size limit (FAT32's 4 GiB): no
            // retry can help, the engine must send smaller files.
            Io::FileTooLarge => (
                RelayErrorKind::Unsupported,
                format!("{what} is larger than the storage accepts"),
            ),
            Io::IsADirectory => (
                RelayErrorKind::InvalidPath,
                format!("{what} is a folder, not a file"),
            ),
            Io::InvalidFilename => (
                RelayErrorKind::InvalidPath,
                format!("the storage does not accept the name of {what}"),
            ),
            Io::TimedOut => (
                RelayErrorKind::Timeout,
                format!("the storage holding {what} did not answer in time"),
            ),
            Io::ConnectionRefused
            | Io::HostUnreachable
            | Io::NetworkUnreachable
            | Io::NetworkDown
            | Io::AddrNotAvailable
            | Io::NotConnected => (
                RelayErrorKind::Unreachable,
                format!("the storage holding {what} cannot be reached"),
            ),
            // Transfers cut short: the same request can succeed next time.
            // A stale handle is a network share that was remounted.
            Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::UnexpectedEof
            | Io::WriteZero
            | Io::Interrupted
            | Io::StaleNetworkFileHandle => (
                RelayErrorKind::Interrupted,
                format!("the transfer of {what} was interrupted ({err})"),
            ),
            Io::Unsupported => (
                RelayErrorKind::Unsupported,
                format!("the storage holding {what} does not support this operation ({err})"),
            ),
            _ => (
                RelayErrorKind::Other,
                format!("cannot access {what}: {err}"),
            ),
        };
        RelayError::new(kind, message).with_source(err)
    }
}

/// What kind of relay failure happened, and so whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayErrorKind {
    /// The file or folder does not exist. Callers deleting something
    /// treat this as done.
    NotFound,
    /// The relay refused access to this file or folder.
    PermissionDenied,
    /// The relay refused the user name, password or key.
    AuthenticationFailed,
    /// The relay has no space left, or the account is over its quota.
    StorageFull,
    /// The relay's host was not found or refused the connection.
    Unreachable,
    /// The relay did not answer in time.
    Timeout,
    /// The secure connection could not be set up (untrusted or expired
    /// certificate, wrong host name, no common protocol; for SSH, a host
    /// key that is unknown, changed or revoked).
    Tls,
    /// The path cannot be used on this relay (refused by validation or by
    /// the storage).
    InvalidPath,
    /// The relay address is malformed or names something Escale refuses.
    InvalidUrl,
    /// The relay cannot do what was asked (a missing feature, a file over
    /// its size limit, a backend not available in this build).
    Unsupported,
    /// A transfer was cut short: connection reset mid-way, short write.
    Interrupted,
    /// Anything else; assumed to be passing.
    Other,
}

impl RelayErrorKind {
    /// Whether trying the same operation again later can succeed without
    /// anyone changing anything.
    ///
    /// A full relay is retryable: other clients free space as receivers
    /// catch up, and the engine waits for it. Unclassified failures are
    /// retried too, so that a surprising but passing server error never
    /// stops syncing for good; the scheduler's back-off keeps that cheap.
    pub fn is_retryable(self) -> bool {
        match self {
            RelayErrorKind::Unreachable
            | RelayErrorKind::Timeout
            | RelayErrorKind::Interrupted
            | RelayErrorKind::StorageFull
            | RelayErrorKind::Other => true,
            RelayErrorKind::NotFound
            | RelayErrorKind::PermissionDenied
            | RelayErrorKind::AuthenticationFailed
            | RelayErrorKind::Tls
            | RelayErrorKind::InvalidPath
            | RelayErrorKind::InvalidUrl
            | RelayErrorKind::Unsupported => false,
        }
    }

    /// A stable, machine-readable code (`snake_case`) that user interfaces
    /// match on and that appears in `--json` output. Codes never change
    /// meaning once released.
    pub fn code(self) -> &'static str {
        match self {
            RelayErrorKind::NotFound => "relay_not_found",
            RelayErrorKind::PermissionDenied => "relay_permission_denied",
            RelayErrorKind::AuthenticationFailed => "relay_login_refused",
            RelayErrorKind::StorageFull => "relay_full",
            RelayErrorKind::Unreachable => "relay_unreachable",
            RelayErrorKind::Timeout => "relay_timeout",
            RelayErrorKind::Tls => "relay_tls",
            RelayErrorKind::InvalidPath => "relay_invalid_path",
            RelayErrorKind::InvalidUrl => "relay_invalid_url",
            RelayErrorKind::Unsupported => "relay_unsupported",
            RelayErrorKind::Interrupted => "relay_interrupted",
            RelayErrorKind::Other => "relay_error",
        }
    }
}

impl fmt::Display for RelayErrorKind {
    /// Shows the stable code, so logs and test failures name the kind the
    /// way user interfaces see it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;

    const ALL: [RelayErrorKind; 12] = [
        RelayErrorKind::NotFound,
        RelayErrorKind::PermissionDenied,
        RelayErrorKind::AuthenticationFailed,
        RelayErrorKind::StorageFull,
        RelayErrorKind::Unreachable,
        RelayErrorKind::Timeout,
        RelayErrorKind::Tls,
        RelayErrorKind::InvalidPath,
        RelayErrorKind::InvalidUrl,
        RelayErrorKind::Unsupported,
        RelayErrorKind::Interrupted,
        RelayErrorKind::Other,
    ];

    #[test]
    fn codes_are_distinct_prefixed_snake_case() {
        let mut codes: Vec<_> = ALL.iter().map(|k| k.code()).collect();
        for code in &codes {
            assert!(code.starts_with("relay_"), "{code} lacks the relay_ prefix");
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code} is not snake_case"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len(), "two kinds share a code");
    }

    #[test]
    fn only_passing_failures_are_retryable() {
        let retryable: Vec<_> = ALL.into_iter().filter(|k| k.is_retryable()).collect();
        assert_eq!(
            retryable,
            [
                RelayErrorKind::StorageFull,
                RelayErrorKind::Unreachable,
                RelayErrorKind::Timeout,
                RelayErrorKind::Interrupted,
                RelayErrorKind::Other,
            ]
        );
    }

    #[test]
    fn io_errors_are_sorted_and_named() {
        let cases = [
            (io::ErrorKind::NotFound, RelayErrorKind::NotFound),
            (io::ErrorKind::NotADirectory, RelayErrorKind::NotFound),
            (
                io::ErrorKind::PermissionDenied,
                RelayErrorKind::PermissionDenied,
            ),
            (
                io::ErrorKind::ReadOnlyFilesystem,
                RelayErrorKind::PermissionDenied,
            ),
            (io::ErrorKind::StorageFull, RelayErrorKind::StorageFull),
            (io::ErrorKind::QuotaExceeded, RelayErrorKind::StorageFull),
            (io::ErrorKind::FileTooLarge, RelayErrorKind::Unsupported),
            (io::ErrorKind::IsADirectory, RelayErrorKind::InvalidPath),
            (io::ErrorKind::TimedOut, RelayErrorKind::Timeout),
            (
                io::ErrorKind::ConnectionRefused,
                RelayErrorKind::Unreachable,
            ),
            (io::ErrorKind::ConnectionReset, RelayErrorKind::Interrupted),
            (io::ErrorKind::UnexpectedEof, RelayErrorKind::Interrupted),
            (io::ErrorKind::WriteZero, RelayErrorKind::Interrupted),
            (io::ErrorKind::InvalidData, RelayErrorKind::Other),
        ];
        for (io_kind, expected) in cases {
            let err = RelayError::from_io(io::Error::from(io_kind), "the relay file /r/x.bin");
            assert_eq!(err.kind(), expected, "{io_kind:?}");
            assert!(
                err.to_string().contains("the relay file /r/x.bin"),
                "{io_kind:?}: {err}"
            );
            assert!(err.source().is_some(), "{io_kind:?} lost its cause");
        }
    }

    #[cfg(unix)]
    #[test]
    fn enospc_from_the_os_is_storage_full() {
        // ENOSPC on Linux and macOS alike.
        let err = RelayError::from_io(io::Error::from_raw_os_error(28), "the relay file /r/x");
        assert_eq!(err.kind(), RelayErrorKind::StorageFull);
        assert_eq!(
            err.to_string(),
            "the storage holding the relay file /r/x is full"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn new_errors_keep_message_and_source() {
        let err = RelayError::new(
            RelayErrorKind::Tls,
            "the certificate of ftp.example is not trusted",
        )
        .with_source(io::Error::other("unknown issuer"));
        assert_eq!(err.kind(), RelayErrorKind::Tls);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "the certificate of ftp.example is not trusted"
        );
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("unknown issuer")
        );
    }
}
