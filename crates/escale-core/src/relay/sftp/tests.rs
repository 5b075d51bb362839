//! Tests of the SFTP backend: what can be checked without a server, then
//! the conformance suite and the failure cases against the OpenSSH server
//! of `scripts/relay-servers.sh`.

use super::known_hosts::tests::{KEY_A, key};
use super::*;

/// An encrypted ed25519 key (`ssh-keygen -N 'correct horse'`), only ever
/// used here.
const ENCRYPTED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDji37tMP
UsQyUBbhmRGF4TAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIJE4gD1TfmUSm54e
If8S+sLgX1uaKNp5TS8Fj7T+HIOHAAAAkKMe9pVhfcAw9rSIcl4/sWf9XF9hRdq9vrHwKH
nlt6dWP7hczuJprmF9f17DSJ9Px3HslEN+drR3zkyvwy0iSZNa9wGtGeVhSB5E6sy5kn6N
UBT/y3BmILx/1b1kJoSH1mYxxh7b9RZlW4yKegoCPDRAlss0oCXXUReJmz6Fz1E/1vxF1/
ACQaqUUIod8DqEGQ==
-----END OPENSSH PRIVATE KEY-----
";

/// No files of the machine running the tests.
fn no_files() -> SshFiles {
    SshFiles {
        known_hosts: Vec::new(),
        default_keys: Vec::new(),
    }
}

fn relay(address: &str, secrets: &Secrets, files: SshFiles) -> SftpRelay {
    SftpRelay::with_files(&RelayUrl::parse(address).unwrap(), secrets, files).unwrap()
}

fn path(text: &str) -> RelayPath {
    RelayPath::new(text).unwrap()
}

