#!/usr/bin/env bash
# Real WebDAV clients against one fresh `wharf serve`: rclone (webdav backend), cadaver
# (a scripted session) and davfs2 (a kernel mount, root only). Every effect a client claims
# is checked independently with curl. Prints `ok - NAME`, `not ok - NAME` (with the check's
# output and the server's request log) or `skip - NAME: REASON` per check, then
# `clients: N passed, M failed`; exits non-zero when a check failed.
#
# Usage: tests/clients/run.sh [path/to/wharf] [store|host]   (default target/debug/wharf, store)
# `host` runs every check against a host folder served in place (`wharf serve --folder`),
# and also checks that what the clients wrote is in that folder, byte for byte.
# WHARF_CLIENTS_KEEP=1 keeps the work directory (server.log has every request).
set -euo pipefail
bin=$(realpath "${1:-target/debug/wharf}")
tree=${2:-store}
started=$SECONDS

# Everything talks to 127.0.0.1: never through a proxy (davfs2 and curl honour these).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

work=$(mktemp -d)
pid="" cadaver_pid="" mnt="" davfs_cache=""
cleanup() {
    set +e
    if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
        umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" >/dev/null 2>&1
    fi
    exec 7>&-
    [ -n "$cadaver_pid" ] && kill "$cadaver_pid" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [ -n "${WHARF_CLIENTS_KEEP:-}" ]; then echo "clients: kept $work" >&2; else rm -rf "$work"; fi
    [ -n "$davfs_cache" ] && rm -rf "$davfs_cache"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that cleanup still unmounts and stops the server

# shellcheck source=../serve.sh
source "$(dirname "$0")/../serve.sh"
folder=""
if [ "$tree" = host ]; then
    folder="$work/folder"
    mkdir -p "$folder"
    start_wharf "$bin" "$work" clients --folder "$folder" || exit 1
else
    start_wharf "$bin" "$work" clients || exit 1
fi
echo "clients: against the $tree"

# --- the harness ---------------------------------------------------------------------------

log="$work/server.log"
source "$(dirname "$0")/../checks.sh"
skipped=0

# Under a failed check: the requests the server saw meanwhile.
show_log() {
    echo "#   server requests during the check:"
    tail -n "+$(($1 + 1))" "$log" | sed -n 's/^.*request /#     /p' | tail -n 25
}

skip() { # skip NAME REASON
    echo "skip - $1: $2"
    skipped=$((skipped + 1))
}

exists() { expect_status 200 GET "$1"; }

on_disk() { # on_disk PATH LOCAL-FILE: against a host folder, the file there holds LOCAL-FILE's bytes
    [ -z "$folder" ] && return 0
    cmp "$folder/$1" "$2" || fail "$folder/$1 on disk differs from $2"
}

propfind0() { # propfind0 PATH PROP-XML: PROPFIND Depth 0 into $work/body, must be 207
    expect_status 207 PROPFIND "$1" -H 'Depth: 0' -H 'Content-Type: application/xml' \
        --data-binary "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:propfind xmlns:D=\"DAV:\"><D:prop>$2</D:prop></D:propfind>"
}

# --- rclone --------------------------------------------------------------------------------

export RCLONE_CONFIG="$work/rclone.conf" RCLONE_CONFIG_WHARF_TYPE=webdav \
    RCLONE_CONFIG_WHARF_URL="$url" RCLONE_CONFIG_WHARF_VENDOR=other \
    RCLONE_CONFIG_WHARF_USER=admin RCLONE_CONFIG_WHARF_PASS="$(rclone obscure "$password")" \
    RCLONE_RETRIES=1 RCLONE_LOW_LEVEL_RETRIES=1 RCLONE_CONTIMEOUT=10s RCLONE_TIMEOUT=60s
# (no retries: a failed request must show, not be papered over by a second attempt)
: >"$RCLONE_CONFIG"
src="$work/src"
remote=rclone/tree

make_tree() {
    local d i
    mkdir -p "$src/Ünïcödé dir/Ünter dïr" "$src/with space" "$src/l1/l2/l3" "$src/big" \
        "$src/odd names"
    printf 'crème brûlée\n' >"$src/Ünïcödé dir/naïve café.txt"
    printf 'nihongo\n' >"$src/Ünïcödé dir/Ünter dïr/日本語 ファイル.txt"
    printf 'a b\n' >"$src/with space/a b.txt"
    : >"$src/with space/empty file.txt"
    printf 'odd\n' >"$src/odd names/[brackets] & (parens) + plus'quote.txt"
    printf 'pct\n' >"$src/odd names/100% sure #1 %20.txt"
    i=0
    for d in "" "Ünïcödé dir/" "with space/" "l1/" "l1/l2/" "l1/l2/l3/"; do
        for _ in 1 2 3 4 5; do
            i=$((i + 1))
            head -c $((RANDOM % 6000 + 1)) /dev/urandom >"$src/${d}file $i.bin"
        done
    done
    head -c $((64 * 1024 * 1024)) /dev/urandom >"$src/big/random 64M.bin"
}

local_listing() { # "path<TAB>size" of every local file under $src, sorted
    (cd "$src" && find . -type f -printf '%P\t%s\n') | LC_ALL=C sort
}

rclone_copy() {
    rclone copy "$src" "wharf:$remote"
    # Spot-check with curl: a unicode name, a name with a space, a deep one, the big file.
    same_bytes "$remote/Ünïcödé dir/naïve café.txt" "$src/Ünïcödé dir/naïve café.txt"
    same_bytes "$remote/with space/a b.txt" "$src/with space/a b.txt"
    same_bytes "$remote/l1/l2/l3/file 30.bin" "$src/l1/l2/l3/file 30.bin"
    same_bytes "$remote/big/random 64M.bin" "$src/big/random 64M.bin"
    on_disk "$remote/Ünïcödé dir/naïve café.txt" "$src/Ünïcödé dir/naïve café.txt"
    on_disk "$remote/big/random 64M.bin" "$src/big/random 64M.bin"
}

rclone_check_up() { rclone check --download "$src" "wharf:$remote"; }
rclone_copy_again() {
    rclone copy -v "$src" "wharf:$remote" 2>&1 | tee "$work/copy2"
    grep -qE '^Transferred:[[:space:]]+0 B / 0 B' "$work/copy2" || fail "the second copy transferred data"
}
rclone_check_down() { rclone check --download "wharf:$remote" "$src"; }

unjson() { sed 's/\\u0026/\&/g; s/\\u003c/</g; s/\\u003e/>/g; s/\\"/"/g'; } # Go's escapes

rclone_lsjson() {
    rclone lsjson -R "wharf:$remote" >"$work/lsjson" # one object per line
    sed -n 's/^{"Path":"\(.*\)","Name":.*"Size":\([0-9]*\),.*"IsDir":false.*/\1\t\2/p' \
        "$work/lsjson" | unjson | LC_ALL=C sort >"$work/remote.files"
    local_listing >"$work/local.files"
    diff "$work/local.files" "$work/remote.files" || fail "lsjson's files differ (< local, > remote)"
    sed -n 's/^{"Path":"\(.*\)","Name":.*"IsDir":true.*/\1/p' "$work/lsjson" \
        | unjson | LC_ALL=C sort >"$work/remote.dirs"
    (cd "$src" && find . -mindepth 1 -type d -printf '%P\n') | LC_ALL=C sort >"$work/local.dirs"
    diff "$work/local.dirs" "$work/remote.dirs" || fail "lsjson's directories differ (< local, > remote)"
    echo "$(wc -l <"$work/remote.files") files with their sizes, $(wc -l <"$work/remote.dirs") directories"
}

rclone_moveto() {
    rclone moveto "wharf:$remote/with space/a b.txt" "wharf:$remote/Ünïcödé dir/moved a b.txt"
    missing "$remote/with space/a b.txt"
    same_bytes "$remote/Ünïcödé dir/moved a b.txt" "$src/with space/a b.txt"
    rclone lsf "wharf:$remote/Ünïcödé dir" >"$work/lsf"
    grep -qx 'moved a b.txt' "$work/lsf" || fail "lsf does not show the moved file"
}

rclone_copyto() { # a server-side COPY into a directory that does not exist yet
    rclone copyto -v "wharf:$remote/big/random 64M.bin" "wharf:rclone/copied dïr/Ü big.bin" 2>&1 \
        | tee "$work/copyto"
    grep -q 'server-side copy' "$work/copyto" || fail "rclone did not copy server-side"
    same_bytes "rclone/copied dïr/Ü big.bin" "$src/big/random 64M.bin"
    same_bytes "$remote/big/random 64M.bin" "$src/big/random 64M.bin"
}

rclone_dirmove() { # a server-side MOVE of a collection, into a directory that does not exist yet
    local u="Ünïcödé dir"
    rclone moveto -v "wharf:$remote/$u" "wharf:rclone/moved dïr/inner" 2>&1 | tee "$work/dirmove"
    grep -q 'Server side directory move succeeded' "$work/dirmove" || fail "rclone did not move server-side"
    expect_status 404 PROPFIND "$remote/$u/" -H 'Depth: 0'
    missing "$remote/$u/naïve café.txt"
    same_bytes "rclone/moved dïr/inner/naïve café.txt" "$src/$u/naïve café.txt"
    same_bytes "rclone/moved dïr/inner/moved a b.txt" "$src/with space/a b.txt"
    same_bytes "rclone/moved dïr/inner/Ünter dïr/日本語 ファイル.txt" "$src/$u/Ünter dïr/日本語 ファイル.txt"
    same_bytes "rclone/moved dïr/inner/file 10.bin" "$src/$u/file 10.bin"
}

rclone_purge() {
    rclone purge "wharf:$remote/l1"
    expect_status 404 PROPFIND "$remote/l1/" -H 'Depth: 0'
    missing "$remote/l1/l2/l3/file 30.bin"
    exists "$remote/with space/file 11.bin"
    if rclone lsf "wharf:$remote/l1" >/dev/null 2>&1; then fail "rclone still lists $remote/l1"; fi
}

rclone_about() {
    rclone about "wharf:" | tee "$work/about"
    grep -q '^Used:' "$work/about" || fail "no Used: line"
    grep -q '^Free:' "$work/about" || fail "no Free: line"
    rclone about --json "wharf:" | tee "$work/about.json"
    propfind0 / '<D:quota-used-bytes/><D:quota-available-bytes/>'
    local used free want rused rfree
    used=$(prop_value quota-used-bytes)
    free=$(prop_value quota-available-bytes)
    # What the tree holds now: the uploaded files, minus the purged l1/, plus the copy of
    # the big file (moves change nothing).
    want=$(local_listing | grep -v '^l1/' | awk -F'\t' '{s += $2} END {print s}')
    want=$((want + $(stat -c %s "$src/big/random 64M.bin")))
    [ "$used" = "$want" ] || fail "quota-used-bytes is $used, the tree holds $want bytes"
    rused=$(grep -o '"used": *[0-9]*' "$work/about.json" | tr -dc 0-9)
    rfree=$(grep -o '"free": *[0-9]*' "$work/about.json" | tr -dc 0-9)
    [ "$rused" = "$used" ] || fail "rclone about used=$rused, PROPFIND quota-used-bytes=$used"
    # Free is the disk's free space, which other processes change: allow 1% drift.
    [ -n "$rfree" ] && [ "$rfree" -gt 0 ] || fail "rclone about shows no free space"
    awk -v a="$rfree" -v b="$free" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= b / 100)}' \
        || fail "rclone about free=$rfree, PROPFIND quota-available-bytes=$free"
}

