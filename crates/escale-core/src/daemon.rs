//! `escale run`: every configured repository synced in the background, one
//! task each, until shutdown.
//!
//! Each repository's task waits for whichever comes first: a change in its
//! folder (file-system notifications, debounced so a burst of events makes
//! one cycle), its poll timer (fast after activity, doubling up to a
//! maximum while idle), or shutdown. A poll only compares the relay's heads
//! with how they were after the last cycle, and runs a full cycle only if
//! another client published something, so a quiet night costs little. The
//! keys derived from the passphrase are kept between cycles. A failing
//! repository backs off with jitter and never holds up the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::{mpsc, watch};

use crate::config::ConfigDir;
use crate::error::{Error, Result};
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

/// Hears of every finished cycle: the repository's name and its outcome.
/// The typed event stream of the engine will replace it.
pub type CycleObserver = Arc<dyn Fn(&str, &Result<SyncReport>) + Send + Sync>;

/// One repository to run, with its passphrase.
#[derive(Debug)]
pub struct RunRepository {
    /// Its name in the settings.
    pub name: String,
    /// Its local folder.
    pub folder: PathBuf,
    /// Its passphrase.
    pub passphrase: Passphrase,
}

/// Runs every repository until `shutdown` turns true, then returns once
/// each has stopped at a safe point. `on_cycle` hears of every cycle.
pub async fn run(
    config_dir: &ConfigDir,
    repositories: Vec<RunRepository>,
    poll: PollBounds,
    mut shutdown: watch::Receiver<bool>,
    on_cycle: CycleObserver,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for repository in repositories {
        tasks.spawn(repository_task(
            config_dir.clone(),
            repository,
            poll,
            shutdown.clone(),
            Arc::clone(&stop),
            Arc::clone(&on_cycle),
        ));
    }
    // Cycles in progress check this flag between files and chunks.
    tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        }
    });
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|error| Error::Internal(error.to_string()))?;
    }
    Ok(())
}

async fn repository_task(
    config_dir: ConfigDir,
    repository: RunRepository,
    poll: PollBounds,
    mut shutdown: watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
    on_cycle: CycleObserver,
) {
    // One pending signal is enough: events that arrive meanwhile are
    // covered by the cycle it triggers.
    let (changed, mut changes) = mpsc::channel(1);
    let _watcher = watch_folder(&repository.folder, config_dir.path(), changed);
    let keys = KeyCache::default();
    let mut interval = poll.min;
    let mut failures = 0u32;
    let mut last_cycle = Instant::now();
    // After a cycle, the heads as they were: polls compare against it.
    let mut seen: Option<u64> = None;
    let mut cycle_due = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if cycle_due {
            let result = sync_until(
                &config_dir,
                &repository.name,
                repository.passphrase.clone(),
                Arc::clone(&stop),
                Some(Arc::clone(&keys)),
            )
            .await;
            if matches!(result, Err(Error::Stopped)) {
                return;
            }
            last_cycle = Instant::now();
            on_cycle(&repository.name, &result);
            match &result {
                Ok(report) => {
                    failures = 0;
                    let active = report.changes_sent + report.changes_received > 0
                        || !report.problems.is_empty();
                    interval = if active {
                        poll.min
                    } else {
                        (interval * 2).min(poll.max)
                    };
                    seen = heads_fingerprint(&config_dir, &repository.name).await.ok();
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    seen = None;
                }
            }
        }
        let wait = if failures > 0 {
            let backoff = poll.min.saturating_mul(1 << failures.min(16)).min(poll.max);
            // Jitter keeps clients that failed together from retrying together.
            let jitter = u64::from(crate::ids::random_bytes::<1>()[0]) * 4;
            backoff + Duration::from_millis(jitter)
        } else {
            interval
        };
        cycle_due = tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(wait) => {
                // A cheap look at the heads decides whether a full cycle is
                // worth it; a periodic full cycle is the safety net for
                // changes the watcher missed.
                let now = heads_fingerprint(&config_dir, &repository.name).await.ok();
                let quiet = now.is_some() && now == seen;
                if quiet && last_cycle.elapsed() < SAFETY_CYCLE {
                    interval = (interval * 2).min(poll.max);
                    false
                } else {
                    true
                }
            }
            Some(()) = changes.recv() => {
                interval = poll.min;
                // Wait for the burst to end.
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        () = tokio::time::sleep(DEBOUNCE) => break,
                        Some(()) = changes.recv() => {}
                    }
                }
                true
            }
        };
    }
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
        let Ok(event) = event else {
            return;
        };
        // Escale's own writes (downloads, versions, state) are not changes.
        let relevant = event
            .paths
            .iter()
            .any(|path| !path.starts_with(&work) && !path.starts_with(&settings));
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
