//! The WebDAV and S3 backends, over Apache OpenDAL.
//!
//! One [`OpendalRelay`] wraps an [`opendal::Operator`] for either service;
//! what differs between them is decided when the operator is built
//! ([`OpendalRelay::webdav`], [`OpendalRelay::s3`]) and in a few places
//! where the services disagree on the [`Relay`] contract:
//!
//! - **Missing folders.** OpenDAL lists a missing folder as empty and
//!   deletes a missing file without complaint; the contract wants
//!   [`RelayErrorKind::NotFound`] for both, so an empty listing is checked
//!   with a `stat`, and a delete is preceded by one.
//! - **Writes into a missing folder.** nginx (`create_full_put_path`) and
//!   S3 create the folder on the way, Apache answers 409. The contract
//!   wants `NotFound` everywhere, so a write first checks that its folder
//!   exists, unless this relay has already seen it (made or listed it);
//!   a 409 from the server drops it from that memory. The relay root is
//!   the exception: it is created on the first write into it, since a new
//!   network relay starts as a folder nobody has made yet.
//! - **Sizes.** Every upload is checked with a `stat` afterwards and fails
//!   as [`RelayErrorKind::Interrupted`] (retried) when the stored size
//!   differs from what was sent.
//! - **Folders on S3** are zero-byte `name/` marker objects, made for every
//!   level by [`Relay::create_dir`] so that each one can be checked alone.
//!
//! TLS is rustls with the *ring* provider, given to reqwest as a ready
//! configuration built by [`super::tls`] (the system's trust roots plus
//! the certificates of `ESCALE_CA_FILE`; verification is never turned
//! off). No process-wide crypto provider is installed, so other crates'
//! TLS (with another provider) cannot conflict with it.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ::opendal::{ErrorKind as DalKind, HttpTransporter, Operator};
use bytes::Bytes;

use super::tls::CA_FILE_ENV;
use super::{Capabilities, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath, RelayUrl};

/// The environment variable holding the relay password (WebDAV).
pub(crate) const PASSWORD_ENV: &str = "ESCALE_RELAY_PASSWORD";
/// S3 keys, read from the usual AWS variables.
const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
/// See [`ACCESS_KEY_ENV`].
const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

/// How long to wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request may wait for the next bytes from the server; a
/// stalled transfer is cut after this, not a long one.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest object one S3 `PUT` accepts.
const S3_MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Which storage service an [`OpendalRelay`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// WebDAV over HTTP or HTTPS.
    WebDav,
    /// S3 or a compatible server.
    S3,
}

/// What a relay needs besides its address. None of it is ever shown.
#[derive(Default, Clone)]
pub(crate) struct Secrets {
    /// The WebDAV password for the address's user.
    pub(crate) password: Option<String>,
    /// The S3 access key id and secret key.
    pub(crate) s3_keys: Option<(String, String)>,
    /// A PEM file of extra certificate authorities to trust.
    pub(crate) ca_file: Option<PathBuf>,
    /// A private key file for SSH logins (SFTP); without it the user's
    /// default keys are tried.
    pub(crate) ssh_key: Option<PathBuf>,
    /// The passphrase of `ssh_key`, when it has one.
    pub(crate) ssh_key_passphrase: Option<String>,
    /// Escale's own known-hosts file, where SFTP servers connected to for
    /// the first time are recorded (trust on first use).
    pub(crate) known_hosts: Option<PathBuf>,
    /// The rclone program for `rclone:` relays, when not `rclone` on the
    /// `PATH` ([`RCLONE_ENV`](super::rclone::RCLONE_ENV)). Not a secret,
    /// but set up in the same place.
    pub(crate) rclone_binary: Option<PathBuf>,
    /// The rclone configuration file, when not rclone's own choice (its
    /// `RCLONE_CONFIG` variable, else its default): rclone keeps the
    /// storage's credentials there, Escale never sees them.
    pub(crate) rclone_config: Option<PathBuf>,
}

