//! Paths of files and folders inside a synced folder, as relay records carry
//! them.
//!
//! A [`RelPath`] is checked once, when it is made, against the rules of every
//! platform Escale runs on, because a record written on Linux is applied on
//! Windows and macOS too: a name one of them cannot hold, or that would mean
//! something else there (a device, a drive, a parent folder), is refused
//! everywhere. Refusing it only where it breaks would let one client publish
//! files the others can never receive. Records come from other computers, so
//! this is also the guard that keeps a tampered record from writing outside
//! the synced folder (design invariant 9).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Name of the engine's hidden work folder at the top of every synced folder
/// (state, temporary downloads, versions of overwritten files). It is never
/// synced, and no record may name a path inside it.
pub(crate) const WORK_FOLDER: &str = ".escale";

/// Longest name allowed, in UTF-8 bytes: the limit of ext4, APFS and most
/// other filesystems (NTFS counts 255 UTF-16 units, which bytes never exceed).
const MAX_NAME_BYTES: usize = 255;

/// Longest whole path allowed, in UTF-8 bytes: Linux's `PATH_MAX`.
const MAX_PATH_BYTES: usize = 4096;

/// Characters Windows refuses in names (besides the separators and control
/// characters, which have their own errors).
const WINDOWS_FORBIDDEN: [char; 7] = ['<', '>', ':', '"', '|', '?', '*'];

/// A validated path of a file or folder inside a synced folder: relative,
/// '/'-separated, UTF-8, and valid as a name on Windows, macOS and Linux.
///
/// Ordering is byte-wise on the text, so sorting is the same on every
/// platform; it is not a tree order (`a-b` sorts before `a/b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct RelPath(String);

impl RelPath {
    /// Checks `path` and wraps it; see [`PathError`] for what is refused.
    pub(crate) fn new(path: &str) -> Result<RelPath, PathError> {
        validate(path)?;
        Ok(RelPath(path.to_owned()))
    }

