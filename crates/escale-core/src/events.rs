//! What the engine tells its front ends while it works: state changes,
//! progress, conflicts, problems and relay usage, as typed events.
//!
//! The command line logs them and writes the latest state where
//! `escale status` finds it; the desktop app forwards them to its window and
//! tray. Events are delivered by a callback that must return quickly (send
//! on a channel, store a value); progress is throttled at the source so a
//! tree of small files does not flood it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sync::{Problem, SyncReport};

/// Where a repository is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepositoryState {
    /// In sync as far as it knows; waiting for changes.
    Idle,
    /// A sync cycle is running.
    Syncing,
    /// The next upload would exceed the relay quota: waiting for the other
    /// computers to take what is there.
    WaitingForSpace,
    /// Stopped on purpose until the user acts (see the problem that came
    /// with it, such as the mass-deletion guard).
    Paused,
    /// The last cycle failed; it is retried with backoff.
    Error,
    /// Shut down.
    Stopped,
}

/// What a cycle is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Reading and uploading local changes.
    Sending,
    /// Downloading and applying other computers' changes.
    Receiving,
}

/// Progress of the current phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Files (and folders) done.
    pub files_done: u64,
    /// Files (and folders) in this phase.
    pub files_total: u64,
    /// Bytes of those files done.
    pub bytes_done: u64,
    /// Bytes of those files in this phase.
    pub bytes_total: u64,
    /// The file being worked on.
    pub current: Option<String>,
}

impl Progress {
    /// The start of `phase`: nothing done, nothing counted yet.
    pub fn new(phase: Phase) -> Self {
        Progress {
            phase,
            files_done: 0,
            files_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            current: None,
        }
    }
}

/// One computer's data on the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The computer's name.
    pub name: String,
    /// Bytes of its data still on the relay.
    pub bytes: u64,
}

/// How full the relay is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RelayUsage {
    /// Bytes all computers keep on the relay.
    pub used: u64,
    /// The repository's quota, if any.
    pub quota: Option<u64>,
    /// Who holds what.
    pub holders: Vec<Holder>,
    /// Computers that have not yet received everything this one sent: the
    /// relay empties as they catch up.
    pub waiting_for: Vec<String>,
}