impl Secrets {
    /// From the environment: [`PASSWORD_ENV`], the AWS key variables,
    /// [`CA_FILE_ENV`], the SSH ones ([`super::sftp::SSH_KEY_ENV`],
    /// [`super::sftp::SSH_KEY_PASSPHRASE_ENV`],
    /// [`super::sftp::KNOWN_HOSTS_ENV`]) and the rclone program's variable.
    pub(crate) fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let path = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Secrets {
            password: var(PASSWORD_ENV),
            s3_keys: var(ACCESS_KEY_ENV).zip(var(SECRET_KEY_ENV)),
            ca_file: path(CA_FILE_ENV),
            ssh_key: path(super::sftp::SSH_KEY_ENV),
            ssh_key_passphrase: var(super::sftp::SSH_KEY_PASSPHRASE_ENV),
            known_hosts: path(super::sftp::KNOWN_HOSTS_ENV),
            rclone_binary: path(super::rclone::RCLONE_ENV),
            // rclone reads RCLONE_CONFIG itself.
            rclone_config: None,
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("s3_keys", &self.s3_keys.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .field("ssh_key", &self.ssh_key)
            .field(
                "ssh_key_passphrase",
                &self.ssh_key_passphrase.as_ref().map(|_| "…"),
            )
            .field("known_hosts", &self.known_hosts)
            .field("rclone_binary", &self.rclone_binary)
            .field("rclone_config", &self.rclone_config)
            .finish()
    }
}

/// A relay on a WebDAV server or in an S3 bucket.
pub(crate) struct OpendalRelay {
    /// The operator, rooted at the relay folder.
    op: Operator,
    /// Which service `op` talks to.
    service: Service,
    /// The relay's address, without secrets, for messages.
    address: String,
    /// Folders known to exist (relay paths; `""` is the root): made or
    /// listed by this relay. Writes into them skip the existence check.
    known_dirs: Mutex<HashSet<String>>,
    /// For a WebDAV relay below the server's root: an operator on the
    /// server's root and the relay folder's key there, because OpenDAL
    /// can neither check nor make an operator's own root.
    outer: Option<(Operator, String)>,
}

impl fmt::Debug for OpendalRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpendalRelay")
            .field("service", &self.service)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl OpendalRelay {
    /// Opens a WebDAV or S3 relay from its address with `secrets`; other
    /// kinds are not this backend's (`None`).
    pub(crate) fn open(url: &RelayUrl, secrets: &Secrets) -> Option<Result<Self, RelayError>> {
        let mut outer = None;
        let op = match url {
            RelayUrl::WebDav {
                https,
                host,
                port,
                user,
                path,
            } => {
                let user = user.as_deref();
                let key = format!("{}/", path.trim_matches('/'));
                if key != "/" {
                    match webdav_operator(url, *https, host, *port, user, "/", secrets) {
                        Ok(op) => outer = Some((op, key)),
                        Err(err) => return Some(Err(err)),
                    }
                }
                webdav_operator(url, *https, host, *port, user, path, secrets)
                    .map(|op| (op, Service::WebDav))
            }
            RelayUrl::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                path_style,
            } => s3_operator(
                url,
                bucket,
                prefix,
                endpoint.as_deref(),
                region.as_deref(),
                *path_style,
                secrets,
            )
            .map(|op| (op, Service::S3)),
            _ => return None,
        };
        Some(op.and_then(|(op, service)| {
            let transport = http_transport(secrets.ca_file.as_deref())?;
            let with_transport = |op: Operator| {
                let ctx = op.base_context().with_http_transport(transport.clone());
                op.with_context(ctx)
            };
            Ok(OpendalRelay {
                op: with_transport(op),
                service,
                address: url.to_string(),
                known_dirs: Mutex::new(HashSet::new()),
                outer: outer.map(|(op, key)| (with_transport(op), key)),
            })
        }))
    }

    /// How messages name a relay file.
    fn file_words(&self, path: &RelayPath) -> String {
        format!("the relay file {path} at {}", self.address)
    }

    /// How messages name a relay folder.
    fn dir_words(&self, path: &RelayPath) -> String {
        format!("the relay folder {path} at {}", self.address)
    }

