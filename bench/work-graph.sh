#!/usr/bin/env bash
# Work graph over HTTP: 10,000 tasks each with a dependency (tasks/s, 16
# clients), list/filter p50/p99 on that 10,000-task project, and the graph
# around a task of a 1,000-node DAG (p50/p99) — cadre on SQLite and on
# PostgreSQL (release build, plan limits off), and FastAPI + sqlite3 as a peer.
# Usage: bench/work-graph.sh [POSTGRES_URL]   (default postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${1:-postgres://postgres@127.0.0.1:5432/test}"
PORT=18193
PEER_PORT=18194
VENV=/var/tmp/cadre-bench-venv

if [ ! -x "$VENV/bin/uvicorn" ]; then
  echo "installing the peer (fastapi, uvicorn) into $VENV" >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q fastapi uvicorn pyjwt
fi
echo "building cadre and the load generator (release)" >&2
cargo build --release -q
cargo build --release -q -p cadre-bench --bin work_graph
TARGET="${CARGO_TARGET_DIR:-target}/release"
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_up() { until curl -sf -o /dev/null "$1"; do sleep 0.05; done; }

echo "| server                 | tasks/s   | list p50 | list p99 | nodes | graph p50 | graph p99 |"
echo "|------------------------|-----------|----------|----------|-------|-----------|-----------|"

run_cadre() {
  local label=$1; shift
  CADRE_LOG_LEVEL=warn CADRE_LIMITS_ENABLED=false "$@" "$TARGET/cadre" serve --data-dir "$DATA/$label" --bind "127.0.0.1:$PORT" >/dev/null 2>&1 &
  local pid=$!
  local base="http://127.0.0.1:$PORT"
  wait_up "$base/api/v1/health"
  local token org project
  token=$(curl -s "$base/api/v1/auth/signup" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password","name":"Bench"}' | json "['data']['accessToken']")
  org=$(curl -s "$base/api/v1/orgs" -H 'content-type: application/json' -H "authorization: Bearer $token" -d '{"name":"Bench"}' | json "['data']['id']")
  project=$(curl -s "$base/api/v1/orgs/$org/projects" -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d '{"name":"Bench"}' | json "['data']['id']")
  "$TARGET/work_graph" "$base" "$token" "$project" "$label"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_cadre "cadre (SQLite)" env
# A database of its own, dropped afterwards.
BENCH_DB="cadre_bench_$(date +%s)"
psql "$PG_URL" -qc "CREATE DATABASE $BENCH_DB" >/dev/null
run_cadre "cadre (PostgreSQL)" env CADRE_DATABASE_URL="${PG_URL%/*}/$BENCH_DB"
psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null 2>&1 || true

PEER_DB="$DATA/peer.db" "$VENV/bin/uvicorn" --app-dir bench peer_tasks:app --port "$PEER_PORT" --log-level warning --no-access-log >/dev/null 2>&1 &
wait_up "http://127.0.0.1:$PEER_PORT/docs"
PROJECT=$(curl -s -X POST "http://127.0.0.1:$PEER_PORT/seed" | json "['project']")
"$TARGET/work_graph" "http://127.0.0.1:$PEER_PORT" none "$PROJECT" "FastAPI + sqlite3 (peer)"
