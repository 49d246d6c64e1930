#!/usr/bin/env bash
# A browser for the dashboard's tests: Debian's Chromium, driven by Playwright (no browser download).
#
#   scripts/browser.sh   prints the path of a usable Chromium on stdout (one line)
#
# Uses /usr/bin/chromium when present (or $CHROMIUM); otherwise, when run as root on Debian, installs the
# `chromium` and `chromium-driver` packages with apt-get first. Exits 1 with the reason on stderr when no
# Chromium can be had. Everything but the path goes to stderr.
set -euo pipefail

say() { echo "browser.sh: $*" >&2; }

find_chromium() {
    local candidate
    for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then echo "$candidate"; return; fi
    done
}

path=$(find_chromium)
if [[ -z "$path" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "no Chromium: installing Debian's chromium and chromium-driver packages"
    # Another process (a second test worker) may hold apt's lock: wait for it rather than fail.
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
            chromium chromium-driver >&2
    }
    apt_install || { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 && apt_install; } || true
    path=$(find_chromium)
fi
if [[ -z "$path" ]]; then
    say "no Chromium at /usr/bin/chromium (or \$CHROMIUM) and it could not be installed here:" \
        "install it (Debian: apt-get install chromium chromium-driver, as root)"
    exit 1
fi
echo "$path"