    fn is_known(&self, dir: &RelayPath) -> bool {
        self.known_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(dir.as_str())
    }

    fn remember(&self, dir: &RelayPath) {
        let mut known = self.known_dirs.lock().unwrap_or_else(|p| p.into_inner());
        let mut current = Some(dir.clone());
        while let Some(dir) = current {
            current = dir.parent();
            known.insert(dir.as_str().to_owned());
        }
    }

    fn forget(&self, dir: &RelayPath) {
        self.known_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(dir.as_str());
    }

    /// The operator and key through which to check or make folder `dir`.
    fn locate(&self, dir: &RelayPath) -> (&Operator, String) {
        match &self.outer {
            Some((op, key)) if dir.is_root() => (op, key.clone()),
            _ => (&self.op, dir_key(dir)),
        }
    }

    /// Whether `dir` exists as a folder (a `stat` of it).
    async fn dir_exists(&self, dir: &RelayPath) -> Result<bool, RelayError> {
        let (op, key) = self.locate(dir);
        match op.stat(&key).await {
            Ok(meta) => Ok(meta.is_dir()),
            Err(err) if err.kind() == DalKind::NotFound => Ok(false),
            Err(err) => Err(map_error(err, &self.dir_words(dir))),
        }
    }

    /// A ranged read that failed with `first`, tried again within the
    /// file's size: servers answer 416 to a range starting past the end,
    /// and OpenDAL refuses a range it cannot fill, where the contract
    /// clamps. Ranges inside the file cost no extra request this way.
    async fn read_clamped(
        &self,
        key: &str,
        range: Range<u64>,
        first: ::opendal::Error,
        what: &str,
    ) -> Result<Bytes, RelayError> {
        let meta = self.op.stat(key).await.map_err(|e| map_error(e, what))?;
        if meta.is_dir() {
            return Err(is_a_folder(what));
        }
        let size = meta.content_length();
        if range.end <= size {
            // Not a matter of the file's end.
            return Err(map_error(first, what));
        }
        if range.start >= size {
            return Ok(Bytes::new());
        }
        self.op
            .read_with(key)
            .range(range.start..size)
            .await
            .map(|buffer| buffer.to_bytes())
            .map_err(|e| map_error(e, what))
    }

    /// Makes sure the folder `dir` exists before a write into it: the
    /// root is created when missing, any other folder must exist.
    async fn check_parent(&self, dir: &RelayPath) -> Result<(), RelayError> {
        if self.is_known(dir) {
            return Ok(());
        }
        if self.dir_exists(dir).await? {
            self.remember(dir);
            return Ok(());
        }
        if dir.is_root() {
            return self.create_dir(dir).await;
        }
        Err(RelayError::new(
            RelayErrorKind::NotFound,
            format!("{} does not exist", self.dir_words(dir)),
        ))
    }
}

#[async_trait::async_trait]
impl Relay for OpendalRelay {
    fn capabilities(&self) -> Capabilities {
        match self.service {
            // nginx replaces files atomically, Apache and rclone write in
            // place: not promised.
            Service::WebDav => Capabilities {
                ranged_read: true,
                atomic_write: false,
                list_sizes: true,
                max_file_size: None,
            },
            Service::S3 => Capabilities {
                ranged_read: true,
                atomic_write: true,
                list_sizes: true,
                max_file_size: Some(S3_MAX_PUT),
            },
        }
    }

