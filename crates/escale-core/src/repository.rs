//! Creating, joining and opening repositories: everything between the
//! settings file, the passphrase, the relay header and a sync session.
//!
//! Each public function runs its blocking work (key derivation, hashing,
//! file and database access) on a blocking thread and drives the relay
//! through the caller's tokio runtime.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::{ConfigDir, RepositoryConfig, SyncMode};
use crate::crypto::{CryptoError, KdfParams, MasterKey};
use crate::error::{Error, Result};
use crate::format::{self, Codec, FormatError, Header};
use crate::ids::{ClientId, RepositoryId};
use crate::relay::{self, RelayUrl};
use crate::state::StateDb;
use crate::sync::publish::differs;
use crate::sync::relay_io::RelayIo;
use crate::sync::work::WorkFolder;
use crate::sync::{Session, SyncReport, guard, settings_inside};
use crate::units::ByteSize;

/// A repository passphrase. Kept out of logs and `Debug` output, and wiped
/// from memory when dropped.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase typed or read by a front end.
    pub fn new(text: String) -> Self {
        Passphrase(Zeroizing::new(text))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(hidden)")
    }
}

/// The repository keys derived from a passphrase, kept by a long-running
/// daemon with the header they came from: deriving them costs a deliberate
/// 64 MiB and a fraction of a second, too much to repeat at every cycle.
/// A changed header (a new passphrase) derives them again.
pub(crate) type KeyCache = Arc<std::sync::Mutex<Option<(Header, Codec)>>>;

/// What `init` and `join` need to set up a repository on this computer.
#[derive(Debug, Clone)]
pub struct NewRepository {
    /// The repository's local name.
    pub name: String,
    /// The local folder to sync (created if missing).
    pub folder: PathBuf,
    /// The relay address.
    pub relay: String,
    /// This computer's display name; defaults to the host name.
    pub client_name: Option<String>,
    /// Which way changes travel (default: both ways).
    pub mode: SyncMode,
    /// The most the repository may keep on the relay; no limit when `None`.
    pub quota: Option<ByteSize>,
    /// The relay password and certificate authorities, when the relay
    /// needs them: the authorities' file is recorded in the settings, the
    /// password never (front ends save it with
    /// [`save_relay_password`](crate::save_relay_password)).
    pub access: crate::RelayAccess,
}

impl NewRepository {
    /// A repository `name` syncing `folder` through `relay`, with the
    /// default options.
    pub fn new(
        name: impl Into<String>,
        folder: impl Into<PathBuf>,
        relay: impl Into<String>,
    ) -> Self {
        NewRepository {
            name: name.into(),
            folder: folder.into(),
            relay: relay.into(),
            client_name: None,
            mode: SyncMode::default(),
            quota: None,
            access: crate::RelayAccess::default(),
        }
    }
}

/// Runs blocking engine work on a blocking thread with the runtime's handle.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce(tokio::runtime::Handle) -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(handle))
        .await
        .map_err(|error| Error::Internal(error.to_string()))?
}

/// Creates a new repository on the relay and sets it up on this computer.
/// Refuses if the relay already holds one.
pub async fn init(
    config_dir: &ConfigDir,
    new: NewRepository,
    passphrase: Passphrase,
) -> Result<RepositoryConfig> {
    set_up(config_dir, new, move |relay, address| {
        if relay.read(&format::header_path(), None)?.is_some() {
            return Err(Error::RepositoryExists {
                relay: address.to_owned(),
            });
        }
        let kdf = KdfParams::recommended();
        let key = kdf.derive(passphrase.expose()).map_err(crypto_error)?;
        let master = MasterKey::generate();
        let repository = RepositoryId::random();
        let header = Header::new(repository, kdf, master.wrap(&key, &repository));
        relay.write(&format::header_path(), Bytes::from(header.to_json()))?;
        Ok(Codec::new(master.keys(&repository), repository))
    })
    .await
}