make_tree
check "rclone copy: $(find "$src" -type f | wc -l) files, unicode/space/odd names, 3 levels, a 64 MiB file" rclone_copy
check "rclone check --download local -> remote" rclone_check_up
check "rclone copy again transfers nothing (sizes listed as uploaded)" rclone_copy_again
check "rclone check --download remote -> local" rclone_check_down
check "rclone lsjson -R lists every file with its size" rclone_lsjson
check "rclone moveto renames a file into another directory" rclone_moveto
check "rclone copyto copies a file server-side (COPY) into a new directory" rclone_copyto
check "rclone moveto moves a directory server-side (MOVE of a collection)" rclone_dirmove
check "rclone purge removes a directory tree" rclone_purge
check "rclone about shows Used/Free matching the RFC 4331 quota" rclone_about

# --- cadaver -------------------------------------------------------------------------------

# One cadaver session for the whole section, fed through a FIFO so that the server's state
# can be checked with curl between its commands. Credentials come from ~/.netrc. The names
# carry spaces, non-ASCII letters and a '#', which cadaver (neon) percent-encodes itself.
cdir="cadaver dïr" cfile="blöb #1.bin" cmoved="moved ö.bin" ccopied="copied ç.bin"
cns="http://webdav.org/cadaver/custom-properties/" # cadaver's namespace for propset
mkdir -p "$work/home" "$work/cad"
printf 'machine 127.0.0.1 login admin password %s\n' "$password" >"$work/home/.netrc"
chmod 600 "$work/home/.netrc"
head -c 200000 /dev/urandom >"$work/cad/$cfile"
mkfifo "$work/cadaver.in"
(cd "$work/cad" && HOME="$work/home" exec cadaver "$url") <"$work/cadaver.in" >"$work/cadaver.out" 2>&1 &
cadaver_pid=$!
exec 7>"$work/cadaver.in"

