#!/usr/bin/env bash
# The test command: installs and starts NATS (JetStream) and ClickHouse on 127.0.0.1,
# checks formatting and lints, runs every test against the real servers, and stops the
# servers again, also on failure. Safe to run again on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/servers.sh

trap stop_servers EXIT
start_servers

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked --no-fail-fast
