#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd path, tested: boots a fresh Debian 12 systemd container (systemd-nspawn of a cached
# mmdebstrap root), installs piemu's Debian packages built from this tree with apt, sets piemu up
# the way its README says, and runs an end-to-end smoke inside it
# (tests/system/systemd-host/smoke.sh): the hardened unit, D-Bus activation through systemd, a
# raspi3b board with qtest GPIO both ways, a one-file image import, a user in group piemu and a
# stranger, `systemctl restart piemud` and `systemctl restart libvirtd` with a board running, and a
# stranger trying to bind a running board's ports while piemud restarts.
#
# Usage, as root on the host (a Debian 12 without systemd as PID 1 is fine: the container brings
# its own):
#   tests/system/systemd-host.sh [--debs DIR] [--no-fdstore]
#     --debs DIR   install piemu_*.deb and cockpit-piemu_*.deb from DIR instead of building them
#                  with tools/build-debs.sh
#     --no-fdstore a check of the check: piemud's unit gets FileDescriptorStoreMax=0 in the
#                  container, so its listening sockets close during a restart, and the smoke's
#                  "no stranger binds a board's port" must FAIL (the run then fails)
# Environment: PIEMU_NSPAWN_CACHE (default /var/cache/piemu/nspawn) holds the root, keyed by a hash
# of the recipe below; PIEMU_NSPAWN_WORK (default /var/tmp) is where each run's copy lives.
#
# Never run it beside the host suite's libvirtd tests (tools/run-tests.sh): the container shares
# the host's network namespace and loopback ports, and a test that signals libvirtd by name would
# hit the container's libvirtd too.
#
# Costs, measured on 2 busy cores: the first run builds the root with mmdebstrap (95 s, 550 MB under
# the cache) and the packages (tools/build-debs.sh, 45-90 s; again whenever a tracked file of the
# tree changed, a hash check otherwise): about 4 minutes in all. A cached run: boot 1 s, install
# 5-17 s, smoke 9-23 s (two short raspi3b boots under TCG), teardown 2 s; 27 s with --debs.
# Each phase prints what it cost.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${PIEMU_NSPAWN_CACHE:-/var/cache/piemu/nspawn}
workbase=${PIEMU_NSPAWN_WORK:-/var/tmp}
debs_dir=
no_fdstore=0
while [ $# -gt 0 ]; do
    case $1 in
    --debs) debs_dir=$(cd "$2" && pwd); shift 2 ;;
    --debs=*) debs_dir=$(cd "${1#--debs=}" && pwd); shift ;;
    --no-fdstore) no_fdstore=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "systemd-host: unknown argument $1" >&2; exit 2 ;;
    esac
done

say() { printf 'systemd-host: %s\n' "$*"; }
die() { printf 'systemd-host: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, systemd-nspawn, mounts)"

# The host's tools. systemd-container from bookworm, named so: bookworm-backports' 254 would bring
# systemd, udev and libsystemd0 254 with it (FACTS.md).
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container/bookworm)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v nsenter >/dev/null || missing+=(util-linux)
for t in sfdisk mkfs.vfat mcopy xz; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    pkgs=()
    for m in "${missing[@]}"; do
        case $m in
        sfdisk) pkgs+=(fdisk) ;; mkfs.vfat) pkgs+=(dosfstools) ;; mcopy) pkgs+=(mtools) ;;
        xz) pkgs+=(xz-utils) ;; *) pkgs+=("$m") ;;
        esac
    done
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends "${pkgs[@]}"
fi