/// Joins an existing repository. The passphrase is checked against the
/// relay before anything is created.
pub async fn join(
    config_dir: &ConfigDir,
    new: NewRepository,
    passphrase: Passphrase,
) -> Result<RepositoryConfig> {
    set_up(config_dir, new, move |relay, address| {
        let header = read_header(relay, address)?;
        unlock(&header, &passphrase, address)
    })
    .await
}

/// Removes repository `name` from this computer: its settings, its saved
/// passphrase and its state. The synced folder and every file in it stay,
/// versions of replaced files included; the relay is not touched, and the
/// other computers stop waiting for this one once it has been away for
/// `absent_after`. Stop the repository first: a sync in progress (in this
/// process or another) makes it [`Error::Busy`].
pub async fn remove(config_dir: &ConfigDir, name: &str) -> Result<RepositoryConfig> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |_| {
        let mut config = config_dir.load()?;
        let settings = configured(&config_dir, &name)?;
        // Out of the settings first: no new sync finds it after this.
        config.repositories.retain(|repo| repo.name != name);
        {
            // Refuses while a sync runs; released before the folder goes,
            // as an open file cannot be deleted everywhere.
            let _lock = lock_repository(&config_dir, &name)?;
            if state_path(&config_dir, &name).exists() {
                crate::keyring::forget_passphrase(&config_dir, &name)?;
            }
        }
        config_dir.save(&config)?;
        let dir = state_dir(&config_dir, &name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::LocalIo { path: dir, source }),
        }
        Ok(settings)
    })
    .await
}

/// Checks that `passphrase` opens the repository on the relay at
/// `address`, creating nothing anywhere: what a setup assistant asks before
/// it goes on to the next step. A wrong passphrase is
/// [`ErrorKind::Passphrase`](crate::ErrorKind::Passphrase); a relay with no
/// repository yet is a format error saying so.
pub async fn verify_passphrase(
    config_dir: &ConfigDir,
    address: &str,
    access: &crate::RelayAccess,
    passphrase: Passphrase,
) -> Result<()> {
    let known_hosts = access
        .known_hosts
        .clone()
        .unwrap_or_else(|| config_dir.known_hosts_file());
    let address = address.to_owned();
    let access = access.clone();
    blocking(move |runtime| {
        let relay = connect(
            &address,
            access.password.as_deref(),
            access.ca_file.as_deref(),
            Some(&known_hosts),
            runtime,
        )?;
        let header = read_header(&relay, &address)?;
        unlock(&header, &passphrase, &address).map(drop)
    })
    .await
}

/// What `init` and `join` share: check the settings, open the relay, get
/// the repository's keys from `keys` (which may refuse), and only then
/// create anything locally.
async fn set_up(
    config_dir: &ConfigDir,
    new: NewRepository,
    keys: impl FnOnce(&RelayIo, &str) -> Result<Codec> + Send + 'static,
) -> Result<RepositoryConfig> {
    let config_dir = config_dir.clone();
    blocking(move |runtime| {
        let (mut config, repo) = prepare(&config_dir, &new)?;
        let relay = connect(
            &repo.relay,
            new.access.password.as_deref(),
            repo.ca_file.as_deref(),
            Some(&config_dir.known_hosts_file()),
            runtime,
        )?;
        let codec = keys(&relay, &repo.relay)?;
        set_up_locally(&config_dir, &repo, &new, relay, codec)?;
        config.add_repository(repo.clone())?;
        config_dir.save(&config)?;
        Ok(repo)
    })
    .await
}

/// Runs one complete sync cycle of the repository `name`.
pub async fn sync(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Passphrase,
) -> Result<SyncReport> {
    sync_until(config_dir, name, passphrase, Arc::default(), None, None).await
}

