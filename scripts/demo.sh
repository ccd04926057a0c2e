#!/usr/bin/env bash
# The main command: the whole pipeline on one machine. Starts NATS and ClickHouse, builds
# CustomerSignal, runs ingest and the evaluator in standalone mode on examples/, starts a
# webhook receiver that verifies signatures, replays a generated week of B2B product data
# through the Segment HTTP API, and prints what happened.
#
#   scripts/demo.sh [--keep-running] [--accounts N] [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/servers.sh

keep=false accounts=300 seed=7
while [ $# -gt 0 ]; do
  case $1 in
    --keep-running) keep=true ;;
    --accounts) accounts=$2; shift ;;
    --seed) seed=$2; shift ;;
    *) echo "usage: scripts/demo.sh [--keep-running] [--accounts N] [--seed N]" >&2; exit 2 ;;
  esac
  shift
done

demo=$CS_RUN_DIR/demo
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_servers
}
step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }

step "Starting NATS (with an empty JetStream store) and ClickHouse"
# A demo starts from nothing: alert state and streams of an earlier demo would resolve or
# redeliver its alerts here.
stop_nats
rm -rf "$CS_RUN_DIR/nats/js"
start_servers
if ! $keep; then trap cleanup EXIT; fi

step "Building ingest and evaluator (release)"
cargo build --release --locked -p ingest -p evaluator 2>&1 | tail -n 2

step "Preparing secrets (write keys, webhook signing secrets) in $demo/secrets"
rm -rf "$demo" && mkdir -p "$demo/secrets"
secret() { mkdir -p "$demo/secrets/$1/$2"; printf '%s' "$4" >"$demo/secrets/$1/$2/$3"; }
write_key="wk_demo_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
secret acme web-write-keys primary "$write_key"
secret globex mobile-write-keys primary "wk_demo_globex_$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for hook in growth-webhook sales-webhook; do
  secret acme "$hook" signing-secret "whsec_$(head -c 24 /dev/urandom | base64)"
done

step "Starting the webhook receiver on 127.0.0.1:9911"
python="$CS_TOOLS_DIR/venv/bin/python"
"$python" scripts/demo/receiver.py 9911 "$demo/webhooks.jsonl" \
  "/hooks/growth=$demo/secrets/acme/growth-webhook/signing-secret" \
  "/hooks/sales=$demo/secrets/acme/sales-webhook/signing-secret" &
pids+=($!)

step "Starting the evaluator and ingest (standalone, on examples/)"
database=customersignal_demo
curl -fsS --data-binary "DROP DATABASE IF EXISTS $database" "$CS_CLICKHOUSE_URL/" >/dev/null
./target/release/evaluator run --config examples --secrets-dir "$demo/secrets" \
  --clickhouse-database "$database" --listen 127.0.0.1:9090 --log-level warn &
pids+=($!)
# A 1 GiB stream: nats-server refuses a stream larger than the free disk can hold.
./target/release/ingest --sources examples/sources.yaml --secrets-dir "$demo/secrets" \
  --listen 127.0.0.1:8080 --stream-max-bytes 1073741824 --log-level warn &
pids+=($!)
wait_http http://127.0.0.1:8080/readyz ready 60 || { log "ingest did not become ready"; exit 1; }
wait_http http://127.0.0.1:9090/readyz ready 60 || { log "evaluator did not become ready"; exit 1; }

step "Replaying a week of product data for $accounts accounts through the Segment API"
result=$("$python" scripts/demo/generate.py http://127.0.0.1:8080 "$write_key" "$accounts" "$seed")
accepted=$(echo "$result" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')
expected=$(echo "$result" | "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["expected_alerts"]))')

step "Waiting for the evaluator to store everything and alert"
rows=0
for _ in $(seq 1 120); do
  rows=$(curl -fsS --data-binary "SELECT count() FROM $database.events FINAL WHERE tenant = 'acme'" "$CS_CLICKHOUSE_URL/")
  [ "$rows" -ge "$accepted" ] && break
  sleep 0.5
done
sleep 3
fired=$(grep -c '"notification": "firing"' "$demo/webhooks.jsonl" 2>/dev/null || true)

step "Summary"
cat <<SUMMARY
  events accepted by ingest (HTTP 200):   $accepted
  rows in ClickHouse (events FINAL):      $rows
  big-spenders alerts expected (computed by the generator): $expected
  webhooks received and verified:         ${fired:-0} firing
  $( [ "${fired:-0}" = "$expected" ] && echo "every expected alert arrived, once" || echo "MISMATCH between expected and received alerts")
  first payload:
$(head -n 1 "$demo/webhooks.jsonl" 2>/dev/null | "$python" -m json.tool 2>/dev/null | sed 's/^/    /' || true)

  Look further:
    curl -s '$CS_CLICKHOUSE_URL/?query=SELECT+name,count()+FROM+$database.events+FINAL+GROUP+BY+name'
    curl -s '$CS_CLICKHOUSE_URL/?query=SELECT+event,property,json_type,events+FROM+$database.event_catalog_view+FORMAT+PrettyCompact'
    curl -s '$CS_CLICKHOUSE_URL/?query=SELECT+rule,group_key,state,value+FROM+$database.alert_events+FINAL+FORMAT+PrettyCompact'
    ./target/release/evaluator backtest --rules examples --clickhouse-database $database --from $(date -u -d '-8 days' +%Y-%m-%dT%H:%M:%SZ)
SUMMARY
if $keep; then
  echo "  Servers keep running (ingest :8080, evaluator :9090, receiver :9911). Stop: kill ${pids[*]}; source scripts/lib/servers.sh; stop_servers"
fi
