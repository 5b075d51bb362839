//! The `sftp://` backend: a relay folder on an SSH server, reached with
//! SFTP in pure Rust (`russh` for SSH, `russh-sftp` for the file protocol),
//! without any `ssh` program installed.
//!
//! **One connection, reused.** A relay opens one SSH connection on its
//! first operation and keeps it, with one SFTP channel on which several
//! requests travel at once; up to [`PARALLELISM`] operations run together.
//! Keepalives notice a dead connection, and an operation that finds its
//! connection lost reconnects and runs once more, so a server restart or a
//! dropped Wi-Fi costs one slow operation, not an error.
//!
//! **Logins.** Keys first, then the password: the key file named in
//! [`Secrets::ssh_key`] (`ESCALE_SSH_KEY`), or else the user's default keys
//! (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`) that have no passphrase;
//! then [`Secrets::password`] (`ESCALE_RELAY_PASSWORD`). A key protected by
//! a passphrase is opened with `ESCALE_SSH_KEY_PASSPHRASE` when given.
//!
//! **Host keys are always checked** ([`known_hosts`]): the server's key
//! must be in the user's `~/.ssh/known_hosts`, the system's
//! `ssh_known_hosts`, or Escale's own file ([`Secrets::known_hosts`],
//! `ESCALE_KNOWN_HOSTS`). A server seen for the first time is trusted and
//! recorded in Escale's file (trust on first use, as `ssh` asks to), or
//! refused with instructions when there is no such file; a server whose
//! key changed is refused with a warning that says what to check and which
//! line to delete.
//!
//! **Writes are atomic for readers**: the data goes to `.escale-tmp-` and
//! random hex in the target's folder, created exclusively, its size is
//! checked, and it is renamed over the target with OpenSSH's
//! `posix-rename@openssh.com`, which replaces the target at once. Servers
//! without that extension get a remove and a plain rename, during which a
//! reader finds no file and retries later.
//!
//! **Reads and writes are pipelined**: a file travels as a stream of
//! requests of the largest size the server accepts (OpenSSH announces
//! 255 KiB through `limits@openssh.com`; 32 KiB, which every server takes,
//! otherwise), many in flight at once, so that a transfer is not a chain of
//! round trips.
//!
//! The relay's own folder is never created: a missing one is reported as
//! [`RelayErrorKind::NotFound`], like a network share that is not mounted,
//! because recreating it would hide that the relay the other computers use
//! is gone.

mod known_hosts;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::sync::{Mutex, Semaphore};
use zeroize::Zeroizing;

use self::known_hosts::{KnownHostsFile, Verdict};
use super::file::blocking;
use super::{
    Capabilities, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath, RelayUrl, Secrets,
};

/// The environment variable naming a private key file for SSH logins.
pub(crate) const SSH_KEY_ENV: &str = "ESCALE_SSH_KEY";
/// The environment variable holding the passphrase of that key.
pub(crate) const SSH_KEY_PASSPHRASE_ENV: &str = "ESCALE_SSH_KEY_PASSPHRASE";
/// The environment variable naming Escale's own known-hosts file.
pub(crate) const KNOWN_HOSTS_ENV: &str = "ESCALE_KNOWN_HOSTS";

/// Names starting with this are the backend's own temporaries, never relay
/// files: the relay format's names are opaque hex and never start with `.`.
const TEMP_PREFIX: &str = ".escale-tmp-";
/// How old a temporary must be before a listing removes it: far longer
/// than any write, so that another computer's upload is never cut short.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How long connecting may take, from the first packet to a ready SFTP
/// session (name lookup, key exchange, login).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may wait for its answer. Requests queue behind
/// the data in flight ([`IN_FLIGHT_BYTES`]), so this also bounds how slow
/// a link may be: 4 MiB in 120 s is 35 kB/s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How often to check a quiet connection, and how many unanswered checks
/// end it: a dead connection is noticed within about a minute.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// See [`KEEPALIVE_INTERVAL`].
const KEEPALIVE_MAX: usize = 3;
/// How many operations run at once on a relay's connection.
const PARALLELISM: usize = 4;
/// How many bytes of reads and writes may be in flight on a connection,
/// all operations together: enough to keep a fast link busy, little
/// enough that the last request of a burst is answered within
/// [`REQUEST_TIMEOUT`] on a slow one.
const IN_FLIGHT_BYTES: usize = 4 * 1024 * 1024;
/// The largest read or write request sent, when the server allows it
/// (OpenSSH: 255 KiB); larger ones would not fit its 256 KiB packets.
const MAX_CHUNK: u64 = 255 * 1024;
/// The request size every SFTP server must accept.
const SAFE_CHUNK: u64 = 32 * 1024;
/// The largest SFTP packet accepted from the server: a data packet of
/// [`MAX_CHUNK`] plus headers, with room to spare.
const MAX_PACKET: u32 = 512 * 1024;
/// The SSH flow-control window offered to the server for its data: large
/// enough for [`IN_FLIGHT_BYTES`] of reads to be on their way at once.
const WINDOW: u32 = 8 * 1024 * 1024;

/// The OpenSSH extension that renames over an existing file at once.
const POSIX_RENAME: &str = "posix-rename@openssh.com";
/// The OpenSSH extension that reports free space, used to tell a full
/// disk from other failures, which OpenSSH reports alike.
const STATVFS: &str = "statvfs@openssh.com";
/// The OpenSSH extension that announces the request sizes it accepts.
const LIMITS: &str = "limits@openssh.com";

/// Where to find the user's SSH files: their home and the system's in
/// real use; tests point elsewhere so that they do not depend on the
/// machine they run on.
#[derive(Debug, Clone)]
pub(crate) struct SshFiles {
    /// Known-hosts files that are read but never written.
    pub(crate) known_hosts: Vec<PathBuf>,
    /// Private keys tried when no key file is given, in order.
    pub(crate) default_keys: Vec<PathBuf>,
}

impl SshFiles {
    /// The user's `~/.ssh/known_hosts` and the system's
    /// `ssh_known_hosts`, and the user's default keys in the order
    /// OpenSSH tries them (DSA left out: OpenSSH dropped it).
    pub(crate) fn from_home() -> Self {
        let ssh = dirs::home_dir().map(|home| home.join(".ssh"));
        let mut known_hosts = Vec::new();
        let mut default_keys = Vec::new();
        if let Some(ssh) = &ssh {
            known_hosts.push(ssh.join("known_hosts"));
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                default_keys.push(ssh.join(name));
            }
        }
        if cfg!(windows) {
            if let Some(data) = std::env::var_os("PROGRAMDATA") {
                known_hosts.push(Path::new(&data).join("ssh").join("ssh_known_hosts"));
            }
        } else {
            known_hosts.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
        }
        SshFiles {
            known_hosts,
            default_keys,
        }
    }
}

