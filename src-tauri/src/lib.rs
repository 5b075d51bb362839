//! The Escale desktop app: a thin Tauri shell over `escale-core`.
//!
//! It hosts the web UI from `ui/`, lives in the system tray, and keeps
//! running when its window is closed. Only one instance runs per user: a
//! second launch brings the first one's window forward and exits. The shell
//! holds no sync logic; its commands are a few lines that call the engine,
//! and errors cross to the UI as `{code, message}` ([`IpcError`]).

mod app_settings;
mod commands;
mod host;
mod ipc_error;
mod notifications;
mod paused;
mod settings_watch;
mod tray;
mod views;
mod window;

use tauri::{Manager, RunEvent};

pub use app_settings::AppSettings;
pub use ipc_error::IpcError;
pub use notifications::{Notification, Notifier};
pub use tray::{TrayMenuAction, TrayState};
pub use views::{RepositoryView, ViewState};

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
    // What the app and its engine report, for whoever helps the person:
    // "Open log folder" in the window shows it.
    escale_log::start(&config_dir, escale_log::DESKTOP_LOG);
    tracing::info!("Escale {} started", env!("CARGO_PKG_VERSION"));
    let app = builder(config_dir)
        .build(tauri::generate_context!())
        .expect("the desktop app can start (is a display available?)");
    app.run(|app, event| match event {
        // The last window going away must not end the app: it lives on in
        // the tray until "Quit" asks for an exit with an explicit code.
        RunEvent::ExitRequested { api, code, .. } if code.is_none() => api.prevent_exit(),
        // Cycles in progress stop at a safe point before the process ends.
        RunEvent::Exit => {
            let host = app.state::<host::Host>();
            tauri::async_runtime::block_on(host.shutdown());
        }
        _ => {}
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
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("Escale")
                .build(),
        )
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .setup(move |app| {
            let (host, events) = host::Host::new(config_dir);
            app.manage(host);
            tray::create(app.handle())?;
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(host::forward(handle.clone(), events));
            tauri::async_runtime::spawn(settings_watch::follow(handle));
            Ok(())
        })
        .on_window_event(window::on_event)
        .invoke_handler(tauri::generate_handler![
            commands::list_repositories,
            commands::list_computers,
            commands::check_relay,
            commands::verify_passphrase,
            commands::create_repository,
            commands::join_repository,
            commands::pick_folder,
            commands::save_recovery_copy,
            commands::pause_repository,
            commands::resume_repository,
            commands::sync_now,
            commands::confirm_deletions,
            commands::pause_all,
            commands::resume_all,
            commands::repository_options,
            commands::update_options,
            commands::remove_repository,
            commands::open_folder,
            commands::open_log_folder,
            commands::app_settings,
            commands::set_app_settings,
        ])
}
