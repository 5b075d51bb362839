//! The relay a [`World`](crate::world::World) syncs through: its address,
//! what its clients need in their environment to reach it, and a way for
//! the test to see what is stored on it without going through Escale.
//!
//! A test that trusted `escale` to report what is on the relay could not
//! catch `escale` leaving something behind, so every kind of relay is
//! looked at from the storage side: a `file://` relay and the servers that
//! keep plain files (WebDAV, FTP, SFTP, rclone) through their folder on
//! disk, SeaweedFS S3 through its filer's HTTP API, which lists the
//! bucket's entries as files and folders with no S3 signature involved.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::servers::Servers;

/// Where a test looks at what the relay stores.
#[derive(Debug, Clone)]
enum Storage {
    /// Plain files in a local folder: the relay folder itself, or the
    /// server's copy of it.
    Folder(PathBuf),
    /// A folder of the SeaweedFS filer, as an HTTP URL ending with `/`.
    Filer(String),
}

/// A relay: its address, the environment variables its clients need, and
/// its storage as the test sees it.
#[derive(Debug, Clone)]
pub struct Relay {
    url: String,
    env: Vec<(String, String)>,
    storage: Storage,
    /// `host:port` of the server, for addresses that go through a proxy.
    server: Option<String>,
}

impl Relay {
    /// A `file://` relay in `dir`, which must exist.
    pub fn local(dir: &Path) -> Relay {
        Relay {
            url: format!("file://{}", dir.display()),
            env: Vec::new(),
            storage: Storage::Folder(dir.to_path_buf()),
            server: None,
        }
    }

    /// A relay in a new folder inside the relay folder of server `name`
    /// (`WEBDAV`, `S3`… as in `servers.env`), named after `label`, with
    /// the server's credentials, the test CA and the server's extra
    /// settings.
    ///
    /// The folder is made here, as its owner on the server would make it:
    /// Escale is given an existing relay folder, never asked to make one.
    /// Each call takes a folder of its own, so that tests can run in
    /// parallel on one server, and again on servers that ran them before.
    /// On WebDAV servers it is made with `MKCOL`; on the others, in the
    /// server's data folder and handed to the server's user, which needs
    /// root (S3 needs nothing: a prefix exists once something is under it).
    ///
    /// # Panics
    ///
    /// When that server is not in the settings, or the folder cannot be
    /// made.
    pub fn on_server(servers: &Servers, name: &str, label: &str) -> Relay {
        static TAKEN: AtomicU32 = AtomicU32::new(0);
        let folder = format!(
            "{label}-{}-{}",
            std::process::id(),
            TAKEN.fetch_add(1, Ordering::SeqCst)
        );
        let folder = folder.as_str();
        let url = in_subfolder(servers.var(&format!("{name}_URL")), folder);
        let storage = if name == "S3" {
            // S3 has no folders: a prefix exists once something is under
            // it, and Escale writes a folder marker for it.
            let filer = servers.var("S3_FILER_URL").trim_end_matches('/');
            Storage::Filer(format!("{filer}/relay/{folder}/"))
        } else if let Some(http) = servers.optional(&format!("{name}_HTTP_URL")) {
            make_webdav_folder(servers, name, &format!("{http}relay/{folder}/"));
            Storage::Folder(
                Path::new(servers.var(&format!("{name}_DATA")))
                    .join("relay")
                    .join(folder),
            )
        } else {
            let parent = Path::new(servers.var(&format!("{name}_DATA"))).join("relay");
            let dir = parent.join(folder);
            fs::create_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot make the relay folder {dir:?}: {e}"));
            // The server writes as its own user (www-data, escale-test),
            // which owns the relay folder it was given.
            let owner = fs::metadata(&parent).expect("the server's relay folder");
            use std::os::unix::fs::MetadataExt;
            std::os::unix::fs::chown(&dir, Some(owner.uid()), Some(owner.gid()))
                .unwrap_or_else(|e| panic!("cannot hand {dir:?} to the server's user: {e}"));
            Storage::Folder(dir)
        };
        Relay {
            url,
            env: servers.relay_env(name),
            storage,
            // rclone's `local` remote has no server of its own.
            server: servers
                .optional(&format!("{name}_HOST"))
                .zip(servers.optional(&format!("{name}_PORT")))
                .map(|(host, port)| format!("{host}:{port}")),
        }
    }

    /// The relay's address, as given to `escale init` and `join`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address of the server behind a network relay.
    ///
    /// # Panics
    ///
    /// For a `file://` relay.
    pub fn server_addr(&self) -> SocketAddr {
        let server = self.server.as_deref().expect("a relay on a server");
        server
            .parse()
            .unwrap_or_else(|e| panic!("{server} is not an address: {e}"))
    }

    /// The same relay reached through `proxy` instead of the server's own
    /// port: only the address changes, the storage is the same.
    ///
    /// # Panics
    ///
    /// For a `file://` relay.
    pub fn through(&self, proxy: SocketAddr) -> Relay {
        let server = self.server.as_deref().expect("a relay on a server");
        assert!(
            self.url.contains(server),
            "{} does not name {server}",
            self.url
        );
        Relay {
            url: self.url.replacen(server, &proxy.to_string(), 1),
            ..self.clone()
        }
    }

