//! The behaviour every relay backend must show, written once and run
//! against each backend.
//!
//! Each check is an `async fn(&Ctx)` working inside its own fresh folder of
//! the relay, so checks never see each other's files and may share one
//! server. [`relay_conformance_tests!`] turns the whole list into one
//! `#[tokio::test]` per check for a backend, given a set-up function:
//!
//! ```ignore
//! async fn setup() -> Option<Fixture> {
//!     // Start or find the server; `None` skips the suite (server absent).
//! }
//! relay_conformance_tests!(setup, many_entries = 5_000);
//! ```
//!
//! Checks panic with a message naming the path and operation, which is
//! the test failure report. They rely only on the [`Relay`] contract and
//! on what [`Capabilities`] promise, never on how a backend stores files.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::{Relay, RelayEntry, RelayError, RelayErrorKind, RelayPath};

/// A backend ready for the suite, with whatever must live as long as it
/// (a temporary folder, a server process).
pub(crate) struct Fixture {
    /// The backend under test.
    pub(crate) relay: Arc<dyn Relay>,
    /// Dropped after the check, not before.
    pub(crate) _guard: Box<dyn Any + Send>,
}

/// What a check works with: the backend and a fresh folder of its own.
pub(crate) struct Ctx {
    /// The backend under test.
    pub(crate) relay: Arc<dyn Relay>,
    /// A folder that exists, is empty, and belongs to this check alone.
    pub(crate) base: RelayPath,
    /// How many files the big-folder check writes: network servers page
    /// their listings (S3 at 1,000), so their suites ask for more.
    pub(crate) many_entries: usize,
}

