//! The engine host: repositories syncing in the background, one task each,
//! started, paused, resumed, nudged and stopped while the others go on.
//!
//! Both front ends run their repositories through it: `escale run` starts
//! every configured repository once ([`run`](crate::run)); the desktop app
//! starts one when the user adds a folder, stops it when they remove it,
//! and pauses or resumes from its window and tray.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::ConfigDir;
use crate::daemon::{Command, Control, RunRepository, repository_task};
use crate::error::{Error, Result};
use crate::events::EventSink;

/// Commands waiting for a repository's task; more are refused as busy
/// rather than queued without end. A task takes them between cycles, and
/// a pause reaches a running cycle through its interrupt flag at once.
const COMMAND_QUEUE: usize = 16;

/// Runs repositories in the background and takes commands for them.
///
/// It must be created inside a Tokio runtime, whose tasks run the
/// repositories. Dropping it without [`shutdown`](Engine::shutdown) lets
/// cycles in progress end abruptly (the next start resumes them safely).
pub struct Engine {
    config_dir: ConfigDir,
    on_event: EventSink,
    running: Mutex<HashMap<String, Running>>,
}

/// One repository's task and the ways to reach it.
struct Running {
    shutdown: watch::Sender<bool>,
    interrupt: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Running {
    /// Asks the task to stop at its next safe point. The flag is set after
    /// the shutdown token, so an interrupted cycle sees why it stopped.
    fn ask_to_stop(&self) {
        let _ = self.shutdown.send(true);
        self.interrupt.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config_dir", &self.config_dir)
            .field("running", &self.running_names())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with no repository running yet. `on_event` hears every
    /// event of every repository; it runs on the engine's threads and must
    /// not block (send on a channel, store a value).
    pub fn new(config_dir: ConfigDir, on_event: EventSink) -> Self {
        Engine {
            config_dir,
            on_event,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        // A panic elsewhere while holding the map leaves it consistent:
        // every change to it is a single insert or remove.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts syncing `repository` in the background. Refused when a
    /// repository of that name is already running here.
    pub fn start(&self, repository: RunRepository) -> Result<()> {
        let mut running = self.running();
        if let Some(existing) = running.get(&repository.name)
            && !existing.task.is_finished()
        {
            return Err(Error::Internal(format!(
                "\"{}\" is already syncing",
                repository.name
            )));
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let interrupt = Arc::new(AtomicBool::new(false));
        let name = repository.name.clone();
        let task = tokio::spawn(repository_task(
            self.config_dir.clone(),
            repository,
            Control {
                shutdown: shutdown_rx,
                interrupt: Arc::clone(&interrupt),
                commands: commands_rx,
            },
            Arc::clone(&self.on_event),
        ));
        running.insert(
            name,
            Running {
                shutdown,
                interrupt,
                commands,
                task,
            },
        );
        Ok(())
    }

    /// The names of the repositories running here, sorted.
    pub fn running_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .running()
            .iter()
            .filter(|(_, running)| !running.task.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Whether `name` is running here.
    pub fn is_running(&self, name: &str) -> bool {
        self.running()
            .get(name)
            .is_some_and(|running| !running.task.is_finished())
    }

    fn send(&self, name: &str, command: Command) -> Result<()> {
        let running = self.running();
        let Some(target) = running.get(name) else {
            return Err(Error::UnknownRepository(name.to_owned()));
        };
        if command == Command::Pause {
            // A cycle in progress stops at its next safe point rather than
            // finishing first: a pause is felt at once.
            target.interrupt.store(true, Ordering::Relaxed);
        }
        target
            .commands
            .try_send(command)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => Error::Internal(format!(
                    "\"{name}\" has too many requests waiting; try again in a moment"
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Internal(format!("\"{name}\" is no longer running"))
                }
            })
    }

    /// Pauses `name`: a cycle in progress stops at its next safe point and
    /// nothing syncs until [`resume`](Engine::resume).
    pub fn pause(&self, name: &str) -> Result<()> {
        self.send(name, Command::Pause)
    }

    /// Resumes `name` after [`pause`](Engine::pause), with a cycle at once.
    pub fn resume(&self, name: &str) -> Result<()> {
        self.send(name, Command::Resume)
    }

    /// Runs a cycle of `name` now rather than at its next poll (ignored
    /// while it is paused).
    pub fn sync_now(&self, name: &str) -> Result<()> {
        self.send(name, Command::SyncNow)
    }

    /// Stops `name` at its next safe point and waits until it has stopped.
    /// Stopping a repository that is not running does nothing.
    pub async fn stop(&self, name: &str) {
        let Some(running) = self.running().remove(name) else {
            return;
        };
        running.ask_to_stop();
        if let Err(error) = running.task.await {
            tracing::error!(repository = name, %error, "the repository's task failed");
        }
    }

    /// Stops every repository at its next safe point and waits for all.
    pub async fn shutdown(&self) {
        let all: Vec<(String, Running)> = self.running().drain().collect();
        for (_, running) in &all {
            running.ask_to_stop();
        }
        for (name, running) in all {
            if let Err(error) = running.task.await {
                tracing::error!(repository = name, %error, "the repository's task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::events::{Event, EventKind, RepositoryState};
    use crate::{NewRepository, Passphrase, PollBounds};

    const PASSPHRASE: &str = "engine test passphrase";

    /// Every event heard, and a way to wait for one.
    #[derive(Default)]
    struct Heard {
        events: Mutex<Vec<Event>>,
        notify: tokio::sync::Notify,
    }

    impl Heard {
        fn sink(self: &Arc<Self>) -> EventSink {
            let heard = Arc::clone(self);
            Arc::new(move |event: &Event| {
                heard.events.lock().unwrap().push(event.clone());
                heard.notify.notify_waiters();
            })
        }

        fn count(&self) -> usize {
            self.events.lock().unwrap().len()
        }

        /// Waits until an event after the first `from` matches; returns
        /// its index.
        async fn wait_for(&self, from: usize, what: impl Fn(&EventKind) -> bool) -> usize {
            let wait = async {
                loop {
                    let notified = self.notify.notified();
                    if let Some(found) = self.events.lock().unwrap()[from..]
                        .iter()
                        .position(|event| what(&event.kind))
                    {
                        return from + found;
                    }
                    notified.await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .unwrap_or_else(|_| panic!("no such event; heard {:#?}", self.events.lock()))
        }

        fn cycles_sending_after(&self, from: usize) -> u64 {
            self.events.lock().unwrap()[from..]
                .iter()
                .map(|event| match &event.kind {
                    EventKind::CycleDone(report) => report.changes_sent,
                    _ => 0,
                })
                .sum()
        }
    }

    fn is_state(state: RepositoryState) -> impl Fn(&EventKind) -> bool {
        move |kind| matches!(kind, EventKind::State { state: s } if *s == state)
    }

    fn is_cycle(kind: &EventKind) -> bool {
        matches!(kind, EventKind::CycleDone(_))
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        config_dir: ConfigDir,
        folder: std::path::PathBuf,
    }

    async fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let relay = tmp.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let config_dir = ConfigDir::new(tmp.path().join("config"));
        let folder = tmp.path().join("folder");
        crate::init(
            &config_dir,
            NewRepository::new("docs", &folder, format!("file://{}", relay.display())),
            Passphrase::new(PASSPHRASE.into()),
        )
        .await
        .unwrap();
        Fixture {
            _tmp: tmp,
            config_dir,
            folder,
        }
    }

    fn repository(folder: &Path, poll: Duration) -> RunRepository {
        RunRepository {
            name: "docs".into(),
            folder: folder.to_owned(),
            passphrase: Passphrase::new(PASSPHRASE.into()),
            poll: PollBounds {
                min: poll,
                max: poll,
            },
            paused: false,
        }
    }

    /// An engine running the fixture's repository, and what it says.
    fn running(fx: &Fixture, poll: Duration) -> (Engine, Arc<Heard>) {
        let heard = Arc::new(Heard::default());
        let engine = Engine::new(fx.config_dir.clone(), heard.sink());
        engine.start(repository(&fx.folder, poll)).unwrap();
        (engine, heard)
    }

    /// A second computer of the fixture's repository: its settings and
    /// folder (under the returned temporary folder).
    async fn other_computer(fx: &Fixture) -> (tempfile::TempDir, ConfigDir, std::path::PathBuf) {
        let other = tempfile::tempdir().unwrap();
        let config = ConfigDir::new(other.path().join("config"));
        let folder = other.path().join("folder");
        let relay = fx.config_dir.load().unwrap().repositories[0].relay.clone();
        crate::join(
            &config,
            NewRepository::new("docs", &folder, relay),
            Passphrase::new(PASSPHRASE.into()),
        )
        .await
        .unwrap();
        (other, config, folder)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_repository_sends_nothing_until_resumed() {
        let fx = fixture().await;
        let (engine, heard) = running(&fx, Duration::from_millis(100));
        heard.wait_for(0, is_cycle).await;

        engine.pause("docs").unwrap();
        let paused = heard.wait_for(0, is_state(RepositoryState::Paused)).await;
        std::fs::write(fx.folder.join("while-paused.txt"), "written while paused").unwrap();
        // Several polls and the watcher's quiet time pass: nothing moves.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(heard.cycles_sending_after(paused), 0);
        assert!(engine.is_running("docs"));

        let before_resume = heard.count();
        engine.resume("docs").unwrap();
        let mut from = before_resume;
        while heard.cycles_sending_after(before_resume) == 0 {
            from = heard.wait_for(from, is_cycle).await + 1;
        }
        engine.shutdown().await;
        assert!(!engine.is_running("docs"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repository_started_paused_runs_no_cycle_until_resumed() {
        let fx = fixture().await;
        std::fs::write(fx.folder.join("before-start.txt"), "waiting").unwrap();
        let heard = Arc::new(Heard::default());
        let engine = Engine::new(fx.config_dir.clone(), heard.sink());
        let mut paused = repository(&fx.folder, Duration::from_millis(100));
        paused.paused = true;
        engine.start(paused).unwrap();
        heard.wait_for(0, is_state(RepositoryState::Paused)).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        engine.sync_now("docs").unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(heard.cycles_sending_after(0), 0, "a paused start synced");

        engine.resume("docs").unwrap();
        let mut from = 0;
        while heard.cycles_sending_after(0) == 0 {
            from = heard.wait_for(from, is_cycle).await + 1;
        }
        engine.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_now_runs_a_cycle_long_before_the_next_poll() {
        let fx = fixture().await;
        let (engine, heard) = running(&fx, Duration::from_secs(3600));
        let first = heard.wait_for(0, is_cycle).await;
        engine.sync_now("docs").unwrap();
        heard.wait_for(first + 1, is_cycle).await;
        engine.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pause_interrupts_a_cycle_and_the_resume_finishes_its_work() {
        let fx = fixture().await;
        std::fs::create_dir_all(&fx.folder).unwrap();
        for i in 0..400 {
            std::fs::write(
                fx.folder.join(format!("file-{i:03}.txt")),
                vec![b'x'; 20_000],
            )
            .unwrap();
        }
        let (engine, heard) = running(&fx, Duration::from_secs(3600));
        heard
            .wait_for(0, |kind| matches!(kind, EventKind::Progress(_)))
            .await;
        engine.pause("docs").unwrap();
        let paused = heard.wait_for(0, is_state(RepositoryState::Paused)).await;
        // Paused means quiet: no cycle starts, however long it waits.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_pause = heard.count();
        assert!(
            !heard.events.lock().unwrap()[paused + 1..]
                .iter()
                .any(|event| is_state(RepositoryState::Syncing)(&event.kind)),
            "a cycle ran while paused"
        );

        engine.resume("docs").unwrap();
        heard.wait_for(after_pause, is_cycle).await;
        engine.shutdown().await;
        // Everything was sent in the end: a second computer receives it all.
        let (_other, other_config, other_folder) = other_computer(&fx).await;
        crate::sync(&other_config, "docs", Passphrase::new(PASSPHRASE.into()))
            .await
            .unwrap();
        let received = std::fs::read_dir(&other_folder)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("file-")
            })
            .count();
        assert_eq!(received, 400);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_ends_one_repository_and_commands_to_it_are_refused() {
        let fx = fixture().await;
        let (engine, heard) = running(&fx, Duration::from_secs(3600));
        assert!(
            engine
                .start(repository(&fx.folder, Duration::from_secs(3600)))
                .is_err(),
            "the same repository started twice"
        );
        heard.wait_for(0, is_cycle).await;
        engine.stop("docs").await;
        heard.wait_for(0, is_state(RepositoryState::Stopped)).await;
        assert!(!engine.is_running("docs"));
        let refused = engine.pause("docs").unwrap_err();
        assert_eq!(refused.code(), "invalid_input");
        // It can start again.
        engine
            .start(repository(&fx.folder, Duration::from_secs(3600)))
            .unwrap();
        assert_eq!(engine.running_names(), vec!["docs".to_owned()]);
        engine.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiving_counts_the_files_and_bytes_it_applies() {
        let fx = fixture().await;
        let (_other, other_config, other_folder) = other_computer(&fx).await;
        for i in 0..5 {
            std::fs::write(other_folder.join(format!("in-{i}.bin")), vec![7u8; 10_000]).unwrap();
        }
        crate::sync(&other_config, "docs", Passphrase::new(PASSPHRASE.into()))
            .await
            .unwrap();

        let (engine, heard) = running(&fx, Duration::from_secs(3600));
        heard.wait_for(0, is_cycle).await;
        engine.shutdown().await;
        let last = heard
            .events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|event| match &event.kind {
                EventKind::Progress(progress) if progress.phase == crate::Phase::Receiving => {
                    Some(progress.clone())
                }
                _ => None,
            })
            .expect("receiving reported its progress");
        assert_eq!(last.files_total, 5, "{last:?}");
        assert_eq!(last.bytes_total, 50_000, "{last:?}");
        assert_eq!(last.files_done, last.files_total, "{last:?}");
        assert_eq!(last.bytes_done, last.bytes_total, "{last:?}");
    }
}
