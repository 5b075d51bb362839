use std::fs;
use std::path::Path;
use std::time::Instant;

use filetime::FileTime;

use super::*;

/// Writes a file, creating its folders.
fn write(root: &Path, rel: &str, contents: &[u8]) {
    let local = root.join(rel);
    if let Some(parent) = local.parent() {
        fs::create_dir_all(parent).expect("create parent folders");
    }
    fs::write(local, contents).expect("write file");
}

/// A path the test knows is valid.
fn rel(text: &str) -> RelPath {
    RelPath::new(text).expect("valid path")
}

/// The paths of the entries, in scan order.
fn listed(scan: &Scan) -> Vec<&str> {
    scan.entries.iter().map(|e| e.path.as_str()).collect()
}

/// The entry for `path`, which must be there.
fn find<'a>(scan: &'a Scan, path: &str) -> &'a ScannedEntry {
    scan.entries
        .iter()
        .find(|e| e.path.as_str() == path)
        .unwrap_or_else(|| panic!("{path} is not in {:?}", listed(scan)))
}

/// The reason given for skipping `name`, which must have been skipped.
fn reason<'a>(scan: &'a Scan, root: &Path, name: &str) -> &'a str {
    let local = root.join(name);
    scan.skipped
        .iter()
        .find(|s| s.path == local)
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("{name} was not skipped: {:?}", scan.skipped))
}

#[test]
fn nested_folders_files_and_empty_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "a/b/c.txt", b"hello");
    write(root, "top.txt", b"");
    write(root, "x/y/z/deep.bin", &[7; 3000]);
    fs::create_dir_all(root.join("a/empty")).expect("mkdir");

    let scan = scan(root).expect("scan");
    assert_eq!(
        listed(&scan),
        [
            "a",
            "a/b",
            "a/b/c.txt",
            "a/empty",
            "top.txt",
            "x",
            "x/y",
            "x/y/z",
            "x/y/z/deep.bin"
        ]
    );
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    assert!(scan.unreadable_dirs.is_empty());

    let file = find(&scan, "a/b/c.txt");
    assert_eq!((file.kind.clone(), file.size), (EntryKind::File, 5));
    let empty_file = find(&scan, "top.txt");
    assert_eq!(
        (empty_file.kind.clone(), empty_file.size),
        (EntryKind::File, 0)
    );
    assert_eq!(find(&scan, "x/y/z/deep.bin").size, 3000);
    for folder in ["a", "a/b", "a/empty", "x/y/z"] {
        let entry = find(&scan, folder);
        assert_eq!(entry.kind, EntryKind::Dir);
        assert_eq!(entry.size, 0);
        assert!(!entry.executable);
    }
}

#[test]
fn unicode_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let names = [
        "été/naïve.txt",
        "漢字/😀 emoji.md",
        "Ελληνικά.doc",
        "café.txt",
        "cafe\u{301}.txt",
    ];
    for name in names {
        write(root, name, name.as_bytes());
    }
    let scan = scan(root).expect("scan");
    for name in names {
        let entry = find(&scan, name);
        assert_eq!(entry.size, name.len() as u64);
    }
    // Linux keeps both spellings of "café" as two files; the engine sees
    // from the collision key that macOS or Windows could not.
    assert_eq!(
        find(&scan, "café.txt").path.collision_key(),
        find(&scan, "cafe\u{301}.txt").path.collision_key()
    );
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
}

#[test]
fn the_work_folder_is_skipped_only_at_the_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, ".escale/state.db", b"state");
    write(root, ".escale/tmp/download.part", b"partial");
    write(root, "sub/.escale/notes.txt", b"mine");
    write(root, ".escaleignore", b"*.tmp");

    let scan = scan(root).expect("scan");
    assert_eq!(
        listed(&scan),
        [
            ".escaleignore",
            "sub",
            "sub/.escale",
            "sub/.escale/notes.txt"
        ]
    );
    assert!(scan.skipped.is_empty(), "silently: {:?}", scan.skipped);
}

#[test]
fn a_look_alike_of_the_work_folder_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, ".Escale/x", b"");
    if fs::symlink_metadata(root.join(".escale")).is_ok() {
        return; // A case-insensitive filesystem: it *is* the work folder.
    }
    let scan = scan(root).expect("scan");
    assert!(scan.entries.is_empty());
    assert!(reason(&scan, root, ".Escale").contains("work folder"));
}