    fn describe(&self) -> String {
        self.address.clone()
    }

    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        let key = dir_key(dir);
        let listed = self
            .op
            .list(&key)
            .await
            .map_err(|e| map_error(e, &self.dir_words(dir)))?;
        let mut saw_itself = false;
        let mut entries = Vec::with_capacity(listed.len());
        for entry in listed {
            let path = entry.path();
            if path == key || path.trim_start_matches('/') == key.trim_start_matches('/') {
                saw_itself = true;
                continue;
            }
            let name = entry.name().trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                continue;
            }
            let meta = entry.metadata();
            let is_dir = meta.is_dir();
            entries.push(RelayEntry {
                name: name.to_owned(),
                is_dir,
                size: (!is_dir).then(|| meta.content_length()),
            });
        }
        if entries.is_empty() && !saw_itself && !self.dir_exists(dir).await? {
            self.forget(dir);
            return Err(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{} does not exist", self.dir_words(dir)),
            ));
        }
        self.remember(dir);
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        let key = file_key(path)?;
        let what = self.file_words(path);
        let result = match range {
            None => self.op.read(&key).await,
            Some(range) if range.start >= range.end => {
                // No bytes asked for: only whether the file is there.
                let meta = self.op.stat(&key).await.map_err(|e| map_error(e, &what))?;
                if meta.is_dir() {
                    return Err(is_a_folder(&what));
                }
                return Ok(Bytes::new());
            }
            Some(range) => match self.op.read_with(&key).range(range.clone()).await {
                Err(err) if err.kind() != DalKind::NotFound && transport_kind(&err).is_none() => {
                    return self.read_clamped(&key, range, err, &what).await;
                }
                other => other,
            },
        };
        match result {
            Ok(buffer) => Ok(buffer.to_bytes()),
            // A range starting at or past the end: the file exists.
            Err(err) if err.kind() == DalKind::RangeNotSatisfied => Ok(Bytes::new()),
            Err(err) if err.kind() == DalKind::IsADirectory => Err(is_a_folder(&what)),
            Err(err) => Err(map_error(err, &what)),
        }
    }

    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        let key = file_key(path)?;
        let what = self.file_words(path);
        let parent = path.parent().unwrap_or_else(RelayPath::root);
        self.check_parent(&parent).await?;
        let len = data.len() as u64;
        if let Err(err) = self.op.write(&key, data).await {
            let err = map_error(err, &what);
            if err.kind() == RelayErrorKind::NotFound {
                self.forget(&parent);
            }
            return Err(err);
        }
        // The server said it stored the file; check that it stored all of
        // it, since a cut connection can look like a complete short file.
        // Servers that store through a cache (rclone serve webdav under
        // concurrent uploads) may show the file empty for a moment after
        // answering: a short file is looked at again before it is reported.
        let mut pause = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            let meta = self.op.stat(&key).await.map_err(|e| map_error(e, &what))?;
            let stored = meta.content_length();
            if !meta.is_dir() && stored == len {
                return Ok(());
            }
            if meta.is_dir() || attempt == 4 {
                return Err(RelayError::new(
                    RelayErrorKind::Interrupted,
                    format!("{what} was stored with {stored} bytes instead of {len}"),
                ));
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        let key = file_key(path)?;
        let what = self.file_words(path);
        // Both services delete a missing file without complaint; the
        // contract reports it.
        let meta = self.op.stat(&key).await.map_err(|e| map_error(e, &what))?;
        if meta.is_dir() {
            return Err(is_a_folder(&what));
        }
        self.op.delete(&key).await.map_err(|e| map_error(e, &what))
    }

    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        let what = self.dir_words(path);
        if path.is_root() {
            return Err(RelayError::new(
                RelayErrorKind::InvalidPath,
                format!("cannot remove the relay folder {} itself", self.address),
            ));
        }
        // A WebDAV DELETE of a folder takes everything in it, and an S3
        // "folder" is only a marker: the contract's emptiness is checked
        // here, by listing.
        let entries = self.list(path).await?;
        if !entries.is_empty() {
            return Err(crate::relay::file::not_empty(&what));
        }
        if self.service == Service::S3 && !self.dir_exists(path).await? {
            return Err(RelayError::new(
                RelayErrorKind::NotFound,
                format!("{what} does not exist"),
            ));
        }
        self.forget(path);
        self.op
            .delete(&dir_key(path))
            .await
            .map_err(|e| map_error(e, &what))
    }

    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        match self.service {
            // OpenDAL's MKCOL walks up to the first existing folder and
            // makes the missing ones, the relay folder included. Escale
            // never makes that one (a folder deleted on the server, or a
            // wrong address, must not turn into a new empty relay), so it
            // is looked for first, whenever a folder not seen yet is made.
            Service::WebDav => {
                if self.is_known(path) {
                    return Ok(());
                }
                let root = RelayPath::root();
                if !self.dir_exists(&root).await? {
                    return Err(RelayError::new(
                        RelayErrorKind::NotFound,
                        format!("{} does not exist", self.dir_words(&root)),
                    ));
                }
                let (op, key) = self.locate(path);
                if let Err(err) = op.create_dir(&key).await {
                    // Another client may have made a level between
                    // OpenDAL's check and its MKCOL; then all is well.
                    let err = map_error(err, &self.dir_words(path));
                    if err.kind() == RelayErrorKind::Tls
                        || err.kind() == RelayErrorKind::AuthenticationFailed
                        || !self.dir_exists(path).await.unwrap_or(false)
                    {
                        return Err(err);
                    }
                }
            }
            // A marker for every level that this relay has not seen yet.
            Service::S3 => {
                let mut levels = Vec::new();
                let mut current = Some(path.clone());
                while let Some(dir) = current {
                    current = dir.parent();
                    if !dir.is_root() {
                        levels.push(dir);
                    }
                }
                for dir in levels.into_iter().rev() {
                    if self.is_known(&dir) {
                        continue;
                    }
                    self.op
                        .create_dir(&dir_key(&dir))
                        .await
                        .map_err(|e| map_error(e, &self.dir_words(&dir)))?;
                }
            }
        }
        self.remember(path);
        Ok(())
    }
}

