//! Testing a relay before using it: can this computer find the server,
//! connect, log in, and write, read, list and delete in the relay folder?
//!
//! This is what `escale check` and the desktop wizard's "Test connection"
//! run. Each step's failure is turned into plain words — what is wrong and
//! what to do — because the people reading it set up a shared folder, not
//! a server. The check works in a scratch folder of its own inside the
//! relay folder and removes what it wrote, whatever happens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::format;
use crate::relay::{self, Relay, RelayError, RelayErrorKind, RelayPath, RelayUrl, Secrets};

/// How long the name lookup and the connection may take: long enough for a
/// slow VPN, short enough that a person waiting on a button is not left
/// wondering.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the file the check writes: more than one network packet,
/// so that a server cutting transfers short is caught.
const PROBE_SIZE: usize = 100 * 1024;

/// What the person setting up a relay gives besides its address.
#[derive(Clone, Default)]
pub struct RelayAccess {
    /// The relay password (WebDAV, FTP, SFTP) or S3 secret key; when
    /// absent, the environment's (`ESCALE_RELAY_PASSWORD`, the AWS
    /// variables) is used.
    pub password: Option<String>,
    /// A PEM file of extra certificate authorities to trust, for servers
    /// with a private certificate or behind a company proxy that inspects
    /// secure connections.
    pub ca_file: Option<PathBuf>,
    /// Escale's own known-hosts file, where an SFTP server met for the
    /// first time is recorded (trust on first use); without it, and
    /// unless `ESCALE_KNOWN_HOSTS` names one, such a server is refused
    /// with its fingerprint.
    pub known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for RelayAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayAccess")
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

impl RelayAccess {
    /// The credentials for `url`: these, else the environment's, else the
    /// keyring's (a blocking lookup, so off the async threads).
    async fn secrets(&self, url: &RelayUrl, address: &str) -> Secrets {
        let (url, address, access) = (url.clone(), address.to_owned(), self.clone());
        let resolve = move || {
            let mut secrets = crate::repository::relay_secrets(
                &url,
                &address,
                access.password.as_deref(),
                None,
                access.known_hosts.as_deref(),
            );
            // Given for this check, the file wins over the environment's.
            if access.ca_file.is_some() {
                secrets.ca_file = access.ca_file.clone();
            }
            secrets
        };
        tokio::task::spawn_blocking(resolve)
            .await
            .unwrap_or_else(|_| Secrets::from_env())
    }
}

/// One step of a relay check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStepKind {
    /// The address is well formed.
    Address,
    /// The server's name is found on the network.
    ServerName,
    /// Something accepts connections on the server's port.
    Connection,
    /// The server accepts the login and shows the relay folder.
    Login,
    /// A file can be written in the relay folder.
    Write,
    /// It reads back identical, whole and in part.
    Read,
    /// The folder's listing shows it with its size.
    List,
    /// It can be deleted again.
    Delete,
}

impl CheckStepKind {
    /// The step's name, for people.
    pub fn title(self) -> &'static str {
        match self {
            CheckStepKind::Address => "Address",
            CheckStepKind::ServerName => "Server found",
            CheckStepKind::Connection => "Connection",
            CheckStepKind::Login => "Login and folder",
            CheckStepKind::Write => "Saving a file",
            CheckStepKind::Read => "Reading it back",
            CheckStepKind::List => "Listing the folder",
            CheckStepKind::Delete => "Deleting it",
        }
    }
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// It worked; `detail` says what was found.
    Passed {
        /// What was found, in plain words.
        detail: String,
    },
    /// It failed.
    Failed {
        /// A stable code (`host_not_found`, `connection_refused`,
        /// `timeout`, `login_refused`, `tls`, `folder_missing`,
        /// `permission_denied`, `storage_full`, …) for user interfaces.
        code: String,
        /// What is wrong, in plain words.
        problem: String,
        /// What to do about it.
        fix: String,
        /// The technical cause, for whoever helps (may be empty).
        details: String,
    },
    /// Not tried, because an earlier step failed.
    NotRun,
}

/// One step and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStep {
    /// Which step.
    pub kind: CheckStepKind,
    /// Its name, for people.
    pub title: &'static str,
    /// How it went.
    #[serde(flatten)]
    pub outcome: CheckOutcome,
}