/// A relay folder on an SFTP server.
pub(crate) struct SftpRelay {
    /// The server's host name or address, as written in the address.
    host: String,
    /// The SSH port.
    port: u16,
    /// The login name.
    user: String,
    /// The relay folder on the server, as SFTP paths are written: absolute,
    /// or `.` for the login folder (`sftp://host/~`).
    root: String,
    /// What relay paths are appended to: the root and a `/`, or nothing
    /// for the login folder.
    prefix: String,
    /// The relay's address, without secrets, for messages.
    address: String,
    /// The password, tried after the keys.
    password: Option<Zeroizing<String>>,
    /// A key file given explicitly, tried instead of the default keys.
    key_file: Option<PathBuf>,
    /// The passphrase of `key_file`.
    key_passphrase: Option<Zeroizing<String>>,
    /// Escale's own known-hosts file, where new servers are recorded.
    escale_known_hosts: Option<PathBuf>,
    /// The user's SSH files.
    files: SshFiles,
    /// The current connection, once made; replaced when it breaks.
    session: Mutex<Option<Arc<Session>>>,
    /// Limits how many operations run at once.
    slots: Semaphore,
    /// Whether the last server connected to replaces files atomically;
    /// assumed until a connection says otherwise, because nearly every
    /// SFTP server is OpenSSH.
    atomic_rename: AtomicBool,
}

impl fmt::Debug for SftpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpRelay")
            .field("address", &self.address)
            .field("key_file", &self.key_file)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("escale_known_hosts", &self.escale_known_hosts)
            .finish_non_exhaustive()
    }
}

/// One SSH connection with its SFTP channel, and what the server offers.
struct Session {
    /// The SSH connection; dropping it ends the connection.
    ssh: client::Handle<Client>,
    /// The SFTP channel.
    sftp: RawSftpSession,
    /// Whether the server offers [`POSIX_RENAME`].
    posix_rename: bool,
    /// Whether the server offers [`STATVFS`].
    statvfs: bool,
    /// The size of read requests.
    read_chunk: u64,
    /// The size of write requests.
    write_chunk: u64,
    /// Bytes in flight, in KiB permits, shared by every operation.
    in_flight: Semaphore,
}

impl Session {
    /// Whether the SSH connection has ended.
    fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }

    /// Waits until `len` more bytes may be in flight.
    async fn reserve(&self, len: u64) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        let kib = u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX);
        self.in_flight
            .acquire_many(kib)
            .await
            .map_err(|_| Failure::Lost("the connection is closing".into()))
    }
}

/// Why an SFTP operation failed, before it is put into words by the
/// caller, who knows what was being accessed.
#[derive(Debug)]
enum Failure {
    /// The server answered with an error status.
    Status(StatusCode, String),
    /// The server did not answer in time.
    Timeout,
    /// The connection or the SFTP channel broke.
    Lost(String),
    /// A read ended before the end the file had when it was opened.
    Truncated,
    /// A write left a file of another size than what was sent.
    ShortWrite {
        /// Bytes sent.
        sent: u64,
        /// Bytes the server reports.
        stored: u64,
    },
    /// A file was found where a folder should be, or the other way round.
    WrongKind,
    /// A complete error already.
    Relay(RelayError),
}

impl From<SftpError> for Failure {
    fn from(err: SftpError) -> Self {
        match err {
            SftpError::Status(status) => Failure::Status(status.status_code, status.error_message),
            SftpError::Timeout => Failure::Timeout,
            // What remains means the channel or its framing broke: the
            // stream's state is unknown, so the connection is dropped.
            other => Failure::Lost(other.to_string()),
        }
    }
}

/// What a file system entry is, from the type bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// A link, a device, or a mode the server did not send.
    Other,
}

impl Kind {
    /// The kind of the entry with these attributes.
    fn of(attrs: &FileAttributes) -> Kind {
        match attrs.permissions.map(|mode| mode & 0o170_000) {
            Some(0o040_000) => Kind::Dir,
            Some(0o100_000) => Kind::File,
            _ => Kind::Other,
        }
    }
}

impl SftpRelay {
    /// Opens the relay of an `sftp://` address with `secrets` and the
    /// user's SSH files. Nothing is sent until the first operation.
    pub(crate) fn open(url: &RelayUrl, secrets: &Secrets) -> Result<Self, RelayError> {
        Self::with_files(url, secrets, SshFiles::from_home())
    }

    /// [`SftpRelay::open`] with the SSH files given.
    pub(crate) fn with_files(
        url: &RelayUrl,
        secrets: &Secrets,
        files: SshFiles,
    ) -> Result<Self, RelayError> {
        let RelayUrl::Sftp {
            host,
            port,
            user,
            path,
        } = url
        else {
            return Err(RelayError::new(
                RelayErrorKind::InvalidUrl,
                format!("{url} is not an SFTP address"),
            ));
        };
        let user = match user {
            Some(user) => user.clone(),
            None => local_user().ok_or_else(|| {
                RelayError::new(
                    RelayErrorKind::InvalidUrl,
                    format!(
                        "the relay address {url} has no user name and the local one is not \
                         known; write it as sftp://user@{host}/folder"
                    ),
                )
            })?,
        };
        // `sftp://host/~/x` is x in the login folder, as curl reads it.
        let (root, prefix) = match path.strip_prefix("/~") {
            Some("") => (".".to_owned(), String::new()),
            Some(rest) if rest.starts_with('/') => {
                (rest[1..].to_owned(), format!("{}/", &rest[1..]))
            }
            _ if path == "/" => ("/".to_owned(), "/".to_owned()),
            _ => (path.clone(), format!("{path}/")),
        };
        Ok(SftpRelay {
            host: host.clone(),
            port: *port,
            user,
            root,
            prefix,
            address: url.to_string(),
            password: secrets.password.clone().map(Zeroizing::new),
            key_file: secrets.ssh_key.clone(),
            key_passphrase: secrets.ssh_key_passphrase.clone().map(Zeroizing::new),
            escale_known_hosts: secrets.known_hosts.clone(),
            files,
            session: Mutex::new(None),
            slots: Semaphore::new(PARALLELISM),
            atomic_rename: AtomicBool::new(true),
        })
    }

    /// The server as messages name it.
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The SFTP path of a relay path.
    fn remote(&self, path: &RelayPath) -> String {
        if path.is_root() {
            self.root.clone()
        } else {
            format!("{}{}", self.prefix, path.as_str())
        }
    }

    /// How messages name a relay file.
    fn file_words(&self, path: &RelayPath) -> String {
        format!("the relay file {path} at {}", self.address)
    }