#[cfg(unix)]
#[test]
fn names_invalid_elsewhere_are_skipped_with_the_reason() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "ok.txt", b"fine");
    write(root, "aux.txt", b"device");
    write(root, "a\\b", b"backslash");
    write(root, "note:1", b"colon");
    write(root, "c:drive", b"drive");
    write(root, "trailing.", b"dot");
    write(root, "line\nbreak", b"control");
    write(root, "sub/CON", b"device");
    write(root, "sub/fine.txt", b"fine");
    write(root, "bad?dir/inner.txt", b"never listed");
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9.txt")), b"latin-1").expect("write");

    let scan = scan(root).expect("an odd name is not fatal");
    assert_eq!(listed(&scan), ["ok.txt", "sub", "sub/fine.txt"]);
    assert_eq!(scan.skipped.len(), 9, "{:?}", scan.skipped);
    assert!(scan.unreadable_dirs.is_empty());

    assert_eq!(
        reason(&scan, root, "aux.txt"),
        "its name cannot be synced: the name \"aux.txt\" in \"aux.txt\" is reserved for a \
         device on Windows"
    );
    assert!(reason(&scan, root, "sub/CON").contains("\"CON\" in \"sub/CON\" is reserved"));
    assert!(reason(&scan, root, "a\\b").contains("backslash"));
    assert!(reason(&scan, root, "note:1").contains("':'"));
    assert!(reason(&scan, root, "c:drive").contains("absolute"));
    assert!(reason(&scan, root, "trailing.").contains("ends with a dot"));
    assert!(reason(&scan, root, "line\nbreak").contains("control character"));
    assert!(reason(&scan, root, "bad?dir").contains("'?'"));
    let latin1 = scan
        .skipped
        .iter()
        .find(|s| s.path == root.join(OsStr::from_bytes(b"caf\xe9.txt")))
        .expect("the Latin-1 name is reported");
    assert!(
        latin1.reason.contains("not valid UTF-8"),
        "{}",
        latin1.reason
    );
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_reported_not_followed() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().expect("temp dir");
    write(outside.path(), "secret/passwords.txt", b"hunter2");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "real.txt", b"real");
    symlink(outside.path().join("secret"), root.join("to_dir")).expect("symlink");
    symlink(
        outside.path().join("secret/passwords.txt"),
        root.join("to_file"),
    )
    .expect("symlink");
    symlink("nowhere", root.join("dangling")).expect("symlink");
    symlink("real.txt", root.join("relative")).expect("symlink");

    let scan = scan(root).expect("scan");
    assert_eq!(listed(&scan), ["real.txt"]);
    for name in ["to_dir", "to_file", "dangling", "relative"] {
        assert_eq!(
            reason(&scan, root, name),
            "it is a symbolic link, which Escale does not follow"
        );
    }
}

#[cfg(unix)]
#[test]
fn special_files_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).expect("bind");
    let scan = scan(root).expect("scan");
    assert!(scan.entries.is_empty());
    assert!(reason(&scan, root, "socket").contains("special file"));
}

#[cfg(unix)]
#[test]
fn the_execute_bit_is_detected() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for (name, mode) in [
        ("script.sh", 0o755),
        ("owner_only", 0o700),
        ("group_only", 0o650),
        ("plain.txt", 0o644),
    ] {
        write(root, name, b"#!/bin/sh\n");
        fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let scan = scan(root).expect("scan");
    assert!(find(&scan, "script.sh").executable);
    assert!(find(&scan, "owner_only").executable);
    assert!(find(&scan, "group_only").executable);
    assert!(!find(&scan, "plain.txt").executable);
}

#[test]
fn modification_times_in_nanoseconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "recent.txt", b"x");
    write(root, "old.txt", b"x");
    fs::create_dir(root.join("folder")).expect("mkdir");
    let set = |name: &str, seconds: i64, nanos: u32| {
        filetime::set_file_mtime(root.join(name), FileTime::from_unix_time(seconds, nanos))
            .expect("set mtime");
    };
    set("recent.txt", 1_700_000_000, 123_456_789);
    set("old.txt", -86_400, 500); // 31 Dec 1969, plus 500 ns
    set("folder", 1_000_000_000, 0);

    let scan = scan(root).expect("scan");
    assert_eq!(
        find(&scan, "recent.txt").mtime_ns,
        1_700_000_000_123_456_789
    );
    assert_eq!(find(&scan, "old.txt").mtime_ns, -86_400_000_000_000 + 500);
    assert_eq!(find(&scan, "folder").mtime_ns, 1_000_000_000_000_000_000);
}

#[cfg(unix)]
#[test]
fn inodes_tell_a_replaced_file_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "a.txt", b"same");
    write(root, "b.txt", b"same");
    let before = scan(root).expect("scan");
    let (a, b) = (find(&before, "a.txt").inode, find(&before, "b.txt").inode);
    assert_ne!(a, 0);
    assert_ne!(a, b);

    // Saved the way editors do: a new file renamed over the old one.
    write(root, "a.txt.new", b"same");
    fs::rename(root.join("a.txt.new"), root.join("a.txt")).expect("rename");
    let after = scan(root).expect("scan");
    assert_ne!(find(&after, "a.txt").inode, a);
    assert_eq!(find(&after, "b.txt").inode, b);
}

#[test]
fn a_missing_or_non_folder_root_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = scan(&dir.path().join("missing")).expect_err("missing root");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);

    write(dir.path(), "file", b"");
    let file = scan(&dir.path().join("file")).expect_err("file root");
    assert_eq!(file.kind(), io::ErrorKind::NotADirectory);
}