/// The result of [`check_relay`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayCheck {
    /// The address checked, as written (never with a password).
    pub address: String,
    /// Every step, in order; those after a failure are
    /// [`CheckOutcome::NotRun`].
    pub steps: Vec<CheckStep>,
    /// Whether the relay folder already holds an Escale repository (to
    /// join) rather than nothing yet (to create one in); `None` when the
    /// check did not get that far.
    pub holds_repository: Option<bool>,
}

impl RelayCheck {
    /// Whether every step passed: the relay is ready for Escale.
    pub fn passed(&self) -> bool {
        self.steps
            .iter()
            .all(|step| matches!(step.outcome, CheckOutcome::Passed { .. }))
    }

    /// The first failed step, if any.
    pub fn failure(&self) -> Option<&CheckStep> {
        self.steps
            .iter()
            .find(|step| matches!(step.outcome, CheckOutcome::Failed { .. }))
    }
}

/// A step's failure, before it is placed in the report.
struct Failure {
    code: &'static str,
    problem: String,
    fix: String,
    details: String,
}

impl Failure {
    fn new(code: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Failure {
            code,
            problem: problem.into(),
            fix: fix.into(),
            details: String::new(),
        }
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
}

/// Checks the relay at `address` with `access`: each step of
/// [`CheckStepKind`] in turn, stopping at the first failure. It never
/// fails itself: every problem is a step of the report.
pub async fn check_relay(address: &str, access: &RelayAccess) -> RelayCheck {
    let mut check = Checker {
        steps: Vec::new(),
        holds_repository: None,
    };
    let shown = address.to_owned();
    check.run(address, access).await;
    let ran = check.steps.len();
    let mut steps = check.steps;
    for kind in ALL_STEPS.iter().skip(ran) {
        steps.push(CheckStep {
            kind: *kind,
            title: kind.title(),
            outcome: CheckOutcome::NotRun,
        });
    }
    RelayCheck {
        address: shown,
        steps,
        holds_repository: check.holds_repository,
    }
}

const ALL_STEPS: [CheckStepKind; 8] = [
    CheckStepKind::Address,
    CheckStepKind::ServerName,
    CheckStepKind::Connection,
    CheckStepKind::Login,
    CheckStepKind::Write,
    CheckStepKind::Read,
    CheckStepKind::List,
    CheckStepKind::Delete,
];

struct Checker {
    steps: Vec<CheckStep>,
    holds_repository: Option<bool>,
}

impl Checker {
    /// Records a step; returns whether it passed.
    fn record(&mut self, kind: CheckStepKind, result: Result<String, Failure>) -> bool {
        let passed = result.is_ok();
        let outcome = match result {
            Ok(detail) => CheckOutcome::Passed { detail },
            Err(failure) => CheckOutcome::Failed {
                code: failure.code.to_owned(),
                problem: failure.problem,
                fix: failure.fix,
                details: failure.details,
            },
        };
        self.steps.push(CheckStep {
            kind,
            title: kind.title(),
            outcome,
        });
        passed
    }

