#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The packages' life cycle without systemd as PID 1: in a throwaway Debian 12 chroot (mmdebstrap,
# cached as a tarball), the README's "Install from packages" commands install piemu and
# cockpit-piemu with apt (libvirt and QEMU from bookworm-backports, systemd staying at 252), and
# then remove, reinstall, upgrade and purge them, checking each step: the user and its groups, the
# directories and TLS credentials, qemu.conf left to the admin's piemu-setup-tls, piemud (activated
# by the chroot's own dbus-daemon) stopped on remove and restarted on upgrade, board domains stopped
# and kept on remove and undefined on purge (by the chroot's own libvirtd), purge with libvirtd
# away. The systemd path is tests/system/systemd-host.sh's.
#
#   tools/test-debs-chroot.sh [--images]
#     --images  also run piemu-build-images in the chroot (downloads the arm64/armhf/armel indexes;
#               the .debs come from the host's /var/cache/piemu/debs when it has them)
# Cache: /var/cache/piemu/pkgtest (base tarball, packages, the chroot of the last run).
# Costs: first run ~1 min for the base tarball and ~1.5 min for the two package builds, then
# ~3 min of apt in the chroot (375 packages); --images adds a few minutes.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=/var/cache/piemu/pkgtest
root=$cache/root
images=0
[ "${1:-}" != --images ] || images=1
say() { printf 'test-debs-chroot: %s\n' "$*"; }
die() { printf 'test-debs-chroot: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, chroot, mounts)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
mkdir -p "$cache"

# The base: bookworm as debootstrap's "important" variant would make it, plus the CA certificates.
base=$cache/bookworm-base.tar
if [ ! -s "$base" ]; then
    say "making $base with mmdebstrap"
    mmdebstrap --variant=important --include=ca-certificates \
        --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
        bookworm "$base.tmp" "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main" >"$cache/mmdebstrap.log" 2>&1 ||
        die "mmdebstrap failed (see $cache/mmdebstrap.log)"
    mv "$base.tmp" "$base"
fi

# The packages: the tree's version and a later one for the upgrade.
"$top/tools/build-debs.sh" "$cache/v1" >"$cache/v1.list" || die "build-debs failed"
"$top/tools/build-debs.sh" --nocheck --version "$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)+upgrade1" \
    "$cache/v2" >"$cache/v2.list" || die "build-debs (v2) failed"

rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The registries may sit behind this host's TLS interception: its CA bundle goes in too.
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
[ ! -f /etc/npmrc ] || cp /etc/npmrc "$root/etc/npmrc"
# No init system in a chroot: maintainer scripts must not start services.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/debs/v1" "$root/debs/v2"
cp $(cat "$cache/v1.list") "$root/debs/v1/"
cp $(cat "$cache/v2.list") "$root/debs/v2/"
if [ "$images" = 1 ] && [ -d /var/cache/piemu/debs ]; then
    mkdir -p "$root/var/cache/piemu/debs"
    cp /var/cache/piemu/debs/*.deb "$root/var/cache/piemu/debs/" 2>/dev/null || true
fi
cp "$top/tools/test-debs-chroot-inside.sh" "$root/inside.sh"

# A pid and mount namespace: whatever the test starts in the chroot (dbus-daemon, piemud,
# libvirtd) ends with it, and its /proc, /dev and /run are its own.
say "running the life cycle in $root"
unshare -m -p -f --propagation private bash -c '
    root=$1 images=$2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    mount -t sysfs -o ro sysfs "$root/sys"
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PIEMU_TEST_IMAGES="$images" bash /inside.sh' bash "$root" "$images"
