//! Crash safety: three computers sync through one relay under `escale run`
//! while files are created, edited, renamed and deleted in all three
//! folders, and every few seconds one daemon is killed (SIGKILL, as a power
//! cut or the OOM killer would) and started again. Once it stops, the
//! three folders must settle to the same tree holding only contents that
//! were actually written, whole: never a torn or mixed file. No temporary
//! file may stay behind, on the computers or on the relay.
//!
//! Every content written is a function of a unique identifier and a size
//! (a header line naming both, then bytes drawn from the identifier), so
//! any file can be checked against what was written without keeping the
//! contents. The run is driven by a seeded generator: `ESCALE_CHURN_SEED`
//! replays the same sequence of operations (the timing, and so what the
//! daemons see, still varies); `ESCALE_CHURN_KEEP=1` keeps the folders,
//! settings and relay afterwards. The daemons' output is kept in
//! `target/e2e-artifacts/churn/`.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use escale_e2e::{artifacts_dir, escale, set_up_command};

const PASSPHRASE: &str = "churn test passphrase";

/// How long files change and daemons get killed.
const CHURN: Duration = Duration::from_secs(120);

/// How long the folders must stay identical to count as settled.
const STABLE_FOR: Duration = Duration::from_secs(10);

/// How long settling may take at most, on a slow, loaded machine.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The folders files are created in and moved between, `""` being the top.
const FOLDERS: [&str; 5] = ["", "docs", "docs/2026", "media/raw", "media/raw/deep/er"];

/// The file names' endings; conflict copies keep them after the suffix.
const ENDINGS: [&str; 4] = [".txt", ".bin", " été.odt", ""];

/// A tiny seeded generator (xorshift64*): the test needs reproducible
/// choices, not good randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Xorshift never leaves zero.
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    fn within(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn millis(&mut self, range: std::ops::Range<u64>) -> Duration {
        Duration::from_millis(self.within(range))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.next() % items.len() as u64).unwrap()]
    }
}

/// The header line of content `id`: any size below its length is 0.
fn header(id: u64, size: usize) -> String {
    format!("escale churn content {id:016x} size {size:08}\n")
}

/// The smallest non-empty content.
const HEADER_LEN: usize = 52;

/// The content written with identifier `id`, `size` bytes long (0, or at
/// least [`HEADER_LEN`]).
fn content(id: u64, size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    let mut data = header(id, size).into_bytes();
    assert_eq!(data.len(), HEADER_LEN);
    let mut rng = Rng::new(id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    while data.len() < size {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(size);
    data
}

/// What a file holds: `Ok(Some(id))` for content `id` exactly as written,
/// `Ok(None)` for an empty file, `Err` with the reason for anything else.
fn identify(data: &[u8], written: &HashMap<u64, usize>) -> Result<Option<u64>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    let line = data
        .get(..HEADER_LEN)
        .and_then(|line| std::str::from_utf8(line).ok())
        .ok_or_else(|| format!("{} bytes without a header line", data.len()))?;
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    let (id, size) = match fields[..] {
        ["escale", "churn", "content", id, "size", size] => (
            u64::from_str_radix(id, 16).map_err(|_| format!("bad header {line:?}"))?,
            size.parse::<usize>()
                .map_err(|_| format!("bad header {line:?}"))?,
        ),
        _ => return Err(format!("bad header {line:?}")),
    };
    if written.get(&id) != Some(&size) {
        return Err(format!("content {id:x} of {size} bytes was never written"));
    }
    if data.len() != size {
        return Err(format!(
            "content {id:x} is {} bytes long instead of {size}",
            data.len()
        ));
    }
    let expected = content(id, size);
    match data.iter().zip(&expected).position(|(a, b)| a != b) {
        Some(at) => Err(format!(
            "content {id:x} of {size} bytes differs from byte {at} on"
        )),
        None => Ok(Some(id)),
    }
}

/// One path of a synced folder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    /// A file with a content that was written (`None`: empty).
    File(Option<u64>),
    /// A file holding something never written, and why.
    Damaged(String),
}

