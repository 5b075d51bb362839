//! Sync policies end to end: modes, include and exclude patterns, per-path
//! access rules, the relay quota, late joiners and absent computers.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use escale_e2e::escale;
use escale_e2e::world::{World, noise};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn rule(path: &str, mode: &str) -> toml::Value {
    let mut table = toml::Table::new();
    table.insert("path".into(), path.into());
    table.insert("mode".into(), mode.into());
    toml::Value::Table(table)
}

/// Object files of every client on the relay.
fn relay_objects(world: &World) -> usize {
    world
        .relay
        .files()
        .keys()
        .filter(|name| name.contains("/objects/"))
        .count()
}

#[test]
fn send_only_sends_and_ignores_what_comes_in() {
    let world = World::new(&["office", "scanner"], &[]);
    world.configure(1, |repo| {
        repo.insert("mode".into(), "send-only".into());
    });
    world.write(0, "from-office.txt", "office");
    world.write(1, "scan-001.pdf", "scan");
    world.sync(0);
    world.sync(1);
    world.sync(0);
    assert_eq!(world.read(0, "scan-001.pdf").unwrap(), b"scan");
    assert_eq!(
        world.read(1, "from-office.txt"),
        None,
        "send-only applied a change"
    );
}

#[test]
fn receive_only_receives_and_keeps_local_edits_as_versions() {
    let world = World::new(&["office", "kiosk"], &[]);
    world.configure(1, |repo| {
        repo.insert("mode".into(), "receive-only".into());
    });
    world.write(0, "menu.txt", "monday");
    world.sync(0);
    world.sync(1);
    assert_eq!(world.read(1, "menu.txt").unwrap(), b"monday");

    // Local changes on the kiosk go nowhere…
    world.write(1, "local-note.txt", "kiosk only");
    world.write(1, "menu.txt", "kiosk edit");
    world.sync(1);
    world.sync(0);
    assert_eq!(world.read(0, "local-note.txt"), None);
    assert_eq!(world.read(0, "menu.txt").unwrap(), b"monday");

    // …and a newer version from elsewhere replaces the local edit, which is
    // kept in the versions folder rather than lost.
    world.write(0, "menu.txt", "tuesday");
    world.sync(0);
    world.sync(1);
    assert_eq!(world.read(1, "menu.txt").unwrap(), b"tuesday");
    let versions = world.path(1, ".escale/versions");
    let kept: Vec<Vec<u8>> = fs::read_dir(&versions)
        .unwrap()
        .flatten()
        .map(|entry| fs::read(entry.path()).unwrap())
        .collect();
    assert!(
        kept.contains(&b"kiosk edit".to_vec()),
        "the local edit was not kept: {kept:?}"
    );
}

#[test]
fn include_and_exclude_patterns_from_the_settings() {
    let world = World::new(&["a", "b"], &[]);
    world.configure(0, |repo| {
        repo.insert("include".into(), vec!["Reports/", "*.pdf"].into());
        repo.insert("exclude".into(), vec!["Reports/drafts/", "*.log"].into());
    });
    for path in [
        "Reports/q3.xlsx",
        "Reports/drafts/q4.xlsx",
        "Reports/debug.log",
        "Other/invoice.pdf",
        "Other/notes.txt",
        "top.txt",
    ] {
        world.write(0, path, path);
    }
    world.sync(0);
    world.sync(1);
    let received: Vec<String> = world.tree(1).into_keys().collect();
    assert_eq!(received, ["Other/invoice.pdf", "Reports/q3.xlsx"]);

    // Excluded on A means A neither sends nor receives it: B's file stays on B.
    world.write(1, "Reports/drafts/from-b.xlsx", "b");
    world.write(1, "server.log", "b");
    world.sync(1);
    world.sync(0);
    assert_eq!(world.read(0, "Reports/drafts/from-b.xlsx"), None);
    assert_eq!(world.read(0, "server.log"), None);
    // And deleting an excluded file on A deletes nothing elsewhere.
    fs::remove_file(world.path(0, "top.txt")).unwrap();
    world.write(1, "top.txt", "b's own");
    world.sync(0);
    world.sync(1);
    assert_eq!(world.read(1, "top.txt").unwrap(), b"b's own");
}

