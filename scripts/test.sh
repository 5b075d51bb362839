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
# A clean checkout is built once: incremental compilation data would only
# take disk space.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
report_free_space

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

step "Relays on real servers, the desktop app and the keyring, end to end"
# Real FTP, WebDAV, S3, SFTP and rclone servers on 127.0.0.1 in a fresh
# folder of their own, stopped when the tests end, pass or fail. The desktop
# app and the keyring tests run in a private session bus with an unlocked
# keyring, a virtual display and WebDriver, inside the same servers' run.
cargo build --package escale-desktop --locked
report_free_space
servers_dir="$(mktemp -d)"
chmod 755 "$servers_dir"
scripts/relay-servers.sh run "$servers_dir" -- bash -c '
  set -e
  echo "==> Relay backends: conformance on every server"
  cargo test --package escale-core --lib --locked -- --ignored relay::
  echo "==> escale check and syncing through the servers"
  cargo test --package escale-e2e --test check --test network --test faults --locked -- --ignored
  echo "==> Desktop app and keyring (session bus, keyring, Xvfb, WebDriver)"
  scripts/desktop-session.sh cargo test --package escale-e2e --test desktop --test keyring --test setup_wizard \
    --locked -- --ignored --test-threads=1
'
rm -rf "$servers_dir"

step "All tests passed"
