//! Escale's performance, side by side with curl and rclone on the same
//! servers in the same run: `scripts/bench.sh` builds the release binary,
//! starts the test relay servers and runs this. See `docs/performance.md`
//! for the scenarios, the targets and the latest results.
//!
//! Settings (environment):
//! - `ESCALE_BENCH_BIG_MB` (1000): the size of the big file.
//! - `ESCALE_BENCH_SMALL_FILES` (10000): how many small files.
//! - `ESCALE_BENCH_TREE_FILES` (100000): the files of the rescanned tree.
//! - `ESCALE_BENCH_RUNS` (3): runs of each timed scenario.
//! - `ESCALE_BENCH_REFERENCE_RUNS` (1): runs of rclone with the small
//!   files, which takes minutes each.
//! - `ESCALE_BENCH_IDLE_MINUTES` (10): the idle-cost window.
//! - `ESCALE_BENCH_ONLY`: a comma-separated subset of `big`, `small`,
//!   `rescan`, `latency`, `idle`.
//! - `ESCALE_BENCH_RESULTS`: where to write the Markdown table.

// A bench reports by panicking when the world is not as it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use escale_e2e::bench::{Goal, Measured, Report, Row, Samples, measure};
use escale_e2e::run_ok;
use escale_e2e::world::noise;

const PASSPHRASE: &str = "bench passphrase, long enough";
const MB: f64 = 1_000_000.0;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the bench through scripts/bench.sh, which starts the servers"
        )
    })
}

/// A relay server of the test scripts, as the bench reaches it.
#[derive(Clone)]
struct Server {
    /// "WebDAV (nginx)".
    label: &'static str,
    /// rclone's backend type.
    rclone_type: &'static str,
    /// Escale's address of the relay root, `webdav://user@host:port/relay`.
    escale_url: String,
    /// curl's address of the same folder.
    curl_url: String,
    user: String,
    password: String,
    port: String,
    /// The folder on disk behind the relay root.
    data: PathBuf,
}

impl Server {
    fn webdav() -> Server {
        Server {
            label: "WebDAV (nginx)",
            rclone_type: "webdav",
            escale_url: env("WEBDAV_URL"),
            curl_url: format!("{}relay", env("WEBDAV_HTTP_URL")),
            user: env("WEBDAV_USER"),
            password: env("WEBDAV_PASSWORD"),
            port: env("WEBDAV_PORT"),
            data: PathBuf::from(env("WEBDAV_DATA")).join("relay"),
        }
    }

    fn ftp() -> Server {
        let port = env("FTP_PORT");
        Server {
            label: "FTP (vsftpd)",
            rclone_type: "ftp",
            escale_url: env("FTP_URL"),
            curl_url: format!("ftp://127.0.0.1:{port}/relay"),
            user: env("FTP_USER"),
            password: env("FTP_PASSWORD"),
            port,
            data: PathBuf::from(env("FTP_DATA")).join("relay"),
        }
    }

    /// Makes folder `name` in the relay root, through the server, as
    /// whoever sets up a relay does before pointing Escale at it.
    fn make_folder(&self, name: &str) {
        let mut command = Bench::curl(self);
        if self.rclone_type == "webdav" {
            command.args(["--request", "MKCOL"]);
        }
        // FTP: listing a missing folder with --ftp-create-dirs makes it.
        command
            .arg(format!("{}/{name}/", self.curl_url))
            .stdout(Stdio::null());
        run_ok(&mut command);
    }

    /// Escale's address of folder `name` in the relay root, made now.
    fn relay(&self, name: &str) -> String {
        self.make_folder(name);
        format!("{}/{name}", self.escale_url)
    }

    /// Removes what a run left under `name` on the server.
    fn clean(&self, name: &str) {
        let path = self.data.join(name);
        if path.exists() {
            fs::remove_dir_all(&path)
                .or_else(|_| fs::remove_file(&path))
                .unwrap();
        }
    }
}

