//! `escale`: the headless front end of the Escale sync engine, for servers
//! and scripts. It parses the command line, calls `escale-core`, and renders
//! the results; it holds no sync logic of its own.

mod check;
mod clients;
mod run;
mod secrets;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use escale_core::{ByteSize, ConfigDir, NewRepository, SyncMode};
use secrets::Prompt;

/// Keeps folders in sync between computers that cannot reach each other,
/// through an encrypted relay folder on storage they can all reach.
#[derive(Debug, Parser)]
#[command(name = "escale", version, about, max_term_width = 100)]
struct Cli {
    /// The folder holding settings, state and logs. Defaults to
    /// $ESCALE_CONFIG_DIR, else the system's per-user settings folder.
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,

    /// Read the passphrase from this file (else $ESCALE_PASSPHRASE, else the
    /// system keyring, else a prompt on a terminal).
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new repository on a relay and sync FOLDER with it.
    Init(SetUp),
    /// Join an existing repository (the passphrase is checked first).
    Join(SetUp),
    /// Run one complete sync cycle (scan, send, receive, acknowledge, clean up).
    Sync {
        /// The repositories to sync (all when none is given).
        names: Vec<String>,
        /// Print a machine-readable JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Sync every synced folder in the background until stopped (SIGINT or
    /// SIGTERM): changes are seen as they happen, and the other computers'
    /// changes are polled for, often right after activity, rarely when idle.
    Run {
        /// Seconds between polls right after activity, for every synced
        /// folder [default: the settings' poll_min, else 2].
        #[arg(long, value_name = "SECONDS", value_parser = run::seconds)]
        poll_min: Option<std::time::Duration>,
        /// Seconds between polls after a long quiet time, for every synced
        /// folder [default: the settings' poll_max, else 90].
        #[arg(long, value_name = "SECONDS", value_parser = run::seconds)]
        poll_max: Option<std::time::Duration>,
    },
    /// Show each synced folder: its state, pending changes, relay usage,
    /// and what the other computers still lack.
    Status {
        /// Print machine-readable JSON (schema in docs/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// Manage the repository passphrase.
    #[command(subcommand)]
    Passphrase(PassphraseCommand),
    /// Let the next sync send the deletions that paused a repository: many
    /// synced files went missing at once, which usually means a disconnected
    /// drive, so Escale waits for this confirmation before deleting them on
    /// the other computers.
    ConfirmDeletions {
        /// The paused repository.
        name: String,
    },
    /// List the computers of a repository: when each was last seen and
    /// what it still lacks; or retire one that is gone for good.
    Clients(clients::ClientsArgs),
    /// Test a relay before using it: find the server, log in, and save,
    /// read, list and delete a test file in the relay folder. The password
    /// comes from $ESCALE_RELAY_PASSWORD (S3: the AWS key variables).
    Check(check::CheckArgs),
}

#[derive(Debug, Args)]
struct SetUp {
    /// A short local name for the repository.
    name: String,
    /// The local folder to keep in sync (created if missing).
    #[arg(long, value_name = "PATH")]
    folder: PathBuf,
    /// The relay address, such as file:///mnt/share/escale.
    #[arg(long, value_name = "URL")]
    relay: String,
    /// This computer's name as the others see it (default: the host name).
    #[arg(long, value_name = "NAME")]
    client_name: Option<String>,
    /// Which way changes travel: send-receive (default), send-only (this
    /// computer's changes go out, the others' are not applied here) or
    /// receive-only (the others' changes come in, this one's are not sent).
    #[arg(long, value_name = "MODE", value_parser = sync_mode)]
    mode: Option<SyncMode>,
    /// The most this repository may keep on the relay, all computers
    /// together, such as 500MB or 2GiB (at least 8 MB); no limit by default.
    #[arg(long, value_name = "SIZE")]
    quota: Option<ByteSize>,
    /// A PEM file of certificate authorities to trust for the relay besides
    /// the system's (a server with its own certificate, or a company proxy
    /// that inspects secure connections); kept in the settings.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// The `--mode` values, as written in `config.toml`.
const MODES: [(&str, SyncMode); 3] = [
    ("send-receive", SyncMode::SendReceive),
    ("send-only", SyncMode::SendOnly),
    ("receive-only", SyncMode::ReceiveOnly),
];

/// Parses `--mode`.
fn sync_mode(text: &str) -> Result<SyncMode, String> {
    MODES
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, mode)| *mode)
        .ok_or_else(|| {
            let names: Vec<&str> = MODES.iter().map(|(name, _)| *name).collect();
            format!("{text:?} is not a mode; use one of {}", names.join(", "))
        })
}

#[derive(Debug, Subcommand)]
enum PassphraseCommand {
    /// Replace the passphrase (the other computers will need the new one).
    Change {
        /// The repository.
        name: String,
        /// Read the new passphrase from this file (else a prompt).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            // One line, with the causes, as scripts and the design contract expect.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_dir = ConfigDir::locate(cli.config_dir)?;
    let file = cli.passphrase_file.as_deref();
    match cli.command {
        Command::Init(set_up) => set_up_repository(&config_dir, file, set_up, true).await,
        Command::Join(set_up) => set_up_repository(&config_dir, file, set_up, false).await,
        Command::Sync { names, json } => sync::run(&config_dir, file, names, json).await,
        Command::Run { poll_min, poll_max } => {
            let poll = run::PollOverride {
                min: poll_min,
                max: poll_max,
            };
            run::run(&config_dir, file, poll).await
        }
        Command::Status { json } => {
            status::print(&config_dir, file, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Passphrase(PassphraseCommand::Change {
            name,
            new_passphrase_file,
        }) => {
            let old = secrets::passphrase(file, Some(&config_dir), &name, Prompt::Once)
                .await?
                .with_context(|| no_passphrase(&name))?;
            let new = secrets::passphrase(
                new_passphrase_file.as_deref(),
                None,
                &name,
                Prompt::Confirmed,
            )
            .await?
            .with_context(
                || "no new passphrase: pass --new-passphrase-file or run on a terminal",
            )?;
            let kept = new.clone();
            escale_core::change_passphrase(&config_dir, &name, old, new).await?;
            secrets::remember(&config_dir, &name, &kept).await;
            println!(
                "The passphrase of \"{name}\" was changed; the other computers need the new one."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Clients(args) => {
            clients::run(&config_dir, file, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check::run(&config_dir, args).await,
        Command::ConfirmDeletions { name } => {
            let count = escale_core::confirm_deletions(&config_dir, &name).await?;
            println!(
                "The next sync of \"{name}\" deletes the {count} missing file(s) on the other \
                 computers too."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `init` (when `create`) or `join`, then the passphrase into the keyring.
async fn set_up_repository(
    config_dir: &ConfigDir,
    file: Option<&std::path::Path>,
    set_up: SetUp,
    create: bool,
) -> anyhow::Result<ExitCode> {
    // A new passphrase is typed twice: a typo would lock everyone out.
    let prompt = if create {
        Prompt::Confirmed
    } else {
        Prompt::Once
    };
    let passphrase = secrets::passphrase(file, None, &set_up.name, prompt)
        .await?
        .with_context(|| no_passphrase(&set_up.name))?;
    let kept = passphrase.clone();
    let ca_file = match set_up.ca_file {
        Some(file) => Some(
            std::path::absolute(&file)
                .with_context(|| format!("cannot use the certificate file {}", file.display()))?,
        ),
        None => None,
    };
    if let Some(file) = &ca_file
        && !file.is_file()
    {
        anyhow::bail!("the certificate file {} does not exist", file.display());
    }
    let relay_password = secrets::relay_password(&set_up.relay)?;
    let new = NewRepository {
        name: set_up.name,
        folder: set_up.folder,
        relay: set_up.relay,
        client_name: set_up.client_name,
        mode: set_up.mode.unwrap_or_default(),
        quota: set_up.quota,
        access: escale_core::RelayAccess {
            password: relay_password.clone(),
            ca_file,
            known_hosts: Some(config_dir.known_hosts_file()),
        },
    };
    let repo = if create {
        escale_core::init(config_dir, new, passphrase).await?
    } else {
        escale_core::join(config_dir, new, passphrase).await?
    };
    secrets::remember(config_dir, &repo.name, &kept).await;
    if let Some(password) = relay_password {
        secrets::remember_relay_password(&repo.relay, &password).await;
    }
    println!(
        "{} repository \"{}\": {} is synced through {}.",
        if create { "Created" } else { "Joined" },
        repo.name,
        repo.folder.display(),
        repo.relay
    );
    Ok(ExitCode::SUCCESS)
}

fn no_passphrase(name: &str) -> String {
    format!(
        "no passphrase for \"{name}\": set ESCALE_PASSPHRASE, pass --passphrase-file, or run on a terminal"
    )
}