    async fn run(&mut self, address: &str, access: &RelayAccess) {
        let url = match RelayUrl::parse(address) {
            Ok(url) => url,
            Err(err) => {
                self.record(
                    CheckStepKind::Address,
                    Err(Failure::new(
                        "invalid_address",
                        err.to_string(),
                        "Correct the address; see the examples of each kind of storage.",
                    )),
                );
                return;
            }
        };
        let kind = match url {
            RelayUrl::File { .. } => "a local or network folder".to_owned(),
            _ => format!("{} storage", url.kind_name()),
        };
        self.record(CheckStepKind::Address, Ok(kind));

        // Behind a proxy, only the proxy is reached directly: a direct
        // connection that the company firewall drops says nothing.
        let endpoint = url.endpoint();
        let proxy = endpoint
            .as_ref()
            .and_then(|(host, _)| proxy_for(&url, host));
        let target = match &proxy {
            Some(proxy) => Some((proxy.host.clone(), proxy.port)),
            None => endpoint,
        };
        match target {
            Some((host, port)) => {
                let found = find_server(&host, port).await;
                let Some(addresses) = self.record_with(CheckStepKind::ServerName, found) else {
                    return;
                };
                let mut connected = connect(&host, port, &addresses).await;
                if let Some(proxy) = &proxy {
                    connected = match connected {
                        Ok(_) => Ok(format!(
                            "through the proxy {host}:{port} (from {})",
                            proxy.variable
                        )),
                        Err(mut failure) => {
                            failure.problem = format!(
                                "The proxy {host}:{port} named in {} cannot be reached: {}",
                                proxy.variable, failure.problem
                            );
                            failure.fix = format!(
                                "Check the proxy setting {} (ask IT for the right one), or \
                                 list the server in NO_PROXY if it is reached directly.",
                                proxy.variable
                            );
                            Err(failure)
                        }
                    };
                }
                if !self.record(CheckStepKind::Connection, connected) {
                    return;
                }
            }
            // A local folder or rclone: no server of Escale's to reach.
            None => {
                let detail = "not needed for this kind of storage".to_owned();
                self.record(CheckStepKind::ServerName, Ok(detail.clone()));
                self.record(CheckStepKind::Connection, Ok(detail));
            }
        }

        let secrets = access.secrets(&url, address).await;
        let relay = match relay::open_with(&url, &secrets) {
            Ok(relay) => relay,
            Err(err) => {
                self.record(CheckStepKind::Login, Err(explain(&err, &url, Stage::Login)));
                return;
            }
        };
        let listed = relay.list(&RelayPath::root()).await;
        let entries = match listed {
            Ok(entries) => entries,
            Err(err) => {
                self.record(CheckStepKind::Login, Err(explain(&err, &url, Stage::Login)));
                return;
            }
        };
        let holds = entries.iter().any(|e| e.name == format::HEADER_FILE);
        self.holds_repository = Some(holds);
        let opened = match url {
            RelayUrl::File { .. } => "opened",
            _ => "logged in",
        };
        let detail = if holds {
            format!("{opened}; the folder holds an Escale repository, ready to join")
        } else if entries.is_empty() {
            format!("{opened}; the folder is empty, ready for a new repository")
        } else {
            format!(
                "{opened}; the folder holds {} other item(s) but no Escale repository",
                entries.len()
            )
        };
        self.record(CheckStepKind::Login, Ok(detail));

        let scratch = RelayPath::root()
            .join(&format!(
                ".escale-check-{}",
                hex::encode(crate::ids::random_bytes::<6>())
            ))
            .expect("a fixed, valid name");
        self.try_files(&relay, &url, &scratch).await;
        // Whatever happened, nothing of the check stays on the relay.
        let probe = scratch.join("probe").expect("a fixed, valid name");
        let _ = relay.delete(&probe).await;
        let _ = relay.remove_dir(&scratch).await;
    }

    /// Records a step whose success carries a value; returns it.
    fn record_with<T>(
        &mut self,
        kind: CheckStepKind,
        result: Result<(T, String), Failure>,
    ) -> Option<T> {
        match result {
            Ok((value, detail)) => {
                self.record(kind, Ok(detail));
                Some(value)
            }
            Err(failure) => {
                self.record(kind, Err(failure));
                None
            }
        }
    }

