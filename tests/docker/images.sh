#!/usr/bin/env bash
# Makes the images the Docker test needs, without a registry (none is reachable here):
#   wharf-test/debian:bookworm  a minimal Debian 12 (debootstrap minbase), standing in for
#                               debian:bookworm-slim
#   wharf-test/rust:bookworm    that plus Debian's Rust toolchain, standing in for
#                               rust:1-bookworm
#   wharf-test/nginx:bookworm   that plus Debian's nginx, set up like the official image
#                               (conf.d/*.conf, logs to stdout/stderr), standing in for
#                               nginx:stable in docker/compose.proxy.yaml and compose.scale.yaml
#   wharf-test/postgres:bookworm  that plus Debian's PostgreSQL, set up like the official
#                               image (POSTGRES_USER/PASSWORD/DB, data in
#                               /var/lib/postgresql/data), for postgres:16 in compose.scale.yaml
#   wharf-test/s3:bookworm      s3s-fs (this host's, from `cargo install`) answering like
#                               minio/minio's `server /data` with MINIO_ROOT_USER/PASSWORD
#   wharf-test/curl:bookworm    Debian's curl, for curlimages/curl
# Images that already exist are kept (they are the cache between runs); pass --rebuild to
# make them again. Needs root, debootstrap and a running Docker engine.
set -euo pipefail

