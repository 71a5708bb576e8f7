#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what piemu needs to build, run and test on Debian 12 (bookworm), as root.
# libvirt >= 11 and QEMU >= 10 come from bookworm-backports: stock libvirt 9.0
# passes -no-acpi, which QEMU rejects for raspi3b.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/piemu-deps.stamp
want_version=10
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_version" ] && [ "${PIEMU_FORCE_DEPS:-0}" != 1 ]; then
    echo "install-deps: already installed (remove $stamp to redo)"
    exit 0
fi

if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        > /etc/apt/sources.list.d/piemu-bookworm-backports.list
fi
# The guest image is built from Debian's arm64 packages.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -q

apt-get install -y -q --no-install-recommends \
    build-essential meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross \
    qemu-user-static \
    libsystemd-dev libgnutls28-dev libxml2-dev openssl dbus dbus-daemon dbus-bin polkitd pkexec \
    python3 python3-pytest python3-gi gir1.2-glib-2.0 \
    e2fsprogs cpio xz-utils zstd kmod file util-linux procps iproute2 \
    clang-format device-tree-compiler bash-completion \
    liblzma-dev libfdt-dev libblkid-dev libseccomp-dev mtools dosfstools fdisk \
    mmdebstrap arch-test

apt-get install -y -q --no-install-recommends -t bookworm-backports \
    libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system \
    libvirt-daemon-driver-storage-disk- libvirt-clients \
    qemu-system-arm qemu-utils qemu-block-extra-

echo "$want_version" > "$stamp"
echo "install-deps: done"
