#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# piemu under AppArmor, on a kernel that has it: boots a Debian 12 amd64 VM (QEMU under TCG, the
# one way to a Debian kernel here: see FACTS.md) with stock bookworm + the bookworm-backports
# libvirt 11.3 / QEMU 10 that tools/install-deps.sh names, piemu installed from this tree, and
# the default guest image; inside, tests/system/apparmor-vm/inside.sh checks that AppArmor and
# libvirt's apparmor security driver are on, starts raspi3b boards as a user in group piemu, does
# GPIO over qtest, checks each QEMU's libvirt-<uuid> profile and that the kernel logged no
# AppArmor denial. It prints PASS/FAIL per check and "N passed, N failed"; exits non-zero on any
# failure, a missing summary or a timeout.
#
#   tests/system/apparmor-vm.sh [--without-apparmor-files] [--tree DIR] [--meson] [--timeout SECONDS]
#
#   piemu is installed as the Debian packages tools/build-debs.sh makes from the tree (apt-get
#   install in the root, so their dependencies and maintainer scripts run as on a real host);
#   --meson installs the build tree (meson install) instead, the only way for a tree that is no
#   git checkout or has no debian/.
#   --without-apparmor-files  leave piemu's /etc/apparmor.d files out of the VM (the negative run:
#                             it must fail with the denials of issue 19)
#   --tree DIR                build piemu from DIR instead of this checkout (e.g. an older commit
#                             unpacked with git archive)
#
# Needs root, mmdebstrap, qemu-system-x86_64, e2fsprogs, the host's build dependencies
# (tools/install-deps.sh) and the default guest image (/var/lib/piemu/images/default, made by
# tools/setup.sh). Caches under /var/cache/piemu/aa-vm (PIEMU_AA_CACHE), keyed by hashes of the
# inputs: the Debian root (by package list) and the disk (by root, tree, image and test files).
# Cost, measured on 2 cores: a first run ~7 min (Debian root 2 min, packages 3-4 min, apt-get
# install and disk ~1 min, VM ~1.5 min); with the root cached and the tree changed ~2.5 min
# (packages again when build-debs.sh's inputs changed, disk 30 s, VM); everything cached ~1.5 min:
# the VM, booting in ~30 s under TCG and testing in ~1 min (it waits for no guest to boot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
tree=$top
cache=${PIEMU_AA_CACHE:-/var/cache/piemu/aa-vm}
images=${PIEMU_AA_IMAGES:-/var/lib/piemu/images}
timeout=${PIEMU_AA_TIMEOUT:-2400}
without_aa=0
use_meson=0
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security

while [ $# -gt 0 ]; do
    case $1 in
        --without-apparmor-files) without_aa=1 ;;
        --tree) tree=$(cd "$2" && pwd); shift ;;
        --meson) use_meson=1 ;;
        --timeout) timeout=$2; shift ;;
        *) echo "usage: $0 [--without-apparmor-files] [--tree DIR] [--meson] [--timeout SECONDS]" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'apparmor-vm: %s\n' "$*"; }