/// The bench's tools and scratch space.
struct Bench {
    escale: PathBuf,
    rclone: PathBuf,
    scratch: tempfile::TempDir,
    report: Report,
    runs: usize,
    /// Runs of the slowest reference (rclone with many small files).
    reference_runs: usize,
}

/// One computer of a benched repository.
struct Computer {
    config: PathBuf,
    folder: PathBuf,
}

impl Bench {
    fn escale(&self, computer: &Computer, password: &str) -> Command {
        let mut command = Command::new(&self.escale);
        command
            .arg("--config-dir")
            .arg(&computer.config)
            .env("ESCALE_NO_KEYRING", "1")
            .env("ESCALE_PASSPHRASE", PASSPHRASE)
            .env("ESCALE_RELAY_PASSWORD", password)
            .env_remove("ESCALE_CONFIG_DIR");
        command
    }

    /// Computer `name` set up (`init` or `join`) on relay `url`.
    fn computer(&self, name: &str, verb: &str, url: &str, password: &str) -> Computer {
        let computer = Computer {
            config: self.scratch.path().join(format!("{name}-config")),
            folder: self.scratch.path().join(format!("{name}-folder")),
        };
        let mut command = self.escale(&computer, password);
        command
            .args([verb, "bench", "--folder"])
            .arg(&computer.folder)
            .args(["--relay", url])
            .stdout(Stdio::null());
        run_ok(&mut command);
        computer
    }

    fn sync(&self, computer: &Computer, password: &str) -> Measured {
        let mut command = self.escale(computer, password);
        command.arg("sync");
        measure(&command, self.scratch.path())
    }

    fn remove(&self, computers: &[Computer]) {
        for computer in computers {
            let _ = fs::remove_dir_all(&computer.config);
            let _ = fs::remove_dir_all(&computer.folder);
        }
    }

    /// rclone with `server` as the remote `bench:`, its own empty config.
    fn rclone(&self, server: &Server) -> Command {
        let obscured = output(
            Command::new(&self.rclone)
                .args(["obscure", &server.password])
                .env("RCLONE_CONFIG", "/dev/null"),
        );
        let mut command = Command::new(&self.rclone);
        // The servers' settings include RCLONE_WEBDAV_URL and the like (of
        // the rclone WebDAV server), which rclone would take as options.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RCLONE_") {
                command.env_remove(key);
            }
        }
        command
            .env("RCLONE_CONFIG", self.scratch.path().join("rclone.conf"))
            .env("RCLONE_CONFIG_BENCH_TYPE", server.rclone_type)
            .env("RCLONE_CONFIG_BENCH_USER", &server.user)
            .env("RCLONE_CONFIG_BENCH_PASS", obscured.trim());
        if server.rclone_type == "webdav" {
            command
                .env("RCLONE_CONFIG_BENCH_URL", &server.curl_url)
                .env("RCLONE_CONFIG_BENCH_VENDOR", "other");
        } else {
            command
                .env("RCLONE_CONFIG_BENCH_HOST", "127.0.0.1")
                .env("RCLONE_CONFIG_BENCH_PORT", &server.port);
        }
        command
    }

    /// rclone's path of `name` inside the relay root.
    fn rclone_path(server: &Server, name: &str) -> String {
        if server.rclone_type == "webdav" {
            format!("bench:{name}")
        } else {
            format!("bench:relay/{name}")
        }
    }

    fn curl(server: &Server) -> Command {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--fail", "--ftp-create-dirs"])
            .arg("--user")
            .arg(format!("{}:{}", server.user, server.password));
        command
    }
}