    /// The write, read, list and delete steps in the scratch folder.
    async fn try_files(&mut self, relay: &Arc<dyn Relay>, url: &RelayUrl, scratch: &RelayPath) {
        let probe = scratch.join("probe").expect("a fixed, valid name");
        // Random bytes: a server or proxy that compresses, converts line
        // ends or truncates cannot give them back unchanged by luck.
        let mut data = vec![0u8; PROBE_SIZE];
        getrandom::fill(&mut data).expect("the operating system provides random bytes");
        let data = Bytes::from(data);
        let written = async {
            relay.create_dir(scratch).await?;
            relay.write(&probe, data.clone()).await
        }
        .await;
        let written = written
            .map(|()| format!("saved a {} KB test file", PROBE_SIZE / 1024))
            .map_err(|err| explain(&err, url, Stage::Write));
        if !self.record(CheckStepKind::Write, written) {
            return;
        }

        let read = async {
            let whole = relay.read(&probe, None).await?;
            let part = relay.read(&probe, Some(1000..3000)).await?;
            Ok::<_, RelayError>((whole, part))
        }
        .await;
        let read = match read {
            Ok((whole, part)) if whole == data && part[..] == data[1000..3000] => {
                Ok("read back identical".to_owned())
            }
            Ok(_) => Err(Failure::new(
                "corrupted",
                "The file read back differs from the file saved.",
                "The server or something between (a proxy, an antivirus) changes files. \
                 Try another server or ask its administrator.",
            )),
            Err(err) => Err(explain(&err, url, Stage::Read)),
        };
        if !self.record(CheckStepKind::Read, read) {
            return;
        }

        let listed = match relay.list(scratch).await {
            Ok(entries) => match entries.iter().find(|e| e.name == "probe") {
                Some(entry) if entry.size.is_none_or(|size| size == PROBE_SIZE as u64) => {
                    Ok("the file is listed".to_owned())
                }
                Some(entry) => Err(Failure::new(
                    "corrupted",
                    format!(
                        "The folder lists the test file with {} bytes instead of {PROBE_SIZE}.",
                        entry.size.unwrap_or_default()
                    ),
                    "The server reports wrong sizes; ask its administrator.",
                )),
                None => Err(Failure::new(
                    "listing_incomplete",
                    "The folder's listing does not show the file just saved.",
                    "The server hides or delays new files; Escale needs to see them. \
                     Try another folder or server.",
                )),
            },
            Err(err) => Err(explain(&err, url, Stage::List)),
        };
        if !self.record(CheckStepKind::List, listed) {
            return;
        }

        let deleted = async {
            relay.delete(&probe).await?;
            relay.remove_dir(scratch).await
        }
        .await
        .map(|()| "deleted; nothing of the test is left".to_owned())
        .map_err(|err| explain(&err, url, Stage::Delete));
        self.record(CheckStepKind::Delete, deleted);
    }
}

/// A proxy the relay's requests go through.
#[derive(Debug, PartialEq, Eq)]
struct Proxy {
    host: String,
    port: u16,
    /// The environment variable it came from, to name in messages.
    variable: &'static str,
}

/// The proxy that the HTTP client (WebDAV, S3) uses for `host`, read from
/// the environment the way it reads it: `HTTPS_PROXY` or `HTTP_PROXY` by
/// the relay's scheme, then `ALL_PROXY`, in capitals or not, unless
/// `NO_PROXY` lists the host.
fn proxy_for(url: &RelayUrl, host: &str) -> Option<Proxy> {
    proxy_from(url, host, |name| std::env::var(name).ok())
}

fn proxy_from(url: &RelayUrl, host: &str, var: impl Fn(&str) -> Option<String>) -> Option<Proxy> {
    let https = match url {
        RelayUrl::WebDav { https, .. } => *https,
        RelayUrl::S3 { endpoint, .. } => endpoint
            .as_deref()
            .is_none_or(|e| e.to_ascii_lowercase().starts_with("https")),
        _ => return None,
    };
    let get = |upper: &'static str, lower: &'static str| {
        var(upper)
            .map(|v| (upper, v))
            .or_else(|| var(lower).map(|v| (lower, v)))
            .filter(|(_, v)| !v.trim().is_empty())
    };
    let no_proxy = get("NO_PROXY", "no_proxy")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    let bypassed = no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        let entry = entry.to_ascii_lowercase();
        entry == "*"
            || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
    });
    if bypassed {
        return None;
    }
    let (variable, value) = if https {
        get("HTTPS_PROXY", "https_proxy")
    } else {
        get("HTTP_PROXY", "http_proxy")
    }
    .or_else(|| get("ALL_PROXY", "all_proxy"))?;
    let rest = value.split_once("://").map_or(value.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    // A user and password in the proxy's address are not part of its host.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    Some(Proxy {
        host: host.trim_matches(['[', ']']).to_owned(),
        port,
        variable,
    })
}

/// Looks the server's name up.
async fn find_server(
    host: &str,
    port: u16,
) -> Result<(Vec<std::net::SocketAddr>, String), Failure> {
    let lookup = tokio::time::timeout(NETWORK_TIMEOUT, tokio::net::lookup_host((host, port)));
    match lookup.await {
        Ok(Ok(found)) => {
            let addresses: Vec<_> = found.collect();
            match addresses.first() {
                Some(first) => {
                    let detail = if host.parse::<std::net::IpAddr>().is_ok() {
                        format!("{host} is a network address; nothing to look up")
                    } else {
                        format!("{host} is at {}", first.ip())
                    };
                    Ok((addresses, detail))
                }
                None => Err(host_not_found(host)),
            }
        }
        Ok(Err(_)) => Err(host_not_found(host)),
        Err(_) => Err(Failure::new(
            "timeout",
            format!("Looking up the server name {host} took too long."),
            "Check this computer's network connection, then try again.",
        )),
    }
}

