//! Which paths travel: everything but the files that must never be synced
//! (office lock files, system litter, temporary files) and what the
//! folder's `.escaleignore` lists, in gitignore syntax.
//!
//! A path that is excluded is neither sent nor received, and its absence
//! is not a deletion: one computer's exclusions never delete anything on
//! another.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::config::{RepositoryConfig, RuleMode, SyncMode};
use crate::path::RelPath;

/// The file at the top of a synced folder that lists more exclusions; it
/// is synced itself, so every computer shares the same rules.
pub(crate) const IGNORE_FILE: &str = ".escaleignore";

/// Never synced: files that belong to one computer or one moment.
const DEFAULT_EXCLUDES: &[&str] = &[
    // Microsoft Office and LibreOffice lock files (open documents).
    "~$*",
    ".~lock.*#",
    // Windows and macOS folder litter.
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    ".DS_Store",
    "._*",
    "$RECYCLE.BIN/",
    "System Volume Information/",
    ".Trash-*/",
    // Temporary and partial files of editors and browsers.
    "*.tmp",
    "~*.tmp",
    "*.swp",
    "*~",
    "*.crdownload",
    "*.part",
];

/// Which paths of one synced folder travel, and which way.
#[derive(Debug)]
pub(crate) struct Filter {
    /// Built-in exclusions, the settings' `exclude` and `.escaleignore`.
    excludes: Gitignore,
    /// The settings' `include`; `None` when empty (everything is included).
    includes: Option<Gitignore>,
    /// The per-path rules, in order: the last one matching wins.
    rules: Vec<(Gitignore, RuleMode)>,
    /// The repository's mode, for paths no rule matches.
    mode: SyncMode,
}

