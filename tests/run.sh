#!/usr/bin/env bash
# The one test command: lint, unit and end-to-end tests, then litmus against the real
# binary. Installs the client programs the tests need from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

install_missing() {
    local missing=() item
    for item in "$@"; do # NAME, or COMMAND:PACKAGE when the package's command differs
        command -v "${item%%:*}" >/dev/null 2>&1 || missing+=("${item#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]} from Debian's packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_missing litmus nginx curl openssl rclone cadaver lftp unzip zip gzip zstd pzstd:zstd pigz tar /usr/sbin/mount.davfs:davfs2 chromium /usr/bin/chromedriver:chromium-driver

# The S3 server the blob-store tests start (backends/tests/s3.rs, tests/e2e/s3_blobs.rs):
# a real server speaking S3 with signatures, from the Rust crate registry (~3 min to build).
command -v s3s-fs >/dev/null 2>&1 || cargo install s3s-fs@0.14.1 --locked --features binary --quiet

# PostgreSQL for the second pass below (Debian's server; tests/postgres.sh runs a
# throwaway cluster of it on loopback).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || install_missing /usr/lib/postgresql/15/bin/initdb:postgresql

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace -- --skip multinode::

# The model's and the end-to-end suites again with the database on PostgreSQL, with the
# multi-node tests (three servers, one database, one bucket, nginx in front). Skipped
# there: what works on SQLite's file alone (fsck --repair, backup and restore, the file's
# integrity and write lock), which the first pass covers.
pg_dir=$(mktemp -d /tmp/wharf-pg.XXXXXX)
pg_url=$(tests/postgres.sh start "$pg_dir")
trap 'tests/postgres.sh stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
WHARF_TEST_POSTGRES=$pg_url cargo test -p dav-model -- --include-ignored
WHARF_TEST_POSTGRES=$pg_url cargo test -p wharf --test e2e -- \
    --skip maintenance:: --skip maintenance_backup:: \
    --skip durability::sigkill_during_uploads_leaves_an_intact_database \
    --skip operations::readyz_is_503_while_another_program_holds_the_database_write_lock
cargo build -p wharf --quiet
tests/litmus.sh target/debug/wharf
tests/clients/run.sh target/debug/wharf store
tests/clients/run.sh target/debug/wharf host
tests/ftp/run.sh target/debug/wharf
tests/browser/run.sh target/debug/wharf
tests/browser/run.sh target/debug/wharf --base-path /files
tests/fuzz.sh 10
tests/docker/run.sh
