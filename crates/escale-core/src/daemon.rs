//! `escale run`: every configured repository synced in the background, one
//! task each, until shutdown.
//!
//! Each repository's task waits for whichever comes first: a change in its
//! folder (file-system notifications, debounced so a burst of events makes
//! one cycle), its poll timer, or shutdown. A poll only compares the relay's
//! heads with how they were before the last cycle, and runs a full cycle
//! only if another client published something, so a quiet night costs
//! little. The keys derived from the passphrase are kept between cycles. A
//! failing repository backs off with jitter and never holds up the others.
//!
//! Polling stays at its fastest for a [`WARM`] minute after the last
//! activity (a change saved here, a change received, a poll that found new
//! heads), and only then doubles at each quiet poll up to the maximum.
//! People work in bursts: a colleague answers a document a few seconds or
//! a few tens of seconds after receiving it, and that answer must arrive as
//! quickly as the first change did, not wait behind an interval that
//! already doubled several times while they were reading. A minute of fast
//! polls costs a few dozen head reads, next to nothing beside the cycle
//! that started it, and an idle daemon still slows down to the maximum.
//!
//! The heads a poll compares against are read *before* each cycle: a client
//! that publishes while the cycle runs then shows up at the next poll. Read
//! after the cycle, they would already include that publication, which the
//! cycle itself had not seen, and it would wait for the safety cycle.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::{mpsc, watch};

use crate::config::ConfigDir;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Events, RepositoryState};
use crate::live::LiveFile;
use crate::path::WORK_FOLDER;
use crate::repository::{KeyCache, Passphrase, heads_fingerprint, sync_until};
use crate::sync::SyncReport;

/// How often repositories are polled for the other computers' changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBounds {
    /// The interval right after activity.
    pub min: Duration,
    /// The interval reached after a long idle time.
    pub max: Duration,
}

impl Default for PollBounds {
    /// 2 seconds after activity, backing off to 90 seconds when idle: a
    /// poll reads only the heads (one listing and two small reads per
    /// client), so an idle client costs a few hundred requests an hour.
    fn default() -> Self {
        PollBounds {
            min: Duration::from_secs(2),
            max: Duration::from_secs(90),
        }
    }
}

/// Quiet time after the last file-system event before a cycle starts, so
/// that saving a document (often several writes) makes one cycle.
const DEBOUNCE: Duration = Duration::from_millis(400);

/// A full cycle (folder scan included) at least this often, in case the
/// file-system notifications missed something.
const SAFETY_CYCLE: Duration = Duration::from_secs(10 * 60);

/// How long polling stays at [`PollBounds::min`] after the last activity
/// before it starts doubling (see the module documentation).
const WARM: Duration = Duration::from_secs(60);

/// The poll interval after `previous`, when the last activity was
/// `since_activity` ago: the minimum while warm, then doubling up to the
/// maximum.
fn next_interval(previous: Duration, since_activity: Duration, poll: PollBounds) -> Duration {
    if since_activity < WARM {
        poll.min
    } else {
        previous.saturating_mul(2).clamp(poll.min, poll.max)
    }
}

/// How long a repository whose cycles fail waits before the next attempt,
/// after `failures` failures in a row: doubling from the minimum up to the
/// maximum, with up to about a second of jitter so that clients that failed
/// together do not retry together.
fn backoff(failures: u32, poll: PollBounds) -> Duration {
    let base = poll.min.saturating_mul(1 << failures.min(16)).min(poll.max);
    let jitter = u64::from(crate::ids::random_bytes::<1>()[0]) * 4;
    base + Duration::from_millis(jitter)
}

/// One repository to run, with its passphrase.
#[derive(Debug)]
pub struct RunRepository {
    /// Its name in the settings.
    pub name: String,
    /// Its local folder.
    pub folder: PathBuf,
    /// Its passphrase.
    pub passphrase: Passphrase,
    /// How often to poll it.
    pub poll: PollBounds,
    /// Start paused: nothing syncs until [`Engine::resume`](crate::Engine::resume).
    /// A person who paused a folder expects it still paused after a restart.
    pub paused: bool,
}

