//! Relay addresses: the text a user types in the wizard or passes to
//! `--relay`, parsed into the fields a backend needs.
//!
//! The forms are fixed by the command-line contract:
//!
//! | form | example |
//! |---|---|
//! | local or mounted folder | `file:///mnt/share/escale`, `file:///C:/Relay` |
//! | FTP, FTPS (explicit TLS) | `ftp://ana@files.example.com:2121/escale`, `ftps://…` |
//! | WebDAV | `webdav://host:port/path`, `webdavs://…` for HTTPS; `http(s)://` too |
//! | S3 | `s3://bucket/prefix?endpoint=https://s3.example.com&region=eu-west-1&path_style=true` |
//! | SFTP | `sftp://ana@host:22/srv/escale` |
//! | rclone | `rclone:REMOTE:path` |
//!
//! The parser is written by hand because the forms are few and a general
//! URL library would accept much that we must refuse. It is strict where a
//! mistake would be silent later (a password in the address, an unknown
//! option, a relative folder, `..` in a path) and lenient where intent is
//! unambiguous (surrounding blanks, upper-case schemes, unencoded spaces,
//! a `@` inside a user name). Every refusal says what to write instead.
//!
//! Passwords and keys never go in an address, because addresses are saved
//! in the settings file and appear in messages and logs; they come from the
//! keyring or the environment instead. That is also why a `RelayUrl` may be
//! shown anywhere: its [`Display`](fmt::Display) form is the canonical
//! address and holds nothing secret.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{RelayError, RelayErrorKind};

/// Default FTP and FTPS port: FTPS here means explicit TLS (`AUTH TLS` on
/// the ordinary control port), which vsftpd and pure-ftpd offer.
const FTP_PORT: u16 = 21;
/// Default port of `webdav://` and `http://`.
const HTTP_PORT: u16 = 80;
/// Default port of `webdavs://` and `https://`.
const HTTPS_PORT: u16 = 443;
/// Default port of `sftp://`.
const SFTP_PORT: u16 = 22;

/// What to do instead of writing a password in the address.
const PASSWORD_REFUSED: &str =
    "put the password in the keyring or ESCALE_RELAY_PASSWORD, not in the address";

/// A parsed relay address. Network forms carry their server's host (lower
/// case, IPv6 without brackets), port (the protocol's default when the
/// address gives none), optional user name, and path on the server
/// (percent-decoded, starting with `/`, without empty, `.` or `..` parts
/// and without a trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayUrl {
    /// A folder on this computer or on a mounted network share.
    File {
        /// The absolute folder: `/mnt/share/x`, or `C:/x` on Windows.
        root: PathBuf,
    },
    /// An FTP server, in clear text.
    Ftp {
        /// The server's host name or IP address.
        host: String,
        /// The control port (21 by default).
        port: u16,
        /// The login name; anonymous when absent.
        user: Option<String>,
        /// The relay folder on the server.
        path: String,
    },
    /// An FTP server with explicit TLS (`AUTH TLS`).
    Ftps {
        /// The server's host name or IP address.
        host: String,
        /// The control port (21 by default).
        port: u16,
        /// The login name; anonymous when absent.
        user: Option<String>,
        /// The relay folder on the server.
        path: String,
    },
    /// A WebDAV server (Nextcloud, Apache, nginx, rclone serve…).
    WebDav {
        /// Whether to use HTTPS (`webdavs://` or `https://`).
        https: bool,
        /// The server's host name or IP address.
        host: String,
        /// The port (80 or 443 by default).
        port: u16,
        /// The login name, when the server asks for one.
        user: Option<String>,
        /// The relay folder's path on the server.
        path: String,
    },
    /// An S3 bucket, on AWS or a compatible server.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// The folder inside the bucket, without leading or trailing `/`;
        /// empty for the whole bucket.
        prefix: String,
        /// The server's base URL (`http(s)://host[:port]`) for servers
        /// other than AWS.
        endpoint: Option<String>,
        /// The region, when the server needs one.
        region: Option<String>,
        /// Whether to address the bucket in the path (`host/bucket/key`)
        /// rather than in the host name, as most self-hosted servers need.
        path_style: bool,
    },
    /// An SFTP server.
    Sftp {
        /// The server's host name or IP address.
        host: String,
        /// The SSH port (22 by default).
        port: u16,
        /// The login name; the local user's when absent.
        user: Option<String>,
        /// The relay folder on the server.
        path: String,
    },
    /// Any storage rclone reaches, through a remote from its configuration.
    Rclone {
        /// The remote's name as in `rclone config`.
        remote: String,
        /// The folder on the remote, as rclone understands it.
        path: String,
    },
}

