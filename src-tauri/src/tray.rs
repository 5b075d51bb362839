//! The tray icon and its menu.
//!
//! What the tray shows is decided by plain functions ([`TrayState::icon_png`],
//! [`TrayMenuAction::from_id`]) that tests call directly: a tray host's
//! absence makes building the icon succeed anyway, so only our decisions
//! can be checked.

use std::sync::{Mutex, PoisonError};

use tauri::image::Image;
use tauri::menu::{MenuBuilder, MenuEvent, MenuItemBuilder};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::views::{RepositoryView, ViewState};
use crate::window;

const TRAY_ID: &str = "escale";
const MENU_OPEN: &str = "open";
const MENU_SYNC_NOW: &str = "sync-now";
const MENU_PAUSE_ALL: &str = "pause-all";
const MENU_RESUME_ALL: &str = "resume-all";
const MENU_QUIT: &str = "quit";

/// The overall state the tray icon shows, worst first when several
/// repositories disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// Everything is in sync.
    Idle,
    /// Files are being sent or received.
    Syncing,
    /// The user paused syncing.
    Paused,
    /// Something needs the user's attention.
    Error,
    /// A sender waits for the relay to have room again.
    Waiting,
}

impl TrayState {
    /// The icon for this state, from the generated set in `icons/tray/`.
    pub fn icon_png(self) -> &'static [u8] {
        match self {
            TrayState::Idle => include_bytes!("../../icons/tray/idle.png"),
            TrayState::Syncing => include_bytes!("../../icons/tray/syncing.png"),
            TrayState::Paused => include_bytes!("../../icons/tray/paused.png"),
            TrayState::Error => include_bytes!("../../icons/tray/error.png"),
            TrayState::Waiting => include_bytes!("../../icons/tray/waiting.png"),
        }
    }

    /// The tooltip summary for this state.
    pub fn tooltip(self) -> &'static str {
        match self {
            TrayState::Idle => "Escale — up to date",
            TrayState::Syncing => "Escale — syncing",
            TrayState::Paused => "Escale — paused",
            TrayState::Error => "Escale — needs your attention",
            TrayState::Waiting => "Escale — waiting for space on the shared storage",
        }
    }
}

impl TrayState {
    /// The state of one repository as the tray counts it.
    pub fn of(state: ViewState) -> Self {
        match state {
            ViewState::Idle | ViewState::Starting | ViewState::Stopped => TrayState::Idle,
            ViewState::Syncing => TrayState::Syncing,
            ViewState::Paused => TrayState::Paused,
            ViewState::Error => TrayState::Error,
            ViewState::WaitingForSpace => TrayState::Waiting,
        }
    }

    /// How much a state needs the user, most first: one folder in error
    /// makes the whole icon say so.
    fn urgency(self) -> u8 {
        match self {
            TrayState::Error => 4,
            TrayState::Waiting => 3,
            TrayState::Syncing => 2,
            TrayState::Paused => 1,
            TrayState::Idle => 0,
        }
    }

    /// The icon for several repositories: the most urgent of their states
    /// ([`Idle`](TrayState::Idle) when there are none).
    pub fn summarize(states: impl IntoIterator<Item = ViewState>) -> Self {
        states
            .into_iter()
            .map(TrayState::of)
            .max_by_key(|state| state.urgency())
            .unwrap_or(TrayState::Idle)
    }
}