/// The WebDAV operator, rooted at the address's folder.
fn webdav_operator(
    url: &RelayUrl,
    https: bool,
    host: &str,
    port: u16,
    user: Option<&str>,
    path: &str,
    secrets: &Secrets,
) -> Result<Operator, RelayError> {
    let scheme = if https { "https" } else { "http" };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut builder = ::opendal::services::Webdav::default()
        .endpoint(&format!("{scheme}://{host}:{port}"))
        .root(path)
        // The folder check is ours (see the module documentation).
        .disable_create_dir(true);
    if let Some(user) = user {
        builder = builder.username(user);
        if let Some(password) = &secrets.password {
            builder = builder.password(password);
        }
    }
    Operator::new(builder).map_err(|e| config_error(url, e))
}

/// The S3 operator, rooted at the address's prefix.
fn s3_operator(
    url: &RelayUrl,
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    path_style: bool,
    secrets: &Secrets,
) -> Result<Operator, RelayError> {
    let Some((access, secret)) = &secrets.s3_keys else {
        return Err(RelayError::new(
            RelayErrorKind::AuthenticationFailed,
            format!("the S3 relay {url} needs its keys in {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"),
        ));
    };
    let mut builder = ::opendal::services::S3::default()
        .bucket(bucket)
        .root(&format!("/{prefix}"))
        .region(region.unwrap_or("us-east-1"))
        .access_key_id(access)
        .secret_access_key(secret)
        // No ~/.aws files, no instance metadata service: only what the
        // address and the environment say.
        .disable_config_load();
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint(endpoint);
    }
    // Self-hosted servers reached by IP address cannot have the bucket in
    // the host name.
    if !path_style && !endpoint.is_some_and(endpoint_is_ip) {
        builder = builder.enable_virtual_host_style();
    }
    Operator::new(builder).map_err(|e| config_error(url, e))
}

/// The operator key of a folder: `name/`, and `/` for the root.
fn dir_key(dir: &RelayPath) -> String {
    if dir.is_root() {
        "/".to_owned()
    } else {
        format!("{}/", dir.as_str())
    }
}

/// The operator key of a file; the root is not one.
fn file_key(path: &RelayPath) -> Result<String, RelayError> {
    if path.is_root() {
        return Err(RelayError::new(
            RelayErrorKind::InvalidPath,
            "the relay folder itself is not a file",
        ));
    }
    Ok(path.as_str().to_owned())
}

