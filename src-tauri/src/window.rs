//! The main window: hidden rather than closed, brought back on demand.

use tauri::{Manager, Runtime, Window, WindowEvent};

/// The label of the main window in `tauri.conf.json`.
pub(crate) const MAIN_WINDOW: &str = "main";

/// Closing the main window hides it: Escale keeps syncing from the tray.
pub(crate) fn on_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event
        && window.label() == MAIN_WINDOW
    {
        api.prevent_close();
        if let Err(error) = window.hide() {
            tracing::warn!("could not hide the window: {error}");
        }
    }
}

/// Shows the main window, restores it if minimised and gives it focus.
pub(crate) fn show_main<R: Runtime, M: Manager<R>>(manager: &M) {
    let Some(window) = manager.get_webview_window(MAIN_WINDOW) else {
        return;
    };
    // Each step may fail on a window system that lacks it (focus stealing
    // prevention, no minimise); the others are still worth doing.
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}
