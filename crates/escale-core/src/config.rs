//! Settings shared by the command line and the desktop app.
//!
//! Both front ends read and write the same `config.toml` inside one
//! configuration folder, so a repository added in the app is seen by
//! `escale status` and the other way round. The file holds no secrets:
//! passphrases and relay passwords live in the OS keyring or come from the
//! environment. Defaults are defined once, here, by `serde(default)`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units::{ByteSize, Span};

/// The format version of `config.toml` this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// The name of the settings file inside the configuration folder.
pub const CONFIG_FILE_NAME: &str = "config.toml";

/// The environment variable that overrides the configuration folder.
const CONFIG_DIR_ENV: &str = "ESCALE_CONFIG_DIR";

/// The folder that holds Escale's settings (and, per repository, its state
/// database and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir {
    path: PathBuf,
}

impl ConfigDir {
    /// Uses `path` as the configuration folder. It need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ConfigDir { path: path.into() }
    }

    /// Finds the configuration folder the way every Escale front end does:
    /// `explicit` if given (the `--config-dir` option), else the
    /// `ESCALE_CONFIG_DIR` environment variable if set and not empty, else the
    /// platform's per-user settings folder (`~/.config/escale` on Linux,
    /// `~/Library/Application Support/escale` on macOS, `%APPDATA%\escale`
    /// on Windows).
    pub fn locate(explicit: Option<PathBuf>) -> Result<Self> {
        let from_env = std::env::var_os(CONFIG_DIR_ENV)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let path = explicit
            .or(from_env)
            .or_else(|| dirs::config_dir().map(|base| base.join("escale")))
            .ok_or(Error::NoConfigDir)?;
        Ok(ConfigDir::new(path))
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings file inside the folder.
    pub fn config_file(&self) -> PathBuf {
        self.path.join(CONFIG_FILE_NAME)
    }

    /// Escale's own known-hosts file: the SFTP servers trusted on first
    /// use are recorded there (`ESCALE_KNOWN_HOSTS` names another).
    pub fn known_hosts_file(&self) -> PathBuf {
        self.path.join("known_hosts")
    }

    /// Reads the settings. A missing file (first start) reads as an empty
    /// configuration; anything else that is wrong is an error naming the file.
    pub fn load(&self) -> Result<Config> {
        let file = self.config_file();
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(Error::ConfigIo {
                    action: "read",
                    path: file,
                    source,
                });
            }
        };
        Config::parse(&text).map_err(|problem| problem.at(file))
    }

    /// Writes the settings atomically: a crash leaves either the old or the
    /// new file, never a half-written one.
    pub fn save(&self, config: &Config) -> Result<()> {
        config.validate()?;
        let file = self.config_file();
        let io_error = |source| Error::ConfigIo {
            action: "write",
            path: file.clone(),
            source,
        };
        fs::create_dir_all(&self.path).map_err(io_error)?;
        let text = config.to_toml();
        let temp = self.path.join(format!(".{CONFIG_FILE_NAME}.tmp"));
        let mut out = fs::File::create(&temp).map_err(io_error)?;
        out.write_all(text.as_bytes()).map_err(io_error)?;
        out.sync_all().map_err(io_error)?;
        drop(out);
        fs::rename(&temp, &file).map_err(io_error)
    }

    /// Changes the settings of repository `name` with `change`, checks the
    /// result, and saves it; the file is left as it was when the change is
    /// refused. Its name, folder and relay cannot change this way.
    pub fn update_repository(
        &self,
        name: &str,
        change: impl FnOnce(&mut RepositoryConfig),
    ) -> Result<RepositoryConfig> {
        let mut config = self.load()?;
        let repo = config
            .repositories
            .iter_mut()
            .find(|repo| repo.name == name)
            .ok_or_else(|| Error::UnknownRepository(name.to_owned()))?;
        let (folder, relay) = (repo.folder.clone(), repo.relay.clone());
        change(repo);
        repo.name = name.to_owned();
        repo.folder = folder;
        repo.relay = relay;
        let updated = repo.clone();
        self.save(&config)?;
        Ok(updated)
    }
}

