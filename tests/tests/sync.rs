//! The sync engine end to end: three clients A, B and C, each with its own
//! settings folder and synced folder, driven through the real `escale`
//! binary against one `file://` relay.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use escale_e2e::{escale, set_up_command};
use serde_json::Value;

const PASSPHRASE: &str = "correct horse battery staple";

/// One computer: its settings folder and its synced folder.
struct Client {
    config: PathBuf,
    folder: PathBuf,
}

/// A relay and three clients in a temporary folder.
struct World {
    _dir: tempfile::TempDir,
    relay: PathBuf,
    clients: Vec<Client>,
}

impl World {
    /// A repository created by A and joined by B and C.
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        fs::create_dir(&relay).unwrap();
        let mut world = World {
            relay,
            clients: Vec::new(),
            _dir: dir,
        };
        for (index, name) in ["laptop-a", "laptop-b", "laptop-c"].iter().enumerate() {
            let root = world._dir.path();
            let client = Client {
                config: root.join(format!("config-{name}")),
                folder: root.join(format!("folder-{name}")),
            };
            let verb = if index == 0 { "init" } else { "join" };
            let output = world.run(&client, &[verb, "shared", "--client-name", name]);
            assert!(
                output.status.success(),
                "{verb} failed: {}",
                text(&output.stderr)
            );
            world.clients.push(client);
        }
        world
    }

    fn relay_url(&self) -> String {
        format!("file://{}", self.relay.display())
    }

    fn run(&self, client: &Client, args: &[&str]) -> Output {
        let mut command = match args {
            [verb @ ("init" | "join"), name, rest @ ..] => {
                let mut command =
                    set_up_command(&client.config, verb, name, &client.folder, &self.relay);
                command.args(rest);
                command
            }
            _ => {
                let mut command = escale(&client.config);
                command.args(args);
                command
            }
        };
        command
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .output()
            .expect("escale runs")
    }

    /// `escale sync --json` on client `index`; returns its report.
    fn sync(&self, index: usize) -> Value {
        let output = self.run(&self.clients[index], &["sync", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("sync printed no JSON: {}", text(&output.stderr)));
        report["repositories"][0].clone()
    }

    /// Syncs every client in turn, `rounds` times, expecting no problem.
    fn sync_all(&self, rounds: usize) {
        for _ in 0..rounds {
            for index in 0..self.clients.len() {
                let report = self.sync(index);
                assert!(report["error"].is_null(), "client {index}: {report}");
                let problems = &report["report"]["problems"];
                assert_eq!(problems, &Value::Array(vec![]), "client {index}: {report}");
            }
        }
    }

    fn folder(&self, index: usize) -> &Path {
        &self.clients[index].folder
    }

    /// Every file under the relay with its bytes.
    fn relay_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(&self.relay, &self.relay, &mut files, true);
        files
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Path → (content, mtime, executable) of every file and folder under
/// `root`, the work folder excluded.
fn tree(root: &Path) -> BTreeMap<String, (Option<Vec<u8>>, i64, bool)> {
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Option<Vec<u8>>, i64, bool)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative == ".escale" {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.insert(format!("{relative}/"), (None, 0, false));
            walk(root, &path, out);
        } else {
            let mtime = filetime_ns(&meta);
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.insert(
                relative,
                (Some(fs::read(&path).unwrap()), mtime, executable),
            );
        }
    }
}

fn filetime_ns(meta: &fs::Metadata) -> i64 {
    let modified = meta.modified().unwrap();
    let since = modified.duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_nanos()).unwrap()
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>, read: bool) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out, read);
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(
                name,
                if read {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                },
            );
        }
    }
}

fn assert_same_trees(world: &World) {
    let a = tree(world.folder(0));
    for index in 1..world.clients.len() {
        let other = tree(world.folder(index));
        let a_names: Vec<_> = a.keys().collect();
        let other_names: Vec<_> = other.keys().collect();
        assert_eq!(a_names, other_names, "client {index} has other paths");
        for (path, entry) in &a {
            assert!(other[path] == *entry, "{path} differs on client {index}");
        }
    }
}

