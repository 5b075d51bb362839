//! What the window shows of each repository, folded from the engine's
//! events: the UI receives whole views and never rebuilds state from raw
//! events (see `docs/desktop-ipc.md`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use escale_core::{Event, EventKind, Phase, RepositoryConfig, RepositoryState, SyncMode};
use serde::Serialize;

/// Recent activity kept per repository.
const ACTIVITY_KEPT: usize = 20;

/// How far back the transfer speed is measured.
const SPEED_WINDOW: Duration = Duration::from_secs(5);

/// Where a repository is at, as the window and tray show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewState {
    /// Set up, its first cycle not started yet.
    Starting,
    /// In sync.
    Idle,
    /// A cycle is running.
    Syncing,
    /// Waiting for the other computers to free relay space.
    WaitingForSpace,
    /// Paused by the user or by the mass-deletion guard.
    Paused,
    /// The last cycle failed, or it cannot run (no passphrase).
    Error,
    /// Not running.
    Stopped,
}

impl From<RepositoryState> for ViewState {
    fn from(state: RepositoryState) -> Self {
        match state {
            RepositoryState::Idle => ViewState::Idle,
            RepositoryState::Syncing => ViewState::Syncing,
            RepositoryState::WaitingForSpace => ViewState::WaitingForSpace,
            RepositoryState::Paused => ViewState::Paused,
            RepositoryState::Error => ViewState::Error,
            _ => ViewState::Stopped,
        }
    }
}

/// Progress of the cycle under way.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    /// `sending` or `receiving`.
    pub phase: &'static str,
    /// Files done in this phase.
    pub files_done: u64,
    /// Files in this phase.
    pub files_total: u64,
    /// Bytes done in this phase.
    pub bytes_done: u64,
    /// Bytes in this phase.
    pub bytes_total: u64,
    /// The file being worked on.
    pub current: Option<String>,
    /// Measured over the last few seconds; `None` until measurable.
    pub bytes_per_second: Option<u64>,
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Files came from other computers.
    Received,
    /// Files went to the relay.
    Sent,
    /// Two computers changed the same file.
    Conflict,
    /// Something went wrong.
    Problem,
}

/// One line of recent activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// What kind of thing.
    pub kind: ActivityKind,
    /// What happened, in plain words.
    pub text: String,
    /// For a conflict: the kept copy, relative to the folder.
    pub path: Option<String>,
}

/// A problem as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProblemView {
    /// A stable code.
    pub code: String,
    /// A plain-language sentence.
    pub message: String,
    /// The engine's own description, for whoever helps; `None` when the
    /// message is already that.
    pub details: Option<String>,
}

impl ProblemView {
    /// The engine's problem `code` with its `message`, in the words of an
    /// office user where the code is a common one: the engine speaks of
    /// relays and paths, the person knows "the shared storage".
    pub fn new(code: &str, message: &str) -> Self {
        let plain = match code {
            "relay_not_found" => Some(
                "The shared storage folder cannot be found. If it is on a network drive or a \
                 disk, check that it is connected; Escale keeps trying.",
            ),
            "relay_unreachable" | "relay_interrupted" => Some(
                "The shared storage cannot be reached. Check the network connection; Escale \
                 keeps trying.",
            ),
            "relay_timeout" => Some("The shared storage does not answer. Escale keeps trying."),
            "relay_login_refused" => Some(
                "The shared storage refused the login. If its password changed, remove this \
                 folder and add it again with the new one.",
            ),
            "relay_permission_denied" => Some(
                "The shared storage does not let Escale read or save files there. Ask whoever \
                 manages it for access.",
            ),
            "relay_full" => Some("The shared storage is full. Escale goes on once there is room."),
            "relay_tls" => Some(
                "The shared storage's identity could not be verified, so Escale did not \
                 connect to it.",
            ),
            "wrong_passphrase" => Some(
                "The passphrase saved on this computer no longer opens the shared folder. It \
                 may have been changed on another computer.",
            ),
            "disk_full" => Some("This computer's disk is full."),
            "mass_deletion" => Some(
                "Many files went missing from this folder at once, so Escale paused rather \
                 than delete them on the other computers. If a drive or network folder is \
                 disconnected, reconnect it and choose \"Check again\". If the files were \
                 deleted on purpose, choose \"Delete them on the other computers too\".",
            ),
            _ => None,
        };
        match plain {
            Some(plain) => ProblemView {
                code: code.to_owned(),
                message: plain.to_owned(),
                details: Some(message.to_owned()),
            },
            None => ProblemView {
                code: code.to_owned(),
                message: message.to_owned(),
                details: None,
            },
        }
    }
}

