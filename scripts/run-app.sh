#!/usr/bin/env bash
# Installs what is missing, builds, and starts the Escale desktop app.
# Extra arguments are passed to the app.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_apt_packages "${BUILD_PACKAGES[@]}"
ensure_rust
ensure_node
ensure_ui_dependencies
build_ui

step "Starting Escale (it keeps running in the tray when its window is closed)"
cd "$ROOT"
exec cargo run --quiet --package escale-desktop -- "$@"