impl PollBounds {
    /// The bounds of a repository: its settings' `poll_min` and
    /// `poll_max` where given, else the defaults.
    pub fn of(settings: &crate::config::RepositoryConfig) -> Self {
        let defaults = PollBounds::default();
        let min = settings.poll_min.map_or(defaults.min, |span| span.0);
        PollBounds {
            min,
            max: settings
                .poll_max
                .map_or(defaults.max, |span| span.0)
                .max(min),
        }
    }
}

/// Runs every repository until `shutdown` turns true, then returns once
/// each has stopped at a safe point. `on_event` hears every event of every
/// repository (it runs on the engine's threads: it must not block). While
/// running, each repository's live state is kept where
/// [`status`](crate::status) finds it.
///
/// This is [`Engine`](crate::Engine) with a fixed set of repositories, as
/// `escale run` needs it.
pub async fn run(
    config_dir: &ConfigDir,
    repositories: Vec<RunRepository>,
    mut shutdown: watch::Receiver<bool>,
    on_event: EventSink,
) -> Result<()> {
    let engine = crate::Engine::new(config_dir.clone(), on_event);
    for repository in repositories {
        engine.start(repository)?;
    }
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    engine.shutdown().await;
    Ok(())
}

/// What a running repository hears from its host, besides shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Run a cycle now.
    SyncNow,
    /// Stop syncing until [`Command::Resume`].
    Pause,
    /// Sync again.
    Resume,
}

/// How a repository's task is told what to do.
pub(crate) struct Control {
    /// Turns true when the repository must stop for good.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Set to interrupt a cycle at its next safe point (stop or pause);
    /// cycles check it between files and chunks. Only the task clears it.
    pub(crate) interrupt: Arc<AtomicBool>,
    /// Commands, in the order they were given.
    pub(crate) commands: mpsc::Receiver<Command>,
}

pub(crate) async fn repository_task(
    config_dir: ConfigDir,
    repository: RunRepository,
    control: Control,
    on_event: EventSink,
) {
    let poll = repository.poll;
    // A live report holds until well after the next poll is due.
    let live = Arc::new(LiveFile::new(
        &config_dir,
        &repository.name,
        poll.max.saturating_mul(2) + Duration::from_secs(60),
    ));
    let sink: EventSink = {
        let live = Arc::clone(&live);
        Arc::new(move |event: &Event| {
            live.update(event);
            on_event(event);
        })
    };
    let events = Events::new(&repository.name, Some(Arc::clone(&sink)));
    events.state(RepositoryState::Idle);
    repository_loop(config_dir, repository, poll, control, sink, &events, &live).await;
    events.state(RepositoryState::Stopped);
    live.remove();
}

