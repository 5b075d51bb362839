//! The real desktop app, driven as a user would: under a virtual display,
//! through tauri-driver and WebKitWebDriver, and through the X server and
//! the session bus for what lives outside the web view (window closing,
//! second launch, tray menu).
//!
//! These tests need a display, a session bus, tauri-driver and the desktop
//! build packages, so a plain `cargo test` skips them; `scripts/test.sh`
//! runs them under `dbus-run-session` and `xvfb-run` with `--ignored`.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use escale_e2e::tray_host::TrayHost;
use escale_e2e::webdriver::{By, TauriDriver, wait_until_no_instance};
use escale_e2e::x11::Display;
use escale_e2e::{artifacts_dir, binary};

fn desktop_binary() -> PathBuf {
    binary("escale-desktop", "escale-desktop")
}

fn write_settings(config_dir: &Path, body: &str) {
    fs::write(
        config_dir.join("config.toml"),
        format!("version = 1\n{body}"),
    )
    .expect("the settings file can be written");
}

#[test]
#[ignore = "needs a display and tauri-driver; run by scripts/test.sh"]
fn first_screen_offers_to_add_a_synced_folder() {
    let config = tempfile::tempdir().unwrap();
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", config.path())]);
    let session = driver.session(&desktop_binary());

    assert_eq!(session.title(), "Escale");
    let heading = session.wait_for(By::Css("h1"), Duration::from_secs(20));
    assert_eq!(session.text(&heading), "Keep your folders in sync");
    let add = session.wait_for(
        By::XPath("//button[normalize-space()='Add a synced folder']"),
        Duration::from_secs(5),
    );
    assert!(session.is_displayed(&add));
    // The first screen is shown only once the engine answered that no
    // folder is set up: a failed call would show an alert instead.
    let alerts = session.execute(
        "return document.querySelectorAll('[role=alert]').length",
        serde_json::json!([]),
    );
    assert_eq!(alerts, 0);

    let shot = artifacts_dir().join("desktop-first-screen.png");
    session.screenshot(&shot);
    println!("screenshot: {}", shot.display());
}

#[test]
#[ignore = "needs a display and tauri-driver; run by scripts/test.sh"]
fn window_lists_the_folders_from_the_shared_settings_file() {
    let config = tempfile::tempdir().unwrap();
    write_settings(
        config.path(),
        "[[repository]]\nname = \"Quarterly reports\"\nfolder = \"/srv/reports\"\nrelay = \"file:///mnt/relay\"\n",
    );
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", config.path())]);
    let session = driver.session(&desktop_binary());

    let card = session.wait_for(
        By::XPath("//*[normalize-space()='Quarterly reports']"),
        Duration::from_secs(20),
    );
    assert!(session.is_displayed(&card));
    let page = session.execute("return document.body.innerText", serde_json::json!([]));
    let page = page.as_str().unwrap();
    assert!(page.contains("/srv/reports"), "{page}");
    assert!(page.contains("file:///mnt/relay"), "{page}");
    session.screenshot(&artifacts_dir().join("desktop-folder-list.png"));
}

#[test]
#[ignore = "needs a display and tauri-driver; run by scripts/test.sh"]
fn broken_settings_show_a_plain_error_instead_of_the_first_screen() {
    let config = tempfile::tempdir().unwrap();
    write_settings(config.path(), "[[repository]\n");
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", config.path())]);
    let session = driver.session(&desktop_binary());

    let alert = session.wait_for(By::Css("[role=alert]"), Duration::from_secs(20));
    let text = session.text(&alert);
    assert!(text.contains("config.toml"), "{text}");
    session.screenshot(&artifacts_dir().join("desktop-settings-error.png"));
}

/// The app process, killed if the test ends before it quits by itself.
struct App(Child);

impl App {
    fn start(config_dir: &Path) -> App {
        let child = Command::new(desktop_binary())
            .env("ESCALE_CONFIG_DIR", config_dir)
            .spawn()
            .expect("the desktop app starts");
        App(child)
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("the app's status can be read") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn is_running(&mut self) -> bool {
        self.0
            .try_wait()
            .expect("the app's status can be read")
            .is_none()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs a display and a session bus; run by scripts/test.sh"]
fn closing_the_window_keeps_escale_in_the_tray_until_quit() {
    // The app runs once per user: one left by an earlier test must be gone.
    wait_until_no_instance(Duration::from_secs(30));
    let config = tempfile::tempdir().unwrap();
    let tray = TrayHost::start();
    let display = Display::connect();

    let mut app = App::start(config.path());
    let window = display.wait_for_viewable("Escale", Duration::from_secs(30));
    let icon = tray.wait_for_item(Duration::from_secs(20));
    let labels: Vec<String> = icon.menu_items().into_iter().map(|(_, l)| l).collect();
    assert!(
        labels.contains(&"Open Escale".to_owned()) && labels.contains(&"Quit Escale".to_owned()),
        "tray menu: {labels:?}"
    );

    // The close button hides the window; Escale keeps running in the tray.
    display.request_close(window);
    display.wait_until_hidden(window, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    assert!(app.is_running(), "closing the window ended Escale");

    // A second launch brings the first instance's window back and exits.
    let mut second = App::start(config.path());
    let status = second.wait_for_exit(Duration::from_secs(20));
    assert!(status.success(), "the second launch failed: {status}");
    let shown = display.wait_for_viewable("Escale", Duration::from_secs(10));
    assert_eq!(
        shown, window,
        "the second launch opened a window of its own"
    );
    assert!(app.is_running());

    // "Open Escale" in the tray menu brings the hidden window back.
    display.request_close(window);
    display.wait_until_hidden(window, Duration::from_secs(5));
    icon.click("Open Escale");
    display.wait_for_viewable("Escale", Duration::from_secs(10));

    // "Quit Escale" ends the app, cleanly.
    icon.click("Quit Escale");
    let status = app.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "Quit ended the app with {status}");
}
