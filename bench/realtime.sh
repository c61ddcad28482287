#!/usr/bin/env bash
# Real-time fan-out: cadre's WebSocket against Socket.IO (npm), same client.
# Installs Socket.IO into /var/tmp/cadre-socketio and raises the open-file
# limit to the machine's hard limit (the bench needs ~19,100 per process).
# Usage: bench/realtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=/var/tmp/cadre-socketio
if [ ! -f "$PEER/node_modules/socket.io/package.json" ]; then
  mkdir -p "$PEER"
  (cd "$PEER" && npm init -y >/dev/null && npm install --silent socket.io@4.8.1 >/dev/null)
fi
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n); node $(node --version)" >&2
cargo build --release -q -p cadre -p cadre-bench
TARGET="${CARGO_TARGET_DIR:-target}"
NODE_PATH="$PEER/node_modules" "$TARGET/release/realtime_fanout" "$TARGET/release/cadre" node bench/socketio_fanout.js
