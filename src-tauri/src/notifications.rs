//! Which engine events become desktop notifications, batched and rate
//! limited so that a busy day does not bury the person in pop-ups.
//!
//! The decisions are plain code that tests drive with events and a clock:
//! a notification daemon's absence would make delivery succeed anyway, so
//! only what the app decides to show can be checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use escale_core::{Event, EventKind, RepositoryState};

use crate::views::ProblemView;

/// Received files are told at most this often per folder; those received
/// meanwhile are added to the next notification.
const RECEIVED_EVERY: Duration = Duration::from_secs(60);

/// Conflicts are told at most this often per folder.
const CONFLICT_EVERY: Duration = Duration::from_secs(60);

/// A relay that cannot be reached is told once it has lasted this long:
/// a short outage fixes itself and is not worth an interruption.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(5 * 60);

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The first line.
    pub title: String,
    /// The text under it.
    pub body: String,
}

/// What has been told of one folder, and what waits to be.
#[derive(Debug, Default)]
struct FolderMemory {
    received_told_at: Option<Instant>,
    received_waiting: u64,
    conflict_told_at: Option<Instant>,
    conflicts_waiting: u64,
    /// The code of the problem told in this episode of trouble; cleared
    /// when the folder is back in sync, so the next episode is told again.
    problem_told: Option<String>,
    /// Since when the relay has been out of reach.
    unreachable_since: Option<Instant>,
}

impl FolderMemory {
    /// The notification of the files received and not told yet, if the
    /// rate limit allows it now.
    fn received_due(&mut self, folder: &str, now: Instant) -> Option<Notification> {
        let allowed = self
            .received_told_at
            .is_none_or(|at| now.duration_since(at) >= RECEIVED_EVERY);
        if self.received_waiting == 0 || !allowed {
            return None;
        }
        let told = Notification {
            title: received_text(self.received_waiting, folder),
            body: "They are in your folder.".to_owned(),
        };
        self.received_waiting = 0;
        self.received_told_at = Some(now);
        Some(told)
    }
}

/// Decides the notifications; one per app.
#[derive(Debug, Default)]
pub struct Notifier {
    folders: HashMap<String, FolderMemory>,
}

fn is_unreachable(code: &str) -> bool {
    matches!(
        code,
        "relay_unreachable" | "relay_timeout" | "relay_interrupted" | "relay_not_found"
    )
}

/// Problems that need the person to act: told at once.
fn needs_action(code: &str) -> Option<&'static str> {
    match code {
        "relay_login_refused" => Some("The storage refused the login"),
        "wrong_passphrase" => Some("The passphrase no longer opens the shared folder"),
        "relay_full" => Some("The shared storage is full"),
        "relay_permission_denied" => Some("The storage refuses to save files"),
        "relay_tls" => Some("The storage's identity could not be verified"),
        "mass_deletion" => Some("Syncing was paused: many files are missing"),
        _ => None,
    }
}

fn received_text(count: u64, folder: &str) -> String {
    if count == 1 {
        format!("1 file received in {folder}")
    } else {
        format!("{count} files received in {folder}")
    }
}

