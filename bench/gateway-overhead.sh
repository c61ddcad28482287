#!/usr/bin/env bash
# Gateway overhead: cadre-llm vs LiteLLM (pinned) against the same local
# OpenAI-compatible upstream, at concurrency 1 and under load.
# Usage: bench/gateway-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=/var/tmp/cadre-bench-venv
LITELLM_VERSION=1.83.14   # pinned; never 1.82.7 or 1.82.8 (compromised releases); 1.109.x needs a certifi PyPI does not serve
if ! "$VENV/bin/python" -c "import litellm, httpx" 2>/dev/null; then
  echo "installing litellm==$LITELLM_VERSION into $VENV" >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "litellm==$LITELLM_VERSION" httpx
fi
cargo run --release -q -p cadre-bench --bin gateway_overhead -- "$VENV/bin/python"
