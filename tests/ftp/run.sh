#!/usr/bin/env bash
# Real FTP clients against fresh `wharf serve` processes: curl, lftp and Python's ftplib
# (tests/ftp/ftp_clients.py), over plain FTP and explicit FTPS (AUTH TLS with a self-signed
# certificate), plus --ftps-required, the brute-force lockout shared with WebDAV, --anonymous
# and --ftp-passive-ports. What an FTP client claims is checked independently where it can be:
# through WebDAV (curl against the same server's HTTP side), by comparing bytes, or by
# reading the client's protocol trace. Prints `ok - NAME` or `not ok - NAME` (with the
# check's output and the end of the server's log) per check, then `ftp: N passed, M failed`;
# exits non-zero when a check failed.
#
# Usage: tests/ftp/run.sh [path/to/wharf]   (default target/debug/wharf)
# WHARF_FTP_KEEP=1 keeps the work directory (each server's log is in it).
set -euo pipefail
bin=$(realpath "${1:-target/debug/wharf}")
here=$(cd "$(dirname "$0")" && pwd)
started=$SECONDS

# Everything talks to 127.0.0.1: never through a proxy (curl and lftp honour these).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ftp_proxy FTP_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export LC_ALL=C.UTF-8 # lftp converts names from the local charset: it must be UTF-8

for tool in curl lftp openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ftp: $tool is not installed"; exit 1; }
done

work=$(mktemp -d)
export HOME="$work/home" # lftp reads ~/.lftprc, ~/.netrc: keep the user's out of it
mkdir -p "$HOME"
pids=()
cleanup() {
    set +e
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "${WHARF_FTP_KEEP:-}" ]; then echo "ftp: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that cleanup still stops the servers

# serve NAME [SERVE-FLAG...]: starts `wharf serve` with its own data directory in $work/NAME,
# a fresh admin password and free loopback ports for HTTP and FTP. Sets $pid, $url (ending in
# /, http or https), $ftp_port, $ftp (ftp://127.0.0.1:PORT), $password (user admin) and $log.
serve() {
    local name=$1 dir="$work/$1"
    shift
    mkdir -p "$dir"
    password="$name-$RANDOM-$RANDOM"
    NO_COLOR=1 WHARF_LOG=info WHARF_ADMIN_PASSWORD="$password" "$bin" serve --data "$dir/data" \
        --listen 127.0.0.1:0 --ftp-listen 127.0.0.1:0 --admin-listen off "$@" >"$dir/banner" 2>"$dir/server.log" &
    pid=$!
    pids+=("$pid")
    log="$dir/server.log"
    for _ in $(seq 100); do grep -q 'https\?://' "$dir/banner" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o 'https\?://[^ ]*' "$dir/banner" || true)
    ftp_port=$(grep -o 'ftp://127.0.0.1:[0-9]*' "$dir/banner" | sed 's/.*://' || true)
    ftp="ftp://127.0.0.1:$ftp_port"
    if [ -z "$url" ] || [ -z "$ftp_port" ]; then
        echo "ftp: the $name server did not start"
        cat "$dir/banner" "$log"
        exit 1
    fi
}

# --- the harness ---------------------------------------------------------------------------

dav_timeout=60
source "$here/../checks.sh"
known=0

