//! The desktop app set up and used as an office user would: the setup
//! wizard clicked through in the real app (tauri-driver and
//! WebKitWebDriver under a virtual display), its passphrase in the session's
//! keyring, a command-line computer sending it files, pause and resume from
//! the window, and a wrong passphrase refused.
//!
//! Screenshots of every step land in the artifacts folder.
//!
//! Needs a display, a session bus with an unlocked keyring and
//! tauri-driver, so a plain `cargo test` skips it; `scripts/test.sh` runs it
//! inside `scripts/desktop-session.sh`.

// Helpers of a test panic on failure: the panic is the test report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use escale_e2e::webdriver::{By, Element, Session, TauriDriver};
use escale_e2e::world::wait_until;
use escale_e2e::{
    artifacts_dir, binary, escale, files_containing, keyring_passphrase, run_ok, set_up_command,
};

const PASSPHRASE: &str = "correct horse battery staple 42";

fn desktop_binary() -> PathBuf {
    binary("escale-desktop", "escale-desktop")
}

/// What a person sees and clicks, found by its words.
struct Person<'s, 'd> {
    session: &'s Session<'d>,
}

impl Person<'_, '_> {
    fn wait(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn button(&self, text: &str) -> Element {
        self.session.wait_for(
            By::XPath(&format!("//button[normalize-space()='{text}']")),
            self.wait(),
        )
    }

    fn press(&self, text: &str) {
        let button = self.button(text);
        self.session.click(&button);
    }

    /// Picks one of the big choice cards.
    fn choose(&self, title: &str) {
        let card = self.session.wait_for(
            By::XPath(&format!(
                "//label[.//*[normalize-space()='{title}']]//input"
            )),
            self.wait(),
        );
        self.session.click(&card);
    }

    /// The text field labelled `label`.
    fn field(&self, label: &str) -> Element {
        self.session.wait_for(
            By::XPath(&format!(
                "//input[@id=//label[normalize-space()='{label}']/@for]"
            )),
            self.wait(),
        )
    }

    fn fill(&self, label: &str, text: &str) {
        let field = self.field(label);
        self.session.type_into(&field, text);
    }

    fn tick(&self, label_start: &str) {
        let label = self.session.wait_for(
            By::XPath(&format!(
                "//label[starts-with(normalize-space(), '{label_start}')]"
            )),
            self.wait(),
        );
        self.session.click(&label);
    }

    fn sees(&self, text: &str) {
        self.session.wait_for(
            By::XPath(&format!(
                "//*[contains(normalize-space(text()), \"{text}\")]"
            )),
            self.wait(),
        );
    }

    fn page_text(&self) -> String {
        self.session
            .execute("return document.body.innerText", serde_json::json!([]))
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the folder's card shows `state`.
    fn card_in(&self, name: &str, state: &str, timeout: Duration) -> Element {
        self.session.wait_for(
            By::Css(&format!(
                "[data-repository='{name}'] [data-state='{state}']"
            )),
            timeout,
        )
    }

    fn shot(&self, name: &str) {
        // The page may have changed since it was last painted: a screenshot
        // right after a change can show the frame before it.
        std::thread::sleep(Duration::from_millis(500));
        let path = artifacts_dir().join(format!("{name}.png"));
        self.session.screenshot(&path);
        println!("screenshot: {}", path.display());
    }
}

/// A computer of the repository using the command line, without keyring.
struct Cli {
    config: PathBuf,
    folder: PathBuf,
}

impl Cli {
    fn join(root: &Path, relay: &Path) -> Cli {
        let cli = Cli {
            config: root.join("cli-config"),
            folder: root.join("cli-folder"),
        };
        run_ok(
            set_up_command(&cli.config, "join", "Reports", &cli.folder, relay)
                .env("ESCALE_PASSPHRASE", PASSPHRASE),
        );
        cli
    }

    fn sync(&self) {
        run_ok(
            escale(&self.config)
                .arg("sync")
                .env("ESCALE_PASSPHRASE", PASSPHRASE),
        );
    }
}

/// With the folder paused: file `name` sent by `cli` does not arrive, even
/// on "Sync now" (`while_paused` runs then), and arrives after "Resume".
fn nothing_arrives_until_resumed(
    person: &Person<'_, '_>,
    cli: &Cli,
    app_folder: &Path,
    name: &str,
    while_paused: impl FnOnce(&Person<'_, '_>),
) {
    fs::write(cli.folder.join(name), "sent while paused").unwrap();
    cli.sync();
    person.press("Sync now");
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !app_folder.join(name).exists(),
        "a paused folder received {name}"
    );
    person.card_in("Reports", "paused", Duration::from_secs(1));
    while_paused(person);
    person.press("Resume");
    wait_until(
        Duration::from_secs(60),
        "the file sent while paused arrives after the resume",
        || app_folder.join(name).exists(),
    );
}

/// Clicks through the storage step with a local folder as the relay.
fn choose_local_storage(person: &Person<'_, '_>, relay: &Path) {
    person.choose("Network or local folder");
    person.fill(
        "Folder on the network or this computer",
        &relay.display().to_string(),
    );
    person.press("Test connection");
    person.sees("The connection works.");
}

#[test]
#[ignore = "needs a display, a keyring and tauri-driver; run by scripts/test.sh"]
fn the_wizard_sets_up_a_folder_that_receives_from_another_computer_and_pauses() {
    let root = tempfile::tempdir().unwrap();
    let relay = root.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let app_config = root.path().join("app-config");
    let app_folder = root.path().join("Reports");
    // A home of its own: starting at login writes in ~/.config/autostart.
    let home = root.path().join("home");
    fs::create_dir(&home).unwrap();
    let autostart = home.join(".config/autostart/Escale.desktop");
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", &app_config), ("HOME", &home)]);
    let session = driver.session(&desktop_binary());
    let person = Person { session: &session };

    // 1. Create or join.
    person.press("Add a synced folder");
    person.choose("Create a new shared folder");
    person.shot("wizard-1-create-or-join");
    person.press("Next");

    // 2. The storage, tested.
    choose_local_storage(&person, &relay);
    session.execute(
        "document.getElementById('check-status').scrollIntoView({block: 'center'})",
        serde_json::json!([]),
    );
    person.shot("wizard-2-storage-tested");
    person.press("Next");

    // 3. The folder on this computer, and its name.
    person.fill("Folder on this computer", &app_folder.display().to_string());
    person.fill("Name", "Reports");
    person.shot("wizard-3-folder");
    person.press("Next");

    // 4. The passphrase, twice, and the warning acknowledged.
    person.fill("Passphrase", PASSPHRASE);
    person.fill("Type the passphrase again", PASSPHRASE);
    person.tick("I understand that a lost passphrase cannot be recovered");
    person.shot("wizard-4-passphrase");
    person.press("Next");

    // 5. The summary, advanced options open, then go.
    let advanced = session.wait_for(
        By::XPath(
            "//*[self::summary or self::button][contains(normalize-space(), 'Advanced options')]",
        ),
        person.wait(),
    );
    session.click(&advanced);
    person.shot("wizard-5-finish");
    person.press("Start syncing");
    person.card_in("Reports", "idle", Duration::from_secs(60));

    // With a folder to keep in sync, Escale starts at login by default.
    let entry = fs::read_to_string(&autostart)
        .unwrap_or_else(|error| panic!("no login entry at {}: {error}", autostart.display()));
    assert!(entry.contains("escale-desktop"), "{entry}");

    // The passphrase is in the keyring, and in no file.
    assert_eq!(keyring_passphrase(&relay).as_deref(), Some(PASSPHRASE));
    let found = files_containing(&[&app_config, &app_folder, &relay], PASSPHRASE.as_bytes());
    assert!(found.is_empty(), "the passphrase is written in {found:?}");
    // The command line sees the folder the app set up: one settings folder.
    let settings = fs::read_to_string(app_config.join("config.toml")).unwrap();
    assert!(settings.contains("name = \"Reports\""), "{settings}");

    // Another computer joins from the command line and sends files.
    let cli = Cli::join(root.path(), &relay);
    // Enough for the receiving to take a few seconds, to be seen.
    for i in 0..1500 {
        fs::write(
            cli.folder.join(format!("report-{i:04}.txt")),
            vec![b'r'; 20_000],
        )
        .unwrap();
    }
    fs::write(
        cli.folder.join("big.bin"),
        escale_e2e::world::noise(60_000_000, 7),
    )
    .unwrap();
    cli.sync();

    // The app receives them: it shows the work, then the result.
    session.execute("window.scrollTo(0, 0)", serde_json::json!([]));
    person.card_in("Reports", "syncing", Duration::from_secs(60));
    // A screenshot of the big file under way, its bytes counting.
    wait_until(Duration::from_secs(60), "bytes received shown", || {
        session.execute(
            "const bar = document.querySelector(\"[data-repository='Reports'] progress\"); \
             return bar !== null && bar.value > 0;",
            serde_json::json!([]),
        ) == serde_json::json!(true)
    });
    person.shot("main-window-syncing");
    wait_until(Duration::from_secs(120), "all 1,501 files received", || {
        fs::read_dir(&app_folder)
            .map(|entries| {
                entries
                    .filter(|entry| {
                        let name = entry.as_ref().unwrap().file_name();
                        let name = name.to_string_lossy();
                        name.starts_with("report-") || name == "big.bin"
                    })
                    .count()
                    == 1501
            })
            .unwrap_or(false)
    });
    person.card_in("Reports", "idle", Duration::from_secs(60));
    person.sees("files received");
    assert_eq!(
        fs::read(app_folder.join("big.bin")).unwrap(),
        escale_e2e::world::noise(60_000_000, 7)
    );
    // The app's log tells what happened, where "Open log folder" leads.
    let log = fs::read_to_string(app_config.join("logs/escale-desktop.log")).unwrap();
    assert!(
        log.lines()
            .any(|line| line.contains("Reports: sent 0 change(s), received")),
        "{log}"
    );

    // The other computer is listed, with everything delivered to it.
    person.sees("Delivered to 1 of 1 computer");
    person.shot("main-window-at-rest");

    // Paused from the window: nothing arrives until resumed.
    person.press("Pause");
    person.card_in("Reports", "paused", Duration::from_secs(30));
    nothing_arrives_until_resumed(&person, &cli, &app_folder, "while-paused.txt", |person| {
        person.shot("main-window-paused");
    });
    person.card_in("Reports", "idle", Duration::from_secs(60));

    // The shared storage goes away: the card says so in plain words.
    let moved = root.path().join("relay-away");
    fs::rename(&relay, &moved).unwrap();
    person.press("Sync now");
    person.card_in("Reports", "error", Duration::from_secs(60));
    person.shot("main-window-error");
    let page = person.page_text();
    assert!(page.contains("Needs your attention"), "{page}");
    fs::rename(&moved, &relay).unwrap();

    // Starting at login is the person's choice.
    person.tick("Start Escale when I log in");
    wait_until(Duration::from_secs(10), "the login entry removed", || {
        !autostart.exists()
    });
}

#[test]
#[ignore = "needs a display, a keyring and tauri-driver; run by scripts/test.sh"]
fn joining_with_a_wrong_passphrase_says_so_and_sets_up_nothing() {
    let root = tempfile::tempdir().unwrap();
    let relay = root.path().join("relay");
    fs::create_dir(&relay).unwrap();
    run_ok(
        set_up_command(
            &root.path().join("first"),
            "init",
            "Reports",
            &root.path().join("first-folder"),
            &relay,
        )
        .env("ESCALE_PASSPHRASE", PASSPHRASE),
    );
    let app_config = root.path().join("app-config");
    let app_folder = root.path().join("Reports");
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", &app_config)]);
    let session = driver.session(&desktop_binary());
    let person = Person { session: &session };

    person.press("Add a synced folder");
    person.choose("Join an existing shared folder");
    person.press("Next");
    choose_local_storage(&person, &relay);
    person.press("Next");
    person.fill("Folder on this computer", &app_folder.display().to_string());
    person.fill("Name", "Reports");
    person.press("Next");
    person.fill("Passphrase", "not the passphrase at all");
    person.press("Next");
    person.sees("This passphrase does not open the shared folder.");
    person.shot("wizard-wrong-passphrase");

    // Nothing was set up: no settings, no state, no folder.
    let settings = fs::read_to_string(app_config.join("config.toml")).unwrap_or_default();
    assert!(!settings.contains("Reports"), "{settings}");
    assert!(!app_config.join("state").exists());
    assert!(!app_folder.exists(), "the folder was created");
    assert_eq!(keyring_passphrase(&relay), None);
}

#[test]
#[ignore = "needs a display, a keyring and tauri-driver; run by scripts/test.sh"]
fn a_folder_set_up_from_the_command_line_appears_and_its_missing_files_are_confirmed_from_the_window()
 {
    let root = tempfile::tempdir().unwrap();
    let relay = root.path().join("relay");
    fs::create_dir(&relay).unwrap();
    let app_config = root.path().join("app-config");
    let app_folder = root.path().join("Reports");
    let home = root.path().join("home");
    fs::create_dir(&home).unwrap();
    let driver = TauriDriver::start(&[("ESCALE_CONFIG_DIR", &app_config), ("HOME", &home)]);
    let session = driver.session(&desktop_binary());
    let person = Person { session: &session };
    person.button("Add a synced folder");
    let started = std::time::Instant::now();
    let step = |what: &str| println!("{:>6.1} s  {what}", started.elapsed().as_secs_f64());

    // Set up from the command line while the app runs, in the settings
    // folder they share, its passphrase saved in the keyring: the window
    // shows it and it syncs, no restart.
    run_ok(
        set_up_command(&app_config, "init", "Reports", &app_folder, &relay)
            .env_remove("ESCALE_NO_KEYRING")
            .env("ESCALE_PASSPHRASE", PASSPHRASE),
    );
    person.card_in("Reports", "idle", Duration::from_secs(60));
    step("set up from the command line, shown and idle");

    // A dozen files reach another computer.
    let names: Vec<String> = (0..12).map(|i| format!("letter-{i:02}.txt")).collect();
    for name in &names {
        fs::write(app_folder.join(name), name.as_bytes()).unwrap();
    }
    let cli = Cli::join(root.path(), &relay);
    let cli_has = |name: &String| cli.folder.join(name).exists();
    step("files written");
    wait_until(Duration::from_secs(60), "the dozen files received", || {
        cli.sync();
        names.iter().all(cli_has)
    });

    step("dozen received");

    // All of them vanish at once, as when a drive is disconnected: the app
    // pauses rather than delete them on the other computer, and says why.
    for name in &names {
        fs::remove_file(app_folder.join(name)).unwrap();
    }
    person.card_in("Reports", "paused", Duration::from_secs(60));
    step("paused");
    person.sees("Many files went missing from this folder at once");
    person.shot("main-window-many-files-missing");
    cli.sync();
    assert!(names.iter().all(cli_has), "deletions were sent unconfirmed");

    // Deleted on purpose: the person confirms, and the other computer
    // loses them too.
    person.press("Delete them on the other computers too…");
    person.press("Yes, delete them everywhere");
    step("confirmed");
    person.card_in("Reports", "idle", Duration::from_secs(60));
    wait_until(Duration::from_secs(60), "the deletions received", || {
        cli.sync();
        !names.iter().any(cli_has)
    });
    step("deletions received");

    // A pause outlives a restart of the app.
    person.press("Pause");
    person.card_in("Reports", "paused", Duration::from_secs(30));
    drop(session);
    let session = driver.session(&desktop_binary());
    let person = Person { session: &session };
    person.card_in("Reports", "paused", Duration::from_secs(60));
    step("still paused after a restart");
    nothing_arrives_until_resumed(&person, &cli, &app_folder, "after-restart.txt", |_| {});
    step("resumed");
}