/// How full the relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UsageView {
    /// Bytes stored by all computers.
    pub used: u64,
    /// The repository's quota, if any.
    pub quota: Option<u64>,
}

/// One repository as the window shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryView {
    /// The repository's name.
    pub name: String,
    /// Its folder on this computer.
    pub folder: PathBuf,
    /// The relay address (never with a password).
    pub relay: String,
    /// Which way changes travel.
    pub mode: SyncMode,
    /// Where it is at.
    pub state: ViewState,
    /// Paused from the app (a resume undoes it).
    pub paused_by_user: bool,
    /// Progress, while syncing.
    pub progress: Option<ProgressView>,
    /// Why it is in error or paused.
    pub problem: Option<ProblemView>,
    /// The end of the last successful cycle, in milliseconds since the epoch.
    pub last_sync: Option<i64>,
    /// Relay usage, when known.
    pub usage: Option<UsageView>,
    /// Recent activity, newest first.
    pub activity: VecDeque<Activity>,
    /// Recent byte counts for the speed (not shown to the UI).
    #[serde(skip)]
    samples: VecDeque<(Instant, u64)>,
}

impl RepositoryView {
    /// A view of a configured repository before any event.
    pub fn new(settings: &RepositoryConfig) -> Self {
        let mut view = RepositoryView {
            name: settings.name.clone(),
            folder: settings.folder.clone(),
            relay: settings.relay.clone(),
            mode: settings.mode,
            state: ViewState::Starting,
            paused_by_user: false,
            progress: None,
            problem: None,
            last_sync: None,
            usage: None,
            activity: VecDeque::new(),
            samples: VecDeque::new(),
        };
        view.set_settings(settings);
        view
    }

    /// Takes the settings again after they changed, keeping what happened.
    pub fn set_settings(&mut self, settings: &RepositoryConfig) {
        self.folder.clone_from(&settings.folder);
        self.relay.clone_from(&settings.relay);
        self.mode = settings.mode;
        let quota = settings.quota.map(|quota| quota.0);
        match &mut self.usage {
            Some(usage) => usage.quota = quota,
            None => {
                self.usage = quota.map(|quota| UsageView {
                    used: 0,
                    quota: Some(quota),
                });
            }
        }
    }

    fn record(&mut self, at: i64, kind: ActivityKind, text: String, path: Option<String>) {
        self.activity.push_front(Activity {
            at,
            kind,
            text,
            path,
        });
        self.activity.truncate(ACTIVITY_KEPT);
    }

    /// Marks the repository as unable to run, with why.
    pub fn fail(&mut self, code: &str, message: String) {
        self.state = ViewState::Error;
        self.progress = None;
        self.problem = Some(ProblemView::new(code, &message));
    }

