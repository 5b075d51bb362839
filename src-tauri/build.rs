//! Generates the Tauri context and the permission set of the app's own
//! commands, so that the capability files can allow them one by one.

fn main() {
    let commands = tauri_build::AppManifest::new().commands(&[
        "list_repositories",
        "list_computers",
        "check_relay",
        "verify_passphrase",
        "create_repository",
        "join_repository",
        "pick_folder",
        "save_recovery_copy",
        "pause_repository",
        "resume_repository",
        "sync_now",
        "confirm_deletions",
        "pause_all",
        "resume_all",
        "repository_options",
        "update_options",
        "remove_repository",
        "open_folder",
        "open_log_folder",
        "app_settings",
        "set_app_settings",
    ]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands))
        .expect("the Tauri build configuration is valid");
}