    /// How messages name a relay folder.
    fn dir_words(&self, path: &RelayPath) -> String {
        format!("the relay folder {path} at {}", self.address)
    }

    /// The connection, made or remade when there is none or it ended.
    async fn session(&self) -> Result<Arc<Session>, RelayError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref()
            && !session.is_closed()
        {
            return Ok(Arc::clone(session));
        }
        *current = None;
        let session = match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
            Ok(session) => Arc::new(session?),
            Err(_) => {
                return Err(RelayError::new(
                    RelayErrorKind::Timeout,
                    format!(
                        "the SSH server {} did not complete the connection within {} seconds",
                        self.server(),
                        CONNECT_TIMEOUT.as_secs()
                    ),
                ));
            }
        };
        self.atomic_rename
            .store(session.posix_rename, Ordering::Relaxed);
        *current = Some(Arc::clone(&session));
        Ok(session)
    }

    /// Forgets `broken`, unless another operation already replaced it.
    async fn discard(&self, broken: &Arc<Session>) {
        let mut current = self.session.lock().await;
        if current.as_ref().is_some_and(|s| Arc::ptr_eq(s, broken)) {
            *current = None;
        }
    }

    /// Runs `op` on the connection. When the connection turns out to be
    /// lost, it is remade and `op` runs once more; operations are written
    /// so that running twice is harmless (see [`Relay::write`] here).
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, RelayError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let _slot = self.slots.acquire().await.map_err(|_| {
            RelayError::new(
                RelayErrorKind::Interrupted,
                format!("the relay {} is closing", self.address),
            )
        })?;
        let mut again = true;
        loop {
            let session = self.session().await?;
            match op(Arc::clone(&session)).await {
                Ok(value) => return Ok(value),
                Err(Failure::Lost(reason)) if again => {
                    tracing::debug!(server = %self.server(), %reason, "SFTP connection lost; reconnecting");
                    self.discard(&session).await;
                    again = false;
                }
                Err(failure) => {
                    if matches!(failure, Failure::Lost(_) | Failure::Timeout) {
                        self.discard(&session).await;
                    }
                    return Err(self.explain(failure, what));
                }
            }
        }
    }

    /// Puts a failure into words about `what` (a noun phrase).
    fn explain(&self, failure: Failure, what: &str) -> RelayError {
        use RelayErrorKind as K;
        let server = self.server();
        let (kind, message) = match failure {
            Failure::Relay(err) => return err,
            Failure::Status(code, text) => return status_error(code, &text, what),
            Failure::Timeout => (
                K::Timeout,
                format!(
                    "the SSH server {server} did not answer within {} seconds about {what}",
                    REQUEST_TIMEOUT.as_secs()
                ),
            ),
            Failure::Lost(reason) => (
                K::Interrupted,
                format!(
                    "the connection to the SSH server {server} was lost while accessing {what} ({reason})"
                ),
            ),
            Failure::Truncated => (
                K::Interrupted,
                format!("{what} was cut short while being read (it changed on the server)"),
            ),
            Failure::ShortWrite { sent, stored } => (
                K::Interrupted,
                format!("{what} was stored with {stored} bytes instead of the {sent} sent"),
            ),
            Failure::WrongKind => (
                K::InvalidPath,
                format!("{what} is a folder where a file is expected, or the other way round"),
            ),
        };
        RelayError::new(kind, message)
    }

    /// Connects, checks the host key, logs in and starts SFTP.
    async fn connect(&self) -> Result<Session, RelayError> {
        let server = self.server();
        let credentials = self.credentials().await?;
        let trusted = self.trusted_files().await?;
        let name = known_hosts::lookup_name(&self.host, self.port);

        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|err| {
                RelayError::new(
                    RelayErrorKind::Unreachable,
                    format!(
                        "the server name {} of the relay {} was not found ({err})",
                        self.host, self.address
                    ),
                )
                .with_source(err)
            })?
            .collect();
        let socket = tokio::net::TcpStream::connect(&addresses[..])
            .await
            .map_err(|err| {
                let kind = match err.kind() {
                    std::io::ErrorKind::TimedOut => RelayErrorKind::Timeout,
                    _ => RelayErrorKind::Unreachable,
                };
                RelayError::new(
                    kind,
                    format!(
                        "the SSH server {server} of the relay cannot be reached ({err}); check \
                         the address and port, and that the server is running"
                    ),
                )
                .with_source(err)
            })?;
        // Requests are small and answered one by one: waiting to fill
        // packets would only add delay.
        let _ = socket.set_nodelay(true);

        let mut preferred = russh::Preferred::default();
        preferred.key = prefer_known_algorithms(
            &preferred.key,
            &known_hosts::known_algorithms(&trusted, &name),
        )
        .into();
        let config = client::Config {
            preferred,
            window_size: WINDOW,
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: KEEPALIVE_MAX,
            nodelay: true,
            ..client::Config::default()
        };
        let handler = Client {
            name,
            server: server.clone(),
            user: self.user.clone(),
            port: self.port,
            host: self.host.clone(),
            trusted,
            user_files: self.files.known_hosts.clone(),
            escale_file: self.escale_known_hosts.clone(),
            accepted: None,
        };
        let mut ssh = client::connect_stream(Arc::new(config), socket, handler)
            .await
            .map_err(|failure| match failure {
                HandshakeFailure::HostKey(err) => err,
                HandshakeFailure::Ssh(err) => ssh_error(err, &server),
            })?;
        self.log_in(&mut ssh, credentials).await?;
        let sftp = self.start_sftp(&ssh).await?;
        sftp_session(ssh, sftp)
            .await
            .map_err(|failure| self.explain(failure, &format!("the relay {}", self.address)))
    }

    /// Reads the known-hosts files, off the async threads.
    async fn trusted_files(&self) -> Result<Vec<KnownHostsFile>, RelayError> {
        let mut paths = self.files.known_hosts.clone();
        paths.extend(self.escale_known_hosts.clone());
        blocking(move || {
            let mut files = Vec::with_capacity(paths.len());
            for path in paths {
                match KnownHostsFile::read(&path) {
                    Ok(file) => files.push(file),
                    // Another program's file we cannot read (the system's
                    // with odd permissions) only trusts nothing; refusing
                    // to connect because of it would help no one.
                    Err(err) => tracing::debug!(
                        file = %path.display(),
                        error = %err,
                        "cannot read a known-hosts file; skipping it"
                    ),
                }
            }
            Ok(files)
        })
        .await
    }

    /// Loads the keys to try, and says which default keys were skipped.
    async fn credentials(&self) -> Result<Credentials, RelayError> {
        let explicit = self.key_file.clone();
        let passphrase = self.key_passphrase.clone();
        let defaults = self.files.default_keys.clone();
        let credentials = blocking(move || {
            let mut credentials = Credentials::default();
            if let Some(path) = explicit {
                let key = load_key(&path, passphrase.as_ref().map(|p| p.as_str()))?;
                credentials.keys.push((path, key));
            } else {
                for path in defaults {
                    if !path.is_file() {
                        continue;
                    }
                    match russh::keys::load_secret_key(&path, None) {
                        Ok(key) => credentials.keys.push((path, key)),
                        Err(russh::keys::Error::KeyIsEncrypted) => {
                            credentials.skipped.push(format!(
                                "{} was not tried because it is protected by a passphrase \
                             (name it in {SSH_KEY_ENV} and give the passphrase in \
                             {SSH_KEY_PASSPHRASE_ENV})",
                                path.display()
                            ))
                        }
                        Err(err) => credentials.skipped.push(format!(
                            "{} was not tried because it cannot be read ({err})",
                            path.display()
                        )),
                    }
                }
            }
            Ok(credentials)
        })
        .await?;
        if credentials.keys.is_empty() && self.password.is_none() {
            let mut message = format!(
                "there is no password or SSH key to log in to the SSH server {} as {}: set \
                 {} to the password, or {SSH_KEY_ENV} to a private key file",
                self.server(),
                self.user,
                super::opendal::PASSWORD_ENV,
            );
            for note in &credentials.skipped {
                message.push_str("; ");
                message.push_str(note);
            }
            return Err(RelayError::new(
                RelayErrorKind::AuthenticationFailed,
                message,
            ));
        }
        Ok(credentials)
    }

    /// Tries the keys, then the password.
    async fn log_in(
        &self,
        ssh: &mut client::Handle<Client>,
        credentials: Credentials,
    ) -> Result<(), RelayError> {
        let server = self.server();
        let lost = |err: russh::Error| ssh_error(err, &server);
        let mut tried = Vec::new();
        for (path, key) in credentials.keys {
            let hash = if key.algorithm().is_rsa() {
                // Servers without the extension that says which RSA
                // signatures they take are old; SHA-256 is the safe bet.
                ssh.best_supported_rsa_hash()
                    .await
                    .map_err(lost)?
                    .unwrap_or(Some(HashAlg::Sha256))
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = ssh
                .authenticate_publickey(self.user.clone(), key)
                .await
                .map_err(lost)?;
            if result.success() {
                return Ok(());
            }
            self.check_still_connected(ssh)?;
            tried.push(format!("the key {}", path.display()));
        }
        if let Some(password) = &self.password {
            let result = ssh
                .authenticate_password(self.user.clone(), password.as_str())
                .await
                .map_err(lost)?;
            if result.success() {
                return Ok(());
            }
            self.check_still_connected(ssh)?;
            tried.push("the password".to_owned());
        }
        let mut message = format!(
            "the SSH server {server} refused the login of {} (tried {})",
            self.user,
            tried.join(" and ")
        );
        for note in &credentials.skipped {
            message.push_str("; ");
            message.push_str(note);
        }
        Err(RelayError::new(
            RelayErrorKind::AuthenticationFailed,
            message,
        ))
    }

    /// A login refusal and a connection closed during the login look the
    /// same to the client library; only the second is worth a retry.
    fn check_still_connected(&self, ssh: &client::Handle<Client>) -> Result<(), RelayError> {
        if ssh.is_closed() {
            return Err(RelayError::new(
                RelayErrorKind::Interrupted,
                format!(
                    "the SSH server {} closed the connection during the login",
                    self.server()
                ),
            ));
        }
        Ok(())
    }

    /// Opens the SFTP channel.
    async fn start_sftp(&self, ssh: &client::Handle<Client>) -> Result<RawSftpSession, RelayError> {
        let server = self.server();
        let mut channel = ssh
            .channel_open_session()
            .await
            .map_err(|err| ssh_error(err, &server))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|err| ssh_error(err, &server))?;
        // The answer to the request comes before any data; a refusal would
        // otherwise only show as a channel that closes.
        loop {
            match channel.wait().await {
                Some(russh::ChannelMsg::Success) => break,
                Some(russh::ChannelMsg::Failure) => {
                    return Err(RelayError::new(
                        RelayErrorKind::Unsupported,
                        format!(
                            "the SSH server {server} does not offer SFTP to {} (its SFTP \
                             subsystem is off for this account)",
                            self.user
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(RelayError::new(
                        RelayErrorKind::Interrupted,
                        format!("the SSH server {server} closed the channel opened for SFTP"),
                    ));
                }
            }
        }
        let config = russh_sftp::client::Config {
            max_packet_len: MAX_PACKET,
            request_timeout_secs: REQUEST_TIMEOUT.as_secs(),
            ..russh_sftp::client::Config::default()
        };
        Ok(RawSftpSession::new_with_config(
            channel.into_stream(),
            config,
        ))
    }

    /// Lists `remote` as the server sends it, without `.` and `..`; an
    /// entry sent without its mode gets one from its `ls -l` line, which
    /// SFTP version 3 servers send beside it.
    async fn raw_list(
        session: &Session,
        remote: &str,
    ) -> Result<Vec<(String, FileAttributes)>, Failure> {
        let handle = session.sftp.opendir(remote).await?.handle;
        let mut entries = Vec::new();
        let listed = loop {
            match session.sftp.readdir(handle.as_str()).await {
                Ok(name) => entries.extend(
                    name.files
                        .into_iter()
                        .filter(|f| f.filename != "." && f.filename != "..")
                        .map(|mut f| {
                            if f.attrs.permissions.is_none() {
                                f.attrs.permissions = match f.longname.chars().next() {
                                    Some('d') => Some(0o040_000),
                                    Some('-') => Some(0o100_000),
                                    _ => None,
                                };
                            }
                            (f.filename, f.attrs)
                        }),
                ),
                Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => {
                    break Ok(entries);
                }
                Err(err) => break Err(Failure::from(err)),
            }
        };
        // A failed close only leaks a handle until the channel closes.
        let _ = session.sftp.close(handle).await;
        listed
    }
}

/// The keys to try and notes about default keys left out.
#[derive(Default)]
struct Credentials {
    /// Keys in the order to try them, with their files for messages.
    keys: Vec<(PathBuf, PrivateKey)>,
    /// Why default keys were left out, for the message if all fail.
    skipped: Vec<String>,
}

/// Loads the key file given explicitly.
fn load_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, RelayError> {
    russh::keys::load_secret_key(path, passphrase).map_err(|err| {
        let message = match (&err, passphrase) {
            (russh::keys::Error::KeyIsEncrypted, _) => format!(
                "the SSH key {} is protected by a passphrase and none was given; set \
                 {SSH_KEY_PASSPHRASE_ENV}, or use a key without a passphrase",
                path.display()
            ),
            (russh::keys::Error::IO(io), _) => {
                format!("the SSH key file {} cannot be read ({io})", path.display())
            }
            (_, Some(_)) => format!(
                "the SSH key {} cannot be opened; is the passphrase in \
                 {SSH_KEY_PASSPHRASE_ENV} right? ({err})",
                path.display()
            ),
            (_, None) => format!(
                "the file {} is not a private key Escale can use ({err})",
                path.display()
            ),
        };
        RelayError::new(RelayErrorKind::AuthenticationFailed, message).with_source(err)
    })
}

/// The local user's name, used when the address has none.
fn local_user() -> Option<String> {
    ["USER", "USERNAME", "LOGNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|name| !name.is_empty())
}

/// The host key algorithms to ask for, those of keys already known for
/// the server first, in the library's order otherwise.
fn prefer_known_algorithms(
    all: &[russh::keys::Algorithm],
    known: &[russh::keys::Algorithm],
) -> Vec<russh::keys::Algorithm> {
    // RSA keys are recorded as `ssh-rsa` whatever signature is used.
    let is_known = |algorithm: &russh::keys::Algorithm| {
        known
            .iter()
            .any(|k| k == algorithm || (k.clone().is_rsa() && algorithm.clone().is_rsa()))
    };
    let (mut first, rest): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|a| is_known(a));
    first.extend(rest);
    first
}

/// Initialises SFTP on a fresh channel and learns what the server offers.
async fn sftp_session(
    ssh: client::Handle<Client>,
    mut sftp: RawSftpSession,
) -> Result<Session, Failure> {
    let version = sftp.init().await?;
    let offers =
        |name: &str, revision: &str| version.extensions.get(name).is_some_and(|v| v == revision);
    let (posix_rename, statvfs) = (offers(POSIX_RENAME, "1"), offers(STATVFS, "2"));
    let (mut read_chunk, mut write_chunk) = (SAFE_CHUNK, SAFE_CHUNK);
    if offers(LIMITS, "1") {
        let limits = sftp.limits().await?;
        // Zero means "no limit" in this extension.
        let pick = |announced: u64| match announced {
            0 => MAX_CHUNK,
            n => n.min(MAX_CHUNK),
        };
        read_chunk = pick(limits.max_read_len);
        write_chunk = pick(limits.max_write_len);
        sftp.set_limits(limits.into());
    }
    tracing::debug!(
        version = version.version,
        posix_rename,
        statvfs,
        read_chunk,
        write_chunk,
        "SFTP session ready"
    );
    Ok(Session {
        ssh,
        sftp,
        posix_rename,
        statvfs,
        read_chunk,
        write_chunk,
        in_flight: Semaphore::new(IN_FLIGHT_BYTES / 1024),
    })
}

/// What can end a handshake: SSH itself, or a host key we refuse.
#[derive(Debug)]
enum HandshakeFailure {
    /// The SSH library's error.
    Ssh(russh::Error),
    /// The host key was refused, with the complete message.
    HostKey(RelayError),
}

impl From<russh::Error> for HandshakeFailure {
    fn from(err: russh::Error) -> Self {
        HandshakeFailure::Ssh(err)
    }
}

/// The SSH client's side of the handshake: the host key check.
struct Client {
    /// The server's name in known-hosts files.
    name: String,
    /// The server as messages name it.
    server: String,
    /// The host as written in the address.
    host: String,
    /// The port, for the `ssh` command a message suggests.
    port: u16,
    /// The login name, for that command.
    user: String,
    /// The known-hosts files, read before connecting.
    trusted: Vec<KnownHostsFile>,
    /// The user's and the system's known-hosts files, for messages.
    user_files: Vec<PathBuf>,
    /// Where to record a server seen for the first time.
    escale_file: Option<PathBuf>,
    /// The key accepted at the first key exchange: later ones (rekeying)
    /// must present the same.
    accepted: Option<russh::keys::ssh_key::public::KeyData>,
}

impl client::Handler for Client {
    type Error = HandshakeFailure;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data().clone(),
            // Certificates are never asked for; a server sending one
            // anyway is judged by the key it certifies.
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone(),
        };
        let fingerprint = known_hosts::fingerprint(&key);
        if let Some(accepted) = &self.accepted {
            if *accepted == key {
                return Ok(true);
            }
            return Err(HandshakeFailure::HostKey(RelayError::new(
                RelayErrorKind::Tls,
                format!(
                    "WARNING: the SSH server {} presented another host key ({fingerprint}) in \
                     the middle of the connection; Escale stopped the connection",
                    self.server
                ),
            )));
        }
        match known_hosts::check(&self.trusted, &self.name, &key) {
            Verdict::Known(place) => {
                tracing::debug!(server = %self.server, %fingerprint, known_at = %place, "SSH host key known");
            }
            Verdict::Changed {
                place,
                known_fingerprint,
            } => {
                return Err(HandshakeFailure::HostKey(RelayError::new(
                    RelayErrorKind::Tls,
                    format!(
                        "WARNING: the SSH server {server} presents a host key that differs from \
                         the one recorded for it. Someone may be intercepting the connection \
                         (a man-in-the-middle attack), or the server's key was replaced. Escale \
                         refuses to connect. The server now presents {fingerprint}; the key \
                         recorded in {file}, line {line}, is {known_fingerprint}. Only if the \
                         server's administrator confirms that its key changed to \
                         {fingerprint}, delete line {line} of {file} and connect again.",
                        server = self.server,
                        file = place.path.display(),
                        line = place.line,
                    ),
                )));
            }
            Verdict::Revoked(place) => {
                return Err(HandshakeFailure::HostKey(RelayError::new(
                    RelayErrorKind::Tls,
                    format!(
                        "WARNING: the SSH server {} presents the host key {fingerprint}, which \
                         {place} marks as revoked; Escale refuses to connect",
                        self.server
                    ),
                )));
            }
            Verdict::Unknown => match &self.escale_file {
                Some(file) => {
                    let (path, name, recorded) = (file.clone(), self.name.clone(), key.clone());
                    blocking(move || {
                        known_hosts::append(&path, &name, &recorded).map_err(|err| {
                            RelayError::new(
                                RelayErrorKind::PermissionDenied,
                                format!(
                                    "cannot record the host key of a new SSH server in {} ({err})",
                                    path.display()
                                ),
                            )
                            .with_source(err)
                        })
                    })
                    .await
                    .map_err(HandshakeFailure::HostKey)?;
                    tracing::info!(
                        server = %self.server,
                        %fingerprint,
                        file = %file.display(),
                        "first connection to this SSH server: its host key is now trusted and recorded"
                    );
                }
                None => {
                    let files: Vec<String> = self
                        .user_files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    let searched = if files.is_empty() {
                        "no known-hosts file is set up".to_owned()
                    } else {
                        format!("it is in none of {}", files.join(", "))
                    };
                    let port = if self.port == 22 {
                        String::new()
                    } else {
                        format!("-p {} ", self.port)
                    };
                    return Err(HandshakeFailure::HostKey(RelayError::new(
                        RelayErrorKind::Tls,
                        format!(
                            "the SSH server {} is not known: its host key is {fingerprint}, and \
                             {searched}. Check this fingerprint with the server's \
                             administrator, then trust it by connecting once with \
                             `ssh {port}{}@{}` and answering yes, or set {KNOWN_HOSTS_ENV} to a \
                             file where Escale records servers it connects to for the first time",
                            self.server, self.user, self.host,
                        ),
                    )));
                }
            },
        }
        self.accepted = Some(key);
        Ok(true)
    }
}