impl RelayUrl {
    /// Parses a relay address written in one of the forms of the module
    /// documentation. Every refusal is [`RelayErrorKind::InvalidUrl`] with
    /// a message that says what to write instead.
    pub(crate) fn parse(text: &str) -> Result<RelayUrl, RelayError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("the relay address is empty"));
        }
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(invalid(format!(
                "\"{text}\" is not a relay address; a folder is written like \
                 file:///mnt/share/escale, a server like webdavs://host/folder"
            )));
        };
        if scheme.len() == 1 && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid(format!(
                "\"{text}\" looks like a Windows folder; write it as file:///{}",
                text.replace('\\', "/")
            )));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "file" => parse_file(rest),
            "ftp" => {
                let server = parse_server("ftp", rest, FTP_PORT)?;
                Ok(RelayUrl::Ftp {
                    host: server.host,
                    port: server.port,
                    user: server.user,
                    path: server.path,
                })
            }
            "ftps" => {
                let server = parse_server("ftps", rest, FTP_PORT)?;
                Ok(RelayUrl::Ftps {
                    host: server.host,
                    port: server.port,
                    user: server.user,
                    path: server.path,
                })
            }
            scheme @ ("webdav" | "http" | "webdavs" | "https") => {
                let https = matches!(scheme, "webdavs" | "https");
                let default_port = if https { HTTPS_PORT } else { HTTP_PORT };
                let server = parse_server(scheme, rest, default_port)?;
                Ok(RelayUrl::WebDav {
                    https,
                    host: server.host,
                    port: server.port,
                    user: server.user,
                    path: server.path,
                })
            }
            "sftp" => {
                let server = parse_server("sftp", rest, SFTP_PORT)?;
                Ok(RelayUrl::Sftp {
                    host: server.host,
                    port: server.port,
                    user: server.user,
                    path: server.path,
                })
            }
            "s3" => parse_s3(rest),
            "rclone" => parse_rclone(rest),
            _ => Err(invalid(format!(
                "Escale does not know relay addresses starting with \"{scheme}:\"; \
                 use file://, ftp://, ftps://, webdav://, webdavs://, s3://, sftp:// or rclone:"
            ))),
        }
    }

    /// The server's host name and TCP port, for the kinds of relay that
    /// Escale reaches over the network itself (not a folder, not rclone).
    pub(crate) fn endpoint(&self) -> Option<(String, u16)> {
        match self {
            RelayUrl::Ftp { host, port, .. }
            | RelayUrl::Ftps { host, port, .. }
            | RelayUrl::WebDav { host, port, .. }
            | RelayUrl::Sftp { host, port, .. } => Some((host.clone(), *port)),
            RelayUrl::S3 {
                endpoint: Some(endpoint),
                ..
            } => {
                let (https, rest) = match endpoint.split_once("://") {
                    Some((scheme, rest)) => (scheme.eq_ignore_ascii_case("https"), rest),
                    None => (true, endpoint.as_str()),
                };
                let authority = rest.split('/').next().unwrap_or(rest);
                let default = if https { 443 } else { 80 };
                // `[v6]:port`, `host:port` or a bare host.
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) if !port.contains(']') => {
                        (host, port.parse().unwrap_or(default))
                    }
                    _ => (authority, default),
                };
                Some((host.trim_matches(['[', ']']).to_owned(), port))
            }
            RelayUrl::S3 { region, .. } => Some((
                match region {
                    Some(region) => format!("s3.{region}.amazonaws.com"),
                    None => "s3.amazonaws.com".to_owned(),
                },
                443,
            )),
            RelayUrl::File { .. } | RelayUrl::Rclone { .. } => None,
        }
    }

    /// The kind of storage in words, for messages ("FTP relays are…").
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            RelayUrl::File { .. } => "folder",
            RelayUrl::Ftp { .. } => "FTP",
            RelayUrl::Ftps { .. } => "FTPS",
            RelayUrl::WebDav { .. } => "WebDAV",
            RelayUrl::S3 { .. } => "S3",
            RelayUrl::Sftp { .. } => "SFTP",
            RelayUrl::Rclone { .. } => "rclone",
        }
    }
}