fn output(command: &mut Command) -> String {
    let output = command.output().expect("the command can be started");
    assert!(output.status.success(), "{command:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Scenario 1 and 6: one big file from A to B, against curl and rclone.
fn big_file(bench: &mut Bench, server: &Server, size: usize, rss: &mut Samples) {
    println!(
        "\n== One {} MB file through {}",
        size / 1_000_000,
        server.label
    );
    let source = bench.scratch.path().join("big-source.bin");
    if !source.exists() {
        fs::write(&source, noise(size, 1)).unwrap();
    }
    let (mut escale, mut curl, mut rclone) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut escale_up = Samples::default();
    let mut escale_down = Samples::default();
    for round in 0..bench.runs {
        // Escale: A sends, B receives; both encrypt and check everything.
        let relay = server.relay(&format!("big-{round}"));
        let a = bench.computer("big-a", "init", &relay, &server.password);
        let b = bench.computer("big-b", "join", &relay, &server.password);
        fs::hard_link(&source, a.folder.join("big.bin")).unwrap();
        let up = bench.sync(&a, &server.password);
        let down = bench.sync(&b, &server.password);
        assert_same_file(&source, &b.folder.join("big.bin"));
        escale_up.push(seconds(up.wall));
        escale_down.push(seconds(down.wall));
        escale.push(seconds(up.wall + down.wall));
        rss.push(up.peak_rss.max(down.peak_rss) as f64 / MB);
        bench.remove(&[a, b]);
        server.clean(&format!("big-{round}"));

        // curl: the same bytes up and down, nothing else.
        let url = format!("{}/curl-{round}/big.bin", server.curl_url);
        let back = bench.scratch.path().join("curl-back.bin");
        let mut up = Bench::curl(server);
        up.arg("--upload-file").arg(&source).arg(&url);
        let mut down = Bench::curl(server);
        down.arg("--output").arg(&back).arg(&url);
        let up = measure(&up, bench.scratch.path());
        let down = measure(&down, bench.scratch.path());
        assert_same_file(&source, &back);
        curl.push(seconds(up.wall + down.wall));
        fs::remove_file(&back).unwrap();
        server.clean(&format!("curl-{round}"));

        // rclone copy up and down.
        let remote = Bench::rclone_path(server, &format!("rclone-{round}"));
        let back = bench.scratch.path().join("rclone-back");
        let mut up = bench.rclone(server);
        up.arg("copy").arg(&source).arg(&remote);
        let mut down = bench.rclone(server);
        down.arg("copy")
            .arg(format!("{remote}/big-source.bin"))
            .arg(&back);
        let up = measure(&up, bench.scratch.path());
        let down = measure(&down, bench.scratch.path());
        assert_same_file(&source, &back.join("big-source.bin"));
        rclone.push(seconds(up.wall + down.wall));
        fs::remove_dir_all(&back).unwrap();
        server.clean(&format!("rclone-{round}"));
    }
    let label = server.label;
    let throughput = |samples: &Samples| {
        let mut out = Samples::default();
        for time in samples.values() {
            out.push(2.0 * size as f64 / MB / time);
        }
        out
    };
    bench.report.add(Row {
        figure: format!("{label}: Escale send (A) s"),
        unit: "s".into(),
        samples: escale_up,
        reference: None,
        goal: None,
    });
    bench.report.add(Row {
        figure: format!("{label}: Escale receive (B) s"),
        unit: "s".into(),
        samples: escale_down,
        reference: None,
        goal: None,
    });
    bench.report.add(Row {
        figure: format!("{label}: Escale up + down s"),
        unit: "s".into(),
        samples: escale.clone(),
        reference: Some((curl.median(), "curl up + down".into())),
        goal: None,
    });
    bench.report.add(Row {
        figure: format!("{label}: rclone up + down s"),
        unit: "s".into(),
        samples: rclone.clone(),
        reference: None,
        goal: None,
    });
    bench.report.add(Row {
        figure: format!("{label}: Escale up + down, MB/s of file"),
        unit: "MB/s".into(),
        samples: throughput(&escale),
        reference: Some((throughput(&curl).median(), "curl".into())),
        goal: None,
    });
    bench.report.add(Row {
        figure: format!("{label}: Escale throughput / curl's"),
        unit: "x".into(),
        samples: ratios(&curl, &escale),
        reference: None,
        goal: Some(Goal::AtLeast(0.8)),
    });
    bench.report.add(Row {
        figure: format!("{label}: rclone time / Escale's"),
        unit: "x".into(),
        samples: ratios(&rclone, &escale),
        reference: None,
        goal: Some(Goal::AtLeast(1.0)),
    });
}

/// Per run, `reference[i] / measured[i]`: pairs measured moments apart
/// share the machine's state of the moment.
fn ratios(reference: &Samples, measured: &Samples) -> Samples {
    let mut out = Samples::default();
    for (reference, measured) in reference.values().iter().zip(measured.values()) {
        out.push(reference / measured);
    }
    out
}

fn assert_same_file(expected: &Path, actual: &Path) {
    let same = Command::new("cmp")
        .arg("--silent")
        .arg(expected)
        .arg(actual)
        .status()
        .unwrap()
        .success();
    assert!(
        same,
        "{} differs from {}",
        actual.display(),
        expected.display()
    );
}

/// Writes `count` files of 1 to 16 KiB in `folder`, 100 per subfolder.
fn small_files(folder: &Path, count: usize) -> u64 {
    let mut total = 0;
    let content = noise(16 * 1024, 2);
    for i in 0..count {
        let dir = folder.join(format!("d{:03}", i / 100));
        fs::create_dir_all(&dir).unwrap();
        // Sizes spread evenly over 1..=16 KiB; contents differ by a prefix.
        let len = 1024 + (i * 7919) % (15 * 1024 + 1);
        let mut bytes = format!("{i}:").into_bytes();
        bytes.extend_from_slice(&content[..len - bytes.len()]);
        fs::write(dir.join(format!("scan-{i:05}.txt")), &bytes).unwrap();
        total += len as u64;
    }
    total
}

/// Scenario 2: many small files, against rclone with 8 transfers.
fn many_small_files(bench: &mut Bench, server: &Server, count: usize) {
    println!("\n== {count} small files through {}", server.label);
    let source = bench.scratch.path().join("small-source");
    let bytes = small_files(&source, count);
    println!("   {:.1} MB in all", bytes as f64 / MB);
    let (mut escale, mut rclone) = (Samples::default(), Samples::default());
    for round in 0..bench.runs {
        let relay = server.relay(&format!("small-{round}"));
        let a = bench.computer("small-a", "init", &relay, &server.password);
        let b = bench.computer("small-b", "join", &relay, &server.password);
        copy_tree(&source, &a.folder);
        let up = bench.sync(&a, &server.password);
        let down = bench.sync(&b, &server.password);
        assert_eq!(count_files(&b.folder), count, "B received every file");
        escale.push(seconds(up.wall + down.wall));
        bench.remove(&[a, b]);
        server.clean(&format!("small-{round}"));
    }
    // rclone takes minutes here, one file after the other: fewer runs.
    for round in 0..bench.reference_runs {
        let remote = Bench::rclone_path(server, &format!("small-rclone-{round}"));
        let back = bench.scratch.path().join("small-back");
        let mut up = bench.rclone(server);
        up.args(["copy", "--transfers", "8"])
            .arg(&source)
            .arg(&remote);
        let mut down = bench.rclone(server);
        down.args(["copy", "--transfers", "8"])
            .arg(&remote)
            .arg(&back);
        let up = measure(&up, bench.scratch.path());
        let down = measure(&down, bench.scratch.path());
        assert_eq!(count_files(&back), count, "rclone brought every file back");
        rclone.push(seconds(up.wall + down.wall));
        fs::remove_dir_all(&back).unwrap();
        server.clean(&format!("small-rclone-{round}"));
    }
    let mut ratio = Samples::default();
    for time in escale.values() {
        ratio.push(rclone.median() / time);
    }
    fs::remove_dir_all(&source).unwrap();
    bench.report.add(Row {
        figure: format!("{}: {count} small files, Escale up + down s", server.label),
        unit: "s".into(),
        samples: escale.clone(),
        reference: Some((rclone.median(), "rclone --transfers 8".into())),
        goal: None,
    });
    bench.report.add(Row {
        figure: format!(
            "{}: {count} small files, rclone time / Escale's",
            server.label
        ),
        unit: "x".into(),
        samples: ratio,
        reference: None,
        goal: Some(Goal::AtLeast(5.0)),
    });
}

/// Hard links every file of `from` into `to`, folders made as needed.
fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::hard_link(entry.path(), &target).unwrap();
        }
    }
}

