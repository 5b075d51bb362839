//! Starts the Escale desktop app. Everything lives in the library crate so
//! that it can be tested without a display.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    escale_desktop::run();
}