impl FromStr for RelayUrl {
    type Err = RelayError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RelayUrl::parse(text)
    }
}

impl fmt::Display for RelayUrl {
    /// The canonical address: it parses back to the same value, and it
    /// holds no secret, so it may appear in messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayUrl::File { root } => {
                let root = root.to_string_lossy();
                let slash = if root.starts_with('/') { "" } else { "/" };
                write!(f, "file://{slash}{}", encode(&root, EncodeSet::Path))
            }
            RelayUrl::Ftp {
                host,
                port,
                user,
                path,
            } => write_server(f, "ftp", host, *port, FTP_PORT, user, path),
            RelayUrl::Ftps {
                host,
                port,
                user,
                path,
            } => write_server(f, "ftps", host, *port, FTP_PORT, user, path),
            RelayUrl::WebDav {
                https,
                host,
                port,
                user,
                path,
            } => {
                let (scheme, default_port) = if *https {
                    ("webdavs", HTTPS_PORT)
                } else {
                    ("webdav", HTTP_PORT)
                };
                write_server(f, scheme, host, *port, default_port, user, path)
            }
            RelayUrl::Sftp {
                host,
                port,
                user,
                path,
            } => write_server(f, "sftp", host, *port, SFTP_PORT, user, path),
            RelayUrl::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                path_style,
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{}", encode(prefix, EncodeSet::Path))?;
                }
                let mut options = Vec::new();
                if let Some(endpoint) = endpoint {
                    options.push(format!("endpoint={}", encode(endpoint, EncodeSet::Query)));
                }
                if let Some(region) = region {
                    options.push(format!("region={}", encode(region, EncodeSet::Query)));
                }
                if *path_style {
                    options.push("path_style=true".to_owned());
                }
                if !options.is_empty() {
                    write!(f, "?{}", options.join("&"))?;
                }
                Ok(())
            }
            RelayUrl::Rclone { remote, path } => write!(f, "rclone:{remote}:{path}"),
        }
    }
}

/// Writes the canonical form shared by the server addresses; the port
/// only when it is not the protocol's default.
fn write_server(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    host: &str,
    port: u16,
    default_port: u16,
    user: &Option<String>,
    path: &str,
) -> fmt::Result {
    write!(f, "{scheme}://")?;
    if let Some(user) = user {
        write!(f, "{}@", encode(user, EncodeSet::User))?;
    }
    if host.contains(':') {
        write!(f, "[{host}]")?;
    } else {
        f.write_str(host)?;
    }
    if port != default_port {
        write!(f, ":{port}")?;
    }
    if path != "/" {
        f.write_str(&encode(path, EncodeSet::Path))?;
    }
    Ok(())
}

/// A refused address.
fn invalid(message: impl Into<String>) -> RelayError {
    RelayError::new(RelayErrorKind::InvalidUrl, message)
}

/// `file:` addresses. A host other than `localhost` is refused rather than
/// read as a UNC share, because `file://mnt/share` (two slashes) is a far
/// more common slip than a deliberate server name.
fn parse_file(rest: &str) -> Result<RelayUrl, RelayError> {
    let Some(after) = rest.strip_prefix("//") else {
        return Err(invalid(format!(
            "\"file:{rest}\" does not name an absolute folder; write it like \
             file:///mnt/share/escale (with three slashes)"
        )));
    };
    let (authority, path) = match after.find('/') {
        Some(slash) => after.split_at(slash),
        None => (after, ""),
    };
    if !authority.is_empty() && !authority.eq_ignore_ascii_case("localhost") {
        return Err(invalid(format!(
            "\"file://{after}\" reads \"{authority}\" as a server name; a file:// address \
             names a folder on this computer, like file:///mnt/share/escale (with three \
             slashes)"
        )));
    }
    // A file path is taken literally apart from %XX escapes: `?` and `#`
    // are legal in folder names and nobody gives a folder options.
    let mut path = decode(path, "the folder")?;
    if path.is_empty() {
        return Err(invalid(
            "the file:// address names no folder; write it like file:///mnt/share/escale",
        ));
    }
    if path.contains('\0') {
        return Err(invalid(
            "the folder in the file:// address contains a NUL character",
        ));
    }
    // `/C:/x` is how a URL spells the Windows path `C:/x`.
    let bytes = path.as_bytes();
    let root_len = if bytes.len() >= 3
        && bytes[1].is_ascii_alphabetic()
        && bytes[2] == b':'
        && matches!(bytes.get(3), None | Some(b'/' | b'\\'))
    {
        path.remove(0);
        if path.len() == 2 {
            path.push('/');
        }
        3
    } else {
        1
    };
    while path.len() > root_len && (path.ends_with('/') || path.ends_with('\\')) {
        path.pop();
    }
    Ok(RelayUrl::File {
        root: PathBuf::from(path),
    })
}