/// The files under `folder`, Escale's own work folder left out.
fn count_files(folder: &Path) -> usize {
    let mut count = 0;
    for entry in fs::read_dir(folder).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(".escale") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            count += count_files(&entry.path());
        } else {
            count += 1;
        }
    }
    count
}

/// Scenario 3: a sync that finds nothing changed in a big tree, against
/// `find` reading the same metadata.
fn rescan(bench: &mut Bench, count: usize) {
    println!("\n== Rescan of an unchanged {count}-file tree (local-folder relay)");
    let relay = bench.scratch.path().join("rescan-relay");
    fs::create_dir_all(&relay).unwrap();
    let url = format!("file://{}", relay.display());
    let a = bench.computer("rescan-a", "init", &url, "");
    let started = Instant::now();
    let mut total = 0;
    for i in 0..count {
        let dir = a
            .folder
            .join(format!("d{:03}/e{:02}", i / 1000, (i / 100) % 10));
        if i % 100 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        let text = format!("file {i}\n");
        total += text.len();
        fs::write(dir.join(format!("f{i:06}.txt")), text).unwrap();
    }
    println!(
        "   written in {:.1} s ({total} bytes)",
        started.elapsed().as_secs_f64()
    );
    let first = bench.sync(&a, "");
    println!(
        "   first sync (sends everything) {:.1} s",
        seconds(first.wall)
    );
    let (mut times, mut rss, mut find) =
        (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..bench.runs {
        let mut walk = Command::new("find");
        walk.arg(&a.folder).args(["-printf", "%s %T@ %p\\n"]);
        find.push(seconds(measure(&walk, bench.scratch.path()).wall));
        let again = bench.sync(&a, "");
        times.push(seconds(again.wall));
        rss.push(again.peak_rss as f64 / MB);
    }
    bench.remove(&[a]);
    fs::remove_dir_all(&relay).unwrap();
    bench.report.add(Row {
        figure: format!("Rescan of {count} unchanged files (whole `escale sync`) s"),
        unit: "s".into(),
        samples: times,
        reference: Some((find.median(), "find reading the same metadata".into())),
        goal: Some(Goal::AtMost(1.5)),
    });
    bench.report.add(Row {
        figure: format!("Rescan of {count} unchanged files, peak RSS MB"),
        unit: "MB".into(),
        samples: rss,
        reference: None,
        goal: Some(Goal::AtMost(150.0)),
    });
}

/// `escale run` for `computer`, its output kept for a post-mortem.
fn start_run(bench: &Bench, computer: &Computer, password: &str) -> Child {
    let log = fs::File::create(computer.config.with_extension("log")).unwrap();
    bench
        .escale(computer, password)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    // SIGTERM: a clean stop, as a service manager does.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// Scenario 4: a file saved on A appears on B, both under `escale run`
/// with the default settings.
fn latency(bench: &mut Bench, server: &Server) {
    const SAMPLES: usize = 10;
    println!("\n== Latency under `escale run`, through {}", server.label);
    let relay = server.relay("latency");
    let a = bench.computer("latency-a", "init", &relay, &server.password);
    let b = bench.computer("latency-b", "join", &relay, &server.password);
    let runs = [
        start_run(bench, &a, &server.password),
        start_run(bench, &b, &server.password),
    ];
    // Started and through their first cycle.
    std::thread::sleep(Duration::from_secs(3));
    let mut latencies = Samples::default();
    for i in 0..SAMPLES {
        let name = format!("saved-{i}.txt");
        let text = format!("saved on A, sample {i}\n");
        let saved = Instant::now();
        fs::write(a.folder.join(&name), &text).unwrap();
        let arrived = b.folder.join(&name);
        loop {
            if fs::read_to_string(&arrived).is_ok_and(|got| got == text) {
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(120),
                "{name} never arrived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        latencies.push(seconds(saved.elapsed()));
        // People save every few seconds to every few tens of seconds.
        std::thread::sleep(Duration::from_millis(2000 + (i as u64 * 1237) % 4000));
    }
    for child in runs {
        stop(child);
    }
    bench.remove(&[a, b]);
    server.clean("latency");
    bench.report.add(Row {
        figure: format!("{}: save on A to file on B, `escale run` s", server.label),
        unit: "s".into(),
        samples: latencies,
        reference: None,
        goal: Some(Goal::AtMost(3.0)),
    });
}

/// Scenario 5, started first: three computers idle under `escale run`; its
/// figures are taken by [`Idle::finish`] once the other scenarios ran.
struct Idle {
    computers: Vec<Computer>,
    children: Vec<Child>,
    /// When the last of them reached its longest poll interval.
    backed_off: Instant,
    window_start: Instant,
    access_log: PathBuf,
    log_offset: u64,
    cpu_start: Vec<f64>,
}

/// The idle clients poll at their fastest for a minute after their first
/// cycle, then double to 90 s: 2, 4, 8, 16, 32, 64, 90, about three minutes.
const BACKING_OFF: Duration = Duration::from_secs(4 * 60);

impl Idle {
    fn start(bench: &Bench, server: &Server) -> Idle {
        println!(
            "\n== Three idle computers under `escale run` through {} (measured last)",
            server.label
        );
        let relay = server.relay("idle");
        let mut computers = vec![bench.computer("idle-a", "init", &relay, &server.password)];
        fs::write(computers[0].folder.join("hello.txt"), "hello").unwrap();
        for name in ["idle-b", "idle-c"] {
            computers.push(bench.computer(name, "join", &relay, &server.password));
        }
        let children = computers
            .iter()
            .map(|computer| start_run(bench, computer, &server.password))
            .collect();
        Idle {
            computers,
            children,
            backed_off: Instant::now() + BACKING_OFF,
            window_start: Instant::now(),
            access_log: PathBuf::from(env("RELAY_SERVERS_DIR")).join("logs/webdav.access.log"),
            log_offset: 0,
            cpu_start: Vec::new(),
        }
    }

    /// Waits for the longest poll interval, then starts counting.
    fn begin_window(&mut self) {
        let now = Instant::now();
        if now < self.backed_off {
            std::thread::sleep(self.backed_off - now);
        }
        self.window_start = Instant::now();
        self.log_offset = fs::metadata(&self.access_log).unwrap().len();
        self.cpu_start = self
            .children
            .iter()
            .map(|child| cpu_seconds(child.id()))
            .collect();
    }

    /// Ends the window once it lasted at least `window`, and reports.
    fn finish(mut self, bench: &mut Bench, window: Duration) {
        if self.cpu_start.is_empty() {
            self.begin_window();
        }
        let elapsed = self.window_start.elapsed();
        if elapsed < window {
            println!(
                "\n== Idle window: {:.1} more minutes",
                (window - elapsed).as_secs_f64() / 60.0
            );
            std::thread::sleep(window - elapsed);
        }
        let hours = self.window_start.elapsed().as_secs_f64() / 3600.0;
        let mut log = fs::File::open(&self.access_log).unwrap();
        log.seek(SeekFrom::Start(self.log_offset)).unwrap();
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        let requests = text
            .lines()
            .filter(|line| line.contains(" /relay/idle/"))
            .count();
        let cpu: Vec<f64> = self
            .children
            .iter()
            .zip(&self.cpu_start)
            .map(|(child, start)| cpu_seconds(child.id()) - start)
            .collect();
        for child in self.children.drain(..) {
            stop(child);
        }
        let clients = self.computers.len() as f64;
        let mut per_hour = Samples::default();
        per_hour.push(requests as f64 / clients / hours);
        bench.report.add(Row {
            figure: format!(
                "Idle: requests per client-hour ({requests} in {:.1} min, 3 clients)",
                hours * 60.0
            ),
            unit: "req".into(),
            samples: per_hour,
            reference: None,
            goal: Some(Goal::AtMost(200.0)),
        });
        let mut cpu_per_hour = Samples::default();
        for seconds in cpu {
            cpu_per_hour.push(seconds / hours);
        }
        bench.report.add(Row {
            figure: "Idle: CPU seconds per client-hour".into(),
            unit: "s".into(),
            samples: cpu_per_hour,
            reference: None,
            goal: None,
        });
        let computers = std::mem::take(&mut self.computers);
        bench.remove(&computers);
    }
}

/// The CPU time process `pid` used so far, user and system.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second = output(Command::new("getconf").arg("CLK_TCK"));
    ticks / per_second.trim().parse::<f64>().unwrap()
}

fn main() {
    let only: Option<HashSet<String>> = std::env::var("ESCALE_BENCH_ONLY")
        .ok()
        .map(|list| list.split(',').map(str::to_owned).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|only| only.contains(name));
    let big = usize::try_from(setting("ESCALE_BENCH_BIG_MB", 1000) * 1_000_000).unwrap();
    let small = usize::try_from(setting("ESCALE_BENCH_SMALL_FILES", 10_000)).unwrap();
    let tree = usize::try_from(setting("ESCALE_BENCH_TREE_FILES", 100_000)).unwrap();
    let idle_window = Duration::from_secs(setting("ESCALE_BENCH_IDLE_MINUTES", 10) * 60);
    let mut bench = Bench {
        escale: PathBuf::from(env("ESCALE_BENCH_BIN")),
        rclone: PathBuf::from(env("RCLONE_BIN")),
        scratch: tempfile::tempdir().unwrap(),
        report: Report::default(),
        runs: usize::try_from(setting("ESCALE_BENCH_RUNS", 3)).unwrap(),
        reference_runs: usize::try_from(setting("ESCALE_BENCH_REFERENCE_RUNS", 1)).unwrap(),
    };
    let started = Instant::now();
    let webdav = Server::webdav();
    let ftp = Server::ftp();
    let mut idle = wanted("idle").then(|| Idle::start(&bench, &webdav));
    if wanted("big") {
        let mut rss = Samples::default();
        big_file(&mut bench, &webdav, big, &mut rss);
        big_file(&mut bench, &ftp, big, &mut rss);
        let _ = fs::remove_file(bench.scratch.path().join("big-source.bin"));
        bench.report.add(Row {
            figure: format!("Peak RSS syncing the {} MB file MB", big / 1_000_000),
            unit: "MB".into(),
            samples: rss,
            reference: None,
            goal: Some(Goal::AtMost(200.0)),
        });
    }
    if let Some(idle) = &mut idle {
        idle.begin_window();
    }
    if wanted("small") {
        many_small_files(&mut bench, &webdav, small);
    }
    if wanted("rescan") {
        rescan(&mut bench, tree);
    }
    if wanted("latency") {
        latency(&mut bench, &webdav);
    }
    if let Some(idle) = idle {
        idle.finish(&mut bench, idle_window);
    }
    let table = bench.report.markdown();
    println!(
        "\n== Results ({:.1} min)\n\n{table}",
        started.elapsed().as_secs_f64() / 60.0
    );
    if let Ok(path) = std::env::var("ESCALE_BENCH_RESULTS") {
        fs::write(&path, &table).unwrap();
        println!("written to {path}");
    }
    if !bench.report.all_met() {
        println!("Some targets are not met: see docs/performance.md for why.");
    }
}