impl Ctx {
    /// Creates a fresh, randomly named folder at the relay root.
    pub(crate) async fn new(relay: Arc<dyn Relay>, many_entries: usize) -> Ctx {
        let name = format!(
            "conformance-{}",
            hex::encode(crate::ids::random_bytes::<6>())
        );
        let base = RelayPath::root().join(&name).unwrap();
        relay
            .create_dir(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot create the check's folder {base}: {e}"));
        Ctx {
            relay,
            base,
            many_entries,
        }
    }

    /// `relative` (slash-separated) inside the check's folder.
    fn path(&self, relative: &str) -> RelayPath {
        RelayPath::new(&format!("{}/{relative}", self.base.as_str())).unwrap()
    }

    /// Writes or panics naming the path.
    async fn write(&self, path: &RelayPath, data: impl Into<Bytes>) {
        self.relay
            .write(path, data.into())
            .await
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    /// Reads or panics naming the path and range.
    async fn read(&self, path: &RelayPath, range: Option<Range<u64>>) -> Bytes {
        self.relay
            .read(path, range.clone())
            .await
            .unwrap_or_else(|e| panic!("read {path} {range:?}: {e}"))
    }

    /// Creates a folder or panics naming it.
    async fn mkdir(&self, path: &RelayPath) {
        self.relay
            .create_dir(path)
            .await
            .unwrap_or_else(|e| panic!("create_dir {path}: {e}"));
    }

    /// The listing of `dir` by name, to compare without caring for order.
    async fn list(&self, dir: &RelayPath) -> BTreeMap<String, RelayEntry> {
        let entries = self
            .relay
            .list(dir)
            .await
            .unwrap_or_else(|e| panic!("list {dir}: {e}"));
        let count = entries.len();
        let by_name: BTreeMap<_, _> = entries.into_iter().map(|e| (e.name.clone(), e)).collect();
        assert_eq!(by_name.len(), count, "list {dir} repeats a name");
        by_name
    }

    /// Asserts that `dir` holds exactly these files (name, size) and folders.
    async fn assert_listing(&self, dir: &RelayPath, files: &[(&str, u64)], dirs: &[&str]) {
        let listed = self.list(dir).await;
        let names: Vec<&str> = listed.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = files
            .iter()
            .map(|(n, _)| *n)
            .chain(dirs.iter().copied())
            .collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "list {dir}");
        let sizes = self.relay.capabilities().list_sizes;
        for (name, size) in files {
            let entry = &listed[*name];
            assert!(!entry.is_dir, "list {dir}: file {name} listed as a folder");
            if sizes {
                assert_eq!(entry.size, Some(*size), "list {dir}: size of {name}");
            }
        }
        for name in dirs {
            assert!(
                listed[*name].is_dir,
                "list {dir}: folder {name} listed as a file"
            );
        }
    }
}

/// Asserts that `result` failed with `kind` and that the message names
/// `path`, since messages reach people as they are.
fn assert_fails<T: Debug>(
    result: Result<T, RelayError>,
    kind: RelayErrorKind,
    path: &RelayPath,
    op: &str,
) {
    match result {
        Ok(value) => panic!("{op} {path} succeeded ({value:?}) but should fail with {kind}"),
        Err(err) => {
            assert_eq!(err.kind(), kind, "{op} {path}: {err}");
            assert!(
                err.to_string().contains(path.file_name()),
                "{op} {path}: the message does not name the path: {err}"
            );
        }
    }
}

/// Bytes that never repeat with a short period, so that an offset error in
/// a ranged read or a reordered chunk cannot go unnoticed.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64: cheap and good enough to tell bytes apart.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Files and folders are listed with their kind and, when the backend
/// lists sizes, their sizes; an empty folder lists as empty.
pub(crate) async fn list_files_and_folders(ctx: &Ctx) {
    assert!(!ctx.relay.describe().is_empty(), "describe() is empty");
    ctx.assert_listing(&ctx.base, &[], &[]).await;

    ctx.write(&ctx.path("a.txt"), &b"abc"[..]).await;
    ctx.write(&ctx.path("b.bin"), pattern(1000, 1)).await;
    ctx.mkdir(&ctx.path("sub")).await;
    ctx.mkdir(&ctx.path("empty")).await;
    ctx.write(&ctx.path("sub/inner.txt"), &b"inner"[..]).await;

    ctx.assert_listing(
        &ctx.base,
        &[("a.txt", 3), ("b.bin", 1000)],
        &["sub", "empty"],
    )
    .await;
    ctx.assert_listing(&ctx.path("sub"), &[("inner.txt", 5)], &[])
        .await;
    ctx.assert_listing(&ctx.path("empty"), &[], &[]).await;

    let root = ctx.list(&RelayPath::root()).await;
    let base = root
        .get(ctx.base.file_name())
        .unwrap_or_else(|| panic!("the root's listing lacks {}", ctx.base));
    assert!(base.is_dir);
}

/// Whole reads and ranges: inside, straddling the end (clamped), past the
/// end and empty (no bytes, no error).
pub(crate) async fn read_whole_and_ranges(ctx: &Ctx) {
    let path = ctx.path("data.bin");
    let data = pattern(1000, 2);
    ctx.write(&path, data.clone()).await;

    assert_eq!(ctx.read(&path, None).await, data);
    let cases: [(Range<u64>, Range<usize>); 7] = [
        (0..1000, 0..1000),
        (10..20, 10..20),
        (0..1, 0..1),
        (999..1000, 999..1000),
        (990..2000, 990..1000),
        (1000..1010, 1000..1000),
        (2000..3000, 1000..1000),
    ];
    for (range, expected) in cases {
        assert_eq!(
            ctx.read(&path, Some(range.clone())).await,
            data[expected],
            "read {path} {range:?}"
        );
    }
    assert!(
        ctx.read(&path, Some(5..5)).await.is_empty(),
        "an empty range gave bytes"
    );
}

/// A write creates the file; a second replaces it entirely, longer or
/// shorter, with nothing of the old content left.
pub(crate) async fn write_new_and_overwrite(ctx: &Ctx) {
    let path = ctx.path("f.bin");
    let first = pattern(3000, 3);
    ctx.write(&path, first.clone()).await;
    assert_eq!(ctx.read(&path, None).await, first);

    let longer = pattern(5000, 4);
    ctx.write(&path, longer.clone()).await;
    assert_eq!(ctx.read(&path, None).await, longer);

    let shorter = b"short".to_vec();
    ctx.write(&path, shorter.clone()).await;
    assert_eq!(
        ctx.read(&path, None).await,
        shorter,
        "old bytes survived a shorter overwrite"
    );
    assert!(
        ctx.read(&path, Some(5..100)).await.is_empty(),
        "old bytes readable past the end"
    );
    ctx.assert_listing(&ctx.base, &[("f.bin", 5)], &[]).await;
}

/// A deleted file is gone from reads and listings; deleting it again is
/// `NotFound`, which callers treat as done.
pub(crate) async fn delete_removes_the_file(ctx: &Ctx) {
    let keep = ctx.path("keep.txt");
    let gone = ctx.path("gone.txt");
    ctx.write(&keep, &b"keep"[..]).await;
    ctx.write(&gone, &b"gone"[..]).await;

    ctx.relay
        .delete(&gone)
        .await
        .unwrap_or_else(|e| panic!("delete {gone}: {e}"));
    assert_fails(
        ctx.relay.read(&gone, None).await,
        RelayErrorKind::NotFound,
        &gone,
        "read",
    );
    ctx.assert_listing(&ctx.base, &[("keep.txt", 4)], &[]).await;
    assert_fails(
        ctx.relay.delete(&gone).await,
        RelayErrorKind::NotFound,
        &gone,
        "delete",
    );
    assert_eq!(ctx.read(&keep, None).await, &b"keep"[..]);
}

/// Reading, listing or deleting what does not exist is `NotFound`, with
/// a message naming it; none of it is retryable.
pub(crate) async fn missing_paths_are_not_found(ctx: &Ctx) {
    let file = ctx.path("no-such-file.bin");
    let dir = ctx.path("no-such-folder");
    let deep = ctx.path("no-such-folder/inner.bin");
    assert_fails(
        ctx.relay.read(&file, None).await,
        RelayErrorKind::NotFound,
        &file,
        "read",
    );
    assert_fails(
        ctx.relay.read(&file, Some(0..10)).await,
        RelayErrorKind::NotFound,
        &file,
        "ranged read",
    );
    assert_fails(
        ctx.relay.read(&deep, None).await,
        RelayErrorKind::NotFound,
        &deep,
        "read",
    );
    assert_fails(
        ctx.relay.list(&dir).await,
        RelayErrorKind::NotFound,
        &dir,
        "list",
    );
    assert_fails(
        ctx.relay.delete(&file).await,
        RelayErrorKind::NotFound,
        &file,
        "delete",
    );
    assert_fails(
        ctx.relay.delete(&deep).await,
        RelayErrorKind::NotFound,
        &deep,
        "delete",
    );
    assert!(
        !ctx.relay
            .read(&file, None)
            .await
            .unwrap_err()
            .is_retryable()
    );
}

/// A write into a folder that does not exist fails with `NotFound` and
/// creates nothing: backends must not make the folder on the way.
pub(crate) async fn write_into_missing_folder_is_not_found(ctx: &Ctx) {
    let path = ctx.path("missing/parent/file.bin");
    let result = ctx.relay.write(&path, Bytes::from_static(b"x")).await;
    match result {
        Ok(()) => panic!("write {path} succeeded although its folder does not exist"),
        Err(err) => assert_eq!(err.kind(), RelayErrorKind::NotFound, "write {path}: {err}"),
    }
    ctx.assert_listing(&ctx.base, &[], &[]).await;
}

/// `create_dir` makes every missing parent, succeeds on a folder that
/// exists, and on the root.
pub(crate) async fn create_dir_nested_and_idempotent(ctx: &Ctx) {
    let deep = ctx.path("a/b/c");
    ctx.mkdir(&deep).await;
    ctx.mkdir(&deep).await;
    ctx.mkdir(&ctx.path("a/b")).await;
    ctx.mkdir(&RelayPath::root()).await;
    ctx.assert_listing(&ctx.base, &[], &["a"]).await;
    ctx.assert_listing(&ctx.path("a"), &[], &["b"]).await;
    ctx.assert_listing(&ctx.path("a/b"), &[], &["c"]).await;
    ctx.assert_listing(&deep, &[], &[]).await;

    // A folder with content stays as it is.
    ctx.write(&ctx.path("a/b/c/f"), &b"f"[..]).await;
    ctx.mkdir(&deep).await;
    ctx.assert_listing(&deep, &[("f", 1)], &[]).await;
}

/// Names with spaces, accents and symbols survive every operation and are
/// listed exactly as written.
pub(crate) async fn names_with_spaces_and_unicode(ctx: &Ctx) {
    let dir = ctx.path("été 2026");
    let file = ctx.path("été 2026/résumé ✓.txt");
    let odd = ctx.path("été 2026/a+b=c&d%20e #1 (copy) [x] ~$.txt");
    ctx.mkdir(&dir).await;
    ctx.write(&file, "naïve café".as_bytes().to_vec()).await;
    ctx.write(&odd, &b"odd"[..]).await;

    ctx.assert_listing(&ctx.base, &[], &["été 2026"]).await;
    ctx.assert_listing(
        &dir,
        &[
            ("résumé ✓.txt", "naïve café".len() as u64),
            ("a+b=c&d%20e #1 (copy) [x] ~$.txt", 3),
        ],
        &[],
    )
    .await;
    assert_eq!(ctx.read(&file, None).await, "naïve café".as_bytes());
    assert_eq!(ctx.read(&file, Some(0..5)).await, &b"na\xc3\xafv"[..]);
    assert_eq!(ctx.read(&odd, None).await, &b"odd"[..]);
    ctx.relay
        .delete(&file)
        .await
        .unwrap_or_else(|e| panic!("delete {file}: {e}"));
    ctx.assert_listing(&dir, &[("a+b=c&d%20e #1 (copy) [x] ~$.txt", 3)], &[])
        .await;
}

/// An empty file is a file: written, listed with size 0, read as empty.
pub(crate) async fn zero_byte_file(ctx: &Ctx) {
    let path = ctx.path("empty.bin");
    ctx.write(&path, Bytes::new()).await;
    ctx.assert_listing(&ctx.base, &[("empty.bin", 0)], &[])
        .await;
    assert!(ctx.read(&path, None).await.is_empty());
    assert!(ctx.read(&path, Some(0..10)).await.is_empty());

    // Emptying a file that had content.
    ctx.write(&path, &b"content"[..]).await;
    ctx.write(&path, Bytes::new()).await;
    assert!(ctx.read(&path, None).await.is_empty());
}

/// A 5 MiB file (a typical object) round-trips byte for byte, and ranges
/// deep inside it are exact.
pub(crate) async fn large_file_round_trip(ctx: &Ctx) {
    const LEN: usize = 5 * 1024 * 1024 + 123;
    if ctx
        .relay
        .capabilities()
        .max_file_size
        .is_some_and(|max| max < LEN as u64)
    {
        return;
    }
    let path = ctx.path("large.bin");
    let data = pattern(LEN, 5);
    ctx.write(&path, data.clone()).await;
    let back = ctx.read(&path, None).await;
    assert_eq!(back.len(), LEN, "read {path}: length");
    assert!(back == data, "read {path}: content differs");

    let start = 4 * 1024 * 1024 + 7;
    assert!(
        ctx.read(&path, Some(start as u64..start as u64 + 70_000))
            .await
            == data[start..start + 70_000],
        "ranged read deep inside {path}"
    );
    assert!(
        ctx.read(&path, Some(LEN as u64 - 10..LEN as u64 + 10))
            .await
            == data[LEN - 10..],
        "ranged read at the end of {path}"
    );
    ctx.assert_listing(&ctx.base, &[("large.bin", LEN as u64)], &[])
        .await;
}

/// A 100 MB file, far past any object Escale writes, round-trips byte for
/// byte: no backend buffers it into a shorter upload or a cut download.
pub(crate) async fn hundred_megabyte_file_round_trip(ctx: &Ctx) {
    const LEN: usize = 100 * 1000 * 1000;
    // One at a time across all suites: each holds 200 MB of memory and puts
    // 100 MB or more (a server's temporary copy) on the test machine's disk.
    static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _turn = ONE_AT_A_TIME
        .acquire()
        .await
        .expect("the semaphore is never closed");
    if ctx
        .relay
        .capabilities()
        .max_file_size
        .is_some_and(|max| max < LEN as u64)
    {
        return;
    }
    let path = ctx.path("hundred.bin");
    let data = Bytes::from(pattern(LEN, 100));
    ctx.write(&path, data.clone()).await;
    ctx.assert_listing(&ctx.base, &[("hundred.bin", LEN as u64)], &[])
        .await;
    let back = ctx.read(&path, None).await;
    assert_eq!(back.len(), LEN, "read {path}: length");
    assert!(back == data, "read {path}: content differs");
    drop(back);
    let start = LEN - 1_000_003;
    assert!(
        ctx.read(&path, Some(start as u64..LEN as u64)).await == data[start..],
        "ranged read at the end of {path}"
    );
    ctx.relay
        .delete(&path)
        .await
        .unwrap_or_else(|e| panic!("delete {path}: {e}"));
}

/// A folder of many files is listed completely: backends must follow the
/// server's paging to the end.
pub(crate) async fn many_entries_listed_completely(ctx: &Ctx) {
    const IN_FLIGHT: usize = 16;
    let dir = ctx.path("many");
    ctx.mkdir(&dir).await;
    let names: Vec<String> = (0..ctx.many_entries)
        .map(|i| format!("entry-{i:05}"))
        .collect();

    let mut tasks = tokio::task::JoinSet::new();
    for name in &names {
        if tasks.len() >= IN_FLIGHT {
            tasks.join_next().await.unwrap().unwrap();
        }
        let relay = Arc::clone(&ctx.relay);
        let path = dir.join(name).unwrap();
        let data = Bytes::from(name.clone().into_bytes());
        tasks.spawn(async move {
            // A busy server may refuse one transfer for a moment (an FTP
            // server out of passive ports); the engine retries such
            // errors, so one retry is allowed here, and only for them.
            match relay.write(&path, data.clone()).await {
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    relay
                        .write(&path, data)
                        .await
                        .unwrap_or_else(|e| panic!("write {path}, retried: {e}"));
                }
                other => other.unwrap_or_else(|e| panic!("write {path}: {e}")),
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), n.len() as u64)).collect();
    ctx.assert_listing(&dir, &files, &[]).await;
}

/// An empty folder is removed; one that holds a file is left whole with
/// an error; a missing one is not found; the relay folder stays.
pub(crate) async fn remove_dir_only_takes_empty_folders(ctx: &Ctx) {
    let full = ctx.path("full");
    let empty = ctx.path("full/empty");
    ctx.mkdir(&empty).await;
    ctx.write(&ctx.path("full/kept.txt"), &b"kept"[..]).await;

    ctx.relay
        .remove_dir(&empty)
        .await
        .unwrap_or_else(|e| panic!("remove_dir {empty}: {e}"));
    ctx.assert_listing(&full, &[("kept.txt", 4)], &[]).await;

    let err = ctx.relay.remove_dir(&full).await.unwrap_err();
    assert_eq!(
        err.kind(),
        RelayErrorKind::InvalidPath,
        "remove_dir {full}: {err}"
    );
    assert_eq!(
        &ctx.read(&ctx.path("full/kept.txt"), None).await[..],
        b"kept"
    );

    assert_fails(
        ctx.relay.remove_dir(&ctx.path("never")).await,
        RelayErrorKind::NotFound,
        &ctx.path("never"),
        "remove_dir",
    );
    let err = ctx.relay.remove_dir(&RelayPath::root()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        RelayErrorKind::InvalidPath,
        "remove_dir /: {err}"
    );
}

/// Generates one `#[tokio::test]` per conformance check for a backend.
///
/// `$setup` is an `async fn() -> Option<Fixture>`; `None` skips the checks
/// (the backend's server is not available here), so suites for network
/// backends can live beside the code and run wherever the servers do.
/// Suites that need outside servers add `ignore = "reason"`, so that a
/// plain `cargo test` reports them as ignored rather than as passed; they
/// run with `cargo test -- --ignored`.
macro_rules! relay_conformance_tests {
    ($setup:path, many_entries = $many:expr) => {
        $crate::relay::conformance::relay_conformance_tests!(@all [] $setup, $many);
    };
    ($setup:path, many_entries = $many:expr, ignore = $reason:literal) => {
        $crate::relay::conformance::relay_conformance_tests!(
            @all [ignore = $reason] $setup, $many
        );
    };
    (@all [$($attr:meta)*] $setup:path, $many:expr) => {
        $crate::relay::conformance::relay_conformance_tests!(
            @checks [$($attr)*] $setup, $many;
            list_files_and_folders,
            read_whole_and_ranges,
            write_new_and_overwrite,
            delete_removes_the_file,
            missing_paths_are_not_found,
            write_into_missing_folder_is_not_found,
            create_dir_nested_and_idempotent,
            remove_dir_only_takes_empty_folders,
            hundred_megabyte_file_round_trip,
            names_with_spaces_and_unicode,
            zero_byte_file,
            large_file_round_trip,
            many_entries_listed_completely,
        );
    };
    (@checks $attrs:tt $setup:path, $many:expr; $($check:ident),+ $(,)?) => {
        $(
            $crate::relay::conformance::relay_conformance_tests!(
                @one $attrs $setup, $many, $check
            );
        )+
    };
    (@one [$($attr:meta)*] $setup:path, $many:expr, $check:ident) => {
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some(fixture) = $setup().await else {
                eprintln!("skipped: the backend for {} is not available", stringify!($setup));
                return;
            };
            let ctx = $crate::relay::conformance::Ctx::new(
                ::std::sync::Arc::clone(&fixture.relay),
                $many,
            )
            .await;
            $crate::relay::conformance::$check(&ctx).await;
            drop(ctx);
            drop(fixture);
        }
    };
}
pub(crate) use relay_conformance_tests;