/// [`sync`] that stops at the next safe point once `stop` is set, reusing
/// the keys in `keys` while the header is unchanged, and telling `events`
/// what it does.
pub(crate) async fn sync_until(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Passphrase,
    stop: Arc<AtomicBool>,
    keys: Option<KeyCache>,
    events: Option<crate::events::EventSink>,
) -> Result<SyncReport> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |runtime| {
        let _lock = lock_repository(&config_dir, &name)?;
        let mut session = open_session(&config_dir, &name, &passphrase, runtime, keys.as_ref())?;
        session.stop = stop;
        session.events = crate::events::Events::new(&name, events);
        session.run()
    })
    .await
}

/// Takes the lock that lets one process at a time sync repository `name`
/// on this computer; released when the returned file is dropped (or the
/// process ends, however it ends). `None` when the repository has no
/// state yet: opening it then reports that clearly.
fn lock_repository(config_dir: &ConfigDir, name: &str) -> Result<Option<std::fs::File>> {
    let dir = state_dir(config_dir, name);
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(local_io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(name.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::LocalIo { path, source }),
    }
}

/// Replaces the passphrase: the master key is wrapped again, nothing else
/// changes, and the other computers need the new passphrase from now on.
pub async fn change_passphrase(
    config_dir: &ConfigDir,
    name: &str,
    old: Passphrase,
    new: Passphrase,
) -> Result<()> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |runtime| {
        let repo = configured(&config_dir, &name)?;
        let relay = open_relay(&config_dir, &repo, runtime)?;
        let header = read_header(&relay, &repo.relay)?;
        let key = header.kdf.derive(old.expose()).map_err(crypto_error)?;
        let master = header
            .master_key
            .unwrap(&key, &header.repository)
            .map_err(|_| Error::WrongPassphrase {
                relay: repo.relay.clone(),
            })?;
        let kdf = KdfParams::recommended();
        let new_key = kdf.derive(new.expose()).map_err(crypto_error)?;
        let rewrapped = Header::new(
            header.repository,
            kdf,
            master.wrap(&new_key, &header.repository),
        );
        relay.write(&format::header_path(), Bytes::from(rewrapped.to_json()))?;
        Ok(())
    })
    .await
}

/// Lets the next sync of repository `name` send the deletions that paused
/// it (see [`Error::MassDeletion`]), and lifts the pause. Only the files
/// missing when it paused are covered: if more vanish before that sync, it
/// pauses again. Returns how many missing files the confirmation covers.
/// Needs no passphrase: it only writes to this computer's state.
pub async fn confirm_deletions(config_dir: &ConfigDir, name: &str) -> Result<u64> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |_| {
        let (_, db) = open_state(&config_dir, &name)?;
        guard::confirm(&db, &name)
    })
    .await
}

fn crypto_error(error: CryptoError) -> Error {
    Error::Internal(error.to_string())
}

/// Checks the new repository against the settings before anything is touched.
fn prepare(
    config_dir: &ConfigDir,
    new: &NewRepository,
) -> Result<(crate::Config, RepositoryConfig)> {
    let config = config_dir.load()?;
    let mut repo = RepositoryConfig::new(new.name.clone(), new.folder.clone(), new.relay.clone());
    repo.mode = new.mode;
    repo.quota = new.quota;
    repo.ca_file = new.access.ca_file.clone();
    let mut candidate = config.clone();
    candidate.add_repository(repo.clone())?;
    Ok((config, repo))
}

fn configured(config_dir: &ConfigDir, name: &str) -> Result<RepositoryConfig> {
    config_dir
        .load()?
        .repository(name)
        .cloned()
        .ok_or_else(|| Error::UnknownRepository(name.to_owned()))
}

/// Opens the relay of `repo` with its credentials; SFTP servers met for
/// the first time are recorded in `config_dir`'s known-hosts file.
pub(crate) fn open_relay(
    config_dir: &ConfigDir,
    repo: &RepositoryConfig,
    runtime: tokio::runtime::Handle,
) -> Result<RelayIo> {
    connect(
        &repo.relay,
        None,
        repo.ca_file.as_deref(),
        Some(&config_dir.known_hosts_file()),
        runtime,
    )
}

