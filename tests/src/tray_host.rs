//! A minimal system-tray host on the session bus, so tests can see the
//! app's tray icon and click its menu items as a desktop's panel would.
//!
//! Desktop panels (KDE, GNOME's AppIndicator extension, XFCE…) implement the
//! `org.kde.StatusNotifierWatcher` service; applications register their
//! icon with it and export their menu with the `com.canonical.dbusmenu`
//! interface. This host implements just enough of both ends to list the
//! menu and send "clicked" events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy, connection};
use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

type Registrations = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Registrations,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        // Items register either an object path on their own connection or
        // a bus name serving the default path.
        let registration = if service.starts_with('/') {
            (sender, service.to_owned())
        } else {
            (service.to_owned(), "/StatusNotifierItem".to_owned())
        };
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(registration);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, path)| format!("{name}{path}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The tray host, serving on the session bus until dropped.
pub struct TrayHost {
    connection: Connection,
    items: Registrations,
}

impl TrayHost {
    /// Claims `org.kde.StatusNotifierWatcher` on the session bus.
    ///
    /// # Panics
    ///
    /// If there is no session bus (run the test under `dbus-run-session`)
    /// or another tray host already runs on it.
    pub fn start() -> TrayHost {
        let items = Registrations::default();
        let watcher = Watcher {
            items: Arc::clone(&items),
        };
        let connection = connection::Builder::session()
            .and_then(|builder| builder.name("org.kde.StatusNotifierWatcher"))
            .and_then(|builder| builder.serve_at("/StatusNotifierWatcher", watcher))
            .and_then(|builder| builder.build())
            .expect("a session bus without another tray host (run under dbus-run-session)");
        TrayHost { connection, items }
    }

    /// Waits for an application to register its tray icon.
    ///
    /// # Panics
    ///
    /// If none registers within `timeout`.
    pub fn wait_for_item(&self, timeout: Duration) -> TrayItem {
        let deadline = Instant::now() + timeout;
        loop {
            let first = self
                .items
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .first()
                .cloned();
            if let Some((bus_name, path)) = first {
                return TrayItem {
                    connection: self.connection.clone(),
                    bus_name,
                    path,
                };
            }
            assert!(
                Instant::now() < deadline,
                "no tray icon was registered within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An application's tray icon as the host sees it.
pub struct TrayItem {
    connection: Connection,
    bus_name: String,
    path: String,
}

impl TrayItem {
    fn item_proxy(&self) -> Proxy<'_> {
        Proxy::new(
            &self.connection,
            self.bus_name.as_str(),
            self.path.as_str(),
            "org.kde.StatusNotifierItem",
        )
        .expect("a proxy for the tray item")
    }

    /// A property of the icon itself, such as `ToolTip` or `IconName`.
    pub fn property<T>(&self, name: &str) -> T
    where
        T: TryFrom<OwnedValue>,
        T::Error: Into<zbus::Error>,
    {
        self.item_proxy()
            .get_property(name)
            .unwrap_or_else(|err| panic!("tray item property {name}: {err}"))
    }

    fn menu_proxy(&self) -> Proxy<'_> {
        let menu: OwnedObjectPath = self.property("Menu");
        Proxy::new(
            &self.connection,
            self.bus_name.clone(),
            menu,
            "com.canonical.dbusmenu",
        )
        .expect("a proxy for the tray menu")
    }

    /// The menu's items as `(id, label)`, labels without mnemonic underscores.
    pub fn menu_items(&self) -> Vec<(i32, String)> {
        type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let menu = self.menu_proxy();
        // The whole tree (depth -1) from the root item (id 0), labels only.
        let (_revision, (_root, _properties, children)): (u32, Node) = menu
            .call("GetLayout", &(0i32, -1i32, vec!["label"]))
            .expect("the tray menu gives its layout");
        let mut items = Vec::new();
        for child in &children {
            collect_labels(child, &mut items);
        }
        items
    }

    /// Clicks the menu item labelled `label`.
    ///
    /// # Panics
    ///
    /// If the menu has no such item.
    pub fn click(&self, label: &str) {
        let items = self.menu_items();
        let id = items
            .iter()
            .find(|(_, text)| text == label)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("the tray menu has no {label:?} item: {items:?}"));
        let menu = self.menu_proxy();
        let () = menu
            .call("Event", &(id, "clicked", Value::I32(0), 0u32))
            .expect("the tray menu takes the click");
    }
}

/// Walks one `(id, properties, children)` node of a dbusmenu layout.
fn collect_labels(node: &Value<'_>, items: &mut Vec<(i32, String)>) {
    let node = match node {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(structure) = node else {
        return;
    };
    let [
        Value::I32(id),
        Value::Dict(properties),
        Value::Array(children),
    ] = structure.fields()
    else {
        return;
    };
    if let Ok(Some(label)) = properties.get::<&str, String>(&"label") {
        items.push((*id, label.replace('_', "")));
    }
    for child in children.iter() {
        collect_labels(child, items);
    }
}
