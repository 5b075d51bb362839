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

    /// Gives `command` the credentials of server `name` (`WEBDAV`, `S3`…)
    /// the way a user would: in the environment, never on the command line.
    pub fn credentials(&self, name: &str, command: &mut Command) {
        if name == "S3" {
            command
                .env("AWS_ACCESS_KEY_ID", self.var("S3_ACCESS_KEY"))
                .env("AWS_SECRET_ACCESS_KEY", self.var("S3_SECRET_KEY"));
        } else if let Some(password) = self.vars.get(&format!("{name}_PASSWORD")) {
            command.env("ESCALE_RELAY_PASSWORD", password);
        }
    }
}
