//! The commands the UI may invoke (see `docs/desktop-ipc.md`). Each is a
//! few lines that call the engine or the host; each is allowed one by one
//! in `capabilities/`. All are async: a plain command runs on the main
//! thread, which the window and the tray need free.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use escale_core::{
    AccessRule, ByteSize, CheckStep, NewRepository, Passphrase, Presence, RelayAccess,
    RepositoryConfig, Span, SyncMode,
};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::IpcError;
use crate::app_settings::AppSettings;
use crate::host::Host;
use crate::views::RepositoryView;

/// The options of a repository the UI edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepositoryOptions {
    mode: SyncMode,
    quota: Option<u64>,
    include: Vec<String>,
    exclude: Vec<String>,
    rules: Vec<AccessRule>,
    poll_min_seconds: Option<f64>,
    poll_max_seconds: Option<f64>,
}

impl RepositoryOptions {
    fn of(settings: &RepositoryConfig) -> Self {
        RepositoryOptions {
            mode: settings.mode,
            quota: settings.quota.map(|quota| quota.0),
            include: settings.include.clone(),
            exclude: settings.exclude.clone(),
            rules: settings.rules.clone(),
            poll_min_seconds: settings.poll_min.map(|span| span.0.as_secs_f64()),
            poll_max_seconds: settings.poll_max.map(|span| span.0.as_secs_f64()),
        }
    }

    fn apply(&self, settings: &mut RepositoryConfig) {
        settings.mode = self.mode;
        settings.quota = self.quota.map(ByteSize);
        settings.include.clone_from(&self.include);
        settings.exclude.clone_from(&self.exclude);
        settings.rules.clone_from(&self.rules);
        settings.poll_min = self.poll_min_seconds.map(seconds);
        settings.poll_max = self.poll_max_seconds.map(seconds);
    }
}

/// A wait typed in seconds; what is not a sane number of seconds (negative,
/// not a number, past a year) is taken as a year, which the settings'
/// checks then refuse or keep as a slow poll.
fn seconds(value: f64) -> Span {
    const YEAR: f64 = 365.0 * 86_400.0;
    let value = if value.is_finite() {
        value.clamp(0.0, YEAR)
    } else {
        YEAR
    };
    Span(Duration::from_secs_f64(value))
}

/// A repository to create or join, as the wizard sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Setup {
    name: String,
    folder: PathBuf,
    relay: String,
    relay_password: Option<String>,
    passphrase: String,
    options: RepositoryOptions,
}

/// The relay check as the UI reads it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CheckView {
    address: String,
    steps: Vec<CheckStep>,
    holds_repository: Option<bool>,
}

/// One computer of a repository.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ComputerView {
    /// Unique, unlike names: cloned computers share a host name.
    id: String,
    name: String,
    this_computer: bool,
    last_seen: Option<i64>,
    presence: Presence,
    lacks_files: u64,
    lacks_bytes: u64,
}

fn access(host: &Host, relay_password: Option<String>) -> RelayAccess {
    RelayAccess {
        password: relay_password.filter(|password| !password.is_empty()),
        known_hosts: Some(host.config_dir().known_hosts_file()),
        ..RelayAccess::default()
    }
}

/// Every repository as the window shows it.
#[tauri::command]
pub(crate) async fn list_repositories<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
) -> Result<Vec<RepositoryView>, IpcError> {
    host.list(&app).await
}

/// The computers of repository `name`, this one first.
#[tauri::command]
pub(crate) async fn list_computers(
    host: State<'_, Host>,
    name: String,
) -> Result<Vec<ComputerView>, IpcError> {
    let passphrase = host.passphrase(&name).await?;
    // Shown under the folder's card: the relay's trouble in plain words.
    let clients = escale_core::clients(host.config_dir(), &name, passphrase)
        .await
        .map_err(|error| IpcError::plain(&error))?;
    Ok(clients
        .into_iter()
        .map(|client| ComputerView {
            id: client.id,
            name: client.name,
            this_computer: client.this_computer,
            last_seen: client.last_seen.map(|seconds| seconds.saturating_mul(1000)),
            presence: client.presence,
            lacks_files: client.lacks_files,
            lacks_bytes: client.lacks_bytes,
        })
        .collect())
}