async fn repository_loop(
    config_dir: ConfigDir,
    repository: RunRepository,
    poll: PollBounds,
    control: Control,
    sink: EventSink,
    events: &Events,
    live: &LiveFile,
) {
    let Control {
        mut shutdown,
        interrupt,
        mut commands,
    } = control;
    // One pending signal is enough: events that arrive meanwhile are
    // covered by the cycle it triggers.
    let (changed, mut changes) = mpsc::channel(1);
    let _watcher = watch_folder(&repository.folder, config_dir.path(), changed);
    let keys = KeyCache::default();
    let mut interval = poll.min;
    let mut failures = 0u32;
    let mut last_cycle = Instant::now();
    // Starting counts as activity: whoever starts Escale expects to see
    // things move.
    let mut last_activity = Instant::now();
    // The heads as they were before the last cycle: polls compare against
    // them. `None` runs a full cycle at the next poll.
    let mut seen: Option<u64> = None;
    // The heads read just before the coming cycle, when already known.
    let mut before: Option<u64> = None;
    let mut cycle_due = true;
    let mut paused = repository.paused;
    if paused {
        events.state(RepositoryState::Paused);
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        if cycle_due && !paused {
            cycle_due = false;
            if before.is_none() {
                before = heads_fingerprint(&config_dir, &repository.name).await.ok();
            }
            let result = sync_until(
                &config_dir,
                &repository.name,
                repository.passphrase.clone(),
                Arc::clone(&interrupt),
                Some(Arc::clone(&keys)),
                Some(Arc::clone(&sink)),
            )
            .await;
            if matches!(result, Err(Error::Stopped)) {
                if *shutdown.borrow() {
                    return;
                }
                // Interrupted for a pause (its command follows the flag).
                // What the cycle did not finish is done after the resume.
                paused = true;
                events.state(RepositoryState::Paused);
                cycle_due = true;
                seen = None;
                before = None;
                continue;
            }
            last_cycle = Instant::now();
            report_outcome(events, &result);
            match &result {
                Ok(report) => {
                    failures = 0;
                    if report.changes_sent + report.changes_received > 0 {
                        last_activity = Instant::now();
                    }
                    // A cycle with problems (a file being edited, a damaged
                    // relay file) is retried at the next poll even if the
                    // heads stay the same; problems alone are not activity,
                    // so a lasting one is retried ever more rarely.
                    seen = if report.problems.is_empty() {
                        before
                    } else {
                        None
                    };
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    seen = None;
                }
            }
            before = None;
            interval = next_interval(interval, last_activity.elapsed(), poll);
        }
        if paused {
            // Only a command or shutdown wakes a paused repository; changes
            // in the folder are remembered for the resume.
            tokio::select! {
                _ = shutdown.changed() => return,
                command = commands.recv() => match command {
                    Some(Command::Resume) => {
                        paused = false;
                        interrupt.store(false, Ordering::Relaxed);
                        last_activity = Instant::now();
                        events.state(RepositoryState::Idle);
                    }
                    Some(Command::Pause | Command::SyncNow) => {}
                    None => return,
                },
                Some(()) = changes.recv() => cycle_due = true,
            }
            continue;
        }
        let wait = if failures > 0 {
            backoff(failures, poll)
        } else {
            interval
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            command = commands.recv() => match command {
                Some(Command::Pause) => {
                    paused = true;
                    events.state(RepositoryState::Paused);
                }
                Some(Command::SyncNow) => {
                    last_activity = Instant::now();
                    interval = poll.min;
                    cycle_due = true;
                }
                Some(Command::Resume) => {}
                None => return,
            },
            () = tokio::time::sleep(wait) => {
                // A cheap look at the heads decides whether a full cycle is
                // worth it; a periodic full cycle is the safety net for
                // changes the watcher missed.
                let now = heads_fingerprint(&config_dir, &repository.name).await.ok();
                live.touch();
                let quiet = now.is_some() && now == seen;
                if quiet && last_cycle.elapsed() < SAFETY_CYCLE {
                    interval = next_interval(interval, last_activity.elapsed(), poll);
                } else {
                    if seen.is_some() && now.is_some() && !quiet {
                        // Another client published something.
                        last_activity = Instant::now();
                    }
                    before = now;
                    cycle_due = true;
                }
            }
            Some(()) = changes.recv() => {
                last_activity = Instant::now();
                // Wait for the burst to end.
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        () = tokio::time::sleep(DEBOUNCE) => break,
                        Some(()) = changes.recv() => {}
                    }
                }
                cycle_due = true;
            }
        }
    }
}

/// Tells the front ends how a cycle ended: idle after a success (its report
/// went out as a `CycleDone` event), paused by the mass-deletion guard, or
/// in error (with the error as a problem) until the next attempt.
fn report_outcome(events: &Events, result: &Result<SyncReport>) {
    match result {
        Ok(_) => events.state(RepositoryState::Idle),
        Err(error) => {
            events.problem(&crate::sync::Problem::from_error(None, error));
            events.state(if error.kind() == crate::error::ErrorKind::MassDeletion {
                RepositoryState::Paused
            } else {
                RepositoryState::Error
            });
        }
    }
}

