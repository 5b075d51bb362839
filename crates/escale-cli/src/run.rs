//! `escale run`: the daemon. Syncs every configured repository in the
//! background until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use escale_core::{ConfigDir, CycleObserver, PollBounds, RunRepository, SyncReport};
use tokio::sync::watch;

use crate::secrets::{self, Prompt};

pub(crate) async fn run(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    poll: PollBounds,
) -> anyhow::Result<ExitCode> {
    // First, so that everything below is in the log file too.
    crate::log_file::start(config_dir);
    let config = config_dir.load()?;
    if config.repositories.is_empty() {
        anyhow::bail!("no synced folders are set up yet; create one with `escale init`");
    }
    let mut repositories = Vec::new();
    for repo in &config.repositories {
        match secrets::passphrase(passphrase_file, Some(config_dir), &repo.name, Prompt::Once)
            .await?
        {
            Some(passphrase) => repositories.push(RunRepository {
                name: repo.name.clone(),
                folder: repo.folder.clone(),
                passphrase,
            }),
            // One repository without a passphrase must not stop the others.
            None => tracing::error!(
                "{}: no passphrase (set ESCALE_PASSPHRASE, pass --passphrase-file, or save it in \
                 the keyring); it is not synced",
                repo.name
            ),
        }
    }
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    tracing::info!(
        "Syncing {} folder(s) until stopped (Ctrl+C).",
        repositories.len()
    );
    let report: CycleObserver = Arc::new(print_cycle);
    escale_core::run(config_dir, repositories, poll, shutdown, report).await?;
    tracing::info!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// One line per cycle that did something, and every problem, to standard
/// error and the log file.
fn print_cycle(name: &str, result: &escale_core::Result<SyncReport>) {
    match result {
        Ok(report) => {
            if report.changes_sent + report.changes_received > 0 {
                tracing::info!(
                    "{name}: sent {} change(s), received {} change(s)",
                    report.changes_sent,
                    report.changes_received
                );
            }
            for problem in &report.problems {
                tracing::warn!("{name}: {}", problem.message);
            }
        }
        Err(error) => tracing::error!("{name}: {error} (retrying)"),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses a poll bound given in seconds on the command line.
pub(crate) fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&value) {
        return Err("give between 0.1 and 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(value))
}
