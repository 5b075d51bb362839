//! Helpers for Escale's end-to-end tests: the real binaries, started as
//! separate processes and driven from outside, as a user or a script would.
//!
//! Each test binary in `tests/` calls [`binary`] to get a freshly built
//! executable: the first call in a process runs `cargo build` for it, so a
//! test never runs a stale binary.

pub mod bench;
pub mod fault_proxy;
pub mod relay;
pub mod servers;
pub mod tray_host;
pub mod webdriver;
pub mod world;
pub mod x11;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The root of the workspace (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits one level below the workspace root")
        .to_path_buf()
}

/// The cargo target profile folder the running test was built into
/// (`target/debug`), found from the test executable's own path.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/debug/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

/// Where tests write files meant for people to look at (screenshots):
/// `target/e2e-artifacts/`, kept after the run.
pub fn artifacts_dir() -> PathBuf {
    let dir = profile_dir()
        .parent()
        .expect("the profile folder sits inside the target folder")
        .join("e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts folder can be created");
    dir
}

/// The variables (or their beginnings) that `cargo test` sets for a test
/// to describe the test's package.
const TEST_PACKAGE_VARS: [&str; 6] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
];

/// The path of binary `bin` from package `package`, built now if needed.
///
/// # Panics
///
/// If the build fails; the build output is shown above the panic.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    // Tests in one process run in parallel; cargo would serialise on its
    // lock anyway, this just avoids repeating the work.
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|name| name == bin) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "--package",
            package,
            "--bin",
            bin,
        ]);
        // `cargo test` gives the test the variables that describe its own
        // package (CARGO_PKG_NAME, CARGO_MANIFEST_DIR…). Build scripts that
        // read them (ring's does) have cargo rebuild when they change, so
        // passing them on would rebuild ring and all that depends on it
        // here, and again at the next `cargo test`: a minute each time.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if TEST_PACKAGE_VARS.iter().any(|var| key.starts_with(var)) {
                build.env_remove(&*key);
            }
        }
        let status = build.status().expect("cargo can be started");
        assert!(status.success(), "building {bin} failed");
        built.push(bin.to_owned());
    }
    let path = profile_dir().join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A `Command` for the real `escale` binary using `config_dir` as its
/// configuration folder, with no secret, folder or keyring leaking in from
/// the environment of whoever runs the tests.
pub fn escale(config_dir: &Path) -> Command {
    let mut command = Command::new(binary("escale-cli", "escale"));
    command
        .env_remove("ESCALE_CONFIG_DIR")
        .env_remove("ESCALE_PASSPHRASE")
        .env_remove("ESCALE_RELAY_PASSWORD")
        .env_remove("ESCALE_CA_FILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        // `relay-servers.sh run` exports these for the tests; a computer
        // gets them only from the relay it syncs through.
        .env_remove("ESCALE_SSH_KEY")
        .env_remove("ESCALE_KNOWN_HOSTS")
        .env_remove("ESCALE_RCLONE")
        .env_remove("RCLONE_CONFIG")
        // Tests never touch the keyring of whoever runs them; the keyring
        // test turns it back on inside its own private keyring session.
        .env("ESCALE_NO_KEYRING", "1")
        .arg("--config-dir")
        .arg(config_dir);
    command
}

/// A loopback port nobody listens on at the moment of asking (released at
/// once: for a server to start there, or to be refused on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Runs `command` and returns its output, failing the test with the
/// command's standard error if it did not succeed.
pub fn run_ok(command: &mut Command) -> std::process::Output {
    let output = command.output().expect("the command can be started");
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `escale init` (or `join`, as `verb`) of repository `name`, syncing
/// `folder` through the `file://` relay at `relay`; the caller adds the
/// passphrase and runs it.
pub fn set_up_command(
    config_dir: &Path,
    verb: &str,
    name: &str,
    folder: &Path,
    relay: &Path,
) -> Command {
    set_up_command_at(
        config_dir,
        verb,
        name,
        folder,
        &format!("file://{}", relay.display()),
    )
}

/// [`set_up_command`] for a relay at any address `url`; the caller adds the
/// passphrase and the relay's credentials.
pub fn set_up_command_at(
    config_dir: &Path,
    verb: &str,
    name: &str,
    folder: &Path,
    url: &str,
) -> Command {
    let mut command = escale(config_dir);
    command
        .args([verb, name, "--folder"])
        .arg(folder)
        .arg("--relay")
        .arg(url);
    command
}

/// The files under `roots` whose bytes contain `needle`: where a secret
/// must never be written.
pub fn files_containing(roots: &[&Path], needle: &[u8]) -> Vec<String> {
    fn walk(dir: &Path, needle: &[u8], found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("a folder entry can be read").path();
            if path.is_dir() {
                walk(&path, needle, found);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| memchr::memmem::find(&bytes, needle).is_some())
            {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    for root in roots {
        walk(root, needle, &mut found);
    }
    found
}

/// The passphrase saved in the session's keyring for the repository on the
/// `file://` relay at `relay`, read with `secret-tool` as a person could.
pub fn keyring_passphrase(relay: &Path) -> Option<String> {
    let header: serde_json::Value = serde_json::from_slice(
        &std::fs::read(relay.join("escale-repo.json")).expect("the relay has a header"),
    )
    .expect("the header is JSON");
    let id = header["repository"]
        .as_str()
        .expect("the header names its repository");
    let lookup = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "escale",
            "username",
            &format!("repository-{id}"),
        ])
        .output()
        .expect("secret-tool is installed (libsecret-tools)");
    lookup
        .status
        .success()
        .then(|| String::from_utf8_lossy(&lookup.stdout).into_owned())
}
