#!/usr/bin/env bash
# Baseline figures for the foundation, with a peer measured in the same run:
#   - time from process start to a healthy /api/v1/health
#   - idle resident memory (RSS) two seconds after start
#   - wrk throughput and p99 latency on /api/v1/health
# Peer: FastAPI on uvicorn (one worker) serving the same envelope.
# Usage: bench/http-baseline.sh   (installs wrk and the peer's packages if missing)
# Note: wrk and the server share this machine's cores; compare the rows with
# each other, not with figures from other machines.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT_CADRE=18181
PORT_PEER=18182
VENV=/var/tmp/cadre-bench-venv

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ ! -x "$VENV/bin/uvicorn" ]; then
  echo "installing the peer (fastapi, uvicorn) into $VENV" >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q fastapi uvicorn
fi

echo "building cadre (release)" >&2
cargo build --release -q
BIN="${CARGO_TARGET_DIR:-target}/release/cadre"

now_ms() { date +%s%3N; }

# Starts a server command in the background, prints "PID STARTUP_MS".
start_and_time() {
  local url=$1; shift
  local t0; t0=$(now_ms)
  "$@" >/dev/null 2>&1 &
  local pid=$!
  until curl -sf -o /dev/null "$url"; do
    kill -0 "$pid" 2>/dev/null || { echo "server exited during start" >&2; exit 1; }
    sleep 0.005
  done
  echo "$pid $(( $(now_ms) - t0 ))"
}

rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

load() {
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$1")
  local rps p99
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  echo "$rps $p99"
}

measure() {
  local name=$1 url=$2; shift 2
  read -r pid startup < <(start_and_time "$url" "$@")
  sleep 2
  local rss; rss=$(rss_mib "$pid")
  curl -s "$url" >/dev/null
  read -r rps p99 < <(load "$url")
  local rss_after; rss_after=$(rss_mib "$pid")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  printf '| %-22s | %8s ms | %8s MiB | %10s | %8s | %8s MiB |\n' "$name" "$startup" "$rss" "$rps" "$p99" "$rss_after"
}

DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT

echo
echo "wrk -t2 -c$CONNECTIONS -d$DURATION --latency, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| server                 | start→healthy | idle RSS     | req/s      | p99      | RSS after load |"
echo "|------------------------|---------------|--------------|------------|----------|----------------|"
measure "cadre serve (SQLite)" "http://127.0.0.1:$PORT_CADRE/api/v1/health" \
  env CADRE_LOG_LEVEL=warn "$BIN" serve --data-dir "$DATA/cadre-data" --bind "127.0.0.1:$PORT_CADRE"
measure "cadre, info JSON logs" "http://127.0.0.1:$PORT_CADRE/api/v1/health" \
  env CADRE_LOG_LEVEL=info CADRE_LOG_FORMAT=json "$BIN" serve --data-dir "$DATA/cadre-data2" --bind "127.0.0.1:$PORT_CADRE"
measure "FastAPI + uvicorn" "http://127.0.0.1:$PORT_PEER/api/v1/health" \
  "$VENV/bin/uvicorn" --app-dir bench peer_fastapi:app --port "$PORT_PEER" --log-level warning --no-access-log