#[test]
fn each_access_rule_kind_does_what_it_says() {
    let world = World::new(&["hq", "branch"], &[]);
    // The branch receives by default; its rules make exceptions, and the
    // last matching rule wins.
    world.configure(1, |repo| {
        repo.insert("mode".into(), "receive-only".into());
        repo.insert(
            "rule".into(),
            toml::Value::Array(vec![
                rule("Scans/", "send-only"),
                rule("Shared/", "send-receive"),
                rule("Private/", "ignore"),
                rule("Shared/hq-only/", "receive-only"),
            ]),
        );
    });
    for path in [
        "Scans/from-hq.pdf",
        "Shared/from-hq.txt",
        "Private/from-hq.txt",
        "Shared/hq-only/from-hq.txt",
        "Forms/from-hq.txt",
    ] {
        world.write(0, path, "hq");
    }
    for path in [
        "Scans/from-branch.pdf",
        "Shared/from-branch.txt",
        "Private/from-branch.txt",
        "Shared/hq-only/from-branch.txt",
        "Forms/from-branch.txt",
    ] {
        world.write(1, path, "branch");
    }
    for index in [0, 1, 0, 1] {
        world.sync(index);
    }
    let at_hq: Vec<String> = world.tree(0).into_keys().collect();
    let at_branch: Vec<String> = world.tree(1).into_keys().collect();
    // send-only and send-receive paths of the branch reach HQ; receive-only
    // and ignored ones do not.
    assert_eq!(
        at_hq,
        [
            "Forms/from-hq.txt",
            "Private/from-hq.txt",
            "Scans/from-branch.pdf",
            "Scans/from-hq.pdf",
            "Shared/from-branch.txt",
            "Shared/from-hq.txt",
            "Shared/hq-only/from-hq.txt",
        ]
    );
    // receive-only and send-receive paths of HQ reach the branch; send-only
    // and ignored ones do not.
    assert_eq!(
        at_branch,
        [
            "Forms/from-branch.txt",
            "Forms/from-hq.txt",
            "Private/from-branch.txt",
            "Scans/from-branch.pdf",
            "Shared/from-branch.txt",
            "Shared/from-hq.txt",
            "Shared/hq-only/from-branch.txt",
            "Shared/hq-only/from-hq.txt",
        ]
    );
}

