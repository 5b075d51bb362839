//! The FTP and FTPS backend, over `suppaftp` (tokio, rustls with *ring*).
//!
//! FTP is the relay that office networks most often already allow, and
//! also the one whose servers differ most. This backend keeps to the
//! commands every server has and checks what servers are known to get
//! wrong:
//!
//! - **Connections.** A small pool of logged-in control connections
//!   ([`POOL_SIZE`]) is shared by all calls; each call takes one, uses it
//!   alone, and gives it back only if nothing went wrong at the connection
//!   level. A pooled connection may have died while idle (servers close
//!   idle sessions after a few minutes, often with a `421` nobody reads),
//!   so a connection-level failure on a reused connection is retried once
//!   on a fresh one. Every command has a time limit, and every transfer a
//!   limit on how long it may stall, so a dead server never hangs a sync.
//!   Transfers are binary (`TYPE I`: suppaftp starts in ASCII mode, which
//!   would rewrite line endings inside encrypted data) and passive, with
//!   the data connection going to the control connection's address rather
//!   than the one the server announces (servers behind NAT announce
//!   private addresses; curl does the same).
//! - **Paths.** The address's path is taken from the top of what the
//!   account sees (`/` of a chrooted account, the whole disk otherwise),
//!   and every command names its file by its full path, so no command
//!   depends on a current folder — except listings, which change into the
//!   folder and list it without an argument, because servers treat a
//!   `LIST` argument as `ls` options and glob patterns (`[x]` in a name).
//! - **Listings** use `MLSD` when `FEAT` offers it (pure-ftpd, ProFTPD),
//!   else `LIST` in the Unix `ls -l` or the MS-DOS/IIS form (vsftpd has no
//!   `MLSD`). `OPTS UTF8 ON` is sent when `FEAT` shows `UTF8`.
//! - **Writes are atomic for readers**: the data goes to a temporary
//!   `.escale-tmp-<random>` beside the target, its size is checked with
//!   `SIZE` (a cut data connection can look like a complete short file),
//!   then `RNFR`/`RNTO` puts it in place, replacing the old file in one
//!   step. A server that refuses to rename over an existing file (IIS)
//!   gets the old file deleted first, and the relay then stops promising
//!   atomic writes. Temporaries are hidden from listings and removed by
//!   [`Relay::clear_leftovers`].
//! - **Ranged reads** send `REST` and `RETR`, read the bytes asked for and
//!   close the data connection; the server's answer to the cut transfer is
//!   read and the control connection checked with a `NOOP` before reuse.
//! - **The relay folder itself is never created**: a missing one is
//!   [`RelayErrorKind::NotFound`], so that a relay folder someone deleted
//!   or a server mounted wrongly is not silently recreated empty.
//! - **Errors.** Replies are sorted by code and, where servers are vague
//!   (vsftpd answers `550 Failed to open file.` whether a file is missing
//!   or unreadable), by asking the server what is there (`SIZE`, `CWD`).
//!
//! FTPS is explicit TLS (`AUTH TLS`, then `PBSZ 0`, `PROT P`), with the
//! same trust roots as the other network relays ([`super::tls`]). Each
//! control connection has its own TLS session cache, so that its data
//! connections resume its session, which vsftpd requires by default
//! (`require_ssl_reuse`).

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsStream, ImplAsyncFtpStream};
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::types::{FileType, Response};
use suppaftp::{FtpError, FtpResult, Mode, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::opendal::PASSWORD_ENV;
use super::{
    Capabilities, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath, RelayUrl, Secrets,
};

/// One FTP client session. The TLS stream type serves plain FTP as well:
/// a session only uses it once `AUTH TLS` succeeded.
type Client = ImplAsyncFtpStream<AsyncRustlsStream>;

/// Names starting with this are the backend's own temporaries, never relay
/// files: the relay format's names are opaque hex and never start with `.`.
const TEMP_PREFIX: &str = ".escale-tmp-";

/// How many control connections one relay keeps at most. Uploads and
/// downloads of a sync run a few at a time; hosting plans often allow
/// only a handful of sessions per account.
const POOL_SIZE: usize = 4;

/// How long to wait for a connection (control or data) to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one command may wait for its answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a transfer may go without moving a byte. A long transfer is
/// fine; a stalled one is cut after this.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Pooled connections idle for longer are closed rather than reused:
/// servers end idle sessions after a few minutes (vsftpd and pure-ftpd
/// after 5), and a fresh login is cheaper than a failed command.
const MAX_IDLE: Duration = Duration::from_secs(240);

/// The size of the pieces data connections are read and written in.
const IO_CHUNK: usize = 256 * 1024;

/// The user name of anonymous logins, used when the address has none.
const ANONYMOUS: &str = "anonymous";

/// A relay on an FTP or FTPS server.
pub(crate) struct FtpRelay {
    /// Where and how to log in.
    server: Server,
    /// Logged-in connections not in use, the most recently used last.
    idle: Mutex<Vec<Conn>>,
    /// One permit per connection that may exist, idle or in use.
    slots: Semaphore,
    /// Whether `RNTO` has replaced existing files so far; cleared the
    /// first time the server refuses to, since writes are then no longer
    /// atomic.
    rename_replaces: AtomicBool,
}

/// The server of a relay and how to log in to it.
struct Server {
    /// Host name or IP address (IPv6 without brackets).
    host: String,
    /// The control port.
    port: u16,
    /// The login name; [`ANONYMOUS`] when the address has none.
    user: String,
    /// The password; empty when none was given.
    password: Zeroizing<String>,
    /// Whether a password was given, to say so when a login fails.
    has_password: bool,
    /// The TLS settings of an `ftps://` relay; `None` for plain FTP.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The relay folder's full path on the server, without a trailing
    /// `/` except for the top folder `/` itself.
    root: String,
    /// The relay's address, without secrets, for messages.
    address: String,
}

/// A logged-in control connection.
struct Conn {
    /// The session.
    client: Client,
    /// Whether the server lists folders with `MLSD`.
    mlsd: bool,
    /// When the connection last finished a call, to retire stale ones.
    idle_since: Instant,
}

/// Why an operation failed, and whether its connection can still be used.
#[derive(Debug)]
struct Failure {
    /// What the caller sees.
    error: RelayError,
    /// The control connection is dead or out of step with the server and
    /// must be closed, not pooled; a reused connection failing this way is
    /// retried on a fresh one.
    broken: bool,
}

impl Failure {
    /// A failure that leaves the connection usable (a refused command).
    fn kept(error: RelayError) -> Self {
        Failure {
            error,
            broken: false,
        }
    }

    /// An FTP error about `what`, sorted, with the connection's fate.
    fn ftp(err: FtpError, what: &str) -> Self {
        let broken = is_broken(&err);
        Failure {
            error: map_error(err, what),
            broken,
        }
    }
}

/// What a path turned out to be when the server was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A file (`SIZE` answered).
    File,
    /// A folder (`CWD` into it worked).
    Folder,
    /// Neither.
    Nothing,
}

impl fmt::Debug for FtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpRelay")
            .field("address", &self.server.address)
            .finish_non_exhaustive()
    }
}

impl FtpRelay {
    /// Opens an FTP or FTPS relay from its address with `secrets`; other
    /// kinds are not this backend's (`None`). Nothing is sent to the
    /// server until the first operation.
    pub(crate) fn open(url: &RelayUrl, secrets: &Secrets) -> Option<Result<Self, RelayError>> {
        let (tls, host, port, user, path) = match url {
            RelayUrl::Ftp {
                host,
                port,
                user,
                path,
            } => (false, host, *port, user, path),
            RelayUrl::Ftps {
                host,
                port,
                user,
                path,
            } => (true, host, *port, user, path),
            _ => return None,
        };
        let tls = if tls {
            match super::tls::client_config(secrets.ca_file.as_deref()) {
                Ok(config) => Some(Arc::new(config)),
                Err(err) => return Some(Err(err)),
            }
        } else {
            None
        };
        let root = match path.trim_end_matches('/') {
            "" => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        };
        // An anonymous login traditionally gives an e-mail address as its
        // password; servers accept anything.
        let password = secrets
            .password
            .clone()
            .or_else(|| user.is_none().then(|| "escale@".to_owned()));
        Some(Ok(FtpRelay {
            server: Server {
                host: host.clone(),
                port,
                user: user.clone().unwrap_or_else(|| ANONYMOUS.to_owned()),
                has_password: password.is_some(),
                password: Zeroizing::new(password.unwrap_or_default()),
                tls,
                root,
                address: url.to_string(),
            },
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(POOL_SIZE),
            rename_replaces: AtomicBool::new(true),
        }))
    }

    /// How messages name a relay file.
    fn file_words(&self, path: &RelayPath) -> String {
        format!("the relay file {path} at {}", self.server.address)
    }

    /// How messages name a relay folder.
    fn dir_words(&self, path: &RelayPath) -> String {
        format!("the relay folder {path} at {}", self.server.address)
    }

    /// The full path on the server of `path`.
    fn full(&self, path: &RelayPath) -> String {
        join(&self.server.root, path.as_str())
    }

