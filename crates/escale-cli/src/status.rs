//! `escale status`: what is configured on this computer.

use std::io::Write as _;
use std::path::Path;

use escale_core::{ConfigDir, RepositoryConfig};
use serde::Serialize;

/// The `status --json` document. Its schema is documented in docs/cli.md;
/// fields are only ever added, never renamed or removed.
#[derive(Debug, Serialize)]
struct StatusReport<'a> {
    config_dir: &'a Path,
    repositories: Vec<RepositoryStatus<'a>>,
}

#[derive(Debug, Serialize)]
struct RepositoryStatus<'a> {
    name: &'a str,
    folder: &'a Path,
    relay: &'a str,
}

impl<'a> From<&'a RepositoryConfig> for RepositoryStatus<'a> {
    fn from(repo: &'a RepositoryConfig) -> Self {
        RepositoryStatus {
            name: &repo.name,
            folder: &repo.folder,
            relay: &repo.relay,
        }
    }
}

pub(crate) fn print(config_dir: &ConfigDir, json: bool) -> anyhow::Result<()> {
    let config = config_dir.load()?;
    let report = StatusReport {
        config_dir: config_dir.path(),
        repositories: config.repositories.iter().map(Into::into).collect(),
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
        writeln!(out, "{}", repo.name)?;
        writeln!(out, "  folder: {}", repo.folder.display())?;
        writeln!(out, "  relay:  {}", repo.relay)?;
    }
    Ok(())
}
