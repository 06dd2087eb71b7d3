# Sourced by the real-client test scripts (tests/clients/run.sh, tests/ftp/run.sh): the
# check harness and the WebDAV helpers both use to verify what a client did. The caller sets
# $work (scratch directory), $url (the server's HTTP URL, ending in /), $password (admin's),
# $pid (the server's) and $log (its log), and may set $dav_timeout (seconds a WebDAV
# request may take, default 120) and define `show_log MARK`: what of the log, from line MARK
# on, to print under a failed check (default: its last 15 lines).

passed=0 failed=0

# check NAME FUNCTION [ARG...]: runs FUNCTION in a subshell with errexit (so any failing
# command fails the check) and reports it. On failure shows the function's output and what
# the server logged meanwhile.
check() {
    local name=$1 rc mark
    shift
    mark=$(wc -l <"$log")
    set +e
    (set -e; "$@") >"$work/check.out" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        echo "ok - $name"
        passed=$((passed + 1))
        return
    fi
    echo "not ok - $name"
    failed=$((failed + 1))
    tail -n 40 "$work/check.out" | sed 's/^/#   /'
    if declare -F show_log >/dev/null; then
        show_log "$mark"
    elif [ "$(wc -l <"$log")" -gt "$mark" ]; then
        echo "#   the server's log during the check:"
        tail -n "+$((mark + 1))" "$log" | tail -n 15 | cut -c1-300 | sed 's/^/#     /'
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "#   the server is no longer running; the end of its log:"
        { grep -v ' request ' "$log" || true; } | tail -n 20 | sed 's/^/#     /'
    fi
}

fail() { # fail MESSAGE: ends the current check
    echo "FAILED: $*" >&2
    exit 1
}

# urlenc PATH: percent-encodes every byte of PATH except '/' and unreserved characters.
urlenc() {
    local LC_ALL=C s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [a-zA-Z0-9/._~-]) out+=$c ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

# dav METHOD PATH [CURL-ARG...]: sends one WebDAV request as admin (the server's certificate
# is not checked: the tests make their own), prints the status code; the body goes to
# $work/body.
dav() {
    local method=$1 path=$2
    shift 2
    curl -sS -g -k --max-time "${dav_timeout:-120}" -u "admin:$password" -X "$method" -o "$work/body" -w '%{http_code}' "$@" \
        "$url$(urlenc "${path#/}")"
}

expect_status() { # expect_status WANT METHOD PATH [CURL-ARG...]
    local want=$1 got
    shift
    got=$(dav "$@")
    [ "$got" = "$want" ] || fail "$1 $2 answered $got, want $want: $(head -c 600 "$work/body")"
}

missing() { expect_status 404 GET "$1"; }

same_bytes() { # same_bytes PATH LOCAL-FILE: GET PATH returns exactly the bytes of LOCAL-FILE
    expect_status 200 GET "$1"
    cmp "$work/body" "$2" || fail "GET $1 differs from $2"
}

prop_value() { # prop_value NAME: the text of the first <...:NAME> element in $work/body
    { grep -o "<[A-Za-z0-9]*:\?$1[^>]*>[^<]*<" "$work/body" || true; } | sed -n '1{s/^<[^>]*>//; s/<$//; p}'
}