/// The parts every server form shares.
struct Server {
    /// Lower case; IPv6 without brackets.
    host: String,
    /// The default one when the address gives none.
    port: u16,
    /// The decoded user name, when given.
    user: Option<String>,
    /// Decoded and normalised, starting with `/`.
    path: String,
}

/// Parses `//[user@]host[:port][/path]`, the part after `scheme:`.
fn parse_server(scheme: &str, rest: &str, default_port: u16) -> Result<Server, RelayError> {
    let Some(after) = rest.strip_prefix("//") else {
        return Err(invalid(format!(
            "write a {scheme} relay address like {scheme}://host/folder"
        )));
    };
    if after.contains('#') {
        return Err(invalid(format!(
            "the relay address {scheme}:{rest} contains '#'; write %23 for a '#' in a name"
        )));
    }
    if let Some((_, query)) = after.split_once('?') {
        return Err(invalid(format!(
            "{scheme}:// relay addresses take no options, but this one ends with \"?{query}\"; \
             write %3F for a '?' in a name"
        )));
    }
    let (authority, path) = match after.find('/') {
        Some(slash) => after.split_at(slash),
        None => (after, ""),
    };
    // The last '@' ends the user name, so that an unencoded e-mail login
    // (`ana@example.com@cloud.example.com`) still means what it says.
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(parse_user(userinfo)?), host_port),
        None => (None, authority),
    };
    let (host, port) = parse_host_port(host_port, default_port)?;
    let path = normalize_path(&decode(path, "the folder")?)?;
    Ok(Server {
        host,
        port,
        user,
        path: format!("/{path}"),
    })
}

/// The user name before `@`, refusing a password after a `:`.
fn parse_user(userinfo: &str) -> Result<String, RelayError> {
    if userinfo.contains(':') {
        return Err(invalid(format!(
            "the relay address contains a password; {PASSWORD_REFUSED}"
        )));
    }
    let user = decode(userinfo, "the user name")?;
    if user.is_empty() {
        return Err(invalid(
            "the user name before '@' in the relay address is empty",
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(invalid(
            "the user name in the relay address contains a control character",
        ));
    }
    Ok(user)
}

/// `host`, `host:port`, `[ipv6]` or `[ipv6]:port`; an empty port means
/// the default one, as in any URL.
fn parse_host_port(text: &str, default_port: u16) -> Result<(String, u16), RelayError> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(invalid(format!(
                "the server address \"{text}\" opens a '[' that is never closed"
            )));
        };
        if host.is_empty()
            || !host.contains(':')
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(invalid(format!("\"[{host}]\" is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(invalid(format!(
                        "unexpected \"{after}\" after the server address [{host}]"
                    )));
                }
            },
        };
        (host.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if host.is_empty() {
            return Err(invalid("the relay address names no server"));
        }
        if port.is_some_and(|p| p.contains(':')) {
            return Err(invalid(format!(
                "\"{text}\" is not a server address; write an IPv6 address in brackets, \
                 like [2001:db8::1]:21"
            )));
        }
        if !host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(invalid(format!("\"{host}\" is not a valid server name")));
        }
        (host.to_lowercase(), port)
    };
    let port = match port {
        None | Some("") => default_port,
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port != 0 && digits.chars().all(|c| c.is_ascii_digit()) => port,
            _ => {
                return Err(invalid(format!(
                    "\"{digits}\" is not a port number; ports go from 1 to 65535"
                )));
            }
        },
    };
    Ok((host, port))
}

/// Splits a decoded path into its parts, dropping empty ones (a doubled or
/// trailing `/` means nothing) and refusing `.`, `..` and characters no
/// server path may hold; returns the parts joined by `/`.
fn normalize_path(decoded: &str) -> Result<String, RelayError> {
    let mut parts = Vec::new();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(invalid(format!(
                "the folder \"{decoded}\" in the relay address contains '.' or '..'; \
                 write the folder's full path"
            )));
        }
        if part.chars().any(char::is_control) {
            return Err(invalid(format!(
                "the folder \"{}\" in the relay address contains a control character",
                decoded.escape_debug()
            )));
        }
        parts.push(part);
    }
    Ok(parts.join("/"))
}

