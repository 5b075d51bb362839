//! Parallel transfers: how many object writes and reads are in flight, and
//! that a journal batch never reaches the relay before the objects it names.
//!
//! The relay is the real file relay, wrapped to slow its object writes
//! down (so that overlapping writes are seen) and to record what it did.

use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::format;
use crate::ids::ObjectId;
use crate::relay::{
    Capabilities, FileRelay, Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath,
};
use crate::repository::open_session;
use crate::sync::relay_io::RelayIo;
use crate::{ConfigDir, NewRepository, Passphrase, SyncReport};

const PASSPHRASE: &str = "transfer test passphrase";

/// What the wrapped relay saw.
#[derive(Debug, Default)]
struct Log {
    /// Object writes under way now.
    objects_in_flight: usize,
    /// The most object writes ever under way at once.
    max_objects_in_flight: usize,
    /// Object reads under way now.
    reads_in_flight: usize,
    /// The most object reads ever under way at once.
    max_reads_in_flight: usize,
    /// Every write that completed, in order.
    written: Vec<String>,
    /// For each journal batch write: the writes completed when it started.
    batches: Vec<(String, HashSet<String>)>,
}

/// A [`FileRelay`] whose object writes and reads take `delay` longer, recording
/// concurrency and order; an object write whose number (from 1) is
/// `fail_object` fails for good.
#[derive(Debug)]
struct Recording {
    inner: FileRelay,
    delay: Duration,
    fail_object: Option<usize>,
    objects_started: Mutex<usize>,
    log: Arc<Mutex<Log>>,
}

fn is_object(path: &RelayPath) -> bool {
    path.as_str().contains("/objects/")
}

fn is_batch(path: &RelayPath) -> bool {
    path.as_str().contains("/journal/")
}

#[async_trait::async_trait]
impl Relay for Recording {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(&self, dir: &RelayPath) -> Result<Vec<RelayEntry>, RelayError> {
        self.inner.list(dir).await
    }
    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Result<Bytes, RelayError> {
        if !is_object(path) {
            return self.inner.read(path, range).await;
        }
        {
            let mut log = self.log.lock().unwrap();
            log.reads_in_flight += 1;
            log.max_reads_in_flight = log.max_reads_in_flight.max(log.reads_in_flight);
        }
        tokio::time::sleep(self.delay).await;
        let outcome = self.inner.read(path, range).await;
        self.log.lock().unwrap().reads_in_flight -= 1;
        outcome
    }
    async fn write(&self, path: &RelayPath, data: Bytes) -> Result<(), RelayError> {
        let object = is_object(path);
        if object {
            let number = {
                let mut started = self.objects_started.lock().unwrap();
                *started += 1;
                *started
            };
            {
                let mut log = self.log.lock().unwrap();
                log.objects_in_flight += 1;
                log.max_objects_in_flight = log.max_objects_in_flight.max(log.objects_in_flight);
            }
            tokio::time::sleep(self.delay).await;
            if self.fail_object == Some(number) {
                self.log.lock().unwrap().objects_in_flight -= 1;
                return Err(RelayError::new(
                    RelayErrorKind::PermissionDenied,
                    format!("test refuses object write {number}"),
                ));
            }
        } else if is_batch(path) {
            let mut log = self.log.lock().unwrap();
            let done = log.written.iter().cloned().collect();
            log.batches.push((path.as_str().to_owned(), done));
        }
        let outcome = self.inner.write(path, data).await;
        let mut log = self.log.lock().unwrap();
        if object {
            log.objects_in_flight -= 1;
        }
        if outcome.is_ok() {
            log.written.push(path.as_str().to_owned());
        }
        outcome
    }
    async fn delete(&self, path: &RelayPath) -> Result<(), RelayError> {
        self.inner.delete(path).await
    }
    async fn create_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        self.inner.create_dir(path).await
    }
    async fn remove_dir(&self, path: &RelayPath) -> Result<(), RelayError> {
        self.inner.remove_dir(path).await
    }
    async fn clear_leftovers(&self, dir: &RelayPath) -> Result<(), RelayError> {
        self.inner.clear_leftovers(dir).await
    }
}

/// A repository on a file relay, its folder filled with `files` files of
/// `size` random bytes each.
struct Setup {
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    relay_dir: PathBuf,
    config: ConfigDir,
    folder: PathBuf,
}

