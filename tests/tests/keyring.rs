//! Secrets in the system keyring, as a desktop user has them: the
//! passphrase saved by `init`, read back by `sync`, and never written to a
//! file; the relay password read from the keyring by its address.
//!
//! Needs a session bus with an unlocked Secret Service keyring, so a plain
//! `cargo test` skips it; `scripts/test.sh` runs it inside a private
//! `dbus-run-session` with its own gnome-keyring.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::process::{Command, Stdio};

use escale_e2e::{escale, files_containing, keyring_passphrase, set_up_command};

const PASSPHRASE: &str = "kept-in-the-keyring 7f3a";

#[test]
#[ignore = "needs a session bus with an unlocked keyring; run by scripts/test.sh"]
fn init_saves_the_passphrase_in_the_keyring_and_sync_reads_it_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let config = dir.path().join("config");
    let folder = dir.path().join("folder");
    let output = set_up_command(&config, "init", "kept", &folder, &relay)
        .env_remove("ESCALE_NO_KEYRING")
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not saved"), "{stderr}");

    // Read back with the desktop's own tool, by the repository identifier.
    assert_eq!(keyring_passphrase(&relay).as_deref(), Some(PASSPHRASE));

    // Nowhere on disk: not in the settings, the state, the folder or the relay.
    let found = files_containing(&[&config, &folder, &relay], PASSPHRASE.as_bytes());
    assert!(found.is_empty(), "the passphrase is written in {found:?}");

    // No environment variable, no file, no terminal: the keyring answers.
    fs::write(folder.join("note.txt"), b"hello").unwrap();
    let sync = escale(&config)
        .env_remove("ESCALE_NO_KEYRING")
        .arg("sync")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
}

#[test]
#[ignore = "needs a session bus with an unlocked keyring and scripts/relay-servers.sh; run by scripts/test.sh"]
fn the_relay_password_is_read_from_the_keyring() {
    let servers = escale_e2e::servers::Servers::get();
    let url = servers.var("WEBDAV_URL");
    let password = servers.var("WEBDAV_PASSWORD");
    // Saved the way the engine saves it: by the relay's address.
    let mut store = Command::new("secret-tool")
        .args(["store", "--label", "Escale relay", "service", "escale"])
        .args(["username", &format!("relay {url}")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("secret-tool is installed (libsecret-tools)");
    std::io::Write::write_all(&mut store.stdin.take().unwrap(), password.as_bytes()).unwrap();
    assert!(store.wait().unwrap().success());

    let config = tempfile::tempdir().unwrap();
    let check = |keyring: bool| {
        let mut command = escale(config.path());
        command.args(["check", url]).stdin(Stdio::null());
        if keyring {
            command.env_remove("ESCALE_NO_KEYRING");
        }
        command.output().unwrap()
    };
    let with = check(true);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stdout)
    );
    // The keyring, and nothing else, held it.
    let without = check(false);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stdout).contains("refused the user name or password"));
}