/// Tries the relay step by step; a failed step is in the result, not an error.
#[tauri::command]
pub(crate) async fn check_relay(
    host: State<'_, Host>,
    relay: String,
    relay_password: Option<String>,
) -> Result<CheckView, IpcError> {
    let check = escale_core::check_relay(&relay, &access(&host, relay_password)).await;
    Ok(CheckView {
        address: check.address,
        steps: check.steps,
        holds_repository: check.holds_repository,
    })
}

/// Whether `passphrase` opens the repository on the relay; creates nothing.
#[tauri::command]
pub(crate) async fn verify_passphrase(
    host: State<'_, Host>,
    relay: String,
    relay_password: Option<String>,
    passphrase: String,
) -> Result<(), IpcError> {
    let access = access(&host, relay_password);
    let passphrase = Passphrase::new(passphrase);
    Ok(escale_core::verify_passphrase(host.config_dir(), &relay, &access, passphrase).await?)
}

/// Creates a new repository on the relay and starts syncing it.
#[tauri::command]
pub(crate) async fn create_repository<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    setup: Setup,
) -> Result<RepositoryView, IpcError> {
    let settings = set_up(&host, setup, false).await?;
    host.changed(&app, &settings.name).await
}

/// Joins the repository on the relay and starts syncing it.
#[tauri::command]
pub(crate) async fn join_repository<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    setup: Setup,
) -> Result<RepositoryView, IpcError> {
    let settings = set_up(&host, setup, true).await?;
    host.changed(&app, &settings.name).await
}

/// What creating and joining share: the options are checked before
/// anything is made, and the secrets go to the keyring (never a file); if
/// they cannot, the repository is removed again so that a retry starts
/// clean.
async fn set_up(host: &Host, setup: Setup, join: bool) -> Result<RepositoryConfig, IpcError> {
    let mut planned = RepositoryConfig::new(&setup.name, &setup.folder, &setup.relay);
    setup.options.apply(&mut planned);
    planned.validate()?;
    let config_dir = host.config_dir();
    let passphrase = Passphrase::new(setup.passphrase);
    let mut new = NewRepository::new(setup.name, setup.folder, setup.relay);
    new.mode = setup.options.mode;
    new.quota = setup.options.quota.map(ByteSize);
    new.access = access(host, setup.relay_password.clone());
    let settings = if join {
        escale_core::join(config_dir, new, passphrase.clone()).await?
    } else {
        escale_core::init(config_dir, new, passphrase.clone()).await?
    };
    let saved = async {
        escale_core::save_passphrase(config_dir, &settings.name, &passphrase).await?;
        if let Some(password) = setup.relay_password.filter(|password| !password.is_empty()) {
            escale_core::save_relay_password(&settings.relay, &password).await?;
        }
        config_dir.update_repository(&settings.name, |repo| setup.options.apply(repo))
    }
    .await;
    match saved {
        Ok(settings) => Ok(settings),
        Err(error) => {
            if let Err(undo) = escale_core::remove(config_dir, &settings.name).await {
                tracing::error!("{}: could not undo the setup: {undo}", settings.name);
            }
            Err(error.into())
        }
    }
}

/// The native folder picker; `None` when cancelled.
#[tauri::command]
pub(crate) async fn pick_folder<R: Runtime>(
    app: AppHandle<R>,
    title: String,
) -> Result<Option<String>, IpcError> {
    let picked = tauri::async_runtime::spawn_blocking(move || {
        app.dialog().file().set_title(title).blocking_pick_folder()
    })
    .await
    .map_err(|error| IpcError::internal(format!("the folder picker failed: {error}")))?;
    Ok(picked
        .and_then(|path| path.into_path().ok())
        .map(|path| path.display().to_string()))
}

