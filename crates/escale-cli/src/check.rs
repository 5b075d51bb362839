//! `escale check URL`: tests a relay before it is used and says, in plain
//! words, what works and what to fix.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use escale_core::{CheckOutcome, ConfigDir, RelayAccess, RelayCheck};

/// The arguments of `escale check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The relay address to test, such as webdavs://ana@cloud.example.com/escale.
    url: String,
    /// A PEM file of certificate authorities to trust besides the system's
    /// (a server with its own certificate, or a company proxy that
    /// inspects secure connections).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Print a machine-readable JSON report.
    #[arg(long)]
    json: bool,
}

/// Runs the check and prints its report; fails when a step failed.
pub(crate) async fn run(config_dir: &ConfigDir, args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.ca_file
        && !file.is_file()
    {
        anyhow::bail!("the certificate file {} does not exist", file.display());
    }
    let access = RelayAccess {
        // Else from the environment or the keyring, as for syncing.
        password: crate::secrets::relay_password(&args.url)?,
        ca_file: args.ca_file,
        known_hosts: Some(config_dir.known_hosts_file()),
    };
    let check = escale_core::check_relay(&args.url, &access).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        print!("{}", render(&check));
    }
    match check.failure() {
        None => Ok(ExitCode::SUCCESS),
        Some(step) => anyhow::bail!("the relay check failed at \"{}\"", step.title),
    }
}

/// The report for people: one line per step, the problem and what to do
/// under a failed one, and a verdict.
fn render(check: &RelayCheck) -> String {
    let mut out = format!("Checking {}\n", check.address);
    for step in &check.steps {
        match &step.outcome {
            CheckOutcome::Passed { detail } => {
                out.push_str(&format!("  ok      {}: {detail}\n", step.title));
            }
            CheckOutcome::Failed {
                problem,
                fix,
                details,
                ..
            } => {
                out.push_str(&format!("  FAILED  {}: {problem}\n", step.title));
                out.push_str(&format!("          What to do: {fix}\n"));
                if !details.is_empty() {
                    out.push_str(&format!("          Details: {details}\n"));
                }
            }
            CheckOutcome::NotRun => {
                out.push_str(&format!("  -       {}: not tried\n", step.title));
            }
        }
    }
    out.push_str(if check.passed() {
        "The relay is ready for Escale.\n"
    } else {
        "The relay cannot be used yet: fix the problem above, then check again.\n"
    });
    out
}