# py_checks MODE ARG...: runs ftp_clients.py (which prints its own ok/not ok lines) against
# the current server and counts its checks.
py_checks() {
    local out="$work/py-$1.out" rc=0 ok bad todo
    timeout 120 python3 "$here/ftp_clients.py" "$1" 127.0.0.1 "$ftp_port" "${@:2}" >"$out" 2>&1 || rc=$?
    cat "$out"
    ok=$(grep -c '^ok - ' "$out" || true)
    bad=$(grep '^not ok - ' "$out" | grep -vc ' # TODO ' || true)
    todo=$(grep '^not ok - ' "$out" | grep -c ' # TODO ' || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
    known=$((known + todo))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        echo "not ok - ftp_clients.py $1 exited with status $rc"
        failed=$((failed + 1))
    elif [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
        echo "not ok - ftp_clients.py $1 ran no checks"
        failed=$((failed + 1))
    fi
}

is_collection() {
    expect_status 207 PROPFIND "$1" -H 'Depth: 0'
    grep -q '<D:collection/>' "$work/body" || fail "$1 is not a collection: $(head -c 300 "$work/body")"
}

said() { # said FILE PATTERN: an extended regex matches a line of FILE (a client's trace)
    grep -qE -- "$2" "$1" || fail "no line matching /$2/ in $(basename "$1"): $(grep -E '^[<>] ' "$1" | tail -n 30)"
}

not_said() {
    if grep -qE -- "$2" "$1"; then fail "a line matches /$2/ in $(basename "$1"): $(grep -E -- "$2" "$1" | head -n 3)"; fi
}

# --- test data -----------------------------------------------------------------------------

files="$work/files"
mkdir -p "$files"
head -c 2500000 /dev/urandom >"$files/data.bin"
head -c 700000 "$files/data.bin" >"$files/data.part"
printf 'first part, ' >"$files/a.txt"
printf 'appended part\n' >"$files/b.txt"
cat "$files/a.txt" "$files/b.txt" >"$files/ab.txt"
head -c 500000 /dev/urandom >"$files/500k.bin"

# The tree lftp mirrors: unicode (NFC) and odd names, spaces, an empty file and directory,
# three levels, a few MB.
src="$work/tree"
make_tree() {
    local d i=0
    mkdir -p "$src/café dir/sous-dossier ü" "$src/日本語 フォルダ" "$src/with space" "$src/l1/l2/l3" \
        "$src/big" "$src/empty dir" "$src/odd"
    printf 'crème brûlée\n' >"$src/café dir/naïve café.txt"
    printf 'über\n' >"$src/café dir/sous-dossier ü/Über.txt"
    printf 'nihongo\n' >"$src/日本語 フォルダ/ファイル 名.txt"
    printf 'a b c\n' >"$src/with space/a b c.txt"
    : >"$src/with space/empty file.txt"
    printf 'odd\n' >"$src/odd/100% #1 [x] {y} (z) +plus'q.txt"
    head -c 4500000 /dev/urandom >"$src/big/big file.bin"
    for d in "" "café dir/" "with space/" "l1/" "l1/l2/" "l1/l2/l3/"; do
        for _ in 1 2; do
            i=$((i + 1))
            head -c $((RANDOM % 9000 + 1)) /dev/urandom >"$src/${d}file $i.bin"
        done
    done
    # A past time on every file: mirror -R keeps it with SITE UTIME, mirror brings it back.
    find "$src" -type f -exec touch -d '2021-03-04 05:06:07 UTC' {} +
}
make_tree

tree_files() { (cd "$src" && find . -type f -printf '%P\n' | LC_ALL=C sort); }
tree_dirs() { (cd "$src" && find . -mindepth 1 -type d -printf '%P\n' | LC_ALL=C sort); }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1

# ===========================================================================================
# Plain FTP: curl and lftp as admin (verified through WebDAV), ftplib as a fresh user.
# ===========================================================================================

serve main

# --- curl ----------------------------------------------------------------------------------

cftp() { curl -sS --max-time 60 -u "admin:$password" "$@"; }

curl_upload() {
    cftp --ftp-create-dirs -T "$files/data.bin" "$ftp/curl/a/b/data.bin"
    same_bytes curl/a/b/data.bin "$files/data.bin"
    is_collection curl/a/
    cftp --ftp-create-dirs -T "$files/a.txt" "$ftp/$(urlenc 'curl/dïr ü/café ü #1.txt')"
    same_bytes "curl/dïr ü/café ü #1.txt" "$files/a.txt"
}

curl_download() {
    cftp -o "$work/dl.bin" "$ftp/curl/a/b/data.bin"
    cmp "$work/dl.bin" "$files/data.bin"
    cftp -o "$work/dl.txt" "$ftp/$(urlenc 'curl/dïr ü/café ü #1.txt')"
    cmp "$work/dl.txt" "$files/a.txt"
}

curl_range() {
    cftp -r 1000- -o "$work/range.bin" "$ftp/curl/a/b/data.bin"
    tail -c +1001 "$files/data.bin" | cmp - "$work/range.bin" || fail "-r 1000- is not the tail from byte 1000"
    cftp -r 1000-1999 -o "$work/range2.bin" "$ftp/curl/a/b/data.bin"
    [ "$(stat -c %s "$work/range2.bin")" = 1000 ] || fail "-r 1000-1999 gave $(stat -c %s "$work/range2.bin") bytes"
    cmp "$work/range2.bin" <(tail -c +1001 "$files/data.bin" | head -c 1000) || fail "-r 1000-1999 differs"
    cftp -o "$work/after-range.bin" "$ftp/curl/a/b/data.bin" # a whole file afterwards
    cmp "$work/after-range.bin" "$files/data.bin"
}

curl_resume_download() {
    cp "$files/data.part" "$work/resumed.bin"
    cftp -v -C - -o "$work/resumed.bin" "$ftp/curl/a/b/data.bin" 2>"$work/trace"
    said "$work/trace" '^> REST 700000'
    said "$work/trace" '^< 350'
    cmp "$work/resumed.bin" "$files/data.bin"
}

curl_resume_upload() {
    cftp -T "$files/data.part" "$ftp/curl/resume.bin"
    same_bytes curl/resume.bin "$files/data.part"
    cftp -v -C - -T "$files/data.bin" "$ftp/curl/resume.bin" 2>"$work/trace"
    said "$work/trace" '^< 213 700000' # SIZE, to learn where to resume
    said "$work/trace" '^> (APPE|REST 700000)'
    same_bytes curl/resume.bin "$files/data.bin"
}

curl_append() {
    cftp -T "$files/a.txt" "$ftp/curl/append.txt"
    cftp --append -T "$files/b.txt" "$ftp/curl/append.txt"
    same_bytes curl/append.txt "$files/ab.txt"
}

curl_epsv() {
    cftp -v -o "$work/epsv.bin" "$ftp/curl/a/b/data.bin" 2>"$work/trace"
    said "$work/trace" '^> EPSV'
    said "$work/trace" '^< 229 .*\(\|\|\|[0-9]+\|\)'
    not_said "$work/trace" '^> PASV'
    cmp "$work/epsv.bin" "$files/data.bin"
    cftp -v -T "$files/b.txt" "$ftp/curl/epsv.txt" 2>"$work/trace"
    said "$work/trace" '^> EPSV'
    same_bytes curl/epsv.txt "$files/b.txt"
}

curl_pasv() {
    cftp -v --disable-epsv -o "$work/pasv.bin" "$ftp/curl/a/b/data.bin" 2>"$work/trace"
    said "$work/trace" '^> PASV'
    said "$work/trace" '^< 227 .*\(127,0,0,1,[0-9]+,[0-9]+\)'
    not_said "$work/trace" '^> EPSV'
    cmp "$work/pasv.bin" "$files/data.bin"
    cftp -v --disable-epsv -T "$files/b.txt" "$ftp/curl/pasv.txt" 2>"$work/trace"
    said "$work/trace" '^> PASV'
    same_bytes curl/pasv.txt "$files/b.txt"
}

quote() { # quote COMMAND...: runs the commands with -Q before listing /; the trace in $work/trace
    local args=() c
    for c in "$@"; do args+=(-Q "$c"); done
    cftp -v -o /dev/null "${args[@]}" "$ftp/" 2>"$work/trace"
}

curl_quote_size_mdtm() {
    quote "SIZE /curl/a/b/data.bin"
    said "$work/trace" '^< 213 2500000'
    quote "MDTM /curl/a/b/data.bin"
    local mdtm want
    mdtm=$(sed -n 's/^< 213 \([0-9]\{14\}\).*/\1/p' "$work/trace" | head -n 1)
    [ -n "$mdtm" ] || fail "no 213 YYYYMMDDHHMMSS reply to MDTM: $(grep '^<' "$work/trace" | tail -n 5)"
    expect_status 207 PROPFIND curl/a/b/data.bin -H 'Depth: 0'
    want=$(date -u -d "$(prop_value getlastmodified)" +%Y%m%d%H%M%S)
    [ "$mdtm" = "$want" ] || fail "MDTM says $mdtm, WebDAV's getlastmodified is $want"
}

curl_quote_mkd() {
    quote "MKD /curl/made"
    said "$work/trace" '^< 257'
    is_collection curl/made/
}

curl_quote_rename() {
    quote "RNFR /curl/append.txt" "RNTO /curl/made/renamed.txt"
    said "$work/trace" '^< 350'
    said "$work/trace" '^< 250'
    missing curl/append.txt
    same_bytes curl/made/renamed.txt "$files/ab.txt"
}

curl_quote_dele() {
    quote "DELE /curl/made/renamed.txt"
    said "$work/trace" '^< 250'
    missing curl/made/renamed.txt
}

curl_quote_rmd() {
    quote "RMD /curl/made"
    said "$work/trace" '^< 250'
    expect_status 404 PROPFIND curl/made/ -H 'Depth: 0'
}

curl_quote_error() {
    local rc=0
    quote "DELE /curl/not-there" || rc=$?
    [ "$rc" = 21 ] || fail "curl exited with $rc, want 21 (quote command failed)"
    said "$work/trace" '^< 550'
}

curl_list() {
    cftp -o "$work/list" "$ftp/curl/a/b/"
    grep -qE '^-.* 2500000 .* data\.bin$' "$work/list" || fail "LIST: $(cat "$work/list")"
    cftp --list-only -o "$work/nlst" "$ftp/curl/"
    LC_ALL=C sort "$work/nlst" | tr -d '\r' >"$work/nlst.sorted"
    printf '%s\n' a dïr\ ü epsv.txt pasv.txt resume.bin | LC_ALL=C sort >"$work/nlst.want"
    diff "$work/nlst.want" "$work/nlst.sorted" || fail "NLST of /curl/ differs (< want, > got)"
}

curl_bad_password() {
    local rc=0
    curl -sS --max-time 30 -u "admin:not-$password" -o /dev/null "$ftp/" 2>"$work/trace" || rc=$?
    [ "$rc" = 67 ] || fail "curl exited with $rc, want 67 (login denied): $(cat "$work/trace")"
    cftp -o /dev/null "$ftp/" # the right password still works (and clears the failure count)
}

check "curl -T --ftp-create-dirs uploads (3 new directories, a unicode name); WebDAV GET has the bytes" curl_upload
check "curl downloads the same bytes" curl_download
check "curl -r 1000- and -r 1000-1999 download the ranges; a full download afterwards is intact" curl_range
check "curl -C - resumes a truncated download (REST 700000)" curl_resume_download
check "curl -C - -T resumes an upload (SIZE, then APPE/REST); WebDAV GET has every byte" curl_resume_upload
check "curl --append -T appends; WebDAV GET has both parts" curl_append
check "curl uses EPSV (229) by default for RETR and STOR" curl_epsv
check "curl --disable-epsv uses PASV (227) for RETR and STOR" curl_pasv
check "curl -Q SIZE and MDTM (MDTM equals WebDAV's getlastmodified)" curl_quote_size_mdtm
check "curl -Q MKD creates a collection" curl_quote_mkd
check "curl -Q RNFR/RNTO moves a file into another directory" curl_quote_rename
check "curl -Q DELE deletes a file" curl_quote_dele
check "curl -Q RMD removes an empty directory" curl_quote_rmd
check "curl -Q of a failing command (DELE of a missing file) exits 21 with 550" curl_quote_error
check "curl LIST shows the size; --list-only (NLST) lists exactly the names" curl_list
check "curl with a wrong password exits 67 (530)" curl_bad_password

# --- lftp ----------------------------------------------------------------------------------

# lftp_run SETTINGS COMMANDS: one lftp session as admin against the current server. Any
# failing command fails it (cmd:fail-exit); prints lftp's output; the protocol trace (-d) is
# in $work/lftp.trace.
lftp_run() {
    local rc=0
    timeout 120 lftp -d -c "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 10; \
        set net:reconnect-interval-base 1; set net:reconnect-interval-max 1; set cmd:interactive no; \
        $1; open -u admin,$password -p $ftp_port 127.0.0.1; $2" >"$work/lftp.out" 2>"$work/lftp.trace" || rc=$?
    cat "$work/lftp.out"
    if [ "$rc" -ne 0 ]; then
        echo "lftp exited with $rc; the end of its trace:"
        grep -E '^(--->|<---|\*\*\*\*|----)|rror' "$work/lftp.trace" | grep -v '^<--- [0-9]\{3\}-\|^<---  ' | tail -n 25
        exit 1
    fi
}

plain_lftp="set ftp:ssl-allow no"

tree_on_server() { # tree_on_server REMOTE-DIR: WebDAV has every file and directory of $src
    local rel
    while IFS= read -r rel; do same_bytes "$1/$rel" "$src/$rel"; done < <(tree_files)
    while IFS= read -r rel; do is_collection "$1/$rel/"; done < <(tree_dirs)
    echo "$(tree_files | wc -l) files and $(tree_dirs | wc -l) directories verified through WebDAV"
}

lftp_mirror_up() {
    lftp_run "$plain_lftp" "mirror -R --no-perms \"$src\" lftp/tree"
    tree_on_server lftp/tree
}

lftp_mirror_down() {
    lftp_run "$plain_lftp" "mirror --no-perms lftp/tree \"$work/lftp-down\""
    diff -r "$src" "$work/lftp-down" || fail "the mirrored-down tree differs"
    (cd "$work/lftp-down" && find . -mindepth 1 -type d -printf '%P\n' | LC_ALL=C sort) >"$work/down.dirs"
    tree_dirs | diff - "$work/down.dirs" || fail "directories differ (< original, > mirrored down)"
    (cd "$work/lftp-down" && TZ=UTC find . -type f -printf '%P %TY-%Tm-%Td %TH:%TM:%.2TS\n' | LC_ALL=C sort) >"$work/down.times"
    grep -v ' 2021-03-04 05:06:07$' "$work/down.times" && fail "modification times not kept (above)"
    [ -s "$work/down.times" ]
}

lftp_find() {
    lftp_run "$plain_lftp" "cd lftp/tree && find"
    sed 's|^\./||; s|/$||' "$work/lftp.out" | grep -v '^\.\?$' | LC_ALL=C sort >"$work/find.got"
    { tree_files; tree_dirs; } | LC_ALL=C sort >"$work/find.want"
    diff "$work/find.want" "$work/find.got" || fail "lftp find lists other names (< want, > got)"
}

lftp_get_c() {
    head -c 1234567 "$src/big/big file.bin" >"$work/get-c.bin"
    lftp_run "$plain_lftp" "get -c \"lftp/tree/big/big file.bin\" -o \"$work/get-c.bin\""
    said "$work/lftp.trace" '^---> REST 1234567'
    cmp "$work/get-c.bin" "$src/big/big file.bin"
}

lftp_reput() {
    expect_status 201 PUT lftp/reput.bin --data-binary @<(head -c 1500000 "$src/big/big file.bin")
    lftp_run "$plain_lftp" "reput \"$src/big/big file.bin\" -o lftp/reput.bin"
    said "$work/lftp.trace" '^---> REST 1500000'
    said "$work/lftp.trace" '^---> STOR reput.bin|^---> STOR lftp/reput.bin'
    same_bytes lftp/reput.bin "$src/big/big file.bin"
}

lftp_put_c() {
    expect_status 201 PUT lftp/put-c.bin --data-binary @<(head -c 777777 "$src/big/big file.bin")
    lftp_run "$plain_lftp" "put -c \"$src/big/big file.bin\" -o lftp/put-c.bin"
    said "$work/lftp.trace" '^---> REST 777777'
    same_bytes lftp/put-c.bin "$src/big/big file.bin"
}

lftp_mv_rm() {
    lftp_run "$plain_lftp" "mv \"lftp/tree/with space/a b c.txt\" \"lftp/tree/café dir/moved a b c.txt\"; \
        rm -r lftp/tree/l1; rmdir \"lftp/tree/empty dir\""
    missing "lftp/tree/with space/a b c.txt"
    same_bytes "lftp/tree/café dir/moved a b c.txt" "$src/with space/a b c.txt"
    expect_status 404 PROPFIND lftp/tree/l1/ -H 'Depth: 0'
    expect_status 404 PROPFIND "lftp/tree/empty dir/" -H 'Depth: 0'
    same_bytes "lftp/tree/big/big file.bin" "$src/big/big file.bin"
}

check "lftp mirror -R: $(tree_files | wc -l) files (unicode, odd names, spaces, empty, 4.5 MB), 3 levels; verified through WebDAV" lftp_mirror_up
check "lftp mirror back down; diff -r with the original; modification times kept both ways (SITE UTIME, MLSD)" lftp_mirror_down
check "lftp find lists every file and directory by name" lftp_find
check "lftp get -c resumes a partial download (REST 1234567)" lftp_get_c
check "lftp reput resumes a partial upload (REST 1500000); WebDAV GET has every byte" lftp_reput
check "lftp put -c resumes a partial upload (REST 777777); WebDAV GET has every byte" lftp_put_c
check "lftp mv, rm -r and rmdir (verified through WebDAV)" lftp_mv_rm

# --- ftplib --------------------------------------------------------------------------------

ftpuser_password="ftpuser-$RANDOM-$RANDOM"
printf '%s\n' "$ftpuser_password" | "$bin" user add ftpuser --data "$work/main/data" --password-stdin >/dev/null
py_checks plain ftpuser "$ftpuser_password"

# ===========================================================================================
# Explicit FTPS (AUTH TLS) with a self-signed certificate.
# ===========================================================================================

serve tls --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
py_checks tls admin "$password"

tls_lftp="set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:ssl-protect-list yes; \
    set ssl:verify-certificate no"

lftps_mirror() {
    lftp_run "$tls_lftp" "mirror -R --no-perms \"$src\" lftps/tree; mirror --no-perms lftps/tree \"$work/lftps-down\""
    said "$work/lftp.trace" '^---> AUTH TLS'
    said "$work/lftp.trace" '^<--- 234'
    said "$work/lftp.trace" '^---> PROT P'
    cp "$work/lftp.trace" "$work/lftps-mirror.trace"
    diff -r "$src" "$work/lftps-down" || fail "the tree mirrored down over FTPS differs"
    tree_on_server lftps/tree
}

lftps_puts() { # lftp may retry a refused upload here: the next check counts the refusals
    local i cmds=""
    for i in $(seq 10); do cmds+="put \"$files/500k.bin\" -o lftps/put-$i.bin; "; done
    lftp_run "$tls_lftp; set net:max-retries 4" "$cmds"
    cp "$work/lftp.trace" "$work/lftps-puts.trace"
    for i in $(seq 10); do same_bytes "lftps/put-$i.bin" "$files/500k.bin"; done
}

lftps_no_426() { # reads the traces of the two checks above
    local t n total=0
    for t in lftps-mirror lftps-puts; do
        [ -f "$work/$t.trace" ] || fail "no trace of $t"
        n=$(grep -c '^<--- 426' "$work/$t.trace" || true)
        total=$((total + n))
        [ "$n" = 0 ] || echo "$t: $n upload(s) answered 426 (lftp reconnected and sent them again):" \
            "$(grep -E '^(---> STOR|<--- 426)' "$work/$t.trace" | grep -B1 '^<--- 426' | grep STOR | head -n 5 | tr '\n' ' ')"
    done
    [ "$total" = 0 ] || fail "$total uploads over TLS were refused with 426 Connection closed"
}

curls() { curl -sS --max-time 60 -k --ssl-reqd -u "admin:$password" "$@"; }

curls_upload_n() { # curls_upload_n DIR CURL-TLS-OPTION...: 10 uploads, each verified through WebDAV
    local dir=$1 i rc bad=0 st
    shift
    for i in $(seq 10); do
        rc=0
        curls "$@" --ftp-create-dirs -T "$files/500k.bin" "$ftp/$dir/$i.bin" 2>"$work/trace" || rc=$?
        st=$(dav GET "$dir/$i.bin")
        if [ "$rc" -ne 0 ] || [ "$st" != 200 ] || ! cmp -s "$work/body" "$files/500k.bin"; then
            bad=$((bad + 1))
            echo "upload $i: curl $* -T exited $rc ($(tr '\n' ' ' <"$work/trace")), then WebDAV GET answered $st"
        fi
    done
    [ "$bad" = 0 ] || fail "$bad of 10 curl uploads over TLS ($*) failed"
}

curls_download() {
    expect_status 201 PUT curls-dl.bin --data-binary "@$files/data.bin"
    curls -v -o "$work/curls.bin" "$ftp/curls-dl.bin" 2>"$work/trace"
    said "$work/trace" '^> AUTH TLS'
    said "$work/trace" '^< 234'
    said "$work/trace" '^> PROT P'
    cmp "$work/curls.bin" "$files/data.bin"
    curls -o "$work/curls.list" "$ftp/"
    grep -qE ' 2500000 .* curls-dl\.bin$' "$work/curls.list" || fail "LIST over TLS: $(cat "$work/curls.list")"
}

check "lftp FTPS (AUTH TLS, PROT P): mirror -R and back down; diff -r; verified through WebDAV" lftps_mirror
check "lftp FTPS: 10 puts of 500 KB; verified through WebDAV" lftps_puts
check "lftp FTPS: no upload (mirror or put) was refused with 426 and had to be retried" lftps_no_426
check "curl FTPS (--ssl-reqd, TLS 1.3): 10 uploads of 500 KB all succeed and are stored" curls_upload_n curls13 --tlsv1.3
check "curl FTPS (--ssl-reqd, --tls-max 1.2): 10 uploads of 500 KB all succeed and are stored" curls_upload_n curls12 --tls-max 1.2
check "curl FTPS: download and LIST over a protected channel" curls_download

# ===========================================================================================
# --ftps-required: FTP without TLS is refused.
# ===========================================================================================

serve tlsreq --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --ftps-required
py_checks tls-required admin "$password"

curl_plain_refused() {
    local rc=0
    curl -sS --max-time 30 -u "admin:$password" -o /dev/null "$ftp/" 2>"$work/trace" || rc=$?
    [ "$rc" != 0 ] || fail "curl without TLS listed / on a --ftps-required server"
    echo "curl without TLS exited $rc: $(cat "$work/trace")"
    curls -o "$work/tlsreq.list" "$ftp/" # with TLS it works
}
check "curl without TLS is refused by --ftps-required; with --ssl-reqd it lists" curl_plain_refused

# ===========================================================================================
# The brute-force guard is shared by FTP and WebDAV.
# ===========================================================================================

serve lockout1 --lockout-after 2 --lockout-seconds 120
py_checks login admin "$password" "before the lockout test"
py_checks lockout admin "$password" 2

webdav_locked_out() {
    local st
    st=$(dav PROPFIND / -H 'Depth: 0')
    [ "$st" = 429 ] || fail "WebDAV with the right password answered $st after 2 failed FTP logins, want 429"
}
check "after 2 failed FTP logins, WebDAV with the right password is locked out too (429)" webdav_locked_out

serve lockout2 --lockout-after 2 --lockout-seconds 3
py_checks login admin "$password" "before the lockout test"
webdav_fails_twice() {
    local st i
    for i in 1 2; do
        st=$(curl -sS -k --max-time 30 -u "admin:wrong-$i" -o /dev/null -w '%{http_code}' -X PROPFIND -H 'Depth: 0' "$url")
        [ "$st" = 401 ] || fail "WebDAV with a wrong password answered $st, want 401"
    done
}
check "WebDAV: two wrong passwords (401)" webdav_fails_twice
py_checks lockout admin "$password" 0
sleep 3.2
py_checks login admin "$password" "again once the 3 s lockout is over"

# ===========================================================================================
# --anonymous, and the passive port range.
# ===========================================================================================

pasv_first=$((20000 + RANDOM % 20000))
pasv_last=$((pasv_first + 40))
serve anon --anonymous --ftp-passive-ports "$pasv_first-$pasv_last" --ftp-passive-host 127.0.0.1

anon_setup() { # admin publishes a file through FTP: admin's /public is the anonymous root
    cftp -T "$files/a.txt" "$ftp/public/hello.txt"
    local st
    st=$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code}' "${url}hello.txt")
    [ "$st" = 200 ] && cmp -s "$work/body" "$files/a.txt" || fail "anonymous WebDAV GET /hello.txt answered $st"
}
check "admin publishes /public/hello.txt over FTP (anonymous WebDAV GET reads it)" anon_setup
py_checks anonymous hello.txt "$(cat "$files/a.txt")"

curl_anonymous() {
    local rc=0
    curl -sS --max-time 30 -o "$work/anon.list" "$ftp/" # no -u: anonymous / ftp@example.com
    grep -q ' hello\.txt$' "$work/anon.list" || fail "anonymous LIST: $(cat "$work/anon.list")"
    curl -sS --max-time 30 -o "$work/anon.txt" "$ftp/hello.txt"
    cmp "$work/anon.txt" "$files/a.txt"
    curl -sS -v --max-time 30 -T "$files/b.txt" "$ftp/new.txt" 2>"$work/trace" || rc=$?
    # 25: STOR refused before the data was sent; 18: the server took the data, then said 550
    [ "$rc" = 25 ] || [ "$rc" = 18 ] || fail "anonymous curl -T exited $rc, want 25 or 18 (upload refused)"
    said "$work/trace" '^< 550'
    missing public/new.txt
    [ "$rc" = 25 ] || echo "note: the server read the whole upload before refusing it (150, then 550)"
}
check "curl as anonymous lists and downloads; its upload is refused (550, exit 25)" curl_anonymous
py_checks passive admin "$password" "$pasv_first" "$pasv_last"

echo "ftp: took $((SECONDS - started)) s"
echo "ftp: $passed passed, $failed failed, $known known libunftp defects (# TODO above)"
[ "$failed" -eq 0 ]
