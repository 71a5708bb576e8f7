#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The end-to-end smoke of tests/system/systemd-host.sh, run as root inside the Debian 12 systemd
# container once piemu's packages are installed and set up (the host script copies this file, the
# stranger's squat.pl, good.img.xz and kernel8.img into /root). Everything goes through the product:
# systemctl, busctl and piemuctl on the real bus, polkit, libvirtd and QEMU of the container.
# Each check prints PASS or FAIL with what it saw; the last line is "N passed, N failed"; the exit
# status is 1 if any check failed. Costs about three short raspi3b boots under TCG (a few minutes).
# No "set -e": a command that fails is something a check reports, not a reason to stop checking.
set -uo pipefail
cd /root || exit 1
export PIEMU_PAGER=cat

pass=0
fail=0
# result NAME OK SAW: OK is 1 for a pass.
result() {
    if [ "$2" = 1 ]; then
        printf 'PASS: %s: %s\n' "$1" "$3"
        pass=$((pass + 1))
    else
        printf 'FAIL: %s: %s\n' "$1" "$3"
        fail=$((fail + 1))
    fi
}
# until_ok SECONDS CMD...: polls CMD every 0.1 s until it succeeds or SECONDS pass.
until_ok() {
    local n=$(($1 * 10))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

bpath() { echo "/org/piemu/board/$1"; } # names here are plain [a-z0-9]: the path needs no escaping
# prop BOARD NAME: a board property's value, without busctl's type and quotes.
prop() {
    busctl get-property org.piemu "$(bpath "$1")" org.piemu.Board "$2" 2>/dev/null |
        sed -E 's/^[a-z]+ //; s/^"(.*)"$/\1/'
}
mainpid() { systemctl show -P MainPID piemud; }

# guest_eval BOARD EXPR: types `echo TOKEN=EXPR=` on the console and prints what the guest's shell
# made of EXPR (empty if it did not answer within 30 s).
guest_eval() {
    local b=$1 tok="v$RANDOM$RANDOM"
    piemuctl send "$b" "echo $tok=$2=" >/dev/null || return 0
    piemuctl wait "$b" --serial="^$tok=[^=]*=\$" --timeout=30s >/dev/null 2>&1 || return 0
    piemuctl status "$b" -n 40 | sed -n "s/^.*$tok=\([^=]*\)=\$/\1/p" | tail -n 1
}
# guest_run BOARD CMD: runs CMD on the console; succeeds if it finished within 30 s with status 0.
guest_run() {
    local b=$1 tok="r$RANDOM$RANDOM"
    piemuctl send "$b" "$2 && echo $tok-ok" >/dev/null &&
        piemuctl wait "$b" --serial="^$tok-ok\$" --timeout=30s >/dev/null 2>&1
}

# BCM2837 GPIO registers, read and written by the guest with busybox devmem (iomem=relaxed): the
# path that needs nothing of piemu in the guest. GPIO 23 is made an output in GPFSEL2 first: QEMU's
# model reports a GPSET/GPCLR write only for a pin that is already an output.
GPLEV0=0x3f200034
SET23='devmem 0x3f200008 32 $(( ($(devmem 0x3f200008) & ~(7<<9)) | (1<<9) )) && devmem 0x3f20001c 32 0x00800000'
CLR23='devmem 0x3f200028 32 0x00800000'
level17="\$(( (\$(devmem $GPLEV0) >> 17) & 1 ))"

# gpio_both_ways BOARD WHEN: SetPin seen by the guest, a pin the guest drives seen by GetPin and
# GpioChanged.
gpio_both_ways() {
    local b=$1 when=$2 a c ok wlog wpid g1 g0 e1 e0
    piemuctl set-pin "$b" 17 1 >/dev/null 2>&1 || true
    a=$(guest_eval "$b" "$level17")
    piemuctl set-pin "$b" 17 0 >/dev/null 2>&1 || true
    c=$(guest_eval "$b" "$level17")
    ok=0
    [ "$a" = 1 ] && [ "$c" = 0 ] && ok=1
    result "host->guest GPIO ($when)" $ok "set-pin 17 1 then 0; the guest read GPLEV0 bit 17 as '$a' then '$c'"

    wlog=$(mktemp)
    piemuctl --json=short watch "$b" >"$wlog" 2>&1 &
    wpid=$!
    until_ok 10 grep -q '^Watching board' "$wlog" || true
    guest_run "$b" "$SET23" || true
    piemuctl wait "$b" --pin=23=1 --timeout=20s >/dev/null 2>&1 || true
    g1=$(piemuctl get-pin "$b" 23 2>&1 || true)
    until_ok 10 grep -q '"pin":23,"level":1' "$wlog" && e1=yes || e1=no
    guest_run "$b" "$CLR23" || true
    piemuctl wait "$b" --pin=23=0 --timeout=20s >/dev/null 2>&1 || true
    g0=$(piemuctl get-pin "$b" 23 2>&1 || true)
    until_ok 10 grep -q '"pin":23,"level":0' "$wlog" && e0=yes || e0=no
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    ok=0
    [ "$g1" = 1 ] && [ "$g0" = 0 ] && [ "$e1" = yes ] && [ "$e0" = yes ] && ok=1
    result "guest->host GPIO ($when)" $ok \
        "guest devmem GPSET0/GPCLR0 bit 23: get-pin said '$g1' then '$g0'; GpioChanged 23=1 $e1, 23=0 $e0"
    rm -f "$wlog"
}

echo "== the unit and D-Bus activation"
systemctl stop piemud 2>/dev/null || true
before=$(systemctl is-active piemud || true)
jmark=$(now)
answer=$(busctl call org.piemu /org/piemu org.freedesktop.DBus.Properties Get ss org.piemu.Manager Version 2>&1 || true)
after=$(systemctl is-active piemud || true)
mp=$(mainpid)
bp=$(busctl status org.piemu 2>/dev/null | sed -n 's/^PID=//p')
via=$(journalctl -u dbus --since "@${jmark%.*}" --no-pager -o cat 2>/dev/null |
    grep -c "Activating via systemd: service name='org.piemu'" || true)
ok=0
[ "$before" = inactive ] && [[ $answer == 'v s '* ]] && [ "$after" = active ] && [ "$mp" = "$bp" ] && [ "$via" -ge 1 ] && ok=1
result "D-Bus activation" $ok "stopped: $before; Get(Version) answered '$answer'; unit then $after, MainPID $mp, org.piemu owned by PID $bp; dbus-daemon 'Activating via systemd' lines: $via"

props=$(systemctl show piemud -p User -p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet \
    -p AmbientCapabilities -p PrivateTmp -p ProtectHome)
sysfilter=$(systemctl show -P SystemCallFilter piemud | wc -w)
ok=0
grep -qx 'User=piemu' <<<"$props" && grep -qx 'NoNewPrivileges=yes' <<<"$props" &&
    grep -qx 'ProtectSystem=strict' <<<"$props" && grep -qx 'CapabilityBoundingSet=' <<<"$props" &&
    grep -qx 'AmbientCapabilities=' <<<"$props" && [ "$sysfilter" -gt 10 ] && ok=1
result "unit hardened (systemctl show)" $ok "$(tr '\n' ' ' <<<"$props")SystemCallFilter: $sysfilter syscalls"

st=/proc/$mp/status
uid=$(awk '/^Uid:/ {print $3}' "$st")
nnp=$(awk '/^NoNewPrivs:/ {print $2}' "$st")
secc=$(awk '/^Seccomp:/ {print $2}' "$st")
filters=$(awk '/^Seccomp_filters:/ {print $2}' "$st")
caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ {printf "%s%s ", $1, $2}' "$st")
rootopts=$(awk '$5 == "/" { o = $6 } END { print o }' "/proc/$mp/mountinfo")
ok=0
[ "$uid" = "$(id -u piemu)" ] && [ "$nnp" = 1 ] && [ "$secc" = 2 ] && [ "${filters:-0}" -ge 1 ] &&
    ! grep -q '[1-9a-f]' <<<"${caps//Cap???:/}" && [[ ,$rootopts, == *,ro,* ]] && ok=1
result "piemud process hardened (/proc/$mp)" $ok "uid $uid (piemu is $(id -u piemu)), NoNewPrivs $nnp, Seccomp $secc with $filters filters, ${caps}/ mounted $rootopts"

imgs=$(piemuctl --no-legend images | awk '{print $1}' | tr '\n' ' ')
ok=0
[[ " $imgs" == *" default "* ]] && ok=1
result "catalog" $ok "piemuctl images: $imgs"

echo "== a raspi3b board on the default image"
t0=$(now)
out=$(piemuctl create smoke1 --model=raspi3b 2>&1 && piemuctl start smoke1 2>&1 &&
    piemuctl wait smoke1 --serial='piemu:.*# ' --timeout=4min 2>&1) && ok=1 || ok=0
result "board boots to its shell" $ok "create, start, shell prompt after $(since "$t0") s ${out:+($out)}"
gp=$(prop smoke1 GpioPath)
ok=0
[ "$gp" = qtest ] && ok=1
result "GpioPath" $ok "'$gp'"
gpio_both_ways smoke1 "fresh board"

echo "== a one-file image import"
t0=$(now)
out=$(piemuctl import-image smokeimg /root/good.img.xz --description='systemd-host smoke' --timeout=5min 2>&1) && irc=0 || irc=$?
listed=$(piemuctl --no-legend images | awk '$1 == "smokeimg" {print "listed"}')
same=no
cmp -s /var/lib/piemu/images/smokeimg/kernel /root/kernel8.img && same=yes
ok=0
[ "$irc" = 0 ] && [ "$listed" = listed ] && [ "$same" = yes ] && ok=1
result "import-image of an .img.xz" $ok "exit $irc after $(since "$t0") s; catalog: ${listed:-not listed}; kernel8.img from its FAT stored as the kernel: $same ${out:+($out)}"
out=$(piemuctl remove-image smokeimg 2>&1) && rrc=0 || rrc=$?
gone=$([ -e /var/lib/piemu/images/smokeimg ] && echo present || echo gone)
ok=0
[ "$rrc" = 0 ] && [ "$gone" = gone ] && ok=1
result "remove-image" $ok "exit $rrc; directory $gone ${out:+($out)}"

echo "== a user in group piemu and a stranger"
id alice >/dev/null 2>&1 || useradd -m -G piemu alice
id bob >/dev/null 2>&1 || useradd -m bob
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
out=$(as alice piemuctl --no-ask-password create alice1 2>&1 && as alice piemuctl --no-ask-password start alice1 2>&1 &&
    as alice piemuctl wait alice1 --state=running --timeout=60s 2>&1) && arc=0 || arc=$?
owner=$(prop alice1 Owner)
ok=0
[ "$arc" = 0 ] && [ "$owner" = "$(id -u alice)" ] && [ "$(prop alice1 State)" = running ] && ok=1
result "alice (group piemu) creates and starts her board" $ok "exit $arc, Owner $owner (alice is $(id -u alice)), State $(prop alice1 State) ${out:+($out)}"
out1=$(as bob piemuctl --no-ask-password create bob1 2>&1) && b1=0 || b1=$?
out2=$(as bob piemuctl --no-ask-password stop alice1 2>&1) && b2=0 || b2=$?
out3=$(as bob busctl call org.piemu /org/piemu org.piemu.Manager CreateBoard 'ssa{sv}' bob2 "" 0 2>&1) && b3=0 || b3=$?
ok=0
[ "$b1" = 5 ] && [ "$b2" = 5 ] && [ "$b3" != 0 ] && [[ $out3 == *ccess*denied* ]] &&
    [ "$(prop alice1 State)" = running ] && ok=1
result "bob (not in piemu) is refused" $ok "create: exit $b1 ($out1); stop alice1: exit $b2 ($out2); busctl CreateBoard: $out3; alice1 $(prop alice1 State)"
out=$(as alice piemuctl delete alice1 2>&1) && arc=0 || arc=$?
result "alice deletes her board" "$([ "$arc" = 0 ] && echo 1 || echo 0)" "exit $arc ${out:+($out)}"

echo "== systemctl restart piemud with a board running"
mp0=$(mainpid)
systemctl restart piemud
t0=$(now)
out=$(piemuctl set-pin smoke1 17 1 2>&1) && src=0 || src=$?
result "SetPin right after the restart" "$([ "$src" = 0 ] && echo 1 || echo 0)" "first call $(since "$t0") s after systemctl returned: exit $src ${out:+($out)}"
until_ok 10 piemuctl set-pin smoke1 17 0 || true
mp1=$(mainpid)
s=$(prop smoke1 State)
ok=0
[ "$mp1" != "$mp0" ] && [ "$s" = running ] && ok=1
result "board stays running across a piemud restart" $ok "MainPID $mp0 -> $mp1, smoke1 $s"
gpio_both_ways smoke1 "after restarting piemud"

echo "== systemctl restart libvirtd with a board running"
mp0=$(mainpid)
systemctl restart libvirtd
lv=$(systemctl is-active libvirtd || true)
# The new libvirtd reconnects to its domains in the background after it says it started: until
# then virsh may not get an answer; once it answers, the domain must be running.
until_ok 15 virsh -c qemu:///system domstate piemu-smoke1
dom=$(virsh -c qemu:///system domstate piemu-smoke1 2>&1 | head -n 1)
s=$(prop smoke1 State)
mp1=$(mainpid)
ok=0
[ "$lv" = active ] && [ "$dom" = running ] && [ "$s" = running ] && [ "$mp1" = "$mp0" ] && ok=1
result "board stays running across a libvirtd restart" $ok "libvirtd $lv, domain $dom, smoke1 $s, piemud MainPID $mp0 -> $mp1"
gpio_both_ways smoke1 "after restarting libvirtd"
# piemud reconnects to libvirtd by itself (0.2 s, doubling): a board can be created again.
t0=$(now)
until_ok 20 piemuctl create smoke2 && ok=1 || ok=0
result "piemud reconnected to libvirtd" $ok "CreateBoard answered after $(since "$t0") s"
piemuctl delete smoke2 >/dev/null 2>&1 || true

echo "== a stranger binding the board's ports while piemud restarts"
sp=$(prop smoke1 SerialPort)
gport=$(prop smoke1 GpioPort)
listening() { # every given port has a listener on 127.0.0.1 (state 0A in /proc/net/tcp)
    local p
    for p in "$@"; do
        awk -v a="$(printf '0100007F:%04X' "$p")" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp ||
            return 1
    done
}
rm -f /tmp/squat.stop /tmp/squat.out
cp /root/squat.pl /tmp/squat.pl
chmod 0644 /tmp/squat.pl
as bob perl /tmp/squat.pl /tmp/squat.stop "$sp" "$gport" >/tmp/squat.out 2>&1 &
spid=$!
until_ok 10 grep -q '^started' /tmp/squat.out || true
r0=$(now)
systemctl restart piemud
until_ok 15 listening "$sp" "$gport" && back=yes || back=no
r1=$(now)
# A second more: QEMU dials back within a second, and a port let go of late is as bad.
sleep 1
touch /tmp/squat.stop
until_ok 10 grep -q '^attempts' /tmp/squat.out || true
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
summary=$(grep '^attempts' /tmp/squat.out || echo 'attempts=0 bound=?')
bound=$(sed -n 's/.* bound=\([0-9?]*\).*/\1/p' <<<"$summary")
attempts=$(sed -n 's/^attempts=\([0-9]*\).*/\1/p' <<<"$summary")
ok=0
# The loop said "started" before the restart and stopped a second after both ports listened again.
[ "$bound" = 0 ] && [ "${attempts:-0}" -gt 100 ] && [ "$back" = yes ] && ok=1
result "no stranger binds a board's port during a piemud restart" $ok \
    "bob tried ports $sp and $gport $attempts times from before systemctl restart piemud until 1 s after both listened again ($(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", b - a }') s after the restart began: $back); bound $bound times$(grep '^BOUND' /tmp/squat.out | head -n 3 | tr '\n' ' ' | sed 's/^/: /')"
s=$(prop smoke1 State)
v=$(guest_eval smoke1 '$((6*7))')
ok=0
[ "$s" = running ] && [ "$v" = 42 ] && ok=1
result "the board's console after that restart" $ok "smoke1 $s; echo \$((6*7)) answered '$v'"

echo "== a raspi0 board on the image piemu-build-images made here"
# The README's install block built default-armel in this container with the installed builder.
meta=$(cat /var/lib/piemu/images/default-armel/meta 2>/dev/null | tr '\n' ' ')
ok=0
for f in kernel dtb sd.img meta; do [ -f "/var/lib/piemu/images/default-armel/$f" ] || ok=2; done
[ "$ok" = 0 ] && grep -q '^models=raspi0 raspi1ap$' /var/lib/piemu/images/default-armel/meta &&
    piemuctl images | grep -q '^default-armel ' && ok=1
result "piemu-build-images made default-armel" "$([ "$ok" = 1 ] && echo 1 || echo 0)" "meta: ${meta:-none}"
# One raspi0 boot in four runs here once never reached its shell within 4 minutes (not yet
# understood; the host suite's test_models boots raspi0 on its own armel image every run): a
# second Start is allowed, and the line says when it was needed.
tries=0
v=
while [ "$tries" -lt 2 ] && [ "$v" != 42 ]; do
    tries=$((tries + 1))
    piemuctl delete zero1 >/dev/null 2>&1 || true
    out=$(piemuctl create zero1 --model=raspi0 2>&1 && piemuctl start zero1 2>&1 &&
        piemuctl wait zero1 --serial='piemu:.*# ' --timeout=2min 2>&1) || true
    v=$(guest_eval zero1 '$((6*7))')
done
ok=0
[ "$v" = 42 ] && ok=1
result "piemu-build-images' armel image boots raspi0 to a shell" $ok "boots tried: $tries; echo \$((6*7)) answered '$v' ${out:+($(tail -n 2 <<<"$out" | tr '\n' ' '))}"
piemuctl delete zero1 >/dev/null 2>&1 || true

echo "== upgrading the package with a board running"
# The same .deb again runs the package's upgrade path (prerm upgrade, the unit restarted after
# the upgrade, postinst configure) exactly as a newer version would.
mp0=$(mainpid)
qpid0=$(cat /run/libvirt/qemu/piemu-smoke1.pid 2>/dev/null)
out=$(cd /root/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall ./piemu_*.deb 2>&1) && arc=0 || arc=$?
until_ok 15 piemuctl get-pin smoke1 17 || true
s=$(prop smoke1 State)
qpid1=$(cat /run/libvirt/qemu/piemu-smoke1.pid 2>/dev/null)
mp1=$(mainpid)
ok=0
[ "$arc" = 0 ] && [ "$s" = running ] && [ -n "$qpid0" ] && [ "$qpid1" = "$qpid0" ] && [ "$mp1" != 0 ] && ok=1
result "a package upgrade keeps a running board running" $ok \
    "apt-get exit $arc; smoke1 $s; its QEMU pid $qpid0 -> $qpid1; piemud MainPID $mp0 -> $mp1$([ "$arc" = 0 ] || echo "; $(tail -n 5 <<<"$out")")"
gpio_both_ways smoke1 "after the package upgrade"

out=$(piemuctl delete smoke1 2>&1) && ok=1 || ok=0
result "delete" $ok "${out:-done}"

echo "== apt-get remove piemu"
piemuctl create smoke5 >/dev/null 2>&1 && piemuctl start smoke5 >/dev/null 2>&1
s=$(prop smoke5 State)
out=$(DEBIAN_FRONTEND=noninteractive apt-get remove -y -q cockpit-piemu piemu 2>&1) && arc=0 || arc=$?
act=$(systemctl is-active piemud 2>/dev/null || true)
dom=$(virsh -q -c qemu:///system domstate piemu-smoke5 2>&1 | head -n 1)
owner=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s org.piemu 2>&1)
ok=0
[ "$s" = running ] && [ "$arc" = 0 ] && [ "$act" != active ] && [ "$act" != activating ] &&
    [ "$dom" = "shut off" ] && [ "$owner" = "b false" ] && ok=1
result "apt-get remove stops piemud and the running boards, keeps them defined" $ok \
    "smoke5 was $s; apt-get exit $arc; piemud $act; org.piemu owned: $owner; domain piemu-smoke5: $dom; $(grep -m1 'stopped .* running board' <<<"$out" || echo 'no word from prerm')"

echo "== reinstalling piemu finds its boards again"
out=$(cd /root/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./piemu_*.deb ./cockpit-piemu_*.deb 2>&1) && arc=0 || arc=$?
s=$(prop smoke5 State)
out2=$(piemuctl start smoke5 2>&1) && src=0 || src=$?
s2=$(prop smoke5 State)
ok=0
[ "$arc" = 0 ] && [ "$s" = stopped ] && [ "$src" = 0 ] && [ "$s2" = running ] && ok=1
result "reinstalling finds the board again, and it starts" $ok "apt-get exit $arc; smoke5 $s, after Start $s2 ${out2:+($out2)}"
# smoke5 stays running: the host powers the container off with it (piemu-boards-poweroff.service).

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
