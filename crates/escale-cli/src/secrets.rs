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

/// The relay password to use for `address` when the environment has none:
/// asked on a terminal, for addresses that log in (a user name in the
/// address, or S3). `None` when nothing is needed or nobody can answer; the
/// engine then also looks in the keyring.
pub(crate) fn relay_password(address: &str) -> anyhow::Result<Option<String>> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("ESCALE_RELAY_PASSWORD") || set("AWS_SECRET_ACCESS_KEY") {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let s3 = address.starts_with("s3://");
    let logs_in = address
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split('/').next().is_some_and(|a| a.contains('@')));
    if s3 {
        let id = rpassword::prompt_password(format!("S3 access key id for {address}: "))
            .context("cannot read the access key id from the terminal")?;
        let secret = rpassword::prompt_password("S3 secret access key: ")
            .context("cannot read the secret key from the terminal")?;
        if id.is_empty() || secret.is_empty() {
            return Ok(None);
        }
        return Ok(Some(format!("{id}:{secret}")));
    }
    if !logs_in {
        return Ok(None);
    }
    let password = rpassword::prompt_password(format!("Password for the relay {address}: "))
        .context("cannot read the relay password from the terminal")?;
    Ok(Some(password).filter(|p| !p.is_empty()))
}

/// Saves a relay password typed at set-up in the keyring, so that syncing
/// finds it; without a keyring, says how to give it instead.
pub(crate) async fn remember_relay_password(address: &str, password: &str) {
    if let Err(error) = escale_core::save_relay_password(address, password).await {
        eprintln!(
            "note: the relay password was not saved ({error}); give it with \
             ESCALE_RELAY_PASSWORD when syncing"
        );
    }
}