/// Sorts an error of the SSH library by what can be done about it.
fn ssh_error(err: russh::Error, server: &str) -> RelayError {
    use RelayErrorKind as K;
    use russh::Error as E;
    let (kind, message) = match &err {
        E::IO(io) => match io.kind() {
            std::io::ErrorKind::TimedOut => (
                K::Timeout,
                format!("the SSH server {server} did not answer in time ({io})"),
            ),
            std::io::ErrorKind::ConnectionRefused => (
                K::Unreachable,
                format!("the SSH server {server} refused the connection"),
            ),
            _ => (
                K::Interrupted,
                format!("the connection to the SSH server {server} was cut ({io})"),
            ),
        },
        E::Disconnect | E::HUP | E::SendError | E::RecvError | E::Pending => (
            K::Interrupted,
            format!("the SSH server {server} closed the connection"),
        ),
        E::ConnectionTimeout | E::KeepaliveTimeout | E::InactivityTimeout | E::Elapsed(_) => (
            K::Timeout,
            format!("the SSH server {server} stopped answering"),
        ),
        E::NoCommonAlgo { kind, theirs, .. } => (
            K::Unsupported,
            format!(
                "the SSH server {server} and Escale have no {kind:?} algorithm in common (the \
                 server offers {})",
                theirs.join(", ")
            ),
        ),
        E::Version => (
            K::Unsupported,
            format!("the server at {server} does not speak SSH; is this the SSH port?"),
        ),
        E::ChannelOpenFailure(reason) => (
            K::Unsupported,
            format!("the SSH server {server} refused to open a channel for SFTP ({reason:?})"),
        ),
        E::KexInit
        | E::Kex
        | E::WrongServerSig
        | E::PacketAuth
        | E::DecryptionError
        | E::StrictKeyExchangeViolation { .. } => (
            K::Tls,
            format!("the secure connection to the SSH server {server} could not be set up ({err})"),
        ),
        _ => (
            K::Other,
            format!("the connection to the SSH server {server} failed ({err})"),
        ),
    };
    RelayError::new(kind, message).with_source(err)
}

