#!/usr/bin/env bash
# Runs litmus' default suites twice in a row against one fresh `wharf serve`, with the
# admin's credentials, and fails unless every test passes with no warning both times.
set -euo pipefail
bin=${1:-target/debug/wharf}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
password="litmus-$RANDOM-$RANDOM"
WHARF_ADMIN_PASSWORD="$password" "$bin" serve --data "$work/data" --listen 127.0.0.1:0 --ftp-listen off >"$work/banner" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q http "$work/banner" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/banner")
passed=0 failed=0
for run in 1 2; do
    out="$work/litmus-$run.txt"
    (cd "$work" && litmus "$url" admin "$password") >"$out" 2>&1 || true
    grep -E '^<- summary|WARNING|FAIL' "$out" | sed "s/^/litmus run $run: /"
    p=$(grep -o 'run: [0-9]* passed' "$out" | awk '{s+=$2} END {print s+0}')
    t=$(grep -o 'of [0-9]* tests run' "$out" | awk '{s+=$2} END {print s+0}')
    w=$(grep -c 'WARNING' "$out" || true)
    passed=$((passed + p)); failed=$((failed + t - p))
    if [ "$t" -ne 104 ] || [ "$p" -ne 104 ] || [ "$w" -ne 0 ]; then
        echo "litmus run $run: $p of $t passed with $w warnings (want 104 of 104, no warning)"
        cat "$out"
        echo "litmus: $passed passed, $((failed > 0 ? failed : 1)) failed"
        exit 1
    fi
done
echo "litmus: $passed passed, $failed failed"
