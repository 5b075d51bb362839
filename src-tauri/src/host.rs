//! The engine inside the app: it runs the repositories, folds their events
//! into the views the window shows, and keeps the tray and the
//! notifications up to date. Nothing polls: each engine event is pushed to
//! the window as it happens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use escale_core::{
    ConfigDir, Engine, Event, EventSink, Passphrase, PollBounds, RepositoryConfig, RunRepository,
};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::mpsc;

use crate::IpcError;
use crate::app_settings::AppSettings;
use crate::notifications::{Notification, Notifier};
use crate::paused::PausedFolders;
use crate::tray::{self, TrayMenuAction, TrayState};
use crate::views::RepositoryView;

/// Engine events waiting for the window: progress comes at most four
/// times a second per repository, so this is seconds of backlog.
const EVENT_QUEUE: usize = 1024;

/// How often notifications held back by their rate limit are looked at.
const NOTIFICATION_FLUSH: Duration = Duration::from_secs(15);

/// The event the window hears for each changed repository.
pub(crate) const REPOSITORY_EVENT: &str = "repository";

/// The code of a repository whose passphrase this computer lacks.
const PASSPHRASE_MISSING: &str = "passphrase_missing";

/// The event the window hears when a repository is removed.
pub(crate) const REMOVED_EVENT: &str = "repository-removed";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a single assignment: a panic
    // elsewhere cannot leave them half done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the app's commands and tray reach: one per app, managed by Tauri.
pub(crate) struct Host {
    config_dir: ConfigDir,
    engine: Engine,
    views: Mutex<Vec<RepositoryView>>,
    /// Why the settings file could not be read, while it cannot: the
    /// window must say so rather than show no folder at all.
    unreadable: Mutex<Option<IpcError>>,
    notifier: Mutex<Notifier>,
    settings: Mutex<AppSettings>,
    /// The folders paused from the app, kept across restarts.
    paused: Mutex<PausedFolders>,
    tray: tray::Shown,
    /// The settings each running repository was started with: what a
    /// reload compares the settings file against.
    applied: Mutex<HashMap<String, RepositoryConfig>>,
    /// Held by whatever changes which repositories run (a reload, a
    /// removal), so that two of them never interleave.
    changing: tokio::sync::Mutex<()>,
}

impl Host {
    /// The host of the repositories in `config_dir`, with their views but
    /// nothing running yet ([`start`](Host::start) does that), and the
    /// engine events for [`forward`].
    pub(crate) fn new(config_dir: ConfigDir) -> (Self, mpsc::Receiver<Event>) {
        let (sender, events) = mpsc::channel(EVENT_QUEUE);
        let sink: EventSink = Arc::new(move |event: &Event| {
            // Never block the engine: a full queue drops this event, and
            // the next one of the repository brings its view up to date.
            let _ = sender.try_send(event.clone());
        });
        let host = Host {
            engine: Engine::new(config_dir.clone(), sink),
            settings: Mutex::new(AppSettings::load(config_dir.path())),
            paused: Mutex::new(PausedFolders::load(config_dir.path())),
            config_dir,
            views: Mutex::new(Vec::new()),
            unreadable: Mutex::new(None),
            notifier: Mutex::new(Notifier::default()),
            tray: tray::Shown::default(),
            applied: Mutex::new(HashMap::new()),
            changing: tokio::sync::Mutex::new(()),
        };
        // Views exist before the window first asks, so it never shows an
        // empty list while the repositories start.
        host.load_views();
        (host, events)
    }

    /// Reads the settings and makes a view of each repository; remembers
    /// why when they cannot be read.
    fn load_views(&self) {
        match self.config_dir.load() {
            Ok(config) => {
                *lock(&self.views) = config
                    .repositories
                    .iter()
                    .map(|settings| self.new_view(settings))
                    .collect();
            }
            Err(error) => {
                tracing::warn!("{error}");
                *lock(&self.unreadable) = Some(error.into());
            }
        }
    }

