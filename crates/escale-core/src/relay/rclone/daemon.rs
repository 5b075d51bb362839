//! The `rclone rcd` process behind an rclone relay.
//!
//! Each [`Supervisor`] runs at most one rclone remote-control server at a
//! time, started at the first call, listening on 127.0.0.1 at a port the
//! kernel picks (`--rc-addr 127.0.0.1:0`; rclone logs the port it got, so
//! there is no window in which another program could take a port chosen
//! in advance) and guarded by a random user name and password that only
//! this process knows. The password travels in the child's environment,
//! not on its command line, where every local user could read it.
//!
//! The process never outlives Escale:
//!
//! - dropping the [`Daemon`] kills it and waits for it;
//! - on Unix a watchdog (`/bin/sh`, reading a pipe from Escale) kills it
//!   when that pipe closes, which the kernel does however Escale ends —
//!   a crash, `SIGKILL`, or `std::process::exit` skipping destructors.
//!   rclone itself does not watch its standard input, hence the helper;
//! - both run in their own process group, so that a Ctrl-C in the
//!   terminal reaches only Escale, which then stops them in order instead
//!   of losing rclone in the middle of a cycle.
//!
//! A daemon found dead (rclone crashed or was killed) is replaced by a new
//! one at the next call; the relay decides when that is worth a retry.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::{RelayError, RelayErrorKind};

/// Where people get rclone; named in every "install rclone" message.
pub(crate) const INSTALL_URL: &str = "https://rclone.org/install/";

/// The oldest rclone Escale runs: the oldest tested (Debian 12's). The
/// remote-control calls used exist in older versions too, but their
/// behaviour there was never checked.
pub(crate) const MIN_VERSION: (u64, u64) = (1, 60);

/// How long rclone may take to start listening. It reads its
/// configuration and nothing else before that, so this only matters on a
/// very slow or overloaded computer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many of rclone's last log lines are kept to explain a failure.
const LOG_LINES: usize = 20;

/// What rclone writes once it listens, followed by its address.
const LISTENING: &str = "Serving remote control on ";

/// How long a connection failure may precede the process's exit becoming
/// visible: the kernel closes a dying process's sockets before it reports
/// the process as ended.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Kills rclone (`$1`) once standard input reaches its end, which happens
/// when Escale closes its end of the pipe or ends in any way. Only Escale
/// holds the pipe's other end: Rust opens pipes close-on-exec, so no
/// other child inherits it and keeps it open.
#[cfg(unix)]
const WATCHDOG_SCRIPT: &str = r#"while read -r _; do :; done; kill "$1" 2>/dev/null"#;

/// Variables of the user's environment that would change how the
/// remote-control server listens or logs, or make every operation
/// silently do nothing (`--dry-run`) or something else (`--backup-dir`).
/// They are removed from rclone's environment; everything else (remotes
/// defined by variables, backend options, `RCLONE_CONFIG_PASS`) is the
/// user's rclone setup and is kept.
const SCRUBBED_VARIABLES: &[&str] = &[
    "RCLONE_ASK_PASSWORD",
    "RCLONE_BACKUP_DIR",
    "RCLONE_COMPARE_DEST",
    "RCLONE_COPY_DEST",
    "RCLONE_DRY_RUN",
    "RCLONE_IMMUTABLE",
    "RCLONE_INTERACTIVE",
    "RCLONE_LOG_FILE",
    "RCLONE_LOG_FORMAT",
    "RCLONE_LOG_LEVEL",
    "RCLONE_MAX_DURATION",
    "RCLONE_MAX_TRANSFER",
    "RCLONE_NO_CHECK_DEST",
    "RCLONE_QUIET",
    "RCLONE_SUFFIX",
    "RCLONE_USE_JSON_LOG",
    "RCLONE_VERBOSE",
];

/// Which rclone to run, with which configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Setup {
    /// The rclone program; `rclone` found on the `PATH` when `None`.
    pub(crate) binary: Option<PathBuf>,
    /// The configuration file; when `None`, rclone's own choice (its
    /// `RCLONE_CONFIG` variable, else its default file).
    pub(crate) config: Option<PathBuf>,
}

impl Setup {
    /// The program to start.
    fn program(&self) -> &Path {
        self.binary.as_deref().unwrap_or(Path::new("rclone"))
    }

    /// How messages name the program: where it was looked for.
    fn program_words(&self) -> String {
        match &self.binary {
            Some(binary) => format!("rclone at {}", binary.display()),
            None => "the rclone program on the PATH".to_owned(),
        }
    }