# cad COMMAND...: runs the commands in the session, waits for them, prints their output.
cad() {
    local mark="MARK-$RANDOM$RANDOM" from cmd
    from=$(stat -c %s "$work/cadaver.out")
    for cmd in "$@"; do echo "$cmd" >&7; done
    echo "echo $mark" >&7
    for _ in $(seq 300); do
        grep -q "^$mark" "$work/cadaver.out" && break
        kill -0 "$cadaver_pid" 2>/dev/null || fail "cadaver exited"
        sleep 0.1
    done
    tail -c "+$((from + 1))" "$work/cadaver.out" | sed "/^$mark/,\$d" | tee "$work/cad.step"
    grep -q "^$mark" "$work/cadaver.out" || fail "cadaver did not finish within 30 s"
}

said() { # said TEXT: the last cad step printed TEXT
    grep -qF -- "$1" "$work/cad.step" || fail "cadaver did not print: $1"
}

has_colour() { # has_colour PATH: the dead property set by propset is there, via PROPFIND
    propfind0 "$1" "<C:colour xmlns:C=\"$cns\"/>"
    [ "$(prop_value colour)" = ultramarine ] || fail "PROPFIND $1 shows: $(cat "$work/body")"
}

cadaver_mkcol() {
    cad "mkcol \"$cdir\"" "cd \"$cdir\""
    said "Creating \`$cdir': succeeded."
    propfind0 "$cdir/" '<D:resourcetype/>'
    grep -q '<D:collection/>' "$work/body" || fail "$cdir/ is not a collection: $(cat "$work/body")"
}

