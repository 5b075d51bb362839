//! Looking at and closing the app's windows through the X server, the way a
//! window manager does when the user clicks a window's close button.

use std::time::{Duration, Instant};

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask, MapState, Window,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A connection to the X display named by `$DISPLAY`.
pub struct Display {
    conn: RustConnection,
    root: Window,
}

impl Display {
    /// Connects to `$DISPLAY`.
    ///
    /// # Panics
    ///
    /// If there is no display (run the test under `xvfb-run`).
    pub fn connect() -> Display {
        // Xvfb can reset a connection made while it is still cleaning up
        // after a client that just went away (the previous test's app):
        // try again for a few seconds before calling it missing.
        let mut attempts = 0;
        let (conn, screen) = loop {
            match x11rb::connect(None) {
                Ok(connected) => break connected,
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("X display not ready ({error}); retrying");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(error) => panic!("no X display (run under xvfb-run): {error}"),
            }
        };
        let root = conn.setup().roots[screen].root;
        Display { conn, root }
    }

    fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .expect("intern_atom request")
            .reply()
            .expect("intern_atom reply")
            .atom
    }

    fn title(&self, window: Window) -> Option<String> {
        let utf8 = self.atom("UTF8_STRING");
        for (property, kind) in [
            (self.atom("_NET_WM_NAME"), utf8),
            (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
        ] {
            let reply = self
                .conn
                .get_property(false, window, property, kind, 0, 1024)
                .ok()?
                .reply()
                .ok()?;
            if !reply.value.is_empty() {
                return Some(String::from_utf8_lossy(&reply.value).into_owned());
            }
        }
        None
    }

    /// Top-level windows whose title is exactly `title`.
    pub fn windows_titled(&self, title: &str) -> Vec<Window> {
        let tree = self
            .conn
            .query_tree(self.root)
            .expect("query_tree request")
            .reply()
            .expect("query_tree reply");
        tree.children
            .into_iter()
            .filter(|&window| self.title(window).as_deref() == Some(title))
            .collect()
    }

    /// Whether `window` is currently shown.
    pub fn is_viewable(&self, window: Window) -> bool {
        self.conn
            .get_window_attributes(window)
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .is_some_and(|attributes| attributes.map_state == MapState::VIEWABLE)
    }

    /// Waits until a window titled `title` is shown, and returns it.
    ///
    /// # Panics
    ///
    /// If none is shown within `timeout`.
    pub fn wait_for_viewable(&self, title: &str, timeout: Duration) -> Window {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(window) = self
                .windows_titled(title)
                .into_iter()
                .find(|&window| self.is_viewable(window))
            {
                return window;
            }
            assert!(
                Instant::now() < deadline,
                "no window titled {title:?} was shown within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `window` is hidden or gone.
    ///
    /// # Panics
    ///
    /// If it is still shown after `timeout`.
    pub fn wait_until_hidden(&self, window: Window, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.is_viewable(window) {
            assert!(
                Instant::now() < deadline,
                "the window was still shown after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks `window` to close, as a window manager does for the close
    /// button: a `WM_DELETE_WINDOW` message the application may refuse.
    pub fn request_close(&self, window: Window) {
        let event = ClientMessageEvent::new(
            32,
            window,
            self.atom("WM_PROTOCOLS"),
            [self.atom("WM_DELETE_WINDOW"), x11rb::CURRENT_TIME, 0, 0, 0],
        );
        self.conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .expect("send_event request");
        self.conn.sync().expect("the X server took the request");
    }
}