# --- phases and their cost -----------------------------------------------------------------------
declare -a costs=()
phase_name=''
phase_t0=''
phase() {
    phase_end
    phase_name=$1
    phase_t0=$(date +%s.%N)
    printf '\n==> %s\n' "$1"
}
phase_end() {
    [ -n "$phase_name" ] || return 0
    local s
    s=$(awk -v a="$phase_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    costs+=("$(printf '%-8s %7s s' "$phase_name" "$s")")
    say "cost of $phase_name: $s s"
    phase_name=
}
print_costs() {
    phase_end
    printf '\nsystemd-host: cost per phase\n'
    local c
    for c in "${costs[@]}"; do printf '  %s\n' "$c"; done
}

# --- the root ------------------------------------------------------------------------------------
# Everything the container needs, pre-installed so that a cached run only installs piemu's own two
# packages: systemd (booted by nspawn), the bus, polkit, apt, and what piemu's packages depend on.
# libvirt 11.3 and QEMU 10 come from bookworm-backports, named one by one exactly as
# tools/install-deps.sh names them (never "-t bookworm-backports": that moves systemd to 254).
# Changing these lists or the recipe changes the cache key and rebuilds the root.
root_pkgs=(
    systemd systemd-sysv dbus polkitd pkexec apt ca-certificates systemd-container
    openssl libgnutls30 libxml2 liblzma5 libfdt1 libblkid1 libseccomp2 mtools logrotate
    debian-archive-keyring cpio device-tree-compiler e2fsprogs kmod python3 xz-utils zstd
    cockpit-bridge
)
root_bpo=(
    libvirt-common libvirt0 libvirt-clients
    libvirt-daemon libvirt-daemon-common libvirt-daemon-log libvirt-daemon-system
    libvirt-daemon-driver-qemu libvirt-daemon-driver-network libvirt-daemon-config-network
    libvirt-daemon-driver-nwfilter libvirt-daemon-config-nwfilter libvirt-daemon-driver-nodedev
    libvirt-daemon-driver-secret libvirt-daemon-driver-storage
    qemu-system-arm qemu-system-x86 qemu-system-common qemu-system-data seabios qemu-utils
)
root_not=(libvirt-daemon-driver-storage-disk- qemu-block-extra-)
mirror=http://deb.debian.org/debian
sources=(
    "deb $mirror bookworm main"
    "deb $mirror bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main"
)

# Runs inside mmdebstrap's customize stage ($1 = the root; services are kept from starting there).
customize_root() {
    local r=$1
    # The backports suite in its own list, as an admin following the README has it.
    echo "deb $mirror bookworm-backports main" >"$r/etc/apt/sources.list.d/bookworm-backports.list"
    # The registries here are reached through a proxy with its own CA: the container needs it
    # wherever the host has one (and the npm registry's settings).
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/"
        chroot "$r" update-ca-certificates >/dev/null
    fi
    if [ -f /etc/npmrc ]; then cp /etc/npmrc "$r/etc/npmrc"; fi
    # The container shares the host's network namespace (no CAP_NET_ADMIN in it): libvirt's default
    # NAT network could not come up there, and must not fight the host's virbr0 if it could.
    rm -f "$r/etc/libvirt/qemu/networks/autostart/default.xml"
    # A name of its own that resolves (libvirtd looks its host name up), and no machine-id: each
    # boot makes one.
    echo piemu-sdhost >"$r/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 piemu-sdhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
    : >"$r/etc/machine-id"
}

recipe_key() {
    {
        echo "recipe 1"
        declare -p root_pkgs root_bpo root_not sources
        declare -f customize_root
        apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' || true
    } | sha256sum | cut -c1-16
}

build_root() {
    local dest=$1 tmp=$1.tmp.$$ aptopts=() inc=()
    rm -rf -- "$tmp"
    # This machine's apt trusts a mirror whose Release files may be older than their Valid-Until:
    # the container does as the host does.
    while read -r line; do aptopts+=(--aptopt="$line"); done < <(apt-config dump |
        grep -E '^Acquire::Check-(Valid-Until|Date) ')
    inc=("${root_pkgs[@]}" "${root_bpo[@]/%//bookworm-backports}" "${root_not[@]}")
    { declare -p mirror; declare -f customize_root; echo 'customize_root "$1"'; } >"$dest.hook"
    # The backports suite must be known while --include is resolved: a setup hook adds it before
    # mmdebstrap's "apt update".
    mmdebstrap --variant=minbase --mode=root "${aptopts[@]}" \
        --setup-hook="echo 'deb $mirror bookworm-backports main' >\"\$1/etc/apt/sources.list.d/bookworm-backports.list\"" \
        --include="${inc[*]}" \
        --customize-hook="bash $dest.hook \"\$1\"" \
        bookworm "$tmp" "${sources[@]}"
    rm -f -- "$dest.hook"
    mv -T -- "$tmp" "$dest"
}

# --- a run -----------------------------------------------------------------------------------------
name=piemu-sdhost-$$
run=
merged=
nspawn_pid=
cpid=

cexec() {
    # A command inside the container, with a clean environment (the host's is not the container's).
    nsenter -t "$cpid" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 HOME=/root TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

# wait_gone PID SECONDS: polls until PID has exited (it is our child: reaped by wait).
wait_gone() {
    local pid=$1 n=$(($2 * 10))
    while [ "$n" -gt 0 ]; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# The container's processes, found through its PID namespace (no names): none may outlive a run.
pidns=
left_in_container() {
    [ -n "$pidns" ] || return 1
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$pidns" ] && return 0
    done
    return 1
}

teardown() {
    local rc=$?
    set +e
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        phase teardown
        if [ -n "$cpid" ]; then
            cexec journalctl -b --no-pager -o short-monotonic >"$run/journal.log" 2>&1
            # Boards a failed smoke left running: libvirt-guests would otherwise hold the poweroff
            # for minutes trying to shut them down gracefully (raspi machines have no ACPI).
            for d in $(cexec timeout 30 virsh -q -c qemu:///system list --name 2>/dev/null); do
                case $d in piemu-*) cexec timeout 30 virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1 ;; esac
            done
            # A clean poweroff (piemud, libvirtd and QEMU stop in order), bounded.
            cexec systemctl poweroff --no-block >/dev/null 2>&1
        fi
        if ! wait_gone "$nspawn_pid" 10 && [ -n "$cpid" ]; then
            # Slow: say what the poweroff waits for.
            say "the container is still powering off after 10 s; its jobs:"
            cexec systemctl list-jobs --no-pager 2>&1 | sed 's/^/    /'
        fi
        if ! wait_gone "$nspawn_pid" 50; then
            # SIGKILL to the container's PID 1 ends its whole PID namespace; nspawn then exits.
            # (SIGKILL to nspawn itself would leave the container running without it.)
            say "FAIL: the container did not power off within 60 s: SIGKILL to its PID 1 ($cpid)"
            rc=1
            [ -z "$cpid" ] || kill -KILL "$cpid"
            if ! wait_gone "$nspawn_pid" 30; then
                say "nspawn ($nspawn_pid) still there 30 s later: SIGKILL"
                kill -KILL "$nspawn_pid"
                wait_gone "$nspawn_pid" 10
            fi
        fi
        wait "$nspawn_pid" 2>/dev/null
        for _ in $(seq 1 50); do left_in_container || break; sleep 0.1; done
        if left_in_container; then
            say "FAIL: processes of the container are left:"
            for p in /proc/[0-9]*; do
                [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$pidns" ] && echo "  ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline")"
            done
            rc=1
        fi
    fi
    if [ -n "$merged" ] && mountpoint -q "$merged"; then
        umount "$merged" || umount -l "$merged"
    fi
    if [ -n "$run" ]; then
        # The logs of the last run stay for a look afterwards (console, apt, journal, build).
        rm -rf -- "$workbase/piemu-systemd-host.last"
        mkdir -p "$workbase/piemu-systemd-host.last"
        cp "$run"/*.log "$workbase/piemu-systemd-host.last/" 2>/dev/null
        rm -rf --one-file-system -- "$run"
    fi
    [ -z "${costs[*]:-}" ] || print_costs
    [ "$rc" = 0 ] || say "logs of this run: $workbase/piemu-systemd-host.last/"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

mkdir -p "$cache"

# --- phase: root -----------------------------------------------------------------------------------
phase root
key=$(recipe_key)
root=$cache/bookworm-$key
if [ -d "$root" ]; then
    say "cached root $root"
else
    say "building $root (mmdebstrap; the first run only, or after the recipe changed)"
    build_root "$root" >"$cache/build-$key.log" 2>&1 || {
        tail -n 40 "$cache/build-$key.log" >&2
        die "mmdebstrap failed (log: $cache/build-$key.log)"
    }
    # Roots of older recipes are of no further use.
    for old in "$cache"/bookworm-* "$cache"/build-*.log; do
        case $old in "$root" | "$cache/build-$key.log") ;; *) rm -rf --one-file-system -- "$old" ;; esac
    done
fi

# --- phase: debs -----------------------------------------------------------------------------------
phase debs
run=$(mktemp -d "$workbase/piemu-systemd-host.XXXXXX")
mkdir -p "$run/upper" "$run/work" "$run/merged" "$run/debs"
if [ -n "$debs_dir" ]; then
    cp "$debs_dir"/piemu_*.deb "$debs_dir"/cockpit-piemu_*.deb "$run/debs/"
else
    # Built from the working tree; tools/build-debs.sh keeps them in the cache and rebuilds only
    # when the tree (or its tools) changed.
    "$top/tools/build-debs.sh" "$cache/debs" >"$run/debs.list" 2>"$run/build-debs.log" || {
        tail -n 40 "$run/build-debs.log" >&2
        die "tools/build-debs.sh failed"
    }
    tail -n 3 "$run/build-debs.log" | sed 's/^/    /'
    xargs cp -t "$run/debs/" <"$run/debs.list"
fi
ls "$run/debs"/piemu_*.deb "$run/debs"/cockpit-piemu_*.deb >/dev/null 2>&1 ||
    die "no piemu_*.deb and cockpit-piemu_*.deb to install"
say "packages: $(cd "$run/debs" && echo *.deb)"
# The host's default images are copied into the container (below); tools/setup.sh may be building
# them right now: wait for them, bounded (PIEMU_IMAGES_WAIT seconds, default 900).
imgsrc=/var/lib/piemu/images/default/dtb
n=$((${PIEMU_IMAGES_WAIT:-900} * 2))
while [ ! -f /var/lib/piemu/images/default/meta ] && [ "$n" -gt 0 ]; do
    [ $((n % 120)) != 0 ] || say "waiting for the host's default image (/var/lib/piemu/images/default/meta)"
    sleep 0.5
    n=$((n - 1))
done
[ -f "$imgsrc" ] || die "no $imgsrc: the host's default images are built by tools/setup.sh"
# The one-file import's image: small, Raspberry Pi OS-shaped, built as the unit tests build it.
bash "$top/tests/unit/make-extract-images.sh" "$run/import" "$imgsrc" >/dev/null

# --- phase: boot -----------------------------------------------------------------------------------
phase boot
# Each run works on an overlay over the cached root: the cache stays as built.
mount -t overlay overlay -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/work" "$run/merged"
merged=$run/merged
# libvirt inside an nspawn container cannot create cgroup v1 controllers here ("Failed to create v1
# controller cpu for group: Read-only file system": nspawn mounts the host's v1 hierarchies
# read-only), so QEMU would never start. Only for this test: libvirt then puts QEMU in no cgroup of
# its own, which costs the resource accounting and limits a real host has.
printf '\n# tests/system/systemd-host.sh: no cgroup v1 controllers inside an nspawn container\ncgroup_controllers = [ ]\n' \
    >>"$merged/etc/libvirt/qemu.conf"
# The host's default guest images, already built (tools/setup.sh): copied rather than built again,
# except default-armel, which the README's piemu-build-images line builds in the container (for that
# one architecture: the installed builder, its models table, the packaged shim and the private
# apt index are the same code for all three). The host's download cache comes along, so that
# only the apt index is fetched.
mkdir -p "$merged/root/piemu-images" "$merged/var/cache/piemu"
for d in /var/lib/piemu/images/default*; do
    [ -f "$d/meta" ] || continue
    [ "$(basename "$d")" != default-armel ] || continue
    cp -a "$d" "$merged/root/piemu-images/"
done
for c in debs apt-armel; do
    [ ! -d "/var/cache/piemu/$c" ] || cp -a "/var/cache/piemu/$c" "$merged/var/cache/piemu/"
done
[ -d "$merged/root/piemu-images/default" ] || die "no default image on the host to copy"
cp -a "$run/debs" "$merged/root/debs"
cp "$run/import/good.img.xz" "$run/import/files/kernel8.img" "$merged/root/"
cp "$here/systemd-host/smoke.sh" "$here/systemd-host/squat.pl" "$merged/root/"

systemd-nspawn -D "$merged" --register=no --keep-unit -b -M "$name" --resolv-conf=copy-host \
    --console=read-only </dev/null >"$run/console.log" 2>&1 &
nspawn_pid=$!
# The container's PID 1 is nspawn's child once it has become systemd.
for _ in $(seq 1 300); do
    for c in $(cat /proc/"$nspawn_pid"/task/*/children 2>/dev/null); do
        if [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ]; then cpid=$c; fi
    done
    [ -n "$cpid" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$run/console.log" >&2; die "nspawn exited"; }
    sleep 0.1
done
[ -n "$cpid" ] || { tail -n 30 "$run/console.log" >&2; die "no systemd inside the container after 30 s"; }
pidns=$(readlink "/proc/$cpid/ns/pid")
say "container $name: nspawn $nspawn_pid, its systemd $cpid ($pidns)"
# The bus socket appears a moment after PID 1 starts; is-system-running needs it. 120 s in all.
state=
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(cexec timeout $((deadline - SECONDS + 1)) systemctl is-system-running --wait 2>/dev/null) && break
    case $state in degraded | running) break ;; esac
    sleep 0.1
done
say "system state: ${state:-unknown}"
case $state in
running) ;;
degraded) cexec systemctl --failed --no-legend --no-pager || true ;;
*) tail -n 30 "$run/console.log" >&2; die "the container's systemd did not finish booting" ;;
esac

# --- phase: install --------------------------------------------------------------------------------
phase install
cexec apt-get -q update >"$run/apt.log" 2>&1 || { tail -n 20 "$run/apt.log" >&2; die "apt-get update failed"; }
# README's "Install from packages" block, run as it says (as root, in the directory holding the
# .deb files), except that its image build is for armel only (the other images are the host's,
# copied: building all three again costs minutes). Until README has that section: the same apt
# line by hand, and the TLS set-up command the package names.
block=$(awk '/^## Install from packages/ { s = 1; next } s && /^## / { exit }
    s && /^```/ { if (b) exit; b = 1; next } s && b { print }' "$top/README.md")
if [ -n "$block" ]; then
    say "README's Install from packages block, its image build for armel only:"
    sed -E 's/^piemu-build-images([[:space:]]|$)/piemu-build-images --arch armel\1/' <<<"$block" >"$merged/root/install.sh"
    grep -q '^piemu-build-images --arch armel' "$merged/root/install.sh" ||
        die "README's Install from packages block has no piemu-build-images line"
    sed 's/^/    /' "$merged/root/install.sh"
else
    say "README has no Install from packages section yet: apt-get install and piemu-setup-tls"
    {
        echo "apt-get install -y ./piemu_*.deb ./cockpit-piemu_*.deb \\"
        echo "    ${root_bpo[*]/%//bookworm-backports}"
        echo piemu-setup-tls
    } >"$merged/root/install.sh"
fi
cexec bash -c 'set -euxo pipefail; cd /root/debs; . /root/install.sh' >>"$run/apt.log" 2>&1 ||
    { tail -n 40 "$run/apt.log" >&2; die "installing failed (log above)"; }
cexec dpkg-query -W piemu cockpit-piemu
cexec grep -H '^[^#]*chardev_tls_x509_cert_dir' /etc/libvirt/qemu.conf ||
    die "piemu-setup-tls did not point qemu.conf at QEMU's certificates"
# The images into the catalog, owned by the daemon's user as built ones are.
cexec sh -c 'cp -a /root/piemu-images/. /var/lib/piemu/images/ && chown -R piemu:piemu /var/lib/piemu/images'
cexec systemctl try-restart piemud

if [ "$no_fdstore" = 1 ]; then
    say "--no-fdstore: piemud's unit without the fd store (the port check must fail)"
    mkdir -p "$merged/etc/systemd/system/piemud.service.d"
    printf '[Service]\nFileDescriptorStoreMax=0\n' >"$merged/etc/systemd/system/piemud.service.d/no-fdstore.conf"
    cexec systemctl daemon-reload
fi

# --- phase: smoke ----------------------------------------------------------------------------------
phase smoke
smoke_rc=0
cexec bash /root/smoke.sh || smoke_rc=$?
if [ "$smoke_rc" != 0 ]; then
    say "the smoke failed; piemud's and libvirtd's journal:"
    cexec journalctl -u piemud -u libvirtd --no-pager -n 60 || true
    exit "$smoke_rc"
fi

# --- phase: shutdown -------------------------------------------------------------------------------
# The smoke left a board running. An emulated Pi has no power button, so without
# piemu-boards-poweroff.service libvirt-guests (enabled by libvirt-daemon-system, ON_SHUTDOWN=shutdown)
# would wait 300 s for it; measured here before that unit existed: the poweroff hung for more than
# 90 s. With it the board is powered off first and the host goes down at once.
phase shutdown
running=$(cexec virsh -q -c qemu:///system list --name 2>/dev/null | grep -c '^piemu-' || true)
guests=$(cexec systemctl is-active libvirt-guests 2>/dev/null || true)
unit=$(cexec systemctl is-active piemu-boards-poweroff 2>/dev/null || true)
cexec journalctl -b --no-pager -o short-monotonic >"$run/journal.log" 2>&1
t0=$(date +%s.%N)
cexec systemctl poweroff --no-block >/dev/null 2>&1
if wait_gone "$nspawn_pid" 60; then
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    say "PASS: the host powers off with $running board(s) running in $took s (libvirt-guests $guests, piemu-boards-poweroff $unit)"
    [ "$running" -ge 1 ] && [ "$guests" = active ] && [ "$unit" = active ] ||
        { say "FAIL: the check needs a running board, libvirt-guests and piemu-boards-poweroff active"; exit 1; }
else
    say "FAIL: the host did not power off within 60 s with $running board(s) running (libvirt-guests $guests, piemu-boards-poweroff $unit)"
    exit 1
fi
exit 0
