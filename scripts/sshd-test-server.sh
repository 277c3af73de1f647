#!/usr/bin/env bash
# A throwaway sshd on a loopback port, for the tests of kvgit's ssh
# remotes. Installs openssh-server from the system packages when it is
# missing (Debian/Ubuntu, as root), makes a host key and a user key in a
# temporary directory, authorizes the user key for the current user, and
# starts sshd on 127.0.0.1. Prints, on stdout, the value for
# KVGIT_SSH_COMMAND (the ssh client with the key and options to use) on
# the first line and the URL prefix (ssh://USER@127.0.0.1:PORT) on the
# second; everything else goes to stderr.
#
#   bash scripts/sshd-test-server.sh start    # idempotent
#   bash scripts/sshd-test-server.sh stop
#
# Environment: KVGIT_SSHD_PORT (default 22229), KVGIT_SSHD_DIR (default
# /tmp/kvgit-sshd-$PORT).
set -euo pipefail

port="${KVGIT_SSHD_PORT:-22229}"
dir="${KVGIT_SSHD_DIR:-/tmp/kvgit-sshd-$port}"
user="$(id -un)"
log() { printf 'sshd-test-server: %s\n' "$*" >&2; }

find_sshd() {
    local d
    for d in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd; do
        if [[ -x "$d" ]]; then echo "$d"; return 0; fi
    done
    command -v sshd 2>/dev/null
}

install_sshd() {
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "sshd is not installed, and this script can install it only as root with apt-get."
        exit 1
    fi
    log "installing openssh-server and openssh-client from the system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq openssh-server openssh-client >&2
}

print_details() {
    echo "ssh -i $dir/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
    echo "ssh://$user@127.0.0.1:$port"
}

start() {
    local sshd
    sshd="$(find_sshd)" || { install_sshd; sshd="$(find_sshd)"; } || {
        log "openssh-server was installed but sshd was not found"; exit 1; }
    command -v ssh >/dev/null 2>&1 || install_sshd
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ -f "$dir/sshd.pid" ]] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
        log "already running on 127.0.0.1:$port"
        print_details
        return 0
    fi
    [[ -f "$dir/host_key" ]] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" >&2
    [[ -f "$dir/user_key" ]] || ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key" >&2
    cp "$dir/user_key.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    # sshd wants its privilege separation directory.
    mkdir -p /run/sshd 2>/dev/null || true
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
SetEnv PATH=$PATH
EOF
    log "starting sshd on 127.0.0.1:$port"
    "$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log" || {
        tail -n 30 "$dir/sshd.log" >&2 || true; exit 1; }
    for _ in $(seq 1 50); do
        if [[ -f "$dir/sshd.pid" ]]; then break; fi
        sleep 0.1
    done
    print_details
}

stop() {
    if [[ -f "$dir/sshd.pid" ]]; then
        kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
        rm -f "$dir/sshd.pid"
        log "stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
