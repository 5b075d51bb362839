//! Which SSH servers are trusted: OpenSSH `known_hosts` files, read and
//! matched the way OpenSSH does, and appended to when a server is trusted
//! on first use.
//!
//! A line names hosts, then a key: `relay.example.com ssh-ed25519 AAAA…`.
//! Hosts are written `name` for port 22 and `[name]:port` otherwise, as a
//! comma-separated list of patterns (`*` and `?` wildcards, `!` to
//! exclude), or hashed (`|1|salt|hash`, an HMAC-SHA1 of the name that
//! `HashKnownHosts yes` writes so the file does not reveal which servers
//! one uses). A line may start with a marker: `@revoked` keys are refused
//! wherever they appear; `@cert-authority` lines trust certificate
//! authorities, which Escale does not ask servers for, so they are skipped.
//!
//! Matching is by the key itself, never by comment or position. Lines that
//! do not parse are skipped, as OpenSSH does, so that one odd line written
//! by another tool cannot lock anyone out.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, HashAlg, PublicKey};

/// The prefix of a hashed host field, the only hashing OpenSSH has.
const HASHED_PREFIX: &str = "|1|";

/// The name under which `host` on `port` appears in known-hosts files:
/// bare for the standard port, `[host]:port` otherwise, lower case.
pub(super) fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// How OpenSSH prints a key's fingerprint: `SHA256:` and unpadded base64.
pub(super) fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// One known-hosts file, parsed.
#[derive(Debug, Clone)]
pub(super) struct KnownHostsFile {
    /// Where it was read from, for messages.
    path: PathBuf,
    /// Its usable lines.
    entries: Vec<Entry>,
}

/// A usable line of a known-hosts file.
#[derive(Debug, Clone)]
struct Entry {
    /// The line's number, from 1, for messages that say what to edit.
    line: usize,
    /// Whether the line is `@revoked`.
    revoked: bool,
    /// Which hosts the line is about.
    hosts: Hosts,
    /// The key.
    key: KeyData,
}

/// The host field of a line.
#[derive(Debug, Clone)]
enum Hosts {
    /// `|1|salt|hash`: the HMAC-SHA1 of the lookup name keyed by the salt.
    Hashed {
        /// The HMAC key.
        salt: Vec<u8>,
        /// The expected HMAC.
        hash: Vec<u8>,
    },
    /// Patterns, lower case; `true` for a negated (`!`) one.
    Patterns(Vec<(bool, String)>),
}

impl Hosts {
    /// Parses a host field; `None` when it cannot be understood.
    fn parse(field: &str) -> Option<Hosts> {
        if let Some(rest) = field.strip_prefix(HASHED_PREFIX) {
            let (salt, hash) = rest.split_once('|')?;
            let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
            return Some(Hosts::Hashed {
                salt: decode(salt)?,
                hash: decode(hash)?,
            });
        }
        let patterns: Vec<(bool, String)> = field
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix('!') {
                Some(negated) => (true, negated.to_ascii_lowercase()),
                None => (false, p.to_ascii_lowercase()),
            })
            .collect();
        (!patterns.is_empty()).then_some(Hosts::Patterns(patterns))
    }

    /// Whether the field names `name` (a [`lookup_name`]).
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                // As in OpenSSH: a matching negated pattern excludes the
                // host whatever else matches.
                let mut found = false;
                for (negated, pattern) in patterns {
                    if wildcard_match(pattern, name) {
                        if *negated {
                            return false;
                        }
                        found = true;
                    }
                }
                found
            }
        }
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of
/// characters and `?` for one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Greedy matching with a single backtrack point, enough for `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

impl KnownHostsFile {
    /// Reads `path`; a missing file is an empty one, since most of these
    /// files only exist once something was written to them.
    pub(super) fn read(path: &Path) -> io::Result<KnownHostsFile> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(KnownHostsFile::parse(
                path,
                &String::from_utf8_lossy(&bytes),
            )),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(KnownHostsFile {
                path: path.to_path_buf(),
                entries: Vec::new(),
            }),
            Err(err) => Err(err),
        }
    }

    /// Parses the text of a file read from `path`.
    pub(super) fn parse(path: &Path, text: &str) -> KnownHostsFile {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| parse_line(index + 1, line))
            .collect();
        KnownHostsFile {
            path: path.to_path_buf(),
            entries,
        }
    }
}