/// Opens the relay at `address`, trusting `ca_file` besides the system's
/// authorities (the environment's `ESCALE_CA_FILE` wins).
#[cfg(test)]
pub(crate) fn open_relay_at(
    address: &str,
    ca_file: Option<&std::path::Path>,
    runtime: tokio::runtime::Handle,
) -> Result<RelayIo> {
    connect(address, None, ca_file, None, runtime)
}

/// Opens the relay at `address` with the credentials [`relay_secrets`]
/// finds for it (`password` first). Blocking (the keyring).
fn connect(
    address: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
    known_hosts: Option<&std::path::Path>,
    runtime: tokio::runtime::Handle,
) -> Result<RelayIo> {
    let url = RelayUrl::parse(address)?;
    let secrets = relay_secrets(&url, address, password, ca_file, known_hosts);
    Ok(RelayIo::new(relay::open_with(&url, &secrets)?, runtime))
}

/// The credentials for the relay at `address`, in the documented order:
/// `password` when given (a setup checking a relay), the environment, then
/// the keyring. `known_hosts` is Escale's own known-hosts file, unless
/// the environment names one. Blocking (the keyring).
pub(crate) fn relay_secrets(
    url: &RelayUrl,
    address: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
    known_hosts: Option<&std::path::Path>,
) -> relay::Secrets {
    let mut secrets = relay::Secrets::from_env();
    let saved;
    let password = match password {
        Some(password) => Some(password),
        None if secrets.password.is_some() || secrets.s3_keys.is_some() => None,
        None => {
            saved = crate::keyring::relay_password(address);
            saved.as_deref().map(String::as_str)
        }
    };
    if let Some(password) = password {
        match url {
            // S3 needs two keys: kept together as `ID:SECRET`.
            RelayUrl::S3 { .. } => {
                if let Some((id, secret)) = password.split_once(':') {
                    secrets.s3_keys = Some((id.to_owned(), secret.to_owned()));
                }
            }
            _ => secrets.password = Some(password.to_owned()),
        }
    }
    if secrets.ca_file.is_none() {
        secrets.ca_file = ca_file.map(std::path::Path::to_path_buf);
    }
    if secrets.known_hosts.is_none() {
        secrets.known_hosts = known_hosts.map(std::path::Path::to_path_buf);
    }
    secrets
}

pub(crate) fn read_header(relay: &RelayIo, address: &str) -> Result<Header> {
    let bytes = relay.read(&format::header_path(), None)?.ok_or_else(|| {
        Error::Format(FormatError::NotARepository(format!(
            "there is no {} at {address}; check the address, or create the repository with init",
            format::HEADER_FILE
        )))
    })?;
    Ok(Header::parse(&bytes)?)
}

/// Opens the repository's keys with the passphrase.
pub(crate) fn unlock(header: &Header, passphrase: &Passphrase, address: &str) -> Result<Codec> {
    let key = header
        .kdf
        .derive(passphrase.expose())
        .map_err(|error| match error {
            CryptoError::BadKdfParams(_) => Error::Format(FormatError::Malformed {
                what: "the repository header".into(),
                reason: error.to_string(),
            }),
            other => crypto_error(other),
        })?;
    let master = header
        .master_key
        .unwrap(&key, &header.repository)
        .map_err(|_| Error::WrongPassphrase {
            relay: address.to_owned(),
        })?;
    Ok(Codec::new(
        master.keys(&header.repository),
        header.repository,
    ))
}

/// [`unlock`], or the keys `cache` kept for this very header.
fn cached_unlock(
    header: &Header,
    passphrase: &Passphrase,
    address: &str,
    cache: Option<&KeyCache>,
) -> Result<Codec> {
    let Some(cache) = cache else {
        return unlock(header, passphrase, address);
    };
    let mut kept = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((seen, codec)) = kept.as_ref()
        && seen == header
    {
        return Ok(codec.clone());
    }
    let codec = unlock(header, passphrase, address)?;
    *kept = Some((header.clone(), codec.clone()));
    Ok(codec)
}

