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

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
}

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
        if !self.folder.is_absolute() {
            return Err(invalid("the local folder must be a full path"));
        }
        if self.relay.trim().is_empty() {
            return Err(invalid("the relay address is empty"));
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
}