#[test]
fn an_invalid_pattern_in_the_settings_is_refused_clearly() {
    let world = World::new(&["a"], &[]);
    world.configure(0, |repo| {
        repo.insert("exclude".into(), vec!["{unclosed"].into());
    });
    let output = world.run(0, &["sync"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("{unclosed"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Acceptance: quota 10 MB, 60 MB of new files on A (one of 25 MB): all of
/// it reaches B and C, and the relay never holds more than the quota.
#[test]
fn quota_holds_while_more_than_the_quota_travels_through_the_relay() {
    const QUOTA: u64 = 10_000_000;
    let world = World::new(&["a", "b", "c"], &["--quota", "10MB"]);
    world.write(0, "big/video.mp4", noise(25_000_000, 1));
    for index in 0..7u64 {
        world.write(
            0,
            &format!("docs/part-{index}.bin"),
            noise(5_000_000, 10 + index),
        );
    }
    let expected = world.tree(0);
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 60_000_000);

    // Sample the relay's size all along.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let sampler = {
        let relay = world.relay.clone();
        let (done, peak, samples) = (Arc::clone(&done), Arc::clone(&peak), Arc::clone(&samples));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(relay.size(), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let start = Instant::now();
    let daemons: Vec<_> = (0..3).map(|index| world.daemon(index)).collect();
    // `escale status` shows the running daemon waiting, and for whom; without
    // the passphrase it reads only the live report, which is quick.
    let mut waiting_seen = None;
    world.wait_until(
        Duration::from_secs(300),
        "B and C to receive everything",
        || {
            if waiting_seen.is_none() {
                let output = escale(&world.computers[0].config)
                    .args(["status", "--json"])
                    .output()
                    .unwrap();
                let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                let live = &status["repositories"][0]["live"];
                if live["state"] == "waiting_for_space" {
                    waiting_seen = Some(live["waiting"].clone());
                }
            }
            world.tree(1) == expected && world.tree(2) == expected
        },
    );
    let elapsed = start.elapsed();
    let waiting = waiting_seen.expect("status never showed A waiting for relay space");
    assert_eq!(waiting["quota"], QUOTA, "{waiting}");
    let waiting_for = waiting["waiting_for"].as_array().unwrap();
    assert!(!waiting_for.is_empty(), "{waiting}");
    // Let the last objects be acknowledged and deleted.
    world.wait_until(Duration::from_secs(60), "the relay to empty", || {
        relay_objects(&world) == 0
    });
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    drop(daemons);
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "60 MB through a 10 MB quota in {elapsed:.1?}; relay peak {peak} bytes over {} samples",
        samples.load(Ordering::Relaxed)
    );
    assert!(
        peak <= QUOTA,
        "the relay held {peak} bytes, above the quota"
    );
    assert!(
        peak > QUOTA / 4,
        "the relay was hardly used ({peak}): was the data sent at all?"
    );
    // Nothing stays staged once the files are whole.
    for index in [1, 2] {
        let staging = world.path(index, ".escale/staging");
        let left = fs::read_dir(&staging).map_or(0, |entries| entries.count());
        assert_eq!(left, 0, "staged chunks left on computer {index}");
    }
}

/// Acceptance: D joins after A's data left the relay; it asks again and
/// another computer holding the same version uploads it again.
#[test]
fn a_late_joiner_gets_the_whole_tree_after_the_relay_emptied() {
    let mut world = World::new(&["a", "b", "c"], &[]);
    for index in 0..20u64 {
        world.write(
            0,
            &format!("tree/file-{index}.bin"),
            noise(50_000 + index as usize * 1000, index),
        );
    }
    world.write(0, "tree/empty-folder/.keep", "");
    for index in [0, 1, 2, 0] {
        world.sync(index);
    }
    assert_eq!(
        relay_objects(&world),
        0,
        "A's data should have left the relay"
    );
    let expected = world.tree(0);
    assert_eq!(world.tree(1), expected);

    let d = world.add("d", &[]);
    // D finds the content gone and asks for it: an incomplete sync.
    let output = world.run(d, &["sync"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("asked to send it again"),
        "{}",
        text(&output.stderr)
    );
    assert_ne!(world.tree(d), expected);
    // B holds the same versions but did not make them: it leaves the answer
    // to A for a while, so that D does not get everything twice.
    world.sync(1);
    assert_eq!(relay_objects(&world), 0);
    world.sync(0); // A made them and uploads them again
    world.sync(d);
    assert_eq!(world.tree(d), expected);
    // Once everyone has read A's answer, it leaves the relay too.
    for index in [1, 2, d, 0] {
        world.sync(index);
    }
    assert_eq!(relay_objects(&world), 0);
}

/// Acceptance: C is away longer than the absence limit, so A stops keeping
/// data for it; when C comes back, it catches up by asking again.
#[test]
fn an_absent_computer_stops_holding_data_and_catches_up_when_back() {
    const ABSENT_AFTER: Duration = Duration::from_secs(15);
    let world = World::new(&["a", "b", "c"], &[]);
    world.configure(0, |repo| {
        repo.insert("absent_after".into(), "15s".into());
    });
    for index in [0, 1, 2] {
        world.sync(index);
    }
    let c_last_seen = Instant::now();
    world.write(0, "while-c-was-away.txt", "news");
    world.write(0, "bigger.bin", noise(300_000, 7));
    world.sync(0);
    world.sync(1);
    world.sync(0);
    assert!(
        c_last_seen.elapsed() < ABSENT_AFTER,
        "the machine is too slow for this test's timing"
    );
    assert!(
        relay_objects(&world) > 0,
        "C has not received yet: A keeps its data"
    );

    std::thread::sleep(ABSENT_AFTER.saturating_sub(c_last_seen.elapsed()) + Duration::from_secs(2));
    world.sync(0);
    assert_eq!(
        relay_objects(&world),
        0,
        "C is absent: A no longer keeps data for it"
    );
    let listing = text(&world.run(0, &["clients", "shared"]).stdout);
    assert!(listing.contains("absent"), "{listing}");

    // Back: C finds the data gone and asks for it.
    let output = world.run(2, &["sync"]);
    assert!(!output.status.success());
    world.sync(0); // A uploads it again
    world.sync(2);
    assert_eq!(world.read(2, "while-c-was-away.txt").unwrap(), b"news");
    assert_eq!(world.tree(2), world.tree(0));
}

#[test]
fn a_retired_computer_no_longer_holds_data_and_must_join_again() {
    let world = World::new(&["a", "b", "c"], &[]);
    for index in [0, 1, 2] {
        world.sync(index);
    }
    world.write(0, "report.txt", "for everyone");
    world.sync(0);
    world.sync(1);
    world.sync(0);
    assert!(relay_objects(&world) > 0, "C has not received yet");

    let output = world.run(0, &["clients", "retire", "c"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("retired"));
    world.sync(0);
    assert_eq!(relay_objects(&world), 0, "nobody waits for C any more");

    let output = world.run(2, &["sync"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("retired") && stderr.contains("join"),
        "{stderr}"
    );

    // Retiring oneself or nobody is refused clearly.
    let output = world.run(0, &["clients", "retire", "a"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("itself"),
        "{}",
        text(&output.stderr)
    );
    let output = world.run(0, &["clients", "retire", "nobody"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no other computer"));
}
