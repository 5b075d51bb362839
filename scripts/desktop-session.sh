#!/usr/bin/env bash
# Runs a command as inside a fresh desktop session: a private session bus,
# an unlocked GNOME keyring of its own (never the user's), and a virtual X
# display. Everything started here ends with the command.
#   scripts/desktop-session.sh COMMAND [ARGS...]
set -euo pipefail
if [ -z "${ESCALE_IN_DESKTOP_SESSION:-}" ]; then
  export ESCALE_IN_DESKTOP_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi
export NO_AT_BRIDGE=1
# The keyring files go to a throwaway folder, not the user's.
XDG_DATA_HOME="$(mktemp -d)"
XDG_RUNTIME_DIR="$(mktemp -d)"
export XDG_DATA_HOME XDG_RUNTIME_DIR
trap 'rm -rf "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"' EXIT
eval "$(printf 'escale-test-keyring' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
xvfb-run --auto-servernum --server-args='-screen 0 1280x800x24' "$@"