/// Every path below `root` (relative, `/`-separated), skipping the work
/// folder `.escale` at the top; with `written`, files are read and
/// identified, otherwise only their size is noted (as `File(Some(size))`).
fn tree(root: &Path, written: Option<&HashMap<u64, usize>>) -> BTreeMap<String, Entry> {
    fn walk(
        dir: &Path,
        prefix: &str,
        written: Option<&HashMap<u64, usize>>,
        out: &mut BTreeMap<String, Entry>,
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefix.is_empty() && name == ".escale" {
                continue;
            }
            let path = format!("{prefix}{name}");
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                walk(&entry.path(), &format!("{path}/"), written, out);
                out.insert(path, Entry::Dir);
            } else if let Some(written) = written {
                let found = match fs::read(entry.path()) {
                    Ok(data) => match identify(&data, written) {
                        Ok(id) => Entry::File(id),
                        Err(why) => Entry::Damaged(why),
                    },
                    Err(error) => Entry::Damaged(format!("unreadable: {error}")),
                };
                out.insert(path, found);
            } else {
                out.insert(path, Entry::File(Some(meta.len())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", written, &mut out);
    out
}

/// The files of `root` the driver may act on: everything but the work
/// folder and its own temporaries.
fn files(root: &Path) -> Vec<String> {
    tree(root, None)
        .into_iter()
        .filter(|(path, entry)| *entry != Entry::Dir && !path.ends_with(".tmp"))
        .map(|(path, _)| path)
        .collect()
}

/// Every file below `root` whose name starts with `prefix`.
fn find_named(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                dirs.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Total size of the files below `root`.
fn size_of(root: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => dirs.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Where the test's folders, settings and relay live.
enum Root {
    /// Removed at the end.
    Temporary(tempfile::TempDir),
    /// Kept for a person to look into (`ESCALE_CHURN_KEEP`).
    Kept(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temporary(dir) => dir.path(),
            Root::Kept(path) => path,
        }
    }
}

/// One computer: its settings, its folder, and its daemon when running.
struct Client {
    name: &'static str,
    config: PathBuf,
    folder: PathBuf,
    /// Where the daemon's standard error goes, across restarts.
    log: PathBuf,
    daemon: Option<Child>,
}

impl Client {
    fn start(&mut self) {
        assert!(self.daemon.is_none());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = escale(&self.config)
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .args(["run", "--poll-min", "0.5", "--poll-max", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
    }

    /// SIGKILL: no chance to stop at a safe point or clean up.
    fn kill(&mut self) {
        let mut child = self.daemon.take().unwrap();
        // `Child::kill` is SIGKILL on Unix.
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The exit status if the daemon stopped by itself.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.daemon.as_mut()?.try_wait().unwrap()?;
        self.daemon = None;
        Some(status)
    }

    /// SIGTERM; whether it then stopped cleanly.
    fn terminate(&mut self) -> bool {
        let mut child = self.daemon.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn note(&self, text: &str) {
        let mut log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .unwrap();
        writeln!(log, "---- test: {text}").unwrap();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the driver did.
#[derive(Debug, Default)]
struct Tally {
    /// Every content written: identifier and size.
    written: HashMap<u64, usize>,
    bytes: u64,
    creates: u64,
    edits_in_place: u64,
    edits_replacing: u64,
    renames: u64,
    deletes: u64,
    /// Operations whose file vanished or changed under the driver (a
    /// daemon got there first).
    raced: u64,
}

/// Writes a new content of a random size at `path` (in place, or through
/// a temporary renamed over it, as editors save) and records it.
fn write_new(rng: &mut Rng, tally: &mut Tally, path: &Path, in_place: bool) -> std::io::Result<()> {
    let size = match rng.within(0..100) {
        0..5 => 0,
        5..60 => rng.within(HEADER_LEN as u64..4096),
        60..90 => rng.within(4096..256 * 1024),
        _ => rng.within(256 * 1024..3 * 1024 * 1024),
    };
    let size = usize::try_from(size).unwrap();
    let id = rng.next();
    let data = content(id, size);
    // Recorded first: a daemon may pick it up before the write returns.
    tally.written.insert(id, size);
    fs::create_dir_all(path.parent().unwrap())?;
    if in_place {
        fs::write(path, &data)?;
    } else {
        // `*.tmp` files are never synced.
        let temp = path.with_file_name(format!(
            "{}.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&temp, &data)?;
        if let Err(error) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
    }
    tally.bytes += data.len() as u64;
    Ok(())
}

/// One random operation in one of `folders`.
fn operate(rng: &mut Rng, tally: &mut Tally, folders: &[PathBuf], counter: &mut u64) {
    let folder = rng.pick(folders);
    let existing = files(folder);
    let choice = if existing.len() < 15 {
        0
    } else if existing.len() > 45 {
        rng.within(60..100)
    } else {
        rng.within(0..100)
    };
    let mut new_path = |rng: &mut Rng| {
        *counter += 1;
        let dir = rng.pick(&FOLDERS);
        let name = format!("file {counter}{}", rng.pick(&ENDINGS));
        if dir.is_empty() {
            folder.join(name)
        } else {
            folder.join(dir).join(name)
        }
    };
    let outcome = if choice < 30 || existing.is_empty() {
        let path = new_path(rng);
        tally.creates += 1;
        let in_place = rng.chance(50);
        write_new(rng, tally, &path, in_place)
    } else {
        let target = folder.join(rng.pick(&existing));
        match choice {
            30..65 => {
                let in_place = rng.chance(50);
                if in_place {
                    tally.edits_in_place += 1;
                } else {
                    tally.edits_replacing += 1;
                }
                write_new(rng, tally, &target, in_place)
            }
            65..80 => {
                tally.renames += 1;
                let to = new_path(rng);
                fs::create_dir_all(to.parent().unwrap()).and_then(|()| fs::rename(&target, &to))
            }
            _ => {
                tally.deletes += 1;
                fs::remove_file(&target)
            }
        }
    };
    if outcome.is_err() {
        tally.raced += 1;
    }
}

/// Describes how the trees differ, for a failure message.
fn differences(names: &[&str], trees: &[BTreeMap<String, Entry>]) -> String {
    let paths: BTreeSet<&String> = trees.iter().flat_map(BTreeMap::keys).collect();
    let mut out = String::new();
    for path in paths {
        let entries: Vec<Option<&Entry>> = trees.iter().map(|tree| tree.get(path)).collect();
        if entries.windows(2).any(|pair| pair[0] != pair[1]) {
            out += &format!("  {path}:");
            for (name, entry) in names.iter().zip(&entries) {
                out += &format!(" {name}={entry:?}");
            }
            out += "\n";
        }
    }
    out
}

/// The checks `identify` relies on: the test must notice a file that is
/// cut short, spliced from two contents, or changed in one byte.
#[test]
fn the_churn_check_notices_torn_and_mixed_files() {
    let mut written = HashMap::new();
    written.insert(1, 3_000_000);
    written.insert(2, 3_000_000);
    written.insert(3, 100);
    let one = content(1, 3_000_000);
    let two = content(2, 3_000_000);
    assert_eq!(identify(&one, &written), Ok(Some(1)));
    assert_eq!(identify(&content(3, 100), &written), Ok(Some(3)));
    assert_eq!(identify(b"", &written), Ok(None));
    assert!(identify(&one[..1_048_576], &written).is_err(), "cut short");
    let mut spliced = one[..1_048_576].to_vec();
    spliced.extend_from_slice(&two[1_048_576..]);
    assert!(identify(&spliced, &written).is_err(), "spliced");
    let mut flipped = one.clone();
    flipped[2_000_000] ^= 1;
    assert!(identify(&flipped, &written).is_err(), "one byte changed");
    let mut zeroed = one;
    zeroed[2_000_000..].fill(0);
    assert!(identify(&zeroed, &written).is_err(), "zeros at the end");
    assert!(
        identify(&content(4, 100), &written).is_err(),
        "never written"
    );
    assert!(identify(b"hello", &written).is_err(), "not a content");
}

#[test]
fn killed_daemons_never_tear_files_and_the_folders_settle_identical() {
    let seed = std::env::var("ESCALE_CHURN_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x00e5_ca1e_c4a5_0001_u64);
    eprintln!("churn seed {seed} (set ESCALE_CHURN_SEED to replay it)");
    let dir = tempfile::tempdir().unwrap();
    // To look into a failure: the folders, settings and relay stay.
    let dir = match std::env::var_os("ESCALE_CHURN_KEEP") {
        Some(_) => {
            let kept = dir.keep();
            eprintln!("keeping the folders and the relay in {}", kept.display());
            Root::Kept(kept)
        }
        None => Root::Temporary(dir),
    };
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let logs = artifacts_dir().join("churn");
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs).unwrap();
    eprintln!("daemon logs in {}", logs.display());

    let mut clients: Vec<Client> = ["a", "b", "c"]
        .iter()
        .map(|name| Client {
            name,
            config: dir.path().join(format!("config-{name}")),
            folder: dir.path().join(format!("folder-{name}")),
            log: logs.join(format!("{name}.log")),
            daemon: None,
        })
        .collect();
    for (index, client) in clients.iter().enumerate() {
        let verb = if index == 0 { "init" } else { "join" };
        let output = set_up_command(&client.config, verb, "shared", &client.folder, &relay)
            .args(["--client-name", &format!("churn-{}", client.name)])
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{verb} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for client in &mut clients {
        client.start();
    }
    let folders: Vec<PathBuf> = clients.iter().map(|c| c.folder.clone()).collect();

    // The churn: the driver changes files here while a second thread kills
    // and restarts daemons.
    let churning = AtomicBool::new(true);
    let mut tally = Tally::default();
    let mut kills = 0u32;
    let mut spontaneous = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut rng = Rng::new(seed ^ 0x6b69_6c6c);
            // Sleeps in small steps, so that the churn ends on time.
            let pause = |duration: Duration| {
                let until = Instant::now() + duration;
                while churning.load(Ordering::Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
            };
            while churning.load(Ordering::Relaxed) {
                pause(rng.millis(1500..3000));
                for client in clients.iter_mut() {
                    if let Some(status) = client.exited() {
                        spontaneous.push(format!("{} exited by itself: {status}", client.name));
                        client.start();
                    }
                }
                if !churning.load(Ordering::Relaxed) {
                    break;
                }
                let index = usize::try_from(rng.within(0..3)).unwrap();
                let client = &mut clients[index];
                client.kill();
                kills += 1;
                pause(rng.millis(0..800));
                client.note(&format!("killed (kill {kills}), restarting"));
                client.start();
            }
        });
        let mut rng = Rng::new(seed);
        let mut counter = 0;
        while started.elapsed() < CHURN {
            operate(&mut rng, &mut tally, &folders, &mut counter);
            std::thread::sleep(rng.millis(80..350));
        }
        churning.store(false, Ordering::Relaxed);
        killer.join().unwrap();
    });
    let churn_end = Instant::now();
    for client in &mut clients {
        if let Some(status) = client.exited() {
            spontaneous.push(format!("{} exited by itself: {status}", client.name));
            client.start();
        }
        client.note("the churn is over");
    }
    let operations = tally.creates
        + tally.edits_in_place
        + tally.edits_replacing
        + tally.renames
        + tally.deletes;
    eprintln!(
        "churn: {kills} kills, {operations} operations ({} creates, {} edits in place, {} edits \
         replacing the file, {} renames, {} deletes; {} raced with a daemon), {} contents written \
         ({} MB)",
        tally.creates,
        tally.edits_in_place,
        tally.edits_replacing,
        tally.renames,
        tally.deletes,
        tally.raced,
        tally.written.len(),
        tally.bytes / 1_000_000
    );

    assert!(kills >= 30, "only {kills} kills: the machine is too slow");

    // Settling: the three folders identical, and staying so.
    let names = ["a", "b", "c"];
    let mut identical_since: Option<Instant> = None;
    let (mut previous, mut previous_at) = (Vec::new(), Instant::now());
    let settled = loop {
        let now = Instant::now();
        let shapes: Vec<_> = folders.iter().map(|f| tree(f, None)).collect();
        let identical = shapes.windows(2).all(|pair| pair[0] == pair[1]) && shapes == previous;
        if !identical {
            identical_since = None;
        } else if identical_since.is_none() {
            identical_since = Some(previous_at);
        }
        (previous, previous_at) = (shapes, now);
        if identical_since.is_some_and(|since| since.elapsed() >= STABLE_FOR) {
            // Same paths and sizes for a while; the contents decide.
            let trees: Vec<_> = folders
                .iter()
                .map(|f| tree(f, Some(&tally.written)))
                .collect();
            if trees.windows(2).all(|pair| pair[0] == pair[1]) {
                break trees;
            }
            identical_since = None;
        }
        if churn_end.elapsed() > SETTLE_TIMEOUT {
            let trees: Vec<_> = folders
                .iter()
                .map(|f| tree(f, Some(&tally.written)))
                .collect();
            panic!(
                "the folders did not settle within {SETTLE_TIMEOUT:?} (logs in {}):\n{}",
                logs.display(),
                differences(&names, &trees)
            );
        }
        for client in &mut clients {
            if let Some(status) = client.exited() {
                spontaneous.push(format!("{} exited by itself: {status}", client.name));
                client.start();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let settle_time = identical_since
        .unwrap()
        .saturating_duration_since(churn_end);
    let result = &settled[0];
    let file_count = result.values().filter(|e| **e != Entry::Dir).count();
    let conflict_copies = result.keys().filter(|p| p.contains(" (conflict ")).count();
    eprintln!(
        "settled {settle_time:.1?} after the churn: {file_count} files ({conflict_copies} conflict \
         copies), {} folders; {} bytes left on the relay",
        result.len() - file_count,
        size_of(&relay)
    );

    // Every file holds a content that was written, whole.
    let damaged: Vec<String> = result
        .iter()
        .filter_map(|(path, entry)| match entry {
            Entry::Damaged(why) => Some(format!("  {path}: {why}")),
            _ => None,
        })
        .collect();
    assert!(
        damaged.is_empty(),
        "files hold contents never written (logs in {}):\n{}",
        logs.display(),
        damaged.join("\n")
    );
    // So do the versions kept aside by sync.
    for folder in &folders {
        let versions = folder.join(".escale/versions");
        for (path, entry) in tree(&versions, Some(&tally.written)) {
            assert!(
                !matches!(entry, Entry::Damaged(_)),
                "version {path} in {}: {entry:?}",
                folder.display()
            );
        }
    }
    assert!(
        spontaneous.is_empty(),
        "daemons stopped without being killed (logs in {}): {spontaneous:?}",
        logs.display()
    );

    let mut problems = Vec::new();
    for client in &mut clients {
        let log = fs::read_to_string(&client.log).unwrap();
        let errors = log.lines().filter(|l| l.starts_with("error:")).count();
        let warnings = log.lines().filter(|l| l.starts_with("warning:")).count();
        eprintln!(
            "daemon {}: {errors} failed cycles, {warnings} warnings in its log",
            client.name
        );
        if !client.terminate() {
            problems.push(format!("{} did not stop cleanly on SIGTERM", client.name));
        }
    }
    assert!(problems.is_empty(), "{problems:?}");

    // No temporary file anywhere: downloads in the work folders, atomic
    // writes on the relay. Looked for once the daemons stopped cleanly, so
    // that a write in progress is not mistaken for a leftover: whatever is
    // found was left by a kill, and nothing cleared it since.
    let mut leftovers = Vec::new();
    for folder in &folders {
        leftovers.extend(find_named(&folder.join(".escale/tmp"), ""));
        leftovers.extend(find_named(folder, ".escale-tmp-"));
    }
    leftovers.extend(find_named(&relay, ".escale-tmp-"));
    assert!(
        leftovers.is_empty(),
        "temporary files were left (logs in {}): {leftovers:#?}",
        logs.display()
    );
}

/// One `escale sync` of the client whose settings are in `config`; its
/// report.
fn sync_once(config: &Path) -> serde_json::Value {
    let output = escale(config)
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .args(["sync", "--json"])
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "sync printed no report: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    document["repositories"][0]["report"].clone()
}

/// Writes `data` at `path` with the modification time `unix_seconds`.
fn write_dated(path: &Path, data: &[u8], unix_seconds: u64) {
    fs::write(path, data).unwrap();
    let time = std::time::UNIX_EPOCH + Duration::from_secs(unix_seconds);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// The churn found this sequence; here it is step by step, with `escale
/// sync` and no kill, so that it fails (or passes) every time.
///
/// A conflict copy's content travelled once and left the relay. A deletes
/// the copy while B marks it executable; a change survives a crossed
/// deletion, so the copy comes back to A, which no longer has its content
/// and asks for it. B and C both receive A's deletion and A's request in
/// one cycle: the deletion makes them publish their copy again (which
/// refers to the content without uploading it), and the request must
/// still be answered. (The churn found it with C's own announcement of the
/// copy crossing the deletion; every computer now announces a copy as the
/// same version, so that no longer crosses.)
#[test]
fn a_content_asked_for_again_is_sent_even_right_after_a_crossed_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let [a, b, c] = ["A", "B", "C"].map(|name| {
        (
            dir.path().join(format!("config-{name}")),
            dir.path().join(format!("folder-{name}")),
        )
    });
    for (index, (config, folder)) in [&a, &b, &c].into_iter().enumerate() {
        let verb = if index == 0 { "init" } else { "join" };
        let name = ["A", "B", "C"][index];
        let output = set_up_command(config, verb, "shared", folder, &relay)
            .args(["--client-name", name])
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap();
        assert!(output.status.success());
    }
    let sync = |client: &(PathBuf, PathBuf)| sync_once(&client.0);
    // 2026-01-01 10:00 UTC, when C saves; A saves an hour later and wins.
    let ten = 1_767_261_600;
    fs::write(c.1.join("f.odt"), content(1, 100_000)).unwrap();
    for client in [&c, &a, &b, &c, &a, &b] {
        sync(client);
    }
    let lost = content(2, 120_000);
    write_dated(&c.1.join("f.odt"), &lost, ten);
    sync(&c);
    write_dated(&a.1.join("f.odt"), &content(3, 130_000), ten + 3600);
    // A wins the crossed edits and keeps C's version as the conflict copy.
    sync(&a);
    let copy = "f (conflict 2026-01-01 1000 from C).odt";
    assert_eq!(fs::read(a.1.join(copy)).unwrap(), lost);
    // C loses: its version moves to the copy, which it announces while its
    // object is still on the relay (B has not received it yet), so nothing
    // is uploaded again. Once B has it, the object leaves the relay.
    sync(&c);
    sync(&c);
    sync(&b);
    sync(&c);
    // B marks the copy executable (a change that refers to the content
    // without uploading it) while A deletes it: the change crosses the
    // deletion, so the copy comes back, and A asks for its content.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let on_b = b.1.join(copy);
        assert_eq!(fs::read(&on_b).unwrap(), lost, "B lacks the copy");
        fs::set_permissions(&on_b, fs::Permissions::from_mode(0o755)).unwrap();
    }
    sync(&b);
    fs::remove_file(a.1.join(copy)).unwrap();
    let report = sync(&a);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "content_unavailable"),
        "the scenario no longer leads A to ask for the content: {report}"
    );
    for _ in 0..3 {
        for client in [&c, &b, &a] {
            sync(client);
        }
    }
    for (name, client) in [("B", &b), ("C", &c)] {
        assert!(
            fs::read(client.1.join(copy)).is_ok_and(|data| data == lost),
            "{name} lost the conflict copy: the scenario changed"
        );
    }
    assert!(
        fs::read(a.1.join(copy)).is_ok_and(|data| data == lost),
        "the conflict copy never came back to A: its request went unanswered"
    );
}
