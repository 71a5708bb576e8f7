#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs inside the AppArmor VM of tests/system/apparmor-vm.sh (as root, from piemu-aa-test.service,
# once at boot): sets piemu up as an administrator would after installing it, starts raspi3b
# boards as alice (group piemu), and checks AppArmor's confinement of their QEMUs. Prints
# "piemu-aa: PASS|FAIL check" lines and "piemu-aa: N passed, N failed" on the console (the host
# parses them), then powers the VM off. Every wait is bounded; under TCG in TCG one step of
# libvirt takes seconds, so the bounds are generous.
set -uo pipefail

pass=0
fail=0
out() { printf 'piemu-aa: %s\n' "$*"; }
ok() { out "PASS $1"; pass=$((pass + 1)); }
ko() { out "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
# check NAME CMD...: PASS if CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else ko "$name"; fi
}
# until_ok SECONDS CMD...: runs CMD every second until it succeeds or SECONDS have passed.
until_ok() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    "$@" >/dev/null 2>&1
}
as_alice() { runuser -u alice -- "$@"; }
ctl() { as_alice timeout 900 piemuctl --no-pager --no-ask-password --timeout=600 "$@"; }
prop() {
    as_alice busctl --system get-property org.piemu "/org/piemu/board/$1" org.piemu.Board "$2" 2>/dev/null |
        sed -E 's/^[a-z]+ "?([^"]*)"?$/\1/'
}
virsh_() { timeout 300 virsh -c qemu:///system "$@"; }
finish() {
    out "denials in the kernel log: $(denials | wc -l)"
    denials | head -n 20 | sed 's/^/piemu-aa: denied: /'
    out "$pass passed, $fail failed"
    systemctl --no-block poweroff
    exit 0
}
denials() { journalctl -k -b --no-pager -o cat 2>/dev/null | grep 'apparmor="DENIED"'; }

out "started; kernel $(uname -r)"

# 1. AppArmor is on and libvirt confines with it: the stock Debian host.
check "apparmor enabled" grep -qx Y /sys/module/apparmor/parameters/enabled
until_ok 300 virsh_ version
check "libvirt security driver is apparmor" sh -c \
    "virsh -c qemu:///system capabilities | grep -q '<model>apparmor</model>'"
libvirtd_pid=$(systemctl show -p MainPID --value libvirtd.service)
check "libvirtd runs under its enforcing profile" \
    grep -qx 'libvirtd (enforce)' "/proc/$libvirtd_pid/attr/current"

# 2. What the administrator does after installing: TLS for the lines, a user in group piemu.
# The package's piemu-setup-tls (its postinst made the certificates; this points qemu.conf at
# them and restarts libvirtd), or the tree's script for a meson install.
setup_tls=$(command -v piemu-setup-tls || echo /usr/local/lib/piemu-aa-test/setup-tls.sh)
if "$setup_tls" >/tmp/setup-tls.log 2>&1; then
    ok "setup-tls"
else
    ko "setup-tls" "$(tail -n 3 /tmp/setup-tls.log | tr '\n' ' ')"
fi
until_ok 300 virsh_ version
useradd -m -G piemu alice

# 3. One board as alice, GPIO through qtest.
fail_before_b1=$fail
if ctl create b1 --model=raspi3b >/tmp/b1.log 2>&1; then ok "alice creates b1"; else ko "alice creates b1" "$(tr '\n' ' ' </tmp/b1.log)"; fi
if ctl start b1 >>/tmp/b1.log 2>&1; then ok "alice starts b1"; else ko "alice starts b1" "$(tail -n 3 /tmp/b1.log | tr '\n' ' ')"; fi
# Waits only for a board that did start: a failed start has said why already.
started=0
[ "$fail" = "$fail_before_b1" ] && started=1
[ $started = 1 ] && until_ok 600 sh -c '[ "$(runuser -u alice -- busctl --system get-property org.piemu /org/piemu/board/b1 org.piemu.Board State)" = "s \"running\"" ]'
state=$(prop b1 State)
[ "$state" = running ] && ok "b1 State running" || ko "b1 State running" "State is '$state'"
[ $started = 1 ] && until_ok 300 sh -c '[ "$(runuser -u alice -- busctl --system get-property org.piemu /org/piemu/board/b1 org.piemu.Board GpioPath)" = "s \"qtest\"" ]'
gpio=$(prop b1 GpioPath)
# GpioPath says qtest from the start request on: it counts only for a board that runs.
[ "$gpio" = qtest ] && [ "$state" = running ] && ok "b1 GpioPath qtest" ||
    ko "b1 GpioPath qtest" "GpioPath is '$gpio', State '$state'"
# Right after the start piemud may still be connecting qtest ("try again"): bounded retries.
[ $started = 1 ] && until_ok 120 ctl set-pin b1 17 1
check "b1 SetPin 17 true" ctl set-pin b1 17 1
level=$(ctl get-pin b1 17 2>&1)
[ "$level" = 1 ] && ok "b1 GetPin 17 true" || ko "b1 GetPin 17 true" "get-pin says '$level'"

# 4. The board's QEMU is confined by its own profile, which names its own files only.
uuid1=$(virsh_ domuuid piemu-b1 2>/dev/null | head -n 1)
pid1=$(cat /run/libvirt/qemu/piemu-b1.pid 2>/dev/null)
label1=$(cat "/proc/${pid1:-0}/attr/current" 2>/dev/null)
exe1=$(readlink "/proc/${pid1:-0}/exe" 2>/dev/null)
[ -n "$uuid1" ] && [ "$label1" = "libvirt-$uuid1 (enforce)" ] && ok "b1 QEMU ($exe1) confined by libvirt-$uuid1 (enforce)" ||
    ko "b1 QEMU confined by its libvirt-<uuid> profile" "pid '$pid1' label '$label1' uuid '$uuid1'"
files1=/etc/apparmor.d/libvirt/libvirt-$uuid1.files
check "b1 profile: its overlay rwk" grep -qF '"/var/lib/piemu/overlays/b1.qcow2" rwk,' "$files1"
check "b1 profile: its image rk" grep -qF '"/var/lib/piemu/images/default/sd.img" rk,' "$files1"

# A second board: each profile has its own overlay, not the other's.
if ctl create b2 --model=raspi3b >/tmp/b2.log 2>&1 && ctl start b2 >>/tmp/b2.log 2>&1; then
    ok "alice creates and starts b2"
else
    ko "alice creates and starts b2" "$(tail -n 3 /tmp/b2.log | tr '\n' ' ')"
fi
uuid2=$(virsh_ domuuid piemu-b2 2>/dev/null | head -n 1)
files2=/etc/apparmor.d/libvirt/libvirt-$uuid2.files
check "b2 profile: its overlay rwk" grep -qF '"/var/lib/piemu/overlays/b2.qcow2" rwk,' "$files2"
check "b2 profile: not b1's overlay" sh -c "[ -s '$files2' ] && ! grep -q 'overlays/b1' '$files2'"
check "b1 profile: not b2's overlay" sh -c "[ -s '$files1' ] && ! grep -q 'overlays/b2' '$files1'"
# Nothing shared (abstractions, local/) opens piemu's overlays or images to every QEMU.
check "no shared rule for piemu's overlays or images" sh -c \
    "[ -s '$files1' ] && ! grep -rqs '/var/lib/piemu' /etc/apparmor.d/abstractions /etc/apparmor.d/local"

# 5. Nothing was denied on the way (a denial that did not fail a step is still a missing rule).
n=$(denials | wc -l)
[ "$n" = 0 ] && ok "no apparmor=\"DENIED\" in the kernel log" || ko "no apparmor=\"DENIED\" in the kernel log" "$n denials"

if [ "$fail" != 0 ]; then
    # What the host's log needs to explain a failure.
    for b in b1 b2; do
        tail -n 5 "/var/log/libvirt/qemu/piemu-$b.log" 2>/dev/null | sed "s/^/piemu-aa: qemu log $b: /"
    done
    journalctl -b -u piemud --no-pager -o cat 2>/dev/null | tail -n 10 | sed 's/^/piemu-aa: piemud: /'
fi
ctl stop b1 b2 >/dev/null 2>&1
finish
