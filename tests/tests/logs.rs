//! The log of `escale run`: where it goes, and that no passphrase ever
//! reaches it (nor standard error, nor anything in the settings folder).

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use escale_e2e::world::Daemon;
use escale_e2e::{escale, set_up_command};

/// A passphrase no message could contain by chance.
const PASSPHRASE: &str = "Zq8-distinctive-passphrase-4471";

/// A wrong one, as distinctive: error paths must not echo it either.
const WRONG: &str = "Wrong-distinctive-passphrase-9932";

/// `escale run` with fast polls and `passphrase`, its standard error to
/// `stderr`.
fn start_daemon(config: &Path, passphrase: &str, stderr: &Path) -> Daemon {
    let mut command = escale(config);
    command
        .env("ESCALE_PASSPHRASE", passphrase)
        .args(["run", "--poll-min", "0.2", "--poll-max", "1"])
        .stdout(Stdio::null())
        .stderr(fs::File::create(stderr).unwrap());
    Daemon::spawn(command)
}

/// Waits until `done` holds, for at most a minute.
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    escale_e2e::world::wait_until(Duration::from_secs(60), what, done);
}

/// The text of `path`; empty while it does not exist.
fn read(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Every file under `dir`.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Fails if `bytes` (named `what`) hold either passphrase.
fn assert_no_secret(what: &str, bytes: &[u8]) {
    for secret in [PASSPHRASE, WRONG] {
        assert!(
            memchr::memmem::find(bytes, secret.as_bytes()).is_none(),
            "{what} contains a passphrase"
        );
    }
}

/// Fails if the output of `what` holds either passphrase.
fn assert_output_clean(what: &str, output: &Output) {
    assert_no_secret(&format!("{what}: stdout"), &output.stdout);
    assert_no_secret(&format!("{what}: stderr"), &output.stderr);
}

#[test]
fn the_daemon_logs_to_a_file_and_no_passphrase_is_ever_written() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let (config_a, folder_a) = (dir.path().join("config-a"), dir.path().join("a"));
    let (config_b, folder_b) = (dir.path().join("config-b"), dir.path().join("b"));

    let init = set_up_command(&config_a, "init", "shared", &folder_a, &relay)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(init.status.success());
    assert_output_clean("init", &init);
    let refused = set_up_command(&config_b, "join", "shared", &folder_b, &relay)
        .env("ESCALE_PASSPHRASE", WRONG)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert_output_clean("join with a wrong passphrase", &refused);
    let join = set_up_command(&config_b, "join", "shared", &folder_b, &relay)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(join.status.success());
    assert_output_clean("join", &join);

    fs::write(folder_a.join("first.txt"), b"first").unwrap();
    for (passphrase, succeeds) in [(PASSPHRASE, true), (WRONG, false)] {
        let sync = escale(&config_a)
            .env("ESCALE_PASSPHRASE", passphrase)
            .args(["sync"])
            .output()
            .unwrap();
        assert_eq!(sync.status.success(), succeeds);
        assert_output_clean("sync", &sync);
    }

    // A's daemon syncs a change; B's has the wrong passphrase and says so.
    let stderr_a = dir.path().join("stderr-a.txt");
    let stderr_b = dir.path().join("stderr-b.txt");
    let daemon_a = start_daemon(&config_a, PASSPHRASE, &stderr_a);
    let daemon_b = start_daemon(&config_b, WRONG, &stderr_b);
    let log_a = config_a.join("logs/escale.log");
    let log_b = config_b.join("logs/escale.log");
    wait_until("A's daemon starts", || read(&log_a).contains("Syncing 1"));
    fs::write(folder_a.join("second.txt"), b"second").unwrap();
    wait_until("A logs the change", || {
        read(&log_a).contains("shared: sent 1 change(s)")
    });
    wait_until("B logs its failure", || {
        read(&log_b).contains("the passphrase is wrong")
    });
    daemon_a.stop();
    daemon_b.stop();

    // The log has what standard error had, with the time and level.
    let log = read(&log_a);
    assert!(log.contains("Stopped."), "{log}");
    let line = log.lines().find(|line| line.contains("sent 1")).unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.starts_with("20"), "a timestamp first: {line}");
    let printed = read(&stderr_a);
    assert!(printed.contains("shared: sent 1 change(s)"), "{printed}");
    let printed_b = read(&stderr_b);
    assert!(
        printed_b.contains("error: shared: the passphrase is wrong"),
        "{printed_b}"
    );
    assert!(read(&log_b).contains(" ERROR "), "{}", read(&log_b));

    for file in [&stderr_a, &stderr_b] {
        assert_no_secret(&file.display().to_string(), &fs::read(file).unwrap());
    }
    // Neither the logs nor anything else in the settings folders.
    for config in [&config_a, &config_b] {
        let files = all_files(config);
        assert!(files.iter().any(|file| file.ends_with("logs/escale.log")));
        for file in files {
            assert_no_secret(&file.display().to_string(), &fs::read(&file).unwrap());
        }
    }
}
