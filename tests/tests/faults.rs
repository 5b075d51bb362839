//! Faults on the way to a real relay server: connections cut in the middle
//! of transfers, data held back, and the server itself killed and started
//! again in the middle of a sync. The real `escale` binary on three (or
//! two) computers syncs through nginx WebDAV, reached through the
//! [`FaultProxy`] of the test crate.
//!
//! What must hold: with no manual step, only `escale sync` run again, the
//! computers end with byte-identical trees, no file is ever partial or
//! corrupted, and nothing temporary stays behind, on the computers or on
//! the relay (looked at in the server's data folder, not through Escale).
//!
//! Run through `scripts/relay-servers.sh run DIR -- cargo test -p
//! escale-e2e --test faults -- --ignored` (the test command does).

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use escale_e2e::fault_proxy::{FaultProxy, Faults};
use escale_e2e::relay::Relay;
use escale_e2e::servers::Servers;
use escale_e2e::world::{World, noise, wait_until};

/// The seed of the fault schedules, unless `ESCALE_FAULT_SEED` gives
/// another: a failure can be run again with the same faults drawn in the
/// same order, and other schedules tried. The default is a hard schedule:
/// with it, the cuts test meets about 25 cuts and a failed sync per run.
fn seed() -> u64 {
    let seed = std::env::var("ESCALE_FAULT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(1);
    eprintln!("fault seed: {seed} (ESCALE_FAULT_SEED)");
    seed
}

/// Held by each test for its whole run: one of them kills the WebDAV
/// server, which the other must not take for one of its own faults.
static WEBDAV: Mutex<()> = Mutex::new(());

/// The sync cycles the convergences of a test ran, and what they met.
#[derive(Debug, Default)]
struct Tally {
    syncs: usize,
    rounds: usize,
    /// Why each failed sync failed (the error, or the problems of a cycle
    /// that synced everything else).
    failures: Vec<String>,
    /// Every version of every file that the test wrote, by path: all that
    /// a computer may hold at any moment.
    written: BTreeMap<String, Vec<Vec<u8>>>,
}

/// Syncs every computer in turn, round after round, until they all hold
/// `expected` and the relay holds nothing but the header, heads and
/// journals, after a round in which no sync failed. Fails the test after
/// `max_rounds`.
///
/// Every computer's files are checked after each of its syncs, so that a
/// partial or corrupted file is caught even if a later sync replaced it:
/// each file must be byte for byte one of the versions the test wrote
/// under its name.
fn converge(
    world: &World,
    expected: &BTreeMap<String, Vec<u8>>,
    max_rounds: usize,
    tally: &mut Tally,
) {
    for (path, content) in expected {
        let versions = tally.written.entry(path.clone()).or_default();
        if !versions.contains(content) {
            versions.push(content.clone());
        }
    }
    for _ in 0..max_rounds {
        tally.rounds += 1;
        let mut failed = false;
        for index in 0..world.computers.len() {
            tally.syncs += 1;
            if let Err(why) = world.try_sync(index) {
                failed = true;
                let first = why.lines().next().unwrap_or_default().to_owned();
                tally
                    .failures
                    .push(format!("{}: {first}", world.computers[index].name));
            }
            for (path, content) in world.tree(index) {
                // Before the last version arrives an older one may be
                // there, but never a mix, a prefix or a stray file.
                let versions = tally.written.get(&path).map_or(&[][..], Vec::as_slice);
                assert!(
                    versions.contains(&content),
                    "{path} on {} ({} bytes) is none of the {} versions written",
                    world.computers[index].name,
                    content.len(),
                    versions.len()
                );
            }
        }
        let done = !failed
            && (0..world.computers.len()).all(|index| world.tree(index) == *expected)
            && world.relay.leftovers().is_empty();
        if done {
            return;
        }
    }
    let left = world.relay.leftovers();
    panic!(
        "no convergence after {max_rounds} rounds; failures: {:#?}; relay leftovers: {left:?}",
        tally.failures
    );
}

/// Checks that no computer keeps a temporary download or a staged chunk.
fn assert_no_temporaries(world: &World) {
    for index in 0..world.computers.len() {
        let left = world.temporaries(index);
        assert!(
            left.is_empty(),
            "{} keeps temporary files: {left:?}",
            world.computers[index].name
        );
    }
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn cut_and_delayed_connections_to_webdav_still_converge_byte_identical() {
    let _alone = WEBDAV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let start = Instant::now();
    let servers = Servers::get();
    let relay = Relay::on_server(&servers, "WEBDAV", "faults-cuts");
    let proxy = FaultProxy::start(relay.server_addr(), seed(), Faults::none());
    // Set up without faults: the subject is syncing, and an `init` cut
    // after its header was written is a different story (it then refuses
    // to run again, as it must).
    let world = World::new_on(
        relay.through(proxy.addr()),
        &["laptop-a", "laptop-b", "laptop-c"],
        &[],
    );
    let set_up = proxy.counts();
    proxy.set_faults(Faults {
        // Per connection. A sync keeps its connection open from one
        // request to the next, so it makes only one or two (and one more
        // after each cut): at 10-20% most runs would see one cut or none.
        // At one half, a run sees about ten, anywhere from the first
        // request's headers to the middle of a big object, and now and
        // then a request cut at every retry, which fails its sync.
        cut_chance: 0.5,
        cut_after: 200..8 * 1024 * 1024,
        delay_chance: 0.02,
        delay_ms: 5..150,
        rate: None,
    });

    // A new tree with several-MB files.
    world.write(0, "Plans/plan général.pdf", noise(6 * 1024 * 1024, 11));
    world.write(0, "Plans/annexe technique.bin", noise(3 * 1024 * 1024, 12));
    world.write(
        1,
        "Photos/été 2026/vue du toit.jpg",
        noise(4 * 1024 * 1024, 13),
    );
    for index in 0..20 {
        world.write(
            2,
            &format!("Notes/note {index}.txt"),
            format!("note {index}\n"),
        );
    }
    let mut expected = BTreeMap::new();
    for index in 0..3 {
        expected.extend(world.tree(index));
    }
    let mut tally = Tally::default();
    converge(&world, &expected, 12, &mut tally);

    // Edits under the same faults: the middle of a big file, a deletion, a
    // new big file.
    let mut plan = expected["Plans/plan général.pdf"].clone();
    plan[3_000_000..3_000_016].copy_from_slice(b"edited on laptop");
    world.write(1, "Plans/plan général.pdf", &plan);
    fs::remove_file(world.path(2, "Plans/annexe technique.bin")).unwrap();
    let annex = noise(5 * 1024 * 1024, 14);
    world.write(0, "Plans/annexe v2.bin", &annex);
    expected.insert("Plans/plan général.pdf".into(), plan);
    expected.remove("Plans/annexe technique.bin");
    expected.insert("Plans/annexe v2.bin".into(), annex);
    converge(&world, &expected, 12, &mut tally);
    world.assert_same_trees();
    assert_no_temporaries(&world);

    let counts = proxy.counts();
    eprintln!(
        "fault proxy: {} connections ({} while setting up), {} cut, {} delays, {} MB up, {} MB down",
        counts.connections,
        set_up.connections,
        counts.cuts,
        counts.delays,
        counts.bytes_up / 1_000_000,
        counts.bytes_down / 1_000_000
    );
    eprintln!(
        "syncs: {} in {} rounds, {} failed and were simply run again: {:#?}",
        tally.syncs,
        tally.rounds,
        tally.failures.len(),
        tally.failures
    );
    eprintln!("converged in {:.1?}", start.elapsed());
    // Faults happened, or the test proved nothing.
    assert!(
        counts.cuts >= 3,
        "too few cuts to mean anything: {counts:?}"
    );
    assert!(counts.delays > 0, "{counts:?}");
}

/// `escale sync` on computer `index` in the background.
fn spawn_sync(world: &World, index: usize) -> Child {
    world
        .escale(index)
        .args(["sync", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills the WebDAV server once `moved` says enough bytes went through
/// while `sync` runs, waits for the sync to end, then starts the server
/// again. Returns whether the interrupted sync failed (it should).
fn kill_server_during(
    servers: &Servers,
    sync: Child,
    what: &str,
    mut moved: impl FnMut() -> bool,
) -> bool {
    let mut sync = sync;
    let mut ended = false;
    wait_until(Duration::from_secs(60), what, || {
        ended = sync.try_wait().unwrap().is_some();
        ended || moved()
    });
    if ended {
        let output = sync.wait_with_output().unwrap();
        panic!(
            "the sync ended before the server was killed: {what}: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    servers.ctl(&["kill-server", "webdav"]);
    let output = sync.wait_with_output().unwrap();
    servers.ctl(&["start-server", "webdav"]);
    // `--json` reports the failure on standard output.
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let outcome = &report["repositories"][0];
    let why = if outcome["error"].is_null() {
        outcome["report"]["problems"].to_string()
    } else {
        outcome["error"].to_string()
    };
    eprintln!(
        "{what}: the interrupted sync exited with {}: {why}",
        output.status
    );
    !output.status.success()
}

#[test]
#[ignore = "needs scripts/relay-servers.sh"]
fn a_server_killed_mid_transfer_and_restarted_converges_with_nothing_left_over() {
    let _alone = WEBDAV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let start = Instant::now();
    let servers = Servers::get();
    let relay = Relay::on_server(&servers, "WEBDAV", "faults-restart");
    // No fault, only a speed limit, so that the kill lands in the middle
    // of the transfer and not after it.
    let proxy = FaultProxy::start(
        relay.server_addr(),
        seed(),
        Faults {
            rate: Some(4 * 1024 * 1024),
            ..Faults::none()
        },
    );
    let world = World::new_on(relay.through(proxy.addr()), &["laptop-a", "laptop-b"], &[]);
    let big = noise(16 * 1024 * 1024, 21);
    world.write(0, "Archives/sauvegarde complète.bin", &big);
    world.write(0, "Archives/lisez-moi.txt", "small file next to it");
    let expected = world.tree(0);

    // A's upload is cut by the server's death.
    let before = proxy.counts().bytes_up;
    let failed_up = kill_server_during(&servers, spawn_sync(&world, 0), "A uploading", || {
        proxy.counts().bytes_up > before + 5 * 1024 * 1024
    });
    assert!(failed_up, "A's sync went through a dead server");
    let mut tally = Tally::default();
    // A alone finishes its upload, so that the next kill lands in B's
    // download.
    let mut uploaded = false;
    for _ in 0..5 {
        tally.syncs += 1;
        match world.try_sync(0) {
            Ok(_) => {
                uploaded = true;
                break;
            }
            Err(why) => tally.failures.push(why),
        }
    }
    assert!(
        uploaded,
        "A never finished its upload: {:?}",
        tally.failures
    );

    // B's download is cut by the server's death.
    let before = proxy.counts().bytes_down;
    let failed_down = kill_server_during(&servers, spawn_sync(&world, 1), "B downloading", || {
        proxy.counts().bytes_down > before + 5 * 1024 * 1024
    });
    assert!(failed_down, "B's sync went through a dead server");
    // An interrupted download never leaves a partial file in the folder.
    let got = world.read(1, "Archives/sauvegarde complète.bin");
    assert!(
        got.is_none() || got.as_deref() == Some(&big[..]),
        "B holds a partial copy ({} of {} bytes)",
        got.map_or(0, |got| got.len()),
        big.len()
    );

    converge(&world, &expected, 6, &mut tally);
    world.assert_same_trees();
    assert_no_temporaries(&world);
    let counts = proxy.counts();
    eprintln!(
        "server killed twice, mid-upload and mid-download; then {} syncs, {} failed: {:?}; \
         proxy: {} connections, {} refused while the server was down; converged in {:.1?}",
        tally.syncs,
        tally.failures.len(),
        tally.failures,
        counts.connections,
        counts.unreachable,
        start.elapsed()
    );
}
