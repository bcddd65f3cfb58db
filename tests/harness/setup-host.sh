#!/usr/bin/env bash
# Prepares this machine for hubform's SSH test hosts (idempotent, quiet when
# there is nothing to do). Needs root when it has something to do.
#
#   * installs openssh-server, sudo, python3-venv and tmux (the progress
#     display's terminal test) if dpkg lacks them, without leaving a
#     system sshd running on port 22;
#   * creates sshd's privilege separation directory /run/sshd.
#
# The test hosts themselves are started per test by tests/harness/testhost.sh.
set -euo pipefail

PACKAGES=(openssh-server sudo python3-venv tmux)
POLICY=/usr/sbin/policy-rc.d
SYSTEM_PIDFILE=/run/sshd.pid

die() {
    echo "setup-host: $*" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" -eq 0 ] ||
        die "$1 needs root: run tests/harness/setup-host.sh as root"
}

installed() {
    # `dpkg -s` also knows removed packages whose config files remain, so
    # look at the status line, not just the exit code.
    dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

# The pid in the system sshd's pid file if that process is an sshd.
system_sshd_pid() {
    local pid
    pid="$(cat "$SYSTEM_PIDFILE" 2>/dev/null || true)"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = sshd ] || return 1
    echo "$pid"
}

# The ssh units systemd runs (none without systemd as init).
active_ssh_units() {
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null || return 0
    local unit
    for unit in ssh.socket ssh.service; do
        if systemctl -q is-active "$unit" 2>/dev/null; then echo "$unit"; fi
    done
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
    need_root "installing ${missing[*]}"
    echo "setup-host: installing ${missing[*]}" >&2

    # An sshd (or ssh unit) that was already running is not ours to stop.
    before="$(system_sshd_pid || true)"
    units_before="$(active_ssh_units)"

    # Debian's maintainer scripts start services through invoke-rc.d, which
    # asks policy-rc.d first; exit code 101 means "do not start". Only a
    # file we created is ours to remove (Docker images ship their own).
    created_policy=no
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# hubform setup-host.sh: no service starts\nexit 101\n' \
            >"$POLICY"
        chmod 0755 "$POLICY"
        created_policy=yes
    fi
    remove_policy() {
        if [ "$created_policy" = yes ]; then rm -f "$POLICY"; fi
    }
    trap remove_policy EXIT

    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

    # Belt and braces: if the install started an sshd after all, stop it by
    # the pid in its pid file (never by name: test hosts are sshds too).
    after="$(system_sshd_pid || true)"
    if [ -n "$after" ] && [ "$after" != "$before" ]; then
        echo "setup-host: stopping the system sshd the install started" >&2
        kill -TERM "$after"
    fi
    # On systemd machines (Ubuntu 22.10+) port 22 may belong to ssh.socket.
    for unit in $(active_ssh_units); do
        case " $units_before " in
        *" $unit "*) ;;
        *)
            echo "setup-host: stopping $unit the install started" >&2
            systemctl stop "$unit"
            ;;
        esac
    done
    remove_policy
    trap - EXIT
fi

# sshd refuses to start without its privilege separation directory, and
# packages only create it through systemd's tmpfiles (absent in containers).
if [ ! -d /run/sshd ]; then
    need_root "creating /run/sshd"
    mkdir -p -m 0755 /run/sshd
fi
