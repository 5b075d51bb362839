//! A small W3C WebDriver client for driving the real desktop app through
//! `tauri-driver` (which starts `WebKitWebDriver`, which starts the app).
//!
//! Only what the tests use is here; every call fails loudly with the
//! driver's own error message, so a broken UI shows up as a readable panic.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C key under which element references are returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `tauri-driver`, stopped when dropped.
pub struct TauriDriver {
    child: Child,
    port: u16,
    http: reqwest::blocking::Client,
}

impl TauriDriver {
    /// Starts `tauri-driver` on free loopback ports. `env` is passed down to
    /// the app it will start (for example `ESCALE_CONFIG_DIR`).
    ///
    /// # Panics
    ///
    /// If `tauri-driver` is not installed or does not answer within 30 s.
    pub fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)]) -> TauriDriver {
        let port = crate::free_port();
        let native_port = crate::free_port();
        let mut command = Command::new(tauri_driver_path());
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap_or_else(|err| {
            panic!(
                "cannot start tauri-driver ({err}); install it with \
                 `cargo install tauri-driver@2.1.0 --locked` or run scripts/test.sh"
            )
        });
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client can be built");
        let driver = TauriDriver { child, port, http };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base()))
                .send()
                .ok()
                .and_then(|response| response.json::<Value>().ok())
                .is_some_and(|body| body["value"]["ready"] != json!(false));
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not become ready on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Opens a session, which starts the app at `application`.
    ///
    /// An instance left by an earlier test may still be ending: this waits
    /// for it to be gone first ([`wait_until_no_instance`]).
    pub fn session(&self, application: &Path) -> Session<'_> {
        wait_until_no_instance(Duration::from_secs(30));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "tauri:options": { "application": application }
                }
            }
        });
        let value = call(
            self.http
                .post(format!("{}/session", self.base()))
                .json(&capabilities),
            "new session",
        );
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session returned no id: {value}"))
            .to_owned();
        Session {
            driver: self,
            url: format!("{}/session/{id}", self.base()),
        }
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One app run under WebDriver; the app is closed when this is dropped.
pub struct Session<'a> {
    driver: &'a TauriDriver,
    url: String,
}

/// A reference to an element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// How to find elements.
#[derive(Debug, Clone, Copy)]
pub enum By<'s> {
    /// A CSS selector.
    Css(&'s str),
    /// An XPath expression.
    XPath(&'s str),
}

impl Session<'_> {
    fn get(&self, path: &str) -> Value {
        call(self.driver.http.get(format!("{}{path}", self.url)), path)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        call(
            self.driver
                .http
                .post(format!("{}{path}", self.url))
                .json(&body),
            path,
        )
    }

    /// The window title.
    pub fn title(&self) -> String {
        self.get("/title")
            .as_str()
            .expect("the title is a string")
            .to_owned()
    }

    /// Waits up to `timeout` for an element to appear.
    ///
    /// # Panics
    ///
    /// If it does not appear in time; the message shows the page's text.
    pub fn wait_for(&self, by: By<'_>, timeout: Duration) -> Element {
        let (using, value) = match by {
            By::Css(selector) => ("css selector", selector),
            By::XPath(path) => ("xpath", path),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let response = self
                .driver
                .http
                .post(format!("{}/element", self.url))
                .json(&json!({ "using": using, "value": value }))
                .send()
                .expect("the WebDriver server answers");
            if response.status().is_success() {
                let body: Value = response.json().expect("WebDriver answers JSON");
                let id = body["value"][ELEMENT_KEY]
                    .as_str()
                    .unwrap_or_else(|| panic!("find element answered {body}"))
                    .to_owned();
                return Element(id);
            }
            if Instant::now() >= deadline {
                let page = self.execute("return document.body.innerText", json!([]));
                panic!("no element matches {by:?} after {timeout:?}; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The rendered text of an element.
    pub fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .as_str()
            .expect("element text is a string")
            .to_owned()
    }

    /// Whether the element is visible to the user.
    pub fn is_displayed(&self, element: &Element) -> bool {
        self.get(&format!("/element/{}/displayed", element.0))
            .as_bool()
            .expect("displayed is a boolean")
    }

    /// Clicks the element.
    pub fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}));
    }

    /// Replaces the text of an input with `text`, typed key by key as a
    /// person would (the page hears every keystroke).
    pub fn type_into(&self, element: &Element, text: &str) {
        self.post(&format!("/element/{}/clear", element.0), json!({}));
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        );
    }

    /// An attribute of an element, or `None` when it has none.
    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", element.0))
            .as_str()
            .map(str::to_owned)
    }

    /// Runs `script` in the page (synchronously) and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.get("/screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("the screenshot is base64 text"))
            .expect("the screenshot is valid base64");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(path, png).expect("the screenshot can be written");
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.driver.http.delete(&self.url).send();
    }
}

/// Sends a WebDriver request and returns its `value`, or panics with the
/// driver's error.
fn call(request: reqwest::blocking::RequestBuilder, what: &str) -> Value {
    let response = request
        .send()
        .unwrap_or_else(|err| panic!("WebDriver {what}: {err}"));
    let status = response.status();
    let body: Value = response
        .json()
        .unwrap_or_else(|err| panic!("WebDriver {what}: unreadable answer ({err})"));
    assert!(
        status.is_success(),
        "WebDriver {what} failed ({status}): {body}"
    );
    body["value"].clone()
}

fn tauri_driver_path() -> PathBuf {
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin").join("tauri-driver"));
    match in_cargo_home {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("tauri-driver"),
    }
}

/// Waits until no desktop app instance is left on the session bus: the
/// app runs once per user, so a new one would hand over to an instance
/// still ending and exit. The name it holds there is what decides, and it
/// goes only once that instance has fully ended (its process may already
/// be gone from `/proc`).
///
/// # Panics
///
/// If an instance is still there after `timeout`.
pub fn wait_until_no_instance(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while bus_name_has_owner(SINGLE_INSTANCE_NAME) {
        assert!(
            Instant::now() < deadline,
            "a desktop app still holds {SINGLE_INSTANCE_NAME} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The session-bus name a running desktop app holds (its identifier and
/// `.SingleInstance`, from the single-instance plugin).
const SINGLE_INSTANCE_NAME: &str = "org.escale.desktop.SingleInstance";

/// Whether `name` has an owner on the session bus; `false` without a bus.
fn bus_name_has_owner(name: &str) -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return false;
    }
    Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{name}"),
        ])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("boolean true"))
}