    /// Folds one engine event in, at `now` (milliseconds since the epoch,
    /// and the same instant for the speed). Returns whether anything shown
    /// changed.
    pub fn apply(&mut self, event: &Event, now: i64, instant: Instant) -> bool {
        match &event.kind {
            EventKind::State { state } => {
                let state = ViewState::from(*state);
                if state != ViewState::Syncing {
                    self.progress = None;
                    self.samples.clear();
                }
                match state {
                    ViewState::Idle | ViewState::Syncing => self.problem = None,
                    ViewState::Paused if self.paused_by_user => self.problem = None,
                    _ => {}
                }
                self.state = state;
            }
            EventKind::Progress(progress) => {
                let total_done = progress.bytes_done;
                // A new phase starts its byte count again.
                if self
                    .progress
                    .as_ref()
                    .is_some_and(|previous| previous.bytes_done > total_done)
                {
                    self.samples.clear();
                }
                self.samples.push_back((instant, total_done));
                while self
                    .samples
                    .front()
                    .is_some_and(|(at, _)| instant.duration_since(*at) > SPEED_WINDOW)
                {
                    self.samples.pop_front();
                }
                self.progress = Some(ProgressView {
                    phase: match progress.phase {
                        Phase::Sending => "sending",
                        _ => "receiving",
                    },
                    files_done: progress.files_done,
                    files_total: progress.files_total,
                    bytes_done: progress.bytes_done,
                    bytes_total: progress.bytes_total,
                    current: progress.current.clone(),
                    bytes_per_second: speed(&self.samples),
                });
            }
            EventKind::Conflict { path, copy } => {
                self.record(
                    now,
                    ActivityKind::Conflict,
                    format!("{path} was changed on two computers; the other version is kept"),
                    Some(copy.clone()),
                );
            }
            EventKind::Problem(problem) => {
                let shown = ProblemView::new(&problem.code, &problem.message);
                self.record(now, ActivityKind::Problem, shown.message.clone(), None);
                self.problem = Some(shown);
            }
            EventKind::WaitingForSpace(usage) => {
                self.usage = Some(UsageView {
                    used: usage.used,
                    quota: usage.quota,
                });
            }
            EventKind::CycleDone(report) => {
                self.last_sync = Some(now);
                if report.changes_received > 0 {
                    self.record(
                        now,
                        ActivityKind::Received,
                        files_text(report.changes_received, "received"),
                        None,
                    );
                }
                if report.changes_sent > 0 {
                    self.record(
                        now,
                        ActivityKind::Sent,
                        files_text(report.changes_sent, "sent"),
                        None,
                    );
                }
            }
            _ => return false,
        }
        true
    }
}

/// "1 file received", "12 files sent".
pub(crate) fn files_text(count: u64, what: &str) -> String {
    if count == 1 {
        format!("1 file {what}")
    } else {
        format!("{count} files {what}")
    }
}

