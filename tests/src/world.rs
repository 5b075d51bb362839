//! A relay and several computers syncing through it, each with its own
//! settings folder and synced folder, all in one temporary folder: the
//! setting of the end-to-end tests that drive the real `escale` binary.
//!
//! The relay is a `file://` folder in that temporary folder unless the
//! test brings another [`Relay`], such as a folder on one of the real
//! servers of `scripts/relay-servers.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::relay::Relay;
use crate::{escale, set_up_command_at};

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

/// A relay and the computers of one repository, `shared`.
pub struct World {
    dir: tempfile::TempDir,
    /// The relay.
    pub relay: Relay,
    /// The computers, in the order they were added.
    pub computers: Vec<Computer>,
}

impl World {
    /// An empty `file://` relay, no computer yet.
    pub fn empty() -> World {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let folder = dir.path().join("relay");
        fs::create_dir(&folder).expect("the relay folder");
        World {
            relay: Relay::local(&folder),
            dir,
            computers: Vec::new(),
        }
    }

    /// No computer yet, syncing through `relay` once they are added.
    pub fn empty_on(relay: Relay) -> World {
        World {
            dir: tempfile::tempdir().expect("a temporary folder"),
            relay,
            computers: Vec::new(),
        }
    }

    /// [`World::new`] on `relay` instead of a `file://` relay.
    pub fn new_on(relay: Relay, names: &[&str], options: &[&str]) -> World {
        let mut world = World::empty_on(relay);
        for name in names {
            world.add(name, options);
        }
        world
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
        let mut command = set_up_command_at(
            &computer.config,
            verb,
            "shared",
            &computer.folder,
            self.relay.url(),
        );
        self.relay.apply(&mut command);
        let output = command
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

    /// `escale` for computer `index`, with the passphrase and the relay's
    /// credentials.
    pub fn escale(&self, index: usize) -> Command {
        let mut command = escale(&self.computers[index].config);
        command.env("ESCALE_PASSPHRASE", PASSPHRASE);
        self.relay.apply(&mut command);
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

    /// One sync cycle on computer `index` (`escale sync --json`): its
    /// report, or why it failed: the error, or the problems of a cycle
    /// that synced everything else.
    pub fn try_sync(&self, index: usize) -> Result<serde_json::Value, String> {
        let output = self.run(index, &["sync", "--json"]);
        let printed: Option<serde_json::Value> = serde_json::from_slice(&output.stdout).ok();
        let report = printed.map(|all| all["repositories"][0].clone());
        match report {
            Some(report) if output.status.success() => Ok(report),
            Some(report) if !report["error"].is_null() => Err(report["error"].to_string()),
            Some(report) => Err(report["report"]["problems"].to_string()),
            None => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    /// Files left in computer `index`'s work folder by unfinished
    /// transfers (temporary downloads, chunks staged for a file that has
    /// not arrived), by path.
    pub fn temporaries(&self, index: usize) -> Vec<PathBuf> {
        let work = self.computers[index].folder.join(".escale");
        let mut found = Vec::new();
        for dir in ["tmp", "staging"] {
            let mut files = BTreeMap::new();
            collect(&work.join(dir), "", &mut files);
            found.extend(files.into_keys().map(|name| work.join(dir).join(name)));
        }
        found
    }

    /// Syncs every computer in turn, `rounds` times; every sync must
    /// succeed.
    pub fn sync_all(&self, rounds: usize) {
        for _ in 0..rounds {
            for index in 0..self.computers.len() {
                self.sync(index);
            }
        }
    }

    /// Checks that every computer has the same files as the first, with
    /// the same contents and modification times. A difference is named by
    /// path and size, never printed whole: the files may be megabytes.
    pub fn assert_same_trees(&self) {
        let first = self.snapshot(0);
        for index in 1..self.computers.len() {
            let other = self.snapshot(index);
            let describe = |files: &BTreeMap<String, (Vec<u8>, SystemTime)>| {
                files
                    .iter()
                    .map(|(name, (content, _))| format!("{name} ({} bytes)", content.len()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                describe(&first),
                describe(&other),
                "{} and {} have different files",
                self.computers[0].name,
                self.computers[index].name
            );
            for (name, entry) in &first {
                assert!(
                    other[name] == *entry,
                    "{name} differs between {} and {} (content or time)",
                    self.computers[0].name,
                    self.computers[index].name
                );
            }
        }
    }

    /// Content and modification time of every file of computer `index`.
    fn snapshot(&self, index: usize) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        let folder = &self.computers[index].folder;
        self.tree(index)
            .into_iter()
            .map(|(name, content)| {
                let modified = fs::metadata(folder.join(&name))
                    .and_then(|meta| meta.modified())
                    .expect("a file just read has a time");
                (name, (content, modified))
            })
            .collect()
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
        self.relay.size()
    }

    /// `escale run` on computer `index`, polling fast so tests are quick.
    pub fn daemon(&self, index: usize) -> Daemon {
        let mut command = self.escale(index);
        command.args(["run", "--poll-min", "0.5", "--poll-max", "2"]);
        Daemon::spawn(command)
    }

    /// Waits until `done` holds, failing with `what` after `limit`.
    pub fn wait_until(&self, limit: Duration, what: &str, done: impl FnMut() -> bool) {
        wait_until(limit, what, done);
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift): content that neither
/// compresses nor repeats, the same at every run.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
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
