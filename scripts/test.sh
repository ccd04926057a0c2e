#!/usr/bin/env bash
# The test command: installs and starts NATS (JetStream) and ClickHouse on 127.0.0.1,
# checks formatting and lints, runs every test against the real servers, and stops the
# servers again, also on failure. Safe to run again on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/servers.sh

trap stop_servers EXIT
start_servers

# Databases earlier test runs left behind (a failed test keeps its data for inspection).
for db in $(curl -fsS "http://127.0.0.1:8123/?query=SELECT%20name%20FROM%20system.databases%20WHERE%20name%20LIKE%20'cs%5C_%25'"); do
  curl -fsS --data-binary "DROP DATABASE IF EXISTS \`$db\`" http://127.0.0.1:8123/ >/dev/null
done

bash scripts/check-chart.sh # Helm chart and Dockerfile, offline (docs/kubernetes.md)
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked --no-fail-fast