/// Saves a recovery copy of the passphrase where the person chooses;
/// `false` when cancelled.
#[tauri::command]
pub(crate) async fn save_recovery_copy<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    relay: String,
    passphrase: String,
) -> Result<bool, IpcError> {
    let file_name = format!("Escale recovery - {name}.txt");
    let chosen = tauri::async_runtime::spawn_blocking(move || {
        app.dialog()
            .file()
            .set_title("Save a recovery copy of the passphrase")
            .set_file_name(file_name)
            .blocking_save_file()
    })
    .await
    .map_err(|error| IpcError::internal(format!("the save dialog failed: {error}")))?;
    let Some(path) = chosen.and_then(|path| path.into_path().ok()) else {
        return Ok(false);
    };
    std::fs::write(&path, recovery_text(&name, &relay, &passphrase)).map_err(|error| {
        IpcError::new(
            "io_error",
            format!(
                "The recovery copy could not be saved in {}: {error}",
                path.display()
            ),
        )
    })?;
    Ok(true)
}

fn recovery_text(name: &str, relay: &str, passphrase: &str) -> String {
    format!(
        "Escale recovery copy\n\n\
         Shared folder: {name}\n\
         Storage: {relay}\n\
         Passphrase: {passphrase}\n\n\
         Anyone with this passphrase and access to the storage can read the shared files.\n\
         Keep this copy somewhere safe, away from the computer, such as printed in a locked drawer.\n"
    )
}

/// Pauses one repository.
#[tauri::command]
pub(crate) async fn pause_repository<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    name: String,
) -> Result<(), IpcError> {
    host.pause(&app, &name)
}

/// Resumes one repository.
#[tauri::command]
pub(crate) async fn resume_repository<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    name: String,
) -> Result<(), IpcError> {
    host.resume(&app, &name)
}

/// Runs a cycle of one repository now.
#[tauri::command]
pub(crate) async fn sync_now(host: State<'_, Host>, name: String) -> Result<(), IpcError> {
    host.sync_now(&name)
}

/// Lets a repository paused by many missing files send those deletions to
/// the other computers, and syncs it now. Returns how many files that
/// deletes there.
#[tauri::command]
pub(crate) async fn confirm_deletions(
    host: State<'_, Host>,
    name: String,
) -> Result<u64, IpcError> {
    host.confirm_deletions(&name).await
}

/// Pauses every repository.
#[tauri::command]
pub(crate) async fn pause_all<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
) -> Result<(), IpcError> {
    host.apply_to_all(&app, crate::TrayMenuAction::PauseAll);
    Ok(())
}

/// Resumes every repository.
#[tauri::command]
pub(crate) async fn resume_all<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
) -> Result<(), IpcError> {
    host.apply_to_all(&app, crate::TrayMenuAction::ResumeAll);
    Ok(())
}

/// The options of one repository.
#[tauri::command]
pub(crate) async fn repository_options(
    host: State<'_, Host>,
    name: String,
) -> Result<RepositoryOptions, IpcError> {
    let config = host.config_dir().load()?;
    let settings = config
        .repository(&name)
        .ok_or(escale_core::Error::UnknownRepository(name))?;
    Ok(RepositoryOptions::of(settings))
}

/// Changes the options of one repository; they apply at once.
#[tauri::command]
pub(crate) async fn update_options<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    name: String,
    options: RepositoryOptions,
) -> Result<RepositoryView, IpcError> {
    host.config_dir()
        .update_repository(&name, |repo| options.apply(repo))?;
    host.changed(&app, &name).await
}

/// Stops a repository and removes it from this computer; its files stay.
#[tauri::command]
pub(crate) async fn remove_repository<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    name: String,
) -> Result<(), IpcError> {
    host.remove(&app, &name).await
}

