//! Where the passphrase comes from, in the documented order:
//! `--passphrase-file`, then `ESCALE_PASSPHRASE`, then the system keyring
//! (where `init` and `join` save it), then a prompt when a person is at a
//! terminal.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use escale_core::{ConfigDir, Passphrase};

/// The environment variable holding the passphrase on headless machines.
const PASSPHRASE_ENV: &str = "ESCALE_PASSPHRASE";

/// How to ask when nothing else gives the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Never ask (status, scripts).
    Never,
    /// Ask once.
    Once,
    /// Ask twice and compare (a new passphrase).
    Confirmed,
}

/// The passphrase for `repository`, or `None` if no source has one and
/// prompting is not allowed or not possible. `keyring` is the settings
/// folder whose repository may have its passphrase saved, if any.
pub(crate) async fn passphrase(
    file: Option<&Path>,
    keyring: Option<&ConfigDir>,
    repository: &str,
    prompt: Prompt,
) -> anyhow::Result<Option<Passphrase>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the passphrase file {}", file.display()))?;
        // A trailing newline from `echo` or an editor is not part of it.
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        if text.is_empty() {
            bail!("the passphrase file {} is empty", file.display());
        }
        return Ok(Some(Passphrase::new(text)));
    }
    if let Ok(text) = std::env::var(PASSPHRASE_ENV)
        && !text.is_empty()
    {
        return Ok(Some(Passphrase::new(text)));
    }
    if let Some(config_dir) = keyring
        && let Some(saved) = escale_core::saved_passphrase(config_dir, repository).await?
    {
        return Ok(Some(saved));
    }
    if prompt == Prompt::Never || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let first = rpassword::prompt_password(format!("Passphrase for \"{repository}\": "))
        .context("cannot read the passphrase from the terminal")?;
    if first.is_empty() {
        bail!("the passphrase cannot be empty");
    }
    if prompt == Prompt::Confirmed {
        let second = rpassword::prompt_password("Type it again: ")
            .context("cannot read the passphrase from the terminal")?;
        if first != second {
            bail!("the two passphrases differ; nothing was created");
        }
    }
    Ok(Some(Passphrase::new(first)))
}

/// Saves the passphrase of a repository just created or joined in the
/// keyring; a computer without one only gets a note, since the passphrase
/// can still come from the environment or a file.
pub(crate) async fn remember(config_dir: &ConfigDir, repository: &str, passphrase: &Passphrase) {
    if let Err(error) = escale_core::save_passphrase(config_dir, repository, passphrase).await {
        eprintln!(
            "note: the passphrase was not saved ({error}); give it with ESCALE_PASSPHRASE or \
             --passphrase-file when syncing"
        );
    }
}