    /// Gives `command` the relay's settings and secrets, in its
    /// environment as a user would.
    pub fn apply(&self, command: &mut Command) {
        for (key, value) in &self.env {
            command.env(key, value);
        }
    }

    /// Every file stored on the relay, by path relative to the relay
    /// folder (`clients/…/head.0`), with its size. Folders are not listed.
    pub fn files(&self) -> BTreeMap<String, u64> {
        let mut files = BTreeMap::new();
        match &self.storage {
            Storage::Folder(dir) => list_folder(dir, "", &mut files),
            Storage::Filer(url) => list_filer(url, "", &mut files),
        }
        files
    }

    /// The total size of the files on the relay.
    pub fn size(&self) -> u64 {
        self.files().values().sum()
    }

    /// The files that are not the header, a head or a journal batch: what
    /// must be gone once every computer has everything.
    pub fn leftovers(&self) -> Vec<String> {
        self.files()
            .into_keys()
            .filter(|name| {
                name != "escale-repo.json"
                    && !name.contains("/head.")
                    && !name.contains("/journal/")
            })
            .collect()
    }
}

/// Makes the folder at `url` (ending with `/`) on WebDAV server `name`.
fn make_webdav_folder(servers: &Servers, name: &str, url: &str) {
    let mut client = reqwest::blocking::Client::builder();
    if url.starts_with("https:") {
        let pem = fs::read(servers.var("CA_FILE")).expect("the test CA");
        client = client
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"));
    }
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").expect("a method name");
    let response = client
        .build()
        .expect("an HTTP client")
        .request(mkcol, url)
        .basic_auth(
            servers.var(&format!("{name}_USER")),
            Some(servers.var(&format!("{name}_PASSWORD"))),
        )
        .send()
        .unwrap_or_else(|e| panic!("MKCOL {url}: {e}"));
    assert!(
        response.status() == reqwest::StatusCode::CREATED,
        "MKCOL {url}: {}",
        response.status()
    );
}

/// `url` with its relay folder `…/relay` replaced by `…/relay/folder`.
fn in_subfolder(url: &str, folder: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    assert!(
        path.ends_with("/relay"),
        "{url}: the harness's relay addresses end with the folder /relay"
    );
    match query {
        Some(query) => format!("{path}/{folder}?{query}"),
        None => format!("{path}/{folder}"),
    }
}

fn list_folder(dir: &Path, prefix: &str, files: &mut BTreeMap<String, u64>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => list_folder(&entry.path(), &format!("{name}/"), files),
            Ok(meta) => {
                files.insert(name, meta.len());
            }
            // Deleted while listed: not there any more.
            Err(_) => {}
        }
    }
}

/// SeaweedFS marks folders with Go's `os.ModeDir` bit in `Mode`.
const FILER_MODE_DIR: u64 = 1 << 31;

/// Lists a SeaweedFS filer folder and everything below it, page by page.
fn list_filer(url: &str, prefix: &str, files: &mut BTreeMap<String, u64>) {
    let client = reqwest::blocking::Client::new();
    let mut last = String::new();
    loop {
        let response = client
            .get(url)
            .query(&[("limit", "1000"), ("lastFileName", last.as_str())])
            .header("Accept", "application/json")
            .send()
            .unwrap_or_else(|e| panic!("the SeaweedFS filer at {url} did not answer: {e}"));
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return;
        }
        let page: Value = response
            .error_for_status()
            .and_then(reqwest::blocking::Response::json)
            .unwrap_or_else(|e| panic!("the SeaweedFS filer's listing of {url}: {e}"));
        let entries = page["Entries"].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let full = entry["FullPath"].as_str().expect("an entry has a path");
            let name = full.rsplit('/').next().unwrap_or(full);
            let mode = entry["Mode"].as_u64().unwrap_or(0);
            if mode & FILER_MODE_DIR != 0 {
                list_filer(&format!("{url}{name}/"), &format!("{prefix}{name}/"), files);
            } else {
                let size = entry["FileSize"].as_u64().unwrap_or(0);
                files.insert(format!("{prefix}{name}"), size);
            }
            name.clone_into(&mut last);
        }
        if entries.is_empty() || page["ShouldDisplayLoadMore"] != Value::Bool(true) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_subfolder;

    #[test]
    fn a_subfolder_goes_after_relay_and_before_the_query() {
        assert_eq!(
            in_subfolder("webdav://u@127.0.0.1:80/relay", "t1"),
            "webdav://u@127.0.0.1:80/relay/t1"
        );
        assert_eq!(
            in_subfolder("s3://b/relay?endpoint=http://127.0.0.1:9&region=r", "t1"),
            "s3://b/relay/t1?endpoint=http://127.0.0.1:9&region=r"
        );
        assert_eq!(
            in_subfolder("rclone:local:/tmp/relays-x/data/rclone/relay", "t1"),
            "rclone:local:/tmp/relays-x/data/rclone/relay/t1"
        );
    }
}