/// Everything in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file; see [`CONFIG_VERSION`].
    pub version: u32,
    /// The repositories this computer syncs, in the order they were added.
    #[serde(default, rename = "repository")]
    pub repositories: Vec<RepositoryConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            repositories: Vec::new(),
        }
    }
}

impl Config {
    /// Adds a repository after checking it against the rules of [`Config::validate`].
    pub fn add_repository(&mut self, repository: RepositoryConfig) -> Result<()> {
        let mut candidate = self.repositories.clone();
        candidate.push(repository);
        let checked = Config {
            version: self.version,
            repositories: candidate,
        };
        checked.validate()?;
        *self = checked;
        Ok(())
    }

    /// Finds a repository by name.
    pub fn repository(&self, name: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|repo| repo.name == name)
    }

    /// Checks every repository and that names are unique.
    pub fn validate(&self) -> Result<()> {
        for (index, repo) in self.repositories.iter().enumerate() {
            repo.validate()?;
            if self.repositories[..index]
                .iter()
                .any(|other| other.name == repo.name)
            {
                return Err(Error::InvalidRepository {
                    repository: repo.name.clone(),
                    reason: "another repository already has this name".into(),
                });
            }
        }
        Ok(())
    }

    fn parse(text: &str) -> Result<Config, ParseProblem> {
        // Read the version on its own first: a file from a newer Escale must
        // say "newer version", not fail on a field this build does not know.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: Option<u32>,
        }
        let version = toml::from_str::<VersionOnly>(text)
            .map_err(|err| ParseProblem::syntax(text, &err))?
            .version
            .ok_or_else(|| ParseProblem::Syntax("the `version` field is missing".into()))?;
        if version != CONFIG_VERSION {
            return Err(ParseProblem::Version(version));
        }
        let config: Config =
            toml::from_str(text).map_err(|err| ParseProblem::syntax(text, &err))?;
        config.validate().map_err(ParseProblem::Invalid)?;
        Ok(config)
    }

    fn to_toml(&self) -> String {
        let body =
            toml::to_string_pretty(self).expect("the configuration types always serialize to TOML");
        format!(
            "# Escale settings, shared by the desktop app and the `escale` command.\n\
             # Secrets are never stored here: see the OS keyring.\n\n{body}"
        )
    }
}

/// Why `config.toml` could not be understood, before the file name is known.
enum ParseProblem {
    Syntax(String),
    Version(u32),
    Invalid(Error),
}

impl ParseProblem {
    /// Condenses a TOML error to one line: where, then what. The crate's own
    /// rendering spans several lines with a source excerpt, which breaks the
    /// one-line `error:` contract of the command line.
    fn syntax(text: &str, error: &toml::de::Error) -> Self {
        let message = error.message().trim_end();
        let Some(span) = error.span() else {
            return ParseProblem::Syntax(message.to_owned());
        };
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
        ParseProblem::Syntax(format!("line {line}, column {column}: {message}"))
    }

    fn at(self, path: PathBuf) -> Error {
        match self {
            ParseProblem::Syntax(reason) => Error::ConfigSyntax { path, reason },
            ParseProblem::Version(found) => Error::ConfigVersion {
                path,
                found,
                supported: CONFIG_VERSION,
            },
            ParseProblem::Invalid(error) => error,
        }
    }
}

