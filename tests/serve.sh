# Sourced by the client and browser test scripts.
# start_wharf BIN DIR TAG [SERVE-FLAGS...]: starts `wharf serve` on a free loopback port with a fresh admin
# password, logging requests to DIR/server.log; sets $pid, $url (ending in /), $password,
# and $ftp_port (FTP listens on another free loopback port).
start_wharf() {
    local bin=$1 dir=$2 tag=$3
    shift 3
    password="$tag-$RANDOM-$RANDOM"
    NO_COLOR=1 WHARF_LOG=wharf::dav=debug WHARF_ADMIN_PASSWORD="$password" \
        "$bin" serve --data "$dir/data" --listen 127.0.0.1:0 --ftp-listen 127.0.0.1:0 --admin-listen off "$@" >"$dir/banner" 2>"$dir/server.log" &
    pid=$!
    for _ in $(seq 100); do grep -q http "$dir/banner" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o 'http://[^ ]*' "$dir/banner" || true)
    ftp_port=$(grep -o 'ftp://127.0.0.1:[0-9]*' "$dir/banner" | sed 's/.*://' || true)
    if [ -z "$url" ]; then
        echo "$tag: the server did not start"
        cat "$dir/server.log"
        return 1
    fi
}