cadaver_put() {
    cad "put \"$cfile\""
    said "Uploading $cfile to" # then the encoded URL and progress dots
    said "succeeded."
    same_bytes "$cdir/$cfile" "$work/cad/$cfile"
    on_disk "$cdir/$cfile" "$work/cad/$cfile"
}

cadaver_get() {
    cad "get \"$cfile\" got.bin"
    said "succeeded."
    cmp "$work/cad/got.bin" "$work/cad/$cfile" || fail "the downloaded bytes differ"
}

cadaver_props() {
    cad "propset \"$cfile\" colour ultramarine"
    said "Setting property on \`$cfile': succeeded."
    cad "propget \"$cfile\" colour"
    said "Value of colour is: ultramarine"
    has_colour "$cdir/$cfile"
}

cadaver_lock() {
    cad "lock \"$cfile\""
    said "Locking \`$cfile': succeeded."
    propfind0 "$cdir/$cfile" '<D:lockdiscovery/>'
    grep -q 'opaquelocktoken:' "$work/body" || fail "no active lock: $(cat "$work/body")"
    expect_status 423 PUT "$cdir/$cfile" --data-binary 'not allowed'
    expect_status 423 DELETE "$cdir/$cfile"
    cad "put \"$cfile\"" # cadaver sends its lock token along
    said "succeeded."
    cad "unlock \"$cfile\""
    said "Unlocking \`$cfile': succeeded."
    propfind0 "$cdir/$cfile" '<D:lockdiscovery/>'
    if grep -q 'locktoken' "$work/body"; then fail "still locked: $(cat "$work/body")"; fi
    same_bytes "$cdir/$cfile" "$work/cad/$cfile"
}