/// A fingerprint of every head on the relay of repository `name`: two
/// equal fingerprints mean no client published anything in between. Costs
/// one listing and two small reads per client, and no decryption, so a
/// daemon can afford it often.
pub(crate) async fn heads_fingerprint(config_dir: &ConfigDir, name: &str) -> Result<u64> {
    use std::hash::{Hash, Hasher};
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |runtime| {
        // This computer's own head changes only in its own cycles: reading
        // it would cost two requests a poll, and make the poll after each
        // cycle that wrote it run a needless cycle.
        let (repo, db) = open_state(&config_dir, &name)?;
        let me: ClientId = required_meta(&db, &name, "client", "client identifier")?;
        drop(db);
        let relay = open_relay(&config_dir, &repo, runtime)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut clients: Vec<String> = relay
            .list(&format::clients_dir())?
            .into_iter()
            .filter(|entry| entry.is_dir)
            .map(|entry| entry.name)
            .collect();
        clients.sort();
        for client in clients {
            let Ok(id) = client.parse::<ClientId>() else {
                continue;
            };
            if id == me {
                continue;
            }
            client.hash(&mut hasher);
            for slot in 0..2u8 {
                relay
                    .read(&format::head_path(&id, slot), None)?
                    .map(|bytes| bytes.to_vec())
                    .hash(&mut hasher);
            }
        }
        Ok(hasher.finish())
    })
    .await
}

/// Where a repository's state database lives.
/// The folder of repository `name`'s local state (its name is validated
/// to be a plain folder name).
pub(crate) fn state_dir(config_dir: &ConfigDir, name: &str) -> PathBuf {
    config_dir.path().join("state").join(name)
}

fn state_path(config_dir: &ConfigDir, name: &str) -> PathBuf {
    state_dir(config_dir, name).join("state.sqlite3")
}

fn local_io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::LocalIo {
        path: path.to_path_buf(),
        source,
    }
}

fn default_client_name() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|name| !name.is_empty() && name != "localhost")
        .unwrap_or_else(|| "computer".to_owned())
}

/// Creates the folder and the state, and announces this client with its
/// first head.
fn set_up_locally(
    config_dir: &ConfigDir,
    repo: &RepositoryConfig,
    new: &NewRepository,
    relay: RelayIo,
    codec: Codec,
) -> Result<()> {
    std::fs::create_dir_all(&repo.folder).map_err(local_io(&repo.folder))?;
    let db_path = state_path(config_dir, &repo.name);
    let db_dir = db_path.parent().unwrap_or(config_dir.path());
    // Leftovers of an earlier repository with the same name would mix states.
    match std::fs::remove_dir_all(db_dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(local_io(db_dir)(error));
        }
        _ => {}
    }
    std::fs::create_dir_all(db_dir).map_err(local_io(db_dir))?;
    let db = StateDb::open(&db_path)?;
    let me = ClientId::random();
    let name = new.client_name.clone().unwrap_or_else(default_client_name);
    db.set_meta("repository", &codec.repository().to_string())?;
    db.set_meta("client", &me.to_string())?;
    db.set_meta("name", &name)?;
    let mut session = Session {
        relay,
        codec,
        me,
        name,
        folder: repo.folder.clone(),
        work: WorkFolder::new(&repo.folder),
        db,
        report: SyncReport::default(),
        heads: HashMap::new(),
        own_head: None,
        settings_inside: None,
        stop: Arc::default(),
        filter: crate::filter::Filter::defaults(),
        settings: repo.clone(),
        events: crate::events::Events::new(&repo.name, None),
        learned: false,
        needs: Vec::new(),
    };
    session.write_head(0)
}

/// The settings and the open state database of repository `name`.
fn open_state(config_dir: &ConfigDir, name: &str) -> Result<(RepositoryConfig, StateDb)> {
    let repo = configured(config_dir, name)?;
    let db_path = state_path(config_dir, name);
    if !db_path.is_file() {
        return Err(Error::InvalidRepository {
            repository: name.to_owned(),
            reason: format!(
                "its state ({}) is missing; remove it and join the repository again",
                db_path.display()
            ),
        });
    }
    Ok((repo, StateDb::open(&db_path)?))
}