/// A pseudo-random but reproducible byte stream (no rand crate needed).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[test]
fn three_clients_converge_and_the_relay_empties_itself_without_leaking_anything() {
    let world = World::new();
    let a = world.folder(0);
    fs::create_dir_all(a.join("Projets/Été 2026/Rapports trimestriels/annexes/brouillons"))
        .unwrap();
    fs::create_dir_all(a.join("Empty folder")).unwrap();
    fs::write(a.join("Projets/empty-file.txt"), b"").unwrap();
    fs::write(
        a.join("Projets/Été 2026/Rapports trimestriels/annexes/brouillons/naïve résumé ✓.txt"),
        b"confidential-marker-unicode",
    )
    .unwrap();
    for index in 0..1000 {
        let dir = a.join(format!("small/batch-{}", index % 10));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("note-{index}.txt")),
            format!("confidential-marker-{index}\n"),
        )
        .unwrap();
    }
    let big = noise(300 * 1024 * 1024, 7);
    fs::write(a.join("Projets/video-master.bin"), &big).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            a.join("Projets/empty-file.txt"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    let sent = world.sync(0);
    assert!(
        sent["report"]["changes_sent"].as_u64().unwrap() >= 1003,
        "{sent}"
    );

    // Acceptance 3: nothing recognisable on the relay while it carries the data.
    let relay = world.relay_files();
    assert!(relay.len() > 3, "objects are on the relay");
    for (name, bytes) in &relay {
        for needle in [
            &b"confidential-marker"[..],
            "Été 2026".as_bytes(),
            "naïve résumé".as_bytes(),
            b"note-1",
            b"Projets",
            b"Empty folder",
            b"video-master",
            &big[1000..1032],
        ] {
            assert!(
                !contains(bytes, needle) && !contains(name.as_bytes(), needle),
                "{name} reveals {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }

    world.sync_all(2);
    // Acceptance 1: identical trees, mtimes and execute bits included.
    assert_same_trees(&world);
    assert_eq!(
        tree(world.folder(2))["Projets/video-master.bin"]
            .0
            .as_deref(),
        Some(&big[..])
    );

    // Acceptance 2: once B and C acknowledged and A synced again, only the
    // header, heads and journals remain.
    for name in world.relay_files().keys() {
        assert!(
            name == "escale-repo.json" || name.contains("/head.") || name.contains("/journal/"),
            "{name} is still on the relay"
        );
    }
}

#[test]
fn crossed_edits_keep_both_versions_identically_everywhere() {
    let world = World::new();
    fs::write(world.folder(0).join("report.docx"), b"first draft").unwrap();
    world.sync_all(1);

    fs::write(world.folder(0).join("report.docx"), b"edited on A").unwrap();
    fs::write(world.folder(1).join("report.docx"), b"edited on B").unwrap();
    world.sync_all(3);

    assert_same_trees(&world);
    let files = tree(world.folder(2));
    let copies: Vec<_> = files
        .keys()
        .filter(|name| name.starts_with("report (conflict ") && name.ends_with(").docx"))
        .collect();
    assert_eq!(copies.len(), 1, "{files:?}");
    let mut contents = vec![
        files["report.docx"].0.clone().unwrap(),
        files[copies[0]].0.clone().unwrap(),
    ];
    contents.sort();
    assert_eq!(
        contents,
        vec![b"edited on A".to_vec(), b"edited on B".to_vec()]
    );
}

/// Writes `content` to `path` with a modification time `age_secs` before
/// now, which decides who wins a crossed edit.
fn write_aged(path: &Path, content: &[u8], age_secs: u64) {
    fs::write(path, content).unwrap();
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// Regression: the copy of a losing version used to be announced only by
/// the computer whose version lost. When that computer had already
/// replaced its version before learning of the conflict, it never did, and
/// the copy stayed on the others only.
#[test]
fn a_conflict_copy_reaches_the_computer_that_replaced_its_losing_version() {
    let world = World::new();
    fs::write(world.folder(0).join("plan.txt"), b"first").unwrap();
    world.sync_all(1);

    // B's first edit loses to A's (older time); A makes its copy.
    write_aged(&world.folder(1).join("plan.txt"), b"B first", 300);
    write_aged(&world.folder(0).join("plan.txt"), b"A edit", 200);
    world.sync(1);
    world.sync(0);
    // B edits again before it hears of A's edit, and this time wins.
    write_aged(&world.folder(1).join("plan.txt"), b"B second", 100);
    world.sync_all(3);

    assert_same_trees(&world);
    let files = tree(world.folder(1));
    assert_eq!(files["plan.txt"].0.as_deref(), Some(&b"B second"[..]));
    let mut copies: Vec<_> = files
        .iter()
        .filter(|(name, _)| name.starts_with("plan (conflict "))
        .map(|(_, (content, _, _))| String::from_utf8(content.clone().unwrap()).unwrap())
        .collect();
    copies.sort();
    assert_eq!(copies, ["A edit", "B first"], "{files:?}");
}

#[test]
fn deletions_propagate_to_the_versions_folder_and_renames_send_no_content() {
    let world = World::new();
    let a = world.folder(0);
    fs::write(a.join("keep.txt"), b"kept").unwrap();
    fs::write(a.join("old plan.txt"), b"the plan before").unwrap();
    fs::write(a.join("big.bin"), noise(32 * 1024 * 1024, 3)).unwrap();
    world.sync_all(2);

    // Deleted on B: gone on A and C, kept in their versions folders.
    fs::remove_file(world.folder(1).join("old plan.txt")).unwrap();
    world.sync_all(2);
    assert_same_trees(&world);
    for index in [0, 2] {
        assert!(!world.folder(index).join("old plan.txt").exists());
        let versions = world.folder(index).join(".escale/versions");
        let kept: Vec<_> = fs::read_dir(&versions)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("old plan (")
        );
        assert_eq!(fs::read(&kept[0]).unwrap(), b"the plan before");
    }

    // Renamed on A: it arrives renamed, and no content is uploaded again.
    fs::rename(a.join("big.bin"), a.join("renamed.bin")).unwrap();
    let report = world.sync(0);
    assert_eq!(report["report"]["bytes_uploaded"], 0, "{report}");
    assert!(
        report["report"]["changes_sent"].as_u64().unwrap() >= 2,
        "{report}"
    );
    world.sync_all(2);
    assert_same_trees(&world);
    assert!(world.folder(2).join("renamed.bin").exists());
    assert!(!world.folder(2).join("big.bin").exists());

    // Edited in the middle: only the chunks around the edit travel.
    let mut content = fs::read(a.join("renamed.bin")).unwrap();
    content[16_000_000..16_000_010].copy_from_slice(b"0123456789");
    fs::write(a.join("renamed.bin"), &content).unwrap();
    let report = world.sync(0);
    let uploaded = report["report"]["bytes_uploaded"].as_u64().unwrap();
    assert!(
        uploaded > 0 && uploaded < content.len() as u64 / 4,
        "{report}"
    );
    world.sync_all(2);
    assert_same_trees(&world);
}

#[test]
fn a_flipped_byte_is_reported_and_only_the_files_concerned_wait() {
    let world = World::new();
    // Two batches: the first carries `good.txt`, the second `victim.txt`.
    fs::write(world.folder(0).join("good.txt"), b"good content").unwrap();
    world.sync(0);
    fs::write(world.folder(0).join("victim.txt"), b"victim content").unwrap();
    world.sync(0);

    let objects: Vec<_> = world
        .relay_files()
        .into_keys()
        .filter(|name| name.contains("/objects/"))
        .collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    // The newest object is the victim's: flip one byte in its middle.
    let newest = objects
        .iter()
        .max_by_key(|name| {
            fs::metadata(world.relay.join(name))
                .unwrap()
                .modified()
                .unwrap()
        })
        .unwrap();
    let path = world.relay.join(newest);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let output = world.run(&world.clients[1], &["sync"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("integrity check"), "{stderr}");
    assert!(
        world.folder(1).join("good.txt").exists(),
        "the other file still arrives"
    );
    assert!(
        !world.folder(1).join("victim.txt").exists(),
        "nothing written for it"
    );
    let leftovers = fs::read_dir(world.folder(1).join(".escale/tmp")).map_or(0, |d| d.count());
    assert_eq!(leftovers, 0, "no temporary file is left behind");

    // The damage stays reported on every sync, and nothing is acknowledged
    // past it, so the data stays on the relay for a repair.
    let again = world.run(&world.clients[1], &["sync"]);
    assert!(!again.status.success());
}

#[test]
fn a_flipped_byte_in_a_journal_batch_is_refused_clearly() {
    let world = World::new();
    fs::write(world.folder(0).join("a.txt"), b"a").unwrap();
    world.sync(0);
    let batch = world
        .relay_files()
        .into_keys()
        .find(|name| name.contains("/journal/"))
        .unwrap();
    let path = world.relay.join(&batch);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    fs::write(&path, &bytes).unwrap();

    let output = world.run(&world.clients[1], &["sync"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("journal batch 1"), "{stderr}");
    assert!(stderr.contains("integrity check"), "{stderr}");
    assert!(!world.folder(1).join("a.txt").exists());
}

#[test]
fn a_torn_head_is_skipped_for_now_not_fatal() {
    let world = World::new();
    fs::write(world.folder(0).join("a.txt"), b"a").unwrap();
    world.sync(0);
    // Truncate both of A's head slots, as a crash mid-write could on a
    // server without atomic overwrite.
    for name in world.relay_files().into_keys() {
        if name.contains("/head.") && !name.contains(&own_client_dir(&world, 1)) {
            let path = world.relay.join(&name);
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    let report = world.sync(1);
    assert!(report["error"].is_null(), "{report}");
    assert!(
        !world.folder(1).join("a.txt").exists(),
        "A is skipped this time"
    );
    // A writes its head again; B then catches up with no manual step.
    world.sync(0);
    let report = world.sync(1);
    assert!(report["error"].is_null(), "{report}");
    assert_eq!(fs::read(world.folder(1).join("a.txt")).unwrap(), b"a");
}

/// The relay folder name of client `index` (read from its state: the only
/// head folder it wrote that the others did not).
fn own_client_dir(world: &World, index: usize) -> String {
    let status = world.run(&world.clients[index], &["status", "--json"]);
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let others: Vec<String> = report["repositories"][0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    world
        .relay_files()
        .into_keys()
        .filter_map(|name| name.split('/').nth(1).map(str::to_owned))
        .find(|id| id.len() == 32 && !others.contains(id))
        .unwrap()
}

#[test]
fn join_with_a_wrong_passphrase_leaves_nothing_behind() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config-d");
    let folder = dir.path().join("folder-d");
    let relay_before = world.relay_files();
    let output = escale(&config)
        .env("ESCALE_PASSPHRASE", "not the passphrase")
        .args(["join", "shared", "--folder"])
        .arg(&folder)
        .arg("--relay")
        .arg(world.relay_url())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: the passphrase is wrong"),
        "{stderr}"
    );
    assert!(!config.exists(), "no settings or state were created");
    assert!(!folder.exists(), "no folder was created");
    assert_eq!(
        world.relay_files(),
        relay_before,
        "nothing was written to the relay"
    );
}

#[test]
fn init_refuses_a_relay_that_already_holds_a_repository() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let output = escale(&dir.path().join("config"))
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .args(["init", "again", "--folder"])
        .arg(dir.path().join("folder"))
        .arg("--relay")
        .arg(world.relay_url())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("join it instead"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn rescanning_an_unchanged_tree_reads_no_file_contents() {
    let world = World::new();
    for index in 0..10_000 {
        let dir = world.folder(0).join(format!("d{}", index % 100));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{index}")), format!("{index}")).unwrap();
    }
    let first = world.sync(0);
    assert!(
        first["report"]["bytes_hashed"].as_u64().unwrap() > 0,
        "{first}"
    );
    let again = world.sync(0);
    assert_eq!(again["report"]["bytes_hashed"], 0, "{again}");
    assert_eq!(again["report"]["changes_sent"], 0, "{again}");
}

#[test]
fn a_changed_passphrase_is_needed_from_then_on() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new-passphrase");
    fs::write(&new_file, "a brand new passphrase\n").unwrap();
    let changed = world.run(
        &world.clients[0],
        &[
            "passphrase",
            "change",
            "shared",
            "--new-passphrase-file",
            new_file.to_str().unwrap(),
        ],
    );
    assert!(changed.status.success(), "{}", text(&changed.stderr));

    let old = world.run(&world.clients[1], &["sync"]);
    assert!(!old.status.success());
    assert!(
        text(&old.stderr).contains("passphrase is wrong"),
        "{}",
        text(&old.stderr)
    );

    fs::write(world.folder(0).join("after.txt"), b"still syncing").unwrap();
    let a = escale(&world.clients[0].config)
        .arg("--passphrase-file")
        .arg(&new_file)
        .arg("sync")
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", text(&a.stderr));
    let b = escale(&world.clients[1].config)
        .arg("--passphrase-file")
        .arg(&new_file)
        .arg("sync")
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(
        fs::read(world.folder(1).join("after.txt")).unwrap(),
        b"still syncing"
    );
}

#[test]
fn a_settings_folder_inside_the_synced_folder_is_never_synced() {
    // Someone syncing their whole home folder keeps Escale's settings in it.
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let home_a = dir.path().join("home-a");
    let home_b = dir.path().join("home-b");
    for (home, verb) in [(&home_a, "init"), (&home_b, "join")] {
        let output = set_up_command(&home.join(".config/escale"), verb, "home", home, &relay)
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    fs::write(home_a.join("letter.txt"), b"dear B").unwrap();
    for _ in 0..2 {
        for home in [&home_a, &home_b] {
            let output = escale(&home.join(".config/escale"))
                .env("ESCALE_PASSPHRASE", PASSPHRASE)
                .args(["sync", "--json"])
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", text(&output.stdout));
        }
    }
    assert_eq!(fs::read(home_b.join("letter.txt")).unwrap(), b"dear B");
    // B's settings are its own: A's never arrived over them.
    let settings = fs::read_to_string(home_b.join(".config/escale/config.toml")).unwrap();
    assert!(
        settings.contains(&home_b.display().to_string()),
        "{settings}"
    );
    let status = escale(&home_b.join(".config/escale"))
        .env("ESCALE_PASSPHRASE", PASSPHRASE)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["repositories"][0]["pending_files"], 0, "{report}");
}

#[test]
fn lock_files_litter_and_escaleignore_entries_stay_on_their_computer() {
    let world = World::new();
    let a = world.folder(0);
    fs::create_dir_all(a.join("private")).unwrap();
    fs::write(a.join(".escaleignore"), "private/\n*.log\n").unwrap();
    for (path, content) in [
        ("report.docx", "the report"),
        ("~$report.docx", "office lock"),
        (".~lock.budget.ods#", "libreoffice lock"),
        ("Thumbs.db", "thumbnails"),
        ("download.part", "half a file"),
        ("private/diary.txt", "not for the others"),
        ("debug.log", "noise"),
    ] {
        fs::write(a.join(path), content).unwrap();
    }
    world.sync_all(2);
    let mut arrived: Vec<String> = tree(world.folder(1)).into_keys().collect();
    arrived.sort();
    assert_eq!(arrived, [".escaleignore", "report.docx"]);

    // B's own excluded files are not deletions of A's, nor sent to A.
    fs::write(world.folder(1).join("~$report.docx"), "B has it open").unwrap();
    world.sync_all(1);
    assert_eq!(fs::read(a.join("~$report.docx")).unwrap(), b"office lock");
    assert!(a.join("private/diary.txt").exists() && a.join("debug.log").exists());
}
