#!/usr/bin/env bash
# The main command. For now it builds CustomerSignal and loads, validates and prints the
# example Sources and AlertRules in standalone mode; the full pipeline demo (events in through
# the Segment API, rows in ClickHouse, signed webhooks out) grows from here.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p evaluator
./target/release/evaluator check --rules "${1:-examples}"
