//! Which paths travel: everything but the files that must never be synced
//! (office lock files, system litter, temporary files) and what the
//! folder's `.escaleignore` lists, in gitignore syntax.
//!
//! A path that is excluded is neither sent nor received, and its absence
//! is not a deletion: one computer's exclusions never delete anything on
//! another.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

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

/// The exclusion rules of one synced folder.
#[derive(Debug)]
pub(crate) struct Filter {
    rules: Gitignore,
}

impl Filter {
    /// The built-in exclusions plus those of `folder`'s `.escaleignore`.
    /// A line it cannot understand is skipped and returned as a warning.
    pub(crate) fn load(folder: &Path) -> (Filter, Vec<String>) {
        let mut builder = GitignoreBuilder::new(folder);
        for pattern in DEFAULT_EXCLUDES {
            // The built-in patterns are valid; a failure would be a bug
            // caught by the tests below.
            let _ = builder.add_line(None, pattern);
        }
        let mut warnings = Vec::new();
        let file = folder.join(IGNORE_FILE);
        if file.is_file()
            && let Some(error) = builder.add(&file)
        {
            warnings.push(format!("{IGNORE_FILE}: {error}"));
        }
        let rules = builder.build().unwrap_or_else(|error| {
            warnings.push(format!("{IGNORE_FILE}: {error}"));
            Filter::defaults().rules
        });
        (Filter { rules }, warnings)
    }

    /// The built-in exclusions only.
    pub(crate) fn defaults() -> Filter {
        let mut builder = GitignoreBuilder::new("");
        for pattern in DEFAULT_EXCLUDES {
            let _ = builder.add_line(None, pattern);
        }
        Filter {
            rules: builder.build().unwrap_or_else(|_| Gitignore::empty()),
        }
    }

    /// Whether `path` (a folder when `is_dir`) stays on this computer.
    pub(crate) fn excludes(&self, path: &RelPath, is_dir: bool) -> bool {
        self.rules
            .matched_path_or_any_parents(Path::new(path.as_str()), is_dir)
            .is_ignore()
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
        let (filter, warnings) = Filter::load(dir.path());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(excluded(&filter, "private/secret.txt"));
        assert!(filter.excludes(&RelPath::new("private").unwrap(), true));
        assert!(excluded(&filter, "logs/debug.log"));
        assert!(!excluded(&filter, "keep.log"));
        assert!(!excluded(&filter, IGNORE_FILE));
        assert!(excluded(&filter, "~$still.docx"));
    }
}
