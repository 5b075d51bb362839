//! The real relay servers that `scripts/relay-servers.sh` starts on
//! 127.0.0.1, for the tests that need them.
//!
//! Those tests are `#[ignore]`d, so a plain `cargo test` lists them rather
//! than passing them silently; the test command runs them inside
//! `scripts/relay-servers.sh run DIR -- cargo test … -- --ignored`, which
//! sets `ESCALE_RELAY_SERVERS_ENV` to the servers' settings file.

use std::collections::HashMap;
use std::process::Command;

/// Where `scripts/relay-servers.sh run` puts the path of `servers.env`.
const SERVERS_ENV: &str = "ESCALE_RELAY_SERVERS_ENV";

/// The settings of the running servers: addresses, users, passwords, the
/// test certificate authority, data folders.
#[derive(Debug, Clone)]
pub struct Servers {
    vars: HashMap<String, String>,
}

impl Servers {
    /// Reads the running servers' settings.
    ///
    /// # Panics
    ///
    /// When no servers are running, saying how to start them: a test that
    /// needs them and was asked to run must not pass without them.
    pub fn get() -> Servers {
        let file = std::env::var_os(SERVERS_ENV).unwrap_or_else(|| {
            panic!(
                "{SERVERS_ENV} is not set: run this test through \
                 `scripts/relay-servers.sh run /tmp/relays -- cargo test … -- --ignored`"
            )
        });
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {SERVERS_ENV}={file:?}: {e}"));
        let vars = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        Servers { vars }
    }

    /// The setting `key` (`WEBDAV_URL`, `CA_FILE`…).
    ///
    /// # Panics
    ///
    /// When the settings lack it (that server is not running).
    pub fn var(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("servers.env has no {key}: is that server running?"))
    }

    /// The setting `key`, if the settings have it.
    pub fn optional(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Gives `command` the credentials of server `name` (`WEBDAV`, `S3`…)
    /// the way a user would: in the environment, never on the command line.
    pub fn credentials(&self, name: &str, command: &mut Command) {
        for (key, value) in self.credential_vars(name) {
            command.env(key, value);
        }
    }

    /// The credentials of server `name`, as environment variables.
    fn credential_vars(&self, name: &str) -> Vec<(String, String)> {
        if name == "S3" {
            vec![
                ("AWS_ACCESS_KEY_ID".into(), self.var("S3_ACCESS_KEY").into()),
                (
                    "AWS_SECRET_ACCESS_KEY".into(),
                    self.var("S3_SECRET_KEY").into(),
                ),
            ]
        } else if let Some(password) = self.vars.get(&format!("{name}_PASSWORD")) {
            vec![("ESCALE_RELAY_PASSWORD".into(), password.clone())]
        } else {
            Vec::new()
        }
    }

    /// Everything a computer syncing through server `name` needs in its
    /// environment: the credentials, the test CA (trusted by every client,
    /// as a company would install its own CA), and what that kind of
    /// server needs besides.
    pub fn relay_env(&self, name: &str) -> Vec<(String, String)> {
        let mut env = self.credential_vars(name);
        env.push(("ESCALE_CA_FILE".into(), self.var("CA_FILE").into()));
        // Settings only some kinds of relay read. The backends that use
        // them are being written; the names are the ones they are to read.
        let extra: &[(&str, &str)] = match name {
            "SFTP" => &[
                ("ESCALE_SSH_KEY", "SFTP_KEY"),
                ("ESCALE_KNOWN_HOSTS", "SFTP_KNOWN_HOSTS"),
            ],
            "RCLONE" => &[
                ("RCLONE_CONFIG", "RCLONE_CONFIG"),
                ("ESCALE_RCLONE", "RCLONE_BIN"),
            ],
            _ => &[],
        };
        for (key, setting) in extra {
            env.push(((*key).into(), self.var(setting).into()));
        }
        env
    }

    /// Runs the servers' control script: `ctl(&["kill-server", "webdav"])`
    /// (see `scripts/relay-servers.sh`), failing the test if it fails.
    pub fn ctl(&self, args: &[&str]) {
        let output = Command::new(self.var("CTL"))
            .args(args)
            .output()
            .expect("the servers' ctl.sh can be started");
        assert!(
            output.status.success(),
            "ctl.sh {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
