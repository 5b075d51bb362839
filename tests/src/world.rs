//! A relay and several computers syncing through it, each with its own
//! settings folder and synced folder, all in one temporary folder: the
//! setting of the end-to-end tests that drive the real `escale` binary.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{escale, set_up_command};

/// The passphrase of every repository a [`World`] creates.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// One computer: its name, settings folder and synced folder.
#[derive(Debug, Clone)]
pub struct Computer {
    /// Its client name.
    pub name: String,
    /// Its settings folder (`--config-dir`).
    pub config: PathBuf,
    /// Its synced folder.
    pub folder: PathBuf,
}

/// A `file://` relay and the computers of one repository, `shared`.
pub struct World {
    dir: tempfile::TempDir,
    /// The relay folder.
    pub relay: PathBuf,
    /// The computers, in the order they were added.
    pub computers: Vec<Computer>,
}

impl World {
    /// An empty relay, no computer yet.
    pub fn empty() -> World {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let relay = dir.path().join("relay");
        fs::create_dir(&relay).expect("the relay folder");
        World {
            dir,
            relay,
            computers: Vec::new(),
        }
    }

    /// A repository created by the first of `names` and joined by the
    /// others, each with `options` (such as `["--quota", "10MB"]`).
    pub fn new(names: &[&str], options: &[&str]) -> World {
        let mut world = World::empty();
        for name in names {
            world.add(name, options);
        }
        world
    }

    /// Adds a computer: it creates the repository if it is the first,
    /// otherwise joins it. Returns its index.
    pub fn add(&mut self, name: &str, options: &[&str]) -> usize {
        let computer = Computer {
            name: name.to_owned(),
            config: self.dir.path().join(format!("config-{name}")),
            folder: self.dir.path().join(format!("folder-{name}")),
        };
        let verb = if self.computers.is_empty() {
            "init"
        } else {
            "join"
        };
        let output = set_up_command(
            &computer.config,
            verb,
            "shared",
            &computer.folder,
            &self.relay,
        )
        .args(["--client-name", name])
        .args(options)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("escale can be started");
        assert!(
            output.status.success(),
            "{verb} of {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.computers.push(computer);
        self.computers.len() - 1
    }

    /// The temporary folder everything lives in.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `escale` for computer `index`, with the passphrase.
    pub fn escale(&self, index: usize) -> Command {
        let mut command = escale(&self.computers[index].config);
        command.env("ESCALE_PASSPHRASE", PASSPHRASE);
        command
    }

    /// Runs `escale ARGS` on computer `index`.
    pub fn run(&self, index: usize, args: &[&str]) -> Output {
        self.escale(index)
            .args(args)
            .output()
            .expect("escale can be started")
    }

    /// One sync cycle on computer `index`, which must succeed.
    pub fn sync(&self, index: usize) -> Output {
        let output = self.run(index, &["sync"]);
        assert!(
            output.status.success(),
            "sync on {} failed: {}",
            self.computers[index].name,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// A path inside computer `index`'s synced folder.
    pub fn path(&self, index: usize, relative: &str) -> PathBuf {
        self.computers[index].folder.join(relative)
    }

    /// Writes a file (and its folders) in computer `index`'s synced folder.
    pub fn write(&self, index: usize, relative: &str, content: impl AsRef<[u8]>) {
        let path = self.path(index, relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        fs::write(path, content).expect("a file");
    }

    /// The content of a file of computer `index`, `None` if missing.
    pub fn read(&self, index: usize, relative: &str) -> Option<Vec<u8>> {
        fs::read(self.path(index, relative)).ok()
    }

    /// Every file of computer `index`'s synced folder (but the work
    /// folder), by relative path.
    pub fn tree(&self, index: usize) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(&self.computers[index].folder, "", &mut files);
        files
    }

    /// Changes computer `index`'s repository settings in `config.toml`.
    pub fn configure(&self, index: usize, change: impl FnOnce(&mut toml::Table)) {
        let file = self.computers[index].config.join("config.toml");
        let text = fs::read_to_string(&file).expect("config.toml");
        let mut config: toml::Table = text.parse().expect("valid TOML");
        let repository = config
            .get_mut("repository")
            .and_then(|value| value.as_array_mut())
            .and_then(|list| list.first_mut())
            .and_then(|value| value.as_table_mut())
            .expect("one repository");
        change(repository);
        fs::write(&file, toml::to_string(&config).expect("TOML")).expect("config.toml");
    }

    /// Total size of the files on the relay.
    pub fn relay_size(&self) -> u64 {
        size_of(&self.relay)
    }

    /// `escale run` on computer `index`, polling fast so tests are quick.
    pub fn daemon(&self, index: usize) -> Daemon {
        Daemon::start(
            &self.computers[index].config,
            &["--poll-min", "0.5", "--poll-max", "2"],
        )
    }

    /// Waits until `done` holds, failing with `what` after `limit`.
    pub fn wait_until(&self, limit: Duration, what: &str, done: impl FnMut() -> bool) {
        wait_until(limit, what, done);
    }
}

/// Waits until `done` holds, checking every 100 ms, failing with `what`
/// after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefix.is_empty() && name == ".escale" {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let path = entry.path();
        if path.is_dir() {
            collect(&path, &format!("{relative}/"), files);
        } else if let Ok(content) = fs::read(&path) {
            files.insert(relative, content);
        }
    }
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                size_of(&path)
            } else {
                entry.metadata().map_or(0, |meta| meta.len())
            }
        })
        .sum()
}

/// A running `escale run` (or any long-running process), killed when dropped.
pub struct Daemon(Child);

impl Daemon {
    /// Starts `escale run ARGS` with settings folder `config`.
    pub fn start(config: &Path, args: &[&str]) -> Daemon {
        let mut command = escale(config);
        command
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .arg("run")
            .args(args);
        Daemon::spawn(command)
    }

    /// Starts `command`, with no input.
    pub fn spawn(mut command: Command) -> Daemon {
        Daemon(
            command
                .stdin(Stdio::null())
                .spawn()
                .expect("the daemon can be started"),
        )
    }

    /// The process identifier.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Stops it with SIGTERM, waits for it to exit (at most 30 s), and
    /// returns whether it exited cleanly.
    pub fn stop(mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill can be started");
        assert!(sent.success(), "SIGTERM could not be sent");
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("the daemon can be waited for") {
                return status.success();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not stop within 30 s of SIGTERM"
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
