//! The log files of the Escale programs: what `escale run` and the desktop
//! app report goes both to standard error and to a file in
//! `<config-dir>/logs/` (`escale.log`, `escale-desktop.log`), so that an
//! administrator, or whoever helps an office user, can read what a
//! background program did.
//!
//! A file is rotated by size: past [`MAX_BYTES`] it becomes `NAME.1`, the
//! previous `.1` becomes `.2`, and so on up to [`KEEP`] old files, so the
//! log never fills the disk. Nothing secret is logged: the engine keeps
//! passphrases out of its messages and its `Debug` output.
//!
//! ```no_run
//! let config_dir = escale_core::ConfigDir::locate(None)?;
//! escale_log::start(&config_dir, escale_log::DAEMON_LOG);
//! tracing::info!("written to standard error and to the log file");
//! # Ok::<(), escale_core::Error>(())
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Mutex;

use escale_core::{ByteSize, ConfigDir, EventKind};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

/// The size past which a log file is rotated.
pub const MAX_BYTES: u64 = 10_000_000;

/// How many rotated files are kept besides the current one.
pub const KEEP: usize = 5;

/// The log folder's name inside the configuration folder.
const LOG_DIR: &str = "logs";

/// The log file of `escale run`.
pub const DAEMON_LOG: &str = "escale.log";

/// The log file of the desktop app.
pub const DESKTOP_LOG: &str = "escale-desktop.log";

/// The environment variable choosing how much is logged: `error`, `warn`,
/// `info` (the default), `debug`, `trace` or `off`.
const LEVEL_ENV: &str = "ESCALE_LOG";

/// A log file that rotates itself by size.
#[derive(Debug)]
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// `None` after a failed rotation: the next write opens it again.
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens `path` for appending (creating it and its folder if needed);
    /// it rotates once a write would take it past `max_bytes`, keeping
    /// `keep` old files.
    fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(file),
            size,
        })
    }

    /// `escale.log.N`.
    fn numbered(&self, number: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{number}"));
        PathBuf::from(name)
    }

    /// Shifts every old file one number up (dropping the oldest) and
    /// starts an empty current file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            remove_if_present(&self.path)?;
        } else {
            remove_if_present(&self.numbered(self.keep))?;
            for number in (1..self.keep).rev() {
                rename_if_present(&self.numbered(number), &self.numbered(number + 1))?;
            }
            rename_if_present(&self.path, &self.numbered(1))?;
        }
        self.file = Some(open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // An empty file takes any line, however long: rotating would not
        // make it fit.
        if self.size > 0 && self.size.saturating_add(buf.len() as u64) > self.max_bytes {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open_append(&self.path)?),
        };
        let written = file.write(buf)?;
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// Opens `path` for appending; on Unix only its owner may read it, since
/// file names in it are private.
fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Deletes `path`; one that is not there is fine.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Renames `from` to `to`; a missing `from` is fine (fewer old files yet).
fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The folder of the log files of the configuration folder `config_dir`.
pub fn log_dir(config_dir: &ConfigDir) -> PathBuf {
    config_dir.path().join(LOG_DIR)
}

/// Standard error keeps the plain lines `escale` always printed:
/// `error: …`, `warning: …`, and the rest as is. The log file has the
/// time and level instead.
struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        writer.write_str(prefix)?;
        context
            .field_format()
            .format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The level chosen by `ESCALE_LOG`, `info` when unset or not understood.
