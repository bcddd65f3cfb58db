#!/usr/bin/env bash
# A real OpenSSH server standing in for the workshop's EC2 instance, one per
# test, private to that test. Root only; set the machine up first with
# tests/harness/setup-host.sh.
#
#   testhost.sh start DIR PORT [USER]   boot a host, sshd on 127.0.0.1:PORT
#   testhost.sh stop DIR                power off and delete DIR
#   testhost.sh restart DIR             reboot: same port, host key, disks
#   testhost.sh rekey DIR               reboot with a new host key
#
# The host is sshd inside its own mount, pid, UTS and IPC namespaces:
#   /etc /usr /var    copy-on-write overlays, changes land in DIR/<d>.upper
#   /opt /home /root  DIR/opt, DIR/home, DIR/root (empty at first boot)
#   /tmp              DIR/tmp, emptied at every boot (as Ubuntu does)
#   /run              a fresh tmpfs at every boot; DIR is /run/testhost
# USER (default ubuntu) logs in with the key DIR/id_ed25519 only and has
# passwordless sudo through /etc/sudoers.d/90-cloud-init-users, unless
# TESTHOST_NO_SUDO=1 at start (then sudo asks for a password it can never
# get). The network, the kernel and the rest of the file system are the real
# machine's: sudo inside is real root.
#
# DIR/provision.sh, if present, runs as root inside at every boot, after the
# user exists and before sshd starts (env TESTHOST_DIR=/run/testhost,
# TESTHOST_USER, TESTHOST_PORT; output in DIR/provision.log). Inside, DIR
# is /run/testhost: the real /opt, /home, /root and /tmp (and anything under
# them, such as a DIR or a checkout in /tmp) are hidden, so put what the
# script needs into DIR.
#
# Files for the client: DIR/id_ed25519 (private key), DIR/hostkey.pub
# ("ssh-ed25519 AAAA..."), DIR/known_hosts (for [127.0.0.1]:PORT). sshd
# logs (-e, LogLevel VERBOSE) to DIR/sshd.log.
#
# Exit codes: 0 ok, 1 failure, 3 PORT already in use (pick another).
set -euo pipefail

SSHD=/usr/sbin/sshd
INSIDE=/run/testhost # where DIR appears inside the host
ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Ubuntu's /etc/environment PATH: what pam_env gives an SSH session there.
UBUNTU_PATH=$ROOT_PATH:/usr/games:/usr/local/games:/snap/bin
START_TIMEOUT=${TESTHOST_START_TIMEOUT:-120} # seconds, provisioning included

die() {
    echo "testhost: $*" >&2
    exit 1
}

usage() {
    die "usage: testhost.sh start DIR PORT [USER] | stop DIR | restart DIR | rekey DIR"
}

# ---- processes ---------------------------------------------------------

# Prints the start time (clock ticks after boot) of a live process PID;
# fails if it is gone or a zombie. Start time + PID name a process for good:
# a recycled PID has another start time.
proc_start() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # comm (field 2) may contain spaces and parentheses: cut after the last
    # ") ". Then state is field 3 and starttime field 22.
    read -r -a fields <<<"${stat##*) }"
    [[ ${fields[0]} != Z && ${fields[0]} != X ]] || return 1
    echo "${fields[19]}"
}

# ours PID START: is PID still the process we recorded?
ours() {
    [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] || return 1
    [[ "$(proc_start "$1" 2>/dev/null)" == "$2" ]]
}

children() {
    cat "/proc/$1/task/$1/children" 2>/dev/null || true
}

# Waits up to $2 hundredths of a second for process $1 (start time $3) to end.
wait_gone() {
    local i
    for ((i = 0; i < $2; i++)); do
        ours "$1" "$3" || return 0
        sleep 0.01
    done
    ! ours "$1" "$3"
}

# ---- the directory -----------------------------------------------------

