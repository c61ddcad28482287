#!/usr/bin/env bash
# Engine overhead per durable step: cadre on SQLite and PostgreSQL, LangGraph
# (with its SQLite and Postgres checkpointers) on the same databases.
# Installs LangGraph into /var/tmp/cadre-langgraph.
# Usage: bench/engine.sh [POSTGRES_URL]   (default postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail
cd "$(dirname "$0")/.."
URL="${1:-postgres://postgres@127.0.0.1:5432/test}"
VENV=/var/tmp/cadre-langgraph
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import langgraph.checkpoint.postgres" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "langgraph==1.2.22" "langgraph-checkpoint-sqlite==3.1.2" \
    "langgraph-checkpoint-postgres==3.2.0" "psycopg[binary]==3.3.9" "psycopg-pool==3.3.3"
fi
echo "fsync latency of this disk (dd, 200 synced 4 KiB writes):" >&2
dd if=/dev/zero of=/var/tmp/cadre-fsync-probe bs=4k count=200 oflag=dsync 2>&1 | tail -n 1 >&2
rm -f /var/tmp/cadre-fsync-probe
cargo run --release -q -p cadre-bench --bin engine_steps -- "$URL" "$VENV/bin/python"
