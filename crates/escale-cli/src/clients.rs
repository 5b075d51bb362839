//! `escale clients`: the computers of a repository, and retiring one.

use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use escale_core::{ClientInfo, ConfigDir, Presence};

use crate::secrets::{self, Prompt};
use crate::sync::human_bytes;

/// `escale clients [NAME]` or `escale clients retire CLIENT`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ClientsArgs {
    #[command(subcommand)]
    action: Option<ClientsAction>,
    /// The repository (may be left out when only one is set up).
    name: Option<String>,
    /// Print machine-readable JSON (schema in docs/cli.md).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ClientsAction {
    /// Stop waiting for a computer that is gone for good: the relay no
    /// longer keeps data for it, and its own data there is cleared. If it
    /// comes back, it must join again.
    Retire {
        /// The computer: its name, or its identifier (or the start of it).
        client: String,
        /// The repository (may be left out when only one is set up).
        #[arg(long, short, value_name = "NAME")]
        repository: Option<String>,
    },
}

pub(crate) async fn run(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    args: ClientsArgs,
) -> anyhow::Result<()> {
    match args.action {
        None => {
            let name = repository(config_dir, args.name)?;
            let passphrase = unlock(config_dir, passphrase_file, &name).await?;
            let list = escale_core::clients(config_dir, &name, passphrase).await?;
            let mut out = std::io::stdout().lock();
            if args.json {
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                print_table(&mut out, &list)?;
            }
        }
        Some(ClientsAction::Retire {
            client,
            repository: name,
        }) => {
            let name = repository(config_dir, name)?;
            let passphrase = unlock(config_dir, passphrase_file, &name).await?;
            let retired = escale_core::retire(config_dir, &name, passphrase, &client).await?;
            println!(
                "{} ({}) is retired from \"{name}\": the relay no longer keeps data for it. \
                 If it comes back, it must join again.",
                retired.name, retired.id
            );
        }
    }
    Ok(())
}

/// The repository meant: the one named, or the only one set up.
fn repository(config_dir: &ConfigDir, name: Option<String>) -> anyhow::Result<String> {
    if let Some(name) = name {
        return Ok(name);
    }
    let config = config_dir.load()?;
    match config.repositories.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => anyhow::bail!("no synced folders are set up on this computer"),
        _ => anyhow::bail!("several synced folders are set up: name the one you mean"),
    }
}

async fn unlock(
    config_dir: &ConfigDir,
    passphrase_file: Option<&Path>,
    name: &str,
) -> anyhow::Result<escale_core::Passphrase> {
    secrets::passphrase(passphrase_file, Some(config_dir), name, Prompt::Once)
        .await?
        .with_context(|| {
            format!(
                "no passphrase for \"{name}\": set ESCALE_PASSPHRASE, pass --passphrase-file, \
                 or run on a terminal"
            )
        })
}

fn print_table(out: &mut impl std::io::Write, list: &[ClientInfo]) -> std::io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    for client in list {
        let seen = client.last_seen.map_or_else(
            || "never seen".to_owned(),
            |at| format!("seen {}", ago(now - at)),
        );
        let short_id = &client.id[..client.id.len().min(8)];
        if client.this_computer {
            writeln!(out, "{} ({short_id}) — this computer", client.name)?;
            continue;
        }
        let presence = match client.presence {
            Presence::Active => "",
            Presence::Absent => ", absent: no longer waited for",
            Presence::Retired => ", retired",
            Presence::Unreadable => ", its status could not be read just now",
            _ => "",
        };
        let lacks = if client.lacks_files == 0 {
            "has everything this computer sent".to_owned()
        } else {
            format!(
                "lacks {} change(s), {}, from this computer",
                client.lacks_files,
                human_bytes(client.lacks_bytes)
            )
        };
        writeln!(
            out,
            "{} ({short_id}) — {seen}{presence}; {lacks}",
            client.name
        )?;
    }
    Ok(())
}

/// "3 minutes ago", "5 days ago".
fn ago(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (count, unit) = match seconds {
        0..60 => return "just now".into(),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(7200), "2 hours ago");
        assert_eq!(ago(5 * 86_400), "5 days ago");
        assert_eq!(
            ago(-3),
            "just now",
            "a clock ahead of ours is not in the future"
        );
    }
}