fn set_up(files: usize, size: usize) -> Setup {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    fs::create_dir(&relay_dir).unwrap();
    let folder = dir.path().join("folder");
    let config = ConfigDir::new(dir.path().join("config"));
    runtime
        .block_on(crate::init(
            &config,
            NewRepository {
                name: "r".into(),
                folder: folder.clone(),
                relay: format!("file://{}", relay_dir.display()),
                client_name: Some("sender".into()),
                mode: crate::SyncMode::default(),
                quota: None,
                access: crate::RelayAccess::default(),
            },
            Passphrase::new(PASSPHRASE.into()),
        ))
        .unwrap();
    for index in 0..files {
        // Random, so that no chunk repeats and every byte is uploaded.
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            data.extend_from_slice(&crate::ids::random_bytes::<32>());
        }
        data.truncate(size);
        fs::write(folder.join(format!("file-{index:03}.bin")), data).unwrap();
    }
    Setup {
        runtime,
        _dir: dir,
        relay_dir,
        config,
        folder,
    }
}

/// A second computer joined to `setup`'s repository: its settings folder
/// and its synced folder.
fn join_second(setup: &Setup) -> (ConfigDir, PathBuf) {
    let root = setup.relay_dir.parent().unwrap();
    let config = ConfigDir::new(root.join("config-b"));
    let folder = root.join("folder-b");
    setup
        .runtime
        .block_on(crate::join(
            &config,
            NewRepository {
                name: "r".into(),
                folder: folder.clone(),
                relay: format!("file://{}", setup.relay_dir.display()),
                client_name: Some("receiver".into()),
                mode: crate::SyncMode::default(),
                quota: None,
                access: crate::RelayAccess::default(),
            },
            Passphrase::new(PASSPHRASE.into()),
        ))
        .unwrap();
    (config, folder)
}

/// What one cycle through a [`Recording`] relay did.
struct Outcome {
    result: crate::Result<SyncReport>,
    log: Log,
    elapsed: Duration,
    /// Every journal batch on the relay, opened.
    batches: Vec<(String, format::Batch)>,
    /// The path of every object on the relay that a batch may name.
    object_path: Box<dyn Fn(&ObjectId) -> String>,
}

fn sync_through_recording(
    setup: &Setup,
    config: &ConfigDir,
    transfers: u8,
    delay: Duration,
    fail_object: Option<usize>,
) -> Outcome {
    let log = Arc::new(Mutex::new(Log::default()));
    let relay = Recording {
        inner: FileRelay::new(setup.relay_dir.clone()).unwrap(),
        delay,
        fail_object,
        objects_started: Mutex::new(0),
        log: Arc::clone(&log),
    };
    let handle = setup.runtime.handle().clone();
    let config = config.clone();
    let relay_dir = setup.relay_dir.clone();
    // The cycle runs on a plain thread, as it does on a blocking one.
    let (result, elapsed, codec, me) = std::thread::spawn(move || {
        let passphrase = Passphrase::new(PASSPHRASE.into());
        let mut session = open_session(&config, "r", &passphrase, handle.clone(), None).unwrap();
        session.relay = RelayIo::new(Arc::new(relay), handle);
        session.settings.transfers = transfers;
        let codec = session.codec.clone();
        let me = session.me;
        let started = Instant::now();
        let result = session.run();
        (result, started.elapsed(), codec, me)
    })
    .join()
    .unwrap();
    let journal = relay_dir.join(format::journal_dir(&me).as_str());
    let mut batches = Vec::new();
    for entry in fs::read_dir(&journal).into_iter().flatten() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(seq) = format::parse_batch_name(&name) else {
            continue;
        };
        let sealed = fs::read(journal.join(&name)).unwrap();
        let batch = codec.open_batch(&me, seq, &sealed).unwrap();
        batches.push((format::batch_path(&me, seq).as_str().to_owned(), batch));
    }
    // The session, and with it the relay, is gone: a transfer still
    // holding the relay would be one that outlived its cycle.
    let log = Arc::try_unwrap(log)
        .unwrap_or_else(|_| panic!("a relay transfer outlived its cycle"))
        .into_inner()
        .unwrap();
    Outcome {
        result,
        log,
        elapsed,
        batches,
        object_path: Box::new(move |id| format::object_path(&me, id).as_str().to_owned()),
    }
}

/// Every object a batch names was completely written before the batch
/// was started.
fn assert_batches_follow_their_objects(outcome: &Outcome) {
    for (path, batch) in &outcome.batches {
        let (_, written_before) = outcome
            .log
            .batches
            .iter()
            .find(|(written, _)| written == path)
            .unwrap_or_else(|| panic!("batch {path} was not written through the test relay"));
        for object in &batch.objects {
            let object_path = (outcome.object_path)(&object.id);
            assert!(
                written_before.contains(&object_path),
                "batch {path} was written before its object {object_path} was on the relay"
            );
        }
    }
}

fn objects_named(outcome: &Outcome) -> usize {
    outcome.batches.iter().map(|(_, b)| b.objects.len()).sum()
}

/// 64 MiB of random data: eight or so objects of at least 8 MiB.
const FILES: usize = 64;
const FILE_SIZE: usize = 1024 * 1024;

