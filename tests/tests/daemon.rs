//! `escale run`: the background daemon, as a server administrator runs it.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use escale_e2e::{escale, set_up_command};

const PASSPHRASE: &str = "daemon test passphrase";

fn set_up(config: &Path, verb: &str, name: &str, folder: &Path, relay: &Path) {
    let output = set_up_command(config, verb, name, folder, relay)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running `escale run`, killed if the test ends early.
struct Daemon(Child);

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let child = escale(config)
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .args(["run", "--poll-min", "0.5", "--poll-max", "2"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    /// SIGTERM, then the time it took to exit and whether it exited cleanly.
    fn terminate(mut self) -> (Duration, bool) {
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return (start.elapsed(), status.success());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, timeout: Duration) -> Duration {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < timeout,
            "{} did not arrive within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn a_saved_file_arrives_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let folders: Vec<PathBuf> = ["a", "b"].iter().map(|n| dir.path().join(n)).collect();
    let configs: Vec<PathBuf> = ["config-a", "config-b"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    set_up(&configs[0], "init", "shared", &folders[0], &relay);
    set_up(&configs[1], "join", "shared", &folders[1], &relay);

    let a = Daemon::start(&configs[0]);
    let b = Daemon::start(&configs[1]);
    std::thread::sleep(Duration::from_secs(1));
    fs::write(folders[0].join("saved.txt"), b"saved on A").unwrap();
    let latency = wait_for(&folders[1].join("saved.txt"), Duration::from_secs(20));
    println!("a saved file arrived in {latency:?}");
    assert_eq!(
        fs::read(folders[1].join("saved.txt")).unwrap(),
        b"saved on A"
    );

    for daemon in [a, b] {
        let (took, clean) = daemon.terminate();
        assert!(clean, "the daemon exited with a failure");
        assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    }
    for folder in &folders {
        assert!(
            !folder.join(".escale/tmp").exists(),
            "a temporary folder was left"
        );
    }
}

#[test]
fn a_broken_relay_does_not_hold_up_the_other_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let good_relay = dir.path().join("good-relay");
    let bad_relay = dir.path().join("bad-relay");
    fs::create_dir(&good_relay).unwrap();
    fs::create_dir(&bad_relay).unwrap();
    let config_a = dir.path().join("config-a");
    let config_b = dir.path().join("config-b");
    set_up(
        &config_a,
        "init",
        "good",
        &dir.path().join("a-good"),
        &good_relay,
    );
    set_up(
        &config_a,
        "init",
        "bad",
        &dir.path().join("a-bad"),
        &bad_relay,
    );
    set_up(
        &config_b,
        "join",
        "good",
        &dir.path().join("b-good"),
        &good_relay,
    );
    // The second relay disappears, as an unmounted share would.
    fs::remove_dir_all(&bad_relay).unwrap();

    let a = Daemon::start(&config_a);
    let b = Daemon::start(&config_b);
    fs::write(dir.path().join("a-good/report.txt"), b"still flowing").unwrap();
    wait_for(
        &dir.path().join("b-good/report.txt"),
        Duration::from_secs(20),
    );
    let (_, clean_a) = a.terminate();
    let (_, clean_b) = b.terminate();
    assert!(clean_a && clean_b);
}