    /// The error for a program that cannot be started or is too old,
    /// always saying how to get a good one.
    pub(crate) fn unusable(&self, problem: &str) -> RelayError {
        RelayError::new(
            RelayErrorKind::Unsupported,
            format!(
                "{problem}; rclone relays need rclone {}.{} or newer: install it \
                 ({INSTALL_URL}) or name its program in {}",
                MIN_VERSION.0,
                MIN_VERSION.1,
                super::RCLONE_ENV
            ),
        )
    }
}

/// One running `rclone rcd`, killed when dropped.
pub(crate) struct Daemon {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    base: String,
    /// The random user name the server requires.
    user: String,
    /// The random password the server requires. Never shown.
    password: String,
    /// The process; locked only for instants.
    child: Mutex<Child>,
    /// The watchdog that kills the process if Escale ends without
    /// dropping this; `None` once it is stopped, or where none runs.
    watchdog: Mutex<Option<Child>>,
    /// rclone's last log lines, for messages about its failures.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("base", &self.base)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Starts rclone and waits until it listens. Does not check its
    /// version: that needs a request, which the caller makes.
    async fn start(setup: &Setup) -> Result<Daemon, RelayError> {
        let user = "escale".to_owned();
        let password = hex::encode(crate::ids::random_bytes::<16>());
        let mut command = Command::new(setup.program());
        command.args([
            "rcd",
            "--rc-addr",
            "127.0.0.1:0",
            // Reads go through rclone's own HTTP server: `/[remote:path]/file`
            // with HTTP ranges.
            "--rc-serve",
            // Without it `operations/movefile` keeps the old file when the new
            // one has the same size and modification time (a head rewritten
            // within the remote's time precision) and deletes the new one.
            "--ignore-times",
            // An encrypted configuration without its password fails at once
            // instead of waiting for a prompt nobody sees.
            "--ask-password=false",
        ]);
        for (key, _) in std::env::vars_os() {
            if scrubbed(&key) {
                command.env_remove(&key);
            }
        }
        command
            .env("RCLONE_RC_USER", &user)
            .env("RCLONE_RC_PASS", &password);
        if let Some(config) = &setup.config {
            command.env("RCLONE_CONFIG", config);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|err| {
            let problem = match err.kind() {
                std::io::ErrorKind::NotFound => format!("{} was not found", setup.program_words()),
                std::io::ErrorKind::PermissionDenied => {
                    format!(
                        "{} cannot be run (permission denied)",
                        setup.program_words()
                    )
                }
                _ => format!("{} cannot be started ({err})", setup.program_words()),
            };
            setup.unusable(&problem).with_source(err)
        })?;

        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            let spawned = std::thread::Builder::new()
                .name("rclone-log".into())
                .spawn(move || read_log(stderr, address_tx, &log));
            if let Err(err) = spawned {
                stop(&mut child);
                return Err(RelayError::new(
                    RelayErrorKind::Other,
                    format!("cannot watch rclone's messages: {err}"),
                ));
            }
        }
        let address = tokio::time::timeout(START_TIMEOUT, address_rx).await;
        let base = match address {
            Ok(Ok(base)) => base,
            waited => {
                stop(&mut child);
                let tail = last_line(&log);
                if waited.is_err() {
                    return Err(RelayError::new(
                        RelayErrorKind::Timeout,
                        format!(
                            "rclone did not start within {} s{}",
                            START_TIMEOUT.as_secs(),
                            tail.map(|t| format!(" (it said: {t})")).unwrap_or_default()
                        ),
                    ));
                }
                return Err(startup_failure(setup, tail).await);
            }
        };
        #[cfg(unix)]
        let watchdog = spawn_watchdog(child.id());
        #[cfg(not(unix))]
        let watchdog = None;
        tracing::debug!(%base, pid = child.id(), "rclone started");
        Ok(Daemon {
            base,
            user,
            password,
            child: Mutex::new(child),
            watchdog: Mutex::new(watchdog),
            log,
        })
    }

    /// A request to `path` (relative to the server's root, without a
    /// leading `/`), with the server's credentials.
    pub(crate) fn request(
        &self,
        client: &opendal_reqwest::Client,
        method: opendal_reqwest::Method,
        path: &str,
    ) -> opendal_reqwest::RequestBuilder {
        client
            .request(method, format!("{}/{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
    }

    /// Whether the process still runs. Once it is found ended, its
    /// watchdog is stopped at once: the process id is free for reuse by
    /// then, and the watchdog must never signal a stranger.
    pub(crate) fn alive(&self) -> bool {
        let ended = lock(&self.child).try_wait().map_or(true, |s| s.is_some());
        if ended {
            self.stop_watchdog();
        }
        !ended
    }

    /// Whether the process ends within a short grace period: after a
    /// failed connection, tells a crash from a passing network error.
    pub(crate) async fn ended_soon(&self) -> bool {
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            if !self.alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// rclone's last log line, to explain a failure.
    pub(crate) fn last_words(&self) -> Option<String> {
        last_line(&self.log)
    }

    /// The process id, for tests that kill it.
    pub(crate) fn pid(&self) -> u32 {
        lock(&self.child).id()
    }

    /// Closes the watchdog's pipe, as Escale's end would: the watchdog
    /// then kills rclone. For tests of that guard.
    #[cfg(all(test, unix))]
    pub(crate) fn close_watchdog_pipe(&self) {
        if let Some(watchdog) = lock(&self.watchdog).as_mut() {
            drop(watchdog.stdin.take());
        }
    }

    /// Stops the watchdog without letting it act.
    fn stop_watchdog(&self) {
        if let Some(mut watchdog) = lock(&self.watchdog).take() {
            stop(&mut watchdog);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The watchdog first, so that it cannot signal the process id once
        // rclone is gone and the id may be reused.
        self.stop_watchdog();
        stop(&mut lock(&self.child));
        tracing::debug!(base = %self.base, "rclone stopped");
    }
}

/// The daemon of one relay: started at the first call, replaced when found
/// dead, stopped with the relay.
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// Which rclone to run.
    setup: Setup,
    /// The running daemon, if any; the async lock makes concurrent first
    /// calls wait for one start instead of starting several.
    current: tokio::sync::Mutex<Option<Arc<Daemon>>>,
}

impl Supervisor {
    /// A supervisor for `setup`; nothing starts yet.
    pub(crate) fn new(setup: Setup) -> Self {
        Supervisor {
            setup,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Which rclone this supervisor runs.
    pub(crate) fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The running daemon, started (again) when there is none or it has
    /// ended. `check` runs on a fresh daemon before anyone uses it (the
    /// version check); its failure stops the daemon again.
    pub(crate) async fn daemon<F, Fut>(&self, check: F) -> Result<Arc<Daemon>, RelayError>
    where
        F: FnOnce(Arc<Daemon>) -> Fut,
        Fut: std::future::Future<Output = Result<(), RelayError>>,
    {
        let mut current = self.current.lock().await;
        if let Some(daemon) = current.as_ref()
            && daemon.alive()
        {
            return Ok(Arc::clone(daemon));
        }
        if let Some(dead) = current.take() {
            tracing::warn!(
                last_words = dead.last_words().unwrap_or_default(),
                "rclone stopped unexpectedly; starting it again"
            );
        }
        let daemon = Arc::new(Daemon::start(&self.setup).await?);
        // A daemon that fails the check is dropped, and so stopped, here.
        check(Arc::clone(&daemon)).await?;
        *current = Some(Arc::clone(&daemon));
        Ok(daemon)
    }

    /// The running daemon, if any, without starting one.
    pub(crate) async fn running(&self) -> Option<Arc<Daemon>> {
        self.current.lock().await.clone()
    }
}

/// Whether `key` is one of the variables kept from rclone (see
/// [`SCRUBBED_VARIABLES`]): those, and every `RCLONE_RC_*` setting of the
/// remote-control server (its address, TLS, base URL, authentication).
fn scrubbed(key: &OsString) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    let key = key.to_ascii_uppercase();
    key.starts_with("RCLONE_RC_") || SCRUBBED_VARIABLES.contains(&key.as_str())
}

/// Reads rclone's log until it ends: sends the server's address once it
/// appears, keeps the last lines, and passes everything on to the debug
/// log (rclone logs an error for every failed call, most of which the
/// relay expects, such as a missing head slot).
fn read_log(
    stderr: ChildStderr,
    address: tokio::sync::oneshot::Sender<String>,
    log: &Mutex<VecDeque<String>>,
) {
    let mut address = Some(address);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        tracing::debug!(target: "escale::rclone", "{line}");
        if address.is_some()
            && let Some(found) = listening_address(&line)
            && let Some(sender) = address.take()
        {
            let _ = sender.send(found);
        }
        let mut log = lock(log);
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
}

/// The address in rclone's "Serving remote control on http://…/" line,
/// without the trailing slash; only plain HTTP on loopback is accepted,
/// since that is what Escale asked for.
fn listening_address(line: &str) -> Option<String> {
    let at = line.find(LISTENING)? + LISTENING.len();
    let address: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\\')
        .collect();
    let address = address.trim_end_matches('/');
    address
        .strip_prefix("http://127.0.0.1:")
        .filter(|port| port.parse::<u16>().is_ok())
        .map(|_| address.to_owned())
}

/// The last line of `log`, with its date and level cut off.
fn last_line(log: &Mutex<VecDeque<String>>) -> Option<String> {
    let line = lock(log).back()?.clone();
    // "2026/11/25 01:44:02 CRITICAL: text" → "text".
    let text = line
        .split_once(": ")
        .filter(|(head, _)| head.len() < 40)
        .map_or(line.as_str(), |(_, text)| text);
    Some(super::short(text))
}

/// Why rclone exited before listening: too old, or what it said.
async fn startup_failure(setup: &Setup, said: Option<String>) -> RelayError {
    let program = setup.program().to_path_buf();
    let version = tokio::task::spawn_blocking(move || {
        let output = Command::new(program)
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        parse_version(&String::from_utf8_lossy(&output.stdout))
    })
    .await
    .ok()
    .flatten();
    if let Some(version) = version
        && version < MIN_VERSION
    {
        return setup.unusable(&format!(
            "{} is version {}.{}, which is too old",
            setup.program_words(),
            version.0,
            version.1
        ));
    }
    let said = said.unwrap_or_else(|| "nothing".to_owned());
    let kind = if said.contains("unable to decrypt configuration") {
        RelayErrorKind::AuthenticationFailed
    } else {
        RelayErrorKind::Other
    };
    let hint = if kind == RelayErrorKind::AuthenticationFailed {
        "; the rclone configuration is encrypted: give its password in RCLONE_CONFIG_PASS"
    } else {
        ""
    };
    RelayError::new(
        kind,
        format!(
            "{} stopped as soon as it started (it said: {said}){hint}",
            setup.program_words()
        ),
    )
}

/// The version in `rclone version`'s first line (`rclone v1.75.2`, or
/// `rclone v1.60.1-DEV`), as major and minor numbers.
pub(crate) fn parse_version(text: &str) -> Option<(u64, u64)> {
    let first = text.lines().next()?;
    let version = first.trim().strip_prefix("rclone v")?;
    let mut numbers = version.split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

/// Starts the watchdog of rclone's process `pid`; `None` (said in the
/// log) when it cannot run, leaving only the kill on drop.
#[cfg(unix)]
fn spawn_watchdog(pid: u32) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("escale-rclone-watchdog")
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(watchdog) => Some(watchdog),
        Err(err) => {
            tracing::warn!(
                error = %err,
                "cannot start the watchdog that stops rclone if Escale crashes"
            );
            None
        }
    }
}

/// Kills a child process and waits for it, so that no zombie is left.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Locks `mutex`, also when a panic poisoned it: the data (a process
/// handle, log lines) stays usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_address_is_read_from_the_log() {
        assert_eq!(
            listening_address(
                "2026/11/25 01:44:02 NOTICE: Serving remote control on http://127.0.0.1:42557/"
            )
            .as_deref(),
            Some("http://127.0.0.1:42557")
        );
        // JSON logs carry the same text inside a string.
        assert_eq!(
            listening_address(
                r#"{"level":"notice","msg":"Serving remote control on http://127.0.0.1:9/\n"}"#
            )
            .as_deref(),
            Some("http://127.0.0.1:9")
        );
        for other in [
            "NOTICE: Serving remote control on https://127.0.0.1:443/",
            "NOTICE: Serving remote control on http://0.0.0.0:5572/",
            "NOTICE: Serving remote control on http://127.0.0.1:port/",
            "INFO  : Using --user escale --pass XXXX as authenticated user",
        ] {
            assert_eq!(listening_address(other), None, "{other}");
        }
    }

    #[test]
    fn versions_are_parsed() {
        assert_eq!(
            parse_version("rclone v1.75.2\n- os/version: debian"),
            Some((1, 75))
        );
        assert_eq!(parse_version("rclone v1.60.1-DEV\n"), Some((1, 60)));
        assert_eq!(parse_version("rclone v2.0.0"), Some((2, 0)));
        assert_eq!(parse_version("something else"), None);
        assert!(parse_version("rclone v1.53.3").unwrap() < MIN_VERSION);
    }

    #[test]
    fn only_settings_that_break_the_server_are_scrubbed() {
        for key in [
            "RCLONE_RC_ADDR",
            "RCLONE_RC_NO_AUTH",
            "RCLONE_RC_CERT",
            "rclone_dry_run",
            "RCLONE_LOG_FILE",
        ] {
            assert!(scrubbed(&OsString::from(key)), "{key}");
        }
        for key in [
            "RCLONE_CONFIG",
            "RCLONE_CONFIG_PASS",
            "RCLONE_CONFIG_MYDRIVE_TYPE",
            "RCLONE_DRIVE_USE_TRASH",
            "HOME",
        ] {
            assert!(!scrubbed(&OsString::from(key)), "{key}");
        }
    }
}
