//! `escale sync`: one complete cycle for each chosen repository.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use escale_core::{ConfigDir, SyncReport};
use serde::Serialize;

use crate::secrets::{self, Prompt};

#[derive(Debug, Serialize)]
struct Outcome {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
struct ErrorJson {
    code: String,
    message: String,
}

pub(crate) async fn run(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    names: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = config_dir.load()?;
    let names = if names.is_empty() {
        config.repositories.iter().map(|r| r.name.clone()).collect()
    } else {
        names
    };
    if names.is_empty() {
        anyhow::bail!("no synced folders are set up yet; create one with `escale init`");
    }
    let mut outcomes = Vec::new();
    for name in names {
        let outcome =
            match secrets::passphrase(passphrase_file, Some(config_dir), &name, Prompt::Once)
                .await?
            {
                None => Outcome {
                    error: Some(ErrorJson {
                        code: "wrong_passphrase".into(),
                        message: format!(
                            "no passphrase for \"{name}\": set ESCALE_PASSPHRASE, pass \
                         --passphrase-file, or run on a terminal"
                        ),
                    }),
                    name,
                    report: None,
                },
                Some(passphrase) => match escale_core::sync(config_dir, &name, passphrase).await {
                    Ok(report) => Outcome {
                        name,
                        report: Some(report),
                        error: None,
                    },
                    Err(error) => Outcome {
                        name,
                        report: None,
                        error: Some(ErrorJson {
                            code: error.code().into(),
                            message: error.to_string(),
                        }),
                    },
                },
            };
        outcomes.push(outcome);
    }
    let failed = outcomes
        .iter()
        .any(|o| o.error.is_some() || o.report.as_ref().is_some_and(|r| !r.problems.is_empty()));
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "repositories": outcomes }))?;
        writeln!(out)?;
    } else {
        print_human(&outcomes);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(outcomes: &[Outcome]) {
    for outcome in outcomes {
        match (&outcome.report, &outcome.error) {
            (_, Some(error)) => eprintln!("error: {}: {}", outcome.name, error.message),
            (Some(report), None) => {
                println!(
                    "{}: sent {} change(s) ({} uploaded), received {} change(s), {} conflict(s), \
                     {} relay object(s) cleaned up",
                    outcome.name,
                    report.changes_sent,
                    human_bytes(report.bytes_uploaded),
                    report.changes_received,
                    report.conflicts,
                    report.objects_deleted
                );
                for problem in &report.problems {
                    match &problem.path {
                        // Messages about one file do not all name it.
                        Some(path) if !problem.message.contains(path.as_str()) => {
                            eprintln!("warning: {}: {path}: {}", outcome.name, problem.message);
                        }
                        _ => eprintln!("warning: {}: {}", outcome.name, problem.message),
                    }
                }
                if !report.problems.is_empty() {
                    eprintln!(
                        "error: {}: {} problem(s); everything else was synced, and the rest \
                         will be retried at the next sync",
                        outcome.name,
                        report.problems.len()
                    );
                }
            }
            (None, None) => {}
        }
    }
}

/// Sizes in the units people read: 1.5 MB, not 1572864.
pub(crate) fn human_bytes(bytes: u64) -> String {
    escale_core::ByteSize::approximate(bytes)
}
