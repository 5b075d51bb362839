//! The mass-deletion guard, end to end: an unmounted drive must not wipe
//! the other computers. Real `escale` binaries, one `file://` relay.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use escale_e2e::world::Daemon;
use escale_e2e::{escale, set_up_command};
use serde_json::Value;

const PASSPHRASE: &str = "guard test passphrase";

/// How many files each test starts with.
const FILES: usize = 30;

/// A relay and computers syncing the repository `shared` through it.
struct World {
    dir: tempfile::TempDir,
    relay: PathBuf,
    /// Each computer's settings folder and synced folder.
    computers: Vec<(PathBuf, PathBuf)>,
}

impl World {
    /// `count` computers, the first creating the repository, with
    /// [`FILES`] files in the first folder, synced everywhere.
    fn with_files(count: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        fs::create_dir(&relay).unwrap();
        let mut world = World {
            dir,
            relay,
            computers: Vec::new(),
        };
        for index in 0..count {
            let config = world.dir.path().join(format!("config-{index}"));
            let folder = world.dir.path().join(format!("folder-{index}"));
            let verb = if index == 0 { "init" } else { "join" };
            let output = set_up_command(&config, verb, "shared", &folder, &world.relay)
                .args(["--client-name", &format!("computer-{index}")])
                .env("ESCALE_PASSPHRASE", PASSPHRASE)
                .output()
                .unwrap();
            assert!(output.status.success(), "{verb}: {}", text(&output.stderr));
            world.computers.push((config, folder));
        }
        fs::create_dir(world.folder(0).join("Reports")).unwrap();
        for number in 0..FILES {
            let name = if number % 2 == 0 {
                format!("Reports/report-{number:02}.txt")
            } else {
                format!("note-{number:02}.txt")
            };
            fs::write(world.folder(0).join(name), format!("file {number}")).unwrap();
        }
        for index in 0..count {
            world.sync_ok(index);
        }
        for index in 0..count {
            assert_eq!(files(world.folder(index)).len(), FILES);
        }
        world
    }

    /// The settings folder of computer `index`.
    fn config(&self, index: usize) -> &Path {
        &self.computers[index].0
    }

    /// The synced folder of computer `index`.
    fn folder(&self, index: usize) -> &Path {
        &self.computers[index].1
    }

    /// `escale ARGS` on computer `index`, with the passphrase.
    fn run(&self, index: usize, args: &[&str]) -> Output {
        escale(self.config(index))
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .args(args)
            .output()
            .unwrap()
    }