/// `s3://bucket[/prefix][?options]`, the part after `s3:`.
fn parse_s3(rest: &str) -> Result<RelayUrl, RelayError> {
    let Some(after) = rest.strip_prefix("//") else {
        return Err(invalid(
            "write an S3 relay address like s3://bucket/folder?endpoint=https://host&region=R",
        ));
    };
    if after.contains('#') {
        return Err(invalid(format!(
            "the relay address s3:{rest} contains '#'; write %23 for a '#' in a name"
        )));
    }
    let (location, query) = match after.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (after, None),
    };
    let (bucket, prefix) = match location.find('/') {
        Some(slash) => location.split_at(slash),
        None => (location, ""),
    };
    if bucket.contains('@') {
        return Err(invalid(
            "an s3:// address starts with the bucket's name; put the S3 keys in the keyring \
             or in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the address",
        ));
    }
    if bucket.contains(':') {
        return Err(invalid(format!(
            "an s3:// address starts with the bucket's name, but \"{bucket}\" looks like a \
             server; give the server as ?endpoint=http://{bucket}"
        )));
    }
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if !valid_bucket {
        return Err(invalid(format!(
            "\"{bucket}\" is not a valid S3 bucket name: 3 to 63 lower-case letters, digits, \
             dots and hyphens"
        )));
    }
    let prefix = normalize_path(&decode(prefix, "the folder")?)?;

    let mut endpoint = None;
    let mut region = None;
    let mut path_style = None;
    for option in query.unwrap_or("").split('&').filter(|o| !o.is_empty()) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let value = decode(value, "an option")?;
        if value.is_empty() {
            return Err(invalid(format!(
                "the option \"{key}\" in the relay address has no value"
            )));
        }
        let slot_taken = match key {
            "endpoint" => endpoint.replace(parse_endpoint(&value)?).is_some(),
            "region" => {
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                {
                    return Err(invalid(format!("\"{value}\" is not a valid S3 region")));
                }
                region.replace(value).is_some()
            }
            "path_style" => {
                let flag = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid(format!(
                            "path_style is true or false, not \"{value}\""
                        )));
                    }
                };
                path_style.replace(flag).is_some()
            }
            _ => {
                return Err(invalid(format!(
                    "unknown option \"{key}\" in the relay address; s3:// addresses accept \
                     endpoint, region and path_style"
                )));
            }
        };
        if slot_taken {
            return Err(invalid(format!(
                "the option \"{key}\" appears twice in the relay address"
            )));
        }
    }
    Ok(RelayUrl::S3 {
        bucket: bucket.to_owned(),
        prefix,
        endpoint,
        region,
        path_style: path_style.unwrap_or(false),
    })
}

/// Checks an S3 `endpoint` option: an `http(s)://host[:port]` base URL
/// without credentials; returns it without a trailing `/`.
fn parse_endpoint(value: &str) -> Result<String, RelayError> {
    let lower = value.to_ascii_lowercase();
    let Some(after) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return Err(invalid(format!(
            "the endpoint \"{value}\" must start with http:// or https://"
        )));
    };
    let authority = after.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(invalid(
            "the endpoint contains a user name or key; put the S3 keys in the keyring or in \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the address",
        ));
    }
    if authority.is_empty() {
        return Err(invalid(format!("the endpoint \"{value}\" names no server")));
    }
    parse_host_port(authority, HTTP_PORT)?;
    Ok(value.trim_end_matches('/').to_owned())
}

