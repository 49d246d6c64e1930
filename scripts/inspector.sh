#!/usr/bin/env bash
# Run the pinned MCP Inspector (node-tools/, 2.12.0) on the project's Node 22 against mcp-scheduler.
#
#   scripts/inspector.sh                                  # web UI, connected to a fresh stdio server
#   scripts/inspector.sh --cli --method tools/list        # one CLI call; JSON on stdout
#   scripts/inspector.sh --cli --method tools/list -- http://127.0.0.1:8765/mcp
#   scripts/inspector.sh --web --header "Authorization: Bearer TOKEN" -- https://scheduler.example/mcp
#
# Without a target after `--`, the server is `python -m mcp_scheduler` over stdio on a temporary
# SQLite database (deleted on exit), with the Python of $MCP_SCHEDULER_PYTHON or .venv/bin/python.
# A URL target gets the header "Authorization: Bearer <the token `mcp-scheduler token` prints>" (through a
# private session file, not the command line) unless the options give a --header or a --config.
# The CLI answers in JSON (--format json) unless the arguments name another --format.
# `make inspect` and `make inspect-cli ARGS=... [TARGET=URL]` call this script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { printf 'inspector: error: %s\n' "$*" >&2; exit 1; }

mode=--web
case "${1:-}" in
  --cli | --web) mode="$1"; shift ;;
  -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
esac

options=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the `--`
target=("$@")

node="$("$root/scripts/node-tools.sh" --print-node)"
package="$root/node-tools/node_modules/@modelcontextprotocol/inspector"
entry="$package/$("$node" -p "require('$package/package.json').bin['mcp-inspector']")"
[ -f "$entry" ] || die "the Inspector is missing at $entry: run scripts/node-tools.sh"

python="${MCP_SCHEDULER_PYTHON:-$root/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ ${#target[@]} -eq 0 ]; then
  [ -x "$python" ] || die "no $python: run 'make run' once (it creates .venv), or set MCP_SCHEDULER_PYTHON"
  # A throwaway database gets no background runner: it would outlive the database it runs.
  target=("$python" -m mcp_scheduler --db "$tmp/scheduler.sqlite" --no-background-runner)
elif [ ${#target[@]} -eq 1 ] && [[ "${target[0]}" == http://* || "${target[0]}" == https://* ]] &&
  [[ " ${options[*]-} " != *" --header "* && " ${options[*]-} " != *" --config "* ]] && [ -x "$python" ]; then
  # The server's token, as `mcp-scheduler token` prints it (same MCP_SCHEDULER_TOKEN_FILE), goes into a session
  # file only this user can read: an argument would show it to every local user in the process list.
  if token="$("$python" -m mcp_scheduler token 2>/dev/null)"; then
    (umask 077 && MCP_SCHEDULER_INSPECTOR_TOKEN="$token" "$python" - "${target[0]}" "$tmp/session.json" <<'PY'
import json, os, sys
url, path = sys.argv[1], sys.argv[2]
server = {"type": "sse" if url.rstrip("/").endswith("/sse") else "http", "url": url,
          "headers": {"Authorization": "Bearer " + os.environ["MCP_SCHEDULER_INSPECTOR_TOKEN"]}}
with open(path, "w") as out:
    json.dump({"mcpServers": {"scheduler": server}}, out)
PY
    )
    printf 'inspector: sending the bearer token that `mcp-scheduler token` prints (give --header to send another)\n' >&2
    options+=(--config "$tmp/session.json" --server scheduler)
    target=()
  fi
fi

if [ "$mode" = --cli ] && [[ " ${options[*]-} " != *" --format "* ]]; then
  options=(--format json "${options[@]}")
fi

# Not exec: the trap removes the temporary database when the Inspector exits.
status=0
if [ ${#target[@]} -eq 0 ]; then
  "$node" "$entry" "$mode" ${options[@]+"${options[@]}"} || status=$?
else
  "$node" "$entry" "$mode" ${options[@]+"${options[@]}"} -- "${target[@]}" || status=$?
fi
exit "$status"
