//! The commands the UI may invoke. Each is a few lines that call the engine;
//! each is allowed one by one in `capabilities/`.

use std::path::PathBuf;

use serde::Serialize;
use tauri::State;

use crate::{AppState, IpcError};

/// One configured repository as the UI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RepositorySummary {
    name: String,
    folder: PathBuf,
    relay: String,
}

/// The repositories in the shared settings file, in the order they were added.
#[tauri::command]
pub(crate) async fn list_repositories(
    state: State<'_, AppState>,
) -> Result<Vec<RepositorySummary>, IpcError> {
    let config_dir = state.config_dir.clone();
    // Reading the settings touches the disk: keep it off the async threads.
    let config = tauri::async_runtime::spawn_blocking(move || config_dir.load())
        .await
        .map_err(|err| IpcError::internal(format!("reading the settings stopped: {err}")))??;
    Ok(config
        .repositories
        .into_iter()
        .map(|repo| RepositorySummary {
            name: repo.name,
            folder: repo.folder,
            relay: repo.relay,
        })
        .collect())
}