/// `rclone:REMOTE:path`. The remote's name follows rclone's own rules;
/// refusing a leading `-` also keeps the name from ever being read as an
/// option when Escale starts rclone.
fn parse_rclone(rest: &str) -> Result<RelayUrl, RelayError> {
    const FORM: &str = "write an rclone relay address like rclone:REMOTE:folder, with REMOTE \
                        a name from `rclone config`";
    if rest.starts_with("//") {
        return Err(invalid(FORM));
    }
    let Some((remote, path)) = rest.split_once(':') else {
        return Err(invalid(FORM));
    };
    let valid_remote = !remote.is_empty()
        && !remote.starts_with(['-', ' '])
        && !remote.ends_with(' ')
        && remote
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '@' | ' '));
    if !valid_remote {
        return Err(invalid(format!(
            "\"{remote}\" is not an rclone remote name; {FORM}"
        )));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid(
            "the folder in the rclone relay address contains a control character",
        ));
    }
    let trimmed = path.trim_end_matches('/');
    let path = if trimmed.is_empty() && !path.is_empty() {
        "/"
    } else {
        trimmed
    };
    Ok(RelayUrl::Rclone {
        remote: remote.to_owned(),
        path: path.to_owned(),
    })
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is refused
/// rather than kept, so that `%` always means the same thing.
fn decode(text: &str, what: &str) -> Result<String, RelayError> {
    if !text.contains('%') {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = match bytes.get(i + 1..i + 3) {
                Some(&[high, low]) => hex_value(high).zip(hex_value(low)),
                _ => None,
            };
            let Some((high, low)) = hex else {
                return Err(invalid(format!(
                    "{what} in the relay address has a '%' not followed by two hex digits; \
                     write %25 for a '%'"
                )));
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        invalid(format!(
            "{what} in the relay address is not valid UTF-8 once its %XX escapes are decoded"
        ))
    })
}

/// The value of one hex digit, upper or lower case.
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Which characters [`encode`] escapes, by the part of the address.
#[derive(Clone, Copy)]
enum EncodeSet {
    /// A folder path: `/` stays a separator.
    Path,
    /// A user name: `@`, `:` and `/` would end it.
    User,
    /// An option value: `&` and `=` would split it.
    Query,
}