#[test]
fn uploads_overlap_up_to_the_transfers_setting_and_batches_wait_for_their_objects() {
    let setup = set_up(FILES, FILE_SIZE);
    let outcome =
        sync_through_recording(&setup, &setup.config, 4, Duration::from_millis(300), None);
    let report = outcome.result.as_ref().expect("the cycle succeeds");
    assert_eq!(report.changes_sent, FILES as u64);
    assert!(
        objects_named(&outcome) >= 6,
        "enough objects to overlap: {}",
        objects_named(&outcome)
    );
    let max = outcome.log.max_objects_in_flight;
    assert!(max > 1, "uploads overlapped: at most {max} at once");
    assert!(max <= 4, "never more than 4 uploads at once, saw {max}");
    assert!(!outcome.batches.is_empty());
    assert_batches_follow_their_objects(&outcome);
}

#[test]
fn one_transfer_uploads_one_object_at_a_time() {
    let setup = set_up(FILES / 2, FILE_SIZE);
    let outcome =
        sync_through_recording(&setup, &setup.config, 1, Duration::from_millis(100), None);
    outcome.result.as_ref().expect("the cycle succeeds");
    assert!(objects_named(&outcome) >= 3);
    assert_eq!(outcome.log.max_objects_in_flight, 1);
    assert_batches_follow_their_objects(&outcome);
}

#[test]
fn a_failed_upload_fails_the_cycle_and_no_batch_names_its_object() {
    let setup = set_up(FILES / 2, FILE_SIZE);
    // The second object fails while the first and the third are in flight.
    let outcome = sync_through_recording(
        &setup,
        &setup.config,
        4,
        Duration::from_millis(200),
        Some(2),
    );
    let error = outcome.result.as_ref().expect_err("the cycle fails");
    assert_eq!(error.code(), "relay_permission_denied", "{error}");
    assert!(
        outcome.batches.iter().all(|(_, b)| b.records.is_empty()),
        "no batch announced files whose data is not all on the relay"
    );
    assert_batches_follow_their_objects(&outcome);
    assert_eq!(
        outcome.log.objects_in_flight, 0,
        "no upload outlived the failed cycle"
    );
}

/// Sends one 24 MiB file from the first computer, then receives it on a
/// second one through the recording relay with `transfers`.
fn receive_big_file(transfers: u8) -> Outcome {
    let setup = set_up(1, 24 * 1024 * 1024);
    let sent = sync_through_recording(&setup, &setup.config, 4, Duration::ZERO, None);
    sent.result.unwrap();
    let (config, folder) = join_second(&setup);
    let outcome =
        sync_through_recording(&setup, &config, transfers, Duration::from_millis(100), None);
    let report = outcome.result.as_ref().expect("the cycle succeeds");
    assert_eq!(report.changes_received, 1);
    assert!(
        fs::read(folder.join("file-000.bin")).unwrap()
            == fs::read(setup.folder.join("file-000.bin")).unwrap(),
        "the received file is the sent one"
    );
    assert_eq!(outcome.log.reads_in_flight, 0, "no read outlived the cycle");
    outcome
}

#[test]
fn chunk_downloads_overlap_up_to_the_transfers_setting() {
    let outcome = receive_big_file(4);
    let max = outcome.log.max_reads_in_flight;
    assert!(max > 1, "downloads overlapped: at most {max} at once");
    assert!(max <= 4, "never more than 4 downloads at once, saw {max}");
}

#[test]
fn one_transfer_downloads_one_chunk_at_a_time() {
    let outcome = receive_big_file(1);
    assert_eq!(outcome.log.max_reads_in_flight, 1);
}

/// Figures for the record, not checks: `cargo test -p escale-core --lib
/// measure_parallel_transfers -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, printed; takes a few seconds"]
fn measure_parallel_transfers() {
    for delay in [20, 200] {
        for transfers in [1, 4] {
            let setup = set_up(40, 1_000_000);
            let outcome = sync_through_recording(
                &setup,
                &setup.config,
                transfers,
                Duration::from_millis(delay),
                None,
            );
            outcome.result.as_ref().unwrap();
            println!(
                "transfers={transfers}: 40 x 1 MB in {:.2} s ({} objects, {delay} ms added per \
                 object write, at most {} in flight)",
                outcome.elapsed.as_secs_f64(),
                objects_named(&outcome),
                outcome.log.max_objects_in_flight
            );
        }
    }
    for transfers in [1, 4] {
        let outcome = receive_big_file(transfers);
        println!(
            "transfers={transfers}: received 24 MiB (one file) in {:.2} s, 100 ms added per \
             chunk read, at most {} reads in flight",
            outcome.elapsed.as_secs_f64(),
            outcome.log.max_reads_in_flight
        );
    }
}