    /// The full path of a file; the relay folder itself is not one.
    fn file_full(&self, path: &RelayPath) -> Result<String, RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!(
                    "the relay folder at {} itself is not a file",
                    self.server.address
                ),
            ));
        }
        Ok(self.full(path))
    }

    /// Waits for one of the [`POOL_SIZE`] connection slots.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, RelayError> {
        self.slots.acquire().await.map_err(|_| {
            RelayError::new(
                RelayErrorKind::Interrupted,
                "the FTP connections were closed because Escale is stopping",
            )
        })
    }

    /// A pooled connection, or a new one when there is none or when
    /// `fresh_only`; with whether it was reused.
    async fn checkout(&self, fresh_only: bool) -> Result<(Conn, bool), RelayError> {
        if !fresh_only && let Some(conn) = self.take_idle() {
            return Ok((conn, true));
        }
        Ok((self.connect().await?, false))
    }

    /// Ends one attempt of [`on_connection!`]: gives a sound connection
    /// back to the pool and returns the outcome, or returns `None` to
    /// retry once on a fresh connection when a reused one turned out dead.
    fn settle<T>(
        &self,
        conn: Conn,
        reused: bool,
        fresh_only: &mut bool,
        outcome: Result<T, Failure>,
    ) -> Option<Result<T, RelayError>> {
        match outcome {
            Ok(value) => {
                self.give_back(conn);
                Some(Ok(value))
            }
            Err(failure) if failure.broken => {
                drop(conn);
                if reused && !*fresh_only {
                    // The others idled as long and likely died alike (a
                    // restarted server, a dropped NAT mapping).
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    tracing::debug!(
                        relay = %self.server.address,
                        error = %failure.error,
                        "a pooled FTP connection failed; retrying on a new one"
                    );
                    *fresh_only = true;
                    return None;
                }
                Some(Err(failure.error))
            }
            Err(failure) => {
                self.give_back(conn);
                Some(Err(failure.error))
            }
        }
    }

    /// The most recently used idle connection that is not too old.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.idle_since.elapsed() < MAX_IDLE {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a sound connection back into the pool.
    fn give_back(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }

    /// Opens a control connection, secures it for FTPS, logs in and sets
    /// binary, passive transfers.
    async fn connect(&self) -> Result<Conn, RelayError> {
        let server = &self.server;
        let what = format!("the relay at {}", server.address);
        let tcp = connect_tcp(&server.host, server.port, &what).await?;
        let ipv6 = tcp.peer_addr().is_ok_and(|addr| addr.is_ipv6());
        let mut client = timed(Client::connect_with_stream(tcp))
            .await
            .map_err(|err| map_error(err, &what))?;
        if let Some(base) = &server.tls {
            // A session cache of this connection's own, so that its data
            // connections resume its TLS session and no other.
            let mut config = (**base).clone();
            config.resumption = rustls::client::Resumption::in_memory_sessions(8);
            let connector = AsyncRustlsConnector::from(TlsConnector::from(Arc::new(config)));
            client = timed(client.into_secure(connector, &server.host))
                .await
                .map_err(|err| match err {
                    FtpError::UnexpectedResponse(reply) => RelayError::new(
                        RelayErrorKind::Tls,
                        format!(
                            "the server of {what} does not offer secure connections (it answered \
                             \"{}\" when asked for TLS)",
                            first_line(&reply)
                        ),
                    ),
                    other => map_error(other, &what),
                })?;
        }
        // PASV for IPv4 (every server has it), EPSV where PASV cannot
        // work; either way the data connection goes to the control
        // connection's host.
        client.set_mode(if ipv6 {
            Mode::ExtendedPassive
        } else {
            Mode::Passive
        });
        client.set_passive_nat_workaround(true);
        let mut client = client.passive_stream_builder(|addr| {
            Box::pin(async move {
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        Ok(stream)
                    }
                    // Said apart from the control connection's failures:
                    // a firewall that lets the control port through but not
                    // the passive ports is the usual cause.
                    Ok(Err(err)) => Err(FtpError::ConnectionError(io::Error::new(
                        err.kind(),
                        format!("the data connection to {addr} failed: {err}"),
                    ))),
                    Err(_) => Err(FtpError::ConnectionError(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the data connection to {addr} did not open in time"),
                    ))),
                }
            })
        });
        if let Err(err) = timed(client.login(server.user.as_str(), server.password.as_str())).await
        {
            return Err(self.login_error(err, &what));
        }
        timed(client.transfer_type(FileType::Binary))
            .await
            .map_err(|err| map_error(err, &what))?;
        // Servers without FEAT answer 500; a garbled answer is read to its
        // end before suppaftp rejects it, so both mean "no extensions".
        let features = match timed(client.feat()).await {
            Ok(features) => features,
            Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => Default::default(),
            Err(err) => return Err(map_error(err, &what)),
        };
        let has = |name: &str| features.keys().any(|key| key.eq_ignore_ascii_case(name));
        if has("UTF8") {
            // Some servers announce UTF8 and still refuse the option
            // (pure-ftpd: 504); they use UTF-8 anyway.
            match timed(client.opts("UTF8", Some("ON"))).await {
                Ok(()) | Err(FtpError::UnexpectedResponse(_)) => {}
                Err(err) => return Err(map_error(err, &what)),
            }
        }
        tracing::debug!(relay = %server.address, "FTP connection opened");
        Ok(Conn {
            client,
            mlsd: has("MLST") || has("MLSD"),
            idle_since: Instant::now(),
        })
    }

    /// The error of a refused login, saying what to change.
    fn login_error(&self, err: FtpError, what: &str) -> RelayError {
        // Only the server's words count here: the address may well say
        // "secure" or "ssl" itself.
        let said = match &err {
            FtpError::UnexpectedResponse(reply) => first_line(reply),
            _ => String::new(),
        };
        let error = map_error(err, what);
        if error.kind() != RelayErrorKind::AuthenticationFailed {
            return error;
        }
        let advice = if self.server.tls.is_none() && mentions_encryption(&said) {
            "this server wants a secure connection: use an ftps:// address".to_owned()
        } else if !self.server.has_password {
            format!("no password was given (set {PASSWORD_ENV})")
        } else {
            return error;
        };
        RelayError::new(
            RelayErrorKind::AuthenticationFailed,
            format!("{error}; {advice}"),
        )
    }

    /// Sorts the refusal of a command on the file `full` (`RETR`, `DELE`,
    /// `SIZE`), asking the server what is there when its reply is vague.
    async fn file_refused(
        &self,
        conn: &mut Conn,
        err: FtpError,
        full: &str,
        what: &str,
    ) -> Failure {
        if is_broken(&err) {
            return Failure::ftp(err, what);
        }
        match reply_hint(&err, Some(full)) {
            Some(Hint::Missing) => return Failure::kept(not_found(what)),
            Some(Hint::Denied) => return Failure::ftp(err, what),
            None => {}
        }
        match conn.probe(full).await {
            Ok(Found::Nothing) => Failure::kept(not_found(what)),
            Ok(Found::Folder) => Failure::kept(is_a_folder(what)),
            // The file is there, so a 550 was about access.
            Ok(Found::File) => Failure::kept(map_denied(err, what)),
            Err(probe) => Failure::ftp(probe, what),
        }
    }

    /// Sorts the refusal of `CWD` into the folder `full`.
    async fn folder_refused(
        &self,
        conn: &mut Conn,
        err: FtpError,
        full: &str,
        what: &str,
    ) -> Failure {
        if is_broken(&err) {
            return Failure::ftp(err, what);
        }
        match reply_hint(&err, Some(full)) {
            Some(Hint::Missing) => return Failure::kept(not_found(what)),
            Some(Hint::Denied) => return Failure::ftp(err, what),
            None => {}
        }
        match conn.file_size(full).await {
            Ok(Some(_)) => Failure::kept(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} does not exist (a file stands where a folder should be)"),
            )),
            Ok(None) => Failure::kept(not_found(what)),
            Err(probe) => Failure::ftp(probe, what),
        }
    }

    /// Lists the folder `full` as the server has it, `.` and `..` left
    /// out; `hidden` asks for names starting with `.` too, which `LIST`
    /// leaves out on some servers.
    async fn entries(
        &self,
        conn: &mut Conn,
        full: &str,
        what: &str,
        hidden: bool,
    ) -> Result<Vec<Listed>, Failure> {
        if let Err(err) = timed(conn.client.cwd(full)).await {
            return Err(self.folder_refused(conn, err, full, what).await);
        }
        let lines = if conn.mlsd {
            conn.data_lines("MLSD").await
        } else if hidden {
            // `-a` is an `ls` option most servers honour; one that takes
            // it for a name refuses it, and then plain LIST must do.
            match conn.data_lines("LIST -a").await {
                Err(err) if !is_broken(&err) => conn.data_lines("LIST").await,
                other => other,
            }
        } else {
            conn.data_lines("LIST").await
        }
        .map_err(|err| Failure::ftp(err, what))?;
        let listing = parse_listing(&lines, conn.mlsd);
        if let Some(line) = &listing.not_understood {
            if listing.entries.is_empty() {
                return Err(Failure::kept(RelayError::new(
                    RelayErrorKind::Unsupported,
                    format!(
                        "the server of {what} lists folders in a form Escale does not \
                         understand (\"{line}\")"
                    ),
                )));
            }
            tracing::warn!(
                folder = what,
                line = %line,
                "ignoring FTP listing lines Escale does not understand"
            );
        }
        Ok(listing.entries)
    }

    /// Removes the folder `full` if it is empty.
    async fn remove_empty_dir(
        &self,
        conn: &mut Conn,
        full: &str,
        what: &str,
    ) -> Result<(), Failure> {
        // Some servers' RMD takes a folder with its contents; the
        // contract's emptiness is checked here, hidden names (another
        // client's upload in progress) included.
        if !self.entries(conn, full, what, true).await?.is_empty() {
            return Err(Failure::kept(crate::relay::file::not_empty(what)));
        }
        match timed(conn.client.rmdir(full)).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.folder_refused(conn, err, full, what).await),
        }
    }

    /// Downloads `len` bytes of the file `full` from `start` (all of it
    /// with `None`).
    async fn retrieve(
        &self,
        conn: &mut Conn,
        full: &str,
        what: &str,
        start: u64,
        len: Option<u64>,
    ) -> Result<Bytes, Failure> {
        if start > 0 {
            let offset = usize::try_from(start).map_err(|_| {
                Failure::kept(RelayError::new(
                    RelayErrorKind::Unsupported,
                    format!("{what} cannot be read past 4 GiB on this computer"),
                ))
            })?;
            timed(conn.client.resume_transfer(offset))
                .await
                .map_err(|err| Failure::ftp(err, what))?;
        }
        let mut download = match timed(conn.client.retr_as_stream(full)).await {
            Ok(download) => download,
            // An offset at or past the end gives no bytes under the
            // contract; pure-ftpd refuses it (554), vsftpd sends nothing.
            Err(err) if start > 0 && !is_broken(&err) => {
                return match conn.file_size(full).await {
                    Ok(Some(size)) if size <= start => Ok(Bytes::new()),
                    Ok(_) => Err(self.file_refused(conn, err, full, what).await),
                    Err(probe) => Err(Failure::ftp(probe, what)),
                };
            }
            Err(err) => return Err(self.file_refused(conn, err, full, what).await),
        };
        let limit = len.map(|len| usize::try_from(len).unwrap_or(usize::MAX));
        let data = read_stalled(&mut download, limit)
            .await
            .map_err(|err| Failure::ftp(FtpError::ConnectionError(err), what))?;
        // Having all the bytes asked for, the data connection is closed
        // whether the server was done or not.
        let cut = limit.is_some_and(|limit| data.len() >= limit);
        match timed(download.finish()).await {
            Ok(()) => {}
            // The server reports the transfer cut short as failed (426,
            // 451); some add a second reply, so a NOOP proves the control
            // connection is back in step before it is reused.
            Err(FtpError::UnexpectedResponse(_)) if cut => {
                conn.resync().await.map_err(|err| Failure::ftp(err, what))?
            }
            Err(err) => return Err(Failure::ftp(err, what)),
        }
        Ok(Bytes::from(data))
    }

    /// Uploads `data` to a temporary beside `full`, checks its size and
    /// renames it onto `full`.
    async fn store(
        &self,
        conn: &mut Conn,
        dir_full: &str,
        full: &str,
        what: &str,
        data: &Bytes,
    ) -> Result<(), Failure> {
        let temp = join(
            dir_full,
            &format!(
                "{TEMP_PREFIX}{}",
                hex::encode(crate::ids::random_bytes::<8>())
            ),
        );
        let mut upload = match timed(conn.client.put_with_stream(&temp)).await {
            Ok(upload) => upload,
            Err(err) => return Err(self.store_refused(conn, err, dir_full, what).await),
        };
        if let Err(err) = write_stalled(&mut upload, data).await {
            // The control connection may be fine: the dropped transfer's
            // reply is read by the next command, the DELE of the
            // temporary, which tells.
            drop(upload);
            let failure = Failure::kept(map_error(FtpError::ConnectionError(err), what));
            return Err(conn.abandon(&temp, failure).await);
        }
        if let Err(err) = timed(upload.finish()).await {
            return Err(conn.abandon(&temp, Failure::ftp(err, what)).await);
        }
        let expected = data.len() as u64;
        match conn.size(&temp).await {
            Ok(stored) if stored == expected => {}
            Ok(stored) => {
                let failure = Failure::kept(RelayError::new(
                    RelayErrorKind::Interrupted,
                    format!("{what} was stored with {stored} bytes instead of {expected}"),
                ));
                return Err(conn.abandon(&temp, failure).await);
            }
            Err(err) => return Err(conn.abandon(&temp, Failure::ftp(err, what)).await),
        }
        match timed(conn.client.rename(temp.as_str(), full)).await {
            Ok(()) => Ok(()),
            Err(err) if is_broken(&err) => Err(Failure::ftp(err, what)),
            Err(err) => self.replace(conn, &temp, full, what, err).await,
        }
    }

    /// Sorts the refusal of `STOR` into the folder `dir_full`: a missing
    /// folder is `NotFound`, as the contract wants.
    async fn store_refused(
        &self,
        conn: &mut Conn,
        err: FtpError,
        dir_full: &str,
        what: &str,
    ) -> Failure {
        if is_broken(&err) {
            return Failure::ftp(err, what);
        }
        let folder_missing = match reply_hint(&err, Some(dir_full)) {
            Some(Hint::Missing) => true,
            Some(Hint::Denied) => false,
            None => match conn.is_dir(dir_full).await {
                Ok(exists) => !exists,
                Err(probe) => return Failure::ftp(probe, what),
            },
        };
        if folder_missing && dir_full == self.server.root {
            Failure::kept(self.root_missing())
        } else if folder_missing {
            Failure::kept(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} cannot be stored: its folder does not exist"),
            ))
        } else {
            Failure::kept(map_denied(err, what))
        }
    }

    /// After `RNTO` onto `full` was refused: servers that will not rename
    /// over an existing file (IIS, other Windows servers) get the old file
    /// deleted and the rename tried again; anything else is reported.
    async fn replace(
        &self,
        conn: &mut Conn,
        temp: &str,
        full: &str,
        what: &str,
        refused: FtpError,
    ) -> Result<(), Failure> {
        match conn.probe(full).await {
            Ok(Found::File) => {}
            Ok(Found::Folder) => {
                return Err(conn.abandon(temp, Failure::kept(is_a_folder(what))).await);
            }
            Ok(Found::Nothing) => {
                return Err(conn
                    .abandon(temp, Failure::kept(map_denied(refused, what)))
                    .await);
            }
            Err(err) => return Err(Failure::ftp(err, what)),
        }
        if let Err(err) = timed(conn.client.rm(full)).await {
            return Err(conn.abandon(temp, Failure::ftp(err, what)).await);
        }
        if let Err(err) = timed(conn.client.rename(temp, full)).await {
            return Err(conn.abandon(temp, Failure::ftp(err, what)).await);
        }
        if self.rename_replaces.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                relay = %self.server.address,
                "the FTP server does not rename over existing files: files are replaced by \
                 deleting the old one first, so readers may briefly find them missing"
            );
        }
        Ok(())
    }

    /// Makes the folder `path` and its missing parents below the relay
    /// folder, which must exist.
    async fn make_dir(&self, conn: &mut Conn, path: &RelayPath) -> Result<(), Failure> {
        let full = self.full(path);
        let what = self.dir_words(path);
        // Most calls find the folder made already: one round trip.
        if conn
            .is_dir(&full)
            .await
            .map_err(|e| Failure::ftp(e, &what))?
        {
            return Ok(());
        }
        if path.is_root() {
            return Err(Failure::kept(self.root_missing()));
        }
        // The relay folder is never made: a relay folder that vanished
        // must not come back empty. (A plain MKD cannot make it either,
        // but some servers make missing parents on their own.)
        let root = RelayPath::root();
        if !conn
            .is_dir(&self.server.root)
            .await
            .map_err(|e| Failure::ftp(e, &self.dir_words(&root)))?
        {
            return Err(Failure::kept(self.root_missing()));
        }
        // Usually only the last level is missing.
        match timed(conn.client.mkdir(&full)).await {
            Ok(()) => return Ok(()),
            Err(err) if is_broken(&err) => return Err(Failure::ftp(err, &what)),
            Err(_) => {}
        }
        // Else level by level, from the top.
        let mut level = root;
        for name in path.components() {
            level = level.join(name).map_err(Failure::kept)?;
            let level_full = self.full(&level);
            let level_words = self.dir_words(&level);
            let fail = |err| Failure::ftp(err, &level_words);
            if conn.is_dir(&level_full).await.map_err(fail)? {
                continue;
            }
            let err = match timed(conn.client.mkdir(&level_full)).await {
                Ok(()) => continue,
                Err(err) if is_broken(&err) => return Err(fail(err)),
                Err(err) => err,
            };
            // MKD is atomic: when another client made the folder first,
            // it is there now and all is well.
            if conn.is_dir(&level_full).await.map_err(fail)? {
                continue;
            }
            if conn.file_size(&level_full).await.map_err(fail)?.is_some() {
                return Err(Failure::kept(RelayError::new(
                    RelayErrorKind::InvalidPath,
                    format!("cannot create {level_words}: a file stands where a folder should be"),
                )));
            }
            return Err(Failure::kept(map_denied(err, &level_words)));
        }
        Ok(())
    }

    /// Deletes the temporaries of interrupted writes in the folder
    /// `full`; a missing folder has none.
    async fn remove_temporaries(
        &self,
        conn: &mut Conn,
        full: &str,
        what: &str,
    ) -> Result<(), Failure> {
        let listed = match self.entries(conn, full, what, true).await {
            Ok(listed) => listed,
            Err(failure) if failure.error.kind() == RelayErrorKind::NotFound => return Ok(()),
            Err(failure) => return Err(failure),
        };
        for entry in listed {
            if entry.kind != Kind::File || !entry.name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let temp = join(full, &entry.name);
            if let Err(err) = timed(conn.client.rm(&temp)).await {
                let words = format!("the temporary file {temp} at {}", self.server.address);
                let failure = self.file_refused(conn, err, &temp, &words).await;
                if failure.error.kind() != RelayErrorKind::NotFound {
                    return Err(failure);
                }
            }
        }
        Ok(())
    }

    /// The error for a relay folder that is not there.
    fn root_missing(&self) -> RelayError {
        RelayError::new(
            RelayErrorKind::NotFound,
            format!(
                "the relay folder {} does not exist on the server of {}; create it there first \
                 (Escale never creates it itself, so that a relay folder removed by mistake is \
                 not silently replaced by an empty one)",
                self.server.root, self.server.address
            ),
        )
    }
}