/// A value the state of repository `name` must hold since `init` or `join`.
fn required_meta<T: std::str::FromStr>(
    db: &StateDb,
    name: &str,
    key: &str,
    what: &str,
) -> Result<T> {
    db.meta(key)?
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Error::InvalidRepository {
            repository: name.to_owned(),
            reason: format!("its state has no {what}; remove it and join the repository again"),
        })
}

/// The identifier of repository `name` as recorded in its local state.
pub(crate) fn repository_id(config_dir: &ConfigDir, name: &str) -> Result<RepositoryId> {
    let (_, db) = open_state(config_dir, name)?;
    required_meta(&db, name, "repository", "repository identifier")
}

/// Opens everything a sync cycle needs.
pub(crate) fn open_session(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: &Passphrase,
    runtime: tokio::runtime::Handle,
    keys: Option<&KeyCache>,
) -> Result<Session> {
    let (repo, db) = open_state(config_dir, name)?;
    let repository: RepositoryId = required_meta(&db, name, "repository", "repository identifier")?;
    let me: ClientId = required_meta(&db, name, "client", "client identifier")?;
    let client_name = db.meta("name")?.unwrap_or_else(default_client_name);
    let relay = open_relay(config_dir, &repo, runtime)?;
    let header = read_header(&relay, &repo.relay)?;
    if header.repository != repository {
        return Err(Error::DifferentRepository {
            repository: name.to_owned(),
            relay: repo.relay.clone(),
        });
    }
    let codec = cached_unlock(&header, passphrase, &repo.relay, keys)?;
    if !repo.folder.is_dir() {
        return Err(Error::LocalIo {
            path: repo.folder.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the synced folder is missing (is the drive connected?)",
            ),
        });
    }
    Ok(Session {
        relay,
        codec,
        me,
        name: client_name,
        settings_inside: settings_inside(&repo.folder, config_dir.path()),
        stop: Arc::default(),
        filter: crate::filter::Filter::load(&repo).0,
        work: WorkFolder::new(&repo.folder),
        folder: repo.folder.clone(),
        events: crate::events::Events::new(&repo.name, None),
        learned: false,
        needs: Vec::new(),
        settings: repo,
        db,
        report: SyncReport::default(),
        heads: HashMap::new(),
        own_head: None,
    })
}

/// The state of one repository, for `escale status`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RepositoryStatus {
    /// The repository's local name.
    pub name: String,
    /// The synced folder.
    pub folder: PathBuf,
    /// The relay address.
    pub relay: String,
    /// `ok` when the relay could be read, `locked` without a passphrase,
    /// `paused` when the mass-deletion guard stopped syncing (why in
    /// `error`), `error` otherwise (see `error`).
    pub state: String,
    /// This computer's name in the repository.
    pub client_name: Option<String>,
    /// Local changes not yet sent: files and folders.
    pub pending_files: u64,
    /// Local changes not yet sent: bytes of changed files.
    pub pending_bytes: u64,
    /// Bytes all clients keep on the relay, from their heads.
    pub relay_bytes: Option<u64>,
    /// The other computers.
    pub clients: Vec<ClientStatus>,
    /// Why `state` is `error` or `paused`.
    pub error: Option<StatusError>,
    /// What a running Escale (`escale run` or the desktop app) is doing
    /// with it right now, if one is.
    pub live: Option<crate::live::LiveStatus>,
    /// The repository's quota on the relay, in bytes.
    pub quota: Option<u64>,
}

/// An error in a status report, as `{code, message}`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusError {
    /// Stable machine-readable code.
    pub code: String,
    /// Plain-language message.
    pub message: String,
}

