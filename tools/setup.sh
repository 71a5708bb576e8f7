#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The one set-up path for a fresh Debian 12 machine, as root, with or without
# systemd as PID 1: dependencies, build, install, services, the default guest
# image, and piemud itself. Safe to run again; later runs are quick.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "setup: run as root (it installs packages and system services)" >&2
    exit 1
fi

step "Installing dependencies (Debian packages, libvirt and QEMU from bookworm-backports)"
tools/install-deps.sh

step "Building piemu"
if [ ! -f build/build.ninja ]; then
    meson setup build --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
        --buildtype=debugoptimized -Dwerror=true
fi
ninja -C build

step "Installing piemu"
meson install -C build --quiet
if [ -d /run/systemd/system ]; then
    # At shutdown it powers the boards off before libvirt-guests would wait minutes for each of them
    # (an emulated Pi has no power button); the package enables it the same way.
    systemctl daemon-reload
    systemctl enable --now piemu-boards-poweroff.service
fi

step "Starting system services (dbus, polkitd, virtlogd, libvirtd)"
tools/start-services.sh

step "TLS for the serial lines (piemu's CA, piemud's and QEMU's certificates)"
tools/setup-tls.sh
# setup-tls stops libvirtd when it had to point qemu.conf at QEMU's certificates.
tools/start-services.sh >/dev/null
# The bus policy was just installed or updated.
dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig

step "Building the default guest images (cached after the first run)"
# "default" (arm64) for raspi3ap, raspi3b and raspi4b; "default-armhf" for raspi2b;
# "default-armel" for raspi0 and raspi1ap.
tools/build-image.sh --arch arm64 --shim build/src/shim/piemu-gpio-shim-aarch64
tools/build-image.sh --arch armhf --shim build/src/shim/piemu-gpio-shim-armhf
tools/build-image.sh --arch armel --shim build/src/shim/piemu-gpio-shim-armel

step "piemu's QEMU: Debian's source with piemu's GPIO patches (built once, then cached)"
# Boards piemud starts afterwards run it (GPIO interrupts; Board.GpioInterrupts): about 11-16 min
# on 2 cores the first time, 0.2 s once it is up to date. Debian's QEMU stays as it is.
tools/build-qemu.sh

step "Starting piemud"
# A freshly installed binary must replace an older running one.
if [ "${PIEMU_RESTART:-1}" = 1 ]; then
    tools/piemud-service.sh restart
else
    tools/piemud-service.sh start
fi