    /// The path as written in relay records.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The names from the top folder down to the file; never empty.
    pub(crate) fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The folder holding this path, or `None` for a top-level name.
    pub(crate) fn parent(&self) -> Option<RelPath> {
        // A prefix of a valid path made of whole components is valid too, so
        // it needs no second check.
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| RelPath(parent.to_owned()))
    }

    /// The last name of the path.
    pub(crate) fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// This path with `name` appended. `name` is usually one name, but may
    /// hold several '/'-separated ones; the result is checked as a whole.
    pub(crate) fn join(&self, name: &str) -> Result<RelPath, PathError> {
        RelPath::new(&format!("{}/{name}", self.0))
    }

    /// Where this path lives under the local folder `root`.
    ///
    /// Validation guarantees every component is a plain name, so the result
    /// is always inside `root` as far as the text of the path goes. (Symbolic
    /// links on disk are another matter: [`crate::scan::stat`] checks those.)
    pub(crate) fn to_local(&self, root: &Path) -> PathBuf {
        let mut local = root.to_path_buf();
        local.extend(self.components());
        local
    }

    /// The path of the local file `path` relative to the synced folder
    /// `root`; the inverse of [`RelPath::to_local`].
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn from_local(root: &Path, path: &Path) -> Result<RelPath, PathError> {
        let outside = || PathError::Outside {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        };
        let relative = path.strip_prefix(root).map_err(|_| outside())?;
        let mut text = String::with_capacity(relative.as_os_str().len());
        for component in relative.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::CurDir => continue,
                // `strip_prefix` compares components without resolving "..",
                // so "root/../x" leaves "../x": outside, not a bad name.
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(outside());
                }
            };
            let name = name.to_str().ok_or_else(|| PathError::NotUtf8 {
                path: path.to_path_buf(),
            })?;
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(name);
        }
        RelPath::new(&text)
    }

    /// A key equal for two paths that a case-insensitive or
    /// Unicode-normalizing filesystem (Windows, macOS) would store as the same
    /// file, such as `Report.docx` and `report.DOCX`, or `café` written
    /// precomposed and decomposed. The engine compares keys to report such
    /// names as a conflict instead of letting one overwrite the other.
    ///
    /// It is a heuristic of the filesystems' rules, erring towards reporting
    /// a clash: names are normalized to NFC, case-folded one character at a
    /// time (so `ß` and `ss` stay different, as on every filesystem), and
    /// stripped of the invisible characters HFS+ ignores in names.
    pub(crate) fn collision_key(&self) -> String {
        collision_key(&self.0)
    }

    /// Whether this path is strictly inside the folder `dir` (a path is not
    /// under itself). Comparison is exact, as for equality.
    pub(crate) fn is_under(&self, dir: &RelPath) -> bool {
        self.0
            .strip_prefix(dir.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RelPath {
    type Error = PathError;

    /// Lets deserialization validate without copying the text again.
    fn try_from(path: String) -> Result<RelPath, PathError> {
        validate(&path)?;
        Ok(RelPath(path))
    }
}

/// Why a path was refused. Every message names the path (and the offending
/// name within it where there is one), quoted with control characters
/// escaped so that a hostile path cannot garble a log or terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// The path has no characters at all.
    #[error("the path is empty")]
    Empty,

    /// The path starts at a filesystem root instead of inside the synced
    /// folder: `/etc`, `\\server\share`, `\x`, or a drive such as `C:`.
    #[error(
        "the path {} is absolute (it starts with '/', '\\' or a drive letter); \
         only paths inside the synced folder are allowed",
        quoted(path)
    )]
    Absolute {
        /// The refused path.
        path: String,
    },

    /// A ".." component, which would climb out of its folder.
    #[error(
        "the path {} contains \"..\", which could point outside the synced folder",
        quoted(path)
    )]
    ParentComponent {
        /// The refused path.
        path: String,
    },

    /// A "." component or an empty one ("a//b", a trailing '/'): the same
    /// file would have several spellings.
    #[error(
        "the path {} contains an empty name or \".\" (as in \"a//b\", \"a/./b\" \
         or a trailing '/')",
        quoted(path)
    )]
    CurrentComponent {
        /// The refused path.
        path: String,
    },

    /// A NUL character, which ends strings in operating system calls.
    #[error("the path {} contains a NUL character", quoted(path))]
    Nul {
        /// The refused path.
        path: String,
    },

    /// A backslash, which Windows takes as a folder separator.
    #[error(
        "the path {} contains a backslash '\\', which Windows takes as a folder separator",
        quoted(path)
    )]
    Backslash {
        /// The refused path.
        path: String,
    },

    /// An ASCII control character (tab, newline, escape, delete, ...).
    #[error("the path {} contains a control character", quoted(path))]
    ControlCharacter {
        /// The refused path.
        path: String,
    },

    /// One of the characters Windows refuses in names: `< > : " | ? *`.
    #[error(
        "the name {} in {} contains {:?}, a character Windows does not allow in names",
        quoted(name),
        quoted(path),
        character
    )]
    ForbiddenCharacter {
        /// The refused path.
        path: String,
        /// The name within it holding the character.
        name: String,
        /// The first forbidden character of that name.
        character: char,
    },

    /// A Windows device name (`CON`, `aux.txt`, `COM1`, ...), which opens
    /// the device instead of a file on Windows.
    #[error(
        "the name {} in {} is reserved for a device on Windows",
        quoted(name),
        quoted(path)
    )]
    ReservedName {
        /// The refused path.
        path: String,
        /// The reserved name within it.
        name: String,
    },

    /// A name ending in '.' or ' ', which Windows silently strips, so two
    /// different names would become one file there.
    #[error(
        "the name {} in {} ends with a dot or a space, which Windows removes",
        quoted(name),
        quoted(path)
    )]
    TrailingDotOrSpace {
        /// The refused path.
        path: String,
        /// The name within it.
        name: String,
    },

    /// A name over 255 bytes or a whole path over 4096 bytes (UTF-8).
    #[error("{}", too_long_message(path, name.as_deref(), *bytes, *limit))]
    TooLong {
        /// The refused path, shortened to its beginning when very long so a
        /// hostile record cannot make a huge message.
        path: String,
        /// The name that is too long, shortened likewise, or `None` when the
        /// whole path is.
        name: Option<String>,
        /// Length of the offending name or path, in bytes.
        bytes: usize,
        /// The limit it exceeds, in bytes.
        limit: usize,
    },

    /// A local name that is not valid UTF-8 (possible on Linux), which other
    /// systems could not represent.
    #[error(
        "the name of {} is not valid UTF-8 text, so it cannot be synced",
        path.display()
    )]
    #[cfg_attr(not(test), allow(dead_code))]
    NotUtf8 {
        /// The local file.
        path: PathBuf,
    },

    /// A local path that is not inside the synced folder.
    #[error("{} is not inside the synced folder {}", path.display(), root.display())]
    #[cfg_attr(not(test), allow(dead_code))]
    Outside {
        /// The local path.
        path: PathBuf,
        /// The synced folder.
        root: PathBuf,
    },

    /// A path inside the engine's hidden work folder [`WORK_FOLDER`], under
    /// any spelling a filesystem would take for it.
    #[error(
        "the path {} is inside Escale's work folder \"{WORK_FOLDER}\", which only the \
         engine itself may use",
        quoted(path)
    )]
    WorkFolder {
        /// The refused path.
        path: String,
    },
}