#[test]
fn relay_paths_map_below_the_folder_of_the_address() {
    let secrets = Secrets::default();
    let absolute = relay("sftp://ana@h:2222/srv/escale relay", &secrets, no_files());
    assert_eq!(absolute.remote(&RelayPath::root()), "/srv/escale relay");
    assert_eq!(
        absolute.remote(&path("clients/x/head")),
        "/srv/escale relay/clients/x/head"
    );
    let top = relay("sftp://ana@h/", &secrets, no_files());
    assert_eq!(top.remote(&RelayPath::root()), "/");
    assert_eq!(top.remote(&path("a/b")), "/a/b");
    let home = relay("sftp://ana@h/~", &secrets, no_files());
    assert_eq!(home.remote(&RelayPath::root()), ".");
    assert_eq!(home.remote(&path("a")), "a");
    let in_home = relay("sftp://ana@h/~/escale", &secrets, no_files());
    assert_eq!(in_home.remote(&RelayPath::root()), "escale");
    assert_eq!(in_home.remote(&path("a/b")), "escale/a/b");
    // A folder merely starting with "~" is not the login folder.
    let tilde = relay("sftp://ana@h/~x", &secrets, no_files());
    assert_eq!(tilde.remote(&path("a")), "/~x/a");

    assert_eq!(absolute.server(), "h:2222");
    assert_eq!(
        relay("sftp://ana@[::1]:22/x", &secrets, no_files()).server(),
        "[::1]:22"
    );
    assert_eq!(absolute.describe(), "sftp://ana@h:2222/srv/escale%20relay");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secrets = Secrets {
        password: Some("hunter2".into()),
        ssh_key_passphrase: Some("correct horse".into()),
        ..Secrets::default()
    };
    let relay = relay("sftp://ana@h/x", &secrets, no_files());
    let shown = format!("{relay:?} {secrets:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("correct horse"), "{shown}");
}

#[test]
fn statuses_are_sorted_by_kind() {
    let what = "the relay file /a at sftp://h/x";
    let cases = [
        (
            StatusCode::NoSuchFile,
            "No such file",
            RelayErrorKind::NotFound,
        ),
        (
            StatusCode::PermissionDenied,
            "Permission denied",
            RelayErrorKind::PermissionDenied,
        ),
        (StatusCode::Failure, "Failure", RelayErrorKind::Other),
        (
            StatusCode::Failure,
            "No space left on device",
            RelayErrorKind::StorageFull,
        ),
        (
            StatusCode::Failure,
            "Disk quota exceeded",
            RelayErrorKind::StorageFull,
        ),
        (StatusCode::OpUnsupported, "", RelayErrorKind::Unsupported),
        (StatusCode::ConnectionLost, "", RelayErrorKind::Interrupted),
        (StatusCode::BadMessage, "Bad message", RelayErrorKind::Other),
    ];
    for (code, text, kind) in cases {
        let err = status_error(code, text, what);
        assert_eq!(err.kind(), kind, "{code:?} {text}: {err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn extended_request_arguments_are_ssh_strings() {
    assert_eq!(
        ssh_strings(&["/a", "bc"]),
        [0, 0, 0, 2, b'/', b'a', 0, 0, 0, 2, b'b', b'c']
    );
}

#[test]
fn known_kinds_of_host_keys_are_asked_for_first() {
    use russh::keys::{Algorithm, EcdsaCurve};
    let all = russh::Preferred::default().key.to_vec();
    assert_eq!(prefer_known_algorithms(&all, &[]), all);
    let ecdsa = Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    };
    let ordered = prefer_known_algorithms(&all, std::slice::from_ref(&ecdsa));
    assert_eq!(ordered[0], ecdsa);
    assert_eq!(ordered.len(), all.len());
    // RSA is recorded as ssh-rsa but signed with SHA-2: every RSA kind
    // comes first, in the library's order.
    let ordered = prefer_known_algorithms(&all, &[Algorithm::Rsa { hash: None }]);
    assert!(
        ordered[..3].iter().all(|a| a.clone().is_rsa()),
        "{ordered:?}"
    );
}

/// Opens a relay on a port nobody listens on, for failures that must come
/// before any connection.
fn offline(secrets: &Secrets, files: SshFiles) -> SftpRelay {
    relay("sftp://ana@127.0.0.1:1/relay", secrets, files)
}

#[tokio::test]
async fn a_key_with_a_passphrase_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("id_ed25519");
    std::fs::write(&key_file, ENCRYPTED_KEY).unwrap();

    let secrets = Secrets {
        ssh_key: Some(key_file.clone()),
        ..Secrets::default()
    };
    let err = offline(&secrets, no_files())
        .list(&RelayPath::root())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(message.contains("protected by a passphrase"), "{message}");
    assert!(message.contains(SSH_KEY_PASSPHRASE_ENV), "{message}");
    assert!(message.contains(&*key_file.to_string_lossy()), "{message}");

    // The same key as a default key is skipped, and the message says why.
    let files = SshFiles {
        known_hosts: Vec::new(),
        default_keys: vec![key_file.clone(), tmp.path().join("id_rsa")],
    };
    let err = offline(&Secrets::default(), files)
        .list(&RelayPath::root())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
    let message = err.to_string();
    assert!(message.contains("no password or SSH key"), "{message}");
    assert!(message.contains("protected by a passphrase"), "{message}");
}

#[test]
fn a_wrong_passphrase_or_a_missing_key_file_is_said_so() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("id_ed25519");
    std::fs::write(&key_file, ENCRYPTED_KEY).unwrap();
    let err = load_key(&key_file, Some("wrong")).unwrap_err();
    assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed);
    assert!(err.to_string().contains("is the passphrase"), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");

    let err = load_key(&tmp.path().join("missing"), None).unwrap_err();
    assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed);
    assert!(err.to_string().contains("cannot be read"), "{err}");
}