/// Escapes what would change meaning when parsed back. Other characters,
/// non-ASCII letters included, are kept so messages stay readable.
fn encode(text: &str, set: EncodeSet) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let escape = c.is_control()
            || matches!(c, ' ' | '%' | '?' | '#' | '"')
            || match set {
                EncodeSet::Path => false,
                EncodeSet::User => matches!(c, '@' | ':' | '/'),
                EncodeSet::Query => matches!(c, '&' | '='),
            };
        if escape {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RelayUrl {
        RelayUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Asserts a refusal and returns its message for further checks.
    fn refuse(text: &str) -> String {
        match RelayUrl::parse(text) {
            Ok(url) => panic!("{text} was accepted as {url:?}"),
            Err(err) => {
                assert_eq!(err.kind(), RelayErrorKind::InvalidUrl, "{text}: {err}");
                assert!(!err.is_retryable());
                err.to_string()
            }
        }
    }

    fn file(root: &str) -> RelayUrl {
        RelayUrl::File { root: root.into() }
    }

    #[test]
    fn file_addresses_name_absolute_folders() {
        assert_eq!(parse("file:///mnt/share/escale"), file("/mnt/share/escale"));
        assert_eq!(
            parse("file:///mnt/share/escale/"),
            file("/mnt/share/escale")
        );
        assert_eq!(parse("file:///"), file("/"));
        assert_eq!(parse("  FILE:///srv/x\n"), file("/srv/x"));
        assert_eq!(parse("file://localhost/srv/x"), file("/srv/x"));
        assert_eq!(
            parse("file:///mnt/my%20share/%C3%A9t%C3%A9"),
            file("/mnt/my share/été")
        );
        // Unencoded characters are taken as typed, '?' and '#' included.
        assert_eq!(parse("file:///mnt/my share/été"), file("/mnt/my share/été"));
        assert_eq!(parse("file:///mnt/a?b#c"), file("/mnt/a?b#c"));
    }

    #[test]
    fn file_addresses_accept_windows_drives() {
        assert_eq!(parse("file:///C:/Relay"), file("C:/Relay"));
        assert_eq!(
            parse("file:///c:/Relay/Sub%20Folder/"),
            file("c:/Relay/Sub Folder")
        );
        assert_eq!(parse("file:///D:/"), file("D:/"));
        assert_eq!(parse("file:///D:"), file("D:/"));
    }

    #[test]
    fn file_addresses_that_are_not_absolute_local_folders_are_refused() {
        assert!(refuse("file://mnt/share").contains("three slashes"));
        assert!(refuse("file:relative/path").contains("three slashes"));
        assert!(refuse("file:/mnt/share").contains("three slashes"));
        refuse("file://");
        refuse("file://localhost");
        refuse("file:///mnt/%00x");
        assert!(refuse("file:///mnt/100%").contains("%25"));
        refuse("file:///mnt/%zz");
        assert!(refuse("file:///mnt/%FF").contains("UTF-8"));
    }

    #[test]
    fn bare_folders_get_a_hint() {
        assert!(refuse("/mnt/share").contains("file:///mnt/share"));
        assert!(refuse("C:\\Relay").contains("file:///C:/Relay"));
        assert!(refuse("").contains("empty"));
        assert!(refuse("gopher://x/y").contains("gopher"));
    }

    #[test]
    fn ftp_addresses() {
        assert_eq!(
            parse("ftp://ana@files.example.com:2121/escale/reports"),
            RelayUrl::Ftp {
                host: "files.example.com".into(),
                port: 2121,
                user: Some("ana".into()),
                path: "/escale/reports".into(),
            }
        );
        assert_eq!(
            parse("ftp://127.0.0.1"),
            RelayUrl::Ftp {
                host: "127.0.0.1".into(),
                port: 21,
                user: None,
                path: "/".into(),
            }
        );
        assert_eq!(
            parse("FTPS://Ana%20B@Files.Example.COM/a//b/"),
            RelayUrl::Ftps {
                host: "files.example.com".into(),
                port: 21,
                user: Some("Ana B".into()),
                path: "/a/b".into(),
            }
        );
        assert_eq!(
            parse("ftp://[::1]:2121/x"),
            RelayUrl::Ftp {
                host: "::1".into(),
                port: 2121,
                user: None,
                path: "/x".into(),
            }
        );
    }

    #[test]
    fn webdav_addresses_in_all_four_spellings() {
        let dav = |https, port, path: &str| RelayUrl::WebDav {
            https,
            host: "cloud.example.com".into(),
            port,
            user: Some("ana@example.com".into()),
            path: path.into(),
        };
        assert_eq!(
            parse("webdav://ana%40example.com@cloud.example.com/dav"),
            dav(false, 80, "/dav")
        );
        assert_eq!(
            parse("webdavs://ana@example.com@cloud.example.com/dav"),
            dav(true, 443, "/dav")
        );
        assert_eq!(
            parse("http://ana@example.com@cloud.example.com:8080/dav"),
            dav(false, 8080, "/dav")
        );
        assert_eq!(
            parse(
                "https://ana@example.com@cloud.example.com/remote.php/dav/files/ana/Escale%20Relay"
            ),
            dav(true, 443, "/remote.php/dav/files/ana/Escale Relay")
        );
    }

    #[test]
    fn sftp_addresses() {
        assert_eq!(
            parse("sftp://ana@10.0.0.5:2222/srv/escale"),
            RelayUrl::Sftp {
                host: "10.0.0.5".into(),
                port: 2222,
                user: Some("ana".into()),
                path: "/srv/escale".into(),
            }
        );
        assert_eq!(
            parse("sftp://host:/srv"),
            RelayUrl::Sftp {
                host: "host".into(),
                port: 22,
                user: None,
                path: "/srv".into(),
            }
        );
    }

    #[test]
    fn passwords_are_refused_everywhere() {
        for text in [
            "ftp://ana:secret@host/x",
            "ftps://ana:@host/x",
            "webdav://ana:secret@host/x",
            "webdavs://ana:s%40cret@host/x",
            "https://ana:secret@host/x",
            "sftp://ana:secret@host/x",
        ] {
            let message = refuse(text);
            assert!(
                message.contains("ESCALE_RELAY_PASSWORD"),
                "{text}: {message}"
            );
            assert!(
                !message.contains("secret"),
                "{text}: the message repeats the password"
            );
        }
        let message = refuse("s3://AKIA:secret@bucket/x");
        assert!(message.contains("AWS_ACCESS_KEY_ID") && !message.contains("secret"));
        let message = refuse("s3://bucket?endpoint=http://AKIA:secret@host:9000");
        assert!(message.contains("AWS_ACCESS_KEY_ID") && !message.contains("secret"));
    }

    #[test]
    fn malformed_server_addresses_are_refused() {
        for text in [
            "ftp:host/x",
            "ftp://",
            "ftp:///x",
            "ftp://@host/x",
            "ftp://host:0/x",
            "ftp://host:65536/x",
            "ftp://host:21a/x",
            "ftp://host:+21/x",
            "ftp://::1/x",
            "ftp://[::1/x",
            "ftp://[::1]x/x",
            "ftp://[zz]/x",
            "ftp://ho st/x",
            "ftp://host/a/../b",
            "ftp://host/a/%2E%2E/b",
            "ftp://host/a/./b",
            "ftp://host/a%0Ab",
            "ftp://host/x%",
            "webdav://host/x?opt=1",
            "webdav://host/x#frag",
            "sftp://host/x%0D%0ADELE%20y",
        ] {
            refuse(text);
        }
    }

    #[test]
    fn s3_addresses_with_options() {
        assert_eq!(
            parse(
                "s3://escale-relay/teams/reports?endpoint=http://127.0.0.1:8333&region=us-east-1&path_style=true"
            ),
            RelayUrl::S3 {
                bucket: "escale-relay".into(),
                prefix: "teams/reports".into(),
                endpoint: Some("http://127.0.0.1:8333".into()),
                region: Some("us-east-1".into()),
                path_style: true,
            }
        );
        assert_eq!(
            parse("s3://bucket"),
            RelayUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new(),
                endpoint: None,
                region: None,
                path_style: false,
            }
        );
        assert_eq!(
            parse("s3://bucket/a%20b/?endpoint=https%3A%2F%2Fs3.example.com%2F&path_style=false&"),
            RelayUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a b".into(),
                endpoint: Some("https://s3.example.com".into()),
                region: None,
                path_style: false,
            }
        );
    }

    #[test]
    fn malformed_s3_addresses_are_refused() {
        assert!(refuse("s3://bucket?colour=blue").contains("colour"));
        assert!(refuse("s3://bucket?region=a&region=b").contains("twice"));
        assert!(refuse("s3://localhost:9000/bucket").contains("endpoint="));
        for text in [
            "s3:bucket",
            "s3://",
            "s3://ab",
            "s3://Bucket",
            "s3://bucket?endpoint=ftp://host",
            "s3://bucket?endpoint=http://",
            "s3://bucket?endpoint=",
            "s3://bucket?region",
            "s3://bucket?region=eu%20west",
            "s3://bucket?path_style=yes",
            "s3://bucket/a/../b",
            "s3://bucket/x#y",
        ] {
            refuse(text);
        }
    }

    #[test]
    fn rclone_addresses() {
        assert_eq!(
            parse("rclone:gdrive:Escale/Reports"),
            RelayUrl::Rclone {
                remote: "gdrive".into(),
                path: "Escale/Reports".into(),
            }
        );
        assert_eq!(
            parse("rclone:my remote.2:/abs/path/"),
            RelayUrl::Rclone {
                remote: "my remote.2".into(),
                path: "/abs/path".into(),
            }
        );
        assert_eq!(
            parse("rclone:b2:"),
            RelayUrl::Rclone {
                remote: "b2".into(),
                path: String::new(),
            }
        );
        for text in [
            "rclone:gdrive",
            "rclone::path",
            "rclone:-config=/etc/x:path",
            "rclone: gdrive:path",
            "rclone://gdrive/path",
            "rclone:g/drive:path",
            "rclone:gdrive:a\nb",
        ] {
            refuse(text);
        }
    }

    #[test]
    fn canonical_form_parses_back_to_the_same_address() {
        for text in [
            "file:///mnt/share/escale",
            "file:///mnt/my%20share/été%25/a%3Fb",
            "file:///C:/Relay",
            "ftp://ana@files.example.com:2121/escale/reports",
            "ftp://files.example.com",
            "ftps://[::1]:990/x",
            "webdav://host:8080/dav",
            "webdavs://ana%40example.com@cloud.example.com/remote.php/dav/files/ana",
            "sftp://ana@host/srv/escale%20relay",
            "s3://bucket/teams/reports?endpoint=http://127.0.0.1:8333&region=us-east-1&path_style=true",
            "s3://bucket",
            "rclone:gdrive:Escale/Reports",
        ] {
            let url = parse(text);
            assert_eq!(url.to_string(), text, "not canonical");
            assert_eq!(parse(&url.to_string()), url);
        }
        // Spellings that normalise.
        assert_eq!(parse("https://HOST:443/a/").to_string(), "webdavs://host/a");
        assert_eq!(parse("ftp://host:21//a//b/").to_string(), "ftp://host/a/b");
        assert_eq!(
            "sftp://h/x".parse::<RelayUrl>().unwrap().kind_name(),
            "SFTP"
        );
    }
}