fn is_a_folder(what: &str) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidPath,
        format!("{what} is a folder, not a file"),
    )
}

/// Whether an S3 endpoint names its server by IP address (or localhost),
/// where the bucket cannot go in the host name.
fn endpoint_is_ip(endpoint: &str) -> bool {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or(bracketed)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

/// A relay address OpenDAL refuses to build an operator from.
fn config_error(url: &RelayUrl, err: ::opendal::Error) -> RelayError {
    RelayError::new(
        RelayErrorKind::InvalidUrl,
        format!("the relay address {url} cannot be used: {}", err.message()),
    )
    .with_source(err)
}

/// The HTTP transport: reqwest over rustls with the ring provider, the
/// system's roots and the certificates of `ca_file`.
fn http_transport(ca_file: Option<&Path>) -> Result<HttpTransporter, RelayError> {
    let tls = super::tls::client_config(ca_file)?;
    let client = opendal_reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|err| {
            RelayError::new(
                RelayErrorKind::Other,
                format!("cannot set up the HTTP client: {err}"),
            )
            .with_source(err)
        })?;
    Ok(HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(client),
    ))
}

/// Sorts an OpenDAL error by what a person or the scheduler can do about
/// it; `what` names the file or folder, as a noun phrase.
fn map_error(err: ::opendal::Error, what: &str) -> RelayError {
    use RelayErrorKind as K;
    let status = http_status(&err);
    let s3_code = s3_error_code(err.message());
    let (kind, message) = if let Some(kind) = transport_kind(&err) {
        let cause = root_cause(&err);
        let message = match kind {
            K::Tls => format!(
                "the secure connection to the server of {what} failed ({cause}); {}",
                super::tls::ca_advice()
            ),
            K::Timeout => format!("the server of {what} did not answer in time ({cause})"),
            K::Unreachable => format!("the server of {what} cannot be reached ({cause})"),
            _ => format!("the transfer of {what} was interrupted ({cause})"),
        };
        (kind, message)
    } else if status == Some(401)
        || matches!(
            s3_code.as_deref(),
            Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken")
        )
    {
        (
            K::AuthenticationFailed,
            format!("the server refused the login (user name, password or keys) for {what}"),
        )
    } else if status == Some(507)
        || matches!(s3_code.as_deref(), Some("QuotaExceeded" | "StorageFull"))
    {
        (
            K::StorageFull,
            format!("the storage holding {what} is full"),
        )
    } else if status == Some(413) || s3_code.as_deref() == Some("EntityTooLarge") {
        (
            K::Unsupported,
            format!("{what} is larger than the server accepts"),
        )
    } else if status == Some(409) {
        // WebDAV's answer to a PUT or MKCOL whose parent is missing.
        (
            K::NotFound,
            format!("{what} cannot be stored: its folder does not exist"),
        )
    } else if s3_code.as_deref() == Some("NoSuchBucket") {
        (K::NotFound, format!("the bucket of {what} does not exist"))
    } else {
        match err.kind() {
            DalKind::NotFound => (K::NotFound, format!("{what} does not exist")),
            DalKind::PermissionDenied => (
                K::PermissionDenied,
                format!("permission to access {what} was refused"),
            ),
            DalKind::IsADirectory | DalKind::NotADirectory => (
                K::InvalidPath,
                format!("{what} is a folder where a file is expected, or the other way round"),
            ),
            DalKind::ConfigInvalid => (
                K::InvalidUrl,
                format!(
                    "the relay address of {what} is not usable: {}",
                    err.message()
                ),
            ),
            DalKind::Unsupported => (
                K::Unsupported,
                format!("the server of {what} does not support this operation"),
            ),
            _ => {
                let detail = match status {
                    Some(code) => format!("HTTP status {code}"),
                    None => short(err.message()),
                };
                (K::Other, format!("cannot access {what}: {detail}"))
            }
        }
    };
    // OpenDAL's own text carries the whole response (an HTML error page,
    // headers): logs get it at debug level, the error chain a short cause.
    tracing::debug!(error = %err, "relay request failed");
    let cause = match (kind, status) {
        // The message already names the cause.
        (K::Tls | K::Timeout | K::Unreachable | K::Interrupted, _) => {
            return RelayError::new(kind, message);
        }
        (_, Some(code)) => match s3_code {
            Some(s3) => format!("the server answered HTTP {code} ({s3})"),
            None => format!("the server answered HTTP {code}"),
        },
        (_, None) => short(err.message()),
    };
    RelayError::new(kind, message).with_source(std::io::Error::other(cause))
}