fn level() -> LevelFilter {
    std::env::var(LEVEL_ENV)
        .ok()
        .and_then(|text| LevelFilter::from_str(text.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Sends the program's log to standard error and to the log file
/// `file_name` of `config_dir`. If the file cannot be opened, says so and
/// logs to standard error only: a read-only settings folder must not stop
/// syncing. Only the first call in a process has an effect.
pub fn start(config_dir: &ConfigDir, file_name: &str) {
    let stderr = tracing_subscriber::fmt::layer()
        .event_format(PlainLines)
        .with_writer(io::stderr);
    let path = log_dir(config_dir).join(file_name);
    let (file, problem) = match RotatingFile::open(&path, MAX_BYTES, KEEP) {
        Ok(file) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(Mutex::new(file))
                    // A full disk must not repeat itself on standard error
                    // at every line.
                    .log_internal_errors(false),
            ),
            None,
        ),
        Err(error) => (None, Some(error)),
    };
    let subscriber = tracing_subscriber::registry()
        .with(level())
        .with(stderr)
        .with(file);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    if let Some(error) = problem {
        tracing::warn!(
            "cannot write the log file {}: {error}; logging to standard error only",
            path.display()
        );
    }
}

/// Logs what an engine event means for whoever reads the log later: one
/// line per cycle that did something, every problem, waits for relay space
/// and conflicts. Both programs hand every event to it.
pub fn log_event(event: &escale_core::Event) {
    let name = &event.repository;
    match &event.kind {
        EventKind::CycleDone(report) => {
            if report.changes_sent + report.changes_received > 0 {
                tracing::info!(
                    "{name}: sent {} change(s), received {} change(s)",
                    report.changes_sent,
                    report.changes_received
                );
            }
            for problem in &report.problems {
                match &problem.path {
                    Some(path) if !problem.message.contains(path.as_str()) => {
                        tracing::warn!("{name}: {path}: {}", problem.message);
                    }
                    _ => tracing::warn!("{name}: {}", problem.message),
                }
            }
        }
        EventKind::Problem(problem) => {
            tracing::error!("{name}: {} (retrying)", problem.message);
        }
        EventKind::WaitingForSpace(usage) => {
            let who = if usage.waiting_for.is_empty() {
                String::new()
            } else {
                format!("; waiting for {} to receive", usage.waiting_for.join(", "))
            };
            tracing::info!(
                "{name}: waiting for relay space: {} of {} used{who}",
                ByteSize::approximate(usage.used),
                usage
                    .quota
                    .map_or_else(|| "?".to_owned(), ByteSize::approximate)
            );
        }
        EventKind::Conflict { path, copy } => {
            tracing::info!(
                "{name}: {path} was changed on two computers; the other version is {copy}"
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of `path`.
    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn rotates_by_size_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/escale.log");
        let mut log = RotatingFile::open(&path, 100, 2).unwrap();
        // 40 lines of 25 bytes: four lines per file.
        for number in 0..40 {
            writeln!(log, "line {number:02} of the log......").unwrap();
        }
        let current = read(&path);
        assert!(current.ends_with("line 39 of the log......\n"), "{current}");
        assert!(current.len() <= 100);
        assert!(read(&dir.path().join("logs/escale.log.1")).contains("line 35"));
        assert!(read(&dir.path().join("logs/escale.log.2")).contains("line 31"));
        assert!(!dir.path().join("logs/escale.log.3").exists());
        for (file, lines) in [("escale.log", 4), ("escale.log.1", 4), ("escale.log.2", 4)] {
            let text = read(&dir.path().join("logs").join(file));
            assert_eq!(text.lines().count(), lines, "{file}: {text}");
        }
    }

    #[test]
    fn reopening_appends_and_counts_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escale.log");
        fs::write(&path, "x".repeat(90)).unwrap();
        let mut log = RotatingFile::open(&path, 100, 5).unwrap();
        log.write_all(b"short\n").unwrap();
        assert_eq!(read(&path).len(), 96, "appended");
        log.write_all(b"too long now\n").unwrap();
        assert_eq!(read(&path), "too long now\n");
        assert_eq!(read(&dir.path().join("escale.log.1")).len(), 96);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escale.log");
        let mut log = RotatingFile::open(&path, 10, 0).unwrap();
        log.write_all(b"a line well past ten bytes\n").unwrap();
        log.write_all(b"next\n").unwrap();
        assert_eq!(
            read(&path),
            "next\n",
            "without old files, rotating starts over"
        );
    }

    #[cfg(unix)]
    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escale.log");
        RotatingFile::open(&path, 100, 1).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn standard_error_keeps_the_plain_prefixes() {
        let buffer = std::sync::Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = std::sync::Arc::clone(&buffer);
            move || SharedBuffer(std::sync::Arc::clone(&buffer))
        };
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(PlainLines)
                .with_writer(writer),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("Reports: the relay is gone (retrying)");
            tracing::warn!(attempt = 2, "relay call failed");
            tracing::info!("Reports: sent 1 change(s)");
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "error: Reports: the relay is gone (retrying)\n\
             warning: relay call failed attempt=2\n\
             Reports: sent 1 change(s)\n"
        );
    }

    /// A writer into a buffer the test reads afterwards.
    struct SharedBuffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