/// Sorts an SFTP error status about `what` (a noun phrase).
fn status_error(code: StatusCode, text: &str, what: &str) -> RelayError {
    use RelayErrorKind as K;
    let detail = if text.is_empty() {
        code.to_string()
    } else {
        text.to_owned()
    };
    let (kind, message) = match code {
        StatusCode::NoSuchFile => (K::NotFound, format!("{what} does not exist")),
        StatusCode::PermissionDenied => (
            K::PermissionDenied,
            format!("permission to access {what} was refused"),
        ),
        StatusCode::OpUnsupported => (
            K::Unsupported,
            format!("the SSH server of {what} does not support this operation"),
        ),
        StatusCode::NoConnection | StatusCode::ConnectionLost | StatusCode::Eof => (
            K::Interrupted,
            format!("the transfer of {what} was interrupted ({detail})"),
        ),
        _ if says_full(text) => (
            K::StorageFull,
            format!("the storage holding {what} is full"),
        ),
        _ => (
            K::Other,
            format!(
                "the SSH server could not complete the request on {what} (it answered: {detail})"
            ),
        ),
    };
    RelayError::new(kind, message).with_source(std::io::Error::other(format!("{code}: {text}")))
}

/// Whether a server's message says the disk or the quota is full; SFTP
/// version 3 has no status for it, so servers that say it say it in words.
fn says_full(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "no space",
        "disk full",
        "quota",
        "space left",
        "insufficient space",
    ]
    .iter()
    .any(|words| text.contains(words))
}