/// The rules of [`PathError`], in an order that reports the most telling
/// problem first (a ".." anywhere before a badly spelled name).
fn validate(path: &str) -> Result<(), PathError> {
    let owned = || path.to_owned();
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    // First, so that a huge hostile string costs nothing more to refuse.
    if path.len() > MAX_PATH_BYTES {
        return Err(too_long(path, None, path.len(), MAX_PATH_BYTES));
    }
    if path.contains('\0') {
        return Err(PathError::Nul { path: owned() });
    }
    if is_absolute(path) {
        return Err(PathError::Absolute { path: owned() });
    }
    if path.contains('\\') {
        return Err(PathError::Backslash { path: owned() });
    }
    if path.chars().any(|c| c.is_ascii_control()) {
        return Err(PathError::ControlCharacter { path: owned() });
    }
    if path.split('/').any(|name| name == "..") {
        return Err(PathError::ParentComponent { path: owned() });
    }
    for name in path.split('/') {
        if name.is_empty() || name == "." {
            return Err(PathError::CurrentComponent { path: owned() });
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(too_long(path, Some(name), name.len(), MAX_NAME_BYTES));
        }
        if let Some(character) = name.chars().find(|c| WINDOWS_FORBIDDEN.contains(c)) {
            return Err(PathError::ForbiddenCharacter {
                path: owned(),
                name: name.to_owned(),
                character,
            });
        }
        if name.ends_with(['.', ' ']) {
            return Err(PathError::TrailingDotOrSpace {
                path: owned(),
                name: name.to_owned(),
            });
        }
        if is_windows_device(name) {
            return Err(PathError::ReservedName {
                path: owned(),
                name: name.to_owned(),
            });
        }
    }
    let first = path.split('/').next().unwrap_or(path);
    if is_work_folder(first) {
        return Err(PathError::WorkFolder { path: owned() });
    }
    Ok(())
}

/// A leading '/' or '\' (root, UNC `\\server`), or a drive prefix `C:`
/// (`C:x` is relative to drive C's current folder, which is just as outside).
fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