/// One line, or `None` for blank lines, comments, certificate authorities
/// and anything unreadable.
fn parse_line(number: usize, line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut hosts = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = hosts.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // Certificate authorities, or a marker from a later OpenSSH.
            _ => return None,
        }
        hosts = fields.next()?;
    }
    let hosts = Hosts::parse(hosts)?;
    let algorithm = fields.next()?;
    let encoded = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{algorithm} {encoded}")).ok()?;
    Some(Entry {
        line: number,
        revoked,
        hosts,
        key: key.key_data().clone(),
    })
}

/// Where in which file a key was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    /// The file.
    pub(super) path: PathBuf,
    /// The line, from 1.
    pub(super) line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, line {}", self.path.display(), self.line)
    }
}

/// What the known-hosts files say about a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A line names this host with this key.
    Known(Place),
    /// Lines name this host, with other keys only: the server's identity
    /// changed, or someone is impersonating it.
    Changed {
        /// The first line with another key.
        place: Place,
        /// That line's key's fingerprint.
        known_fingerprint: String,
    },
    /// The key is marked `@revoked`.
    Revoked(Place),
    /// No line names this host.
    Unknown,
}

/// Judges `key`, presented by the server known as `name` (a
/// [`lookup_name`]), against `files`, all of them together.
pub(super) fn check(files: &[KnownHostsFile], name: &str, key: &KeyData) -> Verdict {
    let mut other_key = None;
    let mut known = None;
    for file in files {
        for entry in &file.entries {
            let place = || Place {
                path: file.path.clone(),
                line: entry.line,
            };
            if entry.revoked {
                // A revoked key is refused for every host, as in OpenSSH.
                if &entry.key == key {
                    return Verdict::Revoked(place());
                }
                continue;
            }
            if !entry.hosts.matches(name) {
                continue;
            }
            if &entry.key == key {
                known.get_or_insert_with(place);
            } else if other_key.is_none() {
                other_key = Some((place(), fingerprint(&entry.key)));
            }
        }
    }
    match (known, other_key) {
        (Some(place), _) => Verdict::Known(place),
        (None, Some((place, known_fingerprint))) => Verdict::Changed {
            place,
            known_fingerprint,
        },
        (None, None) => Verdict::Unknown,
    }
}

