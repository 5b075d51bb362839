#!/usr/bin/env bash
# Escale's performance against curl and rclone on the real test servers:
# one big file, many small files, a rescan, latency and idle cost (see
# docs/performance.md). Prints every figure with its reference, its ratio
# and its target, and writes the table to target/bench/results.md.
#
#   scripts/bench.sh                       the full run (about 15 minutes)
#   ESCALE_BENCH_BIG_MB=100 ESCALE_BENCH_RUNS=1 scripts/bench.sh   a quick look
#
# Other settings are listed at the top of tests/benches/performance.rs.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# /usr/bin/time reports the peak memory of each command.
ensure_apt_packages "${BUILD_PACKAGES[@]}" time curl
ensure_rust
cd "$ROOT"

step "Building escale and the bench (release)"
cargo build --release --locked --package escale-cli
cargo bench --locked --package escale-e2e --bench performance --no-run
report_free_space

step "Benchmarks (the relay servers start first)"
mkdir -p target/bench
servers_dir="$(mktemp -d)"
chmod 755 "$servers_dir"
status=0
ESCALE_BENCH_BIN="$ROOT/target/release/escale" \
  ESCALE_BENCH_RESULTS="${ESCALE_BENCH_RESULTS:-$ROOT/target/bench/results.md}" \
  scripts/relay-servers.sh run "$servers_dir" -- \
  cargo bench --locked --package escale-e2e --bench performance || status=$?
rm -rf "$servers_dir"
exit "$status"