/// Runs `$body`, an expression awaiting work on the connection `$conn`
/// (`&mut Conn`) that gives `Result<T, Failure>`, on a pooled or new
/// connection, and evaluates to `Result<T, RelayError>`; see
/// [`FtpRelay::settle`] for what happens to the connection. A macro
/// rather than a function taking a closure, because the futures of
/// closures that borrow the connection cannot be proven `Send` for every
/// lifetime, as `async_trait` requires.
macro_rules! on_connection {
    ($relay:expr, |$conn:ident| $body:expr) => {{
        let relay: &FtpRelay = $relay;
        let _slot = relay.slot().await?;
        let mut fresh_only = false;
        loop {
            let (mut conn, reused) = relay.checkout(fresh_only).await?;
            let outcome = {
                let $conn: &mut Conn = &mut conn;
                $body
            };
            if let Some(result) = relay.settle(conn, reused, &mut fresh_only, outcome) {
                break result;
            }
        }
    }};
}

#[async_trait::async_trait]
impl Relay for FtpRelay {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranged_read: true,
            // RNFR/RNTO replaces the target in one step on Unix servers;
            // see `replace` for those that refuse.
            atomic_write: self.rename_replaces.load(Ordering::Relaxed),
            list_sizes: true,
            max_file_size: None,
        }
    }

    fn describe(&self) -> String {
        self.server.address.clone()
    }

    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        let full = self.full(dir);
        let what = self.dir_words(dir);
        let listed = on_connection!(self, |conn| self.entries(conn, &full, &what, false).await)?;
        let mut entries: Vec<RelayEntry> = listed
            .into_iter()
            .filter(|entry| !entry.name.starts_with(TEMP_PREFIX))
            .filter_map(|entry| match entry.kind {
                Kind::File => Some(RelayEntry {
                    name: entry.name,
                    is_dir: false,
                    size: entry.size,
                }),
                Kind::Folder => Some(RelayEntry {
                    name: entry.name,
                    is_dir: true,
                    size: None,
                }),
                // Links and special files: the relay never holds them.
                Kind::Other => None,
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Ok(entries)
    }

    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        let full = self.file_full(path)?;
        let what = self.file_words(path);
        match range {
            // No bytes asked for: only whether the file is there.
            Some(range) if range.start >= range.end => {
                on_connection!(self, |conn| match conn.size(&full).await {
                    Ok(_) => Ok(Bytes::new()),
                    Err(err) => Err(self.file_refused(conn, err, &full, &what).await),
                })
            }
            Some(range) => {
                let len = range.end - range.start;
                on_connection!(self, |conn| self
                    .retrieve(conn, &full, &what, range.start, Some(len))
                    .await)
            }
            None => on_connection!(self, |conn| self
                .retrieve(conn, &full, &what, 0, None)
                .await),
        }
    }

    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        let full = self.file_full(path)?;
        let dir_full = self.full(&path.parent().unwrap_or_else(RelayPath::root));
        let what = self.file_words(path);
        on_connection!(self, |conn| self
            .store(conn, &dir_full, &full, &what, &data)
            .await)
    }

    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        let full = self.file_full(path)?;
        let what = self.file_words(path);
        on_connection!(self, |conn| match timed(conn.client.rm(&full)).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.file_refused(conn, err, &full, &what).await),
        })
    }

    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        on_connection!(self, |conn| self.make_dir(conn, path).await)
    }

    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!(
                    "cannot remove the relay folder {} itself",
                    self.server.address
                ),
            ));
        }
        let full = self.full(path);
        let what = self.dir_words(path);
        on_connection!(self, |conn| self.remove_empty_dir(conn, &full, &what).await)
    }

    async fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        let full = self.full(dir);
        let what = self.dir_words(dir);
        on_connection!(self, |conn| self
            .remove_temporaries(conn, &full, &what)
            .await)
    }
}

