#!/usr/bin/env bash
# Run the pinned MCP Inspector (node-tools/, 2.12.0) on the project's Node 22 against mcp-scheduler.
#
#   scripts/inspector.sh                                  # web UI, connected to a fresh stdio server
#   scripts/inspector.sh --cli --method tools/list        # one CLI call; JSON on stdout
#   scripts/inspector.sh --cli --method tools/list -- http://127.0.0.1:8765/mcp
#   scripts/inspector.sh --web --header "Authorization: Bearer TOKEN" -- http://127.0.0.1:8765/mcp
#
# Without a target after `--`, the server is `python -m mcp_scheduler` over stdio on a temporary
# SQLite database (deleted on exit), with the Python of $MCP_SCHEDULER_PYTHON or .venv/bin/python.
# The CLI answers in JSON (--format json) unless the arguments name another --format.
# `make inspect` and `make inspect-cli ARGS=... [TARGET=URL]` call this script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { printf 'inspector: error: %s\n' "$*" >&2; exit 1; }

mode=--web
case "${1:-}" in
  --cli | --web) mode="$1"; shift ;;
  -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
esac

options=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the `--`
target=("$@")

node="$("$root/scripts/node-tools.sh" --print-node)"
package="$root/node-tools/node_modules/@modelcontextprotocol/inspector"
entry="$package/$("$node" -p "require('$package/package.json').bin['mcp-inspector']")"
[ -f "$entry" ] || die "the Inspector is missing at $entry: run scripts/node-tools.sh"

if [ ${#target[@]} -eq 0 ]; then
  python="${MCP_SCHEDULER_PYTHON:-$root/.venv/bin/python}"
  [ -x "$python" ] || die "no $python: run 'make run' once (it creates .venv), or set MCP_SCHEDULER_PYTHON"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  target=("$python" -m mcp_scheduler --db "$tmp/scheduler.sqlite")
fi

if [ "$mode" = --cli ] && [[ " ${options[*]-} " != *" --format "* ]]; then
  options=(--format json "${options[@]}")
fi

# Not exec: the trap removes the temporary database when the Inspector exits.
status=0
"$node" "$entry" "$mode" ${options[@]+"${options[@]}"} -- "${target[@]}" || status=$?
exit "$status"
