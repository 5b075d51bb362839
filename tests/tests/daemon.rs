//! `escale run`: the background daemon, as a server administrator runs it.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use escale_e2e::world::{Daemon, PASSPHRASE};
use escale_e2e::{escale, run_ok, set_up_command};

fn set_up(config: &Path, verb: &str, name: &str, folder: &Path, relay: &Path) {
    run_ok(set_up_command(config, verb, name, folder, relay).env("ESCALE_PASSPHRASE", PASSPHRASE));
}

/// `escale run` with fast polling, for tests about something else than
/// latency.
fn start(config: &Path) -> Daemon {
    start_with(config, &["--poll-min", "0.5", "--poll-max", "2"], None)
}

/// `escale run` with the given options; its standard error goes to `log`
/// when given (else to the test's output).
fn start_with(config: &Path, options: &[&str], log: Option<&Path>) -> Daemon {
    let mut command = escale(config);
    command
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .arg("run")
        .args(options);
    if let Some(log) = log {
        command.stderr(fs::File::create(log).unwrap());
    }
    Daemon::spawn(command)
}

/// SIGTERM; how long the daemon took to exit and whether it exited cleanly.
fn terminate(daemon: Daemon) -> (Duration, bool) {
    let start = Instant::now();
    let clean = daemon.stop();
    (start.elapsed(), clean)
}

/// The CPU time (user and system) process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields are counted after the command name, which is in parentheses
    // and may hold spaces: utime and stime are the 14th and 15th fields,
    // the 12th and 13th after the name.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// The kernel's clock ticks per second, the unit of CPU times in /proc.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Waits until `path` holds exactly `content`; returns how long it took.