impl Conn {
    /// The size of the file `full`.
    async fn size(&mut self, full: &str) -> FtpResult<u64> {
        timed(self.client.size(full)).await.map(|size| size as u64)
    }

    /// The size of the file `full`; `None` when the server will not give
    /// one (no such file, or a folder).
    async fn file_size(&mut self, full: &str) -> FtpResult<Option<u64>> {
        match self.size(full).await {
            Ok(size) => Ok(Some(size)),
            Err(err) if !is_broken(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Whether `full` is a folder this account can enter.
    async fn is_dir(&mut self, full: &str) -> FtpResult<bool> {
        match timed(self.client.cwd(full)).await {
            Ok(()) => Ok(true),
            Err(err) if !is_broken(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// What stands at `full`.
    async fn probe(&mut self, full: &str) -> FtpResult<Found> {
        if self.file_size(full).await?.is_some() {
            Ok(Found::File)
        } else if self.is_dir(full).await? {
            Ok(Found::Folder)
        } else {
            Ok(Found::Nothing)
        }
    }

    /// Runs the data command `command` (a listing) and returns its lines.
    async fn data_lines(&mut self, command: &str) -> FtpResult<Vec<String>> {
        let mut transfer = timed(
            self.client
                .custom_data_command(command, &[Status::AboutToSend, Status::AlreadyOpen]),
        )
        .await?
        .1;
        let bytes = read_stalled(&mut transfer, None)
            .await
            .map_err(FtpError::ConnectionError)?;
        timed(transfer.finish()).await?;
        Ok(split_lines(&bytes))
    }

    /// Sends NOOP and reads replies until its own, skipping what the
    /// server still had to say about a transfer cut short.
    async fn resync(&mut self) -> FtpResult<()> {
        let mut reply = timed(self.client.noop()).await;
        for _ in 0..4 {
            match reply {
                Ok(()) => return Ok(()),
                Err(FtpError::UnexpectedResponse(stray)) if reply_code(&stray) != 421 => {
                    tracing::debug!(reply = %first_line(&stray), "skipping a late FTP reply");
                    reply = timed(self.client.read_response(Status::CommandOk))
                        .await
                        .map(|_| ());
                }
                Err(err) => return Err(err),
            }
        }
        Err(FtpError::BadResponse)
    }

    /// Removes the temporary `temp` of a failed write, best effort, and
    /// passes `failure` on, now marked broken if the connection turned out
    /// dead. A temporary left behind is removed by a later
    /// [`Relay::clear_leftovers`].
    async fn abandon(&mut self, temp: &str, failure: Failure) -> Failure {
        if failure.broken {
            return failure;
        }
        match timed(self.client.rm(temp)).await {
            Err(err) if is_broken(&err) => Failure {
                broken: true,
                ..failure
            },
            _ => failure,
        }
    }
}

/// Opens the TCP connection to the control port: every address of the
/// host in turn, each within [`CONNECT_TIMEOUT`].
async fn connect_tcp(host: &str, port: u16, what: &str) -> Result<TcpStream, RelayError> {
    let unreachable = |message: String, err: io::Error| {
        RelayError::new(RelayErrorKind::Unreachable, message).with_source(err)
    };
    let addresses =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addresses)) => addresses.collect::<Vec<_>>(),
            Ok(Err(err)) => {
                return Err(unreachable(
                    format!(
                        "the server of {what} cannot be reached: the host name {host} was not found"
                    ),
                    err,
                ));
            }
            Err(_) => {
                return Err(RelayError::new(
                    RelayErrorKind::Timeout,
                    format!(
                        "the server of {what} cannot be reached: looking up {host} took too long"
                    ),
                ));
            }
        };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Commands are single short lines answered at once: no
                // reason to let Nagle hold any back.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(err)) => last = err,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "no answer in time"),
        }
    }
    Err(map_error(FtpError::ConnectionError(last), what))
}

/// `work` within [`COMMAND_TIMEOUT`]; running out of time is a
/// connection error (the connection is then out of step and dropped).
async fn timed<T>(work: impl Future<Output = FtpResult<T>>) -> FtpResult<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(FtpError::ConnectionError(io::Error::new(
                io::ErrorKind::TimedOut,
                "the server did not answer in time",
            )))
        })
}

/// Reads from a data connection until its end, or until `limit` bytes,
/// failing when it stalls for [`STALL_TIMEOUT`].
async fn read_stalled(
    stream: &mut (impl AsyncRead + Unpin),
    limit: Option<usize>,
) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buffer = vec![0; IO_CHUNK];
    loop {
        let room = limit.map_or(IO_CHUNK, |limit| (limit - data.len()).min(IO_CHUNK));
        if room == 0 {
            return Ok(data);
        }
        let read = tokio::time::timeout(STALL_TIMEOUT, stream.read(&mut buffer[..room]))
            .await
            .map_err(|_| stalled())??;
        if read == 0 {
            return Ok(data);
        }
        data.extend_from_slice(&buffer[..read]);
    }
}

/// Writes `data` to a data connection, failing when it stalls for
/// [`STALL_TIMEOUT`].
async fn write_stalled(stream: &mut (impl AsyncWrite + Unpin), data: &[u8]) -> io::Result<()> {
    for piece in data.chunks(IO_CHUNK) {
        tokio::time::timeout(STALL_TIMEOUT, stream.write_all(piece))
            .await
            .map_err(|_| stalled())??;
    }
    Ok(())
}

/// The error of a transfer that stopped moving.
fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the transfer stalled (no data moved for 30 seconds)",
    )
}