    /// `escale sync --json` of computer `index`: its exit status and the
    /// repository's entry.
    fn sync(&self, index: usize) -> (bool, Value) {
        let output = self.run(index, &["sync", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("no JSON from sync: {}", text(&output.stderr)));
        (output.status.success(), report["repositories"][0].clone())
    }

    /// [`World::sync`], which must succeed.
    fn sync_ok(&self, index: usize) -> Value {
        let (success, report) = self.sync(index);
        assert!(success, "sync of computer {index} failed: {report}");
        report
    }

    /// The repository's entry in `escale status --json` of computer `index`.
    fn status(&self, index: usize) -> Value {
        let output = self.run(index, &["status", "--json"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        status["repositories"][0].clone()
    }

    /// Waits until `done` holds, for at most a minute.
    fn wait_until(&self, what: &str, done: impl FnMut() -> bool) {
        escale_e2e::world::wait_until(Duration::from_secs(60), what, done);
    }
}

/// Output bytes as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The files under `root`, the work folder excluded, as relative paths.
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path == root.join(".escale") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Empties `folder` but for `keep`, top-level files left untouched, the
/// work folder going too, as a drive that is no longer mounted would;
/// returns how many files went.
fn empty_but(folder: &Path, keep: &[&str]) -> usize {
    let before = files(folder).len();
    for entry in fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if keep.iter().any(|name| path == folder.join(name)) {
            continue;
        }
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    before - keep.len()
}

#[test]
fn an_emptied_folder_pauses_instead_of_deleting_everywhere_until_confirmed() {
    let world = World::with_files(3);
    let gone = empty_but(
        world.folder(0),
        &["note-01.txt", "note-03.txt", "note-05.txt"],
    );
    assert_eq!(gone, 27);
    // Meanwhile B saves a new file: a paused A must not receive it either.
    fs::write(world.folder(1).join("from-b.txt"), b"new on B").unwrap();
    world.sync_ok(1);

    // A pauses: a failed sync with a typed error saying what happened.
    let output = world.run(0, &["sync"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    for expected in [
        "error: shared: ",
        "27 of its 30 synced files are missing",
        "disconnected drive",
        "escale confirm-deletions shared",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    let (success, report) = world.sync(0);
    assert!(!success);
    assert_eq!(report["error"]["code"], "mass_deletion", "{report}");
    assert!(
        !world.folder(0).join("from-b.txt").exists(),
        "a paused repository receives nothing"
    );

    // `status`, another process, shows the pause and why.
    let status = world.status(0);
    assert_eq!(status["state"], "paused", "{status}");
    assert_eq!(status["error"]["code"], "mass_deletion", "{status}");
    assert!(
        status["error"]["message"]
            .as_str()
            .unwrap()
            .contains("27 of its 30"),
        "{status}"
    );
    let human = text(&world.run(0, &["status"]).stdout);
    assert!(human.contains("shared (paused)"), "{human}");

    // The other computers lost nothing.
    for index in 1..3 {
        world.sync_ok(index);
        assert_eq!(
            files(world.folder(index)).len(),
            FILES + 1,
            "computer {index}"
        );
    }

    // The deletions were meant: confirmed, they reach everyone.
    let output = world.run(0, &["confirm-deletions", "shared"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("27"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(world.status(0)["state"], "ok");
    let report = world.sync_ok(0);
    assert!(
        report["report"]["changes_sent"].as_u64().unwrap() >= 27,
        "{report}"
    );
    assert!(
        world.folder(0).join("from-b.txt").exists(),
        "receiving resumed"
    );
    let expected = ["from-b.txt", "note-01.txt", "note-03.txt", "note-05.txt"];
    for index in 1..3 {
        world.sync_ok(index);
        assert_eq!(files(world.folder(index)), expected, "computer {index}");
        // Deleted there, but kept in the versions folder.
        let versions = world.folder(index).join(".escale/versions");
        assert_eq!(files(&versions).len(), 27, "computer {index}");
    }

    // The confirmation is used up.
    let output = world.run(0, &["confirm-deletions", "shared"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not paused"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_few_deletions_are_sent_without_asking() {
    let world = World::with_files(2);
    for name in ["note-01.txt", "note-03.txt", "Reports/report-00.txt"] {
        fs::remove_file(world.folder(0).join(name)).unwrap();
    }
    let report = world.sync_ok(0);
    assert_eq!(report["report"]["changes_sent"], 3, "{report}");
    assert_eq!(world.status(0)["state"], "ok");
    world.sync_ok(1);
    let left = files(world.folder(1));
    assert_eq!(left.len(), FILES - 3);
    assert!(!left.contains(&"note-01.txt".to_owned()));
}

/// `escale run` with fast polls, its standard error to `stderr`.
fn start_daemon(config: &Path, stderr: &Path) -> Daemon {
    let mut command = escale(config);
    command
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .args(["run", "--poll-min", "0.2", "--poll-max", "1"])
        .stderr(fs::File::create(stderr).unwrap());
    Daemon::spawn(command)
}

#[test]
fn the_daemon_pauses_and_resumes_once_the_deletions_are_confirmed() {
    let world = World::with_files(2);
    empty_but(world.folder(0), &["note-01.txt"]);
    let stderr = world.dir.path().join("daemon-stderr.txt");
    let daemon = start_daemon(world.config(0), &stderr);

    world.wait_until("the daemon pauses", || world.status(0)["state"] == "paused");
    world.sync_ok(1);
    assert_eq!(files(world.folder(1)).len(), FILES, "nothing deleted on B");

    let output = world.run(0, &["confirm-deletions", "shared"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The running daemon picks the confirmation up by itself.
    world.wait_until("the deletions are sent", || {
        let status = world.status(0);
        status["state"] == "ok" && status["pending_files"] == 0
    });
    world.wait_until("B has the deletions", || {
        world.sync_ok(1);
        files(world.folder(1)) == ["note-01.txt"]
    });
    assert!(daemon.stop(), "the daemon exited with a failure");

    let printed = fs::read_to_string(&stderr).unwrap();
    assert!(
        printed.contains("error: shared: \"shared\" is paused: 29 of its 30"),
        "{printed}"
    );
    let log = fs::read_to_string(world.config(0).join("logs/escale.log")).unwrap();
    assert!(log.contains("is paused: 29 of its 30"), "{log}");
}
