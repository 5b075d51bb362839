//! `escale run`: the daemon. Syncs every configured repository in the
//! background until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use escale_core::{ConfigDir, Event, EventKind, EventSink, PollBounds, RunRepository};
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
    let log: EventSink = Arc::new(log_event);
    escale_core::run(config_dir, repositories, shutdown, log).await?;
    tracing::info!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// What reaches standard error and the log file: one line per cycle that
/// did something, every problem, and waits for relay space.
fn log_event(event: &Event) {
    let name = &event.repository;
    match &event.kind {
        EventKind::CycleDone(report) => {
            if report.changes_sent + report.changes_received > 0 {
                tracing::info!(
                    "{name}: sent {} change(s), received {} change(s)",
                    report.changes_sent,
                    report.changes_received
                );
            }
            for problem in &report.problems {
                match &problem.path {
                    Some(path) if !problem.message.contains(path.as_str()) => {
                        tracing::warn!("{name}: {path}: {}", problem.message);
                    }
                    _ => tracing::warn!("{name}: {}", problem.message),
                }
            }
        }
        EventKind::Problem(problem) => {
            tracing::error!("{name}: {} (retrying)", problem.message);
        }
        EventKind::WaitingForSpace(usage) => {
            let who = if usage.waiting_for.is_empty() {
                String::new()
            } else {
                format!("; waiting for {} to receive", usage.waiting_for.join(", "))
            };
            tracing::info!(
                "{name}: waiting for relay space: {} of {} used{who}",
                crate::sync::human_bytes(usage.used),
                usage
                    .quota
                    .map_or_else(|| "?".to_owned(), crate::sync::human_bytes)
            );
        }
        EventKind::Conflict { path, copy } => {
            tracing::info!(
                "{name}: {path} was changed on two computers; the other version is {copy}"
            );
        }
        _ => {}
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