/// The file is read only once its size matches, so that the measurement
/// disturbs the receiving side as little as possible (opening a file is a
/// file-system event).
fn wait_for_content(path: &Path, content: &[u8], timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let size_matches = fs::metadata(path).is_ok_and(|meta| meta.len() == content.len() as u64);
        if size_matches && fs::read(path).is_ok_and(|found| found == content) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{} did not arrive with the expected content within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The middle of `durations` (the mean of the two middle ones for an even
/// count).
fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2
    } else {
        sorted[middle]
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

    let a = start(&configs[0]);
    let b = start(&configs[1]);
    std::thread::sleep(Duration::from_secs(1));
    fs::write(folders[0].join("saved.txt"), b"saved on A").unwrap();
    let latency = wait_for(&folders[1].join("saved.txt"), Duration::from_secs(20));
    println!("a saved file arrived in {latency:?}");
    assert_eq!(
        fs::read(folders[1].join("saved.txt")).unwrap(),
        b"saved on A"
    );

    for daemon in [a, b] {
        let (took, clean) = terminate(daemon);
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

/// Pauses between two saves in the latency tests, as a person working
/// would leave them; uneven, so that saves fall at every point of the
/// other side's poll interval rather than always at the same one.
const PAUSES_MS: [u64; 10] = [700, 2300, 400, 1500, 3100, 900, 1900, 600, 2700, 1200];

/// Saves `count` changes in `from` (new files, and every third time an
/// edit of the previous one) and returns how long each took to arrive
/// with the right content in `to`.
fn measure_latencies(from: &Path, to: &Path, label: &str, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut name = String::new();
    for i in 0..count {
        std::thread::sleep(Duration::from_millis(PAUSES_MS[i % PAUSES_MS.len()]));
        if i % 3 != 2 {
            name = format!("{label}-{i}.txt");
        }
        let content = format!("change {i} saved in {label}\n").repeat(100 + 37 * i);
        fs::write(from.join(&name), &content).unwrap();
        let latency =
            wait_for_content(&to.join(&name), content.as_bytes(), Duration::from_secs(60));
        eprintln!("{label}: change {i} ({name}) arrived in {latency:.2?}");
        latencies.push(latency);
    }
    latencies
}

/// The acceptance of the daemon: while people work, a saved change shows
/// up on the other computer within a few seconds (the default settings,
/// as users run it), and a daemon left alone costs almost no CPU.
#[test]
fn changes_arrive_within_seconds_and_an_idle_daemon_costs_almost_no_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (config_a, config_b) = (dir.path().join("config-a"), dir.path().join("config-b"));
    set_up(&config_a, "init", "shared", &a, &relay);
    set_up(&config_b, "join", "shared", &b, &relay);

    let daemon_a = start_with(&config_a, &[], None);
    let daemon_b = start_with(&config_b, &[], None);
    let latencies = measure_latencies(&a, &b, "latency", 10);
    let median = median(&latencies);
    let slowest = latencies.iter().max().unwrap();
    eprintln!("median latency {median:.2?}, slowest {slowest:.2?}");
    assert!(
        median < Duration::from_secs(5),
        "the median latency was {median:?}"
    );

    // A quiet minute: right after work stops, polls are still frequent for
    // a while, then slow down; all of it must cost next to nothing. (A
    // daemon whose own folder scan woke it up again, cycling endlessly,
    // used a full second a minute here, on a nearly empty folder.)
    let cpu_before = [cpu_time(daemon_a.pid()), cpu_time(daemon_b.pid())];
    std::thread::sleep(Duration::from_secs(60));
    let cpu_after = [cpu_time(daemon_a.pid()), cpu_time(daemon_b.pid())];
    for (side, (before, after)) in ["A", "B"].iter().zip(cpu_before.iter().zip(&cpu_after)) {
        let used = *after - *before;
        eprintln!("daemon {side} used {used:.2?} of CPU time over a quiet minute");
        assert!(
            used < Duration::from_millis(500),
            "daemon {side} used {used:?} of CPU time while nothing happened"
        );
    }

    for daemon in [daemon_a, daemon_b] {
        let (_, clean) = terminate(daemon);
        assert!(clean, "the daemon exited with a failure");
    }
}

/// The state `escale status --json` reports for repository `name`:
/// `(state, error code, error message)`.
fn status_of(config: &Path, name: &str) -> (String, Option<String>, Option<String>) {
    let output = run_ok(
        escale(config)
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .args(["status", "--json"]),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let repo = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|repo| repo["name"] == name)
        .unwrap_or_else(|| panic!("status does not list {name}"));
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    (
        text(&repo["state"]).unwrap(),
        text(&repo["error"]["code"]),
        text(&repo["error"]["message"]),
    )
}

/// One daemon syncs two repositories; the relay of one disappears (an
/// unmounted share) while the daemons run. The other keeps syncing as
/// fast as ever, `status` reports the failure, and once the share is
/// back the failed repository recovers without a restart.
#[test]
fn a_broken_relay_does_not_hold_up_the_other_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (good_relay, bad_relay) = (path("good-relay"), path("bad-relay"));
    fs::create_dir(&good_relay).unwrap();
    fs::create_dir(&bad_relay).unwrap();
    let (config_a, config_b) = (path("config-a"), path("config-b"));
    set_up(&config_a, "init", "good", &path("a-good"), &good_relay);
    set_up(&config_a, "init", "bad", &path("a-bad"), &bad_relay);
    set_up(&config_b, "join", "good", &path("b-good"), &good_relay);
    set_up(&config_b, "join", "bad", &path("b-bad"), &bad_relay);

    // Default polling, as in the latency test; failures back off to at
    // most 10 s so that the recovery below is quick to observe.
    let options = ["--poll-max", "10"];
    let log_a = path("daemon-a.log");
    let a = start_with(&config_a, &options, Some(&log_a));
    let b = start_with(&config_b, &options, None);
    fs::write(path("a-bad/before.txt"), b"before the outage").unwrap();
    wait_for_content(
        &path("b-bad/before.txt"),
        b"before the outage",
        Duration::from_secs(30),
    );

    // The share goes away under the running daemons.
    let away = path("bad-relay-unmounted");
    fs::rename(&bad_relay, &away).unwrap();
    let outage = Instant::now();
    fs::write(path("a-bad/during.txt"), b"saved during the outage").unwrap();
    let latencies = measure_latencies(&path("a-good"), &path("b-good"), "good", 6);
    let median = median(&latencies);
    eprintln!("median latency of the good repository during the outage: {median:.2?}");
    assert!(
        median < Duration::from_secs(5),
        "the median latency was {median:?}"
    );

    let (state, code, message) = status_of(&config_a, "bad");
    eprintln!("status of the bad repository: {state} {code:?} {message:?}");
    assert_eq!(state, "error");
    assert_eq!(code.as_deref(), Some("relay_not_found"));
    assert!(message.unwrap().contains("does not exist"));
    assert_eq!(status_of(&config_a, "good").0, "ok");
    let log = fs::read_to_string(&log_a).unwrap();
    let failures = log.lines().filter(|l| l.starts_with("error: bad:")).count();
    eprintln!(
        "daemon A reported {failures} failed cycles of the bad repository in {:.0?}",
        outage.elapsed()
    );
    assert!(failures >= 1, "the failure was not reported:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("error: good:")),
        "the good repository failed:\n{log}"
    );

    // The share comes back: what was saved during the outage and after it
    // flows again, without restarting anything.
    fs::rename(&away, &bad_relay).unwrap();
    let back = Instant::now();
    fs::write(path("a-bad/after.txt"), b"saved after the outage").unwrap();
    wait_for_content(
        &path("b-bad/after.txt"),
        b"saved after the outage",
        Duration::from_secs(60),
    );
    wait_for_content(
        &path("b-bad/during.txt"),
        b"saved during the outage",
        Duration::from_secs(10),
    );
    eprintln!("the bad repository recovered in {:.2?}", back.elapsed());
    assert_eq!(status_of(&config_a, "bad").0, "ok");

    for daemon in [a, b] {
        let (_, clean) = terminate(daemon);
        assert!(clean, "the daemon exited with a failure");
    }
}
