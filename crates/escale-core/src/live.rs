//! The live state of repositories being synced in the background, kept in
//! a small file per repository so that `escale status`, run in another
//! process, can show what `escale run` or the desktop app is doing right
//! now.
//!
//! The running process rewrites the file when the state changes, at most
//! twice a second during progress, and at every poll; each write says until
//! when it stays true (`fresh_until`). A reader ignores a file past that
//! time, so a killed process leaves nothing misleading behind.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::ConfigDir;
use crate::events::{Event, EventKind, Progress, RelayUsage, RepositoryState};
use crate::sync::{Problem, now_ns};

/// What a running Escale is doing with one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LiveStatus {
    /// The process doing it.
    pub pid: u32,
    /// When this was written, Unix seconds.
    pub updated: i64,
    /// Until when it holds if not rewritten, Unix seconds.
    pub fresh_until: i64,
    /// The repository's state.
    pub state: RepositoryState,
    /// Progress of the cycle running, if any.
    pub progress: Option<Progress>,
    /// Why it waits, when the relay is full.
    pub waiting: Option<RelayUsage>,
    /// The last problem reported.
    pub last_problem: Option<Problem>,
    /// When the last cycle finished, Unix seconds.
    pub last_cycle: Option<i64>,
}

/// The live file of repository `name`.
fn live_path(config_dir: &ConfigDir, name: &str) -> PathBuf {
    crate::repository::state_dir(config_dir, name).join("live.json")
}

/// The live state of repository `name`, if a running Escale reported one
/// that still holds.
pub(crate) fn read(config_dir: &ConfigDir, name: &str) -> Option<LiveStatus> {
    let text = std::fs::read(live_path(config_dir, name)).ok()?;
    let live: LiveStatus = serde_json::from_slice(&text).ok()?;
    (now_ns() / 1_000_000_000 <= live.fresh_until).then_some(live)
}

/// Progress is written at most this often.
const WRITE_INTERVAL: Duration = Duration::from_millis(500);

/// Keeps one repository's live file up to date from its events.
pub(crate) struct LiveFile {
    path: PathBuf,
    /// How long a write stays true without a newer one.
    lifetime: Duration,
    inner: Mutex<(LiveStatus, Option<Instant>)>,
}

impl LiveFile {
    /// The live file of `name`; each write holds for `lifetime` (longer
    /// than the time between two polls).
    pub(crate) fn new(config_dir: &ConfigDir, name: &str, lifetime: Duration) -> Self {
        LiveFile {
            path: live_path(config_dir, name),
            lifetime,
            inner: Mutex::new((
                LiveStatus {
                    pid: std::process::id(),
                    updated: 0,
                    fresh_until: 0,
                    state: RepositoryState::Idle,
                    progress: None,
                    waiting: None,
                    last_problem: None,
                    last_cycle: None,
                },
                None,
            )),
        }
    }

    /// Takes an event into account.
    pub(crate) fn update(&self, event: &Event) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (live, last_write) = &mut *inner;
        let mut urgent = true;
        match &event.kind {
            EventKind::State { state } => {
                live.state = *state;
                if *state != RepositoryState::WaitingForSpace {
                    live.waiting = None;
                }
                if *state != RepositoryState::Syncing {
                    live.progress = None;
                }
            }
            EventKind::Progress(progress) => {
                live.progress = Some(progress.clone());
                urgent = false;
            }
            EventKind::WaitingForSpace(usage) => live.waiting = Some(usage.clone()),
            EventKind::Problem(problem) => live.last_problem = Some(problem.clone()),
            EventKind::CycleDone(report) => {
                live.last_cycle = Some(now_ns() / 1_000_000_000);
                live.progress = None;
                if let Some(problem) = report.problems.last() {
                    live.last_problem = Some(problem.clone());
                }
            }
            _ => urgent = false,
        }
        if urgent || last_write.is_none_or(|at| at.elapsed() >= WRITE_INTERVAL) {
            *last_write = Some(Instant::now());
            self.write(live);
        }
    }

    /// Says again that the current state holds (at every poll).
    pub(crate) fn touch(&self) {
        if let Ok(inner) = self.inner.lock() {
            self.write(&inner.0);
        }
    }

    fn write(&self, live: &LiveStatus) {
        let mut live = live.clone();
        live.updated = now_ns() / 1_000_000_000;
        live.fresh_until = live.updated + i64::try_from(self.lifetime.as_secs()).unwrap_or(0);
        let Ok(text) = serde_json::to_vec_pretty(&live) else {
            return;
        };
        // Best effort: the live file only informs `status`, and a failure
        // to write it must never disturb syncing.
        let temp = self.path.with_extension("json.tmp");
        if std::fs::write(&temp, text).is_ok() {
            let _ = std::fs::rename(&temp, &self.path);
        }
    }

    /// Removes the file: the process stops syncing this repository.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            repository: "office".into(),
            kind,
        }
    }

    #[test]
    fn a_reader_sees_the_state_until_it_goes_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let config = ConfigDir::new(tmp.path());
        std::fs::create_dir_all(crate::repository::state_dir(&config, "office")).unwrap();
        let file = LiveFile::new(&config, "office", Duration::from_secs(60));
        assert_eq!(read(&config, "office"), None);
        file.update(&event(EventKind::State {
            state: RepositoryState::Syncing,
        }));
        let live = read(&config, "office").unwrap();
        assert_eq!(live.state, RepositoryState::Syncing);
        assert_eq!(live.pid, std::process::id());

        let stale = LiveFile::new(&config, "office", Duration::ZERO);
        stale.touch();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            read(&config, "office"),
            None,
            "a stale file must be ignored"
        );

        file.touch();
        file.remove();
        assert_eq!(read(&config, "office"), None);
    }
}
