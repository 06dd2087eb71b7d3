#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo fuzz, libFuzzer) for a few seconds each, starting
# from the seeds kept in fuzz/seeds/. Part of the test command; a crash fails it and leaves
# the input in fuzz/artifacts/TARGET/ — keep it as a regression test next to the parser it
# broke. Built with debug assertions (overflow checks) and without AddressSanitizer: the
# parsers are safe Rust, where a panic or an overflow is the bug to find, and the sanitizer
# would double the build. For a long run with it: drop `--sanitizer none` below.
#
# Usage: tests/fuzz.sh [SECONDS-PER-TARGET]   (default 10; run for hours with e.g. 3600)
# cargo fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
# Outside the checkout, so a fresh clone (CI) reuses the instrumented build of the
# dependencies instead of spending minutes on it again.
target_dir=${WHARF_FUZZ_TARGET_DIR:-/var/tmp/wharf-fuzz-target}
flags=(--release --debug-assertions --sanitizer none --target-dir "$target_dir")
targets=$(cargo fuzz list)
cargo fuzz build "${flags[@]}"
for target in $targets; do
    mkdir -p "corpus/$target"
    rm -rf "artifacts/$target"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    echo "fuzz: $target for ${seconds}s"
    log="$target_dir/$target.log"
    # libFuzzer exits non-zero on a panic, an overflow, a timeout or running out of memory,
    # and writes the input to artifacts/TARGET/.
    if ! cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=0 >"$log" 2>&1; then
        grep -E "panicked|SUMMARY|ERROR|Test unit written|ABORTING" "$log" | head -20
        echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/ (full log: $log)"
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || true
done
echo "fuzz: every target ran ${seconds}s without a crash"