impl Notifier {
    /// The notifications `event` calls for at `now` (usually none).
    pub fn on_event(&mut self, event: &Event, now: Instant) -> Vec<Notification> {
        let folder = &event.repository;
        let memory = self.folders.entry(folder.clone()).or_default();
        let mut out = Vec::new();
        match &event.kind {
            EventKind::CycleDone(report) if report.changes_received > 0 => {
                memory.received_waiting += report.changes_received;
                out.extend(memory.received_due(folder, now));
            }
            EventKind::Conflict { path, .. } => {
                memory.conflicts_waiting += 1;
                if memory
                    .conflict_told_at
                    .is_none_or(|at| now.duration_since(at) >= CONFLICT_EVERY)
                {
                    let others = memory.conflicts_waiting - 1;
                    let body = if others == 0 {
                        format!("{path} was changed on two computers. Both versions are kept.")
                    } else {
                        format!(
                            "{path} and {others} other file(s) were changed on two computers. \
                             Both versions are kept."
                        )
                    };
                    out.push(Notification {
                        title: format!("A file was changed twice in {folder}"),
                        body,
                    });
                    memory.conflicts_waiting = 0;
                    memory.conflict_told_at = Some(now);
                }
            }
            EventKind::Problem(problem) => {
                if is_unreachable(&problem.code) {
                    let since = *memory.unreachable_since.get_or_insert(now);
                    if now.duration_since(since) >= UNREACHABLE_AFTER
                        && memory.problem_told.as_deref() != Some("unreachable")
                    {
                        out.push(Notification {
                            title: format!("{folder} cannot reach its shared storage"),
                            body: format!(
                                "For {} minutes now. {}",
                                now.duration_since(since).as_secs() / 60,
                                ProblemView::new(&problem.code, &problem.message).message
                            ),
                        });
                        memory.problem_told = Some("unreachable".to_owned());
                    }
                } else if let Some(title) = needs_action(&problem.code)
                    && memory.problem_told.as_deref() != Some(problem.code.as_str())
                {
                    out.push(Notification {
                        title: format!("{title} ({folder})"),
                        body: ProblemView::new(&problem.code, &problem.message).message,
                    });
                    memory.problem_told = Some(problem.code.clone());
                }
            }
            EventKind::WaitingForSpace(_)
                if memory.problem_told.as_deref() != Some("waiting_for_space") =>
            {
                out.push(Notification {
                    title: format!("{folder} is waiting for space on the shared storage"),
                    body: "It goes on once the other computers have picked up their files."
                        .to_owned(),
                });
                memory.problem_told = Some("waiting_for_space".to_owned());
            }
            EventKind::State {
                state: RepositoryState::Idle,
            } => {
                memory.problem_told = None;
                memory.unreachable_since = None;
            }
            _ => {}
        }
        out
    }