/// Checks that `pattern` is valid gitignore syntax.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    let mut builder = GitignoreBuilder::new("");
    builder
        .add_line(None, pattern)
        .map_err(|error| error.to_string())?;
    builder
        .build()
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Builds a matcher from patterns already validated with the settings.
fn matcher<'a>(root: &Path, patterns: impl IntoIterator<Item = &'a str>) -> Gitignore {
    let mut builder = GitignoreBuilder::new(root);
    for pattern in patterns {
        // Validated when the settings were loaded; the built-in patterns
        // are covered by the tests below.
        let _ = builder.add_line(None, pattern);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

impl Filter {
    /// The rules of `settings` for its folder: built-in exclusions, the
    /// settings' patterns and rules, and the folder's `.escaleignore`. A
    /// line of `.escaleignore` it cannot understand is skipped and returned
    /// as a warning.
    pub(crate) fn load(settings: &RepositoryConfig) -> (Filter, Vec<String>) {
        let folder = settings.folder.as_path();
        let mut builder = GitignoreBuilder::new(folder);
        for pattern in DEFAULT_EXCLUDES
            .iter()
            .copied()
            .chain(settings.exclude.iter().map(String::as_str))
        {
            let _ = builder.add_line(None, pattern);
        }
        let mut warnings = Vec::new();
        let file = folder.join(IGNORE_FILE);
        if file.is_file()
            && let Some(error) = builder.add(&file)
        {
            warnings.push(format!("{IGNORE_FILE}: {error}"));
        }
        let excludes = builder.build().unwrap_or_else(|error| {
            warnings.push(format!("{IGNORE_FILE}: {error}"));
            matcher(folder, DEFAULT_EXCLUDES.iter().copied())
        });
        let includes = (!settings.include.is_empty())
            .then(|| matcher(folder, settings.include.iter().map(String::as_str)));
        let rules = settings
            .rules
            .iter()
            .map(|rule| (matcher(folder, [rule.path.as_str()]), rule.mode))
            .collect();
        (
            Filter {
                excludes,
                includes,
                rules,
                mode: settings.mode,
            },
            warnings,
        )
    }

    /// The built-in exclusions only, everything else sent and received.
    pub(crate) fn defaults() -> Filter {
        Filter {
            excludes: matcher(Path::new(""), DEFAULT_EXCLUDES.iter().copied()),
            includes: None,
            rules: Vec::new(),
            mode: SyncMode::SendReceive,
        }
    }

    /// What happens to `path` (a folder when `is_dir`).
    pub(crate) fn mode(&self, path: &RelPath, is_dir: bool) -> RuleMode {
        let at = Path::new(path.as_str());
        let matches = |rules: &Gitignore| rules.matched_path_or_any_parents(at, is_dir).is_ignore();
        if matches(&self.excludes) || self.includes.as_ref().is_some_and(|inc| !matches(inc)) {
            return RuleMode::Ignore;
        }
        if let Some((_, mode)) = self.rules.iter().rev().find(|(rules, _)| matches(rules)) {
            return *mode;
        }
        match self.mode {
            SyncMode::SendReceive => RuleMode::SendReceive,
            SyncMode::SendOnly => RuleMode::SendOnly,
            SyncMode::ReceiveOnly => RuleMode::ReceiveOnly,
        }
    }

    /// Whether `path` stays on this computer: neither sent nor received,
    /// and its absence is not a deletion.
    #[cfg(test)]
    pub(crate) fn excludes(&self, path: &RelPath, is_dir: bool) -> bool {
        self.mode(path, is_dir) == RuleMode::Ignore
    }

    /// Whether changes made here to `path` are sent.
    pub(crate) fn sends(&self, path: &RelPath, is_dir: bool) -> bool {
        matches!(
            self.mode(path, is_dir),
            RuleMode::SendReceive | RuleMode::SendOnly
        )
    }

    /// Whether changes made elsewhere to `path` are applied here.
    pub(crate) fn receives(&self, path: &RelPath, is_dir: bool) -> bool {
        matches!(
            self.mode(path, is_dir),
            RuleMode::SendReceive | RuleMode::ReceiveOnly
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(filter: &Filter, path: &str) -> bool {
        filter.excludes(&RelPath::new(path).unwrap(), false)
    }

    #[test]
    fn lock_files_litter_and_temporaries_never_travel() {
        let filter = Filter::defaults();
        for path in [
            "~$report.docx",
            "docs/~$budget.xlsx",
            ".~lock.report.odt#",
            "Thumbs.db",
            "photos/desktop.ini",
            ".DS_Store",
            "draft.tmp",
            "notes.txt~",
            "video.mp4.part",
        ] {
            assert!(excluded(&filter, path), "{path} should be excluded");
        }
        for path in [
            "report.docx",
            "docs/budget.xlsx",
            "template.dotx",
            "temp/notes.txt",
        ] {
            assert!(!excluded(&filter, path), "{path} should be synced");
        }
    }

    #[test]
    fn escaleignore_adds_rules_and_broken_lines_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IGNORE_FILE), "private/\n*.log\n!keep.log\n").unwrap();
        let settings = RepositoryConfig::new("t", dir.path(), "file:///r");
        let (filter, warnings) = Filter::load(&settings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(excluded(&filter, "private/secret.txt"));
        assert!(filter.excludes(&RelPath::new("private").unwrap(), true));
        assert!(excluded(&filter, "logs/debug.log"));
        assert!(!excluded(&filter, "keep.log"));
        assert!(!excluded(&filter, IGNORE_FILE));
        assert!(excluded(&filter, "~$still.docx"));
    }

    fn settings(dir: &Path) -> RepositoryConfig {
        RepositoryConfig::new("t", dir, "file:///r")
    }

    fn mode_of(filter: &Filter, path: &str) -> RuleMode {
        filter.mode(&RelPath::new(path).unwrap(), false)
    }

    #[test]
    fn settings_exclude_and_include_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path());
        settings.include = vec!["Reports/".into(), "*.pdf".into()];
        settings.exclude = vec!["Reports/drafts/".into()];
        let (filter, _) = Filter::load(&settings);
        assert!(!excluded(&filter, "Reports/q3.xlsx"));
        assert!(!excluded(&filter, "Other/invoice.pdf"));
        assert!(excluded(&filter, "Other/invoice.docx"), "not included");
        assert!(excluded(&filter, "Reports/drafts/q4.xlsx"), "excluded wins");
        assert!(
            excluded(&filter, "Reports/~$q3.xlsx"),
            "built-in exclusions still apply"
        );
    }

    #[test]
    fn last_matching_rule_wins_over_the_repository_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path());
        settings.mode = SyncMode::ReceiveOnly;
        settings.rules = vec![
            crate::config::AccessRule {
                path: "Scans/".into(),
                mode: RuleMode::SendOnly,
            },
            crate::config::AccessRule {
                path: "Scans/archive/".into(),
                mode: RuleMode::Ignore,
            },
            crate::config::AccessRule {
                path: "*.xlsx".into(),
                mode: RuleMode::SendReceive,
            },
        ];
        let (filter, _) = Filter::load(&settings);
        assert_eq!(mode_of(&filter, "letter.docx"), RuleMode::ReceiveOnly);
        assert_eq!(mode_of(&filter, "Scans/page1.png"), RuleMode::SendOnly);
        assert_eq!(mode_of(&filter, "Scans/archive/old.png"), RuleMode::Ignore);
        assert_eq!(
            mode_of(&filter, "Scans/archive/sheet.xlsx"),
            RuleMode::SendReceive
        );
        let path = RelPath::new("Scans/page1.png").unwrap();
        assert!(filter.sends(&path, false) && !filter.receives(&path, false));
        let path = RelPath::new("letter.docx").unwrap();
        assert!(!filter.sends(&path, false) && filter.receives(&path, false));
    }

    #[test]
    fn invalid_patterns_are_reported() {
        assert!(check_pattern("Reports/**").is_ok());
        assert!(check_pattern("{unclosed").is_err());
        assert!(check_pattern("[z-a]").is_err());
    }
}
