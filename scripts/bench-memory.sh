#!/usr/bin/env bash
# Peak memory of `escale sync` sending and receiving one 300 MB file through
# a local-folder relay, measured with /usr/bin/time -v on a release build.
# Target: under 200 MB each. Prints the figures; exits 1 if a target is missed.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_apt_packages time
ensure_rust
cd "$ROOT"
step "Building escale (release)"
cargo build --release --quiet --package escale-cli
escale="$ROOT/target/release/escale"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ESCALE_PASSPHRASE="bench passphrase"
mkdir -p "$work/relay" "$work/a"
"$escale" --config-dir "$work/config-a" init bench --folder "$work/a" --relay "file://$work/relay" >/dev/null
"$escale" --config-dir "$work/config-b" join bench --folder "$work/b" --relay "file://$work/relay" >/dev/null
head -c 300000000 /dev/urandom >"$work/a/big.bin"

limit_kb=$((200 * 1024))
status=0
measure() { # label, config dir
  local out="$work/time-$1.txt" kb seconds
  /usr/bin/time -v "$escale" --config-dir "$2" sync >/dev/null 2>"$out"
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
  seconds=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out")
  printf '%-10s peak RSS %6d MB (target < 200 MB)   wall %s\n' "$1" $((kb / 1024)) "$seconds"
  [ "$kb" -lt "$limit_kb" ] || status=1
}
step "Peak memory, one 300 MB file"
measure sending "$work/config-a"
measure receiving "$work/config-b"
cmp "$work/a/big.bin" "$work/b/big.bin" && echo "content identical"
exit $status