/// `name` (or a relative path) inside the folder `dir` (a full path).
fn join(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Splits a listing into lines, without line ends or empty lines. Lines
/// that are not UTF-8 name files Escale never wrote and could not address.
fn split_lines(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .filter_map(|line| match std::str::from_utf8(line) {
            Ok(text) => Some(text.to_owned()),
            Err(_) => {
                tracing::warn!(
                    line = %String::from_utf8_lossy(line),
                    "ignoring an FTP listing line that is not UTF-8"
                );
                None
            }
        })
        .collect()
}

/// Whether `err` leaves the control connection unusable: anything but a
/// reply the server sent on purpose, and a `421`, with which the server
/// closes the connection.
fn is_broken(err: &FtpError) -> bool {
    match err {
        FtpError::UnexpectedResponse(reply) => reply_code(reply) == 421,
        _ => true,
    }
}

/// The three-digit code of a reply. suppaftp's [`Status`] knows only the
/// codes of RFC 959, so the text is read instead.
fn reply_code(reply: &Response) -> u32 {
    reply
        .body
        .get(..3)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The first line of a reply, code included, cut to a readable length.
fn first_line(reply: &Response) -> String {
    let text = String::from_utf8_lossy(&reply.body);
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// What a refusal's text says, where it says it plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    /// The file or folder (or its folder) does not exist.
    Missing,
    /// Access was refused.
    Denied,
}

/// Reads a [`Hint`] in the text of a refusal. Servers word their replies
/// freely; these are the words of vsftpd, pure-ftpd, ProFTPD, FileZilla
/// Server and IIS. Many quote the path they were given, which must not
/// count (a folder named `denied`): `path`, when known, and every word
/// with a `/` are left out before reading.
fn reply_hint(err: &FtpError, path: Option<&str>) -> Option<Hint> {
    let FtpError::UnexpectedResponse(reply) = err else {
        return None;
    };
    let mut text = String::from_utf8_lossy(&reply.body).into_owned();
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        text = text.replace(path, " ");
    }
    let text = text
        .split_whitespace()
        .filter(|word| !word.contains(['/', '\\']))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    const DENIED: [&str; 7] = [
        "permission",
        "denied",
        "not allowed",
        "forbidden",
        "read-only",
        "read only",
        "not authorized",
    ];
    const MISSING: [&str; 7] = [
        "no such",
        "not found",
        "doesn't exist",
        "does not exist",
        "cannot find",
        "can't find",
        "not a directory",
    ];
    if DENIED.iter().any(|word| text.contains(word)) {
        Some(Hint::Denied)
    } else if MISSING.iter().any(|word| text.contains(word)) {
        Some(Hint::Missing)
    } else {
        None
    }
}

/// Whether a refusal asks for encryption (vsftpd with forced TLS:
/// "530 Non-anonymous sessions must use encryption.").
fn mentions_encryption(text: &str) -> bool {
    let text = text.to_lowercase();
    ["encrypt", "tls", "ssl", "secure"]
        .iter()
        .any(|word| text.contains(word))
}

/// "{what} does not exist".
fn not_found(what: &str) -> RelayError {
    RelayError::new(RelayErrorKind::NotFound, format!("{what} does not exist"))
}

/// A folder where a file is expected.
fn is_a_folder(what: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidPath,
        format!("{what} is a folder, not a file"),
    )
}

/// [`map_error`] for a refusal about something known to exist (or whose
/// folder exists): a vague `550` or `553` then means access was refused.
fn map_denied(err: FtpError, what: &str) -> RelayError {
    if let FtpError::UnexpectedResponse(reply) = &err
        && matches!(reply_code(reply), 550 | 553)
        && reply_hint(&err, None) != Some(Hint::Missing)
    {
        let message = format!(
            "permission to access {what} was refused (the server answered \"{}\")",
            first_line(reply)
        );
        return RelayError::new(RelayErrorKind::PermissionDenied, message);
    }
    map_error(err, what)
}

/// Sorts an FTP error by what a person or the scheduler can do about it;
/// `what` names the file or folder, as a noun phrase. Messages quote the
/// server's reply, which never holds the password (servers do not echo
/// `PASS`), and never the commands sent.
fn map_error(err: FtpError, what: &str) -> RelayError {
    use RelayErrorKind as K;
    let (kind, message) = match &err {
        FtpError::ConnectionError(io) => {
            let kind = io_kind(io);
            let message = match kind {
                K::Tls => format!(
                    "the secure connection to the server of {what} failed ({}); {}",
                    io.get_ref()
                        .map_or_else(|| io.to_string(), ToString::to_string),
                    super::tls::ca_advice()
                ),
                K::Timeout => format!("the server of {what} did not answer in time ({io})"),
                K::Unreachable => format!("the server of {what} cannot be reached ({io})"),
                K::Interrupted => {
                    format!("the connection to the server of {what} was cut ({io})")
                }
                _ => format!("cannot access {what}: {io}"),
            };
            (kind, message)
        }
        FtpError::SecureError(cause) => (
            K::Tls,
            format!(
                "the secure connection to the server of {what} failed ({}); {}",
                tls_cause(cause),
                super::tls::ca_advice()
            ),
        ),
        FtpError::UnexpectedResponse(reply) => {
            let said = first_line(reply);
            match reply_code(reply) {
                530 => (
                    K::AuthenticationFailed,
                    format!(
                        "the server refused the login (user name or password) for {what} \
                         (it answered \"{said}\")"
                    ),
                ),
                532 => (
                    K::PermissionDenied,
                    format!(
                        "the server of {what} refused to store it for this account (\"{said}\")"
                    ),
                ),
                421 => (
                    K::Interrupted,
                    format!("the server of {what} closed the connection (\"{said}\")"),
                ),
                425 | 426 => (
                    K::Interrupted,
                    format!("the transfer of {what} was interrupted (\"{said}\")"),
                ),
                450 | 451 => (
                    K::Interrupted,
                    format!("the server could not handle {what} just now (\"{said}\")"),
                ),
                452 | 552 => (
                    K::StorageFull,
                    format!("the storage holding {what} is full (\"{said}\")"),
                ),
                550 if reply_hint(&err, None) == Some(Hint::Denied) => (
                    K::PermissionDenied,
                    format!("permission to access {what} was refused (\"{said}\")"),
                ),
                550 => (K::NotFound, format!("{what} does not exist (\"{said}\")")),
                553 if reply_hint(&err, None) == Some(Hint::Missing) => {
                    (K::NotFound, format!("{what} does not exist (\"{said}\")"))
                }
                553 => (
                    K::PermissionDenied,
                    format!("the server refused to store {what} (\"{said}\")"),
                ),
                500 | 502 | 504 => (
                    K::Unsupported,
                    format!("the server of {what} does not support what Escale asked (\"{said}\")"),
                ),
                _ => (
                    K::Other,
                    format!("the server refused an operation on {what} (\"{said}\")"),
                ),
            }
        }
        FtpError::BadResponse => (
            K::Other,
            format!("the server of {what} sent an answer Escale does not understand"),
        ),
        FtpError::InvalidAddress(_) => (
            K::Other,
            format!("the server of {what} announced an invalid address for a data connection"),
        ),
        FtpError::DataConnectionAlreadyOpen => (
            K::Other,
            format!("a transfer of {what} was started while another was under way"),
        ),
    };
    // Every message quotes the cause (the server's reply, the I/O or TLS
    // error), and front ends print the chain of sources after it: keeping
    // `err` as a source would say it all twice. Logs get it here.
    tracing::debug!(error = %err, "FTP command failed");
    RelayError::new(kind, message)
}

/// The TLS failure itself in suppaftp's text, which wraps it in "Secure
/// error: " once per layer.
fn tls_cause(text: &str) -> &str {
    let mut cause = text;
    while let Some(rest) = cause.strip_prefix("Secure error: ") {
        cause = rest;
    }
    cause
}

/// Sorts an I/O error of a connection: TLS (rustls errors arrive wrapped
/// in I/O errors), time-outs, refused and cut connections.
fn io_kind(err: &io::Error) -> RelayErrorKind {
    use io::ErrorKind as Io;
    if err
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return RelayErrorKind::Tls;
    }
    match err.kind() {
        Io::TimedOut => RelayErrorKind::Timeout,
        Io::ConnectionRefused
        | Io::HostUnreachable
        | Io::NetworkUnreachable
        | Io::NetworkDown
        | Io::AddrNotAvailable
        | Io::NotConnected => RelayErrorKind::Unreachable,
        Io::ConnectionReset
        | Io::ConnectionAborted
        | Io::BrokenPipe
        | Io::UnexpectedEof
        | Io::WriteZero
        | Io::Interrupted => RelayErrorKind::Interrupted,
        _ => RelayErrorKind::Other,
    }
}

/// What a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A plain file.
    File,
    /// A folder.
    Folder,
    /// A link, device or anything else the relay never holds.
    Other,
}

/// One entry of a server's listing, before the backend filters it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// The name inside the folder.
    name: String,
    /// What it is.
    kind: Kind,
    /// The size in bytes, when listed.
    size: Option<u64>,
}

/// What one line of a listing holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// An entry.
    Entry(Listed),
    /// Nothing to list: `total` lines, `.` and `..`.
    Skip,
    /// A line in a form this parser does not know.
    Unknown,
}

/// A parsed listing.
#[derive(Debug, Default)]
struct Listing {
    /// The entries, `.` and `..` left out.
    entries: Vec<Listed>,
    /// The first line that could not be read, if any.
    not_understood: Option<String>,
}

/// Parses the lines of an `MLSD` (when `mlsd`) or a `LIST` answer.
fn parse_listing(lines: &[String], mlsd: bool) -> Listing {
    let mut listing = Listing::default();
    for line in lines {
        let parsed = if mlsd {
            parse_mlsd_line(line)
        } else {
            parse_list_line(line)
        };
        match parsed {
            Line::Entry(entry) => listing.entries.push(entry),
            Line::Skip => {}
            Line::Unknown => {
                listing.not_understood.get_or_insert_with(|| line.clone());
            }
        }
    }
    listing
}