cadaver_move() {
    cad "move \"$cfile\" \"$cmoved\""
    said "Moving \`/$cdir/$cfile' to \`/$cdir/$cmoved':  succeeded."
    missing "$cdir/$cfile"
    same_bytes "$cdir/$cmoved" "$work/cad/$cfile"
    has_colour "$cdir/$cmoved"
}

cadaver_copy() {
    cad "copy \"$cmoved\" \"$ccopied\""
    said "Copying \`/$cdir/$cmoved' to \`/$cdir/$ccopied':  succeeded."
    same_bytes "$cdir/$cmoved" "$work/cad/$cfile"
    same_bytes "$cdir/$ccopied" "$work/cad/$cfile"
    has_colour "$cdir/$ccopied"
}

cadaver_rm() {
    cad "rm \"$cmoved\""
    said "Deleting \`$cmoved': succeeded."
    missing "$cdir/$cmoved"
    exists "$cdir/$ccopied"
    cad "ls"
    said "$ccopied"
    if grep -qF "$cmoved" "$work/cad.step"; then fail "ls still shows $cmoved"; fi
    cad "cd /" "rmcol \"$cdir\""
    said "Deleting collection \`$cdir': succeeded."
    expect_status 404 PROPFIND "$cdir/" -H 'Depth: 0'
    missing "$cdir/$ccopied"
}

check "cadaver mkcol" cadaver_mkcol
check "cadaver put (bytes verified by GET)" cadaver_put
check "cadaver get (bytes compared)" cadaver_get
check "cadaver propset/propget of a dead property (and PROPFIND)" cadaver_props
check "cadaver lock/unlock (423 for others while locked; put with the token)" cadaver_lock
check "cadaver move (dead property moves along)" cadaver_move
check "cadaver copy (dead property copied)" cadaver_copy
check "cadaver rm and rmcol" cadaver_rm
echo "quit" >&7
exec 7>&-
wait "$cadaver_pid" 2>/dev/null || true
cadaver_pid=""

# --- davfs2 --------------------------------------------------------------------------------

davfs_reason=""
if ! command -v mount.davfs >/dev/null 2>&1 && [ ! -x /usr/sbin/mount.davfs ] && [ ! -x /sbin/mount.davfs ]; then
    davfs_reason="mount.davfs is not installed"
elif [ "$(id -u)" -ne 0 ]; then
    davfs_reason="mounting needs root (running as $(id -un))"
else
    [ -c /dev/fuse ] || modprobe fuse >/dev/null 2>&1 || true
    [ -c /dev/fuse ] || davfs_reason="no /dev/fuse (modprobe fuse failed)"
fi

davfs_setup() {
    mnt="$work/mnt"
    mkdir -p "$mnt"
    # The mount daemon runs as the davfs2 user: its cache directory must be reachable and
    # writable by it, so it lives outside our private work directory.
    davfs_cache=$(mktemp -d)
    chmod 1777 "$davfs_cache"
    printf '%s admin %s\n' "$url" "$password" >"$work/davfs.secrets"
    chmod 600 "$work/davfs.secrets"
    printf 'secrets %s\nuse_locks 1\nask_auth 0\ncache_dir %s\n' "$work/davfs.secrets" \
        "$davfs_cache" >"$work/davfs.conf"
    davdata="$work/davfs-data"
    mkdir -p "$davdata"
    head -c 300000 /dev/urandom >"$davdata/written.bin"
    head -c 100000 /dev/urandom >"$davdata/from-server.bin"
    head -c 50000 /dev/urandom >"$davdata/overwrite.bin"
    printf 'ça marche\n' >"$davdata/unicode.txt"
}

davfs_mount() {
    timeout 60 mount -t davfs "$url" "$mnt" -o "conf=$work/davfs.conf" </dev/null >"$work/mount.out" 2>&1
}