BASE=wharf-test/debian:bookworm
RUST=wharf-test/rust:bookworm
NGINX=wharf-test/nginx:bookworm
POSTGRES=wharf-test/postgres:bookworm
S3=wharf-test/s3:bookworm
CURL=wharf-test/curl:bookworm
MIRROR=${WHARF_TEST_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${WHARF_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

have_image() { ! $rebuild && docker image inspect "$1" >/dev/null 2>&1; }

build_from_stdin() { # TAG: a Dockerfile on stdin, no context; its log shown only on failure
    local log
    log=$(mktemp /tmp/wharf-image.XXXXXX.log)
    docker build -t "$1" - >"$log" 2>&1 || {
        tail -30 "$log"
        rm -f "$log"
        return 1
    }
    rm -f "$log"
}

if have_image "$BASE"; then
    echo "images: $BASE already there"
else
    start=$SECONDS
    root=$(mktemp -d /tmp/wharf-debootstrap.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    echo "images: debootstrap bookworm into $root (takes a minute or two)"
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
        tail -20 "$root.log"
        exit 1
    }
    rm -f "$root.log"
    # debootstrap writes only "bookworm main"; the official images also follow the point
    # updates and the security archive (the Rust toolchain below comes from the latter).
    cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
    # Like the official slim image: no apt caches or lists in the image, no docs on install.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
    # An imported image has no configuration at all; give it the PATH and CMD that
    # debian:bookworm-slim has, so `ENV PATH=...:$PATH` in later images extends something.
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$BASE" >/dev/null
    rm -rf "$root"
    trap - EXIT
    echo "images: made $BASE in $((SECONDS - start)) s"
fi

# Certificate authorities this host adds to Debian's (/usr/local/share/ca-certificates): where
# HTTPS to the registries passes through an inspecting proxy, cargo inside the build image
# must trust the same ones to fetch crates. They go into the test's Rust image only; the
# Dockerfile stays as it is for everyone else. Their checksum is a label of the image, so
# a change of them makes the image again.
ca_dir=/usr/local/share/ca-certificates
ca_sum=$(find "$ca_dir" -name '*.crt' -type f -print0 2>/dev/null | sort -z | xargs -0 -r cat | sha256sum | cut -c1-16)
rust_ca_sum=$(docker image inspect -f '{{index .Config.Labels "wharf-test.ca"}}' "$RUST" 2>/dev/null || true)
if have_image "$RUST" && [ "$rust_ca_sum" = "$ca_sum" ]; then
    echo "images: $RUST already there"
else
    start=$SECONDS
    ctx=$(mktemp -d /tmp/wharf-rust-image.XXXXXX)
    mkdir "$ctx/ca"
    find "$ca_dir" -name '*.crt' -type f -exec cp {} "$ctx/ca/" \; 2>/dev/null || true
    # rustc-web/cargo-web are Debian 12's current Rust (the one Firefox and Chromium are
    # built with), updated through bookworm-security; they install /usr/bin/cargo and
    # /usr/bin/rustc. gcc and libc6-dev are the linker and C runtime; ca-certificates lets
    # cargo fetch crates over HTTPS.
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      rustc-web cargo-web gcc libc6-dev ca-certificates \\
 && rm -rf /var/lib/apt/lists/* \\
 && update-ca-certificates \\
 && cargo --version && rustc --version
LABEL wharf-test.ca=$ca_sum
EOF
    log=$ctx.log
    docker build -t "$RUST" "$ctx" >"$log" 2>&1 || {
        tail -30 "$log"
        rm -rf "$ctx" "$log"
        exit 1
    }
    rm -rf "$ctx" "$log"
    echo "images: made $RUST in $((SECONDS - start)) s ($(docker run --rm "$RUST" rustc --version))"
fi

if have_image "$NGINX"; then
    echo "images: $NGINX already there"
else
    start=$SECONDS
    # Debian's nginx.conf already includes conf.d/*.conf; its own default site goes, so that
    # the mounted conf.d/default.conf is the only server, as in the official image.
    build_from_stdin "$NGINX" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \\
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \\
 && ln -sf /dev/stdout /var/log/nginx/access.log \\
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
    echo "images: made $NGINX in $((SECONDS - start)) s"
fi

# The stand-in's first-start script; its checksum is a label of the image, so that a
# change of it makes the image again.
postgres_entrypoint=$(cat <<'SH'
#!/bin/sh
set -e
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PGDATA=/var/lib/postgresql/data
user=${POSTGRES_USER:-postgres}
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid postgres --regid postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s' "$POSTGRES_PASSWORD" >/tmp/pw && chown postgres /tmp/pw
    as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile=/tmp/pw -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f /tmp/pw
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    db=${POSTGRES_DB:-$user}
    if [ "$db" != postgres ]; then
        # On its socket only, for this one statement.
        as_postgres "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
        as_postgres psql -v ON_ERROR_STOP=1 -q -U "$user" -d postgres \
            -c "CREATE DATABASE \"$db\" OWNER \"$user\""
        as_postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "postgres: initialised $PGDATA"
fi
exec setpriv --reuid postgres --regid postgres --init-groups "$bin/postgres" -D "$PGDATA"
SH
)
postgres_sum=$(printf '%s' "$postgres_entrypoint" | sha256sum | cut -c1-16)
if have_image "$POSTGRES" &&
    [ "$(docker image inspect -f '{{index .Config.Labels "wharf-test.entrypoint"}}' "$POSTGRES")" = "$postgres_sum" ]; then
    echo "images: $POSTGRES already there"
else
    start=$SECONDS
    ctx=$(mktemp -d /tmp/wharf-postgres-image.XXXXXX)
    # The official image's first-start contract: a superuser POSTGRES_USER with
    # POSTGRES_PASSWORD, a database POSTGRES_DB, password logins from other containers.
    printf '%s\n' "$postgres_entrypoint" >"$ctx/entrypoint.sh"
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \\
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/*/main /etc/postgresql/*/main
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
STOPSIGNAL SIGINT
LABEL wharf-test.entrypoint=$postgres_sum
CMD ["/usr/local/bin/docker-entrypoint.sh"]
EOF
    docker build -t "$POSTGRES" "$ctx" >"$ctx.log" 2>&1 || {
        tail -30 "$ctx.log"
        rm -rf "$ctx" "$ctx.log"
        exit 1
    }
    rm -rf "$ctx" "$ctx.log"
    echo "images: made $POSTGRES in $((SECONDS - start)) s"
fi

if have_image "$S3"; then
    echo "images: $S3 already there"
else
    start=$SECONDS
    s3s=$(command -v s3s-fs) || {
        echo "images: s3s-fs is not installed (cargo install s3s-fs@0.14.1 --locked --features binary)" >&2
        exit 1
    }
    ctx=$(mktemp -d /tmp/wharf-s3-image.XXXXXX)
    cp "$s3s" "$ctx/s3s-fs"
    # `server DIR` as MinIO takes it, with MinIO's root credentials; a bucket is a folder.
    cat >"$ctx/entrypoint.sh" <<'SH'
#!/bin/sh
set -e
[ "$1" = server ] && [ -n "$2" ] || { echo "usage: server DIR" >&2; exit 2; }
mkdir -p "$2"
exec /usr/local/bin/s3s-fs --host 0.0.0.0 --port 9000 \
    --access-key "$MINIO_ROOT_USER" --secret-key "$MINIO_ROOT_PASSWORD" "$2"
SH
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY s3s-fs entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/s3s-fs /usr/local/bin/entrypoint.sh
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["server", "/data"]
EOF
    docker build -t "$S3" "$ctx" >"$ctx.log" 2>&1 || {
        tail -30 "$ctx.log"
        rm -rf "$ctx" "$ctx.log"
        exit 1
    }
    rm -rf "$ctx" "$ctx.log"
    echo "images: made $S3 in $((SECONDS - start)) s"
fi

if have_image "$CURL"; then
    echo "images: $CURL already there"
else
    start=$SECONDS
    build_from_stdin "$CURL" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["curl"]
EOF
    echo "images: made $CURL in $((SECONDS - start)) s"
fi
