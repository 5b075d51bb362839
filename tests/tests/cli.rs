//! The `escale` binary as scripts use it: exit codes, one-line errors,
//! and the settings shared with the desktop app.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;

use escale_e2e::escale;

#[test]
fn status_on_a_fresh_computer_says_nothing_is_set_up() {
    let config = tempfile::tempdir().unwrap();
    let output = escale(config.path()).arg("status").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("No synced folders are set up yet"), "{text}");
}

#[test]
fn status_json_lists_repositories_from_the_shared_settings_file() {
    let config = tempfile::tempdir().unwrap();
    fs::write(
        config.path().join("config.toml"),
        "version = 1\n\n[[repository]]\nname = \"Reports\"\nfolder = \"/srv/reports\"\nrelay = \"file:///mnt/relay\"\n",
    )
    .unwrap();
    let output = escale(config.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["repositories"][0]["name"], "Reports");
    assert_eq!(report["repositories"][0]["folder"], "/srv/reports");
    assert_eq!(report["repositories"][0]["relay"], "file:///mnt/relay");
    assert_eq!(report["config_dir"], config.path().to_str().unwrap());
}

#[test]
fn broken_settings_file_gives_one_error_line_and_a_failure_exit() {
    let config = tempfile::tempdir().unwrap();
    fs::write(
        config.path().join("config.toml"),
        "version = 1\n[[repository]\n",
    )
    .unwrap();
    let output = escale(config.path()).arg("status").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: the settings file"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn settings_from_a_newer_escale_are_refused_clearly() {
    let config = tempfile::tempdir().unwrap();
    fs::write(config.path().join("config.toml"), "version = 7\n").unwrap();
    let output = escale(config.path()).arg("status").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("install a newer Escale"), "{stderr}");
}

#[test]
fn version_flag_prints_the_package_version() {
    let config = tempfile::tempdir().unwrap();
    let output = escale(config.path()).arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.trim(), format!("escale {}", env!("CARGO_PKG_VERSION")));
}