#[cfg(unix)]
#[test]
fn a_root_reached_through_a_symbolic_link_is_scanned() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "real/a.txt", b"a");
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).expect("link");
    let scan = scan(&dir.path().join("link")).expect("scan");
    assert_eq!(listed(&scan), ["a.txt"]);
}

/// Whether this process ignores permissions (root, or CAP_DAC_OVERRIDE), in
/// which case permission tests cannot make anything unreadable.
#[cfg(unix)]
fn permissions_are_bypassed(locked: &Path) -> bool {
    let bypassed = fs::read_dir(locked).is_ok();
    if bypassed {
        eprintln!(
            "running with permission checks bypassed (root?): unreadable-folder case skipped"
        );
    }
    bypassed
}

#[cfg(unix)]
#[test]
fn an_unreadable_folder_is_reported_and_its_contents_not_assumed_gone() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "fine/a.txt", b"a");
    write(root, "locked/inner/b.txt", b"b");
    write(root, "unsearchable/c.txt", b"c");
    write(root, "secret.txt", b"contents never read");
    let chmod = |name: &str, mode: u32| {
        fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).expect("chmod");
    };
    chmod("secret.txt", 0o000);
    chmod("locked", 0o000);
    // Readable but not searchable: names can be listed, not examined.
    chmod("unsearchable", 0o600);

    let result = scan(root);
    let bypassed = permissions_are_bypassed(&root.join("locked"));
    chmod("locked", 0o755);
    chmod("unsearchable", 0o755);
    let scan = result.expect("an unreadable subfolder is not fatal");

    // Metadata only: a file whose contents nobody may read is still listed.
    assert_eq!(find(&scan, "secret.txt").size, 19);
    assert_eq!(find(&scan, "fine/a.txt").size, 1);
    if bypassed {
        return;
    }
    assert_eq!(
        listed(&scan),
        ["fine", "fine/a.txt", "locked", "secret.txt", "unsearchable"]
    );
    assert_eq!(scan.unreadable_dirs, [rel("locked"), rel("unsearchable")]);
    assert!(reason(&scan, root, "locked").starts_with("the folder could not be read: "));
    assert!(reason(&scan, root, "unsearchable/c.txt").starts_with("its details could not be read"));
    // What the engine must do with it: keep, not delete, what it knew.
    assert!(rel("locked/inner/b.txt").is_under(&scan.unreadable_dirs[0]));
}

#[test]
fn ten_thousand_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for folder in 0..100 {
        fs::create_dir(root.join(format!("folder {folder:03}"))).expect("mkdir");
        for file in 0..100 {
            fs::write(
                root.join(format!("folder {folder:03}/file {file:03}.txt")),
                b"",
            )
            .expect("write");
        }
    }
    let started = Instant::now();
    let scan = scan(root).expect("scan");
    let elapsed = started.elapsed();
    eprintln!("scanned {} entries in {elapsed:?}", scan.entries.len());
    assert_eq!(scan.entries.len(), 10_100);
    assert!(
        scan.entries
            .windows(2)
            .all(|pair| pair[0].path < pair[1].path)
    );
    assert_eq!(scan.entries[1].path.as_str(), "folder 000/file 000.txt");
}

#[test]
fn stat_matches_scan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "a/b.txt", b"bee");
    let scan = scan(root).expect("scan");
    for entry in &scan.entries {
        assert_eq!(stat(root, &entry.path).expect("stat").as_ref(), Some(entry));
    }
    assert_eq!(
        stat(root, &rel("a")).expect("stat").map(|e| e.kind),
        Some(EntryKind::Dir)
    );
}

#[test]
fn stat_of_nothing_is_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "file.txt", b"x");
    assert_eq!(stat(root, &rel("missing.txt")).expect("stat"), None);
    assert_eq!(stat(root, &rel("no/such/folder.txt")).expect("stat"), None);
    // A file where a folder would have to be: the target cannot exist.
    assert_eq!(stat(root, &rel("file.txt/inside")).expect("stat"), None);
}

#[cfg(unix)]
#[test]
fn stat_refuses_links_and_special_files() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().expect("temp dir");
    write(outside.path(), "target.txt", b"not yours");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    symlink(outside.path().join("target.txt"), root.join("link.txt")).expect("symlink");
    symlink(outside.path(), root.join("linked_dir")).expect("symlink");
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).expect("bind");

    let error = stat(root, &rel("link.txt")).expect_err("a link at the target");
    assert!(error.to_string().contains("is a symbolic link"), "{error}");
    // Writing "linked_dir/target.txt" would land outside the synced folder.
    let error = stat(root, &rel("linked_dir/target.txt")).expect_err("a link on the way");
    assert!(
        error.to_string().contains("linked_dir is a symbolic link"),
        "{error}"
    );
    let error = stat(root, &rel("linked_dir/new.txt")).expect_err("even for a new file");
    assert!(error.to_string().contains("symbolic link"), "{error}");
    let error = stat(root, &rel("socket")).expect_err("a socket");
    assert!(error.to_string().contains("special file"), "{error}");
}