/// One synced folder: which local folder goes through which relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A short name chosen by the user, unique on this computer.
    pub name: String,
    /// The local folder kept in sync (absolute path).
    pub folder: PathBuf,
    /// Where the relay is, as a URL such as `file:///mnt/share/escale` or
    /// `webdavs://cloud.example.com/remote.php/dav/files/ana/escale`. Never
    /// holds a password.
    pub relay: String,
    /// A PEM file of certificate authorities to trust for this relay
    /// besides the system's: a server with a private certificate, or a
    /// company proxy that inspects secure connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Which way changes travel by default (see [`AccessRule`] for
    /// exceptions by path).
    #[serde(default, skip_serializing_if = "is_default")]
    pub mode: SyncMode,
    /// The most this repository may store on the relay, all computers
    /// together. A computer that would exceed it waits until the others
    /// have caught up ("waiting for relay space"). No limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<ByteSize>,
    /// When not empty, only paths matching one of these patterns
    /// (gitignore syntax) are synced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Paths matching these patterns (gitignore syntax) stay on this
    /// computer, in addition to the built-in exclusions and `.escaleignore`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Per-path exceptions to [`mode`](Self::mode); the last matching rule wins.
    #[serde(default, rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AccessRule>,
    /// The poll interval right after activity (default 2 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_min: Option<Span>,
    /// The poll interval reached when idle (default 90 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_max: Option<Span>,
    /// A computer not seen for this long stops holding data on the relay;
    /// when it comes back, it asks again for what it missed.
    #[serde(
        default = "default_absent_after",
        skip_serializing_if = "is_default_absent_after"
    )]
    pub absent_after: Span,
    /// How long versions replaced or deleted by sync are kept in the
    /// work folder.
    #[serde(
        default = "default_keep_versions",
        skip_serializing_if = "is_default_keep_versions"
    )]
    pub keep_versions: Span,
    /// The mass-deletion guard: when a scan finds at least this share of
    /// the synced files gone (and at least
    /// [`mass_deletion_min_files`](Self::mass_deletion_min_files) files), the
    /// repository pauses instead of sending the deletions.
    #[serde(
        default = "default_mass_deletion_percent",
        skip_serializing_if = "is_default_mass_deletion_percent"
    )]
    pub mass_deletion_percent: u8,
    /// See [`mass_deletion_percent`](Self::mass_deletion_percent).
    #[serde(
        default = "default_mass_deletion_min_files",
        skip_serializing_if = "is_default_mass_deletion_min_files"
    )]
    pub mass_deletion_min_files: u64,
    /// How many object transfers (uploads, and chunk downloads from a
    /// relay that reads ranges) this computer keeps in flight at once for
    /// this repository, from [`MIN_TRANSFERS`] to [`MAX_TRANSFERS`]. Each upload
    /// in flight holds one packed object (up to 8 MiB) in memory.
    #[serde(
        default = "default_transfers",
        skip_serializing_if = "is_default_transfers"
    )]
    pub transfers: u8,
}

/// Which way changes travel for a repository or a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Changes made here are sent, changes made elsewhere are received.
    #[default]
    SendReceive,
    /// Changes made here are sent; changes made elsewhere are not applied.
    SendOnly,
    /// Changes made elsewhere are received; changes made here are not sent
    /// (and a local edit is moved to the versions folder when a newer
    /// version arrives).
    ReceiveOnly,
}

/// What a per-path rule does to the paths it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleMode {
    /// Send and receive.
    SendReceive,
    /// Send only.
    SendOnly,
    /// Receive only.
    ReceiveOnly,
    /// Neither: the paths stay on this computer.
    Ignore,
}

/// A per-path exception: paths matching `path` (gitignore syntax) follow
/// `mode` instead of the repository's mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// The pattern, such as `Scans/**` or `*.pdf`.
    pub path: String,
    /// What happens to the matching paths.
    pub mode: RuleMode,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

const DEFAULT_ABSENT_AFTER: Duration = Duration::from_secs(14 * 86_400);
const DEFAULT_KEEP_VERSIONS: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_MASS_DELETION_PERCENT: u8 = 50;
const DEFAULT_MASS_DELETION_MIN_FILES: u64 = 10;

/// The default of [`RepositoryConfig::transfers`]: enough to hide most of
/// a remote relay's round-trip time without loading a small server.
pub const DEFAULT_TRANSFERS: u8 = 4;
/// The fewest transfers in flight: one at a time.
pub const MIN_TRANSFERS: u8 = 1;
/// The most transfers in flight: beyond this, memory (one object each)
/// grows while servers rarely answer faster.
pub const MAX_TRANSFERS: u8 = 16;

