//! `escale status`: what is configured on this computer, and how each
//! repository stands with the others.

use std::io::Write as _;
use std::path::Path;

use escale_core::{ConfigDir, RepositoryStatus};
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
            writeln!(out, "  on the relay: {}", human_bytes(bytes))?;
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
