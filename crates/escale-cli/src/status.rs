//! `escale status`: what is configured on this computer, and how each
//! repository stands with the others.

use std::io::Write as _;
use std::path::Path;

use escale_core::{ConfigDir, LiveStatus, Phase, RepositoryState, RepositoryStatus};
use serde::Serialize;

use crate::secrets::{self, Prompt};
use crate::sync::human_bytes;

/// The `status --json` document. Its schema is documented in docs/cli.md;
/// fields are only ever added, never renamed or removed.
#[derive(Debug, Serialize)]
struct StatusReport<'a> {
    config_dir: &'a Path,
    repositories: Vec<RepositoryStatus>,
}

pub(crate) async fn print(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let config = config_dir.load()?;
    let mut repositories = Vec::new();
    for repo in &config.repositories {
        let passphrase =
            secrets::passphrase(passphrase_file, Some(config_dir), &repo.name, Prompt::Never)
                .await?;
        repositories.push(escale_core::status(config_dir, &repo.name, passphrase).await?);
    }
    let report = StatusReport {
        config_dir: config_dir.path(),
        repositories,
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    if report.repositories.is_empty() {
        writeln!(
            out,
            "No synced folders are set up yet (settings folder: {}).",
            report.config_dir.display()
        )?;
        return Ok(());
    }
    for repo in &report.repositories {
        writeln!(out, "{} ({})", repo.name, repo.state)?;
        writeln!(out, "  folder: {}", repo.folder.display())?;
        writeln!(out, "  relay:  {}", repo.relay)?;
        if let Some(error) = &repo.error {
            writeln!(out, "  problem: {}", error.message)?;
        }
        if let Some(live) = &repo.live {
            writeln!(out, "  now: {}", describe_live(live))?;
        }
        if repo.state == "locked" {
            writeln!(
                out,
                "  (set ESCALE_PASSPHRASE or pass --passphrase-file to see more)"
            )?;
            continue;
        }
        writeln!(
            out,
            "  waiting to be sent: {} change(s), {}",
            repo.pending_files,
            human_bytes(repo.pending_bytes)
        )?;
        if let Some(bytes) = repo.relay_bytes {
            match repo.quota {
                Some(quota) => writeln!(
                    out,
                    "  on the relay: {} of {} allowed",
                    human_bytes(bytes),
                    human_bytes(quota)
                )?,
                None => writeln!(out, "  on the relay: {}", human_bytes(bytes))?,
            }
        }
        for client in &repo.clients {
            let lacks = if client.lacks_files == 0 {
                "has everything from this computer".to_owned()
            } else {
                format!(
                    "still lacks {} change(s), {}",
                    client.lacks_files,
                    human_bytes(client.lacks_bytes)
                )
            };
            writeln!(out, "  {}: {lacks}", client.name)?;
        }
    }
    Ok(())
}

/// One line on what a running Escale is doing with a repository.
fn describe_live(live: &LiveStatus) -> String {
    let running = format!("(process {})", live.pid);
    match live.state {
        RepositoryState::Syncing => match &live.progress {
            Some(progress) => {
                let what = match progress.phase {
                    Phase::Sending => "sending",
                    Phase::Receiving => "receiving",
                    _ => "syncing",
                };
                let bytes = if progress.bytes_total > 0 {
                    format!(
                        ", {} of {}",
                        human_bytes(progress.bytes_done),
                        human_bytes(progress.bytes_total)
                    )
                } else {
                    String::new()
                };
                let current = progress
                    .current
                    .as_deref()
                    .map(|path| format!(" — {path}"))
                    .unwrap_or_default();
                format!(
                    "{what} {} of {}{bytes}{current} {running}",
                    progress.files_done, progress.files_total
                )
            }
            None => format!("syncing {running}"),
        },
        RepositoryState::WaitingForSpace => match &live.waiting {
            Some(usage) => {
                let holders: Vec<String> = usage
                    .holders
                    .iter()
                    .filter(|holder| holder.bytes > 0)
                    .map(|holder| format!("{} {}", holder.name, human_bytes(holder.bytes)))
                    .collect();
                let waiting_for = if usage.waiting_for.is_empty() {
                    String::new()
                } else {
                    format!("; waiting for {} to receive", usage.waiting_for.join(", "))
                };
                format!(
                    "waiting for relay space: {} of {} used ({}){waiting_for} {running}",
                    human_bytes(usage.used),
                    usage.quota.map_or_else(|| "?".to_owned(), human_bytes),
                    holders.join(", ")
                )
            }
            None => format!("waiting for relay space {running}"),
        },
        RepositoryState::Paused => format!("paused {running}"),
        RepositoryState::Error => match &live.last_problem {
            Some(problem) => format!("retrying after an error: {} {running}", problem.message),
            None => format!("retrying after an error {running}"),
        },
        _ => format!("up to date, watching for changes {running}"),
    }
}