fn default_transfers() -> u8 {
    DEFAULT_TRANSFERS
}
fn is_default_transfers(value: &u8) -> bool {
    *value == DEFAULT_TRANSFERS
}
fn default_absent_after() -> Span {
    Span(DEFAULT_ABSENT_AFTER)
}
fn is_default_absent_after(value: &Span) -> bool {
    value.0 == DEFAULT_ABSENT_AFTER
}
fn default_keep_versions() -> Span {
    Span(DEFAULT_KEEP_VERSIONS)
}
fn is_default_keep_versions(value: &Span) -> bool {
    value.0 == DEFAULT_KEEP_VERSIONS
}
fn default_mass_deletion_percent() -> u8 {
    DEFAULT_MASS_DELETION_PERCENT
}
fn is_default_mass_deletion_percent(value: &u8) -> bool {
    *value == DEFAULT_MASS_DELETION_PERCENT
}
fn default_mass_deletion_min_files() -> u64 {
    DEFAULT_MASS_DELETION_MIN_FILES
}
fn is_default_mass_deletion_min_files(value: &u64) -> bool {
    *value == DEFAULT_MASS_DELETION_MIN_FILES
}

/// The smallest quota accepted: room for two of the largest chunks.
pub const MIN_QUOTA: u64 = 8_000_000;

/// The longest repository name accepted, in characters.
const MAX_NAME_CHARS: usize = 64;

impl RepositoryConfig {
    /// A repository with default options.
    pub fn new(
        name: impl Into<String>,
        folder: impl Into<PathBuf>,
        relay: impl Into<String>,
    ) -> Self {
        RepositoryConfig {
            name: name.into(),
            folder: folder.into(),
            relay: relay.into(),
            ca_file: None,
            mode: SyncMode::default(),
            quota: None,
            include: Vec::new(),
            exclude: Vec::new(),
            rules: Vec::new(),
            poll_min: None,
            poll_max: None,
            absent_after: default_absent_after(),
            keep_versions: default_keep_versions(),
            mass_deletion_percent: DEFAULT_MASS_DELETION_PERCENT,
            mass_deletion_min_files: DEFAULT_MASS_DELETION_MIN_FILES,
            transfers: DEFAULT_TRANSFERS,
        }
    }

    /// Checks the rules every repository must follow.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Error::InvalidRepository {
            repository: self.name.clone(),
            reason: reason.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("the name is empty"));
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid("the name is longer than 64 characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(invalid("the name contains control characters"));
        }
        if self.name.trim() != self.name {
            return Err(invalid("the name starts or ends with a space"));
        }
        // The name is also the name of its state folder, on every system.
        if self
            .name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*'))
            || self.name == "."
            || self.name == ".."
            || self.name.ends_with('.')
        {
            return Err(invalid(
                "the name cannot contain / \\ < > : \" | ? * or end with a dot",
            ));
        }
        if !self.folder.is_absolute() {
            return Err(invalid("the local folder must be a full path"));
        }
        if self.relay.trim().is_empty() {
            return Err(invalid("the relay address is empty"));
        }
        if self.mass_deletion_percent == 0 || self.mass_deletion_percent > 100 {
            return Err(invalid("mass_deletion_percent must be between 1 and 100"));
        }
        if !(MIN_TRANSFERS..=MAX_TRANSFERS).contains(&self.transfers) {
            return Err(invalid(&format!(
                "transfers must be between {MIN_TRANSFERS} and {MAX_TRANSFERS} (it is {})",
                self.transfers
            )));
        }
        if let (Some(min), Some(max)) = (self.poll_min, self.poll_max)
            && min > max
        {
            return Err(invalid("poll_min is longer than poll_max"));
        }
        if self
            .poll_min
            .is_some_and(|min| min.0 < Duration::from_millis(100))
        {
            return Err(invalid("poll_min must be at least 100ms"));
        }
        if let Some(quota) = self.quota
            && quota.0 < MIN_QUOTA
        {
            return Err(invalid(
                "the quota must be at least 8 MB: a single piece of a file can take 4 MiB",
            ));
        }
        for pattern in self
            .include
            .iter()
            .chain(&self.exclude)
            .chain(self.rules.iter().map(|r| &r.path))
        {
            if let Err(error) = crate::filter::check_pattern(pattern) {
                return Err(invalid(&format!(
                    "the pattern {pattern:?} is not valid: {error}"
                )));
            }
        }
        if relay_has_password(&self.relay) {
            return Err(invalid(
                "the relay address contains a password; passwords are kept in \
                 the system keyring or given by ESCALE_RELAY_PASSWORD, never in settings",
            ));
        }
        Ok(())
    }
}

