#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bring up what piemud needs, as root, with or without systemd as PID 1: the system bus,
# polkitd, virtlogd and libvirtd, plus the piemu system user (in the libvirt group) and its state
# directories. Idempotent: anything already running is left alone (others may be using it), and
# nothing is ever stopped. piemud itself is started by tools/piemud-service.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}
POLKITD_LOG=/var/log/piemu-polkitd.log
LIBVIRT_URI=${LIBVIRT_URI:-qemu:///system}

say() { printf 'start-services: %s\n' "$*"; }
die() { printf 'start-services: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    die "must run as root"
fi

# Prefer the installed snippets (what the unit will see), fall back to the source tree.
snippet() {
    local kind=$1 f
    for f in "/usr/lib/$kind/piemu.conf" "/usr/local/lib/$kind/piemu.conf" "$here/systemd/$kind/piemu.conf"; do
        if [ -f "$f" ]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

# Runs "$@" until it succeeds or $1 tenths of a second have passed.
wait_until() {
    local tenths=$1
    shift
    for _ in $(seq 1 "$tenths"); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

bus_answers() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetId
}

# NameHasOwner does not activate the service, unlike a call to it.
bus_name_owned() {
    busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        NameHasOwner s "$1" 2>/dev/null | grep -qx 'b true'
}

libvirt_answers() {
    virsh -c "$LIBVIRT_URI" version
}

# True if the pid in file $1 is alive and its command name is $2.
pidfile_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

ensure_user() {
    local conf
    if conf=$(snippet sysusers.d) && command -v systemd-sysusers >/dev/null &&
        systemd-sysusers "$conf" >/dev/null 2>&1; then
        :
    else
        getent group piemu >/dev/null || groupadd --system piemu
        getent group libvirt >/dev/null || groupadd --system libvirt
        getent passwd piemu >/dev/null ||
            useradd --system --gid piemu --home-dir /var/lib/piemu --no-create-home \
                --shell /usr/sbin/nologin --comment "piemu emulated Raspberry Pi daemon" piemu
    fi
    # sysusers only adds members to groups it created itself on some versions: make sure.
    if ! id -nG piemu | tr ' ' '\n' | grep -qx libvirt; then
        usermod -a -G libvirt piemu
    fi
    say "user piemu ($(id piemu)) ready"
}

ensure_dirs() {
    local conf
    if conf=$(snippet tmpfiles.d) && command -v systemd-tmpfiles >/dev/null &&
        systemd-tmpfiles --create "$conf" >/dev/null 2>&1; then
        :
    else
        install -d -m 0755 -o piemu -g piemu /var/lib/piemu /var/lib/piemu/images
        install -d -m 0711 -o root -g root /var/lib/piemu/overlays
        install -d -m 0755 -o piemu -g piemu /run/piemu
        install -d -m 2750 -o piemu -g libvirt-qemu /run/piemu/qtest
    fi
    # tmpfiles leaves an existing directory's mode alone on some versions: make sure.
    chown piemu:libvirt-qemu /run/piemu/qtest && chmod 2750 /run/piemu/qtest
    say "state directories under /var/lib/piemu and /run/piemu ready"
}

start_dbus() {
    if bus_answers >/dev/null 2>&1; then
        say "dbus-daemon (system bus): already running"
        return 0
    fi
    mkdir -p /run/dbus
    # A pid file or socket left by a dead daemon makes dbus-daemon refuse to start.
    if ! pidfile_alive /run/dbus/pid dbus-daemon; then
        rm -f /run/dbus/pid /run/dbus/system_bus_socket
    fi
    # dbus-daemon may need its user's runtime dir; --fork returns once the socket listens.
    dbus-daemon --system --fork
    wait_until 100 bus_answers || die "dbus-daemon started but the system bus does not answer"
    say "dbus-daemon (system bus): started"
}

start_polkitd() {
    if bus_name_owned org.freedesktop.PolicyKit1; then
        say "polkitd: already running"
        return 0
    fi
    getent passwd polkitd >/dev/null || die "polkitd: user 'polkitd' missing (install the polkitd package)"
    [ -x "$POLKITD" ] || die "polkitd: $POLKITD not found (install the polkitd package)"
    # polkitd drops to the polkitd user itself; setsid detaches it from this shell.
    setsid "$POLKITD" --no-debug >>"$POLKITD_LOG" 2>&1 </dev/null &
    wait_until 100 bus_name_owned org.freedesktop.PolicyKit1 ||
        die "polkitd did not take org.freedesktop.PolicyKit1; see $POLKITD_LOG"
    say "polkitd: started (log: $POLKITD_LOG)"
}

start_virtlogd() {
    # By its pidfile only: a virtlogd found by name could be a container's.
    if pidfile_alive /run/virtlogd.pid virtlogd; then
        say "virtlogd: already running"
        return 0
    fi
    virtlogd -d
    say "virtlogd: started"
}

# By its pidfile (libvirtd -d writes it): a libvirtd found by name could be a container's.
libvirtd_alive() {
    pidfile_alive /run/libvirtd.pid libvirtd
}

# libvirtd sets every QEMU's core-size limit to qemu.conf's max_core (unlimited by default on
# Linux) and refuses to start a guest when it cannot ("cannot limit core file size"). sudo 1.9
# runs its command with a core-size hard limit of 0, and only a process with CAP_SYS_RESOURCE may
# raise a hard limit. So: raise ours if we may; if we may not, give libvirtd a max_core that fits
# under the limit it inherits (QEMU then writes no core dumps), and say so.
core_limit_for_libvirtd() {
    local hard conf=/etc/libvirt/qemu.conf
    ulimit -H -c unlimited 2>/dev/null || true
    hard=$(ulimit -H -c)
    [ "$hard" = unlimited ] && return 0
    if grep -qE '^[[:space:]]*max_core[[:space:]]*=' "$conf" 2>/dev/null; then
        say "libvirtd: core-size hard limit is $hard here (sudo?); using the max_core already in $conf"
        return 0
    fi
    printf '\n# Added by piemu (tools/start-services.sh): libvirtd was started under a core-size hard limit\n# of %s that this host does not allow raising (sudo sets 0), and QEMU cannot get more than\n# that. Remove this line to have QEMU core dumps again under an unlimited libvirtd.\nmax_core = 0\n' \
        "$hard" >>"$conf"
    say "libvirtd: core-size hard limit is $hard here and cannot be raised (sudo?): set max_core = 0 in $conf"
}

start_libvirtd() {
    if libvirt_answers >/dev/null 2>&1; then
        say "libvirtd: already running ($LIBVIRT_URI answers)"
        return 0
    fi
    # A libvirtd that does not answer is either still starting or still shutting down (after
    # SIGTERM it closes its socket first and takes seconds to exit): wait for it to answer or
    # to go, and start a new one once none is left.
    local started=no
    for _ in $(seq 1 300); do
        if libvirt_answers >/dev/null 2>&1; then
            say "libvirtd: started ($LIBVIRT_URI answers)"
            return 0
        fi
        if [ $started = no ] && ! libvirtd_alive; then
            core_limit_for_libvirtd
            (ulimit -S -c "$(ulimit -H -c)" 2>/dev/null || true; exec libvirtd -d)
            started=yes
        fi
        sleep 0.1
    done
    if [ $started = no ]; then
        die "libvirtd: a libvirtd process exists but $LIBVIRT_URI did not answer within 30 s"
    fi
    die "libvirtd: started, but $LIBVIRT_URI did not answer within 30 s"
}

ensure_user
ensure_dirs

if [ -d /run/systemd/system ]; then
    systemctl start dbus polkit virtlogd libvirtd
    say "dbus, polkit, virtlogd, libvirtd: started via systemctl"
    wait_until 300 libvirt_answers || die "libvirtd: $LIBVIRT_URI did not answer within 30 s"
else
    start_dbus
    start_polkitd
    start_virtlogd
    start_libvirtd
fi
