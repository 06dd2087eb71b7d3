#!/usr/bin/env bash
# Runs litmus' default suites twice in a row against one fresh `wharf serve` with the
# admin's credentials, first on the native store, then on a host folder served in place
# (`--folder`), and fails unless every test passes with no warning every time.
set -euo pipefail
bin=${1:-target/debug/wharf}
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
password="litmus-$RANDOM-$RANDOM"
passed=0 failed=0

# litmus_against NAME [SERVE FLAGS...]: a fresh server, litmus twice.
litmus_against() {
    local name=$1 dir="$work/$1"
    shift
    mkdir -p "$dir"
    WHARF_ADMIN_PASSWORD="$password" "$bin" serve --data "$dir/data" --listen 127.0.0.1:0 --ftp-listen off --admin-listen off "$@" \
        >"$dir/banner" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do grep -q http "$dir/banner" 2>/dev/null && break; sleep 0.1; done
    local url run out p t w
    url=$(grep -o 'http://[^ ]*' "$dir/banner")
    for run in 1 2; do
        out="$dir/litmus-$run.txt"
        (cd "$dir" && litmus "$url" admin "$password") >"$out" 2>&1 || true
        grep -E '^<- summary|WARNING|FAIL' "$out" | sed "s/^/litmus $name run $run: /"
        p=$(grep -o 'run: [0-9]* passed' "$out" | awk '{s+=$2} END {print s+0}')
        t=$(grep -o 'of [0-9]* tests run' "$out" | awk '{s+=$2} END {print s+0}')
        w=$(grep -c 'WARNING' "$out" || true)
        passed=$((passed + p)); failed=$((failed + t - p))
        if [ "$t" -ne 104 ] || [ "$p" -ne 104 ] || [ "$w" -ne 0 ]; then
            echo "litmus $name run $run: $p of $t passed with $w warnings (want 104 of 104, no warning)"
            cat "$out"
            echo "litmus: $passed passed, $((failed > 0 ? failed : 1)) failed"
            exit 1
        fi
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

litmus_against store
mkdir -p "$work/folder"
litmus_against host --folder "$work/folder"
# Nothing of Wharf's own is left in the folder: no temp file of an upload.
if find "$work/folder" -name '.wharf-tmp-*' | grep -q .; then
    echo "litmus: temporary upload files were left in the host folder"
    exit 1
fi
echo "litmus: $passed passed, $failed failed"
