#!/usr/bin/env bash
# Prepares a test host for hubform's TLJH double. Run it as root INSIDE the
# test host's namespace, before sshd starts (TestHost's provisioning hook):
#
#   provision.sh --http-port 41080 --https-port 41443 [--venv DIR]
#                [--os ubuntu:24.04] [--step-delay S] [--hub-start-delay S]
#                [--acme-delay S]
#
# --http-port / --https-port: what ports 80 and 443 are on this host. The
#   hub answers there until config.yaml says otherwise (http.port,
#   https.port). Required: parallel test hosts share one network.
# --venv: where tests/harness/wheels.sh put the wheels and the test CA
#   (default ${HUBFORM_VENV:-<repo>/.venv}).
# --os ID:VERSION: pretend to be another distribution (bootstrap's check).
# --step-delay: pause after each installer progress line (default 0.05 s).
# --hub-start-delay / --acme-delay: seconds before the hub answers / before
#   the ACME double issues a certificate (default 0).
#
# It installs, all inside the host's copy-on-write overlays:
#   /usr/bin/systemctl, /usr/bin/journalctl, /usr/bin/systemd   the doubles
#   /usr/local/lib/hubform-double/{bootstrap.py,src/}            the "TLJH
#       download": what bootstrap installs from instead of GitHub
#   /usr/local/share/hubform-double/wheels + /etc/pip.conf        pip installs
#       only from these wheels (no index)
#   the test CA in the trust store (/etc/ssl/certs) and, with its
#       key, in /etc/hubform-double/ca for the ACME double
#   /etc/hubform-double/host.env                                  the settings
# At every boot (TestHost runs it again after a restart) it also starts
# the enabled units, as systemd would.
# It refuses to run unless /usr, /etc, /var and /opt are mount points, so
# it can never change the machine itself.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${HUBFORM_VENV:-$root/.venv}"
http_port='' https_port='' os_release='' step_delay=0.05 hub_delay=0 acme_delay=0

die() { echo "provision: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --http-port) http_port="$2"; shift 2 ;;
        --https-port) https_port="$2"; shift 2 ;;
        --venv) venv="$2"; shift 2 ;;
        --os) os_release="$2"; shift 2 ;;
        --step-delay) step_delay="$2"; shift 2 ;;
        --hub-start-delay) hub_delay="$2"; shift 2 ;;
        --acme-delay) acme_delay="$2"; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done

[[ $http_port =~ ^[0-9]+$ && $https_port =~ ^[0-9]+$ ]] ||
    die "--http-port and --https-port are required"
[ "$(id -u)" -eq 0 ] || die "must run as root inside the test host"
for dir in /usr /etc /var /opt; do
    mountpoint -q "$dir" ||
        die "$dir is not a mount point: not inside a test host, refusing"
done

state=/etc/hubform-double
mirror=/usr/local/lib/hubform-double
wheels=/usr/local/share/hubform-double/wheels

# The doubles of systemd's commands.
install -m 0755 "$here/systemctl" /usr/bin/systemctl
install -m 0755 "$here/journalctl" /usr/bin/journalctl
if ! command -v systemd >/dev/null; then
    printf '#!/bin/sh\necho "systemd double: no init here" >&2\nexit 1\n' \
        >/usr/bin/systemd
    chmod 0755 /usr/bin/systemd
fi

# What bootstrap installs from.
rm -rf "$mirror"
install -d -m 0755 "$mirror"
cp -r "$here/src" "$mirror/src"
find "$mirror" -name __pycache__ -prune -exec rm -rf {} +
install -m 0644 "$here/bootstrap.py" "$mirror/bootstrap.py"

# pip: the wheel folder only.
install -d -m 0755 "$wheels"
if [ -d "$venv/hubform-wheels" ]; then
    cp "$venv"/hubform-wheels/*.whl "$wheels/" 2>/dev/null || true
else
    echo "provision: no $venv/hubform-wheels (run tests/harness/wheels.sh)" >&2
fi
printf '%s\n' '[global]' 'no-index = true' "find-links = $wheels" \
    'disable-pip-version-check = true' 'no-cache-dir = true' >/etc/pip.conf

# The test CA: trusted by the host, and the ACME double's signing key.
install -d -m 0755 "$state"
if [ -f "$venv/hubform-ca/ca.pem" ]; then
    install -d -m 0700 "$state/ca"
    install -m 0644 "$venv/hubform-ca/ca.pem" "$state/ca/ca.pem"
    install -m 0600 "$venv/hubform-ca/ca.key" "$state/ca/ca.key"
    # What update-ca-certificates does for one added CA, without its
    # hooks and full rehash (those take seconds per host).
    local_ca=/usr/local/share/ca-certificates/hubform-test-ca.crt
    install -d -m 0755 /usr/local/share/ca-certificates /etc/ssl/certs
    install -m 0644 "$venv/hubform-ca/ca.pem" "$local_ca"
    ln -sf "$local_ca" /etc/ssl/certs/hubform-test-ca.pem
    ln -sf hubform-test-ca.pem \
        "/etc/ssl/certs/$(openssl x509 -hash -noout -in "$local_ca").0"
    bundle=/etc/ssl/certs/ca-certificates.crt
    if ! grep -qF "$(sed -n 2p "$local_ca")" "$bundle" 2>/dev/null; then
        cat "$local_ca" >>"$bundle"
    fi
else
    echo "provision: no test CA in $venv/hubform-ca (run tests/harness/wheels.sh)" >&2
fi

if [ -n "$os_release" ]; then
    rm -f /etc/os-release
    printf 'ID=%s\nVERSION_ID="%s"\nPRETTY_NAME="%s %s"\n' \
        "${os_release%%:*}" "${os_release#*:}" "${os_release%%:*}" \
        "${os_release#*:}" >/etc/os-release
fi

install -d -m 0755 /var/lib/hubform-double /var/log/hubform-double
# Calls made without sudo are recorded too.
touch /var/lib/hubform-double/commands.jsonl
chmod 0666 /var/lib/hubform-double/commands.jsonl
cat >"$state/host.env" <<EOF
# Written by hubform's tests/harness/tljh/provision.sh
HTTP_PORT=$http_port
HTTPS_PORT=$https_port
STEP_DELAY=$step_delay
HUB_START_DELAY=$hub_delay
ACME_DELAY=$acme_delay
WHEELS=$wheels
EOF

# A test host runs this at every boot: like systemd at boot, start the
# enabled units (after a reboot, the hub comes back by itself).
/usr/bin/systemctl hubform-boot
