#!/usr/bin/env bash
# A PostgreSQL server for the tests.
#
#   scripts/postgres.sh start   prints the base URL of a usable server on the first line of stdout and,
#                               when it started a throwaway cluster, its folder on the second line
#   scripts/postgres.sh stop DIR  stops the throwaway cluster in DIR and removes DIR
#
# `start` uses the server on 127.0.0.1:5432 if one answers (trust auth, database `test`: this machine
# and CI); otherwise it starts a throwaway cluster (initdb + pg_ctl) in a temporary folder on a free
# port, as the `postgres` user when run as root (PostgreSQL refuses to run as root). When no server
# binaries are found and this runs as root on Debian, it installs the `postgresql` package first.
# PG_THROWAWAY=1 skips the server on port 5432 (to try the throwaway cluster).
# Exits 1 with the reason on stderr when no server can be had. Everything but the URL goes to stderr.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

find_bin() {  # the newest server's binary directory
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; fi
}

as_owner() {  # run a command as the cluster's owner
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    local isready
    isready=$(command -v pg_isready || ls /usr/lib/postgresql/*/bin/pg_isready 2>/dev/null | tail -n 1 || true)
    if [[ -z "${PG_THROWAWAY:-}" && -n "$isready" ]] && "$isready" -q -h 127.0.0.1 -p 5432 -t 2; then
        echo "postgresql://postgres@127.0.0.1:5432/test"
        return
    fi
    local bin
    bin=$(find_bin)
    if [[ -z "$bin" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "no PostgreSQL server binaries: installing Debian's postgresql package"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } \
            || true
        bin=$(find_bin)
    fi
    if [[ -z "$bin" ]]; then
        say "no server on 127.0.0.1:5432 and no initdb (looked in /usr/lib/postgresql/*/bin and PATH):" \
            "install PostgreSQL (Debian: apt-get install postgresql) or start a server on 127.0.0.1:5432"
        exit 1
    fi
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        say "running as root and there is no 'postgres' user to run a throwaway cluster as:" \
            "create one (useradd --system postgres) or start a server on 127.0.0.1:5432"
        exit 1
    fi
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/mcp-scheduler-pg.XXXXXX")
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >&2
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2 \
        || { say "the throwaway cluster did not start; its log:"; cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    [[ -f "$dir/data/PG_VERSION" ]] || { say "$dir holds no cluster"; exit 1; }
    local bin
    bin=$(find_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-start}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) say "usage: postgres.sh start | stop DIR"; exit 2 ;;
esac