# The absolute DIR, refused where the host's own mounts would hide it.
host_dir() {
    local dir
    dir=$(realpath -m -- "$1")
    case "$dir/" in
    /etc/* | /usr/* | /var/* | /opt/* | /home/* | /root/* | /run/* | \
        /proc/* | /sys/* | /dev/* | /)
        die "$dir: the host mounts over this part of the tree, use another" ;;
    esac
    # The overlay mount options are comma-separated "key=path" pairs.
    [[ $dir != *[,:[:space:]]* ]] || die "$dir: no commas, colons or spaces"
    echo "$dir"
}

# DIR/testhost.conf: PORT USER NO_SUDO, written by start.
read_conf() {
    [[ -r $1/testhost.conf ]] || die "$1 holds no test host (no testhost.conf)"
    read -r port user no_sudo <"$1/testhost.conf"
}

write_host_key() {
    local dir=$1
    rm -f "$dir/hostkey" "$dir/hostkey.full.pub"
    ssh-keygen -q -t ed25519 -N '' -C "root@testhost-$port" -f "$dir/hostkey"
    mv "$dir/hostkey.pub" "$dir/hostkey.full.pub"
    cut -d' ' -f1,2 "$dir/hostkey.full.pub" >"$dir/hostkey.pub"
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$dir/hostkey.pub")" \
        >"$dir/known_hosts"
}

write_sshd_config() {
    # Close to Ubuntu's defaults, minus PAM: with UsePAM no there is no
    # pam_env, so PATH and LANG come from SetEnv instead of
    # /etc/environment and /etc/default/locale.
    cat >"$1/sshd_config" <<EOF
# hubform test host, written by tests/harness/testhost.sh
Port $port
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile $INSIDE/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
LogLevel VERBOSE
AcceptEnv LANG LC_*
SetEnv PATH=$UBUNTU_PATH LANG=C.UTF-8
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

# ---- inside the namespaces ---------------------------------------------

# Runs as PID 1 of the host's pid namespace, in its private mount namespace
# (propagation private: nothing mounted here is seen outside, and it all
# vanishes with the namespace). Arguments: DIR PORT USER NO_SUDO.
# shellcheck disable=SC2016 # expanded by the inner bash
BOOT='set -euo pipefail
dir=$1 port=$2 user=$3 no_sudo=$4 inside=$5
fail() { echo "testhost: $*" >&2; exit 1; }

# /run first, while DIR is still reachable: a fresh tmpfs per boot, with DIR
# bound at a fixed place. (/run must not stay the real one: sudo, sshd and
# services write there.)
mount -t tmpfs -o mode=0755,size=64m testhost-run /run
mkdir -m 0755 /run/sshd "$inside"
mkdir -m 1777 /run/lock
mount --bind "$dir" "$inside"

for d in etc usr var; do
    # Overlay, not bind mounts of single files: useradd and friends
    # rename() over /etc/passwd, which fails with EBUSY on a bind mount.
    mount -t overlay "testhost-$d" \
        -o "lowerdir=/$d,upperdir=$dir/$d.upper,workdir=$dir/.work/$d" "/$d"
done
for d in opt home root tmp; do
    [ -d "/$d" ] || fail "/$d is missing on this machine"
    mount --bind "$dir/$d" "/$d"
done
# From here on the real /opt, /home, /root and /tmp are hidden (and with
# them DIR if it is under /tmp): DIR is $inside.

echo "testhost-$port" >/proc/sys/kernel/hostname # our own UTS namespace
echo "testhost-$port" >/etc/hostname

# The host key: where Ubuntu keeps it, and no other (the lower /etc/ssh
# holds the real machine'"'"'s keys: deleting them here only hides them).
rm -f /etc/ssh/ssh_host_*
install -m 0600 "$inside/hostkey" /etc/ssh/ssh_host_ed25519_key
install -m 0644 "$inside/hostkey.full.pub" /etc/ssh/ssh_host_ed25519_key.pub
install -m 0644 "$inside/sshd_config" /etc/ssh/sshd_config

# First boot: what cloud-init does for the default user on Ubuntu.
if [ ! -e "$inside/.first-boot-done" ]; then
    echo "127.0.1.1 testhost-$port" >>/etc/hosts
    if ! getent passwd "$user" >/dev/null; then
        uid=1000
        while getent passwd "$uid" >/dev/null; do uid=$((uid + 1)); done
        groups=
        for g in adm audio cdrom dialout dip floppy lxd netdev plugdev sudo video; do
            if getent group "$g" >/dev/null; then groups=$groups${groups:+,}$g; fi
        done
        useradd --create-home --shell /bin/bash --uid "$uid" --user-group \
            ${groups:+--groups "$groups"} "$user"
    fi
    # useradd leaves "!" (locked) in /etc/shadow; with UsePAM no, sshd then
    # refuses even key logins. "*" means "no password" without locking.
    usermod -p "*" "$user"
    home=$(getent passwd "$user" | cut -d: -f6)
    group=$(id -gn "$user")
    install -d -m 0755 -o "$user" -g "$group" "$home"
    install -d -m 0700 -o "$user" -g "$group" "$home/.ssh"
    install -m 0600 -o "$user" -g "$group" "$inside/id_ed25519.pub" \
        "$home/.ssh/authorized_keys"
    if [ "$no_sudo" = 1 ]; then
        rule="$user ALL=(ALL) ALL" # needs a password, and "*" matches none
    else
        rule="$user ALL=(ALL) NOPASSWD:ALL"
    fi
    printf "# Written by hubform'"'"'s testhost.sh\n%s\n" "$rule" \
        >/etc/sudoers.d/90-cloud-init-users
    chmod 0440 /etc/sudoers.d/90-cloud-init-users
    touch "$inside/.first-boot-done"
fi

if [ -e "$inside/provision.sh" ]; then
    echo "testhost: running provision.sh" >&2
    rc=0
    if [ -x "$inside/provision.sh" ]; then
        (cd "$inside" && TESTHOST_DIR=$inside TESTHOST_USER=$user \
            TESTHOST_PORT=$port "$inside/provision.sh") \
            >>"$inside/provision.log" 2>&1 </dev/null || rc=$?
    else
        (cd "$inside" && TESTHOST_DIR=$inside TESTHOST_USER=$user \
            TESTHOST_PORT=$port bash "$inside/provision.sh") \
            >>"$inside/provision.log" 2>&1 </dev/null || rc=$?
    fi
    [ "$rc" -eq 0 ] || fail "provision.sh failed with exit code $rc"
fi

# sshd as a child, not PID 1: bash as init reaps the orphans that
# daemonised services leave behind, and ends the namespace when sshd ends.
cd /
/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config &
wait "$!"
'

# ---- commands ----------------------------------------------------------

boot() {
    local dir=$1 upid ustart init istart spid sstart nspid ns i pid log_start
    [[ $(id -u) -eq 0 ]] || die "needs root (and tests/harness/setup-host.sh)"
    [[ -x $SSHD && -x /usr/bin/sudo ]] ||
        die "$SSHD or sudo missing: run tests/harness/setup-host.sh as root"
    read_conf "$dir"
    if [[ -r $dir/testhost.pids ]]; then
        read -r upid ustart _ <"$dir/testhost.pids"
        ! ours "$upid" "$ustart" || die "$dir is running (stop it first)"
    fi

    mkdir -p -m 0755 "$dir"/{opt,home,root,etc.upper,usr.upper,var.upper}
    mkdir -p -m 0700 "$dir"/.work/{etc,usr,var}
    mkdir -p -m 1777 "$dir/tmp"
    # Ubuntu empties /tmp at boot. (Nothing is mounted here any more.)
    find "$dir/tmp" -mindepth 1 -delete
    if [[ ! -e $dir/.first-boot-done ]]; then
        cp -a /etc/skel/. "$dir/root/" 2>/dev/null || true
    fi
    chmod 0700 "$dir/root"
    # The init script as a file, so that `ps` inside shows a short command.
    printf '%s' "$BOOT" >"$dir/boot.sh"
    rm -f "$dir/sshd.pid" "$dir/testhost.pids"
    log_start=$(stat -c %s "$dir/sshd.log" 2>/dev/null || echo 0)
    echo "testhost: booting on 127.0.0.1:$port $(date '+%F %T.%N')" \
        >>"$dir/sshd.log"

    # env -i: the host must not inherit the test process's environment.
    # --kill-child: if unshare dies, its child (the namespace's init) gets
    # SIGKILL, and with it every process in the namespace.
    env -i PATH="$ROOT_PATH" LANG=C.UTF-8 HOME=/root \
        unshare --mount --propagation private --pid --fork --mount-proc \
        --uts --ipc --kill-child=SIGKILL \
        /bin/bash "$dir/boot.sh" "$dir" "$port" "$user" "$no_sudo" "$INSIDE" \
        </dev/null >>"$dir/sshd.log" 2>&1 &
    upid=$!
    ustart=$(proc_start "$upid" || echo 0)
    # Recorded at once, so that stop can end a boot that failed half-way.
    echo "$upid $ustart 0 0 0 0 0" >"$dir/testhost.pids"

    # sshd writes its PidFile right after it binds the port: the ready sign.
    for ((i = 0; i < START_TIMEOUT * 100; i++)); do
        [[ -s $dir/sshd.pid ]] && break
        if ! ours "$upid" "$ustart"; then
            # Only this boot's part of the log counts.
            if tail -c "+$((log_start + 1))" "$dir/sshd.log" |
                grep -q 'Address already in use'; then
                echo "testhost: port $port is in use" >&2
                exit 3
            fi
            tail -n 30 "$dir/sshd.log" >&2
            if [[ -s $dir/provision.log ]]; then
                echo "--- provision.log" >&2
                tail -n 30 "$dir/provision.log" >&2
            fi
            die "the host in $dir failed to boot (log: $dir/sshd.log)"
        fi
        sleep 0.01
    done
    if [[ ! -s $dir/sshd.pid ]]; then
        kill -KILL "$upid" 2>/dev/null || true # --kill-child does the rest
        die "sshd did not start within ${START_TIMEOUT}s (log: $dir/sshd.log)"
    fi

    # Host PIDs: unshare -> init (bash) -> sshd. The PidFile holds sshd's
    # PID inside the namespace; NSpid in /proc maps host PIDs to it.
    read -r init _ < <(children "$upid") || true
    [[ -n ${init:-} ]] || die "no namespace init under unshare $upid"
    istart=$(proc_start "$init")
    read -r nspid <"$dir/sshd.pid"
    spid=
    for pid in $(children "$init"); do
        if awk -v want="$nspid" '/^NSpid:/ { found = ($NF == want) }
            END { exit !found }' "/proc/$pid/status" 2>/dev/null; then
            spid=$pid
        fi
    done
    [[ -n $spid ]] || die "no sshd among the children of init $init"
    sstart=$(proc_start "$spid")
    ns=$(stat -L -c %i "/proc/$init/ns/pid")
    echo "$upid $ustart $init $istart $spid $sstart $ns" >"$dir/testhost.pids"
    echo "testhost: ready on 127.0.0.1:$port user=$user sshd=$spid"
}

# Powers the host off: sshd first (so it logs its exit), then the
# namespace's init. Only the recorded processes are signalled, each checked
# by its start time.
halt() {
    local dir=$1 upid ustart init istart spid sstart
    [[ -r $dir/testhost.pids ]] || return 0
    read -r upid ustart init istart spid sstart _ <"$dir/testhost.pids"
    if [[ $init == 0 ]] && ours "$upid" "$ustart"; then
        # A boot that failed before recording init: find it now.
        read -r init _ < <(children "$upid") || true
        istart=$(proc_start "${init:-0}" 2>/dev/null || echo 0)
    fi
    # unshare --fork blocks SIGTERM and SIGINT while it waits, and the init
    # of a pid namespace ignores signals it has no handler for: TERM sshd,
    # whose exit ends init's wait.
    if ours "$spid" "$sstart"; then
        kill -TERM "$spid" 2>/dev/null || true
        wait_gone "$init" 200 "$istart" || true
    fi
    if ours "$init" "$istart"; then
        kill -KILL "$init" 2>/dev/null || true
        wait_gone "$init" 200 "$istart" || die "init $init survives SIGKILL"
    fi
    # When the namespace's init has exited, the kernel has killed and
    # waited for every other process in it: the host is off. (Its pid
    # namespace's inode number may already name a new namespace.)
    if ours "$upid" "$ustart" && ! wait_gone "$upid" 100 "$ustart"; then
        kill -KILL "$upid" 2>/dev/null || true
        wait_gone "$upid" 200 "$ustart" || die "unshare $upid survives SIGKILL"
    fi
    rm -f "$dir/testhost.pids" "$dir/sshd.pid"
}

cmd_start() {
    [[ $# -ge 2 && $# -le 3 ]] || usage
    local dir port=$2 user=${3:-ubuntu} no_sudo=0
    dir=$(host_dir "$1")
    [[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) ||
        die "bad port $port"
    [[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || die "bad user name $user"
    [[ ${TESTHOST_NO_SUDO:-0} == 1 ]] && no_sudo=1
    mkdir -p -m 0755 "$dir"
    if [[ -r $dir/testhost.pids ]]; then
        local upid ustart
        read -r upid ustart _ <"$dir/testhost.pids"
        ! ours "$upid" "$ustart" || die "$dir is running (stop it first)"
    fi
    echo "$port $user $no_sudo" >"$dir/testhost.conf"
    if [[ ! -e $dir/id_ed25519 ]]; then
        ssh-keygen -q -t ed25519 -N '' -C "hubform-test-client" \
            -f "$dir/id_ed25519"
    fi
    write_host_key "$dir"
    write_sshd_config "$dir"
    boot "$dir"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir
    dir=$(host_dir "$1")
    [[ -e $dir ]] || return 0
    halt "$dir"
    # Only a directory that holds a test host is ours to delete.
    if [[ ${TESTHOST_KEEP:-0} != 1 && -e $dir/testhost.conf ]]; then
        rm -rf -- "$dir"
    fi
}

cmd_restart() {
    [[ $# -eq 1 ]] || usage
    local dir port user no_sudo
    dir=$(host_dir "$1")
    read_conf "$dir"
    halt "$dir"
    boot "$dir"
}

cmd_rekey() {
    [[ $# -eq 1 ]] || usage
    local dir port user no_sudo
    dir=$(host_dir "$1")
    read_conf "$dir"
    halt "$dir"
    write_host_key "$dir"
    boot "$dir"
}

[[ $# -ge 1 ]] || usage
command=$1
shift
case "$command" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
restart) cmd_restart "$@" ;;
rekey) cmd_rekey "$@" ;;
*) usage ;;
esac
