//! `escale run`: the daemon. Syncs every configured repository in the
//! background until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use escale_core::{ConfigDir, EventSink, PollBounds, RunRepository};
use tokio::sync::watch;

use crate::secrets::{self, Prompt};

/// Poll bounds given on the command line; they override the settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PollOverride {
    pub(crate) min: Option<Duration>,
    pub(crate) max: Option<Duration>,
}

pub(crate) async fn run(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    poll: PollOverride,
) -> anyhow::Result<ExitCode> {
    // First, so that everything below is in the log file too.
    escale_log::start(config_dir, escale_log::DAEMON_LOG);
    let config = config_dir.load()?;
    if config.repositories.is_empty() {
        anyhow::bail!("no synced folders are set up yet; create one with `escale init`");
    }
    let mut repositories = Vec::new();
    for repo in &config.repositories {
        match secrets::passphrase(passphrase_file, Some(config_dir), &repo.name, Prompt::Once)
            .await?
        {
            Some(passphrase) => {
                let settings = PollBounds::of(repo);
                let min = poll.min.unwrap_or(settings.min);
                repositories.push(RunRepository {
                    name: repo.name.clone(),
                    folder: repo.folder.clone(),
                    passphrase,
                    poll: PollBounds {
                        min,
                        max: poll.max.unwrap_or(settings.max).max(min),
                    },
                    paused: false,
                });
            }
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
    let log: EventSink = Arc::new(escale_log::log_event);
    escale_core::run(config_dir, repositories, shutdown, log).await?;
    tracing::info!("Stopped.");
    Ok(ExitCode::SUCCESS)
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