fn speed(samples: &VecDeque<(Instant, u64)>) -> Option<u64> {
    let (first_at, first) = samples.front()?;
    let (last_at, last) = samples.back()?;
    let elapsed = last_at.duration_since(*first_at).as_secs_f64();
    if elapsed < 0.5 {
        return None;
    }
    Some(((last - first) as f64 / elapsed) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use escale_core::{Progress, SyncReport};

    fn view() -> RepositoryView {
        RepositoryView::new(&RepositoryConfig::new(
            "Reports",
            "/home/ana/Reports",
            "file:///mnt/share/reports",
        ))
    }

    fn event(kind: EventKind) -> Event {
        Event {
            repository: "Reports".into(),
            kind,
        }
    }

    fn progress(done: u64) -> EventKind {
        let mut progress = Progress::new(Phase::Receiving);
        progress.files_total = 10;
        progress.files_done = 2;
        progress.bytes_total = 10_000_000;
        progress.bytes_done = done;
        progress.current = Some("Q3/summary.pdf".into());
        EventKind::Progress(progress)
    }

    #[test]
    fn a_cycle_that_received_files_says_how_many_and_when() {
        let mut view = view();
        let start = Instant::now();
        view.apply(
            &event(EventKind::State {
                state: RepositoryState::Syncing,
            }),
            1_000,
            start,
        );
        let mut report = SyncReport::default();
        report.changes_received = 12;
        view.apply(&event(EventKind::CycleDone(report)), 2_000, start);
        view.apply(
            &event(EventKind::State {
                state: RepositoryState::Idle,
            }),
            2_000,
            start,
        );
        assert_eq!(view.state, ViewState::Idle);
        assert_eq!(view.last_sync, Some(2_000));
        assert_eq!(view.activity[0].text, "12 files received");
        assert_eq!(view.activity[0].kind, ActivityKind::Received);
    }

    #[test]
    fn progress_shows_a_speed_once_measurable_and_goes_when_idle() {
        let mut view = view();
        let start = Instant::now();
        view.apply(&event(progress(0)), 0, start);
        assert_eq!(view.progress.as_ref().unwrap().bytes_per_second, None);
        view.apply(
            &event(progress(2_000_000)),
            0,
            start + Duration::from_secs(2),
        );
        let shown = view.progress.as_ref().unwrap();
        assert_eq!(shown.bytes_per_second, Some(1_000_000));
        assert_eq!(shown.current.as_deref(), Some("Q3/summary.pdf"));
        view.apply(
            &event(EventKind::State {
                state: RepositoryState::Idle,
            }),
            0,
            start,
        );
        assert_eq!(view.progress, None);
    }

    #[test]
    fn a_problem_stays_until_a_cycle_succeeds() {
        let mut view = view();
        let now = Instant::now();
        view.apply(
            &event(EventKind::Problem(escale_core::Problem {
                path: None,
                code: "connection_refused".into(),
                message: "The server refused the connection.".into(),
            })),
            5,
            now,
        );
        view.apply(
            &event(EventKind::State {
                state: RepositoryState::Error,
            }),
            5,
            now,
        );
        assert_eq!(view.state, ViewState::Error);
        assert_eq!(view.problem.as_ref().unwrap().code, "connection_refused");
        assert_eq!(view.problem.as_ref().unwrap().details, None);
        view.apply(
            &event(EventKind::State {
                state: RepositoryState::Idle,
            }),
            6,
            now,
        );
        assert_eq!(view.problem, None);
        assert_eq!(view.activity[0].kind, ActivityKind::Problem);
    }

    #[test]
    fn common_relay_problems_are_told_in_plain_words_with_the_cause_kept() {
        let shown = ProblemView::new(
            "relay_not_found",
            "the relay folder /mnt/share/escale does not exist",
        );
        assert!(
            shown
                .message
                .starts_with("The shared storage folder cannot be found.")
        );
        assert!(!shown.message.contains("relay"));
        assert_eq!(
            shown.details.as_deref(),
            Some("the relay folder /mnt/share/escale does not exist")
        );
        for code in [
            "relay_unreachable",
            "relay_timeout",
            "relay_login_refused",
            "relay_permission_denied",
            "relay_full",
            "relay_tls",
            "wrong_passphrase",
        ] {
            let shown = ProblemView::new(code, "technical text");
            assert_eq!(shown.details.as_deref(), Some("technical text"), "{code}");
            assert!(!shown.message.to_lowercase().contains("relay"), "{code}");
        }
    }

    #[test]
    fn activity_keeps_the_newest_twenty() {
        let mut view = view();
        for i in 0..30 {
            let mut report = SyncReport::default();
            report.changes_sent = i + 1;
            view.apply(&event(EventKind::CycleDone(report)), 0, Instant::now());
        }
        assert_eq!(view.activity.len(), ACTIVITY_KEPT);
        assert_eq!(view.activity[0].text, "30 files sent");
    }

    #[test]
    fn serializes_with_the_names_the_ui_expects() {
        let json = serde_json::to_value(view()).unwrap();
        for key in [
            "name",
            "folder",
            "relay",
            "mode",
            "state",
            "pausedByUser",
            "progress",
            "problem",
            "lastSync",
            "usage",
            "activity",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["state"], "starting");
        assert_eq!(json["mode"], "send-receive");
        assert!(json.get("samples").is_none());
    }
}
