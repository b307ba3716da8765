#!/usr/bin/env bash
# Install Debian's chromium for tests/test_investigation/test_run_report.py screenshot test, if it is
# missing and this machine lets us (root, or passwordless sudo, and apt-get).
# Prints one line saying what it did. Never fails: without chromium the test
# skips and says why, which must not turn CI red.
set -uo pipefail

LOG=${CHROMIUM_APT_LOG:-work_dirs/ci_apt_chromium.log}
mkdir -p "$(dirname "$LOG")"

found=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$found" ]; then
    echo ".ci: chromium already installed ($found)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo ".ci: chromium missing and no apt-get here: the screenshot test will skip"
    exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo ".ci: chromium missing, not root and no passwordless sudo: the screenshot test will skip"
        exit 0
    fi
fi

apt() {
    # a dpkg lock held by another apt waits a while instead of failing at once
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
        timeout 900 apt-get -q -y -o DPkg::Lock::Timeout=120 "$@" >>"$LOG" 2>&1
}

# try the package lists already there first (fast); stale lists need update
if apt install --no-install-recommends chromium \
        || { apt update && apt install --no-install-recommends chromium; }; then
    echo ".ci: installed Debian's chromium ($(command -v chromium)) with apt-get (log: $LOG)"
else
    echo ".ci: apt-get could not install chromium ($(tail -n 1 "$LOG")): the screenshot test will skip (log: $LOG)"
fi
exit 0