impl RelayUsage {
    /// `used` bytes against `quota`, with no holder or waiting computer
    /// named yet.
    pub fn new(used: u64, quota: Option<u64>) -> Self {
        RelayUsage {
            used,
            quota,
            holders: Vec::new(),
            waiting_for: Vec::new(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The repository changed state.
    State {
        /// The new state.
        state: RepositoryState,
    },
    /// Progress of a cycle.
    Progress(Progress),
    /// Two computers changed the same file; both versions were kept.
    Conflict {
        /// The path both changed.
        path: String,
        /// Where the other version was kept.
        copy: String,
    },
    /// A cycle failed as a whole (the repository is then in state `error`
    /// or `paused`). Problems with single files come in the cycle's report.
    Problem(Problem),
    /// The relay is full: this computer waits.
    WaitingForSpace(RelayUsage),
    /// A cycle finished.
    CycleDone(SyncReport),
}

/// An event of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The repository's name.
    pub repository: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Receives the engine's events. It runs on the engine's threads: it must
/// not block.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Progress is sent at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The sending side, held by a sync cycle.
pub(crate) struct Events {
    repository: String,
    sink: Option<EventSink>,
    progress: Option<Progress>,
    last_progress: Option<Instant>,
}

impl Events {
    /// Events of `repository`, delivered to `sink` if there is one.
    pub(crate) fn new(repository: &str, sink: Option<EventSink>) -> Self {
        Events {
            repository: repository.to_owned(),
            sink,
            progress: None,
            last_progress: None,
        }
    }

    fn emit(&self, kind: EventKind) {
        if let Some(sink) = &self.sink {
            sink(&Event {
                repository: self.repository.clone(),
                kind,
            });
        }
    }

    /// The repository changed state.
    pub(crate) fn state(&self, state: RepositoryState) {
        self.emit(EventKind::State { state });
    }

    /// A phase starts with `files` files of `bytes` bytes to do.
    pub(crate) fn progress_start(&mut self, phase: Phase, files: u64, bytes: u64) {
        self.progress = Some(Progress {
            phase,
            files_done: 0,
            files_total: files,
            bytes_done: 0,
            bytes_total: bytes,
            current: None,
        });
        self.last_progress = None;
        if files > 0 {
            self.send_progress(true);
        }
    }

    /// The phase has `files` more files of `bytes` bytes to do than it
    /// knew (receiving learns its work batch by batch).
    pub(crate) fn progress_more(&mut self, files: u64, bytes: u64) {
        if let Some(progress) = &mut self.progress {
            progress.files_total += files;
            progress.bytes_total += bytes;
        }
        self.send_progress(false);
    }

    /// Work on `path` starts.
    pub(crate) fn progress_file(&mut self, path: &str) {
        if let Some(progress) = &mut self.progress {
            progress.current = Some(path.to_owned());
        }
        self.send_progress(false);
    }

    /// `files` more files of `bytes` bytes are done.
    pub(crate) fn progress_done(&mut self, files: u64, bytes: u64) {
        let Some(progress) = &mut self.progress else {
            return;
        };
        progress.files_done += files;
        progress.bytes_done += bytes;
        let finished = progress.files_done >= progress.files_total;
        if finished {
            progress.current = None;
        }
        self.send_progress(finished);
    }

    fn send_progress(&mut self, force: bool) {
        let due = self
            .last_progress
            .is_none_or(|last| last.elapsed() >= PROGRESS_INTERVAL);
        if !(force || due) || self.sink.is_none() {
            return;
        }
        if let Some(progress) = self.progress.clone() {
            self.last_progress = Some(Instant::now());
            self.emit(EventKind::Progress(progress));
        }
    }

    /// A conflict copy was made.
    pub(crate) fn conflict(&self, path: &str, copy: &str) {
        self.emit(EventKind::Conflict {
            path: path.to_owned(),
            copy: copy.to_owned(),
        });
    }

    /// The relay is full.
    pub(crate) fn waiting_for_space(&self, usage: RelayUsage) {
        self.state(RepositoryState::WaitingForSpace);
        self.emit(EventKind::WaitingForSpace(usage));
    }

    /// A cycle failed.
    pub(crate) fn problem(&self, problem: &Problem) {
        self.emit(EventKind::Problem(problem.clone()));
    }

    /// A cycle finished.
    pub(crate) fn cycle_done(&self, report: &SyncReport) {
        self.emit(EventKind::CycleDone(report.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recording() -> (Events, Arc<Mutex<Vec<Event>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: EventSink = {
            let seen = Arc::clone(&seen);
            Arc::new(move |event: &Event| seen.lock().unwrap().push(event.clone()))
        };
        (Events::new("office", Some(sink)), seen)
    }

    #[test]
    fn progress_is_throttled_but_start_and_end_always_arrive() {
        let (mut events, seen) = recording();
        events.progress_start(Phase::Sending, 1000, 1000);
        for index in 0..1000 {
            events.progress_file(&format!("file-{index}"));
            events.progress_done(1, 1);
        }
        let seen = seen.lock().unwrap();
        assert!(
            seen.len() < 20,
            "{} progress events for a fast loop",
            seen.len()
        );
        let EventKind::Progress(last) = &seen.last().unwrap().kind else {
            panic!("not progress: {:?}", seen.last());
        };
        assert_eq!((last.files_done, last.files_total), (1000, 1000));
        assert_eq!(last.current, None);
        assert!(seen.iter().all(|event| event.repository == "office"));
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let event = Event {
            repository: "office".into(),
            kind: EventKind::State {
                state: RepositoryState::WaitingForSpace,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"repository": "office", "type": "state", "state": "waiting_for_space"})
        );
    }
}