    /// Every repository's view, in the order they were added; an error
    /// while the settings file cannot be read. Once it can again (the
    /// person fixed it), its repositories start.
    pub(crate) async fn list<R: Runtime>(
        &self,
        app: &AppHandle<R>,
    ) -> Result<Vec<RepositoryView>, IpcError> {
        if lock(&self.unreadable).is_some() {
            self.reload(app).await;
            if let Some(error) = lock(&self.unreadable).clone() {
                return Err(error);
            }
        }
        Ok(self.views())
    }

    /// Brings what runs in line with the settings file, whoever changed it
    /// (this app, or `escale init` and `escale join` beside it): new
    /// repositories get a view and start, removed ones stop and leave the
    /// window, and changed ones start again with their new settings, paused
    /// still if they were. A repository that cannot run (its passphrase is
    /// not saved yet) is tried again at each reload. Returns whether one
    /// waits for its passphrase.
    pub(crate) async fn reload<R: Runtime>(&self, app: &AppHandle<R>) -> bool {
        let _changing = self.changing.lock().await;
        let config = match self.config_dir.load() {
            Ok(config) => {
                *lock(&self.unreadable) = None;
                config
            }
            Err(error) => {
                tracing::warn!("{error}");
                *lock(&self.unreadable) = Some(error.into());
                return false;
            }
        };
        let gone: Vec<String> = lock(&self.views)
            .iter()
            .map(|view| view.name.clone())
            .filter(|name| config.repository(name).is_none())
            .collect();
        for name in gone {
            self.forget(app, &name).await;
        }
        let mut waiting = false;
        for settings in &config.repositories {
            let applied = lock(&self.applied).get(&settings.name).cloned();
            let known = lock(&self.views)
                .iter()
                .any(|view| view.name == settings.name);
            if !known {
                self.add_view(self.new_view(settings));
            } else if applied.as_ref().is_some_and(|applied| applied != settings) {
                // The poll bounds and the filters are read at the start.
                self.engine.stop(&settings.name).await;
                lock(&self.applied).remove(&settings.name);
                self.update(app, &settings.name, |view| view.set_settings(settings));
            }
            if self.engine.is_running(&settings.name) {
                continue;
            }
            match self.run(settings).await {
                Ok(()) => {
                    if let Ok(view) = self.view(&settings.name) {
                        self.publish(app, &view);
                    }
                }
                Err(error) => {
                    waiting |= error.code == PASSPHRASE_MISSING;
                    self.update(app, &settings.name, |view| {
                        view.fail(&error.code, error.message.clone());
                    });
                }
            }
        }
        self.refresh_tray(app);
        self.apply_start_at_login(app);
        waiting
    }