/// Parses one `MLSD` line (RFC 3659): `fact=value;…; name`. The facts end
/// at the first space; the name is everything after it, spaces and `;`
/// included.
fn parse_mlsd_line(line: &str) -> Line {
    let Some((facts, name)) = line.split_once(' ') else {
        return Line::Unknown;
    };
    if name.is_empty() {
        return Line::Unknown;
    }
    let mut kind = None;
    let mut size = None;
    for fact in facts.split(';') {
        let Some((key, value)) = fact.split_once('=') else {
            continue;
        };
        if key.eq_ignore_ascii_case("type") {
            kind = Some(match value.to_ascii_lowercase().as_str() {
                "file" => Kind::File,
                "dir" => Kind::Folder,
                "cdir" | "pdir" => return Line::Skip,
                _ => Kind::Other,
            });
        } else if key.eq_ignore_ascii_case("size") {
            size = value.parse().ok();
        }
    }
    let Some(kind) = kind else {
        return Line::Unknown;
    };
    if name == "." || name == ".." {
        return Line::Skip;
    }
    Line::Entry(Listed {
        name: name.to_owned(),
        kind,
        size: (kind == Kind::File).then_some(size).flatten(),
    })
}

/// Parses one `LIST` line, in the Unix `ls -l` form or the MS-DOS form of
/// IIS and other Windows servers.
fn parse_list_line(line: &str) -> Line {
    if line.starts_with("total ") {
        return Line::Skip;
    }
    let parsed = parse_unix_line(line).or_else(|| parse_dos_line(line));
    match parsed {
        Some(Listed { ref name, .. }) if name == "." || name == ".." => Line::Skip,
        Some(entry) => Line::Entry(entry),
        None => Line::Unknown,
    }
}

/// The whitespace-separated words of `line` with their byte offsets, so
/// that a name can be taken from the line as it is, spaces included.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(from)) => {
                out.push((from, &line[from..at]));
                start = None;
            }
            (false, None) => start = Some(at),
            _ => {}
        }
    }
    if let Some(from) = start {
        out.push((from, &line[from..]));
    }
    out
}

/// The name that follows the word `last` of `line`: the rest of the line
/// after the spaces that separate it.
fn name_after<'a>(line: &'a str, last: (usize, &str)) -> Option<&'a str> {
    let name = line[last.0 + last.1.len()..].trim_start();
    (!name.is_empty()).then_some(name)
}

/// Parses `drwxr-xr-x 2 owner group 4096 Nov 24 15:30 name`: the
/// permissions, then the size is the number just before the date, found
/// by its shape (`Mon DD HH:MM`, `Mon DD YYYY` or `YYYY-MM-DD HH:MM`), so
/// that missing or spaced owner and group columns do not matter.
fn parse_unix_line(line: &str) -> Option<Listed> {
    let words = words(line);
    let perms = words.first()?.1;
    let kind = match perms.chars().next()? {
        '-' => Kind::File,
        'd' => Kind::Folder,
        'l' | 'c' | 'b' | 'p' | 's' | 'D' => Kind::Other,
        _ => return None,
    };
    let modes_ok = perms.len() >= 10
        && perms[1..10]
            .chars()
            .all(|c| matches!(c, 'r' | 'w' | 'x' | 's' | 'S' | 't' | 'T' | 'l' | 'L' | '-'));
    if !modes_ok {
        return None;
    }
    for at in 1..words.len() {
        let size_word = words[at].1;
        if !size_word.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(date_end) = date_end(&words, at + 1) else {
            continue;
        };
        let mut name = name_after(line, words[date_end])?;
        if kind == Kind::Other
            && perms.starts_with('l')
            && let Some((link, _target)) = name.split_once(" -> ")
        {
            name = link;
        }
        return Some(Listed {
            name: name.to_owned(),
            kind,
            size: (kind == Kind::File)
                .then(|| size_word.parse().ok())
                .flatten(),
        });
    }
    None
}

/// The index of the last word of a date starting at word `at`, if one
/// starts there.
fn date_end(words: &[(usize, &str)], at: usize) -> Option<usize> {
    let word = |i: usize| words.get(i).map(|w| w.1);
    let first = word(at)?;
    if is_month(first) {
        let day = word(at + 1)?;
        let last = word(at + 2)?;
        let day_ok = (1..=2).contains(&day.len()) && day.bytes().all(|b| b.is_ascii_digit());
        let last_ok =
            is_time(last) || (last.len() == 4 && last.bytes().all(|b| b.is_ascii_digit()));
        return (day_ok && last_ok).then_some(at + 2);
    }
    if is_iso_date(first) && word(at + 1).is_some_and(is_time) {
        return Some(at + 1);
    }
    None
}

/// `Jan` … `Dec`, in any case.
fn is_month(word: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    MONTHS.iter().any(|m| m.eq_ignore_ascii_case(word))
}

