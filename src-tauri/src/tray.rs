//! The tray icon and its menu.
//!
//! What the tray shows is decided by plain functions ([`TrayState::icon_png`],
//! [`TrayMenuAction::from_id`]) that tests call directly: a tray host's
//! absence makes building the icon succeed anyway, so only our decisions
//! can be checked.

use tauri::image::Image;
use tauri::menu::{MenuBuilder, MenuEvent, MenuItemBuilder};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Runtime};

use crate::window;

const TRAY_ID: &str = "escale";
const MENU_OPEN: &str = "open";
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

/// What a click in the tray menu asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayMenuAction {
    /// Show and focus the main window.
    Open,
    /// Stop Escale altogether.
    Quit,
}

impl TrayMenuAction {
    /// The action behind a menu item id, if the id is one of ours.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            MENU_OPEN => Some(TrayMenuAction::Open),
            MENU_QUIT => Some(TrayMenuAction::Quit),
            _ => None,
        }
    }
}

/// Creates the tray icon with its menu, showing [`TrayState::Idle`].
pub(crate) fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let open = MenuItemBuilder::with_id(MENU_OPEN, "Open Escale").build(app)?;
    let quit = MenuItemBuilder::with_id(MENU_QUIT, "Quit Escale").build(app)?;
    let menu = MenuBuilder::new(app)
        .item(&open)
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

fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    match TrayMenuAction::from_id(event.id().as_ref()) {
        Some(TrayMenuAction::Open) => window::show_main(app),
        Some(TrayMenuAction::Quit) => app.exit(0),
        None => {}
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
    fn menu_ids_map_to_actions() {
        assert_eq!(TrayMenuAction::from_id("open"), Some(TrayMenuAction::Open));
        assert_eq!(TrayMenuAction::from_id("quit"), Some(TrayMenuAction::Quit));
        assert_eq!(TrayMenuAction::from_id("something-else"), None);
    }
}
