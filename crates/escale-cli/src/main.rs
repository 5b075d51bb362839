//! `escale`: the headless front end of the Escale sync engine, for servers
//! and scripts. It parses the command line, calls `escale-core`, and renders
//! the results; it holds no sync logic of its own.

mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use escale_core::ConfigDir;

/// Keeps folders in sync between computers that cannot reach each other,
/// through an encrypted relay folder on storage they can all reach.
#[derive(Debug, Parser)]
#[command(name = "escale", version, about, max_term_width = 100)]
struct Cli {
    /// The folder holding settings, state and logs. Defaults to
    /// $ESCALE_CONFIG_DIR, else the system's per-user settings folder.
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show each synced folder and its settings.
    Status {
        /// Print machine-readable JSON (schema in docs/cli.md).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, with the causes, as scripts and the design contract expect.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config_dir = ConfigDir::locate(cli.config_dir)?;
    match cli.command {
        Command::Status { json } => status::print(&config_dir, json),
    }
}