fn host_not_found(host: &str) -> Failure {
    Failure::new(
        "host_not_found",
        format!("The server name \"{host}\" was not found."),
        "Check the spelling of the server name, and that this computer is connected \
         to the network (and to the company VPN if the server is only reachable there).",
    )
}

/// Opens and closes a connection to the server's port.
async fn connect(
    host: &str,
    port: u16,
    addresses: &[std::net::SocketAddr],
) -> Result<String, Failure> {
    let mut refused = false;
    let mut timed_out = false;
    for address in addresses {
        match tokio::time::timeout(NETWORK_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_)) => return Ok(format!("the server accepts connections on port {port}")),
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
            Ok(Err(_)) => {}
            Err(_) => timed_out = true,
        }
    }
    if refused {
        Err(Failure::new(
            "connection_refused",
            format!("{host} refuses connections on port {port}."),
            "Check the port number in the address (FTP usually uses 21, SFTP 22, \
             WebDAV 80 or 443), and that the storage service is running on the server.",
        ))
    } else if timed_out {
        Err(Failure::new(
            "timeout",
            format!(
                "{host} did not answer on port {port} within {} seconds.",
                NETWORK_TIMEOUT.as_secs()
            ),
            "A firewall may be blocking this port, or the server is down. \
             Check the port number, or ask your network administrator which storage \
             the firewall lets through.",
        ))
    } else {
        Err(Failure::new(
            "unreachable",
            format!("{host} cannot be reached on port {port}."),
            "Check this computer's network connection and the address.",
        ))
    }
}

/// Which step an error happened in: the same refusal means different
/// things when logging in and when writing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Login,
    Write,
    Read,
    List,
    Delete,
}

/// A relay error in plain words, with what to do; the error's own text
/// goes to the details.
fn explain(err: &RelayError, url: &RelayUrl, stage: Stage) -> Failure {
    let detail = err.to_string();
    let failure = match err.kind() {
        RelayErrorKind::AuthenticationFailed => Failure::new(
            "login_refused",
            "The server refused the user name or password.",
            password_fix(url),
        ),
        RelayErrorKind::Tls => Failure::new(
            "tls",
            "The secure connection to the server could not be set up: its certificate \
             is not trusted, or does not match the server's name.",
            "If the server uses its own certificate, give its certificate authority's \
             file with --ca-file. In a company network, a proxy may be inspecting secure \
             connections: ask IT for its certificate authority's file and give it the \
             same way.",
        ),
        RelayErrorKind::NotFound if stage == Stage::Login => Failure::new(
            "folder_missing",
            "The relay folder does not exist on the storage.",
            "Create the folder on the storage (for example in its web page or file \
             manager), or correct the folder in the address. Escale does not create it \
             itself, so that a disconnected drive is never mistaken for an empty relay.",
        ),
        RelayErrorKind::PermissionDenied => {
            let what = match stage {
                Stage::Login | Stage::List => "open the relay folder",
                Stage::Write => "save files in the relay folder: it is read-only for you",
                Stage::Read => "read files back from the relay folder",
                Stage::Delete => "delete files in the relay folder",
            };
            Failure::new(
                "permission_denied",
                format!("The login works, but you are not allowed to {what}."),
                "Escale needs to save, read, list and delete files in this folder. Ask \
                 the storage's administrator for write access, or choose a folder of \
                 your own.",
            )
        }
        RelayErrorKind::StorageFull => Failure::new(
            "storage_full",
            "The storage is full, or the account is over its quota.",
            "Free some space on the storage or raise the account's quota, then check again.",
        ),
        RelayErrorKind::Timeout => Failure::new(
            "timeout",
            "The server stopped answering.",
            "The connection is slow or the server is overloaded; try again later.",
        ),
        RelayErrorKind::Unreachable | RelayErrorKind::Interrupted => Failure::new(
            "unreachable",
            "The connection to the server failed.",
            "Check that the address names the right kind of storage (ftp://, webdav://, \
             sftp://…) for this port, and try again.",
        ),
        RelayErrorKind::InvalidUrl => Failure::new(
            "invalid_address",
            sentence(&detail),
            "Correct the address; see the examples of each kind of storage.",
        ),
        RelayErrorKind::Unsupported => Failure::new(
            "unsupported",
            sentence(&detail),
            "Choose another kind of storage.",
        ),
        _ => Failure::new(
            "relay_error",
            "The storage answered with an error.",
            "Try again; if it persists, ask the storage's administrator.",
        ),
    };
    failure.with_details(sentence(&detail))
}

