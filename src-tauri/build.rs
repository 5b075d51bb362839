//! Generates the Tauri context and the permission set of the app's own
//! commands, so that the capability files can allow them one by one.

fn main() {
    let commands = tauri_build::AppManifest::new().commands(&["list_repositories"]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands))
        .expect("the Tauri build configuration is valid");
}