/// The servers of `scripts/relay-servers.sh`, found through the
/// `servers.env` file that `ESCALE_RELAY_SERVERS_ENV` names, for the
/// suites of the network backends.
pub(crate) mod servers {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::Fixture;
    use crate::relay::{RelayUrl, Secrets, open_with};

    /// Where `scripts/relay-servers.sh run` puts the path of servers.env.
    const SERVERS_ENV: &str = "ESCALE_RELAY_SERVERS_ENV";

    /// The variables of servers.env, or `None` (said aloud) when no
    /// servers are running.
    pub(crate) fn vars() -> Option<HashMap<String, String>> {
        let Some(file) = std::env::var_os(SERVERS_ENV) else {
            eprintln!(
                "skipped: {SERVERS_ENV} is not set; run the network relay tests with \
                 scripts/relay-servers.sh run /tmp/relays -- cargo test -p escale-core --lib -- \
                 --ignored relay::"
            );
            return None;
        };
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {SERVERS_ENV}={file:?}: {e}"));
        Some(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The secrets the harness gives server `name` (the capitalised name
    /// of servers.env: `WEBDAV`, `FTP`, `S3`…).
    pub(crate) fn secrets(vars: &HashMap<String, String>, name: &str) -> Secrets {
        let get = |key: &str| -> Option<String> { vars.get(key).cloned() };
        Secrets {
            password: get(&format!("{name}_PASSWORD")),
            s3_keys: get("S3_ACCESS_KEY").zip(get("S3_SECRET_KEY")),
            ca_file: get("CA_FILE").map(Into::into),
            ..Secrets::default()
        }
    }

    /// The backend on server `name`, or `None`, said aloud, when no
    /// servers are running.
    pub(crate) async fn fixture(name: &str) -> Option<Fixture> {
        let vars = vars()?;
        let url = vars
            .get(&format!("{name}_URL"))
            .unwrap_or_else(|| panic!("servers.env has no {name}_URL: is {name} running?"));
        let url = RelayUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let relay =
            open_with(&url, &secrets(&vars, name)).unwrap_or_else(|e| panic!("open {url}: {e}"));
        Some(Fixture {
            relay: Arc::clone(&relay),
            _guard: Box::new(()),
        })
    }
}

/// Declares the conformance suite against server `$name` of the harness
/// (see [`servers`]), in a module of its own, ignored by a plain
/// `cargo test`.
macro_rules! server_suite {
    ($module:ident, $name:literal, many_entries = $many:expr) => {
        mod $module {
            async fn setup() -> Option<$crate::relay::conformance::Fixture> {
                $crate::relay::conformance::servers::fixture($name).await
            }
            $crate::relay::conformance::relay_conformance_tests!(
                setup,
                many_entries = $many,
                ignore = "needs scripts/relay-servers.sh"
            );
        }
    };
}
pub(crate) use server_suite;

/// A full disk on the server, on every server whose storage is a folder
/// here: a 256 KiB file system is mounted over a folder of the relay and a
/// 1 MB file is written into it. A server that says its storage is full
/// (Apache's 507) must give [`RelayErrorKind::StorageFull`]; the others
/// answer with a bare failure (nginx 500, `rclone serve webdav` 405,
/// vsftpd and pure-ftpd 451 "failure writing"), which must stay retryable
/// (space comes back as receivers take their data) and never count as
/// stored. Escale leaves nothing behind. SFTP has the same check in its
/// module (OpenSSH is asked for the free space).
pub(crate) mod full_disk {
    use std::path::PathBuf;

    use bytes::Bytes;

    use super::servers;
    use crate::relay::{RelayErrorKind, RelayPath};

    /// A small test file system mounted at the path, unmounted however the
    /// test ends.
    pub(crate) struct Mounted(PathBuf);

    impl Mounted {
        /// Mounts a 256 KiB file system at `path`, writable by every user
        /// (the servers run as their own). `None`, saying so, where mounting
        /// needs a root this run lacks: the caller skips its check.
        pub(crate) fn tiny(path: PathBuf) -> Option<Self> {
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=256k,mode=0777", "tmpfs"])
                .arg(&path)
                .status();
            if !mounted.is_ok_and(|status| status.success()) {
                eprintln!("skipped: cannot mount a small file system here (needs root)");
                return None;
            }
            Some(Mounted(path))
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            // Lazily: an FTP session may still stand in the folder.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_full_disk_is_storage_full_where_the_server_says_so_and_retryable_elsewhere() {
        let Some(vars) = servers::vars() else { return };
        let mut failures = Vec::new();
        for (name, says_full) in [
            ("APACHE", true),
            ("WEBDAV", false),
            ("WEBDAVS", false),
            ("RCLONE_WEBDAV", false),
            ("FTP", false),
            ("FTPS", false),
            ("PUREFTPD", false),
        ] {
            let fixture = servers::fixture(name).await.unwrap();
            let relay = fixture.relay;
            let dir = RelayPath::new(&format!(
                "full-{}",
                hex::encode(crate::ids::random_bytes::<4>())
            ))
            .unwrap();
            relay.create_dir(&dir).await.unwrap();
            let local = PathBuf::from(&vars[&format!("{name}_DATA")])
                .join("relay")
                .join(dir.as_str().trim_start_matches('/'));
            let Some(_guard) = Mounted::tiny(local) else {
                return;
            };
            let big = dir.join("big").unwrap();
            match relay.write(&big, Bytes::from(vec![7; 1024 * 1024])).await {
                Ok(()) => failures.push(format!("{name}: a 1 MB write fit in 256 KiB")),
                Err(err) if !err.is_retryable() => {
                    failures.push(format!("{name}: not retryable: {err}"));
                }
                Err(err) if says_full && err.kind() != RelayErrorKind::StorageFull => {
                    failures.push(format!("{name}: {:?} instead of full: {err}", err.kind()));
                }
                Err(_) => {}
            }
            // nginx leaves its own temporary file (`big.0000000002`) when
            // its disk fills: the server's leftover, not Escale's.
            let nginx = name.starts_with("WEBDAV");
            match relay.list(&dir).await {
                Ok(left) if left.is_empty() || nginx => {}
                other => failures.push(format!("{name}: left behind: {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