    /// Received files held back by the rate limit, once it allows them.
    pub fn flush(&mut self, now: Instant) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut folders: Vec<_> = self.folders.iter_mut().collect();
        folders.sort_by(|a, b| a.0.cmp(b.0));
        for (folder, memory) in folders {
            out.extend(memory.received_due(folder, now));
        }
        out
    }

    /// Forgets a removed folder.
    pub fn forget(&mut self, folder: &str) {
        self.folders.remove(folder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use escale_core::{Problem, RelayUsage, SyncReport};

    fn event(kind: EventKind) -> Event {
        Event {
            repository: "Reports".into(),
            kind,
        }
    }

    fn received(count: u64) -> Event {
        let mut report = SyncReport::default();
        report.changes_received = count;
        event(EventKind::CycleDone(report))
    }

    fn problem(code: &str) -> Event {
        event(EventKind::Problem(Problem {
            path: None,
            code: code.into(),
            message: "details".into(),
        }))
    }

    fn idle() -> Event {
        event(EventKind::State {
            state: RepositoryState::Idle,
        })
    }

    #[test]
    fn received_files_are_batched_within_a_minute() {
        let mut notifier = Notifier::default();
        let start = Instant::now();
        let first = notifier.on_event(&received(3), start);
        assert_eq!(first[0].title, "3 files received in Reports");
        assert!(
            notifier
                .on_event(&received(5), start + Duration::from_secs(10))
                .is_empty()
        );
        assert!(
            notifier
                .on_event(&received(4), start + Duration::from_secs(20))
                .is_empty()
        );
        assert!(notifier.flush(start + Duration::from_secs(30)).is_empty());
        let batched = notifier.flush(start + Duration::from_secs(61));
        assert_eq!(batched.len(), 1);
        assert_eq!(batched[0].title, "9 files received in Reports");
        assert!(notifier.flush(start + Duration::from_secs(200)).is_empty());
    }

    #[test]
    fn a_cycle_that_only_sent_is_not_told() {
        let mut notifier = Notifier::default();
        let mut report = SyncReport::default();
        report.changes_sent = 40;
        assert!(
            notifier
                .on_event(&event(EventKind::CycleDone(report)), Instant::now())
                .is_empty()
        );
        assert_eq!(
            notifier.on_event(&received(1), Instant::now())[0].title,
            "1 file received in Reports"
        );
    }

    #[test]
    fn conflicts_are_told_and_then_counted() {
        let mut notifier = Notifier::default();
        let start = Instant::now();
        let conflict = |path: &str| {
            event(EventKind::Conflict {
                path: path.into(),
                copy: format!("{path} (conflict)"),
            })
        };
        let told = notifier.on_event(&conflict("budget.xlsx"), start);
        assert!(
            told[0]
                .body
                .starts_with("budget.xlsx was changed on two computers")
        );
        assert!(
            notifier
                .on_event(&conflict("a.txt"), start + Duration::from_secs(5))
                .is_empty()
        );
        let later = notifier.on_event(&conflict("b.txt"), start + Duration::from_secs(70));
        assert!(
            later[0].body.starts_with("b.txt and 1 other file(s)"),
            "{later:?}"
        );
    }

    #[test]
    fn a_refused_login_is_told_once_per_episode() {
        let mut notifier = Notifier::default();
        let now = Instant::now();
        let told = notifier.on_event(&problem("relay_login_refused"), now);
        assert_eq!(told[0].title, "The storage refused the login (Reports)");
        assert!(
            notifier
                .on_event(&problem("relay_login_refused"), now)
                .is_empty()
        );
        notifier.on_event(&idle(), now);
        assert_eq!(
            notifier
                .on_event(&problem("relay_login_refused"), now)
                .len(),
            1
        );
    }

    #[test]
    fn an_unreachable_relay_is_told_only_after_five_minutes() {
        let mut notifier = Notifier::default();
        let start = Instant::now();
        assert!(
            notifier
                .on_event(&problem("relay_unreachable"), start)
                .is_empty()
        );
        let four = start + Duration::from_secs(4 * 60);
        assert!(
            notifier
                .on_event(&problem("relay_timeout"), four)
                .is_empty()
        );
        let six = start + Duration::from_secs(6 * 60);
        let told = notifier.on_event(&problem("relay_unreachable"), six);
        assert_eq!(told[0].title, "Reports cannot reach its shared storage");
        assert!(told[0].body.starts_with("For 6 minutes now."));
        let seven = start + Duration::from_secs(7 * 60);
        assert!(
            notifier
                .on_event(&problem("relay_unreachable"), seven)
                .is_empty()
        );
        // Back in sync, a later outage starts its own count.
        notifier.on_event(&idle(), seven);
        assert!(
            notifier
                .on_event(&problem("relay_unreachable"), seven)
                .is_empty()
        );
    }

    #[test]
    fn a_full_relay_and_a_wrong_passphrase_are_told_at_once() {
        let mut notifier = Notifier::default();
        let now = Instant::now();
        let usage = RelayUsage::new(900, Some(1000));
        let told = notifier.on_event(&event(EventKind::WaitingForSpace(usage.clone())), now);
        assert_eq!(
            told[0].title,
            "Reports is waiting for space on the shared storage"
        );
        assert!(
            notifier
                .on_event(&event(EventKind::WaitingForSpace(usage)), now)
                .is_empty()
        );
        let told = notifier.on_event(&problem("wrong_passphrase"), now);
        assert_eq!(
            told[0].title,
            "The passphrase no longer opens the shared folder (Reports)"
        );
    }

    #[test]
    fn ordinary_problems_with_one_file_are_not_told() {
        let mut notifier = Notifier::default();
        assert!(
            notifier
                .on_event(&problem("io_error"), Instant::now())
                .is_empty()
        );
    }
}
