#!/usr/bin/env bash
# The Docker test: builds Wharf's image with docker/Dockerfile through the README's
# docker/compose.yaml (unmodified), runs it, and checks it from the outside: health, WebDAV,
# FTP through the published passive range, the browser page, data kept across down/up, a
# prompt stop, and the variants (TLS, behind nginx, a host folder owned by another uid).
#
# Self-contained: installs Docker, docker-compose and debootstrap from Debian when missing,
# starts dockerd when no engine answers (and stops it again at the end), and builds its base
# images locally (tests/docker/images.sh) since no registry is reachable. Everything it
# starts runs under its own compose project and is removed at the end. Needs root.
#
# Measured on 2 cores shared with other builds: the first run makes the base images (~1.5
# min) and the release build (13-20 min for the dependencies, 6-7 for Wharf's crates), in
# all 25-30 min. Later runs reuse the images and, while the manifests and Cargo.lock stay
# the same, the dependency layer: about 8 min when sources changed, 1 min when nothing did.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/docker/run.sh: needs root (dockerd, debootstrap, files owned by other uids)" >&2
    exit 1
fi

started=$SECONDS
phase_start=$SECONDS
timing() { # NAME: how long the phase that just ended took
    echo "time: $1 $((SECONDS - phase_start)) s"
    phase_start=$SECONDS
}

