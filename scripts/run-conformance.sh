#!/usr/bin/env bash
# Start mcp-scheduler on streamable HTTP (loopback, a fresh database) and run the official MCP
# conformance suite against it (scripts/conformance.sh). Used by `make conformance` and by
# tests/conformance/test_conformance.py (so `make test` runs it). The suite cannot send a header, so
# this throwaway server takes no token (--allow-unauthenticated, on loopback, for the run only).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
work="$(mktemp -d)"
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$root/scripts/node-tools.sh" || exit 1

"$python" -m mcp_scheduler --transport http --host 127.0.0.1 --port "$port" --db "$work/conformance.sqlite" \
  --timezone UTC --log-level WARNING --allow-unauthenticated --no-background-runner 2>"$work/server.log" &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 1 200); do
  if "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "server exited:" >&2; cat "$work/server.log" >&2; exit 1; fi
  sleep 0.05  # readiness check of a just-spawned process, bounded to ~10 s
done

"$root/scripts/conformance.sh" "http://127.0.0.1:$port/mcp"
status=$?
if [ "$status" != 0 ]; then echo "--- server log ---" >&2; tail -n 50 "$work/server.log" >&2; fi
exit "$status"
