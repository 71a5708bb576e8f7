#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs inside the chroot of tools/test-debs-chroot.sh (read that first): install, remove,
# reinstall, upgrade and purge of piemu and cockpit-piemu, each step checked. Fails at the first
# check that does not hold. No systemd here: dbus-daemon and libvirtd are started by this script.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

n=0
ok() { n=$((n + 1)); printf '  ok %d - %s\n' "$n" "$*"; }
fail() { printf '  FAILED - %s\n' "$*" >&2; exit 1; }
check() { # DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else fail "$d"; fi
}
step() { printf '\n== %s (%s s)\n' "$*" "$SECONDS"; }
wait_for() { # TENTHS COMMAND...: polls, bounded
    local t=$1; shift
    for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
apt_get() { apt-get -o DPkg::Lock::Timeout=300 -q -y "$@"; }
V="virsh -q -c qemu:///system"

piemud_pid() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.piemu 2>/dev/null |
        sed -n 's/^ *uint32 //p'
}
activate_piemud() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.StartServiceByName string:org.piemu uint32:0 >/dev/null
}
conffile_pristine() { # FILE: as its package shipped it
    local f=$1 want
    want=$(dpkg-query -W -f '${Conffiles}\n' | awk -v f="$f" '$1 == f {print $2}')
    [ -n "$want" ] && [ "$(md5sum <"$f" | cut -d' ' -f1)" = "$want" ]
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
start_libvirtd() {
    # The chroot shares the host's network namespace: libvirtd gets one of its own, and its default
    # network no autostart, so that it never touches the host's bridges or firewall.
    rm -f /etc/libvirt/qemu/networks/autostart/default.xml
    [ -e /run/virtlogd.pid ] || virtlogd -d
    unshare -n libvirtd -d
    wait_for 300 $V version
}
stop_libvirtd() { # by its pidfile, in this pid namespace
    local pid
    pid=$(cat /run/libvirtd.pid)
    kill -TERM "$pid"
    wait_for 300 bash -c "! [ -d /proc/$pid ]"
}
domain_state() { $V domstate "$1" 2>/dev/null | head -n1; }

# ------------------------------------------------------------------------------------------------
step "README: bookworm-backports, then the packages and the libvirt/QEMU they need"
update-ca-certificates >/dev/null 2>&1 || true
systemd_before=$(dpkg-query -W -f '${Version}' systemd)
echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
apt_get update >/dev/null
cd /debs/v1
# The exact block the README proposes (minus the images, below).
bpo="libvirt-common libvirt0 libvirt-clients libvirt-daemon libvirt-daemon-common libvirt-daemon-log
     libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-daemon-driver-network
     libvirt-daemon-config-network libvirt-daemon-driver-nwfilter libvirt-daemon-config-nwfilter
     libvirt-daemon-driver-nodedev libvirt-daemon-driver-secret libvirt-daemon-driver-storage
     qemu-system-arm qemu-system-x86 qemu-system-common qemu-system-data seabios qemu-utils"
apt-get install -y ./piemu_*.deb ./cockpit-piemu_*.deb $(printf '%s/bookworm-backports ' $bpo) \
    >/tmp/install.log 2>&1 || { tail -n 40 /tmp/install.log; fail "apt-get install"; }
grep -E '^(piemu|piemu-setup-tls):' /tmp/install.log | sed 's/^/    postinst said: /'
check "systemd stays at bookworm's $systemd_before" [ "$(dpkg-query -W -f '${Version}' systemd)" = "$systemd_before" ]
check "libvirt 11.3 from backports" dpkg --compare-versions "$(dpkg-query -W -f '${Version}' libvirt-daemon-system)" ge 11.3
check "QEMU 10 from backports" dpkg --compare-versions "$(dpkg-query -W -f '${Version}' qemu-system-arm)" ge 1:10
check "piemu and cockpit-piemu installed" bash -c '[ "$(dpkg-query -W -f "\${Status}\n" piemu cockpit-piemu | grep -c "install ok installed")" = 2 ]'
check "user piemu in groups piemu and libvirt" bash -c 'id -nG piemu | tr " " "\n" | grep -qx libvirt && id -gn piemu | grep -qx piemu'
check "/var/lib/piemu piemu:piemu 0755" [ "$(stat -c '%U:%G %a' /var/lib/piemu)" = "piemu:piemu 755" ]
check "/var/lib/piemu/images piemu:piemu 0755" [ "$(stat -c '%U:%G %a' /var/lib/piemu/images)" = "piemu:piemu 755" ]
check "/var/lib/piemu/overlays root:root 0711" [ "$(stat -c '%U:%G %a' /var/lib/piemu/overlays)" = "root:root 711" ]
check "/run/piemu/qtest piemu:libvirt-qemu 2750" [ "$(stat -c '%U:%G %a' /run/piemu/qtest)" = "piemu:libvirt-qemu 2750" ]
check "CA key root-only" [ "$(stat -c '%U %a' /etc/piemu/ca/ca-key.pem)" = "root 600" ]
check "piemud's key 0400 piemu" [ "$(stat -c '%U %a' /etc/piemu/tls/server-key.pem)" = "piemu 400" ]
check "QEMU's client key 0640 group libvirt-qemu" [ "$(stat -c '%G %a' /etc/pki/piemu-qemu/client-key.pem)" = "libvirt-qemu 640" ]
check "server cert chains to piemu's CA" openssl verify -CAfile /etc/piemu/tls/ca-cert.pem /etc/piemu/tls/server-cert.pem
check "qemu.conf untouched by the postinst (libvirt's conffile)" conffile_pristine /etc/libvirt/qemu.conf
check "the postinst named piemu-setup-tls" grep -q "run 'piemu-setup-tls'" /tmp/install.log
check "the postinst named piemu-build-images" grep -q 'run piemu-build-images' /tmp/install.log
check "AppArmor additions shipped as conffiles" bash -c 'dpkg-query -W -f "\${Conffiles}\n" piemu | grep -q "^ /etc/apparmor.d/"'
cert_fp=$(fingerprint /etc/piemu/tls/server-cert.pem)

step "piemu-setup-tls (the admin's one command)"
piemu-setup-tls
check "qemu.conf names /etc/pki/piemu-qemu" grep -qx 'chardev_tls_x509_cert_dir = "/etc/pki/piemu-qemu"' /etc/libvirt/qemu.conf
piemu-setup-tls >/dev/null
check "a second run adds nothing" [ "$(grep -c '^chardev_tls_x509_cert_dir' /etc/libvirt/qemu.conf)" = 1 ]
check "piemu-setup-tls --help" bash -c 'piemu-setup-tls --help | grep -q -- --remove-qemu-conf'
check "piemu-build-images --help" bash -c 'piemu-build-images --help | grep -q default-armel'
check "man pages" bash -c 'for m in man8/piemu-setup-tls.8 man8/piemu-build-images.8 man8/piemud.8 man1/piemuctl.1; do [ -s /usr/share/man/$m.gz ] || exit 1; done'

if [ "${PIEMU_TEST_IMAGES:-0}" = 1 ]; then
    step "piemu-build-images"
    piemu-build-images >/tmp/images.log 2>&1 || { tail -n 30 /tmp/images.log; fail "piemu-build-images"; }
    for i in default default-armhf default-armel; do
        check "image $i with the shim" bash -c "[ -s /var/lib/piemu/images/$i/kernel ] && grep -q 'GPIO shim' /var/lib/piemu/images/$i/meta"
    done
    check "the host's architectures untouched" [ -z "$(dpkg --print-foreign-architectures)" ]
    piemu-build-images --arch armel >/tmp/images2.log 2>&1
    check "a second run is up to date" grep -q 'is up to date' /tmp/images2.log
fi

step "the bus, piemud activated through it, libvirtd with board domains"
mkdir -p /run/dbus
dbus-daemon --system --fork
wait_for 100 dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId ||
    fail "dbus-daemon"
# piemud exits when libvirtd cannot be reached at start-up (with systemd, libvirtd is socket
# activated): libvirtd first.
start_libvirtd || fail "libvirtd did not answer"
ok "libvirtd answers"
activate_piemud
pid1=$(piemud_pid)
check "piemud activated by the bus (pid $pid1)" [ "$(readlink /proc/"$pid1"/exe)" = /usr/sbin/piemud ]
check "piemud runs as piemu" [ "$(stat -c %U /proc/"$pid1")" = piemu ]
# piemud makes its overlay pool when it connects.
wait_for 100 $V pool-info piemu || fail "piemud did not define the storage pool piemu"
ok "piemud defined the storage pool piemu"
# Two board domains (one running) and somebody else's domain, which piemu must never touch.
for d in piemu-kept piemu-running other-domain; do
    cat >/tmp/$d.xml <<XML
<domain type='qemu'><name>$d</name><memory unit='MiB'>128</memory>
  <os><type arch='aarch64' machine='virt'>hvm</type></os><cpu mode='custom'><model>cortex-a53</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-aarch64</emulator><controller type='usb' model='none'/>
    <memballoon model='none'/></devices></domain>
XML
    $V define /tmp/$d.xml >/dev/null
done
if $V start piemu-running >/tmp/start.log 2>&1; then
    running=1
    ok "a domain piemu-running runs"
else
    running=0
    echo "    (a domain cannot start in this chroot: $(tail -n1 /tmp/start.log); the stop on remove is checked as far as it goes)"
fi

step "apt-get remove"
apt_get remove piemu cockpit-piemu >/tmp/remove.log 2>&1 || { tail -n 30 /tmp/remove.log; fail "apt-get remove"; }
grep '^piemu:' /tmp/remove.log | sed 's/^/    prerm said: /' || true
check "piemud gone" bash -c "! [ -d /proc/$pid1 ] && [ -z \"\$(dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.piemu | grep true)\" ]"
check "no activation file left" [ ! -e /usr/share/dbus-1/system-services/org.piemu.service ]
if [ "$running" = 1 ]; then
    check "the running board domain was stopped" [ "$(domain_state piemu-running)" = "shut off" ]
fi
check "board domains stay defined" bash -c "$V dominfo piemu-kept >/dev/null && $V dominfo piemu-running >/dev/null"
check "state and credentials stay" bash -c '[ -d /var/lib/piemu/images ] && [ -s /etc/piemu/tls/server-key.pem ]'
check "AppArmor conffiles stay" bash -c 'ls /etc/apparmor.d/abstractions/libvirt-qemu.d/ | grep -q piemu'

step "reinstall"
apt_get install ./piemu_*.deb ./cockpit-piemu_*.deb >/tmp/reinstall.log 2>&1 || { tail -n 30 /tmp/reinstall.log; fail "reinstall"; }
check "the same credentials (not made anew)" [ "$(fingerprint /etc/piemu/tls/server-cert.pem)" = "$cert_fp" ]
check "the boards are still there" bash -c "$V dominfo piemu-kept >/dev/null"
check "no second qemu.conf line" [ "$(grep -c '^chardev_tls_x509_cert_dir' /etc/libvirt/qemu.conf)" = 1 ]
activate_piemud
pid2=$(piemud_pid)
check "piemud activates again (pid $pid2)" [ "$(readlink /proc/"$pid2"/exe)" = /usr/sbin/piemud ]
[ "$running" = 0 ] || $V start piemu-running >/dev/null

step "upgrade to $(ls /debs/v2/piemu_*.deb | sed 's/.*piemu_\(.*\)_.*/\1/')"
cd /debs/v2
apt_get install ./piemu_*.deb ./cockpit-piemu_*.deb >/tmp/upgrade.log 2>&1 || { tail -n 30 /tmp/upgrade.log; fail "upgrade"; }
wait_for 100 bash -c '[ -n "$(dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID string:org.piemu 2>/dev/null)" ]' || true
pid3=$(piemud_pid)
check "piemud restarted on the new binary (pid $pid2 -> $pid3)" bash -c "[ -n '$pid3' ] && [ '$pid3' != '$pid2' ] && ! [ -d /proc/$pid2 ] && [ \"\$(readlink /proc/$pid3/exe)\" = /usr/sbin/piemud ]"
if [ "$running" = 1 ]; then
    check "the running board kept running through the upgrade" [ "$(domain_state piemu-running)" = running ]
fi
cd /debs/v1

step "purge with piemu-setup-tls --remove-qemu-conf first"
pid=$(cat /run/libvirtd.pid)
piemu-setup-tls --remove-qemu-conf
check "qemu.conf as libvirt shipped it again" conffile_pristine /etc/libvirt/qemu.conf
# Without systemd it stops libvirtd (by its pidfile) for whoever started it to start it again.
wait_for 300 bash -c "! [ -d /proc/$pid ]" || fail "libvirtd did not stop"
start_libvirtd || fail "libvirtd did not start again"
apt_get purge piemu cockpit-piemu >/tmp/purge.log 2>&1 || { tail -n 30 /tmp/purge.log; fail "purge"; }
grep '^piemu:' /tmp/purge.log | sed 's/^/    said: /' || true
check "board domains undefined (libvirtd answering)" bash -c "doms=\$($V list --all --name) && ! grep -q '^piemu-' <<<\"\$doms\""
check "somebody else's domain untouched" bash -c "$V dominfo other-domain >/dev/null"
check "pool piemu undefined (libvirtd answering)" bash -c "pools=\$($V pool-list --all --name) && ! grep -qx piemu <<<\"\$pools\""
check "/var/lib/piemu, /etc/piemu, /etc/pki/piemu-qemu, /run/piemu gone" bash -c '! [ -e /var/lib/piemu ] && ! [ -e /etc/piemu ] && ! [ -e /etc/pki/piemu-qemu ] && ! [ -e /run/piemu ]'
check "AppArmor conffiles gone" bash -c '! ls /etc/apparmor.d/abstractions/libvirt-qemu.d/piemu* >/dev/null 2>&1'
check "/var/cache/piemu's image caches gone" bash -c '! [ -e /var/cache/piemu/debs ] && ! [ -e /var/cache/piemu/apt-armel ]'
check "user piemu kept (system accounts stay)" getent passwd piemu
check "libvirt still works" bash -c "$V version >/dev/null"

step "install again, purge with the qemu.conf line in place and libvirtd away"
apt_get install ./piemu_*.deb ./cockpit-piemu_*.deb >/tmp/install2.log 2>&1 || { tail -n 30 /tmp/install2.log; fail "install again"; }
pid=$(cat /run/libvirtd.pid)
piemu-setup-tls >/dev/null
wait_for 300 bash -c "! [ -d /proc/$pid ]" || fail "libvirtd did not stop"
start_libvirtd || fail "libvirtd did not start again"
$V define /tmp/piemu-kept.xml >/dev/null
stop_libvirtd || fail "libvirtd did not stop"
apt_get purge piemu cockpit-piemu >/tmp/purge2.log 2>&1 || { tail -n 30 /tmp/purge2.log; fail "purge without libvirtd"; }
grep '^piemu:' /tmp/purge2.log | sed 's/^/    said: /' || true
check "purge says libvirtd was away and what stays" grep -q 'libvirtd is not reachable' /tmp/purge2.log
check "the emptied /etc/pki/piemu-qemu stays while qemu.conf names it" bash -c '[ -d /etc/pki/piemu-qemu ] && [ -z "$(ls -A /etc/pki/piemu-qemu)" ]'
check "the purge said so" grep -q 'still names /etc/pki/piemu-qemu' /tmp/purge2.log
start_libvirtd || fail "libvirtd did not start again with the line in qemu.conf"
ok "libvirtd starts with qemu.conf's line and the empty directory"
check "the board domain left behind is still defined" bash -c "$V dominfo piemu-kept >/dev/null"
stop_libvirtd || true

printf '\n%d passed, 0 failed\n' "$n"