    /// Starts Escale at login when the person wants it and there is a
    /// folder to keep in sync; never for an app with nothing to do.
    fn apply_start_at_login<R: Runtime>(&self, app: &AppHandle<R>) {
        let wanted = self.app_settings().start_at_login && !lock(&self.views).is_empty();
        let Some(launcher) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
            return;
        };
        let done = if wanted {
            launcher.enable()
        } else if launcher.is_enabled().unwrap_or(true) {
            launcher.disable()
        } else {
            Ok(())
        };
        if let Err(error) = done {
            tracing::warn!("starting at login could not be changed: {error}");
        }
    }

    /// The first view of a repository: paused if the person paused it
    /// before the app last ended.
    fn new_view(&self, settings: &RepositoryConfig) -> RepositoryView {
        let mut view = RepositoryView::new(settings);
        view.paused_by_user = lock(&self.paused).contains(&settings.name);
        view
    }

    fn add_view(&self, view: RepositoryView) {
        let mut views = lock(&self.views);
        views.retain(|existing| existing.name != view.name);
        views.push(view);
    }

    /// Starts syncing a configured repository with its saved passphrase.
    async fn run(&self, settings: &RepositoryConfig) -> Result<(), IpcError> {
        let passphrase = self.passphrase(&settings.name).await?;
        self.engine.start(RunRepository {
            name: settings.name.clone(),
            folder: settings.folder.clone(),
            passphrase,
            poll: PollBounds::of(settings),
            // Paused by the person, before a restart or a settings change.
            paused: self
                .view(&settings.name)
                .is_ok_and(|view| view.paused_by_user),
        })?;
        lock(&self.applied).insert(settings.name.clone(), settings.clone());
        Ok(())
    }

    /// The passphrase of repository `name`, as saved in the keyring.
    pub(crate) async fn passphrase(&self, name: &str) -> Result<Passphrase, IpcError> {
        escale_core::saved_passphrase(&self.config_dir, name)
            .await?
            .ok_or_else(|| {
                IpcError::new(
                    PASSPHRASE_MISSING,
                    "The passphrase of this folder is not saved on this computer. Remove the \
                     folder and add it again with \"Join an existing shared folder\".",
                )
            })
    }

    /// Every repository's view, in the order they were added.
    pub(crate) fn views(&self) -> Vec<RepositoryView> {
        lock(&self.views).clone()
    }

    /// One repository's view.
    pub(crate) fn view(&self, name: &str) -> Result<RepositoryView, IpcError> {
        lock(&self.views)
            .iter()
            .find(|view| view.name == name)
            .cloned()
            .ok_or_else(|| escale_core::Error::UnknownRepository(name.to_owned()).into())
    }

    /// The engine's settings folder.
    pub(crate) fn config_dir(&self) -> &ConfigDir {
        &self.config_dir
    }

    /// Shows and starts a repository just created or joined, or changed,
    /// in the settings file.
    pub(crate) async fn changed<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        name: &str,
    ) -> Result<RepositoryView, IpcError> {
        self.reload(app).await;
        self.view(name)
    }

    /// Changes a repository's view with `change` and shows the result.
    pub(crate) fn update<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        name: &str,
        change: impl FnOnce(&mut RepositoryView),
    ) -> Option<RepositoryView> {
        let view = {
            let mut views = lock(&self.views);
            let view = views.iter_mut().find(|view| view.name == name)?;
            change(view);
            view.clone()
        };
        self.publish(app, &view);
        Some(view)
    }

    fn publish<R: Runtime>(&self, app: &AppHandle<R>, view: &RepositoryView) {
        if let Err(error) = app.emit(REPOSITORY_EVENT, view) {
            tracing::warn!("the window could not be updated: {error}");
        }
        self.refresh_tray(app);
    }

    fn refresh_tray<R: Runtime>(&self, app: &AppHandle<R>) {
        let (state, tooltip) = {
            let views = lock(&self.views);
            (
                TrayState::summarize(views.iter().map(|view| view.state)),
                tray::tooltip(views.iter()),
            )
        };
        // Not under the lock: from another thread, the tray waits for the
        // main thread, which may itself be waiting for the lock in a
        // command.
        self.tray.show(app, state, tooltip);
    }

    /// Pauses a repository from the app.
    pub(crate) fn pause<R: Runtime>(&self, app: &AppHandle<R>, name: &str) -> Result<(), IpcError> {
        self.engine.pause(name)?;
        self.remember_pause(name, true);
        self.update(app, name, |view| view.paused_by_user = true);
        Ok(())
    }

    /// Resumes a repository paused from the app.
    pub(crate) fn resume<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        name: &str,
    ) -> Result<(), IpcError> {
        self.engine.resume(name)?;
        self.remember_pause(name, false);
        self.update(app, name, |view| view.paused_by_user = false);
        Ok(())
    }

    fn remember_pause(&self, name: &str, paused: bool) {
        if let Err(error) = lock(&self.paused).set(name, paused) {
            // The pause holds until the app restarts: worth a line, not a
            // failed click.
            tracing::warn!("{name}: the pause could not be saved: {error}");
        }
    }

    /// Runs a cycle of a repository now.
    pub(crate) fn sync_now(&self, name: &str) -> Result<(), IpcError> {
        Ok(self.engine.sync_now(name)?)
    }

    /// Lets the next cycle of a repository paused by the mass-deletion
    /// guard send the deletions, and runs that cycle now.
    pub(crate) async fn confirm_deletions(&self, name: &str) -> Result<u64, IpcError> {
        let count = escale_core::confirm_deletions(&self.config_dir, name).await?;
        if self.engine.is_running(name) {
            self.sync_now(name)?;
        }
        Ok(count)
    }

    /// What the tray's "Sync now", "Pause all" and "Resume all" do. A
    /// repository that is not running (no passphrase) is skipped.
    pub(crate) fn apply_to_all<R: Runtime>(&self, app: &AppHandle<R>, action: TrayMenuAction) {
        for name in self.engine.running_names() {
            let done = match action {
                TrayMenuAction::SyncNow => self.sync_now(&name),
                TrayMenuAction::PauseAll => self.pause(app, &name),
                TrayMenuAction::ResumeAll => self.resume(app, &name),
                TrayMenuAction::Open | TrayMenuAction::Quit => Ok(()),
            };
            if let Err(error) = done {
                tracing::warn!("{name}: {}", error.message);
            }
        }
    }

    /// Stops a repository and removes it from this computer; its folder
    /// and files stay.
    pub(crate) async fn remove<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        name: &str,
    ) -> Result<(), IpcError> {
        let _changing = self.changing.lock().await;
        self.engine.stop(name).await;
        escale_core::remove(&self.config_dir, name).await?;
        self.forget(app, name).await;
        self.refresh_tray(app);
        self.apply_start_at_login(app);
        Ok(())
    }

    /// Stops a repository gone from the settings and takes it out of the
    /// window.
    async fn forget<R: Runtime>(&self, app: &AppHandle<R>, name: &str) {
        self.engine.stop(name).await;
        lock(&self.applied).remove(name);
        lock(&self.views).retain(|view| view.name != name);
        lock(&self.notifier).forget(name);
        self.remember_pause(name, false);
        if let Err(error) = app.emit(REMOVED_EVENT, serde_json::json!({ "name": name })) {
            tracing::warn!("the window could not be updated: {error}");
        }
    }

    /// The app's own settings.
    pub(crate) fn app_settings(&self) -> AppSettings {
        *lock(&self.settings)
    }

    /// Saves the app's own settings and applies them.
    pub(crate) fn set_app_settings<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        settings: AppSettings,
    ) -> Result<(), IpcError> {
        settings.save(self.config_dir.path()).map_err(|error| {
            IpcError::new(
                "io_error",
                format!("The settings could not be saved: {error}"),
            )
        })?;
        *lock(&self.settings) = settings;
        self.apply_start_at_login(app);
        Ok(())
    }

    /// Stops every repository at a safe point.
    pub(crate) async fn shutdown(&self) {
        self.engine.shutdown().await;
    }

    fn on_event<R: Runtime>(&self, app: &AppHandle<R>, event: &Event) {
        escale_log::log_event(event);
        let now_ms = now_millis();
        let now = Instant::now();
        let changed = {
            let mut views = lock(&self.views);
            views
                .iter_mut()
                .find(|view| view.name == event.repository)
                .and_then(|view| view.apply(event, now_ms, now).then(|| view.clone()))
        };
        if let Some(view) = changed {
            self.publish(app, &view);
        }
        let notifications = lock(&self.notifier).on_event(event, now);
        self.notify(app, notifications);
    }

    fn notify<R: Runtime>(&self, app: &AppHandle<R>, notifications: Vec<Notification>) {
        if notifications.is_empty() || !self.app_settings().notifications {
            return;
        }
        for notification in notifications {
            let shown = app
                .notification()
                .builder()
                .title(&notification.title)
                .body(&notification.body)
                .show();
            if let Err(error) = shown {
                // No notification service (a bare desktop): the window and
                // tray still say it all.
                tracing::warn!("notification not shown: {error}");
            }
        }
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Hands the engine's events to the host, and flushes notifications held
/// back by their rate limit.
pub(crate) async fn forward<R: Runtime>(app: AppHandle<R>, mut events: mpsc::Receiver<Event>) {
    let mut flush = tokio::time::interval(NOTIFICATION_FLUSH);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                app.state::<Host>().on_event(&app, &event);
            }
            _ = flush.tick() => {
                let host = app.state::<Host>();
                let held = lock(&host.notifier).flush(Instant::now());
                host.notify(&app, held);
            }
        }
    }
}