/// `H:MM`, `HH:MM`, or with seconds and fractions (`15:30:07.123`).
fn is_time(word: &str) -> bool {
    let mut parts = word.split(':');
    let hours = parts.next().unwrap_or("");
    let minutes = parts.next().unwrap_or("");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (1..=2).contains(&hours.len())
        && digits(hours)
        && minutes.len() == 2
        && digits(minutes)
        && parts.all(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// `YYYY-MM-DD`.
fn is_iso_date(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses `11-24-26  03:30PM       <DIR>          name` and
/// `11-24-2026  15:30            1234 name`.
fn parse_dos_line(line: &str) -> Option<Listed> {
    let words = words(line);
    let date = words.first()?.1;
    let date_parts: Vec<&str> = date.split(['-', '/']).collect();
    let date_ok = date_parts.len() == 3
        && date_parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !date_ok {
        return None;
    }
    let time = words.get(1)?.1;
    let clock = time
        .strip_suffix("AM")
        .or_else(|| time.strip_suffix("PM"))
        .or_else(|| time.strip_suffix("am"))
        .or_else(|| time.strip_suffix("pm"))
        .unwrap_or(time);
    if !is_time(clock) {
        return None;
    }
    // Some servers put a space before AM/PM.
    let mut at = 2;
    if words
        .get(at)
        .is_some_and(|w| w.1.eq_ignore_ascii_case("AM") || w.1.eq_ignore_ascii_case("PM"))
    {
        at += 1;
    }
    let marker = *words.get(at)?;
    let (kind, size) = if marker.1.eq_ignore_ascii_case("<DIR>") {
        (Kind::Folder, None)
    } else {
        let digits: String = marker.1.chars().filter(|&c| c != ',' && c != '.').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (Kind::File, digits.parse().ok())
    };
    Some(Listed {
        name: name_after(line, marker)?.to_owned(),
        kind,
        size,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn reply(text: &str) -> FtpError {
        let code: u32 = text[..3].parse().unwrap();
        FtpError::UnexpectedResponse(Response::new(
            Status::from(code),
            format!("{text}\r\n").into_bytes(),
        ))
    }

    fn entry(name: &str, kind: Kind, size: Option<u64>) -> Line {
        Line::Entry(Listed {
            name: name.to_owned(),
            kind,
            size,
        })
    }

    #[test]
    fn unix_listings_of_vsftpd_and_pure_ftpd() {
        let cases = [
            (
                "-rw-r--r--    1 1001     1001            3 Nov 25 01:36 a.txt",
                entry("a.txt", Kind::File, Some(3)),
            ),
            (
                "drwxr-xr-x    2 1001     1001         4096 Nov 25 01:36 sub",
                entry("sub", Kind::Folder, None),
            ),
            (
                "-rw-r--r--    1 1001       escale-tes    5242880 Jan  3  2025 large.bin",
                entry("large.bin", Kind::File, Some(5_242_880)),
            ),
            (
                "drwxr-xr-x    3 1001       escale-tes       4096 Nov 25 01:36 .",
                Line::Skip,
            ),
            (
                "drwxr-xr-x    3 1001       escale-tes       4096 Nov 25 01:35 ..",
                Line::Skip,
            ),
            ("total 12", Line::Skip),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_list_line(line), expected, "{line}");
        }
    }

    #[test]
    fn unix_names_keep_their_spaces_and_symbols() {
        let cases = [
            (
                "-rw-r--r--    1 1001     1001           11 Nov 25 01:36 résumé ✓.txt",
                "résumé ✓.txt",
            ),
            (
                "-rw-r--r--    1 1001     1001            3 Nov 25 01:36 a+b=c&d%20e #1 (copy) [x] ~$.txt",
                "a+b=c&d%20e #1 (copy) [x] ~$.txt",
            ),
            (
                "drwxr-xr-x    2 1001     1001         4096 Nov 25 01:36 été 2026",
                "été 2026",
            ),
            // A name that looks like the end of a date.
            (
                "-rw-r--r--    1 ftp      ftp             7 Dec 31  2025 Nov 24 15:30 notes",
                "Nov 24 15:30 notes",
            ),
            // A name made of a number.
            (
                "-rw-r--r--    1 ftp      ftp             2 Jun  1 09:05 2026",
                "2026",
            ),
            (
                "-rw-r--r--    1 ftp      ftp             0 Jun  1 09:05 .escale-tmp-0011",
                ".escale-tmp-0011",
            ),
        ];
        for (line, name) in cases {
            match parse_list_line(line) {
                Line::Entry(entry) => assert_eq!(entry.name, name, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn unix_listings_without_group_with_owner_names_and_iso_dates() {
        let cases = [
            // No group column (some embedded servers).
            (
                "-rw-r--r-- 1 owner 1234 Nov 24 15:30 data.bin",
                entry("data.bin", Kind::File, Some(1234)),
            ),
            // No link count either.
            (
                "-rw-r--r-- owner group 99 Feb 29 2024 x",
                entry("x", Kind::File, Some(99)),
            ),
            // An owner called like a month.
            (
                "-rw-r--r-- 1 May May 5 Nov 24 15:30 y",
                entry("y", Kind::File, Some(5)),
            ),
            // ls --time-style=long-iso, ACL marker after the modes.
            (
                "-rw-r--r--+ 1 ana staff 42 2026-11-24 15:30 report.pdf",
                entry("report.pdf", Kind::File, Some(42)),
            ),
            (
                "drwxr-x---  4 ana staff 128 2026-11-24 15:30:07.123 Folder Name",
                entry("Folder Name", Kind::Folder, None),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_list_line(line), expected, "{line}");
        }
    }

    #[test]
    fn links_and_special_files_are_not_files() {
        let cases = [
            (
                "lrwxrwxrwx    1 1001     1001           12 Nov 25 01:36 current -> objects/ab cd",
                entry("current", Kind::Other, None),
            ),
            (
                "crw-rw-rw-    1 0        0          1,   3 Nov 25 01:36 null",
                entry("null", Kind::Other, None),
            ),
            (
                "prw-r--r--    1 1001     1001            0 Nov 25 01:36 fifo",
                entry("fifo", Kind::Other, None),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_list_line(line), expected, "{line}");
        }
    }

    #[test]
    fn ms_dos_listings_of_iis() {
        let cases = [
            (
                "11-24-26  03:30PM       <DIR>          clients",
                entry("clients", Kind::Folder, None),
            ),
            (
                "11-24-26  03:30PM                 1234 head 0",
                entry("head 0", Kind::File, Some(1234)),
            ),
            (
                "11-24-2026  15:30            5,242,880 large file.bin",
                entry("large file.bin", Kind::File, Some(5_242_880)),
            ),
            (
                "01-02-26  09:05 AM                0 empty",
                entry("empty", Kind::File, Some(0)),
            ),
            (
                "06-01-26  12:00AM       <dir>          résumé ✓",
                entry("résumé ✓", Kind::Folder, None),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_list_line(line), expected, "{line}");
        }
    }

    #[test]
    fn unknown_lines_are_reported_not_guessed() {
        for line in [
            "garbage",
            "-rw-r--r-- 1 a b c d e",
            "drwxr-xr-x 1 a b 12 Nov 24 15:30",
            "11-24-26 notatime 12 x",
            "Nov 24 15:30 name",
        ] {
            assert_eq!(parse_list_line(line), Line::Unknown, "{line}");
        }
        let lines: Vec<String> = [
            "-rw-r--r--    1 1001     1001            3 Nov 25 01:36 a.txt",
            "weird line",
            "another weird line",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let listing = parse_listing(&lines, false);
        assert_eq!(listing.entries.len(), 1);
        assert_eq!(listing.not_understood.as_deref(), Some("weird line"));
    }

    #[test]
    fn mlsd_lines_of_pure_ftpd() {
        let cases = [
            (
                "type=file;size=1;modify=20261125013608;UNIX.mode=0644;unique=fe00g9b6194; probe.txt",
                entry("probe.txt", Kind::File, Some(1)),
            ),
            (
                "type=dir;sizd=4096;modify=20261125013608;UNIX.mode=0755; d1",
                entry("d1", Kind::Folder, None),
            ),
            ("type=cdir;sizd=4096;modify=20261125013608; .", Line::Skip),
            ("type=pdir;sizd=4096; ..", Line::Skip),
            (
                "Type=File;Size=12;Modify=20261125013608; name; with = odd;  spaces ",
                entry("name; with = odd;  spaces ", Kind::File, Some(12)),
            ),
            (
                "type=OS.unix=slink:/etc;size=4; link",
                entry("link", Kind::Other, None),
            ),
            ("size=1; nameless-type", Line::Unknown),
            ("type=file;size=1;", Line::Unknown),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_mlsd_line(line), expected, "{line}");
        }
    }

    #[test]
    fn listings_split_on_any_line_end_and_skip_non_utf8() {
        let bytes = b"a\r\nb\n\r\n\nc\xff\r\nd";
        assert_eq!(split_lines(bytes), ["a", "b", "d"]);
    }

    #[test]
    fn replies_are_sorted_by_code_and_words() {
        use RelayErrorKind as K;
        let what = "the relay file /x at ftp://ana@host/r";
        let cases = [
            ("530 Login incorrect.", K::AuthenticationFailed),
            ("550 Failed to open file.", K::NotFound),
            ("550 Can't open x: No such file or directory", K::NotFound),
            ("550 Permission denied.", K::PermissionDenied),
            ("550 Access is denied.", K::PermissionDenied),
            ("553 Could not create file.", K::PermissionDenied),
            (
                "553 Can't open that file: No such file or directory",
                K::NotFound,
            ),
            ("552 Quota exceeded", K::StorageFull),
            ("452 Insufficient storage space", K::StorageFull),
            ("421 Timeout.", K::Interrupted),
            ("425 Can't open data connection.", K::Interrupted),
            ("426 Failure writing network stream.", K::Interrupted),
            ("451 Local error", K::Interrupted),
            ("500 Unknown command.", K::Unsupported),
            ("554 Restart offset reset to 0", K::Other),
        ];
        for (text, kind) in cases {
            let err = map_error(reply(text), what);
            assert_eq!(err.kind(), kind, "{text}: {err}");
            assert!(err.to_string().contains(what), "{text}: {err}");
            assert!(err.to_string().contains(&text[4..]), "{text}: {err}");
        }
        let retryable = |text| map_error(reply(text), what).is_retryable();
        assert!(retryable("421 Timeout."));
        assert!(retryable("426 Failure writing network stream."));
        assert!(retryable("552 Quota exceeded"));
        assert!(!retryable("530 Login incorrect."));
        assert!(!retryable("550 Permission denied."));
    }

    #[test]
    fn paths_quoted_in_replies_are_not_read_as_words() {
        let err = reply("550 Can't open /relay/denied/nothing: No such file or directory");
        assert_eq!(reply_hint(&err, None), Some(Hint::Missing));
        let err = reply("550 access denied now: No such file or directory");
        assert_eq!(
            reply_hint(&err, Some("access denied now")),
            Some(Hint::Missing)
        );
        let err = reply("550 /relay/no such thing: Permission denied");
        assert_eq!(reply_hint(&err, None), Some(Hint::Denied));
        assert_eq!(reply_hint(&reply("550 Failed to open file."), None), None);
    }

    #[test]
    fn refusals_of_existing_things_are_permission_problems() {
        let what = "the relay file /x";
        let vague = map_denied(reply("550 Failed to open file."), what);
        assert_eq!(vague.kind(), RelayErrorKind::PermissionDenied, "{vague}");
        let missing = map_denied(reply("553 Can't open: No such file or directory"), what);
        assert_eq!(missing.kind(), RelayErrorKind::NotFound, "{missing}");
        let full = map_denied(reply("552 Disk full"), what);
        assert_eq!(full.kind(), RelayErrorKind::StorageFull, "{full}");
    }

    #[test]
    fn connection_failures_are_retryable_and_tls_is_not() {
        use RelayErrorKind as K;
        let what = "the relay at ftp://host/r";
        let io = |kind| FtpError::ConnectionError(io::Error::from(kind));
        let cases = [
            (io(io::ErrorKind::ConnectionRefused), K::Unreachable),
            (io(io::ErrorKind::TimedOut), K::Timeout),
            (io(io::ErrorKind::ConnectionReset), K::Interrupted),
            (io(io::ErrorKind::UnexpectedEof), K::Interrupted),
            (io(io::ErrorKind::BrokenPipe), K::Interrupted),
            (
                FtpError::ConnectionError(io::Error::new(
                    io::ErrorKind::InvalidData,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                )),
                K::Tls,
            ),
            (
                FtpError::SecureError("invalid peer certificate: UnknownIssuer".into()),
                K::Tls,
            ),
            (FtpError::BadResponse, K::Other),
        ];
        assert_eq!(
            tls_cause("Secure error: Secure error: invalid peer certificate: UnknownIssuer"),
            "invalid peer certificate: UnknownIssuer"
        );
        for (err, kind) in cases {
            let broken = is_broken(&err);
            let err = map_error(err, what);
            assert_eq!(err.kind(), kind, "{err}");
            assert!(broken, "{err}: the connection should be dropped");
            assert_eq!(err.is_retryable(), kind != K::Tls, "{err}");
            if kind == K::Tls {
                assert!(err.to_string().contains("ESCALE_CA_FILE"), "{err}");
            }
        }
        assert!(!is_broken(&reply("550 Failed to open file.")));
        assert!(is_broken(&reply(
            "421 Service not available, closing control connection."
        )));
    }

    #[test]
    fn login_refusals_say_what_to_change_and_never_the_password() {
        let open = |url: &str, password: Option<&str>| {
            let secrets = Secrets {
                password: password.map(Into::into),
                ..Secrets::default()
            };
            FtpRelay::open(&RelayUrl::parse(url).unwrap(), &secrets)
                .unwrap()
                .unwrap()
        };
        let relay = open("ftp://ana@host/r", Some("s3cret pass"));
        let err = relay.login_error(
            reply("530 Login incorrect."),
            "the relay at ftp://ana@host/r",
        );
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed);
        assert!(!err.is_retryable());
        assert!(!err.to_string().contains("s3cret"), "{err}");

        let err = relay.login_error(
            reply("530 Non-anonymous sessions must use encryption."),
            "the relay",
        );
        assert!(err.to_string().contains("ftps://"), "{err}");

        let relay = open("ftp://ana@host/r", None);
        let err = relay.login_error(reply("530 Login incorrect."), "the relay");
        assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
        assert!(!format!("{relay:?}").contains("s3cret"));
    }

    #[test]
    fn relay_paths_become_full_server_paths() {
        let secrets = Secrets::default();
        let relay = |url: &str| {
            FtpRelay::open(&RelayUrl::parse(url).unwrap(), &secrets)
                .unwrap()
                .unwrap()
        };
        let nested = relay("ftp://host/srv/escale");
        let top = relay("ftp://host");
        let path = RelayPath::new("clients/ab/head-0").unwrap();
        assert_eq!(nested.full(&path), "/srv/escale/clients/ab/head-0");
        assert_eq!(nested.full(&RelayPath::root()), "/srv/escale");
        assert_eq!(top.full(&path), "/clients/ab/head-0");
        assert_eq!(top.full(&RelayPath::root()), "/");
        assert_eq!(join("/", ".escale-tmp-1"), "/.escale-tmp-1");
        assert_eq!(
            nested.file_full(&RelayPath::root()).unwrap_err().kind(),
            RelayErrorKind::InvalidPath
        );
        assert_eq!(top.server.user, ANONYMOUS);
        assert!(top.server.has_password);
        assert!(FtpRelay::open(&RelayUrl::parse("webdav://h/x").unwrap(), &secrets).is_none());
    }

    /// The harness's FTP servers, by their servers.env names.
    const SERVERS: [&str; 3] = ["FTP", "FTPS", "PUREFTPD"];

    /// The backend on server `name` of the harness, as its own type.
    fn relay_on(vars: &std::collections::HashMap<String, String>, name: &str) -> FtpRelay {
        let url = RelayUrl::parse(&vars[&format!("{name}_URL")]).unwrap();
        let secrets = crate::relay::conformance::servers::secrets(vars, name);
        FtpRelay::open(&url, &secrets).unwrap().unwrap()
    }

    /// The local folder where server `name` keeps relay `path`.
    fn on_disk(
        vars: &std::collections::HashMap<String, String>,
        name: &str,
        path: &RelayPath,
    ) -> std::path::PathBuf {
        std::path::Path::new(&vars[&format!("{name}_DATA")])
            .join("relay")
            .join(path.as_str())
    }

    /// A fresh folder for one test, at the relay's root.
    async fn fresh_dir(relay: &FtpRelay, prefix: &str) -> RelayPath {
        let dir = RelayPath::root()
            .join(&format!(
                "{prefix}-{}",
                hex::encode(crate::ids::random_bytes::<4>())
            ))
            .unwrap();
        relay.create_dir(&dir).await.unwrap();
        dir
    }

    /// Opens `url` with `secrets` and lists its root, for the failure.
    async fn list_error(url: &str, secrets: &Secrets) -> RelayError {
        let url = RelayUrl::parse(url).unwrap();
        let relay = crate::relay::open_with(&url, secrets).unwrap();
        relay.list(&RelayPath::root()).await.unwrap_err()
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn failures_are_sorted_by_kind() {
        let Some(vars) = servers::vars() else { return };
        let good = servers::secrets(&vars, "FTP");
        let wrong = Secrets {
            password: Some("wrong password".into()),
            ..good.clone()
        };
        for name in SERVERS {
            let err = list_error(&vars[&format!("{name}_URL")], &wrong).await;
            assert_eq!(
                err.kind(),
                RelayErrorKind::AuthenticationFailed,
                "{name}: {err}"
            );
            assert!(!err.to_string().contains("wrong password"), "{err}");
            assert!(!err.is_retryable());
        }

        // The test CA is not among the system's roots.
        let untrusted = Secrets {
            ca_file: None,
            ..good.clone()
        };
        let err = list_error(&vars["FTPS_URL"], &untrusted).await;
        assert_eq!(err.kind(), RelayErrorKind::Tls, "{err}");
        assert!(err.to_string().contains("ESCALE_CA_FILE"), "{err}");
        assert!(!err.is_retryable());

        // Plain FTP to a server that insists on TLS says what to write.
        let plain = vars["FTPS_URL"].replacen("ftps://", "ftp://", 1);
        let err = list_error(&plain, &good).await;
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
        assert!(err.to_string().contains("ftps://"), "{err}");

        // A port nobody listens on.
        let err = list_error("ftp://u@127.0.0.1:1/x", &good).await;
        assert_eq!(err.kind(), RelayErrorKind::Unreachable, "{err}");
        assert!(err.is_retryable());
        let err = list_error("ftp://u@no-such-host.invalid/x", &good).await;
        assert_eq!(err.kind(), RelayErrorKind::Unreachable, "{err}");
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_missing_relay_folder_is_never_created() {
        let Some(vars) = servers::vars() else { return };
        for name in SERVERS {
            let url = format!(
                "{}-gone-{}",
                vars[&format!("{name}_URL")],
                hex::encode(crate::ids::random_bytes::<4>())
            );
            let url = RelayUrl::parse(&url).unwrap();
            let relay = FtpRelay::open(&url, &servers::secrets(&vars, name))
                .unwrap()
                .unwrap();
            let clients = RelayPath::new("clients/ab").unwrap();
            for result in [
                relay.list(&RelayPath::root()).await.map(|_| ()),
                relay.create_dir(&RelayPath::root()).await,
                relay.create_dir(&clients).await,
                relay
                    .write(&RelayPath::new("head").unwrap(), Bytes::from_static(b"x"))
                    .await,
            ] {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), RelayErrorKind::NotFound, "{name}: {err}");
            }
            let (RelayUrl::Ftp { path, .. } | RelayUrl::Ftps { path, .. }) = &url else {
                unreachable!()
            };
            let local = std::path::Path::new(&vars[&format!("{name}_DATA")])
                .join(path.trim_start_matches('/'));
            assert!(!local.exists(), "{name}: {} was created", local.display());
        }
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn writes_leave_nothing_behind_and_leftovers_are_cleared() {
        let Some(vars) = servers::vars() else { return };
        for name in SERVERS {
            let relay = relay_on(&vars, name);
            let dir = fresh_dir(&relay, "leftovers").await;
            for i in 0..5 {
                relay
                    .write(
                        &dir.join("f").unwrap(),
                        Bytes::from(vec![i; 1000 + usize::from(i)]),
                    )
                    .await
                    .unwrap();
            }
            let local = on_disk(&vars, name, &dir);
            let names = || {
                let mut names: Vec<String> = std::fs::read_dir(&local)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                names.sort();
                names
            };
            assert_eq!(names(), ["f"], "{name}");

            // What a killed upload leaves: hidden from listings, removed
            // by clear_leftovers, and only there.
            std::fs::write(local.join(".escale-tmp-00112233"), b"half").unwrap();
            std::fs::write(local.join(".other-hidden"), b"keep").unwrap();
            let listed: Vec<String> = relay
                .list(&dir)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(listed, [".other-hidden", "f"], "{name}");
            relay.clear_leftovers(&dir).await.unwrap();
            assert_eq!(names(), [".other-hidden", "f"], "{name}");
            relay
                .clear_leftovers(&dir.join("missing").unwrap())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn ranged_reads_cut_transfers_and_keep_connections_in_step() {
        let Some(vars) = servers::vars() else { return };
        for name in SERVERS {
            let relay = Arc::new(relay_on(&vars, name));
            let dir = fresh_dir(&relay, "ranges").await;
            let path = dir.join("object").unwrap();
            let data = crate::relay::conformance::pattern(3 * 1024 * 1024, 9);
            relay.write(&path, Bytes::from(data.clone())).await.unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..40_usize {
                let (relay, path, data) = (Arc::clone(&relay), path.clone(), data.clone());
                tasks.spawn(async move {
                    let start = (i * 77_777) % data.len();
                    let end = (start + 1 + i * 4_099).min(data.len());
                    let got = relay
                        .read(&path, Some(start as u64..end as u64))
                        .await
                        .unwrap();
                    assert!(got == data[start..end], "range {start}..{end}");
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
            // Every connection is still usable after all the cut transfers.
            let idle = relay.idle.lock().unwrap().len();
            assert!((1..=POOL_SIZE).contains(&idle), "{name}: {idle} idle");
            let back = relay.read(&path, None).await.unwrap();
            assert!(back == data, "{name}: whole read after ranges");
        }
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_pooled_connection_closed_by_the_server_is_replaced() {
        let Some(vars) = servers::vars() else { return };
        for name in SERVERS {
            let relay = relay_on(&vars, name);
            let dir = fresh_dir(&relay, "stale").await;
            // The server ends the pooled session, as after an idle timeout.
            let mut conn = relay.take_idle().expect("a pooled connection");
            conn.client.quit().await.unwrap();
            relay.give_back(conn);
            relay
                .write(&dir.join("after").unwrap(), Bytes::from_static(b"ok"))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(relay.list(&dir).await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn refused_access_is_told_apart_from_missing_files() {
        use std::os::unix::fs::PermissionsExt;
        let Some(vars) = servers::vars() else { return };
        for name in SERVERS {
            let relay = relay_on(&vars, name);
            let dir = fresh_dir(&relay, "denied").await;
            let secret = dir.join("secret").unwrap();
            relay
                .write(&secret, Bytes::from_static(b"x"))
                .await
                .unwrap();
            let local = on_disk(&vars, name, &dir);
            let mode = |path: &std::path::Path, mode| {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            };
            // The servers run as the test user, who then can neither read
            // the file nor write into the folder.
            mode(&local.join("secret"), 0o000);
            mode(&local, 0o555);
            let read = relay.read(&secret, None).await.map(|_| ());
            let write = relay
                .write(&dir.join("new").unwrap(), Bytes::from_static(b"y"))
                .await;
            let mkdir = relay.create_dir(&dir.join("sub").unwrap()).await;
            mode(&local, 0o755);
            for (op, result) in [("read", read), ("write", write), ("create_dir", mkdir)] {
                let err = result.unwrap_err();
                assert_eq!(
                    err.kind(),
                    RelayErrorKind::PermissionDenied,
                    "{name} {op}: {err}"
                );
            }
            let missing = relay.read(&dir.join("nothing").unwrap(), None).await;
            let err = missing.unwrap_err();
            assert_eq!(err.kind(), RelayErrorKind::NotFound, "{name}: {err}");
        }
    }

    use crate::relay::conformance::{server_suite, servers};

    // vsftpd lists with LIST (no MLSD), pure-ftpd with MLSD.
    server_suite!(vsftpd_ftp, "FTP", many_entries = 5_000);
    server_suite!(vsftpd_ftps, "FTPS", many_entries = 5_000);
    server_suite!(pure_ftpd, "PUREFTPD", many_entries = 5_000);
}
