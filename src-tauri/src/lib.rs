//! The Escale desktop app: a thin Tauri shell over `escale-core`.
//!
//! It hosts the web UI from `ui/`, lives in the system tray, and keeps
//! running when its window is closed. Only one instance runs per user: a
//! second launch brings the first one's window forward and exits. The shell
//! holds no sync logic; its commands are a few lines that call the engine,
//! and errors cross to the UI as `{code, message}` ([`IpcError`]).

mod commands;
mod ipc_error;
mod tray;
mod window;

use tauri::{Manager, RunEvent};

pub use ipc_error::IpcError;
pub use tray::{TrayMenuAction, TrayState};

/// What every command can reach: handles, never global state.
struct AppState {
    config_dir: escale_core::ConfigDir,
}

/// Builds and runs the app until the user quits from the tray menu.
///
/// # Panics
///
/// When the window system cannot be initialised (no display) or the
/// bundled configuration is invalid; there is nothing to show the user then.
pub fn run() {
    let config_dir = match escale_core::ConfigDir::locate(None) {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    let app = builder(config_dir)
        .build(tauri::generate_context!())
        .expect("the desktop app can start (is a display available?)");
    app.run(|_app, event| {
        // The last window going away must not end the app: it lives on in
        // the tray until "Quit" asks for an exit with an explicit code.
        if let RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
        {
            api.prevent_exit();
        }
    });
}

/// The app's builder with every plugin, command and handler.
fn builder(config_dir: escale_core::ConfigDir) -> tauri::Builder<tauri::Wry> {
    tauri::Builder::default()
        // Registered first, as the plugin requires, so a second launch exits
        // before it creates any window or tray icon of its own.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show_main(app);
        }))
        .setup(move |app| {
            app.manage(AppState { config_dir });
            tray::create(app.handle())?;
            Ok(())
        })
        .on_window_event(window::on_event)
        .invoke_handler(tauri::generate_handler![commands::list_repositories])
}