passes=0 failures=0
pass() {
    echo "PASS $1"
    passes=$((passes + 1))
}
fail() {
    echo "FAIL $1${2:+: $2}"
    failures=$((failures + 1))
}
check() { # NAME COMMAND...: PASS when the command succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

# The engine: when none answers, start Debian's dockerd (it starts its own containerd) with
# its log in a file, and stop it again at the end; an engine that was already running stays.
dockerd_pid=""
dockerd_log=/tmp/wharf-docker-test-dockerd.log
if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (log: $dockerd_log)"
    dockerd >"$dockerd_log" 2>&1 </dev/null &
    dockerd_pid=$!
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$dockerd_log"; exit 1; }
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 60 s" >&2; tail -20 "$dockerd_log"; exit 1; }
fi

tmp=$(mktemp -d /tmp/wharf-docker-test.XXXXXX)
project=wharf-test-$$
compose_files=(-f docker/compose.yaml)
compose() { docker-compose -p "$project" "${compose_files[@]}" "$@"; }

cleanup() {
    local status=$?
    set +e
    if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
        echo "--- last container log lines"
        compose logs --no-color --tail=30 2>/dev/null
    fi
    # Every file given to any phase, so that down also removes the proxy and its network.
    docker-compose -p "$project" -f docker/compose.yaml -f docker/compose.proxy.yaml \
        down -v --remove-orphans >/dev/null 2>&1
    docker-compose -p "$project-scale" -f docker/compose.scale.yaml down -v --remove-orphans >/dev/null 2>&1
    rm -rf "$tmp"
    if [ -n "$dockerd_pid" ]; then
        kill "$dockerd_pid" 2>/dev/null
        wait "$dockerd_pid" 2>/dev/null
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
timing tools

# --- base images (made once, then kept) -----------------------------------------------------
tests/docker/images.sh
timing "base images"

# --- ports -----------------------------------------------------------------------------------
# Free ports on every address (Docker publishes the passive range on all of them): HTTP, FTP,
# the proxy, the several-nodes variant's nginx, and ten consecutive ones for passive FTP.
# Taken outside the kernel's range for outgoing connections: a port inside it, free when
# chosen, can be given to some client's connection before a later variant publishes it.
read -r http_port ftp_port proxy_port scale_port passive_first < <(python3 - <<'EOF'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    lo, hi = map(int, f.read().split())
pool = [p for p in range(10000, 65536) if not lo <= p <= hi]
singles = []
while len(singles) < 4:
    p = random.choice(pool)
    if p not in singles and free(p):
        singles.append(p)
while True:
    first = random.choice(pool)
    run = range(first, first + 10)
    if all(p in pool and p not in singles and free(p) for p in run):
        break
print(*singles, first)
EOF
)
passive_last=$((passive_first + 9))

password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
export WHARF_RUST_IMAGE=wharf-test/rust:bookworm
export WHARF_RUNTIME_IMAGE=wharf-test/debian:bookworm
export WHARF_HTTP_PORT=127.0.0.1:$http_port
export WHARF_FTP_PORT=127.0.0.1:$ftp_port
export WHARF_PASSIVE_FIRST=$passive_first WHARF_PASSIVE_LAST=$passive_last
export WHARF_PUBLIC_HOST=127.0.0.1
export WHARF_ADMIN_PASSWORD=$password
base=http://127.0.0.1:$http_port
echo "project $project: HTTP $http_port, FTP $ftp_port, passive $passive_first-$passive_last"

container() { compose ps -q wharf; }

wait_healthy() { # until Docker's health check passes (90 s at most)
    local id status=""
    id=$(container)
    for _ in $(seq 90); do
        status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || true)
        [ "$status" = healthy ] && return 0
        sleep 1
    done
    echo "health: ${status:-none} after 90 s"
    docker inspect -f '{{json .State.Health}}' "$id" 2>/dev/null | tail -c 600
    echo
    return 1
}

dav() { curl -sS -u "admin:$password" "$@"; }

up() { # compose up -d with the current files; their output only when it fails
    compose up -d "$@" >"$tmp/up.log" 2>&1 || {
        tail -20 "$tmp/up.log"
        return 1
    }
}

get_equals() { # EXPECTED_FILE URL [CURL OPTIONS...]: the URL answers with exactly those bytes
    local expected=$1 url=$2
    shift 2
    rm -f "$tmp/got"
    curl -sS -f -u "admin:$password" "$@" -o "$tmp/got" "$url" && cmp -s "$expected" "$tmp/got"
}

# --- build and start --------------------------------------------------------------------------
echo "building the image and starting"
if ! compose up -d --build >"$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log"
    fail "compose up --build"
    exit 1
fi
echo "  $(grep -c 'Using cache' "$tmp/build.log" || true) of $(grep -c '^Step' "$tmp/build.log" || true) build steps from Docker's cache"
timing "image build and start"
check "container healthy" wait_healthy
timing "health"

# --- WebDAV -----------------------------------------------------------------------------------
head -c 300000 /dev/urandom >"$tmp/dav.bin"
check "WebDAV PUT" dav -f -T "$tmp/dav.bin" "$base/dav.bin"
check "WebDAV GET returns the bytes" get_equals "$tmp/dav.bin" "$base/dav.bin"
propfind_ok() {
    local code
    code=$(dav -X PROPFIND -H 'Depth: 1' -o "$tmp/propfind.xml" -w '%{http_code}' "$base/")
    [ "$code" = 207 ] && grep -q 'dav.bin' "$tmp/propfind.xml"
}
check "WebDAV PROPFIND Depth 1 is 207 and lists the file" propfind_ok

# --- FTP through the published passive range ---------------------------------------------------
head -c 200000 /dev/urandom >"$tmp/ftp.bin"
ftp_url=ftp://127.0.0.1:$ftp_port
# PASV, not EPSV: PASV is the one that needs the announced address and the published range.
# curl's -v output keeps the server's replies for the check after.
pasv=(--ftp-pasv --disable-epsv -v)
check "FTP upload (PASV)" dav -f "${pasv[@]}" -T "$tmp/ftp.bin" "$ftp_url/ftp.bin" 2>"$tmp/ftp-up.log"
check "FTP download (PASV) returns the bytes" get_equals "$tmp/ftp.bin" "$ftp_url/ftp.bin" "${pasv[@]}" 2>"$tmp/ftp-down.log"
pasv_in_range() { # every 227 reply names 127.0.0.1 and a port of the published range
    local line n=0 port
    while read -r line; do
        [[ $line =~ \(([0-9]+),([0-9]+),([0-9]+),([0-9]+),([0-9]+),([0-9]+)\) ]] || return 1
        [ "${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}.${BASH_REMATCH[4]}" = 127.0.0.1 ] || return 1
        port=$((BASH_REMATCH[5] * 256 + BASH_REMATCH[6]))
        echo "  PASV port $port"
        [ "$port" -ge "$passive_first" ] && [ "$port" -le "$passive_last" ] || return 1
        n=$((n + 1))
    done < <(grep -h '^< 227' "$tmp/ftp-up.log" "$tmp/ftp-down.log")
    [ "$n" -ge 2 ]
}
check "PASV replies announce 127.0.0.1 and ports in $passive_first-$passive_last" pasv_in_range
check "a file stored over FTP is the same over WebDAV" get_equals "$tmp/ftp.bin" "$base/ftp.bin"

# --- the browser page ----------------------------------------------------------------------------
browser_ok() {
    local code type
    read -r code type < <(dav -H 'Accept: text/html' -o "$tmp/page.html" -w '%{http_code} %{content_type}\n' "$base/")
    [ "$code" = 200 ] && [[ $type == text/html* ]] && grep -q 'dav.bin' "$tmp/page.html"
}
check "browser page: 200 text/html listing the file" browser_ok
timing "WebDAV, FTP and browser checks"

# --- data kept across down and up (the volume stays without -v) -----------------------------------
compose down >/dev/null 2>&1
check "up again after down" up
check "healthy again after down and up" wait_healthy
check "data kept across down/up" get_equals "$tmp/dav.bin" "$base/dav.bin"
timing "down/up"

# --- a prompt stop: SIGTERM reaches Wharf, which exits at once when nothing is in flight -------
# Two figures. The time from Docker's SIGTERM to the process's exit, from the engine's events,
# is Wharf's own (tens of ms). The whole `compose stop` adds docker-compose's start (about a
# second) and Docker releasing the published ports: 1.4 to 3.6 s on a 2-core machine busy
# with other builds, so a stop over 3 s is measured once more before it counts as a failure.
measure_stop() { # sets stop_ms (the whole command) and exit_ms (SIGTERM to exit) and $id
    id=$(container)
    local start end kill_ns die_ns
    start=$(date +%s.%N)
    compose stop >/dev/null 2>&1
    end=$(date +%s.%N)
    stop_ms=$(python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$start" "$end")
    read -r kill_ns die_ns < <(docker events --since "$start" --until "$(date +%s.%N)" \
        --filter "container=$id" --format '{{.Status}} {{.TimeNano}}' |
        awk '$1 == "kill" && k == "" { k = $2 } $1 == "die" && d == "" { d = $2 }
             END { print (k == "" ? 0 : k), (d == "" ? 0 : d) }')
    exit_ms=-1
    [ "$kill_ns" -gt 0 ] && [ "$die_ns" -gt 0 ] && exit_ms=$(((die_ns - kill_ns) / 1000000))
    echo "  compose stop took $stop_ms ms; SIGTERM to exit $exit_ms ms"
}
measure_stop
if [ "$stop_ms" -ge 3000 ]; then
    echo "  over 3 s: starting it again for a second measurement"
    up && wait_healthy && measure_stop
fi
check "Wharf exits within 1 s of SIGTERM" test "$exit_ms" -ge 0 -a "$exit_ms" -lt 1000
check "docker compose stop done in under 3 s" test "$stop_ms" -lt 3000
check "stopped with exit code 0" test "$(docker inspect -f '{{.State.ExitCode}}' "$id")" = 0
timing stop

# --- TLS: HTTPS and FTPS with a mounted certificate ----------------------------------------------
compose down >/dev/null 2>&1
mkdir "$tmp/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
    -keyout "$tmp/tls/key.pem" -out "$tmp/tls/cert.pem" >/dev/null 2>&1
# As compose.tls.yaml says: the key readable by the container's user (uid 1000) only.
chown 0:1000 "$tmp/tls/key.pem" && chmod 640 "$tmp/tls/key.pem"
compose_files=(-f docker/compose.yaml -f docker/compose.tls.yaml)
export WHARF_TLS_DIR=$tmp/tls
check "TLS: up" up
check "TLS: healthy" wait_healthy
check "TLS: HTTPS GET with the mounted certificate" \
    get_equals "$tmp/dav.bin" "https://127.0.0.1:$http_port/dav.bin" --cacert "$tmp/tls/cert.pem"
check "TLS: FTPS (AUTH TLS, PASV) download" \
    get_equals "$tmp/ftp.bin" "$ftp_url/ftp.bin" --ssl-reqd --cacert "$tmp/tls/cert.pem" --ftp-pasv --disable-epsv
compose down >/dev/null 2>&1
timing TLS

# --- behind nginx, under /dav ---------------------------------------------------------------------
# The documented proxy variant with a locally made nginx image in place of nginx:stable.
compose_files=(-f docker/compose.yaml -f docker/compose.proxy.yaml)
export WHARF_PROXY_IMAGE=wharf-test/nginx:bookworm WHARF_PROXY_PORT=127.0.0.1:$proxy_port
proxied=http://127.0.0.1:$proxy_port
if ! up; then
    fail "proxy: up"
else
    check "proxy: healthy" wait_healthy
    proxy_propfind_ok() {
        local code
        for _ in $(seq 20); do # nginx may still be starting
            code=$(dav -X PROPFIND -H 'Depth: 1' -o "$tmp/proxy.xml" -w '%{http_code}' "$proxied/dav/" || true)
            [ "$code" = 207 ] && break
            sleep 0.5
        done
        [ "$code" = 207 ] && grep -q '>/dav/dav.bin<' "$tmp/proxy.xml"
    }
    check "proxy: PROPFIND /dav/ is 207 with hrefs under /dav/" proxy_propfind_ok
    check "proxy: GET /dav/dav.bin returns the bytes" get_equals "$tmp/dav.bin" "$proxied/dav/dav.bin"
    proxy_move_ok() { # a Destination naming the public URL is recognised as this server's
        local code
        code=$(dav -X MOVE -H "Destination: $proxied/dav/moved.bin" -o /dev/null -w '%{http_code}' "$proxied/dav/ftp.bin")
        [ "$code" = 201 ] && dav -f -o /dev/null "$proxied/dav/moved.bin"
    }
    check "proxy: MOVE with the public Destination" proxy_move_ok
    check "proxy: Wharf's own port serves /dav/ only" \
        test "$(dav -o /dev/null -w '%{http_code}' "$base/dav.bin")" = 404
    # WHARF_TRUSTED_PROXIES names the proxy's address, so Wharf takes the client's address
    # from X-Forwarded-For: a login must be logged from the address nginx saw our requests
    # come from (the network's gateway, through Docker's port proxy), and none from nginx's
    # own address. (Colour codes are taken out of Wharf's log first.)
    proxy_trusted() {
        local client logins
        client=$(compose logs --no-color proxy 2>/dev/null | awk '/"[A-Z]+ \/dav\// { print $3; exit }')
        logins=$(compose logs --no-color wharf 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep 'login' || true)
        echo "  nginx saw the client as ${client:-?}"
        [ -n "$client" ] && [ "$client" != 172.30.80.10 ] &&
            echo "$logins" | grep -q "source=${client//./\\.}\\b" &&
            ! echo "$logins" | grep -q 'source=172\.30\.80\.10\b'
    }
    check "proxy: logins are logged from the client's address, not the proxy's" proxy_trusted
fi
compose down >/dev/null 2>&1
unset WHARF_PROXY_IMAGE WHARF_PROXY_PORT
timing proxy

# --- several nodes: PostgreSQL, S3, three nodes, nginx (docker/compose.scale.yaml) ------------
# Unmodified, with locally made images standing in for postgres:16, minio/minio,
# curlimages/curl and nginx:stable (tests/docker/images.sh), in a project of its own.
scale() { docker-compose -p "$project-scale" -f docker/compose.scale.yaml "$@"; }
export WHARF_POSTGRES_IMAGE=wharf-test/postgres:bookworm WHARF_S3_IMAGE=wharf-test/s3:bookworm
export WHARF_CURL_IMAGE=wharf-test/curl:bookworm WHARF_PROXY_IMAGE=wharf-test/nginx:bookworm
scaled=http://127.0.0.1:$scale_port
nodes_healthy() { # all three nodes pass Docker's health check (120 s at most)
    local n id status
    for n in node1 node2 node3; do
        id=$(scale ps -q "$n")
        for _ in $(seq 120); do
            status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || true)
            [ "$status" = healthy ] && break
            sleep 1
        done
        [ "$status" = healthy ] || { echo "  $n: ${status:-no status}"; scale logs --no-color --tail=20 "$n"; return 1; }
    done
}
if ! WHARF_HTTP_PORT=127.0.0.1:$scale_port scale up -d >"$tmp/scale-up.log" 2>&1; then
    tail -30 "$tmp/scale-up.log"
    fail "scale: up"
else
    check "scale: three nodes healthy" nodes_healthy
    head -c 400000 /dev/urandom >"$tmp/scale.bin"
    scale_put_ok() { # nginx may still be starting
        for _ in $(seq 20); do dav -f -T "$tmp/scale.bin" "$scaled/scale.bin" 2>/dev/null && return 0; sleep 0.5; done
        return 1
    }
    check "scale: PUT through nginx" scale_put_ok
    scale_gets_ok() { # six GETs: each node answers two of them, round robin
        local i
        for i in 1 2 3 4 5 6; do get_equals "$tmp/scale.bin" "$scaled/scale.bin" || return 1; done
    }
    check "scale: GET through every node returns the bytes" scale_gets_ok
    scale_in_bucket() { # the content is an object of the bucket, named by its BLAKE3 id
        scale exec -T s3 sh -c 'ls /data/wharf/blobs/blobs' | grep -q '^[0-9a-f]\{64\}$'
    }
    check "scale: the content is in the bucket" scale_in_bucket
    scale_lock_ok() { # a LOCK answered by one node blocks a PUT answered by the next
        local code
        code=$(dav -X LOCK -H 'Timeout: Second-600' -o /dev/null -w '%{http_code}' \
            --data '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>' \
            "$scaled/scale.bin")
        [ "$code" = 200 ] || return 1
        for _ in 1 2 3; do
            code=$(dav -T "$tmp/scale.bin" -o /dev/null -w '%{http_code}' "$scaled/scale.bin")
            [ "$code" = 423 ] || return 1
        done
    }
    check "scale: a lock holds on every node" scale_lock_ok
    scale_user_ok() { # added on node1, accepted by all three within seconds
        local i ok=0
        printf 'carol-Pass-1\n' | scale exec -T node1 wharf user add carol --password-stdin >/dev/null || return 1
        for _ in $(seq 20); do
            ok=0
            for i in 1 2 3; do
                [ "$(curl -sS -u carol:carol-Pass-1 -o /dev/null -w '%{http_code}' "$scaled/")" = 200 ] && ok=$((ok + 1))
            done
            [ "$ok" = 3 ] && return 0
            sleep 0.5
        done
        return 1
    }
    check "scale: a user added on one node logs in through all of them" scale_user_ok
fi
scale down -v --remove-orphans >/dev/null 2>&1
timing "several nodes"

# --- a host folder owned by a non-root uid, served as that uid ----------------------------------
# The first-start flow of the README too: no WHARF_ADMIN_PASSWORD, the generated one is read
# from the log.
host=$tmp/host
mkdir -p "$host/shared" "$host/data"
chmod 711 "$tmp" "$host" # uid 1234 writes its file below
chown 1234:1234 "$host/shared" "$host/data"
printf 'written on the host by uid 1234\n' >"$tmp/host-file.expected"
setpriv --reuid 1234 --regid 1234 --clear-groups \
    sh -c 'cat >"$1"' _ "$host/shared/host-file.txt" <"$tmp/host-file.expected"
compose_files=(-f docker/compose.yaml -f docker/compose.host-folder.yaml)
export WHARF_UID=1234 WHARF_GID=1234 WHARF_HOST_FOLDER=$host/shared WHARF_HOST_DATA=$host/data
export WHARF_ADMIN_PASSWORD=
check "host folder: up" up
check "host folder: healthy" wait_healthy
generated=$(compose logs --no-color wharf 2>/dev/null | sed -n 's/.*created user admin with password \([^ ]*\).*/\1/p' | tail -1)
check "host folder: the generated admin password is in the log" test -n "$generated"
password=$generated
check "host folder: a file the owner made is readable" get_equals "$tmp/host-file.expected" "$base/host-file.txt"
head -c 100000 /dev/urandom >"$tmp/put.bin"
host_put_ok() {
    dav -f -T "$tmp/put.bin" "$base/from-container.bin" &&
        dav -f -X MKCOL "$base/made-here" -o /dev/null &&
        cmp -s "$tmp/put.bin" "$host/shared/from-container.bin" &&
        [ "$(stat -c %u:%g "$host/shared/from-container.bin")" = 1234:1234 ] &&
        [ "$(stat -c %u:%g "$host/shared/made-here")" = 1234:1234 ]
}
check "host folder: a PUT and a MKCOL land on the host owned by 1234:1234" host_put_ok
check "host folder: the data directory belongs to 1234:1234 too" \
    test "$(stat -c %u:%g "$host/data/wharf.db")" = 1234:1234
compose down >/dev/null 2>&1
timing "host folder"

echo "time: total $((SECONDS - started)) s"
echo "docker: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
