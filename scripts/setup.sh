# Shared set-up steps for run-app.sh and test.sh: install only what is
# missing, so a second run goes straight to work. Sourced, not executed.
# Targets Debian 12 (bookworm) and its derivatives.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

# What the desktop app needs to build (Tauri 2 on WebKitGTK 4.1).
BUILD_PACKAGES=(build-essential pkg-config curl ca-certificates libssl-dev
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev)
# What the test suite needs: a virtual display, the WebKit WebDriver, a
# session bus and keyring, ImageMagick and librsvg for the icon check.
TEST_PACKAGES=(xvfb xauth webkit2gtk-driver dbus gnome-keyring libsecret-tools
  keyutils imagemagick librsvg2-bin)
# Node.js for building the UI, from Debian when it is not installed at all.
NODE_PACKAGES=(nodejs npm)

TAURI_DRIVER_VERSION=2.1.0

step() { printf '\n==> %s\n' "$*"; }

# Prints the free space where the build and the test servers write, and
# warns when it is short: the servers then answer "storage full", and the
# failures look like bugs.
report_free_space() {
  local dir free_kb
  for dir in "${CARGO_TARGET_DIR:-$ROOT/target}" "${TMPDIR:-/tmp}"; do
    mkdir -p "$dir"
    free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
    printf '    %s MiB free for %s\n' "$((free_kb / 1024))" "$dir"
    if [ "$free_kb" -lt $((3 * 1024 * 1024)) ]; then
      printf '    warning: under 3 GiB free; tests that write large files may fail with "no space left"\n' >&2
    fi
  done
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages among "$@" that are not installed yet.
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "Installing system packages: ${missing[*]}"
  if [ -z "${ESCALE_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    export ESCALE_APT_UPDATED=1
  fi
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Rust through rustup; rust-toolchain.toml then selects the exact version.
ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    step "Installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y --profile minimal --default-toolchain none
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    ensure_apt_packages "${NODE_PACKAGES[@]}"
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 18 ]; then
    echo "error: Node.js 18 or newer is needed to build the UI (found $(node --version))." >&2
    exit 1
  fi
}

# `npm ci` only when package-lock.json changed since the last install.
ensure_ui_dependencies() {
  local stamp="$ROOT/ui/node_modules/.escale-lock-sum" sum
  sum="$(sha256sum "$ROOT/ui/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    step "Installing UI dependencies (npm ci)"
    (cd "$ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}

build_ui() {
  step "Building the UI"
  (cd "$ROOT/ui" && npm run --silent build)
}

ensure_tauri_driver() {
  if ! cargo install --list | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"; then
    step "Installing tauri-driver $TAURI_DRIVER_VERSION"
    cargo install "tauri-driver@$TAURI_DRIVER_VERSION" --locked --quiet
  fi
}
