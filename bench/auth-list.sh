#!/usr/bin/env bash
# Authenticated list endpoint under load: GET /api/v1/orgs/{orgId}/projects
# with a JWT and with an API key (SQLite, release build), and the same work
# on FastAPI + PyJWT + sqlite3 as a peer. Plan rate limits are off for the JWT
# run; the API-key run keeps them on with the key's own limit raised, so the
# counter is part of the measured path.
# Usage: bench/auth-list.sh   (DURATION=10s CONNECTIONS=64 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18191
PEER_PORT=18192
VENV=/var/tmp/cadre-bench-venv

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ ! -x "$VENV/bin/uvicorn" ] || ! "$VENV/bin/python" -c "import jwt" 2>/dev/null; then
  echo "installing the peer (fastapi, uvicorn, pyjwt) into $VENV" >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q fastapi uvicorn pyjwt
fi
echo "building cadre (release)" >&2
cargo build --release -q
BIN="${CARGO_TARGET_DIR:-target}/release/cadre"
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_up() { until curl -sf -o /dev/null "$1"; do sleep 0.05; done; }
load() {
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "${@}")
  printf '%s %s %s\n' "$(awk '/Requests\/sec/ { print $2 }' <<<"$out")" "$(awk '$1 == "99%" { print $2 }' <<<"$out")" \
    "$(awk '/Non-2xx/ { print $NF }' <<<"$out")"
}
row() { read -r rps p99 non2xx <<<"$2"; printf '| %-34s | %10s | %8s | %8s |\n' "$1" "$rps" "$p99" "${non2xx:-0}"; }

CADRE_LOG_LEVEL=warn CADRE_LIMITS_ENABLED=false "$BIN" serve --data-dir "$DATA/jwt" --bind "127.0.0.1:$PORT" >/dev/null 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT/api/v1"
wait_up "$BASE/health"
TOKEN=$(curl -s "$BASE/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password","name":"Bench"}' | json "['data']['accessToken']")
ORG=$(curl -s "$BASE/orgs" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" -d '{"name":"Bench"}' | json "['data']['id']")
JWT_RESULT=$(load -H "authorization: Bearer $TOKEN" "$BASE/orgs/$ORG/projects")
kill "$PID"; wait "$PID" 2>/dev/null || true

CADRE_LOG_LEVEL=warn "$BIN" serve --data-dir "$DATA/key" --bind "127.0.0.1:$PORT" >/dev/null 2>&1 &
PID=$!
wait_up "$BASE/health"
TOKEN=$(curl -s "$BASE/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password","name":"Bench"}' | json "['data']['accessToken']")
ORG=$(curl -s "$BASE/orgs" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" -d '{"name":"Bench"}' | json "['data']['id']")
KEY=$(curl -s "$BASE/api-keys" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \
  -d "{\"name\":\"bench\",\"orgId\":\"$ORG\",\"scopes\":[\"read\"],\"rateLimitPerMinute\":1000000}" | json "['data']['key']")
KEY_RESULT=$(load -H "x-api-key: $KEY" "$BASE/orgs/$ORG/projects")
kill "$PID"; wait "$PID" 2>/dev/null || true

PEER_DB="$DATA/peer.db" "$VENV/bin/uvicorn" --app-dir bench peer_auth:app --port "$PEER_PORT" --log-level warning --no-access-log >/dev/null 2>&1 &
wait_up "http://127.0.0.1:$PEER_PORT/docs"
SEED=$(curl -s -X POST "http://127.0.0.1:$PEER_PORT/seed")
PEER_ORG=$(json "['org']" <<<"$SEED"); PEER_TOKEN=$(json "['token']" <<<"$SEED")
PEER_RESULT=$(load -H "authorization: Bearer $PEER_TOKEN" "http://127.0.0.1:$PEER_PORT/api/v1/orgs/$PEER_ORG/projects")

echo
echo "GET /orgs/{orgId}/projects, wrk -t2 -c$CONNECTIONS -d$DURATION, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| server                             | req/s      | p99      | non-2xx  |"
echo "|------------------------------------|------------|----------|----------|"
row "cadre, JWT (limits off)" "$JWT_RESULT"
row "cadre, API key (limits on)" "$KEY_RESULT"
row "FastAPI + PyJWT + sqlite3 (peer)" "$PEER_RESULT"