/// Another computer of the repository, seen from this one.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ClientStatus {
    /// Its identifier.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// When it last wrote its head (Unix seconds).
    pub last_seen: Option<i64>,
    /// Changes sent by this computer that it has not received yet.
    pub lacks_files: u64,
    /// Bytes of those changes.
    pub lacks_bytes: u64,
}

/// The status of repository `name`. Without a passphrase, only what is
/// known locally is reported. A repository paused by the mass-deletion
/// guard is reported as `paused`, with the reason in `error`, whoever
/// paused it (a daemon in another process, say).
pub async fn status(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Option<Passphrase>,
) -> Result<RepositoryStatus> {
    let mut report = status_unpaused(config_dir, name, passphrase).await?;
    let config = config_dir.clone();
    let repository = name.to_owned();
    let pause = blocking(move |_| {
        // No state yet, or unreadable: the status above says so already.
        let Ok((repo, db)) = open_state(&config, &repository) else {
            return Ok(None);
        };
        Ok(guard::recorded_pause(&db)?.map(|pause| pause.error(&repo)))
    })
    .await?;
    // A failure reaching the relay is more urgent than the pause, which
    // stays recorded until it is dealt with.
    if let Some(error) = pause
        && report.state != "error"
    {
        report.state = "paused".into();
        report.error = Some(StatusError {
            code: error.code().into(),
            message: error.to_string(),
        });
    }
    Ok(report)
}

/// [`status`] before the pause is looked at.
async fn status_unpaused(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Option<Passphrase>,
) -> Result<RepositoryStatus> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |runtime| {
        let repo = configured(&config_dir, &name)?;
        let mut report = RepositoryStatus {
            name: repo.name.clone(),
            folder: repo.folder.clone(),
            relay: repo.relay.clone(),
            state: "locked".into(),
            client_name: None,
            pending_files: 0,
            pending_bytes: 0,
            relay_bytes: None,
            clients: Vec::new(),
            error: None,
            live: crate::live::read(&config_dir, &name),
            quota: repo.quota.map(|quota| quota.0),
        };
        let Some(passphrase) = passphrase else {
            return Ok(report);
        };
        let mut session = match open_session(&config_dir, &name, &passphrase, runtime, None) {
            Ok(session) => session,
            Err(error) => {
                report.state = "error".into();
                report.error = Some(StatusError {
                    code: error.code().into(),
                    message: error.to_string(),
                });
                return Ok(report);
            }
        };
        report.client_name = Some(session.name.clone());
        let (files, bytes) = pending_changes(&session)?;
        report.pending_files = files;
        report.pending_bytes = bytes;
        if let Err(error) = session.read_heads() {
            report.state = "error".into();
            report.error = Some(StatusError {
                code: error.code().into(),
                message: error.to_string(),
            });
            return Ok(report);
        }
        report.state = "ok".into();
        let peers = session.db.peers()?;
        let mut relay_bytes = session.own_head.as_ref().map_or(0, |h| h.stored_bytes);
        for (client, head) in &session.heads {
            relay_bytes += head.as_ref().map_or(0, |h| h.stored_bytes);
            let acked = head
                .as_ref()
                .and_then(|h| h.acks.get(&session.me).copied())
                .unwrap_or(0);
            let (lacks_files, lacks_bytes) = session.db.own_batches_after(acked)?;
            report.clients.push(ClientStatus {
                id: client.to_string(),
                name: peers
                    .get(client)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                last_seen: head.as_ref().map(|h| h.updated),
                lacks_files,
                lacks_bytes,
            });
        }
        report.clients.sort_by(|a, b| a.name.cmp(&b.name));
        report.relay_bytes = Some(relay_bytes);
        Ok(report)
    })
    .await
}

