#!/usr/bin/env bash
# Run the MCP conformance suite against a running streamable-HTTP MCP endpoint.
#
#   scripts/conformance.sh http://127.0.0.1:8765/mcp
#
# Runs two pinned versions (node-tools/package-lock.json) on the Node 22 binary from
# scripts/node-tools.sh:
#   0.1.16          --suite all                            (handshake era, up to 2025-11-25)
#   0.2.0-alpha.12  --suite all --spec-version 2026-07-28  (stateless era)
#   0.2.0-alpha.12  --suite all --spec-version 2025-11-25  (handshake era again, adds session lifecycle)
# each against its own baseline, scripts/conformance-expected-failures-<label>.yml.
# Exits non-zero if either run fails. Set CONFORMANCE_OUTPUT_DIR to keep per-scenario
# checks.json files (written under $CONFORMANCE_OUTPUT_DIR/{0.1,0.2}).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ $# -ne 1 ] || [ "${1:0:4}" != "http" ]; then
  echo "usage: $0 URL   (streamable-HTTP MCP endpoint, e.g. http://127.0.0.1:8765/mcp)" >&2
  exit 2
fi
url="$1"

node_bin="$("$root/scripts/node-tools.sh" --print-node)" || exit 1
modules="$root/node-tools/node_modules"

run() { # label package extra-args...
  local label="$1" pkg="$2"; shift 2
  local out=()
  if [ -n "${CONFORMANCE_OUTPUT_DIR:-}" ]; then out=(-o "$CONFORMANCE_OUTPUT_DIR/$label"); fi
  echo "=== conformance $label ($pkg) against $url ===" >&2
  "$node_bin" "$modules/$pkg/dist/index.js" server --url "$url" --suite all \
    --expected-failures "$root/scripts/conformance-expected-failures-$label.yml" "${out[@]}" "$@"
}

status=0
run 0.1 conformance-legacy || { echo "conformance 0.1.16: FAILED" >&2; status=1; }
run 0.2 conformance-modern --spec-version 2026-07-28 || { echo "conformance 0.2 alpha (2026-07-28): FAILED" >&2; status=1; }
run 0.2-handshake conformance-modern --spec-version 2025-11-25 \
  || { echo "conformance 0.2 alpha (2025-11-25, session lifecycle): FAILED" >&2; status=1; }
[ "$status" = 0 ] && echo "conformance: all three runs passed (apart from the baselined fixture scenarios)" >&2
exit "$status"