/// The algorithms of the keys `files` hold for `name`, so that the server
/// is asked for a key of a kind already known: a server usually has keys
/// of several kinds, and being shown another kind than the one recorded
/// would look like a changed key.
pub(super) fn known_algorithms(files: &[KnownHostsFile], name: &str) -> Vec<Algorithm> {
    let mut algorithms = Vec::new();
    for entry in files.iter().flat_map(|f| &f.entries) {
        if entry.revoked || !entry.hosts.matches(name) {
            continue;
        }
        let algorithm = entry.key.algorithm();
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    algorithms
}

/// Records `key` for `name` at the end of the file at `path`, creating the
/// file and its folder when missing. One `write` call in append mode, so
/// that two processes recording at once cannot interleave their lines.
pub(super) fn append(path: &Path, name: &str, key: &KeyData) -> io::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    let encoded = PublicKey::new(key.clone(), "")
        .to_openssh()
        .map_err(io::Error::other)?;
    let mut line = format!("{name} {encoded}\n");
    // A file whose last line lacks its newline would glue ours onto it.
    if let Ok(existing) = std::fs::read(path)
        && existing.last().is_some_and(|&b| b != b'\n')
    {
        line.insert(0, '\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Test keys made with `ssh-keygen`.
    pub(crate) const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILnuoPYAbvGLpFZQ0CLQW654Rk9+Z8IoJxapLR71JeRD";
    /// See [`KEY_A`].
    pub(crate) const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP/KS+WJtAwMoqAxKyb8s/VQIeR07F5c9Fkwb5idxFq/";
    /// See [`KEY_A`].
    const KEY_C: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAB\
        BBKaGH5JmIqMSygWJlfXKzSehoXE9UZoF2BvY/3kNeusxcT3JHwWS28Az9olzrXf1izM0jZHJUScBQt5zcoOvf2U=";
    /// `ssh-keygen -l -E sha256` of [`KEY_A`].
    const KEY_A_FINGERPRINT: &str = "SHA256:4mnWZioryT4WQGDr9RYFSFu5Jms/xF3c6w6BxuPGLTs";

    /// The key of one of the constants above.
    pub(crate) fn key(text: &str) -> KeyData {
        PublicKey::from_openssh(text).unwrap().key_data().clone()
    }

    fn file(text: &str) -> KnownHostsFile {
        KnownHostsFile::parse(Path::new("/home/ana/.ssh/known_hosts"), text)
    }

    #[test]
    fn lookup_names_follow_openssh() {
        assert_eq!(lookup_name("Relay.Example.COM", 22), "relay.example.com");
        assert_eq!(lookup_name("10.0.0.5", 2222), "[10.0.0.5]:2222");
        assert_eq!(lookup_name("::1", 2222), "[::1]:2222");
    }

    #[test]
    fn fingerprints_read_like_ssh_keygen() {
        assert_eq!(fingerprint(&key(KEY_A)), KEY_A_FINGERPRINT);
    }

    #[test]
    fn plain_entries_match_by_name_and_key() {
        let files = [file(&format!(
            "# a comment\n\nother.example.com {KEY_B}\nrelay.example.com,10.0.0.5 {KEY_A} ana@laptop\n"
        ))];
        let known = Verdict::Known(Place {
            path: "/home/ana/.ssh/known_hosts".into(),
            line: 4,
        });
        assert_eq!(
            check(&files, &lookup_name("relay.example.com", 22), &key(KEY_A)),
            known
        );
        assert_eq!(
            check(&files, &lookup_name("10.0.0.5", 22), &key(KEY_A)),
            known
        );
        assert_eq!(
            check(&files, "unknown.example.com", &key(KEY_A)),
            Verdict::Unknown
        );
        // A non-standard port is another server for OpenSSH.
        assert_eq!(
            check(&files, &lookup_name("relay.example.com", 2222), &key(KEY_A)),
            Verdict::Unknown
        );
    }

    #[test]
    fn bracketed_ports_match_only_their_port() {
        let files = [file(&format!("[10.0.0.5]:2222 {KEY_A}\n"))];
        assert!(matches!(
            check(&files, &lookup_name("10.0.0.5", 2222), &key(KEY_A)),
            Verdict::Known(_)
        ));
        assert_eq!(
            check(&files, &lookup_name("10.0.0.5", 22), &key(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(
            check(&files, &lookup_name("10.0.0.5", 2223), &key(KEY_A)),
            Verdict::Unknown
        );
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen_match() {
        // `ssh-keygen -H` of "relay.example.com KEY_A" and
        // "[10.0.0.5]:2222 KEY_A".
        let files = [file(&format!(
            "|1|dlbXD3pkqxk5rI2m0qHaNUFrpJ8=|L7LbIDQzzD5hrUpZYpM+Zxkhb+Y= {KEY_A}\n\
             |1|v00Zlz9r14d2NCacKDrlEdx9z40=|C12uP2b383QJCZiD9cG3Xpe57Wk= {KEY_A}\n"
        ))];
        let at_line = |line| {
            Verdict::Known(Place {
                path: "/home/ana/.ssh/known_hosts".into(),
                line,
            })
        };
        assert_eq!(
            check(&files, &lookup_name("relay.example.com", 22), &key(KEY_A)),
            at_line(1)
        );
        assert_eq!(
            check(&files, &lookup_name("RELAY.example.com", 22), &key(KEY_A)),
            at_line(1)
        );
        assert_eq!(
            check(&files, &lookup_name("10.0.0.5", 2222), &key(KEY_A)),
            at_line(2)
        );
        assert_eq!(
            check(&files, &lookup_name("10.0.0.5", 22), &key(KEY_A)),
            Verdict::Unknown
        );
        let changed = check(&files, &lookup_name("relay.example.com", 22), &key(KEY_B));
        assert!(matches!(changed, Verdict::Changed { .. }), "{changed:?}");
    }

    #[test]
    fn another_key_for_a_known_host_is_a_change() {
        let files = [
            file(&format!("relay.example.com {KEY_A}\n")),
            KnownHostsFile::parse(
                Path::new("/etc/escale/known_hosts"),
                &format!("other.example.com {KEY_B}\n"),
            ),
        ];
        assert_eq!(
            check(&files, "relay.example.com", &key(KEY_B)),
            Verdict::Changed {
                place: Place {
                    path: "/home/ana/.ssh/known_hosts".into(),
                    line: 1
                },
                known_fingerprint: KEY_A_FINGERPRINT.into(),
            }
        );
        // Any line with the right key wins over lines with other keys: a
        // host may be listed once per key kind, or in several files.
        let files = [
            file(&format!("relay.example.com {KEY_C}\n")),
            file(&format!("relay.example.com {KEY_A}\n")),
        ];
        assert!(matches!(
            check(&files, "relay.example.com", &key(KEY_A)),
            Verdict::Known(_)
        ));
    }

    #[test]
    fn wildcards_and_negations_follow_openssh() {
        let files = [file(&format!(
            "*.example.com,!secret.example.com {KEY_A}\n[relay?.lan]:2222 {KEY_A}\n"
        ))];
        let known = |name: &str| matches!(check(&files, name, &key(KEY_A)), Verdict::Known(_));
        assert!(known("relay.example.com"));
        assert!(known("a.b.example.com"));
        assert!(!known("secret.example.com"));
        assert!(!known("example.com"));
        assert!(known("[relay1.lan]:2222"));
        assert!(!known("[relay12.lan]:2222"));
        assert!(!known("relay1.lan"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "aXXc"));
    }

    #[test]
    fn revoked_keys_are_refused_and_authorities_skipped() {
        let files = [file(&format!(
            "@revoked * {KEY_B}\n@cert-authority *.example.com {KEY_A}\nrelay.example.com {KEY_B}\n"
        ))];
        assert!(matches!(
            check(&files, "relay.example.com", &key(KEY_B)),
            Verdict::Revoked(Place { line: 1, .. })
        ));
        // The certificate authority's line says nothing about plain keys.
        assert!(matches!(
            check(&files, "relay.example.com", &key(KEY_A)),
            Verdict::Changed { .. }
        ));
        assert_eq!(
            check(&files, "other.example.com", &key(KEY_A)),
            Verdict::Unknown
        );
    }

    #[test]
    fn unreadable_lines_are_skipped() {
        let files = [file(&format!(
            "garbage\nhost ssh-ed25519 not-base64\n|1|bad {KEY_A}\n@revoked\n\
             relay.example.com {KEY_A}\n"
        ))];
        assert!(matches!(
            check(&files, "relay.example.com", &key(KEY_A)),
            Verdict::Known(Place { line: 5, .. })
        ));
    }

    #[test]
    fn known_algorithms_list_the_kinds_recorded_for_the_host() {
        let files = [file(&format!(
            "relay.example.com {KEY_C}\nrelay.example.com {KEY_A}\nother {KEY_B}\n"
        ))];
        assert_eq!(
            known_algorithms(&files, "relay.example.com"),
            [key(KEY_C).algorithm(), Algorithm::Ed25519]
        );
        assert!(known_algorithms(&files, "nobody").is_empty());
    }

    #[test]
    fn appended_keys_are_read_back_by_us_and_by_openssh_form() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config/known_hosts");
        let name = lookup_name("10.0.0.5", 2222);
        assert_eq!(
            check(&[KnownHostsFile::read(&path).unwrap()], &name, &key(KEY_A)),
            Verdict::Unknown
        );
        append(&path, &name, &key(KEY_A)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("[10.0.0.5]:2222 {KEY_A}\n")
        );
        // A last line without its newline is not glued to ours.
        std::fs::write(&path, format!("relay.example.com {KEY_B}")).unwrap();
        append(&path, &name, &key(KEY_A)).unwrap();
        let files = [KnownHostsFile::read(&path).unwrap()];
        assert!(matches!(
            check(&files, &name, &key(KEY_A)),
            Verdict::Known(Place { line: 2, .. })
        ));
        assert!(matches!(
            check(&files, "relay.example.com", &key(KEY_B)),
            Verdict::Known(Place { line: 1, .. })
        ));
    }
}