/// The tooltip for these repositories: the overall state, and which folder
/// needs attention when one does.
pub(crate) fn tooltip<'a>(views: impl IntoIterator<Item = &'a RepositoryView>) -> String {
    let views: Vec<&RepositoryView> = views.into_iter().collect();
    if views.is_empty() {
        return "Escale — no folder set up yet".to_owned();
    }
    let state = TrayState::summarize(views.iter().map(|view| view.state));
    let concerned: Vec<&str> = views
        .iter()
        .filter(|view| TrayState::of(view.state) == state)
        .map(|view| view.name.as_str())
        .collect();
    match state {
        TrayState::Idle if views.len() == 1 => format!("Escale — {} is up to date", views[0].name),
        TrayState::Idle => format!("Escale — {} folders up to date", views.len()),
        TrayState::Syncing => {
            let detail = views
                .iter()
                .find_map(|view| view.progress.as_ref().map(|p| (view, p)))
                .map(|(view, progress)| {
                    format!(
                        " ({}: {} of {} files)",
                        view.name, progress.files_done, progress.files_total
                    )
                })
                .unwrap_or_default();
            format!("{}{detail}", state.tooltip())
        }
        _ => format!("{}: {}", state.tooltip(), concerned.join(", ")),
    }
}

/// What a click in the tray menu asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayMenuAction {
    /// Show and focus the main window.
    Open,
    /// Run a cycle of every folder now.
    SyncNow,
    /// Pause every folder.
    PauseAll,
    /// Resume every folder.
    ResumeAll,
    /// Stop Escale altogether.
    Quit,
}

impl TrayMenuAction {
    /// The action behind a menu item id, if the id is one of ours.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            MENU_OPEN => Some(TrayMenuAction::Open),
            MENU_SYNC_NOW => Some(TrayMenuAction::SyncNow),
            MENU_PAUSE_ALL => Some(TrayMenuAction::PauseAll),
            MENU_RESUME_ALL => Some(TrayMenuAction::ResumeAll),
            MENU_QUIT => Some(TrayMenuAction::Quit),
            _ => None,
        }
    }
}

/// Creates the tray icon with its menu, showing [`TrayState::Idle`].
pub(crate) fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let open = MenuItemBuilder::with_id(MENU_OPEN, "Open Escale").build(app)?;
    let sync_now = MenuItemBuilder::with_id(MENU_SYNC_NOW, "Sync now").build(app)?;
    let pause_all = MenuItemBuilder::with_id(MENU_PAUSE_ALL, "Pause all").build(app)?;
    let resume_all = MenuItemBuilder::with_id(MENU_RESUME_ALL, "Resume all").build(app)?;
    let quit = MenuItemBuilder::with_id(MENU_QUIT, "Quit Escale").build(app)?;
    let menu = MenuBuilder::new(app)
        .item(&open)
        .separator()
        .item(&sync_now)
        .item(&pause_all)
        .item(&resume_all)
        .separator()
        .item(&quit)
        .build()?;
    let state = TrayState::Idle;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(state.icon_png())?)
        .tooltip(state.tooltip())
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)?;
    Ok(())
}

/// What the tray shows now: the window's views change at every progress
/// event, and an icon unchanged since must not be decoded and set again.
#[derive(Debug, Default)]
pub(crate) struct Shown(Mutex<Option<(TrayState, String)>>);

impl Shown {
    /// Shows `state` and `tooltip` in the tray, each only if it changed
    /// (nothing when there is no tray).
    pub(crate) fn show<R: Runtime>(&self, app: &AppHandle<R>, state: TrayState, tooltip: String) {
        let (new_icon, new_tooltip) = {
            let mut shown = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let changes = match shown.as_ref() {
                Some((old_state, old_tooltip)) => (*old_state != state, *old_tooltip != tooltip),
                None => (true, true),
            };
            *shown = Some((state, tooltip.clone()));
            changes
        };
        // Not under the lock: from another thread, the tray waits for the
        // main thread.
        let Some(tray) = app.tray_by_id(TRAY_ID) else {
            return;
        };
        // A tray host may refuse either; the other is still worth showing.
        if new_icon && let Ok(icon) = Image::from_bytes(state.icon_png()) {
            let _ = tray.set_icon(Some(icon));
        }
        if new_tooltip {
            let _ = tray.set_tooltip(Some(tooltip));
        }
    }
}

fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    let Some(action) = TrayMenuAction::from_id(event.id().as_ref()) else {
        return;
    };
    match action {
        TrayMenuAction::Open => window::show_main(app),
        TrayMenuAction::Quit => app.exit(0),
        TrayMenuAction::SyncNow | TrayMenuAction::PauseAll | TrayMenuAction::ResumeAll => {
            if let Some(host) = app.try_state::<crate::host::Host>() {
                host.apply_to_all(app, action);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TrayState; 5] = [
        TrayState::Idle,
        TrayState::Syncing,
        TrayState::Paused,
        TrayState::Error,
        TrayState::Waiting,
    ];

    #[test]
    fn every_state_has_its_own_decodable_icon() {
        for (index, state) in ALL.iter().enumerate() {
            let image = Image::from_bytes(state.icon_png())
                .unwrap_or_else(|err| panic!("{state:?} icon does not decode: {err}"));
            assert!(image.width() >= 32 && image.height() >= 32, "{state:?}");
            for other in &ALL[index + 1..] {
                assert_ne!(
                    state.icon_png(),
                    other.icon_png(),
                    "{state:?} and {other:?} look the same"
                );
            }
        }
    }

    #[test]
    fn every_state_has_a_distinct_tooltip() {
        let mut tips: Vec<_> = ALL.iter().map(|s| s.tooltip()).collect();
        tips.sort_unstable();
        tips.dedup();
        assert_eq!(tips.len(), ALL.len());
    }

    #[test]
    fn the_most_urgent_state_wins() {
        use ViewState as V;
        assert_eq!(TrayState::summarize([]), TrayState::Idle);
        assert_eq!(
            TrayState::summarize([V::Idle, V::Starting]),
            TrayState::Idle
        );
        assert_eq!(
            TrayState::summarize([V::Idle, V::Paused]),
            TrayState::Paused
        );
        assert_eq!(
            TrayState::summarize([V::Paused, V::Syncing]),
            TrayState::Syncing
        );
        assert_eq!(
            TrayState::summarize([V::Syncing, V::WaitingForSpace]),
            TrayState::Waiting
        );
        assert_eq!(
            TrayState::summarize([V::WaitingForSpace, V::Error, V::Idle]),
            TrayState::Error
        );
    }

    fn view(name: &str, state: ViewState) -> RepositoryView {
        let mut view = RepositoryView::new(&escale_core::RepositoryConfig::new(
            name,
            "/home/ana/folder",
            "file:///mnt/relay",
        ));
        view.state = state;
        view
    }

    #[test]
    fn the_tooltip_names_the_folders_that_need_attention() {
        assert_eq!(tooltip([]), "Escale — no folder set up yet");
        let reports = view("Reports", ViewState::Idle);
        assert_eq!(tooltip([&reports]), "Escale — Reports is up to date");
        let scans = view("Scans", ViewState::Error);
        let photos = view("Photos", ViewState::Error);
        assert_eq!(
            tooltip([&reports, &scans, &photos]),
            "Escale — needs your attention: Scans, Photos"
        );
        assert_eq!(
            tooltip([&reports, &view("Old", ViewState::Idle)]),
            "Escale — 2 folders up to date"
        );
    }

    #[test]
    fn menu_ids_map_to_actions() {
        assert_eq!(TrayMenuAction::from_id("open"), Some(TrayMenuAction::Open));
        assert_eq!(
            TrayMenuAction::from_id("sync-now"),
            Some(TrayMenuAction::SyncNow)
        );
        assert_eq!(
            TrayMenuAction::from_id("pause-all"),
            Some(TrayMenuAction::PauseAll)
        );
        assert_eq!(
            TrayMenuAction::from_id("resume-all"),
            Some(TrayMenuAction::ResumeAll)
        );
        assert_eq!(TrayMenuAction::from_id("quit"), Some(TrayMenuAction::Quit));
        assert_eq!(TrayMenuAction::from_id("something-else"), None);
    }
}