/// Opens a repository's folder, or `path` inside it, in the file manager.
#[tauri::command]
pub(crate) async fn open_folder<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    name: String,
    path: Option<String>,
) -> Result<(), IpcError> {
    let folder = host.view(&name)?.folder;
    let target = match path {
        Some(inside) => inside_folder(&folder, &inside)?,
        None => folder,
    };
    if target.is_file() {
        // A conflict's copy: its folder opens with it selected.
        return app.opener().reveal_item_in_dir(&target).map_err(|error| {
            IpcError::new(
                "open_failed",
                format!("{} could not be shown: {error}", target.display()),
            )
        });
    }
    open(&app, &target)
}

/// Opens the folder of the log files.
#[tauri::command]
pub(crate) async fn open_log_folder<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
) -> Result<(), IpcError> {
    let logs = escale_log::log_dir(host.config_dir());
    std::fs::create_dir_all(&logs).map_err(|error| {
        IpcError::new(
            "io_error",
            format!(
                "The log folder {} could not be made: {error}",
                logs.display()
            ),
        )
    })?;
    open(&app, &logs)
}

fn open<R: Runtime>(app: &AppHandle<R>, path: &Path) -> Result<(), IpcError> {
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|error| {
            IpcError::new(
                "open_failed",
                format!("{} could not be opened: {error}", path.display()),
            )
        })
}

/// `relative` inside `folder`, refusing anything that would leave it.
fn inside_folder(folder: &Path, relative: &str) -> Result<PathBuf, IpcError> {
    let relative = Path::new(relative);
    if relative
        .components()
        .any(|part| !matches!(part, Component::Normal(_)))
    {
        return Err(IpcError::new(
            "invalid_input",
            "That file is not inside the synced folder.",
        ));
    }
    Ok(folder.join(relative))
}

/// The app's own settings.
#[tauri::command]
pub(crate) async fn app_settings(host: State<'_, Host>) -> Result<AppSettings, IpcError> {
    Ok(host.app_settings())
}

/// Saves the app's own settings.
#[tauri::command]
pub(crate) async fn set_app_settings<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    settings: AppSettings,
) -> Result<(), IpcError> {
    host.set_app_settings(&app, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_folder_are_refused() {
        let folder = Path::new("/home/ana/Reports");
        assert_eq!(
            inside_folder(folder, "Q3/summary (conflict).pdf").unwrap(),
            folder.join("Q3/summary (conflict).pdf")
        );
        for hostile in ["../secret", "/etc/passwd", "Q3/../../x", ""] {
            let refused = inside_folder(folder, hostile);
            if hostile.is_empty() {
                // No component at all: the folder itself.
                assert_eq!(refused.unwrap(), folder.join(""));
            } else {
                assert_eq!(refused.unwrap_err().code, "invalid_input", "{hostile}");
            }
        }
    }

    #[test]
    fn options_round_trip_through_the_settings() {
        let options: RepositoryOptions = serde_json::from_value(serde_json::json!({
            "mode": "send-only",
            "quota": 5_000_000_000u64,
            "include": [],
            "exclude": ["*.tmp"],
            "rules": [{ "path": "Scans/**", "mode": "receive-only" }],
            "pollMinSeconds": 0.5,
            "pollMaxSeconds": null
        }))
        .unwrap();
        let mut settings = RepositoryConfig::new("r", "/srv/r", "file:///mnt/relay");
        options.apply(&mut settings);
        settings.validate().unwrap();
        assert_eq!(settings.quota, Some(ByteSize(5_000_000_000)));
        assert_eq!(settings.poll_min, Some(Span(Duration::from_millis(500))));
        assert_eq!(RepositoryOptions::of(&settings), options);
    }

    #[test]
    fn the_recovery_copy_names_the_folder_storage_and_passphrase() {
        let text = recovery_text("Reports", "file:///mnt/share", "correct horse");
        assert!(text.contains("Shared folder: Reports"));
        assert!(text.contains("Storage: file:///mnt/share"));
        assert!(text.contains("Passphrase: correct horse"));
    }
}