/// The HTTP status of a service error, from the response OpenDAL keeps in
/// the error's context (`response: Parts { status: 401, … }`); OpenDAL has
/// no accessor for it.
fn http_status(err: &::opendal::Error) -> Option<u16> {
    let text = err.to_string();
    let at = text.find("Parts { status: ")? + "Parts { status: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// The `<Code>` of an S3 error answer, which OpenDAL keeps in the message
/// as `S3Error { code: "…", … }`.
fn s3_error_code(message: &str) -> Option<String> {
    let at = message.find("code: \"")? + "code: \"".len();
    let end = message[at..].find('"')?;
    Some(message[at..at + end].to_owned())
}

/// What went wrong below HTTP, from the error's chain of causes: TLS,
/// timeouts, refused or cut connections. `None` for an answer from the
/// server.
fn transport_kind(err: &::opendal::Error) -> Option<RelayErrorKind> {
    use std::io::ErrorKind as Io;
    let mut found = None;
    // Depth first through `source` and through the errors io::Error wraps
    // (its `source` skips them), which is where rustls's error sits.
    let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![err];
    while let Some(cause) = stack.pop() {
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return Some(RelayErrorKind::Tls);
        }
        if let Some(next) = cause.source() {
            stack.push(next);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                stack.push(inner);
            }
            let kind = match io.kind() {
                Io::TimedOut => Some(RelayErrorKind::Timeout),
                Io::ConnectionRefused
                | Io::HostUnreachable
                | Io::NetworkUnreachable
                | Io::NetworkDown
                | Io::AddrNotAvailable
                | Io::NotConnected => Some(RelayErrorKind::Unreachable),
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof
                | Io::WriteZero
                | Io::Interrupted => Some(RelayErrorKind::Interrupted),
                _ => None,
            };
            found = found.or(kind);
        }
        if let Some(http) = cause.downcast_ref::<opendal_reqwest::Error>() {
            if http.is_timeout() {
                found = found.or(Some(RelayErrorKind::Timeout));
            } else if http.is_connect() {
                // Keep looking: a TLS failure is also a connect error.
                found = found.or(Some(RelayErrorKind::Unreachable));
            } else if http.is_request() || http.is_body() {
                found = found.or(Some(RelayErrorKind::Interrupted));
            }
        }
    }
    found
}

/// The innermost cause's text, for messages.
fn root_cause(err: &::opendal::Error) -> String {
    let mut current: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = current.source() {
        current = next;
    }
    if let Some(io) = current.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return inner.to_string();
    }
    current.to_string()
}

