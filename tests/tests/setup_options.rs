//! `escale init` and `escale join` with `--mode` and `--quota`: stored in
//! the settings file, refused when invalid, and obeyed by sync.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Output;

use escale_e2e::{escale, run_ok, set_up_command};

const PASSPHRASE: &str = "setup options passphrase";

/// `escale VERB shared` with `options`.
fn set_up(config: &Path, verb: &str, folder: &Path, relay: &Path, options: &[&str]) -> Output {
    set_up_command(config, verb, "shared", folder, relay)
        .args(options)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap()
}

/// `escale sync`, which must succeed.
fn sync(config: &Path) {
    run_ok(
        escale(config)
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .arg("sync"),
    );
}

/// The settings file's text.
fn settings(config: &Path) -> String {
    fs::read_to_string(config.join("config.toml")).unwrap()
}

#[test]
fn mode_and_quota_are_stored_and_a_receive_only_computer_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let (config_a, folder_a) = (dir.path().join("config-a"), dir.path().join("a"));
    let (config_b, folder_b) = (dir.path().join("config-b"), dir.path().join("b"));

    let output = set_up(
        &config_a,
        "init",
        &folder_a,
        &relay,
        &["--mode", "send-only", "--quota", "10MB"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = settings(&config_a);
    assert!(text.contains("mode = \"send-only\""), "{text}");
    assert!(text.contains("quota = \"10 MB\""), "{text}");

    let output = set_up(
        &config_b,
        "join",
        &folder_b,
        &relay,
        &["--mode", "receive-only"],
    );
    assert!(output.status.success());
    let text = settings(&config_b);
    assert!(text.contains("mode = \"receive-only\""), "{text}");
    assert!(!text.contains("quota"), "no quota unless asked: {text}");

    // The modes are obeyed: A's file reaches B, B's stays on B.
    fs::write(folder_a.join("from-a.txt"), b"A").unwrap();
    fs::write(folder_b.join("from-b.txt"), b"B").unwrap();
    for config in [&config_a, &config_b, &config_a] {
        sync(config);
    }
    assert_eq!(fs::read(folder_b.join("from-a.txt")).unwrap(), b"A");
    assert!(!folder_a.join("from-b.txt").exists());
}

#[test]
fn invalid_mode_or_quota_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let config = dir.path().join("config");
    let folder = dir.path().join("folder");

    let output = set_up(&config, "init", &folder, &relay, &["--quota", "1MB"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("8 MB"),
        "{stderr}"
    );

    let output = set_up(&config, "init", &folder, &relay, &["--quota", "lots"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("500MB"),
        "the error shows an example: {stderr}"
    );

    let output = set_up(&config, "init", &folder, &relay, &["--mode", "sideways"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("send-receive, send-only, receive-only"),
        "{stderr}"
    );

    assert!(!config.join("config.toml").exists());
    assert!(!folder.exists());
    assert_eq!(
        fs::read_dir(&relay).unwrap().count(),
        0,
        "the relay is untouched"
    );
}
