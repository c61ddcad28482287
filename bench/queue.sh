#!/usr/bin/env bash
# Queue throughput and latency: cadre on SQLite and PostgreSQL, pg-boss on the
# same PostgreSQL. Installs pg-boss 10 into /var/tmp/cadre-pgboss.
# Usage: bench/queue.sh [POSTGRES_URL]   (default postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail
cd "$(dirname "$0")/.."
URL="${1:-postgres://postgres@127.0.0.1:5432/test}"
PGBOSS=/var/tmp/cadre-pgboss
if [ ! -d "$PGBOSS/node_modules/pg-boss" ]; then
  mkdir -p "$PGBOSS" && (cd "$PGBOSS" && npm init -y >/dev/null && npm install --silent pg-boss@10)
fi
echo "fsync latency of this disk (dd, 200 synced 4 KiB writes):" >&2
dd if=/dev/zero of=/var/tmp/cadre-fsync-probe bs=4k count=200 oflag=dsync 2>&1 | tail -n 1 >&2
rm -f /var/tmp/cadre-fsync-probe
cargo run --release -q -p cadre-bench --bin queue_throughput -- "$URL" "$PGBOSS"
