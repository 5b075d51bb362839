#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite: formatting,
# lints, every Rust test, the UI's tests, the icon check, and the desktop
# app end to end under a virtual display. Stops at the first failure.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_apt_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
ensure_rust
ensure_node
ensure_ui_dependencies
ensure_tauri_driver
cd "$ROOT"

step "Checking formatting"
cargo fmt --all --check

build_ui

step "UI tests"
(cd ui && npm test --silent)

step "Icons are up to date with their master drawing"
icons/generate.sh --check

step "Lints (clippy, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests"
cargo test --workspace --locked

step "Relays on real servers (FTP, WebDAV, S3, SFTP, rclone on 127.0.0.1)"
# The servers live in a fresh folder of their own and are stopped when the
# tests end, pass or fail.
servers_dir="$(mktemp -d)"
chmod 755 "$servers_dir"
scripts/relay-servers.sh run "$servers_dir" -- bash -c '
  set -e
  cargo test --package escale-core --lib --locked -- --ignored relay::
  cargo test --package escale-e2e --test check --test network --test faults --locked -- --ignored
'
rm -rf "$servers_dir"

step "Desktop app and keyring end to end (session bus, keyring, Xvfb, WebDriver)"
cargo build --package escale-desktop --locked
scripts/desktop-session.sh \
  cargo test --package escale-e2e --test desktop --test keyring --locked -- --ignored --test-threads=1

step "All tests passed"