/// Whether a URL carries `user:password@` credentials.
fn relay_has_password(relay: &str) -> bool {
    let Some((_, rest)) = relay.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(user_info, _)| user_info.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn sample() -> RepositoryConfig {
        RepositoryConfig::new("reports", "/srv/reports", "file:///mnt/relay")
    }

    #[test]
    fn missing_file_reads_as_empty_config() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("not-yet"));
        assert_eq!(dir.load().unwrap(), Config::default());
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        let mut config = Config::default();
        config.add_repository(sample()).unwrap();
        dir.save(&config).unwrap();
        assert_eq!(dir.load().unwrap(), config);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [CONFIG_FILE_NAME]);
    }

    #[test]
    fn an_update_is_checked_and_cannot_move_the_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        let mut config = Config::default();
        config.add_repository(sample()).unwrap();
        dir.save(&config).unwrap();

        let updated = dir
            .update_repository("reports", |repo| {
                repo.exclude = vec!["*.tmp".into()];
                repo.relay = "file:///elsewhere".into();
            })
            .unwrap();
        assert_eq!(updated.exclude, ["*.tmp"]);
        assert_eq!(updated.relay, "file:///mnt/relay");
        assert_eq!(dir.load().unwrap().repositories[0], updated);

        let refused = dir
            .update_repository("reports", |repo| repo.transfers = 0)
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
        assert_eq!(dir.load().unwrap().repositories[0], updated);
        let unknown = dir.update_repository("other", |_| {}).unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn newer_version_is_reported_as_such_even_with_unknown_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        fs::write(dir.config_file(), "version = 2\nshiny_new_option = true\n").unwrap();
        let err = dir.load().unwrap_err();
        assert!(
            matches!(err, Error::ConfigVersion { found: 2, .. }),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn syntax_error_names_the_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        fs::write(dir.config_file(), "version = 1\n[[repository]]\nname = \n").unwrap();
        let text = dir.load().unwrap_err().to_string();
        assert!(text.contains("config.toml"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        fs::write(
            dir.config_file(),
            "version = 1\n[[repository]]\nname = \"a\"\nfolder = \"/a\"\nrelay = \"file:///r\"\nfoldr = \"/b\"\n",
        )
        .unwrap();
        let text = dir.load().unwrap_err().to_string();
        assert!(text.contains("foldr"), "{text}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut config = Config::default();
        config.add_repository(sample()).unwrap();
        let err = config.add_repository(sample()).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(
            config.repositories.len(),
            1,
            "a refused add changes nothing"
        );
    }

    #[test]
    fn repository_rules() {
        let cases = [
            RepositoryConfig::new("", "/a", "file:///r"),
            RepositoryConfig::new(" padded", "/a", "file:///r"),
            RepositoryConfig::new("x".repeat(65), "/a", "file:///r"),
            RepositoryConfig::new("tab\there", "/a", "file:///r"),
            RepositoryConfig::new("../escape", "/a", "file:///r"),
            RepositoryConfig::new("a/b", "/a", "file:///r"),
            RepositoryConfig::new("..", "/a", "file:///r"),
            RepositoryConfig::new("what?", "/a", "file:///r"),
            RepositoryConfig::new("rel", "relative/path", "file:///r"),
            RepositoryConfig::new("norelay", "/a", " "),
            RepositoryConfig::new("secret", "/a", "ftp://ana:hunter2@ftp.example.com/x"),
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?} should be refused");
        }
        assert!(
            RepositoryConfig::new("été 2026", "/a", "ftp://ana@ftp.example.com/x")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn transfers_outside_one_to_sixteen_are_refused_with_the_bounds() {
        let mut repo = RepositoryConfig::new("t", "/a", "file:///r");
        assert_eq!(repo.transfers, 4, "the default");
        for accepted in [1, 16] {
            repo.transfers = accepted;
            assert!(repo.validate().is_ok(), "{accepted} is accepted");
        }
        for refused in [0, 17] {
            repo.transfers = refused;
            let message = repo.validate().unwrap_err().to_string();
            assert!(
                message.contains("transfers must be between 1 and 16"),
                "{message}"
            );
        }
        let parsed = Config::parse(
            "version = 1\n[[repository]]\nname = \"t\"\nfolder = \"/a\"\n\
             relay = \"file:///r\"\ntransfers = 0\n",
        );
        assert!(
            parsed.is_err(),
            "a settings file with transfers = 0 is refused"
        );
    }

    #[test]
    fn password_in_relay_url_is_detected_only_in_the_authority() {
        assert!(relay_has_password("webdavs://u:p@host/path"));
        assert!(!relay_has_password("webdavs://u@host/path"));
        assert!(!relay_has_password("webdavs://host/a:b@c"));
        assert!(!relay_has_password("rclone:remote:path"));
    }

    #[test]
    fn explicit_dir_wins() {
        let dir = ConfigDir::locate(Some("/tmp/escale-explicit".into())).unwrap();
        assert_eq!(dir.path(), Path::new("/tmp/escale-explicit"));
    }

    /// The reference of the settings file, whose examples must stay valid.
    const CONFIG_DOC: &str = include_str!("../../../docs/config.md");

    /// The ```toml blocks of `CONFIG_DOC`, in order.
    fn toml_blocks() -> Vec<&'static str> {
        CONFIG_DOC
            .split("```toml\n")
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap())
            .collect()
    }

    fn parse_doc(text: &str) -> Config {
        Config::parse(text)
            .unwrap_or_else(|problem| panic!("{}", problem.at("docs/config.md".into())))
    }

    #[test]
    fn the_documented_example_is_a_valid_config() {
        let blocks = toml_blocks();
        let example = blocks
            .first()
            .expect("docs/config.md has a ```toml example");
        let config = parse_doc(example);
        assert_eq!(config.version, CONFIG_VERSION);
        let [reports, scans] = config.repositories.as_slice() else {
            panic!("the example has two repositories: {config:?}");
        };
        assert_eq!(reports.name, "Reports");
        assert_eq!(reports.quota, Some(ByteSize(2_000_000_000)));
        assert_eq!(reports.include.len(), 3);
        assert_eq!(reports.exclude, ["Finance/drafts/", "*.log"]);
        assert_eq!(
            reports.rules,
            [
                AccessRule {
                    path: "Sales/".into(),
                    mode: RuleMode::SendOnly
                },
                AccessRule {
                    path: "Sales/archive/".into(),
                    mode: RuleMode::Ignore
                },
            ]
        );
        assert_eq!(reports.poll_min, Some(Span(Duration::from_secs(2))));
        assert_eq!(reports.poll_max, Some(Span(Duration::from_secs(90))));
        // The example says it shows the defaults: it must not lie.
        let defaults = RepositoryConfig::new("", "/", "");
        assert_eq!(reports.mode, defaults.mode);
        assert_eq!(reports.absent_after, defaults.absent_after);
        assert_eq!(reports.keep_versions, defaults.keep_versions);
        assert_eq!(
            reports.mass_deletion_percent,
            defaults.mass_deletion_percent
        );
        assert_eq!(
            reports.mass_deletion_min_files,
            defaults.mass_deletion_min_files
        );
        assert_eq!(reports.transfers, defaults.transfers);
        let mut expected = RepositoryConfig::new(
            "Scans",
            "/srv/scans",
            "webdavs://cloud.example.com/remote.php/dav/files/ana/escale-scans",
        );
        expected.mode = SyncMode::ReceiveOnly;
        expected.ca_file = Some("/etc/ssl/company-proxy-ca.pem".into());
        assert_eq!(*scans, expected);
    }

    #[test]
    fn the_documented_rule_examples_are_valid() {
        let blocks = toml_blocks();
        assert!(blocks.len() > 1, "docs/config.md shows rules on their own");
        for fragment in &blocks[1..] {
            let text = format!(
                "version = 1\n[[repository]]\nname = \"r\"\nfolder = \"/r\"\n\
                 relay = \"file:///relay\"\n{fragment}"
            );
            let config = parse_doc(&text);
            assert!(!config.repositories[0].rules.is_empty(), "{fragment}");
        }
    }
}
