#!/usr/bin/env bash
# Writes the three-route configuration the bench scripts use (ROUTES=3) and prints its path:
# every log to OUT, a severity route (warning and worse) and a balanced pair (facility local0)
# that relay-bench's <14> lines never match. usage: three-routes.sh OUT
set -euo pipefail
config=$(mktemp /tmp/ferry-bench-routes.XXXXXX.yaml)
cat > "$config" <<YAML
routes:
  archive: { upstreams: ["udp://127.0.0.1:$1"] }
  alerts: { match: { severity: warning }, upstreams: ["udp://127.0.0.1:9"] }
  pool: { mode: balance, match: { facility: [local0] }, upstreams: ["udp://127.0.0.1:7", "udp://127.0.0.1:13"] }
YAML
echo "$config"