davfs_umount() { # unmounting uploads what the cache still holds
    timeout 120 umount "$mnt" </dev/null || fail "umount failed"
    if mountpoint -q "$mnt"; then fail "still mounted after umount"; fi
}

davfs_write_read_stat() {
    expect_status 201 MKCOL davfs/
    expect_status 201 PUT davfs/from-server.bin --data-binary "@$davdata/from-server.bin"
    davfs_mount || fail "mount: $(cat "$work/mount.out")"
    # read a file the server holds
    cmp "$mnt/davfs/from-server.bin" "$davdata/from-server.bin" || fail "read back differs"
    [ "$(stat -c %s "$mnt/davfs/from-server.bin")" = 100000 ] || fail "stat size of from-server.bin"
    # write new files, one with a unicode name, overwrite an existing one
    cp "$davdata/written.bin" "$mnt/davfs/written.bin"
    cp "$davdata/unicode.txt" "$mnt/davfs/façade ü.txt"
    cp "$davdata/overwrite.bin" "$mnt/davfs/from-server.bin"
    cmp "$mnt/davfs/written.bin" "$davdata/written.bin" || fail "written.bin reads back differently"
    [ "$(stat -c %s "$mnt/davfs/written.bin")" = 300000 ] || fail "stat size of written.bin"
    [ "$(stat -c %s "$mnt/davfs/from-server.bin")" = 50000 ] || fail "stat size after overwrite"
    mkdir "$mnt/davfs/sub"
    davfs_umount
    same_bytes davfs/written.bin "$davdata/written.bin"
    same_bytes "davfs/façade ü.txt" "$davdata/unicode.txt"
    same_bytes davfs/from-server.bin "$davdata/overwrite.bin"
    on_disk davfs/written.bin "$davdata/written.bin"
    on_disk "davfs/façade ü.txt" "$davdata/unicode.txt"
    on_disk davfs/from-server.bin "$davdata/overwrite.bin"
    propfind0 davfs/written.bin '<D:getcontentlength/>'
    [ "$(prop_value getcontentlength)" = 300000 ] || fail "getcontentlength: $(cat "$work/body")"
    propfind0 davfs/sub/ '<D:resourcetype/>'
    grep -q '<D:collection/>' "$work/body" || fail "davfs/sub/ is not a collection"
}

davfs_rename_delete() {
    davfs_mount || fail "mount: $(cat "$work/mount.out")"
    [ "$(stat -c %s "$mnt/davfs/written.bin")" = 300000 ] || fail "stat size after remount"
    mv "$mnt/davfs/written.bin" "$mnt/davfs/sub/renamed.bin"
    [ ! -e "$mnt/davfs/written.bin" ] || fail "written.bin still there after mv"
    cmp "$mnt/davfs/sub/renamed.bin" "$davdata/written.bin" || fail "renamed file reads differently"
    rm "$mnt/davfs/from-server.bin"
    [ ! -e "$mnt/davfs/from-server.bin" ] || fail "from-server.bin still there after rm"
    rmdir "$mnt/davfs/sub" 2>/dev/null && fail "rmdir of a non-empty directory succeeded"
    davfs_umount
    missing davfs/written.bin
    same_bytes davfs/sub/renamed.bin "$davdata/written.bin"
    missing davfs/from-server.bin
    exists "davfs/façade ü.txt"
}

[ -n "$davfs_reason" ] || davfs_setup
if [ -n "$davfs_reason" ]; then
    skip davfs2 "$davfs_reason"
elif ! davfs_mount; then
    if grep -qiE 'permission denied|not permitted|fuse.*(device|module)|no such device' "$work/mount.out"; then
        skip davfs2 "cannot mount here: $(head -n 1 "$work/mount.out")"
    else
        check "davfs2 mount" fail "mount -t davfs failed: $(cat "$work/mount.out")"
    fi
else
    timeout 120 umount "$mnt" </dev/null >/dev/null 2>&1
    check "davfs2: read, stat, write (new, unicode name, overwrite), mkdir; verified after umount" davfs_write_read_stat
    check "davfs2: rename, delete; verified after umount" davfs_rename_delete
fi

[ "$skipped" -eq 0 ] || echo "clients: $skipped skipped"
echo "clients: took $((SECONDS - started)) s"
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