/// A server's message cut to one short line.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn ip_endpoints_are_recognised() {
        for endpoint in [
            "http://127.0.0.1:8333",
            "https://10.0.0.5",
            "http://[::1]:9000",
            "http://localhost:9000/",
        ] {
            assert!(endpoint_is_ip(endpoint), "{endpoint}");
        }
        for endpoint in ["https://s3.example.com", "http://minio.lan:9000"] {
            assert!(!endpoint_is_ip(endpoint), "{endpoint}");
        }
    }

    #[test]
    fn s3_codes_are_found_in_messages() {
        assert_eq!(
            s3_error_code(r#"S3Error { code: "InvalidAccessKeyId", message: "x" }"#).as_deref(),
            Some("InvalidAccessKeyId")
        );
        assert_eq!(s3_error_code("plain text"), None);
    }

    use crate::relay::conformance::{server_suite, servers};

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
        let ca_file = Some(PathBuf::from(&vars["CA_FILE"]));
        let keys = Some((vars["S3_ACCESS_KEY"].clone(), vars["S3_SECRET_KEY"].clone()));

        let good = Secrets {
            password: Some(vars["WEBDAV_PASSWORD"].clone()),
            ca_file: ca_file.clone(),
            ..Secrets::default()
        };
        let wrong = Secrets {
            password: Some("wrong password".into()),
            ..good.clone()
        };
        let err = list_error(&vars["WEBDAV_URL"], &wrong).await;
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
        assert!(!err.to_string().contains("wrong password"), "{err}");

        // The test CA is not among the system's roots.
        let untrusted = Secrets {
            password: Some(vars["WEBDAVS_PASSWORD"].clone()),
            ..Secrets::default()
        };
        let err = list_error(&vars["WEBDAVS_URL"], &untrusted).await;
        assert_eq!(err.kind(), RelayErrorKind::Tls, "{err}");
        assert!(err.to_string().contains("ESCALE_CA_FILE"), "{err}");

        // A port nobody listens on: the harness's own port, servers stopped
        // there would be racy, so port 1.
        let err = list_error("webdav://u@127.0.0.1:1/x", &good).await;
        assert_eq!(err.kind(), RelayErrorKind::Unreachable, "{err}");
        assert!(err.is_retryable());

        let bad_keys = Secrets {
            s3_keys: keys.map(|(id, _)| (id, "not the secret".into())),
            ..Secrets::default()
        };
        let err = list_error(&vars["S3_URL"], &bad_keys).await;
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
        let err = crate::relay::open_with(
            &RelayUrl::parse(&vars["S3_URL"]).unwrap(),
            &Secrets::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
    }

    /// Regression: OpenDAL's MKCOL makes every missing level, the relay
    /// folder included; a relay folder deleted on the server came back
    /// empty at the next upload.
    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_missing_webdav_relay_folder_is_never_created() {
        let Some(vars) = servers::vars() else { return };
        for name in ["WEBDAV", "WEBDAVS", "APACHE", "RCLONE_WEBDAV"] {
            let gone = format!(
                "relay-gone-{}",
                hex::encode(crate::ids::random_bytes::<4>())
            );
            let url = vars[&format!("{name}_URL")].replace("/relay", &format!("/{gone}"));
            let relay = crate::relay::open_with(
                &RelayUrl::parse(&url).unwrap(),
                &servers::secrets(&vars, name),
            )
            .unwrap();
            let clients = RelayPath::new("clients/ab").unwrap();
            for (what, result) in [
                ("list", relay.list(&RelayPath::root()).await.map(drop)),
                ("create_dir /", relay.create_dir(&RelayPath::root()).await),
                ("create_dir clients/ab", relay.create_dir(&clients).await),
                (
                    "write head",
                    relay
                        .write(&RelayPath::new("head").unwrap(), Bytes::from_static(b"x"))
                        .await,
                ),
            ] {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), RelayErrorKind::NotFound, "{name} {what}: {err}");
            }
            let local = std::path::Path::new(&vars[&format!("{name}_DATA")]).join(&gone);
            assert!(!local.exists(), "{name}: {} was created", local.display());
        }
    }

    // WebDAV answers a folder in one PROPFIND, without paging; S3 pages its
    // listings at 1,000 keys. Every suite writes the 5,000 entries a busy
    // relay folder can hold.
    server_suite!(nginx_webdav, "WEBDAV", many_entries = 5_000);
    server_suite!(nginx_webdavs, "WEBDAVS", many_entries = 5_000);
    server_suite!(apache_webdav, "APACHE", many_entries = 5_000);
    // rclone serve webdav re-reads a folder for every file written into
    // it, so 5,000 files take minutes there; the WebDAV backend is held to
    // 5,000 on nginx and Apache, and rclone itself (its local remote,
    // relay::rclone) too.
    server_suite!(rclone_webdav, "RCLONE_WEBDAV", many_entries = 1_000);
    server_suite!(seaweedfs_s3, "S3", many_entries = 5_000);
}