/// `text` as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// How to give the right password for this kind of relay.
fn password_fix(url: &RelayUrl) -> String {
    match url {
        RelayUrl::S3 { .. } => "Check the access key and secret key (AWS_ACCESS_KEY_ID and \
                                AWS_SECRET_ACCESS_KEY)."
            .to_owned(),
        RelayUrl::Rclone { remote, .. } => {
            format!("Log in again with: rclone config reconnect {remote}:")
        }
        _ => "Check the user name in the address and the password.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_code(check: &RelayCheck) -> Option<(CheckStepKind, String)> {
        check.failure().map(|step| match &step.outcome {
            CheckOutcome::Failed { code, .. } => (step.kind, code.clone()),
            _ => unreachable!(),
        })
    }

    #[tokio::test]
    async fn a_usable_folder_passes_every_step_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("file://{}", dir.path().display());
        let check = check_relay(&address, &RelayAccess::default()).await;
        assert!(check.passed(), "{check:#?}");
        assert_eq!(check.steps.len(), ALL_STEPS.len());
        assert_eq!(check.holds_repository, Some(false));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_missing_folder_is_named_and_the_rest_not_tried() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("file://{}", dir.path().join("gone").display());
        let check = check_relay(&address, &RelayAccess::default()).await;
        assert_eq!(
            failed_code(&check),
            Some((CheckStepKind::Login, "folder_missing".into()))
        );
        assert!(
            !dir.path().join("gone").exists(),
            "the check made the folder"
        );
        let after: Vec<_> = check.steps.iter().skip(4).map(|s| &s.outcome).collect();
        assert!(
            after.iter().all(|o| **o == CheckOutcome::NotRun),
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_address_stops_at_the_first_step() {
        let check = check_relay("gopher://example.com/x", &RelayAccess::default()).await;
        assert_eq!(
            failed_code(&check),
            Some((CheckStepKind::Address, "invalid_address".into()))
        );
    }

    #[tokio::test]
    async fn an_unknown_host_and_a_closed_port_are_told_apart() {
        let check = check_relay("ftp://u@host.invalid/x", &RelayAccess::default()).await;
        assert_eq!(
            failed_code(&check),
            Some((CheckStepKind::ServerName, "host_not_found".into()))
        );
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("webdav://u@127.0.0.1:{free}/x");
        let check = check_relay(&address, &RelayAccess::default()).await;
        assert_eq!(
            failed_code(&check),
            Some((CheckStepKind::Connection, "connection_refused".into()))
        );
    }

    #[test]
    fn the_proxy_is_the_one_the_http_client_would_use() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let dav = RelayUrl::parse("webdavs://u@files.example.com/x").unwrap();
        let plain = RelayUrl::parse("webdav://u@files.example.com/x").unwrap();
        let env = vars(&[
            ("HTTPS_PROXY", "http://user:pw@proxy.corp:3128"),
            ("http_proxy", "proxy.corp:8080"),
        ]);
        assert_eq!(
            proxy_from(&dav, "files.example.com", env),
            Some(Proxy {
                host: "proxy.corp".into(),
                port: 3128,
                variable: "HTTPS_PROXY"
            })
        );
        assert_eq!(
            proxy_from(&plain, "files.example.com", env).map(|p| (p.port, p.variable)),
            Some((8080, "http_proxy"))
        );
        let bypass = vars(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "localhost, .example.com"),
        ]);
        assert_eq!(proxy_from(&dav, "files.example.com", bypass), None);
        assert!(proxy_from(&dav, "example.org", bypass).is_some());
        assert_eq!(proxy_from(&dav, "files.example.com", vars(&[])), None);
        let ftp = RelayUrl::parse("ftp://u@files.example.com/x").unwrap();
        assert_eq!(proxy_from(&ftp, "files.example.com", env), None);
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let access = RelayAccess {
            password: Some("hunter2".into()),
            ca_file: None,
            known_hosts: None,
        };
        assert!(!format!("{access:?}").contains("hunter2"));
    }
}
