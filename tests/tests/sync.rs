//! The sync engine end to end: three clients A, B and C, each with its own
//! settings folder and synced folder, driven through the real `escale`
//! binary against one `file://` relay.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use escale_e2e::escale;
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
        let mut command = escale(&client.config);
        command.env("ESCALE_PASSPHRASE", PASSPHRASE).args(args);
        if matches!(args.first(), Some(&"init" | &"join")) {
            command
                .arg("--folder")
                .arg(&client.folder)
                .arg("--relay")
                .arg(self.relay_url());
        }
        command.output().expect("escale runs")
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
