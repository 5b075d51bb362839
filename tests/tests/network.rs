//! The three-computer scenario on every kind of network relay: the real
//! `escale` binary, three computers, and a real server on loopback started
//! by `scripts/relay-servers.sh`.
//!
//! The same story runs on each server: a new tree (a file of several MB,
//! names with spaces and accents, an empty file, many small files), edits,
//! a crossed edit that leaves one conflict copy, identical everywhere, a
//! deletion, and at the end a relay that has emptied itself of content:
//! only the header, the heads and the journals remain. What is left is
//! looked at on the server's side (its data folder, or SeaweedFS's filer),
//! not through Escale.
//!
//! Run through `scripts/relay-servers.sh run DIR -- cargo test -p
//! escale-e2e --test network -- --ignored` (the test command does).

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::Instant;

use escale_e2e::relay::Relay;
use escale_e2e::servers::Servers;
use escale_e2e::world::{World, noise};

/// Server `name`'s test, where `name` is the server's prefix in
/// `servers.env`. A new kind of relay needs one such line.
macro_rules! on_server {
    ($($test:ident: $name:literal,)*) => {
        $(
            #[test]
            #[ignore = "needs scripts/relay-servers.sh"]
            fn $test() {
                three_computers_through($name);
            }
        )*
    };
}

on_server! {
    nginx_webdav: "WEBDAV",
    nginx_webdavs: "WEBDAVS",
    apache_webdav: "APACHE",
    rclone_serve_webdav: "RCLONE_WEBDAV",
    seaweedfs_s3: "S3",
    vsftpd_ftp: "FTP",
    vsftpd_ftps: "FTPS",
    pure_ftpd: "PUREFTPD",
    openssh_sftp: "SFTP",
    rclone_local: "RCLONE",
}

/// The big file's size: several chunks and more than one object, small
/// enough that five servers take well under a minute together.
const BIG: usize = 6 * 1024 * 1024;

fn three_computers_through(name: &str) {
    let start = Instant::now();
    let servers = Servers::get();
    let relay = Relay::on_server(&servers, name, "network");
    let world = World::new_on(relay, &["laptop-a", "laptop-b", "laptop-c"], &[]);

    // A new tree on A reaches B and C.
    let big = noise(BIG, 7);
    world.write(0, "Projets/vidéo master.bin", &big);
    world.write(0, "Projets/Été 2026/naïve résumé ✓.txt", "accents");
    world.write(0, "Dossier partagé/note de frais 2026.txt", "spaces");
    world.write(0, "報告書/四半期 レポート.txt", "not only Latin");
    world.write(0, "Projets/empty file.txt", "");
    for index in 0..30 {
        world.write(
            0,
            &format!("small/batch {}/note {index}.txt", index % 3),
            format!("note {index}\n"),
        );
    }
    let mut phases = vec![("set up", start.elapsed())];
    let mut lap = Instant::now();
    world.sync_all(2);
    phases.push(("new tree", lap.elapsed()));
    lap = Instant::now();
    world.assert_same_trees();
    assert!(
        world.read(2, "Projets/vidéo master.bin").as_deref() == Some(&big[..]),
        "{name}: the big file differs on C"
    );

    // Edits on every computer: the middle of the big file on A, a note on
    // B, a new file on C.
    let mut edited = big.clone();
    edited[BIG / 2..BIG / 2 + 10].copy_from_slice(b"0123456789");
    world.write(0, "Projets/vidéo master.bin", &edited);
    world.write(1, "small/batch 1/note 1.txt", "edited on B");
    world.write(2, "Projets/from C.txt", "new on C");
    world.sync_all(2);
    phases.push(("edits", lap.elapsed()));
    lap = Instant::now();
    world.assert_same_trees();
    assert!(
        world.read(1, "Projets/vidéo master.bin").as_deref() == Some(&edited[..]),
        "{name}: the edited big file differs on B"
    );

    // A crossed edit: A and B change the same file before hearing of each
    // other; both versions stay, as one conflict copy, on every computer.
    world.write(0, "Rapport final.docx", "first draft");
    world.sync_all(1);
    world.write(0, "Rapport final.docx", "edited on A");
    world.write(1, "Rapport final.docx", "edited on B");
    world.sync_all(3);
    phases.push(("crossed edit", lap.elapsed()));
    lap = Instant::now();
    world.assert_same_trees();
    let files = world.tree(2);
    let copies: Vec<_> = files
        .keys()
        .filter(|path| path.starts_with("Rapport final (conflict ") && path.ends_with(").docx"))
        .collect();
    assert_eq!(copies.len(), 1, "{:?}", files.keys().collect::<Vec<_>>());
    let mut versions = vec![
        files["Rapport final.docx"].clone(),
        files[copies[0]].clone(),
    ];
    versions.sort();
    assert_eq!(versions, [b"edited on A".to_vec(), b"edited on B".to_vec()]);

    // A deletion on C reaches A and B.
    fs::remove_file(world.path(2, "Dossier partagé/note de frais 2026.txt")).unwrap();
    world.sync_all(2);
    phases.push(("deletion", lap.elapsed()));
    world.assert_same_trees();
    assert!(
        world
            .read(0, "Dossier partagé/note de frais 2026.txt")
            .is_none()
    );

    // Everyone has everything: the relay keeps only the header, heads and
    // journals.
    let left = world.relay.leftovers();
    assert!(left.is_empty(), "{name}: still on the relay: {left:?}");
    eprintln!(
        "{name}: three computers converged in {:.1?} ({phases:.1?}); {} files, {} bytes left \
         on the relay",
        start.elapsed(),
        world.relay.files().len(),
        world.relay.size()
    );
}