die() { printf 'apparmor-vm: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap, chroot, mkfs)"
for t in mmdebstrap qemu-system-x86_64 mkfs.ext4 meson ninja; do
    command -v "$t" >/dev/null || die "$t is missing (tools/install-deps.sh)"
done
[ -f "$images/default/sd.img" ] || die "no default guest image in $images/default (tools/setup.sh builds it)"
mkdir -p "$cache"
t0=$(date +%s)

# libvirt and QEMU from bookworm-backports, exactly the packages install-deps.sh names.
mapfile -t bpo < <(sed -n '/^bpo=(/,/^)/p' "$tree/tools/install-deps.sh" | sed '1d;$d' | tr ' ' '\n' | sed '/^$/d')
[ ${#bpo[@]} -gt 5 ] || die "cannot read the bpo list from $tree/tools/install-deps.sh"
# What piemu needs at run time (its libraries, mtools for the extractor, openssl for TLS set-up)
# and what a stock Debian host has: systemd, the kernel, AppArmor (a Recommends of the kernel,
# which mmdebstrap does not install by itself), dbus, polkitd.
base_pkgs=(systemd systemd-sysv udev dbus polkitd linux-image-amd64 initramfs-tools apparmor
    kmod procps iproute2 e2fsprogs openssl ca-certificates libgnutls30 libxml2 liblzma5 libfdt1
    libblkid1 libseccomp2 mtools dosfstools)

base_key=$(printf '%s\n' v1 "${base_pkgs[@]}" "${bpo[@]}" | sha256sum | cut -c1-16)
base=$cache/base-$base_key
if [ ! -f "$base/.complete" ]; then
    say "building the Debian 12 root ($base_key; a few minutes, once)"
    includes=$(printf '%s,' "${base_pkgs[@]}" "${bpo[@]/%//bookworm-backports}")
    # setup-hook: the apt sources of a stock host plus backports; the bpo packages are named
    # with /bookworm-backports, so only they and what they need move.
    rm -rf "$base.tmp"
    mmdebstrap --variant=apt --include="${includes%,}" \
        --customize-hook='chroot "$1" apt-get clean' \
        bookworm "$base.tmp" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" "deb $mirror bookworm-backports main" \
        >"$cache/mmdebstrap.log" 2>&1 || { tail -30 "$cache/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $cache/mmdebstrap.log)"; }
    touch "$base.tmp/.complete"
    rm -rf "$base"
    mv "$base.tmp" "$base"
    for old in "$cache"/base-*; do
        [ "$old" = "$base" ] || rm -rf "$old"
    done
fi
t_base=$(date +%s)

# The tree's own files (tracked and new, not ignored), by content: a rebuild when any changes.
tree_key=$(cd "$tree" && if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
        git ls-files -co --exclude-standard -z | LC_ALL=C sort -z | xargs -0 sha256sum 2>/dev/null
    else
        find . -type f -not -path './build*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    fi | sha256sum | cut -c1-16)
image_key=$(cat "$images/default/.piemu-build-stamp" "$images/default/meta" 2>/dev/null | sha256sum | cut -c1-16)
inside_key=$(cat "$here/apparmor-vm/"* "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
if [ "$use_meson" = 0 ] && { [ ! -x "$tree/tools/build-debs.sh" ] || [ ! -d "$tree/debian" ] ||
    ! git -C "$tree" rev-parse --git-dir >/dev/null 2>&1; }; then
    say "no tools/build-debs.sh or no git checkout in $tree: installing with meson"
    use_meson=1
fi
disk_key=$(printf '%s\n' "$base_key" "$tree_key" "$image_key" "$inside_key" "$without_aa" "$use_meson" |
    sha256sum | cut -c1-16)
disk=$cache/disk-$disk_key.img

if [ ! -s "$disk" ]; then
    say "building the VM disk ($disk_key)"
    tag=$(printf '%s' "$tree" | sha256sum | cut -c1-8)
    root=$cache/root
    if [ "$use_meson" = 1 ]; then
        build=$cache/build-$tag
        if [ ! -f "$build/build.ninja" ]; then
            meson setup "$build" "$tree" --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
                --buildtype=debugoptimized -Dcockpit=disabled >"$cache/meson-setup.log" 2>&1 ||
                { tail -30 "$cache/meson-setup.log" >&2; die "meson setup failed"; }
        fi
        ninja -C "$build" >"$cache/ninja.log" 2>&1 || { tail -30 "$cache/ninja.log" >&2; die "build failed"; }
    else
        # --nocheck: the unit tests are the suite's job, not this test's.
        debs_dir=$cache/debs-$tag
        mapfile -t debs < <("$tree/tools/build-debs.sh" --nocheck "$debs_dir" 2>"$cache/build-debs.log" | tail -n 2)
        [ ${#debs[@]} = 2 ] && [ -s "${debs[0]}" ] || { tail -30 "$cache/build-debs.log" >&2; die "build-debs.sh failed"; }
    fi
    rm -rf "$root"
    cp -a "$base" "$root"
    rm -f "$root/.complete"
    if [ "$use_meson" = 1 ]; then
        meson install -C "$build" --destdir "$root" --quiet >"$cache/install.log" 2>&1 ||
            { tail -30 "$cache/install.log" >&2; die "meson install failed"; }
        # What the package's postinst does: the system user and groups (piemu in libvirt, for
        # libvirtd's socket).
        chroot "$root" systemd-sysusers >/dev/null 2>&1
        chroot "$root" sh -c 'id -nG piemu | grep -qw libvirt || usermod -a -G libvirt piemu'
    else
        # As an admin would: apt-get install of the .deb files (their dependencies from the
        # archive, their maintainer scripts run), here in a chroot of the root before it boots.
        cp "${debs[0]}" "$root/tmp/"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        mount -t proc proc "$root/proc"
        trap 'umount "$root/proc" 2>/dev/null || true' EXIT
        { chroot "$root" apt-get -q update && chroot "$root" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "/tmp/${debs[0]##*/}" &&
            chroot "$root" apt-get clean; } >"$cache/apt-install.log" 2>&1 ||
            { umount "$root/proc"; tail -30 "$cache/apt-install.log" >&2; die "apt-get install of ${debs[0]##*/} failed"; }
        umount "$root/proc"
        trap - EXIT
        rm -f "$root/tmp/${debs[0]##*/}"
        rm -rf "$root"/var/lib/apt/lists/*
    fi
    if [ "$without_aa" = 1 ]; then
        rm -rf "$root/etc/apparmor.d/abstractions/libvirt-qemu.d"
        say "without piemu's AppArmor files (negative run)"
    fi
    # The admin's steps (TLS for libvirt, a user in group piemu) are the test's, inside the VM.
    install -d "$root/var/lib/piemu/images"
    cp -a "$images/default" "$root/var/lib/piemu/images/default"
    chroot "$root" chown -R piemu:piemu /var/lib/piemu/images
    install -D -m 0755 "$here/apparmor-vm/inside.sh" "$root/usr/local/lib/piemu-aa-test/inside.sh"
    install -D -m 0755 "$tree/tools/setup-tls.sh" "$root/usr/local/lib/piemu-aa-test/setup-tls.sh"
    install -D -m 0644 "$here/apparmor-vm/piemu-aa-test.service" "$root/etc/systemd/system/piemu-aa-test.service"
    ln -sf ../piemu-aa-test.service "$root/etc/systemd/system/multi-user.target.wants/piemu-aa-test.service"
    # The console is the test's report: no login prompt on it.
    ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
    echo piemu-aa > "$root/etc/hostname"
    echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"
    kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
    cp "$kernel" "$disk.vmlinuz"
    cp "$root/boot/initrd.img-${kernel##*/vmlinuz-}" "$disk.initrd"
    # Room for two boards' overlays and logs besides the root.
    size_mb=$(( $(du -sm "$root" | cut -f1) + 1536 ))
    rm -f "$disk.tmp"
    truncate -s "${size_mb}M" "$disk.tmp"
    mkfs.ext4 -q -F -L piemu-aa -d "$root" "$disk.tmp"
    mv "$disk.tmp" "$disk"
    rm -rf "$root"
    # One disk at a time (each is ~2 GB, sparse).
    for old in "$cache"/disk-*.img; do
        [ "$old" = "$disk" ] || rm -f "$old" "$old.vmlinuz" "$old.initrd"
    done
fi
t_disk=$(date +%s)

log=$cache/console-$disk_key.log
rm -f "$log"
say "booting the VM (TCG, 2 vCPUs, 6 GiB; console log: $log; at most ${timeout}s)"
# snapshot=on: the cached disk stays as built; the run's writes go to a temporary file.
setsid qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 6G \
    -kernel "$disk.vmlinuz" -initrd "$disk.initrd" \
    -append 'root=/dev/vda rw console=ttyS0 quiet systemd.show_status=error' \
    -drive "file=$disk,if=virtio,format=raw,snapshot=on" -nic none \
    -display none -serial "file:$log" -no-reboot </dev/null >"$cache/qemu.out" 2>&1 &
qemu_pid=$!
cleanup() {
    if kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$qemu_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# Who to stop from outside: this script's PID (its EXIT trap stops the VM).
echo $$ >"$cache/run.pid"

# The VM powers itself off after the summary; wait for that, the summary, or the time limit.
deadline=$((SECONDS + timeout))
summary=
while [ $SECONDS -lt $deadline ]; do
    summary=$(grep -aoE 'piemu-aa: [0-9]+ passed, [0-9]+ failed' "$log" 2>/dev/null | tail -n 1 || true)
    [ -n "$summary" ] && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 2
done
# Give the VM a bounded moment to power off by itself.
if [ -n "$summary" ]; then
    for _ in $(seq 1 60); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
fi
cleanup
trap - EXIT
t_end=$(date +%s)

grep -a 'piemu-aa: ' "$log" | tr -d '\r' || true
say "times: root $((t_base - t0))s, disk $((t_disk - t_base))s, VM $((t_end - t_disk))s, total $((t_end - t0))s"
if [ -z "$summary" ]; then
    tail -n 40 "$log" | tr -d '\r' >&2 || true
    die "FAIL: no summary from the VM (timeout ${timeout}s or the VM stopped); console log: $log"
fi
passed=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
if [ "$failed" != 0 ] || [ "$passed" = 0 ]; then
    die "FAIL: $passed passed, $failed failed (console log: $log)"
fi
say "PASS: $passed checks passed"
