#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for kvgit-postgres's
# tests and benchmarks. Installs PostgreSQL from the system packages when it
# is missing (Debian/Ubuntu, as root), creates the cluster on first use and
# starts it; prints the connection URL on stdout (everything else goes to
# stderr).
#
#   bash scripts/pg-test-server.sh start    # idempotent; prints the URL
#   bash scripts/pg-test-server.sh url      # the URL, without starting
#   bash scripts/pg-test-server.sh stop
#
# Environment: KVGIT_PG_PORT (default 54329), KVGIT_PG_DIR (default
# /tmp/kvgit-pg-$PORT), KVGIT_PG_FSYNC (on|off, default on: the tests kill
# clients, never the server, so CI runs them with it off for speed).
set -euo pipefail

port="${KVGIT_PG_PORT:-54329}"
dir="${KVGIT_PG_DIR:-/tmp/kvgit-pg-$port}"
fsync="${KVGIT_PG_FSYNC:-on}"
url="postgres://postgres@127.0.0.1:$port/postgres"
log() { printf 'pg-test-server: %s\n' "$*" >&2; }

find_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
    fi
    for d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /usr/pgsql-*/bin; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

install_postgres() {
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL is not installed, and this script can install it only as root with apt-get."
        log "Install the server (e.g. 'apt-get install postgresql') or set KVGIT_TEST_PG_URL."
        exit 1
    fi
    log "installing PostgreSQL from the system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
}

# initdb and postgres refuse to run as root: run them as a plain user.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    bin="$(find_bindir)" || { install_postgres; bin="$(find_bindir)"; } || {
        log "PostgreSQL was installed but initdb/pg_ctl were not found"; exit 1; }
    mkdir -p "$dir"
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /usr/sbin/nologin postgres
        chown postgres: "$dir"
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        log "creating a throwaway cluster in $dir/data"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "already running on 127.0.0.1:$port"
    else
        log "starting on 127.0.0.1:$port (fsync=$fsync)"
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' \
                -c fsync=$fsync -c max_connections=200 -c shared_buffers=256MB" >&2 || {
            tail -n 30 "$dir/server.log" >&2 || true; exit 1; }
    fi
    echo "$url"
}

stop() {
    local bin
    bin="$(find_bindir)" || exit 0
    if [[ -f "$dir/data/PG_VERSION" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    url) echo "$url" ;;
    *) log "usage: $0 start|stop|url"; exit 2 ;;
esac
