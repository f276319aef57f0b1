#!/bin/sh
# Installs the headless browser used by the browser test
# (crates/ardoise/tests/browser): Debian's chromium and chromium-driver.
# fonts-liberation, which chromium only recommends, is added so that pages
# (and the test's screenshots) have readable text on a bare machine.
# Idempotent: does nothing when all are already installed.
set -eu

PACKAGES="chromium chromium-driver fonts-liberation"

fail() {
    echo "install-browser: $*" >&2
    exit 1
}

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install$missing by hand (a Debian or Ubuntu system is expected)"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        fail "must run as root (or with sudo available) to install$missing"
    fi
    echo "install-browser: installing$missing"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! $SUDO apt-get update -qq >"$log" 2>&1; then
        cat "$log" >&2
        fail "apt-get update failed"
    fi
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >"$log" 2>&1; then
        cat "$log" >&2
        fail "apt-get install$missing failed"
    fi
fi

for b in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$b" ] || fail "$b is missing after installation"
done
