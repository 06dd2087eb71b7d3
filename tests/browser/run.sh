#!/usr/bin/env bash
# The file-browser page end to end in Debian's real headless Chromium, driven through
# chromedriver by tests/browser/browser.py (plain W3C WebDriver over HTTP from Python's
# standard library: nothing to download). One fresh `wharf serve` on a free port; every
# effect the page claims is also checked over plain HTTP. Prints `ok - STEP` or
# `not ok - STEP` per step, then `browser: N passed, M failed`; exits non-zero on failure.
# The listing's screenshot is saved as target/browser-artifacts/listing.png.
#
# Usage: tests/browser/run.sh [path/to/wharf [SERVE-FLAGS...]]   (default target/debug/wharf)
# e.g. `tests/browser/run.sh target/debug/wharf --base-path /files` runs it under a prefix.
# WHARF_BROWSER_KEEP=1 keeps the work directory (server.log, chromedriver.log).
set -euo pipefail
bin=$(realpath "${1:-target/debug/wharf}")
shift || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# Everything talks to 127.0.0.1: never through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

for cmd in python3 chromium chromedriver; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "browser: $cmd is not installed"; exit 1; }
done

work=$(mktemp -d)
pid=""
cleanup() {
    set +e
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [ -n "${WHARF_BROWSER_KEEP:-}" ]; then echo "browser: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=../serve.sh
source "$(dirname "$0")/../serve.sh"
start_wharf "$bin" "$work" browser "$@" || exit 1

mkdir -p "$root/target/browser-artifacts"
WHARF_URL="$url" WHARF_PASSWORD="$password" WHARF_WORK="$work" \
    WHARF_ARTIFACTS="$root/target/browser-artifacts" WHARF_SERVER_LOG="$work/server.log" \
    timeout 150 python3 "$here/browser.py"
