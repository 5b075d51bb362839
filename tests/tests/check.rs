//! `escale check URL` against the real servers: every kind of storage that
//! works passes every step and keeps nothing of the test, and each common
//! mistake gets its own plain-language diagnosis.
//!
//! Run through `scripts/relay-servers.sh run DIR -- cargo test -p
//! escale-e2e --test check -- --ignored` (the test command does).

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use escale_e2e::escale;
use escale_e2e::servers::Servers;
use serde_json::Value;

/// `escale check URL` with server `name`'s credentials (if any) and the
/// extra arguments.
fn check(servers: &Servers, name: Option<&str>, url: &str, extra: &[&str]) -> (Output, Value) {
    let config = tempfile::tempdir().unwrap();
    let mut command: Command = escale(config.path());
    if let Some(name) = name {
        servers.credentials(name, &mut command);
    }
    check_with(command, url, extra)
}

/// `escale check URL --json` run by `command`, with its report.
fn check_with(mut command: Command, url: &str, extra: &[&str]) -> (Output, Value) {
    command.args(["check", url, "--json"]).args(extra);
    let output = command.output().expect("escale runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "check printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// The human report of the same check, for the words people read.
fn check_text(servers: &Servers, name: &str, url: &str, extra: &[&str]) -> String {
    let config = tempfile::tempdir().unwrap();
    let mut command = escale(config.path());
    command.args(["check", url]).args(extra);
    servers.credentials(name, &mut command);
    let output = command.output().expect("escale runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The first failed step of a report: (step kind, code).
fn failure(report: &Value) -> Option<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["outcome"] == "failed")
        .map(|step| {
            (
                step["kind"].as_str().unwrap().to_owned(),
                step["code"].as_str().unwrap().to_owned(),
            )
        })
}

/// `url` with its folder `relay` replaced by `folder`.
fn in_folder(url: &str, folder: &str) -> String {
    assert!(url.contains("/relay"), "{url} has no /relay folder");
    url.replacen("/relay", &format!("/{folder}"), 1)
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_passes_on_every_server_and_leaves_nothing_behind() {
    let servers = Servers::get();
    let ca = servers.var("CA_FILE").to_owned();
    for name in [
        "WEBDAV",
        "WEBDAVS",
        "APACHE",
        "RCLONE_WEBDAV",
        "S3",
        "FTP",
        "FTPS",
        "PUREFTPD",
        "SFTP",
        "RCLONE",
    ] {
        let url = servers.var(&format!("{name}_URL")).to_owned();
        let config = tempfile::tempdir().unwrap();
        let mut command = escale(config.path());
        // What a computer syncing through it has: the credentials, and the
        // SSH key or the rclone configuration.
        command.envs(servers.relay_env(name));
        let (output, report) = check_with(command, &url, &["--ca-file", &ca]);
        assert!(output.status.success(), "{name}: {report:#}");
        assert_eq!(failure(&report), None, "{name}: {report:#}");
        assert!(
            report["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|step| step["outcome"] == "passed"),
            "{name}: {report:#}"
        );
        if name != "S3" {
            let data = std::path::Path::new(servers.var(&format!("{name}_DATA"))).join("relay");
            let left: Vec<_> = std::fs::read_dir(&data)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with(".escale-check"))
                .collect();
            assert!(
                left.is_empty(),
                "{name}: the check left {left:?} in {data:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_says_the_password_is_wrong() {
    let servers = Servers::get();
    let url = servers.var("WEBDAV_URL");
    let config = tempfile::tempdir().unwrap();
    let output = escale(config.path())
        .args(["check", url, "--json"])
        .env("ESCALE_RELAY_PASSWORD", "not the password")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        failure(&report),
        Some(("login".into(), "login_refused".into())),
        "{report:#}"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("not the password"), "{text}");
    assert!(text.contains("password"), "{text}");
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_says_nothing_listens_on_a_wrong_port() {
    let servers = Servers::get();
    // A port just released: nothing listens there.
    let free = escale_e2e::free_port();
    let port = servers.var("WEBDAV_PORT");
    let url = servers
        .var("WEBDAV_URL")
        .replace(&format!(":{port}/"), &format!(":{free}/"));
    let (output, report) = check(&servers, Some("WEBDAV"), &url, &[]);
    assert!(!output.status.success());
    assert_eq!(
        failure(&report),
        Some(("connection".into(), "connection_refused".into())),
        "{report:#}"
    );
    let text = check_text(&servers, "WEBDAV", &url, &[]);
    assert!(text.contains(&format!("port {free}")), "{text}");
    assert!(text.contains("Check the port number"), "{text}");
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_explains_an_unknown_certificate_authority_and_accepts_its_file() {
    let servers = Servers::get();
    let url = servers.var("WEBDAVS_URL").to_owned();
    let (output, report) = check(&servers, Some("WEBDAVS"), &url, &[]);
    assert!(!output.status.success());
    assert_eq!(
        failure(&report),
        Some(("login".into(), "tls".into())),
        "{report:#}"
    );
    let text = check_text(&servers, "WEBDAVS", &url, &[]);
    assert!(text.contains("--ca-file"), "{text}");
    assert!(text.contains("proxy"), "{text}");

    let ca = servers.var("CA_FILE").to_owned();
    let (output, report) = check(&servers, Some("WEBDAVS"), &url, &["--ca-file", &ca]);
    assert!(output.status.success(), "{report:#}");
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_says_a_read_only_folder_cannot_be_written() {
    let servers = Servers::get();
    for name in ["WEBDAV", "APACHE"] {
        let url = in_folder(servers.var(&format!("{name}_URL")), "readonly");
        let (output, report) = check(&servers, Some(name), &url, &[]);
        assert!(!output.status.success(), "{name}");
        assert_eq!(
            failure(&report),
            Some(("write".into(), "permission_denied".into())),
            "{name}: {report:#}"
        );
        let text = check_text(&servers, name, &url, &[]);
        assert!(text.contains("read-only"), "{name}: {text}");
    }
}

/// Trust on first use: an SFTP server met for the first time is recorded
/// in the configuration folder, and the same server with another key is
/// then refused, as a man in the middle would look.
#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn an_sftp_server_is_remembered_at_first_check_and_a_changed_key_refused() {
    let servers = Servers::get();
    let url = servers.var("SFTP_URL").to_owned();
    let config = tempfile::tempdir().unwrap();
    let run = || {
        let mut command = escale(config.path());
        servers.credentials("SFTP", &mut command);
        check_with(command, &url, &[])
    };
    let (output, report) = run();
    assert!(output.status.success(), "{report:#}");
    let known = config.path().join("known_hosts");
    let recorded = std::fs::read_to_string(&known).expect("the server's key is recorded");
    let port = servers.var("SFTP_PORT");
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{port} ")),
        "{recorded}"
    );

    // Same name, another key: the client's own public key stands in.
    let other: Vec<String> = std::fs::read_to_string(servers.var("SFTP_PUBLIC_KEY"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .map(str::to_owned)
        .collect();
    let forged: String = recorded
        .lines()
        .map(|line| {
            let host = line.split_whitespace().next().unwrap();
            format!("{host} {} {}\n", other[0], other[1])
        })
        .collect();
    std::fs::write(&known, forged).unwrap();
    let (output, report) = run();
    assert!(!output.status.success(), "{report:#}");
    assert_eq!(
        failure(&report).map(|f| f.1),
        Some("tls".into()),
        "{report:#}"
    );
    let mut command = escale(config.path());
    servers.credentials("SFTP", &mut command);
    let text = String::from_utf8_lossy(&command.args(["check", &url]).output().unwrap().stdout)
        .into_owned();
    assert!(text.contains("SHA256:"), "{text}");
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_says_a_missing_folder_is_missing() {
    let servers = Servers::get();
    let url = in_folder(servers.var("WEBDAV_URL"), "no-such-folder");
    let (_, report) = check(&servers, Some("WEBDAV"), &url, &[]);
    assert_eq!(
        failure(&report),
        Some(("login".into(), "folder_missing".into())),
        "{report:#}"
    );
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn a_certificate_file_given_at_init_is_kept_for_syncing() {
    let servers = Servers::get();
    let url = in_folder(servers.var("WEBDAVS_URL"), "relay/ca-kept");
    let data = std::path::Path::new(servers.var("WEBDAVS_DATA")).join("relay/ca-kept");
    // The relay folder exists before init, as a user would have made it.
    let mut mkcol = Command::new("curl");
    mkcol
        .args([
            "-sf",
            "-X",
            "MKCOL",
            "--cacert",
            servers.var("CA_FILE"),
            "-u",
        ])
        .arg(format!("escale-test:{}", servers.var("WEBDAVS_PASSWORD")))
        .arg(format!("{}relay/ca-kept/", servers.var("WEBDAVS_HTTP_URL")));
    escale_e2e::run_ok(&mut mkcol);

    let dir = tempfile::tempdir().unwrap();
    let (config, folder) = (dir.path().join("config"), dir.path().join("folder"));
    let mut init = escale(&config);
    init.args(["init", "kept", "--relay", &url, "--folder"])
        .arg(&folder)
        .args(["--ca-file", servers.var("CA_FILE")])
        .env("ESCALE_PASSPHRASE", "ca file test passphrase");
    servers.credentials("WEBDAVS", &mut init);
    escale_e2e::run_ok(&mut init);
    let settings = std::fs::read_to_string(config.join("config.toml")).unwrap();
    assert!(settings.contains("ca_file"), "{settings}");

    std::fs::write(folder.join("hello.txt"), b"through TLS").unwrap();
    let mut sync = escale(&config);
    sync.arg("sync")
        .env("ESCALE_PASSPHRASE", "ca file test passphrase");
    servers.credentials("WEBDAVS", &mut sync);
    escale_e2e::run_ok(&mut sync);
    assert!(
        std::fs::read_dir(data.join("clients")).unwrap().count() > 0,
        "nothing reached the relay"
    );
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn check_goes_through_the_proxy_of_the_environment_and_names_it() {
    let servers = Servers::get();
    let url = servers.var("WEBDAV_URL");
    let free = escale_e2e::free_port();
    let proxied = |no_proxy: Option<&str>| {
        let config = tempfile::tempdir().unwrap();
        let mut command = escale(config.path());
        command
            .args(["check", url])
            .env("HTTP_PROXY", format!("http://127.0.0.1:{free}"));
        if let Some(list) = no_proxy {
            command.env("NO_PROXY", list);
        }
        servers.credentials("WEBDAV", &mut command);
        command.output().unwrap()
    };
    // A proxy nobody runs: the check says so, naming the setting.
    let output = proxied(None);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("The proxy 127.0.0.1:"), "{text}");
    assert!(text.contains("HTTP_PROXY"), "{text}");
    // Listed in NO_PROXY, the server is reached directly.
    let output = proxied(Some("127.0.0.1"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