/// Windows device names, with or without an extension and in any case.
///
/// Windows looks only at the part before the first dot, ignoring spaces
/// that end it, so `aux.tar.gz` and `con .txt` open devices too. `COM0` and
/// `LPT0` and the superscript digits are in Microsoft's list; `CONIN$` and
/// `CONOUT$` open the console. Windows 11 relaxed some of this, but the
/// other computers may run older versions.
fn is_windows_device(name: &str) -> bool {
    let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
    let stem = stem.trim_end_matches(' ').to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => ["COM", "LPT"].iter().any(|port| {
            stem.strip_prefix(port).is_some_and(|number| {
                let mut chars = number.chars();
                matches!(
                    (chars.next(), chars.next()),
                    (Some('0'..='9' | '¹' | '²' | '³'), None)
                )
            })
        }),
    }
}

/// Whether a first component names the work folder on some filesystem:
/// `.escale` in any case or normalization, with characters HFS+ ignores, or
/// as the 8.3 short name Windows gives it (`ESCALE~1`). Git guards `.git`
/// against the same aliases.
fn is_work_folder(first: &str) -> bool {
    let key = collision_key(first);
    let short_alias = WORK_FOLDER
        .strip_prefix('.')
        .and_then(|bare| key.strip_prefix(bare))
        .and_then(|rest| rest.strip_prefix('~'))
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()));
    key == WORK_FOLDER || short_alias
}

/// See [`RelPath::collision_key`]. Normalizing before folding lets folding
/// see precomposed letters; normalizing again recomposes what folding or the
/// removal of ignored characters split.
fn collision_key(text: &str) -> String {
    nfc(&fold_case(&nfc(text)))
}

/// Case folding one character at a time, as case-insensitive filesystems
/// compare: a character whose upper case is a single character is mapped to
/// that character's lower case, so `ſ` folds with `s` and `ς` with `σ`
/// (close to Unicode's simple case folding). A character whose upper case is
/// several characters (`ß` → `SS`) is only lower-cased, because no
/// filesystem treats `ß` and `ss` as the same name.
fn fold_case(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().filter(|&c| !is_hfs_ignorable(c)) {
        let mut upper = c.to_uppercase();
        let single = match (upper.next(), upper.next()) {
            (Some(u), None) => u,
            _ => c,
        };
        folded.extend(single.to_lowercase());
    }
    folded
}

/// Invisible formatting characters that HFS+ skips when comparing names
/// (the list Git uses to protect `.git` on macOS).
fn is_hfs_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}'
    )
}

/// Unicode canonical composition (NFC): macOS stores names decomposed,
/// Windows and Linux usually composed.
fn nfc(s: &str) -> String {
    unicode_normalization::UnicodeNormalization::nfc(s).collect()
}

/// [`PathError::TooLong`] with the path and name shortened for messages.
fn too_long(path: &str, name: Option<&str>, bytes: usize, limit: usize) -> PathError {
    PathError::TooLong {
        path: shorten(path),
        name: name.map(shorten),
        bytes,
        limit,
    }
}

/// The beginning of `text`, cut at a character boundary, with "…" when cut.
fn shorten(text: &str) -> String {
    const KEEP: usize = 60;
    if text.len() <= KEEP {
        return text.to_owned();
    }
    let mut end = KEEP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The message of [`PathError::TooLong`].
fn too_long_message(path: &str, name: Option<&str>, bytes: usize, limit: usize) -> String {
    match name {
        Some(name) => format!(
            "the name {} in {} is too long: {bytes} bytes, more than the {limit} allowed",
            quoted(name),
            quoted(path)
        ),
        None => format!(
            "the path {} is too long: {bytes} bytes, more than the {limit} allowed",
            quoted(path)
        ),
    }
}

/// `text` in double quotes, with control characters escaped but other
/// characters, accented or not, shown as they are.
fn quoted(text: &str) -> impl fmt::Display + '_ {
    /// The text to show.
    struct Quoted<'a>(&'a str);
    impl fmt::Display for Quoted<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"")?;
            for c in self.0.chars() {
                if c.is_control() {
                    write!(f, "{}", c.escape_default())?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            f.write_str("\"")
        }
    }
    Quoted(text)
}