#[tokio::test]
async fn nobody_listening_is_unreachable_and_retryable() {
    let secrets = Secrets {
        password: Some("x".into()),
        ..Secrets::default()
    };
    let err = offline(&secrets, no_files())
        .read(&path("a"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RelayErrorKind::Unreachable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn default_files_are_in_the_home_folder() {
    let files = SshFiles::from_home();
    if let Some(home) = dirs::home_dir() {
        assert_eq!(files.known_hosts[0], home.join(".ssh/known_hosts"));
        assert_eq!(files.default_keys[0], home.join(".ssh/id_ed25519"));
    }
    let _ = key(KEY_A);
}

/// The OpenSSH server of the harness.
mod server {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::relay::conformance::servers;
    use crate::relay::conformance::{Fixture, pattern};

    /// The harness's settings, or `None` (said aloud) without servers.
    pub(super) fn vars() -> Option<HashMap<String, String>> {
        servers::vars()
    }

    /// The files a client of the harness uses: its known-hosts file, which
    /// holds the server's key, and no default keys.
    pub(super) fn harness_files(vars: &HashMap<String, String>) -> SshFiles {
        SshFiles {
            known_hosts: vec![vars["SFTP_KNOWN_HOSTS"].clone().into()],
            default_keys: Vec::new(),
        }
    }

    /// Logs in with the harness's key.
    pub(super) fn with_key(vars: &HashMap<String, String>) -> Secrets {
        Secrets {
            ssh_key: Some(vars["SFTP_KEY"].clone().into()),
            ..Secrets::default()
        }
    }

    /// Logs in with the test user's password.
    pub(super) fn with_password(vars: &HashMap<String, String>) -> Secrets {
        Secrets {
            password: Some(vars["SFTP_PASSWORD"].clone()),
            ..Secrets::default()
        }
    }

    /// The relay of the harness with `secrets` and `files`.
    pub(super) fn open(
        vars: &HashMap<String, String>,
        secrets: &Secrets,
        files: SshFiles,
    ) -> SftpRelay {
        relay(&vars["SFTP_URL"], secrets, files)
    }

    /// The suite's fixture: key or password login.
    pub(super) async fn fixture(password: bool) -> Option<Fixture> {
        let vars = vars()?;
        let secrets = if password {
            with_password(&vars)
        } else {
            with_key(&vars)
        };
        let relay = open(&vars, &secrets, harness_files(&vars));
        Some(Fixture {
            relay: Arc::new(relay),
            _guard: Box::new(()),
        })
    }

    mod with_key {
        async fn setup() -> Option<crate::relay::conformance::Fixture> {
            super::fixture(false).await
        }
        // OpenSSH sends a folder's names 100 to an answer: 5,000 entries
        // make fifty answers to follow.
        crate::relay::conformance::relay_conformance_tests!(
            setup,
            many_entries = 5_000,
            ignore = "needs scripts/relay-servers.sh"
        );
    }

    mod with_password {
        async fn setup() -> Option<crate::relay::conformance::Fixture> {
            super::fixture(true).await
        }
        crate::relay::conformance::relay_conformance_tests!(
            setup,
            many_entries = 300,
            ignore = "needs scripts/relay-servers.sh"
        );
    }

    /// Lists the root of `relay`, for the failure.
    async fn list_error(relay: &SftpRelay) -> RelayError {
        relay.list(&RelayPath::root()).await.unwrap_err()
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn failures_are_sorted_by_kind() {
        let Some(vars) = vars() else { return };
        let fingerprint = &vars["SFTP_HOST_KEY_FINGERPRINT"];
        let port = &vars["SFTP_PORT"];
        let tmp = tempfile::tempdir().unwrap();

        let wrong = Secrets {
            password: Some("not the password".into()),
            ..Secrets::default()
        };
        let err = list_error(&open(&vars, &wrong, harness_files(&vars))).await;
        assert_eq!(err.kind(), RelayErrorKind::AuthenticationFailed, "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("refused the login"), "{err}");
        assert!(!err.to_string().contains("not the password"), "{err}");

        // A known-hosts file with another key for this server.
        let changed = tmp.path().join("changed_known_hosts");
        std::fs::write(
            &changed,
            format!("# another server\nother.example.com {KEY_A}\n[127.0.0.1]:{port} {KEY_A}\n"),
        )
        .unwrap();
        let files = SshFiles {
            known_hosts: vec![changed.clone()],
            default_keys: Vec::new(),
        };
        let escale_file = tmp.path().join("escale/known_hosts");
        let secrets = Secrets {
            known_hosts: Some(escale_file.clone()),
            ..with_key(&vars)
        };
        let err = list_error(&open(&vars, &secrets, files)).await;
        assert_eq!(err.kind(), RelayErrorKind::Tls, "{err}");
        assert!(!err.is_retryable());
        let message = err.to_string();
        for needed in [
            "WARNING",
            "man-in-the-middle",
            fingerprint.as_str(),
            &*changed.to_string_lossy(),
            "line 3",
        ] {
            assert!(message.contains(needed), "{needed:?} missing: {message}");
        }
        assert!(!escale_file.exists(), "a changed key was recorded");

        // Unknown, with nowhere to record it: refused, with instructions.
        let err = list_error(&open(&vars, &with_key(&vars), no_files())).await;
        assert_eq!(err.kind(), RelayErrorKind::Tls, "{err}");
        let message = err.to_string();
        assert!(message.contains("is not known"), "{message}");
        assert!(message.contains(fingerprint.as_str()), "{message}");
        assert!(message.contains(KNOWN_HOSTS_ENV), "{message}");
        assert!(message.contains(&format!("ssh -p {port} ")), "{message}");

        // Unknown, with Escale's file: trusted on first use and recorded,
        // then known.
        let secrets = Secrets {
            known_hosts: Some(escale_file.clone()),
            ..with_key(&vars)
        };
        let first = open(&vars, &secrets, no_files());
        first.list(&RelayPath::root()).await.unwrap();
        let recorded = std::fs::read_to_string(&escale_file).unwrap();
        assert_eq!(recorded.lines().count(), 1, "{recorded}");
        assert!(
            recorded.starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 ")),
            "{recorded}"
        );
        let recorded_key = PublicKey::from_openssh(recorded.split_once(' ').unwrap().1.trim());
        assert_eq!(
            known_hosts::fingerprint(recorded_key.unwrap().key_data()),
            *fingerprint
        );
        let again = open(&vars, &secrets, no_files());
        again.list(&RelayPath::root()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&escale_file).unwrap(), recorded);

        // The harness's port with nobody on it would be racy: port 1.
        let nobody = relay(
            "sftp://escale-test@127.0.0.1:1/relay",
            &with_key(&vars),
            harness_files(&vars),
        );
        let err = list_error(&nobody).await;
        assert_eq!(err.kind(), RelayErrorKind::Unreachable, "{err}");
        assert!(err.is_retryable());
    }

    use russh::keys::PublicKey;

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_missing_relay_folder_is_never_created() {
        let Some(vars) = vars() else { return };
        let url = format!(
            "{}/not-made-{}",
            vars["SFTP_URL"],
            hex::encode(crate::ids::random_bytes::<4>())
        );
        let relay = relay(&url, &with_key(&vars), harness_files(&vars));
        let err = relay.create_dir(&path("clients/x")).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = relay.create_dir(&RelayPath::root()).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let err = relay.list(&RelayPath::root()).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let err = relay
            .write(&path("header"), Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let local = url
            .split_once(&format!(":{}", vars["SFTP_PORT"]))
            .unwrap()
            .1;
        assert!(
            !Path::new(local).exists(),
            "the relay folder {local} was created"
        );
    }

    /// A fresh folder at the root of the harness's relay.
    async fn fresh_dir(relay: &SftpRelay) -> RelayPath {
        let dir = path(&format!(
            "sftp-{}",
            hex::encode(crate::ids::random_bytes::<6>())
        ));
        relay.create_dir(&dir).await.unwrap();
        dir
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn leftovers_are_hidden_then_cleared() {
        let Some(vars) = vars() else { return };
        let relay = open(&vars, &with_key(&vars), harness_files(&vars));
        let dir = fresh_dir(&relay).await;
        let sub = dir.join("sub").unwrap();
        relay.create_dir(&sub).await.unwrap();
        relay
            .write(&dir.join("kept").unwrap(), Bytes::from_static(b"kept"))
            .await
            .unwrap();
        // What a killed upload leaves: a temporary, written by the server.
        let session = relay.session().await.unwrap();
        for folder in [&dir, &sub] {
            let temp = format!("{}/{TEMP_PREFIX}0123456789abcdef", relay.remote(folder));
            let flags = OpenFlags::WRITE | OpenFlags::CREATE;
            let handle = session
                .sftp
                .open(temp, flags, FileAttributes::empty())
                .await
                .unwrap();
            session
                .sftp
                .write(handle.handle.as_str(), 0, b"half".to_vec())
                .await
                .unwrap();
            session.sftp.close(handle.handle).await.unwrap();
        }
        let names =
            |entries: Vec<RelayEntry>| entries.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(relay.list(&dir).await.unwrap()), ["kept", "sub"]);
        assert!(relay.list(&sub).await.unwrap().is_empty());

        relay.clear_leftovers(&dir).await.unwrap();
        let raw = SftpRelay::raw_list(&session, &relay.remote(&dir))
            .await
            .unwrap();
        let mut raw: Vec<_> = raw.into_iter().map(|(name, _)| name).collect();
        raw.sort();
        assert_eq!(raw, ["kept", "sub"], "the leftover was not removed");
        let raw = SftpRelay::raw_list(&session, &relay.remote(&sub))
            .await
            .unwrap();
        assert_eq!(raw.len(), 1, "a subfolder was cleared too");
        relay
            .clear_leftovers(&dir.join("missing").unwrap())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn readers_never_see_half_a_write() {
        const LEN: usize = 600 * 1024;
        let Some(vars) = vars() else { return };
        let relay = Arc::new(open(&vars, &with_key(&vars), harness_files(&vars)));
        let dir = fresh_dir(&relay).await;
        let target = dir.join("head").unwrap();
        relay
            .write(&target, Bytes::from(vec![b'a'; LEN]))
            .await
            .unwrap();
        let writer = {
            let (relay, target) = (Arc::clone(&relay), target.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let byte = if i % 2 == 0 { b'b' } else { b'a' };
                    relay
                        .write(&target, Bytes::from(vec![byte; LEN]))
                        .await
                        .unwrap();
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            let data = relay.read(&target, None).await.unwrap();
            assert_eq!(data.len(), LEN, "a reader saw a partial file");
            assert!(
                data.iter().all(|&b| b == data[0]),
                "a reader saw two versions mixed"
            );
            reads += 1;
        }
        writer.await.unwrap();
        assert!(reads > 1, "the reader did not overlap the writer");
        assert!(relay.capabilities().atomic_write);
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_lost_connection_is_remade_once_without_error() {
        let Some(vars) = vars() else { return };
        let relay = open(&vars, &with_key(&vars), harness_files(&vars));
        let dir = fresh_dir(&relay).await;
        let file = dir.join("f").unwrap();
        relay
            .write(&file, Bytes::from(pattern(1000, 1)))
            .await
            .unwrap();

        // The SFTP channel closes under the relay: the next operation
        // finds it broken mid-request and runs again on a new connection.
        let first = relay.session().await.unwrap();
        first.sftp.close_session().unwrap();
        assert_eq!(relay.read(&file, None).await.unwrap(), pattern(1000, 1));
        let second = relay.session().await.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "the broken connection was kept"
        );

        // The whole SSH connection ends: noticed before the next request.
        second
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "test", "en")
            .await
            .unwrap();
        drop(second);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(relay.list(&dir).await.unwrap().len(), 1);
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn rsa_keys_log_in() {
        let Some(vars) = vars() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let key_file = tmp.path().join("id_rsa");
        let made = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "rsa",
                "-b",
                "2048",
                "-N",
                "",
                "-C",
                "escale-rsa-test",
                "-f",
            ])
            .arg(&key_file)
            .status()
            .unwrap();
        assert!(made.success());
        // Authorised beside the harness's own key.
        let authorized = Path::new(&vars["RELAY_SERVERS_DIR"]).join("sftp/authorized_keys");
        let public = std::fs::read_to_string(key_file.with_extension("pub")).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&authorized)
            .unwrap();
        std::io::Write::write_all(&mut file, public.as_bytes()).unwrap();

        // As a default key, the way most people have one.
        let files = SshFiles {
            default_keys: vec![tmp.path().join("id_ed25519"), key_file],
            ..harness_files(&vars)
        };
        let relay = open(&vars, &Secrets::default(), files);
        relay.list(&RelayPath::root()).await.unwrap();
    }
}

/// Checks of the backend against the harness's server that need more than
/// the relay: a full disk, files and folders in each other's place.
mod server_more {
    use super::server::{harness_files, open, vars, with_key};
    use super::*;

    use crate::relay::conformance::full_disk::Mounted;

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn a_full_disk_is_storage_full() {
        let Some(vars) = vars() else { return };
        let relay = open(&vars, &with_key(&vars), harness_files(&vars));
        let dir = path(&format!(
            "full-{}",
            hex::encode(crate::ids::random_bytes::<4>())
        ));
        relay.create_dir(&dir).await.unwrap();
        // A 256 KiB file system in its place, writable by the server's user.
        let local = PathBuf::from(format!("{}/relay/{}", vars["SFTP_DATA"], dir.as_str()));
        let Some(_guard) = Mounted::tiny(local) else {
            return;
        };
        let err = relay
            .write(&dir.join("big").unwrap(), Bytes::from(vec![7; 1024 * 1024]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::StorageFull, "{err}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("is full"), "{err}");
        // Nothing is left taking the little space there is.
        assert!(relay.list(&dir).await.unwrap().is_empty());
        relay
            .write(&dir.join("small").unwrap(), Bytes::from_static(b"fits"))
            .await
            .unwrap();
    }

    #[tokio::test]
    #[ignore = "needs scripts/relay-servers.sh"]
    async fn files_and_folders_in_the_wrong_place_are_refused() {
        let Some(vars) = vars() else { return };
        let relay = open(&vars, &with_key(&vars), harness_files(&vars));
        let dir = path(&format!(
            "kinds-{}",
            hex::encode(crate::ids::random_bytes::<4>())
        ));
        relay.create_dir(&dir.join("d").unwrap()).await.unwrap();
        let (file, folder) = (dir.join("f").unwrap(), dir.join("d").unwrap());
        relay.write(&file, Bytes::from_static(b"x")).await.unwrap();

        let err = relay.create_dir(&file).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay
            .create_dir(&file.join("sub").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.read(&folder, None).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay
            .write(&folder, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::InvalidPath, "{err}");
        let err = relay.list(&file).await.unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let err = relay
            .read(&file.join("x").unwrap(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RelayErrorKind::NotFound, "{err}");
        let names: Vec<_> = relay
            .list(&dir)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["d", "f"], "a temporary was left behind");
    }
}