/// Encodes the arguments of an extended request: SSH strings, each its
/// length then its bytes.
fn ssh_strings(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Reads `range` of the open file `handle` (the whole file when `None`),
/// many requests in flight at once.
async fn read_open(
    session: &Session,
    handle: &str,
    range: Option<Range<u64>>,
) -> Result<Bytes, Failure> {
    let attrs = session.sftp.fstat(handle).await?.attrs;
    if Kind::of(&attrs) == Kind::Dir {
        return Err(Failure::WrongKind);
    }
    let wanted = range.unwrap_or(0..u64::MAX);
    let Some(size) = attrs.size else {
        return read_sequential(session, handle, wanted).await;
    };
    let (start, end) = (wanted.start.min(size), wanted.end.min(size));
    if start >= end {
        return Ok(Bytes::new());
    }
    let chunk = session.read_chunk;
    let depth = (IN_FLIGHT_BYTES as u64 / chunk).max(1) as usize;
    let capacity = usize::try_from(end - start).map_err(|_| Failure::Truncated)?;
    let mut out = BytesMut::with_capacity(capacity);
    let spans = (start..end)
        .step_by(usize::try_from(chunk).unwrap_or(usize::MAX))
        .map(|offset| (offset, chunk.min(end - offset)));
    let mut parts = stream::iter(spans)
        .map(|(offset, len)| read_span(session, handle, offset, len))
        .buffered(depth);
    while let Some(part) = parts.next().await {
        out.extend_from_slice(&part?);
    }
    Ok(out.freeze())
}

/// Reads `len` bytes at `offset`, asking again for the rest when the
/// server sends less (servers may, and OpenSSH does past 255 KiB). The
/// size of the file was known, so an early end means it was truncated.
async fn read_span(
    session: &Session,
    handle: &str,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, Failure> {
    let _reserved = session.reserve(len).await?;
    let mut data = Vec::new();
    while (data.len() as u64) < len {
        let want = u32::try_from(len - data.len() as u64).unwrap_or(u32::MAX);
        match session
            .sftp
            .read(handle, offset + data.len() as u64, want)
            .await
        {
            Ok(got) if got.data.is_empty() => return Err(Failure::Truncated),
            Ok(got) if data.is_empty() => data = got.data,
            Ok(got) => data.extend_from_slice(&got.data),
            Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => {
                return Err(Failure::Truncated);
            }
            Err(err) => return Err(err.into()),
        }
    }
    // A server sending more than asked must not shift what follows.
    data.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    Ok(data)
}

/// Reads `wanted` of a file whose size the server did not tell, one
/// request after the other until its end.
async fn read_sequential(
    session: &Session,
    handle: &str,
    wanted: Range<u64>,
) -> Result<Bytes, Failure> {
    let mut out = BytesMut::new();
    let mut offset = wanted.start;
    while offset < wanted.end {
        let want = u32::try_from(session.read_chunk.min(wanted.end - offset)).unwrap_or(u32::MAX);
        match session.sftp.read(handle, offset, want).await {
            Ok(got) if got.data.is_empty() => break,
            Ok(got) => {
                offset += got.data.len() as u64;
                out.extend_from_slice(&got.data);
            }
            Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => break,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(out.freeze())
}

/// Writes `data` into the open file `handle`, many requests in flight at
/// once, then checks the size the server reports.
async fn write_open(session: &Session, handle: &str, data: &Bytes) -> Result<(), Failure> {
    let len = data.len() as u64;
    let chunk = session.write_chunk;
    let depth = (IN_FLIGHT_BYTES as u64 / chunk).max(1) as usize;
    let spans = (0..len)
        .step_by(usize::try_from(chunk).unwrap_or(usize::MAX))
        .map(|offset| (offset, chunk.min(len - offset)));
    let mut writes = stream::iter(spans)
        .map(|(offset, part)| async move {
            let _reserved = session.reserve(part).await?;
            // Both bounds are below `data.len()`, a usize.
            let bytes = data[offset as usize..(offset + part) as usize].to_vec();
            session
                .sftp
                .write(handle, offset, bytes)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .buffer_unordered(depth);
    while let Some(done) = writes.next().await {
        done?;
    }
    let stored = session.sftp.fstat(handle).await?.attrs.size;
    match stored {
        Some(stored) if stored != len => Err(Failure::ShortWrite { sent: len, stored }),
        _ => Ok(()),
    }
}

/// Replaces `to` with `from`: at once with [`POSIX_RENAME`], otherwise by
/// removing `to` first, since a plain SFTP rename refuses to overwrite.
async fn rename_over(session: &Session, from: &str, to: &str) -> Result<(), Failure> {
    if session.posix_rename {
        return match session
            .sftp
            .extended(POSIX_RENAME, ssh_strings(&[from, to]))
            .await?
        {
            Packet::Status(status) if status.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(status) => {
                Err(Failure::Status(status.status_code, status.error_message))
            }
            other => Err(Failure::Lost(format!(
                "unexpected answer to a rename: {other:?}"
            ))),
        };
    }
    match session.sftp.rename(from, to).await {
        Ok(_) => Ok(()),
        Err(SftpError::Status(status)) if status.status_code == StatusCode::Failure => {
            match session.sftp.remove(to).await {
                Ok(_) => {}
                Err(SftpError::Status(gone)) if gone.status_code == StatusCode::NoSuchFile => {}
                Err(err) => return Err(err.into()),
            }
            session.sftp.rename(from, to).await?;
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether the folder `dir` lacks room for `needed` more bytes, asked of
/// the server when it can tell (OpenSSH's [`STATVFS`]).
async fn lacks_space(session: &Session, dir: &str, needed: u64) -> bool {
    if !session.statvfs {
        return false;
    }
    match session.sftp.statvfs(dir).await {
        Ok(stats) => stats.blocks_avail.saturating_mul(stats.fragment_size) < needed.max(1),
        Err(_) => false,
    }
}

#[async_trait::async_trait]
impl Relay for SftpRelay {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranged_read: true,
            atomic_write: self.atomic_rename.load(Ordering::Relaxed),
            list_sizes: true,
            max_file_size: None,
        }
    }

    fn describe(&self) -> String {
        self.address.clone()
    }

    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        let remote = self.remote(dir);
        let what = self.dir_words(dir);
        let listed = self
            .run(&what, |session| {
                let remote = remote.clone();
                async move { SftpRelay::raw_list(&session, &remote).await }
            })
            .await?;
        let now = SystemTime::now();
        let mut entries = Vec::with_capacity(listed.len());
        let mut stale = Vec::new();
        for (name, attrs) in listed {
            if name.contains('\u{FFFD}') || name.contains('/') {
                // Not a name Escale writes (the library replaced bytes that
                // are not UTF-8): someone else's file, left alone.
                tracing::warn!(folder = %what, name = %name, "ignoring a relay entry whose name is not valid Unicode");
                continue;
            }
            if name.starts_with(TEMP_PREFIX) {
                let age = attrs
                    .modified()
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok());
                if Kind::of(&attrs) == Kind::File && age.is_some_and(|age| age > STALE_TEMP_AGE) {
                    stale.push(name);
                }
                continue;
            }
            match Kind::of(&attrs) {
                Kind::Dir => entries.push(RelayEntry {
                    name,
                    is_dir: true,
                    size: None,
                }),
                Kind::File => entries.push(RelayEntry {
                    name,
                    is_dir: false,
                    size: Some(attrs.len()),
                }),
                // Links and special files: the relay never holds them.
                Kind::Other => {}
            }
        }
        for name in stale {
            // Best effort: it is tried again at the next listing.
            let path = format!("{}/{name}", remote.trim_end_matches('/'));
            let _ = self
                .run(&what, |session| {
                    let path = path.clone();
                    async move { Ok(session.sftp.remove(path).await.map(drop)) }
                })
                .await;
        }
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        let remote = self.remote(path);
        let what = self.file_words(path);
        self.run(&what, |session| {
            let (remote, range) = (remote.clone(), range.clone());
            async move {
                let handle = session
                    .sftp
                    .open(remote, OpenFlags::READ, FileAttributes::empty())
                    .await?
                    .handle;
                let read = read_open(&session, &handle, range).await;
                // Nothing to keep of a read file: a failed close changes
                // nothing for the reader.
                let _ = session.sftp.close(handle).await;
                read
            }
        })
        .await
    }

    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot write over the relay folder {} itself", self.address),
            ));
        }
        let parent = path.parent().unwrap_or_else(RelayPath::root);
        let (remote, dir) = (self.remote(path), self.remote(&parent));
        let (what, dir_what) = (self.file_words(path), self.dir_words(&parent));
        // Running twice after a lost connection is harmless: the first
        // temporary is left for `clear_leftovers`, and the rename, done or
        // not, is redone with the same content.
        self.run(&what, |session| {
            let (remote, dir, dir_what, data) =
                (remote.clone(), dir.clone(), dir_what.clone(), data.clone());
            async move {
                let temp = format!(
                    "{}/{TEMP_PREFIX}{}",
                    dir.trim_end_matches('/'),
                    hex::encode(crate::ids::random_bytes::<8>())
                );
                // Exclusive creation makes the name ours alone, even if two
                // writers drew the same random name.
                let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
                let handle = match session
                    .sftp
                    .open(&temp, flags, FileAttributes::empty())
                    .await
                {
                    Ok(handle) => handle.handle,
                    Err(SftpError::Status(status))
                        if status.status_code == StatusCode::NoSuchFile =>
                    {
                        return Err(Failure::Relay(RelayError::new(
                            RelayErrorKind::NotFound,
                            format!("{dir_what} does not exist"),
                        )));
                    }
                    Err(err) => return Err(err.into()),
                };
                let written = write_open(&session, &handle, &data).await;
                // Servers may report a failed write only at the close
                // (NFS-backed folders do).
                let closed = session
                    .sftp
                    .close(handle)
                    .await
                    .map(drop)
                    .map_err(Failure::from);
                let mut result = written.and(closed);
                if result.is_ok() {
                    result = rename_over(&session, &temp, &remote).await;
                }
                if let Err(failure) = result {
                    if !matches!(failure, Failure::Lost(_)) {
                        let _ = session.sftp.remove(temp).await;
                    }
                    if let Failure::Status(StatusCode::Failure, _) = &failure
                        && let Ok(target) = session.sftp.lstat(remote.as_str()).await
                        && Kind::of(&target.attrs) == Kind::Dir
                    {
                        return Err(Failure::WrongKind);
                    }
                    if let Failure::Status(StatusCode::Failure, _) = &failure
                        && lacks_space(&session, &dir, data.len() as u64).await
                    {
                        return Err(Failure::Relay(RelayError::new(
                            RelayErrorKind::StorageFull,
                            format!(
                                "the storage holding {what_full} is full",
                                what_full = dir_what
                            ),
                        )));
                    }
                    return Err(failure);
                }
                Ok(())
            }
        })
        .await
    }

    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot delete the relay folder {} itself", self.address),
            ));
        }
        let remote = self.remote(path);
        self.run(&self.file_words(path), |session| {
            let remote = remote.clone();
            async move { Ok(session.sftp.remove(remote).await.map(drop)?) }
        })
        .await
    }

    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        let root_what = self.dir_words(&RelayPath::root());
        let root = self.root.clone();
        let what = self.dir_words(path);
        // The folders to make, from the top: the root is never among them.
        let levels: Vec<(String, String)> = {
            let mut levels = Vec::new();
            let mut current = Some(path.clone());
            while let Some(dir) = current.filter(|d| !d.is_root()) {
                levels.push((self.remote(&dir), self.dir_words(&dir)));
                current = dir.parent();
            }
            levels.reverse();
            levels
        };
        self.run(&what, |session| {
            let (levels, root, root_what) = (levels.clone(), root.clone(), root_what.clone());
            async move {
                // Most calls find the parents there: one request then.
                if let Some((deepest, deepest_what)) = levels.last() {
                    match make_dir(&session, deepest, deepest_what).await? {
                        Made::Done => return Ok(()),
                        Made::ParentMissing => {}
                    }
                }
                let root_missing = || {
                    Failure::Relay(RelayError::new(
                        RelayErrorKind::NotFound,
                        format!("{root_what} does not exist"),
                    ))
                };
                match session.sftp.stat(root.as_str()).await {
                    Ok(attrs) if Kind::of(&attrs.attrs) == Kind::Dir => {}
                    Ok(_) => return Err(root_missing()),
                    Err(SftpError::Status(status))
                        if status.status_code == StatusCode::NoSuchFile =>
                    {
                        return Err(root_missing());
                    }
                    Err(err) => return Err(err.into()),
                }
                for (remote, words) in &levels {
                    if let Made::ParentMissing = make_dir(&session, remote, words).await? {
                        // Someone removed the parent just made.
                        return Err(Failure::Relay(RelayError::new(
                            RelayErrorKind::NotFound,
                            format!("the folder holding {words} vanished while it was made"),
                        )));
                    }
                }
                Ok(())
            }
        })
        .await
    }

    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot remove the relay folder {} itself", self.address),
            ));
        }
        let remote = self.remote(path);
        let what = self.dir_words(path);
        self.run(&what, |session| {
            let (remote, what) = (remote.clone(), what.clone());
            async move {
                // Checked first, hidden temporaries (another client's
                // upload in progress) included: a server's RMD of a full
                // folder fails with a bare "failure" that says nothing.
                if !SftpRelay::raw_list(&session, &remote).await?.is_empty() {
                    return Err(Failure::Relay(crate::relay::file::not_empty(&what)));
                }
                Ok(session.sftp.rmdir(remote).await.map(drop)?)
            }
        })
        .await
    }

    async fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        let remote = self.remote(dir);
        let what = self.dir_words(dir);
        self.run(&what, |session| {
            let remote = remote.clone();
            async move {
                let entries = match SftpRelay::raw_list(&session, &remote).await {
                    Ok(entries) => entries,
                    Err(Failure::Status(StatusCode::NoSuchFile, _)) => return Ok(()),
                    Err(failure) => return Err(failure),
                };
                for (name, attrs) in entries {
                    if !name.starts_with(TEMP_PREFIX) || Kind::of(&attrs) != Kind::File {
                        continue;
                    }
                    let path = format!("{}/{name}", remote.trim_end_matches('/'));
                    match session.sftp.remove(path).await {
                        Ok(_) => {}
                        Err(SftpError::Status(status))
                            if status.status_code == StatusCode::NoSuchFile => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                Ok(())
            }
        })
        .await
    }
}

/// What [`make_dir`] found.
enum Made {
    /// The folder exists now.
    Done,
    /// Its parent does not exist.
    ParentMissing,
}

/// Makes one folder; one that exists already (made by a racing client)
/// is fine, a file in its place is not.
async fn make_dir(session: &Session, remote: &str, what: &str) -> Result<Made, Failure> {
    let failure = match session.sftp.mkdir(remote, FileAttributes::empty()).await {
        Ok(_) => return Ok(Made::Done),
        Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => {
            return Ok(Made::ParentMissing);
        }
        Err(err) => Failure::from(err),
    };
    // SFTP has no "exists" status: OpenSSH says "Failure". Look.
    match session.sftp.stat(remote).await {
        Ok(attrs) if Kind::of(&attrs.attrs) == Kind::Dir => Ok(Made::Done),
        Ok(_) => Err(Failure::Relay(RelayError::new(
            RelayErrorKind::InvalidPath,
            format!("cannot create {what}: a file stands where a folder should be"),
        ))),
        Err(_) => Err(failure),
    }
}

#[cfg(test)]
mod tests;
