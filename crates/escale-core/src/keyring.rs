//! Repository passphrases in the operating system's keyring: the Secret
//! Service (GNOME Keyring, KWallet) on Linux, the Keychain on macOS, the
//! Credential Manager on Windows.
//!
//! Entries are keyed by repository identifier, not by local name, so two
//! settings folders on one computer never read each other's passphrase.
//! Setting `ESCALE_NO_KEYRING` (to anything) turns the keyring off: for
//! servers without one, and for tests that must not touch the user's.

use crate::config::ConfigDir;
use crate::error::{Error, Result};
use crate::repository::{Passphrase, repository_id};

/// The keyring service name of every Escale entry.
const SERVICE: &str = "escale";

/// Turns the keyring off when set.
const DISABLE_ENV: &str = "ESCALE_NO_KEYRING";

fn disabled() -> bool {
    std::env::var_os(DISABLE_ENV).is_some()
}

fn entry(config_dir: &ConfigDir, name: &str) -> Result<keyring::Entry> {
    let id = repository_id(config_dir, name)?;
    keyring::Entry::new(SERVICE, &format!("repository-{id}")).map_err(keyring_error)
}

fn keyring_error(error: keyring::Error) -> Error {
    Error::Keyring(error.to_string())
}

/// Runs keyring work on a blocking thread: the platform stores block.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Internal(error.to_string()))?
}

/// Saves the passphrase of repository `name` in the keyring.
pub async fn save_passphrase(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: &Passphrase,
) -> Result<()> {
    if disabled() {
        return Err(Error::Keyring(format!("it is turned off by {DISABLE_ENV}")));
    }
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    let secret = passphrase.clone();
    blocking(move || {
        entry(&config_dir, &name)?
            .set_password(secret.expose())
            .map_err(keyring_error)
    })
    .await
}

/// The saved passphrase of repository `name`, if the keyring has one.
/// A missing or locked keyring reads as "none saved".
pub async fn saved_passphrase(config_dir: &ConfigDir, name: &str) -> Result<Option<Passphrase>> {
    if disabled() {
        return Ok(None);
    }
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move || {
        let entry = match entry(&config_dir, &name) {
            Ok(entry) => entry,
            // Not set up on this computer: nothing can be saved for it.
            Err(Error::UnknownRepository(_) | Error::InvalidRepository { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        match entry.get_password() {
            Ok(text) => Ok(Some(Passphrase::new(text))),
            Err(error) => {
                tracing::debug!(%error, "no passphrase from the keyring");
                Ok(None)
            }
        }
    })
    .await
}

/// Deletes the saved passphrase of repository `name`, if there is one; a
/// computer without a keyring has none. Blocking: called while the
/// repository is being removed.
pub(crate) fn forget_passphrase(config_dir: &ConfigDir, name: &str) -> Result<()> {
    if disabled() {
        return Ok(());
    }
    match entry(config_dir, name)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        // No keyring here (a server): nothing can have been saved in it.
        Err(error @ (keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_))) => {
            tracing::debug!(%error, "no keyring to forget the passphrase in");
            Ok(())
        }
        Err(error) => Err(keyring_error(error)),
    }
}

/// The keyring entry of the relay at `address`. Relays are keyed by their
/// address (which never holds a password): two repositories on the same
/// server login share it, and it exists before any repository does, when
/// the setup checks the relay.
fn relay_entry(address: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, &format!("relay {address}")).map_err(keyring_error)
}

/// Saves the password of the relay at `address` (for S3, the access key
/// id and the secret key as `ID:SECRET`) in the keyring, where syncing
/// finds it.
pub async fn save_relay_password(address: &str, password: &str) -> Result<()> {
    if disabled() {
        return Err(Error::Keyring(format!("it is turned off by {DISABLE_ENV}")));
    }
    let address = address.to_owned();
    let password = zeroize::Zeroizing::new(password.to_owned());
    blocking(move || {
        relay_entry(&address)?
            .set_password(&password)
            .map_err(keyring_error)
    })
    .await
}

/// The saved password of the relay at `address`, if the keyring has one;
/// a missing or locked keyring reads as none. Blocking: called from the
/// sync thread.
pub(crate) fn relay_password(address: &str) -> Option<zeroize::Zeroizing<String>> {
    if disabled() {
        return None;
    }
    match relay_entry(address).and_then(|entry| entry.get_password().map_err(keyring_error)) {
        Ok(password) => Some(zeroize::Zeroizing::new(password)),
        Err(error) => {
            tracing::debug!(%error, "no relay password from the keyring");
            None
        }
    }
}