/// Whether a file-system event may be a change to sync.
///
/// Opening or reading a file or a folder is not: the scan of every cycle
/// opens the folders it lists, and counting that would start the next
/// cycle, and so on forever; a person opening a document does not change
/// it either. Closing a file that was open for writing is a change. So is
/// an event asking for a rescan (the kernel's queue overflowed), which
/// names no path. Escale's own writes in its work folder (downloads,
/// versions) and in its settings folder (state) are not changes.
fn is_change(event: &notify::Event, work: &Path, settings: &Path) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    event
        .paths
        .iter()
        .any(|path| !path.starts_with(work) && !path.starts_with(settings))
}

/// Watches `folder` recursively; returns `None` (polling only) if the
/// platform refuses, for example when out of inotify watches.
fn watch_folder(
    folder: &Path,
    settings: &Path,
    changed: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let work = folder.join(WORK_FOLDER);
    let settings = settings.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (events lost, a watch gone) may hide a change: a cycle
        // finds out.
        let relevant = match event {
            Ok(event) => is_change(&event, &work, &settings),
            Err(_) => true,
        };
        if relevant {
            let _ = changed.try_send(());
        }
    })
    .map_err(|error| tracing::warn!(%error, "cannot watch the folder; polling only"))
    .ok()?;
    watcher
        .watch(folder, notify::RecursiveMode::Recursive)
        .map_err(|error| tracing::warn!(%error, "cannot watch the folder; polling only"))
        .ok()?;
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: PollBounds = PollBounds {
        min: Duration::from_secs(2),
        max: Duration::from_secs(90),
    };

    #[test]
    fn polling_stays_fast_while_warm_then_doubles_up_to_the_maximum() {
        let secs = Duration::from_secs;
        // However long it had grown, activity brings it back to the minimum.
        assert_eq!(next_interval(secs(90), secs(0), POLL), secs(2));
        assert_eq!(next_interval(secs(2), secs(59), POLL), secs(2));
        let mut interval = secs(2);
        let mut seen = Vec::new();
        for _ in 0..7 {
            interval = next_interval(interval, secs(61), POLL);
            seen.push(interval.as_secs());
        }
        assert_eq!(seen, [4, 8, 16, 32, 64, 90, 90]);
    }

    #[test]
    fn opening_or_reading_is_not_a_change_but_writing_is() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, Flag, ModifyKind, RemoveKind,
        };
        use notify::{Event, EventKind};
        let (work, settings) = (Path::new("/f/.escale"), Path::new("/cfg"));
        let event = |kind: EventKind, path: &str| Event::new(kind).add_path(path.into());
        let doc = "/f/report.odt";
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Remove(RemoveKind::Any),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(is_change(&event(kind, doc), work, settings), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!is_change(&event(kind, doc), work, settings), "{kind:?}");
            assert!(!is_change(&event(kind, "/f"), work, settings), "{kind:?}");
        }
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(!is_change(
            &event(write, "/f/.escale/tmp/x"),
            work,
            settings
        ));
        assert!(!is_change(
            &event(write, "/cfg/state/s.sqlite3"),
            work,
            settings
        ));
        let rescan = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert!(is_change(&rescan, work, settings));
    }

    #[test]
    fn failures_back_off_up_to_the_maximum_with_about_a_second_of_jitter() {
        for (failures, base) in [(1, 4), (2, 8), (5, 64), (6, 90), (40, 90)] {
            let wait = backoff(failures, POLL);
            let base = Duration::from_secs(base);
            assert!(
                wait >= base && wait <= base + Duration::from_millis(1020),
                "{failures} failure(s): {wait:?}"
            );
        }
    }
}
