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
use std::path::Path;
use std::process::{Command, Stdio};

use escale_e2e::{escale, set_up_command};

const PASSPHRASE: &str = "kept-in-the-keyring 7f3a";

fn files_containing(root: &Path, needle: &[u8], found: &mut Vec<String>) {
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_containing(&path, needle, found);
        } else if memchr::memmem::find(&fs::read(&path).unwrap(), needle).is_some() {
            found.push(path.display().to_string());
        }
    }
}

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
    let header: serde_json::Value =
        serde_json::from_slice(&fs::read(relay.join("escale-repo.json")).unwrap()).unwrap();
    let id = header["repository"].as_str().unwrap();
    let lookup = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "escale",
            "username",
            &format!("repository-{id}"),
        ])
        .output()
        .expect("secret-tool is installed (libsecret-tools)");
    assert!(lookup.status.success(), "{lookup:?}");
    assert_eq!(String::from_utf8_lossy(&lookup.stdout), PASSPHRASE);

    // Nowhere on disk: not in the settings, the state, the folder or the relay.
    let mut found = Vec::new();
    for root in [&config, &folder, &relay] {
        files_containing(root, PASSPHRASE.as_bytes(), &mut found);
    }
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
