//! Follows the settings file the app shares with the command line: a
//! repository added with `escale init` or `escale join` while the app runs
//! appears in the window and starts, one removed or changed there stops or
//! starts again, without restarting the app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::mpsc;

use crate::host::Host;

/// How long a burst of writes to the settings file has to end before it is
/// read: an editor may write it in several steps.
const SETTLE: Duration = Duration::from_millis(300);

/// How often a repository whose passphrase is not saved yet is tried
/// again: `escale init` writes the settings a moment before it saves the
/// passphrase in the keyring.
const PASSPHRASE_RETRY: Duration = Duration::from_secs(2);

/// How many times, after one change, before waiting for the next change.
const PASSPHRASE_RETRIES: u32 = 30;

/// Starts the repositories, then applies every later change of the
/// settings file until the app ends.
pub(crate) async fn follow<R: Runtime>(app: AppHandle<R>) {
    let host = app.state::<Host>();
    let (sender, mut changes) = mpsc::channel(1);
    // Kept alive for as long as the changes are followed.
    let _watcher = watch(
        host.config_dir().path(),
        host.config_dir().config_file(),
        sender,
    );
    let mut waiting = host.reload(&app).await;
    let mut retries = 0;
    loop {
        let retry = async {
            if waiting && retries < PASSPHRASE_RETRIES {
                tokio::time::sleep(PASSPHRASE_RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            changed = changes.recv() => {
                if changed.is_none() {
                    return;
                }
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
                retries = 0;
            }
            () = retry => retries += 1,
        }
        waiting = host.reload(&app).await;
    }
}

/// Watches `folder` for changes of `file`; `None` (logged) when the system
/// cannot watch it, and then changes show at the next start.
fn watch(folder: &Path, file: PathBuf, changes: mpsc::Sender<()>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        // Saved atomically, the file arrives by a rename from a temporary
        // name, which the event names alongside it.
        if event.need_rescan() || event.paths.contains(&file) {
            // Full: a reload is already due, and it reads the file anew.
            let _ = changes.try_send(());
        }
    };
    let watched = std::fs::create_dir_all(folder)
        .map_err(notify::Error::io)
        .and_then(|()| {
            let mut watcher = notify::recommended_watcher(handler)?;
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
    match watched {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(
                "changes to the settings in {} will show only after a restart: {error}",
                folder.display()
            );
            None
        }
    }
}
