#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what piemu needs to build and run from a checkout on Debian 12 (bookworm), as root.
# libvirt >= 11 and QEMU >= 10 come from bookworm-backports: stock libvirt 9.0
# passes -no-acpi, which QEMU rejects for raspi3b.
#
#   tools/install-deps.sh           build and run (what tools/setup.sh and the demo need)
#   tools/install-deps.sh --tests   and the test suite's tools too (tools/run-tests.sh): a browser
#                                   and its driver, cockpit-ws, an ssh server, pytest, the
#                                   packaging and container tools. None of them is a dependency of
#                                   the service (see debian/control).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root (apt-get)" >&2
    exit 1
fi
tests=no
case "${1:-}" in
--tests) tests=yes ;;
"") ;;
*) echo "usage: install-deps.sh [--tests]" >&2; exit 2 ;;
esac

export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/piemu-deps.stamp
test_stamp=/var/lib/piemu-test-deps.stamp
want_version=13
want_test_version=1
if [ "${PIEMU_FORCE_DEPS:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_version" ]; then
    if [ $tests = no ]; then
        echo "install-deps: already installed (remove $stamp to redo)"
        exit 0
    fi
    if [ "$(cat "$test_stamp" 2>/dev/null)" = "$want_test_version" ]; then
        echo "install-deps: already installed, test tools too (remove $stamp to redo)"
        exit 0
    fi
fi

if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        > /etc/apt/sources.list.d/piemu-bookworm-backports.list
fi
# The arm64 guest image is built from the host's arm64 lists (armhf and armel come from private
# indexes: see tools/lib/image-build.sh).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -q

# openssh-server and cockpit-ws are test tools here (a loopback sshd and a cockpit-ws the tests
# start and stop themselves): keep their maintainer scripts from starting services, on a host
# without systemd that means an sshd on port 22. Only a policy-rc.d we made is removed again.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT

# The Cockpit page's xterm.js comes from the npm registry (package-lock.json); Debian's npm if
# the host has no npm of its own (NodeSource's nodejs ships one and conflicts with Debian's).
extra=()
command -v npm > /dev/null || extra+=(npm)

if [ $tests = yes ]; then
    # The test suite's own tools: never the service's dependencies.
    extra+=(clang libclang-rt-14-dev python3-pytest
        cockpit-ws cockpit-bridge cockpit-system
        chromium chromium-driver python3-selenium
        openssh-server openssh-client
        debhelper devscripts lintian fakeroot systemd-container)
fi

apt-get install -y -q --no-install-recommends \
    build-essential meson ninja-build pkg-config gcc \
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi \
    libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-armel-cross debian-archive-keyring \
    qemu-user-static \
    libsystemd-dev libgnutls28-dev libxml2-dev openssl dbus dbus-daemon dbus-bin polkitd pkexec \
    python3 python3-gi gir1.2-glib-2.0 \
    e2fsprogs cpio xz-utils zstd kmod file util-linux procps iproute2 \
    clang-format device-tree-compiler bash-completion \
    liblzma-dev libfdt-dev libblkid-dev libseccomp-dev mtools dosfstools fdisk \
    mmdebstrap arch-test \
    "${extra[@]}"

# Only these packages come from bookworm-backports (pkg/bookworm-backports), named one by one:
# "-t bookworm-backports" would also take systemd-container 254 for libvirt's
# "systemd-container | sysvinit-core", and with it systemd, udev and libsystemd0 254, which
# re-executes PID 1. With this list libvirt 11, QEMU 10 (qemu-system-x86 for libvirt's
# "qemu-kvm | qemu-system", and its seabios) and their own libraries move; systemd stays at
# bookworm's 252 (systemd-container 252 may bring bookworm's latest point release of it).
bpo=(
    libvirt-common libvirt0 libvirt-clients libvirt-dev
    libvirt-daemon libvirt-daemon-common libvirt-daemon-log libvirt-daemon-system
    libvirt-daemon-driver-qemu libvirt-daemon-driver-network libvirt-daemon-config-network
    libvirt-daemon-driver-nwfilter libvirt-daemon-config-nwfilter libvirt-daemon-driver-nodedev
    libvirt-daemon-driver-secret libvirt-daemon-driver-storage
    qemu-system-arm qemu-system-x86 qemu-system-common qemu-system-data seabios qemu-utils
)
apt-get install -y -q --no-install-recommends "${bpo[@]/%//bookworm-backports}" \
    libvirt-daemon-driver-storage-disk- qemu-block-extra-

echo "$want_version" > "$stamp"
[ $tests = no ] || echo "$want_test_version" > "$test_stamp"
echo "install-deps: done"