/// Local changes not yet sent, from metadata alone (nothing is read): the
/// same comparison sending makes.
fn pending_changes(session: &Session) -> Result<(u64, u64)> {
    let view = session.local_view()?;
    let changed = view
        .scan
        .entries
        .iter()
        .filter(|entry| differs(view.known.get(&entry.path), entry));
    let (mut files, bytes) = changed.fold((0u64, 0u64), |(files, bytes), entry| {
        (files + 1, bytes + entry.size)
    });
    files += session.gone(&view).len() as u64;
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_heads_fingerprint_changes_with_the_other_computers_heads_only() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = tmp.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let address = format!("file://{}", relay.display());
        let passphrase = || Passphrase::new("fingerprint passphrase".into());
        let a = ConfigDir::new(tmp.path().join("a"));
        let b = ConfigDir::new(tmp.path().join("b"));
        let a_folder = tmp.path().join("a-folder");
        init(
            &a,
            NewRepository::new("docs", &a_folder, &address),
            passphrase(),
        )
        .await
        .unwrap();
        let b_folder = tmp.path().join("b-folder");
        join(
            &b,
            NewRepository::new("docs", &b_folder, &address),
            passphrase(),
        )
        .await
        .unwrap();
        sync(&b, "docs", passphrase()).await.unwrap();

        // A's own publication leaves A's fingerprint as it was.
        let before = heads_fingerprint(&a, "docs").await.unwrap();
        std::fs::write(a_folder.join("note.txt"), "from A").unwrap();
        assert_eq!(
            sync(&a, "docs", passphrase()).await.unwrap().changes_sent,
            1
        );
        assert_eq!(heads_fingerprint(&a, "docs").await.unwrap(), before);

        // B's publication changes it: A's poll must see it.
        std::fs::write(b_folder.join("reply.txt"), "from B").unwrap();
        assert_eq!(
            sync(&b, "docs", passphrase()).await.unwrap().changes_sent,
            1
        );
        assert_ne!(heads_fingerprint(&a, "docs").await.unwrap(), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifying_a_passphrase_creates_nothing_and_tells_wrong_from_right() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = tmp.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let address = format!("file://{}", relay.display());
        let first = ConfigDir::new(tmp.path().join("first"));
        let access = crate::RelayAccess::default();
        let checker = ConfigDir::new(tmp.path().join("checker"));

        let empty = verify_passphrase(&checker, &address, &access, Passphrase::new("x".into()))
            .await
            .unwrap_err();
        assert_eq!(empty.code(), "relay_data_invalid", "{empty}");

        init(
            &first,
            NewRepository::new("docs", tmp.path().join("folder"), &address),
            Passphrase::new("the right one".into()),
        )
        .await
        .unwrap();
        verify_passphrase(
            &checker,
            &address,
            &access,
            Passphrase::new("the right one".into()),
        )
        .await
        .unwrap();
        let wrong = verify_passphrase(
            &checker,
            &address,
            &access,
            Passphrase::new("a wrong one".into()),
        )
        .await
        .unwrap_err();
        assert_eq!(wrong.code(), "wrong_passphrase", "{wrong}");
        assert!(
            !checker.path().exists(),
            "checking created the settings folder"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removing_a_repository_keeps_the_folder_and_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let relay = tmp.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let config_dir = ConfigDir::new(tmp.path().join("config"));
        let folder = tmp.path().join("folder");
        init(
            &config_dir,
            NewRepository::new("docs", &folder, format!("file://{}", relay.display())),
            Passphrase::new("removal test".into()),
        )
        .await
        .unwrap();
        std::fs::write(folder.join("keep.txt"), "mine").unwrap();
        sync(&config_dir, "docs", Passphrase::new("removal test".into()))
            .await
            .unwrap();

        let removed = remove(&config_dir, "docs").await.unwrap();
        assert_eq!(removed.name, "docs");
        assert!(config_dir.load().unwrap().repositories.is_empty());
        assert!(!state_dir(&config_dir, "docs").exists());
        assert_eq!(
            std::fs::read_to_string(folder.join("keep.txt")).unwrap(),
            "mine"
        );
        assert!(
            std::fs::read_dir(&relay).unwrap().count() > 0,
            "the relay was emptied"
        );
        let again = remove(&config_dir, "docs").await.unwrap_err();
        assert_eq!(again.code(), "invalid_input", "{again}");
    }
}
